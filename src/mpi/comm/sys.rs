//! The Linux calls the shared-memory transport needs that std does not
//! wrap: anonymous memory files, shared mappings, futexes, cross-memory
//! reads and the Yama ptracer opt-in. All of the comm subsystem's `unsafe`
//! lives here; everything else sees safe wrappers returning `io::Result`.
//!
//! The one abstraction with an invariant is [`SharedMap`]: memory that other
//! processes write concurrently. It never hands out `&[u8]` or `&mut [u8]`
//! into that memory (a peer could change it under the reference, which Rust
//! forbids); it hands out atomics (whose concurrent mutation is allowed) and
//! copies bytes in and out with raw-pointer copies. A misbehaving peer can
//! therefore give us wrong bytes, never break this process's memory safety.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new anonymous memory file of `len` zero bytes (`memfd_create`): it
/// lives as long as some process holds it open or mapped, so a crash leaves
/// nothing behind in `/dev/shm`.
pub fn memfd(name: &str, len: usize) -> io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len as u64)?;
    Ok(file)
}

/// One `MAP_SHARED` mapping of the first `len` (> 0) bytes of a file,
/// unmapped on drop; the types below decide how it may be accessed.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value, valid from any
// thread; `Mapping` itself hands out nothing (the wrappers below state how
// their accesses are sound).
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(file: &File, len: usize, prot: libc::c_int) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::other("cannot map zero bytes"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint) cannot
        // overlap any Rust object; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, unmapped only here;
        // every reference the wrappers hand out borrows them, so none
        // survives this.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A read-write shared mapping of a whole file that other processes write
/// concurrently: accessed through atomics and raw copies only (see the
/// module doc).
#[derive(Debug)]
pub struct SharedMap {
    m: Mapping,
}

impl SharedMap {
    /// Maps the first `len` bytes of `file` shared, read-write.
    pub fn new(file: &File, len: usize) -> io::Result<SharedMap> {
        Ok(SharedMap {
            m: Mapping::new(file, len, libc::PROT_READ | libc::PROT_WRITE)?,
        })
    }

    /// This process's address of byte `off` (what a peer passes to
    /// `process_vm_readv`).
    pub fn addr(&self, off: usize) -> usize {
        assert!(
            off < self.m.len,
            "offset {off} past a mapping of {} bytes",
            self.m.len
        );
        self.m.ptr.as_ptr() as usize + off
    }

    fn at(&self, off: usize, size: usize, align: usize) -> *mut u8 {
        assert!(
            off.checked_add(size).is_some_and(|end| end <= self.m.len) && off % align == 0,
            "access of {size} bytes at {off} outside or misaligned in a mapping of {} bytes",
            self.m.len
        );
        // SAFETY: in bounds, checked just above.
        unsafe { self.m.ptr.as_ptr().add(off) }
    }

    /// The 64-bit atomic at `off` (8-aligned).
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        let p = self.at(off, 8, 8);
        // SAFETY: in bounds and aligned (mmap returns page-aligned memory,
        // `at` checks the offset); atomics tolerate concurrent writers in
        // other processes; the reference cannot outlive the mapping.
        unsafe { AtomicU64::from_ptr(p.cast()) }
    }

    /// The 32-bit atomic at `off` (4-aligned).
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        let p = self.at(off, 4, 4);
        // SAFETY: as in `u64_at`.
        unsafe { AtomicU32::from_ptr(p.cast()) }
    }

    /// Copies `src` into the mapping at `off`.
    pub fn write(&self, off: usize, src: &[u8]) {
        let p = self.at(off, src.len(), 1);
        // SAFETY: the destination range is inside the mapping (checked by
        // `at`) and cannot overlap `src`, which is ordinary Rust memory; no
        // reference into the mapping is formed (see the module doc).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) }
    }

    /// Copies bytes at `off` out of the mapping into `dst`.
    pub fn read(&self, off: usize, dst: &mut [u8]) {
        let p = self.at(off, dst.len(), 1);
        // SAFETY: as in `write`, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) }
    }
}

/// A read-only shared mapping of a peer's buffer file: the peer writes it,
/// this process only copies out of it.
#[derive(Debug)]
pub struct ReadOnlyMap {
    m: Mapping,
}

impl ReadOnlyMap {
    /// Maps the first `len` bytes of `file` shared, read-only.
    pub fn new(file: &File, len: usize) -> io::Result<ReadOnlyMap> {
        Ok(ReadOnlyMap {
            m: Mapping::new(file, len, libc::PROT_READ)?,
        })
    }

    pub fn len(&self) -> usize {
        self.m.len
    }

    /// Copies bytes at `off` out of the mapping into `dst`; false when the
    /// range is outside the mapping.
    pub fn read(&self, off: usize, dst: &mut [u8]) -> bool {
        if off.checked_add(dst.len()).is_none_or(|end| end > self.m.len) {
            return false;
        }
        // SAFETY: the source range is inside the mapping (checked above)
        // and cannot overlap `dst`, ordinary Rust memory; no reference into
        // the mapping is formed, so a writer in the other process breaks
        // nothing here (it can only change the bytes we copy).
        unsafe {
            std::ptr::copy_nonoverlapping(self.m.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        };
        true
    }
}

/// This process's buffer in a memory file that peers map read-only
/// ([`ReadOnlyMap`]): only this process writes it, so it can be lent out as
/// an ordinary byte slice.
#[derive(Debug)]
pub struct OwnedShared {
    m: Mapping,
}

impl OwnedShared {
    /// Maps the first `len` (> 0) bytes of `file` shared, read-write.
    pub fn new(file: &File, len: usize) -> io::Result<OwnedShared> {
        Ok(OwnedShared {
            m: Mapping::new(file, len, libc::PROT_READ | libc::PROT_WRITE)?,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `len` valid bytes for as long as `self`;
        // no other process writes it (peers map it read-only and the file
        // is reached only through this process's descriptor), and `&self`
        // excludes our own writes for the slice's life.
        unsafe { std::slice::from_raw_parts(self.m.ptr.as_ptr(), self.m.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes it the only view.
        unsafe { std::slice::from_raw_parts_mut(self.m.ptr.as_ptr(), self.m.len) }
    }
}

/// Sleeps while `word` holds `expected`, at most `timeout`; returns whether
/// the timeout expired. A wake, a changed value or a signal return `false`
/// (the caller rechecks its condition in every case). Shared futex (no
/// `FUTEX_PRIVATE_FLAG`): the word lives in memory mapped by several
/// processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> io::Result<bool> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call;
    // FUTEX_WAIT only reads it; `ts` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
    if ret == 0 {
        return Ok(false);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ETIMEDOUT) => Ok(true),
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
        _ => Err(err),
    }
}

/// Wakes every sleeper on `word` (in any process).
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// Copies `buf.len()` bytes from address `addr` of process `pid` into `buf`
/// (`process_vm_readv`, one copy, no shared mapping); returns the bytes
/// copied, which may be fewer.
pub fn vm_read(pid: u32, addr: usize, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we borrow mutably for the call;
    // the remote range is checked by the kernel against the other process's
    // mappings and never dereferenced here.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Lets any process of ours read this one's memory with `process_vm_readv`
/// under Yama's `ptrace_scope=1` (`PR_SET_PTRACER_ANY`); a kernel without
/// Yama answers `EINVAL`, which is fine: nothing to relax there.
pub fn allow_any_ptracer() -> io::Result<()> {
    // SAFETY: prctl with integer arguments touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0) };
    match check(ret) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Whether process `pid` still exists (`kill(pid, 0)`: only `ESRCH` says no).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks existence and permission; nothing is sent.
    let ret = unsafe { libc::kill(pid as libc::pid_t, 0) };
    ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Waits until `fd` is readable (or, with `write`, writable), at most
/// `timeout`; returns whether it is (`poll`). A hang-up or error on the
/// descriptor counts as ready: the next read or write reports it.
pub fn wait_fd(fd: std::os::fd::RawFd, write: bool, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: if write { libc::POLLOUT } else { libc::POLLIN },
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one pollfd we own, valid for the call.
    let ret = unsafe { libc::poll(&mut p, 1, ms) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(ret > 0)
}
