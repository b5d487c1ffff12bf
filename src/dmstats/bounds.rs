//! Latency histogram bounds as `dmstats --bounds` takes them, and the
//! `histogram:` argument dmstats sends for them. Pure code, fuzzed.
//!
//! The syntax is libdm's `dm_histogram_bounds_from_string()`: a comma list
//! of whole numbers, each with an optional unit `ns`, `us`, `ms` or `s`.
//! A number without a unit takes the unit of the number before it (libdm
//! never resets its multiplier, whatever the man page says), nanoseconds
//! for the first: `1ms,2` is 1 ms and 2 ms, as dmstats reads it, so the
//! same list makes the same regions with either tool.
//!
//! Refused, as dmstats refuses them (libdm, or the kernel when dmstats
//! sends them): an empty list or item, any other character, a unit without
//! a number (libdm reads 0), zero, bounds that do not strictly increase.
//! Refused here although dmstats lets them through: a unit glued to the
//! next number (`1s2`, which libdm reads as `1s,2s`), and a value past
//! 2^64 ns (libdm wraps it). Too long a list is refused too: dmstats
//! builds its `@stats_create` in a 1 KiB buffer, and a group whose bounds
//! do not fit could not be updated by `dmstats update_filemap`.

use std::fmt;

pub(crate) const NS_PER_US: u64 = 1_000;
pub(crate) const NS_PER_MS: u64 = 1_000_000;
pub(crate) const NS_PER_S: u64 = 1_000_000_000;

/// Longest `histogram:` value (the comma list) whose `@stats_create`,
/// with the longest range, both options and program id `dmstats`, still
/// fits libdm's 1,024-byte message buffer.
pub const MAX_HISTOGRAM_ARG: usize = 924;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("empty bound list")]
    Empty,
    #[error("empty bound at position {0} (bounds are separated by single commas)")]
    EmptyItem(usize),
    #[error("'{0}' is not a number with an optional unit ns, us, ms or s")]
    Malformed(String),
    #[error("'{0}' has no number before its unit")]
    NoNumber(String),
    #[error("'{0}' is too large")]
    Overflow(String),
    #[error("bounds must be above zero: '{0}'")]
    Zero(String),
    #[error("bounds must increase: '{1}' does not come after '{0}'")]
    Order(String, String),
    #[error("bound list too long: its histogram argument is {0} bytes, dmstats takes at most {MAX_HISTOGRAM_ARG}")]
    TooLong(usize),
}

/// Parse a bound list into nanoseconds: non-empty, strictly increasing,
/// none zero.
pub fn parse(list: &str) -> Result<Vec<u64>, BoundsError> {
    if list.is_empty() {
        return Err(BoundsError::Empty);
    }
    let mut unit = 1;
    let mut out: Vec<u64> = Vec::new();
    let mut prev = "";
    for (i, item) in list.split(',').enumerate() {
        if item.is_empty() {
            return Err(BoundsError::EmptyItem(i + 1));
        }
        let digits = item.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = item.split_at(digits);
        unit = match suffix {
            "" => unit,
            "ns" => 1,
            "us" => NS_PER_US,
            "ms" => NS_PER_MS,
            "s" => NS_PER_S,
            _ => return Err(BoundsError::Malformed(crate::log::printable(item))),
        };
        if number.is_empty() {
            return Err(BoundsError::NoNumber(item.to_owned()));
        }
        let ns = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or_else(|| BoundsError::Overflow(item.to_owned()))?;
        if ns == 0 {
            return Err(BoundsError::Zero(item.to_owned()));
        }
        if out.last().is_some_and(|&last| ns <= last) {
            return Err(BoundsError::Order(prev.to_owned(), item.to_owned()));
        }
        out.push(ns);
        prev = item;
    }
    Ok(out)
}

/// What a region records: its timescale and its histogram boundaries in
/// that timescale, as dmstats sends them in `@stats_create`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// `precise_timestamps`: nanosecond counters instead of milliseconds.
    pub precise: bool,
    /// Boundaries in nanoseconds when `precise`, else in milliseconds;
    /// empty for no histogram.
    pub bounds: Vec<u64>,
}

impl Histogram {
    /// As libdm: a bound that is not a whole number of milliseconds turns
    /// `precise` on, and the bounds are sent in the region's timescale.
    pub fn new(precise: bool, bounds_ns: &[u64]) -> Result<Histogram, BoundsError> {
        let precise = precise || bounds_ns.iter().any(|b| b % NS_PER_MS != 0);
        let scale = if precise { 1 } else { NS_PER_MS };
        let bounds: Vec<u64> = bounds_ns.iter().map(|b| b / scale).collect();
        let len = Histogram {
            precise,
            bounds: bounds.clone(),
        }
        .arg_len();
        if len > MAX_HISTOGRAM_ARG {
            return Err(BoundsError::TooLong(len));
        }
        Ok(Histogram { precise, bounds })
    }

    fn arg_len(&self) -> usize {
        self.to_string().len()
    }
}

/// The comma list after `histogram:`.
impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.bounds.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        let ms = NS_PER_MS;
        let table: &[(&str, &[u64])] = &[
            ("1", &[1]),
            ("100,200", &[100, 200]),
            ("10us,1ms,1s", &[10_000, ms, NS_PER_S]),
            ("5ns,6us,7ms,8s", &[5, 6_000, 7 * ms, 8 * NS_PER_S]),
            ("10ms,20ms", &[10 * ms, 20 * ms]),
            // libdm's multiplier carries over to a number without a unit.
            ("1ms,2", &[ms, 2 * ms]),
            ("1ns,2us,3,4ms,5", &[1, 2_000, 3_000, 4 * ms, 5 * ms]),
            ("010", &[10]),
            ("18446744073709551615", &[u64::MAX]),
            ("18446744073s", &[18_446_744_073 * NS_PER_S]),
        ];
        for (list, want) in table {
            assert_eq!(parse(list).as_deref(), Ok(*want), "{list:?}");
        }
    }

    #[test]
    fn refused() {
        use BoundsError::*;
        let s = |x: &str| x.to_owned();
        let table: &[(&str, BoundsError)] = &[
            ("", Empty),
            (",", EmptyItem(1)),
            (",1", EmptyItem(1)),
            ("1,", EmptyItem(2)),
            ("1,,2", EmptyItem(2)),
            ("-1", Malformed(s("-1"))),
            ("+1", Malformed(s("+1"))),
            (" 1", Malformed(s(" 1"))),
            ("1 ", Malformed(s("1 "))),
            ("1, 2", Malformed(s(" 2"))),
            ("1m", Malformed(s("1m"))),
            ("1MS", Malformed(s("1MS"))),
            ("1sec", Malformed(s("1sec"))),
            ("1s2", Malformed(s("1s2"))),
            ("1ks", Malformed(s("1ks"))),
            ("1.5ms", Malformed(s("1.5ms"))),
            ("0x10", Malformed(s("0x10"))),
            ("ms", NoNumber(s("ms"))),
            ("1,s", NoNumber(s("s"))),
            ("0", Zero(s("0"))),
            ("0ms,1ms", Zero(s("0ms"))),
            ("1,1", Order(s("1"), s("1"))),
            ("2,1", Order(s("2"), s("1"))),
            ("1s,500ms", Order(s("1s"), s("500ms"))),
            ("1000ns,1us", Order(s("1000ns"), s("1us"))),
            // The second is 1 ms too: the unit carries over.
            ("1ms,1", Order(s("1ms"), s("1"))),
            ("18446744073709551616", Overflow(s("18446744073709551616"))),
            ("18446744074s", Overflow(s("18446744074s"))),
        ];
        for (list, want) in table {
            assert_eq!(parse(list).as_ref(), Err(want), "{list:?}");
        }
    }

    #[test]
    fn every_error_is_one_line() {
        for list in ["", ",", "x", "ms", "0", "2,1", "99999999999999999999"] {
            let e = parse(list).unwrap_err().to_string();
            assert!(!e.is_empty() && !e.contains('\n'), "{e:?}");
        }
        assert!(!BoundsError::TooLong(1000).to_string().contains('\n'));
    }

    #[test]
    fn histogram_as_dmstats_sends_it() {
        let ms = NS_PER_MS;
        let table: &[(bool, &[u64], bool, &[u64])] = &[
            // Whole milliseconds: sent in ms, precise only if asked.
            (false, &[10 * ms, 20 * ms], false, &[10, 20]),
            (true, &[10 * ms, 20 * ms], true, &[10 * ms, 20 * ms]),
            (false, &[NS_PER_S], false, &[1000]),
            // A finer bound turns precise on and everything goes in ns.
            (
                false,
                &[10_000, ms, NS_PER_S],
                true,
                &[10_000, ms, NS_PER_S],
            ),
            (false, &[100, 200], true, &[100, 200]),
            (false, &[ms + 1], true, &[ms + 1]),
            // No bounds: only --precise.
            (true, &[], true, &[]),
            (false, &[], false, &[]),
        ];
        for &(precise, ns, want_precise, want) in table {
            let h = Histogram::new(precise, ns).unwrap();
            assert_eq!(
                (h.precise, h.bounds.as_slice()),
                (want_precise, want),
                "{ns:?}"
            );
        }
        let h = Histogram::new(false, &parse("10us,1ms,1s").unwrap()).unwrap();
        assert_eq!(h.to_string(), "10000,1000000,1000000000");
        assert_eq!(Histogram::default().to_string(), "");
    }

    #[test]
    fn too_long_for_dmstats() {
        // Ten digits and a comma each: 84 fit, 90 do not.
        let fits: Vec<u64> = (1..=84).map(|i| 1_000_000_000 + i).collect();
        let h = Histogram::new(false, &fits).unwrap();
        assert!(h.to_string().len() <= MAX_HISTOGRAM_ARG);
        let long: Vec<u64> = (1..=90).map(|i| 1_000_000_000 + i).collect();
        assert_eq!(
            Histogram::new(false, &long),
            Err(BoundsError::TooLong(90 * 11 - 1))
        );
        // The same count in whole seconds, sent in ms, is short enough.
        let secs: Vec<u64> = (1..=90).map(|i| i * NS_PER_S).collect();
        assert!(Histogram::new(false, &secs).is_ok());
    }
}
