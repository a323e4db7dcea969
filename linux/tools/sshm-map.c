// SPDX-License-Identifier: GPL-2.0-only
/*
 * sshm-map: static shared memory regions by name, through the xen_sshm
 * module's devices (/dev/xen-sshm/NAME; linux/sshm.c).
 *
 *   sshm-map list                      one line per region: name, size,
 *                                      prot, guest physical begin, offset
 *   sshm-map read NAME OFFSET LEN      prints LEN bytes at OFFSET, C-escaped
 *   sshm-map write NAME OFFSET DATA    writes DATA: a string, or bytes in
 *                                      hex after "hex:" (hex:deadbeef)
 *   sshm-map wait NAME OFFSET DATA SECS
 *                                      polls until DATA is at OFFSET
 *   sshm-map probe NAME                tries opening for writing, then
 *                                      through the widest open that works
 *                                      shared, private, writable and
 *                                      out-of-range mappings and mprotect;
 *                                      one line per attempt: ok or errno
 *   sshm-map xs-read PATH              xenstore through /dev/xen/xenbus, as
 *   sshm-map xs-write PATH VALUE       this guest (relative paths are under
 *   sshm-map xs-rm PATH                its /local/domain/DOMID)
 *
 * Numbers are decimal or 0x hex.  Exit status 0 on success, 1 on failure
 * (with the errno's name on stderr), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEV_DIR "/dev/xen-sshm"
#define SYS_DIR "/sys/class/misc"
#define SYS_PREFIX "xen-sshm!"
#define XENBUS_DEV "/dev/xen/xenbus"
#define REGIONS_MAX 64
#define DATA_MAX 4096

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static int fail(const char *what, int e)
{
	fprintf(stderr, "sshm-map: %s: %s (%s)\n", what, strerror(e), errname(e));
	return 1;
}

static int number(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || !*s || *end || *s == '-' ? -1 : 0;
}

/* Reads /sys/class/misc/xen-sshm!NAME/ATTR into buf, newline dropped. */
static int attr(const char *name, const char *a, char *buf, size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYS_DIR "/" SYS_PREFIX "%s/%s", name, a);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int region_size(const char *name, uint64_t *size)
{
	char buf[64];

	if (attr(name, "size", buf, sizeof(buf)) || number(buf, size)) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_list(void)
{
	char *names[REGIONS_MAX];
	char size[64], prot[8], begin[64], offset[64];
	struct dirent *d;
	int i, n = 0;
	DIR *dir;

	dir = opendir(SYS_DIR);
	if (!dir)
		return fail(SYS_DIR, errno);
	while ((d = readdir(dir)) && n < REGIONS_MAX)
		if (!strncmp(d->d_name, SYS_PREFIX, strlen(SYS_PREFIX)))
			names[n++] = strdup(d->d_name + strlen(SYS_PREFIX));
	closedir(dir);
	qsort(names, n, sizeof(*names), cmp);
	for (i = 0; i < n; i++) {
		if (attr(names[i], "size", size, sizeof(size)) ||
		    attr(names[i], "prot", prot, sizeof(prot)) ||
		    attr(names[i], "begin", begin, sizeof(begin)) ||
		    attr(names[i], "offset", offset, sizeof(offset)))
			return fail(names[i], errno);
		printf("%s size %s %s begin %s offset %s\n", names[i], size, prot,
		       begin, offset);
		free(names[i]);
	}
	return 0;
}

/*
 * Maps the pages of region NAME that hold [off, off + len) and returns a
 * pointer to off; *base and *maplen are what to munmap.
 */
static char *map(const char *name, uint64_t off, uint64_t len, int writable,
		 void **base, size_t *maplen)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t size, first;
	char path[256];
	void *p;
	int fd;

	if (region_size(name, &size))
		return NULL;
	if (off > size || len > size - off) {
		errno = ERANGE;
		return NULL;
	}
	first = off & ~(uint64_t)(page - 1);
	*maplen = (off + len - first + page - 1) & ~(uint64_t)(page - 1);
	if (!*maplen)
		*maplen = page;
	snprintf(path, sizeof(path), DEV_DIR "/%s", name);
	fd = open(path, writable ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return NULL;
	p = mmap(NULL, *maplen, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED, fd, first);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	*base = p;
	return (char *)p + (off - first);
}

/* DATA as bytes: a string, or hex after "hex:". Returns the length. */
static long data_of(const char *s, unsigned char *out)
{
	size_t i, n;

	if (strncmp(s, "hex:", 4)) {
		n = strlen(s);
		if (n > DATA_MAX)
			return -1;
		memcpy(out, s, n);
		return n;
	}
	s += 4;
	n = strlen(s);
	if (n % 2 || n / 2 > DATA_MAX)
		return -1;
	for (i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = b;
	}
	return n / 2;
}

static void print_escaped(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\\')
			fputs("\\\\", stdout);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	}
	putchar('\n');
}

static int cmd_read(const char *name, uint64_t off, uint64_t len)
{
	size_t maplen;
	void *base;
	char *p;

	if (len > DATA_MAX)
		return fail("read: LEN", EINVAL);
	p = map(name, off, len, 0, &base, &maplen);
	if (!p)
		return fail(name, errno);
	print_escaped((unsigned char *)p, len);
	munmap(base, maplen);
	return 0;
}

static int cmd_write(const char *name, uint64_t off, const char *data)
{
	unsigned char buf[DATA_MAX];
	long n = data_of(data, buf);
	size_t maplen;
	void *base;
	char *p;

	if (n < 0)
		return fail("write: DATA", EINVAL);
	p = map(name, off, n, 1, &base, &maplen);
	if (!p)
		return fail(name, errno);
	memcpy(p, buf, n);
	munmap(base, maplen);
	printf("wrote %ld bytes at 0x%llx of %s\n", n, (unsigned long long)off,
	       name);
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_wait(const char *name, uint64_t off, const char *data,
		    uint64_t secs)
{
	unsigned char buf[DATA_MAX];
	long n = data_of(data, buf);
	double end = now() + secs;
	size_t maplen;
	void *base;
	char *p;

	if (n < 0)
		return fail("wait: DATA", EINVAL);
	p = map(name, off, n, 0, &base, &maplen);
	if (!p)
		return fail(name, errno);
	for (;;) {
		if (!memcmp(p, buf, n)) {
			printf("found \"%s\" at 0x%llx of %s\n", data,
			       (unsigned long long)off, name);
			munmap(base, maplen);
			return 0;
		}
		if (now() >= end)
			break;
		usleep(100 * 1000);
	}
	printf("timeout after %llu s: 0x%llx of %s holds ",
	       (unsigned long long)secs, (unsigned long long)off, name);
	print_escaped((unsigned char *)p, n);
	munmap(base, maplen);
	return 1;
}

/* One probe line: what was tried, "ok" or the errno's name. */
static void report(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : errname(errno));
}

static int cmd_probe(const char *name)
{
	long page = sysconf(_SC_PAGESIZE);
	char path[256];
	uint64_t size;
	void *p;
	int fd;

	if (region_size(name, &size))
		return fail(name, errno);
	snprintf(path, sizeof(path), DEV_DIR "/%s", name);

	fd = open(path, O_RDWR);
	report("open O_RDWR", fd >= 0);
	if (fd >= 0)
		close(fd);
	fd = open(path, O_WRONLY);
	report("open O_WRONLY", fd >= 0);
	if (fd >= 0)
		close(fd);

	/* The mappings below through the widest open that works. */
	fd = open(path, O_RDWR);
	if (fd < 0)
		fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail(path, errno);
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	report("mmap PROT_WRITE MAP_SHARED", p != MAP_FAILED);
	if (p != MAP_FAILED)
		munmap(p, page);
	p = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
	report("mmap MAP_PRIVATE", p != MAP_FAILED);
	if (p != MAP_FAILED)
		munmap(p, page);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	report("mmap PROT_READ MAP_SHARED", p != MAP_FAILED);
	if (p != MAP_FAILED) {
		report("mprotect PROT_WRITE",
		       !mprotect(p, page, PROT_READ | PROT_WRITE));
		munmap(p, page);
	}
	p = mmap(NULL, size + page, PROT_READ, MAP_SHARED, fd, 0);
	report("mmap size+1 page", p != MAP_FAILED);
	if (p != MAP_FAILED)
		munmap(p, size + page);
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, size);
	report("mmap at offset size", p != MAP_FAILED);
	if (p != MAP_FAILED)
		munmap(p, page);
	close(fd);
	return 0;
}

/* The xenstore wire protocol (xen/io/xs_wire.h) over /dev/xen/xenbus. */
enum { XS_READ = 2, XS_WRITE = 11, XS_RM = 13, XS_ERROR = 16 };
struct xsd_sockmsg {
	uint32_t type, req_id, tx_id, len;
};
#define XS_PAYLOAD_MAX 4096

static const struct {
	const char *name;
	int err;
} xs_errors[] = {
	{ "EINVAL", EINVAL }, { "EACCES", EACCES }, { "EEXIST", EEXIST },
	{ "EISDIR", EISDIR }, { "ENOENT", ENOENT }, { "ENOMEM", ENOMEM },
	{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "ENOTEMPTY", ENOTEMPTY },
	{ "ENOSYS", ENOSYS }, { "EROFS", EROFS }, { "EBUSY", EBUSY },
	{ "EAGAIN", EAGAIN }, { "EISCONN", EISCONN }, { "E2BIG", E2BIG },
	{ "EPERM", EPERM },
};

/* One request; the reply's payload (NUL-terminated) in out. */
static int xs_request(uint32_t type, const char *a, const char *b,
		      char *out, size_t outlen)
{
	struct {
		struct xsd_sockmsg h;
		char body[XS_PAYLOAD_MAX];
	} msg;
	size_t la = strlen(a) + 1, lb = b ? strlen(b) : 0;
	ssize_t n;
	size_t i;
	int fd;

	if (la + lb > XS_PAYLOAD_MAX) {
		errno = E2BIG;
		return -1;
	}
	memset(&msg.h, 0, sizeof(msg.h));
	msg.h.type = type;
	msg.h.req_id = 1;
	msg.h.len = la + lb;
	memcpy(msg.body, a, la);
	if (b)
		memcpy(msg.body + la, b, lb);
	fd = open(XENBUS_DEV, O_RDWR);
	if (fd < 0)
		return -1;
	n = write(fd, &msg, sizeof(msg.h) + msg.h.len);
	if (n != (ssize_t)(sizeof(msg.h) + msg.h.len)) {
		close(fd);
		if (n >= 0)
			errno = EIO;
		return -1;
	}
	n = read(fd, &msg, sizeof(msg));
	close(fd);
	if (n < (ssize_t)sizeof(msg.h) || msg.h.len > XS_PAYLOAD_MAX ||
	    n < (ssize_t)(sizeof(msg.h) + msg.h.len)) {
		if (n >= 0)
			errno = EIO;
		return -1;
	}
	if (msg.h.type == XS_ERROR) {
		msg.body[msg.h.len ? msg.h.len - 1 : 0] = '\0';
		for (i = 0; i < sizeof(xs_errors) / sizeof(xs_errors[0]); i++)
			if (!strcmp(msg.body, xs_errors[i].name)) {
				errno = xs_errors[i].err;
				return -1;
			}
		errno = EIO;
		return -1;
	}
	if (out) {
		size_t l = msg.h.len < outlen - 1 ? msg.h.len : outlen - 1;

		memcpy(out, msg.body, l);
		out[l] = '\0';
	}
	return 0;
}

static int cmd_xs(int argc, char **argv)
{
	char out[XS_PAYLOAD_MAX + 1];
	const char *op = argv[1];

	if (!strcmp(op, "xs-read") && argc == 3) {
		if (xs_request(XS_READ, argv[2], NULL, out, sizeof(out)))
			return fail(argv[2], errno);
		printf("%s\n", out);
		return 0;
	}
	if (!strcmp(op, "xs-write") && argc == 4) {
		if (xs_request(XS_WRITE, argv[2], argv[3], NULL, 0))
			return fail(argv[2], errno);
		printf("ok\n");
		return 0;
	}
	if (!strcmp(op, "xs-rm") && argc == 3) {
		if (xs_request(XS_RM, argv[2], NULL, NULL, 0))
			return fail(argv[2], errno);
		printf("ok\n");
		return 0;
	}
	return -1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: sshm-map list\n"
		"       sshm-map read NAME OFFSET LEN\n"
		"       sshm-map write NAME OFFSET DATA|hex:HEX\n"
		"       sshm-map wait NAME OFFSET DATA|hex:HEX SECS\n"
		"       sshm-map probe NAME\n"
		"       sshm-map xs-read PATH | xs-write PATH VALUE | xs-rm PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t a, b;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "list") && argc == 2)
		return cmd_list();
	if (!strcmp(argv[1], "read") && argc == 5 && !number(argv[3], &a) &&
	    !number(argv[4], &b))
		return cmd_read(argv[2], a, b);
	if (!strcmp(argv[1], "write") && argc == 5 && !number(argv[3], &a))
		return cmd_write(argv[2], a, argv[4]);
	if (!strcmp(argv[1], "wait") && argc == 6 && !number(argv[3], &a) &&
	    !number(argv[5], &b))
		return cmd_wait(argv[2], a, argv[4], b);
	if (!strcmp(argv[1], "probe") && argc == 3)
		return cmd_probe(argv[2]);
	if (!strncmp(argv[1], "xs-", 3)) {
		rc = cmd_xs(argc, argv);
		if (rc >= 0)
			return rc;
	}
	return usage();
}
