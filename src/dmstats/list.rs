//! The dm-stats message protocol: `@stats_list` replies, the `DMS_GROUP`
//! group descriptor kept in a leader's aux_data, and the messages we send.
//! Pure code: no I/O here, so it can be fuzzed.
//!
//! Two sources of ambiguity shape this module, and both are resolved the
//! way the kernel and libdm resolve them:
//!
//! - The kernel prints aux_data raw, so an aux_data that holds spaces (sent
//!   escaped) is indistinguishable from the optional trailing
//!   ` precise_timestamps` and ` histogram:` tokens. Those two are read from
//!   the end of the line, because the kernel always prints them last; an
//!   aux_data that itself ends in such a token is read as the flag. Whatever
//!   [`parse_list`] returns prints back, through [`Region::to_line`], to a
//!   line that parses to the same region.
//! - The kernel's argument splitter treats byte 0xA0 as a space (its ctype
//!   table is Latin-1) and a message is a C string, so a NUL, or a character
//!   whose UTF-8 holds 0xA0 (`à`, `Р`, many CJK ideographs), cannot be sent
//!   in a `&str` message: a backslash would have to sit inside the
//!   character. Such arguments are refused with [`MessageError`] rather than
//!   sent and silently cut.
//!
//! Owns: the message texts and their parsers. Touches: no device, no
//! state (the engine sends what it builds).

use crate::extent::Extent;

pub type RegionId = u64;

const PRECISE: &str = "precise_timestamps";
const HISTOGRAM: &str = "histogram:";

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
        Extent {
            start: self.start,
            len: self.len,
        }
    }

    /// The line the kernel would print for this region (without the newline).
    pub fn to_line(&self) -> String {
        let mut line = format!(
            "{}: {}+{} {} {} {}",
            self.id, self.start, self.len, self.step, self.program_id, self.aux_data
        );
        if self.precise {
            line.push(' ');
            line.push_str(PRECISE);
        }
        if !self.histogram.is_empty() {
            line.push(' ');
            line.push_str(HISTOGRAM);
            line.push_str(&join_bounds(&self.histogram));
        }
        line
    }
}

fn join_bounds(bounds: &[u64]) -> String {
    bounds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
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
///
/// The reply is a C string: anything from the first NUL on is ignored.
/// Blank lines are ignored without a report.
pub fn parse_list(reply: &str) -> (Vec<Region>, Vec<SkippedLine>) {
    let reply = reply.split('\0').next().unwrap_or("");
    let mut regions = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in reply.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(region) => regions.push(region),
            Err(reason) => skipped.push(SkippedLine {
                line_no: i + 1,
                reason,
            }),
        }
    }
    (regions, skipped)
}

/// `<id>: <start>+<len> <step> <program_id> <aux_data>[ precise_timestamps][ histogram:<b>,...]`
fn parse_line(line: &str) -> Result<Region, &'static str> {
    let (id, rest) = line.split_once(": ").ok_or("no region id")?;
    let id = number(id).ok_or("bad region id")?;
    let (range, rest) = rest.split_once(' ').ok_or("no step")?;
    let (start, len) = range.split_once('+').ok_or("bad range")?;
    let start = number(start).ok_or("bad start sector")?;
    let len = number(len).ok_or("bad length")?;
    let (step, rest) = rest.split_once(' ').ok_or("no program_id")?;
    let step = number(step).ok_or("bad step")?;

    // program_id is one kernel token, so it ends at the first space; the
    // aux_data may hold spaces, so what follows is read from the end.
    let (program_id, mut tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut histogram = Vec::new();
    if let Some((head, last)) = tail.rsplit_once(' ') {
        if let Some(bounds) = last.strip_prefix(HISTOGRAM).and_then(parse_bounds) {
            histogram = bounds;
            tail = head;
        }
    }
    let mut precise = false;
    if let Some(head) = tail.strip_suffix(PRECISE).and_then(|t| t.strip_suffix(' ')) {
        precise = true;
        tail = head;
    }
    Ok(Region {
        id,
        start,
        len,
        step,
        program_id: program_id.to_owned(),
        aux_data: tail.to_owned(),
        precise,
        histogram,
    })
}

fn parse_bounds(list: &str) -> Option<Vec<u64>> {
    list.split(',').map(number).collect()
}

/// A decimal number: ASCII digits only (`u64::from_str` would take a `+`).
pub(crate) fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
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
    #[error("group descriptor names more than {MAX_MEMBERS} members")]
    TooManyMembers,
}

pub const TAG: &str = "DMS_GROUP=";

/// Far beyond what dm-stats' memory cap allows on any machine (each region
/// costs tens of KiB of kernel memory), yet it bounds what a hostile range
/// like `0-4294967295` makes us allocate.
#[cfg(not(fuzzing))]
pub const MAX_MEMBERS: usize = 1 << 20;
/// Under cargo-fuzz the same paths with a smaller cap: an input naming a
/// million members costs milliseconds, a seventh of a grown corpus does,
/// and they held the `group_descriptor` target to 1,400 executions a
/// second; with this cap it runs 117,000.
#[cfg(fuzzing)]
pub const MAX_MEMBERS: usize = 1 << 12;

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
/// ascending set they name. At most [`MAX_MEMBERS`] ids, duplicates included.
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

/// The start of a long hostile list is enough for a log line.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("a dm message cannot carry a NUL byte: {0:?}")]
    Nul(String),
    #[error("the kernel would split {0:?} inside a character (byte 0xA0 is a space to it)")]
    Latin1Space(String),
}

/// The bytes the kernel's `isspace()` accepts: C whitespace plus Latin-1
/// no-break space, which its ctype table also marks as a space.
fn kernel_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// Escape one message argument for the kernel's argument splitter.
///
/// The splitter (`dm_split_args`) ends a token at any `isspace()` byte and
/// takes the byte after a backslash literally. So every ASCII space byte and
/// every backslash gets a backslash. Byte 0xA0 only occurs inside multi-byte
/// characters here and cannot be escaped in a `&str`: refused, as is NUL.
pub fn escape(arg: &str) -> Result<String, MessageError> {
    if arg.contains('\0') {
        return Err(MessageError::Nul(excerpt(arg)));
    }
    let mut out = String::with_capacity(arg.len() + 8);
    for c in arg.chars() {
        if c.len_utf8() > 1 {
            let mut buf = [0u8; 4];
            if c.encode_utf8(&mut buf).bytes().any(|b| b == 0xa0) {
                return Err(MessageError::Latin1Space(excerpt(arg)));
            }
        } else if c == '\\' || kernel_space(c as u8) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// Split a message as the kernel's `dm_split_args` does: the inverse of
/// [`escape`], for the fake kernel and the tests. Tokens that are not UTF-8
/// once split (a character cut at byte 0xA0) are read lossily.
#[cfg(feature = "testkit")]
pub fn split_args(msg: &str) -> Vec<String> {
    let bytes = msg.as_bytes();
    let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && kernel_space(bytes[i]) {
            i += 1;
        }
        if i == bytes.len() {
            return args;
        }
        let mut token = Vec::new();
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\\' && i + 1 < bytes.len() {
                token.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if kernel_space(b) {
                i += 1;
                break;
            }
            token.push(b);
            i += 1;
        }
        args.push(String::from_utf8_lossy(&token).into_owned());
    }
}

/// An argument the kernel takes as given when it is empty: `-`.
fn arg_or_dash(arg: &str) -> Result<String, MessageError> {
    if arg.is_empty() {
        Ok("-".to_owned())
    } else {
        escape(arg)
    }
}

/// `@stats_list [<program_id>]`
///
/// An empty program_id asks for `-`, the program_id the kernel gives a
/// region created without one; sending nothing would list every region.
pub fn msg_list(program_id: Option<&str>) -> Result<String, MessageError> {
    match program_id {
        Some(p) => Ok(format!("@stats_list {}", arg_or_dash(p)?)),
        None => Ok("@stats_list".to_owned()),
    }
}

/// `@stats_create <start>+<len> /1 [<n> precise_timestamps histogram:<b>] <program_id> <aux>`,
/// options and program_id copied from `template` (the group's leader);
/// `aux` unescaped, `-` when empty.
///
/// The kernel reads the argument after the step as the option count when
/// it is all digits, so a numeric program_id gets an explicit count of 0.
pub fn msg_create(extent: Extent, template: &Region, aux: &str) -> Result<String, MessageError> {
    let program_id = arg_or_dash(&template.program_id)?;
    let mut opts = Vec::new();
    if template.precise {
        opts.push(PRECISE.to_owned());
    }
    if !template.histogram.is_empty() {
        opts.push(format!("{HISTOGRAM}{}", join_bounds(&template.histogram)));
    }
    let mut msg = format!("@stats_create {}+{} /1", extent.start, extent.len);
    if !opts.is_empty() || program_id.bytes().all(|b| b.is_ascii_digit()) {
        msg.push_str(&format!(" {}", opts.len()));
        for opt in &opts {
            msg.push(' ');
            msg.push_str(opt);
        }
    }
    msg.push_str(&format!(" {program_id} {}", arg_or_dash(aux)?));
    Ok(msg)
}

/// Sectors a `@stats_print` reply counts: sectors read plus sectors
/// written, summed over its areas. Each line is `start+len` then the
/// counters: sectors read third, sectors written seventh (kernel
/// Documentation/admin-guide/device-mapper/statistics.rst). Sectors, not
/// requests: dm-stats counts a request once in every area it touches, so a
/// large tile read by 1 MiB requests would look as cheap to fold as a small
/// one read by 16 KiB requests (measured: 63% of reads kept over 400
/// growth steps when folds were costed in requests). `None` for a line that
/// is not shaped so.
pub fn parse_print_sectors(reply: &str) -> Option<u64> {
    let mut total = 0u64;
    for line in reply.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_ascii_whitespace();
        fields.next().filter(|r| r.contains('+'))?;
        let counters: Vec<u64> = fields
            .take(7)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [_, _, read, _, _, _, written] = counters[..] else {
            return None;
        };
        total = total.saturating_add(read).saturating_add(written);
    }
    Some(total)
}

/// `@stats_delete <id>`
pub fn msg_delete(id: RegionId) -> String {
    format!("@stats_delete {id}")
}

/// `@stats_set_aux <id> <aux>`; `aux` unescaped, `-` when empty.
pub fn msg_set_aux(id: RegionId, aux: &str) -> Result<String, MessageError> {
    Ok(format!("@stats_set_aux {id} {}", arg_or_dash(aux)?))
}

/// The region id in an `@stats_create` reply.
pub fn parse_create_reply(reply: &str) -> Option<RegionId> {
    let reply = reply.split('\0').next().unwrap_or("");
    number(reply.trim())
}

/// `@stats_print <id> <first> <count>`: the counters of `count` areas of
/// region `id`, from area `first` (0-based).
pub fn msg_print(id: RegionId, first: u64, count: u64) -> String {
    format!("@stats_print {id} {first} {count}")
}

/// The area a line of an `@stats_print` reply describes. The kernel prints
/// the region's step as its length, also for a last area the region's end
/// cuts short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub start: u64,
    pub len: u64,
}

/// The counters the kernel prints after each area (the 11 of
/// `/proc/diskstats` and the total times reading and writing); a histogram,
/// when the region has one, follows them.
const PRINT_COUNTERS: usize = 13;

/// The areas of an `@stats_print` reply, in order; the counters are not
/// read, only counted. A line that is not `<start>+<len>` and the counters
/// is an error: such a reply says nothing about the region.
pub fn parse_print(reply: &str) -> Result<Vec<Area>, SkippedLine> {
    let reply = reply.split('\0').next().unwrap_or("");
    let mut areas = Vec::new();
    for (i, line) in reply.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let skipped = |reason| SkippedLine {
            line_no: i + 1,
            reason,
        };
        let mut words = line.split(' ');
        let (start, len) = words
            .next()
            .and_then(|w| w.split_once('+'))
            .ok_or(skipped("no area"))?;
        let (start, len) = (number(start), number(len));
        let (Some(start), Some(len)) = (start, len) else {
            return Err(skipped("bad area"));
        };
        if words.filter(|w| !w.is_empty()).count() < PRINT_COUNTERS {
            return Err(skipped("too few counters"));
        }
        areas.push(Area { start, len });
    }
    Ok(areas)
}

/// A look at one region that costs the same whatever the size of the
/// group: `@stats_print` of its last area and the one after. The region
/// listed is still there when the reply is that one area, at the same
/// sector and of the same step: ids are reused, so a reply alone proves
/// nothing, and a region grown by whole areas would show a second line.
/// What it cannot see: the aux data (a descriptor rewritten by another
/// program) and a last area that changed length within its step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub msg: String,
    expect: Area,
}

impl Probe {
    pub fn of(region: &Region) -> Probe {
        let step = region.step.max(1);
        let last = region.len.div_ceil(step).saturating_sub(1);
        Probe {
            msg: msg_print(region.id, last, 2),
            expect: Area {
                start: region.start.saturating_add(last.saturating_mul(step)),
                len: step,
            },
        }
    }

    /// A region this program just made with [`msg_create`]: one area
    /// (`/1`), so its step is its length.
    pub fn of_created(id: RegionId, extent: Extent) -> Probe {
        Probe {
            msg: msg_print(id, 0, 2),
            expect: Area {
                start: extent.start,
                len: extent.len,
            },
        }
    }

    /// Whether the reply shows the region as listed.
    pub fn matches(&self, reply: &str) -> bool {
        parse_print(reply).is_ok_and(|areas| areas == [self.expect])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: RegionId, aux: &str) -> Region {
        Region {
            id,
            start: 2048,
            len: 16,
            step: 16,
            program_id: "dmstats".into(),
            aux_data: aux.into(),
            precise: false,
            histogram: vec![],
        }
    }

    fn one(line: &str) -> Region {
        let (regions, skipped) = parse_list(line);
        assert!(skipped.is_empty(), "{line:?}: {skipped:?}");
        assert_eq!(regions.len(), 1, "{line:?}");
        regions.into_iter().next().unwrap()
    }

    /// The fuzz property of `stats_list`, for one reply.
    fn assert_round_trip(reply: &str) {
        for r in parse_list(reply).0 {
            let line = r.to_line();
            assert_eq!(parse_list(&line), (vec![r.clone()], vec![]), "{line:?}");
        }
    }

    #[test]
    fn plain_line() {
        let r = one("0: 2048+16 16 dmstats -\n");
        assert_eq!(r, region(0, "-"));
        assert_eq!(r.to_line(), "0: 2048+16 16 dmstats -");
        assert_eq!(
            r.extent(),
            Extent {
                start: 2048,
                len: 16
            }
        );
    }

    #[test]
    fn empty_reply_and_blank_lines() {
        assert_eq!(parse_list(""), (vec![], vec![]));
        assert_eq!(parse_list("\n\n  \n"), (vec![], vec![]));
        let (regions, skipped) = parse_list("0: 0+8 8 p -\n\0garbage\n");
        assert_eq!(regions.len(), 1);
        assert!(skipped.is_empty());
        // Trailing whitespace after the last newline, and a NUL terminator.
        assert_eq!(parse_list("0: 0+8 8 p -\n \0").0.len(), 1);
    }

    #[test]
    fn optional_tokens() {
        let r = one("3: 0+8 8 p - precise_timestamps");
        assert!(r.precise && r.histogram.is_empty() && r.aux_data == "-");
        let r = one("3: 0+8 8 p - histogram:1,20,300");
        assert!(!r.precise && r.histogram == [1, 20, 300] && r.aux_data == "-");
        let r = one("3: 0+8 8 p - precise_timestamps histogram:5");
        assert!(r.precise && r.histogram == [5] && r.aux_data == "-");
        // The kernel prints precise first: in the other order, histogram is not last.
        let r = one("3: 0+8 8 p - histogram:5 precise_timestamps");
        assert!(r.precise && r.histogram.is_empty() && r.aux_data == "- histogram:5");
        for line in [
            "3: 0+8 8 p - precise_timestamps",
            "3: 0+8 8 p - histogram:1,20,300",
            "3: 0+8 8 p - precise_timestamps histogram:5",
        ] {
            assert_eq!(one(line).to_line(), line);
        }
    }

    #[test]
    fn aux_with_spaces_and_descriptors() {
        let bare = "DMS_GROUP=my file:0-3,5#-";
        let quoted = "DMS_GROUP=\"a: b c\":0-3#user text";
        for aux in [bare, quoted] {
            for (suffix, precise, hist) in [
                ("", false, vec![]),
                (" precise_timestamps", true, vec![]),
                (" histogram:10,20", false, vec![10, 20]),
                (" precise_timestamps histogram:7", true, vec![7]),
            ] {
                let line = format!("4: 100+200 200 dmstats {aux}{suffix}");
                let r = one(&line);
                assert_eq!(r.aux_data, aux);
                assert_eq!((r.precise, r.histogram.clone()), (precise, hist));
                assert_eq!(r.to_line(), line);
            }
        }
    }

    #[test]
    fn ambiguous_tails_read_as_the_kernel_prints() {
        // An aux_data that ends like a flag is read as the flag; it prints back the same.
        let r = one("1: 0+8 8 p note precise_timestamps");
        assert_eq!((r.aux_data.as_str(), r.precise), ("note", true));
        // A lone token cannot be the flag: the kernel never prints an empty aux_data
        // without the space before it.
        let r = one("1: 0+8 8 p precise_timestamps");
        assert_eq!(
            (r.aux_data.as_str(), r.precise),
            ("precise_timestamps", false)
        );
        let r = one("1: 0+8 8 p histogram:1");
        assert_eq!((r.aux_data.as_str(), r.histogram.len()), ("histogram:1", 0));
        // Bad bounds stay in the aux_data.
        for tail in [
            "histogram:",
            "histogram:1,,2",
            "histogram:+1",
            "histogram:99999999999999999999",
        ] {
            let r = one(&format!("1: 0+8 8 p x {tail}"));
            assert_eq!(r.aux_data, format!("x {tail}"));
            assert!(r.histogram.is_empty());
        }
        for line in [
            "1: 0+8 8 p note precise_timestamps",
            "1: 0+8 8 p x histogram:1,,2 precise_timestamps",
            "1: 0+8 8 p  precise_timestamps",
            "1: 0+8 8 p x  histogram:007",
            "1: 0+8 8 p",
            "1: 0+8 8 ",
            "1: 0+8 8 p -  ",
        ] {
            assert_round_trip(line);
        }
    }

    #[test]
    fn junk_lines_are_skipped_with_line_numbers() {
        let reply = "0: 0+8 8 p -\nhello\n1: x+8 8 p -\n2: 0-8 8 p -\n3: 0+8\n\
                     4: 0+8 +8 p -\n5 : 0+8 8 p -\n-6: 0+8 8 p -\n7: 0+8 8 p -";
        let (regions, skipped) = parse_list(reply);
        assert_eq!(regions.iter().map(|r| r.id).collect::<Vec<_>>(), [0, 7]);
        assert_eq!(
            skipped.iter().map(|s| s.line_no).collect::<Vec<_>>(),
            [2, 3, 4, 5, 6, 7, 8]
        );
        assert!(skipped.iter().all(|s| !s.reason.is_empty()));
    }

    #[test]
    fn overflow_is_skipped() {
        let (regions, skipped) =
            parse_list("18446744073709551616: 0+8 8 p -\n0: 0+18446744073709551616 8 p -");
        assert!(regions.is_empty());
        assert_eq!(skipped.len(), 2);
        assert_eq!(one("18446744073709551615: 0+8 8 p -").id, u64::MAX);
    }

    #[test]
    fn long_lines() {
        let members: Vec<RegionId> = (0..4000).step_by(2).collect();
        let aux = Descriptor {
            alias: "big file".into(),
            members: members.clone(),
            user: "-".repeat(3000),
            dialect: Dialect::Quoted,
        }
        .format();
        assert!(aux.len() > 10 * 1024);
        let mut reply = String::new();
        for id in [0, 2, 4] {
            let r = Region {
                aux_data: if id == 0 { aux.clone() } else { "-".into() },
                ..region(id, "")
            };
            reply.push_str(&r.to_line());
            reply.push('\n');
        }
        let (regions, skipped) = parse_list(&reply);
        assert!(skipped.is_empty());
        assert_eq!(regions.len(), 3);
        let d = Descriptor::parse(&regions[0].aux_data).unwrap().unwrap();
        assert_eq!(d.members, members);
        assert_eq!(d.alias, "big file");
        assert_round_trip(&reply);
    }

    #[test]
    fn descriptor_bare() {
        let d = Descriptor::parse("DMS_GROUP=vm.img:0-3,5,7-9#-")
            .unwrap()
            .unwrap();
        assert_eq!(d.alias, "vm.img");
        assert_eq!(d.members, [0, 1, 2, 3, 5, 7, 8, 9]);
        assert_eq!(d.user, "");
        assert_eq!(d.dialect, Dialect::Bare);
        assert_eq!(d.leader(), Some(0));
        assert_eq!(d.format(), "DMS_GROUP=vm.img:0-3,5,7-9#-");
    }

    #[test]
    fn descriptor_quoted() {
        let aux = "DMS_GROUP=\"my: \"odd\" file\":12-13,20#keep me #1";
        let d = Descriptor::parse(aux).unwrap().unwrap();
        assert_eq!(d.alias, "my: \"odd\" file");
        assert_eq!(d.members, [12, 13, 20]);
        assert_eq!(d.user, "keep me #1");
        assert_eq!(d.dialect, Dialect::Quoted);
        assert_eq!(d.format(), aux);
    }

    #[test]
    fn descriptor_without_alias_or_user() {
        let d = Descriptor::parse("DMS_GROUP=:4#-").unwrap().unwrap();
        assert_eq!(
            (d.alias.as_str(), d.dialect, d.members.as_slice()),
            ("", Dialect::Bare, &[4][..])
        );
        assert_eq!(d.format(), "DMS_GROUP=:4#-");
        let d = Descriptor::parse("DMS_GROUP=\"\":4").unwrap().unwrap();
        assert_eq!(
            (d.alias.as_str(), d.dialect, d.user.as_str()),
            ("", Dialect::Quoted, "")
        );
        assert_eq!(d.format(), "DMS_GROUP=\"\":4#-");
        // A bare alias may hold '#' and spaces; only ':' ends it.
        let d = Descriptor::parse("DMS_GROUP=a #b:1-2#x").unwrap().unwrap();
        assert_eq!((d.alias.as_str(), d.user.as_str()), ("a #b", "x"));
    }

    #[test]
    fn descriptor_absent_or_elsewhere() {
        assert_eq!(Descriptor::parse("-"), Ok(None));
        assert_eq!(Descriptor::parse(""), Ok(None));
        assert_eq!(Descriptor::parse("dms_group=x:1"), Ok(None));
        // Like libdm: found anywhere, the text before it is not kept.
        let d = Descriptor::parse("junk DMS_GROUP=x:1#-").unwrap().unwrap();
        assert_eq!(d.format(), "DMS_GROUP=x:1#-");
    }

    #[test]
    fn descriptor_errors() {
        use DescriptorError::*;
        let err = |s: &str| Descriptor::parse(s).unwrap_err();
        assert_eq!(err("DMS_GROUP=x"), NoSeparator);
        assert_eq!(err("DMS_GROUP=\"x:1#-"), NoSeparator);
        assert_eq!(err("DMS_GROUP=x:#-"), Empty);
        assert_eq!(err("DMS_GROUP=x:"), Empty);
        assert!(matches!(err("DMS_GROUP=x:1,,2#-"), BadMembers(_)));
        assert!(matches!(err("DMS_GROUP=x:3-1#-"), BadMembers(_)));
        assert!(matches!(err("DMS_GROUP=x: 1#-"), BadMembers(_)));
        assert!(matches!(err("DMS_GROUP=x:1-#-"), BadMembers(_)));
        assert!(matches!(err("DMS_GROUP=x:-1#-"), BadMembers(_)));
        assert!(matches!(err("DMS_GROUP=x:1-2-3#-"), BadMembers(_)));
        assert!(matches!(err("DMS_GROUP=x:+1#-"), BadMembers(_)));
        assert!(matches!(
            err("DMS_GROUP=x:18446744073709551616#-"),
            BadMembers(_)
        ));
        assert_eq!(err("DMS_GROUP=x:0-18446744073709551615#-"), TooManyMembers);
        assert_eq!(err("DMS_GROUP=x:0-1048575,7#-"), TooManyMembers);
        assert_eq!(parse_members("0-1048575").unwrap().len(), MAX_MEMBERS);
    }

    #[test]
    fn members() {
        assert_eq!(format_members(&[]), "");
        assert_eq!(format_members(&[7]), "7");
        assert_eq!(format_members(&[3, 4]), "3-4");
        assert_eq!(format_members(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(format_members(&[1, 3, 5]), "1,3,5");
        assert_eq!(
            format_members(&[u64::MAX - 1, u64::MAX]),
            "18446744073709551614-18446744073709551615"
        );
        // Order and overlaps do not matter on input, as for libdm's bitset.
        assert_eq!(parse_members("9,1-3,2,5-5").unwrap(), [1, 2, 3, 5, 9]);
        assert_eq!(
            format_members(&parse_members("9,1-3,2,5-5").unwrap()),
            "1-3,5,9"
        );
    }

    #[test]
    fn descriptor_round_trips() {
        let cases = [
            "DMS_GROUP=vm.img:0-3,5,7-9#-",
            "DMS_GROUP=\"vm img: two\":0#-",
            "DMS_GROUP=\"\":1,3#u",
            "DMS_GROUP=:2-3#-",
            "DMS_GROUP=\"a\"b\":1#-",
            "DMS_GROUP=\"x\":1#\"y\":2",
            "DMS_GROUP=x:5,1#",
            "xx DMS_GROUP=x:1",
            "DMS_GROUP=x:1#-#-",
        ];
        for aux in cases {
            let d = Descriptor::parse(aux).unwrap().unwrap();
            assert_eq!(
                Descriptor::parse(&d.format()),
                Ok(Some(d.clone())),
                "{aux:?}"
            );
        }
    }

    #[test]
    fn new_group_descriptors() {
        // Quoted always (NEW_GROUP_DIALECT), read back as written.
        let table: &[(&str, &str)] = &[
            ("vm.img", "DMS_GROUP=\"vm.img\":0-2#-"),
            ("", "DMS_GROUP=\"\":0-2#-"),
            ("a#b", "DMS_GROUP=\"a#b\":0-2#-"),
            ("mid\"quote", "DMS_GROUP=\"mid\"quote\":0-2#-"),
            ("end\"", "DMS_GROUP=\"end\"\":0-2#-"),
            ("ünï©ødé", "DMS_GROUP=\"ünï©ødé\":0-2#-"),
            ("my file", "DMS_GROUP=\"my file\":0-2#-"),
            ("\"q", "DMS_GROUP=\"\"q\":0-2#-"),
        ];
        for &(alias, text) in table {
            let d = Descriptor::for_new_group(alias, vec![0, 1, 2]).unwrap();
            assert_eq!(d.dialect, Dialect::Quoted, "{alias:?}");
            assert_eq!(d.format(), text);
            assert_eq!(Descriptor::parse(text), Ok(Some(d)));
        }
        let err = |a: &str| Descriptor::for_new_group(a, vec![3]).unwrap_err();
        assert!(matches!(err("a\nb"), AliasError::Control(_)));
        assert!(matches!(err("tab\there"), AliasError::Control(_)));
        assert!(matches!(err("a:b"), AliasError::Colon(_)));
        assert!(matches!(err(":"), AliasError::Colon(_)));
        assert!(matches!(err("x\":y"), AliasError::Colon(_)));
        assert!(matches!(err("voilà"), AliasError::Message(_)));
        assert!(matches!(err("nb\u{a0}sp"), AliasError::Message(_)));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain").unwrap(), "plain");
        assert_eq!(escape("a b\tc\\d").unwrap(), "a\\ b\\\tc\\\\d");
        assert_eq!(
            escape("l1\nl2\r\x0b\x0c").unwrap(),
            "l1\\\nl2\\\r\\\x0b\\\x0c"
        );
        assert_eq!(escape("").unwrap(), "");
        assert_eq!(escape("\"quotes' stay\"").unwrap(), "\"quotes'\\ stay\"");
        assert_eq!(escape("ünï©ødé").unwrap(), "ünï©ødé");
        assert!(matches!(escape("a\0b"), Err(MessageError::Nul(_))));
        // 'à' is C3 A0 and 'Р' is D0 A0: the kernel would split inside them.
        assert!(matches!(escape("voilà"), Err(MessageError::Latin1Space(_))));
        assert!(matches!(escape("Р"), Err(MessageError::Latin1Space(_))));
    }

    #[test]
    fn split_args_undoes_escape() {
        for arg in [
            "a b",
            "back\\slash",
            "tab\there",
            "trailing\\",
            "\\",
            "  ",
            "x\ny",
            "DMS_GROUP=\"a b\":1#-",
        ] {
            let msg = msg_set_aux(3, arg).unwrap();
            assert_eq!(split_args(&msg), ["@stats_set_aux", "3", arg], "{msg:?}");
        }
        // U+00A0 is C2 A0 in UTF-8: the kernel cuts it after C2.
        assert_eq!(split_args("  a\u{a0}b  "), ["a\u{fffd}", "b"]);
        assert_eq!(split_args("x\\"), ["x\\"]);
        assert_eq!(split_args("ab\0 cd"), ["ab"]);
        assert!(split_args(" \t\n").is_empty());
    }

    #[test]
    fn messages() {
        assert_eq!(msg_list(None).unwrap(), "@stats_list");
        assert_eq!(msg_list(Some("dmstats")).unwrap(), "@stats_list dmstats");
        assert_eq!(msg_list(Some("my prog")).unwrap(), "@stats_list my\\ prog");
        assert_eq!(msg_list(Some("")).unwrap(), "@stats_list -");
        assert_eq!(msg_delete(12), "@stats_delete 12");
        assert_eq!(msg_set_aux(0, "").unwrap(), "@stats_set_aux 0 -");
        assert_eq!(
            msg_set_aux(4, "DMS_GROUP=\"my file\":4-5#-").unwrap(),
            "@stats_set_aux 4 DMS_GROUP=\"my\\ file\":4-5#-"
        );
        assert!(msg_set_aux(4, "DMS_GROUP=à:4#-").is_err());
    }

    #[test]
    fn create_messages() {
        let e = Extent {
            start: 2048,
            len: 96,
        };
        let mut t = region(0, "DMS_GROUP=x:0#-");
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 dmstats -"
        );
        t.precise = true;
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 1 precise_timestamps dmstats -"
        );
        t.histogram = vec![1000, 2000000];
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 2 precise_timestamps histogram:1000,2000000 dmstats -"
        );
        t.precise = false;
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 1 histogram:1000,2000000 dmstats -"
        );
        t.histogram.clear();
        t.program_id = "my prog".into();
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 my\\ prog -"
        );
        t.program_id = String::new();
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 - -"
        );
        // All digits would be taken for the option count.
        t.program_id = "42".into();
        assert_eq!(
            msg_create(e, &t, "").unwrap(),
            "@stats_create 2048+96 /1 0 42 -"
        );
        assert_eq!(
            msg_create(e, &t, "-x:1").unwrap(),
            "@stats_create 2048+96 /1 0 42 -x:1"
        );
        t.program_id = "Рrog".into();
        assert!(msg_create(e, &t, "").is_err());
    }

    #[test]
    fn create_reply() {
        assert_eq!(parse_create_reply("7"), Some(7));
        assert_eq!(parse_create_reply("7\n"), Some(7));
        assert_eq!(parse_create_reply(" 12 \n\0"), Some(12));
        assert_eq!(parse_create_reply(""), None);
        assert_eq!(parse_create_reply("-1"), None);
        assert_eq!(parse_create_reply("+1"), None);
        assert_eq!(parse_create_reply("1 2"), None);
        assert_eq!(parse_create_reply("x"), None);
    }

    #[test]
    fn lists_round_trip() {
        let replies = [
            "0: 0+8 8 dmstats DMS_GROUP=f:0-2#-\n1: 8+8 8 dmstats -\n2: 24+8 8 dmstats -\n",
            "0: 0+8 8 dmstats DMS_GROUP=\"f g\":0,2#u u precise_timestamps histogram:1,2\n",
            "5: 1+1 1 p a b c d\n6: 1+1 1 p  \n7: 1+1 1 p\n8: 1+1 1  x\n",
            "9: 1+1 1 p x\r\n10: 1+1 1 p \t precise_timestamps\n",
        ];
        for reply in replies {
            let (regions, skipped) = parse_list(reply);
            assert!(skipped.is_empty(), "{reply:?}");
            assert!(!regions.is_empty());
            assert_round_trip(reply);
        }
    }

    fn counters() -> &'static str {
        " 1 0 8 0 2 0 16 1 0 1 1 0 1"
    }

    #[test]
    fn print_replies() {
        let c = counters();
        let area = |start, len| Area { start, len };
        type Want = Result<Vec<Area>, (usize, &'static str)>;
        let cases: &[(String, Want)] = &[
            (String::new(), Ok(vec![])),
            ("\n".into(), Ok(vec![])),
            (format!("2048+8{c}\n"), Ok(vec![area(2048, 8)])),
            (
                format!("2048+8{c}\n2056+8{c}\n"),
                Ok(vec![area(2048, 8), area(2056, 8)]),
            ),
            // A histogram after the counters; in-flight may dip below zero.
            (format!("0+1{c} 0:3:1\n"), Ok(vec![area(0, 1)])),
            (
                "0+1 1 0 8 0 2 0 16 1 -1 1 1 0 1\n".into(),
                Ok(vec![area(0, 1)]),
            ),
            // The reply is a C string.
            (format!("7+1{c}\n\0junk"), Ok(vec![area(7, 1)])),
            (format!("7+1{c}\r\n"), Ok(vec![area(7, 1)])),
            (format!("7+1{c}"), Ok(vec![area(7, 1)])),
            ("2048+8\n".into(), Err((1, "too few counters"))),
            ("2048+8 1 2 3\n".into(), Err((1, "too few counters"))),
            (format!("2048{c}\n"), Err((1, "no area"))),
            (format!("x+8{c}\n"), Err((1, "bad area"))),
            (format!("+8{c}\n"), Err((1, "bad area"))),
            (format!("1++8{c}\n"), Err((1, "bad area"))),
            (format!("1+8+{c}\n"), Err((1, "bad area"))),
            (format!("1+99999999999999999999{c}\n"), Err((1, "bad area"))),
            (format!("0+8{c}\n0: 0+8 8 dmstats -\n"), Err((2, "no area"))),
        ];
        for (reply, want) in cases {
            let got = parse_print(reply).map_err(|s| (s.line_no, s.reason));
            assert_eq!(&got, want, "{reply:?}");
        }
    }

    #[test]
    fn probes() {
        let c = counters();
        let one = Region {
            id: 4,
            start: 2048,
            len: 16,
            step: 16,
            ..region(4, "-")
        };
        let p = Probe::of(&one);
        assert_eq!(p.msg, "@stats_print 4 0 2");
        let cases = [
            (format!("2048+16{c}\n"), true),
            // Another region took the id: elsewhere, or longer or shorter.
            (format!("4096+16{c}\n"), false),
            (format!("2048+24{c}\n"), false),
            (format!("2048+8{c}\n2056+8{c}\n"), false),
            (String::new(), false),
            ("2048+16\n".into(), false),
        ];
        for (reply, want) in &cases {
            assert_eq!(p.matches(reply), *want, "{reply:?}");
        }
        // Three areas of 8, the last cut short: asked for from the third.
        let areas = Region {
            len: 20,
            step: 8,
            ..one.clone()
        };
        let p = Probe::of(&areas);
        assert_eq!(p.msg, "@stats_print 4 2 2");
        assert!(p.matches(&format!("2064+8{c}\n")));
        assert!(!p.matches(&format!("2064+8{c}\n2072+8{c}\n")));
        assert!(!p.matches(""));
    }

    #[test]
    fn print_sectors() {
        let cases: [(&str, Option<u64>); 6] = [
            ("", Some(0)),
            ("0+8 3 0 24 1 2 0 16 0 0 4 5 1 0\n", Some(40)),
            (
                "0+8 3 0 24 1 2 0 16 0 0 4 5 1 0\n8+8 10 1 80 2 0 0 0 0 0 3 3 2 0\n",
                Some(120),
            ),
            ("0+8 3 0 24\n", None),
            ("0+8 3 0 24 1 2 0\n", None),
            ("garbage 1 2 3 4 5 6 7\n", None),
        ];
        for (reply, want) in cases {
            assert_eq!(parse_print_sectors(reply), want, "{reply:?}");
        }
    }
}
