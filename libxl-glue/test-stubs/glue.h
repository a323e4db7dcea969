/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Every function of the static_shm toolstack glue, as the Rust tests see
 * it (bindgen reads this header).  In the Xen tree the same prototypes go
 * into xenctrl.h, libxlutil.h, libxl.h, libxl_internal.h and xl.h.
 */
#ifndef GLUE_SHIM_GLUE_H
#define GLUE_SHIM_GLUE_H

#include "libxl.h"
#include "xc_private.h"

/* xenctrl.h */
int xc_sshm_create(xc_interface *xch, uint32_t domid, const char *name,
                   uint64_t nr_pages, uint32_t prot, uint32_t flags);
int xc_sshm_attach(xc_interface *xch, uint32_t domid, const char *name,
                   uint64_t gfn, uint64_t offset, uint64_t nr_pages,
                   uint64_t size_pages, uint32_t prot, uint32_t flags);
int xc_sshm_detach(xc_interface *xch, uint32_t domid, const char *name,
                   uint64_t gfn, uint64_t nr_pages);
int xc_sshm_unlink(xc_interface *xch, const char *name);
int xc_sshm_info(xc_interface *xch, const char *name,
                 xen_sshm_entry_t *entry);
int xc_sshm_list(xc_interface *xch, char cursor[XEN_SSHM_NAME_BYTES],
                 xen_sshm_entry_t *entries, uint32_t max_entries);

/* libxlutil.h */
typedef struct XLU_Config XLU_Config;
typedef struct XLU_ConfigList XLU_ConfigList;
const char *xlu_cfg_get_listitem(const XLU_ConfigList *list, int entry);
int xlu_sshm_parse(XLU_Config *cfg, int idx, const char *spec,
                   libxl_static_shm *sshm);
int xlu_sshm_parse_list(XLU_Config *cfg, XLU_ConfigList *list,
                        libxl_static_shm **sshms_r, int *num_r);

/* xl.h */
int main_sshm_list(int argc, char **argv);
int main_sshm_unlink(int argc, char **argv);
void xl_sshm_print_list(FILE *out, const libxl_sshminfo *info, int nb);

/* The test harness (test-stubs/harness.c). */
xc_interface *glue_xc_open(unsigned int handle);
void glue_xc_close(xc_interface *xch);
libxl_ctx *glue_ctx_new(xc_interface *xch);
void glue_ctx_free(libxl_ctx *ctx);
/* The text logged or reported so far, NUL-terminated; cleared. Free it. */
char *glue_ctx_take_log(libxl_ctx *ctx);
XLU_Config *glue_cfg_new(const char *source);
void glue_cfg_free(XLU_Config *cfg);
char *glue_cfg_take_report(XLU_Config *cfg);
/* xl_parse.c's static_shm step over an array of entries. */
int glue_parse(XLU_Config *cfg, const char *const *items, int nitems,
               libxl_domain_config *d_config);
/* libxl's create steps: setdefault, then attach after the build (or,
 * soft_reset set, what a soft reset's rebuild does instead). */
int glue_domain_attach(libxl_ctx *ctx, uint32_t domid,
                       libxl_domain_config *d_config, int soft_reset);
/* libxl_sshm_list() printed by xl sshm-list; NULL on failure. Free it. */
char *glue_sshm_list(libxl_ctx *ctx);
void glue_free(void *p);

#endif
