//! Static shared memory: attach and detach against region size, with and
//! without 2 MiB p2m entries; the simulator's RAM populate (what
//! `XENMEM_populate_physmap` does: allocate and map) of the same size; and
//! attach against the number of regions in the registry.
//!
//! The sshm logic has no switch to turn 2 MiB entries off: it uses one
//! wherever the gfn is 2 MiB aligned and the region page starts a 2 MiB
//! backing chunk. "4K only" attaches at a gfn one page past a 2 MiB
//! boundary, so no entry can be a superpage.

use hypercall_abi::DomId;
use rust_hv::sshm::Limits;
use simulator::{DomainKind, Preempt, Sim};

use crate::guest::{self, shm_attach, shm_call, shm_call_steps, shm_create, shm_detach};

/// Region sizes in pages: 4 KiB, 32 KiB, ... 1 GiB (factors of 8).
pub const SIZES_PAGES: [u64; 7] = [1, 8, 64, 512, 4096, 32768, 262144];

/// Where regions are attached: 4 GiB, 2 MiB aligned.
pub const SHM_GFN: u64 = 0x10_0000;

/// How the gfn is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// 2 MiB aligned: superpages wherever the backing allows.
    Super,
    /// One page past the boundary: 4 KiB entries only.
    Small,
}

impl Mapping {
    pub fn gfn(self) -> u64 {
        match self {
            Mapping::Super => SHM_GFN,
            Mapping::Small => SHM_GFN + 1,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mapping::Super => "2M",
            Mapping::Small => "4K",
        }
    }
}

/// A simulator with a control domain and a guest, sized for a region of
/// `pages` (plus `extra_regions` one-page regions).
pub struct Env {
    pub sim: Sim,
    pub dom0: DomId,
    pub guest: DomId,
}

impl Env {
    pub fn new(pages: u64, extra_regions: u64) -> Env {
        let sshm_pages = pages + extra_regions + 1024;
        let limits = Limits {
            total_pages_max: sshm_pages,
            region_pages_max: pages.max(Limits::default().region_pages_max),
            regions_max: Limits::default().regions_max,
        };
        // Room for the region, a populated domain of the same size (not at
        // the same time) and slack for the 2 MiB alignment of chunks.
        let sim = guest::sim(sshm_pages + 4096, limits);
        let dom0 = sim.create_domain(DomainKind::Pvh, 64, true).expect("dom0");
        let guest = guest::dom(&sim, 16);
        Env { sim, dom0, guest }
    }

    pub fn create(&self, name: &str, pages: u64) {
        shm_call(&self.sim, self.dom0, self.dom0, &shm_create(name, pages)).expect("create region");
    }

    pub fn attach(&self, name: &str, pages: u64, gfn: u64) {
        shm_call(&self.sim, self.dom0, self.guest, &shm_attach(name, pages, gfn)).expect("attach");
    }

    pub fn detach(&self, name: &str, gfn: u64) {
        shm_call(&self.sim, self.dom0, self.guest, &shm_detach(name, gfn)).expect("detach");
    }

    /// p2m entries an attach of `pages` at `gfn` inserts: with the
    /// platform asking to preempt at every check, the attach maps exactly
    /// one entry per hypercall step, so its steps are its entries. Leaves
    /// the region detached.
    pub fn count_entries(&self, name: &str, pages: u64, gfn: u64) -> u64 {
        self.sim.machine().set_preempt(Preempt::Always);
        let steps = shm_call_steps(&self.sim, self.dom0, self.guest, &shm_attach(name, pages, gfn)).expect("attach");
        self.sim.machine().set_preempt(Preempt::Never);
        // Spot-check: the whole range is mapped.
        for g in [gfn, gfn + pages / 2, gfn + pages - 1] {
            assert!(self.sim.machine().p2m_lookup(self.guest, hypercall_abi::Gfn(g)).is_some(), "gfn {g:#x} mapped");
        }
        self.detach(name, gfn);
        steps
    }

    /// Hypercalls (steps) a plain attach takes with no preemption: one per
    /// `BATCH_ENTRIES_MAX` entries. Leaves the region detached.
    pub fn count_steps(&self, name: &str, pages: u64, gfn: u64) -> u64 {
        let steps = shm_call_steps(&self.sim, self.dom0, self.guest, &shm_attach(name, pages, gfn)).expect("attach");
        self.detach(name, gfn);
        steps
    }
}

/// Region name of the `i`th filler region; sorts after "bench" and
/// "probe", so fillers are appended to the name index.
pub fn filler(i: u64) -> String {
    format!("r{i:05}")
}
