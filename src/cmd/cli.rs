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
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::daemon::source::Mode;
use crate::dmstats::bounds::{self, BoundsError, Histogram};
use crate::dmstats::{AliasError, Descriptor, Dialect};
use crate::log::printable;

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
  -V, --version  print the version

dmfilemapd map [--follow inode|path] [--alias NAME] [--precise]
               [--bounds LIST] [--dialect auto|bare|quoted]
               [--foreground] [--verbose N] FILE
  Map FILE to a new dm-stats group as `dmstats create --filemap` does,
  print dmstats' line naming the group, then follow it as above.
  --follow    inode (default) or path
  --alias     the group's alias (default: the file's name)
  --precise   nanosecond counters
  --bounds    latency histogram bounds, dmstats' syntax: 10us,1ms,1s
  --dialect   how the group's descriptor names its alias: bare
              (DMS_GROUP=alias:, lvm2 < 2.03.23), quoted (DMS_GROUP=\"alias\":)
              or auto (default: the one this system's libdevmapper reads)

dmfilemapd unmap [--verbose N] FILE
dmfilemapd unmap --group ID [--verbose N] DEVICE-OR-FILE
  Delete FILE's group (the one whose regions are exactly the file's
  extents), or group ID on the device; its daemon then exits.";

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
    Map(MapArgs),
    Unmap(UnmapArgs),
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
    #[error("{0}: a file argument is required.")]
    MissingFile(&'static str),
    #[error("Unexpected argument: '{0}'")]
    ExtraArgument(String),
    #[error("Option '{0}' needs a value.")]
    MissingValue(String),
    #[error("Option '{0}' takes no value.")]
    UnexpectedValue(String),
    #[error("Unknown --follow mode: '{0}' (expected 'inode' or 'path')")]
    Follow(String),
    #[error("Unknown --dialect: '{0}' (expected 'auto', 'bare' or 'quoted')")]
    Dialect(String),
    #[error("Could not parse --bounds '{list}': {source}")]
    Bounds {
        list: String,
        #[source]
        source: BoundsError,
    },
    #[error("Bad --alias: {0}")]
    Alias(#[from] AliasError),
    #[error("Option '{0}' needs text in UTF-8.")]
    NotUtf8(String),
}

/// Parse the whole argv (`argv[0]` is skipped, whatever it holds).
pub fn parse<I>(argv: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::Arg::{Long, Short, Value};

    // The positional form starts with a number: a word cannot be one.
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    match argv.get(1).and_then(|a| a.to_str()) {
        Some("map") => return parse_map(&argv[2..]),
        Some("unmap") => return parse_unmap(&argv[2..]),
        _ => {}
    }
    let mut parser = lexopt::Parser::from_iter(argv);
    let mut values: Vec<OsString> = Vec::new();
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            // lexopt only fails here on `--opt=value` for a flag, which we never accept.
            Err(e) => return Err(UsageError::UnknownOption(printable(&e.to_string()))),
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
            Short(c) => return Err(UsageError::UnknownOption(printable(&format!("-{c}")))),
            Long(name) => return Err(UsageError::UnknownOption(printable(&format!("--{name}")))),
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

/// A value for an error message: lossy UTF-8, control characters escaped.
fn lossy(s: &OsStr) -> String {
    printable(&s.to_string_lossy())
}

/// `dmfilemapd map [options] FILE`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapArgs {
    /// As given: printed back in the "Created new group" line, as dmstats does.
    pub file: PathBuf,
    pub mode: Mode,
    /// `None`: the name of the file (after resolving links), as dmstats.
    /// Any bytes but those no reader reads back ([`AliasError`]): a file
    /// name need not be UTF-8, nor an `--alias` that copies one.
    pub alias: Option<OsString>,
    /// `--precise` and `--bounds` as dmstats sends them (a bound finer than
    /// a millisecond turns precise on).
    pub histogram: Histogram,
    /// `--dialect bare|quoted`; `None` (`auto`): the dialect this system's
    /// dmstats reads back intact.
    pub dialect: Option<Dialect>,
    pub foreground: bool,
    pub verbose: u8,
}

/// `dmfilemapd unmap [--group ID] TARGET`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmapArgs {
    /// The mapped file; with `group`, any file on the device or the device.
    pub target: PathBuf,
    pub group: Option<u64>,
    pub verbose: u8,
}

/// What lexopt reports, in our words.
fn option_error(e: lexopt::Error) -> UsageError {
    match e {
        lexopt::Error::MissingValue { option } => {
            UsageError::MissingValue(printable(&option.unwrap_or_default()))
        }
        lexopt::Error::UnexpectedValue { option, .. } => {
            UsageError::UnexpectedValue(printable(&option))
        }
        lexopt::Error::UnexpectedOption(o) => UsageError::UnknownOption(printable(&o)),
        lexopt::Error::UnexpectedArgument(a) => UsageError::ExtraArgument(lossy(&a)),
        e => UsageError::UnknownOption(printable(&e.to_string())),
    }
}

fn text_value(parser: &mut lexopt::Parser, option: &str) -> Result<String, UsageError> {
    parser
        .value()
        .map_err(option_error)?
        .into_string()
        .map_err(|_| UsageError::NotUtf8(option.to_owned()))
}

fn verbose_value(parser: &mut lexopt::Parser) -> Result<u8, UsageError> {
    let v = parser.value().map_err(option_error)?;
    decimal(&v)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| *n <= 3)
        .ok_or_else(|| UsageError::Verbose(lossy(&v)))
}

/// The one positional argument of `map` and `unmap`.
fn one_file(file: &mut Option<OsString>, v: OsString) -> Result<(), UsageError> {
    if file.is_some() {
        return Err(UsageError::ExtraArgument(lossy(&v)));
    }
    if v.is_empty() {
        return Err(UsageError::EmptyPath);
    }
    *file = Some(v);
    Ok(())
}

/// The options of `map`, after the word. Options and the file may come in
/// any order; `--` ends the options; a repeated option keeps its last value.
pub(crate) fn parse_map(args: &[OsString]) -> Result<Command, UsageError> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(args.iter().cloned());
    let (mut mode, mut alias, mut precise, mut list) = (Mode::Inode, None, false, None);
    let mut dialect = None;
    let (mut foreground, mut verbose, mut file) = (false, 0, None);
    while let Some(arg) = parser.next().map_err(option_error)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("follow") => {
                let v = parser.value().map_err(option_error)?;
                mode = match v.to_str() {
                    Some("inode") => Mode::Inode,
                    Some("path") => Mode::Path,
                    _ => return Err(UsageError::Follow(lossy(&v))),
                };
            }
            Long("alias") => alias = Some(parser.value().map_err(option_error)?),
            Long("dialect") => {
                let v = parser.value().map_err(option_error)?;
                dialect = match v.to_str() {
                    Some("auto") => None,
                    Some("bare") => Some(Dialect::Bare),
                    Some("quoted") => Some(Dialect::Quoted),
                    _ => return Err(UsageError::Dialect(lossy(&v))),
                };
            }
            Long("precise") => precise = true,
            Long("bounds") => list = Some(text_value(&mut parser, "--bounds")?),
            Long("foreground") => foreground = true,
            Long("verbose") => verbose = verbose_value(&mut parser)?,
            Value(v) => one_file(&mut file, v)?,
            Short(c) => return Err(UsageError::UnknownOption(printable(&format!("-{c}")))),
            Long(name) => return Err(UsageError::UnknownOption(printable(&format!("--{name}")))),
        }
    }
    let file = file.ok_or(UsageError::MissingFile("map"))?;
    let bounds_ns = match &list {
        Some(l) => bounds::parse(l).map_err(|source| UsageError::Bounds {
            list: printable(l),
            source,
        })?,
        None => Vec::new(),
    };
    let histogram = Histogram::new(precise, &bounds_ns).map_err(|source| UsageError::Bounds {
        list: list.unwrap_or_default(),
        source,
    })?;
    if let Some(a) = &alias {
        // Refused now rather than after the regions exist.
        Descriptor::for_new_group(a.as_bytes(), vec![0])?;
    }
    Ok(Command::Map(MapArgs {
        file: PathBuf::from(file),
        mode,
        alias,
        histogram,
        dialect,
        foreground,
        verbose,
    }))
}

/// The options of `unmap`, after the word.
pub(crate) fn parse_unmap(args: &[OsString]) -> Result<Command, UsageError> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(args.iter().cloned());
    let (mut group, mut verbose, mut target) = (None, 0, None);
    while let Some(arg) = parser.next().map_err(option_error)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("group") => {
                let v = parser.value().map_err(option_error)?;
                group = Some(decimal(&v).ok_or_else(|| UsageError::GroupId(lossy(&v)))?);
            }
            Long("verbose") => verbose = verbose_value(&mut parser)?,
            Value(v) => one_file(&mut target, v)?,
            Short(c) => return Err(UsageError::UnknownOption(printable(&format!("-{c}")))),
            Long(name) => return Err(UsageError::UnknownOption(printable(&format!("--{name}")))),
        }
    }
    let target = target.ok_or(UsageError::MissingFile("unmap"))?;
    Ok(Command::Unmap(UnmapArgs {
        target: PathBuf::from(target),
        group,
        verbose,
    }))
}
