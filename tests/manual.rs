//! The manual and the binary agree: every sub-command and option that
//! `--help` shows is in the SYNOPSIS of man/dmfilemapd.8, under the same
//! sub-command, and the other way round. The man page is read by users as
//! the reference, so a new option that is not in it (or an old one left
//! there) fails here rather than in a user's hands.
//!
//! Both sides are read from their sources: the help from the built binary
//! (what users see), the synopsis from the mdoc source (no mandoc needed).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Sub-command ("" for the positional form) -> its options.
type Forms = BTreeMap<String, BTreeSet<String>>;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dmfilemapd"))
        .args(args)
        .output()
        .expect("run the built binary");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Text with every `backquoted` span removed: the help quotes other
/// programs' command lines (`dmstats create --filemap`), whose options are
/// not ours.
fn unquoted(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The options (`-h`, `--follow`) a piece of help text names.
fn options_in(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| c.is_whitespace() || "[]|,()".contains(c))
        .filter(|w| {
            let name = w.trim_start_matches('-');
            (w.starts_with('-') && !name.is_empty())
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && (w.starts_with("--") || name.len() == 1)
        })
        .map(str::to_owned)
}

/// The help's forms: a block starts at a line that begins with the
/// program's name (after `usage: ` for the first); its sub-command is the
/// word after the name when that word is not an argument (`<fd>`); its
/// options are those named anywhere in the block.
fn help_forms(text: &str) -> Forms {
    let mut forms = Forms::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let head = line.strip_prefix("usage: ").unwrap_or(line);
        if let Some(rest) = head.strip_prefix("dmfilemapd ") {
            let word = rest.split_whitespace().next().unwrap_or("");
            let sub = if word.chars().all(|c| c.is_ascii_lowercase()) && !word.is_empty() {
                word
            } else {
                ""
            };
            current = Some(sub.to_owned());
            forms.entry(sub.to_owned()).or_default();
        }
        if let Some(sub) = &current {
            let line = unquoted(line);
            forms
                .entry(sub.clone())
                .or_default()
                .extend(options_in(&line));
        }
    }
    forms
}

/// mdoc's macros that can follow `Fl` on a synopsis line and end its list
/// of flags.
const MACROS: &[&str] = &[
    "Op", "Oo", "Oc", "Ar", "Cm", "Ns", "Nm", "Fl", "Ic", "Pq", "Ql", "Bk", "Ek", "Xo", "Xc",
];

/// The synopsis' forms: each `.Nm` starts one; a `.Cm word` right after it
/// is its sub-command; `Fl a | \-b` names `-a` and `--b` (mdoc puts one
/// hyphen before each argument of `Fl`).
fn manual_forms(page: &str) -> Forms {
    let synopsis: Vec<&str> = page
        .lines()
        .skip_while(|l| l.trim() != ".Sh SYNOPSIS")
        .skip(1)
        .take_while(|l| !l.starts_with(".Sh "))
        .collect();
    assert!(!synopsis.is_empty(), "no SYNOPSIS in the man page");
    let mut forms = Forms::new();
    // The form being read, and whether its `.Nm` line was the last one.
    let mut current: Option<String> = None;
    let mut fresh = false;
    for line in synopsis {
        let Some(request) = line.strip_prefix('.') else {
            continue;
        };
        let words: Vec<&str> = request.split_whitespace().collect();
        match words[..] {
            ["Nm"] => {
                current = Some(String::new());
                fresh = true;
                continue;
            }
            ["Cm", sub] if fresh => {
                current = Some(sub.to_owned());
                forms.entry(sub.to_owned()).or_default();
                fresh = false;
                continue;
            }
            _ => {}
        }
        fresh = false;
        let sub = current.clone().unwrap_or_default();
        let options = forms.entry(sub).or_default();
        let mut in_flags = false;
        for w in words {
            if w == "Fl" {
                in_flags = true;
            } else if MACROS.contains(&w) {
                in_flags = false;
            } else if in_flags && w != "|" {
                options.insert(format!("-{}", w.replace("\\-", "-")));
            }
        }
    }
    forms
}

#[test]
fn help_and_synopsis_name_the_same_commands_and_options() {
    let text = help(&["--help"]);
    // The sub-commands' own help is the same text: checked once.
    for sub in ["map", "unmap"] {
        assert_eq!(help(&[sub, "--help"]), text, "{sub} --help");
    }
    let from_help = help_forms(&text);
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/dmfilemapd.8"))
        .expect("read man/dmfilemapd.8");
    let from_page = manual_forms(&page);

    // Sanity: the readers see what is plainly there.
    assert!(
        from_help.contains_key("map") && from_help.contains_key("unmap"),
        "{from_help:?}"
    );
    assert!(from_help[""].contains("--help"), "{from_help:?}");

    let subs: BTreeSet<&String> = from_help.keys().chain(from_page.keys()).collect();
    let mut wrong = Vec::new();
    for sub in subs {
        let name = if sub.is_empty() { "dmfilemapd" } else { sub };
        let (h, m) = (from_help.get(sub), from_page.get(sub));
        match (h, m) {
            (Some(_), None) => wrong.push(format!(
                "sub-command {name}: in --help, not in the synopsis"
            )),
            (None, Some(_)) => wrong.push(format!(
                "sub-command {name}: in the synopsis, not in --help"
            )),
            (Some(h), Some(m)) => {
                for o in h.difference(m) {
                    wrong.push(format!("{name} {o}: in --help, not in the synopsis"));
                }
                for o in m.difference(h) {
                    wrong.push(format!("{name} {o}: in the synopsis, not in --help"));
                }
            }
            (None, None) => unreachable!(),
        }
    }
    assert!(
        wrong.is_empty(),
        "help and man page disagree:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn readers_read_small_examples() {
    let help = "usage: dmfilemapd <fd> [<x>]\n  -h, --help  help\n\
                dmfilemapd map [--alias NAME] FILE\n  as `dmstats create --filemap` does\n\
                dmfilemapd unmap --group ID FILE\n";
    let forms = help_forms(help);
    assert_eq!(forms[""], ["--help", "-h"].map(String::from).into());
    assert_eq!(forms["map"], ["--alias"].map(String::from).into());
    assert_eq!(forms["unmap"], ["--group"].map(String::from).into());

    let page = ".Sh SYNOPSIS\n.Nm\n.Ar fd\n.Nm\n.Cm map\n.Op Fl \\-alias Ar name\n.Ar file\n\
                .Nm\n.Fl h | \\-help\n.Sh DESCRIPTION\n.Fl \\-other\n";
    let forms = manual_forms(page);
    assert_eq!(forms[""], ["--help", "-h"].map(String::from).into());
    assert_eq!(forms["map"], ["--alias"].map(String::from).into());
    assert_eq!(forms.len(), 2);
}
