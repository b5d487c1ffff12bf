//! The stop signals: blocked, so that they wait pending until the loop looks
//! between two steps ([`stop_signal`]), and a `signalfd` so that a wait can
//! include them ([`stop_fd`]). The calls are `raw`'s: rustix
//! publishes none for the signal mask or `signalfd4`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use rustix::io::Errno;
use rustix::process::Signal;

use super::raw::{self, How, SigSet};

/// The signals that ask us to finish the update in progress and exit.
const STOP_SIGNALS: [(Signal, &str); 3] = [
    (Signal::TERM, "SIGTERM"),
    (Signal::INT, "SIGINT"),
    (Signal::HUP, "SIGHUP"),
];

fn stop_set() -> SigSet {
    let mut set = SigSet::empty();
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
    // We only add to the mask of this (the main, only) thread; no handler of
    // ours or of std relies on receiving these three signals.
    raw::sigprocmask(How::Block, &stop_set())?;
    if STOP_FD.get().is_none() {
        // Where there is no signalfd (a kernel without it, a seccomp filter),
        // waits fall back to looking every [`crate::daemon::wait::SLICE`].
        if let Ok(fd) = raw::signalfd(&stop_set()) {
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

/// The name of a pending stop signal, if one arrived.
pub fn stop_signal() -> Option<&'static str> {
    let pending = raw::sigpending().ok()?;
    STOP_SIGNALS
        .iter()
        .find(|(sig, _)| pending.contains(*sig))
        .map(|(_, name)| *name)
}
