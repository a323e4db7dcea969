//! Unit tests over a minimal in-crate platform: frames with reference
//! counts, one p2m per domain, no guest memory model. The simulator tests
//! (`simulator/tests/sshm_*.rs`) are the real proof; these pin the entry
//! splitting and bookkeeping so `cargo test -p rust-hv` covers the module.

extern crate std;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::vec::Vec;

use hypercall_abi::sshm::*;
use hypercall_abi::{DomId, Errno, Gfn, Mfn};

use super::{Limits, Sshm};
use crate::platform::{DomainInfo, Lock, LockClass, P2mKind, Platform};

struct MutexLock<T>(Mutex<T>);

impl<T: Send> Lock<T> for MutexLock<T> {
    fn new(_class: &'static LockClass, v: T) -> Self {
        MutexLock(Mutex::new(v))
    }
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
}

#[derive(Default)]
struct World {
    /// Frame -> reference count; absent is free.
    refs: BTreeMap<u64, u32>,
    next_mfn: u64,
    /// Orders 9 allocations fail while set.
    no_superpages: bool,
    /// (domid, gfn) -> (mfn, order).
    p2m: BTreeMap<(u16, u64), (u64, u32)>,
    /// Domain -> (translated, dying).
    domains: BTreeMap<u16, (bool, bool)>,
    /// Inserts fail with -ENOMEM after this many more.
    insert_budget: Option<u32>,
}

struct Mock(Mutex<World>);

impl Platform for Mock {
    type Lock<T: Send> = MutexLock<T>;
    type Domain = DomId;

    fn domain(&self, id: DomId) -> Result<DomId, Errno> {
        self.0.lock().unwrap().domains.get(&id.0).map(|_| id).ok_or(Errno::ESRCH)
    }
    fn domain_info(&self, d: &DomId) -> DomainInfo {
        let (translated, dying) = self.0.lock().unwrap().domains.get(&d.0).copied().unwrap_or((true, true));
        DomainInfo { id: *d, translated, dying, control: d.0 == 0, altp2m: false, nested_virt: false }
    }
    fn sshm_alloc(&self, order: u32) -> Result<Mfn, Errno> {
        let mut w = self.0.lock().unwrap();
        if order > 0 && w.no_superpages {
            return Err(Errno::ENOMEM);
        }
        let base = w.next_mfn.next_multiple_of(1 << order);
        w.next_mfn = base + (1 << order);
        for m in base..base + (1 << order) {
            w.refs.insert(m, 1);
        }
        Ok(Mfn(base))
    }
    fn sshm_free(&self, mfn: Mfn, order: u32) {
        let mut w = self.0.lock().unwrap();
        for m in mfn.0..mfn.0 + (1 << order) {
            let r = w.refs.get_mut(&m).unwrap();
            *r -= 1;
            if *r == 0 {
                w.refs.remove(&m);
            }
        }
    }
    fn p2m_insert(&self, d: &DomId, gfn: Gfn, mfn: Mfn, order: u32, _kind: P2mKind) -> Result<(), Errno> {
        assert!(gfn.is_aligned(order) && mfn.is_aligned(order) && (order == 0 || order == 9));
        let mut w = self.0.lock().unwrap();
        if let Some(b) = &mut w.insert_budget {
            if *b == 0 {
                return Err(Errno::ENOMEM);
            }
            *b -= 1;
        }
        let n = 1u64 << order;
        let lo = (d.0, gfn.0.saturating_sub(511));
        if w.p2m.range(lo..(d.0, gfn.0 + n)).any(|(&(_, g), &(_, o))| g + (1 << o) > gfn.0) {
            return Err(Errno::EBUSY);
        }
        for m in mfn.0..mfn.0 + n {
            *w.refs.get_mut(&m).unwrap() += 1;
        }
        w.p2m.insert((d.0, gfn.0), (mfn.0, order));
        Ok(())
    }
    fn p2m_remove(&self, d: &DomId, gfn: Gfn, mfn: Mfn, order: u32) -> Result<(), Errno> {
        let mut w = self.0.lock().unwrap();
        if w.p2m.get(&(d.0, gfn.0)) != Some(&(mfn.0, order)) {
            return Err(Errno::EINVAL);
        }
        w.p2m.remove(&(d.0, gfn.0));
        drop(w);
        self.sshm_free(mfn, order);
        Ok(())
    }
    fn p2m_populated(&self, d: &DomId, gfn: Gfn, order: u32) -> bool {
        let w = self.0.lock().unwrap();
        w.p2m.range((d.0, 0)..(d.0, gfn.0 + (1 << order))).any(|(&(_, g), &(_, o))| g + (1 << o) > gfn.0)
    }
    fn page_pin_writable(&self, _d: &DomId, _gfn: Gfn) -> Result<Mfn, Errno> {
        Err(Errno::EINVAL)
    }
    fn page_unpin(&self, _mfn: Mfn) {}
    fn frame_read(&self, _mfn: Mfn, _offset: usize, _buf: &mut [u8]) {}
    fn frame_write(&self, _mfn: Mfn, _offset: usize, _buf: &[u8]) {}
    fn copy_from_guest(&self, _c: &DomId, _addr: u64, _buf: &mut [u8]) -> Result<(), Errno> {
        Ok(())
    }
    fn copy_to_guest(&self, _c: &DomId, addr: u64, _buf: &[u8]) -> Result<(), Errno> {
        if addr >= 1 << 20 {
            Err(Errno::EFAULT)
        } else {
            Ok(())
        }
    }
    fn copy_from_guest_to_frame(
        &self,
        _c: &DomId,
        _addr: u64,
        _mfn: Mfn,
        _offset: usize,
        _len: usize,
    ) -> Result<(), Errno> {
        Ok(())
    }
    fn smp_wmb(&self) {}
    fn xsm_v4v_register(&self, _caller: &DomId, _partner: Option<&DomId>) -> Result<(), Errno> {
        Ok(())
    }
    fn xsm_v4v_send(&self, _src: &DomId, _dst: &DomId) -> Result<(), Errno> {
        Ok(())
    }
    fn xsm_v4v_firewall(&self, _caller: &DomId) -> Result<(), Errno> {
        Ok(())
    }
    fn xsm_sshm_regions(&self, _caller: &DomId) -> Result<(), Errno> {
        Ok(())
    }
    fn send_virq(&self, _d: &DomId, _virq: u32) {}
    fn preempt_check(&self) -> bool {
        false
    }
    fn lock_held(&self) -> Option<&'static LockClass> {
        None
    }
}

fn setup() -> (Mock, Sshm<Mock>) {
    let mut w = World::default();
    w.domains.insert(0, (true, false));
    w.domains.insert(1, (true, false));
    w.domains.insert(2, (true, false));
    w.domains.insert(3, (false, false));
    (Mock(Mutex::new(w)), Sshm::new(Limits { total_pages_max: 1 << 16, region_pages_max: 1 << 14, regions_max: 8 }))
}

fn op(o: u32, name: &str) -> StaticShm {
    StaticShm { op: o, name: *Name::new(name).unwrap().field(), ..Default::default() }
}

fn attach(name: &str, nr_pages: u64, offset: u64, gfn: u64, flags: u32) -> StaticShm {
    StaticShm { nr_pages, offset, gfn, flags, prot: PROT_RW, ..op(OP_ATTACH, name) }
}

/// Issues `o` on `target` until it stops asking for a continuation.
fn run(p: &Mock, s: &Sshm<Mock>, target: u16, mut o: StaticShm) -> (Result<i64, Errno>, u32) {
    let mut calls = 1;
    loop {
        match s.domctl(p, &DomId(0), DomId(target), &mut o) {
            Err(Errno::ERESTART) => calls += 1,
            r => return (r, calls),
        }
    }
}

#[test]
fn superpages_where_aligned_and_continuations() {
    let (p, s) = setup();
    // 1030 pages: two 2 MiB chunks and six 4 KiB frames.
    let c = StaticShm { nr_pages: 1030, prot: PROT_RW, ..op(OP_CREATE, "big") };
    assert_eq!(run(&p, &s, 0, c).0, Ok(0));
    assert_eq!(run(&p, &s, 1, attach("big", 1030, 0, 0x200, 0)), (Ok(0), 1));
    {
        let w = p.0.lock().unwrap();
        let orders: Vec<u32> = w.p2m.values().map(|&(_, o)| o).collect();
        assert_eq!(orders.iter().filter(|&&o| o == 9).count(), 2);
        assert_eq!(orders.len(), 2 + 6);
    }
    // Unaligned gfn: all 4 KiB, more than one batch.
    assert_eq!(run(&p, &s, 2, attach("big", 1000, 10, 0x201, 0)), (Ok(0), 4));
    assert_eq!(s.stats().attachments, 2);
    let d = StaticShm { gfn: 0x201, ..op(OP_DETACH, "big") };
    assert_eq!(run(&p, &s, 2, d), (Ok(0), 4));
    let d = StaticShm { gfn: 0x200, nr_pages: 1030, ..op(OP_DETACH, "big") };
    assert_eq!(run(&p, &s, 1, d).0, Ok(0));
    // Transient and used: freed.
    assert_eq!(s.stats().regions, 0);
    assert!(p.0.lock().unwrap().refs.is_empty());
}

#[test]
fn failed_attach_rolls_back_everything() {
    let (p, s) = setup();
    p.0.lock().unwrap().insert_budget = Some(300);
    let a = attach("r", 600, 0, 0x1001, F_CREATE | F_PERSISTENT);
    // Two calls map 300 entries and fail; the 300 are unmapped in bounded
    // steps too, the last of them returning the attach's error.
    assert_eq!(run(&p, &s, 1, a), (Err(Errno::ENOMEM), 3));
    assert_eq!(s.stats(), Default::default());
    let w = p.0.lock().unwrap();
    assert!(w.p2m.is_empty() && w.refs.is_empty());
}

#[test]
fn fallback_to_small_frames() {
    let (p, s) = setup();
    p.0.lock().unwrap().no_superpages = true;
    assert_eq!(run(&p, &s, 1, attach("r", 1024, 0, 0, F_CREATE)), (Ok(0), 4));
    assert_eq!(p.0.lock().unwrap().p2m.len(), 1024);
    // 1024 entries: the teardown takes 4 bounded steps.
    let mut steps = 1;
    while s.domain_destroy(&p, &DomId(1)) == Err(Errno::ERESTART) {
        steps += 1;
    }
    assert_eq!(steps, 1024 / super::BATCH_ENTRIES_MAX);
    assert_eq!(s.stats(), Default::default());
    assert!(p.0.lock().unwrap().refs.is_empty());
}

#[test]
fn errors() {
    let (p, s) = setup();
    let c = StaticShm { nr_pages: 4, prot: PROT_READ, ..op(OP_CREATE, "ro") };
    assert_eq!(run(&p, &s, 0, c).0, Ok(0));
    assert_eq!(run(&p, &s, 0, c).0, Err(Errno::EEXIST));
    assert_eq!(run(&p, &s, 1, attach("ro", 4, 0, 0, 0)).0, Err(Errno::EACCES));
    let a = StaticShm { prot: PROT_READ, ..attach("ro", 4, 1, 0, 0) };
    assert_eq!(run(&p, &s, 1, a).0, Err(Errno::EINVAL));
    assert_eq!(run(&p, &s, 1, attach("ro", 5, 0, 0, F_CREATE)).0, Err(Errno::EEXIST));
    assert_eq!(run(&p, &s, 3, attach("ro", 1, 0, 0, 0)).0, Err(Errno::EOPNOTSUPP));
    assert_eq!(run(&p, &s, 9, attach("ro", 1, 0, 0, 0)).0, Err(Errno::ESRCH));
    assert_eq!(run(&p, &s, 1, attach("nope", 1, 0, 0, 0)).0, Err(Errno::ENOENT));
    let a = StaticShm { prot: PROT_READ, ..attach("ro", 2, 0, 8, 0) };
    assert_eq!(run(&p, &s, 1, a).0, Ok(0));
    let b = StaticShm { prot: PROT_READ, ..attach("ro", 2, 0, 9, 0) };
    assert_eq!(run(&p, &s, 1, b).0, Err(Errno::EBUSY));
    let big = StaticShm { nr_pages: 1 << 15, prot: PROT_RW, ..op(OP_CREATE, "huge") };
    assert_eq!(run(&p, &s, 0, big).0, Err(Errno::E2BIG));
    let d = StaticShm { gfn: 9, ..op(OP_DETACH, "ro") };
    assert_eq!(run(&p, &s, 1, d).0, Err(Errno::ENOENT));
    // Unlinked while attached: lives on, freed by the last detach.
    assert_eq!(run(&p, &s, 0, op(OP_UNLINK, "ro")).0, Ok(0));
    assert_eq!(s.stats().regions, 1);
    let i = StaticShm { buffer: 64, ..op(OP_INFO, "ro") };
    assert_eq!(run(&p, &s, 0, i).0, Err(Errno::ENOENT));
    assert_eq!(s.domain_destroy(&p, &DomId(1)), Ok(()));
    assert_eq!(s.stats(), Default::default());
}

#[test]
fn list_cursor() {
    let (p, s) = setup();
    for n in ["c", "a", "b"] {
        let c = StaticShm { nr_pages: 1, prot: PROT_RW, ..op(OP_CREATE, n) };
        assert_eq!(run(&p, &s, 0, c).0, Ok(0));
    }
    let mut l = StaticShm { op: OP_LIST, buffer: 64, nr_entries: 2, ..Default::default() };
    assert_eq!(s.domctl(&p, &DomId(0), DomId(0), &mut l), Ok(1));
    assert_eq!((l.nr_entries, Name::from_field(&l.name).unwrap().as_str()), (2, "b"));
    l.nr_entries = 2;
    assert_eq!(s.domctl(&p, &DomId(0), DomId(0), &mut l), Ok(0));
    assert_eq!((l.nr_entries, Name::from_field(&l.name).unwrap().as_str()), (1, "c"));
}
