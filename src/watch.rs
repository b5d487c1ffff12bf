//! Sleep: wait on inotify for the file to change, with a timeout, so an idle
//! daemon makes no FIEMAP calls. The watch is set through
//! `/proc/self/fd/<n>`, which resolves to the open file's inode: renames are
//! followed and a file replaced at its path is never watched by mistake.
//!
//! Pending stop signals do not interrupt `poll` (they are blocked), so the
//! timeout is cut in slices of at most [`SLICE`] to look at them.
//!
//! Owns: the inotify instance. Touches: no extents, no group; what a change
//! means is the file source's to decide.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// Longest time between two looks at the stop signals.
pub const SLICE: Duration = Duration::from_millis(100);

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
        loop {
            let events = self.drain()?;
            if events != Events::default() || stop() {
                return Ok(events);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(events);
            }
            let slice = Timespec::try_from(left.min(SLICE)).map_err(|_| Errno::INVAL)?;
            let mut fds = [PollFd::new(&self.inotify, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&slice)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sleep `timeout` in slices, ending early when `stop` answers true.
pub fn sleep(timeout: Duration, stop: &dyn Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if stop() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SLICE));
    }
}
