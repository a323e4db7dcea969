//! `__HYPERVISOR_v4v_op`.

use hypercall_abi::ring::{prepare, RingError};
use hypercall_abi::v4v::{
    self, Addr, BatchEnt, Info, Iov, RegisterRing, RingData, RingDataEnt, RingId, RingInfo, SendAddr, UnregisterRing,
};
use hypercall_abi::{hypercall, DomId, Errno, PAGE_SIZE};

use crate::mem::{get, put, put_gfns, try_put};
use crate::ring::GuestRing;
use crate::Guest;

/// Issues sub-op `cmd` with its four arguments.
pub fn op<G: Guest + ?Sized>(g: &mut G, cmd: u32, a: [u64; 4]) -> i64 {
    g.hypercall(hypercall::V4V_OP, [u64::from(cmd), a[0], a[1], a[2], a[3]])
}

/// Pages of a ring of `len` data bytes (header included).
pub fn ring_pages(len: u32) -> u64 {
    (u64::from(len) + u64::from(v4v::RING_HEADER_BYTES)).div_ceil(PAGE_SIZE)
}

/// Writes the header of an empty ring of `len` data bytes at `gpa`
/// (`hypercall_abi::ring::prepare`, which refuses bad lengths).
pub fn prepare_ring<G: Guest + ?Sized>(g: &mut G, gpa: u64, len: u32, flags: u32) -> Result<(), RingError> {
    prepare(&mut GuestRing::new(g, gpa), len, flags)
}

/// `OP_REGISTER_RING`: `reg` at `reg_gpa`, the gfn list `gfns` at
/// `gfns_gpa`, `nr` as the list's length (tests pass lies) and `flags`.
pub fn register_ring<G: Guest + ?Sized>(
    g: &mut G,
    reg_gpa: u64,
    reg: &RegisterRing,
    gfns_gpa: u64,
    gfns: &[u64],
    nr: u64,
    flags: u64,
) -> i64 {
    put(g, reg_gpa, reg);
    put_gfns(g, gfns_gpa, gfns);
    op(g, v4v::OP_REGISTER_RING, [reg_gpa, gfns_gpa, nr, flags])
}

/// `OP_UNREGISTER_RING` of `(port, partner)`, the argument at `gpa`.
pub fn unregister_ring<G: Guest + ?Sized>(g: &mut G, gpa: u64, port: u32, partner: u16) -> i64 {
    put(g, gpa, &UnregisterRing { port, partner, pad: 0 });
    op(g, v4v::OP_UNREGISTER_RING, [gpa, 0, 0, 0])
}

/// The address pair of a send from `(me, src_port)` to `(dst, port)`.
pub fn send_addr(me: DomId, src_port: u32, dst: DomId, port: u32) -> SendAddr {
    SendAddr { src: Addr { port: src_port, domain: me.0, pad: 0 }, dst: Addr { port, domain: dst.0, pad: 0 } }
}

/// Where a send's arguments go.
#[derive(Clone, Copy, Debug)]
pub struct SendAt {
    /// The [`SendAddr`].
    pub addr: u64,
    /// The iov array.
    pub iovs: u64,
    /// The payload bytes, the parts one after the other.
    pub payload: u64,
}

/// Writes a send of `parts` (one iov each, the bytes copied to
/// `at.payload` on; empty parts are not written) with address pair `sa`,
/// and returns the `OP_SENDV` arguments, or the error of writing them.
pub fn sendv_args<G: Guest + ?Sized>(
    g: &mut G,
    at: SendAt,
    sa: &SendAddr,
    parts: &[&[u8]],
    msg_type: u32,
) -> Result<[u64; 4], Errno> {
    let mut off = 0u64;
    for part in parts {
        if !part.is_empty() {
            g.try_write(at.payload + off, part)?;
        }
        off += part.len() as u64;
    }
    try_put(g, at.addr, sa)?;
    let mut base = at.payload;
    for (i, part) in parts.iter().enumerate() {
        try_put(g, at.iovs + (i * Iov::SIZE) as u64, &Iov { base, len: part.len() as u32, pad: 0 })?;
        base += part.len() as u64;
    }
    Ok([at.addr, at.iovs, parts.len() as u64, u64::from(msg_type)])
}

/// Writes a one-iov send of `len` bytes already at `at.payload` (a
/// benchmark leaves the payload in place across sends) and returns the
/// `OP_SENDV` arguments.
pub fn sendv_args_in_place<G: Guest + ?Sized>(
    g: &mut G,
    at: SendAt,
    sa: &SendAddr,
    len: u32,
    msg_type: u32,
) -> [u64; 4] {
    put(g, at.addr, sa);
    put(g, at.iovs, &Iov { base: at.payload, len, pad: 0 });
    [at.addr, at.iovs, 1, u64::from(msg_type)]
}

/// `OP_SENDV` of `parts` (see [`sendv_args`]); a fault writing the
/// arguments is returned as the hypercall's error would be.
pub fn sendv<G: Guest + ?Sized>(g: &mut G, at: SendAt, sa: &SendAddr, parts: &[&[u8]], msg_type: u32) -> i64 {
    match sendv_args(g, at, sa, parts, msg_type) {
        Ok(a) => op(g, v4v::OP_SENDV, a),
        Err(e) => e.to_ret(),
    }
}

/// One message of a batch: its addresses, its parts (one iov each) and
/// its type.
#[derive(Clone, Copy, Debug)]
pub struct BatchMsg<'a> {
    /// Source and destination.
    pub addr: SendAddr,
    /// The payload, one iov per part.
    pub parts: &'a [&'a [u8]],
    /// The message type.
    pub msg_type: u32,
}

/// Where a batch's arguments go.
#[derive(Clone, Copy, Debug)]
pub struct BatchAt {
    /// The [`BatchEnt`] array.
    pub ents: u64,
    /// The iov array.
    pub iovs: u64,
    /// The payload bytes, every part of every message one after the other.
    pub payload: u64,
}

/// Writes a batch of `msgs` (each part copied to `at.payload` on, one iov
/// each, the iovs in message order) and returns the `OP_SENDV_BATCH`
/// arguments, or the error of writing them. Every `status` is written as
/// `i32::MIN`, which Xen never writes, so that an entry Xen did not touch
/// shows.
pub fn sendv_batch_args<G: Guest + ?Sized>(g: &mut G, at: BatchAt, msgs: &[BatchMsg<'_>]) -> Result<[u64; 4], Errno> {
    let (mut off, mut niov) = (0u64, 0u32);
    for (i, m) in msgs.iter().enumerate() {
        let ent = BatchEnt {
            addr: m.addr,
            iov_first: niov,
            niov: m.parts.len() as u32,
            msg_type: m.msg_type,
            status: i32::MIN,
        };
        try_put(g, at.ents + (i * BatchEnt::SIZE) as u64, &ent)?;
        for part in m.parts {
            if !part.is_empty() {
                g.try_write(at.payload + off, part)?;
            }
            let iov = Iov { base: at.payload + off, len: part.len() as u32, pad: 0 };
            try_put(g, at.iovs + u64::from(niov) * Iov::SIZE as u64, &iov)?;
            off += part.len() as u64;
            niov += 1;
        }
    }
    Ok([at.ents, at.iovs, msgs.len() as u64, u64::from(niov)])
}

/// `OP_SENDV_BATCH` of `msgs` (see [`sendv_batch_args`]): the number of
/// messages sent, or the error.
pub fn sendv_batch<G: Guest + ?Sized>(g: &mut G, at: BatchAt, msgs: &[BatchMsg<'_>]) -> i64 {
    match sendv_batch_args(g, at, msgs) {
        Ok(a) => op(g, v4v::OP_SENDV_BATCH, a),
        Err(e) => e.to_ret(),
    }
}

/// The `status` Xen wrote back into entry `i` of the batch at `at`
/// (`i32::MIN`: not touched).
pub fn batch_status<G: Guest + ?Sized>(g: &mut G, at: BatchAt, i: usize) -> i32 {
    get::<G, BatchEnt>(g, at.ents + (i * BatchEnt::SIZE) as u64).status
}

/// A notify entry asking about `(dst, port)` with `space` bytes required,
/// waking the caller when they are free if `wake`.
pub fn notify_query(dst: DomId, port: u32, space: u32, wake: bool) -> RingDataEnt {
    RingDataEnt {
        ring: Addr { port, domain: dst.0, pad: 0 },
        flags: if wake { v4v::RD_F_WAKE } else { 0 },
        space_required: space,
        ..Default::default()
    }
}

/// `OP_NOTIFY` with `ents` (a [`RingData`] at `gpa`, the entries after
/// it); the entries are read back into `ents` as Xen left them.
pub fn notify<G: Guest + ?Sized>(g: &mut G, gpa: u64, ents: &mut [RingDataEnt]) -> i64 {
    let ent_gpa = |i: usize| gpa + (RingData::SIZE + i * RingDataEnt::SIZE) as u64;
    put(g, gpa, &RingData { nent: ents.len() as u32, pad: 0, reserved: 0 });
    for (i, e) in ents.iter().enumerate() {
        put(g, ent_gpa(i), e);
    }
    let r = op(g, v4v::OP_NOTIFY, [gpa, 0, 0, 0]);
    for (i, e) in ents.iter_mut().enumerate() {
        *e = get(g, ent_gpa(i));
    }
    r
}

/// `OP_INFO` into `info_gpa`, with one ring's info at `ring_gpa` if
/// `ring` (its port and partner) is given. Returns the result, the
/// [`Info`] and the [`RingInfo`] (default without `ring`) as Xen left them.
pub fn info<G: Guest + ?Sized>(
    g: &mut G,
    info_gpa: u64,
    ring_gpa: u64,
    ring: Option<(u32, u16)>,
) -> (i64, Info, RingInfo) {
    let ri_arg = match ring {
        Some((port, partner)) => {
            let domain = g.domid().0;
            put(g, ring_gpa, &RingInfo { id: RingId { port, domain, partner }, ..Default::default() });
            ring_gpa
        }
        None => 0,
    };
    let r = op(g, v4v::OP_INFO, [info_gpa, ri_arg, 0, 0]);
    let ri = if ring.is_some() { get(g, ring_gpa) } else { RingInfo::default() };
    (r, get(g, info_gpa), ri)
}
