//! `map` and `unmap` on the in-memory dm-stats: the group `map` makes is
//! the one `dmstats create --filemap` makes (the fake's fixture), a fault at
//! any message leaves nothing behind, and `unmap` deletes in an order that
//! leaves a valid group at every step.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use common::*;
use dmfilemapd::leading;
use dmfilemapd::testkit::fake::{FakeDm, Kind, DMSTATS_PROGRAM, FAULT_ERRNOS};
use dmfilemapd::Extent;
use dmfilemapd::Histogram;
use dmfilemapd::{
    create_group, delete_group, delete_strays, find_group, first_mark, strays, Created, FindError,
    MapError, NewGroup,
};
use dmfilemapd::{fingerprint, Mark, BATCH};
use dmfilemapd::{Descriptor, Dialect, Region, RegionId};
use dmfilemapd::{Device, DeviceError, Text};
use dmfilemapd::{Engine, EngineError, Outcome, Warning};

const P: &str = DMSTATS_PROGRAM;

fn spec(alias: &str) -> NewGroup {
    NewGroup {
        alias: alias.into(),
        histogram: Histogram::default(),
        dialect: Dialect::Quoted,
    }
}

/// Other programs' regions around the group, one id free below them.
fn busy_device() -> FakeDm {
    let mut dm = FakeDm::new();
    dm.seed(ext(1 << 30, 8), "other", "-");
    dm.seed(ext(0, 8), "other", "DMS_GROUP=evil:0-9#");
    dm.seed(ext(8, 8), "-", "a b\\c");
    dm.regions.remove(&0);
    dm
}

fn file() -> Vec<Extent> {
    // File order, not sorted by start.
    extents_at(&[(5, 64), (2, 8), (9, 16), (3, 8)])
}

#[test]
fn map_makes_what_dmstats_makes() {
    for (alias, dialect, precise, bounds) in [
        // What Debian 13's dmstats writes (map's dialect where the
        // system's libdevmapper is 1.02.197 or later, or none).
        ("vm.img", Dialect::Quoted, false, vec![]),
        ("my file", Dialect::Quoted, false, vec![]),
        ("\"q\"", Dialect::Quoted, true, vec![]),
        ("db", Dialect::Quoted, false, vec![10, 20]),
        ("db", Dialect::Quoted, true, vec![10_000, 1_000_000_000]),
        ("", Dialect::Quoted, false, vec![]),
        // What Debian 12's dmstats writes (map's dialect where the
        // system's libdevmapper is older).
        ("vm.img", Dialect::Bare, false, vec![]),
        ("db", Dialect::Bare, true, vec![10_000, 1_000_000_000]),
    ] {
        let histogram = Histogram {
            precise,
            bounds: bounds.clone(),
        };
        let spec = NewGroup {
            alias: alias.into(),
            histogram,
            dialect,
        };
        let mut ours = busy_device();
        let made = create_group(&mut ours, &file(), &spec, &never).unwrap();
        let mut theirs = busy_device();
        let g = theirs.filemap_group_with(&file(), alias, dialect, "", precise, &bounds);
        assert_eq!(
            made,
            Created {
                group_id: g,
                regions: 4
            }
        );
        // The members carry the mark of the group of one they joined,
        // which libdm reads as dmstats' `-`; all else is equal.
        let first = ours.regions[&g].aux_data.clone();
        let joined = Mark::Made {
            under: fingerprint(
                Descriptor {
                    dialect,
                    ..Descriptor::for_new_group(alias, vec![g]).unwrap()
                }
                .format(),
            ),
        }
        .format();
        let mut seen = ours.regions.clone();
        for r in seen.values_mut().filter(|r| r.program_id == P && r.id != g) {
            assert_eq!(r.aux_data, joined, "{alias:?}");
            r.aux_data = "-".into();
        }
        assert_eq!(seen, theirs.regions, "{alias:?}");
        // One create, the group of one; the engine's list of it, the other
        // creates in file order (one step), its look for a rival, the
        // descriptor naming them.
        assert_eq!(ours.log.len(), 8);
        let creates = [&ours.log[0], &ours.log[3], &ours.log[4], &ours.log[5]];
        assert!(creates
            .iter()
            .all(|m| m.starts_with("@stats_create ") && m.contains(" /1 ")));
        assert!(ours.log[0].ends_with(format!(" dmstats {}", first_mark())));
        assert!(ours.log[3..6].iter().all(|m| m.ends_with(&joined)));
        assert_eq!(
            [&ours.log[2][..], &ours.log[6][..]],
            [
                b"@stats_list".as_slice(),
                format!("@stats_list {P}").as_bytes()
            ]
        );
        assert!(ours.log[0].starts_with(format!("@stats_create {}+64 /1", 5 * 2048)));
        for k in [1, 7] {
            assert!(ours.log[k].starts_with(format!("@stats_set_aux {g} DMS_GROUP=")));
        }
        assert!(first.starts_with("DMS_GROUP="));
        converged(&ours, g, &file());
        no_orphans(&ours, P, &[g]);
    }
}

#[test]
fn map_refuses_a_file_without_extents_and_a_bad_alias() {
    let mut dm = busy_device();
    let before = dm.regions.clone();
    assert!(matches!(
        create_group(&mut dm, &[], &spec("f"), &never),
        Err(MapError::NoExtents)
    ));
    for alias in ["a:b", "x\":y", "a\nb", "a# b"] {
        assert!(matches!(
            create_group(&mut dm, &file(), &spec(alias), &never),
            Err(MapError::Alias(_))
        ));
    }
    assert_eq!(dm.regions, before);
    assert!(dm.log.is_empty(), "nothing sent: {:?}", dm.log);
}

#[test]
fn a_fault_at_any_message_of_map_leaves_nothing() {
    for kind in [Kind::Any, Kind::Create, Kind::SetAux] {
        for nth in 1..=8 {
            for errno in FAULT_ERRNOS {
                let mut dm = busy_device();
                let before = dm.regions.clone();
                dm.fail(kind, nth, errno);
                match create_group(&mut dm, &file(), &spec("f"), &never) {
                    Ok(made) => {
                        // The fault fell past the last message.
                        assert!(dm.calls(kind) < nth, "{kind:?} {nth} {errno:?}");
                        converged(&dm, made.group_id, &file());
                    }
                    Err(e) => {
                        assert_eq!(dm.regions, before, "{kind:?} {nth} {errno:?}: {e}");
                        assert!(!e.to_string().contains('\n'));
                    }
                }
            }
        }
    }
}

#[test]
fn a_failed_cleanup_is_reported_with_what_is_left() {
    let mut dm = busy_device();
    // The descriptor fails, then the first delete of the undo too.
    dm.fail(Kind::SetAux, 1, rustix::io::Errno::IO);
    dm.fail(Kind::Delete, 1, rustix::io::Errno::IO);
    let e = create_group(&mut dm, &file(), &spec("f"), &never).unwrap_err();
    let left: Vec<RegionId> = dm
        .regions
        .values()
        .filter(|r| r.program_id == P)
        .map(|r| r.id)
        .collect();
    assert_eq!(left.len(), 1);
    match e {
        MapError::Leftover { left: l, .. } => assert_eq!(l, left[0].to_string()),
        other => panic!("{other}"),
    }
}

#[test]
fn a_stop_during_map_leaves_nothing() {
    let mut dm = busy_device();
    let before = dm.regions.clone();
    let calls = std::cell::Cell::new(0);
    let stop = || {
        calls.set(calls.get() + 1);
        calls.get() > 2
    };
    assert!(matches!(
        create_group(&mut dm, &file(), &spec("f"), &stop),
        Err(MapError::Stopped)
    ));
    assert_eq!(dm.regions, before);
}

#[test]
fn the_engine_follows_a_group_map_made() {
    let mut dm = busy_device();
    let made = create_group(&mut dm, &file(), &spec("vm.img"), &never).unwrap();
    let mut engine = Engine::new(dm, made.group_id);
    let grown: Vec<Extent> = file().into_iter().chain([ext(40 * 2048, 8)]).collect();
    assert!(matches!(
        engine.sync(&grown, &never),
        Ok(Outcome::Updated(_))
    ));
    converged(&engine.dev, engine.group_id(), &grown);
    let (desc, _) = group(&engine.dev, engine.group_id());
    assert_eq!(
        (desc.alias.to_str().unwrap(), desc.dialect),
        ("vm.img", Dialect::Quoted)
    );
}

#[test]
fn find_group_rule() {
    let mut dm = busy_device();
    let a = dm.filemap_group(&file(), "a", Dialect::Bare);
    let other = extents_at(&[(20, 8), (21, 8)]);
    let b = dm.filemap_group(&other, "b", Dialect::Quoted);
    let list = |dm: &FakeDm| dmfilemapd::by_id(dmfilemapd::parse_list(dm.list_reply(None)).0);
    assert_eq!(find_group(&list(&dm), &file()), Ok(a));
    // Any order of the file's extents; the set is what counts.
    let mut shuffled = file();
    shuffled.reverse();
    assert_eq!(find_group(&list(&dm), &shuffled), Ok(a));
    assert_eq!(find_group(&list(&dm), &other), Ok(b));
    // A subset, a superset, nothing: no match.
    assert_eq!(
        find_group(&list(&dm), &file()[..3]),
        Err(FindError::NoMatch)
    );
    let more: Vec<Extent> = file().into_iter().chain([ext(1, 1)]).collect();
    assert_eq!(find_group(&list(&dm), &more), Err(FindError::NoMatch));
    assert_eq!(find_group(&list(&dm), &[]), Err(FindError::NoExtents));
    // The same file mapped twice: ambiguous, both named.
    let c = dm.filemap_group(&file(), "a", Dialect::Bare);
    assert_eq!(
        find_group(&list(&dm), &file()),
        Err(FindError::Ambiguous(vec![a, c]))
    );
    let e = FindError::Ambiguous(vec![a, c]).to_string();
    assert!(
        e.contains(&format!("{a},{c}")) || e.contains(&format!("{a}-{c}")),
        "{e}"
    );
    // A member deleted by someone: the group no longer has the file's extents.
    dm.regions.remove(&c);
    let second = group(&dm, a).0.members[1];
    dm.regions.remove(&second);
    assert_eq!(find_group(&list(&dm), &file()), Err(FindError::NoMatch));
}

#[test]
fn unmap_deletes_every_member_and_the_leader_last() {
    let mut dm = busy_device();
    let foreign = snapshot(&dm, P);
    let g = dm.filemap_group_with(&file(), "my file", Dialect::Quoted, "user", true, &[5]);
    let keep = dm.filemap_group(&extents_at(&[(30, 8)]), "other file", Dialect::Bare);
    let members = group(&dm, g).0.members;
    let members_before = dm.regions.clone();
    dm.log.clear();
    let done = delete_group(&mut dm, g).unwrap();
    assert_eq!(done.regions, 4);
    untouched(&dm, &foreign);
    no_orphans(&dm, P, &[keep]);
    // A list; the list of the batch on its carrier (the highest), the
    // descriptor down to the leader, the batch, its carrier last; a list
    // that shows the leader alone, the leader.
    let [_, m1, m2, m3] = members[..] else {
        panic!("{members:?}")
    };
    let desc = format!("DMS_GROUP=\"my\\ file\":{g}#user");
    let carried = dm.log[1]
        .strip_prefix(format!("@stats_set_aux {m3} "))
        .and_then(Mark::parse);
    let batch = [m1, m2, m3].map(|m| (m, dm_extent(&members_before, m)));
    assert_eq!(
        carried,
        Some(Mark::Dropped {
            under: fingerprint(desc.replace("\\ ", " ")),
            regions: batch.to_vec(),
        }),
        "{:?}",
        dm.log
    );
    let want: Vec<Text> = vec![
        "@stats_list".into(),
        dm.log[1].clone(),
        format!("@stats_set_aux {g} {desc}").into(),
        format!("@stats_delete {m1}").into(),
        format!("@stats_delete {m2}").into(),
        format!("@stats_delete {m3}").into(),
        format!("@stats_list {P}").into(),
        format!("@stats_delete {g}").into(),
    ];
    assert_eq!(dm.log, want);
    assert_eq!(done.messages, want.len());
}

#[test]
fn unmap_refuses_what_is_not_a_group() {
    let mut dm = busy_device();
    let g = dm.filemap_group(&file(), "f", Dialect::Bare);
    let before = dm.regions.clone();
    let member = group(&dm, g).0.members[1];
    for (id, why) in [
        (99, "no such region"),
        (member, "no group descriptor"),
        (1, "led by region"),
    ] {
        match delete_group(&mut dm, id) {
            Err(MapError::Engine(e @ EngineError::NotAGroup { .. })) => {
                assert!(e.to_string().contains(why), "{e}")
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(dm.regions, before);
}

fn dm_extent(regions: &BTreeMap<RegionId, Region>, id: RegionId) -> Extent {
    regions[&id].extent()
}

/// Regions of `P` outside every descriptor, but those made by hand.
fn outside(regions: &BTreeMap<RegionId, Region>, hand: &[RegionId], what: &str) -> Vec<RegionId> {
    let named = named(regions, what);
    regions
        .values()
        .filter(|r| r.program_id == P && !named.contains(&r.id) && !hand.contains(&r.id))
        .map(|r| r.id)
        .collect()
}

const KILLED: &str = "killed file";

/// A device with another program's region (holding a descriptor that
/// names none of ours: one that did would keep them from being settled),
/// and regions made by hand over `extents`' first and middle blocks.
/// Returns it, the hand-made ids, and what must stay as it is.
fn with_bystanders(extents: &[Extent]) -> (FakeDm, Vec<RegionId>, BTreeMap<RegionId, Region>) {
    let mut dm = FakeDm::new();
    dm.seed(ext(1 << 30, 8), "other", "DMS_GROUP=evil:0,900-909#");
    let hand = vec![
        dm.seed(extents[0], P, "-"),
        dm.seed(extents[extents.len() / 2], P, "-"),
    ];
    let foreign = dm.regions.clone();
    (dm, hand, foreign)
}

/// What a kill left, then `unmap`: of the group, whichever region holds
/// its descriptor, or, when none does, of the file (its first region
/// alone). Nothing of ours may be left, nothing else touched.
fn unmap_after_kill(
    state: &BTreeMap<RegionId, Region>,
    extents: &[Extent],
    hand: &[RegionId],
    foreign: &BTreeMap<RegionId, Region>,
    what: &str,
) {
    let out = outside(state, hand, what);
    assert!(
        out.len() <= BATCH,
        "{what}: {} outside the group",
        out.len()
    );
    let leaders: Vec<RegionId> = state
        .values()
        .filter(|r| leading(r).is_some_and(|d| d.alias == KILLED))
        .map(|r| r.id)
        .collect();
    let mut runs = Vec::new();
    for gid in &leaders {
        let mut dm = FakeDm::new();
        dm.regions = state.clone();
        let done =
            delete_group(&mut dm, *gid).unwrap_or_else(|e| panic!("{what}: unmap of {gid}: {e}"));
        // What it settled, it says, and every region it meant to delete went.
        assert!(
            done.warnings
                .iter()
                .all(|w| !matches!(w, Warning::NotDeleted { .. })),
            "{what}: {:?}",
            done.warnings
        );
        assert!(
            out.is_empty() || !done.warnings.is_empty(),
            "{what}: settled silently"
        );
        runs.push((format!("{what}, unmap --group {gid}"), dm));
    }
    if leaders.is_empty() {
        let mut dm = FakeDm::new();
        dm.regions = state.clone();
        let list = dmfilemapd::list(&mut dm).unwrap();
        assert_eq!(
            find_group(&list, extents),
            Err(FindError::NoMatch),
            "{what}"
        );
        let ids = strays(&list, extents);
        assert_eq!(ids, out, "{what}: only the first region, marked");
        let done = delete_strays(&mut dm, &ids).unwrap();
        let said: Vec<Option<RegionId>> = (done.warnings.iter())
            .map(|w| match w {
                Warning::FirstRegionDeleted(id) => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(
            said,
            ids.iter().copied().map(Some).collect::<Vec<_>>(),
            "{what}"
        );
        runs.push((format!("{what}, unmap FILE"), dm));
    }
    for (what, dm) in runs {
        let ours: Vec<&Region> = dm
            .regions
            .values()
            .filter(|r| r.program_id == P && !hand.contains(&r.id))
            .collect();
        assert!(ours.is_empty(), "{what}: left {ours:#?}");
        untouched(&dm, foreign);
    }
}

/// A file of `n` extents 16 sectors apart, not in start order.
fn long_file(n: u64) -> Vec<Extent> {
    let mut extents: Vec<Extent> = (0..n).map(|i| ext((1 << 20) + i * 16, 8)).collect();
    extents.swap(1, 7);
    extents
}

/// SIGKILL after every message of `map`: at most one step outside the
/// group, no descriptor naming a missing region; `unmap` then leaves
/// nothing of ours and the regions made by hand over the same blocks.
#[test]
fn map_killed_after_any_message() {
    let extents = long_file(2 * BATCH as u64 + 5);
    let (dm, hand, foreign) = with_bystanders(&extents);
    let mut dev = Recording {
        dm,
        states: Vec::new(),
    };
    let made = create_group(&mut dev, &extents, &spec(KILLED), &never).unwrap();
    let n = extents.len();
    // One descriptor write per step of creates, and the first one's; the
    // engine's list of the group of one, and its look for a rival.
    assert_eq!(dev.states.len(), n + 1 + (n - 1).div_ceil(BATCH) + 2);
    converged(&dev.dm, made.group_id, &extents);
    let mut worst = 0;
    for (k, state) in dev.states.iter().enumerate() {
        let what = format!("map killed after message {}", k + 1);
        worst = worst.max(outside(state, &hand, &what).len());
        unmap_after_kill(state, &extents, &hand, &foreign, &what);
        // Or a daemon started on the part made: its first update adopts
        // the last step's regions and completes the group.
        for r in state.values().filter(|r| r.program_id == P) {
            if leading(r).is_some() {
                let mut dm = FakeDm::new();
                dm.regions = state.clone();
                let mut daemon = Engine::new(dm, r.id);
                daemon.sync(&extents, &never).unwrap();
                let what = format!("{what}, daemon on {}", r.id);
                assert_eq!(outside(&daemon.dev.regions, &hand, &what), [0; 0], "{what}");
                converged(&daemon.dev, daemon.group_id(), &extents);
                untouched(&daemon.dev, &foreign);
            }
        }
    }
    assert_eq!(worst, BATCH);
}

/// SIGKILL after every message of `unmap` of a group `map` made: the same,
/// and a second `unmap` finishes the job.
#[test]
fn unmap_killed_after_any_message() {
    let extents = long_file(2 * BATCH as u64 + 5);
    let (mut dm, hand, foreign) = with_bystanders(&extents);
    let made = create_group(&mut dm, &extents, &spec(KILLED), &never).unwrap();
    let mut dev = Recording {
        dm,
        states: Vec::new(),
    };
    let done = delete_group(&mut dev, made.group_id).unwrap();
    assert_eq!(done.regions, extents.len());
    assert_eq!(dev.states.len(), done.messages);
    let mut worst = 0;
    for (k, state) in dev.states.iter().enumerate() {
        let what = format!("unmap killed after message {}", k + 1);
        worst = worst.max(outside(state, &hand, &what).len());
        unmap_after_kill(state, &extents, &hand, &foreign, &what);
    }
    assert_eq!(worst, BATCH);
}

#[test]
fn a_fault_at_any_message_of_unmap_leaves_a_valid_group() {
    let n = BATCH + 3;
    let extents: Vec<Extent> = (0..n as u64).map(|i| ext(i * 64, 8)).collect();
    for kind in [Kind::Any, Kind::List, Kind::Delete, Kind::SetAux] {
        for nth in 1..=n + 4 {
            for errno in FAULT_ERRNOS {
                let mut dm = busy_device();
                let foreign = snapshot(&dm, P);
                let g = dm.filemap_group_with(&extents, "f", Dialect::Quoted, "u", false, &[]);
                dm.fail(kind, nth, errno);
                let result = delete_group(&mut dm, g);
                untouched(&dm, &foreign);
                let ours = dm.regions.values().filter(|r| r.program_id == P).count();
                match result {
                    Ok(_) => assert_eq!(ours, 0, "{kind:?} {nth} {errno:?}"),
                    Err(e) => {
                        assert!(!e.to_string().contains('\n'));
                        if ours > 0 {
                            // Repaired: exactly the members left, user data kept.
                            let (desc, _) = group(&dm, g);
                            no_orphans(&dm, P, &[g]);
                            assert_eq!(desc.user, "u");
                        }
                        // A second unmap finishes the job.
                        dm.reset_faults();
                        if ours > 0 {
                            delete_group(&mut dm, g).unwrap();
                        }
                        assert_eq!(dm.regions.values().filter(|r| r.program_id == P).count(), 0);
                    }
                }
            }
        }
    }
}

#[test]
fn unmap_drops_members_someone_else_deleted() {
    let mut dm = FakeDm::new();
    let g = dm.filemap_group(&file(), "f", Dialect::Bare);
    dm.regions.remove(&(g + 2));
    delete_group(&mut dm, g).unwrap();
    assert!(dm.regions.is_empty());
}

/// A daemon following the group while it is deleted: whenever its update
/// lands between two of unmap's messages, once unmap is done and the
/// daemon has looked again, none of their regions is left.
#[test]
fn a_daemon_racing_unmap_leaves_nothing() {
    let n = BATCH + 3;
    let extents: Vec<Extent> = (0..n as u64).map(|i| ext(i * 64, 8)).collect();
    let mut dm = FakeDm::new();
    dm.seed(ext(1 << 30, 8), "other", "-");
    let g = dm.filemap_group(&extents, "f", Dialect::Bare);
    let total = {
        let mut probe = dm.clone();
        delete_group(&mut probe, g).unwrap().messages
    };
    let mut bad = Vec::new();
    for at in 1..total {
        let shared = Rc::new(RefCell::new(dm.clone()));
        let mut daemon = Engine::new(shared.clone(), g);
        daemon.load().unwrap();
        let mut dev = Interleaved {
            dm: shared.clone(),
            at,
            sent: 0,
            daemon,
            extents: extents.clone(),
        };
        let result = delete_group(&mut dev, g);
        let mut daemon = dev.daemon;
        // The daemon's next check, as its loop makes it: the group is gone,
        // and it sweeps before it exits.
        assert!(matches!(daemon.load(), Ok(None)));
        daemon.sweep();
        let dm = shared.borrow();
        let left: Vec<RegionId> = dm
            .regions
            .values()
            .filter(|r| r.program_id == P)
            .map(|r| r.id)
            .collect();
        if result.is_err() || !left.is_empty() {
            bad.push((
                at,
                result.map(|d| d.regions).map_err(|e| e.to_string()),
                left,
            ));
        }
    }
    assert!(bad.is_empty(), "of {total}: {bad:?}");
}

/// Runs one daemon update right after unmap's `at`-th message.
struct Interleaved {
    dm: Rc<RefCell<FakeDm>>,
    at: usize,
    sent: usize,
    daemon: Engine<Rc<RefCell<FakeDm>>>,
    extents: Vec<Extent>,
}

impl Device for Interleaved {
    fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError> {
        let reply = self.dm.message(msg);
        self.sent += 1;
        if self.sent == self.at {
            let _ = self.daemon.sync(&self.extents, &never);
        }
        reply
    }
}

/// Another program deletes its region at id 0 while `map` runs: the next
/// region takes id 0, the descriptor moves down to it, and the old leader
/// is left a plain member, as dmstats' are.
#[test]
fn map_moves_the_descriptor_to_a_lower_id() {
    struct Freeing {
        dm: FakeDm,
        sent: usize,
    }
    impl Device for Freeing {
        fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError> {
            self.sent += 1;
            if self.sent == 4 {
                self.dm.regions.remove(&0);
            }
            self.dm.message(msg)
        }
    }
    let extents = long_file(BATCH as u64 + 3);
    let mut dm = FakeDm::new();
    dm.seed(ext(1 << 30, 8), "other", "-");
    let mut dev = Freeing { dm, sent: 0 };
    let made = create_group(&mut dev, &extents, &spec("f"), &never).unwrap();
    assert_eq!(made.group_id, 0);
    converged(&dev.dm, 0, &extents);
    no_orphans(&dev.dm, P, &[0]);
    assert_eq!(dev.dm.regions[&1].aux_data, "-");
}
