/* SPDX-License-Identifier: MIT */
/* Test stand-in for tools/include/xen/sshm.h (a link to the public header). */
#include <sshm.h>
