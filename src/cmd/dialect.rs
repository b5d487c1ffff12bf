//! Which descriptor dialect this system's dmstats reads back intact, so that
//! `map` writes that one (`--dialect auto`, the default).
//!
//! lvm2 up to 2.03.22 writes and reads `DMS_GROUP=alias:...`; from 2.03.23 on
//! it writes `DMS_GROUP="alias":...` and reads a bare alias as a quoted one,
//! dropping its first and last character. Neither reads the other's form
//! back as written, so the form must follow the reader on this system. The
//! reader is libdevmapper, whose version string (`1.02.185 (2022-05-18)`)
//! sits in the shared object as text; lvm2 2.03.23 came with libdevmapper
//! 1.02.197. No libdevmapper found (an initramfs, a rescue image: no dmstats
//! to read the group) means the quoted form, what every current lvm2 reads.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::dmstats::Dialect;

/// The first libdevmapper 1.02 release whose dmstats writes the quoted form.
pub(crate) const FIRST_QUOTED_LIBDM: u32 = 197;

/// Where distributions put libdevmapper: the library folders and their
/// multiarch subfolders (`x86_64-linux-gnu`, `aarch64-linux-gnu`, ...).
const LIB_DIRS: [&str; 4] = ["/usr/lib", "/lib", "/usr/lib64", "/lib64"];

/// A shared object is read this far at most looking for its version string
/// (libdevmapper is about 400 KiB).
const READ_LIMIT: u64 = 8 << 20;

/// The dialect the libdevmapper installed here reads back intact; quoted
/// when there is none, or when any of those found is a quoted reader.
pub(crate) fn system_dialect() -> Dialect {
    dialect_of(libdm_files().iter().filter_map(|p| read_version(p)))
}

/// Quoted unless at least one version is known and all are bare readers.
pub(crate) fn dialect_of(versions: impl IntoIterator<Item = u32>) -> Dialect {
    let mut any = false;
    for v in versions {
        if v >= FIRST_QUOTED_LIBDM {
            return Dialect::Quoted;
        }
        any = true;
    }
    if any {
        Dialect::Bare
    } else {
        Dialect::Quoted
    }
}

fn libdm_files() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in LIB_DIRS {
        dirs.push(PathBuf::from(dir));
        if let Ok(entries) = fs::read_dir(dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().contains("-linux-"))
                    .map(|e| e.path()),
            );
        }
    }
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        files.extend(
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("libdevmapper.so")
                })
                .map(|e| e.path()),
        );
    }
    files
}

fn read_version(path: &Path) -> Option<u32> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(READ_LIMIT)
        .read_to_end(&mut bytes)
        .ok()?;
    libdm_version(&bytes)
}

/// The release N of the first `1.02.N (` in the bytes: how libdevmapper
/// prints its own version (`dm_get_library_version`), date in brackets.
pub(crate) fn libdm_version(bytes: &[u8]) -> Option<u32> {
    const PREFIX: &[u8] = b"1.02.";
    let mut at = 0;
    while let Some(i) = find(&bytes[at..], PREFIX) {
        let start = at + i + PREFIX.len();
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let rest = &bytes[start + digits..];
        // Not preceded by a digit or a dot (so not "11.02.3" or "0.1.02.3").
        let clean_start = at + i == 0 || !matches!(bytes[at + i - 1], b'0'..=b'9' | b'.');
        if clean_start && (1..=4).contains(&digits) && rest.starts_with(b" (") {
            return std::str::from_utf8(&bytes[start..start + digits])
                .ok()?
                .parse()
                .ok();
        }
        at = start;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_from_the_library_text() {
        let cases: [(&[u8], Option<u32>); 8] = [
            (b"\0\0GLIBC_2.2.5\x001.02.185 (2022-05-18)\0", Some(185)),
            (b"1.02.205 (2025-02-27)", Some(205)),
            (b"x1.02.197 (2023-11-21)", Some(197)),
            // Not a version print: no date, a longer number, a prefix.
            (b"1.02.185\0", None),
            (b"11.02.185 (2022-05-18)", None),
            (b"v0.1.02.185 (2022-05-18)", None),
            (b"1.02. (2022)", None),
            // The first clean one wins.
            (
                b"1.02.9x 1.02.190 (2023-01-01) 1.02.200 (2024-01-01)",
                Some(190),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                libdm_version(bytes),
                want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn the_reader_decides_the_dialect() {
        let cases: [(&[u32], Dialect); 6] = [
            (&[], Dialect::Quoted),
            (&[185], Dialect::Bare),
            (&[196], Dialect::Bare),
            (&[197], Dialect::Quoted),
            (&[205], Dialect::Quoted),
            // Two libraries (a chroot's, an old copy): quoted if any reads it.
            (&[185, 205], Dialect::Quoted),
        ];
        for (versions, want) in cases {
            assert_eq!(dialect_of(versions.iter().copied()), want, "{versions:?}");
        }
    }
}
