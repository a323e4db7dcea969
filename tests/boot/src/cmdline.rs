//! The kernel command line: whitespace-separated `key=value` words, from
//! `hvm_start_info.cmdline_paddr` (xl puts a PVH guest's `extra=` there; a
//! PVH dom0 gets its multiboot module's string).

/// Longest command line read; the rest is ignored (and reported by the
/// caller as a bad command line if it mattered).
pub const CMDLINE_BYTES_MAX: usize = 1024;

/// A parsed command line.
#[derive(Clone, Copy)]
pub struct Cmdline<'a> {
    text: &'a str,
}

/// Why a value is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadValue<'a> {
    /// The key has no `=value`, or the value is not a number in range.
    Number { key: &'a str, value: &'a str },
}

impl<'a> Cmdline<'a> {
    /// A command line over `text`.
    pub fn new(text: &'a str) -> Self {
        Cmdline { text }
    }

    /// The raw text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Every word as `(key, value)`; a word without `=` has an empty value.
    pub fn words(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.text.split_ascii_whitespace().map(|w| w.split_once('=').unwrap_or((w, "")))
    }

    /// The value of the last `key=value` word, if any.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.words().filter(|&(k, _)| k == key).map(|(_, v)| v).last()
    }

    /// The value of `key` as a number (decimal, or hex with `0x`) no greater
    /// than `max`; `default` if the key is absent.
    pub fn number(&self, key: &'a str, default: u64, max: u64) -> Result<u64, BadValue<'a>> {
        let Some(v) = self.get(key) else { return Ok(default) };
        match parse_number(v) {
            Some(n) if n <= max => Ok(n),
            _ => Err(BadValue::Number { key, value: v }),
        }
    }
}

/// `123` or `0x7b`.
pub fn parse_number(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}
