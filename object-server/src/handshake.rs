//! The hello of a control connection, and how the job's secret is proved
//! without ever being sent.
//!
//! ```text
//! client                                  server
//!   Hello { version, transport } ─────────▶
//!                    ◀───────── Hello { .., proof: None }     (no secret required)
//!                    ◀───────── Challenge { nonce: sn }        (secret required)
//!   Prove { nonce: cn, dialed, mac } ─────▶
//!                    ◀───────── Hello { .., proof: Some(p) }   (or Unauthorized)
//! ```
//!
//! `mac` and `p` are HMAC-SHA-256 keyed with the secret over a role label
//! (client or server), both nonces, the transport and `dialed`, the address
//! the client connected to (`ip:port`). The server accepts `dialed` only if
//! it is where the connection arrived (the socket's local address), one of
//! its advertised addresses, or one its owner declared (`--reachable-at`, for
//! tunnels and forwarded ports); the client accepts the server only if `p`
//! checks. So:
//! - the secret never leaves the process: a server that a forged key names
//!   learns nothing it could use elsewhere (versions before 8 sent the secret
//!   in the hello to whatever server a key named);
//! - a proof cannot be replayed (fresh nonces on both sides) nor relayed: a
//!   client's proof names the address it dialed, the attacker's, which the
//!   real server refuses, and the real server's proof names that address too;
//! - a client never talks to a server that claims to require the secret and
//!   cannot prove it holds it.
//!
//! A server that requires no secret (`--no-auth`, or a Unix-domain client of
//! its own user) answers the hello at once with no proof; the client then
//! has sent nothing secret either.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::Secret;
use crate::proto::{self, Request, Response};

/// Bytes of a nonce and of a proof.
pub const NONCE: usize = 32;

/// Whose proof: the two sides' MACs differ in their label, so that one can
/// never be reflected as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// What both proofs of one connection cover: both sides' nonces, the
/// hello's transport and the address the client dialed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transcript<'a> {
    pub(crate) server_nonce: &'a [u8; NONCE],
    pub(crate) client_nonce: &'a [u8; NONCE],
    pub(crate) transport: &'a str,
    pub(crate) dialed: &'a str,
}

impl Transcript<'_> {
    /// The proof of `role` over this transcript.
    pub(crate) fn proof(&self, secret: &Secret, role: Role) -> [u8; NONCE] {
        self.mac(secret, role).finalize().into_bytes().into()
    }

    /// Whether `given` is the proof of `role` (compared in constant time).
    pub(crate) fn verify(&self, secret: &Secret, role: Role, given: &[u8; NONCE]) -> bool {
        self.mac(secret, role).verify_slice(given).is_ok()
    }

    fn mac(&self, secret: &Secret, role: Role) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
            .expect("HMAC takes keys of any length");
        let label: &[u8] = match role {
            Role::Client => b"proxystore object server hello v8: client",
            Role::Server => b"proxystore object server hello v8: server",
        };
        // Every field length-prefixed: no two field lists give the same input.
        for field in [
            label,
            self.server_nonce,
            self.client_nonce,
            self.transport.as_bytes(),
            self.dialed.as_bytes(),
        ] {
            m.update(&(field.len() as u64).to_le_bytes());
            m.update(field);
        }
        m
    }
}

/// 32 fresh random bytes.
pub(crate) fn nonce() -> io::Result<[u8; NONCE]> {
    let mut n = [0u8; NONCE];
    crate::auth::random_bytes(&mut n)?;
    Ok(n)
}

/// `a` as both sides write it in proofs: an IPv4-mapped IPv6 address as the
/// IPv4 address it maps.
pub fn addr_text(a: SocketAddr) -> String {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()).to_string(),
            None => a.to_string(),
        },
        SocketAddr::V4(_) => a.to_string(),
    }
}

/// The client's side of the hello on a new connection `s` to `dialed`:
/// returns the server's last answer. [`Response::Hello`] is an accepted
/// hello (the server proved it holds `secret` if it asked for it);
/// anything else is a refusal, including one made here:
/// [`Response::Unauthorized`] when the server asks for a secret this process
/// does not have, or cannot prove it holds the secret.
pub fn greet<S: Read + Write>(
    s: &mut S,
    transport: &str,
    secret: Option<&Secret>,
    dialed: SocketAddr,
) -> io::Result<Option<Response>> {
    let hello = Request::Hello {
        version: proto::VERSION,
        transport: transport.to_string(),
        secret: None,
    };
    proto::write_frame(s, &hello)?;
    let server_nonce = match proto::read_frame::<Response>(s)? {
        Some(Response::Challenge { nonce }) => nonce,
        // Accepted without a secret, refused, or gone.
        other => return Ok(other),
    };
    let Some(secret) = secret else {
        return Ok(Some(Response::Unauthorized(
            "unauthorized: this server needs the job's secret (PROXYSTORE_SERVER_SECRET, \
             or its user's ~/.proxystore/server-secret), and this process has none"
                .into(),
        )));
    };
    let client_nonce = nonce()?;
    let dialed = addr_text(dialed);
    let transcript = Transcript {
        server_nonce: &server_nonce,
        client_nonce: &client_nonce,
        transport,
        dialed: &dialed,
    };
    let mac = transcript.proof(secret, Role::Client);
    let prove = Request::Prove {
        nonce: client_nonce,
        dialed: dialed.clone(),
        mac,
    };
    proto::write_frame(s, &prove)?;
    let answer = proto::read_frame::<Response>(s)?;
    if let Some(Response::Hello { proof: p, .. }) = &answer {
        let proved = p
            .as_ref()
            .is_some_and(|p| transcript.verify(secret, Role::Server, p));
        if !proved {
            return Ok(Some(Response::Unauthorized(format!(
                "unauthorized server: the server at {dialed} asked for the job's secret \
                 but could not prove it holds it (another job's or user's server, or \
                 someone relaying to one); nothing was sent to it"
            ))));
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    #[test]
    fn proofs_bind_every_field_and_the_role() {
        let k = secret("the job's secret");
        let other = secret("another secret");
        let (sn, cn) = ([1u8; NONCE], [2u8; NONCE]);
        let proof = |k: &Secret, role, server_nonce, client_nonce, transport, dialed| {
            Transcript {
                server_nonce,
                client_nonce,
                transport,
                dialed,
            }
            .proof(k, role)
        };
        let p = proof(&k, Role::Client, &sn, &cn, "ucx", "10.0.0.1:7000");
        let checks = |k: &Secret, role, server_nonce, client_nonce, transport, dialed| {
            Transcript {
                server_nonce,
                client_nonce,
                transport,
                dialed,
            }
            .verify(k, role, &p)
        };
        assert!(checks(&k, Role::Client, &sn, &cn, "ucx", "10.0.0.1:7000"));
        // Another secret, the other role, or any other field: refused.
        for (k, role, sn, cn, transport, dialed) in [
            (&other, Role::Client, &sn, &cn, "ucx", "10.0.0.1:7000"),
            (&k, Role::Server, &sn, &cn, "ucx", "10.0.0.1:7000"),
            (&k, Role::Client, &cn, &sn, "ucx", "10.0.0.1:7000"),
            (&k, Role::Client, &sn, &cn, "ofi", "10.0.0.1:7000"),
            (&k, Role::Client, &sn, &cn, "ucx", "10.0.0.66:7000"),
        ] {
            assert!(
                !checks(k, role, sn, cn, transport, dialed),
                "{role:?} {transport} {dialed}"
            );
        }
        // Length prefixes: moving bytes between fields changes the proof.
        assert_ne!(
            proof(&k, Role::Client, &sn, &cn, "ucx1", "0.0.0.0:1"),
            proof(&k, Role::Client, &sn, &cn, "ucx", "10.0.0.0:1")
        );
    }

    #[test]
    fn mapped_addresses_are_written_as_ipv4() {
        let a: SocketAddr = "[::ffff:10.1.2.3]:9".parse().unwrap();
        assert_eq!(addr_text(a), "10.1.2.3:9");
        let b: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(addr_text(b), "[::1]:9");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
