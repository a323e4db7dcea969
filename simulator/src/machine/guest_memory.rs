//! Guest memory: reads and writes by guest address, through the guest's
//! linear map and its p2m, crossing pages (`copy_{to,from}_guest`).

use hypercall_abi::{DomId, Errno, PAGE_SIZE};

#[cfg(doc)]
use crate::domain::Slot;

use super::{State, GUEST_COPY_MAX};
use crate::frame::{FrameTable, PAGE_BYTES};

impl State {
    /// Calls `f(frames, mfn, offset, at, n)` for each page piece of the
    /// guest range `[gpa, gpa + len)` in order (`at`: the piece's offset in
    /// the range), after checking the whole range: a hole is `-EFAULT` with
    /// nothing touched. A write to a read-only entry is discarded and
    /// counted, and the rest of the range is written, as Xen's
    /// `__hvm_copy()` does for its discard-write types (`p2m_ram_ro`,
    /// `p2m_grant_map_ro`: every read-only type modelled here), and as a
    /// translated guest's store through such an entry is emulated and
    /// dropped. A real host showed it: a Linux guest's `devmem` store to a
    /// read-only static shm view completed and changed nothing, where this
    /// model used to refuse it. `gpa` is a
    /// guest-linear address, translated through [`Slot::linear`]
    /// (identity where that has no entry). Allocates
    /// nothing: a range within one page (every small access) is looked up
    /// once, a longer one twice (check, then copy).
    fn guest_walk(
        &mut self,
        id: DomId,
        gpa: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(&mut FrameTable, u64, usize, usize, usize),
    ) -> Result<(), Errno> {
        if len > GUEST_COPY_MAX {
            return Err(Errno::EFAULT);
        }
        // A range may end exactly at 2^64 (the last byte of the address
        // space is addressable); only one that would go past it faults.
        let end = u128::from(gpa) + len as u128;
        if end > 1u128 << 64 {
            return Err(Errno::EFAULT);
        }
        let slot = self.domains.get(&id.0).ok_or(Errno::ESRCH)?;
        if len == 0 {
            return Ok(());
        }
        let off = (gpa % PAGE_SIZE) as usize;
        if off + len <= PAGE_BYTES {
            let (mfn, t) = slot.translate(gpa / PAGE_SIZE).ok_or(Errno::EFAULT)?;
            if write && !t.writable() {
                self.write_discards += 1;
            } else {
                f(&mut self.frames, mfn.0, off, 0, len);
            }
            return Ok(());
        }
        for (page, _, _, _) in pieces(gpa, end) {
            slot.translate(page).ok_or(Errno::EFAULT)?;
        }
        for (page, off, at, n) in pieces(gpa, end) {
            // Checked above, under the same lock.
            let (mfn, t) = slot.translate(page).ok_or(Errno::EFAULT)?;
            if write && !t.writable() {
                self.write_discards += 1;
            } else {
                f(&mut self.frames, mfn.0, off, at, n);
            }
        }
        Ok(())
    }

    pub(crate) fn guest_read(&mut self, id: DomId, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.guest_walk(id, gpa, buf.len(), false, |frames, mfn, off, at, n| {
            frames.read(mfn, off, &mut buf[at..at + n]);
        })
    }

    pub(crate) fn guest_write(&mut self, id: DomId, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        self.guest_walk(id, gpa, buf.len(), true, |frames, mfn, off, at, n| {
            frames.write(mfn, off, &buf[at..at + n]);
        })
    }

    /// Copies guest memory into a frame (`offset + len` within it, checked
    /// by the caller), one copy per page piece.
    pub(crate) fn guest_read_to_frame(
        &mut self,
        id: DomId,
        gpa: u64,
        dst: u64,
        offset: usize,
        len: usize,
    ) -> Result<(), Errno> {
        self.guest_walk(id, gpa, len, false, |frames, mfn, off, at, n| {
            frames.copy(mfn, off, dst, offset + at, n);
        })
    }
}

/// The page pieces of the guest range `[gpa, end)` (`end` may be 2^64):
/// (linear page, offset in the page, offset in the range, bytes).
fn pieces(gpa: u64, end: u128) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let mut addr = u128::from(gpa);
    std::iter::from_fn(move || {
        if addr >= end {
            return None;
        }
        let off = (addr % u128::from(PAGE_SIZE)) as usize;
        let n = (PAGE_BYTES - off).min((end - addr) as usize);
        let piece = ((addr / u128::from(PAGE_SIZE)) as u64, off, (addr - u128::from(gpa)) as usize, n);
        addr += n as u128;
        Some(piece)
    })
}
