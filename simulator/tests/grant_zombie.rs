//! Property test of the simulator's grant tables and domain lifecycle
//! against a reference model: random sequences of domain create and
//! destroy, grant, map, unmap, end access, copies and guest writes, with
//! the invariant checker after every step. It shows the classic zombie of
//! grant-based sharing: a domain whose granted page is still mapped by a
//! peer stays dying until the peer unmaps (or dies), and then is dead.
//!
//! Cases: `SIM_CASES` (default 256). Seed: `SIM_SEED` (default fixed,
//! `random` for a fresh one); it seeds both proptest and the simulator; the
//! run prints the command that replays it, and a failure repeats it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::{hypercall, DomId, PAGE_SIZE};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use simulator::grant::{self, gntst, MapGrantRef, UnmapGrantRef};
use simulator::rng::PropRun;
use simulator::{Config, DomainKind, DomainState, GrantEntry, Preempt, Sim};

/// Frames in the test machine: small, so the checkers run fast and
/// exhaustion happens.
const FRAMES: u64 = 96;
/// Grant refs and mapping slots the test uses per domain.
const GREFS: u32 = 4;
const SLOTS: u64 = 4;
/// Mapping slots live above RAM.
const MAP_GFN: u64 = 0x100;
/// Steps per case.
const STEPS_MAX: usize = 40;

/// Zombies seen across all cases (the test must actually show some).
static ZOMBIES: AtomicU64 = AtomicU64::new(0);
/// Grant maps made across all cases.
static MAPS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
enum Op {
    Create {
        pv: bool,
        pages: u64,
    },
    Destroy(usize),
    Grant {
        granter: usize,
        gref: u32,
        peer: usize,
        gfn: u64,
        ro: bool,
    },
    EndAccess {
        granter: usize,
        gref: u32,
    },
    Map {
        mapper: usize,
        granter: usize,
        gref: u32,
        slot: u64,
        ro: bool,
    },
    Unmap {
        mapper: usize,
        slot: u64,
    },
    Write {
        d: usize,
        slot: Option<u64>,
        gfn: u64,
        byte: u8,
    },
    CopyTo {
        caller: usize,
        granter: usize,
        gref: u32,
    },
    /// A frontend/backend handshake: grant then map at once, so that
    /// sharing (and zombies) are common in short sequences.
    Share {
        granter: usize,
        peer: usize,
        gref: u32,
        gfn: u64,
        slot: u64,
        ro: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let ix = 0usize..4;
    prop_oneof![
        2 => (any::<bool>(), 2u64..12).prop_map(|(pv, pages)| Op::Create { pv, pages }),
        2 => ix.clone().prop_map(Op::Destroy),
        3 => (ix.clone(), 0..GREFS, ix.clone(), 0u64..4, any::<bool>())
            .prop_map(|(granter, gref, peer, gfn, ro)| Op::Grant { granter, gref, peer, gfn, ro }),
        1 => (ix.clone(), 0..GREFS).prop_map(|(granter, gref)| Op::EndAccess { granter, gref }),
        3 => (ix.clone(), ix.clone(), 0..GREFS, 0..SLOTS, any::<bool>())
            .prop_map(|(mapper, granter, gref, slot, ro)| Op::Map { mapper, granter, gref, slot, ro }),
        2 => (ix.clone(), 0..SLOTS).prop_map(|(mapper, slot)| Op::Unmap { mapper, slot }),
        2 => (ix.clone(), proptest::option::of(0..SLOTS), 0u64..12, any::<u8>())
            .prop_map(|(d, slot, gfn, byte)| Op::Write { d, slot, gfn, byte }),
        1 => (ix.clone(), ix.clone(), 0..GREFS).prop_map(|(caller, granter, gref)| Op::CopyTo { caller, granter, gref }),
        3 => (ix.clone(), ix, 0..GREFS, 0u64..4, 0..SLOTS, any::<bool>())
            .prop_map(|(granter, peer, gref, gfn, slot, ro)| Op::Share { granter, peer, gref, gfn, slot, ro }),
    ]
}

/// The reference model of one domain.
#[derive(Clone, Debug)]
struct MDom {
    id: DomId,
    pages: u64,
    state: DomainState,
    /// gref -> (peer, gfn, readonly).
    grants: BTreeMap<u32, (DomId, u64, bool)>,
    /// slot -> (granter, gref, handle, readonly).
    maps: BTreeMap<u64, (DomId, u32, u32, bool)>,
}

struct Model {
    doms: Vec<MDom>,
}

impl Model {
    fn pick(&self, i: usize) -> Option<usize> {
        (!self.doms.is_empty()).then(|| i % self.doms.len())
    }

    /// The newest incarnation of `id` (ids are reused).
    fn by_id(&self, id: DomId) -> Option<usize> {
        self.doms.iter().rposition(|d| d.id == id && d.state != DomainState::Dead)
    }

    fn running(&self, i: usize) -> bool {
        self.doms[i].state == DomainState::Running
    }

    fn mapped(&self, granter: DomId, gref: u32) -> bool {
        self.doms
            .iter()
            .filter(|d| d.state == DomainState::Running)
            .any(|d| d.maps.values().any(|&(g, r, _, _)| g == granter && r == gref))
    }

    fn maps_of(&self, granter: DomId) -> bool {
        self.doms.iter().filter(|d| d.state == DomainState::Running).any(|d| d.maps.values().any(|m| m.0 == granter))
    }

    /// Zombies whose last mapping went are dead.
    fn settle(&mut self) {
        for i in 0..self.doms.len() {
            if self.doms[i].state == DomainState::Dying && !self.maps_of(self.doms[i].id) {
                self.doms[i].state = DomainState::Dead;
            }
        }
    }
}

/// Issues one grant op staged at gpa 0 of the caller.
fn gnt(s: &Sim, caller: DomId, cmd: u32, bytes: &[u8], out: &mut [u8]) -> Result<(), TestCaseError> {
    s.guest_write(caller, 0, bytes).map_err(|e| TestCaseError::fail(format!("stage op: {e}")))?;
    let r = s.hypercall(caller, hypercall::GRANT_TABLE_OP, [u64::from(cmd), 0, 1, 0, 0]);
    prop_assert_eq!(r, 0);
    s.guest_read(caller, 0, out).map_err(|e| TestCaseError::fail(format!("read op back: {e}")))?;
    Ok(())
}

fn step(s: &Sim, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Share { granter, peer, gref, gfn, slot, ro } => {
            step(s, m, &Op::Grant { granter, gref, peer, gfn, ro })?;
            step(s, m, &Op::Map { mapper: peer, granter, gref, slot, ro })?;
        }
        Op::Create { pv, pages } => {
            let kind = if pv { DomainKind::Pv } else { DomainKind::Hvm };
            match s.create_domain(kind, pages, false) {
                Ok(id) => {
                    prop_assert!(m.by_id(id).is_none(), "id {:?} handed out while still in use", id);
                    m.doms.push(MDom {
                        id,
                        pages,
                        state: DomainState::Running,
                        grants: BTreeMap::new(),
                        maps: BTreeMap::new(),
                    });
                }
                Err(e) => prop_assert_eq!(e, hypercall_abi::Errno::ENOMEM),
            }
        }
        Op::Destroy(i) => {
            let Some(i) = m.pick(i) else { return Ok(()) };
            // A dead incarnation's id may belong to a new domain now.
            if m.doms[i].state == DomainState::Dead {
                return Ok(());
            }
            let r = s.destroy_domain(m.doms[i].id);
            prop_assert_eq!(r, Ok(()));
            if m.doms[i].state == DomainState::Running {
                m.doms[i].maps.clear();
                m.doms[i].state = DomainState::Dying;
                m.settle();
            }
        }
        Op::Grant { granter, gref, peer, gfn, ro } => {
            let (Some(g), Some(p)) = (m.pick(granter), m.pick(peer)) else { return Ok(()) };
            if !m.running(g) {
                return Ok(());
            }
            let (gid, pid) = (m.doms[g].id, m.doms[p].id);
            let r = s.grant_write(gid, gref, GrantEntry::permit(pid, hypercall_abi::Gfn(gfn), ro));
            if m.mapped(gid, gref) {
                prop_assert_eq!(r, Err(hypercall_abi::Errno::EBUSY));
            } else {
                prop_assert_eq!(r, Ok(()));
                m.doms[g].grants.insert(gref, (pid, gfn, ro));
            }
        }
        Op::EndAccess { granter, gref } => {
            let Some(g) = m.pick(granter) else { return Ok(()) };
            if !m.running(g) {
                return Ok(());
            }
            let gid = m.doms[g].id;
            let r = s.grant_end_access(gid, gref);
            if m.mapped(gid, gref) {
                prop_assert_eq!(r, Err(hypercall_abi::Errno::EBUSY), "end access while mapped");
            } else {
                prop_assert_eq!(r, Ok(()));
                m.doms[g].grants.remove(&gref);
            }
        }
        Op::Map { mapper, granter, gref, slot, ro } => {
            let (Some(mi), Some(g)) = (m.pick(mapper), m.pick(granter)) else { return Ok(()) };
            if !m.running(mi) {
                return Ok(());
            }
            let (mid, gid) = (m.doms[mi].id, m.doms[g].id);
            let flags = grant::GNTMAP_HOST_MAP | if ro { grant::GNTMAP_READONLY } else { 0 };
            let req =
                MapGrantRef { host_addr: (MAP_GFN + slot) * PAGE_SIZE, flags, gref, dom: gid.0, ..Default::default() };
            let mut b = [0u8; MapGrantRef::SIZE];
            gnt(s, mid, grant::GNTTABOP_MAP_GRANT_REF, &req.to_bytes(), &mut b)?;
            let out = MapGrantRef::from_bytes(&b);
            let grant_ok = m.running(g)
                && m.doms[g]
                    .grants
                    .get(&gref)
                    .is_some_and(|&(peer, gfn, gro)| peer == mid && (ro || !gro) && gfn < m.doms[g].pages);
            let expect_ok = grant_ok && !m.doms[mi].maps.contains_key(&slot);
            prop_assert_eq!(out.status == gntst::OKAY, expect_ok, "map {:?} gave status {}", op, out.status);
            if expect_ok {
                MAPS.fetch_add(1, Ordering::Relaxed);
                m.doms[mi].maps.insert(slot, (gid, gref, out.handle, ro));
            }
        }
        Op::Unmap { mapper, slot } => {
            let Some(mi) = m.pick(mapper) else { return Ok(()) };
            if !m.running(mi) {
                return Ok(());
            }
            let mid = m.doms[mi].id;
            let handle = m.doms[mi].maps.get(&slot).map(|x| x.2).unwrap_or(grant::MAPTRACK_MAX + 1);
            let req = UnmapGrantRef { host_addr: (MAP_GFN + slot) * PAGE_SIZE, handle, ..Default::default() };
            let mut b = [0u8; UnmapGrantRef::SIZE];
            gnt(s, mid, grant::GNTTABOP_UNMAP_GRANT_REF, &req.to_bytes(), &mut b)?;
            let st = UnmapGrantRef::from_bytes(&b).status;
            if m.doms[mi].maps.remove(&slot).is_some() {
                prop_assert_eq!(st, gntst::OKAY);
                m.settle();
            } else {
                prop_assert_eq!(st, gntst::BAD_HANDLE);
            }
        }
        Op::Write { d, slot, gfn, byte } => {
            let Some(i) = m.pick(d) else { return Ok(()) };
            if !m.running(i) {
                return Ok(());
            }
            let id = m.doms[i].id;
            match slot {
                Some(sl) => {
                    let discards = s.machine().write_discards();
                    let r = s.guest_write(id, (MAP_GFN + sl) * PAGE_SIZE + 8, &[byte]);
                    match m.doms[i].maps.get(&sl).copied() {
                        Some((gid, gref, _, ro)) => {
                            // Through a read-only map the store is discarded
                            // (Xen's p2m_grant_map_ro), not refused.
                            prop_assert_eq!(r, Ok(()), "write through grant map ro={}", ro);
                            prop_assert_eq!(s.machine().write_discards() - discards, u64::from(ro));
                            // The granter sees it while alive (a zombie's
                            // memory is no longer addressable).
                            let gi = m.by_id(gid).filter(|&gi| m.running(gi));
                            if let (false, Some(gi)) = (ro, gi) {
                                let gfn = m.doms[gi].grants[&gref].1;
                                let mut back = [0u8; 1];
                                s.guest_read(gid, gfn * PAGE_SIZE + 8, &mut back)
                                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                                prop_assert_eq!(back[0], byte, "granter sees the peer's write");
                            }
                        }
                        None => prop_assert!(r.is_err()),
                    }
                }
                None => {
                    let r = s.guest_write(id, gfn * PAGE_SIZE + 8, &[byte]);
                    prop_assert_eq!(r.is_ok(), gfn < m.doms[i].pages);
                }
            }
        }
        Op::CopyTo { caller, granter, gref } => {
            let (Some(c), Some(g)) = (m.pick(caller), m.pick(granter)) else { return Ok(()) };
            if !m.running(c) {
                return Ok(());
            }
            let (cid, gid) = (m.doms[c].id, m.doms[g].id);
            let req = grant::Copy {
                source: grant::CopyPtr { gref_or_gfn: 0, domid: DomId::SELF_.0, offset: 64 },
                dest: grant::CopyPtr { gref_or_gfn: u64::from(gref), domid: gid.0, offset: 128 },
                len: 16,
                flags: grant::GNTCOPY_DEST_GREF,
                status: 0,
            };
            let mut b = [0u8; grant::Copy::SIZE];
            gnt(s, cid, grant::GNTTABOP_COPY, &req.to_bytes(), &mut b)?;
            let st = grant::Copy::from_bytes(&b).status;
            let expect_ok = m.running(g)
                && m.doms[g]
                    .grants
                    .get(&gref)
                    .is_some_and(|&(peer, gfn, ro)| peer == cid && !ro && gfn < m.doms[g].pages);
            prop_assert_eq!(st == gntst::OKAY, expect_ok, "copy {:?} gave status {}", op, st);
        }
    }
    Ok(())
}

fn run(ops: &[Op], seed: u64) -> Result<(), TestCaseError> {
    let s = Sim::new(Config { frames: FRAMES, seed, ..Config::default() });
    s.machine().set_preempt(Preempt::OneIn(4));
    let mut m = Model { doms: Vec::new() };
    for (n, op) in ops.iter().enumerate() {
        step(&s, &mut m, op).map_err(|e| TestCaseError::fail(format!("step {n} {op:?}: {e}")))?;
        if let Err(e) = s.check() {
            return Err(TestCaseError::fail(format!("after step {n} {op:?}:\n{e}")));
        }
        for d in &m.doms {
            if d.state == DomainState::Dead && m.by_id(d.id).is_some() {
                continue; // the id was reused
            }
            let got = s.domain_state(d.id);
            prop_assert_eq!(
                got,
                Some(d.state),
                "after step {} {:?}: d{} (zombies: {:?})",
                n,
                op,
                d.id.0,
                s.machine().zombies()
            );
        }
    }
    ZOMBIES.fetch_add(s.machine().zombie_log().len() as u64, Ordering::Relaxed);
    // Tear everything down: nothing may leak and no zombie may remain.
    for d in m.doms.clone() {
        if d.state == DomainState::Running {
            s.destroy_domain(d.id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            s.check().map_err(|e| TestCaseError::fail(format!("teardown of d{}:\n{e}", d.id.0)))?;
        }
    }
    prop_assert!(s.machine().zombies().is_empty(), "zombies after teardown: {:?}", s.machine().zombies());
    prop_assert_eq!(s.free_frames(), FRAMES, "frames leaked");
    s.check().map_err(TestCaseError::fail)?;
    Ok(())
}

#[test]
fn grant_sharing_invariants_and_zombies() {
    let pr = PropRun::from_env("simulator", "grant_zombie", "grant_sharing_invariants_and_zombies", 256);
    let seed = pr.seed;
    let cfg = PtConfig {
        cases: pr.cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/grant_zombie.txt"))),
        ..PtConfig::default()
    };
    let cases = cfg.cases;
    let mut runner = TestRunner::new(cfg);
    let r = runner.run(&proptest::collection::vec(op(), 1..STEPS_MAX), |ops| run(&ops, seed));
    if let Err(e) = r {
        panic!("{e}\nreplay: {}", pr.replay());
    }
    let (zombies, maps) = (ZOMBIES.load(Ordering::Relaxed), MAPS.load(Ordering::Relaxed));
    eprintln!("seed {seed:#x}: {cases} cases, {maps} grant maps, {zombies} zombies");
    assert!(zombies > 0 && maps > 0, "the sequences never made a zombie: the test shows nothing");
}

/// The zombie, deterministically: granter dies while the peer maps its
/// page; it stays dying until the unmap.
#[test]
fn classic_zombie_scenario() {
    let ops = [
        Op::Create { pv: false, pages: 4 },
        Op::Create { pv: false, pages: 4 },
        Op::Grant { granter: 0, gref: 1, peer: 1, gfn: 2, ro: false },
        Op::Map { mapper: 1, granter: 0, gref: 1, slot: 0, ro: false },
        Op::Destroy(0),
        Op::Write { d: 1, slot: Some(0), gfn: 0, byte: 7 },
        Op::Unmap { mapper: 1, slot: 0 },
    ];
    let s = Sim::new(Config { frames: FRAMES, seed: 7, ..Config::default() });
    let mut m = Model { doms: Vec::new() };
    for (n, op) in ops.iter().enumerate() {
        step(&s, &mut m, op).unwrap();
        s.check().unwrap();
        if n == 4 {
            assert_eq!(s.domain_state(DomId(0)), Some(DomainState::Dying));
            assert_eq!(s.machine().zombies().len(), 1);
        }
    }
    assert_eq!(s.domain_state(DomId(0)), Some(DomainState::Dead));
}
