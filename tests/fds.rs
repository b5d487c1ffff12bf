//! No descriptor or inotify instance may leak from cycle to cycle (C leaks an
//! inotify instance per cycle in path mode and dies after ~128). Alone in its
//! own test binary, so no other test opens descriptors while we count.

use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use dmfilemapd::Mode;
use dmfilemapd::{FileSource, Look, Scanner};

const CYCLES: usize = 10_000;

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

fn cycle(src: &mut FileSource) {
    assert!(matches!(src.look(&|| false).unwrap(), Look::File(_)));
    src.wait(Duration::ZERO, true, &|| false).unwrap();
}

fn run(mode: Mode, dir: &Path) {
    let path = dir.join(format!("{mode}"));
    fs::write(&path, b"data").unwrap();
    let fd: OwnedFd = File::open(&path).unwrap().into();
    let mut src = FileSource::new(mode, path.clone(), fd).unwrap();
    cycle(&mut src);
    let first = open_fds();
    for i in 0..CYCLES {
        // Every tenth cycle the file is rewritten; in path mode every
        // hundredth it is replaced by rename, so the watcher is renewed.
        if i % 10 == 0 {
            fs::write(dir.join("tmp"), format!("data {i}")).unwrap();
            if mode == Mode::Path && i % 100 == 0 {
                fs::rename(dir.join("tmp"), &path).unwrap();
            } else {
                fs::write(&path, format!("data {i}")).unwrap();
            }
        }
        cycle(&mut src);
    }
    let last = open_fds();
    eprintln!("{mode} mode: {first} descriptors after the first cycle, {last} after {CYCLES} more");
    assert_eq!(first, last, "{mode} mode leaks descriptors");
}

#[test]
fn no_descriptor_leaks_in_either_mode() {
    let dir = std::env::temp_dir().join(format!("dmfilemapd-fds-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    run(Mode::Path, &dir);
    run(Mode::Inode, &dir);
    fs::remove_dir_all(&dir).unwrap();
}
