//! Static shared memory: owner-less, hypervisor-refcounted regions.
//!
//! Skeleton: the handler is filled in by the sshm work (issue 4).

use core::marker::PhantomData;

use hypercall_abi::sshm::StaticShm;
use hypercall_abi::{DomId, Errno};

use crate::platform::Platform;

/// Run-time limits (boot parameters in Xen), each at most the ABI's hard cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pages all regions together may use (`sshm_max_mb`).
    pub total_pages_max: u64,
    /// Largest region in pages.
    pub region_pages_max: u64,
    /// Most regions.
    pub regions_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total_pages_max: 1 << 18,
            region_pages_max: hypercall_abi::sshm::REGION_PAGES_MAX,
            regions_max: hypercall_abi::sshm::REGIONS_MAX,
        }
    }
}

/// The static shared memory state of a hypervisor.
pub struct Sshm<P: Platform> {
    limits: Limits,
    _p: PhantomData<fn(&P)>,
}

impl<P: Platform> Sshm<P> {
    /// No regions.
    pub fn new(limits: Limits) -> Self {
        Sshm { limits, _p: PhantomData }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `XEN_DOMCTL_static_shm` on `target`, issued by `caller`. `op` is
    /// updated in place (outputs, continuation progress); `Err(ERESTART)`
    /// asks for the same domctl to be issued again.
    ///
    /// Stub (added by the simulator work so that it can dispatch); the sshm
    /// work replaces the body.
    pub fn domctl(&self, _p: &P, _caller: &P::Domain, _target: DomId, _op: &mut StaticShm) -> Result<i64, Errno> {
        Err(Errno::ENOSYS)
    }

    /// Domain-kill hook: detaches every attachment of `d`.
    pub fn domain_destroy(&self, _p: &P, _d: &P::Domain) {}
}
