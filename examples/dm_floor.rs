//! The kernel's floor for the benchmark in the VM (tests/vm/bench): what the
//! messages of an update cost when nothing but sending them is done, through
//! this crate's own `dm` module. A separate program, so the daemon's binary
//! carries none of it.
//!
//! usage: dm_floor DEVICE-NODE N [FIRST-SECTOR]
//!
//! Makes N regions of 8 sectors, 16 apart from FIRST-SECTOR (default 0), as a
//! file with every other 4 KiB block punched maps to, of program `floor`;
//! then one `@stats_list floor`, N `@stats_set_aux`, N `@stats_print` of one
//! area (the daemon's once-a-second probe) and N deletes. dm-stats walks
//! every region of the device for a create or a delete, so the benchmark
//! runs this beside the group it compares with. Prints one line:
//!
//! `FLOOR n=N create=T/NS list=T/NS set_aux=T/NS print=T/NS delete=T/NS hwm_kib=K`
//!
//! T: CPU ticks (user + system, /proc/self/stat), NS: nanoseconds on CPU
//! (/proc/self/schedstat), each for the whole phase.

use std::process::ExitCode;

use dmfilemapd::Control;
use dmfilemapd::Extent;
use dmfilemapd::{Region, RegionId};

/// CPU ticks and nanoseconds this process has run so far.
fn cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: fields 14 and 15 are utime, stime.
    let after = stat.rsplit_once(')').map_or("", |p| p.1);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
    let ns = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, ns)
}

fn hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(node), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: dm_floor DEVICE-NODE N [FIRST-SECTOR]");
        return ExitCode::FAILURE;
    };
    let first: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    match run(node, n, first) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dm_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(node: &str, n: u64, first: u64) -> Result<String, Box<dyn std::error::Error>> {
    let dev = rustix::fs::stat(node)?.st_rdev;
    let control = Control::open()?;
    let template = Region {
        id: 0,
        start: 0,
        len: 8,
        step: 8,
        program_id: "floor".into(),
        aux_data: "-".into(),
        precise: false,
        histogram: Vec::new(),
    };
    let mut phases = Vec::new();
    let mut phase = |name: &str, t0: (u64, u64)| {
        let t1 = cpu();
        phases.push(format!("{name}={}/{}", t1.0 - t0.0, t1.1 - t0.1));
    };

    let t0 = cpu();
    let mut ids: Vec<RegionId> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let extent = Extent {
            start: first + 16 * i,
            len: 8,
        };
        let reply = control.message(dev, &dmfilemapd::msg_create(extent, &template, "-")?)?;
        ids.push(dmfilemapd::parse_create_reply(&reply).ok_or("bad create reply")?);
    }
    phase("create", t0);

    let t0 = cpu();
    let listed =
        dmfilemapd::parse_list(&control.message(dev, &dmfilemapd::msg_list(Some(b"floor"))?)?).0;
    phase("list", t0);
    if listed.len() as u64 != n {
        return Err(format!("listed {} regions, made {n}", listed.len()).into());
    }

    let t0 = cpu();
    for &id in &ids {
        control.message(dev, &dmfilemapd::msg_set_aux(id, "floor")?)?;
    }
    phase("set_aux", t0);

    let t0 = cpu();
    for &id in &ids {
        control.message(dev, &dmfilemapd::msg_print(id, 0, 2))?;
    }
    phase("print", t0);

    let t0 = cpu();
    for &id in &ids {
        control.message(dev, &dmfilemapd::msg_delete(id))?;
    }
    phase("delete", t0);

    Ok(format!(
        "FLOOR n={n} {} hwm_kib={}",
        phases.join(" "),
        hwm_kib()
    ))
}
