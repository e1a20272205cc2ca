//! Errors of the twin builder.

/// What went wrong while building or solving a twin. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The anatomy does not allow a model (missing or implausible landmarks).
    #[error("invalid geometry: {0}")]
    InvalidGeometry(String),
    /// Bad parameters or requests.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The FE engine refused the model.
    #[error(transparent)]
    Fem(#[from] spinetwin_fem::FemError),
}
