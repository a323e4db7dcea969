//! The simulator as the fake libxenctrl's hypervisor.

use hypercall_abi::domctl::Domctl;
use hypercall_abi::types::DomId;
use simulator::Sim;

use crate::ffi::Hypervisor;

impl Hypervisor for Sim {
    fn domctl(&self, caller: DomId, scratch_gpa: u64, op: &mut Domctl) -> i64 {
        Sim::domctl(self, caller, scratch_gpa, op)
    }

    fn read(&self, dom: DomId, gpa: u64, buf: &mut [u8]) -> bool {
        self.guest_read(dom, gpa, buf).is_ok()
    }

    fn write(&self, dom: DomId, gpa: u64, buf: &[u8]) -> bool {
        self.guest_write(dom, gpa, buf).is_ok()
    }
}
