//! The ledger of regions we created (or meant to delete), and what to do
//! about them: which descriptor is a rival's, which regions only we know of
//! and must delete. It decides; the engine sends.
//!
//! dm-stats has no compare-and-swap: two updaters of one group can each
//! publish a descriptor without the other's new regions, and only their
//! creator knows them. Seeing our descriptor stand proves nothing either:
//! `dmstats update_filemap` lists once, then asks FIEMAP (which waits for
//! the file's writeback), creates, and writes the descriptor it computed
//! from that one list, however late; it leaves out whatever we made after
//! its list (VM `race_held_update`). So the ledger remembers every region
//! we made until it is deleted or its id is taken by someone else's region.
//!
//! Owns: [`Ledger`], [`Made`]. Touches: no device; its inputs are lists
//! read by the engine ([`crate::plan::group`]) and the engine's own steps.

use std::collections::{BTreeMap, BTreeSet};

use crate::dmstats::{Region, RegionId, Text};
use crate::extent::Extent;
use crate::plan::group::{self, Group, List};

/// A region of ours as we made or last saw it. The kernel hands a freed id
/// out again, so an id alone may name someone else's region by the next
/// look: the extent and program id must match too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Made {
    pub extent: Extent,
    pub program_id: Text,
    /// Left out of our descriptor to be deleted: a descriptor it still
    /// holds is our own stale copy.
    pub doomed: bool,
}

impl Made {
    fn is(&self, r: &Region) -> bool {
        r.extent() == self.extent && r.program_id == self.program_id
    }
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Descriptors outside the group that named its members when the
    /// engine first looked (see [`group::claims`]): junk that was there
    /// before us, not a rival.
    old_claims: Vec<(RegionId, Text)>,
    /// Regions we created or meant to delete and have not seen in the
    /// group since.
    made: BTreeMap<RegionId, Made>,
    /// Regions we created and have seen in the group since, while they
    /// exist: still ours, as a rival's late descriptor may leave them out
    /// (see `orphans_in`). Their extent only (24 bytes a region, beside
    /// `known`'s 8); their program is `program`.
    seen: BTreeMap<RegionId, Extent>,
    /// The program id we create regions with (the group leader's).
    program: Text,
    /// The members as last listed or written, to recognise the group in a
    /// rival's descriptor after ours is gone.
    known: BTreeSet<RegionId>,
    /// Decided by the last look: regions of ours that no descriptor names
    /// while the group lives on. The next update deletes them.
    orphans: Vec<RegionId>,
}

impl Ledger {
    /// The first look at the group: what claims it now was there before us.
    pub(crate) fn first_look(&mut self, list: &List, group: &Group) {
        self.old_claims = group::claims(list, group);
    }

    /// Take in one list; `group` is what [`group::read_group`] found at our
    /// id (`None`: no group there). Returns whether the group is still
    /// ours: false when it is gone or a rival's new descriptor claims it.
    /// Either way, [`Ledger::orphans`] then names what to delete.
    pub(crate) fn look(&mut self, list: &List, group: Option<&Group>) -> bool {
        let Some(group) = group else {
            self.orphans = self.orphans_in(list, None, false);
            return false;
        };
        // Another updater moved the group to a new leader of its own: what
        // we hold is a stale copy, no longer the group.
        if self.rival_claims(list, group) {
            // Our descriptor lost: what only it names is ours to clear.
            self.orphans = self.orphans_in(list, Some(group.leader.id), true);
            return false;
        }
        // Seen in the group: confirmed, but still ours (see orphans_in). A
        // region we meant to delete that a descriptor names again is the
        // group's.
        for m in &group.members {
            match self.made.remove(&m.id) {
                Some(made) if !made.doomed => {
                    self.seen.insert(m.id, made.extent);
                }
                _ => {}
            }
        }
        self.orphans = self.orphans_in(list, None, true);
        self.known = group.members.iter().map(|m| m.id).collect();
        true
    }

    /// Take in a list in which the group's leader region is gone altogether:
    /// the group was deleted (`dmstats delete --group`, `dmfilemapd unmap`),
    /// not ungrouped. What we made since our last look that no descriptor
    /// names (an update racing the deletion re-created members) belongs to
    /// the deleted group, and nobody else knows it: ours to delete.
    pub(crate) fn look_deleted(&mut self, list: &List) {
        self.orphans = self.orphans_in(list, None, true);
    }

    /// Regions of ours the last look found outside every descriptor while
    /// the group lives on: to be deleted.
    pub(crate) fn orphans(&self) -> &[RegionId] {
        &self.orphans
    }

    /// The orphans, handed over for deletion.
    pub(crate) fn take_orphans(&mut self) -> Vec<RegionId> {
        std::mem::take(&mut self.orphans)
    }

    /// Whether a new descriptor outside the group claims its members. A
    /// descriptor left on a region we meant to delete (an old leader whose
    /// delete and repair failed) is our own stale copy, not a rival's.
    pub(crate) fn rival_claims(&self, list: &List, group: &Group) -> bool {
        group::claims(list, group)
            .iter()
            .filter(|c| !self.old_claims.contains(c))
            .any(|(id, _)| !self.doomed(list, *id))
    }

    /// Whether some region we made (or meant to delete) has not been seen
    /// in the group by a list since: a rival's descriptor written over ours
    /// may have left it out, and only a list can tell (a probe of the
    /// leader does not see aux data).
    pub(crate) fn unconfirmed(&self) -> bool {
        !self.made.is_empty()
    }

    /// The extent of a region we made (or meant to delete).
    pub(crate) fn made_extent(&self, id: RegionId) -> Option<Extent> {
        self.made
            .get(&id)
            .map(|m| m.extent)
            .or_else(|| self.seen.get(&id).copied())
    }

    /// We created `id` on `extent` for `program_id`.
    pub(crate) fn created(&mut self, id: RegionId, extent: Extent, program_id: impl AsRef<[u8]>) {
        let made = Made {
            extent,
            program_id: program_id.as_ref().into(),
            doomed: false,
        };
        if self.program.as_bytes() != program_id.as_ref() {
            self.program = program_id.as_ref().into();
        }
        self.seen.remove(&id);
        self.made.insert(id, made);
    }

    /// `m` is out of our descriptor, to be deleted: until it is, only we
    /// know it.
    pub(crate) fn doomed_member(&mut self, m: &Region) {
        let made = Made {
            extent: m.extent(),
            program_id: m.program_id.clone(),
            doomed: true,
        };
        self.seen.remove(&m.id);
        self.made.insert(m.id, made);
    }

    /// `id` is gone (we deleted it, or it was already deleted).
    pub(crate) fn deleted(&mut self, id: RegionId) {
        self.made.remove(&id);
        self.seen.remove(&id);
    }

    /// Our descriptor now names `set`.
    pub(crate) fn published(&mut self, set: &[RegionId]) {
        self.known = set.iter().copied().collect();
    }

    fn doomed(&self, list: &List, id: RegionId) -> bool {
        let made = self.made.get(&id);
        made.is_some_and(|m| m.doomed && list.get(&id).is_some_and(|r| m.is(r)))
    }

    /// The regions we made that no descriptor names while the group lives
    /// on (in our descriptor, or a rival's that replaced it). `lost` is our
    /// own leader when a rival's descriptor superseded its one. When no
    /// group is left (`dmstats ungroup`), what remains is the user's.
    ///
    /// One we made and saw in the group is an orphan only on blocks that a
    /// region named by a descriptor also covers: a rival that wrote its
    /// descriptor from a list older than ours mapped those blocks again and
    /// left ours out. One on blocks no descriptor covers was taken out by
    /// hand (`dmstats ungroup`, then `group` of the others): the user's.
    fn orphans_in(
        &mut self,
        list: &List,
        lost: Option<RegionId>,
        group_lives: bool,
    ) -> Vec<RegionId> {
        // A region at one of our ids but on another extent or of another
        // program took the id after ours was deleted: it is not ours.
        self.made
            .retain(|id, made| list.get(id).is_some_and(|r| made.is(r)));
        let program = &self.program;
        self.seen.retain(|id, e| {
            list.get(id)
                .is_some_and(|r| r.extent() == *e && &r.program_id == program)
        });
        if self.made.is_empty() && self.seen.is_empty() {
            return Vec::new();
        }
        let named: BTreeSet<RegionId> = list
            .values()
            .filter(|r| Some(r.id) != lost)
            .filter(|r| !self.made.get(&r.id).is_some_and(|m| m.doomed))
            .filter_map(group::leading)
            .flat_map(|d| d.members)
            .collect();
        let lives = group_lives
            || self
                .made
                .keys()
                .chain(self.seen.keys())
                .chain(&self.known)
                .any(|id| named.contains(id));
        if !lives {
            return Vec::new();
        }
        let mut orphans: Vec<RegionId> = self
            .made
            .keys()
            .filter(|id| !named.contains(id))
            .copied()
            .collect();
        let left_out: Vec<(&RegionId, &Extent)> = self
            .seen
            .iter()
            .filter(|(id, _)| !named.contains(id))
            .collect();
        if !left_out.is_empty() {
            let covered: Vec<Extent> = named
                .iter()
                .filter_map(|id| list.get(id))
                .map(Region::extent)
                .collect();
            orphans.extend(
                left_out
                    .into_iter()
                    .filter(|(_, &e)| covered.iter().any(|&c| overlap(c, e)))
                    .map(|(&id, _)| id),
            );
            orphans.sort_unstable();
        }
        orphans
    }
}

/// Whether two extents share a sector.
fn overlap(a: Extent, b: Extent) -> bool {
    a.start < b.start.saturating_add(b.len) && b.start < a.start.saturating_add(a.len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmstats::parse_list;
    use crate::plan::group::{by_id, read_group};

    fn list(text: &str) -> List {
        by_id(parse_list(text).0)
    }

    fn ext(start: u64) -> Extent {
        Extent { start, len: 8 }
    }

    /// Group 1 of regions 1-2; we create region 3 (at sector 24).
    const BASE: &str = "1: 8+8 8 dmstats DMS_GROUP=f:1-2#-\n2: 16+8 8 dmstats -\n";

    /// A ledger that saw BASE and then made region 3.
    fn after_create() -> Ledger {
        let mut ledger = Ledger::default();
        let start = list(BASE);
        let g = read_group(1, &start).unwrap();
        ledger.first_look(&start, &g);
        assert!(ledger.look(&start, Some(&g)));
        ledger.created(3, ext(24), "dmstats");
        ledger
    }

    #[test]
    fn what_a_look_decides() {
        // (regions besides 1-2, still ours?, orphans)
        let cases: &[(&str, bool, &[RegionId])] = &[
            // Left outside a live group: ours to delete.
            ("3: 24+8 8 dmstats -\n", true, &[3]),
            // Its id reused on another extent or by another program: not ours.
            ("3: 99+8 8 dmstats -\n", true, &[]),
            ("3: 24+8 8 other -\n", true, &[]),
            // A rival's descriptor at 0 took the group and names 3: kept.
            (
                "0: 0+8 8 dmstats DMS_GROUP=f:0-3#-\n3: 24+8 8 dmstats -\n",
                false,
                &[],
            ),
            // A rival's descriptor without 3: ours to delete.
            (
                "0: 0+8 8 dmstats DMS_GROUP=f:0-2#-\n3: 24+8 8 dmstats -\n",
                false,
                &[3],
            ),
        ];
        for (extra, ours, orphans) in cases {
            let mut ledger = after_create();
            let now = list(&format!("{BASE}{extra}"));
            let g = read_group(1, &now).unwrap();
            assert_eq!(ledger.look(&now, Some(&g)), *ours, "{extra}");
            assert_eq!(ledger.orphans(), *orphans, "{extra}");
        }
        // Published: seen in the group, forgotten for good.
        let mut ledger = after_create();
        let now =
            list("1: 8+8 8 dmstats DMS_GROUP=f:1-3#-\n2: 16+8 8 dmstats -\n3: 24+8 8 dmstats -\n");
        assert!(ledger.look(&now, Some(&read_group(1, &now).unwrap())));
        let dropped = list(&format!("{BASE}3: 24+8 8 dmstats -\n"));
        assert!(ledger.look(&dropped, Some(&read_group(1, &dropped).unwrap())));
        assert!(ledger.orphans().is_empty(), "a user regrouped it out");
        // Seen in the group, then left out by a rival that listed before we
        // made it and mapped its blocks again (dmstats update_filemap's
        // late write): ours to delete, as is one seen by no list yet.
        for seen in [true, false] {
            let mut ledger = after_create();
            if seen {
                assert!(ledger.look(&now, Some(&read_group(1, &now).unwrap())));
                assert!(!ledger.unconfirmed());
            }
            let stale = list(
                "1: 8+8 8 dmstats DMS_GROUP=f:1-2,4#-\n2: 16+8 8 dmstats -\n\
                 3: 24+8 8 dmstats -\n4: 20+8 8 dmstats -\n",
            );
            assert!(ledger.look(&stale, Some(&read_group(1, &stale).unwrap())));
            assert_eq!(ledger.orphans(), [3], "seen {seen}");
        }
    }

    #[test]
    fn after_the_group_is_deleted_what_we_made_is_ours_to_delete() {
        let mut ledger = after_create();
        // The leader and member 2 deleted, our new region 3 still there.
        ledger.look_deleted(&list("0: 0+8 8 other -\n3: 24+8 8 dmstats -\n"));
        assert_eq!(ledger.orphans(), [3]);
        // Named by another group's descriptor (a rival moved it there): kept.
        let mut ledger = after_create();
        ledger.look_deleted(&list(
            "0: 0+8 8 dmstats DMS_GROUP=f:0,3#-\n3: 24+8 8 dmstats -\n",
        ));
        assert!(ledger.orphans().is_empty());
    }

    #[test]
    fn after_ungroup_nothing_is_ours() {
        let mut ledger = after_create();
        let now = list("1: 8+8 8 dmstats -\n2: 16+8 8 dmstats -\n3: 24+8 8 dmstats -\n");
        assert!(!ledger.look(&now, None));
        assert!(ledger.orphans().is_empty());
    }
}
