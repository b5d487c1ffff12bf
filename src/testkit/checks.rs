//! Helpers shared by the unit tests, the integration tests and the fuzz
//! targets; not part of the daemon.
//!
//! Feature `testkit` only. Owns: the shared checks and generators. Touches:
//! the daemon's code never.

use std::collections::BTreeMap;

use crate::dmstats::{Descriptor, Region, RegionId};
use crate::extent::{Extent, RawExtent};
use crate::plan::diff::{check_tiling, Member};
use crate::testkit::fake::FakeDm;

/// xorshift: a small deterministic generator, so `cargo test` covers the
/// fuzz properties without the fuzzer and a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An extent, in sectors.
pub fn ext(start: u64, len: u64) -> Extent {
    Extent { start, len }
}

/// A FIEMAP record, fields in `struct fiemap_extent` order.
pub fn rec(logical: u64, physical: u64, length: u64, flags: u32) -> RawExtent {
    RawExtent {
        logical,
        physical,
        length,
        flags,
    }
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

/// The group's regions tile `extents`: pairwise disjoint, each inside one
/// extent, their union the extents' (the diff has nothing left to do).
pub fn converged(dm: &FakeDm, id: RegionId, extents: &[Extent]) {
    let (_, members) = group(dm, id);
    let members: Vec<Member> = members
        .iter()
        .map(|r| Member {
            id: r.id,
            extent: r.extent(),
        })
        .collect();
    let plan = check_tiling(&members, extents);
    assert!(
        plan.is_noop(),
        "group {id} does not tile the extents {extents:?}: {members:?}"
    );
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
