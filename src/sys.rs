//! The bottom layer: every raw kernel call and every line of unchecked code.
//! The crate's lints (Cargo.toml `[lints]`) deny unchecked code; the files
//! of this folder alone allow it, each block with a SAFETY comment, and each ABI
//! beside tests of its layout.
//!
//! - [`dm`]: the device-mapper ioctl ABI (`struct dm_ioctl`) on
//!   `/dev/mapper/control`, and the kernel's [`DmDevice`](dm::DmDevice).
//! - [`fiemap`]: the FIEMAP ioctl ABI, a file's raw extent records.
//! - `signals`: the stop signals, blocked and seen through a `signalfd`.
//! - `process`: the inherited descriptor, detaching, the `/proc` scans.
//! - `raw`: the system calls rustix does not publish (signal mask,
//!   `signalfd4`, fork, exec), one small asm entry per architecture.
//!
//! Above it, nothing calls the kernel but through rustix's safe calls
//! (`fstat`, inotify, `poll`, the syslog socket).

pub(crate) mod dm;
pub(crate) mod fiemap;
mod process;
mod raw;
mod signals;

pub use process::{
    adopt_fd, close_stray_fds, detach, open_elsewhere, raw, spawn_detached, DETACHED_ENV,
};
pub use signals::{block_stop_signals, stop_fd, stop_signal};
