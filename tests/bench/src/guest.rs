//! The guest side of the benchmarks: a simulator with a fixed guest-memory
//! layout, and the guest library (`scenarios::ops`, `scenarios::ring` over
//! `sim_guest::SimGuest`, as the simulator's tests use it) in the
//! `(sim, domain, ..)` form the benchmarks call; grant-table ops, which only
//! the benchmarks issue, are here.

use hypercall_abi::sshm::{self, StaticShm};
use hypercall_abi::v4v::RegisterRing;
use hypercall_abi::{hypercall, DomId, Errno};
use scenarios::ops::{sshm as shm_ops, v4v as v4v_ops};
use scenarios::ring::GuestRing;
use sim_guest::SimGuest;
use simulator::grant::{MapGrantRef, GNTMAP_HOST_MAP, GNTTABOP_MAP_GRANT_REF};
use simulator::{Config, Preempt, Sim};

/// An HVM guest with `pages` of RAM: `dom(sim, pages)`.
pub use sim_guest::hvm_domain as dom;
/// Guest-physical layout of every benchmark domain (as in the V4V tests);
/// a sender's payload is up to 64 KiB.
pub use sim_guest::layout::{ARG, DOMCTL as SCRATCH_GPA, GFNS, IOVS, PAYLOAD};
/// Grant ops are staged here (one page: 128 map ops).
pub const GNT_OPS: u64 = 0x20000;
/// First gfn of rings (V4V ring, or the vchan ring the receiver grants).
pub const RING_GFN0: u64 = 64;
/// Where a vchan sender maps the granted ring: the library's free gfn.
pub const MAP_GFN0: u64 = sim_guest::FREE_GFN.0;

/// A deterministic simulator that never preempts on its own (continuations
/// forced by the logic's own bounds still happen), so runs are
/// reproducible and comparable.
pub fn sim(frames: u64, sshm_limits: rust_hv::sshm::Limits) -> Sim {
    let s = Sim::new(Config { frames, seed: 0xbe9c, sshm_limits });
    s.machine().set_preempt(Preempt::Never);
    s
}

/// `__HYPERVISOR_v4v_op`.
pub fn v4v_op(s: &Sim, d: DomId, cmd: u32, a: [u64; 4]) -> i64 {
    v4v_ops::op(&mut SimGuest::new(s, d), cmd, a)
}

/// Prepares and registers a V4V ring of `len` data bytes at `gfn` of `d`,
/// open to any partner.
pub fn v4v_register(s: &Sim, d: DomId, port: u32, len: u32, gfn: u64) {
    let g = &mut SimGuest::new(s, d);
    v4v_ops::prepare_ring(g, gfn << 12, len, 0).expect("prepare ring");
    let gfns: Vec<u64> = (gfn..gfn + v4v_ops::ring_pages(len)).collect();
    let reg = RegisterRing { port, partner: hypercall_abi::v4v::DOMID_ANY, len, ..Default::default() };
    let r = v4v_ops::register_ring(g, ARG, &reg, GFNS, &gfns, gfns.len() as u64, 0);
    assert_eq!(r, 0, "register ring");
}

/// Writes a one-iov send of `len` bytes at [`PAYLOAD`] from `d` to
/// `(dst, port)` and returns the sendv arguments. The payload itself is
/// left to the caller (it stays in guest memory across sends).
pub fn v4v_send_args(s: &Sim, d: DomId, dst: DomId, port: u32, len: usize) -> [u64; 4] {
    let sa = v4v_ops::send_addr(d, 1, dst, port);
    let at = v4v_ops::SendAt { addr: ARG, iovs: IOVS, payload: PAYLOAD };
    v4v_ops::sendv_args_in_place(&mut SimGuest::new(s, d), at, &sa, len as u32, 0)
}

/// Guest memory from `gpa` of `d` on, as the ring reader sees it.
pub type GuestMem<'a> = GuestRing<SimGuest<'a>>;

/// The ring at `gpa` of `d`.
pub fn guest_ring(s: &Sim, d: DomId, gpa: u64) -> GuestMem<'_> {
    sim_guest::ring(s, d, gpa)
}

/// Maps `grefs` granted by `granter` into `mapper`'s physmap from
/// `gfn0` on, with `GNTTABOP_map_grant_ref` batches as a guest issues them.
pub fn grant_map(s: &Sim, mapper: DomId, granter: DomId, grefs: &[u32], gfn0: u64) {
    const PER_CALL: usize = 4096 / MapGrantRef::SIZE;
    for (c, chunk) in grefs.chunks(PER_CALL).enumerate() {
        let mut b = Vec::with_capacity(chunk.len() * MapGrantRef::SIZE);
        for (i, &gref) in chunk.iter().enumerate() {
            let gfn = gfn0 + (c * PER_CALL + i) as u64;
            let op = MapGrantRef {
                host_addr: gfn << 12,
                flags: GNTMAP_HOST_MAP,
                gref,
                dom: granter.0,
                ..Default::default()
            };
            b.extend_from_slice(&op.to_bytes());
        }
        s.guest_write(mapper, GNT_OPS, &b).expect("stage grant ops");
        let r = s.hypercall(
            mapper,
            hypercall::GRANT_TABLE_OP,
            [u64::from(GNTTABOP_MAP_GRANT_REF), GNT_OPS, chunk.len() as u64, 0, 0],
        );
        assert_eq!(r, 0, "grant map");
        s.guest_read(mapper, GNT_OPS, &mut b).expect("read grant ops back");
        for op in b.chunks_exact(MapGrantRef::SIZE) {
            let mut a = [0u8; MapGrantRef::SIZE];
            a.copy_from_slice(op);
            assert_eq!(MapGrantRef::from_bytes(&a).status, 0, "grant map status");
        }
    }
}

/// A hypercall return value as a `Result`.
pub use scenarios::ops::ret;

/// The name field of a benchmark region.
fn name(name: &str) -> [u8; sshm::NAME_BYTES] {
    shm_ops::name(name).expect("region name")
}

/// An sshm sub-op on `name`.
pub fn shm_op(op: u32, name_: &str) -> StaticShm {
    shm_ops::op(op, name(name_))
}

/// `OP_CREATE` of a persistent read-write region.
pub fn shm_create(name_: &str, nr_pages: u64) -> StaticShm {
    shm_ops::create(name(name_), nr_pages, sshm::PROT_RW, true)
}

/// `OP_ATTACH` of all `nr_pages` of a region at `gfn`, read-write.
pub fn shm_attach(name_: &str, nr_pages: u64, gfn: u64) -> StaticShm {
    shm_ops::attach(name(name_), nr_pages, 0, gfn, sshm::PROT_RW)
}

/// `OP_DETACH` of the attachment at `gfn`.
pub fn shm_detach(name_: &str, gfn: u64) -> StaticShm {
    shm_ops::detach(name(name_), gfn)
}

/// Issues `op` on `target` from the control domain `dom0`, continuations
/// included.
pub fn shm_call(s: &Sim, dom0: DomId, target: DomId, op: &StaticShm) -> Result<i64, Errno> {
    ret(shm_ops::call(&mut SimGuest::new(s, dom0), SCRATCH_GPA, target, op).0)
}

/// Issues `op` one hypercall step at a time and returns how many steps it
/// took (each step is one hypercall; `-ERESTART` steps are
/// continuations), or its error.
pub fn shm_call_steps(s: &Sim, dom0: DomId, target: DomId, op: &StaticShm) -> Result<u64, Errno> {
    shm_ops::write_domctl(&mut SimGuest::new(s, dom0), SCRATCH_GPA, target, op)?;
    let mut steps = 0u64;
    loop {
        steps += 1;
        match s.hypercall_step(dom0, hypercall::DOMCTL, [SCRATCH_GPA, 0, 0, 0, 0]) {
            simulator::Step::Done(r) => return ret(r).map(|_| steps),
            simulator::Step::Continuation => {}
        }
    }
}
