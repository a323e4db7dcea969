#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `make bench-xen-profile` (issue 16): boots the Xen of xen-argo.sh (series +
# CONFIG_ARGO=y) with `argo=1` under QEMU -icount, as `make bench-xen` does,
# with the bench kernel as PVH dom0, `bench=profile` on its command line
# (its module string), and the insn-prof plugin loaded; then attributes the instructions of each
# marked batch (V4V and Argo sends) to Xen's and the kernel's functions
# (report.py) in OUT/xen-profile.md and .json.
#
#   run.sh XEN-DIR KERNEL PLUGIN OUT
#
# XEN-DIR holds xen.gz, xen-syms (the symbols of the very image booted) and
# config. Same machine and Xen command line as xen-side-by-side.sh, so the
# counts are those of the benchmark's boot.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 XEN-DIR KERNEL PLUGIN OUT" >&2; exit 2; }
xendir=$1 kernel=$2 plugin=$3 out=$4
timeout=${BENCH_XEN_TIMEOUT:-540}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$out"
work=$out/xen-profile-run
mkdir -p "$work"
gunzip -c "$xendir/xen.gz" >"$work/xen"
cp "$xendir/xen-syms" "$work/xen-syms"
cp "$kernel" "$work/kernel"
log=$out/xen-profile-console.log
counts=$work/insn-prof.txt
rm -f "$log" "$counts"
plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")

cmdline="loglvl=all guest_loglvl=all console=com1 noreboot dom0-iommu=none dom0=pvh"
cmdline+=" dom0_mem=512M,max:1792M argo=1"
# shellcheck source=../../lib/qemu.sh
. "$here/../../lib/qemu.sh"
qemu_run "$log" "$timeout" 'Dom0 halted|Dom0 crashed|Dom0 shutdown|Panic on CPU|Reboot in|Rebooting' \
    -M q35 -smp 1 -m 2G -nographic -no-reboot \
    -cpu qemu64,+svm,+npt -icount shift=0,sleep=off \
    -plugin "$plugin,out=$counts" \
    -kernel "$work/xen" -initrd "$work/kernel bench=profile" -append "$cmdline"
status=$QEMU_STATUS secs=$((QEMU_MS / 1000))
echo "bench-xen-profile: $status after ${secs}s (host time); console log in $log"
grep -E 'smoke: (FATAL|PANIC)|Panic on CPU' "$log" && exit 1
[ -s "$counts" ] || { echo "bench-xen-profile: the plugin wrote no counts ($counts)" >&2; exit 1; }
python3 "$here/report.py" --log "$log" --counts "$counts" --xen-syms "$work/xen-syms" \
    --kernel "$work/kernel" --config "$xendir/config" --host-seconds "$secs" --out "$out"
