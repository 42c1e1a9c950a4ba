//! `-DER_*` codes as [`DaosError`]s: their text from libdaos, and which
//! of them are transient.

use std::ffi::c_int;

use daos_sys::Api;
use daos_sys::der::*;

use crate::error::DaosError;

impl DaosError {
    pub(crate) fn call(api: &Api, call: &'static str, rc: c_int) -> DaosError {
        DaosError::Der {
            call,
            rc,
            text: api.describe(rc),
            temporary: Self::temporary_rc(rc),
        }
    }

    /// Whether a `-DER_*` code is transient (retrying later may work).
    pub(crate) fn temporary_rc(rc: c_int) -> bool {
        matches!(
            -rc,
            DER_TIMEDOUT
                | DER_UNREACH
                | DER_BUSY
                | DER_AGAIN
                | DER_CANCELED
                | DER_OOG
                | DER_HG
                | DER_HG_FATAL
                | DER_EXCLUDED
                | DER_NOREPLY
                | DER_GRPVER
                | DER_STALE
                | DER_NOTLEADER
                | DER_SHUTDOWN
                | DER_INPROGRESS
                | DER_TX_RESTART
                | DER_OP_CANCELED
                | DER_TX_BUSY
                | DER_FETCH_AGAIN
                | DER_TX_UNCERTAIN
                | DER_AGENT_COMM
                | DER_TGT_RETRY
                | DER_NO_SERVICE
                | DER_UPDATE_AGAIN
                | DER_OVERLOAD_RETRY
                | DER_NOMEM
                | DER_NOSPACE
        )
    }
}
