//! `XEN_DOMCTL_static_shm`: owner-less static shared memory regions.
//!
//! One domctl, issued by the control domain on a target domain (the
//! envelope's `domain`), with sub-ops selected by [`StaticShm::op`]. Regions
//! are named; their pages belong to the `DOMID_SSHM` pseudo-domain, never to
//! a guest. See `docs/designs/static-shm.md` in the series for the semantics.
//!
//! # Errors
//!
//! Beyond [`StaticShm::validate`] (`-EINVAL`, `-EOPNOTSUPP`, `-E2BIG`) and
//! do_domctl's checks (`-EPERM` from a non-control domain):
//!
//! - `-ESRCH`: attach/detach target does not exist **or is dying** (a dying
//!   domain is as good as gone: its attachments are being torn down).
//! - `-EOPNOTSUPP`: attach/detach target is PV (not translated); attach
//!   target may have alternate or nested p2m views (`HVM_PARAM_ALTP2M` set,
//!   altp2m active, or nested virtualisation), whose views a detach could
//!   not be guaranteed to clear (as upstream refuses such domains foreign
//!   mappings).
//! - `-ENOENT`: no region of that name (attach without `F_CREATE`, info,
//!   unlink); detach of a `(gfn, name)` the target does not have attached; a
//!   continued attach whose attachment was detached meanwhile, or a continued
//!   create whose region was unlinked meanwhile (cancelled).
//! - `-EEXIST`: create of an existing name (one still being created
//!   included); attach with `F_CREATE` of an existing region whose size or
//!   persistence differs from the requested one; a continued create that
//!   finds another region under its name.
//! - `-EACCES`: attach `prot` above the region's maximum (RW of an RO region),
//!   like POSIX `shm_open(O_RDWR)` of a read-only object.
//! - `-EINVAL`: attach `offset + nr_pages` beyond the region; detach
//!   `nr_pages` neither 0 nor the attached length; a continuation whose
//!   `progress` or arguments do not match the in-flight record.
//! - `-EBUSY`: the gfn range overlaps another attachment of the target or a
//!   populated p2m entry (guest RAM is never replaced).
//! - `-ENOSPC`: global sshm page cap, region count cap, or the target's
//!   [`ATTACHMENTS_PER_DOMAIN_MAX`] reached.
//! - `-E2BIG`: region size above the run-time cap.
//! - `-ENOMEM`: no backing memory, or the hypervisor heap or p2m cannot grow.
//! - `-EFAULT`: info/list buffer not writable.
//!
//! A transient region is freed when its last attachment goes after it has
//! been fully attached once (so a plain create followed by a failed attach
//! keeps it); any region is freed when unlinked with nothing attached.
//!
//! # Bounded work
//!
//! Creating a region allocates and clears its backing in steps of at most
//! [`BUILD_PAGES_STEP`] pages: `OP_CREATE` (and an attach with `F_CREATE`
//! that creates, or finds its region still being created) returns a
//! continuation between steps. While it is being built a region holds its
//! name and its room under the limits, is listed with [`F_BUILDING`], and
//! cannot be attached; any attach of it helps build it. A region whose
//! creator went away half-built stays so until it is unlinked or an attach
//! finishes it. Freeing clears and gives back at most
//! [`RELEASE_PAGES_STEP`] pages per step: an unlink or detach that frees a
//! region continues (`progress` = [`PROGRESS_RELEASING`]) until its memory
//! is back, so Xen's free memory is whole again when it returns; what is
//! left over (a failed attach's region, a continuation never re-issued) is
//! given back in the background (a Xen tasklet). Until its pages are back
//! they count against the page cap, and a create that finds the cap reached
//! only by such pages waits for them (continuations) rather than fail.

use core::mem::{offset_of, size_of};

use static_assertions::{assert_eq_align, assert_eq_size, const_assert, const_assert_eq};

use crate::errno::Errno;
use crate::wire;

/// Sub-op: create a region (`-EEXIST` if the name exists).
pub const OP_CREATE: u32 = 1;
/// Sub-op: map part of a region into the target's physmap.
pub const OP_ATTACH: u32 = 2;
/// Sub-op: remove the target's attachment that starts at `gfn`.
pub const OP_DETACH: u32 = 3;
/// Sub-op: remove the name; the region is freed when its last attachment goes.
pub const OP_UNLINK: u32 = 4;
/// Sub-op: describe one region into `buffer` (one [`Entry`]).
pub const OP_INFO: u32 = 5;
/// Sub-op: describe regions in name order after the cursor `name`.
pub const OP_LIST: u32 = 6;

/// Flag (create, attach with [`F_CREATE`]): the region outlives its users
/// until unlinked, like POSIX shm. Without it a region is transient: freed
/// when its last attachment goes.
pub const F_PERSISTENT: u32 = 1 << 0;
/// Flag (attach): create the region if the name does not exist, atomically
/// with the attach (create-or-open). `size_pages` (or `offset + nr_pages`)
/// and `F_PERSISTENT` then describe the region too, and must match an
/// existing one (`-EEXIST`). A region made this way allows read-write
/// attachments whatever the first attachment's `prot`, so the order in which
/// guests start does not matter; a read-only region is made with
/// `OP_CREATE`.
pub const F_CREATE: u32 = 1 << 1;
/// All input flags.
pub const F_ALL: u32 = F_PERSISTENT | F_CREATE;
/// Output flag in [`Entry::flags`]: the name was unlinked; the region lives
/// on only while attached (it is not listed by name any more, so this is only
/// seen through a domain's attachment).
pub const F_UNLINKED: u32 = 1 << 8;
/// Output flag in [`Entry::flags`]: the region is still being created (its
/// backing is being allocated in steps); it cannot be attached yet.
pub const F_BUILDING: u32 = 1 << 9;

/// Read access.
pub const PROT_READ: u32 = 1 << 0;
/// Write access.
pub const PROT_WRITE: u32 = 1 << 1;
/// Read and write.
pub const PROT_RW: u32 = PROT_READ | PROT_WRITE;

/// A valid `prot` field: a region's maximum, or what an attachment maps.
/// `PROT_WRITE` alone (or any other bit) is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prot {
    /// `PROT_READ`: mapped read-only.
    Read,
    /// `PROT_RW`.
    ReadWrite,
}

impl Prot {
    /// The protection a `prot` field names; `-EINVAL` for anything but
    /// `PROT_READ` and `PROT_RW`.
    pub const fn from_abi(prot: u32) -> Result<Prot, Errno> {
        match prot {
            PROT_READ => Ok(Prot::Read),
            PROT_RW => Ok(Prot::ReadWrite),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The `prot` field's value.
    pub const fn abi(self) -> u32 {
        match self {
            Prot::Read => PROT_READ,
            Prot::ReadWrite => PROT_RW,
        }
    }

    /// Whether a region whose maximum is `self` may be mapped `wanted`:
    /// everything but read-write of a read-only region.
    pub const fn permits(self, wanted: Prot) -> bool {
        matches!((self, wanted), (Prot::ReadWrite, _) | (Prot::Read, Prot::Read))
    }
}

/// Size of the name field, including the terminating NUL.
pub const NAME_BYTES: usize = 32;
/// Longest name in characters.
pub const NAME_LEN_MAX: usize = NAME_BYTES - 1;

/// Largest region, in pages (4 GiB). A boot parameter may lower it.
pub const REGION_PAGES_MAX: u64 = 1 << 20;
/// Most regions at once. A boot parameter may lower it.
pub const REGIONS_MAX: u32 = 16384;
/// Most attachments one domain may hold.
pub const ATTACHMENTS_PER_DOMAIN_MAX: u32 = 64;
/// Most entries one `OP_LIST` call returns.
pub const LIST_ENTRIES_MAX: u32 = 64;
/// Domains named in one [`Entry`]; more attachments are counted, not named.
pub const ENTRY_DOMIDS_MAX: usize = 16;
/// Most pages one step of creating a region allocates and clears before
/// the domctl returns a continuation (8 MiB).
pub const BUILD_PAGES_STEP: u64 = 2048;
/// Most pages of freed regions one step clears and gives back (2 MiB): a
/// continuation of the unlink or detach that freed them, or a run of the
/// background release.
pub const RELEASE_PAGES_STEP: u64 = 512;
/// `progress` of an unlink or detach that has done its work and is giving
/// back the memory it freed, [`RELEASE_PAGES_STEP`] pages per
/// continuation: it returns once the memory is back with Xen.
pub const PROGRESS_RELEASING: u64 = u64::MAX;
/// Highest gfn an attachment may reach (exclusive): 52-bit physical address.
pub const GFN_LIMIT: u64 = 1 << (52 - 12);

/// `struct xen_domctl_static_shm`: the sub-op's arguments, fitting the
/// domctl's 128-byte union. Fields are IN unless marked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct StaticShm {
    /// `OP_*`.
    pub op: u32,
    /// `F_*` (input); for `OP_INFO`/`OP_LIST` the entries carry output flags.
    pub flags: u32,
    /// Region name, `[A-Za-z0-9_]{1,31}`, NUL-padded. For `OP_LIST`, the
    /// cursor: empty to start, OUT the last name returned.
    pub name: [u8; NAME_BYTES],
    /// Create: region size. Attach: pages to map (and the region size with
    /// `F_CREATE`, see `size_pages`). Detach: must be 0 or the attached length.
    pub nr_pages: u64,
    /// Attach: first page of the region to map.
    pub offset: u64,
    /// Attach/detach: first gfn of the attachment in the target's physmap.
    pub gfn: u64,
    /// IN/OUT, create/attach/detach: pages already done by this call's
    /// earlier continuations (create: pages of backing built);
    /// unlink/detach: [`PROGRESS_RELEASING`] while giving back the memory
    /// it freed. Must be 0 when the toolstack issues the call.
    pub progress: u64,
    /// Info/list: guest handle of an array of [`Entry`] (OUT).
    pub buffer: u64,
    /// List: IN capacity of `buffer`, OUT entries written.
    pub nr_entries: u32,
    /// Create: the region's maximum `PROT_*`. Attach: the mapping's `PROT_*`.
    pub prot: u32,
    /// Attach with `F_CREATE`: region size in pages (0 means `offset +
    /// nr_pages`).
    pub size_pages: u64,
    /// Must be zero.
    pub reserved: [u64; 4],
}

assert_eq_size!(StaticShm, [u8; 128]);
assert_eq_align!(StaticShm, u64);
const_assert!(size_of::<StaticShm>() <= crate::domctl::PAYLOAD_BYTES);
const_assert_eq!(offset_of!(StaticShm, op), 0);
const_assert_eq!(offset_of!(StaticShm, flags), 4);
const_assert_eq!(offset_of!(StaticShm, name), 8);
const_assert_eq!(offset_of!(StaticShm, nr_pages), 40);
const_assert_eq!(offset_of!(StaticShm, offset), 48);
const_assert_eq!(offset_of!(StaticShm, gfn), 56);
const_assert_eq!(offset_of!(StaticShm, progress), 64);
const_assert_eq!(offset_of!(StaticShm, buffer), 72);
const_assert_eq!(offset_of!(StaticShm, nr_entries), 80);
const_assert_eq!(offset_of!(StaticShm, prot), 84);
const_assert_eq!(offset_of!(StaticShm, size_pages), 88);
const_assert_eq!(offset_of!(StaticShm, reserved), 96);

/// `struct xen_sshm_entry`: one region, as `OP_INFO` and `OP_LIST` report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    /// Region name, NUL-padded.
    pub name: [u8; NAME_BYTES],
    /// Region size in pages.
    pub nr_pages: u64,
    /// The region's maximum `PROT_*`.
    pub max_prot: u32,
    /// `F_PERSISTENT`, `F_UNLINKED`, `F_BUILDING`.
    pub flags: u32,
    /// Number of attachments (all domains).
    pub nr_attachments: u32,
    /// The domain the region was created on (audit only: it owns nothing).
    pub creator: u16,
    /// How many of `domids` are valid.
    pub nr_domids: u16,
    /// The first attached domains, each once, in ascending order.
    pub domids: [u16; ENTRY_DOMIDS_MAX],
}

assert_eq_size!(Entry, [u8; 88]);
assert_eq_align!(Entry, u64);
const_assert_eq!(offset_of!(Entry, name), 0);
const_assert_eq!(offset_of!(Entry, nr_pages), 32);
const_assert_eq!(offset_of!(Entry, max_prot), 40);
const_assert_eq!(offset_of!(Entry, flags), 44);
const_assert_eq!(offset_of!(Entry, nr_attachments), 48);
const_assert_eq!(offset_of!(Entry, creator), 52);
const_assert_eq!(offset_of!(Entry, nr_domids), 54);
const_assert_eq!(offset_of!(Entry, domids), 56);

/// A validated region name: 1 to 31 characters of `[A-Za-z0-9_]`, stored
/// NUL-padded. Ordered bytewise, which is the `OP_LIST` order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name([u8; NAME_BYTES]);

impl Name {
    /// Parses a name field: the name, then NUL bytes only to the end.
    /// `-EINVAL` for an empty name, a bad character, no NUL, or non-zero
    /// bytes after the first NUL.
    pub fn from_field(field: &[u8; NAME_BYTES]) -> Result<Name, Errno> {
        let len = field.iter().position(|&b| b == 0).ok_or(Errno::EINVAL)?;
        if len == 0 || field[len..].iter().any(|&b| b != 0) {
            return Err(Errno::EINVAL);
        }
        if !field[..len].iter().all(|&b| Self::valid_char(b)) {
            return Err(Errno::EINVAL);
        }
        Ok(Name(*field))
    }

    /// Builds a name from a string, with the same rules (`-ENAMETOOLONG` for
    /// more than [`NAME_LEN_MAX`] characters).
    pub fn new(s: &str) -> Result<Name, Errno> {
        if s.len() > NAME_LEN_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut f = [0u8; NAME_BYTES];
        f[..s.len()].copy_from_slice(s.as_bytes());
        Self::from_field(&f)
    }

    /// Whether `b` may appear in a name (xl-compatible characters).
    pub const fn valid_char(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    /// The NUL-padded field.
    pub const fn field(&self) -> &[u8; NAME_BYTES] {
        &self.0
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
        core::str::from_utf8(&self.0[..len]).unwrap_or("")
    }
}

impl StaticShm {
    /// The name field as a [`Name`].
    pub fn name(&self) -> Result<Name, Errno> {
        Name::from_field(&self.name)
    }

    /// The prot field as a [`Prot`] (create and attach).
    pub fn prot(&self) -> Result<Prot, Errno> {
        Prot::from_abi(self.prot)
    }

    /// Checks everything that does not need hypervisor state: known op, no
    /// unknown flag, zero reserved fields, zero fields the op does not use,
    /// valid name and prot, no overflow in `offset + nr_pages` or `gfn +
    /// nr_pages`. Each failure is `-EINVAL` except `-EOPNOTSUPP` for an
    /// unknown op and `-E2BIG` for sizes above the hard caps.
    pub fn validate(&self) -> Result<(), Errno> {
        if self.reserved != [0; 4] {
            return Err(Errno::EINVAL);
        }
        let no_range = self.offset == 0 && self.gfn == 0 && self.progress == 0;
        let no_buffer = self.buffer == 0 && self.nr_entries == 0;
        match self.op {
            OP_CREATE => {
                let no_place = self.offset == 0 && self.gfn == 0;
                if self.flags & !F_PERSISTENT != 0 || !no_place || !no_buffer || self.size_pages != 0 {
                    return Err(Errno::EINVAL);
                }
                self.name()?;
                self.prot()?;
                if self.nr_pages == 0 || self.progress >= self.nr_pages {
                    return Err(Errno::EINVAL);
                }
                if self.nr_pages > REGION_PAGES_MAX {
                    return Err(Errno::E2BIG);
                }
            }
            OP_ATTACH => {
                if self.flags & !F_ALL != 0 || !no_buffer {
                    return Err(Errno::EINVAL);
                }
                if self.flags & F_CREATE == 0 && (self.flags != 0 || self.size_pages != 0) {
                    return Err(Errno::EINVAL);
                }
                self.name()?;
                self.prot()?;
                if self.nr_pages == 0 {
                    return Err(Errno::EINVAL);
                }
                let end = self.offset.checked_add(self.nr_pages).ok_or(Errno::EINVAL)?;
                let gfn_end = self.gfn.checked_add(self.nr_pages).ok_or(Errno::EINVAL)?;
                if gfn_end > GFN_LIMIT || self.progress >= self.nr_pages {
                    return Err(Errno::EINVAL);
                }
                if end > REGION_PAGES_MAX || self.size_pages > REGION_PAGES_MAX {
                    return Err(Errno::E2BIG);
                }
                if self.size_pages != 0 && end > self.size_pages {
                    return Err(Errno::EINVAL);
                }
            }
            OP_DETACH => {
                if self.flags != 0 || self.offset != 0 || self.prot != 0 || !no_buffer || self.size_pages != 0 {
                    return Err(Errno::EINVAL);
                }
                self.name()?;
                if self.gfn >= GFN_LIMIT {
                    return Err(Errno::EINVAL);
                }
            }
            OP_UNLINK | OP_INFO => {
                // An unlink's continuation gives back what it freed.
                let releasing = self.op == OP_UNLINK && self.progress == PROGRESS_RELEASING;
                let no_range = no_range || (releasing && self.offset == 0 && self.gfn == 0);
                if self.flags != 0 || self.nr_pages != 0 || !no_range || self.prot != 0 || self.size_pages != 0 {
                    return Err(Errno::EINVAL);
                }
                if self.op == OP_UNLINK && !no_buffer {
                    return Err(Errno::EINVAL);
                }
                if self.op == OP_INFO && (self.buffer == 0 || self.nr_entries != 0) {
                    return Err(Errno::EINVAL);
                }
                self.name()?;
            }
            OP_LIST => {
                if self.flags != 0 || self.nr_pages != 0 || !no_range || self.prot != 0 || self.size_pages != 0 {
                    return Err(Errno::EINVAL);
                }
                if self.buffer == 0 || self.nr_entries == 0 {
                    return Err(Errno::EINVAL);
                }
                // The cursor is empty or a valid name.
                if self.name != [0; NAME_BYTES] {
                    self.name()?;
                }
            }
            _ => return Err(Errno::EOPNOTSUPP),
        }
        Ok(())
    }
}

wire!(StaticShm {
    op: u32,
    flags: u32,
    name: bytes,
    nr_pages: u64,
    offset: u64,
    gfn: u64,
    progress: u64,
    buffer: u64,
    nr_entries: u32,
    prot: u32,
    size_pages: u64,
    reserved: u64s,
});
wire!(Entry {
    name: bytes,
    nr_pages: u64,
    max_prot: u32,
    flags: u32,
    nr_attachments: u32,
    creator: u16,
    nr_domids: u16,
    domids: u16s,
});

#[cfg(test)]
mod tests {
    use super::*;

    fn attach() -> StaticShm {
        StaticShm {
            op: OP_ATTACH,
            name: *Name::new("ring_0").unwrap().field(),
            nr_pages: 4,
            gfn: 0x1000,
            prot: PROT_RW,
            ..Default::default()
        }
    }

    #[test]
    fn prot_is_read_or_read_write() {
        assert_eq!(Prot::from_abi(PROT_READ), Ok(Prot::Read));
        assert_eq!(Prot::from_abi(PROT_RW), Ok(Prot::ReadWrite));
        for bad in [0, PROT_WRITE, 1 << 2, PROT_RW | 1 << 2, u32::MAX] {
            assert_eq!(Prot::from_abi(bad), Err(Errno::EINVAL), "prot {bad:#x}");
        }
        for p in [Prot::Read, Prot::ReadWrite] {
            assert_eq!(Prot::from_abi(p.abi()), Ok(p));
        }
    }

    #[test]
    fn read_only_region_permits_read_only_mappings_only() {
        assert!(Prot::ReadWrite.permits(Prot::ReadWrite));
        assert!(Prot::ReadWrite.permits(Prot::Read));
        assert!(Prot::Read.permits(Prot::Read));
        assert!(!Prot::Read.permits(Prot::ReadWrite));
    }

    #[test]
    fn names() {
        assert_eq!(Name::new("a_B9").unwrap().as_str(), "a_B9");
        assert_eq!(Name::new(""), Err(Errno::EINVAL));
        assert_eq!(Name::new("a-b"), Err(Errno::EINVAL));
        assert_eq!(Name::new(&"x".repeat(32)), Err(Errno::ENAMETOOLONG));
        assert!(Name::new(&"x".repeat(31)).is_ok());
        let mut f = *Name::new("ab").unwrap().field();
        f[5] = b'c';
        assert_eq!(Name::from_field(&f), Err(Errno::EINVAL));
        assert_eq!(Name::from_field(&[b'a'; NAME_BYTES]), Err(Errno::EINVAL));
    }

    #[test]
    fn validate_rejects_each_bad_field() {
        assert_eq!(attach().validate(), Ok(()));
        type Case = (fn(&mut StaticShm), Errno);
        let bad: &[Case] = &[
            (|s| s.op = 99, Errno::EOPNOTSUPP),
            (|s| s.reserved[3] = 1, Errno::EINVAL),
            (|s| s.flags = 1 << 7, Errno::EINVAL),
            (|s| s.flags = F_PERSISTENT, Errno::EINVAL),
            (|s| s.prot = 0, Errno::EINVAL),
            (|s| s.prot = PROT_WRITE, Errno::EINVAL),
            (|s| s.nr_pages = 0, Errno::EINVAL),
            (|s| s.offset = u64::MAX, Errno::EINVAL),
            (|s| s.gfn = GFN_LIMIT - 1, Errno::EINVAL),
            (|s| s.nr_pages = REGION_PAGES_MAX + 1, Errno::E2BIG),
            (|s| s.buffer = 8, Errno::EINVAL),
            (|s| s.progress = 4, Errno::EINVAL),
            (|s| s.name[0] = 0, Errno::EINVAL),
        ];
        for (i, (f, e)) in bad.iter().enumerate() {
            let mut s = attach();
            f(&mut s);
            assert_eq!(s.validate(), Err(*e), "case {i}");
        }
    }

    #[test]
    fn create_takes_progress_below_its_size_only() {
        let create = StaticShm {
            op: OP_CREATE,
            name: *Name::new("big").unwrap().field(),
            nr_pages: 4,
            prot: PROT_RW,
            ..Default::default()
        };
        assert_eq!(create.validate(), Ok(()));
        assert_eq!(StaticShm { progress: 3, ..create }.validate(), Ok(()));
        assert_eq!(StaticShm { progress: 4, ..create }.validate(), Err(Errno::EINVAL));
        assert_eq!(StaticShm { progress: u64::MAX, ..create }.validate(), Err(Errno::EINVAL));
        assert_eq!(StaticShm { gfn: 1, ..create }.validate(), Err(Errno::EINVAL));
        assert_eq!(StaticShm { offset: 1, ..create }.validate(), Err(Errno::EINVAL));
    }

    #[test]
    fn unlink_takes_progress_releasing_only() {
        let unlink = StaticShm { op: OP_UNLINK, name: *Name::new("gone").unwrap().field(), ..Default::default() };
        assert_eq!(unlink.validate(), Ok(()));
        assert_eq!(StaticShm { progress: PROGRESS_RELEASING, ..unlink }.validate(), Ok(()));
        assert_eq!(StaticShm { progress: 1, ..unlink }.validate(), Err(Errno::EINVAL));
        assert_eq!(StaticShm { progress: PROGRESS_RELEASING, gfn: 1, ..unlink }.validate(), Err(Errno::EINVAL));
        let info = StaticShm { op: OP_INFO, buffer: 0x1000, ..unlink };
        assert_eq!(StaticShm { progress: PROGRESS_RELEASING, ..info }.validate(), Err(Errno::EINVAL));
    }

    #[test]
    fn bytes_round_trip() {
        let mut s = attach();
        s.reserved = [1, 2, 3, 4];
        s.size_pages = 77;
        assert_eq!(StaticShm::from_bytes(&s.to_bytes()), s);
        let e = Entry {
            name: *Name::new("r").unwrap().field(),
            nr_pages: 9,
            max_prot: PROT_READ,
            flags: F_PERSISTENT,
            nr_attachments: 3,
            creator: 7,
            nr_domids: 2,
            domids: [1; ENTRY_DOMIDS_MAX],
        };
        assert_eq!(Entry::from_bytes(&e.to_bytes()), e);
    }
}
