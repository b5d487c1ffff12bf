//! What the engine noticed and worked around, one value each: the caller
//! logs it (its `Display` is the log line) and the tests match it.
//!
//! Owns: [`Warning`]. Touches: nothing.

use std::fmt;

use crate::dmstats::{self, RegionId};
use crate::engine::EngineError;

#[derive(Debug)]
pub enum Warning {
    /// A line of a `@stats_list` reply that does not parse (once each).
    UnreadableLine {
        line_no: usize,
        reason: &'static str,
    },
    /// Members of the group that someone else deleted; the update drops them.
    MembersGone {
        group: RegionId,
        regions: Vec<RegionId>,
    },
    /// A member other than the leader still holds a descriptor naming
    /// itself (an old leader); the update strips it.
    StaleDescriptor { group: RegionId },
    /// A region we made that no descriptor names (a rival updater, a
    /// failed repair), deleted.
    OrphanDeleted(RegionId),
    /// A region a stopped update left outside the group, deleted by its mark.
    StrayDeleted(RegionId),
    /// Regions a stopped update made for the group, adopted by their marks.
    Adopted {
        group: RegionId,
        regions: Vec<RegionId>,
    },
    /// A region to delete (an orphan, a stray) that would not go.
    NotDeleted {
        id: RegionId,
        error: Box<EngineError>,
    },
    /// The first region of a `map` stopped before its group's first
    /// descriptor, deleted by `unmap FILE`.
    FirstRegionDeleted(RegionId),
}

impl Warning {
    pub(crate) fn not_deleted(id: RegionId, error: EngineError) -> Warning {
        Warning::NotDeleted {
            id,
            error: Box::new(error),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = dmstats::format_members;
        match self {
            Warning::UnreadableLine { line_no, reason } => {
                write!(f, "@stats_list line {line_no} skipped: {reason}")
            }
            Warning::MembersGone { group, regions } => write!(
                f,
                "group {group}: member regions {} deleted by someone else",
                ids(regions)
            ),
            Warning::StaleDescriptor { group } => write!(
                f,
                "group {group}: a member still holds an old descriptor; stripping it"
            ),
            Warning::OrphanDeleted(id) => write!(
                f,
                "region {id} of ours was left outside the group (a rival updater, a failed repair): deleted"
            ),
            Warning::StrayDeleted(id) => write!(
                f,
                "region {id} was left outside the group by a stopped update: deleted"
            ),
            Warning::Adopted { group, regions } => write!(
                f,
                "group {group}: regions {} were left outside it by a stopped update: adopted",
                ids(regions)
            ),
            Warning::NotDeleted { id, error } => {
                write!(f, "region {id} is outside the group and will not go: {error}")
            }
            Warning::FirstRegionDeleted(id) => write!(
                f,
                "region {id} was left by a `map` stopped before its group's first descriptor: deleted"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmstats::DeviceError;

    /// The log lines, word for word as they were when warnings were text.
    #[test]
    fn the_log_lines() {
        let error = EngineError::Device {
            msg: "@stats_delete 7".into(),
            source: DeviceError::Os(rustix::io::Errno::IO),
        };
        let cases = [
            (
                Warning::UnreadableLine {
                    line_no: 2,
                    reason: "why",
                },
                "@stats_list line 2 skipped: why".to_string(),
            ),
            (
                Warning::MembersGone {
                    group: 0,
                    regions: vec![1, 2, 3, 5],
                },
                "group 0: member regions 1-3,5 deleted by someone else".into(),
            ),
            (
                Warning::StaleDescriptor { group: 4 },
                "group 4: a member still holds an old descriptor; stripping it".into(),
            ),
            (
                Warning::OrphanDeleted(7),
                "region 7 of ours was left outside the group (a rival updater, a failed repair): deleted".into(),
            ),
            (
                Warning::StrayDeleted(7),
                "region 7 was left outside the group by a stopped update: deleted".into(),
            ),
            (
                Warning::Adopted {
                    group: 0,
                    regions: vec![8, 9],
                },
                "group 0: regions 8-9 were left outside it by a stopped update: adopted".into(),
            ),
            (
                Warning::FirstRegionDeleted(7),
                "region 7 was left by a `map` stopped before its group's first descriptor: deleted"
                    .into(),
            ),
        ];
        for (w, line) in cases {
            assert_eq!(w.to_string(), line);
        }
        let line = format!("region 7 is outside the group and will not go: {error}");
        let w = Warning::NotDeleted {
            id: 7,
            error: Box::new(error),
        };
        assert_eq!(w.to_string(), line);
    }
}
