//! `OP_REGISTER_RING` and `OP_UNREGISTER_RING`.
//!
//! Registration reads the request and the gfn list once, asks the policy
//! before anything is pinned or counted, pins every page writable, and
//! indexes the ring under L1 (then places it in its bucket under L2). Every
//! check that can fail is made before anything is counted, so a failed
//! registration leaves no pin and no counter moved. Re-registering a ring
//! with the same geometry pins nothing new and changes no counter.

use alloc::vec::Vec;

use hypercall_abi::v4v::{
    RegisterRing, RingId, UnregisterRing, DOMID_ANY, REGISTER_F_ALL, REGISTER_F_FAIL_EXIST, RINGS_PER_DOMAIN_MAX,
    RING_LEN_MAX, RING_MAGIC, RING_PAGES_MAX,
};
use hypercall_abi::{DomId, Errno, Gfn, Mfn};

use super::ring::Ring;
use super::table::{IndexEntry, PartnerEntry, RingKey};
use super::{guest_elem, id_of, read_guest, RegisterArgs, V4v};
use crate::locking;
use crate::platform::{Lock, Platform};

impl<P: Platform> V4v<P> {
    /// `OP_REGISTER_RING`: pins the ring's pages and indexes it; a
    /// re-registration with the same geometry only refreshes its header.
    #[inline(never)]
    pub(super) fn register(&self, p: &P, caller: &P::Domain, args: RegisterArgs) -> Result<i64, Errno> {
        locking::assert_unlocked(p);
        let me = id_of(p, caller);
        let flags = args.flags;
        if flags & !(REGISTER_F_ALL as u64) != 0 {
            return Err(Errno::EINVAL);
        }
        let reg: RegisterRing = read_guest(p, caller, args.ring)?;
        reg.validate()?;
        debug_assert!(reg.len <= RING_LEN_MAX);
        if args.nr_gfns != reg.pages() as u64 {
            return Err(Errno::EINVAL);
        }
        let npages = reg.pages() as usize;
        debug_assert!(npages <= RING_PAGES_MAX as usize);
        let partner = if reg.partner != DOMID_ANY {
            if !DomId(reg.partner).is_real() {
                return Err(Errno::EINVAL);
            }
            let partner = p.domain(DomId(reg.partner))?;
            if p.domain_info(&partner).dying {
                return Err(Errno::ESRCH);
            }
            Some(partner)
        } else {
            None
        };
        // The policy decides on the registration as read, before anything
        // is copied, pinned or counted (Argo: `xsm_argo_register_*`), and
        // for a re-registration too. No lock is held.
        p.xsm_v4v_register(caller, partner.as_ref())?;

        // The gfn list is copied once, then only Xen's copy is used.
        let mut gfns: Vec<Gfn> = Vec::new();
        gfns.try_reserve_exact(npages).map_err(|_| Errno::ENOMEM)?;
        for i in 0..npages {
            let mut b = [0u8; 8];
            let addr = guest_elem(args.gfns, i, 8)?;
            p.copy_from_guest(caller, addr, &mut b)?;
            let g = Gfn(u64::from_ne_bytes(b));
            if gfns.contains(&g) {
                return Err(Errno::EINVAL);
            }
            gfns.push(g);
        }
        let id = RingId { port: reg.port, domain: me.0, partner: reg.partner };
        let key = RingKey::of(&id);

        // Re-registration: same geometry refreshes the header (restoring
        // Xen's `tx_ptr`) and nothing else; no pin, no counter moves.
        if let Some(g) = self.table.with(|t| t.find(key)) {
            if flags & REGISTER_F_FAIL_EXIST as u64 != 0 {
                return Err(Errno::EEXIST);
            }
            return self.bucket(g).with(|b| match b.get(g) {
                Some(ring) => {
                    if ring.len != reg.len || ring.gfns != gfns {
                        return Err(Errno::EEXIST);
                    }
                    ring.publish_header(p, false);
                    Ok(0)
                }
                // Unregistered in between: the caller raced itself.
                _ => Err(Errno::EAGAIN),
            });
        }

        let mut mfns: Vec<Mfn> = Vec::new();
        mfns.try_reserve_exact(npages).map_err(|_| Errno::ENOMEM)?;
        let unpin_all = |mfns: &[Mfn]| mfns.iter().for_each(|&m| p.page_unpin(m));
        for &g in &gfns {
            match p.page_pin_writable(caller, g) {
                Ok(m) => mfns.push(m),
                Err(e) => {
                    unpin_all(&mfns);
                    return Err(e);
                }
            }
        }
        let mut magic = [0u8; 8];
        p.frame_read(mfns[0], 0, &mut magic);
        if u64::from_ne_bytes(magic) != RING_MAGIC {
            unpin_all(&mfns);
            return Err(Errno::EINVAL);
        }

        // Mapped once here, with no lock held (`vmap()` may allocate), if
        // the caps allow; otherwise the ring works frame by frame.
        let map = self.map_ring(p, caller, me, &mfns);
        let mut ring = Some(Ring {
            generation: 0,
            id,
            len: reg.len,
            gfns,
            map,
            mfns,
            tx: 0,
            rx_seen: 0,
            reservation: None,
            grants: 0,
            pending: Vec::new(),
            msgs: 0,
            bytes: 0,
            full: 0,
        });
        let res = self.table.with(|t| -> Result<(), Errno> {
            if t.find(key).is_some() {
                return Err(Errno::EEXIST);
            }
            // Under L1, which the destroy hook takes after `dying` is set;
            // the partner through the reference looked up (and asked about)
            // before any lock, not by id again: no lookup under a lock, and
            // a partner that died meanwhile cannot be replaced by a new
            // domain that reused its id.
            if p.domain_info(caller).dying || partner.as_ref().is_some_and(|d| p.domain_info(d).dying) {
                return Err(Errno::ESRCH);
            }
            let pos = t.search(key).unwrap_err();
            if t.dom(me).is_some_and(|d| d.nr_rings >= RINGS_PER_DOMAIN_MAX) {
                return Err(Errno::ENOSPC);
            }
            t.rings.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            if reg.partner != DOMID_ANY {
                t.by_partner.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            }
            t.dom_or_insert(me)?;
            let generation = t.next_generation;
            // Everything that can fail is done before anything is counted.
            self.bucket(generation).with(|b| b.rings.try_reserve(1)).map_err(|_| Errno::ENOMEM)?;
            let mut r = ring.take().ok_or(Errno::EINVAL)?;
            r.generation = generation;
            t.next_generation += 1;
            t.rings.insert(pos, IndexEntry { key, generation });
            if reg.partner != DOMID_ANY {
                // Reserved above.
                let e = PartnerEntry { partner: key.partner, key };
                let at = t.by_partner.partition_point(|x| *x < e);
                t.by_partner.insert(at, e);
            }
            if let Some(d) = t.dom(me) {
                d.nr_rings += 1;
            }
            self.bucket(generation).with(|b| {
                debug_assert!(b.rings.last().is_none_or(|x| x.generation < generation));
                r.publish_header(p, true);
                // Reserved above; appends keep the bucket sorted.
                b.rings.push(r);
            });
            Ok(())
        });
        if let Err(e) = res {
            if let Some(r) = ring {
                if let Some(m) = r.map {
                    let pages = r.mfns.len() as u32;
                    self.table.with(|t| t.ring_map_release(me, pages));
                    p.ring_unmap(m);
                }
                unpin_all(&r.mfns);
            }
            return Err(e);
        }
        Ok(0)
    }

    /// Maps a new ring's pinned pages once, virtually contiguous, if
    /// [`RING_MAP_PAGES_PER_DOMAIN_MAX`] and [`RING_MAP_PAGES_MAX`] allow
    /// it: counted first under L1, then mapped with no lock held, and
    /// uncounted again if the platform cannot map them. `None` (the ring
    /// works frame by frame) is never an error.
    ///
    /// [`RING_MAP_PAGES_PER_DOMAIN_MAX`]: super::RING_MAP_PAGES_PER_DOMAIN_MAX
    /// [`RING_MAP_PAGES_MAX`]: super::RING_MAP_PAGES_MAX
    fn map_ring(&self, p: &P, caller: &P::Domain, me: DomId, mfns: &[Mfn]) -> Option<P::RingMap> {
        locking::assert_unlocked(p);
        let pages = u32::try_from(mfns.len()).ok()?;
        debug_assert!(pages <= RING_PAGES_MAX);
        // Under L1, which the destroy hook takes after `dying` is set: a
        // dying domain gets no state (its registration fails below anyway).
        let counted = self.table.with(|t| !p.domain_info(caller).dying && t.ring_map_reserve(me, pages));
        if !counted {
            return None;
        }
        let map = p.ring_map(mfns);
        if map.is_none() {
            self.table.with(|t| t.ring_map_release(me, pages));
        }
        map
    }

    /// `OP_UNREGISTER_RING`: unpins the ring's pages and tells its waiters
    /// to look again.
    #[inline(never)]
    pub(super) fn unregister(&self, p: &P, caller: &P::Domain, ring: u64) -> Result<(), Errno> {
        let me = id_of(p, caller);
        let u: UnregisterRing = read_guest(p, caller, ring)?;
        u.validate()?;
        let key = RingKey { owner: me, port: u.port, partner: DomId(u.partner) };
        let ring = self.table.with(|t| {
            let i = t.search(key).map_err(|_| Errno::ENOENT)?;
            let generation = t.remove_ring(i).generation;
            if let Some(d) = t.dom(me) {
                d.nr_rings -= 1;
            }
            let r = self.bucket(generation).with(|b| b.take(generation));
            debug_assert!(r.is_some());
            if let Some(r) = r.as_ref().filter(|r| r.map.is_some()) {
                t.ring_map_release(me, r.mfns.len() as u32);
            }
            Ok::<_, Errno>(r)
        })?;
        if let Some(mut r) = ring {
            // Unmapped (a TLB flush) with the locks dropped, before the
            // pages are unpinned.
            if let Some(m) = r.map.take() {
                p.ring_unmap(m);
            }
            r.mfns.iter().for_each(|&m| p.page_unpin(m));
            // Waiters for a ring that is gone are told to look again.
            for w in &r.pending {
                self.virq(p, w.dom);
            }
        }
        Ok(())
    }
}
