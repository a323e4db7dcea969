//! Ring protocol, notifications, large sends and domain death, including
//! the Argo bugs as regression tests.

mod v4v_util;

use hypercall_abi::v4v::*;
use hypercall_abi::{hypercall::V4V_OP, DomId, Errno, VIRQ_V4V};
use simulator::{Preempt, Step};
use v4v_util::*;

const G: u64 = RING_GFN0;

fn virqs(s: &simulator::Sim, d: DomId) -> u64 {
    s.machine().virq_count(d, VIRQ_V4V)
}

#[test]
fn messages_wrap_headers_do_not_and_one_slot_stays_free() {
    let s = sim(4096, 10);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, 128, G), 0);
    for round in 0..40u32 {
        let len = (round as usize * 7) % 60;
        let p = payload(b, round, len);
        assert_eq!(send(&s, b, 3, a, 1, &p, round), len as i64);
        let got = drain(&s, a, G, 128);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, p);
        assert_eq!((got[0].0.msg_type, got[0].0.source), (round, Addr { port: 3, domain: b.0, pad: 0 }));
    }
    // Fill: 128 bytes hold 112 of messages (one slot always free).
    assert_eq!(send(&s, b, 3, a, 1, &[0; 48], 0), 48); // 64
    assert_eq!(send(&s, b, 3, a, 1, &[0; 32], 0), 32); // 48: 112 used
    assert_eq!(send(&s, b, 3, a, 1, &[], 0), err(Errno::EAGAIN), "the last slot stays free");
    let h = header(&s, a, G);
    assert_ne!(h.tx_ptr, h.rx_ptr, "full is not empty");
    assert_eq!(drain(&s, a, G, 128).len(), 2);
    check(&s);
}

/// Argo bug: a full ring must be `-EAGAIN`, never 0 (success).
#[test]
fn full_ring_is_eagain() {
    let s = sim(4096, 11);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, 64, G), 0);
    assert_eq!(send(&s, b, 1, a, 1, &[1; 32], 0), 32);
    for _ in 0..3 {
        assert_eq!(send(&s, b, 1, a, 1, &[2; 1], 0), err(Errno::EAGAIN));
    }
    let (_, i, ri) = info(&s, b, None);
    assert_eq!((i.msgs_sent, i.sends_full), (1, 3));
    let (_, _, ri2) = info(&s, a, Some((1, DOMID_ANY)));
    assert_eq!((ri.msgs, ri2.msgs, ri2.full), (0, 1, 3));
    assert_eq!(drain(&s, a, G, 64).len(), 1);
    check(&s);
}

/// Argo bug: re-registering must not drift any counter (pins, ring count,
/// statistics) and must restore Xen's tx_ptr.
#[test]
fn reregister_in_a_loop_changes_nothing() {
    let s = sim(4096, 12);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    let len = 4096 + 1024;
    assert_eq!(register(&s, a, 1, DOMID_ANY, len, G), 0);
    assert_eq!(send(&s, b, 1, a, 1, &[1; 100], 0), 100);
    let free0 = s.free_frames();
    let before = (info(&s, a, Some((1, DOMID_ANY))), s.hv().v4v.pinned_pages(), header(&s, a, G).tx_ptr);
    for i in 0..200u32 {
        // The guest scribbles on Xen's fields before re-registering.
        s.guest_write(a, (G << 12) + 24, &(i * 16 + 3).to_ne_bytes()).unwrap();
        assert_eq!(reregister(&s, a, 1, DOMID_ANY, len, G), 0);
    }
    let after = (info(&s, a, Some((1, DOMID_ANY))), s.hv().v4v.pinned_pages(), header(&s, a, G).tx_ptr);
    assert_eq!(before, after);
    assert_eq!(s.free_frames(), free0);
    assert_eq!(s.hv().v4v.nr_rings(a), 1);
    assert_eq!(drain(&s, a, G, len)[0].1, vec![1; 100]);
    check(&s);
}

/// Argo bug: a partner that dies while a stale sender entry (a pending
/// waiter and a half-done send) names it.
#[test]
fn partner_dies_with_a_stale_sender_entry() {
    let s = sim(1 << 14, 13);
    s.machine().set_preempt(Preempt::Always);
    let a = dom(&s, 64);
    let b = dom(&s, 4096);
    let c = dom(&s, 64);
    let len = 8 * 4096 - 64;
    assert_eq!(register(&s, a, 1, b.0, len, G), 0); // partner b only
    assert_eq!(register(&s, a, 2, DOMID_ANY, 64, G + 8), 0);
    assert_eq!(send(&s, c, 1, a, 2, &[0; 32], 0), 32);
    // b waits for space on ring 2 and has a large send half done into ring 1.
    let (r, out) = notify(&s, b, &[query(a, 2, 32, true)]);
    assert_eq!((r, out[0].flags & RD_F_PENDING), (0, RD_F_PENDING));
    let big = payload(b, 1, 20000);
    let args = send_args(&s, b, 1, a, 1, &big, 0).unwrap();
    let call = [OP_SENDV as u64, args[0], args[1], args[2], args[3]];
    assert_eq!(s.hypercall_step(b, V4V_OP, call), Step::Continuation);
    assert!(s.hv().v4v.references(b));
    s.destroy_domain(b).unwrap();
    // The partner ring is gone, b's waiter is gone, nothing names b.
    assert!(!s.hv().v4v.references(b));
    assert_eq!(s.hv().v4v.nr_rings(a), 1);
    assert_eq!(s.hv().v4v.pinned_pages(), 1);
    assert_eq!(info(&s, a, Some((1, b.0))).0, err(Errno::ENOENT));
    // A new domain may reuse b's id: it sees none of b's state.
    check(&s);
    assert!(drain(&s, a, G + 8, 64).len() == 1);
    assert_eq!(op(&s, a, OP_NOTIFY, [0; 4]), 0);
    check(&s);
    s.destroy_domain(a).unwrap();
    s.destroy_domain(c).unwrap();
    assert_eq!(s.hv().v4v.pinned_pages(), 0);
    check(&s);
}

/// Argo bug: sender and receiver dying together, in either order, with a
/// send in flight between them.
#[test]
fn sender_and_receiver_die_together() {
    for order in 0..2 {
        let s = sim(1 << 14, 14 + order);
        s.machine().set_preempt(Preempt::Always);
        let free0 = s.free_frames();
        let a = dom(&s, 64);
        let b = dom(&s, 64);
        let len = 4 * 4096 - 64;
        assert_eq!(register(&s, a, 1, b.0, len, G), 0);
        assert_eq!(register(&s, b, 1, a.0, len, G), 0);
        let args = send_args(&s, b, 1, a, 1, &payload(b, 0, 10000), 0).unwrap();
        assert_eq!(
            s.hypercall_step(b, V4V_OP, [OP_SENDV as u64, args[0], args[1], args[2], args[3]]),
            Step::Continuation
        );
        let (r, _) = notify(&s, a, &[query(b, 1, len, true)]);
        assert_eq!(r, 0);
        let (x, y) = if order == 0 { (a, b) } else { (b, a) };
        s.destroy_domain(x).unwrap();
        s.destroy_domain(y).unwrap();
        assert_eq!(s.hv().v4v.pinned_pages(), 0);
        assert!(!s.hv().v4v.references(a) && !s.hv().v4v.references(b));
        check(&s);
        assert_eq!(s.free_frames(), free0, "every page returned");
    }
}

#[test]
fn virq_on_data_and_empty_only_suppression() {
    let s = sim(4096, 20);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, 1024, G), 0);
    let v0 = virqs(&s, a);
    for _ in 0..3 {
        assert_eq!(send(&s, b, 1, a, 1, &[1; 8], 0), 8);
    }
    assert_eq!(virqs(&s, a), v0 + 3, "every message wakes by default");
    drain(&s, a, G, 1024);
    // Ask for empty -> non-empty only.
    s.guest_write(a, (G << 12) + 28, &RING_F_NOTIFY_EMPTY_ONLY.to_ne_bytes()).unwrap();
    for _ in 0..3 {
        assert_eq!(send(&s, b, 1, a, 1, &[1; 8], 0), 8);
    }
    assert_eq!(virqs(&s, a), v0 + 4, "only the first of a burst");
    drain(&s, a, G, 1024);
    assert_eq!(send(&s, b, 1, a, 1, &[1; 8], 0), 8);
    assert_eq!(virqs(&s, a), v0 + 5, "empty again");
    check(&s);
}

#[test]
fn space_wakeups_are_fifo_and_only_for_those_that_fit() {
    let s = sim(4096, 21);
    let a = dom(&s, 64);
    let (w1, w2, w3) = (dom(&s, 16), dom(&s, 16), dom(&s, 16));
    let len = 256;
    assert_eq!(register(&s, a, 1, DOMID_ANY, len, G), 0);
    // Fill the ring: 240 usable bytes.
    assert_eq!(send(&s, a, 1, a, 1, &[0; 224], 0), 224);
    // w1 wants 150 bytes, w2 100, w3 10: FIFO in that order.
    for (w, need) in [(w1, 150), (w2, 100), (w3, 10)] {
        let (r, out) = notify(&s, w, &[query(a, 1, need, true)]);
        assert_eq!(r, 0);
        assert_eq!(out[0].flags, RD_F_EXISTS | RD_F_PENDING);
        assert_eq!(out[0].max_message_size, 0);
    }
    let v = |d| virqs(&s, d);
    let before = (v(w1), v(w2), v(w3));
    // Consumed: 240 free. w1 (needs 176 with header) fits; w2 (112) does
    // not fit in what is left (64); w3 would, but may not overtake w2.
    drain(&s, a, G, len);
    assert_eq!(op(&s, a, OP_NOTIFY, [0; 4]), 0);
    assert_eq!((v(w1), v(w2), v(w3)), (before.0 + 1, before.1, before.2));
    let (_, _, ri) = info(&s, a, Some((1, DOMID_ANY)));
    assert_eq!(ri.nr_pending, 2);
    // w1 sends; still no room for w2; a later notify wakes nobody twice.
    assert_eq!(send(&s, w1, 1, a, 1, &[5; 150], 0), 150);
    assert_eq!(op(&s, a, OP_NOTIFY, [0; 4]), 0);
    assert_eq!((v(w1), v(w2), v(w3)), (before.0 + 1, before.1, before.2));
    drain(&s, a, G, len);
    assert_eq!(op(&s, a, OP_NOTIFY, [0; 4]), 0);
    assert_eq!((v(w1), v(w2), v(w3)), (before.0 + 1, before.1 + 1, before.2 + 1));
    // Queries: sufficient, empty, the largest message.
    let (_, out) = notify(&s, w2, &[query(a, 1, 100, false), query(a, 9, 1, false)]);
    assert_eq!(out[0].flags, RD_F_EXISTS | RD_F_EMPTY | RD_F_SUFFICIENT);
    assert_eq!(out[0].max_message_size, len - 2 * SLOT_BYTES);
    assert_eq!(out[1].flags, 0, "no ring");
    check(&s);
}

#[test]
fn firewall_default_accept_then_first_match() {
    let s = sim(4096, 22);
    let ctl = s.create_domain(simulator::DomainKind::Hvm, 64, true).unwrap();
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, 256, G), 0);
    assert_eq!(send(&s, b, 7, a, 1, &[1], 0), 1, "default policy: accept");
    let rule = |src, sp, act| FwRule { src_domain: src, dst_domain: a.0, src_port: sp, dst_port: 1, action: act };
    put(&s, ctl, ARG, &rule(b.0, PORT_ANY, FW_REJECT));
    assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), 0);
    assert_eq!(send(&s, b, 7, a, 1, &[1], 0), err(Errno::ECONNREFUSED));
    assert_eq!(send(&s, ctl, 7, a, 1, &[1], 0), 1, "other sources unaffected");
    let (_, out) = notify(&s, b, &[query(a, 1, 1, false)]);
    assert_eq!(out[0].flags & RD_F_EXISTS, 0, "a rejected sender does not see the ring");
    put(&s, ctl, ARG, &rule(b.0, 7, FW_ACCEPT));
    assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), 0, "inserted first");
    assert_eq!(send(&s, b, 7, a, 1, &[1], 0), 1);
    assert_eq!(send(&s, b, 8, a, 1, &[1], 0), err(Errno::ECONNREFUSED));
    assert_eq!(op(&s, ctl, OP_FW_LIST, [0x4000, 0, 8, 0]), 2);
    assert_eq!(get::<FwRule>(&s, ctl, 0x4000), rule(b.0, 7, FW_ACCEPT));
    put(&s, ctl, ARG, &rule(b.0, PORT_ANY, FW_REJECT));
    assert_eq!(op(&s, ctl, OP_FW_DEL, [ARG, 0, 0, 0]), 0);
    assert_eq!(send(&s, b, 8, a, 1, &[1], 0), 1);
    check(&s);
}

#[test]
fn info_reports_limits_and_statistics() {
    let s = sim(4096, 23);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, 256, G), 0);
    for i in 0..5 {
        assert_eq!(send(&s, b, 1, a, 1, &[0; 10], 0), 10, "{i}");
    }
    let (r, i, ri) = info(&s, a, Some((1, DOMID_ANY)));
    assert_eq!(r, 0);
    assert_eq!(
        (i.rings_max, i.ring_len_max, i.iov_max, i.msg_max),
        (RINGS_PER_DOMAIN_MAX, RING_LEN_MAX, IOV_MAX, MSG_MAX)
    );
    assert_eq!(
        (i.notify_max, i.pending_max, i.nr_rings, i.msgs_received),
        (NOTIFY_ENTRIES_MAX, PENDING_PER_RING_MAX, 1, 5)
    );
    assert_eq!((ri.len, ri.tx_ptr, ri.msgs, ri.bytes), (256, 160, 5, 50));
    let (_, ib, _) = info(&s, b, None);
    // System-wide totals are for the control domain only (review finding 10).
    assert_eq!((ib.msgs_sent, ib.bytes_sent, ib.global_msgs, ib.global_bytes), (5, 50, 0, 0));
    assert_eq!(info(&s, a, Some((2, DOMID_ANY))).0, err(Errno::ENOENT));
    check(&s);
}

/// A maximum-size send is preempted, resumes exactly, becomes visible
/// whole, and does not stop other domains being created and destroyed.
#[test]
fn large_send_is_preemptible_and_atomic() {
    let s = sim(1 << 15, 24);
    s.machine().set_preempt(Preempt::Never);
    let len = RING_LEN_MAX;
    let rp = pages(len);
    let a = dom(&s, RING_GFN0 + rp + 16);
    let b = dom(&s, 4200 + 16);
    let gfns: Vec<u64> = (G..G + rp).collect();
    prepare_ring(&s, a, G, len, 0);
    // The gfn list does not fit the small layout: put it at page 1..
    let list: Vec<u8> = gfns.iter().flat_map(|g| g.to_ne_bytes()).collect();
    let list_gpa = (G + rp) << 12;
    s.guest_write(a, list_gpa, &list).unwrap();
    put(&s, a, ARG, &RegisterRing { port: 1, partner: DOMID_ANY, len, ..Default::default() });
    assert_eq!(op(&s, a, OP_REGISTER_RING, [ARG, list_gpa, rp, 0]), 0);
    let msg = payload(b, 7, MSG_MAX as usize);
    let args = send_args(&s, b, 1, a, 1, &msg, 9).unwrap();
    let call = [OP_SENDV as u64, args[0], args[1], args[2], args[3]];
    let mut steps = 0;
    loop {
        match s.hypercall_step(b, V4V_OP, call) {
            Step::Done(r) => {
                assert_eq!(r, MSG_MAX as i64);
                break;
            }
            Step::Continuation => {
                steps += 1;
                // Nothing visible until the whole message is in.
                assert_eq!(header(&s, a, G).tx_ptr, 0);
                if steps % 64 == 1 {
                    let c = dom(&s, 16);
                    s.destroy_domain(c).unwrap();
                    check(&s);
                }
            }
        }
    }
    let per_step = rust_hv::v4v::SEND_STEP_BYTES_MAX as u32;
    assert_eq!(steps, MSG_MAX.div_ceil(per_step) - 1, "bounded work per step");
    let got = drain(&s, a, G, len);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.len, MSG_MAX);
    assert!(got[0].1 == msg, "byte-exact");
    check(&s);
    s.destroy_domain(a).unwrap();
    assert_eq!(s.hv().v4v.pinned_pages(), 0);
}

#[test]
fn a_different_send_while_one_is_in_flight_is_ebusy() {
    let s = sim(4096, 25);
    s.machine().set_preempt(Preempt::Always);
    let a = dom(&s, 64);
    let b = dom(&s, 64);
    assert_eq!(register(&s, a, 1, DOMID_ANY, 8 * 4096 - 64, G), 0);
    let args = send_args(&s, b, 1, a, 1, &payload(b, 0, 9000), 0).unwrap();
    let call = [OP_SENDV as u64, args[0], args[1], args[2], args[3]];
    assert_eq!(s.hypercall_step(b, V4V_OP, call), Step::Continuation);
    assert_eq!(op(&s, b, OP_SENDV, [args[0], args[1], args[2], 5]), err(Errno::EBUSY));
    // Another sender meanwhile is not held up by the parked send (review
    // finding 1), which then restarts after it and completes.
    let c = dom(&s, 64);
    assert_eq!(send(&s, c, 1, a, 1, &[1], 0), 1);
    assert_eq!(s.hypercall(b, V4V_OP, call), 9000);
    let got = drain(&s, a, G, 8 * 4096 - 64);
    assert_eq!((got.len(), got[0].0.source.domain, got[1].1.len()), (2, c.0, 9000));
    check(&s);
}

/// A send whose iov array lies right after its address (one guest copy for
/// both) and one whose array crosses into the next page (two copies) carry
/// the same messages; an iov pointing outside guest memory is `-EFAULT`
/// either way.
#[test]
fn iovs_after_the_address_or_across_a_page_send_the_same() {
    let s = sim(1024, 9);
    s.machine().set_preempt(Preempt::Never);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    let len = 4096 - 64;
    prepare_ring(&s, b, RING_GFN0, len, 0);
    assert_eq!(register(&s, b, 1, DOMID_ANY, len, RING_GFN0), 0);
    s.guest_write(a, PAYLOAD, b"0123456789abcdef").unwrap();
    let sa = SendAddr { src: Addr { port: 7, domain: a.0, pad: 0 }, dst: Addr { port: 1, domain: b.0, pad: 0 } };
    let iov = |off: u64, n: u32| Iov { base: PAYLOAD + off, len: n, pad: 0 };
    // (address, iov array): adjacent in one page; the array straddling a
    // page boundary; the address after the array.
    let layouts = [(0x3000, 0x3010), (0x3fe0, 0x3ff0), (0x3080, 0x3000)];
    for (at, iovs_at) in layouts {
        put(&s, a, at, &sa);
        put(&s, a, iovs_at, &iov(0, 4));
        put(&s, a, iovs_at + Iov::SIZE as u64, &iov(10, 6));
        assert_eq!(op(&s, a, OP_SENDV, [at, iovs_at, 2, 5]), 10, "address {at:#x}, iovs {iovs_at:#x}");
        let got = drain(&s, b, RING_GFN0, len);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.source, got[0].0.msg_type), (Addr { port: 7, domain: a.0, pad: 0 }, 5));
        assert_eq!(got[0].1, b"0123abcdef");
        // The second iov made unreadable: nothing is sent.
        put(&s, a, iovs_at + Iov::SIZE as u64, &Iov { base: 1 << 40, len: 6, pad: 0 });
        assert_eq!(op(&s, a, OP_SENDV, [at, iovs_at, 2, 5]), err(Errno::EFAULT));
        assert!(drain(&s, b, RING_GFN0, len).is_empty());
    }
    check(&s);
}
