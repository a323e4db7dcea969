//! The two-domain benchmark (issue 16 point 3, `make bench-xen-2dom`):
//! guest `a` measures one-way streaming throughput and ping-pong round-trip
//! latency to guest `b` over several channels. The contract (roles, keys,
//! output lines, fairness rules) is `/work/notes/bench2-spec.md`, summed up
//! in `tests/boot/README.md` ("Two-domain benchmark").
//!
//! - `bench2=b`: the passive side; prints `bench2: ready role=b dom D` and
//!   serves `a`'s commands forever.
//! - `bench2=a peer=D [chans=v4v,v4vb,argo,vchan] [sizes=64,1024,16384,65536]
//!   [reps=3]`: the active side; prints one `bench2: result ...` line per
//!   measurement, then `bench2: done results=N`, and powers off.
//!
//! # Channels: the [`Chan`] trait
//!
//! A channel carries messages both ways between `a` and `b`; the driver
//! sees it only through [`Chan`] (blocking calls; every wait is a
//! `SCHEDOP_poll` on the channel's event port, see [`crate::evtchn`]):
//!
//! - [`Chan::send`] sends one message whole, blocking (asking to be woken:
//!   V4V `OP_NOTIFY` with `RD_F_WAKE`, Argo's notify with a space request,
//!   vchan's "notify me on read" bit) while there is no room for it.
//! - [`Chan::send_batch`] sends a prefix of several messages (at least one,
//!   blocking as `send` until then) and returns how many went; the default
//!   sends one with `send`. Only `v4vb` overrides it (`OP_SENDV_BATCH`).
//! - [`Chan::recv`] receives the next message into `buf`, blocking until
//!   there is one. `buf.len()` is the size the driver expects: a message
//!   channel fails if the message is longer than `buf` and returns its
//!   length; a byte-stream channel (vchan) reads exactly `buf.len()` bytes
//!   and returns that. Before blocking, a receiver that consumed data tells
//!   the other side (V4V/Argo notify op, vchan's "notify on read" bit), so a
//!   sender waiting for space is woken.
//! - [`Chan::recv_each`] receives up to `max` messages of `buf.len()`
//!   bytes in one go (at least one, blocking until then), handing each to
//!   `f`; the default is one `recv`. `v4vb` overrides it with
//!   `RingReader::recv_batch` (one `rx_ptr` store per batch).
//! - [`Chan::close`] releases what the side holds (rings, grants, ports).
//!   `a` closes first, then `b` (a client unmaps before the server ends
//!   its grants).
//!
//! Opening is two steps, `b` first: `b` opens its end with `a`'s domid
//! (learned from the control message Xen stamped) and may hand `a` up to
//! [`BLOB_MAX`] bytes (for vchan: the grant references and the event port)
//! over the control ring; then `a` opens its end with `b`'s domid and that
//! blob. For a channel type `X`, the two openers are
//!
//! ```text
//! fn open_b(ev: Events, peer: u16, blob: &mut [u8; BLOB_MAX]) -> Result<(X, usize), Fail>  // blob bytes used
//! fn open_a(ev: Events, peer: u16, blob: &[u8]) -> Result<X, Fail>
//! ```
//!
//! and one arm each in [`open_b`] and [`open_a`] wires it in. A channel
//! that Xen does not offer fails its open with `-ENOSYS` or `-EOPNOTSUPP`
//! in [`Fail::errno`]; the driver then prints `bench2: skip chan=X
//! errno=-38` and goes on. Any other failure is `bench2: FATAL <what>
//! <errno>` and a power-off.
//!
//! Event ports: [`Events`] holds the shared info page; a channel binds or
//! adopts its ports through it ([`Events::bind_virq`] for `VIRQ_V4V` /
//! [`crate::evtchn::VIRQ_ARGO`], [`Events::adopt`] for an interdomain port
//! bound with `EVTCHNOP_bind_interdomain` or `EVTCHNOP_alloc_unbound`),
//! clears a port ([`crate::evtchn::Port::clear`]), checks its ring, then
//! waits with [`wait`] (which fails with `-ETIMEDOUT` after [`WAIT_NS`]),
//! and raises the other end's event with [`Events::notify`].

#![allow(dead_code)] // The driver lands next; the channels use all of it.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::cmdline::Cmdline;
use crate::evtchn::{now_ns, Events, Port, Wake};
use crate::xen::{Console, Hypercalls};

/// Most bytes `b` hands `a` when opening a channel.
pub const BLOB_MAX: usize = 512;
/// Longest single wait (Xen system time, ns) before a channel gives up with
/// `-ETIMEDOUT`: 120 s (under `-icount` 1 ns is one instruction of the
/// whole machine, so this is generous).
pub const WAIT_NS: u64 = 120_000_000_000;
/// `-ETIMEDOUT`.
const ETIMEDOUT: i64 = -110;
/// `-ENOSYS`, `-EOPNOTSUPP`: the channel is not there.
const ENOSYS: i64 = -38;
const EOPNOTSUPP: i64 = -95;

/// Why a channel operation failed: what, and the hypercall's `-errno` (or
/// another negative number the module documents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fail {
    /// The step, e.g. `"v4v sendv"`.
    pub what: &'static str,
    /// Xen's return value.
    pub errno: i64,
}

impl Fail {
    /// A failure of `what` with Xen's value `errno`.
    pub const fn new(what: &'static str, errno: i64) -> Fail {
        Fail { what, errno }
    }

    /// Whether it means the channel is not available on this Xen.
    pub fn unavailable(&self) -> bool {
        self.errno == ENOSYS || self.errno == EOPNOTSUPP
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.what, self.errno)
    }
}

/// A channel between `a` and `b` (see the module docs).
pub trait Chan {
    /// Its name in the result lines: `v4v`, `v4vb`, `argo`, `vchan`.
    fn name(&self) -> &'static str;
    /// Sends `msg` whole, blocking while there is no room.
    fn send(&mut self, msg: &[u8]) -> Result<(), Fail>;
    /// Sends `msgs[0..k]` for some `k >= 1` (blocking until at least one
    /// went) and returns `k`.
    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize, Fail> {
        match msgs.first() {
            Some(m) => self.send(m).map(|()| 1),
            None => Ok(0),
        }
    }
    /// Receives the next message into `buf` (whose length is the size
    /// expected), blocking until there is one; returns its length.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Fail>;
    /// Receives between 1 and `max` messages of `buf.len()` bytes, each
    /// copied into `buf` and handed to `f`; returns how many.
    fn recv_each(&mut self, buf: &mut [u8], max: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize, Fail> {
        if max == 0 {
            return Ok(0);
        }
        let n = self.recv(buf)?;
        f(&buf[..n]);
        Ok(1)
    }
    /// Releases this side's end.
    fn close(&mut self) -> Result<(), Fail>;
}

/// Blocks until one of `ports` is pending, at most [`WAIT_NS`]. `what`
/// names the wait in the failure (`-ETIMEDOUT`, or the failed poll).
pub fn wait(ev: &Events, ports: &[Port], what: &'static str) -> Result<(), Fail> {
    let deadline = now_ns().saturating_add(WAIT_NS);
    loop {
        match ev.wait_any(ports, Some(deadline)) {
            Ok(Wake::Event) => return Ok(()),
            Ok(Wake::Timeout) => return Err(Fail::new(what, ETIMEDOUT)),
            // Re-poll: the caller's condition is re-checked by the caller
            // after an event only.
            Ok(Wake::Spurious) => continue,
            Err(r) => return Err(Fail::new(what, r)),
        }
    }
}

/// Prints `bench2: ` and the line (port 0xE9).
fn say(hc: &Hypercalls, args: fmt::Arguments<'_>) {
    let mut c = Console::new(hc);
    // The console writer never fails.
    let _ = c.write_str("bench2: ");
    let _ = c.write_fmt(args);
    let _ = c.write_str("\n");
}

macro_rules! say {
    ($hc:expr, $($a:tt)*) => { say(&$hc, format_args!($($a)*)) };
}

/// Prints `bench2: FATAL ...` and powers off.
fn fatal(hc: &Hypercalls, args: fmt::Arguments<'_>) -> ! {
    say(hc, format_args!("FATAL {args}"));
    hc.poweroff()
}

macro_rules! fatal {
    ($hc:expr, $($a:tt)*) => { fatal(&$hc, format_args!($($a)*)) };
}

/// Whether the kernel runs a `bench2=` role (fatal lines then start with
/// `bench2: FATAL`).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether the kernel runs a `bench2=` role.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Runs the role `bench2=` names; never returns.
pub fn run(hc: Hypercalls, cmdline: Cmdline<'_>) -> ! {
    crate::xen::use_debugcon();
    ACTIVE.store(true, Ordering::Relaxed);
    say!(hc, "up, cmdline '{}'", cmdline.text());
    let ev = match Events::init(hc) {
        Ok(ev) => ev,
        Err((step, r)) => fatal!(hc, "{step} {r}"),
    };
    let _ = ev;
    fatal!(hc, "role not implemented yet {}", ENOSYS)
}
