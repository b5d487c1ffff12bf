//! The device-mapper ioctl ABI: a hand-laid `struct dm_ioctl`, and the three
//! commands we need (DM_VERSION, DM_DEV_STATUS, DM_TARGET_MSG) on
//! `/dev/mapper/control`. One of the three modules allowed unchecked code;
//! every such block says why it is sound in a SAFETY comment.
//!
//! Owns: [`Control`], [`DmDevice`], [`DmError`]. Touches: nothing above
//! [`crate::dmstats`]: it knows messages as text, not the engine or the group.
// SAFETY: one of the three modules allowed unsafe code (the DM ioctls on a hand-laid repr(C) buffer);
// each block states its obligations beside it.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::c_void;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{opcode, Ioctl, IoctlOutput, Opcode};

use crate::dmstats::{Device, DeviceError, Text};

#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("cannot open /dev/mapper/control: {0}")]
    Open(#[source] rustix::io::Errno),
    #[error("device-mapper ioctl interface {0}.{1}.{2} is not version 4")]
    Version(u32, u32, u32),
    #[error("{0}:{1} is not an active device-mapper device")]
    NoDevice(u32, u32),
    #[error("{0}")]
    Device(#[from] DeviceError),
    #[error("cannot read /proc/devices: {0}")]
    ProcDevices(#[source] std::io::Error),
    #[error("no device-mapper major in /proc/devices")]
    NoMajor,
}

/// `struct dm_ioctl` from `<linux/dm-ioctl.h>`, the header of every
/// device-mapper ioctl buffer; command data follows at `data_start`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct DmIoctl {
    pub version: [u32; 3],
    pub data_size: u32,
    pub data_start: u32,
    pub target_count: u32,
    pub open_count: i32,
    pub flags: u32,
    pub event_nr: u32,
    pub padding: u32,
    pub dev: u64,
    pub name: [u8; 128],
    pub uuid: [u8; 129],
    pub data: [u8; 7],
}

/// `struct dm_target_msg` without its flexible `message[]`, which follows it
/// NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct DmTargetMsg {
    pub sector: u64,
}

const DM_IOCTL: u8 = 0xfd;
pub(crate) const DM_VERSION: Opcode = opcode::read_write::<DmIoctl>(DM_IOCTL, 0);
pub(crate) const DM_DEV_STATUS: Opcode = opcode::read_write::<DmIoctl>(DM_IOCTL, 7);
pub(crate) const DM_TARGET_MSG: Opcode = opcode::read_write::<DmIoctl>(DM_IOCTL, 14);

/// Obsolete but still set by libdm on every command; sent for parity.
pub(crate) const DM_EXISTS_FLAG: u32 = 1 << 2;
/// The device is named by `dev`.
pub(crate) const DM_PERSISTENT_DEV_FLAG: u32 = 1 << 3;
pub(crate) const DM_BUFFER_FULL_FLAG: u32 = 1 << 8;
pub(crate) const DM_DATA_OUT_FLAG: u32 = 1 << 16;

/// The interface versions libdm sends: 4.0.0 for most commands, but 4.2.0
/// for DM_TARGET_MSG, which appeared in 4.2.
const V4_0: [u32; 3] = [4, 0, 0];
const V4_2: [u32; 3] = [4, 2, 0];

const HEAD: usize = size_of::<DmIoctl>();
/// Where command data starts: right after the header, 8-aligned as the
/// kernel places its replies.
const DATA_START: usize = HEAD.next_multiple_of(8);
/// Where a message's text starts, after its `dm_target_msg`.
const MSG_AT: usize = DATA_START + size_of::<DmTargetMsg>();
/// libdm's first buffer size; most replies fit.
pub(crate) const BUFFER_MIN: usize = 16 << 10;
/// A message's first buffer size, below libdm's: the kernel copies the
/// whole of `data_size` in (and allocates it) on every call, and an idle
/// daemon's messages are probes whose reply is one line. Larger replies
/// grow the buffer by doubling, once: the size that fit is remembered per
/// verb.
pub(crate) const MESSAGE_MIN: usize = 2 << 10;
/// Past this a reply is refused rather than grown without bound.
pub(crate) const BUFFER_MAX: usize = 64 << 20;

/// A device-mapper command on a byte buffer whose length the ioctl number
/// does not tell (the kernel reads `data_size` from the header instead).
struct Command<'a> {
    opcode: Opcode,
    buf: &'a mut [u8],
}

// SAFETY: `as_ptr` hands out the buffer of a live `&mut`; callers check
// that the header's `data_size`, all the kernel touches, fits in it.
unsafe impl Ioctl for Command<'_> {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.buf.as_mut_ptr().cast()
    }

    // SAFETY: nothing is read through the pointer; the reply stays in `buf`.
    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut c_void) -> rustix::io::Result<()> {
        Ok(())
    }
}

/// The kernel's `huge_encode_dev`, which DM_DEV_STATUS and DM_TARGET_MSG
/// decode; it differs from glibc's `st_dev` layout for majors >= 4096.
pub(crate) fn encode_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// What DM_DEV_STATUS tells about a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    pub name: String,
    pub uuid: String,
    pub open_count: i32,
    pub target_count: u32,
}

/// An open `/dev/mapper/control` and the ioctl buffer reused across calls.
pub struct Control {
    fd: OwnedFd,
    buf: RefCell<Buffer>,
}

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    /// Per message verb, the size that fit the last reply: a large
    /// `@stats_list` reply need not be regrown by doubling every second, while
    /// small messages keep the cheap 16 KiB (the kernel copies all of
    /// `data_size` in, so an oversized buffer costs on every call).
    hints: Vec<(String, usize)>,
}

/// One ioctl on a buffer: the kernel, or a stand-in in the tests.
type Call<'a> = dyn FnMut(Opcode, &mut [u8]) -> Result<(), Errno> + 'a;

impl Control {
    /// Open `/dev/mapper/control` and check the interface is version 4.
    pub fn open() -> Result<Control, DmError> {
        let fd = rustix::fs::open(
            "/dev/mapper/control",
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(DmError::Open)?;
        let control = Control {
            fd,
            buf: RefCell::default(),
        };
        let [major, minor, patch] = control.version()?;
        if major != 4 {
            return Err(DmError::Version(major, minor, patch));
        }
        Ok(control)
    }

    /// The kernel's device-mapper interface version.
    pub fn version(&self) -> Result<[u32; 3], DmError> {
        let mut buf = self.buf.borrow_mut();
        let head = buf.run(&mut self.ioctl(), DM_VERSION, None, BUFFER_MIN, None)?;
        Ok(head.version)
    }

    /// DM_DEV_STATUS on the device with this `st_dev`.
    pub fn dev_status(&self, dev: u64) -> Result<DevInfo, DmError> {
        let mut buf = self.buf.borrow_mut();
        buf.dev_status(&mut self.ioctl(), dev)
    }

    /// DM_TARGET_MSG (sector 0) to the device with this `st_dev`; the reply
    /// text, empty when the kernel sends none.
    pub fn message(&self, dev: u64, msg: &[u8]) -> Result<Text, DeviceError> {
        let mut buf = self.buf.borrow_mut();
        buf.message(&mut self.ioctl(), dev, msg)
    }

    fn ioctl(&self) -> impl FnMut(Opcode, &mut [u8]) -> Result<(), Errno> + '_ {
        |opcode, buf| {
            // The kernel trusts `data_size`: never let it exceed the buffer.
            if buf.len() < HEAD || get_head(buf).data_size as usize > buf.len() {
                return Err(Errno::INVAL);
            }
            // SAFETY: the opcode is a dm command, which takes a `struct
            // dm_ioctl` header and reads and writes at most `data_size`
            // bytes, checked above to lie inside the borrowed buffer.
            unsafe { rustix::ioctl::ioctl(&self.fd, Command { opcode, buf }) }
        }
    }
}

impl Buffer {
    fn dev_status(&mut self, call: &mut Call, dev: u64) -> Result<DevInfo, DmError> {
        let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
        let head = match self.run(call, DM_DEV_STATUS, Some(dev), BUFFER_MIN, None) {
            // The kernel's answer for a dev_t that names no dm device.
            Err(DeviceError::Os(Errno::NXIO | Errno::NODEV)) => {
                return Err(DmError::NoDevice(major, minor))
            }
            r => r?,
        };
        Ok(DevInfo {
            name: c_string(&head.name),
            uuid: c_string(&head.uuid),
            open_count: head.open_count,
            target_count: head.target_count,
        })
    }

    fn message(&mut self, call: &mut Call, dev: u64, msg: &[u8]) -> Result<Text, DeviceError> {
        if msg.contains(&0) {
            return Err(DeviceError::Os(Errno::INVAL));
        }
        let verb = msg.split(|&b| b == b' ').next().unwrap_or_default();
        let verb = &*String::from_utf8_lossy(verb);
        let hint = self
            .hints
            .iter()
            .find(|(v, _)| v == verb)
            .map_or(0, |h| h.1);
        let mut size = fit(MESSAGE_MIN, hint.max(MSG_AT + msg.len() + 1));
        loop {
            if size > BUFFER_MAX {
                return Err(DeviceError::ReplyTooLarge(BUFFER_MAX));
            }
            let head = self.run(call, DM_TARGET_MSG, Some(dev), size, Some(msg))?;
            if head.flags & DM_BUFFER_FULL_FLAG != 0 {
                size *= 2;
                continue;
            }
            let reply = reply(&self.bytes, &head)?;
            // Headroom so a list that grows by a few regions still fits.
            let used = DATA_START + reply.len() + 1;
            let used = fit(MESSAGE_MIN, used + used / 4);
            if let Some(h) = self.hints.iter_mut().find(|(v, _)| v == verb) {
                h.1 = used;
            } else if used > MESSAGE_MIN && self.hints.len() < 8 {
                self.hints.push((verb.to_owned(), used));
            }
            return Ok(reply);
        }
    }

    /// One ioctl with a fresh header in a buffer of `size` bytes, set as
    /// libdm sets it: its interface version for the command, the device
    /// named by `dev` alone, and for a message the `dm_target_msg` (sector
    /// 0: dm-stats takes its messages at the start of the device) and the
    /// text at `data_start`.
    fn run(
        &mut self,
        call: &mut Call,
        opcode: Opcode,
        dev: Option<u64>,
        size: usize,
        msg: Option<&[u8]>,
    ) -> Result<DmIoctl, DeviceError> {
        let data_size = u32::try_from(size).map_err(|_| Errno::TOOBIG)?;
        let mut head = DmIoctl {
            version: if opcode == DM_TARGET_MSG { V4_2 } else { V4_0 },
            data_size,
            data_start: DATA_START as u32,
            flags: DM_EXISTS_FLAG,
            ..DmIoctl::zeroed()
        };
        if let Some(dev) = dev {
            head.flags |= DM_PERSISTENT_DEV_FLAG;
            head.dev = encode_dev(rustix::fs::major(dev), rustix::fs::minor(dev));
        }
        self.bytes.clear();
        self.bytes.resize(size, 0);
        put_head(&mut self.bytes, &head);
        if let Some(text) = msg {
            self.bytes[MSG_AT..MSG_AT + text.len()].copy_from_slice(text);
        }
        call(opcode, &mut self.bytes)?;
        Ok(get_head(&self.bytes))
    }
}

/// The smallest size `min` doubled (as libdm doubles) holding `n` bytes.
fn fit(min: usize, n: usize) -> usize {
    let mut size = min;
    while size < n && size <= BUFFER_MAX {
        size *= 2;
    }
    size
}

impl DmIoctl {
    const fn zeroed() -> DmIoctl {
        DmIoctl {
            version: [0; 3],
            data_size: 0,
            data_start: 0,
            target_count: 0,
            open_count: 0,
            flags: 0,
            event_nr: 0,
            padding: 0,
            dev: 0,
            name: [0; 128],
            uuid: [0; 129],
            data: [0; 7],
        }
    }
}

fn put_head(bytes: &mut [u8], head: &DmIoctl) {
    assert!(bytes.len() >= HEAD);
    // SAFETY: the buffer holds at least HEAD bytes (asserted above) and the
    // write is unaligned, so any byte buffer will do.
    unsafe { bytes.as_mut_ptr().cast::<DmIoctl>().write_unaligned(*head) }
}

fn get_head(bytes: &[u8]) -> DmIoctl {
    assert!(bytes.len() >= HEAD);
    // SAFETY: the buffer holds at least HEAD bytes (asserted above), the read
    // is unaligned, and every bit pattern is a valid DmIoctl (integers and
    // byte arrays only).
    unsafe { bytes.as_ptr().cast::<DmIoctl>().read_unaligned() }
}

/// The message reply: the NUL-terminated text at `data_start`, checked
/// against the buffer the kernel wrote. Bytes as the kernel wrote them: aux
/// data need not be UTF-8, and a lossy read would write U+FFFD back.
fn reply(bytes: &[u8], head: &DmIoctl) -> Result<Text, DeviceError> {
    if head.flags & DM_DATA_OUT_FLAG == 0 {
        return Ok(Text::new());
    }
    let (start, end) = (head.data_start as usize, head.data_size as usize);
    let text = bytes
        .get(start..end)
        .filter(|_| start >= HEAD)
        .ok_or(Errno::PROTO)?;
    let len = text.iter().position(|&b| b == 0).ok_or(Errno::PROTO)?;
    Ok(text[..len].into())
}

fn c_string(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

/// A dm device addressed by `st_dev`, as the engine sees it.
pub(crate) struct DmDevice {
    pub control: Control,
    pub dev: u64,
}

impl Device for DmDevice {
    fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError> {
        self.control.message(self.dev, msg)
    }
}

/// The block major of device-mapper, from `/proc/devices`.
pub(crate) fn dm_major() -> Result<u32, DmError> {
    let text = std::fs::read_to_string("/proc/devices").map_err(DmError::ProcDevices)?;
    parse_dm_major(&text).ok_or(DmError::NoMajor)
}

/// Find `device-mapper` among the block devices of a `/proc/devices` text
/// (character devices come first and may reuse the numbers).
pub(crate) fn parse_dm_major(text: &str) -> Option<u32> {
    text.lines()
        .skip_while(|line| line.trim() != "Block devices:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [major, "device-mapper"] => major.parse().ok(),
                _ => None,
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    // The layout and the ioctl numbers are checked at compile time, so that
    // building the tests for a target proves them there: riscv64 and
    // powerpc64le, which CI compiles but cannot run (docs/architectures.md).
    const _: () = {
        assert!(size_of::<DmIoctl>() == 312);
        assert!(align_of::<DmIoctl>() == 8);
        assert!(offset_of!(DmIoctl, version) == 0);
        assert!(offset_of!(DmIoctl, data_size) == 12);
        assert!(offset_of!(DmIoctl, data_start) == 16);
        assert!(offset_of!(DmIoctl, target_count) == 20);
        assert!(offset_of!(DmIoctl, open_count) == 24);
        assert!(offset_of!(DmIoctl, flags) == 28);
        assert!(offset_of!(DmIoctl, event_nr) == 32);
        assert!(offset_of!(DmIoctl, padding) == 36);
        assert!(offset_of!(DmIoctl, dev) == 40);
        assert!(offset_of!(DmIoctl, name) == 48);
        assert!(offset_of!(DmIoctl, uuid) == 176);
        assert!(offset_of!(DmIoctl, data) == 305);
        assert!(DATA_START == 312);
        assert!(size_of::<DmTargetMsg>() == 8);
        assert!(offset_of!(DmTargetMsg, sector) == 0);
    };

    // The numbers as the kernel writes them for _IOWR(0xfd, nr, struct
    // dm_ioctl): read|write 3 (6 on powerpc, whose direction field is one
    // bit wider and starts a bit lower: the same top bits), size 0x138.
    const _: () = {
        assert!(DM_VERSION as u64 == 0xC138_FD00);
        assert!(DM_DEV_STATUS as u64 == 0xC138_FD07);
        assert!(DM_TARGET_MSG as u64 == 0xC138_FD0E);
    };

    /// The kernel's own numbers, from its headers via linux-raw-sys (per
    /// architecture). Each encodes `size_of::<struct dm_ioctl>()` too, so
    /// they check the hand-laid struct's size; linux-raw-sys 0.12 carries
    /// neither the struct nor the `DM_*_FLAG` values, which stay checked by
    /// hand above.
    const _: () = {
        use linux_raw_sys::ioctl as k;
        assert!(DM_VERSION as u64 == k::DM_VERSION as u64);
        assert!(DM_DEV_STATUS as u64 == k::DM_DEV_STATUS as u64);
        assert!(DM_TARGET_MSG as u64 == k::DM_TARGET_MSG as u64);
    };

    #[test]
    fn dev_encoding() {
        assert_eq!(encode_dev(253, 0), 0xfd00);
        assert_eq!(encode_dev(253, 3), 0xfd03);
        // Minors past 255 move up past the major, as huge_encode_dev does.
        assert_eq!(encode_dev(253, 0x1234), 0x0120_0000 | 0xfd34);
        assert_eq!(encode_dev(4095, 0xfffff), 0xfff0_0000 | 0xfffff);
        for (major, minor) in [(7, 0), (253, 1), (253, 300), (259, 1 << 19)] {
            let st_dev = rustix::fs::makedev(major, minor);
            assert_eq!(
                encode_dev(rustix::fs::major(st_dev), rustix::fs::minor(st_dev)),
                st_dev
            );
        }
    }

    #[test]
    fn header_round_trip() {
        let mut bytes = vec![0xaa; DATA_START];
        let head = DmIoctl {
            version: V4_2,
            data_size: 16384,
            data_start: 312,
            flags: DM_EXISTS_FLAG | DM_PERSISTENT_DEV_FLAG,
            dev: 0xfd07,
            ..DmIoctl::zeroed()
        };
        put_head(&mut bytes, &head);
        assert_eq!(&bytes[0..4], &4u32.to_ne_bytes());
        assert_eq!(&bytes[4..8], &2u32.to_ne_bytes());
        assert_eq!(&bytes[12..16], &16384u32.to_ne_bytes());
        assert_eq!(&bytes[16..20], &312u32.to_ne_bytes());
        assert_eq!(&bytes[28..32], &12u32.to_ne_bytes());
        assert_eq!(&bytes[40..48], &0xfd07u64.to_ne_bytes());
        assert!(bytes[48..312].iter().all(|&b| b == 0));
        let back = get_head(&bytes);
        assert_eq!((back.version, back.dev, back.flags), (V4_2, 0xfd07, 12));
    }

    fn replied(flags: u32, data_start: u32, data_size: u32, body: &[u8]) -> (Vec<u8>, DmIoctl) {
        let mut bytes = vec![0; 1024];
        bytes[DATA_START..DATA_START + body.len()].copy_from_slice(body);
        let head = DmIoctl {
            flags,
            data_start,
            data_size,
            ..DmIoctl::zeroed()
        };
        put_head(&mut bytes, &head);
        (bytes, head)
    }

    #[test]
    fn reply_text() {
        let (b, h) = replied(DM_DATA_OUT_FLAG, 312, 332, b"0: 0+8 8 dmstats -\n\0");
        assert_eq!(reply(&b, &h).unwrap(), "0: 0+8 8 dmstats -\n");
        let (b, h) = replied(DM_DATA_OUT_FLAG, 312, 313, b"\0");
        assert_eq!(reply(&b, &h).unwrap(), "");
        let (b, h) = replied(0, 312, 320, b"junk\0");
        assert_eq!(reply(&b, &h).unwrap(), "");
        // No NUL inside data_size, data_start inside the header, data_size past the buffer.
        let (b, h) = replied(DM_DATA_OUT_FLAG, 312, 316, b"12345\0");
        assert_eq!(reply(&b, &h), Err(DeviceError::Os(Errno::PROTO)));
        let (b, h) = replied(DM_DATA_OUT_FLAG, 100, 320, b"1\0");
        assert_eq!(reply(&b, &h), Err(DeviceError::Os(Errno::PROTO)));
        let (b, h) = replied(DM_DATA_OUT_FLAG, 312, 4096, b"1");
        assert_eq!(reply(&b, &h), Err(DeviceError::Os(Errno::PROTO)));
    }

    #[test]
    fn buffer_sizes() {
        assert_eq!(fit(MESSAGE_MIN, 0), MESSAGE_MIN);
        assert_eq!(fit(MESSAGE_MIN, MESSAGE_MIN), MESSAGE_MIN);
        assert_eq!(fit(MESSAGE_MIN, MESSAGE_MIN + 1), 2 * MESSAGE_MIN);
        assert_eq!(fit(BUFFER_MIN, 1), BUFFER_MIN);
        assert_eq!(fit(MESSAGE_MIN, 1 << 20), 1 << 20);
        assert!(fit(MESSAGE_MIN, usize::MAX) > BUFFER_MAX);
    }

    #[test]
    fn proc_devices() {
        let debian = "Character devices:\n  1 mem\n  4 /dev/vc/0\n253 device-mapper-ish\n\n\
                      Block devices:\n  7 loop\n  8 sd\n  9 md\n253 device-mapper\n254 mdp\n259 blkext\n";
        assert_eq!(parse_dm_major(debian), Some(253));
        let cases: &[(&str, Option<u32>)] = &[
            ("", None),
            ("Block devices:\n  7 loop\n254 virtblk\n", None),
            // Only the block section counts.
            (
                "Character devices:\n 10 device-mapper\n\nBlock devices:\n  7 loop\n",
                None,
            ),
            ("Block devices:\n252 device-mapper\n", Some(252)),
            ("Block devices:\n  7 loop\n\n300 device-mapper\n", None),
            ("Block devices:\nxyz device-mapper\n", None),
            ("Block devices:\n 99999999999 device-mapper\n", None),
            ("Block devices:\n251 device-mapper extra\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_dm_major(text), *want, "{text:?}");
        }
    }

    /// A stand-in for the kernel's DM_TARGET_MSG: checks the request as the
    /// kernel would, answers with `respond(message)` (None: no reply text),
    /// and records the buffer size of each call.
    struct FakeKernel<F> {
        respond: F,
        sizes: Vec<usize>,
        messages: Vec<String>,
    }

    impl<F: FnMut(&str) -> Result<Option<String>, Errno>> FakeKernel<F> {
        fn new(respond: F) -> Self {
            FakeKernel {
                respond,
                sizes: vec![],
                messages: vec![],
            }
        }

        fn call(&mut self, opcode: Opcode, buf: &mut [u8]) -> Result<(), Errno> {
            let mut head = get_head(buf);
            assert_eq!(opcode, DM_TARGET_MSG);
            assert_eq!(head.version, V4_2);
            assert_eq!(head.flags, DM_EXISTS_FLAG | DM_PERSISTENT_DEV_FLAG);
            assert_eq!(head.dev, encode_dev(253, 300));
            assert_eq!(head.data_size as usize, buf.len());
            assert_eq!((head.name[0], head.uuid[0]), (0, 0));
            self.sizes.push(buf.len());
            let start = head.data_start as usize;
            assert_eq!(&buf[start..start + 8], &[0; 8], "sector 0");
            let text = &buf[start + 8..];
            let msg =
                std::str::from_utf8(&text[..text.iter().position(|&b| b == 0).unwrap()]).unwrap();
            self.messages.push(msg.to_owned());
            if let Some(reply) = (self.respond)(msg)? {
                head.flags |= DM_DATA_OUT_FLAG;
                if reply.len() + 1 >= buf.len() - DATA_START {
                    head.flags |= DM_BUFFER_FULL_FLAG;
                } else {
                    buf[DATA_START..DATA_START + reply.len()].copy_from_slice(reply.as_bytes());
                    buf[DATA_START + reply.len()] = 0;
                    head.data_size = (DATA_START + reply.len() + 1) as u32;
                }
            }
            head.data_start = DATA_START as u32;
            put_head(buf, &head);
            Ok(())
        }
    }

    fn send<F: FnMut(&str) -> Result<Option<String>, Errno>>(
        buf: &mut Buffer,
        kernel: &mut FakeKernel<F>,
        msg: &str,
    ) -> Result<Text, DeviceError> {
        buf.message(
            &mut |op, b| kernel.call(op, b),
            rustix::fs::makedev(253, 300),
            msg.as_bytes(),
        )
    }

    /// The kernel prints aux data as it was stored: the reply comes back
    /// byte for byte, not read as UTF-8 (which would put U+FFFD there).
    #[test]
    fn reply_keeps_bytes() {
        let text = b"0: 0+8 8 dmstats DMS_GROUP=\"caf\xe9\":0#-\n";
        let mut bytes = vec![0; DATA_START + text.len() + 1];
        bytes[DATA_START..DATA_START + text.len()].copy_from_slice(text);
        let head = DmIoctl {
            data_start: DATA_START as u32,
            data_size: bytes.len() as u32,
            flags: DM_DATA_OUT_FLAG,
            ..DmIoctl::zeroed()
        };
        assert_eq!(reply(&bytes, &head).unwrap(), &text[..]);
    }

    #[test]
    fn message_buffer_grows_and_shrinks() {
        let mut kernel = FakeKernel::new(|msg: &str| {
            Ok(Some(match msg {
                "@stats_list dmstats" => "x".repeat(100_000),
                _ => "7".to_owned(),
            }))
        });
        let mut buf = Buffer::default();
        assert_eq!(
            send(&mut buf, &mut kernel, "@stats_create 0+8 /1 dmstats -").unwrap(),
            "7"
        );
        assert_eq!(kernel.sizes, [2 << 10]);
        kernel.sizes.clear();

        // Doubled until the reply fits, as libdm does.
        assert_eq!(
            send(&mut buf, &mut kernel, "@stats_list dmstats")
                .unwrap()
                .len(),
            100_000
        );
        assert_eq!(
            kernel.sizes,
            [
                2 << 10,
                4 << 10,
                8 << 10,
                16 << 10,
                32 << 10,
                64 << 10,
                128 << 10
            ]
        );
        kernel.sizes.clear();
        // The next list starts at the size that fit; other messages stay small.
        send(&mut buf, &mut kernel, "@stats_list dmstats").unwrap();
        send(&mut buf, &mut kernel, "@stats_delete 3").unwrap();
        assert_eq!(kernel.sizes, [128 << 10, 2 << 10]);
        kernel.sizes.clear();

        // A list that shrinks lets the buffer shrink after one call.
        let mut kernel = FakeKernel::new(|msg: &str| {
            Ok(Some(if msg.starts_with("@stats_list") {
                "y".repeat(1000)
            } else {
                String::new()
            }))
        });
        send(&mut buf, &mut kernel, "@stats_list dmstats").unwrap();
        send(&mut buf, &mut kernel, "@stats_list dmstats").unwrap();
        assert_eq!(kernel.sizes, [128 << 10, 2 << 10]);
    }

    #[test]
    fn message_replies_and_errors() {
        let mut buf = Buffer::default();
        let mut kernel = FakeKernel::new(|msg: &str| match msg {
            "@stats_delete 9" => Err(Errno::NOENT),
            "@stats_set_aux 0 x" => Ok(None),
            _ => Ok(Some(String::new())),
        });
        assert_eq!(
            send(&mut buf, &mut kernel, "@stats_set_aux 0 x").unwrap(),
            ""
        );
        assert_eq!(send(&mut buf, &mut kernel, "@stats_delete 1").unwrap(), "");
        assert_eq!(
            send(&mut buf, &mut kernel, "@stats_delete 9"),
            Err(DeviceError::Os(Errno::NOENT))
        );
        // A NUL would cut the message short in the kernel: refused unsent.
        assert_eq!(
            send(&mut buf, &mut kernel, "@stats_delete 1\0 2"),
            Err(DeviceError::Os(Errno::INVAL))
        );
        assert_eq!(kernel.messages.len(), 3);

        // A message longer than the first buffer is sent whole.
        let aux = format!("@stats_set_aux 0 DMS_GROUP=big:{}#-", "1,".repeat(20_000));
        send(&mut buf, &mut kernel, &aux).unwrap();
        assert_eq!(kernel.messages.last().unwrap(), &aux);
        assert_eq!(kernel.sizes.last(), Some(&(64 << 10)));

        // A reply that never fits ends at the cap.
        let mut full = FakeKernel::new(|_: &str| Ok(Some("z".repeat(BUFFER_MAX))));
        assert_eq!(
            send(&mut buf, &mut full, "@stats_list"),
            Err(DeviceError::ReplyTooLarge(BUFFER_MAX))
        );
        assert_eq!(full.sizes.len(), 16); // 2 KiB to 64 MiB
        assert_eq!(full.sizes.last(), Some(&BUFFER_MAX));
    }

    #[test]
    fn dev_status_replies() {
        let mut buf = Buffer::default();
        let mut found = |opcode: Opcode, b: &mut [u8]| {
            let mut head = get_head(b);
            assert_eq!(opcode, DM_DEV_STATUS);
            assert_eq!(head.version, V4_0);
            assert_eq!(head.flags, DM_EXISTS_FLAG | DM_PERSISTENT_DEV_FLAG);
            assert_eq!(head.dev, 0xfd02);
            head.name[..6].copy_from_slice(b"vg-lv\0");
            head.uuid[..7].copy_from_slice(b"LVM-abc");
            head.open_count = 1;
            head.target_count = 1;
            put_head(b, &head);
            Ok(())
        };
        let info = buf
            .dev_status(&mut found, rustix::fs::makedev(253, 2))
            .unwrap();
        assert_eq!(
            info,
            DevInfo {
                name: "vg-lv".into(),
                uuid: "LVM-abc".into(),
                open_count: 1,
                target_count: 1
            }
        );
        let mut absent = |_: Opcode, _: &mut [u8]| Err(Errno::NXIO);
        let err = buf
            .dev_status(&mut absent, rustix::fs::makedev(8, 1))
            .unwrap_err();
        assert!(matches!(err, DmError::NoDevice(8, 1)), "{err}");
        let mut denied = |_: Opcode, _: &mut [u8]| Err(Errno::ACCESS);
        let err = buf
            .dev_status(&mut denied, rustix::fs::makedev(253, 2))
            .unwrap_err();
        assert!(
            matches!(err, DmError::Device(DeviceError::Os(Errno::ACCESS))),
            "{err}"
        );
    }

    /// Runs only where a dm control node exists (the VM); elsewhere it says why.
    #[test]
    fn control_on_this_machine() {
        match Control::open() {
            Ok(control) => {
                assert_eq!(control.version().unwrap()[0], 4);
                // /dev/null (1:3) is no dm device.
                let err = control.dev_status(rustix::fs::makedev(1, 3)).unwrap_err();
                assert!(matches!(err, DmError::NoDevice(1, 3)), "{err}");
            }
            Err(e) => eprintln!("skipped: {e}"),
        }
    }
}
