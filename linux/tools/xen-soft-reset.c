// SPDX-License-Identifier: GPL-2.0-only
/*
 * xen-soft-reset: asks Xen for a soft reset of this domain, as a kernel
 * that kexecs does on its way out (SCHEDOP_shutdown with
 * SHUTDOWN_soft_reset, what Linux's xen_hvm_shutdown calls): the toolstack
 * (xl's on_soft_reset, "soft-reset" by default) resets the domain in place,
 * keeping its memory and domid.  Xen drops the domain's V4V rings and its
 * event channels, so the running kernel is left without them: this is a
 * test tool (tests/e2e/dom0/sshm-dev.sh) for what the toolstack and the
 * hypervisor do at a soft reset, not a way to reboot.
 *
 *   xen-soft-reset          needs /dev/xen/privcmd: in a domU,
 *                           insmod xen-privcmd.ko unrestricted=1 (else
 *                           privcmd refuses every hypercall: EPERM)
 *
 * Exit status 1 (with the errno's name on stderr) if Xen refused.  When it
 * accepts, the vCPU stops in the hypercall; what runs afterwards is the
 * same kernel without its event channels, which may print nothing more.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/types.h>

/*
 * Linux's include/uapi/xen/privcmd.h, which user space cannot include (it
 * includes a kernel-only header), as Xen's libxencall copies it too.
 */
struct privcmd_hypercall {
	__u64 op;
	__u64 arg[5];
};

#define IOCTL_PRIVCMD_HYPERCALL _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

/* xen/include/public/xen.h and sched.h. */
#define XEN_HYPERCALL_SCHED_OP 29
#define XEN_SCHEDOP_SHUTDOWN 2
#define XEN_SHUTDOWN_SOFT_RESET 5
#define PRIVCMD_DEV "/dev/xen/privcmd"

struct sched_shutdown {
	uint32_t reason;
};

int main(int argc, char **argv)
{
	struct sched_shutdown arg = { .reason = XEN_SHUTDOWN_SOFT_RESET };
	struct privcmd_hypercall call = {
		.op = XEN_HYPERCALL_SCHED_OP,
		.arg = { XEN_SCHEDOP_SHUTDOWN, (uintptr_t)&arg },
	};
	const char *name;
	long rc;
	int fd;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: xen-soft-reset\n");
		return 2;
	}
	fd = open(PRIVCMD_DEV, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		name = strerrorname_np(errno);
		fprintf(stderr, "xen-soft-reset: %s: %s\n", PRIVCMD_DEV, name ? name : "E?");
		return 1;
	}
	/* The hypercall reads arg from this process's memory. */
	rc = ioctl(fd, IOCTL_PRIVCMD_HYPERCALL, &call);
	if (rc < 0) {
		name = strerrorname_np(errno);
		fprintf(stderr, "xen-soft-reset: SCHEDOP_shutdown(soft_reset): %s\n", name ? name : "E?");
		return 1;
	}
	printf("soft reset done\n");
	return 0;
}
