//! [`scenarios::Guest`] over [`simulator::Sim`]: a domain of the simulator
//! as the guest-side test library sees it. With it, the op builders
//! (`scenarios::ops`), the ring-memory adapter (`scenarios::ring`) and the
//! marshalling helpers (`scenarios::mem`) that the test kernel uses on real
//! Xen also serve the simulator's tests and the benchmarks; this crate adds
//! only what needs `std` or the simulator.
//!
//! A `SimGuest` borrows the simulator (whose methods take `&self`), so a
//! test makes one wherever it needs one, for any domain.

#![deny(unsafe_code)]

use std::fmt;

use hypercall_abi::{DomId, Errno, Gfn};
use scenarios::ring::GuestRing;
use scenarios::{Guest, WriteOutcome};
use simulator::Sim;

/// Where [`Guest::scratch`] points by default: 1 MiB, inside RAM for a
/// domain of at least `(SCRATCH_GPA >> 12) + scenarios::SCRATCH_PAGES`
/// pages (like the test kernel's `.bss`).
pub const SCRATCH_GPA: u64 = 0x10_0000;

/// The first of the unpopulated gfns where tests attach shared memory or
/// map grants: 8 GiB, the same gfn as the test kernel uses on real Xen,
/// far above any test domain's RAM and 1 GiB-aligned.
pub const FREE_GFN: Gfn = Gfn(8 << (30 - 12));

/// The argument layout the simulator's tests and the benchmarks use in
/// each domain's low pages (the scenarios use [`Guest::scratch`] instead).
/// A domain needs `PAYLOAD >> 12` pages of RAM and more for its payloads.
pub mod layout {
    /// Argument structs (`RegisterRing`, `SendAddr`, `Info`, ...).
    pub const ARG: u64 = 0x0;
    /// A second argument struct (`RingInfo` of `OP_INFO`).
    pub const ARG2: u64 = 0x80;
    /// The iov array of a send.
    pub const IOVS: u64 = 0x100;
    /// The gfn list of a ring registration.
    pub const GFNS: u64 = 0x200;
    /// The domctl argument of a control domain (page 1); in other domains
    /// the `RingData` of `OP_NOTIFY`.
    pub const DOMCTL: u64 = 0x1000;
    /// The `RingData` of `OP_NOTIFY` and its entries (page 1).
    pub const NOTIFY: u64 = 0x1000;
    /// A sender's payload (page 2 on).
    pub const PAYLOAD: u64 = 0x2000;
}

/// A new HVM guest domain with `ram_pages` of RAM, not privileged.
pub fn hvm_domain(sim: &Sim, ram_pages: u64) -> DomId {
    sim.create_domain(simulator::DomainKind::Hvm, ram_pages, false).expect("create domain")
}

/// Domain `dom` of `sim`, as a guest. Memory faults panic in the plain
/// accessors ([`Guest::read`], [`Guest::write`]) and are returned by the
/// `try_` ones; lines printed are echoed to stdout and kept in `lines`.
pub struct SimGuest<'a> {
    /// The simulator.
    pub sim: &'a Sim,
    /// The calling domain.
    pub dom: DomId,
    /// Every line printed, in order.
    pub lines: Vec<String>,
}

impl<'a> SimGuest<'a> {
    /// Domain `dom` of `sim`.
    pub fn new(sim: &'a Sim, dom: DomId) -> SimGuest<'a> {
        SimGuest { sim, dom, lines: Vec::new() }
    }
}

impl Guest for SimGuest<'_> {
    fn hypercall(&mut self, nr: u32, args: [u64; 5]) -> i64 {
        self.sim.hypercall(self.dom, nr, args)
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) {
        self.try_read(gpa, buf).unwrap_or_else(|e| panic!("guest read at {gpa:#x}: {e}"));
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) {
        self.try_write(gpa, buf).unwrap_or_else(|e| panic!("guest write at {gpa:#x}: {e}"));
    }

    fn try_read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.sim.guest_read(self.dom, gpa, buf)
    }

    fn try_write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        self.sim.guest_write(self.dom, gpa, buf)
    }

    fn probe_write(&mut self, gpa: u64, value: u64) -> WriteOutcome {
        match self.sim.guest_write(self.dom, gpa, &value.to_le_bytes()) {
            // Discarded through a read-only entry, as Xen emulates and drops
            // a translated guest's store there.
            Ok(()) => WriteOutcome::Completed,
            // A hole: a real guest would take a page fault.
            Err(_) => WriteOutcome::Faulted(14),
        }
    }

    fn domid(&self) -> DomId {
        self.dom
    }

    fn scratch(&self) -> u64 {
        SCRATCH_GPA
    }

    fn free_gfn(&self) -> Gfn {
        FREE_GFN
    }

    fn free_pages(&mut self) -> Result<u64, Errno> {
        Ok(self.sim.free_frames())
    }

    fn print(&mut self, args: fmt::Arguments<'_>) {
        let line = args.to_string();
        println!("{line}");
        self.lines.push(line);
    }
}

/// The ring whose header is at `gpa` of domain `dom`, for
/// `hypercall_abi::ring`'s guest-side code.
pub fn ring(sim: &Sim, dom: DomId, gpa: u64) -> GuestRing<SimGuest<'_>> {
    GuestRing::new(SimGuest::new(sim, dom), gpa)
}
