/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libxl_sshm.c: static shared memory at domain creation.
 *
 * Regions are owner-less: the hypervisor owns and refcounts them, so libxl
 * keeps no state of its own about them and has nothing to do at domain
 * destruction (Xen detaches a dying domain's attachments itself).  At
 * creation, after memory is populated and before the domain first runs,
 * every configured region is attached with create-or-open
 * (XEN_SSHM_F_create), which the hypervisor does atomically, so concurrent
 * creates sharing an id are safe.  If any attach fails, the ones done so
 * far are detached again before failing.
 *
 * A soft reset (xl's on_soft_reset, a guest that kexecs; HVM guests only in
 * libxl 4.17) goes through the same create step on the same domain.  Xen keeps its attachments across
 * it, like its RAM, and attaching them again would fail (the range is
 * taken), so then only the xenstore keys are written again: libxl removed
 * the domain's directory with the old kernel's devices.
 *
 * The guest is then told what it got: each attachment is published under
 * the guest's own xenstore home, read-only for the guest (see
 * sshm_publish), so that a guest driver finds its regions by name.  Those
 * keys go with the rest of the domain's xenstore directory when it is
 * destroyed.
 */

#include "libxl_osdeps.h" /* must come before any other headers */

#include "libxl_internal.h"

/* Explains an errno from XEN_DOMCTL_static_shm to the user. */
static const char *sshm_strerror(int err)
{
    switch (err) {
    case ENOSYS:
        return "the hypervisor has no static shared memory support";
    case EOPNOTSUPP:
        return "only HVM and PVH guests can map static shared memory";
    case EBUSY:
        return "the guest physical range is already in use (RAM, MMIO or "
               "another region)";
    case EEXIST:
        return "a region with this id already exists with a different size "
               "or persistence (region_size, or offset + size, and "
               "persistent must match)";
    case EACCES:
    case EPERM:
        return "the region was created read-only (by a tool other than xl), "
               "so prot=rw is refused";
    case ESRCH:
        return "the domain is dying";
    case ENOENT:
        return "no region with this id";
    case ENOSPC:
        return "the hypervisor's limit on static shared memory is reached "
               "(see the sshm boot parameters)";
    case ENOMEM:
        return "the hypervisor is out of memory";
    case E2BIG:
        return "too large or too many regions for the hypervisor's limits";
    case EINVAL:
        return "the hypervisor rejected the request as invalid (range "
               "outside the region, or a bad id)";
    default:
        return strerror(err);
    }
}

static uint32_t sshm_prot(const libxl_static_shm *sshm)
{
    return sshm->prot == LIBXL_SSHM_PROT_R ? XEN_SSHM_PROT_read
                                           : XEN_SSHM_PROT_rw;
}

int libxl__sshm_setdefault(libxl__gc *gc, uint32_t domid,
                           libxl_domain_config *d_config)
{
    int i;

    if (!d_config->num_sshms)
        return 0;

    if (d_config->b_info.type == LIBXL_DOMAIN_TYPE_PV) {
        LOGD(ERROR, domid, "static_shm needs an HVM or PVH guest");
        return ERROR_INVAL;
    }
    if (d_config->num_sshms > XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX) {
        LOGD(ERROR, domid, "static_shm: %d entries, at most %d",
             d_config->num_sshms, XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX);
        return ERROR_INVAL;
    }

    /* xl checked all this with better messages; other callers may not. */
    for (i = 0; i < d_config->num_sshms; i++) {
        libxl_static_shm *sshm = &d_config->sshms[i];

        if (!sshm->id || !*sshm->id ||
            strlen(sshm->id) > XEN_SSHM_NAME_LEN_MAX ||
            sshm->begin == LIBXL_SSHM_RANGE_UNKNOWN ||
            sshm->size == LIBXL_SSHM_RANGE_UNKNOWN || !sshm->size ||
            (sshm->begin | sshm->size) & ~XC_PAGE_MASK) {
            LOGD(ERROR, domid, "static_shm[%d]: invalid id or range", i);
            return ERROR_INVAL;
        }
        if (sshm->offset == LIBXL_SSHM_RANGE_UNKNOWN)
            sshm->offset = 0;
        if (sshm->offset & ~XC_PAGE_MASK) {
            LOGD(ERROR, domid, "static_shm[%d]: unaligned offset", i);
            return ERROR_INVAL;
        }
        if (sshm->prot == LIBXL_SSHM_PROT_UNKNOWN)
            sshm->prot = LIBXL_SSHM_PROT_RW;
        libxl_defbool_setdefault(&sshm->persistent, false);
    }

    return 0;
}

/*
 * The region exists with another size or persistence (-EEXIST from a
 * create-or-open attach): say what it is and what this config asked for,
 * so that the two configs that disagree can be found.
 */
static void sshm_explain_mismatch(libxl__gc *gc, uint32_t domid, int i,
                                  const libxl_static_shm *sshm,
                                  uint64_t region_pages)
{
    xen_sshm_entry_t e;
    uint64_t want = region_pages ? region_pages :
                    (sshm->offset + sshm->size) >> XC_PAGE_SHIFT;
    bool persistent = libxl_defbool_val(sshm->persistent);

    if (xc_sshm_info(CTX->xch, sshm->id, &e)) {
        LOGD(ERROR, domid, "static_shm[%d] id=%s: %s (errno %d)", i,
             sshm->id, sshm_strerror(EEXIST), EEXIST);
        return;
    }
    LOGD(ERROR, domid,
         "static_shm[%d] id=%s: the region exists with size 0x%"PRIx64
         " (persistent=%s), this config asks for size 0x%"PRIx64
         " (persistent=%s): sizes and persistence must match", i, sshm->id,
         e.nr_pages << XC_PAGE_SHIFT,
         (e.flags & XEN_SSHM_F_persistent) ? "yes" : "no",
         want << XC_PAGE_SHIFT, persistent ? "yes" : "no");
}

/*
 * Publishes the attachments for the guest, in one transaction:
 *
 *   /local/domain/<domid>/static_shm/<id>/begin   "0x10000000"
 *                                        /size    "0x200000"
 *                                        /offset  "0x0"
 *                                        /prot    "rw" or "ro"
 *
 * begin is the guest physical address of the mapping, size its length and
 * offset its start within the region, all in bytes, in hex; prot is the
 * access the guest was given.  Every node is owned by the toolstack's
 * domain with read access for the guest ("n0,r<domid>", as libxl makes the
 * domain's home directory), so the guest can read but not change, add or
 * remove anything, and no other guest can read it.  Nothing is written
 * when the config has no static_shm entries.
 */
static int sshm_publish(libxl__gc *gc, uint32_t domid,
                        const libxl_domain_config *d_config)
{
    struct xs_permissions roperm[2];
    xs_transaction_t t = XBT_NULL;
    const char *dom_path, *dir, *path;
    int i, rc;

    dom_path = libxl__xs_get_dompath(gc, domid);
    if (!dom_path)
        return ERROR_FAIL;
    dir = GCSPRINTF("%s/static_shm", dom_path);

    roperm[0].id = 0;
    roperm[0].perms = XS_PERM_NONE;
    roperm[1].id = domid;
    roperm[1].perms = XS_PERM_READ;

    for (;;) {
        rc = libxl__xs_transaction_start(gc, &t);
        if (rc) goto out;

        rc = libxl__xs_mknod(gc, t, dir, roperm, ARRAY_SIZE(roperm));
        if (rc) goto out;
        for (i = 0; i < d_config->num_sshms; i++) {
            const libxl_static_shm *sshm = &d_config->sshms[i];
            char *kvs[] = {
                "begin", GCSPRINTF("0x%"PRIx64, sshm->begin),
                "size", GCSPRINTF("0x%"PRIx64, sshm->size),
                "offset", GCSPRINTF("0x%"PRIx64, sshm->offset),
                "prot", sshm->prot == LIBXL_SSHM_PROT_R ? "ro" : "rw",
                NULL, NULL,
            };

            path = GCSPRINTF("%s/%s", dir, sshm->id);
            rc = libxl__xs_mknod(gc, t, path, roperm, ARRAY_SIZE(roperm));
            if (rc) goto out;
            rc = libxl__xs_writev_perms(gc, t, path, kvs, roperm,
                                        ARRAY_SIZE(roperm));
            if (rc) {
                LOGED(ERROR, domid, "static_shm: cannot write %s", path);
                goto out;
            }
        }

        rc = libxl__xs_transaction_commit(gc, &t);
        if (!rc) break;
        if (rc < 0) goto out;
    }

 out:
    libxl__xs_transaction_abort(gc, &t);
    return rc;
}

int libxl__sshm_attach_all(libxl__gc *gc, uint32_t domid,
                           libxl_domain_config *d_config, bool soft_reset)
{
    int i, r, err;
    uint64_t region_pages;

    if (soft_reset) {
        if (d_config->num_sshms && sshm_publish(gc, domid, d_config)) {
            LOGD(ERROR, domid, "static_shm: cannot publish the regions in "
                 "xenstore again after the soft reset");
            return ERROR_FAIL;
        }
        return 0;
    }

    for (i = 0; i < d_config->num_sshms; i++) {
        const libxl_static_shm *sshm = &d_config->sshms[i];
        uint32_t flags = XEN_SSHM_F_create;

        if (libxl_defbool_val(sshm->persistent))
            flags |= XEN_SSHM_F_persistent;
        region_pages = sshm->region_size == LIBXL_SSHM_RANGE_UNKNOWN ? 0 :
                       sshm->region_size >> XC_PAGE_SHIFT;

        r = xc_sshm_attach(CTX->xch, domid, sshm->id,
                           sshm->begin >> XC_PAGE_SHIFT,
                           sshm->offset >> XC_PAGE_SHIFT,
                           sshm->size >> XC_PAGE_SHIFT, region_pages,
                           sshm_prot(sshm), flags);
        if (r) {
            err = errno;
            if (err == EEXIST)
                sshm_explain_mismatch(gc, domid, i, sshm, region_pages);
            else
                LOGD(ERROR, domid,
                     "static_shm[%d] id=%s: cannot attach 0x%"PRIx64" bytes "
                     "at 0x%"PRIx64": %s (errno %d)", i, sshm->id,
                     sshm->size, sshm->begin, sshm_strerror(err), err);
            goto rollback;
        }
        LOGD(DEBUG, domid, "static_shm[%d] id=%s attached at 0x%"PRIx64,
             i, sshm->id, sshm->begin);
    }

    if (d_config->num_sshms && sshm_publish(gc, domid, d_config)) {
        LOGD(ERROR, domid, "static_shm: cannot publish the regions in "
             "xenstore for the guest");
        goto rollback;
    }

    return 0;

 rollback:
    /* Undo in reverse order; a transient region goes with its last user. */
    while (i-- > 0) {
        const libxl_static_shm *sshm = &d_config->sshms[i];

        if (xc_sshm_detach(CTX->xch, domid, sshm->id,
                           sshm->begin >> XC_PAGE_SHIFT,
                           sshm->size >> XC_PAGE_SHIFT))
            LOGED(ERROR, domid, "static_shm[%d] id=%s: rollback detach "
                  "failed (the hypervisor detaches it when the domain is "
                  "destroyed)", i, sshm->id);
    }
    return ERROR_FAIL;
}

libxl_sshminfo *libxl_sshm_list(libxl_ctx *ctx, int *nb_out)
{
    GC_INIT(ctx);
    xen_sshm_entry_t *entries = NULL;
    libxl_sshminfo *info = NULL, *tmp;
    char cursor[XEN_SSHM_NAME_BYTES] = "";
    int nb = 0, got, i, j, rounds;

    entries = libxl__calloc(gc, XEN_SSHM_LIST_ENTRIES_MAX, sizeof(*entries));

    /* Bounded: each round returns at least one of at most REGIONS_MAX. */
    for (rounds = 0;
         rounds <= XEN_SSHM_REGIONS_MAX / XEN_SSHM_LIST_ENTRIES_MAX + 1;
         rounds++) {
        got = xc_sshm_list(CTX->xch, cursor, entries,
                           XEN_SSHM_LIST_ENTRIES_MAX);
        if (got < 0) {
            LOGE(ERROR, "listing static shared memory regions: %s",
                 sshm_strerror(errno));
            libxl_sshminfo_list_free(info, nb);
            info = NULL;
            nb = 0;
            goto out;
        }
        if (!got)
            break;

        tmp = libxl__realloc(NOGC, info, (nb + got) * sizeof(*info));
        info = tmp;
        for (i = 0; i < got; i++) {
            const xen_sshm_entry_t *e = &entries[i];
            libxl_sshminfo *si = &info[nb + i];
            char name[XEN_SSHM_NAME_BYTES + 1];

            libxl_sshminfo_init(si);
            memcpy(name, e->name, XEN_SSHM_NAME_BYTES);
            name[XEN_SSHM_NAME_BYTES] = '\0';
            si->id = libxl__strdup(NOGC, name);
            si->size = e->nr_pages << XC_PAGE_SHIFT;
            si->prot = (e->max_prot & XEN_SSHM_PROT_write) ?
                       LIBXL_SSHM_PROT_RW : LIBXL_SSHM_PROT_R;
            si->persistent = !!(e->flags & XEN_SSHM_F_persistent);
            si->building = !!(e->flags & XEN_SSHM_F_building);
            si->nr_attachments = e->nr_attachments;
            si->creator = e->creator;
            si->num_domids = e->nr_domids < XEN_SSHM_ENTRY_DOMIDS_MAX ?
                             e->nr_domids : XEN_SSHM_ENTRY_DOMIDS_MAX;
            si->domids = libxl__calloc(NOGC, si->num_domids ?: 1,
                                       sizeof(*si->domids));
            for (j = 0; j < si->num_domids; j++)
                si->domids[j] = e->domids[j];
        }
        nb += got;
    }

    /* An empty list is not an error: NULL only means failure. */
    if (!info)
        info = libxl__calloc(NOGC, 1, sizeof(*info));

 out:
    *nb_out = nb;
    GC_FREE;
    return info;
}

int libxl_sshm_unlink(libxl_ctx *ctx, const char *id)
{
    GC_INIT(ctx);
    int rc = 0;

    if (xc_sshm_unlink(CTX->xch, id)) {
        LOGE(ERROR, "static_shm id=%s: cannot unlink: %s", id,
             sshm_strerror(errno));
        rc = errno == ENOENT ? ERROR_NOTFOUND : ERROR_FAIL;
    }
    GC_FREE;
    return rc;
}

void libxl_sshminfo_list_free(libxl_sshminfo *list, int nb)
{
    int i;

    for (i = 0; i < nb; i++)
        libxl_sshminfo_dispose(&list[i]);
    free(list);
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
