//! Guest-side V4V ring reader (no_std): consumes messages from a ring the
//! guest registered and advances `rx_ptr`. Used by the simulator's tests and
//! by the boot test kernel.
