#!/bin/sh
# The e2e scenario driver, run by dom0's /init on the real host. Each check
# prints one PASS/FAIL line; the summary line ends the run. E2E_ONLY (on
# dom0's kernel command line as e2e_only=sshm|sshmdev|v4v|vsock) runs one family;
# e2e_only=bench2 (make bench-xen-2dom) runs the two-domain benchmark, which
# no other run does.
cd /root || exit 1
. /root/lib.sh
. /root/sshm.sh
[ -f /root/v4v.sh ] && . /root/v4v.sh
# vsock.sh uses v4v.sh's helpers (v4v_info, v4v_no_zombie).
[ -f /root/vsock.sh ] && . /root/vsock.sh
[ -f /root/sshm-dev.sh ] && . /root/sshm-dev.sh
[ -f /root/bench2.sh ] && . /root/bench2.sh
only=
for a in $(cat /proc/cmdline); do case $a in e2e_only=*) only=${a#e2e_only=} ;; esac; done
# The hypervisor's build, from Xen's banner (read now, before the console
# ring fills up).
xen_debug=n
xl dmesg | grep -q '^(XEN) Xen version .* debug=y' && xen_debug=y
log "hypervisor: debug=$xen_debug"

log "xl info: $(xl info | awk '$1 == "virt_caps" || $1 == "free_memory" || $1 == "xen_version"' | tr -s ' ' | tr '\n' ';')"
check host-xl-list-dom0-only expect_domains "Domain-0"
check host-sshm-list-empty test "$(sshm_count)" = 0
[ -z "$only" ] || [ "$only" = sshm ] && run_sshm_scenarios
if [ -z "$only" ] || [ "$only" = sshmdev ]; then
    if command -v run_sshm_dev_scenarios >/dev/null 2>&1; then run_sshm_dev_scenarios; else fail sshmdev-scenarios "tests/e2e/dom0/sshm-dev.sh is missing"; fi
fi
if [ -z "$only" ] || [ "$only" = v4v ]; then
    if command -v run_v4v_scenarios >/dev/null 2>&1; then run_v4v_scenarios; else fail v4v-scenarios "tests/e2e/dom0/v4v.sh is missing"; fi
fi
# vsock runs in the default run on the release hypervisor only: on the
# debug one the family takes several times as long (tests/e2e/README.md),
# more than make test has room for; e2e_only=vsock runs it there too.
if [ -z "$only" ] && [ $xen_debug = y ]; then
    log "vsock: not run on the debug hypervisor unless asked for (e2e_only=vsock)"
elif [ -z "$only" ] || [ "$only" = vsock ]; then
    if command -v run_vsock_scenarios >/dev/null 2>&1; then run_vsock_scenarios; else fail vsock-scenarios "tests/e2e/dom0/vsock.sh is missing"; fi
fi
if [ "$only" = bench2 ]; then
    if command -v run_bench2 >/dev/null 2>&1; then run_bench2; else fail bench2-complete "tests/e2e/dom0/bench2.sh is missing"; fi
fi
check host-all-guests-gone expect_domains "Domain-0"
# Each guest's console and the log of its last `xl create`, for the logs
# on the host (run.sh splits them out).
for f in /var/log/xen/console/guest-*.log; do
    [ -f "$f" ] || continue
    g=${f##*/guest-}; g=${g%.log}
    sed "s/^/GUESTLOG $g: /" "$f"
done
for f in /var/log/xen/xl-*.log; do
    [ -f "$f" ] || continue
    g=${f##*/xl-}; g=${g%.log}
    sed "s/^/XLLOG $g: /" "$f"
done
summary
