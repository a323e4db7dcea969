/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The C side of the Rust component (rust-hv): one-line wrappers over Xen
 * internals, and the entry points Rust exports.
 *
 * This header is what bindgen binds, so it is self-contained: only builtin C
 * types and opaque struct pointers, no Xen header.  Frame and guest frame
 * numbers are unsigned long, errors are negative errno values.
 */
#ifndef XEN_COMMON_RUST_HV_SHIM_H
#define XEN_COMMON_RUST_HV_SHIM_H

struct domain;

/* Storage for a spinlock_t; shim.c checks at build time that it fits. */
struct rust_hv_lock {
    unsigned long opaque[4];
};

struct rust_hv_domain_info {
    unsigned short domid;
    _Bool translated;
    _Bool dying;
    _Bool control;
    _Bool altp2m;       /* HVM_PARAM_ALTP2M set, or altp2m active */
    _Bool nested_virt;  /* XEN_DOMCTL_CDF_nested_virt */
};

/* Limits from the command line, handed to Rust at boot. */
struct rust_hv_limits {
    unsigned long sshm_pages_max;
    unsigned long sshm_region_pages_max;
    unsigned int sshm_regions_max;
};

#define RUST_HV_P2M_SHARED_RO 0
#define RUST_HV_P2M_SHARED_RW 1

/* Domains. */
int rust_hv_domain_get(unsigned short domid, struct domain **d);
struct domain *rust_hv_domain_get_current(void);
void rust_hv_domain_hold(struct domain *d);
void rust_hv_domain_put(struct domain *d);
void rust_hv_domain_info(const struct domain *d,
                         struct rust_hv_domain_info *info);

/* Frames owned by dom_sshm. */
int rust_hv_sshm_alloc(unsigned int order, unsigned long *mfn);
void rust_hv_sshm_free(unsigned long mfn, unsigned int order);
/* Runs rust_hv_sshm_release_step() soon, in the background (a tasklet). */
void rust_hv_sshm_release_later(void);

/* p2m of translated domains. */
int rust_hv_p2m_insert(struct domain *d, unsigned long gfn, unsigned long mfn,
                       unsigned int order, unsigned int kind);
int rust_hv_p2m_remove(struct domain *d, unsigned long gfn, unsigned long mfn,
                       unsigned int order);
_Bool rust_hv_p2m_populated(struct domain *d, unsigned long gfn,
                            unsigned int order);

/* Guest pages pinned writable. */
int rust_hv_page_pin_writable(struct domain *d, unsigned long gfn,
                              unsigned long *mfn);
void rust_hv_page_unpin(unsigned long mfn);

/* A ring's pinned frames mapped virtually contiguous: NULL if no room. */
void *rust_hv_vmap(const unsigned long *mfns, unsigned int nr);
void rust_hv_vunmap(const void *va);

/* Memory access. */
void rust_hv_frame_read(unsigned long mfn, unsigned long offset, void *buf,
                        unsigned long len);
void rust_hv_frame_write(unsigned long mfn, unsigned long offset,
                         const void *buf, unsigned long len);
int rust_hv_copy_from_guest(void *buf, unsigned long addr, unsigned long len);
int rust_hv_copy_to_guest(unsigned long addr, const void *buf,
                          unsigned long len);
/* Copies guest memory into a frame (offset + len within it): -EFAULT. */
int rust_hv_copy_from_guest_to_frame(unsigned long mfn, unsigned long offset,
                                     unsigned long addr, unsigned long len);
/* smp_wmb(): frame writes before it are seen before those after it. */
void rust_hv_smp_wmb(void);

/* Locks. */
void rust_hv_lock_init(struct rust_hv_lock *l);
void rust_hv_lock(struct rust_hv_lock *l);
void rust_hv_unlock(struct rust_hv_lock *l);

/* Events and scheduling. */
void rust_hv_send_virq(struct domain *d, unsigned int virq);
_Bool rust_hv_preempt_check(void);

/*
 * XSM checks of V4V, made once the arguments are in Xen: registering a ring
 * for one partner (or, partner NULL, for any sender), sending to (or asking
 * about the space in) a ring of t, reading or changing the firewall (d is
 * the caller).  0 or -errno.
 */
int rust_hv_xsm_v4v_register(const struct domain *d,
                             const struct domain *partner);
int rust_hv_xsm_v4v_send(const struct domain *d, const struct domain *t);
int rust_hv_xsm_v4v_firewall(const struct domain *d);

/*
 * XSM check of static shared memory: the caller d may use the regions,
 * which belong to dom_sshm (every sub-op but detach, on top of do_domctl's
 * check of the envelope's domain).  0 or -errno.
 */
int rust_hv_xsm_sshm_regions(const struct domain *d);

/* Heap and panic. */
void *rust_hv_xmalloc(unsigned long size, unsigned long align);
void rust_hv_xfree(void *p);
_Noreturn void rust_hv_panic(const char *msg, unsigned long len);


/* Implemented in Rust. */
int rust_hv_init(const struct rust_hv_limits *limits);
long rust_hv_sshm_domctl(unsigned short target, void *op);
long rust_hv_v4v_op(unsigned int cmd, unsigned long arg1, unsigned long arg2,
                    unsigned long arg3, unsigned long arg4);
/* Bounded steps: -ERESTART until done. */
int rust_hv_domain_destroy(struct domain *d);
/* One bounded step of giving freed sshm backing back: non-zero if more. */
int rust_hv_sshm_release_step(void);
int rust_hv_domain_soft_reset(struct domain *d);

#endif /* XEN_COMMON_RUST_HV_SHIM_H */

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
