//! The engine against the in-memory dm-stats, over many updates.

mod common;

use std::cell::Cell;

use common::*;
use dmfilemapd::testkit::ext;
use dmfilemapd::testkit::fake::{FakeDm, DMSTATS_PROGRAM};
use dmfilemapd::Extent;
use dmfilemapd::{Descriptor, Dialect, Region};
use dmfilemapd::{Engine, EngineError, Outcome, Warning};

const P: &str = DMSTATS_PROGRAM;

fn sync(engine: &mut Engine<FakeDm>, extents: &[Extent]) -> Outcome {
    let out = engine.sync(extents, &never).unwrap();
    converged(&engine.dev, engine.group_id(), extents);
    no_orphans(&engine.dev, P, &[engine.group_id()]);
    out
}

fn updated(out: Outcome) -> dmfilemapd::Summary {
    match out {
        Outcome::Updated(s) => s,
        other => panic!("expected an update, got {other:?}"),
    }
}

fn setup(extents: &[Extent]) -> Engine<FakeDm> {
    let mut dm = FakeDm::new();
    let g = dm.filemap_group(extents, "file", Dialect::Bare);
    Engine::new(dm, g)
}

#[test]
fn unchanged_costs_one_list() {
    let e = extents_at(&[(3, 8), (1, 8)]);
    let mut engine = setup(&e);
    assert_eq!(sync(&mut engine, &e), Outcome::Unchanged);
    assert_eq!(engine.dev.log, vec!["@stats_list"]);
    assert_eq!(sync(&mut engine, &e), Outcome::Unchanged);
    assert_eq!(
        engine.dev.log[1], "@stats_list dmstats",
        "later lists filter by program"
    );
}

#[test]
fn growth_keeps_existing_regions() {
    let mut slots = vec![(0, 8)];
    let mut engine = setup(&extents_at(&slots));
    for i in 1..40u64 {
        let before = engine.dev.regions.clone();
        slots.push((i, 8));
        let s = updated(sync(&mut engine, &extents_at(&slots)));
        assert_eq!((s.kept, s.created, s.deleted), (i as usize, 1, 0));
        assert_eq!(
            s.messages, 4,
            "list, create, list to check for a rival, one set_aux"
        );
        // Kept regions are the same regions (same ids, same extents).
        for (id, r) in before {
            assert_eq!(engine.dev.regions[&id].extent(), r.extent());
        }
    }
    assert_eq!(engine.group_id(), 0);
}

#[test]
fn last_extent_grows_in_place() {
    let mut engine = setup(&extents_at(&[(0, 8), (1, 8)]));
    let s = updated(sync(&mut engine, &extents_at(&[(0, 8), (1, 16)])));
    // The grown extent keeps its region (and counters); its new part gets
    // one: list, create, list again, set_aux.
    assert_eq!((s.kept, s.created, s.deleted, s.messages), (2, 1, 0, 4));
}

#[test]
fn growth_past_the_budget_folds_young_tiles() {
    let mut engine = setup(&[ext(0, 8)]);
    engine.set_budget(3);
    // Three growth steps: one tile each, no counter read.
    for n in 2..=4 {
        let s = updated(sync(&mut engine, &[ext(0, 8 * n)]));
        assert_eq!((s.created, s.deleted, s.folded), (1, 0, 0));
    }
    assert!(engine
        .dev
        .log
        .iter()
        .all(|m| !m.starts_with("@stats_print")));
    let before: Vec<u64> = engine.dev.regions.keys().copied().collect();
    assert_eq!(before, [0, 1, 2, 3]);
    // Old tiles were read a lot, the youngest little.
    for (id, reads) in [(0, 900), (1, 800), (2, 700), (3, 5)] {
        engine.dev.reads.insert(id, reads);
    }
    let s = updated(sync(&mut engine, &[ext(0, 40)]));
    // The young tile takes the new part (a new region: created before the
    // old one goes); the others keep id and counters.
    assert_eq!((s.kept, s.created, s.deleted, s.folded), (3, 1, 1, 1));
    let prints = engine
        .dev
        .log
        .iter()
        .filter(|m| m.starts_with("@stats_print"))
        .count();
    assert_eq!(
        prints, 4,
        "one print per kept tile, only when a fold is due"
    );
    let tiles: Vec<(u64, Extent)> = engine
        .dev
        .regions
        .values()
        .map(|r| (r.id, r.extent()))
        .collect();
    assert_eq!(
        tiles,
        [
            (0, ext(0, 8)),
            (1, ext(8, 8)),
            (2, ext(16, 8)),
            (4, ext(24, 16))
        ]
    );
    assert_eq!(engine.dev.reads.get(&0), Some(&900));
}

#[test]
fn a_group_found_over_the_budget_is_kept_until_it_grows() {
    let tiles: Vec<Extent> = (0..6).map(|i| ext(i * 8, 8)).collect();
    let mut dm = FakeDm::new();
    let g = dm.filemap_group(&tiles, "file", Dialect::Bare);
    let mut engine = Engine::new(dm, g);
    engine.set_budget(1);
    assert_eq!(sync(&mut engine, &[ext(0, 48)]), Outcome::Unchanged);
    let s = updated(sync(&mut engine, &[ext(0, 56)]));
    assert_eq!(engine.dev.regions.len(), 2);
    assert!(s.folded >= 4);
}

#[test]
fn shrink_and_truncate_to_one_extent() {
    let slots: Vec<(u64, u64)> = (0..20).map(|i| (i, 8)).collect();
    let mut engine = setup(&extents_at(&slots));
    for n in (1..20).rev() {
        let s = updated(sync(&mut engine, &extents_at(&slots[..n])));
        assert_eq!((s.created, s.deleted), (0, 1));
    }
    assert_eq!(engine.dev.regions.len(), 1);
    // Truncate and rewrite: one extent elsewhere.
    sync(&mut engine, &extents_at(&[(50, 8)]));
    assert_eq!(engine.dev.regions.len(), 1);
}

#[test]
fn rewrite_elsewhere_moves_everything() {
    let mut engine = setup(&extents_at(&[(0, 8), (1, 8), (2, 8)]));
    let new = extents_at(&[(10, 8), (11, 8), (12, 8), (13, 8)]);
    let s = updated(sync(&mut engine, &new));
    assert_eq!((s.kept, s.created, s.deleted), (0, 4, 3));
    // The new regions got ids 3.. since 0..2 were still there.
    assert_eq!(engine.group_id(), 3);
    assert_eq!(engine.dev.regions.len(), 4);
}

#[test]
fn first_extent_freed_moves_the_descriptor() {
    let mut engine = setup(&extents_at(&[(0, 8), (1, 8), (2, 8)]));
    let s = updated(sync(&mut engine, &extents_at(&[(1, 8), (2, 8)])));
    assert_eq!(engine.group_id(), 1);
    assert!(!engine.dev.regions.contains_key(&0));
    assert_eq!(engine.dev.regions[&1].aux_data, "DMS_GROUP=file:1-2#-");
    assert_eq!(
        s.messages, 4,
        "list, set_aux on the new leader, the list of the batch on the old one, delete"
    );
    // The engine follows the group to its new id.
    assert_eq!(
        sync(&mut engine, &extents_at(&[(1, 8), (2, 8)])),
        Outcome::Unchanged
    );
}

#[test]
fn lower_free_id_takes_the_lead() {
    let mut dm = FakeDm::new();
    let foreign = dm.seed(ext(1 << 20, 8), "other", "-");
    let g = dm.filemap_group_with(
        &extents_at(&[(0, 8), (1, 8)]),
        "f",
        Dialect::Bare,
        "note",
        false,
        &[],
    );
    assert_eq!((foreign, g), (0, 1));
    dm.regions.remove(&foreign); // the other program lets id 0 go
    let mut engine = Engine::new(dm, g);
    sync(&mut engine, &extents_at(&[(0, 8), (1, 8), (2, 8)]));
    assert_eq!(engine.group_id(), 0);
    assert_eq!(engine.dev.regions[&0].aux_data, "DMS_GROUP=f:0-2#note");
    assert_eq!(
        engine.dev.regions[&1].aux_data, "note",
        "old leader keeps only the user data"
    );
    // And the next update finds it there.
    assert_eq!(
        sync(&mut engine, &extents_at(&[(0, 8), (1, 8), (2, 8)])),
        Outcome::Unchanged
    );
}

#[test]
fn duplicate_members_are_reduced_to_one() {
    let mut dm = FakeDm::new();
    let e = extents_at(&[(0, 8), (1, 8)]);
    let g = dm.filemap_group(&e, "f", Dialect::Bare);
    let dup = dm.seed(e[1], P, "-");
    let dup2 = dm.seed(e[0], P, "-");
    let leader = dm.regions.get_mut(&g).unwrap();
    leader.aux_data = format!("DMS_GROUP=f:{g},{},{dup},{dup2}#-", g + 1).into();
    let mut engine = Engine::new(dm, g);
    let s = updated(sync(&mut engine, &e));
    assert_eq!((s.kept, s.created, s.deleted), (2, 0, 2));
    assert!(!engine.dev.regions.contains_key(&dup));
}

#[test]
fn missing_member_is_dropped_and_remapped() {
    let e = extents_at(&[(0, 8), (1, 8), (2, 8)]);
    let mut engine = setup(&e);
    engine.dev.regions.remove(&1); // another program deleted it
    let g = engine.load().unwrap().unwrap();
    assert_eq!(g.missing, vec![1]);
    engine.take_warnings();
    let s = updated(sync(&mut engine, &e));
    assert_eq!((s.kept, s.created), (2, 1));
    assert_eq!(engine.dev.regions[&0].aux_data, "DMS_GROUP=file:0-2#-");
    let w = engine.take_warnings();
    assert!(
        matches!(&w[..], [Warning::MembersGone { group: 0, regions }] if regions == &[1]),
        "{w:?}"
    );
}

#[test]
fn member_list_beyond_1k_with_another_group_interleaved() {
    let mut dm = FakeDm::new();
    // Two files growing in turns: their ids interleave.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..300u64 {
        a.push(dm.seed(ext(i * 64, 8), P, "-"));
        b.push(dm.seed(ext(i * 64 + 32, 8), P, "-"));
    }
    let desc = |alias: &str, members: &[u64]| {
        Descriptor {
            alias: alias.into(),
            members: members.to_vec(),
            user: Default::default(),
            dialect: Dialect::Bare,
        }
        .format()
    };
    dm.regions.get_mut(&a[0]).unwrap().aux_data = desc("a", &a);
    dm.regions.get_mut(&b[0]).unwrap().aux_data = desc("b", &b);
    assert!(dm.regions[&0].aux_data.len() > 1024);
    let other = snapshot(&dm, "nobody");
    let other_b: Vec<Region> = b.iter().map(|id| other[id].clone()).collect();
    let mut extents: Vec<Extent> = (0..300u64).map(|i| ext(i * 64, 8)).collect();
    let mut engine = Engine::new(dm, 0);
    for round in 0..5u64 {
        // Free a few extents here and there, add new ones past the end.
        extents.retain(|e| e.start >= 100_000 || (e.start / 64) % 31 != round);
        extents.extend((0..20).map(|i| ext(100_000 + round * 10_000 + i * 16, 8)));
        let out = engine.sync(&extents, &never).unwrap();
        assert!(matches!(out, Outcome::Updated(_)));
        converged(&engine.dev, engine.group_id(), &extents);
        no_orphans(&engine.dev, P, &[engine.group_id(), b[0]]);
        for r in &other_b {
            assert_eq!(
                engine.dev.regions.get(&r.id),
                Some(r),
                "other group touched"
            );
        }
    }
    let (desc_a, _) = group(&engine.dev, engine.group_id());
    assert!(desc_a.members.len() > 300, "{}", desc_a.members.len());
    assert!(engine.dev.regions[&engine.group_id()].aux_data.len() > 1024);
}

#[test]
fn both_dialects_survive_byte_for_byte() {
    for (alias, dialect, user) in [
        ("plain", Dialect::Bare, ""),
        ("with user", Dialect::Bare, "my data"),
        ("a: \"quoted\" alias", Dialect::Quoted, "u s e r\\"),
        ("", Dialect::Quoted, ""),
    ] {
        let mut dm = FakeDm::new();
        let free = dm.seed(ext(1 << 30, 8), "x", "-");
        let g = dm.filemap_group_with(
            &extents_at(&[(0, 8), (1, 8)]),
            alias,
            dialect,
            user,
            false,
            &[],
        );
        dm.regions.remove(&free);
        let mut engine = Engine::new(dm, g);
        for slots in [
            &[(0, 8), (1, 8), (2, 8)][..],
            &[(1, 8), (2, 8)],
            &[(5, 8)],
            &[(5, 8), (6, 8)],
        ] {
            let e = extents_at(slots);
            sync(&mut engine, &e);
            let (d, _) = group(&engine.dev, engine.group_id());
            assert_eq!(
                (
                    d.alias.to_str().unwrap(),
                    d.dialect,
                    d.user.to_str().unwrap()
                ),
                (alias, dialect, user)
            );
            let text = &engine.dev.regions[&engine.group_id()].aux_data;
            let want = Descriptor {
                alias: alias.into(),
                members: d.members.clone(),
                user: user.into(),
                dialect,
            };
            assert_eq!(text, &want.format());
        }
    }
}

#[test]
fn foreign_regions_untouched() {
    let mut dm = FakeDm::new();
    dm.seed(ext(0, 8), "other", "DMS_GROUP=evil:0-100#");
    dm.seed(ext(8, 8), "-", "-");
    dm.insert(Region {
        id: 2,
        start: 16,
        len: 8,
        step: 8,
        program_id: "junk".into(),
        aux_data: ("x".repeat(10 * 1024) + " precise_timestamps histogram:").into(),
        precise: true,
        histogram: vec![1, 2],
    });
    dm.insert(Region {
        id: 3,
        start: 0,
        len: 1,
        step: 1,
        program_id: P.into(),
        aux_data: "DMS_GROUP=fake:3-9#pretends to lead".into(),
        precise: false,
        histogram: vec![],
    });
    let g = dm.filemap_group(&extents_at(&[(0, 8)]), "file", Dialect::Quoted);
    let before = snapshot(&dm, "nobody");
    let foreign: std::collections::BTreeMap<_, _> =
        before.into_iter().filter(|(id, _)| *id != g).collect();
    let mut engine = Engine::new(dm, g);
    let mut rng = Rng(7);
    for _ in 0..50 {
        let e = random_layout(&mut rng, 12);
        engine.sync(&e, &never).unwrap();
        converged(&engine.dev, engine.group_id(), &e);
        untouched(&engine.dev, &foreign);
    }
}

#[test]
fn precise_and_histogram_carried_to_new_regions() {
    let mut dm = FakeDm::new();
    let g = dm.filemap_group_with(
        &extents_at(&[(0, 8)]),
        "f",
        Dialect::Bare,
        "",
        true,
        &[10, 200, 3000],
    );
    let mut engine = Engine::new(dm, g);
    sync(&mut engine, &extents_at(&[(0, 8), (1, 8), (2, 16)]));
    for r in engine.dev.regions.values() {
        assert!(r.precise);
        assert_eq!(r.histogram, vec![10, 200, 3000]);
        assert_eq!(r.program_id, P);
        assert_eq!(r.step, r.len, "one area per region");
    }
}

#[test]
fn random_updates_converge() {
    let mut rng = Rng(0xdead_beef);
    let mut engine = setup(&random_layout(&mut rng, 10));
    let mut total = 0;
    for _ in 0..300 {
        let e = random_layout(&mut rng, 30);
        if let Outcome::Updated(s) = sync(&mut engine, &e) {
            // Two lists, the creates and deletes, a descriptor per step of
            // up to 32 of each, a list of the dropped ones, a strip.
            let steps = s.created.max(s.deleted).div_ceil(32).max(1);
            assert!(
                s.messages <= 2 + s.created + s.deleted + 2 * steps + 1,
                "{s:?}"
            );
            total += s.messages;
        }
    }
    assert!(total > 0);
}

#[test]
fn stop_mid_update_leaves_a_consistent_group() {
    for stop_at in 1..30 {
        let old = extents_at(&(0..10).map(|i| (i, 8)).collect::<Vec<_>>());
        let new = extents_at(&(5..25).map(|i| (i, 8)).collect::<Vec<_>>());
        let mut engine = setup(&old);
        let polls = Cell::new(0);
        let stop = || {
            polls.set(polls.get() + 1);
            polls.get() >= stop_at
        };
        let out = engine.sync(&new, &stop).unwrap();
        assert!(
            matches!(out, Outcome::Interrupted(_) | Outcome::Updated(_)),
            "{out:?}"
        );
        group(&engine.dev, engine.group_id());
        no_orphans(&engine.dev, P, &[engine.group_id()]);
        sync(&mut engine, &new);
    }
}

#[test]
fn remove_deletes_the_group_and_nothing_else() {
    let mut dm = FakeDm::new();
    dm.seed(ext(0, 8), "other", "-");
    let g = dm.filemap_group(&extents_at(&[(0, 8), (1, 8), (2, 8)]), "f", Dialect::Bare);
    let foreign = snapshot(&dm, P);
    let mut engine = Engine::new(dm, g);
    let s = engine.remove().unwrap();
    assert_eq!(s.deleted, 3);
    assert_eq!(
        engine.dev.log.last().unwrap(),
        &format!("@stats_delete {g}"),
        "leader last"
    );
    assert_eq!(engine.dev.regions.len(), 1);
    untouched(&engine.dev, &foreign);
    assert!(engine.load().unwrap().is_none());
    assert!(matches!(
        engine.sync(&extents_at(&[(0, 8)]), &never),
        Err(EngineError::GroupGone(_))
    ));
}

#[test]
fn not_a_group_is_refused_at_start() {
    let mut dm = FakeDm::new();
    let plain = dm.seed(ext(0, 8), P, "-");
    let g = dm.filemap_group(&extents_at(&[(0, 8), (1, 8)]), "f", Dialect::Bare);
    for id in [plain, g + 1, 99] {
        let mut engine = Engine::new(std::mem::take(&mut dm), id);
        let err = engine.load().unwrap_err();
        assert!(matches!(err, EngineError::NotAGroup { .. }), "{err}");
        assert!(err.is_fatal());
        dm = engine.dev;
    }
}

#[test]
fn group_deleted_by_dmstats_is_noticed() {
    let e = extents_at(&[(0, 8), (1, 8)]);
    let mut engine = setup(&e);
    assert!(engine.load().unwrap().is_some());
    engine.dev.regions.clear();
    assert!(engine.load().unwrap().is_none());
    // A region of someone else that later takes the id is not our group.
    engine.dev.seed(ext(0, 8), P, "-");
    assert!(engine.load().unwrap().is_none());
}

#[test]
fn mixed_program_group_is_listed_whole() {
    let mut dm = FakeDm::new();
    let e = extents_at(&[(0, 8), (1, 8)]);
    let g = dm.filemap_group(&e, "f", Dialect::Bare);
    dm.regions.get_mut(&1).unwrap().program_id = "regrouped".into();
    let mut engine = Engine::new(dm, g);
    assert_eq!(sync(&mut engine, &e), Outcome::Unchanged);
    assert_eq!(sync(&mut engine, &e), Outcome::Unchanged);
    assert_eq!(engine.dev.log, vec!["@stats_list", "@stats_list"]);
}

#[test]
fn stop_during_thousands_of_creates_is_prompt() {
    let mut engine = setup(&extents_at(&[(0, 8)]));
    let many: Vec<Extent> = (0..3000).map(|i| ext((1 << 24) + i * 64, 8)).collect();
    let polls = Cell::new(0);
    let stop = || {
        polls.set(polls.get() + 1);
        polls.get() > 100
    };
    let Outcome::Interrupted(s) = engine.sync(&many, &stop).unwrap() else {
        panic!("not interrupted")
    };
    assert_eq!(s.created, 100);
    // list, the creates, a list for a rival; the first step drops the old
    // region (its list, the descriptor, the delete), the next create takes
    // its id and the lead (the descriptor, the strip of the old leader),
    // one more step, and the repair naming the last 4.
    assert_eq!(s.messages, 1 + 100 + 1 + 3 + 2 + 1 + 1);
    // Consistent: the group names the 100 new regions, nothing is outside.
    assert_eq!(group(&engine.dev, engine.group_id()).1.len(), 100);
    no_orphans(&engine.dev, P, &[engine.group_id()]);
    sync(&mut engine, &many);
}

#[test]
fn unreadable_lines_are_warned_about_once() {
    let mut dm = FakeDm::new();
    dm.insert(Region {
        id: 0,
        start: 0,
        len: 8,
        step: 8,
        program_id: "junk".into(),
        aux_data: "a\nb: not a region".into(),
        precise: false,
        histogram: vec![],
    });
    let e = extents_at(&[(1, 8)]);
    let g = dm.filemap_group(&e, "f", Dialect::Bare);
    let mut engine = Engine::new(dm, g);
    engine.load().unwrap().unwrap();
    engine.sync(&e, &never).unwrap();
    engine.sync(&e, &never).unwrap();
    let w = engine.take_warnings();
    assert!(
        matches!(w[..], [Warning::UnreadableLine { line_no: 2, .. }]),
        "{w:?}"
    );
}

/// What each kind of update sends: what its plan needs (a create per new
/// extent, a delete per dropped region), one list to start from, a second
/// one only when regions were created (the look for a rival before the
/// descriptor is overwritten), one descriptor write per step of up to 32
/// created and 32 deleted regions, and one mark per batch of up to 32
/// deleted (the kill-safe order: see `crate::mark`).
#[test]
fn messages_of_each_kind_of_update() {
    let start = extents_at(&[(0, 8), (2, 8), (4, 8), (6, 8)]);
    // (what, new layout, created, deleted, lists, set_aux)
    let cases = [
        (
            "no change",
            extents_at(&[(0, 8), (2, 8), (4, 8), (6, 8)]),
            0,
            0,
            1,
            0,
        ),
        (
            "growth",
            extents_at(&[(0, 8), (2, 8), (4, 8), (6, 8), (8, 8), (10, 8)]),
            2,
            0,
            2,
            1,
        ),
        ("shrink", extents_at(&[(0, 8), (2, 8)]), 0, 2, 1, 2),
        // The leader's extent goes too: deleted first, no extra message.
        (
            "shrink from the front",
            extents_at(&[(4, 8), (6, 8)]),
            0,
            2,
            1,
            2,
        ),
        (
            "move",
            extents_at(&[(0, 8), (2, 8), (20, 8), (22, 8)]),
            2,
            2,
            2,
            2,
        ),
        // One extent over the leader's: the leader lies inside it and is
        // kept (a tile), the rest of the extent gets one new region.
        (
            "all but the leader replaced by one",
            extents_at(&[(0, 64)]),
            1,
            3,
            2,
            2,
        ),
    ];
    for (what, to, created, deleted, lists, set_aux) in cases {
        let mut engine = setup(&start);
        engine.load().unwrap();
        engine.dev.log.clear();
        let s = match sync(&mut engine, &to) {
            Outcome::Unchanged => Default::default(),
            out => updated(out),
        };
        let log = &engine.dev.log;
        let count = |verb: &str| log.iter().filter(|m| m.starts_with(verb)).count();
        assert_eq!(
            (
                count("@stats_create"),
                count("@stats_delete"),
                count("@stats_list"),
                count("@stats_set_aux")
            ),
            (created, deleted, lists, set_aux),
            "{what}: {log:?}"
        );
        assert_eq!(
            log.len(),
            created + deleted + lists + set_aux,
            "{what}: {log:?}"
        );
        if s.messages != 0 {
            assert_eq!(
                (s.lists, s.set_aux, s.messages),
                (lists, set_aux, log.len()),
                "{what}"
            );
        }
    }
}
