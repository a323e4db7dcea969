//! Argo's guest ABI (Xen's `public/argo.h`, upstream since Xen 4.12), as
//! the benchmarks use it: `make bench-xen` (`bench`, dom0 to itself) and
//! the two-domain benchmark (`bench2`, guest to guest). Defined here, once,
//! because hypercall-abi only carries this series' interfaces.
//!
//! `__HYPERVISOR_argo_op` (39) takes `(cmd, arg1, arg2, arg3, arg4)`:
//!
//! | cmd | arg1 | arg2 | arg3 | arg4 |
//! |---|---|---|---|---|
//! | `OP_REGISTER_RING` | `*RegisterRing` | `*u64` gfns | number of gfns | flags |
//! | `OP_UNREGISTER_RING` | `*UnregisterRing` | 0 | 0 | 0 |
//! | `OP_SENDV` | `*SendAddr` | `*Iov` | number of iovs | message type |
//! | `OP_NOTIFY` | `*RingData` (then entries), or 0 | 0 | 0 | 0 |
//!
//! A ring is `xen_argo_ring_t` ([`RING_HEADER_BYTES`]: `rx_ptr` at 0,
//! `tx_ptr` at 4, reserved) followed by the data; each message is a
//! [`MSG_HEADER_BYTES`]-byte `xen_argo_ring_message_header` (`len` counts
//! the header) and the payload, rounded up to [`SLOT_BYTES`], wrapping at
//! the end of the data. Xen raises `VIRQ_ARGO` on the receiver for every
//! message, and on a sender that asked (notify with `space_required`) when
//! the receiver's next notify finds the space.

/// `XEN_ARGO_OP_register_ring`.
pub const OP_REGISTER_RING: u64 = 1;
/// `XEN_ARGO_OP_unregister_ring`.
pub const OP_UNREGISTER_RING: u64 = 2;
/// `XEN_ARGO_OP_sendv`.
pub const OP_SENDV: u64 = 3;
/// `XEN_ARGO_OP_notify`.
pub const OP_NOTIFY: u64 = 4;

/// `XEN_ARGO_DOMID_ANY` (`DOMID_INVALID`): any partner; as a send
/// address's source, the sender itself.
pub const DOMID_ANY: u16 = 0x7ff4;
/// Bytes of `xen_argo_ring_t` before the data.
pub const RING_HEADER_BYTES: usize = 64;
/// Offsets of `rx_ptr` and `tx_ptr` in the ring header.
pub const RING_RX_PTR: usize = 0;
pub const RING_TX_PTR: usize = 4;
/// Bytes of `struct xen_argo_ring_message_header`.
pub const MSG_HEADER_BYTES: u32 = 16;
/// `XEN_ARGO_MSG_SLOT_SIZE`: messages are padded to a multiple of this.
pub const SLOT_BYTES: u32 = 16;

/// Notify entry flags (`XEN_ARGO_RING_*`, OUT).
pub const RING_EXISTS: u16 = 1 << 0;
pub const RING_SUFFICIENT: u16 = 1 << 3;
pub const RING_EMSGSIZE: u16 = 1 << 4;

/// `xen_argo_register_ring_t`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RegisterRing {
    pub aport: u32,
    pub partner_id: u16,
    pub pad: u16,
    pub len: u32,
}

/// `xen_argo_unregister_ring_t`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct UnregisterRing {
    pub aport: u32,
    pub partner_id: u16,
    pub pad: u16,
}

/// `xen_argo_addr_t`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Addr {
    pub aport: u32,
    pub domain_id: u16,
    pub pad: u16,
}

/// `xen_argo_send_addr_t`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct SendAddr {
    pub src: Addr,
    pub dst: Addr,
}

/// `xen_argo_iov_t`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Iov {
    pub iov_hnd: u64,
    pub iov_len: u32,
    pub pad: u32,
}

/// `xen_argo_ring_data_t` (followed by `nent` entries).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RingData {
    pub nent: u32,
    pub pad: u32,
}

/// `xen_argo_ring_data_ent_t`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RingDataEnt {
    pub ring: Addr,
    pub flags: u16,
    pub pad: u16,
    pub space_required: u32,
    pub max_message_size: u32,
}

/// Pages of a ring of `len` data bytes (`NPAGES_RING`).
pub const fn ring_pages(len: u32) -> usize {
    (len.next_multiple_of(SLOT_BYTES) as usize + RING_HEADER_BYTES).div_ceil(4096)
}
