//! Warnings and errors of the detached daemon at verbose 0, whose stdio is
//! `/dev/null`: one datagram each to the local syslog socket `/dev/log`, as
//! `syslog(3)` sends them: `<PRI>dmfilemapd[PID]: TEXT`, facility daemon.
//! No timestamp: every syslog daemon (busybox syslogd, rsyslog, journald)
//! stamps a message that comes without one, and we need no time zone.
//!
//! Best effort, never a cause to stop or wait: where there is no socket (an
//! initramfs, a rescue shell) nothing is sent; a syslog daemon that does not
//! keep up loses the line rather than blocking the daemon (`MSG_DONTWAIT`).
//! The socket is opened per message: the lines are rare, a restarted syslog
//! daemon is found again, and no descriptor is held between them.

use std::path::Path;

use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

/// Where the local syslog daemon listens.
pub(crate) const SOCKET: &str = "/dev/log";
/// The tag before `[PID]`.
pub(crate) const TAG: &str = "dmfilemapd";
/// `LOG_DAEMON >> 3`: system daemons without a facility of their own.
pub(crate) const FACILITY_DAEMON: u8 = 3;
/// Longest text sent, in bytes (RFC 3164's whole packet is 1 KiB; some
/// syslog daemons cut earlier, none fails on this).
pub(crate) const MAX_TEXT: usize = 1024;

/// The syslog severities the daemon uses (`LOG_ERR`, `LOG_WARNING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Error = 3,
    Warning = 4,
}

/// The datagram for one log line. The text is made one record: control
/// characters (a newline in an error's source) become spaces, trailing
/// blanks go, it is cut at [`MAX_TEXT`] on a character boundary, and a
/// leading `dmfilemapd: ` (how the command line reports errors) is not
/// repeated after the tag.
pub(crate) fn datagram(severity: Severity, pid: u32, text: &str) -> Vec<u8> {
    let pri = FACILITY_DAEMON * 8 + severity as u8;
    let text = text.strip_prefix("dmfilemapd: ").unwrap_or(text).trim_end();
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text: String = text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("<{pri}>{TAG}[{pid}]: {text}").into_bytes()
}

/// Send one line to the system log, if there is one.
pub(crate) fn send(severity: Severity, text: &str) {
    // Whatever fails here has no one to be told to.
    let _ = deliver(
        Path::new(SOCKET),
        &datagram(severity, std::process::id(), text),
    );
}

/// One datagram to the socket at `path`, without waiting: `NOENT` when no
/// syslog daemon made one, `AGAIN` when its queue is full.
pub(crate) fn deliver(path: &Path, datagram: &[u8]) -> Result<(), Errno> {
    let addr = SocketAddrUnix::new(path)?;
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&socket, &addr)?;
    rustix::net::send(&socket, datagram, SendFlags::DONTWAIT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_format() {
        use Severity::{Error, Warning};
        let long = "é".repeat(600); // 1,200 bytes
        let cut = format!("<27>dmfilemapd[9]: {}", "é".repeat(512));
        let cases: &[(Severity, u32, &str, &str)] = &[
            // facility daemon (3): 3 * 8 + 4, 3 * 8 + 3
            (
                Warning,
                42,
                "File gone from its path: exiting.",
                "<28>dmfilemapd[42]: File gone from its path: exiting.",
            ),
            (
                Error,
                7,
                "Update of group 0 failed, retrying: EIO",
                "<27>dmfilemapd[7]: Update of group 0 failed, retrying: EIO",
            ),
            // The program name is the tag already.
            (
                Error,
                7,
                "dmfilemapd: group 3: No such device",
                "<27>dmfilemapd[7]: group 3: No such device",
            ),
            // Only as a prefix, and only once.
            (
                Warning,
                1,
                "dmfilemapd: dmfilemapd: x",
                "<28>dmfilemapd[1]: dmfilemapd: x",
            ),
            (
                Warning,
                1,
                "not dmfilemapd: here",
                "<28>dmfilemapd[1]: not dmfilemapd: here",
            ),
            // One record: no line breaks, no trailing newline.
            (
                Error,
                4294967295,
                "first\nsecond\r\tthird\n",
                "<27>dmfilemapd[4294967295]: first second  third",
            ),
            (Warning, 3, "", "<28>dmfilemapd[3]: "),
            // Non-ASCII text is kept as UTF-8.
            (
                Warning,
                3,
                "path /srv/données",
                "<28>dmfilemapd[3]: path /srv/données",
            ),
            // Cut at 1,024 bytes, never inside a character.
            (Error, 9, &long, &cut),
        ];
        for (severity, pid, text, want) in cases {
            let got = datagram(*severity, *pid, text);
            assert_eq!(
                String::from_utf8_lossy(&got),
                *want,
                "{severity:?} {pid} {text:?}"
            );
        }
    }

    fn temp_socket(name: &str) -> (std::path::PathBuf, rustix::fd::OwnedFd) {
        let path = std::env::temp_dir().join(format!("{name}.{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::bind(&socket, &SocketAddrUnix::new(&path).unwrap()).unwrap();
        (path, socket)
    }

    #[test]
    fn delivers_one_datagram() {
        let (path, socket) = temp_socket("dmfilemapd-syslog-test");
        let sent = datagram(Severity::Warning, 5, "hello");
        deliver(&path, &sent).unwrap();
        let mut buf = [0u8; 256];
        let (n, _) =
            rustix::net::recv(&socket, &mut buf, rustix::net::RecvFlags::DONTWAIT).unwrap();
        assert_eq!(&buf[..n], sent.as_slice());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn no_socket_is_an_error_not_a_failure() {
        let path = Path::new("/nonexistent-dir/log");
        assert_eq!(deliver(path, b"<28>x"), Err(Errno::NOENT));
    }

    #[test]
    fn a_full_queue_does_not_block() {
        let (path, _socket) = temp_socket("dmfilemapd-syslog-full");
        // Nobody reads: the queue fills, and then sends fail at once.
        let line = datagram(Severity::Error, 1, &"x".repeat(MAX_TEXT));
        let full = (0..100_000).find_map(|_| deliver(&path, &line).err());
        assert_eq!(full, Some(Errno::AGAIN));
        std::fs::remove_file(&path).unwrap();
    }
}
