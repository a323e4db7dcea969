/* SPDX-License-Identifier: LGPL-2.1-only */
/* Test stand-in for tools/libs/light/libxl_utils.h (nothing needed). */
