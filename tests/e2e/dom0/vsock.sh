# AF_VSOCK over V4V between Linux domains (issue 15, linux/README.md).
# Sourced by tests.sh after lib.sh; run_vsock_scenarios runs every check
# and destroys every guest it made. It runs them under with_retry (lib.sh):
# when a check failed and one of the three guests died of the known TCG
# flake (flake_of, in early boot or later), the results are dropped and
# the whole family runs once more with new guests.
#
# Dom0 and three Linux guests (vsock-a, vsock-b, vsock-c, from
# /root/vsock-guest.cfg) load the kernel's vsock modules and
# xen_v4v_vsock. The guests run what dom0 writes to their console
# (domu/init, ctl=1): vs_run sends a command, vs_wait waits for its
# "rc=" line in the guest's console log. A domain's CID is its domid + 2;
# dom0 is CID 2. The tools are vsock-stream (linux/tools) and socat.
#
# VS_SIZE is what each side streams in the throughput checks: 64 MiB,
# about 15 s per pair on an idle host under TCG (4.7 MiB/s each way
# measured), minutes on a loaded one (0.3 MiB/s). vs_size=N on dom0's
# command line (make e2e-release E2E_ARGS="e2e_only=vsock vs_size=N")
# overrides it.

VS_CFG=/root/vsock-guest.cfg
VS_KCMD="console=hvc0 quiet pci=off ctl=1"
# XEN_V4V_VSOCK_PORT in linux/xen_v4v_vsock.c: the V4V port of every
# domain's vsock ring.
VS_V4V_PORT=30323
VS_SIZE=67108864
for v_a in $(cat /proc/cmdline); do case $v_a in vs_size=*) VS_SIZE=${v_a#vs_size=} ;; esac; done
# Seconds the modules may take to load in a guest that has just booted:
# three guests boot at once, and a clean-clone CI run (both e2e runs on
# two host CPUs) passed 60 s for the third one.
VS_LOAD_SECS=300
# Seconds a stream of VS_SIZE may take (under TCG, both ways at once).
VS_STREAM_SECS=600
# connect_timeout_ms: a handshake can take longer than af_vsock's 2 s
# default under TCG on a loaded host (linux/README.md). The kernel's two
# modules stay loaded in dom0 when the family runs a second time.
VS_LOAD='{ [ -d /sys/module/vsock ] || insmod /lib/modules/vsock.ko; } && { [ -d /sys/module/vmw_vsock_virtio_transport_common ] || insmod /lib/modules/vmw_vsock_virtio_transport_common.ko; } && insmod /lib/modules/xen_v4v_vsock.ko connect_timeout_ms=30000 && dmesg | grep "xen_v4v_vsock: dom" | tail -n 1'
VS_GUESTS="vsock-a vsock-b vsock-c"
# Every check, in order: a check that cannot run fails with the reason.
VS_CHECKS="vsock-modules-load vsock-socat-guest-to-guest vsock-socat-guest-to-dom0 vsock-socat-dom0-to-guest
vsock-stream-guest-guest-both-ways vsock-stream-guest-dom0-both-ways vsock-seqpacket-boundaries vsock-latency
vsock-churn-200-nothing-leaked vsock-impersonation-dropped vsock-firewall-refused
vsock-peer-destroyed-mid-stream vsock-module-reload vsock-dmesg-clean vsock-peer-soft-reset vsock-nothing-left"
VS_DONE=""

vs_pass() { VS_DONE="$VS_DONE $1"; pass "$1"; }
vs_fail() { VS_DONE="$VS_DONE $1"; fail "$1" "$2"; }
vs_result() { if [ -z "$2" ]; then vs_pass "$1"; else vs_fail "$1" "$2"; fi; }

# vs_log NAME: guest NAME's console log.
vs_log() { tr -d '\r' <"/var/log/xen/console/guest-$1.log" 2>/dev/null; }
# vs_cid NAME: its CID (domid + 2), as vs_up noted it (`xl domid` takes
# seconds under TCG).
vs_cid() { eval "echo \$VS_CID_$(echo "$1" | tr -d -)"; }
# Under TCG every fork in a PV dom0 costs a tenth of a second or more, time
# the guests do not get: the helpers that run in loops use shell builtins.
# vs_now: sets VS_NOW to whole seconds of uptime.
vs_now() {
    read -r v_now_s _ </proc/uptime
    VS_NOW=${v_now_s%.*}
}
# vs_until SECS FILE REGEX: waits until FILE has a line matching REGEX.
vs_until() {
    vs_now
    v_until_end=$((VS_NOW + $1))
    until grep -qE "$3" "$2" 2>/dev/null; do
        vs_now
        [ "$VS_NOW" -lt "$v_until_end" ] || return 1
        sleep 0.5
    done
}

VS_SEQ=0
# vs_run NAME CMD: starts CMD (a shell command line) in guest NAME; its id
# is in VS_ID.
vs_run() {
    VS_SEQ=$((VS_SEQ + 1))
    VS_ID=c$VS_SEQ
    eval "v_tty=\$VS_TTY_$(echo "$1" | tr -d -)"
    [ -n "$v_tty" ] || {
        log "vsock: $1 has no console"
        return 1
    }
    printf '%s %s\n' "$VS_ID" "$2" >"$v_tty"
}
# vs_wait NAME ID SECS: waits for command ID to end; returns its status
# (124 if it did not end in time).
vs_wait() {
    vs_until "$3" "/var/log/xen/console/guest-$1.log" "^DOMU $1: \[$2\] rc=" || return 124
    return "$(vs_log "$1" | sed -n "s/^DOMU $1: \[$2\] rc=\([0-9]*\)$/\1/p" | tail -n 1)"
}
# vs_listening NAME ID: waits until command ID (a vsock-stream server)
# listens.
vs_listening() { vs_until 30 "/var/log/xen/console/guest-$1.log" "^DOMU $1: \[$2\] listening"; }
# vs_out NAME ID: command ID's output so far.
vs_out() { vs_log "$1" | sed -n "s/^DOMU $1: \[$2\] //p" | grep -v '^rc=[0-9]*$'; }
# vs_do NAME SECS CMD: runs CMD and waits for it; its output in VS_OUT.
vs_do() {
    vs_run "$1" "$3" || return 1
    vs_wait "$1" "$VS_ID" "$2"
    v_rc=$?
    VS_OUT=$(vs_out "$1" "$VS_ID")
    return $v_rc
}
# vs_ends_soon NAME ID WHAT: stream ID of guest NAME must end, with a reset
# or EOF, within 20 s of WHAT (which has just happened to its peer); adds
# to v_err if not. Says how long it took.
vs_ends_soon() {
    read -r v_t0 _ </proc/uptime
    vs_wait "$1" "$2" 20
    v_rc=$?
    read -r v_t1 _ </proc/uptime
    vs_get "$(vs_out "$1" "$2")" recv end
    log "vsock: $1 $(echo "$v_t1 $v_t0" | awk '{ printf "%.1f", $1 - $2 }') s after $3: $(vs_out "$1" "$2" | tr '\n' '|')"
    [ $v_rc != 124 ] || v_err="$v_err $1's stream did not end within 20 s of $3"
    case $VS_V in eof | reset) ;; *) v_err="$v_err $1's stream ended with '$VS_V' after $3" ;; esac
}
# vs_get TEXT WHAT KEY: sets VS_V to KEY's value in TEXT's last line
# starting with "WHAT " ("" if none).
vs_get() {
    v_last="" VS_V=""
    v_ifs=$IFS
    IFS='
'
    for v_line in $1; do
        case $v_line in "$2 "*) v_last=$v_line ;; esac
    done
    IFS=$v_ifs
    for v_w in $v_last; do
        case $v_w in "$3="*) VS_V=${v_w#*=} ;; esac
    done
}
# Oopses and warnings in a kernel log.
VS_BAD='WARNING|Oops|BUG|Call Trace|general protection'

# vs_up NAME ID: waits for guest NAME's (domain ID's) first line; keeps
# its console's pty for vs_run. A guest that died first fails the family's
# first check, and with_retry runs the family again if it was the TCG
# flake.
vs_up() {
    vs_now
    v_upto=$((VS_NOW + GUEST_BOOT_SECS))
    # In slices, so that a guest that died is seen within seconds.
    until vs_until 10 "/var/log/xen/console/guest-$1.log" "^DOMU $1: up"; do
        vs_now
        [ "$VS_NOW" -lt "$v_upto" ] && domid_of "$1" >/dev/null && continue
        if v_flake=$(flake_of "$1" "$2"); then
            log "vsock: $1 (d$2) died of the TCG flake ($v_flake) before its first line"
        else
            log "vsock: $1 (d$2) printed nothing in $GUEST_BOOT_SECS s, or died ($(guest_state "$1"))"
        fi
        return 1
    done
    v_tty=$(xenstore-read "/local/domain/$2/console/tty") || return 1
    eval "VS_TTY_$(echo "$1" | tr -d -)=$v_tty VS_CID_$(echo "$1" | tr -d -)=$(($2 + 2))"
}

# Guests and modules.
vs_setup() {
    log "vsock: dom0 loads the modules, three guests boot"
    v_err=""
    # Created paused, so that each domid is known (LINUX_IDS, for
    # with_retry) before the guest runs and can die of the TCG flake.
    for v_g in $VS_GUESTS; do
        rm -f "/var/log/xen/console/guest-$v_g.log"
        xl create -p "$VS_CFG" "name=\"$v_g\"" "extra=\"$VS_KCMD tag=$v_g\"" >"/tmp/vs-create-$v_g.out" 2>&1 &
    done
    # A first run that with_retry repeats may have left dom0's module.
    [ ! -d /sys/module/xen_v4v_vsock ] || wait_for 15 rmmod xen_v4v_vsock
    v_out=$(sh -c "$VS_LOAD" 2>&1) || v_err="dom0: $v_out"
    log "vsock: dom0: $v_out"
    wait
    v_ids=""
    for v_g in $VS_GUESTS; do
        if v_id=$(domid_of "$v_g"); then
            LINUX_IDS="$LINUX_IDS $v_g:$v_id"
            v_ids="$v_ids $v_g:$v_id"
            xl unpause "$v_g" || v_err="$v_err $v_g: xl unpause failed"
        else
            v_err="$v_err $v_g not created: $(tail -n 2 "/tmp/vs-create-$v_g.out" | tr '\n' ' ')"
        fi
    done
    v_booted=""
    for v_gi in $v_ids; do
        v_g=${v_gi%%:*}
        if vs_up "$v_g" "${v_gi#*:}"; then
            vs_run "$v_g" "$VS_LOAD"
            v_booted="$v_booted $v_g:$VS_ID"
        else
            v_err="$v_err $v_g did not boot: $(tail -n 2 "/tmp/vs-create-$v_g.out" | tr '\n' ' ')"
        fi
    done
    for v_gi in $v_booted; do
        v_g=${v_gi%%:*} v_id=${v_gi#*:}
        if vs_wait "$v_g" "$v_id" "$VS_LOAD_SECS"; then
            log "vsock: $v_g: $(vs_out "$v_g" "$v_id")"
            vs_out "$v_g" "$v_id" | grep -q "is cid $(vs_cid "$v_g");" || v_err="$v_err $v_g: $(vs_out "$v_g" "$v_id")"
        elif [ $? = 124 ]; then
            v_err="$v_err $v_g: no answer in $VS_LOAD_SECS s ($(guest_state "$v_g"))"
        else
            v_err="$v_err $v_g: $(vs_out "$v_g" "$v_id" | tail -n 2)"
        fi
    done
    vs_result vsock-modules-load "$v_err"
    [ -z "$v_err" ]
}

# The README's socat example between two guests, then with dom0 (CID 2,
# the host) both ways. A listener whose stdin ends (here: /dev/null) keeps
# receiving for -t seconds, until the peer's EOF.
vs_socat() {
    log "vsock: socat between guests and with dom0"
    a=$(vs_cid vsock-a) c=$(vs_cid vsock-c)
    # -d -d: socat says "listening on" (on stderr) once it listens.
    vs_run vsock-a 'socat -d -d -t 30 VSOCK-LISTEN:5000 -'
    v_l=$VS_ID
    socat -d -d -t 30 VSOCK-LISTEN:5000 - </dev/null >/tmp/vs-socat.out 2>&1 &
    v_pid=$!
    vs_until 30 /tmp/vs-socat.out "listening on"
    vs_run vsock-c 'echo hello from vsock-c | socat - VSOCK-CONNECT:2:5000'
    v_c=$VS_ID
    vs_until 30 /var/log/xen/console/guest-vsock-a.log "^DOMU vsock-a: \[$v_l\] .*listening on"
    vs_do vsock-b 60 "echo hello from vsock-b | socat - VSOCK-CONNECT:$a:5000"
    v_rc=$?
    vs_wait vsock-a "$v_l" 30
    v_err=""
    [ $v_rc = 0 ] || v_err="connect: rc $v_rc $VS_OUT"
    vs_out vsock-a "$v_l" | grep -q "^hello from vsock-b$" || v_err="$v_err listener got '$(vs_out vsock-a "$v_l")'"
    vs_result vsock-socat-guest-to-guest "$v_err"

    v_err=""
    vs_wait vsock-c "$v_c" 30 || v_err="connect: $(vs_out vsock-c "$v_c")"
    vs_until 20 /tmp/vs-socat.out "^hello from vsock-c" || v_err="$v_err dom0 got '$(cat /tmp/vs-socat.out)'"
    kill $v_pid 2>/dev/null
    vs_result vsock-socat-guest-to-dom0 "$v_err"

    vs_run vsock-c 'socat -d -d -t 30 VSOCK-LISTEN:5001 -'
    v_l=$VS_ID
    vs_until 30 /var/log/xen/console/guest-vsock-c.log "^DOMU vsock-c: \[$v_l\] .*listening on"
    v_err=""
    v_out=$(echo hello from dom0 | socat - "VSOCK-CONNECT:$c:5001" 2>&1) || v_err="connect: $v_out"
    vs_wait vsock-c "$v_l" 30
    vs_out vsock-c "$v_l" | grep -q "^hello from dom0$" || v_err="$v_err listener got '$(vs_out vsock-c "$v_l")'"
    vs_result vsock-socat-dom0-to-guest "$v_err"
}

# vs_check_duplex A_OUT B_OUT PEER_OF_A: both sides of a duplex stream sent
# and received VS_SIZE with equal sums and ended with EOF; A saw B as
# PEER_OF_A. Sets VS_WHY to "" or why not.
vs_check_duplex() {
    VS_WHY=""
    for v_k in bytes sum; do
        vs_get "$1" sent $v_k; v_as=$VS_V
        vs_get "$1" recv $v_k; v_ar=$VS_V
        vs_get "$2" sent $v_k; v_bs=$VS_V
        vs_get "$2" recv $v_k; v_br=$VS_V
        [ -n "$v_as" ] && [ "$v_as" = "$v_br" ] && [ "$v_bs" = "$v_ar" ] ||
            VS_WHY="$VS_WHY $v_k: a sent '$v_as' got '$v_ar', b sent '$v_bs' got '$v_br'"
        [ "$v_k" = sum ] || [ "$v_as.$v_bs" = "$VS_SIZE.$VS_SIZE" ] || VS_WHY="$VS_WHY not $VS_SIZE bytes each way"
    done
    vs_get "$1" recv end; v_ae=$VS_V
    vs_get "$2" recv end
    [ "$v_ae.$VS_V" = eof.eof ] || VS_WHY="$VS_WHY ended with $v_ae and $VS_V, not EOF"
    vs_get "$1" recv peer
    [ "${VS_V%%:*}" = "$3" ] || VS_WHY="$VS_WHY listener saw peer $VS_V, want cid $3"
}

vs_streams() {
    log "vsock: $VS_SIZE bytes each way at once, vsock-a <-> vsock-b and vsock-c <-> dom0"
    a=$(vs_cid vsock-a) b=$(vs_cid vsock-b) c=$(vs_cid vsock-c)
    vs_run vsock-a "vsock-stream duplex-listen 5001 $VS_SIZE"
    v_a=$VS_ID
    vsock-stream duplex-listen 5002 "$VS_SIZE" >/tmp/vs-dom0-duplex.out 2>&1 &
    v_pid=$!
    vs_run vsock-c "sleep 1; vsock-stream duplex 2 5002 $VS_SIZE"
    v_c=$VS_ID
    vs_listening vsock-a "$v_a"
    vs_run vsock-b "vsock-stream duplex $a 5001 $VS_SIZE"
    v_b=$VS_ID
    vs_wait vsock-b "$v_b" "$VS_STREAM_SECS"
    vs_wait vsock-a "$v_a" 30
    v_ao=$(vs_out vsock-a "$v_a") v_bo=$(vs_out vsock-b "$v_b")
    log "vsock: a: $(echo "$v_ao" | tr '\n' '|')"
    log "vsock: b: $(echo "$v_bo" | tr '\n' '|')"
    vs_check_duplex "$v_ao" "$v_bo" "$b"
    vs_result vsock-stream-guest-guest-both-ways "$VS_WHY"
    vs_wait vsock-c "$v_c" "$VS_STREAM_SECS"
    wait $v_pid
    v_do=$(cat /tmp/vs-dom0-duplex.out) v_co=$(vs_out vsock-c "$v_c")
    log "vsock: dom0: $(echo "$v_do" | tr '\n' '|')"
    log "vsock: c: $(echo "$v_co" | tr '\n' '|')"
    vs_check_duplex "$v_do" "$v_co" "$c"
    vs_result vsock-stream-guest-dom0-both-ways "$VS_WHY"
}

# SOCK_SEQPACKET vsock-b -> vsock-a: VS_SEQ_MSGS messages of 1 B to
# 200000 B (several packets each past 64 KiB), sent with MSG_EOR; each recv
# returns exactly one whole message (size, bytes, no MSG_TRUNC, MSG_EOR),
# then EOF; the sums over all messages are equal.
VS_SEQ_MSGS=52
vs_seqpacket() {
    log "vsock: $VS_SEQ_MSGS seqpacket messages vsock-b -> vsock-a"
    a=$(vs_cid vsock-a) b=$(vs_cid vsock-b)
    vs_run vsock-a "vsock-stream seq-listen 5011 $VS_SEQ_MSGS"
    v_l=$VS_ID
    vs_listening vsock-a "$v_l"
    vs_do vsock-b 120 "vsock-stream seq-send $a 5011 $VS_SEQ_MSGS"
    v_rc=$?
    v_bo=$VS_OUT
    vs_wait vsock-a "$v_l" 30
    v_lrc=$?
    v_ao=$(vs_out vsock-a "$v_l")
    log "vsock: a: $(echo "$v_ao" | tr '\n' '|') b: $(echo "$v_bo" | tr '\n' '|')"
    v_err=""
    [ $v_rc = 0 ] && [ $v_lrc = 0 ] || v_err="rc: sender $v_rc, receiver $v_lrc"
    for v_k in msgs bytes sum; do
        vs_get "$v_bo" seqsent $v_k; v_s=$VS_V
        vs_get "$v_ao" seqrecv $v_k
        [ -n "$v_s" ] && [ "$v_s" = "$VS_V" ] || v_err="$v_err $v_k: sent '$v_s' received '$VS_V'"
    done
    vs_get "$v_ao" seqrecv msgs
    [ "$VS_V" = "$VS_SEQ_MSGS" ] || v_err="$v_err $VS_V messages, not $VS_SEQ_MSGS"
    vs_get "$v_ao" seqrecv eor
    [ "$VS_V" = "$VS_SEQ_MSGS" ] || v_err="$v_err MSG_EOR on $VS_V messages"
    vs_get "$v_ao" seqrecv peer
    [ "${VS_V%%:*}" = "$b" ] || v_err="$v_err listener saw peer $VS_V, want cid $b"
    [ -z "$v_err" ] || v_err="$v_err: a: $(echo "$v_ao" | tr '\n' '|') b: $(echo "$v_bo" | tr '\n' '|')"
    vs_result vsock-seqpacket-boundaries "$v_err"
}

# Round trips vsock-b -> vsock-a (an echo server that stays for the churn).
vs_latency() {
    log "vsock: round trips vsock-b -> vsock-a (echo)"
    a=$(vs_cid vsock-a)
    vs_run vsock-a 'vsock-stream echo 5003'
    vs_listening vsock-a "$VS_ID"
    vs_do vsock-b 180 "vsock-stream ping $a 5003 64 50 && vsock-stream ping $a 5003 4096 30 && vsock-stream ping $a 5003 65536 10"
    v_rc=$?
    log "vsock: $(echo "$VS_OUT" | tr '\n' '|')"
    v_n=$(echo "$VS_OUT" | grep -c '^ping size=')
    [ $v_rc = 0 ] && [ "$v_n" = 3 ] && vs_pass vsock-latency || vs_fail vsock-latency "rc $v_rc: $(echo "$VS_OUT" | tr '\n' '|')"
}

# 200 connections from dom0 to vsock-a's echo server: dom0's V4V ring
# count and Xen's free pages (ring pages are pinned) do not move.
vs_churn() {
    log "vsock: 200 connections opened and closed, dom0 -> vsock-a"
    v_err=""
    v_r0=$(v4v_info nr_rings) v_p0=$(freepages)
    v_out=$(vsock-stream churn "$(vs_cid vsock-a)" 5003 200 2>&1) || v_err="churn: $v_out"
    log "vsock: $v_out"
    v_r1=$(v4v_info nr_rings) v_p1=$(freepages)
    [ "$v_r0" = 1 ] && [ "$v_r1" = 1 ] || v_err="$v_err dom0 rings $v_r0 -> $v_r1"
    v_d=$((v_p0 - v_p1))
    # As in v4v.sh: the heap's noise is a few pages; one leaked ring is 64.
    [ $v_d -le 32 ] && [ $v_d -ge -32 ] || v_err="$v_err free pages $v_p0 -> $v_p1"
    log "vsock: dom0 rings $v_r0 -> $v_r1, free pages $v_p0 -> $v_p1"
    vs_result vsock-churn-200-nothing-leaked "$v_err"
}

# vsock-b claims vsock-a's CID (the module's test hook, test_src_cid):
# vsock-c drops the request, and vsock-b's connect times out. Then a dom0
# firewall rule on the vsock ring's V4V port refuses vsock-b -> vsock-c,
# while vsock-a -> vsock-c still works.
vs_impersonation_firewall() {
    log "vsock: vsock-b connects to vsock-c claiming vsock-a's CID"
    a=$(vs_cid vsock-a) c=$(vs_cid vsock-c)
    v_p=/sys/module/xen_v4v_vsock/parameters
    v_err=""
    vs_run vsock-c 'vsock-stream listen 5005 2'
    v_l=$VS_ID
    vs_listening vsock-c "$v_l"
    vs_do vsock-b 60 "echo $a >$v_p/test_src_cid && VSOCK_CONNECT_SECS=3 vsock-stream send $c 5005 1000; echo 0 >$v_p/test_src_cid"
    v_bo=$VS_OUT
    echo "$v_bo" | grep -q "^error connect" || v_err="connect as cid $a: '$v_bo'"
    vs_do vsock-c 30 "cat $v_p/dropped_spoofed"
    [ "${VS_OUT:-0}" -ge 1 ] || v_err="$v_err vsock-c dropped_spoofed=$VS_OUT"
    vs_out vsock-c "$v_l" | grep -q '^recv' && v_err="$v_err the listener accepted: $(vs_out vsock-c "$v_l")"
    log "vsock: b: $v_bo; c: dropped_spoofed=$VS_OUT"
    vs_result vsock-impersonation-dropped "$v_err"

    log "vsock: firewall rule vsock-b -> vsock-c"
    v_err=""
    v_rule="src_domain=$(($(vs_cid vsock-b) - 2)) dst_domain=$((c - 2)) dst_port=$VS_V4V_PORT action=reject"
    # shellcheck disable=SC2086 # the rule's words are the arguments
    v_out=$(xen-v4v fw-add $v_rule 2>&1) || v_err="fw-add: $v_out"
    vs_do vsock-b 60 "vsock-stream send $c 5005 1000"
    v_bo=$VS_OUT
    echo "$v_bo" | grep -q "^error connect.*: Connection reset by peer" || v_err="$v_err vsock-b: '$v_bo'"
    # shellcheck disable=SC2086
    xen-v4v fw-del $v_rule >/dev/null || v_err="$v_err fw-del failed"
    # vsock-a's connection and a second one from vsock-b end the listener.
    vs_do vsock-a 60 "vsock-stream send $c 5005 1000 && vsock-stream send $c 5005 1000" || v_err="$v_err vsock-a: $VS_OUT"
    vs_wait vsock-c "$v_l" 30 || v_err="$v_err listener: $(vs_out vsock-c "$v_l")"
    v_peers=$(vs_out vsock-c "$v_l" | sed -n 's/^recv .* peer=\([0-9]*\):.*/\1/p' | sort -u | tr '\n' ' ')
    [ "$v_peers" = "$a " ] || v_err="$v_err listener's peers: $v_peers"
    log "vsock: b: $v_bo"
    vs_result vsock-firewall-refused "$v_err"
}

# vsock-a and vsock-b stream both ways; vsock-a is destroyed; vsock-b's
# stream ends, and vsock-b then streams with vsock-c.
vs_peer_death() {
    log "vsock: vsock-a destroyed mid-stream"
    a=$(vs_cid vsock-a) b=$(vs_cid vsock-b)
    v_err=""
    vs_run vsock-a 'vsock-stream duplex-listen 5007 1099511627776'
    vs_listening vsock-a "$VS_ID"
    vs_run vsock-b "vsock-stream duplex $a 5007 1099511627776"
    v_b=$VS_ID
    vs_run vsock-b 'vsock-stream listen 5008'
    v_l=$VS_ID
    sleep 3
    vs_out vsock-b "$v_b" | grep -q '^error' && v_err="vsock-b: $(vs_out vsock-b "$v_b")"
    xl destroy vsock-a || v_err="$v_err xl destroy failed"
    vs_ends_soon vsock-b "$v_b" "vsock-a's destruction"
    vs_do vsock-c 60 "vsock-stream send $b 5008 1048576" || v_err="$v_err vsock-c: $VS_OUT"
    vs_get "$VS_OUT" sent sum
    v_cs=$VS_V
    vs_wait vsock-b "$v_l" 30
    vs_get "$(vs_out vsock-b "$v_l")" recv sum
    [ -n "$v_cs" ] && [ "$VS_V" = "$v_cs" ] ||
        v_err="$v_err then c -> b: '$VS_OUT' / '$(vs_out vsock-b "$v_l")'"
    vs_result vsock-peer-destroyed-mid-stream "$v_err"
}

# vsock-c unloads and loads the module twice, with a connection to vsock-b
# each time; an unload while a connection is open is refused (the socket
# holds the module).
vs_reload() {
    log "vsock: module reload in vsock-c"
    b=$(vs_cid vsock-b)
    v_err=""
    vs_run vsock-b 'vsock-stream listen 5009 3'
    v_l=$VS_ID
    vs_listening vsock-b "$v_l"
    vs_run vsock-c "(sleep 10; echo x) | socat -t 5 - VSOCK-CONNECT:$b:5009"
    v_hold=$VS_ID
    vs_until 60 /var/log/xen/console/guest-vsock-b.log "^DOMU vsock-b: \[$v_l\] accepted" ||
        v_err="the held connection was not accepted"
    vs_do vsock-c 30 'rmmod xen_v4v_vsock'
    v_rc=$?
    [ $v_rc != 0 ] && echo "$VS_OUT" | grep -q "can't unload module 'xen_v4v_vsock'" ||
        v_err="$v_err rmmod under a connection: rc $v_rc $VS_OUT"
    vs_wait vsock-c "$v_hold" 60 || v_err="$v_err held connection: $(vs_out vsock-c "$v_hold")"
    # A closed socket lingers until its close handshake ends (af_vsock
    # waits up to 8 s for the peer), holding the module: rmmod is retried.
    vs_do vsock-c 120 "for i in 1 2; do n=0; until rmmod xen_v4v_vsock 2>/dev/null; do n=\$((n + 1)); [ \$n -lt 15 ] || break; sleep 1; done; [ \$n -lt 15 ] && insmod /lib/modules/xen_v4v_vsock.ko connect_timeout_ms=30000 && vsock-stream send $b 5009 100000 || echo round \$i failed; done"
    echo "$VS_OUT" | grep -q 'failed' && v_err="$v_err $(echo "$VS_OUT" | tr '\n' '|')"
    vs_wait vsock-b "$v_l" 30 || v_err="$v_err listener: $(vs_out vsock-b "$v_l" | tail -n 1)"
    v_n=$(vs_out vsock-b "$v_l" | grep -c '^recv .* end=eof')
    [ "$v_n" = 3 ] || v_err="$v_err listener: $(vs_out vsock-b "$v_l" | tr '\n' '|')"
    vs_result vsock-module-reload "$v_err"
}

vs_dmesg_clean() {
    v_err=""
    for v_g in vsock-b vsock-c; do
        vs_do "$v_g" 30 "dmesg | grep -E '$VS_BAD' | head -n 3"
        [ -z "$VS_OUT" ] || v_err="$v_err $v_g: $(echo "$VS_OUT" | tr '\n' '|')"
    done
    v_out=$(dmesg | grep -E "$VS_BAD" | head -n 3)
    [ -z "$v_out" ] || v_err="$v_err dom0: $(echo "$v_out" | tr '\n' '|')"
    vs_result vsock-dmesg-clean "$v_err"
}

# vsock-c asks for a soft reset (what a kernel that kexecs does;
# linux/tools/xen-soft-reset.c) in the middle of a duplex stream with
# vsock-b. It runs with on_soft_reset="preserve" (vsock-guest.cfg), and
# dom0 resets it as libxl does for HVM guests (xen-soft-reset-domain;
# libxl 4.17 refuses a PVH one, see sshm-dev.sh). Until then vsock-c is
# only shut down and its ring stays; the reset drops it, so vsock-b's
# stream ends (reset or EOF) within seconds, as at a death. vsock-c's
# kernel is left without event channels; it is destroyed with the others.
vs_soft_reset() {
    log "vsock: soft reset of vsock-c mid-stream"
    c=$(vs_cid vsock-c)
    v_err=""
    vs_run vsock-c 'vsock-stream listen 5010'
    vs_listening vsock-c "$VS_ID"
    vs_run vsock-b "vsock-stream duplex $c 5010 1099511627776"
    v_b=$VS_ID
    sleep 3
    vs_out vsock-b "$v_b" | grep -q '^error' && v_err="vsock-b: $(vs_out vsock-b "$v_b")"
    vs_run vsock-c "insmod /lib/modules/xen-privcmd.ko unrestricted=1 && xen-soft-reset"
    if vs_until 60 "$(xl_log vsock-c)" "Action for shutdown reason code 5 is preserve"; then
        v_out=$(xen-soft-reset-domain "$((c - 2))" 2>&1) || v_err="$v_err xen-soft-reset-domain: $v_out"
    else
        v_err="$v_err no soft reset request in 60 s: $(grep -v '^$' "$(xl_log vsock-c)" | tail -n 2 | tr '\n' '|')"
    fi
    vs_ends_soon vsock-b "$v_b" "vsock-c's soft reset"
    [ "$(domid_of vsock-c)" = "$((c - 2))" ] || v_err="$v_err vsock-c is not d$((c - 2)) any more"
    vs_result vsock-peer-soft-reset "$v_err"
}

# One run of the family (with_retry may run it twice).
vs_family() {
    log "vsock: scenarios start"
    VS_DONE=""
    v_pages0=$(freepages)
    if vs_setup; then
        vs_socat
        vs_streams
        vs_seqpacket
        vs_latency
        vs_churn
        vs_impersonation_firewall
        vs_peer_death
        vs_reload
        vs_dmesg_clean
        vs_soft_reset
    fi
    for v_g in $(xl list | awk 'NR > 1 && $1 ~ /^vsock-/ { print $1 }'); do xl destroy "$v_g"; done
    v_err=""
    wait_for 10 v4v_no_zombie vsock-none || v_err="domains left: $(xl list | awk 'NR > 1 { print $1 "/" $5 }' | tr '\n' ' ')"
    # Sockets closed last linger until their close handshake ends.
    wait_for 15 rmmod xen_v4v_vsock || v_err="$v_err dom0 rmmod failed"
    v_r=$(v4v_info nr_rings)
    [ "$v_r" = 0 ] || v_err="$v_err dom0 nr_rings=$v_r after rmmod"
    xen-v4v fw-list | grep -q "^0 rules" || v_err="$v_err firewall rules left"
    v_pages1=$(freepages)
    v_d=$((v_pages0 - v_pages1))
    [ $v_d -le 64 ] && [ $v_d -ge -64 ] || v_err="$v_err free pages $v_pages0 before, $v_pages1 after"
    log "vsock: free pages $v_pages0 -> $v_pages1"
    vs_result vsock-nothing-left "$v_err"
    for v_c in $VS_CHECKS; do
        case " $VS_DONE " in *" $v_c "*) ;; *) fail "$v_c" "did not run" ;; esac
    done
    log "vsock: scenarios end"
}

run_vsock_scenarios() {
    vs_now
    v_family_t0=$VS_NOW
    with_retry vsock vs_family
    vs_now
    log "vsock: the family took $((VS_NOW - v_family_t0)) s"
}
