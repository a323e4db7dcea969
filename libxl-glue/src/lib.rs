//! Runs the static_shm toolstack glue, the C that goes into Xen's tools
//! (`tools/`: libxenctrl wrappers, the xl config parser, the libxl create
//! step, `xl sshm-list`), against the simulator, through a fake of the
//! libxenctrl call path ([`ffi`]).

#![deny(unsafe_code)]

pub mod ffi;
mod sim;
pub mod xenstore;

pub use ffi::{parse, DomainConfig, Fault, Hypervisor, Shared, Toolstack};
pub use xenstore::Xenstore;

/// The strings of the `static_shm = [ ... ]` list of an xl config file:
/// enough of xl's config syntax for the shipped examples (one list, `#`
/// comments, double-quoted items without escapes).
pub fn static_shm_items(config: &str) -> Vec<String> {
    let text: String = config.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let Some(start) = text.find("static_shm") else { return Vec::new() };
    let rest = &text[start..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else { return Vec::new() };
    rest[open + 1..close].split('"').skip(1).step_by(2).map(str::to_string).collect()
}
