//! The one `inotify(7)` wrapper of the workspace: wait for a file to appear
//! in a directory without polling (the file connector's `wait_for`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// An inotify instance watching one directory for entries created or moved
/// into it. Closed on drop.
#[derive(Debug)]
pub struct DirWatch {
    fd: OwnedFd,
}

impl DirWatch {
    /// Start watching `dir` (events before this call are not seen: check
    /// for the file after creating the watch, then wait).
    pub fn new(dir: &Path) -> io::Result<DirWatch> {
        let cpath = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // SAFETY: inotify_init1 takes flags only; the result is checked.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is an inotify descriptor and `cpath` a NUL-terminated
        // string that outlives the call; the result is checked.
        let wd = unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                cpath.as_ptr(),
                libc::IN_CREATE | libc::IN_MOVED_TO,
            )
        };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(DirWatch { fd })
    }

    /// Wait until an entry named `name` is created in (or moved into) the
    /// directory, for at most `timeout`. `Ok(true)` when it was seen,
    /// `Ok(false)` on timeout or when the kernel's event queue overflowed
    /// (the caller re-checks the file system either way).
    pub fn wait_for_name(&self, name: &[u8], timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(false);
            }
            // SAFETY: `buf` is writable for `buf.len()` bytes; the result is checked.
            let got = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast::<libc::c_void>(),
                    buf.len(),
                )
            };
            if got < 0 {
                let e = io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) {
                    continue;
                }
                return Err(e);
            }
            match scan(&buf[..got as usize], name) {
                Scan::Found | Scan::Overflow => return Ok(true),
                Scan::NotFound => {}
            }
        }
    }
}

enum Scan {
    Found,
    NotFound,
    Overflow,
}

/// Walk `struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }` records.
fn scan(mut events: &[u8], name: &[u8]) -> Scan {
    const HEADER: usize = 16;
    while events.len() >= HEADER {
        let word = |i: usize| u32::from_ne_bytes(events[i..i + 4].try_into().unwrap());
        let mask = word(4);
        let len = word(12) as usize;
        if mask & libc::IN_Q_OVERFLOW != 0 {
            return Scan::Overflow;
        }
        let end = (HEADER + len).min(events.len());
        let raw = &events[HEADER..end];
        let ev_name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        if ev_name == name {
            return Scan::Found;
        }
        events = &events[end..];
    }
    Scan::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_file_created_by_another_thread_and_times_out_otherwise() {
        let dir = std::env::temp_dir().join(format!("ps-inotify-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = DirWatch::new(&dir).unwrap();
        let t0 = Instant::now();
        assert!(
            !w.wait_for_name(b"absent", Duration::from_millis(30))
                .unwrap()
        );
        assert!(t0.elapsed() >= Duration::from_millis(25));
        let d2 = dir.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(d2.join("other"), b"x").unwrap();
            std::fs::write(d2.join("target"), b"x").unwrap();
        });
        assert!(w.wait_for_name(b"target", Duration::from_secs(5)).unwrap());
        h.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            DirWatch::new(&dir).is_err(),
            "watching a missing directory fails"
        );
    }
}
