//! `make bench`: V4V and static shared memory on the simulator, measured as
//! ratios within one run and as callgrind instruction counts.
//!
//! ```text
//! bench [--quick] [--out DIR] [--no-callgrind]   everything; writes DIR
//! bench cg KIND ARG N                             one callgrind scenario
//! ```
//!
//! Nothing here asserts a speed: the figures are reported against the goals
//! of the benchmark issue in `results.md`. See `tests/bench/README.md`.

#![deny(unsafe_code)]

mod callgrind;
mod guest;
mod msg;
mod report;
mod shm;

use std::path::PathBuf;
use std::time::Instant;

use msg::Channel;

/// How big and how long a run is.
#[derive(Clone, Copy)]
pub struct Plan {
    /// Timed batches per message size (the minimum is kept).
    pub msg_batches: usize,
    /// Bytes each channel moves per batch.
    pub msg_batch_bytes: usize,
    /// Largest region measured, in pages.
    pub shm_pages_max: u64,
    /// Filler regions of the large registry.
    pub registry_large: u64,
    /// Attach-detach pairs per registry batch, and batches.
    pub registry_pairs: usize,
    pub registry_batches: usize,
    /// Whether to run the callgrind scenarios, and which.
    pub callgrind: bool,
    pub quick: bool,
}

const FULL: Plan = Plan {
    msg_batches: 25,
    msg_batch_bytes: 4 << 20,
    shm_pages_max: 1 << 18,
    registry_large: 10_000,
    registry_pairs: 200,
    registry_batches: 40,
    callgrind: true,
    quick: false,
};

/// The smoke run (`make bench-smoke`): every path once, tiny sizes.
const QUICK: Plan = Plan {
    msg_batches: 2,
    msg_batch_bytes: 256 << 10,
    shm_pages_max: 512,
    registry_large: 100,
    registry_pairs: 20,
    registry_batches: 2,
    callgrind: true,
    quick: true,
};

/// One message size's figures, nanoseconds per message.
pub struct MsgRow {
    pub size: usize,
    pub memcpy_ns: f64,
    pub v4v_ns: f64,
    /// sendv with the receiver dropping the message unread.
    pub v4v_send_ns: f64,
    pub vchan_ns: f64,
}

/// One region size and mapping's figures.
pub struct ShmRow {
    pub pages: u64,
    pub mapping: shm::Mapping,
    pub create_ns: f64,
    pub attach_ns: f64,
    pub detach_ns: f64,
    /// p2m entries the attach inserted (counted, see `shm::Env::count_entries`).
    pub entries: u64,
    /// Hypercalls an attach took without preemption.
    pub steps: u64,
    /// The simulator's populate of as much RAM (domain create with that RAM
    /// minus a domain with one page), and its teardown (domain destroy,
    /// likewise net).
    pub populate_ns: f64,
    pub teardown_ns: f64,
}

/// Attach of a one-page region with `regions` other regions in the
/// registry.
pub struct RegRow {
    pub regions: u64,
    pub attach_ns: f64,
    pub detach_ns: f64,
}

/// Everything one run measured.
pub struct Results {
    pub plan: Plan,
    pub msg: Vec<MsgRow>,
    pub shm: Vec<ShmRow>,
    pub registry: Vec<RegRow>,
    pub callgrind: Vec<callgrind::Figure>,
    pub callgrind_note: Option<String>,
    pub wall_s: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("cg") {
        callgrind::scenario(&args[1..]);
        return;
    }
    let mut plan = FULL;
    let mut out = PathBuf::from("out/bench");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => plan = Plan { callgrind: plan.callgrind, ..QUICK },
            "--no-callgrind" => plan.callgrind = false,
            "--out" => out = PathBuf::from(it.next().expect("--out DIR")),
            _ => {
                eprintln!("usage: bench [--quick] [--out DIR] [--no-callgrind] | bench cg KIND ARG N");
                std::process::exit(2);
            }
        }
    }
    let t0 = Instant::now();
    eprintln!("bench: messages");
    let msg = measure_messages(&plan);
    eprintln!("bench: static shm");
    let shm = measure_shm(&plan);
    eprintln!("bench: registry");
    let registry = measure_registry(&plan);
    let (callgrind, callgrind_note) = if plan.callgrind {
        eprintln!("bench: callgrind");
        callgrind::run_all(&plan)
    } else {
        (Vec::new(), Some("callgrind not run (--no-callgrind)".into()))
    };
    let r = Results { plan, msg, shm, registry, callgrind, callgrind_note, wall_s: t0.elapsed().as_secs_f64() };
    report::write(&r, &out).expect("write results");
    eprintln!("bench: wrote {} in {:.1} s", out.display(), r.wall_s);
}

/// Runs `iters` rounds of each channel per batch, the channels interleaved
/// batch by batch so that machine noise hits all of them alike; returns
/// each channel's best batch in nanoseconds per round.
fn interleaved(chs: &mut [&mut dyn Channel], iters: &[u64], batches: usize) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; chs.len()];
    for _ in 0..batches {
        for (i, ch) in chs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters[i] {
                ch.round();
            }
            let ns = t.elapsed().as_nanos() as f64 / iters[i] as f64;
            best[i] = best[i].min(ns);
        }
    }
    best
}

fn measure_messages(plan: &Plan) -> Vec<MsgRow> {
    msg::SIZES
        .iter()
        .map(|&size| {
            let mut m = msg::Memcpy::new(size);
            let mut v = msg::V4v::new(size);
            let mut c = msg::Vchan::new(size);
            let mut vs = msg::V4v::send_only(size);
            let n = (plan.msg_batch_bytes / size).max(8) as u64;
            // memcpy is far faster: more rounds keep its batches measurable.
            let ns = interleaved(&mut [&mut m, &mut v, &mut c, &mut vs], &[n * 16, n, n, n], plan.msg_batches);
            let row = MsgRow { size, memcpy_ns: ns[0], v4v_ns: ns[1], vchan_ns: ns[2], v4v_send_ns: ns[3] };
            eprintln!(
                "  {size:>6} B: memcpy {:.0} ns, v4v {:.0} ns (sendv alone {:.0} ns), vchan {:.0} ns",
                row.memcpy_ns, row.v4v_ns, row.v4v_send_ns, row.vchan_ns
            );
            row
        })
        .collect()
}

fn measure_shm(plan: &Plan) -> Vec<ShmRow> {
    let mut rows = Vec::new();
    for &pages in shm::SIZES_PAGES.iter().filter(|&&p| p <= plan.shm_pages_max) {
        let reps = if plan.quick { 3 } else { (16384 / pages).clamp(5, 400) as usize };
        let env = shm::Env::new(pages, 0);
        // Populate first, while the pool is empty: the domain's RAM and the
        // region are never there together.
        let (populate_ns, teardown_ns) = {
            let s = &env.sim;
            let mut base = (f64::INFINITY, f64::INFINITY);
            let mut full = (f64::INFINITY, f64::INFINITY);
            for _ in 0..reps {
                for (n, best) in [(1, &mut base), (pages, &mut full)] {
                    let t = Instant::now();
                    let d = s.create_domain(simulator::DomainKind::Hvm, n, false).expect("populate");
                    let t1 = Instant::now();
                    s.destroy_domain(d).expect("destroy");
                    best.1 = best.1.min(t1.elapsed().as_nanos() as f64);
                    best.0 = best.0.min((t1 - t).as_nanos() as f64);
                }
            }
            ((full.0 - base.0).max(0.0), (full.1 - base.1).max(0.0))
        };
        let mut create_ns = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            env.create("bench", pages);
            create_ns = create_ns.min(t.elapsed().as_nanos() as f64);
            guest::shm_call(&env.sim, env.dom0, env.dom0, &guest::shm_op(hypercall_abi::sshm::OP_UNLINK, "bench"))
                .expect("unlink");
        }
        env.create("bench", pages);
        for mapping in [shm::Mapping::Super, shm::Mapping::Small] {
            let gfn = mapping.gfn();
            let mut attach_ns = f64::INFINITY;
            let mut detach_ns = f64::INFINITY;
            for _ in 0..reps {
                let t = Instant::now();
                env.attach("bench", pages, gfn);
                attach_ns = attach_ns.min(t.elapsed().as_nanos() as f64);
                let t = Instant::now();
                env.detach("bench", gfn);
                detach_ns = detach_ns.min(t.elapsed().as_nanos() as f64);
            }
            let entries = env.count_entries("bench", pages, gfn);
            let steps = env.count_steps("bench", pages, gfn);
            eprintln!(
                "  {:>8} KiB {}: attach {:.0} us, detach {:.0} us, {entries} entries, populate {:.0} us",
                pages * 4,
                mapping.label(),
                attach_ns / 1e3,
                detach_ns / 1e3,
                populate_ns / 1e3
            );
            rows.push(ShmRow {
                pages,
                mapping,
                create_ns,
                attach_ns,
                detach_ns,
                entries,
                steps,
                populate_ns,
                teardown_ns,
            });
        }
        env.sim.check().unwrap_or_else(|e| panic!("{e}"));
    }
    rows
}

/// A registry of `fillers` one-page regions besides "probe".
fn registry_env(fillers: u64) -> shm::Env {
    let env = shm::Env::new(1, fillers);
    env.create("probe", 1);
    for i in 0..fillers {
        env.create(&shm::filler(i), 1);
    }
    env
}

fn measure_registry(plan: &Plan) -> Vec<RegRow> {
    let sizes = [10, plan.registry_large];
    let envs: Vec<shm::Env> = sizes.iter().map(|&n| registry_env(n)).collect();
    let mut best = vec![(f64::INFINITY, f64::INFINITY); envs.len()];
    for _ in 0..plan.registry_batches {
        for (env, b) in envs.iter().zip(best.iter_mut()) {
            let (mut a, mut d) = (0u128, 0u128);
            for _ in 0..plan.registry_pairs {
                let t = Instant::now();
                env.attach("probe", 1, shm::SHM_GFN);
                let t1 = Instant::now();
                env.detach("probe", shm::SHM_GFN);
                d += t1.elapsed().as_nanos();
                a += (t1 - t).as_nanos();
            }
            let n = plan.registry_pairs as f64;
            b.0 = b.0.min(a as f64 / n);
            b.1 = b.1.min(d as f64 / n);
        }
    }
    sizes
        .iter()
        .zip(best)
        .map(|(&n, (a, d))| {
            let regions = n;
            eprintln!("  {regions:>6} other regions: attach {a:.0} ns, detach {d:.0} ns");
            RegRow { regions, attach_ns: a, detach_ns: d }
        })
        .collect()
}
