//! The sshm tests' view of the guest library (`scenarios::ops::sshm`
//! over `sim_guest::SimGuest`): a simulator with a PVH control domain
//! issuing `XEN_DOMCTL_static_shm` the way libxenctrl does (the argument in
//! the caller's memory, continuations re-issued by the hypercall entry),
//! and the op builders in the `&str`-name form the tests call.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use hypercall_abi::sshm::{self, Entry, StaticShm};
use hypercall_abi::{DomId, Errno};
use rust_hv::sshm::Limits;
use scenarios::mem;
use scenarios::ops::sshm as ops;
use sim_guest::SimGuest;
use simulator::{Config, DomainKind, Sim};

/// Where the control domain keeps the domctl argument (page 1 of its RAM).
pub const SCRATCH_GPA: u64 = sim_guest::layout::DOMCTL;
/// Where it keeps `OP_INFO`/`OP_LIST` output (pages 4.., room for
/// `LIST_ENTRIES_MAX` entries).
pub const BUF_GPA: u64 = 0x4000;
/// RAM of the control domain in pages.
pub const DOM0_RAM_PAGES: u64 = 16;
/// The first gfn above guest RAM the tests attach at: the library's free
/// gfn.
pub const SHM_GFN: u64 = sim_guest::FREE_GFN.0;

/// A simulator and its control domain.
pub struct Env {
    pub sim: Sim,
    pub dom0: DomId,
}

/// Limits small enough that tests can reach every one.
pub fn small_limits() -> Limits {
    Limits { total_pages_max: 4096, region_pages_max: 2048, regions_max: 8 }
}

impl Env {
    pub fn new(seed: u64, frames: u64, limits: Limits) -> Env {
        let sim = Sim::new(Config { frames, seed, sshm_limits: limits });
        let dom0 = sim.create_domain(DomainKind::Pvh, DOM0_RAM_PAGES, true).expect("dom0");
        Env { sim, dom0 }
    }

    /// The default test machine: 64 MiB, small limits.
    pub fn small(seed: u64) -> Env {
        Env::new(seed, 16384, small_limits())
    }

    /// A guest domain with `ram_pages` of RAM.
    pub fn guest(&self, kind: DomainKind, ram_pages: u64) -> DomId {
        self.sim.create_domain(kind, ram_pages, false).expect("guest")
    }

    /// Domain `d` as a guest.
    pub fn guest_of(&self, d: DomId) -> SimGuest<'_> {
        SimGuest::new(&self.sim, d)
    }

    /// Issues the sub-op `op` on `target` from `caller`, to completion.
    pub fn call_from(&self, caller: DomId, target: DomId, op: &StaticShm) -> (Result<i64, Errno>, StaticShm) {
        let (r, back) = ops::call(&mut self.guest_of(caller), SCRATCH_GPA, target, op);
        (ret(r), back)
    }

    /// Issues `op` on `target` from the control domain with the argument
    /// at `scratch` (one page per concurrent toolstack).
    pub fn call_from_at(&self, scratch: u64, target: DomId, op: &StaticShm) -> Result<i64, Errno> {
        ret(ops::call(&mut self.guest_of(self.dom0), scratch, target, op).0)
    }

    /// Issues `op` on `target` from the control domain.
    pub fn call(&self, target: DomId, op: &StaticShm) -> Result<i64, Errno> {
        self.call_from(self.dom0, target, op).0
    }

    pub fn create(&self, name: &str, nr_pages: u64, prot: u32, persistent: bool) -> Result<i64, Errno> {
        self.call(self.dom0, &create(name, nr_pages, prot, persistent))
    }

    pub fn info(&self, name: &str) -> Result<Entry, Errno> {
        let op = StaticShm { buffer: BUF_GPA, ..op(sshm::OP_INFO, name) };
        self.call(self.dom0, &op)?;
        Ok(self.read_entry(0))
    }

    fn read_entry(&self, i: u64) -> Entry {
        ops::entry(&mut self.guest_of(self.dom0), BUF_GPA, i)
    }

    /// Every linked region, by repeated `OP_LIST` calls of `cap` entries.
    pub fn list_all(&self, cap: u32) -> Result<Vec<Entry>, Errno> {
        let mut out = Vec::new();
        let mut cursor = [0u8; sshm::NAME_BYTES];
        for _ in 0..=sshm::REGIONS_MAX {
            let op =
                StaticShm { op: sshm::OP_LIST, name: cursor, buffer: BUF_GPA, nr_entries: cap, ..Default::default() };
            let (r, back) = self.call_from(self.dom0, self.dom0, &op);
            let rest = r?;
            for i in 0..back.nr_entries {
                out.push(self.read_entry(u64::from(i)));
            }
            cursor = back.name;
            if rest == 0 {
                return Ok(out);
            }
            assert!(back.nr_entries > 0, "list made no progress but says {rest} remain");
        }
        panic!("list did not terminate");
    }

    /// Reads the u64 at `gfn`'s page offset `at` through `d`'s physmap.
    pub fn peek(&self, d: DomId, gfn: u64, at: u64) -> Result<u64, Errno> {
        mem::try_read_u64(&mut self.guest_of(d), gfn * 4096 + at)
    }

    /// Writes the u64 at `gfn`'s page offset `at` through `d`'s physmap.
    pub fn poke(&self, d: DomId, gfn: u64, at: u64, v: u64) -> Result<(), Errno> {
        mem::try_write_u64(&mut self.guest_of(d), gfn * 4096 + at, v)
    }

    /// Every checker ([`Sim::check`]).
    pub fn check(&self) -> Result<(), String> {
        self.sim.check()
    }
}

/// A hypercall return value as a `Result`.
pub use scenarios::ops::ret;

pub fn name(s: &str) -> [u8; sshm::NAME_BYTES] {
    ops::name(s).expect("test name")
}

pub fn op(o: u32, n: &str) -> StaticShm {
    ops::op(o, name(n))
}

pub fn create(n: &str, nr_pages: u64, prot: u32, persistent: bool) -> StaticShm {
    ops::create(name(n), nr_pages, prot, persistent)
}

pub fn attach(n: &str, nr_pages: u64, offset: u64, gfn: u64, prot: u32) -> StaticShm {
    ops::attach(name(n), nr_pages, offset, gfn, prot)
}

/// Create-or-open of a region of `size_pages`, mapping all of it.
pub fn open(n: &str, size_pages: u64, gfn: u64, prot: u32, persistent: bool) -> StaticShm {
    ops::open(name(n), size_pages, gfn, prot, persistent)
}

pub fn detach(n: &str, gfn: u64) -> StaticShm {
    ops::detach(name(n), gfn)
}

pub fn unlink(n: &str) -> StaticShm {
    ops::unlink(name(n))
}

/// Where a stepped (one continuation at a time) domctl lives.
pub const STEP_GPA: u64 = 0x3000;

impl Env {
    /// Writes the domctl for a stepped call of `op` on `target`.
    pub fn stepped(&self, target: DomId, op: &StaticShm) {
        ops::write_domctl(&mut self.guest_of(self.dom0), STEP_GPA, target, op).expect("scratch");
    }

    /// Runs one step of the stepped call.
    pub fn step(&self) -> simulator::Step {
        self.sim.hypercall_step(self.dom0, hypercall_abi::hypercall::DOMCTL, [STEP_GPA, 0, 0, 0, 0])
    }

    /// The stepped call's argument as it is now in guest memory.
    pub fn stepped_op(&self) -> StaticShm {
        ops::read_domctl(&mut self.guest_of(self.dom0), STEP_GPA).expect("scratch").static_shm_payload()
    }

    /// Rewrites the stepped call's argument (a toolstack tampering with it).
    pub fn set_stepped_op(&self, target: DomId, op: &StaticShm) {
        self.stepped(target, op);
    }
}
