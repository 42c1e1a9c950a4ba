//! An attacker with no secret and no control connection against a real
//! `proxystore-ofi-server` that has one: a raw libfabric client builds the
//! server's fabric address from its listening port (as any process on the
//! node can: `/proc/net/tcp`; from another node, a port scan), forges
//! segment descriptors and guesses memory-registration keys, reading and
//! writing with `fi_read` / `fi_write` at the first object's offset.
//!
//! - `tcp;ofi_rxm`: guessed keys (the sequential keys of the old scheme,
//!   0..1000, first, then random ones) for reads and for writes: none may
//!   complete, and the objects read back by an authorized client must be
//!   unchanged. A positive control (the same attacker with the key a hello
//!   hands out, also right after a refused guess) must read the object, so
//!   a failure to read is the key's doing, not a broken attacker. The
//!   provider checks one key per connection (it drops the connection at a
//!   bad one), so every guess is a connection: 100 000 guesses each for
//!   reads and writes. With the
//!   old sequential keys, the read succeeded at the 2nd try (key 1) and the
//!   write at the 3rd (key 2, the write key), which changed the object.
//! - `shm`: what a process of the server's own user can do: the provider's
//!   fast path copies with `process_vm_readv` from the reader's side and
//!   never looks at the key, so any key reads. The test asserts that (the
//!   README says it plainly): if a libfabric release starts checking keys
//!   there, it fails and the README must change. Another user (uid 65534,
//!   `setpriv`) cannot insert the server's address at all (the region file
//!   is 0600) and reads nothing, while the same attacking process run as
//!   the server's user reads the object.

mod common;

use std::collections::HashSet;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::ServerProcess;
use object_server::proto::{self, Response};
use object_server::testkit::access::segment;
use object_server::testkit::pattern;
use object_server::{ClientTransport, ObjectKey, layout};
use std::sync::Arc;

use ofi_connector::ofi::{Domain, DomainGuard, Endpoint, FiError, InfoQuery, Op, PeerAddr};
use ofi_connector::{Ofi, OfiAlloc, OfiConfig, OfiConnector, TransportConfig};
use proxy_core::mem::BufferPool;
use proxy_core::{Bytes, Connector, Key, Payload};

/// Keys guessed for reads, and again for writes, in the default run: every
/// guess over `tcp;ofi_rxm` costs a connection (the provider drops it at
/// the first bad key, and a connection checks one key): about 100 guesses
/// a second for each of the two tests here (8 attackers each), so 100 000
/// reads and 100 000 writes take about 12 minutes here.
const GUESSES: usize = 100_000;
/// The old scheme's keys (1, 2, 3, ... per registration), tried first.
const SEQUENTIAL: u64 = 1000;
/// Attackers guessing at once, each with its own endpoint and connection
/// (2: 40 guesses a second each; 8: 200 in all; 32 go no faster here, the
/// server's connection setup being the bottleneck).
const ATTACKERS: usize = 8;
/// Bytes read or written per guess.
const PROBE: usize = 64;

/// A server with a secret, objects put by an authorized client.
struct Victim {
    server: ServerProcess,
    secret: String,
    secret_file: PathBuf,
    client: OfiConnector,
    objects: Vec<(Key, Vec<u8>)>,
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret_file);
    }
}

impl Victim {
    fn start(provider: &str) -> Victim {
        let secret = format!("attack-test-{}-{:x}", std::process::id(), nanos());
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let secret_file = std::env::temp_dir().join(format!(
            "proxystore-attack-{}-{}.secret",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&secret_file, &secret).unwrap();
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let server = ServerProcess::start(
            provider,
            &["--secret-file", secret_file.to_str().expect("utf-8 path")],
        );
        let client = OfiConnector::new(
            OfiConfig::new(&server.addr)
                .with_provider(provider)
                .with_zero_copy(false)
                .with_secret(secret.clone()),
        )
        .unwrap();
        let objects = [4096usize, 100_000, 1 << 20]
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let data = pattern(len, 17 + i as u8);
                (client.put(Payload::from(data.clone())).unwrap(), data)
            })
            .collect();
        Victim {
            server,
            secret,
            secret_file,
            client,
            objects,
        }
    }

    /// Where the first object's payload is: its segment, and its offset there.
    fn first(&self) -> ObjectKey {
        self.objects[0].0.decode("ofi").unwrap()
    }

    /// What an authorized hello hands out: the fabric address and the read
    /// descriptor of the first object's segment (for the checks, never for
    /// the attacker's guesses).
    fn authorized(&self) -> (Vec<u8>, proto::SegmentInfo) {
        let mut s = TcpStream::connect(&self.server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let secret = object_server::Secret::new(&self.secret).unwrap();
        let Response::Hello { address, .. } =
            object_server::testkit::access::greet_with(&mut s, "ofi", Some(&secret))
        else {
            panic!("hello with the secret refused");
        };
        (address, segment(&mut s, self.first().seg, false))
    }
}

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Socket inodes of process `pid` (its `/proc/PID/fd` links `socket:[N]`).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_str()?.to_string();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The fabric addresses an attacker on the node builds for the server's
/// `tcp;ofi_rxm` endpoint: a `sockaddr_in` per IPv4 socket the server
/// listens on (`/proc/net/tcp`, readable by every user; the state `0A` is
/// LISTEN), except its control port. (Only the server's own sockets are
/// taken, so as not to touch other programs; a scan of the node's ports
/// finds the same ones, and only IPv4 is looked at.)
fn tcp_addresses_from_ports(pid: u32, control_port: u16) -> Vec<Vec<u8>> {
    let inodes = socket_inodes(pid);
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (ip, port) = f.get(1)?.split_once(':')?;
            let listening = *f.get(3)? == "0A";
            let inode: u64 = f.get(9)?.parse().ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            if !listening || !inodes.contains(&inode) || port == control_port {
                return None;
            }
            // /proc/net/tcp prints the address as the in-memory u32 (network
            // byte order) in hex: its native bytes are the address bytes.
            let ip = u32::from_str_radix(ip, 16).ok()?.to_ne_bytes();
            let mut sa = Vec::with_capacity(16);
            sa.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            sa.extend_from_slice(&port.to_be_bytes());
            sa.extend_from_slice(&ip);
            sa.extend_from_slice(&[0u8; 8]);
            Some(sa)
        })
        .collect()
}

/// The `shm` endpoint names of process `pid`, from its region files in
/// `/dev/shm` (`PID:UID:N`, a directory every user can list).
fn shm_addresses_from_files(pid: u32) -> Vec<Vec<u8>> {
    let prefix = format!("{pid}:");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && n.matches(':').count() == 2)
        .map(|n| format!("fi_shm://{n}\0").into_bytes())
        .collect();
    v.sort();
    v
}

/// A raw libfabric client: its own domain and endpoint, the server's
/// fabric address in its AV, no control connection, no secret.
struct Attacker {
    domain: Arc<Domain>,
    ep: Arc<Endpoint>,
    peer: PeerAddr,
    /// Receive buffers (from a transport on the same provider: neither
    /// `tcp;ofi_rxm` nor `shm` needs them registered, `FI_MR_LOCAL`).
    pool: BufferPool<OfiAlloc>,
    _ofi: Ofi,
}

/// How one guess ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The operation completed: the attacker read (these bytes) or wrote.
    Done(Option<Vec<u8>>),
    /// The server refused it (`tcp;ofi_rxm`: it dropped the connection, the
    /// operation failed with `FI_ECANCELED`), or it never completed.
    Refused,
}

/// The libfabric error number of a failed operation.
fn fi_code(e: &proxy_core::Error) -> Option<u32> {
    match e {
        proxy_core::Error::Connector { source, .. } => {
            source.downcast_ref::<FiError>().map(|f| f.code as u32)
        }
        _ => None,
    }
}

impl Attacker {
    fn new(provider: &str, address: &[u8]) -> Attacker {
        Self::try_new(provider, address).unwrap()
    }

    /// As `new`, or why the server's address could not be inserted.
    fn try_new(provider: &str, address: &[u8]) -> proxy_core::Result<Attacker> {
        let domain = Arc::new(Domain::open(&InfoQuery {
            provider: Some(provider.into()),
            domain: None,
        })?);
        assert!(!domain.mr_mode().local(), "{provider}: no FI_MR_LOCAL");
        let ep = Endpoint::open(&domain)?;
        let peer = ep.insert(address)?;
        let ofi = Ofi::new(&OfiConfig::new("").with_provider(provider))?;
        Ok(Attacker {
            domain,
            ep,
            peer,
            pool: BufferPool::new(ofi.allocator(), 1 << 20),
            _ofi: ofi,
        })
    }

    /// One `fi_read` (`write`: `fi_writemsg`) of `PROBE` bytes at the remote
    /// address (an offset unless `FI_MR_VIRT_ADDR`) `at` with `key`.
    ///
    /// `tcp;ofi_rxm` drops the connection at a bad key, and until this side
    /// has seen the shutdown, fails what is posted on it at once
    /// (`FI_ENOTCONN`) without asking the server: such a try does not count,
    /// the endpoint is progressed until the provider has closed the
    /// connection and the same key is posted again (on a new connection).
    fn attempt(&self, key: u64, at: u64, write: bool) -> Outcome {
        for _ in 0..10_000 {
            let r = if write {
                let src = Bytes::from(vec![0xEEu8; PROBE]);
                // Complete only once delivered: a write that never lands
                // never completes.
                let delivered = libfabric_sys::FI_DELIVERY_COMPLETE as u64;
                self.post_and_finish(|g, d| self.peer.write(g, at, key, src, delivered, d))
                    .map(|_| None)
            } else {
                let buf = self.pool.acquire(PROBE).unwrap();
                self.post_and_finish(|g, d| self.peer.read(g, at, key, buf, d))
                    .map(|b| Some(b.as_slice().to_vec()))
            };
            match r {
                Ok(b) => return Outcome::Done(b),
                Err(e) if fi_code(&e) == Some(libfabric_sys::FI_ENOTCONN) => {
                    for _ in 0..256 {
                        self.ep.progress(&self.domain.lock());
                    }
                    std::thread::yield_now();
                }
                Err(_) => return Outcome::Refused,
            }
        }
        panic!("no new connection to the server after 10 000 tries");
    }

    /// Post with `post`, progress until the operation completes (its
    /// result) or 3 s pass (a timeout error).
    fn post_and_finish<B: Send + 'static>(
        &self,
        post: impl FnOnce(&DomainGuard<'_>, Instant) -> proxy_core::Result<Op<B>>,
    ) -> proxy_core::Result<B> {
        let t = Instant::now();
        let op = post(&self.domain.lock(), t + Duration::from_secs(3))?;
        while !op.is_done() {
            self.ep.progress(&self.domain.lock());
            if t.elapsed() > Duration::from_secs(3) {
                op.cancel(&self.domain.lock());
                return Err(proxy_core::Error::Timeout {
                    connector: "ofi".into(),
                    operation: "attack",
                    after: t.elapsed(),
                });
            }
            std::thread::yield_now();
        }
        op.take().expect("done")
    }
}

/// The guessed keys: 0..SEQUENTIAL, then random ones (xorshift, seeded
/// from the clock), `n` in all.
fn guesses(n: usize) -> Vec<u64> {
    let mut x = nanos() | 1;
    let mut v: Vec<u64> = (0..SEQUENTIAL).collect();
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x);
    }
    v
}

/// A guess that completed: its index, its key, what it got.
type Hit = (usize, u64, Outcome);

/// Every guess of `keys` by `ATTACKERS` attackers at once; the guesses
/// (index, key) that completed, the number tried, and how long it took.
fn guess_all(
    provider: &str,
    address: &[u8],
    keys: &[u64],
    probe: impl Fn(&Attacker, u64) -> Outcome + Sync,
) -> (Vec<Hit>, usize, Duration) {
    let t = Instant::now();
    let chunk = keys.len().div_ceil(ATTACKERS);
    let probe = &probe;
    let results: Vec<(Vec<Hit>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                s.spawn(move || {
                    // Attacker n takes keys n, n + ATTACKERS, ... of the
                    // sequential ones (so each of them is tried early), then
                    // its share of the random ones.
                    let mut mine: Vec<(usize, u64)> = keys
                        .iter()
                        .enumerate()
                        .take(SEQUENTIAL as usize)
                        .skip(n)
                        .step_by(ATTACKERS)
                        .map(|(i, &k)| (i, k))
                        .collect();
                    let base = n * chunk;
                    mine.extend(
                        part.iter()
                            .enumerate()
                            .map(|(j, &k)| (base + j, k))
                            .filter(|&(i, _)| i >= SEQUENTIAL as usize),
                    );
                    let a = Attacker::new(provider, address);
                    let mut hits = Vec::new();
                    for &(i, k) in &mine {
                        let o = probe(&a, k);
                        if o != Outcome::Refused {
                            hits.push((i, k, o));
                        }
                    }
                    (hits, mine.len())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let tried = results.iter().map(|r| r.1).sum();
    let mut hits: Vec<_> = results.into_iter().flat_map(|r| r.0).collect();
    hits.sort_by_key(|h| h.0);
    (hits, tried, t.elapsed())
}

/// `GUESSES` keys, reads (100 000 and 100 000 writes took 706 s one after
/// the other in a debug build on this quiet 2-core machine; in CI the two run
/// side by side).
#[test]
fn guessed_keys_read_nothing_tcp() {
    guess_keys(GUESSES, false);
}

/// `GUESSES` keys, writes (see the reads).
#[test]
fn guessed_keys_write_nothing_tcp() {
    guess_keys(GUESSES, true);
}

/// `n` guessed keys (reads, or `write`s) at the first object of a server
/// over `tcp;ofi_rxm`, from an address built from its listening port: none
/// may complete, and every object must read back unchanged.
fn guess_keys(n: usize, write: bool) {
    let provider = "tcp;ofi_rxm";
    let v = Victim::start(provider);
    let (real_address, info) = v.authorized();
    let control_port: u16 = v.server.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let candidates = tcp_addresses_from_ports(v.server.pid().unwrap(), control_port);
    assert_eq!(
        candidates,
        vec![real_address.clone()],
        "the attacker builds the server's fabric address from its listening port"
    );
    let address = &candidates[0];
    // Offsets are small (no FI_MR_VIRT_ADDR): the first object's payload.
    let first = v.first();
    let at = first.offset + layout::HEADER as u64;
    let data = &v.objects[0].1;

    // Positive control: this attacker, given the key a hello hands out,
    // reads the object, also right after a refused guess on the same
    // endpoint (so below, nothing read is the key's doing).
    let real_key = u64::from_le_bytes(info.descriptor[2..10].try_into().unwrap());
    let control = Attacker::new(provider, address);
    let object = Outcome::Done(Some(data[..PROBE].to_vec()));
    assert_eq!(
        control.attempt(real_key, at, false),
        object,
        "the right key reads"
    );
    assert_eq!(control.attempt(!real_key, at, false), Outcome::Refused);
    assert_eq!(
        control.attempt(real_key, at, false),
        object,
        "after a refusal"
    );
    drop(control);

    let what = if write { "fi_writemsg" } else { "fi_read" };
    let keys = guesses(n);
    let (hits, tried, took) = guess_all(provider, address, &keys, |a, k| a.attempt(k, at, write));
    eprintln!(
        "{provider}: {what} with {tried} guessed keys in {took:?}: {} completed",
        hits.len()
    );
    assert_eq!(tried, n);
    let changed: Vec<usize> = v
        .objects
        .iter()
        .enumerate()
        .filter(|(_, (key, data))| {
            v.client.get(key).unwrap().expect("still stored")[..] != data[..]
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        hits.is_empty() && changed.is_empty(),
        "{provider}: {what} with a guessed key completed: {:?}; objects changed: {changed:?}",
        hits.iter()
            .take(5)
            .map(|(i, k, o)| format!(
                "try {} (key {k:#x}){}",
                i + 1,
                match o {
                    Outcome::Done(Some(b)) if b[..] == data[..PROBE] => " read the object's bytes",
                    Outcome::Done(Some(_)) => " read other bytes",
                    _ => "",
                }
            ))
            .collect::<Vec<_>>()
    );
}

/// The mappings of process `pid` of `len` bytes shared with other processes
/// (`/proc/PID/maps`, readable by the same user): where its segments are.
fn shared_mappings(pid: u32, len: u64) -> Vec<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let perms = f.next()?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            (perms.ends_with('s') && b - a == len).then_some(a)
        })
        .collect()
}

/// `shm`, a process of the server's user: the endpoint name comes from the
/// region files in `/dev/shm`, the segment's address from `/proc/PID/maps`,
/// and a read with a wrong key returns the object: libfabric 1.17's `shm`
/// copies with `process_vm_readv` from the reader's side (its fast path
/// for reads without `FI_DELIVERY_COMPLETE`) and never checks the key.
/// Nothing protects the server's memory from its own user's processes (who
/// may as well `process_vm_readv` or ptrace it); another user's cannot open
/// the 0600 region, nor attach (ptrace rules). If this test fails, `shm`
/// started checking keys: update the README's table.
#[test]
fn shm_same_user_reads_with_any_key() {
    let provider = "shm";
    let v = Victim::start(provider);
    let (real_address, info) = v.authorized();
    let pid = v.server.pid().unwrap();
    let candidates = shm_addresses_from_files(pid);
    assert_eq!(
        candidates,
        vec![real_address],
        "the attacker finds the server's shm endpoint name in /dev/shm"
    );
    let bases = shared_mappings(pid, info.len);
    assert!(
        bases.contains(&info.base),
        "the segment ({:#x}) is among the shared mappings of its size: {bases:x?}",
        info.base
    );
    let first = v.first();
    let at = info.base + first.offset + layout::HEADER as u64;
    let real_key = u64::from_le_bytes(info.descriptor[2..10].try_into().unwrap());
    let a = Attacker::new(provider, &candidates[0]);
    let object = Outcome::Done(Some(v.objects[0].1[..PROBE].to_vec()));
    for key in [0, 1, real_key ^ 1, !real_key] {
        assert_eq!(
            a.attempt(key, at, false),
            object,
            "shm: a read with key {key:#x} (the real one is {real_key:#x})"
        );
    }
}

/// The attack of `shm_another_user_reads_nothing`, for its child process:
/// `ADDRESS_HEX AT KEY...`.
const SHM_CHILD_ENV: &str = "PROXYSTORE_TEST_SHM_ATTACK";

/// The attacking process of `shm_another_user_reads_nothing` (which starts
/// it as the server's user and as another one): inserts the server's
/// address and reads with each key, printing one `ATTACK` line per step.
#[test]
#[ignore = "child-process entry point: the attacking process of shm_another_user_reads_nothing, started by it"]
fn shm_attacker_process() {
    let spec = std::env::var(SHM_CHILD_ENV).expect("started by shm_another_user_reads_nothing");
    let mut it = spec.split_whitespace();
    let hex = it.next().unwrap();
    let address: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let at: u64 = it.next().unwrap().parse().unwrap();
    let a = match Attacker::try_new("shm", &address) {
        Ok(a) => a,
        Err(e) => {
            println!("ATTACK insert refused: {e}");
            return;
        }
    };
    for key in it.map(|k| k.parse::<u64>().unwrap()) {
        match a.attempt(key, at, false) {
            Outcome::Done(Some(b)) => println!("ATTACK read {key}: {}", hexs(&b)),
            other => println!("ATTACK read {key}: {other:?}"),
        }
    }
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `shm`, another user of the node (uid 65534, `setpriv`) against the same
/// server: it cannot even insert the server's address (the region file is
/// 0600), so it reads nothing, with the right key or any other; the same
/// attacking process run as the server's user reads the object (the
/// control). Needs root to switch users (skipped otherwise, with a note).
#[test]
fn shm_another_user_reads_nothing() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("shm_another_user_reads_nothing: skipped (needs root for setpriv)");
        return;
    }
    let v = Victim::start("shm");
    let (address, info) = v.authorized();
    let name = String::from_utf8_lossy(&address);
    let file = format!(
        "/dev/shm/{}",
        name.trim_start_matches("fi_shm://").trim_end_matches('\0')
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "{file}: the server's region is its user's only"
    );
    let at = info.base + v.first().offset + layout::HEADER as u64;
    let real_key = u64::from_le_bytes(info.descriptor[2..10].try_into().unwrap());
    let spec = format!("{} {at} {real_key} 0 1", hexs(&address));
    let object = format!(": {}", hexs(&v.objects[0].1[..PROBE]));
    let exe = std::env::current_exe().unwrap();
    let run = |user: Option<&str>| {
        let mut cmd = match user {
            Some(u) => {
                let mut c = std::process::Command::new("setpriv");
                c.args([
                    &format!("--reuid={u}"),
                    &format!("--regid={u}"),
                    "--clear-groups",
                ])
                .arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        let out = cmd
            .args([
                "--exact",
                "shm_attacker_process",
                "--ignored",
                "--nocapture",
            ])
            .env(SHM_CHILD_ENV, &spec)
            .output()
            .expect("start the attacking process");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("ATTACK"))
            .map(str::to_string)
            .collect();
        assert!(
            !lines.is_empty(),
            "the attacking process reported nothing: {text}"
        );
        lines
    };
    let same = run(None);
    eprintln!("the server's user: {same:?}");
    assert_eq!(same.len(), 3, "{same:?}");
    assert!(
        same.iter().all(|l| l.ends_with(&object)),
        "the server's user reads the object with any key: {same:?}"
    );
    let other = run(Some("65534"));
    eprintln!("another user: {other:?}");
    assert!(
        other.iter().all(|l| !l.ends_with(&object)),
        "another user read the object: {other:?}"
    );
    assert!(other[0].starts_with("ATTACK insert refused"), "{other:?}");
}
