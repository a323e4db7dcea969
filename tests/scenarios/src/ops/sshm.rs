//! `XEN_DOMCTL_static_shm`, issued the way libxenctrl does: the domctl in
//! the caller's memory, the sub-op's OUT fields read back from it.

use hypercall_abi::domctl::{self, Domctl};
use hypercall_abi::sshm::{self, Entry, Name, StaticShm};
use hypercall_abi::{hypercall, DomId};

use crate::mem::get;
use crate::Guest;

/// The name field of a valid region name, `None` for an invalid one.
pub fn name(s: &str) -> Option<[u8; sshm::NAME_BYTES]> {
    Name::new(s).ok().map(|n| *n.field())
}

/// Sub-op `o` on the region named by `name`, every other field zero.
pub fn op(o: u32, name: [u8; sshm::NAME_BYTES]) -> StaticShm {
    StaticShm { op: o, name, ..Default::default() }
}

/// `OP_CREATE` of `nr_pages` with `prot`, persistent or not.
pub fn create(name: [u8; sshm::NAME_BYTES], nr_pages: u64, prot: u32, persistent: bool) -> StaticShm {
    let flags = if persistent { sshm::F_PERSISTENT } else { 0 };
    StaticShm { nr_pages, prot, flags, ..op(sshm::OP_CREATE, name) }
}

/// `OP_ATTACH` of `nr_pages` from page `offset` of the region at `gfn`.
pub fn attach(name: [u8; sshm::NAME_BYTES], nr_pages: u64, offset: u64, gfn: u64, prot: u32) -> StaticShm {
    StaticShm { nr_pages, offset, gfn, prot, ..op(sshm::OP_ATTACH, name) }
}

/// Create-or-open of a region of `size_pages`, attaching all of it at
/// `gfn`.
pub fn open(name: [u8; sshm::NAME_BYTES], size_pages: u64, gfn: u64, prot: u32, persistent: bool) -> StaticShm {
    let flags = sshm::F_CREATE | if persistent { sshm::F_PERSISTENT } else { 0 };
    StaticShm { flags, size_pages, ..attach(name, size_pages, 0, gfn, prot) }
}

/// `OP_DETACH` of the attachment at `gfn`.
pub fn detach(name: [u8; sshm::NAME_BYTES], gfn: u64) -> StaticShm {
    StaticShm { gfn, ..op(sshm::OP_DETACH, name) }
}

/// `OP_UNLINK`.
pub fn unlink(name: [u8; sshm::NAME_BYTES]) -> StaticShm {
    op(sshm::OP_UNLINK, name)
}

/// Writes the domctl carrying `op` on `target` at `gpa`, or the error of
/// writing it.
pub fn write_domctl<G: Guest + ?Sized>(
    g: &mut G,
    gpa: u64,
    target: DomId,
    op: &StaticShm,
) -> Result<(), hypercall_abi::Errno> {
    g.try_write(gpa, &Domctl::static_shm(target, op).to_bytes())
}

/// The domctl at `gpa` as it is now in guest memory.
pub fn read_domctl<G: Guest + ?Sized>(g: &mut G, gpa: u64) -> Result<Domctl, hypercall_abi::Errno> {
    let mut b = [0u8; domctl::SIZE];
    g.try_read(gpa, &mut b)?;
    Ok(Domctl::from_bytes(&b))
}

/// Issues the domctl `d` with its argument at `gpa` (the entry re-issues
/// continuations) and reads it back into `d` as Xen left it. A fault
/// writing it is returned as the hypercall's error would be; a fault
/// reading it back leaves `d` as it was.
pub fn domctl<G: Guest + ?Sized>(g: &mut G, gpa: u64, d: &mut Domctl) -> i64 {
    if let Err(e) = g.try_write(gpa, &d.to_bytes()) {
        return e.to_ret();
    }
    let r = g.hypercall(hypercall::DOMCTL, [gpa, 0, 0, 0, 0]);
    if let Ok(back) = read_domctl(g, gpa) {
        *d = back;
    }
    r
}

/// Issues `op` on `target` with the domctl at `gpa`; returns the result
/// and the sub-op as Xen left it (its OUT fields).
pub fn call<G: Guest + ?Sized>(g: &mut G, gpa: u64, target: DomId, op: &StaticShm) -> (i64, StaticShm) {
    let mut d = Domctl::static_shm(target, op);
    let r = domctl(g, gpa, &mut d);
    (r, d.static_shm_payload())
}

/// Entry `i` of an `OP_INFO`/`OP_LIST` output buffer at `gpa`.
pub fn entry<G: Guest + ?Sized>(g: &mut G, gpa: u64, i: u64) -> Entry {
    get(g, gpa + i * Entry::SIZE as u64)
}
