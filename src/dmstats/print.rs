//! `@stats_print` replies: a region's areas and their counters, and the
//! probe that checks a region is still the one listed. Pure text.

use super::list::{number, Region, RegionId, SkippedLine};
use super::message::msg_print;
use super::text::{c_str, Text};
use crate::extent::Extent;

/// The area a line of an `@stats_print` reply describes. The kernel prints
/// the region's step as its length, also for a last area the region's end
/// cuts short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Area {
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
pub(crate) fn parse_print(reply: impl AsRef<[u8]>) -> Result<Vec<Area>, SkippedLine> {
    // Numbers and spaces only: a reply that is not UTF-8 is no print.
    let reply = std::str::from_utf8(c_str(reply.as_ref())).map_err(|_| SkippedLine {
        line_no: 1,
        reason: "not text",
    })?;
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
pub(crate) struct Probe {
    pub msg: Text,
    expect: Area,
}

impl Probe {
    pub(crate) fn of(region: &Region) -> Probe {
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

    /// A region this program just made with [`msg_create`](super::msg_create): one area
    /// (`/1`), so its step is its length.
    pub(crate) fn of_created(id: RegionId, extent: Extent) -> Probe {
        Probe {
            msg: msg_print(id, 0, 2),
            expect: Area {
                start: extent.start,
                len: extent.len,
            },
        }
    }

    /// Whether the reply shows the region as listed.
    pub(crate) fn matches(&self, reply: &[u8]) -> bool {
        parse_print(reply).is_ok_and(|areas| areas == [self.expect])
    }
}
