//! Guest memory as the helpers marshal through it: ABI structs (the
//! `wire!` types of `hypercall_abi`) and little-endian words at guest
//! physical addresses.
//!
//! Each helper comes twice: the plain one for guests whose memory cannot
//! fault (the test kernel's identity map; a fault is a bug there and the
//! simulator guest panics), and a `try_` one that returns the `-EFAULT` a
//! hole gives, for tests that point arguments at holes on purpose.

use hypercall_abi::bytes::Wire;
use hypercall_abi::Errno;

use crate::Guest;

/// The largest ABI struct the helpers marshal (`Wire::SIZE`), checked at
/// each use.
pub const WIRE_BYTES_MAX: usize = 128;

/// Writes `v` at `gpa`.
pub fn put<G: Guest + ?Sized, T: Wire>(g: &mut G, gpa: u64, v: &T) {
    let mut b = [0u8; WIRE_BYTES_MAX];
    assert!(T::SIZE <= WIRE_BYTES_MAX, "ABI struct larger than WIRE_BYTES_MAX");
    v.write(&mut b[..T::SIZE]);
    g.write(gpa, &b[..T::SIZE]);
}

/// Writes `v` at `gpa`, or the error of writing it.
pub fn try_put<G: Guest + ?Sized, T: Wire>(g: &mut G, gpa: u64, v: &T) -> Result<(), Errno> {
    let mut b = [0u8; WIRE_BYTES_MAX];
    assert!(T::SIZE <= WIRE_BYTES_MAX, "ABI struct larger than WIRE_BYTES_MAX");
    v.write(&mut b[..T::SIZE]);
    g.try_write(gpa, &b[..T::SIZE])
}

/// Reads a `T` at `gpa`.
pub fn get<G: Guest + ?Sized, T: Wire>(g: &mut G, gpa: u64) -> T {
    let mut b = [0u8; WIRE_BYTES_MAX];
    assert!(T::SIZE <= WIRE_BYTES_MAX, "ABI struct larger than WIRE_BYTES_MAX");
    g.read(gpa, &mut b[..T::SIZE]);
    T::read(&b[..T::SIZE])
}

/// Reads a little-endian `u64` at `gpa`.
pub fn read_u64<G: Guest + ?Sized>(g: &mut G, gpa: u64) -> u64 {
    let mut b = [0u8; 8];
    g.read(gpa, &mut b);
    u64::from_le_bytes(b)
}

/// Reads a little-endian `u64` at `gpa`, or the error of reading it.
pub fn try_read_u64<G: Guest + ?Sized>(g: &mut G, gpa: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    g.try_read(gpa, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Writes a little-endian `u64` at `gpa`.
pub fn write_u64<G: Guest + ?Sized>(g: &mut G, gpa: u64, v: u64) {
    g.write(gpa, &v.to_le_bytes());
}

/// Writes a little-endian `u64` at `gpa`, or the error of writing it.
pub fn try_write_u64<G: Guest + ?Sized>(g: &mut G, gpa: u64, v: u64) -> Result<(), Errno> {
    g.try_write(gpa, &v.to_le_bytes())
}

/// Writes a gfn list (little-endian `u64`s, as `xen_pfn_t` arrays are) at
/// `gpa`.
pub fn put_gfns<G: Guest + ?Sized>(g: &mut G, gpa: u64, gfns: &[u64]) {
    for (i, &gfn) in gfns.iter().enumerate() {
        write_u64(g, gpa + 8 * i as u64, gfn);
    }
}
