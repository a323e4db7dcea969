#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `make bench-xen`: boots the Xen of xen-argo.sh (series + CONFIG_ARGO=y)
# with `argo=1` under QEMU -icount, with the test kernel built in bench mode
# (cargo feature `bench`) as PVH dom0, and turns its BENCH lines into
# OUT/xen-results.md, .json and .png (tests/bench/xen_report.py).
#
#   xen-side-by-side.sh XEN KERNEL OUT
#
# -icount shift=0: the guest's virtual clock advances 1 ns per guest
# instruction, so timings count instructions and do not depend on the host's
# load (two runs give the same figures). sleep=off: idle time is skipped.
# One vCPU: icount runs vCPUs round-robin anyway.
# QEMU has 2 GiB; dom0 gets 512 MiB (its paging pool, which holds the p2m tables, is sized from that) and may grow to 1792 MiB, so that
# populate_physmap has room; the sshm regions come from Xen's heap.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 XEN KERNEL OUT" >&2; exit 2; }
xen=$1 kernel=$2 out=$3
timeout=${BENCH_XEN_TIMEOUT:-540}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$out"
work=$out/xen-run
mkdir -p "$work"
case "$xen" in
    *.gz) gunzip -c "$xen" >"$work/xen" ;;
    *) cp "$xen" "$work/xen" ;;
esac
log=$out/xen-console.log
rm -f "$log"

cmdline="loglvl=all guest_loglvl=all console=com1 noreboot dom0-iommu=none dom0=pvh"
cmdline+=" dom0_mem=512M,max:1792M argo=1"
# shellcheck source=../lib/qemu.sh
. "$here/../lib/qemu.sh"
qemu_run "$log" "$timeout" 'Dom0 halted|Dom0 crashed|Dom0 shutdown|Panic on CPU|Reboot in|Rebooting' \
    -M q35 -smp 1 -m 2G -nographic -no-reboot \
    -cpu qemu64,+svm,+npt -icount shift=0,sleep=off \
    -kernel "$work/xen" -initrd "$kernel" -append "$cmdline"
status=$QEMU_STATUS secs=$((QEMU_MS / 1000))
echo "bench-xen: $status after ${secs}s (host time); console log in $log"
grep -E 'smoke: (FATAL|PANIC)|Panic on CPU' "$log" && exit 1
python3 "$here/xen_report.py" --log "$log" --config "$(dirname "$xen")/config" \
    --cmdline "$cmdline" --host-seconds "$secs" --status "$status" --out "$out"
