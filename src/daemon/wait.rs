//! Sleep: wait on inotify for the file to change, with a timeout, so an idle
//! daemon makes no FIEMAP calls. The watch is set through
//! `/proc/self/fd/<n>`, which resolves to the open file's inode: renames are
//! followed and a file replaced at its path is never watched by mistake.
//!
//! Pending stop signals do not interrupt `poll` (they are blocked), so a
//! wait polls the descriptor [`crate::sys::stop_fd`] beside the file's: an
//! idle daemon sleeps through its whole timeout and wakes for nothing else.
//! Without that descriptor (signals not blocked, as in tests, or no
//! `signalfd` on this architecture) the timeout is cut in slices of at most
//! [`SLICE`] to look at `stop`.
//!
//! Owns: the inotify instance. Touches: no extents, no group; what a change
//! means is the file source's to decide.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// Longest time between two looks at `stop` when no descriptor tells of
/// the stop signals.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// What a drain of the inotify queue found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Any event on the file (data, attributes, link count, move, delete).
    pub changed: bool,
    /// The kernel dropped the watch (inode freed or file system unmounted):
    /// no event will come from this watcher again.
    pub dropped: bool,
}

/// One inotify instance watching one file; dropping it closes both.
#[derive(Debug)]
pub struct Watcher {
    inotify: OwnedFd,
}

impl Watcher {
    pub fn new<Fd: AsFd>(file: Fd) -> Result<Watcher, Errno> {
        let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let path = format!("/proc/self/fd/{}", crate::sys::raw(&file));
        let mask = WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        inotify::add_watch(&inotify, path, mask)?;
        Ok(Watcher { inotify })
    }

    /// Read every queued event without blocking.
    pub fn drain(&self) -> Result<Events, Errno> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.inotify, &mut buf);
        let mut events = Events::default();
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    events.dropped |= flags.contains(ReadFlags::IGNORED);
                    events.changed |= !(flags - ReadFlags::IGNORED).is_empty();
                }
                Err(Errno::AGAIN) => return Ok(events),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until the file changes, `timeout` passes, or `stop` answers true.
    /// Always drains the queue, so a burst of writes is one wake-up.
    pub fn wait(&self, timeout: Duration, stop: &dyn Fn() -> bool) -> Result<Events, Errno> {
        let deadline = Instant::now() + timeout;
        let mut pause = Pause::new();
        loop {
            let events = self.drain()?;
            if events != Events::default()
                || stop()
                || !pause.until(Some(self.inotify.as_fd()), deadline, stop)?
            {
                return Ok(events);
            }
        }
    }
}

/// Sleep `timeout`, ending early when `stop` answers true.
pub fn sleep(timeout: Duration, stop: &dyn Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Pause::new();
    while !stop() {
        match pause.until(None, deadline, stop) {
            Ok(true) => {}
            Ok(false) => return,
            // poll on descriptors we own cannot fail but for lack of memory:
            // sleep the old way rather than return early.
            Err(_) => {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(SLICE));
            }
        }
    }
}

/// One blocking `poll` after another, on the file's descriptor (if any)
/// and the stop signals' one, until the deadline.
struct Pause {
    /// The stop signals' descriptor, while it agrees with `stop`.
    stop_fd: Option<BorrowedFd<'static>>,
}

impl Pause {
    fn new() -> Self {
        Pause {
            stop_fd: crate::sys::stop_fd(),
        }
    }

    /// Block until `file` is readable, a stop signal is pending, or the
    /// deadline; false once the deadline has passed, without blocking.
    fn until(
        &mut self,
        file: Option<BorrowedFd<'_>>,
        deadline: Instant,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, Errno> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let left = if self.stop_fd.is_some() {
            left
        } else {
            left.min(SLICE)
        };
        let timeout = Timespec::try_from(left).map_err(|_| Errno::INVAL)?;
        // One descriptor is polled twice when the other is missing, which
        // keeps the set a fixed array.
        let (first, second) = match (file, self.stop_fd) {
            (Some(f), Some(s)) => (f, s),
            (Some(one), None) | (None, Some(one)) => (one, one),
            (None, None) => {
                std::thread::sleep(left);
                return Ok(true);
            }
        };
        let mut fds = [
            PollFd::from_borrowed_fd(first, PollFlags::IN),
            PollFd::from_borrowed_fd(second, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
        // The descriptor says a stop signal is pending but `stop` does not
        // agree (a caller with a test of its own): polling it again would
        // spin, so look at `stop` in slices instead.
        if self.stop_fd.is_some() && !fds[1].revents().is_empty() && !stop() {
            self.stop_fd = None;
        }
        Ok(true)
    }
}
