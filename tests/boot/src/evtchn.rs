//! Event channels and Xen time for guest mode: the shared info page mapped
//! with `XENMEM_add_to_physmap` (`XENMAPSPACE_shared_info`) to see and clear
//! ports' pending bits, ports bound to VIRQs with `EVTCHNOP_bind_virq`
//! (`VIRQ_V4V`, `VIRQ_ARGO`) or adopted after another module bound them
//! (an interdomain port, `EVTCHNOP_bind_interdomain`), blocking with
//! `SCHEDOP_poll` on one or more of them (with an optional timeout in Xen
//! system time, read from the shared info page's `vcpu_time_info`).
//!
//! No upcall is ever delivered: the kernel runs with interrupts off and sets
//! no `HVM_PARAM_CALLBACK_IRQ`, and every port it holds is masked. A masked
//! port still gets its pending bit set and still wakes a vCPU polling it
//! (`evtchn_2l_set_pending` → `evtchn_check_pollers`), which is all
//! `SCHEDOP_poll` needs: the vCPU sleeps in Xen until an event arrives.
//!
//! One [`Events`] per kernel (it maps the shared info page); a [`Port`] is a
//! copyable handle to one port it holds. Race-free waiting: callers clear
//! the port's pending bit ([`Port::clear`]), then check their condition
//! (ring data, ring space), then [`Events::wait_any`] (or [`Events::wait`]
//! on the `VIRQ_V4V` port). An event raised after the check leaves the bit
//! set, and `SCHEDOP_poll` returns at once when a polled port is pending.

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::hypercall::{EVENT_CHANNEL_OP, SCHED_OP};
use hypercall_abi::{Errno, PAGE_SIZE, VIRQ_V4V};

use crate::xen::Hypercalls;

/// `VIRQ_ARGO`: Argo's global VIRQ (`public/xen.h`), raised when one of
/// the domain's Argo rings gets data or space it asked for.
pub const VIRQ_ARGO: u32 = 11;

/// `XENMAPSPACE_shared_info`.
const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `EVTCHNOP_bind_virq`.
const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// `EVTCHNOP_send`.
const EVTCHNOP_SEND: u64 = 4;
/// `SCHEDOP_poll`.
const SCHEDOP_POLL: u64 = 3;

/// Offsets in `struct shared_info` (x86_64): `vcpu_info[32]` of 64 bytes,
/// then `evtchn_pending[64]` and `evtchn_mask[64]` (unsigned longs).
const SI_EVTCHN_PENDING: usize = 32 * 64;
const SI_EVTCHN_MASK: usize = SI_EVTCHN_PENDING + 64 * 8;
/// `vcpu_info[0].time` (`struct vcpu_time_info`) and its fields.
const SI_TIME: usize = 32;
const TIME_VERSION: usize = 0;
const TIME_TSC_TIMESTAMP: usize = 8;
const TIME_SYSTEM_TIME: usize = 16;
const TIME_TSC_TO_SYSTEM_MUL: usize = 24;
const TIME_TSC_SHIFT: usize = 28;
/// Most times the time record is re-read while Xen updates it.
const TIME_READ_TRIES_MAX: u32 = 1000;
/// Ports in the 2-level event channel ABI of a 64-bit guest.
const PORTS_MAX: u32 = 64 * 64;

#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE as usize]);

/// The gfn Xen maps the shared info page at: a page of the kernel's own RAM,
/// which `XENMEM_add_to_physmap` replaces (Linux on HVM does the same).
static mut SHARED_INFO: Page = Page([0; PAGE_SIZE as usize]);

/// `struct sched_poll` and the port array it points to.
#[repr(C, align(64))]
struct PollArgs {
    /// `XEN_GUEST_HANDLE(evtchn_port_t) ports`.
    ports: u64,
    /// `unsigned int nr_ports` (and padding).
    nr_ports: u64,
    /// `uint64_t timeout`: absolute Xen system time in ns, 0 for none.
    timeout: u64,
    /// The ports polled.
    port: [u32; POLL_PORTS_MAX],
}

/// Most ports one [`Events::wait_any`] polls.
pub const POLL_PORTS_MAX: usize = 8;

static mut POLL_ARGS: PollArgs = PollArgs { ports: 0, nr_ports: 0, timeout: 0, port: [0; POLL_PORTS_MAX] };

/// Why [`Events::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A polled port is pending: its event arrived.
    Event,
    /// The deadline passed with no polled port pending.
    Timeout,
    /// Xen ended the poll with no polled port pending and the deadline (if
    /// any) not reached.
    Spurious,
}

/// An event channel port this kernel holds (bound by [`Events`], or adopted
/// with [`Events::adopt`]), masked: its pending bit is what the kernel
/// looks at and polls.
///
/// # Invariants
///
/// Only [`Events`] makes one, after the shared info page is mapped, and
/// the number is below `PORTS_MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(u32);

impl Port {
    /// The port number.
    pub fn number(self) -> u32 {
        self.0
    }

    fn bit(self) -> u64 {
        1 << (self.0 % 64)
    }

    fn pending_word(self) -> &'static AtomicU64 {
        si_word(SI_EVTCHN_PENDING + (self.0 / 64) as usize * 8)
    }

    fn mask_word(self) -> &'static AtomicU64 {
        si_word(SI_EVTCHN_MASK + (self.0 / 64) as usize * 8)
    }

    /// Whether the port is pending.
    pub fn pending(self) -> bool {
        self.pending_word().load(Ordering::SeqCst) & self.bit() != 0
    }

    /// Clears the port's pending bit (and orders that before the caller's
    /// next look at the rings: the atomic is a full barrier on x86).
    pub fn clear(self) {
        self.pending_word().fetch_and(!self.bit(), Ordering::SeqCst);
    }

    fn mask(self) {
        self.mask_word().fetch_or(self.bit(), Ordering::SeqCst);
    }
}

/// The shared info page, and `VIRQ_V4V` bound to an event channel; the
/// way to bind or adopt more ports and to wait on them.
///
/// # Invariants
///
/// `SHARED_INFO` is Xen's shared info page for this domain (mapped once by
/// [`Events::init`], never unmapped), and `v4v` is bound to `VIRQ_V4V`.
/// Copies share that state (there is one page); make only one with `init`.
#[derive(Clone, Copy)]
pub struct Events {
    hc: Hypercalls,
    v4v: Port,
}

fn shared_info() -> *mut u8 {
    addr_of_mut!(SHARED_INFO) as *mut u8
}

/// The `u64` word at byte offset `off` of the shared info page, as an atomic.
fn si_word(off: usize) -> &'static AtomicU64 {
    debug_assert!(off.is_multiple_of(8) && off + 8 <= PAGE_SIZE as usize);
    // SAFETY: the page is 4096-aligned and `off` is 8-aligned and inside
    // it, so the pointer is valid and aligned for an `AtomicU64` for the
    // kernel's whole life. Xen writes these words with locked instructions;
    // atomics are how the guest side must access them too.
    unsafe { &*(shared_info().add(off) as *const AtomicU64) }
}

/// The `u32` at byte offset `off` of the shared info page, read once.
fn si_u32(off: usize) -> u32 {
    debug_assert!(off.is_multiple_of(4) && off + 4 <= PAGE_SIZE as usize);
    // SAFETY: inside the page and aligned; Xen may write it concurrently,
    // hence a volatile read.
    unsafe { core::ptr::read_volatile(shared_info().add(off) as *const u32) }
}

/// The `u64` at byte offset `off` of the shared info page, read once.
fn si_u64(off: usize) -> u64 {
    debug_assert!(off.is_multiple_of(8) && off + 8 <= PAGE_SIZE as usize);
    // SAFETY: as in `si_u32`.
    unsafe { core::ptr::read_volatile(shared_info().add(off) as *const u64) }
}

/// The time stamp counter.
fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the time stamp counter.
    unsafe { core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack, nomem)) };
    u64::from(hi) << 32 | u64::from(lo)
}

impl Events {
    /// Maps the shared info page, binds `VIRQ_V4V` on vCPU 0 (a global
    /// VIRQ) and masks the port. `Err` carries the failing step and Xen's
    /// return value.
    pub fn init(hc: Hypercalls) -> Result<Events, (&'static str, i64)> {
        let si = shared_info() as u64;
        let r = hc.add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, si / PAGE_SIZE);
        if r != 0 {
            return Err(("XENMEM_add_to_physmap(shared_info)", r));
        }
        let v4v = bind_virq(&hc, VIRQ_V4V, "EVTCHNOP_bind_virq(VIRQ_V4V)")?;
        Ok(Events { hc, v4v })
    }

    /// The hypercalls.
    pub fn hypercalls(&self) -> Hypercalls {
        self.hc
    }

    /// The event channel port `VIRQ_V4V` is bound to.
    pub fn port(&self) -> u32 {
        self.v4v.0
    }

    /// The `VIRQ_V4V` port as a [`Port`].
    pub fn v4v(&self) -> Port {
        self.v4v
    }

    /// Binds `virq` (a global VIRQ such as [`VIRQ_ARGO`]) on vCPU 0 and
    /// masks the port. `Err` is the step and Xen's value.
    pub fn bind_virq(&self, virq: u32) -> Result<Port, (&'static str, i64)> {
        bind_virq(&self.hc, virq, "EVTCHNOP_bind_virq")
    }

    /// Takes a port another module bound (for example with
    /// `EVTCHNOP_bind_interdomain` or `EVTCHNOP_alloc_unbound`): masks it
    /// and returns its handle. `Err` if the number is not a 2-level port.
    pub fn adopt(&self, port: u32) -> Result<Port, (&'static str, i64)> {
        if port == 0 || port >= PORTS_MAX {
            return Err(("adopt: port out of range", i64::from(port)));
        }
        let p = Port(port);
        p.mask();
        Ok(p)
    }

    /// `EVTCHNOP_send` on `port`: raises the event at the other end of an
    /// interdomain port. `Err` is Xen's value.
    #[allow(dead_code)] // For interdomain ports: vchan (tests/boot/src/vchan.rs).
    pub fn notify(&self, port: Port) -> Result<(), i64> {
        let mut a = [port.0];
        let r = self.hc.call(EVENT_CHANNEL_OP, [EVTCHNOP_SEND, a.as_mut_ptr() as u64, 0, 0, 0]);
        if r != 0 {
            return Err(r);
        }
        Ok(())
    }

    /// Clears the `VIRQ_V4V` port's pending bit (see [`Port::clear`]).
    pub fn clear(&self) {
        self.v4v.clear()
    }

    /// `SCHEDOP_poll` on `ports` (none: until any event or the timeout)
    /// with an absolute timeout (0: none).
    fn poll(&self, ports: &[Port], timeout: u64) -> i64 {
        debug_assert!(ports.len() <= POLL_PORTS_MAX);
        let mut port = [0u32; POLL_PORTS_MAX];
        for (d, p) in port.iter_mut().zip(ports) {
            *d = p.0;
        }
        let a = addr_of_mut!(POLL_ARGS);
        // SAFETY: single vCPU, and nothing else touches POLL_ARGS; the
        // hypercall reads it at its identity-mapped address.
        unsafe {
            a.write_volatile(PollArgs {
                ports: core::ptr::addr_of!((*a).port) as u64,
                nr_ports: ports.len().min(POLL_PORTS_MAX) as u64,
                timeout,
                port,
            });
        }
        self.hc.call(SCHED_OP, [SCHEDOP_POLL, a as u64, 0, 0, 0])
    }

    /// Blocks until one of `ports` (1 to [`POLL_PORTS_MAX`]) is pending or
    /// `deadline` (Xen system time, ns) passes. Clears nothing. `Err` is a
    /// failed poll (`-EINVAL` for no port or too many).
    pub fn wait_any(&self, ports: &[Port], deadline: Option<u64>) -> Result<Wake, i64> {
        if ports.is_empty() || ports.len() > POLL_PORTS_MAX {
            return Err(Errno::EINVAL.to_ret());
        }
        let any = || ports.iter().any(|p| p.pending());
        if let Some(d) = deadline {
            if !any() && now_ns() >= d {
                return Ok(Wake::Timeout);
            }
        }
        let r = self.poll(ports, deadline.unwrap_or(0));
        if r != 0 {
            return Err(r);
        }
        Ok(if any() {
            Wake::Event
        } else if deadline.is_some_and(|d| now_ns() >= d) {
            Wake::Timeout
        } else {
            Wake::Spurious
        })
    }

    /// Blocks until the `VIRQ_V4V` port is pending or `deadline` (Xen
    /// system time, ns) passes. Does not clear the bit. `Err` is a failed poll.
    pub fn wait(&self, deadline: Option<u64>) -> Result<Wake, i64> {
        self.wait_any(&[self.v4v], deadline)
    }

    /// Sleeps until `ms` milliseconds have passed, whatever events arrive
    /// meanwhile (their pending bits stay set for the caller to see).
    pub fn sleep_ms(&self, ms: u64) -> Result<(), i64> {
        let deadline = now_ns().saturating_add(ms.saturating_mul(1_000_000));
        // Bounded by the deadline: each poll returns at the latest when it
        // passes, and an event that is already pending cannot end a poll of
        // no ports early (only a new one can, once per clear).
        while now_ns() < deadline {
            let r = self.poll(&[], deadline);
            if r != 0 {
                return Err(r);
            }
        }
        Ok(())
    }
}

/// `EVTCHNOP_bind_virq` of `virq` on vCPU 0, and masks the port (the
/// shared info page must be mapped). `Err` is the step (`what` for the
/// bind itself) and Xen's value.
fn bind_virq(hc: &Hypercalls, virq: u32, what: &'static str) -> Result<Port, (&'static str, i64)> {
    // struct evtchn_bind_virq: virq, vcpu, port (OUT).
    let mut b = [0u32; 3];
    b[0] = virq;
    let r = hc.call(EVENT_CHANNEL_OP, [EVTCHNOP_BIND_VIRQ, b.as_mut_ptr() as u64, 0, 0, 0]);
    if r != 0 {
        return Err((what, r));
    }
    // SAFETY: Xen wrote the port through the pointer; read it back
    // volatile so the compiler does not assume `b` unchanged.
    let port = unsafe { core::ptr::read_volatile(&b[2]) };
    if port == 0 || port >= PORTS_MAX {
        return Err(("EVTCHNOP_bind_virq port", i64::from(port)));
    }
    let p = Port(port);
    p.mask();
    Ok(p)
}

/// Blocks forever in `SCHEDOP_poll` on no port and without a timeout,
/// touching nothing else (no shared info, no event channel): an idle guest
/// that holds no state in Xen beyond what every domain has. Any event on
/// one of the domain's ports ends a poll; its pending bit then stays set,
/// so it cannot end another.
pub fn block_forever(hc: &Hypercalls) -> ! {
    let a = addr_of_mut!(POLL_ARGS);
    loop {
        // SAFETY: as in `Events::poll`.
        unsafe {
            a.write_volatile(PollArgs {
                ports: core::ptr::addr_of!((*a).port) as u64,
                nr_ports: 0,
                timeout: 0,
                port: [0; POLL_PORTS_MAX],
            });
        }
        hc.call(SCHED_OP, [SCHEDOP_POLL, a as u64, 0, 0, 0]);
    }
}

/// Xen system time in ns (`vcpu_info[0].time`, the PV clock), or 0 before
/// [`Events::init`] mapped the page.
pub fn now_ns() -> u64 {
    let t = SI_TIME;
    for _ in 0..TIME_READ_TRIES_MAX {
        let v = si_u32(t + TIME_VERSION);
        if v & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        let tsc_timestamp = si_u64(t + TIME_TSC_TIMESTAMP);
        let system_time = si_u64(t + TIME_SYSTEM_TIME);
        let mul = si_u32(t + TIME_TSC_TO_SYSTEM_MUL);
        let shift = (si_u32(t + TIME_TSC_SHIFT) & 0xff) as u8 as i8;
        let tsc = rdtsc();
        core::sync::atomic::fence(Ordering::Acquire);
        if si_u32(t + TIME_VERSION) != v {
            continue;
        }
        let mut delta = tsc.wrapping_sub(tsc_timestamp);
        if shift >= 0 {
            delta <<= shift;
        } else {
            delta >>= -(shift as i32);
        }
        return system_time.wrapping_add(((u128::from(delta) * u128::from(mul)) >> 32) as u64);
    }
    0
}
