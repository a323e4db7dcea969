# SPDX-License-Identifier: GPL-2.0-only
# The QEMU boot-and-watch loop of the boot tests (tests/boot/run.sh,
# tests/e2e/run.sh, tests/bench/xen-side-by-side.sh), sourced by them.
#
# qemu_run LOG TIMEOUT END_RE QEMU-ARGS...
#   Starts qemu-system-x86_64 with QEMU-ARGS, its console in LOG, and waits
#   until LOG matches the extended regex END_RE, QEMU exits, or TIMEOUT
#   seconds pass; then ends QEMU. When dom0 powers off Xen halts the machine
#   but QEMU keeps running, hence the watch. Sets QEMU_STATUS (ended,
#   qemu-exited or timeout) and QEMU_MS (milliseconds from start to the end
#   being seen).
#   With QEMU_UP_RE and QEMU_UP_SECS set, LOG must also match QEMU_UP_RE
#   within QEMU_UP_SECS seconds (the boot got somewhere), else QEMU is
#   ended with QEMU_STATUS=stalled.
qemu_run() {
    local log=$1 timeout=$2 end_re=$3 start qemu secs up=
    shift 3
    start=$(date +%s%N)
    qemu-system-x86_64 "$@" </dev/null >"$log" 2>&1 &
    qemu=$!
    QEMU_STATUS=timeout
    [ -n "${QEMU_UP_RE:-}" ] || up=y
    while :; do
        if grep -aqE "$end_re" "$log" 2>/dev/null; then QEMU_STATUS=ended; break; fi
        if ! kill -0 "$qemu" 2>/dev/null; then QEMU_STATUS=qemu-exited; break; fi
        secs=$((($(date +%s%N) - start) / 1000000000))
        if [ -z "$up" ]; then
            if grep -aqE "$QEMU_UP_RE" "$log" 2>/dev/null; then
                up=y
            elif [ "$secs" -ge "${QEMU_UP_SECS:-$timeout}" ]; then
                QEMU_STATUS=stalled
                break
            fi
        fi
        [ "$secs" -lt "$timeout" ] || break
        sleep 0.2
    done
    QEMU_MS=$((($(date +%s%N) - start) / 1000000))
    sleep 0.5 # the rest of the last lines
    kill "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
}
