//! Concurrency stress: several threads (CPUs) attach, detach, unlink and
//! destroy domains on a few shared names at once, with preemption so that
//! continued attaches and detaches interleave with everything else. At the
//! end the checkers pass and, once everything is torn down, no frame leaked.
//!
//! `SIM_CASES` sets the rounds per thread (default 1500), `SIM_SEED` the
//! seed of every thread's choices; the run prints the line that replays
//! the choices (the threads' interleaving is the host's).

mod sshm_common;

use std::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::sshm::{PROT_READ, PROT_RW};
use hypercall_abi::Errno;
use simulator::rng::{PropRun, SplitMix64};
use simulator::{DomainKind, DomainState, Preempt};

use sshm_common::*;

const THREADS: u64 = 4;
const NAMES: [&str; 3] = ["s0", "s1", "s2"];
/// Region sizes by name: 4 KiB-only, one 2 MiB chunk plus a tail, tiny.
const SIZES: [u64; 3] = [8, 530, 1];

/// Each thread's choices.
struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
}

#[test]
fn sshm_stress() {
    let pr = PropRun::from_env("simulator", "sshm_stress", "sshm_stress", 1500);
    let (rounds, seed) = (u64::from(pr.cases), pr.seed);
    let env = Env::small(seed);
    env.sim.machine().set_preempt(Preempt::OneIn(3));
    let free_before = env.sim.free_frames();
    // Successful attaches and detaches, so a run that only ever fails
    // cannot pass.
    let (opened, detached) = (AtomicU64::new(0), AtomicU64::new(0));

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (env, opened, detached) = (&env, &opened, &detached);
            s.spawn(move || {
                let mut rng = Rng(SplitMix64::new(seed ^ (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
                // Each thread is one toolstack with its own scratch page and
                // its own domain, which it kills and recreates.
                let scratch = SCRATCH_GPA + 0x1000 * t;
                let call = |d, o: &_| env.call_from_at(scratch, d, o);
                let mut dom = env.guest(DomainKind::Hvm, 16);
                for _ in 0..rounds {
                    let n = rng.below(NAMES.len() as u64) as usize;
                    let (name, size) = (NAMES[n], SIZES[n]);
                    let gfn = SHM_GFN + 0x400 * n as u64;
                    match rng.below(10) {
                        0..=3 => {
                            let prot = if rng.below(4) == 0 { PROT_READ } else { PROT_RW };
                            // Every creator of a name agrees on its persistence, as
                            // every xl config naming it does.
                            let r = call(dom, &open(name, size, gfn, prot, n.is_multiple_of(3)));
                            // EBUSY: this domain already has it there.
                            // ENOSPC: unlinked generations of the names
                            // still attached elsewhere fill the region cap.
                            // EAGAIN: another thread unlinked the name each
                            // time this open had just created it (the
                            // documented give-up after CREATE_TRIES_MAX).
                            let ok =
                                matches!(r, Ok(0) | Err(Errno::EBUSY | Errno::EACCES | Errno::ENOSPC | Errno::EAGAIN));
                            assert!(ok, "open: {r:?}");
                            if r == Ok(0) {
                                opened.fetch_add(1, Ordering::Relaxed);
                            }
                            if r == Ok(0) && prot == PROT_RW {
                                assert_eq!(env.poke(dom, gfn + size - 1, 0, t), Ok(()));
                            }
                        }
                        4..=5 => {
                            let r = call(dom, &detach(name, gfn));
                            assert!(matches!(r, Ok(0) | Err(Errno::ENOENT)), "detach: {r:?}");
                            if r == Ok(0) {
                                detached.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        6 => {
                            let r = call(env.dom0, &unlink(name));
                            assert!(matches!(r, Ok(0) | Err(Errno::ENOENT)), "unlink: {r:?}");
                        }
                        7 => {
                            // ENOENT: another thread unlinked it between
                            // two of its build steps (the create was
                            // cancelled).
                            let r = call(env.dom0, &create(name, size, PROT_RW, n.is_multiple_of(3)));
                            let ok = matches!(r, Ok(0) | Err(Errno::EEXIST | Errno::ENOSPC | Errno::ENOENT));
                            assert!(ok, "create: {r:?}");
                        }
                        8 => {
                            // Other threads' writes may land in between;
                            // what matters is that the read succeeds or
                            // the attachment is not there.
                            let r = env.peek(dom, gfn + size - 1, 0);
                            assert!(matches!(r, Ok(_) | Err(Errno::EFAULT)), "read: {r:?}");
                        }
                        _ => {
                            env.sim.destroy_domain(dom).expect("kill");
                            assert_eq!(env.sim.domain_state(dom), Some(DomainState::Dead));
                            dom = env.guest(DomainKind::Hvm, 16);
                        }
                    }
                }
                env.sim.destroy_domain(dom).expect("kill");
            });
        }
    });

    let (opened, detached) = (opened.into_inner(), detached.into_inner());
    eprintln!("sshm_stress: {opened} attaches, {detached} detaches succeeded");
    assert!(opened > rounds / 2 && detached > rounds / 8, "too little succeeded");
    env.check().expect("invariants after the storm");
    assert_eq!(env.sim.hv().sshm.stats().attachments, 0, "a dead domain kept an attachment");
    for n in NAMES {
        let _ = env.call(env.dom0, &unlink(n));
    }
    env.check().expect("invariants");
    assert_eq!(env.sim.hv().sshm.stats(), Default::default());
    assert_eq!(env.sim.machine().sshm_pages(), 0);
    assert_eq!(env.sim.free_frames(), free_before, "frames leaked");
}
