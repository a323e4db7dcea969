//! The boot test's scenarios: one list, two worlds.
//!
//! Every scenario talks to a hypervisor only through [`Guest`]: a hypercall
//! instruction and the guest's own physical memory. The test kernel in
//! `tests/boot` implements it over real Xen (hypercall page, identity-mapped
//! memory); the simulator-backed test implements it over `simulator::Sim`.
//! Both run [`run_all`] and print the same lines, so `make smoke` can compare
//! the two worlds line by line.
//!
//! The same trait is the seam of the one guest-side test library: the op
//! builders ([`ops`]), the ring-memory adapter ([`ring`]) and the marshalling
//! helpers ([`mem`]) are written once, generic over `G: Guest + ?Sized`, and
//! used by the scenarios, the simulator's tests and the benchmarks
//! (through `tests/sim-guest`, the `Guest` over `simulator::Sim`).
//!
//! Output: one `PASS name` or `FAIL name: reason` line per scenario, then
//! `N passed, N failed`. Lines that differ between worlds (free page counts)
//! start with `info:` and are not compared.

#![no_std]

use core::fmt;

use hypercall_abi::{DomId, Errno, Gfn};

pub mod mem;
pub mod ops;
pub mod ring;
mod sshm;
mod util;
mod v4v;

pub use util::Fail;

/// Pages of ordinary guest RAM the scenarios may scribble on, from
/// [`Guest::scratch`]. Layout: see [`util::page`].
pub const SCRATCH_PAGES: u64 = 8;
/// Consecutive unpopulated gfns from [`Guest::free_gfn`] where the scenarios
/// attach shared memory (16 MiB), 2 MiB-aligned.
pub const FREE_GFNS: u64 = 4096;

/// What a write through a read-only mapping did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The store instruction completed (the hypervisor may have dropped it:
    /// the caller checks memory).
    Completed,
    /// The store faulted with this exception vector (or, in the simulator,
    /// was refused).
    Faulted(u8),
}

/// A guest as the scenarios see it: itself, its memory and the hypercall
/// instruction. Guest physical addresses are what hypercall pointer
/// arguments carry (identity-mapped in the test kernel).
pub trait Guest {
    /// Issues hypercall `nr` with up to five arguments; returns Xen's `rax`.
    fn hypercall(&mut self, nr: u32, args: [u64; 5]) -> i64;
    /// Reads guest memory at a guest physical address.
    fn read(&mut self, gpa: u64, buf: &mut [u8]);
    /// Writes guest memory at a guest physical address.
    fn write(&mut self, gpa: u64, buf: &[u8]);
    /// Reads guest memory, or the error (`-EFAULT` at a hole) of reading
    /// it. The default is [`Guest::read`], for memory that cannot fault.
    fn try_read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.read(gpa, buf);
        Ok(())
    }
    /// Writes guest memory, or the error of writing it (see
    /// [`Guest::try_read`]).
    fn try_write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        self.write(gpa, buf);
        Ok(())
    }
    /// Stores `value` at `gpa`, which is mapped read-only, and reports
    /// whether the store faulted. The caller checks memory to see whether a
    /// completed store was dropped.
    fn probe_write(&mut self, gpa: u64, value: u64) -> WriteOutcome;
    /// The calling domain.
    fn domid(&self) -> DomId;
    /// First byte of [`SCRATCH_PAGES`] page-aligned pages of guest RAM.
    fn scratch(&self) -> u64;
    /// First of [`FREE_GFNS`] consecutive unpopulated gfns.
    fn free_gfn(&self) -> Gfn;
    /// Free pages in the hypervisor's heap. The default asks
    /// `XEN_SYSCTL_physinfo`.
    fn free_pages(&mut self) -> Result<u64, Errno> {
        util::physinfo_free_pages(self)
    }
    /// Prints one line (the text has no newline).
    fn print(&mut self, args: fmt::Arguments<'_>);
}

/// A borrowed guest is a guest: helpers that keep one (such as
/// [`ring::GuestRing`]) can hold `&mut G`.
impl<G: Guest + ?Sized> Guest for &mut G {
    fn hypercall(&mut self, nr: u32, args: [u64; 5]) -> i64 {
        (**self).hypercall(nr, args)
    }
    fn read(&mut self, gpa: u64, buf: &mut [u8]) {
        (**self).read(gpa, buf)
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) {
        (**self).write(gpa, buf)
    }
    fn try_read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        (**self).try_read(gpa, buf)
    }
    fn try_write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        (**self).try_write(gpa, buf)
    }
    fn probe_write(&mut self, gpa: u64, value: u64) -> WriteOutcome {
        (**self).probe_write(gpa, value)
    }
    fn domid(&self) -> DomId {
        (**self).domid()
    }
    fn scratch(&self) -> u64 {
        (**self).scratch()
    }
    fn free_gfn(&self) -> Gfn {
        (**self).free_gfn()
    }
    fn free_pages(&mut self) -> Result<u64, Errno> {
        (**self).free_pages()
    }
    fn print(&mut self, args: fmt::Arguments<'_>) {
        (**self).print(args)
    }
}

/// A scenario: a name and a check.
pub struct Scenario {
    /// Printed in the PASS/FAIL line.
    pub name: &'static str,
    /// Runs the check; cleans up after itself whatever the outcome.
    pub run: fn(&mut dyn Guest) -> Result<(), Fail>,
}

/// The result of [`run_all`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios that passed.
    pub passed: u32,
    /// Scenarios that failed.
    pub failed: u32,
}

/// Every scenario, in the order they run.
pub static ALL: &[Scenario] = &[
    Scenario { name: "sshm_create_attach_rw", run: sshm::create_attach_rw },
    Scenario { name: "sshm_ro_attach_refuses_write", run: sshm::ro_attach_refuses_write },
    Scenario { name: "sshm_info_counts_attachments", run: sshm::info_counts_attachments },
    Scenario { name: "sshm_pages_back_in_free_pool", run: sshm::pages_back_in_free_pool },
    Scenario { name: "sshm_large_attach", run: sshm::large_attach },
    Scenario { name: "sshm_create_in_steps", run: sshm::create_in_steps },
    Scenario { name: "sshm_bad_reserved_field", run: sshm::bad_reserved_field },
    Scenario { name: "sshm_bad_op", run: sshm::bad_op },
    Scenario { name: "sshm_bad_name", run: sshm::bad_name },
    Scenario { name: "sshm_too_big", run: sshm::too_big },
    Scenario { name: "sshm_create_exists", run: sshm::create_exists },
    Scenario { name: "sshm_attach_missing", run: sshm::attach_missing },
    Scenario { name: "sshm_attach_over_ram", run: sshm::attach_over_ram },
    Scenario { name: "sshm_attach_rw_of_ro_region", run: sshm::attach_rw_of_ro_region },
    Scenario { name: "sshm_detach_not_attached", run: sshm::detach_not_attached },
    Scenario { name: "v4v_register_unregister", run: v4v::register_unregister },
    Scenario { name: "v4v_send_self_single_iov", run: v4v::send_self_single_iov },
    Scenario { name: "v4v_send_self_multi_iov", run: v4v::send_self_multi_iov },
    Scenario { name: "v4v_send_wraps_ring", run: v4v::send_wraps_ring },
    Scenario { name: "v4v_notify", run: v4v::notify },
    Scenario { name: "v4v_info_counts_messages", run: v4v::info_counts_messages },
    Scenario { name: "v4v_send_after_unregister", run: v4v::send_after_unregister },
    Scenario { name: "v4v_bad_ring_len", run: v4v::bad_ring_len },
    Scenario { name: "v4v_ring_too_big", run: v4v::ring_too_big },
    Scenario { name: "v4v_register_fail_exist", run: v4v::register_fail_exist },
    Scenario { name: "v4v_send_spoofed_source", run: v4v::send_spoofed_source },
    Scenario { name: "v4v_send_too_many_iovs", run: v4v::send_too_many_iovs },
    Scenario { name: "v4v_send_iov_pad", run: v4v::send_iov_pad },
    Scenario { name: "v4v_send_no_ring", run: v4v::send_no_ring },
    Scenario { name: "v4v_send_batch", run: v4v::send_batch },
    Scenario { name: "v4v_send_batch_bad", run: v4v::send_batch_bad },
];

/// Runs every scenario, printing a line for each and the summary line.
pub fn run_all(g: &mut dyn Guest) -> Summary {
    let mut s = Summary::default();
    for sc in ALL {
        match (sc.run)(g) {
            Ok(()) => {
                s.passed += 1;
                g.print(format_args!("PASS {}", sc.name));
            }
            Err(f) => {
                s.failed += 1;
                g.print(format_args!("FAIL {}: {}", sc.name, f));
            }
        }
    }
    g.print(format_args!("{} passed, {} failed", s.passed, s.failed));
    s
}
