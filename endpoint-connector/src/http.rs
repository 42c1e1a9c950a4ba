//! A minimal HTTP/1.1 client for an endpoint's REST API on the local
//! network: keep-alive connections from a small pool, request bodies
//! written from the payload's own buffers (`Content-Length`), response
//! bodies read by `Content-Length` or chunked transfer coding.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

/// Idle connections kept at most.
const MAX_IDLE: usize = 8;
/// Longest status or header line accepted.
const MAX_LINE: usize = 16 << 10;

/// A response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Response {
    /// The body as text, for messages (at most 300 characters).
    pub(crate) fn text(&self) -> String {
        let t = String::from_utf8_lossy(&self.body);
        t.chars().take(300).collect()
    }
}

struct Conn {
    r: BufReader<TcpStream>,
}

/// Connections to one `host:port`.
pub(crate) struct Client {
    host: String,
    port: u16,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line(r: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<()> {
    line.clear();
    let n = r.by_ref().take(MAX_LINE as u64).read_line(line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the endpoint closed the connection",
        ));
    }
    if !line.ends_with('\n') {
        return Err(bad("response line too long"));
    }
    while line.ends_with(['\r', '\n']) {
        line.pop();
    }
    Ok(())
}

/// Percent-encode a query value (UUIDs and plain names need nothing, but
/// any other byte is escaped).
pub(crate) fn encode(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

impl Client {
    pub(crate) fn new(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        timeout: Option<Duration>,
    ) -> Client {
        Client {
            host: host.to_string(),
            port,
            timeout,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn connect(&self) -> io::Result<Conn> {
        let mut last = None;
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_read_timeout(self.timeout)?;
                    s.set_write_timeout(self.timeout)?;
                    return Ok(Conn {
                        r: BufReader::with_capacity(64 << 10, s),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| bad("the host name resolves to no address")))
    }

    /// One request; a pooled connection that turns out closed is replaced
    /// by a fresh one and the request sent again (every request of the
    /// endpoint API is idempotent).
    pub(crate) fn request(
        &self,
        method: &str,
        path_query: &str,
        body: &[Bytes],
    ) -> io::Result<Response> {
        let pooled = self.idle.lock().pop();
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let r = match self.exchange(&mut conn, method, path_query, body) {
            Err(e)
                if reused
                    && e.kind() != io::ErrorKind::WouldBlock
                    && e.kind() != io::ErrorKind::TimedOut =>
            {
                self.idle.lock().clear();
                conn = self.connect()?;
                self.exchange(&mut conn, method, path_query, body)
            }
            r => r,
        };
        let (resp, keep) = r?;
        if keep {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        Ok(resp)
    }

    fn exchange(
        &self,
        c: &mut Conn,
        method: &str,
        path_query: &str,
        body: &[Bytes],
    ) -> io::Result<(Response, bool)> {
        let len: usize = body.iter().map(Bytes::len).sum();
        let mut head = format!(
            "{method} {path_query} HTTP/1.1\r\nHost: {}:{}\r\nAccept: */*\r\n",
            self.host, self.port
        );
        if method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n"
            ));
        }
        head.push_str("\r\n");
        let s = c.r.get_mut();
        if len <= 64 << 10 {
            let mut all = head.into_bytes();
            for b in body {
                all.extend_from_slice(b);
            }
            s.write_all(&all)?;
        } else {
            s.write_all(head.as_bytes())?;
            for b in body {
                s.write_all(b)?;
            }
        }
        let mut line = String::new();
        read_line(&mut c.r, &mut line)?;
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| bad(format!("not an HTTP response: {line:?}")))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut keep = version == "HTTP/1.1";
        loop {
            read_line(&mut c.r, &mut line)?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(bad(format!("bad header line {line:?}")));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    length = Some(
                        value
                            .parse()
                            .map_err(|_| bad(format!("bad Content-Length {value:?}")))?,
                    );
                }
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "connection" => keep = !value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let body = if chunked {
            let mut out = Vec::new();
            loop {
                read_line(&mut c.r, &mut line)?;
                let size = line.split(';').next().unwrap_or_default().trim();
                let n = usize::from_str_radix(size, 16)
                    .map_err(|_| bad(format!("bad chunk size {size:?}")))?;
                if n == 0 {
                    // Trailers, then the blank line.
                    loop {
                        read_line(&mut c.r, &mut line)?;
                        if line.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let at = out.len();
                out.resize(at + n, 0);
                c.r.read_exact(&mut out[at..])?;
                let mut crlf = [0u8; 2];
                c.r.read_exact(&mut crlf)?;
                if &crlf != b"\r\n" {
                    return Err(bad("chunk not terminated by CRLF"));
                }
            }
            out
        } else if let Some(n) = length {
            let mut out = vec![0u8; n];
            c.r.read_exact(&mut out)?;
            out
        } else if method == "HEAD" || status == 204 || status == 304 {
            Vec::new()
        } else {
            // Delimited by the end of the connection.
            keep = false;
            let mut out = Vec::new();
            c.r.read_to_end(&mut out)?;
            out
        };
        Ok((
            Response {
                status,
                body: Bytes::from(body),
            },
            keep,
        ))
    }

    /// Drop every idle connection.
    pub(crate) fn clear(&self) {
        self.idle.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering each request with the next canned reply.
    fn serve(replies: Vec<&'static [u8]>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            for reply in replies {
                let mut line = String::new();
                let mut len = 0;
                loop {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).unwrap();
                r.get_mut().write_all(reply).unwrap();
            }
        });
        port
    }

    #[test]
    fn chunked_and_sized_bodies_on_one_connection() {
        let port = serve(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ]);
        let c = Client::new(
            "127.0.0.1",
            port,
            Duration::from_secs(2),
            Some(Duration::from_secs(2)),
        );
        let r = c.request("GET", "/get?key=a", &[]).unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"hello world"[..]));
        let r = c.request("GET", "/get?key=b", &[]).unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "nope"));
        let r = c
            .request(
                "POST",
                "/set?key=c",
                &[Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
            )
            .unwrap();
        assert_eq!((r.status, r.body.len()), (200, 0));
    }

    #[test]
    fn garbage_is_an_error() {
        let port = serve(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]);
        let c = Client::new(
            "127.0.0.1",
            port,
            Duration::from_secs(2),
            Some(Duration::from_secs(2)),
        );
        let e = c.request("GET", "/", &[]).unwrap_err();
        assert!(e.to_string().contains("not an HTTP response"), "{e}");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("0a1b-2c"), "0a1b-2c");
    }
}
