//! The libxl create step (tools/libs/light/libxl_sshm.c) and `xl
//! sshm-list` against the simulator: the example configs, create/destroy
//! in every order, racing creates, and failures half way through a create.

use std::sync::Arc;

use hypercall_abi::types::DomId;
use libxl_glue::{parse, static_shm_items, Fault, Toolstack, Xenstore};
use simulator::{Config, DomainKind, Sim};

const PAGE: u64 = 4096;
/// Guest RAM of every test domain: 4 MiB at gfn 0 (regions go above).
const RAM_PAGES: u64 = 1024;
/// Toolstack windows in dom0: 16 pages each from page 256.
const WINDOW_PAGES: u64 = 16;

struct World {
    sim: Arc<Sim>,
    xs: Xenstore,
    dom0: DomId,
    baseline_free: u64,
    next_window: u64,
}

impl World {
    fn new() -> World {
        let sim = Arc::new(Sim::new(Config { frames: 1 << 16, ..Config::default() }));
        let dom0 = sim.create_domain(DomainKind::Pvh, 1024, true).expect("dom0");
        let baseline_free = sim.free_frames();
        World { sim, xs: Xenstore::new(), dom0, baseline_free, next_window: 0 }
    }

    /// One `xl` process: its own toolstack instance and dom0 window.
    fn xl(&mut self) -> Toolstack {
        let gpa = (256 + self.next_window * WINDOW_PAGES) * PAGE;
        self.next_window += 1;
        Toolstack::open(self.sim.clone(), &self.xs, self.dom0, gpa, WINDOW_PAGES * PAGE)
    }

    fn check(&self) {
        if let Err(e) = self.sim.check() {
            panic!("invariants (seed {}): {e}", self.sim.seed());
        }
    }
}

/// `xl create`: parse, build the domain, attach; on failure libxl destroys
/// the domain. Returns the domid, or libxl's rc and log.
fn create(sim: &Sim, xl: &mut Toolstack, kind: DomainKind, items: &[&str]) -> Result<DomId, (i32, String)> {
    let (dc, report) = parse("test.cfg", items);
    let mut dc = dc.unwrap_or_else(|e| panic!("parse failed ({e}): {report}"));
    dc.set_type(kind == DomainKind::Pv);
    let domid = sim.create_domain(kind, RAM_PAGES, false).expect("domain build");
    xl.xenstore().make_domain(u32::from(domid.0));
    let (rc, log) = xl.attach(domid, &mut dc);
    if rc != 0 {
        sim.destroy_domain(domid).expect("destroy after failed create");
        xl.xenstore().remove_domain(u32::from(domid.0));
        return Err((rc, log));
    }
    Ok(domid)
}

fn example(name: &str) -> Vec<String> {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    static_shm_items(&std::fs::read_to_string(&path).expect("example config"))
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const HEADER: &str = "Name                             Size(KiB) Prot Persistent State     Attach Domains\n";

#[test]
fn example_configs_and_sshm_list() {
    let mut w = World::new();
    let mut xl = w.xl();
    let producer = example("sshm-producer.cfg");
    let consumer = example("sshm-consumer.cfg");
    assert_eq!(producer.len(), 2);
    assert_eq!(consumer.len(), 2);

    assert_eq!(xl.sshm_list().unwrap(), HEADER);
    let p = create(&w.sim, &mut xl, DomainKind::Pvh, &refs(&producer)).unwrap();
    let c = create(&w.sim, &mut xl, DomainKind::Hvm, &refs(&consumer)).unwrap();
    w.check();
    let list = xl.sshm_list().unwrap();
    println!("{list}");
    assert_eq!(
        list,
        format!(
            "{HEADER}\
             ring0                                 2048 rw   no         ready          2 {p},{c}\n\
             status                                  64 rw   yes        ready          2 {p},{c}\n",
            p = p.0,
            c = c.0
        )
    );

    // Destroy needs no toolstack step: the hypervisor detaches.
    w.sim.destroy_domain(p).unwrap();
    assert_eq!(
        xl.sshm_list().unwrap(),
        format!(
            "{HEADER}\
             ring0                                 2048 rw   no         ready          1 {c}\n\
             status                                  64 rw   yes        ready          1 {c}\n",
            c = c.0
        )
    );
    w.sim.destroy_domain(c).unwrap();
    w.check();
    assert_eq!(
        xl.sshm_list().unwrap(),
        format!("{HEADER}status                                  64 rw   yes        ready          0 -\n")
    );
    assert_eq!(xl.unlink("status"), 0);
    assert_eq!(xl.unlink("status"), libc_enoent());
    assert_eq!(xl.sshm_list().unwrap(), HEADER);
    w.check();
    assert_eq!(w.sim.free_frames(), w.baseline_free, "no frame leaked");
}

fn libc_enoent() -> i32 {
    2
}

/// A region whose create is still allocating its backing (in steps of
/// `BUILD_PAGES_STEP` pages, the domctl continuing itself) is listed as
/// `building`; `xl sshm-unlink` cancels the create (which then fails with
/// `-ENOENT`) and every frame comes back.
#[test]
fn sshm_list_shows_a_region_being_built() {
    use hypercall_abi::domctl::Domctl;
    use hypercall_abi::sshm::{StaticShm, BUILD_PAGES_STEP, OP_CREATE, PROT_RW};
    use hypercall_abi::{hypercall, Errno};
    use simulator::Step;

    let mut w = World::new();
    let mut xl = w.xl();
    let mut name = [0u8; hypercall_abi::sshm::NAME_BYTES];
    name[..4].copy_from_slice(b"half");
    let nr_pages = 3 * BUILD_PAGES_STEP;
    let op = StaticShm { op: OP_CREATE, name, nr_pages, prot: PROT_RW, ..Default::default() };
    // Another toolstack's create, one step of it: dom0 page 1000, outside
    // every xl window.
    let gpa = 1000 * PAGE;
    w.sim.guest_write(w.dom0, gpa, &Domctl::static_shm(w.dom0, &op).to_bytes()).unwrap();
    let step = || w.sim.hypercall_step(w.dom0, hypercall::DOMCTL, [gpa, 0, 0, 0, 0]);
    assert_eq!(step(), Step::Continuation);
    assert_eq!(
        xl.sshm_list().unwrap(),
        format!("{HEADER}half                                 24576 rw   no         building       0 -\n")
    );
    assert_eq!(xl.unlink("half"), 0);
    assert_eq!(step(), Step::Done(Errno::ENOENT.to_ret()));
    assert_eq!(xl.sshm_list().unwrap(), HEADER);
    w.check();
    assert_eq!(w.sim.free_frames(), w.baseline_free, "no frame leaked");
}

/// Three guests sharing three regions pairwise; every create order crossed
/// with every destroy order. After each step the attachment counts match a
/// model, and at the end nothing is left.
#[test]
fn create_destroy_in_any_order() {
    let cfgs: [&[&str]; 3] = [
        &["id=ab, begin=0x10000000, size=0x4000", "id=ca, begin=0x10100000, size=0x2000, prot=rw"],
        &["id=ab, begin=0x20000000, size=0x4000", "id=bc, begin=0x20100000, size=0x1000"],
        &["id=bc, begin=0x30000000, size=0x1000", "id=ca, begin=0x30100000, size=0x2000, persistent=no"],
    ];
    let perms: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let mut w = World::new();
    let mut xl = w.xl();
    for create_order in perms {
        for destroy_order in perms {
            let mut live: Vec<(usize, DomId)> = Vec::new();
            for &g in &create_order {
                let d = create(&w.sim, &mut xl, DomainKind::Hvm, cfgs[g]).unwrap();
                live.push((g, d));
                check_counts(&w, &mut xl, &live, &cfgs);
            }
            for &g in &destroy_order {
                let i = live.iter().position(|&(x, _)| x == g).unwrap();
                let (_, d) = live.remove(i);
                w.sim.destroy_domain(d).unwrap();
                check_counts(&w, &mut xl, &live, &cfgs);
            }
            assert_eq!(xl.sshm_list().unwrap(), HEADER);
            assert_eq!(w.sim.free_frames(), w.baseline_free, "{create_order:?} then {destroy_order:?}");
        }
    }
}

/// Every region's attachment count is the number of live guests naming it.
fn check_counts(w: &World, xl: &mut Toolstack, live: &[(usize, DomId)], cfgs: &[&[&str]; 3]) {
    w.check();
    for id in ["ab", "bc", "ca"] {
        let users: Vec<u16> = live
            .iter()
            .filter(|(g, _)| cfgs[*g].iter().any(|e| e.starts_with(&format!("id={id},"))))
            .map(|(_, d)| d.0)
            .collect();
        match xl.info(id) {
            Ok(e) => {
                assert_eq!(e.nr_attachments as usize, users.len(), "{id}");
                let mut want = users.clone();
                want.sort_unstable();
                assert_eq!(&e.domids[..usize::from(e.nr_domids)], &want[..], "{id}");
            }
            Err(errno) => {
                assert_eq!(errno, libc_enoent(), "{id}");
                assert!(users.is_empty(), "{id} vanished while attached");
            }
        }
    }
}

/// Two `xl create`s racing on one id from two threads: both succeed and
/// share one region, whoever wins the create.
#[test]
fn racing_creates_share_one_region() {
    let mut w = World::new();
    let mut xls = vec![w.xl(), w.xl()];
    let mut xl = w.xl();
    for round in 0..40 {
        let id = format!("race{round}");
        let handles: Vec<_> = xls
            .drain(..)
            .enumerate()
            .map(|(t, mut xl)| {
                let sim = w.sim.clone();
                let entry = format!("id={id}, begin={:#x}, size=0x10000", 0x10000000 + t * 0x100000);
                std::thread::spawn(move || (create(&sim, &mut xl, DomainKind::Pvh, &[&entry]), xl))
            })
            .collect();
        let mut doms = Vec::new();
        for h in handles {
            let (r, x) = h.join().unwrap();
            doms.push(r.unwrap());
            xls.push(x);
        }
        let e = xl.info(&id).unwrap();
        assert_eq!(e.nr_attachments, 2);
        assert_eq!(e.nr_pages, 16);
        w.check();
        // Both published, whichever transaction had to run again.
        for (t, d) in doms.iter().enumerate() {
            let key = format!("/local/domain/{}/static_shm/{id}/begin", d.0);
            assert_eq!(w.xs.read_as(u32::from(d.0), &key), Ok(format!("{:#x}", 0x10000000 + t * 0x100000)));
        }
        for d in doms {
            destroy(&w, d);
        }
        assert_eq!(xl.info(&id).err(), Some(libc_enoent()));
    }
    assert_eq!(w.sim.free_frames(), w.baseline_free);
}

const THREE: &[&str] = &[
    "id=one, begin=0x10000000, size=0x4000",
    "id=two, begin=0x10100000, size=0x4000, persistent=yes",
    "id=three, begin=0x10200000, size=0x4000",
];

/// A failure injected at each step of a create leaves no attachment
/// behind, even before libxl destroys the domain, and the error names the
/// entry and explains the errno.
#[test]
fn failure_half_way_leaves_nothing_behind() {
    let mut w = World::new();
    let mut xl = w.xl();
    for skip in 0..3u32 {
        let (dc, _) = parse("test.cfg", THREE);
        let mut dc = dc.unwrap();
        let domid = w.sim.create_domain(DomainKind::Hvm, RAM_PAGES, false).unwrap();
        xl.inject(Fault { skip, errno: 28 /* ENOSPC */ });
        let (rc, log) = xl.attach(domid, &mut dc);
        assert_eq!(rc, -3, "ERROR_FAIL");
        let name = ["one", "two", "three"][skip as usize];
        assert!(
            log.contains(&format!(
                "static_shm[{skip}] id={name}: cannot attach 0x4000 bytes at 0x10{skip}00000: the hypervisor's limit \
                 on static shared memory is reached (see the sshm boot parameters) (errno 28)"
            )),
            "{log}"
        );
        // Rolled back before the domain is destroyed: no attachment.
        assert_eq!(xl.info("one").err(), Some(libc_enoent()));
        assert_eq!(xl.info("three").err(), Some(libc_enoent()));
        if skip > 1 {
            assert_eq!(xl.info("two").unwrap().nr_attachments, 0);
        }
        w.check();
        w.sim.destroy_domain(domid).unwrap();
    }
    assert_eq!(xl.unlink("two"), 0);
    assert_eq!(w.sim.free_frames(), w.baseline_free);
}

/// Failures the hypervisor reports, each rolled back and explained.
#[test]
fn hypervisor_errors_are_explained() {
    let mut w = World::new();
    let mut xl = w.xl();
    let first =
        create(&w.sim, &mut xl, DomainKind::Hvm, &["id=shared, begin=0x10000000, size=0x8000, prot=ro"]).unwrap();

    let cases: &[(&[&str], &str)] = &[
        (
            &["id=fresh, begin=0x10000000, size=0x1000", "id=shared, begin=0x10100000, size=0x4000"],
            "static_shm[1] id=shared: the region exists with size 0x8000 (persistent=no), this config asks for size \
             0x4000 (persistent=no): sizes and persistence must match",
        ),
        (
            &["id=fresh, begin=0x10000000, size=0x1000", "id=shared, begin=0x10100000, size=0x8000, persistent=yes"],
            "static_shm[1] id=shared: the region exists with size 0x8000 (persistent=no), this config asks for size \
             0x8000 (persistent=yes): sizes and persistence must match",
        ),
        (
            &["id=fresh, begin=0x10000000, size=0x1000", "id=ram, begin=0x200000, size=0x1000"],
            "static_shm[1] id=ram: cannot attach 0x1000 bytes at 0x200000: the guest physical range is already in \
             use (RAM, MMIO or another region) (errno 16)",
        ),
    ];
    for (items, want) in cases {
        let (rc, log) = create(&w.sim, &mut xl, DomainKind::Hvm, items).unwrap_err();
        assert_eq!(rc, -3);
        assert!(log.contains(want), "{log}");
        assert_eq!(xl.info("fresh").err(), Some(libc_enoent()), "rolled back");
        w.check();
    }

    // libxl refuses PV guests before asking the hypervisor.
    let (rc, log) = create(&w.sim, &mut xl, DomainKind::Pv, &["id=pv, begin=0x10000000, size=0x1000"]).unwrap_err();
    assert_eq!(rc, -6, "ERROR_INVAL");
    assert!(log.contains("static_shm needs an HVM or PVH guest"), "{log}");

    w.sim.destroy_domain(first).unwrap();
    assert_eq!(xl.sshm_list().unwrap(), HEADER);
    assert_eq!(w.sim.free_frames(), w.baseline_free);
}

const EACCES: i32 = 13;

/// `xl destroy`: the hypervisor detaches, libxl removes the domain's
/// xenstore directory.
fn destroy(w: &World, d: DomId) {
    w.sim.destroy_domain(d).unwrap();
    w.xs.remove_domain(u32::from(d.0));
}

/// What the guest finds in xenstore (xl.cfg(5), static_shm): each
/// attachment under its own home, every node owned by dom0 and readable by
/// the guest only, written before the guest runs and gone with the domain.
#[test]
fn attachments_published_read_only_for_the_guest() {
    let mut w = World::new();
    let mut xl = w.xl();
    let p = create(&w.sim, &mut xl, DomainKind::Pvh, &refs(&example("sshm-producer.cfg"))).unwrap().0;
    let c = create(&w.sim, &mut xl, DomainKind::Pvh, &refs(&example("sshm-consumer.cfg"))).unwrap().0;
    let none = create(&w.sim, &mut xl, DomainKind::Pvh, &[]).unwrap().0;

    let home = |d: u16| format!("/local/domain/{d}");
    let dump = w.xs.dump(&home(c));
    println!("{dump}");
    assert_eq!(
        dump,
        format!(
            "/local/domain/{c} = \"\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm = \"\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/ring0 = \"\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/ring0/begin = \"0x20000000\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/ring0/offset = \"0x0\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/ring0/prot = \"rw\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/ring0/size = \"0x200000\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/status = \"\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/status/begin = \"0x20400000\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/status/offset = \"0x8000\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/status/prot = \"ro\"  (n0,r{c})\n\
             /local/domain/{c}/static_shm/status/size = \"0x8000\"  (n0,r{c})\n"
        )
    );
    assert_eq!(
        w.xs.dump(&format!("{}/static_shm", home(p))),
        format!(
            "/local/domain/{p}/static_shm = \"\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/ring0 = \"\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/ring0/begin = \"0x10000000\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/ring0/offset = \"0x0\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/ring0/prot = \"rw\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/ring0/size = \"0x200000\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/status = \"\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/status/begin = \"0x10200000\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/status/offset = \"0x0\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/status/prot = \"rw\"  (n0,r{p})\n\
             /local/domain/{p}/static_shm/status/size = \"0x10000\"  (n0,r{p})\n"
        )
    );
    // No static_shm entries, no directory.
    assert_eq!(w.xs.dump(&format!("{}/static_shm", home(none))), "");

    // The guest reads its keys and can change none of them; another guest
    // cannot even read them.
    let (gc, gp) = (u32::from(c), u32::from(p));
    let key = format!("{}/static_shm/status/prot", home(c));
    assert_eq!(w.xs.read_as(gc, &key), Ok("ro".to_string()));
    assert_eq!(w.xs.write_as(gc, &key, "rw"), Err(EACCES));
    assert_eq!(w.xs.rm_as(gc, &key), Err(EACCES));
    assert_eq!(w.xs.rm_as(gc, &format!("{}/static_shm", home(c))), Err(EACCES));
    assert_eq!(w.xs.write_as(gc, &format!("{}/static_shm/status/extra", home(c)), "1"), Err(EACCES));
    assert_eq!(w.xs.write_as(gc, &format!("{}/static_shm/fake/begin", home(c)), "0x0"), Err(EACCES));
    assert_eq!(w.xs.read_as(gp, &key), Err(EACCES));
    assert_eq!(w.xs.write_as(gp, &key, "rw"), Err(EACCES));
    assert_eq!(w.xs.read_as(gc, &key), Ok("ro".to_string()));

    // Gone with the domain; the other guest's keys stay.
    destroy(&w, DomId(c));
    assert_eq!(w.xs.dump(&home(c)), "");
    assert_eq!(w.xs.read_as(gp, &format!("{}/static_shm/ring0/size", home(p))), Ok("0x200000".to_string()));
    destroy(&w, DomId(p));
    destroy(&w, DomId(none));
    assert_eq!(w.xs.dump("/local/domain"), "/local/domain = \"\"  (n0)\n");
    assert_eq!(xl.unlink("status"), 0);
    w.check();
    assert_eq!(w.sim.free_frames(), w.baseline_free);
}

/// A xenstore failure at any step of publishing fails the create: nothing
/// is published (the transaction is dropped) and every attachment is
/// detached again, as for an attach failure.
#[test]
fn publish_failure_rolls_back_attachments() {
    let mut w = World::new();
    let mut xl = w.xl();
    let items = ["id=pa, begin=0x10000000, size=0x4000", "id=pb, begin=0x10100000, size=0x2000, prot=ro"];
    // The directory (a write and its permissions), then per entry its
    // directory and four keys, each a write and its permissions.
    let steps = 2 + 2 * (2 + 4 * 2);
    for skip in 0..steps {
        w.xs.inject(skip, 5 /* EIO */);
        let (rc, log) = create(&w.sim, &mut xl, DomainKind::Pvh, &items).unwrap_err();
        assert_eq!(rc, -3, "ERROR_FAIL at step {skip}");
        assert!(log.contains("static_shm: cannot publish the regions in xenstore for the guest"), "{log}");
        assert_eq!(xl.info("pa").err(), Some(libc_enoent()), "step {skip}: rolled back");
        assert_eq!(xl.info("pb").err(), Some(libc_enoent()), "step {skip}: rolled back");
        assert_eq!(w.xs.dump("/local/domain"), "/local/domain = \"\"  (n0)\n", "step {skip}");
        w.check();
    }
    w.xs.inject(steps, 5);
    let d = create(&w.sim, &mut xl, DomainKind::Pvh, &items).unwrap();
    assert!(w.xs.dump(&format!("/local/domain/{}/static_shm", d.0)).contains("pb/prot = \"ro\""));
    destroy(&w, d);
    assert_eq!(w.sim.free_frames(), w.baseline_free);
}

/// A soft reset (xl's `on_soft_reset`, a guest that kexecs) rebuilds the
/// same domain through the same libxl step. Xen keeps the attachments
/// across it, so attaching them again is refused (the range is taken);
/// the step instead writes the guest's keys again (libxl removed the
/// domain's directory with the old kernel's devices), and the region stays
/// shared with the other guest. The e2e test does the same on real Xen
/// (`sshmdev-soft-reset-keeps-regions`).
#[test]
fn soft_reset_keeps_attachments_and_publishes_them_again() {
    let mut w = World::new();
    let mut xl = w.xl();
    let producer = example("sshm-producer.cfg");
    let (dc, report) = parse("producer.cfg", &refs(&producer));
    let mut dc = dc.unwrap_or_else(|e| panic!("parse failed ({e}): {report}"));
    let p = w.sim.create_domain(DomainKind::Pvh, RAM_PAGES, false).unwrap();
    w.xs.make_domain(u32::from(p.0));
    assert_eq!(xl.attach(p, &mut dc), (0, String::new()));
    let c = create(&w.sim, &mut xl, DomainKind::Pvh, &refs(&example("sshm-consumer.cfg"))).unwrap();
    let keys_path = format!("/local/domain/{}/static_shm", p.0);
    let keys = w.xs.dump(&keys_path);
    assert!(keys.contains("ring0/begin = \"0x10000000\""), "{keys}");
    let list = xl.sshm_list().unwrap();
    let frames = w.sim.free_frames();

    w.sim.soft_reset_domain(p).unwrap();
    w.xs.remove_domain(u32::from(p.0));
    w.xs.make_domain(u32::from(p.0));
    assert_eq!(w.xs.dump(&keys_path), "");

    // What the rebuild did before it knew: attach again, refused.
    let (rc, log) = xl.attach(p, &mut dc);
    assert_eq!(rc, -3, "ERROR_FAIL");
    assert!(
        log.contains(
            "static_shm[0] id=ring0: cannot attach 0x200000 bytes at 0x10000000: the guest physical range is \
             already in use"
        ),
        "{log}"
    );

    let (rc, log) = xl.attach_after_soft_reset(p, &mut dc);
    assert_eq!((rc, log.as_str()), (0, ""));
    assert_eq!(w.xs.dump(&keys_path), keys);
    assert_eq!(xl.sshm_list().unwrap(), list);
    assert_eq!(w.sim.free_frames(), frames);
    // Still one region: what the producer writes, the consumer reads.
    w.sim.guest_write(p, 0x1000_0000, b"after the kexec").unwrap();
    let mut got = [0u8; 15];
    w.sim.guest_read(c, 0x2000_0000, &mut got).unwrap();
    assert_eq!(&got, b"after the kexec");
    w.check();

    destroy(&w, p);
    destroy(&w, c);
    // status is persistent (the example configs).
    assert_eq!(xl.unlink("status"), 0);
    assert_eq!(xl.sshm_list().unwrap(), HEADER);
    w.check();
    assert_eq!(w.sim.free_frames(), w.baseline_free);
}
