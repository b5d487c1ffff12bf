//! The cases of the protocol: list lines, descriptors, messages, prints.

use super::descriptor::*;
use super::list::*;
use super::message::*;
use super::print::*;
use super::text::Text;
use crate::extent::Extent;

fn region(id: RegionId, aux: &str) -> Region {
    Region {
        id,
        start: 2048,
        len: 16,
        step: 16,
        program_id: "dmstats".into(),
        aux_data: aux.into(),
        precise: false,
        histogram: vec![],
    }
}

fn one(line: &str) -> Region {
    let (regions, skipped) = parse_list(line);
    assert!(skipped.is_empty(), "{line:?}: {skipped:?}");
    assert_eq!(regions.len(), 1, "{line:?}");
    regions.into_iter().next().unwrap()
}

/// The fuzz property of `stats_list`, for one reply.
fn assert_round_trip(reply: &str) {
    for r in parse_list(reply).0 {
        let line = r.to_line();
        assert_eq!(parse_list(&line), (vec![r.clone()], vec![]), "{line:?}");
    }
}

#[test]
fn plain_line() {
    let r = one("0: 2048+16 16 dmstats -\n");
    assert_eq!(r, region(0, "-"));
    assert_eq!(r.to_line(), "0: 2048+16 16 dmstats -");
    assert_eq!(
        r.extent(),
        Extent {
            start: 2048,
            len: 16
        }
    );
}

#[test]
fn empty_reply_and_blank_lines() {
    assert_eq!(parse_list(""), (vec![], vec![]));
    assert_eq!(parse_list("\n\n  \n"), (vec![], vec![]));
    let (regions, skipped) = parse_list("0: 0+8 8 p -\n\0garbage\n");
    assert_eq!(regions.len(), 1);
    assert!(skipped.is_empty());
    // Trailing whitespace after the last newline, and a NUL terminator.
    assert_eq!(parse_list("0: 0+8 8 p -\n \0").0.len(), 1);
}

#[test]
fn optional_tokens() {
    let r = one("3: 0+8 8 p - precise_timestamps");
    assert!(r.precise && r.histogram.is_empty() && r.aux_data == "-");
    let r = one("3: 0+8 8 p - histogram:1,20,300");
    assert!(!r.precise && r.histogram == [1, 20, 300] && r.aux_data == "-");
    let r = one("3: 0+8 8 p - precise_timestamps histogram:5");
    assert!(r.precise && r.histogram == [5] && r.aux_data == "-");
    // The kernel prints precise first: in the other order, histogram is not last.
    let r = one("3: 0+8 8 p - histogram:5 precise_timestamps");
    assert!(r.precise && r.histogram.is_empty() && r.aux_data == "- histogram:5");
    for line in [
        "3: 0+8 8 p - precise_timestamps",
        "3: 0+8 8 p - histogram:1,20,300",
        "3: 0+8 8 p - precise_timestamps histogram:5",
    ] {
        assert_eq!(one(line).to_line(), line);
    }
}

#[test]
fn aux_with_spaces_and_descriptors() {
    let bare = "DMS_GROUP=my file:0-3,5#-";
    let quoted = "DMS_GROUP=\"a: b c\":0-3#user text";
    for aux in [bare, quoted] {
        for (suffix, precise, hist) in [
            ("", false, vec![]),
            (" precise_timestamps", true, vec![]),
            (" histogram:10,20", false, vec![10, 20]),
            (" precise_timestamps histogram:7", true, vec![7]),
        ] {
            let line = format!("4: 100+200 200 dmstats {aux}{suffix}");
            let r = one(&line);
            assert_eq!(r.aux_data, aux);
            assert_eq!((r.precise, r.histogram.clone()), (precise, hist));
            assert_eq!(r.to_line(), line);
        }
    }
}

#[test]
fn ambiguous_tails_read_as_the_kernel_prints() {
    // An aux_data that ends like a flag is read as the flag; it prints back the same.
    let r = one("1: 0+8 8 p note precise_timestamps");
    assert_eq!((r.aux_data.to_str().unwrap(), r.precise), ("note", true));
    // A lone token cannot be the flag: the kernel never prints an empty aux_data
    // without the space before it.
    let r = one("1: 0+8 8 p precise_timestamps");
    assert_eq!(
        (r.aux_data.to_str().unwrap(), r.precise),
        ("precise_timestamps", false)
    );
    let r = one("1: 0+8 8 p histogram:1");
    assert_eq!(
        (r.aux_data.to_str().unwrap(), r.histogram.len()),
        ("histogram:1", 0)
    );
    // Bad bounds stay in the aux_data.
    for tail in [
        "histogram:",
        "histogram:1,,2",
        "histogram:+1",
        "histogram:99999999999999999999",
    ] {
        let r = one(&format!("1: 0+8 8 p x {tail}"));
        assert_eq!(r.aux_data, format!("x {tail}"));
        assert!(r.histogram.is_empty());
    }
    for line in [
        "1: 0+8 8 p note precise_timestamps",
        "1: 0+8 8 p x histogram:1,,2 precise_timestamps",
        "1: 0+8 8 p  precise_timestamps",
        "1: 0+8 8 p x  histogram:007",
        "1: 0+8 8 p",
        "1: 0+8 8 ",
        "1: 0+8 8 p -  ",
    ] {
        assert_round_trip(line);
    }
}

#[test]
fn junk_lines_are_skipped_with_line_numbers() {
    let reply = "0: 0+8 8 p -\nhello\n1: x+8 8 p -\n2: 0-8 8 p -\n3: 0+8\n\
                     4: 0+8 +8 p -\n5 : 0+8 8 p -\n-6: 0+8 8 p -\n7: 0+8 8 p -";
    let (regions, skipped) = parse_list(reply);
    assert_eq!(regions.iter().map(|r| r.id).collect::<Vec<_>>(), [0, 7]);
    assert_eq!(
        skipped.iter().map(|s| s.line_no).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6, 7, 8]
    );
    assert!(skipped.iter().all(|s| !s.reason.is_empty()));
}

#[test]
fn overflow_is_skipped() {
    let (regions, skipped) =
        parse_list("18446744073709551616: 0+8 8 p -\n0: 0+18446744073709551616 8 p -");
    assert!(regions.is_empty());
    assert_eq!(skipped.len(), 2);
    assert_eq!(one("18446744073709551615: 0+8 8 p -").id, u64::MAX);
}

#[test]
fn long_lines() {
    let members: Vec<RegionId> = (0..4000).step_by(2).collect();
    let aux = Descriptor {
        alias: "big file".into(),
        members: members.clone(),
        user: "-".repeat(3000).into(),
        dialect: Dialect::Quoted,
    }
    .format();
    assert!(aux.len() > 10 * 1024);
    let mut reply = String::new();
    for id in [0, 2, 4] {
        let r = Region {
            aux_data: if id == 0 { aux.clone() } else { "-".into() },
            ..region(id, "")
        };
        reply.push_str(r.to_line().to_str().unwrap());
        reply.push('\n');
    }
    let (regions, skipped) = parse_list(&reply);
    assert!(skipped.is_empty());
    assert_eq!(regions.len(), 3);
    let d = Descriptor::parse(&regions[0].aux_data).unwrap().unwrap();
    assert_eq!(d.members, members);
    assert_eq!(d.alias, "big file");
    assert_round_trip(&reply);
}

#[test]
fn descriptor_bare() {
    let d = Descriptor::parse("DMS_GROUP=vm.img:0-3,5,7-9#-")
        .unwrap()
        .unwrap();
    assert_eq!(d.alias, "vm.img");
    assert_eq!(d.members, [0, 1, 2, 3, 5, 7, 8, 9]);
    assert_eq!(d.user, "");
    assert_eq!(d.dialect, Dialect::Bare);
    assert_eq!(d.leader(), Some(0));
    assert_eq!(d.format(), "DMS_GROUP=vm.img:0-3,5,7-9#-");
}

#[test]
fn descriptor_quoted() {
    let aux = "DMS_GROUP=\"my: \"odd\" file\":12-13,20#keep me #1";
    let d = Descriptor::parse(aux).unwrap().unwrap();
    assert_eq!(d.alias, "my: \"odd\" file");
    assert_eq!(d.members, [12, 13, 20]);
    assert_eq!(d.user, "keep me #1");
    assert_eq!(d.dialect, Dialect::Quoted);
    assert_eq!(d.format(), aux);
}

#[test]
fn descriptor_without_alias_or_user() {
    let d = Descriptor::parse("DMS_GROUP=:4#-").unwrap().unwrap();
    assert_eq!(
        (d.alias.to_str().unwrap(), d.dialect, d.members.as_slice()),
        ("", Dialect::Bare, &[4][..])
    );
    assert_eq!(d.format(), "DMS_GROUP=:4#-");
    let d = Descriptor::parse("DMS_GROUP=\"\":4").unwrap().unwrap();
    assert_eq!(
        (
            d.alias.to_str().unwrap(),
            d.dialect,
            d.user.to_str().unwrap()
        ),
        ("", Dialect::Quoted, "")
    );
    assert_eq!(d.format(), "DMS_GROUP=\"\":4#-");
    // A bare alias may hold '#' and spaces; only ':' ends it.
    let d = Descriptor::parse("DMS_GROUP=a #b:1-2#x").unwrap().unwrap();
    assert_eq!(
        (d.alias.to_str().unwrap(), d.user.to_str().unwrap()),
        ("a #b", "x")
    );
}

#[test]
fn descriptor_absent_or_elsewhere() {
    assert_eq!(Descriptor::parse("-"), Ok(None));
    assert_eq!(Descriptor::parse(""), Ok(None));
    assert_eq!(Descriptor::parse("dms_group=x:1"), Ok(None));
    // Like libdm: found anywhere, the text before it is not kept.
    let d = Descriptor::parse("junk DMS_GROUP=x:1#-").unwrap().unwrap();
    assert_eq!(d.format(), "DMS_GROUP=x:1#-");
}

#[test]
fn descriptor_errors() {
    use DescriptorError::*;
    let err = |s: &str| Descriptor::parse(s).unwrap_err();
    assert_eq!(err("DMS_GROUP=x"), NoSeparator);
    assert_eq!(err("DMS_GROUP=\"x#-"), NoSeparator);
    // A quote with no `":` after it opens a bare alias (Debian 12's
    // dmstats writes a file named `"x` so), read and written back as is.
    let d = Descriptor::parse("DMS_GROUP=\"x:1#-").unwrap().unwrap();
    assert_eq!((&d.alias, d.dialect), (&Text::from("\"x"), Dialect::Bare));
    assert_eq!(d.format(), "DMS_GROUP=\"x:1#-");
    assert_eq!(err("DMS_GROUP=x:#-"), Empty);
    assert_eq!(err("DMS_GROUP=x:"), Empty);
    assert!(matches!(err("DMS_GROUP=x:1,,2#-"), BadMembers(_)));
    assert!(matches!(err("DMS_GROUP=x:3-1#-"), BadMembers(_)));
    assert!(matches!(err("DMS_GROUP=x: 1#-"), BadMembers(_)));
    assert!(matches!(err("DMS_GROUP=x:1-#-"), BadMembers(_)));
    assert!(matches!(err("DMS_GROUP=x:-1#-"), BadMembers(_)));
    assert!(matches!(err("DMS_GROUP=x:1-2-3#-"), BadMembers(_)));
    assert!(matches!(err("DMS_GROUP=x:+1#-"), BadMembers(_)));
    assert!(matches!(
        err("DMS_GROUP=x:18446744073709551616#-"),
        BadMembers(_)
    ));
    assert_eq!(err("DMS_GROUP=x:0-18446744073709551615#-"), TooManyMembers);
    assert_eq!(err("DMS_GROUP=x:0-1048575,7#-"), TooManyMembers);
    assert_eq!(parse_members("0-1048575").unwrap().len(), MAX_MEMBERS);
}

#[test]
fn members() {
    assert_eq!(format_members(&[]), "");
    assert_eq!(format_members(&[7]), "7");
    assert_eq!(format_members(&[3, 4]), "3-4");
    assert_eq!(format_members(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
    assert_eq!(format_members(&[1, 3, 5]), "1,3,5");
    assert_eq!(
        format_members(&[u64::MAX - 1, u64::MAX]),
        "18446744073709551614-18446744073709551615"
    );
    // Order and overlaps do not matter on input, as for libdm's bitset.
    assert_eq!(parse_members("9,1-3,2,5-5").unwrap(), [1, 2, 3, 5, 9]);
    assert_eq!(
        format_members(&parse_members("9,1-3,2,5-5").unwrap()),
        "1-3,5,9"
    );
}

#[test]
fn descriptor_round_trips() {
    let cases = [
        "DMS_GROUP=vm.img:0-3,5,7-9#-",
        "DMS_GROUP=\"vm img: two\":0#-",
        "DMS_GROUP=\"\":1,3#u",
        "DMS_GROUP=:2-3#-",
        "DMS_GROUP=\"a\"b\":1#-",
        "DMS_GROUP=\"x\":1#\"y\":2",
        "DMS_GROUP=x:5,1#",
        "xx DMS_GROUP=x:1",
        "DMS_GROUP=x:1#-#-",
    ];
    for aux in cases {
        let d = Descriptor::parse(aux).unwrap().unwrap();
        assert_eq!(
            Descriptor::parse(d.format()),
            Ok(Some(d.clone())),
            "{aux:?}"
        );
    }
}

#[test]
fn new_group_descriptors() {
    // Quoted always (NEW_GROUP_DIALECT), read back as written.
    let table: &[(&str, &str)] = &[
        ("vm.img", "DMS_GROUP=\"vm.img\":0-2#-"),
        ("", "DMS_GROUP=\"\":0-2#-"),
        ("a#b", "DMS_GROUP=\"a#b\":0-2#-"),
        ("mid\"quote", "DMS_GROUP=\"mid\"quote\":0-2#-"),
        ("end\"", "DMS_GROUP=\"end\"\":0-2#-"),
        ("ünï©ødé", "DMS_GROUP=\"ünï©ødé\":0-2#-"),
        ("my file", "DMS_GROUP=\"my file\":0-2#-"),
        ("\"q", "DMS_GROUP=\"\"q\":0-2#-"),
        // lvm2's own test names, and what its dmstats (>= 2.03.23) reads.
        ("filenospace", "DMS_GROUP=\"filenospace\":0-2#-"),
        ("File With Spaces", "DMS_GROUP=\"File With Spaces\":0-2#-"),
        ("file\twith\ttabs", "DMS_GROUP=\"file\twith\ttabs\":0-2#-"),
        ("back\\slash", "DMS_GROUP=\"back\\slash\":0-2#-"),
        ("-dash", "DMS_GROUP=\"-dash\":0-2#-"),
        (
            "cr\r vt\x0b ff\x0c",
            "DMS_GROUP=\"cr\r vt\x0b ff\x0c\":0-2#-",
        ),
        ("voilà", "DMS_GROUP=\"voilà\":0-2#-"),
        ("nb\u{a0}sp", "DMS_GROUP=\"nb\u{a0}sp\":0-2#-"),
        ("#hash#", "DMS_GROUP=\"#hash#\":0-2#-"),
        ("space #", "DMS_GROUP=\"space #\":0-2#-"),
    ];
    for &(alias, text) in table {
        let d = Descriptor::for_new_group(alias, vec![0, 1, 2]).unwrap();
        assert_eq!(d.dialect, Dialect::Quoted, "{alias:?}");
        assert_eq!(d.format(), text);
        assert_eq!(Descriptor::parse(text), Ok(Some(d)));
    }
    // Not UTF-8 (a Latin-1 file name), and the longest file name.
    let latin1 = b"caf\xe9 \xa0\xff.img";
    let d = Descriptor::for_new_group(latin1, vec![0]).unwrap();
    assert_eq!(d.format(), b"DMS_GROUP=\"caf\xe9 \xa0\xff.img\":0#-");
    let long = vec![b'x'; 255];
    assert_eq!(
        Descriptor::for_new_group(&long, vec![0]).unwrap().alias,
        long
    );

    let err = |a: &[u8]| Descriptor::for_new_group(a, vec![3]).unwrap_err();
    assert!(matches!(err(b"a\nb"), AliasError::Newline(_)));
    assert!(matches!(err(b"\n"), AliasError::Newline(_)));
    assert!(matches!(err(b"a:b"), AliasError::Colon(_)));
    assert!(matches!(err(b":"), AliasError::Colon(_)));
    assert!(matches!(err(b"x\":y"), AliasError::Colon(_)));
    assert!(matches!(err(b"a# b"), AliasError::SpaceAfterHash(_)));
    assert!(matches!(err(b"#\xff "), AliasError::SpaceAfterHash(_)));
    assert!(matches!(err(&[b'y'; 1025]), AliasError::TooLong(_, 1025)));
    assert!(matches!(err(b"nul\0"), AliasError::Message(_)));
    // One line, escaped, cut after 64 bytes.
    assert_eq!(
        err(b"a\xff\nb").to_string(),
        "alias \"a\\xff\\nb\" holds a newline, which would split the kernel's region list line"
    );
    assert!(err(&[b':'; 100])
        .to_string()
        .contains(&format!("\"{}\"...", ":".repeat(64))));
}

#[test]
fn escaping() {
    assert_eq!(escape("plain").unwrap(), "plain");
    assert_eq!(escape("a b\tc\\d").unwrap(), "a\\ b\\\tc\\\\d");
    assert_eq!(
        escape("l1\nl2\r\x0b\x0c").unwrap(),
        "l1\\\nl2\\\r\\\x0b\\\x0c"
    );
    assert_eq!(escape("").unwrap(), "");
    assert_eq!(escape("\"quotes' stay\"").unwrap(), "\"quotes'\\ stay\"");
    assert_eq!(escape("ünï©ødé").unwrap(), "ünï©ødé");
    assert!(matches!(escape("a\0b"), Err(MessageError::Nul(_))));
    // 'à' is C3 A0 and 'Р' is D0 A0: the kernel would split inside them
    // without the backslash before A0, and stores them whole with it.
    assert_eq!(escape("voilà").unwrap(), b"voil\xc3\\\xa0");
    assert_eq!(escape("Р").unwrap(), b"\xd0\\\xa0");
    // Bytes that are not UTF-8 pass as they are; only spaces are escaped.
    assert_eq!(escape(b"\xff \xa0\x85").unwrap(), b"\xff\\ \\\xa0\x85");
    // Every byte the kernel's ctype table calls a space, and no other.
    for b in 1..=255u8 {
        let spaced = matches!(b, 9..=13 | 32 | 0xa0);
        let want: &[u8] = if spaced || b == b'\\' {
            &[b'\\', b]
        } else {
            &[b]
        };
        assert_eq!(escape([b]).unwrap(), want, "byte {b:#04x}");
    }
}

#[test]
fn split_args_undoes_escape() {
    for arg in [
        "a b",
        "back\\slash",
        "tab\there",
        "trailing\\",
        "\\",
        "  ",
        "x\ny",
        "DMS_GROUP=\"a b\":1#-",
        "voilà",
        "\r\x0b\x0c\u{a0}",
    ] {
        let msg = msg_set_aux(3, arg).unwrap();
        assert_eq!(split_args(&msg), ["@stats_set_aux", "3", arg], "{msg:?}");
    }
    // U+00A0 is C2 A0 in UTF-8: unescaped, the kernel cuts it after C2.
    assert_eq!(split_args("  a\u{a0}b  "), [&b"a\xc2"[..], b"b"]);
    assert_eq!(split_args("x\\"), ["x\\"]);
    assert_eq!(split_args("ab\0 cd"), ["ab"]);
    assert!(split_args(" \t\n").is_empty());
}

#[test]
fn messages() {
    assert_eq!(msg_list(None).unwrap(), "@stats_list");
    assert_eq!(
        msg_list(Some(&b"dmstats"[..])).unwrap(),
        "@stats_list dmstats"
    );
    assert_eq!(
        msg_list(Some(&b"my prog"[..])).unwrap(),
        "@stats_list my\\ prog"
    );
    assert_eq!(msg_list(Some(&b""[..])).unwrap(), "@stats_list -");
    assert_eq!(msg_delete(12), "@stats_delete 12");
    assert_eq!(msg_set_aux(0, "").unwrap(), "@stats_set_aux 0 -");
    assert_eq!(
        msg_set_aux(4, "DMS_GROUP=\"my file\":4-5#-").unwrap(),
        "@stats_set_aux 4 DMS_GROUP=\"my\\ file\":4-5#-"
    );
    // 0xA0 inside a UTF-8 character gets its backslash too.
    assert_eq!(
        msg_set_aux(4, "DMS_GROUP=à:4#-").unwrap(),
        b"@stats_set_aux 4 DMS_GROUP=\xc3\\\xa0:4#-"
    );
}

#[test]
fn create_messages() {
    let e = Extent {
        start: 2048,
        len: 96,
    };
    let mut t = region(0, "DMS_GROUP=x:0#-");
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 dmstats -"
    );
    t.precise = true;
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 1 precise_timestamps dmstats -"
    );
    t.histogram = vec![1000, 2000000];
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 2 precise_timestamps histogram:1000,2000000 dmstats -"
    );
    t.precise = false;
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 1 histogram:1000,2000000 dmstats -"
    );
    t.histogram.clear();
    t.program_id = "my prog".into();
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 my\\ prog -"
    );
    t.program_id = Text::new();
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 - -"
    );
    // All digits would be taken for the option count.
    t.program_id = "42".into();
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        "@stats_create 2048+96 /1 0 42 -"
    );
    assert_eq!(
        msg_create(e, &t, "-x:1").unwrap(),
        "@stats_create 2048+96 /1 0 42 -x:1"
    );
    // Byte 0xA0 inside a character is escaped like a space.
    t.program_id = "Рrog".into();
    assert_eq!(
        msg_create(e, &t, "").unwrap(),
        b"@stats_create 2048+96 /1 \xd0\\\xa0rog -"
    );
}

#[test]
fn create_reply() {
    assert_eq!(parse_create_reply("7"), Some(7));
    assert_eq!(parse_create_reply("7\n"), Some(7));
    assert_eq!(parse_create_reply(" 12 \n\0"), Some(12));
    assert_eq!(parse_create_reply(""), None);
    assert_eq!(parse_create_reply("-1"), None);
    assert_eq!(parse_create_reply("+1"), None);
    assert_eq!(parse_create_reply("1 2"), None);
    assert_eq!(parse_create_reply("x"), None);
}

#[test]
fn lists_round_trip() {
    let replies = [
        "0: 0+8 8 dmstats DMS_GROUP=f:0-2#-\n1: 8+8 8 dmstats -\n2: 24+8 8 dmstats -\n",
        "0: 0+8 8 dmstats DMS_GROUP=\"f g\":0,2#u u precise_timestamps histogram:1,2\n",
        "5: 1+1 1 p a b c d\n6: 1+1 1 p  \n7: 1+1 1 p\n8: 1+1 1  x\n",
        "9: 1+1 1 p x\r\n10: 1+1 1 p \t precise_timestamps\n",
    ];
    for reply in replies {
        let (regions, skipped) = parse_list(reply);
        assert!(skipped.is_empty(), "{reply:?}");
        assert!(!regions.is_empty());
        assert_round_trip(reply);
    }
}

fn counters() -> &'static str {
    " 1 0 8 0 2 0 16 1 0 1 1 0 1"
}

#[test]
fn print_replies() {
    let c = counters();
    let area = |start, len| Area { start, len };
    type Want = Result<Vec<Area>, (usize, &'static str)>;
    let cases: &[(String, Want)] = &[
        (String::new(), Ok(vec![])),
        ("\n".into(), Ok(vec![])),
        (format!("2048+8{c}\n"), Ok(vec![area(2048, 8)])),
        (
            format!("2048+8{c}\n2056+8{c}\n"),
            Ok(vec![area(2048, 8), area(2056, 8)]),
        ),
        // A histogram after the counters; in-flight may dip below zero.
        (format!("0+1{c} 0:3:1\n"), Ok(vec![area(0, 1)])),
        (
            "0+1 1 0 8 0 2 0 16 1 -1 1 1 0 1\n".into(),
            Ok(vec![area(0, 1)]),
        ),
        // The reply is a C string.
        (format!("7+1{c}\n\0junk"), Ok(vec![area(7, 1)])),
        (format!("7+1{c}\r\n"), Ok(vec![area(7, 1)])),
        (format!("7+1{c}"), Ok(vec![area(7, 1)])),
        ("2048+8\n".into(), Err((1, "too few counters"))),
        ("2048+8 1 2 3\n".into(), Err((1, "too few counters"))),
        (format!("2048{c}\n"), Err((1, "no area"))),
        (format!("x+8{c}\n"), Err((1, "bad area"))),
        (format!("+8{c}\n"), Err((1, "bad area"))),
        (format!("1++8{c}\n"), Err((1, "bad area"))),
        (format!("1+8+{c}\n"), Err((1, "bad area"))),
        (format!("1+99999999999999999999{c}\n"), Err((1, "bad area"))),
        (format!("0+8{c}\n0: 0+8 8 dmstats -\n"), Err((2, "no area"))),
    ];
    for (reply, want) in cases {
        let got = parse_print(reply).map_err(|s| (s.line_no, s.reason));
        assert_eq!(&got, want, "{reply:?}");
    }
}

#[test]
fn probes() {
    let c = counters();
    let one = Region {
        id: 4,
        start: 2048,
        len: 16,
        step: 16,
        ..region(4, "-")
    };
    let p = Probe::of(&one);
    assert_eq!(p.msg, "@stats_print 4 0 2");
    let cases = [
        (format!("2048+16{c}\n"), true),
        // Another region took the id: elsewhere, or longer or shorter.
        (format!("4096+16{c}\n"), false),
        (format!("2048+24{c}\n"), false),
        (format!("2048+8{c}\n2056+8{c}\n"), false),
        (String::new(), false),
        ("2048+16\n".into(), false),
    ];
    for (reply, want) in &cases {
        assert_eq!(p.matches(reply.as_bytes()), *want, "{reply:?}");
    }
    // Three areas of 8, the last cut short: asked for from the third.
    let areas = Region {
        len: 20,
        step: 8,
        ..one.clone()
    };
    let p = Probe::of(&areas);
    assert_eq!(p.msg, "@stats_print 4 2 2");
    assert!(p.matches(format!("2064+8{c}\n").as_bytes()));
    assert!(!p.matches(format!("2064+8{c}\n2072+8{c}\n").as_bytes()));
    assert!(!p.matches(b""));
}

#[test]
fn print_sectors() {
    let cases: [(&str, Option<u64>); 6] = [
        ("", Some(0)),
        ("0+8 3 0 24 1 2 0 16 0 0 4 5 1 0\n", Some(40)),
        (
            "0+8 3 0 24 1 2 0 16 0 0 4 5 1 0\n8+8 10 1 80 2 0 0 0 0 0 3 3 2 0\n",
            Some(120),
        ),
        ("0+8 3 0 24\n", None),
        ("0+8 3 0 24 1 2 0\n", None),
        ("garbage 1 2 3 4 5 6 7\n", None),
    ];
    for (reply, want) in cases {
        assert_eq!(parse_print_sectors(reply.as_bytes()), want, "{reply:?}");
    }
}

#[test]
fn lists_and_descriptors_keep_bytes() {
    // As the kernel prints them: raw, not UTF-8, tabs and 0xA0 included.
    let line = b"3: 0+8 8 dmstats DMS_GROUP=\"caf\xe9\tx\xa0y\":3-4#- precise_timestamps";
    let (regions, skipped) = parse_list(&line[..]);
    assert!(skipped.is_empty());
    let r = &regions[0];
    assert!(r.precise);
    assert_eq!(r.aux_data, &b"DMS_GROUP=\"caf\xe9\tx\xa0y\":3-4#-"[..]);
    assert_eq!(r.to_line(), &line[..]);
    let d = Descriptor::parse(&r.aux_data).unwrap().unwrap();
    assert_eq!(d.alias, &b"caf\xe9\tx\xa0y"[..]);
    assert_eq!(d.format(), r.aux_data);
    // Sent back, the tab and 0xA0 are escaped, the rest as it is, and the
    // kernel's split gives the bytes back.
    let msg = msg_set_aux(3, d.format()).unwrap();
    assert_eq!(
        msg,
        &b"@stats_set_aux 3 DMS_GROUP=\"caf\xe9\\\tx\\\xa0y\":3-4#-"[..]
    );
    assert_eq!(split_args(&msg)[2], d.format());
}
