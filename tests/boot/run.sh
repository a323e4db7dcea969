#!/usr/bin/env bash
# Boots Xen with the test kernel as its PVH dom0 under QEMU (DESIGN.md
# section 7), keeps the Xen console log, and fails unless every scenario
# passed.
#
#   run.sh XEN KERNEL OUTDIR
#
# XEN is Xen's multiboot image (`xen`, or `xen.gz`, which is unpacked: QEMU's
# -kernel wants the uncompressed ELF). When dom0 powers off Xen halts the
# machine but QEMU keeps running, so this watches the console and ends QEMU
# itself, with a hard timeout (SMOKE_TIMEOUT seconds, default 300).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 XEN KERNEL OUTDIR" >&2
    exit 2
fi
xen=$1 kernel=$2 out=$3
timeout=${SMOKE_TIMEOUT:-300}

mkdir -p "$out"
case "$xen" in
    *.gz) gunzip -c "$xen" >"$out/xen" ;;
    *) cp "$xen" "$out/xen" ;;
esac
log=$out/console.log
results=$out/results.txt
rm -f "$log" "$results"

# shellcheck source=../lib/qemu.sh
. "$(dirname "$0")/../lib/qemu.sh"
# Xen's last words, whichever way the run ends.
qemu_run "$log" "$timeout" 'Dom0 halted|Dom0 crashed|Dom0 shutdown|Panic on CPU|Reboot in|Rebooting' \
    -M q35 -smp 2 -m 1G -nographic -no-reboot -cpu qemu64,+svm,+npt \
    -kernel "$out/xen" -initrd "$kernel" \
    -append "loglvl=all guest_loglvl=all console=com1 noreboot dom0-iommu=none dom0=pvh"
status=$QEMU_STATUS elapsed_ms=$QEMU_MS

# Dom0's console lines may carry a "(d0) " prefix depending on the Xen
# build; the results file keeps them without it.
sed -E 's/\r$//; s/^\(d0\) //' "$log" |
    grep -E '^(PASS |FAIL |[0-9]+ passed, [0-9]+ failed$)' >"$results" || true
secs=$(printf '%d.%03d' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)))
echo "smoke: $status after ${secs}s; console log in $log"
grep -E '^FAIL ' "$results" || true
grep -E 'smoke: (FATAL|PANIC)' "$log" || true

summary=$(tail -n 1 "$results" 2>/dev/null || true)
passes=$(grep -c '^PASS ' "$results" || true)
if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    echo "smoke: $summary (boot to power-off ${secs}s)"
    if [ "${BASH_REMATCH[2]}" -eq 0 ] && [ "${BASH_REMATCH[1]}" -gt 0 ] &&
        [ "${BASH_REMATCH[1]}" -eq "$passes" ] && [ "$status" = ended ]; then
        exit 0
    fi
else
    echo "smoke: no summary line from the test kernel" >&2
    tail -n 30 "$log" >&2
fi
exit 1
