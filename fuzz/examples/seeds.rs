//! Writes the hand-made seed inputs into `corpus/hypercalls/seed-*`: short
//! scenarios that reach deep states at once (a ring registered and sent
//! to, a full ring with a waiter, a parked send, regions attached and
//! their users killed, a grant mapping keeping a zombie, soft reset with
//! traffic, firewall rules, pointers at the top of the address space).
//!
//! `cargo run --example seeds` (stable). Each seed is encoded by hand in
//! the byte format `arbitrary` decodes `xen_fuzz::Input` from: an enum is
//! a little-endian `u32` scaled to its variant count, integers are
//! little-endian, `bool` and `Option` one byte. The example decodes every
//! seed again and checks that it names the operations it was meant to.

use std::fmt::Write as _;

#[derive(Default)]
struct E(Vec<u8>);

impl E {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn b(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    /// Variant `i` of an enum with `n` variants.
    fn var(&mut self, i: u32, n: u32) -> &mut Self {
        let x = ((u64::from(i) << 32).div_ceil(u64::from(n))) as u32;
        self.u32(x)
    }
    fn none(&mut self) -> &mut Self {
        self.b(false)
    }
    // Ptr (5), DomSel (6), Num (3), GfnSel (6), Port (2), RingLen (5), GfnList (5).
    fn ptr_default(&mut self) -> &mut Self {
        self.var(0, 5)
    }
    fn ptr_top(&mut self, off: u16) -> &mut Self {
        self.var(1, 5).u16(off)
    }
    fn slot(&mut self, s: u8) -> &mut Self {
        self.var(0, 6).u8(s)
    }
    fn dom_any(&mut self) -> &mut Self {
        self.var(3, 6)
    }
    fn small(&mut self, v: u8) -> &mut Self {
        self.var(0, 3).u8(v)
    }
    fn foreign(&mut self, n: u8) -> &mut Self {
        self.var(0, 6).u8(n)
    }
    fn aligned(&mut self, n: u8) -> &mut Self {
        self.var(1, 6).u8(n)
    }
    fn ring_page(&mut self, area: u8, n: u8) -> &mut Self {
        self.var(3, 6).u8(area).u8(n)
    }
    fn port(&mut self, p: u8) -> &mut Self {
        self.var(0, 2).u8(p)
    }

    // Op (28 variants).
    fn header(&mut self, seed: u64, kinds: [u8; 4]) -> &mut Self {
        self.u64(seed);
        kinds.iter().for_each(|&k| {
            self.u8(k);
        });
        self
    }
    fn create(&mut self, slot: u8, kind: u8) -> &mut Self {
        self.var(0, 28).u8(slot).u8(kind)
    }
    fn destroy(&mut self, slot: u8) -> &mut Self {
        self.var(1, 28).u8(slot)
    }
    fn soft_reset(&mut self, slot: u8) -> &mut Self {
        self.var(2, 28).u8(slot)
    }
    /// `Shm`: op, target slot (`None`: `DomSel::Me`, i.e. DOMID_SSHM for
    /// global sub-ops), known name, flags, nr_pages, offset, gfn (foreign
    /// or aligned), prot, stepped.
    #[allow(clippy::too_many_arguments)]
    fn shm(
        &mut self,
        op: u8,
        target: Option<u8>,
        name: u8,
        flags: u8,
        nr: u8,
        offset: u8,
        gfn: (bool, u8),
        prot: u8,
        stepped: bool,
    ) -> &mut Self {
        self.var(3, 28).u8(0).u8(op);
        match target {
            Some(s) => self.slot(s),
            None => self.var(1, 6),
        };
        self.var(0, 2).u8(name).u8(flags).none().small(nr).small(offset);
        if gfn.0 {
            self.aligned(gfn.1);
        } else {
            self.foreign(gfn.1);
        }
        self.u8(prot).small(0).ptr_default().u8(64).none().none().b(false).ptr_default().b(stepped).b(false)
    }
    /// `Register`: slot, area, port, partner slot (`None`: any), length
    /// (0 min, 1 one page, 2 whole area, else `Slots(n)`), notify-empty-only.
    fn register(&mut self, slot: u8, area: u8, port: u8, partner: Option<u8>, len: u8, empty_only: bool) -> &mut Self {
        self.var(4, 28).u8(slot).u8(area).port(port);
        match partner {
            Some(p) => self.slot(p),
            None => self.dom_any(),
        };
        match len {
            0 => self.var(0, 5),
            1 => self.var(2, 5),
            2 => self.var(3, 5),
            n => self.var(1, 5).u8(n),
        };
        self.b(true).b(empty_only).var(0, 5).b(false).none().b(false).ptr_default().ptr_default()
    }
    fn unregister(&mut self, slot: u8, port: u8, partner: Option<u8>) -> &mut Self {
        self.var(5, 28).u8(slot).port(port);
        match partner {
            Some(p) => self.slot(p),
            None => self.dom_any(),
        };
        self.b(false).ptr_default()
    }
    /// `Send` from `slot` to `(dst slot, port)` with iovs of the given
    /// lengths (at most 3; `Pow2(e, 0)` when above 255), optionally at the
    /// top page.
    fn send(&mut self, slot: u8, dst: u8, port: u8, lens: &[u32], top: bool, stepped: bool) -> &mut Self {
        self.var(6, 28).u8(slot).port(0).none().slot(dst).port(port);
        for k in 0..3 {
            let len = lens.get(k).copied().unwrap_or(0);
            if len < 256 {
                self.small(len as u8);
            } else {
                self.var(1, 3).u8(len.trailing_zeros() as u8).u8(0);
            }
            if top {
                self.ptr_top(4000);
            } else {
                self.ptr_default();
            }
            self.b(false);
        }
        self.u8(lens.len() as u8).none().u32(7).b(false).ptr_default().ptr_default().b(stepped)
    }
    /// `Batch` from `slot`: one message per `(dst slot, port)` of `to`
    /// (at most 4), each of one iov, the iovs of lengths `lens` (6).
    fn batch(&mut self, slot: u8, to: &[(u8, u8)], lens: [u32; 6], stepped: bool) -> &mut Self {
        self.var(27, 28).u8(slot);
        for k in 0..4 {
            let (dst, port) = to.get(k).copied().unwrap_or((slot, 0));
            // src_dom None, src_port, dst, dst_port, niov 0 (one iov), no
            // raw range, type, no padding.
            self.none().port(0).slot(dst).port(port).u8(0).none().u32(k as u32).b(false);
        }
        self.u8(to.len().saturating_sub(1) as u8);
        for len in lens {
            if len < 256 {
                self.small(len as u8);
            } else {
                self.var(1, 3).u8(len.trailing_zeros() as u8).u8(0);
            }
            self.ptr_default().b(false);
        }
        self.none().none().ptr_default().ptr_default().b(stepped)
    }
    /// `Notify` by `slot` about `(dst slot, port)` needing `space`, with wake.
    fn notify(&mut self, slot: u8, dst: u8, port: u8, space: u8) -> &mut Self {
        self.var(7, 28).u8(slot);
        for _ in 0..3 {
            self.slot(dst).port(port).small(space).b(true).none();
        }
        self.u8(1).none().b(false).ptr_default()
    }
    fn info(&mut self, slot: u8, port: u8) -> &mut Self {
        self.var(8, 28).u8(slot).b(true).port(port).dom_any().ptr_default().ptr_default()
    }
    /// `Fw`: what (0 add, 1 del, 2 list), src slot, dst slot, action (0
    /// accept, 1 reject).
    fn fw(&mut self, what: u8, src: u8, dst: u8, action: u8) -> &mut Self {
        self.var(9, 28).u8(0).u8(what).slot(src).slot(dst).port(1).port(1).u8(action).small(0).small(16).ptr_default()
    }
    fn grant_write(&mut self, slot: u8, gref: u16, peer: u8, area: u8) -> &mut Self {
        self.var(11, 28).u8(slot).u16(gref).slot(peer).ring_page(area, 0).b(false).none()
    }
    fn grant_end(&mut self, slot: u8, gref: u16) -> &mut Self {
        self.var(12, 28).u8(slot).u16(gref)
    }
    fn grant_map(&mut self, slot: u8, granter: u8, gref: u16, at: u8) -> &mut Self {
        self.var(13, 28).u8(slot).slot(granter).u16(gref).foreign(at).b(false).none().u8(0)
    }
    fn grant_unmap(&mut self, slot: u8) -> &mut Self {
        self.var(14, 28).u8(slot).u8(0).none()
    }
    fn evtchn_bind_virq(&mut self, slot: u8) -> &mut Self {
        self.var(16, 28).u8(slot).u8(0).slot(0).u8(0)
    }
    /// `RingHeader`: field 0 rx_ptr, 1 flags.
    fn ring_header(&mut self, slot: u8, area: u8, field: u8, value: u8) -> &mut Self {
        self.var(17, 28).u8(slot).u8(area).u8(field).small(value)
    }
    fn drain(&mut self, slot: u8, area: u8) -> &mut Self {
        self.var(18, 28).u8(slot).u8(area).u8(16)
    }
    fn cont(&mut self, slot: u8, steps: u8) -> &mut Self {
        self.var(20, 28).u8(slot).u8(steps)
    }
    /// `Preempt`: 0 never, 1 always, else one in `n / 4 + 2`.
    fn preempt(&mut self, p: u8) -> &mut Self {
        self.var(21, 28).u8(p)
    }
    fn transient(&mut self, slot: u8, area: u8, put: bool) -> &mut Self {
        self.var(24, 28).u8(slot).ring_page(area, 0).b(put)
    }
}

// sshm sub-ops and flags.
const CREATE: u8 = 1;
const ATTACH: u8 = 2;
const DETACH: u8 = 3;
const UNLINK: u8 = 4;
const INFO: u8 = 5;
const LIST: u8 = 6;
const PERSISTENT: u8 = 1;
const F_CREATE: u8 = 2;
const RW: u8 = 3;

fn seeds() -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
    let mut v = Vec::new();
    let mut e = E::default();
    // d1 (HVM) registers a one-page ring; d2 (PVH) and d3 (PV) send; d1
    // reads; d2 asks for space; d1 unregisters.
    e.header(1, [0, 0, 1, 2])
        .evtchn_bind_virq(1)
        .register(1, 0, 1, None, 1, false)
        .send(2, 1, 1, &[32, 100], false, false)
        .send(3, 1, 1, &[200], false, false)
        .info(1, 1)
        .drain(1, 0)
        .notify(2, 1, 1, 64)
        .unregister(1, 1, None)
        .send(2, 1, 1, &[8], false, false);
    v.push(("register-send-drain", e.0, &["Register", "Send", "Drain", "Notify", "Unregister"][..]));

    let mut e = E::default();
    // Batches: d2 sends four messages to two rings of d1 and one of d3's
    // missing rings; the smallest ring fills mid-batch; a stepped batch
    // with a large message is parked, raced and continued.
    e.header(6, [0, 0, 1, 0])
        .evtchn_bind_virq(1)
        .register(1, 0, 1, None, 1, false)
        .register(1, 1, 2, None, 0, true)
        .batch(2, &[(1, 1), (1, 2), (1, 1), (1, 2)], [64, 16, 100, 200, 8, 0], false)
        .batch(2, &[(1, 2), (3, 1), (1, 1)], [16, 16, 16, 16, 16, 16], false)
        .drain(1, 0)
        .preempt(1)
        .batch(2, &[(1, 1), (1, 1)], [2048, 64, 0, 0, 0, 0], true)
        .send(3, 1, 1, &[64], false, false)
        .cont(2, 50)
        .drain(1, 0);
    v.push(("batch", e.0, &["Batch", "Continue", "Drain"][..]));

    let mut e = E::default();
    // A smallest ring fills; the sender queues for space and is woken when
    // the receiver reads; notification suppression on.
    e.header(2, [1, 0, 1, 1])
        .register(1, 1, 2, Some(2), 0, true)
        .send(2, 1, 2, &[16], false, false)
        .send(2, 1, 2, &[16], false, false)
        .notify(2, 1, 2, 16)
        .ring_header(1, 1, 1, 1)
        .drain(1, 1)
        .send(2, 1, 2, &[16], false, false)
        .destroy(2)
        .drain(1, 1);
    v.push(("full-ring-waiter", e.0, &["Register", "Notify", "RingHeader", "Destroy"][..]));

    let mut e = E::default();
    // A large send preempted on every check: parked, other senders go
    // meanwhile, the receiver moves rx_ptr, then the receiver dies.
    e.header(3, [0, 1, 0, 1])
        .preempt(1)
        .register(1, 2, 0, None, 2, false)
        .send(2, 1, 0, &[8192, 8192, 4096], false, true)
        .cont(2, 3)
        .send(3, 1, 0, &[64], false, false)
        .ring_header(1, 2, 0, 48)
        .cont(2, 200)
        .preempt(9)
        .drain(1, 2)
        .send(2, 1, 0, &[4096], false, true)
        .destroy(1)
        .cont(2, 10);
    v.push(("parked-send", e.0, &["Preempt", "Continue", "Send", "Destroy"][..]));

    let mut e = E::default();
    // Regions: create, attach to two guests (one 2 MiB aligned, created on
    // attach, stepped), info, list, a user dies, detach, unlink.
    e.header(4, [0, 0, 1, 0])
        .shm(CREATE, None, 0, PERSISTENT, 16, 0, (false, 0), RW, false)
        .shm(ATTACH, Some(1), 0, 0, 16, 0, (false, 0), RW, false)
        .shm(ATTACH, Some(2), 0, 0, 8, 4, (false, 32), 1, false)
        .shm(ATTACH, Some(3), 2, F_CREATE, 0, 0, (true, 0), RW, true)
        .cont(0, 255)
        .shm(INFO, None, 0, 0, 0, 0, (false, 0), 0, false)
        .shm(LIST, None, 0, 0, 0, 0, (false, 0), 0, false)
        .destroy(1)
        .shm(DETACH, Some(2), 0, 0, 0, 0, (false, 32), 0, false)
        .shm(UNLINK, None, 0, 0, 0, 0, (false, 0), 0, false)
        .create(1, 0)
        .shm(ATTACH, Some(1), 0, 0, 1, 0, (false, 0), RW, false);
    v.push(("sshm-lifecycle", e.0, &["Shm", "Continue", "Destroy", "Create"][..]));

    let mut e = E::default();
    // d1 grants a ring page to d2, which maps it; d1 is killed (a zombie
    // while mapped); d2 unmaps; a transient reference on top.
    e.header(5, [0, 0, 1, 0])
        .register(1, 0, 1, None, 1, false)
        .grant_write(1, 3, 2, 0)
        .grant_map(2, 1, 3, 8)
        .transient(1, 0, false)
        .send(2, 1, 1, &[40], false, false)
        .destroy(1)
        .transient(1, 0, true)
        .grant_unmap(2)
        .grant_end(1, 3);
    v.push(("grant-zombie", e.0, &["GrantWrite", "GrantMap", "GrantUnmap", "Transient"][..]));

    let mut e = E::default();
    // Soft reset with traffic both ways and firewall rules that must stay.
    e.header(6, [0, 1, 0, 1])
        .fw(0, 2, 1, 1)
        .register(1, 0, 1, None, 1, false)
        .register(2, 0, 1, None, 1, false)
        .send(2, 1, 1, &[16], false, false)
        .send(1, 2, 1, &[16], false, false)
        .shm(ATTACH, Some(1), 1, F_CREATE, 4, 0, (false, 0), RW, false)
        .soft_reset(1)
        .send(2, 1, 1, &[16], false, false)
        .register(1, 0, 1, None, 1, false)
        .send(3, 1, 1, &[16], false, false)
        .fw(2, 0, 0, 0)
        .fw(1, 2, 1, 1)
        .soft_reset(2);
    v.push(("soft-reset", e.0, &["SoftReset", "Fw", "Shm"][..]));

    let mut e = E::default();
    // Firewall: reject d2 -> d1, send refused, list, delete, send accepted.
    e.header(7, [0, 0, 0, 0])
        .register(1, 0, 1, None, 0, false)
        .fw(0, 2, 1, 1)
        .send(2, 1, 1, &[16], false, false)
        .fw(2, 0, 0, 0)
        .fw(1, 2, 1, 1)
        .send(2, 1, 1, &[16], false, false)
        .destroy(2)
        .fw(2, 0, 0, 0);
    v.push(("firewall", e.0, &["Fw", "Send", "Destroy"][..]));

    let mut e = E::default();
    // Payload at the top of the linear address space (the page mapped at
    // 2^64 - 4096): iovs that end at and cross 2^64.
    e.header(8, [0, 0, 1, 0])
        .register(1, 1, 1, None, 2, false)
        .send(2, 1, 1, &[96], true, false)
        .send(2, 1, 1, &[8, 90, 200], true, false)
        .drain(1, 1);
    v.push(("top-of-address-space", e.0, &["Send", "Top"][..]));
    v
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hypercalls");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes, expect) in seeds() {
        let input = xen_fuzz::decode(&bytes).unwrap_or_else(|| panic!("{name}: does not decode"));
        let mut text = String::new();
        write!(text, "{input:?}").expect("format");
        for want in expect {
            assert!(text.contains(want), "{name}: decodes without {want}: {text}");
        }
        xen_fuzz::run(&bytes);
        std::fs::write(dir.join(format!("seed-{name}")), &bytes).expect("write seed");
        println!("seed-{name}: {} ops, {} bytes", input.ops.len(), bytes.len());
    }
}
