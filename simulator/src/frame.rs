//! The frame table: a fixed pool of machine frames (Xen's `frame_table` of
//! `struct page_info`) and the heap allocator over it.
//!
//! Reference counting follows Xen: a frame's `count` is its `count_info`
//! reference count. An allocated frame holds one "allocated" reference for
//! its owner (`PGC_allocated`); every user (a p2m entry other than the
//! owner's own RAM, a pin, a grant mapping) holds one general reference. A
//! frame returns to the free pool only when its count reaches zero.
//!
//! Contents are allocated lazily: a frame's 4 KiB buffer exists only once it
//! has been written, so a large pool costs a few bytes per frame.

use std::collections::BTreeMap;

use hypercall_abi::{DomId, Errno, PAGE_SIZE};

/// Bytes in a page, as a `usize` for buffers.
pub const PAGE_BYTES: usize = PAGE_SIZE as usize;
/// Largest pool the simulator accepts, in frames (16 GiB). Larger requests
/// are clamped: the per-frame metadata must stay small.
pub const FRAMES_MAX: u64 = 1 << 22;
/// Largest chunk the allocator hands out (`MAX_ORDER` is 20 in Xen; 1 GiB
/// is plenty for a model).
pub const ORDER_MAX: u32 = 18;
/// Largest reference count before `get` refuses (Xen's `PGC_count_mask`
/// overflow check in `get_page`).
pub const COUNT_MAX: u32 = u32::MAX >> 1;

/// Who a frame belongs to (`page_get_owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// In the free pool.
    Free,
    /// A real domain's memory.
    Dom(DomId),
    /// The static shared memory pseudo-domain (`DOMID_SSHM`).
    Sshm,
}

impl Owner {
    /// The owning domain id, as a guest would see it.
    pub fn domid(self) -> Option<DomId> {
        match self {
            Owner::Free => None,
            Owner::Dom(d) => Some(d),
            Owner::Sshm => Some(DomId::SSHM),
        }
    }
}

/// One `struct page_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The owner.
    pub owner: Owner,
    /// The reference count, including the allocated reference.
    pub count: u32,
    /// `PGC_allocated`: the owner still holds its allocation reference.
    pub allocated: bool,
    /// Writable type references (`PGT_writable_page` type count), taken by
    /// pins.
    pub type_count: u32,
}

impl Frame {
    const FREE: Frame = Frame { owner: Owner::Free, count: 0, allocated: false, type_count: 0 };
}

/// What [`FrameTable::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// Still referenced.
    Held,
    /// The last reference went: the frame is free again and was owned by
    /// this owner (whose page count the caller must drop).
    Freed(Owner),
}

/// The frame table and the heap.
pub struct FrameTable {
    frames: Vec<Frame>,
    /// Page contents, `None` until first written (reads as zeroes).
    data: Vec<Option<Box<[u8; PAGE_BYTES]>>>,
    /// Free extents: start mfn -> length, never adjacent (merged on free).
    free: BTreeMap<u64, u64>,
    free_count: u64,
}

impl FrameTable {
    /// A pool of `frames` free frames (clamped to [`FRAMES_MAX`]).
    pub fn new(frames: u64) -> FrameTable {
        let n = frames.min(FRAMES_MAX);
        let mut free = BTreeMap::new();
        if n > 0 {
            free.insert(0, n);
        }
        // `n` is at most FRAMES_MAX, which fits a usize on every host we run.
        let len = usize::try_from(n).unwrap_or(0);
        FrameTable { frames: vec![Frame::FREE; len], data: vec![None; len], free, free_count: n }
    }

    /// Number of frames in the pool.
    pub fn len(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Free frames.
    pub fn free_count(&self) -> u64 {
        self.free_count
    }

    fn idx(&self, mfn: u64) -> Option<usize> {
        usize::try_from(mfn).ok().filter(|&i| i < self.frames.len())
    }

    /// The frame at `mfn`, if in the pool.
    pub fn get(&self, mfn: u64) -> Option<&Frame> {
        self.idx(mfn).map(|i| &self.frames[i])
    }

    /// Mutable access for the machine's bookkeeping (type counts).
    pub fn get_mut(&mut self, mfn: u64) -> Option<&mut Frame> {
        self.idx(mfn).map(|i| &mut self.frames[i])
    }

    /// All frames, for the checkers.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Frame)> {
        self.frames.iter().enumerate().map(|(i, f)| (i as u64, f))
    }

    /// Whether the frame has a contents buffer (checkers: free frames must
    /// not, so nothing leaks from one owner to the next).
    pub fn has_data(&self, mfn: u64) -> bool {
        self.idx(mfn).is_some_and(|i| self.data[i].is_some())
    }

    /// Clears a frame's contents (`clear_domain_page`).
    pub fn scrub(&mut self, mfn: u64) {
        if let Some(i) = self.idx(mfn) {
            self.data[i] = None;
        }
    }

    /// The free extents, for the checkers.
    pub fn free_extents(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free.iter().map(|(&s, &l)| (s, l))
    }

    /// Allocates `2^order` contiguous frames aligned to their size, owned by
    /// `owner`, each holding its allocated reference. First fit, so runs are
    /// reproducible. `-ENOMEM` when no such chunk is free.
    pub fn alloc(&mut self, order: u32, owner: Owner) -> Result<u64, Errno> {
        if order > ORDER_MAX || owner == Owner::Free {
            return Err(Errno::ENOMEM);
        }
        let n = 1u64 << order;
        let mut found = None;
        for (&start, &len) in &self.free {
            let aligned = start.div_ceil(n) * n;
            if aligned.checked_add(n).is_some_and(|end| end <= start + len) {
                found = Some((start, len, aligned));
                break;
            }
        }
        let (start, len, at) = found.ok_or(Errno::ENOMEM)?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        let end = start + len;
        if at + n < end {
            self.free.insert(at + n, end - (at + n));
        }
        self.free_count -= n;
        for mfn in at..at + n {
            let i = mfn as usize;
            debug_assert_eq!(self.frames[i], Frame::FREE);
            self.frames[i] = Frame { owner, count: 1, allocated: true, type_count: 0 };
        }
        Ok(at)
    }

    /// Takes a general reference (`get_page`): the frame must be in use.
    pub fn get_ref(&mut self, mfn: u64) -> Result<(), Errno> {
        let i = self.idx(mfn).ok_or(Errno::EINVAL)?;
        let f = &mut self.frames[i];
        if f.owner == Owner::Free || f.count == 0 || f.count >= COUNT_MAX {
            return Err(Errno::EINVAL);
        }
        f.count += 1;
        Ok(())
    }

    /// Drops a reference (`put_page`), freeing the frame at zero. `Err` on
    /// an underflow: a reference dropped that nobody held.
    pub fn put(&mut self, mfn: u64) -> Result<Put, String> {
        let i = self.idx(mfn).ok_or_else(|| format!("put of mfn {mfn:#x} outside the pool"))?;
        let f = &mut self.frames[i];
        if f.count == 0 || f.owner == Owner::Free {
            return Err(format!("put of mfn {mfn:#x} with no reference (count underflow)"));
        }
        f.count -= 1;
        if f.count > 0 {
            return Ok(Put::Held);
        }
        let owner = f.owner;
        *f = Frame::FREE;
        // Xen's `free_domheap_pages` scrubs a frame only when its owner is
        // dying (it assumes a live owner cleared what it cared about). A
        // guest's frames go back at its death, so they are scrubbed; the
        // sshm pseudo-domain never dies, so whatever the shim did not
        // clear goes back to the heap as it is, and the checkers see it.
        if owner != Owner::Sshm {
            self.data[i] = None;
        }
        self.insert_free(mfn);
        Ok(Put::Freed(owner))
    }

    /// Drops the allocated reference (`PGC_allocated` cleared and put), if
    /// the owner still holds it.
    pub fn put_allocated(&mut self, mfn: u64, owner: Owner) -> Result<Option<Put>, String> {
        let i = self.idx(mfn).ok_or_else(|| format!("free of mfn {mfn:#x} outside the pool"))?;
        let f = &mut self.frames[i];
        if f.owner != owner || !f.allocated {
            return Ok(None);
        }
        f.allocated = false;
        self.put(mfn).map(Some)
    }

    fn insert_free(&mut self, mfn: u64) {
        let mut start = mfn;
        let mut len = 1;
        if let Some((&s, &l)) = self.free.range(..mfn).next_back() {
            if s + l == mfn {
                self.free.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(l) = self.free.remove(&(mfn + 1)) {
            len += l;
        }
        self.free.insert(start, len);
        self.free_count += 1;
    }

    /// Copies out of a frame (zeroes if never written).
    pub fn read(&self, mfn: u64, offset: usize, buf: &mut [u8]) {
        let Some(i) = self.idx(mfn) else { return };
        let Some(end) = offset.checked_add(buf.len()).filter(|&e| e <= PAGE_BYTES) else { return };
        match &self.data[i] {
            Some(d) => buf.copy_from_slice(&d[offset..end]),
            None => buf.fill(0),
        }
    }

    /// Copies into a frame, allocating its buffer on first write.
    pub fn write(&mut self, mfn: u64, offset: usize, buf: &[u8]) {
        let Some(i) = self.idx(mfn) else { return };
        let Some(end) = offset.checked_add(buf.len()).filter(|&e| e <= PAGE_BYTES) else { return };
        if buf.is_empty() {
            return;
        }
        let d = self.data[i].get_or_insert_with(|| Box::new([0u8; PAGE_BYTES]));
        d[offset..end].copy_from_slice(buf);
    }

    /// Copies `len` bytes from one frame into another (or within one), in
    /// one copy, allocating the destination's buffer on first write. Ranges
    /// outside a frame or the pool are ignored, as in [`FrameTable::write`].
    pub fn copy(&mut self, src: u64, src_off: usize, dst: u64, dst_off: usize, len: usize) {
        let (Some(si), Some(di)) = (self.idx(src), self.idx(dst)) else { return };
        let in_page = |off: usize| off.checked_add(len).is_some_and(|e| e <= PAGE_BYTES);
        if len == 0 || !in_page(src_off) || !in_page(dst_off) {
            return;
        }
        if si == di {
            let d = self.data[di].get_or_insert_with(|| Box::new([0u8; PAGE_BYTES]));
            d.copy_within(src_off..src_off + len, dst_off);
            return;
        }
        // Two distinct elements of `data`: split the slice between them.
        let (lo, hi) = self.data.split_at_mut(si.max(di));
        let (s, d) = if si < di { (&lo[si], &mut hi[0]) } else { (&hi[0], &mut lo[di]) };
        let d = d.get_or_insert_with(|| Box::new([0u8; PAGE_BYTES]));
        match s {
            Some(s) => d[dst_off..dst_off + len].copy_from_slice(&s[src_off..src_off + len]),
            None => d[dst_off..dst_off + len].fill(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_aligned_and_exhaustion_is_enomem() {
        let mut t = FrameTable::new(1024);
        let a = t.alloc(0, Owner::Sshm).unwrap();
        assert_eq!(a, 0);
        let b = t.alloc(9, Owner::Sshm).unwrap();
        assert_eq!(b, 512, "a 2 MiB chunk is 2 MiB aligned");
        assert_eq!(t.free_count(), 1024 - 513);
        assert_eq!(t.alloc(9, Owner::Sshm), Err(Errno::ENOMEM), "no aligned chunk left");
        assert_eq!(t.alloc(ORDER_MAX + 1, Owner::Sshm), Err(Errno::ENOMEM));
        for _ in 0..511 {
            t.alloc(0, Owner::Sshm).unwrap();
        }
        assert_eq!(t.free_count(), 0);
        assert_eq!(t.alloc(0, Owner::Sshm), Err(Errno::ENOMEM));
    }

    #[test]
    fn frame_is_freed_only_at_zero_and_merges_back() {
        let mut t = FrameTable::new(4);
        let m = t.alloc(1, Owner::Dom(DomId(1))).unwrap();
        t.get_ref(m).unwrap();
        t.write(m, 10, &[7]);
        assert_eq!(t.put_allocated(m, Owner::Dom(DomId(1))), Ok(Some(Put::Held)));
        assert_eq!(t.put_allocated(m, Owner::Dom(DomId(1))), Ok(None), "allocated ref dropped once");
        let mut b = [0u8; 1];
        t.read(m, 10, &mut b);
        assert_eq!(b, [7], "still referenced, still there");
        assert_eq!(t.put(m), Ok(Put::Freed(Owner::Dom(DomId(1)))));
        assert!(!t.has_data(m), "scrubbed on free");
        assert!(t.put(m).is_err(), "underflow is reported");
        assert_eq!(t.get_ref(m), Err(Errno::EINVAL), "no reference on a free frame");
        t.put_allocated(m + 1, Owner::Dom(DomId(1))).unwrap();
        assert_eq!(t.free_extents().collect::<Vec<_>>(), vec![(0, 4)]);
    }

    #[test]
    fn pool_is_clamped_and_contents_are_lazy() {
        let t = FrameTable::new(u64::MAX);
        assert_eq!(t.len(), FRAMES_MAX);
        let mut b = [1u8; 8];
        t.read(5, 0, &mut b);
        assert_eq!(b, [0; 8], "never written reads as zero");
        assert!(!t.has_data(5));
    }
}
