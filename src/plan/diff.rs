//! Diff: from the regions a group has to the extents the file has, a plan.
//!
//! A dm-stats region cannot be resized, and deleting one loses its
//! counters. So the group is not one region per extent but a *tiling*: a
//! region wholly inside one of the file's extents is kept whatever its
//! length, and only the parts of extents no kept region covers get new
//! regions. An extent that grows gains a region for its new part; one that
//! shrinks loses only the regions past its new end and the one crossing it.
//!
//! The invariant the plan establishes (`check_tiling`, feature `testkit`): the kept and
//! created regions are pairwise disjoint, each lies inside one extent, and
//! their union is the union of the extents. Pure, so it is fuzzed.
//!
//! Owns: [`Plan`], [`diff`] and [`disjoint`]. Touches: nothing but its arguments.

use std::collections::BTreeMap;

use crate::dmstats::{Region, RegionId};
use crate::extent::Extent;

/// A region of the group, reduced to what the diff needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub id: RegionId,
    pub extent: Extent,
}

impl Member {
    pub fn of(r: &Region) -> Member {
        Member {
            id: r.id,
            extent: r.extent(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Members that stay tiles of the file; ascending.
    pub keep: Vec<RegionId>,
    /// The parts of extents no kept member covers, in file order (by
    /// extent, then by sector within it); each is a maximal uncovered run.
    pub create: Vec<Extent>,
    /// Members no longer inside one extent, or overlapping a kept member
    /// with a lower id; ascending.
    pub delete: Vec<RegionId>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }

    /// Regions the group holds once the plan is carried out.
    pub fn tiles(&self) -> usize {
        self.keep.len() + self.create.len()
    }
}

/// The extents as disjoint, non-empty runs sorted by start, each with the
/// index of the extent it came from. [`merge`](crate::extent::merge) never
/// yields overlaps; should a caller pass some, a sector is counted in the
/// first extent (by start, then by file order) that holds it.
pub(crate) fn disjoint(extents: &[Extent]) -> Vec<(Extent, usize)> {
    let mut sorted: Vec<(Extent, usize)> = extents.iter().copied().zip(0..).collect();
    sorted.sort_unstable_by_key(|&(e, i)| (e.start, i));
    let mut out: Vec<(Extent, usize)> = Vec::with_capacity(sorted.len());
    let mut covered = 0u64;
    for (e, i) in sorted {
        let start = e.start.max(covered);
        if e.end() > start {
            out.push((
                Extent {
                    start,
                    len: e.end() - start,
                },
                i,
            ));
            covered = e.end();
        }
    }
    out
}

/// The extent of `runs` (disjoint, sorted) that wholly holds `x`.
fn holder(runs: &[(Extent, usize)], x: Extent) -> Option<usize> {
    let at = runs
        .partition_point(|(e, _)| e.start <= x.start)
        .checked_sub(1)?;
    (x.len > 0 && x.end() <= runs[at].0.end()).then_some(at)
}

/// Plan the group's regions onto the file's extents.
///
/// Members are weighed in ascending id order (the oldest first, so the
/// leader and the longest-lived counters win): one is kept when it lies
/// wholly inside one extent and overlaps no member already kept. The
/// uncovered rest of each extent is created, one region per gap. Members
/// sorted by id, extents by start, and the kept runs in a `BTreeMap`:
/// O((n+m) log(n+m)). A repeated id is weighed once.
pub fn diff(members: &[Member], extents: &[Extent]) -> Plan {
    let runs = disjoint(extents);
    let mut by_id: Vec<&Member> = members.iter().collect();
    by_id.sort_unstable_by_key(|m| (m.id, m.extent));
    by_id.dedup_by_key(|m| m.id);

    let mut plan = Plan::default();
    // Kept runs, start -> end.
    let mut kept = BTreeMap::<u64, u64>::new();
    for m in by_id {
        let x = m.extent;
        let free = holder(&runs, x).is_some()
            && kept
                .range(..x.end())
                .next_back()
                .is_none_or(|(_, &end)| end <= x.start);
        if free {
            kept.insert(x.start, x.end());
            plan.keep.push(m.id);
        } else {
            plan.delete.push(m.id);
        }
    }

    // The gaps, extent by extent; each kept run lies inside one extent.
    let mut gaps: Vec<(usize, Extent)> = Vec::new();
    for &(e, file_index) in &runs {
        let mut cursor = e.start;
        for (&start, &end) in kept.range(e.start..e.end()) {
            if start > cursor {
                gaps.push((file_index, ext_between(cursor, start)));
            }
            cursor = end;
        }
        if e.end() > cursor {
            gaps.push((file_index, ext_between(cursor, e.end())));
        }
    }
    gaps.sort_unstable_by_key(|&(i, g)| (i, g.start));
    plan.create = gaps.into_iter().map(|(_, g)| g).collect();
    plan
}

fn ext_between(start: u64, end: u64) -> Extent {
    Extent {
        start,
        len: end - start,
    }
}

/// Every property the engine relies on, checked for one input; shared by
/// the unit tests and the `extent_diff` fuzz target. Panics on a violation.
#[cfg(feature = "testkit")]
pub fn check_tiling(members: &[Member], extents: &[Extent]) -> Plan {
    let plan = diff(members, extents);
    let runs = disjoint(extents);
    let extent_of = |id: RegionId| {
        let member = members.iter().find(|m| m.id == id);
        member
            .unwrap_or_else(|| panic!("plan names {id}, not a member"))
            .extent
    };

    // keep and delete partition the members' ids.
    let mut seen: Vec<RegionId> = plan.keep.iter().chain(&plan.delete).copied().collect();
    seen.sort_unstable();
    let mut ids: Vec<RegionId> = members.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(seen, ids, "keep + delete must be exactly the members");
    assert!(plan.keep.windows(2).all(|w| w[0] < w[1]));
    assert!(plan.delete.windows(2).all(|w| w[0] < w[1]));

    // The tiling: disjoint, each inside one extent, union = the extents.
    let mut tiles: Vec<Extent> = plan.keep.iter().map(|&id| extent_of(id)).collect();
    tiles.extend(&plan.create);
    tiles.sort_unstable();
    for t in &tiles {
        assert!(
            holder(&runs, *t).is_some(),
            "tile {t:?} not inside one extent"
        );
    }
    assert!(
        tiles.windows(2).all(|w| w[0].end() <= w[1].start),
        "tiles overlap: {tiles:?}"
    );
    let covered: u128 = tiles.iter().map(|t| u128::from(t.len)).sum();
    let wanted: u128 = runs.iter().map(|(e, _)| u128::from(e.len)).sum();
    assert_eq!(covered, wanted, "tiles do not cover the extents");

    // Nothing deleted that could have stayed: a deleted member is empty,
    // outside every extent, crosses an extent's end, or overlaps a kept
    // member with a lower id.
    for &id in &plan.delete {
        let x = extent_of(id);
        if holder(&runs, x).is_some() {
            let beaten = plan.keep.iter().any(|&k| {
                let y = extent_of(k);
                k < id && y.start < x.end() && x.start < y.end()
            });
            assert!(beaten, "member {id} at {x:?} deleted though it tiles");
        }
    }

    // Created regions are maximal gaps, in file order.
    let index_of = |x: Extent| runs[holder(&runs, x).expect("checked above")].1;
    let order: Vec<(usize, u64)> = plan
        .create
        .iter()
        .map(|&c| (index_of(c), c.start))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "create out of file order"
    );
    for w in plan.create.windows(2) {
        let same = index_of(w[0]) == index_of(w[1]);
        assert!(
            !(same && w[0].end() == w[1].start),
            "gap split in two: {w:?}"
        );
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ext, Rng};

    fn mem(id: RegionId, start: u64, len: u64) -> Member {
        Member {
            id,
            extent: ext(start, len),
        }
    }

    type Case = (
        &'static str,
        Vec<Member>,
        Vec<Extent>,
        (Vec<RegionId>, Vec<Extent>, Vec<RegionId>),
    );

    #[test]
    fn named_cases() {
        let cases: Vec<Case> = vec![
            ("nothing", vec![], vec![], (vec![], vec![], vec![])),
            (
                "a new group: one region per extent, file order",
                vec![],
                vec![ext(80, 8), ext(0, 8)],
                (vec![], vec![ext(80, 8), ext(0, 8)], vec![]),
            ),
            (
                "no extents: every member goes",
                vec![mem(3, 0, 8), mem(1, 8, 8)],
                vec![],
                (vec![], vec![], vec![1, 3]),
            ),
            (
                "a dmstats-made group (one region per merged extent) is kept",
                vec![mem(0, 100, 8), mem(1, 0, 8), mem(2, 50, 2)],
                vec![ext(100, 8), ext(0, 8), ext(50, 2)],
                (vec![0, 1, 2], vec![], vec![]),
            ),
            (
                "growth: the old region stays, the new part gets one",
                vec![mem(0, 0, 8), mem(1, 16, 8)],
                vec![ext(0, 8), ext(16, 24)],
                (vec![0, 1], vec![ext(24, 16)], vec![]),
            ),
            (
                "growth of a tiled extent adds one more tile",
                vec![mem(4, 0, 8), mem(7, 8, 8), mem(9, 16, 8)],
                vec![ext(0, 32)],
                (vec![4, 7, 9], vec![ext(24, 8)], vec![]),
            ),
            (
                "a restarted daemon keeps a tiled group as it finds it",
                vec![mem(4, 0, 8), mem(7, 8, 8), mem(9, 16, 8)],
                vec![ext(0, 24)],
                (vec![4, 7, 9], vec![], vec![]),
            ),
            (
                "shrink: tiles inside what remains stay, the one crossing the end is replaced",
                vec![mem(0, 0, 40), mem(1, 40, 40), mem(2, 80, 20)],
                vec![ext(0, 60)],
                (vec![0], vec![ext(40, 20)], vec![1, 2]),
            ),
            (
                "shrink to a tile boundary creates nothing",
                vec![mem(0, 0, 40), mem(1, 40, 40), mem(2, 80, 20)],
                vec![ext(0, 80)],
                (vec![0, 1], vec![], vec![2]),
            ),
            (
                "shrink at the front",
                vec![mem(0, 0, 40), mem(1, 40, 40)],
                vec![ext(20, 60)],
                (vec![1], vec![ext(20, 20)], vec![0]),
            ),
            (
                "a hole punched mid-tile splits the extent: the tile is replaced",
                vec![mem(0, 0, 64)],
                vec![ext(0, 16), ext(32, 32)],
                (vec![], vec![ext(0, 16), ext(32, 32)], vec![0]),
            ),
            (
                "a hole filled: two extents become one, both tiles stay",
                vec![mem(0, 0, 16), mem(1, 32, 32)],
                vec![ext(0, 64)],
                (vec![0, 1], vec![ext(16, 16)], vec![]),
            ),
            (
                "moved: every region replaced",
                vec![mem(0, 0, 8), mem(1, 8, 8)],
                vec![ext(1000, 16)],
                (vec![], vec![ext(1000, 16)], vec![0, 1]),
            ),
            (
                "same start, longer: kept, the rest added",
                vec![mem(0, 0, 8)],
                vec![ext(0, 9)],
                (vec![0], vec![ext(8, 1)], vec![]),
            ),
            (
                "duplicate members: the lowest id is kept",
                vec![mem(7, 0, 8), mem(2, 0, 8), mem(5, 0, 8)],
                vec![ext(0, 8)],
                (vec![2], vec![], vec![5, 7]),
            ),
            (
                "overlapping members: the lower id wins, the gap is refilled",
                vec![mem(3, 0, 16), mem(1, 8, 16)],
                vec![ext(0, 32)],
                (vec![1], vec![ext(0, 8), ext(24, 8)], vec![3]),
            ),
            (
                "a tile across a boundary of touching extents is replaced",
                vec![mem(0, 0, 8), mem(1, 8, 16), mem(2, 24, 8)],
                vec![ext(0, 16), ext(16, 16)],
                (vec![0, 2], vec![ext(8, 8), ext(16, 8)], vec![1]),
            ),
            (
                "an empty member is dropped",
                vec![mem(0, 0, 8), mem(1, 4, 0)],
                vec![ext(0, 8)],
                (vec![0], vec![], vec![1]),
            ),
            (
                "overlapping extents: each sector tiled once",
                vec![],
                vec![ext(8, 16), ext(0, 16), ext(0, 16)],
                (vec![], vec![ext(16, 8), ext(0, 16)], vec![]),
            ),
        ];
        for (name, members, extents, (keep, create, delete)) in cases {
            let p = check_tiling(&members, &extents);
            assert_eq!(
                (p.keep, p.create, p.delete),
                (keep, create, delete),
                "{name}"
            );
        }
    }

    #[test]
    fn growth_keeps_every_region() {
        // Forty growth steps: each adds one tile, none is ever deleted.
        let mut members = Vec::new();
        for step in 1..=40u64 {
            let p = check_tiling(&members, &[ext(1000, step * 512)]);
            assert!(p.delete.is_empty());
            assert_eq!(p.create, vec![ext(1000 + (step - 1) * 512, 512)]);
            members.push(mem(step, p.create[0].start, p.create[0].len));
        }
        assert_eq!(members.len(), 40);
    }

    #[test]
    fn pseudo_random_properties() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            // A small address space, so overlaps, containment and touching
            // ends are common.
            let mut ids: Vec<RegionId> = (0..40).collect();
            let n = rng.below(20) as usize;
            let members: Vec<Member> = (0..n)
                .map(|_| {
                    let id = ids.swap_remove(rng.below(ids.len() as u64) as usize);
                    mem(id, rng.below(16) * 4, rng.below(6) * 4)
                })
                .collect();
            let extents: Vec<Extent> = (0..rng.below(8))
                .map(|_| ext(rng.below(16) * 4, 1 + rng.below(24)))
                .collect();
            check_tiling(&members, &extents);
            // What the plan leaves is a fixed point.
            let p = diff(&members, &extents);
            let mut next: Vec<Member> = members
                .iter()
                .filter(|m| p.keep.contains(&m.id))
                .copied()
                .collect();
            next.extend(
                p.create
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| mem(100 + i as u64, c.start, c.len)),
            );
            assert!(check_tiling(&next, &extents).is_noop());
        }
    }
}
