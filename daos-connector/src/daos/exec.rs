//! The executor: many operations in flight on one event queue, with a
//! deadline past which they are aborted (and, if they never complete,
//! leaked with their memory).

use std::ffi::c_int;
use std::time::{Duration, Instant};

use daos_sys::{Api, daos_event_t};

use super::runtime::Eq;
use crate::error::{DaosError, Result};

/// What [`execute`] did.
#[derive(Debug)]
pub(crate) struct Exec {
    /// Result code of each operation (0, or a negative `-DER_*`).
    pub(crate) rcs: Vec<c_int>,
    /// The deadline passed before every operation completed.
    pub(crate) timed_out: bool,
    /// Some operation neither completed nor aborted: the caller must leak
    /// whatever memory the operations use, and the queue is already leaked.
    pub(crate) stuck: bool,
}

impl Exec {
    /// The first failure as an error (a timeout first).
    pub(crate) fn check(&self, api: &'static Api, what: &'static str, i: usize) -> Result<()> {
        let rc = self.rcs[i];
        let aborted = rc == -daos_sys::der::DER_CANCELED || rc == -daos_sys::der::DER_OP_CANCELED;
        if self.timed_out && (rc == NOT_DONE || aborted) {
            return Err(DaosError::Timeout);
        }
        match self.rcs[i] {
            0 => Ok(()),
            rc => Err(DaosError::call(api, what, rc)),
        }
    }
}

/// Result code of an operation that did not complete before the deadline.
pub(crate) const NOT_DONE: c_int = i32::MIN;

/// The share of the time left that aborted operations get to complete:
/// in-flight operations are aborted a tenth (at most [`MAX_ABORT_GRACE`])
/// before the deadline, so that the call returns by the deadline.
const MAX_ABORT_GRACE: Duration = Duration::from_secs(1);

/// Run `n` operations on `eq`, at most `window` in flight: `launch(i, ev)`
/// starts operation `i` with completion event `ev` and returns the
/// immediate result code. Returns when all have completed or the deadline
/// is near (in-flight operations are then aborted, and abandoned if they
/// have not completed by the deadline).
pub(crate) fn execute(
    eq: &mut Eq,
    n: usize,
    window: usize,
    deadline: Instant,
    mut launch: impl FnMut(usize, *mut daos_event_t) -> c_int,
) -> Exec {
    let api = eq.rt.api;
    let eqh = eq.handle();
    let window = window.clamp(1, n.max(1));
    let mut rcs = vec![NOT_DONE; n];
    // Events live in boxes: their addresses must not change while in flight.
    let mut events: Vec<Box<daos_event_t>> = (0..window)
        .map(|_| Box::new(daos_event_t::zeroed()))
        .collect();
    // Which operation each event slot runs.
    let mut running: Vec<Option<usize>> = vec![None; window];
    let mut free: Vec<usize> = (0..window).rev().collect();
    let mut next = 0;
    let mut in_flight = 0usize;
    let mut timed_out = false;
    let mut leaked_events = false;
    let mut polled: Vec<*mut daos_event_t> = vec![std::ptr::null_mut(); window];
    let grace = (deadline.saturating_duration_since(Instant::now()) / 10).min(MAX_ABORT_GRACE);
    let abort_at = deadline - grace;

    loop {
        // Launch while there is room.
        while !timed_out && next < n {
            let Some(slot) = free.pop() else { break };
            let ev: *mut daos_event_t = &mut *events[slot];
            // SAFETY: the event is unused (fresh or finalised).
            let rc = unsafe { (api.daos_event_init)(ev, eqh, std::ptr::null_mut()) };
            if rc != 0 {
                rcs[next] = rc;
                next += 1;
                free.push(slot);
                continue;
            }
            let i = next;
            next += 1;
            let rc = launch(i, ev);
            if rc != 0 {
                // Refused before launch: the event never entered the queue.
                let mut done = false;
                // SAFETY: `ev` is initialised; a test does not block.
                unsafe { (api.daos_event_test)(ev, daos_sys::DAOS_EQ_NOWAIT, &mut done) };
                // SAFETY: as above; fini fails (and we leak) if it is running.
                if unsafe { (api.daos_event_fini)(ev) } != 0 {
                    std::mem::forget(std::mem::replace(
                        &mut events[slot],
                        Box::new(daos_event_t::zeroed()),
                    ));
                    leaked_events = true;
                }
                rcs[i] = rc;
                free.push(slot);
                continue;
            }
            running[slot] = Some(i);
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        let now = Instant::now();
        if !timed_out && now >= abort_at {
            timed_out = true;
            for (slot, r) in running.iter().enumerate() {
                if r.is_some() {
                    // SAFETY: the event is in flight on this queue.
                    unsafe { (api.daos_event_abort)(&mut *events[slot]) };
                }
            }
        }
        let limit = if timed_out { deadline } else { abort_at };
        if timed_out && now >= limit {
            // Neither completed nor aborted: leak every event still in
            // flight, and the queue (the library may still write to them).
            for (slot, r) in running.iter().enumerate() {
                if r.is_some() {
                    std::mem::forget(std::mem::replace(
                        &mut events[slot],
                        Box::new(daos_event_t::zeroed()),
                    ));
                }
            }
            eq.poison();
            return Exec {
                rcs,
                timed_out: true,
                stuck: true,
            };
        }
        let wait_us = limit
            .saturating_duration_since(now)
            .min(Duration::from_millis(100))
            .as_micros()
            .max(1) as i64;
        // SAFETY: `polled` has room for `window` pointers.
        let got =
            unsafe { (api.daos_eq_poll)(eqh, 1, wait_us, window as u32, polled.as_mut_ptr()) };
        if got < 0 {
            // The queue itself failed: treat like a timeout (abort, then leak).
            timed_out = true;
            continue;
        }
        for &ev in &polled[..got as usize] {
            let Some(slot) = events
                .iter_mut()
                .position(|e| std::ptr::eq(&**e as *const daos_event_t, ev))
            else {
                continue;
            };
            let Some(i) = running[slot].take() else {
                continue;
            };
            // SAFETY: the event has completed and left the queue.
            let err = unsafe { (*ev).ev_error };
            // SAFETY: completed events may be finalised.
            unsafe { (api.daos_event_fini)(ev) };
            rcs[i] = err;
            in_flight -= 1;
            free.push(slot);
        }
    }
    if leaked_events {
        // A refused launch left an event we could not finalise on the queue.
        eq.poison();
    }
    Exec {
        rcs,
        timed_out,
        stuck: false,
    }
}
