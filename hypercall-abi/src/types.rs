//! Newtypes for every address space and handle.
//!
//! Arithmetic is by explicit checked methods, never by operators, so that
//! mixing a guest frame with a machine frame, or overflowing, takes a visible
//! call (the style of rust-vmm's `vm-memory`).

/// A domain id (`domid_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct DomId(pub u16);

impl DomId {
    /// The first id of Xen's reserved range; real domains are below it.
    pub const FIRST_RESERVED: DomId = DomId(0x7ff0);
    /// `DOMID_SELF`.
    pub const SELF_: DomId = DomId(0x7ff0);
    /// `DOMID_IO`.
    pub const IO: DomId = DomId(0x7ff1);
    /// `DOMID_XEN`.
    pub const XEN: DomId = DomId(0x7ff2);
    /// `DOMID_COW`.
    pub const COW: DomId = DomId(0x7ff3);
    /// `DOMID_INVALID`, also "any domain" in V4V ring ids.
    pub const INVALID: DomId = DomId(0x7ff4);
    /// `DOMID_IDLE`.
    pub const IDLE: DomId = DomId(0x7fff);
    /// `DOMID_SSHM`: the pseudo-domain that owns every static shared memory
    /// page. The first free id of the reserved range in Xen 4.17.
    pub const SSHM: DomId = DomId(0x7ff5);

    /// Whether this names a real (non-reserved) domain.
    pub const fn is_real(self) -> bool {
        self.0 < Self::FIRST_RESERVED.0
    }
}

macro_rules! frame_number {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// `self + pages`, or `None` on overflow.
            pub const fn checked_add(self, pages: PageCount) -> Option<Self> {
                match self.0.checked_add(pages.0) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// The distance `self - base` in pages, or `None` if `base > self`.
            pub const fn offset_from(self, base: Self) -> Option<PageCount> {
                match self.0.checked_sub(base.0) {
                    Some(v) => Some(PageCount(v)),
                    None => None,
                }
            }

            /// Whether the frame is aligned to `2^order` pages.
            pub const fn is_aligned(self, order: u32) -> bool {
                order < 64 && self.0 & ((1u64 << order) - 1) == 0
            }

            /// The byte address of the start of the frame, or `None` on overflow.
            pub const fn to_addr(self) -> Option<u64> {
                self.0.checked_mul(crate::PAGE_SIZE)
            }
        }
    };
}

frame_number!(
    /// A guest frame number: a page in a domain's physmap.
    Gfn
);
frame_number!(
    /// A machine frame number: a page of host memory.
    Mfn
);

/// A number of 4 KiB pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct PageCount(pub u64);

impl PageCount {
    /// `2^order` pages.
    pub const fn from_order(order: u32) -> PageCount {
        PageCount(1u64 << order)
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: PageCount) -> Option<PageCount> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(PageCount(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` on underflow.
    pub const fn checked_sub(self, other: PageCount) -> Option<PageCount> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(PageCount(v)),
            None => None,
        }
    }

    /// The size in bytes, or `None` on overflow.
    pub const fn to_bytes(self) -> Option<u64> {
        self.0.checked_mul(crate::PAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_refuses_overflow() {
        assert_eq!(Gfn(u64::MAX).checked_add(PageCount(1)), None);
        assert_eq!(Gfn(10).checked_add(PageCount(2)), Some(Gfn(12)));
        assert_eq!(Gfn(10).offset_from(Gfn(11)), None);
        assert_eq!(Mfn(1 << 60).to_addr(), None);
        assert!(Gfn(512).is_aligned(9));
        assert!(!Gfn(513).is_aligned(9));
        assert_eq!(PageCount(1).checked_sub(PageCount(2)), None);
        assert!(DomId(5).is_real());
        assert!(!DomId::SSHM.is_real());
    }
}
