# Helpers for the e2e scenario scripts (busybox sh, sourced by tests.sh).
#
# Output contract, read by tests/e2e/run.sh on the host: one line
# `PASS name` or `FAIL name: reason` per check, `RETRY name: reason` for
# each retried guest boot, and `e2e: N passed, M failed` once at the end.

PASSED=0
FAILED=0
RETRIES=0

up() { cut -d' ' -f1 /proc/uptime; }
# Whole seconds of uptime, for deadlines (busybox sh has integers only).
now() { cut -d. -f1 /proc/uptime; }
log() { echo "DOM0 [$(up)] $*"; }
# While BUF names a file, results go there instead (see with_retry).
BUF=
pass() { if [ -n "$BUF" ]; then echo "PASS $1" >>"$BUF"; else PASSED=$((PASSED + 1)); echo "PASS $1"; fi; }
fail() { if [ -n "$BUF" ]; then echo "FAIL $1: $2" >>"$BUF"; else FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; fi; }
# check NAME CMD...: PASS if CMD succeeds, else FAIL with its output.
check() {
    n=$1; shift
    if out=$("$@" 2>&1); then pass "$n"; else fail "$n" "$(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}

# The sorted names of the domains `xl list` shows, one line.
domains() { xl list | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//'; }
# domid_of NAME: prints the domain's id; fails if there is none.
domid_of() { xl domid "$1" 2>/dev/null; }
# Free pages of Xen's heap, exact (XEN_SYSCTL_physinfo).
freepages() { xen-freepages; }
# free_memory in MB as `xl info` reports it.
free_mb() { xl info | awk '$1 == "free_memory" { print $3 }'; }

# sshm_row ID: the `xl sshm-list` row of region ID without its name and
# with single spaces ("2048 rw no ready 2 1,2"), or nothing.
sshm_row() { xl sshm-list | awk -v id="$1" '$1 == id { $1 = ""; sub(/^ /, ""); print }'; }
# ids ID...: the domain ids in ascending order, comma-separated, as the
# Domains column of `xl sshm-list` shows them.
ids() { echo "$@" | tr ' ' '\n' | sort -n | tr '\n' ',' | sed 's/,$//'; }
# sshm_count: the number of regions `xl sshm-list` shows.
sshm_count() { xl sshm-list | awk 'NR > 1' | wc -l; }

# wait_for SECS CMD...: runs CMD every half second until it succeeds or
# SECS of uptime have passed (an uptime deadline: under TCG each fork costs
# about 0.1 s, so counting iterations would not be a time).
wait_for() {
    secs=$1; shift
    end=$(($(now) + secs))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ "$(now)" -ge "$end" ] && return 1
        sleep 0.5
    done
}

# Seconds a Linux guest may take to print its first line. Under TCG, with
# the release and the debug e2e run sharing two host CPUs, guests took 250 s
# and a clean-clone CI run failed one at 180 s; a guest that dies is seen
# within a second (wait_log), so only a slow boot waits this long.
GUEST_BOOT_SECS=600

# console_last NAME: the last non-empty line of guest NAME's console, cut
# to 100 characters.
console_last() {
    tr -d '\r' <"/var/log/xen/console/guest-$1.log" 2>/dev/null | grep -v '^$' | tail -n 1 | cut -c1-100
}

# guest_state NAME: why guest NAME may not have answered, in one line: its
# state and CPU seconds (`xl list`; little CPU means it did not get the
# host's, much means it spun) and its console's last line.
guest_state() {
    gs=$(xl list "$1" 2>/dev/null | awk 'NR == 2 { print "state " $5 ", " $6 " s of CPU" }')
    gl=$(console_last "$1")
    echo "${gs:-gone}; console: ${gl:-nothing}"
}

# xl_log NAME: the log of the `xl create` that stays to watch guest NAME.
xl_log() { echo "/var/log/xen/xl-$1.log"; }

# guest_gone NAME: why guest NAME is gone, in one line: what its xl said
# (a guest that panics shuts down with reason code 3, crash, and xl
# destroys it) and its console's last line.
guest_gone() {
    gx=$(grep -E "has shut down|Action for shutdown" "$(xl_log "$1")" 2>/dev/null | tail -n 2 | tr '\n' ' ')
    gl=$(console_last "$1")
    echo "$1 is gone (xl: ${gx:-nothing}; console: ${gl:-nothing})"
}

# wait_log NAME REGEX SECS: waits until guest NAME's console log (written
# by xenconsoled) matches REGEX; returns 1 after SECS, 2 as soon as the
# domain is gone, each with a line saying why (for check's FAIL).
wait_log() {
    f=/var/log/xen/console/guest-$1.log
    end=$(($(now) + $3))
    while :; do
        grep -qE "$2" "$f" 2>/dev/null && return 0
        if ! domid_of "$1" >/dev/null; then
            grep -qE "$2" "$f" 2>/dev/null && return 0
            guest_gone "$1"
            return 2
        fi
        if [ "$(now)" -ge "$end" ]; then
            echo "$1: nothing matching '$2' in $3 s ($(guest_state "$1"))"
            return 1
        fi
        sleep 0.5
    done
}

# wait_dmesg DOMID REGEX SECS: waits until Xen's console ring (`xl dmesg`)
# has a line `(dDOMID) ...` matching REGEX: what guests print on I/O port
# 0xE9 (Xen's debug console, printed in release builds too).
wait_dmesg() {
    end=$(($(now) + $3))
    while :; do
        xl dmesg | sed 's/\r$//' | grep "^(d$1) " | grep -qE "$2" && return 0
        [ "$(now)" -ge "$end" ] && return 1
        sleep 0.5
    done
}

# dmesg_of DOMID: the lines guest DOMID printed on port 0xE9.
dmesg_of() { xl dmesg | sed 's/\r$//' | grep "^(d$1) " | sed "s/^(d$1) //"; }

# xl_create CFG ARGS...: `xl create` with its output kept in $XL_OUT
# (default /tmp/xl-create.out; also on failure, for the checks that read
# messages). Concurrent callers set XL_OUT each.
xl_create() {
    o=${XL_OUT:-/tmp/xl-create.out}
    t0=$(up)
    xl create "$@" >"$o" 2>&1
    rc=$?
    log "xl create $(echo "$*" | grep -o 'name="[^"]*"' | head -n 1): rc $rc in $(echo "$(up) $t0" | awk '{ printf "%.2f", $1 - $2 }') s"
    [ $rc -eq 0 ] || sed 's/^/    xl: /' "$o"
    return $rc
}

# flake_of NAME ID: prints which signature of the emulation flake guest
# NAME (domain ID) died of, if any (tests/e2e/README.md, "Known
# flakiness"): "triple fault" (Xen's console), or "upcall oops" (its
# console): the event upcall delivered a second time at the first
# instruction of its handler, before the kernel switched to its GS, so the
# handler faults on its per-CPU data until the entry stack's guard page;
# the kernel panics and xl destroys the domain (on_crash).
flake_of() {
    if xl dmesg | grep -qE "d${2}v[0-9]+ Triple fault"; then
        echo "triple fault"
    elif grep -q 'stack guard page was hit' "/var/log/xen/console/guest-$1.log" 2>/dev/null &&
        grep -q 'sysvec_xen_hvm_callback' "/var/log/xen/console/guest-$1.log"; then
        echo "upcall oops"
    else
        return 1
    fi
}

# Linux guests under TCG sometimes die in early boot before their first
# line, with no involvement of our features (flake_of). linux_guest NAME
# CFG [ARGS...] creates the guest (the configs say on_reboot="destroy", so
# Xen's reboot action does not hide a restart) and waits for its first
# line; a guest that died of the flake is created once more, and the retry
# is printed. Any other failure returns 1.
linux_guest() {
    name=$1; cfg=$2; shift 2
    for attempt in 1 2; do
        rm -f "/var/log/xen/console/guest-$name.log"
        xl_create "$cfg" "name=\"$name\"" "$@" || return 1
        id=$(domid_of "$name")
        LINUX_IDS="$LINUX_IDS $name:$id"
        t1=$(up)
        why=$(wait_log "$name" "^DOMU $name: up" "$GUEST_BOOT_SECS")
        case $? in
            0)
                log "guest $name: first line $(echo "$(up) $t1" | awk '{ printf "%.1f", $1 - $2 }') s after xl create returned"
                return 0
                ;;
            1) log "guest $name: $why"; return 1 ;;
        esac
        if [ $attempt = 1 ] && flake=$(flake_of "$name" "$id"); then
            RETRIES=$((RETRIES + 1))
            echo "RETRY $name: d$id died in early boot of the known TCG flake ($flake), created again"
            continue
        fi
        log "guest $name (d$id) died before its first line: $why"
        xl dmesg | grep "d${id}v" | tail -n 5
        return 1
    done
    return 1
}

# with_retry NAME FUNCTION: runs a scenario function of Linux guests with
# its results held back. If a check failed and one of its Linux guests
# (LINUX_IDS, as NAME:ID) died of the TCG flake above (flake_of), the
# results are dropped, a RETRY line says so, and the scenario runs once
# more; the second run's results stand.
LINUX_IDS=
with_retry() {
    # wr_attempt, not attempt: linux_guest, which scenarios call, has its
    # own loop, and busybox sh has no local variables.
    for wr_attempt in 1 2; do
        BUF=/tmp/results.$1
        : >"$BUF"
        LINUX_IDS=
        $2
        BUF=
        faulted=
        for ni in $LINUX_IDS; do
            flake=$(flake_of "${ni%:*}" "${ni##*:}") && faulted="$faulted ${ni%:*} (d${ni##*:}, $flake)"
        done
        if [ $wr_attempt = 1 ] && [ -n "$faulted" ] && grep -q '^FAIL ' "/tmp/results.$1"; then
            RETRIES=$((RETRIES + 1))
            sed 's/^/    dropped: /' "/tmp/results.$1"
            echo "RETRY $1:$faulted died of the known TCG flake, scenario run again"
            reset_host
            continue
        fi
        while read -r r; do
            case $r in PASS*) PASSED=$((PASSED + 1)) ;; FAIL*) FAILED=$((FAILED + 1)) ;; esac
            echo "$r"
        done <"/tmp/results.$1"
        return
    done
}

# destroy_all: destroys every domain but dom0.
destroy_all() {
    for n in $(xl list | awk 'NR > 2 { print $1 }'); do xl destroy "$n" 2>/dev/null; done
}

# reset_host: destroys every guest and unlinks every region, so that one
# failed scenario does not fail the next ones too; says what it removed.
reset_host() {
    left=$(xl list | awk 'NR > 2 { print $1 }' | tr '\n' ' ')
    [ -z "$left" ] || { log "reset: destroying $left"; destroy_all; }
    for r in $(xl sshm-list | awk 'NR > 1 { print $1 }'); do
        log "reset: unlinking region $r"
        xl sshm-unlink "$r"
    done
}

# summary: the closing line.
summary() {
    [ $RETRIES -eq 0 ] || echo "e2e: $RETRIES retried after the TCG flake (see the RETRY lines)"
    echo "e2e: $PASSED passed, $FAILED failed"
}
