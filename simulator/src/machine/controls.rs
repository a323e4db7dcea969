//! What tests do to the machine besides hypercalls: the preemption policy,
//! armed faults, the transient references other Xen paths take, and p2m
//! type changes.

use hypercall_abi::{DomId, Errno, Gfn, Mfn};

#[cfg(doc)]
use rust_hv::Platform;

use super::Machine;
use crate::p2m::P2mType;

/// When `preempt_check` says yes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preempt {
    /// Never: hypercalls run to completion.
    Never,
    /// Always (the logic must still make progress between checks).
    Always,
    /// With probability `1/n`, drawn from the seeded generator.
    OneIn(u32),
}

/// When an injected fault fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    /// Never (the default).
    #[default]
    Never,
    /// After `n` more calls succeed, every call fails (`After(0)`: from the
    /// next one on).
    After(u32),
    /// Each call fails with probability `1/n`, drawn from the seeded
    /// generator, so a run replays from its seed.
    OneIn(u32),
}

/// The faults the machine injects: each is a way the Xen function behind a
/// `Platform` call can fail, and a failing call returns what Xen's returns
/// and does what Xen's does. Set with [`Machine::set_faults`]; preemption,
/// the other thing Xen decides, is [`Preempt`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// [`Platform::p2m_insert`] fails with `-ENOMEM` and maps nothing:
    /// `p2m_set_entry` could not allocate an intermediate page-table page
    /// (the domain's paging pool is exhausted).
    pub p2m_insert: Trigger,
    /// [`Platform::sshm_alloc`] fails with `-ENOMEM`: the heap has no free
    /// chunk of that order (`alloc_domheap_pages`).
    pub alloc: Trigger,
    /// [`Platform::sshm_alloc`] of a 2 MiB chunk fails with `-ENOMEM`
    /// while 4 KiB ones succeed: a fragmented heap.
    pub superpage_alloc: Trigger,
    /// A guest copy ([`Platform::copy_from_guest`],
    /// [`Platform::copy_to_guest`], [`Platform::copy_from_guest_to_frame`])
    /// faults after [`Faults::guest_copy_at`] bytes: those are copied, the
    /// rest is not, and the call fails with `-EFAULT`, as Xen's
    /// `copy_*_guest` does when the buffer reaches a page the guest
    /// unmapped meanwhile.
    pub guest_copy: Trigger,
    /// [`Platform::ring_map`] fails (returns `None`): `vmap()` found no
    /// room in the vmap area, or no memory for its page tables. V4V then
    /// reaches the ring's frames one by one.
    pub ring_map: Trigger,
    /// Bytes a faulting guest copy moves before the fault.
    pub guest_copy_at: usize,
}

impl Trigger {
    /// Whether this call fails (counting an `After` down); `draw` gives
    /// the seeded random number `OneIn` needs.
    fn fires(&mut self, draw: impl FnOnce() -> u64) -> bool {
        match *self {
            Trigger::Never => false,
            Trigger::After(0) => true,
            Trigger::After(n) => {
                *self = Trigger::After(n - 1);
                false
            }
            Trigger::OneIn(n) => n != 0 && draw().is_multiple_of(u64::from(n)),
        }
    }
}

impl Machine {
    /// Sets the injected faults (default: none), replacing those set
    /// before.
    pub fn set_faults(&self, f: Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = f;
    }

    /// Whether the fault `which` picks fires for this call. Takes the
    /// fault table and the generator one after the other, never nested.
    pub(crate) fn fault(&self, which: fn(&mut Faults) -> &mut Trigger) -> bool {
        let mut t = {
            let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            let t = *which(&mut f);
            if let Trigger::After(_) = t {
                let mut counted = t;
                let fired = counted.fires(|| 0);
                *which(&mut f) = counted;
                return fired;
            }
            t
        };
        t.fires(|| self.draw())
    }

    /// Bytes a faulting guest copy moves ([`Faults::guest_copy_at`]).
    pub(crate) fn guest_copy_fault_at(&self) -> usize {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).guest_copy_at
    }

    /// Sets the preemption policy (default: `OneIn(8)`, seeded).
    pub fn set_preempt(&self, p: Preempt) {
        *self.preempt.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Arms a one-shot fault: the next 2 MiB
    /// [`Platform::p2m_insert`] has
    /// `p2m_set_entry` write its first `written` pages as 4 KiB entries and
    /// then fail with `-ENOMEM`, as Xen's does when it must split the
    /// request (no 2 MiB support in this p2m, shadow paging) and runs out of
    /// p2m pages part way. `None` disarms it.
    pub fn set_p2m_insert_fault(&self, written: Option<u64>) {
        self.lock().p2m_insert_fault = written;
    }

    /// Takes a transient general reference on any in-use frame, as another
    /// Xen path (or a PV guest's hypercall) may at any moment: `get_page`.
    /// `-EINVAL` for a free frame.
    pub fn page_get_transient(&self, mfn: Mfn) -> Result<(), Errno> {
        let mut st = self.lock();
        st.frames.get_ref(mfn.0)?;
        *st.transient.entry(mfn.0).or_insert(0) += 1;
        Ok(())
    }

    /// Drops a reference from [`Machine::page_get_transient`] (`put_page`):
    /// the frame may return to the heap now.
    pub fn page_put_transient(&self, mfn: Mfn) {
        let mut st = self.lock();
        match st.transient.get_mut(&mfn.0) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    st.transient.remove(&mfn.0);
                }
            }
            _ => {
                st.violation(format!("page_put_transient of mfn {:#x} with no transient reference", mfn.0));
                return;
            }
        }
        st.put_frame(mfn.0);
    }

    /// Changes one RAM page's type (`HVMOP_set_mem_type`), e.g. to make it
    /// read-only. `-EINVAL` for a non-RAM entry or unpopulated gfn.
    pub fn set_ram_type(&self, d: DomId, gfn: Gfn, writable: bool) -> Result<(), Errno> {
        let mut st = self.lock();
        let slot = st.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?;
        slot.p2m.set_ram_type(gfn, if writable { P2mType::RamRw } else { P2mType::RamRo })
    }
}
