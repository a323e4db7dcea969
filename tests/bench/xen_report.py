#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turns the BENCH lines of a `make bench-xen` console log into
xen-results.md and xen-results.json (issue 9, "Real Xen, side by side")."""
import argparse
import json
import os
import re
import subprocess
import sys


def parse(log):
    calib, msgs, mems, errors, heap, detach = [], [], [], [], [], []
    done = False
    for raw in open(log, errors="replace"):
        line = raw.rstrip("\r\n")
        i = line.find("BENCH ")
        if i < 0:
            continue
        words = line[i + 6:].split()
        kind, kv = words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if kind == "done":
            done = True
        elif kind == "calib":
            calib.append((int(kv["insns"]), int(kv["ticks"])))
        elif kind == "heap":
            heap.append(kv)
        elif kind == "detach_check":
            detach.append(kv)
        elif kind == "error":
            errors.append(" ".join(words[1:]))
        elif kind in ("msg", "mem"):
            kv["ticks"] = [int(t) for t in kv["ticks"].split(",")]
            (msgs if kind == "msg" else mems).append(kv)
    return calib, msgs, mems, errors, heap, detach, done


def median(t):
    return sorted(t)[len(t) // 2]


def spread(t):
    return max(t) / min(t) - 1 if min(t) > 0 else 0.0


SIZE_AXIS = ("message size (bytes)", "%.0b%B")


def two_panel_png(d, png, panels, who):
    """Writes d/plot.gp, two log-log panels side by side into d/../PNG,
    and runs gnuplot on it (saying why not on stderr when it cannot; its
    warnings, a series without points, are noise unless it fails). Each
    panel is (title, (xlabel, x format), ylabel, plot commands)."""
    gp = [f"set terminal pngcairo size 1400,560 noenhanced\nset output '../{png}'",
          "set datafile missing 'NaN'\nset multiplot layout 1,2\nset grid",
          "set logscale x 2\nset logscale y 10\nset key top left"]
    for title, (xlabel, xformat), ylabel, plots in panels:
        gp.append(f"set title '{title}'\nset xlabel '{xlabel}'\nset format x '{xformat}'")
        gp.append(f"set ylabel '{ylabel}'\nplot " + ", \\\n     ".join(plots))
    gp.append("unset multiplot\n")
    with open(os.path.join(d, "plot.gp"), "w") as f:
        f.write("\n".join(gp))
    try:
        st = subprocess.run(["gnuplot", "plot.gp"], cwd=d, capture_output=True, text=True)
        if st.returncode != 0:
            print(f"{who}: gnuplot failed ({st.returncode}): no PNG\n{st.stderr}", file=sys.stderr)
    except FileNotFoundError:
        print(f"{who}: gnuplot not installed (make deps): no PNG", file=sys.stderr)


def plot(res, out):
    """xen-results.png: ticks per message against size (left) and ticks per
    memory operation against size (right), log scales; the data and the
    script beside it in xen-results-plot/."""
    d = os.path.join(out, "xen-results-plot")
    os.makedirs(d, exist_ok=True)

    def v(x):
        return "NaN" if x is None else f"{x:.1f}"

    msg_cols = [("v4v_full", "V4V sendv (full)"), ("argo_full", "Argo sendv (full)"),
                ("v4v_send", "V4V sendv (send only)"), ("argo_send", "Argo sendv (send only)")]
    batch = {b["size"]: b["ticks_per_msg"] for b in res["batched"] if b["batch"] == 32}
    with open(os.path.join(d, "messages.dat"), "w") as f:
        f.write("# size " + " ".join(c for c, _ in msg_cols) + " v4v_batch32\n")
        for r in res["messages"]:
            f.write(f"{r['size']} " + " ".join(v(r[f"{c}_ticks_per_msg"]) for c, _ in msg_cols)
                    + f" {v(batch.get(r['size']))}\n")
    mem_cols = [("sshm_attach", "sshm attach"), ("sshm_create", "sshm create"),
                ("populate_2m", "populate_physmap, 2 MiB extents"), ("populate_4k", "populate_physmap, 4 KiB extents")]
    with open(os.path.join(d, "memory.dat"), "w") as f:
        f.write("# MiB " + " ".join(c for c, _ in mem_cols) + "\n")
        for r in res["memory"]:
            f.write(f"{r['mib']} " + " ".join(v(r[f"{c}_ticks"]) for c, _ in mem_cols) + "\n")
    titles = [t for _, t in msg_cols] + ["V4V batches of 32 (full)"]
    two_panel_png(d, "xen-results.png", [
        ("Real Xen, dom0 to itself: ticks (= instructions) per message", SIZE_AXIS,
         "ticks per message (lower is better)",
         [f"'messages.dat' using 1:{i + 2} with linespoints title '{t}'" for i, t in enumerate(titles)]),
        ("Real Xen: ticks per memory operation", ("MiB", "%g"), "ticks (lower is better)",
         [f"'memory.dat' using 1:{i + 2} with linespoints title '{t}'" for i, (_, t) in enumerate(mem_cols)]),
    ], "bench-xen")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="")
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--host-seconds", type=int, default=0)
    ap.add_argument("--status", default="")
    a = ap.parse_args()
    calib, msgs, mems, errors, heap, detach, done = parse(a.log)
    if not calib:
        print("bench-xen: no BENCH lines in the console log", file=sys.stderr)
        return 1
    tpi = [t / n for n, t in calib]
    tick_per_insn = min(tpi)
    calib_spread = max(tpi) / min(tpi) - 1

    def msg(chan, mode, size):
        for m in msgs:
            if m["chan"] == chan and m["mode"] == mode and int(m["size"]) == size:
                return median(m["ticks"]) / int(m["n"]), spread(m["ticks"])
        return None, None

    def mem(kind, mib):
        for m in mems:
            if m["kind"] == kind and int(m["mib"]) == mib:
                return median(m["ticks"]), spread(m["ticks"])
        return None, None

    sizes = sorted({int(m["size"]) for m in msgs})
    mibs = sorted({int(m["mib"]) for m in mems if m["kind"] != "sshm_create_step"})
    spreads = [spread(m["ticks"]) for m in msgs + mems]
    res = {
        "calibration": {"runs": [{"insns": n, "ticks": t} for n, t in calib],
                        "ticks_per_insn": tick_per_insn, "spread": calib_spread},
        "messages": [], "memory": [], "errors": errors, "complete": done,
        "max_spread": max(spreads) if spreads else None,
        "heap": heap, "detach_check": detach,
        "xen_cmdline": a.cmdline, "host_seconds": a.host_seconds, "status": a.status,
    }
    for s in sizes:
        row = {"size": s}
        for chan, mode in (("memcpy", "copy"), ("v4v", "full"), ("argo", "full"), ("v4v", "send"), ("argo", "send")):
            v, sp = msg(chan, mode, s)
            row[f"{chan}_{mode}_ticks_per_msg"] = v
        res["messages"].append(row)
    res["batched"] = []
    for chan in sorted({m["chan"] for m in msgs if m["chan"].startswith("v4v-batch")}):
        for s in sorted({int(m["size"]) for m in msgs if m["chan"] == chan}):
            v, sp = msg(chan, "full", s)
            res["batched"].append({"chan": chan, "batch": int(chan[len("v4v-batch"):]), "size": s,
                                   "ticks_per_msg": v, "spread": sp,
                                   "v4v_full_ticks_per_msg": msg("v4v", "full", s)[0],
                                   "argo_full_ticks_per_msg": msg("argo", "full", s)[0]})
    for mib in mibs:
        row = {"mib": mib}
        for k in ("sshm_create", "sshm_attach", "sshm_detach", "populate_2m", "decrease_2m", "populate_4k", "decrease_4k"):
            row[f"{k}_ticks"] = mem(k, mib)[0]
        res["memory"].append(row)

    def f(x, d=0):
        return "—" if x is None else f"{x:,.{d}f}"

    def ratio(x, y, d=2):
        return "—" if x is None or y is None or y == 0 else f"{x / y:.{d}f}"

    def size_name(s):
        return f"{s >> 10} KiB" if s >= 1024 else f"{s} B"

    md = []
    md.append("# Real Xen, side by side (issue 9)\n")
    md.append("One boot of Xen 4.17 + the series + `CONFIG_ARGO=y` under QEMU TCG with "
              "`-icount shift=0,sleep=off` (one vCPU, 2 GiB), dom0 = the test kernel in bench mode. "
              f"Xen command line: `{a.cmdline}`.\n")
    md.append(f"Clock: the guest TSC (`lfence; rdtsc` around each batch). A loop of a known instruction "
              f"count gives **{tick_per_insn:.4f} ticks per guest instruction** "
              f"(4 runs of 2e7/4e7 instructions, spread {100 * calib_spread:.3f}%), so the TSC follows "
              f"icount's virtual time and the figures below are instruction counts in disguise. "
              f"Every figure is the median of 3 repetitions; the largest spread between repetitions "
              f"is {100 * (res['max_spread'] or 0):.2f}% (populate: the first repetition gets pages "
              f"scrubbed at boot, later ones pages freed dirty by the previous step, which Xen scrubs "
              f"on allocation; the median is that steady state).\n")
    md.append("## Messages: ticks per message (send + receive)\n")
    md.append("A 256 KiB ring registered by dom0 for itself (partner dom0), one iov; *full* = sendv then copy "
              "the message out and advance `rx_ptr`; *send* = sendv then drop it (advance `rx_ptr` only), "
              "i.e. the hypervisor's side. `Argo / V4V` above 1 means V4V is ahead.\n")
    md.append("| size | memcpy | V4V full | Argo full | Argo / V4V (full) | V4V send | Argo send | Argo / V4V (send) | memcpy / V4V full |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["messages"]:
        mc, vf, af = r["memcpy_copy_ticks_per_msg"], r["v4v_full_ticks_per_msg"], r["argo_full_ticks_per_msg"]
        vs, as_ = r["v4v_send_ticks_per_msg"], r["argo_send_ticks_per_msg"]
        md.append(f"| {size_name(r['size'])} | {f(mc)} | {f(vf)} | {f(af)} | {ratio(af, vf)} | {f(vs)} | {f(as_)} "
                  f"| {ratio(as_, vs)} | {ratio(mc, vf, 3)} |")
    md.append("")
    if res["batched"]:
        md.append("## Batched sends: ticks per message (send + receive)\n")
        md.append("The same ring; one `OP_SENDV_BATCH` of the batch's messages (one iov each, the entries "
                  "and iovs rewritten before every call), then the reader takes them all in one pass "
                  "(`RingReader::recv_batch`: each copied out, `rx_ptr` written once). Against the "
                  "per-message *full* figures above, same boot. `Argo / batch` is how many times Argo's "
                  "messages per second the batch reaches.\n")
        md.append("| size | batch | V4V batched | V4V sendv full | Argo full | V4V sendv / batch | Argo / batch |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        for r in res["batched"]:
            md.append(f"| {size_name(r['size'])} | {r['batch']} | {f(r['ticks_per_msg'])} | "
                      f"{f(r['v4v_full_ticks_per_msg'])} | {f(r['argo_full_ticks_per_msg'])} | "
                      f"{ratio(r['v4v_full_ticks_per_msg'], r['ticks_per_msg'])} | "
                      f"{ratio(r['argo_full_ticks_per_msg'], r['ticks_per_msg'])} |")
        md.append("")
    md.append("## Memory: ticks per operation (N MiB)\n")
    md.append("*sshm attach* maps an existing region (created beforehand, not timed) at a free, 1 GiB-aligned "
              "gfn (2 MiB entries); *populate* is `XENMEM_populate_physmap` of as much RAM into dom0's own "
              "physmap at a free gfn, in 2 MiB extents (`2m`, one call) or 4 KiB extents (`4k`, one call), "
              "given back by `XENMEM_decrease_reservation`.\n")
    md.append("| MiB | sshm attach | sshm detach | populate 2m | decrease 2m | populate 4k | decrease 4k | attach / populate 2m | attach / populate 4k |")
    md.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["memory"]:
        md.append(f"| {r['mib']} | {f(r['sshm_attach_ticks'])} | {f(r['sshm_detach_ticks'])} | "
                  f"{f(r['populate_2m_ticks'])} | {f(r['decrease_2m_ticks'])} | {f(r['populate_4k_ticks'])} | "
                  f"{f(r['decrease_4k_ticks'])} | {ratio(r['sshm_attach_ticks'], r['populate_2m_ticks'], 3)} | "
                  f"{ratio(r['sshm_attach_ticks'], r['populate_4k_ticks'], 3)} |")
    md.append("")
    # Goals.
    md.append("## Goals\n")
    g = {}
    behind = [(r["size"], mode) for r in res["messages"] for mode in ("full", "send")
              if r[f"v4v_{mode}_ticks_per_msg"] is None or r[f"argo_{mode}_ticks_per_msg"] is None
              or r[f"v4v_{mode}_ticks_per_msg"] >= r[f"argo_{mode}_ticks_per_msg"]]
    g["v4v_ahead_of_argo_every_size"] = not behind and bool(res["messages"])
    parts = ", ".join(f"{size_name(r['size'])} {ratio(r['argo_full_ticks_per_msg'], r['v4v_full_ticks_per_msg'])}x"
                      for r in res["messages"])
    md.append(f"- **V4V ahead of Argo at every size in the same boot**: "
              f"{'met' if g['v4v_ahead_of_argo_every_size'] else 'missed'} (Argo/V4V, full: {parts}"
              + ("" if not behind else "; behind or missing at " + ", ".join(f"{size_name(s)} {m}" for s, m in behind))
              + ").")
    b64 = [r for r in res["batched"] if r["batch"] == 32 and r["size"] == 64]
    if b64 and b64[0]["ticks_per_msg"] and b64[0]["argo_full_ticks_per_msg"]:
        q = b64[0]["argo_full_ticks_per_msg"] / b64[0]["ticks_per_msg"]
        g["batch32_64b_over_argo"] = q
        g["batch32_64b_5x_argo"] = q >= 5.0
        md.append(f"- **Batches of 32 at 64 B at least 5x Argo's messages per second in the same boot**: "
                  f"{q:.2f}x: {'met' if q >= 5.0 else 'missed'}.")
    big = [r for r in res["memory"] if r["sshm_attach_ticks"] and r["populate_2m_ticks"]]
    if big:
        r = big[-1]
        q2 = r["sshm_attach_ticks"] / r["populate_2m_ticks"]
        q4 = r["sshm_attach_ticks"] / r["populate_4k_ticks"] if r["populate_4k_ticks"] else None
        g["attach_largest_mib"] = r["mib"]
        g["attach_over_populate_2m"] = q2
        g["attach_over_populate_4k"] = q4
        g["attach_within_1_5x"] = q2 <= 1.5
        md.append(f"- **Attaching 1 GiB no more than 1.5x populating 1 GiB**: largest size done here is "
                  f"{r['mib']} MiB: attach = {q2:.3f}x populate (2 MiB extents)"
                  + (f", {q4:.4f}x populate (4 KiB extents)" if q4 is not None else "")
                  + f": {'met' if q2 <= 1.5 else 'missed'}"
                  + ("" if r["mib"] >= 1024 else " at this size (1 GiB did not fit, see errors)") + ".")
    # Creating a region (issue 16, point 4): bounded steps against populate.
    step = next((m for m in mems if m["kind"] == "sshm_create_step"), None)
    made = [r for r in res["memory"] if r["sshm_create_ticks"]]
    if made:
        md.append("\n## Creating a region, in bounded steps\n")
        md.append("*sshm create* allocates and clears a region's backing, at most `XEN_SSHM_BUILD_PAGES_STEP` "
                  "pages (8 MiB) per step with a continuation between steps (the hypercall is re-executed "
                  "by Xen, unseen by the caller); timed whole, median of 3 creates (each unlinked before "
                  "the next; Xen's release tasklet gives the backing back in between). *populate* as above.\n")
        md.append("| MiB | sshm create | populate 2m | populate 4k | create / populate 2m | create / populate 4k |")
        md.append("|---:|---:|---:|---:|---:|---:|")
        for r in made:
            md.append(f"| {r['mib']} | {f(r['sshm_create_ticks'])} | {f(r['populate_2m_ticks'])} | "
                      f"{f(r['populate_4k_ticks'])} | {ratio(r['sshm_create_ticks'], r['populate_2m_ticks'], 3)} | "
                      f"{ratio(r['sshm_create_ticks'], r['populate_4k_ticks'], 3)} |")
        if step:
            t = median(step["ticks"])
            g["create_step_ticks"] = t
            big = made[-1]
            pop = big["populate_2m_ticks"]
            md.append(f"\nLongest single step: a create of exactly one step ({step['mib']} MiB) takes "
                      f"**{t:,.0f} ticks**"
                      + (f", {100 * t / pop:.2f}% of populating {big['mib']} MiB in 2 MiB extents "
                         f"({pop:,.0f} ticks)" if pop else "")
                      + f"; creating {big['mib']} MiB is {big['mib'] // int(step['mib'])} such steps.")
    res["goals"] = g
    stale = [d for d in detach if d.get("stale") == "1"]
    if detach:
        md.append("\n## Detach check\n")
        md.append(f"After each detach at a gfn below 16 GiB the kernel reads the first word back: "
                  f"{len(stale)} of {len(detach)} detaches left the region mapped (the word written "
                  f"through the attachment still reads back)."
                  + (" **The series' detach does not remove the 2 MiB p2m entries on real Xen**, so the "
                     "region's pages stay referenced after unlink (Xen's free memory below drops by each "
                     "region's size and never comes back) and a re-attach at the same gfn fails with "
                     "-EBUSY. That is why every attach here uses a fresh 1 GiB-aligned gfn, why the "
                     "sizes run largest first, and why the detach figures are not meaningful." if stale else ""))
    if heap:
        # The kernel prints one line at the start, then two per size,
        # largest size first: after the populate runs, after the sshm runs.
        desc = sorted(mibs, reverse=True)
        md.append("\n| when | Xen free MiB | dom0 MiB | dom0 max MiB |\n|---|---:|---:|---:|")
        for i, h in enumerate(heap):
            k = (i - 1) // 2
            label = h["when"] if i == 0 or k >= len(desc) else f"after {h['when']} {desc[k]} MiB"
            md.append(f"| {label} | {h['free_mib']} | {h['dom0_cur_mib']} | {h['dom0_max_mib']} |")
    if errors:
        md.append("\n## Errors\n")
        md.extend(f"- `{e}`" for e in errors)
    if not done:
        md.append(f"\n**Incomplete run** ({a.status}): the kernel did not print `BENCH done`.")
    md.append(f"\nHost time of the boot: {a.host_seconds} s. Console log: `xen-console.log`.")
    open(f"{a.out}/xen-results.md", "w").write("\n".join(md) + "\n")
    json.dump(res, open(f"{a.out}/xen-results.json", "w"), indent=1)
    plot(res, a.out)
    print("\n".join(md))
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
