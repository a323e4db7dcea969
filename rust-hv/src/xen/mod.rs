//! [`Platform`](crate::Platform) inside Xen, over the C shim
//! (`xen/common/rust-hv/shim.c`), and the `extern "C"` entry points Xen
//! calls.
//!
//! The three layers: [`bindings`] is what bindgen makes of the shim header
//! and nothing else uses it directly; [`platform`] wraps it safely; the logic
//! (`sshm`, `v4v`) sees only the [`Platform`](crate::Platform) trait. Every
//! `unsafe` of the crate is in this module. [`lockdep`] keeps, in debug
//! builds, which of the crate's locks each CPU holds, and checks their order
//! ([`crate::locking`]).

#[allow(non_camel_case_types, non_upper_case_globals, dead_code, clippy::undocumented_unsafe_blocks, missing_docs)]
pub mod bindings {
    //! bindgen's view of `shim.h` (allowlisted to `rust_hv_*`).
    include!(concat!(env!("OUT_DIR"), "/shim.rs"));
}

pub mod ffi;
pub mod lockdep;
pub mod platform;

pub use platform::{Domain, SpinLock, Xen};
