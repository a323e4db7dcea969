#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `make bench-xen-2dom-profile` (issue 16): the two-domain benchmark's boot
# (`make bench-xen-2dom`: tests/e2e/run.sh, the e2e host on the Argo Xen
# with argo=1 under QEMU -icount, dom0 running only tests/e2e/dom0/bench2.sh)
# with the insn-prof plugin loaded and `profile=1` for guest `a`: the last
# repetition of each stream and ping-pong is a counting window.
# report.py --two-domains attributes each window's instructions (the whole
# machine's: both guests, Xen, dom0) to Xen's and the test kernel's
# functions, per message in OUT/xen-profile-2dom.md and .json, per round
# trip in OUT/xen-profile-2dom-pingpong.md and .json.
#
#   run-2dom.sh XEN-DIR IMAGES KERNEL PLUGIN OUT [DOM0-ARGS...]
#
# XEN-DIR holds xen.gz, xen-syms and config (out/xen-argo); IMAGES the e2e
# images (build/e2e/images) whose /root/testkernel is KERNEL (the smoke
# kernel, for its symbols). DOM0-ARGS replace the default channels, sizes
# and repetitions (bench2_* options of tests/e2e/dom0/bench2.sh).
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: $0 XEN-DIR IMAGES KERNEL PLUGIN OUT [DOM0-ARGS...]" >&2; exit 2; }
xendir=$1 images=$2 kernel=$3 plugin=$4 out=$5
shift 5
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
# v4v and argo, 4 KiB and 64 KiB for the per-page slope; two repetitions,
# so that the profiled one (the last) is not the first of its kind.
args=(bench2_chans=v4v:argo bench2_sizes=64:1024:4096:65536 bench2_reps=2)
[ $# -eq 0 ] || args=("$@")

mkdir -p "$out"
run=$(cd "$out" && pwd)/2dom-profile
mkdir -p "$run"
counts=$run/insn-prof.txt
rm -f "$counts"
plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")
rc=0
E2E_LABEL=bench-xen-2dom-profile E2E_MIN_PASS=1 E2E_TIMEOUT=${BENCH2_TIMEOUT:-5400} \
    E2E_XEN_EXTRA=argo=1 E2E_QEMU_EXTRA="-icount shift=0,sleep=off -plugin $plugin,out=$counts" \
    bash "$root/tests/e2e/run.sh" "$xendir/xen.gz" "$images" "$run" \
    e2e_only=bench2 bench2_profile=1 "${args[@]}" >"$run/run.txt" 2>&1 || rc=1
cat "$run/run.txt"
secs=$(sed -n 's/^bench-xen-2dom-profile: .* after \([0-9]*\)s; .*/\1/p' "$run/run.txt")
[ -s "$counts" ] || { echo "bench-xen-2dom-profile: the plugin wrote no counts ($counts)" >&2; exit 1; }
for mode in stream pingpong; do
    python3 "$here/report.py" --two-domains --mode $mode --log "$run/console.log" --counts "$counts" \
        --xen-syms "$xendir/xen-syms" --kernel "$kernel" --config "$xendir/config" \
        ${secs:+--host-seconds "$secs"} --out "$out" >/dev/null || rc=1
done
echo "bench-xen-2dom-profile: see $out/xen-profile-2dom.md and xen-profile-2dom-pingpong.md"
exit $rc
