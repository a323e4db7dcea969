# Static shm regions by name in Linux guests (issue 15): what libxl
# publishes in xenstore, the xen_sshm module's /dev/xen-sshm/NAME devices
# (linux/sshm.c) and sshm-map (linux/tools/sshm-map.c). Two Linux guests
# from the example configs: sdw (sshm-producer.cfg: ring0 rw, status rw)
# and sdr (sshm-consumer.cfg: ring0 rw at another address, the second half
# of status read-only). Both run the commands dom0 writes to their console
# (ctl=1, domu/init). Sourced by tests.sh after lib.sh and sshm.sh.

SM=/usr/bin/sshm-map
KO=/lib/modules/xen_sshm.ko

# sd NAME ID CMD: runs CMD in guest NAME (its ctl=1 console loop) and waits
# up to 60 s for it to end; SD_OUT is its output, one line each, "rc=N"
# last. IDs are unique per guest. The console's pty is looked up once per
# guest and the wait only reads the log (xl is slow under TCG).
sd() {
    f=/var/log/xen/console/guest-$1.log
    eval "tty=\${SD_TTY_$1}"
    if [ -z "$tty" ]; then
        tty=$(xenstore-read "/local/domain/$(domid_of "$1")/console/tty")
        eval "SD_TTY_$1=\$tty"
    fi
    printf '%s %s\n' "$2" "$3" >"$tty"
    end=$(($(now) + 60))
    while ! grep -q "^DOMU $1: \[$2\] rc=" "$f" 2>/dev/null && [ "$(now)" -lt "$end" ]; do
        sleep 0.2
    done
    SD_OUT=$(tr -d '\r' <"$f" | sed -n "s/^DOMU $1: \[$2\] //p")
}

# sd_expect CHECK NAME ID CMD WANT: PASS if CMD's output is exactly WANT.
sd_expect() {
    sd "$2" "$3" "$4"
    if [ "$SD_OUT" = "$5" ]; then
        pass "$1"
    else
        fail "$1" "$2 ran '$4': $(echo "$SD_OUT" | tr '\n' '|'), want $(echo "$5" | tr '\n' '|')"
    fi
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

scenario_sshm_dev() {
    log "sshmdev: static shm regions by name in Linux guests (xenstore, xen_sshm, sshm-map)"
    # Both guests boot at once (dom0 and the machine have two CPUs); a
    # triple fault in early boot is retried by with_retry (LINUX_IDS).
    for g in sdw:sshm-producer.cfg sdr:sshm-consumer.cfg; do
        rm -f "/var/log/xen/console/guest-${g%%:*}.log"
        if ! XL_OUT=/tmp/xl-create-${g%%:*}.out xl_create "/root/${g#*:}" "name=\"${g%%:*}\"" \
            'kernel="/root/vmlinux"' 'ramdisk="/root/domu.cpio.gz"' 'on_reboot="destroy"' \
            "extra=\"$KCMD tag=${g%%:*} ctl=1\""; then
            fail sshmdev-guests-boot "${g%%:*}: $(tail -n 3 "/tmp/xl-create-${g%%:*}.out" | tr '\n' ' ')"
            destroy_all
            return
        fi
        LINUX_IDS="$LINUX_IDS $(domid_of "${g%%:*}")"
    done
    t0=$(up)
    for g in sdw sdr; do
        if ! wait_log $g "^DOMU $g: up" 180; then
            fail sshmdev-guests-boot "$g printed nothing in 180 s"
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
    sd_expect sshmdev-module-lists-regions sdr 1 \
        "insmod $KO && $SM list && stat -c '%a %n' /dev/xen-sshm/*" \
        "ring0 size 0x200000 rw begin 0x20000000 offset 0x0
status size 0x8000 ro begin 0x20400000 offset 0x8000
600 /dev/xen-sshm/ring0
400 /dev/xen-sshm/status
rc=0"
    sd_expect sshmdev-module-lists-regions-writer sdw 1 "insmod $KO && $SM list" \
        "ring0 size 0x200000 rw begin 0x10000000 offset 0x0
status size 0x10000 rw begin 0x10200000 offset 0x0
rc=0"

    # One guest writes through its device, the other reads through its own;
    # status: the reader's view starts 0x8000 into the region.
    sd_expect sshmdev-write-through-device sdw 2 \
        "$SM write ring0 0x1000 hello-from-sdw && $SM write status 0x8000 status-from-sdw" \
        "wrote 14 bytes at 0x1000 of ring0
wrote 15 bytes at 0x8000 of status
rc=0"
    sd_expect sshmdev-other-guest-reads sdr 2 "$SM read ring0 0x1000 14" "hello-from-sdw
rc=0"
    sd_expect sshmdev-region-offset sdr 3 "$SM read status 0 15" "status-from-sdw
rc=0"
    sd_expect sshmdev-reply sdr 4 "$SM write ring0 0x2000 reply-from-sdr" "wrote 14 bytes at 0x2000 of ring0
rc=0"
    sd_expect sshmdev-reply-read sdw 3 "$SM read ring0 0x2000 14" "reply-from-sdr
rc=0"

    # A read-only attachment cannot be written through the device: open for
    # writing fails with EACCES (linux/sshm.c), so does a writable mapping
    # or mprotect of a read-only one; the memory is unchanged.
    sd_expect sshmdev-readonly-refused sdr 5 "$SM write status 0 bad; $SM probe status; $SM read status 0 15" \
        "sshm-map: status: Permission denied (EACCES)
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
    sd_expect sshmdev-readonly-unchanged sdw 4 "$SM read status 0x8000 15" "status-from-sdw
rc=0"
    sd_expect sshmdev-readwrite-probe sdr 6 "$SM probe ring0" \
        "open O_RDWR: ok
open O_WRONLY: ok
mmap PROT_WRITE MAP_SHARED: ok
mmap MAP_PRIVATE: EINVAL
mmap PROT_READ MAP_SHARED: ok
mprotect PROT_WRITE: ok
mmap size+1 page: EINVAL
mmap at offset size: EINVAL
rc=0"

    # The guest reads its keys and cannot change, add or remove any;
    # another guest cannot read them.
    sd_expect sshmdev-guest-cannot-change-keys sdr 7 \
        "$SM xs-read static_shm/status/prot; $SM xs-write static_shm/status/prot rw; $SM xs-write static_shm/status/extra 1; $SM xs-rm static_shm/status; $SM xs-write static_shm/mine/begin 0x0; $SM xs-read static_shm/status/prot" \
        "ro
sshm-map: static_shm/status/prot: Permission denied (EACCES)
sshm-map: static_shm/status/extra: Permission denied (EACCES)
sshm-map: static_shm/status: Permission denied (EACCES)
sshm-map: static_shm/mine/begin: Permission denied (EACCES)
ro
rc=0"
    sd_expect sshmdev-other-guest-cannot-read-keys sdw 5 "$SM xs-read /local/domain/$r/static_shm/status/prot" \
        "sshm-map: /local/domain/$r/static_shm/status/prot: Permission denied (EACCES)
rc=1"
    sd_check_keys sshmdev-xenstore-keys-unchanged "$r" "$want_r"

    # Unload while a mapping is held fails; then unload, load again.
    sd_expect sshmdev-module-reload sdr 8 \
        "($SM wait ring0 0x3000 never 3 >/dev/null &); sleep 1; rmmod xen_sshm 2>/dev/null && echo unloaded-while-mapped; sleep 3; rmmod xen_sshm && ls /sys/class/misc | grep -c xen-sshm; insmod $KO && $SM list && $SM read status 0 15" \
        "0
ring0 size 0x200000 rw begin 0x20000000 offset 0x0
status size 0x8000 ro begin 0x20400000 offset 0x8000
status-from-sdw
rc=0"
    for g in sdr sdw; do
        sd_expect "sshmdev-dmesg-clean-$g" $g 9 \
            "echo bad \$(dmesg | grep -cE 'WARNING|BUG:|Oops|Call Trace|xen_sshm: region')" "bad 0
rc=0"
    done

    log "sshmdev: checks in the guests took $(echo "$(up) $t0" | awk '{ printf "%.1f", $1 - $2 }') s"

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
