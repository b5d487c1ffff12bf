//! The FIEMAP ioctl ABI: hand-laid `struct fiemap` and `struct fiemap_extent`,
//! and a scan of an open file into [`Extent`]s. One of the two places with `unsafe`.

use rustix::fd::AsFd;

use crate::extent::Extent;

#[derive(Debug, thiserror::Error)]
pub enum FiemapError {
    #[error("FS_IOC_FIEMAP failed: {0}")]
    Ioctl(rustix::io::Errno),
}

/// TODO(helper B): FS_IOC_FIEMAP with FIEMAP_FLAG_SYNC, >= 1000 extents a call,
/// records folded by [`crate::extent::Merger`].
pub fn scan<Fd: AsFd>(fd: Fd) -> Result<Vec<Extent>, FiemapError> {
    let _ = fd;
    todo!()
}
