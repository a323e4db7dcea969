#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The Xen of `make bench-xen`: the series plus Argo (CONFIG_ARGO=y), built in
# its own tree so the `make xen` tree (build/xen) is left alone. The pinned
# source comes from the same download cache (build/xen/dl); fetching,
# applying the series and building are xen-patches/build-xen.sh's.
#
#   xen-argo.sh OUT        -> OUT/xen.gz, OUT/xen-syms, OUT/config
#   XEN_SRC=DIR            start from an existing pristine tree (as make xen)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "${1:?usage: xen-argo.sh OUT}" && cd "$1" && pwd)
B=$ROOT/build/xen-argo
mkdir -p "$B"

# The series' fragment plus Argo (UNSUPPORTED, which the fragment sets).
FRAG=$B/config.fragment
{ cat "$ROOT/xen-patches/config"; echo "CONFIG_ARGO=y"; } > "$FRAG.new"
mv -f "$FRAG.new" "$FRAG"

XEN_BUILD_DIR=$B XEN_CONFIG=$FRAG "$ROOT/xen-patches/build-xen.sh" "$OUT"
grep -q '^CONFIG_ARGO=y' "$OUT/config" || { echo "xen-argo: CONFIG_ARGO did not stick" >&2; exit 1; }
