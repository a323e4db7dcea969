//! Static shared memory through `XEN_DOMCTL_static_shm`, issued by the
//! guest on itself (it is the control domain).

use hypercall_abi::sshm::{self, Entry, StaticShm};
use hypercall_abi::{Errno, Gfn, PAGE_SIZE};

use crate::util::{check, errno, page, ret, scratch, Fail};
use crate::{mem, ops, Guest, WriteOutcome, FREE_GFNS};

/// Pages of the regions the scenarios create.
const REGION_PAGES: u64 = 4;
/// Pages of the large region: 4 MiB, two 2 MiB superpages' worth, so that
/// Xen can back and map it in 2 MiB chunks and a preemptible attach has
/// something to preempt.
const LARGE_REGION_PAGES: u64 = 1024;
/// Where the large region is attached: 2 MiB-aligned, after the small ones.
const LARGE_GFN_INDEX: u64 = 1024;
/// Pages of the region whose return to the free pool is checked: big enough
/// that the drop in free pages cannot be noise.
const POOL_REGION_PAGES: u64 = 64;

/// Issues `op` on the caller with the domctl in the argument page.
fn call<G: Guest + ?Sized>(g: &mut G, op: &StaticShm) -> i64 {
    let gpa = scratch(g, page::ARGS, 0);
    let me = g.domid();
    ops::sshm::call(g, gpa, me, op).0
}

/// The name field of `s`; the empty name (which Xen refuses) for an
/// invalid one.
fn name(s: &str) -> [u8; sshm::NAME_BYTES] {
    ops::sshm::name(s).unwrap_or([0; sshm::NAME_BYTES])
}

/// `OP_CREATE` of a persistent region.
fn create_op(n: &str, pages: u64, prot: u32) -> StaticShm {
    ops::sshm::create(name(n), pages, prot, true)
}

fn attach_op(n: &str, gfn: Gfn, pages: u64, prot: u32) -> StaticShm {
    ops::sshm::attach(name(n), pages, 0, gfn.0, prot)
}

fn detach_op(n: &str, gfn: Gfn) -> StaticShm {
    ops::sshm::detach(name(n), gfn.0)
}

fn unlink_op(n: &str) -> StaticShm {
    ops::sshm::unlink(name(n))
}

/// The `i`-th free gfn.
fn free_gfn<G: Guest + ?Sized>(g: &G, i: u64) -> Gfn {
    debug_assert!(i < FREE_GFNS);
    Gfn(g.free_gfn().0 + i)
}

fn gpa(gfn: Gfn) -> u64 {
    gfn.0 * PAGE_SIZE
}

/// Best-effort teardown whatever state a scenario stopped in: detach the
/// given attachments, unlink the name. Errors are expected (the step may
/// never have happened) and ignored.
fn cleanup<G: Guest + ?Sized>(g: &mut G, n: &str, gfns: &[Gfn]) {
    for &gfn in gfns {
        call(g, &detach_op(n, gfn));
    }
    call(g, &unlink_op(n));
}

/// Runs `body`, then [`cleanup`].
fn with_cleanup<G: Guest + ?Sized>(
    g: &mut G,
    n: &str,
    gfns: &[Gfn],
    body: impl FnOnce(&mut G) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let r = body(g);
    cleanup(g, n, gfns);
    r
}

/// A value whose every page and word differ, so that a wrong mapping shows.
fn pattern(page: u64, word: u64) -> u64 {
    0x5348_4d00_0000_0000 | page << 16 | word
}

/// Create, attach read-write at a free gfn, write and read back through the
/// mapping, detach, unlink.
pub fn create_attach_rw(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_rw";
    let at = free_gfn(g, 0);
    with_cleanup(g, n, &[at], |g| {
        ret("create", call(g, &create_op(n, REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("attach", call(g, &attach_op(n, at, REGION_PAGES, sshm::PROT_RW)), 0)?;
        // A new region is zeroed.
        for p in 0..REGION_PAGES {
            check("new region word", mem::read_u64(g, gpa(at) + p * PAGE_SIZE + 8), 0)?;
        }
        for p in 0..REGION_PAGES {
            for w in [0, 1, 511] {
                mem::write_u64(g, gpa(at) + p * PAGE_SIZE + w * 8, pattern(p, w));
            }
        }
        for p in 0..REGION_PAGES {
            for w in [0, 1, 511] {
                check("word read back", mem::read_u64(g, gpa(at) + p * PAGE_SIZE + w * 8), pattern(p, w))?;
            }
        }
        ret("detach", call(g, &detach_op(n, at)), 0)?;
        ret("unlink", call(g, &unlink_op(n)), 0)
    })
}

/// Attach a region read-write and read-only at two gfns: both show the same
/// memory, and a store through the read-only mapping does not change it
/// (Xen either drops the store or injects a fault: both are a refusal, and
/// which one is reported in the `info:` line).
pub fn ro_attach_refuses_write(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_ro";
    let rw = free_gfn(g, 16);
    let ro = free_gfn(g, 32);
    with_cleanup(g, n, &[rw, ro], |g| {
        ret("create", call(g, &create_op(n, REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("attach rw", call(g, &attach_op(n, rw, REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("attach ro", call(g, &attach_op(n, ro, REGION_PAGES, sshm::PROT_READ)), 0)?;
        let a = 0x1122_3344_5566_7788;
        mem::write_u64(g, gpa(rw) + PAGE_SIZE + 64, a);
        check("ro view of rw write", mem::read_u64(g, gpa(ro) + PAGE_SIZE + 64), a)?;
        let outcome = g.probe_write(gpa(ro) + PAGE_SIZE + 64, !a);
        check("rw view after ro store", mem::read_u64(g, gpa(rw) + PAGE_SIZE + 64), a)?;
        check("ro view after ro store", mem::read_u64(g, gpa(ro) + PAGE_SIZE + 64), a)?;
        match outcome {
            WriteOutcome::Completed => g.print(format_args!("info: store through the ro attachment was dropped")),
            WriteOutcome::Faulted(v) => {
                g.print(format_args!("info: store through the ro attachment faulted (vector {v})"))
            }
        }
        ret("detach ro", call(g, &detach_op(n, ro)), 0)?;
        ret("detach rw", call(g, &detach_op(n, rw)), 0)?;
        ret("unlink", call(g, &unlink_op(n)), 0)
    })
}

/// Region `n` as `OP_INFO` reports it (into the scratch arrays page).
fn info<G: Guest + ?Sized>(g: &mut G, n: &str) -> Result<Entry, Fail> {
    let buf = scratch(g, page::ARRAYS, 0);
    g.write(buf, &[0u8; Entry::SIZE]);
    let op = StaticShm { op: sshm::OP_INFO, name: name(n), buffer: buf, ..Default::default() };
    ret("info", call(g, &op), 0)?;
    Ok(ops::sshm::entry(g, buf, 0))
}

/// `OP_INFO` reports the size, the attachment count and the attached domain.
pub fn info_counts_attachments(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_info";
    let a = free_gfn(g, 48);
    let b = free_gfn(g, 64);
    with_cleanup(g, n, &[a, b], |g| {
        ret("create", call(g, &create_op(n, REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("attach 1", call(g, &attach_op(n, a, REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("attach 2", call(g, &attach_op(n, b, 1, sshm::PROT_READ)), 0)?;
        let e = info(g, n)?;
        check("entry nr_pages", e.nr_pages, REGION_PAGES)?;
        check("entry nr_attachments", e.nr_attachments.into(), 2)?;
        check("entry nr_domids", e.nr_domids.into(), 1)?;
        check("entry domids[0]", e.domids[0].into(), g.domid().0.into())?;
        check("entry persistent", (e.flags & sshm::F_PERSISTENT).into(), sshm::F_PERSISTENT.into())?;
        Ok(())
    })
}

/// Free pages drop when a region is created and come all back after detach
/// and unlink: the pages went back to Xen's heap, nothing leaked.
///
/// Measured over a second, identical cycle: the first one may leave Xen's
/// `xmalloc` pool a page larger (the component's bookkeeping for a region
/// of this many chunks), which it keeps and reuses; seen on real Xen as
/// one page once, never again. A leak would show on every cycle.
pub fn pages_back_in_free_pool(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_pool";
    let at = free_gfn(g, 0);
    let warm = g.free_pages();
    with_cleanup(g, n, &[at], |g| {
        ret("warm-up create", call(g, &create_op(n, POOL_REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("warm-up attach", call(g, &attach_op(n, at, POOL_REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("warm-up detach", call(g, &detach_op(n, at)), 0)?;
        ret("warm-up unlink", call(g, &unlink_op(n)), 0)
    })?;
    let before = match g.free_pages() {
        Ok(v) => v,
        Err(e) => return ret("physinfo", e.to_ret(), 0),
    };
    if let Ok(w) = warm {
        g.print(format_args!("info: free pages before the warm-up cycle {w}, after it {before}"));
    }
    with_cleanup(g, n, &[at], |g| {
        ret("create", call(g, &create_op(n, POOL_REGION_PAGES, sshm::PROT_RW)), 0)?;
        let during = g.free_pages().unwrap_or(before);
        g.print(format_args!("info: free pages before {before}, with region {during}"));
        check("free pages dropped by at least the region", u64::from(before - during >= POOL_REGION_PAGES), 1)?;
        ret("attach", call(g, &attach_op(n, at, POOL_REGION_PAGES, sshm::PROT_RW)), 0)?;
        mem::write_u64(g, gpa(at) + 8, 42);
        ret("detach", call(g, &detach_op(n, at)), 0)?;
        ret("unlink", call(g, &unlink_op(n)), 0)?;
        let after = g.free_pages().unwrap_or(0);
        g.print(format_args!("info: free pages after unlink {after}"));
        check("free pages after unlink", after, before)
    })
}

/// A region of several build steps with a 4 KiB tail (Xen allocates and
/// clears at most `BUILD_PAGES_STEP` pages per step and continues the
/// domctl in between, unseen by the caller): created whole, listed without
/// `F_BUILDING`, its first and last pages shared, and every page back in
/// the free pool once unlinked (given back by Xen's release tasklet before
/// this vCPU runs again). Measured over a second, identical cycle, as in
/// [`pages_back_in_free_pool`].
pub fn create_in_steps(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_steps";
    let pages = 2 * sshm::BUILD_PAGES_STEP + 3;
    let (head, tail) = (free_gfn(g, 80), free_gfn(g, 96));
    let mut before = 0;
    for cycle in 0..2 {
        if cycle == 1 {
            before = match g.free_pages() {
                Ok(v) => v,
                Err(e) => return ret("physinfo", e.to_ret(), 0),
            };
        }
        with_cleanup(g, n, &[head, tail], |g| {
            ret("create", call(g, &create_op(n, pages, sshm::PROT_RW)), 0)?;
            let e = info(g, n)?;
            check("entry nr_pages", e.nr_pages, pages)?;
            check("entry flags (persistent, built)", e.flags.into(), sshm::F_PERSISTENT.into())?;
            ret("attach head", call(g, &attach_op(n, head, 4, sshm::PROT_RW)), 0)?;
            let last = StaticShm { offset: pages - 4, ..attach_op(n, tail, 4, sshm::PROT_RW) };
            ret("attach tail", call(g, &last), 0)?;
            mem::write_u64(g, gpa(head) + 16, 0x5354_4550_0000_0001);
            mem::write_u64(g, gpa(tail) + 3 * PAGE_SIZE + 16, 0x5354_4550_0000_0002);
            check("head word", mem::read_u64(g, gpa(head) + 16), 0x5354_4550_0000_0001)?;
            check("tail word", mem::read_u64(g, gpa(tail) + 3 * PAGE_SIZE + 16), 0x5354_4550_0000_0002)?;
            check("tail page 0 is zeroed", mem::read_u64(g, gpa(tail) + 16), 0)?;
            ret("detach head", call(g, &detach_op(n, head)), 0)?;
            ret("detach tail", call(g, &detach_op(n, tail)), 0)?;
            ret("unlink", call(g, &unlink_op(n)), 0)
        })?;
    }
    let after = g.free_pages().unwrap_or(0);
    g.print(format_args!("info: free pages before {before}, after create/unlink of {pages} pages {after}"));
    check("free pages after unlink", after, before)
}

/// A non-zero reserved field is `-EINVAL`.
pub fn bad_reserved_field(g: &mut dyn Guest) -> Result<(), Fail> {
    let mut op = create_op("smoke_bad", REGION_PAGES, sshm::PROT_RW);
    op.reserved[2] = 1;
    let r = call(g, &op);
    cleanup(g, "smoke_bad", &[]);
    errno("create", r, Errno::EINVAL)
}

/// An unknown sub-op is `-EOPNOTSUPP`.
pub fn bad_op(g: &mut dyn Guest) -> Result<(), Fail> {
    let op = StaticShm { op: 99, name: name("smoke_bad"), ..Default::default() };
    errno("op 99", call(g, &op), Errno::EOPNOTSUPP)
}

/// A name with a character outside `[A-Za-z0-9_]` is `-EINVAL`.
pub fn bad_name(g: &mut dyn Guest) -> Result<(), Fail> {
    let mut op = create_op("smoke_bad", REGION_PAGES, sshm::PROT_RW);
    op.name[5] = b'-';
    errno("create", call(g, &op), Errno::EINVAL)
}

/// A region above the hard size cap is `-E2BIG`.
pub fn too_big(g: &mut dyn Guest) -> Result<(), Fail> {
    let op = create_op("smoke_big", sshm::REGION_PAGES_MAX + 1, sshm::PROT_RW);
    let r = call(g, &op);
    cleanup(g, "smoke_big", &[]);
    errno("create", r, Errno::E2BIG)
}

/// Creating a name twice is `-EEXIST`.
pub fn create_exists(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_twice";
    with_cleanup(g, n, &[], |g| {
        ret("create", call(g, &create_op(n, REGION_PAGES, sshm::PROT_RW)), 0)?;
        errno("create again", call(g, &create_op(n, REGION_PAGES, sshm::PROT_RW)), Errno::EEXIST)
    })
}

/// Attaching a name that does not exist is `-ENOENT`.
pub fn attach_missing(g: &mut dyn Guest) -> Result<(), Fail> {
    let at = free_gfn(g, 0);
    errno("attach", call(g, &attach_op("smoke_missing", at, 1, sshm::PROT_RW)), Errno::ENOENT)
}

/// Attaching over the guest's own RAM is `-EBUSY`: RAM is never dropped.
pub fn attach_over_ram(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_ram";
    let ram = Gfn(scratch(g, page::PAYLOAD, 0) / PAGE_SIZE);
    with_cleanup(g, n, &[ram], |g| {
        mem::write_u64(g, gpa(ram), 0xfeed);
        ret("create", call(g, &create_op(n, 1, sshm::PROT_RW)), 0)?;
        errno("attach over RAM", call(g, &attach_op(n, ram, 1, sshm::PROT_RW)), Errno::EBUSY)?;
        check("RAM word after refused attach", mem::read_u64(g, gpa(ram)), 0xfeed)
    })
}

/// Attaching a read-only region read-write is refused (`-EACCES`).
pub fn attach_rw_of_ro_region(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_rodef";
    let at = free_gfn(g, 80);
    with_cleanup(g, n, &[at], |g| {
        ret("create", call(g, &create_op(n, 1, sshm::PROT_READ)), 0)?;
        errno("attach rw", call(g, &attach_op(n, at, 1, sshm::PROT_RW)), Errno::EACCES)
    })
}

/// Detaching where nothing of the region is attached is `-ENOENT`.
pub fn detach_not_attached(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_detach";
    let at = free_gfn(g, 96);
    with_cleanup(g, n, &[at], |g| {
        ret("create", call(g, &create_op(n, 1, sshm::PROT_RW)), 0)?;
        errno("detach", call(g, &detach_op(n, at)), Errno::ENOENT)
    })
}

/// A 4 MiB region attached at a 2 MiB-aligned gfn (so mapped with 2 MiB
/// entries where Xen backs it in 2 MiB chunks): every page is distinct
/// memory, written and read back through the mapping. Detach really removes
/// the mapping (the same gfns can be attached again) and after unlink every
/// page is back in Xen's free pool.
pub fn large_attach(g: &mut dyn Guest) -> Result<(), Fail> {
    let n = "smoke_large";
    let at = free_gfn(g, LARGE_GFN_INDEX);
    let before = match g.free_pages() {
        Ok(v) => v,
        Err(e) => return ret("physinfo", e.to_ret(), 0),
    };
    with_cleanup(g, n, &[at], |g| {
        check("large gfn 2 MiB-aligned", u64::from(at.is_aligned(hypercall_abi::PAGE_ORDER_2M)), 1)?;
        ret("create", call(g, &create_op(n, LARGE_REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("attach", call(g, &attach_op(n, at, LARGE_REGION_PAGES, sshm::PROT_RW)), 0)?;
        for p in 0..LARGE_REGION_PAGES {
            mem::write_u64(g, gpa(at) + p * PAGE_SIZE + 8 * (p % 512), pattern(p, p % 512));
        }
        for p in 0..LARGE_REGION_PAGES {
            check("large region word", mem::read_u64(g, gpa(at) + p * PAGE_SIZE + 8 * (p % 512)), pattern(p, p % 512))?;
        }
        ret("detach", call(g, &detach_op(n, at)), 0)?;
        ret("attach again at the detached gfns", call(g, &attach_op(n, at, LARGE_REGION_PAGES, sshm::PROT_RW)), 0)?;
        ret("detach again", call(g, &detach_op(n, at)), 0)?;
        ret("unlink", call(g, &unlink_op(n)), 0)?;
        check("free pages after unlink of the large region", g.free_pages().unwrap_or(0), before)
    })
}
