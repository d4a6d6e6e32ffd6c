//! The Linux calls the node agent needs that std does not wrap: CPU
//! affinity, sessions, process-file descriptors, signal descriptors, the
//! child subreaper, users. All of the agent's `unsafe` lives here; each
//! function is a safe wrapper that returns `io::Result`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Binds the calling process to `cpus` (host logical CPU numbers).
pub fn set_affinity(cpus: &[u32]) -> io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; zeroed is its empty value, CPU_SET
    // writes inside it for indexes below CPU_SETSIZE, which we check.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            if (c as usize) < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(c as usize, &mut set);
            }
        }
        check(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)).map(|_| ())
    }
}

/// The CPUs the calling process may run on.
pub fn affinity() -> io::Result<Vec<u32>> {
    // SAFETY: as in `set_affinity`; sched_getaffinity fills the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        check(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set))?;
        Ok((0..libc::CPU_SETSIZE as usize).filter(|c| libc::CPU_ISSET(*c, &set)).map(|c| c as u32).collect())
    }
}

/// Starts a new session (and process group) led by the calling process.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid has no memory-safety preconditions.
    check(unsafe { libc::setsid() }).map(|_| ())
}

/// Makes the kernel SIGKILL the calling process when the thread that
/// started it ends (for a rank started by the launch service: when its
/// `hpcd run-rank` dies). The kernel clears this setting when the process
/// changes its user or group ids, so call it after [`set_ids`].
/// Async-signal-safe, for use between fork and exec.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }).map(|_| ())
}

/// Has `sig` sent to the calling process when the thread that started it
/// ends (async-signal-safe, for use between fork and exec).
pub fn parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) }).map(|_| ())
}

/// Sets the calling process's nice value (async-signal-safe, for use
/// between fork and exec).
pub fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority on the calling process takes plain integers.
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) }).map(|_| ())
}

/// Whether this process may give a child the nice value `nice`: lowering
/// priority always works; raising it needs root (CAP_SYS_NICE) or an
/// `RLIMIT_NICE` that allows it.
pub fn may_set_nice(nice: i32) -> bool {
    if nice >= 0 {
        return true;
    }
    // SAFETY: geteuid has no arguments; getrlimit fills the struct we own.
    unsafe {
        if libc::geteuid() == 0 {
            return true;
        }
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NICE, &mut lim) != 0 {
            return false;
        }
        // RLIMIT_NICE n allows nice values down to 20 - n.
        lim.rlim_cur == libc::RLIM_INFINITY || 20 - (lim.rlim_cur as i64) <= i64::from(nice)
    }
}

/// Makes `fd` available as descriptor `target` across exec (between fork
/// and exec: async-signal-safe, no allocation).
pub fn inherit_fd_as(fd: RawFd, target: RawFd) -> io::Result<()> {
    if fd == target {
        // SAFETY: fcntl on a descriptor this process owns; clearing
        // FD_CLOEXEC touches no memory.
        return check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(|_| ());
    }
    // SAFETY: dup2 onto a descriptor number; the copy it makes has
    // FD_CLOEXEC clear, and `target` is replaced atomically.
    check(unsafe { libc::dup2(fd, target) }).map(|_| ())
}

/// Takes ownership of descriptor `fd`, inherited from the parent (see
/// [`inherit_fd_as`]); an error if it is not open.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only checks that the descriptor is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open and nothing else in this process owns
    // it (the parent put it there for us); set close-on-exec so the rank we
    // start does not inherit it.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Unblocks every signal and restores default dispositions for the
/// signals the supervisor handles, so a task starts with a clean slate.
pub fn reset_signals() -> io::Result<()> {
    // SAFETY: sigset_t is initialised by sigemptyset before use; signal() with
    // SIG_DFL is always valid for these catchable signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        check(libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()))?;
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(s, libc::SIG_DFL);
        }
    }
    Ok(())
}

fn cancel_signal_set() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

static CANCEL_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_cancel(_: libc::c_int) {
    CANCEL_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// From now on SIGTERM, SIGINT and SIGHUP do not end the process but set a
/// flag [`cancel_requested`] reads: a disposition is the whole process's,
/// whatever threads it has (a mask is one thread's), and a program it
/// starts gets the default again at exec.
pub fn catch_cancel_signals() -> io::Result<()> {
    for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        if unsafe { libc::signal(s, note_cancel as *const () as libc::sighandler_t) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether a signal [`catch_cancel_signals`] catches came.
pub fn cancel_requested() -> bool {
    CANCEL_REQUESTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling process.
pub fn block_cancel_signals() -> io::Result<()> {
    let set = cancel_signal_set();
    // SAFETY: set is a valid, initialised signal set.
    check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) }).map(|_| ())
}

/// Blocks the cancel signals in the calling thread until dropped.
pub struct CancelSignalsBlocked {
    old: libc::sigset_t,
}

impl CancelSignalsBlocked {
    pub fn new() -> CancelSignalsBlocked {
        let set = cancel_signal_set();
        // SAFETY: both sets are valid; pthread_sigmask only affects this thread.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            CancelSignalsBlocked { old }
        }
    }
}

impl Default for CancelSignalsBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CancelSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new` in the same thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP and returns a descriptor that reads them.
pub fn signal_fd() -> io::Result<OwnedFd> {
    block_cancel_signals()?;
    let set = cancel_signal_set();
    // SAFETY: signalfd reads the initialised set and returns a new
    // descriptor that we own.
    unsafe {
        let fd = check(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Drains a signal descriptor; true if a signal was read.
pub fn read_signal(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    let mut got = false;
    loop {
        // SAFETY: reads into a buffer we own of the size we pass.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return got;
        }
        got = true;
    }
}

/// A descriptor that becomes readable when process `pid` exits.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: the syscall returns a new descriptor that we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (-1: no
/// limit). Returns which are readable.
pub fn poll(fds: &[&OwnedFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    loop {
        // SAFETY: p is a valid array of p.len() pollfd structures.
        let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(p.iter().map(|x| x.revents != 0).collect());
    }
}

/// Waits until one of `fds` has one of its `events` or `timeout_ms` passes
/// (-1: no limit), for a loop that watches many raw descriptors (the
/// launch service's pending connections). Fills each `revents`; returns
/// how many have some. An interrupted wait returns 0, so the caller
/// recomputes its deadlines.
pub fn poll_raw(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid, exclusively borrowed array of fds.len() pollfd
    // structures; poll writes only their revents.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
    }
    Ok(r as usize)
}

/// Raises this process's soft limit on open descriptors towards its hard
/// limit, but not past `cap`; returns the soft limit before and after. A
/// server that holds a descriptor per client should not fail at the
/// default of 1024 when the administrator allowed more.
pub fn raise_nofile_limit(cap: u64) -> io::Result<(u64, u64)> {
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        check(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
        let old = lim.rlim_cur as u64;
        let want = (lim.rlim_max as u64).min(cap);
        if want <= old {
            return Ok((old, old));
        }
        lim.rlim_cur = want as libc::rlim_t;
        check(libc::setrlimit(libc::RLIMIT_NOFILE, &lim))?;
        Ok((old, want))
    }
}

/// The groups `name` belongs to, its primary group `gid` included, as
/// `initgroups` would set them; computed before a fork, since reading the
/// group database is not async-signal-safe.
pub fn group_list(name: &str, gid: u32) -> io::Result<Vec<libc::gid_t>> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name has a NUL byte"))?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..8 {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: c is a valid C string; groups has room for n entries and
        // getgrouplist writes at most n of them, setting n to the count (or
        // to the size needed when it returns -1).
        let r = unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if r >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        groups.resize((n.max(0) as usize).max(groups.len() * 2), 0);
    }
    Err(io::Error::other(format!("the group list of user {name} keeps growing")))
}

/// Becomes user `uid` with primary group `gid` and supplementary `groups`
/// (setgroups, setgid, setuid, in that order: each needs the privilege the
/// next one gives up). Async-signal-safe, for use between fork and exec.
pub fn set_ids(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: groups is a valid array of groups.len() gids; setgid and
    // setuid take plain integers.
    unsafe {
        check(libc::setgroups(groups.len(), groups.as_ptr()))?;
        check(libc::setgid(gid))?;
        check(libc::setuid(uid))?;
    }
    Ok(())
}

/// Changes the working directory (async-signal-safe, for use between fork
/// and exec, where the path was made into a C string before the fork).
pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(|_| ())
}

/// Sends `sig` to process `pid`; a process that is gone is not an error.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    match check(unsafe { libc::kill(pid as libc::pid_t, sig) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Sends `sig` to process group `pgid`.
pub fn killpg(pgid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: as for kill; a negative pid addresses the group.
    match check(unsafe { libc::kill(-(pgid as libc::pid_t), sig) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Ends the process the way SIGPIPE ends a Unix tool whose reader went
/// away (`job list | head -1`): quietly, with the status a shell reports
/// as 141. Rust ignores SIGPIPE, so writes fail with EPIPE instead; this
/// puts the default back and raises it.
pub fn end_by_sigpipe() -> ! {
    // SAFETY: signal with SIG_DFL and raise take plain integers.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}

/// True if process `pid` exists.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Makes the calling process adopt orphaned descendants, so none of a task's
/// processes escapes being waited for and killed.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

/// How a waited-for process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The exit code a task reports: the code, or 128 + the signal, as a
    /// shell reports a process killed by a signal.
    pub fn code(self) -> i64 {
        match self {
            Exit::Code(c) => c as i64,
            Exit::Signal(s) => 128 + s as i64,
        }
    }
}

/// Waits for child `pid` (any child with `None`); `block` false returns
/// `Ok(None)` at once if none has ended. `Err` with ECHILD when there are no
/// children.
pub fn wait(pid: Option<u32>, block: bool) -> io::Result<Option<(u32, Exit)>> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid.map(|p| p as libc::pid_t).unwrap_or(-1), &mut status, flags) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        let exit = if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        };
        return Ok(Some((r as u32, exit)));
    }
}

/// A user's account.
#[derive(Clone, Debug)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: String,
    /// The login shell (`pw_shell`), empty if the entry names none.
    pub shell: String,
}

/// Looks up a user by uid.
pub fn user_by_uid(uid: u32) -> Option<User> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: passwd is plain data filled by getpwuid_r; the strings it points
    // to live in `buf`, which outlives their use here.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut out);
        if r != 0 || out.is_null() {
            return None;
        }
        Some(User {
            uid,
            gid: pwd.pw_gid,
            name: CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned(),
            home: CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned(),
            shell: if pwd.pw_shell.is_null() {
                String::new()
            } else {
                CStr::from_ptr(pwd.pw_shell).to_string_lossy().into_owned()
            },
        })
    }
}

/// The names of the groups the user `uid` is in (primary and
/// supplementary), as the group database says; empty for no account.
pub fn group_names_of(uid: u32) -> Vec<String> {
    let Some(u) = user_by_uid(uid) else { return Vec::new() };
    let gids = group_list(&u.name, u.gid).unwrap_or_else(|_| vec![u.gid]);
    let mut buf = vec![0u8; 16384];
    gids.iter()
        .filter_map(|gid| {
            // SAFETY: group is plain data filled by getgrgid_r; the name it
            // points to lives in `buf`, copied out before the next call.
            unsafe {
                let mut grp: libc::group = std::mem::zeroed();
                let mut out: *mut libc::group = std::ptr::null_mut();
                let r = libc::getgrgid_r(*gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut out);
                if r != 0 || out.is_null() {
                    return None;
                }
                Some(CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned())
            }
        })
        .collect()
}

/// The user name for `uid`, or the number when it has no account.
pub fn user_name(uid: u32) -> String {
    user_by_uid(uid).map(|u| u.name).unwrap_or_else(|| uid.to_string())
}

/// `bytes` bytes from the system's secure random source, as lowercase hex
/// (names no one can guess, secrets).
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut r = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r).map_err(|_| io::Error::other("the system's random source failed"))?;
    Ok(r.iter().map(|b| format!("{b:02x}")).collect())
}

/// The calling process's user id.
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The identity a process run by root takes for a while to touch files on
/// a user's behalf (a task's `/stdout`, `/stdin`, working directory): the
/// kernel then checks every open, create and lookup against that user's
/// rights, not root's. Dropping it gives root back.
///
/// Effective ids only, so root stays the real and saved user and can come
/// back; glibc applies them to every thread, so it is meant for the task
/// supervisor, which has one.
pub struct ActingAs {
    groups: Vec<libc::gid_t>,
}

impl ActingAs {
    /// Acts as `uid` with primary group `gid` and supplementary `groups`
    /// (see [`group_list`]).
    pub fn new(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<ActingAs> {
        let mut saved: Vec<libc::gid_t> = vec![0; 1024];
        // SAFETY: getgroups writes at most saved.len() gids into saved.
        let n = check(unsafe { libc::getgroups(saved.len() as libc::c_int, saved.as_mut_ptr()) })?;
        saved.truncate(n as usize);
        let guard = ActingAs { groups: saved };
        // SAFETY: groups is a valid array of groups.len() gids; setegid and
        // seteuid take plain integers. Groups first: each call needs the
        // privilege the next one gives up. If one fails, the guard's drop
        // puts back what was changed.
        unsafe {
            check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            check(libc::setegid(gid))?;
            check(libc::seteuid(uid))?;
        }
        Ok(guard)
    }
}

impl Drop for ActingAs {
    fn drop(&mut self) {
        // SAFETY: as in `new`; root is the real and saved user, so seteuid(0)
        // is allowed and gives back the privilege the others need.
        unsafe {
            libc::seteuid(0);
            libc::setegid(0);
            libc::setgroups(self.groups.len(), self.groups.as_ptr());
        }
    }
}

/// Whether the effective user may search directory `path` (enter it):
/// `faccessat` with `AT_EACCESS`, which checks the effective ids that
/// [`ActingAs`] sets (plain `access` checks the real ones, root's).
pub fn may_enter(path: &CStr) -> io::Result<()> {
    // SAFETY: path is a valid C string; the call only reads it.
    check(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), libc::X_OK, libc::AT_EACCESS) }).map(|_| ())
}

/// Sets the process's file mode creation mask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Takes an exclusive lock on an open file without waiting; false if another
/// process holds it. The lock lasts as long as the descriptor.
pub fn try_lock(f: &std::fs::File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(e) }
}

/// Waits for the exclusive lock of `f` (released when it is closed).
pub fn lock(f: &std::fs::File) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The filesystem `path` lives on: its mount point (from
/// /proc/self/mountinfo) and the bytes free there for unprivileged users,
/// to say which disk is full.
pub fn filesystem_of(path: &std::path::Path) -> (std::path::PathBuf, Option<u64>) {
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // Octal escapes (\040 for a space) as the kernel writes them.
        .map(|m| std::path::PathBuf::from(m.replace("\\040", " ").replace("\\011", "\t")))
        .filter(|m| full.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .unwrap_or_else(|| std::path::PathBuf::from("/"));
    let free = std::ffi::CString::new(full.as_os_str().as_encoded_bytes()).ok().and_then(|c| {
        // SAFETY: statvfs fills the struct we own from a valid C string.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            (libc::statvfs(c.as_ptr(), &mut st) == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
        }
    });
    (mount, free)
}

/// True for the errors a full disk (or quota) gives.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// What to tell a user about a full disk under `path`: which filesystem,
/// how much is free, what to do.
pub fn disk_full_message(what: &str, path: &std::path::Path) -> String {
    let (mount, free) = filesystem_of(path);
    let free = free.map(|b| format!(", {b} bytes free")).unwrap_or_default();
    format!(
        "the disk holding {what} {} is full (the filesystem mounted at {}{free}); free space there and try again",
        path.display(),
        mount.display()
    )
}

/// Number of logical CPUs online.
pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as u32 } else { 1 }
}

/// Physical memory in megabytes.
pub fn memory_mb() -> u64 {
    // SAFETY: as above.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    if pages > 0 && size > 0 { (pages as u64 * size as u64) / (1024 * 1024) } else { 0 }
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
