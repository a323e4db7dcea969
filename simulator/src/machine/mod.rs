//! The machine: frame table, domains, p2m, grant tables and event channels
//! under one lock, and its [`Platform`] implementation.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Machine`], its locks, the limits |
//! | `state.rs` | what the machine lock protects (`State`) and frame accounting |
//! | `lifecycle.rs` | domain creation, id allocation, relinquish and death |
//! | `guest_memory.rs` | guest reads and writes by address, through the p2m |
//! | `platform.rs` | the `impl Platform for Machine`, to read beside `rust-hv/src/xen/platform.rs` |
//! | `xsm.rs` | the XSM double: the dummy policy, refusals set by tests, the questions asked |
//! | `controls.rs` | what tests do to the machine besides hypercalls: preemption policy, armed faults, other Xen paths' references, p2m type changes |
//! | `queries.rs` | what tests read: frames, p2m, counts, violations, zombies, work |
//!
//! # Locking
//!
//! - `Machine::state` (a `Mutex<State>`) protects everything the machine
//!   models. It is a leaf lock: it is never held while calling into
//!   `rust-hv`, and `rust-hv` may hold its own locks (`SimLock`) while
//!   calling a `Platform` method, which takes it briefly. Each `Platform`
//!   call is therefore atomic, as each p2m or page operation is in Xen.
//! - `rust-hv`'s own locks are `SimLock`s ([`crate::lock`]), which check
//!   `rust_hv::locking`'s rules: taking them out of order, or calling a
//!   `Platform` method the rules forbid with one held, panics with both
//!   names.
//! - `DomainRec::pause` (an `RwLock<()>` per domain) is taken shared by each
//!   hypercall of that domain and exclusively by `domain_kill`, before the
//!   state lock is taken and never while it is held.
//! - `Machine::rng`, `Machine::preempt`, `Machine::faults` and `Machine::xsm` are leaves,
//!   taken alone.

mod controls;
mod guest_memory;
mod lifecycle;
mod platform;
mod queries;
mod state;
mod xsm;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

#[cfg(doc)]
use rust_hv::Platform;

pub use controls::{Faults, Preempt, Trigger};
pub use queries::{Work, Zombie};
pub(crate) use state::State;
pub use xsm::XsmHook;

use crate::rng::SplitMix64;
use xsm::Xsm;

/// Most RAM a domain may be created with, in pages (16 GiB).
pub const RAM_PAGES_MAX: u64 = 1 << 22;
/// Most misuse reports kept (see [`Machine::violations`]); later ones are
/// counted only.
pub const VIOLATIONS_MAX: usize = 64;
/// Most bytes one guest copy may move (a hypercall buffer or a test's
/// guest access).
pub const GUEST_COPY_MAX: usize = 16 << 20;

/// The simulated machine. Implements [`Platform`];
/// `Sync`, with internal locks (see the module's locking block).
pub struct Machine {
    state: Mutex<State>,
    rng: Mutex<SplitMix64>,
    preempt: Mutex<Preempt>,
    faults: Mutex<Faults>,
    xsm: Mutex<Xsm>,
    seed: u64,
    sshm_pages_max: u64,
    /// `sshm_release_later` was called: the background release (Xen: a
    /// tasklet) is due. [`crate::Sim`] runs it when a hypercall or a
    /// domain-kill step returns.
    release_asked: AtomicBool,
    /// Tests run the background release themselves, a step at a time
    /// ([`crate::Sim::background_step`]).
    background_manual: AtomicBool,
}

impl Machine {
    pub(crate) fn new(frames: u64, seed: u64, sshm_pages_max: u64) -> Machine {
        Machine {
            state: Mutex::new(State::new(frames)),
            rng: Mutex::new(SplitMix64::new(seed)),
            preempt: Mutex::new(Preempt::OneIn(8)),
            faults: Mutex::new(Faults::default()),
            xsm: Mutex::new(Xsm::default()),
            seed,
            sshm_pages_max,
            release_asked: AtomicBool::new(false),
            background_manual: AtomicBool::new(false),
        }
    }

    /// Whether [`crate::Sim`] leaves the background release to the test
    /// ([`crate::Sim::background_step`]) instead of running it as each
    /// hypercall returns; off by default.
    pub fn set_background_manual(&self, manual: bool) {
        self.background_manual.store(manual, Ordering::Release);
    }

    pub(crate) fn background_manual(&self) -> bool {
        self.background_manual.load(Ordering::Acquire)
    }

    /// Whether the background release was asked for since the last call
    /// (and clears the request).
    pub(crate) fn take_release_request(&self) -> bool {
        self.release_asked.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn ask_release(&self) {
        self.release_asked.store(true, Ordering::Release);
    }

    /// The machine lock. A panic elsewhere with the lock held (a failed
    /// test assertion) must not hide the state from the checkers.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The seed the machine's randomness was drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn draw(&self) -> u64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64()
    }
}
