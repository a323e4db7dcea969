//! The simulator's `Platform::Lock`: a `std::sync::Mutex` that checks
//! `rust-hv`'s locking rules (`rust_hv::locking`), lockdep in miniature.
//!
//! Each thread keeps the classes of the `SimLock`s it holds, in the order
//! taken. Taking a lock whose level is not above every held lock's, or
//! making a `Platform` call the rules forbid with a lock held
//! ([`platform_call`], called by the machine's `Platform` methods), panics
//! with both names before anything is taken: a test that reaches such a
//! path fails, where Xen might deadlock only under the right interleaving.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use rust_hv::platform::{Lock, LockClass};

/// A lock around a `T` (Xen: a spinlock next to the data).
///
/// Re-entering the lock on the thread that holds it is a deadlock in Xen;
/// here it panics with a message instead of hanging the test, which is
/// Xen's `BUG()` for an impossible state. So does taking it out of order
/// (see the module). A panic inside the closure does not poison the lock
/// for the checkers.
#[derive(Debug)]
pub struct SimLock<T> {
    class: &'static LockClass,
    inner: Mutex<T>,
    owner: Mutex<Option<ThreadId>>,
}

struct OwnerReset<'a>(&'a Mutex<Option<ThreadId>>);

impl Drop for OwnerReset<'_> {
    fn drop(&mut self) {
        *lock(self.0) = None;
        HELD.with(|h| {
            h.borrow_mut().pop();
        });
    }
}

thread_local! {
    /// The classes of the `SimLock`s this thread holds, in the order taken
    /// (closures nest, so the last is released first).
    static HELD: RefCell<Vec<&'static LockClass>> = const { RefCell::new(Vec::new()) };
}

/// How many `rust-hv` locks (`SimLock`s) the calling thread holds: the
/// machine uses it to count region-sized work done under them.
pub fn held() -> u32 {
    HELD.with(|h| h.borrow().len() as u32)
}

/// The highest-level lock the calling thread holds (the last taken, since
/// levels only go up): `Platform::lock_held`.
pub fn highest_held() -> Option<&'static LockClass> {
    HELD.with(|h| h.borrow().last().copied())
}

/// Called at the start of each `Platform` method that `rust_hv::locking`
/// forbids with a lock held: `call` takes `takes` (a Xen lock, or what the
/// call does) which the rules order before every `rust-hv` lock. Panics,
/// naming both, if the calling thread holds one.
#[track_caller]
pub fn platform_call(call: &str, takes: &str) {
    if let Some(held) = highest_held() {
        panic!(
            "locking rules: {call} (takes {takes}) called with `{}` (level {}) held; see rust_hv::locking",
            held.name, held.level
        );
    }
}

fn lock<U>(m: &Mutex<U>) -> MutexGuard<'_, U> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Send> Lock<T> for SimLock<T> {
    fn new(class: &'static LockClass, v: T) -> Self {
        SimLock { class, inner: Mutex::new(v), owner: Mutex::new(None) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let me = thread::current().id();
        assert!(
            *lock(&self.owner) != Some(me),
            "SimLock `{}` re-entered on the thread that holds it (deadlock in Xen)",
            self.class.name
        );
        if let Some(held) = highest_held().filter(|h| h.level >= self.class.level) {
            panic!(
                "lock order: taking `{}` (level {}) while holding `{}` (level {}); see rust_hv::locking",
                self.class.name, self.class.level, held.name, held.level
            );
        }
        let mut g = lock(&self.inner);
        *lock(&self.owner) = Some(me);
        HELD.with(|h| h.borrow_mut().push(self.class));
        let _reset = OwnerReset(&self.owner);
        f(&mut g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    static LOW: LockClass = LockClass { name: "test.low", level: 1 };
    static HIGH: LockClass = LockClass { name: "test.high", level: 2 };

    /// The panic message of `f`, which must panic.
    fn panic_message(f: impl FnOnce()) -> String {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("must panic");
        e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn serialises_threads() {
        let l = Arc::new(<SimLock<u64> as Lock<u64>>::new(&LOW, 0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                thread::spawn(move || {
                    for _ in 0..1000 {
                        l.with(|v| *v += 1);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(l.with(|v| *v), 4000);
    }

    #[test]
    fn reentry_is_detected_not_a_hang() {
        let l = <SimLock<u8> as Lock<u8>>::new(&LOW, 0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.with(|_| l.with(|_| ()))));
        assert!(r.is_err());
        assert_eq!(l.with(|v| *v), 0, "usable again after the panic");
    }

    #[test]
    fn order_is_checked_with_both_names() {
        let low = <SimLock<u8> as Lock<u8>>::new(&LOW, 0);
        let high = <SimLock<u8> as Lock<u8>>::new(&HIGH, 0);
        let other = <SimLock<u8> as Lock<u8>>::new(&HIGH, 0);
        low.with(|_| high.with(|_| ()));
        let m = panic_message(|| high.with(|_| low.with(|_| ())));
        assert!(m.contains("`test.low` (level 1)") && m.contains("`test.high` (level 2)"), "{m}");
        let m = panic_message(|| high.with(|_| other.with(|_| ())));
        assert!(m.contains("taking `test.high`") && m.contains("holding `test.high`"), "{m}");
        assert_eq!(held(), 0, "nothing left held after the panics");
        low.with(|_| high.with(|_| assert_eq!(highest_held(), Some(&HIGH))));
    }

    #[test]
    fn forbidden_platform_call_names_both() {
        platform_call("Platform::domain", "the domain list lock");
        let l = <SimLock<u8> as Lock<u8>>::new(&LOW, 0);
        let m = panic_message(|| l.with(|_| platform_call("Platform::domain", "the domain list lock")));
        assert!(
            m.contains("Platform::domain") && m.contains("the domain list lock") && m.contains("`test.low`"),
            "{m}"
        );
    }
}
