//! Every alias and file name: the alias oracle (`testkit::check_alias`)
//! over the names the VM scenario `names` maps and over 10,000 generated
//! ones. For each: escaped as we send it, split as the kernel's
//! `dm_split_args` splits it, stored, listed and parsed back, the alias is
//! the same, for us and for each dmstats generation's reader; a refused
//! alias is one no dmstats reads back; and a group each dmstats makes is
//! followed through a growth with its descriptor kept byte for byte.

use dmfilemapd::testkit::{alias, check_alias, Rng};

#[test]
fn the_names_of_lvm2_and_the_vm() {
    let long = [&[b'n'; 251][..], b".img"].concat();
    let names: &[&[u8]] = &[
        b"filenospace",
        b"File With Spaces",
        b"file\twith\ttabs",
        b"back\\slash",
        b"double\"quote",
        b"single'quote",
        b"-leading-dash",
        b"caf\xe9.img",
        "voilà".as_bytes(),
        &long,
        b"#hash#",
        b"a\\ b\\\\\"c",
        b"new\nline",
        b"a:b",
        b"a# b",
        b"",
        b"\"",
        b"\"\"",
        b"cr\r vt\x0b ff\x0c nbsp\xa0",
        b"nul\0",
        // Found by the fuzzer: a descriptor inside the alias; the group
        // dmstats 2.03.31 makes of it has a colon in its user data.
        b"caf\xe9.i\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffi\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffb\xffDMS_GROUP=\"File Wtih Sza\xffWes\":0#-\xff\xff\xff\xff\xffble\"otea\xffck\\\x86\x93\x9e\xff",
    ];
    for name in names {
        check_alias(name);
    }
}

#[test]
fn any_alias_reads_back_or_is_refused() {
    let mut rng = Rng(0x5eed_a11a5);
    for _ in 0..10_000 {
        check_alias(&alias(&mut rng));
    }
}
