//! The bottom of the stack: a device that takes dm-stats messages, and how
//! sending one can fail. [`crate::sys::dm::DmDevice`] is the kernel's,
//! `fake::FakeDm` (feature `testkit`) the tests'; the engine sees only this.
//!
//! Owns: the [`Device`] trait and [`DeviceError`]. Touches: [`Text`] only
//! (every other module may depend on this one).

use super::text::Text;

/// A device-mapper device that takes dm-stats messages.
pub trait Device {
    /// Send one target message (sector 0) and return the reply, empty
    /// when the kernel sends none. Both are bytes: the kernel stores and
    /// prints aux data as it was sent, UTF-8 or not.
    fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    Os(#[from] rustix::io::Errno),
    #[error("reply does not fit in {0} bytes")]
    ReplyTooLarge(usize),
}

/// A borrowed device is a device: `map` drives the engine on its caller's.
impl<D: Device + ?Sized> Device for &mut D {
    fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError> {
        (**self).message(msg)
    }
}
