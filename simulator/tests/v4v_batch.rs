//! `OP_SENDV_BATCH`: a batch is the sequence of single sends it carries
//! (same ring contents, same order per ring, same results up to the first
//! message not sent), with one wake-up per woken domain per batch; it stops
//! at the first message not sent; it is preemptible and holds nothing while
//! parked. The bad inputs are in `v4v_bad_input.rs`.
//!
//! `batch_equals_single_sends` is a property test: `SIM_CASES` sets the
//! number of cases (default 1000), `SIM_SEED` the seed; the run prints the
//! line that replays it.

mod v4v_util;

use hypercall_abi::hypercall::V4V_OP;
use hypercall_abi::v4v::*;
use hypercall_abi::{DomId, Errno, VIRQ_V4V};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence, RngSeed, TestRunner};
use simulator::rng::PropRun;
use simulator::{Preempt, Sim, Step};
use v4v_util::*;

const G: u64 = RING_GFN0;
const PAGES: u64 = 64;

/// Untouched `status` (see `scenarios::ops::v4v::sendv_batch_args`).
const UNTOUCHED: i32 = i32::MIN;

fn status_err(e: Errno) -> i32 {
    e.to_ret() as i32
}

fn virqs(s: &Sim, d: DomId) -> u64 {
    s.machine().virq_count(d, VIRQ_V4V)
}

// ---- the property: a batch is its single sends ----

/// A ring of the property test: owner slot, port, length, flags.
#[derive(Clone, Debug)]
struct RingSpec {
    owner: usize,
    port: u32,
    len: u32,
    empty_only: bool,
    /// Bytes of single sends put in before the batch (so that it fills).
    prefill: usize,
}

/// A message: destination (owner slot, port; port 9 has no ring), payload
/// parts and type.
#[derive(Clone, Debug)]
struct MsgSpec {
    to: usize,
    port: u32,
    parts: Vec<usize>,
    ty: u32,
}

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    rings: Vec<RingSpec>,
    from: usize,
    msgs: Vec<MsgSpec>,
    preempt: bool,
}

const DOMS: usize = 3;
const LENS: [u32; 4] = [64, 512, 2048, 4032];

fn case_strategy() -> impl Strategy<Value = Case> {
    let ring = (0..DOMS, 1..=3u32, 0..LENS.len(), any::<bool>(), prop_oneof![Just(0usize), 0..3000usize]).prop_map(
        |(owner, port, len, empty_only, prefill)| RingSpec { owner, port, len: LENS[len], empty_only, prefill },
    );
    let part = prop_oneof![4 => 0..80usize, 1 => 0..700usize];
    let msg = (0..DOMS, prop_oneof![8 => 1..=3u32, 1 => Just(9u32)], proptest::collection::vec(part, 1..=3), 0..3u32)
        .prop_map(|(to, port, parts, ty)| MsgSpec { to, port, parts, ty });
    (
        any::<u64>(),
        proptest::collection::vec(ring, 1..6),
        0..DOMS,
        // At most 32 messages of 3 parts: within BATCH_IOVS_MAX iovs.
        proptest::collection::vec(msg, 1..=32),
        any::<bool>(),
    )
        .prop_map(|(seed, rings, from, msgs, preempt)| Case { seed, rings, from, msgs, preempt })
}

/// A simulator with the case's domains and rings (prefilled); the
/// domains' ids.
fn world(c: &Case) -> (Sim, Vec<DomId>) {
    let s = sim(400, c.seed);
    let ids: Vec<DomId> = (0..DOMS).map(|_| dom(&s, PAGES)).collect();
    let mut registered = std::collections::BTreeSet::new();
    for (i, r) in c.rings.iter().enumerate() {
        if !registered.insert((r.owner, r.port)) {
            continue;
        }
        let gfn = G + 2 * i as u64;
        let flags = if r.empty_only { RING_F_NOTIFY_EMPTY_ONLY } else { 0 };
        prepare_ring(&s, ids[r.owner], gfn, r.len, flags);
        assert_eq!(reregister(&s, ids[r.owner], r.port, DOMID_ANY, r.len, gfn), 0);
        // Prefill from the last domain's port 77, with one-slot messages.
        let mut left = r.prefill;
        while left > 0 && send(&s, ids[DOMS - 1], 77, ids[r.owner], r.port, &[0xee; 16], 0) == 16 {
            left = left.saturating_sub(32);
        }
    }
    (s, ids)
}

/// One ring as seen at the end: owner slot, port, its messages, its header.
type Seen = (usize, u32, Vec<(MsgHeader, Vec<u8>)>, RingHeader);

/// Every message of every registered ring of the case, as its owner's
/// reader sees it (without consuming them).
fn contents(s: &Sim, ids: &[DomId], c: &Case) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in c.rings.iter().enumerate() {
        if !seen.insert((r.owner, r.port)) {
            continue;
        }
        let gfn = G + 2 * i as u64;
        let h = header(s, ids[r.owner], gfn);
        let rx = h.rx_ptr;
        let msgs = drain(s, ids[r.owner], gfn, r.len);
        // Put rx_ptr back: the ring is only looked at.
        s.guest_write(ids[r.owner], (gfn << 12) + 20, &rx.to_ne_bytes()).unwrap();
        out.push((r.owner, r.port, msgs, h));
    }
    out
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    // The batch.
    let (sb, ids) = world(c);
    // The same sends one by one.
    let (ss, ids2) = world(c);
    prop_assert_eq!(&ids, &ids2);
    let pre = if c.preempt { Preempt::OneIn(3) } else { Preempt::Never };
    sb.machine().set_preempt(pre);
    ss.machine().set_preempt(pre);
    let me = ids[c.from];
    let payloads: Vec<Vec<Vec<u8>>> = c
        .msgs
        .iter()
        .enumerate()
        .map(|(i, m)| m.parts.iter().enumerate().map(|(j, &n)| payload(me, (i * 4 + j) as u32, n)).collect())
        .collect();
    let parts: Vec<Vec<&[u8]>> = payloads.iter().map(|p| p.iter().map(|v| &v[..]).collect()).collect();
    let msgs: Vec<BatchMsg<'_>> =
        c.msgs.iter().zip(&parts).map(|(m, p)| bmsg(me, 5, ids[m.to], m.port, p, m.ty)).collect();

    let v0b: Vec<u64> = ids.iter().map(|&d| virqs(&sb, d)).collect();
    let v0s: Vec<u64> = ids.iter().map(|&d| virqs(&ss, d)).collect();
    let rb = send_batch(&sb, me, &msgs);

    // Single sends until the first one that is not sent.
    let mut singles = Vec::new();
    for (m, p) in c.msgs.iter().zip(&parts) {
        let whole: Vec<u8> = p.concat();
        let r = send(&ss, me, 5, ids[m.to], m.port, &whole, m.ty);
        singles.push(r);
        if r < 0 {
            break;
        }
    }
    let sent = singles.iter().filter(|&&r| r >= 0).count();
    let want = match singles.last() {
        Some(&r) if r < 0 && sent == 0 => r,
        _ => sent as i64,
    };
    prop_assert_eq!(rb, want, "batch result, singles {:?}", singles);
    for (i, &r) in singles.iter().enumerate() {
        prop_assert_eq!(i64::from(batch_status(&sb, me, i)), r, "status of entry {}", i);
    }
    for i in singles.len()..msgs.len() {
        prop_assert_eq!(batch_status(&sb, me, i), UNTOUCHED, "entry {} after the stop", i);
    }
    prop_assert_eq!(contents(&sb, &ids, c), contents(&ss, &ids, c), "ring contents");
    prop_assert_eq!(info(&sb, me, None).1, info(&ss, me, None).1, "sender's statistics");
    for (k, &d) in ids.iter().enumerate() {
        let (b, s1) = (virqs(&sb, d) - v0b[k], virqs(&ss, d) - v0s[k]);
        if c.preempt {
            // One per domain per step: never more than the singles, and a
            // domain the singles woke is woken.
            prop_assert!(b <= s1 && (b > 0) == (s1 > 0), "dom{}: batch {} singles {}", d.0, b, s1);
        } else {
            prop_assert_eq!(b, s1.min(1), "dom{} woken once per batch (singles {})", d.0, s1);
        }
    }
    if let Err(e) = sb.check() {
        return Err(TestCaseError::fail(e.to_string()));
    }
    Ok(())
}

#[test]
fn batch_equals_single_sends() {
    let pr = PropRun::from_env("simulator", "v4v_batch", "batch_equals_single_sends", 1000);
    let mut runner = TestRunner::new(PtConfig {
        cases: pr.cases,
        rng_seed: RngSeed::Fixed(pr.seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/v4v_batch.txt"))),
        ..PtConfig::default()
    });
    if let Err(e) = runner.run(&case_strategy(), |c| run_case(&c)) {
        panic!("{e}\nreplay: {}", pr.replay());
    }
}

// ---- semantics, one by one ----

fn setup() -> (Sim, DomId, DomId, DomId) {
    let s = sim(4096, 0xba7c);
    // Xen preempts only when it must: a batch runs in one step here.
    s.machine().set_preempt(Preempt::Never);
    let a = dom(&s, PAGES);
    let b = dom(&s, PAGES);
    let c = dom(&s, PAGES);
    (s, a, b, c)
}

#[test]
fn one_virq_per_domain_per_batch() {
    let (s, a, b, c) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, 4032, G), 0);
    assert_eq!(register(&s, a, 2, DOMID_ANY, 4032, G + 1), 0);
    assert_eq!(register(&s, c, 1, DOMID_ANY, 4032, G + 2), 0);
    let data = [7u8; 64];
    let parts: [&[u8]; 1] = [&data];
    let msgs: Vec<BatchMsg<'_>> =
        (0..32).map(|i| bmsg(b, 5, [a, a, c][i % 3], [1, 2, 1][i % 3], &parts, i as u32)).collect();
    let (va, vb, vc) = (virqs(&s, a), virqs(&s, b), virqs(&s, c));
    assert_eq!(send_batch(&s, b, &msgs), 32);
    assert_eq!((virqs(&s, a) - va, virqs(&s, b) - vb, virqs(&s, c) - vc), (1, 0, 1));
    // In order per ring, whole, stamped.
    let got = drain(&s, a, G, 4032);
    assert_eq!(got.len(), 11);
    for (k, (h, p)) in got.iter().enumerate() {
        assert_eq!((h.msg_type, h.source, p.len()), ((3 * k) as u32, Addr { port: 5, domain: b.0, pad: 0 }, 64));
    }
    assert_eq!(
        drain(&s, a, G + 1, 4032).iter().map(|m| m.0.msg_type).collect::<Vec<_>>(),
        (0..32).skip(1).step_by(3).collect::<Vec<u32>>()
    );
    assert_eq!(drain(&s, c, G + 2, 4032).len(), 10);
    for i in 0..32 {
        assert_eq!(batch_status(&s, b, i), 64);
    }
    let (_, inf, _) = info(&s, b, None);
    assert_eq!((inf.msgs_sent, inf.bytes_sent), (32, 32 * 64));
    check(&s);
}

#[test]
fn stops_at_the_first_message_not_sent() {
    let (s, a, b, _) = setup();
    // 128 data bytes: three 16-byte messages (32 ring bytes each) fit.
    assert_eq!(register(&s, a, 1, DOMID_ANY, 128, G), 0);
    assert_eq!(register(&s, a, 2, DOMID_ANY, 4032, G + 1), 0);
    let d = [1u8; 16];
    let parts: [&[u8]; 1] = [&d];
    let m1 = bmsg(b, 5, a, 1, &parts, 0);
    let m2 = bmsg(b, 5, a, 2, &parts, 0);
    // The fourth message to ring 1 does not fit: three sent, the fourth's
    // status is -EAGAIN, the rest untouched (and not sent, though ring 2
    // has room: order is kept).
    assert_eq!(send_batch(&s, b, &[m1, m2, m1, m1, m1, m2]), 4);
    let st: Vec<i32> = (0..6).map(|i| batch_status(&s, b, i)).collect();
    assert_eq!(st, vec![16, 16, 16, 16, status_err(Errno::EAGAIN), UNTOUCHED]);
    assert_eq!(drain(&s, a, G + 1, 4032).len(), 1);
    // Nothing sent: the first message's error, in its status too.
    assert_eq!(send_batch(&s, b, &[m1, m2]), err(Errno::EAGAIN));
    assert_eq!((batch_status(&s, b, 0), batch_status(&s, b, 1)), (status_err(Errno::EAGAIN), UNTOUCHED));
    assert_eq!(drain(&s, a, G, 128).len(), 3);
    // A destination that refuses in the middle.
    let gone = bmsg(b, 5, a, 3, &parts, 0);
    assert_eq!(send_batch(&s, b, &[m1, gone, m1]), 1);
    assert_eq!(batch_status(&s, b, 1), status_err(Errno::ECONNREFUSED));
    // The sender was queued as a waiter on the full ring, as by sendv
    // (one message in it: two more fit).
    assert_eq!(send_batch(&s, b, &[m1, m1, m1, m1]), 2);
    let (_, ents) = notify(&s, b, &[query(a, 1, 16, false)]);
    assert_eq!(ents[0].flags & RD_F_PENDING, RD_F_PENDING);
    check(&s);
}

#[test]
fn preempted_batch_holds_nothing_and_resumes() {
    let (s, a, b, c) = setup();
    let len = 3 * 4096 - 64;
    assert_eq!(register(&s, a, 1, DOMID_ANY, len, G), 0);
    s.machine().set_preempt(Preempt::Always);
    let big: Vec<u8> = payload(b, 1, 5000);
    let small = payload(b, 2, 30);
    let (pb, ps): ([&[u8]; 1], [&[u8]; 1]) = ([&big], [&small]);
    let msgs = [bmsg(b, 5, a, 1, &pb, 1), bmsg(b, 5, a, 1, &ps, 2), bmsg(b, 5, a, 1, &pb, 3)];
    let args = batch_args(&s, b, &msgs);
    let call = [OP_SENDV_BATCH as u64, args[0], args[1], args[2], args[3]];
    // One chunk of the first message, then parked: nothing published,
    // nothing reserved, so another sender gets through in between.
    assert_eq!(s.hypercall_step(b, V4V_OP, call), Step::Continuation);
    assert_eq!(header(&s, a, G).tx_ptr, 0);
    assert_eq!(send(&s, c, 9, a, 1, &[3; 40], 7), 40);
    // The same sender may not start another send meanwhile.
    assert_eq!(send(&s, b, 5, a, 1, &[3; 8], 0), err(Errno::EBUSY));
    let mut steps = 1;
    let r = loop {
        steps += 1;
        if let Step::Done(r) = s.hypercall_step(b, V4V_OP, call) {
            break r;
        }
        assert!(steps < 100);
    };
    assert_eq!(r, 3);
    assert!(steps > 3, "{steps} steps");
    let got = drain(&s, a, G, len);
    let order: Vec<(u16, u32)> = got.iter().map(|m| (m.0.source.domain, m.0.msg_type)).collect();
    assert_eq!(order, vec![(c.0, 7), (b.0, 1), (b.0, 2), (b.0, 3)]);
    assert_eq!((&got[1].1, &got[2].1, &got[3].1), (&big, &small, &big));
    check(&s);
}

#[test]
fn a_parked_batch_goes_with_its_sender() {
    let (s, a, b, c) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, 3 * 4096 - 64, G), 0);
    s.machine().set_preempt(Preempt::Always);
    let big = payload(b, 1, 9000);
    let pb: [&[u8]; 1] = [&big];
    let args = batch_args(&s, b, &[bmsg(b, 5, a, 1, &pb, 1), bmsg(b, 5, a, 1, &pb, 2)]);
    let call = [OP_SENDV_BATCH as u64, args[0], args[1], args[2], args[3]];
    assert_eq!(s.hypercall_step(b, V4V_OP, call), Step::Continuation);
    // Another batch (other arguments) of the same sender: -EBUSY.
    let d = [1u8; 8];
    let pd: [&[u8]; 1] = [&d];
    let other = [bmsg(b, 5, a, 1, &pd, 0)];
    let o = scenarios::ops::v4v::sendv_batch_args(
        &mut sim_guest::SimGuest::new(&s, b),
        scenarios::ops::v4v::BatchAt { ents: 0x38000, iovs: 0x38800, payload: 0x39000 },
        &other,
    )
    .unwrap();
    assert_eq!(op(&s, b, OP_SENDV_BATCH, o), err(Errno::EBUSY));
    s.destroy_domain(b).unwrap();
    assert!(!s.hv().v4v.references(b));
    assert_eq!(header(&s, a, G).tx_ptr, 0, "nothing of it published");
    s.machine().set_preempt(Preempt::Never);
    assert_eq!(send(&s, c, 9, a, 1, &[3; 40], 7), 40);
    check(&s);
}

#[test]
fn payloads_read_once_or_each_with_its_message() {
    let (s, a, b, _) = setup();
    assert_eq!(register(&s, a, 1, DOMID_ANY, 4032, G), 0);
    // Payloads side by side: one guest copy for the batch, same bytes.
    let p1 = payload(b, 1, 64);
    let p2 = payload(b, 2, 64);
    let (x, y): ([&[u8]; 1], [&[u8]; 1]) = ([&p1], [&p2]);
    assert_eq!(send_batch(&s, b, &[bmsg(b, 5, a, 1, &x, 1), bmsg(b, 5, a, 1, &y, 2)]), 2);
    let got = drain(&s, a, G, 4032);
    assert_eq!((&got[0].1, &got[1].1), (&p1, &p2));
    // The span of the payloads runs into a hole (the last RAM page, then
    // no RAM): no window, each payload is copied when its message is sent,
    // and the second message's fault stops the batch after the first.
    let last = (PAGES - 1) << 12;
    s.guest_write(b, last, &p1).unwrap();
    let args = batch_args(&s, b, &[bmsg(b, 5, a, 1, &x, 1), bmsg(b, 5, a, 1, &y, 2)]);
    put(&s, b, BATCH_AT.iovs, &Iov { base: last, len: 64, pad: 0 });
    put(&s, b, BATCH_AT.iovs + 16, &Iov { base: PAGES << 12, len: 64, pad: 0 });
    assert_eq!(op(&s, b, OP_SENDV_BATCH, args), 1);
    assert_eq!(batch_status(&s, b, 1), status_err(Errno::EFAULT));
    let got = drain(&s, a, G, 4032);
    assert_eq!((got.len(), &got[0].1), (1, &p1));
    check(&s);
}
