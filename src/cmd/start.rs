//! The start-up checks of the man page, made before detaching so the
//! caller sees a failure: an open regular file, on a live device-mapper
//! device, on a file system with physical FIEMAP addresses, named by the
//! path, and a filemap group with this id on that device.
//!
//! Owns: [`prepare`] and the wording of every refusal ([`Refusal`]).
//! Touches: the device and the group only to look (one DM_DEV_STATUS, one
//! `@stats_list` through [`Engine::load`]); nothing after start-up is
//! reported from here.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Stat};
use rustix::io::Errno;

use crate::cmd::cli::Args;
use crate::cmd::map::shown;
use crate::daemon::source::file_id;
use crate::daemon::source::Mode;
use crate::engine::{Engine, EngineError};
use crate::extent::Extent;
use crate::plan::fold;
use crate::sys::dm::{self, DmDevice, DmError};
use crate::sys::fiemap::{self, FiemapError};
use crate::{sys, verbose, warn, Error};

/// The kernel's value (`<linux/magic.h>`), through linux-raw-sys.
const BTRFS_SUPER_MAGIC: u64 = linux_raw_sys::general::BTRFS_SUPER_MAGIC as u64;

/// Why a check refused to start: the `<why>` of [`Error::Refused`].
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("not an open file descriptor")]
    NotOpen,
    #[error("{0}")]
    Adopt(#[source] Errno),
    #[error("fstat failed: {0}")]
    Fstat(#[source] Errno),
    #[error("{0} is not a regular file")]
    NotRegular(&'static str),
    #[error("does not name the file of fd {0}")]
    OtherFile(i32),
    #[error("fstatfs failed: {0}")]
    Fstatfs(#[source] Errno),
    #[error("file is on btrfs, whose FIEMAP gives no physical addresses")]
    Btrfs,
    #[error("file is on device {major}:{minor}; {source}")]
    NoDmMajor {
        major: u32,
        minor: u32,
        #[source]
        source: DmError,
    },
    #[error("file is on device {major}:{minor}, not a device-mapper device (major {dm_major})")]
    NotDm {
        major: u32,
        minor: u32,
        dm_major: u32,
    },
    #[error("{0}")]
    Fiemap(#[source] FiemapError),
    #[error("{0}")]
    Device(#[source] DmError),
    #[error("{0}")]
    Open(#[source] std::io::Error),
    #[error("no filemap group with this id on device {major}:{minor}")]
    NoGroup { major: u32, minor: u32 },
    #[error("{0}")]
    Group(#[source] EngineError),
}

/// Everything checked before detaching, so the caller sees a failure.
pub(crate) struct Prepared {
    pub fd: OwnedFd,
    pub engine: Engine<DmDevice>,
}

/// The checks of the man page, in the order that gives the clearest
/// refusal.
///
/// The `detached` copy runs after the first process passed every check and
/// exited 0: by then the file may have been renamed, unlinked or replaced
/// (a script that maps a file and moves it at once), which is for the loop
/// to follow, not a reason to refuse. So it neither looks at the path again
/// nor repeats the FIEMAP probe.
pub(crate) fn prepare(args: &Args, detached: bool) -> Result<Prepared, Error> {
    let what = format!("fd {}", args.fd);
    let refuse = |why: Refusal| Error::refused(&what, why);
    let fd = sys::adopt_fd(args.fd).map_err(|e| match e {
        Errno::BADF => refuse(Refusal::NotOpen),
        e => refuse(Refusal::Adopt(e)),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| refuse(Refusal::Fstat(e)))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        kind => return Err(refuse(Refusal::NotRegular(kind_name(kind)))),
    }
    let (dev, _) = file_id(&st);
    // First of the checks that can race with the caller: libdm does not
    // wait for us, so the file may be moved any moment after it forked.
    if !detached {
        check_path(args, &st)?;
    }
    not_btrfs(&fd, &refuse)?;
    on_dm_major(dev, &refuse)?;
    if !detached {
        fiemap::scan(&fd).map_err(|e| refuse(Refusal::Fiemap(e)))?;
    }
    let device = live_device(dev, &refuse)?;
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let mut engine = Engine::new(device, args.group_id);
    engine.set_budget(budget());
    verbose!(
        "Region budget: one per extent + {} ({BUDGET_ENV} to change)",
        engine.budget()
    );
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
        Ok(None) => return Err(Error::refused(what, Refusal::NoGroup { major, minor })),
        Err(e) => return Err(Error::refused(what, Refusal::Group(e))),
    }
    Ok(Prepared { fd, engine })
}

/// Before the device check: btrfs on LVM shows its files on an anonymous
/// device, and "not device-mapper" would mislead.
fn not_btrfs(fd: &OwnedFd, refuse: &dyn Fn(Refusal) -> Error) -> Result<(), Error> {
    let fs = rustix::fs::fstatfs(fd).map_err(|e| refuse(Refusal::Fstatfs(e)))?;
    #[allow(clippy::unnecessary_cast)]
    if fs.f_type as u64 == BTRFS_SUPER_MAGIC {
        return Err(refuse(Refusal::Btrfs));
    }
    Ok(())
}

/// `dev` has device-mapper's major.
fn on_dm_major(dev: u64, refuse: &dyn Fn(Refusal) -> Error) -> Result<(), Error> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let dm_major = dm::dm_major().map_err(|source| {
        refuse(Refusal::NoDmMajor {
            major,
            minor,
            source,
        })
    })?;
    if major != dm_major {
        return Err(refuse(Refusal::NotDm {
            major,
            minor,
            dm_major,
        }));
    }
    Ok(())
}

/// As libdm binds its handle: the major says device-mapper, only the
/// kernel says this minor is a live device (and gives its name).
fn live_device(dev: u64, refuse: &dyn Fn(Refusal) -> Error) -> Result<DmDevice, Error> {
    let control = dm::Control::open()?;
    let device = control
        .dev_status(dev)
        .map_err(|e| refuse(Refusal::Device(e)))?;
    verbose!(
        "File is on device-mapper device {} ({}:{})",
        device.name,
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    Ok(DmDevice { control, dev })
}

/// A file `map` or `unmap` names, checked as the daemon checks its fd: the
/// path resolved as dmstats resolves it (links followed), a regular file
/// (opened without following anything else: a FIFO or device node put
/// there is never opened for reading), not on btrfs, on a live
/// device-mapper device, with a FIEMAP that works. The fd is left
/// inheritable, for the daemon `map` starts.
pub(crate) struct Checked {
    pub fd: OwnedFd,
    /// Absolute, links resolved.
    pub path: PathBuf,
    pub device: DmDevice,
    /// The merged extents, in file order.
    pub extents: Vec<Extent>,
}

pub(crate) fn check_file(path: &Path) -> Result<Checked, Error> {
    use rustix::fs::{Mode as Perm, OFlags};
    let what = shown(path);
    let refuse = |why: Refusal| Error::refused(&what, why);
    let abs = std::fs::canonicalize(path).map_err(|e| refuse(Refusal::Open(e)))?;
    let handle = rustix::fs::open(&abs, OFlags::PATH | OFlags::CLOEXEC, Perm::empty())
        .map_err(|e| refuse(Refusal::Open(e.into())))?;
    let st = rustix::fs::fstat(&handle).map_err(|e| refuse(Refusal::Fstat(e)))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        kind => return Err(refuse(Refusal::NotRegular(kind_name(kind)))),
    }
    // The same inode, for reading, with no window for a swap.
    let reopen = format!("/proc/self/fd/{}", sys::raw(&handle));
    let fd = rustix::fs::open(
        reopen.as_str(),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        Perm::empty(),
    )
    .map_err(|e| refuse(Refusal::Open(e.into())))?;
    let (dev, _) = file_id(&st);
    not_btrfs(&fd, &refuse)?;
    on_dm_major(dev, &refuse)?;
    let extents = fiemap::scan(&fd).map_err(|e| refuse(Refusal::Fiemap(e)))?;
    let device = live_device(dev, &refuse)?;
    Ok(Checked {
        fd,
        path: abs,
        device,
        extents,
    })
}

/// The device `unmap --group` names: a device-mapper block device, or the
/// device any file or directory given sits on.
pub(crate) fn check_device(path: &Path) -> Result<DmDevice, Error> {
    let what = shown(path);
    let refuse = |why: Refusal| Error::refused(&what, why);
    let st = rustix::fs::stat(path).map_err(|e| refuse(Refusal::Open(e.into())))?;
    #[allow(clippy::unnecessary_cast)]
    let dev = match FileType::from_raw_mode(st.st_mode) {
        FileType::BlockDevice => st.st_rdev as u64,
        _ => file_id(&st).0,
    };
    on_dm_major(dev, &refuse)?;
    live_device(dev, &refuse)
}

/// The environment variable that sets the region budget: `dmstats` starts
/// the daemon with a fixed command line, so this is the only way in.
pub(crate) const BUDGET_ENV: &str = "DMFILEMAPD_BUDGET";

/// Extra regions per group beyond one per extent: [`BUDGET_ENV`] when it
/// holds a number, else [`fold::DEFAULT_BUDGET`].
fn budget() -> usize {
    match std::env::var(BUDGET_ENV) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            warn!(
                "{BUDGET_ENV}={v:?} is not a number: using {}",
                fold::DEFAULT_BUDGET
            );
            fold::DEFAULT_BUDGET
        }),
        Err(_) => fold::DEFAULT_BUDGET,
    }
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
            format!("path {}", shown(&args.path)),
            Refusal::OtherFile(args.fd),
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

#[cfg(test)]
mod tests {
    #[test]
    fn btrfs_magic() {
        assert_eq!(super::BTRFS_SUPER_MAGIC, 0x9123_683E);
    }
}
