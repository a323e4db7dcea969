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

int libxl__sshm_setdefault(libxl__gc *gc, uint32_t domid,
                           libxl_domain_config *d_config);
int libxl__sshm_attach_all(libxl__gc *gc, uint32_t domid,
                           libxl_domain_config *d_config);
#endif
