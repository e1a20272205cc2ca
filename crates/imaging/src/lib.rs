//! The imaging layer of spinetwin: voxel volumes in patient space and their file formats.
//!
//! * [`Grid`] and [`Volume`]: voxel data with dimensions, spacing (mm), origin and direction
//!   cosines in patient **LPS** (DICOM) coordinates; index <-> world transforms, trilinear
//!   sampling, resampling (also onto oblique grids) and cropping.
//! * [`dicom`]: series discovery and import (dicom-rs), and writing CT series.
//! * [`nifti`]: NIfTI-1 read/write; RAS <-> LPS conversion happens here and only here.
//! * [`deid`]: DICOM de-identification (PS3.15 Annex E basic profile).
//! * [`preview`]: windowed slices as PNG for people to look at.
//!
//! This crate knows nothing about spines or finite elements.

pub mod deid;
pub mod dicom;
mod error;
pub mod nifti;
mod open;
pub mod preview;
pub mod uid;
mod volume;

pub use error::{ImagingError, Result};
pub use open::{guess_nifti_modality, is_nifti_path, open, LoadedImage, OpenOptions, Source};
pub use volume::{Grid, Interpolation, Modality, Volume, Voxel};
