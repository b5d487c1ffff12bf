//! The command line, compatible with lvm2's dmfilemapd:
//! `dmfilemapd <fd> <group_id> <abs_path> <mode> [<foreground>[<verbose>]]`.
//!
//! libdm's `dm_stats_start_filemapd()` always passes all six arguments; the
//! last two may be left out by hand. Every value is checked strictly: C's
//! `strtol` takes `""` as fd 0 and `-1` as a foreground flag, we refuse both.
//!
//! Owns: [`Args`] and the usage errors. Touches: nothing; the process's
//! role is decided in `main`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str =
    "usage: dmfilemapd <fd> <group_id> <abs_path> <mode> [<foreground>[<verbose>]]";

pub const HELP: &str = "\
usage: dmfilemapd <fd> <group_id> <abs_path> <mode> [<foreground>[<verbose>]]

Keep a dm-stats filemap group in step with the extents of a file.
Normally started by `dmstats create --filemap`.

  fd          descriptor, open for reading, of the file to follow
  group_id    id of the dm-stats group mapping that file
  abs_path    absolute path of the file when it was opened
  mode        inode: follow the file through renames
              path: follow whatever file is at abs_path
  foreground  non-zero: do not detach (default 0)
  verbose     0 (silent) to 3 (most detail) (default 0)

  -h, --help     print this help
  -V, --version  print the version";

/// How the daemon follows the file (see the man page, MODES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Inode,
    Path,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Inode => "inode",
            Mode::Path => "path",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Inherited from the caller, who opened the file.
    pub fd: i32,
    pub group_id: u64,
    /// Absolute; kept as bytes so a non-UTF-8 file name still works.
    pub path: PathBuf,
    pub mode: Mode,
    pub foreground: bool,
    /// 0..=3
    pub verbose: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Help,
    Version,
}

/// Each variant is one line naming what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    #[error("Wrong number of arguments.")]
    WrongCount,
    #[error("Could not parse file descriptor: '{0}' (expected a decimal integer 0..=2147483647)")]
    Fd(String),
    #[error("Could not parse group identifier: '{0}' (expected a decimal integer 0..=18446744073709551615)")]
    GroupId(String),
    #[error("Path argument is required.")]
    EmptyPath,
    #[error("Path argument must specify an absolute path: '{0}'")]
    RelativePath(String),
    #[error("Unknown mode: '{0}' (expected 'inode' or 'path')")]
    Mode(String),
    #[error(
        "Could not parse foreground argument: '{0}' (expected a non-negative decimal integer)"
    )]
    Foreground(String),
    #[error("Could not parse verbose argument: '{0}' (expected 0, 1, 2 or 3)")]
    Verbose(String),
    #[error("Unknown option: '{0}'")]
    UnknownOption(String),
}

/// Parse the whole argv (`argv[0]` is skipped, whatever it holds).
pub fn parse<I>(argv: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_iter(argv);
    let mut values: Vec<OsString> = Vec::new();
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            // lexopt only fails here on `--opt=value` for a flag, which we never accept.
            Err(e) => return Err(UsageError::UnknownOption(e.to_string())),
        };
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            // A negative number such as `-1` reaches us as an option: rebuild the
            // argument so the positional check names it.
            Short(c) if c.is_ascii_digit() => {
                let mut v = OsString::from(format!("-{c}"));
                if let Some(rest) = parser.optional_value() {
                    v.push(rest);
                }
                values.push(v);
            }
            Short(c) => return Err(UsageError::UnknownOption(format!("-{c}"))),
            Long(name) => return Err(UsageError::UnknownOption(format!("--{name}"))),
            Value(v) => values.push(v),
        }
    }
    if !(4..=6).contains(&values.len()) {
        return Err(UsageError::WrongCount);
    }
    let mut values = values.into_iter();
    let mut next = || values.next();

    let fd = next().unwrap_or_default();
    let fd = decimal(&fd)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| UsageError::Fd(lossy(&fd)))?;

    let group = next().unwrap_or_default();
    let group_id = decimal(&group).ok_or_else(|| UsageError::GroupId(lossy(&group)))?;

    let path = next().unwrap_or_default();
    if path.is_empty() {
        return Err(UsageError::EmptyPath);
    }
    if !path.as_encoded_bytes().starts_with(b"/") {
        return Err(UsageError::RelativePath(lossy(&path)));
    }

    let mode = next().unwrap_or_default();
    let mode = match mode.to_str() {
        Some("inode") => Mode::Inode,
        Some("path") => Mode::Path,
        _ => return Err(UsageError::Mode(lossy(&mode))),
    };

    let foreground = match next() {
        None => false,
        Some(v) => decimal(&v).ok_or_else(|| UsageError::Foreground(lossy(&v)))? != 0,
    };

    let verbose = match next() {
        None => 0,
        Some(v) => decimal(&v)
            .and_then(|n| u8::try_from(n).ok())
            .filter(|n| *n <= 3)
            .ok_or_else(|| UsageError::Verbose(lossy(&v)))?,
    };

    Ok(Command::Run(Args {
        fd,
        group_id,
        path: PathBuf::from(path),
        mode,
        foreground,
        verbose,
    }))
}

/// Plain ASCII digits only: no sign, no blanks, no empty string, no overflow.
fn decimal(s: &OsStr) -> Option<u64> {
    let b = s.as_encoded_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn lossy(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}
