# Static shm regions by name in Linux guests (issue 15): what libxl
# publishes in xenstore, the xen_sshm module's /dev/xen-sshm/NAME devices
# (linux/sshm.c) and sshm-map (linux/tools/sshm-map.c). Two Linux guests
# from the example configs: sdw (sshm-producer.cfg: ring0 rw, status rw)
# and sdr (sshm-consumer.cfg: ring0 rw at another address, the second half
# of status read-only). Both run the commands dom0 writes to their console
# (ctl=1, domu/init). Sourced by tests.sh after lib.sh and sshm.sh.

SM=/usr/bin/sshm-map
KO=/lib/modules/xen_sshm.ko
# Kernel log lines that fail the dmesg checks: oopses, warnings, and
# regions xen_sshm skipped.
SD_BAD='WARNING|BUG:|Oops|Call Trace|xen_sshm: region'

# sd_send NAME ID CMD: starts CMD in guest NAME (its ctl=1 console loop
# runs each command in the background, so several may run at once). IDs
# are unique per guest. The console's pty is looked up once per guest.
sd_send() {
    eval "tty=\${SD_TTY_$1}"
    if [ -z "$tty" ]; then
        tty=$(xenstore-read "/local/domain/$(domid_of "$1")/console/tty")
        eval "SD_TTY_$1=\$tty"
    fi
    eval "SD_CMD_$1_$2=\$3"
    printf '%s %s\n' "$2" "$3" >"$tty"
}

# Seconds a command in a guest may take: the module reload check alone
# waits up to 30 s twice in the guest, and a clean-clone CI run (debug
# hypervisor, the release boot beside it) passed 60 s with no output yet.
# A command that ends early ends the wait early.
SD_CMD_SECS=240

# sd_check CHECK NAME ID WANT: waits up to SD_CMD_SECS for command ID of
# guest NAME to end (reading only the log: xl is slow under TCG); PASS if
# its output, one line each with "rc=N" last, is exactly WANT.
sd_check() {
    f=/var/log/xen/console/guest-$2.log
    end=$(($(now) + SD_CMD_SECS))
    while ! grep -q "^DOMU $2: \[$3\] rc=" "$f" 2>/dev/null && [ "$(now)" -lt "$end" ]; do
        sleep 0.2
    done
    out=$(tr -d '\r' <"$f" | sed -n "s/^DOMU $2: \[$3\] //p")
    if [ "$out" = "$4" ]; then
        pass "$1"
    else
        eval "cmd=\${SD_CMD_$2_$3}"
        fail "$1" "$2 ran '$cmd': $(echo "$out" | tr '\n' '|'), want $(echo "$4" | tr '\n' '|')"
    fi
}

# sd_expect CHECK NAME ID CMD WANT: sd_send, then sd_check.
sd_expect() {
    sd_send "$2" "$3" "$4"
    sd_check "$1" "$2" "$3" "$5"
}

# The static_shm keys of domain ID, as xenstore-ls -f -p shows them (single
# spaces), sorted.
sd_keys() {
    xenstore-ls -f -p "/local/domain/$1" | grep "^/local/domain/$1/static_shm" | sed 's/  */ /g' | sort
}

# sd_want_keys ID BEGIN1 BEGIN2 OFFSET2 SIZE2 PROT2: the keys libxl must
# publish for ring0 (0x200000 bytes at BEGIN1, rw) and status.
sd_want_keys() {
    p="(n0,r$1)"
    d=/local/domain/$1/static_shm
    {
        echo "$d = \"\" $p"
        echo "$d/ring0 = \"\" $p"
        echo "$d/ring0/begin = \"$2\" $p"
        echo "$d/ring0/offset = \"0x0\" $p"
        echo "$d/ring0/prot = \"rw\" $p"
        echo "$d/ring0/size = \"0x200000\" $p"
        echo "$d/status = \"\" $p"
        echo "$d/status/begin = \"$3\" $p"
        echo "$d/status/offset = \"$4\" $p"
        echo "$d/status/prot = \"$6\" $p"
        echo "$d/status/size = \"$5\" $p"
    } | sort
}

sd_check_keys() { # CHECK ID WANT
    got=$(sd_keys "$2")
    if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "$(echo "$got" | tr '\n' '|')"; fi
}

# sd_soft_reset W: a soft reset of sdw (domain W), which the guest asks for
# as a kernel that kexecs does (linux/tools/xen-soft-reset.c). libxl 4.17
# resets only HVM guests in place (libxl_domain_soft_reset returns
# ERROR_INVAL for PVH, and xl then destroys the domain), so sdw runs with
# on_soft_reset="preserve" (xl leaves the shut-down domain alone) and dom0
# does what libxl does for HVM: XEN_DOMCTL_soft_reset (xen-soft-reset-domain).
# Xen keeps the regions attached, like RAM: `xl sshm-list` does not change
# and sdr still reads what sdw wrote. libxl's own step for a soft reset
# (keys written again, nothing attached) is shown against the simulator
# (libxl-glue/tests/create.rs). The reset leaves sdw's kernel without event
# channels; it is destroyed next.
sd_soft_reset() {
    list0=$(xl sshm-list)
    sd_send sdw 10 "insmod /lib/modules/xen-privcmd.ko unrestricted=1 && xen-soft-reset"
    if ! wait_for 60 grep -q "Action for shutdown reason code 5 is preserve" "$(xl_log sdw)"; then
        fail sshmdev-soft-reset "no soft reset request in 60 s: $(grep -v '^$' "$(xl_log sdw)" | tail -n 2 | tr '\n' '|')"
        return
    fi
    if out=$(xen-soft-reset-domain "$1" 2>&1) && [ "$(domid_of sdw)" = "$1" ]; then
        pass sshmdev-soft-reset
    else
        fail sshmdev-soft-reset "xen-soft-reset-domain $1: $out; sdw is d$(domid_of sdw)"
        return
    fi
    list1=$(xl sshm-list)
    if [ "$list1" = "$list0" ]; then
        pass sshmdev-soft-reset-keeps-regions
    else
        fail sshmdev-soft-reset-keeps-regions "$(echo "$list1" | tr '\n' '|'), was $(echo "$list0" | tr '\n' '|')"
    fi
    sd_expect sshmdev-soft-reset-region-shared sdr 10 "$SM read ring0 0x1000 14" "hello-from-sdw
rc=0"
}

scenario_sshm_dev() {
    log "sshmdev: static shm regions by name in Linux guests (xenstore, xen_sshm, sshm-map)"
    # Both guests boot at once (dom0 and the machine have two CPUs); a
    # guest that dies of the TCG flake is retried by with_retry (LINUX_IDS).
    for g in sdw:sshm-producer.cfg sdr:sshm-consumer.cfg; do
        rm -f "/var/log/xen/console/guest-${g%%:*}.log"
        if ! XL_OUT=/tmp/xl-create-${g%%:*}.out xl_create "/root/${g#*:}" "name=\"${g%%:*}\"" \
            'kernel="/root/vmlinux"' 'ramdisk="/root/domu.cpio.gz"' 'on_reboot="destroy"' 'on_soft_reset="preserve"' \
            "extra=\"$KCMD tag=${g%%:*} ctl=1\""; then
            fail sshmdev-guests-boot "${g%%:*}: $(tail -n 3 "/tmp/xl-create-${g%%:*}.out" | tr '\n' ' ')"
            destroy_all
            return
        fi
        LINUX_IDS="$LINUX_IDS ${g%%:*}:$(domid_of "${g%%:*}")"
    done
    t0=$(up)
    for g in sdw sdr; do
        if ! why=$(wait_log $g "^DOMU $g: up" "$GUEST_BOOT_SECS"); then
            fail sshmdev-guests-boot "$why"
            destroy_all
            return
        fi
    done
    log "sshmdev: both guests up $(echo "$(up) $t0" | awk '{ printf "%.1f", $1 - $2 }') s after their xl create"
    w=$(domid_of sdw) r=$(domid_of sdr)
    SD_TTY_sdw= SD_TTY_sdr=
    t0=$(up)

    # What libxl published, exactly, with its permissions.
    want_r=$(sd_want_keys "$r" 0x20000000 0x20400000 0x8000 0x8000 ro)
    want_w=$(sd_want_keys "$w" 0x10000000 0x10200000 0x0 0x10000 rw)
    sd_check_keys sshmdev-xenstore-keys-readonly-guest "$r" "$want_r"
    sd_check_keys sshmdev-xenstore-keys-readwrite-guest "$w" "$want_w"

    # The module finds the regions by name, each guest at its own address.
    # Commands that do not depend on each other run at once.
    sd_send sdr 1 "insmod $KO && $SM list && stat -c '%a %n' /dev/xen-sshm/*"
    sd_send sdw 1 "insmod $KO && $SM list"
    sd_check sshmdev-module-lists-regions sdr 1 "ring0 size 0x200000 rw begin 0x20000000 offset 0x0
status size 0x8000 ro begin 0x20400000 offset 0x8000
600 /dev/xen-sshm/ring0
400 /dev/xen-sshm/status
rc=0"
    sd_check sshmdev-module-lists-regions-writer sdw 1 "ring0 size 0x200000 rw begin 0x10000000 offset 0x0
status size 0x10000 rw begin 0x10200000 offset 0x0
rc=0"

    # One guest writes through its device, the other reads through its own;
    # status: the reader's view starts 0x8000 into the region.
    sd_expect sshmdev-write-through-device sdw 2 \
        "$SM write ring0 0x1000 hello-from-sdw && $SM write status 0x8000 status-from-sdw" \
        "wrote 14 bytes at 0x1000 of ring0
wrote 15 bytes at 0x8000 of status
rc=0"
    # A read-only attachment cannot be written through the device: open for
    # writing fails with EACCES (linux/sshm.c), so does a writable mapping
    # or mprotect of a read-only one; the memory is unchanged. The guest
    # reads its keys and cannot change, add or remove any; another guest
    # cannot read them.
    sd_send sdr 2 "$SM read ring0 0x1000 14"
    sd_send sdr 3 "$SM read status 0 15"
    sd_send sdr 4 "$SM write ring0 0x2000 reply-from-sdr"
    sd_send sdr 5 "$SM write status 0 bad; $SM probe status; $SM read status 0 15"
    sd_send sdr 6 "$SM probe ring0"
    sd_send sdr 7 "$SM xs-read static_shm/status/prot; $SM xs-write static_shm/status/prot rw; $SM xs-write static_shm/status/extra 1; $SM xs-rm static_shm/status; $SM xs-write static_shm/mine/begin 0x0; $SM xs-read static_shm/status/prot"
    sd_send sdw 5 "$SM xs-read /local/domain/$r/static_shm/status/prot"
    sd_check sshmdev-other-guest-reads sdr 2 "hello-from-sdw
rc=0"
    sd_check sshmdev-region-offset sdr 3 "status-from-sdw
rc=0"
    sd_check sshmdev-reply sdr 4 "wrote 14 bytes at 0x2000 of ring0
rc=0"

    sd_check sshmdev-readonly-refused sdr 5 "sshm-map: status: Permission denied (EACCES)
open O_RDWR: EACCES
open O_WRONLY: EACCES
mmap PROT_WRITE MAP_SHARED: EACCES
mmap MAP_PRIVATE: EINVAL
mmap PROT_READ MAP_SHARED: ok
mprotect PROT_WRITE: EACCES
mmap size+1 page: EINVAL
mmap at offset size: EINVAL
status-from-sdw
rc=0"
    sd_check sshmdev-readwrite-probe sdr 6 "open O_RDWR: ok
open O_WRONLY: ok
mmap PROT_WRITE MAP_SHARED: ok
mmap MAP_PRIVATE: EINVAL
mmap PROT_READ MAP_SHARED: ok
mprotect PROT_WRITE: ok
mmap size+1 page: EINVAL
mmap at offset size: EINVAL
rc=0"

    sd_check sshmdev-guest-cannot-change-keys sdr 7 "ro
sshm-map: static_shm/status/prot: Permission denied (EACCES)
sshm-map: static_shm/status/extra: Permission denied (EACCES)
sshm-map: static_shm/status: Permission denied (EACCES)
sshm-map: static_shm/mine/begin: Permission denied (EACCES)
ro
rc=0"
    sd_check sshmdev-other-guest-cannot-read-keys sdw 5 "sshm-map: /local/domain/$r/static_shm/status/prot: Permission denied (EACCES)
rc=1"
    sd_check_keys sshmdev-xenstore-keys-unchanged "$r" "$want_r"
    sd_send sdw 3 "$SM read ring0 0x2000 14"
    sd_send sdw 4 "$SM read status 0x8000 15"
    sd_check sshmdev-reply-read sdw 3 "reply-from-sdr
rc=0"
    sd_check sshmdev-readonly-unchanged sdw 4 "status-from-sdw
rc=0"

    # Unload while a mapping is held fails; then unload, load again. The
    # module's refcnt says when the background mapping is held (a fixed
    # sleep was too short on a loaded debug host) and when it is gone.
    sd_send sdw 9 "echo bad \$(dmesg | grep -cE '$SD_BAD')"
    refcnt=/sys/module/xen_sshm/refcnt
    sd_expect sshmdev-module-reload sdr 8 \
        "($SM wait ring0 0x3000 never 3 >/dev/null &); n=0; until [ \$(cat $refcnt) != 0 ] || [ \$n -ge 150 ]; do sleep 0.2; n=\$((n + 1)); done; rmmod xen_sshm 2>/dev/null && echo unloaded-while-mapped; n=0; until [ \$(cat $refcnt) = 0 ] || [ \$n -ge 150 ]; do sleep 0.2; n=\$((n + 1)); done; rmmod xen_sshm && ls /sys/class/misc | grep -c xen-sshm; insmod $KO && $SM list && $SM read status 0 15" \
        "0
ring0 size 0x200000 rw begin 0x20000000 offset 0x0
status size 0x8000 ro begin 0x20400000 offset 0x8000
status-from-sdw
rc=0"
    sd_expect sshmdev-dmesg-clean-sdr sdr 9 "echo bad \$(dmesg | grep -cE '$SD_BAD')" "bad 0
rc=0"
    sd_check sshmdev-dmesg-clean-sdw sdw 9 "bad 0
rc=0"

    log "sshmdev: checks in the guests took $(echo "$(up) $t0" | awk '{ printf "%.1f", $1 - $2 }') s"

    sd_soft_reset "$w"

    # The keys go with the domain.
    xl destroy sdr
    if xenstore-exists "/local/domain/$r" 2>/dev/null; then
        fail sshmdev-keys-gone-with-domain "/local/domain/$r still exists: $(sd_keys "$r" | head -n 2 | tr '\n' '|')"
    else
        pass sshmdev-keys-gone-with-domain
    fi
    xl destroy sdw
    xl sshm-unlink status
    check sshmdev-all-gone expect_domains "Domain-0"
}

run_sshm_dev_scenarios() {
    with_retry sshmdev scenario_sshm_dev
    reset_host
}
