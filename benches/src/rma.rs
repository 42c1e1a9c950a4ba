//! A thin safe layer over MPI one-sided communication for the `MPI_Get`
//! reference of the MPI benchmark (rsmpi 0.8 has no RMA windows): a window
//! of memory allocated by MPI on every rank of a communicator
//! (`MPI_Win_allocate`, which MPI implementations back with shared memory
//! between ranks on one node), and passive-target reads from it
//! (`MPI_Win_lock(MPI_LOCK_SHARED, MPI_MODE_NOCHECK)`, `MPI_Get`,
//! `MPI_Win_unlock`).

use std::os::raw::{c_int, c_void};

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;
use proxy_core::{Error, Result};

/// An MPI window: `len` bytes of this rank's memory, readable by the others.
/// Creating and dropping it are collective: every rank of the communicator
/// does both, in the same order.
pub struct Window {
    win: ffi::MPI_Win,
    base: *mut u8,
    len: usize,
}

fn check(what: &str, rc: c_int) -> Result<()> {
    if rc == ffi::MPI_SUCCESS as c_int {
        Ok(())
    } else {
        Err(Error::permanent(
            "mpi",
            "rma",
            format!("{what} failed ({rc})"),
        ))
    }
}

/// Largest count of one `MPI_Get` (counts are C `int`s).
const CHUNK: usize = 1 << 30;

impl Window {
    /// Allocate `len` bytes on this rank (0 on ranks that expose nothing),
    /// collectively over `comm`.
    pub fn allocate(comm: &SimpleCommunicator, len: usize) -> Result<Window> {
        let mut base: *mut u8 = std::ptr::null_mut();
        // SAFETY: a zeroed handle is a valid out-parameter; MPI writes it.
        let mut win: ffi::MPI_Win = unsafe { std::mem::zeroed() };
        // SAFETY: `comm` is a live communicator; `base` and `win` are valid
        // out-parameters; displacement unit 1 (bytes); no info hints.
        let rc = unsafe {
            ffi::MPI_Win_allocate(
                len as ffi::MPI_Aint,
                1,
                ffi::RSMPI_INFO_NULL,
                comm.as_raw(),
                (&raw mut base).cast::<c_void>(),
                &mut win,
            )
        };
        check("MPI_Win_allocate", rc)?;
        Ok(Window { win, base, len })
    }

    /// This rank's part of the window, writable (before others read it).
    pub fn local_mut(&mut self) -> &mut [u8] {
        if self.len == 0 || self.base.is_null() {
            return &mut [];
        }
        // SAFETY: MPI allocated `len` bytes at `base` for this rank; they
        // live until `MPI_Win_free` (drop); `&mut self` makes this the only
        // access from this process.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }

    /// Read `dst.len()` bytes from the start of rank `target`'s part into
    /// `dst` (passive target: `target` takes no part), complete on return.
    pub fn get(&self, target: i32, dst: &mut [u8]) -> Result<()> {
        // SAFETY: a shared lock on a live window. MPI_MODE_NOCHECK: nobody
        // takes an exclusive lock on it (the window is written before the
        // reads start, locally), so MPI may skip the lock protocol with the
        // target (a shared-memory window is then read with a plain copy).
        check("MPI_Win_lock", unsafe {
            ffi::MPI_Win_lock(
                ffi::MPI_LOCK_SHARED as c_int,
                target,
                ffi::MPI_MODE_NOCHECK as c_int,
                self.win,
            )
        })?;
        let mut r = Ok(());
        for (i, chunk) in dst.chunks_mut(CHUNK).enumerate() {
            // SAFETY: `chunk` is writable memory of this process for the
            // whole epoch (it is borrowed until the unlock below completes
            // the get); the target range is checked by MPI against its window.
            r = check("MPI_Get", unsafe {
                ffi::MPI_Get(
                    chunk.as_mut_ptr().cast::<c_void>(),
                    chunk.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    target,
                    (i * CHUNK) as ffi::MPI_Aint,
                    chunk.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    self.win,
                )
            });
            if r.is_err() {
                break;
            }
        }
        // SAFETY: ends the epoch opened above; completes the gets.
        check("MPI_Win_unlock", unsafe {
            ffi::MPI_Win_unlock(target, self.win)
        })?;
        r
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: frees the window allocated in `allocate`, once (collective:
        // every rank drops its window at the same point of the benchmark).
        unsafe { ffi::MPI_Win_free(&mut self.win) };
    }
}
