/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The test harness around the glue: the few libxl and libxlu helpers the
 * glue calls (IDL-generated or generic in the Xen tree) and entry points
 * that replay what xl and libxl do around the glue during xl create.
 */
#include <assert.h>
#include <stdarg.h>

#include "libxl_internal.h"
#include "libxlu_internal.h"

libxl_ctx *ctx;

void libxl_defbool_set(libxl_defbool *db, bool b)
{
    db->val = b ? 1 : -1;
}

void libxl_defbool_setdefault(libxl_defbool *db, bool b)
{
    if (!db->val)
        libxl_defbool_set(db, b);
}

bool libxl_defbool_val(libxl_defbool db)
{
    assert(db.val);
    return db.val > 0;
}

void libxl_static_shm_init(libxl_static_shm *p)
{
    memset(p, 0, sizeof(*p));
    p->begin = LIBXL_SSHM_RANGE_UNKNOWN;
    p->size = LIBXL_SSHM_RANGE_UNKNOWN;
    p->offset = LIBXL_SSHM_RANGE_UNKNOWN;
    p->region_size = LIBXL_SSHM_RANGE_UNKNOWN;
}

void libxl_static_shm_dispose(libxl_static_shm *p)
{
    free(p->id);
    memset(p, 0, sizeof(*p));
}

void libxl_sshminfo_init(libxl_sshminfo *p)
{
    memset(p, 0, sizeof(*p));
}

void libxl_sshminfo_dispose(libxl_sshminfo *p)
{
    free(p->id);
    free(p->domids);
    memset(p, 0, sizeof(*p));
}

void libxl_domain_config_dispose(libxl_domain_config *d_config)
{
    int i;

    for (i = 0; i < d_config->num_sshms; i++)
        libxl_static_shm_dispose(&d_config->sshms[i]);
    free(d_config->sshms);
    memset(d_config, 0, sizeof(*d_config));
}

const char *xlu_cfg_get_listitem(const XLU_ConfigList *list, int entry)
{
    if (entry < 0 || entry >= list->nitems)
        return NULL;
    return list->items[entry];
}

/* The gc never collects: NOGC and gc allocations are both plain malloc. */
void *libxl__calloc(libxl__gc *gc, size_t n, size_t sz)
{
    void *p = calloc(n, sz);

    (void)gc;
    if (!p)
        abort();
    return p;
}

void *libxl__realloc(libxl__gc *gc, void *p, size_t sz)
{
    (void)gc;
    p = realloc(p, sz);
    if (!p)
        abort();
    return p;
}

char *libxl__strdup(libxl__gc *gc, const char *s)
{
    char *p = strdup(s);

    (void)gc;
    if (!p)
        abort();
    return p;
}

char *libxl__sprintf(libxl__gc *gc, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    (void)gc;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(s = malloc(n + 1)))
        abort();
    va_start(ap, fmt);
    vsnprintf(s, n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/*
 * libxl's xenstore helpers as libxl_xshelp.c has them, with xs_write,
 * xs_set_permissions and transactions going to the fake store.
 */
_Static_assert(sizeof(struct xs_permissions) == 2 * sizeof(unsigned int),
               "the fake reads struct xs_permissions as unsigned int pairs");

static bool fake_xs_ok(int err)
{
    if (err)
        errno = err;
    return !err;
}

char *libxl__xs_get_dompath(libxl__gc *gc, uint32_t domid)
{
    return GCSPRINTF("/local/domain/%"PRIu32, domid);
}

int libxl__xs_mknod(libxl__gc *gc, xs_transaction_t t, const char *path,
                    struct xs_permissions *perms, unsigned int num_perms)
{
    unsigned int h = CTX->xch->handle;

    if (!fake_xs_ok(glue_fake_xs_write(h, t, path, ""))) {
        LOGE(ERROR, "xenstore write failed: `%s' = ''", path);
        return ERROR_FAIL;
    }
    if (!fake_xs_ok(glue_fake_xs_set_permissions(h, t, path, perms,
                                                 num_perms))) {
        LOGE(ERROR, "xenstore set permissions failed on `%s'", path);
        return ERROR_FAIL;
    }
    return 0;
}

int libxl__xs_writev_perms(libxl__gc *gc, xs_transaction_t t,
                           const char *dir, char *kvs[],
                           struct xs_permissions *perms,
                           unsigned int num_perms)
{
    unsigned int h = CTX->xch->handle;
    char *path;
    int i;

    for (i = 0; kvs[i] != NULL; i += 2) {
        path = GCSPRINTF("%s/%s", dir, kvs[i]);
        if (!fake_xs_ok(glue_fake_xs_write(h, t, path, kvs[i + 1])))
            return ERROR_FAIL;
        if (perms &&
            !fake_xs_ok(glue_fake_xs_set_permissions(h, t, path, perms,
                                                     num_perms)))
            return ERROR_FAIL;
    }
    return 0;
}

int libxl__xs_transaction_start(libxl__gc *gc, xs_transaction_t *t)
{
    assert(!*t);
    if (!fake_xs_ok(glue_fake_xs_transaction_start(CTX->xch->handle, t))) {
        LOGE(ERROR, "could not create xenstore transaction");
        return ERROR_FAIL;
    }
    return 0;
}

int libxl__xs_transaction_commit(libxl__gc *gc, xs_transaction_t *t)
{
    int err;

    assert(*t);
    err = glue_fake_xs_transaction_end(CTX->xch->handle, *t, 0);
    *t = 0;
    if (err == EAGAIN)
        return +1;
    if (!fake_xs_ok(err)) {
        LOGE(ERROR, "could not commit xenstore transaction");
        return ERROR_FAIL;
    }
    return 0;
}

void libxl__xs_transaction_abort(libxl__gc *gc, xs_transaction_t *t)
{
    if (!*t)
        return;
    if (!fake_xs_ok(glue_fake_xs_transaction_end(CTX->xch->handle, *t, 1)))
        LOGE(ERROR, "could not abort xenstore transaction");
    *t = 0;
}

void glue_log(libxl__gc *gc, const char *level, uint32_t domid, int errnoval,
              const char *fmt, ...)
{
    va_list ap;

    if (!strcmp(level, "DEBUG"))
        return;
    fprintf(CTX->log, "libxl: %s: ", level);
    if (domid != ~0U)
        fprintf(CTX->log, "Domain %"PRIu32":", domid);
    va_start(ap, fmt);
    vfprintf(CTX->log, fmt, ap);
    va_end(ap);
    if (errnoval >= 0)
        fprintf(CTX->log, ": %s", strerror(errnoval));
    fputc('\n', CTX->log);
}

xc_interface *glue_xc_open(unsigned int handle)
{
    xc_interface *xch = calloc(1, sizeof(*xch));

    if (xch)
        xch->handle = handle;
    return xch;
}

void glue_xc_close(xc_interface *xch)
{
    free(xch);
}

libxl_ctx *glue_ctx_new(xc_interface *xch)
{
    libxl_ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->xch = xch;
    c->log = open_memstream(&c->log_buf, &c->log_len);
    if (!c->log) {
        free(c);
        return NULL;
    }
    return c;
}

void glue_ctx_free(libxl_ctx *c)
{
    fclose(c->log);
    free(c->log_buf);
    free(c);
}

/* Takes what a memstream holds and starts it afresh. */
static char *take_stream(FILE **f, char **buf, size_t *len)
{
    char *s;

    fclose(*f);
    s = *buf;
    *buf = NULL;
    *len = 0;
    *f = open_memstream(buf, len);
    if (!*f)
        abort();
    return s ? s : strdup("");
}

char *glue_ctx_take_log(libxl_ctx *c)
{
    return take_stream(&c->log, &c->log_buf, &c->log_len);
}

XLU_Config *glue_cfg_new(const char *source)
{
    XLU_Config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg)
        return NULL;
    cfg->config_source = strdup(source);
    cfg->report = open_memstream(&cfg->report_buf, &cfg->report_len);
    if (!cfg->config_source || !cfg->report)
        abort();
    return cfg;
}

void glue_cfg_free(XLU_Config *cfg)
{
    fclose(cfg->report);
    free(cfg->report_buf);
    free(cfg->config_source);
    free(cfg);
}

char *glue_cfg_take_report(XLU_Config *cfg)
{
    return take_stream(&cfg->report, &cfg->report_buf, &cfg->report_len);
}

int glue_parse(XLU_Config *cfg, const char *const *items, int nitems,
               libxl_domain_config *d_config)
{
    XLU_ConfigList list = { .items = items, .nitems = nitems };

    return xlu_sshm_parse_list(cfg, &list, &d_config->sshms,
                               &d_config->num_sshms);
}

int glue_domain_attach(libxl_ctx *c, uint32_t domid,
                       libxl_domain_config *d_config, int soft_reset)
{
    GC_INIT(c);
    int rc;

    rc = libxl__sshm_setdefault(gc, domid, d_config);
    if (!rc)
        rc = libxl__sshm_attach_all(gc, domid, d_config, soft_reset);
    GC_FREE;
    return rc;
}

char *glue_sshm_list(libxl_ctx *c)
{
    libxl_sshminfo *info;
    char *buf = NULL;
    size_t len = 0;
    FILE *out;
    int nb;

    info = libxl_sshm_list(c, &nb);
    if (!info)
        return NULL;
    out = open_memstream(&buf, &len);
    if (!out)
        abort();
    xl_sshm_print_list(out, info, nb);
    fclose(out);
    libxl_sshminfo_list_free(info, nb);
    return buf;
}

void glue_free(void *p)
{
    free(p);
}
