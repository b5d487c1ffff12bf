//! The fuzz properties of `stats_list` and `group_descriptor`, run here on
//! deterministic pseudo-random input built from the protocol's own
//! fragments, so that `cargo test` covers the tricky corners every time.

use dmfilemapd::{
    escape, format_members, msg_set_aux, parse_list, parse_members, split_args, Descriptor, Dialect,
};

/// xorshift64*: enough to spread cases, and the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "0",
    "1",
    "7",
    "42",
    "18446744073709551615",
    "18446744073709551616",
    "007",
    ": ",
    ":",
    "+",
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\0",
    "-",
    ",",
    "#",
    "\"",
    "\":",
    "\\",
    "precise_timestamps",
    " precise_timestamps",
    "histogram:",
    " histogram:1,2",
    "histogram:5",
    "DMS_GROUP=",
    "DMS_GROUP=\"",
    "dmstats",
    "à",
    "Р",
    "x",
    "0-3",
    "5-2",
    ",9",
];

fn random_text(rng: &mut Rng, max_fragments: usize) -> String {
    let n = rng.below(max_fragments + 1);
    (0..n)
        .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
        .collect()
}

/// Mostly well-formed lines with random program_id and aux_data.
fn random_reply(rng: &mut Rng) -> String {
    let mut reply = String::new();
    for _ in 0..rng.below(5) {
        if rng.below(4) == 0 {
            reply.push_str(&random_text(rng, 12));
        } else {
            let aux = random_text(rng, 8);
            reply.push_str(&format!(
                "{}: {}+{} {} {} {}",
                rng.below(100),
                rng.below(1 << 20),
                rng.below(1 << 10),
                rng.below(1 << 10),
                random_text(rng, 2),
                aux
            ));
        }
        reply.push('\n');
    }
    reply
}

fn random_aux(rng: &mut Rng) -> String {
    let alias = random_text(rng, 4);
    let members = random_text(rng, 4);
    let user = random_text(rng, 3);
    match rng.below(4) {
        0 => format!("DMS_GROUP={alias}:{members}#{user}"),
        1 => format!("DMS_GROUP=\"{alias}\":{members}#{user}"),
        2 => format!("{}DMS_GROUP={alias}:{}", random_text(rng, 2), rng.below(9)),
        _ => random_text(rng, 12),
    }
}

#[test]
fn every_region_prints_back_to_itself() {
    let mut rng = Rng(0x5eed_0001);
    let mut regions_seen = 0;
    for _ in 0..20_000 {
        let reply = random_reply(&mut rng);
        for region in parse_list(&reply).0 {
            regions_seen += 1;
            let line = region.to_line();
            assert_eq!(
                parse_list(&line),
                (vec![region], vec![]),
                "{line:?} from {reply:?}"
            );
        }
    }
    assert!(
        regions_seen > 10_000,
        "the generator should mostly make regions: {regions_seen}"
    );
}

#[test]
fn every_accepted_descriptor_formats_back_to_itself() {
    let mut rng = Rng(0x5eed_0002);
    let mut accepted = 0;
    for _ in 0..50_000 {
        let aux = random_aux(&mut rng);
        if let Ok(Some(d)) = Descriptor::parse(&aux) {
            accepted += 1;
            let text = d.format();
            assert_eq!(
                Descriptor::parse(&text),
                Ok(Some(d.clone())),
                "{text:?} from {aux:?}"
            );
            assert_eq!(
                parse_members(format_members(&d.members)),
                Ok(d.members.clone())
            );
        }
    }
    assert!(
        accepted > 1_000,
        "the generator should make descriptors: {accepted}"
    );
}

#[test]
fn escaped_arguments_reach_the_kernel_whole() {
    let mut rng = Rng(0x5eed_0003);
    let mut sent = 0;
    for _ in 0..20_000 {
        let aux = random_text(&mut rng, 6);
        match msg_set_aux(9, &aux) {
            Ok(msg) => {
                sent += 1;
                let want = if aux.is_empty() { "-" } else { aux.as_str() };
                assert_eq!(split_args(&msg), ["@stats_set_aux", "9", want], "{msg:?}");
            }
            // Refused only for what cannot be sent.
            Err(_) => assert!(aux.contains(['\0', 'à', 'Р']), "{aux:?}"),
        }
    }
    assert!(sent > 5_000);
    assert!(escape("no\0").is_err());
}

/// Replies as the two lvm2 dialects leave them, through the whole read path.
#[test]
fn lvm2_replies_in_both_dialects() {
    let old = "0: 2048+96 96 dmstats DMS_GROUP=vm.img:0-2#-\n1: 4096+32 32 dmstats -\n\
               2: 8192+64 64 dmstats -\n3: 0+1 1 other DMS_GROUP=not:ours#-\n";
    let new = "0: 0+8 8 dmstats -\n1: 34816+2048 2048 dmstats DMS_GROUP=\"disk: a b\":1-2,4#notes \
               precise_timestamps histogram:1000,10000\n2: 40960+8 8 dmstats - precise_timestamps \
               histogram:1000,10000\n4: 51200+1016 1016 dmstats - precise_timestamps histogram:1000,10000\n";
    let (regions, skipped) = parse_list(old);
    assert!(skipped.is_empty());
    let d = Descriptor::parse(&regions[0].aux_data).unwrap().unwrap();
    assert_eq!(
        (
            d.alias.to_str().unwrap(),
            d.members.as_slice(),
            d.user.to_str().unwrap()
        ),
        ("vm.img", &[0, 1, 2][..], "")
    );
    assert_eq!(d.format(), regions[0].aux_data);
    assert!(Descriptor::parse(&regions[3].aux_data).is_err());

    let (regions, skipped) = parse_list(new);
    assert!(skipped.is_empty());
    let leader = &regions[1];
    assert!(leader.precise);
    assert_eq!(leader.histogram, [1000, 10000]);
    let d = Descriptor::parse(&leader.aux_data).unwrap().unwrap();
    assert_eq!(
        (
            d.alias.to_str().unwrap(),
            d.members.as_slice(),
            d.user.to_str().unwrap()
        ),
        ("disk: a b", &[1, 2, 4][..], "notes")
    );
    assert_eq!(d.format(), leader.aux_data);
    assert_eq!(
        msg_set_aux(1, d.format()).unwrap(),
        "@stats_set_aux 1 DMS_GROUP=\"disk:\\ a\\ b\":1-2,4#notes"
    );
}

/// Replies captured from Debian 12's kernel and dmstats in the VM (kept in
/// `tests/data/stats_list`, which `tests/fuzz.sh` also hands the
/// `stats_list` target as seeds): a dmstats group, a group with a
/// histogram, another program's region with spaces in its aux data, and the
/// same group after its leader was rewritten in lvm2 >= 2.03.23's dialect.
#[test]
fn replies_captured_from_the_kernel() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stats_list/");
    let bare = std::fs::read_to_string(format!("{data}vm-bare")).unwrap();
    let (regions, skipped) = parse_list(&bare);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(regions.len(), 130);
    let leader = Descriptor::parse(&regions[0].aux_data).unwrap().unwrap();
    assert_eq!(leader.alias, "vmimage");
    assert_eq!(leader.members, (0..128).collect::<Vec<u64>>());
    assert_eq!(
        (leader.user.to_str().unwrap(), leader.dialect),
        ("", Dialect::Bare)
    );
    assert_eq!(regions[128].histogram, vec![10, 20, 100]);
    let other = &regions[129];
    assert_eq!(
        (
            other.program_id.to_str().unwrap(),
            other.aux_data.to_str().unwrap()
        ),
        ("otherprog", "my aux data")
    );
    assert_eq!((other.start, other.len, other.step), (0, 2048, 512));

    let quoted = std::fs::read_to_string(format!("{data}vm-quoted")).unwrap();
    let (regions, skipped) = parse_list(&quoted);
    assert!(skipped.is_empty(), "{skipped:?}");
    let leader = Descriptor::parse(&regions[0].aux_data).unwrap().unwrap();
    assert_eq!(leader.alias, "vm image: one");
    assert_eq!(
        (leader.user.to_str().unwrap(), leader.dialect),
        ("user data", Dialect::Quoted)
    );
    assert_eq!(leader.format(), regions[0].aux_data);
    for r in regions.iter().chain(parse_list(&bare).0.iter()) {
        assert_eq!(parse_list(r.to_line()).0, vec![r.clone()]);
    }
}
