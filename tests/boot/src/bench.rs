//! Bench mode (cargo feature `bench`, `make bench-xen`, issue 9 "Real Xen,
//! side by side"): instead of the scenario list, dom0 times
//!
//! - V4V `sendv` against Argo's `sendv` (Xen built with `CONFIG_ARGO=y`,
//!   booted with `argo=1`) for 64 B, 1 KiB, 16 KiB and 64 KiB messages: a
//!   ring of 256 KiB registered by dom0 for itself (single source: dom0),
//!   N sends each followed by a receive (copy out, advance `rx_ptr`: mode
//!   `full`) or by a drop (advance `rx_ptr` only: mode `send`), and a guest
//!   `memcpy` of the same bytes as the physical limit;
//! - a static shm attach (and detach) of N MiB against
//!   `XENMEM_populate_physmap` (and `XENMEM_decrease_reservation`) of N MiB
//!   into dom0's own physmap at free gfns, in 2 MiB extents and in 4 KiB
//!   ones.
//!
//! With `bench=profile` on its command line (`make bench-xen-profile`,
//! issue 16) the same kernel runs only the sends of V4V and Argo, each batch
//! one counting window of the insn-prof QEMU plugin, which attributes Xen's
//! instructions to its functions (`profile`). One binary for both, so the
//! profile sees the benchmark's code and memory layout (the cost of Xen's
//! page walks depends on where the kernel's page tables and buffers lie).
//!
//! Time is the TSC (`rdtsc`) around a whole batch. Under QEMU `-icount` the
//! guest's TSC follows virtual time, which counts instructions; the
//! `calib` line times a loop of a known number of instructions so the
//! report can check that and convert ticks to instructions. Every figure is
//! printed as a `BENCH` line that `tests/bench/xen_report.py` turns into
//! tables. Argo's structs are Xen's public ABI (`public/argo.h`), in
//! [`crate::argo`].

use core::arch::asm;
use core::fmt::Write;
use core::ptr::{addr_of, addr_of_mut};

use hypercall_abi::domctl::Domctl;
use hypercall_abi::ring::{prepare, RingError, RingMemory, RingReader};
use hypercall_abi::sshm::{self, Name, StaticShm};
use hypercall_abi::v4v::{self, Addr, BatchEnt, Iov, RegisterRing, SendAddr, UnregisterRing};
use hypercall_abi::{hypercall, DomId, PAGE_SIZE};

use crate::argo;
use crate::xen::{prof_mark as mark, Console, Hypercalls};

/// Data bytes of each ring: four 64 KiB messages fit.
const RING_LEN: u32 = 256 << 10;
/// Pages of a ring: the 64-byte header (both ABIs) and the data.
const RING_PAGES: usize = (RING_LEN as usize + 64).div_ceil(PAGE_SIZE as usize);
const RING_BYTES: usize = RING_PAGES * PAGE_SIZE as usize;
/// Largest message.
const MSG_MAX: usize = 64 << 10;
const PORT: u32 = 0xbe00;
const SRC_PORT: u32 = 0xbe01;
const MSG_TYPE: u32 = 0x424e;
/// Repetitions of every measurement; the report keeps the minimum and
/// shows the spread.
const REPS: usize = 3;

/// `__HYPERVISOR_memory_op`'s sub-ops.
const XENMEM_DECREASE_RESERVATION: u64 = 1;
const XENMEM_POPULATE_PHYSMAP: u64 = 6;
const DOMID_SELF: u16 = DomId::SELF_.0;

/// Where the attachments go: 1 GiB-aligned slots from 8 GiB up (as the
/// scenarios), a fresh one for every attach.
const SSHM_GFN: u64 = 8 << (30 - 12);
/// Where populate_physmap puts RAM: 4 GiB, free (QEMU's RAM ends at 2 GiB),
/// below the sshm slots.
const POPULATE_GFN: u64 = 4 << (30 - 12);
/// Region sizes, MiB. The largest ones fail cleanly if Xen's heap (QEMU's
/// RAM minus Xen and dom0) cannot back them, and are reported as such.
const REGION_MIB: [u64; 5] = [2, 16, 64, 256, 1024];
const EXTENTS_MAX: usize = 1024 * 256;

#[repr(C, align(4096))]
struct Pages<const N: usize>([u8; N]);

static mut V4V_RING: Pages<RING_BYTES> = Pages([0; RING_BYTES]);
static mut ARGO_RING: Pages<RING_BYTES> = Pages([0; RING_BYTES]);
static mut TX: Pages<MSG_MAX> = Pages([0; MSG_MAX]);
static mut RX: Pages<MSG_MAX> = Pages([0; MSG_MAX]);
/// Hypercall argument structs (first half) and iovs (second half).
static mut ARGS: Pages<4096> = Pages([0; 4096]);
/// The rings' gfn lists.
static mut GFNS: Pages<4096> = Pages([0; 4096]);
/// populate_physmap's extent list (1 GiB of 4 KiB extents).
static mut EXTENTS: [u64; EXTENTS_MAX] = [0; EXTENTS_MAX];

fn args() -> *mut u8 {
    addr_of_mut!(ARGS) as *mut u8
}

fn iovs() -> *mut u8 {
    // Right after the send address (16 bytes), the layout V4V reads with
    // one guest copy (public/v4v.h). SAFETY: inside the ARGS page.
    unsafe { args().add(16) }
}

/// Writes `v` at `p` (an identity-mapped guest address Xen will read).
fn put<T: Copy>(p: *mut u8, v: T) {
    // SAFETY: callers pass `ARGS`, `GFNS` or ring memory, which is large
    // enough for every `T` used here and not otherwise borrowed.
    unsafe { core::ptr::write_unaligned(p as *mut T, v) }
}

/// The TSC, ordered after earlier instructions.
fn tsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence; rdtsc only read the time stamp counter.
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack, nomem)) };
    u64::from(hi) << 32 | u64::from(lo)
}

/// `2 * n` instructions.
fn spin(n: u64) {
    // SAFETY: a register-only countdown loop.
    unsafe { asm!("2:", "dec {0}", "jnz 2b", inout(reg) n => _, options(nostack, nomem)) };
}

/// A ring in identity-mapped memory at `base`, for hypercall-abi's reader.
struct RawRing(*mut u8);

impl RingMemory for RawRing {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        if offset + buf.len() > RING_BYTES {
            return Err(RingError::Fault);
        }
        // SAFETY: inside the ring's pages (checked); Xen only writes data
        // it has not published yet, which the reader does not read.
        unsafe { core::ptr::copy_nonoverlapping(self.0.add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        if offset + buf.len() > RING_BYTES {
            return Err(RingError::Fault);
        }
        // SAFETY: as in `read`; the reader only writes `rx_ptr`.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), self.0.add(offset), buf.len()) };
        Ok(())
    }
}

/// Fills the gfn list with the ring's frames.
fn ring_gfns(ring: *mut u8) -> u64 {
    let g = addr_of_mut!(GFNS) as *mut u64;
    for i in 0..RING_PAGES {
        // SAFETY: RING_PAGES (65) u64s fit in the GFNS page.
        unsafe { g.add(i).write((ring as u64 + i as u64 * PAGE_SIZE) / PAGE_SIZE) };
    }
    g as u64
}

/// One channel under test.
trait Channel {
    fn name(&self) -> &'static str;
    /// sendv of `len` bytes of `TX` as one iov; returns Xen's value.
    fn send(&mut self, hc: &Hypercalls, len: usize) -> i64;
    /// Takes the next message: copies it into `RX` (`copy`) or drops it.
    /// Returns its payload length.
    fn recv(&mut self, copy: bool) -> Option<usize>;
    fn close(&mut self, hc: &Hypercalls);
}

struct V4v {
    reader: RingReader<RawRing>,
}

impl V4v {
    fn open(hc: &Hypercalls) -> Result<V4v, i64> {
        let ring = addr_of_mut!(V4V_RING) as *mut u8;
        // SAFETY: the ring's pages, not registered yet.
        unsafe { core::ptr::write_bytes(ring, 0, RING_BYTES) };
        let mut mem = RawRing(ring);
        prepare(&mut mem, RING_LEN, 0).map_err(|_| -22i64)?;
        put(args(), RegisterRing { port: PORT, partner: 0, len: RING_LEN, ..Default::default() });
        let r = hc.call(
            hypercall::V4V_OP,
            [u64::from(v4v::OP_REGISTER_RING), args() as u64, ring_gfns(ring), RING_PAGES as u64, 0],
        );
        if r != 0 {
            return Err(r);
        }
        let reader = RingReader::new(mem, RING_LEN).map_err(|_| -5i64)?;
        Ok(V4v { reader })
    }
}

impl Channel for V4v {
    fn name(&self) -> &'static str {
        "v4v"
    }
    fn send(&mut self, hc: &Hypercalls, len: usize) -> i64 {
        put(
            args(),
            SendAddr { src: Addr { port: SRC_PORT, domain: 0, pad: 0 }, dst: Addr { port: PORT, domain: 0, pad: 0 } },
        );
        put(iovs(), Iov { base: addr_of!(TX) as u64, len: len as u32, pad: 0 });
        hc.call(hypercall::V4V_OP, [u64::from(v4v::OP_SENDV), args() as u64, iovs() as u64, 1, u64::from(MSG_TYPE)])
    }
    fn recv(&mut self, copy: bool) -> Option<usize> {
        if copy {
            // SAFETY: RX is only used here, one borrow at a time.
            let buf = unsafe { &mut (*addr_of_mut!(RX)).0 };
            self.reader.recv(buf).ok()?.map(|m| m.header.len as usize)
        } else {
            self.reader.skip().ok()?.map(|h| h.len as usize)
        }
    }
    fn close(&mut self, hc: &Hypercalls) {
        put(args(), UnregisterRing { port: PORT, partner: 0, pad: 0 });
        hc.call(hypercall::V4V_OP, [u64::from(v4v::OP_UNREGISTER_RING), args() as u64, 0, 0, 0]);
    }
}

/// An Argo ring: `xen_argo_ring_t` is `rx_ptr`, `tx_ptr`, 56 reserved
/// bytes, then the data; each message is a 16-byte
/// `xen_argo_ring_message_header` (`len` counts the header) and the
/// payload, rounded up to 16 bytes, wrapping at the end of the data.
struct Argo {
    ring: *mut u8,
    rx: u32,
}

const ARGO_HDR: usize = argo::RING_HEADER_BYTES;
const ARGO_MSG_HDR: u32 = argo::MSG_HEADER_BYTES;

impl Argo {
    fn open(hc: &Hypercalls) -> Result<Argo, i64> {
        let ring = addr_of_mut!(ARGO_RING) as *mut u8;
        // SAFETY: the ring's pages, not registered yet.
        unsafe { core::ptr::write_bytes(ring, 0, RING_BYTES) };
        put(args(), argo::RegisterRing { aport: PORT, partner_id: 0, pad: 0, len: RING_LEN });
        let r =
            hc.call(hypercall::ARGO_OP, [argo::OP_REGISTER_RING, args() as u64, ring_gfns(ring), RING_PAGES as u64, 0]);
        if r != 0 {
            return Err(r);
        }
        Ok(Argo { ring, rx: 0 })
    }

    fn u32_at(&self, off: usize) -> u32 {
        // SAFETY: inside the ring; Xen may write it concurrently.
        unsafe { core::ptr::read_volatile(self.ring.add(off) as *const u32) }
    }
}

impl Channel for Argo {
    fn name(&self) -> &'static str {
        "argo"
    }
    fn send(&mut self, hc: &Hypercalls, len: usize) -> i64 {
        put(
            args(),
            argo::SendAddr {
                src: argo::Addr { aport: SRC_PORT, domain_id: 0, pad: 0 },
                dst: argo::Addr { aport: PORT, domain_id: 0, pad: 0 },
            },
        );
        put(iovs(), argo::Iov { iov_hnd: addr_of!(TX) as u64, iov_len: len as u32, pad: 0 });
        hc.call(hypercall::ARGO_OP, [argo::OP_SENDV, args() as u64, iovs() as u64, 1, u64::from(MSG_TYPE)])
    }
    fn recv(&mut self, copy: bool) -> Option<usize> {
        let tx = self.u32_at(argo::RING_TX_PTR);
        if tx == self.rx || tx >= RING_LEN {
            return None;
        }
        let total = self.u32_at(ARGO_HDR + self.rx as usize);
        if !(ARGO_MSG_HDR..=RING_LEN).contains(&total) {
            return None;
        }
        let n = (total - ARGO_MSG_HDR) as usize;
        if n > MSG_MAX {
            return None;
        }
        if copy {
            let off = (self.rx + ARGO_MSG_HDR) % RING_LEN;
            let first = core::cmp::min(n, (RING_LEN - off) as usize);
            let rx = addr_of_mut!(RX) as *mut u8;
            // SAFETY: both ranges are inside the ring's data and RX.
            unsafe {
                core::ptr::copy_nonoverlapping(self.ring.add(ARGO_HDR + off as usize), rx, first);
                if first < n {
                    core::ptr::copy_nonoverlapping(self.ring.add(ARGO_HDR), rx.add(first), n - first);
                }
            }
        }
        self.rx = (self.rx + total.next_multiple_of(argo::SLOT_BYTES)) % RING_LEN;
        // SAFETY: rx_ptr, the first word of the ring header.
        unsafe { core::ptr::write_volatile(self.ring.add(argo::RING_RX_PTR) as *mut u32, self.rx) };
        Some(n)
    }
    fn close(&mut self, hc: &Hypercalls) {
        put(args(), argo::UnregisterRing { aport: PORT, partner_id: 0, pad: 0 });
        hc.call(hypercall::ARGO_OP, [argo::OP_UNREGISTER_RING, args() as u64, 0, 0, 0]);
    }
}

/// Messages per batch: about 1 MiB of payload, at least 256 messages.
fn batch(size: usize) -> usize {
    core::cmp::max(256, (1 << 20) / size)
}

/// Ticks of `n` send + receive rounds; `Err` with the first failure.
/// `marked`: the rounds are one counting window of the profile plugin.
fn run_batch(
    hc: &Hypercalls,
    ch: &mut dyn Channel,
    size: usize,
    n: usize,
    copy: bool,
    marked: bool,
) -> Result<u64, (&'static str, i64)> {
    let t0 = tsc();
    if marked {
        mark(true);
    }
    let r = rounds(hc, ch, size, n, copy);
    if marked {
        mark(false);
    }
    r.map(|()| tsc() - t0)
}

fn rounds(hc: &Hypercalls, ch: &mut dyn Channel, size: usize, n: usize, copy: bool) -> Result<(), (&'static str, i64)> {
    for _ in 0..n {
        let r = ch.send(hc, size);
        if r != size as i64 {
            return Err(("sendv", r));
        }
        match ch.recv(copy) {
            Some(got) if got == size => {}
            Some(got) => return Err(("recv length", got as i64)),
            None => return Err(("recv", 0)),
        }
    }
    Ok(())
}

fn memcpy_batch(size: usize, n: usize) -> u64 {
    let t0 = tsc();
    for _ in 0..n {
        // SAFETY: TX and RX are distinct MSG_MAX-byte statics.
        unsafe {
            core::ptr::copy_nonoverlapping(
                core::hint::black_box(addr_of!(TX) as *const u8),
                core::hint::black_box(addr_of_mut!(RX) as *mut u8),
                size,
            )
        };
    }
    tsc() - t0
}

/// Prints a `BENCH` line (kept short: one console line each).
macro_rules! line {
    ($hc:expr, $($arg:tt)*) => {{
        let mut c = Console::new($hc);
        let _ = c.write_str("BENCH ");
        let _ = c.write_fmt(format_args!($($arg)*));
        let _ = c.write_str("\n");
    }};
}

fn ticks_list(hc: &Hypercalls, head: core::fmt::Arguments<'_>, t: &[u64; REPS]) {
    line!(hc, "{head} ticks={},{},{}", t[0], t[1], t[2]);
}

fn messages(hc: &Hypercalls) {
    // SAFETY: TX is only written here, before any send.
    unsafe {
        let tx = addr_of_mut!(TX) as *mut u8;
        for i in 0..MSG_MAX {
            tx.add(i).write(i as u8 ^ 0x5a);
        }
    }
    for size in [64usize, 1024, 16 << 10, 64 << 10] {
        let n = batch(size);
        let mut t = [0u64; REPS];
        memcpy_batch(size, 8);
        for x in t.iter_mut() {
            *x = memcpy_batch(size, n);
        }
        ticks_list(hc, format_args!("msg chan=memcpy mode=copy size={size} n={n}"), &t);
        for copy in [true, false] {
            let mode = if copy { "full" } else { "send" };
            // Alternate the two channels within each repetition so a slow
            // phase of the machine would hit both.
            let mut tv = [0u64; REPS];
            let mut ta = [0u64; REPS];
            let mut failed = [false; 2];
            for rep in 0..REPS {
                for (k, which) in [0usize, 1].iter().enumerate() {
                    if failed[k] {
                        continue;
                    }
                    let mut v;
                    let mut a;
                    let ch: &mut dyn Channel = if *which == 0 {
                        match V4v::open(hc) {
                            Ok(c) => {
                                v = c;
                                &mut v
                            }
                            Err(e) => {
                                line!(hc, "error chan=v4v step=register ret={e}");
                                failed[k] = true;
                                continue;
                            }
                        }
                    } else {
                        match Argo::open(hc) {
                            Ok(c) => {
                                a = c;
                                &mut a
                            }
                            Err(e) => {
                                line!(hc, "error chan=argo step=register ret={e}");
                                failed[k] = true;
                                continue;
                            }
                        }
                    };
                    // Warm-up: caches, the ring's mappings in Xen.
                    let warm = run_batch(hc, ch, size, 8, copy, false);
                    let r = warm.and_then(|_| run_batch(hc, ch, size, n, copy, false));
                    match r {
                        Ok(ticks) => {
                            if *which == 0 {
                                tv[rep] = ticks
                            } else {
                                ta[rep] = ticks
                            }
                        }
                        Err((step, ret)) => {
                            line!(hc, "error chan={} size={size} step={step} ret={ret}", ch.name());
                            failed[k] = true;
                        }
                    }
                    ch.close(hc);
                }
            }
            if !failed[0] {
                ticks_list(hc, format_args!("msg chan=v4v mode={mode} size={size} n={n}"), &tv);
            }
            if !failed[1] {
                ticks_list(hc, format_args!("msg chan=argo mode={mode} size={size} n={n}"), &ta);
            }
        }
    }
}

/// Messages per `OP_SENDV_BATCH` (issue 16 point 2: batches of 32 at 64 B).
const BATCH: usize = 32;
/// Batches per measurement.
const BATCH_ROUNDS: usize = 128;

/// `OP_SENDV_BATCH` of [`BATCH`] messages of `size` bytes to dom0's own
/// ring, message `i` from `TX + i * size`: the entries in the first 1 KiB
/// of `ARGS`, the iovs from 2 KiB. Returns Xen's value.
fn v4v_batch_send(hc: &Hypercalls, size: usize) -> i64 {
    let addr =
        SendAddr { src: Addr { port: SRC_PORT, domain: 0, pad: 0 }, dst: Addr { port: PORT, domain: 0, pad: 0 } };
    let ents = args();
    // SAFETY: inside the ARGS page (2 KiB + 32 * 16 bytes).
    let iovs = unsafe { args().add(2048) };
    for i in 0..BATCH {
        let e = BatchEnt { addr, iov_first: i as u32, niov: 1, msg_type: MSG_TYPE, status: 0 };
        let base = addr_of!(TX) as u64 + (i * size) as u64;
        // SAFETY: entry i and iov i are inside the ARGS page.
        unsafe {
            put(ents.add(i * BatchEnt::SIZE), e);
            put(iovs.add(i * Iov::SIZE), Iov { base, len: size as u32, pad: 0 });
        }
    }
    hc.call(hypercall::V4V_OP, [u64::from(v4v::OP_SENDV_BATCH), ents as u64, iovs as u64, BATCH as u64, BATCH as u64])
}

/// Ticks of `rounds` batches: one `OP_SENDV_BATCH` of [`BATCH`] messages,
/// then the reader takes them all in one pass (copying each out) and
/// writes `rx_ptr` once.
fn batch_rounds(hc: &Hypercalls, ch: &mut V4v, size: usize, rounds: usize) -> Result<u64, (&'static str, i64)> {
    // SAFETY: RX is only used here, one borrow at a time.
    let buf = unsafe { &mut (*addr_of_mut!(RX)).0 };
    let t0 = tsc();
    for _ in 0..rounds {
        let r = v4v_batch_send(hc, size);
        if r != BATCH as i64 {
            return Err(("sendv_batch", r));
        }
        let mut bad = 0usize;
        let got = ch.reader.recv_batch(buf, BATCH, |m, _| bad += usize::from(m.header.len as usize != size));
        match got {
            Ok(n) if n == BATCH && bad == 0 => {}
            Ok(n) => return Err(("recv_batch", n as i64)),
            Err(_) => return Err(("recv_batch", -1)),
        }
    }
    Ok(tsc() - t0)
}

/// Batched sends (issue 16 point 2): V4V `OP_SENDV_BATCH` of [`BATCH`]
/// messages per hypercall, received in one pass, at 64 B and 1 KiB, as
/// `BENCH msg chan=v4v-batch32 mode=full` lines (ticks for `n` messages),
/// to set against the per-message `full` lines of the same boot.
fn batched(hc: &Hypercalls) {
    for size in [64usize, 1024] {
        let mut t = [0u64; REPS];
        let mut failed = false;
        for x in t.iter_mut() {
            let mut ch = match V4v::open(hc) {
                Ok(c) => c,
                Err(e) => {
                    line!(hc, "error chan=v4v-batch{BATCH} step=register ret={e}");
                    return;
                }
            };
            let r = batch_rounds(hc, &mut ch, size, 4).and_then(|_| batch_rounds(hc, &mut ch, size, BATCH_ROUNDS));
            ch.close(hc);
            match r {
                Ok(ticks) => *x = ticks,
                Err((step, ret)) => {
                    line!(hc, "error chan=v4v-batch{BATCH} size={size} step={step} ret={ret}");
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            let n = BATCH * BATCH_ROUNDS;
            ticks_list(hc, format_args!("msg chan=v4v-batch{BATCH} mode=full size={size} n={n}"), &t);
        }
    }
}

/// Message sizes and calls per window of the profile (`make
/// bench-xen-profile`, issue 16): 4 KiB and 64 KiB give the cost per page.
const PROFILE_SIZES: [usize; 4] = [64, 1024, 4 << 10, 64 << 10];
const PROFILE_CALLS: usize = 256;

/// Profile mode (`bench=profile` on the command line): for each size, V4V
/// then Argo in mode `send` (sendv, then drop the message), a warm-up batch
/// and then one marked batch of PROFILE_CALLS rounds, which the insn-prof
/// plugin counts per instruction address. Each marked batch is numbered in order
/// (the plugin numbers its windows the same way) and printed as
/// `BENCH window seq=.. chan=.. mode=send size=.. n=.. ticks=..`.
fn profile(hc: &Hypercalls) {
    // SAFETY: TX is only written here, before any send.
    unsafe {
        let tx = addr_of_mut!(TX) as *mut u8;
        for i in 0..MSG_MAX {
            tx.add(i).write(i as u8 ^ 0x5a);
        }
    }
    let mut seq = 0;
    for size in PROFILE_SIZES {
        for which in 0..2 {
            let mut v;
            let mut a;
            let ch: &mut dyn Channel = if which == 0 {
                match V4v::open(hc) {
                    Ok(c) => {
                        v = c;
                        &mut v
                    }
                    Err(e) => {
                        line!(hc, "error chan=v4v step=register ret={e}");
                        continue;
                    }
                }
            } else {
                match Argo::open(hc) {
                    Ok(c) => {
                        a = c;
                        &mut a
                    }
                    Err(e) => {
                        line!(hc, "error chan=argo step=register ret={e}");
                        continue;
                    }
                }
            };
            let r = run_batch(hc, ch, size, 8, false, false)
                .and_then(|_| run_batch(hc, ch, size, PROFILE_CALLS, false, true));
            match r {
                Ok(ticks) => {
                    line!(
                        hc,
                        "window seq={seq} chan={} mode=send size={size} n={PROFILE_CALLS} ticks={ticks}",
                        ch.name()
                    );
                    seq += 1;
                }
                // A failed batch may have closed its window or not: stop
                // here so the plugin's numbering cannot drift.
                Err((step, ret)) => {
                    line!(hc, "error chan={} size={size} step={step} ret={ret}", ch.name());
                    ch.close(hc);
                    return;
                }
            }
            ch.close(hc);
        }
    }
}

fn sshm_name() -> [u8; sshm::NAME_BYTES] {
    match Name::new("bench") {
        Ok(n) => *n.field(),
        Err(_) => [0; sshm::NAME_BYTES],
    }
}

fn sshm_call(hc: &Hypercalls, op: &StaticShm) -> i64 {
    let d = Domctl::static_shm(DomId(0), op);
    let b = d.to_bytes();
    // SAFETY: the domctl fits in the ARGS page (checked by the slice).
    unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), args(), b.len().min(4096)) };
    hc.call(hypercall::DOMCTL, [args() as u64, 0, 0, 0, 0])
}

/// `struct xen_memory_reservation`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Reservation {
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
    pad: [u16; 3],
}

/// populate_physmap (or decrease_reservation) of `pages` at POPULATE_GFN
/// in extents of `order`; returns (Xen's value, ticks).
fn reservation(hc: &Hypercalls, cmd: u64, pages: u64, order: u32) -> (i64, u64) {
    let n = (pages >> order) as usize;
    let ext = addr_of_mut!(EXTENTS) as *mut u64;
    for i in 0..n.min(EXTENTS_MAX) {
        // SAFETY: at most EXTENTS_MAX entries.
        unsafe { ext.add(i).write(POPULATE_GFN + ((i as u64) << order)) };
    }
    put(
        args(),
        Reservation {
            extent_start: ext as u64,
            nr_extents: n as u64,
            extent_order: order,
            mem_flags: 0,
            domid: DOMID_SELF,
            pad: [0; 3],
        },
    );
    let t0 = tsc();
    let r = hc.call(hypercall::MEMORY_OP, [cmd, args() as u64, 0, 0, 0]);
    (r, tsc() - t0)
}

fn populate(hc: &Hypercalls, mib: u64) {
    let pages = mib << 8;
    for (order, tag) in [(9u32, "2m"), (0, "4k")] {
        let n = pages >> order;
        let mut tp = [0u64; REPS];
        let mut tr = [0u64; REPS];
        let mut ok = true;
        for rep in 0..REPS {
            let (r, t) = reservation(hc, XENMEM_POPULATE_PHYSMAP, pages, order);
            tp[rep] = t;
            if r != n as i64 {
                line!(hc, "error kind=populate_{tag} mib={mib} step=populate rep={rep} ret={r} want={n}");
                // Give back whatever was populated.
                if r > 0 {
                    reservation(hc, XENMEM_DECREASE_RESERVATION, (r as u64) << order, order);
                }
                ok = false;
                break;
            }
            let (r, t) = reservation(hc, XENMEM_DECREASE_RESERVATION, pages, order);
            tr[rep] = t;
            if r != n as i64 {
                line!(hc, "error kind=populate_{tag} mib={mib} step=decrease rep={rep} ret={r} want={n}");
                ok = false;
                break;
            }
        }
        if ok {
            ticks_list(hc, format_args!("mem kind=populate_{tag} mib={mib}"), &tp);
            ticks_list(hc, format_args!("mem kind=decrease_{tag} mib={mib}"), &tr);
        }
    }
}

/// Reads the first word at `gfn` (identity-mapped below 16 GiB).
fn peek_gfn(gfn: u64) -> u64 {
    // SAFETY: inside the identity map; an unmapped gfn reads as all ones
    // (emulated), a mapped one as memory.
    unsafe { core::ptr::read_volatile((gfn * PAGE_SIZE) as *const u64) }
}

fn poke_gfn(gfn: u64, v: u64) {
    // SAFETY: as `peek_gfn`, on an attachment of ours.
    unsafe { core::ptr::write_volatile((gfn * PAGE_SIZE) as *mut u64, v) }
}

/// Creates the bench region of `pages` (allocating and clearing its
/// backing, in steps of `BUILD_PAGES_STEP` pages with continuations) and
/// unlinks it again REPS times, timing each create; the last one stays.
/// Returns the create ticks, or `None` after an error line.
fn sshm_creates(hc: &Hypercalls, pages: u64, what: &str) -> Option<[u64; REPS]> {
    let name = sshm_name();
    let create = StaticShm {
        op: sshm::OP_CREATE,
        flags: sshm::F_PERSISTENT,
        name,
        nr_pages: pages,
        prot: sshm::PROT_RW,
        ..Default::default()
    };
    let mut tc = [0u64; REPS];
    for (rep, t) in tc.iter_mut().enumerate() {
        let t0 = tsc();
        let r = sshm_call(hc, &create);
        *t = tsc() - t0;
        if r != 0 {
            line!(hc, "error kind=sshm pages={pages} step={what} rep={rep} ret={r}");
            return None;
        }
        // The unlink returns at once; Xen's release tasklet gives the
        // backing back before this vCPU runs again (one pCPU).
        if rep + 1 < REPS {
            let r = sshm_call(hc, &StaticShm { op: sshm::OP_UNLINK, name, ..Default::default() });
            if r != 0 {
                line!(hc, "error kind=sshm pages={pages} step=unlink rep={rep} ret={r}");
                return None;
            }
        }
    }
    Some(tc)
}

/// The longest single step of creating a region: a create of exactly
/// `BUILD_PAGES_STEP` pages is one step (no continuation).
fn sshm_create_step(hc: &Hypercalls) {
    let Some(t) = sshm_creates(hc, sshm::BUILD_PAGES_STEP, "create_step") else { return };
    ticks_list(hc, format_args!("mem kind=sshm_create_step mib={}", sshm::BUILD_PAGES_STEP >> 8), &t);
    let r = sshm_call(hc, &StaticShm { op: sshm::OP_UNLINK, name: sshm_name(), ..Default::default() });
    if r != 0 {
        line!(hc, "error kind=sshm step=unlink_step ret={r}");
    }
}

/// Static shm: create (allocates and zeroes the backing; timed, REPS
/// times), then attach and detach REPS times, each attachment at a fresh
/// 1 GiB-aligned gfn (`slot`), then unlink.
fn sshm(hc: &Hypercalls, mib: u64, slot: &mut u64) {
    let pages = mib << 8;
    let name = sshm_name();
    let Some(tc) = sshm_creates(hc, pages, "create") else { return };
    ticks_list(hc, format_args!("mem kind=sshm_create mib={mib}"), &tc);
    let mut ta = [0u64; REPS];
    let mut td = [0u64; REPS];
    let mut ok = true;
    for rep in 0..REPS {
        let gfn = SSHM_GFN + *slot * (1 << 18);
        *slot += 1;
        let at =
            StaticShm { op: sshm::OP_ATTACH, name, nr_pages: pages, gfn, prot: sshm::PROT_RW, ..Default::default() };
        let t0 = tsc();
        let r = sshm_call(hc, &at);
        ta[rep] = tsc() - t0;
        if r != 0 {
            line!(hc, "error kind=sshm mib={mib} step=attach rep={rep} gfn={gfn:#x} ret={r}");
            ok = false;
            break;
        }
        let check = gfn * PAGE_SIZE + PAGE_SIZE < crate::boot::IDENTITY_MAP_BYTES;
        if check {
            poke_gfn(gfn, 0x5353_484d_0000_0000 | mib);
        }
        let de = StaticShm { op: sshm::OP_DETACH, name, gfn, ..Default::default() };
        let t0 = tsc();
        let r = sshm_call(hc, &de);
        td[rep] = tsc() - t0;
        if r != 0 {
            line!(hc, "error kind=sshm mib={mib} step=detach rep={rep} ret={r}");
            ok = false;
            break;
        }
        if check {
            // After a detach the gfn must no longer reach the region.
            let v = peek_gfn(gfn);
            let stale = u64::from(v == 0x5353_484d_0000_0000 | mib);
            line!(hc, "detach_check mib={mib} rep={rep} gfn={gfn:#x} after={v:#x} stale={stale}");
        }
    }
    if ok {
        ticks_list(hc, format_args!("mem kind=sshm_attach mib={mib}"), &ta);
        ticks_list(hc, format_args!("mem kind=sshm_detach mib={mib}"), &td);
    }
    let r = sshm_call(hc, &StaticShm { op: sshm::OP_UNLINK, name, ..Default::default() });
    if r != 0 {
        line!(hc, "error kind=sshm mib={mib} step=unlink ret={r}");
    }
}

/// Largest size first, populate before sshm: the free heap is then the
/// largest for the 1 GiB runs, whatever the smaller ones leave behind.
fn memory(hc: &Hypercalls) {
    let mut slot = 0;
    heap(hc, "start");
    sshm_create_step(hc);
    for mib in REGION_MIB.iter().rev().copied() {
        populate(hc, mib);
        heap(hc, "populated");
        sshm(hc, mib, &mut slot);
        heap(hc, "sshm");
    }
}

/// Xen's free memory (`XEN_SYSCTL_physinfo`) and dom0's current and
/// maximum reservation, in MiB.
fn heap(hc: &Hypercalls, when: &str) {
    const SYSCTL_BYTES: usize = 8 + 128;
    let mut b = [0u8; SYSCTL_BYTES];
    b[0..4].copy_from_slice(&3u32.to_le_bytes()); // XEN_SYSCTL_physinfo
    b[4..8].copy_from_slice(&0x15u32.to_le_bytes()); // interface version
                                                     // SAFETY: the sysctl fits in the ARGS page.
    unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), args(), SYSCTL_BYTES) };
    let r = hc.call(35, [args() as u64, 0, 0, 0, 0]);
    // SAFETY: as above; Xen wrote the result back.
    let free = unsafe { core::ptr::read_unaligned(args().add(8 + 48) as *const u64) };
    let dom = DOMID_SELF;
    put(args(), dom);
    let cur = hc.call(hypercall::MEMORY_OP, [3, args() as u64, 0, 0, 0]);
    let max = hc.call(hypercall::MEMORY_OP, [4, args() as u64, 0, 0, 0]);
    line!(hc, "heap when={when} sysctl={r} free_mib={} dom0_cur_mib={} dom0_max_mib={}", free >> 8, cur >> 8, max >> 8);
}

/// Runs every measurement, prints `BENCH` lines, then `BENCH done`; with
/// `profile`, the profile's windows instead.
pub fn run(hc: &Hypercalls, profile: bool) {
    // The clock: ticks of 2e7 and 4e7 instructions, twice each.
    for n in [10_000_000u64, 20_000_000, 10_000_000, 20_000_000] {
        let t0 = tsc();
        spin(n);
        let t = tsc() - t0;
        line!(hc, "calib insns={} ticks={t}", 2 * n);
    }
    if profile {
        self::profile(hc);
        line!(hc, "done");
        return;
    }
    // BENCH_ONLY=mem|msg at build time runs one half (for debugging).
    let only = option_env!("BENCH_ONLY").unwrap_or("");
    if only != "mem" {
        messages(hc);
        batched(hc);
    }
    if only != "msg" {
        memory(hc);
    }
    line!(hc, "done");
}
