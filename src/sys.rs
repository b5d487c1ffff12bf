//! Process plumbing: the inherited descriptor, the stop signals, detaching
//! from the caller, and the `/proc` scan for other holders of a file.
//! The third and last module allowed unchecked code (each block has a SAFETY
//! comment); the crate denies it everywhere else (Cargo.toml `[lints]`).
//!
//! Detaching does not fork: a forked child of a Rust program may only call
//! async-signal-safe functions, so we re-execute ourselves (`/proc/self/exe`)
//! with [`DETACHED_ENV`] set, and the parent exits.
//!
//! Owns: the process plumbing. Touches: no group, no extents.
// Each unchecked block below carries a SAFETY comment.
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::io::{Errno, FdFlags};
// rustix publishes its signal-mask calls only under this rotating name (the
// "runtime" feature); Cargo.lock pins the version, and a new name is a
// compile error, never a silent change.
use runtime::{How, KernelSigSet, Signal};
use rustix::runtime_448b8ad740e2a26f as runtime;

/// Set in the environment of the copy of ourselves that runs detached.
pub const DETACHED_ENV: &str = "DMFILEMAPD_DETACHED";

/// The signals that ask us to finish the update in progress and exit.
const STOP_SIGNALS: [(Signal, &str); 3] = [
    (Signal::TERM, "SIGTERM"),
    (Signal::INT, "SIGINT"),
    (Signal::HUP, "SIGHUP"),
];

/// Take the descriptor the caller handed us by number.
///
/// A number 0..=2 is duplicated above stdio (and the original left alone):
/// detaching points stdio at `/dev/null`, and the log writes to 1 and 2.
/// The result is not close-on-exec, so the detached copy inherits it.
pub fn adopt_fd(raw: RawFd) -> Result<OwnedFd, Errno> {
    if raw < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: the borrow is used only within this function, while the number
    // stays open or not as it is; F_GETFD on a closed number just fails EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_getfd(borrowed)?;
    let fd = if raw <= 2 {
        rustix::io::fcntl_dupfd_cloexec(borrowed, 3)?
    } else {
        // SAFETY: the number is open (F_GETFD succeeded) and no object of this
        // process owns it: it was inherited, and main adopts it exactly once.
        unsafe { OwnedFd::from_raw_fd(raw) }
    };
    rustix::io::fcntl_setfd(&fd, FdFlags::empty())?;
    Ok(fd)
}

fn stop_set() -> KernelSigSet {
    let mut set = KernelSigSet::empty();
    STOP_SIGNALS.iter().for_each(|(sig, _)| set.insert(*sig));
    set
}

/// Block SIGTERM, SIGINT and SIGHUP: they stay pending, and the loop polls
/// them with [`stop_signal`] between steps, so an update is never cut in the
/// middle of a message and no handler is needed.
pub fn block_stop_signals() -> Result<(), Errno> {
    // SAFETY: we only add to the mask of this (the main, only) thread; no
    // handler of ours or of std relies on receiving these three signals.
    unsafe { runtime::kernel_sigprocmask(How::BLOCK, Some(&stop_set())) }?;
    Ok(())
}

/// The name of a pending stop signal, if one arrived.
pub fn stop_signal() -> Option<&'static str> {
    let pending = runtime::kernel_sigpending();
    STOP_SIGNALS
        .iter()
        .find(|(sig, _)| pending.contains(*sig))
        .map(|(_, name)| *name)
}

/// Close every descriptor but stdio and `keep`: the caller's (dmstats')
/// descriptors must not stay open for the life of the daemon.
pub fn close_stray_fds(keep: RawFd) -> io::Result<()> {
    use rustix::fs::{Dir, Mode, OFlags};
    let dir = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let own = raw(&dir);
    let mut stray = Vec::new();
    for entry in Dir::new(dir)? {
        let entry = entry?;
        match entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<RawFd>().ok())
        {
            Some(n) if n > 2 && n != keep && n != own => stray.push(n),
            _ => {}
        }
    }
    for n in stray {
        // SAFETY: this runs at daemon start, before anything of ours is open
        // besides stdio, `keep` and the directory (skipped, closed on drop);
        // the listed numbers were inherited and belong to no object here.
        unsafe { rustix::io::close(n) };
    }
    Ok(())
}

/// Start the detached copy of ourselves; returns its pid.
pub fn spawn_detached(argv0: OsString, args: &[OsString]) -> io::Result<u32> {
    let child = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .env(DETACHED_ENV, "1")
        .spawn()?;
    Ok(child.id())
}

/// In the detached copy: a session of our own, `/` as working directory (so
/// no mount is held busy), stdio on `/dev/null` when silent, no stray fds.
pub fn detach(silent: bool, keep: RawFd) -> io::Result<()> {
    // Executed as /proc/self/exe, the kernel named us "exe": take our name
    // back so `pidof dmfilemapd`, `ps` and `killall` find the daemon.
    rustix::thread::set_name(c"dmfilemapd")?;
    rustix::process::setsid()?;
    rustix::process::chdir("/")?;
    if silent {
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        rustix::stdio::dup2_stdin(&null)?;
        rustix::stdio::dup2_stdout(&null)?;
        rustix::stdio::dup2_stderr(&null)?;
    }
    close_stray_fds(keep)
}

/// Whether a process other than us holds the file `(dev, ino)` open, found by
/// a scan of `/proc/*/fd/*`. Only links to unlinked files (` (deleted)`) are
/// stat'ed: the file we look for has no name left, and stat on an arbitrary
/// link could wait on a hung network mount.
///
/// Other copies of this program do not count: two daemons following one
/// file (two groups mapping it) would otherwise keep each other running
/// for ever once its last user closed it.
pub fn open_elsewhere(dev: u64, ino: u64) -> io::Result<bool> {
    let me = std::process::id().to_string();
    let program = |exe: &Path| rustix::fs::stat(exe).ok().map(|st| (st.st_dev, st.st_ino));
    let ours = program(Path::new("/proc/self/exe"));
    for proc_entry in std::fs::read_dir("/proc")? {
        let Ok(proc_entry) = proc_entry else { continue };
        let pid = proc_entry.file_name();
        let Some(pid) = pid.to_str() else { continue };
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Processes that exit, or that we may not look into, are skipped.
        let Ok(mut fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        if fds.any(|fd| fd.is_ok_and(|fd| holds(&fd.path(), dev, ino)))
            && (ours.is_none() || program(&proc_entry.path().join("exe")) != ours)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn holds(link: &Path, dev: u64, ino: u64) -> bool {
    let deleted = std::fs::read_link(link).is_ok_and(|target| {
        target
            .as_os_str()
            .as_encoded_bytes()
            .ends_with(b" (deleted)")
    });
    deleted && rustix::fs::stat(link).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
}

/// The raw number of a descriptor, for `/proc/self/fd/<n>` and the argv of
/// the detached copy.
/// Takes a reference so the descriptor cannot be closed by the call.
pub fn raw<Fd: AsFd>(fd: &Fd) -> RawFd {
    fd.as_fd().as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopt_refuses_closed_and_negative_numbers() {
        assert_eq!(adopt_fd(-1).unwrap_err(), Errno::BADF);
        // Far above anything the test harness opens.
        assert_eq!(adopt_fd(1_000_000).unwrap_err(), Errno::BADF);
    }

    #[test]
    fn adopt_clears_cloexec() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(rustix::io::fcntl_getfd(&f)
            .unwrap()
            .contains(FdFlags::CLOEXEC));
        let fd = adopt_fd(std::os::fd::IntoRawFd::into_raw_fd(f)).unwrap();
        assert!(rustix::io::fcntl_getfd(&fd).unwrap().is_empty());
    }

    #[test]
    fn adopt_moves_stdio_numbers_up() {
        // stdin may be closed under some runners: then there is nothing to adopt.
        if rustix::io::fcntl_getfd(rustix::stdio::stdin()).is_err() {
            return;
        }
        let fd = adopt_fd(0).unwrap();
        assert!(raw(&fd) > 2);
        assert!(rustix::io::fcntl_getfd(rustix::stdio::stdin()).is_ok());
    }

    /// A write to a closed pipe must be an error, not death: std ignores
    /// SIGPIPE before `main`, so we rely on it rather than repeat it.
    #[test]
    fn std_ignores_sigpipe() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .unwrap();
        let mask = u64::from_str_radix(mask.trim(), 16).unwrap();
        assert_ne!(mask & (1 << (13 - 1)), 0, "SIGPIPE (13) not ignored");
    }
}
