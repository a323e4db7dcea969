//! No p2m entry points at a free frame or at a frame its domain has no
//! right to: own RAM is owned by the domain, shared memory by the sshm
//! pseudo-domain, a grant map by the granter it was mapped from.

use hypercall_abi::DomId;

use crate::frame::Owner;
use crate::machine::State;
use crate::p2m::P2mType;

use super::Report;

pub(super) fn check(st: &State, r: &mut Report) {
    for (&id, slot) in &st.domains {
        let me = DomId(id);
        for (gfn, e) in slot.p2m.iter() {
            for i in 0..(1u64 << e.order) {
                let (g, m) = (gfn.0 + i, e.mfn.0 + i);
                let Some(f) = st.frames.get(m) else { continue };
                if f.owner == Owner::Free {
                    r.fail(format!("d{id} gfn {g:#x} ({:?}) maps free mfn {m:#x}", e.t));
                    continue;
                }
                let ok = match e.t {
                    P2mType::RamRw | P2mType::RamRo => f.owner == Owner::Dom(me),
                    P2mType::SharedRw | P2mType::SharedRo => f.owner == Owner::Sshm,
                    P2mType::GrantRw | P2mType::GrantRo => slot.maptrack.maps.values().any(|rec| {
                        rec.gfn == g
                            && rec.mfn == m
                            && rec.readonly == (e.t == P2mType::GrantRo)
                            && f.owner == Owner::Dom(rec.granter)
                    }),
                };
                if !ok {
                    r.fail(format!("d{id} gfn {g:#x} ({:?}) maps mfn {m:#x} of {:?} without the right", e.t, f.owner));
                }
            }
        }
        for (h, rec) in &slot.maptrack.maps {
            if slot.p2m.lookup(hypercall_abi::Gfn(rec.gfn)).map(|(m, _)| m.0) != Some(rec.mfn) {
                r.fail(format!("d{id} grant handle {h} has no p2m entry at gfn {:#x}", rec.gfn));
            }
        }
    }
}
