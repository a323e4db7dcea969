//! From Xen's PVH entry to Rust: the ELF note, the 32-bit entry, identity
//! page tables (guest virtual == guest physical, as hypercall pointer
//! arguments assume), long mode, an IDT whose #GP/#PF handlers can resume a
//! probing store, and the probe itself.

use core::arch::global_asm;

/// Bytes of guest physical memory identity-mapped with 2 MiB pages: 16 GiB,
/// which covers dom0's RAM and the high free gfns where shared memory is
/// attached.
pub const IDENTITY_MAP_BYTES: u64 = 16 << 30;

// The PVH entry point (`XEN_ELFNOTE_PHYS32_ENTRY`, type 18): Xen enters it
// in 32-bit protected mode, paging off, flat segments, %ebx = the physical
// address of `struct hvm_start_info`.
//
// Page tables: one PML4 entry -> one PDPT with 16 entries -> 16 page
// directories of 512 2 MiB pages each (16 GiB, PS|RW|P). The tables live in
// .bss, which Xen's ELF loader zeroes.
global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .long pvh_start32
    .popsection

    .pushsection .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cld
    movl %ebx, start_info_paddr

    movl $boot_pd, %edi
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, (%edi,%ecx,8)
    movl %ecx, %eax
    shrl $11, %eax
    movl %eax, 4(%edi,%ecx,8)
    incl %ecx
    cmpl $(16 * 512), %ecx
    jne 1b

    movl $boot_pdpt, %edi
    movl $boot_pd + 3, %eax
    xorl %ecx, %ecx
2:  movl %eax, (%edi,%ecx,8)
    addl $4096, %eax
    incl %ecx
    cmpl $16, %ecx
    jne 2b

    movl $boot_pdpt + 3, %eax
    movl %eax, boot_pml4

    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $3f

    .code64
3:  movl $0x10, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $boot_stack_top, %rsp
    movl start_info_paddr, %edi
    call kernel_main
4:  hlt
    jmp 4b

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt
    .popsection

    .pushsection .bss.boot, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 16 * 4096
boot_stack:
    .skip 64 * 1024
boot_stack_top:
    .balign 8
start_info_paddr:
    .skip 8
    .popsection
"#,
    options(att_syntax)
);

// Exception entry. #GP and #PF (which push an error code) and every other
// vector go to `exc_common`. If `fault_recover` is set, the faulting
// instruction is abandoned: the saved %rip becomes `fault_recover`, the
// vector is recorded in `fault_vector`, and the handler returns there.
// Otherwise `exception_fatal` reports and powers off.
global_asm!(
    r#"
    .pushsection .text, "ax"
    .global exc_gp
exc_gp:
    pushq $13
    jmp exc_common
    .global exc_pf
exc_pf:
    pushq $14
    jmp exc_common
    .global exc_other
exc_other:
    pushq $0
    pushq $255
exc_common:
    pushq %rax
    movq fault_recover(%rip), %rax
    testq %rax, %rax
    jz 1f
    movq %rax, 24(%rsp)
    movq 8(%rsp), %rax
    movq %rax, fault_vector(%rip)
    movq $0, fault_recover(%rip)
    popq %rax
    addq $16, %rsp
    iretq
1:  movq 8(%rsp), %rdi
    movq 16(%rsp), %rsi
    movq 24(%rsp), %rdx
    movq %cr2, %rcx
    andq $-16, %rsp
    call exception_fatal
2:  hlt
    jmp 2b

    .global probe_store
probe_store:
    leaq 1f(%rip), %rax
    movq %rax, fault_recover(%rip)
    movq $0, fault_vector(%rip)
    movq %rsi, (%rdi)
    movq $0, fault_recover(%rip)
    xorl %eax, %eax
    ret
1:  movq fault_vector(%rip), %rax
    incq %rax
    ret
    .popsection

    .pushsection .bss.fault, "aw", @nobits
    .balign 8
fault_recover:
    .skip 8
fault_vector:
    .skip 8
    .popsection
"#,
    options(att_syntax)
);

extern "C" {
    fn exc_gp();
    fn exc_pf();
    fn exc_other();
    /// Stores `value` at `addr`; returns 0, or the exception vector plus one
    /// if the store faulted (the handler resumed after it).
    fn probe_store(addr: u64, value: u64) -> u64;
}

/// An IDT gate: 64-bit interrupt gate, selector 0x08, present, DPL 0.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Gate([u32; 4]);

impl Gate {
    const EMPTY: Gate = Gate([0; 4]);

    fn new(handler: unsafe extern "C" fn()) -> Gate {
        let a = handler as usize as u64;
        Gate([(0x08 << 16) | (a as u32 & 0xffff), (a as u32 & 0xffff_0000) | 0x8e00, (a >> 32) as u32, 0])
    }
}

/// The IDT: vectors 0-31 only.
static mut IDT: [Gate; 32] = [Gate::EMPTY; 32];

/// Installs the exception handlers.
pub fn install_idt() {
    let mut idt = [Gate::EMPTY; 32];
    for (v, g) in idt.iter_mut().enumerate() {
        *g = match v {
            13 => Gate::new(exc_gp),
            14 => Gate::new(exc_pf),
            _ => Gate::new(exc_other),
        };
    }
    // SAFETY: single CPU, interrupts off, called once before any exception
    // can be taken: nothing else reads or writes IDT concurrently. `lidt`
    // gets a pointer to the static, which lives forever.
    unsafe {
        let p = core::ptr::addr_of_mut!(IDT);
        p.write(idt);
        let desc: [u16; 5] = {
            let base = p as u64;
            [(32 * 16 - 1) as u16, base as u16, (base >> 16) as u16, (base >> 32) as u16, (base >> 48) as u16]
        };
        core::arch::asm!("lidt [{}]", in(reg) &desc, options(readonly, nostack, preserves_flags));
    }
}

/// Stores `value` at guest physical `addr` and reports a fault's vector.
pub fn probe(addr: u64, value: u64) -> Option<u8> {
    debug_assert!(addr < IDENTITY_MAP_BYTES && addr.is_multiple_of(8));
    // SAFETY: `addr` is identity-mapped and 8-aligned; the caller knows it
    // is a page it may write (or one whose store the hypervisor refuses).
    // `probe_store` only clobbers %rax (its return value), per the SysV ABI
    // it follows.
    let r = unsafe { probe_store(addr, value) };
    if r == 0 {
        None
    } else {
        Some((r - 1) as u8)
    }
}
