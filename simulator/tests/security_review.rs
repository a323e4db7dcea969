//! Regression tests for the security review of the hypervisor side (issue
//! 13). Each test is named after the finding it proves fixed and failed
//! before the fix.

mod sshm_common;
mod v4v_util;

use hypercall_abi::v4v::*;
use hypercall_abi::{Errno, Gfn, PAGE_SIZE};
use simulator::DomainKind;
use v4v_util::*;

/// The last page of the 64-bit address space, where a guest kernel may
/// well keep a hypercall buffer.
const TOP_PAGE: u64 = 0u64.wrapping_sub(PAGE_SIZE);
/// A spare RAM page of every test domain, mapped at [`TOP_PAGE`].
const TOP_GFN: u64 = 40;

/// Finding 6: `OP_NOTIFY` computed each entry's address as
/// `base + i * size` unchecked. With overflow checks on (a debug Xen) an
/// entry array that runs off the end of the address space panicked the
/// host; without them it wrapped to address 0. Now an array that ends
/// exactly at 2^64 works and one that would pass it is `-EFAULT`.
#[test]
fn finding_06_notify_entry_address_overflow() {
    let s = sim(4096, 0x0006);
    let a = dom(&s, 64);
    s.map_guest_linear(a, TOP_PAGE, Gfn(TOP_GFN)).unwrap();
    let ent_bytes = RingDataEnt::SIZE as u64;
    let fit = (PAGE_SIZE - RingData::SIZE as u64) / ent_bytes;
    assert_eq!(RingData::SIZE as u64 + fit * ent_bytes, PAGE_SIZE, "the entries end exactly at 2^64");
    // Every entry names a ring nobody registered: answered "no ring".
    let e = query(a, 9, 16, false);
    for i in 0..fit {
        put(&s, a, TOP_PAGE + RingData::SIZE as u64 + i * ent_bytes, &e);
    }
    put(&s, a, TOP_PAGE, &RingData { nent: fit as u32, pad: 0, reserved: 0 });
    assert_eq!(op(&s, a, OP_NOTIFY, [TOP_PAGE, 0, 0, 0]), 0, "the last entry ends at 2^64");
    put(&s, a, TOP_PAGE, &RingData { nent: fit as u32 + 1, pad: 0, reserved: 0 });
    assert_eq!(op(&s, a, OP_NOTIFY, [TOP_PAGE, 0, 0, 0]), err(Errno::EFAULT), "one entry past 2^64");
    check(&s);
}

/// Finding 6, `OP_FW_LIST`: the rules were copied out to
/// `args[0] + i * size` unchecked.
#[test]
fn finding_06_fw_list_address_overflow() {
    let s = sim(4096, 0x0006);
    let ctl = s.create_domain(DomainKind::Pvh, 64, true).unwrap();
    s.map_guest_linear(ctl, TOP_PAGE, Gfn(TOP_GFN)).unwrap();
    for port in 0..3 {
        let r = FwRule {
            src_domain: DOMID_ANY,
            dst_domain: DOMID_ANY,
            src_port: port,
            dst_port: PORT_ANY,
            action: FW_REJECT,
        };
        put(&s, ctl, ARG, &r);
        assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, u64::MAX, 0, 0]), 0);
    }
    let rule_bytes = FwRule::SIZE as u64;
    // Two rules fit below 2^64: listing two is fine, three is not.
    let at = 0u64.wrapping_sub(2 * rule_bytes);
    assert_eq!(op(&s, ctl, OP_FW_LIST, [at, 0, 2, 0]), 3);
    assert_eq!(get::<FwRule>(&s, ctl, at + rule_bytes).src_port, 1);
    assert_eq!(op(&s, ctl, OP_FW_LIST, [at, 0, 3, 0]), err(Errno::EFAULT));
    check(&s);
}

/// The simulator's side of the above: a guest-linear mapping of the last
/// page is reachable up to its last byte and no further.
#[test]
fn finding_06_simulator_models_the_top_of_the_address_space() {
    let s = sim(4096, 0x0006);
    let a = dom(&s, 64);
    assert_eq!(s.guest_write(a, TOP_PAGE, &[1]), Err(Errno::EFAULT), "unmapped");
    s.map_guest_linear(a, TOP_PAGE, Gfn(TOP_GFN)).unwrap();
    s.guest_write(a, u64::MAX, &[7]).unwrap();
    let mut b = [0u8; 1];
    s.guest_read(a, (TOP_GFN + 1) * PAGE_SIZE - 1, &mut b).unwrap();
    assert_eq!(b, [7], "the same page through its gfn");
    assert_eq!(s.guest_write(a, u64::MAX, &[7, 7]), Err(Errno::EFAULT), "past 2^64");
}

/// Finding 10: `OP_INFO` gave every guest the system-wide message and byte
/// totals, a side channel on other tenants' traffic. Only the control
/// domain sees them now; others get 0 and their own figures.
#[test]
fn finding_10_info_global_totals_for_control_domain_only() {
    let s = sim(4096, 0x0010);
    let ctl = s.create_domain(DomainKind::Pvh, 64, true).unwrap();
    let (a, b, c) = (dom(&s, 64), dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, 256, RING_GFN0), 0);
    for _ in 0..3 {
        assert_eq!(send(&s, b, 1, a, 1, &[0; 10], 0), 10);
    }
    // A bystander learns nothing of a's and b's traffic.
    let (r, ic, _) = info(&s, c, None);
    assert_eq!(r, 0);
    assert_eq!((ic.global_msgs, ic.global_bytes, ic.msgs_sent), (0, 0, 0));
    // The sender still sees its own figures, not the totals.
    let (_, ib, _) = info(&s, b, None);
    assert_eq!((ib.msgs_sent, ib.bytes_sent, ib.global_msgs, ib.global_bytes), (3, 30, 0, 0));
    // The control domain sees the totals.
    let (_, ix, _) = info(&s, ctl, None);
    assert_eq!((ix.global_msgs, ix.global_bytes), (3, 30));
    check(&s);
}

fn fw_rule(src: u16, dst: u16, action: u32) -> FwRule {
    FwRule { src_domain: src, dst_domain: dst, src_port: PORT_ANY, dst_port: PORT_ANY, action }
}

fn fw_list(s: &simulator::Sim, ctl: hypercall_abi::DomId) -> Vec<FwRule> {
    let n = op(s, ctl, OP_FW_LIST, [0x4000, 0, FW_RULES_MAX as u64, 0]);
    assert!(n >= 0, "{n}");
    (0..n as u64).map(|i| get(s, ctl, 0x4000 + i * FwRule::SIZE as u64)).collect()
}

/// Finding 9: firewall rules are keyed by domid and were never dropped, so
/// a new domain reusing a dead one's id inherited its rules. Rules naming a
/// domain (as source or destination) now go when it dies, and a rule can
/// only name a domain that exists.
#[test]
fn finding_09_firewall_rules_go_with_their_domain() {
    let s = sim(4096, 0x0009);
    let ctl = s.create_domain(DomainKind::Pvh, 64, true).unwrap();
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    let rules = [
        fw_rule(b.0, DOMID_ANY, FW_REJECT),
        fw_rule(a.0, b.0, FW_ACCEPT),
        fw_rule(DOMID_ANY, a.0, FW_REJECT),
        fw_rule(DOMID_ANY, DOMID_ANY, FW_ACCEPT),
    ];
    for r in &rules {
        put(&s, ctl, ARG, r);
        assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, u64::MAX, 0, 0]), 0);
    }
    assert_eq!(fw_list(&s, ctl), rules);
    s.destroy_domain(b).unwrap();
    assert_eq!(fw_list(&s, ctl), [rules[2], rules[3]], "b's rules went with it");
    // A rule naming no live domain would wait for whoever gets the id next.
    for r in [fw_rule(b.0, DOMID_ANY, FW_REJECT), fw_rule(DOMID_ANY, 777, FW_REJECT)] {
        put(&s, ctl, ARG, &r);
        assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), err(Errno::ESRCH));
    }
    assert_eq!(fw_list(&s, ctl).len(), 2);
    assert!(!s.hv().v4v.references(b));
    check(&s);
}

/// Finding 5: all rings lived in one table of `RINGS_GLOBAL_MAX` = 1024
/// slots, so 8 domains at their per-domain cap of 128 filled it and every
/// other domain got `-ENOSPC`. There is no global table to fill now: each
/// tenant is held to its own cap, and a victim registers (and receives)
/// whatever the others did.
#[test]
fn finding_05_tenants_cannot_fill_a_global_ring_table() {
    let s = sim(1 << 13, 0x0005);
    let per = RINGS_PER_DOMAIN_MAX as u64;
    let ram = RING_GFN0 + per + 8;
    let tenants: Vec<_> = (0..9).map(|_| dom(&s, ram)).collect();
    for (n, &t) in tenants.iter().enumerate() {
        for port in 0..per {
            let r = register(&s, t, port as u32, DOMID_ANY, RING_LEN_MIN, RING_GFN0 + port);
            assert_eq!(r, 0, "tenant {n} ring {port}");
        }
        // The per-domain cap still holds.
        assert_eq!(register(&s, t, per as u32, DOMID_ANY, RING_LEN_MIN, RING_GFN0 + per), err(Errno::ENOSPC));
        assert_eq!(s.hv().v4v.nr_rings(t), RINGS_PER_DOMAIN_MAX);
    }
    let victim = dom(&s, 64);
    let sender = dom(&s, 64);
    assert_eq!(register(&s, victim, 7, DOMID_ANY, 256, RING_GFN0), 0, "the victim still gets a ring");
    assert_eq!(send(&s, sender, 1, victim, 7, b"hello", 0), 5);
    assert_eq!(drain(&s, victim, RING_GFN0, 256).len(), 1);
    check(&s);
    for t in tenants {
        s.destroy_domain(t).unwrap();
    }
    check(&s);
    assert_eq!(s.hv().v4v.pinned_pages(), 1);
}

/// Finding 7: the shim cleared a freed sshm frame only if its count was
/// exactly 1. A transient reference held at that moment (another Xen path,
/// a PV guest's `get_page`) skipped the clear, and the heap does not scrub
/// for the never-dying pseudo-domain: the region's data went back to the
/// heap for the next owner. Freed sshm frames are now cleared whatever
/// their count.
#[test]
fn finding_07_sshm_frames_scrubbed_whatever_their_count() {
    use hypercall_abi::sshm::PROT_RW;
    let env = sshm_common::Env::small(0x0007);
    let g = env.guest(DomainKind::Hvm, 64);
    let gfn = sshm_common::SHM_GFN;
    env.call(g, &sshm_common::open("secret", 2, gfn, PROT_RW, false)).unwrap();
    env.poke(g, gfn, 8, 0x5ec2e7).unwrap();
    env.poke(g, gfn + 1, 8, 0x5ec2e7).unwrap();
    let (mfn, _) = env.sim.machine().p2m_lookup(g, Gfn(gfn)).unwrap();
    // Someone holds the first frame for a moment while the region goes.
    env.sim.machine().page_get_transient(mfn).unwrap();
    env.call(g, &sshm_common::detach("secret", gfn)).unwrap();
    assert_eq!(env.sim.hv().sshm.stats().regions, 0, "a transient region goes with its last attachment");
    env.sim.machine().page_put_transient(mfn);
    // Both frames are back in the heap, and neither holds the data.
    assert_eq!(env.sim.machine().frame(mfn).map(|f| f.count), Some(0));
    env.check().unwrap();
    env.sim.check().unwrap();
}

/// Finding 11: `p2m_add_sshm_entry` assumed a failed `p2m_set_entry` wrote
/// nothing and dropped every reference. Xen's `p2m_set_entry` may write a
/// 2 MiB request as 4 KiB entries and fail part way (out of p2m pages);
/// the written entries then mapped frames without a reference, which the
/// region's free would hand back to the heap while the guest still maps
/// them. As `p2m_add_page` does, the entries actually written are now
/// found and undone before the references go: the attach fails with
/// nothing mapped and nothing leaked, and a retry succeeds.
#[test]
fn finding_11_partial_p2m_insert_is_undone() {
    use hypercall_abi::sshm::PROT_RW;
    let env = sshm_common::Env::small(0x0011);
    let g = env.guest(DomainKind::Hvm, 64);
    let gfn = 0x1000; // 2 MiB aligned: one order-9 entry.
    env.create("big", 512, PROT_RW, true).unwrap();
    env.sim.machine().set_p2m_insert_fault(Some(100));
    let a = sshm_common::attach("big", 512, 0, gfn, PROT_RW);
    assert_eq!(env.call(g, &a), Err(Errno::ENOMEM));
    for i in [0, 99, 100, 511] {
        assert_eq!(env.sim.machine().p2m_lookup(g, Gfn(gfn + i)), None, "gfn +{i} left mapped");
    }
    env.check().unwrap();
    env.sim.check().unwrap();
    assert_eq!(env.call(g, &a), Ok(0), "a retry maps it whole");
    env.call(g, &sshm_common::detach("big", gfn)).unwrap();
    env.call(env.dom0, &sshm_common::unlink("big")).unwrap();
    env.sim.check().unwrap();
}

/// Finding 4: a 2 MiB sshm entry removed in one `p2m_set_entry` is checked
/// against the other p2m views by its first gfn only, so a guest with
/// altp2m that had changed that gfn in its view kept the other 511 mapped
/// after detach. Domains that may have alternate or nested p2m views are
/// refused at attach with `-EOPNOTSUPP` (as upstream refuses them foreign
/// mappings); a create-or-open leaves no region behind, and what was
/// attached before can still be detached.
#[test]
fn finding_04_attach_refused_with_altp2m_or_nested_virt() {
    use hypercall_abi::sshm::PROT_RW;
    let env = sshm_common::Env::small(0x0004);
    let gfn = 0x1000;
    for (altp2m, nested) in [(true, false), (false, true), (true, true)] {
        let g = env.guest(DomainKind::Hvm, 64);
        env.sim.set_p2m_views(g, altp2m, nested).unwrap();
        let open = sshm_common::open("views", 512, gfn, PROT_RW, false);
        assert_eq!(env.call(g, &open), Err(Errno::EOPNOTSUPP), "altp2m {altp2m} nested {nested}");
        assert_eq!(env.info("views"), Err(Errno::ENOENT), "no region left behind");
        assert_eq!(env.sim.machine().p2m_lookup(g, Gfn(gfn)), None);
    }
    // Attached first, altp2m turned on by the toolstack afterwards: the
    // attachment can still be taken down.
    let g = env.guest(DomainKind::Hvm, 64);
    env.call(g, &sshm_common::open("views", 512, gfn, PROT_RW, false)).unwrap();
    env.sim.set_p2m_views(g, true, false).unwrap();
    let again = sshm_common::attach("views", 1, 0, gfn + 512, PROT_RW);
    assert_eq!(env.call(g, &again), Err(Errno::EOPNOTSUPP));
    env.call(g, &sshm_common::detach("views", gfn)).unwrap();
    assert_eq!(env.sim.machine().p2m_lookup(g, Gfn(gfn)), None);
    env.sim.check().unwrap();
}

/// `VIRQ_V4V` raised on `d` so far.
fn virqs(s: &simulator::Sim, d: hypercall_abi::DomId) -> u64 {
    s.machine().virq_count(d, hypercall_abi::VIRQ_V4V)
}

/// The liveness rule: every waiter (a sender queued by `-EAGAIN`, a notify
/// with a wake request) is woken exactly once whenever what blocked it
/// goes, whatever the reason. The domain-kill hook dropped the waiters of
/// the rings it tore down and the reservation of a dying sender without
/// waking anyone, so those waiters slept forever.
#[test]
fn liveness_every_waiter_woken_exactly_once() {
    let s = sim(1 << 13, 0x11fe);
    let len = 8 * 4096 - 64;

    // 1. A ring gone with its owner: its waiters are told to look again.
    let (o, w1, w2) = (dom(&s, 64), dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, o, 1, DOMID_ANY, 256, RING_GFN0), 0);
    assert_eq!(send(&s, w1, 1, o, 1, &[0; 200], 0), 208 - 8, "fills most of the ring");
    assert_eq!(send(&s, w1, 1, o, 1, &[0; 100], 0), err(Errno::EAGAIN), "w1 queued");
    let (r, out) = notify(&s, w2, &[query(o, 1, 100, true)]);
    assert_eq!((r, out[0].flags & RD_F_PENDING), (0, RD_F_PENDING), "w2 queued");
    let before = (virqs(&s, w1), virqs(&s, w2));
    s.destroy_domain(o).unwrap();
    assert_eq!((virqs(&s, w1), virqs(&s, w2)), (before.0 + 1, before.1 + 1), "owner died");
    check(&s);

    // 2. A send in progress cancelled by a fault in the sender's memory, or
    // gone with its sender, releases what it held: since finding 1 a
    // parked send holds no reservation at all, so nobody waits for it (see
    // finding_01_*); a reservation cancelled within a step wakes the
    // waiters it held off (`send_cancel`).

    // 3. A ring unregistered by its owner.
    let (o, w) = (dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, o, 1, DOMID_ANY, len, RING_GFN0), 0);
    assert_eq!(send(&s, w, 1, o, 1, &vec![0; (len - 200) as usize], 0), (len - 200) as i64);
    let (_, out) = notify(&s, w, &[query(o, 1, 1000, true)]);
    assert_eq!(out[0].flags & RD_F_PENDING, RD_F_PENDING);
    let before = virqs(&s, w);
    assert_eq!(unregister(&s, o, 1, DOMID_ANY), 0);
    assert_eq!(virqs(&s, w), before + 1, "ring unregistered");
    // Nobody is left waiting anywhere: no second wake-up comes.
    let (_, out) = notify(&s, w, &[query(o, 1, 1000, false)]);
    assert_eq!(out[0].flags & RD_F_EXISTS, 0);
    s.destroy_domain(o).unwrap();
    assert_eq!(virqs(&s, w), before + 1, "woken exactly once");
    check(&s);
}

/// Finding 2: `domain_soft_reset()` (kexec, crash-kexec) called Argo's
/// hook but nothing of ours, so V4V rings survived it and peers kept
/// writing into pages the new kernel owns. The soft reset hook now drops
/// the domain's own rings (unpinned, never written again), rings naming it
/// as partner, its waiters and its send in progress, and wakes whoever
/// waited on them. Kept on purpose: firewall rules naming it (the
/// toolstack's policy for the VM; a guest must not lift its own
/// restrictions by kexec-ing) and static shared memory attachments (part
/// of the VM's configured physmap, like its RAM: the new kernel finds them
/// as the old one did, and they go at detach or domain death).
#[test]
fn finding_02_soft_reset_drops_v4v_state_keeps_sshm_and_policy() {
    use hypercall_abi::sshm::PROT_RW;
    use simulator::{Preempt, Step};
    let env = sshm_common::Env::small(0x0002);
    let s = &env.sim;
    let ring_len = 8 * 4096 - 64;
    let (a, b, c) = (env.guest(DomainKind::Hvm, 64), env.guest(DomainKind::Hvm, 64), env.guest(DomainKind::Hvm, 64));
    // a's V4V state: its own rings, a ring of b's naming it, a parked send
    // into c's ring, a waiter on its ring.
    assert_eq!(register(s, a, 1, DOMID_ANY, 256, RING_GFN0), 0);
    assert_eq!(register(s, a, 2, b.0, RING_LEN_MIN, RING_GFN0 + 1), 0);
    assert_eq!(register(s, b, 3, a.0, RING_LEN_MIN, RING_GFN0), 0);
    assert_eq!(register(s, c, 4, DOMID_ANY, ring_len, RING_GFN0), 0);
    assert_eq!(send(s, b, 1, a, 1, &[0; 200], 0), 200);
    assert_eq!(send(s, b, 1, a, 1, &[0; 100], 0), err(Errno::EAGAIN), "b waits on a's ring");
    s.machine().set_preempt(Preempt::Always);
    let args = send_args(s, a, 1, c, 4, &payload(a, 0, 9000), 0).unwrap();
    let call = [OP_SENDV as u64, args[0], args[1], args[2], args[3]];
    assert_eq!(s.hypercall_step(a, hypercall_abi::hypercall::V4V_OP, call), Step::Continuation);
    s.machine().set_preempt(Preempt::Never);
    // Policy and shared memory.
    let rule = fw_rule(a.0, c.0, FW_REJECT);
    put(s, env.dom0, 0x8000, &rule);
    assert_eq!(op(s, env.dom0, OP_FW_ADD, [0x8000, 0, 0, 0]), 0);
    env.call(a, &sshm_common::open("kept", 1, sshm_common::SHM_GFN, PROT_RW, true)).unwrap();
    env.poke(a, sshm_common::SHM_GFN, 0, 42).unwrap();
    let b_virqs = virqs(s, b);
    let ring_before = header(s, a, RING_GFN0);

    s.soft_reset_domain(a).unwrap();

    // No ring of a's, or naming a, remains; nothing of a's is pinned.
    assert_eq!(s.hv().v4v.nr_rings(a), 0);
    assert_eq!(s.hv().v4v.nr_rings(b), 0, "b's ring naming a is gone");
    assert_eq!(s.hv().v4v.nr_rings(c), 1);
    assert_eq!(s.hv().v4v.pinned_pages(), pages(ring_len) as usize, "only c's ring is pinned");
    assert_eq!(virqs(s, b), b_virqs + 1, "b, waiting on a's ring, is woken once");
    // Peers no longer write into a's pages.
    assert_eq!(send(s, b, 1, a, 1, &[7; 16], 0), err(Errno::ECONNREFUSED));
    assert_eq!(header(s, a, RING_GFN0).tx_ptr, ring_before.tx_ptr);
    // The parked send is gone: c's ring is free for others, and a resumed
    // call starts afresh (refused by the kept rule).
    assert_eq!(send(s, b, 1, c, 4, &[1; 64], 0), 64);
    assert_eq!(s.hypercall(a, hypercall_abi::hypercall::V4V_OP, call), err(Errno::ECONNREFUSED));
    // Kept: the rule and the attachment with its contents.
    assert_eq!(fw_list(s, env.dom0), [rule]);
    assert_eq!(env.peek(a, sshm_common::SHM_GFN, 0), Ok(42));
    // The new kernel starts V4V afresh.
    assert_eq!(register(s, a, 1, DOMID_ANY, 256, RING_GFN0 + 2), 0);
    assert_eq!(send(s, b, 1, a, 1, b"hi", 0), 2);
    check(s);
    env.sim.check().unwrap();
}

/// Finding 1: a send larger than one step parked its reservation in the
/// ring across the return to the guest, and `free_bytes()` is 0 while a
/// reservation exists: a sender that never re-issued its continuation (or
/// was paused, descheduled, saved) blocked the ring for everyone, and no
/// waiter was woken. No domain holds anything across a return to the guest
/// now: other senders get through while a send is parked, and the parked
/// send still delivers its message whole and exactly once, or fails with
/// an errno and delivers nothing.
#[test]
fn finding_01_parked_send_does_not_block_the_ring() {
    use hypercall_abi::hypercall::V4V_OP;
    use simulator::{Preempt, Step};
    let s = sim(1 << 13, 0x0001);
    let len = 8 * 4096 - 64;
    let (a, p, q) = (dom(&s, 64), dom(&s, 64), dom(&s, 64));
    assert_eq!(register(&s, a, 1, DOMID_ANY, len, RING_GFN0), 0);
    let big = payload(p, 1, 9000);
    let args = send_args(&s, p, 1, a, 1, &big, 0).unwrap();
    let call = [OP_SENDV as u64, args[0], args[1], args[2], args[3]];
    s.machine().set_preempt(Preempt::Always);
    assert_eq!(s.hypercall_step(p, V4V_OP, call), Step::Continuation, "parked after one chunk");
    s.machine().set_preempt(Preempt::Never);

    // p stalls; q is not held up.
    let (_, out) = notify(&s, q, &[query(a, 1, 64, true)]);
    assert_eq!(out[0].flags & (RD_F_SUFFICIENT | RD_F_PENDING), RD_F_SUFFICIENT);
    assert_eq!(send(&s, q, 1, a, 1, &payload(q, 2, 64), 0), 64);
    // p's send completes whole, once, after q's.
    assert_eq!(s.hypercall(p, V4V_OP, call), 9000);
    let got = drain(&s, a, RING_GFN0, len);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0.source.domain, got[0].1.len()), (q.0, 64));
    assert_eq!(got[1].0.source.domain, p.0);
    assert!(got[1].1 == big, "byte-exact");
    check(&s);

    // p parks again and q fills the ring meanwhile: p's send no longer
    // fits and fails with -EAGAIN, delivering nothing.
    s.machine().set_preempt(Preempt::Always);
    assert_eq!(s.hypercall_step(p, V4V_OP, call), Step::Continuation);
    s.machine().set_preempt(Preempt::Never);
    let fill = (len - 9000) as usize;
    assert_eq!(send(&s, q, 1, a, 1, &vec![3; fill], 0), fill as i64);
    assert_eq!(s.hypercall(p, V4V_OP, call), err(Errno::EAGAIN));
    let got = drain(&s, a, RING_GFN0, len);
    assert_eq!(got.len(), 1, "nothing of p's");
    assert_eq!(got[0].0.source.domain, q.0);
    // And once there is room again it goes through whole.
    assert_eq!(s.hypercall(p, V4V_OP, call), 9000);
    let got = drain(&s, a, RING_GFN0, len);
    assert!(got.len() == 1 && got[0].1 == big);
    check(&s);
}

/// Finding 3, domain death: `Sshm::domain_destroy` unmapped every
/// attachment in one go inside `domain_kill` (under the sshm and domctl
/// locks; with shadow paging each removal walks the guest-sized shadow
/// table), and V4V's teardown held its global lock across every ring. The
/// kill hook now runs in bounded steps from `domain_kill`'s relinquish path,
/// returning `-ERESTART` between them: this counts the work of each step.
#[test]
fn finding_03_domain_teardown_is_bounded_per_step() {
    use hypercall_abi::sshm::PROT_RW;
    use rust_hv::sshm::BATCH_ENTRIES_MAX;
    use rust_hv::v4v::TEARDOWN_STEP_MAX;
    let env = sshm_common::Env::small(0x0003);
    let s = &env.sim;
    s.machine().set_preempt(simulator::Preempt::Never);
    let big = RING_LEN_MAX;
    let ring_pages = pages(big);
    let g = env.guest(DomainKind::Hvm, RING_GFN0 + 2 * ring_pages + 16);
    let peer = env.guest(DomainKind::Hvm, 64);
    // Two regions of 2048 pages, each attached as 2047 4 KiB entries.
    for (n, name) in ["t0", "t1"].into_iter().enumerate() {
        env.create(name, 2048, PROT_RW, true).unwrap();
        let gfn = 0x10_0000 + n as u64 * 0x1000;
        env.call(g, &sshm_common::attach(name, 2047, 1, gfn, PROT_RW)).unwrap();
    }
    // Two maximum-size rings (4097 pages each) and a peer's ring naming g.
    for (i, gfn) in [RING_GFN0, RING_GFN0 + ring_pages].into_iter().enumerate() {
        prepare_ring(s, g, gfn, big, 0);
        let list: Vec<u64> = (gfn..gfn + ring_pages).collect();
        let reg = RegisterRing { port: i as u32, partner: DOMID_ANY, len: big, ..Default::default() };
        assert_eq!(register_raw(s, g, reg, &list, ring_pages, 0), 0);
    }
    assert_eq!(register(s, peer, 9, g.0, RING_LEN_MIN, RING_GFN0), 0);
    let entries: u64 = 2 * 2047;
    let pinned = 2 * ring_pages + 1;
    assert_eq!(s.hv().v4v.pinned_pages() as u64, pinned);

    let mut steps = 0u64;
    loop {
        let before = s.machine().work();
        let done = s.destroy_domain_step(g).unwrap();
        let after = s.machine().work();
        steps += 1;
        let (removes, unpins) = (after.p2m_removes - before.p2m_removes, after.unpins - before.unpins);
        assert!(removes <= BATCH_ENTRIES_MAX, "step {steps}: {removes} p2m removals");
        assert!(unpins as usize <= TEARDOWN_STEP_MAX + RING_PAGES_MAX as usize + 1, "step {steps}: {unpins} unpins");
        if done {
            break;
        }
    }
    assert!(steps > entries.div_ceil(BATCH_ENTRIES_MAX), "{steps} steps");
    assert_eq!(s.hv().sshm.stats().attachments, 0);
    assert_eq!(s.hv().v4v.pinned_pages(), 0);
    assert!(!s.hv().v4v.references(g));
    assert_eq!(s.domain_state(g), Some(simulator::DomainState::Dead));
    check(s);
    env.sim.check().unwrap();
}

/// Finding 3, a failed attach: it used to roll back everything it had
/// mapped (in this call and all earlier continuations) in one go under the
/// sshm lock. The rollback now continues in bounded steps and the attach
/// then fails with the original errno, leaving nothing mapped.
#[test]
fn finding_03_attach_rollback_is_bounded_per_step() {
    use hypercall_abi::sshm::PROT_RW;
    use rust_hv::platform::P2mKind;
    use rust_hv::sshm::BATCH_ENTRIES_MAX;
    use rust_hv::Platform;
    use simulator::Step;
    let env = sshm_common::Env::small(0x0033);
    let s = &env.sim;
    s.machine().set_preempt(simulator::Preempt::Never);
    let g = env.guest(DomainKind::Hvm, 64);
    let gfn = 0x10_0000;
    // Something already sits at the attach's last gfn: the attach maps
    // 2046 entries, then meets it (-EBUSY) and rolls back.
    let m = s.machine();
    let h = m.domain(g).unwrap();
    let other = m.sshm_alloc(0).unwrap();
    m.p2m_insert(&h, Gfn(gfn + 2046), other, 0, P2mKind::SharedRw).unwrap();
    env.create("rb", 2048, PROT_RW, true).unwrap();
    env.stepped(g, &sshm_common::attach("rb", 2047, 1, gfn, PROT_RW));
    let mut steps = 0;
    let r = loop {
        let before = m.work();
        let step = env.step();
        let removes = m.work().p2m_removes - before.p2m_removes;
        assert!(removes <= BATCH_ENTRIES_MAX, "step {steps}: {removes} removals");
        steps += 1;
        if let Step::Done(r) = step {
            break r;
        }
    };
    assert_eq!(r, err(Errno::EBUSY));
    // 8 steps to map 2046 entries, 8 to unmap them (the first in the step
    // that failed).
    assert_eq!(steps, 2 * 2046u64.div_ceil(BATCH_ENTRIES_MAX) - 1);
    assert_eq!(m.p2m_lookup(g, Gfn(gfn)), None);
    assert_eq!(s.hv().sshm.stats().attachments, 0);
    m.p2m_remove(&h, Gfn(gfn + 2046), other, 0).unwrap();
    m.sshm_free(other, 0);
    env.sim.check().unwrap();
}

/// Finding 3, regions: creating a region allocated (and cleared) all its
/// backing, up to the region cap, under the sshm lock, also through
/// create-or-open attach; freeing one cleared it all under the lock too.
/// Both are now done with the lock dropped: the region takes its name and
/// room under it, each chunk is allocated without it and added under it;
/// freed chunks are given back with it released (in bounded steps: see
/// `finding_03_region_creation_is_bounded_per_step` and
/// `finding_03_region_release_is_bounded_per_step`).
#[test]
fn finding_03_region_work_outside_the_sshm_lock() {
    use hypercall_abi::sshm::PROT_RW;
    let env = sshm_common::Env::small(0x0333);
    let s = &env.sim;
    let g = env.guest(DomainKind::Hvm, 64);
    env.create("made", 2048, PROT_RW, false).unwrap();
    env.call(g, &sshm_common::open("opened", 1024, 0x10_0000, PROT_RW, false)).unwrap();
    env.call(g, &sshm_common::attach("made", 16, 0, 0x20_0000, PROT_RW)).unwrap();
    // A create of a taken name allocates nothing.
    assert_eq!(env.create("made", 8, PROT_RW, false), Err(Errno::EEXIST));
    env.call(g, &sshm_common::detach("opened", 0x10_0000)).unwrap();
    env.call(env.dom0, &sshm_common::unlink("made")).unwrap();
    s.destroy_domain(g).unwrap();
    assert_eq!(s.hv().sshm.stats(), Default::default());
    let w = s.machine().work();
    assert!(w.sshm_allocs >= 2 * 2 && w.sshm_frees >= 2 * 2, "{w:?}");
    assert_eq!((w.sshm_allocs_locked, w.sshm_frees_locked), (0, 0), "{w:?}");
    env.sim.check().unwrap();
}

/// Finding 8, V4V: the firewall sub-ops had no XSM hook (only a hard-coded
/// control-domain check), so a FLASK policy could neither grant nor refuse
/// them. They now ask `xsm_v4v_firewall` (dummy policy: the control domain
/// only, `-EPERM`), whose FLASK permission is `v4v:firewall` on Xen.
#[test]
fn finding_08_firewall_ops_ask_xsm() {
    use simulator::XsmHook;
    let s = sim(4096, 0x0008);
    let ctl = s.create_domain(DomainKind::Pvh, 64, true).unwrap();
    let a = dom(&s, 64);
    let rule = fw_rule(a.0, DOMID_ANY, FW_REJECT);
    put(&s, ctl, ARG, &rule);
    put(&s, a, ARG, &rule);
    // The dummy policy.
    assert_eq!(op(&s, a, OP_FW_ADD, [ARG, 0, 0, 0]), err(Errno::EPERM));
    assert_eq!(s.machine().xsm_v4v_firewall_last(), Some(a));
    assert_eq!(op(&s, ctl, OP_FW_ADD, [ARG, 0, 0, 0]), 0);
    // A policy that refuses even the control domain is obeyed, for every
    // firewall sub-op, before anything is read or changed.
    s.machine().set_xsm_deny(XsmHook::V4vFirewall, Some(Errno::EACCES));
    for cmd in [OP_FW_ADD, OP_FW_DEL, OP_FW_LIST] {
        let args = if cmd == OP_FW_LIST { [0x4000, 0, 1, 0] } else { [ARG, 0, 0, 0] };
        assert_eq!(op(&s, ctl, cmd, args), err(Errno::EACCES), "cmd {cmd}");
    }
    s.machine().set_xsm_deny(XsmHook::V4vFirewall, None);
    assert_eq!(fw_list(&s, ctl), [rule]);
    check(&s);
}

/// Finding 8, static shared memory: one `static_shm` permission on the
/// envelope domain gated everything, so a caller allowed to manage one
/// guest could create, unlink, list and inspect every tenant's regions and
/// attach any of them into its guest. The regions belong to the sshm
/// pseudo-domain; every sub-op that touches them (all but detach) now also
/// asks the policy about that (`xsm_domctl` on `dom_sshm`: FLASK
/// `domain2:static_shm` on its label), so an attach is checked against both
/// its target and the regions.
#[test]
fn finding_08_sshm_sub_ops_checked_against_the_regions() {
    use hypercall_abi::sshm::{OP_INFO, OP_LIST, PROT_RW};
    use simulator::XsmHook;
    let env = sshm_common::Env::small(0x0088);
    let m = env.sim.machine();
    let g = env.guest(DomainKind::Hvm, 64);
    env.create("mine", 4, PROT_RW, true).unwrap();
    env.call(g, &sshm_common::attach("mine", 4, 0, sshm_common::SHM_GFN, PROT_RW)).unwrap();
    let asked = m.xsm_sshm_regions_asked();
    assert!(asked >= 2, "create and attach asked");
    // A policy under which this toolstack may manage g but not the regions.
    m.set_xsm_deny(XsmHook::SshmRegions, Some(Errno::EACCES));
    let info = hypercall_abi::sshm::StaticShm { buffer: sshm_common::BUF_GPA, ..sshm_common::op(OP_INFO, "mine") };
    let list = hypercall_abi::sshm::StaticShm {
        op: OP_LIST,
        buffer: sshm_common::BUF_GPA,
        nr_entries: 1,
        ..Default::default()
    };
    for (what, target, o) in [
        ("create", env.dom0, sshm_common::create("other", 4, PROT_RW, true)),
        ("open", g, sshm_common::attach("mine", 1, 0, sshm_common::SHM_GFN + 8, PROT_RW)),
        ("create-or-open", g, sshm_common::open("new", 1, sshm_common::SHM_GFN + 16, PROT_RW, false)),
        ("unlink", env.dom0, sshm_common::unlink("mine")),
        ("info", env.dom0, info),
        ("list", env.dom0, list),
    ] {
        assert_eq!(env.call(target, &o), Err(Errno::EACCES), "{what}");
    }
    // Detach touches only the target's own attachment.
    env.call(g, &sshm_common::detach("mine", sshm_common::SHM_GFN)).unwrap();
    m.set_xsm_deny(XsmHook::SshmRegions, None);
    assert_eq!(env.info("mine").map(|e| e.nr_attachments), Ok(0), "nothing changed meanwhile");
    env.sim.check().unwrap();
}

/// A machine of 128 MiB whose sshm cap is 32 MiB, one region of it at most:
/// room for regions several build and release steps long.
fn region_env(seed: u64) -> sshm_common::Env {
    let limits = rust_hv::sshm::Limits { total_pages_max: 8192, region_pages_max: 8192, regions_max: 8 };
    let env = sshm_common::Env::new(seed, 32768, limits);
    env.sim.machine().set_preempt(simulator::Preempt::Never);
    env
}

/// Runs the stepped unlink or detach (see `Env::stepped`) to the end: every
/// step gives back at most `RELEASE_PAGES_STEP` pages, and every
/// continuation is one giving back what it freed (`PROGRESS_RELEASING`);
/// `between` runs after each. Returns the number of steps.
fn steps_releasing(env: &sshm_common::Env, mut between: impl FnMut()) -> u64 {
    use hypercall_abi::sshm::{PROGRESS_RELEASING, RELEASE_PAGES_STEP};
    use simulator::Step;
    let m = env.sim.machine();
    let mut steps = 0;
    loop {
        let before = m.sshm_pages();
        let step = env.step();
        steps += 1;
        assert!(before - m.sshm_pages() <= RELEASE_PAGES_STEP, "step {steps}");
        if step == Step::Done(0) {
            return steps;
        }
        assert_eq!(step, Step::Continuation);
        assert_eq!(env.stepped_op().progress, PROGRESS_RELEASING);
        between();
    }
}

/// Finding 3, creating a region: all its backing was allocated and cleared
/// in one hypercall (about 90 M instructions for 1 GiB under QEMU, up to a
/// 4 GiB region), by `OP_CREATE` or a create-or-open attach. A region is
/// now built in steps of at most `BUILD_PAGES_STEP` pages with a
/// continuation between them (`progress`: pages built); while it is built
/// it holds its name, is listed with `F_BUILDING` and cannot be attached.
#[test]
fn finding_03_region_creation_is_bounded_per_step() {
    use hypercall_abi::sshm::{BUILD_PAGES_STEP, F_BUILDING, F_PERSISTENT, PROT_RW};
    use simulator::Step;
    let env = region_env(0x0313);
    let m = env.sim.machine();
    let nr = 4 * BUILD_PAGES_STEP;
    env.stepped(env.dom0, &sshm_common::create("big", nr, PROT_RW, true));
    let mut steps = 0;
    loop {
        let before = m.sshm_pages();
        let step = env.step();
        let built = m.sshm_pages() - before;
        steps += 1;
        assert!(built <= BUILD_PAGES_STEP, "step {steps}: {built} pages");
        if step == Step::Done(0) {
            break;
        }
        assert_eq!(step, Step::Continuation);
        assert_eq!(env.stepped_op().progress, steps * BUILD_PAGES_STEP);
        let e = env.info("big").expect("listed while built");
        assert_eq!((e.nr_pages, e.flags), (nr, F_PERSISTENT | F_BUILDING));
        assert_eq!(env.create("big", nr, PROT_RW, true), Err(Errno::EEXIST), "the name is taken");
        env.check().unwrap();
    }
    assert_eq!(steps, 4);
    assert_eq!(env.info("big").unwrap().flags, F_PERSISTENT);
    assert_eq!(m.sshm_pages(), nr);
    env.check().unwrap();
}

/// Continuing a create: an attach of a half-built region builds the rest
/// (then the creator's continuation finds it whole: done); an unlink cancels
/// it (`-ENOENT`, everything given back); a continuation whose attributes
/// are not the region's is `-EEXIST`; a heap that runs dry removes the
/// half-built region (`-ENOMEM`, all or nothing).
#[test]
fn finding_03_region_creation_continued_attached_or_cancelled() {
    use hypercall_abi::sshm::{StaticShm, BUILD_PAGES_STEP, PROT_READ, PROT_RW};
    use simulator::{Faults, Step, Trigger};
    let nr = 4 * BUILD_PAGES_STEP;
    for race in ["attach", "unlink", "tamper", "enomem"] {
        let env = region_env(0x0323);
        let m = env.sim.machine();
        let g = env.guest(DomainKind::Hvm, 64);
        env.stepped(env.dom0, &sshm_common::create("half", nr, PROT_RW, false));
        assert_eq!(env.step(), Step::Continuation);
        match race {
            "attach" => {
                assert_eq!(env.call(g, &sshm_common::attach("half", 16, 0, 0x10_0000, PROT_RW)), Ok(0));
                assert_eq!(m.sshm_pages(), nr, "the attach built the rest");
                assert_eq!(env.step(), Step::Done(0));
                assert_eq!(env.poke(g, 0x10_0000, 0, 5), Ok(()));
                assert_eq!(env.call(g, &sshm_common::detach("half", 0x10_0000)), Ok(0));
            }
            "unlink" => {
                assert_eq!(env.call(env.dom0, &sshm_common::unlink("half")), Ok(0));
                assert_eq!(env.step(), Step::Done(Errno::ENOENT.to_ret()));
            }
            "tamper" => {
                let t = env.stepped_op();
                env.set_stepped_op(env.dom0, &StaticShm { prot: PROT_READ, ..t });
                assert_eq!(env.step(), Step::Done(Errno::EEXIST.to_ret()));
                env.set_stepped_op(env.dom0, &StaticShm { nr_pages: nr + 1, ..t });
                assert_eq!(env.step(), Step::Done(Errno::EEXIST.to_ret()));
                env.set_stepped_op(env.dom0, &StaticShm { name: sshm_common::name("other"), ..t });
                assert_eq!(env.step(), Step::Done(Errno::ENOENT.to_ret()));
                assert_eq!(env.call(env.dom0, &sshm_common::unlink("half")), Ok(0));
            }
            _ => {
                m.set_faults(Faults { alloc: Trigger::After(1), ..Default::default() });
                assert_eq!(env.step(), Step::Done(Errno::ENOMEM.to_ret()));
                m.set_faults(Faults::default());
                assert_eq!(env.info("half"), Err(Errno::ENOENT), "{race}: a half-built region is left");
            }
        }
        assert_eq!(env.sim.hv().sshm.stats(), Default::default(), "{race}");
        assert_eq!(m.sshm_pages(), 0, "{race}");
        env.check().unwrap();
    }
}

/// Finding 3, freeing a region: its chunks were all cleared and given back
/// in the hypercall that freed it, in one go. The unlink (or detach) that
/// frees a region now gives it back at most `RELEASE_PAGES_STEP` pages per
/// continuation (`progress` = `PROGRESS_RELEASING`) and returns once all is
/// back; a continuation never re-issued leaves the rest to the background
/// release (Xen: a tasklet), in steps as bounded. A create that needs the
/// room such pages still take waits for them rather than fail.
#[test]
fn finding_03_region_release_is_bounded_per_step() {
    use hypercall_abi::sshm::{PROT_RW, RELEASE_PAGES_STEP};
    use simulator::Step;
    let env = region_env(0x0333);
    let s = &env.sim;
    let m = s.machine();
    m.set_background_manual(true);
    let nr = 8192;
    assert_eq!(env.create("a", nr, PROT_RW, true), Ok(0));
    env.stepped(env.dom0, &sshm_common::unlink("a"));
    let steps = steps_releasing(&env, || assert_eq!(env.info("a"), Err(Errno::ENOENT), "the name went at once"));
    assert_eq!(steps, nr / RELEASE_PAGES_STEP);
    assert_eq!(m.sshm_pages(), 0, "all back when the unlink returns");
    // The background may have been asked (a backstop): it finds nothing.
    assert!(matches!(s.background_step(), None | Some(false)), "nothing left for the background");
    assert_eq!(m.sshm_pages(), 0);

    // An unlink whose continuation is never re-issued: the background
    // gives the rest back, a bounded step at a time.
    assert_eq!(env.create("a", nr, PROT_RW, true), Ok(0));
    env.stepped(env.dom0, &sshm_common::unlink("a"));
    assert_eq!(env.step(), Step::Continuation);
    let mut bg = 0;
    while let Some(more) = s.background_step() {
        bg += 1;
        let freed = nr - (bg + 1) * RELEASE_PAGES_STEP;
        assert_eq!(m.sshm_pages(), freed, "background step {bg}");
        assert_eq!(more, m.sshm_pages() > 0);
    }
    assert_eq!(bg, nr / RELEASE_PAGES_STEP - 1);

    // At the cap, with a freed region's pages not yet back: the create
    // waits for them.
    assert_eq!(env.create("a", nr, PROT_RW, true), Ok(0));
    env.stepped(env.dom0, &sshm_common::unlink("a"));
    assert_eq!(env.step(), Step::Continuation);
    assert_eq!(env.create("b", nr, PROT_RW, true), Ok(0), "waited for a's pages");
    assert_eq!(m.sshm_pages(), nr);
    assert_eq!(env.create("c", 1, PROT_RW, true), Err(Errno::ENOSPC), "live regions still count");
    // The abandoned unlink's continuation, re-issued late, finds nothing
    // left to give back.
    assert_eq!(env.step(), Step::Done(0));
    assert_eq!(env.call(env.dom0, &sshm_common::unlink("b")), Ok(0));
    assert_eq!(m.sshm_pages(), 0);
    assert_eq!(s.hv().sshm.stats(), Default::default());
    env.check().unwrap();
}

/// A detach that drops a region's last reference gives the region back
/// before it returns, in the same bounded steps.
#[test]
fn finding_03_last_detach_gives_the_region_back() {
    use hypercall_abi::sshm::{PROT_RW, RELEASE_PAGES_STEP};
    let env = region_env(0x0353);
    let m = env.sim.machine();
    m.set_background_manual(true);
    let g = env.guest(DomainKind::Hvm, 64);
    let nr = 4096;
    assert_eq!(env.call(g, &sshm_common::open("t", nr, 0x10_0000, PROT_RW, false)), Ok(0));
    env.stepped(g, &sshm_common::detach("t", 0x10_0000));
    assert_eq!(steps_releasing(&env, || {}), nr / RELEASE_PAGES_STEP);
    assert_eq!(m.sshm_pages(), 0);
    assert!(matches!(env.sim.background_step(), None | Some(false)));
    env.check().unwrap();
}

/// Domain death gives back what it freed before the domain is gone, in
/// steps of the kill hook (no more than `RELEASE_PAGES_STEP` pages each),
/// without waiting for the background; and a create-or-open the domain
/// left half-built goes with it.
#[test]
fn finding_03_domain_death_gives_regions_back_in_steps() {
    use hypercall_abi::sshm::{BUILD_PAGES_STEP, PROT_RW, RELEASE_PAGES_STEP};
    use simulator::Step;
    let env = region_env(0x0343);
    let s = &env.sim;
    let m = s.machine();
    m.set_background_manual(true);
    let g = env.guest(DomainKind::Hvm, 64);
    let nr = 4096;
    assert_eq!(env.call(g, &sshm_common::open("t", nr, 0x10_0000, PROT_RW, false)), Ok(0));
    // A second create-or-open, left after one build step.
    env.stepped(g, &sshm_common::open("half", 2 * BUILD_PAGES_STEP, 0x20_0000, PROT_RW, false));
    assert_eq!(env.step(), Step::Continuation);
    assert_eq!(m.sshm_pages(), nr + BUILD_PAGES_STEP);
    let mut steps = 0;
    loop {
        let before = m.sshm_pages();
        let done = s.destroy_domain_step(g).unwrap();
        steps += 1;
        assert!(before - m.sshm_pages() <= RELEASE_PAGES_STEP, "step {steps}");
        if done {
            break;
        }
    }
    assert!(steps >= (nr + BUILD_PAGES_STEP) / RELEASE_PAGES_STEP, "{steps} steps");
    assert_eq!(m.sshm_pages(), 0, "all given back by the kill hook");
    assert_eq!(env.info("half"), Err(Errno::ENOENT));
    assert_eq!(s.background_step(), None);
    assert_eq!(s.hv().sshm.stats(), Default::default());
    env.check().unwrap();
}
