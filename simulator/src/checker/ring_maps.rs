//! No leaked ring mapping: every live mapping
//! ([`rust_hv::Platform::ring_map`]) is of frames still pinned for it, by a
//! domain that is alive. A ring unregistered, torn down at its domain's
//! death or at a soft reset unpins its frames; a mapping of them left
//! behind is a leak of Xen's vmap area and a window on pages the guest may
//! reuse.

use std::collections::HashMap;

use crate::frame::Owner;
use crate::machine::State;

use super::Report;

pub(super) fn check(st: &State, r: &mut Report) {
    let mut mapped: HashMap<u64, u32> = HashMap::new();
    for (id, mfns) in &st.ring_maps {
        for &m in mfns {
            *mapped.entry(m).or_insert(0) += 1;
            match st.frames.get(m).map(|f| f.owner) {
                Some(Owner::Dom(d)) if st.domains.contains_key(&d.0) => {}
                owner => r.fail(format!("ring mapping {id} leaked: mfn {m:#x} is of {owner:?}, not a live domain")),
            }
        }
    }
    for (&m, &n) in &mapped {
        let pins = st.pins.get(&m).copied().unwrap_or(0);
        if n > pins {
            r.fail(format!("ring mapping leaked: mfn {m:#x} mapped {n} times but pinned {pins} times"));
        }
        if st.ring_mapped.get(&m).copied().unwrap_or(0) != n {
            r.fail(format!("ring mappings of mfn {m:#x}: counted {:?}, live {n}", st.ring_mapped.get(&m)));
        }
    }
    if st.ring_mapped.len() != mapped.len() {
        r.fail(format!("ring mappings: {} mfns counted, {} live", st.ring_mapped.len(), mapped.len()));
    }
}
