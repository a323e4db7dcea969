//! What the machine lock protects, and the accounting of frame references
//! that every part of the machine goes through.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[cfg(doc)]
use super::Machine;

use hypercall_abi::{DomId, Errno};

use super::{Work, VIOLATIONS_MAX};
use crate::domain::{Dom, Slot};
use crate::frame::{FrameTable, Owner, Put};

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
    /// Live ring mappings ([`rust_hv::Platform::ring_map`]): id -> the
    /// mfns mapped, in order.
    pub ring_maps: BTreeMap<u64, Vec<u64>>,
    /// The id the next ring mapping gets.
    pub next_ring_map: u64,
    /// mfn -> how many times live ring mappings map it.
    pub ring_mapped: BTreeMap<u64, u32>,
}

impl State {
    /// `frames` free frames, no domains.
    pub(super) fn new(frames: u64) -> State {
        State {
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
            ring_maps: BTreeMap::new(),
            next_ring_map: 0,
            ring_mapped: BTreeMap::new(),
        }
    }

    /// How many times live ring mappings map `mfn`.
    pub(crate) fn ring_mapped(&self, mfn: u64) -> u32 {
        self.ring_mapped.get(&mfn).copied().unwrap_or(0)
    }

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

    pub(super) fn account_freed(&mut self, owner: Owner) {
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
}
