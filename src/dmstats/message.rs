//! The messages we send (`@stats_list`, `@stats_create`, `@stats_delete`,
//! `@stats_set_aux`, `@stats_print`) and the short replies they get, with
//! the escaping the kernel's argument splitter needs. Bytes ([`Text`]), so
//! that an alias that is not UTF-8 reaches the kernel as it was given.

use super::list::{join_bounds, number, Region, RegionId, HISTOGRAM, PRECISE};
use super::text::{c_str, excerpt, Text};
use crate::extent::Extent;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A message is a C string: the kernel would end it at the NUL.
    #[error("a dm message cannot carry a NUL byte: {0}")]
    Nul(String),
}

/// The bytes the kernel's `isspace()` accepts, which end a token in
/// `dm_split_args` (drivers/md/dm-table.c): its ctype table (lib/ctype.c)
/// marks `\t \n \v \f \r`, the space, and Latin-1's no-break space 0xA0.
/// 0xA0 is also a continuation byte of UTF-8 (`à` is C3 A0, `Р` D0 A0,
/// many CJK ideographs hold one): unescaped, the kernel would cut such a
/// character in two.
pub(crate) fn kernel_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// Escape one message argument for the kernel's argument splitter.
///
/// `dm_split_args` ends a token at any `kernel_space` byte and takes the
/// byte after a backslash literally, whatever it is (but NUL). So each such
/// byte and each backslash gets a backslash before it, byte by byte: a
/// 0xA0 inside a UTF-8 character too, which the kernel stores whole again.
/// Only NUL, which would end the message, is refused.
pub fn escape(arg: impl AsRef<[u8]>) -> Result<Text, MessageError> {
    let arg = arg.as_ref();
    if arg.contains(&0) {
        return Err(MessageError::Nul(excerpt(arg)));
    }
    let mut out = Vec::with_capacity(arg.len() + 8);
    for &b in arg {
        if b == b'\\' || kernel_space(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    Ok(out.into())
}

/// Split a message as the kernel's `dm_split_args` does: the inverse of
/// [`escape`], for the fake kernel and the tests. The message ends at its
/// first NUL (it is a C string); spaces as [`kernel_space`] says; a
/// backslash takes the next byte literally, and a last lone backslash is
/// kept, as the kernel keeps it.
#[cfg(feature = "testkit")]
pub fn split_args(msg: impl AsRef<[u8]>) -> Vec<Text> {
    let bytes = c_str(msg.as_ref());
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && kernel_space(bytes[i]) {
            i += 1;
        }
        if i == bytes.len() {
            return args;
        }
        let mut token = Vec::new();
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\\' && i + 1 < bytes.len() {
                token.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if kernel_space(b) {
                i += 1;
                break;
            }
            token.push(b);
            i += 1;
        }
        args.push(token.into());
    }
}

/// An argument the kernel takes as given when it is empty: `-`.
fn arg_or_dash(arg: &[u8]) -> Result<Text, MessageError> {
    if arg.is_empty() {
        Ok("-".into())
    } else {
        escape(arg)
    }
}

fn join(parts: &[&[u8]]) -> Text {
    let mut out = Text::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push_str(p);
    }
    out
}

/// `@stats_list [<program_id>]`
///
/// An empty program_id asks for `-`, the program_id the kernel gives a
/// region created without one; sending nothing would list every region.
pub fn msg_list(program_id: Option<&[u8]>) -> Result<Text, MessageError> {
    match program_id {
        Some(p) => Ok(join(&[b"@stats_list", &arg_or_dash(p)?])),
        None => Ok("@stats_list".into()),
    }
}

/// `@stats_create <start>+<len> /1 [<n> precise_timestamps histogram:<b>] <program_id> <aux>`,
/// options and program_id copied from `template` (the group's leader);
/// `aux` unescaped, `-` when empty.
///
/// The kernel reads the argument after the step as the option count when
/// it is all digits, so a numeric program_id gets an explicit count of 0.
pub fn msg_create(
    extent: Extent,
    template: &Region,
    aux: impl AsRef<[u8]>,
) -> Result<Text, MessageError> {
    let program_id = arg_or_dash(&template.program_id)?;
    let mut opts = Vec::new();
    if template.precise {
        opts.push(PRECISE.to_owned());
    }
    if !template.histogram.is_empty() {
        opts.push(format!("{HISTOGRAM}{}", join_bounds(&template.histogram)));
    }
    let mut msg = format!("@stats_create {}+{} /1", extent.start, extent.len);
    if !opts.is_empty() || program_id.iter().all(|b| b.is_ascii_digit()) {
        msg.push_str(&format!(" {}", opts.len()));
        for opt in &opts {
            msg.push(' ');
            msg.push_str(opt);
        }
    }
    Ok(join(&[
        msg.as_bytes(),
        &program_id,
        &arg_or_dash(aux.as_ref())?,
    ]))
}

/// Sectors a `@stats_print` reply counts: sectors read plus sectors
/// written, summed over its areas. Each line is `start+len` then the
/// counters: sectors read third, sectors written seventh (kernel
/// Documentation/admin-guide/device-mapper/statistics.rst). Sectors, not
/// requests: dm-stats counts a request once in every area it touches, so a
/// large tile read by 1 MiB requests would look as cheap to fold as a small
/// one read by 16 KiB requests. `None` for a line that
/// is not shaped so.
pub(crate) fn parse_print_sectors(reply: &[u8]) -> Option<u64> {
    let reply = std::str::from_utf8(c_str(reply)).ok()?;
    let mut total = 0u64;
    for line in reply.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_ascii_whitespace();
        fields.next().filter(|r| r.contains('+'))?;
        let counters: Vec<u64> = fields
            .take(7)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [_, _, read, _, _, _, written] = counters[..] else {
            return None;
        };
        total = total.saturating_add(read).saturating_add(written);
    }
    Some(total)
}

/// `@stats_delete <id>`
pub fn msg_delete(id: RegionId) -> Text {
    format!("@stats_delete {id}").into()
}

/// `@stats_set_aux <id> <aux>`; `aux` unescaped, `-` when empty.
pub fn msg_set_aux(id: RegionId, aux: impl AsRef<[u8]>) -> Result<Text, MessageError> {
    let verb = format!("@stats_set_aux {id}");
    Ok(join(&[verb.as_bytes(), &arg_or_dash(aux.as_ref())?]))
}

/// The region id in an `@stats_create` reply.
pub fn parse_create_reply(reply: impl AsRef<[u8]>) -> Option<RegionId> {
    number(c_str(reply.as_ref()).trim_ascii())
}

/// `@stats_print <id> <first> <count>`: the counters of `count` areas of
/// region `id`, from area `first` (0-based).
pub fn msg_print(id: RegionId, first: u64, count: u64) -> Text {
    format!("@stats_print {id} {first} {count}").into()
}
