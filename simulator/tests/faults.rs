//! The hypervisor logic under the faults Xen can inject
//! ([`simulator::Faults`]): p2m insertion and allocation failures, a guest
//! copy that faults part way. Each leaves nothing behind and every
//! checker passes.
//!
//! These replace the unit tests that ran `rust-hv`'s sshm module over a
//! private mock platform: the simulator is the one stand-in for Xen.

mod sshm_common;
mod v4v_util;

use hypercall_abi::sshm::{StaticShm, F_CREATE, F_PERSISTENT, OP_ATTACH, OP_INFO, PROT_RW};
use hypercall_abi::v4v::{DOMID_ANY, OP_SENDV};
use hypercall_abi::{DomId, Errno, Gfn};
use rust_hv::sshm::BATCH_ENTRIES_MAX;
use simulator::{DomainKind, Faults, Preempt, Step, Trigger};

use sshm_common::{attach, detach, op, Env, BUF_GPA, SHM_GFN};

/// An environment whose calls are preempted only by the logic's own
/// batches, so the number of steps is the number of batches.
fn env() -> Env {
    let env = Env::small(1);
    env.sim.machine().set_preempt(Preempt::Never);
    env
}

/// Runs `o` on `target` as the toolstack does, one hypercall per step;
/// returns the result and the number of steps.
fn steps(env: &Env, target: DomId, o: &StaticShm) -> (Result<i64, Errno>, u32) {
    env.stepped(target, o);
    let mut n = 1;
    loop {
        match env.step() {
            Step::Continuation => n += 1,
            Step::Done(r) => return (sshm_common::ret(r), n),
        }
    }
}

#[test]
fn superpages_where_aligned_batches_where_not() {
    let env = env();
    let (a, b) = (env.guest(DomainKind::Hvm, 16), env.guest(DomainKind::Hvm, 16));
    // 1030 pages: two 2 MiB entries and six 4 KiB ones, one batch.
    assert_eq!(env.create("big", 1030, PROT_RW, false), Ok(0));
    assert_eq!(steps(&env, a, &attach("big", 1030, 0, SHM_GFN, PROT_RW)), (Ok(0), 1));
    // An unaligned gfn: 1000 entries of 4 KiB, in batches.
    let n = 1000u64.div_ceil(BATCH_ENTRIES_MAX) as u32;
    assert_eq!(steps(&env, b, &attach("big", 1000, 10, SHM_GFN + 1, PROT_RW)), (Ok(0), n));
    assert_eq!(steps(&env, b, &detach("big", SHM_GFN + 1)), (Ok(0), n));
    // The last detach frees the region and gives its 1030 pages back
    // before it returns, at most RELEASE_PAGES_STEP a step: one step with
    // the unmapping, one more.
    assert_eq!(steps(&env, a, &detach("big", SHM_GFN)), (Ok(0), 2));
    // Transient and used: freed with its last attachment.
    assert_eq!(env.info("big"), Err(Errno::ENOENT));
    env.sim.check().unwrap();
}

#[test]
fn p2m_insert_failure_rolls_back_in_batches() {
    let env = env();
    let g = env.guest(DomainKind::Hvm, 16);
    let free = env.sim.free_frames();
    env.sim.machine().set_faults(Faults { p2m_insert: Trigger::After(300), ..Faults::default() });
    let o = StaticShm { op: OP_ATTACH, flags: F_CREATE | F_PERSISTENT, ..attach("r", 600, 0, SHM_GFN + 1, PROT_RW) };
    // Two batches map 300 entries and the 301st fails; the 300 are
    // unmapped in a bounded step too, which returns the attach's error.
    assert_eq!(steps(&env, g, &o), (Err(Errno::ENOMEM), 3));
    env.sim.machine().set_faults(Faults::default());
    // The region it created went with it; nothing is mapped or held.
    assert_eq!(env.info("r"), Err(Errno::ENOENT));
    assert_eq!(env.sim.machine().p2m_lookup(g, Gfn(SHM_GFN + 1)), None);
    assert_eq!(env.sim.free_frames(), free);
    env.sim.check().unwrap();
}

#[test]
fn no_superpages_falls_back_to_small_frames() {
    let env = env();
    let g = env.guest(DomainKind::Hvm, 16);
    let free = env.sim.free_frames();
    env.sim.machine().set_faults(Faults { superpage_alloc: Trigger::After(0), ..Faults::default() });
    let o = StaticShm { op: OP_ATTACH, flags: F_CREATE, ..attach("r", 1024, 0, SHM_GFN, PROT_RW) };
    // 4 KiB frames only: 1024 entries, in batches, though the gfn is aligned.
    let n = (1024 / BATCH_ENTRIES_MAX) as u32;
    assert_eq!(steps(&env, g, &o), (Ok(0), n));
    env.sim.check().unwrap();
    // The domain's death detaches them in as many bounded steps.
    let mut kill_steps = 1;
    while env.sim.destroy_domain_step(g) == Ok(false) {
        kill_steps += 1;
    }
    assert!(kill_steps >= n, "{kill_steps} steps for {n} batches");
    assert_eq!(env.info("r"), Err(Errno::ENOENT));
    assert_eq!(env.sim.free_frames(), free + 16, "the guest's RAM and the region are back");
    env.sim.check().unwrap();
}

#[test]
fn allocation_failure_creates_nothing() {
    let env = env();
    let free = env.sim.free_frames();
    // The third chunk of a 3-chunk region cannot be allocated.
    env.sim.machine().set_faults(Faults { alloc: Trigger::After(2), ..Faults::default() });
    assert_eq!(env.create("r", 1026, PROT_RW, false), Err(Errno::ENOMEM));
    env.sim.machine().set_faults(Faults::default());
    assert_eq!(env.info("r"), Err(Errno::ENOENT));
    assert_eq!(env.sim.free_frames(), free);
    env.sim.check().unwrap();
    assert_eq!(env.create("r", 1026, PROT_RW, false), Ok(0), "and works once memory is back");
}

#[test]
fn info_buffer_faulting_part_way_is_efault() {
    let env = env();
    assert_eq!(env.create("r", 4, PROT_RW, true), Ok(0));
    // The entry's copy-out stops after 8 bytes.
    env.sim.machine().set_faults(Faults { guest_copy: Trigger::OneIn(1), guest_copy_at: 8, ..Faults::default() });
    let (r, _) = env.call_from(env.dom0, env.dom0, &StaticShm { buffer: BUF_GPA, ..op(OP_INFO, "r") });
    env.sim.machine().set_faults(Faults::default());
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(env.info("r").map(|e| e.nr_pages), Ok(4), "the region is unchanged");
    env.sim.check().unwrap();
}

#[test]
fn send_whose_payload_copy_faults_delivers_nothing() {
    use v4v_util::*;
    let s = sim(1024, 1);
    s.machine().set_preempt(Preempt::Never);
    let (a, b) = (dom(&s, 64), dom(&s, 64));
    prepare_ring(&s, b, RING_GFN0, 4096 - 64, 0);
    assert_eq!(register(&s, b, 1, DOMID_ANY, 4096 - 64, RING_GFN0), 0);
    // The send's argument and iov copies succeed, the payload's faults
    // after 50 of its 100 bytes.
    s.machine().set_faults(Faults { guest_copy: Trigger::After(2), guest_copy_at: 50, ..Faults::default() });
    let r = send(&s, a, 1, b, 1, &[0xab; 100], 0);
    s.machine().set_faults(Faults::default());
    assert_eq!(r, err(Errno::EFAULT), "{OP_SENDV} with a faulting payload");
    let h = header(&s, b, RING_GFN0);
    assert_eq!(h.tx_ptr, h.rx_ptr, "no message, not even a partial one, is visible");
    assert_eq!(send(&s, a, 1, b, 1, &[0xcd; 100], 0), 100, "the ring still works");
    assert_eq!(drain(&s, b, RING_GFN0, 4096 - 64).len(), 1);
    check(&s);
}
