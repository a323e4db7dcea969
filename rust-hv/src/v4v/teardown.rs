//! The domain-kill and soft-reset hooks: a domain's V4V state goes, in
//! bounded steps.
//!
//! A step unregisters the rings the domain owns or is the partner of (one
//! per L1 acquisition), then drops its state (and, at death, the firewall
//! rules naming it), then sweeps every bucket for its waiters and its
//! reservation, ring by ring, resuming from a [`SweepCursor`] kept in its
//! state. Every waiter that this unblocks is woken once, with no lock held.

use hypercall_abi::Errno;

use super::ring::Wakes;
use super::table::SweepCursor;
use super::{id_of, V4v, RING_LOCKS, TEARDOWN_STEP_MAX};
use crate::locking;
use crate::platform::{Lock, Platform};

impl<P: Platform> V4v<P> {
    /// Domain-kill hook, one bounded step of it: unregisters `d`'s rings,
    /// tears down rings naming it as partner, cancels its pending entries
    /// and its send in progress, and drops the firewall rules naming it (a
    /// later domain with its id must not inherit them). `-ERESTART` while
    /// work is left (at most [`TEARDOWN_STEP_MAX`] units plus one ring per
    /// step); `Ok` once V4V holds no page reference of `d`'s and no state
    /// naming it.
    ///
    /// Every waiter that this unblocks is woken once (the liveness rule):
    /// the waiters of each ring torn down are told to look again, as at
    /// unregistration, and the waiters a cancelled reservation of `d`'s
    /// held off are woken if they now fit. VIRQs are raised with no lock
    /// held.
    pub fn domain_destroy(&self, p: &P, d: &P::Domain) -> Result<(), Errno> {
        self.teardown(p, d, true)
    }

    /// Soft reset hook (`domain_soft_reset()`, the guest's kexec; Xen calls
    /// it with the domain paused for shutdown, so the domain itself adds
    /// nothing meanwhile), in bounded steps like [`V4v::domain_destroy`].
    /// The domain's V4V state goes as at its death (its rings, rings naming
    /// it as partner, its waiters and send in progress, its statistics),
    /// with the same wake-ups, so no peer writes into pages the new kernel
    /// owns. Firewall rules naming it stay: they are the toolstack's policy
    /// for the VM, and a guest must not lift its own restrictions by
    /// kexec-ing.
    pub fn domain_soft_reset(&self, p: &P, d: &P::Domain) -> Result<(), Errno> {
        self.teardown(p, d, false)
    }

    /// [`V4v::domain_destroy`] and [`V4v::domain_soft_reset`]; `drop_fw`
    /// drops the firewall rules naming the domain too.
    fn teardown(&self, p: &P, d: &P::Domain, drop_fw: bool) -> Result<(), Errno> {
        locking::assert_unlocked(p);
        let me = id_of(p, d);
        let mut budget = TEARDOWN_STEP_MAX;
        // 1. The rings it owns or is the partner of, one per L1
        // acquisition; nobody can add one (it is dying, or paused and its
        // partners' new rings are theirs to keep).
        loop {
            if budget == 0 {
                return Err(Errno::ERESTART);
            }
            let gone = self.table.with(|t| {
                let i = t.ring_of(me)?;
                let e = t.remove_ring(i);
                if let Some(owner) = t.dom(e.key.owner) {
                    owner.nr_rings -= 1;
                }
                let r = self.bucket(e.generation).with(|b| b.take(e.generation));
                if let Some(r) = r.as_ref().filter(|r| r.map.is_some()) {
                    t.ring_map_release(e.key.owner, r.mfns.len() as u32);
                }
                r
            });
            let Some(mut r) = gone else { break };
            // Unmapped with the locks dropped (`vunmap()` flushes TLBs),
            // before the pages are unpinned; one unmap is one more unit of
            // this ring's work, counted with its pages below.
            if let Some(m) = r.map.take() {
                p.ring_unmap(m);
            }
            r.mfns.iter().for_each(|&m| p.page_unpin(m));
            for w in r.pending.iter().filter(|w| w.dom != me) {
                self.virq(p, w.dom);
            }
            budget = budget.saturating_sub(r.mfns.len() + 1);
        }
        // 2. Its state and policy. Only a domain with state can be a waiter
        // or hold a reservation elsewhere (both paths create it first).
        let cursor = self.table.with(|t| {
            if drop_fw {
                t.fw.retain(|r| r.src_domain != me.0 && r.dst_domain != me.0);
            }
            let s = t.dom(me)?;
            s.in_flight = None;
            Some(*s.sweep.get_or_insert(SweepCursor { bucket: 0, next_generation: 0 }))
        });
        let Some(SweepCursor { mut bucket, next_generation: mut next }) = cursor else { return Ok(()) };
        // 3. Its waiters and reservation on other rings, ring by ring in
        // each bucket (sorted by generation, so the cursor stays valid
        // while rings come and go).
        while bucket < RING_LOCKS {
            if budget == 0 {
                self.table.with(|t| {
                    if let Some(s) = t.dom(me) {
                        s.sweep = Some(SweepCursor { bucket, next_generation: next });
                    }
                });
                return Err(Errno::ERESTART);
            }
            let mut wakes = Wakes::new();
            let found = self.buckets[bucket].with(|b| {
                let i = b.rings.partition_point(|r| r.generation < next);
                let r = b.rings.get_mut(i)?;
                next = r.generation + 1;
                r.cancel_pending(me);
                if r.reservation.is_some_and(|res| res.owner == me) {
                    // Nothing of it was published: dropping the reservation
                    // is the whole cancellation, and the waiters it held off
                    // may fit now.
                    r.reservation = None;
                    let rx = r.read_rx(p);
                    r.wake_fitting(rx, &mut wakes);
                }
                Some(())
            });
            self.raise(p, &wakes);
            if found.is_none() {
                bucket += 1;
                next = 0;
            }
            budget -= 1;
        }
        self.table.with(|t| {
            if let Ok(i) = t.doms.binary_search_by(|s| s.id.cmp(&me)) {
                // Its rings are all gone, and their mapped pages with them
                // (but a registration of its that reserved before it died
                // may still hold some: that one gives them back to the
                // global count alone when it fails).
                t.doms.remove(i);
            }
        });
        Ok(())
    }
}
