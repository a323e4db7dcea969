//! Which of this crate's locks each CPU holds, in debug builds of Xen: what
//! [`Platform::lock_held`](crate::Platform::lock_held) answers, and the lock
//! order [`SpinLock`](super::SpinLock) checks before it takes a lock (the
//! rules are in [`crate::locking`]). Release builds keep no record: every
//! function here is then a no-op and [`top`] is `None`.
//!
//! Xen's spinlocks keep no record of their holder that we could ask, and
//! the shim has no per-CPU query, so a CPU is identified the way Xen's own
//! `get_cpu_info()` finds its per-CPU block: by its stack. Each x86 CPU runs
//! hypervisor code on a stack of its own, [`STACK_SIZE`] bytes and aligned
//! to it (`STACK_ORDER` in `asm/config.h`), so the stack pointer with its
//! low bits set names the CPU. This crate's code runs only in hypercall
//! and domctl context and at boot, always on that stack, and never
//! sleeps or migrates while it holds a lock.
//!
//! The record is a fixed table of [`CPUS_MAX`] slots, each claimed once by
//! a CPU and then written by that CPU only. A CPU that finds no free slot
//! is not tracked (its assertions hold trivially), which is never the case
//! below `CPUS_MAX` CPUs.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::SpinLock;
use crate::locking::V4V_TABLE;
use crate::platform::{Lock, LockClass};

/// Xen 4.17's x86 hypervisor stack: `PAGE_SIZE << STACK_ORDER`, order 3.
pub const STACK_SIZE: usize = 4096 << 3;

/// CPUs tracked (Xen's x86 `NR_CPUS` default is 256).
pub const CPUS_MAX: usize = 512;

/// Locks one CPU may hold at once: one per level, and there are two
/// levels ([`crate::locking`]); a deeper nest is an order violation first.
const DEPTH_MAX: usize = 4;

/// One CPU's record.
struct Slot {
    /// The CPU's stack identity (see [`cpu`]), 0 while unclaimed.
    cpu: AtomicUsize,
    /// How many of `held` are in use.
    depth: AtomicUsize,
    /// The classes held, in the order taken. Only `&'static LockClass`
    /// pointers are ever stored.
    held: [AtomicPtr<LockClass>; DEPTH_MAX],
}

static SLOTS: [Slot; CPUS_MAX] = [const {
    Slot {
        cpu: AtomicUsize::new(0),
        depth: AtomicUsize::new(0),
        held: [const { AtomicPtr::new(ptr::null_mut()) }; DEPTH_MAX],
    }
}; CPUS_MAX];

/// The calling CPU's identity: the highest address of its stack.
fn cpu() -> usize {
    let marker = 0u8;
    (ptr::addr_of!(marker) as usize) | (STACK_SIZE - 1)
}

/// The calling CPU's slot, claimed on first use; `None` if the table is
/// full.
fn slot() -> Option<&'static Slot> {
    let me = cpu();
    let start = (me / STACK_SIZE) % CPUS_MAX;
    for i in 0..CPUS_MAX {
        let s = &SLOTS[(start + i) % CPUS_MAX];
        match s.cpu.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(s),
            Err(owner) if owner == me => return Some(s),
            Err(_) => {}
        }
    }
    None
}

fn class_at(s: &Slot, i: usize) -> Option<&'static LockClass> {
    let p = s.held[i].load(Ordering::Relaxed);
    // SAFETY: Only pointers made from `&'static LockClass` are stored in
    // `held` (by `push`), or null.
    unsafe { p.cast_const().as_ref() }
}

/// The highest-level lock of this crate the calling CPU holds (the last
/// taken: levels only go up). Always `None` in release builds.
pub fn top() -> Option<&'static LockClass> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let s = slot()?;
    let depth = s.depth.load(Ordering::Relaxed);
    depth.checked_sub(1).and_then(|i| class_at(s, i))
}

/// Before taking a lock of `class`: panics (Xen's `BUG`, debug builds only)
/// if the calling CPU holds one whose level is not below it, naming both.
pub fn check_order(class: &'static LockClass) {
    if let Some(held) = top().filter(|h| h.level >= class.level) {
        panic!(
            "lock order: taking `{}` (level {}) while holding `{}` (level {}); see rust_hv::locking",
            class.name, class.level, held.name, held.level
        );
    }
}

/// At the start of each [`Platform`](crate::Platform) call that
/// [`crate::locking`] forbids with a lock of this crate held: panics (Xen's
/// `BUG`, debug builds only) if the calling CPU holds one, naming the call,
/// what it takes, and the lock held.
pub fn forbid_held(call: &str, takes: &str) {
    if let Some(held) = top() {
        panic!(
            "locking rules: {call} (takes {takes}) called with `{}` (level {}) held; see rust_hv::locking",
            held.name, held.level
        );
    }
}

/// Records that the calling CPU took a lock of `class`.
pub fn push(class: &'static LockClass) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(s) = slot() else { return };
    let depth = s.depth.load(Ordering::Relaxed);
    // The order check allows at most one lock per level.
    assert!(depth < DEPTH_MAX, "lock `{}` nested {depth} deep", class.name);
    s.held[depth].store(ptr::from_ref(class).cast_mut(), Ordering::Relaxed);
    s.depth.store(depth + 1, Ordering::Relaxed);
}

/// Records that the calling CPU released its last-taken lock, of `class`.
pub fn pop(class: &'static LockClass) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(s) = slot() else { return };
    let depth = s.depth.load(Ordering::Relaxed);
    // Closures nest, so locks are released in the reverse order.
    debug_assert!(depth > 0 && class_at(s, depth - 1).is_some_and(|c| ptr::eq(c, class)));
    let Some(i) = depth.checked_sub(1) else { return };
    s.held[i].store(ptr::null_mut(), Ordering::Relaxed);
    s.depth.store(i, Ordering::Relaxed);
}

/// Boot-time check, in debug builds, that the record works on this CPU
/// (the boot CPU, from `rust_hv_init`): nothing held before, the lock held
/// while it is, nothing after. A failure is a `BUG` at boot, not a silently
/// vacuous assertion later.
pub fn selftest() {
    if !cfg!(debug_assertions) {
        return;
    }
    let l = <SpinLock<()> as Lock<()>>::new(&V4V_TABLE, ());
    assert!(top().is_none(), "lockdep: a lock is recorded held at boot");
    l.with(|()| assert!(top().is_some_and(|c| ptr::eq(c, &V4V_TABLE)), "lockdep: a held lock is not recorded"));
    assert!(top().is_none(), "lockdep: a released lock is still recorded");
}
