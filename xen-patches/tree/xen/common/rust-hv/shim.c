/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The C shim of the Rust component: one-line wrappers over Xen internals
 * that rust-hv's xen module binds (through bindgen, from shim.h only), and
 * the boot-time set-up.  No logic lives here.
 */
#include <xen/domain_page.h>
#include <xen/event.h>
#include <xen/guest_access.h>
#include <xen/init.h>
#include <xen/lib.h>
#include <xen/mm.h>
#include <xen/param.h>
#include <xen/sched.h>
#include <xen/spinlock.h>
#include <xen/tasklet.h>
#include <xen/vmap.h>
#include <xen/xmalloc.h>

#include <asm/altp2m.h>
#include <asm/hvm/nestedhvm.h>
#include <asm/p2m.h>
#include <asm/paging.h>

#include <xsm/xsm.h>

#include "shim.h"

/* Limits (boot parameters; see docs/misc/xen-command-line.pandoc). */
static unsigned int __initdata opt_sshm_max_mb = 1024;
integer_param("sshm_max_mb", opt_sshm_max_mb);
static unsigned int __initdata opt_sshm_region_max_mb = 1024;
integer_param("sshm_region_max_mb", opt_sshm_region_max_mb);
static unsigned int __initdata opt_sshm_regions_max = 1024;
integer_param("sshm_regions_max", opt_sshm_regions_max);

int rust_hv_domain_get(unsigned short domid, struct domain **d)
{
    *d = get_domain_by_id(domid);
    return *d ? 0 : -ESRCH;
}

struct domain *rust_hv_domain_get_current(void)
{
    get_knownalive_domain(current->domain);
    return current->domain;
}

void rust_hv_domain_hold(struct domain *d)
{
    get_knownalive_domain(d);
}

void rust_hv_domain_put(struct domain *d)
{
    put_domain(d);
}

void rust_hv_domain_info(const struct domain *d,
                         struct rust_hv_domain_info *info)
{
    info->domid = d->domain_id;
    info->translated = paging_mode_translate(d);
    info->dying = d->is_dying;
    info->control = is_control_domain(d);
    info->altp2m = false;
#ifdef CONFIG_HVM
    if ( is_hvm_domain(d) )
        info->altp2m = altp2m_active(d) ||
                       d->arch.hvm.params[HVM_PARAM_ALTP2M] !=
                       XEN_ALTP2M_disabled;
#endif
    info->nested_virt = nestedhvm_enabled(d);
}

int rust_hv_sshm_alloc(unsigned int order, unsigned long *mfn)
{
#ifdef CONFIG_SSHM
    struct page_info *pg = alloc_domheap_pages(dom_sshm, order, 0);
    unsigned long i;

    if ( !pg )
        return -ENOMEM;
    for ( i = 0; i < (1UL << order); i++ )
        clear_domain_page(page_to_mfn(pg + i));
    *mfn = mfn_x(page_to_mfn(pg));

    return 0;
#else
    return -EOPNOTSUPP;
#endif
}

void rust_hv_sshm_free(unsigned long mfn, unsigned int order)
{
    unsigned long i;

    for ( i = 0; i < (1UL << order); i++ )
    {
        struct page_info *pg = mfn_to_page(_mfn(mfn + i));

        /*
         * free_domheap_pages() scrubs only for a dying owner, and dom_sshm
         * never dies: clear the frame now, whatever other references
         * remain.  A transient one (any get_page() in flight) may well be
         * the last, and its put_page() returns the frame to the heap as it
         * is.  No mapping of the frame remains at this point.
         */
        clear_domain_page(_mfn(mfn + i));
        if ( test_and_clear_bit(_PGC_allocated, &pg->count_info) )
            put_page(pg);
    }
}

/*
 * Freed regions' backing is cleared and given back to the heap in the
 * background: each run of this tasklet (idle vCPU context, no lock held)
 * does one bounded step and schedules itself again while more is left.
 */
static void cf_check rust_hv_sshm_release(void *unused);
static DECLARE_TASKLET(rust_hv_sshm_release_tasklet, rust_hv_sshm_release,
                       NULL);

static void cf_check rust_hv_sshm_release(void *unused)
{
    if ( rust_hv_sshm_release_step() )
        tasklet_schedule(&rust_hv_sshm_release_tasklet);
}

void rust_hv_sshm_release_later(void)
{
    tasklet_schedule(&rust_hv_sshm_release_tasklet);
}

int rust_hv_p2m_insert(struct domain *d, unsigned long gfn, unsigned long mfn,
                       unsigned int order, unsigned int kind)
{
#ifdef CONFIG_SSHM
    return p2m_add_sshm_entry(d, _gfn(gfn), _mfn(mfn), order,
                              kind == RUST_HV_P2M_SHARED_RO);
#else
    return -EOPNOTSUPP;
#endif
}

int rust_hv_p2m_remove(struct domain *d, unsigned long gfn, unsigned long mfn,
                       unsigned int order)
{
#ifdef CONFIG_SSHM
    return p2m_remove_sshm_entry(d, _gfn(gfn), _mfn(mfn), order);
#else
    return -EOPNOTSUPP;
#endif
}

_Bool rust_hv_p2m_populated(struct domain *d, unsigned long gfn,
                            unsigned int order)
{
    unsigned long i;

    for ( i = 0; i < (1UL << order); i++ )
    {
        p2m_type_t t;

        get_gfn_query_unlocked(d, gfn + i, &t);
        if ( t != p2m_invalid && t != p2m_mmio_dm )
            return true;
    }

    return false;
}

int rust_hv_page_pin_writable(struct domain *d, unsigned long gfn,
                              unsigned long *mfn)
{
    p2m_type_t t;
    struct page_info *pg = get_page_from_gfn(d, gfn, &t, P2M_ALLOC);

    if ( !pg )
        return -EINVAL;
    if ( t != p2m_ram_rw || !get_page_type(pg, PGT_writable_page) )
    {
        put_page(pg);
        return -EINVAL;
    }
    *mfn = mfn_x(page_to_mfn(pg));

    return 0;
}

void rust_hv_page_unpin(unsigned long mfn)
{
    put_page_and_type(mfn_to_page(_mfn(mfn)));
}

void *rust_hv_vmap(const unsigned long *mfns, unsigned int nr)
{
    BUILD_BUG_ON(sizeof(mfn_t) != sizeof(*mfns));
    return vmap((const mfn_t *)mfns, nr);
}

void rust_hv_vunmap(const void *va)
{
    vunmap(va);
}

void rust_hv_frame_read(unsigned long mfn, unsigned long offset, void *buf,
                        unsigned long len)
{
    const void *p = map_domain_page(_mfn(mfn));

    memcpy(buf, p + offset, len);
    unmap_domain_page(p);
}

void rust_hv_frame_write(unsigned long mfn, unsigned long offset,
                         const void *buf, unsigned long len)
{
    void *p = map_domain_page(_mfn(mfn));

    memcpy(p + offset, buf, len);
    unmap_domain_page(p);
}

int rust_hv_copy_from_guest(void *buf, unsigned long addr, unsigned long len)
{
    return raw_copy_from_guest(buf, (const void __user *)addr, len)
           ? -EFAULT : 0;
}

int rust_hv_copy_to_guest(unsigned long addr, const void *buf,
                          unsigned long len)
{
    return raw_copy_to_guest((void __user *)addr, buf, len) ? -EFAULT : 0;
}

int rust_hv_copy_from_guest_to_frame(unsigned long mfn, unsigned long offset,
                                     unsigned long addr, unsigned long len)
{
    void *p = map_domain_page(_mfn(mfn));
    int rc = raw_copy_from_guest(p + offset, (const void __user *)addr, len)
             ? -EFAULT : 0;

    unmap_domain_page(p);

    return rc;
}

void rust_hv_smp_wmb(void)
{
    smp_wmb();
}

void rust_hv_lock_init(struct rust_hv_lock *l)
{
    BUILD_BUG_ON(sizeof(spinlock_t) > sizeof(*l));
    BUILD_BUG_ON(__alignof__(spinlock_t) > __alignof__(*l));
    spin_lock_init((spinlock_t *)l);
}

void rust_hv_lock(struct rust_hv_lock *l)
{
    spin_lock((spinlock_t *)l);
}

void rust_hv_unlock(struct rust_hv_lock *l)
{
    spin_unlock((spinlock_t *)l);
}

void rust_hv_send_virq(struct domain *d, unsigned int virq)
{
    send_guest_global_virq(d, virq);
}

_Bool rust_hv_preempt_check(void)
{
    return hypercall_preempt_check();
}

int rust_hv_xsm_v4v_register(const struct domain *d,
                             const struct domain *partner)
{
#ifdef CONFIG_V4V
    return partner ? xsm_v4v_register_single_source(d, partner)
                   : xsm_v4v_register_any_source(d);
#else
    return -EOPNOTSUPP;
#endif
}

int rust_hv_xsm_v4v_send(const struct domain *d, const struct domain *t)
{
#ifdef CONFIG_V4V
    return xsm_v4v_send(d, t);
#else
    return -EOPNOTSUPP;
#endif
}

int rust_hv_xsm_v4v_firewall(const struct domain *d)
{
#ifdef CONFIG_V4V
    return xsm_v4v_firewall(XSM_PRIV, d);
#else
    return -EOPNOTSUPP;
#endif
}

int rust_hv_xsm_sshm_regions(const struct domain *d)
{
#ifdef CONFIG_SSHM
    /*
     * The regions belong to dom_sshm: the caller (d, current->domain) is
     * checked for the static_shm domctl on it, as do_domctl() checks the
     * envelope's domain (FLASK: domain2:static_shm on dom_sshm's label).
     */
    ASSERT(d == current->domain);
    return xsm_domctl(XSM_OTHER, dom_sshm, XEN_DOMCTL_static_shm, 0);
#else
    return -EOPNOTSUPP;
#endif
}

void *rust_hv_xmalloc(unsigned long size, unsigned long align)
{
    return _xmalloc(size, align);
}

void rust_hv_xfree(void *p)
{
    xfree(p);
}

void rust_hv_panic(const char *msg, unsigned long len)
{
    panic("rust-hv: %.*s\n", (int)min(len, 1024UL), msg);
}

static int __init cf_check rust_hv_setup(void)
{
    const struct rust_hv_limits limits = {
        .sshm_pages_max = (unsigned long)opt_sshm_max_mb << (20 - PAGE_SHIFT),
        .sshm_region_pages_max =
            (unsigned long)opt_sshm_region_max_mb << (20 - PAGE_SHIFT),
        .sshm_regions_max = opt_sshm_regions_max,
    };
    int rc = rust_hv_init(&limits);

    if ( rc )
        printk(XENLOG_ERR "rust-hv: initialisation failed: %d\n", rc);
    else
        printk(XENLOG_INFO
               "rust-hv: sshm %u MiB max, regions %u MiB max, %u regions max\n",
               opt_sshm_max_mb, opt_sshm_region_max_mb, opt_sshm_regions_max);

    return rc;
}
__initcall(rust_hv_setup);

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
