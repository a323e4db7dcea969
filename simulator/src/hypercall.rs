//! The hypercall entry: the calling domain, the hypercall number and five
//! register arguments; pointer arguments are guest-physical addresses in
//! the caller's memory. Returns what Xen returns.

use hypercall_abi::domctl::{self, Domctl};
use hypercall_abi::{hypercall, DomId, Errno};
use rust_hv::Platform as _;

use crate::domain::DomainState;
use crate::Sim;

/// Most times [`Sim::hypercall`] re-issues one hypercall. A logic that
/// never finishes under preemption would loop forever in Xen; here the
/// caller gets `-ERESTART` back and the test fails visibly.
pub const CONTINUATIONS_MAX: u32 = 1 << 20;

/// The outcome of one step of a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Finished with this return value.
    Done(i64),
    /// Preempted (`hypercall_create_continuation`): the guest re-executes
    /// the same hypercall with the same arguments; progress is in guest
    /// memory or in the hypervisor.
    Continuation,
}

impl Sim {
    /// Issues a hypercall and re-issues it while it asks for a
    /// continuation.
    pub fn hypercall(&self, caller: DomId, nr: u32, args: [u64; 5]) -> i64 {
        for _ in 0..CONTINUATIONS_MAX {
            if let Step::Done(r) = self.hypercall_step(caller, nr, args) {
                return r;
            }
        }
        Errno::ERESTART.to_ret()
    }

    /// Issues one step of a hypercall. A caller that is not running (dying,
    /// dead, unknown) gets `-ESRCH`: in Xen its vcpus no longer run.
    pub fn hypercall_step(&self, caller: DomId, nr: u32, args: [u64; 5]) -> Step {
        let d = match self.machine().handle(caller) {
            Ok(d) => d,
            Err(e) => return Step::Done(e.to_ret()),
        };
        // Shared pause lock: domain_kill waits for this call to finish.
        let _running = d.0.pause.read().unwrap_or_else(|e| e.into_inner());
        if d.rec().state() != DomainState::Running {
            return Step::Done(Errno::ESRCH.to_ret());
        }
        let r = match nr {
            hypercall::DOMCTL => self.do_domctl(&d, args[0]),
            hypercall::V4V_OP => {
                self.hv().v4v.op(self.machine(), &d, args[0] as u32, [args[1], args[2], args[3], args[4]])
            }
            hypercall::GRANT_TABLE_OP => {
                let count = u32::try_from(args[2]).unwrap_or(u32::MAX);
                self.machine().lock().grant_table_op(caller, args[0] as u32, args[1], count)
            }
            _ => Err(Errno::ENOSYS),
        };
        drop(_running);
        self.run_background();
        match r {
            Ok(v) => Step::Done(v),
            Err(Errno::ERESTART) => Step::Continuation,
            Err(e) => Step::Done(e.to_ret()),
        }
    }

    /// The background work the logic asked for (Xen: the sshm release
    /// tasklet, which runs in idle vCPU context soon after): run here, on
    /// the way back to the guest, to completion, one bounded step at a
    /// time. Returns how many steps it took.
    /// Nothing runs while the test drives it itself
    /// ([`crate::Machine::set_background_manual`]).
    pub fn run_background(&self) -> u64 {
        let mut steps = 0;
        while !self.machine().background_manual() && self.background_step().is_some() {
            steps += 1;
        }
        steps
    }

    /// One step of the background release, if it was asked for: `Some(more)`
    /// (and asked for again if more is left), `None` if nothing was due.
    pub fn background_step(&self) -> Option<bool> {
        if !self.machine().take_release_request() {
            return None;
        }
        let more = self.hv().sshm.release_step(self.machine());
        if more {
            self.machine().ask_release();
        }
        Some(more)
    }

    /// `do_domctl`, in Xen's order: copy in (`-EFAULT`), interface version
    /// (`-EACCES`), the envelope's domain looked up (`-ESRCH`), XSM dummy
    /// policy: control domain only (`-EPERM`), then the command. The domctl
    /// is copied back both on success and on a continuation, whose progress
    /// lives in the payload.
    fn do_domctl(&self, d: &crate::Dom, addr: u64) -> Result<i64, Errno> {
        let m = self.machine();
        let mut b = [0u8; domctl::SIZE];
        m.copy_from_guest(d, addr, &mut b).map_err(|_| Errno::EFAULT)?;
        let mut op = Domctl::from_bytes(&b);
        if op.interface_version != domctl::INTERFACE_VERSION {
            return Err(Errno::EACCES);
        }
        Self::domctl_lookup(m, &op)?;
        if !d.rec().control {
            return Err(Errno::EPERM);
        }
        match op.cmd {
            domctl::XEN_DOMCTL_STATIC_SHM => {
                let mut payload = op.static_shm_payload();
                let r = self.hv().sshm.domctl(m, d, DomId(op.domain), &mut payload);
                if matches!(r, Ok(_) | Err(Errno::ERESTART)) {
                    op.set_static_shm_payload(&payload);
                    m.copy_to_guest(d, addr, &op.to_bytes()).map_err(|_| Errno::EFAULT)?;
                }
                r
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// The envelope's domain, as Xen's `do_domctl` finds it before any
    /// handler runs: `XEN_DOMCTL_static_shm` names the pseudo-domain
    /// (`DOMID_SSHM`, resolved to `dom_sshm` like `DOMID_IO` to `dom_io`)
    /// for the sub-ops that act on no guest; every other id must be in the
    /// domain hash (running or dying), else `-ESRCH`. Reserved ids are never
    /// in the hash. A real host found the difference: `xl sshm-list` failed
    /// with `-ESRCH` on Xen while the simulator ignored the envelope.
    fn domctl_lookup(m: &crate::Machine, op: &Domctl) -> Result<(), Errno> {
        let id = DomId(op.domain);
        if op.cmd == domctl::XEN_DOMCTL_STATIC_SHM && id == DomId::SSHM {
            return Ok(());
        }
        if !id.is_real() {
            return Err(Errno::ESRCH);
        }
        m.handle(id).map(|_| ())
    }
}
