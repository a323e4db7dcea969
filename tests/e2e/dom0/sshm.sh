# Static shared memory on the real host (issue 12, scenarios 1-5). Sourced
# by tests.sh after lib.sh.

LINUX_ARGS='kernel="/root/vmlinux" ramdisk="/root/domu.cpio.gz" on_reboot="destroy"'
# The Linux guests' fixed command line; each adds tag= and its actions.
KCMD="console=hvc0 quiet pci=off"

# linux_example NAME CFG EXTRA: a Linux guest from one of the example
# configs of libxl-glue/examples, with our kernel and initramfs.
linux_example() {
    linux_guest "$1" "/root/$2" 'kernel="/root/vmlinux"' 'ramdisk="/root/domu.cpio.gz"' \
        'on_reboot="destroy"' "extra=\"$KCMD tag=$1 $3\""
}

# expect_row NAME ID WANT: PASS if `xl sshm-list` shows region ID as WANT
# (size in KiB, prot, persistent, state, attach count, domains; "" =
# absent).
expect_row() {
    got=$(sshm_row "$2")
    if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "sshm-list $2: '$got', want '$3'"; fi
}

# expect_domains NAME WANT: PASS if `xl list` shows exactly these domains,
# none of them dying (a zombie shows with the d state flag).
expect_domains() {
    got=$(domains)
    zombies=$(xl list | awk 'NR > 1 && $5 ~ /d/ { print $1 }')
    if [ "$got" = "$1" ] && [ -z "$zombies" ]; then return 0; fi
    echo "xl list: '$got' (zombies: '$zombies'), want '$1'"
    return 1
}

scenario_sharing() {
    log "scenario 1+2: sharing between Linux guests, sshm-list, persistence"
    base_pages=$(freepages) base_mb=$(free_mb)
    # The producer writes ring0 word 0 and the second half of status; the
    # consumer writes ring0 word 1 and tries to write its read-only view
    # of status once it sees the producer's value there.
    if ! linux_example prod sshm-producer.cfg \
        "w=0x10000000:0x11111111,0x10208000:0x5A5A5A5A watch=0x10000004,0x10208000"; then
        fail sharing-producer-boots "$(tail -n 3 /tmp/xl-create.out | tr '\n' ' ')"
        destroy_all
        return
    fi
    if ! linux_example cons sshm-consumer.cfg \
        "w=0x20000004:0x22222222 watch=0x20000000,0x20400000 rotest=0x20400000:0x5A5A5A5A:0x0BAD0BAD"; then
        fail sharing-consumer-boots "$(tail -n 3 /tmp/xl-create.out | tr '\n' ' ')"
        destroy_all
        return
    fi
    p=$(domid_of prod) c=$(domid_of cons)
    check sharing-producer-to-consumer wait_log cons "value 0x11111111 at 0x20000000" 90
    check sharing-consumer-to-producer wait_log prod "value 0x22222222 at 0x10000004" 90
    check sharing-region-offset wait_log cons "value 0x5A5A5A5A at 0x20400000" 90
    if wait_log cons "ro write of 0x0BAD0BAD at 0x20400000" 60; then
        line=$(grep "ro write of" /var/log/xen/console/guest-cons.log | head -n 1 | tr -d '\r')
        log "$line"
        # Xen maps a read-only attachment as p2m_grant_map_ro, one of its
        # discard-write types (P2M_DISCARD_WRITE_TYPES): a store is emulated
        # and dropped, the guest sees no fault. Both outcomes are reported;
        # what must hold is that the memory did not change.
        case $line in
            *"rc 0,"*) log "read-only store completed and was discarded by Xen" ;;
            *) log "read-only store faulted in the guest" ;;
        esac
        sleep 3 # the producer polls its view every second
        if echo "$line" | grep -q "now reads 0x5A5A5A5A" &&
            ! grep -q "value 0x0BAD0BAD" /var/log/xen/console/guest-prod.log; then
            pass readonly-memory-unchanged
        else
            fail readonly-memory-unchanged "$line; producer: $(grep 0x10208000 /var/log/xen/console/guest-prod.log | tail -n 1)"
        fi
    else
        fail readonly-memory-unchanged "the consumer never tried"
    fi
    expect_row sshm-list-two-guests-ring0 ring0 "2048 rw no ready 2 $(ids "$p" "$c")"
    expect_row sshm-list-two-guests-status status "64 rw yes ready 2 $(ids "$p" "$c")"

    # The producer created both regions; destroying it first leaves them
    # to the consumer, and a new writer still reaches it.
    xl destroy prod
    check creator-destroyed-no-zombie expect_domains "Domain-0 cons"
    expect_row sshm-list-after-creator-ring0 ring0 "2048 rw no ready 1 $c"
    if linux_example prod2 sshm-producer.cfg "w=0x10000000:0x33333333"; then
        check region-outlives-creator wait_log cons "value 0x33333333 at 0x20000000" 90
    else
        fail region-outlives-creator "second producer did not boot"
    fi
    xl destroy cons
    xl destroy prod2 2>/dev/null
    check all-guests-gone expect_domains "Domain-0"
    expect_row transient-region-freed ring0 ""
    expect_row persistent-region-outlives-users status "64 rw yes ready 0 -"
    if xl sshm-unlink status; then
        expect_row sshm-unlink-removes status ""
    else
        fail sshm-unlink-removes "xl sshm-unlink status failed"
    fi
    out=$(xl sshm-unlink status 2>&1) && fail sshm-unlink-missing "succeeded: $out" ||
        { echo "$out" | grep -q "status" && pass sshm-unlink-missing || fail sshm-unlink-missing "$out"; }
    # The first cycle of guests may leave a few pages of dom0-side state
    # (event channel buckets, maptrack) that persist; later cycles must
    # return exactly (scenario 3). Here: every page of the regions came back.
    now_pages=$(freepages)
    if [ $((base_pages - now_pages)) -le 16 ] && [ $((base_pages - now_pages)) -ge -16 ]; then
        pass sharing-memory-returned
    else
        fail sharing-memory-returned "free pages $base_pages before, $now_pages after"
    fi
    log "free pages $base_pages -> $now_pages, free_memory $base_mb -> $(free_mb) MB"
}

# tk NAME SHM...: a test-kernel guest with these static_shm entries.
tk() {
    n=$1; shift
    list=""
    for e in "$@"; do list="$list${list:+, }\"$e\""; done
    XL_OUT=/tmp/xl-create-$n.out xl_create /root/tk.cfg "name=\"$n\"" "static_shm=[ $list ]"
}

A1='id=rA, begin=0x40000000, size=0x200000'
B1='id=rB, begin=0x40400000, size=0x10000, persistent=no'

scenario_destroy_orders() {
    log "scenario 3: three guests, two regions, destroyed in all 6 orders"
    # Warm-up: the first guests of a kind make dom0 grow a page or two of
    # state it keeps (event channel buckets, grant maptrack frames of
    # xenstored and xenconsoled); a page seen once, never again. The free
    # page count must then be exact across every order below.
    f=$(freepages)
    tk w1 "$A1" "$B1" && tk w2 "$A1" && tk w3 "$B1"
    xl destroy w1; xl destroy w2; xl destroy w3
    log "warm-up cycle: free pages $f -> $(freepages)"
    for order in "g1 g2 g3" "g1 g3 g2" "g2 g1 g3" "g2 g3 g1" "g3 g1 g2" "g3 g2 g1"; do
        name=destroy-order-$(echo "$order" | tr ' ' '-')
        f0=$(freepages) m0=$(free_mb)
        err=""
        # Created at once (dom0 has two vcpus; xl create is slow under
        # TCG), which also races the regions' create-or-open three ways.
        tk g1 "$A1" "$B1" & p1=$!
        tk g2 "$A1" & p2=$!
        tk g3 "$B1" & p3=$!
        wait $p1 || err="create g1 failed"
        wait $p2 || err="$err create g2 failed"
        wait $p3 || err="$err create g3 failed"
        if [ -z "$err" ]; then
            i1=$(domid_of g1) i2=$(domid_of g2) i3=$(domid_of g3)
            # Created at once, so their ids come in any order.
            [ "$(sshm_row rA)" = "2048 rw no ready 2 $(ids "$i1" "$i2")" ] || err="rA: $(sshm_row rA) (g1 $i1, g2 $i2)"
            [ "$(sshm_row rB)" = "64 rw no ready 2 $(ids "$i1" "$i3")" ] || err="$err rB: $(sshm_row rB) (g1 $i1, g3 $i3)"
        fi
        left="g1 g2 g3"
        for g in $order; do
            [ -n "$err" ] && break
            xl destroy "$g" || { err="xl destroy $g failed"; break; }
            left=$(echo "$left" | tr ' ' '\n' | grep -v "^$g$" | tr '\n' ' ' | sed 's/ $//')
            want="Domain-0${left:+ $left}"
            out=$(expect_domains "$want") || { err="after destroying $g: $out"; break; }
            # Attach counts: rA is held by whichever of g1, g2 remain.
            na=0 nb=0
            for r in $left; do
                case $r in g1) na=$((na + 1)); nb=$((nb + 1)) ;; g2) na=$((na + 1)) ;; g3) nb=$((nb + 1)) ;; esac
            done
            ca=$(sshm_row rA | awk '{ print $5 }') cb=$(sshm_row rB | awk '{ print $5 }')
            [ "${ca:-0}" = "$na" ] || err="after destroying $g: rA attach ${ca:-gone}, want $na"
            [ "${cb:-0}" = "$nb" ] || err="$err after destroying $g: rB attach ${cb:-gone}, want $nb"
        done
        [ -n "$err" ] || [ "$(sshm_count)" = 0 ] || err="regions left: $(xl sshm-list | awk 'NR > 1 { print $1 }' | tr '\n' ' ')"
        f1=$(freepages) m1=$(free_mb)
        [ -n "$err" ] || [ "$f1" = "$f0" ] || err="free pages $f0 before, $f1 after"
        [ -n "$err" ] || [ "$m1" = "$m0" ] || err="xl info free_memory $m0 before, $m1 after"
        if [ -z "$err" ]; then pass "$name"; else fail "$name" "$err"; destroy_all; fi
    done
}

scenario_races() {
    log "scenario 4: racing xl create"
    R='id=race, begin=0x40000000, size=0x200000'
    for round in 1 2 3 4 5; do
        err=""
        f0=$(freepages)
        tk ra "$R" & pa=$!
        tk rb "$R" & pb=$!
        wait $pa || err="xl create ra failed"
        wait $pb || err="$err xl create rb failed"
        ia=$(domid_of ra) ib=$(domid_of rb)
        if [ -z "$err" ]; then
            row=$(sshm_row race)
            [ "$row" = "2048 rw no ready 2 $(ids "$ia" "$ib")" ] || err="sshm-list race: '$row'"
            [ "$(sshm_count)" = 1 ] || err="$err $(sshm_count) regions"
        fi
        xl destroy ra 2>/dev/null
        xl destroy rb 2>/dev/null
        [ "$(sshm_count)" = 0 ] || err="$err region left after both destroyed"
        [ "$(freepages)" = "$f0" ] || err="$err free pages $f0 -> $(freepages)"
        if [ -z "$err" ]; then pass "race-same-region-round-$round"; else fail "race-same-region-round-$round" "$err"; fi
    done

    # Two configs disagreeing on the size, at once: one starts, the other
    # fails naming the region and both sizes, and leaves nothing.
    xl create /root/tk.cfg 'name="sa"' 'static_shm=[ "id=sz, begin=0x40000000, size=0x200000" ]' \
        >/tmp/sa.out 2>&1 & pa=$!
    xl create /root/tk.cfg 'name="sb"' 'static_shm=[ "id=sz, begin=0x40000000, size=0x400000" ]' \
        >/tmp/sb.out 2>&1 & pb=$!
    wait $pa; ra=$?
    wait $pb; rb=$?
    err=""
    if [ $ra -eq 0 ] && [ $rb -ne 0 ]; then won=sa lost=/tmp/sb.out
    elif [ $ra -ne 0 ] && [ $rb -eq 0 ]; then won=sb lost=/tmp/sa.out
    else err="xl create returned $ra and $rb"; fi
    if [ -z "$err" ]; then
        msg=$(grep "id=sz" "$lost" | head -n 1)
        echo "$msg" | grep -q "0x200000" && echo "$msg" | grep -q "0x400000" ||
            err="message does not name both sizes: $(tail -n 3 "$lost" | tr '\n' ' ')"
        out=$(expect_domains "Domain-0 $won") || err="$err $out"
        log "size mismatch: $msg"
    fi
    xl destroy sa 2>/dev/null
    xl destroy sb 2>/dev/null
    [ "$(sshm_count)" = 0 ] || err="$err region left"
    if [ -z "$err" ]; then pass race-size-mismatch-one-starts; else fail race-size-mismatch-one-starts "$err"; fi
}

# bad NAME ENTRIES WANT...: xl create with these static_shm entries must
# fail, print every WANT (the key and value it names), and leave no domain
# and no region.
bad() {
    n=$1 entries=$2; shift 2
    if xl create /root/tk.cfg 'name="bad"' "static_shm=[ $entries ]" >/tmp/bad.out 2>&1; then
        fail "bad-config-$n" "xl create succeeded"
        xl destroy bad 2>/dev/null
        return
    fi
    for w in "$@"; do
        grep -qF -- "$w" /tmp/bad.out || { fail "bad-config-$n" "no '$w' in: $(grep -v '^libxl: error: libxl_domain.c\|^libxl: error: libxl_create.c' /tmp/bad.out | head -n 3 | tr '\n' ' ')"; return; }
    done
    out=$(expect_domains "Domain-0") || { fail "bad-config-$n" "$out"; destroy_all; return; }
    [ "$(sshm_count)" = 0 ] || { fail "bad-config-$n" "a region was left: $(xl sshm-list | tail -n +2)"; return; }
    pass "bad-config-$n"
    log "bad-config-$n: $(grep -m 1 -E 'static_shm|key' /tmp/bad.out)"
}

scenario_bad_configs() {
    log "scenario 5: bad static_shm entries"
    bad overlaps-guest-ram '"id=b, begin=0x100000, size=0x1000"' 'id=b' '0x100000' 'already in use'
    bad begin-unaligned '"id=b, begin=0x40000800, size=0x1000"' 'key "begin" value "0x40000800"'
    bad size-zero '"id=b, begin=0x40000000, size=0"' 'key "size" value "0"'
    bad size-above-hypervisor-cap '"id=b, begin=0x40000000, size=0x80000000"' 'id=b' '0x80000000' "hypervisor's limits"
    bad size-above-interface-cap '"id=b, begin=0x40000000, size=0x200000000"' 'key "size" value "0x200000000"'
    bad unknown-key '"id=b, begin=0x40000000, size=0x1000, colour=blue"' 'key "colour" value "blue"' 'unknown key'
    bad bad-prot '"id=b, begin=0x40000000, size=0x1000, prot=rwx"' 'key "prot" value "rwx"'
    bad name-too-long '"id=a2345678901234567890123456789012, begin=0x40000000, size=0x1000"' \
        'key "id" value "a2345678901234567890123456789012"'
    bad name-bad-character '"id=a-b, begin=0x40000000, size=0x1000"' 'key "id" value "a-b"'
    bad entries-overlap '"id=b, begin=0x40000000, size=0x3000", "id=c, begin=0x40002000, size=0x2000"' \
        'key "begin" value "0x40002000"' 'overlaps'
    bad same-id-twice '"id=b, begin=0x40000000, size=0x1000", "id=b, begin=0x40100000, size=0x1000"' 'key "id" value "b"'
}

# Regions larger than one build step (8 MiB) and one release step (2 MiB):
# libxl's create-or-open, xl sshm-unlink and the kill hook each take several
# bounded steps in the hypervisor (domctl continuations through dom0's
# privcmd), and every page is back when each returns.
scenario_large_region() {
    log "scenario: large regions, three build steps and a 4 KiB tail"
    L='id=rL, begin=0x40000000, size=0x1801000'
    P='id=rP, begin=0x42000000, size=0x1801000, persistent=yes'
    f0=$(freepages)
    err=""
    if tk big "$L" "$P"; then
        [ "$(sshm_row rL)" = "24580 rw no ready 1 $(domid_of big)" ] || err="rL: $(sshm_row rL)"
        [ "$(sshm_row rP)" = "24580 rw yes ready 1 $(domid_of big)" ] || err="$err rP: $(sshm_row rP)"
        f1=$(freepages)
        [ $((f0 - f1)) -ge $((2 * 6145)) ] || err="$err free pages $f0 before, $f1 with both regions"
        xl destroy big || err="$err xl destroy big failed"
        # The transient region went with its only user, its pages back when
        # xl destroy returned; the persistent one stays.
        [ -z "$(sshm_row rL)" ] || err="$err rL left: $(sshm_row rL)"
        [ "$(sshm_row rP)" = "24580 rw yes ready 0 -" ] || err="$err rP: $(sshm_row rP)"
        f2=$(freepages)
        [ $((f2 - f1)) -ge 6145 ] || err="$err free pages $f1 with both regions, $f2 after destroy"
        xl sshm-unlink rP || err="$err xl sshm-unlink rP failed"
        f3=$(freepages)
        [ $((f0 - f3)) -le 16 ] && [ $((f0 - f3)) -ge -16 ] ||
            err="$err free pages $f0 before, $f3 after xl sshm-unlink returned"
        log "large regions: free pages $f0 -> $f1 -> $f2 -> $f3"
    else
        err="xl create failed: $(tail -n 3 /tmp/xl-create-big.out | tr '\n' ' ')"
    fi
    if [ -z "$err" ]; then pass large-region-bounded-steps; else fail large-region-bounded-steps "$err"; destroy_all; fi
}

run_sshm_scenarios() {
    with_retry sharing scenario_sharing
    reset_host
    scenario_destroy_orders
    reset_host
    scenario_large_region
    reset_host
    scenario_races
    reset_host
    scenario_bad_configs
    reset_host
}
