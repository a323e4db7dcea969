//! Domains: the counted handle rust-hv holds, and the per-domain state the
//! machine keeps under its lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use hypercall_abi::DomId;
use rust_hv::platform::DomainInfo;

use crate::evtchn::Evtchn;
use crate::grant::{GrantTable, Maptrack};
use crate::p2m::P2m;

/// What kind of guest a domain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainKind {
    /// Fully virtualised, translated (has a p2m).
    Hvm,
    /// PVH: translated (has a p2m).
    Pvh,
    /// Paravirtualised: not translated. The simulator still keeps its
    /// pseudo-physical map in a p2m so its memory can be addressed, but
    /// `Platform::p2m_insert` refuses it.
    Pv,
}

impl DomainKind {
    /// HVM and PVH guests are translated.
    pub fn translated(self) -> bool {
        !matches!(self, DomainKind::Pv)
    }
}

/// Where a domain is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainState {
    /// Running.
    Running,
    /// Being killed, or killed but still referenced (a zombie: some of its
    /// frames are held by others, so `struct domain` cannot go).
    Dying,
    /// Gone; its id may be reused.
    Dead,
}

const RUNNING: u8 = 0;
const DYING: u8 = 1;
const DEAD: u8 = 2;

/// The immutable identity of one incarnation of a domain, plus its
/// lifecycle flag (readable without the machine lock, like `d->is_dying`).
#[derive(Debug)]
pub struct DomainRec {
    /// Its id.
    pub id: DomId,
    /// Its kind.
    pub kind: DomainKind,
    /// The control domain.
    pub control: bool,
    state: AtomicU8,
    /// `HVM_PARAM_ALTP2M` set (see `DomainInfo::altp2m`).
    pub(crate) altp2m: AtomicBool,
    /// Nested virtualisation enabled.
    pub(crate) nested_virt: AtomicBool,
    /// Taken shared by each of the domain's hypercalls in flight and
    /// exclusively by `domain_kill` to pause it: once it is dying no vcpu of
    /// it runs again (Xen: `domain_pause` waits for the vcpus to stop).
    pub(crate) pause: RwLock<()>,
}

impl DomainRec {
    pub(crate) fn new(id: DomId, kind: DomainKind, control: bool) -> DomainRec {
        DomainRec {
            id,
            kind,
            control,
            state: AtomicU8::new(RUNNING),
            altp2m: AtomicBool::new(false),
            nested_virt: AtomicBool::new(false),
            pause: RwLock::new(()),
        }
    }

    /// The lifecycle state.
    pub fn state(&self) -> DomainState {
        match self.state.load(Ordering::Acquire) {
            RUNNING => DomainState::Running,
            DYING => DomainState::Dying,
            _ => DomainState::Dead,
        }
    }

    pub(crate) fn set_state(&self, s: DomainState) {
        let v = match s {
            DomainState::Running => RUNNING,
            DomainState::Dying => DYING,
            DomainState::Dead => DEAD,
        };
        self.state.store(v, Ordering::Release);
    }
}

/// A counted reference to one incarnation of a domain
/// (`get_domain`/`put_domain`): `Platform::Domain` of the simulator. A
/// handle to a domain that has since died stays valid as a value but every
/// operation on it fails with `-ESRCH`, even if its id has been reused.
#[derive(Clone, Debug)]
pub struct Dom(pub(crate) Arc<DomainRec>);

impl Dom {
    /// The domain id.
    pub fn id(&self) -> DomId {
        self.0.id
    }

    /// The domain's record.
    pub fn rec(&self) -> &DomainRec {
        &self.0
    }

    pub(crate) fn info(&self) -> DomainInfo {
        DomainInfo {
            id: self.0.id,
            translated: self.0.kind.translated(),
            dying: self.0.state() != DomainState::Running,
            control: self.0.control,
            altp2m: self.0.altp2m.load(Ordering::Acquire),
            nested_virt: self.0.nested_virt.load(Ordering::Acquire),
        }
    }
}

/// The per-domain state under the machine lock (`struct domain`'s
/// mutable parts).
pub struct Slot {
    /// The incarnation.
    pub rec: Arc<DomainRec>,
    /// Its p2m (also used as the pseudo-physical map of PV guests).
    pub p2m: P2m,
    /// Its RAM allocations (`d->page_list`), as (first mfn, order).
    pub page_list: Vec<(u64, u32)>,
    /// Frames it owns (`d->tot_pages`).
    pub tot_pages: u64,
    /// `domain_relinquish_resources` has run.
    pub relinquished: bool,
    /// Its grant table (as granter).
    pub grants: GrantTable,
    /// Its grant mappings of others' pages (as mapper).
    pub maptrack: Maptrack,
    /// Its event channels.
    pub evtchn: Evtchn,
    /// VIRQs raised on it, by number, whether bound or not.
    pub virq_raised: BTreeMap<u32, u64>,
    /// The guest's own page tables, as far as hypercall pointers go: linear
    /// page -> gfn. Xen's `copy_from_guest` on a translated guest walks
    /// them (`hvm_copy_from_guest_linear`); a linear page not listed here
    /// is identity-mapped, so tests can keep passing guest-physical
    /// addresses. Lets a guest place a buffer anywhere in its 64-bit
    /// address space, up to the very last page.
    pub linear: BTreeMap<u64, u64>,
}

impl Slot {
    pub(crate) fn new(rec: Arc<DomainRec>) -> Slot {
        Slot {
            rec,
            p2m: P2m::new(),
            page_list: Vec::new(),
            tot_pages: 0,
            relinquished: false,
            grants: GrantTable::new(),
            maptrack: Maptrack::default(),
            evtchn: Evtchn::new(),
            virq_raised: BTreeMap::new(),
            linear: BTreeMap::new(),
        }
    }

    /// The p2m entry behind the guest-linear page `page` (see
    /// [`Slot::linear`]).
    pub(crate) fn translate(&self, page: u64) -> Option<(hypercall_abi::Mfn, crate::p2m::P2mType)> {
        let gfn = self.linear.get(&page).copied().unwrap_or(page);
        self.p2m.lookup(hypercall_abi::Gfn(gfn))
    }
}
