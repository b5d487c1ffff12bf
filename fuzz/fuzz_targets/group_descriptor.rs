#![no_main]
//! Arbitrary aux_data (bytes, as the kernel prints them) as a group
//! descriptor: never panics, and whatever is accepted formats back to text
//! that parses to the same descriptor.

use dmfilemapd::{format_members, msg_set_aux, parse_members, split_args, Descriptor, Text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(d)) = Descriptor::parse(data) {
        let text = d.format();
        assert_eq!(Descriptor::parse(&text), Ok(Some(d.clone())), "{text:?}");
        assert_eq!(
            parse_members(&format_members(&d.members)).as_ref(),
            Ok(&d.members)
        );
        // What we would send reaches the kernel as one argument, unchanged.
        if let Ok(msg) = msg_set_aux(d.members[0], &text) {
            let want: [Text; 3] = [
                "@stats_set_aux".into(),
                d.members[0].to_string().into(),
                text,
            ];
            assert_eq!(split_args(&msg), want);
        }
    }
});
