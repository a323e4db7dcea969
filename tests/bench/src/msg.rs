//! Message throughput: V4V sendv plus receive, a libvchan-style grant ring
//! and `memcpy` of the same bytes, each a [`Channel`] the harness drives
//! the same way.
//!
//! - **memcpy**: one copy of the message between two host buffers, the
//!   physical limit of a copying channel.
//! - **V4V**: the sender's payload sits in its guest memory; one `sendv`
//!   hypercall (Xen copies it into the receiver's ring) and one receive by
//!   the guest-side ring reader (the receiver copies it out and advances
//!   `rx_ptr`).
//! - **vchan**: the receiver grants a ring (a control page with producer
//!   and consumer indices, then the data pages) and the sender maps it, as
//!   libvchan does; the sender copies the message in from its private
//!   buffer, publishes the producer index and kicks an event channel; the
//!   receiver takes the event, copies out and publishes the consumer index.
//!   Every guest access goes through the simulator's guest memory, as the
//!   V4V receiver's do.

use hypercall_abi::ring::RingReader;
use hypercall_abi::v4v::OP_SENDV;
use hypercall_abi::DomId;
use simulator::{GrantEntry, Sim};

use crate::guest::{self, GuestMem, MAP_GFN0, PAYLOAD, RING_GFN0};

/// Message sizes measured.
pub const SIZES: [usize; 4] = [64, 1024, 16 << 10, 64 << 10];

/// V4V ring data bytes: 64 pages with the header.
const V4V_RING_BYTES: u32 = 256 * 1024 - 64;
/// vchan ring data bytes (a power of two, as libvchan's).
const VCHAN_RING_BYTES: u64 = 256 * 1024;
/// RAM of each benchmark domain in pages (one 2 MiB chunk).
const DOM_PAGES: u64 = 512;
/// Frames in the pool of a message benchmark.
const FRAMES: u64 = 4096;

/// Something that moves one message of the size it was built for.
pub trait Channel {
    /// Sends one message and receives it.
    fn round(&mut self);
}

/// `memcpy` between two host buffers.
pub struct Memcpy {
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Memcpy {
    pub fn new(size: usize) -> Memcpy {
        Memcpy { src: pattern(size), dst: vec![0; size] }
    }
}

impl Channel for Memcpy {
    #[inline(never)]
    fn round(&mut self) {
        self.dst.copy_from_slice(std::hint::black_box(&self.src));
        std::hint::black_box(&mut self.dst);
    }
}

/// A V4V sender and receiver on their own simulator.
pub struct V4v {
    /// Receive by skipping the message (no copy out): the sendv path alone.
    skip: bool,
    sim: &'static Sim,
    tx: DomId,
    args: [u64; 4],
    reader: RingReader<GuestMem<'static>>,
    buf: Vec<u8>,
    size: usize,
}

impl V4v {
    /// Sends and receives (copies out) each message.
    pub fn new(size: usize) -> V4v {
        V4v::build(size, false)
    }

    /// Sends each message and drops it unread: what the hypervisor's side
    /// of a send costs.
    pub fn send_only(size: usize) -> V4v {
        V4v::build(size, true)
    }

    fn build(size: usize, skip: bool) -> V4v {
        // Leaked: one small simulator per benchmark, alive for the run.
        let sim: &'static Sim = Box::leak(Box::new(guest::sim(FRAMES, Default::default())));
        let rx = guest::dom(sim, DOM_PAGES);
        let tx = guest::dom(sim, DOM_PAGES);
        guest::v4v_register(sim, rx, 7, V4V_RING_BYTES, RING_GFN0);
        sim.guest_write(tx, PAYLOAD, &pattern(size)).expect("payload");
        let args = guest::v4v_send_args(sim, tx, rx, 7, size);
        let reader = RingReader::new(guest::guest_ring(sim, rx, RING_GFN0 << 12), V4V_RING_BYTES).expect("ring reader");
        let mut c = V4v { skip: false, sim, tx, args, reader, buf: vec![0; size], size };
        c.round();
        assert_eq!(c.buf, pattern(size), "V4V delivered the message intact");
        c.skip = skip;
        warm_up(&mut c, V4V_RING_BYTES as usize, size);
        c
    }
}

impl Channel for V4v {
    #[inline(never)]
    fn round(&mut self) {
        let r = guest::v4v_op(self.sim, self.tx, OP_SENDV, self.args);
        assert_eq!(r, self.size as i64, "sendv");
        let h = if self.skip {
            self.reader.skip().expect("ring readable").expect("a message")
        } else {
            self.reader.recv(&mut self.buf).expect("ring readable").expect("a message").header
        };
        debug_assert_eq!(h.len as usize, self.size);
    }
}

/// Control page of the vchan ring: producer index at 0, consumer at 64
/// (separate cache lines, as libvchan's `ring_shared`).
const PROD: u64 = 0;
const CONS: u64 = 64;

/// A libvchan-style channel over a ring the receiver grants.
pub struct Vchan {
    sim: &'static Sim,
    tx: DomId,
    rx: DomId,
    /// Event channel ports (sender's end, receiver's end).
    tx_port: u32,
    rx_port: u32,
    /// The sender's private copy of the message.
    msg: Vec<u8>,
    buf: Vec<u8>,
    /// The sender's and receiver's local copies of the indices.
    prod: u64,
    cons: u64,
}

impl Vchan {
    pub fn new(size: usize) -> Vchan {
        let sim: &'static Sim = Box::leak(Box::new(guest::sim(FRAMES, Default::default())));
        let rx = guest::dom(sim, DOM_PAGES);
        let tx = guest::dom(sim, DOM_PAGES);
        // The receiver grants the control page and the data pages.
        let pages = 1 + VCHAN_RING_BYTES / 4096;
        let grefs: Vec<u32> = (0..pages as u32).collect();
        for (&gref, gfn) in grefs.iter().zip(RING_GFN0..) {
            sim.grant_write(rx, gref, GrantEntry::permit(tx, hypercall_abi::Gfn(gfn), false)).expect("grant");
        }
        guest::grant_map(sim, tx, rx, &grefs, MAP_GFN0);
        let rx_port = sim.evtchn_alloc_unbound(rx, tx).expect("evtchn");
        let tx_port = sim.evtchn_bind_interdomain(tx, rx, rx_port).expect("bind");
        let mut c = Vchan { sim, tx, rx, tx_port, rx_port, msg: pattern(size), buf: vec![0; size], prod: 0, cons: 0 };
        c.round();
        assert_eq!(c.buf, c.msg, "vchan delivered the message intact");
        warm_up(&mut c, VCHAN_RING_BYTES as usize, size);
        c
    }

    fn read_index(&self, d: DomId, gpa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.sim.guest_read(d, gpa, &mut b).expect("index");
        u64::from_ne_bytes(b)
    }
}

impl Channel for Vchan {
    #[inline(never)]
    fn round(&mut self) {
        let s = self.sim;
        let n = self.msg.len() as u64;
        let ctrl_tx = MAP_GFN0 << 12;
        let data_tx = (MAP_GFN0 + 1) << 12;
        // Sender: space check against the consumer index, copy in (split at
        // the wrap), publish, notify.
        let cons = self.read_index(self.tx, ctrl_tx + CONS);
        assert!(VCHAN_RING_BYTES - (self.prod - cons) >= n, "vchan ring full");
        let off = self.prod % VCHAN_RING_BYTES;
        let first = n.min(VCHAN_RING_BYTES - off) as usize;
        s.guest_write(self.tx, data_tx + off, &self.msg[..first]).expect("copy in");
        if first < self.msg.len() {
            s.guest_write(self.tx, data_tx, &self.msg[first..]).expect("copy in");
        }
        self.prod += n;
        s.guest_write(self.tx, ctrl_tx + PROD, &self.prod.to_ne_bytes()).expect("prod");
        s.evtchn_send(self.tx, self.tx_port).expect("notify");
        // Receiver: take the event, read the producer index, copy out,
        // publish the consumer index.
        let ctrl_rx = RING_GFN0 << 12;
        let data_rx = (RING_GFN0 + 1) << 12;
        assert!(s.evtchn_take_pending(self.rx, self.rx_port).expect("event"));
        let prod = self.read_index(self.rx, ctrl_rx + PROD);
        assert!(prod - self.cons >= n, "vchan message published");
        let off = self.cons % VCHAN_RING_BYTES;
        let first = n.min(VCHAN_RING_BYTES - off) as usize;
        s.guest_read(self.rx, data_rx + off, &mut self.buf[..first]).expect("copy out");
        if first < self.buf.len() {
            s.guest_read(self.rx, data_rx, &mut self.buf[first..]).expect("copy out");
        }
        self.cons += n;
        s.guest_write(self.rx, ctrl_rx + CONS, &self.cons.to_ne_bytes()).expect("cons");
    }
}

/// Goes once round the ring, so every ring page has been written before
/// anything is measured (the simulator allocates a frame's contents on
/// first write).
fn warm_up(c: &mut dyn Channel, ring_bytes: usize, size: usize) {
    for _ in 0..ring_bytes / size + 2 {
        c.round();
    }
}

/// A deterministic message.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(7) as u8).collect()
}
