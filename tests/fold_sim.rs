//! Simulation of fold policies, run by hand and reported, never asserted:
//!
//!     cargo test --release --test fold_sim -- --ignored --nocapture
//!
//! One extent grows by one part per step; the daemon adds a tile for it and,
//! past the budget, folds (a folded run starts from zero). Then the file is
//! read: `uniform`, the whole file once (the log read back whole after each
//! step); `recent`, the newest 8 parts once (a reader following the tail).
//! Reported: the share of all reads that the group's regions still count
//! at the end.

use dmfilemapd::{choose, Tile};

#[derive(Clone, Copy)]
enum Access {
    Uniform,
    Recent(u64),
}

type Policy = fn(&[Tile], usize) -> Vec<std::ops::Range<usize>>;

/// The cheapest fold now, whatever it costs later.
fn greedy(tiles: &[Tile], excess: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<(usize, usize, Tile)> = tiles
        .iter()
        .enumerate()
        .map(|(i, t)| (i, i + 1, *t))
        .collect();
    for _ in 0..excess {
        let Some(i) = (0..runs.len().saturating_sub(1))
            .filter(|&i| runs[i].2.extent == runs[i + 1].2.extent)
            .min_by_key(|&i| {
                (
                    runs[i].2.counts + runs[i + 1].2.counts,
                    std::cmp::Reverse(i),
                )
            })
        else {
            break;
        };
        let b = runs.remove(i + 1);
        let a = &mut runs[i];
        a.1 = b.1;
        a.2.len += b.2.len;
        a.2.counts = 0;
        a.2.fresh = true;
    }
    runs.into_iter()
        .filter(|r| r.1 - r.0 >= 2)
        .map(|r| r.0..r.1)
        .collect()
}

/// The share of reads still counted after `steps`, and the tiles held.
fn run(policy: Policy, steps: u64, budget: usize, access: Access) -> (f64, usize) {
    let mut tiles: Vec<Tile> = Vec::new();
    let (mut total, mut len) = (0u64, 0u64);
    for _ in 0..steps {
        tiles.push(Tile {
            extent: 0,
            len: 1,
            counts: 0,
            fresh: true,
        });
        len += 1;
        let excess = tiles.len().saturating_sub(1 + budget);
        if excess > 0 {
            let mut folded = Vec::new();
            let mut at = 0;
            for r in policy(&tiles, excess) {
                folded.extend_from_slice(&tiles[at..r.start]);
                let len = tiles[r.clone()].iter().map(|t| t.len).sum();
                folded.push(Tile {
                    extent: 0,
                    len,
                    counts: 0,
                    fresh: true,
                });
                at = r.end;
            }
            folded.extend_from_slice(&tiles[at..]);
            tiles = folded;
        }
        for t in &mut tiles {
            t.fresh = false;
        }
        let from = match access {
            Access::Uniform => 0,
            Access::Recent(n) => len.saturating_sub(n),
        };
        let mut pos = 0;
        for t in &mut tiles {
            let read = (pos + t.len).saturating_sub(from.max(pos)).min(t.len);
            t.counts += read;
            total += read;
            pos += t.len;
        }
    }
    let kept: u64 = tiles.iter().map(|t| t.counts).sum();
    (kept as f64 / total as f64, tiles.len())
}

#[test]
#[ignore]
fn fold_policies() {
    let policies: [(&str, Policy); 2] = [
        ("greedy (cheapest now)", greedy),
        ("rent-or-buy (ours)", choose),
    ];
    let cases = [
        (40, Access::Uniform),
        (100, Access::Uniform),
        (400, Access::Uniform),
        (1600, Access::Uniform),
        (400, Access::Recent(8)),
        (1600, Access::Recent(8)),
    ];
    let label = |a: Access| match a {
        Access::Uniform => "uniform".to_string(),
        Access::Recent(n) => format!("recent {n}"),
    };
    println!("\nreads still counted at the end, budget 64 (65 regions for one extent)");
    print!("{:<24}", "policy");
    for (steps, a) in cases {
        print!(" {:>14}", format!("{steps} {}", label(a)));
    }
    println!();
    for (name, p) in policies {
        print!("{name:<24}");
        for (steps, a) in cases {
            print!(" {:>13.1}%", 100.0 * run(p, steps, 64, a).0);
        }
        println!();
    }
    println!("\nrent-or-buy by budget");
    for budget in [8, 16, 32, 64, 128, 256] {
        print!("{:<24}", format!("budget {budget}"));
        for (steps, a) in cases {
            print!(" {:>13.1}%", 100.0 * run(choose, steps, budget, a).0);
        }
        println!();
    }
}
