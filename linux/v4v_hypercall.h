/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The V4V hypercall and VIRQ, as the series defines them in Xen's public
 * headers (hypercall-abi/include/public): Linux's copy of xen.h predates
 * them.
 */
#ifndef XEN_V4V_HYPERCALL_H
#define XEN_V4V_HYPERCALL_H

#include <asm/xen/hypercall.h>
#include "xen-public/v4v.h"

#define __HYPERVISOR_v4v_op	43
#define VIRQ_V4V		14

static inline long HYPERVISOR_v4v_op(unsigned int cmd, void *arg1, void *arg2,
				     unsigned long arg3, unsigned long arg4)
{
	return xen_single_call(__HYPERVISOR_v4v_op, cmd, (unsigned long)arg1,
			       (unsigned long)arg2, arg3, arg4);
}

#endif
