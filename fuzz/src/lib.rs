//! The hypercall fuzzer: one input is decoded (with `arbitrary`) into a seed
//! and a bounded list of operations by four domains (a control domain and
//! three guests of mixed kinds) against one simulated Xen host: the sshm
//! domctl, `v4v_op`, grant-table ops, event channels, domain create,
//! destroy and soft reset, guest writes into ring headers and arbitrary
//! guest memory, hypercalls left half-done as continuations, and the
//! machine's fault knobs (preemption, XSM refusals, a partial p2m write, a
//! transient page reference).
//!
//! Every operation is followed by the simulator's full invariant check
//! ([`Sim::check`]: machine, sshm, V4V, accounting) and the rules of domain
//! death; the input ends with a teardown after which nothing may be left.
//! Any failure is a panic, which libFuzzer reports as a crash.
//!
//! Guest addresses are mostly the valid argument, payload and ring pages of
//! the layout below, sometimes arbitrary 64-bit values and sometimes a page
//! mapped at the very top of the linear address space, so that arithmetic
//! near 2^64 is reached with valid memory on both sides.

#![deny(unsafe_code)]

use arbitrary::{Arbitrary, Unstructured};
use hypercall_abi::domctl::{self, Domctl};
use hypercall_abi::ring::{prepare, RingError, RingMemory, RingReader};
use hypercall_abi::sshm::{self as shm, StaticShm, NAME_BYTES};
use hypercall_abi::v4v::{self, Wire};
use hypercall_abi::{hypercall, DomId, Errno, Gfn, Mfn, PAGE_SIZE};
use simulator::grant::{self, Copy as GntCopy, CopyPtr, GrantEntry, MapGrantRef, UnmapGrantRef};
use simulator::{Config, DomainKind, DomainState, Preempt, Sim, Step, XsmHook};

/// Most operations decoded from one input.
pub const OPS_MAX: usize = 64;
/// Domain slots: slot 0 is the control domain, 1..3 are guests.
pub const SLOTS: usize = 4;
/// Machine frames (8 MiB): small, so that a run (and the checker, which
/// walks every frame after each op) is cheap and limits are reachable.
pub const FRAMES: u64 = 2048;
/// RAM of every domain, in pages (gfns `0..RAM_PAGES`).
pub const RAM_PAGES: u64 = 96;

// Guest-physical layout of every domain (page 0 holds the small arguments).
const ARG: u64 = 0x0;
const ARG2: u64 = 0x80;
const IOVS: u64 = 0x100;
const GFNS: u64 = 0x200;
const GNT: u64 = 0x400;
const DOMCTL: u64 = 0x800;
const NOTIFY: u64 = 0x1000;
/// The entry array of a batched send (after the notify entries).
const BATCH_ENTS: u64 = 0x1800;
const PAYLOAD: u64 = 0x3000;
const PAYLOAD_BYTES: u64 = 0x5000;
const SHM_BUF: u64 = 0x8000;
/// This RAM page is also mapped at [`TOP_VA`].
const TOP_GFN: u64 = 12;
/// The last page of the 64-bit linear address space.
const TOP_VA: u64 = 0u64.wrapping_sub(PAGE_SIZE);
/// Ring areas: `RING_AREAS` areas of `RING_AREA_PAGES` pages from this gfn.
const RING_GFN0: u64 = 16;
const RING_AREAS: usize = 4;
const RING_AREA_PAGES: u64 = 16;
/// Where sshm attachments and grant mappings go by default: past RAM.
const FOREIGN_GFN0: u64 = 0x100;

/// sshm limits: small, so that `-ENOSPC`/`-E2BIG` are reached.
fn limits() -> rust_hv::sshm::Limits {
    rust_hv::sshm::Limits { total_pages_max: 768, region_pages_max: 512, regions_max: 8 }
}

// ---- the input language ----

/// A guest pointer, resolved in the calling domain.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Ptr {
    /// The layout's own address for this argument.
    Default,
    /// An offset in the page mapped at the top of the address space.
    Top(u16),
    /// `2^64 - n`: ranges that run past the end.
    End(u16),
    /// A byte in any page of the low 4 MiB (RAM, foreign mappings, holes).
    Page(u16, u16),
    /// Anything.
    Wild(u64),
}

/// A domain id, resolved when the op runs.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum DomSel {
    /// The domain in a slot (or the last one it held).
    Slot(u8),
    /// The caller itself.
    Me,
    /// `DOMID_SSHM`.
    Sshm,
    /// `DOMID_ANY` / `DOMID_INVALID`.
    Any,
    /// The id of a domain that died.
    Dead(u8),
    /// Anything.
    Raw(u16),
}

/// A small number most of the time.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Num {
    /// `0..256`.
    Small(u8),
    /// Around a power of two.
    Pow2(u8, i8),
    /// Anything.
    Raw(u64),
}

/// A gfn for an attachment, a grant or a ring page.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum GfnSel {
    /// Past RAM, where attachments go: `FOREIGN_GFN0 + n`.
    Foreign(u8),
    /// 2 MiB aligned, past RAM.
    Aligned(u8),
    /// A RAM page.
    Ram(u8),
    /// A page of a ring area.
    Ring(u8, u8),
    /// Near the 52-bit limit.
    NearLimit(u8),
    /// Anything.
    Raw(u64),
}

/// A region name.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum NameSel {
    /// One of a few valid names.
    Known(u8),
    /// Raw bytes (mostly invalid).
    Raw([u8; NAME_BYTES]),
}

/// A V4V port.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Port {
    /// `0..4`.
    Small(u8),
    /// Anything (`PORT_ANY` included sometimes).
    Raw(u32),
}

/// A ring length.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum RingLen {
    /// The smallest ring.
    Min,
    /// `n` slots past the minimum.
    Slots(u8),
    /// Exactly one page with the header.
    OnePage,
    /// A whole ring area.
    Area,
    /// Anything.
    Raw(u32),
}

/// A gfn list given to register.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum GfnList {
    /// The ring area's pages in order.
    Contig,
    /// One page repeated.
    Dup(u8),
    /// One page replaced by a gfn of choice (a hole, a foreign mapping...).
    Replace(u8, GfnSel),
    /// The area's pages in reverse.
    Reversed,
    /// The count passed differs from the pages needed.
    Count(u8),
}

/// One iov of a send.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct IovSel {
    len: Num,
    base: Ptr,
    pad: bool,
}

/// One entry of a notify.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct NotifyEnt {
    dst: DomSel,
    port: Port,
    space: Num,
    wake: bool,
    raw_flags: Option<u16>,
}

/// One operation.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// Creates a domain in an empty (or dead) slot.
    Create { slot: u8, kind: u8 },
    /// `domain_kill`.
    Destroy { slot: u8 },
    /// `XEN_DOMCTL_soft_reset`.
    SoftReset { slot: u8 },
    /// `XEN_DOMCTL_static_shm`.
    Shm(Box<ShmOp>),
    /// `v4v_op(OP_REGISTER_RING)`.
    Register(Box<RegisterOp>),
    /// `v4v_op(OP_UNREGISTER_RING)`.
    Unregister { slot: u8, port: Port, partner: DomSel, pad: bool, arg: Ptr },
    /// `v4v_op(OP_SENDV)`.
    Send(Box<SendOp>),
    /// `v4v_op(OP_NOTIFY)`.
    Notify { slot: u8, ents: [NotifyEnt; 3], n: u8, nent: Option<u16>, null: bool, arg: Ptr },
    /// `v4v_op(OP_INFO)`.
    Info { slot: u8, ring: Option<(Port, DomSel)>, arg: Ptr, arg2: Ptr },
    /// `v4v_op(OP_FW_ADD/DEL/LIST)`.
    Fw(Box<FwOp>),
    /// `v4v_op` with raw arguments.
    V4vRaw { slot: u8, cmd: u8, args: [Ptr; 4], small: [Num; 4], which: u8 },
    /// The guest writes a grant entry.
    GrantWrite { slot: u8, gref: u16, peer: DomSel, gfn: GfnSel, ro: bool, raw_flags: Option<u16> },
    /// The guest ends a grant.
    GrantEnd { slot: u8, gref: u16 },
    /// `GNTTABOP_map_grant_ref`.
    GrantMap { slot: u8, granter: DomSel, gref: u16, at: GfnSel, ro: bool, raw_flags: Option<u32>, count: u8 },
    /// `GNTTABOP_unmap_grant_ref` of a mapping made earlier (or a raw one).
    GrantUnmap { slot: u8, which: u8, raw: Option<(u32, u64)> },
    /// `GNTTABOP_copy`.
    GrantCopy(Box<GrantCopyOp>),
    /// Event channels.
    Evtchn { slot: u8, what: u8, remote: DomSel, port: u8 },
    /// The receiver writes a field of a ring header (rx_ptr, flags...).
    RingHeader { slot: u8, area: u8, field: u8, value: Num },
    /// The receiver consumes messages as a guest driver does.
    Drain { slot: u8, area: u8, max: u8 },
    /// The guest writes anywhere in its memory.
    Scribble { slot: u8, at: Ptr, bytes: [u8; 16], n: u8 },
    /// Continues a hypercall left as a continuation.
    Continue { slot: u8, steps: u8 },
    /// Preemption policy.
    Preempt(u8),
    /// An XSM hook refuses (or allows again).
    Xsm { send: bool, deny: Option<bool> },
    /// Arms the partial p2m write fault.
    P2mFault(Option<u8>),
    /// Takes or drops a transient page reference (a PV guest's `get_page`).
    Transient { slot: u8, gfn: GfnSel, put: bool },
    /// altp2m / nested virtualisation on a domain.
    Views { slot: u8, altp2m: bool, nested: bool },
    /// One RAM page read-only or writable again.
    RamWritable { slot: u8, gfn: GfnSel, writable: bool },
    /// `v4v_op(OP_SENDV_BATCH)`.
    Batch(Box<BatchOp>),
}

/// Arguments of an sshm domctl.
#[derive(Arbitrary, Debug, Clone)]
pub struct ShmOp {
    caller: u8,
    op: u8,
    target: DomSel,
    name: NameSel,
    flags: u8,
    raw_flags: Option<u32>,
    nr_pages: Num,
    offset: Num,
    gfn: GfnSel,
    prot: u8,
    size_pages: Num,
    buffer: Ptr,
    nr_entries: u8,
    progress: Option<u64>,
    reserved: Option<u64>,
    bad_version: bool,
    arg: Ptr,
    stepped: bool,
    /// Keep fields the sub-op does not use (else they are zeroed, so that
    /// most calls get past validation).
    raw: bool,
}

/// Arguments of a register.
#[derive(Arbitrary, Debug, Clone)]
pub struct RegisterOp {
    slot: u8,
    area: u8,
    port: Port,
    partner: DomSel,
    len: RingLen,
    prepare: bool,
    notify_empty_only: bool,
    gfns: GfnList,
    fail_exist: bool,
    raw_flags: Option<u32>,
    pad: bool,
    arg: Ptr,
    gfn_arg: Ptr,
}

/// Arguments of a send.
#[derive(Arbitrary, Debug, Clone)]
pub struct SendOp {
    slot: u8,
    src_port: Port,
    src_dom: Option<DomSel>,
    dst: DomSel,
    dst_port: Port,
    iovs: [IovSel; 3],
    n: u8,
    niov: Option<u8>,
    msg_type: u32,
    addr_pad: bool,
    arg: Ptr,
    iov_arg: Ptr,
    stepped: bool,
}

/// One message of a batch: its addresses and its range of the batch's
/// iovs.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct BatchMsgSel {
    src_dom: Option<DomSel>,
    src_port: Port,
    dst: DomSel,
    dst_port: Port,
    /// Consecutive iovs from the last message's end, or this raw range.
    niov: u8,
    raw_range: Option<(u32, u32)>,
    msg_type: u32,
    addr_pad: bool,
}

/// Arguments of a batched send.
#[derive(Arbitrary, Debug, Clone)]
pub struct BatchOp {
    slot: u8,
    msgs: [BatchMsgSel; 4],
    n: u8,
    iovs: [IovSel; 6],
    /// Counts passed instead of the ones written.
    nent: Option<u8>,
    niov: Option<u8>,
    arg: Ptr,
    iov_arg: Ptr,
    stepped: bool,
}

/// Firewall ops.
#[derive(Arbitrary, Debug, Clone)]
pub struct FwOp {
    slot: u8,
    what: u8,
    src: DomSel,
    dst: DomSel,
    src_port: Port,
    dst_port: Port,
    action: u8,
    pos: Num,
    cap: Num,
    arg: Ptr,
}

/// A grant copy.
#[derive(Arbitrary, Debug, Clone)]
pub struct GrantCopyOp {
    slot: u8,
    src: (DomSel, u16, GfnSel, u16, bool),
    dst: (DomSel, u16, GfnSel, u16, bool),
    len: u16,
}

/// A decoded input.
#[derive(Debug)]
pub struct Input {
    /// The simulator's seed (preemption, allocation order).
    pub seed: u64,
    /// Kinds of the four initial domains.
    pub kinds: [u8; SLOTS],
    /// The operations.
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let seed = u.arbitrary()?;
        let kinds = u.arbitrary()?;
        let mut ops = Vec::new();
        while ops.len() < OPS_MAX && !u.is_empty() {
            ops.push(u.arbitrary()?);
        }
        Ok(Input { seed, kinds, ops })
    }
}

// ---- the harness ----

/// A hypercall left as a continuation: the guest re-executes it.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    nr: u32,
    args: [u64; 5],
}

/// What the harness knows of a ring area it registered.
#[derive(Clone, Copy, Debug)]
struct RingRec {
    len: u32,
    /// Only Xen and the ring reader touched the ring since it was prepared
    /// and registered: the reader must never find it corrupt.
    clean: bool,
}

#[derive(Default)]
struct Slot {
    id: Option<DomId>,
    inflight: Option<InFlight>,
    rings: [Option<RingRec>; RING_AREAS],
    /// Grant mappings made: (handle, host address).
    maps: Vec<(u32, u64)>,
}

struct World {
    sim: Sim,
    slots: [Slot; SLOTS],
    /// Every id that ever died (for `DomSel::Dead`).
    dead: Vec<DomId>,
    /// Every id that ever existed (the true sources a message may carry).
    ever: Vec<DomId>,
    /// Transient references held: (mfn, count).
    transient: Vec<Mfn>,
}

fn kind_of(k: u8) -> DomainKind {
    match k % 3 {
        0 => DomainKind::Hvm,
        1 => DomainKind::Pvh,
        _ => DomainKind::Pv,
    }
}

fn fail(sim: &Sim, what: &str, e: impl std::fmt::Display) -> ! {
    panic!("{what}: {e}\n(simulator seed {:#x})", sim.seed())
}

impl World {
    fn new(input: &Input) -> World {
        let sim = Sim::new(Config { frames: FRAMES, seed: input.seed, sshm_limits: limits() });
        let mut w = World { sim, slots: Default::default(), dead: Vec::new(), ever: Vec::new(), transient: Vec::new() };
        // The control domain is PVH or HVM (a PV dom0 works too in Xen,
        // but sshm and V4V are for translated guests; PV guests come later).
        let k0 = if input.kinds[0] % 2 == 0 { DomainKind::Pvh } else { DomainKind::Hvm };
        w.create(0, k0);
        for s in 1..SLOTS {
            w.create(s, kind_of(input.kinds[s]));
        }
        w
    }

    fn create(&mut self, slot: usize, kind: DomainKind) {
        let control = slot == 0;
        let Ok(id) = self.sim.create_domain(kind, RAM_PAGES, control) else { return };
        self.sim.map_guest_linear(id, TOP_VA, Gfn(TOP_GFN)).unwrap_or_else(|e| fail(&self.sim, "map top page", e));
        self.slots[slot] = Slot { id: Some(id), ..Default::default() };
        self.ever.push(id);
    }

    fn slot(i: u8) -> usize {
        usize::from(i) % SLOTS
    }

    /// The running domain of a slot.
    fn live(&self, i: u8) -> Option<DomId> {
        let id = self.slots[Self::slot(i)].id?;
        (self.sim.domain_state(id) == Some(DomainState::Running)).then_some(id)
    }

    fn dom(&self, me: DomId, d: DomSel) -> DomId {
        match d {
            DomSel::Slot(i) => self.slots[Self::slot(i)].id.unwrap_or(DomId(0x7ff0)),
            DomSel::Me => me,
            DomSel::Sshm => DomId::SSHM,
            DomSel::Any => DomId(v4v::DOMID_ANY),
            DomSel::Dead(i) => {
                if self.dead.is_empty() {
                    DomId(0x7ff0)
                } else {
                    self.dead[usize::from(i) % self.dead.len()]
                }
            }
            DomSel::Raw(x) => DomId(x),
        }
    }

    fn ptr(p: Ptr, default: u64) -> u64 {
        match p {
            Ptr::Default => default,
            Ptr::Top(o) => TOP_VA + u64::from(o) % PAGE_SIZE,
            Ptr::End(n) => 0u64.wrapping_sub(u64::from(n)),
            Ptr::Page(g, o) => (u64::from(g) % 1024) * PAGE_SIZE + u64::from(o) % PAGE_SIZE,
            Ptr::Wild(x) => x,
        }
    }

    fn num(n: Num) -> u64 {
        match n {
            Num::Small(x) => u64::from(x),
            Num::Pow2(e, d) => (1u64 << (e % 64)).wrapping_add_signed(i64::from(d)),
            Num::Raw(x) => x,
        }
    }

    fn gfn(g: GfnSel) -> u64 {
        match g {
            GfnSel::Foreign(n) => FOREIGN_GFN0 + u64::from(n),
            GfnSel::Aligned(n) => 512 * (1 + u64::from(n % 4)),
            GfnSel::Ram(n) => u64::from(n) % RAM_PAGES,
            GfnSel::Ring(a, n) => ring_gfn(usize::from(a)) + u64::from(n) % RING_AREA_PAGES,
            GfnSel::NearLimit(n) => shm::GFN_LIMIT.wrapping_sub(u64::from(n)),
            GfnSel::Raw(x) => x,
        }
    }

    fn port(p: Port) -> u32 {
        match p {
            Port::Small(x) => u32::from(x % 4),
            Port::Raw(x) => x,
        }
    }

    fn name(n: NameSel) -> [u8; NAME_BYTES] {
        let mut b = [0u8; NAME_BYTES];
        match n {
            NameSel::Known(i) => {
                let s: &[u8] = match i % 5 {
                    0 => b"a",
                    1 => b"b",
                    2 => b"shm_0",
                    3 => b"Z9_long_name_of_31_characters__",
                    _ => b"c",
                };
                b[..s.len()].copy_from_slice(s);
            }
            NameSel::Raw(r) => b = r,
        }
        b
    }

    fn write<T: Wire>(&self, d: DomId, gpa: u64, v: &T) {
        let mut b = vec![0u8; T::SIZE];
        v.write(&mut b);
        // A fault here is the guest's problem: the hypercall will see it.
        let _ = self.sim.guest_write(d, gpa, &b);
    }

    /// Issues a hypercall: to completion, or one step, leaving the rest as
    /// a continuation for [`Op::Continue`].
    fn call(&mut self, slot: usize, d: DomId, nr: u32, args: [u64; 5], stepped: bool) -> i64 {
        let r = if !stepped {
            self.sim.hypercall(d, nr, args)
        } else {
            match self.sim.hypercall_step(d, nr, args) {
                Step::Done(r) => r,
                Step::Continuation => {
                    self.slots[slot].inflight = Some(InFlight { nr, args });
                    Errno::ERESTART.to_ret()
                }
            }
        };
        if trace() {
            let e = Errno::from_ret(r).map_or(String::new(), |e| format!(" ({})", e.name()));
            eprintln!("  d{} hypercall {nr} {args:#x?} -> {r}{e}", d.0);
        }
        r
    }

    fn v4v(&mut self, slot: usize, d: DomId, cmd: u32, a: [u64; 4], stepped: bool) -> i64 {
        self.call(slot, d, hypercall::V4V_OP, [u64::from(cmd), a[0], a[1], a[2], a[3]], stepped)
    }

    /// Every ring of a slot's domain is dirty from now on (its memory was
    /// written by someone other than Xen and the reader).
    fn dirty(&mut self, d: DomId) {
        for s in &mut self.slots {
            if s.id == Some(d) {
                for r in s.rings.iter_mut().flatten() {
                    r.clean = false;
                }
            }
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Create { slot, kind } => {
                let i = Self::slot(slot);
                if self.live(slot).is_none()
                    && self.slots[i].id.is_none_or(|id| self.sim.domain_state(id) != Some(DomainState::Running))
                {
                    let kind = if i == 0 && kind_of(kind) == DomainKind::Pv { DomainKind::Pvh } else { kind_of(kind) };
                    self.create(i, kind);
                }
            }
            Op::Destroy { slot } => {
                if let Some(id) = self.live(slot) {
                    self.destroy(Self::slot(slot), id);
                }
            }
            Op::SoftReset { slot } => {
                if let Some(id) = self.live(slot) {
                    let i = Self::slot(slot);
                    // The vcpus are reset: a continuation is abandoned.
                    self.slots[i].inflight = None;
                    let r = self.sim.soft_reset_domain(id);
                    if let Err(e) = r {
                        fail(&self.sim, "soft reset of a running domain", e);
                    }
                    self.slots[i].rings = Default::default();
                    if self.sim.hv().v4v.nr_rings(id) != 0 {
                        fail(&self.sim, "after soft reset", format!("d{} still has V4V rings", id.0));
                    }
                }
            }
            Op::Shm(ref o) => self.shm(o),
            Op::Register(ref o) => self.register(o),
            Op::Unregister { slot, port, partner, pad, arg } => {
                let Some(d) = self.live(slot) else { return };
                let a = Self::ptr(arg, ARG);
                let u = v4v::UnregisterRing {
                    port: Self::port(port),
                    partner: self.dom(d, partner).0,
                    pad: u16::from(pad),
                };
                self.write(d, a, &u);
                self.v4v(Self::slot(slot), d, v4v::OP_UNREGISTER_RING, [a, 0, 0, 0], false);
            }
            Op::Send(ref o) => self.send(o),
            Op::Batch(ref o) => self.batch(o),
            Op::Notify { slot, ref ents, n, nent, null, arg } => {
                let Some(d) = self.live(slot) else { return };
                let a = Self::ptr(arg, NOTIFY);
                let ents = &ents[..usize::from(n) % (ents.len() + 1)];
                let nent = nent.map_or(ents.len() as u32, u32::from);
                self.write(d, a, &v4v::RingData { nent, pad: 0, reserved: 0 });
                for (i, e) in ents.iter().enumerate() {
                    let mut flags = if e.wake { v4v::RD_F_WAKE } else { 0 };
                    if let Some(f) = e.raw_flags {
                        flags = f;
                    }
                    let ent = v4v::RingDataEnt {
                        ring: v4v::Addr { port: Self::port(e.port), domain: self.dom(d, e.dst).0, pad: 0 },
                        flags,
                        space_required: Self::num(e.space) as u32,
                        ..Default::default()
                    };
                    self.write(d, a.wrapping_add(16 + 24 * i as u64), &ent);
                }
                self.v4v(Self::slot(slot), d, v4v::OP_NOTIFY, [if null { 0 } else { a }, 0, 0, 0], false);
            }
            Op::Info { slot, ring, arg, arg2 } => {
                let Some(d) = self.live(slot) else { return };
                let a2 = match ring {
                    Some((port, partner)) => {
                        let a2 = Self::ptr(arg2, ARG2);
                        let id = v4v::RingId { port: Self::port(port), domain: d.0, partner: self.dom(d, partner).0 };
                        self.write(d, a2, &v4v::RingInfo { id, ..Default::default() });
                        a2
                    }
                    None => 0,
                };
                self.v4v(Self::slot(slot), d, v4v::OP_INFO, [Self::ptr(arg, ARG), a2, 0, 0], false);
            }
            Op::Fw(ref o) => self.fw(o),
            Op::V4vRaw { slot, cmd, args, small, which } => {
                let Some(d) = self.live(slot) else { return };
                let mut a = [0u64; 4];
                for i in 0..4 {
                    a[i] = if which & (1 << i) != 0 { Self::num(small[i]) } else { Self::ptr(args[i], ARG) };
                }
                self.v4v(Self::slot(slot), d, u32::from(cmd % 10), a, which & 0x10 != 0);
            }
            Op::GrantWrite { slot, gref, peer, gfn, ro, raw_flags } => {
                let Some(d) = self.live(slot) else { return };
                let mut e = GrantEntry::permit(self.dom(d, peer), Gfn(Self::gfn(gfn)), ro);
                if let Some(f) = raw_flags {
                    e.flags = f;
                }
                let _ = self.sim.grant_write(d, u32::from(gref) % 1100, e);
            }
            Op::GrantEnd { slot, gref } => {
                let Some(d) = self.live(slot) else { return };
                let _ = self.sim.grant_end_access(d, u32::from(gref) % 1100);
            }
            Op::GrantMap { slot, granter, gref, at, ro, raw_flags, count } => {
                let Some(d) = self.live(slot) else { return };
                let i = Self::slot(slot);
                let count = u64::from(count % 4 + 1);
                let host = Self::gfn(at).wrapping_mul(PAGE_SIZE);
                let flags = raw_flags.unwrap_or(grant::GNTMAP_HOST_MAP | if ro { grant::GNTMAP_READONLY } else { 0 });
                let m = MapGrantRef {
                    host_addr: host,
                    flags,
                    gref: u32::from(gref) % 1100,
                    dom: self.dom(d, granter).0,
                    ..Default::default()
                };
                for k in 0..count {
                    // Later copies map the next pages.
                    let m = MapGrantRef { host_addr: host.wrapping_add(k * PAGE_SIZE), ..m };
                    let _ = self.sim.guest_write(d, GNT + k * MapGrantRef::SIZE as u64, &m.to_bytes());
                }
                let r = self.call(
                    i,
                    d,
                    hypercall::GRANT_TABLE_OP,
                    [u64::from(grant::GNTTABOP_MAP_GRANT_REF), GNT, count, 0, 0],
                    false,
                );
                if r == 0 {
                    for k in 0..count {
                        let mut b = [0u8; MapGrantRef::SIZE];
                        if self.sim.guest_read(d, GNT + k * MapGrantRef::SIZE as u64, &mut b).is_ok() {
                            let m = MapGrantRef::from_bytes(&b);
                            if m.status == grant::gntst::OKAY && self.slots[i].maps.len() < 64 {
                                self.slots[i].maps.push((m.handle, m.host_addr));
                            }
                        }
                    }
                }
            }
            Op::GrantUnmap { slot, which, raw } => {
                let Some(d) = self.live(slot) else { return };
                let i = Self::slot(slot);
                let (handle, host) = match raw {
                    Some(r) => r,
                    None if !self.slots[i].maps.is_empty() => {
                        let k = usize::from(which) % self.slots[i].maps.len();
                        self.slots[i].maps.swap_remove(k)
                    }
                    None => return,
                };
                let u = UnmapGrantRef { host_addr: host, handle, ..Default::default() };
                let _ = self.sim.guest_write(d, GNT, &u.to_bytes());
                self.call(
                    i,
                    d,
                    hypercall::GRANT_TABLE_OP,
                    [u64::from(grant::GNTTABOP_UNMAP_GRANT_REF), GNT, 1, 0, 0],
                    false,
                );
            }
            Op::GrantCopy(ref o) => {
                let Some(d) = self.live(o.slot) else { return };
                let side = |w: &World, s: &(DomSel, u16, GfnSel, u16, bool)| CopyPtr {
                    gref_or_gfn: if s.4 { u64::from(s.1) % 1100 } else { Self::gfn(s.2) },
                    domid: w.dom(d, s.0).0,
                    offset: s.3 % 4200,
                };
                let mut flags = 0;
                if o.src.4 {
                    flags |= grant::GNTCOPY_SOURCE_GREF;
                }
                if o.dst.4 {
                    flags |= grant::GNTCOPY_DEST_GREF;
                }
                let c = GntCopy {
                    source: side(self, &o.src),
                    dest: side(self, &o.dst),
                    len: o.len % 4200,
                    flags,
                    status: 0,
                };
                let _ = self.sim.guest_write(d, GNT, &c.to_bytes());
                let dst = DomId(c.dest.domid);
                self.dirty(dst);
                self.call(
                    Self::slot(o.slot),
                    d,
                    hypercall::GRANT_TABLE_OP,
                    [u64::from(grant::GNTTABOP_COPY), GNT, 1, 0, 0],
                    false,
                );
            }
            Op::Evtchn { slot, what, remote, port } => {
                let Some(d) = self.live(slot) else { return };
                let port = u32::from(port % 16);
                let r = self.dom(d, remote);
                let _ = match what % 6 {
                    0 => self.sim.evtchn_bind_virq(d, hypercall_abi::VIRQ_V4V).map(|_| ()),
                    1 => self.sim.evtchn_take_pending(d, port).map(|_| ()),
                    2 => self.sim.evtchn_alloc_unbound(d, r).map(|_| ()),
                    3 => self.sim.evtchn_bind_interdomain(d, r, port).map(|_| ()),
                    4 => self.sim.evtchn_close(d, port),
                    _ => self.sim.evtchn_send(d, port),
                };
            }
            Op::RingHeader { slot, area, field, value } => {
                let Some(d) = self.live(slot) else { return };
                let a = usize::from(area) % RING_AREAS;
                let v = Self::num(value);
                let base = ring_gfn(a) * PAGE_SIZE;
                // rx_ptr, flags, tx_ptr, len, magic, reserved.
                let (off, bytes): (u64, Vec<u8>) = match field % 6 {
                    0 => (20, (v as u32).to_ne_bytes().to_vec()),
                    1 => (28, (v as u32 & 1).to_ne_bytes().to_vec()),
                    2 => (24, (v as u32).to_ne_bytes().to_vec()),
                    3 => (16, (v as u32).to_ne_bytes().to_vec()),
                    4 => (0, v.to_ne_bytes().to_vec()),
                    _ => (28, (v as u32).to_ne_bytes().to_vec()),
                };
                let _ = self.sim.guest_write(d, base + off, &bytes);
                // Only a flags write leaves the ring as the reader expects.
                if off != 28 {
                    self.dirty(d);
                }
            }
            Op::Drain { slot, area, max } => {
                let Some(d) = self.live(slot) else { return };
                let a = usize::from(area) % RING_AREAS;
                let Some(rec) = self.slots[Self::slot(slot)].rings[a] else { return };
                self.drain(d, a, rec, max);
            }
            Op::Scribble { slot, at, ref bytes, n } => {
                let Some(d) = self.live(slot) else { return };
                let bytes = &bytes[..usize::from(n) % (bytes.len() + 1)];
                let _ = self.sim.guest_write(d, Self::ptr(at, ARG), bytes);
                self.dirty(d);
            }
            Op::Continue { slot, steps } => {
                let i = Self::slot(slot);
                let Some(f) = self.slots[i].inflight else { return };
                let Some(d) = self.slots[i].id else { return };
                for _ in 0..=steps {
                    if self.sim.hypercall_step(d, f.nr, f.args) != Step::Continuation {
                        self.slots[i].inflight = None;
                        break;
                    }
                }
            }
            Op::Preempt(p) => {
                let p = match p % 4 {
                    0 => Preempt::Never,
                    1 => Preempt::Always,
                    _ => Preempt::OneIn(u32::from(p / 4) + 2),
                };
                self.sim.machine().set_preempt(p);
            }
            Op::Xsm { send, deny } => {
                let hook = if send { XsmHook::V4vSend } else { XsmHook::V4vRegister };
                let e = deny.map(|b| if b { Errno::EPERM } else { Errno::EACCES });
                self.sim.machine().set_xsm_deny(hook, e);
            }
            Op::P2mFault(w) => self.sim.machine().set_p2m_insert_fault(w.map(|n| u64::from(n) * 2)),
            Op::Transient { slot, gfn, put } => {
                if put {
                    if let Some(m) = self.transient.pop() {
                        self.sim.machine().page_put_transient(m);
                    }
                    return;
                }
                let Some(d) = self.live(slot) else { return };
                if self.transient.len() >= 8 {
                    return;
                }
                if let Some((m, _)) = self.sim.machine().p2m_lookup(d, Gfn(Self::gfn(gfn))) {
                    if self.sim.machine().page_get_transient(m).is_ok() {
                        self.transient.push(m);
                    }
                }
            }
            Op::Views { slot, altp2m, nested } => {
                if let Some(d) = self.live(slot) {
                    let _ = self.sim.set_p2m_views(d, altp2m, nested);
                }
            }
            Op::RamWritable { slot, gfn, writable } => {
                if let Some(d) = self.live(slot) {
                    let _ = self.sim.set_ram_writable(d, Gfn(Self::gfn(gfn)), writable);
                }
            }
        }
    }

    fn destroy(&mut self, i: usize, id: DomId) {
        self.slots[i].inflight = None;
        self.slots[i].rings = Default::default();
        self.slots[i].maps.clear();
        if let Err(e) = self.sim.destroy_domain(id) {
            fail(&self.sim, "destroy of a running domain", e);
        }
        self.dead.push(id);
        // V4V forgets it at once (rings, partners, waiters, reservation,
        // firewall rules).
        if self.sim.hv().v4v.references(id) {
            fail(&self.sim, "after domain death", format!("V4V still names d{}", id.0));
        }
        match self.sim.domain_state(id) {
            Some(DomainState::Dead) | None => {}
            Some(DomainState::Running) => fail(&self.sim, "after domain death", format!("d{} still running", id.0)),
            // A zombie: only grant mappings held by others (or the
            // harness's transient references) may keep it.
            Some(DomainState::Dying) => {
                if self.transient.is_empty() {
                    for z in self.sim.machine().zombies() {
                        if z.id == id && (z.pinned != 0 || z.held_by.is_empty()) {
                            fail(
                                &self.sim,
                                "after domain death",
                                format!("d{} is a zombie not held by any grant mapping: {z:?}", id.0),
                            );
                        }
                    }
                }
            }
        }
    }

    fn shm(&mut self, o: &ShmOp) {
        let Some(d) = self.live(o.caller) else { return };
        let target = match o.op % 8 {
            // create, unlink, info and list act on no guest.
            1 | 4..=6 if matches!(o.target, DomSel::Me) => DomId::SSHM,
            _ => self.dom(d, o.target),
        };
        let mut flags = u32::from(o.flags) & shm::F_ALL;
        if let Some(f) = o.raw_flags {
            flags = f;
        }
        let mut op = StaticShm {
            op: u32::from(o.op % 8),
            flags,
            name: Self::name(o.name),
            nr_pages: Self::num(o.nr_pages),
            offset: Self::num(o.offset),
            gfn: Self::gfn(o.gfn),
            progress: o.progress.unwrap_or(0),
            buffer: Self::ptr(o.buffer, SHM_BUF),
            nr_entries: u32::from(o.nr_entries % 80),
            prot: u32::from(o.prot % 4),
            size_pages: Self::num(o.size_pages),
            reserved: [o.reserved.unwrap_or(0), 0, 0, 0],
        };
        if !o.raw {
            canonical(&mut op);
        }
        let mut dc = Domctl::static_shm(target, &op);
        if o.bad_version {
            dc.interface_version = domctl::INTERFACE_VERSION_4_17;
        }
        let a = Self::ptr(o.arg, DOMCTL);
        let _ = self.sim.guest_write(d, a, &dc.to_bytes());
        self.call(Self::slot(o.caller), d, hypercall::DOMCTL, [a, 0, 0, 0, 0], o.stepped);
    }

    fn register(&mut self, o: &RegisterOp) {
        let Some(d) = self.live(o.slot) else { return };
        let i = Self::slot(o.slot);
        let area = usize::from(o.area) % RING_AREAS;
        let len = match o.len {
            RingLen::Min => v4v::RING_LEN_MIN,
            RingLen::Slots(n) => v4v::RING_LEN_MIN + v4v::SLOT_BYTES * u32::from(n),
            RingLen::OnePage => 4096 - v4v::RING_HEADER_BYTES,
            RingLen::Area => (RING_AREA_PAGES * PAGE_SIZE) as u32 - v4v::RING_HEADER_BYTES,
            RingLen::Raw(x) => x,
        };
        let g0 = ring_gfn(area);
        let pages = u64::from(len).saturating_add(u64::from(v4v::RING_HEADER_BYTES)).div_ceil(PAGE_SIZE).min(64);
        let mut gfns: Vec<u64> = (g0..g0 + pages).collect();
        let mut nr = gfns.len() as u64;
        match o.gfns {
            GfnList::Contig => {}
            GfnList::Dup(k) => {
                if gfns.len() > 1 {
                    let k = usize::from(k) % (gfns.len() - 1);
                    gfns[k + 1] = gfns[k];
                }
            }
            GfnList::Replace(k, g) => {
                let k = usize::from(k) % gfns.len().max(1);
                if let Some(x) = gfns.get_mut(k) {
                    *x = Self::gfn(g);
                }
            }
            GfnList::Reversed => gfns.reverse(),
            GfnList::Count(n) => nr = u64::from(n),
        }
        let clean = o.prepare && v4v::RegisterRing { len, ..Default::default() }.validate().is_ok();
        if o.prepare {
            let mut m = GuestRing { sim: &self.sim, d, gpa: g0 * PAGE_SIZE };
            let flags = if o.notify_empty_only { v4v::RING_F_NOTIFY_EMPTY_ONLY } else { 0 };
            let _ = prepare(&mut m, len, flags);
        }
        let partner = self.dom(d, o.partner).0;
        let reg = v4v::RegisterRing { port: Self::port(o.port), partner, pad: u16::from(o.pad), len, pad2: 0 };
        let a = Self::ptr(o.arg, ARG);
        let ga = Self::ptr(o.gfn_arg, GFNS);
        self.write(d, a, &reg);
        let b: Vec<u8> = gfns.iter().flat_map(|g| g.to_ne_bytes()).collect();
        let _ = self.sim.guest_write(d, ga, &b);
        let mut flags = if o.fail_exist { v4v::REGISTER_F_FAIL_EXIST } else { 0 };
        if let Some(f) = o.raw_flags {
            flags = f;
        }
        let r = self.v4v(i, d, v4v::OP_REGISTER_RING, [a, ga, nr, u64::from(flags)], false);
        // The harness's ring of this area is the last one registered on its
        // first page; a contiguous prepared ring is read back by `Drain`.
        if r == 0 && matches!(o.gfns, GfnList::Contig) && a == ARG && ga == GFNS {
            self.slots[i].rings[area] = Some(RingRec { len, clean });
        } else if r == 0 || o.prepare {
            // The area's memory changed under what the harness knew.
            self.slots[i].rings[area] = None;
        }
    }

    fn send(&mut self, o: &SendOp) {
        let Some(d) = self.live(o.slot) else { return };
        let i = Self::slot(o.slot);
        let src_dom = o.src_dom.map_or(d, |s| self.dom(d, s));
        let sa = v4v::SendAddr {
            src: v4v::Addr { port: Self::port(o.src_port), domain: src_dom.0, pad: u16::from(o.addr_pad) },
            dst: v4v::Addr { port: Self::port(o.dst_port), domain: self.dom(d, o.dst).0, pad: 0 },
        };
        let a = Self::ptr(o.arg, ARG);
        let ia = Self::ptr(o.iov_arg, IOVS);
        self.write(d, a, &sa);
        let iovs = &o.iovs[..usize::from(o.n) % (o.iovs.len() + 1)];
        self.write_iovs(d, ia, iovs);
        let niov = o.niov.map_or(iovs.len() as u64, u64::from);
        self.v4v(i, d, v4v::OP_SENDV, [a, ia, niov, u64::from(o.msg_type)], o.stepped);
    }

    /// Writes `iovs` as an iov array at `ia` in `d`'s memory, their bases in
    /// the payload area one after the other (or where `base` says).
    fn write_iovs(&self, d: DomId, ia: u64, iovs: &[IovSel]) {
        let mut off = 0u64;
        for (k, v) in iovs.iter().enumerate() {
            let len = match v.len {
                // Mostly lengths that fit the payload area.
                Num::Small(x) => u64::from(x),
                Num::Pow2(e, dd) => (1u64 << (e % 15)).wrapping_add_signed(i64::from(dd)) % PAYLOAD_BYTES,
                Num::Raw(x) => x,
            };
            let base = Self::ptr(v.base, PAYLOAD + off % PAYLOAD_BYTES);
            off = off.wrapping_add(len);
            let iov = v4v::Iov { base, len: len as u32, pad: u32::from(v.pad) };
            self.write(d, ia.wrapping_add(16 * k as u64), &iov);
        }
    }

    fn batch(&mut self, o: &BatchOp) {
        let Some(d) = self.live(o.slot) else { return };
        let i = Self::slot(o.slot);
        let a = Self::ptr(o.arg, BATCH_ENTS);
        let ia = Self::ptr(o.iov_arg, IOVS);
        self.write_iovs(d, ia, &o.iovs);
        let msgs = &o.msgs[..usize::from(o.n) % o.msgs.len() + 1];
        let mut first = 0u32;
        for (k, m) in msgs.iter().enumerate() {
            let src_dom = m.src_dom.map_or(d, |s| self.dom(d, s));
            let (iov_first, niov) = m.raw_range.unwrap_or((first, u32::from(m.niov % 3) + 1));
            first = first.wrapping_add(niov) % o.iovs.len() as u32;
            let ent = v4v::BatchEnt {
                addr: v4v::SendAddr {
                    src: v4v::Addr { port: Self::port(m.src_port), domain: src_dom.0, pad: u16::from(m.addr_pad) },
                    dst: v4v::Addr { port: Self::port(m.dst_port), domain: self.dom(d, m.dst).0, pad: 0 },
                },
                iov_first,
                niov,
                msg_type: m.msg_type,
                status: 0,
            };
            self.write(d, a.wrapping_add((v4v::BatchEnt::SIZE * k) as u64), &ent);
        }
        let nent = o.nent.map_or(msgs.len() as u64, u64::from);
        let niov = o.niov.map_or(o.iovs.len() as u64, u64::from);
        self.v4v(i, d, v4v::OP_SENDV_BATCH, [a, ia, nent, niov], o.stepped);
    }

    fn fw(&mut self, o: &FwOp) {
        let Some(d) = self.live(o.slot) else { return };
        let i = Self::slot(o.slot);
        let port = |p: Port| match p {
            Port::Small(x) if x % 5 == 4 => v4v::PORT_ANY,
            p => Self::port(p),
        };
        let rule = v4v::FwRule {
            src_domain: self.dom(d, o.src).0,
            dst_domain: self.dom(d, o.dst).0,
            src_port: port(o.src_port),
            dst_port: port(o.dst_port),
            action: match o.action % 3 {
                0 => v4v::FW_ACCEPT,
                1 => v4v::FW_REJECT,
                _ => u32::from(o.action),
            },
        };
        let a = Self::ptr(o.arg, ARG);
        match o.what % 3 {
            0 => {
                self.write(d, a, &rule);
                self.v4v(i, d, v4v::OP_FW_ADD, [a, Self::num(o.pos), 0, 0], false);
            }
            1 => {
                self.write(d, a, &rule);
                self.v4v(i, d, v4v::OP_FW_DEL, [a, 0, 0, 0], false);
            }
            _ => {
                let a = Self::ptr(o.arg, SHM_BUF);
                self.v4v(i, d, v4v::OP_FW_LIST, [a, Self::num(o.pos), Self::num(o.cap), 0], false);
                self.dirty(d);
            }
        }
    }

    /// The receiver's driver: reads up to `max` messages with the guest-side
    /// reader. On a ring only Xen and the reader wrote, the reader must never
    /// find it corrupt, and every message carries a true source.
    fn drain(&mut self, d: DomId, area: usize, rec: RingRec, max: u8) {
        let mem = GuestRing { sim: &self.sim, d, gpa: ring_gfn(area) * PAGE_SIZE };
        let mut r = match RingReader::new(mem, rec.len) {
            Ok(r) => r,
            Err(e) => {
                if rec.clean && e != RingError::Fault {
                    fail(&self.sim, "ring reader", format!("d{} ring area {area}: {e:?} on a clean ring", d.0));
                }
                return;
            }
        };
        let mut buf = vec![0u8; rec.len as usize];
        for _ in 0..=max {
            match r.recv(&mut buf) {
                Ok(Some(m)) => {
                    let src = DomId(m.header.source.domain);
                    if rec.clean && !self.ever.contains(&src) {
                        fail(
                            &self.sim,
                            "ring reader",
                            format!("d{} got a message from d{} which never existed: {m:?}", d.0, src.0),
                        );
                    }
                }
                Ok(None) => break,
                Err(RingError::Fault) => break,
                Err(e) => {
                    if rec.clean {
                        fail(&self.sim, "ring reader", format!("d{} ring area {area}: {e:?} on a clean ring", d.0));
                    }
                    break;
                }
            }
        }
    }

    /// The invariants that hold between any two operations.
    fn check(&self, what: &dyn std::fmt::Debug) {
        if let Err(e) = self.sim.check() {
            panic!("invariant violated after {what:?}:\n{e}");
        }
        // A dead or dying domain is forgotten by V4V for good (its id is
        // not reused while it is a zombie).
        for id in &self.dead {
            if self.sim.domain_state(*id) != Some(DomainState::Running) && self.sim.hv().v4v.references(*id) {
                fail(&self.sim, &format!("after {what:?}"), format!("V4V names dead or dying d{}", id.0));
            }
        }
    }

    /// Ends the run: every domain dies, the control domain unlinks every
    /// region, and nothing may remain: no zombie, no pinned page, no sshm
    /// page, no V4V state, every frame back in the pool.
    fn teardown(&mut self) {
        self.sim.machine().set_preempt(Preempt::OneIn(8));
        self.sim.machine().set_xsm_deny(XsmHook::V4vSend, None);
        self.sim.machine().set_xsm_deny(XsmHook::V4vRegister, None);
        self.sim.machine().set_p2m_insert_fault(None);
        while let Some(m) = self.transient.pop() {
            self.sim.machine().page_put_transient(m);
        }
        // Every domain, the control domain included: the guest may have
        // made its own argument pages read-only. A fresh one unlinks.
        for i in 0..SLOTS {
            if let Some(id) = self.live(i as u8) {
                self.destroy(i, id);
                self.check(&format!("teardown: destroy d{}", id.0));
            }
        }
        self.create(0, DomainKind::Pvh);
        let Some(c) = self.live(0) else { fail(&self.sim, "teardown", "no control domain could be created") };
        // Unlink every region, listing from the start each time.
        for _ in 0..=limits().regions_max {
            let list = StaticShm { op: shm::OP_LIST, buffer: SHM_BUF, nr_entries: 1, ..Default::default() };
            let mut dc = Domctl::static_shm(DomId::SSHM, &list);
            let r = self.sim.domctl(c, DOMCTL, &mut dc);
            let out = dc.static_shm_payload();
            if r < 0 {
                fail(&self.sim, "teardown: OP_LIST", Errno::from_ret(r).map_or("?", |e| e.name()));
            }
            if out.nr_entries == 0 {
                break;
            }
            let unlink = StaticShm { op: shm::OP_UNLINK, name: out.name, ..Default::default() };
            let mut dc = Domctl::static_shm(DomId::SSHM, &unlink);
            let r = self.sim.domctl(c, DOMCTL, &mut dc);
            if r != 0 {
                fail(&self.sim, "teardown: OP_UNLINK of a listed region", Errno::from_ret(r).map_or("?", |e| e.name()));
            }
        }
        self.destroy(0, c);
        self.check(&"teardown");
        let m = self.sim.machine();
        let leftovers = [
            ("zombies", m.zombies().len() as u64),
            ("sshm pages", m.sshm_pages()),
            ("sshm regions", self.sim.hv().sshm.stats().regions as u64),
            ("V4V pinned pages", self.sim.hv().v4v.pinned_pages() as u64),
            ("frames not free", m.total_frames() - m.free_frames()),
        ];
        for (what, n) in leftovers {
            if n != 0 {
                fail(
                    &self.sim,
                    "teardown: after every domain died and every region was unlinked",
                    format!("{n} {what} left"),
                );
            }
        }
        for id in &self.ever {
            if self.sim.hv().v4v.references(*id) {
                fail(&self.sim, "teardown", format!("V4V still names d{}", id.0));
            }
        }
    }
}

/// Zeroes what a sub-op does not use, as a toolstack does.
fn canonical(op: &mut StaticShm) {
    let (create, attach, detach) = (op.op == shm::OP_CREATE, op.op == shm::OP_ATTACH, op.op == shm::OP_DETACH);
    let lookup = matches!(op.op, shm::OP_UNLINK | shm::OP_INFO | shm::OP_LIST);
    if !(attach || detach) {
        op.offset = 0;
        op.gfn = 0;
        op.progress = 0;
    }
    if !matches!(op.op, shm::OP_INFO | shm::OP_LIST) {
        op.buffer = 0;
        op.nr_entries = 0;
    }
    if op.op == shm::OP_INFO {
        op.nr_entries = 0;
    }
    if detach || lookup {
        op.prot = 0;
        op.flags = 0;
        op.offset = 0;
    }
    if lookup {
        op.nr_pages = 0;
    }
    if create {
        op.flags &= shm::F_PERSISTENT;
    }
    if !(attach && op.flags & shm::F_CREATE != 0) {
        op.size_pages = 0;
    }
}

/// `XEN_FUZZ_TRACE=1`: print each op and each hypercall's result (replay).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("XEN_FUZZ_TRACE").is_some())
}

fn ring_gfn(area: usize) -> u64 {
    RING_GFN0 + (area % RING_AREAS) as u64 * RING_AREA_PAGES
}

/// A ring in simulator guest memory, for the guest-side reader.
struct GuestRing<'a> {
    sim: &'a Sim,
    d: DomId,
    gpa: u64,
}

impl RingMemory for GuestRing<'_> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        self.sim.guest_read(self.d, self.gpa + offset as u64, buf).map_err(|_| RingError::Fault)
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        self.sim.guest_write(self.d, self.gpa + offset as u64, buf).map_err(|_| RingError::Fault)
    }
}

/// Runs one input: decode, set up, every op followed by the checks, then
/// the teardown. Panics on any violation.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    run_input(&input);
}

/// Runs a decoded input.
pub fn run_input(input: &Input) {
    let mut w = World::new(input);
    w.check(&"setup");
    for op in &input.ops {
        if trace() {
            eprintln!("{op:?}");
        }
        w.step(op);
        w.check(op);
    }
    w.teardown();
}

/// Decodes an input for printing (the replay tool and crash reports).
pub fn decode(data: &[u8]) -> Option<Input> {
    Input::arbitrary_take_rest(Unstructured::new(data)).ok()
}
