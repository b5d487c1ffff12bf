//! Models of how lvm2's libdm (`libdm/libdm-stats.c`) writes and reads a
//! group's alias, from reading its sources, for the alias oracle
//! ([`crate::testkit::check_alias`]): what each dmstats generation sends
//! for `create --filemap`, and what it reads back from an `@stats_list`
//! reply. Our own code is written against these; the VM scenario `names`
//! checks the real binaries agree.
//!
//! - 2.03.16 (Debian 12): writes `DMS_GROUP=alias:members#user` unescaped;
//!   reads each line (`fgets`, 4096 bytes), the program id to the first
//!   space, the aux data to the next space, the alias from the tag to the
//!   first `:` (quotes and all).
//! - 2.03.31 (Debian 13, since 2.03.23): writes `DMS_GROUP="alias":...`
//!   with space, tab and backslash escaped (`_stats_escape_aux_data`), no
//!   other byte; reads the aux data to the first space after the first
//!   `#` (`_stats_parse_string_data`), the alias from one byte after the
//!   tag to one byte before the first `:` (`_parse_aux_data_group`).
//!
//! Feature `testkit` only. Touches: nothing but [`crate::dmstats`]' text.

use crate::dmstats::{parse_members, RegionId, Text};

/// The two generations of libdm's descriptor code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libdm {
    /// lvm2 2.03.16, Debian 12: bare descriptor, nothing escaped.
    V2_03_16,
    /// lvm2 2.03.31, Debian 13: quoted descriptor, ` `, `\t`, `\\` escaped.
    V2_03_31,
}

/// `STATS_ROW_BUF_LEN`: `fgets` reads at most 4095 bytes of a line.
const ROW: usize = 4096;
const TAG: &[u8] = b"DMS_GROUP=";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl Libdm {
    /// The `@stats_set_aux` message this dmstats sends for the descriptor
    /// of a new group of one region, `id`, named `alias`, no user data.
    pub fn set_aux(self, id: RegionId, alias: &[u8]) -> Text {
        let mut msg = Text::from(format!("@stats_set_aux {id} "));
        match self {
            Libdm::V2_03_16 => {
                msg.push_str(TAG);
                msg.push_str(alias);
            }
            Libdm::V2_03_31 => {
                let mut desc = TAG.to_vec();
                desc.push(b'"');
                desc.extend_from_slice(alias);
                desc.push(b'"');
                for b in desc {
                    if matches!(b, b' ' | b'\\' | b'\t') {
                        msg.push(b'\\');
                    }
                    msg.push(b);
                }
            }
        }
        msg.push_str(format!(":{id}#-"));
        msg
    }

    /// The alias this dmstats reads for group `id` from an `@stats_list`
    /// reply: `None` when it finds no such group (or fails to read the
    /// list at all); `Some(empty)` for a group without alias.
    pub fn read_alias(self, reply: &[u8], id: RegionId) -> Option<Vec<u8>> {
        let mut found = None;
        // fgets: lines end at '\n' only; a longer line than the buffer
        // comes in two pieces, and the second fails the whole list.
        for line in reply.split_inclusive(|&b| b == b'\n') {
            if line.len() > ROW - 1 {
                return None;
            }
            let (rid, string_data) = fixed_fields(line)?;
            if rid == id {
                found = self.group_alias(string_data, id);
            }
        }
        found
    }

    fn group_alias(self, string_data: &[u8], id: RegionId) -> Option<Vec<u8>> {
        let string_data = &string_data[..string_data.len().min(ROW - 1)];
        let space = string_data.iter().position(|&b| b == b' ')?;
        let p = &string_data[space + 1..];
        let aux = match self {
            Libdm::V2_03_16 => match p.iter().position(|&b| b == b' ') {
                Some(end) => &p[..end],
                // The last byte is taken for the newline, whatever it is.
                None => &p[..p.len().saturating_sub(1)],
            },
            Libdm::V2_03_31 => {
                let p = p.strip_suffix(b"\n").unwrap_or(p);
                if find(p, TAG).is_some() {
                    let gap = p
                        .iter()
                        .position(|&b| b == b'#')
                        .and_then(|h| p[h..].iter().position(|&b| b == b' ').map(|s| h + s));
                    gap.map_or(p, |g| &p[..g])
                } else {
                    p.split(|&b| b == b' ').next().unwrap_or(p)
                }
            }
        };
        if aux.starts_with(b"-") {
            return None;
        }
        let tag = find(aux, TAG)?;
        let colon = tag + aux[tag..].iter().position(|&b| b == b':')?;
        let alias = match self {
            Libdm::V2_03_16 => &aux[tag + TAG.len()..colon],
            // One byte after the tag (the opening quote) to one before the
            // colon (the closing one), whatever those bytes are.
            Libdm::V2_03_31 => aux.get(tag + TAG.len() + 1..colon - 1)?,
        };
        let rest = &aux[colon + 1..];
        let members = &rest[..rest.iter().position(|&b| b == b'#').unwrap_or(rest.len())];
        let members = parse_members(members).ok()?;
        (members.first() == Some(&id)).then(|| alias.to_vec())
    }
}

/// `sscanf(line, "%lu: %lu+%lu %lu %4095c")`: the region id and what
/// follows the step, leading C whitespace skipped.
fn fixed_fields(line: &[u8]) -> Option<(RegionId, &[u8])> {
    let mut i = 0;
    let number = |line: &[u8], i: &mut usize| -> Option<u64> {
        while *i < line.len() && c_space(line[*i]) {
            *i += 1;
        }
        let start = *i;
        while *i < line.len() && line[*i].is_ascii_digit() {
            *i += 1;
        }
        std::str::from_utf8(&line[start..*i]).ok()?.parse().ok()
    };
    let id = number(line, &mut i)?;
    line.get(i..i + 2).filter(|s| *s == b": ")?;
    i += 2;
    number(line, &mut i)?;
    line.get(i).filter(|&&b| b == b'+')?;
    i += 1;
    number(line, &mut i)?;
    number(line, &mut i)?;
    while i < line.len() && c_space(line[i]) {
        i += 1;
    }
    (i < line.len()).then(|| (id, &line[i..]))
}
