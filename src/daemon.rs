//! The loop: Scan -> Diff -> Apply -> Sleep, and why it ends.
//!
//! One cycle: look at the file (a cheap `fstat`; in path mode a re-open), and
//! only when inotify or the `fstat` fingerprint says it may have changed, scan
//! its extents with FIEMAP. When they differ from the ones last applied, bring
//! the group in line ([`Engine::sync`], which lists the group). Then the
//! idle check, whose cost follows the group's own size, not the device's:
//! every [`CHECK_INTERVAL`] the leader is probed ([`Engine::probe`], one
//! short message), and so are the group's members in turn, each once in
//! [`MEMBER_ROUND`] checks ([`Engine::probe_members`]); the group is listed
//! in full ([`Engine::load`]) when a probe sees a change, and otherwise
//! every [`FULL_CHECK_INTERVAL`] times the device's regions over the
//! group's ([`Daemon::list_interval`]), for what no probe can see: the
//! group ungrouped or its descriptor rewritten by another program. For
//! [`CONFIRM_WINDOW`] after an update that created regions, the check comes
//! each [`CONFIRM_INTERVAL`] and lists. Then sleep on inotify and the stop
//! signals, with no other wake-up.
//!
//! Owns: [`Daemon`], [`Exit`], the timing of updates and checks. Touches:
//! the group only through [`Engine`], the file only through [`Scanner`]
//! (tests drive the loop with the fake dm-stats and a fake file on a fake
//! clock); start-up checks are [`crate::cmd::start`]'s.

use std::time::{Duration, Instant};

pub(crate) mod source;
pub(crate) mod wait;

use crate::dmstats::Device;
use crate::engine::{Engine, EngineError, Outcome, Summary};
use crate::extent::Extent;
use crate::{debug, error, info, verbose, warn};
use source::{Look, Scanner, SourceError, Stamp};

/// At most two updates (and FIEMAP calls) a second, as C.
pub(crate) const UPDATE_INTERVAL: Duration = Duration::from_millis(500);
/// The group's leader is probed this often: a group deleted (its leader
/// with it) is noticed within 10 s (C: within a second). An idle daemon's
/// cost is its wake-ups, not what it sends at each (measured under
/// emulation: 40 daemons cost about the same with a 2 KiB or a 16 KiB
/// message buffer, and half as much at 10 s as at 5 s;
/// docs/measurements.md). Until the check sees it, a daemon whose group is
/// gone only reads.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Each member is probed once per round of this many checks (60 s), a few
/// members per check (`members / MEMBER_ROUND` on average, carried over
/// from check to check): a member deleted by another program is noticed
/// within 70 s, at a cost of one `@stats_print` per member per minute,
/// whatever else is on the device.
pub(crate) const MEMBER_ROUND: usize = 6;
/// The group is listed in full at least this often when it is all of the
/// device, to notice what no probe can: the group ungrouped, or its
/// descriptor rewritten, by another program (both change only the
/// leader's aux data, which only a list shows). A list costs in
/// proportion to every region it returns, so the interval grows with the regions the
/// last list returned over the group's own ([`Daemon::list_interval`]):
/// N daemons of M regions on one device then list M regions' worth every
/// 30 s each, not the device's. What a list finds late cannot lead an
/// update astray: every update lists first.
pub(crate) const FULL_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// The longest interval between full lists (60 x the shortest): an
/// ungroup by another program is noticed within 30 minutes, however many
/// other regions share the device. Past 60 regions on the device for each
/// of the group's, lists cost a little more than the group's share.
pub(crate) const FULL_CHECK_MAX: Duration = Duration::from_secs(30 * 60);
/// After an update of ours that created regions, the check lists the group
/// this long instead of probing it, every [`CONFIRM_INTERVAL`]: `dmstats
/// update_filemap` may have listed before that update and write, later, a
/// descriptor that leaves our new regions out, which only a list shows (the
/// probe does not see aux data) and only we can clear (the engine's
/// ledger). It writes within its own run, normally well under a second; a
/// later write is caught by the full check.
pub(crate) const CONFIRM_WINDOW: Duration = Duration::from_secs(5);
/// How often the check comes within [`CONFIRM_WINDOW`].
pub(crate) const CONFIRM_INTERVAL: Duration = Duration::from_secs(1);
/// While the file holds data in delayed allocation (no address yet), it is
/// scanned again after [`RESCAN_FIRST`], then twice as long each time up to
/// this (a FIEMAP without forced writeback is cheap): the group follows a
/// writeback that comes at once (an `fsync` right after the write, which
/// sends no event) within about 0.1 s, and a file always being written is
/// scanned about once a second.
pub(crate) const RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// The first wait of a rescan, see [`RESCAN_INTERVAL`].
pub(crate) const RESCAN_FIRST: Duration = Duration::from_millis(100);
/// After a failed update, the next try waits this long.
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Why the loop stopped with an error (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The file could not be looked at or scanned.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An update failed in a way a retry cannot mend (device gone).
    #[error("group {group}: {source}")]
    Fatal {
        group: u64,
        #[source]
        source: EngineError,
    },
}

/// Why the daemon ended normally (exit status 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    GroupRemoved,
    NoExtents,
    UnlinkedAndClosed,
    Absent,
    Stopped,
}

impl Exit {
    /// The log line; the first three are C's, word for word.
    pub fn message(self) -> &'static str {
        match self {
            Exit::GroupRemoved => "Filemap group removed: exiting.",
            Exit::NoExtents => "File contains no extents: exiting.",
            Exit::UnlinkedAndClosed => "File unlinked and closed: exiting.",
            Exit::Absent => "File gone from its path: exiting.",
            Exit::Stopped => "Stop signal received: exiting.",
        }
    }
}

/// What the loop did, for the verbose log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub cycles: u64,
    /// FIEMAP scans.
    pub scans: u64,
    /// Calls to [`Engine::sync`].
    pub syncs: u64,
    /// Calls to [`Engine::load`] by the check (a full list).
    pub loads: u64,
    /// Calls to [`Engine::probe`] (the check of the leader, every
    /// [`CHECK_INTERVAL`]).
    pub probes: u64,
    /// Members probed by [`Engine::probe_members`] (one message each at
    /// most; a round stops at the first change).
    pub member_probes: u64,
    /// Failed updates or checks that were retried.
    pub failures: u64,
}

pub struct Daemon<D: Device, S: Scanner> {
    pub group: Engine<D>,
    pub file: S,
    pub counters: Counters,
    /// The extents the group was last brought to; `None` when unknown.
    applied: Option<Vec<Extent>>,
    stamp: Option<Stamp>,
    /// The file may differ from `applied`: scan it when allowed.
    dirty: bool,
    /// No scan before this instant (the rate limit, or a retry's delay).
    not_before: Option<Instant>,
    /// When the group was last listed (a sync lists it too).
    listed: Option<Instant>,
    /// When the group was last checked, by a probe or a list.
    checked: Option<Instant>,
    /// Member probes earned and not yet sent, in 1/[`MEMBER_ROUND`] of a
    /// probe: each check earns one per member.
    credit: usize,
    /// When an update of ours last created regions (see [`CONFIRM_WINDOW`]).
    created: Option<Instant>,
    /// The next wait while data is in delayed allocation ([`RESCAN_FIRST`]
    /// doubling up to [`RESCAN_INTERVAL`]).
    rescan: Duration,
    /// When the group was last brought to a scan: messages go out at most
    /// once per [`UPDATE_INTERVAL`], whatever the rescans.
    synced: Option<Instant>,
}

impl<D: Device, S: Scanner> Daemon<D, S> {
    pub fn new(group: Engine<D>, file: S) -> Self {
        Daemon {
            group,
            file,
            counters: Counters::default(),
            applied: None,
            stamp: None,
            dirty: true,
            not_before: None,
            listed: None,
            checked: None,
            credit: 0,
            created: None,
            rescan: RESCAN_FIRST,
            synced: None,
        }
    }

    /// Run until an exit condition; `Err` only for what a retry cannot mend.
    pub fn run(&mut self, stop: &dyn Fn() -> bool) -> Result<Exit, DaemonError> {
        loop {
            if let Some(exit) = self.cycle(stop)? {
                match exit {
                    Exit::NoExtents | Exit::Absent => warn!("{}", exit.message()),
                    _ => info!("{}", exit.message()),
                }
                return Ok(exit);
            }
        }
    }

    /// One cycle: look, maybe scan and update, check the group, sleep.
    pub fn cycle(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<Exit>, DaemonError> {
        let exit = self.step(stop);
        for w in self.group.take_warnings() {
            warn!("{w}");
        }
        exit
    }

    fn step(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<Exit>, DaemonError> {
        self.counters.cycles += 1;
        if stop() {
            return Ok(Some(Exit::Stopped));
        }
        let stamp = match self.file.look(stop)? {
            Look::File(stamp) => stamp,
            _ if stop() => return Ok(Some(Exit::Stopped)),
            Look::UnlinkedAndClosed => return Ok(Some(Exit::UnlinkedAndClosed)),
            Look::Absent => return Ok(Some(Exit::Absent)),
        };
        if self.stamp != Some(stamp) {
            self.stamp = Some(stamp);
            self.dirty = true;
        }

        let now = self.file.now();
        if self.dirty && self.not_before.is_none_or(|t| now >= t) {
            if let Some(exit) = self.update(now, stop)? {
                return Ok(Some(exit));
            }
        }
        let now = self.file.now();
        if self
            .checked
            .is_none_or(|t| now >= t + self.check_interval(now))
        {
            if let Some(exit) = self.check(now)? {
                return Ok(Some(exit));
            }
        }

        let now = self.file.now();
        let mut until = self.checked.map_or(now, |t| t + self.check_interval(now));
        if self.dirty {
            until = until.min(self.not_before.unwrap_or(now));
        }
        let timeout = until.saturating_duration_since(now);
        debug!(
            "Waiting up to {} ms{}",
            timeout.as_millis(),
            if self.dirty { " (update pending)" } else { "" }
        );
        // While an update is already pending, more events change nothing:
        // sleep through them instead of waking for each.
        if self.file.wait(timeout, !self.dirty, stop)? {
            self.dirty = true;
        }
        Ok(None)
    }

    fn update(
        &mut self,
        now: Instant,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Exit>, DaemonError> {
        self.dirty = false;
        self.not_before = Some(now + UPDATE_INTERVAL);
        self.counters.scans += 1;
        let extents = match self.file.scan() {
            Ok(extents) => extents,
            Err(e) => {
                error!("Failed to read the file's extents: {e}");
                self.retry_later(now);
                return Ok(None);
            }
        };
        if self.file.unmapped() {
            debug!(
                "Data in delayed allocation: scanning again in {} ms",
                self.rescan.as_millis()
            );
            self.dirty = true;
            self.not_before = Some(now + self.rescan);
            self.rescan = (self.rescan * 2).min(RESCAN_INTERVAL);
            if extents.is_empty() {
                // Not an empty file: its data has no address yet.
                return Ok(None);
            }
        } else {
            self.rescan = RESCAN_FIRST;
        }
        if extents.is_empty() {
            return match self.group.remove() {
                Ok(summary) => {
                    verbose!(
                        "Removed group {}: {}",
                        self.group.group_id(),
                        describe(&summary)
                    );
                    Ok(Some(Exit::NoExtents))
                }
                Err(e) => self.failed(e, now),
            };
        }
        if self
            .applied
            .as_deref()
            .is_some_and(|a| same_set(a, &extents))
        {
            debug!("Extents unchanged ({})", extents.len());
            return Ok(None);
        }

        if let Some(next) = self.synced.map(|t| t + UPDATE_INTERVAL) {
            if now < next {
                // A rescan came sooner than the rate limit allows.
                self.dirty = true;
                self.not_before = Some(next);
                return Ok(None);
            }
        }
        let before = self.group.group_id();
        self.synced = Some(now);
        self.counters.syncs += 1;
        self.listed = Some(now);
        self.checked = Some(now);
        let outcome = match self.group.sync(&extents, stop) {
            Ok(outcome) => outcome,
            Err(e) => return self.failed(e, now),
        };
        let after = self.group.group_id();
        if after != before {
            // C's line, and like C a warning: the id dmstats printed is stale.
            warn!("group_id changed from {before} to {after}");
        }
        match outcome {
            Outcome::Unchanged => debug!("Group {after} already matches {} extents", extents.len()),
            Outcome::Updated(s) => {
                verbose!("Updated group {after}: {}", describe(&s));
                if s.created > 0 {
                    self.created = Some(now);
                }
            }
            Outcome::Interrupted(s) => {
                verbose!("Update of group {after} interrupted: {}", describe(&s));
                return Ok(Some(Exit::Stopped));
            }
        }
        // Sorted once here, so the full check compares without
        // copying; the group is a set of regions, so order carries nothing.
        let mut extents = extents;
        extents.sort_unstable();
        self.applied = Some(extents);
        Ok(None)
    }

    /// How long a full list of the group may wait:
    /// `FULL_CHECK_INTERVAL` times the regions the last list returned
    /// over the group's members, at most `FULL_CHECK_MAX`. One list per
    /// interval then costs about what 30 s of a group alone on its device
    /// would: an idle daemon's cost follows its own group.
    pub fn list_interval(&self) -> Duration {
        let members = self.group.probed_members().max(1);
        let ratio = self.group.listed_regions() / members;
        let max = FULL_CHECK_MAX.as_secs() / FULL_CHECK_INTERVAL.as_secs();
        FULL_CHECK_INTERVAL * ratio.clamp(1, max as usize) as u32
    }

    /// Whether an update of ours created regions less than
    /// [`CONFIRM_WINDOW`] ago.
    fn confirming(&self, now: Instant) -> bool {
        self.created.is_some_and(|t| now < t + CONFIRM_WINDOW)
    }

    /// [`CONFIRM_INTERVAL`] while confirming, else [`CHECK_INTERVAL`].
    fn check_interval(&self, now: Instant) -> Duration {
        if self.confirming(now) {
            CONFIRM_INTERVAL
        } else {
            CHECK_INTERVAL
        }
    }

    /// The check, every [`CHECK_INTERVAL`]: the group exists, and still
    /// holds what we applied (another program may have deleted a member).
    /// Probes of the leader and, in turn, of the members answer for the
    /// group in between full lists; any doubt (a region gone or changed, a
    /// failed probe) is settled by a list.
    fn check(&mut self, now: Instant) -> Result<Option<Exit>, DaemonError> {
        self.checked = Some(now);
        let confirming = self.confirming(now);
        if !confirming && self.listed.is_some_and(|t| now < t + self.list_interval()) {
            self.counters.probes += 1;
            let leader = self.group.group_id();
            match self.group.probe() {
                Ok(true) => {
                    self.credit += self.group.probed_members();
                    let due = self.credit / MEMBER_ROUND;
                    self.credit %= MEMBER_ROUND;
                    let before = self.group.messages();
                    let members = if due == 0 {
                        Ok(true)
                    } else {
                        self.group.probe_members(due)
                    };
                    self.counters.member_probes += (self.group.messages() - before) as u64;
                    match members {
                        Ok(true) => return Ok(None),
                        Ok(false) => debug!("A member of group {leader} changed: listing"),
                        Err(e) => debug!("Probe of a member of group {leader} failed ({e}): listing"),
                    }
                }
                Ok(false) => debug!(
                    "Leader of group {leader} changed, or regions we made not yet seen in it: listing"
                ),
                Err(e) => debug!("Probe of group {leader} failed ({e}): listing"),
            }
        }
        self.listed = Some(now);
        self.counters.loads += 1;
        let group = match self.group.load() {
            Ok(Some(group)) => group,
            Ok(None) => {
                // No update of ours follows: clear what only we knew of
                // (regions a rival's descriptor left out) before leaving.
                self.group.sweep();
                return Ok(Some(Exit::GroupRemoved));
            }
            Err(e) => return self.failed(e, now),
        };
        if group.missing.is_empty() && self.group.sweep_pending() {
            // Regions of ours outside the group: the next update deletes
            // them (the check only reads).
            self.applied = None;
            self.dirty = true;
        } else if !group.missing.is_empty() {
            // The engine's warning names them; the next update drops them.
            self.applied = None;
            self.dirty = true;
        } else if let Some(applied) = &self.applied {
            // The group is a tiling of the extents: it holds what we applied
            // when the diff has nothing to do.
            if !group.tiles(applied) {
                warn!(
                    "Group {} was changed by another program: updating it.",
                    self.group.group_id()
                );
                self.applied = None;
                self.dirty = true;
            }
        }
        Ok(None)
    }

    fn failed(&mut self, e: EngineError, now: Instant) -> Result<Option<Exit>, DaemonError> {
        let group = self.group.group_id();
        match e {
            EngineError::GroupGone(_) => Ok(Some(Exit::GroupRemoved)),
            e if e.is_fatal() => Err(DaemonError::Fatal { group, source: e }),
            e => {
                error!("Update of group {group} failed, retrying: {e}");
                self.retry_later(now);
                Ok(None)
            }
        }
    }

    fn retry_later(&mut self, now: Instant) {
        self.counters.failures += 1;
        // What a failed update left is not known exactly: re-apply next time.
        self.applied = None;
        self.dirty = true;
        self.not_before = Some(now + RETRY_INTERVAL);
    }
}

fn describe(s: &Summary) -> String {
    format!(
        "{} extents, {} kept, {} created, {} deleted ({} folded), {} messages, {} lists, {} set_aux",
        s.extents, s.kept, s.created, s.deleted, s.folded, s.messages, s.lists, s.set_aux
    )
}

/// Whether `extents` holds exactly the extents of `sorted` (which is sorted).
fn same_set(sorted: &[Extent], extents: &[Extent]) -> bool {
    if sorted.len() != extents.len() {
        return false;
    }
    if extents.is_sorted() {
        return sorted == extents;
    }
    let mut extents = extents.to_vec();
    extents.sort_unstable();
    sorted == extents
}
