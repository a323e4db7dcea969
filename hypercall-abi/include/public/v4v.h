/* SPDX-License-Identifier: MIT */
/******************************************************************************
 * v4v.h
 *
 * V4V: hypervisor-mediated messaging between domains.
 *
 *   long v4v_op(unsigned int cmd, arg1, arg2, unsigned long arg3,
 *               unsigned long arg4);
 *
 * A receiver registers a ring in its own pages; a sender asks Xen to copy a
 * message into it; Xen stamps the true source and raises VIRQ_V4V.
 *
 * The C mirror of the Rust crate hypercall-abi (src/v4v.rs), which is the
 * single source of truth; a bindgen test checks that they agree.
 *
 * Guests use these structs, so they take plain uint64_t (uint64_aligned_t is
 * for tools only). Every 64-bit field sits at a multiple of 8 and every size
 * is a multiple of 8, so the layout is the same for 32-bit (compat) and
 * 64-bit guests and needs no translation.
 */

#ifndef __XEN_PUBLIC_V4V_H__
#define __XEN_PUBLIC_V4V_H__

#include "xen.h"

#define V4VOP_register_ring     1 /* reg, gfn list, nr gfns, flags         */
#define V4VOP_unregister_ring   2 /* unreg                                 */
#define V4VOP_sendv             3 /* send_addr, iov array, niov, msg type  */
#define V4VOP_notify            4 /* ring_data or NULL                     */
#define V4VOP_info              5 /* info (OUT), ring_info or NULL         */
#define V4VOP_fw_add            6 /* rule, position                        */
#define V4VOP_fw_del            7 /* rule                                  */
#define V4VOP_fw_list           8 /* rule array (OUT), first, capacity     */
#define V4VOP_sendv_batch       9 /* batch_ent array, iov array, nent, niov */

#define V4V_RING_MAGIC          0xa822f72bb0b9d8ccULL
#define V4V_SLOT_BYTES          16
#define V4V_RING_HEADER_BYTES   64
#define V4V_RING_LEN_MIN        (3 * V4V_SLOT_BYTES)
#define V4V_RING_LEN_MAX        (16U << 20)
#define V4V_RING_PAGES_MAX      ((V4V_RING_LEN_MAX + V4V_RING_HEADER_BYTES + 4095) / 4096)
#define V4V_RINGS_PER_DOMAIN_MAX 128
#define V4V_IOV_MAX             8
#define V4V_MSG_MAX             (V4V_RING_LEN_MAX - 2 * V4V_SLOT_BYTES)
#define V4V_NOTIFY_ENTRIES_MAX  256
#define V4V_PENDING_PER_RING_MAX 32
#define V4V_FW_RULES_MAX        256
#define V4V_BATCH_MAX           64
#define V4V_BATCH_IOVS_MAX      128

#define V4V_DOMID_ANY           DOMID_INVALID
#define V4V_PORT_ANY            0xffffffffU

#define V4V_REGISTER_F_FAIL_EXIST (1U << 0)

#define V4V_RING_F_NOTIFY_EMPTY_ONLY (1U << 0)

#define V4V_RD_F_WAKE           (1U << 0) /* IN: wake me when it fits    */
#define V4V_RD_F_EMPTY          (1U << 1) /* OUT                          */
#define V4V_RD_F_EXISTS         (1U << 2) /* OUT                          */
#define V4V_RD_F_PENDING        (1U << 3) /* OUT                          */
#define V4V_RD_F_SUFFICIENT     (1U << 4) /* OUT                          */

#define V4V_FW_ACCEPT           1
#define V4V_FW_REJECT           2

struct xen_v4v_addr {
    uint32_t port;
    domid_t domain;
    uint16_t pad;
};
typedef struct xen_v4v_addr xen_v4v_addr_t;

struct xen_v4v_ring_id {
    uint32_t port;
    domid_t domain;             /* The receiver.                      */
    domid_t partner;            /* The only sender, or V4V_DOMID_ANY. */
};
typedef struct xen_v4v_ring_id xen_v4v_ring_id_t;

/* The 64-byte header at the start of a ring's first page. */
struct xen_v4v_ring {
    uint64_t magic;             /* V4V_RING_MAGIC, set by the receiver.     */
    xen_v4v_ring_id_t id;       /* Written by Xen at registration.          */
    uint32_t len;               /* Data bytes, multiple of V4V_SLOT_BYTES.  */
    uint32_t rx_ptr;            /* Receiver-owned.                          */
    uint32_t tx_ptr;            /* Xen-owned; Xen keeps its own copy.       */
    uint32_t flags;             /* V4V_RING_F_*, receiver-owned.            */
    uint8_t reserved[32];
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
    uint8_t ring[];
#endif
};
typedef struct xen_v4v_ring xen_v4v_ring_t;

struct xen_v4v_msg_hdr {
    uint32_t len;               /* Payload bytes.              */
    uint32_t msg_type;          /* Given by the sender.        */
    xen_v4v_addr_t source;      /* Stamped by Xen.             */
};
typedef struct xen_v4v_msg_hdr xen_v4v_msg_hdr_t;

struct xen_v4v_iov {
    uint64_t base;      /* Guest address.              */
    uint32_t len;
    uint32_t pad;
};
typedef struct xen_v4v_iov xen_v4v_iov_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_iov_t);

/*
 * V4VOP_sendv reads the send_addr and the iov array once each; with one
 * copy if the iov array follows the send_addr within 256 bytes of the same
 * page, the fastest layout for small messages.
 */
struct xen_v4v_send_addr {
    xen_v4v_addr_t src;         /* Domain must be the caller or DOMID_SELF. */
    xen_v4v_addr_t dst;
};
typedef struct xen_v4v_send_addr xen_v4v_send_addr_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_send_addr_t);

/*
 * V4VOP_sendv_batch: up to V4V_BATCH_MAX messages in one hypercall.  Entry i
 * is sent as V4VOP_sendv would send it, with the niov iovs that start at
 * iov_first in the batch's one iov array (at most V4V_BATCH_IOVS_MAX).
 * Every entry is checked before anything is sent (a malformed one fails the
 * call, nothing sent).  Messages go in array order, each whole or not at
 * all, until one is not sent (-EAGAIN: its ring is full, or any error of
 * V4VOP_sendv); the batch stops there.  Returns the number of messages sent,
 * or, if none was, the error of the first.  status is written back for each
 * entry processed: payload bytes sent, or the -errno that stopped the batch.
 * Payloads that all lie within 8 KiB of readable memory are copied in once
 * at the first step.  Preemptible (a continuation with the same arguments);
 * VIRQ_V4V is raised at most once per destination domain per hypercall step.
 */
struct xen_v4v_batch_ent {
    xen_v4v_send_addr_t addr;
    uint32_t iov_first;         /* Index in the batch's iov array.     */
    uint32_t niov;              /* 1..V4V_IOV_MAX                      */
    uint32_t msg_type;
    int32_t status;             /* OUT: bytes sent, or -errno.         */
};
typedef struct xen_v4v_batch_ent xen_v4v_batch_ent_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_batch_ent_t);

struct xen_v4v_register_ring {
    uint32_t port;
    domid_t partner;
    uint16_t pad;
    uint32_t len;
    uint32_t pad2;
};
typedef struct xen_v4v_register_ring xen_v4v_register_ring_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_register_ring_t);

struct xen_v4v_unregister_ring {
    uint32_t port;
    domid_t partner;
    uint16_t pad;
};
typedef struct xen_v4v_unregister_ring xen_v4v_unregister_ring_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_unregister_ring_t);

struct xen_v4v_ring_data_ent {
    xen_v4v_addr_t ring;
    uint16_t flags;             /* IN V4V_RD_F_WAKE; OUT V4V_RD_F_*     */
    uint16_t pad;
    uint32_t space_required;    /* IN                                   */
    uint32_t max_message_size;  /* OUT                                  */
    uint32_t pad2;
};
typedef struct xen_v4v_ring_data_ent xen_v4v_ring_data_ent_t;

struct xen_v4v_ring_data {
    uint32_t nent;
    uint32_t pad;
    uint64_t reserved;
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
    xen_v4v_ring_data_ent_t data[];
#endif
};
typedef struct xen_v4v_ring_data xen_v4v_ring_data_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_ring_data_t);

struct xen_v4v_info {
    uint32_t rings_max;
    uint32_t ring_len_max;
    uint32_t iov_max;
    uint32_t msg_max;
    uint32_t notify_max;
    uint32_t pending_max;
    uint32_t nr_rings;
    uint32_t pad;
    uint64_t msgs_sent;
    uint64_t bytes_sent;
    uint64_t msgs_received;
    uint64_t sends_full;
    uint64_t global_msgs;       /* System-wide: the control domain only,   */
    uint64_t global_bytes;      /* 0 for every other caller.               */
};
typedef struct xen_v4v_info xen_v4v_info_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_info_t);

struct xen_v4v_ring_info {
    xen_v4v_ring_id_t id;       /* IN: port, partner               */
    uint32_t len;
    uint32_t tx_ptr;
    uint32_t rx_ptr;
    uint32_t nr_pending;
    uint64_t msgs;
    uint64_t bytes;
    uint64_t full;
};
typedef struct xen_v4v_ring_info xen_v4v_ring_info_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_ring_info_t);

/* First match decides; no match: the default policy, accept. */
struct xen_v4v_fw_rule {
    domid_t src_domain;         /* Or V4V_DOMID_ANY */
    domid_t dst_domain;         /* Or V4V_DOMID_ANY */
    uint32_t src_port;          /* Or V4V_PORT_ANY  */
    uint32_t dst_port;          /* Or V4V_PORT_ANY  */
    uint32_t action;            /* V4V_FW_*         */
};
typedef struct xen_v4v_fw_rule xen_v4v_fw_rule_t;
DEFINE_XEN_GUEST_HANDLE(xen_v4v_fw_rule_t);

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct xen_v4v_addr) == 8, "v4v addr");
_Static_assert(sizeof(struct xen_v4v_ring_id) == 8, "v4v ring id");
_Static_assert(sizeof(struct xen_v4v_ring) == 64, "v4v ring header");
_Static_assert(__builtin_offsetof(struct xen_v4v_ring, rx_ptr) == 20, "rx_ptr");
_Static_assert(__builtin_offsetof(struct xen_v4v_ring, tx_ptr) == 24, "tx_ptr");
_Static_assert(sizeof(struct xen_v4v_msg_hdr) == 16, "v4v msg hdr");
_Static_assert(sizeof(struct xen_v4v_iov) == 16, "v4v iov");
_Static_assert(sizeof(struct xen_v4v_send_addr) == 16, "v4v send addr");
_Static_assert(sizeof(struct xen_v4v_batch_ent) == 32, "v4v batch ent");
_Static_assert(__builtin_offsetof(struct xen_v4v_batch_ent, status) == 28, "status");
_Static_assert(sizeof(struct xen_v4v_register_ring) == 16, "v4v register");
_Static_assert(sizeof(struct xen_v4v_unregister_ring) == 8, "v4v unregister");
_Static_assert(sizeof(struct xen_v4v_ring_data_ent) == 24, "v4v ring data ent");
_Static_assert(sizeof(struct xen_v4v_ring_data) == 16, "v4v ring data");
_Static_assert(sizeof(struct xen_v4v_info) == 80, "v4v info");
_Static_assert(sizeof(struct xen_v4v_ring_info) == 48, "v4v ring info");
_Static_assert(sizeof(struct xen_v4v_fw_rule) == 16, "v4v fw rule");
#endif

#endif /* __XEN_PUBLIC_V4V_H__ */

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * tab-width: 4
 * indent-tabs-mode: nil
 * End:
 */
