//! The scenario list in the simulator world: the same `run_all` the test
//! kernel runs on real Xen, over `simulator::Sim` (through `sim-guest`'s
//! `SimGuest`). `make smoke` compares the result lines of both worlds; the
//! lines are written to `SMOKE_SIM_RESULTS` when it is set.

use hypercall_abi::PAGE_SIZE;
use scenarios::SCRATCH_PAGES;
use sim_guest::{SimGuest, SCRATCH_GPA};
use simulator::{Config, DomainKind, Sim};

/// Dom0's RAM in the simulator: gfns `0..RAM_PAGES`.
const RAM_PAGES: u64 = 1024;

#[test]
fn every_scenario_passes_in_the_simulator() {
    const { assert!(SCRATCH_GPA + SCRATCH_PAGES * PAGE_SIZE <= RAM_PAGES * PAGE_SIZE) };
    let sim = Sim::new(Config::default());
    let dom = sim.create_domain(DomainKind::Pvh, RAM_PAGES, true).expect("dom0");
    let mut g = SimGuest::new(&sim, dom);
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
    sim.check().expect("simulator invariants after the scenarios");
    assert_eq!(summary.failed, 0, "seed {}", sim.seed());
}
