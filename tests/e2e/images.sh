#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Assembles what the e2e host boots (tests/e2e/README.md):
#   OUT/vmlinuz         Debian's kernel, the PV dom0
#   OUT/dom0.cpio.gz    dom0's initramfs: busybox, the kernel's Xen modules,
#                       the patched toolstack (out/tools) with its daemons and
#                       the host libraries they need, the scenario scripts
#                       (tests/e2e/dom0), the guest images below
#   both initramfs:     the guest side of linux/ (LINUX/*.ko, LINUX/tools/*,
#                       see linux/README.md) with the kernel's vsock modules
#                       in /lib/modules, and socat with its libraries
#   in dom0's /root:    vmlinux (the same kernel, unpacked: a PVH domU
#                       kernel), domu.cpio.gz (busybox + tests/e2e/domu/init),
#                       testkernel (tests/boot, the Rust test kernel)
#
#   images.sh OUT TOOLS TESTKERNEL LINUX
#
# Debian packages come from the archive with `apt-get download` (no host
# install), cached in build/e2e/debs. The kernel is whatever
# linux-image-amd64 depends on, unless E2E_KERNEL_ABI (e.g. 6.1.0-57-amd64)
# pins one.
set -euo pipefail
die() { echo "e2e-images: error: $*" >&2; exit 1; }
[ $# -eq 4 ] || die "usage: $0 OUT TOOLS TESTKERNEL LINUX"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
TOOLS=$(cd "$2" && pwd)
TESTKERNEL=$3
LINUX=$(cd "$4" && pwd)
[ -f "$TESTKERNEL" ] || die "no test kernel at $TESTKERNEL (make smoke-kernel)"
[ -x "$TOOLS/usr/sbin/xl" ] || die "no xl in $TOOLS (make tools)"
[ -x "$TOOLS/usr/sbin/xenstored" ] || die "no xenstored in $TOOLS (make tools)"
ls "$LINUX"/*.ko >/dev/null 2>&1 || die "no kernel modules in $LINUX (make linux)"
B=$ROOT/build/e2e
DEBS=$B/debs
mkdir -p "$DEBS"

# --- Debian packages -------------------------------------------------------
# shellcheck source=../../scripts/debian-kernel.sh
. "$ROOT/scripts/debian-kernel.sh"
abi=$(debian_kernel_abi)
fetch() { debian_fetch "$@"; }
kdeb=$(fetch "linux-image-$abi")
bdeb=$(fetch busybox-static)
K=$B/kernel-$abi
if [ ! -f "$K/boot/vmlinuz-$abi" ]; then
    rm -rf "$K.tmp" && mkdir -p "$K.tmp"
    dpkg-deb -x "$kdeb" "$K.tmp"
    rm -rf "$K" && mv "$K.tmp" "$K"
fi
BB=$B/busybox
[ -x "$BB/bin/busybox" ] || { rm -rf "$BB" && mkdir -p "$BB" && dpkg-deb -x "$bdeb" "$BB"; }
busybox=$BB/bin/busybox
echo "e2e-images: kernel $abi, $(basename "$bdeb")"

cp "$K/boot/vmlinuz-$abi" "$OUT/vmlinuz"
# The domU kernel: the ELF inside the bzImage (an XZ payload), which xl
# loads without decompressing it in dom0 under TCG (seconds per guest).
if [ ! -f "$B/vmlinux-$abi" ]; then
    python3 - "$K/boot/vmlinuz-$abi" "$B/vmlinux-$abi.tmp" <<'PY'
import lzma, sys
d = open(sys.argv[1], 'rb').read()
at = d.find(b'\xfd7zXZ\x00')
if at < 0:
    sys.exit("no XZ payload in " + sys.argv[1])
open(sys.argv[2], 'wb').write(lzma.LZMADecompressor().decompress(d[at:]))
PY
    mv "$B/vmlinux-$abi.tmp" "$B/vmlinux-$abi"
fi

# --- helpers: busybox applets, host libraries --------------------------------
install_busybox() { # install_busybox ROOTFS
    mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin"
    cp "$busybox" "$1/bin/busybox"
    local a
    for a in $("$busybox" --list); do
        [ "$a" = busybox ] && continue # a link named busybox would replace it
        [ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"
    done
}
copy_libs() { # copy_libs ROOTFS ELF...: the shared libraries they need
    local lib
    for lib in $(ldd "${@:2}" 2>/dev/null | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); do
        case "$lib" in "$1"/*) continue ;; esac # already in the tree
        mkdir -p "$1$(dirname "$lib")"
        cp -L "$lib" "$1$lib"
    done
}
# install_guest_side ROOTFS: what a Linux domain needs to use V4V and static
# shm through linux/: our modules and the kernel's vsock modules they need
# (flat in /lib/modules, loaded with insmod in this order: vsock.ko,
# vmw_vsock_virtio_transport_common.ko, then ours), the tools (with
# xen-privcmd.ko, which xen-soft-reset uses), and socat.
install_guest_side() {
    local m
    mkdir -p "$1/lib/modules" "$1/usr/bin"
    for m in net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common drivers/xen/xen-privcmd; do
        [ -f "$K/lib/modules/$abi/kernel/$m.ko" ] || die "no $m.ko in linux-image-$abi"
        cp "$K/lib/modules/$abi/kernel/$m.ko" "$1/lib/modules/"
    done
    cp "$LINUX"/*.ko "$1/lib/modules/"
    [ -d "$LINUX/tools" ] && cp "$LINUX"/tools/* "$1/usr/bin/"
    local socat
    socat=$(command -v socat) || die "no socat on the host (make deps)"
    cp "$socat" "$1/usr/bin/socat"
    copy_libs "$1" "$1/usr/bin/socat"
    mkdir -p "$1/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$1/lib64/"
}
cpio_gz() { # cpio_gz DIR OUT LEVEL
    (cd "$1" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip "-$3" >"$2.tmp"
    mv "$2.tmp" "$2"
}

# --- dom0 tools built over the patched libraries ------------------------------
H=$B/helpers
mkdir -p "$H"
for c in "$HERE"/dom0/*.c; do
    [ -f "$c" ] || continue
    n=$(basename "$c" .c)
    gcc -O2 -Wall -Wextra -Werror -I "$TOOLS/usr/include" -o "$H/$n" "$c" \
        -L "$TOOLS/usr/lib" -Wl,-rpath-link,"$TOOLS/usr/lib" \
        -lxenctrl -lxencall -lxentoollog || die "building $c failed"
done

# --- domU initramfs ------------------------------------------------------------
R=$B/domu-root
rm -rf "$R" && mkdir -p "$R"/{proc,sys,dev,tmp}
install_busybox "$R"
install -m 755 "$HERE/domu/init" "$R/init"
install_guest_side "$R"
cpio_gz "$R" "$B/domu.cpio.gz" 9

# --- dom0 initramfs ------------------------------------------------------------
R=$B/dom0-root
rm -rf "$R" && mkdir -p "$R"/{proc,sys,dev,tmp,run,root,etc/xen,lib/modules} \
    "$R"/var/{lib/xen,lib/xenstored,log/xen/console,lock}
ln -s ../run "$R/var/run"
install_busybox "$R"
install -m 755 "$HERE/dom0/init" "$R/init"
install_guest_side "$R"
# xen-privcmd.ko is there already (install_guest_side).
for m in drivers/xen/xen-evtchn drivers/xen/xen-gntdev drivers/xen/xen-gntalloc drivers/xen/xenfs/xenfs; do
    ko=$K/lib/modules/$abi/kernel/$m.ko
    [ -f "$ko" ] || die "no $m.ko in linux-image-$abi"
    cp "$ko" "$R/lib/modules/"
done
# The patched toolstack: xl, the daemons xencommons starts, their helpers.
cp -a "$TOOLS/usr" "$R/"
rm -rf "$R/usr/include" "$R/usr/share" "$R/usr/lib/pkgconfig"
find "$R/usr/lib" -name '*.a' -delete
cp "$H"/* "$R/usr/sbin/"
elfs=$(find "$R/usr" -type f -perm -u+x; find "$R/usr/lib" -maxdepth 1 -name '*.so*' -type f)
# shellcheck disable=SC2086 # a list of paths without spaces
LD_LIBRARY_PATH=$R/usr/lib copy_libs "$R" $elfs
mkdir -p "$R/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
# Loaded with dlopen by glibc's pthread_cancel (xl aborts without it), so
# ldd does not list it.
gcc_s=$(gcc -print-file-name=libgcc_s.so.1)
cp -L "$gcc_s" "$R/lib/x86_64-linux-gnu/libgcc_s.so.1"
echo 'autoballoon="off"' >"$R/etc/xen/xl.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$R/etc/group"
# Scenario scripts and guest images.
cp "$HERE"/dom0/*.sh "$HERE"/dom0/*.cfg "$R/root/" 2>/dev/null || true
chmod +x "$R/root/tests.sh"
cp "$ROOT"/libxl-glue/examples/*.cfg "$R/root/"
cp "$B/vmlinux-$abi" "$R/root/vmlinux"
cp "$B/domu.cpio.gz" "$R/root/domu.cpio.gz"
cp "$TESTKERNEL" "$R/root/testkernel"
cpio_gz "$R" "$OUT/dom0.cpio.gz" 1
echo "e2e-images: $OUT/dom0.cpio.gz ($(du -m "$OUT/dom0.cpio.gz" | cut -f1) MB), $OUT/vmlinuz"
