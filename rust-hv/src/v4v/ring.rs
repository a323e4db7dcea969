//! One registered ring: Xen's private view of it and the byte-level access to
//! its pinned pages.
//!
//! Everything here runs with the ring's bucket lock held (see the locking
//! block in `mod.rs`); nothing here takes a lock.

use alloc::vec::Vec;

use hypercall_abi::v4v::{
    message_bytes, MsgHeader, RingHeader, RingId, Wire, PENDING_PER_RING_MAX, RING_F_NOTIFY_EMPTY_ONLY,
    RING_HEADER_BYTES, SLOT_BYTES,
};
use hypercall_abi::{DomId, Errno, Gfn, Mfn, PAGE_SIZE};

use crate::platform::Platform;

/// Byte offsets of the ring header's fields, from the ABI type itself
/// (pinned there and cross-checked against the C header).
const HDR_ID: usize = core::mem::offset_of!(RingHeader, id);
const HDR_LEN: usize = core::mem::offset_of!(RingHeader, len);
const HDR_RX: usize = core::mem::offset_of!(RingHeader, rx_ptr);
const HDR_TX: usize = core::mem::offset_of!(RingHeader, tx_ptr);
const HDR_FLAGS: usize = core::mem::offset_of!(RingHeader, flags);

/// A space-available waiter: `dom` wants to send `space` payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub dom: DomId,
    pub space: u32,
}

/// A message being written by a send, during one hypercall step only (a
/// parked send releases it). At most one per ring: its bytes sit between
/// the published `tx` and `tx + bytes` and stay invisible until the send
/// completes, so a reader never sees half a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Unique per send, so that a step of a cancelled send cannot write into
    /// a later send's reservation.
    pub token: u64,
    /// The sending domain (cancelled when it dies).
    pub owner: DomId,
    /// Ring space of the whole message (header + payload, slot-rounded).
    pub bytes: u32,
}

/// Xen's state of a registered ring; `M` is the platform's
/// [`Platform::RingMap`].
pub(crate) struct Ring<M> {
    /// Unique per registration: a slot reused for another ring never matches
    /// a stale lookup.
    pub generation: u64,
    pub id: RingId,
    /// Data bytes (excluding the 64-byte header), as registered.
    pub len: u32,
    pub gfns: Vec<Gfn>,
    /// One pin (general + writable type reference) per page, dropped at
    /// unregistration.
    pub mfns: Vec<Mfn>,
    /// The pages mapped once, virtually contiguous, if the caps
    /// ([`RING_MAP_PAGES_PER_DOMAIN_MAX`], [`RING_MAP_PAGES_MAX`]) allowed
    /// it and the platform could; `None`: every access maps the one frame
    /// it touches. Counted in the owner's and the global mapped pages while
    /// the ring is in the index; unmapped, before the pages are unpinned,
    /// by whoever takes it out (unregistration, teardown at death or soft
    /// reset), with the locks dropped.
    ///
    /// [`RING_MAP_PAGES_PER_DOMAIN_MAX`]: super::RING_MAP_PAGES_PER_DOMAIN_MAX
    /// [`RING_MAP_PAGES_MAX`]: super::RING_MAP_PAGES_MAX
    pub map: Option<M>,
    /// Xen-private write pointer; the guest's copy is only ever written,
    /// never read.
    pub tx: u32,
    /// `rx_ptr` as last read and sanitised (for info only).
    pub rx_seen: u32,
    pub reservation: Option<Reservation>,
    /// Reservations granted so far. A parked send holds none; when it
    /// resumes, an unchanged count means nobody wrote into the ring's free
    /// space meanwhile, so what it copied before is still there.
    pub grants: u64,
    /// FIFO of space-available waiters, at most [`PENDING_PER_RING_MAX`].
    pub pending: Vec<Pending>,
    pub msgs: u64,
    pub bytes: u64,
    pub full: u64,
}

/// Domains to raise `VIRQ_V4V` on once the locks are dropped. Bounded: a
/// ring wakes at most its pending waiters plus its owner.
pub(crate) struct Wakes {
    doms: [DomId; PENDING_PER_RING_MAX as usize + 1],
    n: usize,
}

impl Wakes {
    pub fn new() -> Self {
        Wakes { doms: [DomId(0); PENDING_PER_RING_MAX as usize + 1], n: 0 }
    }

    pub fn push(&mut self, d: DomId) {
        // The bound holds by construction (pending list + owner); dropping a
        // wake-up beyond it would only delay a guest, never corrupt state.
        debug_assert!(self.n < self.doms.len());
        if self.n < self.doms.len() {
            self.doms[self.n] = d;
            self.n += 1;
        }
    }

    pub fn as_slice(&self) -> &[DomId] {
        &self.doms[..self.n]
    }
}

impl<M> Ring<M> {
    /// Reads `buf.len()` bytes of the ring header at `at` (in the first
    /// page, which holds the whole header).
    fn header_read<P: Platform<RingMap = M>>(&self, p: &P, at: usize, buf: &mut [u8]) {
        match &self.map {
            Some(m) => p.ring_map_read(m, at, buf),
            None => p.frame_read(self.mfns[0], at, buf),
        }
    }

    /// Writes `buf` into the ring header at `at`.
    fn header_write<P: Platform<RingMap = M>>(&self, p: &P, at: usize, buf: &[u8]) {
        match &self.map {
            Some(m) => p.ring_map_write(m, at, buf),
            None => p.frame_write(self.mfns[0], at, buf),
        }
    }

    /// Reads `rx_ptr` from the guest once and sanitises it as Argo does:
    /// rounded up to a slot, and 0 if that is not inside the ring. A
    /// receiver that scribbles on its own `rx_ptr` can only lose its own
    /// messages; Xen never writes outside the ring because of it.
    pub fn read_rx<P: Platform<RingMap = M>>(&mut self, p: &P) -> u32 {
        let mut b = [0u8; 4];
        self.header_read(p, HDR_RX, &mut b);
        self.sanitise_rx(u32::from_ne_bytes(b))
    }

    /// [`Ring::read_rx`] and the receiver-owned `RING_F_*` flags, in one
    /// read of the ring header (`rx_ptr` .. `flags`).
    pub fn read_rx_flags<P: Platform<RingMap = M>>(&mut self, p: &P) -> (u32, u32) {
        let mut b = [0u8; HDR_FLAGS + 4 - HDR_RX];
        self.header_read(p, HDR_RX, &mut b);
        let word = |at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        (self.sanitise_rx(word(0)), word(HDR_FLAGS - HDR_RX))
    }

    fn sanitise_rx(&mut self, raw: u32) -> u32 {
        let rx = match hypercall_abi::v4v::slots_bytes(raw) {
            Some(rx) if rx < self.len => rx,
            _ => 0,
        };
        self.rx_seen = rx;
        rx
    }

    /// Bytes a new message may take now: everything between `tx` and `rx`
    /// except the slot that always stays free (so `rx == tx` means empty),
    /// and nothing while another send holds a reservation.
    pub fn free_bytes(&self, rx: u32) -> u32 {
        if self.reservation.is_some() {
            return 0;
        }
        let used = if self.tx >= rx { self.tx - rx } else { self.len - (rx - self.tx) };
        debug_assert!(used < self.len);
        self.len - used - SLOT_BYTES
    }

    /// The largest message (ring bytes) this ring can ever take.
    pub fn capacity_bytes(&self) -> u32 {
        self.len - SLOT_BYTES
    }

    /// Whether the ring is empty as of `rx`.
    pub fn is_empty(&self, rx: u32) -> bool {
        self.reservation.is_none() && rx == self.tx
    }

    /// Writes the header fields Xen owns: id, len, and the private `tx_ptr`
    /// (and `rx_ptr` too for a fresh ring, which starts empty).
    pub fn publish_header<P: Platform<RingMap = M>>(&self, p: &P, fresh: bool) {
        let mut id = [0u8; 8];
        self.id.write(&mut id);
        self.header_write(p, HDR_ID, &id);
        self.header_write(p, HDR_LEN, &self.len.to_ne_bytes());
        if fresh {
            self.header_write(p, HDR_RX, &0u32.to_ne_bytes());
        }
        self.publish_tx(p);
    }

    /// Makes everything before `tx` visible to the receiver. Called only when
    /// whole messages are in. The barrier orders the message's bytes (and
    /// its header) before the new `tx_ptr`: a receiver that sees the pointer
    /// and then reads (after its own read barrier) sees the whole message.
    pub fn publish_tx<P: Platform<RingMap = M>>(&self, p: &P) {
        p.smp_wmb();
        self.header_write(p, HDR_TX, &self.tx.to_ne_bytes());
    }

    /// Copies `len` bytes of the calling domain's memory at `addr` straight
    /// into the data area at data offset `off` (wrapping, split at page
    /// boundaries, or through the mapping in one copy per side of the
    /// wrap): no bounce buffer. `-EFAULT` if the source is not all
    /// readable; the bytes already copied stay behind `tx`, unseen.
    pub fn copy_data_from_guest<P: Platform<RingMap = M>>(
        &self,
        p: &P,
        caller: &P::Domain,
        off: u32,
        addr: u64,
        len: usize,
    ) -> Result<(), Errno> {
        if let Some(m) = &self.map {
            return self.for_each_span(off, len, |at_map, at, n| {
                let src = addr.checked_add(at as u64).ok_or(Errno::EFAULT)?;
                p.copy_from_guest_to_ring_map(caller, src, m, at_map, n)
            });
        }
        self.for_each_piece(off, len, |mfn, in_page, at, n| {
            let src = addr.checked_add(at as u64).ok_or(Errno::EFAULT)?;
            p.copy_from_guest_to_frame(caller, src, mfn, in_page, n)
        })
    }

    /// Copies `data` (bytes Xen already holds) into the data area at data
    /// offset `off` (wrapping, split at page boundaries).
    pub fn copy_data_from_slice<P: Platform<RingMap = M>>(&self, p: &P, off: u32, data: &[u8]) {
        if let Some(m) = &self.map {
            self.for_each_span(off, data.len(), |at_map, at, n| {
                p.ring_map_write(m, at_map, &data[at..at + n]);
                Ok(())
            })
            .unwrap_or(());
            return;
        }
        self.for_each_piece(off, data.len(), |mfn, in_page, at, n| {
            p.frame_write(mfn, in_page, &data[at..at + n]);
            Ok(())
        })
        .unwrap_or(());
    }

    /// Calls `f(offset in the mapping, offset in the range, bytes)` for the
    /// (at most two) contiguous spans of `len` data bytes at data offset
    /// `off`: up to the end of the ring, then from its start.
    fn for_each_span(
        &self,
        off: u32,
        len: usize,
        mut f: impl FnMut(usize, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        debug_assert!(off < self.len);
        debug_assert!(len < self.len as usize);
        let data = RING_HEADER_BYTES as usize;
        let first = core::cmp::min(len, (self.len - off) as usize);
        if first > 0 {
            f(data + off as usize, 0, first)?;
        }
        if first < len {
            f(data, first, len - first)?;
        }
        Ok(())
    }

    /// Calls `f(mfn, offset in page, offset in the range, bytes)` for each
    /// page piece of `len` data bytes at data offset `off`, wrapping once at
    /// the end of the ring; stops at the first error.
    fn for_each_piece(
        &self,
        off: u32,
        len: usize,
        mut f: impl FnMut(Mfn, usize, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        debug_assert!(off < self.len);
        debug_assert!(len < self.len as usize);
        let first = core::cmp::min(len, (self.len - off) as usize);
        self.for_each_piece_raw(off, 0, first, &mut f)?;
        if first < len {
            self.for_each_piece_raw(0, first, len - first, &mut f)?;
        }
        Ok(())
    }

    fn for_each_piece_raw(
        &self,
        off: u32,
        mut at: usize,
        len: usize,
        f: &mut impl FnMut(Mfn, usize, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut abs = RING_HEADER_BYTES as u64 + off as u64;
        let end = at + len;
        while at < end {
            let page = (abs / PAGE_SIZE) as usize;
            let in_page = (abs % PAGE_SIZE) as usize;
            let n = core::cmp::min(end - at, PAGE_SIZE as usize - in_page);
            // `page < mfns.len()` holds because `off + len <= self.len` and
            // the pages cover header + len (checked at registration).
            f(self.mfns[page], in_page, at, n)?;
            at += n;
            abs += n as u64;
        }
        Ok(())
    }

    /// Writes a message header at data offset `off`. Headers never wrap:
    /// `off` is slot-aligned and below `len`, so 16 contiguous bytes follow.
    pub fn write_msg_header<P: Platform<RingMap = M>>(&self, p: &P, off: u32, h: &MsgHeader) {
        debug_assert!(off.is_multiple_of(SLOT_BYTES) && off + SLOT_BYTES <= self.len);
        let mut b = [0u8; 16];
        h.write(&mut b);
        if let Some(m) = &self.map {
            p.ring_map_write(m, RING_HEADER_BYTES as usize + off as usize, &b);
            return;
        }
        self.for_each_piece_raw(off, 0, b.len(), &mut |mfn, in_page, at, n| {
            p.frame_write(mfn, in_page, &b[at..at + n]);
            Ok(())
        })
        .unwrap_or(());
    }

    /// Queues (or refreshes, keeping its place) `dom`'s wish to send `space`
    /// bytes. `false` if the list is full.
    pub fn add_pending(&mut self, dom: DomId, space: u32) -> bool {
        if let Some(e) = self.pending.iter_mut().find(|e| e.dom == dom) {
            e.space = space;
            return true;
        }
        if self.pending.len() >= PENDING_PER_RING_MAX as usize || self.pending.try_reserve(1).is_err() {
            return false;
        }
        self.pending.push(Pending { dom, space });
        true
    }

    pub fn cancel_pending(&mut self, dom: DomId) {
        self.pending.retain(|e| e.dom != dom);
    }

    /// Wakes waiters in FIFO order while their message fits in what is left
    /// of the free space, and stops at the first that does not: no
    /// thundering herd, and a large waiter is not overtaken by small ones.
    pub fn wake_fitting(&mut self, rx: u32, wakes: &mut Wakes) {
        let mut budget = self.free_bytes(rx);
        while let Some(first) = self.pending.first().copied() {
            match message_bytes(first.space) {
                Some(need) if need <= budget => {
                    budget -= need;
                    self.pending.remove(0);
                    wakes.push(first.dom);
                }
                _ => break,
            }
        }
    }

    /// Whether a `VIRQ_V4V` is due after publishing a message into a ring
    /// whose `tx` was `old_tx` and whose reader was at `rx`.
    pub fn wants_data_virq(flags: u32, old_tx: u32, rx: u32) -> bool {
        flags & RING_F_NOTIFY_EMPTY_ONLY == 0 || rx == old_tx
    }
}
