//! The part of libibverbs' C interface (`<infiniband/verbs.h>`, rdma-core)
//! that [`super::sys`] uses, written out by hand: the structs it fills or
//! reads, the enum and flag values it passes, the exported functions (found
//! at run time with `dlopen("libibverbs.so.1")`/`dlsym`, so a binary starts
//! on a machine without libibverbs and only loses the verbs channel), and
//! the header's four inline data-path calls, made as the header makes them:
//! through the `ops` table of the object's context.
//!
//! Only what is used is here. Structs that libibverbs fills are complete
//! (every field, so their size is right); structs only read through a
//! pointer that libibverbs owns are complete too, so that the layout test
//! can pin them whole. Members of C unions that are never touched stand as
//! placeholders of the union's size and alignment. The test at
//! the bottom compiles a C program against the installed header and
//! compares every size, alignment, offset and constant defined here, and
//! the type of every function and ops-table entry.
//!
//! The header's own tricks, followed here:
//! - `ibv_query_port` is a macro over an inline that, for a context with
//!   the extended ops, calls `verbs_context.query_port(…, sizeof(attr))`,
//!   else memsets the attributes and calls the exported `ibv_query_port`
//!   with them cast to `struct _compat_ibv_port_attr *`. Both reach
//!   libibverbs' `__lib_query_port`; the exported one fills every field up
//!   to `flags` (the compat struct ends there) and leaves the zeroed
//!   `port_cap_flags2`. [`super::sys`] takes the exported path, which needs
//!   no `struct verbs_context` layout, and reads no field after `lid`.
//! - `ibv_query_gid_table` is an inline calling `_ibv_query_gid_table`
//!   with `sizeof(struct ibv_gid_entry)` as its last argument
//!   ([`query_gid_table`]).
//! - `ibv_reg_mr` is a macro that calls the exported `ibv_reg_mr` when the
//!   access flags are a constant without `IBV_ACCESS_OPTIONAL_RANGE` bits
//!   (all of ours), else `ibv_reg_mr_iova2` with `iova = addr`; the
//!   exported `ibv_reg_mr` itself is that `ibv_reg_mr_iova2` call.
//! - `ibv_post_send`, `ibv_post_recv`, `ibv_poll_cq` and
//!   `ibv_req_notify_cq` are inlines calling `context->ops.<name>`
//!   ([`post_send`], [`post_recv`], [`poll_cq`], [`req_notify_cq`]).
//!
//! Functions are looked up with `dlsym`, which yields a symbol's default
//! version (`IBVERBS_1.1` for the classic verbs), the one a program linked
//! against the header gets. The library stays loaded for the life of the
//! process, so the function pointers never dangle.

#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::io;
use std::sync::OnceLock;

// ---- Enum and flag values ---------------------------------------------

/// `enum ibv_port_state`
pub const IBV_PORT_ACTIVE: c_uint = 4;

/// `enum ibv_gid_type` (in `ibv_gid_entry.gid_type`)
pub const IBV_GID_TYPE_IB: u32 = 0;
pub const IBV_GID_TYPE_ROCE_V2: u32 = 2;

/// `enum ibv_access_flags`
pub const IBV_ACCESS_LOCAL_WRITE: c_int = 1;
pub const IBV_ACCESS_REMOTE_WRITE: c_int = 1 << 1;
pub const IBV_ACCESS_REMOTE_READ: c_int = 1 << 2;

/// `enum ibv_qp_type`
pub const IBV_QPT_RC: c_uint = 2;

/// `enum ibv_qp_state`
pub const IBV_QPS_INIT: c_uint = 1;
pub const IBV_QPS_RTR: c_uint = 2;
pub const IBV_QPS_RTS: c_uint = 3;
pub const IBV_QPS_SQE: c_uint = 5;
pub const IBV_QPS_ERR: c_uint = 6;

/// `enum ibv_qp_attr_mask`
pub const IBV_QP_STATE: c_int = 1 << 0;
pub const IBV_QP_ACCESS_FLAGS: c_int = 1 << 3;
pub const IBV_QP_PKEY_INDEX: c_int = 1 << 4;
pub const IBV_QP_PORT: c_int = 1 << 5;
pub const IBV_QP_AV: c_int = 1 << 7;
pub const IBV_QP_PATH_MTU: c_int = 1 << 8;
pub const IBV_QP_TIMEOUT: c_int = 1 << 9;
pub const IBV_QP_RETRY_CNT: c_int = 1 << 10;
pub const IBV_QP_RNR_RETRY: c_int = 1 << 11;
pub const IBV_QP_RQ_PSN: c_int = 1 << 12;
pub const IBV_QP_MAX_QP_RD_ATOMIC: c_int = 1 << 13;
pub const IBV_QP_MIN_RNR_TIMER: c_int = 1 << 15;
pub const IBV_QP_SQ_PSN: c_int = 1 << 16;
pub const IBV_QP_MAX_DEST_RD_ATOMIC: c_int = 1 << 17;
pub const IBV_QP_DEST_QPN: c_int = 1 << 20;

/// `enum ibv_wr_opcode`
pub const IBV_WR_RDMA_WRITE: c_uint = 0;
pub const IBV_WR_SEND: c_uint = 2;

/// `enum ibv_send_flags`
pub const IBV_SEND_SIGNALED: c_uint = 1 << 1;
pub const IBV_SEND_INLINE: c_uint = 1 << 3;

/// `enum ibv_wc_status`
pub const IBV_WC_SUCCESS: c_uint = 0;

// ---- Structs ----------------------------------------------------------

/// Plain C data for which all-zero bytes are a valid value (integers,
/// arrays of them, raw pointers, `Option` of function pointers), as C code
/// gets with `= {}` or `memset`.
///
/// # Safety
/// Implement only for types whose every field is such data.
pub unsafe trait Zeroed: Sized {
    fn zeroed() -> Self {
        // SAFETY: the implementor guarantees all-zero bytes are valid.
        unsafe { std::mem::zeroed() }
    }
}

/// `struct ibv_device`: opaque, only handled by pointer.
#[repr(C)]
pub struct ibv_device {
    _opaque: [u8; 0],
}

/// `struct ibv_srq`, `struct ibv_ah`: opaque, only in pointer fields.
#[repr(C)]
pub struct ibv_srq {
    _opaque: [u8; 0],
}

/// `struct _compat_ibv_port_attr`: what the exported `ibv_query_port`
/// declares it takes; an `ibv_port_attr` is passed as the header does.
#[repr(C)]
pub struct _compat_ibv_port_attr {
    _opaque: [u8; 0],
}

/// `union ibv_gid`: 16 raw bytes; the union's other member (two `__be64`)
/// gives it the alignment of 8 kept here.
#[repr(C, align(8))]
#[derive(Clone, Copy, Default)]
pub struct ibv_gid {
    pub raw: [u8; 16],
}

/// `struct ibv_gid_entry`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_gid_entry {
    pub gid: ibv_gid,
    pub gid_index: u32,
    pub port_num: u32,
    /// `enum ibv_gid_type`
    pub gid_type: u32,
    pub ndev_ifindex: u32,
}

/// `struct ibv_device_attr`
#[repr(C)]
pub struct ibv_device_attr {
    pub fw_ver: [c_char; 64],
    pub node_guid: u64,
    pub sys_image_guid: u64,
    pub max_mr_size: u64,
    pub page_size_cap: u64,
    pub vendor_id: u32,
    pub vendor_part_id: u32,
    pub hw_ver: u32,
    pub max_qp: c_int,
    pub max_qp_wr: c_int,
    pub device_cap_flags: c_uint,
    pub max_sge: c_int,
    pub max_sge_rd: c_int,
    pub max_cq: c_int,
    pub max_cqe: c_int,
    pub max_mr: c_int,
    pub max_pd: c_int,
    pub max_qp_rd_atom: c_int,
    pub max_ee_rd_atom: c_int,
    pub max_res_rd_atom: c_int,
    pub max_qp_init_rd_atom: c_int,
    pub max_ee_init_rd_atom: c_int,
    /// `enum ibv_atomic_cap`
    pub atomic_cap: c_uint,
    pub max_ee: c_int,
    pub max_rdd: c_int,
    pub max_mw: c_int,
    pub max_raw_ipv6_qp: c_int,
    pub max_raw_ethy_qp: c_int,
    pub max_mcast_grp: c_int,
    pub max_mcast_qp_attach: c_int,
    pub max_total_mcast_qp_attach: c_int,
    pub max_ah: c_int,
    pub max_fmr: c_int,
    pub max_map_per_fmr: c_int,
    pub max_srq: c_int,
    pub max_srq_wr: c_int,
    pub max_srq_sge: c_int,
    pub max_pkeys: u16,
    pub local_ca_ack_delay: u8,
    pub phys_port_cnt: u8,
}

/// `struct ibv_port_attr`
#[repr(C)]
pub struct ibv_port_attr {
    /// `enum ibv_port_state`
    pub state: c_uint,
    /// `enum ibv_mtu`
    pub max_mtu: c_uint,
    /// `enum ibv_mtu`
    pub active_mtu: c_uint,
    pub gid_tbl_len: c_int,
    pub port_cap_flags: u32,
    pub max_msg_sz: u32,
    pub bad_pkey_cntr: u32,
    pub qkey_viol_cntr: u32,
    pub pkey_tbl_len: u16,
    pub lid: u16,
    pub sm_lid: u16,
    pub lmc: u8,
    pub max_vl_num: u8,
    pub sm_sl: u8,
    pub subnet_timeout: u8,
    pub init_type_reply: u8,
    pub active_width: u8,
    pub active_speed: u8,
    pub phys_state: u8,
    pub link_layer: u8,
    pub flags: u8,
    pub port_cap_flags2: u16,
}

/// `struct ibv_global_route`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_global_route {
    pub dgid: ibv_gid,
    pub flow_label: u32,
    pub sgid_index: u8,
    pub hop_limit: u8,
    pub traffic_class: u8,
}

/// `struct ibv_ah_attr`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_ah_attr {
    pub grh: ibv_global_route,
    pub dlid: u16,
    pub sl: u8,
    pub src_path_bits: u8,
    pub static_rate: u8,
    pub is_global: u8,
    pub port_num: u8,
}

/// `struct ibv_qp_cap`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_qp_cap {
    pub max_send_wr: u32,
    pub max_recv_wr: u32,
    pub max_send_sge: u32,
    pub max_recv_sge: u32,
    pub max_inline_data: u32,
}

/// `struct ibv_qp_init_attr`
#[repr(C)]
pub struct ibv_qp_init_attr {
    pub qp_context: *mut c_void,
    pub send_cq: *mut ibv_cq,
    pub recv_cq: *mut ibv_cq,
    pub srq: *mut ibv_srq,
    pub cap: ibv_qp_cap,
    /// `enum ibv_qp_type`
    pub qp_type: c_uint,
    pub sq_sig_all: c_int,
}

/// `struct ibv_qp_attr`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_qp_attr {
    /// `enum ibv_qp_state`
    pub qp_state: c_uint,
    /// `enum ibv_qp_state`
    pub cur_qp_state: c_uint,
    /// `enum ibv_mtu`
    pub path_mtu: c_uint,
    /// `enum ibv_mig_state`
    pub path_mig_state: c_uint,
    pub qkey: u32,
    pub rq_psn: u32,
    pub sq_psn: u32,
    pub dest_qp_num: u32,
    pub qp_access_flags: c_uint,
    pub cap: ibv_qp_cap,
    pub ah_attr: ibv_ah_attr,
    pub alt_ah_attr: ibv_ah_attr,
    pub pkey_index: u16,
    pub alt_pkey_index: u16,
    pub en_sqd_async_notify: u8,
    pub sq_draining: u8,
    pub max_rd_atomic: u8,
    pub max_dest_rd_atomic: u8,
    pub min_rnr_timer: u8,
    pub port_num: u8,
    pub timeout: u8,
    pub retry_cnt: u8,
    pub rnr_retry: u8,
    pub alt_port_num: u8,
    pub alt_timeout: u8,
    pub rate_limit: u32,
}

/// `struct ibv_sge`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_sge {
    pub addr: u64,
    pub length: u32,
    pub lkey: u32,
}

/// `wr.rdma` of `struct ibv_send_wr`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ibv_send_wr_rdma {
    pub remote_addr: u64,
    pub rkey: u32,
}

/// The `wr` union of `struct ibv_send_wr`: `rdma` is the member used;
/// `atomic` (the largest: three `uint64_t` and a `uint32_t`) and `ud`
/// stand as its size.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ibv_send_wr_wr {
    pub rdma: ibv_send_wr_rdma,
    pub _atomic: [u64; 4],
}

/// `struct ibv_send_wr`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ibv_send_wr {
    pub wr_id: u64,
    pub next: *mut ibv_send_wr,
    pub sg_list: *mut ibv_sge,
    pub num_sge: c_int,
    /// `enum ibv_wr_opcode`
    pub opcode: c_uint,
    /// `enum ibv_send_flags`
    pub send_flags: c_uint,
    /// The union of `imm_data` and `invalidate_rkey` (both 32-bit).
    pub imm_data: u32,
    pub wr: ibv_send_wr_wr,
    /// The `qp_type` union (`xrc.remote_srqn`).
    pub qp_type: u32,
    /// The anonymous union of `bind_mw` (the largest: a pointer, a
    /// `uint32_t` and a `struct ibv_mw_bind_info`) and `tso`.
    pub bind_mw: [u64; 6],
}

/// `struct ibv_recv_wr`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ibv_recv_wr {
    pub wr_id: u64,
    pub next: *mut ibv_recv_wr,
    pub sg_list: *mut ibv_sge,
    pub num_sge: c_int,
}

/// `struct ibv_wc`
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ibv_wc {
    pub wr_id: u64,
    /// `enum ibv_wc_status`
    pub status: c_uint,
    /// `enum ibv_wc_opcode`
    pub opcode: c_uint,
    pub vendor_err: u32,
    pub byte_len: u32,
    /// The union of `imm_data` and `invalidated_rkey` (both 32-bit).
    pub imm_data: u32,
    pub qp_num: u32,
    pub src_qp: u32,
    pub wc_flags: c_uint,
    pub pkey_index: u16,
    pub slid: u16,
    pub sl: u8,
    pub dlid_path_bits: u8,
}

/// `struct ibv_pd`
#[repr(C)]
pub struct ibv_pd {
    pub context: *mut ibv_context,
    pub handle: u32,
}

/// `struct ibv_mr`
#[repr(C)]
pub struct ibv_mr {
    pub context: *mut ibv_context,
    pub pd: *mut ibv_pd,
    pub addr: *mut c_void,
    pub length: usize,
    pub handle: u32,
    pub lkey: u32,
    pub rkey: u32,
}

/// `struct ibv_comp_channel`
#[repr(C)]
pub struct ibv_comp_channel {
    pub context: *mut ibv_context,
    pub fd: c_int,
    pub refcnt: c_int,
}

/// `struct ibv_cq`
#[repr(C)]
pub struct ibv_cq {
    pub context: *mut ibv_context,
    pub channel: *mut ibv_comp_channel,
    pub cq_context: *mut c_void,
    pub handle: u32,
    pub cqe: c_int,
    pub mutex: libc::pthread_mutex_t,
    pub cond: libc::pthread_cond_t,
    pub comp_events_completed: u32,
    pub async_events_completed: u32,
}

/// `struct ibv_qp`
#[repr(C)]
pub struct ibv_qp {
    pub context: *mut ibv_context,
    pub qp_context: *mut c_void,
    pub pd: *mut ibv_pd,
    pub send_cq: *mut ibv_cq,
    pub recv_cq: *mut ibv_cq,
    pub srq: *mut ibv_srq,
    pub handle: u32,
    pub qp_num: u32,
    /// `enum ibv_qp_state`
    pub state: c_uint,
    /// `enum ibv_qp_type`
    pub qp_type: c_uint,
    pub mutex: libc::pthread_mutex_t,
    pub cond: libc::pthread_cond_t,
    pub events_completed: u32,
}

/// An `ops` entry this module does not call.
type Unused = *mut c_void;

/// `struct ibv_context_ops`: 32 function pointers, of which the four the
/// header's data-path inlines call are typed.
#[repr(C)]
pub struct ibv_context_ops {
    /// `_compat_query_device` … `_compat_create_cq`.
    pub _unused0: [Unused; 11],
    pub poll_cq: Option<unsafe extern "C" fn(*mut ibv_cq, c_int, *mut ibv_wc) -> c_int>,
    pub req_notify_cq: Option<unsafe extern "C" fn(*mut ibv_cq, c_int) -> c_int>,
    /// `_compat_cq_event` … `_compat_destroy_qp`.
    pub _unused1: [Unused; 12],
    pub post_send:
        Option<unsafe extern "C" fn(*mut ibv_qp, *mut ibv_send_wr, *mut *mut ibv_send_wr) -> c_int>,
    pub post_recv:
        Option<unsafe extern "C" fn(*mut ibv_qp, *mut ibv_recv_wr, *mut *mut ibv_recv_wr) -> c_int>,
    /// `_compat_create_ah` … `_compat_async_event`.
    pub _unused2: [Unused; 5],
}

/// `struct ibv_context`
#[repr(C)]
pub struct ibv_context {
    pub device: *mut ibv_device,
    pub ops: ibv_context_ops,
    pub cmd_fd: c_int,
    pub async_fd: c_int,
    pub num_comp_vectors: c_int,
    pub mutex: libc::pthread_mutex_t,
    pub abi_compat: *mut c_void,
}

// SAFETY: each is integers, arrays of them, raw pointers and unions of
// those; C code zero-initialises all of them.
unsafe impl Zeroed for ibv_device_attr {}
unsafe impl Zeroed for ibv_port_attr {}
unsafe impl Zeroed for ibv_qp_init_attr {}
unsafe impl Zeroed for ibv_send_wr {}
unsafe impl Zeroed for ibv_recv_wr {}

// ---- Exported functions -----------------------------------------------

/// Declares the table of exported functions and its loader, so that each
/// symbol's name and type are written once. `optional` ones are `None`
/// when the library lacks them.
macro_rules! functions {
    (
        required { $(
            $(#[$doc:meta])*
            $field:ident = $sym:literal : fn($($arg:ty),*) $(-> $ret:ty)?;
        )* }
        optional { $(
            $(#[$odoc:meta])*
            $ofield:ident = $osym:literal : fn($($oarg:ty),*) $(-> $oret:ty)?;
        )* }
    ) => {
        /// libibverbs' exported functions, as loaded.
        pub struct Verbs {
            $( $(#[$doc])* pub $field: unsafe extern "C" fn($($arg),*) $(-> $ret)?, )*
            $( $(#[$odoc])* pub $ofield: Option<unsafe extern "C" fn($($oarg),*) $(-> $oret)?>, )*
        }

        impl Verbs {
            /// Looks every function up in `lib`, or names the first
            /// required one missing.
            ///
            /// # Safety
            /// `lib` is a live handle of libibverbs.so.1 that is never closed.
            unsafe fn load(lib: *mut c_void) -> Result<Verbs, &'static str> {
                Ok(Verbs {
                    $(
                        // SAFETY: the symbol is the libibverbs function of
                        // this type (the layout test checks the type
                        // against the header), and stays loaded (caller).
                        $field: unsafe {
                            std::mem::transmute::<
                                *mut c_void,
                                unsafe extern "C" fn($($arg),*) $(-> $ret)?,
                            >(symbol(lib, concat!($sym, "\0"))?)
                        },
                    )*
                    $(
                        // SAFETY: as above.
                        $ofield: unsafe { symbol(lib, concat!($osym, "\0")) }.ok().map(|p| {
                            // SAFETY: as above.
                            unsafe {
                                std::mem::transmute::<
                                    *mut c_void,
                                    unsafe extern "C" fn($($oarg),*) $(-> $oret)?,
                                >(p)
                            }
                        }),
                    )*
                })
            }
        }

        /// `(symbol, C type of the Rust declaration)` of each function,
        /// for the layout test.
        #[cfg(test)]
        fn function_types() -> Vec<(&'static str, String)> {
            use self::ctype::CType;
            vec![
                $( ($sym, <unsafe extern "C" fn($($arg),*) $(-> $ret)?>::c()), )*
                $( ($osym, <unsafe extern "C" fn($($oarg),*) $(-> $oret)?>::c()), )*
            ]
        }
    };
}

functions! {
    required {
        get_device_list = "ibv_get_device_list": fn(*mut c_int) -> *mut *mut ibv_device;
        free_device_list = "ibv_free_device_list": fn(*mut *mut ibv_device);
        get_device_name = "ibv_get_device_name": fn(*mut ibv_device) -> *const c_char;
        open_device = "ibv_open_device": fn(*mut ibv_device) -> *mut ibv_context;
        close_device = "ibv_close_device": fn(*mut ibv_context) -> c_int;
        query_device = "ibv_query_device": fn(*mut ibv_context, *mut ibv_device_attr) -> c_int;
        /// The exported symbol under the `ibv_query_port` macro (module doc).
        query_port = "ibv_query_port":
            fn(*mut ibv_context, u8, *mut _compat_ibv_port_attr) -> c_int;
        query_gid = "ibv_query_gid": fn(*mut ibv_context, u8, c_int, *mut ibv_gid) -> c_int;
        alloc_pd = "ibv_alloc_pd": fn(*mut ibv_context) -> *mut ibv_pd;
        dealloc_pd = "ibv_dealloc_pd": fn(*mut ibv_pd) -> c_int;
        /// The exported symbol under the `ibv_reg_mr` macro (module doc).
        reg_mr = "ibv_reg_mr": fn(*mut ibv_pd, *mut c_void, usize, c_int) -> *mut ibv_mr;
        dereg_mr = "ibv_dereg_mr": fn(*mut ibv_mr) -> c_int;
        create_comp_channel = "ibv_create_comp_channel":
            fn(*mut ibv_context) -> *mut ibv_comp_channel;
        destroy_comp_channel = "ibv_destroy_comp_channel": fn(*mut ibv_comp_channel) -> c_int;
        create_cq = "ibv_create_cq":
            fn(*mut ibv_context, c_int, *mut c_void, *mut ibv_comp_channel, c_int) -> *mut ibv_cq;
        destroy_cq = "ibv_destroy_cq": fn(*mut ibv_cq) -> c_int;
        get_cq_event = "ibv_get_cq_event":
            fn(*mut ibv_comp_channel, *mut *mut ibv_cq, *mut *mut c_void) -> c_int;
        ack_cq_events = "ibv_ack_cq_events": fn(*mut ibv_cq, c_uint);
        create_qp = "ibv_create_qp": fn(*mut ibv_pd, *mut ibv_qp_init_attr) -> *mut ibv_qp;
        modify_qp = "ibv_modify_qp": fn(*mut ibv_qp, *mut ibv_qp_attr, c_int) -> c_int;
        query_qp = "ibv_query_qp":
            fn(*mut ibv_qp, *mut ibv_qp_attr, c_int, *mut ibv_qp_init_attr) -> c_int;
        destroy_qp = "ibv_destroy_qp": fn(*mut ibv_qp) -> c_int;
        wc_status_str = "ibv_wc_status_str": fn(c_uint) -> *const c_char;
    }
    optional {
        /// The exported symbol under the `ibv_query_gid_table` inline (see
        /// [`query_gid_table`]); rdma-core v32 and later.
        _query_gid_table = "_ibv_query_gid_table":
            fn(*mut ibv_context, *mut ibv_gid_entry, usize, u32, usize) -> isize;
    }
}

/// `dlsym(lib, name)`, or the name (without its NUL) if it is missing.
///
/// # Safety
/// `lib` is a live `dlopen` handle; `name` ends with a NUL.
unsafe fn symbol(lib: *mut c_void, name: &'static str) -> Result<*mut c_void, &'static str> {
    let c = CStr::from_bytes_with_nul(name.as_bytes()).expect("a NUL-terminated name");
    // SAFETY: a live handle and a NUL-terminated name (caller).
    let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
    if p.is_null() {
        Err(&name[..name.len() - 1])
    } else {
        Ok(p)
    }
}

/// Why libibverbs could not be used.
enum LoadError {
    /// `dlopen("libibverbs.so.1")` failed.
    NotFound,
    /// The library lacks this function.
    Missing(&'static str),
}

/// libibverbs, loaded on first use and kept for the life of the process.
/// When `libibverbs.so.1` cannot be loaded the error is `EOPNOTSUPP`
/// (what [`super::sys::list_error`] words as "libibverbs not found").
pub fn verbs() -> io::Result<&'static Verbs> {
    static VERBS: OnceLock<Result<Verbs, LoadError>> = OnceLock::new();
    let loaded = VERBS.get_or_init(|| {
        // SAFETY: dlopen with a NUL-terminated name; the handle is never
        // closed, so everything looked up in it stays valid.
        let lib = unsafe {
            libc::dlopen(
                c"libibverbs.so.1".as_ptr(),
                libc::RTLD_NOW | libc::RTLD_LOCAL,
            )
        };
        if lib.is_null() {
            return Err(LoadError::NotFound);
        }
        // SAFETY: a live handle, never closed.
        unsafe { Verbs::load(lib) }.map_err(LoadError::Missing)
    });
    match loaded {
        Ok(v) => Ok(v),
        Err(LoadError::NotFound) => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        Err(LoadError::Missing(sym)) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("libibverbs.so.1 has no {sym}"),
        )),
    }
}

// ---- The header's inlines ---------------------------------------------

/// `ibv_query_gid_table(context, entries, max_entries, flags)`, or
/// `-EOPNOTSUPP` when the library has no `_ibv_query_gid_table`.
///
/// # Safety
/// `context` is an open device context; `entries` has room for
/// `max_entries` entries.
pub unsafe fn query_gid_table(
    v: &Verbs,
    context: *mut ibv_context,
    entries: *mut ibv_gid_entry,
    max_entries: usize,
    flags: u32,
) -> isize {
    let Some(f) = v._query_gid_table else {
        return -(libc::EOPNOTSUPP as isize);
    };
    // SAFETY: the caller's contract, and the entry size the header passes.
    unsafe {
        f(
            context,
            entries,
            max_entries,
            flags,
            size_of::<ibv_gid_entry>(),
        )
    }
}

/// `ibv_post_send(qp, wr, bad_wr)`: `qp->context->ops.post_send(…)`. A
/// provider without the entry (the header would call NULL) gives
/// `EOPNOTSUPP`.
///
/// # Safety
/// `qp` is a live queue pair; `wr` a valid list of work requests whose
/// buffers stay valid as the verbs require.
pub unsafe fn post_send(
    qp: *mut ibv_qp,
    wr: *mut ibv_send_wr,
    bad_wr: *mut *mut ibv_send_wr,
) -> c_int {
    // SAFETY: a live qp points to its live context (caller).
    match unsafe { (*(*qp).context).ops.post_send } {
        // SAFETY: the provider's entry, with the caller's arguments.
        Some(f) => unsafe { f(qp, wr, bad_wr) },
        None => libc::EOPNOTSUPP,
    }
}

/// `ibv_post_recv(qp, wr, bad_wr)`: `qp->context->ops.post_recv(…)`.
///
/// # Safety
/// As [`post_send`].
pub unsafe fn post_recv(
    qp: *mut ibv_qp,
    wr: *mut ibv_recv_wr,
    bad_wr: *mut *mut ibv_recv_wr,
) -> c_int {
    // SAFETY: a live qp points to its live context (caller).
    match unsafe { (*(*qp).context).ops.post_recv } {
        // SAFETY: the provider's entry, with the caller's arguments.
        Some(f) => unsafe { f(qp, wr, bad_wr) },
        None => libc::EOPNOTSUPP,
    }
}

/// `ibv_poll_cq(cq, num_entries, wc)`: `cq->context->ops.poll_cq(…)`;
/// negative on failure.
///
/// # Safety
/// `cq` is a live completion queue; `wc` has room for `num_entries`.
pub unsafe fn poll_cq(cq: *mut ibv_cq, num_entries: c_int, wc: *mut ibv_wc) -> c_int {
    // SAFETY: a live cq points to its live context (caller).
    match unsafe { (*(*cq).context).ops.poll_cq } {
        // SAFETY: the provider's entry, with the caller's arguments.
        Some(f) => unsafe { f(cq, num_entries, wc) },
        None => -libc::EOPNOTSUPP,
    }
}

/// `ibv_req_notify_cq(cq, solicited_only)`:
/// `cq->context->ops.req_notify_cq(…)`.
///
/// # Safety
/// `cq` is a live completion queue.
pub unsafe fn req_notify_cq(cq: *mut ibv_cq, solicited_only: c_int) -> c_int {
    // SAFETY: a live cq points to its live context (caller).
    match unsafe { (*(*cq).context).ops.req_notify_cq } {
        // SAFETY: the provider's entry, with the caller's arguments.
        Some(f) => unsafe { f(cq, solicited_only) },
        None => libc::EOPNOTSUPP,
    }
}

/// The C spelling of the Rust types used in the function declarations
/// above, so the layout test can ask the C compiler whether each
/// declaration matches the header's.
#[cfg(test)]
mod ctype {
    use super::*;

    pub trait CType {
        fn c() -> String;
    }

    macro_rules! named {
        ($($t:ty => $c:literal),* $(,)?) => {
            $( impl CType for $t { fn c() -> String { $c.to_string() } } )*
        };
    }

    named! {
        () => "void",
        c_void => "void",
        c_char => "char",
        c_int => "int",
        c_uint => "unsigned int",
        u8 => "uint8_t",
        usize => "size_t",
        isize => "ssize_t",
        ibv_device => "struct ibv_device",
        ibv_context => "struct ibv_context",
        ibv_device_attr => "struct ibv_device_attr",
        _compat_ibv_port_attr => "struct _compat_ibv_port_attr",
        ibv_gid => "union ibv_gid",
        ibv_gid_entry => "struct ibv_gid_entry",
        ibv_pd => "struct ibv_pd",
        ibv_mr => "struct ibv_mr",
        ibv_comp_channel => "struct ibv_comp_channel",
        ibv_cq => "struct ibv_cq",
        ibv_qp => "struct ibv_qp",
        ibv_qp_init_attr => "struct ibv_qp_init_attr",
        ibv_qp_attr => "struct ibv_qp_attr",
        ibv_send_wr => "struct ibv_send_wr",
        ibv_recv_wr => "struct ibv_recv_wr",
        ibv_wc => "struct ibv_wc",
    }

    impl<T: CType> CType for *mut T {
        fn c() -> String {
            format!("{} *", T::c())
        }
    }

    impl<T: CType> CType for *const T {
        fn c() -> String {
            format!("const {} *", T::c())
        }
    }

    impl<F: CType> CType for Option<F> {
        fn c() -> String {
            F::c()
        }
    }

    macro_rules! function {
        ($($a:ident),*) => {
            impl<R: CType, $($a: CType),*> CType for unsafe extern "C" fn($($a),*) -> R {
                fn c() -> String {
                    let args: Vec<String> = vec![$($a::c()),*];
                    format!("{} (*)({})", R::c(), args.join(", "))
                }
            }
        };
    }

    function!(A);
    function!(A, B);
    function!(A, B, C);
    function!(A, B, C, D);
    function!(A, B, C, D, E);
}

#[cfg(test)]
mod tests {
    use super::ctype::CType;
    use super::*;
    use std::mem::{align_of, offset_of, size_of};
    use std::path::Path;
    use std::process::Command;

    const HEADER: &str = "/usr/include/infiniband/verbs.h";
    /// Set (to 1) where the header must be there (CI): a missing header or
    /// C compiler then fails the test instead of skipping it.
    const REQUIRE: &str = "HPCPACK_REQUIRE_VERBS_H";

    /// `(C expression, value on the Rust side)`.
    type Checks = Vec<(String, i64)>;

    /// The size and alignment of a C type and the offsets of its fields
    /// (`a.b.c` reaches into nested structs and unions).
    macro_rules! layout {
        ($out:ident, $c:literal = $t:ty { $($f:ident $(. $g:ident)*),* $(,)? }) => {{
            $out.push((format!("sizeof({})", $c), size_of::<$t>() as i64));
            $out.push((format!("_Alignof({})", $c), align_of::<$t>() as i64));
            $(
                $out.push((
                    format!("offsetof({}, {})", $c, stringify!($f $(.$g)*)),
                    offset_of!($t, $f $(.$g)*) as i64,
                ));
            )*
        }};
    }

    macro_rules! constants {
        ($out:ident, $($name:ident),* $(,)?) => {
            $( $out.push((stringify!($name).to_string(), $name as i64)); )*
        };
    }

    /// Every layout, constant and function type this module defines.
    fn checks() -> Checks {
        let mut out = Checks::new();
        layout!(out, "union ibv_gid" = ibv_gid { raw });
        layout!(
            out,
            "struct ibv_gid_entry" = ibv_gid_entry {
                gid,
                gid_index,
                port_num,
                gid_type,
                ndev_ifindex,
            }
        );
        layout!(
            out,
            "struct ibv_device_attr" = ibv_device_attr {
                fw_ver,
                node_guid,
                sys_image_guid,
                max_mr_size,
                page_size_cap,
                vendor_id,
                vendor_part_id,
                hw_ver,
                max_qp,
                max_qp_wr,
                device_cap_flags,
                max_sge,
                max_sge_rd,
                max_cq,
                max_cqe,
                max_mr,
                max_pd,
                max_qp_rd_atom,
                max_ee_rd_atom,
                max_res_rd_atom,
                max_qp_init_rd_atom,
                max_ee_init_rd_atom,
                atomic_cap,
                max_ee,
                max_rdd,
                max_mw,
                max_raw_ipv6_qp,
                max_raw_ethy_qp,
                max_mcast_grp,
                max_mcast_qp_attach,
                max_total_mcast_qp_attach,
                max_ah,
                max_fmr,
                max_map_per_fmr,
                max_srq,
                max_srq_wr,
                max_srq_sge,
                max_pkeys,
                local_ca_ack_delay,
                phys_port_cnt,
            }
        );
        layout!(
            out,
            "struct ibv_port_attr" = ibv_port_attr {
                state,
                max_mtu,
                active_mtu,
                gid_tbl_len,
                port_cap_flags,
                max_msg_sz,
                bad_pkey_cntr,
                qkey_viol_cntr,
                pkey_tbl_len,
                lid,
                sm_lid,
                lmc,
                max_vl_num,
                sm_sl,
                subnet_timeout,
                init_type_reply,
                active_width,
                active_speed,
                phys_state,
                link_layer,
                flags,
                port_cap_flags2,
            }
        );
        layout!(
            out,
            "struct ibv_global_route" = ibv_global_route {
                dgid,
                flow_label,
                sgid_index,
                hop_limit,
                traffic_class,
            }
        );
        layout!(
            out,
            "struct ibv_ah_attr" = ibv_ah_attr {
                grh,
                dlid,
                sl,
                src_path_bits,
                static_rate,
                is_global,
                port_num,
            }
        );
        layout!(
            out,
            "struct ibv_qp_cap" = ibv_qp_cap {
                max_send_wr,
                max_recv_wr,
                max_send_sge,
                max_recv_sge,
                max_inline_data,
            }
        );
        layout!(
            out,
            "struct ibv_qp_init_attr" = ibv_qp_init_attr {
                qp_context,
                send_cq,
                recv_cq,
                srq,
                cap,
                qp_type,
                sq_sig_all,
            }
        );
        layout!(
            out,
            "struct ibv_qp_attr" = ibv_qp_attr {
                qp_state,
                cur_qp_state,
                path_mtu,
                path_mig_state,
                qkey,
                rq_psn,
                sq_psn,
                dest_qp_num,
                qp_access_flags,
                cap,
                ah_attr,
                alt_ah_attr,
                pkey_index,
                alt_pkey_index,
                en_sqd_async_notify,
                sq_draining,
                max_rd_atomic,
                max_dest_rd_atomic,
                min_rnr_timer,
                port_num,
                timeout,
                retry_cnt,
                rnr_retry,
                alt_port_num,
                alt_timeout,
                rate_limit,
            }
        );
        layout!(out, "struct ibv_sge" = ibv_sge { addr, length, lkey });
        layout!(out, "struct ibv_send_wr" = ibv_send_wr {
            wr_id, next, sg_list, num_sge, opcode, send_flags, imm_data, wr, wr.rdma,
            wr.rdma.remote_addr, wr.rdma.rkey, qp_type, bind_mw,
        });
        layout!(
            out,
            "__typeof__(((struct ibv_send_wr *)0)->wr)" = ibv_send_wr_wr {}
        );
        layout!(
            out,
            "__typeof__(((struct ibv_send_wr *)0)->wr.rdma)" =
                ibv_send_wr_rdma { remote_addr, rkey }
        );
        layout!(
            out,
            "struct ibv_recv_wr" = ibv_recv_wr {
                wr_id,
                next,
                sg_list,
                num_sge
            }
        );
        layout!(
            out,
            "struct ibv_wc" = ibv_wc {
                wr_id,
                status,
                opcode,
                vendor_err,
                byte_len,
                imm_data,
                qp_num,
                src_qp,
                wc_flags,
                pkey_index,
                slid,
                sl,
                dlid_path_bits,
            }
        );
        layout!(out, "struct ibv_pd" = ibv_pd { context, handle });
        layout!(
            out,
            "struct ibv_mr" = ibv_mr {
                context,
                pd,
                addr,
                length,
                handle,
                lkey,
                rkey
            }
        );
        layout!(
            out,
            "struct ibv_comp_channel" = ibv_comp_channel {
                context,
                fd,
                refcnt
            }
        );
        layout!(
            out,
            "struct ibv_cq" = ibv_cq {
                context,
                channel,
                cq_context,
                handle,
                cqe,
                mutex,
                cond,
                comp_events_completed,
                async_events_completed,
            }
        );
        layout!(
            out,
            "struct ibv_qp" = ibv_qp {
                context,
                qp_context,
                pd,
                send_cq,
                recv_cq,
                srq,
                handle,
                qp_num,
                state,
                qp_type,
                mutex,
                cond,
                events_completed,
            }
        );
        layout!(
            out,
            "struct ibv_context_ops" = ibv_context_ops {
                poll_cq,
                req_notify_cq,
                post_send,
                post_recv,
            }
        );
        layout!(
            out,
            "struct ibv_context" = ibv_context {
                device,
                ops,
                cmd_fd,
                async_fd,
                num_comp_vectors,
                mutex,
                abi_compat,
            }
        );
        constants!(
            out,
            IBV_PORT_ACTIVE,
            IBV_GID_TYPE_IB,
            IBV_GID_TYPE_ROCE_V2,
            IBV_ACCESS_LOCAL_WRITE,
            IBV_ACCESS_REMOTE_WRITE,
            IBV_ACCESS_REMOTE_READ,
            IBV_QPT_RC,
            IBV_QPS_INIT,
            IBV_QPS_RTR,
            IBV_QPS_RTS,
            IBV_QPS_SQE,
            IBV_QPS_ERR,
            IBV_QP_STATE,
            IBV_QP_ACCESS_FLAGS,
            IBV_QP_PKEY_INDEX,
            IBV_QP_PORT,
            IBV_QP_AV,
            IBV_QP_PATH_MTU,
            IBV_QP_TIMEOUT,
            IBV_QP_RETRY_CNT,
            IBV_QP_RNR_RETRY,
            IBV_QP_RQ_PSN,
            IBV_QP_MAX_QP_RD_ATOMIC,
            IBV_QP_MIN_RNR_TIMER,
            IBV_QP_SQ_PSN,
            IBV_QP_MAX_DEST_RD_ATOMIC,
            IBV_QP_DEST_QPN,
            IBV_WR_RDMA_WRITE,
            IBV_WR_SEND,
            IBV_SEND_SIGNALED,
            IBV_SEND_INLINE,
            IBV_WC_SUCCESS,
        );
        // The C compiler's answer to "is the Rust declaration's type the
        // header's?" must be 1 for each function and ops entry.
        for (sym, ty) in function_types() {
            out.push((
                format!("__builtin_types_compatible_p(__typeof__(&{sym}), {ty})"),
                1,
            ));
        }
        /// The C spelling of the type of an `ops` field.
        fn entry<T: CType>(_: fn(&ibv_context_ops) -> &T) -> String {
            T::c()
        }
        let ops = [
            ("poll_cq", entry(|o| &o.poll_cq)),
            ("req_notify_cq", entry(|o| &o.req_notify_cq)),
            ("post_send", entry(|o| &o.post_send)),
            ("post_recv", entry(|o| &o.post_recv)),
        ];
        for (entry, ty) in ops {
            out.push((
                format!(
                    "__builtin_types_compatible_p(__typeof__(((struct ibv_context_ops *)0)->{entry}), {ty})"
                ),
                1,
            ));
        }
        out
    }

    /// A C program printing each check's C value, one a line.
    fn program(checks: &Checks) -> String {
        let mut c = String::from(
            "#include <stddef.h>\n#include <stdio.h>\n#include <infiniband/verbs.h>\n\
             int main(void) {\n",
        );
        for (expr, _) in checks {
            c.push_str(&format!("    printf(\"%lld\\n\", (long long)({expr}));\n"));
        }
        c.push_str("    return 0;\n}\n");
        c
    }

    /// Whether the header and a C compiler are there; if not, fails where
    /// they are required and says the test was skipped elsewhere.
    fn have_header_and_cc() -> bool {
        let required = std::env::var(REQUIRE).is_ok_and(|v| v == "1");
        let header = Path::new(HEADER).exists();
        let cc = Command::new("cc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if header && cc {
            return true;
        }
        let missing = if header { "a C compiler (cc)" } else { HEADER };
        assert!(
            !required,
            "{REQUIRE}=1, but {missing} is missing (apt-get install libibverbs-dev)"
        );
        eprintln!(
            "skipped: the verbs layout check needs {missing} (apt-get install libibverbs-dev)"
        );
        false
    }

    #[test]
    fn verbs_ffi_matches_the_installed_header() {
        if !have_header_and_cc() {
            return;
        }
        let checks = checks();
        let dir = std::env::temp_dir().join(format!("hpcpack-verbs-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, exe) = (dir.join("layout.c"), dir.join("layout"));
        std::fs::write(&src, program(&checks)).unwrap();
        let out = Command::new("cc")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "compiling {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&exe).output().unwrap();
        assert!(out.status.success(), "running {}", exe.display());
        let c: Vec<i64> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(c.len(), checks.len());
        let wrong: Vec<String> = checks
            .iter()
            .zip(&c)
            .filter(|((_, rust), c)| rust != *c)
            .map(|((expr, rust), c)| format!("{expr}: C {c}, Rust {rust}"))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            wrong.is_empty(),
            "the FFI differs from {HEADER}:\n{}",
            wrong.join("\n")
        );
        eprintln!("{} checks against {HEADER} agree", checks.len());
    }
}
