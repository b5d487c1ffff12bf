//! `@stats_list` replies: one region a line, read back into [`Region`]s
//! that print again to the same line. Bytes: the kernel prints program id
//! and aux data as they were stored, and those need not be UTF-8.

use super::text::{c_str, rsplit_once, split_once, Text};
use crate::extent::Extent;

pub type RegionId = u64;

pub(super) const PRECISE: &str = "precise_timestamps";
pub(super) const HISTOGRAM: &str = "histogram:";

/// One line of an `@stats_list` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub id: RegionId,
    pub start: u64,
    pub len: u64,
    pub step: u64,
    pub program_id: Text,
    /// As the kernel prints it: unescaped, `-` when empty.
    pub aux_data: Text,
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
    pub fn to_line(&self) -> Text {
        let mut line = Text::from(format!(
            "{}: {}+{} {} ",
            self.id, self.start, self.len, self.step
        ));
        line.push_str(&self.program_id);
        line.push(b' ');
        line.push_str(&self.aux_data);
        if self.precise {
            line.push(b' ');
            line.push_str(PRECISE);
        }
        if !self.histogram.is_empty() {
            line.push(b' ');
            line.push_str(HISTOGRAM);
            line.push_str(join_bounds(&self.histogram));
        }
        line
    }
}

pub(super) fn join_bounds(bounds: &[u64]) -> String {
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
pub fn parse_list(reply: impl AsRef<[u8]>) -> (Vec<Region>, Vec<SkippedLine>) {
    let reply = c_str(reply.as_ref());
    let mut regions = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in reply.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
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
fn parse_line(line: &[u8]) -> Result<Region, &'static str> {
    let (id, rest) = split_once(line, b": ").ok_or("no region id")?;
    let id = number(id).ok_or("bad region id")?;
    let (range, rest) = split_once(rest, b" ").ok_or("no step")?;
    let (start, len) = split_once(range, b"+").ok_or("bad range")?;
    let start = number(start).ok_or("bad start sector")?;
    let len = number(len).ok_or("bad length")?;
    let (step, rest) = split_once(rest, b" ").ok_or("no program_id")?;
    let step = number(step).ok_or("bad step")?;

    // program_id is one kernel token, so it ends at the first space; the
    // aux_data may hold spaces, so what follows is read from the end.
    let (program_id, mut tail) = split_once(rest, b" ").unwrap_or((rest, b""));
    let mut histogram = Vec::new();
    if let Some((head, last)) = rsplit_once(tail, b' ') {
        if let Some(bounds) = last
            .strip_prefix(HISTOGRAM.as_bytes())
            .and_then(parse_bounds)
        {
            histogram = bounds;
            tail = head;
        }
    }
    let mut precise = false;
    if let Some(head) = tail
        .strip_suffix(PRECISE.as_bytes())
        .and_then(|t| t.strip_suffix(b" "))
    {
        precise = true;
        tail = head;
    }
    Ok(Region {
        id,
        start,
        len,
        step,
        program_id: program_id.into(),
        aux_data: tail.into(),
        precise,
        histogram,
    })
}

fn parse_bounds(list: &[u8]) -> Option<Vec<u64>> {
    list.split(|&b| b == b',').map(number).collect()
}

/// A decimal number: ASCII digits only (`u64::from_str` would take a `+`).
pub(crate) fn number(s: impl AsRef<[u8]>) -> Option<u64> {
    let s = s.as_ref();
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
