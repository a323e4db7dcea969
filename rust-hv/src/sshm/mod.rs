//! Static shared memory: owner-less, hypervisor-refcounted regions.
//!
//! The toolstack creates named regions with `XEN_DOMCTL_static_shm` and maps
//! parts of them into translated guests' physmaps. Backing pages belong to the
//! sshm pseudo-domain, never to a guest; every attachment holds a reference on
//! its region, and a region is freed when it has no attachment and is either
//! unlinked or transient (and has been used). Any domain may die in any
//! order: the domain-kill hook detaches its attachments and it is gone.
//!
//! # Locking
//!
//! There is one lock, [`Sshm::state`] (Xen: a spinlock), protecting the
//! whole [`registry::State`]: regions and their backing lists, the name
//! index, every domain's attachments (including in-flight attach and detach
//! records) and the page and region counters.
//!
//! Its class is [`SSHM_STATE`](crate::locking::SSHM_STATE) (level 1, never
//! held with a V4V lock); the order and the platform calls allowed under it
//! are the crate's rules, in [`crate::locking`]. The platform's own locks
//! taken by calls made with it held (the p2m lock) nest inside it, and never
//! the other way round: the platform calls [`Sshm::domctl`] and
//! [`Sshm::domain_destroy`] holding none of this crate's locks (both assert
//! it at entry). Domain references are taken before the lock
//! (`p.domain()`), guest copies (`OP_INFO`, `OP_LIST`) are made after it is
//! dropped, so a faulting copy never happens with it held, and backing is
//! allocated and given back with it dropped.
//!
//! Work under the lock is bounded: an attach or detach maps or unmaps at most
//! [`BATCH_ENTRIES_MAX`] p2m entries per call and then returns a continuation
//! (`-ERESTART` with `progress` updated); so does the rollback of a failed
//! attach, and the teardown at domain death runs in steps of at most as many
//! entries, each returning `-ERESTART` to Xen's relinquish path until done.
//! Region-sized work is done with the lock dropped and in bounded steps. A
//! new region takes its name and its room under the limits at once, and is
//! then built: each step allocates (and clears) at most
//! [`BUILD_PAGES_STEP`] pages, a chunk at a time with the lock dropped,
//! adding each under it, and the domctl returns a continuation between
//! steps. Until it is whole a region cannot be attached (an attach of it
//! helps build it; the loser of a race to add a chunk gives it back). A
//! freed region's chunks go on a free list under the lock and are given
//! back (and cleared) with it dropped, at most [`RELEASE_PAGES_STEP`] pages
//! per step, by [`Sshm::release_step`]: the unlink or detach that freed
//! them runs it in its own continuations until the memory is back (so Xen's
//! free memory is whole when it returns), the domain-kill hook in its own
//! steps, and the platform in the background for anything left over
//! ([`Platform::sshm_release_later`]; Xen: a tasklet).
//!
//! A domain's death is ordered with attach by this lock and `d->is_dying`:
//! Xen sets `is_dying` before calling the hook, attach checks it with the lock
//! held, and the hook takes the lock; so either the attach runs first and the
//! hook undoes it, or the attach sees the domain dying and adds nothing.

mod registry;

use hypercall_abi::sshm::{
    Entry, Name, Prot, StaticShm, F_CREATE, F_PERSISTENT, OP_ATTACH, OP_CREATE, OP_DETACH, OP_INFO, OP_LIST, OP_UNLINK,
};
pub use hypercall_abi::sshm::{BUILD_PAGES_STEP, PROGRESS_RELEASING, RELEASE_PAGES_STEP};
use hypercall_abi::{DomId, Errno, Gfn};

use crate::locking;
use crate::platform::{DomainInfo, Lock, P2mKind, Platform};

pub use registry::Stats;
use registry::{Attachment, Mapped, Phase, State};

/// Most p2m entries one attach or detach call maps or unmaps before it
/// returns a continuation: 256 entries is at most 512 MiB of 2 MiB entries
/// or 1 MiB of 4 KiB entries per call.
pub const BATCH_ENTRIES_MAX: u64 = 256;

/// Freed chunks given back per acquisition of the sshm lock (and at most
/// [`RELEASE_PAGES_STEP`] pages).
pub const RELEASE_BATCH: usize = 16;

/// Times an attach with `F_CREATE` finds the region it created or was
/// building gone again (unlinked by a racing toolstack) before it gives up
/// (`-EAGAIN`).
const CREATE_TRIES_MAX: u32 = 3;

/// What [`Sshm::attach_start`] needs.
enum Start {
    /// The attachment is recorded, at this index.
    Ready(usize),
    /// The region is being built: a step of it first (with the lock
    /// dropped).
    Build(registry::RegionId),
    /// The region to create needs room that freed pages not yet given back
    /// still take.
    WaitForRelease,
}

/// How far a step of building a region got.
enum Built {
    Whole,
    /// Pages built so far; the step's budget is spent.
    Partly(u64),
}

/// Run-time limits (boot parameters in Xen), each at most the ABI's hard cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pages all regions together may use (`sshm_max_mb`).
    pub total_pages_max: u64,
    /// Largest region in pages.
    pub region_pages_max: u64,
    /// Most regions.
    pub regions_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total_pages_max: 1 << 18,
            region_pages_max: hypercall_abi::sshm::REGION_PAGES_MAX,
            regions_max: hypercall_abi::sshm::REGIONS_MAX,
        }
    }
}

impl Limits {
    /// The limits lowered to the ABI's hard caps.
    fn clamped(self) -> Limits {
        Limits {
            total_pages_max: self.total_pages_max,
            region_pages_max: self.region_pages_max.min(hypercall_abi::sshm::REGION_PAGES_MAX),
            regions_max: self.regions_max.min(hypercall_abi::sshm::REGIONS_MAX),
        }
    }
}

/// The static shared memory state of a hypervisor.
pub struct Sshm<P: Platform> {
    limits: Limits,
    /// The one sshm lock; see the module's `# Locking`.
    state: P::Lock<State>,
}

/// The p2m type of a mapping with `prot`.
fn kind(prot: Prot) -> P2mKind {
    match prot {
        Prot::ReadWrite => P2mKind::SharedRw,
        Prot::Read => P2mKind::SharedRo,
    }
}

impl<P: Platform> Sshm<P> {
    /// No regions.
    pub fn new(limits: Limits) -> Self {
        Sshm { limits: limits.clamped(), state: P::Lock::new(&locking::SSHM_STATE, State::default()) }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.state.with(|s| s.stats())
    }

    /// Checks the registry's internal invariants (for the simulator's
    /// checker); `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.state.with(|s| s.check(&self.limits))
    }

    /// Debug builds re-check every invariant after each operation.
    fn debug_check(&self, s: &State) {
        debug_assert_eq!(s.check(&self.limits), Ok(()));
    }

    /// `XEN_DOMCTL_static_shm`, after do_domctl's XSM and interface version
    /// checks. `target` is the envelope's domain: the domain attached to or
    /// detached from, and the recorded creator of a created region.
    ///
    /// `Err(Errno::ERESTART)` is a continuation: `op.progress` has been
    /// updated and the caller copies `op` back and re-issues the domctl.
    /// `OP_INFO` and `OP_LIST` write `op` fields too (`OP_LIST`: cursor and
    /// `nr_entries`). `OP_LIST` returns how many regions follow the last one
    /// it wrote; every other op returns 0.
    pub fn domctl(&self, p: &P, caller: &P::Domain, target: DomId, op: &mut StaticShm) -> Result<i64, Errno> {
        locking::assert_unlocked(p);
        op.validate()?;
        // The domctl's XSM check was on its envelope domain only. Every
        // sub-op but detach also touches the regions, which are global and
        // belong to the pseudo-domain: the policy is asked about that too
        // (an attach is then checked against both the target and the
        // regions). Detach touches only the target's own attachment.
        if op.op != OP_DETACH {
            p.xsm_sshm_regions(caller)?;
        }
        // An unlink or detach that freed memory, continued until it is back.
        if matches!(op.op, OP_UNLINK | OP_DETACH) && op.progress == PROGRESS_RELEASING {
            return self.give_back(p, op);
        }
        let r = match op.op {
            OP_CREATE => self.create(p, target, op),
            OP_ATTACH => self.attach(p, target, op),
            OP_DETACH => self.detach(p, target, op).and_then(|_| self.give_back(p, op)),
            OP_UNLINK => self.unlink(p, op).and_then(|_| self.give_back(p, op)),
            OP_INFO => self.info(p, caller, op),
            OP_LIST => self.list(p, caller, op),
            // `validate` refuses every other op.
            _ => Err(Errno::EOPNOTSUPP),
        };
        debug_assert!(r != Err(Errno::ERESTART) || op.op != OP_INFO && op.op != OP_LIST);
        if self.state.with(|s| s.has_dead()) {
            p.sshm_release_later();
        }
        r
    }

    /// One bounded step of giving freed regions' backing back to the
    /// platform (which clears it): at most [`RELEASE_PAGES_STEP`] pages,
    /// [`RELEASE_BATCH`] chunks per acquisition of the lock, given back with
    /// it dropped. Returns whether more is left: the platform calls it again
    /// (Xen: the release tasklet reschedules itself).
    pub fn release_step(&self, p: &P) -> bool {
        locking::assert_unlocked(p);
        let mut batch = [registry::Chunk { first_page: 0, mfn: hypercall_abi::Mfn(0), order: 0 }; RELEASE_BATCH];
        let mut budget = RELEASE_PAGES_STEP;
        while budget > 0 {
            let n = self.state.with(|s| s.take_dead(&mut batch, budget));
            if n == 0 {
                break;
            }
            let mut pages = 0u64;
            for c in &batch[..n] {
                p.sshm_free(c.mfn, c.order);
                pages += 1u64 << c.order;
            }
            self.state.with(|s| s.released(pages));
            budget = budget.saturating_sub(pages);
        }
        self.state.with(|s| s.has_dead())
    }

    /// An unlink or detach returns once the memory it freed (if any) is back
    /// with the platform: a step of it here, then a continuation with
    /// `progress` = [`PROGRESS_RELEASING`] while any is left (freed by it or
    /// by anyone else, or being given back by another step meanwhile).
    fn give_back(&self, p: &P, op: &mut StaticShm) -> Result<i64, Errno> {
        if !self.state.with(|s| s.freeing()) {
            return Ok(0);
        }
        self.release_step(p);
        if self.state.with(|s| s.freeing()) {
            op.progress = PROGRESS_RELEASING;
            return Err(Errno::ERESTART);
        }
        Ok(0)
    }

    /// One bounded step of building region `id`: at most
    /// [`BUILD_PAGES_STEP`] pages (fewer if Xen asks to preempt), each chunk
    /// allocated and cleared with the lock dropped and added under it. An
    /// allocation failure removes the region (creating is all or nothing,
    /// whoever was building it): `-ENOMEM`. `-ENOENT` if it was unlinked
    /// meanwhile.
    fn build(&self, p: &P, id: registry::RegionId) -> Result<Built, Errno> {
        let mut done = 0u64;
        loop {
            let next = self.state.with(|s| s.region(id).map(|r| (r.next_chunk(), r.built)));
            let Some((next, built)) = next else { return Err(Errno::ENOENT) };
            let Some((page, order)) = next else { return Ok(Built::Whole) };
            if done >= BUILD_PAGES_STEP || (done > 0 && p.preempt_check()) {
                return Ok(Built::Partly(built));
            }
            let chunk = match p.sshm_alloc(order) {
                Ok(mfn) => Ok((mfn, order)),
                // Not one 2 MiB chunk free: 4 KiB ones will do.
                Err(_) if order != 0 => p.sshm_alloc(0).map(|mfn| (mfn, 0)),
                Err(e) => Err(e),
            };
            let (mfn, order) = match chunk {
                Ok(c) => c,
                Err(e) => {
                    self.state.with(|s| {
                        s.abandon_build(p, id);
                        self.debug_check(s);
                    });
                    return Err(e);
                }
            };
            let added = self.state.with(|s| s.add_chunk(id, registry::Chunk { first_page: page, mfn, order }));
            match added {
                Ok(whole) => {
                    done += 1 << order;
                    if whole {
                        return Ok(Built::Whole);
                    }
                }
                Err((e, c)) => {
                    p.sshm_free(c.mfn, c.order);
                    match e {
                        // Another builder added this page first: go on from
                        // where it got to.
                        Errno::EAGAIN => {}
                        Errno::ENOMEM => {
                            self.state.with(|s| s.abandon_build(p, id));
                            return Err(Errno::ENOMEM);
                        }
                        e => return Err(e),
                    }
                }
            }
        }
    }

    /// `OP_CREATE`: begins the region (`progress` 0) or finds the one its
    /// earlier steps began, and builds a step of it; a continuation until it
    /// is whole, with `progress` the pages built.
    fn create(&self, p: &P, target: DomId, op: &mut StaticShm) -> Result<i64, Errno> {
        let name = op.name()?;
        let prot = op.prot()?;
        let persistent = op.flags & F_PERSISTENT != 0;
        let begun = self.state.with(|s| {
            let r = if op.progress == 0 {
                if s.lookup(&name).is_some() {
                    return Err(Errno::EEXIST);
                }
                s.begin_region(&self.limits, name, op.nr_pages, prot, persistent, target, None)
            } else {
                s.find_same(&name, op.nr_pages, prot, persistent)
            };
            self.debug_check(s);
            r
        });
        let id = match begun {
            Ok(id) => id,
            Err(Errno::ERESTART) => return self.wait_for_release(p),
            Err(e) => return Err(e),
        };
        match self.build(p, id)? {
            Built::Whole => Ok(0),
            Built::Partly(built) => {
                op.progress = built;
                Err(Errno::ERESTART)
            }
        }
    }

    /// A create needs room that freed pages not yet given back still take:
    /// gives a step of them back here and continues (`progress` unchanged,
    /// so the op starts again).
    fn wait_for_release(&self, p: &P) -> Result<i64, Errno> {
        self.release_step(p);
        Err(Errno::ERESTART)
    }

    fn unlink(&self, p: &P, op: &StaticShm) -> Result<i64, Errno> {
        let name = op.name()?;
        self.state.with(|s| {
            let r = s.unlink(p, &name);
            self.debug_check(s);
            debug_assert!(s.lookup(&name).is_none());
            r.map(|_| 0)
        })
    }

    fn info(&self, p: &P, caller: &P::Domain, op: &StaticShm) -> Result<i64, Errno> {
        let name = op.name()?;
        let e = self.state.with(|s| s.lookup(&name).and_then(|id| s.region(id)).map(|r| r.entry()));
        let e = e.ok_or(Errno::ENOENT)?;
        p.copy_to_guest(caller, op.buffer, &e.to_bytes())?;
        Ok(0)
    }

    /// Writes entries one at a time, each built under the lock and copied
    /// after it: the name cursor makes every step consistent on its own.
    fn list(&self, p: &P, caller: &P::Domain, op: &mut StaticShm) -> Result<i64, Errno> {
        let cap = op.nr_entries.min(hypercall_abi::sshm::LIST_ENTRIES_MAX);
        let mut cursor = if op.name == [0; hypercall_abi::sshm::NAME_BYTES] { None } else { Some(op.name()?) };
        let mut written = 0u32;
        let mut rest = self.state.with(|s| s.next_after(cursor.as_ref()).map_or(0, |(_, n)| n + 1));
        while written < cap {
            let next: Option<(Entry, u64)> =
                self.state.with(|s| s.next_after(cursor.as_ref()).map(|(r, n)| (r.entry(), n)));
            let Some((e, n)) = next else {
                rest = 0;
                break;
            };
            let addr = u64::from(written)
                .checked_mul(Entry::SIZE as u64)
                .and_then(|o| op.buffer.checked_add(o))
                .ok_or(Errno::EFAULT)?;
            p.copy_to_guest(caller, addr, &e.to_bytes())?;
            cursor = Some(Name::from_field(&e.name)?);
            written += 1;
            rest = n;
        }
        op.nr_entries = written;
        if let Some(c) = cursor {
            op.name = *c.field();
        }
        Ok(rest as i64)
    }

    /// The target of an attach: a live translated domain with one p2m view.
    ///
    /// Domains that may have alternate or nested p2m views (altp2m,
    /// nested virtualisation) are refused with `-EOPNOTSUPP`, as upstream
    /// refuses them foreign mappings: a 2 MiB sshm entry removed in one
    /// `p2m_set_entry` is propagated to the other views by its first gfn
    /// only, so a view that had changed that one gfn would keep the other
    /// 511 mapped after detach, to frames that are then freed. Detach is
    /// still allowed on such a domain (`target`), so what was attached can
    /// always go.
    fn attach_target(&self, p: &P, target: DomId) -> Result<(P::Domain, DomainInfo), Errno> {
        let (d, info) = self.target(p, target)?;
        if info.altp2m || info.nested_virt {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok((d, info))
    }

    /// The target of a detach: a live translated domain.
    fn target(&self, p: &P, target: DomId) -> Result<(P::Domain, DomainInfo), Errno> {
        let d = p.domain(target)?;
        let info = p.domain_info(&d);
        if !info.translated {
            return Err(Errno::EOPNOTSUPP);
        }
        if info.dying {
            return Err(Errno::ESRCH);
        }
        Ok((d, info))
    }

    fn attach(&self, p: &P, target: DomId, op: &mut StaticShm) -> Result<i64, Errno> {
        let name = op.name()?;
        let (d, info) = self.attach_target(p, target)?;
        for _ in 0..CREATE_TRIES_MAX {
            let id = match self.attach_locked(p, &d, info.id, &name, op)? {
                Ok(r) => return r,
                Err(Start::Build(id)) => id,
                Err(Start::WaitForRelease) => return self.wait_for_release(p),
                Err(Start::Ready(_)) => return Err(Errno::EINVAL),
            };
            // The region is being built (by this attach, with `F_CREATE`,
            // or by another caller): a step of it, then the attach goes on
            // if it is whole, else continues from the start (`progress`
            // stays 0: nothing is recorded for this attach yet).
            match self.build(p, id) {
                Ok(Built::Whole) => {}
                Ok(Built::Partly(_)) => return Err(Errno::ERESTART),
                // Unlinked meanwhile: look it up again.
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        // Created (or found being built) and unlinked again by a racing
        // toolstack, every time.
        Err(Errno::EAGAIN)
    }

    /// The attach under the lock: `Ok(Ok(result))` when done (or
    /// continued), `Ok(Err(Start::Build))` when its region must be built
    /// first.
    fn attach_locked(
        &self,
        p: &P,
        d: &P::Domain,
        domid: DomId,
        name: &Name,
        op: &mut StaticShm,
    ) -> Result<Result<Result<i64, Errno>, Start>, Errno> {
        let gfn = Gfn(op.gfn);
        self.state.with(|s| {
            // Checked again with the lock held: see `# Locking`.
            if p.domain_info(d).dying {
                s.drop_created(p, name, domid, gfn);
                return Err(Errno::ESRCH);
            }
            let i = if op.progress == 0 {
                match self.attach_start(p, s, domid, name, op) {
                    Ok(Start::Ready(i)) => i,
                    Ok(c) => return Ok(Err(c)),
                    Err(e) => return Err(e),
                }
            } else {
                // A continuation: it must match the in-flight record exactly.
                let i = s.find_attachment(domid, gfn).ok_or(Errno::ENOENT)?;
                let a = s.attachment(i).ok_or(Errno::ENOENT)?;
                let r = s.region(a.region).ok_or(Errno::ENOENT)?;
                if !matches!(a.phase, Phase::Attaching | Phase::RollingBack(_)) || r.name != *name {
                    // Detached (or replaced) meanwhile: the attach was cancelled.
                    return Err(Errno::ENOENT);
                }
                if a.offset != op.offset
                    || a.nr_pages != op.nr_pages
                    || a.prot.abi() != op.prot
                    || a.mapped.end() != op.progress
                {
                    return Err(Errno::EINVAL);
                }
                i
            };
            let r = if s.attachment(i).is_some_and(|a| matches!(a.phase, Phase::RollingBack(_))) {
                self.attach_rollback(p, s, d, i, op)
            } else {
                self.attach_map(p, s, d, i, op)
            };
            self.debug_check(s);
            Ok(Ok(r))
        })
    }

    /// Opens the region and records a new attachment with nothing mapped
    /// yet; with `F_CREATE` and no such region, begins it (`Start::Build`).
    /// A region being built is built first (`Start::Build`). If the attach
    /// fails here, a region it created goes again.
    fn attach_start(&self, p: &P, s: &mut State, domid: DomId, name: &Name, op: &StaticShm) -> Result<Start, Errno> {
        let r = self.attach_start_inner(s, domid, name, op);
        if r.is_err() {
            s.drop_created(p, name, domid, Gfn(op.gfn));
        }
        r
    }

    fn attach_start_inner(&self, s: &mut State, domid: DomId, name: &Name, op: &StaticShm) -> Result<Start, Errno> {
        let gfn = Gfn(op.gfn);
        s.check_new_attachment(domid, gfn, op.nr_pages)?;
        let end = op.offset.checked_add(op.nr_pages).ok_or(Errno::EINVAL)?;
        let size = if op.size_pages == 0 { end } else { op.size_pages };
        let persistent = op.flags & F_PERSISTENT != 0;
        let id = match s.lookup(name) {
            Some(id) => {
                let r = s.region(id).ok_or(Errno::ENOENT)?;
                if op.flags & F_CREATE != 0 {
                    // Create-or-open of an existing region: the attributes
                    // the caller would have created it with must match, so
                    // that racing creators cannot silently disagree.
                    if size != r.nr_pages || persistent != r.persistent {
                        return Err(Errno::EEXIST);
                    }
                }
                if !r.max_prot.permits(op.prot()?) {
                    return Err(Errno::EACCES);
                }
                if end > r.nr_pages {
                    return Err(Errno::EINVAL);
                }
                if !r.is_built() {
                    return Ok(Start::Build(id));
                }
                id
            }
            None if op.flags & F_CREATE != 0 => {
                // Read-write whatever this attachment's prot: which guest
                // happens to start first must not decide what the others
                // may do. A read-only region is made with `OP_CREATE`.
                let begun =
                    s.begin_region(&self.limits, *name, size, Prot::ReadWrite, persistent, domid, Some((domid, gfn)));
                return match begun {
                    Ok(id) => Ok(Start::Build(id)),
                    Err(Errno::ERESTART) => Ok(Start::WaitForRelease),
                    Err(e) => Err(e),
                };
            }
            None => return Err(Errno::ENOENT),
        };
        let created = s.region(id).is_some_and(|r| r.created_by_attach == Some((domid, gfn)) && !r.used);
        let a = Attachment {
            domid,
            gfn,
            region: id,
            offset: op.offset,
            nr_pages: op.nr_pages,
            prot: op.prot()?,
            mapped: Mapped::NONE,
            phase: Phase::Attaching,
            created_region: created,
        };
        // On failure `attach_start` drops a region this attach created.
        s.insert_attachment(a).map(Start::Ready)
    }

    /// Maps the next batch of attachment `i`. On failure unmaps everything
    /// it mapped, in this call and earlier ones (in bounded steps:
    /// [`Sshm::attach_rollback`]), and drops the attachment.
    fn attach_map(&self, p: &P, s: &mut State, d: &P::Domain, i: usize, op: &mut StaticShm) -> Result<i64, Errno> {
        let mut done = 0u64;
        loop {
            let a = *s.attachment(i).ok_or(Errno::ENOENT)?;
            debug_assert!(a.phase == Phase::Attaching && a.mapped.start() == 0);
            if a.mapped.end() == a.nr_pages {
                if let Some(a) = s.attachment_mut(i) {
                    a.phase = Phase::Attached;
                }
                s.mark_used(a.region);
                return Ok(0);
            }
            if done >= BATCH_ENTRIES_MAX || (done > 0 && p.preempt_check()) {
                op.progress = a.mapped.end();
                return Err(Errno::ERESTART);
            }
            let region = s.region(a.region).ok_or(Errno::ENOENT)?;
            let inserted = a
                .entry_at(region, a.mapped.end())
                .ok_or(Errno::EINVAL)
                .and_then(|e| p.p2m_insert(d, e.gfn, e.mfn, e.order, kind(a.prot)).map(|()| e.order));
            match inserted {
                Ok(order) => {
                    if let Some(a) = s.attachment_mut(i) {
                        a.mapped.grow(1 << order);
                    }
                    done += 1;
                }
                Err(e) => {
                    debug_assert!(e != Errno::ERESTART);
                    if let Some(a) = s.attachment_mut(i) {
                        a.phase = Phase::RollingBack(e);
                    }
                    return self.attach_rollback(p, s, d, i, op);
                }
            }
        }
    }

    /// Unmaps the next batch of a failed attach; when nothing is left
    /// mapped, drops the attachment and fails with the attach's errno.
    /// Until then a continuation (`progress` stays at the attach's `hi`).
    fn attach_rollback(&self, p: &P, s: &mut State, d: &P::Domain, i: usize, op: &mut StaticShm) -> Result<i64, Errno> {
        let a = *s.attachment(i).ok_or(Errno::ENOENT)?;
        let Phase::RollingBack(e) = a.phase else { return Err(Errno::EINVAL) };
        let mut budget = BATCH_ENTRIES_MAX;
        if unmap(p, s, d, i, &mut budget) {
            op.progress = a.mapped.end();
            return Err(Errno::ERESTART);
        }
        s.remove_attachment(p, i, true);
        Err(e)
    }

    fn detach(&self, p: &P, target: DomId, op: &mut StaticShm) -> Result<i64, Errno> {
        let name = op.name()?;
        let (d, info) = self.target(p, target)?;
        self.state.with(|s| {
            if p.domain_info(&d).dying {
                return Err(Errno::ESRCH);
            }
            let i = s.find_attachment(info.id, Gfn(op.gfn)).ok_or(Errno::ENOENT)?;
            let a = *s.attachment(i).ok_or(Errno::ENOENT)?;
            if s.region(a.region).map(|r| r.name) != Some(name) {
                return Err(Errno::ENOENT);
            }
            if op.nr_pages != 0 && op.nr_pages != a.nr_pages {
                return Err(Errno::EINVAL);
            }
            // A fresh detach takes over one left unfinished (its toolstack
            // may have gone); a continuation must be where it left off.
            if op.progress != 0 && (a.phase != Phase::Detaching || a.mapped.start() != op.progress) {
                return Err(Errno::EINVAL);
            }
            if let Some(a) = s.attachment_mut(i) {
                a.phase = Phase::Detaching;
            }
            let mut budget = BATCH_ENTRIES_MAX;
            let more = unmap(p, s, &d, i, &mut budget);
            let r = if more {
                op.progress = s.attachment(i).map_or(0, |a| a.mapped.start());
                Err(Errno::ERESTART)
            } else {
                s.remove_attachment(p, i, false);
                Ok(0)
            };
            self.debug_check(s);
            r
        })
    }

    /// Domain-kill hook, one bounded step of it: detaches attachments of
    /// `d` (finished, in-flight or half-detached), unmapping at most
    /// [`BATCH_ENTRIES_MAX`] p2m entries, and returns `-ERESTART` while any
    /// is left (Xen: from `domain_kill()`'s relinquish path, which the
    /// toolstack's `destroydomain` continues). `Ok` once `d` holds no sshm
    /// reference; regions nothing else keeps alive are freed.
    pub fn domain_destroy(&self, p: &P, d: &P::Domain) -> Result<(), Errno> {
        locking::assert_unlocked(p);
        let domid = p.domain_info(d).id;
        let r = self.state.with(|s| {
            let mut budget = BATCH_ENTRIES_MAX;
            let r = loop {
                let Some(i) = s.first_of(domid) else { break Ok(()) };
                if budget == 0 {
                    break Err(Errno::ERESTART);
                }
                // An attach that never finished is undone as if it failed,
                // taking a region it created with it.
                if let Some(a) = s.attachment_mut(i) {
                    a.phase = match a.phase {
                        Phase::Attaching | Phase::RollingBack(_) => Phase::RollingBack(Errno::ESRCH),
                        Phase::Attached | Phase::Detaching => Phase::Detaching,
                    };
                }
                if unmap(p, s, d, i, &mut budget) {
                    break Err(Errno::ERESTART);
                }
                let rollback = s.attachment(i).is_some_and(|a| matches!(a.phase, Phase::RollingBack(_)));
                s.remove_attachment(p, i, rollback);
            };
            if r.is_ok() {
                // Regions its unfinished create-or-opens began go too.
                s.drop_created_by(p, domid);
            }
            debug_assert!(r.is_err() || s.first_of(domid).is_none());
            self.debug_check(s);
            r
        });
        r?;
        // What its death freed is given back before the domain is gone, in
        // steps of its own.
        if self.release_step(p) {
            return Err(Errno::ERESTART);
        }
        Ok(())
    }
}

/// Unmaps entries of attachment `i` from its `lo` forward, taking one unit
/// of `budget` per entry, until none is mapped or the budget is spent (or,
/// after some progress, the platform asks to preempt). Returns whether
/// mapped pages remain.
fn unmap<P: Platform>(p: &P, s: &mut State, d: &P::Domain, i: usize, budget: &mut u64) -> bool {
    let mut done = 0u64;
    loop {
        let Some(a) = s.attachment(i).copied() else { return false };
        if a.mapped.is_empty() {
            return false;
        }
        if *budget == 0 || (done > 0 && p.preempt_check()) {
            return true;
        }
        let step = match s.region(a.region).and_then(|r| a.entry_at(r, a.mapped.start())) {
            Some(e) => {
                let r = p.p2m_remove(d, e.gfn, e.mfn, e.order);
                // Only this module changes these entries (the platform
                // refuses guests), so a mismatch is a platform bug. Keeping
                // the reference leaks a page rather than freeing one in use.
                debug_assert_eq!(r, Ok(()), "p2m entry of an attachment changed under it");
                1u64 << e.order
            }
            None => {
                debug_assert!(false, "attachment outside its region");
                a.mapped.len()
            }
        };
        if let Some(a) = s.attachment_mut(i) {
            a.mapped.shrink(step);
        }
        done += 1;
        *budget -= 1;
    }
}
