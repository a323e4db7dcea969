//! What the scenarios share: the failure type, the scratch layout, and
//! hypercall helpers that marshal ABI structs through guest memory.

use core::fmt;

use hypercall_abi::{Errno, PAGE_SIZE};

use crate::Guest;

/// Why a scenario failed. Its text is the same in both worlds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// A hypercall returned `got` where `want` was expected.
    Ret {
        /// Which step.
        step: &'static str,
        /// Returned value.
        got: i64,
        /// Expected value.
        want: i64,
    },
    /// A check on memory or an output field failed.
    Check {
        /// What was checked.
        what: &'static str,
        /// The value seen.
        got: u64,
        /// The value expected.
        want: u64,
    },
}

/// Formats a hypercall return value with its errno name.
struct Ret(i64);

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Errno::from_ret(self.0) {
            Some(e) => write!(f, "-{}", e.name()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fail::Ret { step, got, want } => write!(f, "{step} returned {}, want {}", Ret(got), Ret(want)),
            Fail::Check { what, got, want } => write!(f, "{what} is {got:#x}, want {want:#x}"),
        }
    }
}

/// `Ok` if `got == want`.
pub fn ret(step: &'static str, got: i64, want: i64) -> Result<(), Fail> {
    if got == want {
        Ok(())
    } else {
        Err(Fail::Ret { step, got, want })
    }
}

/// `Ok` if the call failed with `e`.
pub fn errno(step: &'static str, got: i64, e: Errno) -> Result<(), Fail> {
    ret(step, got, e.to_ret())
}

/// `Ok` if `got == want`.
pub fn check(what: &'static str, got: u64, want: u64) -> Result<(), Fail> {
    if got == want {
        Ok(())
    } else {
        Err(Fail::Check { what, got, want })
    }
}

/// Scratch pages, by use (indices into [`crate::SCRATCH_PAGES`]).
pub mod page {
    /// Hypercall argument structs (domctl, sysctl, V4V structs).
    pub const ARGS: u64 = 0;
    /// Arrays: gfn lists, iovs, notify entries, sshm info entries.
    pub const ARRAYS: u64 = 1;
    /// Message payloads to send.
    pub const PAYLOAD: u64 = 2;
    /// A V4V ring (header and data), one page.
    pub const RING: u64 = 4;
    /// A second ring page.
    pub const RING2: u64 = 5;
}

/// Guest physical address of scratch page `p`, plus `off` bytes.
pub fn scratch<G: Guest + ?Sized>(g: &G, p: u64, off: u64) -> u64 {
    debug_assert!(p < crate::SCRATCH_PAGES && off < PAGE_SIZE);
    g.scratch() + p * PAGE_SIZE + off
}

/// `__HYPERVISOR_sysctl`.
const HYPERCALL_SYSCTL: u32 = 35;
/// `XEN_SYSCTL_physinfo`.
const SYSCTL_PHYSINFO: u32 = 3;
/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.17 (this series leaves it).
const SYSCTL_INTERFACE_VERSION: u32 = 0x15;
/// `sizeof(struct xen_sysctl)`: cmd, version, 128-byte union.
const SYSCTL_BYTES: usize = 8 + 128;
/// Offset of `free_pages` in `struct xen_sysctl` (union at 8, field at 48).
const SYSCTL_FREE_PAGES: usize = 8 + 48;

/// Free pages in Xen's heap, from `XEN_SYSCTL_physinfo`.
pub fn physinfo_free_pages<G: Guest + ?Sized>(g: &mut G) -> Result<u64, Errno> {
    let mut b = [0u8; SYSCTL_BYTES];
    b[0..4].copy_from_slice(&SYSCTL_PHYSINFO.to_le_bytes());
    b[4..8].copy_from_slice(&SYSCTL_INTERFACE_VERSION.to_le_bytes());
    let gpa = scratch(g, page::ARGS, 0);
    g.write(gpa, &b);
    let r = g.hypercall(HYPERCALL_SYSCTL, [gpa, 0, 0, 0, 0]);
    if let Some(e) = Errno::from_ret(r) {
        return Err(e);
    }
    g.read(gpa, &mut b);
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[SYSCTL_FREE_PAGES..SYSCTL_FREE_PAGES + 8]);
    Ok(u64::from_le_bytes(w))
}
