//! Grant tables and interdomain event channels for guest mode: what a
//! grant-shared ring ([`crate::vchan`]) needs from Xen.
//!
//! - **Granting** (the server): the domain's grant table frame is mapped
//!   with `XENMEM_add_to_physmap` (`XENMAPSPACE_grant_table`, frame 0) over
//!   a page of the kernel's own RAM, as the shared info page is (see
//!   [`crate::evtchn`]). Entries are grant v1 (`struct grant_entry_v1 { u16
//!   flags; domid_t domid; u32 frame; }`): domid and frame first, a write
//!   barrier, then `flags = GTF_permit_access`. Ending access swaps the
//!   flags back to 0 unless the peer still has the page mapped
//!   (`GTF_reading`/`GTF_writing`).
//! - **Mapping** (the client): `GNTTABOP_map_grant_ref` with
//!   `GNTMAP_host_map` at a guest physical address in an unpopulated range
//!   above RAM (inside the kernel's 16 GiB identity map), each entry's
//!   status checked; `GNTTABOP_unmap_grant_ref` on teardown.
//! - **Event channels**: `EVTCHNOP_alloc_unbound` (server),
//!   `EVTCHNOP_bind_interdomain` (client), `EVTCHNOP_close`. Sending and
//!   waiting are [`crate::evtchn`]'s.
//!
//! Every failure is a [`Fail`]: the operation and Xen's exact value (an
//! `-errno`, or for one entry of a map or unmap the `GNTST_*` status, said
//! so in the operation's name: `-3` there is `GNTST_bad_gntref`).

use core::ptr::addr_of_mut;
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU16, AtomicU32, Ordering};

use hypercall_abi::hypercall::{EVENT_CHANNEL_OP, GRANT_TABLE_OP};
use hypercall_abi::{DomId, Gfn, PAGE_SIZE};

use crate::bench2::Fail;
use crate::xen::Hypercalls;

/// `XENMAPSPACE_grant_table`.
const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `GNTTABOP_map_grant_ref`, `GNTTABOP_unmap_grant_ref`.
const GNTTABOP_MAP_GRANT_REF: u64 = 0;
const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
/// `GNTMAP_host_map`.
const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GTF_permit_access`, `GTF_reading`, `GTF_writing` (grant v1 flags).
const GTF_PERMIT_ACCESS: u16 = 1;
const GTF_READING: u16 = 1 << 3;
const GTF_WRITING: u16 = 1 << 4;
/// `EVTCHNOP_bind_interdomain`, `EVTCHNOP_close`, `EVTCHNOP_alloc_unbound`.
const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
const EVTCHNOP_CLOSE: u64 = 3;
const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;

/// Grant table frames this kernel maps (512 v1 entries each).
const FRAMES: usize = 1;
/// Bytes of a v1 entry.
const ENTRY_BYTES: usize = 8;
/// Entries in the mapped frames.
const ENTRIES: u32 = (FRAMES * PAGE_SIZE as usize / ENTRY_BYTES) as u32;
/// `GNTTAB_NR_RESERVED_ENTRIES`: the toolstack's (console, xenstore).
pub const REF_FIRST: u32 = 8;
/// Most entries one map or unmap hypercall carries.
pub const BATCH_MAX: usize = 64;
/// Bytes of `struct gnttab_map_grant_ref` and `gnttab_unmap_grant_ref`.
const MAP_BYTES: usize = 32;
const UNMAP_BYTES: usize = 24;

#[repr(C, align(4096))]
struct Pages<const N: usize>([u8; N]);

/// The gfns Xen maps the grant table frames at: pages of the kernel's own
/// RAM, which `XENMEM_add_to_physmap` replaces.
static mut TABLE: Pages<{ FRAMES * PAGE_SIZE as usize }> = Pages([0; FRAMES * PAGE_SIZE as usize]);
/// Whether `TABLE` is the grant table (mapped once, never unmapped).
static TABLE_MAPPED: AtomicBool = AtomicBool::new(false);
/// Map and unmap arguments, [`BATCH_MAX`] entries.
static mut ARGS: Pages<{ BATCH_MAX * MAP_BYTES }> = Pages([0; BATCH_MAX * MAP_BYTES]);

/// `-EINVAL`, `-EBUSY`: what this module's own checks fail with.
pub const EINVAL: i64 = -22;
pub const EBUSY: i64 = -16;

/// Writes `b` at identity-mapped `gpa`.
fn put(gpa: u64, b: &[u8]) {
    for (i, &x) in b.iter().enumerate() {
        // SAFETY: callers pass addresses inside `ARGS`, which only this
        // module reaches, through these helpers; Xen reads it during the
        // hypercall only.
        unsafe { core::ptr::write_volatile((gpa as usize + i) as *mut u8, x) };
    }
}

/// Reads `N` bytes at identity-mapped `gpa`.
fn get<const N: usize>(gpa: u64) -> [u8; N] {
    let mut b = [0u8; N];
    for (i, x) in b.iter_mut().enumerate() {
        // SAFETY: as in `put`; Xen wrote it during the hypercall.
        *x = unsafe { core::ptr::read_volatile((gpa as usize + i) as *const u8) };
    }
    b
}

fn args() -> u64 {
    addr_of_mut!(ARGS) as u64
}

/// The domain's grant table, mapped into the kernel.
///
/// # Invariants
///
/// `TABLE` holds Xen's grant table frames of this domain (v1 entries), for
/// the kernel's whole life.
#[derive(Clone, Copy)]
pub struct Table {
    _mapped: (),
}

impl Table {
    /// Maps the grant table frames (the first call; later ones return the
    /// same table).
    pub fn get(hc: Hypercalls) -> Result<Table, Fail> {
        if TABLE_MAPPED.load(Ordering::Acquire) {
            return Ok(Table { _mapped: () });
        }
        let base = addr_of_mut!(TABLE) as u64;
        for idx in 0..FRAMES as u64 {
            let r = hc.add_to_physmap(XENMAPSPACE_GRANT_TABLE, idx, base / PAGE_SIZE + idx);
            if r != 0 {
                return Err(Fail::new("XENMEM_add_to_physmap(grant_table)", r));
            }
        }
        TABLE_MAPPED.store(true, Ordering::Release);
        Ok(Table { _mapped: () })
    }

    fn entry(&self, r: u32) -> u64 {
        debug_assert!((REF_FIRST..ENTRIES).contains(&r));
        addr_of_mut!(TABLE) as u64 + u64::from(r) * ENTRY_BYTES as u64
    }

    fn flags(&self, r: u32) -> &'static AtomicU16 {
        // SAFETY: by the type invariant the entry is in the mapped table,
        // 8-aligned, for the kernel's whole life; Xen changes the flags with
        // locked instructions, so the guest uses atomics too.
        unsafe { &*(self.entry(r) as *const AtomicU16) }
    }

    /// Grants `peer` read-write access to `gfn` through entry `r`.
    pub fn grant(&self, r: u32, peer: DomId, gfn: Gfn) -> Result<(), Fail> {
        if !(REF_FIRST..ENTRIES).contains(&r) {
            return Err(Fail::new("grant: ref outside the mapped table", EINVAL));
        }
        let frame = u32::try_from(gfn.0).map_err(|_| Fail::new("grant: gfn beyond 32 bits", EINVAL))?;
        if self.flags(r).load(Ordering::Acquire) != 0 {
            return Err(Fail::new("grant: entry in use", EBUSY));
        }
        let e = self.entry(r);
        // SAFETY: the entry is in the mapped table (type invariant), and
        // Xen reads domid and frame only after it sees the flags set.
        unsafe {
            core::ptr::write_volatile((e + 2) as *mut u16, peer.0);
            core::ptr::write_volatile((e + 4) as *mut u32, frame);
        }
        // Domid and frame before the flags (Linux: wmb()).
        compiler_fence(Ordering::Release);
        self.flags(r).store(GTF_PERMIT_ACCESS, Ordering::Release);
        Ok(())
    }

    /// Ends the access granted through `r`: fails while the peer still has
    /// the page mapped.
    pub fn end(&self, r: u32) -> Result<(), Fail> {
        if !(REF_FIRST..ENTRIES).contains(&r) {
            return Err(Fail::new("end access: ref outside the mapped table", EINVAL));
        }
        let flags = self.flags(r);
        let mut cur = flags.load(Ordering::Acquire);
        // Xen only ever adds or removes the reading/writing bits, so the
        // exchange fails at most once per such change; a bound all the same.
        for _ in 0..ENTRIES {
            if cur & (GTF_READING | GTF_WRITING) != 0 {
                return Err(Fail::new("end access: the peer still maps the page", EBUSY));
            }
            match flags.compare_exchange(cur, 0, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
        Err(Fail::new("end access: the flags keep changing", EBUSY))
    }
}

/// Maps `refs` of `peer` at consecutive gfns from `first` (unpopulated
/// gfns inside the identity map), writable. Writes each mapping's handle to
/// `handles`. On a failure unmaps what it mapped.
pub fn map(hc: &Hypercalls, peer: DomId, refs: &[u32], first: Gfn, handles: &mut [u32]) -> Result<(), Fail> {
    debug_assert_eq!(refs.len(), handles.len());
    let mut done = 0;
    while done < refs.len() {
        let n = (refs.len() - done).min(BATCH_MAX);
        for i in 0..n {
            // struct gnttab_map_grant_ref: host_addr, flags, ref, dom,
            // status (OUT), handle (OUT), dev_bus_addr (OUT).
            let mut a = [0u8; MAP_BYTES];
            let gpa = (first.0 + (done + i) as u64) * PAGE_SIZE;
            a[0..8].copy_from_slice(&gpa.to_le_bytes());
            a[8..12].copy_from_slice(&GNTMAP_HOST_MAP.to_le_bytes());
            a[12..16].copy_from_slice(&refs[done + i].to_le_bytes());
            a[16..18].copy_from_slice(&peer.0.to_le_bytes());
            put(args() + (i * MAP_BYTES) as u64, &a);
        }
        let r = hc.call(GRANT_TABLE_OP, [GNTTABOP_MAP_GRANT_REF, args(), n as u64, 0, 0]);
        // Entries that mapped are unmapped on any failure of the batch.
        let mut fail = (r != 0).then(|| Fail::new("GNTTABOP_map_grant_ref", r));
        for i in 0..n {
            let a: [u8; MAP_BYTES] = get(args() + (i * MAP_BYTES) as u64);
            let status = i16::from_le_bytes([a[18], a[19]]);
            if r == 0 && status == 0 {
                handles[done + i] = u32::from_le_bytes([a[20], a[21], a[22], a[23]]);
                continue;
            }
            if r == 0 && fail.is_none() {
                fail = Some(Fail::new("GNTTABOP_map_grant_ref status (GNTST_*)", i64::from(status)));
            }
            // Not mapped (or unknown): mark it so the unmap skips it.
            handles[done + i] = u32::MAX;
        }
        if let Some(f) = fail {
            // The first failure is what the caller needs; an unmap
            // failure here would only hide it.
            let _ = unmap(hc, first, &handles[..done + n]);
            return Err(f);
        }
        done += n;
    }
    Ok(())
}

/// Unmaps what [`map`] mapped at consecutive gfns from `first` (`u32::MAX`
/// handles are skipped). Tries every entry; returns the first failure.
pub fn unmap(hc: &Hypercalls, first: Gfn, handles: &[u32]) -> Result<(), Fail> {
    let mut fail = None;
    let mut done = 0;
    while done < handles.len() {
        let n = (handles.len() - done).min(BATCH_MAX);
        let mut k = 0;
        for i in 0..n {
            if handles[done + i] == u32::MAX {
                continue;
            }
            // struct gnttab_unmap_grant_ref: host_addr, dev_bus_addr,
            // handle, status (OUT).
            let mut a = [0u8; UNMAP_BYTES];
            let gpa = (first.0 + (done + i) as u64) * PAGE_SIZE;
            a[0..8].copy_from_slice(&gpa.to_le_bytes());
            a[16..20].copy_from_slice(&handles[done + i].to_le_bytes());
            put(args() + (k * UNMAP_BYTES) as u64, &a);
            k += 1;
        }
        if k > 0 {
            let r = hc.call(GRANT_TABLE_OP, [GNTTABOP_UNMAP_GRANT_REF, args(), k as u64, 0, 0]);
            if r != 0 {
                fail = fail.or(Some(Fail::new("GNTTABOP_unmap_grant_ref", r)));
            } else {
                for j in 0..k {
                    let a: [u8; UNMAP_BYTES] = get(args() + (j * UNMAP_BYTES) as u64);
                    let status = i16::from_le_bytes([a[20], a[21]]);
                    if status != 0 {
                        fail = fail.or(Some(Fail::new("GNTTABOP_unmap_grant_ref status (GNTST_*)", i64::from(status))));
                    }
                }
            }
        }
        done += n;
    }
    fail.map_or(Ok(()), Err)
}

/// `EVTCHNOP_alloc_unbound`: a port of this domain that `peer` may bind.
pub fn alloc_unbound(hc: &Hypercalls, peer: DomId) -> Result<u32, Fail> {
    // struct evtchn_alloc_unbound: dom, remote_dom, port (OUT).
    let a = [AtomicU32::new(u32::from(DomId::SELF_.0) | u32::from(peer.0) << 16), AtomicU32::new(0)];
    let r = hc.call(EVENT_CHANNEL_OP, [EVTCHNOP_ALLOC_UNBOUND, a.as_ptr() as u64, 0, 0, 0]);
    if r != 0 {
        return Err(Fail::new("EVTCHNOP_alloc_unbound", r));
    }
    Ok(a[1].load(Ordering::SeqCst))
}

/// `EVTCHNOP_bind_interdomain`: binds a local port to `peer`'s `port`.
pub fn bind_interdomain(hc: &Hypercalls, peer: DomId, port: u32) -> Result<u32, Fail> {
    // struct evtchn_bind_interdomain: remote_dom (and padding),
    // remote_port, local_port (OUT).
    let a = [AtomicU32::new(u32::from(peer.0)), AtomicU32::new(port), AtomicU32::new(0)];
    let r = hc.call(EVENT_CHANNEL_OP, [EVTCHNOP_BIND_INTERDOMAIN, a.as_ptr() as u64, 0, 0, 0]);
    if r != 0 {
        return Err(Fail::new("EVTCHNOP_bind_interdomain", r));
    }
    Ok(a[2].load(Ordering::SeqCst))
}

/// `EVTCHNOP_close`.
pub fn close(hc: &Hypercalls, port: u32) -> Result<(), Fail> {
    let a = AtomicU32::new(port);
    let r = hc.call(EVENT_CHANNEL_OP, [EVTCHNOP_CLOSE, a.as_ptr() as u64, 0, 0, 0]);
    if r != 0 {
        return Err(Fail::new("EVTCHNOP_close", r));
    }
    Ok(())
}
