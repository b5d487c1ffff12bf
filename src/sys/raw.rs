//! The system calls rustix does not publish, made raw: the signal mask
//! (`rt_sigprocmask`), the pending signals (`rt_sigpending`), one signal's
//! action (`rt_sigaction`), `signalfd4`, and the fork, exec and exit of
//! [`super::spawn_detached`] (`clone`, `execve`, `exit_group`).
//!
//! rustix has them only in a hidden module whose name it rotates on purpose,
//! so that no one depends on it; taking them from there pinned rustix to one
//! release. Here they are one system-call entry per architecture, below, and
//! plain functions over it. Syscall numbers, flags and types come from
//! linux-raw-sys, which has them per architecture.
//!
//! Architectures: x86_64, aarch64, riscv64, powerpc64 (little-endian: the
//! ppc64le distributions ship). Anything else stops at a `compile_error!`
//! rather than building a daemon that cannot see its stop signals.
//!
//! Every entry returns what the kernel returned as Linux's generic
//! convention: a value, or `-errno` in `-4095..=-1`. powerpc64 signals an
//! error by setting the summary-overflow bit of condition register field 0
//! (`cr0.SO`) and returning the positive errno; its entry negates that.
//!
//! Owns: the raw kernel entry. Touches: nothing else.
// The system-call instructions are unchecked by nature; each block below has
// a SAFETY comment, and each function says what its callers answer for.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use linux_raw_sys::general as k;
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

/// A set of signals in the kernel's layout (`kernel_sigset_t`: one 64-bit
/// word on every architecture here, signal N at bit N - 1), the size the
/// `rt_sig*` calls and `signalfd4` are told.
#[derive(Clone, Copy)]
pub(super) struct SigSet(k::kernel_sigset_t);

impl SigSet {
    pub(super) const fn empty() -> Self {
        Self(k::kernel_sigset_t { sig: [0] })
    }

    /// The bit of signal `sig`. Linux's signal numbers run 1..=64, so the
    /// shift stays inside the word.
    fn bit(sig: Signal) -> u64 {
        1u64 << ((sig.as_raw() - 1) & 63)
    }

    pub(super) fn insert(&mut self, sig: Signal) {
        self.0.sig[0] |= Self::bit(sig);
    }

    pub(super) fn contains(&self, sig: Signal) -> bool {
        self.0.sig[0] & Self::bit(sig) != 0
    }
}

const SIGSET_SIZE: usize = size_of::<k::kernel_sigset_t>();
// What the kernel checks `sigsetsize` against (_NSIG / 8) on these architectures.
const _: () = assert!(SIGSET_SIZE == 8);

/// How [`sigprocmask`] changes the mask.
#[derive(Clone, Copy)]
pub(super) enum How {
    /// Add the set to the mask.
    Block,
    /// Make the set the mask.
    SetMask,
}

/// `rt_sigprocmask`: change this thread's signal mask; returns the old one.
///
/// Safe to call: the kernel reads and writes only the two sets here. Which
/// signals a program may block is the caller's business (std relies on none
/// of them; the synchronous faults it catches cannot be blocked).
pub(super) fn sigprocmask(how: How, set: &SigSet) -> Result<SigSet, Errno> {
    let how = match how {
        How::Block => k::SIG_BLOCK,
        How::SetMask => k::SIG_SETMASK,
    };
    let mut old = SigSet::empty();
    let args = [
        how as usize,
        std::ptr::from_ref(set) as usize,
        std::ptr::from_mut(&mut old) as usize,
        SIGSET_SIZE,
        0,
    ];
    // SAFETY: rt_sigprocmask reads SIGSET_SIZE bytes at `set` and writes
    // SIGSET_SIZE bytes at `old`, both live for the call and of that size.
    check(unsafe { syscall(k::__NR_rt_sigprocmask, args) })?;
    Ok(old)
}

/// `rt_sigpending`: the signals pending for this thread or the process
/// while blocked.
pub(super) fn sigpending() -> Result<SigSet, Errno> {
    let mut set = SigSet::empty();
    let args = [std::ptr::from_mut(&mut set) as usize, SIGSET_SIZE, 0, 0, 0];
    // SAFETY: rt_sigpending writes SIGSET_SIZE bytes at `set`, live and of
    // that size.
    check(unsafe { syscall(k::__NR_rt_sigpending, args) })?;
    Ok(set)
}

/// `rt_sigaction(sig, SIG_DFL)`: the default action for `sig` again (a
/// caught or ignored signal, such as the SIGPIPE std ignores, before an
/// exec: execve keeps an ignored signal ignored).
pub(super) fn set_default_action(sig: Signal) -> Result<(), Errno> {
    let action = k::kernel_sigaction {
        // None is SIG_DFL (0): no handler of ours is ever installed here.
        sa_handler_kernel: None,
        sa_flags: 0,
        // riscv64's kernel_sigaction has no restorer field.
        #[cfg(not(target_arch = "riscv64"))]
        sa_restorer: None,
        sa_mask: SigSet::empty().0,
    };
    let args = [
        sig.as_raw() as usize,
        std::ptr::from_ref(&action) as usize,
        0, // the old action is not asked for
        SIGSET_SIZE,
        0,
    ];
    // rt_sigaction reads one kernel_sigaction (this architecture's, from
    // linux-raw-sys) at `action` and writes nothing (no old-action pointer).
    // SAFETY: `action` is live for the call, and it installs no handler, so
    // no code of ours can be entered asynchronously.
    check(unsafe { syscall(k::__NR_rt_sigaction, args) }).map(drop)
}

/// `signalfd4(-1, set, 8, SFD_CLOEXEC | SFD_NONBLOCK)`: a new descriptor that
/// polls readable while a signal of `set` is pending (blocked).
pub(super) fn signalfd(set: &SigSet) -> Result<OwnedFd, Errno> {
    // SFD_CLOEXEC and SFD_NONBLOCK are O_CLOEXEC and O_NONBLOCK by
    // definition, and linux-raw-sys has those per architecture.
    let args = [
        -1isize as usize,
        std::ptr::from_ref(set) as usize,
        SIGSET_SIZE,
        (k::O_CLOEXEC | k::O_NONBLOCK) as usize,
        0,
    ];
    // SAFETY: signalfd4 reads SIGSET_SIZE bytes at `set`, live for the call,
    // and writes no memory of ours.
    let fd = check(unsafe { syscall(k::__NR_signalfd4, args) })?;
    // SAFETY: signalfd4 with fd -1 returns a descriptor the kernel just
    // opened for us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Which side of a [`fork`] we are on.
pub(super) enum Fork {
    Child,
    ParentOf(Pid),
}

/// `clone(SIGCHLD, 0, 0, 0, 0)`: fork, on every architecture (aarch64 and
/// riscv64 have no `fork` call); the child's exit is reported by SIGCHLD.
///
/// # Safety
/// The child is a copy of a process that may have other threads, and
/// libc's state in it (its thread pointer's cached ids, any lock another
/// thread held) is not updated. Until it execs or exits, the child makes
/// only raw system calls (this module's, rustix's), with no allocation,
/// no lock and no libc call.
/// SAFETY (for callers): the child keeps to that, and leaves by [`execve`]
/// or [`exit_group`], running no destructor.
pub(super) unsafe fn fork() -> Result<Fork, Errno> {
    // With no CLONE_VM, CLONE_*TID or CLONE_SETTLS flag, the stack, tid and
    // tls arguments are unused, whatever their order on the architecture.
    let args = [k::SIGCHLD as usize, 0, 0, 0, 0];
    // SAFETY: a clone without CLONE_VM gives the child its own copy of the
    // memory, stack included, so both sides return here; the caller answers
    // for the child (above).
    let pid = check(unsafe { syscall(k::__NR_clone, args) })?;
    // The parent gets the child's pid (> 0), the child 0, which is no Pid.
    Ok(match Pid::from_raw(pid as i32) {
        Some(pid) => Fork::ParentOf(pid),
        None => Fork::Child,
    })
}

/// `execve(path, argv, envp)`: returns only on failure, with the error.
///
/// # Safety
/// SAFETY (for callers): `argv` and `envp` point at null-terminated arrays
/// of pointers to NUL-terminated strings, all live for the call.
pub(super) unsafe fn execve(path: &CStr, argv: *const *const u8, envp: *const *const u8) -> Errno {
    let args = [path.as_ptr() as usize, argv as usize, envp as usize, 0, 0];
    // SAFETY: execve reads the path (a CStr, NUL-terminated) and the two
    // arrays the caller vouches for, and writes no memory of ours; on
    // success this process image is gone and the call does not return.
    match check(unsafe { syscall(k::__NR_execve, args) }) {
        Err(e) => e,
        // execve returns nothing but an error.
        Ok(_) => Errno::NOEXEC,
    }
}

/// `exit_group(code)`: end the process at once (every thread), running no
/// destructor and flushing nothing: what a forked child that did not exec
/// may do.
pub(super) fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: exit_group touches no memory of ours and does not return;
        // the loop only tells the compiler so.
        unsafe { syscall(k::__NR_exit_group, [code as usize, 0, 0, 0, 0]) };
    }
}

/// A raw return in Linux's generic convention as a result.
fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

#[cfg(target_arch = "x86_64")]
/// A Linux system call with up to five arguments (unused ones 0); the
/// result or `-errno`.
///
/// # Safety
/// SAFETY (for callers): the caller answers for what the call does with
/// its arguments: the memory it reads or writes through them, the
/// descriptors it makes or closes, the process it forks or replaces.
unsafe fn syscall(nr: u32, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 convention: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8, result in rax; the instruction clobbers rcx (return
    // address) and r11 (flags) and touches no stack of ours.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version. SAFETY (for callers): as there.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall(nr: u32, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 convention: number in x8, arguments in x0..x4,
    // result in x0; `svc 0` clobbers nothing else.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr as usize,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4],
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version. SAFETY (for callers): as there.
#[cfg(target_arch = "riscv64")]
unsafe fn syscall(nr: u32, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the riscv64 convention: number in a7, arguments in a0..a4,
    // result in a0; `ecall` clobbers nothing else.
    unsafe {
        std::arch::asm!(
            "ecall",
            in("a7") nr as usize,
            inlateout("a0") a[0] as isize => ret,
            in("a1") a[1], in("a2") a[2], in("a3") a[3], in("a4") a[4],
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version. SAFETY (for callers): as there.
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
unsafe fn syscall(nr: u32, a: [usize; 5]) -> isize {
    let ret: isize;
    // The powerpc64 convention (Linux's Documentation/arch/powerpc/
    // syscall64-abi.rst): number in r0, arguments in r3..r7, result in r3;
    // on error the kernel sets cr0.SO and r3 holds the positive errno, so
    // `bns` (branch if not summary overflow) skips the negation only on
    // success.
    // SAFETY: that convention's registers; r0, r4..r12, ctr, xer and cr0,
    // which the kernel may change, are declared clobbered; no stack of ours
    // is touched.
    unsafe {
        std::arch::asm!(
            "sc",
            "bns 0f",
            "neg 3, 3",
            "0:",
            inlateout("r0") nr as usize => _,
            inlateout("r3") a[0] as isize => ret,
            inlateout("r4") a[1] => _, inlateout("r5") a[2] => _,
            inlateout("r6") a[3] => _, inlateout("r7") a[4] => _,
            lateout("r8") _, lateout("r9") _, lateout("r10") _,
            lateout("r11") _, lateout("r12") _,
            lateout("cr0") _, lateout("ctr") _, lateout("xer") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    all(target_arch = "powerpc64", target_endian = "little"),
)))]
compile_error!(
    "dmfilemapd: no raw system-call entry for this architecture; \
     add one to src/sys/raw.rs (x86_64, aarch64, riscv64, powerpc64le have one)"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// An error comes back as an error on every architecture: on powerpc64
    /// only if the entry reads cr0.SO.
    #[test]
    fn errors_come_back_as_errno() {
        let set = SigSet::empty();
        let args = [99, std::ptr::from_ref(&set) as usize, 0, SIGSET_SIZE, 0];
        // SAFETY: an unknown `how` is refused before anything is read.
        let ret = unsafe { syscall(k::__NR_rt_sigprocmask, args) };
        assert_eq!(check(ret), Err(Errno::INVAL));
        let argv = [std::ptr::null()];
        // SAFETY: empty null-terminated arrays; the path does not exist.
        let e = unsafe { execve(c"/nonexistent/dmfilemapd", argv.as_ptr(), argv.as_ptr()) };
        assert_eq!(e, Errno::NOENT);
    }

    /// The mask round-trips in this (test) thread and is put back.
    #[test]
    fn sigprocmask_blocks_and_reports() {
        let mut usr2 = SigSet::empty();
        usr2.insert(Signal::USR2);
        let before = sigprocmask(How::Block, &usr2).unwrap();
        let during = sigprocmask(How::SetMask, &before).unwrap();
        assert!(during.contains(Signal::USR2));
        assert!(!during.contains(Signal::USR1));
        let after = sigprocmask(How::SetMask, &before).unwrap();
        assert_eq!(after.contains(Signal::USR2), before.contains(Signal::USR2));
        assert!(!sigpending().unwrap().contains(Signal::USR2));
    }

    /// A signalfd over a set with nothing pending is there and not readable.
    #[test]
    fn signalfd_is_nonblocking_and_cloexec() {
        let mut set = SigSet::empty();
        set.insert(Signal::USR2);
        let fd = signalfd(&set).unwrap();
        assert!(rustix::io::fcntl_getfd(&fd)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC));
        let mut buf = [0u8; 128];
        assert_eq!(rustix::io::read(&fd, &mut buf), Err(Errno::AGAIN));
    }

    /// fork gives the child 0 and the parent its pid; the child's
    /// exit_group status reaches the parent, and its SIGPIPE reset works.
    #[test]
    fn fork_and_exit_group() {
        // SAFETY: the child makes two raw calls and exits.
        match unsafe { fork() }.unwrap() {
            Fork::Child => {
                let code = if set_default_action(Signal::PIPE).is_ok() {
                    7
                } else {
                    8
                };
                exit_group(code)
            }
            Fork::ParentOf(pid) => {
                let status =
                    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                        .unwrap()
                        .unwrap()
                        .1;
                assert_eq!(status.exit_status(), Some(7));
            }
        }
    }
}
