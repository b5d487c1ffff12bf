//! The apply order: [`Engine::sync`] and [`Engine::remove`] change the
//! group in steps, each creating up to [`BATCH`] regions, writing the
//! descriptor naming them and without up to [`BATCH`] regions no longer
//! wanted, then deleting those. So at most [`BATCH`] regions of ours are
//! outside the group at any instant, and each carries a mark
//! ([`crate::engine::mark`]) from which the next daemon, should this one be killed
//! there, settles them. `map` starts a new group with [`Engine::found`]
//! (its first region, then the descriptor naming it) and grows it with
//! [`Engine::sync`].
//!
//! A failed create or descriptor write takes back the step's new regions;
//! any other failure, or a stop request, ends with a repair: one
//! descriptor naming every region of ours that still exists. When the
//! repair fails too, [`EngineError::Unrepaired`] says so and the next
//! update picks up what it can see.

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, EngineError, Outcome, Summary, Warning};
use crate::dmstats::Device;
use crate::dmstats::{self, Descriptor, Region, RegionId, Text};
use crate::engine::mark::{fingerprint, first_mark, Mark};
use crate::extent::Extent;
use crate::plan::diff::{self, Member};
use crate::plan::fold;
use crate::plan::group::{self, Group};

/// The step: the most regions an update creates, or drops, at a time, and
/// so the most of ours outside the group at any instant. One descriptor
/// write per step, so a bigger step costs fewer messages but strands more
/// regions for the next daemon to settle after a kill.
pub const BATCH: usize = 32;

/// What the engine knows of the group's regions while it changes them: the
/// aux data of every region of ours that exists, as last listed or written.
/// A failed message changes nothing in dm-stats, so this stays exact.
struct Ours {
    aux: BTreeMap<RegionId, Text>,
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
    /// one batch left outside by those marks (`engine::mark`).
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
            self.warnings.push(Warning::MembersGone {
                group: group.id(),
                regions: group.missing.clone(),
            });
        }
        if stale {
            self.warnings
                .push(Warning::StaleDescriptor { group: group.id() });
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
                under: fingerprint(ours.aux.get(&self.group_id).map_or(&[][..], |a| a)),
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
                match self.still_as_loaded(&group, make) {
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

    /// A new group's first step, before [`Engine::sync`] grows it: the
    /// region over `first` (with `template`'s program id, precision and
    /// histogram), then `descriptor` naming it alone, a group of one. No
    /// descriptor stands while the region is made, so it carries the mark
    /// of none (`first_mark`): a kill between the two messages leaves it
    /// alone, outside every group and recognisable. A failed descriptor
    /// write deletes it again; when that fails too, the error is
    /// [`EngineError::Unrepaired`] and [`Engine::group_id`] names it.
    pub(super) fn found(
        &mut self,
        first: Extent,
        template: &Region,
        descriptor: Descriptor,
    ) -> Result<(), EngineError> {
        let mark = first_mark();
        let id = self.create(first, template, &mark)?;
        self.group_id = id;
        // This engine made the group: no stopped update of it left
        // anything outside it to settle.
        self.settled = true;
        let mut ours = Ours {
            aux: BTreeMap::from([(id, mark)]),
            template: descriptor,
        };
        if let Err(cause) = self.write_descriptor(&mut ours, &[id]) {
            return Err(match self.delete(id) {
                Ok(()) => cause,
                Err(repair) => EngineError::Unrepaired {
                    cause: Box::new(cause),
                    repair: Box::new(repair),
                },
            });
        }
        Ok(())
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

    fn set_aux(&mut self, ours: &mut Ours, id: RegionId, aux: Text) -> Result<(), EngineError> {
        self.sent.set_aux += 1;
        self.send(dmstats::msg_set_aux(id, &aux)?)?;
        ours.aux.insert(id, aux);
        Ok(())
    }

    /// The descriptor text naming `set`, with the group's alias, user data
    /// and dialect.
    fn descriptor(&self, ours: &Ours, set: &[RegionId]) -> Text {
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
            Text::from("-")
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
fn dropped_mark(next: &[u8], drop: &[&Region]) -> Text {
    Mark::Dropped {
        under: fingerprint(next),
        regions: drop.iter().map(|r| (r.id, r.extent())).collect(),
    }
    .format()
}
