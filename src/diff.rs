//! Diff: from the regions a group has to the extents the file has, a plan.
//! Pure, so it is fuzzed: applying the plan to the members yields exactly
//! the extents, and a region equal to an extent is kept (its counters survive).
//!
//! Owns: [`Plan`] and [`diff`]. Touches: nothing but its arguments.

use std::cmp::Ordering;

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

/// Match members against extents as multisets keyed by `(start, len)`.
///
/// Both sides are sorted by extent and walked once, so the cost is
/// O((n+m) log(n+m)) where C compares every pair. Among members with the
/// same extent the lowest id is kept: it is the oldest, and keeping the
/// lowest ids keeps the leader where it is whenever possible. When the file
/// holds the same extent twice (it cannot, but the plan must not care), each
/// copy is matched by its own member.
pub fn diff(members: &[Member], extents: &[Extent]) -> Plan {
    let mut by_extent: Vec<&Member> = members.iter().collect();
    by_extent.sort_unstable_by_key(|m| (m.extent, m.id));
    // Indices keep the file order recoverable for `create`.
    let mut wanted: Vec<usize> = (0..extents.len()).collect();
    wanted.sort_unstable_by_key(|&i| (extents[i], i));

    let mut plan = Plan::default();
    let mut missing = Vec::new();
    let (mut m, mut e) = (0, 0);
    while m < by_extent.len() || e < wanted.len() {
        let order = match (by_extent.get(m), wanted.get(e)) {
            (Some(mem), Some(&i)) => mem.extent.cmp(&extents[i]),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        match order {
            Ordering::Equal => {
                plan.keep.push(by_extent[m].id);
                m += 1;
                e += 1;
            }
            Ordering::Less => {
                plan.delete.push(by_extent[m].id);
                m += 1;
            }
            Ordering::Greater => {
                missing.push(wanted[e]);
                e += 1;
            }
        }
    }
    missing.sort_unstable();
    plan.create = missing.into_iter().map(|i| extents[i]).collect();
    plan.keep.sort_unstable();
    plan.delete.sort_unstable();
    plan
}

/// Every property the engine relies on, checked for one input; shared by
/// the unit tests and the `extent_diff` fuzz target. Panics on a violation.
#[cfg(feature = "testkit")]
pub fn check_diff(members: &[Member], extents: &[Extent]) -> Plan {
    let plan = diff(members, extents);
    let extent_of = |id: RegionId| {
        let member = members.iter().find(|m| m.id == id);
        member
            .unwrap_or_else(|| panic!("plan names {id}, not a member"))
            .extent
    };

    // keep and delete partition the members.
    let mut seen: Vec<RegionId> = plan.keep.iter().chain(&plan.delete).copied().collect();
    seen.sort_unstable();
    let mut ids: Vec<RegionId> = members.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    assert_eq!(seen, ids, "keep + delete must be exactly the members");
    assert!(plan.keep.windows(2).all(|w| w[0] < w[1]));
    assert!(plan.delete.windows(2).all(|w| w[0] < w[1]));

    // Applying the plan yields exactly the extents, as a multiset.
    let mut after: Vec<Extent> = plan.keep.iter().map(|&id| extent_of(id)).collect();
    after.extend(&plan.create);
    after.sort_unstable();
    let mut want = extents.to_vec();
    want.sort_unstable();
    assert_eq!(after, want, "plan must yield the extents");

    // A member equal to an extent survives, as long as the extent has
    // not already been claimed by an equal member with a lower id.
    for &id in &plan.delete {
        let e = extent_of(id);
        let wanted = extents.iter().filter(|&&x| x == e).count();
        let kept = plan.keep.iter().filter(|&&k| extent_of(k) == e).count();
        assert_eq!(
            kept, wanted,
            "member {id} deleted though its extent is wanted"
        );
        assert!(plan.keep.iter().all(|&k| extent_of(k) != e || k < id));
    }

    // create keeps file order.
    let mut pos = 0;
    for c in &plan.create {
        let at = extents[pos..].iter().position(|x| x == c);
        pos += at.unwrap_or_else(|| panic!("create out of file order at {c:?}")) + 1;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ext, Rng};

    fn mem(id: RegionId, start: u64, len: u64) -> Member {
        Member {
            id,
            extent: ext(start, len),
        }
    }

    #[test]
    fn empty_sides() {
        assert_eq!(check_diff(&[], &[]), Plan::default());
        let p = check_diff(&[], &[ext(8, 8), ext(0, 8)]);
        assert_eq!(p.create, vec![ext(8, 8), ext(0, 8)]);
        let p = check_diff(&[mem(3, 0, 8), mem(1, 8, 8)], &[]);
        assert_eq!(p.delete, vec![1, 3]);
        assert!(p.keep.is_empty());
    }

    #[test]
    fn identical_is_noop() {
        let ms = [mem(0, 100, 8), mem(1, 0, 8), mem(2, 50, 2)];
        let p = check_diff(&ms, &[ext(100, 8), ext(0, 8), ext(50, 2)]);
        assert!(p.is_noop());
        assert_eq!(p.keep, vec![0, 1, 2]);
    }

    #[test]
    fn growth_shrink_and_move() {
        let ms = [mem(0, 0, 8), mem(1, 16, 8)];
        // The second extent grew: it is a different region now.
        let p = check_diff(&ms, &[ext(0, 8), ext(16, 16)]);
        assert_eq!(
            (p.keep, p.create, p.delete),
            (vec![0], vec![ext(16, 16)], vec![1])
        );
        // First extent freed.
        let p = check_diff(&ms, &[ext(16, 8)]);
        assert_eq!((p.keep, p.delete), (vec![1], vec![0]));
    }

    #[test]
    fn duplicate_members_keep_the_lowest_id() {
        let ms = [mem(7, 0, 8), mem(2, 0, 8), mem(5, 0, 8)];
        let p = check_diff(&ms, &[ext(0, 8)]);
        assert_eq!((p.keep, p.delete), (vec![2], vec![5, 7]));
        // Two equal extents are matched by two members.
        let p = check_diff(&ms, &[ext(0, 8), ext(0, 8)]);
        assert_eq!((p.keep, p.delete), (vec![2, 5], vec![7]));
        let p = check_diff(&[mem(1, 0, 8)], &[ext(0, 8), ext(0, 8)]);
        assert_eq!((p.keep, p.create), (vec![1], vec![ext(0, 8)]));
    }

    #[test]
    fn same_start_different_length_is_not_a_match() {
        let p = check_diff(&[mem(0, 0, 8)], &[ext(0, 9)]);
        assert_eq!((p.create, p.delete), (vec![ext(0, 9)], vec![0]));
    }

    #[test]
    fn pseudo_random_properties() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            // Few distinct extents so that matches and duplicates are common.
            let pool = 1 + rng.below(12);
            let mut ids: Vec<RegionId> = (0..40).collect();
            let n = rng.below(20) as usize;
            let members: Vec<Member> = (0..n)
                .map(|_| {
                    let id = ids.swap_remove(rng.below(ids.len() as u64) as usize);
                    let k = rng.below(pool);
                    mem(id, k * 8, 1 + k % 3)
                })
                .collect();
            let extents: Vec<Extent> = (0..rng.below(20))
                .map(|_| {
                    let k = rng.below(pool);
                    ext(k * 8, 1 + k % 3)
                })
                .collect();
            check_diff(&members, &extents);
        }
    }
}
