//! V4V rings: hypervisor-mediated messaging.
//!
//! Skeleton: filled in by the V4V work (issue 5).

use core::marker::PhantomData;

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

    /// Domain-kill hook: unregisters `d`'s rings, tears down rings naming it
    /// as partner, cancels its pending entries.
    pub fn domain_destroy(&self, _p: &P, _d: &P::Domain) {}
}
