//! `map` and `unmap` on the in-memory dm-stats: the group `map` makes is
//! the one `dmstats create --filemap` makes (the fake's fixture), a fault at
//! any message leaves nothing behind, and `unmap` deletes in an order that
//! leaves a valid group at every step.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use dmfilemapd::bounds::Histogram;
use dmfilemapd::device::{Device, DeviceError};
use dmfilemapd::engine::{Engine, Outcome};
use dmfilemapd::extent::Extent;
use dmfilemapd::fake::{FakeDm, Kind, DMSTATS_PROGRAM, FAULT_ERRNOS};
use dmfilemapd::map::{
    create_group, delete_group, find_group, Created, FindError, MapError, NewGroup, DELETE_CHUNK,
};
use dmfilemapd::stats::{Descriptor, Dialect, RegionId};

const P: &str = DMSTATS_PROGRAM;

fn spec(alias: &str) -> NewGroup {
    NewGroup {
        alias: alias.to_owned(),
        histogram: Histogram::default(),
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
        ("vm.img", Dialect::Bare, false, vec![]),
        ("my file", Dialect::Quoted, false, vec![]),
        ("a:b", Dialect::Quoted, true, vec![]),
        ("db", Dialect::Bare, false, vec![10, 20]),
        ("db", Dialect::Bare, true, vec![10_000, 1_000_000_000]),
        ("", Dialect::Bare, false, vec![]),
    ] {
        let histogram = Histogram {
            precise,
            bounds: bounds.clone(),
        };
        let spec = NewGroup {
            alias: alias.into(),
            histogram,
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
        assert_eq!(ours.regions, theirs.regions, "{alias:?}");
        // One create per extent in file order, then one descriptor.
        assert_eq!(ours.log.len(), 5);
        assert!(ours.log[..4].iter().all(|m| m.starts_with("@stats_create ")
            && m.contains(" /1 ")
            && m.ends_with(" dmstats -")));
        assert!(ours.log[0].starts_with(&format!("@stats_create {}+64 /1", 5 * 2048)));
        assert!(ours.log[4].starts_with(&format!("@stats_set_aux {g} DMS_GROUP=")));
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
    assert!(matches!(
        create_group(&mut dm, &file(), &spec("x\":y"), &never),
        Err(MapError::Alias(_))
    ));
    assert_eq!(dm.regions, before);
    assert!(dm.log.is_empty(), "nothing sent: {:?}", dm.log);
}

#[test]
fn a_fault_at_any_message_of_map_leaves_nothing() {
    for kind in [Kind::Any, Kind::Create, Kind::SetAux] {
        for nth in 1..=6 {
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
        (desc.alias.as_str(), desc.dialect),
        ("vm.img", Dialect::Bare)
    );
}

#[test]
fn find_group_rule() {
    let mut dm = busy_device();
    let a = dm.filemap_group(&file(), "a", Dialect::Bare);
    let other = extents_at(&[(20, 8), (21, 8)]);
    let b = dm.filemap_group(&other, "b", Dialect::Quoted);
    let list = |dm: &FakeDm| {
        dmfilemapd::group::by_id(dmfilemapd::stats::parse_list(&dm.list_reply(None)).0)
    };
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
    dm.log.clear();
    let done = delete_group(&mut dm, g).unwrap();
    assert_eq!(done.regions, 4);
    untouched(&dm, &foreign);
    no_orphans(&dm, P, &[keep]);
    // A list, the members from the top, the descriptor down to the
    // leader; a list that shows the leader alone, the leader.
    let mut want = vec!["@stats_list".to_string()];
    for &m in members[1..].iter().rev() {
        want.push(format!("@stats_delete {m}"));
    }
    want.push(format!(
        "@stats_set_aux {g} DMS_GROUP=\"my\\ file\":{g}#user"
    ));
    want.push("@stats_list".to_string());
    want.push(format!("@stats_delete {g}"));
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
            Err(e @ MapError::NotAGroup { .. }) => {
                assert!(e.to_string().contains(why), "{e}")
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(dm.regions, before);
}

/// Every state a kill could leave: after each message of an unmap, the
/// group is valid (its descriptor on its lowest member, every region of
/// ours named), naming at most one chunk of deleted ids.
#[test]
fn unmap_is_consistent_after_every_message() {
    let n = 2 * DELETE_CHUNK + 5;
    let extents: Vec<Extent> = (0..n as u64).map(|i| ext(i * 64, 8)).collect();
    let mut dm = FakeDm::new();
    let g = dm.filemap_group(&extents, "big", Dialect::Bare);
    let total = {
        let mut probe = dm.clone();
        delete_group(&mut probe, g).unwrap().messages
    };
    for cut in 1..total {
        let mut dev = Cut {
            dm: dm.clone(),
            left: cut,
        };
        assert!(delete_group(&mut dev, g).is_err());
        let dm = dev.dm;
        let ours: Vec<RegionId> = dm.regions.keys().copied().collect();
        if ours.is_empty() {
            continue;
        }
        let leader = dm.regions[&g].clone();
        let desc = Descriptor::parse(&leader.aux_data).unwrap().unwrap();
        assert_eq!(desc.leader(), Some(g), "cut {cut}");
        for id in &ours {
            assert!(desc.members.contains(id), "cut {cut}: region {id} stranded");
        }
        let gone = desc
            .members
            .iter()
            .filter(|m| !dm.regions.contains_key(m))
            .count();
        assert!(gone <= DELETE_CHUNK, "cut {cut}: {gone} named but gone");
    }
}

/// A device that stops answering after `left` messages, as a killed
/// process stops sending.
struct Cut {
    dm: FakeDm,
    left: usize,
}

impl Device for Cut {
    fn message(&mut self, msg: &str) -> Result<String, DeviceError> {
        if self.left == 0 {
            return Err(DeviceError::Os(rustix::io::Errno::INTR));
        }
        self.left -= 1;
        self.dm.message(msg)
    }
}

#[test]
fn a_fault_at_any_message_of_unmap_leaves_a_valid_group() {
    let n = DELETE_CHUNK + 3;
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
    let n = DELETE_CHUNK + 3;
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
    fn message(&mut self, msg: &str) -> Result<String, DeviceError> {
        let reply = self.dm.message(msg);
        self.sent += 1;
        if self.sent == self.at {
            let _ = self.daemon.sync(&self.extents, &never);
        }
        reply
    }
}
