//! Unit tests of the simulator as a whole: domains, guest memory, the
//! `Platform` implementation, the hypercall entry, grants, event channels,
//! and the checkers themselves.

use hypercall_abi::domctl::Domctl;
use hypercall_abi::{hypercall, DomId, Errno, Gfn, Mfn, PAGE_SIZE, VIRQ_V4V};
use rust_hv::platform::P2mKind;
use rust_hv::Platform;

use crate::grant::{self, gntst, MapGrantRef, UnmapGrantRef};
use crate::*;

fn sim(frames: u64) -> Sim {
    let s = Sim::new(Config { frames, seed: 1, ..Config::default() });
    s.machine().set_preempt(Preempt::Never);
    s
}

fn ok(s: &Sim) {
    // The Platform is driven directly here: sshm frames belong to no region.
    if let Err(e) = s.check_machine() {
        panic!("invariants: {e}");
    }
}

#[test]
fn create_populates_ram_with_superpages_and_ids_follow_xen() {
    let s = sim(4096);
    let d0 = s.create_domain(DomainKind::Pvh, 1024 + 3, true).unwrap();
    assert_eq!(d0, DomId(0), "the first domain is dom0");
    let m = s.machine();
    let (m0, t) = m.p2m_lookup(d0, Gfn(0)).unwrap();
    let (m1, _) = m.p2m_lookup(d0, Gfn(511)).unwrap();
    assert_eq!((t, m1.0 - m0.0), (P2mType::RamRw, 511), "one 2 MiB chunk");
    assert!(m.p2m_lookup(d0, Gfn(1026)).is_some());
    assert!(m.p2m_lookup(d0, Gfn(1027)).is_none());
    assert_eq!(m.tot_pages(d0), Some(1027));
    assert_eq!(s.free_frames(), 4096 - 1027);
    let d1 = s.create_domain(DomainKind::Hvm, 1, false).unwrap();
    let d2 = s.create_domain(DomainKind::Pv, 1, false).unwrap();
    assert_eq!((d1, d2), (DomId(1), DomId(2)));
    s.destroy_domain(d1).unwrap();
    assert_eq!(s.domain_state(d1), Some(DomainState::Dead));
    assert_eq!(s.create_domain(DomainKind::Hvm, 1, false), Ok(DomId(3)), "the rover moves on");
    assert_eq!(s.domain_state(DomId(9)), None);
    ok(&s);
}

#[test]
fn exhausting_the_pool_is_enomem_and_leaves_nothing() {
    let s = sim(1000);
    assert_eq!(s.create_domain(DomainKind::Hvm, 1001, false), Err(Errno::ENOMEM));
    assert_eq!(s.free_frames(), 1000);
    assert_eq!(s.create_domain(DomainKind::Hvm, machine::RAM_PAGES_MAX + 1, false), Err(Errno::EINVAL));
    let d = s.create_domain(DomainKind::Hvm, 1000, false).unwrap();
    assert_eq!(s.machine().sshm_alloc(0), Err(Errno::ENOMEM));
    s.destroy_domain(d).unwrap();
    assert_eq!(s.free_frames(), 1000);
    ok(&s);
}

#[test]
fn guest_memory_crosses_pages_and_read_only_writes_are_discarded_and_counted() {
    let s = sim(64);
    let d = s.create_domain(DomainKind::Hvm, 4, false).unwrap();
    let data: Vec<u8> = (0..100).collect();
    s.guest_write(d, PAGE_SIZE - 50, &data).unwrap();
    let mut back = vec![0u8; 100];
    s.guest_read(d, PAGE_SIZE - 50, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(s.guest_read(d, 4 * PAGE_SIZE - 1, &mut [0u8; 2]), Err(Errno::EFAULT), "hole");
    assert_eq!(s.guest_read(d, u64::MAX, &mut [0u8; 2]), Err(Errno::EFAULT), "overflow");
    s.set_ram_writable(d, Gfn(1), false).unwrap();
    // Xen's __hvm_copy(): the read-only page's piece is dropped, the
    // writable one written, and the copy succeeds.
    assert_eq!(s.guest_write(d, PAGE_SIZE - 1, &[9, 9]), Ok(()));
    assert_eq!(s.machine().write_discards(), 1);
    let mut b = [0u8; 1];
    s.guest_read(d, PAGE_SIZE - 1, &mut b).unwrap();
    assert_eq!(b, [9], "the writable piece was written");
    s.guest_read(d, PAGE_SIZE, &mut b).unwrap();
    assert_eq!(b, [data[50]], "the read-only piece was discarded, and is still readable");
    assert_eq!(s.guest_write(d, 2 * PAGE_SIZE - 1, &[7; 3 * PAGE_SIZE as usize]), Err(Errno::EFAULT));
    s.guest_read(d, 2 * PAGE_SIZE - 1, &mut b).unwrap();
    assert_eq!(b, [0], "a hole anywhere in the range: nothing written");
    ok(&s);
}

#[test]
fn platform_p2m_insert_takes_refs_and_never_replaces() {
    let s = sim(2048);
    let d = s.create_domain(DomainKind::Hvm, 16, false).unwrap();
    let pv = s.create_domain(DomainKind::Pv, 1, false).unwrap();
    let m = s.machine();
    let h = m.domain(d).unwrap();
    let big = m.sshm_alloc(9).unwrap();
    assert!(big.is_aligned(9));
    assert_eq!(m.p2m_insert(&h, Gfn(0), big, 0, P2mKind::SharedRw), Err(Errno::EBUSY), "over RAM");
    assert_eq!(m.p2m_insert(&h, Gfn(1024), Mfn(big.0 + 1), 9, P2mKind::SharedRw), Err(Errno::EINVAL));
    let ram_mfn = m.p2m_lookup(d, Gfn(0)).unwrap().0;
    assert_eq!(m.p2m_insert(&h, Gfn(4096), ram_mfn, 0, P2mKind::SharedRw), Err(Errno::EINVAL), "not sshm");
    let hpv = m.domain(pv).unwrap();
    assert_eq!(m.p2m_insert(&hpv, Gfn(4096), big, 0, P2mKind::SharedRw), Err(Errno::EOPNOTSUPP));
    m.p2m_insert(&h, Gfn(1024), big, 9, P2mKind::SharedRo).unwrap();
    assert!(m.p2m_populated(&h, Gfn(1500), 0));
    assert_eq!(m.frame(big).unwrap().count, 2, "allocation + mapping");
    let mut b = [0u8; 1];
    s.guest_read(d, 1024 * PAGE_SIZE, &mut b).unwrap();
    assert_eq!(s.guest_write(d, 1024 * PAGE_SIZE, &[b[0] ^ 1]), Ok(()), "shared ro: discarded");
    let before = b[0];
    s.guest_read(d, 1024 * PAGE_SIZE, &mut b).unwrap();
    assert_eq!(b, [before], "shared ro: unchanged");
    ok(&s);
    m.sshm_free(big, 9);
    assert_eq!(m.frame(big).unwrap().count, 1, "still mapped: not freed");
    ok(&s);
    assert_eq!(m.p2m_remove(&h, Gfn(1024), big, 0), Err(Errno::EINVAL), "not exactly that entry");
    assert_eq!(m.p2m_remove(&h, Gfn(0), ram_mfn, 0), Err(Errno::EINVAL), "RAM is not removable");
    m.p2m_remove(&h, Gfn(1024), big, 9).unwrap();
    assert_eq!(m.frame(big).unwrap().count, 0);
    assert_eq!(m.sshm_pages(), 0);
    ok(&s);
}

#[test]
fn pins_need_owned_writable_ram() {
    let s = sim(128);
    let d = s.create_domain(DomainKind::Hvm, 4, false).unwrap();
    let m = s.machine();
    let h = m.domain(d).unwrap();
    let mfn = m.page_pin_writable(&h, Gfn(2)).unwrap();
    assert_eq!(m.frame(mfn).unwrap().type_count, 1);
    assert_eq!(m.page_pin_writable(&h, Gfn(9)), Err(Errno::EINVAL), "unpopulated");
    s.set_ram_writable(d, Gfn(3), false).unwrap();
    assert_eq!(m.page_pin_writable(&h, Gfn(3)), Err(Errno::EINVAL), "read-only");
    let sh = m.sshm_alloc(0).unwrap();
    m.p2m_insert(&h, Gfn(100), sh, 0, P2mKind::SharedRw).unwrap();
    assert_eq!(m.page_pin_writable(&h, Gfn(100)), Err(Errno::EINVAL), "shared memory");
    ok(&s);
    m.page_unpin(mfn);
    ok(&s);
    m.page_unpin(mfn);
    let e = s.check_machine().unwrap_err();
    assert!(e.contains("not pinned"), "{e}");
}

#[test]
fn ring_maps_translate_and_leaks_are_reported() {
    let s = sim(128);
    let d = s.create_domain(DomainKind::Hvm, 4, false).unwrap();
    let m = s.machine();
    let h = m.domain(d).unwrap();
    let a = m.page_pin_writable(&h, Gfn(1)).unwrap();
    let b = m.page_pin_writable(&h, Gfn(2)).unwrap();
    let map = m.ring_map(&[a, b]).unwrap();
    assert_eq!(m.ring_maps(), (1, 2));
    // Across the page boundary: the end of `a`, the start of `b`.
    m.ring_map_write(&map, PAGE_SIZE as usize - 2, &[1, 2, 3, 4]);
    let mut x = [0u8; 2];
    m.frame_read(a, PAGE_SIZE as usize - 2, &mut x);
    assert_eq!(x, [1, 2]);
    m.frame_read(b, 0, &mut x);
    assert_eq!(x, [3, 4]);
    let mut y = [0u8; 4];
    m.ring_map_read(&map, PAGE_SIZE as usize - 2, &mut y);
    assert_eq!(y, [1, 2, 3, 4]);
    ok(&s);
    m.ring_unmap(map);
    assert_eq!(m.ring_maps(), (0, 0));
    ok(&s);
    // A mapping left behind when its pages are unpinned (a ring
    // unregistered, torn down at death or reset without its unmap).
    let _leaked = m.ring_map(&[a, b]).unwrap();
    m.page_unpin(a);
    let e = s.check_machine().unwrap_err();
    assert!(e.contains("while a ring mapping of it is live"), "{e}");
    assert!(e.contains("ring mapping leaked"), "{e}");
}

#[test]
fn frame_access_after_free_is_reported() {
    let s = sim(16);
    let m = s.machine();
    let mfn = m.sshm_alloc(0).unwrap();
    m.frame_write(mfn, 8, &[1, 2]);
    let mut b = [0u8; 2];
    m.frame_read(mfn, 8, &mut b);
    assert_eq!(b, [1, 2]);
    m.sshm_free(mfn, 0);
    ok(&s);
    m.frame_read(mfn, 0, &mut b);
    assert!(s.check_machine().unwrap_err().contains("use after free"));
}

#[test]
fn hypercall_entry_errors_follow_xen() {
    let s = sim(256);
    let d0 = s.create_domain(DomainKind::Pvh, 8, true).unwrap();
    let du = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    let op = hypercall_abi::sshm::StaticShm::default();
    let mut dc = Domctl::static_shm(du, &op);
    assert_eq!(s.domctl(du, 0, &mut dc), Errno::EPERM.to_ret(), "XSM dummy: control domain only");
    dc.interface_version = hypercall_abi::domctl::INTERFACE_VERSION_4_17;
    assert_eq!(s.domctl(d0, 0, &mut dc), Errno::EACCES.to_ret());
    let mut other = Domctl::static_shm(du, &op);
    other.cmd = 1;
    assert_eq!(s.domctl(d0, 0, &mut other), Errno::ENOSYS.to_ret());
    assert_eq!(s.hypercall(d0, hypercall::DOMCTL, [100 * PAGE_SIZE, 0, 0, 0, 0]), Errno::EFAULT.to_ret());
    assert_eq!(s.hypercall(d0, 999, [0; 5]), Errno::ENOSYS.to_ret());
    assert_eq!(s.hypercall(DomId(77), 999, [0; 5]), Errno::ESRCH.to_ret());
    s.destroy_domain(du).unwrap();
    assert_eq!(s.hypercall(du, hypercall::V4V_OP, [0; 5]), Errno::ESRCH.to_ret(), "dead caller");
    assert_eq!(s.hypercall(d0, hypercall::GRANT_TABLE_OP, [77, 0, 0, 0, 0]), Errno::ENOSYS.to_ret());
    assert_eq!(
        s.hypercall(d0, hypercall::GRANT_TABLE_OP, [0, 0, u64::from(grant::BATCH_MAX) + 1, 0, 0]),
        Errno::EINVAL.to_ret()
    );
    ok(&s);
}

/// Guest-side helpers for the grant hypercalls: ops are staged at gfn 0 of
/// the caller.
fn gnt_map(s: &Sim, mapper: DomId, granter: DomId, gref: u32, gfn: u64, readonly: bool) -> MapGrantRef {
    let flags = grant::GNTMAP_HOST_MAP | if readonly { grant::GNTMAP_READONLY } else { 0 };
    let op = MapGrantRef { host_addr: gfn * PAGE_SIZE, flags, gref, dom: granter.0, ..Default::default() };
    s.guest_write(mapper, 0, &op.to_bytes()).unwrap();
    assert_eq!(s.hypercall(mapper, hypercall::GRANT_TABLE_OP, [0, 0, 1, 0, 0]), 0);
    let mut b = [0u8; MapGrantRef::SIZE];
    s.guest_read(mapper, 0, &mut b).unwrap();
    MapGrantRef::from_bytes(&b)
}

fn gnt_unmap(s: &Sim, mapper: DomId, handle: u32, gfn: u64) -> i16 {
    let op = UnmapGrantRef { host_addr: gfn * PAGE_SIZE, handle, ..Default::default() };
    s.guest_write(mapper, 0, &op.to_bytes()).unwrap();
    assert_eq!(s.hypercall(mapper, hypercall::GRANT_TABLE_OP, [1, 0, 1, 0, 0]), 0);
    let mut b = [0u8; UnmapGrantRef::SIZE];
    s.guest_read(mapper, 0, &mut b).unwrap();
    UnmapGrantRef::from_bytes(&b).status
}

fn gnt_copy(s: &Sim, caller: DomId, op: grant::Copy) -> i16 {
    s.guest_write(caller, 0, &op.to_bytes()).unwrap();
    assert_eq!(s.hypercall(caller, hypercall::GRANT_TABLE_OP, [5, 0, 1, 0, 0]), 0);
    let mut b = [0u8; grant::Copy::SIZE];
    s.guest_read(caller, 0, &mut b).unwrap();
    grant::Copy::from_bytes(&b).status
}

#[test]
fn grant_map_unmap_and_end_access() {
    let s = sim(256);
    let a = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    let b = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    s.guest_write(a, 3 * PAGE_SIZE, b"hello").unwrap();
    s.grant_write(a, 5, GrantEntry::permit(b, Gfn(3), false)).unwrap();
    let m = gnt_map(&s, b, a, 5, 100, false);
    assert_eq!(m.status, gntst::OKAY);
    let mut buf = [0u8; 5];
    s.guest_read(b, 100 * PAGE_SIZE, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    s.guest_write(b, 100 * PAGE_SIZE, b"HELLO").unwrap();
    s.guest_read(a, 3 * PAGE_SIZE, &mut buf).unwrap();
    assert_eq!(&buf, b"HELLO", "the same frame");
    let e = s.grant_entry(a, 5).unwrap();
    assert_eq!(e.flags & (grant::GTF_READING | grant::GTF_WRITING), grant::GTF_READING | grant::GTF_WRITING);
    ok(&s);
    assert_eq!(s.grant_end_access(a, 5), Err(Errno::EBUSY), "refused while mapped");
    assert_eq!(s.grant_write(a, 5, GrantEntry::default()), Err(Errno::EBUSY));
    assert_eq!(gnt_map(&s, b, a, 5, 100, false).status, gntst::GENERAL_ERROR, "over a populated gfn");
    assert_eq!(gnt_map(&s, b, a, 5, 1, false).status, gntst::GENERAL_ERROR, "over RAM");
    assert_eq!(gnt_unmap(&s, b, m.handle + 1, 100), gntst::BAD_HANDLE);
    assert_eq!(gnt_unmap(&s, b, m.handle, 101), gntst::BAD_VIRT_ADDR);
    assert_eq!(gnt_unmap(&s, b, m.handle, 100), gntst::OKAY);
    assert!(s.machine().p2m_lookup(b, Gfn(100)).is_none());
    s.grant_end_access(a, 5).unwrap();
    assert_eq!(gnt_map(&s, b, a, 5, 100, false).status, gntst::PERMISSION_DENIED, "access ended");
    assert_eq!(s.grant_end_access(a, grant::GRANT_ENTRIES), Err(Errno::EINVAL));
    ok(&s);
}

#[test]
fn grant_bad_cases() {
    let s = sim(1024);
    let a = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    let b = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    let c = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    // A page the granter does not own: a static shared memory page.
    let m = s.machine();
    let sh = m.sshm_alloc(0).unwrap();
    m.p2m_insert(&m.domain(a).unwrap(), Gfn(50), sh, 0, P2mKind::SharedRw).unwrap();
    s.grant_write(a, 1, GrantEntry::permit(b, Gfn(50), false)).unwrap();
    assert_eq!(gnt_map(&s, b, a, 1, 100, false).status, gntst::BAD_PAGE, "only owned pages");
    // A page the granter does not have.
    s.grant_write(a, 2, GrantEntry::permit(b, Gfn(60), false)).unwrap();
    assert_eq!(gnt_map(&s, b, a, 2, 100, false).status, gntst::BAD_PAGE);
    // Granted to someone else; read-only grant mapped writable.
    s.grant_write(a, 3, GrantEntry::permit(c, Gfn(1), false)).unwrap();
    assert_eq!(gnt_map(&s, b, a, 3, 100, false).status, gntst::PERMISSION_DENIED);
    s.grant_write(a, 4, GrantEntry::permit(b, Gfn(1), true)).unwrap();
    assert_eq!(gnt_map(&s, b, a, 4, 100, false).status, gntst::PERMISSION_DENIED);
    let ro = gnt_map(&s, b, a, 4, 100, true);
    assert_eq!(ro.status, gntst::OKAY);
    let discards = s.machine().write_discards();
    assert_eq!(s.guest_write(b, 100 * PAGE_SIZE, &[1]), Ok(()), "grant ro: discarded");
    assert_eq!(s.machine().write_discards(), discards + 1);
    assert_eq!(gnt_map(&s, b, a, grant::GRANT_ENTRIES, 101, true).status, gntst::BAD_GNTREF);
    assert_eq!(gnt_map(&s, b, DomId(99), 4, 101, true).status, gntst::BAD_DOMAIN);
    let mut op = MapGrantRef { host_addr: 101 * PAGE_SIZE + 1, flags: 2, gref: 4, dom: a.0, ..Default::default() };
    s.guest_write(b, 0, &op.to_bytes()).unwrap();
    s.hypercall(b, hypercall::GRANT_TABLE_OP, [0, 0, 1, 0, 0]);
    let mut raw = [0u8; MapGrantRef::SIZE];
    s.guest_read(b, 0, &mut raw).unwrap();
    op = MapGrantRef::from_bytes(&raw);
    assert_eq!(op.status, gntst::BAD_VIRT_ADDR);
    assert_eq!(s.hypercall(b, hypercall::GRANT_TABLE_OP, [0, 200 * PAGE_SIZE, 1, 0, 0]), Errno::EFAULT.to_ret());
    ok(&s);
}

#[test]
fn grant_copy_checks_both_sides() {
    let s = sim(256);
    let a = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    let b = s.create_domain(DomainKind::Hvm, 8, false).unwrap();
    s.guest_write(b, 2 * PAGE_SIZE + 16, b"from b").unwrap();
    s.grant_write(a, 7, GrantEntry::permit(b, Gfn(4), false)).unwrap();
    let mut op = grant::Copy {
        source: grant::CopyPtr { gref_or_gfn: 2, domid: DomId::SELF_.0, offset: 16 },
        dest: grant::CopyPtr { gref_or_gfn: 7, domid: a.0, offset: 100 },
        len: 6,
        flags: grant::GNTCOPY_DEST_GREF,
        status: 0,
    };
    assert_eq!(gnt_copy(&s, b, op), gntst::OKAY);
    let mut buf = [0u8; 6];
    s.guest_read(a, 4 * PAGE_SIZE + 100, &mut buf).unwrap();
    assert_eq!(&buf, b"from b");
    op.dest.offset = 4095;
    assert_eq!(gnt_copy(&s, b, op), gntst::BAD_COPY_ARG);
    op.dest.offset = 0;
    op.source.domid = a.0;
    assert_eq!(gnt_copy(&s, b, op), gntst::PERMISSION_DENIED, "a gfn of another domain");
    op.source.domid = b.0;
    s.grant_write(a, 7, GrantEntry::permit(b, Gfn(4), true)).unwrap();
    assert_eq!(gnt_copy(&s, b, op), gntst::PERMISSION_DENIED, "read-only grant as destination");
    ok(&s);
}

#[test]
fn classic_grant_zombie_and_its_resolution() {
    let s = sim(512);
    let granter = s.create_domain(DomainKind::Hvm, 16, false).unwrap();
    let peer = s.create_domain(DomainKind::Hvm, 16, false).unwrap();
    s.grant_write(granter, 0, GrantEntry::permit(peer, Gfn(5), false)).unwrap();
    let m = gnt_map(&s, peer, granter, 0, 200, false);
    assert_eq!(m.status, gntst::OKAY);
    let free_before = s.free_frames();
    s.destroy_domain(granter).unwrap();
    assert_eq!(s.domain_state(granter), Some(DomainState::Dying), "a zombie");
    assert_eq!(s.free_frames(), free_before + 15, "all but the mapped page came back");
    let z = s.machine().zombies();
    assert_eq!(z, vec![Zombie { id: granter, pages: 1, held_by: vec![peer], pinned: 0 }]);
    assert_eq!(s.machine().zombie_log(), vec![granter]);
    ok(&s);
    // The id stays taken while the zombie lives.
    let other = s.create_domain(DomainKind::Hvm, 1, false).unwrap();
    assert_ne!(other, granter);
    s.guest_write(peer, 200 * PAGE_SIZE, b"still works").unwrap();
    assert_eq!(gnt_unmap(&s, peer, m.handle, 200), gntst::OKAY);
    assert_eq!(s.domain_state(granter), Some(DomainState::Dead), "the unmap ended it");
    assert!(s.machine().zombies().is_empty());
    ok(&s);
}

#[test]
fn killing_the_mapper_releases_its_mappings() {
    let s = sim(512);
    let granter = s.create_domain(DomainKind::Hvm, 16, false).unwrap();
    let peer = s.create_domain(DomainKind::Hvm, 16, false).unwrap();
    s.grant_write(granter, 0, GrantEntry::permit(peer, Gfn(5), false)).unwrap();
    assert_eq!(gnt_map(&s, peer, granter, 0, 200, true).status, gntst::OKAY);
    s.destroy_domain(peer).unwrap();
    assert_eq!(s.domain_state(peer), Some(DomainState::Dead));
    assert_eq!(s.grant_entry(granter, 0).unwrap().flags, grant::GTF_PERMIT_ACCESS, "no longer in use");
    s.grant_end_access(granter, 0).unwrap();
    s.destroy_domain(granter).unwrap();
    assert_eq!(s.free_frames(), 512);
    ok(&s);
}

#[test]
fn event_channels_and_virqs() {
    let s = sim(64);
    let a = s.create_domain(DomainKind::Hvm, 1, false).unwrap();
    let b = s.create_domain(DomainKind::Hvm, 1, false).unwrap();
    let pa = s.evtchn_alloc_unbound(a, b).unwrap();
    assert_eq!(s.evtchn_bind_interdomain(a, a, pa), Err(Errno::EINVAL), "not for a");
    let pb = s.evtchn_bind_interdomain(b, a, pa).unwrap();
    s.evtchn_send(b, pb).unwrap();
    assert_eq!(s.evtchn_take_pending(a, pa), Ok(true));
    assert_eq!(s.evtchn_take_pending(a, pa), Ok(false));
    assert_eq!(s.evtchn_send(b, 77), Err(Errno::EINVAL));
    ok(&s);
    let m = s.machine();
    let ha = m.domain(a).unwrap();
    m.send_virq(&ha, VIRQ_V4V);
    assert_eq!((m.virq_count(a, VIRQ_V4V), m.virq_pending(a, VIRQ_V4V)), (1, false), "unbound: counted only");
    let pv = s.evtchn_bind_virq(a, VIRQ_V4V).unwrap();
    m.send_virq(&ha, VIRQ_V4V);
    assert_eq!((m.virq_count(a, VIRQ_V4V), m.virq_pending(a, VIRQ_V4V)), (2, true));
    assert_eq!(s.evtchn_take_pending(a, pv), Ok(true));
    s.destroy_domain(a).unwrap();
    // b's end goes back to unbound.
    s.evtchn_send(b, pb).unwrap();
    ok(&s);
    s.evtchn_close(b, pb).unwrap();
    assert_eq!(s.evtchn_close(b, pb), Err(Errno::EINVAL));
    ok(&s);
}

#[test]
fn stale_handles_fail_after_id_reuse() {
    let s = sim(64);
    let _d0 = s.create_domain(DomainKind::Hvm, 1, true).unwrap();
    let d = s.create_domain(DomainKind::Hvm, 1, false).unwrap();
    let m = s.machine();
    let h = m.domain(d).unwrap();
    s.destroy_domain(d).unwrap();
    assert_eq!(m.domain(d).err(), Some(Errno::ESRCH));
    assert!(m.domain_info(&h).dying);
    let sh = m.sshm_alloc(0).unwrap();
    assert_eq!(m.p2m_insert(&h, Gfn(10), sh, 0, P2mKind::SharedRw), Err(Errno::ESRCH));
    assert_eq!(m.page_pin_writable(&h, Gfn(0)), Err(Errno::ESRCH));
    assert_eq!(m.copy_to_guest(&h, 0, &[1]), Err(Errno::EFAULT));
    m.sshm_free(sh, 0);
    ok(&s);
}

#[test]
fn checker_catches_a_leaked_reference() {
    let s = sim(64);
    let d = s.create_domain(DomainKind::Hvm, 2, false).unwrap();
    let mfn = s.machine().p2m_lookup(d, Gfn(1)).unwrap().0;
    // A reference taken that nobody holds, as a buggy map path would.
    s.machine().lock().frames.get_ref(mfn.0).unwrap();
    let e = s.check().unwrap_err();
    assert!(e.contains("count 2 but 1 held"), "{e}");
    assert!(e.contains("SIM_SEED=0x1"), "the failure says how to replay: {e}");
    s.destroy_domain(d).unwrap();
    let e = s.check().unwrap_err();
    assert!(e.contains("leak") || e.contains("count 1 but 0 held"), "{e}");
}

#[test]
fn sshm_frames_outside_any_region_are_reported() {
    let s = sim(16);
    let m = s.machine().sshm_alloc(0).unwrap();
    assert_eq!(s.check_machine(), Ok(()), "allowed for Platform-level tests");
    let e = s.check().unwrap_err();
    assert!(e.contains("regions account for 0"), "{e}");
    s.machine().sshm_free(m, 0);
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn concurrent_callers_keep_invariants() {
    let s = std::sync::Arc::new(sim(8192));
    s.machine().set_preempt(Preempt::OneIn(3));
    let d0 = s.create_domain(DomainKind::Pvh, 16, true).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..40u64 {
                    let d = s.create_domain(DomainKind::Hvm, 8 + i % 5, false).unwrap();
                    s.grant_write(d, 0, GrantEntry::permit(d0, Gfn(1), false)).unwrap();
                    s.guest_write(d, 0, &[t as u8; 32]).unwrap();
                    let h = s.machine().domain(d).unwrap();
                    let sh = s.machine().sshm_alloc(0).unwrap();
                    s.machine().p2m_insert(&h, Gfn(64), sh, 0, P2mKind::SharedRw).unwrap();
                    s.machine().p2m_remove(&h, Gfn(64), sh, 0).unwrap();
                    s.machine().sshm_free(sh, 0);
                    s.hypercall(d, hypercall::V4V_OP, [0; 5]);
                    s.destroy_domain(d).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    ok(&s);
    s.destroy_domain(d0).unwrap();
    assert_eq!(s.free_frames(), 8192);
    ok(&s);
}

/// The locking rules (`rust_hv::locking`) are checked: an entry point
/// asserts it holds no lock, and a forbidden `Platform` call under one
/// panics naming the lock held and what the call takes.
#[test]
fn locking_rules_are_checked_at_entry_and_per_call() {
    use rust_hv::platform::Lock;
    let s = sim(256);
    let d = s.create_domain(DomainKind::Hvm, 16, false).unwrap();
    let dom = s.machine().domain(d).unwrap();
    let held = <lock::SimLock<()> as Lock<()>>::new(&rust_hv::locking::SSHM_STATE, ());
    let message = |f: &dyn Fn()| {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("must panic");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    // The entry assertion is Xen's ASSERT: debug builds only.
    if cfg!(debug_assertions) {
        let m = message(&|| {
            held.with(|()| {
                let _ = s.hv().v4v.op(s.machine(), &dom, hypercall_abi::v4v::OP_NOTIFY, [0; 4]);
            })
        });
        assert!(m.contains("entered with lock `sshm.state`"), "{m}");
    }
    let m = message(&|| held.with(|()| s.machine().send_virq(&dom, VIRQ_V4V)));
    assert!(m.contains("Platform::send_virq") && m.contains("`sshm.state`"), "{m}");
    // Nothing is left held: the same calls go through without the lock.
    assert_eq!(s.hv().v4v.op(s.machine(), &dom, hypercall_abi::v4v::OP_NOTIFY, [0; 4]), Ok(0));
    s.machine().send_virq(&dom, VIRQ_V4V);
}
