/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What hypercall-abi/include/public/v4v.h expects of Xen's public xen.h
 * ("xen.h" beside it): Linux has its own copy of that header. build.sh
 * copies v4v.h here, so the ABI is written once, in hypercall-abi.
 */
#ifndef XEN_V4V_VSOCK_PUBLIC_XEN_H
#define XEN_V4V_VSOCK_PUBLIC_XEN_H
#include <linux/types.h>
#include <xen/interface/xen.h>
/* Linux spells Xen's DEFINE_XEN_GUEST_HANDLE without XEN_. */
#define DEFINE_XEN_GUEST_HANDLE(name) DEFINE_GUEST_HANDLE(name)
#endif
