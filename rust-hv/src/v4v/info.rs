//! `OP_INFO`: the limits, the caller's own statistics and, on request, the
//! state of one of its rings.
//!
//! System-wide totals are for the control domain only: how much other
//! tenants talk is a side channel.

use hypercall_abi::v4v::{
    Info, RingInfo, IOV_MAX, MSG_MAX, NOTIFY_ENTRIES_MAX, PENDING_PER_RING_MAX, RINGS_PER_DOMAIN_MAX, RING_LEN_MAX,
};
use hypercall_abi::{DomId, Errno};

use super::table::RingKey;
use super::{read_guest, write_guest, V4v};
use crate::platform::{Lock, Platform};

impl<P: Platform> V4v<P> {
    /// `OP_INFO`: the limits and the caller's statistics into `info`, and
    /// one of its rings' state into `ring_info` if that is not 0.
    #[inline(never)]
    pub(super) fn info(&self, p: &P, caller: &P::Domain, info: u64, ring_info: u64) -> Result<(), Errno> {
        let caller_info = p.domain_info(caller);
        let me = caller_info.id;
        // System-wide totals tell a guest how much other tenants talk: a
        // side channel. Only the control domain gets them; every other
        // domain sees 0 there and its own figures only.
        let global = caller_info.control;
        let mut out = self.table.with(|t| {
            let mut i = Info {
                rings_max: RINGS_PER_DOMAIN_MAX,
                ring_len_max: RING_LEN_MAX,
                iov_max: IOV_MAX,
                msg_max: MSG_MAX,
                notify_max: NOTIFY_ENTRIES_MAX,
                pending_max: PENDING_PER_RING_MAX,
                global_msgs: if global { t.global_msgs } else { 0 },
                global_bytes: if global { t.global_bytes } else { 0 },
                ..Info::default()
            };
            if let Some(d) = t.dom(me) {
                i.nr_rings = d.nr_rings;
                i.msgs_sent = d.msgs_sent;
                i.bytes_sent = d.bytes_sent;
                i.msgs_received = d.msgs_received;
                i.sends_full = d.sends_full;
            }
            i
        });
        out.pad = 0;
        if ring_info != 0 {
            let ri: RingInfo = read_guest(p, caller, ring_info)?;
            let key = RingKey { owner: me, port: ri.id.port, partner: DomId(ri.id.partner) };
            let generation = self.table.with(|t| t.find(key)).ok_or(Errno::ENOENT)?;
            let ring = self.bucket(generation).with(|b| {
                let r = b.get_mut(generation).ok_or(Errno::ENOENT)?;
                let rx = r.read_rx(p);
                Ok::<_, Errno>(RingInfo {
                    id: r.id,
                    len: r.len,
                    tx_ptr: r.tx,
                    rx_ptr: rx,
                    nr_pending: r.pending.len() as u32,
                    msgs: r.msgs,
                    bytes: r.bytes,
                    full: r.full,
                })
            })?;
            write_guest(p, caller, ring_info, &ring)?;
        }
        write_guest(p, caller, info, &out)
    }
}
