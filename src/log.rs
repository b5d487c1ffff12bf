//! The daemon's log: plain lines, without prefix or level, as C's dmfilemapd
//! writes them; info and detail on stdout, warnings and errors on stderr (C
//! puts warnings on stdout, among the chatter). Warnings and errors always
//! print; the rest needs `verbose >= level`. Once detached at verbose 0
//! stdio is `/dev/null`, and warnings and errors go to syslog instead
//! ([`use_syslog`], [`crate::log::syslog`]).
//!
//! Write errors are ignored: a closed pipe must never stop the daemon (and
//! `println!` would panic on one).

pub(crate) mod syslog;

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use syslog::Severity;

static VERBOSE: AtomicU8 = AtomicU8::new(0);
static SYSLOG: AtomicBool = AtomicBool::new(false);
static JOURNAL: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Error,
    Warn,
    /// verbose >= 1: the key lines (start, exit reasons).
    Info,
    /// verbose >= 2: what each update did.
    Verbose,
    /// verbose >= 3: every wake-up and check.
    Debug,
}

/// `s` with its control characters escaped (`\n`, `\u{1b}`), so that a
/// value quoted in a message keeps it one line.
pub(crate) fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub(crate) fn set_verbose(v: u8) {
    VERBOSE.store(v, Ordering::Relaxed);
}

pub(crate) fn verbose() -> u8 {
    VERBOSE.load(Ordering::Relaxed)
}

/// From now on warnings and errors go to syslog, not stderr: for the
/// detached daemon at verbose 0, which has no one else to tell.
pub(crate) fn use_syslog() {
    SYSLOG.store(true, Ordering::Relaxed);
}

/// Whether stderr is a stream to the journal: systemd then sets
/// `JOURNAL_STREAM=DEV:INO` to that stream's (systemd.exec(5)), and a line
/// that starts with `<N>` is stored at syslog priority N (sd-daemon(3)),
/// where any other line gets the unit's `SyslogLevel=` (info). So under a
/// unit (`map --foreground`) warnings and errors are prefixed `<4>`, `<3>`,
/// and `journalctl -p warning` shows them. Compared with stderr itself, not
/// just present: a child whose stderr was redirected inherits the variable.
pub(crate) fn detect_journal() {
    use std::os::fd::AsFd;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return;
    };
    let Ok(st) = rustix::fs::fstat(std::io::stderr().as_fd()) else {
        return;
    };
    // `as`: st_dev and st_ino are u64 on 64-bit Linux, narrower elsewhere.
    #[allow(clippy::unnecessary_cast)]
    if st.st_dev as u64 == dev && st.st_ino as u64 == ino {
        JOURNAL.store(true, Ordering::Relaxed);
    }
}

/// The `<N>` prefix of a stderr line for the journal, or nothing.
fn journal_prefix(level: Level) -> &'static str {
    match level {
        _ if !JOURNAL.load(Ordering::Relaxed) => "",
        Level::Error => "<3>",
        Level::Warn => "<4>",
        _ => "",
    }
}

pub(crate) fn enabled(level: Level) -> bool {
    match level {
        Level::Error | Level::Warn => true,
        Level::Info => verbose() >= 1,
        Level::Verbose => verbose() >= 2,
        Level::Debug => verbose() >= 3,
    }
}

pub(crate) fn emit(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let _ = match level {
        Level::Error | Level::Warn if SYSLOG.load(Ordering::Relaxed) => {
            let severity = match level {
                Level::Error => Severity::Error,
                _ => Severity::Warning,
            };
            crate::log::syslog::send(severity, &args.to_string());
            Ok(())
        }
        Level::Error | Level::Warn => {
            writeln!(std::io::stderr().lock(), "{}{args}", journal_prefix(level))
        }
        _ => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{args}").and_then(|()| out.flush())
        }
    };
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Error, format_args!($($t)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Warn, format_args!($($t)*)) };
}

#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Info, format_args!($($t)*)) };
}

#[macro_export]
macro_rules! verbose {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Verbose, format_args!($($t)*)) };
}

#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Debug, format_args!($($t)*)) };
}
