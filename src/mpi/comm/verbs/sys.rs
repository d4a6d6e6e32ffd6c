//! Everything the verbs transport asks of libibverbs, over the in-source
//! binding of [`super::ffi`] (libibverbs is loaded at run time). All of the
//! verbs subsystem's `unsafe` lives here and there; the rest of the
//! transport sees owned handles and safe functions.
//!
//! Each libibverbs object is owned by one handle that frees it in its
//! `Drop` and holds (reference-counted) what it was created on, so they go
//! in the right order whatever order their owners drop in: queue pairs
//! (which hold their protection domain and completion queue) and memory
//! regions (which hold their protection domain) before the protection
//! domain, queue pairs before the completion queue, the completion queue
//! before its channel, and all of them before the device context. Only the
//! classic `ibv_post_send`/`ibv_post_recv`/`ibv_poll_cq` path is used: the
//! extended `ibv_wr_*` path fails on Soft-RoCE (kernel 6.1; see the spec).
//!
//! The one invariant callers must keep is on [`Qp::post_write`] and on
//! registered user buffers: a buffer must stay borrowed while the device
//! may touch it, that is until the write's completion (sender) or the
//! peer's FIN (receiver). The transport keeps the message in progress (and
//! a clone of its [`Region`]) until then, and on failure moves the queue
//! pair to the error state, after which the device neither reads nor
//! accepts writes for it, before returning the error.

use std::ffi::{CStr, c_int};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

use super::endpoint::PortInfo;
use super::ffi::{self, Verbs, Zeroed};

/// Why there is no device at all, in words for the card (no `|`).
pub fn list_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => format!(
            "no RDMA device: listing devices failed: {} (libibverbs found, kernel has no RDMA support)",
            strip(e)
        ),
        Some(libc::EOPNOTSUPP) => {
            "libibverbs not found (libibverbs.so.1 could not be loaded)".to_string()
        }
        _ => format!("no RDMA device: listing devices failed: {}", strip(e)),
    }
}

/// An io::Error's message without " (os error N)".
fn strip(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `what` failed because of `e` (an errno), keeping its kind.
fn failed(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} failed: {}", strip(&e)))
}

/// `what` failed with the errno left by a call that returned NULL or -1.
fn failed_errno(what: &str) -> io::Error {
    failed(what, io::Error::last_os_error())
}

/// `what` failed with the errno a call returned (0 is success).
fn check(what: &str, ret: c_int) -> io::Result<()> {
    match ret {
        0 => Ok(()),
        // Some providers return -1 and leave the errno.
        r if r < 0 => Err(failed_errno(what)),
        r => Err(failed(what, io::Error::from_raw_os_error(r))),
    }
}

/// The device list of `ibv_get_device_list`, freed on drop.
struct DeviceList {
    v: &'static Verbs,
    list: NonNull<*mut ffi::ibv_device>,
    len: usize,
}

impl DeviceList {
    fn new(v: &'static Verbs) -> io::Result<DeviceList> {
        let mut n: c_int = 0;
        // SAFETY: `n` is a valid out-pointer.
        let list = unsafe { (v.get_device_list)(&mut n) };
        let list = NonNull::new(list).ok_or_else(io::Error::last_os_error)?;
        Ok(DeviceList {
            v,
            list,
            len: n.max(0) as usize,
        })
    }

    /// The devices with their names.
    fn devices(&self) -> Vec<(*mut ffi::ibv_device, String)> {
        (0..self.len)
            .map(|i| {
                // SAFETY: the list holds `len` device pointers.
                let dev = unsafe { *self.list.as_ptr().add(i) };
                // SAFETY: a device of the live list; the name is a
                // NUL-terminated string owned by the device.
                let name = unsafe { (self.v.get_device_name)(dev) };
                let name = if name.is_null() {
                    String::new()
                } else {
                    // SAFETY: as above.
                    unsafe { CStr::from_ptr(name) }
                        .to_string_lossy()
                        .into_owned()
                };
                (dev, name)
            })
            .collect()
    }
}

impl Drop for DeviceList {
    fn drop(&mut self) {
        // SAFETY: the list from ibv_get_device_list, freed once. Contexts
        // opened on its devices stay valid after it is freed.
        unsafe { (self.v.free_device_list)(self.list.as_ptr()) };
    }
}

/// An open device context; closed on drop, after everything created on it
/// (they hold an `Arc` of it).
struct Context {
    v: &'static Verbs,
    ctx: NonNull<ffi::ibv_context>,
}

impl Context {
    fn open(v: &'static Verbs, dev: *mut ffi::ibv_device) -> io::Result<Arc<Context>> {
        // SAFETY: a device of a live device list.
        let ctx = unsafe { (v.open_device)(dev) };
        let ctx = NonNull::new(ctx).ok_or_else(|| failed_errno("opening the device"))?;
        Ok(Arc::new(Context { v, ctx }))
    }

    fn query_device(&self) -> io::Result<ffi::ibv_device_attr> {
        let mut attr = ffi::ibv_device_attr::zeroed();
        // SAFETY: a live context and a struct of the header's layout.
        check("querying the device", unsafe {
            (self.v.query_device)(self.ctx.as_ptr(), &mut attr)
        })?;
        Ok(attr)
    }

    /// `ibv_query_port`, through the exported symbol (see [`ffi`]).
    fn query_port(&self, port: u8) -> io::Result<ffi::ibv_port_attr> {
        // Zeroed, as the header's inline does before this call.
        let mut attr = ffi::ibv_port_attr::zeroed();
        let p = (&raw mut attr).cast::<ffi::_compat_ibv_port_attr>();
        // SAFETY: a live context; the struct is at least as large as the
        // compat one the call fills.
        check("querying the port", unsafe {
            (self.v.query_port)(self.ctx.as_ptr(), port, p)
        })?;
        Ok(attr)
    }

    fn query_gid(&self, port: u8, index: u32) -> io::Result<[u8; 16]> {
        let mut gid = ffi::ibv_gid::default();
        let index = c_int::try_from(index)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "GID index too large"))?;
        // SAFETY: a live context and a GID to fill.
        let ret = unsafe { (self.v.query_gid)(self.ctx.as_ptr(), port, index, &mut gid) };
        if ret != 0 {
            return Err(io::Error::other(format!(
                "querying GID {index} of port {port} failed"
            )));
        }
        Ok(gid.raw)
    }

    /// Every valid GID of the device (`ibv_query_gid_table`), for `ports`
    /// ports; empty when the library cannot tell.
    fn gid_table(&self, ports: u8) -> Vec<ffi::ibv_gid_entry> {
        let len: usize = (1..=ports)
            .filter_map(|p| self.query_port(p).ok())
            .map(|a| a.gid_tbl_len.max(0) as usize)
            .sum();
        let mut entries = vec![ffi::ibv_gid_entry::default(); len];
        // SAFETY: a live context and room for `len` entries.
        let n = unsafe {
            ffi::query_gid_table(self.v, self.ctx.as_ptr(), entries.as_mut_ptr(), len, 0)
        };
        entries.truncate(usize::try_from(n).unwrap_or(0));
        entries
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: everything created on the context holds an Arc of it, so
        // it is gone by now; closed once.
        unsafe { (self.v.close_device)(self.ctx.as_ptr()) };
    }
}

/// A protection domain; holds its context.
struct Pd {
    ctx: Arc<Context>,
    pd: NonNull<ffi::ibv_pd>,
}

impl Drop for Pd {
    fn drop(&mut self) {
        // SAFETY: queue pairs and memory regions hold an Arc of the domain,
        // so none is left; freed once.
        unsafe { (self.ctx.v.dealloc_pd)(self.pd.as_ptr()) };
    }
}

/// A completion channel; holds its context.
struct Channel {
    ctx: Arc<Context>,
    chan: NonNull<ffi::ibv_comp_channel>,
}

impl Channel {
    fn fd(&self) -> c_int {
        // SAFETY: a live channel; its fd is fixed at creation.
        unsafe { (*self.chan.as_ptr()).fd }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // SAFETY: the completion queue holds an Arc of its channel, so it
        // is gone; destroyed once.
        unsafe { (self.ctx.v.destroy_comp_channel)(self.chan.as_ptr()) };
    }
}

/// A completion queue; holds its channel (and so its context).
struct Cq {
    chan: Arc<Channel>,
    cq: NonNull<ffi::ibv_cq>,
}

impl Drop for Cq {
    fn drop(&mut self) {
        // SAFETY: queue pairs hold an Arc of their queue, so none is left;
        // every event taken was acknowledged at once (`Device::wait`), so
        // the destruction does not wait; destroyed once.
        unsafe { (self.chan.ctx.v.destroy_cq)(self.cq.as_ptr()) };
    }
}

/// A memory region; holds its protection domain.
struct Mr {
    pd: Arc<Pd>,
    mr: NonNull<ffi::ibv_mr>,
}

impl Mr {
    fn lkey(&self) -> u32 {
        // SAFETY: a live region; its keys are fixed at registration.
        unsafe { (*self.mr.as_ptr()).lkey }
    }
    fn rkey(&self) -> u32 {
        // SAFETY: as above.
        unsafe { (*self.mr.as_ptr()).rkey }
    }
}

impl Drop for Mr {
    fn drop(&mut self) {
        // SAFETY: a live region, deregistered once.
        unsafe { (self.pd.ctx.v.dereg_mr)(self.mr.as_ptr()) };
    }
}

// SAFETY: libibverbs objects may be used from any thread (the verbs are
// thread-safe: providers lock their queues); these handles only carry their
// pointers and free them once, in Drop. Calls that change a queue pair
// (posting, modifying) also take `&mut` of it on the Rust side.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}
// SAFETY: as above.
unsafe impl Send for Pd {}
// SAFETY: as above.
unsafe impl Sync for Pd {}
// SAFETY: as above.
unsafe impl Send for Channel {}
// SAFETY: as above.
unsafe impl Sync for Channel {}
// SAFETY: as above.
unsafe impl Send for Cq {}
// SAFETY: as above.
unsafe impl Sync for Cq {}
// SAFETY: as above.
unsafe impl Send for Mr {}
// SAFETY: as above.
unsafe impl Sync for Mr {}

/// The active ports of every device, with their GIDs (RoCE v2 and
/// InfiniBand ones; RoCE v1 is left out, it does not cross IP routers).
pub fn discover() -> Result<Vec<PortInfo>, String> {
    let v = ffi::verbs().map_err(|e| list_error(&e))?;
    let list = DeviceList::new(v).map_err(|e| list_error(&e))?;
    let devices = list.devices();
    if devices.is_empty() {
        return Err("no RDMA device (the kernel supports RDMA, but lists no device)".into());
    }
    let mut ports = Vec::new();
    let mut seen = Vec::new();
    for (dev, name) in devices {
        let Ok(ctx) = Context::open(v, dev) else {
            seen.push(format!("{name} (cannot open)"));
            continue;
        };
        let Ok(attr) = ctx.query_device() else {
            seen.push(format!("{name} (cannot query)"));
            continue;
        };
        let table = ctx.gid_table(attr.phys_port_cnt);
        for port in 1..=attr.phys_port_cnt {
            let active = ctx
                .query_port(port)
                .is_ok_and(|p| p.state == ffi::IBV_PORT_ACTIVE);
            if !active {
                seen.push(format!("{name}:{port} (not active)"));
                continue;
            }
            let gids = table
                .iter()
                .filter(|g| g.port_num == u32::from(port))
                .filter(|g| matches!(g.gid_type, ffi::IBV_GID_TYPE_ROCE_V2 | ffi::IBV_GID_TYPE_IB))
                .filter(|g| g.gid.raw != [0; 16])
                .map(|g| (g.gid_index, g.gid.raw))
                .collect::<Vec<_>>();
            let gids = if gids.is_empty() {
                // No GID table query (libibverbs before rdma-core v32):
                // the port GID.
                ctx.query_gid(port, 0)
                    .map(|g| vec![(0, g)])
                    .unwrap_or_default()
            } else {
                gids
            };
            ports.push(PortInfo {
                device: name.clone(),
                port,
                gids,
            });
        }
    }
    if ports.is_empty() {
        return Err(format!("no active RDMA port ({})", seen.join(", ")));
    }
    Ok(ports)
}

/// An opened port: context, protection domain, one completion queue (with
/// its channel, for blocking) shared by every queue pair.
pub struct Device {
    pub name: String,
    pub port: u8,
    pub gid_index: u32,
    pub gid: [u8; 16],
    pub lid: u16,
    /// `ibv_mtu` value of the port's active MTU.
    pub mtu: u32,
    pub max_rd_atomic: u8,
    // Each holds what it was created on (see the module doc).
    pd: Arc<Pd>,
    cq: Arc<Cq>,
}

impl Device {
    /// Opens `name`'s `port`, with a completion queue of `cqe` entries.
    pub fn open(name: &str, port: u8, gid_index: u32, cqe: u32) -> io::Result<Device> {
        let v = ffi::verbs()?;
        let list = DeviceList::new(v)?;
        let dev = list
            .devices()
            .into_iter()
            .find(|(_, n)| n == name)
            .map(|(d, _)| d)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "device vanished"))?;
        let ctx = Context::open(v, dev)?;
        drop(list);
        let attr = ctx.query_device()?;
        let pattr = ctx.query_port(port)?;
        let gid = ctx.query_gid(port, gid_index)?;
        // SAFETY: a live context.
        let pd = unsafe { (v.alloc_pd)(ctx.ctx.as_ptr()) };
        let pd = NonNull::new(pd).ok_or_else(|| failed_errno("allocating a protection domain"))?;
        let pd = Arc::new(Pd {
            ctx: Arc::clone(&ctx),
            pd,
        });
        // SAFETY: a live context.
        let chan = unsafe { (v.create_comp_channel)(ctx.ctx.as_ptr()) };
        let chan =
            NonNull::new(chan).ok_or_else(|| failed_errno("creating a completion channel"))?;
        let chan = Arc::new(Channel {
            ctx: Arc::clone(&ctx),
            chan,
        });
        set_nonblocking(chan.fd())?;
        let entries = c_int::try_from(cqe)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many CQ entries"))?;
        // SAFETY: a live context and channel; no user context; vector 0.
        let cq = unsafe {
            (v.create_cq)(
                ctx.ctx.as_ptr(),
                entries,
                ptr::null_mut(),
                chan.chan.as_ptr(),
                0,
            )
        };
        let cq = NonNull::new(cq).ok_or_else(|| failed_errno("creating a completion queue"))?;
        let cq = Arc::new(Cq { chan, cq });
        Ok(Device {
            name: name.to_string(),
            port,
            gid_index,
            gid,
            lid: pattr.lid,
            mtu: pattr.active_mtu,
            max_rd_atomic: attr.max_qp_rd_atom.clamp(1, 16) as u8,
            pd,
            cq,
        })
    }

    fn v(&self) -> &'static Verbs {
        self.pd.ctx.v
    }

    /// A reliable-connected queue pair in the INIT state.
    pub fn create_qp(&self, send_wr: u32, recv_wr: u32, inline: u32) -> io::Result<Qp> {
        let create = |inline: u32| {
            let mut init = ffi::ibv_qp_init_attr::zeroed();
            init.send_cq = self.cq.cq.as_ptr();
            init.recv_cq = self.cq.cq.as_ptr();
            init.cap = ffi::ibv_qp_cap {
                max_send_wr: send_wr,
                max_recv_wr: recv_wr,
                max_send_sge: 1,
                max_recv_sge: 1,
                max_inline_data: inline,
            };
            init.qp_type = ffi::IBV_QPT_RC;
            // SAFETY: a live protection domain and completion queue.
            let qp = unsafe { (self.v().create_qp)(self.pd.pd.as_ptr(), &mut init) };
            NonNull::new(qp).ok_or_else(|| failed_errno("creating a queue pair"))
        };
        // A device that cannot send this much inline: none at all.
        let (qp, inline) = match create(inline) {
            Ok(qp) => (qp, inline),
            Err(_) => (create(0)?, 0),
        };
        let mut qp = Qp {
            qp,
            inline,
            pd: Arc::clone(&self.pd),
            _cq: Arc::clone(&self.cq),
        };
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::IBV_QPS_INIT,
            pkey_index: 0,
            port_num: self.port,
            qp_access_flags: (ffi::IBV_ACCESS_LOCAL_WRITE
                | ffi::IBV_ACCESS_REMOTE_READ
                | ffi::IBV_ACCESS_REMOTE_WRITE) as u32,
            ..Default::default()
        };
        let mask = ffi::IBV_QP_STATE
            | ffi::IBV_QP_PKEY_INDEX
            | ffi::IBV_QP_PORT
            | ffi::IBV_QP_ACCESS_FLAGS;
        qp.modify(&mut attr, mask, "moving the queue pair to INIT")?;
        Ok(qp)
    }

    /// Registers `len` bytes at `addr` with `access`.
    ///
    /// # Safety
    /// The range stays allocated while the region is registered, and the
    /// device touches it only through work requests whose callers keep it
    /// borrowed (see the module doc).
    unsafe fn reg_mr(&self, addr: usize, len: usize, access: c_int) -> io::Result<Mr> {
        // SAFETY: a live protection domain; the range is the caller's.
        let mr = unsafe {
            (self.v().reg_mr)(self.pd.pd.as_ptr(), addr as *mut libc::c_void, len, access)
        };
        let mr = NonNull::new(mr).ok_or_else(|| reg_error(io::Error::last_os_error(), len))?;
        Ok(Mr {
            pd: Arc::clone(&self.pd),
            mr,
        })
    }

    /// Memory of `len` bytes registered for local writes (receive buffers)
    /// and sends.
    pub fn arena(&self, len: usize) -> io::Result<Arena> {
        let mem = vec![0u8; len.max(1)].into_boxed_slice();
        let ptr = mem.as_ptr() as usize;
        // SAFETY: `mem` is a live allocation of `len` bytes owned by the
        // returned Arena together with the region, and the Arena drops the
        // region (deregisters) before freeing `mem` (field order).
        let mr = unsafe { self.reg_mr(ptr, mem.len(), ffi::IBV_ACCESS_LOCAL_WRITE) }?;
        Ok(Arena { mr, mem })
    }

    /// Registers a user buffer for RDMA: `writable` for the target of the
    /// peer's writes, else only as the source of this rank's.
    pub fn register(&self, addr: usize, len: usize, writable: bool) -> io::Result<Region> {
        let access = if writable {
            ffi::IBV_ACCESS_LOCAL_WRITE | ffi::IBV_ACCESS_REMOTE_WRITE
        } else {
            ffi::IBV_ACCESS_REMOTE_READ
        };
        // SAFETY: registering only pins the pages and records the range;
        // the device touches them only through work requests this module
        // posts, whose callers keep the buffer borrowed (see the module doc).
        let mr = unsafe { self.reg_mr(addr, len.max(1), access) }?;
        Ok(Region { mr: Arc::new(mr) })
    }

    /// Polls the available completions into `out`.
    pub fn poll(&self, out: &mut Vec<Completion>) -> io::Result<()> {
        const BATCH: usize = 16;
        let mut wcs = [ffi::ibv_wc::default(); BATCH];
        loop {
            // SAFETY: a live completion queue and room for BATCH entries.
            let n = unsafe { ffi::poll_cq(self.cq.cq.as_ptr(), BATCH as c_int, wcs.as_mut_ptr()) };
            if n < 0 {
                return Err(failed(
                    "polling the completion queue",
                    io::Error::from_raw_os_error(-n),
                ));
            }
            out.extend(wcs[..n as usize].iter().map(|wc| Completion {
                wr_id: wc.wr_id,
                status: wc.status,
                byte_len: wc.byte_len,
            }));
            if (n as usize) < BATCH {
                return Ok(());
            }
        }
    }

    /// Arms the completion queue and sleeps until a completion event or
    /// `timeout`. Completions that arrived before arming (they raise no
    /// event) are polled into `out` instead of sleeping.
    pub fn wait(&self, timeout: Duration, out: &mut Vec<Completion>) -> io::Result<()> {
        let cq = self.cq.cq.as_ptr();
        // SAFETY: a live completion queue.
        let ret = unsafe { ffi::req_notify_cq(cq, 0) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        let before = out.len();
        self.poll(out)?;
        if out.len() > before {
            return Ok(());
        }
        let mut pfd = libc::pollfd {
            fd: self.cq.chan.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        if n > 0 {
            let mut ev_cq: *mut ffi::ibv_cq = ptr::null_mut();
            let mut ctx: *mut libc::c_void = ptr::null_mut();
            // SAFETY: the channel is live and non-blocking; the
            // out-pointers are valid locals.
            let ret = unsafe {
                (self.v().get_cq_event)(self.cq.chan.chan.as_ptr(), &mut ev_cq, &mut ctx)
            };
            if ret == 0 {
                // SAFETY: acknowledges the one event just taken from our
                // cq (the channel's only one).
                unsafe { (self.v().ack_cq_events)(ev_cq, 1) };
            }
        }
        Ok(())
    }
}

/// Sets `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: c_int) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, reading then setting flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(failed_errno("making the completion channel non-blocking"));
        }
    }
    Ok(())
}

/// One work completion.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub wr_id: u64,
    pub status: u32,
    pub byte_len: u32,
}

impl Completion {
    pub fn ok(&self) -> bool {
        self.status == ffi::IBV_WC_SUCCESS
    }

    /// The status in words (ibv_wc_status_str).
    pub fn status_text(&self) -> String {
        // A completion comes from a loaded library.
        let Ok(v) = ffi::verbs() else {
            return format!("status {}", self.status);
        };
        // SAFETY: ibv_wc_status_str returns a static string for any value.
        let p = unsafe { (v.wc_status_str)(self.status) };
        if p.is_null() {
            return format!("status {}", self.status);
        }
        // SAFETY: a NUL-terminated static string from libibverbs.
        let s = unsafe { CStr::from_ptr(p) };
        format!("{} (status {})", s.to_string_lossy(), self.status)
    }
}

/// Registered memory owned by the transport (receive buffers, send slots).
pub struct Arena {
    // Dropped (deregistered) before `mem` is freed.
    mr: Mr,
    mem: Box<[u8]>,
}

impl Arena {
    /// Copies `src` in at `off`.
    pub fn write(&mut self, off: usize, src: &[u8]) {
        self.mem[off..off + src.len()].copy_from_slice(src);
    }

    /// The bytes at `off..off + len` (only read after their receive
    /// completed, so the device is not writing them).
    pub fn read(&self, off: usize, len: usize) -> &[u8] {
        &self.mem[off..off + len]
    }

    fn addr(&self, off: usize, len: usize) -> u64 {
        assert!(off + len <= self.mem.len(), "slot outside its arena");
        self.mem.as_ptr() as u64 + off as u64
    }
}

/// A registered user buffer; clones share the registration, which ends
/// when the last one is dropped.
#[derive(Clone)]
pub struct Region {
    mr: Arc<Mr>,
}

impl Region {
    pub fn rkey(&self) -> u32 {
        self.mr.rkey()
    }
    pub fn lkey(&self) -> u32 {
        self.mr.lkey()
    }
}

/// Where a peer's queue pair is.
#[derive(Clone, Copy, Debug)]
pub struct Remote {
    pub qpn: u32,
    pub gid: [u8; 16],
    pub lid: u16,
    pub mtu: u32,
}

/// A reliable-connected queue pair; holds its protection domain and
/// completion queue.
pub struct Qp {
    qp: NonNull<ffi::ibv_qp>,
    pub inline: u32,
    pd: Arc<Pd>,
    _cq: Arc<Cq>,
}

// SAFETY: as for the handles above: the queue pair may be used from any
// thread, and posting or modifying takes `&mut self`.
unsafe impl Send for Qp {}
// SAFETY: as above; `&self` methods only query.
unsafe impl Sync for Qp {}

impl Drop for Qp {
    fn drop(&mut self) {
        // SAFETY: a live queue pair, destroyed once, before the domain and
        // queue it holds.
        unsafe { (self.pd.ctx.v.destroy_qp)(self.qp.as_ptr()) };
    }
}

impl Qp {
    fn v(&self) -> &'static Verbs {
        self.pd.ctx.v
    }

    pub fn qpn(&self) -> u32 {
        // SAFETY: a live queue pair; its number is fixed at creation.
        unsafe { (*self.qp.as_ptr()).qp_num }
    }

    /// `ibv_modify_qp` with the fields of `mask`.
    fn modify(&mut self, attr: &mut ffi::ibv_qp_attr, mask: c_int, what: &str) -> io::Result<()> {
        // SAFETY: a live queue pair and attributes of the header's layout.
        check(what, unsafe {
            (self.v().modify_qp)(self.qp.as_ptr(), attr, mask)
        })
    }

    /// INIT → RTR → RTS towards `r`, with the smaller of the two ports'
    /// MTUs (a path MTU above the active one stalls the pair).
    pub fn connect(&mut self, dev: &Device, r: &Remote) -> io::Result<()> {
        let ah_attr = ffi::ibv_ah_attr {
            grh: ffi::ibv_global_route {
                dgid: ffi::ibv_gid { raw: r.gid },
                sgid_index: dev.gid_index as u8,
                hop_limit: 64,
                ..Default::default()
            },
            dlid: r.lid,
            sl: 0,
            is_global: 1,
            port_num: dev.port,
            ..Default::default()
        };
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::IBV_QPS_RTR,
            path_mtu: dev.mtu.min(r.mtu),
            dest_qp_num: r.qpn,
            rq_psn: 0,
            max_dest_rd_atomic: dev.max_rd_atomic,
            min_rnr_timer: 12,
            ah_attr,
            ..Default::default()
        };
        let mask = ffi::IBV_QP_STATE
            | ffi::IBV_QP_PATH_MTU
            | ffi::IBV_QP_DEST_QPN
            | ffi::IBV_QP_RQ_PSN
            | ffi::IBV_QP_MAX_DEST_RD_ATOMIC
            | ffi::IBV_QP_MIN_RNR_TIMER
            | ffi::IBV_QP_AV;
        self.modify(&mut attr, mask, "moving the queue pair to RTR")?;
        // Timeout 18 (~1 s) × 7 retries: the peer may still be bringing
        // its side up (eager connect, see the transport's doc).
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::IBV_QPS_RTS,
            sq_psn: 0,
            timeout: 18,
            retry_cnt: 7,
            rnr_retry: 7,
            max_rd_atomic: dev.max_rd_atomic,
            ..Default::default()
        };
        let mask = ffi::IBV_QP_STATE
            | ffi::IBV_QP_SQ_PSN
            | ffi::IBV_QP_TIMEOUT
            | ffi::IBV_QP_RETRY_CNT
            | ffi::IBV_QP_RNR_RETRY
            | ffi::IBV_QP_MAX_QP_RD_ATOMIC;
        self.modify(&mut attr, mask, "moving the queue pair to RTS")
    }

    /// Whether the pair went to the error state (a failed or flushed work
    /// request, or [`Qp::fail`]); a pair whose state cannot be read counts
    /// as failed.
    pub fn in_error(&self) -> bool {
        let mut attr = ffi::ibv_qp_attr::default();
        let mut init = ffi::ibv_qp_init_attr::zeroed();
        // SAFETY: a live queue pair and structs of the header's layout.
        let ret = unsafe {
            (self.v().query_qp)(self.qp.as_ptr(), &mut attr, ffi::IBV_QP_STATE, &mut init)
        };
        ret != 0 || matches!(attr.qp_state, ffi::IBV_QPS_ERR | ffi::IBV_QPS_SQE)
    }

    /// Moves the pair to the error state (flushing its work requests).
    pub fn fail(&mut self) {
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::IBV_QPS_ERR,
            ..Default::default()
        };
        let _ = self.modify(&mut attr, ffi::IBV_QP_STATE, "moving the queue pair to ERR");
    }

    /// Posts a receive into `arena[off..off + len]`.
    pub fn post_recv(
        &mut self,
        arena: &Arena,
        off: usize,
        len: usize,
        wr_id: u64,
    ) -> io::Result<()> {
        let mut sge = ffi::ibv_sge {
            addr: arena.addr(off, len),
            length: len as u32,
            lkey: arena.mr.lkey(),
        };
        let mut wr = ffi::ibv_recv_wr::zeroed();
        wr.wr_id = wr_id;
        wr.sg_list = &mut sge;
        wr.num_sge = 1;
        let mut bad = ptr::null_mut();
        // SAFETY: a live queue pair; the range is inside the registered
        // arena (checked by `addr`), which outlives the queue pair's use of
        // it; `wr` and `sge` are read during the call only.
        check("posting a receive", unsafe {
            ffi::post_recv(self.qp.as_ptr(), &mut wr, &mut bad)
        })
    }

    /// Posts one signaled send work request of `opcode` over `sge`.
    ///
    /// # Safety
    /// Unless `flags` holds `IBV_SEND_INLINE`, `sge` names registered
    /// memory that stays valid and borrowed until the completion.
    unsafe fn post(
        &mut self,
        opcode: u32,
        flags: u32,
        mut sge: ffi::ibv_sge,
        rdma: Option<(u64, u32)>,
        wr_id: u64,
    ) -> io::Result<()> {
        let mut wr = ffi::ibv_send_wr::zeroed();
        wr.wr_id = wr_id;
        wr.sg_list = &mut sge;
        wr.num_sge = 1;
        wr.opcode = opcode;
        wr.send_flags = ffi::IBV_SEND_SIGNALED | flags;
        if let Some((remote_addr, rkey)) = rdma {
            wr.wr.rdma = ffi::ibv_send_wr_rdma { remote_addr, rkey };
        }
        let mut bad = ptr::null_mut();
        // SAFETY: a live queue pair; `wr` and `sge` are read during the
        // call only (inline data is copied then); the memory `sge` names is
        // the caller's contract.
        check("posting a send", unsafe {
            ffi::post_send(self.qp.as_ptr(), &mut wr, &mut bad)
        })
    }

    /// Sends `arena[off..off + len]`.
    pub fn post_send(
        &mut self,
        arena: &Arena,
        off: usize,
        len: usize,
        wr_id: u64,
    ) -> io::Result<()> {
        let sge = ffi::ibv_sge {
            addr: arena.addr(off, len),
            length: len as u32,
            lkey: arena.mr.lkey(),
        };
        // SAFETY: inside the registered arena; the slot is not reused
        // before this send's completion (the transport frees it then).
        unsafe { self.post(ffi::IBV_WR_SEND, 0, sge, None, wr_id) }
    }

    /// Sends `bytes` inline (copied at post time; `bytes.len() <= inline`).
    pub fn post_inline(&mut self, bytes: &[u8], wr_id: u64) -> io::Result<()> {
        let sge = ffi::ibv_sge {
            addr: bytes.as_ptr() as u64,
            length: bytes.len() as u32,
            lkey: 0,
        };
        // SAFETY: inline: the bytes are copied during the call.
        unsafe { self.post(ffi::IBV_WR_SEND, ffi::IBV_SEND_INLINE, sge, None, wr_id) }
    }

    /// Writes `len` bytes at `addr` (inside `local`'s registration) to the
    /// peer's `raddr` (key `rkey`). See the module doc for the borrow the
    /// caller keeps until completion.
    pub fn post_write(
        &mut self,
        local: &Region,
        addr: u64,
        len: usize,
        raddr: u64,
        rkey: u32,
        wr_id: u64,
    ) -> io::Result<()> {
        let sge = ffi::ibv_sge {
            addr,
            length: len as u32,
            lkey: local.lkey(),
        };
        // SAFETY: `addr..addr + len` lies in `local`'s registration; the
        // caller keeps that buffer borrowed until the completion.
        unsafe { self.post(ffi::IBV_WR_RDMA_WRITE, 0, sge, Some((raddr, rkey)), wr_id) }
    }
}

/// Makes glibc's malloc keep the memory it frees (it no longer trims the
/// heap, nor maps large blocks of their own), as MPI libraries do for a
/// registration cache without memory hooks: an address of the heap then
/// keeps its pages for the life of the process, so a cached registration
/// of it never goes stale. Returns where the heap starts (`start_brk` of
/// `/proc/self/stat`), or `None` if this cannot be arranged (then nothing
/// may be cached).
pub fn keep_heap() -> Option<usize> {
    let start = start_brk(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only changes malloc's tunables.
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, -1) == 1
        };
        (ok && start > 0).then_some(start)
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = start;
        None
    }
}

/// `start_brk` of a `/proc/<pid>/stat` line: the 47th field, counted
/// after the command name (in parentheses, and free to hold spaces and
/// parentheses itself).
fn start_brk(stat: &str) -> Option<usize> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts with the 3rd field (the state).
    rest.split_whitespace().nth(47 - 3)?.parse().ok()
}

/// Where the heap ends now (the program break).
pub fn heap_end() -> usize {
    // SAFETY: sbrk(0) only reads the current break.
    unsafe { libc::sbrk(0) as usize }
}

/// Whether process `pid` still exists (only `ESRCH` says no).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let ret = unsafe { libc::kill(pid as libc::pid_t, 0) };
    ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A failed registration of `len` bytes, with the system's reason and,
/// when the locked-memory limit is the likely cause, what to raise.
fn reg_error(os: io::Error, len: usize) -> io::Error {
    let limit = match os.raw_os_error() {
        Some(libc::ENOMEM | libc::EPERM | libc::EAGAIN) => memlock_limit(),
        _ => None,
    };
    let hint = match limit {
        Some(l) => format!(
            "; the locked-memory limit (ulimit -l) is {} KiB: raise it (ulimit -l unlimited, or memlock in /etc/security/limits.conf)",
            l / 1024
        ),
        None => String::new(),
    };
    io::Error::new(
        os.kind(),
        format!("registering {len} bytes failed: {os}{hint}"),
    )
}

/// `RLIMIT_MEMLOCK`'s soft limit in bytes, unless unlimited.
fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return None;
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_start_is_the_47th_field_whatever_the_command_name() {
        let tail = (4..=52)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("4242 (a b) c)) S {tail}\n");
        // Field 47 of this line holds "47".
        assert_eq!(start_brk(&line), Some(47));
        assert_eq!(start_brk("4242 (short) S 1 2 3"), None);
        assert_eq!(start_brk("no parenthesis"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let start = start_brk(&own).expect("this kernel reports start_brk");
        assert!(
            start > 0 && start <= heap_end(),
            "{start:#x} {:#x}",
            heap_end()
        );
    }
}
