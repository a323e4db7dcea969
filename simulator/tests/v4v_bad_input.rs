//! The bad-input catalogue: every input V4V refuses, with its exact errno,
//! and that a refusal leaves nothing behind (invariants, no pins).

mod v4v_util;

use hypercall_abi::v4v::*;
use hypercall_abi::{DomId, Errno, Gfn};
use rust_hv::platform::P2mKind;
use rust_hv::Platform;
use v4v_util::*;

const LEN: u32 = 4032; // one page with the header
const G: u64 = RING_GFN0;

fn setup() -> (simulator::Sim, DomId, DomId) {
    let s = sim(4096, 0x5eed);
    let a = dom(&s, 64);
    let b = dom(&s, 64);
    (s, a, b)
}

fn reg(port: u32, len: u32) -> RegisterRing {
    RegisterRing { port, partner: DOMID_ANY, len, ..Default::default() }
}

#[test]
fn register_ring_lengths() {
    let (s, a, _) = setup();
    prepare_ring(&s, a, G, LEN, 0);
    let gf = [G, G + 1, G + 2];
    for (len, e) in [
        (0, Errno::EINVAL),
        (RING_LEN_MIN - SLOT_BYTES, Errno::EINVAL),
        (LEN - 8, Errno::EINVAL),
        (RING_LEN_MAX + SLOT_BYTES, Errno::E2BIG),
    ] {
        assert_eq!(register_raw(&s, a, reg(1, len), &gf, 1, 0), err(e), "len {len}");
    }
    // Page count not matching the length: too few, too many.
    assert_eq!(register_raw(&s, a, reg(1, LEN + 16), &gf, 1, 0), err(Errno::EINVAL));
    assert_eq!(register_raw(&s, a, reg(1, LEN), &gf, 2, 0), err(Errno::EINVAL));
    // The minimum is fine.
    assert_eq!(register_raw(&s, a, reg(2, RING_LEN_MIN), &gf, 1, 0), 0);
    assert_eq!(s.hv().v4v.pinned_pages(), 1);
    check(&s);
}

#[test]
fn register_ring_bad_gfns() {
    let (s, a, _) = setup();
    let two = LEN + 4096;
    prepare_ring(&s, a, G, two, 0);
    assert_eq!(register_raw(&s, a, reg(1, two), &[G, G], 2, 0), err(Errno::EINVAL), "duplicate");
    assert_eq!(register_raw(&s, a, reg(1, two), &[G, 5000], 2, 0), err(Errno::EINVAL), "unpopulated");
    s.set_ram_writable(a, Gfn(G + 1), false).unwrap();
    assert_eq!(register_raw(&s, a, reg(1, two), &[G, G + 1], 2, 0), err(Errno::EINVAL), "read-only");
    let m = s.machine();
    let h = m.domain(a).unwrap();
    let sh = m.sshm_alloc(0).unwrap();
    m.p2m_insert(&h, Gfn(200), sh, 0, P2mKind::SharedRw).unwrap();
    assert_eq!(register_raw(&s, a, reg(1, two), &[G, 200], 2, 0), err(Errno::EINVAL), "shared memory");
    // No magic in the first page.
    assert_eq!(register_raw(&s, a, reg(1, LEN), &[G + 2], 1, 0), err(Errno::EINVAL), "no magic");
    // Nothing of the failed attempts stays pinned.
    assert_eq!(s.hv().v4v.pinned_pages(), 0);
    prepare_ring(&s, a, G + 2, two, 0);
    assert_eq!(register_raw(&s, a, reg(1, two), &[G + 2, G], 2, 0), 0, "any order of pages");
    assert_eq!(s.hv().v4v.pinned_pages(), 2);
    // The raw sshm frame belongs to no region: gone before the check.
    m.p2m_remove(&h, Gfn(200), sh, 0).unwrap();
    m.sshm_free(sh, 0);
    check(&s);
}

#[test]
fn register_ring_padding_flags_partner_and_limits() {
    let (s, a, _) = setup();
    prepare_ring(&s, a, G, LEN, 0);
    assert_eq!(register_raw(&s, a, RegisterRing { pad: 1, ..reg(1, LEN) }, &[G], 1, 0), err(Errno::EINVAL));
    assert_eq!(register_raw(&s, a, RegisterRing { pad2: 1, ..reg(1, LEN) }, &[G], 1, 0), err(Errno::EINVAL));
    assert_eq!(register_raw(&s, a, reg(1, LEN), &[G], 1, 2), err(Errno::EINVAL), "unknown flag");
    assert_eq!(register_raw(&s, a, RegisterRing { partner: 77, ..reg(1, LEN) }, &[G], 1, 0), err(Errno::ESRCH));
    assert_eq!(
        register_raw(&s, a, RegisterRing { partner: DomId::XEN.0, ..reg(1, LEN) }, &[G], 1, 0),
        err(Errno::EINVAL)
    );
    assert_eq!(op(&s, a, OP_REGISTER_RING, [1 << 40, GFNS, 1, 0]), err(Errno::EFAULT));
    assert_eq!(register_raw(&s, a, reg(1, LEN), &[G], 1, 0), 0);
    assert_eq!(register_raw(&s, a, reg(1, LEN), &[G], 1, REGISTER_F_FAIL_EXIST as u64), err(Errno::EEXIST));
    prepare_ring(&s, a, G + 1, LEN, 0);
    assert_eq!(register_raw(&s, a, reg(1, LEN), &[G + 1], 1, 0), err(Errno::EEXIST), "other pages");
    assert_eq!(register_raw(&s, a, reg(1, LEN - 16), &[G], 1, 0), err(Errno::EEXIST), "other length");
    // Rings per domain.
    let big = sim(4096, 1);
    let c = dom(&big, 256);
    for i in 0..RINGS_PER_DOMAIN_MAX {
        assert_eq!(register(&big, c, i, DOMID_ANY, RING_LEN_MIN, G + i as u64), 0);
    }
    assert_eq!(register(&big, c, 999, DOMID_ANY, RING_LEN_MIN, 200), err(Errno::ENOSPC));
    assert_eq!(big.hv().v4v.nr_rings(c), RINGS_PER_DOMAIN_MAX);
    check(&big);
    check(&s);
}

#[test]
fn unregister_and_unknown_ops() {
    let (s, a, _) = setup();
    assert_eq!(unregister(&s, a, 1, DOMID_ANY), err(Errno::ENOENT));
    put(&s, a, ARG, &UnregisterRing { port: 1, partner: DOMID_ANY, pad: 3 });
    assert_eq!(op(&s, a, OP_UNREGISTER_RING, [ARG, 0, 0, 0]), err(Errno::EINVAL));
    assert_eq!(op(&s, a, OP_UNREGISTER_RING, [ARG, 1, 0, 0]), err(Errno::EINVAL), "unused arg");
    assert_eq!(op(&s, a, 0, [0; 4]), err(Errno::EOPNOTSUPP));
    assert_eq!(op(&s, a, 99, [0; 4]), err(Errno::EOPNOTSUPP));
    assert_eq!(op(&s, a, OP_NOTIFY, [0, 1, 0, 0]), err(Errno::EINVAL));
    assert_eq!(op(&s, a, OP_INFO, [ARG, 0, 1, 0]), err(Errno::EINVAL));
    check(&s);
}

#[test]
fn rx_ptr_is_sanitised_not_trusted() {
    let (s, a, b) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, 256, G), 0);
    for bad in [256u32, 257, 5, u32::MAX, 0xffff_fff8] {
        // The receiver scribbles on its rx_ptr; Xen must stay inside the
        // ring and keep its own tx_ptr.
        s.guest_write(a, (G << 12) + 20, &bad.to_ne_bytes()).unwrap();
        let r = send(&s, b, 1, a, 1, &[7; 40], 0);
        assert!(r == 40 || r == err(Errno::EAGAIN), "rx {bad:#x}: {r}");
        let h = header(&s, a, G);
        assert!(h.tx_ptr < 256 && h.tx_ptr.is_multiple_of(16), "tx {}", h.tx_ptr);
        let (_, _, ri) = info(&s, a, Some((1, DOMID_ANY)));
        assert!(ri.rx_ptr < 256 && ri.rx_ptr.is_multiple_of(16));
        check(&s);
    }
    // The guest's own tx_ptr is never read: garbage there changes nothing.
    s.guest_write(a, (G << 12) + 20, &0u32.to_ne_bytes()).unwrap();
    let tx = header(&s, a, G).tx_ptr;
    s.guest_write(a, (G << 12) + 20, &tx.to_ne_bytes()).unwrap();
    s.guest_write(a, (G << 12) + 24, &12345u32.to_ne_bytes()).unwrap();
    assert_eq!(send(&s, b, 1, a, 1, &[1; 16], 0), 16);
    assert_eq!(header(&s, a, G).tx_ptr, (tx + 32) % 256);
    check(&s);
}

#[test]
fn sendv_refusals() {
    let (s, a, b) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, 256, G), 0);
    // Spoofed source.
    let mut args = send_args(&s, b, 9, a, 1, &[1; 8], 0).unwrap();
    put(
        &s,
        b,
        ARG,
        &SendAddr { src: Addr { port: 9, domain: a.0, pad: 0 }, dst: Addr { port: 1, domain: a.0, pad: 0 } },
    );
    assert_eq!(op(&s, b, OP_SENDV, args), err(Errno::EPERM));
    // DOMID_SELF is allowed and stamped with the real id.
    put(
        &s,
        b,
        ARG,
        &SendAddr { src: Addr { port: 9, domain: DomId::SELF_.0, pad: 0 }, dst: Addr { port: 1, domain: a.0, pad: 0 } },
    );
    assert_eq!(op(&s, b, OP_SENDV, args), 8);
    assert_eq!(drain(&s, a, G, 256)[0].0.source, Addr { port: 9, domain: b.0, pad: 0 });
    // Padding in the addresses and the iov.
    put(
        &s,
        b,
        ARG,
        &SendAddr { src: Addr { port: 9, domain: b.0, pad: 1 }, dst: Addr { port: 1, domain: a.0, pad: 0 } },
    );
    assert_eq!(op(&s, b, OP_SENDV, args), err(Errno::EINVAL));
    args = send_args(&s, b, 9, a, 1, &[1; 8], 0).unwrap();
    put(&s, b, IOVS, &Iov { base: PAYLOAD, len: 8, pad: 1 });
    assert_eq!(op(&s, b, OP_SENDV, args), err(Errno::EINVAL));
    // niov 0 and above the maximum.
    args = send_args(&s, b, 9, a, 1, &[1; 8], 0).unwrap();
    assert_eq!(op(&s, b, OP_SENDV, [args[0], args[1], 0, 0]), err(Errno::EINVAL));
    assert_eq!(op(&s, b, OP_SENDV, [args[0], args[1], IOV_MAX as u64 + 1, 0]), err(Errno::E2BIG));
    assert_eq!(op(&s, b, OP_SENDV, [args[0], args[1], 1, 1 << 32]), err(Errno::EINVAL), "message type");
    // iov lengths whose sum overflows u32, and a sum above MSG_MAX.
    put(&s, b, IOVS, &Iov { base: PAYLOAD, len: u32::MAX, pad: 0 });
    put(&s, b, IOVS + 16, &Iov { base: PAYLOAD, len: 2, pad: 0 });
    assert_eq!(op(&s, b, OP_SENDV, [ARG, IOVS, 2, 0]), err(Errno::EOVERFLOW));
    put(&s, b, IOVS, &Iov { base: PAYLOAD, len: MSG_MAX, pad: 0 });
    put(&s, b, IOVS + 16, &Iov { base: PAYLOAD, len: 1, pad: 0 });
    assert_eq!(op(&s, b, OP_SENDV, [ARG, IOVS, 2, 0]), err(Errno::EMSGSIZE));
    // An iov pointing nowhere: nothing is published.
    put(&s, b, IOVS, &Iov { base: 1 << 40, len: 8, pad: 0 });
    assert_eq!(op(&s, b, OP_SENDV, [ARG, IOVS, 1, 0]), err(Errno::EFAULT));
    assert!(drain(&s, a, G, 256).is_empty());
    // Message larger than the ring allows, and one byte less.
    let max = 256 - 2 * SLOT_BYTES;
    assert_eq!(send(&s, b, 9, a, 1, &vec![3; max as usize + 1], 0), err(Errno::EMSGSIZE));
    assert_eq!(send(&s, b, 9, a, 1, &vec![3; max as usize], 0), max as i64);
    assert_eq!(drain(&s, a, G, 256)[0].1, vec![3; max as usize]);
    // Absent ring, absent domain, reserved domain, dying domain.
    assert_eq!(send(&s, b, 9, a, 2, &[1], 0), err(Errno::ECONNREFUSED));
    assert_eq!(send(&s, b, 9, DomId(77), 1, &[1], 0), err(Errno::ESRCH));
    assert_eq!(send(&s, b, 9, DomId::XEN, 1, &[1], 0), err(Errno::ESRCH));
    let c = dom(&s, 64);
    assert_eq!(register(&s, c, 1, DOMID_ANY, 256, G), 0);
    s.destroy_domain(c).unwrap();
    assert_eq!(send(&s, b, 9, c, 1, &[1], 0), err(Errno::ESRCH));
    // A ring for another partner only.
    assert_eq!(register(&s, a, 5, c.0.wrapping_add(0), 256, G + 1), err(Errno::ESRCH), "partner is dead");
    let d = dom(&s, 64);
    assert_eq!(register(&s, a, 5, d.0, 256, G + 1), 0);
    assert_eq!(send(&s, b, 9, a, 5, &[1], 0), err(Errno::ECONNREFUSED));
    assert_eq!(send(&s, d, 9, a, 5, &[1], 0), 1);
    check(&s);
}

#[test]
fn notify_refusals_and_pending_bound() {
    let s = sim(1 << 14, 2);
    let a = dom(&s, 64);
    put(&s, a, NOTIFY, &RingData { nent: NOTIFY_ENTRIES_MAX + 1, pad: 0, reserved: 0 });
    assert_eq!(op(&s, a, OP_NOTIFY, [NOTIFY, 0, 0, 0]), err(Errno::E2BIG));
    put(&s, a, NOTIFY, &RingData { nent: 0, pad: 1, reserved: 0 });
    assert_eq!(op(&s, a, OP_NOTIFY, [NOTIFY, 0, 0, 0]), err(Errno::EINVAL));
    put(&s, a, NOTIFY, &RingData { nent: 0, pad: 0, reserved: 1 });
    assert_eq!(op(&s, a, OP_NOTIFY, [NOTIFY, 0, 0, 0]), err(Errno::EINVAL));
    let mut e = query(a, 1, 8, false);
    e.flags = 1 << 7;
    assert_eq!(notify(&s, a, &[e]).0, err(Errno::EINVAL), "unknown entry flag");
    e = query(a, 1, 8, false);
    e.pad2 = 1;
    assert_eq!(notify(&s, a, &[e]).0, err(Errno::EINVAL), "entry padding");
    // The maximum number of entries is fine.
    let many = vec![query(a, 1, 8, false); NOTIFY_ENTRIES_MAX as usize];
    let (r, out) = notify(&s, a, &many);
    assert_eq!(r, 0);
    assert!(out.iter().all(|e| e.flags == 0), "no such ring");

    // More waiters than the pending bound.
    assert_eq!(register(&s, a, 1, DOMID_ANY, 64, G), 0);
    assert_eq!(send(&s, a, 1, a, 1, &[0; 16], 0), 16); // 32 of 48 free bytes used
    let waiters: Vec<DomId> = (0..PENDING_PER_RING_MAX + 1).map(|_| dom(&s, 16)).collect();
    for (i, &w) in waiters.iter().enumerate() {
        let (r, out) = notify(&s, w, &[query(a, 1, 16, true)]);
        if i < PENDING_PER_RING_MAX as usize {
            assert_eq!(r, 0, "waiter {i}");
            assert_eq!(out[0].flags & (RD_F_EXISTS | RD_F_PENDING), RD_F_EXISTS | RD_F_PENDING);
        } else {
            assert_eq!(r, err(Errno::ENOSPC), "one waiter too many");
            assert_eq!(out[0].flags & RD_F_PENDING, 0);
        }
    }
    let (_, _, ri) = info(&s, a, Some((1, DOMID_ANY)));
    assert_eq!(ri.nr_pending, PENDING_PER_RING_MAX);
    check(&s);
}

#[test]
fn firewall_is_for_the_control_domain_only() {
    let s = sim(4096, 3);
    let ctl = s.create_domain(simulator::DomainKind::Hvm, 64, true).unwrap();
    let a = dom(&s, 64);
    let rule =
        FwRule { src_domain: a.0, dst_domain: DOMID_ANY, src_port: PORT_ANY, dst_port: PORT_ANY, action: FW_REJECT };
    put(&s, a, ARG, &rule);
    for cmd in [OP_FW_ADD, OP_FW_DEL, OP_FW_LIST] {
        assert_eq!(op(&s, a, cmd, [ARG, 0, 0, 0]), err(Errno::EPERM), "cmd {cmd}");
    }
    put(&s, ctl, ARG, &FwRule { action: 3, ..rule });
    assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), err(Errno::EINVAL), "unknown action");
    put(&s, ctl, ARG, &FwRule { src_domain: DomId::XEN.0, ..rule });
    assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), err(Errno::EINVAL), "reserved domain");
    put(&s, ctl, ARG, &rule);
    assert_eq!(op(&s, ctl, OP_FW_DEL, [ARG, 0, 0, 0]), err(Errno::ENOENT));
    for _ in 0..FW_RULES_MAX {
        assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, u64::MAX, 0, 0]), 0);
    }
    assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), err(Errno::ENOSPC));
    assert_eq!(op(&s, ctl, OP_FW_LIST, [0x4000, 0, FW_RULES_MAX as u64 + 1, 0]), err(Errno::E2BIG));
    assert_eq!(op(&s, ctl, OP_FW_LIST, [0x4000, FW_RULES_MAX as u64 + 1, 1, 0]), err(Errno::EINVAL));
    assert_eq!(op(&s, ctl, OP_FW_LIST, [0x4000, 0, 2, 0]), FW_RULES_MAX as i64);
    assert_eq!(get::<FwRule>(&s, ctl, 0x4010), rule);
    check(&s);
}

/// `OP_SENDV_BATCH`: every input refused as a whole (nothing sent, no
/// `status` written), then the per-message refusals that stop a batch.
#[test]
fn sendv_batch_refusals() {
    let (s, a, b) = setup();
    s.machine().set_preempt(simulator::Preempt::Never);
    assert_eq!(register(&s, a, 1, DOMID_ANY, 256, G), 0);
    let d8 = [1u8; 8];
    let one: [&[u8]; 1] = [&d8];
    let ok = bmsg(b, 9, a, 1, &one, 0);
    let args = batch_args(&s, b, &[ok, ok]);
    let [ents, iovs, _, _] = args;
    let ent_at = |i: u64| ents + i * BatchEnt::SIZE as u64;
    let whole = |s: &simulator::Sim, a4: [u64; 4], e: Errno, what: &str| {
        assert_eq!(op(s, b, OP_SENDV_BATCH, a4), err(e), "{what}");
        assert_eq!(batch_status(s, b, 0), i32::MIN, "{what}: nothing written back");
        assert!(drain(s, a, G, 256).is_empty(), "{what}: nothing sent");
    };
    // Counts.
    whole(&s, [ents, iovs, 0, 2], Errno::EINVAL, "no entries");
    whole(&s, [ents, iovs, BATCH_MAX as u64 + 1, 2], Errno::E2BIG, "entries above BATCH_MAX");
    whole(&s, [ents, iovs, 1 << 40, 2], Errno::E2BIG, "entries far above BATCH_MAX");
    whole(&s, [ents, iovs, 2, 0], Errno::EINVAL, "no iovs");
    whole(&s, [ents, iovs, 2, BATCH_IOVS_MAX as u64 + 1], Errno::E2BIG, "iovs above BATCH_IOVS_MAX");
    // Arrays that are not readable, or that run off the address space.
    whole(&s, [1 << 40, iovs, 2, 2], Errno::EFAULT, "entry array nowhere");
    whole(&s, [u64::MAX - 16, iovs, 2, 2], Errno::EFAULT, "entry array wraps");
    whole(&s, [ents, 1 << 40, 2, 2], Errno::EFAULT, "iov array nowhere");
    whole(&s, [ents, u64::MAX - 8, 2, 2], Errno::EFAULT, "iov array wraps");
    // An iov array shorter than the entries say.
    whole(&s, [ents, iovs, 2, 1], Errno::EINVAL, "second entry's iov past the array");
    // Each malformed field of the second entry fails the whole batch,
    // although the first is fine.
    let good: BatchEnt = get(&s, b, ent_at(1));
    let bad_ent = |f: fn(&mut BatchEnt), e: Errno, what: &str| {
        let mut x = good;
        f(&mut x);
        put(&s, b, ent_at(1), &x);
        put(&s, b, ent_at(0), &BatchEnt { status: i32::MIN, ..get(&s, b, ent_at(0)) });
        whole(&s, args, e, what);
        put(&s, b, ent_at(1), &good);
    };
    bad_ent(|e| e.addr.src.pad = 1, Errno::EINVAL, "source padding");
    bad_ent(|e| e.addr.dst.pad = 1, Errno::EINVAL, "destination padding");
    bad_ent(|e| e.addr.src.domain += 1, Errno::EPERM, "spoofed source");
    bad_ent(|e| e.niov = 0, Errno::EINVAL, "no iovs");
    bad_ent(|e| e.niov = IOV_MAX + 1, Errno::E2BIG, "iovs above IOV_MAX");
    bad_ent(|e| e.iov_first = 2, Errno::EINVAL, "iov past the array");
    bad_ent(|e| e.iov_first = u32::MAX, Errno::EINVAL, "iov range wraps");
    // DOMID_SELF as the source is fine, and stamped with the real id.
    let mut selfish = good;
    selfish.addr.src.domain = DomId::SELF_.0;
    put(&s, b, ent_at(1), &selfish);
    assert_eq!(op(&s, b, OP_SENDV_BATCH, args), 2);
    put(&s, b, ent_at(1), &good);
    assert!(drain(&s, a, G, 256).iter().all(|m| m.0.source == Addr { port: 9, domain: b.0, pad: 0 }));
    // Iovs: padding, a total that overflows u32, a total above MSG_MAX.
    let iov1: Iov = get(&s, b, iovs + 16);
    for (bad, e, what) in [
        ([Iov { pad: 1, ..iov1 }, iov1], Errno::EINVAL, "iov padding"),
        ([Iov { len: u32::MAX, ..iov1 }, Iov { len: 2, ..iov1 }], Errno::EOVERFLOW, "total overflows"),
        ([Iov { len: MSG_MAX, ..iov1 }, Iov { len: 1, ..iov1 }], Errno::EMSGSIZE, "total above MSG_MAX"),
    ] {
        put(&s, b, iovs + 32, &bad[0]);
        put(&s, b, iovs + 48, &bad[1]);
        put(&s, b, ent_at(1), &BatchEnt { iov_first: 2, niov: 2, ..good });
        put(&s, b, ent_at(0), &BatchEnt { status: i32::MIN, ..get(&s, b, ent_at(0)) });
        whole(&s, [ents, iovs, 2, 4], e, what);
    }
    put(&s, b, ent_at(1), &good);

    // Per message: the batch stops at the first message not sent, and
    // that message's error is the result if it is the first.
    let stop = |msgs: &[BatchMsg<'_>], want: i64, at: usize, e: Errno, what: &str| {
        assert_eq!(send_batch(&s, b, msgs), want, "{what}");
        assert_eq!(batch_status(&s, b, at), e.to_ret() as i32, "{what}: status");
        for i in at + 1..msgs.len() {
            assert_eq!(batch_status(&s, b, i), i32::MIN, "{what}: entry {i} untouched");
        }
        assert_eq!(drain(&s, a, G, 256).len(), at, "{what}: messages before it sent");
    };
    let to = |dst: DomId, port: u32| bmsg(b, 9, dst, port, &one, 0);
    for (bad, e, what) in [
        (to(a, 2), Errno::ECONNREFUSED, "no ring"),
        (to(DomId(77), 1), Errno::ESRCH, "no domain"),
        (to(DomId::XEN, 1), Errno::ESRCH, "reserved domain"),
    ] {
        stop(&[bad, ok], err(e), 0, e, what);
        stop(&[ok, bad, ok], 1, 1, e, what);
    }
    let max = 256 - 2 * SLOT_BYTES;
    let huge = vec![3u8; max as usize + 1];
    let hp: [&[u8]; 1] = [&huge];
    stop(&[ok, bmsg(b, 9, a, 1, &hp, 0)], 1, 1, Errno::EMSGSIZE, "larger than the ring");
    // A payload the sender cannot read: nothing of that message published.
    let mut fault = batch_args(&s, b, &[ok, ok, ok]);
    put(&s, b, iovs + 16, &Iov { base: 1 << 40, len: 8, pad: 0 });
    assert_eq!(op(&s, b, OP_SENDV_BATCH, fault), 1, "payload nowhere");
    assert_eq!(batch_status(&s, b, 1), Errno::EFAULT.to_ret() as i32);
    assert_eq!(drain(&s, a, G, 256).len(), 1);
    fault = batch_args(&s, b, &[ok]);
    put(&s, b, iovs, &Iov { base: 1 << 40, len: 8, pad: 0 });
    assert_eq!(op(&s, b, OP_SENDV_BATCH, fault), err(Errno::EFAULT), "payload nowhere, first");
    // The policy refuses.
    s.machine().set_xsm_deny(simulator::XsmHook::V4vSend, Some(Errno::EACCES));
    stop(&[ok, ok], err(Errno::EACCES), 0, Errno::EACCES, "XSM");
    s.machine().set_xsm_deny(simulator::XsmHook::V4vSend, None);
    // A full ring: -EAGAIN (see v4v_batch.rs for partial batches).
    let fill = vec![0u8; 100];
    let fp: [&[u8]; 1] = [&fill];
    let f = bmsg(b, 9, a, 1, &fp, 0);
    assert_eq!(send_batch(&s, b, &[f, f, f]), 1);
    assert_eq!(batch_status(&s, b, 1), Errno::EAGAIN.to_ret() as i32);
    assert_eq!(drain(&s, a, G, 256).len(), 1);
    // Another preemptible send of the sender in progress: -EBUSY.
    s.machine().set_preempt(simulator::Preempt::Always);
    assert_eq!(register(&s, a, 3, DOMID_ANY, 3 * 4096 - 64, G + 2), 0);
    let big = vec![5u8; 9000];
    let sa = send_args(&s, b, 9, a, 3, &big, 0).unwrap();
    let call = [OP_SENDV as u64, sa[0], sa[1], sa[2], sa[3]];
    assert_eq!(s.hypercall_step(b, hypercall_abi::hypercall::V4V_OP, call), simulator::Step::Continuation);
    whole(&s, batch_args(&s, b, &[ok]), Errno::EBUSY, "a sendv is parked");
    s.destroy_domain(b).unwrap();
    check(&s);
}
