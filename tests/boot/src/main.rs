//! The boot test kernel: a PVH dom0 that runs the shared scenario list
//! against the real Xen it boots on, prints a PASS/FAIL line for each and a
//! summary through `HYPERVISOR_console_io`, and powers off.
//!
//! The same binary is a test guest when its command line
//! (`hvm_start_info.cmdline_paddr`) has a `v4v=` (or `e2e=`) key: see
//! [`guest`]; or a side of the two-domain benchmark with `bench2=`: see
//! [`bench2`]. Without one (no command line, as `make smoke` boots it) it is
//! the dom0 above, unchanged.
//!
//! Memory model: the whole guest physical space the kernel touches is
//! identity-mapped (see [`boot`]), so a guest physical address is also a
//! pointer, and hypercall pointer arguments are plain addresses.

#![no_std]
#![no_main]

mod argo;
#[cfg(feature = "bench")]
mod bench;
mod bench2;
mod boot;
mod cmdline;
mod evtchn;
mod grant;
mod guest;
mod vchan;
mod xen;

use core::fmt::{self, Write};

use hypercall_abi::{DomId, Gfn, PAGE_SIZE};
use scenarios::{Guest, WriteOutcome, SCRATCH_PAGES};

/// `hvm_start_info.magic` (`XEN_HVM_START_MAGIC_VALUE`).
const HVM_START_MAGIC: u32 = 0x336e_c578;
/// Offset of `cmdline_paddr` in `struct hvm_start_info`.
const HVM_START_CMDLINE_PADDR: u64 = 24;
/// First of the unpopulated gfns the scenarios attach shared memory at:
/// 8 GiB, above the RAM of the QEMU machine the harness boots and inside the
/// identity map.
const FREE_GFN: Gfn = Gfn(8 << (30 - 12));

/// The scenarios' scratch RAM.
#[repr(C, align(4096))]
struct Scratch([u8; (SCRATCH_PAGES * PAGE_SIZE) as usize]);

static mut SCRATCH: Scratch = Scratch([0; (SCRATCH_PAGES * PAGE_SIZE) as usize]);

/// Dom0 on real Xen, as a [`Guest`].
struct Dom0 {
    hc: xen::Hypercalls,
}

/// Checks that `[gpa, gpa + len)` is inside the identity map.
fn mapped(gpa: u64, len: usize) -> bool {
    gpa.checked_add(len as u64).is_some_and(|end| end <= boot::IDENTITY_MAP_BYTES)
}

impl Guest for Dom0 {
    fn hypercall(&mut self, nr: u32, args: [u64; 5]) -> i64 {
        self.hc.call(nr, args)
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) {
        assert!(mapped(gpa, buf.len()), "read outside the identity map");
        // SAFETY: the range is identity-mapped (checked above). It is
        // scratch RAM, a V4V ring or a shared memory attachment the scenario
        // made: memory Xen may write concurrently, hence volatile bytes.
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: see above.
            *b = unsafe { core::ptr::read_volatile((gpa as usize + i) as *const u8) };
        }
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) {
        assert!(mapped(gpa, buf.len()), "write outside the identity map");
        // SAFETY: as in `read`; none of these ranges overlaps the kernel's
        // own code, stack or statics other than `SCRATCH`, which Rust code
        // only reaches through its address.
        for (i, b) in buf.iter().enumerate() {
            // SAFETY: see above.
            unsafe { core::ptr::write_volatile((gpa as usize + i) as *mut u8, *b) };
        }
    }

    fn probe_write(&mut self, gpa: u64, value: u64) -> WriteOutcome {
        assert!(mapped(gpa, 8), "probe outside the identity map");
        match boot::probe(gpa, value) {
            None => WriteOutcome::Completed,
            Some(v) => WriteOutcome::Faulted(v),
        }
    }

    fn domid(&self) -> DomId {
        DomId(0)
    }

    fn scratch(&self) -> u64 {
        core::ptr::addr_of!(SCRATCH) as u64
    }

    fn free_gfn(&self) -> Gfn {
        FREE_GFN
    }

    fn print(&mut self, args: fmt::Arguments<'_>) {
        let mut c = xen::Console::new(&self.hc);
        // The console writer never fails.
        let _ = c.write_fmt(args);
        let _ = c.write_str("\n");
    }
}

/// A copy of the command line (Xen's copy is in memory the kernel does not
/// otherwise reserve).
static mut CMDLINE: [u8; cmdline::CMDLINE_BYTES_MAX] = [0; cmdline::CMDLINE_BYTES_MAX];

/// The command line from `hvm_start_info`, empty if there is none (or it is
/// not UTF-8, or outside the identity map).
fn read_cmdline(start_info: u64, magic: u32) -> &'static str {
    if magic != HVM_START_MAGIC {
        return "";
    }
    // SAFETY: Xen put `hvm_start_info` at this identity-mapped address; the
    // field is inside it.
    let paddr = unsafe { core::ptr::read_volatile((start_info + HVM_START_CMDLINE_PADDR) as *const u64) };
    if paddr == 0 || !mapped(paddr, cmdline::CMDLINE_BYTES_MAX) {
        return "";
    }
    // SAFETY: called once, before anything else uses CMDLINE; afterwards
    // it is only read, through the returned shared reference.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(CMDLINE) };
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: inside the identity map (checked above); a NUL-terminated
        // string Xen's domain builder wrote.
        let b = unsafe { core::ptr::read_volatile((paddr as usize + len) as *const u8) };
        if b == 0 {
            break;
        }
        buf[len] = b;
        len += 1;
    }
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// Called by the boot code in long mode with `%rdi` = the physical address
/// of `struct hvm_start_info`.
#[no_mangle]
extern "C" fn kernel_main(start_info: u64) -> ! {
    boot::install_idt();
    let hc = xen::Hypercalls::init();
    // SAFETY: Xen put `hvm_start_info` at this identity-mapped address.
    let magic = unsafe { core::ptr::read_volatile(start_info as *const u32) };
    let cmdline = cmdline::Cmdline::new(read_cmdline(start_info, magic));
    if cmdline.get("v4v").is_some() || cmdline.get("e2e").is_some() {
        guest::run(hc, cmdline);
    }
    if cmdline.get("bench2").is_some() {
        bench2::run(hc, cmdline);
    }
    let mut dom0 = Dom0 { hc };
    dom0.print(format_args!("smoke: PVH dom0 test kernel up, hypercall page via MSR {:#x}", dom0.hc.msr()));
    if magic != HVM_START_MAGIC {
        dom0.print(format_args!("smoke: bad hvm_start_info magic {magic:#x}"));
    }
    // Bench mode (`make bench-xen`): timings instead of the scenarios;
    // `bench=profile` on the command line (`make bench-xen-profile`) runs
    // the profile's counting windows instead.
    #[cfg(feature = "bench")]
    {
        bench::run(&dom0.hc, cmdline.get("bench") == Some("profile"));
        dom0.print(format_args!("smoke: bench done, powering off"));
        dom0.hc.poweroff()
    }
    #[cfg(not(feature = "bench"))]
    let s = scenarios::run_all(&mut dom0);
    #[cfg(not(feature = "bench"))]
    {
        dom0.print(format_args!("smoke: done ({} scenarios), powering off", s.passed + s.failed));
        dom0.hc.poweroff()
    }
}

/// How a fatal line starts: `smoke: FATAL` (dom0 smoke mode),
/// `bench2: FATAL` (a benchmark side) or `v4v-guest: FATAL` (guest mode),
/// so each mode's log grep finds it.
fn fatal_prefix() -> &'static str {
    if bench2::active() {
        "bench2: FATAL"
    } else if xen::debugcon() {
        "v4v-guest: FATAL"
    } else {
        "smoke: FATAL"
    }
}

/// Reports an exception nobody expected and powers off.
#[no_mangle]
extern "C" fn exception_fatal(vector: u64, error: u64, rip: u64, cr2: u64) -> ! {
    let hc = xen::Hypercalls::get();
    let mut c = xen::Console::new(&hc);
    let _ = writeln!(c, "{} exception {vector} error {error:#x} rip {rip:#x} cr2 {cr2:#x}", fatal_prefix());
    drop(c);
    hc.poweroff()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let hc = xen::Hypercalls::get();
    let mut c = xen::Console::new(&hc);
    if xen::debugcon() {
        let _ = writeln!(c, "{} panic: {info}", fatal_prefix());
    } else {
        let _ = writeln!(c, "smoke: PANIC {info}");
    }
    drop(c);
    hc.poweroff()
}
