//! Talking to Xen: the hypercall page, the console, shutdown.
//!
//! The console is `HYPERVISOR_console_io` (dom0 smoke mode) or, in guest
//! mode, Xen's debug port 0xE9: a release Xen refuses `console_io` writes
//! from a domU (`-EPERM` without `CONFIG_VERBOSE_DEBUG`), but prints every
//! line an HVM or PVH guest writes to port 0xE9 on its console with a
//! `(dN) ` prefix (`hvm_print_line`, at guest log level debug, so Xen must be
//! booted with `guest_loglvl=all` for the lines to reach the console ring
//! that `xl dmesg` reads).

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use hypercall_abi::hypercall::{CONSOLE_IO, MEMORY_OP, SCHED_OP};
use hypercall_abi::{DomId, PAGE_SIZE};

/// `CONSOLEIO_write`.
const CONSOLEIO_WRITE: u64 = 0;
/// `XENMEM_add_to_physmap`.
const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `SCHEDOP_shutdown`.
const SCHEDOP_SHUTDOWN: u64 = 2;
/// `SHUTDOWN_poweroff`.
const SHUTDOWN_POWEROFF: u32 = 0;
/// Each hypercall's stub in the hypercall page is this many bytes.
const STUB_BYTES: u64 = 32;
/// Xen's CPUID leaves are at one of these bases (0x100 apart, after any
/// Viridian leaves).
const CPUID_BASE_FIRST: u32 = 0x4000_0000;
const CPUID_BASE_LAST: u32 = 0x4001_0000;

/// The page Xen fills with hypercall stubs.
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE as usize]);

static mut HYPERCALL_PAGE: Page = Page([0; PAGE_SIZE as usize]);
/// The MSR through which the hypercall page was installed; 0 before.
static HYPERCALL_MSR: AtomicU32 = AtomicU32::new(0);
/// Whether the console is port 0xE9 (guest mode) rather than `console_io`.
static DEBUGCON: AtomicBool = AtomicBool::new(false);
/// `XEN_HVM_DEBUGCONS_IOPORT`.
const DEBUGCON_PORT: u16 = 0xe9;

/// Opens (`open`) or closes a counting window of the insn-prof QEMU plugin
/// (`make bench-xen-profile`, `make bench-xen-2dom-profile`,
/// tests/bench/profile/insn-prof.c): the plugin
/// recognises these two multi-byte NOPs by their displacement. One
/// instruction each, a NOP without the plugin.
pub fn prof_mark(open: bool) {
    if open {
        // SAFETY: a NOP (`nopl 0x50524f01(%rax)`): no memory access.
        unsafe { asm!(".byte 0x0f, 0x1f, 0x80, 0x01, 0x4f, 0x52, 0x50", options(nostack, nomem, preserves_flags)) };
    } else {
        // SAFETY: a NOP (`nopl 0x50524f02(%rax)`): no memory access.
        unsafe { asm!(".byte 0x0f, 0x1f, 0x80, 0x02, 0x4f, 0x52, 0x50", options(nostack, nomem, preserves_flags)) };
    }
}

/// Sends every later console line to port 0xE9 instead of `console_io`.
pub fn use_debugcon() {
    DEBUGCON.store(true, Ordering::Relaxed);
}

/// Whether the console is port 0xE9 (the kernel is in guest mode).
pub fn debugcon() -> bool {
    DEBUGCON.load(Ordering::Relaxed)
}

/// Writes bytes to port 0xE9, one `outb` each (Xen emulates every one).
fn debugcon_write(b: &[u8]) {
    for &c in b {
        // SAFETY: port 0xE9 is Xen's debug console for HVM/PVH guests; an
        // `outb` to it has no effect besides Xen buffering the character.
        unsafe { asm!("out dx, al", in("dx") DEBUGCON_PORT, in("al") c, options(nomem, nostack, preserves_flags)) };
    }
}

/// `cpuid(leaf)` as (eax, ebx, ecx, edx).
fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: cpuid has no side effects. LLVM reserves %rbx, so it is saved
    // in a scratch register around the instruction.
    unsafe {
        asm!(
            "mov {t:r}, rbx",
            "cpuid",
            "xchg {t:r}, rbx",
            t = out(reg) b,
            inout("eax") leaf => a,
            inout("ecx") 0 => c,
            out("edx") d,
            options(nostack, preserves_flags)
        );
    }
    (a, b, c, d)
}

/// The hypercall instruction, through Xen's hypercall page.
///
/// # Invariants
///
/// Once constructed, `HYPERCALL_PAGE` holds Xen's stubs.
#[derive(Clone, Copy)]
pub struct Hypercalls {
    msr: u32,
}

impl Hypercalls {
    /// Finds Xen's CPUID leaves and has Xen write the hypercall page.
    pub fn init() -> Hypercalls {
        let base = (CPUID_BASE_FIRST..=CPUID_BASE_LAST)
            .step_by(0x100)
            .find(|&b| {
                let (_, x, y, z) = cpuid(b);
                (x, y, z) == (0x566e_6558, 0x65584d4d, 0x4d4d566e) // "XenVMMXenVMM"
            })
            .unwrap_or(CPUID_BASE_FIRST);
        let (_, msr, _, _) = cpuid(base + 2);
        let page = core::ptr::addr_of!(HYPERCALL_PAGE) as u64;
        // SAFETY: writing Xen's hypercall MSR with the guest physical
        // address of a page we own makes Xen fill it with stubs; nothing
        // else uses the page.
        unsafe {
            asm!("wrmsr", in("ecx") msr, in("eax") page as u32, in("edx") (page >> 32) as u32, options(nostack));
        }
        HYPERCALL_MSR.store(msr, Ordering::Relaxed);
        Hypercalls { msr }
    }

    /// The installed hypercall page, installing it if needed (the panic
    /// path may come before `init`).
    pub fn get() -> Hypercalls {
        match HYPERCALL_MSR.load(Ordering::Relaxed) {
            0 => Self::init(),
            msr => Hypercalls { msr },
        }
    }

    /// The MSR the page was installed through.
    pub fn msr(&self) -> u32 {
        self.msr
    }

    /// Hypercall `nr` with five arguments.
    pub fn call(&self, nr: u32, a: [u64; 5]) -> i64 {
        assert!(u64::from(nr) < PAGE_SIZE / STUB_BYTES, "hypercall number beyond the page");
        let stub = core::ptr::addr_of!(HYPERCALL_PAGE) as u64 + u64::from(nr) * STUB_BYTES;
        let ret: i64;
        // SAFETY: by the type invariant the stub is Xen's `mov $nr, %eax;
        // vmmcall/vmcall; ret`. The 64-bit hypercall ABI takes arguments in
        // rdi, rsi, rdx, r10, r8 and returns in rax; a debug Xen clobbers the
        // argument registers, so all are declared clobbered. Pointer
        // arguments are guest physical addresses of identity-mapped memory
        // the caller prepared.
        unsafe {
            asm!(
                "call {stub}",
                stub = in(reg) stub,
                inlateout("rdi") a[0] => _,
                inlateout("rsi") a[1] => _,
                inlateout("rdx") a[2] => _,
                inlateout("r10") a[3] => _,
                inlateout("r8") a[4] => _,
                lateout("rax") ret,
                lateout("rcx") _,
                lateout("r9") _,
                lateout("r11") _,
            );
        }
        ret
    }

    /// Writes bytes to Xen's console (port 0xE9 in guest mode).
    pub fn console_write(&self, b: &[u8]) {
        if debugcon() {
            debugcon_write(b);
        } else if !b.is_empty() {
            self.call(CONSOLE_IO, [CONSOLEIO_WRITE, b.len() as u64, b.as_ptr() as u64, 0, 0]);
        }
    }

    /// `XENMEM_add_to_physmap` for this domain: Xen maps page `idx` of
    /// `space` (a `XENMAPSPACE_*`) at `gfn`, replacing what was there.
    /// Returns Xen's result (0 or a negative errno).
    pub fn add_to_physmap(&self, space: u32, idx: u64, gfn: u64) -> i64 {
        // struct xen_add_to_physmap: domid, size, space, idx, gpfn.
        let mut a = [0u8; 24];
        a[0..2].copy_from_slice(&DomId::SELF_.0.to_le_bytes());
        a[4..8].copy_from_slice(&space.to_le_bytes());
        a[8..16].copy_from_slice(&idx.to_le_bytes());
        a[16..24].copy_from_slice(&gfn.to_le_bytes());
        self.call(MEMORY_OP, [XENMEM_ADD_TO_PHYSMAP, a.as_ptr() as u64, 0, 0, 0])
    }

    /// `SCHEDOP_shutdown(SHUTDOWN_poweroff)`: as dom0, this halts the
    /// machine; a domU is shut down (and kept or destroyed as its
    /// `on_poweroff` says).
    pub fn poweroff(&self) -> ! {
        let reason = SHUTDOWN_POWEROFF;
        loop {
            self.call(SCHED_OP, [SCHEDOP_SHUTDOWN, core::ptr::addr_of!(reason) as u64, 0, 0, 0]);
        }
    }
}

/// A line-buffered writer to Xen's console (one hypercall per line).
pub struct Console<'a> {
    hc: &'a Hypercalls,
    buf: [u8; 160],
    len: usize,
}

impl<'a> Console<'a> {
    /// An empty line.
    pub fn new(hc: &'a Hypercalls) -> Self {
        Console { hc, buf: [0; 160], len: 0 }
    }

    fn flush(&mut self) {
        self.hc.console_write(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for Console<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

impl Drop for Console<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
