//! The only `unsafe` of this crate: the bindgen bindings of `test-stubs/glue.h`,
//! the fake of the libxenctrl call path (the `extern "C"` functions the C
//! `do_domctl` and hypercall bounce buffers call), and thin safe wrappers
//! over the C glue for [`crate`].
//!
//! The fake hands the bytes of the C `struct xen_domctl` to a
//! [`Hypervisor`] (the simulator) as the control domain's hypercall would,
//! and places hypercall buffers in the control domain's memory, so the C's
//! guest handles are real guest addresses there.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr, CString};
use std::sync::{Arc, Mutex, MutexGuard};

use hypercall_abi::domctl::{self, Domctl};
use hypercall_abi::types::DomId;

use crate::xenstore::{Perm, Xenstore};

#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, clippy::all, clippy::pedantic)]
#[allow(clippy::undocumented_unsafe_blocks)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/glue.rs"));
}

pub use bindings::{libxl_domain_config, libxl_static_shm, LIBXL_SSHM_PROT_R, LIBXL_SSHM_PROT_RW};

/// What the fake needs from a hypervisor: the domctl hypercall issued by a
/// domain, and access to that domain's memory for hypercall buffers.
pub trait Hypervisor: Send + Sync {
    /// `__HYPERVISOR_domctl` from `caller`, the domctl staged at
    /// `scratch_gpa` of its memory. Returns 0/positive or `-errno`.
    fn domctl(&self, caller: DomId, scratch_gpa: u64, op: &mut Domctl) -> i64;
    /// Reads `buf.len()` bytes of `dom`'s memory at `gpa`.
    fn read(&self, dom: DomId, gpa: u64, buf: &mut [u8]) -> bool;
    /// Writes `buf` into `dom`'s memory at `gpa`.
    fn write(&self, dom: DomId, gpa: u64, buf: &[u8]) -> bool;
}

/// A hypervisor shared by toolstack instances (threads); it does its own
/// locking, as Xen does.
pub type Shared = Arc<dyn Hypervisor>;

/// Makes the next static_shm domctls fail: after `skip` succeed, the next
/// one returns `-errno` without reaching the hypervisor.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    /// Domctls let through first.
    pub skip: u32,
    /// The errno injected.
    pub errno: i32,
}

/// One open `xc_interface`: which hypervisor, which calling domain, and the
/// window of its memory used for the domctl and one bounce buffer.
struct Handle {
    hv: Shared,
    caller: DomId,
    scratch_gpa: u64,
    window_bytes: u64,
    fault: Option<Fault>,
    xs: Xenstore,
}

/// Open handles by number (`xc_interface.handle`); `None` once closed.
static HANDLES: Mutex<Vec<Option<Handle>>> = Mutex::new(Vec::new());

fn handles() -> MutexGuard<'static, Vec<Option<Handle>>> {
    HANDLES.lock().unwrap_or_else(|e| e.into_inner())
}

const EINVAL: c_long = 22;
const ENOMEM: c_long = 12;
const PAGE_BYTES: u64 = 4096;

/// The fake `do_domctl`: returns what the hypercall returns (`-errno`).
///
/// # Safety
///
/// `op` points to `len` readable and writable bytes holding a C
/// `struct xen_domctl`.
#[no_mangle]
pub unsafe extern "C" fn glue_fake_domctl(handle: c_uint, op: *mut c_void, len: usize) -> c_long {
    if len != domctl::SIZE || op.is_null() {
        return -EINVAL;
    }
    // SAFETY: the caller guarantees `op` points to `len` == `domctl::SIZE`
    // bytes, valid for reads and writes, for the duration of this call.
    let bytes = unsafe { &mut *op.cast::<[u8; domctl::SIZE]>() };
    let (hv, caller, scratch) = {
        let mut hs = handles();
        let Some(Some(h)) = hs.get_mut(handle as usize) else { return -EINVAL };
        if let Some(f) = h.fault.as_mut() {
            if f.skip == 0 {
                let e = f.errno;
                h.fault = None;
                return -c_long::from(e);
            }
            f.skip -= 1;
        }
        (h.hv.clone(), h.caller, h.scratch_gpa)
    };
    let mut d = Domctl::from_bytes(bytes);
    let rc = hv.domctl(caller, scratch, &mut d);
    *bytes = d.to_bytes();
    c_long::try_from(rc).unwrap_or(-EINVAL)
}

fn handle_xenstore(handle: c_uint) -> Option<Xenstore> {
    let hs = handles();
    Some(hs.get(handle as usize)?.as_ref()?.xs.clone())
}

/// Reads a C string argument.
///
/// # Safety
///
/// `p` is null or points to a NUL-terminated string.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller guarantees NUL termination.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

fn errno_of(r: Result<(), i32>) -> c_int {
    r.err().unwrap_or(0)
}

/// The fake `xs_transaction_start`: 0 or an errno; the id in `*t`.
///
/// # Safety
///
/// `t` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn glue_fake_xs_transaction_start(handle: c_uint, t: *mut u32) -> c_int {
    let Some(xs) = handle_xenstore(handle) else { return EINVAL as c_int };
    match xs.transaction_start() {
        Ok(id) => {
            // SAFETY: the caller guarantees `t` is writable.
            unsafe { t.write(id) };
            0
        }
        Err(e) => e,
    }
}

/// The fake `xs_transaction_end`: 0 or an errno (`EAGAIN`: run again).
#[no_mangle]
pub extern "C" fn glue_fake_xs_transaction_end(handle: c_uint, t: u32, abort: c_int) -> c_int {
    let Some(xs) = handle_xenstore(handle) else { return EINVAL as c_int };
    errno_of(xs.transaction_end(t, abort != 0))
}

/// The fake `xs_write` of a string value: 0 or an errno.
///
/// # Safety
///
/// `path` and `value` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn glue_fake_xs_write(
    handle: c_uint,
    t: u32,
    path: *const c_char,
    value: *const c_char,
) -> c_int {
    let Some(xs) = handle_xenstore(handle) else { return EINVAL as c_int };
    // SAFETY: the caller guarantees both are NUL-terminated strings.
    let (Some(path), Some(value)) = (unsafe { c_str(path) }, unsafe { c_str(value) }) else {
        return EINVAL as c_int;
    };
    errno_of(xs.write(t, path, value))
}

/// The fake `xs_set_permissions`: 0 or an errno.
///
/// # Safety
///
/// `path` is a NUL-terminated string and `perms` points to `num` pairs of
/// `unsigned int` (`struct xs_permissions`).
#[no_mangle]
pub unsafe extern "C" fn glue_fake_xs_set_permissions(
    handle: c_uint,
    t: u32,
    path: *const c_char,
    perms: *const c_uint,
    num: c_uint,
) -> c_int {
    let Some(xs) = handle_xenstore(handle) else { return EINVAL as c_int };
    // SAFETY: the caller guarantees a NUL-terminated string.
    let Some(path) = (unsafe { c_str(path) }) else { return EINVAL as c_int };
    if perms.is_null() || num > 64 {
        return EINVAL as c_int;
    }
    // SAFETY: the caller guarantees `num` readable pairs of unsigned ints
    // (`struct xs_permissions` is { unsigned int id; enum perms; }, and the
    // enum's values fit an unsigned int).
    let raw = unsafe { std::slice::from_raw_parts(perms, 2 * num as usize) };
    let list: Vec<Perm> = raw.chunks_exact(2).map(|p| Perm { id: p[0], perms: p[1] }).collect();
    errno_of(xs.set_permissions(t, path, &list))
}

/// Where a handle's one bounce buffer lives: the page after the domctl.
fn bounce_window(handle: c_uint, sz: usize) -> Option<(Shared, DomId, u64)> {
    let hs = handles();
    let h = hs.get(handle as usize)?.as_ref()?;
    (sz as u64 <= h.window_bytes - PAGE_BYTES).then(|| (h.hv.clone(), h.caller, h.scratch_gpa + PAGE_BYTES))
}

/// The fake `xc__hypercall_bounce_pre`: places the buffer in the caller's
/// memory and copies it in for `XC_HYPERCALL_BUFFER_BOUNCE_IN`.
///
/// # Safety
///
/// `ubuf` points to `sz` readable bytes; `gpa` is writable.
#[no_mangle]
pub unsafe extern "C" fn glue_fake_bounce_pre(
    handle: c_uint,
    ubuf: *const c_void,
    sz: usize,
    dir: c_int,
    gpa: *mut u64,
) -> c_int {
    let Some((hv, caller, at)) = bounce_window(handle, sz) else { return -(ENOMEM as c_int) };
    if dir & bindings::XC_HYPERCALL_BUFFER_BOUNCE_IN as c_int != 0 && sz != 0 {
        // SAFETY: the caller guarantees `ubuf` holds `sz` readable bytes.
        let src = unsafe { std::slice::from_raw_parts(ubuf.cast::<u8>(), sz) };
        if !hv.write(caller, at, src) {
            return -(ENOMEM as c_int);
        }
    }
    // SAFETY: the caller guarantees `gpa` is valid for a write.
    unsafe { gpa.write(at) };
    0
}

/// The fake `xc__hypercall_bounce_post`: copies the buffer back out for
/// `XC_HYPERCALL_BUFFER_BOUNCE_OUT`.
///
/// # Safety
///
/// `ubuf` points to `sz` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn glue_fake_bounce_post(handle: c_uint, ubuf: *mut c_void, sz: usize, dir: c_int, gpa: u64) {
    let Some((hv, caller, at)) = bounce_window(handle, sz) else { return };
    if dir & bindings::XC_HYPERCALL_BUFFER_BOUNCE_OUT as c_int == 0 || sz == 0 || at != gpa {
        return;
    }
    let mut tmp = vec![0u8; sz];
    if hv.read(caller, at, &mut tmp) {
        // SAFETY: the caller guarantees `ubuf` holds `sz` writable bytes,
        // and `tmp` is a distinct allocation of the same length.
        unsafe { std::ptr::copy_nonoverlapping(tmp.as_ptr(), ubuf.cast::<u8>(), sz) };
    }
}

/// Takes a malloc'd C string from the glue.
fn take_string(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the glue returns NUL-terminated strings it allocated with
    // malloc; we copy it, then free it exactly once.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: as above; `p` is not used afterwards.
    unsafe { bindings::glue_free(p.cast()) };
    Some(s)
}

/// A parsed `static_shm` list: the C `libxl_domain_config` the parser
/// filled (only its `sshms`).
pub struct DomainConfig(libxl_domain_config);

// SAFETY: the config is plain heap data owned by this value; the glue has
// no thread affinity.
unsafe impl Send for DomainConfig {}

/// One parsed `static_shm` entry, copied out of the C struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The region name.
    pub id: String,
    /// Guest physical address of the mapping, bytes.
    pub begin: u64,
    /// Length of the mapping, bytes.
    pub size: u64,
    /// First byte of the region mapped, bytes.
    pub offset: u64,
    /// Region size if given (else the hypervisor takes offset + size).
    pub region_size: Option<u64>,
    /// `prot=rw` (else read-only).
    pub rw: bool,
    /// `persistent=yes`.
    pub persistent: bool,
}

impl DomainConfig {
    /// The parsed entries.
    pub fn entries(&self) -> Vec<Entry> {
        let n = usize::try_from(self.0.num_sshms).unwrap_or(0);
        if n == 0 || self.0.sshms.is_null() {
            return Vec::new();
        }
        // SAFETY: the parser set `sshms` to an array of `num_sshms`
        // initialised entries, owned by `self` until drop.
        let raw = unsafe { std::slice::from_raw_parts(self.0.sshms, n) };
        raw.iter()
            .map(|e| Entry {
                id: if e.id.is_null() {
                    String::new()
                } else {
                    // SAFETY: `id` is a NUL-terminated string the parser
                    // allocated; it lives as long as `self`.
                    unsafe { CStr::from_ptr(e.id) }.to_string_lossy().into_owned()
                },
                begin: e.begin,
                size: e.size,
                offset: e.offset,
                region_size: (e.region_size != u64::MAX).then_some(e.region_size),
                rw: e.prot == LIBXL_SSHM_PROT_RW,
                persistent: e.persistent.val > 0,
            })
            .collect()
    }

    /// Sets the guest type libxl checks (`LIBXL_DOMAIN_TYPE_*`).
    pub fn set_type(&mut self, pv: bool) {
        self.0.b_info.type_ = if pv { bindings::LIBXL_DOMAIN_TYPE_PV } else { bindings::LIBXL_DOMAIN_TYPE_PVH };
    }
}

impl Drop for DomainConfig {
    fn drop(&mut self) {
        // SAFETY: the config is either zeroed or filled by the parser; dispose
        // frees what the parser allocated, once.
        unsafe { bindings::libxl_domain_config_dispose(&mut self.0) };
    }
}

/// Runs xl's `static_shm` parsing step on `items` from config `source`.
/// Returns the config or the errno, and what the parser reported.
pub fn parse(source: &str, items: &[&str]) -> (Result<DomainConfig, i32>, String) {
    let source = CString::new(source).unwrap_or_default();
    let owned: Vec<CString> = items.iter().map(|s| CString::new(*s).unwrap_or_default()).collect();
    let ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
    let nitems = c_int::try_from(ptrs.len()).unwrap_or(c_int::MAX);
    // SAFETY: `source` is a valid C string; the returned config is freed
    // below.
    let cfg = unsafe { bindings::glue_cfg_new(source.as_ptr()) };
    assert!(!cfg.is_null(), "glue_cfg_new");
    // SAFETY: a zeroed libxl_domain_config is its initialised state.
    let mut dc = DomainConfig(unsafe { std::mem::zeroed() });
    // SAFETY: `cfg` is live; `ptrs` holds `nitems` valid C strings that
    // outlive the call; `dc.0` is writable.
    let rc = unsafe { bindings::glue_parse(cfg, ptrs.as_ptr(), nitems, &mut dc.0) };
    // SAFETY: `cfg` is live.
    let report = take_string(unsafe { bindings::glue_cfg_take_report(cfg) }).unwrap_or_default();
    // SAFETY: `cfg` is live and not used afterwards.
    unsafe { bindings::glue_cfg_free(cfg) };
    (if rc == 0 { Ok(dc) } else { Err(rc) }, report)
}

/// One toolstack instance (one `xl` process): an `xc_interface` on the fake
/// and a libxl context, issuing hypercalls as `caller` from a private window
/// of its memory.
pub struct Toolstack {
    handle: c_uint,
    xch: *mut bindings::xc_interface,
    ctx: *mut bindings::libxl_ctx,
}

// SAFETY: the handle's state is behind a mutex and the hypervisor is Sync;
// the C objects are used by one thread at a time (`&mut self`).
unsafe impl Send for Toolstack {}

impl Toolstack {
    /// Opens a toolstack on `hv` and xenstore `xs`, calling from `caller`,
    /// using `window_bytes` (at least two pages) of its memory from
    /// `scratch_gpa`.
    pub fn open(hv: Shared, xs: &Xenstore, caller: DomId, scratch_gpa: u64, window_bytes: u64) -> Toolstack {
        assert!(window_bytes >= 2 * PAGE_BYTES);
        let handle = {
            let mut hs = handles();
            hs.push(Some(Handle { hv, caller, scratch_gpa, window_bytes, fault: None, xs: xs.clone() }));
            c_uint::try_from(hs.len() - 1).expect("handle count")
        };
        // SAFETY: plain constructors; both results are checked and freed
        // in `drop`.
        let xch = unsafe { bindings::glue_xc_open(handle) };
        // SAFETY: `xch` is live (checked below before any use).
        let ctx = unsafe { bindings::glue_ctx_new(xch) };
        assert!(!xch.is_null() && !ctx.is_null(), "toolstack allocation");
        Toolstack { handle, xch, ctx }
    }

    /// The xenstore this instance writes to.
    pub fn xenstore(&self) -> Xenstore {
        handle_xenstore(self.handle).expect("an open toolstack has a handle")
    }

    /// Arms a fault for this instance's next static_shm domctls.
    pub fn inject(&mut self, fault: Fault) {
        if let Some(Some(h)) = handles().get_mut(self.handle as usize) {
            h.fault = Some(fault);
        }
    }

    /// libxl's create steps for `domid`: setdefault, then attach every
    /// region (rolling back on failure). Returns libxl's rc and its log.
    pub fn attach(&mut self, domid: DomId, config: &mut DomainConfig) -> (i32, String) {
        self.build_step(domid, config, false)
    }

    /// The same step of the rebuild after a soft reset of `domid`
    /// (`dcs->soft_reset`): the attachments stayed, the keys are written
    /// again. Returns libxl's rc and its log.
    pub fn attach_after_soft_reset(&mut self, domid: DomId, config: &mut DomainConfig) -> (i32, String) {
        self.build_step(domid, config, true)
    }

    fn build_step(&mut self, domid: DomId, config: &mut DomainConfig, soft_reset: bool) -> (i32, String) {
        // SAFETY: `ctx` is live; `config.0` was filled by the parser.
        let rc = unsafe {
            bindings::glue_domain_attach(self.ctx, u32::from(domid.0), &mut config.0, c_int::from(soft_reset))
        };
        (rc, self.take_log())
    }

    /// What `xl sshm-list` prints, or `None` (and the log) if listing failed.
    pub fn sshm_list(&mut self) -> Result<String, String> {
        // SAFETY: `ctx` is live.
        take_string(unsafe { bindings::glue_sshm_list(self.ctx) }).ok_or_else(|| self.take_log())
    }

    /// `xc_sshm_unlink`: 0 or the errno.
    pub fn unlink(&mut self, name: &str) -> i32 {
        let name = CString::new(name).unwrap_or_default();
        // SAFETY: `xch` is live and `name` a valid C string.
        let rc = unsafe { bindings::xc_sshm_unlink(self.xch, name.as_ptr()) };
        if rc == 0 {
            0
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        }
    }

    /// `xc_sshm_info`: the region's entry or the errno.
    pub fn info(&mut self, name: &str) -> Result<hypercall_abi::sshm::Entry, i32> {
        let name = CString::new(name).unwrap_or_default();
        let mut e = [0u8; hypercall_abi::sshm::Entry::SIZE];
        // SAFETY: `xch` is live, `name` a valid C string and `e` has room
        // for one `xen_sshm_entry_t` (88 bytes, pinned by the layout tests).
        let rc = unsafe { bindings::xc_sshm_info(self.xch, name.as_ptr(), e.as_mut_ptr().cast()) };
        if rc == 0 {
            Ok(hypercall_abi::sshm::Entry::from_bytes(&e))
        } else {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
        }
    }

    fn take_log(&mut self) -> String {
        // SAFETY: `ctx` is live.
        take_string(unsafe { bindings::glue_ctx_take_log(self.ctx) }).unwrap_or_default()
    }
}

impl Drop for Toolstack {
    fn drop(&mut self) {
        // SAFETY: both were allocated in `open` and are not used afterwards.
        unsafe {
            bindings::glue_ctx_free(self.ctx);
            bindings::glue_xc_close(self.xch);
        }
        if let Some(h) = handles().get_mut(self.handle as usize) {
            *h = None;
        }
    }
}
