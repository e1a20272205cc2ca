//! spinetwin-model: the patient's lumbar spine twin.
//!
//! Turns segmentation landmarks and the CT into a mechanical model (rigid or deformable
//! vertebrae, FE discs, ligaments as tension-only springs, facet joints as contact), builds
//! the FE engine's model for each load case and reads the results back in anatomical terms
//! (intervertebral rotations, intradiscal pressure, facet forces).
//!
//! Spine knowledge lives here; the FE engine (`spinetwin-fem`) stays generic.

pub mod anchorage;
pub mod bone;
pub mod bone_fe;
pub mod calibrate;
pub mod disc;
pub mod error;
pub mod export;
pub mod facet;
pub mod full;
pub mod ligament;
pub mod loadcase;
pub mod material;
pub mod resection;
pub mod summary;
pub mod twin;
pub mod validate;

pub use error::ModelError;
