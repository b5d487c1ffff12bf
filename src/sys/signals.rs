//! The stop signals: blocked, so that they wait pending until the loop looks
//! between two steps ([`stop_signal`]), and a `signalfd` so that a wait can
//! include them ([`stop_fd`]). rustix publishes no call for the signal mask
//! or `signalfd4`; see below for how each is made.

#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use rustix::io::Errno;
// rustix publishes its signal-mask calls only under this rotating name (the
// "runtime" feature); Cargo.lock pins the version, and a new name is a
// compile error, never a silent change.
use runtime::{How, KernelSigSet, Signal};
use rustix::runtime_448b8ad740e2a26f as runtime;

/// The signals that ask us to finish the update in progress and exit.
const STOP_SIGNALS: [(Signal, &str); 3] = [
    (Signal::TERM, "SIGTERM"),
    (Signal::INT, "SIGINT"),
    (Signal::HUP, "SIGHUP"),
];

fn stop_set() -> KernelSigSet {
    let mut set = KernelSigSet::empty();
    STOP_SIGNALS.iter().for_each(|(sig, _)| set.insert(*sig));
    set
}

/// Readable while a stop signal is pending; see [`stop_fd`].
static STOP_FD: OnceLock<OwnedFd> = OnceLock::new();

/// Block SIGTERM, SIGINT and SIGHUP: they stay pending, and the loop polls
/// them with [`stop_signal`] between steps, so an update is never cut in the
/// middle of a message and no handler is needed. Also makes the descriptor
/// of [`stop_fd`], so that sleeps wake for them without polling.
pub fn block_stop_signals() -> Result<(), Errno> {
    // SAFETY: we only add to the mask of this (the main, only) thread; no
    // handler of ours or of std relies on receiving these three signals.
    unsafe { runtime::kernel_sigprocmask(How::BLOCK, Some(&stop_set())) }?;
    if STOP_FD.get().is_none() {
        let mask = STOP_SIGNALS
            .iter()
            .fold(0u64, |m, (sig, _)| m | 1 << (sig.as_raw() - 1));
        // Where there is no signalfd (an architecture without the raw call
        // below), waits fall back to looking every [`crate::daemon::wait::SLICE`].
        if let Ok(fd) = signalfd(mask) {
            let _ = STOP_FD.set(fd);
        }
    }
    Ok(())
}

/// A descriptor that polls readable while a stop signal is pending, once
/// [`block_stop_signals`] made it; `None` before, or where the kernel call
/// is not available. It is never read: the signal stays pending, so
/// [`stop_signal`] still sees it and the descriptor stays readable.
pub fn stop_fd() -> Option<BorrowedFd<'static>> {
    STOP_FD.get().map(AsFd::as_fd)
}

/// `signalfd4(-1, mask, 8, SFD_CLOEXEC | SFD_NONBLOCK)`: rustix has no call
/// for it, so it is made raw. `mask` is the kernel's 64-bit `sigset_t`.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
fn signalfd(mask: u64) -> Result<OwnedFd, Errno> {
    use linux_raw_sys::general::{__NR_signalfd4, O_CLOEXEC, O_NONBLOCK};
    let args = [
        -1isize as usize,
        std::ptr::from_ref(&mask) as usize,
        size_of::<u64>(),
        (O_CLOEXEC | O_NONBLOCK) as usize,
    ];
    // SAFETY: signalfd4 reads 8 bytes at the pointer (the u64 above, alive
    // for the call) and writes no memory of ours; it returns a new
    // descriptor or -errno.
    let ret = unsafe { syscall4(__NR_signalfd4 as usize, args) };
    if (-4095..0).contains(&ret) {
        return Err(Errno::from_raw_os_error(-ret as i32));
    }
    // SAFETY: a non-negative return of signalfd4 with fd -1 is a descriptor
    // the kernel just opened for us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
fn signalfd(_mask: u64) -> Result<OwnedFd, Errno> {
    Err(Errno::NOSYS)
}

/// A Linux system call with four arguments; the result or -errno.
#[cfg(target_arch = "x86_64")]
///
/// # Safety
/// SAFETY (for callers): the caller answers for what the call does with
/// the arguments (memory it reads or writes, descriptors it makes or closes).
unsafe fn syscall4(nr: usize, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall convention: number in rax, arguments in
    // rdi, rsi, rdx, r10, result in rax; the instruction clobbers rcx and
    // r11 and touches no stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
/// See the x86_64 version.
/// SAFETY (for callers): as there.
unsafe fn syscall4(nr: usize, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 convention: number in x8, arguments in x0..x3,
    // result in x0; `svc 0` clobbers nothing else.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3],
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "riscv64")]
/// See the x86_64 version.
/// SAFETY (for callers): as there.
unsafe fn syscall4(nr: usize, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY: the riscv64 convention: number in a7, arguments in a0..a3,
    // result in a0; `ecall` clobbers nothing else.
    unsafe {
        std::arch::asm!(
            "ecall",
            in("a7") nr,
            inlateout("a0") a[0] as isize => ret,
            in("a1") a[1], in("a2") a[2], in("a3") a[3],
            options(nostack),
        );
    }
    ret
}

/// The name of a pending stop signal, if one arrived.
pub fn stop_signal() -> Option<&'static str> {
    let pending = runtime::kernel_sigpending();
    STOP_SIGNALS
        .iter()
        .find(|(sig, _)| pending.contains(*sig))
        .map(|(_, name)| *name)
}
