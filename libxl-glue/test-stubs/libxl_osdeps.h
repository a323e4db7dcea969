/* SPDX-License-Identifier: LGPL-2.1-only */
/* Test stand-in for tools/libs/light/libxl_osdeps.h. */
#ifndef GLUE_SHIM_LIBXL_OSDEPS_H
#define GLUE_SHIM_LIBXL_OSDEPS_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif
