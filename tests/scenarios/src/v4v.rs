//! V4V rings through `__HYPERVISOR_v4v_op`: the guest registers a ring in
//! its own scratch page and sends to itself.

use core::cell::RefCell;

use hypercall_abi::ring::{prepare, RingError, RingMemory, RingReader};
use hypercall_abi::v4v::{
    self, Addr, Info, Iov, RegisterRing, RingData, RingDataEnt, RingHeader, RingId, RingInfo, SendAddr, UnregisterRing,
    Wire,
};
use hypercall_abi::{hypercall, Errno, PAGE_SIZE};

use crate::util::{check, errno, page, ret, scratch, Fail};
use crate::Guest;

/// The port of the scenarios' ring.
const PORT: u32 = 0x5000;
/// The port the scenarios send from.
const SRC_PORT: u32 = 0x7001;
/// Ring data bytes: small, so that a few messages wrap it.
const RING_LEN: u32 = 512;
/// The message type the scenarios send.
const MSG_TYPE: u32 = 0x4d53;
/// Payload of the wrapping scenario's messages: 224 ring bytes each, not a
/// divisor of the ring, so headers and payloads both land across the end.
const WRAP_PAYLOAD: usize = 200;

fn op<G: Guest + ?Sized>(g: &mut G, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    g.hypercall(hypercall::V4V_OP, [u64::from(cmd), a1, a2, a3, a4])
}

fn put<G: Guest + ?Sized, T: Wire>(g: &mut G, gpa: u64, v: &T) {
    let mut b = [0u8; 128];
    v.write(&mut b[..T::SIZE]);
    g.write(gpa, &b[..T::SIZE]);
}

fn get<G: Guest + ?Sized, T: Wire>(g: &mut G, gpa: u64) -> T {
    let mut b = [0u8; 128];
    g.read(gpa, &mut b[..T::SIZE]);
    T::read(&b[..T::SIZE])
}

/// Initialises the ring page at scratch page `p` and registers it with
/// `len` data bytes and `flags`.
fn register_at<G: Guest + ?Sized>(g: &mut G, p: u64, port: u32, len: u32, flags: u32) -> i64 {
    let ring = scratch(g, p, 0);
    g.write(ring, &[0u8; PAGE_SIZE as usize]);
    // `prepare` refuses bad lengths; the bad-input scenarios want Xen to
    // see them, so they get the header written by hand.
    let mut mem = GuestRing { g: RefCell::new(&mut *g), base: ring };
    if prepare(&mut mem, len, 0).is_err() {
        put(g, ring, &RingHeader { magic: v4v::RING_MAGIC, len, ..Default::default() });
    }
    let reg = scratch(g, page::ARGS, 0);
    put(g, reg, &RegisterRing { port, partner: v4v::DOMID_ANY, len, ..Default::default() });
    let gfns = scratch(g, page::ARRAYS, 0);
    g.write(gfns, &(ring / PAGE_SIZE).to_le_bytes());
    op(g, v4v::OP_REGISTER_RING, reg, gfns, 1, u64::from(flags))
}

fn register<G: Guest + ?Sized>(g: &mut G) -> i64 {
    register_at(g, page::RING, PORT, RING_LEN, 0)
}

fn unregister<G: Guest + ?Sized>(g: &mut G, port: u32) -> i64 {
    let a = scratch(g, page::ARGS, 0);
    put(g, a, &UnregisterRing { port, partner: v4v::DOMID_ANY, pad: 0 });
    op(g, v4v::OP_UNREGISTER_RING, a, 0, 0, 0)
}

/// Runs `body` with the scenarios' ring registered, then unregisters it.
fn with_ring<G: Guest + ?Sized>(g: &mut G, body: impl FnOnce(&mut G) -> Result<(), Fail>) -> Result<(), Fail> {
    ret("register", register(g), 0)?;
    let r = body(g);
    let u = unregister(g, PORT);
    r?;
    ret("unregister", u, 0)
}

/// Sends `parts` (each copied to the payload page) as one message from
/// (caller, `SRC_PORT`) to (caller, `port`), with `src_domain` in the source
/// address.
fn sendv_from<G: Guest + ?Sized>(g: &mut G, src_domain: u16, port: u32, parts: &[&[u8]]) -> i64 {
    let me = g.domid().0;
    let addr = scratch(g, page::ARGS, 0);
    put(
        g,
        addr,
        &SendAddr { src: Addr { port: SRC_PORT, domain: src_domain, pad: 0 }, dst: Addr { port, domain: me, pad: 0 } },
    );
    let iovs = scratch(g, page::ARRAYS, 0);
    let mut off = 0u64;
    for (i, part) in parts.iter().enumerate() {
        let base = scratch(g, page::PAYLOAD, off);
        g.write(base, part);
        put(g, iovs + (i * Iov::SIZE) as u64, &Iov { base, len: part.len() as u32, pad: 0 });
        off += part.len() as u64;
    }
    op(g, v4v::OP_SENDV, addr, iovs, parts.len() as u64, u64::from(MSG_TYPE))
}

fn sendv<G: Guest + ?Sized>(g: &mut G, parts: &[&[u8]]) -> i64 {
    let me = g.domid().0;
    sendv_from(g, me, PORT, parts)
}

/// What a successful sendv of `len` bytes returns: the bytes sent.
fn sent(len: usize) -> i64 {
    len as i64
}

/// A ring in guest memory, for `hypercall_abi::ring`'s reader.
struct GuestRing<'a, G: ?Sized> {
    g: RefCell<&'a mut G>,
    base: u64,
}

impl<G: Guest + ?Sized> RingMemory for GuestRing<'_, G> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        self.g.borrow_mut().read(self.base + offset as u64, buf);
        Ok(())
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        self.g.get_mut().write(self.base + offset as u64, buf);
        Ok(())
    }
}

/// Reads the next message of the ring at scratch page `p` into `buf` with
/// the guest-side reader, checking its header: stamped source (caller,
/// `SRC_PORT`), type, length.
fn recv<G: Guest + ?Sized>(g: &mut G, p: u64, buf: &mut [u8]) -> Result<(), Fail> {
    let me = g.domid().0;
    let base = scratch(g, p, 0);
    let mem = GuestRing { g: RefCell::new(g), base };
    let mut reader = RingReader::new(mem, RING_LEN).map_err(|e| ring_fail("ring reader", e))?;
    let msg = match reader.recv(buf) {
        Ok(Some(m)) => m.header,
        Ok(None) => return check("message waiting", 0, 1),
        Err(e) => return Err(ring_fail("ring recv", e)),
    };
    check("message length", u64::from(msg.len), buf.len() as u64)?;
    check("message type", u64::from(msg.msg_type), u64::from(MSG_TYPE))?;
    check("stamped source domain", u64::from(msg.source.domain), u64::from(me))?;
    check("stamped source port", u64::from(msg.source.port), u64::from(SRC_PORT))
}

/// A reader error as a failure (its kind as the value).
fn ring_fail(what: &'static str, e: RingError) -> Fail {
    let got = match e {
        RingError::Fault => 1,
        RingError::Corrupt => 2,
        RingError::BadLength => 3,
        RingError::BufferTooSmall { .. } => 4,
    };
    Fail::Check { what, got, want: 0 }
}

fn filled<const N: usize>(seed: u8) -> [u8; N] {
    let mut b = [0u8; N];
    for (i, x) in b.iter_mut().enumerate() {
        *x = seed.wrapping_add((i as u8).wrapping_mul(7));
    }
    b
}

/// Register a ring, find it in the ring's header, unregister it.
pub fn register_unregister(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let hdr: RingHeader = get(g, scratch(g, page::RING, 0));
        check("ring id port", u64::from(hdr.id.port), u64::from(PORT))?;
        check("ring id domain", u64::from(hdr.id.domain), u64::from(g.domid().0))?;
        check("ring tx_ptr", u64::from(hdr.tx_ptr), 0)
    })
}

/// One message, one iov, to the caller's own ring.
pub fn send_self_single_iov(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let m = filled::<40>(1);
        ret("sendv", sendv(g, &[&m]), sent(m.len()))?;
        let mut got = [0u8; 40];
        recv(g, page::RING, &mut got)?;
        check("payload matches", u64::from(got == m), 1)
    })
}

/// One message gathered from three iovs.
pub fn send_self_multi_iov(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let (a, b, c) = (filled::<5>(10), filled::<17>(20), filled::<64>(30));
        ret("sendv", sendv(g, &[&a, &b, &c]), sent(86))?;
        let mut got = [0u8; 86];
        recv(g, page::RING, &mut got)?;
        let ok = got[..5] == a && got[5..22] == b && got[22..] == c;
        check("gathered payload matches", u64::from(ok), 1)
    })
}

/// Messages that go around the end of the ring several times, each read
/// back before the next is sent.
pub fn send_wraps_ring(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let mut wrapped = false;
        let mut last_tx = 0;
        for i in 0..12u8 {
            let m = filled::<WRAP_PAYLOAD>(i);
            ret("sendv", sendv(g, &[&m]), sent(m.len()))?;
            let mut got = [0u8; WRAP_PAYLOAD];
            recv(g, page::RING, &mut got)?;
            check("payload matches", u64::from(got == m), 1)?;
            let hdr: RingHeader = get(g, scratch(g, page::RING, 0));
            wrapped |= hdr.tx_ptr < last_tx;
            last_tx = hdr.tx_ptr;
        }
        check("tx_ptr wrapped", u64::from(wrapped), 1)
    })
}

/// Notify on the caller's ring: it exists, is empty, and a message fits.
pub fn notify(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let rd = scratch(g, page::ARGS, 0);
        put(g, rd, &RingData { nent: 1, pad: 0, reserved: 0 });
        let me = g.domid().0;
        let ent =
            RingDataEnt { ring: Addr { port: PORT, domain: me, pad: 0 }, space_required: 64, ..Default::default() };
        put(g, rd + RingData::SIZE as u64, &ent);
        ret("notify", op(g, v4v::OP_NOTIFY, rd, 0, 0, 0), 0)?;
        let out: RingDataEnt = get(g, rd + RingData::SIZE as u64);
        let want = v4v::RD_F_EXISTS | v4v::RD_F_EMPTY | v4v::RD_F_SUFFICIENT;
        check("notify flags", u64::from(out.flags & want), u64::from(want))?;
        check("notify max_message_size fits", u64::from(out.max_message_size >= 64), 1)
    })
}

/// A ring below the minimum length is `-EINVAL`.
pub fn bad_ring_len(g: &mut dyn Guest) -> Result<(), Fail> {
    let r = register_at(g, page::RING, PORT, 2 * v4v::SLOT_BYTES, 0);
    if r == 0 {
        unregister(g, PORT);
    }
    errno("register", r, Errno::EINVAL)
}

/// A ring above the maximum length is `-E2BIG`.
pub fn ring_too_big(g: &mut dyn Guest) -> Result<(), Fail> {
    let r = register_at(g, page::RING, PORT, v4v::RING_LEN_MAX + v4v::SLOT_BYTES, 0);
    if r == 0 {
        unregister(g, PORT);
    }
    errno("register", r, Errno::E2BIG)
}

/// Registering an existing ring id with `REGISTER_F_FAIL_EXIST` is `-EEXIST`.
pub fn register_fail_exist(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let r = register_at(g, page::RING2, PORT, RING_LEN, v4v::REGISTER_F_FAIL_EXIST);
        errno("register again", r, Errno::EEXIST)
    })
}

/// A source naming another domain is `-EPERM`.
pub fn send_spoofed_source(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let other = g.domid().0 + 7;
        errno("sendv", sendv_from(g, other, PORT, &[b"spoof"]), Errno::EPERM)
    })
}

/// More iovs than `IOV_MAX` is `-E2BIG`.
pub fn send_too_many_iovs(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let parts: [&[u8]; v4v::IOV_MAX as usize + 1] = [b"x"; v4v::IOV_MAX as usize + 1];
        errno("sendv", sendv(g, &parts), Errno::E2BIG)
    })
}

/// An iov with non-zero padding is `-EINVAL`.
pub fn send_iov_pad(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let me = g.domid().0;
        let addr = scratch(g, page::ARGS, 0);
        put(
            g,
            addr,
            &SendAddr {
                src: Addr { port: SRC_PORT, domain: me, pad: 0 },
                dst: Addr { port: PORT, domain: me, pad: 0 },
            },
        );
        let iov = scratch(g, page::ARRAYS, 0);
        put(g, iov, &Iov { base: scratch(g, page::PAYLOAD, 0), len: 8, pad: 1 });
        errno("sendv", op(g, v4v::OP_SENDV, addr, iov, 1, u64::from(MSG_TYPE)), Errno::EINVAL)
    })
}

/// Sending to a port with no ring is `-ECONNREFUSED`.
pub fn send_no_ring(g: &mut dyn Guest) -> Result<(), Fail> {
    errno("sendv", sendv(g, &[b"nobody"]), Errno::ECONNREFUSED)
}

/// After unregistering, the ring's port refuses messages.
pub fn send_after_unregister(g: &mut dyn Guest) -> Result<(), Fail> {
    ret("register", register(g), 0)?;
    ret("unregister", unregister(g, PORT), 0)?;
    errno("sendv", sendv(g, &[b"late"]), Errno::ECONNREFUSED)
}

/// `OP_INFO` counts what the caller sent and what its ring received.
pub fn info_counts_messages(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let info = scratch(g, page::ARGS, 0);
        let ring_info = scratch(g, page::ARGS, 512);
        let me = g.domid().0;
        let query = RingInfo { id: RingId { port: PORT, domain: me, partner: v4v::DOMID_ANY }, ..Default::default() };
        put(g, ring_info, &query);
        ret("info", op(g, v4v::OP_INFO, info, ring_info, 0, 0), 0)?;
        let before: Info = get(g, info);
        for m in [&b"one"[..], &b"three"[..]] {
            ret("sendv", sendv(g, &[m]), sent(m.len()))?;
        }
        put(g, ring_info, &query);
        ret("info", op(g, v4v::OP_INFO, info, ring_info, 0, 0), 0)?;
        let after: Info = get(g, info);
        let ring: RingInfo = get(g, ring_info);
        check("info nr_rings", after.nr_rings.into(), 1)?;
        check("info msgs_sent delta", after.msgs_sent - before.msgs_sent, 2)?;
        check("info bytes_sent delta", after.bytes_sent - before.bytes_sent, 8)?;
        check("info msgs_received delta", after.msgs_received - before.msgs_received, 2)?;
        check("ring info len", ring.len.into(), RING_LEN.into())?;
        check("ring info msgs", ring.msgs, 2)?;
        check("ring info tx_ptr", ring.tx_ptr.into(), 2 * 32)
    })
}
