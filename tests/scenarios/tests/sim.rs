//! The scenario list in the simulator world: the same `run_all` the test
//! kernel runs on real Xen, over `simulator::Sim`. `make smoke` compares the
//! result lines of both worlds; the lines are written to `SMOKE_SIM_RESULTS`
//! when it is set.

use std::fmt;

use hypercall_abi::{DomId, Errno, Gfn, PAGE_SIZE};
use scenarios::{Guest, WriteOutcome, SCRATCH_PAGES};
use simulator::{Config, DomainKind, Sim};

/// Dom0's RAM in the simulator: gfns `0..RAM_PAGES`.
const RAM_PAGES: u64 = 1024;
/// Where the scratch pages are (inside RAM, like the kernel's .bss).
const SCRATCH_GPA: u64 = 0x10_0000;
/// The same free gfn as the test kernel uses (8 GiB).
const FREE_GFN: Gfn = Gfn(8 << (30 - 12));

struct SimGuest {
    sim: Sim,
    dom: DomId,
    lines: Vec<String>,
}

impl Guest for SimGuest {
    fn hypercall(&mut self, nr: u32, args: [u64; 5]) -> i64 {
        self.sim.hypercall(self.dom, nr, args)
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) {
        self.sim.guest_read(self.dom, gpa, buf).unwrap_or_else(|e| panic!("guest read at {gpa:#x}: {e}"));
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) {
        self.sim.guest_write(self.dom, gpa, buf).unwrap_or_else(|e| panic!("guest write at {gpa:#x}: {e}"));
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

#[test]
fn every_scenario_passes_in_the_simulator() {
    const { assert!(SCRATCH_GPA + SCRATCH_PAGES * PAGE_SIZE <= RAM_PAGES * PAGE_SIZE) };
    let sim = Sim::new(Config::default());
    let dom = sim.create_domain(DomainKind::Pvh, RAM_PAGES, true).expect("dom0");
    let mut g = SimGuest { sim, dom, lines: Vec::new() };
    let summary = scenarios::run_all(&mut g);
    if let Ok(path) = std::env::var("SMOKE_SIM_RESULTS") {
        let results: Vec<&str> = g
            .lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL ") || l.contains(" passed, "))
            .collect();
        std::fs::write(&path, results.join("\n") + "\n").expect("write results");
    }
    g.sim.check().expect("simulator invariants after the scenarios");
    assert_eq!(summary.failed, 0, "seed {}", g.sim.seed());
}
