//! Array I/O: the state of one operation ([`ArrayIo`]), at a fixed address
//! until it completes, the batches that keep many of them in flight on one
//! event queue, and the raw reader's single read.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use daos_sys::{d_iov_t, d_sg_list_t, daos_array_iod_t, daos_event_t, daos_range_t};

use super::exec::{Exec, execute};
use super::handles::{Array, Cont};
use super::runtime::Eq;
use super::sgl::{contiguous, dest_iov, iov, layout_iovs, pieces};
use crate::buffer::Dest;
use crate::error::{DaosError, Result};
use crate::layout::{HEADER, Layout};

/// Everything one array I/O uses, at fixed addresses until it completes.
pub(crate) struct ArrayIo {
    /// A write (`daos_array_write`), else a read.
    write: bool,
    array: Array,
    range: daos_range_t,
    iod: daos_array_iod_t,
    iovs: Vec<d_iov_t>,
    sgl: d_sg_list_t,
    pub(crate) header: [u8; HEADER],
    /// The stamps of chunks 1.. (written, or read into zeroed memory).
    pub(crate) stamps: Vec<u8>,
    pub(crate) dest: Dest,
    /// Payload parts written (kept alive until the write completes).
    _parts: Vec<Bytes>,
    _cont: Arc<Cont>,
}

impl ArrayIo {
    /// An I/O of object `oid` laid out as `layout`, with nothing to move yet.
    fn new(
        write: bool,
        cont: &Arc<Cont>,
        oid: daos_sys::daos_obj_id_t,
        layout: &Layout,
    ) -> Result<Box<ArrayIo>> {
        Ok(Box::new(ArrayIo {
            write,
            array: Array::open(cont, oid, layout.chunk)?,
            range: daos_range_t {
                rg_idx: 0,
                rg_len: layout.array_len(),
            },
            iod: empty_iod(),
            iovs: Vec::new(),
            sgl: empty_sgl(),
            header: [0u8; HEADER],
            stamps: Vec::new(),
            dest: Dest::None,
            _parts: Vec::new(),
            _cont: cont.clone(),
        }))
    }

    /// A write of object `oid` laid out as `layout`: `header`, the stamps,
    /// and the payload's own `parts`, no concatenation (DAOS only reads
    /// from the buffers of a write).
    pub(crate) fn write(
        cont: &Arc<Cont>,
        oid: daos_sys::daos_obj_id_t,
        layout: Layout,
        header: [u8; HEADER],
        parts: Vec<Bytes>,
    ) -> Result<Box<ArrayIo>> {
        let mut st = ArrayIo::new(true, cont, oid, &layout)?;
        st.header = header;
        st.stamps = layout.stamps(oid.lo);
        st._parts = parts;
        let hp: *mut u8 = st.header.as_mut_ptr();
        let sp: *mut u8 = st.stamps.as_mut_ptr();
        let iovs = layout_iovs(&layout, hp, sp, |r, v| {
            for (ptr, n) in pieces(&st._parts, r) {
                v.push(iov(ptr as *mut u8, n));
            }
        });
        st.iovs = iovs;
        st.wire();
        Ok(st)
    }

    /// A read of object `oid` laid out as `layout` (of `layout.len` bytes:
    /// 0 reads only the header): the stamps into zeroed memory, the object
    /// into a fresh [`Dest`].
    pub(crate) fn read(
        cont: &Arc<Cont>,
        oid: daos_sys::daos_obj_id_t,
        layout: Layout,
    ) -> Result<Box<ArrayIo>> {
        let mut st = ArrayIo::new(false, cont, oid, &layout)?;
        st.stamps = vec![0u8; layout.stamps_len()];
        st.dest = Dest::new(layout.len as usize).map_err(DaosError::Core)?;
        let hp: *mut u8 = st.header.as_mut_ptr();
        let sp: *mut u8 = st.stamps.as_mut_ptr();
        st.iovs = match dest_iov(&mut st.dest) {
            // Each chunk's bytes at their place in the destination.
            Some(d) => layout_iovs(&layout, hp, sp, contiguous(d.iov_buf.cast())),
            None => layout_iovs(&layout, hp, sp, |_, _| {}),
        };
        st.wire();
        Ok(st)
    }

    /// Point the iod and sgl at the state's own range and iovs (after boxing).
    fn wire(&mut self) {
        self.iod = daos_array_iod_t {
            arr_nr: 1,
            arr_rgs: &mut self.range,
            arr_nr_short_read: 0,
            arr_nr_read: 0,
        };
        self.sgl = d_sg_list_t {
            sg_nr: self.iovs.len() as u32,
            sg_nr_out: 0,
            sg_iovs: self.iovs.as_mut_ptr(),
        };
    }
}

fn empty_sgl() -> d_sg_list_t {
    d_sg_list_t {
        sg_nr: 0,
        sg_nr_out: 0,
        sg_iovs: std::ptr::null_mut(),
    }
}

fn empty_iod() -> daos_array_iod_t {
    daos_array_iod_t {
        arr_nr: 0,
        arr_rgs: std::ptr::null_mut(),
        arr_nr_short_read: 0,
        arr_nr_read: 0,
    }
}

/// Run the array I/Os `states` (each its `daos_array_read` or
/// `daos_array_write`), at most `window` in flight, until `deadline`. A
/// timeout if some I/O neither completed nor aborted (their memory is
/// leaked); otherwise each I/O's result code and the states, holding what
/// was read.
// Boxed: each state points into itself (iod to range, sgl to iovs), so
// it must not move while the vector grows.
#[allow(clippy::vec_box)]
pub(crate) fn run_all(
    cont: &Cont,
    mut states: Vec<Box<ArrayIo>>,
    window: usize,
    deadline: Instant,
) -> Result<(Exec, Vec<Box<ArrayIo>>)> {
    let api = cont.api();
    let mut eq = Eq::take(cont.rt())?;
    let exec = execute(&mut eq, states.len(), window, deadline, |i, ev| {
        let st = &mut states[i];
        let call = if st.write {
            api.daos_array_write
        } else {
            api.daos_array_read
        };
        // SAFETY: the boxed state (iod, sgl, iovs, header, stamps, and the
        // destination buffer or the payload parts) stays alive until the
        // operation completes (leaked below if it never does).
        unsafe {
            call(
                st.array.oh,
                daos_sys::DAOS_TX_NONE,
                &mut st.iod,
                &mut st.sgl,
                ev,
            )
        }
    });
    if exec.stuck {
        std::mem::forget(states);
        return Err(DaosError::Timeout);
    }
    Ok((exec, states))
}

/// Punch the objects `arrays` (`daos_array_destroy`), at most `window` in
/// flight, until `deadline`. A timeout if some punch neither completed nor
/// aborted (the handles are leaked); otherwise each punch's result code.
pub(crate) fn destroy_all(
    cont: &Cont,
    arrays: Vec<Array>,
    window: usize,
    deadline: Instant,
) -> Result<Exec> {
    let api = cont.api();
    let mut eq = Eq::take(cont.rt())?;
    let exec = execute(&mut eq, arrays.len(), window, deadline, |i, ev| {
        // SAFETY: the handle stays open until the operation completes.
        unsafe { (api.daos_array_destroy)(arrays[i].oh, daos_sys::DAOS_TX_NONE, ev) }
    });
    if exec.stuck {
        std::mem::forget(arrays);
        return Err(DaosError::Timeout);
    }
    Ok(exec)
}

/// The event of one operation at a time (the raw reader's), at a fixed
/// address.
#[derive(Debug)]
pub(crate) struct Event(Box<daos_event_t>);

impl Event {
    pub(crate) fn new() -> Event {
        Event(Box::new(daos_event_t::zeroed()))
    }
}

/// One read of the whole array range of `array` (laid out as `layout`):
/// each chunk's stamp into `header` and `stamps`, its part of the object
/// into `buf`, the connector's scatter-gather list. Blocking (a null event)
/// without `on`; with `on`, on that event queue and event, waited for with
/// `daos_eq_poll` (without limit: a benchmark tool's).
pub(crate) fn read_whole(
    array: &Array,
    layout: &Layout,
    header: &mut [u8; HEADER],
    stamps: &mut [u8],
    buf: &mut [u8],
    on: Option<(&Eq, &mut Event)>,
) -> Result<()> {
    let api = array.api;
    let mut range = daos_range_t {
        rg_idx: 0,
        rg_len: layout.array_len(),
    };
    let mut iod = daos_array_iod_t {
        arr_nr: 1,
        arr_rgs: &mut range,
        arr_nr_short_read: 0,
        arr_nr_read: 0,
    };
    // The same scatter-gather list as the connector's: each chunk's
    // stamp, then its part of the object.
    let mut iovs = layout_iovs(
        layout,
        header.as_mut_ptr(),
        stamps.as_mut_ptr(),
        contiguous(buf.as_mut_ptr()),
    );
    let mut sgl = d_sg_list_t {
        sg_nr: iovs.len() as u32,
        sg_nr_out: 0,
        sg_iovs: iovs.as_mut_ptr(),
    };
    let (ev, eqh): (*mut daos_event_t, _) = match on {
        Some((eq, ev)) => {
            let ev: *mut daos_event_t = &mut *ev.0;
            // SAFETY: the event is unused (fresh or finalised below).
            let rc = unsafe { (api.daos_event_init)(ev, eq.handle(), std::ptr::null_mut()) };
            if rc != 0 {
                return Err(DaosError::call(api, "daos_event_init", rc));
            }
            (ev, Some(eq.handle()))
        }
        None => (std::ptr::null_mut(), None),
    };
    // SAFETY: every pointer refers to memory that lives until the read
    // completed: a null event blocks; with an event, we wait for it below.
    let mut rc =
        unsafe { (api.daos_array_read)(array.oh, daos_sys::DAOS_TX_NONE, &mut iod, &mut sgl, ev) };
    if let Some(eqh) = eqh {
        if rc == 0 {
            let mut done: *mut daos_event_t = std::ptr::null_mut();
            // SAFETY: waits (without limit: a benchmark tool) for the one event.
            let n = unsafe { (api.daos_eq_poll)(eqh, 1, daos_sys::DAOS_EQ_WAIT, 1, &mut done) };
            // SAFETY: the event completed (n == 1) and left the queue.
            rc = if n == 1 { unsafe { (*ev).ev_error } } else { n };
        }
        // SAFETY: completed (or never launched).
        unsafe { (api.daos_event_fini)(ev) };
    }
    if rc != 0 {
        return Err(DaosError::call(api, "daos_array_read", rc));
    }
    Ok(())
}
