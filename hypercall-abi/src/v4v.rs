//! `__HYPERVISOR_v4v_op`: hypervisor-mediated messaging between domains.
//!
//! `v4v_op(cmd, arg1, arg2, arg3, arg4)`; pointer arguments are guest
//! handles in the caller's address space. A receiver registers a ring in its
//! own pages; a sender asks Xen to copy a message into it; Xen stamps the true
//! source and raises `VIRQ_V4V` on the receiver.
//!
//! | cmd | arg1 | arg2 | arg3 | arg4 |
//! |---|---|---|---|---|
//! | `OP_REGISTER_RING` | `*RegisterRing` | `*u64` gfn list | number of gfns | `REGISTER_F_*` |
//! | `OP_UNREGISTER_RING` | `*UnregisterRing` | 0 | 0 | 0 |
//! | `OP_SENDV` | `*SendAddr` | `*Iov` array | niov | message type |
//! | `OP_NOTIFY` | `*RingData` or 0 | 0 | 0 | 0 |
//! | `OP_INFO` | `*Info` (OUT) | `*RingInfo` (IN port / OUT) or 0 | 0 | 0 |
//! | `OP_FW_ADD` | `*FwRule` | position | 0 | 0 |
//! | `OP_FW_DEL` | `*FwRule` | 0 | 0 | 0 |
//! | `OP_FW_LIST` | `*FwRule` array (OUT) | first index | capacity | 0 |
//! | `OP_SENDV_BATCH` | `*BatchEnt` array (IN, `status` OUT) | `*Iov` array | number of entries | number of iovs |
//!
//! # Batched sends
//!
//! `OP_SENDV_BATCH` carries up to [`BATCH_MAX`] messages, to one ring or
//! several, in one hypercall: entry `i` is a [`SendAddr`], a message type
//! and `niov` iovs starting at `iov_first` in the batch's one iov array (at
//! most [`BATCH_IOVS_MAX`] iovs). Both arrays are copied into Xen once and
//! every entry is checked before anything is sent: a malformed entry fails
//! the whole call with the errno `OP_SENDV` would give for it (and
//! `-EINVAL` for an iov range outside the array), nothing sent, nothing
//! written back.
//!
//! Then the messages are sent in array order, each exactly as `OP_SENDV`
//! sends it (so whole or not at all, and in order per ring), until one is
//! not sent (its ring is full: `-EAGAIN`; absent, refused, too small for it
//! ...). The batch stops there. The result is the number of messages sent;
//! if that is none, the error of the first. Each entry processed gets its
//! `status` written back: the payload bytes sent, or the `-errno` of the
//! message that stopped the batch; entries after it are not touched. The
//! result is authoritative (a fault writing `status` back does not change
//! it: messages sent stay sent).
//!
//! When every payload of a batch lies within 8 KiB of the sender's memory
//! that is readable, Xen copies that range in once at the first step and
//! sends the messages from its copy (one guest copy for all the payloads
//! instead of one per message); otherwise each payload is copied when its
//! message is sent, and a fault stops the batch at that message
//! (`-EFAULT`). Either way a payload is read once.
//!
//! A batch is preemptible as `OP_SENDV` is: after 64 KiB of payload in a
//! step (`rust_hv::v4v::SEND_STEP_BYTES_MAX`), or when Xen must preempt, it keeps its progress and
//! returns through a continuation (same arguments); a large message in it
//! is copied in bounded steps as `OP_SENDV` copies one. Wake-ups
//! (`VIRQ_V4V`) are raised once per domain per hypercall step, so a batch
//! that runs in one step raises at most one per destination, whatever the
//! number of messages. One preemptible send (`OP_SENDV` or a batch) per
//! domain is in progress at a time (`-EBUSY` for another).

use core::mem::{offset_of, size_of};

use static_assertions::{assert_eq_align, assert_eq_size, const_assert_eq};

pub use crate::bytes::Wire;
use crate::errno::Errno;
use crate::wire;

/// Register a ring (or refresh a registered one).
pub const OP_REGISTER_RING: u32 = 1;
/// Unregister a ring.
pub const OP_UNREGISTER_RING: u32 = 2;
/// Send a message gathered from an iov array. The send address and the
/// iov array are read once each; with one copy if the array follows the
/// address within 256 bytes of the same page (the fastest layout).
pub const OP_SENDV: u32 = 3;
/// Query rings' space and ask to be woken when it is available.
pub const OP_NOTIFY: u32 = 4;
/// Limits, the caller's statistics and optionally one ring's.
pub const OP_INFO: u32 = 5;
/// Add a firewall rule (control domain only).
pub const OP_FW_ADD: u32 = 6;
/// Delete a firewall rule (control domain only).
pub const OP_FW_DEL: u32 = 7;
/// List firewall rules (control domain only).
pub const OP_FW_LIST: u32 = 8;
/// Send several messages in one hypercall (see "Batched sends" above).
pub const OP_SENDV_BATCH: u32 = 9;

/// `RingHeader::magic`.
pub const RING_MAGIC: u64 = 0xa822_f72b_b0b9_d8cc;
/// Ring data is made of slots of this many bytes; lengths and pointers are
/// multiples of it.
pub const SLOT_BYTES: u32 = 16;
/// Bytes of the ring header that precedes the data.
pub const RING_HEADER_BYTES: u32 = 64;
/// Smallest ring (data bytes): one message header, one slot of payload and
/// the slot that always stays free.
pub const RING_LEN_MIN: u32 = 3 * SLOT_BYTES;
/// Largest ring (data bytes): 16 MiB, as Argo.
pub const RING_LEN_MAX: u32 = 16 << 20;
/// Most pages a ring may span (header + largest data, rounded up).
pub const RING_PAGES_MAX: u32 = (RING_LEN_MAX + RING_HEADER_BYTES).div_ceil(4096);
/// Most rings one domain may register.
pub const RINGS_PER_DOMAIN_MAX: u32 = 128;
/// Most iovs in one sendv.
pub const IOV_MAX: u32 = 8;
/// Largest message payload, in bytes (a sendv's total length).
pub const MSG_MAX: u32 = RING_LEN_MAX - 2 * SLOT_BYTES;
/// Most entries in one notify.
pub const NOTIFY_ENTRIES_MAX: u32 = 256;
/// Most pending space-available waiters per ring.
pub const PENDING_PER_RING_MAX: u32 = 32;
/// Most firewall rules.
pub const FW_RULES_MAX: u32 = 256;
/// Most messages in one `OP_SENDV_BATCH`.
pub const BATCH_MAX: u32 = 64;
/// Most iovs in one `OP_SENDV_BATCH`'s iov array.
pub const BATCH_IOVS_MAX: u32 = 128;

/// "Any domain" in a ring id's partner or a firewall rule.
pub const DOMID_ANY: u16 = crate::types::DomId::INVALID.0;
/// "Any port" in a firewall rule.
pub const PORT_ANY: u32 = u32::MAX;

/// `REGISTER_F_FAIL_EXIST`: fail with `-EEXIST` instead of refreshing an
/// existing ring with the same id.
pub const REGISTER_F_FAIL_EXIST: u32 = 1 << 0;
/// All register flags.
pub const REGISTER_F_ALL: u32 = REGISTER_F_FAIL_EXIST;

/// Ring header flag (receiver-written): raise `VIRQ_V4V` only when the ring
/// goes from empty to non-empty (notification suppression).
pub const RING_F_NOTIFY_EMPTY_ONLY: u32 = 1 << 0;

/// Ring-data entry flag (IN): wake me when `space_required` fits.
pub const RD_F_WAKE: u16 = 1 << 0;
/// Ring-data entry flag (OUT): the ring is empty.
pub const RD_F_EMPTY: u16 = 1 << 1;
/// Ring-data entry flag (OUT): the ring exists and the caller may send to it.
pub const RD_F_EXISTS: u16 = 1 << 2;
/// Ring-data entry flag (OUT): a wake-up is pending for the caller.
pub const RD_F_PENDING: u16 = 1 << 3;
/// Ring-data entry flag (OUT): `space_required` fits now.
pub const RD_F_SUFFICIENT: u16 = 1 << 4;
/// Ring-data input flags.
pub const RD_F_IN_ALL: u16 = RD_F_WAKE;

/// Firewall action: allow.
pub const FW_ACCEPT: u32 = 1;
/// Firewall action: refuse with `-ECONNREFUSED`.
pub const FW_REJECT: u32 = 2;

/// `struct xen_v4v_addr`: a (domain, port) endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C)]
pub struct Addr {
    /// Port.
    pub port: u32,
    /// Domain.
    pub domain: u16,
    /// Must be zero.
    pub pad: u16,
}

/// `struct xen_v4v_ring_id`: identifies a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C)]
pub struct RingId {
    /// Port.
    pub port: u32,
    /// The receiving domain.
    pub domain: u16,
    /// The only domain that may send, or [`DOMID_ANY`].
    pub partner: u16,
}

/// `struct xen_v4v_ring`: the 64-byte header at the start of a ring's first
/// page, followed by `len` bytes of data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RingHeader {
    /// [`RING_MAGIC`], written by the receiver before registering.
    pub magic: u64,
    /// Written by Xen at registration.
    pub id: RingId,
    /// Data bytes, a multiple of [`SLOT_BYTES`]; Xen uses the registered value.
    pub len: u32,
    /// Receiver-owned: where the receiver reads next.
    pub rx_ptr: u32,
    /// Xen-owned: where Xen writes next. Xen keeps its own copy and only
    /// publishes it here.
    pub tx_ptr: u32,
    /// Receiver-owned `RING_F_*`.
    pub flags: u32,
    /// Must be zero.
    pub reserved: [u8; 32],
}

/// `struct xen_v4v_msg_hdr`: precedes every message in a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MsgHeader {
    /// Payload length in bytes (excluding this header).
    pub len: u32,
    /// Message type given by the sender.
    pub msg_type: u32,
    /// The true source, stamped by Xen.
    pub source: Addr,
}

/// `struct xen_v4v_iov`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Iov {
    /// Guest address of the data.
    pub base: u64,
    /// Length in bytes.
    pub len: u32,
    /// Must be zero.
    pub pad: u32,
}

/// `struct xen_v4v_send_addr`: sendv's arg1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SendAddr {
    /// Source; its domain must be the caller or `DOMID_SELF`-style 0x7ff0
    /// (`-EPERM` otherwise). Xen stamps the caller regardless.
    pub src: Addr,
    /// Destination ring's (domain, port).
    pub dst: Addr,
}

/// `struct xen_v4v_batch_ent`: one message of an `OP_SENDV_BATCH`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BatchEnt {
    /// Source and destination, as `OP_SENDV`'s arg1.
    pub addr: SendAddr,
    /// The message's first iov in the batch's iov array.
    pub iov_first: u32,
    /// Its iovs: `1..=IOV_MAX`.
    pub niov: u32,
    /// The message type.
    pub msg_type: u32,
    /// OUT: payload bytes sent, or the `-errno` of the message that stopped
    /// the batch. Ignored on input.
    pub status: i32,
}

/// `struct xen_v4v_register_ring`: register's arg1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RegisterRing {
    /// Port.
    pub port: u32,
    /// Partner domain or [`DOMID_ANY`].
    pub partner: u16,
    /// Must be zero.
    pub pad: u16,
    /// Data bytes.
    pub len: u32,
    /// Must be zero.
    pub pad2: u32,
}

/// `struct xen_v4v_unregister_ring`: unregister's arg1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UnregisterRing {
    /// Port.
    pub port: u32,
    /// Partner domain or [`DOMID_ANY`].
    pub partner: u16,
    /// Must be zero.
    pub pad: u16,
}

/// `struct xen_v4v_ring_data_ent`: one ring asked about in a notify.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RingDataEnt {
    /// The destination ring's (domain, port).
    pub ring: Addr,
    /// IN `RD_F_WAKE`; OUT `RD_F_*`.
    pub flags: u16,
    /// Must be zero.
    pub pad: u16,
    /// IN: payload bytes the caller wants to send.
    pub space_required: u32,
    /// OUT: the largest payload that could be sent now.
    pub max_message_size: u32,
    /// Must be zero.
    pub pad2: u32,
}

/// `struct xen_v4v_ring_data`: notify's arg1, followed by `nent` entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RingData {
    /// Number of entries that follow.
    pub nent: u32,
    /// Must be zero.
    pub pad: u32,
    /// Must be zero.
    pub reserved: u64,
}

/// `struct xen_v4v_info`: info's arg1 (OUT).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Info {
    /// [`RINGS_PER_DOMAIN_MAX`].
    pub rings_max: u32,
    /// [`RING_LEN_MAX`].
    pub ring_len_max: u32,
    /// [`IOV_MAX`].
    pub iov_max: u32,
    /// [`MSG_MAX`].
    pub msg_max: u32,
    /// [`NOTIFY_ENTRIES_MAX`].
    pub notify_max: u32,
    /// [`PENDING_PER_RING_MAX`].
    pub pending_max: u32,
    /// Rings the caller has registered.
    pub nr_rings: u32,
    /// Must be zero.
    pub pad: u32,
    /// Messages the caller sent.
    pub msgs_sent: u64,
    /// Payload bytes the caller sent.
    pub bytes_sent: u64,
    /// Messages delivered into the caller's rings.
    pub msgs_received: u64,
    /// Sends by the caller refused for lack of space (`-EAGAIN`).
    pub sends_full: u64,
    /// Messages sent through V4V by all domains since boot (control domain
    /// only: 0 for every other caller).
    pub global_msgs: u64,
    /// Payload bytes sent through V4V by all domains since boot (control
    /// domain only: 0 for every other caller).
    pub global_bytes: u64,
}

/// `struct xen_v4v_ring_info`: info's optional arg2 (IN `port`/`partner`, OUT
/// the rest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RingInfo {
    /// IN: the caller's ring.
    pub id: RingId,
    /// Data bytes.
    pub len: u32,
    /// Xen's `tx_ptr`.
    pub tx_ptr: u32,
    /// `rx_ptr` as last read (sanitised).
    pub rx_ptr: u32,
    /// Waiters queued for space.
    pub nr_pending: u32,
    /// Messages delivered into the ring.
    pub msgs: u64,
    /// Payload bytes delivered into the ring.
    pub bytes: u64,
    /// Sends refused for lack of space.
    pub full: u64,
}

/// `struct xen_v4v_fw_rule`: a firewall rule. Rules are matched in order;
/// the first match decides; no match means the default policy, accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FwRule {
    /// Source domain or [`DOMID_ANY`].
    pub src_domain: u16,
    /// Destination domain or [`DOMID_ANY`].
    pub dst_domain: u16,
    /// Source port or [`PORT_ANY`].
    pub src_port: u32,
    /// Destination port or [`PORT_ANY`].
    pub dst_port: u32,
    /// [`FW_ACCEPT`] or [`FW_REJECT`].
    pub action: u32,
}

macro_rules! pin {
    ($t:ty, $size:expr, $align:ty, [$($f:ident = $o:expr),* $(,)?]) => {
        assert_eq_size!($t, [u8; $size]);
        assert_eq_align!($t, $align);
        $(const_assert_eq!(offset_of!($t, $f), $o);)*
    };
}

pin!(Addr, 8, u32, [port = 0, domain = 4, pad = 6]);
pin!(RingId, 8, u32, [port = 0, domain = 4, partner = 6]);
pin!(RingHeader, 64, u64, [magic = 0, id = 8, len = 16, rx_ptr = 20, tx_ptr = 24, flags = 28, reserved = 32]);
pin!(MsgHeader, 16, u32, [len = 0, msg_type = 4, source = 8]);
pin!(Iov, 16, u64, [base = 0, len = 8, pad = 12]);
pin!(SendAddr, 16, u32, [src = 0, dst = 8]);
pin!(BatchEnt, 32, u32, [addr = 0, iov_first = 16, niov = 20, msg_type = 24, status = 28]);
pin!(RegisterRing, 16, u32, [port = 0, partner = 4, pad = 6, len = 8, pad2 = 12]);
pin!(UnregisterRing, 8, u32, [port = 0, partner = 4, pad = 6]);
pin!(RingDataEnt, 24, u32, [ring = 0, flags = 8, pad = 10, space_required = 12, max_message_size = 16, pad2 = 20]);
pin!(RingData, 16, u64, [nent = 0, pad = 4, reserved = 8]);
pin!(
    Info,
    80,
    u64,
    [
        rings_max = 0,
        ring_len_max = 4,
        iov_max = 8,
        msg_max = 12,
        notify_max = 16,
        pending_max = 20,
        nr_rings = 24,
        pad = 28,
        msgs_sent = 32,
        bytes_sent = 40,
        msgs_received = 48,
        sends_full = 56,
        global_msgs = 64,
        global_bytes = 72
    ]
);
pin!(RingInfo, 48, u64, [id = 0, len = 8, tx_ptr = 12, rx_ptr = 16, nr_pending = 20, msgs = 24, bytes = 32, full = 40]);
pin!(FwRule, 16, u32, [src_domain = 0, dst_domain = 2, src_port = 4, dst_port = 8, action = 12]);

/// Rounds a payload length up to whole slots.
pub const fn slots_bytes(len: u32) -> Option<u32> {
    match len.checked_add(SLOT_BYTES - 1) {
        Some(v) => Some(v & !(SLOT_BYTES - 1)),
        None => None,
    }
}

/// Ring space a message of `len` payload bytes takes: header plus payload,
/// rounded up to slots.
pub const fn message_bytes(len: u32) -> Option<u32> {
    match len.checked_add(size_of::<MsgHeader>() as u32) {
        Some(v) => slots_bytes(v),
        None => None,
    }
}

impl Addr {
    /// Checks the padding.
    pub fn validate(&self) -> Result<(), Errno> {
        if self.pad != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl RegisterRing {
    /// Checks padding and the ring length (`-EINVAL` for 0, below
    /// [`RING_LEN_MIN`], not a multiple of [`SLOT_BYTES`]; `-E2BIG` above
    /// [`RING_LEN_MAX`]).
    pub fn validate(&self) -> Result<(), Errno> {
        if self.pad != 0 || self.pad2 != 0 {
            return Err(Errno::EINVAL);
        }
        if self.len > RING_LEN_MAX {
            return Err(Errno::E2BIG);
        }
        if self.len < RING_LEN_MIN || !self.len.is_multiple_of(SLOT_BYTES) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Pages the ring must span: header plus data, rounded up.
    pub const fn pages(&self) -> u32 {
        (self.len + RING_HEADER_BYTES).div_ceil(4096)
    }
}

impl UnregisterRing {
    /// Checks the padding.
    pub fn validate(&self) -> Result<(), Errno> {
        if self.pad != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl Iov {
    /// Checks the padding.
    pub fn validate(&self) -> Result<(), Errno> {
        if self.pad != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl SendAddr {
    /// Checks the padding.
    pub fn validate(&self) -> Result<(), Errno> {
        self.src.validate()?;
        self.dst.validate()
    }
}

impl BatchEnt {
    /// Checks the addresses' padding and the iov count (`-EINVAL` for 0,
    /// `-E2BIG` above [`IOV_MAX`]), and that the iovs lie inside a batch
    /// iov array of `niov_total` (`-EINVAL`). `status` is output only.
    pub fn validate(&self, niov_total: u32) -> Result<(), Errno> {
        self.addr.validate()?;
        if self.niov == 0 {
            return Err(Errno::EINVAL);
        }
        if self.niov > IOV_MAX {
            return Err(Errno::E2BIG);
        }
        match self.iov_first.checked_add(self.niov) {
            Some(end) if end <= niov_total => Ok(()),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// Checks `OP_SENDV_BATCH`'s counts: entries `1..=BATCH_MAX`, iovs
/// `1..=BATCH_IOVS_MAX` (`-EINVAL` for 0, `-E2BIG` above the maximum).
pub fn validate_batch_counts(nent: u64, niov: u64) -> Result<(), Errno> {
    for (n, max) in [(nent, BATCH_MAX), (niov, BATCH_IOVS_MAX)] {
        if n == 0 {
            return Err(Errno::EINVAL);
        }
        if n > u64::from(max) {
            return Err(Errno::E2BIG);
        }
    }
    Ok(())
}

impl RingData {
    /// Checks padding and the entry count (`-E2BIG` above
    /// [`NOTIFY_ENTRIES_MAX`]).
    pub fn validate(&self) -> Result<(), Errno> {
        if self.pad != 0 || self.reserved != 0 {
            return Err(Errno::EINVAL);
        }
        if self.nent > NOTIFY_ENTRIES_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(())
    }
}

impl RingDataEnt {
    /// Checks padding and input flags.
    pub fn validate(&self) -> Result<(), Errno> {
        self.ring.validate()?;
        if self.pad != 0 || self.pad2 != 0 || self.flags & !RD_F_IN_ALL != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl FwRule {
    /// Checks the action.
    pub fn validate(&self) -> Result<(), Errno> {
        if self.action != FW_ACCEPT && self.action != FW_REJECT {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

wire!(Addr { port: u32, domain: u16, pad: u16 });
wire!(RingId { port: u32, domain: u16, partner: u16 });
wire!(RingHeader { magic: u64, id: nested, len: u32, rx_ptr: u32, tx_ptr: u32, flags: u32, reserved: bytes });
wire!(MsgHeader { len: u32, msg_type: u32, source: nested });
wire!(Iov { base: u64, len: u32, pad: u32 });
wire!(SendAddr { src: nested, dst: nested });
wire!(BatchEnt { addr: nested, iov_first: u32, niov: u32, msg_type: u32, status: i32 });
wire!(RegisterRing { port: u32, partner: u16, pad: u16, len: u32, pad2: u32 });
wire!(UnregisterRing { port: u32, partner: u16, pad: u16 });
wire!(RingDataEnt { ring: nested, flags: u16, pad: u16, space_required: u32, max_message_size: u32, pad2: u32 });
wire!(RingData { nent: u32, pad: u32, reserved: u64 });
wire!(Info {
    rings_max: u32,
    ring_len_max: u32,
    iov_max: u32,
    msg_max: u32,
    notify_max: u32,
    pending_max: u32,
    nr_rings: u32,
    pad: u32,
    msgs_sent: u64,
    bytes_sent: u64,
    msgs_received: u64,
    sends_full: u64,
    global_msgs: u64,
    global_bytes: u64,
});
wire!(RingInfo { id: nested, len: u32, tx_ptr: u32, rx_ptr: u32, nr_pending: u32, msgs: u64, bytes: u64, full: u64 });
wire!(FwRule { src_domain: u16, dst_domain: u16, src_port: u32, dst_port: u32, action: u32 });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_validation() {
        let ok = RegisterRing { port: 1, partner: DOMID_ANY, len: 4096, ..Default::default() };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.pages(), 2);
        for (len, e) in
            [(0, Errno::EINVAL), (32, Errno::EINVAL), (4100, Errno::EINVAL), (RING_LEN_MAX + 16, Errno::E2BIG)]
        {
            assert_eq!(RegisterRing { len, ..ok }.validate(), Err(e), "len {len}");
        }
        assert_eq!(RegisterRing { pad: 1, ..ok }.validate(), Err(Errno::EINVAL));
        assert_eq!(RegisterRing { pad2: 1, ..ok }.validate(), Err(Errno::EINVAL));
    }

    #[test]
    fn batch_validation() {
        let ok = BatchEnt { iov_first: 2, niov: 2, ..Default::default() };
        assert_eq!(ok.validate(4), Ok(()));
        assert_eq!(ok.validate(3), Err(Errno::EINVAL), "iovs past the array");
        assert_eq!(BatchEnt { niov: 0, ..ok }.validate(4), Err(Errno::EINVAL));
        assert_eq!(BatchEnt { niov: IOV_MAX + 1, iov_first: 0, ..ok }.validate(100), Err(Errno::E2BIG));
        assert_eq!(BatchEnt { iov_first: u32::MAX, ..ok }.validate(4), Err(Errno::EINVAL), "wraps");
        let mut bad = ok;
        bad.addr.dst.pad = 1;
        assert_eq!(bad.validate(4), Err(Errno::EINVAL));
        assert_eq!(BatchEnt { status: -11, ..ok }.validate(4), Ok(()), "status is output only");
        assert_eq!(validate_batch_counts(1, 1), Ok(()));
        assert_eq!(validate_batch_counts(BATCH_MAX as u64, BATCH_IOVS_MAX as u64), Ok(()));
        assert_eq!(validate_batch_counts(0, 1), Err(Errno::EINVAL));
        assert_eq!(validate_batch_counts(1, 0), Err(Errno::EINVAL));
        assert_eq!(validate_batch_counts(BATCH_MAX as u64 + 1, 1), Err(Errno::E2BIG));
        assert_eq!(validate_batch_counts(1, BATCH_IOVS_MAX as u64 + 1), Err(Errno::E2BIG));
        assert_eq!(validate_batch_counts(1 << 40, 1), Err(Errno::E2BIG));
    }

    #[test]
    fn message_sizes() {
        assert_eq!(message_bytes(0), Some(16));
        assert_eq!(message_bytes(1), Some(32));
        assert_eq!(message_bytes(16), Some(32));
        assert_eq!(message_bytes(u32::MAX), None);
    }

    #[test]
    fn wire_round_trip() {
        let h = RingHeader {
            magic: RING_MAGIC,
            id: RingId { port: 7, domain: 3, partner: DOMID_ANY },
            len: 4096,
            rx_ptr: 32,
            tx_ptr: 64,
            flags: RING_F_NOTIFY_EMPTY_ONLY,
            reserved: [9; 32],
        };
        let mut b = [0u8; 64];
        h.write(&mut b);
        assert_eq!(RingHeader::read(&b), h);
        assert_eq!(u32::from_ne_bytes(b[20..24].try_into().unwrap()), 32);
        let e = RingDataEnt {
            ring: Addr { port: 1, domain: 2, pad: 0 },
            flags: RD_F_WAKE,
            space_required: 5,
            ..Default::default()
        };
        let mut b = [0u8; 24];
        e.write(&mut b);
        assert_eq!(RingDataEnt::read(&b), e);
        assert_eq!(RingDataEnt { flags: 1 << 9, ..e }.validate(), Err(Errno::EINVAL));
    }
}
