//! Marks: what our regions carry in their aux data so that a daemon started
//! after a killed one can tell which regions outside the group are this
//! group's, and what it may then conclude ([`settle`]).
//!
//! An update keeps at most one batch of regions (the apply order's step,
//! `BATCH`) outside the group at any instant: those it created since the
//! last descriptor write, or those it dropped from the descriptor and has
//! not deleted yet. A SIGKILL there strands them. Nothing in dm-stats ties
//! them to the group (a region made by hand over the same blocks looks the
//! same), so each carries the proof:
//!
//! - [`Mark::Made`]: every region we create carries, as its aux data from
//!   the `@stats_create` itself (no extra message), the fingerprint of the
//!   descriptor that stood when it was made. While that descriptor still
//!   stands, a region outside it with that mark was made by its updater
//!   for the next write: the next daemon adopts it.
//! - [`Mark::Dropped`]: before a batch leaves the descriptor, one region of
//!   it (the carrier, deleted last) gets the list of the batch (id and
//!   extent of each) and the fingerprint of the descriptor about to be
//!   written. While that descriptor stands, the batch was dropped by its
//!   updater: the next daemon deletes what is left of it.
//! - Copies of the descriptor, on the old leader between the write that
//!   moved the descriptor off it and the next message (its list, or its
//!   strip). A region holding a descriptor with the group's alias, user
//!   data and dialect is such a copy: outside the group and naming one of
//!   its members, it is the old one, deleted with the extra regions it names; on a
//!   member, it is the new one (the daemon was given the old leader's id),
//!   and the extra regions it names are adopted.
//!
//! A fingerprint ties a mark to one descriptor text (alias, every member
//! id, user data), which the next update of the group replaces, so an old
//! mark proves nothing; a region made by hand has no mark. Marks start with
//! `-`, which libdm reads as empty aux data (both lvm2 dialects): `dmstats
//! list` and `report` show our regions as they show `dmstats`' own.
//!
//! Owns: [`Mark`], [`fingerprint`], [`settle`] and [`Settlement`]. Touches:
//! no device, no state; a function of one list.

use std::collections::BTreeSet;

use crate::dmstats::{self, Region, RegionId, Text};
use crate::extent::Extent;
use crate::plan::group::{self, Group, List};

const MADE: &str = "-dmfilemapd:made:";
const DROPPED: &str = "-dmfilemapd:dropped:";

/// FNV-1a, 64 bits: a stable fingerprint of a descriptor text (no
/// adversary: it only has to tell one descriptor of a group from the next).
pub fn fingerprint(text: impl AsRef<[u8]>) -> u64 {
    text.as_ref().iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Made while the descriptor of this fingerprint stood.
    Made { under: u64 },
    /// These regions leave the group with the descriptor of this fingerprint.
    Dropped {
        under: u64,
        regions: Vec<(RegionId, Extent)>,
    },
}

impl Mark {
    /// The aux data text: one token, no space, starting with `-`.
    pub fn format(&self) -> Text {
        match self {
            Mark::Made { under } => format!("{MADE}{under:016x}").into(),
            Mark::Dropped { under, regions } => {
                let list: Vec<String> = regions
                    .iter()
                    .map(|(id, e)| format!("{id}@{}+{}", e.start, e.len))
                    .collect();
                format!("{DROPPED}{under:016x}:{}", list.join(",")).into()
            }
        }
    }

    /// `None` for aux data that is not one of our marks (ASCII, so
    /// never aux data that is not UTF-8).
    pub fn parse(aux: impl AsRef<[u8]>) -> Option<Mark> {
        let aux = std::str::from_utf8(aux.as_ref()).ok()?;
        if let Some(hex) = aux.strip_prefix(MADE) {
            return Some(Mark::Made { under: hex16(hex)? });
        }
        let (hex, list) = aux.strip_prefix(DROPPED)?.split_once(':')?;
        let regions = list
            .split(',')
            .map(|item| {
                let (id, extent) = item.split_once('@')?;
                let (start, len) = extent.split_once('+')?;
                let extent = Extent {
                    start: dmstats::number(start)?,
                    len: dmstats::number(len)?,
                };
                Some((dmstats::number(id)?, extent))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Mark::Dropped {
            under: hex16(hex)?,
            regions,
        })
    }
}

/// The mark of a new group's first region: made before any descriptor
/// stood, so under the fingerprint of none.
pub fn first_mark() -> Text {
    Mark::Made {
        under: fingerprint(""),
    }
    .format()
}

fn hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// What a daemon starting on a group does about regions a stopped updater
/// left outside it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settlement {
    /// Made for the descriptor that still stands: the update names them
    /// (or deletes them, as any member, when no extent wants them).
    pub adopt: Vec<Region>,
    /// Dropped from the group, or a stale copy of its descriptor: delete.
    pub delete: Vec<RegionId>,
}

impl Settlement {
    pub(crate) fn is_empty(&self) -> bool {
        self.adopt.is_empty() && self.delete.is_empty()
    }
}

/// What a list proves about the regions outside `group`: only regions of
/// the leader's program that no live descriptor names are weighed, and
/// only a mark or copy of the descriptor tied to the group counts.
pub(crate) fn settle(list: &List, group: &Group) -> Settlement {
    let desc = &group.descriptor;
    let program = &group.leader.program_id;
    let current = fingerprint(&group.leader.aux_data);
    // Another descriptor of this group: same alias, user data, dialect.
    let copy = |r: &Region| {
        group::leading(r)
            .filter(|_| r.id != group.id())
            .filter(|d| (&d.alias, &d.user, d.dialect) == (&desc.alias, &desc.user, desc.dialect))
    };
    // Outside the group and naming a member: the old leader's copy (what
    // the ledger's first look calls an old claim).
    let stale = |r: &Region| {
        copy(r).filter(|d| !group.has(r.id) && d.members.iter().any(|&m| group.has(m)))
    };
    // On a member: this descriptor is the old one, and the member's copy is
    // the one written last, before the old leader was stripped: what it
    // names is this group's too.
    let newer = |r: &Region| copy(r).filter(|_| group.has(r.id));
    let named: BTreeSet<RegionId> = list
        .values()
        .filter(|r| stale(r).is_none() && newer(r).is_none())
        .filter_map(group::leading)
        .flat_map(|d| d.members)
        .collect();
    let outside = |id: RegionId| {
        list.get(&id)
            .filter(|r| &r.program_id == program && !named.contains(&id) && !group.has(id))
    };
    let mut adopt = BTreeSet::new();
    let mut delete = BTreeSet::new();
    for r in list.values() {
        if let Some(d) = newer(r) {
            adopt.extend(d.members.iter().filter(|&&id| outside(id).is_some()));
        }
        if outside(r.id).is_none() {
            continue;
        }
        if let Some(d) = stale(r) {
            delete.insert(r.id);
            delete.extend(d.members.iter().filter(|&&id| outside(id).is_some()));
            continue;
        }
        match Mark::parse(&r.aux_data) {
            Some(Mark::Made { under }) if under == current => {
                adopt.insert(r.id);
            }
            Some(Mark::Dropped { under, regions }) if under == current => {
                delete.insert(r.id);
                delete.extend(
                    regions
                        .iter()
                        .filter(|(id, e)| outside(*id).is_some_and(|x| x.extent() == *e))
                        .map(|(id, _)| id),
                );
            }
            _ => {}
        }
    }
    Settlement {
        adopt: adopt
            .difference(&delete)
            .filter_map(|id| list.get(id).cloned())
            .collect(),
        delete: delete.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmstats::parse_list;
    use crate::plan::group::{by_id, read_group};

    #[test]
    fn marks_round_trip_and_read_as_empty_to_libdm() {
        let e = |start, len| Extent { start, len };
        for m in [
            Mark::Made { under: 0 },
            Mark::Made { under: u64::MAX },
            Mark::Dropped {
                under: 0x0123_4567_89ab_cdef,
                regions: vec![(3, e(8, 8)), (40, e(1 << 40, 2048))],
            },
        ] {
            let text = m.format();
            assert!(text.starts_with(b"-") && !text.contains(" ") && !text.contains(dmstats::TAG));
            assert_eq!(Mark::parse(&text), Some(m), "{text}");
        }
        for junk in [
            "-",
            "-dmfilemapd:made:123",
            "-dmfilemapd:made:0123456789abcdeg",
            "-dmfilemapd:dropped:0123456789abcdef",
            "-dmfilemapd:dropped:0123456789abcdef:",
            "-dmfilemapd:dropped:0123456789abcdef:1@2",
            "-dmfilemapd:dropped:0123456789abcdef:1@2+3,",
            "dmfilemapd:made:0123456789abcdef",
        ] {
            assert_eq!(Mark::parse(junk), None, "{junk}");
        }
        assert_ne!(
            fingerprint("DMS_GROUP=f:1-2#-"),
            fingerprint("DMS_GROUP=f:1-3#-")
        );
    }

    /// Group 1 of regions 1-2 and what lies outside it (a line for region
    /// 2 replaces its plain one).
    fn settled(outside: &str) -> Settlement {
        let leader = "DMS_GROUP=f:1-2#u";
        let fp = fingerprint(leader);
        let two = if outside.starts_with("2: ") {
            ""
        } else {
            "2: 16+8 8 dmstats -\n"
        };
        let text = format!("1: 8+8 8 dmstats {leader}\n{two}{outside}")
            .replace("FP", &format!("{fp:016x}"));
        let list = by_id(parse_list(&text).0);
        settle(&list, &read_group(1, &list).unwrap())
    }

    #[test]
    fn what_a_successor_may_conclude() {
        // (regions outside the group, adopted, deleted)
        let cases: &[(&str, &[RegionId], &[RegionId])] = &[
            // Made under the standing descriptor: adopted.
            ("3: 24+8 8 dmstats -dmfilemapd:made:FP\n", &[3], &[]),
            // Made under another one, or by hand, or by another program: not ours.
            (
                "3: 24+8 8 dmstats -dmfilemapd:made:0000000000000001\n",
                &[],
                &[],
            ),
            ("3: 24+8 8 dmstats -\n", &[], &[]),
            ("3: 24+8 8 other -dmfilemapd:made:FP\n", &[], &[]),
            // A dropped batch: the carrier and what still matches its list.
            (
                "3: 24+8 8 dmstats -\n4: 32+8 8 dmstats -\n5: 40+8 8 dmstats \
                 -dmfilemapd:dropped:FP:3@24+8,4@99+8,5@40+8,6@48+8\n",
                &[],
                &[3, 5],
            ),
            // Under another descriptor: it proves nothing.
            (
                "3: 24+8 8 dmstats -dmfilemapd:dropped:0000000000000001:3@24+8\n",
                &[],
                &[],
            ),
            // Listed, but named by another group now: not deleted.
            (
                "0: 0+8 8 dmstats DMS_GROUP=g:0,3#-\n3: 24+8 8 dmstats -\n\
                 5: 40+8 8 dmstats -dmfilemapd:dropped:FP:3@24+8,5@40+8\n",
                &[],
                &[5],
            ),
            // A stale copy on the old leader: it and its extra members go.
            (
                "0: 0+8 8 dmstats DMS_GROUP=f:0-2,4#u\n4: 32+8 8 dmstats -\n",
                &[],
                &[0, 4],
            ),
            // The member 2 holds the copy written last: what it names is ours.
            (
                "2: 16+8 8 dmstats DMS_GROUP=f:2-4,6#u\n3: 24+8 8 dmstats -\n\
                 4: 32+8 8 other -\n",
                &[3],
                &[],
            ),
            (
                "0: 0+8 8 dmstats DMS_GROUP=f:0,2,4#u\n4: 32+8 8 dmstats -\n",
                &[],
                &[0, 4],
            ),
            // Another alias or user data, or no member named: not a copy.
            ("0: 0+8 8 dmstats DMS_GROUP=g:0-2#u\n", &[], &[]),
            ("0: 0+8 8 dmstats DMS_GROUP=f:0-2#v\n", &[], &[]),
            (
                "0: 0+8 8 dmstats DMS_GROUP=f:0,3#u\n3: 24+8 8 dmstats -\n",
                &[],
                &[],
            ),
        ];
        for (outside, adopt, delete) in cases {
            let s = settled(outside);
            let ids: Vec<RegionId> = s.adopt.iter().map(|r| r.id).collect();
            assert_eq!((&ids[..], &s.delete[..]), (*adopt, *delete), "{outside}");
        }
    }
}
