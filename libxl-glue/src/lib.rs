//! Runs the static_shm toolstack glue, the C that goes into Xen's tools
//! (`tools/`: libxenctrl wrappers, the xl config parser, the libxl create
//! step, `xl sshm-list`), against the simulator, through a fake of the
//! libxenctrl call path ([`ffi`]).

#![deny(unsafe_code)]

pub mod ffi;

pub use ffi::{parse, DomainConfig, Fault, Hypervisor, Shared, Toolstack};
