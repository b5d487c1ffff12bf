//! Apply: carry a [`Plan`](crate::diff::Plan) out on a device, in an order
//! that keeps the group whole whichever step fails. The device is a trait so
//! tests run the engine against [`crate::fake::FakeDm`].

use crate::extent::Extent;
use crate::stats::{Descriptor, Region, RegionId};

/// A device-mapper device that takes dm-stats messages.
pub trait Device {
    /// Send one target message (sector 0) and return the reply text,
    /// empty when the kernel sends none.
    fn message(&mut self, msg: &str) -> Result<String, DeviceError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    Os(#[from] rustix::io::Errno),
    #[error("reply does not fit in {0} bytes")]
    ReplyTooLarge(usize),
}

/// The group as read from one `@stats_list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The leader: the lowest member id, holding the descriptor.
    pub leader: Region,
    pub descriptor: Descriptor,
    /// Existing regions the descriptor names, ascending (leader first).
    pub members: Vec<Region>,
}

impl Group {
    pub fn id(&self) -> RegionId {
        self.leader.id
    }
}

/// What one update did, for the verbose log and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub extents: usize,
    pub kept: usize,
    pub created: usize,
    pub deleted: usize,
    pub messages: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The group already matched the extents.
    Unchanged,
    Updated(Summary),
    /// The update was cut short by a stop request; the group is consistent.
    Interrupted(Summary),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("group {0} not found")]
    GroupGone(RegionId),
    #[error("{msg}: {source}")]
    Device { msg: String, source: DeviceError },
    #[error("unexpected reply to {msg:?}: {reply:?}")]
    BadReply { msg: String, reply: String },
}

/// TODO(helper D): load/sync/remove with the ordering and rollback rules.
pub struct Engine<D: Device> {
    pub dev: D,
    group_id: RegionId,
    program_id: Option<String>,
}

impl<D: Device> Engine<D> {
    pub fn new(dev: D, group_id: RegionId) -> Self {
        Engine { dev, group_id, program_id: None }
    }

    /// The group's current id (its leader's id: it moves when a lower id joins).
    pub fn group_id(&self) -> RegionId {
        self.group_id
    }

    /// Read the group; `Ok(None)` when it no longer exists.
    pub fn load(&mut self) -> Result<Option<Group>, EngineError> {
        let _ = &self.program_id;
        todo!()
    }

    /// Bring the group in line with `extents`. `stop` is polled between
    /// messages; when it answers true the update ends early, consistent.
    pub fn sync(&mut self, extents: &[Extent], stop: &dyn Fn() -> bool) -> Result<Outcome, EngineError> {
        let _ = (extents, stop);
        todo!()
    }

    /// Delete every region of the group (the file has no extents left).
    pub fn remove(&mut self) -> Result<Summary, EngineError> {
        todo!()
    }
}
