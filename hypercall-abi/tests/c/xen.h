/* SPDX-License-Identifier: MIT */
/*
 * Test stand-in for Xen 4.17's public xen.h: just what sshm.h and v4v.h use,
 * with the same definitions as x86_64 Xen (uint64_aligned_t is 8-aligned,
 * domid_t is 16 bits).
 */
#ifndef __XEN_PUBLIC_XEN_H__
#define __XEN_PUBLIC_XEN_H__
#include <stdint.h>
#define xen_mk_uint(x) x##U
#define uint64_aligned_t uint64_t __attribute__((aligned(8)))
typedef uint16_t domid_t;
#define DOMID_INVALID xen_mk_uint(0x7FF4)
#define DEFINE_XEN_GUEST_HANDLE(name) typedef struct { name *p; } __guest_handle_ ## name
#endif
