//! Grant tables v1: the granting guest writes entries into its table; a
//! peer maps the granted frame into its own p2m, unmaps it, or has Xen copy
//! to or from it. The granter ends access by clearing the entry, which it
//! cannot do while the page is mapped.
//!
//! This is the sharing mechanism the design avoids: a mapping holds a
//! reference on a frame the granter owns, so a granter killed while a peer
//! still maps its page stays a zombie until the peer unmaps.

use std::collections::BTreeMap;

use hypercall_abi::{DomId, Errno, Gfn, Mfn, PAGE_SIZE};

use crate::domain::DomainState;
use crate::frame::{Owner, PAGE_BYTES};
use crate::machine::State;
use crate::p2m::P2mType;

/// Grant entries per domain (two v1 frames of 512 entries).
pub const GRANT_ENTRIES: u32 = 1024;
/// Grant mappings one domain may hold (maptrack entries).
pub const MAPTRACK_MAX: u32 = 1024;
/// Ops one `grant_table_op` hypercall may carry. Xen preempts long batches
/// with a continuation; the model refuses them instead (`-EINVAL`).
pub const BATCH_MAX: u32 = 256;

/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// `GNTTABOP_copy`.
pub const GNTTABOP_COPY: u32 = 5;

/// `GTF_permit_access`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading` (set by Xen while mapped).
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing` (set by Xen while mapped writable).
pub const GTF_WRITING: u16 = 1 << 4;

/// `GNTMAP_host_map`.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// `GNTCOPY_source_gref`.
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`.
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// `GNTST_*` status codes.
pub mod gntst {
    /// `GNTST_okay`.
    pub const OKAY: i16 = 0;
    /// `GNTST_general_error`.
    pub const GENERAL_ERROR: i16 = -1;
    /// `GNTST_bad_domain`.
    pub const BAD_DOMAIN: i16 = -2;
    /// `GNTST_bad_gntref`.
    pub const BAD_GNTREF: i16 = -3;
    /// `GNTST_bad_handle`.
    pub const BAD_HANDLE: i16 = -4;
    /// `GNTST_bad_virt_addr`.
    pub const BAD_VIRT_ADDR: i16 = -5;
    /// `GNTST_permission_denied`.
    pub const PERMISSION_DENIED: i16 = -8;
    /// `GNTST_bad_page`.
    pub const BAD_PAGE: i16 = -9;
    /// `GNTST_bad_copy_arg`.
    pub const BAD_COPY_ARG: i16 = -10;
    /// `GNTST_no_space`.
    pub const NO_SPACE: i16 = -13;
}

/// `struct grant_entry_v1`, as the granting guest writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntry {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain allowed to use the grant.
    pub domid: u16,
    /// The granter's gfn.
    pub frame: u32,
}

impl GrantEntry {
    /// A grant of `gfn` to `peer`.
    pub fn permit(peer: DomId, gfn: Gfn, readonly: bool) -> GrantEntry {
        let ro = if readonly { GTF_READONLY } else { 0 };
        GrantEntry { flags: GTF_PERMIT_ACCESS | ro, domid: peer.0, frame: gfn.0 as u32 }
    }

    fn in_use(&self) -> bool {
        self.flags & (GTF_READING | GTF_WRITING) != 0
    }
}

/// Xen's active entry: the frame a grant is pinned to while mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active {
    /// The granted frame.
    pub mfn: u64,
    /// Read-only mappings.
    pub readers: u32,
    /// Writable mappings.
    pub writers: u32,
}

/// A domain's grant table, as granter.
#[derive(Debug)]
pub struct GrantTable {
    /// The shared entries.
    pub entries: Vec<GrantEntry>,
    /// Active entries by grant ref.
    pub active: BTreeMap<u32, Active>,
}

impl GrantTable {
    /// All entries invalid.
    pub fn new() -> GrantTable {
        GrantTable { entries: vec![GrantEntry::default(); GRANT_ENTRIES as usize], active: BTreeMap::new() }
    }
}

impl Default for GrantTable {
    fn default() -> Self {
        Self::new()
    }
}

/// One grant mapping a domain holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRec {
    /// The granter.
    pub granter: DomId,
    /// The grant ref.
    pub gref: u32,
    /// Where it is mapped in the mapper's p2m.
    pub gfn: u64,
    /// The frame.
    pub mfn: u64,
    /// Read-only mapping.
    pub readonly: bool,
}

/// A domain's grant mappings, by handle.
#[derive(Debug, Default)]
pub struct Maptrack {
    /// Handle -> mapping.
    pub maps: BTreeMap<u32, MapRec>,
}

/// `struct gnttab_map_grant_ref` (32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MapGrantRef {
    /// Where to map: a guest-physical address for translated guests.
    pub host_addr: u64,
    /// `GNTMAP_*`.
    pub flags: u32,
    /// The grant ref.
    pub gref: u32,
    /// The granter.
    pub dom: u16,
    /// Out: `GNTST_*`.
    pub status: i16,
    /// Out: the handle.
    pub handle: u32,
    /// Out: unused (no IOMMU).
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref` (24 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UnmapGrantRef {
    /// Where it is mapped.
    pub host_addr: u64,
    /// Unused.
    pub dev_bus_addr: u64,
    /// The handle from the map.
    pub handle: u32,
    /// Out: `GNTST_*`.
    pub status: i16,
}

/// One side of `struct gnttab_copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct CopyPtr {
    /// A grant ref, or the caller's own gfn.
    pub gref_or_gfn: u64,
    /// The domain.
    pub domid: u16,
    /// Offset in the page.
    pub offset: u16,
}

/// `struct gnttab_copy` (40 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Copy {
    /// Source.
    pub source: CopyPtr,
    /// Destination.
    pub dest: CopyPtr,
    /// Bytes.
    pub len: u16,
    /// `GNTCOPY_*`.
    pub flags: u16,
    /// Out: `GNTST_*`.
    pub status: i16,
}

hypercall_abi::wire!(MapGrantRef {
    host_addr: u64,
    flags: u32,
    gref: u32,
    dom: u16,
    status: i16,
    handle: u32,
    dev_bus_addr: u64,
});
hypercall_abi::wire!(UnmapGrantRef { host_addr: u64, dev_bus_addr: u64, handle: u32, status: i16 });
hypercall_abi::wire!(CopyPtr { gref_or_gfn: u64, domid: u16, offset: u16 });
hypercall_abi::wire!(Copy { source: nested, dest: nested, len: u16, flags: u16, status: i16 });

// Xen's layouts (public/grant_table.h, x86_64).
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<MapGrantRef>() == 32 && offset_of!(MapGrantRef, status) == 18);
    assert!(offset_of!(MapGrantRef, handle) == 20 && offset_of!(MapGrantRef, dev_bus_addr) == 24);
    assert!(size_of::<UnmapGrantRef>() == 24 && offset_of!(UnmapGrantRef, status) == 20);
    assert!(size_of::<CopyPtr>() == 16 && offset_of!(CopyPtr, offset) == 10);
    assert!(size_of::<Copy>() == 40 && offset_of!(Copy, dest) == 16 && offset_of!(Copy, status) == 36);
};

impl State {
    /// The guest side of granting: `d` writes entry `gref` of its table.
    /// A well-behaved guest does not rewrite an entry Xen has in use, so
    /// that is refused (`-EBUSY`) rather than modelled.
    pub(crate) fn grant_write(&mut self, d: DomId, gref: u32, e: GrantEntry) -> Result<(), Errno> {
        let slot = self.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?;
        let cur = slot.grants.entries.get_mut(gref as usize).ok_or(Errno::EINVAL)?;
        if cur.in_use() {
            return Err(Errno::EBUSY);
        }
        *cur = GrantEntry { flags: e.flags & !(GTF_READING | GTF_WRITING), ..e };
        Ok(())
    }

    /// The guest side of ending access (`gnttab_end_foreign_access_ref`):
    /// clears the entry unless a peer still has it mapped (`-EBUSY`).
    pub(crate) fn grant_end_access(&mut self, d: DomId, gref: u32) -> Result<(), Errno> {
        let slot = self.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?;
        let cur = slot.grants.entries.get_mut(gref as usize).ok_or(Errno::EINVAL)?;
        if cur.in_use() {
            return Err(Errno::EBUSY);
        }
        *cur = GrantEntry::default();
        Ok(())
    }

    /// The frame behind grant `gref` of `granter` for use by `user`:
    /// checks the entry and that the granter owns the page.
    fn grant_frame(&self, granter: DomId, gref: u32, user: DomId, write: bool) -> Result<u64, i16> {
        let g = self.domains.get(&granter.0).ok_or(gntst::BAD_DOMAIN)?;
        if g.rec.state() != DomainState::Running {
            return Err(gntst::BAD_DOMAIN);
        }
        let e = g.grants.entries.get(gref as usize).ok_or(gntst::BAD_GNTREF)?;
        if e.flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS || e.domid != user.0 {
            return Err(gntst::PERMISSION_DENIED);
        }
        if write && e.flags & GTF_READONLY != 0 {
            return Err(gntst::PERMISSION_DENIED);
        }
        if let Some(a) = g.grants.active.get(&gref) {
            return Ok(a.mfn);
        }
        self.owned_ram(granter, Gfn(u64::from(e.frame)), write)
    }

    /// A RAM frame `d` owns at `gfn` (only such a page can be granted or
    /// copied by gfn: not shared memory, not another grant).
    fn owned_ram(&self, d: DomId, gfn: Gfn, write: bool) -> Result<u64, i16> {
        let s = self.domains.get(&d.0).ok_or(gntst::BAD_DOMAIN)?;
        let (mfn, t) = s.p2m.lookup(gfn).ok_or(gntst::BAD_PAGE)?;
        let ok_type = t == P2mType::RamRw || (!write && t == P2mType::RamRo);
        let owned = self.frames.get(mfn.0).is_some_and(|f| f.owner == Owner::Dom(d) && f.allocated);
        if ok_type && owned {
            Ok(mfn.0)
        } else {
            Err(gntst::BAD_PAGE)
        }
    }

    /// `GNTTABOP_map_grant_ref` for one op; returns the handle.
    pub(crate) fn gnttab_map(&mut self, mapper: DomId, op: &MapGrantRef) -> Result<u32, i16> {
        if op.flags & GNTMAP_HOST_MAP == 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        if !op.host_addr.is_multiple_of(PAGE_SIZE) {
            return Err(gntst::BAD_VIRT_ADDR);
        }
        let gfn = Gfn(op.host_addr / PAGE_SIZE);
        let readonly = op.flags & GNTMAP_READONLY != 0;
        let granter = DomId(op.dom);
        let mfn = self.grant_frame(granter, op.gref, mapper, !readonly)?;
        let m = self.domains.get_mut(&mapper.0).ok_or(gntst::GENERAL_ERROR)?;
        let handle = (0..MAPTRACK_MAX).find(|h| !m.maptrack.maps.contains_key(h)).ok_or(gntst::NO_SPACE)?;
        let t = if readonly { P2mType::GrantRo } else { P2mType::GrantRw };
        m.p2m.insert(gfn, Mfn(mfn), 0, t).map_err(|_| gntst::GENERAL_ERROR)?;
        if self.frames.get_ref(mfn).is_err() {
            if let Some(m) = self.domains.get_mut(&mapper.0) {
                let _ = m.p2m.remove_exact(gfn, Mfn(mfn), 0);
            }
            return Err(gntst::GENERAL_ERROR);
        }
        if let Some(m) = self.domains.get_mut(&mapper.0) {
            m.maptrack.maps.insert(handle, MapRec { granter, gref: op.gref, gfn: gfn.0, mfn, readonly });
        }
        if let Some(g) = self.domains.get_mut(&granter.0) {
            let a = g.grants.active.entry(op.gref).or_insert(Active { mfn, readers: 0, writers: 0 });
            let e = &mut g.grants.entries[op.gref as usize];
            e.flags |= GTF_READING;
            if readonly {
                a.readers += 1;
            } else {
                a.writers += 1;
                e.flags |= GTF_WRITING;
            }
        }
        Ok(handle)
    }

    /// `GNTTABOP_unmap_grant_ref` for one op.
    pub(crate) fn gnttab_unmap(&mut self, mapper: DomId, op: &UnmapGrantRef) -> Result<(), i16> {
        let m = self.domains.get(&mapper.0).ok_or(gntst::GENERAL_ERROR)?;
        let rec = *m.maptrack.maps.get(&op.handle).ok_or(gntst::BAD_HANDLE)?;
        if !op.host_addr.is_multiple_of(PAGE_SIZE) || op.host_addr / PAGE_SIZE != rec.gfn {
            return Err(gntst::BAD_VIRT_ADDR);
        }
        self.unmap_rec(mapper, op.handle, rec);
        Ok(())
    }

    fn unmap_rec(&mut self, mapper: DomId, handle: u32, rec: MapRec) {
        if let Some(m) = self.domains.get_mut(&mapper.0) {
            m.maptrack.maps.remove(&handle);
            if m.p2m.remove_exact(Gfn(rec.gfn), Mfn(rec.mfn), 0).is_err() {
                self.violation(format!("grant map d{} gfn {:#x} lost its p2m entry", mapper.0, rec.gfn));
            }
        }
        // The active entry first: dropping the reference may free the
        // granter's last frame and with it the granter.
        if let Some(g) = self.domains.get_mut(&rec.granter.0) {
            if let Some(a) = g.grants.active.get_mut(&rec.gref) {
                if rec.readonly {
                    a.readers = a.readers.saturating_sub(1);
                } else {
                    a.writers = a.writers.saturating_sub(1);
                }
                let (r, w) = (a.readers, a.writers);
                let e = &mut g.grants.entries[rec.gref as usize];
                if w == 0 {
                    e.flags &= !GTF_WRITING;
                }
                if r + w == 0 {
                    e.flags &= !GTF_READING;
                    g.grants.active.remove(&rec.gref);
                }
            }
        }
        self.put_frame(rec.mfn);
    }

    /// `gnttab_release_mappings`: a dying domain's mappings of others'
    /// grants go.
    pub(crate) fn gnttab_release_mappings(&mut self, id: DomId) {
        let maps: Vec<(u32, MapRec)> = match self.domains.get(&id.0) {
            Some(s) => s.maptrack.maps.iter().map(|(&h, &r)| (h, r)).collect(),
            None => return,
        };
        for (h, r) in maps {
            self.unmap_rec(id, h, r);
        }
    }

    fn copy_side(&self, caller: DomId, p: &CopyPtr, by_gref: bool, write: bool, len: u16) -> Result<u64, i16> {
        if usize::from(p.offset) + usize::from(len) > PAGE_BYTES {
            return Err(gntst::BAD_COPY_ARG);
        }
        if by_gref {
            let gref = u32::try_from(p.gref_or_gfn).map_err(|_| gntst::BAD_GNTREF)?;
            self.grant_frame(DomId(p.domid), gref, caller, write)
        } else {
            // Without privilege, a gfn names the caller's own memory only.
            if p.domid != caller.0 && DomId(p.domid) != DomId::SELF_ {
                return Err(gntst::PERMISSION_DENIED);
            }
            self.owned_ram(caller, Gfn(p.gref_or_gfn), write)
        }
    }

    /// `GNTTABOP_copy` for one op.
    pub(crate) fn gnttab_copy(&mut self, caller: DomId, op: &Copy) -> Result<(), i16> {
        let src = self.copy_side(caller, &op.source, op.flags & GNTCOPY_SOURCE_GREF != 0, false, op.len)?;
        let dst = self.copy_side(caller, &op.dest, op.flags & GNTCOPY_DEST_GREF != 0, true, op.len)?;
        let mut buf = vec![0u8; usize::from(op.len)];
        self.frames.read(src, usize::from(op.source.offset), &mut buf);
        self.frames.write(dst, usize::from(op.dest.offset), &buf);
        Ok(())
    }

    /// `__HYPERVISOR_grant_table_op(cmd, uop, count)` from `caller`: each
    /// op is read from the caller's memory, done, and written back with
    /// its status. Returns 0, or `-EFAULT`/`-EINVAL`/`-ENOSYS` for the
    /// hypercall itself.
    pub(crate) fn grant_table_op(&mut self, caller: DomId, cmd: u32, uop: u64, count: u32) -> Result<i64, Errno> {
        if count > BATCH_MAX {
            return Err(Errno::EINVAL);
        }
        let size = match cmd {
            GNTTABOP_MAP_GRANT_REF => MapGrantRef::SIZE,
            GNTTABOP_UNMAP_GRANT_REF => UnmapGrantRef::SIZE,
            GNTTABOP_COPY => Copy::SIZE,
            _ => return Err(Errno::ENOSYS),
        };
        for i in 0..u64::from(count) {
            let addr = uop.checked_add(i * size as u64).ok_or(Errno::EFAULT)?;
            match cmd {
                GNTTABOP_MAP_GRANT_REF => {
                    let mut b = [0u8; MapGrantRef::SIZE];
                    self.guest_read(caller, addr, &mut b)?;
                    let mut op = MapGrantRef::from_bytes(&b);
                    match self.gnttab_map(caller, &op) {
                        Ok(h) => {
                            op.status = gntst::OKAY;
                            op.handle = h;
                            op.dev_bus_addr = 0;
                        }
                        Err(st) => op.status = st,
                    }
                    self.guest_write(caller, addr, &op.to_bytes())?;
                }
                GNTTABOP_UNMAP_GRANT_REF => {
                    let mut b = [0u8; UnmapGrantRef::SIZE];
                    self.guest_read(caller, addr, &mut b)?;
                    let mut op = UnmapGrantRef::from_bytes(&b);
                    op.status = self.gnttab_unmap(caller, &op).err().unwrap_or(gntst::OKAY);
                    self.guest_write(caller, addr, &op.to_bytes())?;
                }
                _ => {
                    let mut b = [0u8; Copy::SIZE];
                    self.guest_read(caller, addr, &mut b)?;
                    let mut op = Copy::from_bytes(&b);
                    op.status = self.gnttab_copy(caller, &op).err().unwrap_or(gntst::OKAY);
                    self.guest_write(caller, addr, &op.to_bytes())?;
                }
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_structs_round_trip() {
        let m = MapGrantRef { host_addr: 1, flags: 2, gref: 3, dom: 4, status: -5, handle: 6, dev_bus_addr: 7 };
        assert_eq!(MapGrantRef::from_bytes(&m.to_bytes()), m);
        let u = UnmapGrantRef { host_addr: 1, dev_bus_addr: 2, handle: 3, status: -4 };
        assert_eq!(UnmapGrantRef::from_bytes(&u.to_bytes()), u);
        let c = Copy {
            source: CopyPtr { gref_or_gfn: 1, domid: 2, offset: 3 },
            dest: CopyPtr { gref_or_gfn: 4, domid: 5, offset: 6 },
            len: 7,
            flags: 8,
            status: -9,
        };
        assert_eq!(Copy::from_bytes(&c.to_bytes()), c);
    }
}
