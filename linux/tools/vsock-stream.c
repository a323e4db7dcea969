// SPDX-License-Identifier: GPL-2.0-only
/*
 * vsock-stream: streams over AF_VSOCK with a checksum, round-trip latency
 * and connection churn, for the examples and e2e tests (linux/README.md).
 *
 *   vsock-stream listen PORT [CONNS]     receive CONNS streams (default 1),
 *                                        one after the other, each to EOF
 *   vsock-stream send CID PORT BYTES     send BYTES of a fixed pattern
 *   vsock-stream duplex-listen PORT BYTES
 *   vsock-stream duplex CID PORT BYTES   send BYTES and receive the peer's
 *                                        at the same time on one connection
 *   vsock-stream echo PORT [CONNS]       echo what each connection sends
 *                                        (CONNS: 0 = forever, the default)
 *   vsock-stream ping CID PORT SIZE COUNT   COUNT round trips of SIZE bytes
 *   vsock-stream churn CID PORT COUNT    COUNT connections to an echo
 *                                        server, one byte each way
 *   vsock-stream seq-listen PORT COUNT   SOCK_SEQPACKET: receive COUNT
 *                                        messages, then EOF; each recv must
 *                                        return exactly the next message
 *   vsock-stream seq-send CID PORT COUNT SOCK_SEQPACKET: send COUNT
 *                                        messages of the sizes in
 *                                        seq_sizes[], in turn, with MSG_EOR
 *
 * Every result is one line: key=value pairs after the mode's name, e.g.
 *   recv bytes=67108864 sum=1a2b3c4d5e6f7081 peer=5:1024 end=eof secs=12.3 MiBps=5.2
 * The checksum is Fletcher-like (two 32-bit running sums over the bytes,
 * order-sensitive), so sender and receiver print the same sum for the same
 * stream. Exit status: 0 on success, 1 on an error (printed), 2 on bad
 * usage, 3 when a stream ended with a reset. Connecting gives up after
 * VSOCK_CONNECT_SECS (environment; default 30) seconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK		(64 * 1024)
/* The pattern repeats every PERIOD bytes (a prime: not a multiple of any
 * chunk or ring size).
 */
#define PERIOD		65521
#define PING_SIZE_MAX	(1024 * 1024)
#define COUNT_MAX	1000000
/* The largest seqpacket message: below the peer's 256 KiB receive buffer
 * (a larger message is refused with EMSGSIZE).
 */
#define SEQ_MSG_MAX	(200 * 1000)
/* Connect timeout (VSOCK_CONNECT_SECS overrides it). */
#define CONNECT_SECS	30

static unsigned char pattern[PERIOD + CHUNK];

struct sum {
	uint32_t a, b;
};

static void sum_add(struct sum *s, const unsigned char *p, size_t n)
{
	uint32_t a = s->a, b = s->b;
	size_t i;

	for (i = 0; i < n; i++) {
		a += p[i];
		b += a;
	}
	s->a = a;
	s->b = b;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void make_pattern(void)
{
	uint32_t x = 2463534242u;
	size_t i;

	for (i = 0; i < PERIOD; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		pattern[i] = (unsigned char)x;
	}
	/* So that any CHUNK bytes from an offset below PERIOD continue it. */
	for (; i < sizeof(pattern); i++)
		pattern[i] = pattern[i - PERIOD];
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vsock-stream listen PORT [CONNS] | send CID PORT BYTES |\n"
		"       duplex-listen PORT BYTES | duplex CID PORT BYTES |\n"
		"       echo PORT [CONNS] | ping CID PORT SIZE COUNT | churn CID PORT COUNT |\n"
		"       seq-listen PORT COUNT | seq-send CID PORT COUNT\n");
	exit(2);
}

static unsigned long long number(const char *s, unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "vsock-stream: bad number '%s' (at most %llu)\n", s, max);
		exit(2);
	}
	return v;
}

/* Seqpacket message sizes, in turn: around a page, around the 64 KiB
 * packet limit (a message of more than one packet), and the largest.
 */
static const size_t seq_sizes[] = {
	1, 2, 63, 1000, 4095, 4096, 4097, 32768, 65535, 65536, 65537, 100000,
	SEQ_MSG_MAX,
};
#define SEQ_SIZES	(sizeof(seq_sizes) / sizeof(seq_sizes[0]))

static int sock_type = SOCK_STREAM;

static int vsock_socket(void)
{
	int fd = socket(AF_VSOCK, sock_type, 0);

	if (fd < 0) {
		printf("error socket: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static int do_connect(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	const char *env = getenv("VSOCK_CONNECT_SECS");
	struct timeval tv = { .tv_sec = env ? atoi(env) : CONNECT_SECS };
	int fd = vsock_socket();

	/* The kernel's default is 2 s, short for a loaded TCG host. */
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD, &tv, sizeof(tv)))
		printf("warning: connect timeout not set: %s\n", strerror(errno));

	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		printf("error connect cid=%u port=%u: %s\n", cid, port, strerror(errno));
		fflush(stdout);
		exit(1);
	}
	return fd;
}

static int do_listen(unsigned int port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				 .svm_port = port };
	int fd = vsock_socket();

	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		printf("error listen port=%u: %s\n", port, strerror(errno));
		exit(1);
	}
	printf("listening port=%u\n", port);
	fflush(stdout);
	return fd;
}

static int do_accept(int lfd, struct sockaddr_vm *peer)
{
	socklen_t len = sizeof(*peer);
	int fd = accept(lfd, (struct sockaddr *)peer, &len);

	if (fd < 0) {
		printf("error accept: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, unsigned char *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void report(const char *what, unsigned long long bytes, const struct sum *s,
		   const struct sockaddr_vm *peer, const char *end, double secs)
{
	printf("%s bytes=%llu sum=%08x%08x", what, bytes, s->a, s->b);
	if (peer)
		printf(" peer=%u:%u", peer->svm_cid, peer->svm_port);
	if (end)
		printf(" end=%s", end);
	printf(" secs=%.2f MiBps=%.2f\n", secs, secs > 0 ? bytes / secs / 1048576 : 0.0);
	fflush(stdout);
}

/* Receives to EOF; 0, or 3 after a reset. */
static int recv_stream(int fd, const struct sockaddr_vm *peer)
{
	static unsigned char buf[CHUNK];
	unsigned long long bytes = 0;
	struct sum s = { 0, 0 };
	const char *end = "eof";
	double t0 = now();

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			end = errno == ECONNRESET ? "reset" : strerror(errno);
			break;
		}
		if (r == 0)
			break;
		sum_add(&s, buf, (size_t)r);
		bytes += (unsigned long long)r;
	}
	report("recv", bytes, &s, peer, end, now() - t0);
	return strcmp(end, "eof") ? 3 : 0;
}

static int send_stream(int fd, unsigned long long bytes)
{
	unsigned long long off = 0;
	struct sum s = { 0, 0 };
	double t0 = now();

	while (off < bytes) {
		size_t n = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;
		const unsigned char *p = pattern + off % PERIOD;

		if (write_all(fd, p, n)) {
			printf("error send after %llu bytes: %s\n", off, strerror(errno));
			return errno == ECONNRESET || errno == EPIPE ? 3 : 1;
		}
		sum_add(&s, p, n);
		off += n;
	}
	shutdown(fd, SHUT_WR);
	report("sent", bytes, &s, NULL, NULL, now() - t0);
	return 0;
}

/* Sends `bytes` and receives to EOF at once. */
static int duplex_stream(int fd, unsigned long long bytes, const struct sockaddr_vm *peer)
{
	static unsigned char buf[CHUNK];
	unsigned long long off = 0, got = 0;
	struct sum ss = { 0, 0 }, rs = { 0, 0 };
	const char *end = NULL;
	double t0 = now(), tsent = 0;
	int wr_open = 1;

	if (!bytes) {
		shutdown(fd, SHUT_WR);
		wr_open = 0;
	}
	/* Until the peer's EOF and the end of our own stream. */
	while (!end || wr_open) {
		struct pollfd p = { .fd = fd, .events = (end ? 0 : POLLIN) | (wr_open ? POLLOUT : 0) };

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			end = strerror(errno);
			break;
		}
		if (!end && (p.revents & POLLIN || p.revents & (POLLHUP | POLLERR))) {
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (r > 0) {
				sum_add(&rs, buf, (size_t)r);
				got += (unsigned long long)r;
			} else if (r == 0) {
				end = "eof";
			} else if (errno != EAGAIN && errno != EINTR) {
				end = errno == ECONNRESET ? "reset" : strerror(errno);
			}
		}
		if (wr_open && p.revents & POLLOUT) {
			size_t n = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;
			const unsigned char *q = pattern + off % PERIOD;
			ssize_t w = send(fd, q, n, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (w > 0) {
				sum_add(&ss, q, (size_t)w);
				off += (unsigned long long)w;
				if (off == bytes) {
					shutdown(fd, SHUT_WR);
					wr_open = 0;
					tsent = now() - t0;
				}
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				end = errno == ECONNRESET || errno == EPIPE ? "reset" : strerror(errno);
				wr_open = 0;
				tsent = now() - t0;
			}
		} else if (wr_open && end && p.revents & (POLLHUP | POLLERR)) {
			/* The connection is gone: nothing more can be sent. */
			wr_open = 0;
			tsent = now() - t0;
		}
	}
	report("sent", off, &ss, peer, NULL, tsent);
	report("recv", got, &rs, peer, end, now() - t0);
	return strcmp(end, "eof") || off != bytes ? 3 : 0;
}

static int echo_conn(int fd)
{
	static unsigned char buf[CHUNK];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (write_all(fd, buf, (size_t)r))
			return 0;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int ping(unsigned int cid, unsigned int port, size_t size, unsigned int count)
{
	static unsigned char buf[PING_SIZE_MAX];
	double *rtt = calloc(count, sizeof(*rtt)), total = 0;
	int fd = do_connect(cid, port);
	unsigned int i;

	if (!rtt)
		return 1;
	for (i = 0; i < count; i++) {
		const unsigned char *p = pattern + (i * 31u) % PERIOD;
		double t0 = now();

		/* Payloads past CHUNK repeat the pattern's start. */
		if (write_all(fd, p, size < CHUNK ? size : CHUNK) ||
		    (size > CHUNK && write_all(fd, pattern, size - CHUNK)) ||
		    read_all(fd, buf, size)) {
			printf("error ping round %u: %s\n", i, strerror(errno));
			return 1;
		}
		rtt[i] = now() - t0;
		total += rtt[i];
		if (memcmp(buf, p, size < CHUNK ? size : CHUNK)) {
			printf("error ping round %u: echo differs\n", i);
			return 1;
		}
	}
	close(fd);
	qsort(rtt, count, sizeof(*rtt), cmp_double);
	printf("ping size=%zu count=%u avg_us=%.0f min_us=%.0f median_us=%.0f max_us=%.0f\n",
	       size, count, total / count * 1e6, rtt[0] * 1e6, rtt[count / 2] * 1e6,
	       rtt[count - 1] * 1e6);
	fflush(stdout);
	free(rtt);
	return 0;
}

static int churn(unsigned int cid, unsigned int port, unsigned int count)
{
	double t0 = now();
	unsigned int i;

	for (i = 0; i < count; i++) {
		unsigned char b = (unsigned char)i, r = 0;
		int fd = do_connect(cid, port);

		if (write_all(fd, &b, 1) || read_all(fd, &r, 1) || r != b) {
			printf("error churn connection %u: %s\n", i, strerror(errno));
			return 1;
		}
		close(fd);
	}
	printf("churn count=%u secs=%.2f\n", count, now() - t0);
	fflush(stdout);
	return 0;
}

/* Message i: SIZE bytes of the pattern from an offset that depends on i. */
static size_t seq_fill(unsigned char *buf, unsigned int i)
{
	size_t size = seq_sizes[i % SEQ_SIZES], off = (i * 7919u) % PERIOD, n;

	for (n = 0; n < size; n++)
		buf[n] = pattern[(off + n) % PERIOD];
	return size;
}

static int seq_send(int fd, unsigned int count)
{
	static unsigned char buf[SEQ_MSG_MAX];
	unsigned long long bytes = 0;
	struct sum s = { 0, 0 };
	double t0 = now(), secs;
	unsigned int i;
	char c;

	for (i = 0; i < count; i++) {
		size_t size = seq_fill(buf, i);
		ssize_t w = send(fd, buf, size, MSG_EOR | MSG_NOSIGNAL);

		if (w != (ssize_t)size) {
			printf("error message %u of %zu bytes: sent %zd: %s\n", i, size, w,
			       w < 0 ? strerror(errno) : "short");
			return 1;
		}
		sum_add(&s, buf, size);
		bytes += size;
	}
	shutdown(fd, SHUT_WR);
	/* The receiver closes once it has every message. */
	while (read(fd, &c, 1) > 0)
		;
	secs = now() - t0;
	printf("seqsent msgs=%u bytes=%llu sum=%08x%08x secs=%.2f MiBps=%.2f\n", count, bytes,
	       s.a, s.b, secs, secs > 0 ? bytes / secs / 1048576 : 0.0);
	return 0;
}

/* Each recv must return exactly message i (its size, its bytes, not
 * truncated); after the last one, EOF.
 */
static int seq_recv(int fd, unsigned int count, const struct sockaddr_vm *peer)
{
	static unsigned char want[SEQ_MSG_MAX], buf[SEQ_MSG_MAX + 1];
	unsigned long long bytes = 0;
	unsigned int i, eor = 0;
	struct sum s = { 0, 0 };
	double t0 = now(), secs;

	for (i = 0; i <= count; i++) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		size_t size = i < count ? seq_fill(want, i) : 0;
		ssize_t r;

		do
			r = recvmsg(fd, &m, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			printf("error message %u: %s\n", i, strerror(errno));
			return errno == ECONNRESET ? 3 : 1;
		}
		if (i == count && r == 0)
			break;
		if ((size_t)r != size || m.msg_flags & MSG_TRUNC) {
			printf("error message %u: recv returned %zd bytes (flags 0x%x), want %zu%s\n",
			       i, r, (unsigned int)m.msg_flags, size,
			       i == count ? " (EOF)" : "");
			return 1;
		}
		if (memcmp(buf, want, size)) {
			printf("error message %u of %zu bytes: content differs\n", i, size);
			return 1;
		}
		if (m.msg_flags & MSG_EOR)
			eor++;
		sum_add(&s, buf, size);
		bytes += size;
	}
	secs = now() - t0;
	printf("seqrecv msgs=%u bytes=%llu sum=%08x%08x eor=%u peer=%u:%u end=eof secs=%.2f MiBps=%.2f\n",
	       count, bytes, s.a, s.b, eor, peer->svm_cid, peer->svm_port, secs,
	       secs > 0 ? bytes / secs / 1048576 : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm peer;
	unsigned int i, n;
	int lfd, fd, rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		usage();
	make_pattern();
	if (!strcmp(argv[1], "listen") && argc <= 4) {
		n = argc == 4 ? (unsigned int)number(argv[3], COUNT_MAX) : 1;
		lfd = do_listen((unsigned int)number(argv[2], UINT32_MAX));
		for (i = 0; i < n; i++) {
			fd = do_accept(lfd, &peer);
			printf("accepted peer=%u:%u\n", peer.svm_cid, peer.svm_port);
			rc |= recv_stream(fd, &peer);
			close(fd);
		}
		return rc;
	}
	if (!strcmp(argv[1], "send") && argc == 5) {
		fd = do_connect((unsigned int)number(argv[2], UINT32_MAX),
				(unsigned int)number(argv[3], UINT32_MAX));
		rc = send_stream(fd, number(argv[4], UINT64_MAX));
		if (!rc) {
			/* Wait for the receiver's close: everything arrived. */
			char c;

			while (read(fd, &c, 1) > 0)
				;
		}
		return rc;
	}
	if (!strcmp(argv[1], "duplex-listen") && argc == 4) {
		lfd = do_listen((unsigned int)number(argv[2], UINT32_MAX));
		fd = do_accept(lfd, &peer);
		return duplex_stream(fd, number(argv[3], UINT64_MAX), &peer);
	}
	if (!strcmp(argv[1], "duplex") && argc == 5) {
		peer.svm_cid = (unsigned int)number(argv[2], UINT32_MAX);
		peer.svm_port = (unsigned int)number(argv[3], UINT32_MAX);
		fd = do_connect(peer.svm_cid, peer.svm_port);
		return duplex_stream(fd, number(argv[4], UINT64_MAX), &peer);
	}
	if (!strcmp(argv[1], "echo") && argc <= 4) {
		n = argc == 4 ? (unsigned int)number(argv[3], COUNT_MAX) : 0;
		lfd = do_listen((unsigned int)number(argv[2], UINT32_MAX));
		for (i = 0; !n || i < n; i++) {
			fd = do_accept(lfd, &peer);
			echo_conn(fd);
			close(fd);
		}
		printf("echo conns=%u\n", n);
		return 0;
	}
	if (!strcmp(argv[1], "ping") && argc == 6)
		return ping((unsigned int)number(argv[2], UINT32_MAX),
			    (unsigned int)number(argv[3], UINT32_MAX),
			    (size_t)number(argv[4], PING_SIZE_MAX),
			    (unsigned int)number(argv[5], COUNT_MAX));
	if (!strcmp(argv[1], "churn") && argc == 5)
		return churn((unsigned int)number(argv[2], UINT32_MAX),
			     (unsigned int)number(argv[3], UINT32_MAX),
			     (unsigned int)number(argv[4], COUNT_MAX));
	if (!strcmp(argv[1], "seq-listen") && argc == 4) {
		sock_type = SOCK_SEQPACKET;
		lfd = do_listen((unsigned int)number(argv[2], UINT32_MAX));
		fd = do_accept(lfd, &peer);
		printf("accepted peer=%u:%u\n", peer.svm_cid, peer.svm_port);
		rc = seq_recv(fd, (unsigned int)number(argv[3], COUNT_MAX), &peer);
		close(fd);
		return rc;
	}
	if (!strcmp(argv[1], "seq-send") && argc == 5) {
		sock_type = SOCK_SEQPACKET;
		fd = do_connect((unsigned int)number(argv[2], UINT32_MAX),
				(unsigned int)number(argv[3], UINT32_MAX));
		return seq_send(fd, (unsigned int)number(argv[4], COUNT_MAX));
	}
	usage();
	return 2;
}
