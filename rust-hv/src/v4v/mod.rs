//! V4V rings: hypervisor-mediated messaging.
//!
//! Skeleton: filled in by the V4V work (issue 5).

use core::marker::PhantomData;

use hypercall_abi::Errno;

use crate::platform::Platform;

/// The V4V state of a hypervisor.
pub struct V4v<P: Platform> {
    _p: PhantomData<fn(&P)>,
}

impl<P: Platform> Default for V4v<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> V4v<P> {
    /// No rings.
    pub fn new() -> Self {
        V4v { _p: PhantomData }
    }

    /// `__HYPERVISOR_v4v_op(cmd, args...)` issued by `caller`;
    /// `Err(ERESTART)` asks for the same hypercall to be issued again.
    ///
    /// Stub (added by the simulator work so that it can dispatch); the V4V
    /// work replaces the body.
    pub fn op(&self, _p: &P, _caller: &P::Domain, _cmd: u32, _args: [u64; 4]) -> Result<i64, Errno> {
        Err(Errno::ENOSYS)
    }

    /// Domain-kill hook: unregisters `d`'s rings, tears down rings naming it
    /// as partner, cancels its pending entries.
    pub fn domain_destroy(&self, _p: &P, _d: &P::Domain) {}
}
