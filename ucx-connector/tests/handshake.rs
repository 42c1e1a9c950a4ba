//! The hello's proof of the job's secret, against a real server process and
//! an attacker's own processes: a key that names the attacker's server, a
//! relay between a client and the real server, a tunnel the owner declared.
//! The secret never crosses the wire, and a relayed proof opens nothing.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::ServerProcess;
use object_server::proto::{self, DataPath, Request, Response};
use proxy_core::{Connector, Key, Payload};
use ucx_connector::{TransportConfig, UcxConfig, UcxConnector, UcxKey};

const TLS: &str = "shm,cma,self";
const SECRET: &str = "handshake-5e71b0c4d2";

fn secret_file(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("ps-secret-hs-{name}-{}", std::process::id()));
    std::fs::write(&p, format!("{SECRET}\n")).unwrap();
    p
}

/// A server requiring `SECRET`, over TCP only (no Unix-domain socket, where
/// the kernel vouches for the owner's processes and no proof is asked).
fn server(name: &str, extra: &[&str]) -> (ServerProcess, std::path::PathBuf) {
    let file = secret_file(name);
    let mut args = vec!["--secret-file", file.to_str().unwrap(), "--no-unix-socket"];
    args.extend_from_slice(extra);
    (ServerProcess::start(TLS, &args), file)
}

fn client(addr: &str) -> UcxConnector {
    let cfg = UcxConfig::new(addr)
        .with_ucx_tls(TLS)
        .with_timeout(Duration::from_secs(5))
        .with_secret(SECRET);
    UcxConnector::new(cfg).unwrap()
}

/// `key` as a forged proxy would carry it: the same object, another server.
fn naming(key: &Key, server: &str) -> Key {
    let mut k: UcxKey = key.decode("ucx").unwrap();
    k.server = server.to_string();
    Key::encode(&k)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A server of the attacker's, without the secret: it answers the hello with
/// a challenge, records every byte the client sends, and answers the proof
/// with a made-up one (`proof`), or with a hello that proves nothing.
fn fake_server(proof: Option<[u8; 32]>) -> (String, JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = s.try_clone().unwrap();
        let mut w = s;
        let mut seen = Vec::new();
        let mut frame = |r: &mut TcpStream| -> Option<Request> {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).ok()?;
            let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
            r.read_exact(&mut body).ok()?;
            seen.extend_from_slice(&len);
            seen.extend_from_slice(&body);
            postcard::from_bytes(&body).ok()
        };
        if matches!(frame(&mut r), Some(Request::Hello { .. })) {
            let nonce = [9u8; 32];
            proto::write_frame(&mut w, &Response::Challenge { nonce }).unwrap();
            if matches!(frame(&mut r), Some(Request::Prove { .. })) {
                let hello = Response::Hello {
                    version: proto::VERSION,
                    instance: 1,
                    address: Vec::new(),
                    data_path: DataPath::Stream,
                    pid: 1,
                    host_id: String::new(),
                    proof,
                };
                proto::write_frame(&mut w, &hello).unwrap();
                // Whatever the client sends next (it should send nothing).
                r.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                while frame(&mut r).is_some() {}
            }
        }
        seen
    });
    (addr, t)
}

/// A key naming a server of the attacker's: the client refuses it (it cannot
/// prove the secret), and what the client sent it holds no trace of the
/// secret. Before protocol 8 the hello carried the secret itself.
#[test]
fn a_forged_key_learns_nothing_and_is_refused() {
    let (srv, file) = server("forged", &[]);
    let good = client(&srv.addr);
    let key = good.put(Payload::from(vec![4u8; 5000])).unwrap();
    for proof in [Some([0u8; 32]), None] {
        let (fake, t) = fake_server(proof);
        let e = good.get(&naming(&key, &fake)).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("could not prove it holds it") && !e.is_temporary(),
            "{m}"
        );
        let seen = t.join().unwrap();
        assert!(
            seen.len() > 60,
            "the fake server saw no proof: {} bytes",
            seen.len()
        );
        assert!(!contains(&seen, SECRET.as_bytes()), "the secret was sent");
        // Nor any request after the refused proof: the proof is followed by
        // the server's answer only.
        let prove_end = seen.len();
        assert!(
            prove_end < 200,
            "{prove_end} bytes sent: more than a hello and a proof"
        );
    }
    // The real server still serves the object.
    assert_eq!(good.get(&key).unwrap().as_deref(), Some(&[4u8; 5000][..]));
    std::fs::remove_file(file).unwrap();
}

/// Frames from `from` to `to`, each also recorded in `log`, until `from`
/// closes.
fn pump(mut from: TcpStream, mut to: TcpStream, log: Arc<Mutex<Vec<Vec<u8>>>>) {
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        if from.read_exact(&mut body).is_err() {
            break;
        }
        if to
            .write_all(&len)
            .and_then(|()| to.write_all(&body))
            .is_err()
        {
            break;
        }
        log.lock().unwrap().push(body);
    }
    // `to` stays open: the attacker keeps its connection to the server.
}

/// The attacker names itself in a forged key and relays, frame by frame,
/// between the victim and the real server. The victim's proof names the
/// attacker's address, so the server refuses it; the attacker's connection
/// to the server, which carried a real proof, is served nothing; and the
/// victim refuses too.
#[test]
fn a_relayed_proof_opens_nothing() {
    let (srv, file) = server("relay", &[]);
    let good = client(&srv.addr);
    let key = good.put(Payload::from(vec![6u8; 7000])).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let attacker = l.local_addr().unwrap().to_string();
    let real = srv.addr.clone();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let t = std::thread::spawn(move || {
        let (victim, _) = l.accept().unwrap();
        let upstream = TcpStream::connect(&real).unwrap();
        upstream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        victim
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (v2, u2) = (victim.try_clone().unwrap(), upstream.try_clone().unwrap());
        let up = {
            let log = log2.clone();
            std::thread::spawn(move || pump(v2, u2, log))
        };
        // The server's answers to the victim: the challenge, then the
        // answer to the relayed proof. Then the attacker speaks itself.
        let mut from_server = upstream.try_clone().unwrap();
        let mut to_victim = victim;
        let mut answers = Vec::new();
        for _ in 0..2 {
            let r: Response = proto::read_frame(&mut from_server).unwrap().unwrap();
            proto::write_frame(&mut to_victim, &r).unwrap();
            answers.push(r);
        }
        let _ = to_victim.shutdown(Shutdown::Both);
        let _ = up.join();
        let mut own = upstream;
        let stats = proto::write_frame(&mut own, &Request::Stats)
            .and_then(|()| proto::read_frame::<Response>(&mut own));
        (answers, stats)
    });
    let e = good.get(&naming(&key, &attacker)).unwrap_err();
    let (answers, stats) = t.join().unwrap();
    let m = e.to_string();
    assert!(m.contains("unauthorized"), "{m}");
    assert!(
        matches!(&answers[0], Response::Challenge { .. }),
        "{:?}",
        answers[0]
    );
    match &answers[1] {
        Response::Unauthorized(m) => {
            assert!(m.contains("not this server"), "{m}");
            assert!(m.contains(&attacker), "{m}");
        }
        other => panic!("the relayed proof was answered {other:?}"),
    }
    match stats {
        Ok(Some(Response::Unauthorized(_))) => {}
        other => panic!("the attacker's own request on the relayed connection: {other:?}"),
    }
    for frame in log.lock().unwrap().iter() {
        assert!(
            !contains(frame, SECRET.as_bytes()),
            "the secret was relayed"
        );
    }
    assert_eq!(good.get(&key).unwrap().as_deref(), Some(&[6u8; 7000][..]));
    std::fs::remove_file(file).unwrap();
}

/// A byte-for-byte TCP forwarder on `listen` to `to` (an SSH tunnel, a
/// forwarded port), for `conns` connections.
fn tunnel(l: TcpListener, to: String, conns: usize) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut ts = Vec::new();
        for _ in 0..conns {
            let Ok((a, _)) = l.accept() else { break };
            let b = TcpStream::connect(&to).unwrap();
            let copy = |mut x: TcpStream, mut y: TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut x, &mut y);
                    let _ = y.shutdown(Shutdown::Write);
                })
            };
            ts.push(copy(a.try_clone().unwrap(), b.try_clone().unwrap()));
            ts.push(copy(b, a));
        }
        for t in ts {
            let _ = t.join();
        }
    })
}

/// A client that reaches the server through a tunnel proves the secret for
/// the tunnel's address: refused, with what to do, until the owner names
/// that address with `--reachable-at`; then served through the tunnel.
#[test]
fn a_tunnel_is_served_once_declared() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let entry = l.local_addr().unwrap().to_string();
    let (plain, file) = server("tunnel", &[]);
    let t = tunnel(l, plain.addr.clone(), 1);
    let e = client(&entry)
        .put(Payload::from(vec![1u8; 100]))
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("not this server") && m.contains("--reachable-at"),
        "{m}"
    );
    t.join().unwrap();
    drop(plain);

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let entry = l.local_addr().unwrap().to_string();
    let (declared, file2) = server("tunnel2", &["--reachable-at", &entry]);
    // Several connections: the hello's, and one per request thread.
    let _t = tunnel(l, declared.addr.clone(), 64);
    let c = UcxConnector::new(
        UcxConfig::new(&entry)
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(5))
            .with_secret(SECRET)
            .with_data_path(DataPath::Stream),
    )
    .unwrap();
    let key = c.put(Payload::from(vec![2u8; 3000])).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[2u8; 3000][..]));
    std::fs::remove_file(file).unwrap();
    std::fs::remove_file(file2).unwrap();
}
