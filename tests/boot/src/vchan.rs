//! A grant-shared byte-stream channel of libvchan's design
//! (`tools/libs/vchan` in Xen, `public/io/libxenvchan.h`), between two
//! guests running this kernel: the `vchan` channel of the two-domain
//! benchmark (issue 16, point 3).
//!
//! - **Shared memory**: the server grants the client a control page (struct
//!   `vchan_interface`: a `{cons, prod}` pair per direction, the ring orders,
//!   the live bytes, the notify bits, then the list of the rings' grant
//!   refs) and [`RING_BYTES`] of data per direction, pages of its own RAM.
//!   The client maps the control page, reads the orders and the refs there,
//!   and maps the rings at consecutive gfns from [`CLIENT_GFN`]: 12 GiB, above
//!   any test guest's RAM and below the 16 GiB the kernel identity-maps.
//!   As in libvchan, `left` is client → server and `right` server → client.
//! - **Events**: one interdomain event channel (server
//!   `EVTCHNOP_alloc_unbound`, client `EVTCHNOP_bind_interdomain`), masked,
//!   waited on with `SCHEDOP_poll` through [`crate::evtchn`].
//! - **Notify bits** (libvchan's `request_notify`/`send_notify`): a side
//!   that finds too little data (or space) sets "notify me on write" (or
//!   "on read") in the byte the other side honours (`cli_notify` for the
//!   client, `srv_notify` for the server), re-reads the indices, and blocks;
//!   the other side, after publishing its index, clears the bit and sends
//!   an event only if it was set. Barriers as libvchan's `io.c`.
//! - **Bootstrap**: the server hands the client a [`Bootstrap`] (the control
//!   page's grant ref, the pages per ring, the event channel port) over
//!   some other channel (the benchmark's control ring).
//!
//! A message is a byte stream: [`Vchan::send`] writes all its bytes
//! (blocking while the ring is full, in pieces when only part fits),
//! [`Vchan::recv`] reads exactly the buffer's length (blocking until that
//! much, or a whole ring, is there).

use core::ptr::addr_of_mut;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, Ordering};

use hypercall_abi::{DomId, Gfn, PAGE_SIZE};

use crate::bench2::{self, Chan, Fail};
use crate::evtchn::{Events, Port};
use crate::grant::{self, Table, EBUSY, EINVAL};
use crate::xen::Hypercalls;

/// log2 of the data bytes per direction (libvchan's ring order).
const RING_ORDER: u16 = 18;
/// Data bytes per direction: 256 KiB (the benchmark's fairness rule).
pub const RING_BYTES: usize = 1 << RING_ORDER;
/// Pages of one direction's data.
const RING_PAGES: usize = RING_BYTES / PAGE_SIZE as usize;
/// Smallest ring order a client accepts: one page (libvchan's in-page
/// rings of order 10 and 11 are not used here).
const RING_ORDER_MIN: u16 = 12;
/// Pages the client maps: the control page and both rings.
const MAP_PAGES: usize = 1 + 2 * RING_PAGES;
/// Where the client maps the control page, then `left`, then `right`.
pub const CLIENT_GFN: Gfn = Gfn(12 << (30 - 12));
/// How often, and how many ms apart, the server's close retries ending a
/// grant the client still maps.
const END_TRIES_MAX: u32 = 100;
const END_RETRY_MS: u64 = 10;
/// `-EIO`: the peer's index is impossible; `-ESRCH`: the peer left.
const EIO: i64 = -5;
const ESRCH: i64 = -3;

/// Offsets in `struct vchan_interface`.
const LEFT: u64 = 0;
const RIGHT: u64 = 8;
const CONS: u64 = 0;
const PROD: u64 = 4;
const LEFT_ORDER: u64 = 16;
const RIGHT_ORDER: u64 = 18;
const CLI_LIVE: u64 = 20;
const SRV_LIVE: u64 = 21;
const CLI_NOTIFY: u64 = 22;
const SRV_NOTIFY: u64 = 23;
const GRANTS: u64 = 24;
/// `VCHAN_NOTIFY_WRITE`, `VCHAN_NOTIFY_READ`.
const NOTIFY_WRITE: u8 = 0x1;
const NOTIFY_READ: u8 = 0x2;
/// The live bytes: gone, connected, not yet connected (client).
const LIVE_GONE: u8 = 0;
const LIVE_CONNECTED: u8 = 1;
const LIVE_WAITING: u8 = 2;

/// [`Bootstrap`]'s magic.
const BOOTSTRAP_MAGIC: [u8; 4] = *b"VCHB";

#[repr(C, align(4096))]
struct Pages<const N: usize>([u8; N]);

/// The server's control page and rings, granted to the client.
static mut SRV_CTRL: Pages<{ PAGE_SIZE as usize }> = Pages([0; PAGE_SIZE as usize]);
static mut SRV_LEFT: Pages<RING_BYTES> = Pages([0; RING_BYTES]);
static mut SRV_RIGHT: Pages<RING_BYTES> = Pages([0; RING_BYTES]);
/// Whether the server's pages are in use (or still granted): one server at
/// a time.
static SERVER_BUSY: AtomicBool = AtomicBool::new(false);
/// Whether [`CLIENT_GFN`]'s range holds a mapping: one client at a time.
static CLIENT_BUSY: AtomicBool = AtomicBool::new(false);
/// The grant handles of the client's mappings, control page first.
static mut CLIENT_HANDLES: [u32; MAP_PAGES] = [u32::MAX; MAP_PAGES];

/// `CLIENT_HANDLES`.
///
/// # Safety
///
/// The caller holds `CLIENT_BUSY` and has no other reference to it.
unsafe fn client_handles() -> &'static mut [u32; MAP_PAGES] {
    // SAFETY: the caller's contract makes this the only reference.
    unsafe { &mut *addr_of_mut!(CLIENT_HANDLES) }
}

/// What the client needs to connect: the control page's grant ref, the
/// pages of each ring (the refs themselves are in the control page, as in
/// libvchan), the server's event channel port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    pub ctrl_ref: u32,
    pub ring_pages: u32,
    pub port: u32,
}

impl Bootstrap {
    /// Bytes of the serialised form: magic, then the three fields, little
    /// endian.
    pub const BYTES: usize = 16;

    /// The serialised form.
    pub fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[0..4].copy_from_slice(&BOOTSTRAP_MAGIC);
        b[4..8].copy_from_slice(&self.ctrl_ref.to_le_bytes());
        b[8..12].copy_from_slice(&self.ring_pages.to_le_bytes());
        b[12..16].copy_from_slice(&self.port.to_le_bytes());
        b
    }

    /// Parses [`Bootstrap::to_bytes`]'s output; `None` if it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<Bootstrap> {
        if b.len() < Self::BYTES || b[0..4] != BOOTSTRAP_MAGIC {
            return None;
        }
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Bootstrap { ctrl_ref: w(4), ring_pages: w(8), port: w(12) })
    }
}

/// The `u32` at `addr`, as an atomic.
///
/// # Safety
///
/// `addr` is a 4-aligned address of a live [`Vchan`]'s control page.
unsafe fn a32(addr: u64) -> &'static AtomicU32 {
    debug_assert!(addr.is_multiple_of(4));
    // SAFETY: the caller's contract; the peer writes these words
    // concurrently, so they are only ever accessed atomically.
    unsafe { &*(addr as *const AtomicU32) }
}

/// The byte at `addr`, as an atomic.
///
/// # Safety
///
/// `addr` is inside a live [`Vchan`]'s control page.
unsafe fn a8(addr: u64) -> &'static AtomicU8 {
    // SAFETY: as in `a32`.
    unsafe { &*(addr as *const AtomicU8) }
}

/// One direction: its `{cons, prod}` pair in the control page and its data.
#[derive(Clone, Copy)]
struct Ring {
    /// Address of the `struct ring_shared`.
    shr: u64,
    /// Address of the data (identity-mapped, contiguous).
    data: u64,
    /// Data bytes, a power of two.
    size: u32,
}

impl Ring {
    fn cons(&self) -> &'static AtomicU32 {
        // SAFETY: `shr` is a ring_shared of the live control page
        // (`Vchan`'s invariant), 8-aligned.
        unsafe { a32(self.shr + CONS) }
    }

    fn prod(&self) -> &'static AtomicU32 {
        // SAFETY: as in `cons`.
        unsafe { a32(self.shr + PROD) }
    }
}

/// One end of a channel.
///
/// # Invariants
///
/// `ctrl` is the control page and `rd`/`wr` the rings, identity-mapped for
/// as long as the value lives (the server's statics, which it granted; or
/// the client's mappings at [`CLIENT_GFN`]) until [`Vchan::close`]; `port`
/// is bound to the peer's port and masked. A server holds `SERVER_BUSY`, a
/// client `CLIENT_BUSY`.
pub struct Vchan {
    hc: Hypercalls,
    ev: Events,
    port: Port,
    server: bool,
    ctrl: u64,
    rd: Ring,
    wr: Ring,
    /// Server: the refs granted, `ctrl_ref..ctrl_ref + granted`.
    ctrl_ref: u32,
    granted: u32,
    /// Client: how many pages from [`CLIENT_GFN`] are mapped (their
    /// handles are in `CLIENT_HANDLES`).
    mapped: usize,
    /// Whether [`Vchan::close`] ran (the rest is then stale).
    closed: bool,
}

fn ctrl_u16(ctrl: u64, off: u64) -> u16 {
    // SAFETY: inside the control page (the callers' `ctrl` is one), 2-aligned.
    unsafe { core::ptr::read_volatile((ctrl + off) as *const u16) }
}

fn ctrl_u32(ctrl: u64, off: u64) -> u32 {
    // SAFETY: as in `ctrl_u16`.
    unsafe { core::ptr::read_volatile((ctrl + off) as *const u32) }
}

/// Grants the server's pages and fills the control page; on failure ends
/// what it granted. Returns the first ref (the control page's; the
/// rings' follow it).
fn server_grant(t: &Table, peer: DomId, ctrl: u64, left: u64, right: u64) -> Result<u32, Fail> {
    let first = grant::REF_FIRST;
    // SAFETY: `ctrl` is SRV_CTRL, not shared yet (SERVER_BUSY is ours).
    unsafe { core::ptr::write_bytes(ctrl as *mut u8, 0, PAGE_SIZE as usize) };
    let w16 = |off: u64, v: u16| {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile((ctrl + off) as *mut u16, v) }
    };
    let w8 = |off: u64, v: u8| {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile((ctrl + off) as *mut u8, v) }
    };
    w16(LEFT_ORDER, RING_ORDER);
    w16(RIGHT_ORDER, RING_ORDER);
    w8(CLI_LIVE, LIVE_WAITING);
    w8(SRV_LIVE, LIVE_CONNECTED);
    // The server wants to hear of the client's first write (libvchan).
    w8(CLI_NOTIFY, NOTIFY_WRITE);
    let pages = |i: usize| -> u64 {
        if i < RING_PAGES {
            left / PAGE_SIZE + i as u64
        } else {
            right / PAGE_SIZE + (i - RING_PAGES) as u64
        }
    };
    for i in 0..2 * RING_PAGES {
        let r = first + 1 + i as u32;
        // SAFETY: as above; the list ends at 24 + 4 * 128 bytes, inside.
        unsafe { core::ptr::write_volatile((ctrl + GRANTS + 4 * i as u64) as *mut u32, r) };
    }
    let mut done = 0u32;
    let mut res = t.grant(first, peer, Gfn(ctrl / PAGE_SIZE));
    if res.is_ok() {
        done = 1;
        for i in 0..2 * RING_PAGES {
            res = t.grant(first + 1 + i as u32, peer, Gfn(pages(i)));
            if res.is_err() {
                break;
            }
            done += 1;
        }
    }
    if let Err(f) = res {
        for r in first..first + done {
            // Nobody has mapped them yet: the peer does not know the refs.
            let _ = t.end(r);
        }
        return Err(f);
    }
    Ok(first)
}

impl Vchan {
    /// The server end, for client domain `peer`: grants the control page
    /// and both rings, allocates the event channel port. The client needs
    /// the returned [`Bootstrap`].
    pub fn server(ev: Events, peer: DomId) -> Result<(Vchan, Bootstrap), Fail> {
        if SERVER_BUSY.swap(true, Ordering::AcqRel) {
            return Err(Fail::new("vchan server: one at a time", EBUSY));
        }
        let hc = ev.hypercalls();
        let ctrl = addr_of_mut!(SRV_CTRL) as u64;
        let left = addr_of_mut!(SRV_LEFT) as u64;
        let right = addr_of_mut!(SRV_RIGHT) as u64;
        let t = Table::get(hc).inspect_err(|_| SERVER_BUSY.store(false, Ordering::Release))?;
        let first =
            server_grant(&t, peer, ctrl, left, right).inspect_err(|_| SERVER_BUSY.store(false, Ordering::Release))?;
        let granted = 1 + 2 * RING_PAGES as u32;
        let end_all = || {
            for r in first..first + granted {
                let _ = t.end(r);
            }
            SERVER_BUSY.store(false, Ordering::Release);
        };
        let port = match grant::alloc_unbound(&hc, peer) {
            Ok(p) => p,
            Err(f) => {
                end_all();
                return Err(f);
            }
        };
        let port = match ev.adopt(port) {
            Ok(p) => p,
            Err((op, r)) => {
                let _ = grant::close(&hc, port);
                end_all();
                return Err(Fail::new(op, r));
            }
        };
        let size = RING_BYTES as u32;
        let v = Vchan {
            hc,
            ev,
            port,
            server: true,
            ctrl,
            rd: Ring { shr: ctrl + LEFT, data: left, size },
            wr: Ring { shr: ctrl + RIGHT, data: right, size },
            ctrl_ref: first,
            granted,
            mapped: 0,
            closed: false,
        };
        let b = Bootstrap { ctrl_ref: first, ring_pages: RING_PAGES as u32, port: port.number() };
        Ok((v, b))
    }

    /// The client end, connecting to server domain `peer` with what its
    /// server returned: maps the control page and the rings at
    /// [`CLIENT_GFN`], binds the event channel, says it is connected.
    pub fn client(ev: Events, peer: DomId, b: &Bootstrap) -> Result<Vchan, Fail> {
        if CLIENT_BUSY.swap(true, Ordering::AcqRel) {
            return Err(Fail::new("vchan client: one at a time", EBUSY));
        }
        // SAFETY: we hold CLIENT_BUSY, and this is the only reference.
        let handles = unsafe { client_handles() };
        handles.fill(u32::MAX);
        let mut mapped = 0;
        let r = Self::client_connect(ev, peer, b, handles, &mut mapped);
        if r.is_err() {
            let _ = grant::unmap(&ev.hypercalls(), CLIENT_GFN, &handles[..mapped]);
            CLIENT_BUSY.store(false, Ordering::Release);
        }
        let (port, rd, wr) = r?;
        let ctrl = CLIENT_GFN.0 * PAGE_SIZE;
        let mut v = Vchan {
            hc: ev.hypercalls(),
            ev,
            port,
            server: false,
            ctrl,
            rd,
            wr,
            ctrl_ref: b.ctrl_ref,
            granted: 0,
            mapped,
            closed: false,
        };
        // Connected; ask to hear of the server's first write; tell it.
        v.live(CLI_LIVE).store(LIVE_CONNECTED, Ordering::SeqCst);
        v.live(SRV_NOTIFY).fetch_or(NOTIFY_WRITE, Ordering::SeqCst);
        v.notify()?;
        Ok(v)
    }

    /// The mapping and binding steps of [`Vchan::client`]; `mapped` says
    /// how many of `handles` the caller must unmap on failure.
    fn client_connect(
        ev: Events,
        peer: DomId,
        b: &Bootstrap,
        handles: &mut [u32; MAP_PAGES],
        mapped: &mut usize,
    ) -> Result<(Port, Ring, Ring), Fail> {
        let hc = ev.hypercalls();
        let pages = b.ring_pages as usize;
        if !pages.is_power_of_two() || pages > RING_PAGES {
            return Err(Fail::new("vchan client: bootstrap ring pages", EINVAL));
        }
        grant::map(&hc, peer, &[b.ctrl_ref], CLIENT_GFN, &mut handles[..1])?;
        *mapped = 1;
        let ctrl = CLIENT_GFN.0 * PAGE_SIZE;
        let order_ok = |o: u16| (RING_ORDER_MIN..=RING_ORDER).contains(&o) && 1 << (o - RING_ORDER_MIN) == pages;
        // The client writes left and reads right (libvchan).
        let (lo, ro) = (ctrl_u16(ctrl, LEFT_ORDER), ctrl_u16(ctrl, RIGHT_ORDER));
        if !order_ok(lo) || !order_ok(ro) {
            return Err(Fail::new("vchan client: ring orders in the control page", EINVAL));
        }
        let mut refs = [0u32; 2 * RING_PAGES];
        for (i, r) in refs.iter_mut().take(2 * pages).enumerate() {
            *r = ctrl_u32(ctrl, GRANTS + 4 * i as u64);
        }
        let left = Gfn(CLIENT_GFN.0 + 1);
        let right = Gfn(left.0 + pages as u64);
        grant::map(&hc, peer, &refs[..2 * pages], left, &mut handles[1..1 + 2 * pages])?;
        *mapped = 1 + 2 * pages;
        let port = grant::bind_interdomain(&hc, peer, b.port)?;
        let port = match ev.adopt(port) {
            Ok(p) => p,
            Err((op, r)) => {
                let _ = grant::close(&hc, port);
                return Err(Fail::new(op, r));
            }
        };
        let size = (pages * PAGE_SIZE as usize) as u32;
        let wr = Ring { shr: ctrl + LEFT, data: left.0 * PAGE_SIZE, size };
        let rd = Ring { shr: ctrl + RIGHT, data: right.0 * PAGE_SIZE, size };
        Ok((port, rd, wr))
    }

    /// A byte of the control page's status area (`*_live`, `*_notify`).
    fn live(&self, off: u64) -> &'static AtomicU8 {
        debug_assert!((CLI_LIVE..=SRV_NOTIFY).contains(&off));
        // SAFETY: inside the control page (type invariant).
        unsafe { a8(self.ctrl + off) }
    }

    /// Whether the peer is still there (libvchan's `is_open`: the server
    /// counts a client that has not connected yet as open).
    fn peer_open(&self) -> bool {
        let off = if self.server { CLI_LIVE } else { SRV_LIVE };
        self.live(off).load(Ordering::SeqCst) != LIVE_GONE
    }

    fn notify(&mut self) -> Result<(), Fail> {
        self.ev.notify(self.port).map_err(|r| Fail::new("EVTCHNOP_send", r))
    }

    /// libvchan's `request_notify`: asks the peer for an event on `bit`.
    fn request_notify(&self, bit: u8) {
        let off = if self.server { CLI_NOTIFY } else { SRV_NOTIFY };
        self.live(off).fetch_or(bit, Ordering::SeqCst);
        // Post the request before re-reading the indices.
        fence(Ordering::SeqCst);
    }

    /// libvchan's `send_notify`: an event for `bit` if the peer asked.
    fn send_notify(&mut self, bit: u8) -> Result<(), Fail> {
        // The index update before the look at the bits.
        fence(Ordering::SeqCst);
        let off = if self.server { SRV_NOTIFY } else { CLI_NOTIFY };
        let prev = self.live(off).fetch_and(!bit, Ordering::SeqCst);
        if prev & bit != 0 {
            self.notify()?;
        }
        Ok(())
    }

    /// Bytes readable now.
    fn data_ready(&self) -> Result<u32, Fail> {
        let ready = self.rd.prod().load(Ordering::Acquire).wrapping_sub(self.rd.cons().load(Ordering::Relaxed));
        fence(Ordering::SeqCst);
        if ready > self.rd.size {
            return Err(Fail::new("vchan recv: peer's producer index beyond the ring", EIO));
        }
        Ok(ready)
    }

    /// Bytes writable now.
    fn buffer_space(&self) -> Result<u32, Fail> {
        let used = self.wr.prod().load(Ordering::Relaxed).wrapping_sub(self.wr.cons().load(Ordering::Acquire));
        fence(Ordering::SeqCst);
        if used > self.wr.size {
            return Err(Fail::new("vchan send: peer's consumer index beyond ours", EIO));
        }
        Ok(self.wr.size - used)
    }

    /// Blocks until the port is pending (at most [`bench2::WAIT_NS`]).
    fn wait(&mut self, what: &'static str) -> Result<(), Fail> {
        bench2::wait(&self.ev, &[self.port], what)
    }

    /// Writes all of `msg`, in pieces as space frees up, blocking while the
    /// ring is full.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), Fail> {
        if self.closed {
            return Err(Fail::new("vchan send: closed", EINVAL));
        }
        let mut pos = 0;
        while pos < msg.len() {
            // Clear before looking: an event after the look stays pending.
            self.port.clear();
            let want = (msg.len() - pos).min(self.wr.size as usize) as u32;
            let mut space = self.buffer_space()?;
            if space < want {
                // We plan to fill the ring: tell us when it is read.
                self.request_notify(NOTIFY_READ);
                space = self.buffer_space()?;
            }
            if space > 0 {
                let n = (space as usize).min(msg.len() - pos);
                self.put(&msg[pos..pos + n])?;
                pos += n;
                continue;
            }
            if !self.peer_open() {
                return Err(Fail::new("vchan send: peer closed the channel", ESRCH));
            }
            self.wait("vchan send: waiting for space")?;
        }
        Ok(())
    }

    /// libvchan's `do_send`: copies `b` (at most the free space) in,
    /// publishes the producer index, notifies if asked.
    fn put(&mut self, b: &[u8]) -> Result<(), Fail> {
        let prod = self.wr.prod().load(Ordering::Relaxed);
        let idx = (prod & (self.wr.size - 1)) as usize;
        let first = b.len().min(self.wr.size as usize - idx);
        // Read the indices, then write the data.
        fence(Ordering::SeqCst);
        // SAFETY: the ring is identity-mapped for the channel's life (type
        // invariant) and `[idx, idx + first)` and `[0, len - first)` are
        // inside it; the protocol gives us these bytes (free space, the
        // peer does not touch them until the producer index moves).
        unsafe {
            core::ptr::copy_nonoverlapping(b.as_ptr(), (self.wr.data + idx as u64) as *mut u8, first);
            core::ptr::copy_nonoverlapping(b[first..].as_ptr(), self.wr.data as *mut u8, b.len() - first);
        }
        // The data, then the index.
        self.wr.prod().store(prod.wrapping_add(b.len() as u32), Ordering::Release);
        self.send_notify(NOTIFY_WRITE)
    }

    /// Reads exactly `buf.len()` bytes, blocking until that much (or a
    /// whole ring, for a longer buffer) is there.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<(), Fail> {
        if self.closed {
            return Err(Fail::new("vchan recv: closed", EINVAL));
        }
        let mut pos = 0;
        while pos < buf.len() {
            self.port.clear();
            let want = (buf.len() - pos).min(self.rd.size as usize) as u32;
            let mut ready = self.data_ready()?;
            if ready < want {
                // We plan to consume all there is: tell us of more.
                self.request_notify(NOTIFY_WRITE);
                ready = self.data_ready()?;
            }
            if ready >= want {
                self.take(&mut buf[pos..pos + want as usize])?;
                pos += want as usize;
                continue;
            }
            if !self.peer_open() {
                return Err(Fail::new("vchan recv: peer closed the channel", ESRCH));
            }
            self.wait("vchan recv: waiting for data")?;
        }
        Ok(())
    }

    /// libvchan's `do_recv`: copies `b.len()` ready bytes out, publishes
    /// the consumer index, notifies if asked.
    fn take(&mut self, b: &mut [u8]) -> Result<(), Fail> {
        let cons = self.rd.cons().load(Ordering::Relaxed);
        let idx = (cons & (self.rd.size - 1)) as usize;
        let first = b.len().min(self.rd.size as usize - idx);
        let len = b.len();
        // The data read after the index read (the Acquire in data_ready).
        // SAFETY: as in `put`: inside the ring, bytes the peer published
        // and does not touch until the consumer index moves.
        unsafe {
            core::ptr::copy_nonoverlapping((self.rd.data + idx as u64) as *const u8, b.as_mut_ptr(), first);
            core::ptr::copy_nonoverlapping(self.rd.data as *const u8, b[first..].as_mut_ptr(), len - first);
        }
        // Consume, then notify.
        fence(Ordering::SeqCst);
        self.rd.cons().store(cons.wrapping_add(len as u32), Ordering::Release);
        self.send_notify(NOTIFY_READ)
    }

    /// Tears the end down: says it is gone and tells the peer; the client
    /// unmaps everything, the server ends every grant (failing while the
    /// client still maps a page: then its pages stay reserved); closes the
    /// port. Returns the first failure, after trying every step.
    pub fn close(&mut self) -> Result<(), Fail> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let off = if self.server { SRV_LIVE } else { CLI_LIVE };
        self.live(off).store(LIVE_GONE, Ordering::SeqCst);
        let mut fail = self.notify().err();
        if self.server {
            let t = Table::get(self.hc)?;
            let mut ended = true;
            for r in self.ctrl_ref..self.ctrl_ref + self.granted {
                // A client that just said it is gone may still be
                // unmapping: give it a little while.
                let mut res = t.end(r);
                for _ in 0..END_TRIES_MAX {
                    if res.is_ok() {
                        break;
                    }
                    if let Err(e) = self.ev.sleep_ms(END_RETRY_MS) {
                        fail = fail.or(Some(Fail::new("vchan close: SCHEDOP_poll (sleep)", e)));
                        break;
                    }
                    res = t.end(r);
                }
                if let Err(f) = res {
                    fail = fail.or(Some(f));
                    ended = false;
                }
            }
            if ended {
                SERVER_BUSY.store(false, Ordering::Release);
            }
        } else {
            // The rings, then the control page (libvchan's order).
            // SAFETY: this client holds CLIENT_BUSY (its invariant), and
            // this is the only reference.
            let handles = unsafe { client_handles() };
            let r = grant::unmap(&self.hc, Gfn(CLIENT_GFN.0 + 1), &handles[1..self.mapped]);
            fail = fail.or(r.err());
            let r = grant::unmap(&self.hc, CLIENT_GFN, &handles[..1]);
            fail = fail.or(r.err());
            if fail.is_none() {
                CLIENT_BUSY.store(false, Ordering::Release);
            }
        }
        if let Err(f) = grant::close(&self.hc, self.port.number()) {
            fail = fail.or(Some(f));
        }
        fail.map_or(Ok(()), Err)
    }
}

impl Chan for Vchan {
    fn name(&self) -> &'static str {
        "vchan"
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), Fail> {
        Vchan::send(self, msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Fail> {
        Vchan::recv(self, buf).map(|()| buf.len())
    }

    fn close(&mut self) -> Result<(), Fail> {
        Vchan::close(self)
    }
}

/// `b`'s opener (see [`crate::bench2`]): the server end for client `peer`,
/// its [`Bootstrap`] in `blob`.
pub fn open_b(ev: Events, peer: u16, blob: &mut [u8; bench2::BLOB_MAX]) -> Result<(Vchan, usize), Fail> {
    let (v, b) = Vchan::server(ev, DomId(peer))?;
    blob[..Bootstrap::BYTES].copy_from_slice(&b.to_bytes());
    Ok((v, Bootstrap::BYTES))
}

/// `a`'s opener: the client end, from `b`'s blob.
pub fn open_a(ev: Events, peer: u16, blob: &[u8]) -> Result<Vchan, Fail> {
    let b = Bootstrap::from_bytes(blob).ok_or(Fail::new("vchan: bad bootstrap blob", EINVAL))?;
    Vchan::client(ev, DomId(peer), &b)
}
