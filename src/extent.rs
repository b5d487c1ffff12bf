//! Extents: where a file's data sits on the device, in 512-byte sectors,
//! and how raw FIEMAP records become the extents a filemap group mirrors.
//!
//! Owns: [`Extent`], [`RawExtent`], the FIEMAP_EXTENT_* flags it reads, the
//! merge. Touches: no file (the records come from [`crate::sys::fiemap`]).

use std::collections::BTreeMap;

/// dm-stats counts in 512-byte sectors whatever the device's block size.
pub(crate) const SECTOR_SHIFT: u32 = 9;

/// A run of sectors on the device-mapper device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    pub start: u64,
    pub len: u64,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// One `fiemap_extent` as the kernel reports it, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawExtent {
    pub logical: u64,
    pub physical: u64,
    pub length: u64,
    pub flags: u32,
}

pub const FIEMAP_EXTENT_LAST: u32 = 0x0000_0001;
pub(crate) const FIEMAP_EXTENT_UNKNOWN: u32 = 0x0000_0002;
pub(crate) const FIEMAP_EXTENT_DELALLOC: u32 = 0x0000_0004;

/// Records with no device address yet: nothing on the device to count.
const UNMAPPED: u32 = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC;

/// Folds FIEMAP records, fed in logical order batch after batch, into extents.
///
/// libdm's rule: a record that starts where the previous kept record ended
/// on the device grows the current extent (file systems split long runs,
/// ext4 every 128 MiB), whatever the logical gap between them; any other
/// record starts a new extent. The fold sees records one at a time, so where
/// the FIEMAP batches split cannot change the result (libdm's can).
///
/// Unlike libdm, the result never holds a zero-length extent (a byte run is
/// rounded out to whole sectors) and never counts a sector twice (a range
/// shared by reflinks is kept where it first appears, later repeats clipped);
/// extents that merely touch stay apart, as dmstats made them.
#[derive(Debug, Default)]
pub(crate) struct Merger {
    /// The extent being grown, in device bytes `[start, end)`; the end is
    /// wide so that no record, however large, wraps around.
    pending: Option<(u64, u128)>,
    /// Finished extents in logical order, before overlaps are clipped.
    out: Vec<Extent>,
    /// Where the first record with no device address yet (skipped)
    /// starts in the file, in bytes.
    unmapped: Option<u64>,
}

impl Merger {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, raw: &RawExtent) {
        if raw.flags & UNMAPPED != 0 {
            if raw.length > 0 {
                self.unmapped = Some(self.unmapped.map_or(raw.logical, |u| u.min(raw.logical)));
            }
            return;
        }
        if raw.length == 0 {
            return;
        }
        let end = u128::from(raw.physical) + u128::from(raw.length);
        match &mut self.pending {
            Some((_, pending_end)) if *pending_end == u128::from(raw.physical) => {
                *pending_end = end
            }
            _ => {
                self.flush();
                self.pending = Some((raw.physical, end));
            }
        }
    }

    /// Where in the file (bytes) the first record skipped for having no
    /// address yet (delayed allocation) starts: data, or (xfs) space
    /// reserved past the end of the file, the extents do not show yet.
    pub(crate) fn unmapped(&self) -> Option<u64> {
        self.unmapped
    }

    /// Feed one FIEMAP batch.
    pub(crate) fn extend(&mut self, batch: &[RawExtent]) {
        batch.iter().for_each(|r| self.push(r));
    }

    fn flush(&mut self) {
        if let Some((start, end)) = self.pending.take() {
            let first = start >> SECTOR_SHIFT;
            // Round the end up so a partial last sector still counts; the
            // result is at most 2^56, so it fits.
            let last = (end + (1 << SECTOR_SHIFT) - 1) >> SECTOR_SHIFT;
            self.out.push(Extent {
                start: first,
                len: last as u64 - first,
            });
        }
    }

    /// The extents in logical order of their first sector, none empty, none
    /// overlapping another.
    pub(crate) fn finish(mut self) -> Vec<Extent> {
        self.flush();
        clip_repeats(self.out)
    }
}

/// Drop every sector already counted by an earlier extent, splitting an
/// extent around the parts it repeats.
fn clip_repeats(extents: Vec<Extent>) -> Vec<Extent> {
    // Sectors counted so far, as disjoint runs start -> end, merged when they
    // touch so that each extent walks only the runs it overlaps.
    let mut seen = BTreeMap::<u64, u64>::new();
    let mut out = Vec::with_capacity(extents.len());
    for e in extents {
        let (start, end) = (e.start, e.start + e.len);
        let before = seen.range(..start).next_back().filter(|r| *r.1 >= start);
        let runs: Vec<(u64, u64)> = before
            .into_iter()
            .chain(seen.range(start..=end))
            .map(|(&s, &e)| (s, e))
            .collect();
        let (mut cursor, mut lo, mut hi) = (start, start, end);
        for (s, e) in runs {
            if s > cursor {
                out.push(Extent {
                    start: cursor,
                    len: s.min(end) - cursor,
                });
            }
            cursor = cursor.max(e);
            lo = lo.min(s);
            hi = hi.max(e);
            seen.remove(&s);
        }
        if cursor < end {
            out.push(Extent {
                start: cursor,
                len: end - cursor,
            });
        }
        seen.insert(lo, hi);
    }
    out
}

/// Merge a whole FIEMAP record list at once.
pub fn merge(raw: &[RawExtent]) -> Vec<Extent> {
    let mut m = Merger::new();
    m.extend(raw);
    m.finish()
}

/// The properties the merge promises whatever the input; shared by the unit
/// tests and the `fiemap_merge` fuzz target. Panics on a violation.
#[cfg(feature = "testkit")]
pub fn check_merge(raw: &[RawExtent], splits: &[usize]) {
    let whole = merge(raw);
    // Any split into batches gives the same extents.
    let mut m = Merger::new();
    let mut rest = raw;
    for &n in splits {
        let (batch, tail) = rest.split_at(n.min(rest.len()));
        m.extend(batch);
        rest = tail;
    }
    m.extend(rest);
    assert_eq!(m.finish(), whole, "batches change the result");

    assert!(
        whole.iter().all(|e| e.len > 0),
        "zero-length extent: {whole:?}"
    );
    let mut sorted = whole.clone();
    sorted.sort();
    assert!(
        sorted.windows(2).all(|w| w[0].end() <= w[1].start),
        "overlap: {sorted:?}"
    );

    // Unmapped records and empty records change nothing.
    let mapped: Vec<RawExtent> = raw
        .iter()
        .filter(|r| r.flags & UNMAPPED == 0 && r.length > 0)
        .copied()
        .collect();
    assert_eq!(merge(&mapped), whole, "unmapped records counted");

    // Every byte of every mapped record lies in some extent, and every
    // extent sector holds a byte of some record.
    let covered = |sector: u64| whole.iter().any(|e| e.start <= sector && sector < e.end());
    // First and last sector a (mapped, non-empty) record touches.
    let sectors = |r: &RawExtent| {
        let last = (u128::from(r.physical) + u128::from(r.length) - 1) >> SECTOR_SHIFT;
        (r.physical >> SECTOR_SHIFT, last as u64)
    };
    for r in &mapped {
        let (first, last) = sectors(r);
        for s in [first, last, first + (last - first) / 2] {
            assert!(covered(s), "sector {s} of {r:?} not counted in {whole:?}");
        }
    }
    for e in &whole {
        for s in [e.start, e.end() - 1] {
            let holds = mapped.iter().map(sectors).any(|(f, l)| f <= s && s <= l);
            assert!(holds, "sector {s} of {e:?} maps no record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ext, rec, Rng};

    const MIB: u64 = 1 << 20;

    #[test]
    fn merge_rules() {
        let cases: Vec<(&str, Vec<RawExtent>, Vec<Extent>)> = vec![
            ("empty", vec![], vec![]),
            (
                "one",
                vec![rec(0, 4096, 8192, FIEMAP_EXTENT_LAST)],
                vec![ext(8, 16)],
            ),
            (
                "ext4 splits a long run every 128 MiB: one extent",
                vec![
                    rec(0, MIB, 128 * MIB, 0),
                    rec(128 * MIB, 129 * MIB, 4096, FIEMAP_EXTENT_LAST),
                ],
                vec![ext(2048, 262_152)],
            ),
            (
                "a hole at the start",
                vec![
                    rec(MIB, 8192, 4096, 0),
                    rec(2 * MIB, 65536, 4096, FIEMAP_EXTENT_LAST),
                ],
                vec![ext(16, 8), ext(128, 8)],
            ),
            (
                "physically contiguous across a logical hole: merged, as libdm does",
                vec![
                    rec(0, 8192, 4096, 0),
                    rec(MIB, 12288, 4096, FIEMAP_EXTENT_LAST),
                ],
                vec![ext(16, 16)],
            ),
            (
                "physically backwards: two extents",
                vec![rec(0, 65536, 4096, 0), rec(4096, 8192, 4096, 0)],
                vec![ext(128, 8), ext(16, 8)],
            ),
            (
                "unknown and delalloc skipped",
                vec![
                    rec(0, 0, 4096, FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC),
                    rec(4096, 8192, 4096, 0),
                    rec(8192, 0, 4096, FIEMAP_EXTENT_DELALLOC),
                    rec(12288, 0, 4096, FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_LAST),
                ],
                vec![ext(16, 8)],
            ),
            (
                "a skipped record does not break contiguity",
                vec![
                    rec(0, 8192, 4096, 0),
                    rec(4096, 0, 4096, FIEMAP_EXTENT_DELALLOC),
                    rec(8192, 12288, 4096, 0),
                ],
                vec![ext(16, 16)],
            ),
            (
                "only delalloc: nothing",
                vec![rec(0, 0, 4096, FIEMAP_EXTENT_DELALLOC)],
                vec![],
            ),
            ("zero length dropped", vec![rec(0, 8192, 0, 0)], vec![]),
            (
                "short tail rounds up",
                vec![rec(0, 8192, 100, 0)],
                vec![ext(16, 1)],
            ),
            (
                "unaligned start rounds out",
                vec![rec(0, 8192 + 500, 24, 0)],
                vec![ext(16, 2)],
            ),
            (
                "tails that share a sector: counted once",
                vec![rec(0, 8192, 100, 0), rec(4096, 8192 + 200, 100, 0)],
                vec![ext(16, 1)],
            ),
            (
                "touching but not contiguous in logical order: kept apart",
                vec![
                    rec(0, 8192, 4096, 0),
                    rec(4096, MIB, 4096, 0),
                    rec(8192, 12288, 4096, 0),
                ],
                vec![ext(16, 8), ext(2048, 8), ext(24, 8)],
            ),
            (
                "a reflinked repeat is dropped",
                vec![
                    rec(0, 8192, 4096, 0),
                    rec(4096, MIB, 4096, 0),
                    rec(8192, 8192, 4096, 0),
                ],
                vec![ext(16, 8), ext(2048, 8)],
            ),
            (
                "a partial repeat is clipped, the new part kept",
                vec![
                    rec(0, 8192, 8192, 0),
                    rec(8192, MIB, 4096, 0),
                    rec(12288, 12288, 8192, 0),
                ],
                vec![ext(16, 16), ext(2048, 8), ext(32, 8)],
            ),
            (
                "a repeat spanning two earlier extents is split around them",
                vec![
                    rec(0, 8192, 4096, 0),
                    rec(4096, 32768, 4096, 0),
                    rec(8192, MIB, 4096, 0),
                    rec(12288, 0, 65536, 0),
                ],
                vec![
                    ext(16, 8),
                    ext(64, 8),
                    ext(2048, 8),
                    ext(0, 16),
                    ext(24, 40),
                    ext(72, 56),
                ],
            ),
            (
                "the same block twice in a row",
                vec![rec(0, 8192, 4096, 0), rec(4096, 8192, 4096, 0)],
                vec![ext(16, 8)],
            ),
            (
                "the top of the address space does not wrap",
                vec![rec(0, u64::MAX - 511, 4096, 0), rec(4096, 0, 512, 0)],
                vec![ext(u64::MAX >> 9, 8), ext(0, 1)],
            ),
        ];
        for (name, raw, want) in cases {
            assert_eq!(merge(&raw), want, "{name}");
            check_merge(&raw, &[1, 1, 2]);
        }
    }

    #[test]
    fn libdm_groups_are_reproduced() {
        // Aligned ext4-like layout: merging matches libdm's sector arithmetic
        // (start = physical >> 9, len = summed length >> 9).
        let raw = [
            rec(0, 100 * 4096, 32 * 4096, 0),
            rec(32 * 4096, 132 * 4096, 16 * 4096, 0),
            rec(48 * 4096, 500 * 4096, 4096, 0),
            rec(49 * 4096, 7 * 4096, 4096, FIEMAP_EXTENT_LAST),
        ];
        assert_eq!(merge(&raw), vec![ext(800, 384), ext(4000, 8), ext(56, 8)]);
    }

    /// Records shaped like real ones (contiguous runs, repeats, unaligned
    /// tails, unmapped records) so merges and clips actually happen.
    fn random_records(rng: &mut Rng, n: usize) -> Vec<RawExtent> {
        let mut out: Vec<RawExtent> = Vec::with_capacity(n);
        let mut logical = 0;
        for _ in 0..n {
            let length = match rng.below(4) {
                0 => rng.below(2000),
                _ => (1 + rng.below(64)) * 4096,
            };
            let physical = match (out.last(), rng.below(4)) {
                (Some(p), 0 | 1) => p.physical + p.length,
                (Some(_), 2) => {
                    out[rng.below(out.len() as u64) as usize].physical + rng.below(8192)
                }
                _ => rng.below(1 << 24),
            };
            let flags = match rng.below(10) {
                0 => FIEMAP_EXTENT_DELALLOC,
                1 => FIEMAP_EXTENT_UNKNOWN,
                _ => 0,
            };
            out.push(rec(logical, physical, length, flags));
            logical += length + rng.below(2) * 4096;
        }
        out
    }

    #[test]
    fn merge_properties_random() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..2000 {
            let n = (round % 40) as usize;
            let raw = random_records(&mut rng, n);
            let splits: Vec<usize> = (0..rng.below(5))
                .map(|_| rng.below(n as u64 + 1) as usize)
                .collect();
            check_merge(&raw, &splits);
        }
    }
}
