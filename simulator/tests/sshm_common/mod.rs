//! Helpers shared by the sshm tests: a simulator with a PVH control domain
//! issuing `XEN_DOMCTL_static_shm` the way libxenctrl does (the argument in
//! the caller's memory, continuations re-issued by the hypercall entry).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use hypercall_abi::domctl::Domctl;
use hypercall_abi::sshm::{self, Entry, Name, StaticShm};
use hypercall_abi::{DomId, Errno};
use rust_hv::sshm::Limits;
use simulator::{Config, DomainKind, Sim};

/// Where the control domain keeps the domctl argument (page 1 of its RAM).
pub const SCRATCH_GPA: u64 = 0x1000;
/// Where it keeps `OP_INFO`/`OP_LIST` output (pages 4.., room for
/// `LIST_ENTRIES_MAX` entries).
pub const BUF_GPA: u64 = 0x4000;
/// RAM of the control domain in pages.
pub const DOM0_RAM_PAGES: u64 = 16;
/// The first gfn above guest RAM the tests attach at.
pub const SHM_GFN: u64 = 0x1000;

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

    /// Issues the sub-op `op` on `target` from `caller`, to completion.
    pub fn call_from(&self, caller: DomId, target: DomId, op: &StaticShm) -> (Result<i64, Errno>, StaticShm) {
        let mut d = Domctl::static_shm(target, op);
        let r = self.sim.domctl(caller, SCRATCH_GPA, &mut d);
        (ret(r), d.static_shm_payload())
    }

    /// Issues `op` on `target` from the control domain with the argument
    /// at `scratch` (one page per concurrent toolstack).
    pub fn call_from_at(&self, scratch: u64, target: DomId, op: &StaticShm) -> Result<i64, Errno> {
        let mut d = Domctl::static_shm(target, op);
        ret(self.sim.domctl(self.dom0, scratch, &mut d))
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
        let mut b = [0u8; Entry::SIZE];
        self.sim.guest_read(self.dom0, BUF_GPA + i * Entry::SIZE as u64, &mut b).expect("buffer");
        Entry::from_bytes(&b)
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
        let mut b = [0u8; 8];
        self.sim.guest_read(d, gfn * 4096 + at, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes the u64 at `gfn`'s page offset `at` through `d`'s physmap.
    pub fn poke(&self, d: DomId, gfn: u64, at: u64, v: u64) -> Result<(), Errno> {
        self.sim.guest_write(d, gfn * 4096 + at, &v.to_le_bytes())
    }

    /// Every checker ([`Sim::check`]).
    pub fn check(&self) -> Result<(), String> {
        self.sim.check()
    }
}

/// A hypercall return value as a `Result`.
pub fn ret(r: i64) -> Result<i64, Errno> {
    match Errno::from_ret(r) {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

pub fn name(s: &str) -> [u8; sshm::NAME_BYTES] {
    *Name::new(s).expect("test name").field()
}

pub fn op(o: u32, n: &str) -> StaticShm {
    StaticShm { op: o, name: name(n), ..Default::default() }
}

pub fn create(n: &str, nr_pages: u64, prot: u32, persistent: bool) -> StaticShm {
    let flags = if persistent { sshm::F_PERSISTENT } else { 0 };
    StaticShm { nr_pages, prot, flags, ..op(sshm::OP_CREATE, n) }
}

pub fn attach(n: &str, nr_pages: u64, offset: u64, gfn: u64, prot: u32) -> StaticShm {
    StaticShm { nr_pages, offset, gfn, prot, ..op(sshm::OP_ATTACH, n) }
}

/// Create-or-open of a region of `size_pages`, mapping all of it.
pub fn open(n: &str, size_pages: u64, gfn: u64, prot: u32, persistent: bool) -> StaticShm {
    let flags = sshm::F_CREATE | if persistent { sshm::F_PERSISTENT } else { 0 };
    StaticShm { flags, size_pages, ..attach(n, size_pages, 0, gfn, prot) }
}

pub fn detach(n: &str, gfn: u64) -> StaticShm {
    StaticShm { gfn, ..op(sshm::OP_DETACH, n) }
}

pub fn unlink(n: &str) -> StaticShm {
    op(sshm::OP_UNLINK, n)
}

/// Where a stepped (one continuation at a time) domctl lives.
pub const STEP_GPA: u64 = 0x3000;

impl Env {
    /// Writes the domctl for a stepped call of `op` on `target`.
    pub fn stepped(&self, target: DomId, op: &StaticShm) {
        let d = Domctl::static_shm(target, op);
        self.sim.guest_write(self.dom0, STEP_GPA, &d.to_bytes()).expect("scratch");
    }

    /// Runs one step of the stepped call.
    pub fn step(&self) -> simulator::Step {
        self.sim.hypercall_step(self.dom0, hypercall_abi::hypercall::DOMCTL, [STEP_GPA, 0, 0, 0, 0])
    }

    /// The stepped call's argument as it is now in guest memory.
    pub fn stepped_op(&self) -> StaticShm {
        let mut b = [0u8; hypercall_abi::domctl::SIZE];
        self.sim.guest_read(self.dom0, STEP_GPA, &mut b).expect("scratch");
        Domctl::from_bytes(&b).static_shm_payload()
    }

    /// Rewrites the stepped call's argument (a toolstack tampering with it).
    pub fn set_stepped_op(&self, target: DomId, op: &StaticShm) {
        self.stepped(target, op);
    }
}
