//! The public ABI of the static shared memory (sshm) domctl and of the V4V
//! hypercall, as Xen installs it in `include/public/`.
//!
//! This crate is the single source of truth: the C headers under
//! `include/public/` mirror these types, both sides pin their layout
//! (`static_assertions` here, `_Static_assert` there), and
//! `tests/bindgen_layout.rs` runs bindgen over the C headers to prove the two
//! agree field by field.
//!
//! Every input struct has a `validate` method. That is what the hypervisor
//! calls before it looks at anything else: non-zero padding, reserved fields
//! and unknown flags are `-EINVAL`, so that they can be given a meaning later.

#![no_std]
#![deny(unsafe_code)]

pub mod bytes;
pub mod domctl;
pub mod errno;
pub mod ring;
pub mod sshm;
pub mod types;
pub mod v4v;

pub use errno::Errno;
pub use types::{DomId, Gfn, Mfn, PageCount};

/// Size of a page on x86 (`PAGE_SIZE`).
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Order of a 2 MiB superpage in 4 KiB pages (`PAGE_ORDER_2M`).
pub const PAGE_ORDER_2M: u32 = 9;
/// Order of a 1 GiB superpage in 4 KiB pages (`PAGE_ORDER_1G`).
pub const PAGE_ORDER_1G: u32 = 18;

/// Hypercall numbers used by this project (`xen/include/public/xen.h`).
pub mod hypercall {
    /// `__HYPERVISOR_memory_op`.
    pub const MEMORY_OP: u32 = 12;
    /// `__HYPERVISOR_console_io`.
    pub const CONSOLE_IO: u32 = 18;
    /// `__HYPERVISOR_grant_table_op`.
    pub const GRANT_TABLE_OP: u32 = 20;
    /// `__HYPERVISOR_sched_op`.
    pub const SCHED_OP: u32 = 29;
    /// `__HYPERVISOR_event_channel_op`.
    pub const EVENT_CHANNEL_OP: u32 = 32;
    /// `__HYPERVISOR_domctl`.
    pub const DOMCTL: u32 = 36;
    /// `__HYPERVISOR_argo_op` (the upstream peer of V4V, for benchmarks).
    pub const ARGO_OP: u32 = 39;
    /// `__HYPERVISOR_v4v_op`: the new hypercall. 43 is free in Xen 4.17.
    pub const V4V_OP: u32 = 43;
    /// Hypercalls take at most this many arguments; a sixth is unusable for
    /// 32-bit guests.
    pub const ARGS_MAX: usize = 5;
}

/// `VIRQ_V4V`: the virtual interrupt raised when a ring gets data or space.
pub const VIRQ_V4V: u32 = 14;
