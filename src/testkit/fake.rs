//! An in-memory dm-stats with the kernel's rules (lowest free id, ENOENT for a
//! missing id, EINVAL for bad syntax) and a fault plan, for tests and fuzzing.
//!
//! Messages are bytes, split into arguments the way the kernel's
//! `dm_split_args` does (every byte its Latin-1 ctype table calls a space
//! separates, a backslash makes the next byte literal) and
//! checked the way `dm-stats.c` checks them, so a message the fake accepts is
//! one the kernel accepts, and a list it prints is byte for byte a list the
//! kernel would print.
//!
//! Feature `testkit` only. Owns: [`FakeDm`], the fault plan. Touches: the
//! daemon's code never; it stands in for [`crate::sys::dm::DmDevice`] behind
//! [`crate::dmstats::Device`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rustix::io::Errno;

use crate::dmstats::{self, split_args, Descriptor, Dialect, Region, RegionId, Text};
use crate::dmstats::{Device, DeviceError};
use crate::extent::Extent;

/// The message kinds a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    List,
    Create,
    Delete,
    SetAux,
    Print,
    /// Any message, counted across kinds.
    Any,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Any,
        Kind::List,
        Kind::Create,
        Kind::Delete,
        Kind::SetAux,
        Kind::Print,
    ];
}

/// Fail the `nth` (1-based) call of `kind` with `errno`, without effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: Kind,
    pub nth: usize,
    pub errno: Errno,
}

/// The errnos the fault plan draws from: what dm-stats and the ioctl layer
/// can answer to a message.
pub const FAULT_ERRNOS: [Errno; 5] = [
    Errno::INVAL,
    Errno::NOENT,
    Errno::NOMEM,
    Errno::IO,
    Errno::BUSY,
];

/// Program id `dmstats` uses for the regions of `dmstats create --filemap`.
pub const DMSTATS_PROGRAM: &str = "dmstats";

/// The kernel's ids are `int`s.
const MAX_ID: u64 = i32::MAX as u64;

#[derive(Clone, Debug)]
pub struct FakeDm {
    pub regions: BTreeMap<RegionId, Region>,
    /// Every message received, in order, failed ones included.
    pub log: Vec<Text>,
    pub faults: Vec<Fault>,
    /// Creating a region beyond this many fails with ENOMEM, as dm-stats
    /// does when its memory cap is reached.
    pub region_limit: Option<usize>,
    /// Size of the device in sectors, for the `-` range.
    pub dev_sectors: u64,
    /// Reads a region has counted, as `@stats_print` shows them (tests set
    /// them; a deleted region's go with it).
    pub reads: BTreeMap<RegionId, u64>,
    /// Messages received so far, indexed by [`Kind`].
    calls: [usize; Kind::ALL.len()],
}

impl Default for FakeDm {
    fn default() -> Self {
        FakeDm {
            regions: BTreeMap::new(),
            log: Vec::new(),
            faults: Vec::new(),
            region_limit: None,
            dev_sectors: 1 << 21,
            reads: BTreeMap::new(),
            calls: [0; Kind::ALL.len()],
        }
    }
}

impl FakeDm {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a fault to the plan.
    pub fn fail(&mut self, kind: Kind, nth: usize, errno: Errno) {
        self.faults.push(Fault { kind, nth, errno });
    }

    /// Number of messages of `kind` received so far.
    pub fn calls(&self, kind: Kind) -> usize {
        self.calls[kind as usize]
    }

    /// Forget the fault plan and restart the call counters (not the log).
    pub fn reset_faults(&mut self) {
        self.faults.clear();
        self.calls = [0; Kind::ALL.len()];
    }

    /// The kernel hands out the lowest id not in use.
    pub fn lowest_free_id(&self) -> RegionId {
        let mut id = 0;
        for &used in self.regions.keys() {
            if used != id {
                break;
            }
            id += 1;
        }
        id
    }

    /// Put a region in place as is, at its own id: for hostile fixtures the
    /// message syntax could not express.
    pub fn insert(&mut self, region: Region) {
        self.regions.insert(region.id, region);
    }

    /// Create a region the way another program would, bypassing the log
    /// and the fault plan.
    pub fn seed(
        &mut self,
        extent: Extent,
        program_id: impl AsRef<[u8]>,
        aux_data: impl AsRef<[u8]>,
    ) -> RegionId {
        let id = self.lowest_free_id();
        self.regions.insert(
            id,
            region(id, extent, program_id.as_ref(), aux_data.as_ref()),
        );
        id
    }

    /// A group as `dmstats create --filemap` leaves it: one region per
    /// extent in file order, program id `dmstats`, the descriptor on the
    /// lowest id. Returns the group id.
    pub fn filemap_group(
        &mut self,
        extents: &[Extent],
        alias: impl AsRef<[u8]>,
        dialect: Dialect,
    ) -> RegionId {
        self.filemap_group_with(extents, alias, dialect, "", false, &[])
    }

    /// As [`filemap_group`](Self::filemap_group), with user data after `#`
    /// and `--precise` / `--bounds` options on every region.
    pub fn filemap_group_with(
        &mut self,
        extents: &[Extent],
        alias: impl AsRef<[u8]>,
        dialect: Dialect,
        user: impl AsRef<[u8]>,
        precise: bool,
        histogram: &[u64],
    ) -> RegionId {
        assert!(
            !extents.is_empty(),
            "a filemap group has at least one region"
        );
        let mut members: Vec<RegionId> = extents
            .iter()
            .map(|&e| {
                let id = self.seed(e, DMSTATS_PROGRAM, "-");
                let r = self.regions.get_mut(&id).unwrap();
                r.precise = precise;
                r.histogram = histogram.to_vec();
                id
            })
            .collect();
        members.sort_unstable();
        let leader = members[0];
        let desc = Descriptor {
            alias: alias.as_ref().into(),
            members,
            user: user.as_ref().into(),
            dialect,
        };
        self.regions.get_mut(&leader).unwrap().aux_data = desc.format();
        leader
    }

    /// The reply the kernel gives to `@stats_list [program]`.
    pub fn list_reply(&self, program: Option<&[u8]>) -> Text {
        let mut out = Text::new();
        for r in self.regions.values() {
            if program.is_none_or(|p| p == r.program_id) {
                out.push_str(r.to_line());
                out.push(b'\n');
            }
        }
        out
    }

    /// Count a message of `kind` and say whether the plan fails it.
    fn next_fault(&mut self, kind: Kind) -> Option<Errno> {
        self.calls[Kind::Any as usize] += 1;
        if kind != Kind::Any {
            self.calls[kind as usize] += 1;
        }
        let calls = &self.calls;
        self.faults
            .iter()
            .find(|f| [kind, Kind::Any].contains(&f.kind) && f.nth == calls[f.kind as usize])
            .map(|f| f.errno)
    }

    fn handle(&mut self, msg: &[u8]) -> Result<Text, Errno> {
        let args = split_args(msg);
        let Some(verb) = args.first() else {
            return Err(Errno::INVAL);
        };
        let kind = match &verb.to_ascii_lowercase()[..] {
            b"@stats_list" => Kind::List,
            b"@stats_create" => Kind::Create,
            b"@stats_delete" => Kind::Delete,
            b"@stats_set_aux" => Kind::SetAux,
            b"@stats_print" => Kind::Print,
            // A linear target takes no other message.
            _ => return Err(Errno::INVAL),
        };
        if let Some(errno) = self.next_fault(kind) {
            return Err(errno);
        }
        match kind {
            Kind::List => self.list(&args),
            Kind::Create => self.create(&args),
            Kind::Delete => self.delete(&args),
            Kind::Print => self.print(&args),
            _ => self.set_aux(&args),
        }
    }

    /// `@stats_print <id> [<first> <count>]`: one line per area, counters
    /// zero but the reads tests set ([`FakeDm::reads`]), the length printed as the step
    /// even for a last area cut short, as the kernel does.
    fn print(&self, args: &[Text]) -> Result<Text, Errno> {
        let (id, first, count) = match args {
            [_, id] => (id, 0, u64::MAX),
            [_, id, first, count] => {
                let arg = |a: &Text| {
                    if a == "-" {
                        Ok(None)
                    } else {
                        number(a).map(Some)
                    }
                };
                (
                    id,
                    arg(first)?.unwrap_or(0),
                    arg(count)?.unwrap_or(u64::MAX),
                )
            }
            _ => return Err(Errno::INVAL),
        };
        let r = self.regions.get(&region_id(id)?).ok_or(Errno::NOENT)?;
        let areas = r.len.div_ceil(r.step);
        let end = first.saturating_add(count).min(areas);
        let reads = self.reads.get(&r.id).copied().unwrap_or(0);
        let mut out = String::new();
        for area in first.min(end)..end {
            out.push_str(&format!("{}+{}", r.start + area * r.step, r.step));
            // A region's reads (set by tests) all land in its first area.
            let n = if area == 0 { reads } else { 0 };
            out.push_str(&format!(" {n} 0 {}", n * 8));
            out.push_str(&" 0".repeat(10));
            if !r.histogram.is_empty() {
                out.push(' ');
                out.push_str(&vec!["0"; r.histogram.len() + 1].join(":"));
            }
            out.push('\n');
        }
        Ok(out.into())
    }

    fn list(&self, args: &[Text]) -> Result<Text, Errno> {
        match args.len() {
            1 => Ok(self.list_reply(None)),
            2 => Ok(self.list_reply(Some(&args[1]))),
            _ => Err(Errno::INVAL),
        }
    }

    fn create(&mut self, args: &[Text]) -> Result<Text, Errno> {
        if args.len() < 3 {
            return Err(Errno::INVAL);
        }
        let (start, len) = if args[1] == "-" {
            (0, self.dev_sectors.max(1))
        } else {
            let plus = args[1]
                .iter()
                .position(|&b| b == b'+')
                .ok_or(Errno::INVAL)?;
            (number(&args[1][..plus])?, number(&args[1][plus + 1..])?)
        };
        if len == 0 || start.checked_add(len).is_none() {
            return Err(Errno::INVAL);
        }
        let step = match args[2].strip_prefix(b"/") {
            Some(d) => {
                let d = number(d)?;
                if d == 0 || d > u64::from(u32::MAX) {
                    return Err(Errno::INVAL);
                }
                len.div_ceil(d).max(1)
            }
            None => match number(&args[2])? {
                0 => return Err(Errno::INVAL),
                s => s,
            },
        };
        let mut rest = &args[3..];
        let (mut precise, mut histogram) = (false, Vec::new());
        // A number where the program id may stand is an option count.
        if let Some(n) = rest.first().and_then(|a| number(a).ok()) {
            let n = usize::try_from(n).map_err(|_| Errno::INVAL)?;
            let opts = rest.get(1..=n).ok_or(Errno::INVAL)?;
            for o in opts {
                let lower = o.to_ascii_lowercase();
                if lower == b"precise_timestamps" {
                    precise = true;
                } else if let Some(b) = lower.strip_prefix(b"histogram:") {
                    if !histogram.is_empty() {
                        return Err(Errno::INVAL);
                    }
                    histogram = parse_bounds(b)?;
                } else {
                    return Err(Errno::INVAL);
                }
            }
            rest = &rest[n + 1..];
        }
        let (program_id, aux_data): (&[u8], &[u8]) = match rest {
            [] => (b"-", b"-"),
            [p] => (p, b"-"),
            [p, a] => (p, a),
            _ => return Err(Errno::INVAL),
        };
        if self.region_limit.is_some_and(|l| self.regions.len() >= l) {
            return Err(Errno::NOMEM);
        }
        let id = self.lowest_free_id();
        if id > MAX_ID {
            return Err(Errno::NFILE);
        }
        let mut r = region(id, Extent { start, len }, program_id, aux_data);
        r.step = step;
        r.precise = precise;
        r.histogram = histogram;
        self.regions.insert(id, r);
        Ok(id.to_string().into())
    }

    fn delete(&mut self, args: &[Text]) -> Result<Text, Errno> {
        let [_, id] = args else {
            return Err(Errno::INVAL);
        };
        let id = region_id(id)?;
        self.regions.remove(&id).ok_or(Errno::NOENT)?;
        self.reads.remove(&id);
        Ok(Text::new())
    }

    fn set_aux(&mut self, args: &[Text]) -> Result<Text, Errno> {
        let [_, id, aux] = args else {
            return Err(Errno::INVAL);
        };
        let id = region_id(id)?;
        let r = self.regions.get_mut(&id).ok_or(Errno::NOENT)?;
        r.aux_data = aux.clone();
        Ok(Text::new())
    }
}

fn region(id: RegionId, extent: Extent, program_id: &[u8], aux_data: &[u8]) -> Region {
    Region {
        id,
        start: extent.start,
        len: extent.len,
        step: extent.len,
        program_id: program_id.into(),
        aux_data: aux_data.into(),
        precise: false,
        histogram: Vec::new(),
    }
}

/// Decimal digits only: the kernel's `%llu` takes no sign and no space here
/// (the splitter already removed the spaces).
fn number(s: &[u8]) -> Result<u64, Errno> {
    dmstats::number(s).ok_or(Errno::INVAL)
}

fn region_id(s: &[u8]) -> Result<RegionId, Errno> {
    match number(s)? {
        id if id <= MAX_ID => Ok(id),
        _ => Err(Errno::INVAL),
    }
}

/// Strictly ascending, non-zero boundaries, comma separated.
fn parse_bounds(s: &[u8]) -> Result<Vec<u64>, Errno> {
    let mut last = 0;
    s.split(|&b| b == b',')
        .map(|b| {
            let b = number(b)?;
            if b <= last {
                return Err(Errno::INVAL);
            }
            last = b;
            Ok(b)
        })
        .collect()
}

impl Device for FakeDm {
    fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError> {
        self.log.push(msg.into());
        self.handle(msg).map_err(DeviceError::Os)
    }
}

/// Several engines (or an engine and a test playing another program) on
/// one device.
impl Device for Rc<RefCell<FakeDm>> {
    fn message(&mut self, msg: &[u8]) -> Result<Text, DeviceError> {
        self.borrow_mut().message(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(dm: &mut FakeDm, msg: &str) -> Result<Text, Errno> {
        dm.message(msg.as_bytes()).map_err(|e| match e {
            DeviceError::Os(e) => e,
            other => panic!("{other}"),
        })
    }

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(
            split_args("  @a  b\\ c\td\\\\e\\"),
            vec!["@a", "b c", "d\\e\\"]
        );
        assert_eq!(split_args(""), Vec::<String>::new());
        assert_eq!(split_args("x\\\ty"), vec!["x\ty"]);
    }

    #[test]
    fn lowest_free_id_and_list_format() {
        let mut dm = FakeDm::new();
        assert_eq!(send(&mut dm, "@stats_create 8+16 /1 dmstats").unwrap(), "0");
        assert_eq!(
            send(
                &mut dm,
                "@stats_create 100+8 /1 2 precise_timestamps histogram:10,20 p a\\ b"
            )
            .unwrap(),
            "1"
        );
        assert_eq!(send(&mut dm, "@stats_create 0+8 4").unwrap(), "2");
        send(&mut dm, "@stats_delete 0").unwrap();
        assert_eq!(send(&mut dm, "@stats_create 50+5 /2 other x").unwrap(), "0");
        assert_eq!(
            send(&mut dm, "@stats_list").unwrap(),
            "0: 50+5 3 other x\n1: 100+8 8 p a b precise_timestamps histogram:10,20\n2: 0+8 4 - -\n"
        );
        assert_eq!(
            send(&mut dm, "@stats_list other").unwrap(),
            "0: 50+5 3 other x\n"
        );
        assert_eq!(send(&mut dm, "@STATS_LIST nobody").unwrap(), "");
    }

    #[test]
    fn print_answers_as_the_kernel() {
        let mut dm = FakeDm::new();
        let id: RegionId = send(&mut dm, "@stats_create 2048+20 8 p -")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let areas =
            |dm: &mut FakeDm, msg: &str| dmstats::parse_print(send(dm, msg).unwrap()).unwrap();
        let e = |start, len| dmstats::Area { start, len };
        // The last area is cut short by the region's end but printed a step long.
        assert_eq!(
            areas(&mut dm, &format!("@stats_print {id}")),
            [e(2048, 8), e(2056, 8), e(2064, 8)]
        );
        assert_eq!(
            areas(&mut dm, &format!("@stats_print {id} 1 -")),
            [e(2056, 8), e(2064, 8)]
        );
        assert_eq!(areas(&mut dm, &format!("@stats_print {id} 5 2")), []);
        let probe = dmstats::Probe::of(&dm.regions[&id]);
        assert!(probe.matches(&dm.message(&probe.msg).unwrap()));
    }

    #[test]
    fn kernel_errors() {
        let mut dm = FakeDm::new();
        for bad in [
            "@stats_create 8+0 /1",
            "@stats_create 8+8",
            "@stats_create 8+8 /0",
            "@stats_create 8+8 0",
            "@stats_create -8+8 /1",
            "@stats_create 8+8 /1 2 precise_timestamps",
            "@stats_create 8+8 /1 1 bogus",
            "@stats_create 8+8 /1 1 histogram:10,5",
            "@stats_create 8+8 /1 2 histogram:1 histogram:2",
            "@stats_create 8+8 /1 p aux extra",
            "@stats_delete",
            "@stats_delete x",
            "@stats_delete -1",
            "@stats_set_aux 0",
            "@stats_set_aux 0 a b",
            "@stats_list a b",
            "@stats_print 0 1",
            "@stats_print x",
            "@stats_print_clear 0",
            "@stats_print",
            "@stats_clear 0",
            "",
        ] {
            assert_eq!(send(&mut dm, bad), Err(Errno::INVAL), "{bad:?}");
        }
        assert_eq!(send(&mut dm, "@stats_delete 3"), Err(Errno::NOENT));
        assert_eq!(send(&mut dm, "@stats_set_aux 3 x"), Err(Errno::NOENT));
        assert_eq!(send(&mut dm, "@stats_print 3"), Err(Errno::NOENT));
        assert!(dm.regions.is_empty());
        // One line per area, the reads in the first; the last, cut short,
        // still shows the step as its length, as the kernel prints it.
        send(&mut dm, "@stats_create 0+20 8").unwrap();
        dm.reads.insert(0, 3);
        assert_eq!(
            send(&mut dm, "@stats_print 0").unwrap(),
            "0+8 3 0 24 0 0 0 0 0 0 0 0 0 0\n8+8 0 0 0 0 0 0 0 0 0 0 0 0 0\n16+8 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        assert_eq!(
            send(&mut dm, "@stats_print 0 1 1").unwrap(),
            "8+8 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
    }

    #[test]
    fn fault_plan_and_region_limit() {
        let mut dm = FakeDm::new();
        dm.fail(Kind::Create, 2, Errno::IO);
        dm.fail(Kind::Any, 4, Errno::BUSY);
        assert!(send(&mut dm, "@stats_create 0+8 /1").is_ok());
        assert_eq!(send(&mut dm, "@stats_create 8+8 /1"), Err(Errno::IO));
        assert!(send(&mut dm, "@stats_list").is_ok());
        assert_eq!(send(&mut dm, "@stats_set_aux 0 x"), Err(Errno::BUSY));
        assert_eq!(
            dm.regions[&0].aux_data, "-",
            "a failed message has no effect"
        );
        assert_eq!(dm.regions.len(), 1);
        dm.region_limit = Some(2);
        assert!(send(&mut dm, "@stats_create 8+8 /1").is_ok());
        assert_eq!(send(&mut dm, "@stats_create 16+8 /1"), Err(Errno::NOMEM));
        assert_eq!(dm.log.len(), 6);
    }

    #[test]
    fn filemap_group_fixture() {
        let mut dm = FakeDm::new();
        dm.seed(Extent { start: 0, len: 1 }, "other", "-");
        let e = |start, len| Extent { start, len };
        let g = dm.filemap_group(
            &[e(100, 8), e(10, 8), e(200, 8)],
            "my file",
            Dialect::Quoted,
        );
        assert_eq!(g, 1);
        assert_eq!(dm.regions[&1].aux_data, "DMS_GROUP=\"my file\":1-3#-");
        assert_eq!(dm.regions[&2].start, 10);
        assert_eq!(dm.regions[&3].program_id, DMSTATS_PROGRAM);
    }
}
