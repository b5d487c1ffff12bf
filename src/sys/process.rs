//! Process plumbing: the inherited descriptor, detaching from the caller,
//! and the `/proc` scan for other holders of a file.
//!
//! Detaching does not run on in a forked child: a forked copy of a Rust
//! program may only make system calls, so we fork only to re-execute
//! ourselves (`/proc/self/exe`) with [`DETACHED_ENV`] set, and the parent
//! exits.
//!
//! Owns: the process plumbing. Touches: no group, no extents.
// Each unchecked block below carries a SAFETY comment.
#![allow(unsafe_code)]

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use rustix::io::{Errno, FdFlags};

use rustix::process::Signal;

use super::raw::{self, How, SigSet};

use super::signals::stop_fd;

/// Set in the environment of the copy of ourselves that runs detached.
pub const DETACHED_ENV: &str = "DMFILEMAPD_DETACHED";

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

/// Close every descriptor but stdio, `keep` and [`stop_fd`]: the caller's
/// (dmstats') descriptors must not stay open for the life of the daemon.
pub fn close_stray_fds(keep: RawFd) -> io::Result<()> {
    use rustix::fs::{Dir, Mode, OFlags};
    let dir = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let own = raw(&dir);
    let stop = stop_fd().map(|fd| fd.as_raw_fd());
    let mut stray = Vec::new();
    for entry in Dir::new(dir)? {
        let entry = entry?;
        match entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<RawFd>().ok())
        {
            Some(n) if n > 2 && n != keep && n != own && Some(n) != stop => stray.push(n),
            _ => {}
        }
    }
    for n in stray {
        // At daemon start nothing of ours is open but stdio, `keep`, the stop
        // signals' descriptor and the directory (all skipped above).
        // SAFETY: the listed numbers were inherited; no object here owns them.
        unsafe { rustix::io::close(n) };
    }
    Ok(())
}

/// Start the detached copy of ourselves; returns its pid.
///
/// What `std::process::Command` would do (`/proc/self/exe` with `argv0`,
/// the environment plus [`DETACHED_ENV`], inherited stdio and non-CLOEXEC
/// fds, an empty signal mask and SIGPIPE at its default in the child, the
/// exec error reported to the caller), made by hand: `Command` is about a
/// twentieth of the binary, for one call.
pub fn spawn_detached(argv0: OsString, args: &[OsString]) -> io::Result<u32> {
    // Everything the child needs is made before the fork: the child is a
    // copy of a process that may have other threads (tests), so until it
    // execs it makes system calls only, no allocation, no lock.
    let argv = std::iter::once(argv0)
        .chain(args.iter().cloned())
        .map(c_string)
        .collect::<io::Result<Vec<_>>>()?;
    let mut detached = OsString::from(DETACHED_ENV);
    detached.push("=1");
    let envp = std::env::vars_os()
        .filter(|(key, _)| key != DETACHED_ENV)
        .map(|(mut entry, value)| {
            entry.push("=");
            entry.push(value);
            entry
        })
        .chain([detached])
        .map(c_string)
        .collect::<io::Result<Vec<_>>>()?;
    let (argv, envp) = (pointers(&argv), pointers(&envp));
    let no_signals = SigSet::empty();
    // Closed by a successful exec: reading it then gives end of file.
    let (exec_error, exec_error_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;

    // SAFETY: the child only reads what was made above, calls no allocator,
    // lock or libc function, only raw system calls (raw's, rustix's
    // linux_raw), and leaves by execve or exit_group, running no destructor.
    match unsafe { raw::fork() }? {
        raw::Fork::Child => {
            // std ignores SIGPIPE and we may have blocked the stop signals:
            // neither is for the new program, as with `Command`.
            let errno = match raw::sigprocmask(How::SetMask, &no_signals)
                .and_then(|_| raw::set_default_action(Signal::PIPE))
            {
                // SAFETY: `argv`, `envp`: null-ended arrays of NUL-terminated
                // strings, alive in this copy of the memory.
                Ok(()) => unsafe { raw::execve(c"/proc/self/exe", argv.as_ptr(), envp.as_ptr()) },
                Err(e) => e,
            };
            let _ = rustix::io::write(&exec_error_w, &errno.raw_os_error().to_ne_bytes());
            raw::exit_group(127)
        }
        raw::Fork::ParentOf(pid) => {
            drop(exec_error_w);
            let mut errno = [0u8; 4];
            // Four bytes to a pipe arrive at once, or not at all.
            let n = loop {
                match rustix::io::read(&exec_error, &mut errno) {
                    Err(Errno::INTR) => continue,
                    read => break read?,
                }
            };
            if n == 0 {
                return Ok(pid.as_raw_pid().unsigned_abs());
            }
            // The child exited: reap it.
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
        }
    }
}

/// An argument or environment entry for execve (no interior NUL).
fn c_string(s: OsString) -> io::Result<CString> {
    Ok(CString::new(s.into_vec())?)
}

/// The null-terminated array of pointers execve takes.
fn pointers(strings: &[CString]) -> Vec<*const u8> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast())
        .chain([std::ptr::null()])
        .collect()
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
    use rustix::fs::{openat, statat, AtFlags, Dir, Mode, OFlags};
    let id = |st: rustix::fs::Stat| (st.st_dev, st.st_ino);
    let ours = rustix::fs::stat("/proc/self/exe").ok().map(id);
    let me = rustix::process::getpid().as_raw_pid();
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let proc = rustix::fs::open("/proc", dir_flags, Mode::empty())?;
    for proc_entry in Dir::read_from(&proc)? {
        let Ok(proc_entry) = proc_entry else { continue };
        let pid = proc_entry.file_name().to_bytes();
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) || parse_pid(pid) == Some(me) {
            continue;
        }
        // Processes that exit, or that we may not look into, are skipped.
        let Ok(pid_dir) = openat(&proc, proc_entry.file_name(), dir_flags, Mode::empty()) else {
            continue;
        };
        let Ok(fd_dir) = openat(&pid_dir, "fd", dir_flags, Mode::empty()) else {
            continue;
        };
        let Ok(mut fds) = Dir::read_from(&fd_dir) else {
            continue;
        };
        if fds.any(|fd| fd.is_ok_and(|fd| holds(&fd_dir, fd.file_name(), dev, ino)))
            && (ours.is_none() || statat(&pid_dir, "exe", AtFlags::empty()).ok().map(id) != ours)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A `/proc` directory name as a pid (digits only, checked by the caller).
fn parse_pid(digits: &[u8]) -> Option<i32> {
    digits.iter().try_fold(0i32, |n, d| {
        n.checked_mul(10)?.checked_add(i32::from(d - b'0'))
    })
}

/// Whether the link `name` in a `/proc/<pid>/fd` directory is to the
/// unlinked file `(dev, ino)`.
fn holds(fd_dir: &OwnedFd, name: &std::ffi::CStr, dev: u64, ino: u64) -> bool {
    use rustix::fs::{readlinkat, statat, AtFlags};
    let deleted = readlinkat(fd_dir, name, Vec::new())
        .is_ok_and(|target| target.as_bytes().ends_with(b" (deleted)"));
    deleted
        && statat(fd_dir, name, AtFlags::empty())
            .is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
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
