//! The `map` and `unmap` commands on the kernel: the file checked as the
//! daemon checks its fd ([`start::check_file`]), then [`map`] on its
//! device. `main` follows a mapped group with the positional form's own
//! code, and deletes it again should following fail to start.
//!
//! Owns: [`Mapped`], [`map_file`], [`unmap`], [`delete`]. Touches: the
//! device only through [`map`].

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cmd::cli::{MapArgs, UnmapArgs};
use crate::cmd::{dialect, start};
use crate::dmstats::{AliasError, Descriptor, Dialect, RegionId, Text};
use crate::engine::map::{self, Created, Deleted, FindError, MapError, NewGroup};
use crate::sys::dm::{self, DmDevice};
use crate::{verbose, warn, Error};

/// A group `map` made, and the file it maps.
pub(crate) struct Mapped {
    /// Open for reading, inheritable: the daemon's fd.
    pub fd: OwnedFd,
    /// Absolute, links resolved: the daemon's path.
    pub path: PathBuf,
    /// `st_rdev` of the device the group is on.
    pub dev: u64,
    pub created: Created,
}

/// Check the file and make its group. `stop` is polled between creates.
pub(crate) fn map_file(args: &MapArgs, stop: &dyn Fn() -> bool) -> Result<Mapped, Error> {
    let what = shown(&args.file);
    // dmstats names the group after the file, byte for byte:
    // `dm_basename()` of the canonical path. The command line refused a bad
    // `--alias`; a file name no reader reads back is refused here, once
    // links are resolved, before anything is made.
    let given = args.alias.is_some();
    let checked = start::check_file(&args.file)?;
    let alias: Text = match &args.alias {
        Some(a) => a.as_bytes().into(),
        None => checked
            .path
            .file_name()
            .map(|n| n.as_bytes().into())
            .unwrap_or_default(),
    };
    if let Err(source) = Descriptor::for_new_group(&alias, vec![0]) {
        return Err(alias_refused(what, given, source));
    }
    // A space: no bare reader reads it (they stop at it), a quoted one may.
    let spaced = alias.contains(b" ");
    let dialect = match args.dialect {
        Some(Dialect::Bare) if spaced => {
            let source = AliasError::SpaceBare(format!("{alias:?}"));
            return Err(alias_refused(what, given, source));
        }
        Some(d) => d,
        None if spaced => Dialect::Quoted,
        None => {
            let d = dialect::system_dialect();
            verbose!("Descriptor dialect {d:?}: what this system's libdevmapper reads");
            d
        }
    };
    let spec = NewGroup {
        alias,
        histogram: args.histogram.clone(),
        dialect,
    };
    let mut device = checked.device;
    let created =
        map::create_group(&mut device, &checked.extents, &spec, stop).map_err(|source| {
            Error::Map {
                what: what.clone(),
                source,
            }
        })?;
    verbose!(
        "Created group {} of {} regions, alias \"{}\"",
        created.group_id,
        created.regions,
        spec.alias
    );
    Ok(Mapped {
        fd: checked.fd,
        path: checked.path,
        dev: device.dev,
        created,
    })
}

/// A path for a one-line message: control characters and bytes that are
/// not UTF-8 escaped, as [`Text`] shows them.
pub(crate) fn shown(path: &Path) -> String {
    Text::from(path.as_os_str().as_bytes()).to_string()
}

/// The alias refused, and for the file's own name the way round it.
fn alias_refused(what: String, given: bool, source: AliasError) -> Error {
    let source = MapError::Alias(source);
    if given {
        Error::Map { what, source }
    } else {
        Error::Map {
            what: format!("{what}: the file's name as alias (give one with --alias)"),
            source,
        }
    }
}

/// Delete the group `unmap` names: `--group ID` on the device of the
/// target, or the one group that maps the file (see [`map::find_group`]).
pub(crate) fn unmap(args: &UnmapArgs) -> Result<(RegionId, Deleted), Error> {
    let what = shown(&args.target);
    let (mut device, id) = match args.group {
        Some(id) => (start::check_device(&args.target)?, id),
        None => {
            let checked = start::check_file(&args.target)?;
            let mut device = checked.device;
            let list = map::list(&mut device).map_err(|source| Error::Map {
                what: what.clone(),
                source,
            })?;
            let id = match map::find_group(&list, &checked.extents) {
                Ok(id) => id,
                Err(source) => {
                    // No group, but perhaps what a `map` killed before its
                    // first descriptor left.
                    let strays = map::strays(&list, &checked.extents);
                    let Some(&first) = strays.first().filter(|_| source == FindError::NoMatch)
                    else {
                        return Err(Error::Find { what, source });
                    };
                    let done = map::delete_strays(&mut device, &strays)
                        .map_err(|source| Error::Map { what, source })?;
                    for w in &done.warnings {
                        warn!("{w}");
                    }
                    return Ok((first, done));
                }
            };
            (device, id)
        }
    };
    let done = map::delete_group(&mut device, id).map_err(|source| Error::Map { what, source })?;
    for w in &done.warnings {
        warn!("{w}");
    }
    Ok((id, done))
}

/// Delete a group `map` made, when following it could not start.
pub(crate) fn delete(dev: u64, id: RegionId) -> Result<Deleted, Error> {
    let mut device = DmDevice {
        control: dm::Control::open()?,
        dev,
    };
    map::delete_group(&mut device, id).map_err(|source| Error::Map {
        what: format!("group {id}"),
        source,
    })
}
