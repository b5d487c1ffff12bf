//! The command line as a table: argv in, command or one-line error out.
//! Plus the binary itself for the cases that end before any device access.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::Command as Process;

use dmfilemapd::{parse_args as parse, Args, Command, Mode, UsageError};

fn run(argv: &[&str]) -> Result<Command, UsageError> {
    parse(std::iter::once("dmfilemapd").chain(argv.iter().copied()))
}

fn args(fd: i32, group_id: u64, path: &str, mode: Mode, foreground: bool, verbose: u8) -> Command {
    Command::Run(Args {
        fd,
        group_id,
        path: PathBuf::from(path),
        mode,
        foreground,
        verbose,
    })
}

#[test]
fn accepts() {
    use Mode::*;
    let table: &[(&[&str], Command)] = &[
        (
            &["3", "0", "/f", "inode"],
            args(3, 0, "/f", Inode, false, 0),
        ),
        (&["3", "0", "/f", "path"], args(3, 0, "/f", Path, false, 0)),
        (
            &["3", "7", "/a b/c", "inode", "1"],
            args(3, 7, "/a b/c", Inode, true, 0),
        ),
        (
            &["3", "7", "/f", "inode", "0", "3"],
            args(3, 7, "/f", Inode, false, 3),
        ),
        (
            &["0", "0", "/", "path", "2", "0"],
            args(0, 0, "/", Path, true, 0),
        ),
        (
            &["2147483647", "18446744073709551615", "/f", "inode"],
            args(i32::MAX, u64::MAX, "/f", Inode, false, 0),
        ),
        (
            &["007", "010", "/f", "inode", "00", "01"],
            args(7, 10, "/f", Inode, false, 1),
        ),
        // The argument separator lets a value start with '-'; it is then refused as a value.
        (
            &["--", "3", "0", "/f", "inode"],
            args(3, 0, "/f", Inode, false, 0),
        ),
    ];
    for (argv, want) in table {
        assert_eq!(run(argv).as_ref(), Ok(want), "{argv:?}");
    }
}

#[test]
fn refuses() {
    use UsageError::*;
    let s = |v: &str| v.to_owned();
    let table: &[(&[&str], UsageError)] = &[
        (&[], WrongCount),
        (&["3"], WrongCount),
        (&["3", "0", "/f"], WrongCount),
        (&["3", "0", "/f", "inode", "0", "0", "extra"], WrongCount),
        (&["", "0", "/f", "inode"], Fd(s(""))),
        (&["-1", "0", "/f", "inode"], Fd(s("-1"))),
        (&["-12", "0", "/f", "inode"], Fd(s("-12"))),
        (&["+3", "0", "/f", "inode"], Fd(s("+3"))),
        (&[" 3", "0", "/f", "inode"], Fd(s(" 3"))),
        (&["3x", "0", "/f", "inode"], Fd(s("3x"))),
        (&["2147483648", "0", "/f", "inode"], Fd(s("2147483648"))),
        (
            &["99999999999999999999999", "0", "/f", "inode"],
            Fd(s("99999999999999999999999")),
        ),
        (&["3", "", "/f", "inode"], GroupId(s(""))),
        (&["3", "-1", "/f", "inode"], GroupId(s("-1"))),
        (
            &["3", "18446744073709551616", "/f", "inode"],
            GroupId(s("18446744073709551616")),
        ),
        (&["3", "0x10", "/f", "inode"], GroupId(s("0x10"))),
        (&["3", "0", "", "inode"], EmptyPath),
        (&["3", "0", "f", "inode"], RelativePath(s("f"))),
        (&["3", "0", "./f", "inode"], RelativePath(s("./f"))),
        (&["3", "0", "/f", ""], Mode(s(""))),
        (&["3", "0", "/f", "Inode"], Mode(s("Inode"))),
        (&["3", "0", "/f", "follow"], Mode(s("follow"))),
        (&["3", "0", "/f", "inode", ""], Foreground(s(""))),
        (&["3", "0", "/f", "inode", "-1"], Foreground(s("-1"))),
        (&["3", "0", "/f", "inode", "yes"], Foreground(s("yes"))),
        (
            &["3", "0", "/f", "inode", "99999999999999999999999"],
            Foreground(s("99999999999999999999999")),
        ),
        (&["3", "0", "/f", "inode", "0", "4"], Verbose(s("4"))),
        (&["3", "0", "/f", "inode", "0", "-1"], Verbose(s("-1"))),
        (&["3", "0", "/f", "inode", "0", ""], Verbose(s(""))),
        (&["3", "0", "/f", "inode", "0", "256"], Verbose(s("256"))),
        (
            &["--frobnicate", "3", "0", "/f", "inode"],
            UnknownOption(s("--frobnicate")),
        ),
        (&["-x", "3", "0", "/f", "inode"], UnknownOption(s("-x"))),
    ];
    for (argv, want) in table {
        assert_eq!(run(argv).as_ref(), Err(want), "{argv:?}");
    }
}

#[test]
fn errors_are_one_line_naming_the_value() {
    for (argv, bad) in [
        (&["-1", "0", "/f", "inode"][..], "'-1'"),
        (
            &["3", "99999999999999999999", "/f", "inode"],
            "'99999999999999999999'",
        ),
        (&["3", "0", "rel", "inode"], "'rel'"),
        (&["3", "0", "/f", "bogus"], "'bogus'"),
        (&["3", "0", "/f", "inode", "x"], "'x'"),
        (&["3", "0", "/f", "inode", "0", "9"], "'9'"),
    ] {
        let msg = run(argv).unwrap_err().to_string();
        assert!(!msg.contains('\n') && msg.contains(bad), "{argv:?}: {msg}");
    }
}

#[test]
fn help_and_version() {
    assert_eq!(run(&["--help"]), Ok(Command::Help));
    assert_eq!(run(&["-h"]), Ok(Command::Help));
    assert_eq!(run(&["3", "0", "/f", "inode", "--help"]), Ok(Command::Help));
    assert_eq!(run(&["--version"]), Ok(Command::Version));
    assert_eq!(run(&["-V"]), Ok(Command::Version));
}

#[test]
fn argv0_is_ignored() {
    let argv = ["--help", "3", "0", "/f", "inode"];
    assert_eq!(parse(argv), run(&["3", "0", "/f", "inode"]));
}

#[cfg(unix)]
#[test]
fn non_utf8_path_is_kept() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let path = OsString::from_vec(b"/tmp/\xff".to_vec());
    let argv: Vec<OsString> = vec![
        "dmfilemapd".into(),
        "3".into(),
        "0".into(),
        path.clone(),
        "inode".into(),
    ];
    match parse(argv) {
        Ok(Command::Run(a)) => assert_eq!(a.path.into_os_string(), path),
        other => panic!("{other:?}"),
    }
}

// The binary: what a caller sees on the terminal.

fn bin(argv: &[&str]) -> std::process::Output {
    Process::new(env!("CARGO_BIN_EXE_dmfilemapd"))
        .args(argv)
        .output()
        .unwrap()
}

#[test]
fn binary_wrong_count_prints_usage() {
    let out = bin(&["3", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "Wrong number of arguments.");
    assert!(
        lines[1].starts_with("usage: dmfilemapd <fd> <group_id> <abs_path> <mode>"),
        "{err}"
    );
    assert_eq!(lines.len(), 2);
    assert!(out.stdout.is_empty());
}

#[test]
fn binary_bad_value_is_one_line() {
    let out = bin(&["3", "0", "/f", "inode", "0", "4"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("dmfilemapd: ") && err.contains("'4'"),
        "{err}"
    );
}

#[test]
fn binary_help_and_version() {
    let out = bin(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("usage: dmfilemapd"));
    let out = bin(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("dmfilemapd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn binary_refuses_a_closed_fd_before_detaching() {
    // Not foreground: the check must still happen here, in the caller's process.
    let out = bin(&["77", "0", "/tmp", "inode", "0", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err, "dmfilemapd: fd 77: not an open file descriptor\n");
}

#[test]
fn binary_refuses_a_directory() {
    let dir = std::fs::File::open("/").unwrap();
    let out = with_inherited(&dir, |n| bin(&[&n, "0", "/", "inode", "1", "0"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("dmfilemapd: fd ")
            && err.ends_with(": a directory is not a regular file\n"),
        "{err}"
    );
}

#[test]
fn binary_refuses_a_fifo_a_socket_and_a_char_device() {
    let dir = tempdir("refuse");
    let fifo = dir.join("fifo");
    assert!(Process::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Read-write so the open does not wait for a writer.
    let flags =
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
    let fifo = rustix::fs::open(&fifo, flags, rustix::fs::Mode::empty()).unwrap();
    let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let cases: [(&dyn AsFd, &str); 3] = [
        (&fifo, "a FIFO"),
        (&socket, "a socket"),
        (&null, "a character device"),
    ];
    for (fd, kind) in cases {
        let out = with_inherited(fd, |n| bin(&[&n, "0", "/x", "path", "1", "0"]));
        assert_eq!(out.status.code(), Some(1), "{kind}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.ends_with(&format!(": {kind} is not a regular file\n")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Run `f` with a duplicate of `fd` that is not close-on-exec, as dmstats
/// hands its fd to the daemon; `f` gets the number as text.
fn with_inherited<T>(fd: &dyn AsFd, f: impl FnOnce(String) -> T) -> T {
    let owned = fd.as_fd().try_clone_to_owned().unwrap();
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::empty()).unwrap();
    f(owned.as_raw_fd().to_string())
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dmfilemapd-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn binary_refuses_a_file_off_device_mapper() {
    // The test's temporary directory is not on a dm device in CI or here; a
    // machine where it is would see the group check fail instead.
    let dir = tempdir("offdm");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let path = path.to_str().unwrap();
    let out = with_inherited(&file, |n| bin(&[&n, "0", path, "inode", "1", "0"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("dmfilemapd: "), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn binary_starting_line_is_cs() {
    let out = bin(&["77", "5", "/x y", "path", "1", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Starting dmfilemapd with fd=77, group_id=5 mode=path, path=/x y\n"
    );
    // Silent at verbose 0, errors aside.
    let out = bin(&["77", "5", "/x", "path", "1", "0"]);
    assert!(out.stdout.is_empty());
}

#[test]
fn binary_refuses_a_path_that_does_not_name_the_file() {
    let dir = tempdir("otherpath");
    let (ours, other, none) = (dir.join("ours"), dir.join("other"), dir.join("none"));
    std::fs::write(&ours, b"data").unwrap();
    std::fs::write(&other, b"data").unwrap();
    let file = std::fs::File::open(&ours).unwrap();
    let refused = |mode: &str, path: &std::path::Path| {
        let path = path.to_str().unwrap();
        with_inherited(&file, |n| {
            let out = bin(&[&n, "0", path, mode, "1", "0"]);
            let err = String::from_utf8(out.stderr).unwrap();
            let want = format!("dmfilemapd: path {path}: does not name the file of fd {n}\n");
            (out.status.code(), err == want, err)
        })
    };
    for mode in ["inode", "path"] {
        for path in [&other, &none] {
            let (code, named, err) = refused(mode, path);
            assert_eq!(code, Some(1), "{mode} {path:?}: {err}");
            assert!(named, "{mode} {path:?}: {err}");
        }
    }
    // Unlinked, the file has no name to check: inode mode follows it (and
    // here fails later, off device-mapper); path mode has nothing to follow.
    std::fs::remove_file(&ours).unwrap();
    let (code, named, err) = refused("inode", &ours);
    assert_eq!(code, Some(1), "{err}");
    assert!(!named && !err.contains("does not name"), "{err}");
    let (_, named, err) = refused("path", &ours);
    assert!(named, "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
