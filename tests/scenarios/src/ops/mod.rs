//! The hypercalls as a guest issues them: argument structs written into
//! its memory at the addresses the caller gives, the hypercall, the OUT
//! fields read back. One builder per op, for every world (the test kernel,
//! the simulator tests, the benchmarks).

use hypercall_abi::Errno;

pub mod sshm;
pub mod v4v;

/// A hypercall return value as a `Result`: the errno of a negative one.
pub fn ret(r: i64) -> Result<i64, Errno> {
    match Errno::from_ret(r) {
        Some(e) => Err(e),
        None => Ok(r),
    }
}
