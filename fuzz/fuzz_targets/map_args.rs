#![no_main]
//! Arbitrary `map` / `unmap` argument lists (NUL-separated) and bound lists:
//! the parser never panics, and whatever it accepts is something the
//! kernel takes and every reader reads back: bounds strictly increasing and
//! non-zero, short enough for dmstats, sent in one `@stats_create` the fake
//! kernel accepts; an alias that reads back from its descriptor unchanged.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use dmfilemapd::{ Histogram, MAX_HISTOGRAM_ARG};
use dmfilemapd::{parse_args as parse, Command};
use dmfilemapd::Extent;
use dmfilemapd::testkit::fake::{FakeDm, DMSTATS_PROGRAM};
use dmfilemapd::{msg_create, Descriptor, Region};
use libfuzzer_sys::fuzz_target;

fn check_histogram(h: &Histogram) {
    assert!(h.bounds.first().is_none_or(|&b| b > 0));
    assert!(h.bounds.windows(2).all(|w| w[0] < w[1]), "{h:?}");
    assert!(h.to_string().len() <= MAX_HISTOGRAM_ARG);
    let template = Region {
        id: 0,
        start: 0,
        len: 8,
        step: 8,
        program_id: DMSTATS_PROGRAM.into(),
        aux_data: "-".into(),
        precise: h.precise,
        histogram: h.bounds.clone(),
    };
    let msg =
        msg_create(Extent { start: 0, len: 8 }, &template, "").expect("a histogram is plain ASCII");
    let mut dm = FakeDm::new();
    use dmfilemapd::Device;
    dm.message(&msg).expect("the kernel takes what we send");
    let r = &dm.regions[&0];
    assert_eq!((r.precise, &r.histogram), (h.precise, &h.bounds));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // The bound list alone: nanoseconds back to a list that parses the same.
    if let Ok(ns) = dmfilemapd::parse_bounds(&text) {
        let again: Vec<String> = ns.iter().map(|b| format!("{b}ns")).collect();
        assert_eq!(dmfilemapd::parse_bounds(&again.join(",")), Ok(ns.clone()));
        for precise in [false, true] {
            if let Ok(h) = Histogram::new(precise, &ns) {
                assert!(h.precise || !precise);
                check_histogram(&h);
            }
        }
    }

    // A whole command line.
    let mut argv: Vec<OsString> = vec!["dmfilemapd".into()];
    // Arguments are bytes, as the kernel hands them over: not UTF-8 too.
    argv.extend(
        data.split(|&b| b == 0)
            .map(|a| OsString::from_vec(a.to_vec())),
    );
    match parse(argv) {
        Ok(Command::Map(m)) => {
            check_histogram(&m.histogram);
            assert!(!m.file.as_os_str().is_empty());
            assert!(m.verbose <= 3);
            if let Some(alias) = &m.alias {
                let d = Descriptor::for_new_group(alias.as_bytes(), vec![4, 5])
                    .expect("checked by the parser");
                assert_eq!(Descriptor::parse(d.format()), Ok(Some(d.clone())));
                assert_eq!(d.alias, alias.as_bytes());
            }
        }
        Ok(Command::Unmap(u)) => {
            assert!(!u.target.as_os_str().is_empty());
            assert!(u.verbose <= 3);
        }
        Ok(_) => {}
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
});
