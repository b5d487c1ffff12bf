//! The loop on the fake dm-stats and a fake file on a fake clock: every
//! "second" below is simulated, so nothing here depends on the machine's speed.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{converged, ext, group, no_orphans, snapshot, untouched};
use dmfilemapd::testkit::fake::{FakeDm, Kind, DMSTATS_PROGRAM};
use dmfilemapd::Engine;
use dmfilemapd::Extent;
use dmfilemapd::{Daemon, Exit};
use dmfilemapd::{DaemonError, SourceError};
use dmfilemapd::{Descriptor, Dialect};
use dmfilemapd::{Look, Scanner, Stamp};
use rustix::io::Errno;

type Dm = Rc<RefCell<FakeDm>>;
type Change = Box<dyn FnOnce(&mut World, &mut FakeDm)>;

/// The simulated file and clock.
#[derive(Default)]
struct World {
    now: Duration,
    extents: Vec<Extent>,
    /// Bumped by every change to the file: the fstat fingerprint.
    version: i64,
    /// An inotify event is queued.
    event: bool,
    look: Option<Look>,
    stopped: bool,
    /// Changes still to come, by time.
    script: VecDeque<(Duration, Change)>,
    scans: u64,
    /// Fail the scan with this number (1-based) with this errno.
    scan_fault: Option<(u64, Errno)>,
    /// Data in delayed allocation: the scan leaves it out.
    unmapped: bool,
    /// How long the loop may run before the test calls it hung (600 s
    /// when zero).
    limit: Duration,
}

impl World {
    fn write(&mut self, extents: Vec<Extent>) {
        self.extents = extents;
        self.version += 1;
        self.event = true;
    }
}

struct FakeFile {
    world: Rc<RefCell<World>>,
    dm: Dm,
    epoch: Instant,
}

impl FakeFile {
    /// Apply the next change if it is due by `end`; false when none is.
    fn step(&self, end: Duration) -> bool {
        let mut w = self.world.borrow_mut();
        match w.script.front() {
            Some((at, _)) if *at <= end => {
                let (at, change) = w.script.pop_front().unwrap();
                w.now = w.now.max(at);
                change(&mut w, &mut self.dm.borrow_mut());
                true
            }
            _ => false,
        }
    }
}

impl Scanner for FakeFile {
    fn look(&mut self, _stop: &dyn Fn() -> bool) -> Result<Look, SourceError> {
        let w = self.world.borrow();
        let limit = if w.limit.is_zero() {
            Duration::from_secs(600)
        } else {
            w.limit
        };
        assert!(w.now < limit, "the loop never ended");
        Ok(w.look.unwrap_or(Look::File(Stamp {
            size: w.version,
            ..Stamp::default()
        })))
    }

    fn scan(&mut self) -> Result<Vec<Extent>, SourceError> {
        let mut w = self.world.borrow_mut();
        w.scans += 1;
        if let Some((nth, errno)) = w.scan_fault {
            if nth == w.scans {
                return Err(dmfilemapd::FiemapError::Ioctl(errno).into());
            }
        }
        Ok(w.extents.clone())
    }

    fn unmapped(&self) -> bool {
        self.world.borrow().unmapped
    }

    fn wait(
        &mut self,
        timeout: Duration,
        wake: bool,
        _stop: &dyn Fn() -> bool,
    ) -> Result<bool, SourceError> {
        let end = self.world.borrow().now + timeout;
        while self.step(end) {
            let mut w = self.world.borrow_mut();
            if w.stopped || (wake && w.event) {
                return Ok(std::mem::take(&mut w.event));
            }
        }
        let mut w = self.world.borrow_mut();
        w.now = end;
        Ok(std::mem::take(&mut w.event))
    }

    fn now(&self) -> Instant {
        self.epoch + self.world.borrow().now
    }
}

struct Sim {
    world: Rc<RefCell<World>>,
    dm: Dm,
    daemon: Daemon<Dm, FakeFile>,
}

/// A file with `extents`, mapped by a dmstats group, beside a region of
/// another program; `script` changes the world over time.
fn sim(extents: &[Extent], script: Vec<(u64, Change)>) -> Sim {
    crowded(extents, 0, 0, script)
}

/// As [`sim`], with `others` more dmstats groups of `each` regions on the
/// device, made before ours (lower ids), as other daemons' files would be.
fn crowded(extents: &[Extent], others: u64, each: u64, script: Vec<(u64, Change)>) -> Sim {
    let mut fake = FakeDm::new();
    fake.seed(ext(1 << 20, 8), "other", "keep me");
    for g in 0..others {
        let theirs: Vec<Extent> = (0..each)
            .map(|i| ext((1 << 22) + (g * each + i) * 64, 16))
            .collect();
        fake.filemap_group(&theirs, format!("other{g}"), Dialect::Bare);
    }
    let id = fake.filemap_group(extents, "data", Dialect::Bare);
    let dm: Dm = Rc::new(RefCell::new(fake));
    let world = Rc::new(RefCell::new(World {
        extents: extents.to_vec(),
        script: script
            .into_iter()
            .map(|(ms, c)| (Duration::from_millis(ms), c))
            .collect(),
        ..World::default()
    }));
    let file = FakeFile {
        world: world.clone(),
        dm: dm.clone(),
        epoch: Instant::now(),
    };
    let daemon = Daemon::new(Engine::new(dm.clone(), id), file);
    Sim { world, dm, daemon }
}

impl Sim {
    fn run(&mut self) -> Result<Exit, DaemonError> {
        let world = self.world.clone();
        self.daemon.run(&move || world.borrow().stopped)
    }

    fn now(&self) -> Duration {
        self.world.borrow().now
    }

    fn id(&self) -> u64 {
        self.daemon.group.group_id()
    }

    fn check(&self, extents: &[Extent]) {
        let dm = self.dm.borrow();
        converged(&dm, self.id(), extents);
        no_orphans(&dm, DMSTATS_PROGRAM, &[self.id()]);
    }
}

fn write(extents: Vec<Extent>) -> Change {
    Box::new(move |w, _| w.write(extents))
}

fn stop() -> Change {
    Box::new(|w, _| w.stopped = true)
}

fn layout(n: u64) -> Vec<Extent> {
    (0..n).map(|i| ext(4096 + i * 64, 16)).collect()
}

/// The id of the region whose aux data holds `text` (a group's leader).
/// `dmstats ungroup` of our group: the leader's descriptor becomes "-".
fn ungroup() -> Change {
    Box::new(|_, dm| {
        let leader = holder(dm, "DMS_GROUP=data:");
        dm.regions.get_mut(&leader).expect("the leader").aux_data = "-".into();
    })
}

fn holder(dm: &FakeDm, text: &str) -> u64 {
    *dm.regions
        .iter()
        .find(|(_, r)| r.aux_data.contains(text))
        .expect("a region holds the text")
        .0
}

#[test]
fn follows_growth_and_shrink() {
    let (a, b, c) = (ext(100, 8), ext(300, 16), ext(200, 8));
    let mut sim = sim(
        &[a],
        vec![
            (2_000, write(vec![a, b])),
            (4_000, write(vec![a, b, c])),
            (6_000, write(vec![a])),
            (8_000, stop()),
        ],
    );
    let before = snapshot(&sim.dm.borrow(), DMSTATS_PROGRAM);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    sim.check(&[a]);
    untouched(&sim.dm.borrow(), &before);
    let n = sim.daemon.counters;
    // The first cycle and each of the three changes: one scan and one sync each.
    assert_eq!((n.scans, n.syncs, n.failures), (4, 4, 0), "{n:?}");
}

#[test]
fn each_step_is_seen_on_the_kernel() {
    let (a, b) = (ext(100, 8), ext(300, 16));
    let mut sim = sim(&[a], vec![(1_000, write(vec![a, b])), (1_900, stop())]);
    sim.run().unwrap();
    sim.check(&[a, b]);
    // The region for `a` was kept: same id, counters intact.
    let dm = sim.dm.borrow();
    assert!(
        dm.log.iter().all(|m| !m.starts_with("@stats_delete")),
        "{:?}",
        dm.log
    );
}

#[test]
fn idle_makes_no_fiemap_calls_and_probes_every_check_interval() {
    let mut sim = sim(&layout(3), vec![(65_000, stop())]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    let n = sim.daemon.counters;
    assert_eq!(sim.world.borrow().scans, 1, "{n:?}");
    assert_eq!(n.syncs, 1);
    // One check every 10 s: a probe of the leader (and of members in turn:
    // 3 members, each once in 6 checks), and a full list only every
    // FULL_CHECK_INTERVAL (30 s) for a group alone on its device: at 30 s
    // and 60 s, 6 checks in all, 4 of them probes.
    assert_eq!(n.probes + n.loads, 6, "{n:?}");
    assert_eq!(n.loads, 2, "{n:?}");
    assert_eq!(n.member_probes, 2, "{n:?}");
    let dm = sim.dm.borrow();
    assert_eq!(
        dm.calls(Kind::Print) as u64,
        n.probes + n.member_probes,
        "{n:?}"
    );
    // The first update's one list, and the two full checks.
    assert_eq!(dm.calls(Kind::List), 3, "{:?}", dm.log);
    assert!(dm
        .log
        .iter()
        .rev()
        .take(3)
        .any(|m| m.starts_with("@stats_print")));
}

#[test]
fn leader_replaced_under_the_same_id_is_noticed_within_a_check() {
    // Another program deletes the leader and a region of its own takes the
    // id (the kernel hands out the lowest free one): the probe sees the
    // area differ, the list that follows sees no group.
    let replace: Change = Box::new(|_, dm| {
        let leader = holder(dm, "DMS_GROUP");
        dm.regions.remove(&leader);
        assert_eq!(dm.seed(ext(1 << 19, 8), "other", "-"), leader);
    });
    let mut sim = sim(&layout(3), vec![(5_300, replace)]);
    assert_eq!(sim.run().unwrap(), Exit::GroupRemoved);
    assert!(
        sim.now() <= Duration::from_millis(10_300),
        "noticed at {:?}",
        sim.now()
    );
}

#[test]
fn ungrouped_by_another_program_is_noticed_at_the_next_full_list() {
    // `dmstats ungroup` rewrites the leader's aux data, which no probe
    // sees: the full list every 30 s does.
    let mut sim = sim(&layout(3), vec![(5_300, ungroup())]);
    assert_eq!(sim.run().unwrap(), Exit::GroupRemoved);
    assert!(
        sim.now() <= Duration::from_millis(31_000),
        "noticed at {:?}",
        sim.now()
    );
    // Nothing of the group was deleted: the regions are the user's now.
    assert_eq!(sim.dm.borrow().regions.len(), 4);
}

#[test]
fn group_deleted_exits_within_a_check() {
    let delete_all: Change =
        Box::new(|_, dm| dm.regions.retain(|_, r| r.program_id != DMSTATS_PROGRAM));
    let mut sim = sim(&layout(2), vec![(5_300, delete_all)]);
    assert_eq!(sim.run().unwrap(), Exit::GroupRemoved);
    assert!(
        sim.now() <= Duration::from_millis(10_300),
        "noticed at {:?}",
        sim.now()
    );
    // The other program's region is still there.
    assert_eq!(sim.dm.borrow().regions.len(), 1);
}

#[test]
fn no_extents_removes_the_regions_and_exits() {
    let mut sim = sim(&layout(4), vec![(2_000, write(vec![]))]);
    let before = snapshot(&sim.dm.borrow(), DMSTATS_PROGRAM);
    assert_eq!(sim.run().unwrap(), Exit::NoExtents);
    let dm = sim.dm.borrow();
    assert!(
        dm.regions.values().all(|r| r.program_id != DMSTATS_PROGRAM),
        "{:?}",
        dm.regions
    );
    untouched(&dm, &before);
}

#[test]
fn at_most_two_updates_a_second() {
    // A change every 70 ms for 10 s, cycling through three layouts, so
    // (almost) every scan finds something to do.
    let mut script: Vec<(u64, Change)> = (1..142)
        .map(|i| (i * 70, write(layout(1 + i % 3))))
        .collect();
    script.push((10_000, stop()));
    let mut sim = sim(&layout(1), script);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    let n = sim.daemon.counters;
    assert!(n.syncs <= 21, "{n:?}");
    assert!(n.scans <= 21, "{n:?}");
    // It keeps up nonetheless.
    assert!(n.syncs >= 15, "{n:?}");
    let last = sim.world.borrow().extents.clone();
    // The last change (at 9.95 s) may be pending at the stop: run it out.
    sim.world.borrow_mut().stopped = false;
    sim.world
        .borrow_mut()
        .script
        .push_back((Duration::from_secs(12), stop()));
    sim.run().unwrap();
    sim.check(&last);
}

#[test]
fn stop_between_updates() {
    let mut sim = sim(&layout(2), vec![(3_000, stop()), (4_000, write(layout(5)))]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    assert_eq!(sim.now(), Duration::from_millis(3_000));
    sim.check(&layout(2));
}

#[test]
fn stop_during_a_long_update_leaves_the_group_whole() {
    let mut sim = sim(&layout(1), vec![(1_000, write(layout(400)))]);
    let dm = sim.dm.clone();
    let start = Rc::new(RefCell::new(None::<usize>));
    let (world, seen) = (sim.world.clone(), start.clone());
    // Stop 25 messages into the big update.
    let stop = move || {
        let n = dm.borrow().log.len();
        let mut s = seen.borrow_mut();
        if world.borrow().version == 0 {
            return false;
        }
        n >= *s.get_or_insert(n) + 25
    };
    assert_eq!(sim.daemon.run(&stop).unwrap(), Exit::Stopped);
    let dm = sim.dm.borrow();
    let id = sim.daemon.group.group_id();
    no_orphans(&dm, DMSTATS_PROGRAM, &[id]);
    let members = common::group(&dm, id).1.len();
    assert!(
        members > 1 && members < 400,
        "{members} members: the update was not cut short"
    );
}

#[test]
fn transient_failure_is_retried() {
    let fail: Change = Box::new(|w, dm| {
        dm.reset_faults();
        dm.fail(Kind::Create, 1, Errno::IO);
        w.write(layout(3));
    });
    let mut sim = sim(&layout(1), vec![(1_000, fail), (5_000, stop())]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    assert_eq!(sim.daemon.counters.failures, 1);
    sim.check(&layout(3));
}

#[test]
fn device_gone_is_fatal() {
    let gone: Change = Box::new(|w, dm| {
        dm.reset_faults();
        (1..1000).for_each(|n| dm.fail(Kind::Any, n, Errno::NXIO));
        w.write(layout(3));
    });
    let mut sim = sim(&layout(1), vec![(1_000, gone)]);
    match sim.run() {
        Err(DaemonError::Fatal { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn member_deleted_by_another_program_is_restored() {
    let file = layout(3);
    let snipe: Change = Box::new(|_, dm| {
        let victim = dm
            .regions
            .values()
            .filter(|r| r.program_id == DMSTATS_PROGRAM)
            .map(|r| r.id)
            .max()
            .unwrap();
        dm.regions.remove(&victim);
    });
    let mut sim = sim(&file, vec![(2_000, snipe), (33_000, stop())]);
    sim.run().unwrap();
    sim.check(&file);
    // Noticed by the full list every 30 s (no probe sees it), with no
    // change to the file.
    assert_eq!(sim.world.borrow().version, 0);
}

#[test]
fn unlinked_and_closed_exits() {
    let unlink: Change = Box::new(|w, _| {
        w.look = Some(Look::UnlinkedAndClosed);
        w.event = true;
    });
    let mut sim = sim(&layout(2), vec![(2_000, unlink)]);
    assert_eq!(sim.run().unwrap(), Exit::UnlinkedAndClosed);
    // The group stays: the man page only promises the daemon exits.
    sim.check(&layout(2));
}

#[test]
fn path_gone_exits() {
    let remove: Change = Box::new(|w, _| w.look = Some(Look::Absent));
    let mut sim = sim(&layout(2), vec![(2_000, remove)]);
    assert_eq!(sim.run().unwrap(), Exit::Absent);
}

#[test]
fn lower_free_id_moves_the_leader() {
    // Free id 0 (the other program's region) so the next create takes it.
    let (a, b) = (ext(100, 8), ext(300, 16));
    let free: Change = Box::new(move |w, dm| {
        dm.regions.retain(|_, r| r.program_id == DMSTATS_PROGRAM);
        w.write(vec![a, b]);
    });
    let mut sim = sim(&[a], vec![(1_000, free), (3_000, stop())]);
    sim.run().unwrap();
    assert_eq!(sim.id(), 0);
    sim.check(&[a, b]);
}

#[test]
fn exit_lines_are_cs() {
    assert_eq!(
        Exit::GroupRemoved.message(),
        "Filemap group removed: exiting."
    );
    assert_eq!(
        Exit::UnlinkedAndClosed.message(),
        "File unlinked and closed: exiting."
    );
    assert_eq!(
        Exit::NoExtents.message(),
        "File contains no extents: exiting."
    );
}

/// A file of one extent appended to at 2 s (an event, the new data with no
/// address yet), whose writeback places it at `placed_ms` with no event and
/// no fstat change; stopped at `stop_ms`. Run to the stop; the grown extent
/// is returned.
fn append_then_writeback(placed_ms: u64, stop_ms: u64) -> (Sim, Extent) {
    let (a, grown) = (ext(100, 8), ext(100, 24));
    let appended: Change = Box::new(|w, _| {
        w.unmapped = true;
        w.version += 1;
        w.event = true;
    });
    let written_back: Change = Box::new(move |w, _| {
        w.unmapped = false;
        w.extents = vec![grown];
    });
    let mut sim = sim(
        &[a],
        vec![
            (2_000, appended),
            (placed_ms, written_back),
            (stop_ms, stop()),
        ],
    );
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    (sim, grown)
}

#[test]
fn delayed_allocation_is_rescanned_until_written_back() {
    // A buffered append, written back by the kernel 2.2 s later.
    let (sim, grown) = append_then_writeback(4_200, 9_000);
    sim.check(&[grown]);
    let n = sim.daemon.counters;
    // The first scan, the one after the append (2.0 s), then rescans 0.1,
    // 0.2, 0.4, 0.8 and 1 s apart until writeback (2.1 .. 4.5 s): not one
    // per cycle, and none after.
    assert!((6..=8).contains(&n.scans), "{n:?}");
}

#[test]
fn a_writeback_right_after_the_write_is_followed_at_once() {
    // A write and its fsync: the event comes with the write, while the data
    // has no address; the fsync that places it (50 ms on) sends none.
    let (sim, grown) = append_then_writeback(2_050, 2_200);
    // Followed by the first rescan (2.1 s), not a second later.
    sim.check(&[grown]);
}

#[test]
fn rescans_send_no_more_than_two_updates_a_second() {
    // A file always being appended to: each rescan finds a little more
    // placed and a tail still unplaced, for 5 s.
    let mut script: Vec<(u64, Change)> = (1..100)
        .map(|i| {
            let c: Change = Box::new(move |w, _| {
                w.unmapped = true;
                w.extents = vec![ext(100, 8 + i * 8)];
                w.version += 1;
                w.event = true;
            });
            (1_000 + i * 50, c)
        })
        .collect();
    script.push((6_000, stop()));
    let mut sim = sim(&[ext(100, 8)], script);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    let n = sim.daemon.counters;
    assert!(n.syncs <= 12, "{n:?}");
    assert!(n.syncs >= 6, "{n:?}");
}

#[test]
fn an_event_alone_triggers_a_scan() {
    // A same-size rewrite that moves blocks (or a defrag): fstat shows
    // nothing new, only inotify does.
    let (a, b) = (ext(100, 8), ext(500, 8));
    let moved: Change = Box::new(move |w, _| {
        w.extents = vec![b];
        w.event = true;
    });
    let mut sim = sim(&[a], vec![(2_000, moved), (4_000, stop())]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    sim.check(&[b]);
    assert_eq!(sim.world.borrow().version, 0);
}

#[test]
fn a_changed_stamp_alone_triggers_a_scan() {
    // A write through a shared mapping: no inotify event, but fstat moves.
    let (a, b) = (ext(100, 8), ext(500, 8));
    let silent: Change = Box::new(move |w, _| {
        w.extents = vec![a, b];
        w.version += 1;
    });
    // Seen at the next check's wake-up (every 10 s).
    let mut sim = sim(&[a], vec![(2_000, silent), (10_100, stop())]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    sim.check(&[a, b]);
}

/// FIEMAP failing at any scan, with any errno the fault plan knows: the
/// group is left as it was, the scan retried, and the group converges.
#[test]
fn a_failed_fiemap_is_retried() {
    for errno in dmfilemapd::testkit::fake::FAULT_ERRNOS {
        for nth in 1..=3 {
            let script = vec![
                (1_000, write(layout(3))),
                (3_000, write(layout(5))),
                (6_000, stop()),
            ];
            let mut sim = sim(&layout(1), script);
            sim.world.borrow_mut().scan_fault = Some((nth, errno));
            assert_eq!(sim.run().unwrap(), Exit::Stopped, "{errno:?} at scan {nth}");
            assert_eq!(sim.daemon.counters.failures, 1, "{errno:?} at scan {nth}");
            sim.check(&layout(5));
        }
    }
}

/// Messages of the idle check minute by minute: (@stats_print,
/// @stats_list) sent in each minute of the simulated clock.
fn per_minute(sim: &mut Sim, minutes: u64) -> Vec<(usize, usize)> {
    let marks = Rc::new(RefCell::new(Vec::new()));
    let mut script: Vec<(u64, Change)> = (1..=minutes)
        .map(|m| {
            let marks = marks.clone();
            let mark: Change = Box::new(move |_, dm| {
                marks
                    .borrow_mut()
                    .push((dm.calls(Kind::Print), dm.calls(Kind::List)))
            });
            (m * 60_000 - 1, mark)
        })
        .collect();
    script.push((minutes * 60_000, stop()));
    {
        let mut w = sim.world.borrow_mut();
        w.limit = Duration::from_secs(minutes * 60 + 10);
        w.script = script
            .into_iter()
            .map(|(ms, c)| (Duration::from_millis(ms), c))
            .collect();
    }
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    let marks = marks.borrow();
    let mut out = Vec::new();
    let mut last = (0, 0);
    for &m in marks.iter() {
        out.push((m.0 - last.0, m.1 - last.1));
        last = m;
    }
    out
}

/// A group of 25 regions, alone on its device and among 39 other groups of
/// 25 (1,000 regions in all): the same probes every idle minute, and lists
/// that return 1,000 regions come 40 times less often than lists of 25,
/// so that both cost the same regions listed per minute (the kernel's
/// work for a list follows the regions it returns). Counts only, on the
/// simulated clock.
#[test]
fn idle_cost_follows_the_group_not_the_device() {
    let mut rows = Vec::new();
    for (others, each, extents) in [(0, 0, 25), (39, 25, 25), (199, 5, 5), (9, 100, 100)] {
        let mut sim = crowded(&layout(extents), others, each, vec![]);
        let minutes = 41;
        let counts = per_minute(&mut sim, minutes);
        let n = sim.daemon.counters;
        let listed = sim.daemon.group.listed_regions() as u64;
        let interval = sim.daemon.list_interval();
        let prints: usize = counts.iter().map(|c| c.0).sum();
        let lists: usize = counts.iter().map(|c| c.1).sum();
        eprintln!(
            "{} groups of {extents}: {listed} regions listed each time, a list every {} s; per idle minute: {:?}; in {minutes} min: {prints} prints, {lists} lists ({} regions listed)",
            others + 1,
            interval.as_secs(),
            &counts[1..4],
            lists as u64 * listed,
        );
        assert_eq!(sim.world.borrow().scans, 1, "{n:?}");
        assert_eq!(dmfilemapd::testkit::fake::DMSTATS_PROGRAM, "dmstats");
        rows.push((others, extents, counts, n, listed, interval));
    }
    // Alone: 25 regions listed every 30 s (the shortest interval).
    let (_, _, alone, _, listed, interval) = &rows[0];
    assert_eq!((*listed, interval.as_secs()), (25, 30));
    // Each minute after the first: 6 checks (one per 10 s), of which 2
    // lists and 4 probes of the leader, and the members' turns: 25 per
    // 6 checks, over 4 checks.
    for c in &alone[1..] {
        assert_eq!(c.1, 2, "{alone:?}");
        assert!((4 + 16..=4 + 17).contains(&c.0), "{alone:?}");
    }
    // 40 x 25: 1,000 regions listed every 40 x 30 s = 20 min; in the
    // minutes between, 6 leader probes and 6 x 25 / 6 = 25 member
    // probes (each member once a minute), nothing else.
    let (_, _, crowd, n, listed, interval) = &rows[1];
    assert_eq!((*listed, interval.as_secs()), (1_000, 1_200));
    for (m, c) in crowd.iter().enumerate().skip(1) {
        let list_minute = m == 20 || m == 40;
        if list_minute {
            assert_eq!(c.1, 1, "minute {m}: {crowd:?}");
        } else {
            assert_eq!(*c, (31, 0), "minute {m}: {crowd:?}");
        }
    }
    // In all: the first update's list and one each 20 min.
    assert_eq!(n.loads, 2, "{n:?}");
    // Regions listed per minute: alone 2 x 25, in the crowd 1,000 / 20.
    assert_eq!(2 * 25, 1_000 / 20);
    // 200 x 5: 1,000 regions, each list would be 200 of the group: the
    // interval stops at its longest, 30 min; 6 probes of the leader and
    // 5 of members a minute.
    let (_, _, many, _, listed, interval) = &rows[2];
    assert_eq!((*listed, interval.as_secs()), (1_000, 1_800));
    assert!(many[1..29].iter().all(|c| *c == (11, 0)), "{many:?}");
    assert_eq!(many.iter().map(|c| c.1).sum::<usize>(), 2, "{many:?}");
    // 10 x 100: a list every 10 x 30 s; 6 + 100 probes a minute between.
    let (_, _, big, _, listed, interval) = &rows[3];
    assert_eq!((*listed, interval.as_secs()), (1_000, 300));
    assert_eq!(big[1], (106, 0), "{big:?}");
    assert_eq!(big.iter().map(|c| c.1).sum::<usize>(), 1 + 8, "{big:?}");
}

/// Another program deletes a member of a group among 39 others, right
/// after its turn: the member probes see it within one round (6 checks
/// of 10 s) and a check,
/// long before the next full list (20 min), and the next update, which
/// lists first, puts it back.
#[test]
fn member_deleted_in_a_crowd_is_noticed_within_a_round() {
    let file = layout(25);
    let snipe: Change = Box::new(|_, dm| {
        // The member probed last (not the leader, probed at every check):
        // its next turn is a whole round away.
        let leader = holder(dm, "DMS_GROUP=data:");
        let victim = dm
            .log
            .iter()
            .rev()
            .filter_map(|m| m.to_str()?.strip_prefix("@stats_print "))
            .filter_map(|m| m.split(' ').next()?.parse::<u64>().ok())
            .find(|&id| id != leader)
            .unwrap();
        dm.regions.remove(&victim);
    });
    let mut sim = crowded(&file, 39, 25, vec![(100_500, snipe), (166_500, stop())]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    let leaders: Vec<u64> = sim
        .dm
        .borrow()
        .regions
        .values()
        .filter(|r| r.aux_data.starts_with("DMS_GROUP="))
        .map(|r| r.id)
        .collect();
    converged(&sim.dm.borrow(), sim.id(), &file);
    no_orphans(&sim.dm.borrow(), DMSTATS_PROGRAM, &leaders);
    let n = sim.daemon.counters;
    // Five lists by the check: the one the member's probe asked for, then
    // one a second for the 5 s after the update that made the region again
    // (CONFIRM_WINDOW: a rival's late descriptor shows only in a list).
    assert_eq!((n.loads, n.syncs), (5, 2), "{n:?}");
    assert_eq!(sim.world.borrow().version, 0);
}

/// `dmstats ungroup` rewrites the leader's aux data and nothing else: no
/// probe sees it, the next full list does; among 39 other groups of 25,
/// that list comes 20 min after the last one (the worst case), and not
/// before.
#[test]
fn ungroup_in_a_crowd_is_noticed_at_the_scaled_list() {
    let mut sim = crowded(&layout(25), 39, 25, vec![(5_300, ungroup())]);
    sim.world.borrow_mut().limit = Duration::from_secs(1_300);
    assert_eq!(sim.run().unwrap(), Exit::GroupRemoved);
    assert_eq!(
        sim.now(),
        Duration::from_secs(1_200),
        "noticed at {:?}",
        sim.now()
    );
    let n = sim.daemon.counters;
    assert_eq!(n.loads, 1, "{n:?}");
    // Nothing was deleted: the regions are the user's now.
    assert_eq!(sim.dm.borrow().regions.len(), 1 + 40 * 25);
}

/// A rival updater moves the descriptor to another of our members and
/// strips ours (aux data only, as a second daemon or `dmstats
/// update_filemap` would when the old leader leaves): no probe sees it,
/// the scaled list does, and the daemon leaves the group to its new
/// owner without deleting anything.
#[test]
fn rival_descriptor_in_a_crowd_is_noticed_at_the_scaled_list() {
    let rival: Change = Box::new(|_, dm| {
        let leader = holder(dm, "DMS_GROUP=data:");
        let last = leader + 24;
        let next = dm.regions.get_mut(&(leader + 1)).unwrap();
        next.aux_data = format!("DMS_GROUP=data:{}-{last}#-", leader + 1).into();
        dm.regions.get_mut(&leader).unwrap().aux_data = "-".into();
    });
    let mut sim = crowded(&layout(25), 39, 25, vec![(5_300, rival)]);
    sim.world.borrow_mut().limit = Duration::from_secs(1_300);
    assert_eq!(sim.run().unwrap(), Exit::GroupRemoved);
    assert_eq!(
        sim.now(),
        Duration::from_secs(1_200),
        "noticed at {:?}",
        sim.now()
    );
    assert_eq!(sim.dm.borrow().regions.len(), 1 + 40 * 25);
    assert_eq!(sim.dm.borrow().calls(Kind::Delete), 0);
}

/// The whole group deleted (`dmstats delete --groupid`: members, then the
/// leader) among 39 other groups: the leader's probe sees it at the next
/// check, within 10 s, as alone.
#[test]
fn group_deleted_in_a_crowd_exits_within_a_check() {
    let delete: Change = Box::new(|_, dm| {
        let leader = holder(dm, "DMS_GROUP=data:");
        dm.regions.retain(|&id, _| id < leader || id > leader + 24);
    });
    let mut sim = crowded(&layout(25), 39, 25, vec![(5_300, delete)]);
    assert_eq!(sim.run().unwrap(), Exit::GroupRemoved);
    assert_eq!(sim.now(), Duration::from_secs(10));
}

/// `dmstats update_filemap` listed before the daemon's update and writes
/// its descriptor after the daemon's next list has seen that update stand:
/// the daemon's new regions are left out, and a probe of the leader (all
/// the check sends between full lists) cannot see it. The check lists for
/// a while after an update that created regions
/// (`CONFIRM_WINDOW`), finds them and deletes them
/// long before the full check (VM race_held_update, race_update_filemap).
#[test]
fn a_late_dmstats_write_is_found_by_the_next_checks() {
    let (a, b, c) = (ext(100, 8), ext(300, 16), ext(200, 8));
    let mut sim = sim(&[a], vec![]);
    let (desc, _) = group(&sim.dm.borrow(), sim.id());
    let late: Change = Box::new(move |_, dm| {
        // What dmstats computed from its list: its members, and regions of
        // its own for the extents the list lacked.
        let mut members = desc.members.clone();
        members.push(dm.seed(b, DMSTATS_PROGRAM, "-"));
        members.push(dm.seed(c, DMSTATS_PROGRAM, "-"));
        members.sort_unstable();
        let aux = Descriptor {
            members,
            ..desc.clone()
        }
        .format();
        dm.regions.get_mut(&desc.members[0]).unwrap().aux_data = aux;
    });
    sim.world.borrow_mut().script = VecDeque::from([
        (Duration::from_millis(1_000), write(vec![a, b, c])),
        (Duration::from_millis(3_500), late),
        (Duration::from_millis(5_000), stop()),
    ]);
    assert_eq!(sim.run().unwrap(), Exit::Stopped);
    sim.check(&[a, b, c]);
    let dm = sim.dm.borrow();
    let ours = dm
        .regions
        .values()
        .filter(|r| r.program_id == DMSTATS_PROGRAM);
    assert_eq!(ours.count(), 3, "{:#?}", dm.log);
}
