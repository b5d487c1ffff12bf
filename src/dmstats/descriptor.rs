//! The `DMS_GROUP` group descriptor that a filemap group's leader keeps in
//! its aux_data: `DMS_GROUP=alias:members#user` as lvm2 <= 2.03.22 writes
//! it, `DMS_GROUP="alias":members#user` as later releases do. Bytes: an
//! alias is a file name or what `--alias` was given, neither need be UTF-8.

use super::list::{number, RegionId};
use super::message::{escape, MessageError};
use super::text::{excerpt, find, split_once, Text};

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
    pub alias: Text,
    /// Ascending, no duplicates; the first is the leader.
    pub members: Vec<RegionId>,
    /// The user's own aux_data after `#`, empty when it was `-`.
    pub user: Text,
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
    /// Bare: the alias runs to the first `:`. A bare alias may start with
    /// `"` too (Debian 12's dmstats writes a file named `"x` as
    /// `DMS_GROUP="x:...`): with no `":` after it, it is read bare.
    /// The members run to the first `#` after them; the rest is user data.
    /// Either way [`format`](Self::format) writes the same bytes back.
    pub fn parse(aux_data: impl AsRef<[u8]>) -> Result<Option<Descriptor>, DescriptorError> {
        let aux_data = aux_data.as_ref();
        let Some(at) = find(aux_data, TAG.as_bytes()) else {
            return Ok(None);
        };
        let body = &aux_data[at + TAG.len()..];
        let quoted = body.strip_prefix(b"\"").and_then(|q| split_once(q, b"\":"));
        let (alias, rest, dialect) = match quoted {
            Some((alias, rest)) => (alias, rest, Dialect::Quoted),
            None => {
                let (alias, rest) = split_once(body, b":").ok_or(DescriptorError::NoSeparator)?;
                (alias, rest, Dialect::Bare)
            }
        };
        let (members, user) = split_once(rest, b"#").unwrap_or((rest, b"-"));
        let members = parse_members(members)?;
        let user: &[u8] = if user == b"-" { b"" } else { user };
        Ok(Some(Descriptor {
            alias: alias.into(),
            members,
            user: user.into(),
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
    pub fn format(&self) -> Text {
        let mut out = Text::from(TAG);
        let quote: &[u8] = match self.dialect {
            Dialect::Bare => b"",
            Dialect::Quoted => b"\"",
        };
        out.push_str(quote);
        out.push_str(&self.alias);
        out.push_str(quote);
        out.push(b':');
        out.push_str(format_members(&self.members));
        out.push(b'#');
        if self.user.is_empty() {
            out.push(b'-');
        } else {
            out.push_str(&self.user);
        }
        out
    }
}

/// Why an alias cannot be written in a descriptor: what no reader would
/// read back as given (not the daemon, not dmstats of either dialect), so
/// that `map` refuses it before anything is made.
///
/// What is left is accepted, whatever its bytes: tabs and other control
/// characters, backslashes, quotes, `#`, a leading `-`, bytes that are not
/// UTF-8. The kernel's splitter is handled by escaping ([`escape`]), and
/// the kernel prints aux data back raw, which dmstats (>= 2.03.23) reads
/// as it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// The kernel prints one region a line and aux data raw: the newline
    /// would cut the group's line in two for every reader.
    #[error("alias {0} holds a newline, which would split the kernel's region list line")]
    Newline(String),
    /// No dmstats reads back a group whose alias holds a `:`.
    #[error("alias {0} holds a ':', which no dmstats reads back")]
    Colon(String),
    /// dmstats >= 2.03.23 ends the aux data at the first space after the
    /// first `#` (where user data starts); dmstats < 2.03.23 at the first
    /// space. An alias with a space after a `#` is cut either way.
    #[error("alias {0} holds a space after a '#', which no dmstats reads back")]
    SpaceAfterHash(String),
    /// dmstats reads a region's line in a 4096-byte buffer: a longer line
    /// fails its whole list, for every group on the device.
    #[error("alias {0} is {1} bytes long; at most {MAX_ALIAS} fit in the line dmstats reads")]
    TooLong(String, usize),
    /// The bare form ends at the first space for its readers (dmstats <
    /// 2.03.23), and later ones read every bare alias as a quoted one.
    #[error(
        "alias {0} holds a space, which no dmstats reads back in the bare form (--dialect quoted)"
    )]
    SpaceBare(String),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// The longest alias `map` writes: a quarter of dmstats' 4096-byte line
/// buffer (`STATS_ROW_BUF_LEN`), the rest left for the member list and the
/// options. A file name is at most 255 bytes.
pub(crate) const MAX_ALIAS: usize = 1024;

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
    /// as given or could not be sent ([`AliasError`]).
    pub fn for_new_group(
        alias: impl AsRef<[u8]>,
        members: Vec<RegionId>,
    ) -> Result<Descriptor, AliasError> {
        let alias = alias.as_ref();
        // A NUL first: no message carries it, whatever else the alias holds.
        escape(alias)?;
        let why = excerpt(alias);
        if alias.contains(&b'\n') {
            return Err(AliasError::Newline(why));
        }
        // Neither dmstats reads a group whose alias holds a colon, in
        // either form (not even the one that wrote it).
        if alias.contains(&b':') {
            return Err(AliasError::Colon(why));
        }
        if let Some(hash) = alias.iter().position(|&b| b == b'#') {
            if alias[hash..].contains(&b' ') {
                return Err(AliasError::SpaceAfterHash(why));
            }
        }
        if alias.len() > MAX_ALIAS {
            return Err(AliasError::TooLong(why, alias.len()));
        }
        // Without a colon the quoted alias cannot hold the `":` that ends
        // it, so it reads back as written.
        Ok(Descriptor {
            alias: alias.into(),
            members,
            user: Text::new(),
            dialect: NEW_GROUP_DIALECT,
        })
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
pub fn parse_members(list: impl AsRef<[u8]>) -> Result<Vec<RegionId>, DescriptorError> {
    let list = list.as_ref();
    let bad = || DescriptorError::BadMembers(excerpt(list));
    if list.is_empty() {
        return Err(DescriptorError::Empty);
    }
    let mut members = Vec::new();
    for item in list.split(|&b| b == b',') {
        let (first, last) = match split_once(item, b"-") {
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
