/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The v4v_op hypercall: native and compat guests share one entry, as every
 * structure of public/v4v.h has the same layout for both (fixed-size,
 * explicitly padded types).  The Rust component does the work; -ERESTART
 * means "continue with the same arguments".
 *
 * XSM: xsm_v4v_enable() is checked here, on every call, as Argo does.  The
 * register and send checks need the partner and the destination, which
 * only the Rust component reads (once) from guest memory: it makes them
 * through rust_hv_xsm_v4v_register() and rust_hv_xsm_v4v_send() in shim.c.
 * The firewall sub-ops are refused by the Rust component to every domain
 * but the control domain (is_control_domain()), whatever the XSM policy.
 */
#include <xen/hypercall.h>
#include <xen/sched.h>

#include <xsm/xsm.h>

#include "shim.h"

#ifdef CONFIG_COMPAT
#include <compat/v4v.h>

/*
 * 32-bit guests pass the same structures as 64-bit ones: check it, field
 * by field, for every structure of public/v4v.h (all listed in xlat.lst).
 * As in argo.c, a structure nested in others is checked once on its own,
 * then its CHECK_ macro names the native type, so that the checks of the
 * structures containing it compare their fields without defining its
 * checks twice.
 */
CHECK_v4v_addr;
#undef CHECK_v4v_addr
#define CHECK_v4v_addr struct xen_v4v_addr
CHECK_v4v_ring_id;
#undef CHECK_v4v_ring_id
#define CHECK_v4v_ring_id struct xen_v4v_ring_id
CHECK_v4v_ring_data_ent;
#undef CHECK_v4v_ring_data_ent
#define CHECK_v4v_ring_data_ent struct xen_v4v_ring_data_ent
CHECK_v4v_fw_rule;
CHECK_v4v_info;
CHECK_v4v_iov;
CHECK_v4v_msg_hdr;
CHECK_v4v_register_ring;
CHECK_v4v_ring;
CHECK_v4v_ring_data;
CHECK_v4v_ring_info;
CHECK_v4v_send_addr;
#undef CHECK_v4v_send_addr
#define CHECK_v4v_send_addr struct xen_v4v_send_addr
CHECK_v4v_batch_ent;
CHECK_v4v_unregister_ring;
#endif

long do_v4v_op(unsigned int cmd, XEN_GUEST_HANDLE_PARAM(void) arg1,
               XEN_GUEST_HANDLE_PARAM(void) arg2, unsigned long arg3,
               unsigned long arg4)
{
    long rc = xsm_v4v_enable(current->domain);

    if ( rc )
        return rc;

    rc = rust_hv_v4v_op(cmd, (unsigned long)arg1.p, (unsigned long)arg2.p,
                        arg3, arg4);
    if ( rc == -ERESTART )
        rc = hypercall_create_continuation(__HYPERVISOR_v4v_op, "ihhll",
                                           cmd, arg1, arg2, arg3, arg4);

    return rc;
}

#ifdef CONFIG_COMPAT
int compat_v4v_op(unsigned int cmd, XEN_GUEST_HANDLE_PARAM(void) arg1,
                  XEN_GUEST_HANDLE_PARAM(void) arg2, unsigned long arg3,
                  unsigned long arg4)
{
    /* 32-bit guests get 32-bit results, as for the other compat calls. */
    return do_v4v_op(cmd, arg1, arg2, arg3, arg4);
}
#endif

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
