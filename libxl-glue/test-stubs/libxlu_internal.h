/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Test stand-in for tools/libs/util/libxlu_internal.h: a config is a source
 * name and a report stream; a list is an array of strings.
 */
#ifndef GLUE_SHIM_LIBXLU_INTERNAL_H
#define GLUE_SHIM_LIBXLU_INTERNAL_H
#include "glue.h"
struct XLU_Config {
    FILE *report;
    char *config_source;
    char *report_buf;
    size_t report_len;
};
struct XLU_ConfigList {
    const char *const *items;
    int nitems;
};
#endif
