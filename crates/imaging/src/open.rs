//! One entry point for "a scan": a NIfTI file, or DICOM given as a folder, a file or a list
//! of files. Later layers (segmentation, model building) take their input through here.

use crate::dicom::{self, LoadOptions, SeriesSummary};
use crate::error::{ImagingError, Result};
use crate::nifti::{self, NiftiSummary};
use crate::volume::{Modality, Volume};
use std::path::{Path, PathBuf};

/// Where a loaded scan came from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A DICOM series.
    Dicom(Box<SeriesSummary>),
    /// A NIfTI file.
    Nifti(Box<NiftiSummary>),
}

/// A scan in patient LPS space, ready for the pipeline.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Voxel values: HU for CT, arbitrary units otherwise.
    pub volume: Volume<f32>,
    /// CT, MR or other.
    pub modality: Modality,
    /// The file(s) it came from.
    pub source: Source,
    /// Things the user should know (resampling done, modality guessed, ...).
    pub warnings: Vec<String>,
}

/// Options for [`open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Which DICOM series to load when the input holds several.
    pub series_uid: Option<String>,
    /// DICOM loading policies (gantry tilt, gaps).
    pub dicom: LoadOptions,
}

/// True for `.nii` and `.nii.gz` file names.
pub fn is_nifti_path(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

/// Loads one scan. A single `.nii`/`.nii.gz` path is read as NIfTI; anything else as DICOM.
pub fn open(paths: &[PathBuf], opts: &OpenOptions) -> Result<LoadedImage> {
    match paths {
        [] => Err(ImagingError::Invalid("no input path given".into())),
        [p] if is_nifti_path(p) => {
            if opts.series_uid.is_some() {
                return Err(ImagingError::input(
                    p,
                    "a DICOM series was chosen, but this is a NIfTI file (one image, no series)",
                    "leave out --series for NIfTI input",
                ));
            }
            let summary = nifti::read_header_summary(p)?;
            let volume = nifti::read_volume(p)?;
            let mut warnings = Vec::new();
            let modality = guess_nifti_modality(&volume);
            match &modality {
                Modality::Ct => warnings.push(
                    "NIfTI carries no modality; the values look like Hounsfield units, so the scan is treated as CT"
                        .to_string(),
                ),
                _ => warnings.push(
                    "NIfTI carries no modality and the values do not look like Hounsfield units; the scan is not treated as CT"
                        .to_string(),
                ),
            }
            Ok(LoadedImage {
                volume,
                modality,
                source: Source::Nifti(Box::new(summary)),
                warnings,
            })
        }
        _ => {
            if let Some(n) = paths.iter().find(|p| is_nifti_path(p)) {
                return Err(ImagingError::input(
                    n,
                    "a NIfTI file was given together with other inputs",
                    "give a NIfTI file on its own, or only DICOM files and folders",
                ));
            }
            let loaded = dicom::load(paths, opts.series_uid.as_deref(), &opts.dicom)?;
            Ok(LoadedImage {
                modality: loaded.summary.modality.clone(),
                volume: loaded.volume,
                source: Source::Dicom(Box::new(loaded.summary)),
                warnings: loaded.warnings,
            })
        }
    }
}

/// A NIfTI has no modality field. Values look like CT when air sits near -1000 HU and bone
/// above +300 HU: at least 0.5% of voxels in [-1100, -900] and a maximum above 300.
pub fn guess_nifti_modality(vol: &Volume<f32>) -> Modality {
    let n = vol.data().len().max(1);
    let air = vol
        .data()
        .iter()
        .filter(|&&v| (-1100.0..=-900.0).contains(&v))
        .count();
    let (_, max) = vol.min_max();
    if air as f64 / n as f64 >= 0.005 && max > 300.0 {
        Modality::Ct
    } else {
        Modality::Other("unknown".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;
    use nalgebra::Vector3;

    #[test]
    fn nifti_names_are_recognised() {
        assert!(is_nifti_path(Path::new("/a/ct.nii.gz")));
        assert!(is_nifti_path(Path::new("CT.NII")));
        assert!(!is_nifti_path(Path::new("/a/dicom")));
        assert!(!is_nifti_path(Path::new("/a/IM0001.dcm")));
    }

    #[test]
    fn ct_like_values_are_guessed_as_ct() {
        let g = Grid::axis_aligned([10, 10, 10], [1.0; 3], Vector3::zeros()).unwrap();
        let ct = Volume::from_fn(g.clone(), |i, _, _| match i {
            0 => -1000.0f32,
            9 => 1200.0,
            _ => 40.0,
        });
        assert_eq!(guess_nifti_modality(&ct), Modality::Ct);
        let mr = Volume::from_fn(g, |i, _, _| (i * 100) as f32);
        assert_ne!(guess_nifti_modality(&mr), Modality::Ct);
    }
}
