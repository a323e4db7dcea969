//! `OP_SENDV`: reserve, copy in bounded steps, publish.
//!
//! A send first reserves the whole message's space in the destination ring
//! (under that ring's lock, reading `rx_ptr` once). It then copies the
//! payload, [`SEND_CHUNK_BYTES`] per acquisition of the ring lock, straight
//! from the sender's memory into the ring's pages (one copy, no bounce
//! buffer, as Argo's `memcpy_to_guest_ring` does under its ring lock). After
//! [`SEND_STEP_BYTES_MAX`] bytes, or earlier if the platform asks, it parks
//! its progress in the sender's [`InFlight`] record, releases the
//! reservation (nothing is held across a return to the guest: a sender that
//! never comes back blocks nobody) and returns `-ERESTART`; the re-issued
//! hypercall (same arguments) takes a reservation again and resumes from
//! the record, or starts the copy again if others wrote into the ring
//! meanwhile. Only when the last byte is in does it write the message header
//! and publish `tx_ptr`, so the receiver sees the message whole or not at
//! all.

use hypercall_abi::v4v::{message_bytes, Addr, Iov, MsgHeader, SendAddr, Wire, IOV_MAX, MSG_MAX, SLOT_BYTES};
use hypercall_abi::{DomId, Errno};

use super::ring::{Reservation, Ring, Wakes};
use super::{guest_elem, id_of, read_guest, SendArgs, V4v, SEND_CHUNK_BYTES, SEND_RESTARTS_MAX, SEND_STEP_BYTES_MAX};
use crate::locking;
use crate::platform::{Lock, Platform};

/// A send in progress, kept in its sender's state between hypercall steps
/// (by `OP_SENDV` on its own, or inside a parked batch).
pub(crate) struct InFlight {
    generation: u64,
    token: u64,
    /// The iov array, copied from the guest once at the first step (the
    /// first `niov`; inline: a send allocates nothing).
    iovs: [Iov; IOV_MAX as usize],
    niov: usize,
    hdr: MsgHeader,
    /// Ring data offset of the reserved message (its header).
    start: u32,
    /// Ring bytes reserved.
    bytes: u32,
    /// Payload bytes already copied, and where the next byte comes from.
    done: u32,
    iov_i: usize,
    iov_off: u32,
    /// The reservation is held (only within a hypercall step).
    held: bool,
    /// The ring's [`Ring::grants`] when this send last took its
    /// reservation.
    grant: u64,
    /// Times the copy started again (see [`SEND_RESTARTS_MAX`]).
    restarts: u32,
}

/// A checked message: its addresses (the source checked), type and iovs
/// (checked, in Xen), and the total payload length.
pub(super) struct Message {
    pub addr: SendAddr,
    pub msg_type: u32,
    pub iovs: [Iov; IOV_MAX as usize],
    pub niov: usize,
    pub total: u32,
}

impl Message {
    /// Checks the iovs (padding, the total's overflow and [`MSG_MAX`]) of
    /// a message whose source was checked ([`check_source`]). At most
    /// [`IOV_MAX`] iovs (the callers check the count first).
    #[inline(always)]
    pub fn new(addr: SendAddr, msg_type: u32, src: &[Iov]) -> Result<Message, Errno> {
        debug_assert!(!src.is_empty() && src.len() <= IOV_MAX as usize);
        let mut iovs = [Iov::default(); IOV_MAX as usize];
        let mut total: u32 = 0;
        for (slot, iov) in iovs.iter_mut().zip(src) {
            iov.validate()?;
            total = total.checked_add(iov.len).ok_or(Errno::EOVERFLOW)?;
            *slot = *iov;
        }
        if total > MSG_MAX {
            return Err(Errno::EMSGSIZE);
        }
        Ok(Message { addr, msg_type, iovs, niov: src.len(), total })
    }
}

/// Checks a send address's padding and that its source names the caller
/// (or `DOMID_SELF`): the source is never taken from the guest (`-EPERM`).
pub(super) fn check_source(me: DomId, sa: &SendAddr) -> Result<(), Errno> {
    sa.validate()?;
    if sa.src.domain != me.0 && sa.src.domain != DomId::SELF_.0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// A range of the sender's memory that Xen copied in beforehand (a batch's
/// payloads, read with one guest copy): payload bytes inside it are taken
/// from here instead of being copied from the guest one message at a time.
pub(super) struct Window<'a> {
    /// Guest address of `bytes[0]`.
    pub base: u64,
    pub bytes: &'a [u8],
}

impl Window<'_> {
    /// The `n` bytes at guest address `addr`, if the window holds them all.
    fn get(&self, addr: u64, n: usize) -> Option<&[u8]> {
        let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        self.bytes.get(off..off.checked_add(n)?)
    }
}

/// One hypercall step's copy budget, shared by the messages of a batch,
/// and where their payloads may already be.
pub(super) struct StepBudget<'a> {
    /// Payload bytes copied in this step (against [`SEND_STEP_BYTES_MAX`]).
    pub bytes: usize,
    pub window: Option<&'a Window<'a>>,
}

/// What [`V4v::deliver`] did with a send.
pub(super) enum Delivery {
    /// Published whole: its payload bytes.
    Sent(u32),
    /// The step's budget ran out first: the reservation is released, the
    /// send is to be parked and resumed.
    Preempted,
}

/// The preemptible send a domain has parked between hypercall steps (at
/// most one), with the arguments its re-issue must match exactly.
pub(crate) enum Parked {
    Sendv { args: SendArgs, f: InFlight },
    Batch(super::batch::Batch),
}

/// What a resumed send found when it asked for its reservation again.
enum Again {
    /// Held again (the copy continues, or starts again at the new `tx`).
    Held,
    /// Another sender holds the ring for the rest of its step: come back.
    Busy,
    /// The message no longer fits (`-EAGAIN`, queued as a waiter).
    Full,
    /// Restarted too often (`-EAGAIN`).
    Exhausted,
    /// The ring was unregistered meanwhile.
    Gone,
}

/// What a step found under the ring lock.
enum Step {
    /// The ring was unregistered or the reservation cancelled meanwhile.
    Gone,
    /// The sender's memory could not be read: the send is cancelled.
    Fault(Errno),
    Copied,
    Published {
        virq_owner: bool,
        owner: DomId,
    },
}

impl<P: Platform> V4v<P> {
    /// `OP_SENDV`, one hypercall step of it: starts a send, or continues
    /// this domain's parked one if `args` are the same.
    #[inline(never)]
    pub(super) fn sendv(&self, p: &P, caller: &P::Domain, args: SendArgs) -> Result<i64, Errno> {
        let me = id_of(p, caller);
        // A continuation of this domain's send in progress?
        let resumed = self.table.with(|t| match t.dom(me) {
            Some(d) => match &d.in_flight {
                Some(Parked::Sendv { args: a, .. }) if *a == args => match d.in_flight.take() {
                    Some(Parked::Sendv { f, .. }) => Ok(Some(f)),
                    _ => Ok(None),
                },
                // One preemptible send per domain at a time.
                Some(_) => Err(Errno::EBUSY),
                None => Ok(None),
            },
            None => Ok(None),
        })?;
        let mut f = match resumed {
            Some(f) => f,
            None => self.send_start(p, caller, me, args)?,
        };
        let mut step = StepBudget { bytes: 0, window: None };
        match self.deliver(p, caller, me, &mut f, &mut step, |d| self.virq(p, d))? {
            Delivery::Sent(total) => Ok(i64::from(total)),
            Delivery::Preempted => self.park(p, caller, me, Parked::Sendv { args, f }),
        }
    }

    /// Checks everything, copies the iov array once and reserves the space.
    fn send_start(&self, p: &P, caller: &P::Domain, me: DomId, args: SendArgs) -> Result<InFlight, Errno> {
        locking::assert_unlocked(p);
        let guest = ArgsCopy::new(p, caller, &args)?;
        let sa: SendAddr = guest.read(p, caller, args.addr)?;
        check_source(me, &sa)?;
        let niov = args.niov;
        if niov == 0 {
            return Err(Errno::EINVAL);
        }
        if niov > IOV_MAX as u64 {
            return Err(Errno::E2BIG);
        }
        let msg_type = u32::try_from(args.msg_type).map_err(|_| Errno::EINVAL)?;
        // The policy decides once the destination is known, before the iov
        // array is read or any payload copied (the array's bytes may be in
        // `guest` already, unread).
        self.check_destination(p, caller, &sa)?;

        let mut iovs = [Iov::default(); IOV_MAX as usize];
        for (i, slot) in iovs.iter_mut().enumerate().take(niov as usize) {
            let addr = guest_elem(args.iovs, i, Iov::SIZE)?;
            *slot = guest.read(p, caller, addr)?;
        }
        let msg = Message::new(sa, msg_type, &iovs[..niov as usize])?;
        self.reserve(p, caller, me, &msg)
    }

    /// Whether `caller` may send to the destination of `sa` now: a real,
    /// live domain (`-ESRCH`) that the policy lets it send to. No lock is
    /// held; a resumed send was allowed at its first step.
    #[inline(always)]
    pub(super) fn check_destination(&self, p: &P, caller: &P::Domain, sa: &SendAddr) -> Result<(), Errno> {
        locking::assert_unlocked(p);
        let dst = DomId(sa.dst.domain);
        if !dst.is_real() {
            return Err(Errno::ESRCH);
        }
        let dd = p.domain(dst)?;
        if p.domain_info(&dd).dying {
            return Err(Errno::ESRCH);
        }
        // Argo: `xsm_argo_send`.
        p.xsm_v4v_send(caller, &dd)
    }

    /// Finds the ring of a checked message (`-ECONNREFUSED` if there is
    /// none or the firewall refuses) and reserves the whole message's space
    /// in it: a send that `Self::deliver` then copies and publishes.
    /// `-EAGAIN` (the sender queued as a waiter) if it does not fit now,
    /// `-EMSGSIZE` if it never can.
    #[inline(always)]
    pub(super) fn reserve(&self, p: &P, caller: &P::Domain, me: DomId, msg: &Message) -> Result<InFlight, Errno> {
        let sa = &msg.addr;
        let dst = DomId(sa.dst.domain);
        let total = msg.total;
        // Cannot overflow: MSG_MAX is far below u32::MAX.
        let bytes = message_bytes(total).ok_or(Errno::EMSGSIZE)?;

        let (generation, token) = self.table.with(|t| {
            // Created now so that the statistics update at the end never
            // has to allocate.
            t.dom_or_insert(me)?;
            let generation = t.find_for_sender(me, dst, sa.dst.port).ok_or(Errno::ECONNREFUSED)?;
            if !t.fw_allows(me, sa.src.port, dst, sa.dst.port) {
                return Err(Errno::ECONNREFUSED);
            }
            let token = t.next_token;
            t.next_token += 1;
            Ok((generation, token))
        })?;

        let hdr =
            MsgHeader { len: total, msg_type: msg.msg_type, source: Addr { port: sa.src.port, domain: me.0, pad: 0 } };
        let reserved = self.bucket(generation).with(|b| {
            let r = b.get_mut(generation).ok_or(Errno::ECONNREFUSED)?;
            if bytes > r.capacity_bytes() {
                return Err(Errno::EMSGSIZE);
            }
            let rx = r.read_rx(p);
            if bytes > r.free_bytes(rx) {
                r.full = r.full.wrapping_add(1);
                // Like Argo, a sender that found the ring full is woken when
                // its message fits (best effort: a full waiter list only
                // means no automatic wake-up).
                if !p.domain_info(caller).dying {
                    let _ = r.add_pending(me, total);
                }
                return Ok(None);
            }
            if p.domain_info(caller).dying {
                return Err(Errno::ESRCH);
            }
            r.reservation = Some(Reservation { token, owner: me, bytes });
            r.grants = r.grants.wrapping_add(1);
            Ok(Some((r.tx, r.grants)))
        })?;
        let Some((start, grant)) = reserved else {
            self.table.with(|t| {
                if let Some(d) = t.dom(me) {
                    d.sends_full = d.sends_full.wrapping_add(1);
                }
            });
            return Err(Errno::EAGAIN);
        };
        Ok(InFlight {
            generation,
            token,
            iovs: msg.iovs,
            niov: msg.niov,
            hdr,
            start,
            bytes,
            done: 0,
            iov_i: 0,
            iov_off: 0,
            held: true,
            grant,
            restarts: 0,
        })
    }

    /// Takes the reservation of a resumed (parked) send again: where it
    /// was if nobody took one meanwhile, else at the current `tx` with the
    /// copy started again.
    fn send_reacquire(&self, p: &P, caller: &P::Domain, me: DomId, f: &mut InFlight) -> Result<(), Errno> {
        debug_assert!(!f.held);
        let again = self.bucket(f.generation).with(|b| {
            let Some(r) = b.get_mut(f.generation) else { return Again::Gone };
            if r.reservation.is_some() {
                return Again::Busy;
            }
            let intact = r.grants == f.grant && r.tx == f.start;
            if !intact && f.restarts >= SEND_RESTARTS_MAX {
                return Again::Exhausted;
            }
            // `rx_ptr` is the receiver's: re-read, the space is checked
            // again even where nothing was written.
            let rx = r.read_rx(p);
            if f.bytes > r.free_bytes(rx) {
                r.full = r.full.wrapping_add(1);
                if !p.domain_info(caller).dying {
                    let _ = r.add_pending(me, f.hdr.len);
                }
                return Again::Full;
            }
            if !intact {
                f.start = r.tx;
                f.done = 0;
                f.iov_i = 0;
                f.iov_off = 0;
                f.restarts += 1;
            }
            r.reservation = Some(Reservation { token: f.token, owner: me, bytes: f.bytes });
            r.grants = r.grants.wrapping_add(1);
            f.grant = r.grants;
            f.held = true;
            Again::Held
        });
        match again {
            Again::Held => Ok(()),
            Again::Busy => Err(Errno::ERESTART),
            Again::Full => {
                self.table.with(|t| {
                    if let Some(d) = t.dom(me) {
                        d.sends_full = d.sends_full.wrapping_add(1);
                    }
                });
                Err(Errno::EAGAIN)
            }
            Again::Exhausted => Err(Errno::EAGAIN),
            Again::Gone => Err(Errno::ECONNREFUSED),
        }
    }

    /// Copies until the message is published, or until the step's budget
    /// (`step_bytes`, shared by every message of a batch step) is used up:
    /// then the reservation is released and the send comes back to be
    /// parked by the caller. Every wake-up due (the ring's owner, waiters
    /// the reservation held off) goes to `wake`, called with no lock held.
    ///
    /// Inlined into both callers, with `wake` monomorphised and the send
    /// borrowed: out of line, with the send moved in and out and `wake`
    /// called indirectly, a 64 B `OP_SENDV` cost 430 more instructions on
    /// real Xen than before the batch (`make bench-xen`, same kernel);
    /// this way 160 more.
    #[inline(always)]
    pub(super) fn deliver(
        &self,
        p: &P,
        caller: &P::Domain,
        me: DomId,
        f: &mut InFlight,
        step: &mut StepBudget<'_>,
        mut wake: impl FnMut(DomId),
    ) -> Result<Delivery, Errno> {
        let window = step.window;
        if !f.held {
            match self.send_reacquire(p, caller, me, f) {
                Ok(()) => {}
                // Another sender is mid-step: park and come back.
                Err(Errno::ERESTART) => return Ok(Delivery::Preempted),
                Err(e) => return Err(e),
            }
        }
        let total = f.hdr.len;
        loop {
            let n = core::cmp::min((total - f.done) as usize, SEND_CHUNK_BYTES);
            let finished = f.done as usize + n == total as usize;
            let mut wakes = Wakes::new();
            let done = self.bucket(f.generation).with(|b| {
                let Some(r) = b.get_mut(f.generation) else { return Step::Gone };
                if r.reservation.is_none_or(|res| res.token != f.token) {
                    return Step::Gone;
                }
                // The payload follows the header; both offsets wrap. The
                // reservation is this send's alone and the pages stay pinned
                // while the ring lock is held.
                let off = (f.start as u64 + SLOT_BYTES as u64 + f.done as u64) % r.len as u64;
                if let Err(e) = scatter(p, caller, r, f, window, off as u32, n) {
                    return Step::Fault(e);
                }
                if !finished {
                    return Step::Copied;
                }
                r.write_msg_header(p, f.start, &f.hdr);
                let old_tx = r.tx;
                debug_assert_eq!(old_tx, f.start);
                r.tx = ((f.start as u64 + f.bytes as u64) % r.len as u64) as u32;
                r.reservation = None;
                // Orders the payload and header before `tx_ptr` (smp_wmb).
                r.publish_tx(p);
                r.msgs = r.msgs.wrapping_add(1);
                r.bytes = r.bytes.wrapping_add(u64::from(total));
                let (rx, flags) = r.read_rx_flags(p);
                let virq_owner = Ring::<P::RingMap>::wants_data_virq(flags, old_tx, rx);
                // Waiters held off by the reservation may fit now.
                r.wake_fitting(rx, &mut wakes);
                Step::Published { virq_owner, owner: DomId(r.id.domain) }
            });
            f.done += n as u32;
            step.bytes = step.bytes.saturating_add(n);
            match done {
                Step::Gone => return Err(Errno::ECONNREFUSED),
                Step::Fault(e) => {
                    self.send_cancel(p, f);
                    return Err(e);
                }
                Step::Published { virq_owner, owner } => {
                    self.table.with(|t| {
                        t.global_msgs = t.global_msgs.wrapping_add(1);
                        t.global_bytes = t.global_bytes.wrapping_add(u64::from(total));
                        if let Some(d) = t.dom(me) {
                            d.msgs_sent = d.msgs_sent.wrapping_add(1);
                            d.bytes_sent = d.bytes_sent.wrapping_add(u64::from(total));
                        }
                        if let Some(d) = t.dom(owner) {
                            d.msgs_received = d.msgs_received.wrapping_add(1);
                        }
                    });
                    locking::assert_unlocked(p);
                    if virq_owner {
                        wake(owner);
                    }
                    wakes.as_slice().iter().for_each(|&d| wake(d));
                    return Ok(Delivery::Sent(total));
                }
                Step::Copied => {}
            }
            if step.bytes >= SEND_STEP_BYTES_MAX || p.preempt_check() {
                // Nothing is held across the return to the guest.
                self.send_cancel(p, f);
                f.held = false;
                return Ok(Delivery::Preempted);
            }
        }
    }

    /// Keeps a preempted send's (or batch's) progress for the re-issued
    /// hypercall; it holds nothing in any ring (its reservation was
    /// released). `-ERESTART` once parked.
    pub(super) fn park(&self, p: &P, caller: &P::Domain, me: DomId, parked: Parked) -> Result<i64, Errno> {
        let r = self.table.with(|t| {
            // Checked under L1: the destroy hook takes L1 after `dying` is
            // set, so a record parked now is seen and dropped by it.
            if p.domain_info(caller).dying {
                return Err(Errno::ESRCH);
            }
            match t.dom(me) {
                Some(d) if d.in_flight.is_none() => {
                    d.in_flight = Some(parked);
                    Ok(())
                }
                // Another vcpu of the sender started a send meanwhile.
                Some(_) => Err(Errno::EBUSY),
                None => Err(Errno::ESRCH),
            }
        });
        // Nothing of an unparked send was published or is held.
        r.and(Err(Errno::ERESTART))
    }

    /// Drops a send's reservation (nothing of it was published) and wakes
    /// the waiters it held off: at a fault, and when the send parks.
    fn send_cancel(&self, p: &P, f: &InFlight) {
        let mut wakes = Wakes::new();
        self.bucket(f.generation).with(|b| {
            if let Some(r) = b.get_mut(f.generation) {
                if r.reservation.is_some_and(|res| res.token == f.token) {
                    r.reservation = None;
                    let rx = r.read_rx(p);
                    r.wake_fitting(rx, &mut wakes);
                }
            }
        });
        self.raise(p, &wakes);
    }
}

/// Copies the next `len` payload bytes from the sender's iovs into the
/// ring at data offset `off`, continuing where the last call stopped: from
/// `window` where it holds them, else from the sender's memory.
/// Bounded: each turn consumes bytes or moves to the next of at most
/// [`IOV_MAX`] iovs.
fn scatter<P: Platform>(
    p: &P,
    caller: &P::Domain,
    r: &Ring<P::RingMap>,
    f: &mut InFlight,
    window: Option<&Window<'_>>,
    mut off: u32,
    len: usize,
) -> Result<(), Errno> {
    let mut left = len;
    while left > 0 {
        let iov = f.iovs[..f.niov].get(f.iov_i).ok_or(Errno::EFAULT)?;
        let avail = (iov.len - f.iov_off) as usize;
        if avail == 0 {
            f.iov_i += 1;
            f.iov_off = 0;
            continue;
        }
        let n = core::cmp::min(avail, left);
        let addr = iov.base.checked_add(f.iov_off as u64).ok_or(Errno::EFAULT)?;
        match window.and_then(|w| w.get(addr, n)) {
            Some(bytes) => r.copy_data_from_slice(p, off, bytes),
            None => r.copy_data_from_guest(p, caller, off, addr, n)?,
        }
        f.iov_off += n as u32;
        left -= n;
        off = ((off as u64 + n as u64) % r.len as u64) as u32;
    }
    Ok(())
}

/// Most bytes [`ArgsCopy`] copies at once.
const ARGS_COPY_BYTES: usize = 256;

/// The send address and the iov array as one copy of the caller's memory,
/// when both lie within [`ARGS_COPY_BYTES`] of one page (a guest that puts
/// the iov array right after the send address, as `public/v4v.h`
/// suggests): one guest translation instead of two, the largest single
/// cost of a small send. Otherwise each is read on its own, as before.
/// Either way every byte is read once and the checks see that copy.
struct ArgsCopy {
    buf: [u8; ARGS_COPY_BYTES],
    /// Guest address of `buf[0]` and bytes valid; `len` 0: no copy.
    base: u64,
    len: usize,
}

impl ArgsCopy {
    fn new<P: Platform>(p: &P, caller: &P::Domain, args: &SendArgs) -> Result<ArgsCopy, Errno> {
        let mut c = ArgsCopy { buf: [0; ARGS_COPY_BYTES], base: 0, len: 0 };
        if let Some((base, len)) = Self::span(args) {
            p.copy_from_guest(caller, base, &mut c.buf[..len])?;
            (c.base, c.len) = (base, len);
        }
        Ok(c)
    }

    /// The one range covering the send address and a valid iov array, if
    /// it is short and within one page.
    fn span(args: &SendArgs) -> Option<(u64, usize)> {
        if args.niov == 0 || args.niov > u64::from(IOV_MAX) {
            return None;
        }
        let iovs_end = args.iovs.checked_add(args.niov.checked_mul(Iov::SIZE as u64)?)?;
        let addr_end = args.addr.checked_add(SendAddr::SIZE as u64)?;
        let (lo, hi) = (args.addr.min(args.iovs), addr_end.max(iovs_end));
        let len = usize::try_from(hi - lo).ok()?;
        (len <= ARGS_COPY_BYTES && lo >> 12 == (hi - 1) >> 12).then_some((lo, len))
    }

    /// The `T` at guest address `addr`: from the copy if it holds it, else
    /// read from the guest.
    fn read<P: Platform, T: Wire>(&self, p: &P, caller: &P::Domain, addr: u64) -> Result<T, Errno> {
        let off = addr.checked_sub(self.base).and_then(|o| usize::try_from(o).ok());
        match off {
            Some(o) if self.len != 0 && o.checked_add(T::SIZE).is_some_and(|end| end <= self.len) => {
                Ok(T::read(&self.buf[o..o + T::SIZE]))
            }
            _ => read_guest(p, caller, addr),
        }
    }
}
