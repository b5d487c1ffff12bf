//! A pure view of the group: one `@stats_list`, read as the filemap group
//! led by an id, its members, the ids its descriptor names that no longer
//! exist, and descriptors elsewhere that claim its members.
//!
//! Owns: [`Group`], [`read_group`], [`claims`]. Touches: no device, no
//! state; everything here is a function of one list.

use std::collections::BTreeMap;

use crate::dmstats::{self, Descriptor, DescriptorError, Region, RegionId, Text};
use crate::extent::Extent;
use crate::plan::diff::{self, Member};

/// One `@stats_list` by id; should a reply repeat an id, the first line counts.
pub(crate) type List = BTreeMap<RegionId, Region>;

/// The group as read from one `@stats_list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The leader: the lowest member id, holding the descriptor.
    pub leader: Region,
    pub descriptor: Descriptor,
    /// Existing regions the descriptor names, ascending (leader first).
    pub members: Vec<Region>,
    /// Ids the descriptor names that do not exist (someone deleted them):
    /// the next update drops them from the descriptor.
    pub missing: Vec<RegionId>,
}

impl Group {
    pub fn id(&self) -> RegionId {
        self.leader.id
    }

    /// Whether `id` is one of the existing members.
    pub fn has(&self, id: RegionId) -> bool {
        self.members.binary_search_by_key(&id, |m| m.id).is_ok()
    }

    /// Whether the members tile `extents` already: the diff has nothing to
    /// do. What the daemon's check and `unmap`'s search for a file's group
    /// both ask.
    pub fn tiles(&self, extents: &[Extent]) -> bool {
        let members: Vec<Member> = self.members.iter().map(Member::of).collect();
        diff::diff(&members, extents).is_noop()
    }
}

/// Why an id leads no group.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAGroup {
    #[error("no such region")]
    NoRegion,
    #[error("its descriptor is led by region {0:?}")]
    LedElsewhere(Option<RegionId>),
    #[error("it holds no group descriptor")]
    NoDescriptor,
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
}

/// A list by id; should a reply repeat an id, the first line counts.
pub fn by_id(regions: Vec<Region>) -> List {
    let mut by_id = BTreeMap::new();
    for r in regions {
        by_id.entry(r.id).or_insert(r);
    }
    by_id
}

/// The group led by `id` in a list, or why there is none.
pub(crate) fn read_group(id: RegionId, list: &List) -> Result<Group, NotAGroup> {
    let leader = list.get(&id).ok_or(NotAGroup::NoRegion)?.clone();
    let descriptor = match Descriptor::parse(&leader.aux_data)? {
        Some(d) if d.leader() == Some(id) => d,
        Some(d) => return Err(NotAGroup::LedElsewhere(d.leader())),
        None => return Err(NotAGroup::NoDescriptor),
    };
    let (mut members, mut missing) = (Vec::new(), Vec::new());
    for &m in &descriptor.members {
        match list.get(&m) {
            Some(r) => members.push(r.clone()),
            None => missing.push(m),
        }
    }
    Ok(Group {
        leader,
        descriptor,
        members,
        missing,
    })
}

/// Descriptors that name one of the group's members but sit on a region
/// of the same program outside the group: left by a rival updater that
/// moved the leader. (A member holding one is our own stale old leader,
/// which the next update strips; other programs' aux data is not ours to
/// weigh.)
pub(crate) fn claims(list: &List, group: &Group) -> Vec<(RegionId, Text)> {
    list.values()
        .filter(|r| !group.has(r.id) && r.program_id == group.leader.program_id)
        .filter(|r| match leading(r) {
            Some(d) => d.members.iter().any(|&m| group.has(m)),
            None => false,
        })
        .map(|r| (r.id, r.aux_data.clone()))
        .collect()
}

/// The descriptor a region holds as a leader (one naming itself first).
pub fn leading(r: &Region) -> Option<Descriptor> {
    if !r.aux_data.contains(dmstats::TAG) {
        return None;
    }
    match Descriptor::parse(&r.aux_data) {
        Ok(Some(d)) if d.leader() == Some(r.id) => Some(d),
        _ => None,
    }
}

/// A member holding a descriptor that names itself: an old leader.
pub(crate) fn names_itself(r: &Region) -> bool {
    aux_names_itself(r.id, &r.aux_data)
}

/// A descriptor led by the region holding it: what a leader has, and what
/// an old leader must not keep.
pub(crate) fn aux_names_itself(id: RegionId, aux: &[u8]) -> bool {
    matches!(Descriptor::parse(aux), Ok(Some(d)) if d.leader() == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmstats::parse_list;

    fn list(text: &str) -> List {
        by_id(parse_list(text).0)
    }

    #[test]
    fn groups_read_from_a_list() {
        let l = list(
            "0: 0+8 8 dmstats DMS_GROUP=h:0,2#-\n1: 8+8 8 dmstats DMS_GROUP=f:1-3,6#-\n\
             2: 16+8 8 dmstats -\n3: 24+8 8 dmstats -\n4: 32+8 8 dmstats DMS_GROUP=g:1#-\n\
             5: 40+8 8 other DMS_GROUP=o:5,1#-\n",
        );
        let g = read_group(1, &l).unwrap();
        assert_eq!(g.id(), 1);
        let ids: Vec<RegionId> = g.members.iter().map(|m| m.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(g.missing, [6]);
        // 0 leads and names member 2; 4 names a member but is led by 1;
        // 5 is another program's.
        assert_eq!(claims(&l, &g), [(0, Text::from("DMS_GROUP=h:0,2#-"))]);
        let cases: &[(RegionId, NotAGroup)] = &[
            (9, NotAGroup::NoRegion),
            (2, NotAGroup::NoDescriptor),
            (4, NotAGroup::LedElsewhere(Some(1))),
        ];
        for (id, want) in cases {
            assert_eq!(read_group(*id, &l).unwrap_err(), *want, "{id}");
        }
        assert!(matches!(
            read_group(0, &list("0: 0+8 8 dmstats DMS_GROUP=x#-\n")),
            Err(NotAGroup::Descriptor(_))
        ));
        assert!(names_itself(&l[&0]) && !names_itself(&l[&4]));
    }
}
