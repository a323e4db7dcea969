#!/usr/bin/env bash
# Installs every system package the project needs, idempotently.
# Run as root (make deps); prints the exact command otherwise.
set -euo pipefail

# Rust for the hypervisor (DESIGN.md section 6), bindgen's libclang, Xen's
# build and tools dependencies, apt-get source, QEMU for the boot test.
PKGS=(
    build-essential dpkg-dev clang libclang-dev
    rustc-web rust-web-src
    flex bison python3-dev pkgconf acpica-tools
    libyajl-dev uuid-dev libncurses-dev zlib1g-dev liblzma-dev libzstd-dev
    libglib2.0-dev libpixman-1-dev
    qemu-system-x86
)

# Parts of the project list further packages in scripts/deps.d/*.txt, one a
# line ('#' starts a comment).
for f in "$(dirname "$0")"/deps.d/*.txt; do
    [ -f "$f" ] || continue
    while read -r p _; do
        case "$p" in ""|"#"*) continue ;; esac
        PKGS+=("$p")
    done < "$f"
done

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PKGS[@]} system packages present"
else
    cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing packages: ${missing[*]}" >&2
        echo "deps: run as root: $cmd" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Host Rust toolchain (rustup's) must have clippy and rustfmt for make test.
if ! command -v cargo >/dev/null 2>&1; then
    echo "deps: cargo not found: the host Rust toolchain (rustup stable) is required" >&2
    exit 1
fi
