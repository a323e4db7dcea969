//! V4V rings through `__HYPERVISOR_v4v_op`: the guest registers a ring in
//! its own scratch page and sends to itself.

use hypercall_abi::ring::{RingError, RingReader};
use hypercall_abi::v4v::{self, Addr, Iov, RegisterRing, RingDataEnt, RingHeader, SendAddr};
use hypercall_abi::{DomId, Errno, PAGE_SIZE};

use crate::mem::{get, put};
use crate::ops::v4v::{op, SendAt};
use crate::ring::GuestRing;
use crate::util::{check, errno, page, ret, scratch, Fail};
use crate::{ops, Guest};

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

/// Initialises the ring page at scratch page `p` and registers it with
/// `len` data bytes and `flags`.
fn register_at<G: Guest + ?Sized>(g: &mut G, p: u64, port: u32, len: u32, flags: u32) -> i64 {
    let ring = scratch(g, p, 0);
    g.write(ring, &[0u8; PAGE_SIZE as usize]);
    // `prepare` refuses bad lengths; the bad-input scenarios want Xen to
    // see them, so they get the header written by hand.
    if ops::v4v::prepare_ring(g, ring, len, 0).is_err() {
        put(g, ring, &RingHeader { magic: v4v::RING_MAGIC, len, ..Default::default() });
    }
    let reg = RegisterRing { port, partner: v4v::DOMID_ANY, len, ..Default::default() };
    let (reg_gpa, gfns) = (scratch(g, page::ARGS, 0), scratch(g, page::ARRAYS, 0));
    ops::v4v::register_ring(g, reg_gpa, &reg, gfns, &[ring / PAGE_SIZE], 1, u64::from(flags))
}

fn register<G: Guest + ?Sized>(g: &mut G) -> i64 {
    register_at(g, page::RING, PORT, RING_LEN, 0)
}

fn unregister<G: Guest + ?Sized>(g: &mut G, port: u32) -> i64 {
    let a = scratch(g, page::ARGS, 0);
    ops::v4v::unregister_ring(g, a, port, v4v::DOMID_ANY)
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
    let me = g.domid();
    let sa = ops::v4v::send_addr(DomId(src_domain), SRC_PORT, me, port);
    ops::v4v::sendv(g, send_at(g), &sa, parts, MSG_TYPE)
}

/// Where the scenarios' sends put their arguments.
fn send_at<G: Guest + ?Sized>(g: &G) -> SendAt {
    SendAt { addr: scratch(g, page::ARGS, 0), iovs: scratch(g, page::ARRAYS, 0), payload: scratch(g, page::PAYLOAD, 0) }
}

fn sendv<G: Guest + ?Sized>(g: &mut G, parts: &[&[u8]]) -> i64 {
    let me = g.domid().0;
    sendv_from(g, me, PORT, parts)
}

/// What a successful sendv of `len` bytes returns: the bytes sent.
fn sent(len: usize) -> i64 {
    len as i64
}

/// Reads the next message of the ring at scratch page `p` into `buf` with
/// the guest-side reader, checking its header: stamped source (caller,
/// `SRC_PORT`), type, length.
fn recv<G: Guest + ?Sized>(g: &mut G, p: u64, buf: &mut [u8]) -> Result<(), Fail> {
    let me = g.domid().0;
    let base = scratch(g, p, 0);
    let mem = GuestRing::new(g, base);
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
        let me = g.domid().0;
        let ent =
            RingDataEnt { ring: Addr { port: PORT, domain: me, pad: 0 }, space_required: 64, ..Default::default() };
        let mut ents = [ent];
        ret("notify", ops::v4v::notify(g, rd, &mut ents), 0)?;
        let out = ents[0];
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
        errno("sendv", op(g, v4v::OP_SENDV, [addr, iov, 1, u64::from(MSG_TYPE)]), Errno::EINVAL)
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
        let (r, before, _) = ops::v4v::info(g, info, ring_info, Some((PORT, v4v::DOMID_ANY)));
        ret("info", r, 0)?;
        for m in [&b"one"[..], &b"three"[..]] {
            ret("sendv", sendv(g, &[m]), sent(m.len()))?;
        }
        let (r, after, ring) = ops::v4v::info(g, info, ring_info, Some((PORT, v4v::DOMID_ANY)));
        ret("info", r, 0)?;
        check("info nr_rings", after.nr_rings.into(), 1)?;
        check("info msgs_sent delta", after.msgs_sent - before.msgs_sent, 2)?;
        check("info bytes_sent delta", after.bytes_sent - before.bytes_sent, 8)?;
        check("info msgs_received delta", after.msgs_received - before.msgs_received, 2)?;
        check("ring info len", ring.len.into(), RING_LEN.into())?;
        check("ring info msgs", ring.msgs, 2)?;
        check("ring info tx_ptr", ring.tx_ptr.into(), 2 * 32)
    })
}

/// Where the scenarios' batches put their arguments.
fn batch_at<G: Guest + ?Sized>(g: &G) -> ops::v4v::BatchAt {
    ops::v4v::BatchAt {
        ents: scratch(g, page::ARGS, 0),
        iovs: scratch(g, page::ARRAYS, 0),
        payload: scratch(g, page::PAYLOAD, 0),
    }
}

/// A batch of five messages to the caller's own ring (two of them of two
/// iovs) and a sixth to a port with no ring: five sent, in order, whole;
/// the sixth's status is `-ECONNREFUSED`. The reader takes all five in one
/// pass and writes `rx_ptr` once.
pub fn send_batch(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let me = g.domid();
        let (a, b, c) = (filled::<40>(1), filled::<7>(2), filled::<64>(3));
        let sa = ops::v4v::send_addr(me, SRC_PORT, me, PORT);
        let nowhere = ops::v4v::send_addr(me, SRC_PORT, me, PORT + 1);
        let pa: [&[u8]; 1] = [&a];
        let pc: [&[u8]; 1] = [&c];
        let pb: [&[u8]; 1] = [&b];
        let pba: [&[u8]; 2] = [&b, &a];
        let pcb: [&[u8]; 2] = [&c, &b];
        let msg = |parts, addr| ops::v4v::BatchMsg { addr, parts, msg_type: MSG_TYPE };
        let msgs = [
            msg(&pa[..], sa),
            msg(&pba[..], sa),
            msg(&pc[..], sa),
            msg(&pb[..], sa),
            msg(&pcb[..], sa),
            msg(&pa[..], nowhere),
        ];
        let at = batch_at(g);
        ret("sendv_batch", ops::v4v::sendv_batch(g, at, &msgs), 5)?;
        let want = [40, 47, 64, 7, 71];
        for (i, &w) in want.iter().enumerate() {
            check("batch status", ops::v4v::batch_status(g, at, i) as u32 as u64, w)?;
        }
        let refused = ops::v4v::batch_status(g, at, 5);
        check("batch status of the unsent", refused as i64 as u64, Errno::ECONNREFUSED.to_ret() as u64)?;
        let base = scratch(g, page::RING, 0);
        let mut reader =
            RingReader::new(GuestRing::new(&mut *g, base), RING_LEN).map_err(|e| ring_fail("ring reader", e))?;
        let (mut n, mut ok) = (0usize, true);
        let mut buf = [0u8; 128];
        let taken = reader
            .recv_batch(&mut buf, 16, |msg, p| {
                ok &= u64::from(msg.header.len) == want[n] && msg.header.msg_type == MSG_TYPE;
                ok &= msg.header.source.domain == me.0 && msg.header.source.port == SRC_PORT;
                ok &= match n {
                    0 => p == a,
                    1 => p[..7] == b && p[7..] == a,
                    2 => p == c,
                    3 => p == b,
                    _ => p[..64] == c && p[64..] == b,
                };
                n += 1;
            })
            .map_err(|e| ring_fail("ring recv_batch", e))?;
        check("messages taken in one pass", taken as u64, 5)?;
        check("messages whole and in order", u64::from(ok), 1)?;
        let rx = reader.rx_ptr();
        let hdr: RingHeader = get(g, base);
        check("rx_ptr published", u64::from(hdr.rx_ptr), u64::from(rx))?;
        check("ring drained", u64::from(hdr.tx_ptr), u64::from(rx))
    })
}

/// A batch with no entries is `-EINVAL`, one above `BATCH_MAX` `-E2BIG`,
/// and a malformed entry after a good one fails the whole batch
/// (`-EPERM` for a spoofed source), nothing sent.
pub fn send_batch_bad(g: &mut dyn Guest) -> Result<(), Fail> {
    with_ring(g, |g| {
        let me = g.domid();
        let x = filled::<8>(4);
        let sa = ops::v4v::send_addr(me, SRC_PORT, me, PORT);
        let spoof = ops::v4v::send_addr(DomId(me.0 + 7), SRC_PORT, me, PORT);
        let parts: [&[u8]; 1] = [&x];
        let msgs = [
            ops::v4v::BatchMsg { addr: sa, parts: &parts, msg_type: MSG_TYPE },
            ops::v4v::BatchMsg { addr: spoof, parts: &parts, msg_type: MSG_TYPE },
        ];
        let at = batch_at(g);
        let a = ops::v4v::sendv_batch_args(g, at, &msgs).map_err(|e| Fail::Ret {
            step: "batch args",
            got: e.to_ret(),
            want: 0,
        })?;
        errno("sendv_batch spoofed", op(g, v4v::OP_SENDV_BATCH, a), Errno::EPERM)?;
        errno("sendv_batch empty", op(g, v4v::OP_SENDV_BATCH, [a[0], a[1], 0, a[3]]), Errno::EINVAL)?;
        let over = u64::from(v4v::BATCH_MAX) + 1;
        errno("sendv_batch too many", op(g, v4v::OP_SENDV_BATCH, [a[0], a[1], over, a[3]]), Errno::E2BIG)?;
        let hdr: RingHeader = get(g, scratch(g, page::RING, 0));
        check("nothing sent", u64::from(hdr.tx_ptr), 0)
    })
}
