//! Arbitrary FIEMAP record arrays, split into arbitrary batches: the merge
//! does not depend on the split, yields no empty and no overlapping extents,
//! and skips UNKNOWN/DELALLOC records. The scan loop, fed by a stand-in
//! kernel that serves the records from `fm_start` in batches of arbitrary
//! size, gives the same extents as one merge of all records.
#![no_main]
use dmfilemapd::{check_merge, merge, RawExtent, FIEMAP_EXTENT_LAST};
use dmfilemapd::scan_with;
use libfuzzer_sys::fuzz_target;

/// Bytes per record: flags/shape, length, physical, logical gap, batch size.
const RECORD: usize = 16;

struct Input {
    records: Vec<RawExtent>,
    /// Batch sizes for the split check.
    splits: Vec<usize>,
    /// Per-call record caps for the stand-in kernel.
    caps: Vec<usize>,
}

/// Shapes the bytes into records that look like a file system's (runs that
/// continue the previous record, repeats of earlier ranges, unaligned
/// lengths) as well as arbitrary ones, so merging and clipping both happen.
fn decode(data: &[u8]) -> Input {
    let mut records: Vec<RawExtent> = Vec::new();
    let (mut splits, mut caps) = (Vec::new(), Vec::new());
    let mut logical = 0u64;
    let mut batch = 0;
    for c in data.chunks_exact(RECORD).take(4096) {
        let shape = c[0];
        let l = u32::from_le_bytes([c[1], c[2], c[3], c[4]]);
        let p = u64::from_le_bytes([c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12]]);
        let gap = u64::from(u16::from_le_bytes([c[13], c[14]]));
        let length = match shape >> 6 {
            0 => u64::from(l),
            1 => u64::from(l & 0xffff) * 4096,
            2 => u64::from(l) << 9,
            _ => p.rotate_left(l % 64),
        };
        let physical = match ((shape >> 3) & 3, records.last()) {
            (0, Some(prev)) => prev.physical.wrapping_add(prev.length),
            (2, Some(_)) => records[p as usize % records.len()]
                .physical
                .wrapping_add(u64::from(l % 8192)),
            (3, _) => p % (1 << 30),
            _ => p,
        };
        records.push(RawExtent {
            logical,
            physical,
            length,
            flags: u32::from(shape & 7),
        });
        logical = logical.saturating_add(length).saturating_add(gap * 4096);
        batch += 1;
        if shape & 0x20 != 0 {
            splits.push(batch);
            batch = 0;
        }
        caps.push(1 + usize::from(c[15] % 32));
    }
    Input {
        records,
        splits,
        caps,
    }
}

/// The records as a kernel would serve them: ascending, disjoint logical
/// ranges that fit in a file, LAST only on the final one.
fn as_file(records: &[RawExtent]) -> Vec<RawExtent> {
    let mut logical = 0u64;
    let mut out: Vec<RawExtent> = records
        .iter()
        .map(|r| {
            let length = r.length % (1 << 40);
            let rec = RawExtent {
                logical,
                length,
                flags: r.flags & !FIEMAP_EXTENT_LAST,
                ..*r
            };
            logical += length + (r.logical % 3) * 4096;
            rec
        })
        .collect();
    if let Some(last) = out.last_mut() {
        last.flags |= FIEMAP_EXTENT_LAST;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let input = decode(data);
    check_merge(&input.records, &input.splits);

    let file = as_file(&input.records);
    let mut caps = input.caps.iter().cycle();
    let served = scan_with(|start, out| {
        let from = file
            .iter()
            .position(|r| r.logical + r.length > start)
            .unwrap_or(file.len());
        out.extend(file[from..].iter().take(*caps.next().unwrap_or(&1)));
        Ok(())
    });
    assert_eq!(
        served.unwrap(),
        merge(&file),
        "scan loop differs from one merge"
    );
});
