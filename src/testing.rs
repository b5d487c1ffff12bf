//! Helpers shared by the unit tests, the integration tests and the fuzz
//! targets; not part of the daemon.

use crate::extent::RawExtent;

/// xorshift: a small deterministic generator, so `cargo test` covers the
/// fuzz properties without the fuzzer and a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
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
