#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Generates "tools: static_shm in libxenctrl, libxl and xl" (and the V4V
# control tool xen-v4v) from libxl-glue/:
# the new C files are copied as they are (they are also what libxl-glue's
# tests run against the simulator) and libxl-glue/xen/tools-sshm.diff adds
# the hooks in existing files (Makefiles, headers, IDL, libxl_create.c,
# xl_parse.c, xl_cmdtable.c, the xl.cfg(5) and xl(1) man pages).
# Must come after the patches that add XEN_DOMCTL_static_shm to domctl.h.
set -euo pipefail
TREE=$1 ROOT=$2
. "$(dirname "$0")/commit.sh"
G=$ROOT/libxl-glue
for f in tools/libs/ctrl/xc_sshm.c tools/libs/util/libxlu_sshm.c \
         tools/libs/light/libxl_sshm.c tools/xl/xl_sshm.c tools/misc/xen-v4v.c; do
    cp "$G/$f" "$TREE/$f"
    git -C "$TREE" add "$f"
done
git -C "$TREE" apply --index "$G/xen/tools-sshm.diff"
gen_commit "$TREE" <<'MSG'
tools: static_shm in libxenctrl, libxl and xl

Adds the toolstack side of XEN_DOMCTL_static_shm:

- libxenctrl: xc_sshm_{create,attach,detach,unlink,info,list}.
- libxlutil: xlu_sshm_parse_list() for the xl config option
  static_shm = [ "id=..., begin=..., size=..., ..." ], accepting the
  syntax of the 2017-2019 static_shm series (id, begin, size or end,
  offset, prot, role, cache_policy) plus region_size and persistent.
  "role" is accepted with a warning: regions have no owner any more.
  Every entry is checked before the domain is built, and every error
  names the config, the entry, the key and the value.
- libxl: libxl_domain_config gains sshms[]; after the build, before the
  domain runs, every region is attached with create-or-open, which the
  hypervisor does atomically, so racing creates are safe.  On failure the
  attachments made are removed and the create fails with the hypervisor's
  error explained.  Each attachment is then published for the guest, in
  one transaction, read-only under its home directory
  (static_shm/<id>/{begin,size,offset,prot}), so that it can find its
  regions by name; the keys go with the domain.  Destroy needs no step:
  the hypervisor is the only source of truth and detaches dying domains.
- xl: sshm-list and sshm-unlink, and the xl.cfg(5) and xl(1) text.
- xen-v4v: the control domain's V4V statistics and firewall rules
  (info, fw-add, fw-del, fw-list) over libxencall.

Signed-off-by: rust-hv developers <rust-hv@localhost>
MSG
