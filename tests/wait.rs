//! The daemon's sleep, in real processes: a stop signal ends it at once, and
//! an idle one wakes for nothing before its timeout.
//!
//! The stop signals are blocked for the whole process, which libtest's
//! threads would not allow (a SIGTERM to the process would kill it through
//! a thread that does not block it): so this binary has no harness
//! (Cargo.toml `harness = false`) and runs each case in a child, a fresh
//! copy of itself with one thread, told its role by [`ROLE`].

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dmfilemapd::{self, Watcher};

const ROLE: &str = "DMFILEMAPD_WAIT_ROLE";
/// Far longer than any case should take: a wait that reaches it failed.
const PATIENCE: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(1);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let cases: [(&str, fn()); 4] = [
        ("idle_watch_wakes_once", || idle("watch")),
        ("idle_sleep_wakes_once", || idle("sleep")),
        ("stop_signal_ends_a_watch", || stopped("watch")),
        ("stop_signal_ends_a_sleep", || stopped("sleep")),
    ];
    for (name, case) in cases {
        case();
        println!("test {name} ... ok");
    }
    let pending = run_child("pending");
    assert!(pending.starts_with("stopped SIGTERM"), "{pending}");
    println!("test pending_stop_signal_ends_a_wait_at_once ... ok");
}

/// Voluntary context switches of this (single-threaded) process: one per
/// time it blocked, so one per wake-up of a sleep.
fn switches() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn stop() -> bool {
    dmfilemapd::stop_signal().is_some()
}

/// A file to watch, removed with the child.
fn watched() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("dmfilemapd-wait-{}", std::process::id()));
    std::fs::write(&path, b"x").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    (path, file)
}

/// Sleep (or watch) for `IDLE`; the number of wake-ups it took.
fn idle_switches(how: &str) -> u64 {
    let (path, file) = watched();
    let watcher = Watcher::new(&file).unwrap();
    let before = switches();
    match how {
        "watch" => assert!(!watcher.wait(IDLE, &stop).unwrap().changed),
        _ => dmfilemapd::sleep(IDLE, &stop),
    }
    let n = switches() - before;
    std::fs::remove_file(path).unwrap();
    n
}

fn child(role: &str) {
    let mut out = std::io::stdout();
    match role.split_once('-') {
        Some(("idle", how)) => {
            // First with the signals unblocked: the sleep looks at them in
            // slices, which shows the count sees wake-ups.
            let sliced = idle_switches(how);
            dmfilemapd::block_stop_signals().unwrap();
            // As the daemon starts: the caller's descriptors are closed,
            // and the stop signals' one must survive that.
            dmfilemapd::close_stray_fds(-1).unwrap();
            let stop_fd = dmfilemapd::stop_fd().unwrap();
            rustix::io::fcntl_getfd(stop_fd).unwrap();
            let blocked = idle_switches(how);
            writeln!(out, "sliced {sliced} blocked {blocked}").unwrap();
        }
        Some(("stop", how)) => {
            dmfilemapd::block_stop_signals().unwrap();
            let (path, file) = watched();
            let watcher = Watcher::new(&file).unwrap();
            writeln!(out, "ready").unwrap();
            out.flush().unwrap();
            let t0 = Instant::now();
            match how {
                "watch" => drop(watcher.wait(PATIENCE, &stop).unwrap()),
                _ => dmfilemapd::sleep(PATIENCE, &stop),
            }
            let waited = t0.elapsed();
            std::fs::remove_file(path).unwrap();
            writeln!(
                out,
                "stopped {} after {} ms",
                dmfilemapd::stop_signal().unwrap_or("nothing"),
                waited.as_millis()
            )
            .unwrap();
        }
        _ if role == "pending" => {
            // A signal that came before the wait: the wait does not block.
            dmfilemapd::block_stop_signals().unwrap();
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
                .unwrap();
            let t0 = Instant::now();
            dmfilemapd::sleep(PATIENCE, &stop);
            let (path, file) = watched();
            let watcher = Watcher::new(&file).unwrap();
            watcher.wait(PATIENCE, &stop).unwrap();
            std::fs::remove_file(path).unwrap();
            assert!(t0.elapsed() < PATIENCE);
            writeln!(
                out,
                "stopped {}",
                dmfilemapd::stop_signal().unwrap_or("nothing")
            )
            .unwrap();
        }
        _ => panic!("unknown role {role}"),
    }
}

fn spawn(role: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for the child, killing it if it outlives `PATIENCE`.
fn finish(mut child: std::process::Child) -> String {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("child still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

fn run_child(role: &str) -> String {
    finish(spawn(role))
}

fn idle(how: &str) {
    let out = run_child(&format!("idle-{how}"));
    let n: Vec<u64> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [sliced, blocked] = n[..] else {
        panic!("{out}")
    };
    // Slices of 100 ms make ~10 wake-ups a second; one poll for the whole
    // second makes one (and a spare for the odd page fault or preemption).
    assert!(sliced >= 5, "the count saw no slices: {out}");
    assert!(
        blocked <= 2,
        "{how}: an idle second took {blocked} wake-ups"
    );
}

fn stopped(how: &str) {
    let mut child = spawn(&format!("stop-{how}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    finish(child);
    let line = rest.join("\n");
    let ms: u128 = line
        .rsplit(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(line.starts_with("stopped SIGTERM"), "{how}: {line}");
    assert!(
        ms < PATIENCE.as_millis(),
        "{how}: the wait ran its course: {line}"
    );
}
