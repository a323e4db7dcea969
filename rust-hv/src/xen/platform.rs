//! The safe wrapper: [`Platform`] implemented over the C shim.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::NonNull;

use hypercall_abi::{DomId, Errno, Gfn, Mfn};

use super::bindings as b;
use super::lockdep;
use crate::platform::{DomainInfo, Lock, LockClass, P2mKind, Platform};

/// Xen, as the logic sees it. Stateless: all state is Xen's.
pub struct Xen;

/// A counted reference to a `struct domain`.
///
/// # Invariants
///
/// `self.0` points to a live `struct domain` on which this value holds one
/// reference (`get_domain()`), dropped by [`Drop`].
pub struct Domain(NonNull<b::domain>);

// SAFETY: A `struct domain` is shared by all CPUs in Xen; the reference count
// that keeps it alive is atomic, so the handle may move between and be shared
// by CPUs.
unsafe impl Send for Domain {}
// SAFETY: As above; the handle gives no unsynchronised access to the domain.
unsafe impl Sync for Domain {}

impl Domain {
    /// The domain issuing the current hypercall, with a new reference.
    pub fn current() -> Domain {
        // SAFETY: In hypercall context `current->domain` is live; the shim
        // takes a reference with `get_knownalive_domain()`.
        let d = unsafe { b::rust_hv_domain_get_current() };
        Domain(NonNull::new(d).expect("current domain is never NULL"))
    }

    /// Takes a new reference to a domain Xen hands to an entry point.
    ///
    /// # Safety
    ///
    /// `d` must point to a `struct domain` that is alive for the duration
    /// of this call (the caller holds a reference).
    pub unsafe fn hold(d: NonNull<b::domain>) -> Domain {
        // SAFETY: `d` is alive per this function's contract.
        unsafe { b::rust_hv_domain_hold(d.as_ptr()) };
        Domain(d)
    }

    fn ptr(&self) -> *mut b::domain {
        self.0.as_ptr()
    }
}

/// A ring's frames mapped virtually contiguous by `vmap()`.
///
/// # Invariants
///
/// `va` is what `vmap()` returned for `pages` frames, still mapped: valid
/// for reads and writes of `pages * PAGE_SIZE` bytes until given to
/// `vunmap()` by [`Platform::ring_unmap`], which consumes the value. The
/// frames stay pinned while it lives (the Platform contract).
pub struct RingMap {
    va: NonNull<u8>,
    pages: usize,
}

// SAFETY: The mapping is in Xen's global vmap area, the same on every CPU;
// accesses through it are to guest pages that carry their own
// synchronisation (the ring protocol and V4V's ring locks).
unsafe impl Send for RingMap {}
// SAFETY: As above.
unsafe impl Sync for RingMap {}

impl RingMap {
    /// Asserts that `offset..offset + len` is inside the mapping and returns
    /// its start.
    fn at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.pages * hypercall_abi::PAGE_SIZE as usize));
        // SAFETY: `offset` is inside the mapping (asserted), which is one
        // object of `pages * PAGE_SIZE` bytes by the invariant.
        unsafe { self.va.as_ptr().add(offset) }
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        // SAFETY: By the invariant this value holds one reference; it is
        // dropped exactly once, here.
        unsafe { b::rust_hv_domain_put(self.ptr()) }
    }
}

/// A Xen `spinlock_t` next to the data it protects.
///
/// # Invariants
///
/// `raw` was initialised by `spin_lock_init()`, and `data` is only accessed
/// with `raw` held.
pub struct SpinLock<T> {
    class: &'static LockClass,
    raw: UnsafeCell<b::rust_hv_lock>,
    data: UnsafeCell<T>,
}

// SAFETY: The data moves with the lock; it is `Send`.
unsafe impl<T: Send> Send for SpinLock<T> {}
// SAFETY: The data is only reached with the spinlock held (the invariant), so
// sharing the lock between CPUs gives exclusive access one at a time.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T: Send> Lock<T> for SpinLock<T> {
    fn new(class: &'static LockClass, v: T) -> Self {
        let mut raw = b::rust_hv_lock { opaque: [0; 4] };
        // SAFETY: `raw` is valid storage for a `spinlock_t` (shim.c checks
        // the size). An unlocked ticket lock has no self-references, so
        // moving it afterwards is fine.
        unsafe { b::rust_hv_lock_init(&mut raw) };
        SpinLock { class, raw: UnsafeCell::new(raw), data: UnsafeCell::new(v) }
    }

    /// In debug builds, checks the lock order first and keeps the record
    /// [`Platform::lock_held`] answers from ([`lockdep`]).
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        lockdep::check_order(self.class);
        // SAFETY: `raw` is an initialised spinlock (the invariant); it is not
        // moved while borrowed.
        unsafe { b::rust_hv_lock(self.raw.get()) };
        lockdep::push(self.class);
        // SAFETY: The lock is held, so this is the only reference to `data`
        // until it is released below (the closure cannot re-enter: the trait
        // forbids it and a re-entry would deadlock, not alias).
        let r = f(unsafe { &mut *self.data.get() });
        lockdep::pop(self.class);
        // SAFETY: Taken above by this CPU.
        unsafe { b::rust_hv_unlock(self.raw.get()) };
        r
    }
}

fn errno(rc: i32) -> Result<(), Errno> {
    if rc < 0 {
        Err(Errno(-rc))
    } else {
        Ok(())
    }
}

impl Platform for Xen {
    type Lock<T: Send> = SpinLock<T>;
    type Domain = Domain;
    type RingMap = RingMap;

    fn domain(&self, id: DomId) -> Result<Domain, Errno> {
        lockdep::forbid_held("Platform::domain", "the domain list's RCU read lock");
        let mut d = core::ptr::null_mut();
        // SAFETY: `d` is a valid out pointer; on success the shim stores a
        // domain with a reference taken by `get_domain_by_id()`.
        errno(unsafe { b::rust_hv_domain_get(id.0, &mut d) })?;
        NonNull::new(d).map(Domain).ok_or(Errno::ESRCH)
    }

    fn domain_info(&self, d: &Domain) -> DomainInfo {
        let mut i = b::rust_hv_domain_info {
            domid: 0,
            translated: false,
            dying: false,
            control: false,
            altp2m: false,
            nested_virt: false,
        };
        // SAFETY: `d` holds a reference, so the domain is alive; `i` is a
        // valid out pointer.
        unsafe { b::rust_hv_domain_info(d.ptr(), &mut i) };
        DomainInfo {
            id: DomId(i.domid),
            translated: i.translated,
            dying: i.dying,
            control: i.control,
            altp2m: i.altp2m,
            nested_virt: i.nested_virt,
        }
    }

    fn sshm_alloc(&self, order: u32) -> Result<Mfn, Errno> {
        lockdep::forbid_held("Platform::sshm_alloc", "the heap lock");
        let mut mfn = 0;
        // SAFETY: `mfn` is a valid out pointer.
        errno(unsafe { b::rust_hv_sshm_alloc(order, &mut mfn) })?;
        Ok(Mfn(mfn))
    }

    fn sshm_free(&self, mfn: Mfn, order: u32) {
        lockdep::forbid_held("Platform::sshm_free", "the heap lock, and scrubs");
        // SAFETY: The caller got `mfn`/`order` from `sshm_alloc` and gives
        // back its allocation reference once (the Platform contract); the
        // shim only drops references, it never dereferences Rust memory.
        unsafe { b::rust_hv_sshm_free(mfn.0, order) }
    }

    fn sshm_release_later(&self) {
        // SAFETY: Schedules a static tasklet; no argument.
        unsafe { b::rust_hv_sshm_release_later() }
    }

    fn p2m_insert(&self, d: &Domain, gfn: Gfn, mfn: Mfn, order: u32, kind: P2mKind) -> Result<(), Errno> {
        let kind = match kind {
            P2mKind::SharedRo => b::RUST_HV_P2M_SHARED_RO,
            P2mKind::SharedRw => b::RUST_HV_P2M_SHARED_RW,
        };
        // SAFETY: `d` is alive (it holds a reference); the shim checks the
        // frames, the range and the p2m state itself.
        errno(unsafe { b::rust_hv_p2m_insert(d.ptr(), gfn.0, mfn.0, order, kind) })
    }

    fn p2m_remove(&self, d: &Domain, gfn: Gfn, mfn: Mfn, order: u32) -> Result<(), Errno> {
        // SAFETY: As for `p2m_insert`; the shim checks the entry is ours.
        errno(unsafe { b::rust_hv_p2m_remove(d.ptr(), gfn.0, mfn.0, order) })
    }

    fn p2m_populated(&self, d: &Domain, gfn: Gfn, order: u32) -> bool {
        // SAFETY: `d` is alive; a read-only p2m query.
        unsafe { b::rust_hv_p2m_populated(d.ptr(), gfn.0, order) }
    }

    fn page_pin_writable(&self, d: &Domain, gfn: Gfn) -> Result<Mfn, Errno> {
        let mut mfn = 0;
        // SAFETY: `d` is alive; `mfn` is a valid out pointer.
        errno(unsafe { b::rust_hv_page_pin_writable(d.ptr(), gfn.0, &mut mfn) })?;
        Ok(Mfn(mfn))
    }

    fn page_unpin(&self, mfn: Mfn) {
        // SAFETY: The caller pinned `mfn` with `page_pin_writable` and drops
        // that pin once (the Platform contract).
        unsafe { b::rust_hv_page_unpin(mfn.0) }
    }

    fn ring_map(&self, mfns: &[Mfn]) -> Option<RingMap> {
        lockdep::forbid_held("Platform::ring_map", "the vmap area's lock, and may allocate");
        let pages = u32::try_from(mfns.len()).ok().filter(|&n| n > 0)?;
        // SAFETY: `Mfn` is `repr(transparent)` over `u64`, so `mfns` is
        // `pages` valid `unsigned long`s; the frames are pinned by the
        // caller (the Platform contract) and `vmap()` only reads the array.
        let va = unsafe { b::rust_hv_vmap(mfns.as_ptr().cast::<u64>(), pages) };
        Some(RingMap { va: NonNull::new(va.cast::<u8>())?, pages: mfns.len() })
    }

    fn ring_unmap(&self, map: RingMap) {
        lockdep::forbid_held("Platform::ring_unmap", "a TLB flush on every CPU");
        // SAFETY: `map.va` is a live `vmap()` address (its invariant),
        // unmapped once: `map` is consumed here.
        unsafe { b::rust_hv_vunmap(map.va.as_ptr().cast::<c_void>()) }
    }

    fn ring_map_read(&self, map: &RingMap, offset: usize, buf: &mut [u8]) {
        let src = map.at(offset, buf.len());
        // SAFETY: `src` is valid for `buf.len()` bytes of reads (`at`'s
        // assertion and `RingMap`'s invariant); `buf` is Xen's, so the two
        // do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    }

    fn ring_map_write(&self, map: &RingMap, offset: usize, buf: &[u8]) {
        let dst = map.at(offset, buf.len());
        // SAFETY: As for `ring_map_read`, with `dst` valid for writes.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) }
    }

    fn copy_from_guest_to_ring_map(
        &self,
        _caller: &Domain,
        addr: u64,
        map: &RingMap,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        let dst = map.at(offset, len);
        // SAFETY: `dst` is valid for `len` bytes of writes (`at`'s assertion
        // and `RingMap`'s invariant). The guest address is checked by Xen's
        // guest-access routines, which act on the current domain, always
        // the caller of a hypercall.
        errno(unsafe { b::rust_hv_copy_from_guest(dst.cast::<c_void>(), addr, len as _) })
    }

    fn frame_read(&self, mfn: Mfn, offset: usize, buf: &mut [u8]) {
        assert!(offset.checked_add(buf.len()).is_some_and(|end| end <= hypercall_abi::PAGE_SIZE as usize));
        // SAFETY: The crate holds a reference on `mfn` (the Platform
        // contract), the range stays inside the frame (asserted), and `buf`
        // is valid for `buf.len()` bytes of writes.
        unsafe { b::rust_hv_frame_read(mfn.0, offset as _, buf.as_mut_ptr().cast::<c_void>(), buf.len() as _) }
    }

    fn frame_write(&self, mfn: Mfn, offset: usize, buf: &[u8]) {
        assert!(offset.checked_add(buf.len()).is_some_and(|end| end <= hypercall_abi::PAGE_SIZE as usize));
        // SAFETY: As for `frame_read`, with `buf` valid for reads.
        unsafe { b::rust_hv_frame_write(mfn.0, offset as _, buf.as_ptr().cast::<c_void>(), buf.len() as _) }
    }

    fn copy_from_guest(&self, _caller: &Domain, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        lockdep::forbid_held("Platform::copy_from_guest", "paging locks when it faults");
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes; the guest
        // address is checked by Xen's guest-access routines. They act on the
        // current domain, which is always the caller of a hypercall.
        errno(unsafe { b::rust_hv_copy_from_guest(buf.as_mut_ptr().cast::<c_void>(), addr, buf.len() as _) })
    }

    fn copy_to_guest(&self, _caller: &Domain, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        lockdep::forbid_held("Platform::copy_to_guest", "paging locks when it faults");
        // SAFETY: As for `copy_from_guest`, with `buf` valid for reads.
        errno(unsafe { b::rust_hv_copy_to_guest(addr, buf.as_ptr().cast::<c_void>(), buf.len() as _) })
    }

    fn copy_from_guest_to_frame(
        &self,
        _caller: &Domain,
        addr: u64,
        mfn: Mfn,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        assert!(offset.checked_add(len).is_some_and(|end| end <= hypercall_abi::PAGE_SIZE as usize));
        // SAFETY: The crate holds a reference on `mfn` (the Platform
        // contract) and the range stays inside the frame (asserted); the
        // shim maps it with `map_domain_page()` for the copy only. The guest
        // address is checked by Xen's guest-access routines, which act on
        // the current domain, always the caller of a hypercall.
        errno(unsafe { b::rust_hv_copy_from_guest_to_frame(mfn.0, offset as _, addr, len as _) })
    }

    fn smp_wmb(&self) {
        // SAFETY: No arguments; a write barrier (a compiler barrier on x86,
        // whose stores are not reordered with other stores).
        unsafe { b::rust_hv_smp_wmb() }
    }

    fn xsm_v4v_register(&self, caller: &Domain, partner: Option<&Domain>) -> Result<(), Errno> {
        lockdep::forbid_held("Platform::xsm_v4v_register", "the XSM policy's locks");
        let partner = partner.map_or(core::ptr::null(), |d| d.ptr().cast_const());
        // SAFETY: `caller` and, if given, `partner` hold references, so both
        // domains are alive for the call; NULL means any source. The XSM
        // hooks only read them.
        errno(unsafe { b::rust_hv_xsm_v4v_register(caller.ptr().cast_const(), partner) })
    }

    fn xsm_v4v_send(&self, src: &Domain, dst: &Domain) -> Result<(), Errno> {
        lockdep::forbid_held("Platform::xsm_v4v_send", "the XSM policy's locks");
        // SAFETY: Both hold references, so both domains are alive for the
        // call; the XSM hook only reads them.
        errno(unsafe { b::rust_hv_xsm_v4v_send(src.ptr().cast_const(), dst.ptr().cast_const()) })
    }

    fn xsm_v4v_firewall(&self, caller: &Domain) -> Result<(), Errno> {
        lockdep::forbid_held("Platform::xsm_v4v_firewall", "the XSM policy's locks");
        // SAFETY: `caller` holds a reference, so the domain is alive for the
        // call; the XSM hook only reads it.
        errno(unsafe { b::rust_hv_xsm_v4v_firewall(caller.ptr().cast_const()) })
    }

    fn xsm_sshm_regions(&self, caller: &Domain) -> Result<(), Errno> {
        lockdep::forbid_held("Platform::xsm_sshm_regions", "the XSM policy's locks");
        // SAFETY: `caller` holds a reference, so the domain is alive for the
        // call; the XSM hook only reads it.
        errno(unsafe { b::rust_hv_xsm_sshm_regions(caller.ptr().cast_const()) })
    }

    fn send_virq(&self, d: &Domain, virq: u32) {
        lockdep::forbid_held("Platform::send_virq", "the target's event-channel locks");
        // SAFETY: `d` is alive; Xen checks the VIRQ number.
        unsafe { b::rust_hv_send_virq(d.ptr(), virq) }
    }

    fn preempt_check(&self) -> bool {
        // SAFETY: No arguments; reads per-CPU softirq state.
        unsafe { b::rust_hv_preempt_check() }
    }

    fn lock_held(&self) -> Option<&'static LockClass> {
        lockdep::top()
    }
}
