//! Static shared memory and V4V rings for Xen, written once and run in two
//! worlds: inside Xen (the `xen` feature: [`Platform`] over a C shim) and in
//! the pure-Rust simulator.
//!
//! The logic (`sshm`, `v4v`) is `#![deny(unsafe_code)]` and talks to the
//! world only through [`Platform`]. Hypervisor code never panics on guest
//! input: every failure is an [`Errno`]; heap allocation is fallible
//! (`try_reserve`) and comes back as `-ENOMEM`.

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod locking;
pub mod platform;
pub mod sshm;
pub mod v4v;
// The only module with `unsafe`: the bindings, their safe wrapper and the
// entry points (only in the Xen build).
#[cfg(feature = "xen")]
#[expect(unsafe_code)]
pub mod xen;

pub use hypercall_abi::{DomId, Errno, Gfn, Mfn, PageCount};
pub use platform::Platform;

/// The hypervisor state of both features, for one [`Platform`].
pub struct Hv<P: Platform> {
    /// Static shared memory.
    pub sshm: sshm::Sshm<P>,
    /// V4V rings.
    pub v4v: v4v::V4v<P>,
}

impl<P: Platform> Hv<P> {
    /// Fresh state with the given limits.
    pub fn new(sshm_limits: sshm::Limits) -> Self {
        Hv { sshm: sshm::Sshm::new(sshm_limits), v4v: v4v::V4v::new() }
    }

    /// Domain-kill hook, in bounded steps: called once the domain is dying
    /// and again while it returns `-ERESTART` (Xen: `domain_kill()`'s
    /// relinquish path, before `domain_relinquish_resources()`; the
    /// toolstack's `destroydomain` continues it). Each step does a bounded
    /// amount of work ([`sshm::BATCH_ENTRIES_MAX`] p2m entries,
    /// [`v4v::TEARDOWN_STEP_MAX`] units). Once it returns `Ok` the domain
    /// holds no sshm attachment and no V4V ring or pending entry, and no
    /// page reference taken by this crate.
    pub fn domain_destroy(&self, p: &P, d: &P::Domain) -> Result<(), Errno> {
        self.sshm.domain_destroy(p, d)?;
        self.v4v.domain_destroy(p, d)
    }

    /// Soft reset hook: called by `domain_soft_reset()` (the guest's kexec)
    /// with the domain paused. Its V4V state goes (see
    /// [`v4v::V4v::domain_soft_reset`]); its static shared memory
    /// attachments stay mapped, like its RAM: they are part of the VM's
    /// configured physmap, the new kernel finds them where the old one did,
    /// and they go at detach or domain death as before.
    ///
    /// In bounded steps like [`Hv::domain_destroy`]: `-ERESTART` asks for
    /// another call (Xen: `XEN_DOMCTL_soft_reset_cont`).
    pub fn domain_soft_reset(&self, p: &P, d: &P::Domain) -> Result<(), Errno> {
        self.v4v.domain_soft_reset(p, d)
    }
}
