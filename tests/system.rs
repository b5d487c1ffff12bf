//! The parts of the daemon that touch the real system, on real files in the
//! temporary directory: the inotify watcher, the `/proc` holder scan, and the
//! real file source in both modes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dmfilemapd::open_elsewhere;
use dmfilemapd::Mode;
use dmfilemapd::{Events, Watcher};
use dmfilemapd::{FileSource, Look, Scanner};

/// Long enough never to be the reason a test passes; an event ends it early.
const PATIENCE: Duration = Duration::from_secs(20);

fn never() -> bool {
    false
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("dmfilemapd-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn watcher_sees_a_write() {
    let dir = TempDir::new("watch-write");
    let path = dir.file("f", b"one");
    let file = File::open(&path).unwrap();
    let w = Watcher::new(&file).unwrap();
    assert_eq!(w.drain().unwrap(), Events::default());
    append(&path, b"two");
    assert!(w.wait(PATIENCE, &never).unwrap().changed);
    // Drained: nothing left.
    assert_eq!(w.drain().unwrap(), Events::default());
}

#[test]
fn watcher_follows_a_rename() {
    let dir = TempDir::new("watch-rename");
    let path = dir.file("f", b"one");
    let file = File::open(&path).unwrap();
    let w = Watcher::new(&file).unwrap();
    let moved = dir.0.join("g");
    fs::rename(&path, &moved).unwrap();
    assert!(w.wait(PATIENCE, &never).unwrap().changed);
    // A file now at the old path is not ours; the renamed one still is.
    fs::write(&path, b"stranger").unwrap();
    assert_eq!(w.drain().unwrap(), Events::default());
    append(&moved, b"two");
    assert!(w.wait(PATIENCE, &never).unwrap().changed);
}

#[test]
fn watcher_sees_an_unlink() {
    let dir = TempDir::new("watch-unlink");
    let path = dir.file("f", b"one");
    let file = File::open(&path).unwrap();
    let w = Watcher::new(&file).unwrap();
    fs::remove_file(&path).unwrap();
    // The link count changes: IN_ATTRIB while we hold it open.
    assert!(w.wait(PATIENCE, &never).unwrap().changed);
}

#[test]
fn watcher_reports_a_dropped_watch() {
    let dir = TempDir::new("watch-drop");
    let path = dir.file("f", b"one");
    let w = Watcher::new(File::open(&path).unwrap()).unwrap();
    // Nobody holds the file: unlinking frees the inode and the kernel drops the watch.
    fs::remove_file(&path).unwrap();
    let mut seen = Events::default();
    while !seen.dropped {
        let e = w.wait(PATIENCE, &never).unwrap();
        assert_ne!(e, Events::default(), "no event within the patience");
        seen.changed |= e.changed;
        seen.dropped |= e.dropped;
    }
    assert!(seen.changed);
}

#[test]
fn watcher_wait_ends_on_stop() {
    let dir = TempDir::new("watch-stop");
    let path = dir.file("f", b"one");
    let w = Watcher::new(File::open(&path).unwrap()).unwrap();
    // Were the stop request not looked at between slices, this would take an hour.
    assert_eq!(
        w.wait(Duration::from_secs(3600), &|| true).unwrap(),
        Events::default()
    );
}

/// A child process holding `path` open (as its stdin) until killed.
fn holder(path: &Path) -> Child {
    let meta = fs::metadata(path).unwrap();
    let child = Command::new("sleep")
        .arg("600")
        .stdin(File::open(path).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_holding(&child, (meta.dev(), meta.ino()));
    child
}

/// Wait until `child`'s stdin is the file `(dev, ino)`. On a kernel, spawn
/// returns after the child's exec, its stdin long set; under qemu-user
/// (the other architectures' test runner), which emulates the vfork of
/// posix_spawn as a fork, the parent may run on before the child's dup2.
fn wait_holding(child: &Child, file: (u64, u64)) {
    let fd0 = format!("/proc/{}/fd/0", child.id());
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let held = fs::metadata(&fd0).map(|m| (m.dev(), m.ino())).ok();
        if held == Some(file) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{fd0}: {held:?}, not {file:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn holder_scan_finds_another_process() {
    let dir = TempDir::new("holder");
    let path = dir.file("f", b"data");
    let meta = fs::metadata(&path).unwrap();
    let (dev, ino) = (meta.dev(), meta.ino());
    let mut child = holder(&path);
    // Our own descriptor does not count.
    let _ours = File::open(&path).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(open_elsewhere(dev, ino).unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!open_elsewhere(dev, ino).unwrap());
}

#[test]
fn holder_scan_ignores_a_different_file() {
    let dir = TempDir::new("holder-other");
    let path = dir.file("f", b"data");
    let other = dir.file("g", b"data");
    let meta = fs::metadata(&path).unwrap();
    let mut child = holder(&other);
    fs::remove_file(&other).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(!open_elsewhere(meta.dev(), meta.ino()).unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn holder_scan_ignores_other_copies_of_this_program() {
    let dir = TempDir::new("holder-copy");
    let path = dir.file("f", b"data");
    let meta = fs::metadata(&path).unwrap();
    let (dev, ino) = (meta.dev(), meta.ino());
    // Another daemon following the same file (a second group on it).
    let mut copy = Command::new(std::env::args_os().next().unwrap())
        .args(["hold_probe", "--exact", "--ignored", "--quiet"])
        .env("DMFILEMAPD_HOLD_PROBE", "1")
        .stdin(File::open(&path).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // It does hold the file.
    wait_holding(&copy, (dev, ino));
    fs::remove_file(&path).unwrap();
    assert!(!open_elsewhere(dev, ino).unwrap());
    copy.kill().unwrap();
    copy.wait().unwrap();
}

#[test]
#[ignore = "run by holder_scan_ignores_other_copies_of_this_program"]
fn hold_probe() {
    if std::env::var_os("DMFILEMAPD_HOLD_PROBE").is_some() {
        std::thread::sleep(PATIENCE);
    }
}

fn source(mode: Mode, path: &Path) -> FileSource {
    let fd: OwnedFd = File::open(path).unwrap().into();
    FileSource::new(mode, path.to_owned(), fd).unwrap()
}

fn stamp(look: Look) -> dmfilemapd::Stamp {
    match look {
        Look::File(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn inode_mode_runs_while_another_process_holds_the_unlinked_file() {
    let dir = TempDir::new("inode-unlink");
    let path = dir.file("f", b"data");
    let mut src = source(Mode::Inode, &path);
    stamp(src.look(&never).unwrap());
    let mut child = holder(&path);
    fs::remove_file(&path).unwrap();
    assert!(src.wait(PATIENCE, true, &never).unwrap());
    stamp(src.look(&never).unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(src.look(&never).unwrap(), Look::UnlinkedAndClosed);
}

#[test]
fn inode_mode_follows_a_rename() {
    let dir = TempDir::new("inode-rename");
    let path = dir.file("f", b"data");
    let mut src = source(Mode::Inode, &path);
    let before = stamp(src.look(&never).unwrap());
    let moved = dir.0.join("g");
    fs::rename(&path, &moved).unwrap();
    assert!(src.wait(PATIENCE, true, &never).unwrap());
    append(&moved, b" and more");
    assert!(src.wait(PATIENCE, true, &never).unwrap());
    let after = stamp(src.look(&never).unwrap());
    assert_eq!((after.ino, after.size), (before.ino, 13));
}

#[test]
fn path_mode_picks_up_a_replacement() {
    let dir = TempDir::new("path-replace");
    let path = dir.file("f", b"data");
    let mut src = source(Mode::Path, &path);
    let first = stamp(src.look(&never).unwrap());
    let new = dir.file("f.new", b"new data");
    fs::rename(&new, &path).unwrap();
    // The old inode is freed (nobody holds it between cycles): the watch fires.
    assert!(src.wait(PATIENCE, true, &never).unwrap());
    let second = stamp(src.look(&never).unwrap());
    assert_ne!(first.ino, second.ino);
    assert_eq!(second.size, 8);
    // And the new file is watched.
    append(&path, b"!");
    assert!(src.wait(PATIENCE, true, &never).unwrap());
}

#[test]
fn path_mode_treats_foreign_files_as_absent() {
    let dir = TempDir::new("path-foreign");
    let path = dir.file("f", b"data");
    let mut src = source(Mode::Path, &path);
    stamp(src.look(&never).unwrap());
    let fifo = dir.0.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let swaps: [&dyn Fn(&Path); 4] = [
        // A FIFO: opening it for reading would block without O_NONBLOCK; we do not even open it.
        &|p| assert!(Command::new("mkfifo").arg(p).status().unwrap().success()),
        &|p| std::os::unix::fs::symlink(&fifo, p).unwrap(),
        &|p| std::os::unix::fs::symlink("/dev/null", p).unwrap(),
        // A regular file, but on another device.
        &|p| std::os::unix::fs::symlink("/proc/self/status", p).unwrap(),
    ];
    for swap in swaps {
        fs::remove_file(&path).unwrap();
        swap(&path);
        assert_eq!(
            src.look(&never).unwrap(),
            Look::Absent,
            "{:?}",
            fs::symlink_metadata(&path)
        );
    }
    fs::remove_file(&path).unwrap();
    assert_eq!(src.look(&never).unwrap(), Look::Absent);
}

#[test]
fn fiemap_of_a_real_file_when_the_file_system_has_it() {
    let dir = TempDir::new("fiemap");
    let path = dir.file("f", &vec![7u8; 64 * 1024]);
    let mut src = source(Mode::Inode, &path);
    stamp(src.look(&never).unwrap());
    match src.scan() {
        // tmpfs and overlay have no FIEMAP: nothing to check then.
        Err(e) => eprintln!("no FIEMAP here: {e}"),
        // Not yet written back (no forced writeback): reported as such.
        Ok(extents) if src.unmapped() => {
            let sectors: u64 = extents.iter().map(|e| e.len).sum();
            assert!(sectors < 128, "{extents:?}");
            fs::File::open(&path).unwrap().sync_all().unwrap();
            let placed = src.scan().unwrap();
            let sectors: u64 = placed.iter().map(|e| e.len).sum();
            assert_eq!((sectors, src.unmapped()), (128, false), "{placed:?}");
        }
        Ok(extents) => {
            let sectors: u64 = extents.iter().map(|e| e.len).sum();
            assert_eq!(sectors, 128, "{extents:?}");
        }
    }
}

// Detaching: the parent re-executes itself (here: this test binary, running
// only `detach_probe`) and the copy detaches and reports what it sees.

fn probe_params(parent: u32) -> PathBuf {
    std::env::temp_dir().join(format!("dmfilemapd-detach-probe-{parent}"))
}

/// Detach a copy of this test binary (silently or not) and return what it
/// saw of itself, one fact a line, and its descriptors as `<n> -> <target>`.
fn detach_and_report(silent: bool) -> String {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let dir = TempDir::new(if silent {
        "detach-silent"
    } else {
        "detach-loud"
    });
    let kept =
        dmfilemapd::adopt_fd(File::open(dir.file("kept", b"x")).unwrap().into_raw_fd()).unwrap();
    // A descriptor the caller forgot to close: inherited, then closed by the copy.
    let stray =
        dmfilemapd::adopt_fd(File::open(dir.file("stray", b"x")).unwrap().into_raw_fd()).unwrap();
    let report = dir.0.join("report");
    let params = probe_params(std::process::id());
    fs::write(
        &params,
        format!("{}\n{}\n{silent}\n", kept.as_raw_fd(), report.display()),
    )
    .unwrap();

    let argv0 = std::env::args_os().next().unwrap();
    let args = [
        "detach_probe",
        "--exact",
        "--ignored",
        "--quiet",
        "--test-threads=1",
    ]
    .map(Into::into);
    dmfilemapd::spawn_detached(argv0, &args).unwrap();
    let mut waited = Duration::ZERO;
    while !report.exists() || !fs::read_to_string(&report).unwrap().ends_with("end\n") {
        assert!(waited < PATIENCE, "the detached copy never reported");
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    fs::remove_file(&params).unwrap();
    drop(stray);
    fs::read_to_string(&report).unwrap()
}

// One test for both, as the probe finds its parameters by its parent's pid.
#[test]
fn detached_copy_has_its_own_session_and_only_the_monitored_fd() {
    for silent in [true, false] {
        let report = detach_and_report(silent);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "session leader: true", "{report}");
        assert_eq!(lines[1], "cwd: /", "{report}");
        // Run as /proc/self/exe the kernel names us "exe"; pidof must find us.
        assert_eq!(lines[2], "comm: dmfilemapd", "{report}");
        let fds = &lines[3..lines.len() - 1];
        assert!(fds.iter().any(|l| l.ends_with("/kept")), "{report}");
        assert!(!fds.iter().any(|l| l.ends_with("/stray")), "{report}");
        for n in 0..3 {
            // Verbose: the log goes where the caller's stdio goes (if open).
            let want = match fs::read_link(format!("/proc/self/fd/{n}")) {
                _ if silent => Some("/dev/null".to_owned()),
                Ok(link) => Some(link.to_string_lossy().into_owned()),
                Err(_) => None,
            };
            let seen = fds.iter().find_map(|l| l.strip_prefix(&format!("{n} -> ")));
            assert_eq!(seen, want.as_deref(), "{report}");
        }
    }
}

#[test]
#[ignore = "run by detached_copy_has_its_own_session_and_only_the_monitored_fd"]
fn detach_probe() {
    use std::os::unix::ffi::OsStrExt;
    if std::env::var_os(dmfilemapd::DETACHED_ENV).is_none() {
        return;
    }
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
    let params = fs::read_to_string(probe_params(parent)).unwrap();
    let mut params = params.lines();
    let kept: i32 = params.next().unwrap().parse().unwrap();
    let report = PathBuf::from(params.next().unwrap());
    let silent: bool = params.next().unwrap().parse().unwrap();
    dmfilemapd::detach(silent, kept).unwrap();
    let me = rustix::process::getpid();
    let mut out = format!(
        "session leader: {}\ncwd: {}\ncomm: {}\n",
        rustix::process::getsid(None).unwrap() == me,
        std::env::current_dir().unwrap().display(),
        // The harness runs us on a thread; the daemon runs it on its main one.
        fs::read_to_string("/proc/thread-self/comm")
            .unwrap()
            .trim_end()
    );
    let mut entries: Vec<(i32, PathBuf)> = fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().to_str()?.parse().ok()?,
                fs::read_link(e.path()).ok()?,
            ))
        })
        .collect();
    entries.sort();
    for (n, target) in entries {
        out += &format!(
            "{n} -> {}\n",
            String::from_utf8_lossy(target.as_os_str().as_bytes())
        );
    }
    out += "end\n";
    fs::write(report, out).unwrap();
}
