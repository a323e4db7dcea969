/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libxlu_sshm.c: parsing of the xl config option
 *
 *     static_shm = [ "id=ID, begin=ADDR, size=SIZE, ...", ... ]
 *
 * Accepts the syntax of the 2017-2019 xl static_shm series (keys id, begin,
 * size or end, offset, prot, role, cache_policy) and the keys owner-less
 * regions add (persistent, region_size).  There is no owner domain: the
 * hypervisor owns the pages, so "role" is accepted with a warning.
 *
 * Every entry is checked completely here, before the domain is built, and
 * every error names the config, the entry, the key and the value.
 */

#define _GNU_SOURCE

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>

#include <xen/sshm.h>

#include "libxlu_internal.h"

#define SSHM_PAGE_SIZE   4096ULL
/* Highest guest physical address (exclusive) an attachment may reach. */
#define SSHM_GPA_LIMIT   (XEN_SSHM_GFN_LIMIT * SSHM_PAGE_SIZE)
#define SSHM_REGION_MAX  (XEN_SSHM_REGION_PAGES_MAX * SSHM_PAGE_SIZE)

/* Keys, in the order of the bits recording that they were seen. */
enum {
    SSHM_KEY_ID,
    SSHM_KEY_BEGIN,
    SSHM_KEY_SIZE,
    SSHM_KEY_END,
    SSHM_KEY_OFFSET,
    SSHM_KEY_REGION_SIZE,
    SSHM_KEY_PROT,
    SSHM_KEY_ROLE,
    SSHM_KEY_CACHE_POLICY,
    SSHM_KEY_PERSISTENT,
    SSHM_KEY_NR
};

static const char *const sshm_keys[SSHM_KEY_NR] = {
    [SSHM_KEY_ID]           = "id",
    [SSHM_KEY_BEGIN]        = "begin",
    [SSHM_KEY_SIZE]         = "size",
    [SSHM_KEY_END]          = "end",
    [SSHM_KEY_OFFSET]       = "offset",
    [SSHM_KEY_REGION_SIZE]  = "region_size",
    [SSHM_KEY_PROT]         = "prot",
    [SSHM_KEY_ROLE]         = "role",
    [SSHM_KEY_CACHE_POLICY] = "cache_policy",
    [SSHM_KEY_PERSISTENT]   = "persistent",
};

/* What is being parsed, for messages. */
typedef struct {
    XLU_Config *cfg;
    int idx;
    const char *spec;
} sshm_ctx;

static void sshm_report(const sshm_ctx *sc, const char *what,
                        const char *key, const char *val,
                        const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void sshm_report(const sshm_ctx *sc, const char *what,
                        const char *key, const char *val,
                        const char *fmt, ...)
{
    va_list ap;

    fprintf(sc->cfg->report, "%s: %sstatic_shm[%d] \"%s\": key \"%s\" value \"%s\": ",
            sc->cfg->config_source, what, sc->idx, sc->spec, key, val);
    va_start(ap, fmt);
    vfprintf(sc->cfg->report, fmt, ap);
    va_end(ap);
    fputc('\n', sc->cfg->report);
}

#define SSHM_ERR(sc, key, val, ...) sshm_report(sc, "", key, val, __VA_ARGS__)
#define SSHM_WARN(sc, key, val, ...) \
    sshm_report(sc, "warning: ", key, val, __VA_ARGS__)

/* Decimal, or hexadecimal with 0x; nothing else (no sign, no suffix). */
static int sshm_parse_u64(const char *val, uint64_t *out)
{
    int base = 10;
    const char *digits = val;
    char *end;
    unsigned long long v;

    if (val[0] == '0' && (val[1] == 'x' || val[1] == 'X')) {
        base = 16;
        digits = val + 2;
        if (!isxdigit((unsigned char)digits[0])) return EINVAL;
    } else if (!isdigit((unsigned char)digits[0])) {
        return EINVAL;
    }

    errno = 0;
    v = strtoull(digits, &end, base);
    if (errno || *end) return EINVAL;

    *out = v;
    return 0;
}

/* A page-aligned address or size in bytes. */
static int sshm_parse_addr(const sshm_ctx *sc, const char *key,
                           const char *val, uint64_t *out)
{
    if (sshm_parse_u64(val, out)) {
        SSHM_ERR(sc, key, val,
                 "not a number (decimal, or hexadecimal with 0x)");
        return EINVAL;
    }
    if (*out & (SSHM_PAGE_SIZE - 1)) {
        SSHM_ERR(sc, key, val, "not a multiple of the page size (4096)");
        return EINVAL;
    }
    return 0;
}

static int sshm_check_id(const sshm_ctx *sc, const char *val)
{
    const char *p;

    if (strlen(val) > XEN_SSHM_NAME_LEN_MAX) {
        SSHM_ERR(sc, "id", val, "longer than %d characters",
                 XEN_SSHM_NAME_LEN_MAX);
        return EINVAL;
    }
    for (p = val; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            SSHM_ERR(sc, "id", val,
                     "has characters other than A-Z, a-z, 0-9 and _");
            return EINVAL;
        }
    }
    return 0;
}

static int sshm_handle_key(const sshm_ctx *sc, int key, const char *val,
                           libxl_static_shm *sshm)
{
    const char *k = sshm_keys[key];

    switch (key) {
    case SSHM_KEY_ID:
        if (sshm_check_id(sc, val)) return EINVAL;
        sshm->id = strdup(val);
        if (!sshm->id) return ENOMEM;
        return 0;

    case SSHM_KEY_BEGIN:
        return sshm_parse_addr(sc, k, val, &sshm->begin);

    case SSHM_KEY_SIZE:
    case SSHM_KEY_REGION_SIZE: {
        uint64_t *field = key == SSHM_KEY_SIZE ? &sshm->size
                                               : &sshm->region_size;

        if (sshm_parse_addr(sc, k, val, field)) return EINVAL;
        if (*field == 0) {
            SSHM_ERR(sc, k, val, "size is 0");
            return EINVAL;
        }
        if (*field > SSHM_REGION_MAX) {
            SSHM_ERR(sc, k, val, "larger than the region limit (0x%llx)",
                     SSHM_REGION_MAX);
            return EINVAL;
        }
        return 0;
    }

    case SSHM_KEY_END:
        /* Kept in size until begin is known; converted by the caller. */
        return sshm_parse_addr(sc, k, val, &sshm->size);

    case SSHM_KEY_OFFSET:
        return sshm_parse_addr(sc, k, val, &sshm->offset);

    case SSHM_KEY_PROT:
        if (!strcmp(val, "rw")) {
            sshm->prot = LIBXL_SSHM_PROT_RW;
        } else if (!strcmp(val, "ro") || !strcmp(val, "r")) {
            sshm->prot = LIBXL_SSHM_PROT_R;
        } else {
            SSHM_ERR(sc, k, val, "not rw, ro or r");
            return EINVAL;
        }
        return 0;

    case SSHM_KEY_ROLE:
        if (!strcmp(val, "master")) {
            sshm->role = LIBXL_SSHM_ROLE_MASTER;
        } else if (!strcmp(val, "slave")) {
            sshm->role = LIBXL_SSHM_ROLE_SLAVE;
        } else {
            SSHM_ERR(sc, k, val, "not master or slave");
            return EINVAL;
        }
        SSHM_WARN(sc, k, val,
                  "ignored: regions have no owner domain; the hypervisor "
                  "owns the pages and the first domain to attach creates "
                  "the region");
        return 0;

    case SSHM_KEY_CACHE_POLICY:
        if (!strcmp(val, "x86_normal")) {
            sshm->cache_policy = LIBXL_SSHM_CACHEPOLICY_X86_NORMAL;
        } else if (!strcmp(val, "ARM_normal")) {
#if defined(__i386__) || defined(__x86_64__)
            SSHM_ERR(sc, k, val,
                     "not supported on x86 (only x86_normal is)");
            return EINVAL;
#else
            sshm->cache_policy = LIBXL_SSHM_CACHEPOLICY_ARM_NORMAL;
#endif
        } else {
            SSHM_ERR(sc, k, val, "not x86_normal or ARM_normal");
            return EINVAL;
        }
        return 0;

    case SSHM_KEY_PERSISTENT:
        if (!strcmp(val, "yes") || !strcmp(val, "1") ||
            !strcmp(val, "true")) {
            libxl_defbool_set(&sshm->persistent, true);
        } else if (!strcmp(val, "no") || !strcmp(val, "0") ||
                   !strcmp(val, "false")) {
            libxl_defbool_set(&sshm->persistent, false);
        } else {
            SSHM_ERR(sc, k, val, "not yes or no");
            return EINVAL;
        }
        return 0;
    }

    abort();
}

/* Checks what needs every key of the entry; fills in the defaults. */
static int sshm_check_entry(const sshm_ctx *sc, unsigned int seen,
                            const char *end_val, libxl_static_shm *sshm)
{
    char buf[32];
    uint64_t end, region_size;

    if (!(seen & (1U << SSHM_KEY_ID))) {
        SSHM_ERR(sc, "id", "", "missing (every entry needs an id)");
        return EINVAL;
    }
    if (!(seen & (1U << SSHM_KEY_BEGIN))) {
        SSHM_ERR(sc, "begin", "", "missing (every entry needs begin)");
        return EINVAL;
    }
    if (!(seen & ((1U << SSHM_KEY_SIZE) | (1U << SSHM_KEY_END)))) {
        SSHM_ERR(sc, "size", "", "missing (give size or end)");
        return EINVAL;
    }

    if (seen & (1U << SSHM_KEY_END)) {
        /* end is exclusive: the first address after the range. */
        end = sshm->size;
        if (end <= sshm->begin) {
            SSHM_ERR(sc, "end", end_val, "not above begin (0x%"PRIx64")",
                     sshm->begin);
            return EINVAL;
        }
        sshm->size = end - sshm->begin;
        if (sshm->size > SSHM_REGION_MAX) {
            SSHM_ERR(sc, "end", end_val,
                     "range larger than the region limit (0x%llx)",
                     SSHM_REGION_MAX);
            return EINVAL;
        }
    }

    if (sshm->begin >= SSHM_GPA_LIMIT ||
        sshm->size > SSHM_GPA_LIMIT - sshm->begin) {
        snprintf(buf, sizeof(buf), "0x%"PRIx64, sshm->size);
        SSHM_ERR(sc, "size", buf,
                 "range ends above the guest physical limit (0x%llx)",
                 SSHM_GPA_LIMIT);
        return EINVAL;
    }

    if (sshm->offset == LIBXL_SSHM_RANGE_UNKNOWN)
        sshm->offset = 0;

    region_size = sshm->region_size;
    if (region_size == LIBXL_SSHM_RANGE_UNKNOWN) {
        if (sshm->offset > SSHM_REGION_MAX - sshm->size) {
            snprintf(buf, sizeof(buf), "0x%"PRIx64, sshm->offset);
            SSHM_ERR(sc, "offset", buf,
                     "outside the largest region (0x%llx bytes)",
                     SSHM_REGION_MAX);
            return EINVAL;
        }
    } else if (sshm->offset >= region_size ||
               sshm->size > region_size - sshm->offset) {
        snprintf(buf, sizeof(buf), "0x%"PRIx64, sshm->offset);
        SSHM_ERR(sc, "offset", buf,
                 "range 0x%"PRIx64"+0x%"PRIx64" outside the region "
                 "(region_size 0x%"PRIx64")",
                 sshm->offset, sshm->size, region_size);
        return EINVAL;
    }

    if (sshm->prot == LIBXL_SSHM_PROT_UNKNOWN)
        sshm->prot = LIBXL_SSHM_PROT_RW;
    libxl_defbool_setdefault(&sshm->persistent, false);

    return 0;
}

int xlu_sshm_parse(XLU_Config *cfg, int idx, const char *spec,
                   libxl_static_shm *sshm)
{
    sshm_ctx sc = { .cfg = cfg, .idx = idx, .spec = spec };
    char *buf, *tok, *next, *eq, *key, *val, *end_val = NULL;
    unsigned int seen = 0;
    int i, rc;

    buf = strdup(spec);
    if (!buf) return ENOMEM;

    for (tok = buf; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';

        /* Trim; empty items (as after a trailing comma) are skipped. */
        while (isspace((unsigned char)*tok)) tok++;
        for (i = strlen(tok); i > 0 && isspace((unsigned char)tok[i - 1]); i--)
            tok[i - 1] = '\0';
        if (!*tok) continue;

        eq = strchr(tok, '=');
        if (!eq) {
            SSHM_ERR(&sc, tok, "", "no value (expected key=value)");
            rc = EINVAL;
            goto out;
        }
        *eq = '\0';
        key = tok;
        val = eq + 1;
        for (i = strlen(key); i > 0 && isspace((unsigned char)key[i - 1]); i--)
            key[i - 1] = '\0';
        while (isspace((unsigned char)*val)) val++;

        for (i = 0; i < SSHM_KEY_NR; i++)
            if (!strcmp(key, sshm_keys[i])) break;
        if (i == SSHM_KEY_NR) {
            SSHM_ERR(&sc, key, val, "unknown key");
            rc = EINVAL;
            goto out;
        }
        if (seen & (1U << i)) {
            SSHM_ERR(&sc, key, val, "key given twice");
            rc = EINVAL;
            goto out;
        }
        if ((i == SSHM_KEY_SIZE && (seen & (1U << SSHM_KEY_END))) ||
            (i == SSHM_KEY_END && (seen & (1U << SSHM_KEY_SIZE)))) {
            SSHM_ERR(&sc, key, val, "conflicts with %s (give one of them)",
                     i == SSHM_KEY_SIZE ? "end" : "size");
            rc = EINVAL;
            goto out;
        }
        if (!*val) {
            SSHM_ERR(&sc, key, val, "empty value");
            rc = EINVAL;
            goto out;
        }
        seen |= 1U << i;
        if (i == SSHM_KEY_END) end_val = val;

        rc = sshm_handle_key(&sc, i, val, sshm);
        if (rc) goto out;
    }

    rc = sshm_check_entry(&sc, seen, end_val ? end_val : "", sshm);

 out:
    free(buf);
    return rc;
}

/* Checks the entries of one config against each other. */
static int sshm_check_list(XLU_Config *cfg, XLU_ConfigList *list,
                           const libxl_static_shm *sshms, int num)
{
    int i, j;
    char buf[32];

    for (i = 0; i < num; i++) {
        sshm_ctx sc = {
            .cfg = cfg, .idx = i, .spec = xlu_cfg_get_listitem(list, i),
        };

        for (j = 0; j < i; j++) {
            if (!strcmp(sshms[i].id, sshms[j].id)) {
                SSHM_ERR(&sc, "id", sshms[i].id,
                         "already used by static_shm[%d]", j);
                return EINVAL;
            }
            if (sshms[i].begin < sshms[j].begin + sshms[j].size &&
                sshms[j].begin < sshms[i].begin + sshms[i].size) {
                snprintf(buf, sizeof(buf), "0x%"PRIx64, sshms[i].begin);
                SSHM_ERR(&sc, "begin", buf,
                         "range 0x%"PRIx64"-0x%"PRIx64" overlaps "
                         "static_shm[%d] (0x%"PRIx64"-0x%"PRIx64")",
                         sshms[i].begin, sshms[i].begin + sshms[i].size,
                         j, sshms[j].begin, sshms[j].begin + sshms[j].size);
                return EINVAL;
            }
        }
    }

    return 0;
}

int xlu_sshm_parse_list(XLU_Config *cfg, XLU_ConfigList *list,
                        libxl_static_shm **sshms_r, int *num_r)
{
    libxl_static_shm *sshms;
    int num, i, rc;

    for (num = 0; xlu_cfg_get_listitem(list, num); num++)
        ;
    if (num > XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX) {
        fprintf(cfg->report, "%s: static_shm: %d entries, at most %d\n",
                cfg->config_source, num, XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX);
        return EINVAL;
    }

    sshms = calloc(num ? num : 1, sizeof(*sshms));
    if (!sshms) return ENOMEM;
    for (i = 0; i < num; i++)
        libxl_static_shm_init(&sshms[i]);

    for (i = 0; i < num; i++) {
        rc = xlu_sshm_parse(cfg, i, xlu_cfg_get_listitem(list, i), &sshms[i]);
        if (rc) goto err;
    }

    rc = sshm_check_list(cfg, list, sshms, num);
    if (rc) goto err;

    *sshms_r = sshms;
    *num_r = num;
    return 0;

 err:
    for (i = 0; i < num; i++)
        libxl_static_shm_dispose(&sshms[i]);
    free(sshms);
    return rc;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
