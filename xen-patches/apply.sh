#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Applies the series to a Xen tree made by fetch-xen.sh (tag 'pristine').
#
#   apply.sh TREE
#
# Each line of xen-patches/series is either a patch file of this folder,
# applied with `git am`, or `@NAME`, a patch generated from files elsewhere in
# the repository by gen/NAME.sh (the public headers, the Rust crates): what
# lands in Xen lives once in this repository.
#
# The series is built in a scratch worktree with fixed dates, so commit ids
# are reproducible, then TREE is moved to it with `git checkout`: only files
# whose content changed are rewritten and an incremental Xen build stays
# incremental.
set -euo pipefail

die() { echo "apply: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 TREE"
TREE=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCRATCH=$TREE.am

git -C "$TREE" rev-parse -q --verify pristine >/dev/null || die "$TREE has no 'pristine' tag (make it with fetch-xen.sh)"

export GIT_COMMITTER_NAME="rust-hv build" GIT_COMMITTER_EMAIL="rust-hv-build@localhost"
export GIT_COMMITTER_DATE="2025-06-01T00:00:00Z" GIT_AUTHOR_DATE="2025-06-01T00:00:00Z"

if [ ! -d "$SCRATCH" ]; then
    git -C "$TREE" worktree prune
    git -C "$TREE" worktree add -q --detach "$SCRATCH" pristine
fi
git -C "$SCRATCH" am --abort >/dev/null 2>&1 || true
git -C "$SCRATCH" checkout -q -f -B rust-hv-series pristine
git -C "$SCRATCH" clean -q -f -d -x

n=0
while read -r entry _; do
    case "$entry" in ""|"#"*) continue ;; esac
    n=$((n + 1))
    if [ "${entry#@}" != "$entry" ]; then
        gen=$HERE/gen/${entry#@}.sh
        [ -x "$gen" ] || die "no generator $gen"
        "$gen" "$SCRATCH" "$ROOT" || die "generator ${entry#@} failed"
    else
        [ -f "$HERE/$entry" ] || die "no patch $entry"
        git -C "$SCRATCH" am -q --keep-cr --committer-date-is-author-date "$HERE/$entry" \
            || die "$entry does not apply (see $SCRATCH)"
    fi
done < "$HERE/series"

git -C "$SCRATCH" config branch.rust-hv-series.description "$(cat "$HERE/cover-letter.txt")"
head=$(git -C "$SCRATCH" rev-parse HEAD)
git -C "$TREE" checkout -q -f --detach "$head"
echo "apply: $n patches, $TREE at $(git -C "$TREE" rev-parse --short HEAD)"
