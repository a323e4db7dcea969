# SPDX-License-Identifier: GPL-2.0-only
#
# Sourced (bash) by tests/e2e/images.sh and linux/build.sh: which Debian
# kernel the e2e host boots, and fetching Debian packages without
# installing them.
#
#   DEBS=DIR              where .deb files are kept (created)
#   debian_kernel_abi     prints the kernel ABI: E2E_KERNEL_ABI if set (e.g.
#                         6.1.0-57-amd64), else what linux-image-amd64
#                         depends on
#   debian_fetch PACKAGE  downloads PACKAGE into DEBS once; prints the .deb
#
# Both call `die` (the caller's) on failure.

debian_candidate() { apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }'; }

debian_kernel_abi() {
    local c abi
    c=$(debian_candidate linux-image-amd64)
    if [ -z "$c" ] || [ "$c" = "(none)" ]; then
        [ "$(id -u)" -eq 0 ] || die "apt has no linux-image-amd64: run 'apt-get update' as root"
        apt-get update -q >/dev/null
    fi
    abi=${E2E_KERNEL_ABI:-$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { sub(/^linux-image-/, "", $2); print $2; exit }')}
    [ -n "$abi" ] || die "cannot resolve linux-image-amd64's kernel"
    echo "$abi"
}

debian_fetch() {
    local f
    mkdir -p "$DEBS"
    f=$(ls "$DEBS/$1"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$f" ]; then
        (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$1" >/dev/null) || die "apt-get download $1 failed"
        f=$(ls "$DEBS/$1"_*.deb | head -n 1)
    fi
    echo "$f"
}
