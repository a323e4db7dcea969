//! Invariant checkers, run after every step of a test. Each file checks one
//! family of invariants over a consistent snapshot (the machine lock is
//! held); all failures are collected so that one report shows everything.

mod domains;
mod p2m;
mod refcount;
mod ring_maps;
pub(crate) mod sshm;

use crate::machine::State;

/// Most failures listed in one report.
pub const FAILURES_MAX: usize = 32;

/// Collected failures.
#[derive(Default)]
pub(crate) struct Report(Vec<String>);

impl Report {
    pub(crate) fn fail(&mut self, msg: String) {
        if self.0.len() < FAILURES_MAX {
            self.0.push(msg);
        }
    }
}

/// Runs every checker.
pub(crate) fn check(st: &State, sshm_pages_max: u64) -> Result<(), String> {
    let mut r = Report::default();
    for v in &st.violations {
        r.fail(format!("platform misuse: {v}"));
    }
    refcount::check(st, &mut r);
    p2m::check(st, &mut r);
    domains::check(st, &mut r);
    ring_maps::check(st, &mut r);
    sshm::check(st, sshm_pages_max, &mut r);
    if r.0.is_empty() {
        Ok(())
    } else {
        Err(r.0.join("\n"))
    }
}
