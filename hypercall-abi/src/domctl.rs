//! The `struct xen_domctl` envelope of Xen 4.17 (`public/domctl.h`), reduced
//! to what is needed to issue the new sub-op exactly as a toolstack does.

use static_assertions::{assert_eq_align, assert_eq_size, const_assert_eq};

use crate::sshm::StaticShm;
use crate::types::DomId;

/// `XEN_DOMCTL_INTERFACE_VERSION` after this series (4.17 has `0x15`; a new
/// domctl bumps it).
pub const INTERFACE_VERSION: u32 = 0x0000_0016;
/// `XEN_DOMCTL_INTERFACE_VERSION` of unpatched Xen 4.17.
pub const INTERFACE_VERSION_4_17: u32 = 0x0000_0015;

/// `XEN_DOMCTL_static_shm`: the first free domctl number in Xen 4.17
/// (`XEN_DOMCTL_set_paging_mempool_size` is 86).
pub const XEN_DOMCTL_STATIC_SHM: u32 = 87;

/// Size of the domctl payload union in bytes.
pub const PAYLOAD_BYTES: usize = 128;

/// The domctl payload union (`union { ...; uint8_t pad[128]; } u`), kept as
/// aligned raw words so that it can be read without `unsafe`; typed views are
/// made by value ([`Domctl::static_shm_payload`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Payload {
    /// The union's bytes, as native-endian words.
    pub words: [u64; PAYLOAD_BYTES / 8],
}

/// `struct xen_domctl`.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Domctl {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// Must be [`INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The target domain.
    pub domain: u16,
    /// `_pad[3]`.
    pub pad: [u16; 3],
    /// The sub-op's arguments.
    pub u: Payload,
}

crate::wire!(Payload { words: u64s });
crate::wire!(Domctl { cmd: u32, interface_version: u32, domain: u16, pad: u16s, u: nested });

impl Domctl {
    /// A `XEN_DOMCTL_static_shm` domctl on `domain`.
    pub fn static_shm(domain: DomId, op: &StaticShm) -> Domctl {
        let mut d = Domctl {
            cmd: XEN_DOMCTL_STATIC_SHM,
            interface_version: INTERFACE_VERSION,
            domain: domain.0,
            pad: [0; 3],
            u: Payload { words: [0; PAYLOAD_BYTES / 8] },
        };
        d.set_static_shm_payload(op);
        d
    }

    /// The payload read as a static-shm sub-op.
    pub fn static_shm_payload(&self) -> StaticShm {
        StaticShm::from_bytes(&self.u.to_bytes())
    }

    /// Writes a static-shm sub-op into the payload (the rest stays zero).
    pub fn set_static_shm_payload(&mut self, op: &StaticShm) {
        let mut b = [0u8; PAYLOAD_BYTES];
        b[..StaticShm::SIZE].copy_from_slice(&op.to_bytes());
        self.u = Payload::from_bytes(&b);
    }
}

/// Size of `struct xen_domctl` in bytes.
pub const SIZE: usize = Domctl::SIZE;

assert_eq_size!(Payload, [u8; 128]);
assert_eq_align!(Payload, u64);
assert_eq_size!(Domctl, [u8; 144]);
assert_eq_align!(Domctl, u64);
const_assert_eq!(core::mem::offset_of!(Domctl, cmd), 0);
const_assert_eq!(core::mem::offset_of!(Domctl, interface_version), 4);
const_assert_eq!(core::mem::offset_of!(Domctl, domain), 8);
const_assert_eq!(core::mem::offset_of!(Domctl, pad), 10);
const_assert_eq!(core::mem::offset_of!(Domctl, u), 16);
