//! `results.json`, `results.md` and the PNG plots (gnuplot, if installed).

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::process::Command;

use crate::shm::Mapping;
use crate::{Results, ShmRow};

/// MB/s (10^6 bytes per second) of `bytes` every `ns`.
fn mbps(bytes: usize, ns: f64) -> f64 {
    bytes as f64 * 1e3 / ns
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// A float as JSON (no NaN or infinity in JSON).
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn shm_row(r: &Results, pages: u64, m: Mapping) -> Option<&ShmRow> {
    r.shm.iter().find(|s| s.pages == pages && s.mapping == m)
}

fn ir(r: &Results, key: &str) -> Option<f64> {
    r.callgrind.iter().find(|f| f.key == key).map(|f| f.ir_per_op)
}

/// The goals of the benchmark issue, as (goal, measured, verdict).
fn goals(r: &Results) -> Vec<(String, String, String)> {
    let mut g = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "missed" }.to_string();
    if let Some(m) = r.msg.iter().find(|m| m.size == 64 << 10) {
        let ratio = m.memcpy_ns / m.v4v_ns;
        let irr = ir(r, "memcpy/65536").zip(ir(r, "v4v/65536")).map(|(a, b)| a / b);
        // Retired as a goal (issue 16): the simulator's costs are not
        // Xen's; real figures come from `make bench-xen`. Kept as a
        // regression signal in instructions.
        g.push((
            "V4V at 64 KiB against memcpy (regression signal, not a goal)".into(),
            format!(
                "sendv+receive {ratio:.3} of memcpy (time){}; sendv alone {:.3}",
                irr.map(|x| format!(", {x:.3} (instructions)")).unwrap_or_default(),
                m.memcpy_ns / m.v4v_send_ns
            ),
            "signal: compare the instruction figure with earlier runs".into(),
        ));
    }
    let behind: Vec<String> = r.msg.iter().filter(|m| m.v4v_ns >= m.vchan_ns).map(|m| human(m.size as u64)).collect();
    let ratios: Vec<String> =
        r.msg.iter().map(|m| format!("{}: {:.2}x", human(m.size as u64), m.vchan_ns / m.v4v_ns)).collect();
    g.push((
        "V4V ahead of the grant-ring (vchan) baseline at every size".into(),
        format!("V4V speed / vchan speed: {}", ratios.join(", ")),
        if behind.is_empty() { verdict(true) } else { format!("missed at {}", behind.join(", ")) },
    ));
    let big = r.shm.iter().map(|s| s.pages).max().unwrap_or(0);
    if let (Some(s2), Some(s4)) = (shm_row(r, big, Mapping::Super), shm_row(r, big, Mapping::Small)) {
        let ratio = s2.attach_ns / s2.populate_ns;
        let with_create = (s2.create_ns + s2.attach_ns) / s2.populate_ns;
        let round = (s2.attach_ns + s2.detach_ns) / (s2.populate_ns + s2.teardown_ns);
        g.push((
            format!("attach {} <= 1.5x populate of as much RAM (simulator's populate)", human(big * 4096)),
            format!(
                "attach {ratio:.2}x populate; create+attach {with_create:.2}x; attach+detach {round:.2}x \
                 populate+teardown; 4K-only attach {:.2}x",
                s4.attach_ns / s4.populate_ns
            ),
            verdict(ratio <= 1.5),
        ));
        let f = s4.entries as f64 / s2.entries.max(1) as f64;
        g.push((
            format!("{}: 512x fewer p2m entries with 2 MiB mappings", human(big * 4096)),
            format!("{} entries with 2 MiB, {} with 4 KiB only: {f:.0}x", s2.entries, s4.entries),
            verdict(f >= 512.0),
        ));
    }
    if let [small, large] = &r.registry[..] {
        let ratio = large.attach_ns / small.attach_ns;
        let irr = ir(r, &format!("registry/{}", large.regions))
            .zip(ir(r, &format!("registry/{}", small.regions)))
            .map(|(a, b)| a / b);
        g.push((
            format!("attach with {} regions within 1.5x of {}", large.regions, small.regions),
            format!(
                "{ratio:.2}x (time){}",
                irr.map(|x| format!(", {x:.2}x (attach+detach instructions)")).unwrap_or_default()
            ),
            verdict(ratio <= 1.5),
        ));
    }
    g.push((
        "Real Xen under QEMU -icount: V4V vs Argo, sshm attach vs XENMEM_populate_physmap".into(),
        "not measured here: `make bench-xen`, out/bench/xen-results.md".into(),
        "see bench-xen".into(),
    ));
    g
}

fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmark results (simulator)\n");
    let _ = writeln!(
        s,
        "Commit `{}`; {} run in {:.0} s. Release build; the simulator never preempts on its own \
         (`Preempt::Never`). Times are the best batch of the run; ratios compare figures of the \
         same run. Instruction counts (callgrind `Ir`) do not drift with machine load.\n",
        commit(),
        if r.plan.quick { "quick (smoke) run" } else { "full run" },
        r.wall_s
    );
    let _ = writeln!(s, "## Goals\n\n| goal | measured | verdict |\n|---|---|---|");
    for (goal, m, v) in goals(r) {
        let _ = writeln!(s, "| {goal} | {m} | {v} |");
    }
    let _ = writeln!(s, "\n## Messages: sendv + receive\n");
    let _ = writeln!(
        s,
        "| size | memcpy MB/s | V4V MB/s | V4V sendv alone MB/s | vchan MB/s | V4V / memcpy | sendv alone / memcpy | vchan / memcpy | V4V / vchan | V4V Ir/msg | sendv alone Ir/msg | vchan Ir/msg | memcpy Ir/msg |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for m in &r.msg {
        let f = |k: &str| ir(r, &format!("{k}/{}", m.size)).map_or("-".into(), |x| format!("{x:.0}"));
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} | {} | {} |",
            human(m.size as u64),
            mbps(m.size, m.memcpy_ns),
            mbps(m.size, m.v4v_ns),
            mbps(m.size, m.v4v_send_ns),
            mbps(m.size, m.vchan_ns),
            m.memcpy_ns / m.v4v_ns,
            m.memcpy_ns / m.v4v_send_ns,
            m.memcpy_ns / m.vchan_ns,
            m.vchan_ns / m.v4v_ns,
            f("v4v"),
            f("v4vsend"),
            f("vchan"),
            f("memcpy"),
        );
    }
    let _ = writeln!(s, "\n## Static shared memory: attach and detach\n");
    let _ = writeln!(
        s,
        "`4K` attaches one page past a 2 MiB boundary (the sshm code has no switch to disable 2 MiB \
         mappings). p2m entries are counted by preempting at every check (one entry per hypercall \
         step); hypercalls are those of an attach without preemption. Populate is the simulator's \
         domain RAM populate (allocate + map, 2 MiB where aligned) of the same size.\n"
    );
    let _ = writeln!(
        s,
        "| region | entries | create us | attach us | detach us | attach pages/s | detach pages/s | p2m entries | hypercalls | populate us | teardown us | attach / populate |\n|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for x in &r.shm {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.3e} | {:.3e} | {} | {} | {:.1} | {:.1} | {:.2} |",
            human(x.pages * 4096),
            x.mapping.label(),
            x.create_ns / 1e3,
            x.attach_ns / 1e3,
            x.detach_ns / 1e3,
            x.pages as f64 * 1e9 / x.attach_ns,
            x.pages as f64 * 1e9 / x.detach_ns,
            x.entries,
            x.steps,
            x.populate_ns / 1e3,
            x.teardown_ns / 1e3,
            x.attach_ns / x.populate_ns,
        );
    }
    let _ = writeln!(s, "\n## Registry: attach of a 4 KiB region among others\n");
    let _ = writeln!(s, "| other regions | attach ns | detach ns | attach / first row |\n|---:|---:|---:|---:|");
    let base = r.registry.first().map_or(1.0, |x| x.attach_ns);
    for x in &r.registry {
        let _ = writeln!(s, "| {} | {:.0} | {:.0} | {:.2} |", x.regions, x.attach_ns, x.detach_ns, x.attach_ns / base);
    }
    let _ = writeln!(s, "\n## Instruction counts (callgrind)\n");
    if !r.callgrind.is_empty() {
        let _ = writeln!(s, "| scenario | one operation | ops | Ir per op |\n|---|---|---:|---:|");
        for f in &r.callgrind {
            let _ = writeln!(s, "| `{}` | {} | {} | {:.0} |", f.key, f.what, f.ops, f.ir_per_op);
        }
    }
    let per_page = |key: &str, pages: u64| ir(r, key).map(|x| x / pages as f64);
    if let Some((k, pages)) = r
        .callgrind
        .iter()
        .find_map(|f| f.key.strip_prefix("attach2m/").and_then(|p| p.parse::<u64>().ok()).map(|p| (f, p)))
    {
        let _ = k;
        let a2 = per_page(&format!("attach2m/{pages}"), pages);
        let a4 = per_page(&format!("attach4k/{pages}"), pages);
        let pop = ir(r, &format!("populate/{pages}")).zip(ir(r, "populate/1")).map(|(a, b)| (a - b) / pages as f64);
        let f = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}"));
        let _ = writeln!(
            s,
            "\nPer 4 KiB page of a {} region: attach+detach with 2 MiB entries {} Ir, with 4 KiB entries {} Ir; \
             populate+teardown of domain RAM (net of a one-page domain) {} Ir.",
            human(pages * 4096),
            f(a2),
            f(a4),
            f(pop)
        );
    }
    if let Some(n) = &r.callgrind_note {
        let _ = writeln!(s, "\n{n}");
    }
    let _ = writeln!(
        s,
        "\n## Real Xen\n\nThe simulator's costs are not Xen's: the real figures (V4V sendv against Argo's \
         in the same boot, sshm create and attach against `XENMEM_populate_physmap`, under QEMU \
         `-icount`) come from `make bench-xen` (`xen-results.md`).\n\nPlots: `throughput.png`, `attach.png`."
    );
    s
}

fn json(r: &Results) -> String {
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"commit\": {},", json_str(&commit()));
    let _ = writeln!(s, "  \"quick\": {},", r.plan.quick);
    let _ = writeln!(s, "  \"wall_s\": {},", num(r.wall_s));
    let msgs: Vec<String> = r
        .msg
        .iter()
        .map(|m| {
            format!(
                "    {{\"size\": {}, \"memcpy_ns\": {}, \"v4v_ns\": {}, \"v4v_sendv_alone_ns\": {}, \"vchan_ns\": {}, \"v4v_over_memcpy\": {}, \"vchan_over_memcpy\": {}, \"v4v_over_vchan\": {}}}",
                m.size,
                num(m.memcpy_ns),
                num(m.v4v_ns),
                num(m.v4v_send_ns),
                num(m.vchan_ns),
                num(m.memcpy_ns / m.v4v_ns),
                num(m.memcpy_ns / m.vchan_ns),
                num(m.vchan_ns / m.v4v_ns)
            )
        })
        .collect();
    let _ = writeln!(s, "  \"messages\": [\n{}\n  ],", msgs.join(",\n"));
    let shm: Vec<String> = r
        .shm
        .iter()
        .map(|x| {
            format!(
                "    {{\"pages\": {}, \"mapping\": {}, \"create_ns\": {}, \"attach_ns\": {}, \"detach_ns\": {}, \"attach_pages_per_s\": {}, \"detach_pages_per_s\": {}, \"p2m_entries\": {}, \"hypercalls\": {}, \"populate_ns\": {}, \"teardown_ns\": {}}}",
                x.pages,
                json_str(x.mapping.label()),
                num(x.create_ns),
                num(x.attach_ns),
                num(x.detach_ns),
                num(x.pages as f64 * 1e9 / x.attach_ns),
                num(x.pages as f64 * 1e9 / x.detach_ns),
                x.entries,
                x.steps,
                num(x.populate_ns),
                num(x.teardown_ns)
            )
        })
        .collect();
    let _ = writeln!(s, "  \"sshm\": [\n{}\n  ],", shm.join(",\n"));
    let reg: Vec<String> = r
        .registry
        .iter()
        .map(|x| {
            format!(
                "    {{\"regions\": {}, \"attach_ns\": {}, \"detach_ns\": {}}}",
                x.regions,
                num(x.attach_ns),
                num(x.detach_ns)
            )
        })
        .collect();
    let _ = writeln!(s, "  \"registry\": [\n{}\n  ],", reg.join(",\n"));
    let cg: Vec<String> = r
        .callgrind
        .iter()
        .map(|f| {
            format!(
                "    {{\"scenario\": {}, \"op\": {}, \"ops\": {}, \"ir_per_op\": {}}}",
                json_str(&f.key),
                json_str(&f.what),
                f.ops,
                num(f.ir_per_op)
            )
        })
        .collect();
    let _ = writeln!(s, "  \"callgrind\": [\n{}\n  ],", cg.join(",\n"));
    let goals: Vec<String> = goals(r)
        .iter()
        .map(|(g, m, v)| {
            format!("    {{\"goal\": {}, \"measured\": {}, \"verdict\": {}}}", json_str(g), json_str(m), json_str(v))
        })
        .collect();
    let _ = writeln!(s, "  \"goals\": [\n{}\n  ]", goals.join(",\n"));
    s.push_str("}\n");
    s
}

/// Data files and a gnuplot script; the PNGs if gnuplot is installed.
fn plots(r: &Results, out: &Path) -> io::Result<()> {
    let mut t = String::from("# size_bytes memcpy_MBps v4v_MBps vchan_MBps v4v_sendv_alone_MBps\n");
    for m in &r.msg {
        let _ = writeln!(
            t,
            "{} {:.3} {:.3} {:.3} {:.3}",
            m.size,
            mbps(m.size, m.memcpy_ns),
            mbps(m.size, m.v4v_ns),
            mbps(m.size, m.vchan_ns),
            mbps(m.size, m.v4v_send_ns)
        );
    }
    std::fs::write(out.join("throughput.dat"), t)?;
    let mut a = String::from("# region_bytes attach2M_us attach4K_us populate_us detach2M_us detach4K_us\n");
    let mut sizes: Vec<u64> = r.shm.iter().map(|x| x.pages).collect();
    sizes.dedup();
    for p in sizes {
        let (Some(s2), Some(s4)) = (shm_row(r, p, Mapping::Super), shm_row(r, p, Mapping::Small)) else { continue };
        let _ = writeln!(
            a,
            "{} {:.3} {:.3} {:.3} {:.3} {:.3}",
            p * 4096,
            s2.attach_ns / 1e3,
            s4.attach_ns / 1e3,
            s2.populate_ns / 1e3,
            s2.detach_ns / 1e3,
            s4.detach_ns / 1e3
        );
    }
    std::fs::write(out.join("attach.dat"), a)?;
    let gp = "\
set terminal pngcairo size 900,560 noenhanced
set grid
set key bottom right
set logscale x 2
set logscale y 10
set format x '%.0b%B'
set output 'throughput.png'
set title 'Simulator: message throughput (sendv + receive) against message size'
set xlabel 'message size (bytes)'
set ylabel 'MB/s'
plot 'throughput.dat' using 1:2 with linespoints title 'memcpy', \\
     '' using 1:3 with linespoints title 'V4V', \\
     '' using 1:4 with linespoints title 'vchan (grant ring)', \\
     '' using 1:5 with linespoints title 'V4V sendv alone (receiver skips)'
set output 'attach.png'
set title 'Simulator: sshm attach time against region size'
set xlabel 'region size (bytes)'
set ylabel 'microseconds'
plot 'attach.dat' using 1:2 with linespoints title 'attach, 2 MiB entries', \\
     '' using 1:3 with linespoints title 'attach, 4 KiB entries', \\
     '' using 1:5 with linespoints title 'detach, 2 MiB entries', \\
     '' using 1:6 with linespoints title 'detach, 4 KiB entries', \\
     '' using 1:4 with linespoints title 'populate (domain RAM)'
";
    std::fs::write(out.join("plots.gp"), gp)?;
    match Command::new("gnuplot").arg("plots.gp").current_dir(out).status() {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => {
            eprintln!("bench: gnuplot failed ({st}): no PNG plots");
            Ok(())
        }
        Err(_) => {
            eprintln!("bench: gnuplot not installed (make deps): no PNG plots");
            Ok(())
        }
    }
}

/// Writes every output into `out`.
pub fn write(r: &Results, out: &Path) -> io::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), json(r))?;
    std::fs::write(out.join("results.md"), markdown(r))?;
    plots(r, out)
}
