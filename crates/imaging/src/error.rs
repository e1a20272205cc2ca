//! Errors of the imaging layer. Every error that concerns a file names it, says what is
//! wrong with it, and what the user can do about it.

use std::path::{Path, PathBuf};

/// An imaging error, meant to be shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The input at `path` cannot be used.
    #[error("{}: {what}; {hint}", path.display())]
    Input {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
        /// What the user can do.
        hint: String,
    },
    /// Reading `path` failed at the operating-system level.
    #[error("{}: cannot read ({source}); check that it exists and is readable", path.display())]
    Io {
        /// The file or folder being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An output could not be written.
    #[error(transparent)]
    Write(#[from] spinetwin_core::atomic::WriteError),
    /// An argument does not describe a valid volume or operation (not tied to a file).
    #[error("{0}")]
    Invalid(String),
}

impl ImagingError {
    /// An unusable input file or folder.
    pub fn input(path: impl AsRef<Path>, what: impl Into<String>, hint: impl Into<String>) -> Self {
        ImagingError::Input {
            path: path.as_ref().to_path_buf(),
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// An operating-system error while reading `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        ImagingError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Result with an [`ImagingError`].
pub type Result<T, E = ImagingError> = std::result::Result<T, E>;
