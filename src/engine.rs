//! Apply: carry a [`Plan`](crate::diff::Plan) out on a device, in an order
//! that keeps the group whole whichever step fails. The device is a trait so
//! tests run the engine against `fake::FakeDm` (feature `testkit`).
//!
//! Two invariants hold whenever [`Engine::sync`] or [`Engine::remove`]
//! returns, whichever single message failed:
//! 1. the descriptor names only regions that exist;
//! 2. every region of ours that exists is named by the descriptor, which
//!    sits on the lowest of them, and no other of them holds a descriptor.
//!
//! An update creates first, then writes the new descriptor with one
//! `@stats_set_aux`, then deletes. A failed create is undone; any other
//! failure, or a stop request, ends with a repair: one descriptor naming
//! every region of ours that still exists (see [`Engine::sync`]). When the
//! repair fails too, [`EngineError::Unrepaired`] says so and the next
//! update picks up what it can see.
//!
//! dm-stats has no compare-and-swap, so a second updater of the same group
//! (another daemon, `dmstats update_filemap`) can only be narrowed, not
//! excluded: before writing its descriptor the engine lists again and backs
//! out ([`EngineError::Raced`]) if the group changed while it was creating,
//! and a group whose members another new descriptor claims is treated as
//! gone. A rival that runs its whole update between that last list and our
//! descriptor write leaves its new regions outside the group for a moment:
//! only their creator knows them, and it deletes them at its next look
//! (the sweep at the start of every update; see [`crate::ledger`]).
//!
//! Owns: [`Engine`] (the apply order and the messages it sends),
//! [`EngineError`], [`Outcome`], [`Summary`]. Touches: the device only
//! through [`Device`]; what the group is comes from [`crate::group`], what
//! to do about regions we made from [`crate::ledger`]. [`Engine::load`]
//! only reads; every delete is part of an update ([`Engine::sync`],
//! [`Engine::remove`]) or of [`Engine::sweep`].

use std::collections::BTreeMap;

use crate::device::{Device, DeviceError};
use crate::diff::{self, Member};
use crate::extent::Extent;
use crate::group::{self, Group, List, NotAGroup};
use crate::ledger::Ledger;
use crate::stats::{self, Descriptor, MessageError, Region, RegionId, SkippedLine};

/// What one update did, for the verbose log and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub extents: usize,
    pub kept: usize,
    pub created: usize,
    pub deleted: usize,
    /// Messages sent, `@stats_list` and failed ones included.
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
    #[error("region {id} is not a filemap group: {reason}")]
    NotAGroup {
        id: RegionId,
        #[source]
        reason: NotAGroup,
    },
    #[error("{msg}: {source}")]
    Device { msg: String, source: DeviceError },
    /// Someone else changed the group while we were creating regions; ours
    /// were taken back. The next update starts from what is there now.
    #[error("group {0} changed under us; update abandoned")]
    Raced(RegionId),
    /// Text from the device that no message can carry back (the kernel
    /// would split it where we cannot escape): retrying cannot help.
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("unexpected reply to {msg:?}: {reply:?}")]
    BadReply { msg: String, reply: String },
    /// An update failed and so did the repair that followed: the group may
    /// name a missing region or miss one of ours until the next update.
    #[error("{cause}; repairing the group failed too: {repair}")]
    Unrepaired {
        #[source]
        cause: Box<EngineError>,
        repair: Box<EngineError>,
    },
}

impl EngineError {
    /// True when retrying on the next cycle cannot help: the group or the
    /// device is gone, or the id never named a group.
    pub fn is_fatal(&self) -> bool {
        use rustix::io::Errno;
        match self {
            EngineError::GroupGone(_) | EngineError::NotAGroup { .. } | EngineError::Message(_) => {
                true
            }
            EngineError::Device {
                source: DeviceError::Os(e),
                ..
            } => {
                matches!(*e, Errno::NXIO | Errno::NODEV)
            }
            EngineError::Unrepaired { cause, .. } => cause.is_fatal(),
            _ => false,
        }
    }
}

/// Keeps one filemap group in line with a file's extents.
pub struct Engine<D: Device> {
    /// The device; public to the test kit, which inspects the fake.
    #[cfg(feature = "testkit")]
    pub dev: D,
    #[cfg(not(feature = "testkit"))]
    dev: D,
    group_id: RegionId,
    /// The leader's program id, learnt by the first load.
    program_id: Option<String>,
    /// Whether `@stats_list <program_id>` sees every member. A group that
    /// mixes programs (regrouped by hand) is listed whole instead.
    filtered: bool,
    /// Messages sent so far, for the summaries.
    messages: usize,
    /// The regions we made that a rival may have dropped.
    ledger: Ledger,
    /// For the log; see [`Engine::take_warnings`].
    warnings: Vec<String>,
    /// The unreadable lines of the last list, so each is warned about once.
    skipped: Vec<SkippedLine>,
}

/// What the engine knows of the group's regions while it changes them: the
/// aux data of every region of ours that exists, as last listed or written.
/// A failed message changes nothing in dm-stats, so this stays exact.
struct Ours {
    aux: BTreeMap<RegionId, String>,
    /// Alias, user data and dialect to write back, byte for byte.
    template: Descriptor,
}

impl Ours {
    fn of(group: &Group) -> Self {
        Ours {
            aux: group
                .members
                .iter()
                .map(|r| (r.id, r.aux_data.clone()))
                .collect(),
            template: group.descriptor.clone(),
        }
    }
}

impl<D: Device> Engine<D> {
    pub fn new(dev: D, group_id: RegionId) -> Self {
        Engine {
            dev,
            group_id,
            program_id: None,
            filtered: false,
            messages: 0,
            ledger: Ledger::default(),
            warnings: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The group's current id (its leader's id: it moves when a lower id joins).
    pub fn group_id(&self) -> RegionId {
        self.group_id
    }

    /// Messages sent since the engine was made.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// What the engine noticed and worked around since the last call:
    /// members someone else deleted, unreadable list lines (once each),
    /// stale descriptors stripped. One line each, for the log.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn send(&mut self, msg: String) -> Result<String, EngineError> {
        self.messages += 1;
        self.dev
            .message(&msg)
            .map_err(|source| EngineError::Device { msg, source })
    }

    /// Read the group with one `@stats_list`; `Ok(None)` when it no longer
    /// exists or a rival's new descriptor claims it. The first call lists
    /// every program's regions to learn the group's program id and fails if
    /// the id names no group; later calls list that program's regions only,
    /// unless the group mixes programs.
    ///
    /// Only reads: regions of ours the list shows outside every descriptor
    /// are left for the next update, or [`Engine::sweep`], to delete
    /// ([`Engine::sweep_pending`] tells whether there are any).
    pub fn load(&mut self) -> Result<Option<Group>, EngineError> {
        let first = self.program_id.is_none();
        let (regions, skipped) = self.list()?;
        for line in skipped.iter().filter(|l| !self.skipped.contains(l)) {
            self.warnings.push(format!(
                "@stats_list line {} skipped: {}",
                line.line_no, line.reason
            ));
        }
        self.skipped = skipped;
        let list = group::by_id(regions);
        match group::read_group(self.group_id, &list) {
            Ok(group) => {
                if first {
                    self.ledger.first_look(&list, &group);
                    let program = &group.leader.program_id;
                    self.filtered = group.members.iter().all(|m| &m.program_id == program);
                    self.program_id = Some(program.clone());
                }
                Ok(self.ledger.look(&list, Some(&group)).then_some(group))
            }
            Err(reason) if first => Err(EngineError::NotAGroup {
                id: self.group_id,
                reason,
            }),
            // The leader region itself is gone: the group was deleted, not
            // ungrouped.
            Err(NotAGroup::NoRegion) => {
                self.ledger.look_deleted(&list);
                Ok(None)
            }
            Err(_) => {
                self.ledger.look(&list, None);
                Ok(None)
            }
        }
    }

    /// Whether the last look found regions of ours left outside every
    /// descriptor (a rival updater's, a failed repair's doing), which the
    /// next update deletes.
    pub fn sweep_pending(&self) -> bool {
        !self.ledger.orphans().is_empty()
    }

    /// Delete the regions of ours the last look found outside every
    /// descriptor: two updaters racing can each publish a descriptor
    /// without the other's new regions, and only their creator knows them.
    /// Every update starts with it; the daemon calls it itself only when
    /// it gives up a group a rival took, as no update of its follows.
    pub fn sweep(&mut self) {
        for id in self.ledger.take_orphans() {
            match self.delete(id) {
                Ok(()) => self.warnings.push(format!(
                    "region {id} of ours was left outside the group (a rival updater, a failed repair): deleted"
                )),
                Err(e) => self
                    .warnings
                    .push(format!("region {id} is outside the group and will not go: {e}")),
            }
        }
    }

    /// The group as an update starts from it: one look, then the sweep.
    fn start(&mut self) -> Result<Group, EngineError> {
        let group = self.load()?;
        self.sweep();
        group.ok_or(EngineError::GroupGone(self.group_id))
    }

    /// Bring the group in line with `extents`. `stop` is polled between
    /// messages; when it answers true the update ends early, consistent.
    ///
    /// Order: (a) create the missing regions, undoing them all if one
    /// create fails; (b) write the descriptor naming kept and created
    /// regions on the lowest of them, and if that moved the leader, strip
    /// the old leader's descriptor down to the user data; (c) delete the
    /// regions no longer wanted, the old leader first. Between (b) and the
    /// end of (c) the regions awaiting deletion are outside the group: a
    /// failed delete or a stop there is followed by a repair that names
    /// them again. What stays open is a repair that fails as well (it is
    /// reported as [`EngineError::Unrepaired`] and the next update finishes
    /// the job) and the process dying in that window, which leaves
    /// unnamed regions behind that no later update can tell from another
    /// program's.
    pub fn sync(
        &mut self,
        extents: &[Extent],
        stop: &dyn Fn() -> bool,
    ) -> Result<Outcome, EngineError> {
        if extents.is_empty() {
            return self.remove().map(Outcome::Updated);
        }
        let sent = self.messages;
        let group = self.start()?;
        let members: Vec<Member> = group
            .members
            .iter()
            .map(|r| Member {
                id: r.id,
                extent: r.extent(),
            })
            .collect();
        let plan = diff::diff(&members, extents);
        let stale = group.members[1..].iter().any(group::names_itself);
        if plan.is_noop() && group.missing.is_empty() && !stale {
            return Ok(Outcome::Unchanged);
        }
        if !group.missing.is_empty() {
            self.warnings.push(format!(
                "group {}: member regions {} deleted by someone else",
                group.id(),
                stats::format_members(&group.missing)
            ));
        }
        if stale {
            self.warnings.push(format!(
                "group {}: a member still holds an old descriptor; stripping it",
                group.id()
            ));
        }

        let mut ours = Ours::of(&group);
        let mut summary = Summary {
            extents: extents.len(),
            kept: plan.keep.len(),
            ..Summary::default()
        };
        let finish = |engine: &Self, mut summary: Summary| {
            summary.messages = engine.messages - sent;
            summary
        };

        // (a) Create.
        let mut created = Vec::with_capacity(plan.create.len());
        for &extent in &plan.create {
            if stop() {
                self.repair(&mut ours)?;
                summary.created = created.len();
                return Ok(Outcome::Interrupted(finish(self, summary)));
            }
            match self.create(extent, &group.leader) {
                Ok(id) => {
                    ours.aux.insert(id, "-".to_string());
                    created.push(id);
                }
                Err(e) => {
                    self.undo(&mut ours, &created);
                    return Err(self.fail(&mut ours, e));
                }
            }
        }
        summary.created = created.len();

        // (b) Publish.
        let mut target: Vec<RegionId> = plan.keep.iter().chain(&created).copied().collect();
        target.sort_unstable();
        if stop() {
            self.repair(&mut ours)?;
            return Ok(Outcome::Interrupted(finish(self, summary)));
        }
        // Creating takes long enough for another updater of this group (a
        // second daemon, `dmstats update_filemap`) to slip in: look again
        // before overwriting its descriptor with ours.
        if !created.is_empty() {
            match self.still_as_loaded(&group) {
                Ok(true) => {}
                Ok(false) => {
                    // Not ours to repair any more: take back what we added.
                    self.undo(&mut ours, &created);
                    return Err(EngineError::Raced(group.leader.id));
                }
                Err(e) => {
                    self.undo(&mut ours, &created);
                    return Err(self.fail(&mut ours, e));
                }
            }
        }
        if let Err(e) = self.write_descriptor(&mut ours, &target) {
            // The old descriptor still stands: go back to it.
            self.undo(&mut ours, &created);
            return Err(self.fail(&mut ours, e));
        }
        if let Err(e) = self.strip_stale(&mut ours, &target) {
            return Err(self.fail(&mut ours, e));
        }

        // (c) Delete: the old leader first, as it may still hold the old
        // descriptor, which must not outlive its members.
        let mut doomed = plan.delete.clone();
        if let Some(pos) = doomed.iter().position(|&id| id == group.leader.id) {
            doomed[..=pos].rotate_right(1);
        }
        // Outside the group now: should the deletes and the repair both
        // fail, only the sweep will find them.
        for m in group
            .members
            .iter()
            .filter(|m| plan.delete.binary_search(&m.id).is_ok())
        {
            self.ledger.doomed_member(m);
        }
        for id in doomed {
            if stop() {
                self.repair(&mut ours)?;
                return Ok(Outcome::Interrupted(finish(self, summary)));
            }
            if let Err(e) = self.delete(id) {
                return Err(self.fail(&mut ours, e));
            }
            ours.aux.remove(&id);
            summary.deleted += 1;
        }
        Ok(Outcome::Updated(finish(self, summary)))
    }

    /// Delete every region of the group (the file has no extents left):
    /// the members first, the leader and its descriptor last.
    pub fn remove(&mut self) -> Result<Summary, EngineError> {
        let sent = self.messages;
        let group = self.start()?;
        let mut ours = Ours::of(&group);
        let mut summary = Summary::default();
        let leader = group.leader.id;
        for id in group
            .members
            .iter()
            .map(|r| r.id)
            .filter(|&id| id != leader)
            .chain([leader])
        {
            if let Err(e) = self.delete(id) {
                return Err(self.fail(&mut ours, e));
            }
            ours.aux.remove(&id);
            summary.deleted += 1;
        }
        summary.messages = self.messages - sent;
        Ok(summary)
    }

    fn create(&mut self, extent: Extent, leader: &Region) -> Result<RegionId, EngineError> {
        let msg = stats::msg_create(extent, leader)?;
        let reply = self.send(msg.clone())?;
        let id = stats::parse_create_reply(&reply).ok_or(EngineError::BadReply { msg, reply })?;
        self.ledger.created(id, extent, &leader.program_id);
        Ok(id)
    }

    /// A region someone else already deleted is as good as deleted. ENOENT
    /// is checked with a list before it is believed: taking it on trust
    /// would leave the region outside the group if it were still there.
    fn delete(&mut self, id: RegionId) -> Result<(), EngineError> {
        match self.send(stats::msg_delete(id)) {
            Err(EngineError::Device {
                source: DeviceError::Os(rustix::io::Errno::NOENT),
                ..
            }) if !self.exists(id)? => {}
            other => other.map(drop)?,
        }
        self.ledger.deleted(id);
        Ok(())
    }

    /// Whether the leader still holds the descriptor we loaded, every
    /// member we keep is still there, and no new descriptor claims one of
    /// them (a rival that moved the group's leader).
    fn still_as_loaded(&mut self, group: &Group) -> Result<bool, EngineError> {
        let now: List = group::by_id(self.list()?.0);
        let unchanged = now
            .get(&group.leader.id)
            .is_some_and(|l| l.aux_data == group.leader.aux_data)
            && group
                .members
                .iter()
                .all(|m| now.get(&m.id).is_some_and(|r| r.extent() == m.extent()));
        Ok(unchanged && !self.ledger.rival_claims(&now, group))
    }

    /// One `@stats_list`, of the group's program once it is known to hold
    /// every member.
    fn list(&mut self) -> Result<(Vec<Region>, Vec<SkippedLine>), EngineError> {
        let filter = self.program_id.as_deref().filter(|_| self.filtered);
        let msg = stats::msg_list(filter)?;
        let reply = self.send(msg)?;
        Ok(stats::parse_list(&reply))
    }

    fn exists(&mut self, id: RegionId) -> Result<bool, EngineError> {
        Ok(self.list()?.0.iter().any(|r| r.id == id))
    }

    fn set_aux(&mut self, ours: &mut Ours, id: RegionId, aux: String) -> Result<(), EngineError> {
        self.send(stats::msg_set_aux(id, &aux)?)?;
        ours.aux.insert(id, aux);
        Ok(())
    }

    /// Put the descriptor naming `set` on its lowest id, unless it is
    /// already there word for word. The group's id follows it.
    fn write_descriptor(&mut self, ours: &mut Ours, set: &[RegionId]) -> Result<(), EngineError> {
        let Some(&leader) = set.first() else {
            return Ok(());
        };
        let desc = Descriptor {
            members: set.to_vec(),
            ..ours.template.clone()
        }
        .format();
        if ours.aux.get(&leader) != Some(&desc) {
            self.set_aux(ours, leader, desc)?;
        }
        self.group_id = leader;
        self.ledger.published(set);
        Ok(())
    }

    /// Reduce every other region of `set` that still holds a descriptor
    /// naming itself (an old leader) to the group's user data.
    fn strip_stale(&mut self, ours: &mut Ours, set: &[RegionId]) -> Result<(), EngineError> {
        let user = if ours.template.user.is_empty() {
            "-".to_string()
        } else {
            ours.template.user.clone()
        };
        for &id in set.iter().skip(1) {
            let stale = ours
                .aux
                .get(&id)
                .is_some_and(|aux| group::aux_names_itself(id, aux));
            if stale {
                self.set_aux(ours, id, user.clone())?;
            }
        }
        Ok(())
    }

    /// Delete what this update created. A region that will not go stays
    /// in `ours` for the repair to name.
    fn undo(&mut self, ours: &mut Ours, created: &[RegionId]) {
        for &id in created.iter().rev() {
            if self.delete(id).is_ok() {
                ours.aux.remove(&id);
            }
        }
    }

    /// Make the descriptor name exactly the regions of ours that exist.
    fn repair(&mut self, ours: &mut Ours) -> Result<(), EngineError> {
        let set: Vec<RegionId> = ours.aux.keys().copied().collect();
        self.write_descriptor(ours, &set)?;
        self.strip_stale(ours, &set)
    }

    /// Repair after `cause` and hand back the error to report.
    fn fail(&mut self, ours: &mut Ours, cause: EngineError) -> EngineError {
        match self.repair(ours) {
            Ok(()) => cause,
            Err(repair) => EngineError::Unrepaired {
                cause: Box::new(cause),
                repair: Box::new(repair),
            },
        }
    }
}
