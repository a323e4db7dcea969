//! The state behind V4V's two lock levels: the global [`Table`] (L1: the
//! ring index, the partner index, per-domain state, the firewall rules,
//! global statistics) and the per-lock [`Bucket`]s of rings (L2). See the
//! locking block in `mod.rs`.
//!
//! Nothing here takes a lock or calls the platform: these are the data
//! structures the ops in the sibling files read and change under the lock
//! that guards them.

use alloc::vec::Vec;

use hypercall_abi::v4v::{FwRule, RingId, DOMID_ANY};
use hypercall_abi::{DomId, Errno};

use super::ring::Ring;
use super::send::Parked;
use super::{RING_MAP_PAGES_MAX, RING_MAP_PAGES_PER_DOMAIN_MAX};

/// How rings are indexed and ordered: by owner, then port, then partner
/// (the field order, which the derived `Ord` follows). A domain's own rings
/// are therefore contiguous in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RingKey {
    /// The receiving domain, in whose pages the ring lives.
    pub owner: DomId,
    pub port: u32,
    /// The only domain that may send to the ring, or [`RingKey::ANY`].
    pub partner: DomId,
}

impl RingKey {
    /// The partner of a ring any domain may send to ([`DOMID_ANY`]).
    pub const ANY: DomId = DomId(DOMID_ANY);

    /// The key of a ring with ABI id `id`.
    pub fn of(id: &RingId) -> Self {
        RingKey { owner: DomId(id.domain), port: id.port, partner: DomId(id.partner) }
    }

    /// Whether the ring names a partner (is not an any-sender ring).
    pub fn has_partner(&self) -> bool {
        self.partner != Self::ANY
    }
}

/// An entry of the ring index: which generation (and so which bucket) the
/// ring registered under `key` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IndexEntry {
    pub key: RingKey,
    pub generation: u64,
}

/// An entry of the partner index: a ring registered for `partner` alone.
/// Ordered by partner first, so the rings naming one domain are contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PartnerEntry {
    pub partner: DomId,
    pub key: RingKey,
}

/// Where the sweep of the other rings for a torn-down domain's waiters is:
/// the bucket, and the first generation in it not yet looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SweepCursor {
    pub bucket: usize,
    pub next_generation: u64,
}

/// Per-domain V4V state. Its statistics (like the per-ring and global
/// ones) are wrapping counters: guests drive them, so they must never be an
/// overflow.
pub(super) struct DomState {
    pub id: DomId,
    pub nr_rings: u32,
    pub msgs_sent: u64,
    pub bytes_sent: u64,
    pub msgs_received: u64,
    pub sends_full: u64,
    /// Pages of its rings mapped in Xen's vmap area, at most
    /// [`RING_MAP_PAGES_PER_DOMAIN_MAX`].
    pub ring_map_pages: u32,
    /// The preemptible send (or batch) this domain has parked (one at most).
    pub in_flight: Option<Parked>,
    /// Teardown (death or soft reset) in progress: where the sweep of the
    /// other rings for this domain's waiters is. The state goes when the
    /// sweep is done.
    pub sweep: Option<SweepCursor>,
}

impl DomState {
    fn new(id: DomId) -> Self {
        DomState {
            id,
            nr_rings: 0,
            msgs_sent: 0,
            bytes_sent: 0,
            msgs_received: 0,
            sends_full: 0,
            ring_map_pages: 0,
            in_flight: None,
            sweep: None,
        }
    }
}

/// L1: the global index (see the locking block).
pub(super) struct Table {
    /// Sorted by key, unique.
    pub rings: Vec<IndexEntry>,
    /// The rings registered for one partner, sorted. A domain's own rings
    /// are contiguous in `rings`; this finds the rings naming it without a
    /// walk of every ring.
    pub by_partner: Vec<PartnerEntry>,
    /// Sorted by id.
    pub doms: Vec<DomState>,
    /// Firewall rules, in the order they are matched.
    pub fw: Vec<FwRule>,
    pub next_generation: u64,
    pub next_token: u64,
    pub global_msgs: u64,
    pub global_bytes: u64,
    /// Pages of all rings mapped in Xen's vmap area, at most
    /// [`RING_MAP_PAGES_MAX`].
    pub ring_map_pages: u32,
}

impl Table {
    /// No rings, no domains, no rules.
    pub fn new() -> Self {
        Table {
            rings: Vec::new(),
            by_partner: Vec::new(),
            doms: Vec::new(),
            fw: Vec::new(),
            next_generation: 1,
            next_token: 1,
            global_msgs: 0,
            global_bytes: 0,
            ring_map_pages: 0,
        }
    }

    /// Where `key` is in the index (`Ok`), or where it would go (`Err`).
    pub fn search(&self, key: RingKey) -> Result<usize, usize> {
        self.rings.binary_search_by(|e| e.key.cmp(&key))
    }

    /// Removes ring `i` of the index (and its partner entry).
    pub fn remove_ring(&mut self, i: usize) -> IndexEntry {
        let e = self.rings.remove(i);
        if e.key.has_partner() {
            if let Ok(j) = self.by_partner.binary_search(&PartnerEntry { partner: e.key.partner, key: e.key }) {
                self.by_partner.remove(j);
            }
        }
        e
    }

    /// The index of a ring `d` owns or is the partner of, if any: O(log n).
    pub fn ring_of(&self, d: DomId) -> Option<usize> {
        let i = self.rings.partition_point(|e| e.key.owner < d);
        if self.rings.get(i).is_some_and(|e| e.key.owner == d) {
            return Some(i);
        }
        let j = self.by_partner.partition_point(|e| e.partner < d);
        let e = self.by_partner.get(j)?;
        if e.partner != d {
            return None;
        }
        self.search(e.key).ok()
    }

    /// The generation of the ring registered under `key`.
    pub fn find(&self, key: RingKey) -> Option<u64> {
        self.search(key).ok().map(|i| self.rings[i].generation)
    }

    /// The ring a send from `src` to `(dst, port)` goes to: one registered
    /// for `src` alone wins over an any-sender ring.
    pub fn find_for_sender(&self, src: DomId, dst: DomId, port: u32) -> Option<u64> {
        self.find(RingKey { owner: dst, port, partner: src })
            .or_else(|| self.find(RingKey { owner: dst, port, partner: RingKey::ANY }))
    }

    /// The domain's state, if it has any.
    pub fn dom(&mut self, id: DomId) -> Option<&mut DomState> {
        self.doms.binary_search_by(|d| d.id.cmp(&id)).ok().map(move |i| &mut self.doms[i])
    }

    /// Counts `pages` more mapped pages for a ring of `owner` if both caps
    /// allow it (and `owner`'s state can be had); `false` otherwise, and
    /// nothing is counted. The caller has checked, under this same lock,
    /// that `owner` is not dying (its state must not outlive its teardown).
    pub fn ring_map_reserve(&mut self, owner: DomId, pages: u32) -> bool {
        let Some(total) = self.ring_map_pages.checked_add(pages).filter(|&n| n <= RING_MAP_PAGES_MAX) else {
            return false;
        };
        let Ok(d) = self.dom_or_insert(owner) else { return false };
        let Some(mine) = d.ring_map_pages.checked_add(pages).filter(|&n| n <= RING_MAP_PAGES_PER_DOMAIN_MAX) else {
            return false;
        };
        d.ring_map_pages = mine;
        self.ring_map_pages = total;
        true
    }

    /// Undoes [`Table::ring_map_reserve`]: under the same L1 acquisition
    /// that takes a mapped ring out of the index (the mapping itself goes
    /// right after, with the locks dropped), or when a registration that
    /// reserved fails. `owner`'s state is gone if its teardown finished
    /// meanwhile; it was counted there and goes with it.
    pub fn ring_map_release(&mut self, owner: DomId, pages: u32) {
        debug_assert!(self.ring_map_pages >= pages);
        self.ring_map_pages = self.ring_map_pages.saturating_sub(pages);
        if let Some(d) = self.dom(owner) {
            debug_assert!(d.ring_map_pages >= pages);
            d.ring_map_pages = d.ring_map_pages.saturating_sub(pages);
        }
    }

    /// The domain's state, created if needed (`-ENOMEM`).
    pub fn dom_or_insert(&mut self, id: DomId) -> Result<&mut DomState, Errno> {
        match self.doms.binary_search_by(|d| d.id.cmp(&id)) {
            Ok(i) => Ok(&mut self.doms[i]),
            Err(i) => {
                self.doms.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                self.doms.insert(i, DomState::new(id));
                Ok(&mut self.doms[i])
            }
        }
    }
}

/// A ring lock's content (L2): the rings whose generation falls in this
/// bucket, sorted by generation (registration appends under L1, so the
/// order holds without sorting).
pub(super) struct Bucket<M> {
    pub rings: Vec<Ring<M>>,
}

impl<M> Bucket<M> {
    fn index(&self, generation: u64) -> Option<usize> {
        self.rings.binary_search_by_key(&generation, |r| r.generation).ok()
    }

    /// The ring of `generation`, if it is still registered.
    pub fn get_mut(&mut self, generation: u64) -> Option<&mut Ring<M>> {
        let i = self.index(generation)?;
        self.rings.get_mut(i)
    }

    pub fn get(&self, generation: u64) -> Option<&Ring<M>> {
        self.rings.get(self.index(generation)?)
    }

    /// Removes the ring of `generation`.
    pub fn take(&mut self, generation: u64) -> Option<Ring<M>> {
        let i = self.index(generation)?;
        Some(self.rings.remove(i))
    }
}
