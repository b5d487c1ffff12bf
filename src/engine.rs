//! Apply: carry a [`Plan`](crate::plan::diff::Plan) out on a device, in an order
//! that keeps the group whole whichever step fails. The device is a trait so
//! tests run the engine against `fake::FakeDm` (feature `testkit`).
//!
//! Two invariants hold whenever [`Engine::sync`] or [`Engine::remove`]
//! returns, whichever single message failed:
//! 1. the descriptor names only regions that exist;
//! 2. every region of ours that exists is named by the descriptor, which
//!    sits on the lowest of them, and no other of them holds a descriptor.
//!
//! An update goes in steps of at most [`BATCH`] regions, so that a kill
//! at any instant leaves at most that many of ours outside the group; the
//! order of each step, and what a failure takes back, is the `apply` module's.
//!
//! dm-stats has no compare-and-swap, so a second updater of the same group
//! (another daemon, `dmstats update_filemap`) can only be narrowed, not
//! excluded: before the first descriptor write of an update the engine
//! lists again and backs out ([`EngineError::Raced`]) if the group changed
//! while it was creating, and a group whose members another new descriptor
//! claims is treated as gone. A rival that runs its whole update between
//! that list and one of our descriptor writes leaves its new regions
//! outside the group for a moment: only their creator knows them, and it
//! deletes them at its next look (the sweep at the start of every update;
//! see [`crate::engine::ledger`]). That look comes even when no update follows:
//! [`Engine::probe`] does not vouch for the group while regions we made
//! have not been seen in it, so the daemon's next check lists.
//!
//! Owns: [`Engine`] (what it knows of the group, the looks and the
//! messages it sends; the apply order in `apply`), [`EngineError`],
//! [`Outcome`], [`Summary`], [`Warning`]. Touches: the device only
//! through [`Device`]; what the group is comes from [`crate::plan::group`], what
//! to do about regions we made from [`crate::engine::ledger`], about regions a
//! stopped daemon left from [`crate::engine::mark`]. [`Engine::load`]
//! only reads; every delete is part of an update ([`Engine::sync`],
//! [`Engine::remove`]), of [`Engine::sweep`], or takes back a new
//! group's first region (`Engine::found`, `unmap` after a stopped `map`).

mod apply;
pub(crate) mod ledger;
pub(crate) mod map;
pub(crate) mod mark;
mod warning;

pub use apply::BATCH;
pub use warning::Warning;

use std::collections::{BTreeMap, BTreeSet};

use crate::dmstats::{self, MessageError, Probe, Region, RegionId, SkippedLine};
use crate::dmstats::{Device, DeviceError, Text};
use crate::extent::Extent;
use crate::plan::fold;
use crate::plan::group::{self, Group, List, NotAGroup};
use ledger::Ledger;
use mark::Settlement;

/// What one update did, for the verbose log and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub extents: usize,
    pub kept: usize,
    pub created: usize,
    pub deleted: usize,
    /// Kept regions given up to stay within the budget (their counters lost).
    pub folded: usize,
    /// Messages sent, `@stats_list` and failed ones included.
    pub messages: usize,
    /// Of those, `@stats_list` ...
    pub lists: usize,
    /// ... and `@stats_set_aux`.
    pub set_aux: usize,
}

/// Messages sent so far, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sent {
    all: usize,
    lists: usize,
    set_aux: usize,
}

impl Summary {
    /// Fill in the messages sent since `before`.
    fn sent_since(mut self, before: Sent, now: Sent) -> Summary {
        self.messages = now.all - before.all;
        self.lists = now.lists - before.lists;
        self.set_aux = now.set_aux - before.set_aux;
        self
    }
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
    Device { msg: Text, source: DeviceError },
    /// Someone else changed the group while we were creating regions; ours
    /// were taken back. The next update starts from what is there now.
    #[error("group {0} changed under us; update abandoned")]
    Raced(RegionId),
    /// Text from the device that no message can carry back (the kernel
    /// would split it where we cannot escape): retrying cannot help.
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("unexpected reply to {msg:?}: {reply:?}")]
    BadReply { msg: Text, reply: Text },
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
    program_id: Option<Text>,
    /// Whether `@stats_list <program_id>` sees every member. A group that
    /// mixes programs (regrouped by hand) is listed whole instead.
    filtered: bool,
    /// Messages sent so far, for the summaries.
    sent: Sent,
    /// How to tell, with one short message, that the leader is still the
    /// region last listed or written; `None` when not known for sure.
    probe: Option<Probe>,
    /// The same for every member (the leader too), probed a few at a time
    /// in turn ([`Engine::probe_members`]): rebuilt by each list, kept in
    /// step with our own creates and deletes in between.
    members: Vec<(RegionId, Probe)>,
    /// The next of `members` to probe.
    cursor: usize,
    /// Regions the last `@stats_list` returned: what one list costs.
    listed: usize,
    /// The regions we made that a rival may have dropped.
    ledger: Ledger,
    /// For the log; see [`Engine::take_warnings`].
    warnings: Vec<Warning>,
    /// The unreadable lines of the last list, so each is warned about once.
    skipped: Vec<SkippedLine>,
    /// What a stopped update left outside the group, as the last look saw
    /// it; the first update settles it, once.
    settlement: Settlement,
    settled: bool,
    /// Extra regions allowed beyond one per extent (see [`crate::plan::fold`]).
    budget: usize,
    /// Plain regions (empty aux data) outside every descriptor at the last
    /// load: see [`Engine::still_as_loaded`].
    plain_outside: BTreeSet<(RegionId, Extent)>,
}
impl<D: Device> Engine<D> {
    pub fn new(dev: D, group_id: RegionId) -> Self {
        Engine {
            dev,
            group_id,
            program_id: None,
            filtered: false,
            sent: Sent::default(),
            probe: None,
            members: Vec::new(),
            cursor: 0,
            listed: 0,
            ledger: Ledger::default(),
            warnings: Vec::new(),
            skipped: Vec::new(),
            settlement: Settlement::default(),
            settled: false,
            budget: fold::DEFAULT_BUDGET,
            plain_outside: BTreeSet::new(),
        }
    }

    /// Extra regions the group may hold beyond one per extent.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The group's current id (its leader's id: it moves when a lower id joins).
    pub fn group_id(&self) -> RegionId {
        self.group_id
    }

    /// Messages sent since the engine was made.
    pub fn messages(&self) -> usize {
        self.sent.all
    }

    /// What the engine noticed and worked around since the last call:
    /// members someone else deleted, unreadable list lines (once each),
    /// stale descriptors stripped. One each; its `Display` is the log line.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    fn send(&mut self, msg: Text) -> Result<Text, EngineError> {
        self.sent.all += 1;
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
        self.listed = regions.len();
        self.members.clear();
        for line in skipped.iter().filter(|l| !self.skipped.contains(l)) {
            self.warnings.push(Warning::UnreadableLine {
                line_no: line.line_no,
                reason: line.reason,
            });
        }
        self.skipped = skipped;
        let list = group::by_id(regions);
        self.plain_outside = plain_outside(&list).map(|r| (r.id, r.extent())).collect();
        match group::read_group(self.group_id, &list) {
            Ok(group) => {
                if first {
                    self.ledger.first_look(&list, &group);
                    let program = &group.leader.program_id;
                    self.filtered = group.members.iter().all(|m| &m.program_id == program);
                    self.program_id = Some(program.clone());
                }
                if !self.settled {
                    self.settlement = mark::settle(&list, &group);
                }
                let ours = self.ledger.look(&list, Some(&group));
                self.probe = ours.then(|| Probe::of(&group.leader));
                if ours {
                    self.members = group.members.iter().map(|m| (m.id, Probe::of(m))).collect();
                }
                Ok(ours.then_some(group))
            }
            Err(reason) if first => Err(EngineError::NotAGroup {
                id: self.group_id,
                reason,
            }),
            // The leader region itself is gone: the group was deleted, not
            // ungrouped.
            Err(NotAGroup::NoRegion) => {
                self.probe = None;
                self.ledger.look_deleted(&list);
                Ok(None)
            }
            Err(_) => {
                self.probe = None;
                self.ledger.look(&list, None);
                Ok(None)
            }
        }
    }

    /// Whether the group's leader is still the region last listed or
    /// written, by one `@stats_print` of it, whatever the group's size
    /// (`Probe`). False when it is gone or differs, or when the engine
    /// does not know the leader for sure (before the first load, after a
    /// failed update): then only a [`load`](Self::load) can tell.
    ///
    /// Blind to the aux data: the group ungrouped (`dmstats ungroup`
    /// rewrites the leader's aux data and nothing else), or its descriptor
    /// rewritten, by another program shows only in a load; a member
    /// deleted shows in [`probe_members`](Self::probe_members). It does
    /// not vouch for the group either while regions we made have not been
    /// seen in it since (false, without a message): a second updater that
    /// wrote its descriptor over ours on the same leader left them
    /// outside, only we know them, and with the file unchanged no update
    /// of ours follows to sweep them. One list after each update that
    /// created regions.
    pub fn probe(&mut self) -> Result<bool, EngineError> {
        let Some(probe) = self.probe.clone() else {
            return Ok(false);
        };
        if self.ledger.unconfirmed() {
            return Ok(false);
        }
        match self.send(probe.msg.clone()) {
            Ok(reply) => Ok(probe.matches(&reply)),
            Err(EngineError::Device {
                source: DeviceError::Os(rustix::io::Errno::NOENT),
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Probe the next `n` members in turn (at most each once), one
    /// `@stats_print` each, as [`probe`](Self::probe) does the leader:
    /// false as soon as one is gone or differs (another program deleted a
    /// member, or reused its id), or when no member is known for sure.
    /// A round over every member costs as many messages as the group has
    /// members, whatever else is on the device.
    pub fn probe_members(&mut self, n: usize) -> Result<bool, EngineError> {
        if self.members.is_empty() || self.probe.is_none() {
            return Ok(false);
        }
        for _ in 0..n.min(self.members.len()) {
            self.cursor %= self.members.len();
            let probe = self.members[self.cursor].1.clone();
            self.cursor += 1;
            match self.send(probe.msg.clone()) {
                Ok(reply) if probe.matches(&reply) => {}
                Ok(_)
                | Err(EngineError::Device {
                    source: DeviceError::Os(rustix::io::Errno::NOENT),
                    ..
                }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// How many members the member probes cover (0 until a list showed
    /// the group).
    pub fn probed_members(&self) -> usize {
        self.members.len()
    }

    /// How many regions the last `@stats_list` returned (all the device's,
    /// or its program's): what one more list costs.
    pub fn listed_regions(&self) -> usize {
        self.listed
    }

    /// After an update that ended well, the probe for the leader it left:
    /// the one listed, a kept member, or a region it made (one area).
    fn probe_after(&self, group: &Group, listed: Option<Probe>) -> Option<Probe> {
        let leader = self.group_id;
        if leader == group.leader.id {
            return listed;
        }
        match group.members.iter().find(|m| m.id == leader) {
            Some(m) => Some(Probe::of(m)),
            None => self
                .ledger
                .made_extent(leader)
                .map(|e| Probe::of_created(leader, e)),
        }
    }

    /// Whether the last look found regions of ours left outside every
    /// descriptor (a rival updater's, a failed repair's doing), which the
    /// next update deletes.
    pub fn sweep_pending(&self) -> bool {
        !self.ledger.orphans().is_empty() || !self.settlement.is_empty()
    }

    /// Delete the regions of ours the last look found outside every
    /// descriptor: two updaters racing can each publish a descriptor
    /// without the other's new regions, and only their creator knows them.
    /// Every update starts with it; the daemon calls it itself only when
    /// it gives up a group a rival took, as no update of its follows.
    pub fn sweep(&mut self) {
        for id in self.ledger.take_orphans() {
            let warning = match self.delete(id) {
                Ok(()) => Warning::OrphanDeleted(id),
                Err(e) => Warning::not_deleted(id, e),
            };
            self.warnings.push(warning);
        }
    }

    /// The group as an update starts from it: one look, the sweep, and on
    /// the first update the settlement of what a stopped daemon left (see
    /// [`crate::engine::mark`]): proven strays deleted, the regions to adopt
    /// returned.
    fn start(&mut self) -> Result<(Group, Vec<Region>), EngineError> {
        let group = self.load()?;
        self.sweep();
        let group = group.ok_or(EngineError::GroupGone(self.group_id))?;
        let settlement = std::mem::take(&mut self.settlement);
        self.settled = true;
        for id in settlement.delete {
            let warning = match self.delete(id) {
                Ok(()) => Warning::StrayDeleted(id),
                Err(e) => Warning::not_deleted(id, e),
            };
            self.warnings.push(warning);
        }
        if !settlement.adopt.is_empty() {
            self.warnings.push(Warning::Adopted {
                group: group.id(),
                regions: settlement.adopt.iter().map(|r| r.id).collect(),
            });
        }
        Ok((group, settlement.adopt))
    }

    /// The sectors each of `ids` has counted (read and written), one
    /// `@stats_print` each: asked only when a fold is due.
    fn counters(&mut self, ids: &[RegionId]) -> Result<BTreeMap<RegionId, u64>, EngineError> {
        let mut out = BTreeMap::new();
        for &id in ids {
            // Every area: a region made by hand may have more than one.
            let msg = Text::from(format!("@stats_print {id}"));
            let reply = self.send(msg.clone())?;
            let sectors =
                dmstats::parse_print_sectors(&reply).ok_or(EngineError::BadReply { msg, reply })?;
            out.insert(id, sectors);
        }
        Ok(out)
    }

    fn create(
        &mut self,
        extent: Extent,
        leader: &Region,
        mark: &[u8],
    ) -> Result<RegionId, EngineError> {
        let msg = dmstats::msg_create(extent, leader, mark)?;
        let reply = self.send(msg.clone())?;
        let id = dmstats::parse_create_reply(&reply).ok_or(EngineError::BadReply { msg, reply })?;
        self.ledger.created(id, extent, &leader.program_id);
        // A member from now on, unless a failure takes it back (a delete)
        // or leaves the group unknown (the next list rebuilds the probes).
        self.members.push((id, Probe::of_created(id, extent)));
        Ok(id)
    }

    /// A region someone else already deleted is as good as deleted. ENOENT
    /// is checked with a list before it is believed: taking it on trust
    /// would leave the region outside the group if it were still there.
    fn delete(&mut self, id: RegionId) -> Result<(), EngineError> {
        match self.send(dmstats::msg_delete(id)) {
            Err(EngineError::Device {
                source: DeviceError::Os(rustix::io::Errno::NOENT),
                ..
            }) if !self.exists(id)? => {}
            other => other.map(drop)?,
        }
        self.ledger.deleted(id);
        self.members.retain(|(m, _)| *m != id);
        Ok(())
    }

    /// Whether the leader still holds the descriptor we loaded, every
    /// member we keep is still there, no new descriptor claims one of
    /// them (a rival that moved the group's leader), and no rival is half
    /// way through an update of its own: `None` when so, the list that
    /// says otherwise when not.
    ///
    /// libdm (`dmstats update_filemap`) creates every region it needs
    /// before it writes its descriptor, with empty aux data. A plain region
    /// outside every descriptor over an extent this update has just created
    /// a region for (`made`), which was not there at the load, is such a
    /// rival's, its descriptor about to come: written after ours, it would
    /// leave ours out (we clear them, see [`crate::ledger`]); written just
    /// before ours, ours would leave its regions out, unmarked, and nobody
    /// could clear them (VM soak, Debian 12: dmstats' regions 130 and 131
    /// outside the group). So we back off and let it finish.
    fn still_as_loaded(
        &mut self,
        group: &Group,
        made: &[Extent],
    ) -> Result<Option<List>, EngineError> {
        let now: List = group::by_id(self.list()?.0);
        let program = &group.leader.program_id;
        let rival_half_way = plain_outside(&now).any(|r| {
            &r.program_id == program
                && made.contains(&r.extent())
                && !self.plain_outside.contains(&(r.id, r.extent()))
        });
        let unchanged = now
            .get(&group.leader.id)
            .is_some_and(|l| l.aux_data == group.leader.aux_data)
            && group
                .members
                .iter()
                .all(|m| now.get(&m.id).is_some_and(|r| r.extent() == m.extent()));
        Ok((!unchanged || rival_half_way || self.ledger.rival_claims(&now, group)).then_some(now))
    }

    /// One `@stats_list`, of the group's program once it is known to hold
    /// every member.
    fn list(&mut self) -> Result<(Vec<Region>, Vec<SkippedLine>), EngineError> {
        let filter = self.program_id.as_deref().filter(|_| self.filtered);
        let msg = dmstats::msg_list(filter)?;
        self.sent.lists += 1;
        let reply = self.send(msg)?;
        Ok(dmstats::parse_list(&reply))
    }

    fn exists(&mut self, id: RegionId) -> Result<bool, EngineError> {
        Ok(self.list()?.0.iter().any(|r| r.id == id))
    }
}

/// The regions of `list` with empty aux data that no descriptor names.
fn plain_outside(list: &List) -> impl Iterator<Item = &Region> {
    let named: BTreeSet<RegionId> = list
        .values()
        .filter_map(group::leading)
        .flat_map(|d| d.members)
        .collect();
    list.values()
        .filter(move |r| r.aux_data == "-" && !named.contains(&r.id))
}
