//! Errors of the twin builder.

/// Why a part of the twin could not be built. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The landmark geometry cannot be meshed or used (crossing outlines, too few points,
    /// inverted elements).
    #[error("invalid geometry: {0}")]
    InvalidGeometry(String),
    /// A parameter or input value is out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The FE engine rejected the model.
    #[error(transparent)]
    Fem(#[from] spinetwin_fem::FemError),
}
