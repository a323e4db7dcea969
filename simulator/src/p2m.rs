//! A domain's physical-to-machine map: gfn -> (mfn, type), with 4 KiB and
//! 2 MiB entries, like Xen's EPT/NPT p2m.
//!
//! Which entries hold a frame reference: the domain's own RAM does not (the
//! owner's allocated reference covers it, as in Xen); every other entry
//! (static shared memory, grant maps) holds one general reference per frame,
//! taken at insert and dropped at removal.

use std::collections::BTreeMap;

use hypercall_abi::{Errno, Gfn, Mfn, PAGE_ORDER_2M};

/// Most entries in one p2m: growing past it is `-ENOMEM`, like a p2m whose
/// page-table pool is exhausted.
pub const P2M_ENTRIES_MAX: usize = 1 << 22;
/// First gfn past the guest-physical address space (52-bit addresses).
pub const GFN_LIMIT: u64 = 1 << (52 - 12);

/// The type of a p2m entry (`p2m_type_t`, the subset modelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum P2mType {
    /// The domain's own RAM, writable (`p2m_ram_rw`).
    RamRw,
    /// The domain's own RAM, read-only (`p2m_ram_ro`).
    RamRo,
    /// Static shared memory, read-write.
    SharedRw,
    /// Static shared memory, read-only.
    SharedRo,
    /// Another domain's granted page, writable (`p2m_grant_map_rw`).
    GrantRw,
    /// Another domain's granted page, read-only (`p2m_grant_map_ro`).
    GrantRo,
}

impl P2mType {
    /// Whether the guest may write through the entry.
    pub fn writable(self) -> bool {
        matches!(self, P2mType::RamRw | P2mType::SharedRw | P2mType::GrantRw)
    }

    /// Whether the entry holds one general reference per frame.
    pub fn holds_ref(self) -> bool {
        !self.is_ram()
    }

    /// Whether this is the domain's own RAM.
    pub fn is_ram(self) -> bool {
        matches!(self, P2mType::RamRw | P2mType::RamRo)
    }
}

/// One entry, covering `2^order` pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// First machine frame.
    pub mfn: Mfn,
    /// 0 (4 KiB) or 9 (2 MiB).
    pub order: u32,
    /// The type.
    pub t: P2mType,
}

/// A p2m.
#[derive(Default)]
pub struct P2m {
    /// Start gfn -> entry; entries never overlap.
    entries: BTreeMap<u64, Entry>,
}

impl P2m {
    /// An empty p2m.
    pub fn new() -> P2m {
        P2m::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the p2m is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, by start gfn.
    pub fn iter(&self) -> impl Iterator<Item = (Gfn, Entry)> + '_ {
        self.entries.iter().map(|(&g, &e)| (Gfn(g), e))
    }

    /// The entry covering `gfn`, with its start gfn.
    pub fn entry(&self, gfn: Gfn) -> Option<(Gfn, Entry)> {
        let (&start, &e) = self.entries.range(..=gfn.0).next_back()?;
        (gfn.0 - start < (1u64 << e.order)).then_some((Gfn(start), e))
    }

    /// Translates one gfn (`get_gfn_query`).
    pub fn lookup(&self, gfn: Gfn) -> Option<(Mfn, P2mType)> {
        let (start, e) = self.entry(gfn)?;
        Some((Mfn(e.mfn.0 + (gfn.0 - start.0)), e.t))
    }

    /// Whether any gfn in `[gfn, gfn + 2^order)` is populated.
    pub fn populated(&self, gfn: Gfn, order: u32) -> bool {
        if order >= 64 {
            return true;
        }
        let end = gfn.0.saturating_add(1u64 << order);
        self.entry(gfn).is_some() || self.entries.range(gfn.0..end).next().is_some()
    }

    fn check_shape(gfn: Gfn, mfn: Mfn, order: u32) -> Result<(), Errno> {
        if order != 0 && order != PAGE_ORDER_2M {
            return Err(Errno::EINVAL);
        }
        if !gfn.is_aligned(order) || !mfn.is_aligned(order) {
            return Err(Errno::EINVAL);
        }
        if gfn.0.checked_add(1u64 << order).is_none_or(|end| end > GFN_LIMIT) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Inserts an entry. Never replaces one: `-EBUSY` if any gfn in the
    /// range is populated; `-EINVAL` for a bad order or misalignment;
    /// `-ENOMEM` past [`P2M_ENTRIES_MAX`]. Reference counting is the
    /// caller's.
    pub fn insert(&mut self, gfn: Gfn, mfn: Mfn, order: u32, t: P2mType) -> Result<(), Errno> {
        Self::check_shape(gfn, mfn, order)?;
        if self.populated(gfn, order) {
            return Err(Errno::EBUSY);
        }
        if self.entries.len() >= P2M_ENTRIES_MAX {
            return Err(Errno::ENOMEM);
        }
        self.entries.insert(gfn.0, Entry { mfn, order, t });
        Ok(())
    }

    /// Removes exactly the entry at `gfn` mapping `mfn` with `order`;
    /// `-EINVAL` if the entry is not exactly that.
    pub fn remove_exact(&mut self, gfn: Gfn, mfn: Mfn, order: u32) -> Result<Entry, Errno> {
        match self.entries.get(&gfn.0) {
            Some(e) if e.mfn == mfn && e.order == order => {}
            _ => return Err(Errno::EINVAL),
        }
        self.entries.remove(&gfn.0).ok_or(Errno::EINVAL)
    }

    /// Changes the type of one RAM page, splitting a 2 MiB RAM entry first
    /// (`p2m_change_type_one`). Only between RAM types: `-EINVAL` otherwise.
    pub fn set_ram_type(&mut self, gfn: Gfn, t: P2mType) -> Result<(), Errno> {
        let (start, e) = self.entry(gfn).ok_or(Errno::EINVAL)?;
        if !e.t.is_ram() || !t.is_ram() {
            return Err(Errno::EINVAL);
        }
        if e.order != 0 {
            if self.entries.len() + (1 << e.order) > P2M_ENTRIES_MAX {
                return Err(Errno::ENOMEM);
            }
            self.entries.remove(&start.0);
            for i in 0..(1u64 << e.order) {
                self.entries.insert(start.0 + i, Entry { mfn: Mfn(e.mfn.0 + i), order: 0, t: e.t });
            }
        }
        if let Some(e) = self.entries.get_mut(&gfn.0) {
            e.t = t;
        }
        Ok(())
    }

    /// Removes every entry (p2m teardown), returning them.
    pub fn drain(&mut self) -> Vec<(Gfn, Entry)> {
        std::mem::take(&mut self.entries).into_iter().map(|(g, e)| (Gfn(g), e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_and_superpages() {
        let mut p = P2m::new();
        p.insert(Gfn(512), Mfn(1024), 9, P2mType::RamRw).unwrap();
        assert_eq!(p.lookup(Gfn(513)), Some((Mfn(1025), P2mType::RamRw)));
        assert_eq!(p.lookup(Gfn(1024)), None);
        assert_eq!(p.lookup(Gfn(511)), None);
        assert!(p.populated(Gfn(1023), 0));
        assert!(!p.populated(Gfn(0), 9));
    }

    #[test]
    fn insert_over_populated_gfn_is_ebusy() {
        let mut p = P2m::new();
        p.insert(Gfn(512), Mfn(0), 9, P2mType::RamRw).unwrap();
        assert_eq!(p.insert(Gfn(700), Mfn(5), 0, P2mType::SharedRw), Err(Errno::EBUSY));
        p.insert(Gfn(5), Mfn(5), 0, P2mType::SharedRw).unwrap();
        assert_eq!(p.insert(Gfn(0), Mfn(0), 9, P2mType::SharedRw), Err(Errno::EBUSY), "a 4K entry inside");
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn bad_shapes_are_einval() {
        let mut p = P2m::new();
        assert_eq!(p.insert(Gfn(1), Mfn(0), 9, P2mType::RamRw), Err(Errno::EINVAL));
        assert_eq!(p.insert(Gfn(0), Mfn(1), 9, P2mType::RamRw), Err(Errno::EINVAL));
        assert_eq!(p.insert(Gfn(0), Mfn(0), 3, P2mType::RamRw), Err(Errno::EINVAL));
        assert_eq!(p.insert(Gfn(GFN_LIMIT), Mfn(0), 0, P2mType::RamRw), Err(Errno::EINVAL));
        p.insert(Gfn(0), Mfn(0), 0, P2mType::SharedRo).unwrap();
        assert_eq!(p.remove_exact(Gfn(0), Mfn(1), 0), Err(Errno::EINVAL));
        assert_eq!(p.remove_exact(Gfn(0), Mfn(0), 9), Err(Errno::EINVAL));
        assert!(p.remove_exact(Gfn(0), Mfn(0), 0).is_ok());
    }

    #[test]
    fn set_ram_type_splits_superpages_and_refuses_non_ram() {
        let mut p = P2m::new();
        p.insert(Gfn(0), Mfn(512), 9, P2mType::RamRw).unwrap();
        p.set_ram_type(Gfn(3), P2mType::RamRo).unwrap();
        assert_eq!(p.len(), 512);
        assert_eq!(p.lookup(Gfn(3)), Some((Mfn(515), P2mType::RamRo)));
        assert_eq!(p.lookup(Gfn(4)), Some((Mfn(516), P2mType::RamRw)));
        p.insert(Gfn(1024), Mfn(0), 0, P2mType::SharedRw).unwrap();
        assert_eq!(p.set_ram_type(Gfn(1024), P2mType::RamRo), Err(Errno::EINVAL));
        assert_eq!(p.set_ram_type(Gfn(3), P2mType::SharedRo), Err(Errno::EINVAL));
    }
}
