//! Event channels (2-level ABI reduced to what tests observe): per-domain
//! ports with a pending and a masked bit, interdomain binding, and VIRQs.

use hypercall_abi::{DomId, Errno};

/// Ports per domain; port 0 is never used (as in Xen).
pub const PORTS_MAX: u32 = 1024;
/// VIRQ numbers are below this (`NR_VIRQS`).
pub const NR_VIRQS: u32 = 24;

/// What a port is bound to (`ECS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// `ECS_FREE`.
    Free,
    /// `ECS_UNBOUND`: waiting for `remote` to bind to it.
    Unbound {
        /// The domain allowed to bind.
        remote: DomId,
    },
    /// `ECS_INTERDOMAIN`.
    Interdomain {
        /// The peer domain.
        remote: DomId,
        /// The peer's port.
        rport: u32,
    },
    /// `ECS_VIRQ`.
    Virq(u32),
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// The binding.
    pub state: PortState,
    /// The pending bit.
    pub pending: bool,
    /// The mask bit.
    pub masked: bool,
}

/// A domain's event channels.
#[derive(Debug)]
pub struct Evtchn {
    ports: Vec<Port>,
    virq_port: [u32; NR_VIRQS as usize],
}

impl Default for Evtchn {
    fn default() -> Self {
        Self::new()
    }
}

impl Evtchn {
    /// No ports bound.
    pub fn new() -> Evtchn {
        Evtchn { ports: Vec::new(), virq_port: [0; NR_VIRQS as usize] }
    }

    /// The port, if allocated.
    pub fn port(&self, port: u32) -> Option<&Port> {
        self.ports.get(usize::try_from(port).ok()?).filter(|p| port != 0 && p.state != PortState::Free)
    }

    pub(crate) fn port_mut(&mut self, port: u32) -> Option<&mut Port> {
        self.ports.get_mut(usize::try_from(port).ok()?).filter(|p| port != 0 && p.state != PortState::Free)
    }

    /// Every bound port.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Port)> {
        self.ports.iter().enumerate().skip(1).filter(|(_, p)| p.state != PortState::Free).map(|(i, p)| (i as u32, p))
    }

    /// Allocates a free port (`get_free_port`); `-ENOSPC` past
    /// [`PORTS_MAX`].
    pub fn alloc(&mut self, state: PortState) -> Result<u32, Errno> {
        let free = self.ports.iter().enumerate().skip(1).find(|(_, p)| p.state == PortState::Free).map(|(i, _)| i);
        let i = match free {
            Some(i) => i,
            None => {
                let n = self.ports.len().max(1);
                if n as u32 >= PORTS_MAX {
                    return Err(Errno::ENOSPC);
                }
                self.ports.resize(n + 1, Port { state: PortState::Free, pending: false, masked: false });
                n
            }
        };
        self.ports[i] = Port { state, pending: false, masked: false };
        Ok(i as u32)
    }

    /// Frees a port, returning what it was bound to.
    pub fn free(&mut self, port: u32) -> Option<PortState> {
        let p = self.port_mut(port)?;
        let old = p.state;
        *p = Port { state: PortState::Free, pending: false, masked: false };
        if let PortState::Virq(v) = old {
            if let Some(slot) = self.virq_port.get_mut(v as usize) {
                *slot = 0;
            }
        }
        Some(old)
    }

    /// Binds a VIRQ to a new port; `-EINVAL` for a bad number, `-EEXIST`
    /// if already bound.
    pub fn bind_virq(&mut self, virq: u32) -> Result<u32, Errno> {
        let idx = usize::try_from(virq).ok().filter(|&i| i < NR_VIRQS as usize).ok_or(Errno::EINVAL)?;
        if self.virq_port[idx] != 0 {
            return Err(Errno::EEXIST);
        }
        let port = self.alloc(PortState::Virq(virq))?;
        self.virq_port[idx] = port;
        Ok(port)
    }

    /// The port a VIRQ is bound to.
    pub fn virq_port(&self, virq: u32) -> Option<u32> {
        self.virq_port.get(usize::try_from(virq).ok()?).copied().filter(|&p| p != 0)
    }

    /// Sets a port pending (`evtchn_set_pending`); a masked port stays
    /// pending without an upcall, which the model does not distinguish.
    pub fn set_pending(&mut self, port: u32) {
        if let Some(p) = self.port_mut(port) {
            p.pending = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_allocated_from_one_and_reused() {
        let mut e = Evtchn::new();
        let a = e.alloc(PortState::Unbound { remote: DomId(1) }).unwrap();
        assert_eq!(a, 1);
        let b = e.bind_virq(14).unwrap();
        assert_eq!(b, 2);
        assert_eq!(e.bind_virq(14), Err(Errno::EEXIST));
        assert_eq!(e.bind_virq(NR_VIRQS), Err(Errno::EINVAL));
        assert_eq!(e.free(a), Some(PortState::Unbound { remote: DomId(1) }));
        assert_eq!(e.alloc(PortState::Virq(3)).unwrap(), 1, "lowest free port reused");
        assert_eq!(e.free(b), Some(PortState::Virq(14)));
        assert_eq!(e.virq_port(14), None);
        assert!(e.port(0).is_none());
    }

    #[test]
    fn port_space_is_limited() {
        let mut e = Evtchn::new();
        for _ in 1..PORTS_MAX {
            e.alloc(PortState::Unbound { remote: DomId(0) }).unwrap();
        }
        assert_eq!(e.alloc(PortState::Unbound { remote: DomId(0) }), Err(Errno::ENOSPC));
    }
}
