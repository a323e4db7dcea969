//! The machine: frame table, domains, p2m, grant tables and event channels
//! under one lock, and its [`Platform`] implementation.
//!
//! # Locking
//!
//! - `Machine::state` (a `Mutex<State>`) protects everything the machine
//!   models. It is a leaf lock: it is never held while calling into
//!   `rust-hv`, and `rust-hv` may hold its own locks (`SimLock`) while
//!   calling a `Platform` method, which takes it briefly. Each `Platform`
//!   call is therefore atomic, as each p2m or page operation is in Xen.
//! - `DomainRec::pause` (an `RwLock<()>` per domain) is taken shared by each
//!   hypercall of that domain and exclusively by `domain_kill`, before the
//!   state lock is taken and never while it is held.
//! - `Machine::rng`, `Machine::preempt` and `Machine::xsm` are leaves, taken alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use hypercall_abi::{DomId, Errno, Gfn, Mfn, PAGE_ORDER_2M, PAGE_SIZE};
use rust_hv::platform::{DomainInfo, P2mKind};
use rust_hv::Platform;

use crate::domain::{Dom, DomainKind, DomainRec, DomainState, Slot};
use crate::evtchn::PortState;
use crate::frame::{FrameTable, Owner, Put, PAGE_BYTES};
use crate::lock::SimLock;
use crate::p2m::P2mType;
use crate::rng::SplitMix64;

/// Most RAM a domain may be created with, in pages (16 GiB).
pub const RAM_PAGES_MAX: u64 = 1 << 22;
/// Most misuse reports kept (see [`Machine::violations`]); later ones are
/// counted only.
pub const VIOLATIONS_MAX: usize = 64;
/// Most bytes one guest copy may move (a hypercall buffer or a test's
/// guest access).
pub const GUEST_COPY_MAX: usize = 16 << 20;

/// Counts of `Platform` calls that cost work proportional to what a guest
/// or the toolstack sized, for tests that bound the work per step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// `p2m_remove` calls (each walks a shadow table under `hap=0`).
    pub p2m_removes: u64,
    /// `page_unpin` calls.
    pub unpins: u64,
    /// `sshm_alloc` calls.
    pub sshm_allocs: u64,
    /// `sshm_alloc` calls made with a `rust-hv` lock held.
    pub sshm_allocs_locked: u64,
    /// `sshm_free` calls (each clears its frames).
    pub sshm_frees: u64,
    /// `sshm_free` calls made with a `rust-hv` lock held.
    pub sshm_frees_locked: u64,
}

/// When `preempt_check` says yes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preempt {
    /// Never: hypercalls run to completion.
    Never,
    /// Always (the logic must still make progress between checks).
    Always,
    /// With probability `1/n`, drawn from the seeded generator.
    OneIn(u32),
}

/// Everything under the machine lock.
pub(crate) struct State {
    pub frames: FrameTable,
    /// Live and dying domains by id.
    pub domains: BTreeMap<u16, Slot>,
    /// Ids of domains that died and whose id has not been reused.
    pub dead: BTreeSet<u16>,
    /// Xen's `rover`: the last id handed out automatically.
    pub rover: u16,
    /// Pins by `page_pin_writable`, mfn -> count.
    pub pins: BTreeMap<u64, u32>,
    /// Frames whose allocated reference the sshm pseudo-domain holds.
    pub sshm_pages: u64,
    /// Misuse of the `Platform` contract seen (a put nobody held, access to
    /// a free frame...): each is a bug in the caller, reported by the
    /// invariant checker.
    pub violations: Vec<String>,
    pub violations_total: u64,
    /// Guest writes (page pieces) discarded because the p2m entry is
    /// read-only.
    pub write_discards: u64,
    /// Domains that became zombies when killed (log, in order).
    pub zombie_log: Vec<DomId>,
    /// See [`Machine::set_p2m_insert_fault`].
    pub p2m_insert_fault: Option<u64>,
    /// Work done through the `Platform` so far (see [`Machine::work`]).
    pub work: Work,
    /// Short-lived general references taken by someone else than rust-hv
    /// (mfn -> count): what a PV guest or another Xen path can take on any
    /// frame for the length of one operation (`get_page`).
    pub transient: BTreeMap<u64, u32>,
}

impl State {
    pub(crate) fn violation(&mut self, msg: String) {
        self.violations_total += 1;
        if self.violations.len() < VIOLATIONS_MAX {
            self.violations.push(msg);
        }
    }

    /// The slot of a handle's incarnation: `-ESRCH` once that incarnation
    /// is gone (even if the id is in use again).
    pub(crate) fn slot(&self, d: &Dom) -> Result<&Slot, Errno> {
        self.domains.get(&d.id().0).filter(|s| Arc::ptr_eq(&s.rec, &d.0)).ok_or(Errno::ESRCH)
    }

    pub(crate) fn slot_mut(&mut self, d: &Dom) -> Result<&mut Slot, Errno> {
        self.domains.get_mut(&d.id().0).filter(|s| Arc::ptr_eq(&s.rec, &d.0)).ok_or(Errno::ESRCH)
    }

    /// Drops one reference on `mfn`; when that frees a domain's last frame
    /// and the domain has been relinquished, it is dead.
    pub(crate) fn put_frame(&mut self, mfn: u64) {
        match self.frames.put(mfn) {
            Ok(Put::Held) => {}
            Ok(Put::Freed(owner)) => self.account_freed(owner),
            Err(msg) => self.violation(msg),
        }
    }

    fn account_freed(&mut self, owner: Owner) {
        match owner {
            Owner::Dom(id) => {
                let Some(slot) = self.domains.get_mut(&id.0) else {
                    self.violation(format!("freed a frame of d{} which has no record", id.0));
                    return;
                };
                slot.tot_pages = slot.tot_pages.saturating_sub(1);
                if slot.relinquished && slot.tot_pages == 0 {
                    self.finish_death(id);
                }
            }
            // The sshm count drops with the allocated reference, in
            // `sshm_free`, not when the last mapping goes.
            Owner::Sshm | Owner::Free => {}
        }
    }

    /// The last frame of a dying domain went: `struct domain` is freed and
    /// the id is free for reuse.
    fn finish_death(&mut self, id: DomId) {
        if let Some(slot) = self.domains.remove(&id.0) {
            slot.rec.set_state(DomainState::Dead);
            self.dead.insert(id.0);
        }
    }

    /// Picks a free domain id as Xen's `XEN_DOMCTL_createdomain` does: the
    /// first domain is dom0; later ones take the next free id after the
    /// last one handed out, wrapping below the reserved range and skipping
    /// 0. An id is free once its previous holder is fully dead (a zombie
    /// keeps its id).
    fn alloc_domid(&mut self) -> Result<DomId, Errno> {
        if self.domains.is_empty() && self.dead.is_empty() && self.rover == 0 {
            return Ok(DomId(0));
        }
        let first = DomId::FIRST_RESERVED.0;
        let mut dom = self.rover;
        for _ in 0..first {
            dom = dom.wrapping_add(1);
            if dom >= first || dom == 0 {
                dom = 1;
            }
            if !self.domains.contains_key(&dom) {
                self.rover = dom;
                return Ok(DomId(dom));
            }
        }
        Err(Errno::ENOMEM)
    }

    /// Calls `f(frames, mfn, offset, at, n)` for each page piece of the
    /// guest range `[gpa, gpa + len)` in order (`at`: the piece's offset in
    /// the range), after checking the whole range: a hole is `-EFAULT` with
    /// nothing touched. A write to a read-only entry is discarded and
    /// counted, and the rest of the range is written, as Xen's
    /// `__hvm_copy()` does for its discard-write types (`p2m_ram_ro`,
    /// `p2m_grant_map_ro`: every read-only type modelled here), and as a
    /// translated guest's store through such an entry is emulated and
    /// dropped. A real host showed it: a Linux guest's `devmem` store to a
    /// read-only static shm view completed and changed nothing, where this
    /// model used to refuse it. `gpa` is a
    /// guest-linear address, translated through [`Slot::linear`]
    /// (identity where that has no entry). Allocates
    /// nothing: a range within one page (every small access) is looked up
    /// once, a longer one twice (check, then copy).
    fn guest_walk(
        &mut self,
        id: DomId,
        gpa: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(&mut FrameTable, u64, usize, usize, usize),
    ) -> Result<(), Errno> {
        if len > GUEST_COPY_MAX {
            return Err(Errno::EFAULT);
        }
        // A range may end exactly at 2^64 (the last byte of the address
        // space is addressable); only one that would go past it faults.
        let end = u128::from(gpa) + len as u128;
        if end > 1u128 << 64 {
            return Err(Errno::EFAULT);
        }
        let slot = self.domains.get(&id.0).ok_or(Errno::ESRCH)?;
        if len == 0 {
            return Ok(());
        }
        let off = (gpa % PAGE_SIZE) as usize;
        if off + len <= PAGE_BYTES {
            let (mfn, t) = slot.translate(gpa / PAGE_SIZE).ok_or(Errno::EFAULT)?;
            if write && !t.writable() {
                self.write_discards += 1;
            } else {
                f(&mut self.frames, mfn.0, off, 0, len);
            }
            return Ok(());
        }
        for (page, _, _, _) in pieces(gpa, end) {
            slot.translate(page).ok_or(Errno::EFAULT)?;
        }
        for (page, off, at, n) in pieces(gpa, end) {
            // Checked above, under the same lock.
            let (mfn, t) = slot.translate(page).ok_or(Errno::EFAULT)?;
            if write && !t.writable() {
                self.write_discards += 1;
            } else {
                f(&mut self.frames, mfn.0, off, at, n);
            }
        }
        Ok(())
    }

    pub(crate) fn guest_read(&mut self, id: DomId, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.guest_walk(id, gpa, buf.len(), false, |frames, mfn, off, at, n| {
            frames.read(mfn, off, &mut buf[at..at + n]);
        })
    }

    pub(crate) fn guest_write(&mut self, id: DomId, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        self.guest_walk(id, gpa, buf.len(), true, |frames, mfn, off, at, n| {
            frames.write(mfn, off, &buf[at..at + n]);
        })
    }

    /// Copies guest memory into a frame (`offset + len` within it, checked
    /// by the caller), one copy per page piece.
    pub(crate) fn guest_read_to_frame(
        &mut self,
        id: DomId,
        gpa: u64,
        dst: u64,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        self.guest_walk(id, gpa, len, false, |frames, mfn, off, at, n| {
            frames.copy(mfn, off, dst, offset + at, n);
        })
    }

    /// `domain_relinquish_resources`: drops the domain's grant mappings of
    /// others' pages, tears down its p2m (dropping the references non-RAM
    /// entries hold), closes its event channels and drops the allocated
    /// reference of each frame it owns. Frames still referenced elsewhere
    /// keep it alive as a zombie.
    pub(crate) fn relinquish(&mut self, id: DomId) -> DomainState {
        self.gnttab_release_mappings(id);
        let Some(slot) = self.domains.get_mut(&id.0) else { return DomainState::Dead };
        let entries = slot.p2m.drain();
        let pages = std::mem::take(&mut slot.page_list);
        let ports: Vec<(u32, PortState)> = slot.evtchn.iter().map(|(p, s)| (p, s.state)).collect();
        for (_, e) in entries {
            if e.t.holds_ref() {
                for i in 0..(1u64 << e.order) {
                    self.put_frame(e.mfn.0 + i);
                }
            }
        }
        for (port, st) in ports {
            self.evtchn_close_port(id, port, st);
        }
        if let Some(slot) = self.domains.get_mut(&id.0) {
            slot.relinquished = true;
        }
        for (mfn, order) in pages {
            for m in mfn..mfn + (1u64 << order) {
                match self.frames.put_allocated(m, Owner::Dom(id)) {
                    Ok(Some(Put::Freed(owner))) => self.account_freed(owner),
                    Ok(_) => {}
                    Err(msg) => self.violation(msg),
                }
            }
        }
        match self.domains.get(&id.0) {
            None => DomainState::Dead,
            Some(s) if s.tot_pages == 0 => {
                self.finish_death(id);
                DomainState::Dead
            }
            Some(_) => {
                self.zombie_log.push(id);
                DomainState::Dying
            }
        }
    }

    /// Closes one port, turning an interdomain peer's end back to unbound
    /// (`evtchn_close`).
    pub(crate) fn evtchn_close_port(&mut self, id: DomId, port: u32, st: PortState) {
        if let Some(slot) = self.domains.get_mut(&id.0) {
            slot.evtchn.free(port);
        }
        if let PortState::Interdomain { remote, rport } = st {
            if let Some(p) = self.domains.get_mut(&remote.0).and_then(|s| s.evtchn.port_mut(rport)) {
                p.state = PortState::Unbound { remote: id };
            }
        }
    }
}

/// The simulated machine. Implements [`Platform`]; `Sync`, with internal
/// locks (see the module's locking block).
pub struct Machine {
    state: Mutex<State>,
    rng: Mutex<SplitMix64>,
    preempt: Mutex<Preempt>,
    xsm: Mutex<Xsm>,
    seed: u64,
    sshm_pages_max: u64,
}

/// An XSM hook of [`Platform`], for [`Machine::set_xsm_deny`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsmHook {
    /// [`Platform::xsm_v4v_register`].
    V4vRegister,
    /// [`Platform::xsm_v4v_send`].
    V4vSend,
    /// [`Platform::xsm_v4v_firewall`] (on top of the dummy policy's
    /// control-domain-only rule).
    V4vFirewall,
    /// [`Platform::xsm_sshm_regions`] (on top of the dummy policy's
    /// control-domain-only rule).
    SshmRegions,
}

/// The simulated XSM policy: Xen's dummy policy (allow) unless a test makes
/// a hook refuse, and what the hooks were asked.
#[derive(Debug, Default)]
struct Xsm {
    register_deny: Option<Errno>,
    send_deny: Option<Errno>,
    firewall_deny: Option<Errno>,
    sshm_regions_deny: Option<Errno>,
    /// How many times [`Platform::xsm_sshm_regions`] was asked.
    sshm_regions_asked: u64,
    /// The last caller [`Platform::xsm_v4v_firewall`] was asked about.
    firewall_last: Option<DomId>,
    /// The last question asked of each hook: `(caller, partner)` and
    /// `(src, dst)`.
    register_last: Option<(DomId, Option<DomId>)>,
    send_last: Option<(DomId, DomId)>,
}

/// A zombie as reported by [`Machine::zombies`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zombie {
    /// The dying domain.
    pub id: DomId,
    /// Frames it still owns.
    pub pages: u64,
    /// Domains whose p2m still maps one of them.
    pub held_by: Vec<DomId>,
    /// Frames of it pinned (by V4V rings).
    pub pinned: u64,
}

impl Machine {
    pub(crate) fn new(frames: u64, seed: u64, sshm_pages_max: u64) -> Machine {
        Machine {
            state: Mutex::new(State {
                frames: FrameTable::new(frames),
                domains: BTreeMap::new(),
                dead: BTreeSet::new(),
                rover: 0,
                pins: BTreeMap::new(),
                sshm_pages: 0,
                violations: Vec::new(),
                violations_total: 0,
                write_discards: 0,
                zombie_log: Vec::new(),
                p2m_insert_fault: None,
                work: Work::default(),
                transient: BTreeMap::new(),
            }),
            rng: Mutex::new(SplitMix64::new(seed)),
            preempt: Mutex::new(Preempt::OneIn(8)),
            xsm: Mutex::new(Xsm::default()),
            seed,
            sshm_pages_max,
        }
    }

    /// The machine lock. A panic elsewhere with the lock held (a failed
    /// test assertion) must not hide the state from the checkers.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The seed the machine's randomness was drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The sshm memory cap the checker holds the pseudo-domain to.
    pub fn sshm_pages_max(&self) -> u64 {
        self.sshm_pages_max
    }

    /// Sets the preemption policy (default: `OneIn(8)`, seeded).
    pub fn set_preempt(&self, p: Preempt) {
        *self.preempt.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Makes an XSM hook refuse every question with `e` (`None`: allow
    /// again, the dummy policy).
    pub fn set_xsm_deny(&self, hook: XsmHook, e: Option<Errno>) {
        let mut x = self.xsm.lock().unwrap_or_else(|e| e.into_inner());
        match hook {
            XsmHook::V4vRegister => x.register_deny = e,
            XsmHook::V4vSend => x.send_deny = e,
            XsmHook::V4vFirewall => x.firewall_deny = e,
            XsmHook::SshmRegions => x.sshm_regions_deny = e,
        }
    }

    /// The last question asked of [`Platform::xsm_v4v_register`]:
    /// `(caller, partner)`.
    pub fn xsm_v4v_register_last(&self) -> Option<(DomId, Option<DomId>)> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).register_last
    }

    /// How many times [`Platform::xsm_sshm_regions`] was asked.
    pub fn xsm_sshm_regions_asked(&self) -> u64 {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).sshm_regions_asked
    }

    /// The last caller [`Platform::xsm_v4v_firewall`] was asked about.
    pub fn xsm_v4v_firewall_last(&self) -> Option<DomId> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).firewall_last
    }

    /// The last question asked of [`Platform::xsm_v4v_send`]: `(src, dst)`.
    pub fn xsm_v4v_send_last(&self) -> Option<(DomId, DomId)> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).send_last
    }

    /// Free frames in the pool.
    pub fn free_frames(&self) -> u64 {
        self.lock().frames.free_count()
    }

    /// Frames in the pool.
    pub fn total_frames(&self) -> u64 {
        self.lock().frames.len()
    }

    /// A frame's metadata.
    pub fn frame(&self, mfn: Mfn) -> Option<crate::frame::Frame> {
        self.lock().frames.get(mfn.0).copied()
    }

    /// What `gfn` of domain `d` maps to.
    pub fn p2m_lookup(&self, d: DomId, gfn: Gfn) -> Option<(Mfn, P2mType)> {
        self.lock().domains.get(&d.0)?.p2m.lookup(gfn)
    }

    /// Frames domain `d` owns (`tot_pages`).
    pub fn tot_pages(&self, d: DomId) -> Option<u64> {
        self.lock().domains.get(&d.0).map(|s| s.tot_pages)
    }

    /// Frames whose allocated reference the sshm pseudo-domain holds.
    pub fn sshm_pages(&self) -> u64 {
        self.lock().sshm_pages
    }

    /// How many times `virq` was raised on `d` (bound or not).
    pub fn virq_count(&self, d: DomId, virq: u32) -> u64 {
        self.lock().domains.get(&d.0).and_then(|s| s.virq_raised.get(&virq).copied()).unwrap_or(0)
    }

    /// Whether `virq`'s port on `d` is pending.
    pub fn virq_pending(&self, d: DomId, virq: u32) -> bool {
        let st = self.lock();
        let Some(s) = st.domains.get(&d.0) else { return false };
        s.evtchn.virq_port(virq).and_then(|p| s.evtchn.port(p)).is_some_and(|p| p.pending)
    }

    /// Guest writes (page pieces) discarded because the entry is
    /// read-only.
    pub fn write_discards(&self) -> u64 {
        self.lock().write_discards
    }

    /// Misuse of the `Platform` contract seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Every domain that became a zombie when killed, in order.
    pub fn zombie_log(&self) -> Vec<DomId> {
        self.lock().zombie_log.clone()
    }

    /// The current zombies: killed domains whose frames are still
    /// referenced, with who holds them.
    pub fn zombies(&self) -> Vec<Zombie> {
        let st = self.lock();
        let mut out = Vec::new();
        for (&id, slot) in &st.domains {
            if !slot.relinquished {
                continue;
            }
            let mut held_by = BTreeSet::new();
            for (&other, o) in &st.domains {
                for (_, e) in o.p2m.iter() {
                    let owned = (0..(1u64 << e.order))
                        .any(|i| st.frames.get(e.mfn.0 + i).is_some_and(|f| f.owner == Owner::Dom(DomId(id))));
                    if owned {
                        held_by.insert(DomId(other));
                    }
                }
            }
            let pinned =
                st.pins.keys().filter(|&&m| st.frames.get(m).is_some_and(|f| f.owner == Owner::Dom(DomId(id)))).count()
                    as u64;
            out.push(Zombie { id: DomId(id), pages: slot.tot_pages, held_by: held_by.into_iter().collect(), pinned });
        }
        out
    }

    /// The work counters so far.
    pub fn work(&self) -> Work {
        self.lock().work
    }

    /// Arms a one-shot fault: the next 2 MiB [`Platform::p2m_insert`] has
    /// `p2m_set_entry` write its first `written` pages as 4 KiB entries and
    /// then fail with `-ENOMEM`, as Xen's does when it must split the
    /// request (no 2 MiB support in this p2m, shadow paging) and runs out of
    /// p2m pages part way. `None` disarms it.
    pub fn set_p2m_insert_fault(&self, written: Option<u64>) {
        self.lock().p2m_insert_fault = written;
    }

    /// Takes a transient general reference on any in-use frame, as another
    /// Xen path (or a PV guest's hypercall) may at any moment: `get_page`.
    /// `-EINVAL` for a free frame.
    pub fn page_get_transient(&self, mfn: Mfn) -> Result<(), Errno> {
        let mut st = self.lock();
        st.frames.get_ref(mfn.0)?;
        *st.transient.entry(mfn.0).or_insert(0) += 1;
        Ok(())
    }

    /// Drops a reference from [`Machine::page_get_transient`] (`put_page`):
    /// the frame may return to the heap now.
    pub fn page_put_transient(&self, mfn: Mfn) {
        let mut st = self.lock();
        match st.transient.get_mut(&mfn.0) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    st.transient.remove(&mfn.0);
                }
            }
            _ => {
                st.violation(format!("page_put_transient of mfn {:#x} with no transient reference", mfn.0));
                return;
            }
        }
        st.put_frame(mfn.0);
    }

    /// Changes one RAM page's type (`HVMOP_set_mem_type`), e.g. to make it
    /// read-only. `-EINVAL` for a non-RAM entry or unpopulated gfn.
    pub fn set_ram_type(&self, d: DomId, gfn: Gfn, writable: bool) -> Result<(), Errno> {
        let mut st = self.lock();
        let slot = st.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?;
        slot.p2m.set_ram_type(gfn, if writable { P2mType::RamRw } else { P2mType::RamRo })
    }

    /// A handle on the current incarnation of `id`.
    pub(crate) fn handle(&self, id: DomId) -> Result<Dom, Errno> {
        self.lock().domains.get(&id.0).map(|s| Dom(s.rec.clone())).ok_or(Errno::ESRCH)
    }

    /// Creates a domain with `ram_pages` of RAM at gfns `0..ram_pages`,
    /// in 2 MiB chunks where the gfn is aligned and such a chunk is free,
    /// else 4 KiB frames. All or nothing: `-ENOMEM` leaves nothing behind.
    pub(crate) fn create_domain(&self, kind: DomainKind, ram_pages: u64, control: bool) -> Result<DomId, Errno> {
        if ram_pages > RAM_PAGES_MAX {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        let id = st.alloc_domid()?;
        let rec = Arc::new(DomainRec::new(id, kind, control));
        st.domains.insert(id.0, Slot::new(rec));
        st.dead.remove(&id.0);
        let mut gfn = 0u64;
        let res: Result<(), Errno> = loop {
            if gfn >= ram_pages {
                break Ok(());
            }
            let big = 1u64 << PAGE_ORDER_2M;
            let want_big = gfn.is_multiple_of(big) && ram_pages - gfn >= big;
            let (mfn, order) = match want_big.then(|| st.frames.alloc(PAGE_ORDER_2M, Owner::Dom(id))) {
                Some(Ok(m)) => (m, PAGE_ORDER_2M),
                _ => match st.frames.alloc(0, Owner::Dom(id)) {
                    Ok(m) => (m, 0),
                    Err(e) => break Err(e),
                },
            };
            let Some(slot) = st.domains.get_mut(&id.0) else { break Err(Errno::ESRCH) };
            slot.page_list.push((mfn, order));
            slot.tot_pages += 1u64 << order;
            if let Err(e) = slot.p2m.insert(Gfn(gfn), Mfn(mfn), order, P2mType::RamRw) {
                break Err(e);
            }
            gfn += 1u64 << order;
        };
        if let Err(e) = res {
            // Undo: the domain never existed; its frames go straight back.
            if let Some(slot) = st.domains.remove(&id.0) {
                for (mfn, order) in slot.page_list {
                    for m in mfn..mfn + (1u64 << order) {
                        if let Err(msg) = st.frames.put_allocated(m, Owner::Dom(id)) {
                            st.violation(msg);
                        }
                    }
                }
            }
            return Err(e);
        }
        Ok(id)
    }

    fn draw(&self) -> u64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64()
    }
}

impl Platform for Machine {
    type Lock<T: Send> = SimLock<T>;
    type Domain = Dom;

    fn domain(&self, id: DomId) -> Result<Dom, Errno> {
        self.handle(id)
    }

    fn domain_info(&self, d: &Dom) -> DomainInfo {
        d.info()
    }

    fn sshm_alloc(&self, order: u32) -> Result<Mfn, Errno> {
        let locked = crate::lock::held() > 0;
        let mut st = self.lock();
        st.work.sshm_allocs += 1;
        st.work.sshm_allocs_locked += u64::from(locked);
        let m = st.frames.alloc(order, Owner::Sshm)?;
        st.sshm_pages += 1u64 << order;
        Ok(Mfn(m))
    }

    fn sshm_free(&self, mfn: Mfn, order: u32) {
        let locked = crate::lock::held() > 0;
        let mut st = self.lock();
        st.work.sshm_frees += 1;
        st.work.sshm_frees_locked += u64::from(locked);
        if order > crate::frame::ORDER_MAX {
            st.violation(format!("sshm_free of order {order}"));
            return;
        }
        for m in mfn.0..mfn.0.saturating_add(1u64 << order) {
            // As the shim (`rust_hv_sshm_free`): the frame is cleared before
            // the allocation reference goes, whatever other references
            // remain, since the heap does not scrub for the never-dying
            // pseudo-domain and a transient holder may drop the last one.
            if st.frames.get(m).is_some_and(|f| f.owner == Owner::Sshm && f.allocated) {
                st.frames.scrub(m);
            }
            match st.frames.put_allocated(m, Owner::Sshm) {
                Ok(Some(Put::Freed(_))) | Ok(Some(Put::Held)) => st.sshm_pages = st.sshm_pages.saturating_sub(1),
                Ok(None) => st.violation(format!("sshm_free of mfn {m:#x}, not an sshm allocation")),
                Err(msg) => st.violation(msg),
            }
        }
    }

    fn p2m_insert(&self, d: &Dom, gfn: Gfn, mfn: Mfn, order: u32, kind: P2mKind) -> Result<(), Errno> {
        let mut st = self.lock();
        let slot = st.slot(d)?;
        if !slot.rec.kind.translated() {
            return Err(Errno::EOPNOTSUPP);
        }
        if order != 0 && order != PAGE_ORDER_2M {
            return Err(Errno::EINVAL);
        }
        if slot.p2m.populated(gfn, order) {
            return Err(Errno::EBUSY);
        }
        let n = 1u64 << order;
        // The model of the shim's `p2m_add_sshm_entry`. First a reference
        // on every frame (`get_page(pg, dom_sshm)`): the platform, not the
        // caller, guarantees a guest only maps what it has a right to,
        // shared-memory entries only to sshm frames.
        for m in mfn.0..mfn.0.saturating_add(n) {
            let ok = st.frames.get(m).is_some_and(|f| f.owner == Owner::Sshm && f.count > 0);
            if !ok || st.frames.get_ref(m).is_err() {
                for u in mfn.0..m {
                    st.put_frame(u);
                }
                return Err(Errno::EINVAL);
            }
        }
        let t = match kind {
            P2mKind::SharedRo => P2mType::SharedRo,
            P2mKind::SharedRw => P2mType::SharedRw,
        };
        let fault = if order == PAGE_ORDER_2M { st.p2m_insert_fault.take() } else { None };
        let slot = st.slot_mut(d)?;
        let rc = match fault {
            // `p2m_set_entry` writing a 2 MiB request as 4 KiB entries and
            // running out of p2m pages part way: some entries are written.
            Some(written) => {
                for i in 0..written.min(n) {
                    slot.p2m.insert(Gfn(gfn.0 + i), Mfn(mfn.0 + i), 0, t)?;
                }
                Err(Errno::ENOMEM)
            }
            None => slot.p2m.insert(gfn, mfn, order, t),
        };
        if let Err(e) = rc {
            // As `p2m_add_page`: the operation may have partially
            // succeeded. Each gfn that maps its frame with this type was
            // written and is cleared again; a frame's reference goes only
            // once no entry maps it (one that could not be cleared keeps
            // its reference: a leak, never a mapped free frame).
            for i in 0..n {
                let (g, m) = (Gfn(gfn.0 + i), Mfn(mfn.0 + i));
                let slot = st.slot_mut(d)?;
                let written = slot.p2m.lookup(g) == Some((m, t));
                if written && slot.p2m.remove_exact(g, m, 0).is_err() {
                    st.violation(format!("d{} gfn {:#x}: partial sshm entry not cleared", d.id().0, g.0));
                    continue;
                }
                st.put_frame(m.0);
            }
            return Err(e);
        }
        Ok(())
    }

    fn p2m_remove(&self, d: &Dom, gfn: Gfn, mfn: Mfn, order: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        st.work.p2m_removes += 1;
        let slot = st.slot_mut(d)?;
        match slot.p2m.entry(gfn) {
            Some((start, e)) if start == gfn && e.mfn == mfn && e.order == order && !e.t.is_ram() => {
                if matches!(e.t, P2mType::GrantRo | P2mType::GrantRw) {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        slot.p2m.remove_exact(gfn, mfn, order)?;
        for m in mfn.0..mfn.0 + (1u64 << order) {
            st.put_frame(m);
        }
        Ok(())
    }

    fn p2m_populated(&self, d: &Dom, gfn: Gfn, order: u32) -> bool {
        self.lock().slot(d).is_ok_and(|s| s.p2m.populated(gfn, order))
    }

    fn page_pin_writable(&self, d: &Dom, gfn: Gfn) -> Result<Mfn, Errno> {
        let mut st = self.lock();
        let slot = st.slot(d)?;
        let (mfn, t) = slot.p2m.lookup(gfn).ok_or(Errno::EINVAL)?;
        if t != P2mType::RamRw {
            return Err(Errno::EINVAL);
        }
        match st.frames.get(mfn.0) {
            Some(f) if f.owner == Owner::Dom(d.id()) && f.allocated => {}
            _ => return Err(Errno::EINVAL),
        }
        st.frames.get_ref(mfn.0)?;
        if let Some(f) = st.frames.get_mut(mfn.0) {
            f.type_count += 1;
        }
        *st.pins.entry(mfn.0).or_insert(0) += 1;
        Ok(mfn)
    }

    fn page_unpin(&self, mfn: Mfn) {
        let mut st = self.lock();
        st.work.unpins += 1;
        match st.pins.get_mut(&mfn.0) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    st.pins.remove(&mfn.0);
                }
            }
            _ => {
                st.violation(format!("page_unpin of mfn {:#x} which is not pinned", mfn.0));
                return;
            }
        }
        if let Some(f) = st.frames.get_mut(mfn.0) {
            f.type_count = f.type_count.saturating_sub(1);
        }
        st.put_frame(mfn.0);
    }

    fn frame_read(&self, mfn: Mfn, offset: usize, buf: &mut [u8]) {
        let mut st = self.lock();
        if !frame_access_ok(&mut st, mfn, offset, buf.len(), "read") {
            buf.fill(0);
            return;
        }
        st.frames.read(mfn.0, offset, buf);
    }

    fn frame_write(&self, mfn: Mfn, offset: usize, buf: &[u8]) {
        let mut st = self.lock();
        if frame_access_ok(&mut st, mfn, offset, buf.len(), "write") {
            st.frames.write(mfn.0, offset, buf);
        }
    }

    fn copy_from_guest(&self, caller: &Dom, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        st.guest_read(caller.id(), addr, buf)
    }

    fn copy_to_guest(&self, caller: &Dom, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        st.guest_write(caller.id(), addr, buf)
    }

    fn copy_from_guest_to_frame(
        &self,
        caller: &Dom,
        addr: u64,
        mfn: Mfn,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        if !frame_access_ok(&mut st, mfn, offset, len, "write") {
            // A caller bug, reported by the checkers; Xen would BUG.
            return Err(Errno::EFAULT);
        }
        st.guest_read_to_frame(caller.id(), addr, mfn.0, offset, len)
    }

    fn smp_wmb(&self) {
        // Every frame access takes the machine lock, which already orders
        // them; the fence only mirrors Xen's barrier.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    }

    fn send_virq(&self, d: &Dom, virq: u32) {
        let mut st = self.lock();
        let Ok(slot) = st.slot_mut(d) else { return };
        *slot.virq_raised.entry(virq).or_insert(0) += 1;
        if let Some(port) = slot.evtchn.virq_port(virq) {
            slot.evtchn.set_pending(port);
        }
    }

    fn xsm_v4v_register(&self, caller: &Dom, partner: Option<&Dom>) -> Result<(), Errno> {
        let q = (caller.info().id, partner.map(|d| d.info().id));
        let mut x = self.xsm.lock().unwrap_or_else(|e| e.into_inner());
        x.register_last = Some(q);
        x.register_deny.map_or(Ok(()), Err)
    }

    fn xsm_v4v_send(&self, src: &Dom, dst: &Dom) -> Result<(), Errno> {
        let q = (src.info().id, dst.info().id);
        let mut x = self.xsm.lock().unwrap_or_else(|e| e.into_inner());
        x.send_last = Some(q);
        x.send_deny.map_or(Ok(()), Err)
    }

    fn xsm_v4v_firewall(&self, caller: &Dom) -> Result<(), Errno> {
        let info = caller.info();
        let mut x = self.xsm.lock().unwrap_or_else(|e| e.into_inner());
        x.firewall_last = Some(info.id);
        // The dummy policy: XSM_PRIV, the control domain only.
        if !info.control {
            return Err(Errno::EPERM);
        }
        x.firewall_deny.map_or(Ok(()), Err)
    }

    fn xsm_sshm_regions(&self, caller: &Dom) -> Result<(), Errno> {
        let control = caller.info().control;
        let mut x = self.xsm.lock().unwrap_or_else(|e| e.into_inner());
        x.sshm_regions_asked += 1;
        // The dummy policy: the control domain only.
        if !control {
            return Err(Errno::EPERM);
        }
        x.sshm_regions_deny.map_or(Ok(()), Err)
    }

    fn preempt_check(&self) -> bool {
        let p = *self.preempt.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Preempt::Never => false,
            Preempt::Always => true,
            Preempt::OneIn(n) => n <= 1 || self.draw().is_multiple_of(u64::from(n)),
        }
    }
}

/// The page pieces of the guest range `[gpa, end)` (`end` may be 2^64):
/// (linear page, offset in the page, offset in the range, bytes).
fn pieces(gpa: u64, end: u128) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let mut addr = u128::from(gpa);
    std::iter::from_fn(move || {
        if addr >= end {
            return None;
        }
        let off = (addr % u128::from(PAGE_SIZE)) as usize;
        let n = (PAGE_BYTES - off).min((end - addr) as usize);
        let piece = ((addr / u128::from(PAGE_SIZE)) as u64, off, (addr - u128::from(gpa)) as usize, n);
        addr += n as u128;
        Some(piece)
    })
}

/// `frame_read`/`frame_write` are only for frames the caller holds a
/// reference on: touching a free frame is a use after free.
fn frame_access_ok(st: &mut State, mfn: Mfn, offset: usize, len: usize, what: &str) -> bool {
    let in_page = offset.checked_add(len).is_some_and(|e| e <= PAGE_BYTES);
    let live = st.frames.get(mfn.0).is_some_and(|f| f.count > 0);
    if !in_page {
        st.violation(format!("frame_{what} of {len} bytes at offset {offset} crosses mfn {:#x}", mfn.0));
    } else if !live {
        st.violation(format!("frame_{what} of free mfn {:#x} (use after free)", mfn.0));
    }
    in_page && live
}
