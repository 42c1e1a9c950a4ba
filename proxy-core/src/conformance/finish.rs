//! The end-of-case checks: `close` twice, no file descriptor left open into
//! the namespace, every operation after `close`, nothing stored left (and the
//! `leftovers` hook).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use super::Ctx;
use super::data::pattern;
use crate::connector::{Capabilities, Connector, ConnectorConfig, DynConnector, Payload};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::registry;

/// How long the operations after `close` may take together.
const AFTER_CLOSE_DEADLINE: Duration = Duration::from_secs(120);

pub(super) fn finish(ctx: &Ctx) -> std::result::Result<(), String> {
    let c = ctx.connector.clone();
    c.close().map_err(|e| format!("close failed: {e}"))?;
    c.close()
        .map_err(|e| format!("a second close failed (close must be idempotent): {e}"))?;
    let open = open_files_under(&ctx.config);
    if !open.is_empty() {
        return Err(format!(
            "close() left {} file descriptors of this process open into the namespace's \
             paths: {open:?}",
            open.len()
        ));
    }

    // Every operation after close, on its own thread: a hang is a failure.
    let (tx, rx) = mpsc::channel();
    let (config, caps) = (ctx.config.clone(), ctx.caps);
    let probe = c.clone();
    let prober = std::thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| after_close(&probe, &config, caps)));
        // Release the connector before answering: the last handle's drop may
        // stop a server, which must not race with the test process's exit.
        drop(probe);
        let _ = tx.send(r.map_err(|p| panic_message(&*p)));
    });
    let answer = rx.recv_timeout(AFTER_CLOSE_DEADLINE);
    if answer.is_ok() {
        let _ = prober.join();
    }
    match answer {
        Ok(Ok(())) => {}
        Ok(Err(m)) => return Err(format!("after close: {m}")),
        Err(_) => {
            return Err(format!(
                "operations after close did not return within {AFTER_CLOSE_DEADLINE:?}"
            ));
        }
    }

    // Nothing the case stored is left.
    let minted = ctx.recorder.minted.lock().unwrap().clone();
    let left = match stored_of(&*c, &minted) {
        Ok(left) => left,
        // A closed connector may refuse: ask a fresh instance on the namespace.
        Err(_) => match registry::connector_from_config(&ctx.config)
            .and_then(|fresh| stored_of(&*fresh, &minted))
        {
            Ok(left) => left,
            // Objects that do not outlive their instance may have gone with
            // it (a closed owner stops the server that held them).
            Err(_) if !ctx.caps.outlives_process => Vec::new(),
            Err(e) => {
                return Err(format!(
                    "a fresh instance cannot tell whether the case left objects: {e}"
                ));
            }
        },
    };
    if !left.is_empty() {
        return Err(format!(
            "{} of the {} objects stored during the case are left after it evicted them and \
             closed its connector: {left:?}",
            left.len(),
            minted.len()
        ));
    }
    if let Some(hook) = ctx.leftovers {
        let left = hook(&ctx.config);
        if !left.is_empty() {
            return Err(format!(
                "the namespace is not torn down after close: {left:?}"
            ));
        }
    }
    Ok(())
}

/// The absolute paths among a configuration's option values (a directory, a
/// socket file) that belong to it: at least two components deep, and not a
/// directory that many namespaces share (the temporary directories).
fn config_paths(v: &serde_json::Value, out: &mut Vec<std::path::PathBuf>) {
    use std::path::Path;
    match v {
        serde_json::Value::String(s) if s.starts_with('/') => {
            let p = Path::new(s);
            let shared = [std::env::temp_dir(), "/tmp".into(), "/dev/shm".into()];
            if p.components().count() > 2 && !shared.iter().any(|d| d == p) {
                out.push(p.to_path_buf());
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| config_paths(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| config_paths(x, out)),
        _ => {}
    }
}

/// The files at or under the paths of a configuration (see [`config_paths`]),
/// for the cases that check that nothing was written (empty for connectors
/// whose namespace is not in the file system: those rely on the `leftovers`
/// hook).
pub(super) fn files_under(config: &ConnectorConfig) -> std::collections::BTreeSet<String> {
    fn walk(p: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
        match std::fs::read_dir(p) {
            Ok(entries) => {
                for e in entries.flatten() {
                    walk(&e.path(), out);
                }
            }
            Err(_) if p.is_file() => {
                out.insert(p.display().to_string());
            }
            Err(_) => {}
        }
    }
    let mut paths = Vec::new();
    config_paths(&config.options, &mut paths);
    let mut out = std::collections::BTreeSet::new();
    for p in paths {
        walk(&p, &mut out);
    }
    out
}

/// The file descriptors of this process (`/proc/self/fd`) open on a file at or
/// under a path of the configuration (see [`config_paths`]), deleted or not.
/// Empty where `/proc` is not there.
fn open_files_under(config: &ConnectorConfig) -> Vec<String> {
    let mut paths = Vec::new();
    config_paths(&config.options, &mut paths);
    if paths.is_empty() {
        return Vec::new();
    }
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            let file = std::path::Path::new(t.strip_suffix(" (deleted)").unwrap_or(&t));
            paths
                .iter()
                .any(|p| file.starts_with(p))
                .then(|| t.into_owned())
        })
        .collect()
}

fn stored_of(c: &dyn Connector, keys: &[Key]) -> Result<Vec<Key>> {
    let mut left = Vec::new();
    for k in keys {
        if c.exists(k)? {
            left.push(k.clone());
        }
    }
    Ok(left)
}

/// The operations after `close`, as [`Connector::close`] documents them.
fn after_close(c: &DynConnector, config: &ConnectorConfig, caps: Capabilities) {
    assert_eq!(c.config(), *config, "config() changed by close");
    assert_eq!(c.capabilities(), caps, "capabilities() changed by close");
    assert_eq!(c.kind(), config.kind, "kind() after close");
    let refused = |op: &str, e: &Error| {
        assert!(
            !e.is_temporary(),
            "{op} after close failed with a temporary error, which asks callers to retry \
             a closed connector forever: {e}"
        );
    };
    let data = pattern(1000, 0xc1);
    let mut keys = Vec::new();
    match c.put(Payload::from(data.clone())) {
        Ok(k) => {
            match c.get(&k) {
                Ok(got) => assert_eq!(
                    got.as_ref(),
                    Some(&data),
                    "put after close returned a key, get does not return its object"
                ),
                Err(e) => refused("get", &e),
            }
            keys.push(k);
        }
        Err(e) => refused("put", &e),
    }
    match c.put_batch(vec![Payload::from(data.clone())]) {
        Ok(k) => keys.extend(k),
        Err(e) => refused("put_batch", &e),
    }
    let never = Key::from_bytes(vec![0x5a; 16]);
    match c.get(&never) {
        Ok(None) | Err(Error::InvalidKey { .. }) => {}
        Ok(Some(b)) => panic!(
            "get after close of a key never stored returned {} bytes",
            b.len()
        ),
        Err(e) => refused("get", &e),
    }
    match c.get_batch(&keys) {
        Ok(got) => {
            assert_eq!(
                got.len(),
                keys.len(),
                "get_batch after close: one result per key"
            );
            for g in got {
                assert_eq!(g.as_ref(), Some(&data), "get_batch after close");
            }
        }
        Err(e) => refused("get_batch", &e),
    }
    for k in &keys {
        match c.exists(k) {
            Ok(e) => assert!(e, "exists after close of an object put after close"),
            Err(e) => refused("exists", &e),
        }
        match c.evict(k) {
            Ok(()) => {}
            Err(e) => refused("evict", &e),
        }
        if let Ok(text) = c.key_to_string(k) {
            assert_eq!(
                c.parse_key(&text).ok().as_ref(),
                Some(k),
                "parse_key after close"
            );
        }
    }
    if let Some(d) = c.as_deferrable() {
        match d.new_key() {
            Ok(k) => match d.set(&k, Payload::from(data.clone())) {
                Ok(()) => {
                    if let Ok(got) = c.get(&k) {
                        assert_eq!(got.as_ref(), Some(&data), "get after set after close");
                    }
                    if let Err(e) = c.evict(&k) {
                        refused("evict", &e);
                    }
                }
                Err(e) => refused("set", &e),
            },
            Err(e) => refused("new_key", &e),
        }
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".into())
}
