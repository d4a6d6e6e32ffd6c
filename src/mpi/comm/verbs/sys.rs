//! Everything the verbs transport asks of libibverbs, over `sideway` (and
//! `rdma-mummy-sys` for the completion-channel calls sideway does not wrap).
//! All of the verbs subsystem's `unsafe` lives here; the rest of the
//! transport sees owned handles and safe functions.
//!
//! Resources are reference-counted by sideway and freed in its `Drop`s in
//! the right order (queue pairs and memory regions hold their protection
//! domain, which holds the device context). Only the classic
//! `ibv_post_send`/`ibv_post_recv`/`ibv_poll_cq` path is used: sideway's
//! extended `ibv_wr_*` path fails on Soft-RoCE (kernel 6.1; see the spec).
//!
//! The one invariant callers must keep is on [`Qp::post_write`] and on
//! registered user buffers: a buffer must stay borrowed while the device
//! may touch it, that is until the write's completion (sender) or the
//! peer's FIN (receiver). The transport keeps the message in progress (and
//! a clone of its [`Region`]) until then, and on failure moves the queue
//! pair to the error state, after which the device neither reads nor
//! accepts writes for it, before returning the error.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use sideway::ibverbs::AccessFlags;
use sideway::ibverbs::address::{AddressHandleAttribute, Gid, GidType};
use sideway::ibverbs::completion::{
    BasicCompletionQueue, CompletionChannel, CompletionQueue, GenericCompletionQueue,
    WorkCompletionStatus,
};
use sideway::ibverbs::device::{DeviceInfo, DeviceList};
use sideway::ibverbs::device_context::{DeviceContext, Mtu, PortState};
use sideway::ibverbs::memory_region::{
    MemoryRegion, RegisterMemoryRegionError, RegisterMemoryRegionErrorKind,
};
use sideway::ibverbs::protection_domain::ProtectionDomain;
use sideway::ibverbs::queue_pair::{
    BasicQueuePair, PostSendGuard, QueuePair, QueuePairAttribute, QueuePairAttributeMask,
    QueuePairState, QueuePairType, SetInlineData, SetScatterGatherEntry, WorkRequestFlags,
};

use super::endpoint::PortInfo;

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

/// The active ports of every device, with their GIDs (RoCE v2 and
/// InfiniBand ones; RoCE v1 is left out, it does not cross IP routers).
pub fn discover() -> Result<Vec<PortInfo>, String> {
    let list = DeviceList::new().map_err(|e| list_error(&ibverbs_io(&e.0)))?;
    if list.is_empty() {
        return Err("no RDMA device (the kernel supports RDMA, but lists no device)".into());
    }
    let mut ports = Vec::new();
    let mut seen = Vec::new();
    for dev in list.iter() {
        let name = dev.name();
        let Ok(ctx) = dev.open() else {
            seen.push(format!("{name} (cannot open)"));
            continue;
        };
        let Ok(attr) = ctx.query_device() else {
            seen.push(format!("{name} (cannot query)"));
            continue;
        };
        let table = ctx.query_gid_table().unwrap_or_default();
        for port in 1..=attr.phys_port_cnt() {
            let active = ctx
                .query_port(port)
                .is_ok_and(|p| p.port_state() == PortState::Active);
            if !active {
                seen.push(format!("{name}:{port} (not active)"));
                continue;
            }
            let gids = table
                .iter()
                .filter(|g| g.port_num() == u32::from(port))
                .filter(|g| matches!(g.gid_type(), GidType::RoceV2 | GidType::InfiniBand))
                .filter(|g| !g.gid().is_zero())
                .map(|g| (g.gid_index(), g.gid().raw))
                .collect::<Vec<_>>();
            let gids = if gids.is_empty() {
                // No GID table query (older kernels): the port GID.
                ctx.query_gid(port, 0)
                    .map(|g| vec![(0, g.raw)])
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

fn ibverbs_io(e: &sideway::ibverbs::device::GetDeviceListErrorKind) -> io::Error {
    match e {
        sideway::ibverbs::device::GetDeviceListErrorKind::Ibverbs(e) => {
            io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO))
        }
        #[allow(unreachable_patterns)]
        _ => io::Error::other("unknown error"),
    }
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
    // Held for the lifetime of everything opened on it.
    _ctx: Arc<DeviceContext>,
    pd: Arc<ProtectionDomain>,
    cq: Arc<BasicCompletionQueue>,
    chan: Arc<CompletionChannel>,
}

impl Device {
    /// Opens `name`'s `port`, with a completion queue of `cqe` entries.
    pub fn open(name: &str, port: u8, gid_index: u32, cqe: u32) -> io::Result<Device> {
        let list = DeviceList::new().map_err(|e| ibverbs_io(&e.0))?;
        let dev = list
            .iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "device vanished"))?;
        let ctx = dev.open().map_err(io::Error::other)?;
        let attr = ctx.query_device().map_err(io::Error::other)?;
        let pattr = ctx.query_port(port).map_err(io::Error::other)?;
        let gid = ctx.query_gid(port, gid_index).map_err(io::Error::other)?;
        let pd = ctx.alloc_pd().map_err(io::Error::other)?;
        let chan = ctx.create_comp_channel().map_err(io::Error::other)?;
        chan.set_nonblocking(true)?;
        let cq = ctx
            .create_cq_builder()
            .setup_cqe(cqe)
            .setup_comp_channel(&chan, 0)
            .build()
            .map_err(io::Error::other)?;
        Ok(Device {
            name: name.to_string(),
            port,
            gid_index,
            gid: gid.raw,
            lid: pattr.lid(),
            mtu: pattr.active_mtu() as u32,
            max_rd_atomic: attr.max_qp_rd_atom().clamp(1, 16) as u8,
            _ctx: ctx,
            pd,
            cq,
            chan,
        })
    }

    /// A reliable-connected queue pair in the INIT state.
    pub fn create_qp(&self, send_wr: u32, recv_wr: u32, inline: u32) -> io::Result<Qp> {
        let cq = || GenericCompletionQueue::from(Arc::clone(&self.cq));
        let build = |inline: u32| {
            self.pd
                .create_qp_builder()
                .setup_qp_type(QueuePairType::ReliableConnection)
                .setup_max_send_wr(send_wr)
                .setup_max_recv_wr(recv_wr)
                .setup_max_send_sge(1)
                .setup_max_recv_sge(1)
                .setup_max_inline_data(inline)
                .setup_send_cq(cq())
                .setup_recv_cq(cq())
                .build()
        };
        let (mut qp, inline) = match build(inline) {
            Ok(qp) => (qp, inline),
            Err(_) => (build(0).map_err(io::Error::other)?, 0),
        };
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::Init)
            .setup_pkey_index(0)
            .setup_port(self.port)
            .setup_access_flags(
                AccessFlags::LocalWrite | AccessFlags::RemoteRead | AccessFlags::RemoteWrite,
            );
        qp.modify(&attr).map_err(io::Error::other)?;
        Ok(Qp { qp, inline })
    }

    /// Memory of `len` bytes registered for local writes (receive buffers)
    /// and sends.
    pub fn arena(&self, len: usize) -> io::Result<Arena> {
        let mem = vec![0u8; len.max(1)].into_boxed_slice();
        let ptr = mem.as_ptr() as usize;
        // SAFETY: `mem` is a live allocation of `len` bytes owned by the
        // returned Arena together with the region, and the Arena drops the
        // region (deregisters) before freeing `mem` (field order).
        let mr = unsafe { self.pd.reg_mr(ptr, mem.len(), AccessFlags::LocalWrite) }
            .map_err(|e| reg_error(e, mem.len()))?;
        Ok(Arena { mr, mem })
    }

    /// Registers a user buffer for RDMA: `writable` for the target of the
    /// peer's writes, else only as the source of this rank's.
    pub fn register(&self, addr: usize, len: usize, writable: bool) -> io::Result<Region> {
        let access = if writable {
            AccessFlags::LocalWrite | AccessFlags::RemoteWrite
        } else {
            AccessFlags::RemoteRead
        };
        // SAFETY: registering only pins the pages and records the range;
        // the device touches them only through work requests this module
        // posts, whose callers keep the buffer borrowed (see the module doc).
        let mr = unsafe { self.pd.reg_mr(addr, len.max(1), access) }
            .map_err(|e| reg_error(e, len))?;
        Ok(Region { mr })
    }

    /// Polls the available completions into `out`.
    pub fn poll(&self, out: &mut Vec<Completion>) -> io::Result<()> {
        match self.cq.start_poll() {
            Ok(poller) => {
                for wc in poller {
                    out.push(Completion {
                        wr_id: wc.wr_id(),
                        status: wc.status(),
                        byte_len: wc.byte_len(),
                    });
                }
                Ok(())
            }
            Err(sideway::ibverbs::completion::PollCompletionQueueError::CompletionQueueEmpty) => {
                Ok(())
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// Arms the completion queue and sleeps until a completion event or
    /// `timeout`. Completions that arrived before arming (they raise no
    /// event) are polled into `out` instead of sleeping.
    pub fn wait(&self, timeout: Duration, out: &mut Vec<Completion>) -> io::Result<()> {
        // SAFETY: the cq pointer is valid while `self.cq` lives.
        let cq = unsafe { self.cq.cq() }.as_ptr();
        // SAFETY: as above; a plain request on a valid queue.
        let ret = unsafe { rdma_mummy_sys::ibv_req_notify_cq(cq, 0) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        let before = out.len();
        self.poll(out)?;
        if out.len() > before {
            return Ok(());
        }
        let mut pfd = libc::pollfd {
            fd: self.chan.as_raw_fd(),
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
            let mut ev_cq: *mut rdma_mummy_sys::ibv_cq = std::ptr::null_mut();
            let mut ctx: *mut std::ffi::c_void = std::ptr::null_mut();
            // SAFETY: the channel is valid while `self.chan` lives and
            // non-blocking; the out-pointers are valid locals.
            let ret = unsafe {
                rdma_mummy_sys::ibv_get_cq_event(
                    self.chan.comp_channel().as_ptr(),
                    &mut ev_cq,
                    &mut ctx,
                )
            };
            if ret == 0 {
                // SAFETY: acknowledges the one event just taken from our cq.
                unsafe { rdma_mummy_sys::ibv_ack_cq_events(ev_cq, 1) };
            }
        }
        Ok(())
    }
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
        self.status == WorkCompletionStatus::Success as u32
    }

    /// The status in words (ibv_wc_status_str).
    pub fn status_text(&self) -> String {
        // SAFETY: ibv_wc_status_str returns a static string for any value.
        let p = unsafe { rdma_mummy_sys::ibv_wc_status_str(self.status) };
        if p.is_null() {
            return format!("status {}", self.status);
        }
        // SAFETY: a NUL-terminated static string from libibverbs.
        let s = unsafe { std::ffi::CStr::from_ptr(p) };
        format!("{} (status {})", s.to_string_lossy(), self.status)
    }
}

/// Registered memory owned by the transport (receive buffers, send slots).
pub struct Arena {
    mr: Arc<MemoryRegion>,
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
    mr: Arc<MemoryRegion>,
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

/// A reliable-connected queue pair.
pub struct Qp {
    qp: BasicQueuePair,
    pub inline: u32,
}

impl Qp {
    pub fn qpn(&self) -> u32 {
        self.qp.qp_number()
    }

    /// INIT → RTR → RTS towards `r`, with the smaller of the two ports'
    /// MTUs (a path MTU above the active one stalls the pair).
    pub fn connect(&mut self, dev: &Device, r: &Remote) -> io::Result<()> {
        let mut attr = QueuePairAttribute::new();
        let mut ah = AddressHandleAttribute::new();
        ah.setup_dest_lid(r.lid)
            .setup_port(dev.port)
            .setup_service_level(0)
            .setup_grh_src_gid_index(dev.gid_index as u8)
            .setup_grh_dest_gid(&Gid { raw: r.gid })
            .setup_grh_hop_limit(64);
        attr.setup_state(QueuePairState::ReadyToReceive)
            .setup_path_mtu(Mtu::from(dev.mtu.min(r.mtu)))
            .setup_dest_qp_num(r.qpn)
            .setup_rq_psn(0)
            .setup_max_dest_read_atomic(dev.max_rd_atomic)
            .setup_min_rnr_timer(12)
            .setup_address_vector(&ah);
        self.qp.modify(&attr).map_err(io::Error::other)?;
        let mut attr = QueuePairAttribute::new();
        // Timeout 18 (~1 s) × 7 retries: the peer may still be bringing
        // its side up (eager connect, see the transport's doc).
        attr.setup_state(QueuePairState::ReadyToSend)
            .setup_sq_psn(0)
            .setup_timeout(18)
            .setup_retry_cnt(7)
            .setup_rnr_retry(7)
            .setup_max_read_atomic(dev.max_rd_atomic);
        self.qp.modify(&attr).map_err(io::Error::other)
    }

    /// Whether the pair went to the error state (a failed or flushed work
    /// request, or [`Qp::fail`]); a pair whose state cannot be read counts
    /// as failed.
    pub fn in_error(&self) -> bool {
        match self.qp.query(QueuePairAttributeMask::State) {
            Ok((attr, _)) => matches!(
                attr.state(),
                QueuePairState::Error | QueuePairState::SendQueueError
            ),
            Err(_) => true,
        }
    }

    /// Moves the pair to the error state (flushing its work requests).
    pub fn fail(&mut self) {
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::Error);
        let _ = self.qp.modify(&attr);
    }

    /// Posts a receive into `arena[off..off + len]`.
    pub fn post_recv(
        &mut self,
        arena: &Arena,
        off: usize,
        len: usize,
        wr_id: u64,
    ) -> io::Result<()> {
        let addr = arena.addr(off, len);
        let mut g = self.qp.start_post_recv();
        let wr = g.construct_wr(wr_id);
        // SAFETY: the range is inside the registered arena (checked by
        // `addr`), which outlives the queue pair's use of it.
        unsafe { wr.setup_sge(arena.mr.lkey(), addr, len as u32) };
        g.post().map_err(io::Error::other)
    }

    /// Sends `arena[off..off + len]`.
    pub fn post_send(
        &mut self,
        arena: &Arena,
        off: usize,
        len: usize,
        wr_id: u64,
    ) -> io::Result<()> {
        let addr = arena.addr(off, len);
        let mut g = self.qp.start_post_send();
        let wr = g
            .construct_wr(wr_id, WorkRequestFlags::Signaled)
            .setup_send();
        // SAFETY: inside the registered arena; the slot is not reused
        // before this send's completion (the transport frees it then).
        unsafe { wr.setup_sge(arena.mr.lkey(), addr, len as u32) };
        g.post().map_err(io::Error::other)
    }

    /// Sends `bytes` inline (copied at post time; `bytes.len() <= inline`).
    pub fn post_inline(&mut self, bytes: &[u8], wr_id: u64) -> io::Result<()> {
        let mut g = self.qp.start_post_send();
        g.construct_wr(wr_id, WorkRequestFlags::Signaled)
            .setup_send()
            .setup_inline_data(bytes);
        g.post().map_err(io::Error::other)
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
        let mut g = self.qp.start_post_send();
        let wr = g
            .construct_wr(wr_id, WorkRequestFlags::Signaled)
            .setup_write(rkey, raddr);
        // SAFETY: `addr..addr + len` lies in `local`'s registration; the
        // caller keeps that buffer borrowed until the completion.
        unsafe { wr.setup_sge(local.lkey(), addr, len as u32) };
        g.post().map_err(io::Error::other)
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
fn reg_error(e: RegisterMemoryRegionError, len: usize) -> io::Error {
    let os = match e.0 {
        RegisterMemoryRegionErrorKind::Ibverbs(os) => os,
        other => return io::Error::other(format!("registering {len} bytes failed: {other}")),
    };
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
