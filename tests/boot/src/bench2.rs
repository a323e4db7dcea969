//! The two-domain benchmark (issue 16 point 3, `make bench-xen-2dom`):
//! guest `a` measures one-way streaming throughput and ping-pong round-trip
//! latency to guest `b` over several channels. Roles, keys and output
//! lines: `tests/boot/README.md` ("Two-domain benchmark"); the harness and
//! the report: `tests/e2e/dom0/bench2.sh`, `tests/bench/xen2_report.py`.
//!
//! - `bench2=b`: the passive side; prints `bench2: ready role=b dom D` and
//!   serves `a`'s commands forever.
//! - `bench2=a peer=D [chans=v4v,v4vb,argo,vchan] [sizes=64,1024,16384,65536]
//!   [reps=3] [profile=1]`: the active side; prints one `bench2: result ...`
//!   line per measurement, then `bench2: done results=N`, and powers off.
//!   `profile=1`: the last repetition of each stream and ping-pong is also
//!   a counting window of the insn-prof QEMU plugin (`bench2: window seq=..` after its
//!   result; `make bench-xen-2dom-profile`).
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
//!
//! # The driver
//!
//! Control: each side registers a one-page V4V ring on [`CTL_PORT`] for
//! any sender, beside the measured rings; `a` sends `OPEN`, `RUN`, `CLOSE`
//! (a 32-byte header of little-endian words, then a blob), `b` answers
//! `OPENED` (its errno and blob) and `CLOSED`, and takes `a`'s domid from
//! the source Xen stamped on each message. A `RUN` names the mode, size,
//! count and warm-up; `b` then runs its side on the open channel, with no
//! control traffic until it is done.
//!
//! - `stream`: `a` sends 8 warm-up messages, `b` acks them (16 bytes: the
//!   count and a tag); then `a` reads the clock, sends `max(256, 4 MiB /
//!   size)` messages (`v4vb`: batches of 32, the rest of a partial batch
//!   again), `b` receives and acks them, and `a` reads the clock when the
//!   ack is in.
//! - `pingpong`: 4 warm-up round trips, then 64 timed ones; `b` echoes
//!   each message from its receive buffer.
//!
//! Every message is `size` bytes: its 8-byte little-endian sequence number
//! (from 0 in each run), then a pattern written into the send slots once
//! per size, outside the timed loops. `b` copies every message out and
//! checks its length and sequence number; `a` checks each echo and ack.
//! Only `a` reads the clock (`evtchn::now_ns`, Xen system time).
//!
//! Channels here: `v4v`/`v4vb` ([`V4vChan`]) and `argo` ([`ArgoChan`]),
//! each a 256 KiB ring per side registered for the partner only; `vchan`
//! is `crate::vchan`.

use core::fmt::{self, Write};
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, Ordering};

use hypercall_abi::ring::{prepare, RingError, RingMemory, RingReader};
use hypercall_abi::v4v::{self, BatchEnt, Iov, RegisterRing, RingData, RingDataEnt, SendAddr, UnregisterRing};
use hypercall_abi::{hypercall, DomId, Errno, PAGE_SIZE};

use crate::argo;
use crate::cmdline::{parse_number, Cmdline};
use crate::evtchn::{now_ns, Events, Port, Wake, VIRQ_ARGO};
use crate::xen::{prof_mark, Console, Hypercalls};

/// Most bytes `b` hands `a` when opening a channel.
pub const BLOB_MAX: usize = 512;
/// Longest single wait (Xen system time, ns) before a channel gives up with
/// `-ETIMEDOUT`: 120 s (under `-icount` 1 ns is one instruction of the
/// whole machine, so this is generous).
pub const WAIT_NS: u64 = 120_000_000_000;
/// `-ETIMEDOUT`.
const ETIMEDOUT: i64 = -110;
/// `-EMSGSIZE`: a message longer than the receiver expects.
const EMSGSIZE: i64 = -90;
/// `-EPROTO`: a message that breaks the benchmark's protocol.
const EPROTO: i64 = -71;
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

// ---------------------------------------------------------------------
// Memory: every buffer Xen reads or writes is a static (identity-mapped,
// so its address is its guest physical address).

/// Data bytes of every measured ring (spec: 256 KiB per direction).
const RING_LEN: u32 = 256 << 10;
/// Pages of a V4V ring of [`RING_LEN`] (64-byte header + data).
const V4V_RING_PAGES: usize = (RING_LEN as usize + v4v::RING_HEADER_BYTES as usize).div_ceil(PAGE_SIZE as usize);
/// Pages of an Argo ring of [`RING_LEN`].
const ARGO_RING_PAGES: usize = argo::ring_pages(RING_LEN);
/// Largest message (`sizes=`).
const MSG_MAX: usize = 64 << 10;
/// Messages per `OP_SENDV_BATCH` (spec: up to 32).
const BATCH: usize = 32;
/// The control ring: one page.
const CTL_RING_LEN: u32 = PAGE_SIZE as u32 - v4v::RING_HEADER_BYTES;
/// V4V ports: control, data. Argo's data port.
const CTL_PORT: u32 = 0xb2c0;
const V4V_PORT: u32 = 0xb2d0;
const ARGO_PORT: u32 = 0xb2e0;
/// Message type of every V4V/Argo message sent here.
const MSG_TYPE: u32 = 0xb2;

#[repr(C, align(4096))]
struct Pages<const N: usize>([u8; N]);

static mut CTL_RING: Pages<{ PAGE_SIZE as usize }> = Pages([0; PAGE_SIZE as usize]);
static mut V4V_RING: Pages<{ V4V_RING_PAGES * PAGE_SIZE as usize }> = Pages([0; V4V_RING_PAGES * PAGE_SIZE as usize]);
static mut ARGO_RING: Pages<{ ARGO_RING_PAGES * PAGE_SIZE as usize }> =
    Pages([0; ARGO_RING_PAGES * PAGE_SIZE as usize]);
/// Hypercall arguments (one call at a time): the struct at 0, a sendv's
/// iov right after its send address ([`ARGS_SEND_IOV`]), a batch's iovs or
/// notify entries at [`ARGS_IOVS`], gfn lists at [`ARGS_GFNS`].
static mut ARGS: Pages<{ 2 * PAGE_SIZE as usize }> = Pages([0; 2 * PAGE_SIZE as usize]);
const ARGS_IOVS: usize = 2048;
/// A sendv's iov (V4V and Argo alike): right after the 16-byte send
/// address, the layout `public/v4v.h` suggests and `make bench-xen` uses,
/// which V4V reads with one guest copy (rust-hv `send.rs`, `ArgsCopy`);
/// 2 KiB away it took a second guest translation, about 3,950
/// instructions per message.
const ARGS_SEND_IOV: usize = core::mem::size_of::<SendAddr>();
const _: () = assert!(core::mem::size_of::<SendAddr>() == core::mem::size_of::<argo::SendAddr>());
const ARGS_GFNS: usize = PAGE_SIZE as usize;
/// The sender's messages: [`BATCH`] slots of [`MSG_MAX`] (slot `i` at
/// `i * size` for the size measured, so a batch's payloads are contiguous).
static mut TX: Pages<{ BATCH * MSG_MAX }> = Pages([0; BATCH * MSG_MAX]);
/// The receiver's buffer.
static mut RX: Pages<MSG_MAX> = Pages([0; MSG_MAX]);
/// Control messages, in and out.
static mut CTL_BUF: Pages<{ CTL_MSG_MAX }> = Pages([0; CTL_MSG_MAX]);

fn args() -> *mut u8 {
    addr_of_mut!(ARGS) as *mut u8
}

/// Writes `v` at byte `off` of the argument pages.
fn put<T: Copy>(off: usize, v: T) {
    assert!(off + core::mem::size_of::<T>() <= 2 * PAGE_SIZE as usize);
    // SAFETY: inside ARGS (checked), which only these helpers touch, one
    // hypercall at a time; unaligned writes of plain-data structs.
    unsafe { core::ptr::write_unaligned(args().add(off) as *mut T, v) }
}

/// Reads a `T` at byte `off` of the argument pages (Xen wrote it).
fn get<T: Copy>(off: usize) -> T {
    assert!(off + core::mem::size_of::<T>() <= 2 * PAGE_SIZE as usize);
    // SAFETY: as in `put`; volatile because Xen wrote it behind the
    // compiler's back.
    unsafe { core::ptr::read_volatile(args().add(off) as *const T) }
}

/// Puts the gfns of `pages` pages from `base` in the argument pages'
/// gfn list; returns its address.
fn gfn_list(base: *mut u8, pages: usize) -> u64 {
    for i in 0..pages {
        put(ARGS_GFNS + 8 * i, (base as u64 + i as u64 * PAGE_SIZE) / PAGE_SIZE);
    }
    args() as u64 + ARGS_GFNS as u64
}

/// A ring's memory for hypercall-abi's reader: plain copies (the reader
/// only reads data Xen published, and only writes `rx_ptr`).
struct Mem {
    base: *mut u8,
    bytes: usize,
}

impl RingMemory for Mem {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        if offset.checked_add(buf.len()).is_none_or(|end| end > self.bytes) {
            return Err(RingError::Fault);
        }
        // The reader reads `tx_ptr`, then the data Xen published before
        // it: keep the compiler from reordering the two (x86 keeps loads in
        // order).
        compiler_fence(Ordering::SeqCst);
        // SAFETY: inside the ring's pages (checked), a static of this
        // module not otherwise borrowed.
        unsafe { core::ptr::copy_nonoverlapping(self.base.add(offset), buf.as_mut_ptr(), buf.len()) };
        compiler_fence(Ordering::SeqCst);
        Ok(())
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        if offset.checked_add(buf.len()).is_none_or(|end| end > self.bytes) {
            return Err(RingError::Fault);
        }
        compiler_fence(Ordering::SeqCst);
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), self.base.add(offset), buf.len()) };
        compiler_fence(Ordering::SeqCst);
        Ok(())
    }
}

// ---------------------------------------------------------------------
// V4V: the control ring and the `v4v` / `v4vb` channels.

fn v4v_op(hc: &Hypercalls, cmd: u32, a: [u64; 4]) -> i64 {
    hc.call(hypercall::V4V_OP, [u64::from(cmd), a[0], a[1], a[2], a[3]])
}

/// Prepares and registers a V4V ring of `len` data bytes at `base` for
/// `partner` on `port`; returns its reader.
fn v4v_register(
    hc: &Hypercalls,
    base: *mut u8,
    bytes: usize,
    port: u32,
    partner: u16,
    len: u32,
) -> Result<RingReader<Mem>, Fail> {
    let reg = RegisterRing { port, partner, len, ..Default::default() };
    let pages = reg.pages() as usize;
    let mut mem = Mem { base, bytes: pages * PAGE_SIZE as usize };
    if mem.bytes > bytes {
        return Err(Fail::new("v4v ring too big for its area", Errno::EINVAL.to_ret()));
    }
    // SAFETY: the ring's own pages, not registered (so Xen does not touch
    // them) and not borrowed.
    unsafe { core::ptr::write_bytes(base, 0, mem.bytes) };
    prepare(&mut mem, len, 0).map_err(|_| Fail::new("v4v ring prepare", Errno::EINVAL.to_ret()))?;
    put(0, reg);
    let gfns = gfn_list(base, pages);
    let r = v4v_op(hc, v4v::OP_REGISTER_RING, [args() as u64, gfns, pages as u64, 0]);
    if r != 0 {
        return Err(Fail::new("v4v register_ring", r));
    }
    RingReader::new(mem, len).map_err(|_| Fail::new("v4v ring reader", Errno::EIO.to_ret()))
}

fn v4v_unregister(hc: &Hypercalls, port: u32, partner: u16) -> i64 {
    put(0, UnregisterRing { port, partner, pad: 0 });
    v4v_op(hc, v4v::OP_UNREGISTER_RING, [args() as u64, 0, 0, 0])
}

/// One `OP_SENDV` of `msg` to (`dst`, `port`) from `port`.
fn v4v_sendv(hc: &Hypercalls, dst: u16, port: u32, msg: &[u8]) -> i64 {
    let src = v4v::Addr { port, domain: DomId::SELF_.0, pad: 0 };
    put(0, SendAddr { src, dst: v4v::Addr { port, domain: dst, pad: 0 } });
    put(ARGS_SEND_IOV, Iov { base: msg.as_ptr() as u64, len: msg.len() as u32, pad: 0 });
    v4v_op(hc, v4v::OP_SENDV, [args() as u64, args() as u64 + ARGS_SEND_IOV as u64, 1, u64::from(MSG_TYPE)])
}

/// `OP_NOTIFY` with one entry: wake me when `space` bytes fit in (`dst`,
/// `port`). The entry's `RD_F_*` flags.
fn v4v_notify_wake(hc: &Hypercalls, dst: u16, port: u32, space: u32) -> Result<u16, Fail> {
    put(ARGS_IOVS, RingData { nent: 1, pad: 0, reserved: 0 });
    let e = ARGS_IOVS + core::mem::size_of::<RingData>();
    let ent = RingDataEnt {
        ring: v4v::Addr { port, domain: dst, pad: 0 },
        flags: v4v::RD_F_WAKE,
        space_required: space,
        ..Default::default()
    };
    put(e, ent);
    match v4v_op(hc, v4v::OP_NOTIFY, [args() as u64 + ARGS_IOVS as u64, 0, 0, 0]) {
        0 => Ok(get::<RingDataEnt>(e).flags),
        r => Err(Fail::new("v4v notify (wake request)", r)),
    }
}

/// `OP_NOTIFY` without entries: Xen re-reads this domain's `rx_ptr`s and
/// wakes senders waiting for the space.
fn v4v_notify(hc: &Hypercalls) -> Result<(), Fail> {
    match v4v_op(hc, v4v::OP_NOTIFY, [0; 4]) {
        0 => Ok(()),
        r => Err(Fail::new("v4v notify", r)),
    }
}

/// Sends `msg` to (`dst`, `port`), blocking on `VIRQ_V4V` while the ring
/// is full (after asking to be woken).
fn v4v_send_waiting(ev: &Events, dst: u16, port: u32, msg: &[u8], what: &'static str) -> Result<(), Fail> {
    let hc = ev.hypercalls();
    loop {
        ev.clear();
        let r = v4v_sendv(&hc, dst, port, msg);
        if r == msg.len() as i64 {
            return Ok(());
        }
        if r != Errno::EAGAIN.to_ret() {
            return Err(Fail::new(what, r));
        }
        if v4v_notify_wake(&hc, dst, port, msg.len() as u32)? & v4v::RD_F_SUFFICIENT != 0 {
            continue;
        }
        wait(ev, &[ev.v4v()], "v4v wait for space")?;
    }
}

/// Takes the next message from `reader` into `buf` (at most `buf.len()`
/// bytes), blocking on `VIRQ_V4V`; notifies Xen of consumed space
/// (`dirty`) before each block. Its header.
fn v4v_recv_waiting(
    ev: &Events,
    reader: &mut RingReader<Mem>,
    dirty: &mut bool,
    buf: &mut [u8],
) -> Result<v4v::MsgHeader, Fail> {
    loop {
        match reader.recv(buf) {
            Ok(Some(m)) => {
                *dirty = true;
                return Ok(m.header);
            }
            Ok(None) => {}
            Err(RingError::BufferTooSmall { .. }) => return Err(Fail::new("v4v recv: message too long", EMSGSIZE)),
            Err(_) => return Err(Fail::new("v4v recv: ring corrupt", Errno::EIO.to_ret())),
        }
        v4v_block(ev, reader, dirty)?;
    }
}

/// Before blocking on an empty V4V ring: notify Xen if space was freed,
/// clear the port, and block unless data came meanwhile.
fn v4v_block(ev: &Events, reader: &RingReader<Mem>, dirty: &mut bool) -> Result<(), Fail> {
    if *dirty {
        v4v_notify(&ev.hypercalls())?;
        *dirty = false;
    }
    ev.clear();
    match reader.is_empty() {
        Ok(true) => wait(ev, &[ev.v4v()], "v4v wait for data"),
        Ok(false) => Ok(()),
        Err(_) => Err(Fail::new("v4v recv: tx_ptr corrupt", Errno::EIO.to_ret())),
    }
}

/// `v4v` (one `OP_SENDV` per message) or `v4vb` (`OP_SENDV_BATCH` and
/// `recv_batch`): a 256 KiB ring on each side for the partner only.
pub struct V4vChan {
    ev: Events,
    peer: u16,
    reader: RingReader<Mem>,
    batched: bool,
    dirty: bool,
}

impl V4vChan {
    fn open(ev: Events, peer: u16, batched: bool) -> Result<V4vChan, Fail> {
        let base = addr_of_mut!(V4V_RING) as *mut u8;
        let bytes = V4V_RING_PAGES * PAGE_SIZE as usize;
        let reader = v4v_register(&ev.hypercalls(), base, bytes, V4V_PORT, peer, RING_LEN)?;
        Ok(V4vChan { ev, peer, reader, batched, dirty: false })
    }
}

impl Chan for V4vChan {
    fn name(&self) -> &'static str {
        if self.batched {
            "v4vb"
        } else {
            "v4v"
        }
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), Fail> {
        v4v_send_waiting(&self.ev, self.peer, V4V_PORT, msg, "v4v sendv")
    }

    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize, Fail> {
        if !self.batched || msgs.len() <= 1 {
            return match msgs.first() {
                Some(m) => self.send(m).map(|()| 1),
                None => Ok(0),
            };
        }
        let n = msgs.len().min(BATCH);
        let addr = SendAddr {
            src: v4v::Addr { port: V4V_PORT, domain: DomId::SELF_.0, pad: 0 },
            dst: v4v::Addr { port: V4V_PORT, domain: self.peer, pad: 0 },
        };
        for (i, m) in msgs[..n].iter().enumerate() {
            let e = BatchEnt { addr, iov_first: i as u32, niov: 1, msg_type: MSG_TYPE, status: 0 };
            put(i * core::mem::size_of::<BatchEnt>(), e);
            put(
                ARGS_IOVS + i * core::mem::size_of::<Iov>(),
                Iov { base: m.as_ptr() as u64, len: m.len() as u32, pad: 0 },
            );
        }
        let hc = self.ev.hypercalls();
        loop {
            self.ev.clear();
            let r =
                v4v_op(&hc, v4v::OP_SENDV_BATCH, [args() as u64, args() as u64 + ARGS_IOVS as u64, n as u64, n as u64]);
            if r > 0 && r as usize <= n {
                return Ok(r as usize);
            }
            if r != Errno::EAGAIN.to_ret() {
                return Err(Fail::new("v4v sendv_batch", r));
            }
            // The notify rewrites the argument page's iov area: put the
            // entries' iovs back after it.
            let f = v4v_notify_wake(&hc, self.peer, V4V_PORT, msgs[0].len() as u32)?;
            for (i, m) in msgs[..n].iter().enumerate() {
                let iov = Iov { base: m.as_ptr() as u64, len: m.len() as u32, pad: 0 };
                put(ARGS_IOVS + i * core::mem::size_of::<Iov>(), iov);
            }
            if f & v4v::RD_F_SUFFICIENT == 0 {
                wait(&self.ev, &[self.ev.v4v()], "v4v wait for space")?;
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Fail> {
        let h = v4v_recv_waiting(&self.ev, &mut self.reader, &mut self.dirty, buf)?;
        if h.source.domain != self.peer {
            return Err(Fail::new("v4v recv: message from another domain", EPROTO));
        }
        Ok(h.len as usize)
    }

    fn recv_each(&mut self, buf: &mut [u8], max: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize, Fail> {
        if !self.batched {
            if max == 0 {
                return Ok(0);
            }
            let n = self.recv(buf)?;
            f(&buf[..n]);
            return Ok(1);
        }
        loop {
            match self.reader.recv_batch(buf, max, |_, m| f(m)) {
                Ok(0) => {}
                Ok(n) => {
                    self.dirty = true;
                    return Ok(n);
                }
                Err(RingError::BufferTooSmall { .. }) => {
                    return Err(Fail::new("v4v recv_batch: message too long", EMSGSIZE))
                }
                Err(_) => return Err(Fail::new("v4v recv_batch: ring corrupt", Errno::EIO.to_ret())),
            }
            v4v_block(&self.ev, &self.reader, &mut self.dirty)?;
        }
    }

    fn close(&mut self) -> Result<(), Fail> {
        match v4v_unregister(&self.ev.hypercalls(), V4V_PORT, self.peer) {
            0 => Ok(()),
            r => Err(Fail::new("v4v unregister_ring", r)),
        }
    }
}

// ---------------------------------------------------------------------
// Argo.

/// An Argo hypercall; its value sign-extended from 32 bits when it is an
/// error that came back zero-extended. Xen's `sendv` (common/argo.c) ends
/// with `return (ret < 0) ? ret : len;`, `ret` an `int` and `len` an
/// `unsigned int`: the conditional's type is unsigned, so every sendv
/// error reaches the guest as a 32-bit unsigned number (`-EAGAIN` as
/// 4294967285).
fn argo_op(hc: &Hypercalls, cmd: u64, a: [u64; 4]) -> i64 {
    let r = hc.call(hypercall::ARGO_OP, [cmd, a[0], a[1], a[2], a[3]]);
    if (0xffff_f001..=0xffff_ffff).contains(&r) {
        i64::from(r as u32 as i32)
    } else {
        r
    }
}

/// The port `VIRQ_ARGO` is bound to (0: not yet; bound at the first Argo
/// open, kept for the kernel's life).
static ARGO_VIRQ_PORT: AtomicU32 = AtomicU32::new(0);

/// `argo`: a 256 KiB ring on each side for the partner only,
/// `VIRQ_ARGO`.
pub struct ArgoChan {
    ev: Events,
    port: Port,
    peer: u16,
    ring: *mut u8,
    rx: u32,
    dirty: bool,
}

impl ArgoChan {
    /// Registers the ring first (so a Xen without Argo answers `-ENOSYS`
    /// or `-EOPNOTSUPP` before anything else is tried), then binds
    /// `VIRQ_ARGO` (once for the kernel's life).
    fn open(ev: Events, peer: u16) -> Result<ArgoChan, Fail> {
        let hc = ev.hypercalls();
        let ring = addr_of_mut!(ARGO_RING) as *mut u8;
        // SAFETY: the ring's pages, not registered yet, not borrowed.
        unsafe { core::ptr::write_bytes(ring, 0, ARGO_RING_PAGES * PAGE_SIZE as usize) };
        put(0, argo::RegisterRing { aport: ARGO_PORT, partner_id: peer, pad: 0, len: RING_LEN });
        let gfns = gfn_list(ring, ARGO_RING_PAGES);
        let r = argo_op(&hc, argo::OP_REGISTER_RING, [args() as u64, gfns, ARGO_RING_PAGES as u64, 0]);
        if r != 0 {
            return Err(Fail::new("argo register_ring", r));
        }
        let port = match ARGO_VIRQ_PORT.load(Ordering::Relaxed) {
            0 => ev.bind_virq(VIRQ_ARGO).inspect(|p| ARGO_VIRQ_PORT.store(p.number(), Ordering::Relaxed)),
            n => ev.adopt(n),
        };
        let mut ch = ArgoChan { ev, port: ev.v4v(), peer, ring, rx: 0, dirty: false };
        match port {
            Ok(p) => {
                ch.port = p;
                Ok(ch)
            }
            Err((what, r)) => {
                // Not usable without its VIRQ: give the ring back.
                let _ = ch.close();
                Err(Fail::new(what, r))
            }
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        // SAFETY: inside the ring's pages; Xen may write it concurrently.
        unsafe { core::ptr::read_volatile(self.ring.add(off) as *const u32) }
    }

    /// Takes the next message into `buf`, if there is one: its length.
    fn take(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Fail> {
        let corrupt = Fail::new("argo recv: ring corrupt", Errno::EIO.to_ret());
        let tx = self.u32_at(argo::RING_TX_PTR);
        if tx == self.rx {
            return Ok(None);
        }
        // The data Xen published before `tx_ptr` is read after it.
        compiler_fence(Ordering::SeqCst);
        if tx >= RING_LEN || !tx.is_multiple_of(argo::SLOT_BYTES) {
            return Err(corrupt);
        }
        let used = if tx > self.rx { tx - self.rx } else { RING_LEN - (self.rx - tx) };
        let hdr = argo::RING_HEADER_BYTES + self.rx as usize;
        let total = self.u32_at(hdr);
        if total < argo::MSG_HEADER_BYTES || total.next_multiple_of(argo::SLOT_BYTES) > used {
            return Err(corrupt);
        }
        // SAFETY: the source domain id, inside the header just checked.
        let src = unsafe { core::ptr::read_volatile(self.ring.add(hdr + 8) as *const u16) };
        if src != self.peer {
            return Err(Fail::new("argo recv: message from another domain", EPROTO));
        }
        let n = (total - argo::MSG_HEADER_BYTES) as usize;
        if n > buf.len() {
            return Err(Fail::new("argo recv: message too long", EMSGSIZE));
        }
        let off = (self.rx + argo::MSG_HEADER_BYTES) % RING_LEN;
        let first = n.min((RING_LEN - off) as usize);
        // SAFETY: both ranges are inside the ring's data (n <= used) and
        // `buf`.
        unsafe {
            let data = self.ring.add(argo::RING_HEADER_BYTES);
            core::ptr::copy_nonoverlapping(data.add(off as usize), buf.as_mut_ptr(), first);
            if first < n {
                core::ptr::copy_nonoverlapping(data, buf.as_mut_ptr().add(first), n - first);
            }
        }
        self.rx = (self.rx + total.next_multiple_of(argo::SLOT_BYTES)) % RING_LEN;
        // The copy is done before `rx_ptr` frees its space.
        compiler_fence(Ordering::SeqCst);
        // SAFETY: rx_ptr in the ring header.
        unsafe { core::ptr::write_volatile(self.ring.add(argo::RING_RX_PTR) as *mut u32, self.rx) };
        self.dirty = true;
        Ok(Some(n))
    }

    /// Notify with one entry: wake me when `space` bytes fit in the
    /// peer's ring. The entry's flags.
    fn notify_space(&self, space: u32) -> Result<u16, Fail> {
        put(ARGS_IOVS, argo::RingData { nent: 1, pad: 0 });
        let e = ARGS_IOVS + core::mem::size_of::<argo::RingData>();
        let ent = argo::RingDataEnt {
            ring: argo::Addr { aport: ARGO_PORT, domain_id: self.peer, pad: 0 },
            flags: 0,
            pad: 0,
            space_required: space,
            max_message_size: 0,
        };
        put(e, ent);
        let r = argo_op(&self.ev.hypercalls(), argo::OP_NOTIFY, [args() as u64 + ARGS_IOVS as u64, 0, 0, 0]);
        if r != 0 {
            return Err(Fail::new("argo notify (space request)", r));
        }
        let f = get::<argo::RingDataEnt>(e).flags;
        if f & argo::RING_EXISTS == 0 || f & argo::RING_EMSGSIZE != 0 {
            return Err(Fail::new("argo notify: peer ring gone or too small", i64::from(f)));
        }
        Ok(f)
    }
}

impl Chan for ArgoChan {
    fn name(&self) -> &'static str {
        "argo"
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), Fail> {
        let hc = self.ev.hypercalls();
        loop {
            self.port.clear();
            put(
                0,
                argo::SendAddr {
                    src: argo::Addr { aport: ARGO_PORT, domain_id: argo::DOMID_ANY, pad: 0 },
                    dst: argo::Addr { aport: ARGO_PORT, domain_id: self.peer, pad: 0 },
                },
            );
            put(ARGS_SEND_IOV, argo::Iov { iov_hnd: msg.as_ptr() as u64, iov_len: msg.len() as u32, pad: 0 });
            let r = argo_op(
                &hc,
                argo::OP_SENDV,
                [args() as u64, args() as u64 + ARGS_SEND_IOV as u64, 1, u64::from(MSG_TYPE)],
            );
            if r == msg.len() as i64 {
                return Ok(());
            }
            if r != Errno::EAGAIN.to_ret() {
                return Err(Fail::new("argo sendv", r));
            }
            if self.notify_space(msg.len() as u32)? & argo::RING_SUFFICIENT != 0 {
                continue;
            }
            wait(&self.ev, &[self.port], "argo wait for space")?;
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Fail> {
        loop {
            if let Some(n) = self.take(buf)? {
                return Ok(n);
            }
            if self.dirty {
                let r = argo_op(&self.ev.hypercalls(), argo::OP_NOTIFY, [0; 4]);
                if r != 0 {
                    return Err(Fail::new("argo notify", r));
                }
                self.dirty = false;
            }
            self.port.clear();
            if self.u32_at(argo::RING_TX_PTR) == self.rx {
                wait(&self.ev, &[self.port], "argo wait for data")?;
            }
        }
    }

    fn close(&mut self) -> Result<(), Fail> {
        put(0, argo::UnregisterRing { aport: ARGO_PORT, partner_id: self.peer, pad: 0 });
        match argo_op(&self.ev.hypercalls(), argo::OP_UNREGISTER_RING, [args() as u64, 0, 0, 0]) {
            0 => Ok(()),
            r => Err(Fail::new("argo unregister_ring", r)),
        }
    }
}

// ---------------------------------------------------------------------
// The channel list.

/// The channels `chans=` may name, in the default order.
const CHANS: [&str; 4] = ["v4v", "v4vb", "argo", "vchan"];

/// An open channel of any kind.
enum AnyChan {
    V4v(V4vChan),
    Argo(ArgoChan),
    Vchan(crate::vchan::Vchan),
}

impl AnyChan {
    fn as_chan(&mut self) -> &mut dyn Chan {
        match self {
            AnyChan::V4v(c) => c,
            AnyChan::Argo(c) => c,
            AnyChan::Vchan(c) => c,
        }
    }
}

/// Opens `b`'s end of channel `name` for `peer` (`a`); fills `blob` for
/// `a` and returns its length.
fn open_b(name: &str, ev: Events, peer: u16, blob: &mut [u8; BLOB_MAX]) -> Result<(AnyChan, usize), Fail> {
    match name {
        "v4v" => Ok((AnyChan::V4v(V4vChan::open(ev, peer, false)?), 0)),
        "v4vb" => Ok((AnyChan::V4v(V4vChan::open(ev, peer, true)?), 0)),
        "argo" => Ok((AnyChan::Argo(ArgoChan::open(ev, peer)?), 0)),
        "vchan" => crate::vchan::open_b(ev, peer, blob).map(|(c, n)| (AnyChan::Vchan(c), n)),
        _ => Err(Fail::new("channel not built in", ENOSYS)),
    }
}

/// Opens `a`'s end of channel `name` for `peer` (`b`), with `b`'s blob.
fn open_a(name: &str, ev: Events, peer: u16, blob: &[u8]) -> Result<AnyChan, Fail> {
    match name {
        "v4v" => Ok(AnyChan::V4v(V4vChan::open(ev, peer, false)?)),
        "v4vb" => Ok(AnyChan::V4v(V4vChan::open(ev, peer, true)?)),
        "argo" => Ok(AnyChan::Argo(ArgoChan::open(ev, peer)?)),
        "vchan" => crate::vchan::open_a(ev, peer, blob).map(AnyChan::Vchan),
        _ => Err(Fail::new("channel not built in", ENOSYS)),
    }
}

// ---------------------------------------------------------------------
// The control ring: small V4V messages between `a` and `b`, on their own
// ring (port CTL_PORT, any sender) beside the measured ones.

/// Largest control message: the header and a blob.
const CTL_MSG_MAX: usize = CTL_HDR + BLOB_MAX;
/// Control header: `op, chan, mode, size, count, warm, errno, blob_len`,
/// little-endian `u32`s (`errno` as `i32`).
const CTL_HDR: usize = 32;

/// Control operations.
const OP_OPEN: u32 = 1;
const OP_OPENED: u32 = 2;
const OP_RUN: u32 = 3;
const OP_CLOSE: u32 = 4;
const OP_CLOSED: u32 = 5;

/// Modes.
const MODE_STREAM: u32 = 1;
const MODE_PINGPONG: u32 = 2;

/// A control message.
#[derive(Clone, Copy, Default)]
struct Ctl {
    op: u32,
    chan: u32,
    mode: u32,
    size: u32,
    count: u32,
    warm: u32,
    errno: i32,
    blob_len: u32,
}

impl Ctl {
    fn to_bytes(self) -> [u8; CTL_HDR] {
        let w = [self.op, self.chan, self.mode, self.size, self.count, self.warm, self.errno as u32, self.blob_len];
        let mut b = [0u8; CTL_HDR];
        for (i, x) in w.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Ctl {
        let w = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        Ctl {
            op: w(0),
            chan: w(1),
            mode: w(2),
            size: w(3),
            count: w(4),
            warm: w(5),
            errno: w(6) as i32,
            blob_len: w(7),
        }
    }
}

/// This side's control ring.
struct Control {
    ev: Events,
    reader: RingReader<Mem>,
    dirty: bool,
}

impl Control {
    fn open(ev: Events) -> Result<Control, Fail> {
        let base = addr_of_mut!(CTL_RING) as *mut u8;
        let reader = v4v_register(&ev.hypercalls(), base, PAGE_SIZE as usize, CTL_PORT, v4v::DOMID_ANY, CTL_RING_LEN)?;
        Ok(Control { ev, reader, dirty: false })
    }

    /// This domain's id, from the ring header Xen filled in.
    fn domid(&self) -> u16 {
        let off = core::mem::offset_of!(v4v::RingHeader, id) + core::mem::offset_of!(v4v::RingId, domain);
        // SAFETY: the ring id's domain, in the registered ring's header,
        // which Xen wrote at registration.
        unsafe { core::ptr::read_volatile((addr_of!(CTL_RING) as *const u8).add(off) as *const u16) }
    }

    /// Sends `c` and `blob` to `peer`. A refused send (the peer's control
    /// ring is not there yet) is retried every 10 ms for up to `WAIT_NS`.
    fn send(&mut self, peer: u16, c: Ctl, blob: &[u8]) -> Result<(), Fail> {
        let n = CTL_HDR + blob.len();
        // SAFETY: CTL_BUF is only borrowed here and in `recv`, never both.
        let buf = unsafe { &mut (*addr_of_mut!(CTL_BUF)).0 };
        buf[..CTL_HDR].copy_from_slice(&Ctl { blob_len: blob.len() as u32, ..c }.to_bytes());
        buf[CTL_HDR..n].copy_from_slice(blob);
        let deadline = now_ns().saturating_add(WAIT_NS);
        loop {
            match v4v_send_waiting(&self.ev, peer, CTL_PORT, &buf[..n], "control sendv") {
                Err(f) if f.errno == Errno::ECONNREFUSED.to_ret() && now_ns() < deadline => {
                    if let Err(r) = self.ev.sleep_ms(10) {
                        return Err(Fail::new("control sleep", r));
                    }
                }
                r => return r,
            }
        }
    }

    /// The next control message, its blob (copied into `blob`, its
    /// length), and the domain Xen stamped as its source.
    fn recv(&mut self, blob: &mut [u8; BLOB_MAX]) -> Result<(Ctl, usize, u16), Fail> {
        // SAFETY: as in `send`.
        let buf = unsafe { &mut (*addr_of_mut!(CTL_BUF)).0 };
        let h = v4v_recv_waiting(&self.ev, &mut self.reader, &mut self.dirty, buf)?;
        let n = h.len as usize;
        if n < CTL_HDR {
            return Err(Fail::new("control message too short", EPROTO));
        }
        let c = Ctl::from_bytes(&buf[..CTL_HDR]);
        let bl = n - CTL_HDR;
        if c.blob_len as usize != bl {
            return Err(Fail::new("control message blob length", EPROTO));
        }
        blob[..bl].copy_from_slice(&buf[CTL_HDR..n]);
        // Control traffic is rare: free its space at once.
        v4v_notify(&self.ev.hypercalls())?;
        self.dirty = false;
        Ok((c, bl, h.source.domain))
    }
}

// ---------------------------------------------------------------------
// Messages.

/// Warm-up messages before a stream, rounds before a ping-pong.
const STREAM_WARM: u32 = 8;
const PINGPONG_WARM: u32 = 4;
/// Timed round trips of a ping-pong.
const PINGPONG_ROUNDS: u32 = 64;
/// The ack that ends a stream's phase: 16 bytes, the count received and
/// this tag.
const ACK_BYTES: usize = 16;
const ACK_TAG: [u8; 8] = *b"B2ACK\0\0\0";

/// Stream messages: max(256, 4 MiB / size).
fn stream_count(size: u32) -> u32 {
    ((4u32 << 20) / size).max(256)
}

/// The sequence number of a message (its first 8 bytes).
fn seq_of(m: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = m.len().min(8);
    b[..n].copy_from_slice(&m[..n]);
    u64::from_le_bytes(b)
}

fn tx_slot(size: usize, i: usize) -> &'static mut [u8] {
    assert!(size <= MSG_MAX && i < BATCH);
    // SAFETY: inside TX; the driver uses one slot (or the batch's slots)
    // at a time and Xen only reads them during a send.
    unsafe { core::slice::from_raw_parts_mut((addr_of_mut!(TX) as *mut u8).add(i * size), size) }
}

fn rx_buf(size: usize) -> &'static mut [u8] {
    assert!(size <= MSG_MAX);
    // SAFETY: RX is borrowed once at a time by the running measurement.
    unsafe { &mut (&mut (*addr_of_mut!(RX)).0)[..size] }
}

/// Writes the payload pattern into every TX slot (outside the timed loop).
fn fill_pattern(size: usize) {
    for i in 0..BATCH {
        for (j, x) in tx_slot(size, i).iter_mut().enumerate() {
            *x = (j as u8).wrapping_mul(7) ^ 0xa5;
        }
    }
}

fn set_seq(m: &mut [u8], seq: u64) {
    m[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Receives `count` messages of `size` bytes from `ch`, checking their
/// sequence numbers go on from `*next`; then sends the ack.
fn b_stream_phase(ch: &mut dyn Chan, size: usize, count: u32, next: &mut u64) -> Result<(), Fail> {
    let buf = rx_buf(size);
    let mut got = 0u32;
    let mut bad = None;
    while got < count {
        let mut len_ok = true;
        let n = ch.recv_each(buf, (count - got) as usize, &mut |m| {
            if m.len() != size {
                len_ok = false;
            } else if seq_of(m) != *next && bad.is_none() {
                bad = Some(seq_of(m));
            }
            *next += 1;
        })?;
        if !len_ok {
            return Err(Fail::new("stream message of the wrong size", EPROTO));
        }
        if bad.is_some() {
            return Err(Fail::new("stream sequence number out of order", EPROTO));
        }
        got += n as u32;
    }
    let mut ack = [0u8; ACK_BYTES];
    ack[..8].copy_from_slice(&u64::from(count).to_le_bytes());
    ack[8..].copy_from_slice(&ACK_TAG);
    ch.send(&ack)
}

/// `b`'s side of a measurement.
fn b_run(ch: &mut dyn Chan, c: &Ctl) -> Result<(), Fail> {
    let size = c.size as usize;
    if !(16..=MSG_MAX).contains(&size) {
        return Err(Fail::new("run: bad size", Errno::EINVAL.to_ret()));
    }
    let mut next = 0u64;
    match c.mode {
        MODE_STREAM => {
            b_stream_phase(ch, size, c.warm, &mut next)?;
            b_stream_phase(ch, size, c.count, &mut next)
        }
        MODE_PINGPONG => {
            let buf = rx_buf(size);
            for r in 0..u64::from(c.warm + c.count) {
                let n = ch.recv(buf)?;
                if n != size || seq_of(buf) != r {
                    return Err(Fail::new("ping-pong message size or sequence", EPROTO));
                }
                ch.send(&buf[..n])?;
            }
            Ok(())
        }
        _ => Err(Fail::new("run: bad mode", Errno::EINVAL.to_ret())),
    }
}

/// Waits for a stream's ack of `count` messages.
fn a_ack(ch: &mut dyn Chan, count: u32) -> Result<(), Fail> {
    let mut ack = [0u8; ACK_BYTES];
    let n = ch.recv(&mut ack)?;
    if n != ACK_BYTES || seq_of(&ack) != u64::from(count) || ack[8..] != ACK_TAG {
        return Err(Fail::new("bad ack", EPROTO));
    }
    Ok(())
}

/// Sends messages `first..first + count` of `size` bytes (batches when
/// the channel has them).
fn a_send_run(ch: &mut dyn Chan, size: usize, first: u64, count: u32, batched: bool) -> Result<(), Fail> {
    let mut seq = first;
    let end = first + u64::from(count);
    if !batched {
        let m = tx_slot(size, 0);
        while seq < end {
            set_seq(m, seq);
            ch.send(m)?;
            seq += 1;
        }
        return Ok(());
    }
    while seq < end {
        let k = ((end - seq) as usize).min(BATCH);
        for i in 0..k {
            set_seq(tx_slot(size, i), seq + i as u64);
        }
        let mut slots: [&[u8]; BATCH] = [&[]; BATCH];
        for (i, s) in slots.iter_mut().enumerate().take(k) {
            *s = tx_slot(size, i);
        }
        let mut done = 0;
        while done < k {
            done += ch.send_batch(&slots[done..k])?;
        }
        seq += k as u64;
    }
    Ok(())
}

/// `a`'s side of a stream: warm-up and its ack, then the timed phase.
/// Its ns. `marked`: the timed phase is also a counting window of the
/// insn-prof QEMU plugin (`profile=1`, `make bench-xen-2dom-profile`).
fn a_stream(ch: &mut dyn Chan, size: usize, count: u32, batched: bool, marked: bool) -> Result<u64, Fail> {
    a_send_run(ch, size, 0, STREAM_WARM, batched)?;
    a_ack(ch, STREAM_WARM)?;
    let t0 = now_ns();
    if marked {
        prof_mark(true);
    }
    let r = a_send_run(ch, size, u64::from(STREAM_WARM), count, batched).and_then(|()| a_ack(ch, count));
    if marked {
        prof_mark(false);
    }
    r.map(|()| now_ns() - t0)
}

/// `a`'s side of a ping-pong: warm-up rounds, then the timed ones. Its ns.
/// `marked`: the timed rounds are also a counting window, as in
/// [`a_stream`].
fn a_pingpong(ch: &mut dyn Chan, size: usize, marked: bool) -> Result<u64, Fail> {
    let m = tx_slot(size, 0);
    let buf = rx_buf(size);
    let mut t0 = now_ns();
    let mut rounds = || {
        for r in 0..u64::from(PINGPONG_WARM + PINGPONG_ROUNDS) {
            if r == u64::from(PINGPONG_WARM) {
                t0 = now_ns();
                if marked {
                    prof_mark(true);
                }
            }
            set_seq(m, r);
            ch.send(m)?;
            let n = ch.recv(buf)?;
            if n != size || seq_of(buf) != r {
                return Err(Fail::new("ping-pong reply size or sequence", EPROTO));
            }
        }
        Ok(())
    };
    let r = rounds();
    if marked {
        prof_mark(false);
    }
    r.map(|()| now_ns() - t0)
}

// ---------------------------------------------------------------------
// The roles.

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

/// Every key the roles understand.
const KEYS: &[&str] = &["bench2", "peer", "chans", "sizes", "reps", "profile"];
/// Most `sizes=` and `reps=`.
const SIZES_MAX: usize = 8;
const REPS_MAX: u64 = 100;

/// `a`'s parameters.
struct Params<'a> {
    peer: u16,
    chans: &'a str,
    sizes: [u32; SIZES_MAX],
    nsizes: usize,
    reps: u32,
    /// `profile=1`: the last repetition of each stream and ping-pong is a
    /// counting window of the insn-prof plugin, announced by a `window`
    /// line.
    profile: bool,
}

impl<'a> Params<'a> {
    /// Parses `a`'s keys; `Err` names the bad one.
    fn parse(c: &Cmdline<'a>) -> Result<Params<'a>, &'a str> {
        let peer = c.get("peer").ok_or("peer (missing)")?;
        let peer = match parse_number(peer) {
            Some(p) if p < u64::from(DomId::FIRST_RESERVED.0) => p as u16,
            _ => return Err("peer"),
        };
        let chans = c.get("chans").unwrap_or("v4v,v4vb,argo,vchan");
        if chans.split(',').any(|n| !CHANS.contains(&n)) {
            return Err("chans");
        }
        let mut sizes = [0u32; SIZES_MAX];
        let mut nsizes = 0;
        for s in c.get("sizes").unwrap_or("64,1024,16384,65536").split(',') {
            match parse_number(s) {
                Some(n) if (16..=MSG_MAX as u64).contains(&n) && nsizes < SIZES_MAX => {
                    sizes[nsizes] = n as u32;
                    nsizes += 1;
                }
                _ => return Err("sizes"),
            }
        }
        let reps = c.number("reps", 3, REPS_MAX).map_err(|_| "reps")?;
        if reps == 0 {
            return Err("reps");
        }
        let profile = c.number("profile", 0, 1).map_err(|_| "profile")? == 1;
        Ok(Params { peer, chans, sizes, nsizes, reps: reps as u32, profile })
    }
}

/// Runs the role `bench2=` names; never returns.
pub fn run(hc: Hypercalls, cmdline: Cmdline<'_>) -> ! {
    crate::xen::use_debugcon();
    ACTIVE.store(true, Ordering::Relaxed);
    say!(hc, "up, cmdline '{}'", cmdline.text());
    if let Some((k, _)) = cmdline.words().find(|(k, _)| !KEYS.contains(k)) {
        fatal!(hc, "bad cmdline: unknown key '{k}' {}", Errno::EINVAL.to_ret());
    }
    let role = cmdline.get("bench2").unwrap_or("");
    let params = match role {
        "a" => match Params::parse(&cmdline) {
            Ok(p) => Some(p),
            Err(k) => fatal!(hc, "bad cmdline: {k} {}", Errno::EINVAL.to_ret()),
        },
        "b" => None,
        _ => fatal!(hc, "bad cmdline: bench2={role} (a or b) {}", Errno::EINVAL.to_ret()),
    };
    let ev = match Events::init(hc) {
        Ok(ev) => ev,
        Err((step, r)) => fatal!(hc, "{step} {r}"),
    };
    let ctl = match Control::open(ev) {
        Ok(c) => c,
        Err(f) => fatal!(hc, "{f}"),
    };
    match params {
        Some(p) => run_a(hc, ev, ctl, &p),
        None => run_b(hc, ev, ctl),
    }
}

/// `bench2=b`: serves `a`'s control messages forever.
fn run_b(hc: Hypercalls, ev: Events, mut ctl: Control) -> ! {
    say!(hc, "ready role=b dom {}", ctl.domid());
    let mut blob = [0u8; BLOB_MAX];
    let mut open: Option<AnyChan> = None;
    loop {
        let (c, _, src) = match ctl.recv(&mut blob) {
            Ok(m) => m,
            Err(f) => fatal!(hc, "{f}"),
        };
        let name = CHANS.get(c.chan as usize).copied().unwrap_or("?");
        match c.op {
            OP_OPEN => {
                if let Some(mut ch) = open.take() {
                    // `a` started over: drop the old channel first.
                    let _ = ch.as_chan().close();
                }
                let (errno, n) = match open_b(name, ev, src, &mut blob) {
                    Ok((ch, n)) => {
                        open = Some(ch);
                        (0, n)
                    }
                    Err(f) => {
                        say!(hc, "open chan={name} failed: {f}");
                        (f.errno as i32, 0)
                    }
                };
                let reply = Ctl { op: OP_OPENED, chan: c.chan, errno, ..Default::default() };
                if let Err(f) = ctl.send(src, reply, &blob[..n]) {
                    fatal!(hc, "{f}");
                }
            }
            OP_RUN => {
                let Some(ch) = open.as_mut() else { fatal!(hc, "run chan={name} without open {EPROTO}") };
                if let Err(f) = b_run(ch.as_chan(), &c) {
                    fatal!(hc, "chan={name} size={} {f}", c.size);
                }
            }
            OP_CLOSE => {
                let errno = match open.take().map(|mut ch| ch.as_chan().close()) {
                    Some(Err(f)) => {
                        say!(hc, "close chan={name} failed: {f}");
                        f.errno as i32
                    }
                    _ => 0,
                };
                let reply = Ctl { op: OP_CLOSED, chan: c.chan, errno, ..Default::default() };
                if let Err(f) = ctl.send(src, reply, &[]) {
                    fatal!(hc, "{f}");
                }
            }
            op => fatal!(hc, "control op {op} from dom {src} {EPROTO}"),
        }
    }
}

/// Waits for the control reply `op` from `peer`.
fn a_reply(hc: &Hypercalls, ctl: &mut Control, blob: &mut [u8; BLOB_MAX], op: u32, peer: u16) -> (Ctl, usize) {
    match ctl.recv(blob) {
        Ok((c, n, src)) if c.op == op && src == peer => (c, n),
        Ok((c, _, src)) => {
            fatal!(*hc, "control reply op {} from dom {src}, want op {op} from dom {peer} {EPROTO}", c.op)
        }
        Err(f) => fatal!(*hc, "{f}"),
    }
}

/// `bench2=a`: every channel, size, mode and repetition; then powers off.
fn run_a(hc: Hypercalls, ev: Events, mut ctl: Control, p: &Params<'_>) -> ! {
    let peer = p.peer;
    say!(hc, "ready role=a dom {} peer {peer} chans={} reps={}", ctl.domid(), p.chans, p.reps);
    let mut blob = [0u8; BLOB_MAX];
    let mut results = 0u32;
    let mut windows = 0u32;
    for name in p.chans.split(',') {
        let idx = CHANS.iter().position(|&n| n == name).unwrap_or(0) as u32;
        if let Err(f) = ctl.send(peer, Ctl { op: OP_OPEN, chan: idx, ..Default::default() }, &[]) {
            fatal!(hc, "{f}");
        }
        let (c, n) = a_reply(&hc, &mut ctl, &mut blob, OP_OPENED, peer);
        if c.errno != 0 {
            let f = Fail::new("open on b", i64::from(c.errno));
            if f.unavailable() {
                say!(hc, "skip chan={name} errno={}", f.errno);
                continue;
            }
            fatal!(hc, "chan={name} {f}");
        }
        let mut ch = match open_a(name, ev, peer, &blob[..n]) {
            Ok(ch) => ch,
            Err(f) => {
                // Let b close its end before going on (or giving up).
                if ctl.send(peer, Ctl { op: OP_CLOSE, chan: idx, ..Default::default() }, &[]).is_ok() {
                    a_reply(&hc, &mut ctl, &mut blob, OP_CLOSED, peer);
                }
                if f.unavailable() {
                    say!(hc, "skip chan={name} errno={}", f.errno);
                    continue;
                }
                fatal!(hc, "chan={name} {f}");
            }
        };
        let batched = name == "v4vb";
        for &size in &p.sizes[..p.nsizes] {
            fill_pattern(size as usize);
            let modes: &[u32] = if batched { &[MODE_STREAM] } else { &[MODE_STREAM, MODE_PINGPONG] };
            for &mode in modes {
                let (count, warm, mname) = match mode {
                    MODE_STREAM => (stream_count(size), STREAM_WARM, "stream"),
                    _ => (PINGPONG_ROUNDS, PINGPONG_WARM, "pingpong"),
                };
                for rep in 1..=p.reps {
                    let run = Ctl { op: OP_RUN, chan: idx, mode, size, count, warm, ..Default::default() };
                    if let Err(f) = ctl.send(peer, run, &[]) {
                        fatal!(hc, "{f}");
                    }
                    let marked = p.profile && rep == p.reps;
                    let r = match mode {
                        MODE_STREAM => a_stream(ch.as_chan(), size as usize, count, batched, marked),
                        _ => a_pingpong(ch.as_chan(), size as usize, marked),
                    };
                    match r {
                        Ok(ns) => {
                            let name = ch.as_chan().name();
                            say!(hc, "result chan={name} mode={mname} size={size} count={count} rep={rep} ns={ns}");
                            results += 1;
                            if marked {
                                // The plugin numbers its windows in the same order.
                                say!(
                                    hc,
                                    "window seq={windows} chan={name} mode={mname} size={size} n={count} ticks={ns}"
                                );
                                windows += 1;
                            }
                        }
                        Err(f) => fatal!(hc, "chan={name} mode={mname} size={size} rep={rep} {f}"),
                    }
                }
            }
        }
        // a first (a client unmaps before the server ends its grants).
        if let Err(f) = ch.as_chan().close() {
            fatal!(hc, "chan={name} {f}");
        }
        if let Err(f) = ctl.send(peer, Ctl { op: OP_CLOSE, chan: idx, ..Default::default() }, &[]) {
            fatal!(hc, "{f}");
        }
        let (c, _) = a_reply(&hc, &mut ctl, &mut blob, OP_CLOSED, peer);
        if c.errno != 0 {
            fatal!(hc, "chan={name} close on b {}", c.errno);
        }
    }
    say!(hc, "done results={results}");
    hc.poweroff()
}
