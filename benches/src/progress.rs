//! A one-line progress display on stderr, quiet when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    tty: bool,
    start: Instant,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress {
            tty: enabled && std::io::stderr().is_terminal(),
            start: Instant::now(),
        }
    }

    pub fn say(&self, what: &str) {
        if self.tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[2K[{:6.1}s] {what}",
                self.start.elapsed().as_secs_f64()
            );
            let _ = e.flush();
        }
    }

    pub fn done(&self) {
        if self.tty {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}
