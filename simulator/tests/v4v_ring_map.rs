//! Ring mappings (`Platform::ring_map`) and their caps: a ring over
//! `RING_MAP_PAGES_PER_DOMAIN_MAX` or `RING_MAP_PAGES_MAX`, or one the
//! platform cannot map, registers all the same and carries the same
//! messages through the per-frame path; every mapping goes at
//! unregistration, death and soft reset (the simulator's checker reports
//! one left behind). The mapped and unmapped paths are also compared on
//! random traffic in `v4v_model.rs`.

mod v4v_util;

use hypercall_abi::v4v::*;
use hypercall_abi::DomId;
use rust_hv::v4v::{RING_MAP_PAGES_MAX, RING_MAP_PAGES_PER_DOMAIN_MAX};
use scenarios::ops::v4v as ops;
use sim_guest::SimGuest;
use simulator::rng::PropRun;
use simulator::{Faults, Sim, Trigger};
use v4v_util::*;

/// Pages of the largest ring.
const MAX_PAGES: u64 = RING_PAGES_MAX as u64;
/// Where a big ring's gfn list goes (8 pages hold 4097 gfns), above the
/// 64 KiB payload area.
const BIG_GFNS: u64 = 0x20000;
/// The first big ring's gfn; the next ones follow.
const BIG_GFN0: u64 = 0x40;

/// A domain with room for `rings` rings of the largest size.
fn big_dom(s: &Sim, rings: u64) -> DomId {
    dom(s, BIG_GFN0 + rings * MAX_PAGES)
}

/// Registers the `i`-th ring of the largest size of `d` (port `i + 1`,
/// any sender).
fn register_big(s: &Sim, d: DomId, i: u64) -> i64 {
    let gfn = BIG_GFN0 + i * MAX_PAGES;
    prepare_ring(s, d, gfn, RING_LEN_MAX, 0);
    let gfns: Vec<u64> = (gfn..gfn + MAX_PAGES).collect();
    let reg = RegisterRing { port: i as u32 + 1, partner: DOMID_ANY, len: RING_LEN_MAX, ..Default::default() };
    ops::register_ring(&mut SimGuest::new(s, d), ARG, &reg, BIG_GFNS, &gfns, gfns.len() as u64, 0)
}

/// Sends `n` messages of assorted sizes from `src` to every ring of `d` in
/// `rings` and returns what each ring holds.
fn traffic(s: &Sim, src: DomId, d: DomId, rings: &[u64], n: u32) -> Vec<Vec<(MsgHeader, Vec<u8>)>> {
    for seq in 0..n {
        for &i in rings {
            let len = [1usize, 64, 4000, 4096 + 17, 65536][seq as usize % 5];
            let r = send(s, src, 7, d, i as u32 + 1, &payload(src, seq, len), seq);
            assert_eq!(r, len as i64, "send {seq} to ring {i}");
        }
    }
    rings.iter().map(|&i| drain(s, d, BIG_GFN0 + i * MAX_PAGES, RING_LEN_MAX)).collect()
}

#[test]
fn a_ring_over_the_domain_cap_works_unmapped() {
    let pr = PropRun::from_env("simulator", "v4v_ring_map", "a_ring_over_the_domain_cap_works_unmapped", 1);
    const { assert!(RING_MAP_PAGES_PER_DOMAIN_MAX == 2 * RING_PAGES_MAX) };
    let s = sim(3 * MAX_PAGES + 1024, pr.seed);
    let d = big_dom(&s, 3);
    let src = dom(&s, 64);
    for i in 0..3 {
        assert_eq!(register_big(&s, d, i), 0, "ring {i} registers, mapped or not");
    }
    assert_eq!(s.machine().ring_maps(), (2, 2 * MAX_PAGES), "the third ring is over the cap");
    assert_eq!(s.hv().v4v.ring_map_pages(), RING_MAP_PAGES_PER_DOMAIN_MAX);
    check(&s);
    let got = traffic(&s, src, d, &[0, 1, 2], 10);
    assert_eq!(got[0].len(), 10);
    assert_eq!(got[0], got[2], "the unmapped ring holds the same messages");
    assert_eq!(got[1], got[2]);
    check(&s);
    // A mapped ring goes: its pages are free for the next registration.
    assert_eq!(unregister(&s, d, 1, DOMID_ANY), 0);
    assert_eq!(s.machine().ring_maps(), (1, MAX_PAGES));
    check(&s);
    assert_eq!(register_big(&s, d, 1), 0, "same port, same geometry: re-registration");
    assert_eq!(s.machine().ring_maps(), (1, MAX_PAGES), "a re-registration maps nothing more");
    assert_eq!(unregister(&s, d, 3, DOMID_ANY), 0, "the unmapped one");
    assert_eq!(register_big(&s, d, 2), 0);
    assert_eq!(s.machine().ring_maps(), (2, 2 * MAX_PAGES), "mapped now");
    check(&s);
    // A soft reset and a death drop every mapping.
    s.soft_reset_domain(d).unwrap();
    assert_eq!(s.machine().ring_maps(), (0, 0));
    assert_eq!(s.hv().v4v.ring_map_pages(), 0);
    check(&s);
    assert_eq!(register_big(&s, d, 1), 0);
    assert_eq!(s.machine().ring_maps(), (1, MAX_PAGES));
    s.destroy_domain(d).unwrap();
    assert_eq!(s.machine().ring_maps(), (0, 0));
    assert_eq!(s.hv().v4v.ring_map_pages(), 0);
    check(&s);
}

#[test]
fn rings_over_the_global_cap_work_unmapped() {
    let pr = PropRun::from_env("simulator", "v4v_ring_map", "rings_over_the_global_cap_work_unmapped", 1);
    // Domains of two largest rings each until the global cap is passed.
    let doms_n = (RING_MAP_PAGES_MAX as u64).div_ceil(2 * MAX_PAGES);
    let s = sim(doms_n * (BIG_GFN0 + 2 * MAX_PAGES) + 1024, pr.seed);
    let src = dom(&s, 64);
    let doms: Vec<DomId> = (0..doms_n).map(|_| big_dom(&s, 2)).collect();
    for &d in &doms {
        for i in 0..2 {
            assert_eq!(register_big(&s, d, i), 0);
        }
    }
    let (maps, pages) = s.machine().ring_maps();
    assert!(pages <= RING_MAP_PAGES_MAX as u64, "{pages} pages mapped");
    assert_eq!(maps as u64, RING_MAP_PAGES_MAX as u64 / MAX_PAGES, "every ring that fits is mapped");
    assert!((maps as u64) < 2 * doms_n, "some ring is over the cap");
    check(&s);
    let last = *doms.last().unwrap();
    let got = traffic(&s, src, last, &[0, 1], 6);
    assert_eq!(got[0], got[1], "mapped and unmapped rings hold the same messages");
    for d in doms {
        s.destroy_domain(d).unwrap();
    }
    assert_eq!(s.machine().ring_maps(), (0, 0));
    check(&s);
}

#[test]
fn a_ring_the_platform_cannot_map_works_unmapped() {
    let pr = PropRun::from_env("simulator", "v4v_ring_map", "a_ring_the_platform_cannot_map_works_unmapped", 1);
    let s = sim(2 * MAX_PAGES + 1024, pr.seed);
    let d = big_dom(&s, 2);
    let src = dom(&s, 64);
    s.machine().set_faults(Faults { ring_map: Trigger::After(1), ..Faults::default() });
    assert_eq!(register_big(&s, d, 0), 0);
    assert_eq!(register_big(&s, d, 1), 0, "vmap() fails: registered all the same");
    assert_eq!(s.machine().ring_maps(), (1, MAX_PAGES));
    assert_eq!(s.hv().v4v.ring_map_pages(), RING_PAGES_MAX, "the failed mapping is not counted");
    let got = traffic(&s, src, d, &[0, 1], 10);
    assert_eq!(got[0], got[1]);
    s.destroy_domain(d).unwrap();
    assert_eq!(s.machine().ring_maps(), (0, 0));
    check(&s);
}
