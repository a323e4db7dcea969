//! Guest-side helpers shared by the V4V tests: a fixed guest-memory layout
//! for hypercall arguments, the ops as a guest issues them, and the ring
//! reader over simulator guest memory.

#![allow(dead_code)]

use hypercall_abi::ring::{prepare, RingError, RingMemory, RingReader};
use hypercall_abi::v4v::*;
use hypercall_abi::{hypercall::V4V_OP, DomId, Errno, Gfn};
use simulator::{Config, DomainKind, Sim};

/// Guest-physical layout of every test domain.
pub const ARG: u64 = 0x0;
pub const ARG2: u64 = 0x80;
pub const IOVS: u64 = 0x100;
pub const GFNS: u64 = 0x200;
pub const NOTIFY: u64 = 0x1000;
pub const PAYLOAD: u64 = 0x2000;
/// First gfn used for rings.
pub const RING_GFN0: u64 = 16;

/// A simulator with `frames` frames and `seed` (property and stress tests
/// pass the one from `simulator::rng::PropRun`).
pub fn sim(frames: u64, seed: u64) -> Sim {
    Sim::new(Config { frames, seed, sshm_limits: Default::default() })
}

pub fn dom(s: &Sim, pages: u64) -> DomId {
    s.create_domain(DomainKind::Hvm, pages, false).expect("create domain")
}

pub fn op(s: &Sim, d: DomId, cmd: u32, a: [u64; 4]) -> i64 {
    s.hypercall(d, V4V_OP, [cmd as u64, a[0], a[1], a[2], a[3]])
}

pub fn err(e: Errno) -> i64 {
    e.to_ret()
}

pub fn put<T: Wire>(s: &Sim, d: DomId, gpa: u64, v: &T) {
    let mut b = vec![0u8; T::SIZE];
    v.write(&mut b);
    s.guest_write(d, gpa, &b).expect("guest write");
}

pub fn get<T: Wire>(s: &Sim, d: DomId, gpa: u64) -> T {
    let mut b = vec![0u8; T::SIZE];
    s.guest_read(d, gpa, &mut b).expect("guest read");
    T::read(&b)
}

/// Ring pages of a ring at `gfn` of `len` data bytes.
pub fn pages(len: u32) -> u64 {
    (len as u64 + RING_HEADER_BYTES as u64).div_ceil(4096)
}

/// Writes the ring header (magic, len, empty) at `gfn`.
pub fn prepare_ring(s: &Sim, d: DomId, gfn: u64, len: u32, flags: u32) {
    let mut m = GuestRing { s, d, gpa: gfn << 12 };
    prepare(&mut m, len, flags).expect("prepare");
}

/// Registers with an explicit gfn list, argument struct and flags.
pub fn register_raw(s: &Sim, d: DomId, reg: RegisterRing, gfns: &[u64], nr: u64, flags: u64) -> i64 {
    put(s, d, ARG, &reg);
    let b: Vec<u8> = gfns.iter().flat_map(|g| g.to_ne_bytes()).collect();
    s.guest_write(d, GFNS, &b).expect("gfn list");
    op(s, d, OP_REGISTER_RING, [ARG, GFNS, nr, flags])
}

/// Prepares and registers a ring of `len` bytes on contiguous gfns from
/// `gfn`.
pub fn register(s: &Sim, d: DomId, port: u32, partner: u16, len: u32, gfn: u64) -> i64 {
    prepare_ring(s, d, gfn, len, 0);
    reregister(s, d, port, partner, len, gfn)
}

/// Registers without touching the ring memory.
pub fn reregister(s: &Sim, d: DomId, port: u32, partner: u16, len: u32, gfn: u64) -> i64 {
    let gfns: Vec<u64> = (gfn..gfn + pages(len)).collect();
    let reg = RegisterRing { port, partner, len, ..Default::default() };
    register_raw(s, d, reg, &gfns, gfns.len() as u64, 0)
}

pub fn unregister(s: &Sim, d: DomId, port: u32, partner: u16) -> i64 {
    put(s, d, ARG, &UnregisterRing { port, partner, pad: 0 });
    op(s, d, OP_UNREGISTER_RING, [ARG, 0, 0, 0])
}

/// Sends `payload` (as one iov at `PAYLOAD`) from `src_port` to `(dst, port)`.
pub fn send(s: &Sim, d: DomId, src_port: u32, dst: DomId, port: u32, payload: &[u8], ty: u32) -> i64 {
    send_args(s, d, src_port, dst, port, payload, ty).map_or_else(|e| e, |a| op(s, d, OP_SENDV, a))
}

/// Writes a send's arguments and returns them (or the error of writing
/// them).
pub fn send_args(
    s: &Sim,
    d: DomId,
    src_port: u32,
    dst: DomId,
    port: u32,
    payload: &[u8],
    ty: u32,
) -> Result<[u64; 4], i64> {
    if !payload.is_empty() {
        s.guest_write(d, PAYLOAD, payload).map_err(|e| e.to_ret())?;
    }
    let sa = SendAddr { src: Addr { port: src_port, domain: d.0, pad: 0 }, dst: Addr { port, domain: dst.0, pad: 0 } };
    let mut b = [0u8; 16];
    sa.write(&mut b);
    s.guest_write(d, ARG, &b).map_err(|e| e.to_ret())?;
    let iov = Iov { base: PAYLOAD, len: payload.len() as u32, pad: 0 };
    iov.write(&mut b);
    s.guest_write(d, IOVS, &b).map_err(|e| e.to_ret())?;
    Ok([ARG, IOVS, 1, ty as u64])
}

/// Notify with the given entries; returns the result and the entries as
/// written back.
pub fn notify(s: &Sim, d: DomId, ents: &[RingDataEnt]) -> (i64, Vec<RingDataEnt>) {
    put(s, d, NOTIFY, &RingData { nent: ents.len() as u32, pad: 0, reserved: 0 });
    for (i, e) in ents.iter().enumerate() {
        put(s, d, NOTIFY + 16 + 24 * i as u64, e);
    }
    let r = op(s, d, OP_NOTIFY, [NOTIFY, 0, 0, 0]);
    let out = (0..ents.len()).map(|i| get(s, d, NOTIFY + 16 + 24 * i as u64)).collect();
    (r, out)
}

pub fn query(dst: DomId, port: u32, space: u32, wake: bool) -> RingDataEnt {
    RingDataEnt {
        ring: Addr { port, domain: dst.0, pad: 0 },
        flags: if wake { RD_F_WAKE } else { 0 },
        space_required: space,
        ..Default::default()
    }
}

/// `OP_INFO`, with one ring's info if `ring` is given.
pub fn info(s: &Sim, d: DomId, ring: Option<(u32, u16)>) -> (i64, Info, RingInfo) {
    let ri_arg = match ring {
        Some((port, partner)) => {
            put(s, d, ARG2, &RingInfo { id: RingId { port, domain: d.0, partner }, ..Default::default() });
            ARG2
        }
        None => 0,
    };
    let r = op(s, d, OP_INFO, [ARG, ri_arg, 0, 0]);
    let ri = if ring.is_some() { get(s, d, ARG2) } else { RingInfo::default() };
    (r, get(s, d, ARG), ri)
}

/// A ring in simulator guest memory, for the guest-side reader.
pub struct GuestRing<'a> {
    pub s: &'a Sim,
    pub d: DomId,
    pub gpa: u64,
}

impl RingMemory for GuestRing<'_> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        self.s.guest_read(self.d, self.gpa + offset as u64, buf).map_err(|_| RingError::Fault)
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        self.s.guest_write(self.d, self.gpa + offset as u64, buf).map_err(|_| RingError::Fault)
    }
}

/// Reads every message waiting in the ring at `gfn`.
pub fn drain(s: &Sim, d: DomId, gfn: u64, len: u32) -> Vec<(MsgHeader, Vec<u8>)> {
    let mut r = RingReader::new(GuestRing { s, d, gpa: gfn << 12 }, len).expect("reader");
    let mut out = Vec::new();
    let mut buf = vec![0u8; len as usize];
    while let Some(m) = r.recv(&mut buf).expect("ring readable") {
        out.push((m.header, buf[..m.header.len as usize].to_vec()));
    }
    out
}

/// Xen-written header fields of the ring at `gfn`.
pub fn header(s: &Sim, d: DomId, gfn: u64) -> RingHeader {
    get(s, d, gfn << 12)
}

pub fn gfn(g: u64) -> Gfn {
    Gfn(g)
}

/// A deterministic payload: sender, sequence number, then a pattern.
pub fn payload(from: DomId, seq: u32, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq).wrapping_add(from.0 as u32 * 7) as u8;
    }
    if len >= 6 {
        v[..2].copy_from_slice(&from.0.to_ne_bytes());
        v[2..6].copy_from_slice(&seq.to_ne_bytes());
    }
    v
}

/// Every checker ([`Sim::check`]).
pub fn check(s: &Sim) {
    s.check().unwrap_or_else(|e| panic!("{e}"));
}
