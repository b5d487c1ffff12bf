//! The file the group mirrors, as the loop sees it ([`Scanner`], [`Look`],
//! [`Stamp`]), and the real one ([`FileSource`]): FIEMAP, `fstat`, inotify,
//! and in path mode a re-open by name each cycle.
//!
//! Owns: the file's fd after start-up, its inotify watch, the inode and
//! path modes. Touches: no device, no group; the loop ([`crate::daemon`])
//! decides what a look or a scan means.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{FileType, Stat};

use super::wait::{self, Watcher};
use crate::extent::Extent;
use crate::sys::fiemap::FiemapError;
use crate::sys::{self, fiemap};
use crate::{debug, info, warn};

/// How the daemon follows the file (see the man page, MODES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Inode,
    Path,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Inode => "inode",
            Mode::Path => "path",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the file could not be looked at or scanned. Each variant keeps its
/// cause; the text is one log line.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Fiemap(#[from] FiemapError),
    /// A call on the open file failed: `fstat`, `inotify`.
    #[error("{call}: {source}")]
    Io {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Asked to look without an open file: a bug of the loop, reported as
    /// such.
    #[error("file: not open")]
    NotOpen,
}

impl SourceError {
    fn io(call: &'static str, source: impl Into<std::io::Error>) -> SourceError {
        SourceError::Io {
            call,
            source: source.into(),
        }
    }
}

/// Path mode tolerates a missing file for this many looks ...
pub(crate) const ABSENT_TRIES: u32 = 10;
/// ... this far apart.
pub(crate) const ABSENT_WAIT: Duration = Duration::from_millis(100);
/// Without an inotify watch the file is looked at (`fstat`) this often, and
/// a new watch tried at each look: the change is then seen about as soon
/// as C sees one, which lists the device each second. A watch is refused
/// when the user's inotify instances are all taken (`max_user_instances`,
/// 128 by default and shared with every other program of the user, so the
/// 129th daemon of a user meets it).
pub(crate) const UNWATCHED_LOOK: Duration = Duration::from_secs(1);

/// What `fstat` says about the file, cheap enough for every cycle. Any write
/// that moves data moves one of these (size, blocks, mtime, ctime), even when
/// inotify was not told (writes through a shared mapping).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub ino: u64,
    pub size: i64,
    pub blocks: i64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    #[allow(clippy::unnecessary_cast)] // the field types differ between architectures
    pub fn of(st: &Stat) -> Stamp {
        Stamp {
            ino: st.st_ino as u64,
            size: st.st_size as i64,
            blocks: st.st_blocks as i64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }
}

/// `(st_dev, st_ino)`: which file a `stat` describes.
#[allow(clippy::unnecessary_cast)] // the field types differ between architectures
pub(crate) fn file_id(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// What a look at the file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    File(Stamp),
    /// Inode mode: the file has no name left and no other process holds it.
    UnlinkedAndClosed,
    /// Path mode: no regular file of the device at the path, after the tolerance.
    Absent,
}

/// The file the group mirrors.
pub trait Scanner {
    /// Look at the file without FIEMAP (path mode re-opens it here).
    fn look(&mut self, stop: &dyn Fn() -> bool) -> Result<Look, SourceError>;
    /// The file's extents (FIEMAP).
    fn scan(&mut self) -> Result<Vec<Extent>, SourceError>;
    /// Whether the last scan left out data with no address yet (delayed
    /// allocation): the loop looks again, soon and then about once a
    /// second, until none.
    fn unmapped(&self) -> bool {
        false
    }
    /// Sleep up to `timeout`, less when `stop` answers true or, if `wake`,
    /// when the file shows a change. Returns whether a change was seen.
    fn wait(
        &mut self,
        timeout: Duration,
        wake: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, SourceError>;
    fn now(&self) -> Instant;
}

/// The real file: FIEMAP, `fstat`, inotify.
pub struct FileSource {
    mode: Mode,
    path: PathBuf,
    /// `st_dev` of the dm device; a file elsewhere is never mapped.
    dev: u64,
    /// In inode mode, always the caller's fd. In path mode, the file opened by
    /// this cycle's look, closed before sleeping so we never pin a replaced file.
    fd: Option<OwnedFd>,
    ino: u64,
    /// `None` once the kernel dropped the watch, or when none could be made
    /// (see [`UNWATCHED_LOOK`]); each look tries again.
    watcher: Option<Watcher>,
    /// Whether the last try to watch failed (its warning is said once).
    refused: bool,
    told_held: bool,
    /// What the last scan said of delayed allocation.
    unmapped: bool,
}

impl FileSource {
    pub fn new(mode: Mode, path: PathBuf, fd: OwnedFd) -> Result<FileSource, SourceError> {
        let st = rustix::fs::fstat(&fd).map_err(|e| SourceError::io("fstat", e))?;
        let (dev, ino) = file_id(&st);
        let mut source = FileSource {
            mode,
            path,
            dev,
            fd: None,
            ino,
            watcher: None,
            refused: false,
            told_held: false,
            unmapped: false,
        };
        source.watch(&fd);
        source.fd = Some(fd);
        Ok(source)
    }

    /// Watch the file open at `fd` with a new inotify instance. Out of
    /// instances (or watches) is no reason to stop: the `fstat` stamp
    /// catches what a write changes, looked at each [`UNWATCHED_LOOK`].
    fn watch(&mut self, fd: &OwnedFd) {
        match Watcher::new(fd) {
            Ok(watcher) => {
                if self.refused {
                    info!("Watching {} with inotify again.", self.path.display());
                }
                self.watcher = Some(watcher);
                self.refused = false;
            }
            Err(e) => {
                if !self.refused {
                    let limit = match e {
                        rustix::io::Errno::MFILE => " (fs.inotify.max_user_instances)",
                        rustix::io::Errno::NOSPC => " (fs.inotify.max_user_watches)",
                        _ => "",
                    };
                    warn!(
                        "Cannot watch {} with inotify: {}{limit}; looking at it every {} s instead.",
                        self.path.display(),
                        std::io::Error::from(e),
                        UNWATCHED_LOOK.as_secs()
                    );
                }
                self.watcher = None;
                self.refused = true;
            }
        }
    }

    fn look_inode(&mut self) -> Result<Look, SourceError> {
        if self.watcher.is_none() {
            let fd = self.fd.take().ok_or(SourceError::NotOpen)?;
            self.watch(&fd);
            self.fd = Some(fd);
        }
        let fd = self.fd.as_ref().ok_or(SourceError::NotOpen)?;
        let st = rustix::fs::fstat(fd).map_err(|e| SourceError::io("fstat", e))?;
        if st.st_nlink == 0 {
            let (dev, ino) = file_id(&st);
            match sys::open_elsewhere(dev, ino) {
                Ok(false) => return Ok(Look::UnlinkedAndClosed),
                Ok(true) if !self.told_held => {
                    info!("File unlinked and open: continuing.");
                    self.told_held = true;
                }
                Ok(true) => {}
                Err(e) => warn!("Cannot scan /proc for other holders of the file: {e}"),
            }
        }
        Ok(Look::File(Stamp::of(&st)))
    }

    fn look_path(&mut self, stop: &dyn Fn() -> bool) -> Result<Look, SourceError> {
        for attempt in 0..ABSENT_TRIES {
            if attempt > 0 {
                debug!("Waiting for {} to reappear", self.path.display());
                wait::sleep(ABSENT_WAIT, stop);
                if stop() {
                    return Ok(Look::Absent);
                }
            }
            let Some((fd, st)) = self.open_path() else {
                continue;
            };
            let (_, ino) = file_id(&st);
            if ino != self.ino || self.watcher.is_none() {
                if ino != self.ino {
                    info!(
                        "File at {} replaced: now following inode {ino}.",
                        self.path.display()
                    );
                }
                // Drop the old instance before making the new one: never two.
                self.watcher = None;
                self.watch(&fd);
                self.ino = ino;
            }
            self.fd = Some(fd);
            return Ok(Look::File(Stamp::of(&st)));
        }
        warn!(
            "No regular file of this device at {} after {ABSENT_TRIES} tries.",
            self.path.display()
        );
        Ok(Look::Absent)
    }

    /// The file now at the path, if it is a regular file on our device.
    /// `O_PATH` first, so a FIFO or device node put there is never opened
    /// (that could block, or rewind a tape); then the same inode is opened
    /// for reading through `/proc/self/fd`, with no window for a swap.
    fn open_path(&self) -> Option<(OwnedFd, Stat)> {
        use rustix::fs::{Mode as Perm, OFlags};
        let ours = |st: &Stat| {
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                && file_id(st).0 == self.dev
        };
        let handle =
            rustix::fs::open(&self.path, OFlags::PATH | OFlags::CLOEXEC, Perm::empty()).ok()?;
        rustix::fs::fstat(&handle).ok().filter(ours)?;
        let reopen = format!("/proc/self/fd/{}", sys::raw(&handle));
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(reopen.as_str(), flags, Perm::empty()).ok()?;
        let st = rustix::fs::fstat(&fd).ok().filter(ours)?;
        Some((fd, st))
    }
}

impl Scanner for FileSource {
    fn look(&mut self, stop: &dyn Fn() -> bool) -> Result<Look, SourceError> {
        match self.mode {
            Mode::Inode => self.look_inode(),
            Mode::Path => self.look_path(stop),
        }
    }

    fn scan(&mut self) -> Result<Vec<Extent>, SourceError> {
        let fd = self.fd.as_ref().ok_or(SourceError::NotOpen)?;
        let scan = fiemap::scan_full(fd)?;
        // Space reserved past the end holds no data of the file.
        self.unmapped = match scan.unmapped {
            Some(at) => {
                let st = rustix::fs::fstat(fd).map_err(|e| SourceError::io("fstat", e))?;
                #[allow(clippy::unnecessary_cast)] // the field type differs between architectures
                let size = st.st_size as u64;
                at < size
            }
            None => false,
        };
        Ok(scan.extents)
    }

    fn unmapped(&self) -> bool {
        self.unmapped
    }

    fn wait(
        &mut self,
        timeout: Duration,
        wake: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, SourceError> {
        if self.mode == Mode::Path {
            self.fd = None;
        }
        let Some(watcher) = &self.watcher else {
            // Unwatched: wake for a look (the stamp) as often as a watch
            // would have told of a change, but sleep through a pending update.
            let timeout = if wake {
                timeout.min(UNWATCHED_LOOK)
            } else {
                timeout
            };
            wait::sleep(timeout, stop);
            return Ok(false);
        };
        let events = if wake {
            watcher.wait(timeout, stop)
        } else {
            wait::sleep(timeout, stop);
            watcher.drain()
        }
        .map_err(|e| SourceError::io("inotify", e))?;
        if events.dropped {
            debug!("inotify watch dropped by the kernel");
            self.watcher = None;
        }
        Ok(events.changed)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}
