//! `dmfilemapd map` and `unmap` on a device: make a filemap group the way
//! `dmstats create --filemap` makes one, find the group of a file, and
//! delete a group. Generic over [`Device`], so tests run on the fake.
//!
//! A new group is what dmstats makes: one region per merged extent in file
//! order, step `/1`, program id `dmstats`, empty aux data, the options on
//! every region, then the descriptor on the lowest id (one
//! `@stats_set_aux`). Until that descriptor is written the regions belong
//! to no group, so any failure (or a stop) before it deletes them again.
//!
//! Deleting keeps the group readable at every step, should the process be
//! killed half-way: members go highest id first, in chunks; after each
//! chunk the descriptor is rewritten to name only the regions still there;
//! the leader goes last. So an interruption leaves a smaller, valid group
//! (the descriptor names at most one chunk of deleted ids, which every
//! reader skips: libdm with a warning, the engine by dropping them), never
//! a region outside any group. Deleting the leader first would strand the
//! members; shrinking the descriptor before deleting would too.

use crate::bounds::Histogram;
use crate::device::{Device, DeviceError};
use crate::diff::{self, Member};
use crate::extent::Extent;
use crate::group::{self, Group, List, NotAGroup};
use crate::stats::{self, AliasError, Descriptor, MessageError, Region, RegionId};

/// The program id dmstats gives the regions of a filemap group.
pub const PROGRAM_ID: &str = "dmstats";

/// Members deleted between two rewrites of the descriptor: bounds what an
/// interruption leaves named but gone, and keeps a large group's delete
/// from costing a descriptor per region.
pub const DELETE_CHUNK: usize = 64;

/// The group `map` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    pub alias: String,
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
    Device { msg: String, source: DeviceError },
    #[error("unexpected reply to {msg:?}: {reply:?}")]
    BadReply { msg: String, reply: String },
    #[error("stopped by a signal")]
    Stopped,
    #[error("region {id} is not a filemap group: {source}")]
    NotAGroup {
        id: RegionId,
        #[source]
        source: NotAGroup,
    },
    /// Cleaning up after `cause` failed too.
    #[error("{cause}; regions {left} could not be deleted")]
    Leftover { cause: Box<MapError>, left: String },
    #[error("{cause}; rewriting the descriptor of group {group} failed too: {repair}")]
    Unrepaired {
        cause: Box<MapError>,
        group: RegionId,
        repair: Box<MapError>,
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
    #[error("groups {} all map the file's extents; name one with --group ID", stats::format_members(.0))]
    Ambiguous(Vec<RegionId>),
}

fn send<D: Device>(dev: &mut D, sent: &mut usize, msg: String) -> Result<String, MapError> {
    *sent += 1;
    dev.message(&msg)
        .map_err(|source| MapError::Device { msg, source })
}

/// Every region on the device, by id (one `@stats_list`).
pub fn list<D: Device>(dev: &mut D) -> Result<List, MapError> {
    list_all(dev, &mut 0)
}

fn list_all<D: Device>(dev: &mut D, sent: &mut usize) -> Result<List, MapError> {
    let reply = send(dev, sent, stats::msg_list(None)?)?;
    Ok(group::by_id(stats::parse_list(&reply).0))
}

/// Make the group of a file whose merged extents are `extents` (in file
/// order). `stop` is polled between creates; a stop deletes what was made.
pub fn create_group<D: Device>(
    dev: &mut D,
    extents: &[Extent],
    spec: &NewGroup,
    stop: &dyn Fn() -> bool,
) -> Result<Created, MapError> {
    if extents.is_empty() {
        return Err(MapError::NoExtents);
    }
    // Refused before anything exists.
    Descriptor::for_new_group(&spec.alias, vec![0])?;
    let template = Region {
        id: 0,
        start: 0,
        len: 0,
        step: 0,
        program_id: PROGRAM_ID.to_owned(),
        aux_data: "-".to_owned(),
        precise: spec.histogram.precise,
        histogram: spec.histogram.bounds.clone(),
    };
    let mut sent = 0;
    let mut ids: Vec<RegionId> = Vec::with_capacity(extents.len());
    for &extent in extents {
        let made = if stop() {
            Err(MapError::Stopped)
        } else {
            create(dev, &mut sent, extent, &template)
        };
        match made {
            Ok(id) => ids.push(id),
            Err(e) => return Err(undo(dev, &ids, e)),
        }
    }
    let mut members = ids.clone();
    members.sort_unstable();
    members.dedup();
    let leader = members[0];
    let desc = Descriptor::for_new_group(&spec.alias, members)?;
    let written = stats::msg_set_aux(leader, &desc.format())
        .map_err(MapError::from)
        .and_then(|msg| send(dev, &mut sent, msg));
    if let Err(e) = written {
        return Err(undo(dev, &ids, e));
    }
    Ok(Created {
        group_id: leader,
        regions: ids.len(),
    })
}

fn create<D: Device>(
    dev: &mut D,
    sent: &mut usize,
    extent: Extent,
    template: &Region,
) -> Result<RegionId, MapError> {
    let msg = stats::msg_create(extent, template)?;
    let reply = send(dev, sent, msg.clone())?;
    stats::parse_create_reply(&reply).ok_or(MapError::BadReply { msg, reply })
}

/// Delete the regions made so far (in no group yet), newest first.
fn undo<D: Device>(dev: &mut D, ids: &[RegionId], cause: MapError) -> MapError {
    let mut sent = 0;
    let left: Vec<RegionId> = ids
        .iter()
        .rev()
        .copied()
        .filter(|&id| delete(dev, &mut sent, id).is_err())
        .collect();
    if left.is_empty() {
        return cause;
    }
    let mut left = left;
    left.sort_unstable();
    MapError::Leftover {
        cause: Box::new(cause),
        left: stats::format_members(&left),
    }
}

/// `@stats_delete`; ENOENT is believed only once a list confirms it.
fn delete<D: Device>(dev: &mut D, sent: &mut usize, id: RegionId) -> Result<(), MapError> {
    match send(dev, sent, stats::msg_delete(id)) {
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
        .filter(|g| {
            let members: Vec<Member> = g
                .members
                .iter()
                .map(|r| Member {
                    id: r.id,
                    extent: r.extent(),
                })
                .collect();
            diff::diff(&members, extents).is_noop()
        })
        .map(|g| g.id())
        .collect();
    match found.as_slice() {
        [] => Err(FindError::NoMatch),
        [one] => Ok(*one),
        _ => Err(FindError::Ambiguous(found)),
    }
}

/// Delete group `group_id`: every member and its descriptor, in the order
/// of the module's comment. Each chunk starts from a fresh list, so a
/// member added meanwhile (a daemon re-creating what it saw deleted, before
/// it notices the group is going) is deleted too, and the leader goes right
/// after a list that shows it alone. A failure rewrites the descriptor to
/// name the members still there before it is reported.
pub fn delete_group<D: Device>(dev: &mut D, group_id: RegionId) -> Result<Deleted, MapError> {
    let mut sent = 0;
    let mut deleted = 0;
    let mut template: Option<Descriptor> = None;
    loop {
        let list = match list_all(dev, &mut sent) {
            Ok(list) => list,
            Err(e) => return Err(failed(dev, template.as_ref(), group_id, e)),
        };
        let group = match group::read_group(group_id, &list) {
            Ok(group) => group,
            Err(source) => {
                let e = MapError::NotAGroup {
                    id: group_id,
                    source,
                };
                return Err(match &template {
                    None => e,
                    // Moved to a new leader under us, or deleted by another.
                    Some(t) => failed(dev, Some(t), group_id, e),
                });
            }
        };
        let desc = &group.descriptor;
        template = Some(desc.clone());
        let ids: Vec<RegionId> = group.members.iter().map(|r| r.id).collect();
        let step = if ids.len() == 1 {
            delete(dev, &mut sent, group_id).map(|()| deleted += 1)
        } else {
            let keep = ids.len().saturating_sub(DELETE_CHUNK).max(1);
            ids[keep..]
                .iter()
                .rev()
                .try_for_each(|&id| delete(dev, &mut sent, id).map(|()| deleted += 1))
                .and_then(|()| rewrite(dev, &mut sent, desc, &ids[..keep]))
        };
        match step {
            Ok(()) if ids.len() == 1 => {
                return Ok(Deleted {
                    regions: deleted,
                    messages: sent,
                })
            }
            Ok(()) => {}
            Err(e) => return Err(failed(dev, Some(desc), group_id, e)),
        }
    }
}

fn failed<D: Device>(
    dev: &mut D,
    template: Option<&Descriptor>,
    group_id: RegionId,
    cause: MapError,
) -> MapError {
    match template {
        Some(t) => repair(dev, t, group_id, cause),
        None => cause,
    }
}

/// The descriptor naming `members` (the leader first), alias and user data
/// as they were.
fn rewrite<D: Device>(
    dev: &mut D,
    sent: &mut usize,
    template: &Descriptor,
    members: &[RegionId],
) -> Result<(), MapError> {
    let desc = Descriptor {
        members: members.to_vec(),
        ..template.clone()
    };
    send(dev, sent, stats::msg_set_aux(members[0], &desc.format())?)?;
    Ok(())
}

/// After a failed delete: name exactly the members that still exist.
fn repair<D: Device>(
    dev: &mut D,
    template: &Descriptor,
    group_id: RegionId,
    cause: MapError,
) -> MapError {
    let mut sent = 0;
    let fixed = list_all(dev, &mut sent).and_then(|list| {
        let exists: Vec<RegionId> = template
            .members
            .iter()
            .copied()
            .filter(|m| list.contains_key(m))
            .collect();
        let leader = list.get(&group_id);
        match leader {
            // Gone with the leader: nothing of the group is left to name.
            None => Ok(()),
            Some(l) => {
                let desc = Descriptor {
                    members: exists.clone(),
                    ..template.clone()
                };
                if l.aux_data == desc.format() {
                    Ok(())
                } else {
                    rewrite(dev, &mut sent, template, &exists)
                }
            }
        }
    });
    match fixed {
        Ok(()) => cause,
        Err(repair) => MapError::Unrepaired {
            cause: Box::new(cause),
            group: group_id,
            repair: Box::new(repair),
        },
    }
}
