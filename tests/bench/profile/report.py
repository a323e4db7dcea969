#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turns the insn-prof plugin's counts of a `make bench-xen-profile` boot into
xen-profile.md and xen-profile.json (issue 16): instructions per call of
V4V's and Argo's send path, per function of the Xen that was booted and of
the test kernel, side by side per message size, and per extra 4 KiB page."""
import argparse
import bisect
import datetime
import json
import os
import re
import subprocess
import sys

# Functions below this many instructions per call in both channels are
# summed into one "other" row per table.
ROW_MIN = 2.0


def parse_log(path):
    """The kernel's `BENCH window` lines: what each counting window measured."""
    wins, errors, done = {}, [], False
    for raw in open(path, errors="replace"):
        i = raw.find("BENCH ")
        if i < 0:
            continue
        words = raw[i + 6:].split()
        kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if words[0] == "window":
            wins[int(kv["seq"])] = {"chan": kv["chan"], "mode": kv["mode"], "size": int(kv["size"]),
                                    "n": int(kv["n"]), "ticks": int(kv["ticks"])}
        elif words[0] == "error":
            errors.append(" ".join(words[1:]))
        elif words[0] == "done":
            done = True
    return wins, errors, done


def parse_counts(path):
    """The plugin's windows: {seq: {address: count}}, and its exit line."""
    wins, cur, seq, exit_line = {}, None, None, None
    for line in open(path):
        w = line.split()
        if not w:
            continue
        if w[0] == "window":
            seq, cur = int(w[1]), {}
        elif w[0] == "end":
            total = int(w[2].split("=")[1])
            assert sum(cur.values()) == total, f"window {seq}: counts do not add up"
            wins[seq] = cur
            cur = None
        elif w[0] == "exit":
            exit_line = line.strip()
        else:
            cur[int(w[0], 16)] = int(w[1])
    return wins, exit_line


class Symbols:
    """Text symbols of one ELF file (`nm -n -S -C`), for address lookup."""

    def __init__(self, path, tag):
        self.tag = tag
        out = subprocess.run(["nm", "-n", "-S", "-C", "--defined-only", path], check=True,
                             capture_output=True, text=True).stdout
        rx = re.compile(r"^([0-9a-f]+) (?:([0-9a-f]+) )?([tTwW]) (.*)$")
        starts, ents = [], []
        for line in out.splitlines():
            m = rx.match(line)
            if not m:
                continue
            a = int(m.group(1), 16)
            size = int(m.group(2), 16) if m.group(2) else None
            if starts and starts[-1] == a:
                # Aliases (identical code folded): keep the first name.
                if ents[-1][1] is None:
                    ents[-1] = (ents[-1][0], size)
                continue
            starts.append(a)
            ents.append((m.group(4), size))
        self.starts, self.ents = starts, ents
        self.lo = starts[0] if starts else 0
        self.hi = starts[-1] + (ents[-1][1] or 0) if starts else 0

    def lookup(self, a):
        i = bisect.bisect_right(self.starts, a) - 1
        if i < 0:
            return None
        name, size = self.ents[i]
        nxt = self.starts[i + 1] if i + 1 < len(self.starts) else None
        if size is not None and a >= self.starts[i] + size and (nxt is None or a < nxt):
            # Past the end of the symbol: padding or code with no symbol.
            if a - self.starts[i] > 4096:
                return None
        return name


def short(name):
    """Rust's demangled names without the generic noise."""
    name = re.sub(r"\.llvm\.\d+$", "", name)
    name = name.replace("::<rust_hv::xen::platform::Xen>", "").replace("<rust_hv::xen::platform::Xen>", "<Xen>")
    name = re.sub(r"\bhypercall_abi::", "abi::", name)
    name = re.sub(r"\brust_hv::", "", name)
    name = re.sub(r"\bcore::", "", name)
    return name if len(name) <= 90 else name[:87] + "..."


def attribute(counts, syms):
    """{function: instructions} of one window; unknown addresses by 4 KiB page."""
    per = {}
    for a, c in counts.items():
        name = None
        for s in syms:
            if s.lo <= a < s.hi + 4096:
                name = s.lookup(a)
                if name is not None:
                    name = (s.tag, short(name))
                    break
        if name is None:
            name = ("?", f"[no symbol] page {a & ~0xfff:#x}")
        per[name] = per.get(name, 0) + c
    return per


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--counts", required=True)
    ap.add_argument("--xen-syms", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--config", default="")
    ap.add_argument("--host-seconds", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    logwins, errors, done = parse_log(a.log)
    cwins, exit_line = parse_counts(a.counts)
    if not logwins:
        print("bench-xen-profile: no BENCH window lines in the console log", file=sys.stderr)
        return 1
    if sorted(logwins) != sorted(cwins):
        print(f"bench-xen-profile: the kernel printed windows {sorted(logwins)}, the plugin wrote "
              f"{sorted(cwins)}", file=sys.stderr)
        return 1
    syms = [Symbols(a.xen_syms, "xen"), Symbols(a.kernel, "dom0")]

    # {(chan, size): {"n", "ticks", "insns", "funcs": {(where, name): per call}}}
    runs = {}
    for seq, w in sorted(logwins.items()):
        per = attribute(cwins[seq], syms)
        n = w["n"]
        total = sum(per.values())
        runs[(w["chan"], w["size"])] = {
            "seq": seq, "n": n, "ticks_per_call": w["ticks"] / n, "insns_per_call": total / n,
            "funcs": {k: v / n for k, v in per.items()},
        }
    sizes = sorted({s for _, s in runs})
    chans = ("v4v", "argo")

    def size_name(s):
        return f"{s >> 10} KiB" if s >= 1024 else f"{s} B"

    def f(x, d=0):
        return "—" if x is None else f"{x:,.{d}f}"

    def fd(x, d=0):
        return "—" if x is None else f"{x:+,.{d}f}"

    def where_total(r, where):
        return sum(v for (w, _), v in r["funcs"].items() if w == where)

    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tests/boot", "tests/bench",
                "rust-hv", "hypercall-abi", "xen-patches")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()
    qemu = qemu[0] if qemu else "qemu-system-x86_64"

    md = ["# V4V's send path against Argo's, instruction by instruction (issue 16)\n"]
    md.append(f"Measured {now} at commit `{commit}`{' (with uncommitted changes to the measured code)' if dirty else ''}"
              f" by `make bench-xen-profile`; {qemu}.\n")
    md.append("One boot of Xen 4.17 + the series + `CONFIG_ARGO=y` (the `make bench-xen` hypervisor, "
              "`out/xen-argo`) under QEMU TCG `-icount shift=0,sleep=off`, dom0 = the test kernel with "
              "the cargo feature `profile`. For each size, V4V then Argo: a 256 KiB ring registered by dom0 "
              "for itself, 8 warm-up sends, then one window of "
              f"{runs[next(iter(runs))]['n']} rounds of *send* (sendv of one iov, then the kernel drops "
              "the message: advances `rx_ptr`), as `make bench-xen`'s send mode. The insn-prof QEMU plugin "
              "(`tests/bench/profile/insn-prof.c`) counts every guest instruction executed in the window "
              "by address; this report attributes each address to the function of `xen-syms` (the image "
              "booted) or of the test kernel that contains it (`nm`), and divides by the rounds. "
              "Functions inlined into others count as their caller. A `rep movs` iteration counts as one "
              "instruction, as in icount.\n")
    md.append("Cross-check: the window's TSC ticks (icount: one tick per instruction) against the "
              "instructions the plugin counted, per call:\n")
    md.append("| size | V4V insns | V4V ticks | Argo insns | Argo ticks |")
    md.append("|---|---:|---:|---:|---:|")
    for s in sizes:
        v, g = runs.get(("v4v", s)), runs.get(("argo", s))
        md.append(f"| {size_name(s)} | {f(v and v['insns_per_call'])} | {f(v and v['ticks_per_call'])} "
                  f"| {f(g and g['insns_per_call'])} | {f(g and g['ticks_per_call'])} |")
    md.append("")

    # Summary.
    md.append("## Totals per call\n")
    md.append("| size | V4V Xen | Argo Xen | V4V dom0 | Argo dom0 | V4V all | Argo all | V4V − Argo |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in sizes:
        v, g = runs.get(("v4v", s)), runs.get(("argo", s))
        if not v or not g:
            continue
        md.append(f"| {size_name(s)} | {f(where_total(v, 'xen'))} | {f(where_total(g, 'xen'))} | "
                  f"{f(where_total(v, 'dom0'))} | {f(where_total(g, 'dom0'))} | {f(v['insns_per_call'])} | "
                  f"{f(g['insns_per_call'])} | {fd(v['insns_per_call'] - g['insns_per_call'])} |")
    md.append("")

    def table(title, note, vf, gf):
        """A function table from two {func: value} maps."""
        keys = set(vf) | set(gf)
        rows = sorted(keys, key=lambda k: -max(abs(vf.get(k, 0)), abs(gf.get(k, 0))))
        md.append(f"### {title}\n")
        if note:
            md.append(note + "\n")
        md.append("| function | in | V4V | Argo | V4V − Argo |")
        md.append("|---|---|---:|---:|---:|")
        other_v = other_g = 0.0
        for k in rows:
            x, y = vf.get(k), gf.get(k)
            if max(abs(x or 0), abs(y or 0)) < ROW_MIN:
                other_v += x or 0
                other_g += y or 0
                continue
            md.append(f"| `{k[1]}` | {k[0]} | {f(x)} | {f(y)} | {fd((x or 0) - (y or 0))} |")
        md.append(f"| other functions (under {ROW_MIN:g} each) | | {f(other_v)} | {f(other_g)} | "
                  f"{fd(other_v - other_g)} |")
        tv, tg = sum(vf.values()), sum(gf.values())
        md.append(f"| **total** | | **{f(tv)}** | **{f(tg)}** | **{fd(tv - tg)}** |")
        md.append("")

    md.append("## Instructions per call, by function\n")
    md.append("`in`: `xen` is the hypervisor (`xen-syms`), `dom0` the test kernel (the benchmark loop, "
              "the hypercall stub, the ring reader). Sorted by the larger of the two columns.\n")
    for s in sizes:
        v, g = runs.get(("v4v", s)), runs.get(("argo", s))
        table(size_name(s), "", v["funcs"] if v else {}, g["funcs"] if g else {})

    # Per page: the two largest sizes that are multiples of 4 KiB.
    big = [s for s in sizes if s % 4096 == 0]
    per_page = None
    if len(big) >= 2:
        lo, hi = big[0], big[-1]
        pages = (hi - lo) // 4096

        def slope(chan):
            a, b = runs.get((chan, lo)), runs.get((chan, hi))
            if not a or not b:
                return {}
            keys = set(a["funcs"]) | set(b["funcs"])
            return {k: (b["funcs"].get(k, 0) - a["funcs"].get(k, 0)) / pages for k in keys}

        sv, sg = slope("v4v"), slope("argo")
        per_page = {"from": lo, "to": hi, "v4v": sum(sv.values()), "argo": sum(sg.values())}
        md.append("## Per extra 4 KiB page\n")
        table(f"({size_name(hi)} − {size_name(lo)}) / {pages} pages",
              "What one more 4 KiB of message costs, per function.", sv, sg)

    if errors:
        md.append("## Errors\n")
        md.extend(f"- `{e}`" for e in errors)
        md.append("")
    if not done:
        md.append("**Incomplete run**: the kernel did not print `BENCH done`.\n")
    md.append(f"Plugin: `{exit_line or 'no exit line'}`. Host time of the boot: {a.host_seconds} s. "
              "Console log: `xen-profile-console.log`.")

    os.makedirs(a.out, exist_ok=True)
    open(os.path.join(a.out, "xen-profile.md"), "w").write("\n".join(md) + "\n")
    js = {"measured": now, "commit": commit, "dirty": bool(dirty), "qemu": qemu, "per_page": per_page,
          "errors": errors, "complete": done,
          "runs": [{"chan": c, "size": s, "n": r["n"], "ticks_per_call": r["ticks_per_call"],
                    "insns_per_call": r["insns_per_call"],
                    "functions": sorted(([w, n, v] for (w, n), v in r["funcs"].items()), key=lambda x: -x[2])}
                   for (c, s), r in sorted(runs.items())]}
    json.dump(js, open(os.path.join(a.out, "xen-profile.json"), "w"), indent=1)
    print("\n".join(md))
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
