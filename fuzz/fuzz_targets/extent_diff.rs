//! Arbitrary (group regions, extents): the plan's tiling properties, then
//! the engine carrying it out on the fake kernel with one fault injected.
#![no_main]
use std::collections::BTreeMap;

use dmfilemapd::{check_tiling, Member};
use dmfilemapd::{Engine, EngineError};
use dmfilemapd::check_fold;
use dmfilemapd::Extent;
use dmfilemapd::testkit::fake::{FakeDm, Kind, DMSTATS_PROGRAM, FAULT_ERRNOS};
use dmfilemapd::{Descriptor, Dialect, Region, RegionId};
use dmfilemapd::testkit::{converged, no_orphans, snapshot, untouched};
use libfuzzer_sys::fuzz_target;

/// Few places and lengths, so that members and extents often coincide,
/// nest, overlap and touch.
fn extent(a: u8, b: u8) -> Extent {
    Extent {
        start: u64::from(a % 32) * 4,
        len: 1 + u64::from(b % 8) * 4,
    }
}

fn decode(data: &[u8]) -> (Vec<Member>, Vec<Extent>, &[u8]) {
    let (mut members, mut extents) = (Vec::new(), Vec::new());
    let mut used = [false; 64];
    let mut chunks = data.chunks_exact(3);
    for c in chunks.by_ref() {
        match c[0] >> 6 {
            0 => break,
            1 => {
                let id = usize::from(c[0] & 63);
                if !used[id] {
                    used[id] = true;
                    members.push(Member {
                        id: id as RegionId,
                        extent: extent(c[1], c[2]),
                    });
                }
            }
            _ => extents.push(extent(c[1], c[2])),
        }
    }
    (members, extents, chunks.remainder())
}

/// The group led by `id` is whole, holds every `dmstats` region, and no
/// other program's region changed.
fn check_device(dm: &FakeDm, id: RegionId, foreign: &BTreeMap<RegionId, Region>) {
    no_orphans(dm, DMSTATS_PROGRAM, &[id]);
    untouched(dm, foreign);
}

fn run_engine(members: &[Member], extents: &[Extent], rest: &[u8]) {
    if members.is_empty() {
        return;
    }
    let mut dm = FakeDm::new();
    for m in members {
        let r = Region {
            id: m.id,
            start: m.extent.start,
            len: m.extent.len,
            step: m.extent.len,
            program_id: DMSTATS_PROGRAM.into(),
            aux_data: "-".into(),
            precise: false,
            histogram: Vec::new(),
        };
        dm.insert(r);
    }
    let mut ids: Vec<RegionId> = members.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    let leader = ids[0];
    let dialect = if rest.first().is_some_and(|b| b & 1 == 1) {
        Dialect::Quoted
    } else {
        Dialect::Bare
    };
    let desc = Descriptor {
        alias: "a file".into(),
        members: ids,
        user: "u".into(),
        dialect,
    };
    dm.regions.get_mut(&leader).unwrap().aux_data = desc.format();
    dm.seed(Extent { start: 0, len: 8 }, "other", "DMS_GROUP=x:0-99#");
    let foreign = snapshot(&dm, DMSTATS_PROGRAM);

    let mut engine = Engine::new(dm, leader);
    engine.load().unwrap().unwrap();
    if let [kind, nth, errno, ..] = *rest {
        let kind = Kind::ALL[usize::from(kind) % Kind::ALL.len()];
        engine.dev.fail(
            kind,
            usize::from(nth % 16) + 1,
            FAULT_ERRNOS[usize::from(errno) % 5],
        );
    }
    let out = engine.sync(extents, &|| false);
    assert!(
        !matches!(out, Err(EngineError::Unrepaired { .. })),
        "one fault was not repaired: {out:?}"
    );
    let gone = extents.is_empty() && out.is_ok();
    if !gone {
        check_device(&engine.dev, engine.group_id(), &foreign);
    }
    engine.dev.reset_faults();
    match engine.sync(extents, &|| false) {
        Err(EngineError::GroupGone(_)) if extents.is_empty() => {}
        Err(e) => panic!("fault-free retry failed: {e}"),
        Ok(_) if extents.is_empty() => {}
        Ok(_) => {
            check_device(&engine.dev, engine.group_id(), &foreign);
            converged(&engine.dev, engine.group_id(), extents);
        }
    }
    if extents.is_empty() {
        assert!(
            engine
                .dev
                .regions
                .values()
                .all(|r| r.program_id != DMSTATS_PROGRAM),
            "regions left after removal"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let (members, extents, rest) = decode(data);
    check_tiling(&members, &extents);
    // Folds within a small budget, counters drawn from the input.
    let budget = rest.get(3).map_or(0, |b| usize::from(b % 8));
    let salt = rest.get(4).map_or(0, |&b| u64::from(b));
    check_fold(&members, &extents, budget, &|id| (id * 31 + salt) % 17);
    run_engine(&members, &extents, rest);
});
