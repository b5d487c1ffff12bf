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
//! An update goes in steps (see [`Engine::sync`]): each creates up to
//! [`BATCH`] regions, writes the descriptor naming them and without up to
//! [`BATCH`] regions no longer wanted, then deletes those; so at most
//! [`BATCH`] regions of ours are outside the group at any instant, and
//! each carries a mark ([`crate::mark`]) from which the next daemon, should
//! this one be killed there, settles them. A failed create or descriptor
//! write takes back the step's new regions; any other failure, or a stop
//! request, ends with a repair: one descriptor naming every region of ours
//! that still exists. When the repair fails too,
//! [`EngineError::Unrepaired`] says so and the next update picks up what
//! it can see.
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
//! see [`crate::ledger`]). That look comes even when no update follows:
//! [`Engine::probe`] does not vouch for the group while regions we made
//! have not been seen in it, so the daemon's next check lists.
//!
//! Owns: [`Engine`] (the apply order and the messages it sends),
//! [`EngineError`], [`Outcome`], [`Summary`]. Touches: the device only
//! through [`Device`]; what the group is comes from [`crate::group`], what
//! to do about regions we made from [`crate::ledger`], about regions a
//! stopped daemon left from [`crate::mark`]. [`Engine::load`]
//! only reads; every delete is part of an update ([`Engine::sync`],
//! [`Engine::remove`]) or of [`Engine::sweep`].

use std::collections::{BTreeMap, BTreeSet};

use crate::device::{Device, DeviceError};
use crate::diff::{self, Member};
use crate::extent::Extent;
use crate::fold;
use crate::group::{self, Group, List, NotAGroup};
use crate::ledger::Ledger;
use crate::mark::{self, fingerprint, Mark, Settlement, BATCH};
use crate::stats::{self, Descriptor, MessageError, Probe, Region, RegionId, SkippedLine};

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
    sent: Sent,
    /// How to tell, with one short message, that the leader is still the
    /// region last listed or written; `None` when not known for sure.
    probe: Option<Probe>,
    /// The regions we made that a rival may have dropped.
    ledger: Ledger,
    /// For the log; see [`Engine::take_warnings`].
    warnings: Vec<String>,
    /// The unreadable lines of the last list, so each is warned about once.
    skipped: Vec<SkippedLine>,
    /// What a stopped update left outside the group, as the last look saw
    /// it; the first update settles it, once.
    settlement: Settlement,
    settled: bool,
    /// Extra regions allowed beyond one per extent (see [`crate::fold`]).
    budget: usize,
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
    /// The group's members and the regions it adopts.
    fn of(group: &Group, adopted: &[Region]) -> Self {
        Ours {
            aux: group
                .members
                .iter()
                .chain(adopted)
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
            sent: Sent::default(),
            probe: None,
            ledger: Ledger::default(),
            warnings: Vec::new(),
            skipped: Vec::new(),
            settlement: Settlement::default(),
            settled: false,
            budget: fold::DEFAULT_BUDGET,
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
    /// stale descriptors stripped. One line each, for the log.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn send(&mut self, msg: String) -> Result<String, EngineError> {
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
                if !self.settled {
                    self.settlement = mark::settle(&list, &group);
                }
                let ours = self.ledger.look(&list, Some(&group));
                self.probe = ours.then(|| Probe::of(&group.leader));
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
    /// ([`Probe`]). False when it is gone or differs, or when the engine
    /// does not know the leader for sure (before the first load, after a
    /// failed update): then only a [`load`](Self::load) can tell.
    ///
    /// Blind to the aux data: a member deleted, or the group ungrouped,
    /// by another program shows only in a load. So it does not vouch for
    /// the group either while regions we made have not been seen in it
    /// since (false, without a message): a second updater that wrote its
    /// descriptor over ours on the same leader left them outside, only we
    /// know them, and with the file unchanged no update of ours follows
    /// to sweep them. One list after each update that created regions.
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

    /// The group as an update starts from it: one look, the sweep, and on
    /// the first update the settlement of what a stopped daemon left (see
    /// [`crate::mark`]): proven strays deleted, the regions to adopt
    /// returned.
    fn start(&mut self) -> Result<(Group, Vec<Region>), EngineError> {
        let group = self.load()?;
        self.sweep();
        let group = group.ok_or(EngineError::GroupGone(self.group_id))?;
        let settlement = std::mem::take(&mut self.settlement);
        self.settled = true;
        for id in settlement.delete {
            match self.delete(id) {
                Ok(()) => self.warnings.push(format!(
                    "region {id} was left outside the group by a stopped update: deleted"
                )),
                Err(e) => self.warnings.push(format!(
                    "region {id} is outside the group and will not go: {e}"
                )),
            }
        }
        if !settlement.adopt.is_empty() {
            let ids: Vec<RegionId> = settlement.adopt.iter().map(|r| r.id).collect();
            self.warnings.push(format!(
                "group {}: regions {} were left outside it by a stopped update: adopted",
                group.id(),
                stats::format_members(&ids)
            ));
        }
        Ok((group, settlement.adopt))
    }

    /// Bring the group in line with `extents`. `stop` is polled between
    /// steps; when it answers true the update ends early, consistent.
    ///
    /// In steps, so that at most [`BATCH`] regions of ours are outside the
    /// group at any instant, whenever the process dies: each step creates
    /// up to [`BATCH`] regions (each marked with the standing descriptor's
    /// fingerprint), marks one region of the next up to [`BATCH`] to drop
    /// with the list of them, writes the descriptor naming the created and
    /// without the dropped, strips an old leader, and deletes the dropped
    /// ones, the marked one last. A daemon started after a kill settles the
    /// one batch left outside by those marks ([`crate::mark`]).
    ///
    /// A failed create or descriptor write takes back the step's new
    /// regions; any failure ends with a repair: one descriptor naming every
    /// region of ours that still exists, so the group is consistent but may
    /// be part way to the extents; the next update goes on from there.
    pub fn sync(
        &mut self,
        extents: &[Extent],
        stop: &dyn Fn() -> bool,
    ) -> Result<Outcome, EngineError> {
        if extents.is_empty() {
            return self.remove().map(Outcome::Updated);
        }
        let sent = self.sent;
        let (group, adopted) = self.start()?;
        // Unknown until the update ends well: a failure may move the leader.
        let listed = self.probe.take();
        let members: Vec<Member> = group
            .members
            .iter()
            .chain(&adopted)
            .map(Member::of)
            .collect();
        let mut plan = diff::diff(&members, extents);
        // Growth past the budget folds tiles; a group found over it (a
        // smaller budget than its maker's) is left as it is until it grows.
        let mut folded = 0;
        if !plan.create.is_empty() && fold::excess(&plan, extents, self.budget) > 0 {
            // Nothing is changed yet: a failure here needs no repair.
            let counts = self.counters(&plan.keep)?;
            let count = |id: RegionId| counts.get(&id).copied().unwrap_or(0);
            let kept = plan.keep.len();
            plan = fold::within_budget(plan, &members, extents, self.budget, &count);
            folded = kept - plan.keep.len();
        }
        let stale = group.members[1..].iter().any(group::names_itself);
        if plan.is_noop() && group.missing.is_empty() && !stale && adopted.is_empty() {
            self.probe = listed;
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

        let mut ours = Ours::of(&group, &adopted);
        let mut named: Vec<RegionId> = ours.aux.keys().copied().collect();
        let regions: BTreeMap<RegionId, &Region> = group
            .members
            .iter()
            .chain(&adopted)
            .map(|r| (r.id, r))
            .collect();
        let doomed: Vec<&Region> = plan.delete.iter().map(|id| regions[id]).collect();
        let mut summary = Summary {
            extents: extents.len(),
            kept: plan.keep.len(),
            folded,
            ..Summary::default()
        };
        let finish = |engine: &Self, summary: Summary| summary.sent_since(sent, engine.sent);

        let mut makes = plan.create.chunks(BATCH);
        let mut drops = doomed.chunks(BATCH);
        let mut looked = false;
        loop {
            let (make, drop) = (makes.next().unwrap_or(&[]), drops.next().unwrap_or(&[]));
            if make.is_empty() && drop.is_empty() {
                break;
            }
            if make.is_empty() && stop() {
                self.repair(&mut ours)?;
                return Ok(Outcome::Interrupted(finish(self, summary)));
            }
            let mark = Mark::Made {
                under: fingerprint(ours.aux.get(&self.group_id).map_or("", String::as_str)),
            }
            .format();
            let mut made = Vec::with_capacity(make.len());
            for &extent in make {
                if stop() {
                    // The repair names what this step made too.
                    self.repair(&mut ours)?;
                    summary.created += made.len();
                    return Ok(Outcome::Interrupted(finish(self, summary)));
                }
                match self.create(extent, &group.leader, &mark) {
                    Ok(id) => {
                        ours.aux.insert(id, mark.clone());
                        made.push(id);
                    }
                    Err(e) => {
                        self.undo(&mut ours, &made);
                        return Err(self.fail(&mut ours, e));
                    }
                }
            }
            summary.created += made.len();
            // Creating takes long enough for another updater of this group
            // (a second daemon, `dmstats update_filemap`) to slip in: look
            // again before overwriting its descriptor with ours the first
            // time.
            if !made.is_empty() && !looked {
                looked = true;
                match self.still_as_loaded(&group) {
                    Ok(None) => {}
                    Ok(Some(now)) => {
                        // Not ours to repair any more: take back what we
                        // added, but what the rival's descriptor names (a
                        // daemon started meanwhile adopts what it finds).
                        let named: BTreeSet<RegionId> = now
                            .values()
                            .filter_map(group::leading)
                            .flat_map(|d| d.members)
                            .collect();
                        made.retain(|id| !named.contains(id));
                        self.undo(&mut ours, &made);
                        return Err(EngineError::Raced(group.leader.id));
                    }
                    Err(e) => {
                        self.undo(&mut ours, &made);
                        return Err(self.fail(&mut ours, e));
                    }
                }
            }
            let carrier = match self.publish(&mut ours, &mut named, &made, drop) {
                Ok(carrier) => carrier,
                Err(e) => {
                    // The descriptor before the step still stands.
                    self.undo(&mut ours, &made);
                    return Err(self.fail(&mut ours, e));
                }
            };
            if let Err(e) = self.drop_batch(&mut ours, &named, drop, carrier) {
                return Err(self.fail(&mut ours, e));
            }
            summary.deleted += drop.len();
        }
        // Nothing to create or delete, yet the descriptor changes: missing
        // members, an old leader's copy, adopted regions.
        let done = self
            .publish(&mut ours, &mut named, &[], &[])
            .and_then(|_| self.strip_stale(&mut ours, &named));
        if let Err(e) = done {
            return Err(self.fail(&mut ours, e));
        }
        self.probe = self.probe_after(&group, listed);
        Ok(Outcome::Updated(finish(self, summary)))
    }

    /// Write the descriptor naming `named` with `made` and without `drop`
    /// (on its lowest id). First the list of `drop` goes on one of them,
    /// its carrier; when the leader itself leaves, it is the carrier, and
    /// its copy of the old descriptor is the proof until
    /// [`Engine::drop_batch`] replaces it with the list. Returns the carrier.
    fn publish(
        &mut self,
        ours: &mut Ours,
        named: &mut Vec<RegionId>,
        made: &[RegionId],
        drop: &[&Region],
    ) -> Result<Option<RegionId>, EngineError> {
        let mut next: Vec<RegionId> = named
            .iter()
            .chain(made)
            .filter(|id| !drop.iter().any(|r| r.id == **id))
            .copied()
            .collect();
        next.sort_unstable();
        next.dedup();
        let leader = self.group_id;
        let carrier = match drop.iter().find(|r| r.id == leader).or(drop.last()) {
            Some(r) if r.id != leader => {
                let mark = dropped_mark(&self.descriptor(ours, &next), drop);
                self.set_aux(ours, r.id, mark)?;
                Some(r.id)
            }
            other => other.map(|r| r.id),
        };
        self.write_descriptor(ours, &next)?;
        *named = next;
        for r in drop {
            self.ledger.doomed_member(r);
        }
        Ok(carrier)
    }

    /// After [`Engine::publish`]: strip an old leader that stays a member,
    /// give the old leader that leaves the list of the batch in place of
    /// its stale descriptor, then delete the batch: any other region still
    /// holding a descriptor first, the carrier of the list last.
    fn drop_batch(
        &mut self,
        ours: &mut Ours,
        named: &[RegionId],
        drop: &[&Region],
        carrier: Option<RegionId>,
    ) -> Result<(), EngineError> {
        self.strip_stale(ours, named)?;
        let Some(carrier) = carrier else {
            return Ok(());
        };
        let holds_descriptor = |ours: &Ours, id: RegionId| {
            ours.aux
                .get(&id)
                .is_some_and(|a| group::aux_names_itself(id, a))
        };
        if holds_descriptor(ours, carrier) {
            let mark = dropped_mark(&ours.aux[&self.group_id], drop);
            self.set_aux(ours, carrier, mark)?;
        }
        let mut order: Vec<RegionId> = drop
            .iter()
            .map(|r| r.id)
            .filter(|&id| id != carrier)
            .collect();
        order.sort_by_key(|&id| !holds_descriptor(ours, id));
        for id in order.into_iter().chain([carrier]) {
            self.delete(id)?;
            ours.aux.remove(&id);
        }
        Ok(())
    }

    /// Delete every region of the group (the file has no extents left),
    /// in batches as [`Engine::sync`] drops them, down to the lowest, which
    /// goes last with the descriptor.
    pub fn remove(&mut self) -> Result<Summary, EngineError> {
        self.remove_in(false).map(|(summary, _)| summary)
    }

    /// One step of [`Engine::remove`] from a fresh look: one batch of
    /// members, or the leader when the look shows it alone. Returns whether
    /// the group is gone. For `unmap`, which looks before every step so
    /// that members a daemon re-creates meanwhile go too.
    pub fn remove_step(&mut self) -> Result<(Summary, bool), EngineError> {
        self.remove_in(true)
    }

    /// Every batch of members and then the leader, or (`one_step`) the
    /// first batch only, if there is one.
    fn remove_in(&mut self, one_step: bool) -> Result<(Summary, bool), EngineError> {
        let sent = self.sent;
        let (group, adopted) = self.start()?;
        self.probe = None;
        let mut ours = Ours::of(&group, &adopted);
        let mut named: Vec<RegionId> = ours.aux.keys().copied().collect();
        let mut all: Vec<&Region> = group.members.iter().chain(&adopted).collect();
        all.sort_unstable_by_key(|r| r.id);
        let mut summary = Summary::default();
        let left = one_step && all.len() > 1;
        let steps = if one_step { 1 } else { usize::MAX };
        for drop in all[1..].chunks(BATCH).take(steps) {
            let done = self
                .publish(&mut ours, &mut named, &[], drop)
                .and_then(|carrier| self.drop_batch(&mut ours, &named, drop, carrier));
            if let Err(e) = done {
                return Err(self.fail(&mut ours, e));
            }
            summary.deleted += drop.len();
        }
        if left {
            return Ok((summary.sent_since(sent, self.sent), false));
        }
        let last = all[0].id;
        let done = self
            .publish(&mut ours, &mut named, &[], &[])
            .and_then(|_| self.strip_stale(&mut ours, &named))
            .and_then(|()| self.delete(last));
        if let Err(e) = done {
            return Err(self.fail(&mut ours, e));
        }
        ours.aux.remove(&last);
        summary.deleted += 1;
        Ok((summary.sent_since(sent, self.sent), true))
    }

    /// The sectors each of `ids` has counted (read and written), one
    /// `@stats_print` each: asked only when a fold is due.
    fn counters(&mut self, ids: &[RegionId]) -> Result<BTreeMap<RegionId, u64>, EngineError> {
        let mut out = BTreeMap::new();
        for &id in ids {
            // Every area: a region made by hand may have more than one.
            let msg = format!("@stats_print {id}");
            let reply = self.send(msg.clone())?;
            let sectors =
                stats::parse_print_sectors(&reply).ok_or(EngineError::BadReply { msg, reply })?;
            out.insert(id, sectors);
        }
        Ok(out)
    }

    fn create(
        &mut self,
        extent: Extent,
        leader: &Region,
        mark: &str,
    ) -> Result<RegionId, EngineError> {
        let msg = stats::msg_create(extent, leader, mark)?;
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
    /// them (a rival that moved the group's leader): `None` when so, the
    /// list that says otherwise when not.
    fn still_as_loaded(&mut self, group: &Group) -> Result<Option<List>, EngineError> {
        let now: List = group::by_id(self.list()?.0);
        let unchanged = now
            .get(&group.leader.id)
            .is_some_and(|l| l.aux_data == group.leader.aux_data)
            && group
                .members
                .iter()
                .all(|m| now.get(&m.id).is_some_and(|r| r.extent() == m.extent()));
        Ok((!unchanged || self.ledger.rival_claims(&now, group)).then_some(now))
    }

    /// One `@stats_list`, of the group's program once it is known to hold
    /// every member.
    fn list(&mut self) -> Result<(Vec<Region>, Vec<SkippedLine>), EngineError> {
        let filter = self.program_id.as_deref().filter(|_| self.filtered);
        let msg = stats::msg_list(filter)?;
        self.sent.lists += 1;
        let reply = self.send(msg)?;
        Ok(stats::parse_list(&reply))
    }

    fn exists(&mut self, id: RegionId) -> Result<bool, EngineError> {
        Ok(self.list()?.0.iter().any(|r| r.id == id))
    }

    fn set_aux(&mut self, ours: &mut Ours, id: RegionId, aux: String) -> Result<(), EngineError> {
        self.sent.set_aux += 1;
        self.send(stats::msg_set_aux(id, &aux)?)?;
        ours.aux.insert(id, aux);
        Ok(())
    }

    /// The descriptor text naming `set`, with the group's alias, user data
    /// and dialect.
    fn descriptor(&self, ours: &Ours, set: &[RegionId]) -> String {
        Descriptor {
            members: set.to_vec(),
            ..ours.template.clone()
        }
        .format()
    }

    /// Put the descriptor naming `set` on its lowest id, unless it is
    /// already there word for word. The group's id follows it.
    fn write_descriptor(&mut self, ours: &mut Ours, set: &[RegionId]) -> Result<(), EngineError> {
        let Some(&leader) = set.first() else {
            return Ok(());
        };
        let desc = self.descriptor(ours, set);
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

/// The list of a batch leaving the group with the descriptor `next`.
fn dropped_mark(next: &str, drop: &[&Region]) -> String {
    Mark::Dropped {
        under: fingerprint(next),
        regions: drop.iter().map(|r| (r.id, r.extent())).collect(),
    }
    .format()
}
