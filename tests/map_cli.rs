//! The `map` and `unmap` command lines as tables: argv in, command or
//! one-line error out.

use std::path::PathBuf;

use dmfilemapd::{parse_args as parse, Command, MapArgs, Mode, UnmapArgs, UsageError};
use dmfilemapd::{AliasError, Dialect};
use dmfilemapd::{BoundsError, Histogram};

fn run(argv: &[&str]) -> Result<Command, UsageError> {
    parse(std::iter::once("dmfilemapd").chain(argv.iter().copied()))
}

fn map(file: &str) -> MapArgs {
    MapArgs {
        file: PathBuf::from(file),
        mode: Mode::Inode,
        alias: None,
        histogram: Histogram::default(),
        dialect: None,
        foreground: false,
        verbose: 0,
    }
}

fn hist(precise: bool, bounds: &[u64]) -> Histogram {
    Histogram {
        precise,
        bounds: bounds.to_vec(),
    }
}

fn unmap(target: &str, group: Option<u64>, verbose: u8) -> Command {
    Command::Unmap(UnmapArgs {
        target: PathBuf::from(target),
        group,
        verbose,
    })
}

#[test]
fn map_accepts() {
    let table: Vec<(&[&str], MapArgs)> = vec![
        (&["map", "f"], map("f")),
        (&["map", "/srv/vm.img"], map("/srv/vm.img")),
        (
            &["map", "--follow", "path", "f"],
            MapArgs {
                mode: Mode::Path,
                ..map("f")
            },
        ),
        (&["map", "--dialect", "auto", "f"], map("f")),
        (
            &["map", "--dialect=quoted", "f"],
            MapArgs {
                dialect: Some(Dialect::Quoted),
                ..map("f")
            },
        ),
        (&["map", "--follow=inode", "f"], map("f")),
        (
            &["map", "f", "--follow", "path"],
            MapArgs {
                mode: Mode::Path,
                ..map("f")
            },
        ),
        (
            &["map", "--alias", "my file", "f"],
            MapArgs {
                alias: Some("my file".into()),
                ..map("f")
            },
        ),
        (
            &["map", "--alias=", "f"],
            MapArgs {
                alias: Some("".into()),
                ..map("f")
            },
        ),
        (
            &["map", "--alias", "my file", "f"],
            MapArgs {
                alias: Some("my file".into()),
                ..map("f")
            },
        ),
        (
            &["map", "--precise", "f"],
            MapArgs {
                histogram: hist(true, &[]),
                ..map("f")
            },
        ),
        // Whole milliseconds go in ms, without precise ...
        (
            &["map", "--bounds", "10ms,20ms", "f"],
            MapArgs {
                histogram: hist(false, &[10, 20]),
                ..map("f")
            },
        ),
        // ... unless asked for ...
        (
            &["map", "--precise", "--bounds", "10ms,20ms", "f"],
            MapArgs {
                histogram: hist(true, &[10_000_000, 20_000_000]),
                ..map("f")
            },
        ),
        // ... or a finer bound needs it, as dmstats does.
        (
            &["map", "--bounds", "10us,1ms,1s", "f"],
            MapArgs {
                histogram: hist(true, &[10_000, 1_000_000, 1_000_000_000]),
                ..map("f")
            },
        ),
        (
            &["map", "--bounds=100,200", "f"],
            MapArgs {
                histogram: hist(true, &[100, 200]),
                ..map("f")
            },
        ),
        (
            &["map", "--foreground", "f"],
            MapArgs {
                foreground: true,
                ..map("f")
            },
        ),
        (
            &["map", "--verbose", "3", "f"],
            MapArgs {
                verbose: 3,
                ..map("f")
            },
        ),
        (&["map", "--verbose=0", "f"], map("f")),
        // The last of a repeated option counts, as with getopt.
        (
            &["map", "--verbose", "3", "--verbose", "1", "f"],
            MapArgs {
                verbose: 1,
                ..map("f")
            },
        ),
        // A file that looks like an option, after `--`; a file named like a number.
        (&["map", "--", "-f"], map("-f")),
        (&["map", "3"], map("3")),
        (&["map", "map"], map("map")),
        (
            &[
                "map",
                "--follow",
                "path",
                "--alias",
                "db",
                "--precise",
                "--bounds",
                "1ms,2ms",
                "--dialect",
                "bare",
                "--foreground",
                "--verbose",
                "2",
                "/d/x",
            ],
            MapArgs {
                file: PathBuf::from("/d/x"),
                mode: Mode::Path,
                alias: Some("db".into()),
                histogram: hist(true, &[1_000_000, 2_000_000]),
                dialect: Some(Dialect::Bare),
                foreground: true,
                verbose: 2,
            },
        ),
    ];
    for (argv, want) in table {
        assert_eq!(run(argv), Ok(Command::Map(want)), "{argv:?}");
    }
}

#[test]
fn map_refuses() {
    use UsageError::*;
    let s = |v: &str| v.to_owned();
    let bounds = |list: &str, source| Bounds {
        list: s(list),
        source,
    };
    let table: &[(&[&str], UsageError)] = &[
        (&["map"], MissingFile("map")),
        (&["map", "--precise"], MissingFile("map")),
        (&["map", ""], EmptyPath),
        (&["map", "a", "b"], ExtraArgument(s("b"))),
        (
            &["map", "--frobnicate", "f"],
            UnknownOption(s("--frobnicate")),
        ),
        (&["map", "-x", "f"], UnknownOption(s("-x"))),
        (&["map", "--nogroup", "f"], UnknownOption(s("--nogroup"))),
        (&["map", "f", "--follow"], MissingValue(s("--follow"))),
        (&["map", "--follow", "name", "f"], Follow(s("name"))),
        (&["map", "--follow", "", "f"], Follow(s(""))),
        (
            &["map", "--dialect", "new", "f"],
            UsageError::Dialect(s("new")),
        ),
        (
            &["map", "--precise=1", "f"],
            UnexpectedValue(s("--precise")),
        ),
        (
            &["map", "--foreground=yes", "f"],
            UnexpectedValue(s("--foreground")),
        ),
        (&["map", "--verbose", "4", "f"], Verbose(s("4"))),
        (&["map", "--verbose", "-1", "f"], Verbose(s("-1"))),
        (&["map", "--verbose", "f"], Verbose(s("f"))),
        (&["map", "f", "--alias"], MissingValue(s("--alias"))),
        (
            &["map", "--alias", "a\nb", "f"],
            Alias(AliasError::Newline(s("\"a\\nb\""))),
        ),
        (
            &["map", "--alias", "x\":y", "f"],
            Alias(AliasError::Colon(s("\"x\\\":y\""))),
        ),
        (
            &["map", "--alias", "a:b", "f"],
            Alias(AliasError::Colon(s("\"a:b\""))),
        ),
        (
            &["map", "--alias", "a# b", "f"],
            Alias(AliasError::SpaceAfterHash(s("\"a# b\""))),
        ),
        (&["map", "f", "--bounds"], MissingValue(s("--bounds"))),
        (
            &["map", "--bounds", "", "f"],
            bounds("", BoundsError::Empty),
        ),
        (
            &["map", "--bounds", "-5", "f"],
            bounds("-5", BoundsError::Malformed(s("-5"))),
        ),
        (
            &["map", "--bounds", "2,1", "f"],
            bounds("2,1", BoundsError::Order(s("2"), s("1"))),
        ),
        (
            &["map", "--bounds", "5ks", "f"],
            bounds("5ks", BoundsError::Malformed(s("5ks"))),
        ),
        (
            &["map", "--bounds", "0", "f"],
            bounds("0", BoundsError::Zero(s("0"))),
        ),
        // Control characters are shown escaped: an error stays one line.
        (&["map", "--x\ny", "f"], UnknownOption(s("--x\\ny"))),
        (&["map", "--follow", "a\nb", "f"], Follow(s("a\\nb"))),
        (
            &["map", "--bounds", "1\n", "f"],
            bounds("1\\n", BoundsError::Malformed(s("1\\n"))),
        ),
    ];
    for (argv, want) in table {
        assert_eq!(run(argv).as_ref(), Err(want), "{argv:?}");
    }
}

#[test]
fn map_refuses_a_bound_list_too_long_for_dmstats() {
    let list: Vec<String> = (1..=100)
        .map(|i| format!("{}", 1_000_000_000 + i))
        .collect();
    let list = list.join(",");
    match run(&["map", "--bounds", &list, "f"]) {
        Err(UsageError::Bounds {
            source: BoundsError::TooLong(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn unmap_table() {
    use UsageError::*;
    let s = |v: &str| v.to_owned();
    let ok: &[(&[&str], Command)] = &[
        (&["unmap", "f"], unmap("f", None, 0)),
        (
            &["unmap", "--group", "7", "/dev/mapper/vg-lv"],
            unmap("/dev/mapper/vg-lv", Some(7), 0),
        ),
        (
            &["unmap", "/f", "--group=0", "--verbose", "2"],
            unmap("/f", Some(0), 2),
        ),
        (&["unmap", "--", "--group"], unmap("--group", None, 0)),
    ];
    for (argv, want) in ok {
        assert_eq!(run(argv).as_ref(), Ok(want), "{argv:?}");
    }
    let bad: &[(&[&str], UsageError)] = &[
        (&["unmap"], MissingFile("unmap")),
        (&["unmap", "--group", "3"], MissingFile("unmap")),
        (&["unmap", "a", "b"], ExtraArgument(s("b"))),
        (&["unmap", "--group", "x", "f"], GroupId(s("x"))),
        (&["unmap", "--group", "-1", "f"], GroupId(s("-1"))),
        (&["unmap", "--group", "", "f"], GroupId(s(""))),
        (&["unmap", "f", "--group"], MissingValue(s("--group"))),
        (
            &["unmap", "--follow", "path", "f"],
            UnknownOption(s("--follow")),
        ),
        (&["unmap", "--verbose", "9", "f"], Verbose(s("9"))),
    ];
    for (argv, want) in bad {
        assert_eq!(run(argv).as_ref(), Err(want), "{argv:?}");
    }
}

#[test]
fn help_and_the_positional_form_are_unchanged() {
    assert_eq!(run(&["map", "--help"]), Ok(Command::Help));
    assert_eq!(run(&["unmap", "-h"]), Ok(Command::Help));
    assert!(dmfilemapd::HELP.contains("dmfilemapd map"));
    // A number first is the positional form; a word that is not a command
    // is a bad fd, as before.
    assert!(matches!(
        run(&["3", "0", "/f", "inode"]),
        Ok(Command::Run(_))
    ));
    assert_eq!(
        run(&["mapx", "0", "/f", "inode"]),
        Err(UsageError::Fd("mapx".into()))
    );
    assert_eq!(run(&["Map", "f"]), Err(UsageError::WrongCount));
}

#[test]
fn every_error_is_one_line() {
    for argv in [
        &["map"][..],
        &["map", "--bounds", "1,,2", "f"],
        &["map", "--alias", "x\":y", "f"],
        &["map", "--follow", "x", "f"],
        &["unmap", "--group", "x", "f"],
        &["unmap", "a", "b"],
    ] {
        let e = run(argv).unwrap_err().to_string();
        assert!(!e.is_empty() && !e.contains('\n'), "{argv:?}: {e:?}");
    }
}

fn bin(argv: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dmfilemapd"))
        .args(argv)
        .output()
        .expect("run the binary")
}

/// Refused before any device is touched: one line on stderr, exit 1,
/// nothing on stdout.
#[test]
fn binary_refusals_are_one_line() {
    let dir = std::env::temp_dir().join(format!("map-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("f");
    std::fs::write(&file, b"data").unwrap();
    let (d, f) = (dir.to_str().unwrap(), file.to_str().unwrap());
    for argv in [
        &["map"][..],
        &["map", "--bounds", "2,1", f],
        &["map", "--frobnicate", f],
        &["map", d],
        &["map", "/nonexistent/file"],
        // Off device-mapper, or on it without a group: refused either way.
        &["unmap", f],
        &["unmap", "--group", "0", d],
        &["unmap", "--group", "x", f],
    ] {
        let out = bin(argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{argv:?}: {err}");
        assert!(out.stdout.is_empty(), "{argv:?}");
        assert_eq!(err.lines().count(), 1, "{argv:?}: {err}");
        assert!(err.starts_with("dmfilemapd: "), "{argv:?}: {err}");
    }
    assert!(String::from_utf8_lossy(&bin(&["map", d]).stderr).contains("a directory"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--alias` and the file are bytes, as the kernel hands argv over: a name
/// that is not UTF-8, tabs, a leading dash, a backslash, 255 bytes.
#[test]
fn map_takes_any_bytes_dmstats_takes() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
    let long = [&[b'n'; 251][..], b".img"].concat();
    for alias in [
        &b"caf\xe9.img"[..],
        b"file\twith\ttabs",
        b"-dash",
        b"back\\slash",
        b"cr\r vt\x0b ff\x0c nbsp\xa0",
        &long,
    ] {
        let file = [&b"/mnt/"[..], alias].concat();
        let argv = ["dmfilemapd", "map", "--alias"]
            .map(OsString::from)
            .into_iter()
            .chain([bytes(alias), "--".into(), bytes(&file)]);
        let Ok(Command::Map(m)) = parse(argv) else {
            panic!("{alias:?} refused");
        };
        assert_eq!(m.alias, Some(bytes(alias)));
        assert_eq!(m.file, PathBuf::from(bytes(&file)));
    }
    let refused = parse(
        ["dmfilemapd", "map", "--alias"]
            .map(OsString::from)
            .into_iter()
            .chain([bytes(b"\xff:"), "f".into()]),
    );
    assert_eq!(
        refused,
        Err(UsageError::Alias(AliasError::Colon(r#""\xff:""#.into())))
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        r#"Bad --alias: alias "\xff:" holds a ':', which no dmstats reads back"#
    );
}
