//! The bookkeeping the sshm lock protects: regions, the name index and every
//! attachment.
//!
//! All containers are sorted `Vec`s searched by bisection, so lookups are
//! O(log n) and every allocation is an explicit `try_reserve` that comes
//! back as `-ENOMEM`. Removal never allocates, so teardown paths cannot fail.

use alloc::vec::Vec;

use hypercall_abi::sshm::{
    Entry, Name, Prot, ATTACHMENTS_PER_DOMAIN_MAX, ENTRY_DOMIDS_MAX, F_BUILDING, F_PERSISTENT, F_UNLINKED,
};
use hypercall_abi::{DomId, Errno, Gfn, Mfn, PageCount, PAGE_ORDER_2M};

use crate::platform::Platform;

use super::Limits;

/// A region's identity. Never reused, so a stale id cannot name a new region.
pub(super) type RegionId = u64;

/// Pages in a 2 MiB chunk.
const SUPERPAGE: u64 = 1 << PAGE_ORDER_2M;

/// `2^order` contiguous backing frames from [`Platform::sshm_alloc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    /// The region page the chunk starts at. Order-9 chunks start at a
    /// multiple of 512, so a superpage of the region is one chunk.
    pub(super) first_page: u64,
    /// Its first frame (aligned to `2^order`).
    pub(super) mfn: Mfn,
    /// 0 or [`PAGE_ORDER_2M`].
    pub(super) order: u32,
}

/// A named region of backing memory owned by the sshm pseudo-domain.
#[derive(Debug)]
pub(super) struct Region {
    pub(super) id: RegionId,
    pub(super) name: Name,
    pub(super) nr_pages: u64,
    pub(super) max_prot: Prot,
    pub(super) persistent: bool,
    /// Still reachable by name (not unlinked).
    pub(super) linked: bool,
    /// An attachment of it has completed once. A transient region is freed
    /// when its attachments drop to zero only after it has been used, so
    /// that `OP_CREATE` followed by a failed attach keeps it.
    pub(super) used: bool,
    /// The domain it was created on, for audit: it owns nothing.
    pub(super) creator: DomId,
    /// The attach (domain, gfn) that created it, if one did: until the
    /// region is used, that attach failing takes the region with it
    /// (create-or-open is atomic), even across continuations.
    pub(super) created_by_attach: Option<(DomId, Gfn)>,
    /// Pages backed so far: the region is being built (see
    /// [`State::begin_region`]) until this reaches `nr_pages`, and cannot
    /// be attached until then.
    pub(super) built: u64,
    /// Backing, sorted by `first_page`, covering `0..built` exactly.
    pub(super) chunks: Vec<Chunk>,
    /// Attachments of every phase, each holding one reference.
    pub(super) nr_attachments: u32,
    /// Attached domains and how many attachments each holds, sorted.
    pub(super) domids: Vec<(DomId, u32)>,
}

/// Where an attachment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// A (possibly continued) attach is mapping from the end of
    /// [`Attachment::mapped`] to `nr_pages`.
    Attaching,
    /// Fully mapped.
    Attached,
    /// A (possibly continued) detach is unmapping [`Attachment::mapped`].
    Detaching,
    /// A failed attach (the errno it fails with) or one whose domain died
    /// is unmapping [`Attachment::mapped`], in bounded steps; then it goes as if it never
    /// happened (a region it created goes too).
    RollingBack(hypercall_abi::Errno),
}

/// One mapping of part of a region into one domain's physmap.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attachment {
    pub(super) domid: DomId,
    pub(super) gfn: Gfn,
    pub(super) region: RegionId,
    /// First region page mapped.
    pub(super) offset: u64,
    pub(super) nr_pages: u64,
    pub(super) prot: Prot,
    /// The pages of the attachment mapped right now.
    pub(super) mapped: Mapped,
    pub(super) phase: Phase,
    /// This attach created the region (create-or-open): if it fails before
    /// anyone else uses the region, the region goes too.
    pub(super) created_region: bool,
}

/// The pages `lo..hi` of an attachment (attachment-relative) that are
/// mapped right now. An attach maps at the end and grows it; a detach or a
/// rollback unmaps at the start and shrinks it. Empty before the first page
/// is mapped and after the last is unmapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Mapped {
    lo: u64,
    hi: u64,
}

impl Mapped {
    /// Nothing mapped yet.
    pub(super) const NONE: Mapped = Mapped { lo: 0, hi: 0 };

    /// The first mapped page: where an unmap continues.
    pub(super) fn start(self) -> u64 {
        self.lo
    }

    /// One past the last mapped page: where an attach continues.
    pub(super) fn end(self) -> u64 {
        self.hi
    }

    pub(super) fn is_empty(self) -> bool {
        self.lo == self.hi
    }

    /// Pages mapped.
    pub(super) fn len(self) -> u64 {
        self.hi - self.lo
    }

    /// `pages` more are mapped at the end.
    pub(super) fn grow(&mut self, pages: u64) {
        self.hi = self.hi.saturating_add(pages);
    }

    /// `pages` fewer are mapped at the start (never past the end).
    pub(super) fn shrink(&mut self, pages: u64) {
        self.lo = self.lo.saturating_add(pages).min(self.hi);
    }

    /// Whether the span is well-formed within an attachment of `nr_pages`.
    pub(super) fn fits(self, nr_pages: u64) -> bool {
        self.lo <= self.hi && self.hi <= nr_pages
    }

    /// Whether all `nr_pages` of the attachment are mapped.
    pub(super) fn is_whole(self, nr_pages: u64) -> bool {
        self.lo == 0 && self.hi == nr_pages
    }
}

/// One p2m entry of an attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct P2mEntry {
    pub(super) gfn: Gfn,
    pub(super) mfn: Mfn,
    pub(super) order: u32,
}

impl Region {
    /// Whether its backing is complete (it may be attached).
    pub(super) fn is_built(&self) -> bool {
        self.built == self.nr_pages
    }

    /// Where a region being built gets its next chunk: the first page not
    /// backed, and the largest order that fits there. `None` once built.
    pub(super) fn next_chunk(&self) -> Option<(u64, u32)> {
        let rest = self.nr_pages.checked_sub(self.built).filter(|&r| r > 0)?;
        let big = self.built.is_multiple_of(SUPERPAGE) && rest >= SUPERPAGE;
        Some((self.built, if big { PAGE_ORDER_2M } else { 0 }))
    }

    /// Whether `op`'s attributes are this region's (a continued or racing
    /// create of the same region).
    pub(super) fn has_attributes(&self, nr_pages: u64, max_prot: Prot, persistent: bool) -> bool {
        self.nr_pages == nr_pages && self.max_prot == max_prot && self.persistent == persistent
    }

    /// The chunk backing region page `page` (< `nr_pages`).
    fn chunk_at(&self, page: u64) -> Option<&Chunk> {
        let i = self.chunks.partition_point(|c| c.first_page <= page).checked_sub(1)?;
        self.chunks.get(i)
    }

    /// Whether a transient region has served its purpose.
    fn should_free(&self) -> bool {
        self.nr_attachments == 0 && (!self.linked || (!self.persistent && self.used))
    }

    /// The region as `OP_INFO`/`OP_LIST` report it.
    pub(super) fn entry(&self) -> Entry {
        let mut e = Entry {
            name: *self.name.field(),
            nr_pages: self.nr_pages,
            max_prot: self.max_prot.abi(),
            flags: if self.persistent { F_PERSISTENT } else { 0 }
                | if self.linked { 0 } else { F_UNLINKED }
                | if self.is_built() { 0 } else { F_BUILDING },
            nr_attachments: self.nr_attachments,
            creator: self.creator.0,
            ..Default::default()
        };
        for (slot, (d, _)) in e.domids.iter_mut().zip(self.domids.iter()) {
            *slot = d.0;
            e.nr_domids += 1;
        }
        debug_assert!(usize::from(e.nr_domids) <= ENTRY_DOMIDS_MAX);
        e
    }
}

impl Attachment {
    /// The p2m entry that starts at page `k` of the attachment.
    ///
    /// The split into entries depends only on `k` and fixed facts (gfn,
    /// offset, backing, length), never on how far mapping got, so attach,
    /// rollback, detach and domain death all walk the same entries. A 2 MiB
    /// entry is used where the gfn is 2 MiB aligned, the region page starts
    /// an order-9 chunk and 512 pages remain.
    pub(super) fn entry_at(&self, region: &Region, k: u64) -> Option<P2mEntry> {
        debug_assert!(k < self.nr_pages);
        let page = self.offset.checked_add(k)?;
        let gfn = self.gfn.checked_add(PageCount(k))?;
        let c = region.chunk_at(page)?;
        let mfn = c.mfn.checked_add(PageCount(page.checked_sub(c.first_page)?))?;
        let big = c.order == PAGE_ORDER_2M
            && page == c.first_page
            && gfn.is_aligned(PAGE_ORDER_2M)
            && k.checked_add(SUPERPAGE).is_some_and(|e| e <= self.nr_pages);
        let order = if big { PAGE_ORDER_2M } else { 0 };
        debug_assert!(mfn.is_aligned(order));
        Some(P2mEntry { gfn, mfn, order })
    }

    /// `[gfn, gfn + nr_pages)` meets `[gfn2, gfn2 + n2)`.
    fn overlaps(&self, gfn: Gfn, nr_pages: u64) -> bool {
        self.gfn.0 < gfn.0.saturating_add(nr_pages) && gfn.0 < self.gfn.0.saturating_add(self.nr_pages)
    }
}

/// Everything behind the sshm lock.
#[derive(Debug, Default)]
pub(super) struct State {
    next_id: RegionId,
    /// Live regions (named or unlinked-but-attached), sorted by id.
    regions: Vec<Region>,
    /// Linked regions by name, sorted by name.
    names: Vec<(Name, RegionId)>,
    /// Sorted by `(domid, gfn)`; a domain's attachments never overlap.
    attachments: Vec<Attachment>,
    /// Pages of all live regions (whole, those being built included: their
    /// room is taken when they begin) and of freed chunks not yet given
    /// back ([`State::dead`], [`State::releasing`]).
    pages: u64,
    /// Chunks of freed regions, given back to the platform (and cleared)
    /// with the lock dropped and in bounded steps: clearing a region is
    /// region-sized work. Its capacity always covers every live chunk, so
    /// freeing a region never allocates.
    dead: Vec<Chunk>,
    /// Pages in [`State::dead`].
    dead_pages: u64,
    /// Pages of regions being built that have no backing yet (counted in
    /// [`State::pages`]: their room is taken).
    unbuilt_pages: u64,
    /// Chunks of all live regions.
    live_chunks: usize,
    /// Pages taken off the free list and being given back right now.
    releasing: u64,
}

/// Counters, for tests and `xl sshm-list` totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live regions, unlinked ones still attached included.
    pub regions: u64,
    /// Regions reachable by name.
    pub linked: u64,
    /// Backing pages held: those of all live regions built so far, and of
    /// freed regions not yet given back.
    pub pages: u64,
    /// Attachments of every domain, in-flight ones included.
    pub attachments: u64,
}

impl State {
    pub(super) fn stats(&self) -> Stats {
        Stats {
            regions: self.regions.len() as u64,
            linked: self.names.len() as u64,
            pages: self.pages - self.unbuilt_pages,
            attachments: self.attachments.len() as u64,
        }
    }

    // ---- regions ----

    pub(super) fn lookup(&self, name: &Name) -> Option<RegionId> {
        self.names.binary_search_by(|(n, _)| n.cmp(name)).ok().and_then(|i| self.names.get(i)).map(|&(_, id)| id)
    }

    fn region_index(&self, id: RegionId) -> Option<usize> {
        self.regions.binary_search_by_key(&id, |r| r.id).ok()
    }

    pub(super) fn region(&self, id: RegionId) -> Option<&Region> {
        self.regions.get(self.region_index(id)?)
    }

    fn region_mut(&mut self, id: RegionId) -> Option<&mut Region> {
        let i = self.region_index(id)?;
        self.regions.get_mut(i)
    }

    /// The first linked region whose name sorts after `cursor` (all of them
    /// for `None`), and how many follow it.
    pub(super) fn next_after(&self, cursor: Option<&Name>) -> Option<(&Region, u64)> {
        let i = match cursor {
            None => 0,
            Some(c) => self.names.partition_point(|(n, _)| n <= c),
        };
        let &(_, id) = self.names.get(i)?;
        let rest = (self.names.len() - i - 1) as u64;
        Some((self.region(id)?, rest))
    }

    /// Begins a region of `nr_pages` named `name` (which must be free):
    /// it takes its name and its whole room under the limits now, and has
    /// no backing yet ([`State::add_chunk`] builds it). `-EINVAL` for 0
    /// pages, `-E2BIG` past the region cap, `-ENOSPC` past the region count
    /// or the page cap, `-ENOMEM` if the tables cannot grow; `-ERESTART` if
    /// the page cap is reached only by freed pages not yet given back: the
    /// caller gives some back and continues.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn begin_region(
        &mut self,
        limits: &Limits,
        name: Name,
        nr_pages: u64,
        max_prot: Prot,
        persistent: bool,
        creator: DomId,
        created_by_attach: Option<(DomId, Gfn)>,
    ) -> Result<RegionId, Errno> {
        debug_assert!(self.lookup(&name).is_none());
        if nr_pages == 0 {
            return Err(Errno::EINVAL);
        }
        if nr_pages > limits.region_pages_max {
            return Err(Errno::E2BIG);
        }
        if self.regions.len() >= limits.regions_max as usize {
            return Err(Errno::ENOSPC);
        }
        let pages = self.pages.checked_add(nr_pages).ok_or(Errno::ENOSPC)?;
        if pages > limits.total_pages_max {
            let freeing = self.dead_pages.saturating_add(self.releasing);
            return Err(if pages - freeing <= limits.total_pages_max { Errno::ERESTART } else { Errno::ENOSPC });
        }
        // A good guess at its chunks: all 2 MiB plus the 4 KiB tail (4 KiB
        // fallbacks grow it). Reserved now so that building it rarely
        // reallocates under the lock; the free list can take them all.
        let guess = usize::try_from(nr_pages / SUPERPAGE + nr_pages % SUPERPAGE).map_err(|_| Errno::ENOMEM)?;
        let mut chunks = Vec::new();
        if chunks.try_reserve_exact(guess).is_err()
            || self.regions.try_reserve(1).is_err()
            || self.names.try_reserve(1).is_err()
            || self.dead.try_reserve(self.live_chunks.saturating_add(guess)).is_err()
        {
            return Err(Errno::ENOMEM);
        }
        let id = self.next_id;
        self.next_id += 1;
        let region = Region {
            id,
            name,
            nr_pages,
            max_prot,
            persistent,
            linked: true,
            used: false,
            creator,
            created_by_attach,
            built: 0,
            chunks,
            nr_attachments: 0,
            domids: Vec::new(),
        };
        // Ids only grow, so pushing keeps `regions` sorted.
        self.regions.push(region);
        let at = self.names.partition_point(|(n, _)| n < &name);
        self.names.insert(at, (name, id));
        self.pages += nr_pages;
        self.unbuilt_pages += nr_pages;
        Ok(id)
    }

    /// Adds backing to region `id`, being built, at page `c.first_page`.
    /// `Ok(true)` once the region is whole. `Err` gives the chunk back for
    /// the caller to free with the lock dropped, with `-ENOENT` if the
    /// region is gone (unlinked meanwhile), `-EAGAIN` if another builder
    /// got there first (the region has moved on or is whole), `-ENOMEM` if
    /// its tables cannot grow.
    pub(super) fn add_chunk(&mut self, id: RegionId, c: Chunk) -> Result<bool, (Errno, Chunk)> {
        let live = self.live_chunks;
        let Some(r) = self.region_mut(id) else { return Err((Errno::ENOENT, c)) };
        if r.next_chunk().map(|(page, _)| page) != Some(c.first_page)
            || c.first_page.checked_add(1 << c.order).is_none_or(|e| e > r.nr_pages)
        {
            return Err((Errno::EAGAIN, c));
        }
        if r.chunks.try_reserve(1).is_err() {
            return Err((Errno::ENOMEM, c));
        }
        // Room on the free list for this chunk too.
        if self.dead.try_reserve(live.saturating_add(1)).is_err() {
            return Err((Errno::ENOMEM, c));
        }
        let Some(r) = self.region_mut(id) else { return Err((Errno::ENOENT, c)) };
        r.chunks.push(c);
        r.built += 1 << c.order;
        let whole = r.is_built();
        self.live_chunks = live + 1;
        self.unbuilt_pages -= 1 << c.order;
        Ok(whole)
    }

    /// The region named `name`, if it has exactly these attributes: what a
    /// continued create builds on. `-ENOENT` if the name is gone (the
    /// create was cancelled), `-EEXIST` if another region has it.
    pub(super) fn find_same(
        &self,
        name: &Name,
        nr_pages: u64,
        max_prot: Prot,
        persistent: bool,
    ) -> Result<RegionId, Errno> {
        let id = self.lookup(name).ok_or(Errno::ENOENT)?;
        let r = self.region(id).ok_or(Errno::ENOENT)?;
        if !r.has_attributes(nr_pages, max_prot, persistent) {
            return Err(Errno::EEXIST);
        }
        Ok(id)
    }

    /// Removes region `id` if it is still being built (its backing could
    /// not be allocated: creating is all or nothing, whoever was building).
    pub(super) fn abandon_build<P: Platform>(&mut self, p: &P, id: RegionId) {
        let Some(r) = self.region(id) else { return };
        if r.linked && !r.is_built() {
            let name = r.name;
            let _ = self.unlink(p, &name);
        }
    }

    /// Removes the name. The region is freed now if nothing is attached,
    /// else when its last attachment goes.
    pub(super) fn unlink<P: Platform>(&mut self, p: &P, name: &Name) -> Result<(), Errno> {
        let i = self.names.binary_search_by(|(n, _)| n.cmp(name)).map_err(|_| Errno::ENOENT)?;
        let (_, id) = self.names.remove(i);
        if let Some(r) = self.region_mut(id) {
            r.linked = false;
        }
        self.maybe_free(p, id);
        Ok(())
    }

    /// Frees `id` if nothing keeps it alive any more: its chunks go on the
    /// free list, given back by [`State::take_dead`]'s caller.
    fn maybe_free<P: Platform>(&mut self, _p: &P, id: RegionId) {
        let Some(i) = self.region_index(id) else { return };
        if !self.regions[i].should_free() {
            return;
        }
        let r = self.regions.remove(i);
        if r.linked {
            if let Ok(j) = self.names.binary_search_by(|(n, _)| n.cmp(&r.name)) {
                self.names.remove(j);
            }
        }
        debug_assert!(self.dead.capacity() - self.dead.len() >= r.chunks.len());
        self.live_chunks -= r.chunks.len();
        // Pages never built were never allocated: their room goes now.
        self.pages -= r.nr_pages - r.built;
        self.unbuilt_pages -= r.nr_pages - r.built;
        self.dead_pages += r.built;
        // Within the capacity reserved as it was built: no allocation.
        self.dead.extend_from_slice(&r.chunks);
    }

    /// Whether freed chunks wait to be given back.
    pub(super) fn has_dead(&self) -> bool {
        !self.dead.is_empty()
    }

    /// Whether freed pages are not all back with the platform yet: waiting
    /// on the free list, or being given back by a step right now.
    pub(super) fn freeing(&self) -> bool {
        !self.dead.is_empty() || self.releasing > 0
    }

    /// Moves freed chunks into `out`, at most `out.len()` and no more after
    /// they reach `pages_max` pages (at least one), for the caller to give
    /// back with the lock dropped; how many.
    pub(super) fn take_dead(&mut self, out: &mut [Chunk], pages_max: u64) -> usize {
        let mut n = 0;
        let mut pages = 0u64;
        while n < out.len() && pages < pages_max {
            let Some(c) = self.dead.pop() else { break };
            out[n] = c;
            n += 1;
            pages += 1 << c.order;
        }
        self.dead_pages -= pages;
        self.releasing += pages;
        n
    }

    /// `pages` of chunks from [`State::take_dead`] were given back.
    pub(super) fn released(&mut self, pages: u64) {
        debug_assert!(self.pages >= pages && self.releasing >= pages);
        self.pages = self.pages.saturating_sub(pages);
        self.releasing = self.releasing.saturating_sub(pages);
    }

    // ---- attachments ----

    /// Index of `domid`'s attachment starting at `gfn`.
    pub(super) fn find_attachment(&self, domid: DomId, gfn: Gfn) -> Option<usize> {
        self.attachments.binary_search_by_key(&(domid, gfn), |a| (a.domid, a.gfn)).ok()
    }

    pub(super) fn attachment(&self, i: usize) -> Option<&Attachment> {
        self.attachments.get(i)
    }

    pub(super) fn attachment_mut(&mut self, i: usize) -> Option<&mut Attachment> {
        self.attachments.get_mut(i)
    }

    /// The range of indices holding `domid`'s attachments.
    fn domain_range(&self, domid: DomId) -> core::ops::Range<usize> {
        let lo = self.attachments.partition_point(|a| a.domid < domid);
        let hi = self.attachments.partition_point(|a| a.domid <= domid);
        lo..hi
    }

    /// The first attachment of `domid`, if any.
    pub(super) fn first_of(&self, domid: DomId) -> Option<usize> {
        let r = self.domain_range(domid);
        (!r.is_empty()).then_some(r.start)
    }

    /// Checks that `domid` may take a new attachment at `[gfn, gfn + n)`
    /// and reserves room for its bookkeeping: `-ENOSPC` at the per-domain
    /// cap, `-EBUSY` if it overlaps another attachment of the domain,
    /// `-ENOMEM` if the table cannot grow.
    pub(super) fn check_new_attachment(&mut self, domid: DomId, gfn: Gfn, nr_pages: u64) -> Result<(), Errno> {
        let range = self.domain_range(domid);
        if range.len() >= ATTACHMENTS_PER_DOMAIN_MAX as usize {
            return Err(Errno::ENOSPC);
        }
        // Attachments of a domain are sorted by gfn and disjoint, so only
        // the last one starting below the new end can overlap.
        let end = gfn.0.saturating_add(nr_pages);
        let below = range.start + self.attachments[range.clone()].partition_point(|a| a.gfn.0 < end);
        if below > range.start && self.attachments[below - 1].overlaps(gfn, nr_pages) {
            return Err(Errno::EBUSY);
        }
        self.attachments.try_reserve(1).map_err(|_| Errno::ENOMEM)
    }

    /// Records a new attachment (after [`State::check_new_attachment`] and
    /// with the region's `domids` reserved): it takes a region reference.
    /// The region must be built.
    pub(super) fn insert_attachment(&mut self, a: Attachment) -> Result<usize, Errno> {
        let r = self.region_mut(a.region).ok_or(Errno::ENOENT)?;
        debug_assert!(r.is_built());
        let di = r.domids.binary_search_by_key(&a.domid, |&(d, _)| d);
        match di {
            Ok(j) => r.domids[j].1 += 1,
            Err(j) => {
                r.domids.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                r.domids.insert(j, (a.domid, 1));
            }
        }
        r.nr_attachments += 1;
        let at = self.attachments.partition_point(|x| (x.domid, x.gfn) < (a.domid, a.gfn));
        self.attachments.insert(at, a);
        Ok(at)
    }

    /// Forgets attachment `i` (all of it already unmapped) and drops its
    /// region reference, freeing the region if that was what kept it.
    /// `rollback` is a failed attach: it leaves the region as if the attach
    /// never happened, so a region this attach created goes with it.
    pub(super) fn remove_attachment<P: Platform>(&mut self, p: &P, i: usize, rollback: bool) {
        let a = self.attachments.remove(i);
        debug_assert!(a.mapped.is_empty(), "removing a mapped attachment");
        let Some(r) = self.region_mut(a.region) else {
            debug_assert!(false, "attachment of a missing region");
            return;
        };
        if let Ok(j) = r.domids.binary_search_by_key(&a.domid, |&(d, _)| d) {
            r.domids[j].1 -= 1;
            if r.domids[j].1 == 0 {
                r.domids.remove(j);
            }
        }
        r.nr_attachments -= 1;
        if rollback && a.created_region && !r.used && r.nr_attachments == 0 && r.linked {
            // Create-or-open is atomic: the region it created goes too.
            let name = r.name;
            let _ = self.unlink(p, &name);
        }
        self.maybe_free(p, a.region);
    }

    /// Drops the region named `name` if the attach of `domid` at `gfn`
    /// created it and then failed, and nobody else came to use it
    /// meanwhile (create-or-open is atomic as seen by its caller).
    pub(super) fn drop_created<P: Platform>(&mut self, p: &P, name: &Name, domid: DomId, gfn: Gfn) {
        let Some(r) = self.lookup(name).and_then(|id| self.region(id)) else { return };
        if r.created_by_attach == Some((domid, gfn)) && !r.used && r.nr_attachments == 0 {
            let _ = self.unlink(p, name);
        }
    }

    /// Drops every region an attach of `domid` created and nobody used: the
    /// domain died before its create-or-open finished. Bounded by the
    /// region cap.
    pub(super) fn drop_created_by<P: Platform>(&mut self, p: &P, domid: DomId) {
        let mut i = 0;
        while let Some(r) = self.regions.get(i) {
            let orphan =
                r.linked && !r.used && r.nr_attachments == 0 && r.created_by_attach.is_some_and(|(d, _)| d == domid);
            if orphan {
                let name = r.name;
                // Removes regions[i] (nothing is attached): do not advance.
                let _ = self.unlink(p, &name);
            } else {
                i += 1;
            }
        }
    }

    /// Marks the region of a fully mapped attachment as used.
    pub(super) fn mark_used(&mut self, id: RegionId) {
        if let Some(r) = self.region_mut(id) {
            r.used = true;
        }
    }

    // ---- invariants ----

    /// Checks every structural invariant (debug builds call this after
    /// each operation); `Err` describes the first violation.
    pub(super) fn check(&self, limits: &Limits) -> Result<(), &'static str> {
        if !self.regions.windows(2).all(|w| w[0].id < w[1].id) {
            return Err("regions not sorted by id");
        }
        if !self.names.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err("names not strictly sorted");
        }
        if self.regions.len() > limits.regions_max as usize || self.pages > limits.total_pages_max {
            return Err("over a limit");
        }
        if self.dead.iter().map(|c| 1u64 << c.order).sum::<u64>() != self.dead_pages {
            return Err("free list page count mismatch");
        }
        let mut pages: u64 = self.releasing + self.dead_pages;
        if self.regions.iter().map(|r| r.chunks.len()).sum::<usize>() != self.live_chunks
            || self.dead.capacity() < self.dead.len() + self.live_chunks
        {
            return Err("free list cannot take every live chunk");
        }
        let unbuilt: u64 = self.regions.iter().map(|r| r.nr_pages.saturating_sub(r.built)).sum();
        if unbuilt != self.unbuilt_pages {
            return Err("unbuilt page count mismatch");
        }
        let mut linked = 0usize;
        for r in &self.regions {
            pages += r.nr_pages;
            if r.linked {
                linked += 1;
                if self.lookup(&r.name) != Some(r.id) {
                    return Err("linked region not in the name index");
                }
            }
            if r.should_free() {
                return Err("region kept alive by nothing");
            }
            let mut next = 0u64;
            for c in &r.chunks {
                if c.first_page != next || (c.order != 0 && c.order != PAGE_ORDER_2M) {
                    return Err("chunks do not tile the region");
                }
                if c.order == PAGE_ORDER_2M && (!c.first_page.is_multiple_of(SUPERPAGE) || !c.mfn.is_aligned(c.order)) {
                    return Err("misaligned 2 MiB chunk");
                }
                next += 1 << c.order;
            }
            if next != r.built || r.built > r.nr_pages {
                return Err("chunks do not cover what is built");
            }
            if !r.is_built() && (r.used || r.nr_attachments != 0) {
                return Err("region being built is attached or used");
            }
            let n = self.attachments.iter().filter(|a| a.region == r.id).count();
            if n != r.nr_attachments as usize || r.domids.iter().map(|&(_, c)| c as usize).sum::<usize>() != n {
                return Err("attachment count mismatch");
            }
            if !r.domids.windows(2).all(|w| w[0].0 < w[1].0) || r.domids.iter().any(|&(_, c)| c == 0) {
                return Err("domids not sorted or zero");
            }
        }
        if pages != self.pages {
            return Err("page counter mismatch");
        }
        if linked != self.names.len() {
            return Err("name index has unlinked or missing regions");
        }
        for w in self.attachments.windows(2) {
            if (w[0].domid, w[0].gfn) >= (w[1].domid, w[1].gfn) {
                return Err("attachments not sorted");
            }
            if w[0].domid == w[1].domid && w[0].overlaps(w[1].gfn, w[1].nr_pages) {
                return Err("overlapping attachments");
            }
        }
        for a in &self.attachments {
            let Some(r) = self.region(a.region) else { return Err("attachment of a missing region") };
            if a.offset + a.nr_pages > r.nr_pages || !r.max_prot.permits(a.prot) {
                return Err("attachment outside its region's bounds");
            }
            if !a.mapped.fits(a.nr_pages) {
                return Err("attachment progress out of range");
            }
            let ok = match a.phase {
                Phase::Attaching => a.mapped.start() == 0,
                Phase::Attached => a.mapped.is_whole(a.nr_pages),
                Phase::Detaching | Phase::RollingBack(_) => true,
            };
            if !ok {
                return Err("attachment phase and progress disagree");
            }
            if self.domain_range(a.domid).len() > ATTACHMENTS_PER_DOMAIN_MAX as usize {
                return Err("over the per-domain attachment cap");
            }
        }
        Ok(())
    }
}
