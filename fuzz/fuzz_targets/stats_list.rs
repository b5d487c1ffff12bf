#![no_main]
//! Arbitrary bytes as an `@stats_list` reply: never panics, and every region
//! read prints back to a line that reads as the same region.

use dmfilemapd::{parse_list, Descriptor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (regions, skipped) = parse_list(data);
    assert!(skipped.iter().all(|s| s.line_no >= 1));
    for region in &regions {
        let line = region.to_line();
        let (again, junk) = parse_list(&line);
        assert!(junk.is_empty(), "{line:?} skipped");
        assert_eq!(again.as_slice(), std::slice::from_ref(region), "{line:?}");
        // The leader's aux_data goes to the descriptor parser next.
        let _ = Descriptor::parse(&region.aux_data);
    }
});
