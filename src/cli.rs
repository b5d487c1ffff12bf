//! The command line, compatible with lvm2's dmfilemapd:
//! `dmfilemapd <fd> <group_id> <abs_path> <mode> [<foreground>[<verbose>]]`.

/// TODO(helper E)
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    #[error("Wrong number of arguments.")]
    WrongCount,
}
