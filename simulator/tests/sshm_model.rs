//! Model-based property test of static shared memory.
//!
//! An abstract model (regions as names, sizes, flags and page contents;
//! attachments as gfn ranges) runs side by side with the real handler on
//! the simulator. Random sequences of create, attach (plain and
//! create-or-open), detach, unlink, info, list, guest reads and writes
//! through the mappings and domain creation and destruction are applied to
//! both; after every step the results and errnos agree, every attached
//! domain sees the model's contents, the counters agree, and both invariant
//! checkers pass.
//!
//! `SIM_CASES` sets the number of cases (default 1000), `SIM_SEED` the
//! proptest seed; the run prints the line that replays it.

mod sshm_common;

use std::collections::BTreeMap;

use hypercall_abi::sshm::{self, Entry, StaticShm, F_CREATE, F_PERSISTENT, PROT_READ, PROT_RW};
use hypercall_abi::{DomId, Errno};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed, TestRunner};
use simulator::machine::Preempt;
use simulator::rng::PropRun;
use simulator::{DomainKind, DomainState};

use sshm_common::*;

/// How often each kind of step succeeded or failed, over all cases: a run
/// that only ever exercises error paths proves little.
static COVERAGE: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

fn count(what: &str, r: &Result<impl Sized, Errno>) {
    let key = match r {
        Ok(_) => format!("{what} ok"),
        Err(e) => format!("{what} {}", e.name()),
    };
    *COVERAGE.lock().unwrap().entry(key).or_default() += 1;
}

const NAMES: [&str; 4] = ["a", "b", "c", "zz_top"];
/// Attach gfns: one inside guest RAM, the rest above it, some 2 MiB aligned.
const GFNS: [u64; 5] = [2, SHM_GFN, SHM_GFN + 3, SHM_GFN + 0x200, SHM_GFN + 0x600];
const GUEST_RAM_PAGES: u64 = 16;
const GUESTS_MAX: usize = 4;
/// Enough for the sshm cap and every guest's RAM, and no more: the
/// invariant checker's cost grows with it.
const FRAMES: u64 = 3328;

fn limits() -> rust_hv::sshm::Limits {
    rust_hv::sshm::Limits { total_pages_max: 3072, region_pages_max: 2048, regions_max: 6 }
}

#[derive(Clone, Debug)]
enum Op {
    NewDomain { pv: bool },
    Destroy { d: usize },
    Create { n: usize, pages: u64, ro: bool, persistent: bool },
    Attach { d: usize, n: usize, g: usize, off: u64, nr: u64, ro: bool, create: bool, persistent: bool, size: u64 },
    Detach { d: usize, n: usize, g: usize, nr: u64 },
    Unlink { n: usize },
    Info { n: usize },
    List { cap: u32 },
    Write { d: usize, g: usize, page: u64, val: u64 },
    Read { d: usize, g: usize, page: u64 },
}

fn pages() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 1..=8u64, 1 => Just(512u64), 1 => Just(600u64), 1 => Just(1030u64), 1 => Just(2049u64)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let idx = 0..8usize;
    prop_oneof![
        1 => any::<bool>().prop_map(|pv| Op::NewDomain { pv }),
        1 => idx.clone().prop_map(|d| Op::Destroy { d }),
        3 => (0..4usize, pages(), prop::bool::weighted(0.25), any::<bool>())
            .prop_map(|(n, pages, ro, persistent)| Op::Create { n, pages, ro, persistent }),
        6 => (idx.clone(), 0..4usize, 0..GFNS.len(), prop_oneof![4 => 0..3u64, 1 => Just(512u64)], pages(),
              prop::bool::weighted(0.25), prop::bool::weighted(0.75), any::<bool>(), prop_oneof![Just(0u64), pages()])
            .prop_map(|(d, n, g, off, nr, ro, create, persistent, size)|
                Op::Attach { d, n, g, off, nr, ro, create, persistent, size }),
        4 => (idx.clone(), 0..4usize, 0..GFNS.len(), prop_oneof![4 => Just(0u64), 1 => 1..=8u64])
            .prop_map(|(d, n, g, nr)| Op::Detach { d, n, g, nr }),
        2 => (0..4usize).prop_map(|n| Op::Unlink { n }),
        1 => (0..4usize).prop_map(|n| Op::Info { n }),
        1 => (1..=3u32).prop_map(|cap| Op::List { cap }),
        4 => (idx.clone(), 0..GFNS.len(), prop_oneof![0..8u64, Just(513u64), Just(1029u64)], any::<u64>())
            .prop_map(|(d, g, page, val)| Op::Write { d, g, page, val }),
        3 => (idx, 0..GFNS.len(), prop_oneof![0..8u64, Just(513u64)]).prop_map(|(d, g, page)| Op::Read { d, g, page }),
    ]
}

// ---- the model ----

#[derive(Clone, Debug)]
struct MRegion {
    name: usize,
    pages: u64,
    max_prot: u32,
    persistent: bool,
    linked: bool,
    used: bool,
    creator: u16,
    /// Region page -> the u64 at its start (absent is zero).
    data: BTreeMap<u64, u64>,
}

#[derive(Clone, Debug)]
struct MAtt {
    dom: DomId,
    gfn: u64,
    region: usize,
    off: u64,
    nr: u64,
    prot: u32,
}

#[derive(Clone, Debug)]
struct MDom {
    id: DomId,
    pv: bool,
    alive: bool,
}

#[derive(Default)]
struct Model {
    regions: BTreeMap<usize, MRegion>,
    next: usize,
    atts: Vec<MAtt>,
    doms: Vec<MDom>,
}

impl Model {
    fn linked(&self, n: usize) -> Option<usize> {
        self.regions.iter().find(|(_, r)| r.linked && r.name == n).map(|(&id, _)| id)
    }

    fn pages(&self) -> u64 {
        self.regions.values().map(|r| r.pages).sum()
    }

    fn create(
        &mut self,
        n: usize,
        pages: u64,
        max_prot: u32,
        persistent: bool,
        creator: DomId,
    ) -> Result<usize, Errno> {
        let l = limits();
        if pages > l.region_pages_max {
            return Err(Errno::E2BIG);
        }
        if self.regions.len() >= l.regions_max as usize || self.pages() + pages > l.total_pages_max {
            return Err(Errno::ENOSPC);
        }
        let id = self.next;
        self.next += 1;
        let r = MRegion {
            name: n,
            pages,
            max_prot,
            persistent,
            linked: true,
            used: false,
            creator: creator.0,
            data: BTreeMap::new(),
        };
        self.regions.insert(id, r);
        Ok(id)
    }

    fn maybe_free(&mut self, id: usize) {
        let n = self.atts.iter().filter(|a| a.region == id).count();
        if let Some(r) = self.regions.get(&id) {
            if n == 0 && (!r.linked || (!r.persistent && r.used)) {
                self.regions.remove(&id);
            }
        }
    }

    /// The target checks of attach/detach.
    fn target(&self, d: DomId) -> Result<(), Errno> {
        match self.doms.iter().find(|m| m.id == d) {
            Some(m) if m.alive && m.pv => Err(Errno::EOPNOTSUPP),
            Some(m) if m.alive => Ok(()),
            _ => Err(Errno::ESRCH),
        }
    }

    fn ram_pages(&self, d: DomId) -> u64 {
        if self.doms.first().is_some_and(|m| m.id == d) {
            DOM0_RAM_PAGES
        } else {
            GUEST_RAM_PAGES
        }
    }

    /// `do_domctl`'s look-up of the envelope's domain, before any handler
    /// check: a domain that is gone is `-ESRCH` whatever the payload. (The
    /// model's guests never become zombies: nothing else holds their pages.)
    fn envelope(&self, d: DomId) -> Result<(), Errno> {
        match self.doms.iter().find(|m| m.id == d) {
            Some(m) if m.alive => Ok(()),
            _ => Err(Errno::ESRCH),
        }
    }

    fn attach(&mut self, d: DomId, o: &StaticShm, n: usize) -> Result<i64, Errno> {
        self.envelope(d)?;
        o.validate()?;
        self.target(d)?;
        let end = o.gfn + o.nr_pages;
        if self.atts.iter().any(|a| a.dom == d && a.gfn < end && o.gfn < a.gfn + a.nr) {
            return Err(Errno::EBUSY);
        }
        let create = o.flags & F_CREATE != 0;
        let size = if o.size_pages == 0 { o.offset + o.nr_pages } else { o.size_pages };
        let (id, created) = match self.linked(n) {
            Some(id) => {
                let r = &self.regions[&id];
                if create && (size != r.pages || (o.flags & F_PERSISTENT != 0) != r.persistent) {
                    return Err(Errno::EEXIST);
                }
                if o.prot & !r.max_prot != 0 {
                    return Err(Errno::EACCES);
                }
                if o.offset + o.nr_pages > r.pages {
                    return Err(Errno::EINVAL);
                }
                (id, false)
            }
            // Create-or-open makes a read-write region whatever this prot.
            None if create => (self.create(n, size, PROT_RW, o.flags & F_PERSISTENT != 0, d)?, true),
            None => return Err(Errno::ENOENT),
        };
        if o.gfn < self.ram_pages(d) {
            // The first p2m insert meets guest RAM: all undone.
            if created {
                self.regions.remove(&id);
            }
            return Err(Errno::EBUSY);
        }
        self.atts.push(MAtt { dom: d, gfn: o.gfn, region: id, off: o.offset, nr: o.nr_pages, prot: o.prot });
        self.regions.get_mut(&id).unwrap().used = true;
        Ok(0)
    }

    fn detach(&mut self, d: DomId, o: &StaticShm, n: usize) -> Result<i64, Errno> {
        self.envelope(d)?;
        o.validate()?;
        self.target(d)?;
        let i = self.atts.iter().position(|a| a.dom == d && a.gfn == o.gfn).ok_or(Errno::ENOENT)?;
        let a = self.atts[i].clone();
        if self.regions[&a.region].name != n {
            return Err(Errno::ENOENT);
        }
        if o.nr_pages != 0 && o.nr_pages != a.nr {
            return Err(Errno::EINVAL);
        }
        self.atts.remove(i);
        self.maybe_free(a.region);
        Ok(0)
    }

    fn destroy(&mut self, d: DomId) {
        let gone: Vec<MAtt> = self.atts.iter().filter(|a| a.dom == d).cloned().collect();
        self.atts.retain(|a| a.dom != d);
        for a in gone {
            self.maybe_free(a.region);
        }
        for m in &mut self.doms {
            if m.id == d {
                m.alive = false;
            }
        }
    }

    fn entry(&self, id: usize) -> Entry {
        let r = &self.regions[&id];
        let mut domids: Vec<u16> = self.atts.iter().filter(|a| a.region == id).map(|a| a.dom.0).collect();
        let nr_attachments = domids.len() as u32;
        domids.sort();
        domids.dedup();
        domids.truncate(sshm::ENTRY_DOMIDS_MAX);
        let mut e = Entry {
            name: name(NAMES[r.name]),
            nr_pages: r.pages,
            max_prot: r.max_prot,
            flags: if r.persistent { F_PERSISTENT } else { 0 },
            nr_attachments,
            creator: r.creator,
            nr_domids: domids.len() as u16,
            ..Default::default()
        };
        e.domids[..domids.len()].copy_from_slice(&domids);
        e
    }

    /// The attachment of `d` covering `gfn`, with the region page there.
    fn covering(&self, d: DomId, gfn: u64) -> Option<(&MAtt, u64)> {
        self.atts.iter().find(|a| a.dom == d && a.gfn <= gfn && gfn < a.gfn + a.nr).map(|a| (a, a.off + gfn - a.gfn))
    }
}

// ---- driving both ----

fn run_case(seed: u64, preempt: u8, ops: &[Op]) -> Result<(), TestCaseError> {
    let env = Env::new(seed, FRAMES, limits());
    env.sim.machine().set_preempt(match preempt {
        0 => Preempt::Never,
        1 => Preempt::OneIn(2),
        _ => Preempt::OneIn(8),
    });
    let mut m = Model::default();
    m.doms.push(MDom { id: env.dom0, pv: false, alive: true });
    let guest = env.guest(DomainKind::Hvm, GUEST_RAM_PAGES);
    m.doms.push(MDom { id: guest, pv: false, alive: true });
    let frames_before = env.sim.free_frames();

    for (step, o) in ops.iter().enumerate() {
        let ctx = || format!("seed {seed:#x} step {step} op {o:?}");
        let pick = |d: usize| m.doms[d % m.doms.len()].id;
        match *o {
            Op::NewDomain { pv } => {
                if m.doms.iter().filter(|d| d.alive).count() > GUESTS_MAX {
                    continue;
                }
                let kind = if pv { DomainKind::Pv } else { DomainKind::Pvh };
                let id = env.guest(kind, GUEST_RAM_PAGES);
                m.doms.retain(|d| d.id != id);
                m.doms.push(MDom { id, pv, alive: true });
            }
            Op::Destroy { d } => {
                let id = pick(d);
                if id == env.dom0 || !m.doms.iter().any(|x| x.id == id && x.alive) {
                    continue;
                }
                env.sim.destroy_domain(id).expect("destroy");
                m.destroy(id);
                prop_assert_eq!(env.sim.domain_state(id), Some(DomainState::Dead), "zombie: {}", ctx());
            }
            Op::Create { n, pages, ro, persistent } => {
                let prot = if ro { PROT_READ } else { PROT_RW };
                let c = create(NAMES[n], pages, prot, persistent);
                let want = c.validate().and_then(|()| match m.linked(n) {
                    Some(_) => Err(Errno::EEXIST),
                    None => m.create(n, pages, prot, persistent, env.dom0).map(|_| 0),
                });
                count("create", &want);
                prop_assert_eq!(env.call(env.dom0, &c), want, "{}", ctx());
            }
            Op::Attach { d, n, g, off, nr, ro, create, persistent, size } => {
                let id = pick(d);
                let prot = if ro { PROT_READ } else { PROT_RW };
                let mut a = attach(NAMES[n], nr, off, GFNS[g], prot);
                if create {
                    a.flags = F_CREATE | if persistent { F_PERSISTENT } else { 0 };
                    a.size_pages = size;
                }
                let want = m.attach(id, &a, n);
                count(if create { "open" } else { "attach" }, &want);
                prop_assert_eq!(env.call(id, &a), want, "{}", ctx());
            }
            Op::Detach { d, n, g, nr } => {
                let id = pick(d);
                // Mostly detach what is there, so detaches succeed often.
                let (gfn, n) = match m.atts.iter().find(|a| a.dom == id) {
                    Some(a) if g != 0 => (a.gfn, m.regions[&a.region].name),
                    _ => (GFNS[g], n),
                };
                let mut o = detach(NAMES[n], gfn);
                o.nr_pages = match m.atts.iter().find(|a| a.dom == id && a.gfn == gfn) {
                    Some(a) if nr == 0 && g % 2 == 1 => a.nr,
                    _ => nr,
                };
                let want = m.detach(id, &o, n);
                count("detach", &want);
                prop_assert_eq!(env.call(id, &o), want, "{}", ctx());
            }
            Op::Unlink { n } => {
                let want = match m.linked(n) {
                    Some(id) => {
                        m.regions.get_mut(&id).unwrap().linked = false;
                        m.maybe_free(id);
                        Ok(0)
                    }
                    None => Err(Errno::ENOENT),
                };
                prop_assert_eq!(env.call(env.dom0, &unlink(NAMES[n])), want, "{}", ctx());
            }
            Op::Info { n } => {
                let want = m.linked(n).map(|id| m.entry(id)).ok_or(Errno::ENOENT);
                prop_assert_eq!(env.info(NAMES[n]), want, "{}", ctx());
            }
            Op::List { cap } => {
                let mut want: Vec<(usize, Entry)> =
                    m.regions.iter().filter(|(_, r)| r.linked).map(|(&id, r)| (r.name, m.entry(id))).collect();
                want.sort_by_key(|(n, _)| NAMES[*n]);
                let want: Vec<Entry> = want.into_iter().map(|(_, e)| e).collect();
                prop_assert_eq!(env.list_all(cap), Ok(want), "{}", ctx());
            }
            Op::Write { d, g, page, val } => {
                let (id, gfn) = target_gfn(&m, d, g, page);
                if !m.doms.iter().any(|x| x.id == id && x.alive) || gfn < m.ram_pages(id) {
                    continue;
                }
                let want = match m.covering(id, gfn) {
                    Some((a, p)) if a.prot == PROT_RW => {
                        let r = a.region;
                        m.regions.get_mut(&r).unwrap().data.insert(p, val);
                        Ok(())
                    }
                    // Xen discards a store through a read-only view.
                    Some(_) => Ok(()),
                    None => Err(Errno::EFAULT),
                };
                count("write", &want);
                prop_assert_eq!(env.poke(id, gfn, 0, val), want, "{}", ctx());
            }
            Op::Read { d, g, page } => {
                let (id, gfn) = target_gfn(&m, d, g, page);
                if !m.doms.iter().any(|x| x.id == id && x.alive) || gfn < m.ram_pages(id) {
                    continue;
                }
                let want = match m.covering(id, gfn) {
                    Some((a, p)) => Ok(m.regions[&a.region].data.get(&p).copied().unwrap_or(0)),
                    None => Err(Errno::EFAULT),
                };
                count("read", &want);
                prop_assert_eq!(env.peek(id, gfn, 0), want, "{}", ctx());
            }
        }
        check_step(&env, &m).map_err(|e| TestCaseError::fail(format!("{e}: {}", ctx())))?;
    }

    // Tear everything down: nothing may remain, no frame may leak.
    for d in m.doms.clone() {
        if d.alive && d.id != env.dom0 {
            env.sim.destroy_domain(d.id).expect("destroy");
            m.destroy(d.id);
        }
    }
    let _ = env.sim.destroy_domain(guest);
    let _ = env.call(env.dom0, &detach("a", 0));
    for (i, n) in NAMES.iter().enumerate() {
        let _ = env.call(env.dom0, &unlink(n));
        if let Some(id) = m.linked(i) {
            m.regions.get_mut(&id).unwrap().linked = false;
            m.maybe_free(id);
        }
    }
    let dom0_atts: Vec<MAtt> = m.atts.iter().filter(|a| a.dom == env.dom0).cloned().collect();
    for a in dom0_atts {
        let n = m.regions[&a.region].name;
        prop_assert_eq!(env.call(env.dom0, &detach(NAMES[n], a.gfn)), Ok(0));
        m.atts.retain(|x| !(x.dom == a.dom && x.gfn == a.gfn));
        m.maybe_free(a.region);
    }
    check_step(&env, &m).map_err(TestCaseError::fail)?;
    prop_assert_eq!(env.sim.hv().sshm.stats(), Default::default());
    prop_assert_eq!(env.sim.machine().sshm_pages(), 0);
    // The first guest's RAM came back too.
    prop_assert_eq!(env.sim.free_frames(), frames_before + GUEST_RAM_PAGES, "frame leak, seed {:#x}", seed);
    Ok(())
}

/// Where a guest access goes: mostly into (or just past) an existing
/// attachment, so that contents are exercised, else anywhere.
fn target_gfn(m: &Model, d: usize, g: usize, page: u64) -> (DomId, u64) {
    match m.atts.get(d % (m.atts.len() + 1)) {
        Some(a) if g != 0 => (a.dom, a.gfn + page % (a.nr + 1)),
        _ => (m.doms[d % m.doms.len()].id, GFNS[g] + page),
    }
}

/// After every step: counters agree, checkers pass, and every attached
/// domain sees the model's contents at both ends of its attachment.
fn check_step(env: &Env, m: &Model) -> Result<(), String> {
    env.check()?;
    let s = env.sim.hv().sshm.stats();
    let want = (m.regions.len() as u64, m.regions.values().filter(|r| r.linked).count() as u64, m.pages());
    if (s.regions, s.linked, s.pages) != want || s.attachments != m.atts.len() as u64 {
        return Err(format!("stats {s:?}, model {want:?} with {} attachments", m.atts.len()));
    }
    if env.sim.machine().sshm_pages() != m.pages() {
        return Err(format!("pseudo-domain holds {} pages, model {}", env.sim.machine().sshm_pages(), m.pages()));
    }
    for a in &m.atts {
        for k in [0, a.nr - 1] {
            let want = m.regions[&a.region].data.get(&(a.off + k)).copied().unwrap_or(0);
            let got = env.peek(a.dom, a.gfn + k, 0).map_err(|e| format!("read via {a:?}: {e}"))?;
            if got != want {
                return Err(format!("{a:?} page {k}: read {got:#x}, model {want:#x}"));
            }
        }
    }
    Ok(())
}

#[test]
fn sshm_model() {
    let run = PropRun::from_env("simulator", "sshm_model", "sshm_model", 1000);
    let config = PtConfig {
        cases: run.cases,
        rng_seed: RngSeed::Fixed(run.seed),
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "proptest-regressions/sshm_model.txt",
        ))),
        ..PtConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (any::<u64>(), 0..3u8, prop::collection::vec(op_strategy(), 1..40));
    let result = runner.run(&strategy, |(seed, preempt, ops)| run_case(seed, preempt, &ops));
    eprintln!("sshm_model coverage: {:#?}", COVERAGE.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}\nreplay: {}", run.replay());
    }
}
