//! The one boundary between the logic and the world.
//!
//! Consumer-side only: what `sshm` and `v4v` need from a hypervisor, nothing
//! to manage it. Two implementations are chosen at compile time: `xen` (over
//! the C shim) and the simulator. Errors are Xen's errno values, the same in
//! both worlds.

use hypercall_abi::{DomId, Errno, Gfn, Mfn};

/// A lock's class: its name, for messages, and its level in the lock
/// order. The classes and the rules are in [`crate::locking`].
#[derive(Debug, PartialEq, Eq)]
pub struct LockClass {
    /// What the lock is, e.g. `"v4v.table (L1)"`.
    pub name: &'static str,
    /// A lock may be taken only while every lock held has a lower level.
    pub level: u8,
}

/// A lock protecting a `T`, taken for the duration of a closure.
///
/// Xen: a `spinlock_t` (or `rwlock_t`) next to the data; simulator: a
/// `std::sync::Mutex` that checks the lock order ([`crate::locking`]). The
/// closure form keeps guards (and their `unsafe`) in the platform.
pub trait Lock<T>: Send + Sync {
    /// A new unlocked lock of `class` holding `v`.
    fn new(class: &'static LockClass, v: T) -> Self;
    /// Runs `f` with the lock held. Must not be re-entered on the same lock.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

/// What a domain is, as far as this crate cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    /// Its id.
    pub id: DomId,
    /// A translated guest (HVM or PVH: has a p2m). PV guests are not.
    pub translated: bool,
    /// `d->is_dying` is set: no new resources may be given to it.
    pub dying: bool,
    /// The control domain (`is_control_domain(d)`).
    pub control: bool,
    /// The domain may have alternate p2m views: `HVM_PARAM_ALTP2M` is set
    /// (write-once, by the toolstack) or altp2m is active.
    pub altp2m: bool,
    /// Nested virtualisation is enabled (`XEN_DOMCTL_CDF_nested_virt`, a
    /// creation flag): the guest's own guests run on nested p2ms.
    pub nested_virt: bool,
}

/// The type of a p2m entry this crate inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum P2mKind {
    /// Static shared memory, read-only for the guest.
    SharedRo,
    /// Static shared memory, read-write for the guest.
    SharedRw,
}

/// The world as `sshm` and `v4v` see it.
///
/// Frames and reference counts follow Xen's rules: a frame has one
/// "allocated" reference held by its owner and general references taken by
/// users; it returns to the free pool only when its count reaches zero.
pub trait Platform: Sync + Sized {
    /// A lock around a `T`.
    type Lock<T: Send>: Lock<T>;
    /// A counted reference to a domain, keeping its `struct domain` alive
    /// (Xen: `get_domain()`/`put_domain()`); dropping it releases it.
    type Domain: Send + Sync;
    /// A ring's pinned frames mapped once, virtually contiguous (Xen: the
    /// address `vmap()` returned). Made by [`Platform::ring_map`] and given
    /// back only through [`Platform::ring_unmap`]; dropping one otherwise is
    /// a leak of the platform's mapping space (the simulator reports it).
    type RingMap: Send + Sync;

    // ---- domains ----

    /// Looks up a domain by id and takes a reference to it; `-ESRCH` if
    /// there is none (also when it is fully dead).
    fn domain(&self, id: DomId) -> Result<Self::Domain, Errno>;
    /// What the domain is, now.
    fn domain_info(&self, d: &Self::Domain) -> DomainInfo;

    // ---- sshm backing memory (pseudo-domain `DOMID_SSHM`) ----

    /// Allocates `2^order` contiguous frames owned by the sshm pseudo-domain,
    /// zeroed, each with its allocation reference. `-ENOMEM` when no such
    /// chunk is free. Never counted in any guest's `tot_pages`.
    fn sshm_alloc(&self, order: u32) -> Result<Mfn, Errno>;
    /// Drops the allocation reference of `2^order` frames from
    /// [`Platform::sshm_alloc`]. Frames still referenced elsewhere are freed
    /// when their last reference goes. Their contents are cleared now,
    /// whatever other (transient) references remain: the heap does not
    /// scrub for the never-dying pseudo-domain, so nothing else would.
    fn sshm_free(&self, mfn: Mfn, order: u32);
    /// Asks for [`crate::sshm::Sshm::release_step`] to be run soon, outside
    /// any hypercall, and again while it returns `true`: freed regions'
    /// backing is given back in the background, in bounded steps (Xen: a
    /// tasklet, which runs in idle vCPU context; asking again while it is
    /// pending is a no-op).
    fn sshm_release_later(&self);

    // ---- p2m ----

    /// Maps `2^order` frames at `gfn` (both aligned to `2^order`, order 0 or
    /// 9) in a translated domain's p2m. The platform takes one general
    /// reference per frame for the mapping. Never replaces an entry: `-EBUSY`
    /// if any gfn in the range is populated. `-ENOMEM` if the p2m cannot grow.
    fn p2m_insert(&self, d: &Self::Domain, gfn: Gfn, mfn: Mfn, order: u32, kind: P2mKind) -> Result<(), Errno>;
    /// Removes the mapping at `gfn` of `2^order` pages that
    /// [`Platform::p2m_insert`] made with `mfn`, dropping its references and
    /// flushing TLBs. `-EINVAL` if the entry is not exactly that.
    fn p2m_remove(&self, d: &Self::Domain, gfn: Gfn, mfn: Mfn, order: u32) -> Result<(), Errno>;
    /// Whether any gfn in `[gfn, gfn + 2^order)` is populated in the p2m.
    fn p2m_populated(&self, d: &Self::Domain, gfn: Gfn, order: u32) -> bool;

    // ---- guest pages pinned for V4V rings ----

    /// Takes a general reference and a writable type reference on the
    /// guest RAM page at `gfn` of `d` (Xen: `get_page_and_type(...,
    /// PGT_writable_page)`). `-EINVAL` if the gfn is not ordinary writable
    /// RAM owned by `d` (unpopulated, read-only, shared memory, grant or
    /// foreign mapping, MMIO).
    fn page_pin_writable(&self, d: &Self::Domain, gfn: Gfn) -> Result<Mfn, Errno>;
    /// Drops what [`Platform::page_pin_writable`] took.
    fn page_unpin(&self, mfn: Mfn);

    // ---- ring mappings ----

    /// Maps `mfns` (frames this crate holds pinned, at most
    /// `RING_PAGES_MAX`) once, in order, virtually contiguous: byte `o` of
    /// the mapping is byte `o % PAGE_SIZE` of `mfns[o / PAGE_SIZE]`. `None`
    /// when the platform cannot (Xen: `vmap()` found no room in the vmap
    /// area or no memory for its page tables); the caller then reaches the
    /// frames one by one ([`Platform::frame_read`] and friends), which
    /// always works. Not with a lock of this crate held (`vmap()` takes the
    /// vmap area's lock and may allocate page-table pages).
    fn ring_map(&self, mfns: &[Mfn]) -> Option<Self::RingMap>;
    /// Undoes [`Platform::ring_map`]; the frames must still be pinned (unmap
    /// first, unpin after). Not with a lock of this crate held: `vunmap()`
    /// flushes the TLBs of every CPU.
    fn ring_unmap(&self, map: Self::RingMap);
    /// Copies from the mapping at byte `offset` (`offset + buf.len()` within
    /// the mapped frames; beyond them is a caller bug, as for
    /// [`Platform::frame_read`]).
    fn ring_map_read(&self, map: &Self::RingMap, offset: usize, buf: &mut [u8]);
    /// Copies into the mapping at byte `offset` (within the mapped frames).
    fn ring_map_write(&self, map: &Self::RingMap, offset: usize, buf: &[u8]);
    /// Copies `len` bytes of the calling domain's memory at `addr` straight
    /// into the mapping at byte `offset` (within the mapped frames), in one
    /// `copy_from_guest`, whatever page boundaries the destination crosses.
    /// `-EFAULT` as [`Platform::copy_from_guest_to_frame`], with the same
    /// unspecified bytes in the range.
    fn copy_from_guest_to_ring_map(
        &self,
        caller: &Self::Domain,
        addr: u64,
        map: &Self::RingMap,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno>;

    // ---- memory access ----

    /// Copies from a frame this crate holds a reference on.
    fn frame_read(&self, mfn: Mfn, offset: usize, buf: &mut [u8]);
    /// Copies into a frame this crate holds a reference on.
    fn frame_write(&self, mfn: Mfn, offset: usize, buf: &[u8]);
    /// Copies from the calling domain's memory at a hypercall pointer
    /// argument (`copy_from_guest`). `-EFAULT` if not all of it is readable.
    fn copy_from_guest(&self, caller: &Self::Domain, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies to the calling domain's memory (`copy_to_guest`). `-EFAULT` if
    /// not all of it is writable.
    fn copy_to_guest(&self, caller: &Self::Domain, addr: u64, buf: &[u8]) -> Result<(), Errno>;
    /// Copies `len` bytes from the calling domain's memory at `addr`
    /// straight into a frame this crate holds a reference on, at `offset`
    /// (Xen: `copy_from_guest` into `map_domain_page(mfn) + offset`): one
    /// copy, no intermediate buffer. `offset + len` must not pass the end of
    /// the frame (a caller bug, like an out-of-frame [`Platform::frame_write`]).
    /// `-EFAULT` if not all of the source is readable; the frame's bytes in
    /// the range are then unspecified (some may have been copied).
    fn copy_from_guest_to_frame(
        &self,
        caller: &Self::Domain,
        addr: u64,
        mfn: Mfn,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno>;
    /// Orders every earlier write to frames before every later one, as seen
    /// by a guest mapping them (Xen: `smp_wmb()`). V4V calls it between a
    /// message's bytes and the `tx_ptr` that publishes them: a receiver that
    /// reads `tx_ptr` and then (after its own read barrier) the data never
    /// sees stale data.
    fn smp_wmb(&self);

    // ---- XSM ----
    //
    // The policy hooks V4V asks before it acts, as Argo does with
    // `xsm_argo_*`. Xen: the XSM module (FLASK or the dummy policy, which
    // allows everything); both are called with no lock of this crate held.
    // `xsm_v4v_enable` is checked by Xen itself before the hypercall reaches
    // this crate.

    /// Whether `caller` may register a ring that only `partner` may send to
    /// (`Some`), or that any domain may send to (`None`)
    /// (`xsm_v4v_register_single_source` / `xsm_v4v_register_any_source`).
    /// The partner is a reference the caller already holds, so the check is
    /// made on the domain that was looked up, not on an id that could be
    /// reused. `Err` is the policy's errno (FLASK: `-EACCES`), returned to
    /// the guest as is.
    fn xsm_v4v_register(&self, caller: &Self::Domain, partner: Option<&Self::Domain>) -> Result<(), Errno>;
    /// Whether `src` may send to, or learn about the rings of, `dst`
    /// (`xsm_v4v_send`). `Err` is the policy's errno, returned as is.
    fn xsm_v4v_send(&self, src: &Self::Domain, dst: &Self::Domain) -> Result<(), Errno>;
    /// Whether `caller` may add, delete or list V4V firewall rules
    /// (`xsm_v4v_firewall`): system-wide policy, so the dummy policy allows
    /// the control domain only (`-EPERM` for others, `XSM_PRIV`); FLASK
    /// checks `v4v:firewall` against Xen's label.
    fn xsm_v4v_firewall(&self, caller: &Self::Domain) -> Result<(), Errno>;
    /// Whether `caller` may use the static shared memory regions, which
    /// belong to no guest but to the sshm pseudo-domain: create, open
    /// (attach), unlink, list or inspect them. Asked on top of the
    /// domctl's own check on its envelope domain (the target of an attach),
    /// so an operation is checked against everything it touches (Xen:
    /// `xsm_domctl` on `dom_sshm`; the dummy policy allows the control
    /// domain only, FLASK checks `domain2:static_shm` on `dom_sshm`'s label).
    fn xsm_sshm_regions(&self, caller: &Self::Domain) -> Result<(), Errno>;

    // ---- events and scheduling ----

    /// Raises a global VIRQ on a domain (`send_guest_global_virq`).
    fn send_virq(&self, d: &Self::Domain, virq: u32);
    /// Whether the current hypercall should stop and continue later
    /// (`hypercall_preempt_check()`).
    fn preempt_check(&self) -> bool;

    // ---- lock state, for debug assertions ----

    /// The highest-level lock of this crate the calling CPU holds, if any:
    /// what [`crate::locking::assert_unlocked`] asks at function entry (as
    /// Argo asserts `LOCKING_*`). Only for assertions, never for decisions.
    ///
    /// The simulator tracks it per thread; a debug Xen per CPU, in the
    /// `xen` module (Xen's own `in_atomic()` would not do: it counts Xen's
    /// locks too, and `do_domctl` holds the domctl lock around the sshm
    /// entry point). A release Xen keeps no record and returns `None`.
    fn lock_held(&self) -> Option<&'static LockClass>;
}
