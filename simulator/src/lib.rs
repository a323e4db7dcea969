//! A pure-Rust model of the parts of Xen that static shared memory and V4V
//! touch: the frame table and heap, domains and their lifecycle (with
//! zombies), p2m with 4 KiB and 2 MiB entries, grant tables v1, event
//! channels and VIRQs, guest memory, and the hypercall entry. [`Machine`]
//! implements `rust-hv`'s [`Platform`], so the hypervisor logic runs here
//! unchanged; [`Sim`] owns a machine and the logic and is what tests drive.
//!
//! Everything random is drawn from one seed ([`Config::seed`], from
//! `SIM_SEED`), and one check ([`Sim::check`]: machine, sshm, V4V,
//! accounting) proves after each step that no reference, mapping or frame
//! went astray.

#![deny(unsafe_code)]

pub mod checker;
pub mod domain;
pub mod evtchn;
pub mod frame;
pub mod grant;
mod hypercall;
pub mod lock;
pub mod machine;
pub mod p2m;
pub mod rng;

use hypercall_abi::{DomId, Errno, Gfn};
pub use rust_hv::Platform;

pub use domain::{Dom, DomainKind, DomainState};
pub use grant::GrantEntry;
pub use hypercall::Step;
pub use machine::{Faults, Machine, Preempt, Trigger, Work, XsmHook, Zombie};
pub use p2m::P2mType;

/// How to build a simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Machine frames in the pool (clamped to [`frame::FRAMES_MAX`]).
    pub frames: u64,
    /// The one seed all randomness comes from.
    pub seed: u64,
    /// Static shared memory limits (Xen boot parameters).
    pub sshm_limits: rust_hv::sshm::Limits,
}

impl Default for Config {
    /// 1 GiB of frames, the seed from `SIM_SEED` (or the default seed),
    /// default sshm limits.
    fn default() -> Self {
        Config { frames: 1 << 18, seed: rng::seed_from_env(), sshm_limits: rust_hv::sshm::Limits::default() }
    }
}

/// A simulated Xen host: the machine and the hypervisor logic on it.
/// `Send + Sync`: tests call it through `&self` from several threads.
pub struct Sim {
    machine: Machine,
    hv: rust_hv::Hv<Machine>,
}

impl Sim {
    /// A machine with `cfg.frames` free frames and no domains.
    pub fn new(cfg: Config) -> Sim {
        Sim {
            machine: Machine::new(cfg.frames, cfg.seed, cfg.sshm_limits.total_pages_max),
            hv: rust_hv::Hv::new(cfg.sshm_limits),
        }
    }

    /// The machine (the `Platform`).
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The hypervisor logic.
    pub fn hv(&self) -> &rust_hv::Hv<Machine> {
        &self.hv
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.machine.seed()
    }

    /// Free frames in the pool.
    pub fn free_frames(&self) -> u64 {
        self.machine.free_frames()
    }

    /// Creates a domain with RAM at gfns `0..ram_pages` (2 MiB entries where
    /// aligned and available). Ids are handed out as Xen does (the first is
    /// 0, then the next free one after the last). `-ENOMEM` when the pool
    /// or the id space is exhausted, `-EINVAL` past
    /// [`machine::RAM_PAGES_MAX`].
    pub fn create_domain(&self, kind: DomainKind, ram_pages: u64, control: bool) -> Result<DomId, Errno> {
        self.machine.create_domain(kind, ram_pages, control)
    }

    /// Xen's `domain_kill`, to completion (the toolstack re-issuing
    /// `destroydomain` while it asks for a continuation): see
    /// [`Sim::destroy_domain_step`]. It ends dead, or dying (a zombie,
    /// listed by [`Machine::zombies`]) while others still reference its
    /// frames. Killing it again then is a no-op; `-ESRCH` if there is none.
    pub fn destroy_domain(&self, id: DomId) -> Result<(), Errno> {
        for _ in 0..hypercall::CONTINUATIONS_MAX {
            if self.destroy_domain_step(id)? {
                return Ok(());
            }
        }
        Err(Errno::ERESTART)
    }

    /// One step of Xen's `domain_kill` (one `destroydomain` call): the
    /// first marks the domain dying and waits for its hypercalls in flight;
    /// each runs one bounded step of `rust-hv`'s domain-kill hook, and
    /// `Ok(false)` is a continuation; once the hook is done the domain's
    /// resources are relinquished and it is `Ok(true)`.
    pub fn destroy_domain_step(&self, id: DomId) -> Result<bool, Errno> {
        let d = {
            let st = self.machine.lock();
            let slot = st.domains.get(&id.0).ok_or(Errno::ESRCH)?;
            match slot.rec.state() {
                DomainState::Running => slot.rec.set_state(DomainState::Dying),
                DomainState::Dying if !slot.relinquished => {}
                _ => return Ok(true),
            }
            Dom(slot.rec.clone())
        };
        // Pause: no hypercall of the dying domain is in flight from here on.
        drop(d.0.pause.write().unwrap_or_else(|e| e.into_inner()));
        let r = self.hv.domain_destroy(&self.machine, &d);
        self.run_background();
        match r {
            Err(Errno::ERESTART) => return Ok(false),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        self.machine.lock().relinquish(id);
        Ok(true)
    }

    /// Xen's `domain_soft_reset` (`XEN_DOMCTL_soft_reset`, what a guest's
    /// kexec asks for): with the domain paused, its event channels are
    /// reset (`evtchn_reset`: every port closed) and the features' soft
    /// reset hooks run; its memory and p2m stay. `-ESRCH` unless running.
    pub fn soft_reset_domain(&self, id: DomId) -> Result<(), Errno> {
        let d = self.machine.handle(id)?;
        if d.rec().state() != DomainState::Running {
            return Err(Errno::ESRCH);
        }
        // Paused for shutdown: no hypercall of it runs meanwhile.
        let _paused = d.0.pause.write().unwrap_or_else(|e| e.into_inner());
        {
            let mut st = self.machine.lock();
            let ports: Vec<_> =
                st.domains.get(&id.0).map(|s| s.evtchn.iter().map(|(p, e)| (p, e.state)).collect()).unwrap_or_default();
            for (port, state) in ports {
                st.evtchn_close_port(id, port, state);
            }
        }
        for _ in 0..hypercall::CONTINUATIONS_MAX {
            match self.hv.domain_soft_reset(&self.machine, &d) {
                // `XEN_DOMCTL_soft_reset_cont`, the domain still paused.
                Err(Errno::ERESTART) => continue,
                r => return r,
            }
        }
        Err(Errno::ERESTART)
    }

    /// The domain's state; `Some(Dead)` for an id whose domain died and was
    /// not reused, `None` for an id never used.
    pub fn domain_state(&self, id: DomId) -> Option<DomainState> {
        let st = self.machine.lock();
        match st.domains.get(&id.0) {
            Some(s) => Some(s.rec.state()),
            None => st.dead.contains(&id.0).then_some(DomainState::Dead),
        }
    }

    /// Reads guest memory of `d` at guest-physical `gpa` through its p2m
    /// (may cross pages). `-EFAULT` on a hole.
    pub fn guest_read(&self, d: DomId, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.machine.lock().guest_read(d, gpa, buf)
    }

    /// Writes guest memory of `d`: `-EFAULT` with nothing written on a hole;
    /// the pieces on read-only pages (RAM ro, shared ro, grant ro) are
    /// discarded and counted ([`Machine::write_discards`]) and the rest is
    /// written, as Xen's `copy_to_guest` and a translated guest's store do.
    pub fn guest_write(&self, d: DomId, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        self.machine.lock().guest_write(d, gpa, buf)
    }

    /// Writes `d` at `scratch_gpa` in the caller's memory, issues
    /// `__HYPERVISOR_domctl` (re-issuing continuations) and reads the
    /// domctl back into `d`.
    pub fn domctl(&self, caller: DomId, scratch_gpa: u64, d: &mut hypercall_abi::domctl::Domctl) -> i64 {
        if let Err(e) = self.guest_write(caller, scratch_gpa, &d.to_bytes()) {
            return e.to_ret();
        }
        let ret = self.hypercall(caller, hypercall_abi::hypercall::DOMCTL, [scratch_gpa, 0, 0, 0, 0]);
        let mut b = [0u8; hypercall_abi::domctl::SIZE];
        if self.guest_read(caller, scratch_gpa, &mut b).is_ok() {
            *d = hypercall_abi::domctl::Domctl::from_bytes(&b);
        }
        ret
    }

    /// The guest side of granting: `d` writes entry `gref` of its grant
    /// table. `-EBUSY` while the entry is mapped, `-EINVAL` for a bad ref.
    pub fn grant_write(&self, d: DomId, gref: u32, e: GrantEntry) -> Result<(), Errno> {
        self.machine.lock().grant_write(d, gref, e)
    }

    /// The guest side of ending a grant: clears entry `gref`; `-EBUSY`
    /// while a peer has it mapped.
    pub fn grant_end_access(&self, d: DomId, gref: u32) -> Result<(), Errno> {
        self.machine.lock().grant_end_access(d, gref)
    }

    /// A grant entry as the granter sees it.
    pub fn grant_entry(&self, d: DomId, gref: u32) -> Option<GrantEntry> {
        self.machine.lock().domains.get(&d.0)?.grants.entries.get(gref as usize).copied()
    }

    /// `EVTCHNOP_alloc_unbound`: a port of `d` that `remote` may bind.
    pub fn evtchn_alloc_unbound(&self, d: DomId, remote: DomId) -> Result<u32, Errno> {
        let mut st = self.machine.lock();
        if !st.domains.contains_key(&remote.0) {
            return Err(Errno::ESRCH);
        }
        st.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?.evtchn.alloc(evtchn::PortState::Unbound { remote })
    }

    /// `EVTCHNOP_bind_interdomain`: binds a new port of `d` to `remote`'s
    /// unbound port `rport`. `-EINVAL` unless that port is unbound for `d`.
    pub fn evtchn_bind_interdomain(&self, d: DomId, remote: DomId, rport: u32) -> Result<u32, Errno> {
        let mut st = self.machine.lock();
        let r = st.domains.get(&remote.0).ok_or(Errno::ESRCH)?;
        if r.evtchn.port(rport).map(|p| p.state) != Some(evtchn::PortState::Unbound { remote: d }) {
            return Err(Errno::EINVAL);
        }
        let port = st
            .domains
            .get_mut(&d.0)
            .ok_or(Errno::ESRCH)?
            .evtchn
            .alloc(evtchn::PortState::Interdomain { remote, rport })?;
        if let Some(p) = st.domains.get_mut(&remote.0).and_then(|s| s.evtchn.port_mut(rport)) {
            p.state = evtchn::PortState::Interdomain { remote: d, rport: port };
        }
        Ok(port)
    }

    /// `EVTCHNOP_bind_virq`.
    pub fn evtchn_bind_virq(&self, d: DomId, virq: u32) -> Result<u32, Errno> {
        self.machine.lock().domains.get_mut(&d.0).ok_or(Errno::ESRCH)?.evtchn.bind_virq(virq)
    }

    /// `EVTCHNOP_send` on an interdomain port: sets the peer's port pending.
    pub fn evtchn_send(&self, d: DomId, port: u32) -> Result<(), Errno> {
        let mut st = self.machine.lock();
        let p = st.domains.get(&d.0).ok_or(Errno::ESRCH)?.evtchn.port(port).ok_or(Errno::EINVAL)?.state;
        match p {
            evtchn::PortState::Interdomain { remote, rport } => {
                if let Some(s) = st.domains.get_mut(&remote.0) {
                    s.evtchn.set_pending(rport);
                }
                Ok(())
            }
            // Sending on an unbound port is silently dropped, as in Xen.
            evtchn::PortState::Unbound { .. } => Ok(()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Reads and clears a port's pending bit (what the guest's upcall
    /// handler does). `-EINVAL` for an unbound port.
    pub fn evtchn_take_pending(&self, d: DomId, port: u32) -> Result<bool, Errno> {
        let mut st = self.machine.lock();
        let p = st.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?.evtchn.port_mut(port).ok_or(Errno::EINVAL)?;
        Ok(std::mem::replace(&mut p.pending, false))
    }

    /// `EVTCHNOP_close`.
    pub fn evtchn_close(&self, d: DomId, port: u32) -> Result<(), Errno> {
        let mut st = self.machine.lock();
        let s = st.domains.get(&d.0).ok_or(Errno::ESRCH)?.evtchn.port(port).ok_or(Errno::EINVAL)?.state;
        st.evtchn_close_port(d, port, s);
        Ok(())
    }

    /// The guest maps its page `gfn` at the page-aligned linear address
    /// `va` in its own page tables, so hypercall pointers into
    /// `[va, va + 4096)` reach that page (see [`domain::Slot::linear`]). Lets a
    /// test put an argument at the very top of the 64-bit address space, as
    /// a real guest kernel can. `-EINVAL` if `va` is not page aligned.
    pub fn map_guest_linear(&self, d: DomId, va: u64, gfn: Gfn) -> Result<(), Errno> {
        if !va.is_multiple_of(hypercall_abi::PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let mut st = self.machine.lock();
        let slot = st.domains.get_mut(&d.0).ok_or(Errno::ESRCH)?;
        slot.linear.insert(va / hypercall_abi::PAGE_SIZE, gfn.0);
        Ok(())
    }

    /// The toolstack gives `d` alternate p2m views (`HVM_PARAM_ALTP2M`) or
    /// nested virtualisation (a creation flag in Xen; set here before the
    /// domain is used).
    pub fn set_p2m_views(&self, d: DomId, altp2m: bool, nested_virt: bool) -> Result<(), Errno> {
        let h = self.machine.handle(d)?;
        h.0.altp2m.store(altp2m, std::sync::atomic::Ordering::Release);
        h.0.nested_virt.store(nested_virt, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Makes one RAM page of `d` read-only or writable again.
    pub fn set_ram_writable(&self, d: DomId, gfn: Gfn, writable: bool) -> Result<(), Errno> {
        self.machine.set_ram_type(d, gfn, writable)
    }

    /// The one check tests run after each step: every invariant family
    /// of the simulated hypervisor, machine (frames and their references,
    /// p2m, grants, event channels, zombies, `Platform` contract
    /// violations), static shared memory (the registry's own invariants,
    /// and every sshm frame accounted to a live region) and V4V (the
    /// registry's invariants). The error lists every failure and ends with
    /// the seed and the `SIM_SEED=...` that replays the run. Call it when
    /// no hypercall is in flight.
    pub fn check(&self) -> Result<(), String> {
        let mut failures = Vec::new();
        if let Err(e) = self.machine_check() {
            failures.push(e);
        }
        if let Err(e) = self.hv.sshm.check_invariants() {
            failures.push(format!("sshm registry: {e}"));
        }
        // The registry's lock, then the machine's: never nested.
        let region_pages = self.hv.sshm.stats().pages;
        let machine_pages = self.machine.sshm_pages();
        if let Err(e) = checker::sshm::check_regions(machine_pages, region_pages) {
            failures.push(e);
        }
        if let Err(e) = self.hv.v4v.check_invariants() {
            failures.push(format!("v4v registry: {e}"));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(self.with_seed(failures.join("\n")))
        }
    }

    /// The machine's checkers alone, for tests that drive the `Platform`
    /// directly and hold sshm frames outside any region (which
    /// [`Sim::check`] reports).
    pub fn check_machine(&self) -> Result<(), String> {
        self.machine_check().map_err(|e| self.with_seed(e))
    }

    fn machine_check(&self) -> Result<(), String> {
        let st = self.machine.lock();
        checker::check(&st, self.machine.sshm_pages_max())
    }

    fn with_seed(&self, e: String) -> String {
        format!("{e}\n(seed {:#x}: replay with SIM_SEED={:#x})", self.seed(), self.seed())
    }
}

#[cfg(test)]
mod tests;
