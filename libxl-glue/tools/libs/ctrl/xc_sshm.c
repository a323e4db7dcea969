/* SPDX-License-Identifier: LGPL-2.1-only */
/******************************************************************************
 * xc_sshm.c
 *
 * Wrappers for XEN_DOMCTL_static_shm: owner-less static shared memory
 * regions, named, refcounted by the hypervisor and owned by DOMID_SSHM.
 *
 * Every wrapper returns 0 (or a count) on success and -1 with errno set on
 * failure, like the rest of libxenctrl.  Attach and detach may be preempted
 * by the hypervisor; the continuation is handled inside Xen, so one call
 * here is one complete operation.
 */

#include "xc_private.h"

/* Copies a region name into the NUL-padded field; -1/EINVAL if unusable. */
static int sshm_set_name(xc_interface *xch, char field[XEN_SSHM_NAME_BYTES],
                         const char *name)
{
    size_t len;

    if ( !name )
    {
        errno = EINVAL;
        return -1;
    }

    len = strnlen(name, XEN_SSHM_NAME_BYTES);
    if ( len == 0 || len > XEN_SSHM_NAME_LEN_MAX )
    {
        ERROR("static_shm: bad region name length");
        errno = len ? ENAMETOOLONG : EINVAL;
        return -1;
    }

    memset(field, 0, XEN_SSHM_NAME_BYTES);
    memcpy(field, name, len);

    return 0;
}

/* Zeroes the domctl (unused fields must be 0) and fills its envelope. */
static void sshm_init(struct xen_domctl *domctl, uint32_t domid, uint32_t op)
{
    memset(domctl, 0, sizeof(*domctl));
    domctl->cmd = XEN_DOMCTL_static_shm;
    domctl->domain = domid;
    domctl->u.static_shm.op = op;
}

int xc_sshm_create(xc_interface *xch, uint32_t domid, const char *name,
                   uint64_t nr_pages, uint32_t prot, uint32_t flags)
{
    DECLARE_DOMCTL;

    sshm_init(&domctl, domid, XEN_SSHM_OP_create);
    domctl.u.static_shm.flags = flags;
    domctl.u.static_shm.nr_pages = nr_pages;
    domctl.u.static_shm.prot = prot;

    if ( sshm_set_name(xch, domctl.u.static_shm.name, name) )
        return -1;

    return do_domctl(xch, &domctl);
}

int xc_sshm_attach(xc_interface *xch, uint32_t domid, const char *name,
                   uint64_t gfn, uint64_t offset, uint64_t nr_pages,
                   uint64_t size_pages, uint32_t prot, uint32_t flags)
{
    DECLARE_DOMCTL;

    sshm_init(&domctl, domid, XEN_SSHM_OP_attach);
    domctl.u.static_shm.flags = flags;
    domctl.u.static_shm.gfn = gfn;
    domctl.u.static_shm.offset = offset;
    domctl.u.static_shm.nr_pages = nr_pages;
    domctl.u.static_shm.prot = prot;
    /* Only create-or-open describes the region; plain attach must say 0. */
    domctl.u.static_shm.size_pages =
        (flags & XEN_SSHM_F_create) ? size_pages : 0;

    if ( sshm_set_name(xch, domctl.u.static_shm.name, name) )
        return -1;

    return do_domctl(xch, &domctl);
}

int xc_sshm_detach(xc_interface *xch, uint32_t domid, const char *name,
                   uint64_t gfn, uint64_t nr_pages)
{
    DECLARE_DOMCTL;

    sshm_init(&domctl, domid, XEN_SSHM_OP_detach);
    domctl.u.static_shm.gfn = gfn;
    domctl.u.static_shm.nr_pages = nr_pages;

    if ( sshm_set_name(xch, domctl.u.static_shm.name, name) )
        return -1;

    return do_domctl(xch, &domctl);
}

int xc_sshm_unlink(xc_interface *xch, const char *name)
{
    DECLARE_DOMCTL;

    sshm_init(&domctl, DOMID_SSHM, XEN_SSHM_OP_unlink);

    if ( sshm_set_name(xch, domctl.u.static_shm.name, name) )
        return -1;

    return do_domctl(xch, &domctl);
}

int xc_sshm_info(xc_interface *xch, const char *name,
                 xen_sshm_entry_t *entry)
{
    int rc;
    DECLARE_DOMCTL;
    DECLARE_HYPERCALL_BOUNCE(entry, sizeof(*entry),
                             XC_HYPERCALL_BUFFER_BOUNCE_OUT);

    sshm_init(&domctl, DOMID_SSHM, XEN_SSHM_OP_info);

    if ( sshm_set_name(xch, domctl.u.static_shm.name, name) )
        return -1;

    if ( xc_hypercall_bounce_pre(xch, entry) )
    {
        PERROR("Could not bounce buffer for static_shm info");
        return -1;
    }

    domctl.u.static_shm.buffer = HYPERCALL_BUFFER_AS_ARG(entry);
    rc = do_domctl(xch, &domctl);

    xc_hypercall_bounce_post(xch, entry);

    return rc;
}

int xc_sshm_list(xc_interface *xch, char cursor[XEN_SSHM_NAME_BYTES],
                 xen_sshm_entry_t *entries, uint32_t max_entries)
{
    int rc;
    DECLARE_DOMCTL;
    DECLARE_HYPERCALL_BOUNCE(entries, max_entries * sizeof(*entries),
                             XC_HYPERCALL_BUFFER_BOUNCE_OUT);

    if ( max_entries == 0 || max_entries > XEN_SSHM_LIST_ENTRIES_MAX )
    {
        errno = EINVAL;
        return -1;
    }

    sshm_init(&domctl, DOMID_SSHM, XEN_SSHM_OP_list);
    domctl.u.static_shm.nr_entries = max_entries;
    memcpy(domctl.u.static_shm.name, cursor, XEN_SSHM_NAME_BYTES);

    if ( xc_hypercall_bounce_pre(xch, entries) )
    {
        PERROR("Could not bounce buffer for static_shm list");
        return -1;
    }

    domctl.u.static_shm.buffer = HYPERCALL_BUFFER_AS_ARG(entries);
    rc = do_domctl(xch, &domctl);

    xc_hypercall_bounce_post(xch, entries);

    if ( rc < 0 )
        return rc;

    memcpy(cursor, domctl.u.static_shm.name, XEN_SSHM_NAME_BYTES);

    return domctl.u.static_shm.nr_entries;
}

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * tab-width: 4
 * indent-tabs-mode: nil
 * End:
 */
