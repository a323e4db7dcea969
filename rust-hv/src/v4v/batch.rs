//! `OP_SENDV_BATCH`: several messages in one hypercall.
//!
//! The entry array and the iov array are copied into Xen once each (one
//! guest copy each, into the heap: nothing batch-sized goes on Xen's
//! stack), at the first step, and every entry is checked then (a
//! malformed one fails the call before anything is sent). The messages
//! are then sent in array order, each by `send.rs` exactly as `OP_SENDV`
//! sends one (check of the destination, reservation, copy, publish): whole
//! or not at all, so in order per ring. The batch stops at the first
//! message not sent; the result is the number sent, or the first
//! message's error if none was.
//!
//! Payloads: when all of them lie within [`BATCH_WINDOW_BYTES`] of the
//! sender's readable memory, that range is copied in once at the first
//! step (no lock held) and the messages are sent from Xen's copy; else each
//! payload is copied from the guest when its message is sent, as by
//! `OP_SENDV`.
//!
//! Preemption: the step's byte budget ([`SEND_STEP_BYTES_MAX`]) is shared
//! by the step's messages, and `preempt_check()` is asked between messages
//! and between chunks of a large one. A preempted batch parks its progress
//! (the next entry, and the message it was copying, whose reservation is
//! released) in the sender's state, like a parked `OP_SENDV`: nothing is
//! held in any ring across the return to the guest.
//!
//! Wake-ups: the ones the messages of a step cause (ring owners, waiters a
//! reservation held off) are gathered per domain and raised once each when
//! the step ends, with no lock held, never carried over a return to the
//! guest (a sender that never re-issues the call leaves no receiver
//! unwoken). A batch that completes in one step raises at most one
//! `VIRQ_V4V` per domain it wakes, however many messages it carried.

use alloc::vec::Vec;

use hypercall_abi::v4v::{validate_batch_counts, BatchEnt, Iov, Wire, BATCH_MAX, PENDING_PER_RING_MAX};
use hypercall_abi::{DomId, Errno};

use super::send::{check_source, Delivery, InFlight, Message, Parked, StepBudget, Window};
use super::{guest_elem, id_of, BatchArgs, V4v, SEND_STEP_BYTES_MAX};
use crate::locking;
use crate::platform::{Lock, Platform};

/// Largest range of the sender's memory holding every payload of a batch
/// that is copied in with one guest copy at the first step (see
/// [`Batch::window`]).
pub const BATCH_WINDOW_BYTES: usize = 8192;

/// A batch between hypercall steps: what was copied in at the first step
/// and how far it got.
pub(crate) struct Batch {
    /// The hypercall's arguments: a re-issue must match them exactly.
    args: BatchArgs,
    /// The entries and iovs as copied in and checked at the first step;
    /// `status` is Xen's, written back at the end of every step.
    ents: Vec<BatchEnt>,
    iovs: Vec<Iov>,
    /// The first entry not yet sent.
    next: usize,
    /// Messages sent so far.
    sent: u32,
    /// Entry `next`, preempted mid-copy (holding no reservation).
    msg: Option<InFlight>,
    /// Every payload of the batch, when they all lie within
    /// [`BATCH_WINDOW_BYTES`] of the sender's memory that could be read:
    /// copied in once at the first step, from guest address
    /// `window_base`, and sent from here. A guest translation per message
    /// is the largest cost of a small send; this makes it one per batch.
    /// Empty: each payload is copied from the sender's memory when its
    /// message is sent (and a fault is that message's `-EFAULT`).
    window: Vec<u8>,
    window_base: u64,
}

/// How a step of a batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Every message sent.
    Done,
    /// Entry `next` was not sent, for this reason.
    Stopped(Errno),
    /// Out of budget: park and continue.
    Preempted,
}

/// The domains to wake at the end of a step, each once. Bounded; a domain
/// that finds it full is woken at once instead (more wake-ups, never fewer).
struct WakeSet {
    doms: [DomId; WakeSet::MAX],
    n: usize,
}

impl WakeSet {
    /// Every destination of a full batch, plus one ring's waiters and owner.
    const MAX: usize = BATCH_MAX as usize + PENDING_PER_RING_MAX as usize + 1;

    fn new() -> Self {
        WakeSet { doms: [DomId(0); WakeSet::MAX], n: 0 }
    }

    /// Adds `d`; `false` if it is not there and there is no room.
    fn insert(&mut self, d: DomId) -> bool {
        if self.doms[..self.n].contains(&d) {
            return true;
        }
        if self.n == self.doms.len() {
            return false;
        }
        self.doms[self.n] = d;
        self.n += 1;
        true
    }

    fn as_slice(&self) -> &[DomId] {
        &self.doms[..self.n]
    }
}

/// Reads `n` elements of `T` at guest address `base` into `out`, with one
/// guest copy through a heap buffer (Xen's stack is small: nothing
/// batch-sized goes on it). No lock held.
fn read_array<P: Platform, T: Wire>(
    p: &P,
    caller: &P::Domain,
    base: u64,
    n: usize,
    out: &mut Vec<T>,
) -> Result<(), Errno> {
    let len = n.checked_mul(T::SIZE).ok_or(Errno::EINVAL)?;
    // The end of the array must be representable (`-EFAULT` otherwise).
    guest_elem(base, n, T::SIZE)?;
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    buf.resize(len, 0);
    p.copy_from_guest(caller, base, &mut buf)?;
    out.extend(buf.chunks_exact(T::SIZE).map(T::read));
    Ok(())
}

/// The range of the sender's memory that holds every payload the entries
/// name, copied in with one guest copy, if it is at most
/// [`BATCH_WINDOW_BYTES`] and readable; else nothing (each message's
/// payload is then copied when it is sent). Checked arithmetic throughout:
/// the addresses are the guest's. No lock held.
fn payload_window<P: Platform>(p: &P, caller: &P::Domain, ents: &[BatchEnt], iovs: &[Iov]) -> (u64, Vec<u8>) {
    let mut span: Option<(u64, u64)> = None;
    for e in ents {
        let first = e.iov_first as usize;
        // Checked at the first step: the range is inside `iovs`.
        let Some(mine) = iovs.get(first..first.saturating_add(e.niov as usize)) else { return (0, Vec::new()) };
        for iov in mine.iter().filter(|v| v.len > 0) {
            let Some(end) = iov.base.checked_add(u64::from(iov.len)) else { return (0, Vec::new()) };
            span = Some(match span {
                None => (iov.base, end),
                Some((lo, hi)) => (lo.min(iov.base), hi.max(end)),
            });
        }
    }
    let Some((lo, hi)) = span else { return (0, Vec::new()) };
    let Ok(n) = usize::try_from(hi - lo) else { return (0, Vec::new()) };
    if n > BATCH_WINDOW_BYTES {
        return (0, Vec::new());
    }
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        return (0, Vec::new());
    }
    v.resize(n, 0);
    match p.copy_from_guest(caller, lo, &mut v) {
        Ok(()) => (lo, v),
        Err(_) => (0, Vec::new()),
    }
}

impl<P: Platform> V4v<P> {
    /// `OP_SENDV_BATCH`, one hypercall step of it: starts a batch, or
    /// continues this domain's parked one if `args` are the same. Never
    /// inlined into the dispatcher, so that the other sub-ops do not carry
    /// its frame on Xen's small stack.
    #[inline(never)]
    pub(super) fn sendv_batch(&self, p: &P, caller: &P::Domain, args: BatchArgs) -> Result<i64, Errno> {
        let me = id_of(p, caller);
        let resumed = self.table.with(|t| match t.dom(me) {
            Some(d) => match &d.in_flight {
                Some(Parked::Batch(b)) if b.args == args => match d.in_flight.take() {
                    Some(Parked::Batch(b)) => Ok(Some(b)),
                    _ => Ok(None),
                },
                // One preemptible send per domain at a time.
                Some(_) => Err(Errno::EBUSY),
                None => Ok(None),
            },
            None => Ok(None),
        })?;
        let mut b = match resumed {
            Some(b) => b,
            None => self.batch_start(p, caller, me, args)?,
        };
        let first = b.next;
        let mut wakes = WakeSet::new();
        let end = self.batch_steps(p, caller, me, &mut b, |d| {
            if !wakes.insert(d) {
                self.virq(p, d);
            }
        });
        // The step's wake-ups, once per domain, before anything else can
        // fail: what was published is announced.
        for &d in wakes.as_slice() {
            self.virq(p, d);
        }
        let end = if end == End::Preempted {
            // What this step sent is reported before the batch is parked.
            self.batch_write_status(p, caller, &b, first, b.next);
            let mut slot = Some(b);
            match (self.batch_park(p, caller, me, &mut slot), slot) {
                (Ok(()), _) => return Err(Errno::ERESTART),
                // Could not park (the sender is dying, or another vcpu of
                // it started a send meanwhile): the batch ends here. Its
                // preempted message holds no reservation.
                (Err(e), Some(back)) => {
                    b = back;
                    b.msg = None;
                    End::Stopped(e)
                }
                (Err(e), None) => return Err(e),
            }
        } else {
            end
        };
        let upto = match end {
            End::Stopped(e) => {
                if let Some(ent) = b.ents.get_mut(b.next) {
                    ent.status = e.to_ret() as i32;
                }
                b.next + 1
            }
            _ => b.next,
        };
        // Entries already written back before a failed park are written
        // again, unchanged.
        self.batch_write_status(p, caller, &b, first, upto);
        match end {
            End::Stopped(e) if b.sent == 0 => Err(e),
            _ => Ok(i64::from(b.sent)),
        }
    }

    /// Checks the counts, copies both arrays in once and checks every
    /// entry: any error fails the whole call, nothing sent.
    fn batch_start(&self, p: &P, caller: &P::Domain, me: DomId, args: BatchArgs) -> Result<Batch, Errno> {
        locking::assert_unlocked(p);
        validate_batch_counts(args.nent, args.niov)?;
        // Bounded by the check above.
        let (nent, niov) = (args.nent as usize, args.niov as usize);
        let mut ents: Vec<BatchEnt> = Vec::new();
        ents.try_reserve_exact(nent).map_err(|_| Errno::ENOMEM)?;
        let mut iovs: Vec<Iov> = Vec::new();
        iovs.try_reserve_exact(niov).map_err(|_| Errno::ENOMEM)?;
        read_array(p, caller, args.ents, nent, &mut ents)?;
        read_array(p, caller, args.iovs, niov, &mut iovs)?;
        for e in &ents {
            Self::batch_message(me, e, &iovs)?;
        }
        let (window_base, window) = payload_window(p, caller, &ents, &iovs);
        Ok(Batch { args, ents, iovs, next: 0, sent: 0, msg: None, window, window_base })
    }

    /// Entry `e` as a checked message: its fields, its source, its iov
    /// range in `iovs`, and the iovs themselves as `OP_SENDV` checks them.
    fn batch_message(me: DomId, e: &BatchEnt, iovs: &[Iov]) -> Result<Message, Errno> {
        let niov_total = u32::try_from(iovs.len()).map_err(|_| Errno::EINVAL)?;
        e.validate(niov_total)?;
        check_source(me, &e.addr)?;
        let first = e.iov_first as usize;
        let mine = iovs.get(first..first + e.niov as usize).ok_or(Errno::EINVAL)?;
        Message::new(e.addr, e.msg_type, mine)
    }

    /// Sends from entry `b.next` on until done, stopped or out of budget.
    fn batch_steps(&self, p: &P, caller: &P::Domain, me: DomId, b: &mut Batch, mut wake: impl FnMut(DomId)) -> End {
        let window = Window { base: b.window_base, bytes: &b.window };
        let mut step = StepBudget { bytes: 0, window: (!b.window.is_empty()).then_some(&window) };
        while let Some(&e) = b.ents.get(b.next) {
            let mut f = match b.msg.take() {
                Some(f) => f,
                None => {
                    let r = Self::batch_message(me, &e, &b.iovs).and_then(|m| {
                        self.check_destination(p, caller, &m.addr)?;
                        self.reserve(p, caller, me, &m)
                    });
                    match r {
                        Ok(f) => f,
                        Err(err) => return End::Stopped(err),
                    }
                }
            };
            match self.deliver(p, caller, me, &mut f, &mut step, &mut wake) {
                Ok(Delivery::Sent(n)) => {
                    b.ents[b.next].status = i32::try_from(n).unwrap_or(i32::MAX);
                    b.next += 1;
                    b.sent += 1;
                }
                Ok(Delivery::Preempted) => {
                    b.msg = Some(f);
                    return End::Preempted;
                }
                Err(err) => return End::Stopped(err),
            }
            if b.next < b.ents.len() && (step.bytes >= SEND_STEP_BYTES_MAX || p.preempt_check()) {
                return End::Preempted;
            }
        }
        End::Done
    }

    /// Parks a preempted batch in the sender's state (see
    /// [`V4v::park`]): takes it out of `slot`, which keeps it if it cannot
    /// be parked.
    fn batch_park(&self, p: &P, caller: &P::Domain, me: DomId, slot: &mut Option<Batch>) -> Result<(), Errno> {
        self.table.with(|t| {
            // Checked under L1, as for a parked `OP_SENDV`.
            if p.domain_info(caller).dying {
                return Err(Errno::ESRCH);
            }
            match t.dom(me) {
                Some(d) if d.in_flight.is_none() => {
                    d.in_flight = slot.take().map(Parked::Batch);
                    Ok(())
                }
                Some(_) => Err(Errno::EBUSY),
                None => Err(Errno::ESRCH),
            }
        })
    }

    /// Writes back entries `first..upto` (their `status`) as Xen holds
    /// them, with one guest copy through a heap buffer. No lock held. A
    /// fault (or no memory for the buffer) is ignored: the result says
    /// what was sent.
    fn batch_write_status(&self, p: &P, caller: &P::Domain, b: &Batch, first: usize, upto: usize) {
        locking::assert_unlocked(p);
        let upto = core::cmp::min(upto, b.ents.len());
        let Some(ents) = b.ents.get(first..upto).filter(|e| !e.is_empty()) else { return };
        let mut buf: Vec<u8> = Vec::new();
        if buf.try_reserve_exact(ents.len() * BatchEnt::SIZE).is_err() {
            return;
        }
        buf.resize(ents.len() * BatchEnt::SIZE, 0);
        for (e, out) in ents.iter().zip(buf.chunks_exact_mut(BatchEnt::SIZE)) {
            e.write(out);
        }
        let Ok(addr) = guest_elem(b.args.ents, first, BatchEnt::SIZE) else { return };
        let _ = p.copy_to_guest(caller, addr, &buf);
    }
}
