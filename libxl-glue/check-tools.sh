#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Checks the patched tools in DESTDIR: xl knows sshm-list and sshm-unlink,
# and the patched libxlutil parses every example config's static_shm.
#
#   check-tools.sh DESTDIR
set -euo pipefail
DEST=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
XL=$DEST/usr/sbin/xl
export LD_LIBRARY_PATH=$DEST/usr/lib:$DEST/usr/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fail=0

for cmd in sshm-list sshm-unlink; do
    # xl cannot run without a hypervisor; its command table is in the binary.
    if grep -q -a -F "$cmd" "$XL"; then
        echo "tools: xl knows $cmd"
    else
        echo "tools: FAIL: xl does not know $cmd" >&2
        fail=1
    fi
done

# The patched libxlutil parses the examples (xl -N create would need Xen).
CHECK=$DEST/../sshm-parse-check
cc -std=gnu11 -Wall -Werror -o "$CHECK" "$ROOT/libxl-glue/xen/sshm-parse-check.c" \
    -I"$DEST/usr/include" -L"$DEST/usr/lib" -L"$DEST/usr/lib64" \
    -Wl,-rpath-link,"$DEST/usr/lib" -lxlutil -lxenlight
if "$CHECK" "$ROOT"/libxl-glue/examples/*.cfg; then
    echo "tools: libxlutil parses libxl-glue/examples"
else
    echo "tools: FAIL: libxlutil rejects libxl-glue/examples" >&2
    fail=1
fi
exit $fail
