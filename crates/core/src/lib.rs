//! Conventions every spinetwin layer shares, stated once.
//!
//! * [`units`]: the unit system (mm, N, MPa, s, tonne) and the only place angles change
//!   between radians (inside) and degrees (user-facing edge).
//! * [`atomic`]: outputs are written to a temporary file or folder beside the target and
//!   renamed into place, so a failed run never leaves a half-written result.
//! * [`progress`]: progress bars (indicatif) that hide themselves when stderr is not a
//!   terminal or when the user asked for quiet output.
//!
//! This crate knows nothing about images, meshes or spines; every other crate may use it.

pub mod atomic;
pub mod progress;
pub mod units;
