//! Diff: from the regions a group has to the extents the file has, a plan.
//! Pure, so it is fuzzed: applying the plan to the members yields exactly
//! the extents, and a region equal to an extent is kept (its counters survive).

use crate::extent::Extent;
use crate::stats::RegionId;

/// A region of the group, reduced to what the diff needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub id: RegionId,
    pub extent: Extent,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Members whose extent is still an extent of the file; ascending.
    pub keep: Vec<RegionId>,
    /// Extents no member covers, in file order.
    pub create: Vec<Extent>,
    /// Members no extent matches (and duplicates); ascending.
    pub delete: Vec<RegionId>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// TODO(helper D): O((n+m) log(n+m)) multiset match of members against extents.
pub fn diff(members: &[Member], extents: &[Extent]) -> Plan {
    let _ = (members, extents);
    todo!()
}
