//! One client connection: hello (version, transport, the proof of the
//! secret: [`crate::handshake`]), then requests.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use super::Shared;
use crate::arena::{ReserveError, reserve_unlocked};
use crate::handshake::{self, Role, Transcript};
use crate::memory::PinWords;
use crate::proto::{self, DataPath, Loc, Request, Response};
use crate::stream::Conn;
use crate::transport::Access;

/// What an accepted hello established for the connection.
struct Session {
    /// Index of the hello's transport among the server's (`None`: a
    /// control-only client, another server: no descriptors).
    transport: Option<usize>,
}

/// What a connection holds in the arena, released when it closes.
#[derive(Default)]
struct Held {
    /// Reservations not committed yet.
    pending: Vec<Loc>,
    /// Pins of a same-node reader: location -> count.
    pins: HashMap<Loc, u64>,
    /// The reader's pin page.
    page: Option<Arc<PinWords>>,
}

/// Serve `s` until it closes; reservations it did not commit and pins it
/// did not release are released then (a reader that dies releases its pins).
pub(super) fn serve(s: Conn, sh: &Arc<Shared>, id: u64) -> io::Result<()> {
    let mut held = Held::default();
    let r = serve_requests(s, sh, id, &mut held);
    if let Some(p) = &held.page {
        sh.arena.lock().remove_pin_page(p);
    }
    if !held.pending.is_empty() || !held.pins.is_empty() {
        let mut arena = sh.arena.lock();
        for loc in &held.pending {
            arena.abort(loc);
        }
        for (loc, n) in &held.pins {
            for _ in 0..*n {
                arena.unpin(loc);
            }
        }
    }
    r
}

/// Read and discard `n` bytes (the payload of a refused put).
fn drain(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied == n {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

fn full(e: ReserveError) -> Response {
    match e {
        ReserveError::Full { size, used, limit } => Response::Full { size, used, limit },
        ReserveError::Map(e) => Response::Error(e.to_string()),
    }
}

/// Where a connection is in its hello.
enum Greeting {
    /// Nothing said yet, or refused.
    Start,
    /// Challenged: waiting for the client's [`Request::Prove`].
    Challenged {
        nonce: [u8; handshake::NONCE],
        transport: String,
    },
}

/// The first answer to a hello: refused for another protocol version, a
/// challenge if the server requires the secret of this client (every client
/// unless the kernel says it is a process of the server's own user,
/// `peer_uid` on a Unix-domain connection), else the hello's answer.
fn hello(
    sh: &Shared,
    version: u32,
    transport: &str,
    secret: Option<&[u8]>,
    peer_uid: Option<u32>,
    greeting: &mut Greeting,
) -> io::Result<(Response, Option<Session>)> {
    *greeting = Greeting::Start;
    if version != proto::VERSION {
        let m = format!(
            "protocol version {version} (server speaks {})",
            proto::VERSION
        );
        return Ok((Response::Error(m), None));
    }
    if secret.is_some() {
        let m = "a hello of protocol 8 never carries the secret: it is proved, not sent";
        return Ok((Response::Error(m.into()), None));
    }
    let same_user = peer_uid == Some(sh.uid);
    if sh.secret.is_some() && !same_user {
        let nonce = handshake::nonce()?;
        *greeting = Greeting::Challenged {
            nonce,
            transport: transport.to_string(),
        };
        return Ok((Response::Challenge { nonce }, None));
    }
    Ok(welcome(sh, transport, None))
}

/// The answer to a client's proof of the secret: the hello's answer with the
/// server's own proof, or unauthorized.
fn prove(
    sh: &Shared,
    greeting: &mut Greeting,
    conn: &Conn,
    client_nonce: &[u8; handshake::NONCE],
    dialed: &str,
    mac: &[u8; handshake::NONCE],
) -> (Response, Option<Session>) {
    // A server challenges only when it has a secret.
    let (Greeting::Challenged { nonce, transport }, Some(secret)) = (
        std::mem::replace(greeting, Greeting::Start),
        sh.secret.as_ref(),
    ) else {
        let m = "unauthorized: a proof without a challenge (say hello first)";
        return (Response::Unauthorized(m.into()), None);
    };
    let transcript = Transcript {
        server_nonce: &nonce,
        client_nonce,
        transport: &transport,
        dialed,
    };
    let who = conn.peer_uid();
    if !transcript.verify(secret, Role::Client, mac) {
        let m = match who {
            Some(uid) => format!(
                "unauthorized: local uid {uid} is not this server's user, and its proof of \
                 the secret is wrong"
            ),
            None => "unauthorized: wrong secret".into(),
        };
        return (Response::Unauthorized(m), None);
    }
    if !sh.was_dialed(dialed, conn) {
        let here = conn
            .local_tcp_addr()
            .map_or_else(|| sh.listen.to_string(), handshake::addr_text);
        let m = format!(
            "unauthorized: the client proved the secret for {dialed}, which is not this \
             server ({here}): a relay, or a tunnel or forwarded port the server was not told \
             of (name it with --reachable-at)"
        );
        return (Response::Unauthorized(m), None);
    }
    let p = transcript.proof(secret, Role::Server);
    welcome(sh, &transport, Some(p))
}

/// The answer to an accepted hello on `transport`, with the server's `proof`
/// (if it asked for one).
fn welcome(
    sh: &Shared,
    transport: &str,
    proof: Option<[u8; handshake::NONCE]>,
) -> (Response, Option<Session>) {
    if transport == proto::CONTROL_ONLY {
        let r = Response::Hello {
            version: proto::VERSION,
            instance: sh.instance,
            address: Vec::new(),
            data_path: DataPath::Stream,
            pid: std::process::id(),
            host_id: sh.host_id.clone(),
            proof,
        };
        return (r, Some(Session { transport: None }));
    }
    let Some((index, address, data_path)) = sh.transport(transport) else {
        let offered: Vec<&str> = sh.transports.iter().map(|t| t.name()).collect();
        let m = format!(
            "transport {transport:?} is not served here (this server offers {})",
            offered.join(", ")
        );
        return (Response::Error(m), None);
    };
    let r = Response::Hello {
        version: proto::VERSION,
        instance: sh.instance,
        address: address.to_vec(),
        data_path,
        pid: std::process::id(),
        host_id: sh.host_id.clone(),
        proof,
    };
    (
        r,
        Some(Session {
            transport: Some(index),
        }),
    )
}

fn serve_requests(mut s: Conn, sh: &Arc<Shared>, id: u64, held: &mut Held) -> io::Result<()> {
    let pending = &mut held.pending;
    let pins = &mut held.pins;
    let page = &mut held.page;
    let mut session: Option<Session> = None;
    let mut greeting = Greeting::Start;
    // Until a hello is accepted, a connection that says nothing is closed.
    s.set_read_timeout(Some(super::HELLO_TIMEOUT))?;
    while let Some(req) = proto::read_frame::<Request>(&mut s)? {
        let said = match &req {
            Request::Hello {
                version,
                transport,
                secret,
            } => Some(hello(
                sh,
                *version,
                transport,
                secret.as_deref(),
                s.peer_uid(),
                &mut greeting,
            )?),
            Request::Prove { nonce, dialed, mac } => {
                Some(prove(sh, &mut greeting, &s, nonce, dialed, mac))
            }
            _ => None,
        };
        if let Some((resp, sess)) = said {
            if sess.is_some() && session.is_none() {
                s.set_read_timeout(None)?;
                sh.greeted(id);
            }
            session = sess;
            proto::write_frame(&mut s, &resp)?;
            continue;
        }
        let Some(sess) = &session else {
            // Nothing is done for a connection without an accepted hello; the
            // bytes of a refused put are never read into the arena.
            if let Request::Put { len } = req {
                drain(&mut s, len)?;
            }
            let m = if matches!(greeting, Greeting::Challenged { .. }) {
                "unauthorized: this server needs the job's secret (PROXYSTORE_SERVER_SECRET, \
                 or its user's ~/.proxystore/server-secret): answer its challenge first"
            } else {
                "unauthorized: no accepted hello on this connection"
            };
            proto::write_frame(&mut s, &Response::Unauthorized(m.into()))?;
            continue;
        };
        let resp = match req {
            Request::Hello { .. } | Request::Prove { .. } => unreachable!("handled above"),
            Request::Put { len } => {
                let reserved = reserve_unlocked(&sh.arena, len, None);
                match reserved {
                    Err(e) => {
                        drain(&mut s, len)?;
                        full(e)
                    }
                    Ok(mut r) => {
                        if let Err(e) = s.read_exact(r.writer.as_mut_slice()) {
                            sh.arena.lock().abort(&r.loc);
                            return Err(e);
                        }
                        sh.arena.lock().commit(&r.loc);
                        Response::Put(r.loc)
                    }
                }
            }
            Request::Reserve { len, phase } => {
                match reserve_unlocked(&sh.arena, len, Some(phase.into())) {
                    Err(e) => full(e),
                    Ok(r) => {
                        pending.push(r.loc);
                        Response::Put(r.loc)
                    }
                }
            }
            Request::Commit(loc) => match pending.iter().position(|l| *l == loc) {
                Some(i) => {
                    pending.swap_remove(i);
                    sh.arena.lock().commit(&loc);
                    Response::Ok
                }
                None => Response::Error(format!("no reservation {loc:?} on this connection")),
            },
            Request::Exists(loc) => Response::Bool(sh.arena.lock().exists(&loc)),
            Request::Evict(loc) => {
                sh.arena.lock().evict(&loc);
                sh.relay.evicted(sh, &loc);
                Response::Ok
            }
            Request::Segment { seg, write } => {
                if write && !pending.iter().any(|l| l.seg == seg) {
                    Response::Unauthorized(format!(
                        "unauthorized: write access to segment {seg} needs a reservation in it on this connection"
                    ))
                } else if let Some(t) = sess.transport {
                    let access = if write {
                        Access::ReadWrite
                    } else {
                        Access::Read
                    };
                    Response::Segment(sh.arena.lock().segment(seg, t, access))
                } else {
                    Response::Error("a control-only connection gets no segment descriptors".into())
                }
            }
            Request::Stats => Response::Stats(sh.stats()),
            Request::Pin(locs) => {
                let mut arena = sh.arena.lock();
                let got = locs
                    .iter()
                    .map(|loc| {
                        let ok = arena.pin(loc);
                        if ok {
                            *pins.entry(*loc).or_insert(0) += 1;
                        }
                        ok
                    })
                    .collect();
                Response::Pinned(got)
            }
            Request::PinPage => {
                if page.is_none() {
                    if let Ok(p) = PinWords::create() {
                        let p = Arc::new(p);
                        sh.arena.lock().add_pin_page(p.clone());
                        *page = Some(p);
                    }
                }
                Response::PinPage(page.as_ref().and_then(|p| p.shm()))
            }
            Request::Unpin(locs) => {
                let mut arena = sh.arena.lock();
                for loc in &locs {
                    // Only this connection's own pins.
                    if let Some(n) = pins.get_mut(loc) {
                        *n -= 1;
                        if *n == 0 {
                            pins.remove(loc);
                        }
                        arena.unpin(loc);
                    }
                }
                continue; // no answer
            }
            Request::Fetch(remote) => {
                // Progress frames while the object arrives (a reader that
                // went away stops getting them; the fetch goes on for others).
                let mut open = true;
                let mut progress = |n: u64| {
                    if open {
                        open = proto::write_frame(&mut s, &Response::Progress(n)).is_ok();
                    }
                };
                let f = sh.relay.fetch(sh, &remote, &mut progress);
                Response::Fetched(f)
            }
            Request::Source { loc, me, failed } => {
                Response::Source(sh.relay.source(sh, &loc, &me, &failed))
            }
            Request::Dropped(remote) => {
                sh.relay.dropped(sh, &remote);
                continue; // no answer
            }
            Request::RelayRead { remote, offset } => {
                sh.relay.serve_read(sh, &mut s, &remote, offset)?;
                continue;
            }
            Request::Read(loc) => {
                send_object(sh, &mut s, &loc, 0, &mut |_| {})?;
                continue;
            }
        };
        proto::write_frame(&mut s, &resp)?;
    }
    Ok(())
}

/// Answer a stream read of `loc` from byte `offset` on `s`: `Read(None)` if
/// it is not stored, else `Read(Some(len - offset))` and the bytes straight
/// from the pinned slot, in steps, each told to `sent` as it goes (a reader
/// that fails midway still took what it took). The stream data path and the
/// owner's side of a relay read.
pub(super) fn send_object(
    sh: &Shared,
    s: &mut Conn,
    loc: &Loc,
    offset: u64,
    sent: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let pinned = sh.arena.lock().begin_read(loc);
    let Some(p) = pinned else {
        return proto::write_frame(s, &Response::Read(None));
    };
    let r = proto::write_frame(s, &Response::Read(Some(loc.len - offset))).and_then(|()| {
        for step in p.as_slice()[offset as usize..].chunks(1 << 20) {
            s.write_all(step)?;
            sent(step.len() as u64);
        }
        Ok(())
    });
    drop(p);
    sh.arena.lock().end_read(loc);
    r
}
