//! `OP_NOTIFY`: the caller tells Xen it consumed data, and asks about the
//! space in rings it wants to send to (and to be woken when enough is free).
//!
//! The entries are copied in once, answered one by one (each under its
//! ring's lock, after the policy was asked with no lock held), and copied
//! out once. Wake-ups are raised with no lock held.

use alloc::vec::Vec;

use hypercall_abi::v4v::{
    RingData, RingDataEnt, MSG_MAX, NOTIFY_ENTRIES_MAX, PORT_ANY, RD_F_EMPTY, RD_F_EXISTS, RD_F_PENDING,
    RD_F_SUFFICIENT, RD_F_WAKE,
};
use hypercall_abi::{DomId, Errno};

use super::ring::Wakes;
use super::{guest_elem, id_of, read_guest, write_guest, V4v};
use crate::locking;
use crate::platform::{Lock, Platform};

impl<P: Platform> V4v<P> {
    /// `OP_NOTIFY`: re-reads the caller's own rings' `rx_ptr` and wakes the
    /// waiters that now fit; then answers each entry of `ring_data` (space
    /// available, and a wake-up asked for when there is not enough).
    #[inline(never)]
    pub(super) fn notify(&self, p: &P, caller: &P::Domain, ring_data: u64) -> Result<i64, Errno> {
        let me = id_of(p, caller);
        // First the caller's own rings: it has probably consumed data, so
        // re-read their `rx_ptr` and wake the waiters that now fit.
        let mine: Vec<u64> = self.table.with(|t| {
            let mut v = Vec::new();
            let n = t.rings.iter().filter(|e| e.key.owner == me).count();
            v.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
            v.extend(t.rings.iter().filter(|e| e.key.owner == me).map(|e| e.generation));
            Ok::<_, Errno>(v)
        })?;
        for generation in mine {
            let mut wakes = Wakes::new();
            self.bucket(generation).with(|b| {
                if let Some(r) = b.get_mut(generation) {
                    let rx = r.read_rx(p);
                    r.wake_fitting(rx, &mut wakes);
                }
            });
            self.raise(p, &wakes);
        }
        if ring_data == 0 {
            return Ok(0);
        }

        let rd: RingData = read_guest(p, caller, ring_data)?;
        rd.validate()?;
        debug_assert!(rd.nent <= NOTIFY_ENTRIES_MAX);
        let base = ring_data.checked_add(RingData::SIZE as u64).ok_or(Errno::EFAULT)?;
        let n = rd.nent as usize;
        // The entries are copied in once, answered, and copied out once.
        let mut ents: Vec<RingDataEnt> = Vec::new();
        ents.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
        for i in 0..n {
            let e: RingDataEnt = read_guest(p, caller, guest_elem(base, i, RingDataEnt::SIZE)?)?;
            e.validate()?;
            ents.push(e);
        }
        let mut ret = Ok(0);
        for e in ents.iter_mut() {
            if let Err(err) = self.notify_one(p, caller, me, e) {
                ret = Err(err);
            }
        }
        for (i, e) in ents.iter().enumerate() {
            write_guest(p, caller, guest_elem(base, i, RingDataEnt::SIZE)?, e)?;
        }
        ret
    }

    /// Answers one entry; `-ENOSPC` if a wake-up was asked for and the ring's
    /// pending list is full.
    fn notify_one(&self, p: &P, caller: &P::Domain, me: DomId, e: &mut RingDataEnt) -> Result<(), Errno> {
        locking::assert_unlocked(p);
        let want_wake = e.flags & RD_F_WAKE != 0;
        e.flags = 0;
        e.max_message_size = 0;
        let dst = DomId(e.ring.domain);
        // As Argo, nothing is told about the rings of a domain the caller
        // may not send to: the policy is asked before the ring is looked up
        // (no lock held), and a refusal is this op's error. An entry naming
        // no live domain is answered "no ring".
        let Ok(dd) = p.domain(dst) else { return Ok(()) };
        p.xsm_v4v_send(caller, &dd)?;
        drop(dd);
        let found = self.table.with(|t| {
            let Some(r) = t.find_for_sender(me, dst, e.ring.port) else { return Ok(None) };
            // The source port of a future send is unknown: only rules that
            // reject every port count.
            if !t.fw_allows(me, PORT_ANY, dst, e.ring.port) {
                return Ok(None);
            }
            // A waiter has state, so that its teardown knows to look for it.
            if want_wake {
                t.dom_or_insert(me)?;
            }
            Ok::<_, Errno>(Some(r))
        })?;
        let Some(generation) = found else { return Ok(()) };
        let space = e.space_required;
        self.bucket(generation).with(|b| {
            let Some(r) = b.get_mut(generation) else { return Ok(()) };
            let rx = r.read_rx(p);
            let free = r.free_bytes(rx);
            e.flags |= RD_F_EXISTS;
            if r.is_empty(rx) {
                e.flags |= RD_F_EMPTY;
            }
            e.max_message_size = free.saturating_sub(hypercall_abi::v4v::SLOT_BYTES);
            let fits = space <= MSG_MAX && hypercall_abi::v4v::message_bytes(space).is_some_and(|b| b <= free);
            let can_ever =
                space <= MSG_MAX && hypercall_abi::v4v::message_bytes(space).is_some_and(|b| b <= r.capacity_bytes());
            if fits {
                e.flags |= RD_F_SUFFICIENT;
                r.cancel_pending(me);
            } else if want_wake && can_ever {
                if p.domain_info(caller).dying {
                    return Ok(());
                }
                if !r.add_pending(me, space) {
                    return Err(Errno::ENOSPC);
                }
                e.flags |= RD_F_PENDING;
            } else if r.pending.iter().any(|w| w.dom == me) {
                e.flags |= RD_F_PENDING;
            }
            Ok(())
        })
    }
}
