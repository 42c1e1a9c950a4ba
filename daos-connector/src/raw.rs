//! The raw libdaos read loop the benchmarks compare the connector with: one
//! byte-array object opened once, read whole (each chunk's stamp and its
//! part of the object, the connector's scatter-gather list) with one
//! `daos_array_read` per call into a caller's buffer, blocking or on an event
//! queue. No keys, no checks, no receive pool: the ceiling of what libdaos
//! gives on this pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_core::{Error, Key, Result};

use crate::config::DaosOptions;
use crate::daos::array::{Event, read_whole};
use crate::daos::{self, Array, Cont, Eq};
use crate::key::DaosKey;
use crate::layout::{HEADER, Layout};

/// An open array object to read in a loop.
#[derive(Debug)]
pub struct RawReader {
    _cont: Arc<Cont>,
    array: Array,
    len: usize,
    layout: Layout,
    header: Box<[u8; HEADER]>,
    stamps: Vec<u8>,
    eq: Eq,
    ev: Event,
}

impl RawReader {
    /// Open the object of `key` (a key from a connector with `opts`).
    pub fn open(opts: &DaosOptions, key: &Key) -> Result<RawReader> {
        let t = Duration::from_millis(opts.timeout_ms);
        let k: DaosKey = key.decode(crate::KIND)?;
        if k.entry.is_some() {
            return Err(Error::InvalidKey {
                connector: crate::KIND.into(),
                reason: "the raw reader reads array-layout keys, not pydaos ones".into(),
            });
        }
        let cont = daos::container(
            opts.system.as_deref().unwrap_or(""),
            &opts.pool,
            &opts.container,
            Instant::now() + t,
        )
        .map_err(|e| e.into_error("raw open", t))?;
        let array = Array::open(&cont, k.oid(), opts.chunk_size)
            .map_err(|e| e.into_error("raw open", t))?;
        let eq = Eq::take(cont.rt()).map_err(|e| e.into_error("raw open", t))?;
        Ok(RawReader {
            eq,
            ev: Event::new(),
            _cont: cont,
            array,
            len: k.len as usize,
            layout: Layout::new(opts.chunk_size, k.len),
            header: Box::new([0; HEADER]),
            stamps: vec![0; Layout::new(opts.chunk_size, k.len).stamps_len()],
        })
    }

    /// Object length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the object is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One blocking read (null event) of the whole object into `buf`
    /// (exactly [`RawReader::len`] bytes).
    pub fn read_into(&mut self, buf: &mut [u8]) -> Result<()> {
        self.read(buf, false)
    }

    /// One read of the whole object into `buf` on an event queue, waited
    /// for with `daos_eq_poll` (the connector's mechanics, without its
    /// checks and bookkeeping).
    pub fn read_into_eq(&mut self, buf: &mut [u8]) -> Result<()> {
        self.read(buf, true)
    }

    fn read(&mut self, buf: &mut [u8], with_eq: bool) -> Result<()> {
        if buf.len() != self.len {
            return Err(Error::config(
                crate::KIND,
                format!("raw read of {} bytes into {}", self.len, buf.len()),
            ));
        }
        let on = if with_eq {
            Some((&self.eq, &mut self.ev))
        } else {
            None
        };
        read_whole(
            &self.array,
            &self.layout,
            &mut self.header,
            &mut self.stamps,
            buf,
            on,
        )
        .map_err(|e| e.into_error("raw read", Duration::ZERO))
    }
}
