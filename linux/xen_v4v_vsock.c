// SPDX-License-Identifier: GPL-2.0-only
/*
 * xen_v4v_vsock: V4V rings as an AF_VSOCK transport (linux/README.md).
 *
 * The connection, credit and shutdown protocol is the kernel's own
 * (vmw_vsock_virtio_transport_common): this module only carries its
 * packets. Each domain registers one V4V ring on port XEN_V4V_VSOCK_PORT,
 * open to any sender; each vsock packet (struct virtio_vsock_hdr, then its
 * payload) is one V4V message to the peer domain's ring.
 *
 * Addresses: a domain's CID is its domid + 2, so dom0 is 2, the host
 * (VMADDR_CID_HOST). Dom0 registers as the host-side transport, every
 * other domain as the guest-side one. A received packet is accepted only
 * if its src_cid is the CID of the domain Xen stamped as its sender: no
 * guest can speak as another.
 *
 * Reliability: vsock assumes its transport never loses a packet. A send
 * that finds the peer's ring full (-EAGAIN) keeps the packet, and every
 * later one to that peer, in order, asks Xen to be woken when it fits
 * (V4VOP_notify with V4V_RD_F_WAKE) and sleeps until VIRQ_V4V; packets to
 * other peers go on meanwhile. A peer that is gone (-ESRCH), has no ring
 * or is firewalled (-ECONNREFUSED) gets no packet: the local socket is
 * reset instead, as if the peer had sent a reset. Xen does not tell a
 * guest when another domain dies, so once a second the module asks Xen
 * whether the rings of its connected peers still exist and resets the
 * connections of those that do not.
 *
 * Receive is driven by VIRQ_V4V with V4V_RING_F_NOTIFY_EMPTY_ONLY: Xen
 * raises it only when the ring goes from empty to non-empty, and the
 * worker drains the ring until it finds it empty after publishing rx_ptr.
 *
 * Context: one ordered work item does all ring I/O (receive, send,
 * retries), so the ring's rx_ptr and the blocked-peer list have a single
 * writer. Locks:
 *   tx_queue.lock   packets from send_pkt (any context), taken with BH off
 *   peers_lock      the list of blocked peers: the worker adds and removes
 *                   entries, cancel_pkt walks it; never held across a
 *                   hypercall. Each peer's queue has its own lock inside.
 *   scan_lock       the liveness scan's scratch arrays.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <linux/interrupt.h>
#include <linux/mutex.h>
#include <linux/virtio_vsock.h>
#include <net/af_vsock.h>
#include <xen/xen.h>
#include <xen/events.h>
#include <xen/xenbus.h>
#include <xen/page.h>

#include "v4v_hypercall.h"

/* The V4V port of every domain's vsock ring ("vs"). */
#define XEN_V4V_VSOCK_PORT		0x7673
/* msg_type of every message: a vsock packet. */
#define XEN_V4V_VSOCK_MSG_TYPE		0x76736f63
/* CID = domid + XEN_V4V_VSOCK_CID_BASE; dom0 is VMADDR_CID_HOST. */
#define XEN_V4V_VSOCK_CID_BASE		VMADDR_CID_HOST
/* Ring size bounds (KiB): room for the largest packet, and V4V's limit. */
#define XEN_V4V_VSOCK_RING_KIB_MIN	128
#define XEN_V4V_VSOCK_RING_KIB_MAX	(V4V_RING_LEN_MAX >> 10)
/* Messages taken from the ring per worker pass before other work. */
#define XEN_V4V_VSOCK_RX_BUDGET		64
/* Peers (distinct CIDs) and sockets one liveness scan looks at. */
#define XEN_V4V_VSOCK_SCAN_PEERS_MAX	64
#define XEN_V4V_VSOCK_SCAN_SOCKS_MAX	256
#define XEN_V4V_VSOCK_LIVENESS_MS	1000
/* When Xen cannot queue a wake-up or memory is short: retry after this. */
#define XEN_V4V_VSOCK_RETRY_MS		20

static unsigned int ring_kib = 256;
module_param(ring_kib, uint, 0444);
MODULE_PARM_DESC(ring_kib, "Size of this domain's V4V receive ring in KiB (128..16384)");

static int domid = -1;
module_param(domid, int, 0444);
MODULE_PARM_DESC(domid, "This domain's id (default: read from xenstore)");

static unsigned int connect_timeout_ms;
module_param(connect_timeout_ms, uint, 0644);
MODULE_PARM_DESC(connect_timeout_ms,
		 "connect() timeout of sockets still at the kernel's 2 s default (0: keep it)");

static unsigned int test_src_cid;
module_param(test_src_cid, uint, 0644);
MODULE_PARM_DESC(test_src_cid,
		 "Test only: put this src_cid in every packet sent (0: off), to show that peers drop it");

static unsigned long stat_sent, stat_received, stat_full, stat_dropped_spoofed,
	stat_dropped_bad, stat_peer_resets;
module_param_named(sent, stat_sent, ulong, 0444);
module_param_named(received, stat_received, ulong, 0444);
module_param_named(ring_full, stat_full, ulong, 0444);
module_param_named(dropped_spoofed, stat_dropped_spoofed, ulong, 0444);
module_param_named(dropped_bad, stat_dropped_bad, ulong, 0444);
module_param_named(peer_resets, stat_peer_resets, ulong, 0444);

/* Packets waiting for room in one peer's ring, in send order. */
struct v4v_peer {
	struct list_head link;
	domid_t domid;
	struct sk_buff_head queue;
};

static struct v4v_vsock {
	struct xen_v4v_ring *ring;	/* vmalloc'ed, header + data */
	unsigned int ring_pages;
	u32 ring_len;			/* data bytes, as registered */
	u32 rx;				/* our rx_ptr; the ring's copy is written only */
	domid_t domid;
	u32 local_cid;
	int irq;
	struct workqueue_struct *wq;
	struct work_struct work;
	struct delayed_work retry;
	struct delayed_work liveness;
	struct sk_buff_head tx_queue;
	spinlock_t peers_lock;		/* protects peers */
	struct list_head peers;
} the_v4v;

static struct virtio_transport v4v_transport;

/* ---- addresses -------------------------------------------------------- */

static u32 v4v_domid_to_cid(domid_t d)
{
	return (u32)d + XEN_V4V_VSOCK_CID_BASE;
}

/* The domain of a CID, or DOMID_INVALID if no domain has it. */
static domid_t v4v_cid_to_domid(u64 cid)
{
	if (cid < XEN_V4V_VSOCK_CID_BASE ||
	    cid - XEN_V4V_VSOCK_CID_BASE >= DOMID_FIRST_RESERVED)
		return DOMID_INVALID;
	return (domid_t)(cid - XEN_V4V_VSOCK_CID_BASE);
}

static u32 v4v_vsock_get_local_cid(void)
{
	return the_v4v.local_cid;
}

/* ---- resets ------------------------------------------------------------ */

/*
 * Delivers to the local socket of (local_port, peer_cid:peer_port) a reset
 * as if the peer had sent it: for a peer that cannot be reached.
 */
static void v4v_reset_local(u16 type, u64 peer_cid, u32 peer_port, u32 local_port)
{
	struct virtio_vsock_hdr *h;
	struct sk_buff *skb;

	skb = virtio_vsock_alloc_skb(VIRTIO_VSOCK_SKB_HEADROOM, GFP_KERNEL);
	if (!skb)
		return;
	h = virtio_vsock_hdr(skb);
	memset(h, 0, sizeof(*h));
	h->src_cid = cpu_to_le64(peer_cid);
	h->src_port = cpu_to_le32(peer_port);
	h->dst_cid = cpu_to_le64(the_v4v.local_cid);
	h->dst_port = cpu_to_le32(local_port);
	h->type = cpu_to_le16(type);
	h->op = cpu_to_le16(VIRTIO_VSOCK_OP_RST);
	WRITE_ONCE(stat_peer_resets, stat_peer_resets + 1);
	virtio_transport_recv_pkt(&v4v_transport, skb);
}

/* ---- send ------------------------------------------------------------- */

/* Asks Xen for VIRQ_V4V once `bytes` fit in domain d's ring. True if
 * they fit already (send again now).
 */
static bool v4v_ask_wake(domid_t d, u32 bytes)
{
	struct {
		struct xen_v4v_ring_data rd;
		struct xen_v4v_ring_data_ent ent;
	} q;
	long rc;

	memset(&q, 0, sizeof(q));
	q.rd.nent = 1;
	q.ent.ring.domain = d;
	q.ent.ring.port = XEN_V4V_VSOCK_PORT;
	q.ent.flags = V4V_RD_F_WAKE;
	q.ent.space_required = bytes;
	rc = HYPERVISOR_v4v_op(V4VOP_notify, &q, NULL, 0, 0);
	if (rc < 0) {
		/* No wake-up queued (e.g. the ring's waiter list is full). */
		pr_debug("notify for dom%u: %ld; retrying in %u ms\n", d, rc,
			 XEN_V4V_VSOCK_RETRY_MS);
		mod_delayed_work(the_v4v.wq, &the_v4v.retry,
				 msecs_to_jiffies(XEN_V4V_VSOCK_RETRY_MS));
		return false;
	}
	if (!(q.ent.flags & V4V_RD_F_EXISTS))
		return true; /* gone meanwhile: the next send says so */
	return q.ent.flags & V4V_RD_F_SUFFICIENT;
}

/*
 * Sends one packet. 0 when it is done with (sent, or dropped with the
 * local socket reset); -EAGAIN when the peer's ring is full and a wake-up
 * is queued: the caller keeps the packet.
 */
static int v4v_send_one(struct sk_buff *skb)
{
	struct virtio_vsock_hdr *hdr = virtio_vsock_hdr(skb);
	struct virtio_vsock_hdr wire = *hdr;
	struct xen_v4v_send_addr addr;
	struct xen_v4v_iov iov[2];
	unsigned int niov = 1, tries;
	domid_t d = v4v_cid_to_domid(le64_to_cpu(hdr->dst_cid));
	long rc = -EINVAL;

	if (skb_linearize(skb))
		rc = -ENOMEM;
	if (d != DOMID_INVALID && rc == -EINVAL) {
		if (test_src_cid)
			wire.src_cid = cpu_to_le64(READ_ONCE(test_src_cid));
		memset(&addr, 0, sizeof(addr));
		addr.src.port = XEN_V4V_VSOCK_PORT;
		addr.src.domain = DOMID_SELF;
		addr.dst.port = XEN_V4V_VSOCK_PORT;
		addr.dst.domain = d;
		memset(iov, 0, sizeof(iov));
		iov[0].base = (unsigned long)&wire;
		iov[0].len = sizeof(wire);
		if (skb->len) {
			iov[1].base = (unsigned long)skb->data;
			iov[1].len = skb->len;
			niov = 2;
		}
		for (tries = 0; tries < 3; tries++) {
			rc = HYPERVISOR_v4v_op(V4VOP_sendv, &addr, iov, niov,
					       XEN_V4V_VSOCK_MSG_TYPE);
			if (rc != -EAGAIN)
				break;
			WRITE_ONCE(stat_full, stat_full + 1);
			if (!v4v_ask_wake(d, sizeof(wire) + skb->len))
				return -EAGAIN;
		}
		if (rc == -EAGAIN)
			return -EAGAIN;
	}
	if (rc >= 0) {
		WRITE_ONCE(stat_sent, stat_sent + 1);
		virtio_transport_deliver_tap_pkt(skb);
		consume_skb(skb);
		return 0;
	}
	pr_debug("packet to cid %llu (op %u) not sent: %ld\n",
		 le64_to_cpu(hdr->dst_cid), le16_to_cpu(hdr->op), rc);
	if (le16_to_cpu(hdr->op) != VIRTIO_VSOCK_OP_RST)
		v4v_reset_local(le16_to_cpu(hdr->type), le64_to_cpu(hdr->dst_cid),
				le32_to_cpu(hdr->dst_port), le32_to_cpu(hdr->src_port));
	kfree_skb(skb);
	return 0;
}

static struct v4v_peer *v4v_find_peer(domid_t d)
{
	struct v4v_peer *p;

	list_for_each_entry(p, &the_v4v.peers, link)
		if (p->domid == d)
			return p;
	return NULL;
}

/* Sends what can be sent; true if anything was. Worker only. */
static bool v4v_tx(void)
{
	struct v4v_vsock *v = &the_v4v;
	struct v4v_peer *p, *n;
	struct sk_buff *skb;
	bool did = false;

	/* First the peers that were full, in order. */
	list_for_each_entry_safe(p, n, &v->peers, link) {
		while ((skb = skb_dequeue(&p->queue))) {
			if (v4v_send_one(skb) == -EAGAIN) {
				skb_queue_head(&p->queue, skb);
				break;
			}
			did = true;
		}
		if (skb_queue_empty(&p->queue)) {
			spin_lock_bh(&v->peers_lock);
			list_del(&p->link);
			spin_unlock_bh(&v->peers_lock);
			kfree(p);
		}
	}
	while ((skb = skb_dequeue(&v->tx_queue))) {
		domid_t d = v4v_cid_to_domid(le64_to_cpu(virtio_vsock_hdr(skb)->dst_cid));

		p = v4v_find_peer(d);
		if (p) {
			/* Behind that peer's earlier packets. */
			skb_queue_tail(&p->queue, skb);
			continue;
		}
		if (v4v_send_one(skb) != -EAGAIN) {
			did = true;
			continue;
		}
		p = kzalloc(sizeof(*p), GFP_KERNEL);
		if (!p) {
			skb_queue_head(&v->tx_queue, skb);
			mod_delayed_work(v->wq, &v->retry,
					 msecs_to_jiffies(XEN_V4V_VSOCK_RETRY_MS));
			break;
		}
		p->domid = d;
		skb_queue_head_init(&p->queue);
		skb_queue_tail(&p->queue, skb);
		spin_lock_bh(&v->peers_lock);
		list_add_tail(&p->link, &v->peers);
		spin_unlock_bh(&v->peers_lock);
	}
	return did;
}

static int v4v_vsock_send_pkt(struct sk_buff *skb)
{
	int len = skb->len;

	skb_queue_tail(&the_v4v.tx_queue, skb);
	queue_work(the_v4v.wq, &the_v4v.work);
	return len;
}

static int v4v_vsock_cancel_pkt(struct vsock_sock *vsk)
{
	struct v4v_peer *p;

	virtio_transport_purge_skbs(vsk, &the_v4v.tx_queue);
	spin_lock_bh(&the_v4v.peers_lock);
	list_for_each_entry(p, &the_v4v.peers, link)
		virtio_transport_purge_skbs(vsk, &p->queue);
	spin_unlock_bh(&the_v4v.peers_lock);
	return 0;
}

/* ---- receive ---------------------------------------------------------- */

/* Copies len bytes of ring data at offset off (wrapping) to buf. */
static void v4v_ring_read(void *buf, u32 off, u32 len)
{
	u32 first = min(len, the_v4v.ring_len - off);

	memcpy(buf, the_v4v.ring->ring + off, first);
	if (first < len)
		memcpy((u8 *)buf + first, the_v4v.ring->ring, len - first);
}

/*
 * Hands one message (its payload at ring offset off, len bytes) to vsock.
 * -ENOMEM if it must be tried again later; 0 otherwise (delivered or
 * dropped).
 */
static int v4v_rx_msg(const struct xen_v4v_msg_hdr *m, u32 off)
{
	struct virtio_vsock_hdr h;
	struct sk_buff *skb;
	u32 plen;

	if (m->msg_type != XEN_V4V_VSOCK_MSG_TYPE || m->len < sizeof(h)) {
		WRITE_ONCE(stat_dropped_bad, stat_dropped_bad + 1);
		return 0;
	}
	v4v_ring_read(&h, off, sizeof(h));
	plen = le32_to_cpu(h.len);
	if (plen != m->len - sizeof(h) ||
	    le64_to_cpu(h.dst_cid) != the_v4v.local_cid) {
		WRITE_ONCE(stat_dropped_bad, stat_dropped_bad + 1);
		return 0;
	}
	/* The sender is who Xen says it is, whatever the packet claims. */
	if (le64_to_cpu(h.src_cid) != v4v_domid_to_cid(m->source.domain)) {
		WRITE_ONCE(stat_dropped_spoofed, stat_dropped_spoofed + 1);
		pr_notice_ratelimited("dropped a packet from dom%u claiming cid %llu\n",
				      m->source.domain, le64_to_cpu(h.src_cid));
		return 0;
	}
	skb = virtio_vsock_alloc_skb(VIRTIO_VSOCK_SKB_HEADROOM + plen, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;
	memcpy(virtio_vsock_hdr(skb), &h, sizeof(h));
	if (plen)
		v4v_ring_read(skb_put(skb, plen),
			      (off + sizeof(h)) % the_v4v.ring_len, plen);
	WRITE_ONCE(stat_received, stat_received + 1);
	virtio_transport_deliver_tap_pkt(skb);
	virtio_transport_recv_pkt(&v4v_transport, skb);
	return 0;
}

/* Takes messages from the ring; true if it should be called again. */
static bool v4v_rx(void)
{
	struct v4v_vsock *v = &the_v4v;
	struct xen_v4v_msg_hdr m;
	unsigned int n;
	bool more = false;
	u32 tx, used, bytes;

	for (n = 0; n < XEN_V4V_VSOCK_RX_BUDGET; n++) {
		tx = READ_ONCE(v->ring->tx_ptr);
		if (tx >= v->ring_len || tx % V4V_SLOT_BYTES) {
			pr_err_ratelimited("ring tx_ptr %u out of range\n", tx);
			break;
		}
		if (tx == v->rx)
			break;
		virt_rmb(); /* the message after tx_ptr */
		used = (tx + v->ring_len - v->rx) % v->ring_len;
		/* rx is slot-aligned: the 16-byte header does not wrap. */
		memcpy(&m, v->ring->ring + v->rx, sizeof(m));
		bytes = ALIGN(sizeof(m) + (u64)m.len, V4V_SLOT_BYTES);
		if (m.len > V4V_MSG_MAX || bytes > used) {
			pr_err_ratelimited("ring message of %u bytes, %u published\n",
					   m.len, used);
			break;
		}
		if (v4v_rx_msg(&m, (v->rx + sizeof(m)) % v->ring_len)) {
			mod_delayed_work(v->wq, &v->retry,
					 msecs_to_jiffies(XEN_V4V_VSOCK_RETRY_MS));
			break;
		}
		v->rx = (v->rx + bytes) % v->ring_len;
		/* Done reading the message before Xen may reuse its space;
		 * rx_ptr published before tx_ptr is read again.
		 */
		virt_mb();
		WRITE_ONCE(v->ring->rx_ptr, v->rx);
		virt_mb();
		more = n + 1 == XEN_V4V_VSOCK_RX_BUDGET;
	}
	if (n) {
		/* Wake the senders waiting for the space just freed. */
		HYPERVISOR_v4v_op(V4VOP_notify, NULL, NULL, 0, 0);
	}
	return more;
}

static void v4v_work(struct work_struct *work)
{
	bool again;

	do {
		again = v4v_rx();
		again |= v4v_tx();
		cond_resched();
	} while (again);
}

static void v4v_retry_work(struct work_struct *work)
{
	queue_work(the_v4v.wq, &the_v4v.work);
}

static irqreturn_t v4v_virq(int irq, void *dev_id)
{
	queue_work(the_v4v.wq, &the_v4v.work);
	return IRQ_HANDLED;
}

/* ---- liveness: peers that died ---------------------------------------- */

static DEFINE_MUTEX(scan_lock);
static u32 scan_cids[XEN_V4V_VSOCK_SCAN_PEERS_MAX];
static unsigned int scan_ncids;
static struct {
	u16 type;
	u32 local_port, peer_port;
	u64 peer_cid;
} scan_socks[XEN_V4V_VSOCK_SCAN_SOCKS_MAX];
static unsigned int scan_nsocks;
static DECLARE_BITMAP(scan_dead, XEN_V4V_VSOCK_SCAN_PEERS_MAX);

/* Under vsock_table_lock: no sleeping. */
static void v4v_scan_peer(struct sock *sk)
{
	u32 cid = vsock_sk(sk)->remote_addr.svm_cid;
	unsigned int i;

	for (i = 0; i < scan_ncids; i++)
		if (scan_cids[i] == cid)
			return;
	if (scan_ncids < XEN_V4V_VSOCK_SCAN_PEERS_MAX)
		scan_cids[scan_ncids++] = cid;
}

static void v4v_scan_sock(struct sock *sk)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	unsigned int i;

	for (i = 0; i < scan_ncids; i++)
		if (test_bit(i, scan_dead) && scan_cids[i] == vsk->remote_addr.svm_cid)
			break;
	if (i == scan_ncids || scan_nsocks == XEN_V4V_VSOCK_SCAN_SOCKS_MAX)
		return;
	scan_socks[scan_nsocks].type = sk->sk_type == SOCK_SEQPACKET ?
		VIRTIO_VSOCK_TYPE_SEQPACKET : VIRTIO_VSOCK_TYPE_STREAM;
	scan_socks[scan_nsocks].local_port = vsk->local_addr.svm_port;
	scan_socks[scan_nsocks].peer_port = vsk->remote_addr.svm_port;
	scan_socks[scan_nsocks].peer_cid = vsk->remote_addr.svm_cid;
	scan_nsocks++;
}

static void v4v_liveness_work(struct work_struct *work)
{
	static struct {
		struct xen_v4v_ring_data rd;
		struct xen_v4v_ring_data_ent ent[XEN_V4V_VSOCK_SCAN_PEERS_MAX];
	} q;
	unsigned int i, ndead = 0;
	long rc;

	mutex_lock(&scan_lock);
	scan_ncids = 0;
	vsock_for_each_connected_socket(&v4v_transport.transport, v4v_scan_peer);
	if (!scan_ncids)
		goto out;
	memset(&q, 0, sizeof(q));
	q.rd.nent = scan_ncids;
	for (i = 0; i < scan_ncids; i++) {
		q.ent[i].ring.domain = v4v_cid_to_domid(scan_cids[i]);
		q.ent[i].ring.port = XEN_V4V_VSOCK_PORT;
	}
	rc = HYPERVISOR_v4v_op(V4VOP_notify, &q, NULL, 0, 0);
	if (rc < 0) {
		pr_warn_ratelimited("liveness query failed: %ld\n", rc);
		goto out;
	}
	bitmap_zero(scan_dead, XEN_V4V_VSOCK_SCAN_PEERS_MAX);
	for (i = 0; i < scan_ncids; i++) {
		if (!(q.ent[i].flags & V4V_RD_F_EXISTS)) {
			set_bit(i, scan_dead);
			ndead++;
		}
	}
	if (!ndead)
		goto out;
	scan_nsocks = 0;
	vsock_for_each_connected_socket(&v4v_transport.transport, v4v_scan_sock);
	for (i = 0; i < scan_nsocks; i++)
		v4v_reset_local(scan_socks[i].type, scan_socks[i].peer_cid,
				scan_socks[i].peer_port, scan_socks[i].local_port);
	pr_info("%u connection(s) reset: peer ring gone\n", scan_nsocks);
out:
	mutex_unlock(&scan_lock);
	queue_delayed_work(the_v4v.wq, &the_v4v.liveness,
			   msecs_to_jiffies(XEN_V4V_VSOCK_LIVENESS_MS));
}

/* ---- the transport ---------------------------------------------------- */

/*
 * af_vsock gives every socket a 2 s connect timeout; under emulation a
 * handshake can take longer. A socket whose owner did not choose another
 * (SO_VM_SOCKETS_CONNECT_TIMEOUT) gets connect_timeout_ms, if set.
 */
static int v4v_vsock_socket_init(struct vsock_sock *vsk, struct vsock_sock *psk)
{
	unsigned int ms = READ_ONCE(connect_timeout_ms);

	if (ms && vsk->connect_timeout == 2 * HZ)
		vsk->connect_timeout = msecs_to_jiffies(ms);
	return virtio_transport_do_socket_init(vsk, psk);
}

static bool v4v_vsock_seqpacket_allow(u32 remote_cid)
{
	return true;
}

static struct virtio_transport v4v_transport = {
	.transport = {
		.module                   = THIS_MODULE,

		.get_local_cid            = v4v_vsock_get_local_cid,

		.init                     = v4v_vsock_socket_init,
		.destruct                 = virtio_transport_destruct,
		.release                  = virtio_transport_release,
		.connect                  = virtio_transport_connect,
		.shutdown                 = virtio_transport_shutdown,
		.cancel_pkt               = v4v_vsock_cancel_pkt,

		.dgram_bind               = virtio_transport_dgram_bind,
		.dgram_dequeue            = virtio_transport_dgram_dequeue,
		.dgram_enqueue            = virtio_transport_dgram_enqueue,
		.dgram_allow              = virtio_transport_dgram_allow,

		.stream_dequeue           = virtio_transport_stream_dequeue,
		.stream_enqueue           = virtio_transport_stream_enqueue,
		.stream_has_data          = virtio_transport_stream_has_data,
		.stream_has_space         = virtio_transport_stream_has_space,
		.stream_rcvhiwat          = virtio_transport_stream_rcvhiwat,
		.stream_is_active         = virtio_transport_stream_is_active,
		.stream_allow             = virtio_transport_stream_allow,

		.seqpacket_dequeue        = virtio_transport_seqpacket_dequeue,
		.seqpacket_enqueue        = virtio_transport_seqpacket_enqueue,
		.seqpacket_allow          = v4v_vsock_seqpacket_allow,
		.seqpacket_has_data       = virtio_transport_seqpacket_has_data,

		.notify_poll_in           = virtio_transport_notify_poll_in,
		.notify_poll_out          = virtio_transport_notify_poll_out,
		.notify_recv_init         = virtio_transport_notify_recv_init,
		.notify_recv_pre_block    = virtio_transport_notify_recv_pre_block,
		.notify_recv_pre_dequeue  = virtio_transport_notify_recv_pre_dequeue,
		.notify_recv_post_dequeue = virtio_transport_notify_recv_post_dequeue,
		.notify_send_init         = virtio_transport_notify_send_init,
		.notify_send_pre_block    = virtio_transport_notify_send_pre_block,
		.notify_send_pre_enqueue  = virtio_transport_notify_send_pre_enqueue,
		.notify_send_post_enqueue = virtio_transport_notify_send_post_enqueue,
		.notify_buffer_size       = virtio_transport_notify_buffer_size,
	},

	.send_pkt = v4v_vsock_send_pkt,
};

/* ---- the ring --------------------------------------------------------- */

static int v4v_ring_register(void)
{
	struct v4v_vsock *v = &the_v4v;
	struct xen_v4v_register_ring reg;
	unsigned int i;
	u64 *gfns;
	long rc;

	v->ring_pages = ring_kib / 4;
	v->ring_len = v->ring_pages * PAGE_SIZE - V4V_RING_HEADER_BYTES;
	v->ring = vzalloc(v->ring_pages * PAGE_SIZE);
	if (!v->ring)
		return -ENOMEM;
	gfns = kcalloc(v->ring_pages, sizeof(*gfns), GFP_KERNEL);
	if (!gfns) {
		vfree(v->ring);
		return -ENOMEM;
	}
	for (i = 0; i < v->ring_pages; i++)
		gfns[i] = xen_page_to_gfn(vmalloc_to_page((u8 *)v->ring + i * PAGE_SIZE));
	v->ring->magic = V4V_RING_MAGIC;
	v->ring->len = v->ring_len;
	v->ring->flags = V4V_RING_F_NOTIFY_EMPTY_ONLY;
	v->rx = 0;
	memset(&reg, 0, sizeof(reg));
	reg.port = XEN_V4V_VSOCK_PORT;
	reg.partner = V4V_DOMID_ANY;
	reg.len = v->ring_len;
	rc = HYPERVISOR_v4v_op(V4VOP_register_ring, &reg, gfns, v->ring_pages, 0);
	kfree(gfns);
	if (rc < 0) {
		pr_err("V4V ring registration failed: %ld\n", rc);
		vfree(v->ring);
		return rc;
	}
	return 0;
}

static void v4v_ring_unregister(void)
{
	struct xen_v4v_unregister_ring unreg;
	long rc;

	memset(&unreg, 0, sizeof(unreg));
	unreg.port = XEN_V4V_VSOCK_PORT;
	unreg.partner = V4V_DOMID_ANY;
	rc = HYPERVISOR_v4v_op(V4VOP_unregister_ring, &unreg, NULL, 0, 0);
	if (rc < 0) {
		/* Xen still holds the pages: leak them rather than free them. */
		pr_err("V4V ring unregistration failed: %ld; ring pages kept\n", rc);
		return;
	}
	vfree(the_v4v.ring);
}

static int v4v_read_domid(void)
{
	unsigned int d;

	if (domid >= 0)
		return domid;
	if (xen_initial_domain())
		return 0;
	/* Relative to this domain's home in xenstore. */
	d = xenbus_read_unsigned("domid", "", DOMID_INVALID);
	return d < DOMID_FIRST_RESERVED ? (int)d : -ENOENT;
}

static int __init v4v_vsock_init(void)
{
	struct v4v_vsock *v = &the_v4v;
	int rc, d;

	if (!xen_domain())
		return -ENODEV;
	if (ring_kib < XEN_V4V_VSOCK_RING_KIB_MIN || ring_kib > XEN_V4V_VSOCK_RING_KIB_MAX ||
	    ring_kib % 4) {
		pr_err("ring_kib=%u: want a multiple of 4 in %u..%u\n", ring_kib,
		       XEN_V4V_VSOCK_RING_KIB_MIN, XEN_V4V_VSOCK_RING_KIB_MAX);
		return -EINVAL;
	}
	d = v4v_read_domid();
	if (d < 0) {
		pr_err("cannot tell this domain's id (give domid=)\n");
		return d;
	}
	v->domid = d;
	v->local_cid = v4v_domid_to_cid(v->domid);
	skb_queue_head_init(&v->tx_queue);
	spin_lock_init(&v->peers_lock);
	INIT_LIST_HEAD(&v->peers);
	INIT_WORK(&v->work, v4v_work);
	INIT_DELAYED_WORK(&v->retry, v4v_retry_work);
	INIT_DELAYED_WORK(&v->liveness, v4v_liveness_work);
	v->wq = alloc_ordered_workqueue("xen-v4v-vsock", 0);
	if (!v->wq)
		return -ENOMEM;
	rc = v4v_ring_register();
	if (rc)
		goto out_wq;
	rc = bind_virq_to_irqhandler(VIRQ_V4V, 0, v4v_virq, 0, "xen-v4v-vsock", v);
	if (rc < 0) {
		pr_err("binding VIRQ_V4V failed: %d\n", rc);
		goto out_ring;
	}
	v->irq = rc;
	rc = vsock_core_register(&v4v_transport.transport,
				 xen_initial_domain() ? VSOCK_TRANSPORT_F_H2G :
							VSOCK_TRANSPORT_F_G2H);
	if (rc) {
		pr_err("vsock_core_register failed: %d\n", rc);
		goto out_irq;
	}
	queue_delayed_work(v->wq, &v->liveness,
			   msecs_to_jiffies(XEN_V4V_VSOCK_LIVENESS_MS));
	/* Anything that arrived before the VIRQ was bound. */
	queue_work(v->wq, &v->work);
	pr_info("dom%u is cid %u; V4V ring port %#x, %u KiB\n", v->domid,
		v->local_cid, XEN_V4V_VSOCK_PORT, ring_kib);
	return 0;

out_irq:
	unbind_from_irqhandler(v->irq, v);
out_ring:
	v4v_ring_unregister();
out_wq:
	destroy_workqueue(v->wq);
	return rc;
}

static void __exit v4v_vsock_exit(void)
{
	struct v4v_vsock *v = &the_v4v;
	struct v4v_peer *p, *n;

	/* No socket uses the transport: each holds a module reference. */
	vsock_core_unregister(&v4v_transport.transport);
	unbind_from_irqhandler(v->irq, v);
	cancel_delayed_work_sync(&v->liveness);
	/* The work arms the retry timer, which queues the work. */
	cancel_work_sync(&v->work);
	cancel_delayed_work_sync(&v->retry);
	cancel_work_sync(&v->work);
	v4v_ring_unregister();
	skb_queue_purge(&v->tx_queue);
	list_for_each_entry_safe(p, n, &v->peers, link) {
		skb_queue_purge(&p->queue);
		list_del(&p->link);
		kfree(p);
	}
	destroy_workqueue(v->wq);
	pr_info("unloaded: sent %lu, received %lu, ring full %lu, dropped %lu spoofed and %lu bad\n",
		stat_sent, stat_received, stat_full, stat_dropped_spoofed, stat_dropped_bad);
}

module_init(v4v_vsock_init);
module_exit(v4v_vsock_exit);
MODULE_DESCRIPTION("V4V transport for AF_VSOCK between Xen domains");
MODULE_LICENSE("GPL");
MODULE_ALIAS_NETPROTO(PF_VSOCK);
