//! The locking rules of this crate, stated once: every lock, its level, and
//! which [`Platform`] calls may be made with one held.
//!
//! # Locks and levels
//!
//! | lock | class | level | protects |
//! |---|---|---|---|
//! | `Sshm::state` | [`SSHM_STATE`] | 1 | the whole sshm registry (see [`crate::sshm`]) |
//! | `V4v::table` (L1) | [`V4V_TABLE`] | 1 | V4V's ring index, per-domain state, firewall, global statistics (see [`crate::v4v`]) |
//! | `V4v::buckets[i]` (L2) | [`V4V_BUCKET`] | 2 | the rings whose generation falls in bucket `i` |
//!
//! **Order**: a lock may be taken only while every lock held has a lower
//! level. So L1 is taken before an L2, at most one L2 is held at a time, and
//! the sshm lock is never held together with a V4V lock (same level). No
//! lock is re-entered.
//!
//! # Platform calls under a lock
//!
//! Allowed with a lock held (each is atomic in the platform, bounded, and
//! takes only Xen locks that nest inside ours and never call back):
//! [`Platform::domain_info`] (reads the domain's flags),
//! [`Platform::p2m_insert`], [`Platform::p2m_remove`],
//! [`Platform::p2m_populated`] (the p2m lock), [`Platform::page_pin_writable`],
//! [`Platform::page_unpin`] (atomic reference counts),
//! [`Platform::frame_read`], [`Platform::frame_write`],
//! [`Platform::smp_wmb`], [`Platform::copy_from_guest_to_frame`] (V4V copies
//! at most `SEND_CHUNK_BYTES` of message under its ring lock, as Argo does),
//! [`Platform::ring_map_read`], [`Platform::ring_map_write`],
//! [`Platform::copy_from_guest_to_ring_map`] (the same accesses through a
//! ring's mapping, which is in place while the ring is indexed),
//! [`Platform::preempt_check`].
//!
//! **Forbidden** with any lock of this crate held:
//!
//! | call | why |
//! |---|---|
//! | [`Platform::domain`] | a lookup takes the domain list's lock (RCU); domains are looked up before a lock is taken, and what must be checked under the lock (`dying`) is read through the reference held |
//! | [`Platform::send_virq`] | takes the target's event-channel locks; wake-ups are collected under the lock and raised after it is dropped |
//! | the XSM hooks (`xsm_*`) | the policy (FLASK's AVC) takes its own locks and may be slow; it is asked before any lock is taken |
//! | [`Platform::copy_from_guest`], [`Platform::copy_to_guest`] | a guest copy may fault and take paging locks: requests are copied in before a lock is taken and answers copied out after |
//! | [`Platform::ring_map`], [`Platform::ring_unmap`] | `vmap()` takes the vmap area's lock and may allocate page-table pages; `vunmap()` flushes the TLBs of every CPU (IPIs): a ring is mapped before it is indexed and unmapped after it has left the index, with the locks dropped, as its pages are pinned and unpinned |
//! | [`Platform::sshm_alloc`], [`Platform::sshm_free`] | the heap lock, and region-sized work (allocation, scrubbing) is done with the sshm lock dropped |
//!
//! # How the rules are checked
//!
//! - The simulator's locks ([`Platform::Lock`] there) keep a per-thread
//!   record of the classes held: taking a lock out of order, or making a
//!   forbidden call with one held, panics with both names (the lock held and
//!   the lock taken or the call made), so a test that reaches such a path
//!   fails.
//! - In a debug Xen, the `xen` module keeps the same per-CPU record
//!   (`xen::lockdep`): taking a lock out of order is a `BUG` naming both
//!   locks, and a boot-time self-test checks that the record works.
//! - The entry points and the functions that make forbidden calls assert at
//!   entry that no lock of this crate is held ([`assert_unlocked`], through
//!   [`Platform::lock_held`]), as Argo asserts its `LOCKING_*` conditions,
//!   in the simulator and in a debug Xen alike (a release Xen keeps no
//!   record, and the assertions compile away).

use crate::platform::{LockClass, Platform};

/// `Sshm::state`.
pub static SSHM_STATE: LockClass = LockClass { name: "sshm.state", level: 1 };
/// `V4v::table` (L1).
pub static V4V_TABLE: LockClass = LockClass { name: "v4v.table (L1)", level: 1 };
/// `V4v::buckets[i]` (L2), one class for all the ring locks.
pub static V4V_BUCKET: LockClass = LockClass { name: "v4v.bucket (L2)", level: 2 };

/// Debug assertion at function entry: the calling CPU holds no lock of
/// this crate (Xen's `ASSERT`, compiled out of release builds).
#[track_caller]
pub fn assert_unlocked<P: Platform>(p: &P) {
    if cfg!(debug_assertions) {
        if let Some(held) = p.lock_held() {
            panic!("entered with lock `{}` (level {}) held", held.name, held.level);
        }
    }
}
