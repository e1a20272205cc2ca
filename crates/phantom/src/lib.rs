//! Synthetic lumbar spine CT phantom (filled in below).
