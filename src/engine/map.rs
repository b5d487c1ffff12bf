//! `dmfilemapd map` and `unmap` on a device: make a filemap group the way
//! `dmstats create --filemap` makes one, find the group of a file, and
//! delete a group. Generic over [`Device`], so tests run on the fake.
//!
//! Neither sends a message of its own: both are the engine's steps (the
//! apply order, `engine::apply`), so both keep its rule for a SIGKILL at
//! any instant: at most `BATCH` regions of ours outside the group, no
//! descriptor naming a missing region, and what a kill leaves is settled
//! by the next `unmap` of the group or daemon on it (`engine::mark`).
//!
//! A new group is what dmstats makes: one region per merged extent in file
//! order, step `/1`, program id `dmstats`, the options on every region, the
//! descriptor on the lowest id. The engine founds it (`Engine::found`: the
//! first region, marked as made under no descriptor, then its descriptor,
//! a group of one) and grows it with [`Engine::sync`] as it grows any
//! group: a list, then steps of up to `BATCH` creates, each marked with
//! the standing descriptor's fingerprint and followed by one descriptor
//! write naming them, with one more list before the first write (the look
//! for a rival). So N + 1 + ceil((N - 1) / 32) messages, and two lists,
//! for N > 1 extents. The marks read as empty aux data to libdm, as
//! dmstats' `-` does: a kill mid-step leaves regions the next unmap or
//! daemon adopts, a kill before the first descriptor write leaves the
//! first region alone, outside any group and recognisable ([`strays`]),
//! and a region made by hand is never taken for one of ours. A failure or
//! a stop deletes the part made.
//!
//! Deleting is the engine's own removal ([`Engine::remove_step`]): from a
//! fresh list each step, one batch of members leaves the descriptor (its
//! list on a carrier region first) and is deleted; the leader goes last,
//! right after a list that shows it alone. Looking before each step
//! deletes members a daemon following the group re-creates meanwhile.

use crate::dmstats::bounds::Histogram;
use crate::dmstats::{self, AliasError, Descriptor, Device, Dialect, Region, RegionId, Text};
use crate::engine::mark::first_mark;
use crate::engine::{Engine, EngineError, Outcome, Warning};
use crate::extent::Extent;
use crate::plan::group::{self, Group, List};

/// The program id dmstats gives the regions of a filemap group.
pub(crate) const PROGRAM_ID: &str = "dmstats";

/// The group `map` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    /// Bytes: a file name need not be UTF-8.
    pub alias: Text,
    pub histogram: Histogram,
    /// How the descriptor names the alias: as the system's dmstats reads it.
    pub dialect: Dialect,
}

/// What `map` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub group_id: RegionId,
    pub regions: usize,
}

/// What `unmap` deleted.
#[derive(Debug, Default)]
pub struct Deleted {
    pub regions: usize,
    pub messages: usize,
    /// What the engine worked around (regions a stopped `map`, `unmap` or
    /// daemon left, members someone else deleted), one each.
    pub warnings: Vec<Warning>,
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("the file has no extents to map")]
    NoExtents,
    #[error(transparent)]
    Alias(#[from] AliasError),
    #[error("stopped by a signal")]
    Stopped,
    /// A step failed (the device, a reply, not a group): the engine's
    /// error, which says too when its repair failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Cleaning up after `cause` failed too: the first region, before it
    /// had a descriptor.
    #[error("{cause}; regions {left} could not be deleted")]
    Leftover { cause: Box<MapError>, left: String },
    /// Deleting the part of the group made before `cause` failed too.
    #[error("{cause}; deleting the part made (group {group}) failed too: {undo}")]
    Abandoned {
        cause: Box<MapError>,
        group: RegionId,
        undo: Box<MapError>,
    },
}

/// Why no single group was found for a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    #[error("the file has no extents, so no group maps it; name one with --group ID")]
    NoExtents,
    #[error(
        "no filemap group on the device has exactly the file's extents; name one with --group ID"
    )]
    NoMatch,
    #[error("groups {} all map the file's extents; name one with --group ID", dmstats::format_members(.0))]
    Ambiguous(Vec<RegionId>),
}

/// Every region on the device, by id (one `@stats_list`).
pub fn list<D: Device>(dev: &mut D) -> Result<List, MapError> {
    // An engine that has loaded no group lists every program's regions.
    let (regions, _) = Engine::new(dev, 0).list()?;
    Ok(group::by_id(regions))
}

/// Make the group of a file whose merged extents are `extents` (in file
/// order), in the steps of the module's comment. `stop` is polled between
/// creates; a stop deletes what was made.
pub fn create_group<D: Device>(
    dev: &mut D,
    extents: &[Extent],
    spec: &NewGroup,
    stop: &dyn Fn() -> bool,
) -> Result<Created, MapError> {
    let Some(&first) = extents.first() else {
        return Err(MapError::NoExtents);
    };
    // Refused before anything exists.
    let descriptor = Descriptor {
        dialect: spec.dialect,
        ..Descriptor::for_new_group(&spec.alias, vec![0])?
    };
    let template = Region {
        id: 0,
        start: 0,
        len: 0,
        step: 0,
        program_id: PROGRAM_ID.into(),
        aux_data: "-".into(),
        precise: spec.histogram.precise,
        histogram: spec.histogram.bounds.clone(),
    };
    if stop() {
        return Err(MapError::Stopped);
    }
    let mut engine = Engine::new(&mut *dev, 0);
    match engine.found(first, &template, descriptor) {
        Ok(()) => {}
        Err(EngineError::Unrepaired { cause, .. }) => {
            return Err(MapError::Leftover {
                cause: Box::new(MapError::from(*cause)),
                left: engine.group_id().to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    // The rest, as the engine grows any group.
    let grown = if extents.len() > 1 {
        engine.sync(extents, stop)
    } else {
        Ok(Outcome::Unchanged)
    };
    let cause = match grown {
        Ok(Outcome::Interrupted(_)) => Some(MapError::Stopped),
        Ok(_) => None,
        Err(e) => Some(MapError::from(e)),
    };
    let group_id = engine.group_id();
    if let Some(cause) = cause {
        // The engine left the group consistent (or says why not), with
        // what its last step made or adopts by the marks.
        return Err(abandon(dev, group_id, cause));
    }
    Ok(Created {
        group_id,
        regions: extents.len(),
    })
}

/// Delete the part of the group made so far.
fn abandon<D: Device>(dev: &mut D, group: RegionId, cause: MapError) -> MapError {
    match delete_group(dev, group) {
        Ok(_) => cause,
        Err(undo) => MapError::Abandoned {
            cause: Box::new(cause),
            group,
            undo: Box::new(undo),
        },
    }
}

/// Every group in a list, by leader id.
fn groups(list: &List) -> impl Iterator<Item = Group> + '_ {
    list.values()
        .filter(|r| group::leading(r).is_some())
        .filter_map(|r| group::read_group(r.id, list).ok())
}

/// The group of a file: the one the daemon would leave as it is for the
/// file's extents (its plan from the group to them changes nothing), i.e.
/// what `map`, `dmstats create --filemap` and a daemon that caught up
/// leave. A group of any program may match; none or several is an error
/// that asks for `--group`.
pub fn find_group(list: &List, extents: &[Extent]) -> Result<RegionId, FindError> {
    if extents.is_empty() {
        return Err(FindError::NoExtents);
    }
    let found: Vec<RegionId> = groups(list)
        .filter(|g| g.tiles(extents))
        .map(|g| g.id())
        .collect();
    match found.as_slice() {
        [] => Err(FindError::NoMatch),
        [one] => Ok(*one),
        _ => Err(FindError::Ambiguous(found)),
    }
}

/// The first region of a `map` killed before its first descriptor write:
/// outside every group, over the file's first extent, carrying
/// [`first_mark`] (so never a region made by hand). `unmap FILE` deletes
/// it when no group maps the file.
pub fn strays(list: &List, extents: &[Extent]) -> Vec<RegionId> {
    let Some(&first) = extents.first() else {
        return Vec::new();
    };
    let named: std::collections::BTreeSet<RegionId> = list
        .values()
        .filter_map(group::leading)
        .flat_map(|d| d.members)
        .collect();
    let mark = first_mark();
    list.values()
        .filter(|r| r.program_id == PROGRAM_ID && r.aux_data == mark && r.extent() == first)
        .filter(|r| !named.contains(&r.id))
        .map(|r| r.id)
        .collect()
}

/// Delete `ids` (from [`strays`]), with the engine's confirmed delete.
pub fn delete_strays<D: Device>(dev: &mut D, ids: &[RegionId]) -> Result<Deleted, MapError> {
    // An engine that has loaded no group: it only deletes, and lists every
    // program's regions to confirm an ENOENT.
    let mut engine = Engine::new(dev, 0);
    let mut done = Deleted::default();
    for &id in ids {
        engine.delete(id)?;
        done.regions += 1;
        done.warnings.push(Warning::FirstRegionDeleted(id));
    }
    done.messages = engine.messages();
    Ok(done)
}

/// Delete group `group_id` with the engine's removal, one step per fresh
/// list (see the module's comment), settling first what a stopped `map`,
/// `unmap` or daemon left outside it. A failure leaves the group
/// consistent, smaller, for a second `unmap` to finish.
pub fn delete_group<D: Device>(dev: &mut D, group_id: RegionId) -> Result<Deleted, MapError> {
    let mut engine = Engine::new(dev, group_id);
    let mut done = Deleted::default();
    loop {
        let step = engine.remove_step();
        done.warnings.extend(engine.take_warnings());
        let (summary, gone) = step?;
        done.regions += summary.deleted;
        if gone {
            done.messages = engine.messages();
            return Ok(done);
        }
    }
}
