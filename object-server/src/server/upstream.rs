//! Control connections from this server to other servers (an object's owner,
//! another node server), for the relay: the hello of a control-only client
//! ([`proto::CONTROL_ONLY`]) proving this server's secret, then requests.
//! Request connections are pooled per server; relay reads get a connection
//! of their own.

use std::collections::HashMap;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use parking_lot::Mutex;

use crate::auth::Secret;
use crate::handshake;
use crate::proto::{self, Request, Response};
use crate::stream::Conn;

/// What a server said at hello: its instance and host id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Greeting {
    pub(crate) instance: u64,
    pub(crate) host_id: String,
}

pub(crate) struct Upstream {
    secret: Option<Secret>,
    timeout: Duration,
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    greetings: Mutex<HashMap<String, Greeting>>,
}

fn bad(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m)
}

impl Upstream {
    pub(crate) fn new(secret: Option<Secret>, timeout: Duration) -> Upstream {
        Upstream {
            secret,
            timeout,
            idle: Mutex::new(HashMap::new()),
            greetings: Mutex::new(HashMap::new()),
        }
    }

    /// A new connection to `addr`, greeted.
    pub(crate) fn open(&self, addr: &str) -> io::Result<(Conn, Greeting)> {
        let mut last = None;
        let mut conn = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn = Some((Conn::Tcp(s), a));
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let (mut s, dialed) =
            conn.ok_or_else(|| last.unwrap_or_else(|| io::Error::other("no address")))?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        let answer = handshake::greet(&mut s, proto::CONTROL_ONLY, self.secret.as_ref(), dialed)?;
        let g = match answer {
            Some(Response::Hello {
                instance, host_id, ..
            }) => Greeting { instance, host_id },
            Some(Response::Unauthorized(m) | Response::Error(m)) => {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, m));
            }
            other => return Err(bad(format!("unexpected answer to hello: {other:?}"))),
        };
        self.greetings.lock().insert(addr.to_string(), g.clone());
        Ok((s, g))
    }

    /// What `addr` said at its last hello (one is said now if none was).
    /// `fresh`: ask again (the cached one may be an earlier instance's).
    pub(crate) fn greeting(&self, addr: &str, fresh: bool) -> io::Result<Greeting> {
        if !fresh {
            if let Some(g) = self.greetings.lock().get(addr) {
                return Ok(g.clone());
            }
        }
        let (s, g) = self.open(addr)?;
        self.idle
            .lock()
            .entry(addr.to_string())
            .or_default()
            .push(s);
        Ok(g)
    }

    /// One request that has no answer.
    pub(crate) fn send(&self, addr: &str, req: &Request) -> io::Result<()> {
        let reused = self.idle.lock().get_mut(addr).and_then(Vec::pop);
        let mut s = match reused {
            Some(s) => s,
            None => self.open(addr)?.0,
        };
        proto::write_frame(&mut s, req)?;
        self.idle
            .lock()
            .entry(addr.to_string())
            .or_default()
            .push(s);
        Ok(())
    }

    /// One request and its answer; a reused connection that fails is
    /// replaced by a fresh one once.
    pub(crate) fn call(&self, addr: &str, req: &Request) -> io::Result<Response> {
        let exchange = |s: &mut Conn| -> io::Result<Response> {
            proto::write_frame(s, req)?;
            proto::read_frame::<Response>(s)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
        };
        let reused = self.idle.lock().get_mut(addr).and_then(Vec::pop);
        if let Some(mut s) = reused {
            if let Ok(r) = exchange(&mut s) {
                self.idle
                    .lock()
                    .entry(addr.to_string())
                    .or_default()
                    .push(s);
                return Ok(r);
            }
        }
        let (mut s, _) = self.open(addr)?;
        let r = exchange(&mut s)?;
        self.idle
            .lock()
            .entry(addr.to_string())
            .or_default()
            .push(s);
        Ok(r)
    }
}
