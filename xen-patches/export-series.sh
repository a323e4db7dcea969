#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make series: the series as self-contained `git format-patch` files with a
# cover letter (xen-patches/cover-letter.txt) in OUT; they apply with
# `git am` on the pristine Xen tree.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${1:?usage: export-series.sh OUT}
TREE=$ROOT/build/xen/src
[ -d "$TREE/.git" ] || "$HERE/fetch-xen.sh" "$TREE"
"$HERE/apply.sh" "$TREE" >/dev/null
rm -rf "$OUT"
git -C "$TREE.am" format-patch -q --zero-commit --cover-letter \
    --cover-from-description=subject -o "$OUT" pristine..rust-hv-series
echo "series: $(ls "$OUT" | wc -l) files in $OUT"
