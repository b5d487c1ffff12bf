//! The dm-stats message protocol: `@stats_list` replies, the `DMS_GROUP`
//! group descriptor kept in a leader's aux_data, and the messages we send.
//! Pure code: no I/O here, so it can be fuzzed.

use crate::extent::Extent;

pub type RegionId = u64;

/// One line of an `@stats_list` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub id: RegionId,
    pub start: u64,
    pub len: u64,
    pub step: u64,
    pub program_id: String,
    /// As the kernel prints it: unescaped, `-` when empty.
    pub aux_data: String,
    pub precise: bool,
    /// Histogram boundaries, empty when the region has none.
    pub histogram: Vec<u64>,
}

impl Region {
    pub fn extent(&self) -> Extent {
        Extent { start: self.start, len: self.len }
    }

    /// The line the kernel would print for this region (without the newline).
    pub fn to_line(&self) -> String {
        todo!()
    }
}

/// A line of an `@stats_list` reply that could not be read as a region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number in the reply.
    pub line_no: usize,
    /// Why it was skipped, for the log.
    pub reason: &'static str,
}

/// Parse an `@stats_list` reply. Lines that do not parse are skipped, never fatal.
pub fn parse_list(reply: &str) -> (Vec<Region>, Vec<SkippedLine>) {
    let _ = reply;
    todo!()
}

/// How the alias is written in a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `DMS_GROUP=alias:members#user` (lvm2 <= 2.03.22, Debian 12).
    Bare,
    /// `DMS_GROUP="alias":members#user` (lvm2 >= 2.03.23).
    Quoted,
}

/// The group descriptor stored in the aux_data of a group's leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub alias: String,
    /// Ascending, no duplicates; the first is the leader.
    pub members: Vec<RegionId>,
    /// The user's own aux_data after `#`, empty when it was `-`.
    pub user: String,
    pub dialect: Dialect,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("group descriptor has no ':' after the alias")]
    NoSeparator,
    #[error("group descriptor member list is malformed: {0:?}")]
    BadMembers(String),
    #[error("group descriptor names no member")]
    Empty,
}

impl Descriptor {
    /// `Ok(None)` when the aux_data holds no descriptor at all.
    pub fn parse(aux_data: &str) -> Result<Option<Descriptor>, DescriptorError> {
        let _ = aux_data;
        todo!()
    }

    pub fn leader(&self) -> Option<RegionId> {
        self.members.first().copied()
    }

    /// The aux_data text (unescaped) in this descriptor's dialect.
    pub fn format(&self) -> String {
        todo!()
    }
}

/// `1,3-5,9`: ascending, `M-N` for runs.
pub fn format_members(members: &[RegionId]) -> String {
    let _ = members;
    todo!()
}

pub fn parse_members(list: &str) -> Result<Vec<RegionId>, DescriptorError> {
    let _ = list;
    todo!()
}

/// Escape one message argument for the kernel's argument splitter.
pub fn escape(arg: &str) -> String {
    let _ = arg;
    todo!()
}

/// `@stats_list [<program_id>]`
pub fn msg_list(program_id: Option<&str>) -> String {
    let _ = program_id;
    todo!()
}

/// `@stats_create <start>+<len> /1 [<n> precise_timestamps histogram:<b>] <program_id> -`,
/// options and program_id copied from `template` (the group's leader).
pub fn msg_create(extent: Extent, template: &Region) -> String {
    let _ = (extent, template);
    todo!()
}

/// `@stats_delete <id>`
pub fn msg_delete(id: RegionId) -> String {
    let _ = id;
    todo!()
}

/// `@stats_set_aux <id> <aux>`; `aux` unescaped, `-` when empty.
pub fn msg_set_aux(id: RegionId, aux: &str) -> String {
    let _ = (id, aux);
    todo!()
}

/// The region id in an `@stats_create` reply.
pub fn parse_create_reply(reply: &str) -> Option<RegionId> {
    let _ = reply;
    todo!()
}
