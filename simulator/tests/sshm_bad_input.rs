//! The bad-input catalogue: one test per rejected `XEN_DOMCTL_static_shm`
//! input, each with its exact errno, each leaving no trace (the checkers
//! pass and nothing is attached afterwards).

mod sshm_common;

use hypercall_abi::sshm::{
    self, StaticShm, F_CREATE, F_PERSISTENT, GFN_LIMIT, NAME_BYTES, PROT_READ, PROT_RW, REGION_PAGES_MAX,
};
use hypercall_abi::{hypercall, DomId, Errno};
use simulator::grant::{MapGrantRef, GNTMAP_HOST_MAP, GNTTABOP_MAP_GRANT_REF};
use simulator::{DomainKind, DomainState, GrantEntry};

use sshm_common::*;

/// A control domain, an HVM guest with 16 pages of RAM, a read-write
/// region "rw" and a read-only region "ro", 4 pages each.
fn setup() -> (Env, DomId) {
    let env = Env::small(0xbad);
    let g = env.guest(DomainKind::Hvm, 16);
    assert_eq!(env.create("rw", 4, PROT_RW, false), Ok(0));
    assert_eq!(env.create("ro", 4, PROT_READ, true), Ok(0));
    (env, g)
}

/// Issues `op` on `target` and expects `e`; the registry must not change.
fn refuse(env: &Env, target: DomId, op: &StaticShm, e: Errno) {
    let before = env.sim.hv().sshm.stats();
    assert_eq!(env.call(target, op), Err(e), "{op:?}");
    assert_eq!(env.sim.hv().sshm.stats(), before, "a refused op changed the registry");
    env.check().expect("invariants");
}

#[test]
fn unknown_subop() {
    let (env, g) = setup();
    refuse(&env, g, &StaticShm { op: 99, ..attach("rw", 1, 0, SHM_GFN, PROT_RW) }, Errno::EOPNOTSUPP);
    refuse(&env, g, &StaticShm { op: 0, ..Default::default() }, Errno::EOPNOTSUPP);
}

#[test]
fn nonzero_reserved() {
    let (env, g) = setup();
    for i in 0..4 {
        let mut o = attach("rw", 1, 0, SHM_GFN, PROT_RW);
        o.reserved[i] = 1;
        refuse(&env, g, &o, Errno::EINVAL);
    }
}

#[test]
fn nonzero_unused_field() {
    let (env, g) = setup();
    refuse(&env, g, &StaticShm { buffer: BUF_GPA, ..attach("rw", 1, 0, SHM_GFN, PROT_RW) }, Errno::EINVAL);
    refuse(&env, g, &StaticShm { gfn: 5, ..create("x", 1, PROT_RW, false) }, Errno::EINVAL);
    refuse(&env, g, &StaticShm { prot: PROT_RW, ..detach("rw", SHM_GFN) }, Errno::EINVAL);
    refuse(&env, g, &StaticShm { size_pages: 4, ..attach("rw", 1, 0, SHM_GFN, PROT_RW) }, Errno::EINVAL);
}

#[test]
fn unknown_flag() {
    let (env, g) = setup();
    refuse(&env, g, &StaticShm { flags: 1 << 5, ..attach("rw", 1, 0, SHM_GFN, PROT_RW) }, Errno::EINVAL);
    refuse(&env, g, &StaticShm { flags: F_CREATE, ..create("x", 1, PROT_RW, false) }, Errno::EINVAL);
    refuse(&env, g, &StaticShm { flags: sshm::F_UNLINKED, ..unlink("rw") }, Errno::EINVAL);
}

#[test]
fn bad_prot() {
    let (env, g) = setup();
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN, 0), Errno::EINVAL);
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN, sshm::PROT_WRITE), Errno::EINVAL);
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN, 1 << 2), Errno::EINVAL);
}

#[test]
fn empty_name() {
    let (env, g) = setup();
    refuse(&env, g, &StaticShm { name: [0; NAME_BYTES], ..attach("rw", 1, 0, SHM_GFN, PROT_RW) }, Errno::EINVAL);
}

#[test]
fn overlong_name() {
    let (env, g) = setup();
    refuse(&env, g, &StaticShm { name: [b'a'; NAME_BYTES], ..attach("rw", 1, 0, SHM_GFN, PROT_RW) }, Errno::EINVAL);
}

#[test]
fn invalid_name_characters() {
    let (env, g) = setup();
    for bad in [b'-', b' ', b'/', b'.', 0xff] {
        let mut o = attach("rw", 1, 0, SHM_GFN, PROT_RW);
        o.name[1] = bad;
        refuse(&env, g, &o, Errno::EINVAL);
    }
    // Bytes after the terminating NUL must be NUL too.
    let mut o = attach("rw", 1, 0, SHM_GFN, PROT_RW);
    o.name[5] = b'x';
    refuse(&env, g, &o, Errno::EINVAL);
}

#[test]
fn size_zero() {
    let (env, g) = setup();
    refuse(&env, env.dom0, &create("z", 0, PROT_RW, false), Errno::EINVAL);
    refuse(&env, g, &attach("rw", 0, 0, SHM_GFN, PROT_RW), Errno::EINVAL);
}

#[test]
fn size_over_cap() {
    let (env, g) = setup();
    refuse(&env, env.dom0, &create("z", REGION_PAGES_MAX + 1, PROT_RW, false), Errno::E2BIG);
    // The run-time cap (2048 pages here) is lower than the ABI's.
    refuse(&env, env.dom0, &create("z", small_limits().region_pages_max + 1, PROT_RW, false), Errno::E2BIG);
    refuse(&env, g, &open("z", small_limits().region_pages_max + 1, SHM_GFN, PROT_RW, false), Errno::E2BIG);
}

#[test]
fn offset_plus_len_overflow() {
    let (env, g) = setup();
    refuse(&env, g, &attach("rw", 4, u64::MAX - 1, SHM_GFN, PROT_RW), Errno::EINVAL);
    refuse(&env, g, &attach("rw", u64::MAX, 2, SHM_GFN, PROT_RW), Errno::EINVAL);
}

#[test]
fn offset_or_len_outside_region() {
    let (env, g) = setup();
    refuse(&env, g, &attach("rw", 4, 1, SHM_GFN, PROT_RW), Errno::EINVAL);
    refuse(&env, g, &attach("rw", 5, 0, SHM_GFN, PROT_RW), Errno::EINVAL);
    refuse(&env, g, &attach("rw", 1, 4, SHM_GFN, PROT_RW), Errno::EINVAL);
}

#[test]
fn gfn_out_of_range() {
    let (env, g) = setup();
    refuse(&env, g, &attach("rw", 4, 0, GFN_LIMIT - 2, PROT_RW), Errno::EINVAL);
    refuse(&env, g, &attach("rw", 1, 0, u64::MAX, PROT_RW), Errno::EINVAL);
    refuse(&env, g, &detach("rw", GFN_LIMIT), Errno::EINVAL);
}

#[test]
fn gfn_overlapping_guest_ram() {
    let (env, g) = setup();
    // Wholly inside RAM, and straddling its end: RAM is never replaced.
    refuse(&env, g, &attach("rw", 4, 0, 3, PROT_RW), Errno::EBUSY);
    refuse(&env, g, &attach("rw", 4, 0, 14, PROT_RW), Errno::EBUSY);
    // Nothing of the straddling attempt stays mapped above RAM either.
    assert_eq!(env.peek(g, 16, 0), Err(Errno::EFAULT));
    // And create-or-open does not leave the region behind.
    refuse(&env, g, &open("fresh", 4, 14, PROT_RW, true), Errno::EBUSY);
    assert_eq!(env.info("fresh"), Err(Errno::ENOENT));
}

#[test]
fn gfn_overlapping_another_attachment() {
    let (env, g) = setup();
    assert_eq!(env.call(g, &attach("rw", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
    refuse(&env, g, &attach("ro", 4, 0, SHM_GFN + 3, PROT_READ), Errno::EBUSY);
    refuse(&env, g, &attach("ro", 4, 0, SHM_GFN - 3, PROT_READ), Errno::EBUSY);
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN, PROT_RW), Errno::EBUSY);
    // Adjacent is fine, and another domain may use the same gfns.
    assert_eq!(env.call(g, &attach("ro", 4, 0, SHM_GFN + 4, PROT_READ)), Ok(0));
    let h = env.guest(DomainKind::Pvh, 16);
    assert_eq!(env.call(h, &attach("rw", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
}

#[test]
fn ro_region_attached_rw() {
    let (env, g) = setup();
    refuse(&env, g, &attach("ro", 4, 0, SHM_GFN, PROT_RW), Errno::EACCES);
    let open_ro = StaticShm { flags: F_CREATE | F_PERSISTENT, ..attach("ro", 4, 0, SHM_GFN, PROT_RW) };
    refuse(&env, g, &open_ro, Errno::EACCES);
    // Read-only is what it allows, and the guest cannot write through it:
    // Xen discards the store (p2m_grant_map_ro), the memory stays as it was.
    assert_eq!(env.call(g, &attach("ro", 4, 0, SHM_GFN, PROT_READ)), Ok(0));
    assert_eq!(env.poke(g, SHM_GFN, 0, 1), Ok(()));
    assert_eq!(env.peek(g, SHM_GFN, 0), Ok(0), "the store was discarded");
}

#[test]
fn detach_not_attached() {
    let (env, g) = setup();
    refuse(&env, g, &detach("rw", SHM_GFN), Errno::ENOENT);
    assert_eq!(env.call(g, &attach("rw", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
    // Not at its first gfn, or under another name.
    refuse(&env, g, &detach("rw", SHM_GFN + 1), Errno::ENOENT);
    refuse(&env, g, &detach("ro", SHM_GFN), Errno::ENOENT);
    // Another domain has nothing there.
    let h = env.guest(DomainKind::Hvm, 16);
    refuse(&env, h, &detach("rw", SHM_GFN), Errno::ENOENT);
    // A length that is neither 0 nor the attached one.
    refuse(&env, g, &StaticShm { nr_pages: 3, ..detach("rw", SHM_GFN) }, Errno::EINVAL);
    assert_eq!(env.call(g, &StaticShm { nr_pages: 4, ..detach("rw", SHM_GFN) }), Ok(0));
    refuse(&env, g, &detach("rw", SHM_GFN), Errno::ENOENT);
}

#[test]
fn unknown_name() {
    let (env, g) = setup();
    refuse(&env, g, &attach("nope", 1, 0, SHM_GFN, PROT_RW), Errno::ENOENT);
    refuse(&env, env.dom0, &unlink("nope"), Errno::ENOENT);
    assert_eq!(env.info("nope"), Err(Errno::ENOENT));
}

#[test]
fn create_existing_name() {
    let (env, _) = setup();
    refuse(&env, env.dom0, &create("rw", 4, PROT_RW, false), Errno::EEXIST);
    refuse(&env, env.dom0, &create("rw", 8, PROT_READ, true), Errno::EEXIST);
}

#[test]
fn create_or_open_size_mismatch() {
    let (env, g) = setup();
    refuse(&env, g, &open("rw", 8, SHM_GFN, PROT_RW, false), Errno::EEXIST);
    let mut o = open("rw", 4, SHM_GFN, PROT_RW, false);
    o.nr_pages = 2;
    o.size_pages = 0; // means offset + nr_pages = 2, not 4
    refuse(&env, g, &o, Errno::EEXIST);
    o.size_pages = 4;
    assert_eq!(env.call(g, &o), Ok(0));
}

#[test]
fn create_or_open_persistence_mismatch() {
    let (env, g) = setup();
    // "rw" is transient: opening it as persistent is a disagreement.
    refuse(&env, g, &open("rw", 4, SHM_GFN, PROT_RW, true), Errno::EEXIST);
    // "ro" is persistent: opening it as transient is one too.
    refuse(&env, g, &open("ro", 4, SHM_GFN, PROT_READ, false), Errno::EEXIST);
    assert_eq!(env.call(g, &open("ro", 4, SHM_GFN, PROT_READ, true)), Ok(0));
}

/// Create-or-open makes a read-write region whatever the first prot, so a
/// read-only guest that starts first does not lock writers out.
#[test]
fn create_or_open_by_a_reader_first_still_admits_writers() {
    let (env, g) = setup();
    let h = env.guest(DomainKind::Hvm, 16);
    assert_eq!(env.call(g, &open("fresh", 4, SHM_GFN, PROT_READ, false)), Ok(0));
    assert_eq!(env.call(h, &open("fresh", 4, SHM_GFN, PROT_RW, false)), Ok(0));
    assert_eq!(env.poke(h, SHM_GFN, 0, 7), Ok(()));
    assert_eq!(env.poke(g, SHM_GFN, 0, 1), Ok(()), "discarded, as on Xen");
    assert_eq!(env.peek(h, SHM_GFN, 0), Ok(7), "the reader's store changed nothing");
}

#[test]
fn pv_target() {
    let (env, _) = setup();
    let pv = env.guest(DomainKind::Pv, 16);
    refuse(&env, pv, &attach("rw", 1, 0, SHM_GFN, PROT_RW), Errno::EOPNOTSUPP);
    refuse(&env, pv, &open("new", 1, SHM_GFN, PROT_RW, false), Errno::EOPNOTSUPP);
    refuse(&env, pv, &detach("rw", SHM_GFN), Errno::EOPNOTSUPP);
}

#[test]
fn dying_target() {
    let (env, g) = setup();
    // A dying domain: g grants a RAM page to h, h maps it, g is killed and
    // lingers as a zombie while h's mapping holds its page.
    let h = env.guest(DomainKind::Hvm, 16);
    env.sim.grant_write(g, 0, GrantEntry::permit(h, hypercall_abi::Gfn(1), false)).expect("grant");
    let m = MapGrantRef { host_addr: 0x100 * 4096, flags: GNTMAP_HOST_MAP, gref: 0, dom: g.0, ..Default::default() };
    env.sim.guest_write(h, 0x2000, &m.to_bytes()).expect("map arg");
    let r = env.sim.hypercall(h, hypercall::GRANT_TABLE_OP, [u64::from(GNTTABOP_MAP_GRANT_REF), 0x2000, 1, 0, 0]);
    assert_eq!(r, 0);
    env.sim.destroy_domain(g).expect("kill");
    assert_eq!(env.sim.domain_state(g), Some(DomainState::Dying));
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN, PROT_RW), Errno::ESRCH);
    refuse(&env, g, &open("new", 1, SHM_GFN, PROT_RW, false), Errno::ESRCH);
    refuse(&env, g, &detach("rw", SHM_GFN), Errno::ESRCH);
}

#[test]
fn dead_or_unknown_target() {
    let (env, g) = setup();
    env.sim.destroy_domain(g).expect("kill");
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN, PROT_RW), Errno::ESRCH);
    refuse(&env, DomId(4000), &attach("rw", 1, 0, SHM_GFN, PROT_RW), Errno::ESRCH);
}

#[test]
fn non_control_caller() {
    let (env, g) = setup();
    let before = env.sim.hv().sshm.stats();
    for o in [create("x", 1, PROT_RW, false), attach("rw", 1, 0, SHM_GFN, PROT_RW), unlink("rw")] {
        assert_eq!(env.call_from(g, g, &o).0, Err(Errno::EPERM));
    }
    assert_eq!(env.sim.hv().sshm.stats(), before);
}

#[test]
fn continuation_without_inflight_record() {
    let (env, g) = setup();
    // A toolstack may not invent progress: nothing is in flight.
    refuse(&env, g, &StaticShm { progress: 2, ..attach("rw", 4, 0, SHM_GFN, PROT_RW) }, Errno::ENOENT);
    assert_eq!(env.call(g, &attach("rw", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
    // Finished, not in flight: a stale continuation is refused.
    refuse(&env, g, &StaticShm { progress: 2, ..attach("rw", 4, 0, SHM_GFN, PROT_RW) }, Errno::ENOENT);
    refuse(&env, g, &StaticShm { progress: 2, ..detach("rw", SHM_GFN) }, Errno::EINVAL);
}

#[test]
fn region_count_cap() {
    let (env, _) = setup();
    for i in 2..small_limits().regions_max {
        assert_eq!(env.create(&format!("r{i}"), 1, PROT_RW, false), Ok(0));
    }
    refuse(&env, env.dom0, &create("one_more", 1, PROT_RW, false), Errno::ENOSPC);
}

#[test]
fn total_pages_cap() {
    let (env, g) = setup();
    let l = small_limits();
    assert_eq!(env.create("big", l.region_pages_max, PROT_RW, false), Ok(0));
    let left = l.total_pages_max - l.region_pages_max - 8;
    refuse(&env, env.dom0, &create("big2", left + 1, PROT_RW, false), Errno::ENOSPC);
    refuse(&env, g, &open("big2", left + 1, SHM_GFN, PROT_RW, false), Errno::ENOSPC);
    assert_eq!(env.create("big2", left, PROT_RW, false), Ok(0));
}

#[test]
fn attachments_per_domain_cap() {
    let (env, g) = setup();
    for i in 0..u64::from(sshm::ATTACHMENTS_PER_DOMAIN_MAX) {
        assert_eq!(env.call(g, &attach("rw", 1, 0, SHM_GFN + i, PROT_RW)), Ok(0));
    }
    refuse(&env, g, &attach("rw", 1, 0, SHM_GFN + 100, PROT_RW), Errno::ENOSPC);
}

#[test]
fn info_and_list_bad_buffer() {
    let (env, _) = setup();
    let far = 1 << 40;
    assert_eq!(env.call(env.dom0, &StaticShm { buffer: far, ..op(sshm::OP_INFO, "rw") }), Err(Errno::EFAULT));
    let l = StaticShm { op: sshm::OP_LIST, buffer: far, nr_entries: 4, ..Default::default() };
    assert_eq!(env.call(env.dom0, &l), Err(Errno::EFAULT));
    let l = StaticShm { op: sshm::OP_LIST, buffer: BUF_GPA, nr_entries: 0, ..Default::default() };
    refuse(&env, env.dom0, &l, Errno::EINVAL);
    refuse(&env, env.dom0, &op(sshm::OP_INFO, "rw"), Errno::EINVAL);
}
