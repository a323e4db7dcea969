//! Reference-count conservation: every frame's count is exactly the
//! references actually held (allocation, non-RAM p2m entries, pins), and the
//! free pool is exactly the frames nobody holds.

use std::collections::HashMap;

use crate::frame::Owner;
use crate::machine::State;

use super::Report;

pub(super) fn check(st: &State, r: &mut Report) {
    let mut held: HashMap<u64, u64> = HashMap::new();
    for (id, slot) in &st.domains {
        for (gfn, e) in slot.p2m.iter() {
            if !e.t.holds_ref() {
                continue;
            }
            for i in 0..(1u64 << e.order) {
                *held.entry(e.mfn.0 + i).or_insert(0) += 1;
                if st.frames.get(e.mfn.0 + i).is_none() {
                    r.fail(format!("d{id} gfn {:#x} maps mfn {:#x} outside the pool", gfn.0 + i, e.mfn.0 + i));
                }
            }
        }
    }
    for (&mfn, &n) in st.pins.iter().chain(st.transient.iter()) {
        *held.entry(mfn).or_insert(0) += u64::from(n);
    }
    let mut free_frames = 0u64;
    for (mfn, f) in st.frames.iter() {
        let refs = held.get(&mfn).copied().unwrap_or(0);
        let expected = refs + u64::from(f.allocated);
        if u64::from(f.count) != expected {
            r.fail(format!(
                "mfn {mfn:#x} ({:?}): count {} but {} held (allocated {}, mappings and pins {})",
                f.owner, f.count, expected, f.allocated, refs
            ));
        }
        let pins = st.pins.get(&mfn).copied().unwrap_or(0);
        if f.type_count != pins {
            r.fail(format!("mfn {mfn:#x}: writable type count {} but {} pins", f.type_count, pins));
        }
        if f.owner == Owner::Free {
            free_frames += 1;
            if f.count != 0 || f.allocated || st.frames.has_data(mfn) {
                r.fail(format!("free mfn {mfn:#x} is still in use or holds data: {f:?}"));
            }
        } else if f.count == 0 {
            r.fail(format!("mfn {mfn:#x} of {:?} has no reference but is not free (leak)", f.owner));
        }
    }
    let mut in_extents = 0u64;
    for (start, len) in st.frames.free_extents() {
        in_extents += len;
        for m in start..start + len {
            if st.frames.get(m).map(|f| f.owner) != Some(Owner::Free) {
                r.fail(format!("mfn {m:#x} is in the free pool but in use"));
                break;
            }
        }
    }
    if in_extents != free_frames || free_frames != st.frames.free_count() {
        r.fail(format!(
            "free pool: {free_frames} free frames, {in_extents} in extents, count says {}",
            st.frames.free_count()
        ));
    }
}
