//! A small fake of xenstored, enough to check what libxl publishes for a
//! guest: nodes with values and permission lists, implicit creation of
//! missing parents (which inherit their parent's permissions, as in
//! xenstored), transactions that conflict when the store changed since they
//! started, and xenstored's access rule for an unprivileged domain, so that a
//! test can ask what a guest may read or change.
//!
//! The toolstack (the C glue through [`crate::ffi`]) writes as dom0, which is
//! privileged; a guest's accesses go through [`Xenstore::write_as`] and
//! friends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// `XS_PERM_READ`.
pub const PERM_READ: u32 = 1;
/// `XS_PERM_WRITE`.
pub const PERM_WRITE: u32 = 2;

const EACCES: i32 = 13;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;
const EAGAIN: i32 = 11;
/// Open transactions at once (xenstored's default quota is 10).
const TRANSACTIONS_MAX: usize = 10;

/// One entry of a node's permission list (`struct xs_permissions`): the
/// first names the owner and what every other domain may do, the others
/// what one domain may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain.
    pub id: u32,
    /// `XS_PERM_*` bits.
    pub perms: u32,
}

#[derive(Clone, Debug)]
struct Node {
    value: String,
    perms: Vec<Perm>,
}

type Nodes = BTreeMap<String, Node>;

struct Transaction {
    generation: u64,
    nodes: Nodes,
}

struct Store {
    nodes: Nodes,
    /// Bumped by every committed change, for transaction conflicts.
    generation: u64,
    transactions: BTreeMap<u32, Transaction>,
    next_transaction: u32,
    /// Fails the write or permission change after this many more.
    fault: Option<(u32, i32)>,
}

/// A shared fake xenstore; clones are the same store.
#[derive(Clone)]
pub struct Xenstore(Arc<Mutex<Store>>);

impl Default for Xenstore {
    fn default() -> Self {
        Self::new()
    }
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

fn valid(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && !path.ends_with('/') && !path.contains("//"))
}

/// What domain `dom` may do to a node with `perms` (xenstored's
/// `perm_for_conn`): dom0 everything, the owner read and write, a domain
/// listed its entry, anyone else the first entry's bits.
fn access(dom: u32, perms: &[Perm]) -> u32 {
    match perms.first() {
        _ if dom == 0 => PERM_READ | PERM_WRITE,
        None => 0,
        Some(owner) if owner.id == dom => PERM_READ | PERM_WRITE,
        Some(owner) => perms.iter().skip(1).find(|p| p.id == dom).map_or(owner.perms, |p| p.perms),
    }
}

/// Writes `value` at `path` in `nodes`, creating missing parents with
/// their parent's permissions (the owner becomes `dom` if unprivileged).
fn write_node(nodes: &mut Nodes, dom: u32, path: &str, value: &str) {
    if let Some(n) = nodes.get_mut(path) {
        n.value = value.to_string();
        return;
    }
    let p = parent(path).expect("a non-root path has a parent");
    if !nodes.contains_key(p) {
        write_node(nodes, dom, p, "");
    }
    let mut perms = nodes[p].perms.clone();
    if dom != 0 {
        if let Some(owner) = perms.first_mut() {
            owner.id = dom;
        }
    }
    nodes.insert(path.to_string(), Node { value: value.to_string(), perms });
}

/// The closest node at or above `path` that exists.
fn closest<'a>(nodes: &Nodes, mut path: &'a str) -> &'a str {
    while !nodes.contains_key(path) {
        path = parent(path).unwrap_or("/");
    }
    path
}

fn letter(perms: u32) -> char {
    match perms & (PERM_READ | PERM_WRITE) {
        0 => 'n',
        PERM_READ => 'r',
        PERM_WRITE => 'w',
        _ => 'b',
    }
}

impl Xenstore {
    /// A store holding `/`, `/local` and `/local/domain`, owned by dom0.
    pub fn new() -> Xenstore {
        let mut nodes = Nodes::new();
        for p in ["/", "/local", "/local/domain"] {
            nodes.insert(p.to_string(), Node { value: String::new(), perms: vec![Perm { id: 0, perms: 0 }] });
        }
        Xenstore(Arc::new(Mutex::new(Store {
            nodes,
            generation: 0,
            transactions: BTreeMap::new(),
            next_transaction: 1,
            fault: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a later toolstack write or permission change fail: after
    /// `skip` succeed, the next one returns `errno`.
    pub fn inject(&self, skip: u32, errno: i32) {
        self.lock().fault = Some((skip, errno));
    }

    /// `/local/domain/<domid>`, as libxl makes it before the build: owned
    /// by dom0, readable by the domain.
    pub fn make_domain(&self, domid: u32) {
        let mut s = self.lock();
        let path = format!("/local/domain/{domid}");
        write_node(&mut s.nodes, 0, &path, "");
        s.nodes.get_mut(&path).expect("just written").perms =
            vec![Perm { id: 0, perms: 0 }, Perm { id: domid, perms: PERM_READ }];
        s.generation += 1;
    }

    /// `/local/domain/<domid>` and everything under it removed, as libxl
    /// does when it destroys the domain.
    pub fn remove_domain(&self, domid: u32) {
        let mut s = self.lock();
        let path = format!("/local/domain/{domid}");
        let under = format!("{path}/");
        s.nodes.retain(|k, _| k != &path && !k.starts_with(&under));
        s.generation += 1;
    }

    /// Every node at or under `path`, one line each in path order, as
    /// `xenstore-ls -f -p` prints them: `PATH = "VALUE"  (n0,r5)`.
    pub fn dump(&self, path: &str) -> String {
        let s = self.lock();
        let under = format!("{path}/");
        let mut out = String::new();
        for (k, n) in s.nodes.range(path.to_string()..) {
            if k != path && !k.starts_with(&under) {
                continue;
            }
            let perms: Vec<String> = n.perms.iter().map(|p| format!("{}{}", letter(p.perms), p.id)).collect();
            out.push_str(&format!("{k} = \"{}\"  ({})\n", n.value, perms.join(",")));
        }
        out
    }

    /// A read by domain `dom`: the value or the errno xenstored returns.
    pub fn read_as(&self, dom: u32, path: &str) -> Result<String, i32> {
        let s = self.lock();
        let n = s.nodes.get(path).ok_or(ENOENT)?;
        if access(dom, &n.perms) & PERM_READ == 0 {
            return Err(EACCES);
        }
        Ok(n.value.clone())
    }

    /// A write by domain `dom`: 0 or the errno xenstored returns. Writing
    /// needs write access to the node, or to the closest existing node
    /// above it when the write creates it.
    pub fn write_as(&self, dom: u32, path: &str, value: &str) -> Result<(), i32> {
        if !valid(path) {
            return Err(EINVAL);
        }
        let mut s = self.lock();
        let at = closest(&s.nodes, path);
        if access(dom, &s.nodes[at].perms) & PERM_WRITE == 0 {
            return Err(EACCES);
        }
        write_node(&mut s.nodes, dom, path, value);
        s.generation += 1;
        Ok(())
    }

    /// A removal by domain `dom`: 0 or the errno (write access needed).
    pub fn rm_as(&self, dom: u32, path: &str) -> Result<(), i32> {
        let mut s = self.lock();
        let n = s.nodes.get(path).ok_or(ENOENT)?;
        if access(dom, &n.perms) & PERM_WRITE == 0 {
            return Err(EACCES);
        }
        let under = format!("{path}/");
        s.nodes.retain(|k, _| k != path && !k.starts_with(&under));
        s.generation += 1;
        Ok(())
    }

    fn take_fault(s: &mut Store) -> Result<(), i32> {
        match s.fault.as_mut() {
            Some((0, e)) => {
                let e = *e;
                s.fault = None;
                Err(e)
            }
            Some((skip, _)) => {
                *skip -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Runs `f` on the nodes of transaction `t` (0: the store itself).
    fn with_nodes<R>(&self, t: u32, f: impl FnOnce(&mut Nodes) -> Result<R, i32>) -> Result<R, i32> {
        let mut s = self.lock();
        Self::take_fault(&mut s)?;
        if t == 0 {
            let r = f(&mut s.nodes)?;
            s.generation += 1;
            Ok(r)
        } else {
            let tr = s.transactions.get_mut(&t).ok_or(ENOENT)?;
            f(&mut tr.nodes)
        }
    }

    /// The toolstack's `xs_write` (dom0).
    pub(crate) fn write(&self, t: u32, path: &str, value: &str) -> Result<(), i32> {
        if !valid(path) {
            return Err(EINVAL);
        }
        self.with_nodes(t, |nodes| {
            write_node(nodes, 0, path, value);
            Ok(())
        })
    }

    /// The toolstack's `xs_set_permissions` (dom0).
    pub(crate) fn set_permissions(&self, t: u32, path: &str, perms: &[Perm]) -> Result<(), i32> {
        if perms.is_empty() {
            return Err(EINVAL);
        }
        self.with_nodes(t, |nodes| {
            nodes.get_mut(path).ok_or(ENOENT)?.perms = perms.to_vec();
            Ok(())
        })
    }

    /// `xs_transaction_start`: a snapshot of the store.
    pub(crate) fn transaction_start(&self) -> Result<u32, i32> {
        let mut s = self.lock();
        if s.transactions.len() >= TRANSACTIONS_MAX {
            return Err(EAGAIN);
        }
        let t = s.next_transaction;
        s.next_transaction = s.next_transaction.checked_add(1).unwrap_or(1);
        let tr = Transaction { generation: s.generation, nodes: s.nodes.clone() };
        s.transactions.insert(t, tr);
        Ok(t)
    }

    /// `xs_transaction_end`: discards, or commits unless the store changed
    /// since the start (`EAGAIN`: the caller runs the transaction again).
    pub(crate) fn transaction_end(&self, t: u32, abort: bool) -> Result<(), i32> {
        let mut s = self.lock();
        let tr = s.transactions.remove(&t).ok_or(ENOENT)?;
        if abort {
            return Ok(());
        }
        if tr.generation != s.generation {
            return Err(EAGAIN);
        }
        s.nodes = tr.nodes;
        s.generation += 1;
        Ok(())
    }
}
