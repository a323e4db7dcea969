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

impl Machine {
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
