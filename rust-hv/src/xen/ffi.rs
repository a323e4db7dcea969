//! The `extern "C"` entry points Xen calls, the panic handler and the heap.
//!
//! Each entry point turns C arguments into safe values, calls the logic and
//! turns the result into a Xen return value: `>= 0` or `-errno`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use core::fmt::Write;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use alloc::boxed::Box;
use hypercall_abi::sshm::StaticShm;
use hypercall_abi::{DomId, Errno};

use super::bindings as b;
use super::platform::{Domain, Xen};
use crate::{sshm, Hv};

/// The one instance, set once by [`rust_hv_init`] and never freed.
static HV: AtomicPtr<Hv<Xen>> = AtomicPtr::new(core::ptr::null_mut());

fn hv() -> Result<&'static Hv<Xen>, Errno> {
    let p = HV.load(Ordering::Acquire);
    // SAFETY: A non-null pointer was published by `rust_hv_init` from a
    // leaked `Box` with release ordering and is never freed or changed.
    unsafe { p.as_ref() }.ok_or(Errno::ENOSYS)
}

fn ret(r: Result<i64, Errno>) -> c_long {
    match r {
        Ok(v) => v as c_long,
        Err(e) => -(e.0 as c_long),
    }
}

/// Boot-time initialisation (an initcall in `shim.c`).
///
/// # Safety
///
/// `limits` points to a valid `struct rust_hv_limits`. Called once, before
/// any other entry point.
#[no_mangle]
pub unsafe extern "C" fn rust_hv_init(limits: *const b::rust_hv_limits) -> c_int {
    super::lockdep::selftest();
    // SAFETY: Valid per this function's contract.
    let l = unsafe { &*limits };
    let d = sshm::Limits::default();
    let limits = sshm::Limits {
        total_pages_max: l.sshm_pages_max,
        region_pages_max: l.sshm_region_pages_max.min(d.region_pages_max),
        regions_max: l.sshm_regions_max.min(d.regions_max),
    };
    let Ok(hv) = alloc_box(Hv::new(limits)) else {
        return -(Errno::ENOMEM.0 as c_int);
    };
    if HV.compare_exchange(core::ptr::null_mut(), Box::into_raw(hv), Ordering::AcqRel, Ordering::Acquire).is_err() {
        return -(Errno::EBUSY.0 as c_int);
    }
    0
}

/// A `Box` whose allocation failure is `-ENOMEM`, not a panic.
fn alloc_box<T>(v: T) -> Result<Box<T>, Errno> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(v));
    }
    // SAFETY: `layout` has a non-zero size.
    let p = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    let p = NonNull::new(p).ok_or(Errno::ENOMEM)?;
    // SAFETY: `p` is a fresh allocation of `T`'s layout from the global
    // allocator, which is what `Box` uses; it is initialised before use.
    unsafe {
        p.as_ptr().write(v);
        Ok(Box::from_raw(p.as_ptr()))
    }
}

/// `XEN_DOMCTL_static_shm` (from `do_domctl()`, under the domctl lock).
/// Returns `-ERESTART` when the caller must copy `op` back and create a
/// continuation.
///
/// # Safety
///
/// `op` points to the domctl's 128-byte union, exclusively for this call.
#[no_mangle]
pub unsafe extern "C" fn rust_hv_sshm_domctl(target: u16, op: *mut c_void) -> c_long {
    let hv = match hv() {
        Ok(hv) => hv,
        Err(e) => return ret(Err(e)),
    };
    // SAFETY: `op` is valid for 128 bytes of reads and writes and not
    // aliased during the call (this function's contract); `StaticShm::SIZE`
    // is 128.
    let bytes = unsafe { &mut *op.cast::<[u8; StaticShm::SIZE]>() };
    let mut sop = StaticShm::from_bytes(bytes);
    let caller = Domain::current();
    let r = hv.sshm.domctl(&Xen, &caller, DomId(target), &mut sop);
    *bytes = sop.to_bytes();
    ret(r)
}

/// The `v4v_op` hypercall, native and compat (the ABI has the same layout
/// for both). `-ERESTART`: re-issue with the same arguments.
#[no_mangle]
pub extern "C" fn rust_hv_v4v_op(cmd: c_uint, arg1: c_ulong, arg2: c_ulong, arg3: c_ulong, arg4: c_ulong) -> c_long {
    let hv = match hv() {
        Ok(hv) => hv,
        Err(e) => return ret(Err(e)),
    };
    let caller = Domain::current();
    ret(hv.v4v.op(&Xen, &caller, cmd, [arg1, arg2, arg3, arg4]))
}

/// Domain-kill hook (`domain_kill()`, once the domain is dying): one
/// bounded step; `-ERESTART` asks to be called again (the `destroydomain`
/// continuation).
///
/// # Safety
///
/// `d` points to a domain the caller holds a reference on.
#[no_mangle]
pub unsafe extern "C" fn rust_hv_domain_destroy(d: *mut b::domain) -> c_int {
    let (Ok(hv), Some(d)) = (hv(), NonNull::new(d)) else {
        return 0;
    };
    // SAFETY: The caller holds a reference (this function's contract).
    let d = unsafe { Domain::hold(d) };
    ret(hv.domain_destroy(&Xen, &d).map(|()| 0)) as c_int
}

/// One bounded step of giving freed sshm backing back to the heap (from
/// the release tasklet, idle vCPU context, no lock held): non-zero if more
/// is left and the tasklet must run again.
#[no_mangle]
pub extern "C" fn rust_hv_sshm_release_step() -> c_int {
    match hv() {
        Ok(hv) => c_int::from(hv.sshm.release_step(&Xen)),
        Err(_) => 0,
    }
}

/// Soft reset hook (`domain_soft_reset()`, the domain paused for
/// shutdown): one bounded step; `-ERESTART` asks to be called again
/// (`XEN_DOMCTL_soft_reset_cont`).
///
/// # Safety
///
/// `d` points to a domain the caller holds a reference on.
#[no_mangle]
pub unsafe extern "C" fn rust_hv_domain_soft_reset(d: *mut b::domain) -> c_int {
    let (Ok(hv), Some(d)) = (hv(), NonNull::new(d)) else {
        return 0;
    };
    // SAFETY: The caller holds a reference (this function's contract).
    let d = unsafe { Domain::hold(d) };
    ret(hv.domain_soft_reset(&Xen, &d).map(|()| 0)) as c_int
}

// The header and the definitions above must agree: bindgen's declarations of
// the Rust-implemented functions are checked against them here.
const _: [unsafe extern "C" fn(*const b::rust_hv_limits) -> c_int; 2] = [b::rust_hv_init, rust_hv_init];
const _: [unsafe extern "C" fn(u16, *mut c_void) -> c_long; 2] = [b::rust_hv_sshm_domctl, rust_hv_sshm_domctl];
const _: [unsafe extern "C" fn(c_uint, c_ulong, c_ulong, c_ulong, c_ulong) -> c_long; 2] =
    [b::rust_hv_v4v_op, rust_hv_v4v_op];
const _: [unsafe extern "C" fn(*mut b::domain) -> c_int; 2] = [b::rust_hv_domain_destroy, rust_hv_domain_destroy];
const _: [unsafe extern "C" fn(*mut b::domain) -> c_int; 2] = [b::rust_hv_domain_soft_reset, rust_hv_domain_soft_reset];
const _: [unsafe extern "C" fn() -> c_int; 2] = [b::rust_hv_sshm_release_step, rust_hv_sshm_release_step];

/// The heap: Xen's `xmalloc`/`xfree`. Failure is a null pointer, which the
/// logic sees through `try_reserve` as `-ENOMEM`.
struct XenHeap;

// SAFETY: `_xmalloc` returns memory aligned to the requested alignment (it
// supports any power of two up to a page, and `Layout` alignments here are
// small), or NULL; `xfree` releases exactly what `_xmalloc` returned.
unsafe impl GlobalAlloc for XenHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: Plain allocation call.
        unsafe { b::rust_hv_xmalloc(layout.size() as _, layout.align() as _) }.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above (GlobalAlloc contract).
        unsafe { b::rust_hv_xfree(ptr.cast()) }
    }
}

#[global_allocator]
static HEAP: XenHeap = XenHeap;

/// A fixed buffer for formatting a panic message without allocating.
struct MsgBuf {
    buf: [u8; 256],
    len: usize,
}

impl Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A Rust panic is a hypervisor bug: it goes to Xen's `panic()` with the
/// message and location. Nothing unwinds (panic=abort).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut m = MsgBuf { buf: [0; 256], len: 0 };
    let _ = write!(m, "{}", info.message());
    if let Some(l) = info.location() {
        let _ = write!(m, " at {}:{}", l.file(), l.line());
    }
    // SAFETY: `m.buf` is valid for `m.len` bytes.
    unsafe { b::rust_hv_panic(m.buf.as_ptr().cast(), m.len as _) };
    // `panic()` does not return; bindgen does not carry `_Noreturn` over.
    loop {
        core::hint::spin_loop();
    }
}
