//! Shared by the engine and fault tests: a file model; the invariant
//! checks are `dmfilemapd::testing`'s, shared with the fuzz targets.
#![allow(dead_code, unused_imports)]

pub use dmfilemapd::testkit::{converged, ext, group, no_orphans, snapshot, untouched, Rng};
use dmfilemapd::Extent;

/// A stop request that never comes.
pub fn never() -> bool {
    false
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

/// The fake, and its regions after every message: each a state a SIGKILL
/// can leave (the kill sweeps of the engine, `map` and `unmap`).
pub struct Recording {
    pub dm: dmfilemapd::testkit::fake::FakeDm,
    pub states: Vec<std::collections::BTreeMap<dmfilemapd::RegionId, dmfilemapd::Region>>,
}

impl dmfilemapd::Device for Recording {
    fn message(&mut self, msg: &[u8]) -> Result<dmfilemapd::Text, dmfilemapd::DeviceError> {
        let reply = self.dm.message(msg);
        self.states.push(self.dm.regions.clone());
        reply
    }
}

/// Ids every descriptor of program `dmstats` names; panics if one names a
/// missing region.
pub fn named(
    regions: &std::collections::BTreeMap<dmfilemapd::RegionId, dmfilemapd::Region>,
    what: &str,
) -> std::collections::BTreeSet<dmfilemapd::RegionId> {
    let mut named = std::collections::BTreeSet::new();
    for r in regions
        .values()
        .filter(|r| r.program_id == dmfilemapd::testkit::fake::DMSTATS_PROGRAM)
    {
        for m in dmfilemapd::leading(r)
            .map(|d| d.members)
            .unwrap_or_default()
        {
            assert!(
                regions.contains_key(&m),
                "{what}: {} names missing region {m}",
                r.id
            );
            named.insert(m);
        }
    }
    named
}
