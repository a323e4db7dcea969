//! Concurrency stress: several sender threads (one domain each) and a
//! receiver thread on one ring, while another thread registers and
//! unregisters rings and creates and destroys domains. Every message
//! arrives exactly once, in order per sender, byte-exact, with its true
//! source.
//!
//! `SIM_CASES` sets the messages per sender (default 300), `SIM_SEED` the
//! simulator's seed; the run prints the line that replays it.

mod v4v_util;

use std::sync::atomic::{AtomicBool, Ordering};

use hypercall_abi::ring::RingReader;
use hypercall_abi::v4v::*;
use hypercall_abi::{DomId, Errno};
use simulator::rng::PropRun;
use simulator::Preempt;
use v4v_util::*;

const SENDERS: usize = 4;
const LEN: u32 = 2 * 4096 - 64;

#[test]
fn senders_receiver_and_churn_in_parallel() {
    let pr = PropRun::from_env("simulator", "v4v_stress", "senders_receiver_and_churn_in_parallel", 300);
    let msgs = pr.cases;
    let s = sim(1 << 13, pr.seed);
    s.machine().set_preempt(Preempt::OneIn(4));
    let rx = dom(&s, 64);
    let senders: Vec<DomId> = (0..SENDERS).map(|_| dom(&s, 64)).collect();
    assert_eq!(register(&s, rx, 1, DOMID_ANY, LEN, RING_GFN0), 0);
    let done = AtomicBool::new(false);
    std::thread::scope(|t| {
        for (i, &d) in senders.iter().enumerate() {
            let s = &s;
            t.spawn(move || {
                for seq in 0..msgs {
                    // Sizes up to more than one copy chunk, to interleave steps.
                    let len = (seq as usize * 37 + i * 101) % 5000;
                    let p = payload(d, seq, len.max(6));
                    loop {
                        match send(s, d, i as u32, rx, 1, &p, seq) {
                            r if r == p.len() as i64 => break,
                            r if r == err(Errno::EAGAIN) => std::thread::yield_now(),
                            r => panic!("sender {i} seq {seq}: {r}"),
                        }
                    }
                }
            });
        }
        let churn = &s;
        let done_ref = &done;
        t.spawn(move || {
            let mut n = 0u32;
            while !done_ref.load(Ordering::Relaxed) {
                let c = dom(churn, 32);
                assert_eq!(register(churn, c, 1, DOMID_ANY, 256, RING_GFN0), 0);
                assert_eq!(register(churn, rx, 100 + n % 4, c.0, 256, RING_GFN0 + 4 + (n % 4) as u64), 0);
                assert_eq!(send(churn, rx, 1, c, 1, &[1; 20], 0), 20);
                if n.is_multiple_of(2) {
                    assert_eq!(unregister(churn, rx, 100 + n % 4, c.0), 0);
                }
                // Otherwise the partner ring is torn down by c's death.
                churn.destroy_domain(c).unwrap();
                n += 1;
            }
        });
        let s = &s;
        let done = &done;
        let senders = &senders;
        t.spawn(move || {
            let mut next = [0u32; SENDERS];
            let mut reader = RingReader::new(guest_ring(s, rx, RING_GFN0 << 12), LEN).unwrap();
            let mut buf = vec![0u8; LEN as usize];
            let mut got = 0;
            while got < SENDERS as u32 * msgs {
                match reader.recv(&mut buf).unwrap() {
                    Some(m) => {
                        let i = senders.iter().position(|&d| d.0 == m.header.source.domain).expect("true source");
                        assert_eq!(m.header.source.port, i as u32);
                        assert_eq!(m.header.msg_type, next[i], "in order from sender {i}");
                        let p = payload(senders[i], next[i], m.header.len as usize);
                        assert!(buf[..m.header.len as usize] == p[..], "byte-exact");
                        next[i] += 1;
                        got += 1;
                    }
                    None => {
                        // Tell Xen we consumed: wakes senders waiting for space.
                        assert_eq!(op(s, rx, OP_NOTIFY, [0; 4]), 0);
                        std::thread::yield_now();
                    }
                }
            }
            assert_eq!(reader.recv(&mut buf).unwrap(), None, "exactly once");
            done.store(true, Ordering::Relaxed);
        });
    });
    check(&s);
    let (_, i, _) = info(&s, rx, None);
    assert_eq!(i.msgs_received, SENDERS as u64 * u64::from(msgs));
    for d in senders.iter().chain([&rx]) {
        s.destroy_domain(*d).unwrap();
    }
    assert_eq!(s.hv().v4v.pinned_pages(), 0);
    check(&s);
}
