//! SIGKILL at every instant of a large update, on the in-memory kernel:
//! the state after each message is a state a killed daemon can leave.
//! For each: at most `dmfilemapd::BATCH` regions of ours are outside the group,
//! no descriptor names a missing region, and a daemon started on the group
//! afterwards settles it in one update: nothing of ours outside, the group
//! equal to the file, regions made by hand over the same blocks untouched.

mod common;

use std::collections::BTreeMap;

use common::*;
use dmfilemapd::leading;
use dmfilemapd::testkit::fake::{FakeDm, DMSTATS_PROGRAM};
use dmfilemapd::Extent;
use dmfilemapd::BATCH;
use dmfilemapd::{Dialect, Region, RegionId};
use dmfilemapd::{Engine, Outcome, Warning};

const P: &str = DMSTATS_PROGRAM;
const ALIAS: &str = "the file";

/// Regions of `P` outside every descriptor, but those made by hand.
fn outside(regions: &BTreeMap<RegionId, Region>, hand: &[RegionId], what: &str) -> usize {
    let named = named(regions, what);
    regions
        .values()
        .filter(|r| r.program_id == P && !named.contains(&r.id) && !hand.contains(&r.id))
        .count()
}

/// Regions holding a descriptor of the file: the ids a person (or dmstats)
/// could start the next daemon with.
fn leaders(regions: &BTreeMap<RegionId, Region>) -> Vec<RegionId> {
    regions
        .values()
        .filter(|r| leading(r).is_some_and(|d| d.alias == ALIAS))
        .map(|r| r.id)
        .collect()
}

struct Sweep {
    moments: usize,
    worst_before: usize,
    worst_after: usize,
    messages: usize,
}

/// Map `old`, add regions made by hand over one old and one new extent,
/// then update to `new`, killing after every message in turn.
fn sweep(old: &[Extent], new: &[Extent]) -> Sweep {
    let mut dm = FakeDm::new();
    dm.seed(ext(1 << 30, 8), "other", "DMS_GROUP=evil:0-9#");
    let g = dm.filemap_group_with(old, ALIAS, Dialect::Bare, "user data", false, &[]);
    let hand = vec![
        dm.seed(old[old.len() / 2], P, "-"),
        dm.seed(new[new.len() / 2], P, "-"),
    ];
    let foreign: BTreeMap<RegionId, Region> = dm
        .regions
        .iter()
        .filter(|(id, r)| r.program_id != P || hand.contains(id))
        .map(|(&id, r)| (id, r.clone()))
        .collect();
    let mut engine = Engine::new(
        Recording {
            dm,
            states: Vec::new(),
        },
        g,
    );
    engine.load().unwrap().unwrap();
    engine.dev.states.clear();
    let Outcome::Updated(summary) = engine.sync(new, &never).unwrap() else {
        panic!("no update")
    };
    let states = std::mem::take(&mut engine.dev.states);
    let mut out = Sweep {
        moments: states.len(),
        worst_before: 0,
        worst_after: 0,
        messages: summary.messages,
    };
    for (k, state) in states.iter().enumerate() {
        let what = format!("killed after message {}", k + 1);
        let before = outside(state, &hand, &what);
        out.worst_before = out.worst_before.max(before);
        assert!(
            before <= BATCH,
            "{what}: {before} regions outside the group"
        );
        let ids = leaders(state);
        assert!(!ids.is_empty(), "{what}: group lost");
        // Whichever descriptor the next daemon is given.
        for gid in ids {
            let mut dm = FakeDm::new();
            dm.regions = state.clone();
            let mut next = Engine::new(dm, gid);
            next.load().unwrap().unwrap();
            next.sync(new, &never)
                .unwrap_or_else(|e| panic!("{what}, restarted on {gid}: {e}"));
            let what = format!("{what}, restarted on {gid}");
            // What it settled, it says, and every region it meant to delete went.
            let w = next.take_warnings();
            assert!(before == 0 || !w.is_empty(), "{what}: settled silently");
            assert!(
                w.iter().all(|w| !matches!(w, Warning::NotDeleted { .. })),
                "{what}: {w:?}"
            );
            let after = outside(&next.dev.regions, &hand, &what);
            out.worst_after = out.worst_after.max(after);
            assert_eq!(after, 0, "{what}: left outside: {:#?}", next.dev.regions);
            converged(&next.dev, next.group_id(), new);
            untouched(&next.dev, &foreign);
        }
    }
    out
}

fn run(name: &str, old: &[Extent], new: &[Extent]) {
    let s = sweep(old, new);
    eprintln!(
        "{name}: {} -> {} extents, {} messages, {} kill moments: at most {} outside after the kill, {} after the next daemon's update",
        old.len(),
        new.len(),
        s.messages,
        s.moments,
        s.worst_before,
        s.worst_after
    );
}

/// Extents 16 sectors apart from `first`, `n` of them.
fn spread(first: u64, n: u64) -> Vec<Extent> {
    (0..n).map(|i| ext(first + i * 16, 8)).collect()
}

#[test]
fn kill_during_growth() {
    let old = spread(1 << 20, 40);
    let mut new = old.clone();
    new.extend(spread(1 << 21, 100));
    run("growth", &old, &new);
}

#[test]
fn kill_during_shrink() {
    let old = spread(1 << 20, 140);
    run("shrink", &old, &old[100..]);
}

#[test]
fn kill_during_shrink_from_the_leader() {
    let old = spread(1 << 20, 100);
    run("first extents freed", &old, &old[70..]);
}

#[test]
fn kill_during_rewrite() {
    let old = spread(1 << 20, 80);
    run("rewrite", &old, &spread(1 << 21, 80));
}
