// SPDX-License-Identifier: GPL-2.0-only
/*
 * V4V as an AF_VSOCK transport (linux/README.md). Skeleton.
 */
#include <linux/module.h>

static int __init v4v_vsock_init(void)
{
	return 0;
}

static void __exit v4v_vsock_exit(void)
{
}

module_init(v4v_vsock_init);
module_exit(v4v_vsock_exit);
MODULE_DESCRIPTION("V4V transport for AF_VSOCK");
MODULE_LICENSE("GPL");
