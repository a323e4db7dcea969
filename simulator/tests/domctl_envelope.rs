//! The domctl envelope as Xen's `do_domctl` reads it, before any handler:
//! the domain it names is looked up first (`-ESRCH`), then XSM decides.
//! libxenctrl sends the sub-ops that act on no guest (create, unlink, info,
//! list) on `DOMID_SSHM`; on a real host `xl sshm-list` failed with
//! `-ESRCH` ("the domain is dying") until Xen resolved that id to the
//! pseudo-domain, while this simulator ignored the envelope and passed.

mod sshm_common;

use hypercall_abi::sshm::{self, StaticShm, PROT_RW};
use hypercall_abi::{DomId, Errno};
use simulator::DomainKind;
use sshm_common::*;

/// `xc_sshm_list`/`info`/`unlink`/`create` as libxenctrl issues them.
#[test]
fn global_sub_ops_on_domid_sshm_reach_the_handler() {
    let env = Env::small(1);
    let d = env.guest(DomainKind::Hvm, 64);
    assert_eq!(env.call(DomId::SSHM, &create("g0", 4, PROT_RW, true)), Ok(0));
    assert_eq!(env.call(d, &attach("g0", 4, 0, SHM_GFN, PROT_RW)), Ok(0));
    let info = StaticShm { buffer: BUF_GPA, ..op(sshm::OP_INFO, "g0") };
    assert_eq!(env.call(DomId::SSHM, &info), Ok(0));
    let list = StaticShm { op: sshm::OP_LIST, buffer: BUF_GPA, nr_entries: 4, ..Default::default() };
    let (r, back) = env.call_from(env.dom0, DomId::SSHM, &list);
    assert_eq!((r, back.nr_entries), (Ok(0), 1));
    assert_eq!(env.call(DomId::SSHM, &unlink("g0")), Ok(0));
    assert_eq!(env.call(d, &detach("g0", SHM_GFN)), Ok(0));
    assert_eq!(env.list_all(4).map(|l| l.len()), Ok(0), "unlinked and detached: gone");
    env.check().unwrap();
}

/// Xen finds no domain for an id that is free or reserved (other than
/// `DOMID_SSHM` for this domctl): `-ESRCH` before the handler runs, for
/// every sub-op, global ones included.
#[test]
fn envelope_naming_no_domain_is_esrch() {
    let env = Env::small(2);
    let d = env.guest(DomainKind::Hvm, 64);
    let list = StaticShm { op: sshm::OP_LIST, buffer: BUF_GPA, nr_entries: 4, ..Default::default() };
    for id in [DomId(77), DomId::IO, DomId::XEN, DomId::INVALID, DomId(0x7ff6)] {
        assert_eq!(env.call(id, &list), Err(Errno::ESRCH), "list on {id:?}");
        assert_eq!(env.call(id, &create("g1", 4, PROT_RW, false)), Err(Errno::ESRCH), "create on {id:?}");
    }
    // Attach needs a guest: the pseudo-domain has no physmap.
    assert_eq!(env.call(DomId::SSHM, &open("g1", 4, SHM_GFN, PROT_RW, false)), Err(Errno::ESRCH));
    env.sim.destroy_domain(d).unwrap();
    assert_eq!(env.call(d, &list), Err(Errno::ESRCH), "a dead domain is not in the hash");
    assert_eq!(env.list_all(4).map(|l| l.len()), Ok(0), "nothing was created");
    env.check().unwrap();
}

/// The lookup comes before XSM, as in Xen: a guest naming a missing domain
/// learns `-ESRCH`, naming an existing one `-EPERM`.
#[test]
fn lookup_precedes_xsm() {
    let env = Env::small(3);
    let du = env.guest(DomainKind::Hvm, 64);
    let list = StaticShm { op: sshm::OP_LIST, buffer: BUF_GPA, nr_entries: 1, ..Default::default() };
    assert_eq!(env.call_from(du, DomId(77), &list).0, Err(Errno::ESRCH));
    assert_eq!(env.call_from(du, DomId::SSHM, &list).0, Err(Errno::EPERM));
    assert_eq!(env.call_from(du, du, &list).0, Err(Errno::EPERM));
}
