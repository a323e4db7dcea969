/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Test stand-in for tools/libs/ctrl/xc_private.h, like tools/tests/vpci's
 * emul.h: the same names, with do_domctl() and the hypercall bounce buffers
 * going to the simulator (src/fake_xc.rs) instead of privcmd.  Hypercall
 * buffer addresses are guest physical addresses in the simulated control
 * domain.
 */
#ifndef GLUE_SHIM_XC_PRIVATE_H
#define GLUE_SHIM_XC_PRIVATE_H

#include "libxl_osdeps.h"
#include "domctl.h"       /* hypercall-abi/tests/c: envelope + sshm.h */

#define XEN_DOMCTL_INTERFACE_VERSION 0x00000016
#define XEN_DOMCTL_static_shm        87

#define XC_PAGE_SHIFT 12
#define XC_PAGE_SIZE  (1UL << XC_PAGE_SHIFT)
#define XC_PAGE_MASK  (~(XC_PAGE_SIZE - 1))

typedef struct xc_interface_core {
    unsigned int handle;  /* Index into the fake's table of simulators. */
} xc_interface;

/* Implemented in Rust (src/fake_xc.rs). */
long glue_fake_domctl(unsigned int handle, void *domctl, size_t len);
int glue_fake_bounce_pre(unsigned int handle, const void *ubuf, size_t sz,
                         int dir, uint64_t *gpa);
void glue_fake_bounce_post(unsigned int handle, void *ubuf, size_t sz,
                           int dir, uint64_t gpa);

#define XC_HYPERCALL_BUFFER_BOUNCE_IN   1
#define XC_HYPERCALL_BUFFER_BOUNCE_OUT  2
#define XC_HYPERCALL_BUFFER_BOUNCE_BOTH 3

typedef struct xc_hypercall_buffer {
    void *hbuf;
    void *ubuf;
    size_t sz;
    int dir;
} xc_hypercall_buffer_t;

#define XC__HYPERCALL_BUFFER_NAME(_name) xc__hypercall_buffer_##_name
#define HYPERCALL_BUFFER(_name) (&XC__HYPERCALL_BUFFER_NAME(_name))
#define DECLARE_HYPERCALL_BOUNCE(_ubuf, _sz, _dir)                  \
    xc_hypercall_buffer_t XC__HYPERCALL_BUFFER_NAME(_ubuf) = {      \
        .hbuf = NULL, .ubuf = (_ubuf), .sz = (_sz), .dir = (_dir) }
#define HYPERCALL_BUFFER_AS_ARG(_name) \
    ((unsigned long)HYPERCALL_BUFFER(_name)->hbuf)
#define xc_hypercall_bounce_pre(_xch, _name) \
    xc__hypercall_bounce_pre(_xch, HYPERCALL_BUFFER(_name))
#define xc_hypercall_bounce_post(_xch, _name) \
    xc__hypercall_bounce_post(_xch, HYPERCALL_BUFFER(_name))

static inline int xc__hypercall_bounce_pre(xc_interface *xch,
                                           xc_hypercall_buffer_t *b)
{
    uint64_t gpa;

    if ( glue_fake_bounce_pre(xch->handle, b->ubuf, b->sz, b->dir, &gpa) )
    {
        errno = ENOMEM;
        return -1;
    }
    b->hbuf = (void *)(uintptr_t)gpa;
    return 0;
}

static inline void xc__hypercall_bounce_post(xc_interface *xch,
                                             xc_hypercall_buffer_t *b)
{
    if ( b->hbuf )
        glue_fake_bounce_post(xch->handle, b->ubuf, b->sz, b->dir,
                              (uintptr_t)b->hbuf);
    b->hbuf = NULL;
}

#define DECLARE_DOMCTL struct xen_domctl domctl

static inline int do_domctl(xc_interface *xch, struct xen_domctl *domctl)
{
    long rc;

    domctl->interface_version = XEN_DOMCTL_INTERFACE_VERSION;
    rc = glue_fake_domctl(xch->handle, domctl, sizeof(*domctl));
    if ( rc < 0 )
    {
        errno = -rc;
        return -1;
    }
    return rc;
}

#define ERROR(fmt, ...) fprintf(stderr, "xc: error: " fmt "\n", ##__VA_ARGS__)
#define PERROR(fmt, ...) \
    fprintf(stderr, "xc: error: " fmt ": %s\n", ##__VA_ARGS__, strerror(errno))

#include "glue.h"

#endif
