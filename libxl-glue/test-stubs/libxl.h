/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Test stand-in for the parts of libxl.h and the IDL-generated
 * libxl_types.h that the static_shm code uses.  The types mirror what
 * xen-patches' libxl_types.idl hunk generates (see README.md).
 */
#ifndef GLUE_SHIM_LIBXL_H
#define GLUE_SHIM_LIBXL_H

#include "libxl_osdeps.h"

#define LIBXL_HAVE_STATIC_SHM 1

typedef struct libxl__ctx libxl_ctx;
typedef uint32_t libxl_domid;

typedef struct {
    int val;  /* < 0 false, 0 default, > 0 true */
} libxl_defbool;

void libxl_defbool_set(libxl_defbool *db, bool b);
void libxl_defbool_setdefault(libxl_defbool *db, bool b);
bool libxl_defbool_val(libxl_defbool db);

typedef enum libxl_domain_type {
    LIBXL_DOMAIN_TYPE_INVALID = -1,
    LIBXL_DOMAIN_TYPE_HVM = 1,
    LIBXL_DOMAIN_TYPE_PV = 2,
    LIBXL_DOMAIN_TYPE_PVH = 3,
} libxl_domain_type;

typedef enum libxl_sshm_prot {
    LIBXL_SSHM_PROT_UNKNOWN = 0,
    LIBXL_SSHM_PROT_R = 1,
    LIBXL_SSHM_PROT_RW = 2,
} libxl_sshm_prot;

typedef enum libxl_sshm_role {
    LIBXL_SSHM_ROLE_UNKNOWN = 0,
    LIBXL_SSHM_ROLE_MASTER = 1,
    LIBXL_SSHM_ROLE_SLAVE = 2,
} libxl_sshm_role;

typedef enum libxl_sshm_cachepolicy {
    LIBXL_SSHM_CACHEPOLICY_UNKNOWN = 0,
    LIBXL_SSHM_CACHEPOLICY_ARM_NORMAL = 1,
    LIBXL_SSHM_CACHEPOLICY_X86_NORMAL = 2,
} libxl_sshm_cachepolicy;

#define LIBXL_SSHM_RANGE_UNKNOWN UINT64_MAX

typedef struct libxl_static_shm {
    char *id;
    uint64_t begin;
    uint64_t size;
    uint64_t offset;
    uint64_t region_size;
    libxl_sshm_prot prot;
    libxl_sshm_role role;
    libxl_sshm_cachepolicy cache_policy;
    libxl_defbool persistent;
} libxl_static_shm;

void libxl_static_shm_init(libxl_static_shm *p);
void libxl_static_shm_dispose(libxl_static_shm *p);

typedef struct libxl_sshminfo {
    char *id;
    uint64_t size;
    libxl_sshm_prot prot;
    bool persistent;
    bool building;
    uint32_t nr_attachments;
    libxl_domid creator;
    libxl_domid *domids;
    int num_domids;
} libxl_sshminfo;

void libxl_sshminfo_init(libxl_sshminfo *p);
void libxl_sshminfo_dispose(libxl_sshminfo *p);

typedef struct libxl_domain_build_info {
    libxl_domain_type type;
} libxl_domain_build_info;

typedef struct libxl_domain_config {
    libxl_domain_build_info b_info;
    libxl_static_shm *sshms;
    int num_sshms;
} libxl_domain_config;

void libxl_domain_config_dispose(libxl_domain_config *d_config);

libxl_sshminfo *libxl_sshm_list(libxl_ctx *ctx, int *nb_out);
void libxl_sshminfo_list_free(libxl_sshminfo *list, int nb);
int libxl_sshm_unlink(libxl_ctx *ctx, const char *id);

#endif
