#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turns the `bench2: result` lines of a `make bench-xen-2dom` console log
(guest `a` of tests/e2e/dom0/bench2.sh, printed by Xen as `(dN) bench2: ...`)
into xen-2dom.md, xen-2dom.json and xen-2dom.png (issue 16 point 3,
tests/bench/README.md "Two domains").

    xen2_report.py --log out/bench/2dom/console.log --out out/bench
    xen2_report.py --check     the parser and the table on xen2-sample.log
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xen_report import SIZE_AXIS, median, spread, two_panel_png  # noqa: E402  one definition of each

HERE = os.path.dirname(os.path.abspath(__file__))
# Report order and names; v4vb (batched sends) streams only: a round trip
# is one message.
CHANS = [("v4v", "V4V"), ("v4vb", "V4V batched"), ("argo", "Argo"), ("vchan", "vchan")]
MODES = ("stream", "pingpong")
# Repetitions further apart than this are listed one by one.
WIDE = 0.05
LINE = re.compile(r"(?:\((d\d+)\) )?bench2: (\S+)(.*)$")
# dom0's line when `a` is off (tests/e2e/dom0/bench2.sh): dom0's seconds
# from a's creation to its power-off, virtual time under -icount.
OFF = re.compile(r"^DOM0 \[[0-9.]+\] bench2: a \(d\d+\) off after ([0-9.]+) s(?:.*dom0 busy meanwhile (\d+) ms)?")


def parse(path):
    """Every bench2 line of the log: results (one dict per line), skips,
    fatal lines, the done line's count, Xen's command line."""
    res = {"results": [], "skips": [], "fatal": [], "done": None, "ready": [], "xen_cmdline": "",
           "dom0_wait_s": None, "dom0_busy_ms": None}
    for raw in open(path, errors="replace"):
        line = raw.rstrip("\r\n")
        if "Command line:" in line and line.startswith("(XEN)") and not res["xen_cmdline"]:
            res["xen_cmdline"] = line.split("Command line:", 1)[1].strip()
        w = OFF.search(line)
        if w:
            res["dom0_wait_s"] = float(w.group(1))
            res["dom0_busy_ms"] = int(w.group(2)) if w.group(2) else None
        m = LINE.search(line)
        if not m:
            continue
        dom, kind, rest = m.group(1), m.group(2), m.group(3)
        kv = dict(w.split("=", 1) for w in rest.split() if "=" in w)
        if kind == "result":
            try:
                res["results"].append({"dom": dom, "chan": kv["chan"], "mode": kv["mode"],
                                       "size": int(kv["size"]), "count": int(kv["count"]),
                                       "rep": int(kv["rep"]), "ns": int(kv["ns"])})
            except (KeyError, ValueError):
                res["fatal"].append(f"unreadable result line: {line.strip()}")
        elif kind == "skip":
            res["skips"].append({"chan": kv.get("chan", "?"), "errno": kv.get("errno", "?"), "line": rest.strip()})
        elif kind == "FATAL":
            res["fatal"].append(f"{dom or '?'}: {rest.strip()}")
        elif kind == "done":
            res["done"] = int(kv.get("results", "-1"))
        elif kind == "ready":
            res["ready"].append(rest.strip())
    return res


def summarize(parsed):
    """Median of the reps of each (chan, mode, size) and the derived
    figures: ns/msg and MB/s for stream, us per round trip for ping-pong."""
    groups = {}
    for r in parsed["results"]:
        groups.setdefault((r["chan"], r["mode"], r["size"]), []).append(r)
    rows = []
    for (chan, mode, size), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        ns = [r["ns"] for r in sorted(rs, key=lambda r: r["rep"])]
        counts = sorted({r["count"] for r in rs})
        count = counts[0]
        med = median(ns)
        row = {"chan": chan, "mode": mode, "size": size, "count": count, "reps": len(ns), "ns": ns,
               "median_ns": med, "spread": spread(ns), "ns_per_msg": med / count if count else None}
        if len(counts) > 1:
            row["counts_differ"] = counts
        if mode == "stream":
            row["mb_per_s"] = size * count / med * 1000 if med else None
        else:
            row["us_per_round_trip"] = med / count / 1000 if count else None
        rows.append(row)
    return rows


def size_name(s):
    return f"{s >> 10} KiB" if s >= 1024 and s % 1024 == 0 else f"{s} B"


def fmt(x, d=0):
    return "—" if x is None else f"{x:,.{d}f}"


def ratio(x, y):
    return None if x is None or y is None or y == 0 else x / y


def report(parsed, rows, qemu="", host_seconds=None):
    """The markdown text and the json object."""
    get = {(r["chan"], r["mode"], r["size"]): r for r in rows}
    sizes = sorted({r["size"] for r in rows})

    def v(chan, mode, size, key):
        r = get.get((chan, mode, size))
        return r.get(key) if r else None

    md = ["# Two domains: guest to guest on real Xen (issue 16 point 3)\n"]
    md.append("`make bench-xen-2dom`: the e2e host (Linux PV dom0, our toolstack) on the Argo build of Xen"
              + (f" (command line `{parsed['xen_cmdline']}`)" if parsed["xen_cmdline"] else "")
              + (f", QEMU `{qemu}`" if qemu else "")
              + ". Two test-kernel PVH guests created by dom0 (`tests/e2e/dom0/bench2.sh`): `a` drives, "
              "`b` receives and echoes; dom0 idles meanwhile. Clock: Xen system time read in `a` only"
              + ("; under `-icount shift=0` 1 ns is one guest instruction of the whole machine "
                 "(both guests, dom0 and Xen)" if "icount" in qemu else "")
              + ". 256 KiB of ring per direction for every channel; the receiver copies each message out "
              "and checks its sequence number; blocked sides sleep in `SCHEDOP_poll`. "
              "Each figure is the median of its repetitions.\n")
    md.append("## Streaming, one way (a to b)\n")
    md.append("`a` sends `count` messages (max(256, 4 MiB / size), after 8 warm-up ones), `b` receives "
              "them all and sends a 16-byte ack; timed from the first send to the ack. ns per message "
              "and MB/s (10^6 bytes per second of the clock above). Ratios are of messages per second: "
              "above 1, the first channel is ahead.\n")
    md.append("| size | V4V ns/msg | V4V MB/s | V4V batched ns/msg | V4V batched MB/s | Argo ns/msg | Argo MB/s "
              "| vchan ns/msg | vchan MB/s | V4V / Argo | V4V / vchan | V4V batched / Argo |")
    md.append("|---|" + "---:|" * 11)
    ratios = []
    for s in sizes:
        n = {c: v(c, "stream", s, "ns_per_msg") for c, _ in CHANS}
        b = {c: v(c, "stream", s, "mb_per_s") for c, _ in CHANS}
        q = {"v4v_over_argo": ratio(n["argo"], n["v4v"]), "v4v_over_vchan": ratio(n["vchan"], n["v4v"]),
             "v4vb_over_argo": ratio(n["argo"], n["v4vb"])}
        ratios.append({"mode": "stream", "size": s, **q})
        md.append(f"| {size_name(s)} | " + " | ".join(f"{fmt(n[c])} | {fmt(b[c], 1)}" for c, _ in CHANS)
                  + f" | {fmt(q['v4v_over_argo'], 2)} | {fmt(q['v4v_over_vchan'], 2)} | {fmt(q['v4vb_over_argo'], 2)} |")
    md.append("")
    md.append("## Ping-pong round trips\n")
    md.append("`a` sends one message, `b` echoes it (same size); 64 round trips after 4 warm-up ones. "
              "µs per round trip; ratios as above (V4V batched has no ping-pong: a round trip is one "
              "message).\n")
    md.append("| size | V4V µs | Argo µs | vchan µs | V4V / Argo | V4V / vchan |")
    md.append("|---|---:|---:|---:|---:|---:|")
    for s in sizes:
        u = {c: v(c, "pingpong", s, "us_per_round_trip") for c, _ in CHANS}
        q = {"v4v_over_argo": ratio(u["argo"], u["v4v"]), "v4v_over_vchan": ratio(u["vchan"], u["v4v"])}
        ratios.append({"mode": "pingpong", "size": s, **q})
        md.append(f"| {size_name(s)} | {fmt(u['v4v'], 1)} | {fmt(u['argo'], 1)} | {fmt(u['vchan'], 1)} "
                  f"| {fmt(q['v4v_over_argo'], 2)} | {fmt(q['v4v_over_vchan'], 2)} |")
    md.append("")
    spreads = [r["spread"] for r in rows if r["reps"] > 1]
    if spreads:
        md.append(f"Largest spread between repetitions (max / min - 1): {100 * max(spreads):.2f}%.\n")
        wide = [r for r in rows if r["reps"] > 1 and r["spread"] > WIDE]
        if wide:
            md.append(f"Spread above {100 * WIDE:.0f}% (each repetition; the median can be either mode "
                      "of a figure that has two):\n")
            names = dict(CHANS)
            for r in wide:
                if r["mode"] == "stream":
                    each = ", ".join(f"{n / r['count']:,.0f}" for n in r["ns"]) + " ns/msg"
                else:
                    each = ", ".join(f"{n / r['count'] / 1000:.1f}" for n in r["ns"]) + " µs"
                md.append(f"- {names.get(r['chan'], r['chan'])} {r['mode']} {size_name(r['size'])}: {each} "
                          f"({100 * r['spread']:.1f}%)")
            md.append("")
    odd = [r for r in rows if "counts_differ" in r]
    for r in odd:
        md.append(f"- {r['chan']} {r['mode']} {size_name(r['size'])}: counts differ between repetitions "
                  f"{r['counts_differ']}, the first is used.")
    if parsed["skips"]:
        md.append("## Skipped channels\n")
        md.extend(f"- `{s['line']}`" for s in parsed["skips"])
        md.append("")
    if parsed["fatal"]:
        md.append("## Errors\n")
        md.extend(f"- `{f}`" for f in parsed["fatal"])
        md.append("")
    complete = parsed["done"] is not None and not parsed["fatal"]
    if parsed["done"] is None:
        md.append("**Incomplete run**: `a` printed no `bench2: done` line.\n")
    elif parsed["done"] != len(parsed["results"]):
        md.append(f"Note: `a` said `results={parsed['done']}`, the log has {len(parsed['results'])} result lines.\n")
    if parsed["dom0_wait_s"] is not None:
        md.append(f"`a` ran {parsed['dom0_wait_s']:.1f} s of dom0's clock"
                  + (" (virtual time: instructions / 10^9)" if "icount" in qemu else "")
                  + (f"; dom0 was busy {parsed['dom0_busy_ms']} ms of it (both vCPUs, its /proc/stat)"
                     if parsed["dom0_busy_ms"] is not None else "") + ".")
    if host_seconds is not None:
        md.append(f"Host time of the boot: {host_seconds} s.")
    md.append("Console log: `2dom/console.log`.")
    js = {"xen_cmdline": parsed["xen_cmdline"], "qemu": qemu, "complete": complete,
          "done_results": parsed["done"], "skips": parsed["skips"], "errors": parsed["fatal"],
          "results": rows, "ratios": ratios, "host_seconds": host_seconds,
          "a_run_dom0_seconds": parsed["dom0_wait_s"], "dom0_busy_ms_during_a": parsed["dom0_busy_ms"]}
    return "\n".join(md) + "\n", js


def plot(rows, out):
    """xen-2dom.png: throughput against size (left), round trip against size
    (right), log scales; the data and script beside it in xen-2dom-plot/."""
    d = os.path.join(out, "xen-2dom-plot")
    os.makedirs(d, exist_ok=True)
    get = {(r["chan"], r["mode"], r["size"]): r for r in rows}
    sizes = sorted({r["size"] for r in rows})

    def col(chan, mode, size, key):
        r = get.get((chan, mode, size))
        return "NaN" if not r or r.get(key) is None else f"{r[key]:.4f}"

    with open(os.path.join(d, "stream.dat"), "w") as f:
        f.write("# size " + " ".join(f"{c}_MBps" for c, _ in CHANS) + "\n")
        for s in sizes:
            f.write(f"{s} " + " ".join(col(c, "stream", s, "mb_per_s") for c, _ in CHANS) + "\n")
    pp = [(c, n) for c, n in CHANS if c != "v4vb"]
    with open(os.path.join(d, "pingpong.dat"), "w") as f:
        f.write("# size " + " ".join(f"{c}_us" for c, _ in pp) + "\n")
        for s in sizes:
            f.write(f"{s} " + " ".join(col(c, "pingpong", s, "us_per_round_trip") for c, _ in pp) + "\n")
    # One line type per channel in both panels.
    lt = {c: i + 1 for i, (c, _) in enumerate(CHANS)}
    two_panel_png(d, "xen-2dom.png", [
        ("Two domains on real Xen: streaming throughput a -> b", SIZE_AXIS, "MB/s (higher is better)",
         [f"'stream.dat' using 1:{i + 2} with linespoints lt {lt[c]} title '{n}'" for i, (c, n) in enumerate(CHANS)]),
        ("Two domains on real Xen: ping-pong round trip", SIZE_AXIS, "microseconds per round trip (lower is better)",
         [f"'pingpong.dat' using 1:{i + 2} with linespoints lt {lt[c]} title '{n}'" for i, (c, n) in enumerate(pp)]),
    ], "xen2_report")


def check():
    """The parser, the medians and the table on xen2-sample.log."""
    parsed = parse(os.path.join(HERE, "xen2-sample.log"))
    rows = summarize(parsed)
    md, js = report(parsed, rows, qemu="-icount shift=0,sleep=off")
    get = {(r["chan"], r["mode"], r["size"]): r for r in rows}
    errs = []

    def want(what, got, exp):
        if got != exp and not (isinstance(exp, float) and got is not None and abs(got - exp) < 1e-9 * abs(exp)):
            errs.append(f"{what}: {got!r}, want {exp!r}")

    want("result lines", len(parsed["results"]), 10)
    want("done", parsed["done"], 10)
    want("skips", [s["chan"] for s in parsed["skips"]], ["vchan"])
    want("xen cmdline", parsed["xen_cmdline"].endswith("argo=1"), True)
    r = get[("v4v", "stream", 64)]
    want("v4v stream 64 median", r["median_ns"], 6553600)  # of 6553700, 6553600, 6000000
    want("v4v stream 64 ns/msg", r["ns_per_msg"], 100.0)
    want("v4v stream 64 MB/s", r["mb_per_s"], 640.0)
    want("argo stream 64 ns/msg", get[("argo", "stream", 64)]["ns_per_msg"], 200.0)
    want("v4v pingpong 64 us", get[("v4v", "pingpong", 64)]["us_per_round_trip"], 20.0)
    want("argo pingpong 64 us", get[("argo", "pingpong", 64)]["us_per_round_trip"], 30.0)
    q = {(x["mode"], x["size"]): x for x in js["ratios"]}
    want("stream V4V/Argo", q[("stream", 64)]["v4v_over_argo"], 2.0)
    want("stream v4vb/Argo", q[("stream", 64)]["v4vb_over_argo"], 8.0)
    want("stream V4V/vchan", q[("stream", 64)]["v4v_over_vchan"], None)
    want("pingpong V4V/Argo", q[("pingpong", 64)]["v4v_over_argo"], 1.5)
    want("complete", js["complete"], True)
    want("a's run", parsed["dom0_wait_s"], 321.5)
    want("dom0 busy", parsed["dom0_busy_ms"], 20)
    for s in ("| 64 B | 100 | 640.0 | 25 | 2,560.0 | 200 | 320.0 | — | — | 2.00 | — | 8.00 |",
              "| 64 B | 20.0 | 30.0 | — | 1.50 | — |", "`chan=vchan errno=-38`"):
        if s not in md:
            errs.append(f"table line missing: {s}")
    if "- V4V stream 64 B: 100, 100, 92 ns/msg (9.2%)" not in md:
        errs.append("the wide-spread line of v4v stream 64 B is missing")
    if parse(os.devnull)["done"] is not None:
        errs.append("an empty log has a done line")
    if errs:
        print("xen2_report --check: FAILED\n  " + "\n  ".join(errs), file=sys.stderr)
        print(md, file=sys.stderr)
        return 1
    json.dumps(js)
    print(f"xen2_report --check: {len(parsed['results'])} sample lines parsed, medians, ratios and table as expected")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log")
    ap.add_argument("--out")
    ap.add_argument("--qemu", default="", help="QEMU's extra arguments, for the text")
    ap.add_argument("--host-seconds", type=int)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    if a.check:
        return check()
    if not a.log or not a.out:
        ap.error("--log and --out are needed (or --check)")
    if not os.path.exists(a.log):
        print(f"xen2_report: no log at {a.log}", file=sys.stderr)
        return 1
    parsed = parse(a.log)
    rows = summarize(parsed)
    if not rows:
        print(f"xen2_report: no `bench2: result` lines in {a.log}"
              + (f" (errors: {parsed['fatal']})" if parsed["fatal"] else ""), file=sys.stderr)
    md, js = report(parsed, rows, a.qemu, a.host_seconds)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "xen-2dom.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "xen-2dom.json"), "w") as f:
        json.dump(js, f, indent=1)
    if rows:
        plot(rows, a.out)
    print(md)
    return 0 if js["complete"] and rows else 1


if __name__ == "__main__":
    sys.exit(main())
