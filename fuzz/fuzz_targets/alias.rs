#![no_main]
//! Arbitrary bytes as a group's alias (`map --alias`, or a file name): the
//! alias oracle. Escaped, split by the kernel's `dm_split_args` (the fake),
//! stored, listed and parsed back, an accepted alias comes back byte for
//! byte for us and for each dmstats generation's reader; a refused one is
//! one no dmstats reads back; groups each dmstats makes for it are
//! followed through a growth with their descriptor kept.

use dmfilemapd::testkit::check_alias;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check_alias(data));
