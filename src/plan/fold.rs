//! Fold: keeping a tiled group within its region budget.
//!
//! Every growth step of an extent adds a tile (see [`crate::plan::diff`]), and
//! each region costs kernel memory (dm-stats refuses new regions past a
//! quarter of RAM). So a group holds at most one region per
//! extent plus a budget of extra tiles; past it, adjacent tiles of one
//! extent are folded into one new region, which starts from zero: the
//! folded tiles' counters are lost.
//!
//! Which fold is a rent-or-buy choice. Folding a new part into the young
//! tile before it costs that tile's counts, which are few, but the folded
//! tile is young again at the next step and the next fold costs it again:
//! always taking the cheapest fold ("greedy") keeps re-folding the newest
//! tile, which ends up holding almost the whole file with one step's counts.
//! The rent a tile has paid so far is about its counts
//! times the number of parts it absorbed, half on average, i.e. its counts
//! times `len / (2 * new part's len)`; once that exceeds the cheapest fold
//! of two settled tiles, we buy: the settled pair is folded and the young
//! tile is left to age. That keeps old large tiles and folds young small
//! ones; `tests/fold_sim.rs` simulates both, and docs/measurements.md has
//! the figures.
//!
//! Pure: the engine reads the counters (`@stats_print`) only when a fold
//! is due and hands them in.
//!
//! Owns: [`DEFAULT_BUDGET`], [`choose`], [`within_budget`]. Touches: nothing
//! but its arguments.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use crate::dmstats::RegionId;
use crate::extent::Extent;
use crate::plan::diff::{self, Member, Plan};

/// Extra regions a group may hold beyond one per extent: a file grown in up
/// to 64 steps loses no counts, and the memory and fidelity this costs are
/// weighed in docs/measurements.md ("Why a budget of 64").
pub(crate) const DEFAULT_BUDGET: usize = 64;

/// One tile of an extent as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Tiles fold only with their neighbours in the same extent.
    pub extent: usize,
    pub len: u64,
    /// Sectors counted so far (read + written); what folding it loses.
    /// Sectors, not requests: dm-stats counts a request once in every
    /// area it touches, so a request split over tiles would count twice.
    pub counts: u64,
    /// Not a region yet (a part no kept region covers): folding it loses
    /// nothing.
    pub fresh: bool,
}

/// What folding the neighbours `a` and `b` is taken to cost.
fn cost(a: &Tile, b: &Tile) -> u128 {
    match (a.fresh, b.fresh) {
        (true, true) => 0,
        (false, false) => u128::from(a.counts) + u128::from(b.counts),
        (false, true) => rent(a, b),
        (true, false) => rent(b, a),
    }
}

/// A region folded with a fresh part: its counts, scaled by how many such
/// parts it has likely absorbed already (each fold emptied it), so that a
/// tile that keeps growing is let go once its rent passes a settled fold.
fn rent(young: &Tile, fresh: &Tile) -> u128 {
    let counts = u128::from(young.counts);
    let (len, part) = (u128::from(young.len), u128::from(fresh.len.max(1)));
    if len > 2 * part {
        counts * len / (2 * part)
    } else {
        counts
    }
}

/// Which runs of adjacent tiles to fold so that `excess` fewer remain.
///
/// `tiles` are sorted by extent, then in device order within it; the
/// result is ascending, disjoint runs of two or more tiles of one extent.
/// Folds are taken one at a time, the cheapest by `cost` first (ties: the
/// later tile, the younger under growth); a folded run is fresh. With a
/// heap of candidate pairs, O((n + excess) log n). Asks for more folds than
/// there are neighbours are cut short: every extent keeps a region.
pub fn choose(tiles: &[Tile], excess: usize) -> Vec<Range<usize>> {
    let n = tiles.len();
    // The live run starting at i covers i..end[i]; prev links live runs.
    let mut end: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
    let mut live: Vec<Tile> = tiles.to_vec();
    let mut alive = vec![true; n];
    let mut version = vec![0u32; n];

    type Entry = Reverse<(u128, Reverse<usize>, usize, u32, u32)>;
    let mut heap: BinaryHeap<Entry> = BinaryHeap::new();
    let push =
        |heap: &mut BinaryHeap<Entry>, live: &[Tile], version: &[u32], a: usize, b: usize| {
            if live[a].extent == live[b].extent {
                let c = cost(&live[a], &live[b]);
                heap.push(Reverse((c, Reverse(a), b, version[a], version[b])));
            }
        };
    for i in 1..n {
        push(&mut heap, &live, &version, i - 1, i);
    }

    let mut done = 0;
    while done < excess {
        let Some(Reverse((_, Reverse(a), b, va, vb))) = heap.pop() else {
            break;
        };
        if !alive[a] || !alive[b] || version[a] != va || version[b] != vb {
            continue;
        }
        // Fold b into a.
        live[a] = Tile {
            extent: live[a].extent,
            len: live[a].len.saturating_add(live[b].len),
            counts: 0,
            fresh: true,
        };
        alive[b] = false;
        end[a] = end[b];
        version[a] += 1;
        let next = end[a];
        if next < n {
            prev[next] = Some(a);
            push(&mut heap, &live, &version, a, next);
        }
        if let Some(p) = prev[a] {
            push(&mut heap, &live, &version, p, a);
        }
        done += 1;
    }
    (0..n)
        .filter(|&i| alive[i] && end[i] - i >= 2)
        .map(|i| i..end[i])
        .collect()
}

/// How many regions past the budget `plan` leaves the group with.
pub(crate) fn excess(plan: &Plan, extents: &[Extent], budget: usize) -> usize {
    let allowed = diff::disjoint(extents).len().saturating_add(budget);
    plan.tiles().saturating_sub(allowed)
}

/// The plan's tiles in extent and device order, each with the kept member
/// it is (or `None` for a part to create): what [`choose`] folds.
pub(crate) fn tiles(
    plan: &Plan,
    members: &[Member],
    extents: &[Extent],
) -> Vec<(Extent, usize, Option<RegionId>)> {
    let runs = diff::disjoint(extents);
    let mut out: Vec<(Extent, usize, Option<RegionId>)> = Vec::with_capacity(plan.tiles());
    let extent_of = |x: Extent| {
        let at = runs.partition_point(|(e, _)| e.start <= x.start);
        at.saturating_sub(1)
    };
    // The member the diff weighed for an id (a repeated id: its first).
    let mut by_id: Vec<&Member> = members.iter().collect();
    by_id.sort_unstable_by_key(|m| (m.id, m.extent));
    by_id.dedup_by_key(|m| m.id);
    for m in by_id
        .into_iter()
        .filter(|m| plan.keep.binary_search(&m.id).is_ok())
    {
        out.push((m.extent, extent_of(m.extent), Some(m.id)));
    }
    for &c in &plan.create {
        out.push((c, extent_of(c), None));
    }
    out.sort_unstable_by_key(|&(x, i, _)| (i, x.start));
    out
}

/// `plan` brought within `budget`: the chosen runs of tiles become one new
/// region each, their kept members deleted. `counts` gives a kept member's
/// sectors so far; it is asked only when a fold is due. The result still
/// tiles the extents (`check_fold`, feature `testkit`).
pub(crate) fn within_budget(
    plan: Plan,
    members: &[Member],
    extents: &[Extent],
    budget: usize,
    counts: &dyn Fn(RegionId) -> u64,
) -> Plan {
    let over = excess(&plan, extents, budget);
    if over == 0 {
        return plan;
    }
    let laid = tiles(&plan, members, extents);
    let view: Vec<Tile> = laid
        .iter()
        .map(|&(x, extent, id)| Tile {
            extent,
            len: x.len,
            counts: id.map_or(0, counts),
            fresh: id.is_none(),
        })
        .collect();
    let folds = choose(&view, over);
    if folds.is_empty() {
        return plan;
    }
    let mut out = Plan {
        keep: Vec::new(),
        create: Vec::new(),
        delete: plan.delete,
    };
    let mut runs = folds.into_iter().peekable();
    let mut i = 0;
    // Rebuild in tile order, which is file order of the extents by device
    // order, not the file order `diff` gives `create`: restore that after.
    let mut created: Vec<(usize, Extent)> = Vec::new();
    let order = diff::disjoint(extents);
    while i < laid.len() {
        if runs.peek().is_some_and(|r| r.start == i) {
            let r = runs.next().expect("peeked");
            let first = laid[r.start].0;
            let last = laid[r.end - 1].0;
            created.push((
                order[laid[i].1].1,
                Extent {
                    start: first.start,
                    len: last.end() - first.start,
                },
            ));
            for t in &laid[r.clone()] {
                if let Some(id) = t.2 {
                    out.delete.push(id);
                }
            }
            i = r.end;
            continue;
        }
        match laid[i].2 {
            Some(id) => out.keep.push(id),
            None => created.push((order[laid[i].1].1, laid[i].0)),
        }
        i += 1;
    }
    created.sort_unstable_by_key(|&(file_index, x)| (file_index, x.start));
    out.create = created.into_iter().map(|(_, x)| x).collect();
    out.keep.sort_unstable();
    out.delete.sort_unstable();
    out
}

/// The properties of [`within_budget`] for one input, on top of the
/// tiling's: within budget (or one region per extent), every kept region
/// was kept by the diff too. Panics on a violation.
#[cfg(feature = "testkit")]
pub fn check_fold(
    members: &[Member],
    extents: &[Extent],
    budget: usize,
    counts: &dyn Fn(RegionId) -> u64,
) -> Plan {
    let plan = diff::check_tiling(members, extents);
    let folded = within_budget(plan.clone(), members, extents, budget, counts);
    // Same tiling checks, with the folded plan applied to the members.
    let mut after: Vec<Member> = members
        .iter()
        .filter(|m| folded.keep.binary_search(&m.id).is_ok())
        .copied()
        .collect();
    after.sort_unstable();
    after.dedup_by_key(|m| m.id);
    let base = after
        .iter()
        .map(|m| m.id)
        .chain(members.iter().map(|m| m.id))
        .max()
        .unwrap_or(0);
    after.extend(folded.create.iter().enumerate().map(|(i, &c)| Member {
        id: base + 1 + i as u64,
        extent: c,
    }));
    let again = diff::check_tiling(&after, extents);
    assert!(again.is_noop(), "folded plan does not tile: {folded:?}");
    let n = diff::disjoint(extents).len();
    assert!(folded.tiles() <= n + budget, "over budget: {folded:?}");
    assert!(folded.keep.iter().all(|k| plan.keep.contains(k)));
    let mut ids: Vec<RegionId> = folded.keep.iter().chain(&folded.delete).copied().collect();
    ids.sort_unstable();
    let mut want: Vec<RegionId> = plan.keep.iter().chain(&plan.delete).copied().collect();
    want.sort_unstable();
    assert_eq!(ids, want, "keep + delete must be exactly the members");
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ext, Rng};

    fn t(extent: usize, len: u64, counts: u64) -> Tile {
        Tile {
            extent,
            len,
            counts,
            fresh: false,
        }
    }

    fn fresh(extent: usize, len: u64) -> Tile {
        Tile {
            extent,
            len,
            counts: 0,
            fresh: true,
        }
    }

    type Case = (&'static str, Vec<Tile>, usize, Vec<Range<usize>>);

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a list of runs that holds one
    fn choices() {
        let cases: Vec<Case> = vec![
            ("nothing due", vec![t(0, 8, 5), fresh(0, 8)], 0, vec![]),
            ("nothing to fold", vec![t(0, 8, 5), t(1, 8, 5)], 1, vec![]),
            (
                "a young tile takes the new part",
                vec![t(0, 8, 100), t(0, 8, 90), t(0, 8, 3), fresh(0, 8)],
                1,
                vec![2..4],
            ),
            (
                "a young tile that absorbed many parts is let go: the cheapest settled fold",
                vec![t(0, 8, 100), t(0, 8, 90), t(0, 400, 60), fresh(0, 8)],
                1,
                vec![1..3],
            ),
            (
                "two fresh parts fold for free",
                vec![
                    fresh(0, 8),
                    t(0, 8, 1),
                    t(1, 8, 1),
                    fresh(1, 8),
                    fresh(1, 8),
                ],
                1,
                vec![3..5],
            ),
            (
                "ties go to the later pair",
                vec![t(0, 8, 1), t(0, 8, 1), t(0, 8, 1), t(0, 8, 1)],
                1,
                vec![2..4],
            ),
            (
                "tiles of different extents never fold",
                vec![t(0, 8, 0), t(1, 8, 0), t(1, 8, 50), t(1, 8, 60)],
                1,
                vec![1..3],
            ),
            (
                "more than can fold: one region per extent",
                vec![t(0, 8, 1), t(0, 8, 1), t(1, 8, 1)],
                5,
                vec![0..2],
            ),
            (
                "runs grow past two",
                vec![t(0, 8, 100), fresh(0, 8), fresh(0, 8), fresh(0, 8)],
                2,
                vec![1..4],
            ),
        ];
        for (name, tiles, excess, want) in cases {
            assert_eq!(choose(&tiles, excess), want, "{name}");
        }
    }

    #[test]
    fn plan_within_budget() {
        // Tiles 1, 2, 3 of one extent, grown by a part, and a second extent:
        // five tiles for two extents.
        let members = [
            Member {
                id: 1,
                extent: ext(0, 8),
            },
            Member {
                id: 2,
                extent: ext(8, 8),
            },
            Member {
                id: 3,
                extent: ext(16, 8),
            },
            Member {
                id: 4,
                extent: ext(900, 8),
            },
        ];
        let extents = [ext(900, 8), ext(0, 32)];
        let plan = crate::plan::diff::diff(&members, &extents);
        assert_eq!(plan.create, vec![ext(24, 8)]);
        let counts = |id: RegionId| [0, 500, 400, 2, 7][id as usize];
        let p = within_budget(plan.clone(), &members, &extents, 2, &counts);
        // 3 has few counts: it takes the new part.
        assert_eq!(
            (p.keep, p.create, p.delete),
            (vec![1, 2, 4], vec![ext(16, 16)], vec![3])
        );
        let p = within_budget(plan.clone(), &members, &extents, 0, &counts);
        assert_eq!((p.keep, p.create), (vec![4], vec![ext(0, 32)]));
        for budget in 0..4 {
            check_fold(&members, &extents, budget, &counts);
        }
        // Within budget: untouched, and no counter asked for.
        let p = within_budget(plan.clone(), &members, &extents, 3, &|_| panic!("read"));
        assert_eq!(p, plan);
    }

    #[test]
    fn pseudo_random_properties() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..3000 {
            let mut ids: Vec<RegionId> = (0..40).collect();
            let members: Vec<Member> = (0..rng.below(24))
                .map(|_| Member {
                    id: ids.swap_remove(rng.below(ids.len() as u64) as usize),
                    extent: ext(rng.below(32) * 4, rng.below(6) * 4),
                })
                .collect();
            let extents: Vec<Extent> = (0..rng.below(6))
                .map(|_| ext(rng.below(32) * 4, 1 + rng.below(64)))
                .collect();
            let seed = rng.below(1000);
            let counts = move |id: RegionId| (id * 7919 + seed) % 50;
            check_fold(&members, &extents, rng.below(6) as usize, &counts);
        }
    }
}
