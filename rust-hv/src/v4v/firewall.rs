//! `OP_FW_ADD`, `OP_FW_DEL`, `OP_FW_LIST`: the firewall (V4V's v4vtables),
//! and the match every send and notify asks of it.
//!
//! The rules are system-wide policy: the dispatcher asks the XSM hook
//! ([`Platform::xsm_v4v_firewall`]) before any of these ops looks at its
//! arguments. The default policy is **accept**: no rules means every send
//! the ring's partner setting allows goes through; the first matching rule
//! decides otherwise. Rules naming a domain go when it dies (not at its
//! soft reset: see `teardown.rs`).

use hypercall_abi::v4v::{FwRule, DOMID_ANY, FW_ACCEPT, FW_RULES_MAX, PORT_ANY};
use hypercall_abi::{DomId, Errno};

use super::table::Table;
use super::{guest_elem, read_guest, write_guest, V4v};
use crate::locking;
use crate::platform::{Lock, Platform};

/// A rule's own checks, and `-EINVAL` unless each domain it names is a
/// real domain id or [`DOMID_ANY`].
fn check_rule(r: &FwRule) -> Result<(), Errno> {
    r.validate()?;
    for d in [r.src_domain, r.dst_domain] {
        if d != DOMID_ANY && !DomId(d).is_real() {
            return Err(Errno::EINVAL);
        }
    }
    Ok(())
}

impl Table {
    /// First matching rule decides; no match is the default policy, accept.
    pub(super) fn fw_allows(&self, src: DomId, src_port: u32, dst: DomId, dst_port: u32) -> bool {
        let m32 = |r: u32, v: u32| r == PORT_ANY || r == v;
        for r in &self.fw {
            if (r.src_domain == DOMID_ANY || r.src_domain == src.0)
                && (r.dst_domain == DOMID_ANY || r.dst_domain == dst.0)
                && m32(r.src_port, src_port)
                && m32(r.dst_port, dst_port)
            {
                return r.action == FW_ACCEPT;
            }
        }
        true
    }
}

impl<P: Platform> V4v<P> {
    /// `OP_FW_ADD`: inserts the rule at `rule` at position `pos` (past the
    /// end appends).
    #[inline(never)]
    pub(super) fn fw_add(&self, p: &P, caller: &P::Domain, rule: u64, pos: u64) -> Result<i64, Errno> {
        locking::assert_unlocked(p);
        let r: FwRule = read_guest(p, caller, rule)?;
        check_rule(&r)?;
        // A rule names live domains only: rules naming a domain go when it
        // dies (`domain_destroy`), so one naming a free id would wait for
        // whoever gets that id next. The references are taken before the
        // lock; `dying` is checked under L1, which the destroy hook takes
        // after setting it.
        let named = |id: u16| (id != DOMID_ANY).then(|| p.domain(DomId(id))).transpose();
        let (src, dst) = (named(r.src_domain)?, named(r.dst_domain)?);
        self.table.with(|t| {
            if src.iter().chain(dst.iter()).any(|d| p.domain_info(d).dying) {
                return Err(Errno::ESRCH);
            }
            if t.fw.len() >= FW_RULES_MAX as usize {
                return Err(Errno::ENOSPC);
            }
            t.fw.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            // A position past the end appends.
            let pos = core::cmp::min(pos, t.fw.len() as u64) as usize;
            t.fw.insert(pos, r);
            Ok(0)
        })
    }

    /// `OP_FW_DEL`: deletes the first rule equal to the one at `rule`.
    #[inline(never)]
    pub(super) fn fw_del(&self, p: &P, caller: &P::Domain, rule: u64) -> Result<i64, Errno> {
        let r: FwRule = read_guest(p, caller, rule)?;
        check_rule(&r)?;
        self.table.with(|t| {
            let i = t.fw.iter().position(|x| *x == r).ok_or(Errno::ENOENT)?;
            t.fw.remove(i);
            Ok(0)
        })
    }

    /// `OP_FW_LIST`: copies rules `[first, first + cap)` to the array at
    /// `rules` and returns how many rules there are in all.
    #[inline(never)]
    pub(super) fn fw_list(&self, p: &P, caller: &P::Domain, rules: u64, first: u64, cap: u64) -> Result<i64, Errno> {
        if cap > FW_RULES_MAX as u64 {
            return Err(Errno::E2BIG);
        }
        let mut buf = [FwRule::default(); FW_RULES_MAX as usize];
        let (total, n) = self.table.with(|t| {
            let total = t.fw.len();
            if first > total as u64 {
                return Err(Errno::EINVAL);
            }
            let n = core::cmp::min(cap as usize, total - first as usize);
            buf[..n].copy_from_slice(&t.fw[first as usize..first as usize + n]);
            Ok((total, n))
        })?;
        for (i, r) in buf[..n].iter().enumerate() {
            write_guest(p, caller, guest_elem(rules, i, FwRule::SIZE)?, r)?;
        }
        Ok(total as i64)
    }
}
