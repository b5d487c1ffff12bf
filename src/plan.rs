//! The pure core between a scan and an update: what the group is
//! ([`group`], a view of one `@stats_list`), how its regions should change
//! to tile the file's extents ([`diff`]), and how the tiles are kept within
//! the region budget ([`fold`]). No device, no state: functions of their
//! arguments, fuzzed and tabled.

pub(crate) mod diff;
pub(crate) mod fold;
pub(crate) mod group;
