//! Simulator (skeleton; see issue 3).
