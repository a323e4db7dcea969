//! The simulator's `impl Platform`: each method is what Xen does for it
//! (the Xen side is `rust-hv/src/xen/platform.rs` over the C shim), on the
//! machine's state under its lock. Misuse of the contract (a put nobody
//! held, access to a free frame) is recorded for the checkers, not hidden;
//! a call `rust_hv::locking` forbids with a `rust-hv` lock held panics
//! ([`lock::platform_call`]).

use hypercall_abi::{DomId, Errno, Gfn, Mfn, PAGE_ORDER_2M};
use rust_hv::platform::{DomainInfo, LockClass, P2mKind};
use rust_hv::Platform;

use super::{Machine, Preempt, State};
use crate::domain::Dom;
use crate::frame::{Owner, Put, PAGE_BYTES};
use crate::lock::{self, SimLock};
use crate::p2m::P2mType;

/// A ring mapping: an id in [`State::ring_maps`], which holds the frames
/// it translates to. Not `Clone`: given back once, by `ring_unmap`.
#[derive(Debug)]
pub struct RingMap {
    id: u64,
}

impl Platform for Machine {
    type Lock<T: Send> = SimLock<T>;
    type Domain = Dom;
    type RingMap = RingMap;

    fn ring_map(&self, mfns: &[Mfn]) -> Option<RingMap> {
        lock::platform_call("Platform::ring_map", "the vmap area's lock, and may allocate");
        if mfns.is_empty() || self.fault(|f| &mut f.ring_map) {
            return None;
        }
        let mut st = self.lock();
        for m in mfns {
            if !st.pins.contains_key(&m.0) {
                st.violation(format!("ring_map of mfn {:#x} which is not pinned", m.0));
            }
        }
        let id = st.next_ring_map;
        st.next_ring_map += 1;
        for m in mfns {
            *st.ring_mapped.entry(m.0).or_insert(0) += 1;
        }
        st.ring_maps.insert(id, mfns.iter().map(|m| m.0).collect());
        Some(RingMap { id })
    }

    fn ring_unmap(&self, map: RingMap) {
        lock::platform_call("Platform::ring_unmap", "a TLB flush on every CPU");
        let mut st = self.lock();
        let Some(mfns) = st.ring_maps.remove(&map.id) else {
            st.violation(format!("ring_unmap of mapping {} which is not live", map.id));
            return;
        };
        for m in mfns {
            if let Some(n) = st.ring_mapped.get_mut(&m) {
                *n -= 1;
                if *n == 0 {
                    st.ring_mapped.remove(&m);
                }
            }
        }
    }

    fn ring_map_read(&self, map: &RingMap, offset: usize, buf: &mut [u8]) {
        let mut st = self.lock();
        let Some(pieces) = ring_map_pieces(&mut st, map, offset, buf.len(), "read") else {
            buf.fill(0);
            return;
        };
        for (mfn, in_page, at, n) in pieces {
            st.frames.read(mfn, in_page, &mut buf[at..at + n]);
        }
    }

    fn ring_map_write(&self, map: &RingMap, offset: usize, buf: &[u8]) {
        let mut st = self.lock();
        let Some(pieces) = ring_map_pieces(&mut st, map, offset, buf.len(), "write") else { return };
        for (mfn, in_page, at, n) in pieces {
            st.frames.write(mfn, in_page, &buf[at..at + n]);
        }
    }

    fn copy_from_guest_to_ring_map(
        &self,
        caller: &Dom,
        addr: u64,
        map: &RingMap,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        // One guest copy, one draw of the fault, as Xen's one
        // `copy_from_guest` into the mapping.
        let faulted = self.fault(|f| &mut f.guest_copy);
        let copied = if faulted { self.guest_copy_fault_at().min(len) } else { len };
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        let Some(pieces) = ring_map_pieces(&mut st, map, offset, len, "write") else {
            // A caller bug, reported by the checkers; Xen would BUG.
            return Err(Errno::EFAULT);
        };
        for (mfn, in_page, at, n) in pieces {
            if at >= copied {
                break;
            }
            let n = n.min(copied - at);
            let src = addr.checked_add(at as u64).ok_or(Errno::EFAULT)?;
            st.guest_read_to_frame(caller.id(), src, mfn, in_page, n)?;
        }
        if faulted {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    fn domain(&self, id: DomId) -> Result<Dom, Errno> {
        lock::platform_call("Platform::domain", "the domain list's RCU read lock");
        self.handle(id)
    }

    fn domain_info(&self, d: &Dom) -> DomainInfo {
        d.info()
    }

    fn sshm_alloc(&self, order: u32) -> Result<Mfn, Errno> {
        lock::platform_call("Platform::sshm_alloc", "the heap lock");
        let locked = lock::held() > 0;
        if self.fault(|f| &mut f.alloc) || (order > 0 && self.fault(|f| &mut f.superpage_alloc)) {
            return Err(Errno::ENOMEM);
        }
        let mut st = self.lock();
        st.work.sshm_allocs += 1;
        st.work.sshm_allocs_locked += u64::from(locked);
        let m = st.frames.alloc(order, Owner::Sshm)?;
        st.sshm_pages += 1u64 << order;
        Ok(Mfn(m))
    }

    fn sshm_free(&self, mfn: Mfn, order: u32) {
        lock::platform_call("Platform::sshm_free", "the heap lock, and scrubs");
        let locked = lock::held() > 0;
        let mut st = self.lock();
        st.work.sshm_frees += 1;
        st.work.sshm_frees_locked += u64::from(locked);
        if order > crate::frame::ORDER_MAX {
            st.violation(format!("sshm_free of order {order}"));
            return;
        }
        for m in mfn.0..mfn.0.saturating_add(1u64 << order) {
            // As the shim (`rust_hv_sshm_free`): the frame is cleared before
            // the allocation reference goes, whatever other references
            // remain, since the heap does not scrub for the never-dying
            // pseudo-domain and a transient holder may drop the last one.
            if st.frames.get(m).is_some_and(|f| f.owner == Owner::Sshm && f.allocated) {
                st.frames.scrub(m);
            }
            match st.frames.put_allocated(m, Owner::Sshm) {
                Ok(Some(Put::Freed(_))) | Ok(Some(Put::Held)) => st.sshm_pages = st.sshm_pages.saturating_sub(1),
                Ok(None) => st.violation(format!("sshm_free of mfn {m:#x}, not an sshm allocation")),
                Err(msg) => st.violation(msg),
            }
        }
    }

    fn sshm_release_later(&self) {
        self.ask_release();
    }

    fn p2m_insert(&self, d: &Dom, gfn: Gfn, mfn: Mfn, order: u32, kind: P2mKind) -> Result<(), Errno> {
        if self.fault(|f| &mut f.p2m_insert) {
            return Err(Errno::ENOMEM);
        }
        let mut st = self.lock();
        let slot = st.slot(d)?;
        if !slot.rec.kind.translated() {
            return Err(Errno::EOPNOTSUPP);
        }
        if order != 0 && order != PAGE_ORDER_2M {
            return Err(Errno::EINVAL);
        }
        if slot.p2m.populated(gfn, order) {
            return Err(Errno::EBUSY);
        }
        let n = 1u64 << order;
        // The model of the shim's `p2m_add_sshm_entry`. First a reference
        // on every frame (`get_page(pg, dom_sshm)`): the platform, not the
        // caller, guarantees a guest only maps what it has a right to,
        // shared-memory entries only to sshm frames.
        for m in mfn.0..mfn.0.saturating_add(n) {
            let ok = st.frames.get(m).is_some_and(|f| f.owner == Owner::Sshm && f.count > 0);
            if !ok || st.frames.get_ref(m).is_err() {
                for u in mfn.0..m {
                    st.put_frame(u);
                }
                return Err(Errno::EINVAL);
            }
        }
        let t = match kind {
            P2mKind::SharedRo => P2mType::SharedRo,
            P2mKind::SharedRw => P2mType::SharedRw,
        };
        let fault = if order == PAGE_ORDER_2M { st.p2m_insert_fault.take() } else { None };
        let slot = st.slot_mut(d)?;
        let rc = match fault {
            // `p2m_set_entry` writing a 2 MiB request as 4 KiB entries and
            // running out of p2m pages part way: some entries are written.
            Some(written) => {
                for i in 0..written.min(n) {
                    slot.p2m.insert(Gfn(gfn.0 + i), Mfn(mfn.0 + i), 0, t)?;
                }
                Err(Errno::ENOMEM)
            }
            None => slot.p2m.insert(gfn, mfn, order, t),
        };
        if let Err(e) = rc {
            // As `p2m_add_page`: the operation may have partially
            // succeeded. Each gfn that maps its frame with this type was
            // written and is cleared again; a frame's reference goes only
            // once no entry maps it (one that could not be cleared keeps
            // its reference: a leak, never a mapped free frame).
            for i in 0..n {
                let (g, m) = (Gfn(gfn.0 + i), Mfn(mfn.0 + i));
                let slot = st.slot_mut(d)?;
                let written = slot.p2m.lookup(g) == Some((m, t));
                if written && slot.p2m.remove_exact(g, m, 0).is_err() {
                    st.violation(format!("d{} gfn {:#x}: partial sshm entry not cleared", d.id().0, g.0));
                    continue;
                }
                st.put_frame(m.0);
            }
            return Err(e);
        }
        Ok(())
    }

    fn p2m_remove(&self, d: &Dom, gfn: Gfn, mfn: Mfn, order: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        st.work.p2m_removes += 1;
        let slot = st.slot_mut(d)?;
        match slot.p2m.entry(gfn) {
            Some((start, e)) if start == gfn && e.mfn == mfn && e.order == order && !e.t.is_ram() => {
                if matches!(e.t, P2mType::GrantRo | P2mType::GrantRw) {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        slot.p2m.remove_exact(gfn, mfn, order)?;
        for m in mfn.0..mfn.0 + (1u64 << order) {
            st.put_frame(m);
        }
        Ok(())
    }

    fn p2m_populated(&self, d: &Dom, gfn: Gfn, order: u32) -> bool {
        self.lock().slot(d).is_ok_and(|s| s.p2m.populated(gfn, order))
    }

    fn page_pin_writable(&self, d: &Dom, gfn: Gfn) -> Result<Mfn, Errno> {
        let mut st = self.lock();
        let slot = st.slot(d)?;
        let (mfn, t) = slot.p2m.lookup(gfn).ok_or(Errno::EINVAL)?;
        if t != P2mType::RamRw {
            return Err(Errno::EINVAL);
        }
        match st.frames.get(mfn.0) {
            Some(f) if f.owner == Owner::Dom(d.id()) && f.allocated => {}
            _ => return Err(Errno::EINVAL),
        }
        st.frames.get_ref(mfn.0)?;
        if let Some(f) = st.frames.get_mut(mfn.0) {
            f.type_count += 1;
        }
        *st.pins.entry(mfn.0).or_insert(0) += 1;
        Ok(mfn)
    }

    fn page_unpin(&self, mfn: Mfn) {
        let mut st = self.lock();
        st.work.unpins += 1;
        match st.pins.get_mut(&mfn.0) {
            Some(n) if *n > 0 => {
                *n -= 1;
                let left = *n;
                if left == 0 {
                    st.pins.remove(&mfn.0);
                }
                if st.ring_mapped(mfn.0) > left {
                    st.violation(format!("page_unpin of mfn {:#x} while a ring mapping of it is live", mfn.0));
                }
            }
            _ => {
                st.violation(format!("page_unpin of mfn {:#x} which is not pinned", mfn.0));
                return;
            }
        }
        if let Some(f) = st.frames.get_mut(mfn.0) {
            f.type_count = f.type_count.saturating_sub(1);
        }
        st.put_frame(mfn.0);
    }

    fn frame_read(&self, mfn: Mfn, offset: usize, buf: &mut [u8]) {
        let mut st = self.lock();
        if !frame_access_ok(&mut st, mfn, offset, buf.len(), "read") {
            buf.fill(0);
            return;
        }
        st.frames.read(mfn.0, offset, buf);
    }

    fn frame_write(&self, mfn: Mfn, offset: usize, buf: &[u8]) {
        let mut st = self.lock();
        if frame_access_ok(&mut st, mfn, offset, buf.len(), "write") {
            st.frames.write(mfn.0, offset, buf);
        }
    }

    fn copy_from_guest(&self, caller: &Dom, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        lock::platform_call("Platform::copy_from_guest", "paging locks when it faults");
        if self.fault(|f| &mut f.guest_copy) {
            let at = self.guest_copy_fault_at().min(buf.len());
            let mut st = self.lock();
            st.slot(caller).map_err(|_| Errno::EFAULT)?;
            st.guest_read(caller.id(), addr, &mut buf[..at])?;
            return Err(Errno::EFAULT);
        }
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        st.guest_read(caller.id(), addr, buf)
    }

    fn copy_to_guest(&self, caller: &Dom, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        lock::platform_call("Platform::copy_to_guest", "paging locks when it faults");
        if self.fault(|f| &mut f.guest_copy) {
            let at = self.guest_copy_fault_at().min(buf.len());
            let mut st = self.lock();
            st.slot(caller).map_err(|_| Errno::EFAULT)?;
            st.guest_write(caller.id(), addr, &buf[..at])?;
            return Err(Errno::EFAULT);
        }
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        st.guest_write(caller.id(), addr, buf)
    }

    fn copy_from_guest_to_frame(
        &self,
        caller: &Dom,
        addr: u64,
        mfn: Mfn,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        let faulted = self.fault(|f| &mut f.guest_copy);
        let copied = if faulted { self.guest_copy_fault_at().min(len) } else { len };
        let mut st = self.lock();
        st.slot(caller).map_err(|_| Errno::EFAULT)?;
        if !frame_access_ok(&mut st, mfn, offset, len, "write") {
            // A caller bug, reported by the checkers; Xen would BUG.
            return Err(Errno::EFAULT);
        }
        st.guest_read_to_frame(caller.id(), addr, mfn.0, offset, copied)?;
        if faulted {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    fn smp_wmb(&self) {
        // Every frame access takes the machine lock, which already orders
        // them; the fence only mirrors Xen's barrier.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    }

    fn send_virq(&self, d: &Dom, virq: u32) {
        lock::platform_call("Platform::send_virq", "the target's event-channel locks");
        let mut st = self.lock();
        let Ok(slot) = st.slot_mut(d) else { return };
        *slot.virq_raised.entry(virq).or_insert(0) += 1;
        if let Some(port) = slot.evtchn.virq_port(virq) {
            slot.evtchn.set_pending(port);
        }
    }

    fn xsm_v4v_register(&self, caller: &Dom, partner: Option<&Dom>) -> Result<(), Errno> {
        lock::platform_call("Platform::xsm_v4v_register", "the XSM policy's locks");
        self.xsm().v4v_register(caller.info().id, partner.map(|d| d.info().id))
    }

    fn xsm_v4v_send(&self, src: &Dom, dst: &Dom) -> Result<(), Errno> {
        lock::platform_call("Platform::xsm_v4v_send", "the XSM policy's locks");
        self.xsm().v4v_send(src.info().id, dst.info().id)
    }

    fn xsm_v4v_firewall(&self, caller: &Dom) -> Result<(), Errno> {
        lock::platform_call("Platform::xsm_v4v_firewall", "the XSM policy's locks");
        let info = caller.info();
        self.xsm().v4v_firewall(info.id, info.control)
    }

    fn xsm_sshm_regions(&self, caller: &Dom) -> Result<(), Errno> {
        lock::platform_call("Platform::xsm_sshm_regions", "the XSM policy's locks");
        self.xsm().sshm_regions(caller.info().control)
    }

    fn preempt_check(&self) -> bool {
        let p = *self.preempt.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Preempt::Never => false,
            Preempt::Always => true,
            Preempt::OneIn(n) => n <= 1 || self.draw().is_multiple_of(u64::from(n)),
        }
    }

    fn lock_held(&self) -> Option<&'static LockClass> {
        lock::highest_held()
    }
}

/// `frame_read`/`frame_write` are only for frames the caller holds a
/// reference on: touching a free frame is a use after free.
fn frame_access_ok(st: &mut State, mfn: Mfn, offset: usize, len: usize, what: &str) -> bool {
    let in_page = offset.checked_add(len).is_some_and(|e| e <= PAGE_BYTES);
    let live = st.frames.get(mfn.0).is_some_and(|f| f.count > 0);
    if !in_page {
        st.violation(format!("frame_{what} of {len} bytes at offset {offset} crosses mfn {:#x}", mfn.0));
    } else if !live {
        st.violation(format!("frame_{what} of free mfn {:#x} (use after free)", mfn.0));
    }
    in_page && live
}

/// The frame pieces `(mfn, offset in frame, offset in range, bytes)` of
/// `len` bytes at `offset` in a ring mapping; `None` (and a violation) if
/// the mapping is not live or the range passes its end.
fn ring_map_pieces(
    st: &mut State,
    map: &RingMap,
    offset: usize,
    len: usize,
    what: &str,
) -> Option<Vec<(u64, usize, usize, usize)>> {
    let Some(mfns) = st.ring_maps.get(&map.id) else {
        st.violation(format!("ring_map_{what} through mapping {} which is not live", map.id));
        return None;
    };
    if offset.checked_add(len).is_none_or(|e| e > mfns.len() * PAGE_BYTES) {
        let pages = mfns.len();
        st.violation(format!("ring_map_{what} of {len} bytes at {offset} passes the end of a {pages}-page mapping"));
        return None;
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let abs = offset + at;
        let in_page = abs % PAGE_BYTES;
        let n = (len - at).min(PAGE_BYTES - in_page);
        out.push((mfns[abs / PAGE_BYTES], in_page, at, n));
        at += n;
    }
    for &(mfn, ..) in &out {
        if st.frames.get(mfn).is_none_or(|f| f.count == 0) {
            st.violation(format!("ring_map_{what} of free mfn {mfn:#x} (use after free)"));
            return None;
        }
    }
    Some(out)
}
