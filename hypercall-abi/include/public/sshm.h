/* SPDX-License-Identifier: MIT */
/******************************************************************************
 * sshm.h
 *
 * Static shared memory: owner-less, hypervisor-refcounted memory regions
 * shared between domains, managed by the toolstack with
 * XEN_DOMCTL_static_shm.
 *
 * Generated from nothing: this file is the C mirror of the Rust crate
 * hypercall-abi (src/sshm.rs), which is the single source of truth. Both
 * sides pin the layout and a bindgen test checks that they agree.
 */

#ifndef __XEN_PUBLIC_SSHM_H__
#define __XEN_PUBLIC_SSHM_H__

#include "xen.h"

/* DOMID_SSHM owns every static shared memory page. */
#define DOMID_SSHM           xen_mk_uint(0x7FF5)

#define XEN_SSHM_OP_create   1  /* Create a region (-EEXIST if it exists). */
/*
 * Attach targets translated guests (HVM, PVH): a PV target, or one with
 * altp2m or nested virtualisation, is refused with -EOPNOTSUPP.
 */
#define XEN_SSHM_OP_attach   2  /* Map part of a region into a physmap.    */
#define XEN_SSHM_OP_detach   3  /* Remove the attachment starting at gfn.  */
#define XEN_SSHM_OP_unlink   4  /* Remove the name; freed on last detach.  */
#define XEN_SSHM_OP_info     5  /* One xen_sshm_entry_t into buffer.       */
#define XEN_SSHM_OP_list     6  /* Entries in name order after the cursor. */

/* Input flags. */
#define XEN_SSHM_F_persistent (1U << 0) /* Outlives its users until unlink. */
#define XEN_SSHM_F_create     (1U << 1) /* Attach: create-or-open.          */
/* Output flags in xen_sshm_entry.flags. */
#define XEN_SSHM_F_unlinked   (1U << 8) /* Name removed; alive while attached. */
#define XEN_SSHM_F_building   (1U << 9) /* Being created; not attachable yet. */

#define XEN_SSHM_PROT_read   (1U << 0)
#define XEN_SSHM_PROT_write  (1U << 1)
#define XEN_SSHM_PROT_rw     (XEN_SSHM_PROT_read | XEN_SSHM_PROT_write)

#define XEN_SSHM_NAME_BYTES  32  /* Including the terminating NUL.  */
#define XEN_SSHM_NAME_LEN_MAX (XEN_SSHM_NAME_BYTES - 1)

/* Hard caps; boot parameters may lower the first two. */
#define XEN_SSHM_REGION_PAGES_MAX          (1ULL << 20)
#define XEN_SSHM_REGIONS_MAX               16384
#define XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX 64
#define XEN_SSHM_LIST_ENTRIES_MAX          64
#define XEN_SSHM_ENTRY_DOMIDS_MAX          16
#define XEN_SSHM_GFN_LIMIT                 (1ULL << 40)
/*
 * Bounded work: creating a region allocates and clears at most
 * BUILD_PAGES_STEP pages per step (the domctl continues itself between
 * steps); an unlink or detach that frees a region clears and gives it
 * back RELEASE_PAGES_STEP pages per continuation before it returns.
 */
#define XEN_SSHM_BUILD_PAGES_STEP          2048
#define XEN_SSHM_RELEASE_PAGES_STEP        512
/* progress of an unlink/detach giving back the memory it freed. */
#define XEN_SSHM_PROGRESS_RELEASING        0xffffffffffffffffULL

/*
 * XEN_DOMCTL_static_shm, on the domain in the domctl envelope. Fields are
 * IN unless marked. Every field an op does not use, and reserved[], must be
 * zero (-EINVAL otherwise).
 */
struct xen_domctl_static_shm {
    uint32_t op;                /* XEN_SSHM_OP_*                              */
    uint32_t flags;             /* XEN_SSHM_F_*                               */
    char name[XEN_SSHM_NAME_BYTES]; /* [A-Za-z0-9_]{1,31}, NUL-padded;
                                 * list: IN/OUT cursor (empty to start)       */
    uint64_aligned_t nr_pages;  /* create: size; attach: pages to map         */
    uint64_aligned_t offset;    /* attach: first page of the region           */
    uint64_aligned_t gfn;       /* attach/detach: first gfn                   */
    uint64_aligned_t progress;  /* IN/OUT: continuation progress, 0 to start
                                 * (create: pages built; attach/detach: pages
                                 * mapped/unmapped)                           */
    uint64_aligned_t buffer;    /* info/list: XEN_GUEST_HANDLE_64 of entries  */
    uint32_t nr_entries;        /* list: IN capacity, OUT entries written     */
    uint32_t prot;              /* XEN_SSHM_PROT_*                            */
    uint64_aligned_t size_pages;/* attach+create: region size (0: off+nr)    */
    uint64_aligned_t reserved[4];
};
typedef struct xen_domctl_static_shm xen_domctl_static_shm_t;

/* One region, as XEN_SSHM_OP_info and XEN_SSHM_OP_list report it. */
struct xen_sshm_entry {
    char name[XEN_SSHM_NAME_BYTES];
    uint64_aligned_t nr_pages;
    uint32_t max_prot;          /* XEN_SSHM_PROT_*                            */
    uint32_t flags;             /* XEN_SSHM_F_persistent, _unlinked, _building */
    uint32_t nr_attachments;
    domid_t creator;            /* Audit only: it owns nothing.               */
    uint16_t nr_domids;         /* Valid entries of domids[].                 */
    domid_t domids[XEN_SSHM_ENTRY_DOMIDS_MAX]; /* Attached domains, ascending. */
};
typedef struct xen_sshm_entry xen_sshm_entry_t;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct xen_domctl_static_shm) == 128, "sshm domctl size");
_Static_assert(__builtin_offsetof(struct xen_domctl_static_shm, name) == 8, "name");
_Static_assert(__builtin_offsetof(struct xen_domctl_static_shm, nr_pages) == 40, "nr_pages");
_Static_assert(__builtin_offsetof(struct xen_domctl_static_shm, progress) == 64, "progress");
_Static_assert(__builtin_offsetof(struct xen_domctl_static_shm, nr_entries) == 80, "nr_entries");
_Static_assert(__builtin_offsetof(struct xen_domctl_static_shm, size_pages) == 88, "size_pages");
_Static_assert(__builtin_offsetof(struct xen_domctl_static_shm, reserved) == 96, "reserved");
_Static_assert(sizeof(struct xen_sshm_entry) == 88, "sshm entry size");
_Static_assert(__builtin_offsetof(struct xen_sshm_entry, creator) == 52, "creator");
_Static_assert(__builtin_offsetof(struct xen_sshm_entry, domids) == 56, "domids");
#endif

#endif /* __XEN_PUBLIC_SSHM_H__ */

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * tab-width: 4
 * indent-tabs-mode: nil
 * End:
 */
