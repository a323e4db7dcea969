//! What tests read of the machine: frames, p2m entries, counts, the misuse
//! seen, zombies and the work done through the `Platform`.

use std::collections::BTreeSet;

use hypercall_abi::{DomId, Gfn, Mfn};

use super::Machine;
use crate::frame::Owner;
use crate::p2m::P2mType;

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
    /// The sshm memory cap the checker holds the pseudo-domain to.
    pub fn sshm_pages_max(&self) -> u64 {
        self.sshm_pages_max
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

    /// Live ring mappings ([`rust_hv::Platform::ring_map`]) and the pages
    /// they map, in all.
    pub fn ring_maps(&self) -> (usize, u64) {
        let st = self.lock();
        (st.ring_maps.len(), st.ring_maps.values().map(|m| m.len() as u64).sum())
    }

    /// The work counters so far.
    pub fn work(&self) -> Work {
        self.lock().work
    }
}
