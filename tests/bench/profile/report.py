#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turns the insn-prof plugin's counts of a `make bench-xen-profile` boot into
xen-profile.md and xen-profile.json (issue 16): instructions per call of
V4V's and Argo's send path, per function of the Xen that was booted and of
the test kernel, side by side per message size, and per extra 4 KiB page.

With --two-domains, the counts of a `make bench-xen-2dom-profile` boot
(guest a streaming to guest b, `bench2: window` lines) into
xen-profile-2dom.md and .json: instructions of the whole machine per
message."""
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


def parse_log(path, prefix="BENCH "):
    """The kernel's `BENCH window` lines (`bench2: window` with two domains):
    what each counting window measured."""
    wins, errors, done = {}, [], False
    for raw in open(path, errors="replace"):
        i = raw.find(prefix)
        if i < 0:
            continue
        words = raw[i + len(prefix):].split()
        if not words:
            continue
        if words[0] == "FATAL":
            words = ["error"] + words
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
        if path is None:
            # Every address from `lo` up, no names: Linux dom0 with two domains.
            self.starts, self.ents, self.lo, self.hi = [], [], LINUX_TEXT, 1 << 64
            return
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
        """(name, whether `a` is its first instruction), or None."""
        if not self.starts:
            return "[Linux dom0: kernel]", False
        i = bisect.bisect_right(self.starts, a) - 1
        if i < 0:
            return None
        name, size = self.ents[i]
        if size is not None and a - self.starts[i] > max(size, 4096):
            # Far past the end of the symbol: code with no symbol.
            return None
        return name, a == self.starts[i]


# Groups for "where the difference goes": the first pattern that matches a
# function's (short) name wins; the test kernel's functions are one group.
GROUPS = [
    ("heap allocation", r"xmem_pool_|_xmalloc|xfree|rust_hv_xmalloc|rust_hv_xfree|RawVec|__rust_no_alloc|"
                        r"__rust_alloc|__rust_dealloc|alloc::alloc"),
    ("domain lookup and references", r"rust_hv_domain_|get_domain_by_id|rcu_lock_domain_by_id|domain_info"),
    ("locks (V4V: with the code inlined under them)", r"SpinLock<|rust_hv_lock|rust_hv_unlock|_spin_lock|_spin_unlock|"
                                                      r"_read_lock|_read_unlock|_write_lock|_write_unlock"),
    ("pending-interrupt checks (VM entry; V4V's preempt_check)",
     r"preempt_check|hvm_vcpu_has_pending_irq|vlapic_has_pending_irq|vlapic_accept_pic_intr|"
     r"hvm_local_events_need_delivery"),
    ("map_domain_page, unmap, memcpy (page walks and ring access)", r"^map_domain_page$|^unmap_domain_page$|^memcpy$"),
    ("ring access: mapping, writes, copy loop", r"rust_hv_frame_|copy_from_guest_to_frame|memcpy_to_guest_ring|"
                                                r"ring_map_page|scatter|write_msg_header|"
                                                r"MsgHeader as abi::bytes::Wire>::write|smp_wmb"),
    ("guest reads: arguments, iovs", r"read_guest|SendAddr as|Iov as|rust_hv_copy_from_guest$"),
    ("guest memory: translation and copy (Xen's copy_from_guest)",
     r"__hvm_copy|copy_from_user_hvm|hvm_copy_from_guest|guest_walk_tables|p2m_|get_page|put_page|__mfn_valid|"
     r"map_domain_gfn|hap_|paging_gva_to_gfn|hvm_translate_get_page|hvm_mmio|hvm_find_io_handler|"
     r"hvmemul_(read|write)_cache|vpci_mmcfg_accept|vioapic_range|vlapic_range|_check_lock_level|"
     r"nestedhvm_vcpu_in_guestmode"),
    ("op dispatch, ring lookup, send logic", r"v4v|V4v|argo|sendv|hash_index|get_sanitized_ring|find_ring"),
    ("wake-up (VIRQ)", r"send_guest_global_virq|send_virq"),
    ("call and return thunks", r"__x86_return_thunk|__x86_indirect_thunk"),
]


# Linux's kernel text (x86-64) and up; its symbols are not at hand.
LINUX_TEXT = 0xffffffff80000000


def group_of(key):
    where, name = key
    if where == "dom0":
        return "dom0: the benchmark loop and the ring reader"
    if where == "guests":
        return "guests a and b: benchmark loops, ring readers, event handling"
    if where == "linux":
        return "dom0 (Linux, idle while measuring)"
    for g, rx in GROUPS:
        if re.search(rx, name):
            return g
    return "rest of Xen: VM exit and entry, hypercall decode, timers"


def short(name):
    """Rust's demangled names without the generic noise."""
    name = re.sub(r"\.llvm\.\d+$", "", name)
    name = name.replace("::<rust_hv::xen::platform::Xen>", "").replace("<rust_hv::xen::platform::Xen>", "<Xen>")
    name = re.sub(r"\bhypercall_abi::", "abi::", name)
    name = re.sub(r"\brust_hv::", "", name)
    name = re.sub(r"\bcore::", "", name)
    return name if len(name) <= 90 else name[:87] + "..."


def attribute(counts, syms):
    """{function: instructions} and {function: entries} of one window (entries:
    executions of its first instruction, i.e. calls unless it loops back to
    it); unknown addresses by 4 KiB page."""
    per, entries = {}, {}
    for a, c in counts.items():
        key = None
        for s in syms:
            if s.lo <= a < s.hi + 4096:
                hit = s.lookup(a)
                if hit is not None:
                    key = (s.tag, short(hit[0]))
                    if hit[1]:
                        entries[key] = entries.get(key, 0) + c
                    break
        if key is None:
            key = ("?", f"[no symbol] page {a & ~0xfff:#x}")
        per[key] = per.get(key, 0) + c
    return per, entries


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
    ap.add_argument("--two-domains", action="store_true",
                    help="a `make bench-xen-2dom-profile` boot: bench2's windows, xen-profile-2dom.*")
    ap.add_argument("--mode", default="stream", choices=("stream", "pingpong"),
                    help="with --two-domains: the windows of this mode (pingpong: xen-profile-2dom-pingpong.*)")
    a = ap.parse_args()
    two = a.two_domains
    pp = two and a.mode == "pingpong"
    # The test kernel's tag: dom0 itself, or both guests (same image, same
    # addresses: a's and b's instructions are not told apart).
    ktag = "guests" if two else "dom0"
    base = ("xen-profile-2dom-pingpong" if pp else "xen-profile-2dom") if two else "xen-profile"

    logwins, errors, done = parse_log(a.log, "bench2: " if two else "BENCH ")
    cwins, exit_line = parse_counts(a.counts)
    if not logwins:
        print("bench-xen-profile: no BENCH window lines in the console log", file=sys.stderr)
        return 1
    if two:
        # Both modes' windows are in one boot: keep this report's.
        logwins = {k: w for k, w in logwins.items() if w["mode"] == a.mode}
    if (two and not set(logwins) <= set(cwins)) or (not two and sorted(logwins) != sorted(cwins)):
        print(f"bench-xen-profile: the kernel printed windows {sorted(logwins)}, the plugin wrote "
              f"{sorted(cwins)}", file=sys.stderr)
        return 1
    syms = [Symbols(a.xen_syms, "xen"), Symbols(a.kernel, ktag)]
    if two:
        syms.append(Symbols(None, "linux"))

    # {(chan, size): {"n", "ticks", "insns", "funcs": {(where, name): per call}}}
    runs = {}
    for seq, w in sorted(logwins.items()):
        per, entries = attribute(cwins[seq], syms)
        n = w["n"]
        total = sum(per.values())
        runs[(w["chan"], w["size"])] = {
            "seq": seq, "n": n, "ticks_per_call": w["ticks"] / n, "insns_per_call": total / n,
            "funcs": {k: v / n for k, v in per.items()},
            "calls": {k: v / n for k, v in entries.items()},
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
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tests/boot",
                "rust-hv", "hypercall-abi", "xen-patches")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()
    qemu = qemu[0] if qemu else "qemu-system-x86_64"

    if two:
        md = [f"# Two domains: V4V's {'ping-pong' if pp else 'stream'} against Argo's, instruction by "
              "instruction (issue 16)\n"]
    else:
        md = ["# V4V's send path against Argo's, instruction by instruction (issue 16)\n"]
    md.append(f"Measured {now} at commit `{commit}`{' (with uncommitted changes to the measured code)' if dirty else ''}"
              f" by `make {'bench-xen-2dom-profile' if two else 'bench-xen-profile'}`; {qemu}.\n")
    if two:
        md.append(("Ping-pong: each window is the 64 timed round trips of the last repetition (`a` sends, "
                   "`b` echoes, both block in between); *per call* below is per **round trip**. " if pp else "") +
                  "The `make bench-xen-2dom` boot (the e2e host: Linux PV dom0, two vCPUs, on Xen 4.17 + the "
                  "series + `CONFIG_ARGO=y`, `out/xen-argo`, `argo=1`, QEMU TCG `-smp 2 "
                  "-icount shift=0,sleep=off`) with the insn-prof plugin loaded and `profile=1` for guest `a` "
                  "(`tests/boot/src/bench2.rs`): the last repetition of each stream (`a` sends "
                  "max(256, 4 MiB / size) messages to `b` and waits for `b`'s ack) is one counting window. "
                  "The plugin counts every instruction of the machine executed in the window by address "
                  "(both guests, Xen on both CPUs, dom0); each address goes to the function of `xen-syms` "
                  "(the image booted) or of the test kernel (`nm`; guests `a` and `b` run the same image at the "
                  "same addresses, so their instructions are summed, tagged `guests`); Linux kernel addresses "
                  "(dom0, idle) are one row. Divided by the messages: *per call* below is per message, "
                  "send and receive and every wake-up in between. Functions inlined into others count as "
                  "their caller. A `rep movs` iteration counts as one instruction, as in icount.\n")
    else:
        md.append("One boot of Xen 4.17 + the series + `CONFIG_ARGO=y` (the `make bench-xen` hypervisor, "
              "`out/xen-argo`) under QEMU TCG `-icount shift=0,sleep=off`, dom0 = `make bench-xen`'s "
              "test kernel with `bench=profile` on its command line. For each size, V4V then Argo: a 256 KiB ring registered by dom0 "
              "for itself, 8 warm-up sends, then one window of "
              f"{runs[next(iter(runs))]['n']} rounds of *send* (sendv of one iov, then the kernel drops "
              "the message: advances `rx_ptr`), as `make bench-xen`'s send mode. The insn-prof QEMU plugin "
              "(`tests/bench/profile/insn-prof.c`) counts every guest instruction executed in the window "
              "by address; this report attributes each address to the function of `xen-syms` (the image "
              "booted) or of the test kernel that contains it (`nm`), and divides by the rounds. "
              "Functions inlined into others count as their caller. A `rep movs` iteration counts as one "
              "instruction, as in icount.\n")
    if two:
        md.append("Cross-check: the window's ns of Xen's clock (icount: one per instruction of the machine, "
                  "the figure `make bench-xen-2dom` reports) against the instructions the plugin counted, "
                  "per message:\n")
    else:
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
    md.append(f"| size | V4V Xen | Argo Xen | V4V {ktag} | Argo {ktag} | V4V all | Argo all | V4V − Argo |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in sizes:
        v, g = runs.get(("v4v", s)), runs.get(("argo", s))
        if not v or not g:
            continue
        md.append(f"| {size_name(s)} | {f(where_total(v, 'xen'))} | {f(where_total(g, 'xen'))} | "
                  f"{f(where_total(v, ktag))} | {f(where_total(g, ktag))} | {f(v['insns_per_call'])} | "
                  f"{f(g['insns_per_call'])} | {fd(v['insns_per_call'] - g['insns_per_call'])} |")
    md.append("")

    def table(title, note, vf, gf, vc, gc):
        """A function table from two {func: insns} and two {func: calls} maps."""
        keys = set(vf) | set(gf)
        rows = sorted(keys, key=lambda k: (-max(abs(vf.get(k, 0)), abs(gf.get(k, 0))), k))
        md.append(f"### {title}\n")
        if note:
            md.append(note + "\n")
        md.append("| function | in | V4V calls | V4V insns | Argo calls | Argo insns | V4V − Argo |")
        md.append("|---|---|---:|---:|---:|---:|---:|")
        other_v = other_g = 0.0
        for k in rows:
            x, y = vf.get(k), gf.get(k)
            if max(abs(x or 0), abs(y or 0)) < ROW_MIN:
                other_v += x or 0
                other_g += y or 0
                continue
            cx = vc.get(k) if x is not None else None
            cy = gc.get(k) if y is not None else None
            md.append(f"| `{k[1]}` | {k[0]} | {f(cx, 1)} | {f(x)} | {f(cy, 1)} | {f(y)} | "
                      f"{fd((x or 0) - (y or 0))} |")
        md.append(f"| other functions (under {ROW_MIN:g} each) | | | {f(other_v)} | | {f(other_g)} | "
                  f"{fd(other_v - other_g)} |")
        tv, tg = sum(vf.values()), sum(gf.values())
        md.append(f"| **total** | | | **{f(tv)}** | | **{f(tg)}** | **{fd(tv - tg)}** |")
        md.append("")

    def grouped(fm):
        out = {}
        for k, x in fm.items():
            out[group_of(k)] = out.get(group_of(k), 0) + x
        return out

    def group_table(title, cols):
        """cols: [(heading, {func: v4v}, {func: argo})]: V4V, Argo, V4V − Argo per column."""
        gs = [grouped(v) for _, v, _ in cols], [grouped(g) for _, _, g in cols]
        names = sorted({n for m in gs[0] + gs[1] for n in m},
                       key=lambda n: -max(abs(gs[0][i].get(n, 0) - gs[1][i].get(n, 0)) for i in range(len(cols))))
        md.append(f"### {title}\n")
        md.append("| group | " + " | ".join(f"{h}: V4V | Argo | V4V − Argo" for h, _, _ in cols) + " |")
        md.append("|---|" + "---:|---:|---:|" * len(cols))
        for n in names:
            cells = []
            for i in range(len(cols)):
                x, y = gs[0][i].get(n, 0), gs[1][i].get(n, 0)
                cells += [f(x), f(y), fd(x - y)]
            md.append(f"| {n} | " + " | ".join(cells) + " |")
        cells = []
        for _, v, g in cols:
            x, y = sum(v.values()), sum(g.values())
            cells += [f"**{f(x)}**", f"**{f(y)}**", f"**{fd(x - y)}**"]
        md.append("| **total** | " + " | ".join(cells) + " |")
        md.append("")

    md.append("## Where the difference goes\n")
    md.append("The functions of the tables below summed by what they do (the patterns are `GROUPS` in "
              "`tests/bench/profile/report.py`). V4V's lock wrappers (`SpinLock<..>::with`) count the "
              "code the compiler inlined into them (the closures run under the lock); Argo's code under "
              "its locks counts in `sendv` and the functions it calls.\n")
    group_cols = [(size_name(s), runs[("v4v", s)]["funcs"], runs[("argo", s)]["funcs"])
                  for s in sizes[:2 if two else 1] if ("v4v", s) in runs and ("argo", s) in runs]
    big = [s for s in sizes if s % 4096 == 0]
    if len(big) >= 2 and all((c, s) in runs for c in chans for s in (big[0], big[-1])):
        lo, hi = big[0], big[-1]
        pg = (hi - lo) // 4096

        def page_slope(chan):
            a, b = runs[(chan, lo)]["funcs"], runs[(chan, hi)]["funcs"]
            return {k: (b.get(k, 0) - a.get(k, 0)) / pg for k in set(a) | set(b)}

        group_cols.append(("per extra page", page_slope("v4v"), page_slope("argo")))
    if group_cols:
        group_table("Per message at the smallest sizes, and per extra 4 KiB page" if two else
                    "Per call at the smallest size, and per extra 4 KiB page", group_cols)

    md.append("## Instructions per call, by function\n")
    if two:
        md.append("`in`: `xen` is the hypervisor (`xen-syms`), `guests` the test kernel of guests `a` and `b` "
                  "(benchmark loops, hypercall stubs, ring readers, event handling), `linux` dom0's kernel. "
                  "Sorted by the larger of the two columns.\n")
    else:
        md.append("`in`: `xen` is the hypervisor (`xen-syms`), `dom0` the test kernel (the benchmark loop, "
                  "the hypercall stub, the ring reader). Sorted by the larger of the two columns.\n")
    for s in sizes:
        v, g = runs.get(("v4v", s)), runs.get(("argo", s))
        table(size_name(s), "", v["funcs"] if v else {}, g["funcs"] if g else {},
              v["calls"] if v else {}, g["calls"] if g else {})

    # Per page: the two largest sizes that are multiples of 4 KiB.
    big = [s for s in sizes if s % 4096 == 0]
    per_page = None
    if len(big) >= 2:
        lo, hi = big[0], big[-1]
        pages = (hi - lo) // 4096

        def slope(chan, what):
            a, b = runs.get((chan, lo)), runs.get((chan, hi))
            if not a or not b:
                return {}
            keys = set(a[what]) | set(b[what])
            return {k: (b[what].get(k, 0) - a[what].get(k, 0)) / pages for k in keys}

        sv, sg = slope("v4v", "funcs"), slope("argo", "funcs")
        per_page = {"from": lo, "to": hi, "v4v": sum(sv.values()), "argo": sum(sg.values())}
        md.append("## Per extra 4 KiB page\n")
        table(f"({size_name(hi)} − {size_name(lo)}) / {pages} pages",
              "What one more 4 KiB of message costs, per function; *calls* are extra calls per page.",
              sv, sg, slope("v4v", "calls"), slope("argo", "calls"))

    if errors:
        md.append("## Errors\n")
        md.extend(f"- `{e}`" for e in errors)
        md.append("")
    if not done:
        md.append("**Incomplete run**: the kernel did not print `BENCH done`.\n")
    md.append(f"Plugin: `{exit_line or 'no exit line'}`. Host time of the boot: {a.host_seconds} s. "
              f"Console log: `{'2dom-profile/console.log' if two else 'xen-profile-console.log'}`.")

    os.makedirs(a.out, exist_ok=True)
    open(os.path.join(a.out, base + ".md"), "w").write("\n".join(md) + "\n")
    js = {"measured": now, "commit": commit, "dirty": bool(dirty), "qemu": qemu, "per_page": per_page,
          "errors": errors, "complete": done,
          "runs": [{"chan": c, "size": s, "n": r["n"], "ticks_per_call": r["ticks_per_call"],
                    "insns_per_call": r["insns_per_call"],
                    "functions": sorted(([w, n, v, r["calls"].get((w, n), 0)] for (w, n), v in r["funcs"].items()),
                                        key=lambda x: -x[2])}
                   for (c, s), r in sorted(runs.items())]}
    json.dump(js, open(os.path.join(a.out, base + ".json"), "w"), indent=1)
    print("\n".join(md))
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
