//! Guest-side V4V ring reader (no_std): consumes messages from a ring the
//! guest registered and advances `rx_ptr`. Used by the simulator's tests and
//! by the boot test kernel.
//!
//! Ring memory is reached through [`RingMemory`], so the same reader works on
//! a byte slice, on simulator guest memory and on a bare-metal mapping. The
//! reader trusts nothing in the ring beyond what it can check: it keeps its
//! own `rx_ptr` and ring length, reads `tx_ptr` once per call, and refuses
//! (with [`RingError::Corrupt`]) a `tx_ptr` or message length that would make
//! it read outside the ring or past the data Xen published.

use crate::v4v::{
    message_bytes, MsgHeader, Wire, RING_HEADER_BYTES, RING_LEN_MAX, RING_LEN_MIN, RING_MAGIC, SLOT_BYTES,
};

const HDR_LEN: usize = 16;
const HDR_RX: usize = 20;
const HDR_TX: usize = 24;
const HDR_FLAGS: usize = 28;

/// Why a ring operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The ring memory could not be accessed.
    Fault,
    /// The ring's contents are inconsistent (a bad `tx_ptr`, or a message
    /// longer than the data published). Nothing was consumed.
    Corrupt,
    /// The ring length given is not a valid V4V ring length.
    BadLength,
    /// The next message needs a buffer of `needed` bytes. Nothing was
    /// consumed.
    BufferTooSmall {
        /// The message's payload length.
        needed: usize,
    },
}

/// Byte access to a ring: offset 0 is the start of the 64-byte ring header.
pub trait RingMemory {
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError>;
    /// Writes `buf` at `offset`.
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError>;
}

impl RingMemory for [u8] {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        let end = offset.checked_add(buf.len()).ok_or(RingError::Fault)?;
        buf.copy_from_slice(self.get(offset..end).ok_or(RingError::Fault)?);
        Ok(())
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        let end = offset.checked_add(buf.len()).ok_or(RingError::Fault)?;
        self.get_mut(offset..end).ok_or(RingError::Fault)?.copy_from_slice(buf);
        Ok(())
    }
}

impl<M: RingMemory + ?Sized> RingMemory for &mut M {
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
        (**self).write(offset, buf)
    }
}

/// A message taken from the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Its header (length, type, the source Xen stamped).
    pub header: MsgHeader,
}

/// Whether `len` is a valid ring data length.
pub const fn valid_len(len: u32) -> bool {
    len >= RING_LEN_MIN && len <= RING_LEN_MAX && len.is_multiple_of(SLOT_BYTES)
}

/// Prepares ring memory before `OP_REGISTER_RING`: magic, length, empty
/// pointers, the given `RING_F_*` flags, zeroed reserved bytes.
pub fn prepare<M: RingMemory + ?Sized>(mem: &mut M, len: u32, flags: u32) -> Result<(), RingError> {
    if !valid_len(len) {
        return Err(RingError::BadLength);
    }
    mem.write(0, &[0u8; RING_HEADER_BYTES as usize])?;
    mem.write(0, &RING_MAGIC.to_ne_bytes())?;
    mem.write(HDR_LEN, &len.to_ne_bytes())?;
    mem.write(HDR_FLAGS, &flags.to_ne_bytes())
}

/// Reads messages from one ring.
pub struct RingReader<M> {
    mem: M,
    /// Data bytes, as the guest registered them (never re-read from the
    /// ring).
    len: u32,
    /// The guest's own read pointer; the ring's copy is only written.
    rx: u32,
}

impl<M: RingMemory> RingReader<M> {
    /// A reader for a ring of `len` data bytes, starting at its current
    /// `rx_ptr` (which must be valid: `Corrupt` otherwise).
    pub fn new(mem: M, len: u32) -> Result<Self, RingError> {
        if !valid_len(len) {
            return Err(RingError::BadLength);
        }
        let rx = read_u32(&mem, HDR_RX)?;
        if rx >= len || !rx.is_multiple_of(SLOT_BYTES) {
            return Err(RingError::Corrupt);
        }
        Ok(RingReader { mem, len, rx })
    }

    /// The ring memory.
    pub fn memory(&mut self) -> &mut M {
        &mut self.mem
    }

    /// The reader's `rx_ptr`.
    pub fn rx_ptr(&self) -> u32 {
        self.rx
    }

    /// Sets the receiver-owned `RING_F_*` flags.
    pub fn set_flags(&mut self, flags: u32) -> Result<(), RingError> {
        self.mem.write(HDR_FLAGS, &flags.to_ne_bytes())
    }

    /// Bytes published and not yet consumed (headers included).
    pub fn pending_bytes(&self) -> Result<u32, RingError> {
        let tx = read_u32(&self.mem, HDR_TX)?;
        if tx >= self.len || !tx.is_multiple_of(SLOT_BYTES) {
            return Err(RingError::Corrupt);
        }
        Ok(if tx >= self.rx { tx - self.rx } else { self.len - (self.rx - tx) })
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> Result<bool, RingError> {
        Ok(self.pending_bytes()? == 0)
    }

    /// The next message's header, without consuming it.
    pub fn peek(&self) -> Result<Option<MsgHeader>, RingError> {
        let used = self.pending_bytes()?;
        self.header_at(self.rx, used)
    }

    /// The header of the message at `rx` with `used` published bytes from
    /// there on, checked against them.
    fn header_at(&self, rx: u32, used: u32) -> Result<Option<MsgHeader>, RingError> {
        if used == 0 {
            return Ok(None);
        }
        // `rx` is slot-aligned and below `len`: the header's 16 bytes are
        // contiguous.
        let mut b = [0u8; 16];
        self.mem.read(RING_HEADER_BYTES as usize + rx as usize, &mut b)?;
        let h = MsgHeader::read(&b);
        match message_bytes(h.len) {
            Some(n) if n <= used => Ok(Some(h)),
            _ => Err(RingError::Corrupt),
        }
    }

    /// Copies the payload of the message at `rx` (header `h`) into
    /// `buf[..h.len]`.
    fn payload_at(&self, rx: u32, h: &MsgHeader, buf: &mut [u8]) -> Result<(), RingError> {
        let n = h.len as usize;
        if buf.len() < n {
            return Err(RingError::BufferTooSmall { needed: n });
        }
        let off = (rx + SLOT_BYTES) % self.len;
        let first = core::cmp::min(n, (self.len - off) as usize);
        self.mem.read(RING_HEADER_BYTES as usize + off as usize, &mut buf[..first])?;
        if first < n {
            self.mem.read(RING_HEADER_BYTES as usize, &mut buf[first..n])?;
        }
        Ok(())
    }

    /// Takes up to `max` messages in one pass, as a batch of sends left
    /// them: `tx_ptr` is read once, each message's payload is copied into
    /// `buf` and handed to `f` with its header, and `rx_ptr` is written
    /// once at the end, so the space of the whole batch is freed with one
    /// store. Stops early at the end of the published data, or at a
    /// message that is corrupt or larger than `buf`: that is an error only
    /// if it is the first (nothing consumed); otherwise the messages before
    /// it are consumed and the next call reports it. Returns the number of
    /// messages taken (0: the ring is empty).
    pub fn recv_batch(
        &mut self,
        buf: &mut [u8],
        max: usize,
        mut f: impl FnMut(&Received, &[u8]),
    ) -> Result<usize, RingError> {
        let mut used = self.pending_bytes()?;
        let mut rx = self.rx;
        let mut taken = 0;
        while taken < max {
            let step = self.header_at(rx, used).and_then(|h| match h {
                Some(h) => self.payload_at(rx, &h, buf).map(|()| Some(h)),
                None => Ok(None),
            });
            let h = match step {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) if taken == 0 => return Err(e),
                Err(_) => break,
            };
            f(&Received { header: h }, &buf[..h.len as usize]);
            // `header_at` checked that the message fits in `used`.
            let bytes = message_bytes(h.len).ok_or(RingError::Corrupt)?;
            rx = ((rx as u64 + bytes as u64) % self.len as u64) as u32;
            used -= bytes;
            taken += 1;
        }
        if taken > 0 {
            self.rx = rx;
            self.mem.write(HDR_RX, &self.rx.to_ne_bytes())?;
        }
        Ok(taken)
    }

    /// Takes the next message, copying its payload into `buf[..len]`, and
    /// advances `rx_ptr` past it. `Ok(None)` when the ring is empty.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, RingError> {
        let Some(h) = self.peek()? else { return Ok(None) };
        self.payload_at(self.rx, &h, buf)?;
        self.consume(&h)?;
        Ok(Some(Received { header: h }))
    }

    /// Drops the next message unread. `Ok(None)` when the ring is empty.
    pub fn skip(&mut self) -> Result<Option<MsgHeader>, RingError> {
        let Some(h) = self.peek()? else { return Ok(None) };
        self.consume(&h)?;
        Ok(Some(h))
    }

    fn consume(&mut self, h: &MsgHeader) -> Result<(), RingError> {
        // `peek` checked that the message fits in the published data.
        let bytes = message_bytes(h.len).ok_or(RingError::Corrupt)?;
        self.rx = ((self.rx as u64 + bytes as u64) % self.len as u64) as u32;
        self.mem.write(HDR_RX, &self.rx.to_ne_bytes())
    }
}

fn read_u32<M: RingMemory>(mem: &M, off: usize) -> Result<u32, RingError> {
    let mut b = [0u8; 4];
    mem.read(off, &mut b)?;
    Ok(u32::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4v::Addr;

    const LEN: u32 = 128;

    /// Plays Xen: appends a message at `tx` and publishes it.
    fn put(ring: &mut [u8], tx: &mut u32, payload: &[u8], ty: u32) {
        let h = MsgHeader { len: payload.len() as u32, msg_type: ty, source: Addr { port: 9, domain: 3, pad: 0 } };
        let mut hb = [0u8; 16];
        h.write(&mut hb);
        let base = RING_HEADER_BYTES as usize;
        ring[base + *tx as usize..base + *tx as usize + 16].copy_from_slice(&hb);
        for (i, b) in payload.iter().enumerate() {
            ring[base + ((*tx + 16 + i as u32) % LEN) as usize] = *b;
        }
        *tx = (*tx + message_bytes(h.len).unwrap()) % LEN;
        ring[HDR_TX..HDR_TX + 4].copy_from_slice(&tx.to_ne_bytes());
    }

    #[test]
    fn reads_wrapping_messages_in_order() {
        let mut ring = [0u8; 64 + LEN as usize];
        prepare(&mut ring[..], LEN, 0).unwrap();
        let mut tx = 0;
        let mut r = RingReader::new(&mut ring[..], LEN).unwrap();
        assert_eq!(r.recv(&mut [0; 8]), Ok(None));
        put(&mut ring, &mut tx, &[1; 40], 1); // 64 bytes
        put(&mut ring, &mut tx, &[2; 20], 2); // 48 bytes, tx = 112
        let mut r = RingReader::new(&mut ring[..], LEN).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(r.recv(&mut buf[..10]), Err(RingError::BufferTooSmall { needed: 40 }));
        let m = r.recv(&mut buf).unwrap().unwrap();
        assert_eq!((m.header.len, m.header.msg_type, m.header.source.domain), (40, 1, 3));
        assert_eq!(&buf[..40], &[1; 40]);
        put(&mut ring, &mut tx, &[3; 30], 3); // header at 112, payload wraps
        let mut r = RingReader::new(&mut ring[..], LEN).unwrap();
        assert_eq!(r.recv(&mut buf).unwrap().unwrap().header.len, 20);
        let m = r.recv(&mut buf).unwrap().unwrap();
        assert_eq!((m.header.len, &buf[..30]), (30, &[3u8; 30][..]));
        assert_eq!(r.recv(&mut buf), Ok(None));
        assert_eq!(r.rx_ptr(), tx);
    }

    #[test]
    fn batch_read_publishes_rx_once() {
        /// Counts the writes of `rx_ptr`.
        struct Counting<'a>(&'a mut [u8], usize);
        impl RingMemory for Counting<'_> {
            fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RingError> {
                self.0.read(offset, buf)
            }
            fn write(&mut self, offset: usize, buf: &[u8]) -> Result<(), RingError> {
                self.1 += usize::from(offset == HDR_RX);
                self.0.write(offset, buf)
            }
        }
        let mut ring = [0u8; 64 + LEN as usize];
        prepare(&mut ring[..], LEN, 0).unwrap();
        let mut tx = 0;
        put(&mut ring, &mut tx, &[1; 8], 1); // 32 bytes
        put(&mut ring, &mut tx, &[2; 20], 2); // 48 bytes
        put(&mut ring, &mut tx, &[3; 4], 3); // 32 bytes, tx = 112
        let mut r = RingReader::new(Counting(&mut ring[..], 0), LEN).unwrap();
        let mut seen = [0u32; 4];
        let mut n = 0;
        let mut buf = [0u8; 64];
        let got = r.recv_batch(&mut buf, 8, |m, p| {
            assert!(p.iter().all(|&b| b as u32 == m.header.msg_type));
            seen[n] = m.header.msg_type;
            n += 1;
        });
        assert_eq!(got, Ok(3));
        assert_eq!(&seen[..3], &[1, 2, 3]);
        assert_eq!(r.memory().1, 1, "rx_ptr written once for the batch");
        assert_eq!(r.rx_ptr(), 112);
        assert_eq!(r.recv_batch(&mut buf, 8, |_, _| panic!("empty")), Ok(0));
        assert_eq!(r.memory().1, 1, "nothing taken, nothing written");
        // `max` bounds it; a message larger than the buffer stops it after
        // the ones before (consumed), and is the error of the next call.
        put(&mut ring, &mut tx, &[4; 8], 4); // header at 112, wraps
        put(&mut ring, &mut tx, &[5; 40], 5);
        let mut r = RingReader::new(&mut ring[..], LEN).unwrap();
        assert_eq!(r.recv_batch(&mut buf[..16], 1, |m, _| assert_eq!(m.header.msg_type, 4)), Ok(1));
        assert_eq!(r.recv_batch(&mut buf[..16], 8, |_, _| {}), Err(RingError::BufferTooSmall { needed: 40 }));
        assert_eq!(r.recv_batch(&mut buf, 8, |m, _| assert_eq!(m.header.msg_type, 5)), Ok(1));
        assert_eq!(r.rx_ptr(), tx);
    }

    #[test]
    fn refuses_what_xen_could_not_have_written() {
        let mut ring = [0u8; 64 + LEN as usize];
        prepare(&mut ring[..], LEN, 0).unwrap();
        ring[HDR_TX..HDR_TX + 4].copy_from_slice(&(LEN + 16).to_ne_bytes());
        let r = RingReader::new(&mut ring[..], LEN).unwrap();
        assert_eq!(r.peek(), Err(RingError::Corrupt));
        // A header claiming more payload than was published.
        let mut tx = 0;
        put(&mut ring, &mut tx, &[0; 8], 0);
        ring[64..68].copy_from_slice(&1000u32.to_ne_bytes());
        let mut r = RingReader::new(&mut ring[..], LEN).unwrap();
        assert_eq!(r.recv(&mut [0; 2000]), Err(RingError::Corrupt));
        assert_eq!(r.rx_ptr(), 0);
        assert_eq!(RingReader::new(&mut [0u8; 8][..], LEN).err(), Some(RingError::Fault));
        assert_eq!(RingReader::new(&mut ring[..], 17).err(), Some(RingError::BadLength));
    }
}
