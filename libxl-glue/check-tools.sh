#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Checks the patched tools in DESTDIR (made by build-tools.sh), without a
# hypervisor:
#  - xl's command table has sshm-list and sshm-unlink: `xl` with no
#    subcommand prints the table before it opens a libxl context;
#  - libxenctrl, libxenlight and libxlutil export the new calls;
#  - xen-v4v is installed and rejects a bad argument;
#  - the patched libxlutil parses every config in libxl-glue/examples;
#  - it rejects bad static_shm lists with the exact messages.
#
#   check-tools.sh DESTDIR
set -euo pipefail
DEST=$(cd "${1:?usage: check-tools.sh DESTDIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
XL=$DEST/usr/sbin/xl
export LD_LIBRARY_PATH=$DEST/usr/lib:$DEST/usr/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0
ok() { echo "tools: ok: $*"; passed=$((passed + 1)); }
bad() { echo "tools: FAIL: $*" >&2; failed=$((failed + 1)); }

[ -x "$XL" ] || { echo "tools: FAIL: no $XL (run make tools)" >&2; exit 1; }

# 1. The command table, as `xl` prints it (exit status 1: no subcommand).
"$XL" > "$WORK/xl-help" 2>&1 || true
grep -q '^xl full list of subcommands' "$WORK/xl-help" || bad "xl printed no command table: $(head -3 "$WORK/xl-help")"
for cmd in sshm-list sshm-unlink; do
    line=$(awk -v c="$cmd" '$1 == c' "$WORK/xl-help")
    if [ -n "$line" ]; then
        ok "xl knows $cmd:$(echo "$line" | sed 's/^ *[^ ]* *//; s/^/ /')"
    else
        bad "xl does not know $cmd"
    fi
done

# 2. The libraries export the new calls.
syms() {
    local lib=$DEST/usr/lib/$1.so missing=()
    shift
    # One nm, then grep the file: grep -q on a pipe would SIGPIPE nm.
    nm -D --defined-only "$lib" > "$WORK/nm"
    for s in "$@"; do
        grep -q " T $s@" "$WORK/nm" || missing+=("$s")
    done
    if [ ${#missing[@]} = 0 ]; then
        ok "${lib##*/} exports $*"
    else
        bad "${lib##*/} lacks ${missing[*]}"
    fi
}
syms libxenctrl xc_sshm_create xc_sshm_attach xc_sshm_detach xc_sshm_unlink xc_sshm_info xc_sshm_list
syms libxenlight libxl_sshm_list libxl_sshm_unlink libxl_sshminfo_list_free libxl_static_shm_init libxl_static_shm_dispose
syms libxlutil xlu_sshm_parse xlu_sshm_parse_list

# 2b. xen-v4v (tools/misc) is installed and names a bad argument before it
#     asks the hypervisor anything.
V4V=$DEST/usr/sbin/xen-v4v
if [ -x "$V4V" ]; then
    out=$("$V4V" fw-add src=1 2>&1) && rc=0 || rc=$?
    if [ "$rc" = 2 ] && [ "$out" = "xen-v4v: unknown argument 'src'" ]; then
        ok "xen-v4v rejects fw-add src=1: $out"
    else
        bad "xen-v4v fw-add src=1: exit $rc, '$out'"
    fi
else
    bad "no $V4V"
fi

# 3. The examples, parsed by the installed (patched) libxlutil as xl create
#    does (xl -N create would need a hypervisor).
CHECK=$WORK/sshm-parse-check
cc -std=gnu11 -Wall -Werror -o "$CHECK" "$ROOT/libxl-glue/xen/sshm-parse-check.c" \
    -I"$DEST/usr/include" -L"$DEST/usr/lib" -L"$DEST/usr/lib64" \
    -Wl,-rpath-link,"$DEST/usr/lib" -lxlutil -lxenlight
# The patched library, not one installed on the system.
ldd "$CHECK" > "$WORK/ldd"
grep -q "libxlutil.so.* => $DEST/usr/lib" "$WORK/ldd" || bad "sshm-parse-check does not use $DEST's libxlutil"
for cfg in "$ROOT"/libxl-glue/examples/*.cfg; do
    name=${cfg#"$ROOT"/}
    if "$CHECK" "$cfg" > "$WORK/out" 2> "$WORK/err"; then
        ok "libxlutil parses $name: $(grep -c . "$WORK/out") regions"
    else
        bad "libxlutil rejects $name: $(cat "$WORK/err")"
    fi
done

# 4. Bad lists are rejected, naming the config, the entry, the key and the
#    value (the full table is in libxl-glue/tests/parse.rs).
reject() {
    local name=$1 cfg=$WORK/$1 want=$2
    shift 2
    {
        echo 'static_shm = ['
        printf '    "%s",\n' "$@"
        echo ']'
    } > "$cfg"
    if "$CHECK" "$cfg" > "$WORK/out" 2> "$WORK/err"; then
        bad "libxlutil accepts $name: $*"
    elif grep -q -x -F "$cfg: $want" "$WORK/err"; then
        ok "libxlutil rejects $name: $want"
    else
        bad "libxlutil rejects $name but says: $(head -1 "$WORK/err"), not: $cfg: $want"
    fi
}
reject unaligned.cfg \
    'static_shm[0] "id=a, begin=0x1001, size=0x1000": key "begin" value "0x1001": not a multiple of the page size (4096)' \
    'id=a, begin=0x1001, size=0x1000'
reject overlap.cfg \
    'static_shm[1] "id=b, begin=0x102000, size=0x2000": key "begin" value "0x102000": range 0x102000-0x104000 overlaps static_shm[0] (0x100000-0x103000)' \
    'id=a, begin=0x100000, size=0x3000' 'id=b, begin=0x102000, size=0x2000'

echo "tools: $passed passed, $failed failed"
[ "$failed" = 0 ]
