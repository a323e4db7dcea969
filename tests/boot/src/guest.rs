//! Guest mode: V4V roles for the end-to-end test (issue 12, scenario 6).
//!
//! The kernel runs a role when its command line has a `v4v=` key (see
//! `tests/boot/README.md` for every key). Each role binds `VIRQ_V4V` and
//! blocks in `SCHEDOP_poll` whenever it waits for data or for ring space
//! (see [`crate::evtchn`]): nothing here spins on a ring. Every line it
//! prints starts with `v4v-guest: ` and goes to Xen's console through port
//! 0xE9, so dom0 reads it with `xl dmesg` as `(dN) v4v-guest: ...`.
//!
//! A role never powers off by itself once started: when its job is done it
//! keeps serving (receivers keep receiving, the others idle in
//! `SCHEDOP_poll`) until dom0 destroys it. Only a fatal error (a bad command
//! line, a failing hypercall that must not fail, a corrupt message) prints a
//! `v4v-guest: FATAL ...` line and powers off.
//!
//! Messages: `size` bytes, `V4VG`, a little-endian sequence number, then a
//! pattern derived from the sequence number. A receiver checks every byte,
//! that each source's sequence numbers go 0, 1, 2, ... and takes the source
//! from the header Xen stamped, never from the payload.

use core::fmt::{self, Write};
use core::ptr::addr_of_mut;
use core::sync::atomic::{fence, Ordering};

use hypercall_abi::ring::{prepare, RingError, RingMemory, RingReader};
use hypercall_abi::v4v::{
    self, Addr, Info, Iov, MsgHeader, RegisterRing, RingData, RingDataEnt, RingHeader, SendAddr, UnregisterRing, Wire,
};
use hypercall_abi::{hypercall, DomId, Errno, PAGE_SIZE};

use crate::cmdline::{BadValue, Cmdline};
use crate::evtchn::{now_ns, Events, Wake};
use crate::xen::{Console, Hypercalls};

/// Bytes of the main ring's pages: up to 4 pages, so `ring=` may be up to
/// [`RING_LEN_MAX`].
const RING_AREA_BYTES: usize = 4 * PAGE_SIZE as usize;
/// Largest `ring=`: the area minus the ring header.
const RING_LEN_MAX: u32 = RING_AREA_BYTES as u32 - v4v::RING_HEADER_BYTES;
/// Default `ring=`: one page.
const RING_LEN_DEFAULT: u32 = PAGE_SIZE as u32 - v4v::RING_HEADER_BYTES;
/// Largest `size=` (one message's payload).
const SIZE_MAX: u32 = 2048;
/// Smallest `size=`: the magic and the sequence number.
const SIZE_MIN: u32 = 8;
/// The self-test's ring: port, data bytes, message size.
const SELF_PORT: u32 = 0xfff0_0001;
const SELF_RING_LEN: u32 = 256;
const SELF_MSG: u32 = 32;
/// Message type of every message sent here.
const MSG_TYPE: u32 = 0x5647;
/// Payload magic.
const MAGIC: [u8; 4] = *b"V4VG";
/// Distinct sources a receiver tracks.
const SOURCES_MAX: usize = 16;
/// Largest time value (ms) any key takes: one day.
const MS_MAX: u64 = 24 * 3600 * 1000;
/// A refused sender retries no faster than this (ms).
const RETRY_MS_MIN: u64 = 100;

#[repr(C, align(4096))]
struct Pages<const N: usize>([u8; N]);

/// The role's ring (recv, echo, ping).
static mut RING_AREA: Pages<RING_AREA_BYTES> = Pages([0; RING_AREA_BYTES]);
/// The self-test's ring.
static mut SELF_RING_AREA: Pages<{ PAGE_SIZE as usize }> = Pages([0; PAGE_SIZE as usize]);
/// Hypercall arguments: a struct at 0, iovs at [`IOVS`], the gfn list at
/// [`GFNS`], notify entries at [`NOTIFY`].
static mut ARGS: Pages<{ PAGE_SIZE as usize }> = Pages([0; PAGE_SIZE as usize]);
/// The payload being sent.
static mut TX: Pages<{ SIZE_MAX as usize }> = Pages([0; SIZE_MAX as usize]);
/// The payload being received (a whole ring's worth, so no message is too
/// big to take).
static mut RX: Pages<RING_AREA_BYTES> = Pages([0; RING_AREA_BYTES]);

const IOVS: u64 = 1024;
const GFNS: u64 = 2048;
const NOTIFY: u64 = 3072;

fn args() -> u64 {
    addr_of_mut!(ARGS) as u64
}

fn tx() -> u64 {
    addr_of_mut!(TX) as u64
}

/// Writes `b` at identity-mapped `gpa`, volatile: Xen reads it.
fn phys_write(gpa: u64, b: &[u8]) {
    for (i, &x) in b.iter().enumerate() {
        // SAFETY: callers pass addresses inside this module's statics
        // (ARGS, TX, the ring areas), which Rust code reaches only through
        // these helpers; the identity map makes the address a pointer.
        unsafe { core::ptr::write_volatile((gpa as usize + i) as *mut u8, x) };
    }
}

/// Reads `b.len()` bytes at identity-mapped `gpa`, volatile: Xen writes it.
fn phys_read(gpa: u64, b: &mut [u8]) {
    for (i, x) in b.iter_mut().enumerate() {
        // SAFETY: as in `phys_write`.
        *x = unsafe { core::ptr::read_volatile((gpa as usize + i) as *const u8) };
    }
}

fn put<T: Wire>(gpa: u64, v: &T) {
    let mut b = [0u8; 128];
    v.write(&mut b[..T::SIZE]);
    phys_write(gpa, &b[..T::SIZE]);
}

fn get<T: Wire>(gpa: u64) -> T {
    let mut b = [0u8; 128];
    phys_read(gpa, &mut b[..T::SIZE]);
    T::read(&b[..T::SIZE])
}

/// A ring in identity-mapped memory, for hypercall-abi's reader.
struct IdRing {
    base: u64,
    bytes: usize,
}

impl RingMemory for IdRing {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        if offset.checked_add(buf.len()).is_none_or(|end| end > self.bytes) {
            return Err(RingError::Fault);
        }
        phys_read(self.base + offset as u64, buf);
        Ok(())
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        if offset.checked_add(buf.len()).is_none_or(|end| end > self.bytes) {
            return Err(RingError::Fault);
        }
        phys_write(self.base + offset as u64, buf);
        Ok(())
    }
}

/// A hypercall return value: `-ECONNREFUSED (111)` or the number.
struct Ret(i64);

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Errno::from_ret(self.0) {
            Some(e) => write!(f, "-{e}"),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Prints `v4v-guest: ` and the line.
fn say(hc: &Hypercalls, args: fmt::Arguments<'_>) {
    let mut c = Console::new(hc);
    // The console writer never fails.
    let _ = c.write_str("v4v-guest: ");
    let _ = c.write_fmt(args);
    let _ = c.write_str("\n");
}

/// Prints a `FATAL` line and powers off.
fn fatal(hc: &Hypercalls, args: fmt::Arguments<'_>) -> ! {
    say(hc, format_args!("FATAL {args}; powering off"));
    hc.poweroff()
}

macro_rules! say {
    ($hc:expr, $($a:tt)*) => { say(&$hc, format_args!($($a)*)) };
}

macro_rules! fatal {
    ($hc:expr, $($a:tt)*) => { fatal(&$hc, format_args!($($a)*)) };
}

/// What the kernel does, from `v4v=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Recv,
    Send,
    Echo,
    Ping,
    Try,
    SelfTest,
    Idle,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "recv" => Role::Recv,
            "send" => Role::Send,
            "echo" => Role::Echo,
            "ping" => Role::Ping,
            "try" => Role::Try,
            "self" => Role::SelfTest,
            "idle" => Role::Idle,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Role::Recv => "recv",
            Role::Send => "send",
            Role::Echo => "echo",
            Role::Ping => "ping",
            Role::Try => "try",
            Role::SelfTest => "self",
            Role::Idle => "idle",
        }
    }

    fn needs_peer(self) -> bool {
        matches!(self, Role::Send | Role::Ping | Role::Try)
    }
}

/// Every key a role understands.
const KEYS: &[&str] =
    &["v4v", "e2e", "peer", "port", "count", "size", "ring", "delay", "gap", "wait", "report", "notify"];

/// The role and its parameters.
struct Params {
    role: Role,
    peer: u16,
    port: u32,
    count: u64,
    size: u32,
    ring: u32,
    delay_ms: u64,
    gap_ms: u64,
    wait_ms: u64,
    report: u64,
    notify_empty: bool,
}

/// Why the command line is unusable.
enum BadCmdline<'a> {
    UnknownKey(&'a str),
    UnknownRole(&'a str),
    BadValue(BadValue<'a>),
    Missing(&'static str),
    Invalid(&'static str, u64),
}

impl<'a> From<BadValue<'a>> for BadCmdline<'a> {
    fn from(b: BadValue<'a>) -> Self {
        BadCmdline::BadValue(b)
    }
}

impl fmt::Display for BadCmdline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadCmdline::UnknownKey(k) => write!(f, "unknown key '{k}'"),
            BadCmdline::UnknownRole(r) => write!(f, "unknown role v4v={r} (recv, send, echo, ping, try, self, idle)"),
            BadCmdline::BadValue(BadValue::Number { key, value }) => write!(f, "bad value {key}='{value}'"),
            BadCmdline::Missing(k) => write!(f, "missing key {k}="),
            BadCmdline::Invalid(k, v) => write!(f, "invalid {k}={v}"),
        }
    }
}

impl Params {
    fn parse<'a>(c: &Cmdline<'a>) -> Result<Params, BadCmdline<'a>> {
        if let Some((k, _)) = c.words().find(|(k, _)| !KEYS.contains(k)) {
            return Err(BadCmdline::UnknownKey(k));
        }
        // `e2e=idle` (the sshm scenarios' guests) is `v4v=idle`.
        let r = c.get("v4v").or_else(|| c.get("e2e").filter(|&r| r == "idle")).unwrap_or("");
        let role = Role::parse(r).ok_or(BadCmdline::UnknownRole(r))?;
        let peer = c.number("peer", u64::from(DomId::FIRST_RESERVED.0), u64::from(DomId::FIRST_RESERVED.0) - 1)?;
        if role.needs_peer() && c.get("peer").is_none() {
            return Err(BadCmdline::Missing("peer"));
        }
        let count_default = match role {
            Role::Recv | Role::Echo => 0,
            _ => 10,
        };
        let p = Params {
            role,
            peer: peer as u16,
            port: c.number("port", 1, u64::from(u32::MAX))? as u32,
            count: c.number("count", count_default, u64::MAX)?,
            size: c.number("size", 64, u64::from(SIZE_MAX))? as u32,
            ring: c.number("ring", u64::from(RING_LEN_DEFAULT), u64::from(RING_LEN_MAX))? as u32,
            delay_ms: c.number("delay", 0, MS_MAX)?,
            gap_ms: c.number("gap", 0, MS_MAX)?,
            wait_ms: c.number("wait", 5000, MS_MAX)?,
            report: c.number("report", 0, u64::MAX)?,
            notify_empty: match c.get("notify") {
                None | Some("all") => false,
                Some("empty") => true,
                Some(v) => return Err(BadValue::Number { key: "notify", value: v }.into()),
            },
        };
        if p.size < SIZE_MIN {
            return Err(BadCmdline::Invalid("size", p.size.into()));
        }
        if !hypercall_abi::ring::valid_len(p.ring) {
            return Err(BadCmdline::Invalid("ring", p.ring.into()));
        }
        if p.wait_ms == 0 {
            return Err(BadCmdline::Invalid("wait", 0));
        }
        Ok(p)
    }
}

/// Byte `i` (at or after 8) of message `seq`'s payload.
fn pattern(seq: u32, i: usize) -> u8 {
    (seq as u8).wrapping_mul(31).wrapping_add(i as u8).wrapping_add((seq >> 8) as u8)
}

/// Puts message `seq` of `len` bytes in TX.
fn fill_tx(seq: u32, len: u32) {
    let mut b = [0u8; SIZE_MAX as usize];
    let b = &mut b[..len as usize];
    b[..4].copy_from_slice(&MAGIC);
    b[4..8].copy_from_slice(&seq.to_le_bytes());
    for (i, x) in b.iter_mut().enumerate().skip(8) {
        *x = pattern(seq, i);
    }
    phys_write(tx(), b);
}

/// The sequence number of a well-formed payload.
fn check_payload(b: &[u8]) -> Result<u32, &'static str> {
    if b.len() < SIZE_MIN as usize {
        return Err("payload too short");
    }
    if b[..4] != MAGIC {
        return Err("bad magic");
    }
    let seq = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if b.iter().enumerate().skip(8).any(|(i, &x)| x != pattern(seq, i)) {
        return Err("payload pattern mismatch");
    }
    Ok(seq)
}

/// V4V hypercalls with their arguments in ARGS.
struct V4v {
    hc: Hypercalls,
}

impl V4v {
    fn op(&self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
        self.hc.call(hypercall::V4V_OP, [u64::from(cmd), a1, a2, a3, a4])
    }

    /// Prepares the ring at `area` and registers it (any sender).
    fn register(&self, area: u64, area_bytes: usize, port: u32, len: u32, flags: u32) -> Result<IdRing, i64> {
        let reg = RegisterRing { port, partner: v4v::DOMID_ANY, len, ..Default::default() };
        let pages = reg.pages() as usize;
        debug_assert!(pages * PAGE_SIZE as usize <= area_bytes);
        let mut mem = IdRing { base: area, bytes: pages * PAGE_SIZE as usize };
        phys_write(area, &[0u8; PAGE_SIZE as usize]);
        prepare(&mut mem, len, flags).map_err(|_| Errno::EINVAL.to_ret())?;
        put(args(), &reg);
        for i in 0..pages {
            phys_write(args() + GFNS + 8 * i as u64, &(area / PAGE_SIZE + i as u64).to_le_bytes());
        }
        match self.op(v4v::OP_REGISTER_RING, args(), args() + GFNS, pages as u64, 0) {
            0 => Ok(mem),
            r => Err(r),
        }
    }

    fn unregister(&self, port: u32) -> i64 {
        put(args(), &UnregisterRing { port, partner: v4v::DOMID_ANY, pad: 0 });
        self.op(v4v::OP_UNREGISTER_RING, args(), 0, 0, 0)
    }

    /// Sends TX[..len] to (`dst`, `port`) from (`DOMID_SELF`, `src_port`).
    fn sendv(&self, dst: u16, port: u32, src_port: u32, len: u32) -> i64 {
        let src = Addr { port: src_port, domain: DomId::SELF_.0, pad: 0 };
        put(args(), &SendAddr { src, dst: Addr { port, domain: dst, pad: 0 } });
        put(args() + IOVS, &Iov { base: tx(), len, pad: 0 });
        self.op(v4v::OP_SENDV, args(), args() + IOVS, 1, u64::from(MSG_TYPE))
    }

    /// Notify with one entry: asks to be woken when `space` bytes fit in
    /// (`dst`, `port`). The entry's `RD_F_*` flags, or the error.
    fn notify_wake(&self, dst: u16, port: u32, space: u32) -> Result<u16, i64> {
        let rd = args() + NOTIFY;
        put(rd, &RingData { nent: 1, pad: 0, reserved: 0 });
        let ent = RingDataEnt {
            ring: Addr { port, domain: dst, pad: 0 },
            flags: v4v::RD_F_WAKE,
            space_required: space,
            ..Default::default()
        };
        let e = rd + RingData::SIZE as u64;
        put(e, &ent);
        match self.op(v4v::OP_NOTIFY, rd, 0, 0, 0) {
            0 => Ok(get::<RingDataEnt>(e).flags),
            r => Err(r),
        }
    }

    /// Notify without entries: Xen re-reads this domain's `rx_ptr`s and
    /// wakes the senders waiting for the space just freed.
    fn notify(&self) -> i64 {
        self.op(v4v::OP_NOTIFY, 0, 0, 0, 0)
    }

    fn info(&self) -> Result<Info, i64> {
        match self.op(v4v::OP_INFO, args(), 0, 0, 0) {
            0 => Ok(get(args())),
            r => Err(r),
        }
    }
}

/// One source a receiver has seen.
#[derive(Clone, Copy, Default)]
struct Source {
    addr: Addr,
    next_seq: u32,
    msgs: u64,
}

/// Wake-up and send statistics.
#[derive(Default)]
struct Stats {
    /// Waits ended by the VIRQ.
    wakeups: u64,
    /// Waits ended by their deadline.
    timeouts: u64,
    /// Waits ended with neither.
    spurious: u64,
    /// Sends refused with `-EAGAIN`.
    full: u64,
    /// Waits after `-EAGAIN` (the sender asked to be woken and blocked).
    full_waits: u64,
    /// Waits after `-EAGAIN` ended by the VIRQ.
    full_woken: u64,
}

/// The running role.
struct Node {
    hc: Hypercalls,
    v4v: V4v,
    ev: Events,
    p: Params,
    reader: Option<RingReader<IdRing>>,
    sources: [Source; SOURCES_MAX],
    nsources: usize,
    received: u64,
    st: Stats,
    start_ns: u64,
}

impl Node {
    fn elapsed_ms(&self) -> u64 {
        now_ns().saturating_sub(self.start_ns) / 1_000_000
    }

    /// Blocks until the VIRQ (no deadline); counts the wake-up.
    fn block(&mut self) {
        match self.ev.wait(None) {
            Ok(Wake::Event) => self.st.wakeups += 1,
            Ok(Wake::Timeout) => self.st.timeouts += 1,
            Ok(Wake::Spurious) => self.st.spurious += 1,
            Err(r) => fatal!(self.hc, "SCHEDOP_poll failed: {}", Ret(r)),
        }
    }

    /// Blocks until the VIRQ or `wait=` ms; counts the wake-up.
    fn block_timed(&mut self) -> Wake {
        let deadline = now_ns().saturating_add(self.p.wait_ms.saturating_mul(1_000_000));
        let w = match self.ev.wait(Some(deadline)) {
            Ok(w) => w,
            Err(r) => fatal!(self.hc, "SCHEDOP_poll failed: {}", Ret(r)),
        };
        match w {
            Wake::Event => self.st.wakeups += 1,
            Wake::Timeout => self.st.timeouts += 1,
            Wake::Spurious => self.st.spurious += 1,
        }
        w
    }

    fn sleep_ms(&self, ms: u64) {
        if let Err(r) = self.ev.sleep_ms(ms) {
            fatal!(self.hc, "SCHEDOP_poll (sleep) failed: {}", Ret(r));
        }
    }

    /// Registers the role's ring on `port=` and prints the ready line.
    fn open_ring(&mut self) {
        let flags = if self.p.notify_empty { v4v::RING_F_NOTIFY_EMPTY_ONLY } else { 0 };
        let area = addr_of_mut!(RING_AREA) as u64;
        let mem = match self.v4v.register(area, RING_AREA_BYTES, self.p.port, self.p.ring, flags) {
            Ok(m) => m,
            Err(r) => fatal!(self.hc, "register ring port {} len {}: {}", self.p.port, self.p.ring, Ret(r)),
        };
        let hdr: RingHeader = get(area);
        match RingReader::new(mem, self.p.ring) {
            Ok(r) => self.reader = Some(r),
            Err(e) => fatal!(self.hc, "ring reader: {e:?}"),
        }
        say!(
            self.hc,
            "ready role={} dom {} port {} ring {} evtchn {}",
            self.p.role.name(),
            hdr.id.domain,
            self.p.port,
            self.p.ring,
            self.ev.port()
        );
    }

    fn ring_empty(&self) -> bool {
        match self.reader.as_ref().map(|r| r.is_empty()) {
            Some(Ok(e)) => e,
            Some(Err(e)) => fatal!(self.hc, "ring tx_ptr corrupt: {e:?}"),
            None => true,
        }
    }

    /// Takes the next message of the role's ring into RX, checks it and
    /// accounts it to its source. Its header, or `None` if the ring is empty.
    fn recv_one(&mut self) -> Option<MsgHeader> {
        let reader = self.reader.as_mut()?;
        // SAFETY: RX is only borrowed here, once at a time, and only by
        // Rust code (Xen never sees its address).
        let buf = unsafe { &mut (*addr_of_mut!(RX)).0 };
        let h = match reader.recv(buf) {
            Ok(Some(m)) => m.header,
            Ok(None) => return None,
            Err(e) => fatal!(self.hc, "ring recv: {e:?}"),
        };
        let seq = match check_payload(&buf[..h.len as usize]) {
            Ok(s) => s,
            Err(why) => {
                fatal!(self.hc, "{why} in message from dom {} port {}", h.source.domain, h.source.port)
            }
        };
        self.received += 1;
        let i = match self.sources[..self.nsources].iter().position(|s| s.addr == h.source) {
            Some(i) => i,
            None if self.nsources < SOURCES_MAX => {
                self.sources[self.nsources] = Source { addr: h.source, ..Default::default() };
                self.nsources += 1;
                self.nsources - 1
            }
            None => fatal!(self.hc, "more than {SOURCES_MAX} sources"),
        };
        let s = &mut self.sources[i];
        if seq != s.next_seq {
            fatal!(
                self.hc,
                "message from dom {} port {} has seq {seq}, want {}",
                h.source.domain,
                h.source.port,
                s.next_seq
            );
        }
        s.next_seq = seq.wrapping_add(1);
        s.msgs += 1;
        let (addr, msgs) = (s.addr, s.msgs);
        if msgs == 1 {
            say!(self.hc, "from dom {} port {} ok", addr.domain, addr.port);
        }
        if self.p.report != 0 && msgs % self.p.report == 0 {
            say!(self.hc, "dom {} port {} msgs {}", addr.domain, addr.port, msgs);
        }
        Some(h)
    }

    /// Tells Xen this domain consumed data, so waiting senders are woken.
    fn consumed(&self) {
        let r = self.v4v.notify();
        if r != 0 {
            fatal!(self.hc, "notify after receiving: {}", Ret(r));
        }
    }

    /// Sends TX[..len] to (`dst`, `port`); on `-EAGAIN` asks to be woken
    /// when it fits (notify with `RD_F_WAKE`) and blocks on the VIRQ, then
    /// retries. `Err` is any other error.
    fn send_waiting(&mut self, dst: u16, port: u32, len: u32) -> Result<(), i64> {
        loop {
            self.ev.clear();
            let r = self.v4v.sendv(dst, port, self.p.port, len);
            if r == i64::from(len) {
                return Ok(());
            }
            if r != Errno::EAGAIN.to_ret() {
                return Err(r);
            }
            self.st.full += 1;
            match self.v4v.notify_wake(dst, port, len) {
                // Space freed between the send and the notify.
                Ok(f) if f & v4v::RD_F_SUFFICIENT != 0 => continue,
                // The ring went away: the retry reports why.
                Ok(f) if f & v4v::RD_F_EXISTS == 0 => continue,
                Ok(_) => {}
                Err(r) => say!(self.hc, "notify (wake request) failed: {}; waiting with timeout", Ret(r)),
            }
            self.st.full_waits += 1;
            if self.st.full_waits == 1 {
                say!(self.hc, "ring of dom {dst} port {port} full, waiting for space");
            }
            match self.block_timed() {
                Wake::Event => {
                    self.st.full_woken += 1;
                    if self.st.full_woken == 1 {
                        say!(self.hc, "blocked on full ring, woken");
                    }
                }
                Wake::Timeout => say!(
                    self.hc,
                    "blocked on full ring of dom {dst} port {port}: no VIRQ within {} ms, retrying",
                    self.p.wait_ms
                ),
                Wake::Spurious => {}
            }
        }
    }

    fn stats_line(&self) -> StatsLine<'_> {
        StatsLine(&self.st)
    }

    /// Registers a second ring, sends to itself, and checks both kinds of
    /// VIRQ: data arrived, and space freed for a sender that asked.
    fn self_test(&mut self) -> Result<u16, (&'static str, i64)> {
        let area = addr_of_mut!(SELF_RING_AREA) as u64;
        let mem =
            self.v4v.register(area, PAGE_SIZE as usize, SELF_PORT, SELF_RING_LEN, 0).map_err(|r| ("register", r))?;
        let res = self.self_test_body(mem);
        let u = self.v4v.unregister(SELF_PORT);
        let me = res?;
        if u != 0 {
            return Err(("unregister", u));
        }
        Ok(me)
    }

    fn self_test_body(&mut self, mem: IdRing) -> Result<u16, (&'static str, i64)> {
        let me = get::<RingHeader>(mem.base).id.domain;
        let mut r = RingReader::new(mem, SELF_RING_LEN).map_err(|_| ("ring reader", 0))?;
        let send = |v: &V4v, seq: u32| {
            fill_tx(seq, SELF_MSG);
            let src = Addr { port: SELF_PORT, domain: DomId::SELF_.0, pad: 0 };
            put(args(), &SendAddr { src, dst: Addr { port: SELF_PORT, domain: me, pad: 0 } });
            put(args() + IOVS, &Iov { base: tx(), len: SELF_MSG, pad: 0 });
            v.op(v4v::OP_SENDV, args(), args() + IOVS, 1, u64::from(MSG_TYPE))
        };
        // Data: the VIRQ comes with the message.
        self.ev.clear();
        let s = send(&self.v4v, 0);
        if s != i64::from(SELF_MSG) {
            return Err(("sendv to self", s));
        }
        if self.block_timed() != Wake::Event {
            return Err(("no VIRQ for data", 0));
        }
        let mut buf = [0u8; SELF_MSG as usize];
        let h = match r.recv(&mut buf) {
            Ok(Some(m)) => m.header,
            _ => return Err(("recv from self", 0)),
        };
        if h.source.domain != me || h.source.port != SELF_PORT || check_payload(&buf) != Ok(0) {
            return Err(("stamped source or payload", i64::from(h.source.domain)));
        }
        // Space: fill the ring, ask to be woken, drain, notify.
        let mut seq = 1;
        let full = loop {
            let s = send(&self.v4v, seq);
            if s == Errno::EAGAIN.to_ret() {
                break seq;
            }
            if s != i64::from(SELF_MSG) || seq > SELF_RING_LEN {
                return Err(("filling the ring", s));
            }
            seq += 1;
        };
        let f = self.v4v.notify_wake(me, SELF_PORT, SELF_MSG).map_err(|r| ("notify wake", r))?;
        if f & v4v::RD_F_PENDING == 0 {
            return Err(("notify flags (no RD_F_PENDING)", i64::from(f)));
        }
        self.ev.clear();
        while let Ok(Some(_)) = r.recv(&mut buf) {}
        let n = self.v4v.notify();
        if n != 0 {
            return Err(("notify", n));
        }
        if self.block_timed() != Wake::Event {
            return Err(("no VIRQ for space", i64::from(full)));
        }
        Ok(me)
    }

    /// Runs the self-test and reports it.
    fn self_test_report(&mut self, when: &str) {
        let t0 = now_ns();
        match self.self_test() {
            Ok(me) => {
                say!(
                    self.hc,
                    "self-test ok {when}: dom {me}, data and space VIRQs seen ({} us)",
                    (now_ns() - t0) / 1000
                )
            }
            Err((step, r)) => say!(self.hc, "self-test FAILED {when}: {step}: {}", Ret(r)),
        }
    }

    /// Idles forever, blocked on the VIRQ.
    fn idle(&mut self) -> ! {
        loop {
            self.ev.clear();
            self.block();
        }
    }

    fn run(&mut self) -> ! {
        match self.p.role {
            Role::Recv => self.run_recv(),
            Role::Send => self.run_send(),
            Role::Echo => self.run_echo(),
            Role::Ping => self.run_ping(),
            Role::Try => self.run_try(),
            Role::SelfTest => self.run_self(),
            // Handled before a Node exists (see `run`); idling is right anyway.
            Role::Idle => self.idle(),
        }
    }

    /// `v4v=recv`: receives, checks and counts messages from any source;
    /// prints `recv done` after `count=` of them and goes on receiving.
    fn run_recv(&mut self) -> ! {
        self.open_ring();
        let mut delayed = self.p.delay_ms == 0;
        let mut done = false;
        loop {
            self.ev.clear();
            if !delayed && !self.ring_empty() {
                say!(self.hc, "first message in, draining in {} ms", self.p.delay_ms);
                self.sleep_ms(self.p.delay_ms);
                delayed = true;
            }
            if delayed {
                let mut n = 0;
                while self.recv_one().is_some() {
                    n += 1;
                }
                if n > 0 {
                    self.consumed();
                }
            }
            if !done && self.p.count != 0 && self.received >= self.p.count {
                done = true;
                say!(
                    self.hc,
                    "recv done count={} sources={} {} ms={}",
                    self.received,
                    self.nsources,
                    self.stats_line(),
                    self.elapsed_ms()
                );
            }
            // Orders the `rx_ptr` just written before the `tx_ptr` read
            // below (store-load: with notification suppression Xen decides
            // on a VIRQ from `rx_ptr`).
            fence(Ordering::SeqCst);
            if delayed && !self.ring_empty() {
                continue;
            }
            self.block();
        }
    }

    /// `v4v=send`: sends `count=` messages (0: forever) to `peer=`.
    fn run_send(&mut self) -> ! {
        let (peer, port) = (self.p.peer, self.p.port);
        say!(self.hc, "ready role=send to dom {peer} port {port} count {} size {}", self.p.count, self.p.size);
        let mut sent: u64 = 0;
        let mut refusals: u64 = 0;
        while self.p.count == 0 || sent < self.p.count {
            fill_tx(sent as u32, self.p.size);
            loop {
                match self.send_waiting(peer, port, self.p.size) {
                    Ok(()) => break,
                    Err(r) if r == Errno::ESRCH.to_ret() => {
                        say!(self.hc, "peer dom {peer} gone: {} after {sent} msgs", Ret(r));
                        self.self_test_report("after peer loss");
                        self.idle()
                    }
                    Err(r) => {
                        if refusals == 0 {
                            say!(self.hc, "send to dom {peer} port {port} refused: {} after {sent} msgs", Ret(r));
                        }
                        refusals += 1;
                        self.sleep_ms(self.p.gap_ms.max(RETRY_MS_MIN));
                    }
                }
            }
            if refusals != 0 {
                say!(self.hc, "send to dom {peer} port {port} accepted again after {refusals} refusals");
                refusals = 0;
            }
            sent += 1;
            if self.p.report != 0 && sent.is_multiple_of(self.p.report) {
                say!(self.hc, "sent {sent}");
            }
            if self.p.gap_ms != 0 {
                self.sleep_ms(self.p.gap_ms);
            }
        }
        say!(
            self.hc,
            "send done count={sent} to dom {peer} port {port} {} ms={}",
            self.stats_line(),
            self.elapsed_ms()
        );
        self.idle()
    }

    /// `v4v=echo`: sends every message back to its (stamped) source, from
    /// `port=`.
    fn run_echo(&mut self) -> ! {
        self.open_ring();
        let mut replies: u64 = 0;
        let mut done = false;
        loop {
            self.ev.clear();
            let mut n = 0;
            while let Some(h) = self.recv_one() {
                n += 1;
                if h.len > SIZE_MAX {
                    say!(self.hc, "not echoing {} bytes from dom {} (at most {SIZE_MAX})", h.len, h.source.domain);
                    continue;
                }
                // SAFETY: RX is not borrowed anywhere else now.
                let rx = unsafe { &(*addr_of_mut!(RX)).0 };
                phys_write(tx(), &rx[..h.len as usize]);
                match self.send_waiting(h.source.domain, h.source.port, h.len) {
                    Ok(()) => replies += 1,
                    Err(r) => {
                        say!(self.hc, "reply to dom {} port {} failed: {}", h.source.domain, h.source.port, Ret(r))
                    }
                }
            }
            if n > 0 {
                self.consumed();
            }
            if !done && self.p.count != 0 && replies >= self.p.count {
                done = true;
                say!(self.hc, "echo done count={replies} sources={} {}", self.nsources, self.stats_line());
            }
            fence(Ordering::SeqCst);
            if !self.ring_empty() {
                continue;
            }
            self.block();
        }
    }

    /// `v4v=ping`: sends `count=` messages to `peer=` (an echo), each time
    /// waiting for the reply and checking it came from `peer=`.
    fn run_ping(&mut self) -> ! {
        self.open_ring();
        let (peer, port) = (self.p.peer, self.p.port);
        let t0 = now_ns();
        for seq in 0..self.p.count {
            fill_tx(seq as u32, self.p.size);
            if let Err(r) = self.send_waiting(peer, port, self.p.size) {
                fatal!(self.hc, "ping {seq} to dom {peer} port {port}: {}", Ret(r));
            }
            loop {
                self.ev.clear();
                if let Some(h) = self.recv_one() {
                    if h.source.domain != peer || h.source.port != port || h.len != self.p.size {
                        fatal!(
                            self.hc,
                            "reply {seq} from dom {} port {} len {}, want dom {peer} port {port} len {}",
                            h.source.domain,
                            h.source.port,
                            h.len,
                            self.p.size
                        );
                    }
                    break;
                }
                if self.block_timed() == Wake::Timeout {
                    say!(self.hc, "no reply {seq} from dom {peer} within {} ms, still waiting", self.p.wait_ms);
                }
            }
            self.consumed();
        }
        say!(
            self.hc,
            "ping done count={} peer=dom {peer} {} us/round={}",
            self.p.count,
            self.stats_line(),
            (now_ns() - t0) / 1000 / self.p.count.max(1)
        );
        self.idle()
    }

    /// `v4v=try`: one send to `peer=`, and its exact result.
    fn run_try(&mut self) -> ! {
        let (peer, port) = (self.p.peer, self.p.port);
        fill_tx(0, self.p.size);
        let r = self.v4v.sendv(peer, port, port, self.p.size);
        if r == i64::from(self.p.size) {
            say!(self.hc, "try dom {peer} port {port}: ok");
        } else {
            say!(self.hc, "try dom {peer} port {port}: {}", Ret(r));
        }
        self.idle()
    }

    /// `v4v=self`: the self-test, the event and time checks on their own
    /// (usable on dom0 too), then V4V's view of this domain.
    fn run_self(&mut self) -> ! {
        self.self_test_report("at start");
        let t0 = now_ns();
        self.sleep_ms(100);
        let slept = (now_ns() - t0) / 1_000_000;
        say!(self.hc, "sleep 100 ms took {slept} ms");
        match self.v4v.info() {
            Ok(i) => say!(
                self.hc,
                "info nr_rings={} msgs_sent={} msgs_received={} sends_full={} global_msgs={}",
                i.nr_rings,
                i.msgs_sent,
                i.msgs_received,
                i.sends_full,
                i.global_msgs
            ),
            Err(r) => say!(self.hc, "info: {}", Ret(r)),
        }
        say!(self.hc, "self done {}", self.stats_line());
        self.idle()
    }
}

/// `wakeups=W timeouts=T spurious=S full=F full_waits=B full_woken=K`.
struct StatsLine<'a>(&'a Stats);

impl fmt::Display for StatsLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(
            f,
            "wakeups={} timeouts={} spurious={} full={} full_waits={} full_woken={}",
            s.wakeups, s.timeouts, s.spurious, s.full, s.full_waits, s.full_woken
        )
    }
}

/// Runs the role the command line names; never returns.
pub fn run(hc: Hypercalls, cmdline: Cmdline<'_>) -> ! {
    crate::xen::use_debugcon();
    say!(hc, "up, cmdline '{}'", cmdline.text());
    let p = match Params::parse(&cmdline) {
        Ok(p) => p,
        Err(e) => fatal!(hc, "bad cmdline: {e}"),
    };
    if p.role == Role::Idle {
        say!(hc, "ready role=idle");
        crate::evtchn::block_forever(&hc);
    }
    let ev = match Events::init(hc) {
        Ok(ev) => ev,
        Err((step, r)) => fatal!(hc, "{step}: {}", Ret(r)),
    };
    let mut node = Node {
        hc,
        v4v: V4v { hc },
        ev,
        p,
        reader: None,
        sources: [Source::default(); SOURCES_MAX],
        nsources: 0,
        received: 0,
        st: Stats::default(),
        start_ns: now_ns(),
    };
    node.run()
}
