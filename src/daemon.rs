//! The loop: Scan -> Diff -> Apply -> Sleep, and the checks made before it
//! starts.
//!
//! One cycle: look at the file (a cheap `fstat`; in path mode a re-open), and
//! only when inotify or the `fstat` fingerprint says it may have changed, scan
//! its extents with FIEMAP. When they differ from the ones last applied, bring
//! the group in line ([`Engine::sync`], which lists the group). At least once
//! a second the group is listed to see it still exists. Then sleep on inotify.
//!
//! The loop is generic over the group ([`Updater`], i.e. [`Engine`]) and the
//! file ([`Scanner`]), so tests drive it with the fake dm-stats and a fake
//! file on a fake clock.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{FileType, Stat};
use rustix::io::Errno;

use crate::cli::{Args, Mode};
use crate::dm::{self, DmDevice};
use crate::engine::{self, Device, Engine, EngineError, Outcome, Summary};
use crate::extent::Extent;
use crate::stats::RegionId;
use crate::watch::{self, Watcher};
use crate::{debug, error, fiemap, info, sys, verbose, warn, Error};

/// At most two updates (and FIEMAP calls) a second, as C.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(500);
/// The group is listed at least this often to notice its deletion.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// After a failed update, the next try waits this long.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Path mode tolerates a missing file for this many looks ...
pub const ABSENT_TRIES: u32 = 10;
/// ... this far apart.
pub const ABSENT_WAIT: Duration = Duration::from_millis(100);

const BTRFS_SUPER_MAGIC: u64 = 0x9123_683E;

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
fn file_id(st: &Stat) -> (u64, u64) {
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
    fn look(&mut self, stop: &dyn Fn() -> bool) -> Result<Look, Error>;
    /// The file's extents (FIEMAP).
    fn scan(&mut self) -> Result<Vec<Extent>, Error>;
    /// Sleep up to `timeout`, less when `stop` answers true or, if `wake`,
    /// when the file shows a change. Returns whether a change was seen.
    fn wait(
        &mut self,
        timeout: Duration,
        wake: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, Error>;
    fn now(&self) -> Instant;
}

/// The group, as the loop uses it; [`Engine`] is the one implementation
/// outside tests.
pub trait Updater {
    fn group_id(&self) -> RegionId;
    fn load(&mut self) -> Result<Option<engine::Group>, EngineError>;
    fn sync(&mut self, extents: &[Extent], stop: &dyn Fn() -> bool)
        -> Result<Outcome, EngineError>;
    fn remove(&mut self) -> Result<Summary, EngineError>;
    /// What the last calls found worth a warning (odd list lines, members
    /// deleted by others), each once.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

impl<D: Device> Updater for Engine<D> {
    fn group_id(&self) -> RegionId {
        Engine::group_id(self)
    }
    fn load(&mut self) -> Result<Option<engine::Group>, EngineError> {
        Engine::load(self)
    }
    fn sync(
        &mut self,
        extents: &[Extent],
        stop: &dyn Fn() -> bool,
    ) -> Result<Outcome, EngineError> {
        Engine::sync(self, extents, stop)
    }
    fn remove(&mut self) -> Result<Summary, EngineError> {
        Engine::remove(self)
    }
    fn take_warnings(&mut self) -> Vec<String> {
        Engine::take_warnings(self)
    }
}

/// Why the daemon ended normally (exit status 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    GroupRemoved,
    NoExtents,
    UnlinkedAndClosed,
    Absent,
    Stopped,
}

impl Exit {
    /// The log line; the first three are C's, word for word.
    pub fn message(self) -> &'static str {
        match self {
            Exit::GroupRemoved => "Filemap group removed: exiting.",
            Exit::NoExtents => "File contains no extents: exiting.",
            Exit::UnlinkedAndClosed => "File unlinked and closed: exiting.",
            Exit::Absent => "File gone from its path: exiting.",
            Exit::Stopped => "Stop signal received: exiting.",
        }
    }
}

/// What the loop did, for the verbose log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub cycles: u64,
    /// FIEMAP scans.
    pub scans: u64,
    /// Calls to [`Updater::sync`].
    pub syncs: u64,
    /// Calls to [`Updater::load`] (the once-a-second check).
    pub loads: u64,
    /// Failed updates or checks that were retried.
    pub failures: u64,
}

pub struct Daemon<U: Updater, S: Scanner> {
    pub group: U,
    pub file: S,
    pub counters: Counters,
    /// The extents the group was last brought to; `None` when unknown.
    applied: Option<Vec<Extent>>,
    stamp: Option<Stamp>,
    /// The file may differ from `applied`: scan it when allowed.
    dirty: bool,
    /// No scan before this instant (the rate limit, or a retry's delay).
    not_before: Option<Instant>,
    /// When the group was last listed (a sync lists it too).
    listed: Option<Instant>,
}

impl<U: Updater, S: Scanner> Daemon<U, S> {
    pub fn new(group: U, file: S) -> Self {
        Daemon {
            group,
            file,
            counters: Counters::default(),
            applied: None,
            stamp: None,
            dirty: true,
            not_before: None,
            listed: None,
        }
    }

    /// Run until an exit condition; `Err` only for what a retry cannot mend.
    pub fn run(&mut self, stop: &dyn Fn() -> bool) -> Result<Exit, Error> {
        loop {
            if let Some(exit) = self.cycle(stop)? {
                match exit {
                    Exit::NoExtents | Exit::Absent => warn!("{}", exit.message()),
                    _ => info!("{}", exit.message()),
                }
                return Ok(exit);
            }
        }
    }

    /// One cycle: look, maybe scan and update, check the group, sleep.
    pub fn cycle(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<Exit>, Error> {
        let exit = self.step(stop);
        for w in self.group.take_warnings() {
            warn!("{w}");
        }
        exit
    }

    fn step(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<Exit>, Error> {
        self.counters.cycles += 1;
        if stop() {
            return Ok(Some(Exit::Stopped));
        }
        let stamp = match self.file.look(stop)? {
            Look::File(stamp) => stamp,
            _ if stop() => return Ok(Some(Exit::Stopped)),
            Look::UnlinkedAndClosed => return Ok(Some(Exit::UnlinkedAndClosed)),
            Look::Absent => return Ok(Some(Exit::Absent)),
        };
        if self.stamp != Some(stamp) {
            self.stamp = Some(stamp);
            self.dirty = true;
        }

        let now = self.file.now();
        if self.dirty && self.not_before.is_none_or(|t| now >= t) {
            if let Some(exit) = self.update(now, stop)? {
                return Ok(Some(exit));
            }
        }
        let now = self.file.now();
        if self.listed.is_none_or(|t| now >= t + CHECK_INTERVAL) {
            if let Some(exit) = self.check(now)? {
                return Ok(Some(exit));
            }
        }

        let now = self.file.now();
        let mut until = self.listed.map_or(now, |t| t + CHECK_INTERVAL);
        if self.dirty {
            until = until.min(self.not_before.unwrap_or(now));
        }
        let timeout = until.saturating_duration_since(now);
        debug!(
            "Waiting up to {} ms{}",
            timeout.as_millis(),
            if self.dirty { " (update pending)" } else { "" }
        );
        // While an update is already pending, more events change nothing:
        // sleep through them instead of waking for each.
        if self.file.wait(timeout, !self.dirty, stop)? {
            self.dirty = true;
        }
        Ok(None)
    }

    fn update(&mut self, now: Instant, stop: &dyn Fn() -> bool) -> Result<Option<Exit>, Error> {
        self.dirty = false;
        self.not_before = Some(now + UPDATE_INTERVAL);
        self.counters.scans += 1;
        let extents = match self.file.scan() {
            Ok(extents) => extents,
            Err(e) => {
                error!("Failed to read the file's extents: {e}");
                self.retry_later(now);
                return Ok(None);
            }
        };
        if extents.is_empty() {
            return match self.group.remove() {
                Ok(summary) => {
                    verbose!(
                        "Removed group {}: {}",
                        self.group.group_id(),
                        describe(&summary)
                    );
                    Ok(Some(Exit::NoExtents))
                }
                Err(e) => self.failed(e, now),
            };
        }
        if self
            .applied
            .as_deref()
            .is_some_and(|a| same_set(a, &extents))
        {
            debug!("Extents unchanged ({})", extents.len());
            return Ok(None);
        }

        let before = self.group.group_id();
        self.counters.syncs += 1;
        self.listed = Some(now);
        let outcome = match self.group.sync(&extents, stop) {
            Ok(outcome) => outcome,
            Err(e) => return self.failed(e, now),
        };
        let after = self.group.group_id();
        if after != before {
            // C's line, and like C a warning: the id dmstats printed is stale.
            warn!("group_id changed from {before} to {after}");
        }
        match outcome {
            Outcome::Unchanged => debug!("Group {after} already matches {} extents", extents.len()),
            Outcome::Updated(s) => verbose!("Updated group {after}: {}", describe(&s)),
            Outcome::Interrupted(s) => {
                verbose!("Update of group {after} interrupted: {}", describe(&s));
                return Ok(Some(Exit::Stopped));
            }
        }
        // Sorted once here, so the once-a-second check compares without
        // copying; the group is a set of regions, so order carries nothing.
        let mut extents = extents;
        extents.sort_unstable();
        self.applied = Some(extents);
        Ok(None)
    }

    /// The once-a-second check: the group exists, and still holds what we
    /// applied (another program may have deleted a member).
    fn check(&mut self, now: Instant) -> Result<Option<Exit>, Error> {
        self.listed = Some(now);
        self.counters.loads += 1;
        let group = match self.group.load() {
            Ok(Some(group)) => group,
            Ok(None) => return Ok(Some(Exit::GroupRemoved)),
            Err(e) => return self.failed(e, now),
        };
        if !group.missing.is_empty() {
            // The engine's warning names them; the next update drops them.
            self.applied = None;
            self.dirty = true;
        } else if let Some(applied) = &self.applied {
            let have: Vec<Extent> = group.members.iter().map(|r| r.extent()).collect();
            if !same_set(applied, &have) {
                warn!(
                    "Group {} was changed by another program: updating it.",
                    self.group.group_id()
                );
                self.applied = None;
                self.dirty = true;
            }
        }
        Ok(None)
    }

    fn failed(&mut self, e: EngineError, now: Instant) -> Result<Option<Exit>, Error> {
        let group = self.group.group_id();
        match e {
            EngineError::GroupGone(_) => Ok(Some(Exit::GroupRemoved)),
            e if e.is_fatal() => Err(Error::Fatal { group, source: e }),
            e => {
                error!("Update of group {group} failed, retrying: {e}");
                self.retry_later(now);
                Ok(None)
            }
        }
    }

    fn retry_later(&mut self, now: Instant) {
        self.counters.failures += 1;
        // What a failed update left is not known exactly: re-apply next time.
        self.applied = None;
        self.dirty = true;
        self.not_before = Some(now + RETRY_INTERVAL);
    }
}

fn describe(s: &Summary) -> String {
    format!(
        "{} extents, {} kept, {} created, {} deleted, {} messages",
        s.extents, s.kept, s.created, s.deleted, s.messages
    )
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
    /// `None` once the kernel dropped the watch, or (path mode) when a new
    /// one could not be made; then timeouts alone wake us.
    watcher: Option<Watcher>,
    told_held: bool,
}

impl FileSource {
    pub fn new(mode: Mode, path: PathBuf, fd: OwnedFd) -> Result<FileSource, Error> {
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("fstat", e))?;
        let watcher = Watcher::new(&fd).map_err(|e| Error::io("inotify", e))?;
        let (dev, ino) = file_id(&st);
        Ok(FileSource {
            mode,
            path,
            dev,
            fd: Some(fd),
            ino,
            watcher: Some(watcher),
            told_held: false,
        })
    }

    fn look_inode(&mut self) -> Result<Look, Error> {
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| Error::refused("file", "not open"))?;
        let st = rustix::fs::fstat(fd).map_err(|e| Error::io("fstat", e))?;
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

    fn look_path(&mut self, stop: &dyn Fn() -> bool) -> Result<Look, Error> {
        for attempt in 0..ABSENT_TRIES {
            if attempt > 0 {
                debug!("Waiting for {} to reappear", self.path.display());
                watch::sleep(ABSENT_WAIT, stop);
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
                // Out of inotify instances (a limit shared with every other
                // program of the user) is no reason to stop: the fstat
                // stamp still catches changes, at the check interval.
                self.watcher = Watcher::new(&fd)
                    .inspect_err(|e| warn!("Cannot watch {}: {e}", self.path.display()))
                    .ok();
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
    fn look(&mut self, stop: &dyn Fn() -> bool) -> Result<Look, Error> {
        match self.mode {
            Mode::Inode => self.look_inode(),
            Mode::Path => self.look_path(stop),
        }
    }

    fn scan(&mut self) -> Result<Vec<Extent>, Error> {
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| Error::refused("file", "not open"))?;
        Ok(fiemap::scan(fd)?)
    }

    fn wait(
        &mut self,
        timeout: Duration,
        wake: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, Error> {
        if self.mode == Mode::Path {
            self.fd = None;
        }
        let Some(watcher) = &self.watcher else {
            watch::sleep(timeout, stop);
            return Ok(false);
        };
        let events = if wake {
            watcher.wait(timeout, stop)
        } else {
            watch::sleep(timeout, stop);
            watcher.drain()
        }
        .map_err(|e| Error::io("inotify", e))?;
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

/// Everything checked before detaching, so the caller sees a failure.
pub struct Prepared {
    pub fd: OwnedFd,
    pub engine: Engine<DmDevice>,
}

/// The checks of the man page: an open regular file, on a live
/// device-mapper device, on a file system with physical FIEMAP addresses,
/// named by the path, and a filemap group with this id on that device.
///
/// The `detached` copy runs after the first process passed every check and
/// exited 0: by then the file may have been renamed, unlinked or replaced
/// (a script that maps a file and moves it at once), which is for the loop
/// to follow, not a reason to refuse. So it neither looks at the path again
/// nor repeats the FIEMAP probe (a sync of the whole file).
pub fn prepare(args: &Args, detached: bool) -> Result<Prepared, Error> {
    let what = format!("fd {}", args.fd);
    let fd = sys::adopt_fd(args.fd).map_err(|e| match e {
        Errno::BADF => Error::refused(&what, "not an open file descriptor"),
        e => Error::refused(&what, e.to_string()),
    })?;
    let st =
        rustix::fs::fstat(&fd).map_err(|e| Error::refused(&what, format!("fstat failed: {e}")))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        kind => {
            return Err(Error::refused(
                &what,
                format!("{} is not a regular file", kind_name(kind)),
            ))
        }
    }
    let (dev, _) = file_id(&st);
    // First of the checks that can race with the caller: libdm does not
    // wait for us, so the file may be moved any moment after it forked.
    if !detached {
        check_path(args, &st)?;
    }
    // Before the device check: btrfs on LVM shows its files on an
    // anonymous device, and "not device-mapper" would mislead.
    let fs = rustix::fs::fstatfs(&fd)
        .map_err(|e| Error::refused(&what, format!("fstatfs failed: {e}")))?;
    #[allow(clippy::unnecessary_cast)]
    if fs.f_type as u64 == BTRFS_SUPER_MAGIC {
        return Err(Error::refused(
            &what,
            "file is on btrfs, whose FIEMAP gives no physical addresses",
        ));
    }
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let dm_major = dm::dm_major()
        .map_err(|e| Error::refused(&what, format!("file is on device {major}:{minor}; {e}")))?;
    if major != dm_major {
        return Err(Error::refused(
            &what,
            format!(
                "file is on device {major}:{minor}, not a device-mapper device (major {dm_major})"
            ),
        ));
    }
    if !detached {
        fiemap::scan(&fd).map_err(|e| Error::refused(&what, e.to_string()))?;
    }

    let control = dm::Control::open()?;
    // As libdm binds its handle: the major says device-mapper, only the
    // kernel says this minor is a live device (and gives its name).
    let device = control
        .dev_status(dev)
        .map_err(|e| Error::refused(&what, e.to_string()))?;
    verbose!(
        "File is on device-mapper device {} ({major}:{minor})",
        device.name
    );
    let mut engine = Engine::new(DmDevice { control, dev }, args.group_id);
    let what = format!("group {}", args.group_id);
    let loaded = engine.load();
    for w in engine.take_warnings() {
        warn!("{w}");
    }
    match loaded {
        Ok(Some(group)) => {
            verbose!(
                "Found group_id {}: alias \"{}\", {} regions",
                group.id(),
                group.descriptor.alias,
                group.members.len()
            )
        }
        Ok(None) => {
            return Err(Error::refused(
                what,
                format!("no filemap group with this id on device {major}:{minor}"),
            ))
        }
        Err(e) => return Err(Error::refused(what, e.to_string())),
    }
    Ok(Prepared { fd, engine })
}

/// The path must name the fd's file, in inode mode too: a path that names
/// another file means the caller handed us the wrong fd, and we would report
/// on the wrong file. But an unlinked file has no name to check, and in
/// inode mode following it is the daemon's job (a caller that maps a file
/// and removes it at once, while it still holds it open).
fn check_path(args: &Args, st: &Stat) -> Result<(), Error> {
    if args.mode == Mode::Inode && st.st_nlink == 0 {
        return Ok(());
    }
    let same =
        rustix::fs::stat(&args.path).is_ok_and(|p| p.st_dev == st.st_dev && p.st_ino == st.st_ino);
    if !same {
        return Err(Error::refused(
            format!("path {}", args.path.display()),
            format!("does not name the file of fd {}", args.fd),
        ));
    }
    Ok(())
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "an unknown kind of file",
    }
}

/// Whether `extents` holds exactly the extents of `sorted` (which is sorted).
fn same_set(sorted: &[Extent], extents: &[Extent]) -> bool {
    if sorted.len() != extents.len() {
        return false;
    }
    if extents.is_sorted() {
        return sorted == extents;
    }
    let mut extents = extents.to_vec();
    extents.sort_unstable();
    sorted == extents
}
