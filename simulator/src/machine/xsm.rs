//! The XSM double: Xen's dummy policy unless a test makes a hook refuse,
//! and the questions the hooks were asked. The `Platform` hooks in
//! `platform.rs` ask it.

use std::sync::MutexGuard;

#[cfg(doc)]
use rust_hv::Platform;

use hypercall_abi::{DomId, Errno};

use super::Machine;

/// An XSM hook of [`Platform`], for [`Machine::set_xsm_deny`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsmHook {
    /// [`Platform::xsm_v4v_register`].
    V4vRegister,
    /// [`Platform::xsm_v4v_send`].
    V4vSend,
    /// [`Platform::xsm_v4v_firewall`] (on top of the dummy policy's
    /// control-domain-only rule).
    V4vFirewall,
    /// [`Platform::xsm_sshm_regions`] (on top of the dummy policy's
    /// control-domain-only rule).
    SshmRegions,
}

/// The simulated XSM policy: Xen's dummy policy (allow) unless a test makes
/// a hook refuse, and what the hooks were asked.
#[derive(Debug, Default)]
pub(super) struct Xsm {
    register_deny: Option<Errno>,
    send_deny: Option<Errno>,
    firewall_deny: Option<Errno>,
    sshm_regions_deny: Option<Errno>,
    /// How many times [`Platform::xsm_sshm_regions`] was asked.
    sshm_regions_asked: u64,
    /// The last caller [`Platform::xsm_v4v_firewall`] was asked about.
    firewall_last: Option<DomId>,
    /// The last question asked of each hook: `(caller, partner)` and
    /// `(src, dst)`.
    register_last: Option<(DomId, Option<DomId>)>,
    send_last: Option<(DomId, DomId)>,
}

impl Xsm {
    /// [`Platform::xsm_v4v_register`].
    pub(super) fn v4v_register(&mut self, caller: DomId, partner: Option<DomId>) -> Result<(), Errno> {
        self.register_last = Some((caller, partner));
        self.register_deny.map_or(Ok(()), Err)
    }

    /// [`Platform::xsm_v4v_send`].
    pub(super) fn v4v_send(&mut self, src: DomId, dst: DomId) -> Result<(), Errno> {
        self.send_last = Some((src, dst));
        self.send_deny.map_or(Ok(()), Err)
    }

    /// [`Platform::xsm_v4v_firewall`].
    pub(super) fn v4v_firewall(&mut self, caller: DomId, control: bool) -> Result<(), Errno> {
        self.firewall_last = Some(caller);
        // The dummy policy: XSM_PRIV, the control domain only.
        if !control {
            return Err(Errno::EPERM);
        }
        self.firewall_deny.map_or(Ok(()), Err)
    }

    /// [`Platform::xsm_sshm_regions`].
    pub(super) fn sshm_regions(&mut self, control: bool) -> Result<(), Errno> {
        self.sshm_regions_asked += 1;
        // The dummy policy: the control domain only.
        if !control {
            return Err(Errno::EPERM);
        }
        self.sshm_regions_deny.map_or(Ok(()), Err)
    }
}

impl Machine {
    /// The XSM double. A leaf lock, taken alone.
    pub(super) fn xsm(&self) -> MutexGuard<'_, Xsm> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes an XSM hook refuse every question with `e` (`None`: allow
    /// again, the dummy policy).
    pub fn set_xsm_deny(&self, hook: XsmHook, e: Option<Errno>) {
        let mut x = self.xsm.lock().unwrap_or_else(|e| e.into_inner());
        match hook {
            XsmHook::V4vRegister => x.register_deny = e,
            XsmHook::V4vSend => x.send_deny = e,
            XsmHook::V4vFirewall => x.firewall_deny = e,
            XsmHook::SshmRegions => x.sshm_regions_deny = e,
        }
    }

    /// The last question asked of [`Platform::xsm_v4v_register`]:
    /// `(caller, partner)`.
    pub fn xsm_v4v_register_last(&self) -> Option<(DomId, Option<DomId>)> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).register_last
    }

    /// How many times [`Platform::xsm_sshm_regions`] was asked.
    pub fn xsm_sshm_regions_asked(&self) -> u64 {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).sshm_regions_asked
    }

    /// The last caller [`Platform::xsm_v4v_firewall`] was asked about.
    pub fn xsm_v4v_firewall_last(&self) -> Option<DomId> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).firewall_last
    }

    /// The last question asked of [`Platform::xsm_v4v_send`]: `(src, dst)`.
    pub fn xsm_v4v_send_last(&self) -> Option<(DomId, DomId)> {
        self.xsm.lock().unwrap_or_else(|e| e.into_inner()).send_last
    }
}
