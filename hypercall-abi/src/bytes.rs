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
