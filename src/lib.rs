//! dmfilemapd: keep a dm-stats filemap group in sync with the extents of a file.
//!
//! The daemon is a loop of four steps: Scan (the file's extents, through
//! FIEMAP) -> Diff (a pure plan that tiles them) -> Apply (the engine, the
//! only code that changes a group) -> Sleep (inotify, with a timeout).
//! The folders are the layers, and dependencies point down:
//!
//! | layer | what it holds |
//! |---|---|
//! | `cmd/` | the process roles, the command line, start-up checks, `map` and `unmap`, [`Error`] |
//! | `daemon/` | the follow loop, the file it follows, the wait |
//! | `engine/` | apply, the ledger of regions we made, recovery marks, group creation and deletion |
//! | `plan/` | pure and fuzzed: the group view, diff, fold |
//! | `sys/` | every raw kernel call and every line of unchecked code |
//! | `dmstats/` | the wire protocol, pure, as bytes ([`Text`]: aliases need not be UTF-8), and the [`Device`] trait |
//! | `extent`, `log` | the vocabulary (sectors, extents) and the log every layer shares |
//! | `testkit/` | feature `testkit` only: the fake kernel and shared checks |
//!
//! docs/design.md says what each layer owns and may not touch. Every
//! module is private; what the integration tests, fuzz/ and
//! `main.rs` use is re-exported here by name, and nothing else is public.

#![warn(unreachable_pub)]

mod cmd;
mod daemon;
mod dmstats;
mod engine;
mod extent;
#[macro_use]
mod log;
mod plan;
mod sys;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use cmd::cli::{
    parse as parse_args, Args, Command, MapArgs, UnmapArgs, UsageError, HELP, USAGE,
};
pub use cmd::{run, Error};
pub use daemon::source::{FileSource, Look, Mode, Scanner, SourceError, Stamp};
pub use daemon::wait::{sleep, Events, Watcher};
pub use daemon::{Daemon, DaemonError, Exit};
pub use dmstats::bounds::{parse as parse_bounds, BoundsError, Histogram, MAX_HISTOGRAM_ARG};
#[cfg(feature = "testkit")]
pub use dmstats::split_args;
pub use dmstats::{
    escape, format_members, msg_create, msg_delete, msg_list, msg_print, msg_set_aux,
    parse_create_reply, parse_list, parse_members, AliasError, Descriptor, Device, DeviceError,
    Dialect, Region, RegionId, Text, NEW_GROUP_DIALECT,
};
pub use engine::map::{
    create_group, delete_group, delete_strays, find_group, list, strays, Created, Deleted,
    FindError, MapError, NewGroup,
};
pub use engine::mark::{fingerprint, first_mark, Mark};
pub use engine::{Engine, EngineError, Outcome, Summary, Warning, BATCH};
#[cfg(feature = "testkit")]
pub use extent::check_merge;
pub use extent::{merge, Extent, RawExtent, FIEMAP_EXTENT_LAST};
#[cfg(feature = "testkit")]
pub use plan::diff::check_tiling;
pub use plan::diff::{diff, Member};
#[cfg(feature = "testkit")]
pub use plan::fold::check_fold;
pub use plan::fold::{choose, Tile};
pub use plan::group::{by_id, leading};
pub use sys::dm::Control;
pub use sys::fiemap::{scan_with, FiemapError};
pub use sys::{
    adopt_fd, block_stop_signals, close_stray_fds, detach, open_elsewhere, raw, spawn_detached,
    stop_fd, stop_signal, DETACHED_ENV,
};
