//! The sshm pseudo-domain: its allocation count matches the frames it
//! holds, it stays under the cap, and no guest owns sshm backing.
//!
//! Regions are `rust-hv`'s: `check_regions` holds the machine's count to
//! the pages the region registry accounts for, and runs the registry's own
//! checks. Like every checker it expects a quiescent simulator (no
//! hypercall in flight between an allocation and its registration).

use crate::frame::Owner;
use crate::machine::State;

use super::Report;

pub(super) fn check(st: &State, sshm_pages_max: u64, r: &mut Report) {
    let allocated = st.frames.iter().filter(|(_, f)| f.owner == Owner::Sshm && f.allocated).count() as u64;
    if allocated != st.sshm_pages {
        r.fail(format!("sshm pseudo-domain: {allocated} allocated frames but {} accounted", st.sshm_pages));
    }
    if st.sshm_pages > sshm_pages_max {
        r.fail(format!("sshm pseudo-domain holds {} pages, over the cap of {sshm_pages_max}", st.sshm_pages));
    }
}

/// Every sshm frame allocation is accounted to a live region, and vice
/// versa; the registry's own invariants hold.
pub(crate) fn check_regions(machine_pages: u64, region_pages: u64) -> Result<(), String> {
    if machine_pages == region_pages {
        Ok(())
    } else {
        Err(format!(
            "sshm pseudo-domain holds {machine_pages} allocated pages but the regions account for {region_pages}"
        ))
    }
}
