//! The hand-written declarations of `daos-sys` against bindgen's reading of
//! the real DAOS headers: every struct's size, alignment and field offsets,
//! and every function's exact signature. Runs only when the build script
//! found the headers (`has_daos`); without them there is nothing to compare.

#![cfg_attr(not(has_daos), allow(dead_code))]

#[cfg(has_daos)]
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code
)]
#[allow(clippy::all, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
mod c_types {
    include!(concat!(env!("OUT_DIR"), "/bindgen_types.rs"));
}

#[cfg(has_daos)]
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code
)]
#[allow(
    clippy::all,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn,
    missing_debug_implementations
)]
mod c_fns {
    // The hand-declared types stand in for the blocklisted C ones.
    pub use daos_sys::{
        d_iov_t, d_sg_list_t, daos_array_iod_t, daos_event_t, daos_handle_t, daos_obj_id_t,
        daos_prop_entry, daos_prop_t,
    };
    pub type daos_event = daos_event_t;
    pub type daos_pool_info_t = std::ffi::c_void;
    pub type daos_cont_info_t = std::ffi::c_void;
    include!(concat!(env!("OUT_DIR"), "/bindgen_fns.rs"));
}

/// Size, alignment and each field's offset of a hand-declared struct equal bindgen's.
#[cfg(has_daos)]
macro_rules! same_layout {
    ($t:ident { $($f:ident),* }) => {{
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(size_of::<daos_sys::$t>(), size_of::<c_types::$t>(), "size of {}", stringify!($t));
        assert_eq!(align_of::<daos_sys::$t>(), align_of::<c_types::$t>(), "align of {}", stringify!($t));
        $(
            assert_eq!(
                offset_of!(daos_sys::$t, $f),
                offset_of!(c_types::$t, $f),
                "offset of {}.{}", stringify!($t), stringify!($f)
            );
        )*
    }};
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: headers not found at build time (set DAOS_DIR to a DAOS 2.6 prefix)"
)]
fn struct_layouts_match_the_headers() {
    #[cfg(has_daos)]
    {
        same_layout!(daos_handle_t { cookie });
        same_layout!(daos_obj_id_t { lo, hi });
        same_layout!(d_iov_t {
            iov_buf,
            iov_buf_len,
            iov_len
        });
        same_layout!(d_sg_list_t {
            sg_nr,
            sg_nr_out,
            sg_iovs
        });
        same_layout!(daos_range_t { rg_idx, rg_len });
        same_layout!(daos_array_iod_t {
            arr_nr,
            arr_rgs,
            arr_nr_short_read,
            arr_nr_read
        });
        same_layout!(daos_event_t {
            ev_error,
            ev_private,
            ev_debug
        });
        same_layout!(daos_prop_t {
            dpp_nr,
            dpp_reserv,
            dpp_entries
        });
        same_layout!(daos_prop_co_roots { cr_oids });
        // The value union is anonymous in C (bindgen: `__bindgen_anon_1`).
        same_layout!(daos_prop_entry {
            dpe_type,
            dpe_flags,
            dpe_reserv
        });
        assert_eq!(
            std::mem::offset_of!(daos_sys::daos_prop_entry, dpe_val),
            std::mem::offset_of!(c_types::daos_prop_entry, __bindgen_anon_1)
        );
        assert_eq!(
            std::mem::size_of::<daos_sys::daos_prop_entry_val>(),
            std::mem::size_of::<u64>()
        );
    }
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: headers not found at build time (set DAOS_DIR to a DAOS 2.6 prefix)"
)]
fn function_signatures_match_the_headers() {
    #[cfg(has_daos)]
    {
        use daos_sys::types;
        // Each line compiles only if the C function (as bindgen declares it,
        // over daos-sys's own struct types) has exactly the declared type.
        let table: Vec<(&str, usize)> = vec![
            ("daos_init", c_fns::daos_init as types::daos_init as usize),
            ("daos_fini", c_fns::daos_fini as types::daos_fini as usize),
            (
                "daos_pool_connect2",
                c_fns::daos_pool_connect2 as types::daos_pool_connect as usize,
            ),
            (
                "daos_pool_disconnect",
                c_fns::daos_pool_disconnect as types::daos_pool_disconnect as usize,
            ),
            (
                "daos_cont_open2",
                c_fns::daos_cont_open2 as types::daos_cont_open as usize,
            ),
            (
                "daos_cont_close",
                c_fns::daos_cont_close as types::daos_cont_close as usize,
            ),
            (
                "daos_cont_alloc_oids",
                c_fns::daos_cont_alloc_oids as types::daos_cont_alloc_oids as usize,
            ),
            (
                "daos_obj_generate_oid2",
                c_fns::daos_obj_generate_oid2 as types::daos_obj_generate_oid as usize,
            ),
            (
                "daos_oclass_name2id",
                c_fns::daos_oclass_name2id as types::daos_oclass_name2id as usize,
            ),
            (
                "daos_array_open_with_attr",
                c_fns::daos_array_open_with_attr as types::daos_array_open_with_attr as usize,
            ),
            (
                "daos_array_close",
                c_fns::daos_array_close as types::daos_array_close as usize,
            ),
            (
                "daos_array_read",
                c_fns::daos_array_read as types::daos_array_read as usize,
            ),
            (
                "daos_array_write",
                c_fns::daos_array_write as types::daos_array_write as usize,
            ),
            (
                "daos_array_get_size",
                c_fns::daos_array_get_size as types::daos_array_get_size as usize,
            ),
            (
                "daos_array_destroy",
                c_fns::daos_array_destroy as types::daos_array_destroy as usize,
            ),
            (
                "daos_tx_open",
                c_fns::daos_tx_open as types::daos_tx_open as usize,
            ),
            (
                "daos_tx_close",
                c_fns::daos_tx_close as types::daos_tx_close as usize,
            ),
            (
                "daos_eq_create",
                c_fns::daos_eq_create as types::daos_eq_create as usize,
            ),
            (
                "daos_eq_destroy",
                c_fns::daos_eq_destroy as types::daos_eq_destroy as usize,
            ),
            (
                "daos_eq_poll",
                c_fns::daos_eq_poll as types::daos_eq_poll as usize,
            ),
            (
                "daos_event_init",
                c_fns::daos_event_init as types::daos_event_init as usize,
            ),
            (
                "daos_event_fini",
                c_fns::daos_event_fini as types::daos_event_fini as usize,
            ),
            (
                "daos_event_test",
                c_fns::daos_event_test as types::daos_event_test as usize,
            ),
            (
                "daos_event_abort",
                c_fns::daos_event_abort as types::daos_event_abort as usize,
            ),
            (
                "daos_kv_open",
                c_fns::daos_kv_open as types::daos_kv_open as usize,
            ),
            (
                "daos_kv_close",
                c_fns::daos_kv_close as types::daos_kv_close as usize,
            ),
            (
                "daos_kv_get",
                c_fns::daos_kv_get as types::daos_kv_get as usize,
            ),
            (
                "daos_kv_put",
                c_fns::daos_kv_put as types::daos_kv_put as usize,
            ),
            (
                "daos_kv_remove",
                c_fns::daos_kv_remove as types::daos_kv_remove as usize,
            ),
            (
                "daos_cont_query",
                c_fns::daos_cont_query as types::daos_cont_query as usize,
            ),
            (
                "daos_prop_alloc",
                c_fns::daos_prop_alloc as types::daos_prop_alloc as usize,
            ),
            (
                "daos_prop_free",
                c_fns::daos_prop_free as types::daos_prop_free as usize,
            ),
            ("d_errstr", c_fns::d_errstr as types::d_errstr as usize),
            ("d_errdesc", c_fns::d_errdesc as types::d_errdesc as usize),
        ];
        // The table covers every declared symbol, and each resolves.
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, daos_sys::SYMBOLS);
        assert!(table.iter().all(|(_, addr)| *addr != 0));
    }
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: headers not found at build time (set DAOS_DIR to a DAOS 2.6 prefix)"
)]
fn constants_match_the_headers() {
    #[cfg(has_daos)]
    {
        // Flag and enum values from the headers' own definitions.
        assert_eq!(daos_sys::DAOS_PC_RW, c_fns::DAOS_PC_RW);
        assert_eq!(daos_sys::DAOS_PC_RO, c_fns::DAOS_PC_RO);
        assert_eq!(daos_sys::DAOS_COO_RW, c_fns::DAOS_COO_RW);
        assert_eq!(daos_sys::DAOS_COO_RO, c_fns::DAOS_COO_RO);
        assert_eq!(
            daos_sys::DAOS_OT_ARRAY_BYTE,
            c_fns::daos_otype_t_DAOS_OT_ARRAY_BYTE
        );
        assert_eq!(
            daos_sys::DAOS_OT_KV_HASHED,
            c_fns::daos_otype_t_DAOS_OT_KV_HASHED
        );
        assert_eq!(
            daos_sys::OID_FMT_TYPE_SHIFT as u64,
            c_fns::OID_FMT_TYPE_SHIFT as u64
        );
        assert_eq!(
            daos_sys::DAOS_COND_KEY_INSERT,
            c_fns::DAOS_COND_DKEY_INSERT as u64
        );
        assert_eq!(
            daos_sys::DAOS_PROP_CO_ROOTS,
            c_fns::daos_cont_props_DAOS_PROP_CO_ROOTS
        );
        assert_eq!(
            daos_sys::DAOS_PROP_CO_LAYOUT_TYPE,
            c_fns::daos_cont_props_DAOS_PROP_CO_LAYOUT_TYPE
        );
        for (ours, theirs) in [
            (
                daos_sys::DAOS_PROP_CO_LAYOUT_UNKNOWN,
                c_fns::DAOS_PROP_CO_LAYOUT_UNKNOWN as u64,
            ),
            (
                daos_sys::DAOS_PROP_CO_LAYOUT_POSIX,
                c_fns::DAOS_PROP_CO_LAYOUT_POSIX as u64,
            ),
            (
                daos_sys::DAOS_PROP_CO_LAYOUT_PYTHON,
                c_fns::DAOS_PROP_CO_LAYOUT_PYTHON as u64,
            ),
        ] {
            assert_eq!(ours, theirs);
        }
        use daos_sys::der::*;
        for (ours, theirs) in [
            (DER_NONEXIST, c_fns::daos_errno_DER_NONEXIST),
            (DER_NO_PERM, c_fns::daos_errno_DER_NO_PERM),
            (DER_TIMEDOUT, c_fns::daos_errno_DER_TIMEDOUT),
            (DER_UNREACH, c_fns::daos_errno_DER_UNREACH),
            (DER_HG_FATAL, c_fns::daos_errno_DER_HG_FATAL),
            (DER_NOSPACE, c_fns::daos_errno_DER_NOSPACE),
            (DER_TX_RESTART, c_fns::daos_errno_DER_TX_RESTART),
            (DER_AGENT_COMM, c_fns::daos_errno_DER_AGENT_COMM),
            (DER_CONT_NONEXIST, c_fns::daos_errno_DER_CONT_NONEXIST),
            (DER_EXCLUDED, c_fns::daos_errno_DER_EXCLUDED),
            (DER_CANCELED, c_fns::daos_errno_DER_CANCELED),
            (DER_SHUTDOWN, c_fns::daos_errno_DER_SHUTDOWN),
        ] {
            assert_eq!(ours as i64, theirs as i64);
        }
    }
}
