//! A V4V ring in guest memory as `hypercall_abi::ring`'s guest-side code
//! (`prepare`, `RingReader`) sees it: the one adapter from [`Guest`] to
//! [`RingMemory`].

use core::cell::RefCell;

use hypercall_abi::ring::{RingError, RingMemory};

use crate::Guest;

/// The ring whose header is at guest physical address `base`, read and
/// written through the guest `G` (owned, or a `&mut` borrow: `Guest` is
/// implemented for `&mut G`). A hole reads as [`RingError::Fault`].
pub struct GuestRing<G> {
    // `RingMemory::read` takes `&self`, `Guest::read` takes `&mut self`.
    g: RefCell<G>,
    base: u64,
}

impl<G: Guest> GuestRing<G> {
    /// The ring at `base` of `g`.
    pub fn new(g: G, base: u64) -> Self {
        GuestRing { g: RefCell::new(g), base }
    }

    /// The guest back.
    pub fn into_inner(self) -> G {
        self.g.into_inner()
    }
}

impl<G: Guest> RingMemory for GuestRing<G> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        self.g.borrow_mut().try_read(self.base + offset as u64, buf).map_err(|_| RingError::Fault)
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        self.g.get_mut().try_write(self.base + offset as u64, buf).map_err(|_| RingError::Fault)
    }
}
