//! Instruction counts under valgrind's callgrind: figures that do not drift
//! with machine noise.
//!
//! Each scenario runs in its own process (`bench cg KIND ARG N`): it sets
//! up, then calls [`measured`] once, which runs `N` operations. Callgrind
//! collects only inside `measured` (`--toggle-collect`), so setup is not
//! counted and the total divided by `N` is the cost of one operation.

use std::path::Path;
use std::process::Command;

use crate::{msg, shm, Plan};

/// One callgrind figure.
pub struct Figure {
    /// Scenario key, e.g. `v4v/65536`.
    pub key: String,
    /// What one operation is.
    pub what: String,
    /// Operations run.
    pub ops: u64,
    /// Instructions executed per operation (`Ir`).
    pub ir_per_op: f64,
}

/// The function callgrind collects in.
#[inline(never)]
fn measured(n: u64, f: &mut dyn FnMut()) {
    for _ in 0..n {
        f();
    }
}

/// Runs one scenario in this process (under callgrind, by [`run_all`]).
pub fn scenario(args: &[String]) {
    let [kind, arg, n] = args else {
        eprintln!("usage: bench cg KIND ARG N");
        std::process::exit(2);
    };
    let arg: u64 = arg.parse().expect("ARG");
    let n: u64 = n.parse().expect("N");
    match kind.as_str() {
        "memcpy" | "v4v" | "v4vsend" | "vchan" => {
            let size = arg as usize;
            let mut ch: Box<dyn msg::Channel> = match kind.as_str() {
                "memcpy" => Box::new(msg::Memcpy::new(size)),
                "v4v" => Box::new(msg::V4v::new(size)),
                "v4vsend" => Box::new(msg::V4v::send_only(size)),
                _ => Box::new(msg::Vchan::new(size)),
            };
            measured(n, &mut || ch.round());
        }
        "attach2m" | "attach4k" => {
            let mapping = if kind == "attach2m" { shm::Mapping::Super } else { shm::Mapping::Small };
            let env = shm::Env::new(arg, 0);
            env.create("bench", arg);
            measured(n, &mut || {
                env.attach("bench", arg, mapping.gfn());
                env.detach("bench", mapping.gfn());
            });
        }
        "populate" => {
            let env = shm::Env::new(arg, 0);
            measured(n, &mut || {
                let d = env.sim.create_domain(simulator::DomainKind::Hvm, arg, false).expect("populate");
                env.sim.destroy_domain(d).expect("destroy");
            });
        }
        "registry" => {
            let env = crate::registry_env(arg);
            measured(n, &mut || {
                env.attach("probe", 1, shm::SHM_GFN);
                env.detach("probe", shm::SHM_GFN);
            });
        }
        _ => {
            eprintln!("bench cg: unknown scenario {kind}");
            std::process::exit(2);
        }
    }
}

/// The scenarios of a run: (kind, arg, n, what one op is).
fn scenarios(plan: &Plan) -> Vec<(&'static str, u64, u64, String)> {
    let mut v = Vec::new();
    let sizes: &[usize] = if plan.quick { &[64] } else { &msg::SIZES };
    for &size in sizes {
        let n = if plan.quick { 4 } else { (1 << 20) / size as u64 }.clamp(4, 200);
        for kind in ["memcpy", "v4v", "v4vsend", "vchan"] {
            v.push((kind, size as u64, n, format!("one {size} B message")));
        }
    }
    let (pages, n) = if plan.quick { (512, 1) } else { (4096, 2) };
    v.push(("attach2m", pages, n, format!("attach+detach of {} KiB, 2 MiB entries", pages * 4)));
    v.push(("attach4k", pages, n, format!("attach+detach of {} KiB, 4 KiB entries", pages * 4)));
    v.push(("populate", pages, n, format!("create+destroy of a domain with {} KiB of RAM", pages * 4)));
    v.push(("populate", 1, n, "create+destroy of a domain with 4 KiB of RAM".into()));
    for r in [10, plan.registry_large] {
        v.push((
            "registry",
            r,
            if plan.quick { 4 } else { 50 },
            format!("attach+detach of 4 KiB with {r} other regions"),
        ));
    }
    v
}

/// Runs every scenario under callgrind; a missing valgrind is a note, not
/// a failure.
pub fn run_all(plan: &Plan) -> (Vec<Figure>, Option<String>) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return (Vec::new(), Some("valgrind not found: no instruction counts".into()));
    }
    let exe = std::env::current_exe().expect("own path");
    let dir = std::env::temp_dir().join(format!("bench-callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for (kind, arg, n, what) in scenarios(plan) {
        let key = format!("{kind}/{arg}");
        let file = dir.join(format!("{kind}-{arg}.out"));
        let st = Command::new("valgrind")
            // glibc copies large buffers with `rep movsb`, which callgrind
            // counts once per byte; the vector loop it uses below the
            // threshold is counted per instruction like everything else.
            .env("GLIBC_TUNABLES", "glibc.cpu.x86_rep_movsb_threshold=4294967295")
            .arg("--tool=callgrind")
            .arg("--toggle-collect=*callgrind::measured*")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(&exe)
            .args(["cg", kind, &arg.to_string(), &n.to_string()])
            .output();
        match st.ok().filter(|o| o.status.success()).and_then(|_| totals(&file)) {
            Some(ir) if ir > 0 => {
                eprintln!("  {key}: {:.0} Ir per op", ir as f64 / n as f64);
                out.push(Figure { key, what, ops: n, ir_per_op: ir as f64 / n as f64 });
            }
            _ => failed.push(key),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let note = (!failed.is_empty()).then(|| format!("callgrind failed for: {}", failed.join(", ")));
    (out, note)
}

/// The collected total (`totals:` or `summary:` line) of a callgrind file.
fn totals(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
