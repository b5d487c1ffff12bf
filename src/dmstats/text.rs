//! [`Text`]: what dm-stats keeps and prints for a region (program id, aux
//! data) and what a message carries: C strings, bytes with no encoding.
//!
//! A file name on Linux is any bytes but `/` and NUL, dmstats names a group
//! after its file, and the kernel stores and prints aux data byte for byte.
//! So an alias need not be UTF-8 (`caf\xe9.img` from a Latin-1 system), and
//! a `String` anywhere between the file name and the kernel would either
//! refuse such a name or, read lossily, write back U+FFFD where the bytes
//! were: a group whose alias changes under the daemon. `Text` keeps bytes,
//! reads as text where the protocol is text (numbers, keywords, tags), and
//! prints escaped (`\xNN`, `\t`) for logs and one-line errors.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// Bytes of the dm-stats protocol, not necessarily UTF-8.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Vec<u8>);

impl Text {
    pub const fn new() -> Text {
        Text(Vec::new())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The text when it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// For people: U+FFFD where the bytes are not UTF-8. Never for the kernel.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn push(&mut self, byte: u8) {
        self.0.push(byte);
    }

    pub fn push_str(&mut self, more: impl AsRef<[u8]>) {
        self.0.extend_from_slice(more.as_ref());
    }

    // `str`'s searches, taking text or bytes alike (they shadow the
    // slice methods of the same name, which take one element).

    pub fn find(&self, needle: impl AsRef<[u8]>) -> Option<usize> {
        find(&self.0, needle.as_ref())
    }

    pub fn contains(&self, needle: impl AsRef<[u8]>) -> bool {
        self.find(needle).is_some()
    }

    pub fn starts_with(&self, prefix: impl AsRef<[u8]>) -> bool {
        self.0.starts_with(prefix.as_ref())
    }

    pub fn ends_with(&self, suffix: impl AsRef<[u8]>) -> bool {
        self.0.ends_with(suffix.as_ref())
    }

    pub fn strip_prefix(&self, prefix: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.0.strip_prefix(prefix.as_ref())
    }

    pub fn split_once(&self, sep: impl AsRef<[u8]>) -> Option<(&[u8], &[u8])> {
        split_once(&self.0, sep.as_ref())
    }
}

impl Deref for Text {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.as_bytes().to_vec())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(s.into_bytes())
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Text {
    fn from(s: &[u8]) -> Text {
        Text(s.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Text {
    fn from(s: &[u8; N]) -> Text {
        Text(s.to_vec())
    }
}

impl From<Vec<u8>> for Text {
    fn from(s: Vec<u8>) -> Text {
        Text(s)
    }
}

impl From<&Text> for Text {
    fn from(s: &Text) -> Text {
        s.clone()
    }
}

/// Comparisons with text and bytes, both ways, so tests and callers can
/// write `region.aux_data == "-"`.
macro_rules! eq_bytes {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Text {
            fn eq(&self, other: &$t) -> bool {
                self.0.as_slice() == AsRef::<[u8]>::as_ref(other)
            }
        }
        impl PartialEq<Text> for $t {
            fn eq(&self, other: &Text) -> bool {
                AsRef::<[u8]>::as_ref(self) == other.0.as_slice()
            }
        }
    )*};
}
eq_bytes!(str, &str, String, [u8], &[u8], Vec<u8>);

impl<const N: usize> PartialEq<[u8; N]> for Text {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Text {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

/// Each character as `str`'s `Debug` shows it, each byte that is not UTF-8
/// as `\xNN`; `quoted` adds the quotes and escapes `"`.
fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8], quoted: bool) -> fmt::Result {
    use fmt::Write;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if quoted {
                write!(f, "{}", c.escape_debug())?;
            } else if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        write_escaped(f, &self.0, true)?;
        f.write_str("\"")
    }
}

/// One line for a log or an error: control characters and bytes that are
/// not UTF-8 escaped, the rest as it is.
impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.0, false)
    }
}

/// Where `needle` first occurs in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `str::split_once` for bytes.
pub(crate) fn split_once<'a>(hay: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    find(hay, sep).map(|at| (&hay[..at], &hay[at + sep.len()..]))
}

/// `str::rsplit_once` for one byte.
pub(crate) fn rsplit_once(hay: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = hay.iter().rposition(|&b| b == sep)?;
    Some((&hay[..at], &hay[at + 1..]))
}

/// The bytes before the first NUL: a reply is a C string.
pub(crate) fn c_str(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

/// The start of a long hostile text is enough for a log line: its first
/// 64 bytes, quoted and escaped as [`Text`]'s `Debug` shows them.
pub(super) fn excerpt(s: &[u8]) -> String {
    match s.get(..64).filter(|_| s.len() > 64) {
        Some(head) => format!("{:?}...", Text::from(head)),
        None => format!("{:?}", Text::from(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_bytes_escaped() {
        let t = Text::from(&b"caf\xe9\tok \"q\" \xc3\xa0"[..]);
        assert_eq!(format!("{t:?}"), r#""caf\xe9\tok \"q\" à""#);
        assert_eq!(t.to_string(), r#"caf\xe9\tok "q" à"#);
        assert_eq!(t.to_str(), None);
        assert_eq!(Text::from("plain").to_str(), Some("plain"));
    }

    #[test]
    fn compares_with_text_and_bytes() {
        let t = Text::from("DMS_GROUP=x:0#-");
        assert_eq!(t, "DMS_GROUP=x:0#-");
        assert_eq!("DMS_GROUP=x:0#-", t);
        assert!(t == b"DMS_GROUP=x:0#-" && t == "DMS_GROUP=x:0#-");
        assert_eq!(find(&t, b":0"), Some(11));
        assert_eq!(
            split_once(&t, b"="),
            Some((&b"DMS_GROUP"[..], &b"x:0#-"[..]))
        );
        assert_eq!(rsplit_once(b"a b c", b' '), Some((&b"a b"[..], &b"c"[..])));
        assert_eq!(c_str(b"ab\0cd"), b"ab");
    }
}
