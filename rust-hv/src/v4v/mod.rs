//! V4V rings: hypervisor-mediated messaging.
//!
//! A receiver registers a ring in its own pages (Xen pins them writable for
//! the ring's lifetime); a sender asks Xen to copy a message into it; Xen
//! stamps the true source and raises `VIRQ_V4V` on the receiver. The ABI and
//! the op table are in [`hypercall_abi::v4v`].
//!
//! Differences from Argo (`xen/common/argo.c`), on purpose:
//! - A send reserves its ring space first and publishes `tx_ptr` only when
//!   the whole message is in, so a large send is copied in bounded steps with
//!   hypercall continuations, holding only the destination ring's lock and
//!   only for one chunk at a time. No global lock is held across any copy.
//! - Nothing is held across a return to the guest: a send parked between
//!   steps releases its reservation, so other senders get through (review
//!   finding 1). When it resumes it continues where it was if nobody wrote
//!   into the ring meanwhile, else starts its copy again at the new
//!   `tx_ptr` (at most [`SEND_RESTARTS_MAX`] times); either way its message
//!   is published whole and once, or the send fails (`-EAGAIN` if it no
//!   longer fits) having published nothing.
//! - A full ring is `-EAGAIN`, always.
//! - Re-registering an existing ring pins nothing new and changes no counter.
//! - Receivers may ask to be woken only on empty → non-empty
//!   ([`RING_F_NOTIFY_EMPTY_ONLY`]); space-available wake-ups are FIFO and
//!   wake only the waiters whose message fits.
//! - A firewall (control domain only) whose default policy is **accept**: no
//!   rules means every send the ring's partner setting allows goes through;
//!   the first matching rule decides otherwise.
//!
//! # Locking
//!
//! | lock | class (level) | protects |
//! |---|---|---|
//! | `V4v::table` (L1, global) | [`V4V_TABLE`] (1) | the ring index (ring id → generation) and the partner index, per-domain state and statistics (incl. each domain's in-flight send record), the firewall rules, global statistics, generation/token counters |
//! | `V4v::buckets[i]` (L2, per bucket of rings) | [`V4V_BUCKET`] (2) | everything about the rings in the bucket (ring generation `g` lives in bucket `g % RING_LOCKS`): pinned pages, Xen's `tx_ptr`, the reservation of the send in progress, the pending-waiter list, per-ring statistics |
//!
//! The order (L1 before L2, at most one L2 at a time) and the platform
//! calls allowed under them are the crate's rules, in [`crate::locking`]
//! (checked by the simulator; entry points assert that they hold no lock).
//! What follows from them here: L1 is only ever held for index look-ups and
//! updates of small bounded structures, never across a guest-memory copy.
//! L2 is held across at most [`SEND_CHUNK_BYTES`] of message copy, which
//! goes straight from the sender's memory into the pinned ring pages
//! ([`Platform::copy_from_guest_to_ring_map`] through the ring's mapping,
//! one copy per side of the wrap, or [`Platform::copy_from_guest_to_frame`]
//! page by page for a ring over the mapping caps,
//! [`RING_MAP_PAGES_PER_DOMAIN_MAX`] and [`RING_MAP_PAGES_MAX`]; Argo too
//! copies from the guest under its ring lock). A ring is mapped before it
//! is indexed and unmapped after it has left the index, with no lock held;
//! nothing else is mapped beyond one access, so a parked send holds no
//! mapping while its guest runs. Domains are looked up and the policy is asked
//! before any lock is taken; what must be checked under a lock (`dying`) is
//! read through the reference already held. Wake-ups are collected under
//! the locks and raised after they are dropped.
//!
//! A ring is found under L1 by its generation and then looked up again in
//! its bucket under L2: if the ring was unregistered in between, it is not
//! there and the op fails as if the ring had not been there.
//!
//! There is no global table of rings to fill: the index and the buckets
//! grow with the rings registered (fallibly, `-ENOMEM`), and each domain is
//! held to [`RINGS_PER_DOMAIN_MAX`], so no tenant's rings can keep another
//! from registering (review finding 5; Argo has no global cap either). The
//! lock array is fixed at start of day, so registering never grows a table
//! of locks. A domain that is dying gets no new state: the check of
//! `DomainInfo::dying` is made under the lock that guards the state being
//! added, and the destroy hook runs after `dying` is set and takes the same
//! locks, so it always sees (and removes) whatever was added.

//!
//! # Files
//!
//! One file per sub-op, each an `impl V4v` block of its own:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the constants, [`V4v`], the dispatcher ([`V4v::op`]) and the named hypercall arguments it decodes, guest-memory helpers |
//! | `table.rs` | the state under the locks: the ring index and partner index, per-domain state (L1), the buckets of rings (L2) |
//! | `ring.rs` | one registered ring: Xen's view of it and byte access to its pinned pages |
//! | `register.rs` | `OP_REGISTER_RING`, `OP_UNREGISTER_RING` |
//! | `send.rs` | `OP_SENDV`: reserve, copy in bounded steps, publish |
//! | `batch.rs` | `OP_SENDV_BATCH`: several messages, each sent as `send.rs` sends one, one wake-up per domain per step |
//! | `notify.rs` | `OP_NOTIFY` |
//! | `info.rs` | `OP_INFO` |
//! | `firewall.rs` | `OP_FW_ADD`, `OP_FW_DEL`, `OP_FW_LIST` and the rule match |
//! | `teardown.rs` | the domain-kill and soft-reset hooks |
//! | `introspection.rs` | queries for tests and debug keys, and the invariant check |
//!
//! [`RING_F_NOTIFY_EMPTY_ONLY`]: hypercall_abi::v4v::RING_F_NOTIFY_EMPTY_ONLY
//! [`RINGS_PER_DOMAIN_MAX`]: hypercall_abi::v4v::RINGS_PER_DOMAIN_MAX
//! [`V4V_TABLE`]: crate::locking::V4V_TABLE
//! [`V4V_BUCKET`]: crate::locking::V4V_BUCKET

mod batch;
mod firewall;
mod info;
mod introspection;
mod notify;
mod register;
mod ring;
mod send;
mod table;
mod teardown;

use alloc::vec::Vec;

use hypercall_abi::v4v::{
    Wire, OP_FW_ADD, OP_FW_DEL, OP_FW_LIST, OP_INFO, OP_NOTIFY, OP_REGISTER_RING, OP_SENDV, OP_SENDV_BATCH,
    OP_UNREGISTER_RING,
};
use hypercall_abi::{DomId, Errno, VIRQ_V4V};

use crate::locking;
use crate::platform::{Lock, Platform};
use ring::Wakes;
use table::{Bucket, Table};

/// Ring locks (L2), allocated at start of day. Rings are spread over them
/// by generation; two rings sharing a lock only contend for it, which is
/// held for at most [`SEND_CHUNK_BYTES`] of copy.
pub const RING_LOCKS: usize = 256;

/// Bytes of message copied per acquisition of the ring lock (straight from
/// the sender's memory into the ring's pages).
pub const SEND_CHUNK_BYTES: usize = 4096;

/// Bytes of message copied per hypercall step before a continuation is
/// forced, whatever `preempt_check()` says: bounds the work (and the time
/// other domains may wait for the ring lock) of one step.
pub const SEND_STEP_BYTES_MAX: usize = 64 * 1024;

/// Work units (pages unpinned, rings torn down or swept) after which a
/// teardown step (domain death, soft reset) returns `-ERESTART`. A step
/// does at most this plus one ring's pages ([`RING_PAGES_MAX`] + 1) units.
///
/// [`RING_PAGES_MAX`]: hypercall_abi::v4v::RING_PAGES_MAX
pub const TEARDOWN_STEP_MAX: usize = 4096;

/// Pages of one domain's rings that V4V maps in Xen's vmap area
/// ([`Platform::ring_map`]: each ring's pages once, virtually contiguous,
/// so a send copies its payload in one `copy_from_guest` per piece up to
/// the ring's wrap instead of a `map_domain_page` per page and field).
/// Two rings of the largest size (8194 pages, 32 MiB), or 128 of 64 KiB.
/// A ring that would pass this (or [`RING_MAP_PAGES_MAX`]), or that
/// `vmap()` cannot map, is not mapped and works through the per-frame path
/// (slower, same results): the cap never fails a registration. It keeps a
/// guest from filling the vmap area (64 GiB on x86-64, shared with the
/// rest of Xen) with ring mappings: a domain may pin `RINGS_PER_DOMAIN_MAX`
/// rings of `RING_PAGES_MAX` pages, about 2 GiB.
pub const RING_MAP_PAGES_PER_DOMAIN_MAX: u32 = 2 * hypercall_abi::v4v::RING_PAGES_MAX;

/// Pages of all domains' rings that V4V maps in Xen's vmap area: 65536
/// pages (256 MiB, 1/256 of the area on x86-64). Counted when a ring is
/// mapped (before `vmap()`) and uncounted when it leaves the ring index
/// (its `vunmap()` follows with the locks dropped, so at most one ring
/// per CPU is mapped beyond the count, for the length of one unmap).
pub const RING_MAP_PAGES_MAX: u32 = 65536;

/// Times a parked send starts its copy again because others wrote into the
/// ring while it was parked, before it gives up with `-EAGAIN`: a large
/// send under steady traffic fails instead of retrying forever.
pub const SEND_RESTARTS_MAX: u32 = 8;

/// The V4V state of a hypervisor.
pub struct V4v<P: Platform> {
    table: P::Lock<Table>,
    buckets: Vec<P::Lock<Bucket<P::RingMap>>>,
}

impl<P: Platform> Default for V4v<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// `OP_REGISTER_RING`'s arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RegisterArgs {
    /// Guest address of the `RegisterRing`.
    ring: u64,
    /// Guest address of the `u64` gfn list.
    gfns: u64,
    /// Number of gfns in the list.
    nr_gfns: u64,
    /// `REGISTER_F_*`.
    flags: u64,
}

/// `OP_SENDV`'s arguments. A continuation must carry exactly the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SendArgs {
    /// Guest address of the `SendAddr`.
    addr: u64,
    /// Guest address of the `Iov` array.
    iovs: u64,
    /// Number of iovs.
    niov: u64,
    /// The message type, a `u32` (`-EINVAL` otherwise).
    msg_type: u64,
}

/// `OP_SENDV_BATCH`'s arguments. A continuation must carry exactly the
/// same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BatchArgs {
    /// Guest address of the `BatchEnt` array (`status` written back).
    ents: u64,
    /// Guest address of the `Iov` array.
    iovs: u64,
    /// Number of entries.
    nent: u64,
    /// Number of iovs.
    niov: u64,
}

/// A `__HYPERVISOR_v4v_op` call with its arguments named, decoded once by
/// the dispatcher (the argument table is in [`hypercall_abi::v4v`]). Every
/// argument an op does not use must be zero (`-EINVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Register(RegisterArgs),
    /// Guest address of the `UnregisterRing`.
    Unregister {
        ring: u64,
    },
    Sendv(SendArgs),
    SendvBatch(BatchArgs),
    /// Guest address of the `RingData` (and its entries), or 0 to only
    /// re-read the caller's own rings.
    Notify {
        ring_data: u64,
    },
    /// Guest addresses of the `Info` (out) and of a `RingInfo` (in/out, or 0).
    Info {
        info: u64,
        ring_info: u64,
    },
    /// Guest address of the `FwRule`, and the position to insert it at
    /// (past the end appends).
    FwAdd {
        rule: u64,
        pos: u64,
    },
    /// Guest address of the `FwRule` to delete.
    FwDel {
        rule: u64,
    },
    /// Guest address of the `FwRule` array (out), the first rule to copy
    /// and the array's capacity.
    FwList {
        rules: u64,
        first: u64,
        cap: u64,
    },
}

impl Op {
    /// Names the arguments of `cmd` and checks that the unused ones are
    /// zero; `-EOPNOTSUPP` for an unknown `cmd`.
    fn decode(cmd: u32, args: [u64; 4]) -> Result<Op, Errno> {
        let [a0, a1, a2, a3] = args;
        let op = match cmd {
            OP_REGISTER_RING => return Ok(Op::Register(RegisterArgs { ring: a0, gfns: a1, nr_gfns: a2, flags: a3 })),
            OP_SENDV => return Ok(Op::Sendv(SendArgs { addr: a0, iovs: a1, niov: a2, msg_type: a3 })),
            OP_SENDV_BATCH => return Ok(Op::SendvBatch(BatchArgs { ents: a0, iovs: a1, nent: a2, niov: a3 })),
            OP_UNREGISTER_RING => (Op::Unregister { ring: a0 }, &args[1..]),
            OP_NOTIFY => (Op::Notify { ring_data: a0 }, &args[1..]),
            OP_INFO => (Op::Info { info: a0, ring_info: a1 }, &args[2..]),
            OP_FW_ADD => (Op::FwAdd { rule: a0, pos: a1 }, &args[2..]),
            OP_FW_DEL => (Op::FwDel { rule: a0 }, &args[1..]),
            OP_FW_LIST => (Op::FwList { rules: a0, first: a1, cap: a2 }, &args[3..]),
            _ => return Err(Errno::EOPNOTSUPP),
        };
        let (op, unused) = op;
        if unused.iter().any(|&a| a != 0) {
            return Err(Errno::EINVAL);
        }
        Ok(op)
    }
}

/// The caller's id.
fn id_of<P: Platform>(p: &P, d: &P::Domain) -> DomId {
    p.domain_info(d).id
}

/// Reads a `T` from the caller's memory.
fn read_guest<P: Platform, T: Wire>(p: &P, caller: &P::Domain, addr: u64) -> Result<T, Errno> {
    let mut b = [0u8; 80];
    debug_assert!(T::SIZE <= b.len());
    p.copy_from_guest(caller, addr, &mut b[..T::SIZE])?;
    Ok(T::read(&b[..T::SIZE]))
}

/// Writes a `T` to the caller's memory.
fn write_guest<P: Platform, T: Wire>(p: &P, caller: &P::Domain, addr: u64, v: &T) -> Result<(), Errno> {
    let mut b = [0u8; 80];
    debug_assert!(T::SIZE <= b.len());
    v.write(&mut b[..T::SIZE]);
    p.copy_to_guest(caller, addr, &b[..T::SIZE])
}

/// The guest address of element `i` of an array of `size`-byte elements at
/// `base`: `-EFAULT` if it is not representable. Guest addresses are
/// guest-chosen; an array may run off the end of the address space, and
/// that must be an error, not an overflow (a panic in a debug Xen).
fn guest_elem(base: u64, i: usize, size: usize) -> Result<u64, Errno> {
    let off = (i as u64).checked_mul(size as u64).ok_or(Errno::EFAULT)?;
    base.checked_add(off).ok_or(Errno::EFAULT)
}

impl<P: Platform> V4v<P> {
    /// No rings. Allocates the ring locks once (start of day).
    pub fn new() -> Self {
        let mut buckets = Vec::with_capacity(RING_LOCKS);
        for _ in 0..RING_LOCKS {
            buckets.push(P::Lock::new(&locking::V4V_BUCKET, Bucket { rings: Vec::new() }));
        }
        V4v { table: P::Lock::new(&locking::V4V_TABLE, Table::new()), buckets }
    }

    /// The lock of the ring registered as `generation`.
    fn bucket(&self, generation: u64) -> &P::Lock<Bucket<P::RingMap>> {
        &self.buckets[(generation % RING_LOCKS as u64) as usize]
    }

    /// `__HYPERVISOR_v4v_op(cmd, args...)` issued by `caller`;
    /// `Err(ERESTART)` asks for the same hypercall to be issued again (a
    /// preempted send resumes where it stopped).
    ///
    /// The sub-op handlers are `#[inline(never)]`: inlined here, their
    /// frames added up to more than 5 KiB of Xen's 8 KiB primary stack on
    /// every path; apart, each path carries its own frame only.
    pub fn op(&self, p: &P, caller: &P::Domain, cmd: u32, args: [u64; 4]) -> Result<i64, Errno> {
        locking::assert_unlocked(p);
        if matches!(cmd, OP_FW_ADD | OP_FW_DEL | OP_FW_LIST) {
            // System-wide policy: the XSM hook decides who may read or
            // change it (the dummy policy: the control domain only,
            // `-EPERM`), before anything else is looked at.
            p.xsm_v4v_firewall(caller)?;
        }
        match Op::decode(cmd, args)? {
            Op::Register(a) => self.register(p, caller, a),
            Op::Unregister { ring } => self.unregister(p, caller, ring).map(|()| 0),
            Op::Sendv(a) => self.sendv(p, caller, a),
            Op::SendvBatch(a) => self.sendv_batch(p, caller, a),
            Op::Notify { ring_data } => self.notify(p, caller, ring_data),
            Op::Info { info, ring_info } => self.info(p, caller, info, ring_info).map(|()| 0),
            Op::FwAdd { rule, pos } => self.fw_add(p, caller, rule, pos),
            Op::FwDel { rule } => self.fw_del(p, caller, rule),
            Op::FwList { rules, first, cap } => self.fw_list(p, caller, rules, first, cap),
        }
    }

    /// Raises `VIRQ_V4V` on `d`, if it still exists. No lock held.
    fn virq(&self, p: &P, d: DomId) {
        locking::assert_unlocked(p);
        if let Ok(dom) = p.domain(d) {
            p.send_virq(&dom, VIRQ_V4V);
        }
    }

    /// Raises the wake-ups collected under a lock, once it is dropped.
    fn raise(&self, p: &P, wakes: &Wakes) {
        for &d in wakes.as_slice() {
            self.virq(p, d);
        }
    }
}

// The step budget holds at least one chunk.
const _: () = assert!(SEND_CHUNK_BYTES <= SEND_STEP_BYTES_MAX);
const _: () = assert!(RING_LOCKS > 0);
