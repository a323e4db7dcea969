#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Boots the patched Xen under QEMU (TCG) with Debian's kernel as PV dom0
# and the initramfs from images.sh, whose /init starts the toolstack and
# runs the scenarios (tests/e2e/dom0/tests.sh); keeps the serial log and
# each guest's console; fails unless the run ended with
# `e2e: N passed, 0 failed`, N >= E2E_MIN_PASS, and Xen printed no
# assertion failure, BUG or panic.
#
#   run.sh XEN IMAGES OUTDIR [DOM0-ARGS...]
#
# XEN is xen.gz or xen; IMAGES holds vmlinuz and dom0.cpio.gz. DOM0-ARGS go
# on dom0's kernel command line (e.g. e2e_only=sshm). E2E_TIMEOUT (seconds,
# default 2400) ends a hung run with a clear failure: the four families take
# 15 to 21 minutes on a loaded host, and a family run again after a guest's
# triple fault (with_retry) adds up to 10 (a clean-clone CI run hit 1500 s
# in the vsock family's second run, still progressing).
#
# For the two-domain benchmark (make bench-xen-2dom), both empty by
# default: E2E_XEN_EXTRA is appended to Xen's command line (e.g. argo=1),
# E2E_QEMU_EXTRA (split on spaces) to QEMU's arguments (e.g.
# -icount shift=0,sleep=off).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 XEN IMAGES OUTDIR [DOM0-ARGS...]" >&2; exit 2; }
xen=$1 images=$2 out=$3
shift 3
timeout=${E2E_TIMEOUT:-2400}
min_pass=${E2E_MIN_PASS:-25}
label=${E2E_LABEL:-e2e}

mkdir -p "$out"
case "$xen" in
    *.gz) gunzip -c "$xen" >"$out/xen" ;;
    *) cp "$xen" "$out/xen" ;;
esac
log=$out/console.log
results=$out/results.txt
rm -f "$log" "$results" "$out"/guest-*.log "$out"/xl-*.log "$out/console-stalled.log"

# QEMU's multiboot loader: modules separated by commas, each with its
# command line (a comma inside one would be read as a separator).
dom0_cmd="console=hvc0 earlyprintk=xen $*"
xen_cmd="dom0_mem=512M,max:512M loglvl=all guest_loglvl=all console=com1 noreboot dom0-iommu=none conring_size=1M${E2E_XEN_EXTRA:+ $E2E_XEN_EXTRA}"
# shellcheck disable=SC2206 # split on purpose
qemu_extra=(${E2E_QEMU_EXTRA:-})
# shellcheck source=../lib/qemu.sh
. "$(dirname "$0")/../lib/qemu.sh"
# Dom0 prints END when the scenarios are done; Xen's last words otherwise.
# A boot whose dom0 never gets its toolstack up within E2E_UP_SECS (300)
# is booted once more, said as a RETRY line, its log kept: Debian's dom0
# kernel once stopped for good after "xen:balloon: Initialising balloon
# driver", both vCPUs idle, on the release hypervisor with nothing of the
# series in use yet (tests/e2e/README.md).
QEMU_UP_RE='^DOM0 \[[0-9.]+\] toolstack up' QEMU_UP_SECS=${E2E_UP_SECS:-300}
for boot in 1 2; do
    QEMU_UP_RE=$QEMU_UP_RE QEMU_UP_SECS=$QEMU_UP_SECS qemu_run "$log" "$timeout" \
        '^DOM0 \[[0-9.]+\] END|Panic on CPU|Dom0 crashed|Kernel panic|Hardware Dom0 (halted|shutdown)|Reboot in' \
        -M q35 -cpu qemu64,+svm,+npt -smp 2 -m 1G -nographic -no-reboot \
        -kernel "$out/xen" \
        -initrd "$images/vmlinuz $dom0_cmd,$images/dom0.cpio.gz" \
        -append "$xen_cmd" "${qemu_extra[@]}"
    [ "$QEMU_STATUS" = stalled ] && [ $boot = 1 ] || break
    mv "$log" "$out/console-stalled.log"
    echo "$label: RETRY boot: dom0's toolstack not up within ${QEMU_UP_SECS}s;" \
        "last line: '$(tr -d '\r' <"$out/console-stalled.log" | grep -av '^qemu-system' | tail -n 1)' (log in $out/console-stalled.log)"
done
status=$QEMU_STATUS secs=$((QEMU_MS / 1000))

clean() { tr -d '\r' <"$log"; }
clean | grep -aE '^(PASS |FAIL |RETRY |e2e: [0-9]+ passed, [0-9]+ failed$)' >"$results" || true
# Each guest's console and xl's log of it, which dom0 printed as
# "GUESTLOG name: line" and "XLLOG name: line".
clean | awk '/^(GUEST|XL)LOG [^ ]+: / { f = ($1 == "XLLOG") ? "/xl-" : "/guest-"; n = $2; sub(/:$/, "", n); l = $0; sub(/^[A-Z]+LOG [^ ]+: /, "", l); print l > (dir f n ".log") }' dir="$out"
echo "$label: $status after ${secs}s; serial log in $log"
clean | grep -aE '^DOM0 \[' | grep -E 'toolstack up|END' | sed "s/^/$label: /" || true
grep -E '^(FAIL|RETRY) ' "$results" || true

rc=0
bad=$(clean | grep -aE "Assertion '.*' failed|Xen BUG at|FATAL PAGE FAULT|Panic on CPU|Dom0 crashed|Kernel panic|rust-hv: panic" | head -n 5 || true)
if [ -n "$bad" ]; then
    echo "$label: the console shows a hypervisor or dom0 failure:" >&2
    echo "$bad" >&2
    rc=1
fi
summary=$(grep -E '^e2e: ' "$results" | tail -n 1 || true)
passes=$(grep -c '^PASS ' "$results" || true)
if [[ "$summary" =~ ^e2e:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    echo "$label: ${summary#e2e: } in ${secs}s"
    if [ "${BASH_REMATCH[2]}" -ne 0 ] || [ "${BASH_REMATCH[1]}" -ne "$passes" ] || [ "$status" != ended ]; then
        rc=1
    elif [ "$passes" -lt "$min_pass" ]; then
        echo "$label: only $passes checks passed, at least $min_pass expected" >&2
        rc=1
    fi
else
    echo "$label: no summary line from dom0 ($status)" >&2
    clean | tail -n 40 >&2
    rc=1
fi
exit $rc
