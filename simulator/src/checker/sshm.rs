//! The sshm pseudo-domain: its allocation count matches the frames it
//! holds, it stays under the cap, and no guest owns sshm backing.
//!
//! Accounting frames to individual regions needs `rust-hv`'s region table;
//! until it exposes one, this checks the machine-side totals.

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
