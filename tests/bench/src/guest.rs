//! The guest side of the benchmarks: a simulator with a fixed guest-memory
//! layout, V4V ops and the ring reader over guest memory, the sshm domctl
//! as libxenctrl issues it, and grant-table ops. The same patterns as the
//! simulator's test helpers (`simulator/tests/v4v_util`, `sshm_common`),
//! kept to what the benchmarks use.

use hypercall_abi::domctl::Domctl;
use hypercall_abi::ring::{RingError, RingMemory};
use hypercall_abi::sshm::{self, Name, StaticShm};
use hypercall_abi::v4v::{Addr, Iov, RegisterRing, SendAddr, Wire, OP_REGISTER_RING};
use hypercall_abi::{hypercall, DomId, Errno};
use simulator::grant::{MapGrantRef, GNTMAP_HOST_MAP, GNTTABOP_MAP_GRANT_REF};
use simulator::{Config, DomainKind, Preempt, Sim};

/// Guest-physical layout of every benchmark domain (as in the V4V tests).
pub const ARG: u64 = 0x0;
pub const IOVS: u64 = 0x100;
pub const GFNS: u64 = 0x200;
/// The domctl argument of the control domain.
pub const SCRATCH_GPA: u64 = 0x1000;
/// A sender's payload (up to 64 KiB).
pub const PAYLOAD: u64 = 0x2000;
/// Grant ops are staged here (one page: 128 map ops).
pub const GNT_OPS: u64 = 0x20000;
/// First gfn of rings (V4V ring, or the vchan ring the receiver grants).
pub const RING_GFN0: u64 = 64;
/// Where a vchan sender maps the granted ring.
pub const MAP_GFN0: u64 = 0x10_0000;

/// A deterministic simulator that never preempts on its own (continuations
/// forced by the logic's own bounds still happen), so runs are
/// reproducible and comparable.
pub fn sim(frames: u64, sshm_limits: rust_hv::sshm::Limits) -> Sim {
    let s = Sim::new(Config { frames, seed: 0xbe9c, sshm_limits });
    s.machine().set_preempt(Preempt::Never);
    s
}

/// An HVM guest with `pages` of RAM.
pub fn dom(s: &Sim, pages: u64) -> DomId {
    s.create_domain(DomainKind::Hvm, pages, false).expect("create domain")
}

/// Writes a V4V ABI struct into guest memory.
pub fn put<T: Wire>(s: &Sim, d: DomId, gpa: u64, v: &T) {
    let mut b = vec![0u8; T::SIZE];
    v.write(&mut b);
    s.guest_write(d, gpa, &b).expect("guest write");
}

/// `__HYPERVISOR_v4v_op`.
pub fn v4v_op(s: &Sim, d: DomId, cmd: u32, a: [u64; 4]) -> i64 {
    s.hypercall(d, hypercall::V4V_OP, [u64::from(cmd), a[0], a[1], a[2], a[3]])
}

/// Prepares and registers a V4V ring of `len` data bytes at `gfn` of `d`,
/// open to any partner.
pub fn v4v_register(s: &Sim, d: DomId, port: u32, len: u32, gfn: u64) {
    let mut m = GuestMem { s, d, gpa: gfn << 12 };
    hypercall_abi::ring::prepare(&mut m, len, 0).expect("prepare ring");
    let pages = (u64::from(len) + u64::from(hypercall_abi::v4v::RING_HEADER_BYTES)).div_ceil(4096);
    let gfns: Vec<u8> = (gfn..gfn + pages).flat_map(|g| g.to_ne_bytes()).collect();
    s.guest_write(d, GFNS, &gfns).expect("gfn list");
    let reg = RegisterRing { port, partner: hypercall_abi::v4v::DOMID_ANY, len, ..Default::default() };
    put(s, d, ARG, &reg);
    let r = v4v_op(s, d, OP_REGISTER_RING, [ARG, GFNS, pages, 0]);
    assert_eq!(r, 0, "register ring");
}

/// Writes a one-iov send of `len` bytes at [`PAYLOAD`] from `d` to
/// `(dst, port)` and returns the sendv arguments. The payload itself is
/// left to the caller (it stays in guest memory across sends).
pub fn v4v_send_args(s: &Sim, d: DomId, dst: DomId, port: u32, len: usize) -> [u64; 4] {
    let sa = SendAddr { src: Addr { port: 1, domain: d.0, pad: 0 }, dst: Addr { port, domain: dst.0, pad: 0 } };
    put(s, d, ARG, &sa);
    put(s, d, IOVS, &Iov { base: PAYLOAD, len: len as u32, pad: 0 });
    [ARG, IOVS, 1, 0]
}

/// Guest memory from `gpa` on, as the ring reader (or any guest code)
/// sees it.
pub struct GuestMem<'a> {
    pub s: &'a Sim,
    pub d: DomId,
    pub gpa: u64,
}

impl RingMemory for GuestMem<'_> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        self.s.guest_read(self.d, self.gpa + offset as u64, buf).map_err(|_| RingError::Fault)
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        self.s.guest_write(self.d, self.gpa + offset as u64, buf).map_err(|_| RingError::Fault)
    }
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
pub fn ret(r: i64) -> Result<i64, Errno> {
    match Errno::from_ret(r) {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

/// An sshm sub-op on `name`.
pub fn shm_op(op: u32, name: &str) -> StaticShm {
    let name = *Name::new(name).expect("region name").field();
    StaticShm { op, name, ..Default::default() }
}

/// `OP_CREATE` of a persistent read-write region.
pub fn shm_create(name: &str, nr_pages: u64) -> StaticShm {
    StaticShm { nr_pages, prot: sshm::PROT_RW, flags: sshm::F_PERSISTENT, ..shm_op(sshm::OP_CREATE, name) }
}

/// `OP_ATTACH` of all `nr_pages` of a region at `gfn`, read-write.
pub fn shm_attach(name: &str, nr_pages: u64, gfn: u64) -> StaticShm {
    StaticShm { nr_pages, gfn, prot: sshm::PROT_RW, ..shm_op(sshm::OP_ATTACH, name) }
}

/// `OP_DETACH` of the attachment at `gfn`.
pub fn shm_detach(name: &str, gfn: u64) -> StaticShm {
    StaticShm { gfn, ..shm_op(sshm::OP_DETACH, name) }
}

/// Issues `op` on `target` from the control domain `dom0`, continuations
/// included.
pub fn shm_call(s: &Sim, dom0: DomId, target: DomId, op: &StaticShm) -> Result<i64, Errno> {
    let mut d = Domctl::static_shm(target, op);
    ret(s.domctl(dom0, SCRATCH_GPA, &mut d))
}

/// Issues `op` one hypercall step at a time and returns how many steps it
/// took (each step is one hypercall; `-ERESTART` steps are
/// continuations), or its error.
pub fn shm_call_steps(s: &Sim, dom0: DomId, target: DomId, op: &StaticShm) -> Result<u64, Errno> {
    let d = Domctl::static_shm(target, op);
    s.guest_write(dom0, SCRATCH_GPA, &d.to_bytes())?;
    let mut steps = 0u64;
    loop {
        steps += 1;
        match s.hypercall_step(dom0, hypercall::DOMCTL, [SCRATCH_GPA, 0, 0, 0, 0]) {
            simulator::Step::Done(r) => return ret(r).map(|_| steps),
            simulator::Step::Continuation => {}
        }
    }
}
