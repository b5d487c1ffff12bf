//! The `DMS_GROUP` group descriptor that a filemap group's leader keeps in
//! its aux_data: `DMS_GROUP=alias:members#user` as lvm2 <= 2.03.22 writes
//! it, `DMS_GROUP="alias":members#user` as later releases do. Pure text.

use super::list::{excerpt, number, RegionId};
use super::message::{escape, MessageError};

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
    #[error("group descriptor names more than {MAX_MEMBERS} members")]
    TooManyMembers,
}

pub(crate) const TAG: &str = "DMS_GROUP=";

/// Far beyond what dm-stats' memory cap allows on any machine (each region
/// costs tens of KiB of kernel memory), yet it bounds what a hostile range
/// like `0-4294967295` makes us allocate.
#[cfg(not(fuzzing))]
pub(crate) const MAX_MEMBERS: usize = 1 << 20;
/// Under cargo-fuzz the same paths with a smaller cap: an input naming a
/// million members costs milliseconds, and such inputs slowed the
/// descriptor targets a hundredfold (docs/measurements.md, fuzzing depth).
#[cfg(fuzzing)]
pub(crate) const MAX_MEMBERS: usize = 1 << 12;

impl Descriptor {
    /// `Ok(None)` when the aux_data holds no descriptor at all.
    ///
    /// Like libdm, the tag is found anywhere in the aux_data and any text
    /// before it is not kept (libdm drops it too when it writes back).
    /// Quoted: the alias runs from the opening `"` to the first `":`, so it
    /// may hold spaces, colons and quotes (libdm stops at the first `:`).
    /// Bare: the alias runs to the first `:` and cannot start with `"`.
    /// The members run to the first `#` after them; the rest is user data.
    pub fn parse(aux_data: &str) -> Result<Option<Descriptor>, DescriptorError> {
        let Some(at) = aux_data.find(TAG) else {
            return Ok(None);
        };
        let body = &aux_data[at + TAG.len()..];
        let (alias, rest, dialect) = match body.strip_prefix('"') {
            Some(quoted) => {
                let (alias, rest) = quoted
                    .split_once("\":")
                    .ok_or(DescriptorError::NoSeparator)?;
                (alias, rest, Dialect::Quoted)
            }
            None => {
                let (alias, rest) = body.split_once(':').ok_or(DescriptorError::NoSeparator)?;
                (alias, rest, Dialect::Bare)
            }
        };
        let (members, user) = rest.split_once('#').unwrap_or((rest, "-"));
        let members = parse_members(members)?;
        let user = if user == "-" { "" } else { user };
        Ok(Some(Descriptor {
            alias: alias.to_owned(),
            members,
            user: user.to_owned(),
            dialect,
        }))
    }

    pub fn leader(&self) -> Option<RegionId> {
        self.members.first().copied()
    }

    /// The aux_data text (unescaped) in this descriptor's dialect.
    ///
    /// An empty alias is written `DMS_GROUP=:` in the bare dialect, as both
    /// lvm2 dialects write a group without alias; a quoted descriptor keeps
    /// its `""` so that what was read is written back byte for byte.
    pub fn format(&self) -> String {
        let members = format_members(&self.members);
        let user = if self.user.is_empty() {
            "-"
        } else {
            &self.user
        };
        match self.dialect {
            Dialect::Bare => format!("{TAG}{}:{members}#{user}", self.alias),
            Dialect::Quoted => format!("{TAG}\"{}\":{members}#{user}", self.alias),
        }
    }
}

/// Why an alias cannot be written in a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// The kernel prints aux_data raw: a newline would split the
    /// `@stats_list` line, other control bytes confuse every reader.
    #[error("alias {0:?} holds a control character")]
    Control(String),
    /// No dmstats reads back a group whose alias holds a `:`.
    #[error("alias {0:?} holds a ':', which no dmstats reads back")]
    Colon(String),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// The dialect a new group's descriptor is written in: quoted
/// (`DMS_GROUP="alias":...`), always. The one place this is chosen.
///
/// Why (measured in the VM, tests/vm/README.md's table): no form is read
/// back intact by both lvm2 generations. Debian 13's dmstats (2.03.31)
/// reads the bare form as a quoted one, drops the alias' first and last
/// character, and its `update_filemap` stores the damage. Debian 12's
/// (2.03.16) shows the quoted alias with its quotes but keeps the bytes
/// through `update_filemap`. So quoted loses nothing on either, and `map`
/// matters most where dmstats starts no daemon (lvm2 >= 2.03.21, the
/// quoted readers).
pub const NEW_GROUP_DIALECT: Dialect = Dialect::Quoted;

impl Descriptor {
    /// The descriptor of a new group with no user data, in
    /// [`NEW_GROUP_DIALECT`]; refused when the alias would not read back
    /// as given or could not be sent.
    pub fn for_new_group(alias: &str, members: Vec<RegionId>) -> Result<Descriptor, AliasError> {
        if alias.chars().any(char::is_control) {
            return Err(AliasError::Control(excerpt(alias)));
        }
        // Neither dmstats reads a group whose alias holds a colon, in
        // either form (not even the one that wrote it).
        if alias.contains(':') {
            return Err(AliasError::Colon(excerpt(alias)));
        }
        let desc = Descriptor {
            alias: alias.to_owned(),
            members,
            user: String::new(),
            dialect: NEW_GROUP_DIALECT,
        };
        // Without a colon the quoted alias cannot hold the `":` that ends
        // it, so it reads back as written; only the kernel's argument
        // splitter (byte 0xA0) is left to refuse.
        escape(&desc.format())?;
        Ok(desc)
    }
}

/// `1,3-5,9`: ascending, `M-N` for runs.
///
/// A run of two is a range too (`3-4`), as libdm writes it. The input is
/// expected ascending without duplicates; it is written in the order given.
pub fn format_members(members: &[RegionId]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < members.len() {
        let first = members[i];
        let mut last = first;
        while i + 1 < members.len() && last.checked_add(1) == Some(members[i + 1]) {
            i += 1;
            last = members[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if first == last {
            out.push_str(&first.to_string());
        } else {
            out.push_str(&format!("{first}-{last}"));
        }
        i += 1;
    }
    out
}

/// Read a member list: comma-separated ids and inclusive `M-N` ranges.
///
/// Items are strict (digits, no spaces, no empty items, `M <= N`), but like
/// libdm's bitset parser their order does not matter: the result is the
/// ascending set they name. At most `MAX_MEMBERS` ids, duplicates included.
pub fn parse_members(list: &str) -> Result<Vec<RegionId>, DescriptorError> {
    let bad = || DescriptorError::BadMembers(excerpt(list));
    if list.is_empty() {
        return Err(DescriptorError::Empty);
    }
    let mut members = Vec::new();
    for item in list.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (number(a).ok_or_else(bad)?, number(b).ok_or_else(bad)?),
            None => {
                let n = number(item).ok_or_else(bad)?;
                (n, n)
            }
        };
        if first > last {
            return Err(bad());
        }
        if last - first >= (MAX_MEMBERS - members.len()) as u64 {
            return Err(DescriptorError::TooManyMembers);
        }
        members.extend(first..=last);
    }
    members.sort_unstable();
    members.dedup();
    Ok(members)
}
