//! Helpers shared by the unit tests, the integration tests and the fuzz
//! targets; not part of the daemon.
//!
//! Feature `testkit` only. Owns: the shared checks and generators. Touches:
//! the daemon's code never.

use std::collections::BTreeMap;

use crate::dmstats::{Descriptor, Region, RegionId};
use crate::extent::{Extent, RawExtent};
use crate::plan::diff::{check_tiling, Member};
use crate::testkit::fake::FakeDm;

/// xorshift: a small deterministic generator, so `cargo test` covers the
/// fuzz properties without the fuzzer and a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An extent, in sectors.
pub fn ext(start: u64, len: u64) -> Extent {
    Extent { start, len }
}

/// A FIEMAP record, fields in `struct fiemap_extent` order.
pub fn rec(logical: u64, physical: u64, length: u64, flags: u32) -> RawExtent {
    RawExtent {
        logical,
        physical,
        length,
        flags,
    }
}

/// The group led by `id`, checked: its descriptor names itself and only
/// regions that exist; no other member holds a descriptor naming itself.
pub fn group(dm: &FakeDm, id: RegionId) -> (Descriptor, Vec<Region>) {
    let leader = dm
        .regions
        .get(&id)
        .unwrap_or_else(|| panic!("leader {id} missing"));
    let desc = Descriptor::parse(&leader.aux_data)
        .unwrap()
        .unwrap_or_else(|| panic!("leader {id} holds no descriptor: {:?}", leader.aux_data));
    assert_eq!(desc.leader(), Some(id), "descriptor not led by its holder");
    let members: Vec<Region> = desc
        .members
        .iter()
        .map(|m| {
            dm.regions
                .get(m)
                .unwrap_or_else(|| panic!("descriptor names missing region {m}"))
                .clone()
        })
        .collect();
    for r in &members[1..] {
        if let Ok(Some(d)) = Descriptor::parse(&r.aux_data) {
            assert_ne!(
                d.leader(),
                Some(r.id),
                "member {} keeps a stale descriptor",
                r.id
            );
        }
    }
    (desc, members)
}

/// Every region of `program` belongs to one of the groups led by `leaders`.
pub fn no_orphans(dm: &FakeDm, program: &str, leaders: &[RegionId]) {
    let mut named = Vec::new();
    for &l in leaders {
        named.extend(group(dm, l).0.members);
    }
    for r in dm.regions.values().filter(|r| r.program_id == program) {
        assert!(
            named.contains(&r.id),
            "region {} of {program} outside every group: {r:?}",
            r.id
        );
    }
}

/// The group's regions tile `extents`: pairwise disjoint, each inside one
/// extent, their union the extents' (the diff has nothing left to do).
pub fn converged(dm: &FakeDm, id: RegionId, extents: &[Extent]) {
    let (_, members) = group(dm, id);
    let members: Vec<Member> = members
        .iter()
        .map(|r| Member {
            id: r.id,
            extent: r.extent(),
        })
        .collect();
    let plan = check_tiling(&members, extents);
    assert!(
        plan.is_noop(),
        "group {id} does not tile the extents {extents:?}: {members:?}"
    );
}

/// Regions of other programs, to compare byte for byte later.
pub fn snapshot(dm: &FakeDm, except: &str) -> BTreeMap<RegionId, Region> {
    dm.regions
        .iter()
        .filter(|(_, r)| r.program_id != except)
        .map(|(&k, v)| (k, v.clone()))
        .collect()
}

pub fn untouched(dm: &FakeDm, before: &BTreeMap<RegionId, Region>) {
    for (id, r) in before {
        assert_eq!(dm.regions.get(id), Some(r), "foreign region {id} changed");
    }
}

/// An alias for the alias oracle: short, mostly the bytes that matter
/// (every byte the kernel splits on, backslash, quote, colon, `#`, `-`,
/// NUL, bytes that are not UTF-8, the tag itself), sometimes a file name's
/// 255 bytes or more than [`crate::dmstats::MAX_ALIAS`].
pub fn alias(rng: &mut Rng) -> Vec<u8> {
    const SPECIAL: &[&[u8]] = &[
        b" ",
        b"\t",
        b"\n",
        b"\x0b",
        b"\x0c",
        b"\r",
        b"\xa0",
        b"\\",
        b"\"",
        b":",
        b"#",
        b"-",
        b"\0",
        b"\xff",
        b"\xc3",
        b"\x80",
        b"\xc3\xa0",
        b"\":",
        b"DMS_GROUP=",
        b"#-",
        b" precise_timestamps",
        b" histogram:1,2",
    ];
    let len = match rng.below(20) {
        0 => 255,
        1 => 1000 + rng.below(100) as usize,
        _ => rng.below(12) as usize,
    };
    let mut out = Vec::new();
    while out.len() < len {
        match rng.below(3) {
            0 => out.extend_from_slice(SPECIAL[rng.below(SPECIAL.len() as u64) as usize]),
            1 => out.push(b'a' + rng.below(26) as u8),
            _ => out.push(rng.below(256) as u8),
        }
    }
    out
}

/// The alias oracle (tests/names.rs, fuzz target `alias`), for any bytes:
///
/// - `map`'s descriptor for it, escaped as we send it, split by the
///   kernel's `dm_split_args` (the fake), stored, listed and parsed back,
///   gives the same alias, byte for byte: when accepted, for us and for
///   dmstats >= 2.03.23 (Debian 13; [`Libdm`]'s model), and for Debian
///   12's dmstats as `"alias"` when it holds no space;
/// - a refusal is one no reader gets past: neither dmstats reads it back
///   (or it is over the length limit, or holds a NUL, which no message
///   carries);
/// - a group each dmstats generation makes for it, where the kernel takes
///   that dmstats' message as one argument, is followed by the daemon's
///   engine through a growth with its descriptor kept byte for byte.
pub fn check_alias(alias: &[u8]) {
    use crate::dmstats::{
        escape, msg_set_aux, parse_list, split_args, AliasError, Device, Dialect, Text, MAX_ALIAS,
        NEW_GROUP_DIALECT, TAG,
    };
    use crate::engine::Engine;
    use crate::plan::group::leading;
    use crate::testkit::libdm::Libdm;

    let accepted = Descriptor::for_new_group(alias, vec![0]);
    let desc = Descriptor {
        alias: alias.into(),
        members: vec![0],
        user: Text::new(),
        dialect: NEW_GROUP_DIALECT,
    };
    let text = desc.format();
    let Ok(msg) = msg_set_aux(0, &text) else {
        assert!(alias.contains(&0), "{alias:?}: only a NUL cannot be sent");
        assert!(matches!(accepted, Err(AliasError::Message(_))));
        return;
    };
    // The escape puts a backslash before exactly the bytes the kernel
    // splits on, and backslashes; the kernel's split takes them away.
    let escaped = escape(&text).unwrap();
    assert_eq!(
        escaped.len(),
        text.len()
            + text
                .iter()
                .filter(|&&b| {
                    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | b'\\')
                })
                .count()
    );
    let want: [Text; 3] = ["@stats_set_aux".into(), "0".into(), text.clone()];
    assert_eq!(split_args(&msg), want, "{msg:?}");

    let mut dm = FakeDm::new();
    dm.seed(Extent { start: 0, len: 8 }, "dmstats", "-");
    dm.message(&msg).expect("the kernel takes what we send");
    let reply = dm.message(b"@stats_list").unwrap();
    let ours = parse_list(&reply)
        .0
        .iter()
        .find(|r| r.id == 0)
        .and_then(leading)
        .map(|d| d.alias);
    let quoted = [&b"\""[..], alias, b"\""].concat();
    let d13 = Libdm::V2_03_31.read_alias(&reply, 0);
    let d12 = Libdm::V2_03_16.read_alias(&reply, 0);
    match &accepted {
        Ok(d) => {
            // `map` makes the group, the daemon follows a growth: the
            // descriptor's alias is the one given, byte for byte.
            let mut dm = FakeDm::new();
            let spec = crate::engine::map::NewGroup {
                alias: alias.into(),
                histogram: Default::default(),
                dialect: NEW_GROUP_DIALECT,
            };
            let first = [Extent { start: 0, len: 8 }];
            let made = crate::engine::map::create_group(&mut dm, &first, &spec, &|| false)
                .unwrap_or_else(|e| panic!("map of {alias:?}: {e}"));
            let mut engine = Engine::new(dm, made.group_id);
            let grown = [first[0], Extent { start: 64, len: 8 }];
            engine.sync(&grown, &|| false).unwrap();
            assert_eq!(group(&engine.dev, made.group_id).0.alias, alias);
            assert_eq!(d, &desc);
            assert_eq!(
                ours.as_ref(),
                Some(&desc.alias),
                "we read {reply:?} otherwise"
            );
            assert_eq!(
                d13.as_deref(),
                Some(alias),
                "dmstats 2.03.31 reads {reply:?} otherwise"
            );
            if !alias.contains(&b' ') {
                assert_eq!(
                    d12,
                    Some(quoted),
                    "dmstats 2.03.16 reads {reply:?} otherwise"
                );
            }
        }
        Err(AliasError::TooLong(_, n)) => assert!(*n > MAX_ALIAS),
        Err(e) => {
            assert_ne!(
                d13.as_deref(),
                Some(alias),
                "{e} but dmstats 2.03.31 reads it"
            );
            assert_ne!(d12, Some(quoted), "{e} but dmstats 2.03.16 reads it");
        }
    }

    for libdm in [Libdm::V2_03_16, Libdm::V2_03_31] {
        let msg = libdm.set_aux(0, alias);
        if split_args(&msg).len() != 3 || alias.contains(&0) {
            // That dmstats cannot make the group: the kernel refuses or
            // splits its message.
            continue;
        }
        let mut dm = FakeDm::new();
        dm.seed(Extent { start: 0, len: 8 }, "dmstats", "-");
        dm.message(&msg).unwrap();
        let before = dm.regions[&0].aux_data.clone();
        if before.contains(b"\n") {
            // The kernel prints it on two lines: no list reads the group.
            continue;
        }
        let Ok(Some(made)) = Descriptor::parse(&before) else {
            // Stored, but no descriptor we read (the kernel ate a
            // backslash into a colon-less text, say): not a group.
            continue;
        };
        if made.leader() != Some(0) {
            continue;
        }
        let mut engine = Engine::new(dm, 0);
        let grown = [Extent { start: 0, len: 8 }, Extent { start: 64, len: 8 }];
        engine
            .sync(&grown, &|| false)
            .unwrap_or_else(|e| panic!("{libdm:?} group of {alias:?}: {e}"));
        let (after, _) = group(&engine.dev, 0);
        assert_eq!(
            (&after.alias, &after.user, after.dialect),
            (&made.alias, &made.user, made.dialect),
            "{libdm:?}: {before:?}"
        );
        assert_eq!(after.members, [0, 1]);
        // The bytes up to the members, tag, quotes and alias, as stored.
        let quotes = if made.dialect == Dialect::Quoted {
            2
        } else {
            0
        };
        let head = &before[..TAG.len() + quotes + made.alias.len()];
        assert!(engine.dev.regions[&0].aux_data.starts_with(head));
    }
}
