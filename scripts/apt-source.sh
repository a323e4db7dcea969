#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Downloads a Debian source package (its .dsc and tarballs, nothing
# unpacked or installed) with `apt-get source --download-only`, through a
# private deb-src list derived at run time from the system's own apt
# sources: the system's configuration is untouched and no host name is
# written here.
#
#   apt-source.sh DL-DIR PACKAGE[=VERSION]
#
# The files land in DL-DIR; DL-DIR/apt holds the private lists and logs.
# The callers check what they need against pinned sha256 sums.
set -euo pipefail

die() { echo "apt-source: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 DL-DIR PACKAGE[=VERSION]"
DL=$(mkdir -p "$1" && cd "$1" && pwd)
PKG=$2
apt=$DL/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"

# deb-src lines from the system's deb822 sources (and a legacy
# sources.list if any).
uris=$( { awk '
    function out() {
        if (u == "") return
        n = split(s, a, " ")
        for (i = 1; i <= n; i++) print "deb-src " (k != "" ? "[signed-by=" k "] " : "") u " " a[i] c
        u = ""; k = ""
    }
    /^URIs:/ { u = $2 } /^Signed-By:/ { k = $2 }
    /^Suites:/ { s = ""; for (i = 2; i <= NF; i++) s = s " " $i }
    /^Components:/ { c = ""; for (i = 2; i <= NF; i++) c = c " " $i }
    /^$/ { out() } END { out() }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
  sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list 2>/dev/null || true; } | sort -u)
[ -n "$uris" ] || die "no apt sources found on this system to derive deb-src lines from"
echo "$uris" > "$apt/sources.list"
opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -q)
echo "apt-source: apt-get update (private deb-src list)"
apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; die "apt-get update failed"; }
echo "apt-source: apt-get source --download-only $PKG"
(cd "$DL" && apt-get "${opts[@]}" source --download-only "$PKG") >"$apt/source.log" 2>&1 \
    || { cat "$apt/source.log" >&2; die "apt-get source $PKG failed"; }
