//! Model-based property test: random registers, unregisters, sends,
//! receives, notifies, domain creates and destroys across several domains,
//! run against V4V on the simulator and against a reference model.
//!
//! Checked after every step: every simulator and V4V invariant, the ring
//! count and pinned pages the model predicts, and the exact result of every
//! op. Received messages must match the model exactly: exactly once, in
//! order per ring, byte-exact, with the true source.
//!
//! Each case runs with every ring mapped once (`Platform::ring_map`, the
//! fast path) or with no ring mapped (as when the caps or `vmap()` refuse:
//! the per-frame path), half the cases each, chosen by the case's seed.
//! Both must match the same model, so they give identical results.
//!
//! `SIM_CASES` sets the number of cases (default 1000), `SIM_SEED` the
//! proptest seed; the run prints the line that replays it, and a failure
//! prints the minimal input, whose `seed` is the simulator's.

mod v4v_util;

use std::collections::{BTreeMap, VecDeque};

use hypercall_abi::v4v::*;
use hypercall_abi::{DomId, Errno, VIRQ_V4V};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence, RngSeed, TestRunner};
use simulator::rng::PropRun;
use simulator::{Faults, Preempt, Trigger};
use v4v_util::*;

const SLOTS: usize = 4;
const PORTS: u32 = 2;
const LENS: [u32; 5] = [64, 256, 1024, 4032, 3 * 4096 - 64];
const DOM_PAGES: u64 = 64;

#[derive(Clone, Debug)]
enum Op {
    Register { d: usize, port: u32, partner: usize, len: usize },
    Unregister { d: usize, port: u32, partner: usize },
    Send { from: usize, to: usize, port: u32, len: usize, src_port: u32, ty: u32 },
    Recv { d: usize, port: u32, partner: usize, max: usize },
    Notify { d: usize, to: usize, port: u32, space: u32, wake: bool },
    Destroy { d: usize },
    Create { d: usize },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let d = 0..SLOTS;
    let port = 1..=PORTS;
    let partner = 0..=SLOTS; // SLOTS means any sender
    prop_oneof![
        3 => (d.clone(), port.clone(), partner.clone(), 0..LENS.len())
            .prop_map(|(d, port, partner, len)| Op::Register { d, port, partner, len }),
        1 => (d.clone(), port.clone(), partner.clone()).prop_map(|(d, port, partner)| Op::Unregister { d, port, partner }),
        6 => (d.clone(), d.clone(), port.clone(), prop_oneof![0..64usize, 0..1100usize, 0..12300usize], 0..3u32, 0..4u32)
            .prop_map(|(from, to, port, len, src_port, ty)| Op::Send { from, to, port, len, src_port, ty }),
        3 => (d.clone(), port.clone(), partner.clone(), 1..4usize)
            .prop_map(|(d, port, partner, max)| Op::Recv { d, port, partner, max }),
        2 => (d.clone(), d.clone(), port.clone(), 0..2000u32, any::<bool>())
            .prop_map(|(d, to, port, space, wake)| Op::Notify { d, to, port, space, wake }),
        1 => d.clone().prop_map(|d| Op::Destroy { d }),
        1 => d.prop_map(|d| Op::Create { d }),
    ]
}

struct Msg {
    src: Addr,
    ty: u32,
    data: Vec<u8>,
}

struct MRing {
    len: u32,
    gfn: u64,
    used: u32,
    q: VecDeque<Msg>,
}

impl MRing {
    fn free(&self) -> u32 {
        self.len - SLOT_BYTES - self.used
    }
}

struct MDom {
    id: DomId,
    live: bool,
    /// (port, partner domid or DOMID_ANY) -> ring.
    rings: BTreeMap<(u32, u16), MRing>,
}

struct Model {
    doms: Vec<MDom>,
    seq: u32,
}

impl Model {
    fn live_id(&self, id: DomId) -> bool {
        self.doms.iter().any(|d| d.live && d.id == id)
    }

    fn partner_id(&self, p: usize) -> u16 {
        if p == SLOTS {
            DOMID_ANY
        } else {
            self.doms[p].id.0
        }
    }

    fn ring_gfn(port: u32, partner: usize) -> u64 {
        RING_GFN0 + ((port as u64 - 1) * (SLOTS as u64 + 1) + partner as u64) * 3
    }

    fn pinned(&self) -> usize {
        self.doms.iter().filter(|d| d.live).flat_map(|d| d.rings.values()).map(|r| pages(r.len) as usize).sum()
    }

    /// Removes the domain and every ring naming it as partner.
    fn kill(&mut self, i: usize) {
        let id = self.doms[i].id;
        self.doms[i].live = false;
        self.doms[i].rings.clear();
        for d in &mut self.doms {
            d.rings.retain(|k, _| k.1 != id.0);
        }
    }
}

fn run(seed: u64, ops: &[Op], mapped: bool) -> Result<(), TestCaseError> {
    let s = sim(512, seed);
    s.machine().set_preempt(Preempt::OneIn(3));
    let ring_map = if mapped { Trigger::Never } else { Trigger::After(0) };
    s.machine().set_faults(Faults { ring_map, ..Faults::default() });
    let free0 = s.free_frames();
    let mut m = Model { doms: Vec::new(), seq: 0 };
    for _ in 0..SLOTS {
        m.doms.push(MDom { id: dom(&s, DOM_PAGES), live: true, rings: BTreeMap::new() });
    }
    for (step, o) in ops.iter().enumerate() {
        let ctx = format!("step {step}: {o:?} (seed {seed:#x}, rings mapped: {mapped})");
        // A dead caller's vcpus do not run: every op is -ESRCH (and its
        // memory is gone, so nothing is staged).
        let caller = match *o {
            Op::Register { d, .. } | Op::Unregister { d, .. } | Op::Notify { d, .. } => Some(d),
            Op::Send { from, .. } => Some(from),
            _ => None,
        };
        if let Some(d) = caller.filter(|&d| !m.doms[d].live) {
            let cmd = [OP_REGISTER_RING, OP_UNREGISTER_RING, OP_SENDV, OP_NOTIFY][step % 4];
            prop_assert_eq!(op(&s, m.doms[d].id, cmd, [ARG, 0, 0, 0]), err(Errno::ESRCH), "{}", ctx);
            continue;
        }
        match *o {
            Op::Register { d, port, partner, len } => {
                let (id, pid) = (m.doms[d].id, m.partner_id(partner));
                let (len, gfn) = (LENS[len], Model::ring_gfn(port, partner));
                let existing = m.doms[d].rings.get(&(port, pid)).map(|r| r.len);
                // Two rings never share pages (a slot's partner id may change).
                if m.doms[d].rings.iter().any(|(k, r)| r.gfn == gfn && *k != (port, pid)) {
                    continue;
                }
                let r = if existing.is_some() {
                    reregister(&s, id, port, pid, len, gfn)
                } else if m.doms[d].live {
                    register(&s, id, port, pid, len, gfn)
                } else {
                    reregister(&s, id, port, pid, len, gfn)
                };
                let want = if !m.doms[d].live || (pid != DOMID_ANY && !m.live_id(DomId(pid))) {
                    err(Errno::ESRCH)
                } else if let Some(l) = existing {
                    if l == len {
                        0
                    } else {
                        err(Errno::EEXIST)
                    }
                } else {
                    m.doms[d].rings.insert((port, pid), MRing { len, gfn, used: 0, q: VecDeque::new() });
                    0
                };
                prop_assert_eq!(r, want, "{}", ctx);
            }
            Op::Unregister { d, port, partner } => {
                let (id, pid) = (m.doms[d].id, m.partner_id(partner));
                let r = unregister(&s, id, port, pid);
                let want = if !m.doms[d].live {
                    err(Errno::ESRCH)
                } else if m.doms[d].rings.remove(&(port, pid)).is_some() {
                    0
                } else {
                    err(Errno::ENOENT)
                };
                prop_assert_eq!(r, want, "{}", ctx);
            }
            Op::Send { from, to, port, len, src_port, ty } => {
                let (fid, tid) = (m.doms[from].id, m.doms[to].id);
                if !m.doms[from].live {
                    prop_assert_eq!(op(&s, fid, OP_SENDV, [ARG, IOVS, 1, 0]), err(Errno::ESRCH), "{}", ctx);
                    continue;
                }
                m.seq += 1;
                let data = payload(fid, m.seq, len);
                let virq0 = s.machine().virq_count(tid, VIRQ_V4V);
                let r = send(&s, fid, src_port, tid, port, &data, ty);
                let want = if !m.live_id(tid) {
                    err(Errno::ESRCH)
                } else {
                    let t = &mut m.doms[to];
                    let key = if t.rings.contains_key(&(port, fid.0)) { (port, fid.0) } else { (port, DOMID_ANY) };
                    match t.rings.get_mut(&key) {
                        None => err(Errno::ECONNREFUSED),
                        Some(ring) => {
                            let need = message_bytes(len as u32).unwrap();
                            if need > ring.len - SLOT_BYTES {
                                err(Errno::EMSGSIZE)
                            } else if need > ring.free() {
                                err(Errno::EAGAIN)
                            } else {
                                ring.used += need;
                                let src = Addr { port: src_port, domain: fid.0, pad: 0 };
                                ring.q.push_back(Msg { src, ty, data });
                                len as i64
                            }
                        }
                    }
                };
                prop_assert_eq!(r, want, "{}", ctx);
                if r >= 0 {
                    prop_assert!(s.machine().virq_count(tid, VIRQ_V4V) > virq0, "no VIRQ: {}", ctx);
                }
            }
            Op::Recv { d, port, partner, max } => {
                let (id, pid) = (m.doms[d].id, m.partner_id(partner));
                if !m.doms[d].live {
                    continue;
                }
                let Some(ring) = m.doms[d].rings.get_mut(&(port, pid)) else { continue };
                let mut rd = hypercall_abi::ring::RingReader::new(guest_ring(&s, id, ring.gfn << 12), ring.len)
                    .map_err(|e| TestCaseError::fail(format!("{e:?} {ctx}")))?;
                let mut buf = vec![0u8; ring.len as usize];
                for _ in 0..max {
                    let got = rd.recv(&mut buf).map_err(|e| TestCaseError::fail(format!("{e:?} {ctx}")))?;
                    match (got, ring.q.pop_front()) {
                        (None, None) => break,
                        (Some(g), Some(w)) => {
                            prop_assert_eq!(g.header.source, w.src, "true source: {}", ctx);
                            prop_assert_eq!(g.header.msg_type, w.ty, "{}", ctx);
                            prop_assert_eq!(g.header.len as usize, w.data.len(), "{}", ctx);
                            prop_assert!(buf[..w.data.len()] == w.data[..], "byte-exact: {}", ctx);
                            ring.used -= message_bytes(w.data.len() as u32).unwrap();
                        }
                        (g, w) => {
                            return Err(TestCaseError::fail(format!(
                                "got {:?}, model expects {:?}: {ctx}",
                                g.map(|g| g.header),
                                w.map(|w| (w.src, w.data.len()))
                            )))
                        }
                    }
                }
                // The receiver tells Xen it consumed (wakes waiters).
                prop_assert_eq!(op(&s, id, OP_NOTIFY, [0; 4]), 0, "{}", ctx);
            }
            Op::Notify { d, to, port, space, wake } => {
                let (id, tid) = (m.doms[d].id, m.doms[to].id);
                let (r, out) = notify(&s, id, &[query(tid, port, space, wake)]);
                if !m.doms[d].live {
                    prop_assert_eq!(r, err(Errno::ESRCH), "{}", ctx);
                    continue;
                }
                prop_assert_eq!(r, 0, "{}", ctx);
                let t = &m.doms[to];
                let ring =
                    if !t.live { None } else { t.rings.get(&(port, id.0)).or_else(|| t.rings.get(&(port, DOMID_ANY))) };
                let e = out[0];
                match ring {
                    None => prop_assert_eq!(e.flags, 0, "{}", ctx),
                    Some(ring) => {
                        let fits = message_bytes(space).unwrap() <= ring.free();
                        prop_assert_eq!(e.flags & RD_F_EXISTS, RD_F_EXISTS, "{}", ctx);
                        prop_assert_eq!(e.flags & RD_F_SUFFICIENT != 0, fits, "{}", ctx);
                        prop_assert_eq!(e.flags & RD_F_EMPTY != 0, ring.used == 0, "{}", ctx);
                        prop_assert_eq!(e.max_message_size, ring.free().saturating_sub(SLOT_BYTES), "{}", ctx);
                        if wake && !fits && message_bytes(space).unwrap() <= ring.len - SLOT_BYTES {
                            prop_assert_eq!(e.flags & RD_F_PENDING, RD_F_PENDING, "{}", ctx);
                        }
                    }
                }
            }
            Op::Destroy { d } => {
                if !m.doms[d].live {
                    continue;
                }
                let id = m.doms[d].id;
                s.destroy_domain(id).unwrap();
                m.kill(d);
                prop_assert!(!s.hv().v4v.references(id), "state names the dead domain: {}", ctx);
            }
            Op::Create { d } => {
                if m.doms[d].live {
                    continue;
                }
                m.doms[d] = MDom { id: dom(&s, DOM_PAGES), live: true, rings: BTreeMap::new() };
            }
        }
        if let Err(e) = s.check() {
            return Err(TestCaseError::fail(format!("{e}: {ctx}")));
        }
        prop_assert_eq!(s.hv().v4v.pinned_pages(), m.pinned(), "pinned pages: {}", ctx);
        // Far below the caps: every ring is mapped, or none is.
        let want_mapped = if mapped { m.pinned() as u64 } else { 0 };
        prop_assert_eq!(s.machine().ring_maps().1, want_mapped, "mapped pages: {}", ctx);
        prop_assert_eq!(u64::from(s.hv().v4v.ring_map_pages()), want_mapped, "mapped pages counted: {}", ctx);
        for d in m.doms.iter().filter(|d| d.live) {
            prop_assert_eq!(s.hv().v4v.nr_rings(d.id), d.rings.len() as u32, "ring count: {}", ctx);
        }
    }
    for d in m.doms.iter().filter(|d| d.live) {
        s.destroy_domain(d.id).unwrap();
    }
    prop_assert_eq!(s.hv().v4v.pinned_pages(), 0);
    prop_assert_eq!(s.machine().ring_maps(), (0, 0), "a mapping outlived its domain (seed {:#x})", seed);
    prop_assert!(s.check().is_ok());
    prop_assert_eq!(s.free_frames(), free0, "every page returned (seed {:#x})", seed);
    Ok(())
}

#[test]
fn v4v_matches_the_model() {
    let pr = PropRun::from_env("simulator", "v4v_model", "v4v_matches_the_model", 1000);
    let mut runner = TestRunner::new(PtConfig {
        cases: pr.cases,
        rng_seed: RngSeed::Fixed(pr.seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/v4v_model.txt"))),
        ..PtConfig::default()
    });
    let strategy = (any::<u64>(), proptest::collection::vec(op_strategy(), 1..40));
    // Half the cases with every ring mapped, half with none (by the case's
    // own seed, so a replay takes the same path): both paths against the
    // same model at the cost of one run per case (`make test` time).
    if let Err(e) = runner.run(&strategy, |(seed, ops)| run(seed, &ops, seed & 1 == 0)) {
        panic!("{e}\nreplay: {}", pr.replay());
    }
}
