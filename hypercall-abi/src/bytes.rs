//! Safe, explicit (de)serialisation of ABI structs from guest-memory bytes.
//!
//! The hypervisor copies guest structs into byte buffers and reads them field
//! by field; no transmutes, so this crate needs no `unsafe`.

/// Reads native-endian integers at byte offsets of a buffer.
pub struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    /// The `u16` at `off`.
    pub fn u16(&self, off: usize) -> u16 {
        let mut x = [0u8; 2];
        x.copy_from_slice(&self.0[off..off + 2]);
        u16::from_ne_bytes(x)
    }
    /// The `u32` at `off`.
    pub fn u32(&self, off: usize) -> u32 {
        let mut x = [0u8; 4];
        x.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(x)
    }
    /// The `u64` at `off`.
    pub fn u64(&self, off: usize) -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&self.0[off..off + 8]);
        u64::from_ne_bytes(x)
    }
    /// `N` bytes at `off`.
    pub fn array<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut x = [0u8; N];
        x.copy_from_slice(&self.0[off..off + N]);
        x
    }
}

/// Writes native-endian integers at byte offsets of a buffer.
pub struct Writer<'a>(pub &'a mut [u8]);

impl Writer<'_> {
    /// Writes `v` at `off`.
    pub fn u16(&mut self, off: usize, v: u16) {
        self.0[off..off + 2].copy_from_slice(&v.to_ne_bytes());
    }
    /// Writes `v` at `off`.
    pub fn u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    /// Writes `v` at `off`.
    pub fn u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    /// Writes `v` at `off`.
    pub fn bytes(&mut self, off: usize, v: &[u8]) {
        self.0[off..off + v.len()].copy_from_slice(v);
    }
}

/// Byte (de)serialisation of an ABI struct, field by field at its pinned
/// offsets (`offset_of!`), so that it cannot drift from the layout that
/// `static_assertions` and the bindgen test pin.
pub trait Wire: Sized {
    /// Size in bytes.
    const SIZE: usize;
    /// Writes `self` into `b[..SIZE]`.
    fn write(&self, b: &mut [u8]);
    /// Reads from `b[..SIZE]`.
    fn read(b: &[u8]) -> Self;
}

/// Implements [`Wire`] for a `#[repr(C)]` struct from its field list, and
/// gives it `SIZE`, `to_bytes()` and `from_bytes()`; each field's kind is
/// `u16`, `i16`, `u32`, `i32`, `u64`, `bytes` (a byte array), `u16s`/`u64s`
/// (arrays of integers) or `nested` (a struct that is itself [`Wire`]).
/// Every ABI struct, ours and the Xen ones the simulator stands in for,
/// goes through it: none is serialised at literal offsets by hand.
#[macro_export]
#[doc(hidden)]
macro_rules! wire {
    ($t:ident { $($f:ident : $k:ident),* $(,)? }) => {
        impl $crate::bytes::Wire for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn write(&self, b: &mut [u8]) {
                // Structs made only of nested structs write through `w.0`.
                #[allow(unused_mut)]
                let mut w = $crate::bytes::Writer(b);
                $($crate::wire!(@w w, core::mem::offset_of!($t, $f), self.$f, $k);)*
            }
            fn read(b: &[u8]) -> Self {
                let r = $crate::bytes::Reader(b);
                $t { $($f: $crate::wire!(@r r, core::mem::offset_of!($t, $f), $k),)* }
            }
        }
        impl $t {
            /// Size in guest memory.
            pub const SIZE: usize = core::mem::size_of::<$t>();

            /// The bytes as in guest memory.
            pub fn to_bytes(&self) -> [u8; Self::SIZE] {
                let mut b = [0u8; Self::SIZE];
                $crate::bytes::Wire::write(self, &mut b);
                b
            }

            /// Reads one from guest-memory bytes (at least `SIZE` of them).
            pub fn from_bytes(b: &[u8]) -> Self {
                $crate::bytes::Wire::read(b)
            }
        }
    };
    (@w $w:ident, $o:expr, $v:expr, u16) => { $w.u16($o, $v) };
    (@w $w:ident, $o:expr, $v:expr, i16) => { $w.u16($o, u16::from_ne_bytes($v.to_ne_bytes())) };
    (@w $w:ident, $o:expr, $v:expr, u32) => { $w.u32($o, $v) };
    (@w $w:ident, $o:expr, $v:expr, i32) => { $w.u32($o, u32::from_ne_bytes($v.to_ne_bytes())) };
    (@w $w:ident, $o:expr, $v:expr, u64) => { $w.u64($o, $v) };
    (@w $w:ident, $o:expr, $v:expr, bytes) => { $w.bytes($o, &$v) };
    (@w $w:ident, $o:expr, $v:expr, u16s) => {
        for (i, x) in $v.iter().enumerate() { $w.u16($o + 2 * i, *x) }
    };
    (@w $w:ident, $o:expr, $v:expr, u64s) => {
        for (i, x) in $v.iter().enumerate() { $w.u64($o + 8 * i, *x) }
    };
    (@w $w:ident, $o:expr, $v:expr, nested) => { $crate::bytes::Wire::write(&$v, &mut $w.0[$o..]) };
    (@r $r:ident, $o:expr, u16) => { $r.u16($o) };
    (@r $r:ident, $o:expr, i16) => { i16::from_ne_bytes($r.u16($o).to_ne_bytes()) };
    (@r $r:ident, $o:expr, u32) => { $r.u32($o) };
    (@r $r:ident, $o:expr, i32) => { i32::from_ne_bytes($r.u32($o).to_ne_bytes()) };
    (@r $r:ident, $o:expr, u64) => { $r.u64($o) };
    (@r $r:ident, $o:expr, bytes) => { $r.array($o) };
    (@r $r:ident, $o:expr, u16s) => { core::array::from_fn(|i| $r.u16($o + 2 * i)) };
    (@r $r:ident, $o:expr, u64s) => { core::array::from_fn(|i| $r.u64($o + 8 * i)) };
    (@r $r:ident, $o:expr, nested) => { $crate::bytes::Wire::read(&$r.0[$o..]) };
}
