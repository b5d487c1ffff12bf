//! Extents: where a file's data sits on the device, in 512-byte sectors,
//! and how raw FIEMAP records become the extents a filemap group mirrors.

/// dm-stats counts in 512-byte sectors whatever the device's block size.
pub const SECTOR_SHIFT: u32 = 9;

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
pub const FIEMAP_EXTENT_UNKNOWN: u32 = 0x0000_0002;
pub const FIEMAP_EXTENT_DELALLOC: u32 = 0x0000_0004;

/// Folds FIEMAP records, fed in logical order batch after batch, into extents.
/// TODO(helper B): libdm's merge rule; result independent of batch boundaries.
#[derive(Debug, Default)]
pub struct Merger {
    out: Vec<Extent>,
}

impl Merger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, raw: &RawExtent) {
        let _ = raw;
        todo!()
    }

    pub fn finish(self) -> Vec<Extent> {
        self.out
    }
}

/// Merge a whole FIEMAP record list at once.
pub fn merge(raw: &[RawExtent]) -> Vec<Extent> {
    let mut m = Merger::new();
    raw.iter().for_each(|r| m.push(r));
    m.finish()
}
