/* SPDX-License-Identifier: LGPL-2.1-only */
/* Test stand-in for tools/xl/xl_utils.h: options are never parsed here. */
#ifndef GLUE_SHIM_XL_UTILS_H
#define GLUE_SHIM_XL_UTILS_H
#include <getopt.h>
#define SWITCH_FOREACH_OPT(opt, opts, longopts, commandname, num_required) \
    for ((opt) = 0; (opt) && argc && argv; ) switch (opt)
#endif
