//! The scenarios the project grew from (`seeds/` beside DESIGN.md), as
//! named tests, and the continued-attach races DESIGN.md §3 demands be
//! consistent.

mod sshm_common;

use std::sync::Barrier;

use hypercall_abi::sshm::{F_PERSISTENT, PROT_READ, PROT_RW};
use hypercall_abi::Errno;
use simulator::{DomainKind, DomainState, Preempt, Step};

use sshm_common::*;

/// Everything sshm-related is gone: no region, no attachment, no page held
/// by the pseudo-domain, and the pool has every frame back.
fn assert_all_freed(env: &Env, free_before: u64) {
    env.check().expect("invariants");
    assert_eq!(env.sim.hv().sshm.stats(), Default::default());
    assert_eq!(env.sim.machine().sshm_pages(), 0);
    assert_eq!(env.sim.free_frames(), free_before, "frames leaked");
}

/// Wei Liu, 2017: "please consider what happens when you destroy the owner
/// domain before the rest". The domain that created the region dies first;
/// the others keep reading and writing it; nobody becomes a zombie; the
/// memory is freed exactly when the last user goes.
#[test]
fn owner_destroyed_first() {
    let env = Env::small(1);
    let free_before = env.sim.free_frames();
    let [a, b, c] = [0; 3].map(|_| env.guest(DomainKind::Hvm, 16));
    // A creates (create-or-open), B and C open: 600 pages, one 2 MiB chunk.
    for d in [a, b, c] {
        assert_eq!(env.call(d, &open("ring", 600, SHM_GFN, PROT_RW, false)), Ok(0));
    }
    assert_eq!(env.info("ring").expect("info").creator, a.0);
    assert_eq!(env.poke(a, SHM_GFN + 599, 0, 0xa), Ok(()));

    env.sim.destroy_domain(a).expect("kill a");
    assert_eq!(env.sim.domain_state(a), Some(DomainState::Dead), "the creator is a zombie");
    assert!(env.sim.machine().zombies().is_empty());
    env.check().expect("invariants");
    assert_eq!(env.sim.machine().sshm_pages(), 600);
    // B and C still share the region, A's write included.
    assert_eq!(env.peek(b, SHM_GFN + 599, 0), Ok(0xa));
    assert_eq!(env.poke(c, SHM_GFN + 1, 0, 0xc), Ok(()));
    assert_eq!(env.peek(b, SHM_GFN + 1, 0), Ok(0xc));
    let e = env.info("ring").expect("info");
    assert_eq!((e.nr_attachments, e.creator), (2, a.0), "creator is audit only");

    env.sim.destroy_domain(b).expect("kill b");
    assert_eq!(env.sim.machine().sshm_pages(), 600, "freed while C still uses it");
    assert_eq!(env.peek(c, SHM_GFN + 599, 0), Ok(0xa));
    env.sim.destroy_domain(c).expect("kill c");
    assert_eq!(env.sim.domain_state(c), Some(DomainState::Dead));
    assert_eq!(env.info("ring"), Err(Errno::ENOENT), "transient region outlived its users");
    assert_all_freed(&env, free_before);
}

/// Wei Liu, 2017: "When you have several xl create and they race with each
/// other, what will happen?" Two toolstacks open the same name at once from
/// two threads: one region, both attached, sharing memory.
#[test]
fn racing_xl_creates() {
    let env = Env::small(2);
    env.sim.machine().set_preempt(Preempt::OneIn(2));
    let free_before = env.sim.free_frames();
    for round in 0..40u64 {
        let name = format!("race{}", round % 4);
        let (a, b) = (env.guest(DomainKind::Hvm, 16), env.guest(DomainKind::Pvh, 16));
        let size = if round % 2 == 0 { 8 } else { 1030 };
        let go = Barrier::new(2);
        let results: Vec<Result<i64, Errno>> = std::thread::scope(|s| {
            let hs: Vec<_> = [a, b]
                .map(|d| {
                    let (env, go, name) = (&env, &go, &name);
                    // Each toolstack has its own scratch page.
                    let scratch = if d == a { SCRATCH_GPA } else { SCRATCH_GPA + 0x1000 };
                    s.spawn(move || {
                        let o = open(name, size, SHM_GFN, PROT_RW, round % 3 == 0);
                        let mut dc = hypercall_abi::domctl::Domctl::static_shm(d, &o);
                        go.wait();
                        ret(env.sim.domctl(env.dom0, scratch, &mut dc))
                    })
                })
                .into_iter()
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert_eq!(results, vec![Ok(0), Ok(0)], "round {round}");
        let e = env.info(&name).expect("one region");
        assert_eq!((e.nr_pages, e.nr_attachments, e.nr_domids), (size, 2, 2));
        assert_eq!(env.sim.hv().sshm.stats().regions, 1);
        assert_eq!(env.poke(a, SHM_GFN + size - 1, 0, round), Ok(()));
        assert_eq!(env.peek(b, SHM_GFN + size - 1, 0), Ok(round));
        env.check().expect("invariants");
        env.sim.destroy_domain(a).expect("kill");
        env.sim.destroy_domain(b).expect("kill");
        if round % 3 == 0 {
            assert_eq!(env.call(env.dom0, &unlink(&name)), Ok(0));
        }
    }
    assert_all_freed(&env, free_before);
}

/// POSIX-like lifetime: a persistent region outlives all its users, keeps
/// its contents, and goes only when unlinked and unused.
#[test]
fn persistent_outlives_users() {
    let env = Env::small(3);
    let free_before = env.sim.free_frames();
    assert_eq!(env.create("cfg", 4, PROT_RW, true), Ok(0));
    let (a, b) = (env.guest(DomainKind::Hvm, 16), env.guest(DomainKind::Pvh, 16));
    assert_eq!(env.call(a, &attach("cfg", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
    assert_eq!(env.call(b, &attach("cfg", 2, 2, SHM_GFN + 10, PROT_READ)), Ok(0));
    assert_eq!(env.poke(a, SHM_GFN + 3, 8, 42), Ok(()));
    assert_eq!(env.peek(b, SHM_GFN + 11, 8), Ok(42));
    env.sim.destroy_domain(a).expect("kill");
    assert_eq!(env.call(b, &detach("cfg", SHM_GFN + 10)), Ok(0));
    env.sim.destroy_domain(b).expect("kill");

    // Nobody uses it; it is still there, contents intact.
    let e = env.info("cfg").expect("persistent region");
    assert_eq!((e.nr_attachments, e.flags), (0, F_PERSISTENT));
    let c = env.guest(DomainKind::Hvm, 16);
    assert_eq!(env.call(c, &attach("cfg", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
    assert_eq!(env.peek(c, SHM_GFN + 3, 8), Ok(42));

    // Unlinked while attached: the name goes, the memory stays for C.
    assert_eq!(env.call(env.dom0, &unlink("cfg")), Ok(0));
    assert_eq!(env.info("cfg"), Err(Errno::ENOENT));
    assert_eq!(env.sim.machine().sshm_pages(), 4);
    assert_eq!(env.peek(c, SHM_GFN + 3, 8), Ok(42));
    // A new region may take the name meanwhile; it is a different region.
    assert_eq!(env.create("cfg", 1, PROT_RW, false), Ok(0));
    assert_eq!(env.call(env.dom0, &unlink("cfg")), Ok(0));
    env.sim.destroy_domain(c).expect("kill");
    assert_all_freed(&env, free_before);
}

/// A continued attach meets a detach, an unlink or the target's death
/// between two of its steps: each ends consistent and leak-free.
#[test]
fn races_with_a_continued_attach() {
    for race in ["detach", "unlink", "destroy", "tamper"] {
        let env = Env::small(4);
        let free_before = env.sim.free_frames();
        env.sim.machine().set_preempt(Preempt::Always);
        let g = env.guest(DomainKind::Hvm, 16);
        // Unaligned: 4 KiB entries, one per step.
        let o = open("slow", 8, SHM_GFN + 1, PROT_RW, false);
        env.stepped(g, &o);
        // Building the region it creates is a step per 4 KiB chunk (progress
        // stays 0: nothing is attached yet), then mapping one per entry.
        let mut steps = 0;
        while env.stepped_op().progress == 0 {
            assert_eq!(env.step(), Step::Continuation);
            steps += 1;
            assert!(steps <= 8, "{race}: {steps} steps and nothing mapped");
        }
        // The 8th step built the last chunk and mapped the first entry.
        assert_eq!(steps, 8);
        assert_eq!(env.step(), Step::Continuation);
        let progress = env.stepped_op().progress;
        assert!(progress > 0 && progress < 8, "{race}: progress {progress}");
        assert_eq!(env.sim.hv().sshm.stats().attachments, 1);
        env.sim.machine().set_preempt(Preempt::Never);
        match race {
            "detach" => {
                assert_eq!(env.call(g, &detach("slow", SHM_GFN + 1)), Ok(0));
                // The attach was cancelled; nothing of it is left mapped.
                assert_eq!(env.step(), Step::Done(Errno::ENOENT.to_ret()));
                assert_eq!(env.peek(g, SHM_GFN + 1, 0), Err(Errno::EFAULT));
                // The region it created was never used: it stays, as a plain
                // create would have left it.
                assert_eq!(env.call(env.dom0, &unlink("slow")), Ok(0));
            }
            "unlink" => {
                assert_eq!(env.call(env.dom0, &unlink("slow")), Ok(0));
                // The attach completes on the unlinked region...
                assert_eq!(env.step(), Step::Done(0));
                assert_eq!(env.poke(g, SHM_GFN + 8, 0, 7), Ok(()));
                assert_eq!(env.sim.hv().sshm.stats().regions, 1);
                // ...which goes with its last attachment.
                assert_eq!(env.call(g, &detach("slow", SHM_GFN + 1)), Ok(0));
            }
            "destroy" => {
                env.sim.destroy_domain(g).expect("kill");
                assert_eq!(env.sim.domain_state(g), Some(DomainState::Dead));
                assert_eq!(env.step(), Step::Done(Errno::ESRCH.to_ret()));
                // Undone like a failed attach: the region it created went too.
                assert_eq!(env.info("slow"), Err(Errno::ENOENT));
            }
            _ => {
                // A continuation that does not match the in-flight record.
                let mut t = env.stepped_op();
                t.progress += 1;
                env.set_stepped_op(g, &t);
                assert_eq!(env.step(), Step::Done(Errno::EINVAL.to_ret()));
                t.progress -= 1;
                t.offset = 0;
                t.gfn = SHM_GFN + 1;
                t.prot = hypercall_abi::sshm::PROT_READ;
                env.set_stepped_op(g, &t);
                assert_eq!(env.step(), Step::Done(Errno::EINVAL.to_ret()));
                // The abandoned attach is cleaned up by a detach.
                assert_eq!(env.call(g, &detach("slow", SHM_GFN + 1)), Ok(0));
                assert_eq!(env.call(env.dom0, &unlink("slow")), Ok(0));
            }
        };
        env.check().unwrap_or_else(|e| panic!("{race}: {e}"));
        if race != "destroy" {
            env.sim.destroy_domain(g).expect("kill");
        }
        assert_all_freed(&env, free_before);
    }
}

/// A continued detach resumes exactly, and a fresh detach takes over one
/// whose toolstack went away.
#[test]
fn continued_detach() {
    let env = Env::small(5);
    let free_before = env.sim.free_frames();
    let g = env.guest(DomainKind::Hvm, 16);
    assert_eq!(env.call(g, &open("d", 700, SHM_GFN + 1, PROT_RW, false)), Ok(0));
    env.sim.machine().set_preempt(Preempt::Always);
    env.stepped(g, &detach("d", SHM_GFN + 1));
    assert_eq!(env.step(), Step::Continuation);
    assert_eq!(env.step(), Step::Continuation);
    assert!(env.stepped_op().progress > 0);
    // Abandoned; a new detach finishes it.
    env.sim.machine().set_preempt(Preempt::Never);
    assert_eq!(env.call(g, &detach("d", SHM_GFN + 1)), Ok(0));
    assert_eq!(env.step(), Step::Done(Errno::ENOENT.to_ret()));
    env.sim.destroy_domain(g).expect("kill");
    assert_all_freed(&env, free_before);
}
