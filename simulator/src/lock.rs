//! The simulator's `Platform::Lock`: a `std::sync::Mutex` that detects
//! re-entry on the same thread.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use rust_hv::platform::Lock;

/// A lock around a `T` (Xen: a spinlock next to the data).
///
/// Re-entering the lock on the thread that holds it is a deadlock in Xen;
/// here it panics with a message instead of hanging the test, which is
/// Xen's `BUG()` for an impossible state. A panic inside the closure does
/// not poison the lock for the checkers.
#[derive(Debug)]
pub struct SimLock<T> {
    inner: Mutex<T>,
    owner: Mutex<Option<ThreadId>>,
}

struct OwnerReset<'a>(&'a Mutex<Option<ThreadId>>);

impl Drop for OwnerReset<'_> {
    fn drop(&mut self) {
        *lock(self.0) = None;
        HELD.with(|h| h.set(h.get() - 1));
    }
}

thread_local! {
    /// `SimLock`s this thread holds now.
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// How many `rust-hv` locks (`SimLock`s) the calling thread holds: the
/// machine uses it to count region-sized work done under them.
pub fn held() -> u32 {
    HELD.with(Cell::get)
}

fn lock<U>(m: &Mutex<U>) -> MutexGuard<'_, U> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Send> Lock<T> for SimLock<T> {
    fn new(v: T) -> Self {
        SimLock { inner: Mutex::new(v), owner: Mutex::new(None) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let me = thread::current().id();
        assert!(*lock(&self.owner) != Some(me), "SimLock re-entered on the thread that holds it (deadlock in Xen)");
        let mut g = lock(&self.inner);
        *lock(&self.owner) = Some(me);
        HELD.with(|h| h.set(h.get() + 1));
        let _reset = OwnerReset(&self.owner);
        f(&mut g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn serialises_threads() {
        let l = Arc::new(<SimLock<u64> as Lock<u64>>::new(0));
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
        let l = <SimLock<u8> as Lock<u8>>::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.with(|_| l.with(|_| ()))));
        assert!(r.is_err());
        assert_eq!(l.with(|v| *v), 0, "usable again after the panic");
    }
}
