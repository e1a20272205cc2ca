//! The Newton-Raphson driver (to be implemented).

use super::{Model, NlResult, SolveOptions};
use crate::FemError;

/// Solves `model` step by step. Returns `Ok` with `converged == false` and a `failure`
/// message when a step could not be brought to convergence; `Err` only for invalid input.
pub fn solve(model: &Model, options: &SolveOptions) -> Result<NlResult, FemError> {
    let _ = (model, options);
    Err(FemError::Solver(
        "the nonlinear solver is not implemented yet".into(),
    ))
}
