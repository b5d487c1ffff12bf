//! The messages we send (`@stats_list`, `@stats_create`, `@stats_delete`,
//! `@stats_set_aux`, `@stats_print`) and the short replies they get, with
//! the escaping the kernel's argument splitter needs. Pure text.

use super::list::{excerpt, join_bounds, number, Region, RegionId, HISTOGRAM, PRECISE};
use crate::extent::Extent;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("a dm message cannot carry a NUL byte: {0:?}")]
    Nul(String),
    #[error("the kernel would split {0:?} inside a character (byte 0xA0 is a space to it)")]
    Latin1Space(String),
}

/// The bytes the kernel's `isspace()` accepts: C whitespace plus Latin-1
/// no-break space, which its ctype table also marks as a space.
fn kernel_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// Escape one message argument for the kernel's argument splitter.
///
/// The splitter (`dm_split_args`) ends a token at any `isspace()` byte and
/// takes the byte after a backslash literally. So every ASCII space byte and
/// every backslash gets a backslash. Byte 0xA0 only occurs inside multi-byte
/// characters here and cannot be escaped in a `&str`: refused, as is NUL.
pub fn escape(arg: &str) -> Result<String, MessageError> {
    if arg.contains('\0') {
        return Err(MessageError::Nul(excerpt(arg)));
    }
    let mut out = String::with_capacity(arg.len() + 8);
    for c in arg.chars() {
        if c.len_utf8() > 1 {
            let mut buf = [0u8; 4];
            if c.encode_utf8(&mut buf).bytes().any(|b| b == 0xa0) {
                return Err(MessageError::Latin1Space(excerpt(arg)));
            }
        } else if c == '\\' || kernel_space(c as u8) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// Split a message as the kernel's `dm_split_args` does: the inverse of
/// [`escape`], for the fake kernel and the tests. Tokens that are not UTF-8
/// once split (a character cut at byte 0xA0) are read lossily.
#[cfg(feature = "testkit")]
pub fn split_args(msg: &str) -> Vec<String> {
    let bytes = msg.as_bytes();
    let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
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
        args.push(String::from_utf8_lossy(&token).into_owned());
    }
}

/// An argument the kernel takes as given when it is empty: `-`.
fn arg_or_dash(arg: &str) -> Result<String, MessageError> {
    if arg.is_empty() {
        Ok("-".to_owned())
    } else {
        escape(arg)
    }
}

/// `@stats_list [<program_id>]`
///
/// An empty program_id asks for `-`, the program_id the kernel gives a
/// region created without one; sending nothing would list every region.
pub fn msg_list(program_id: Option<&str>) -> Result<String, MessageError> {
    match program_id {
        Some(p) => Ok(format!("@stats_list {}", arg_or_dash(p)?)),
        None => Ok("@stats_list".to_owned()),
    }
}

/// `@stats_create <start>+<len> /1 [<n> precise_timestamps histogram:<b>] <program_id> <aux>`,
/// options and program_id copied from `template` (the group's leader);
/// `aux` unescaped, `-` when empty.
///
/// The kernel reads the argument after the step as the option count when
/// it is all digits, so a numeric program_id gets an explicit count of 0.
pub fn msg_create(extent: Extent, template: &Region, aux: &str) -> Result<String, MessageError> {
    let program_id = arg_or_dash(&template.program_id)?;
    let mut opts = Vec::new();
    if template.precise {
        opts.push(PRECISE.to_owned());
    }
    if !template.histogram.is_empty() {
        opts.push(format!("{HISTOGRAM}{}", join_bounds(&template.histogram)));
    }
    let mut msg = format!("@stats_create {}+{} /1", extent.start, extent.len);
    if !opts.is_empty() || program_id.bytes().all(|b| b.is_ascii_digit()) {
        msg.push_str(&format!(" {}", opts.len()));
        for opt in &opts {
            msg.push(' ');
            msg.push_str(opt);
        }
    }
    msg.push_str(&format!(" {program_id} {}", arg_or_dash(aux)?));
    Ok(msg)
}

/// Sectors a `@stats_print` reply counts: sectors read plus sectors
/// written, summed over its areas. Each line is `start+len` then the
/// counters: sectors read third, sectors written seventh (kernel
/// Documentation/admin-guide/device-mapper/statistics.rst). Sectors, not
/// requests: dm-stats counts a request once in every area it touches, so a
/// large tile read by 1 MiB requests would look as cheap to fold as a small
/// one read by 16 KiB requests. `None` for a line that
/// is not shaped so.
pub(crate) fn parse_print_sectors(reply: &str) -> Option<u64> {
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
pub fn msg_delete(id: RegionId) -> String {
    format!("@stats_delete {id}")
}

/// `@stats_set_aux <id> <aux>`; `aux` unescaped, `-` when empty.
pub fn msg_set_aux(id: RegionId, aux: &str) -> Result<String, MessageError> {
    Ok(format!("@stats_set_aux {id} {}", arg_or_dash(aux)?))
}

/// The region id in an `@stats_create` reply.
pub fn parse_create_reply(reply: &str) -> Option<RegionId> {
    let reply = reply.split('\0').next().unwrap_or("");
    number(reply.trim())
}

/// `@stats_print <id> <first> <count>`: the counters of `count` areas of
/// region `id`, from area `first` (0-based).
pub fn msg_print(id: RegionId, first: u64, count: u64) -> String {
    format!("@stats_print {id} {first} {count}")
}
