//! The device-mapper ioctl ABI: a hand-laid `struct dm_ioctl`, and the three
//! commands we need (DM_VERSION, DM_DEV_STATUS, DM_TARGET_MSG) on
//! `/dev/mapper/control`. One of the two places with `unsafe`.

use crate::engine::{Device, DeviceError};

#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("cannot open /dev/mapper/control: {0}")]
    Open(rustix::io::Errno),
    #[error("device-mapper ioctl interface {0}.{1}.{2} is not version 4")]
    Version(u32, u32, u32),
    #[error("{0}")]
    Device(#[from] DeviceError),
    #[error("cannot read /proc/devices: {0}")]
    ProcDevices(std::io::Error),
    #[error("no device-mapper major in /proc/devices")]
    NoMajor,
}

/// What DM_DEV_STATUS tells about a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    pub name: String,
    pub uuid: String,
    pub open_count: i32,
    pub target_count: u32,
}

/// TODO(helper B)
pub struct Control {
    fd: rustix::fd::OwnedFd,
}

impl Control {
    /// Open `/dev/mapper/control` and check the interface is version 4.
    pub fn open() -> Result<Control, DmError> {
        todo!()
    }

    pub fn version(&self) -> Result<[u32; 3], DmError> {
        let _ = &self.fd;
        todo!()
    }

    /// DM_DEV_STATUS on the device with this `st_dev`.
    pub fn dev_status(&self, dev: u64) -> Result<DevInfo, DmError> {
        let _ = dev;
        todo!()
    }

    /// DM_TARGET_MSG (sector 0) to the device with this `st_dev`.
    pub fn message(&self, dev: u64, msg: &str) -> Result<String, DeviceError> {
        let _ = (dev, msg);
        todo!()
    }
}

/// A dm device addressed by `st_dev`, as the engine sees it.
pub struct DmDevice {
    pub control: Control,
    pub dev: u64,
}

impl Device for DmDevice {
    fn message(&mut self, msg: &str) -> Result<String, DeviceError> {
        self.control.message(self.dev, msg)
    }
}

/// The block major of device-mapper, from `/proc/devices`.
pub fn dm_major() -> Result<u32, DmError> {
    todo!()
}
