//! An in-memory dm-stats with the kernel's rules (lowest free id, ENOENT for a
//! missing id, EINVAL for bad syntax) and a fault plan, for tests and fuzzing.

use std::collections::BTreeMap;

use crate::engine::{Device, DeviceError};
use crate::stats::{Region, RegionId};

/// TODO(helper D)
#[derive(Debug, Default)]
pub struct FakeDm {
    pub regions: BTreeMap<RegionId, Region>,
    /// Every message received, in order.
    pub log: Vec<String>,
}

impl Device for FakeDm {
    fn message(&mut self, msg: &str) -> Result<String, DeviceError> {
        let _ = msg;
        todo!()
    }
}
