//! Domains' lifecycle: creation with RAM, Xen's domain id allocation,
//! `domain_relinquish_resources`, and death once the last frame goes.

use std::sync::Arc;

use hypercall_abi::{DomId, Errno, Gfn, Mfn, PAGE_ORDER_2M};

use super::{Machine, State, RAM_PAGES_MAX};
use crate::domain::{Dom, DomainKind, DomainRec, DomainState, Slot};
use crate::evtchn::PortState;
use crate::frame::{Owner, Put};
use crate::p2m::P2mType;

impl State {
    /// The last frame of a dying domain went: `struct domain` is freed and
    /// the id is free for reuse.
    pub(super) fn finish_death(&mut self, id: DomId) {
        if let Some(slot) = self.domains.remove(&id.0) {
            slot.rec.set_state(DomainState::Dead);
            self.dead.insert(id.0);
        }
    }

    /// Picks a free domain id as Xen's `XEN_DOMCTL_createdomain` does: the
    /// first domain is dom0; later ones take the next free id after the
    /// last one handed out, wrapping below the reserved range and skipping
    /// 0. An id is free once its previous holder is fully dead (a zombie
    /// keeps its id).
    fn alloc_domid(&mut self) -> Result<DomId, Errno> {
        if self.domains.is_empty() && self.dead.is_empty() && self.rover == 0 {
            return Ok(DomId(0));
        }
        let first = DomId::FIRST_RESERVED.0;
        let mut dom = self.rover;
        for _ in 0..first {
            dom = dom.wrapping_add(1);
            if dom >= first || dom == 0 {
                dom = 1;
            }
            if !self.domains.contains_key(&dom) {
                self.rover = dom;
                return Ok(DomId(dom));
            }
        }
        Err(Errno::ENOMEM)
    }

    /// `domain_relinquish_resources`: drops the domain's grant mappings of
    /// others' pages, tears down its p2m (dropping the references non-RAM
    /// entries hold), closes its event channels and drops the allocated
    /// reference of each frame it owns. Frames still referenced elsewhere
    /// keep it alive as a zombie.
    pub(crate) fn relinquish(&mut self, id: DomId) -> DomainState {
        self.gnttab_release_mappings(id);
        let Some(slot) = self.domains.get_mut(&id.0) else { return DomainState::Dead };
        let entries = slot.p2m.drain();
        let pages = std::mem::take(&mut slot.page_list);
        let ports: Vec<(u32, PortState)> = slot.evtchn.iter().map(|(p, s)| (p, s.state)).collect();
        for (_, e) in entries {
            if e.t.holds_ref() {
                for i in 0..(1u64 << e.order) {
                    self.put_frame(e.mfn.0 + i);
                }
            }
        }
        for (port, st) in ports {
            self.evtchn_close_port(id, port, st);
        }
        if let Some(slot) = self.domains.get_mut(&id.0) {
            slot.relinquished = true;
        }
        for (mfn, order) in pages {
            for m in mfn..mfn + (1u64 << order) {
                match self.frames.put_allocated(m, Owner::Dom(id)) {
                    Ok(Some(Put::Freed(owner))) => self.account_freed(owner),
                    Ok(_) => {}
                    Err(msg) => self.violation(msg),
                }
            }
        }
        match self.domains.get(&id.0) {
            None => DomainState::Dead,
            Some(s) if s.tot_pages == 0 => {
                self.finish_death(id);
                DomainState::Dead
            }
            Some(_) => {
                self.zombie_log.push(id);
                DomainState::Dying
            }
        }
    }

    /// Closes one port, turning an interdomain peer's end back to unbound
    /// (`evtchn_close`).
    pub(crate) fn evtchn_close_port(&mut self, id: DomId, port: u32, st: PortState) {
        if let Some(slot) = self.domains.get_mut(&id.0) {
            slot.evtchn.free(port);
        }
        if let PortState::Interdomain { remote, rport } = st {
            if let Some(p) = self.domains.get_mut(&remote.0).and_then(|s| s.evtchn.port_mut(rport)) {
                p.state = PortState::Unbound { remote: id };
            }
        }
    }
}

impl Machine {
    /// A handle on the current incarnation of `id`.
    pub(crate) fn handle(&self, id: DomId) -> Result<Dom, Errno> {
        self.lock().domains.get(&id.0).map(|s| Dom(s.rec.clone())).ok_or(Errno::ESRCH)
    }

    /// Creates a domain with `ram_pages` of RAM at gfns `0..ram_pages`,
    /// in 2 MiB chunks where the gfn is aligned and such a chunk is free,
    /// else 4 KiB frames. All or nothing: `-ENOMEM` leaves nothing behind.
    pub(crate) fn create_domain(&self, kind: DomainKind, ram_pages: u64, control: bool) -> Result<DomId, Errno> {
        if ram_pages > RAM_PAGES_MAX {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        let id = st.alloc_domid()?;
        let rec = Arc::new(DomainRec::new(id, kind, control));
        st.domains.insert(id.0, Slot::new(rec));
        st.dead.remove(&id.0);
        let mut gfn = 0u64;
        let res: Result<(), Errno> = loop {
            if gfn >= ram_pages {
                break Ok(());
            }
            let big = 1u64 << PAGE_ORDER_2M;
            let want_big = gfn.is_multiple_of(big) && ram_pages - gfn >= big;
            let (mfn, order) = match want_big.then(|| st.frames.alloc(PAGE_ORDER_2M, Owner::Dom(id))) {
                Some(Ok(m)) => (m, PAGE_ORDER_2M),
                _ => match st.frames.alloc(0, Owner::Dom(id)) {
                    Ok(m) => (m, 0),
                    Err(e) => break Err(e),
                },
            };
            let Some(slot) = st.domains.get_mut(&id.0) else { break Err(Errno::ESRCH) };
            slot.page_list.push((mfn, order));
            slot.tot_pages += 1u64 << order;
            if let Err(e) = slot.p2m.insert(Gfn(gfn), Mfn(mfn), order, P2mType::RamRw) {
                break Err(e);
            }
            gfn += 1u64 << order;
        };
        if let Err(e) = res {
            // Undo: the domain never existed; its frames go straight back.
            if let Some(slot) = st.domains.remove(&id.0) {
                for (mfn, order) in slot.page_list {
                    for m in mfn..mfn + (1u64 << order) {
                        if let Err(msg) = st.frames.put_allocated(m, Owner::Dom(id)) {
                            st.violation(msg);
                        }
                    }
                }
            }
            return Err(e);
        }
        Ok(id)
    }
}
