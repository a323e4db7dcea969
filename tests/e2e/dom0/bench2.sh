# The two-domain benchmark (issue 16 point 3, `make bench-xen-2dom`,
# tests/bench/README.md "Two domains"). Sourced by tests.sh after lib.sh;
# run_bench2 runs only when dom0's command line says e2e_only=bench2,
# never in the default `make e2e`.
#
# Two test-kernel guests (tests/boot, /root/v4v-guest.cfg with 64 MiB):
# `b` (bench2=b) serves, `a` (bench2=a peer=B) drives every measurement,
# prints `bench2: result ...` lines on I/O port 0xE9 (Xen's console, hence
# QEMU's serial log, which tests/bench/xen2_report.py reads) and powers off
# after `bench2: done results=N`.
#
# Under QEMU -icount every instruction dom0 runs while `a` measures lands in
# `a`'s timings: dom0 does not poll meanwhile. It blocks in xenstore-watch
# on @releaseDomain (fired by xenstored when a domain shuts down or dies)
# and looks at `a` only when that fires.
#
# Options on dom0's command line (QEMU's -initrd splits on commas, so lists
# are separated by ':' there and turned into commas for the guest):
#   bench2_chans=v4v:v4vb:argo:vchan  bench2_sizes=64:1024:16384:65536
#   bench2_reps=3  bench2_timeout=SECS (dom0 seconds, i.e. virtual time
#   under -icount, for `a` to finish; default 14400)
#   bench2_profile=1 (a's profile=1: each stream's last repetition is an
#   insn-prof counting window, `make bench-xen-2dom-profile`)
#   bench2_cpus=A:B  pins a and b to physical CPUs A and B (xl's `cpus=`);
#   default `any`: left to credit2, which put a on CPU 0 and b on CPU 1
#   anyway. Pinned 0:1, the figures were the same but vchan's 64 B stream
#   varied by 12% between repetitions (0.04% unpinned).

BENCH2_CFG=/root/v4v-guest.cfg
# 256 KiB rings each way plus the guest's buffers: 64 MiB leaves room.
BENCH2_MEM=64
BENCH2_CHANS=v4v,v4vb,argo,vchan
BENCH2_SIZES=64,1024,16384,65536
BENCH2_REPS=3
BENCH2_TIMEOUT=14400
BENCH2_PROFILE=0
BENCH2_CPUS=any
BENCH2_SNAP=/tmp/bench2-dmesg

# bench2_lines ID: the `bench2: ` lines guest ID printed (as of the last
# snapshot), without the prefix.
bench2_lines() { grep -a "^(d$1) bench2: " "$BENCH2_SNAP" 2>/dev/null | sed "s/^(d$1) bench2: //"; }
bench2_snap() { xl dmesg | sed 's/\r$//' >"$BENCH2_SNAP"; }
# bench2_state NAME: the state column of `xl list` (e.g. "-b----", "---s--"),
# empty if the domain is gone.
bench2_state() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'; }
# bench2_running NAME: NAME exists and has neither shut down nor crashed.
bench2_running() {
    b_st=$(bench2_state "$1")
    [ -n "$b_st" ] && case $b_st in *s* | *c* | *d*) false ;; *) true ;; esac
}

# bench2_busy: dom0's busy time so far in ms, both vCPUs (user, nice,
# system, irq and softirq of /proc/stat, in USER_HZ ticks of 10 ms).
bench2_busy() { awk '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8) * 10 }' /proc/stat; }

# bench2_wait_off NAME SECS: blocks until NAME shuts down, crashes or
# disappears, or SECS pass; returns 1 on the timeout. xenstore-watch fires
# once when it registers, then on each @releaseDomain; -n 2 returns on the
# first real one. The check before each watch closes the race of a
# shutdown before the watch is set up, up to one round of `timeout`.
bench2_wait_off() {
    b_end=$(($(now) + $2))
    while bench2_running "$1"; do
        b_left=$((b_end - $(now)))
        [ $b_left -gt 0 ] || return 1
        [ $b_left -le 600 ] || b_left=600
        timeout "$b_left" xenstore-watch -n 2 @releaseDomain >/dev/null 2>&1
    done
    return 0
}

# bench2_missing ID: the (chan, mode, size) of the asked set for which guest
# ID printed fewer than reps result lines, as "chan/mode/size(got)" words;
# channels it skipped are left out.
bench2_missing() {
    bench2_lines "$1" | awk -v chans="$BENCH2_CHANS" -v sizes="$BENCH2_SIZES" -v reps="$BENCH2_REPS" '
        function kv(k,   i, w) { for (i = 2; i <= NF; i++) { w = $i; if (index(w, k "=") == 1) return substr(w, length(k) + 2) } return "" }
        $1 == "result" { got[kv("chan") "/" kv("mode") "/" kv("size")]++ }
        $1 == "skip" { skip[kv("chan")] = 1 }
        END {
            nc = split(chans, c, ","); ns = split(sizes, s, ",")
            for (i = 1; i <= nc; i++) {
                if (c[i] in skip) continue
                for (m = 1; m <= 2; m++) {
                    mode = m == 1 ? "stream" : "pingpong"
                    # A round trip is one message: no batched ping-pong.
                    if (c[i] == "v4vb" && mode == "pingpong") continue
                    for (j = 1; j <= ns; j++) {
                        k = c[i] "/" mode "/" s[j]
                        if (got[k] + 0 < reps) printf "%s(%d) ", k, got[k] + 0
                    }
                }
            }
        }'
}

run_bench2() {
    for b_a in $(cat /proc/cmdline); do
        case $b_a in
            bench2_chans=*) BENCH2_CHANS=$(echo "${b_a#*=}" | tr ':' ',') ;;
            bench2_sizes=*) BENCH2_SIZES=$(echo "${b_a#*=}" | tr ':' ',') ;;
            bench2_reps=*) BENCH2_REPS=${b_a#*=} ;;
            bench2_timeout=*) BENCH2_TIMEOUT=${b_a#*=} ;;
            bench2_profile=*) BENCH2_PROFILE=${b_a#*=} ;;
            bench2_cpus=*) BENCH2_CPUS=${b_a#*=} ;;
        esac
    done
    b_pin_a= b_pin_b=
    if [ "$BENCH2_CPUS" != any ]; then
        b_pin_a="cpus=\"${BENCH2_CPUS%%:*}\"" b_pin_b="cpus=\"${BENCH2_CPUS#*:}\""
    fi
    log "bench2: chans=$BENCH2_CHANS sizes=$BENCH2_SIZES reps=$BENCH2_REPS timeout=${BENCH2_TIMEOUT}s cpus=$BENCH2_CPUS"
    b_why=
    if ! XL_OUT=/tmp/bench2-b.out xl_create "$BENCH2_CFG" 'name="bench2-b"' "memory=$BENCH2_MEM" $b_pin_b 'extra="bench2=b"'; then
        b_why="xl create of b failed: $(tail -n 2 /tmp/bench2-b.out | tr '\n' ' ')"
    elif ! b_id=$(domid_of bench2-b); then
        b_why="b vanished after xl create"
    elif ! wait_dmesg "$b_id" "bench2: (ready role=b|FATAL)" 120; then
        bench2_snap
        b_why="b (d$b_id) printed no ready line in 120 s: $(bench2_lines "$b_id" | tail -n 2 | tr '\n' '|')"
    else
        bench2_snap
        if bench2_lines "$b_id" | grep -q '^FATAL'; then
            b_why="b (d$b_id): $(bench2_lines "$b_id" | grep '^FATAL' | head -n 1)"
        fi
    fi
    if [ -z "$b_why" ]; then
        b_args="bench2=a peer=$b_id chans=$BENCH2_CHANS sizes=$BENCH2_SIZES reps=$BENCH2_REPS"
        [ "$BENCH2_PROFILE" != 1 ] || b_args="$b_args profile=1"
        log "bench2: b is d$b_id; a: $b_args"
        # Created paused: what xl create does after unpausing a guest
        # (its monitor process, xenstore writes) would land in a's first
        # figures; `xl unpause` has little left to do after its hypercall.
        if ! XL_OUT=/tmp/bench2-a.out xl_create -p "$BENCH2_CFG" 'name="bench2-a"' "memory=$BENCH2_MEM" $b_pin_a "extra=\"$b_args\""; then
            b_why="xl create of a failed: $(tail -n 2 /tmp/bench2-a.out | tr '\n' ' ')"
        elif ! a_id=$(domid_of bench2-a); then
            b_why="a vanished after xl create"
        else
            # Measuring: dom0 stays idle until a is off.
            # The watch is set up before a runs (its first event, at
            # registration, has come when it printed one line); after the
            # unpause dom0 only waits for the second, a's power-off.
            : >/tmp/bench2-watch
            timeout "$BENCH2_TIMEOUT" xenstore-watch -n 2 @releaseDomain >/tmp/bench2-watch 2>&1 &
            b_w=$!
            wait_for 10 test -s /tmp/bench2-watch || log "bench2: xenstore-watch printed nothing in 10 s"
            b_busy0=$(bench2_busy)
            b_t0=$(up)
            if ! xl unpause bench2-a; then
                b_why="xl unpause of a failed"
                kill $b_w 2>/dev/null
            else
                wait $b_w
                # Taken first: what dom0 does from here on is not a's time.
                b_busy=$(($(bench2_busy) - b_busy0))
                b_secs=$(echo "$(up) $b_t0" | awk '{ printf "%.1f", $1 - $2 }')
                # Another domain's event, or the timeout: wait on (or not).
                if bench2_wait_off bench2-a $((BENCH2_TIMEOUT - $(now) + ${b_t0%.*})); then
                    log "bench2: a (d$a_id) off after $b_secs s, state '$(bench2_state bench2-a)'; dom0 busy meanwhile $b_busy ms (both vCPUs, /proc/stat)"
                else
                    b_why="a (d$a_id) still running after ${BENCH2_TIMEOUT} s"
                fi
            fi
            log "bench2: vCPUs (name/cpu/hard affinity): $(xl vcpu-list | awk 'NR > 1 { print $1 "/" $4 "/" $7 }' | tr '\n' ' ')"
            bench2_snap
            bench2_lines "$a_id" | grep '^skip ' | sed 's/^/DOM0 bench2: a /'
            b_fatal=$(bench2_lines "$a_id" | grep '^FATAL' | head -n 1)
            b_bfatal=$(bench2_lines "$b_id" | grep '^FATAL' | head -n 1)
            b_done=$(bench2_lines "$a_id" | grep '^done' | tail -n 1)
            b_miss=$(bench2_missing "$a_id")
            log "bench2: a printed $(bench2_lines "$a_id" | grep -c '^result ') result lines; ${b_done:-no done line}"
            [ -z "$b_fatal" ] || b_why="${b_why:+$b_why; }a: $b_fatal"
            [ -z "$b_bfatal" ] || b_why="${b_why:+$b_why; }b: $b_bfatal"
            [ -n "$b_done" ] || b_why="${b_why:+$b_why; }no 'bench2: done' from a (last: $(bench2_lines "$a_id" | tail -n 1))"
            [ -z "$b_miss" ] || b_why="${b_why:+$b_why; }results missing: $b_miss"
        fi
    fi
    if [ -z "$b_why" ]; then pass bench2-complete; else fail bench2-complete "$b_why"; fi
    for b_n in bench2-a bench2-b; do
        domid_of "$b_n" >/dev/null && xl destroy "$b_n"
    done
    wait_for 20 expect_domains "Domain-0" || log "bench2: left after destroy: $(domains)"
}
