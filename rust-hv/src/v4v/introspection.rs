//! What V4V holds, for tests and debug keys, and its invariant check.
//!
//! These take the locks in the usual order (L1, then one L2 at a time) and
//! never call the platform.

use hypercall_abi::v4v::{PENDING_PER_RING_MAX, RING_HEADER_BYTES, SLOT_BYTES};
use hypercall_abi::DomId;

use super::table::RingKey;
use super::{V4v, RING_LOCKS, RING_MAP_PAGES_MAX, RING_MAP_PAGES_PER_DOMAIN_MAX};
use crate::platform::{Lock, Platform};

impl<P: Platform> V4v<P> {
    /// Pages V4V holds pinned, in all.
    pub fn pinned_pages(&self) -> usize {
        self.table.with(|t| {
            t.rings
                .iter()
                .map(|e| self.bucket(e.generation).with(|b| b.get(e.generation).map_or(0, |r| r.mfns.len())))
                .sum()
        })
    }

    /// Pages of rings mapped in the platform's mapping space, as counted
    /// against [`RING_MAP_PAGES_MAX`].
    pub fn ring_map_pages(&self) -> u32 {
        self.table.with(|t| t.ring_map_pages)
    }

    /// Number of registered rings owned by `d`, as counted by V4V.
    pub fn nr_rings(&self, d: DomId) -> u32 {
        self.table.with(|t| t.dom(d).map_or(0, |s| s.nr_rings))
    }

    /// Whether `d` appears anywhere in V4V's state (rings, partners,
    /// pending lists, reservations, per-domain state, firewall rules).
    pub fn references(&self, d: DomId) -> bool {
        self.table.with(|t| {
            t.dom(d).is_some()
                || t.fw.iter().any(|r| r.src_domain == d.0 || r.dst_domain == d.0)
                || t.rings.iter().any(|e| {
                    e.key.owner == d
                        || e.key.partner == d
                        || self.bucket(e.generation).with(|b| {
                            b.get(e.generation).is_some_and(|r| {
                                r.pending.iter().any(|w| w.dom == d) || r.reservation.is_some_and(|res| res.owner == d)
                            })
                        })
                })
        })
    }

    /// Checks V4V's internal consistency; the first violation found.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.table.with(|t| {
            if !t.rings.windows(2).all(|w| w[0].key < w[1].key) {
                return Err("ring index not sorted/unique");
            }
            let in_buckets: usize = self.buckets.iter().map(|b| b.with(|b| b.rings.len())).sum();
            if in_buckets != t.rings.len() {
                return Err("ring in a bucket but not in the index, or the reverse");
            }
            let partnered = t.rings.iter().filter(|e| e.key.has_partner()).count();
            let indexed = t.by_partner.windows(2).all(|w| w[0] < w[1])
                && t.by_partner.iter().all(|e| e.key.partner == e.partner && t.find(e.key).is_some());
            if !indexed || partnered != t.by_partner.len() {
                return Err("partner index does not match the rings");
            }
            for d in &t.doms {
                let n = t.rings.iter().filter(|e| e.key.owner == d.id).count();
                if n != d.nr_rings as usize {
                    return Err("nr_rings drifted");
                }
            }
            for e in &t.rings {
                if !t.doms.iter().any(|d| d.id == e.key.owner) {
                    return Err("ring owner without state");
                }
            }
            // Mapped pages: counted at least for every mapped ring in the
            // index (a registration in flight counts before it inserts),
            // and within the caps.
            let mut mapped_total = 0u64;
            for d in &t.doms {
                let mapped: u64 = t
                    .rings
                    .iter()
                    .filter(|e| e.key.owner == d.id)
                    .map(|e| {
                        self.bucket(e.generation).with(|b| {
                            b.get(e.generation).filter(|r| r.map.is_some()).map_or(0, |r| r.mfns.len() as u64)
                        })
                    })
                    .sum();
                if mapped > u64::from(d.ring_map_pages) || d.ring_map_pages > RING_MAP_PAGES_PER_DOMAIN_MAX {
                    return Err("a domain's mapped pages miscounted or over the cap");
                }
                mapped_total += mapped;
            }
            if mapped_total > u64::from(t.ring_map_pages) || t.ring_map_pages > RING_MAP_PAGES_MAX {
                return Err("mapped pages miscounted or over the cap");
            }
            for (i, b) in self.buckets.iter().enumerate() {
                b.with(|b| {
                    let sorted = b.rings.windows(2).all(|w| w[0].generation < w[1].generation);
                    let placed = b.rings.iter().all(|r| (r.generation % RING_LOCKS as u64) as usize == i);
                    (sorted && placed).then_some(()).ok_or("bucket unsorted or ring in the wrong bucket")
                })?;
            }
            for e in &t.rings {
                self.bucket(e.generation).with(|b| {
                    let r = b.get(e.generation).ok_or("indexed ring missing from its bucket")?;
                    if RingKey::of(&r.id) != e.key {
                        return Err("ring does not match index");
                    }
                    if r.tx >= r.len || !r.tx.is_multiple_of(SLOT_BYTES) {
                        return Err("tx_ptr out of range");
                    }
                    if r.mfns.len() != r.gfns.len()
                        || r.mfns.len() != (r.len + RING_HEADER_BYTES).div_ceil(4096) as usize
                    {
                        return Err("page count");
                    }
                    if r.pending.len() > PENDING_PER_RING_MAX as usize {
                        return Err("pending list over its bound");
                    }
                    for (i, w) in r.pending.iter().enumerate() {
                        if r.pending[..i].iter().any(|x| x.dom == w.dom) {
                            return Err("duplicate waiter");
                        }
                    }
                    if let Some(res) = r.reservation {
                        if res.bytes > r.len - SLOT_BYTES {
                            return Err("reservation larger than ring");
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
    }
}
