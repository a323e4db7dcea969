//! V4V rings: hypervisor-mediated messaging.
//!
//! A receiver registers a ring in its own pages (Xen pins them writable for
//! the ring's lifetime); a sender asks Xen to copy a message into it; Xen
//! stamps the true source and raises `VIRQ_V4V` on the receiver. The ABI and
//! the op table are in [`hypercall_abi::v4v`].
//!
//! Differences from Argo (`xen/common/argo.c`), on purpose:
//! - A send reserves its ring space first and publishes `tx_ptr` only when
//!   the whole message is in, so a large send is copied in bounded steps with
//!   hypercall continuations, holding only the destination ring's lock and
//!   only for one chunk at a time. No global lock is held across any copy.
//! - Nothing is held across a return to the guest: a send parked between
//!   steps releases its reservation, so other senders get through (review
//!   finding 1). When it resumes it continues where it was if nobody wrote
//!   into the ring meanwhile, else starts its copy again at the new
//!   `tx_ptr` (at most [`SEND_RESTARTS_MAX`] times); either way its message
//!   is published whole and once, or the send fails (`-EAGAIN` if it no
//!   longer fits) having published nothing.
//! - A full ring is `-EAGAIN`, always.
//! - Re-registering an existing ring pins nothing new and changes no counter.
//! - Receivers may ask to be woken only on empty → non-empty
//!   ([`RING_F_NOTIFY_EMPTY_ONLY`]); space-available wake-ups are FIFO and
//!   wake only the waiters whose message fits.
//! - A firewall (control domain only) whose default policy is **accept**: no
//!   rules means every send the ring's partner setting allows goes through;
//!   the first matching rule decides otherwise.
//!
//! # Locking
//!
//! | lock | protects | order |
//! |---|---|---|
//! | `V4v::table` (L1, global) | the ring index (ring id → generation) and the partner index, per-domain state and statistics (incl. each domain's in-flight send record), the firewall rules, global statistics, generation/token counters | taken first |
//! | `V4v::buckets[i]` (L2, per bucket of rings) | everything about the rings in the bucket (ring generation `g` lives in bucket `g % RING_LOCKS`): pinned pages, Xen's `tx_ptr`, the reservation of the send in progress, the pending-waiter list, per-ring statistics | after L1, at most one at a time |
//!
//! L1 is only ever held for index look-ups and updates of small bounded
//! structures, never across a guest-memory copy. L2 is held across at most
//! [`SEND_CHUNK_BYTES`] of message copy, which goes straight from the
//! sender's memory into the pinned ring pages
//! ([`Platform::copy_from_guest_to_frame`]; Argo too copies from the guest
//! under its ring lock). Nothing here calls
//! [`Platform::send_virq`], [`Platform::domain`] or an XSM hook
//! ([`Platform::xsm_v4v_register`], [`Platform::xsm_v4v_send`]) with either
//! lock held: wake-ups are collected and raised after the locks are dropped,
//! and the policy is asked before any lock is taken.
//!
//! A ring is found under L1 by its generation and then looked up again in
//! its bucket under L2: if the ring was unregistered in between, it is not
//! there and the op fails as if the ring had not been there.
//!
//! There is no global table of rings to fill: the index and the buckets
//! grow with the rings registered (fallibly, `-ENOMEM`), and each domain is
//! held to [`RINGS_PER_DOMAIN_MAX`], so no tenant's rings can keep another
//! from registering (review finding 5; Argo has no global cap either). The
//! lock array is fixed at start of day, so registering never grows a table
//! of locks. A domain that is dying gets no new state: the check of
//! `DomainInfo::dying` is made under the lock that guards the state being
//! added, and the destroy hook runs after `dying` is set and takes the same
//! locks, so it always sees (and removes) whatever was added.

mod ring;
mod send;

use alloc::vec::Vec;

use hypercall_abi::v4v::{
    FwRule, Info, RegisterRing, RingData, RingDataEnt, RingId, RingInfo, UnregisterRing, Wire, DOMID_ANY, FW_ACCEPT,
    FW_RULES_MAX, IOV_MAX, MSG_MAX, NOTIFY_ENTRIES_MAX, OP_FW_ADD, OP_FW_DEL, OP_FW_LIST, OP_INFO, OP_NOTIFY,
    OP_REGISTER_RING, OP_SENDV, OP_UNREGISTER_RING, PENDING_PER_RING_MAX, PORT_ANY, RD_F_EMPTY, RD_F_EXISTS,
    RD_F_PENDING, RD_F_SUFFICIENT, RD_F_WAKE, REGISTER_F_ALL, REGISTER_F_FAIL_EXIST, RINGS_PER_DOMAIN_MAX,
    RING_LEN_MAX, RING_MAGIC, RING_PAGES_MAX,
};
use hypercall_abi::{DomId, Errno, Gfn, Mfn, VIRQ_V4V};

use crate::platform::{Lock, Platform};
use ring::{Ring, Wakes};
use send::InFlight;

/// Ring locks (L2), allocated at start of day. Rings are spread over them
/// by generation; two rings sharing a lock only contend for it, which is
/// held for at most [`SEND_CHUNK_BYTES`] of copy.
pub const RING_LOCKS: usize = 256;

/// Bytes of message copied per acquisition of the ring lock (straight from
/// the sender's memory into the ring's pages).
pub const SEND_CHUNK_BYTES: usize = 4096;

/// Bytes of message copied per hypercall step before a continuation is
/// forced, whatever `preempt_check()` says: bounds the work (and the time
/// other domains may wait for the ring lock) of one step.
pub const SEND_STEP_BYTES_MAX: usize = 64 * 1024;

/// Work units (pages unpinned, rings torn down or swept) after which a
/// teardown step (domain death, soft reset) returns `-ERESTART`. A step
/// does at most this plus one ring's pages ([`RING_PAGES_MAX`] + 1) units.
pub const TEARDOWN_STEP_MAX: usize = 4096;

/// Times a parked send starts its copy again because others wrote into the
/// ring while it was parked, before it gives up with `-EAGAIN`: a large
/// send under steady traffic fails instead of retrying forever.
pub const SEND_RESTARTS_MAX: u32 = 8;

/// `(owner, port, partner)`: how rings are indexed and ordered.
type Key = (u16, u32, u16);

/// Per-domain V4V state. Its statistics (like the per-ring and global
/// ones) are wrapping counters: guests drive them, so they must never be an
/// overflow.
struct DomState {
    id: DomId,
    nr_rings: u32,
    msgs_sent: u64,
    bytes_sent: u64,
    msgs_received: u64,
    sends_full: u64,
    /// The large send this domain has in progress (one at most).
    in_flight: Option<InFlight>,
    /// Teardown (death or soft reset) in progress: where the sweep of the
    /// other rings for this domain's waiters is, `(bucket, next generation)`.
    /// The state goes when the sweep is done.
    sweep: Option<(usize, u64)>,
}

impl DomState {
    fn new(id: DomId) -> Self {
        DomState {
            id,
            nr_rings: 0,
            msgs_sent: 0,
            bytes_sent: 0,
            msgs_received: 0,
            sends_full: 0,
            in_flight: None,
            sweep: None,
        }
    }
}

/// L1: the global index (see the locking block).
struct Table {
    /// Sorted by key: `(key, generation)`.
    rings: Vec<(Key, u64)>,
    /// The rings registered for one partner, by partner: `(partner, key)`,
    /// sorted. A domain's own rings are contiguous in `rings`; this finds
    /// the rings naming it without a walk of every ring.
    by_partner: Vec<(u16, Key)>,
    /// Sorted by id.
    doms: Vec<DomState>,
    fw: Vec<FwRule>,
    next_generation: u64,
    next_token: u64,
    global_msgs: u64,
    global_bytes: u64,
}

impl Table {
    /// Removes ring `i` of the index (and its partner entry).
    fn remove_ring(&mut self, i: usize) -> (Key, u64) {
        let (key, generation) = self.rings.remove(i);
        if key.2 != DOMID_ANY {
            if let Ok(j) = self.by_partner.binary_search(&(key.2, key)) {
                self.by_partner.remove(j);
            }
        }
        (key, generation)
    }

    /// The index of a ring `d` owns or is the partner of, if any: O(log n).
    fn ring_of(&self, d: DomId) -> Option<usize> {
        let i = self.rings.partition_point(|e| e.0 .0 < d.0);
        if self.rings.get(i).is_some_and(|e| e.0 .0 == d.0) {
            return Some(i);
        }
        let j = self.by_partner.partition_point(|e| e.0 < d.0);
        let &(partner, key) = self.by_partner.get(j)?;
        if partner != d.0 {
            return None;
        }
        self.rings.binary_search_by(|e| e.0.cmp(&key)).ok()
    }

    fn find(&self, key: Key) -> Option<u64> {
        self.rings.binary_search_by(|e| e.0.cmp(&key)).ok().map(|i| self.rings[i].1)
    }

    /// The ring a send from `src` to `(dst, port)` goes to: one registered
    /// for `src` alone wins over an any-sender ring.
    fn find_for_sender(&self, src: DomId, dst: DomId, port: u32) -> Option<u64> {
        self.find((dst.0, port, src.0)).or_else(|| self.find((dst.0, port, DOMID_ANY)))
    }

    fn dom(&mut self, id: DomId) -> Option<&mut DomState> {
        self.doms.binary_search_by(|d| d.id.cmp(&id)).ok().map(move |i| &mut self.doms[i])
    }

    /// The domain's state, created if needed (`-ENOMEM`).
    fn dom_or_insert(&mut self, id: DomId) -> Result<&mut DomState, Errno> {
        match self.doms.binary_search_by(|d| d.id.cmp(&id)) {
            Ok(i) => Ok(&mut self.doms[i]),
            Err(i) => {
                self.doms.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                self.doms.insert(i, DomState::new(id));
                Ok(&mut self.doms[i])
            }
        }
    }

    /// First matching rule decides; no match is the default policy, accept.
    fn fw_allows(&self, src: DomId, src_port: u32, dst: DomId, dst_port: u32) -> bool {
        let m32 = |r: u32, v: u32| r == PORT_ANY || r == v;
        for r in &self.fw {
            if (r.src_domain == DOMID_ANY || r.src_domain == src.0)
                && (r.dst_domain == DOMID_ANY || r.dst_domain == dst.0)
                && m32(r.src_port, src_port)
                && m32(r.dst_port, dst_port)
            {
                return r.action == FW_ACCEPT;
            }
        }
        true
    }
}

/// A ring lock's content (L2): the rings whose generation falls in this
/// bucket, sorted by generation (registration appends under L1, so the
/// order holds without sorting).
struct Bucket {
    rings: Vec<Ring>,
}

impl Bucket {
    fn index(&self, generation: u64) -> Option<usize> {
        self.rings.binary_search_by_key(&generation, |r| r.generation).ok()
    }

    /// The ring of `generation`, if it is still registered.
    fn get_mut(&mut self, generation: u64) -> Option<&mut Ring> {
        let i = self.index(generation)?;
        self.rings.get_mut(i)
    }

    fn get(&self, generation: u64) -> Option<&Ring> {
        self.rings.get(self.index(generation)?)
    }

    /// Removes the ring of `generation`.
    fn take(&mut self, generation: u64) -> Option<Ring> {
        let i = self.index(generation)?;
        Some(self.rings.remove(i))
    }
}

/// The V4V state of a hypervisor.
pub struct V4v<P: Platform> {
    table: P::Lock<Table>,
    buckets: Vec<P::Lock<Bucket>>,
}

impl<P: Platform> Default for V4v<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// The caller's id.
fn id_of<P: Platform>(p: &P, d: &P::Domain) -> DomId {
    p.domain_info(d).id
}

/// Reads a `T` from the caller's memory.
fn read_guest<P: Platform, T: Wire>(p: &P, caller: &P::Domain, addr: u64) -> Result<T, Errno> {
    let mut b = [0u8; 80];
    debug_assert!(T::SIZE <= b.len());
    p.copy_from_guest(caller, addr, &mut b[..T::SIZE])?;
    Ok(T::read(&b[..T::SIZE]))
}

/// Writes a `T` to the caller's memory.
fn write_guest<P: Platform, T: Wire>(p: &P, caller: &P::Domain, addr: u64, v: &T) -> Result<(), Errno> {
    let mut b = [0u8; 80];
    debug_assert!(T::SIZE <= b.len());
    v.write(&mut b[..T::SIZE]);
    p.copy_to_guest(caller, addr, &b[..T::SIZE])
}

/// The guest address of element `i` of an array of `size`-byte elements at
/// `base`: `-EFAULT` if it is not representable. Guest addresses are
/// guest-chosen; an array may run off the end of the address space, and
/// that must be an error, not an overflow (a panic in a debug Xen).
fn guest_elem(base: u64, i: usize, size: usize) -> Result<u64, Errno> {
    let off = (i as u64).checked_mul(size as u64).ok_or(Errno::EFAULT)?;
    base.checked_add(off).ok_or(Errno::EFAULT)
}

/// `-EINVAL` unless every listed unused argument is zero.
fn unused_zero(args: &[u64]) -> Result<(), Errno> {
    if args.iter().any(|&a| a != 0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl<P: Platform> V4v<P> {
    /// No rings. Allocates the ring locks once (start of day).
    pub fn new() -> Self {
        let mut buckets = Vec::with_capacity(RING_LOCKS);
        for _ in 0..RING_LOCKS {
            buckets.push(P::Lock::new(Bucket { rings: Vec::new() }));
        }
        V4v {
            table: P::Lock::new(Table {
                rings: Vec::new(),
                by_partner: Vec::new(),
                doms: Vec::new(),
                fw: Vec::new(),
                next_generation: 1,
                next_token: 1,
                global_msgs: 0,
                global_bytes: 0,
            }),
            buckets,
        }
    }

    /// The lock of the ring registered as `generation`.
    fn bucket(&self, generation: u64) -> &P::Lock<Bucket> {
        &self.buckets[(generation % RING_LOCKS as u64) as usize]
    }

    /// `__HYPERVISOR_v4v_op(cmd, args...)` issued by `caller`;
    /// `Err(ERESTART)` asks for the same hypercall to be issued again (a
    /// preempted send resumes where it stopped).
    pub fn op(&self, p: &P, caller: &P::Domain, cmd: u32, args: [u64; 4]) -> Result<i64, Errno> {
        match cmd {
            OP_REGISTER_RING => self.register(p, caller, args),
            OP_UNREGISTER_RING => {
                unused_zero(&args[1..])?;
                self.unregister(p, caller, args[0]).map(|()| 0)
            }
            OP_SENDV => self.sendv(p, caller, args),
            OP_NOTIFY => {
                unused_zero(&args[1..])?;
                self.notify(p, caller, args[0])
            }
            OP_INFO => {
                unused_zero(&args[2..])?;
                self.info(p, caller, args[0], args[1]).map(|()| 0)
            }
            OP_FW_ADD | OP_FW_DEL | OP_FW_LIST => self.firewall(p, caller, cmd, args),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    // ---- register / unregister ----

    fn register(&self, p: &P, caller: &P::Domain, args: [u64; 4]) -> Result<i64, Errno> {
        let me = id_of(p, caller);
        let flags = args[3];
        if flags & !(REGISTER_F_ALL as u64) != 0 {
            return Err(Errno::EINVAL);
        }
        let reg: RegisterRing = read_guest(p, caller, args[0])?;
        reg.validate()?;
        debug_assert!(reg.len <= RING_LEN_MAX);
        if args[2] != reg.pages() as u64 {
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
        drop(partner);

        // The gfn list is copied once, then only Xen's copy is used.
        let mut gfns: Vec<Gfn> = Vec::new();
        gfns.try_reserve_exact(npages).map_err(|_| Errno::ENOMEM)?;
        for i in 0..npages {
            let mut b = [0u8; 8];
            let addr = guest_elem(args[1], i, 8)?;
            p.copy_from_guest(caller, addr, &mut b)?;
            let g = Gfn(u64::from_ne_bytes(b));
            if gfns.contains(&g) {
                return Err(Errno::EINVAL);
            }
            gfns.push(g);
        }
        let id = RingId { port: reg.port, domain: me.0, partner: reg.partner };
        let key = (me.0, reg.port, reg.partner);

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

        let mut ring = Some(Ring {
            generation: 0,
            id,
            len: reg.len,
            gfns,
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
            // Under L1, which the destroy hook takes after `dying` is set.
            if p.domain_info(caller).dying {
                return Err(Errno::ESRCH);
            }
            if reg.partner != DOMID_ANY {
                match p.domain(DomId(reg.partner)) {
                    Ok(d) if !p.domain_info(&d).dying => {}
                    _ => return Err(Errno::ESRCH),
                }
            }
            let pos = t.rings.binary_search_by(|e| e.0.cmp(&key)).unwrap_err();
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
            t.rings.insert(pos, (key, generation));
            if reg.partner != DOMID_ANY {
                // Reserved above.
                let at = t.by_partner.partition_point(|e| *e < (reg.partner, key));
                t.by_partner.insert(at, (reg.partner, key));
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
                unpin_all(&r.mfns);
            }
            return Err(e);
        }
        Ok(0)
    }

    fn unregister(&self, p: &P, caller: &P::Domain, arg: u64) -> Result<(), Errno> {
        let me = id_of(p, caller);
        let u: UnregisterRing = read_guest(p, caller, arg)?;
        u.validate()?;
        let key = (me.0, u.port, u.partner);
        let ring = self.table.with(|t| {
            let i = t.rings.binary_search_by(|e| e.0.cmp(&key)).map_err(|_| Errno::ENOENT)?;
            let (_, generation) = t.remove_ring(i);
            if let Some(d) = t.dom(me) {
                d.nr_rings -= 1;
            }
            let r = self.bucket(generation).with(|b| b.take(generation));
            debug_assert!(r.is_some());
            Ok::<_, Errno>(r)
        })?;
        if let Some(r) = ring {
            r.mfns.iter().for_each(|&m| p.page_unpin(m));
            // Waiters for a ring that is gone are told to look again.
            for w in &r.pending {
                self.virq(p, w.dom);
            }
        }
        Ok(())
    }

    // ---- notify ----

    fn notify(&self, p: &P, caller: &P::Domain, arg: u64) -> Result<i64, Errno> {
        let me = id_of(p, caller);
        // First the caller's own rings: it has probably consumed data, so
        // re-read their `rx_ptr` and wake the waiters that now fit.
        let mine: Vec<u64> = self.table.with(|t| {
            let mut v = Vec::new();
            let n = t.rings.iter().filter(|e| e.0 .0 == me.0).count();
            v.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
            v.extend(t.rings.iter().filter(|e| e.0 .0 == me.0).map(|e| e.1));
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
        if arg == 0 {
            return Ok(0);
        }

        let rd: RingData = read_guest(p, caller, arg)?;
        rd.validate()?;
        debug_assert!(rd.nent <= NOTIFY_ENTRIES_MAX);
        let base = arg.checked_add(RingData::SIZE as u64).ok_or(Errno::EFAULT)?;
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

    // ---- info ----

    fn info(&self, p: &P, caller: &P::Domain, arg: u64, ring_arg: u64) -> Result<(), Errno> {
        let caller_info = p.domain_info(caller);
        let me = caller_info.id;
        // System-wide totals tell a guest how much other tenants talk: a
        // side channel. Only the control domain gets them; every other
        // domain sees 0 there and its own figures only.
        let global = caller_info.control;
        let mut info = self.table.with(|t| {
            let mut i = Info {
                rings_max: RINGS_PER_DOMAIN_MAX,
                ring_len_max: RING_LEN_MAX,
                iov_max: IOV_MAX,
                msg_max: MSG_MAX,
                notify_max: NOTIFY_ENTRIES_MAX,
                pending_max: PENDING_PER_RING_MAX,
                global_msgs: if global { t.global_msgs } else { 0 },
                global_bytes: if global { t.global_bytes } else { 0 },
                ..Info::default()
            };
            if let Some(d) = t.dom(me) {
                i.nr_rings = d.nr_rings;
                i.msgs_sent = d.msgs_sent;
                i.bytes_sent = d.bytes_sent;
                i.msgs_received = d.msgs_received;
                i.sends_full = d.sends_full;
            }
            i
        });
        info.pad = 0;
        if ring_arg != 0 {
            let ri: RingInfo = read_guest(p, caller, ring_arg)?;
            let key = (me.0, ri.id.port, ri.id.partner);
            let generation = self.table.with(|t| t.find(key)).ok_or(Errno::ENOENT)?;
            let out = self.bucket(generation).with(|b| {
                let r = b.get_mut(generation).ok_or(Errno::ENOENT)?;
                let rx = r.read_rx(p);
                Ok::<_, Errno>(RingInfo {
                    id: r.id,
                    len: r.len,
                    tx_ptr: r.tx,
                    rx_ptr: rx,
                    nr_pending: r.pending.len() as u32,
                    msgs: r.msgs,
                    bytes: r.bytes,
                    full: r.full,
                })
            })?;
            write_guest(p, caller, ring_arg, &out)?;
        }
        write_guest(p, caller, arg, &info)
    }

    // ---- firewall ----

    fn firewall(&self, p: &P, caller: &P::Domain, cmd: u32, args: [u64; 4]) -> Result<i64, Errno> {
        // System-wide policy: the XSM hook decides who may read or change
        // it (the dummy policy: the control domain only, `-EPERM`).
        p.xsm_v4v_firewall(caller)?;
        let check_rule = |r: &FwRule| -> Result<(), Errno> {
            r.validate()?;
            for d in [r.src_domain, r.dst_domain] {
                if d != DOMID_ANY && !DomId(d).is_real() {
                    return Err(Errno::EINVAL);
                }
            }
            Ok(())
        };
        match cmd {
            OP_FW_ADD => {
                unused_zero(&args[2..])?;
                let r: FwRule = read_guest(p, caller, args[0])?;
                check_rule(&r)?;
                // A rule names live domains only: rules naming a domain go
                // when it dies (`domain_destroy`), so one naming a free id
                // would wait for whoever gets that id next. The references
                // are taken before the lock; `dying` is checked under L1,
                // which the destroy hook takes after setting it.
                let named = |id: u16| (id != DOMID_ANY).then(|| p.domain(DomId(id))).transpose();
                let (src, dst) = (named(r.src_domain)?, named(r.dst_domain)?);
                self.table.with(|t| {
                    if src.iter().chain(dst.iter()).any(|d| p.domain_info(d).dying) {
                        return Err(Errno::ESRCH);
                    }
                    if t.fw.len() >= FW_RULES_MAX as usize {
                        return Err(Errno::ENOSPC);
                    }
                    t.fw.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                    // A position past the end appends.
                    let pos = core::cmp::min(args[1], t.fw.len() as u64) as usize;
                    t.fw.insert(pos, r);
                    Ok(0)
                })
            }
            OP_FW_DEL => {
                unused_zero(&args[1..])?;
                let r: FwRule = read_guest(p, caller, args[0])?;
                check_rule(&r)?;
                self.table.with(|t| {
                    let i = t.fw.iter().position(|x| *x == r).ok_or(Errno::ENOENT)?;
                    t.fw.remove(i);
                    Ok(0)
                })
            }
            _ => {
                // OP_FW_LIST: copies rules [first, first + capacity) and
                // returns how many rules there are in all.
                unused_zero(&args[3..])?;
                let (first, cap) = (args[1], args[2]);
                if cap > FW_RULES_MAX as u64 {
                    return Err(Errno::E2BIG);
                }
                let mut buf = [FwRule::default(); FW_RULES_MAX as usize];
                let (total, n) = self.table.with(|t| {
                    let total = t.fw.len();
                    if first > total as u64 {
                        return Err(Errno::EINVAL);
                    }
                    let n = core::cmp::min(cap as usize, total - first as usize);
                    buf[..n].copy_from_slice(&t.fw[first as usize..first as usize + n]);
                    Ok((total, n))
                })?;
                for (i, r) in buf[..n].iter().enumerate() {
                    write_guest(p, caller, guest_elem(args[0], i, FwRule::SIZE)?, r)?;
                }
                Ok(total as i64)
            }
        }
    }

    // ---- domain death ----

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
                let (key, generation) = t.remove_ring(i);
                if let Some(owner) = t.dom(DomId(key.0)) {
                    owner.nr_rings -= 1;
                }
                self.bucket(generation).with(|b| b.take(generation))
            });
            let Some(r) = gone else { break };
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
            Some(*s.sweep.get_or_insert((0, 0)))
        });
        let Some((mut bucket, mut next)) = cursor else { return Ok(()) };
        // 3. Its waiters and reservation on other rings, ring by ring in
        // each bucket (sorted by generation, so the cursor stays valid
        // while rings come and go).
        while bucket < RING_LOCKS {
            if budget == 0 {
                self.table.with(|t| {
                    if let Some(s) = t.dom(me) {
                        s.sweep = Some((bucket, next));
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
                t.doms.remove(i);
            }
        });
        Ok(())
    }

    // ---- helpers ----

    fn virq(&self, p: &P, d: DomId) {
        if let Ok(dom) = p.domain(d) {
            p.send_virq(&dom, VIRQ_V4V);
        }
    }

    fn raise(&self, p: &P, wakes: &Wakes) {
        for &d in wakes.as_slice() {
            self.virq(p, d);
        }
    }

    // ---- introspection (tests, debug keys) ----

    /// Pages V4V holds pinned, in all.
    pub fn pinned_pages(&self) -> usize {
        self.table
            .with(|t| t.rings.iter().map(|&(_, g)| self.bucket(g).with(|b| b.get(g).map_or(0, |r| r.mfns.len()))).sum())
    }

    /// Number of registered rings owned by `d`, as counted by V4V.
    pub fn nr_rings(&self, d: DomId) -> u32 {
        self.table.with(|t| t.dom(d).map_or(0, |s| s.nr_rings))
    }

    /// Whether `d` appears anywhere in V4V's state (rings, partners,
    /// pending lists, reservations, per-domain state, firewall rules).
    pub fn references(&self, d: DomId) -> bool {
        self.table.with(|t| {
            t.dom(d).is_some()
                || t.fw.iter().any(|r| r.src_domain == d.0 || r.dst_domain == d.0)
                || t.rings.iter().any(|&(k, g)| {
                    k.0 == d.0
                        || k.2 == d.0
                        || self.bucket(g).with(|b| {
                            b.get(g).is_some_and(|r| {
                                r.pending.iter().any(|w| w.dom == d) || r.reservation.is_some_and(|res| res.owner == d)
                            })
                        })
                })
        })
    }

    /// Checks V4V's internal consistency; the first violation found.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.table.with(|t| {
            if !t.rings.windows(2).all(|w| w[0].0 < w[1].0) {
                return Err("ring index not sorted/unique");
            }
            let in_buckets: usize = self.buckets.iter().map(|b| b.with(|b| b.rings.len())).sum();
            if in_buckets != t.rings.len() {
                return Err("ring in a bucket but not in the index, or the reverse");
            }
            let partnered = t.rings.iter().filter(|e| e.0 .2 != DOMID_ANY).count();
            let indexed = t.by_partner.windows(2).all(|w| w[0] < w[1])
                && t.by_partner.iter().all(|&(partner, key)| key.2 == partner && t.find(key).is_some());
            if !indexed || partnered != t.by_partner.len() {
                return Err("partner index does not match the rings");
            }
            for d in &t.doms {
                let n = t.rings.iter().filter(|e| e.0 .0 == d.id.0).count();
                if n != d.nr_rings as usize {
                    return Err("nr_rings drifted");
                }
            }
            for &(k, _) in &t.rings {
                if !t.doms.iter().any(|d| d.id.0 == k.0) {
                    return Err("ring owner without state");
                }
            }
            for (i, b) in self.buckets.iter().enumerate() {
                b.with(|b| {
                    let sorted = b.rings.windows(2).all(|w| w[0].generation < w[1].generation);
                    let placed = b.rings.iter().all(|r| (r.generation % RING_LOCKS as u64) as usize == i);
                    (sorted && placed).then_some(()).ok_or("bucket unsorted or ring in the wrong bucket")
                })?;
            }
            for &(k, generation) in &t.rings {
                self.bucket(generation).with(|b| {
                    let r = b.get(generation).ok_or("indexed ring missing from its bucket")?;
                    if (r.id.domain, r.id.port, r.id.partner) != k {
                        return Err("ring does not match index");
                    }
                    if r.tx >= r.len || !r.tx.is_multiple_of(hypercall_abi::v4v::SLOT_BYTES) {
                        return Err("tx_ptr out of range");
                    }
                    if r.mfns.len() != r.gfns.len()
                        || r.mfns.len() != (r.len + hypercall_abi::v4v::RING_HEADER_BYTES).div_ceil(4096) as usize
                    {
                        return Err("page count");
                    }
                    if r.pending.len() > PENDING_PER_RING_MAX as usize {
                        return Err("pending list over its bound");
                    }
                    for (i, w) in r.pending.iter().enumerate() {
                        if r.pending[..i].iter().any(|x| x.dom == w.dom) {
                            return Err("duplicate waiter");
                        }
                    }
                    if let Some(res) = r.reservation {
                        if res.bytes > r.len - hypercall_abi::v4v::SLOT_BYTES {
                            return Err("reservation larger than ring");
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
    }
}

// The step budget holds at least one chunk.
const _: () = assert!(SEND_CHUNK_BYTES <= SEND_STEP_BYTES_MAX);
const _: () = assert!(RING_LOCKS > 0);
