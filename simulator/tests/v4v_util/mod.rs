//! The V4V tests' view of the guest library (`scenarios::ops::v4v`,
//! `scenarios::ring` over `sim_guest::SimGuest`): a fixed guest-memory
//! layout for hypercall arguments, and the ops in the `(sim, domain, ..)`
//! form the tests call.

#![allow(dead_code)]

use hypercall_abi::ring::RingReader;
use hypercall_abi::v4v::*;
use hypercall_abi::{DomId, Errno, Gfn};
use scenarios::mem;
pub use scenarios::ops::v4v::BatchMsg;
use scenarios::ops::v4v::{self as ops, BatchAt, SendAt};
use scenarios::ring::GuestRing;
use sim_guest::SimGuest;
use simulator::{Config, Sim};

/// A new HVM test domain: `dom(sim, ram_pages)`.
pub use sim_guest::hvm_domain as dom;
/// Guest-physical layout of every test domain.
pub use sim_guest::layout::{ARG, ARG2, GFNS, IOVS, NOTIFY, PAYLOAD};
/// First gfn used for rings.
pub const RING_GFN0: u64 = 16;

/// A simulator with `frames` frames and `seed` (property and stress tests
/// pass the one from `simulator::rng::PropRun`).
pub fn sim(frames: u64, seed: u64) -> Sim {
    Sim::new(Config { frames, seed, sshm_limits: Default::default() })
}

pub fn op(s: &Sim, d: DomId, cmd: u32, a: [u64; 4]) -> i64 {
    ops::op(&mut SimGuest::new(s, d), cmd, a)
}

pub fn err(e: Errno) -> i64 {
    e.to_ret()
}

pub fn put<T: Wire>(s: &Sim, d: DomId, gpa: u64, v: &T) {
    mem::put(&mut SimGuest::new(s, d), gpa, v);
}

pub fn get<T: Wire>(s: &Sim, d: DomId, gpa: u64) -> T {
    mem::get(&mut SimGuest::new(s, d), gpa)
}

/// Ring pages of a ring at `gfn` of `len` data bytes.
pub fn pages(len: u32) -> u64 {
    ops::ring_pages(len)
}

/// Writes the ring header (magic, len, empty) at `gfn`.
pub fn prepare_ring(s: &Sim, d: DomId, gfn: u64, len: u32, flags: u32) {
    ops::prepare_ring(&mut SimGuest::new(s, d), gfn << 12, len, flags).expect("prepare");
}

/// Registers with an explicit gfn list, argument struct and flags.
pub fn register_raw(s: &Sim, d: DomId, reg: RegisterRing, gfns: &[u64], nr: u64, flags: u64) -> i64 {
    ops::register_ring(&mut SimGuest::new(s, d), ARG, &reg, GFNS, gfns, nr, flags)
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
    ops::unregister_ring(&mut SimGuest::new(s, d), ARG, port, partner)
}

/// Where the tests' sends put their arguments.
const SEND_AT: SendAt = SendAt { addr: ARG, iovs: IOVS, payload: PAYLOAD };

/// Sends `payload` (as one iov at `PAYLOAD`) from `src_port` to `(dst, port)`.
pub fn send(s: &Sim, d: DomId, src_port: u32, dst: DomId, port: u32, payload: &[u8], ty: u32) -> i64 {
    ops::sendv(&mut SimGuest::new(s, d), SEND_AT, &ops::send_addr(d, src_port, dst, port), &[payload], ty)
}

/// Where the tests' batches put their arguments: gfns 48..64, above the
/// rings the tests register (from [`RING_GFN0`]) in a 64-page domain.
pub const BATCH_AT: BatchAt = BatchAt { ents: 0x30000, iovs: 0x31000, payload: 0x32000 };

/// A batch message from `(d, src_port)` to `(dst, port)`.
pub fn bmsg<'a>(d: DomId, src_port: u32, dst: DomId, port: u32, parts: &'a [&'a [u8]], ty: u32) -> BatchMsg<'a> {
    BatchMsg { addr: ops::send_addr(d, src_port, dst, port), parts, msg_type: ty }
}

/// `OP_SENDV_BATCH` of `msgs` at [`BATCH_AT`].
pub fn send_batch(s: &Sim, d: DomId, msgs: &[BatchMsg<'_>]) -> i64 {
    ops::sendv_batch(&mut SimGuest::new(s, d), BATCH_AT, msgs)
}

/// Writes a batch's arguments at [`BATCH_AT`] and returns them.
pub fn batch_args(s: &Sim, d: DomId, msgs: &[BatchMsg<'_>]) -> [u64; 4] {
    ops::sendv_batch_args(&mut SimGuest::new(s, d), BATCH_AT, msgs).expect("batch arguments")
}

/// The `status` of entry `i` of the batch at [`BATCH_AT`] (`i32::MIN`:
/// not written by Xen).
pub fn batch_status(s: &Sim, d: DomId, i: usize) -> i32 {
    ops::batch_status(&mut SimGuest::new(s, d), BATCH_AT, i)
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
    let sa = ops::send_addr(d, src_port, dst, port);
    ops::sendv_args(&mut SimGuest::new(s, d), SEND_AT, &sa, &[payload], ty).map_err(Errno::to_ret)
}

/// Notify with the given entries; returns the result and the entries as
/// written back.
pub fn notify(s: &Sim, d: DomId, ents: &[RingDataEnt]) -> (i64, Vec<RingDataEnt>) {
    let mut out = ents.to_vec();
    let r = ops::notify(&mut SimGuest::new(s, d), NOTIFY, &mut out);
    (r, out)
}

pub fn query(dst: DomId, port: u32, space: u32, wake: bool) -> RingDataEnt {
    ops::notify_query(dst, port, space, wake)
}

/// `OP_INFO`, with one ring's info if `ring` is given.
pub fn info(s: &Sim, d: DomId, ring: Option<(u32, u16)>) -> (i64, Info, RingInfo) {
    ops::info(&mut SimGuest::new(s, d), ARG, ARG2, ring)
}

/// The ring at `gpa` of `d`, for the guest-side reader.
pub fn guest_ring(s: &Sim, d: DomId, gpa: u64) -> GuestRing<SimGuest<'_>> {
    sim_guest::ring(s, d, gpa)
}

/// Reads every message waiting in the ring at `gfn`.
pub fn drain(s: &Sim, d: DomId, gfn: u64, len: u32) -> Vec<(MsgHeader, Vec<u8>)> {
    let mut r = RingReader::new(guest_ring(s, d, gfn << 12), len).expect("reader");
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
