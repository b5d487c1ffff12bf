//! `dmfilemapd map` and `unmap` on a device: make a filemap group the way
//! `dmstats create --filemap` makes one, find the group of a file, and
//! delete a group. Generic over [`Device`], so tests run on the fake.
//!
//! Both keep the engine's rule for a SIGKILL at any instant (see
//! [`crate::engine`], [`crate::engine::mark`]): at most [`BATCH`] regions of ours
//! outside the group, no descriptor naming a missing region, and what a
//! kill leaves is settled by the next `unmap` of the group or daemon on it.
//!
//! A new group is what dmstats makes: one region per merged extent in file
//! order, step `/1`, program id `dmstats`, the options on every region, the
//! descriptor on the lowest id. It grows as the engine grows a group: the
//! first region, then its descriptor (a group of one), then steps of up to
//! [`BATCH`] creates each followed by one descriptor write naming them
//! (N + 1 + N/32 messages for N extents). Each region carries, from its
//! `@stats_create`, the mark of the descriptor standing when it was made
//! (`-dmfilemapd:made:<fingerprint>`), which libdm reads as empty aux data
//! as it reads dmstats' `-`: so a kill mid-step leaves regions the next
//! unmap or daemon adopts, and a region made by hand is never taken for
//! one. The first region's mark is that of no descriptor (`fingerprint("")`):
//! a kill before the first descriptor write leaves it alone, outside any
//! group, and recognisable. A failure or a stop deletes the part made.
//!
//! Deleting is the engine's own removal ([`Engine::remove_step`]): from a
//! fresh list each step, one batch of members leaves the descriptor (its
//! list on a carrier region first) and is deleted; the leader goes last,
//! right after a list that shows it alone. Looking before each step
//! deletes members a daemon following the group re-creates meanwhile.

use crate::dmstats::bounds::Histogram;
use crate::dmstats::{self, AliasError, Descriptor, MessageError, Region, RegionId, Text};
use crate::dmstats::{Device, DeviceError};
use crate::engine::mark::{fingerprint, Mark, BATCH};
use crate::engine::{Engine, EngineError};
use crate::extent::Extent;
use crate::plan::group::{self, Group, List, NotAGroup};

/// The program id dmstats gives the regions of a filemap group.
pub(crate) const PROGRAM_ID: &str = "dmstats";

/// The group `map` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    /// Bytes: a file name need not be UTF-8.
    pub alias: Text,
    pub histogram: Histogram,
}

/// What `map` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub group_id: RegionId,
    pub regions: usize,
}

/// What `unmap` deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub regions: usize,
    pub messages: usize,
    /// What the engine worked around (regions a stopped `map`, `unmap` or
    /// daemon left, members someone else deleted), one line each.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("the file has no extents to map")]
    NoExtents,
    #[error(transparent)]
    Alias(#[from] AliasError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("{msg}: {source}")]
    Device { msg: Text, source: DeviceError },
    #[error("unexpected reply to {msg:?}: {reply:?}")]
    BadReply { msg: Text, reply: Text },
    #[error("stopped by a signal")]
    Stopped,
    #[error("region {id} is not a filemap group: {source}")]
    NotAGroup {
        id: RegionId,
        #[source]
        source: NotAGroup,
    },
    /// Deleting a group failed part way; the engine left it consistent
    /// (or says why not).
    #[error(transparent)]
    Engine(EngineError),
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

impl From<EngineError> for MapError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotAGroup { id, reason } => MapError::NotAGroup { id, source: reason },
            e => MapError::Engine(e),
        }
    }
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

fn send<D: Device>(dev: &mut D, sent: &mut usize, msg: Text) -> Result<Text, MapError> {
    *sent += 1;
    dev.message(&msg)
        .map_err(|source| MapError::Device { msg, source })
}

/// Every region on the device, by id (one `@stats_list`).
pub fn list<D: Device>(dev: &mut D) -> Result<List, MapError> {
    list_all(dev, &mut 0)
}

fn list_all<D: Device>(dev: &mut D, sent: &mut usize) -> Result<List, MapError> {
    let reply = send(dev, sent, dmstats::msg_list(None)?)?;
    Ok(group::by_id(dmstats::parse_list(&reply).0))
}

/// The mark of `map`'s first region, made before any descriptor stood.
pub fn first_mark() -> Text {
    Mark::Made {
        under: fingerprint(""),
    }
    .format()
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
    let Some((&first, rest)) = extents.split_first() else {
        return Err(MapError::NoExtents);
    };
    // Refused before anything exists.
    Descriptor::for_new_group(&spec.alias, vec![0])?;
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
    let mut sent = 0;
    if stop() {
        return Err(MapError::Stopped);
    }
    let leader = create(dev, &mut sent, first, &template, &first_mark())?;
    let mut members = vec![leader];
    let mut standing = match publish(dev, &mut sent, &spec.alias, &members) {
        Ok(text) => text,
        Err(e) => return Err(undo(dev, leader, e)),
    };
    for step in rest.chunks(BATCH) {
        let mark = Mark::Made {
            under: fingerprint(&standing),
        }
        .format();
        let old_leader = members[0];
        for &extent in step {
            let made = if stop() {
                Err(MapError::Stopped)
            } else {
                create(dev, &mut sent, extent, &template, &mark)
            };
            match made {
                Ok(id) => members.push(id),
                // What this step made carries the standing descriptor's
                // mark: the removal adopts it with the group.
                Err(e) => return Err(abandon(dev, old_leader, e)),
            }
        }
        members.sort_unstable();
        members.dedup();
        standing = match publish(dev, &mut sent, &spec.alias, &members) {
            Ok(text) => text,
            Err(e) => return Err(abandon(dev, old_leader, e)),
        };
        // A lower id came free (another program deleted a region): the
        // descriptor moved down, and the old leader becomes a plain member
        // as dmstats' are.
        if members[0] != old_leader {
            let stripped = dmstats::msg_set_aux(old_leader, "-")
                .map_err(MapError::from)
                .and_then(|msg| send(dev, &mut sent, msg));
            if let Err(e) = stripped {
                return Err(abandon(dev, members[0], e));
            }
        }
    }
    Ok(Created {
        group_id: members[0],
        regions: extents.len(),
    })
}

fn create<D: Device>(
    dev: &mut D,
    sent: &mut usize,
    extent: Extent,
    template: &Region,
    mark: &[u8],
) -> Result<RegionId, MapError> {
    let msg = dmstats::msg_create(extent, template, mark)?;
    let reply = send(dev, sent, msg.clone())?;
    dmstats::parse_create_reply(&reply).ok_or(MapError::BadReply { msg, reply })
}

/// The descriptor of a new group naming `members` (sorted), on the lowest.
/// Returns its text.
fn publish<D: Device>(
    dev: &mut D,
    sent: &mut usize,
    alias: &[u8],
    members: &[RegionId],
) -> Result<Text, MapError> {
    let text = Descriptor::for_new_group(alias, members.to_vec())?.format();
    send(dev, sent, dmstats::msg_set_aux(members[0], &text)?)?;
    Ok(text)
}

/// Delete the first region, made before any descriptor.
fn undo<D: Device>(dev: &mut D, id: RegionId, cause: MapError) -> MapError {
    match delete(dev, &mut 0, id) {
        Ok(()) => cause,
        Err(_) => MapError::Leftover {
            cause: Box::new(cause),
            left: id.to_string(),
        },
    }
}

/// Delete the part of the group made so far, with what its last step made.
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

/// `@stats_delete`; ENOENT is believed only once a list confirms it.
fn delete<D: Device>(dev: &mut D, sent: &mut usize, id: RegionId) -> Result<(), MapError> {
    match send(dev, sent, dmstats::msg_delete(id)) {
        Err(MapError::Device {
            source: DeviceError::Os(rustix::io::Errno::NOENT),
            ..
        }) if !list_all(dev, sent)?.contains_key(&id) => Ok(()),
        other => other.map(drop),
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

/// Delete `ids` (from [`strays`]).
pub fn delete_strays<D: Device>(dev: &mut D, ids: &[RegionId]) -> Result<Deleted, MapError> {
    let mut done = Deleted::default();
    for &id in ids {
        delete(dev, &mut done.messages, id)?;
        done.regions += 1;
        done.warnings.push(format!(
            "region {id} was left by a `map` stopped before its group's first descriptor: deleted"
        ));
    }
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
