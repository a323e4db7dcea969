//! Domains: page accounting, dead domains hold nothing, zombies are real
//! zombies, grant active entries match the mappings, event channel
//! bindings are symmetric.

use std::collections::HashMap;

use hypercall_abi::DomId;

use crate::domain::DomainState;
use crate::evtchn::PortState;
use crate::frame::Owner;
use crate::grant::{GTF_READING, GTF_WRITING};
use crate::machine::State;

use super::Report;

pub(super) fn check(st: &State, r: &mut Report) {
    let mut owned: HashMap<u16, u64> = HashMap::new();
    for (mfn, f) in st.frames.iter() {
        if let Owner::Dom(d) = f.owner {
            *owned.entry(d.0).or_insert(0) += 1;
            if !st.domains.contains_key(&d.0) {
                r.fail(format!("mfn {mfn:#x} is owned by d{} which is dead", d.0));
            }
        }
    }
    for &id in &st.dead {
        if st.domains.contains_key(&id) {
            r.fail(format!("d{id} is both dead and alive"));
        }
    }
    // (granter, gref) -> (readers, writers) from the mappers' side.
    let mut maps: HashMap<(u16, u32), (u32, u32)> = HashMap::new();
    for (&id, slot) in &st.domains {
        let n = owned.get(&id).copied().unwrap_or(0);
        if slot.tot_pages != n {
            r.fail(format!("d{id}: tot_pages {} but owns {n} frames", slot.tot_pages));
        }
        let state = slot.rec.state();
        if slot.relinquished {
            if state != DomainState::Dying {
                r.fail(format!("d{id} relinquished but {state:?}"));
            }
            if slot.tot_pages == 0 {
                r.fail(format!("d{id} relinquished with no frames left but not dead"));
            }
            if !slot.p2m.is_empty() || !slot.maptrack.maps.is_empty() || slot.evtchn.iter().next().is_some() {
                r.fail(format!("d{id} relinquished but still holds p2m entries, grant maps or ports"));
            }
        } else if state == DomainState::Dead {
            r.fail(format!("d{id} is dead but still has a record"));
        }
        for rec in slot.maptrack.maps.values() {
            let e = maps.entry((rec.granter.0, rec.gref)).or_insert((0, 0));
            if rec.readonly {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        for (port, p) in slot.evtchn.iter() {
            if let PortState::Interdomain { remote, rport } = p.state {
                let back = st.domains.get(&remote.0).and_then(|s| s.evtchn.port(rport)).map(|q| q.state);
                if back != Some(PortState::Interdomain { remote: DomId(id), rport: port }) {
                    r.fail(format!("d{id} port {port} bound to d{}:{rport} which is {back:?}", remote.0));
                }
            }
        }
    }
    for (&id, slot) in &st.domains {
        for (gref, e) in slot.grants.entries.iter().enumerate() {
            let gref = gref as u32;
            let (rd, wr) = maps.remove(&(id, gref)).unwrap_or((0, 0));
            let a = slot.grants.active.get(&gref).map(|a| (a.readers, a.writers)).unwrap_or((0, 0));
            if a != (rd, wr) {
                r.fail(format!("d{id} gref {gref}: active {a:?} but mapped (ro, rw) = {:?}", (rd, wr)));
            }
            let reading = e.flags & GTF_READING != 0;
            let writing = e.flags & GTF_WRITING != 0;
            if reading != (rd + wr > 0) || writing != (wr > 0) {
                r.fail(format!("d{id} gref {gref}: flags {:#x} but mapped (ro, rw) = {:?}", e.flags, (rd, wr)));
            }
        }
    }
    for ((g, gref), n) in maps {
        r.fail(format!("{n:?} mappings of d{g} gref {gref} whose granter is gone"));
    }
}
