//! `@stats_list` replies: one region a line, read back into [`Region`]s
//! that print again to the same line. Pure text.

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

/// The start of a long hostile text is enough for a log line.
pub(super) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}
