//! Shared by the engine and fault tests: a file model, invariant checks.
#![allow(dead_code)]

use std::collections::BTreeMap;

use dmfilemapd::extent::Extent;
use dmfilemapd::fake::FakeDm;
use dmfilemapd::stats::{Descriptor, Region, RegionId};
pub use dmfilemapd::testing::Rng;

pub fn ext(start: u64, len: u64) -> Extent {
    Extent { start, len }
}

/// Extents as a file system would give: disjoint, in file order, not
/// sorted by start. `slot` picks one of 64 places 1 MiB apart.
pub fn extents_at(slots: &[(u64, u64)]) -> Vec<Extent> {
    slots
        .iter()
        .map(|&(slot, len)| ext(slot * 2048, len))
        .collect()
}

/// A random file layout over a few slots, so that updates share extents.
pub fn random_layout(rng: &mut Rng, max: u64) -> Vec<Extent> {
    let n = 1 + rng.below(max);
    let mut slots: Vec<u64> = (0..64).collect();
    (0..n)
        .map(|_| {
            let s = slots.swap_remove(rng.below(slots.len() as u64) as usize);
            ext(s * 2048, 8 * (1 + s % 4))
        })
        .collect()
}

/// The group led by `id`, checked: its descriptor names itself and only
/// regions that exist; no other member holds a descriptor naming itself.
pub fn group(dm: &FakeDm, id: RegionId) -> (Descriptor, Vec<Region>) {
    let leader = dm
        .regions
        .get(&id)
        .unwrap_or_else(|| panic!("leader {id} missing"));
    let desc = Descriptor::parse(&leader.aux_data)
        .unwrap()
        .unwrap_or_else(|| panic!("leader {id} holds no descriptor: {:?}", leader.aux_data));
    assert_eq!(desc.leader(), Some(id), "descriptor not led by its holder");
    let members: Vec<Region> = desc
        .members
        .iter()
        .map(|m| {
            dm.regions
                .get(m)
                .unwrap_or_else(|| panic!("descriptor names missing region {m}"))
                .clone()
        })
        .collect();
    for r in &members[1..] {
        if let Ok(Some(d)) = Descriptor::parse(&r.aux_data) {
            assert_ne!(
                d.leader(),
                Some(r.id),
                "member {} keeps a stale descriptor",
                r.id
            );
        }
    }
    (desc, members)
}

/// Every region of `program` belongs to one of the groups led by `leaders`.
pub fn no_orphans(dm: &FakeDm, program: &str, leaders: &[RegionId]) {
    let mut named = Vec::new();
    for &l in leaders {
        named.extend(group(dm, l).0.members);
    }
    for r in dm.regions.values().filter(|r| r.program_id == program) {
        assert!(
            named.contains(&r.id),
            "region {} of {program} outside every group: {r:?}",
            r.id
        );
    }
}

/// The group's regions are exactly `extents`, without duplicates.
pub fn converged(dm: &FakeDm, id: RegionId, extents: &[Extent]) {
    let (_, members) = group(dm, id);
    let mut have: Vec<Extent> = members.iter().map(|r| r.extent()).collect();
    have.sort_unstable();
    let mut want = extents.to_vec();
    want.sort_unstable();
    assert_eq!(have, want, "group {id} does not match the extents");
}

/// Regions of other programs, to compare byte for byte later.
pub fn snapshot(dm: &FakeDm, except: &str) -> BTreeMap<RegionId, Region> {
    dm.regions
        .iter()
        .filter(|(_, r)| r.program_id != except)
        .map(|(&k, v)| (k, v.clone()))
        .collect()
}

pub fn untouched(dm: &FakeDm, before: &BTreeMap<RegionId, Region>) {
    for (id, r) in before {
        assert_eq!(dm.regions.get(id), Some(r), "foreign region {id} changed");
    }
}
