//! Benchmarks, run by hand and reported, never asserted (shared, noisy machines):
//!
//!     cargo test --release --test bench -- --ignored --nocapture
//!
//! Each case runs a few times and prints the best time, so a busy neighbour
//! inflates the numbers less.

use std::time::{Duration, Instant};

use dmfilemapd::testkit::fake::FakeDm;
use dmfilemapd::{diff, Member};
use dmfilemapd::{merge, Extent, RawExtent};
use dmfilemapd::{parse_list, Dialect};
use dmfilemapd::{Engine, Outcome};

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("runs > 0"))
}

/// `n` extents of 8 sectors with a gap of 8 between them: a fragmented file.
fn fragmented(n: u64, offset: u64) -> Vec<Extent> {
    (0..n)
        .map(|i| Extent {
            start: offset + i * 16,
            len: 8,
        })
        .collect()
}

#[test]
#[ignore]
fn bench() {
    println!("\n{:<58} {:>12}", "case", "best time");

    for n in [10_000u64, 100_000] {
        let members: Vec<Member> = fragmented(n, 0)
            .into_iter()
            .enumerate()
            .map(|(i, extent)| Member {
                id: i as u64,
                extent,
            })
            .collect();
        // Half the extents moved: n/2 kept, n/2 created, n/2 deleted.
        let mut extents = fragmented(n / 2, 0);
        extents.extend(fragmented(n / 2, n * 16 + 1));
        let (t, plan) = best(5, || diff(&members, &extents));
        assert_eq!(plan.keep.len() as u64, n / 2);
        println!(
            "{:<58} {:>12?}",
            format!("diff: {n} members vs {n} extents, half moved"),
            t
        );
    }

    let raw: Vec<RawExtent> = (0..1_000_000u64)
        .map(|i| RawExtent {
            logical: i * 4096,
            physical: (i + i / 4) * 4096, // runs of 4 contiguous blocks
            length: 4096,
            flags: 0,
        })
        .collect();
    let (t, merged) = best(5, || merge(&raw));
    println!(
        "{:<58} {:>12?}",
        format!(
            "merge: 1,000,000 FIEMAP records -> {} extents",
            merged.len()
        ),
        t
    );

    let mut dm = FakeDm::new();
    dm.filemap_group(&fragmented(10_000, 0), "bench alias", Dialect::Quoted);
    let reply = dm.list_reply(None);
    let (t, (regions, _)) = best(5, || parse_list(&reply));
    println!(
        "{:<58} {:>12?}",
        format!(
            "parse_list: {} regions, {} KiB reply",
            regions.len(),
            reply.len() / 1024
        ),
        t
    );

    // A whole update on the in-memory kernel: the cost that is ours, and the
    // number of messages (each one an ioctl on the real kernel).
    for (n, moved) in [(1_000u64, 100u64), (10_000, 1_000)] {
        let mut dm = FakeDm::new();
        let id = dm.filemap_group(&fragmented(n, 0), "bench", Dialect::Bare);
        let mut engine = Engine::new(dm, id);
        let mut extents = fragmented(n - moved, 0);
        extents.extend(fragmented(moved, n * 16 + 1));
        let t = Instant::now();
        let outcome = engine.sync(&extents, &|| false).expect("sync");
        let t = t.elapsed();
        let Outcome::Updated(s) = outcome else {
            panic!("expected an update, got {outcome:?}")
        };
        println!(
            "{:<58} {:>12?}",
            format!("sync: {n} regions, {moved} moved: {} messages", s.messages),
            t
        );
        let t = Instant::now();
        let outcome = engine.sync(&extents, &|| false).expect("sync");
        let t = t.elapsed();
        assert_eq!(outcome, Outcome::Unchanged);
        println!(
            "{:<58} {:>12?}",
            format!("sync: {n} regions, nothing changed: 1 message"),
            t
        );
    }
}
