/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Test stand-in for tools/libs/light/libxl_internal.h: a gc that does not
 * collect (tests are short), the log macros writing to the ctx's log
 * stream, and the libxenctrl declarations.
 */
#ifndef GLUE_SHIM_LIBXL_INTERNAL_H
#define GLUE_SHIM_LIBXL_INTERNAL_H
#include <inttypes.h>
#include "xc_private.h"

struct libxl__ctx {
    xc_interface *xch;
    FILE *log;
    char *log_buf;
    size_t log_len;
};

typedef struct {
    libxl_ctx *owner;
} libxl__gc;

#define CTX (gc->owner)
#define GC_INIT(ctx) libxl__gc gc[1] = { { (ctx) } }
#define GC_FREE ((void)gc)
#define NOGC NULL

#define ERROR_FAIL  (-3)
#define ERROR_INVAL (-6)
#define ERROR_NOTFOUND (-23)

void glue_log(libxl__gc *gc, const char *level, uint32_t domid, int errnoval,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define LOGD(l, d, f, ...) glue_log(gc, #l, (d), -1, f, ##__VA_ARGS__)
#define LOGED(l, d, f, ...) glue_log(gc, #l, (d), errno, f, ##__VA_ARGS__)
#define LOGE(l, f, ...) glue_log(gc, #l, ~0U, errno, f, ##__VA_ARGS__)
#define LOG(l, f, ...) glue_log(gc, #l, ~0U, -1, f, ##__VA_ARGS__)

void *libxl__calloc(libxl__gc *gc, size_t n, size_t sz);
void *libxl__realloc(libxl__gc *gc, void *p, size_t sz);
char *libxl__strdup(libxl__gc *gc, const char *s);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof(*(a)))

char *libxl__sprintf(libxl__gc *gc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define GCSPRINTF(fmt, ...) (libxl__sprintf((gc), (fmt), __VA_ARGS__))

/*
 * xenstore.h's types and libxl's xenstore helpers (libxl_xshelp.c), the
 * same names and behaviour, over the fake xenstore of src/xenstore.rs
 * (harness.c).  The store is the toolstack's view: writes are privileged.
 */
typedef uint32_t xs_transaction_t;
#define XBT_NULL 0
enum xs_perm_type {
    XS_PERM_NONE = 0,
    XS_PERM_READ = 1,
    XS_PERM_WRITE = 2,
    XS_PERM_OWNER = 8,
};
struct xs_permissions {
    unsigned int id;
    enum xs_perm_type perms;
};

/* Implemented in Rust (src/ffi.rs): 0 or an errno value. */
int glue_fake_xs_transaction_start(unsigned int handle, uint32_t *t);
int glue_fake_xs_transaction_end(unsigned int handle, uint32_t t, int abort);
int glue_fake_xs_write(unsigned int handle, uint32_t t, const char *path,
                       const char *value);
int glue_fake_xs_set_permissions(unsigned int handle, uint32_t t,
                                 const char *path,
                                 const struct xs_permissions *perms,
                                 unsigned int num);

char *libxl__xs_get_dompath(libxl__gc *gc, uint32_t domid);
int libxl__xs_mknod(libxl__gc *gc, xs_transaction_t t, const char *path,
                    struct xs_permissions *perms, unsigned int num_perms);
int libxl__xs_writev_perms(libxl__gc *gc, xs_transaction_t t,
                           const char *dir, char *kvs[],
                           struct xs_permissions *perms,
                           unsigned int num_perms);
int libxl__xs_transaction_start(libxl__gc *gc, xs_transaction_t *t);
int libxl__xs_transaction_commit(libxl__gc *gc, xs_transaction_t *t);
void libxl__xs_transaction_abort(libxl__gc *gc, xs_transaction_t *t);

int libxl__sshm_setdefault(libxl__gc *gc, uint32_t domid,
                           libxl_domain_config *d_config);
int libxl__sshm_attach_all(libxl__gc *gc, uint32_t domid,
                           libxl_domain_config *d_config, bool soft_reset);
#endif
