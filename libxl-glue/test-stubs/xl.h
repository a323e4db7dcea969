/* SPDX-License-Identifier: LGPL-2.1-only */
/* Test stand-in for tools/xl/xl.h. */
#ifndef GLUE_SHIM_XL_H
#define GLUE_SHIM_XL_H
#include "glue.h"
extern libxl_ctx *ctx;
#endif
