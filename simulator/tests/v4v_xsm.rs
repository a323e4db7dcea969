//! The XSM hooks V4V asks (`Platform::xsm_v4v_register` and
//! `Platform::xsm_v4v_send`): they are asked about the right domains, and a
//! refusal is returned with the policy's exact errno and changes nothing:
//! no ring, no pinned page, no counter, no message, no wake-up.

mod v4v_util;

use hypercall_abi::v4v::*;
use hypercall_abi::{DomId, Errno, Gfn, VIRQ_V4V};
use simulator::{Sim, XsmHook};
use v4v_util::*;

const LEN: u32 = 4032; // one page with the header
const G: u64 = RING_GFN0;

fn setup() -> (Sim, DomId, DomId) {
    let s = sim(4096, 0x5eed);
    let a = dom(&s, 64);
    let b = dom(&s, 64);
    (s, a, b)
}

/// The general and type reference counts of the frame at `gfn` of `d`.
fn refs(s: &Sim, d: DomId, gfn: u64) -> (u32, u32) {
    let (mfn, _) = s.machine().p2m_lookup(d, Gfn(gfn)).expect("populated");
    let f = s.machine().frame(mfn).expect("frame");
    (f.count, f.type_count)
}

#[test]
fn register_asks_the_policy_about_the_partner() {
    let (s, a, b) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, LEN, G), 0);
    assert_eq!(s.machine().xsm_v4v_register_last(), Some((a, None)));
    assert_eq!(register(&s, a, 2, b.0, LEN, G + 1), 0);
    assert_eq!(s.machine().xsm_v4v_register_last(), Some((a, Some(b))));
    check(&s);
}

#[test]
fn register_refused_by_the_policy() {
    let (s, a, b) = setup();
    prepare_ring(&s, a, G, LEN, 0);
    let before = refs(&s, a, G);
    let hdr = header(&s, a, G);
    s.machine().set_xsm_deny(XsmHook::V4vRegister, Some(Errno::EACCES));
    for partner in [DOMID_ANY, b.0] {
        assert_eq!(reregister(&s, a, 1, partner, LEN, G), err(Errno::EACCES), "partner {partner:#x}");
    }
    // A refusal may carry any errno; it is returned as is.
    s.machine().set_xsm_deny(XsmHook::V4vRegister, Some(Errno::EPERM));
    assert_eq!(reregister(&s, a, 1, DOMID_ANY, LEN, G), err(Errno::EPERM));
    assert_eq!(s.hv().v4v.nr_rings(a), 0);
    assert_eq!(s.hv().v4v.pinned_pages(), 0);
    assert_eq!(refs(&s, a, G), before, "no page pinned");
    assert_eq!(header(&s, a, G), hdr, "the ring header is not written");
    let (r, i, _) = info(&s, a, None);
    assert_eq!(r, 0);
    assert_eq!(i.nr_rings, 0);
    // Nothing to send to.
    assert_eq!(send(&s, b, 9, a, 1, b"x", 0), err(Errno::ECONNREFUSED));
    check(&s);

    // Allowed again: the same registration works.
    s.machine().set_xsm_deny(XsmHook::V4vRegister, None);
    assert_eq!(reregister(&s, a, 1, DOMID_ANY, LEN, G), 0);
    assert_eq!(s.hv().v4v.pinned_pages(), 1);
    check(&s);
}

#[test]
fn reregister_refused_by_the_policy_keeps_the_ring() {
    let (s, a, b) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, LEN, G), 0);
    assert_eq!(send(&s, b, 9, a, 1, b"hello", 7), 5);
    let before = refs(&s, a, G);
    let hdr = header(&s, a, G);
    s.machine().set_xsm_deny(XsmHook::V4vRegister, Some(Errno::EACCES));
    assert_eq!(reregister(&s, a, 1, DOMID_ANY, LEN, G), err(Errno::EACCES));
    assert_eq!(s.hv().v4v.nr_rings(a), 1);
    assert_eq!(s.hv().v4v.pinned_pages(), 1);
    assert_eq!(refs(&s, a, G), before);
    assert_eq!(header(&s, a, G), hdr);
    let m = drain(&s, a, G, LEN);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1, b"hello");
    check(&s);
}

#[test]
fn sendv_refused_by_the_policy() {
    let (s, a, b) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, LEN, G), 0);
    assert_eq!(send(&s, b, 9, a, 1, b"first", 0), 5);
    assert_eq!(s.machine().xsm_v4v_send_last(), Some((b, a)));
    let hdr = header(&s, a, G);
    let virqs = s.machine().virq_count(a, VIRQ_V4V);
    let (_, info_b, _) = info(&s, b, None);
    let (_, _, ring_a) = info(&s, a, Some((1, DOMID_ANY)));

    s.machine().set_xsm_deny(XsmHook::V4vSend, Some(Errno::EACCES));
    assert_eq!(send(&s, b, 9, a, 1, b"second", 0), err(Errno::EACCES));
    // Before the iov array is read: a bad iov pointer is not reached.
    let mut args = send_args(&s, b, 9, a, 1, b"third", 0).unwrap();
    args[1] = u64::MAX - 7;
    assert_eq!(op(&s, b, OP_SENDV, args), err(Errno::EACCES));
    // Asked about the destination, not the ring: also with no ring there.
    assert_eq!(send(&s, b, 9, a, 2, b"x", 0), err(Errno::EACCES));

    assert_eq!(header(&s, a, G), hdr, "tx_ptr not moved");
    assert_eq!(s.machine().virq_count(a, VIRQ_V4V), virqs, "no wake-up");
    let (_, info_b2, _) = info(&s, b, None);
    assert_eq!(info_b2, info_b, "no sender counter moved");
    let (_, _, ring_a2) = info(&s, a, Some((1, DOMID_ANY)));
    assert_eq!(ring_a2, ring_a, "no ring counter moved");
    check(&s);

    s.machine().set_xsm_deny(XsmHook::V4vSend, None);
    assert_eq!(send(&s, b, 9, a, 1, b"second", 0), 6);
    let m = drain(&s, a, G, LEN);
    assert_eq!(m.iter().map(|m| m.1.clone()).collect::<Vec<_>>(), [b"first".to_vec(), b"second".to_vec()]);
    check(&s);
}

#[test]
fn notify_refused_by_the_policy_tells_nothing() {
    let (s, a, b) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, LEN, G), 0);
    let (r, out) = notify(&s, b, &[query(a, 1, 16, false)]);
    assert_eq!(r, 0);
    assert_ne!(out[0].flags & RD_F_EXISTS, 0);
    assert_eq!(s.machine().xsm_v4v_send_last(), Some((b, a)));

    s.machine().set_xsm_deny(XsmHook::V4vSend, Some(Errno::EACCES));
    // Even a full ring gets no waiter registered.
    let (r, out) = notify(&s, b, &[query(a, 1, LEN, true), query(a, 7, 16, false)]);
    assert_eq!(r, err(Errno::EACCES));
    for e in &out {
        assert_eq!((e.flags, e.max_message_size), (0, 0), "nothing told about {:?}", e.ring);
    }
    let (_, _, ri) = info(&s, a, Some((1, DOMID_ANY)));
    assert_eq!(ri.nr_pending, 0, "no waiter added");
    // An entry naming no domain is not a question for the policy.
    let (r, out) = notify(&s, b, &[query(DomId(1000), 1, 16, false)]);
    assert_eq!(r, 0);
    assert_eq!(out[0].flags, 0);
    check(&s);
}
