//! The FIEMAP ioctl ABI: hand-laid `struct fiemap` and `struct fiemap_extent`,
//! and a scan of an open file into [`Extent`]s. One of the three modules
//! allowed unchecked code; every such block says why in a SAFETY comment.
//!
//! Owns: `struct fiemap` and the FS_IOC_FIEMAP call. Touches: no group; the
//! records go to [`crate::extent`].
// SAFETY: one of the three modules allowed unsafe code (the FS_IOC_FIEMAP ioctl on a hand-laid repr(C) buffer);
// each block states its obligations beside it.
#![allow(unsafe_code)]

use rustix::fd::AsFd;
use rustix::io::Errno;
use rustix::ioctl::{opcode, Opcode, Updater};

use crate::extent::{Extent, Merger, RawExtent, FIEMAP_EXTENT_LAST};

#[derive(Debug, thiserror::Error)]
pub enum FiemapError {
    #[error("FS_IOC_FIEMAP failed: {0}")]
    Ioctl(#[source] rustix::io::Errno),
    #[error("the file system does not report extents (no FIEMAP support)")]
    Unsupported,
    #[error("the file system refused FIEMAP flags {0:#x}")]
    BadFlags(u32),
    #[error("FIEMAP made no progress past byte {0}")]
    Stuck(u64),
}

/// `struct fiemap` from `<linux/fiemap.h>`, without its flexible
/// `fm_extents[]`, which follows it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fiemap {
    pub fm_start: u64,
    pub fm_length: u64,
    pub fm_flags: u32,
    pub fm_mapped_extents: u32,
    pub fm_extent_count: u32,
    pub fm_reserved: u32,
}

/// `struct fiemap_extent` from `<linux/fiemap.h>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FiemapExtent {
    pub fe_logical: u64,
    pub fe_physical: u64,
    pub fe_length: u64,
    pub fe_reserved64: [u64; 2],
    pub fe_flags: u32,
    pub fe_reserved: [u32; 3],
}

pub(crate) const FS_IOC_FIEMAP: Opcode = opcode::read_write::<Fiemap>(b'f', 11);
/// Write dirty data back first, so delayed allocations get addresses. Not
/// used: forcing writeback on every scan doubled a slow appender's write
/// requests and split its file into many more extents. Data still in
/// delayed allocation is reported instead ([`Scan::unmapped`]) and looked
/// at again once the kernel's own writeback has placed it.
#[allow(dead_code)] // the ABI's record, checked against linux-raw-sys in the tests
pub(crate) const FIEMAP_FLAG_SYNC: u32 = 0x0000_0001;
/// Records per call: far more than most files have, so one call usually does.
pub(crate) const BATCH: usize = 1024;

/// A `struct fiemap` with room for `N` records, as the kernel expects it.
#[repr(C)]
struct Request<const N: usize> {
    head: Fiemap,
    extents: [FiemapExtent; N],
}

/// One look at a file's extents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    pub extents: Vec<Extent>,
    /// Where in the file (bytes) the first range with no address yet
    /// (delayed allocation) starts. Below the file's size it is data that
    /// the extents miss: look again soon. (xfs reserves space past the end
    /// for a growing file and may report it so for minutes.)
    pub unmapped: Option<u64>,
}

/// The file's extents on its device: FIEMAP (no forced writeback) in
/// batches of [`BATCH`] records, folded by [`Merger`].
pub(crate) fn scan<Fd: AsFd>(fd: Fd) -> Result<Vec<Extent>, FiemapError> {
    scan_full(fd).map(|s| s.extents)
}

/// [`scan`], saying too whether data in delayed allocation was left out.
pub(crate) fn scan_full<Fd: AsFd>(fd: Fd) -> Result<Scan, FiemapError> {
    scan_batched::<BATCH>(fd.as_fd())
}

fn scan_batched<const N: usize>(fd: rustix::fd::BorrowedFd<'_>) -> Result<Scan, FiemapError> {
    let mut req = Box::new(Request::<N> {
        head: Fiemap::default(),
        extents: [FiemapExtent::default(); N],
    });
    scan_records(|start, out| {
        req.head = Fiemap {
            fm_start: start,
            fm_length: u64::MAX,
            fm_flags: 0,
            fm_extent_count: N as u32,
            ..Fiemap::default()
        };
        // SAFETY: FS_IOC_FIEMAP takes a `struct fiemap` followed by
        // `fm_extent_count` records; `Request<N>` is exactly that with
        // `fm_extent_count` = N, and it lives across the call.
        let done = unsafe {
            rustix::ioctl::ioctl(fd, Updater::<FS_IOC_FIEMAP, Request<N>>::new(&mut req))
        };
        done.map_err(|e| match e {
            Errno::OPNOTSUPP | Errno::NOTTY => FiemapError::Unsupported,
            Errno::BADR => FiemapError::BadFlags(req.head.fm_flags),
            e => FiemapError::Ioctl(e),
        })?;
        let n = (req.head.fm_mapped_extents as usize).min(N);
        out.extend(req.extents[..n].iter().map(|e| RawExtent {
            logical: e.fe_logical,
            physical: e.fe_physical,
            length: e.fe_length,
            flags: e.fe_flags,
        }));
        Ok(())
    })
}

/// The scan loop over any FIEMAP source: `fetch(start, batch)` appends the
/// records from byte `start` on. The next batch starts where the last record
/// ended; the scan stops at a record flagged LAST or an empty batch.
pub fn scan_with<F>(fetch: F) -> Result<Vec<Extent>, FiemapError>
where
    F: FnMut(u64, &mut Vec<RawExtent>) -> Result<(), FiemapError>,
{
    scan_records(fetch).map(|s| s.extents)
}

fn scan_records<F>(mut fetch: F) -> Result<Scan, FiemapError>
where
    F: FnMut(u64, &mut Vec<RawExtent>) -> Result<(), FiemapError>,
{
    let mut merger = Merger::new();
    let mut batch = Vec::new();
    let mut start = 0;
    loop {
        batch.clear();
        fetch(start, &mut batch)?;
        merger.extend(&batch);
        let Some(last) = batch.last() else { break };
        if batch.iter().any(|r| r.flags & FIEMAP_EXTENT_LAST != 0) {
            break;
        }
        let next = last.logical.saturating_add(last.length);
        if next <= start {
            return Err(FiemapError::Stuck(start));
        }
        start = next;
    }
    let unmapped = merger.unmapped();
    Ok(Scan {
        extents: merger.finish(),
        unmapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extent::merge;
    use crate::testkit::{rec, Rng};
    use std::io::{Seek, SeekFrom, Write};
    use std::mem::offset_of;

    // Checked at compile time, so that building the tests for a target
    // proves them there (riscv64, powerpc64le: compiled in CI, not run).
    const _: () = {
        assert!(size_of::<Fiemap>() == 32);
        assert!(offset_of!(Fiemap, fm_start) == 0);
        assert!(offset_of!(Fiemap, fm_length) == 8);
        assert!(offset_of!(Fiemap, fm_flags) == 16);
        assert!(offset_of!(Fiemap, fm_mapped_extents) == 20);
        assert!(offset_of!(Fiemap, fm_extent_count) == 24);
        assert!(offset_of!(Fiemap, fm_reserved) == 28);
        assert!(size_of::<FiemapExtent>() == 56);
        assert!(offset_of!(FiemapExtent, fe_logical) == 0);
        assert!(offset_of!(FiemapExtent, fe_physical) == 8);
        assert!(offset_of!(FiemapExtent, fe_length) == 16);
        assert!(offset_of!(FiemapExtent, fe_reserved64) == 24);
        assert!(offset_of!(FiemapExtent, fe_flags) == 40);
        assert!(offset_of!(FiemapExtent, fe_reserved) == 44);
        // The records follow the header with no gap.
        assert!(offset_of!(Request<3>, extents) == 32);
        assert!(size_of::<Request<BATCH>>() == 32 + 56 * BATCH);
        assert!(FS_IOC_FIEMAP as u64 == 0xC020_660B);
    };

    /// The kernel's own values, from its headers via linux-raw-sys.
    /// FS_IOC_FIEMAP encodes `size_of::<struct fiemap>()`, so it checks
    /// the hand-laid header's size; linux-raw-sys 0.12 has no `struct
    /// fiemap` or `struct fiemap_extent` to compare the layouts with.
    const _: () = {
        use linux_raw_sys::ioctl as k;
        assert!(FS_IOC_FIEMAP as u64 == k::FS_IOC_FIEMAP as u64);
        assert!(FIEMAP_FLAG_SYNC == k::FIEMAP_FLAG_SYNC);
        use crate::extent::{FIEMAP_EXTENT_DELALLOC, FIEMAP_EXTENT_UNKNOWN};
        assert!(FIEMAP_EXTENT_LAST == k::FIEMAP_EXTENT_LAST);
        assert!(FIEMAP_EXTENT_UNKNOWN == k::FIEMAP_EXTENT_UNKNOWN);
        assert!(FIEMAP_EXTENT_DELALLOC == k::FIEMAP_EXTENT_DELALLOC);
    };

    /// A FIEMAP stand-in honouring `start` and returning at most `cap`
    /// records a call, LAST on the final one.
    fn serve(
        records: &[RawExtent],
        cap: usize,
    ) -> impl FnMut(u64, &mut Vec<RawExtent>) -> Result<(), FiemapError> + '_ {
        move |start, out| {
            let from = records
                .iter()
                .position(|r| r.logical + r.length > start)
                .unwrap_or(records.len());
            out.extend(records[from..].iter().take(cap));
            Ok(())
        }
    }

    #[test]
    fn scan_loop_follows_batches() {
        let mut records: Vec<RawExtent> = (0..50)
            .map(|i| rec(i * 8192, (i % 7) * 1_000_000 + i * 4096, 4096, 0))
            .collect();
        records.last_mut().unwrap().flags |= FIEMAP_EXTENT_LAST;
        for cap in [1, 2, 3, 7, 49, 50, 1024] {
            assert_eq!(
                scan_with(serve(&records, cap)).unwrap(),
                merge(&records),
                "cap {cap}"
            );
        }
    }

    #[test]
    fn scan_loop_random_batches() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut next = move |n: u64| rng.below(n);
        for round in 0..300 {
            let mut records: Vec<RawExtent> = Vec::new();
            let mut logical = 0;
            for _ in 0..round % 40 {
                let length = match next(3) {
                    0 => next(5000),
                    _ => (1 + next(16)) * 4096,
                };
                let physical = match records.last() {
                    Some(p) if next(2) == 0 => p.physical + p.length,
                    _ => next(1 << 20) * 512,
                };
                records.push(rec(
                    logical,
                    physical,
                    length,
                    [0, 0, 0, 2, 4][next(5) as usize],
                ));
                logical += length + next(2) * 4096;
            }
            if let Some(last) = records.last_mut() {
                last.flags |= FIEMAP_EXTENT_LAST;
            }
            let cap = 1 + next(8) as usize;
            assert_eq!(
                scan_with(serve(&records, cap)).unwrap(),
                merge(&records),
                "{records:?} cap {cap}"
            );
        }
    }

    #[test]
    fn scan_loop_ends() {
        // No records at all.
        assert_eq!(scan_with(serve(&[], 4)).unwrap(), vec![]);
        // No LAST flag: ends on the empty batch after the final record.
        let records = [rec(0, 8192, 4096, 0), rec(4096, 65536, 4096, 0)];
        let mut calls = 0;
        let mut inner = serve(&records, 1);
        let counted = |start, out: &mut Vec<RawExtent>| {
            calls += 1;
            inner(start, out)
        };
        assert_eq!(scan_with(counted).unwrap().len(), 2);
        assert_eq!(calls, 3);
        // LAST stops the scan even if more would come.
        let records = [
            rec(0, 8192, 4096, FIEMAP_EXTENT_LAST),
            rec(4096, 65536, 4096, 0),
        ];
        assert_eq!(scan_with(serve(&records, 1)).unwrap().len(), 1);
        // A source that repeats itself is an error, not a hang.
        let stuck = |_, out: &mut Vec<RawExtent>| {
            out.push(rec(0, 8192, 0, 0));
            Ok(())
        };
        assert!(matches!(scan_with(stuck), Err(FiemapError::Stuck(0))));
        // Errors pass through.
        let failing = |_, _: &mut Vec<RawExtent>| Err(FiemapError::Ioctl(Errno::IO));
        assert!(matches!(
            scan_with(failing),
            Err(FiemapError::Ioctl(Errno::IO))
        ));
    }

    /// A scratch file in /tmp, removed on drop.
    struct Scratch(std::path::PathBuf, std::fs::File);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path =
                std::env::temp_dir().join(format!("dmfilemapd-{name}-{}", std::process::id()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            Scratch(path, file)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The extents hold the data's sectors: exactly on ext4; xfs may add
    /// speculative preallocation past the end of file, which FIEMAP reports
    /// (as unwritten) and libdm maps too.
    fn assert_sectors(f: &std::fs::File, extents: &[Extent], data: u64) {
        let total: u64 = extents.iter().map(|e| e.len).sum();
        const EXT4_SUPER_MAGIC: i64 = 0xef53;
        if rustix::fs::fstatfs(f).unwrap().f_type as i64 == EXT4_SUPER_MAGIC {
            assert_eq!(total, data, "{extents:?}");
        } else {
            assert!(total >= data, "{total} < {data}: {extents:?}");
        }
    }

    /// FIEMAP on a real file of this machine's temporary directory, skipped
    /// (with the reason printed) where the file system has no FIEMAP.
    fn scan_or_skip(f: &std::fs::File) -> Option<Vec<Extent>> {
        match scan(f) {
            Err(FiemapError::Unsupported) => {
                eprintln!("skipped: {} has no FIEMAP", std::env::temp_dir().display());
                None
            }
            r => Some(r.unwrap()),
        }
    }

    #[test]
    fn scan_real_files() {
        let mut s = Scratch::new("scan");
        let Some(empty) = scan_or_skip(&s.1) else {
            return;
        };
        assert_eq!(empty, vec![]);

        // Unsynced data: either placed already or reported as unmapped;
        // once written back, it has addresses.
        s.1.write_all(&vec![7u8; 1 << 20]).unwrap();
        let early = scan_full(&s.1).unwrap();
        let placed: u64 = early.extents.iter().map(|e| e.len).sum();
        assert!(placed == 2048 || early.unmapped == Some(0), "{early:?}");
        s.1.sync_all().unwrap();
        let one = scan(&s.1).unwrap();
        assert_sectors(&s.1, &one, 2048);

        // A hole, then more data: both runs counted, nothing for the hole.
        s.1.seek(SeekFrom::Start(64 << 20)).unwrap();
        s.1.write_all(&vec![9u8; 4096]).unwrap();
        s.1.sync_all().unwrap();
        let two = scan(&s.1).unwrap();
        assert_sectors(&s.1, &two, 2048 + 8);

        // A short tail still counts as a whole sector (of the block).
        let t = Scratch::new("tail");
        (&t.1).write_all(b"x").unwrap();
        t.1.sync_all().unwrap();
        let tail = scan(&t.1).unwrap();
        assert!(
            !tail.is_empty() && tail.iter().all(|e| e.len > 0),
            "{tail:?}"
        );
    }

    #[test]
    fn scan_many_records() {
        // One 4 KiB block every 8 KiB: ~2500 FIEMAP records, several batches.
        let s = Scratch::new("many");
        if scan_or_skip(&s.1).is_none() {
            return;
        }
        let block = [5u8; 4096];
        for i in 0..2500u64 {
            rustix::io::pwrite(&s.1, &block, i * 8192).unwrap();
        }
        s.1.sync_all().unwrap();
        let full = scan(&s.1).unwrap();
        assert_sectors(&s.1, &full, 2500 * 8);
        let small = scan_batched::<7>(rustix::fd::AsFd::as_fd(&s.1)).unwrap();
        assert_eq!(small.extents, full);
        eprintln!("2500 blocks with holes: {} extents", full.len());
    }

    #[test]
    fn scan_unsupported() {
        // tmpfs has no FIEMAP; a character device has no extents at all.
        if let Ok(f) = std::fs::File::create(format!("/dev/shm/dmfilemapd-{}", std::process::id()))
        {
            let r = scan(&f);
            let _ = std::fs::remove_file(format!("/dev/shm/dmfilemapd-{}", std::process::id()));
            match r {
                Err(FiemapError::Unsupported) => {}
                other => eprintln!("/dev/shm gave {other:?}: not tmpfs here?"),
            }
        }
        let null = std::fs::File::open("/dev/null").unwrap();
        assert!(
            matches!(scan(&null), Err(FiemapError::Unsupported)),
            "{:?}",
            scan(&null)
        );
    }
}
