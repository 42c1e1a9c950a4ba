//! The raw libdaos read loop the benchmarks compare the connector with: one
//! byte-array object opened once, read whole (each chunk's stamp and its
//! part of the object, the connector's scatter-gather list) with one
//! `daos_array_read` per call into a caller's buffer, blocking or on an event
//! queue. No keys, no checks, no receive pool: the ceiling of what libdaos
//! gives on this pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use daos_sys::{d_sg_list_t, daos_array_iod_t, daos_range_t};
use proxy_core::{Error, Key, Result};

use crate::connector::{DaosKey, DaosOptions, HEADER};
use crate::daos::{self, Array, Cont, Eq};
use crate::error::DaosError;
use crate::layout::{Layout, contiguous};

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
    ev: Box<daos_sys::daos_event_t>,
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
            ev: Box::new(daos_sys::daos_event_t::zeroed()),
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
        let api = self.array_api();
        let mut range = daos_range_t {
            rg_idx: 0,
            rg_len: self.layout.array_len(),
        };
        let mut iod = daos_array_iod_t {
            arr_nr: 1,
            arr_rgs: &mut range,
            arr_nr_short_read: 0,
            arr_nr_read: 0,
        };
        // The same scatter-gather list as the connector's: each chunk's
        // stamp, then its part of the object.
        let mut iovs = self.layout.iovs(
            self.header.as_mut_ptr(),
            self.stamps.as_mut_ptr(),
            contiguous(buf.as_mut_ptr()),
        );
        let mut sgl = d_sg_list_t {
            sg_nr: iovs.len() as u32,
            sg_nr_out: 0,
            sg_iovs: iovs.as_mut_ptr(),
        };
        let ev: *mut daos_sys::daos_event_t = if with_eq {
            let ev: *mut daos_sys::daos_event_t = &mut *self.ev;
            // SAFETY: the event is unused (fresh or finalised below).
            let rc = unsafe { (api.daos_event_init)(ev, self.eq.handle(), std::ptr::null_mut()) };
            if rc != 0 {
                return Err(DaosError::call(api, "daos_event_init", rc)
                    .into_error("raw read", Duration::ZERO));
            }
            ev
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: every pointer refers to memory that lives until the read
        // completed: a null event blocks; with an event, we wait for it below.
        let mut rc = unsafe {
            (api.daos_array_read)(
                self.array.oh,
                daos_sys::DAOS_TX_NONE,
                &mut iod,
                &mut sgl,
                ev,
            )
        };
        if with_eq {
            if rc == 0 {
                let mut done: *mut daos_sys::daos_event_t = std::ptr::null_mut();
                // SAFETY: waits (without limit: a benchmark tool) for the one event.
                let n = unsafe {
                    (api.daos_eq_poll)(self.eq.handle(), 1, daos_sys::DAOS_EQ_WAIT, 1, &mut done)
                };
                // SAFETY: the event completed (n == 1) and left the queue.
                rc = if n == 1 { unsafe { (*ev).ev_error } } else { n };
            }
            // SAFETY: completed (or never launched).
            unsafe { (api.daos_event_fini)(ev) };
        }
        if rc != 0 {
            return Err(
                DaosError::call(api, "daos_array_read", rc).into_error("raw read", Duration::ZERO)
            );
        }
        Ok(())
    }

    fn array_api(&self) -> &'static daos_sys::Api {
        self._cont.api()
    }
}
