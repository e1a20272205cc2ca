//! What the commands that read a scan are given: the output folder as the last positional
//! argument or `--out`, and an input that is a CT, a label map, or a `spinetwin segment`
//! output folder.

use anyhow::{bail, Context, Result};
use spinetwin_anatomy::Level;
use spinetwin_imaging::{nifti, Volume};
use std::path::{Path, PathBuf};

/// The inputs and the output folder of `spinetwin CMD INPUT... [OUT] [--out OUT]`: with
/// `--out` every positional argument is input; without it the last one is the output
/// folder (`spinetwin segment CT OUT`, the interface), which must not be an existing
/// file (a DICOM file list given without `--out` would otherwise lose its last file).
pub fn split_out(
    cmd: &str,
    mut inputs: Vec<PathBuf>,
    out: Option<PathBuf>,
) -> Result<(Vec<PathBuf>, PathBuf)> {
    if let Some(out) = out {
        return Ok((inputs, out));
    }
    if inputs.len() < 2 {
        bail!(
            "no output folder given: spinetwin {cmd} INPUT OUT (or --out OUT); the output folder must be new or empty"
        );
    }
    let out = inputs.pop().expect("two or more");
    if out.is_file() {
        bail!(
            "{}: the last argument is taken as the output folder, but it is an existing file; give the output folder last, or with --out when every argument is input",
            out.display()
        );
    }
    Ok((inputs, out))
}

/// File name of the label map in a `spinetwin segment` output folder.
pub const SEGMENT_LABELS: &str = "labels.nii.gz";
/// File name of the report in a `spinetwin segment` output folder.
pub const SEGMENT_REPORT: &str = "segment.json";

/// What a command was given to read the spine from.
pub enum Source {
    /// A CT (DICOM folder or files, or a NIfTI file).
    Ct(Vec<PathBuf>),
    /// A label map without its CT: a NIfTI label map (VerSe numbering) or the labels of a
    /// `spinetwin segment` output folder.
    Labels {
        /// The label map read.
        labels: Volume<u16>,
        /// Where it came from, for messages and the twin's source (a path).
        from: PathBuf,
    },
}

/// Most distinct values a label map may hold (VerSe vertebrae, discs, canal and a few more
/// structures); a CT holds hundreds.
const MAX_LABEL_VALUES: usize = 64;

/// Sorts the inputs into a CT or a label map: one folder holding [`SEGMENT_LABELS`] and
/// [`SEGMENT_REPORT`] is a segmentation; one NIfTI file whose voxels are all whole numbers
/// from 0 to 65535, of at most 64 distinct values, one of them a VerSe
/// vertebra label, is a label map; anything else is read as a CT.
pub fn classify(inputs: &[PathBuf]) -> Result<Source> {
    let [one] = inputs else {
        return Ok(Source::Ct(inputs.to_vec()));
    };
    if one.is_dir() {
        let labels = one.join(SEGMENT_LABELS);
        if labels.is_file() && one.join(SEGMENT_REPORT).is_file() {
            let vol = nifti::read_labels(&labels)
                .with_context(|| format!("{}: reading the segmentation", labels.display()))?;
            return Ok(Source::Labels {
                labels: vol,
                from: labels,
            });
        }
        return Ok(Source::Ct(inputs.to_vec()));
    }
    if !is_nifti(one) {
        return Ok(Source::Ct(inputs.to_vec()));
    }
    // A CT given as one NIfTI file is read twice, here and then as the CT (a second or two
    // for a large scan, against a build's tens of seconds); label maps stored as floats are
    // common enough not to go by the header's data type.
    let vol = nifti::read_volume(one)?;
    let mut seen = vec![false; 65536];
    let mut distinct = 0;
    for &x in vol.data() {
        if !(x.is_finite() && (0.0..=65535.0).contains(&x) && x.fract() == 0.0) {
            return Ok(Source::Ct(inputs.to_vec()));
        }
        if !std::mem::replace(&mut seen[x as usize], true) {
            distinct += 1;
            if distinct > MAX_LABEL_VALUES {
                return Ok(Source::Ct(inputs.to_vec()));
            }
        }
    }
    if !(0..=u16::MAX).any(|l| seen[l as usize] && Level::from_verse_label(l).is_some()) {
        return Ok(Source::Ct(inputs.to_vec()));
    }
    Ok(Source::Labels {
        labels: vol.map(|x| x as u16),
        from: one.clone(),
    })
}

fn is_nifti(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

/// HU the stand-in CT of a label map gives bone; 0 elsewhere. The landmarks read the CT for
/// the endplates' sub-voxel tilt (a step between 0 and this reads as the label's own
/// surface) and the trabecular HU (set unknown afterwards, see [`forget_hu`]).
const STAND_IN_BONE_HU: f32 = 1000.0;

/// A stand-in CT for landmarks from a label map alone: vertebrae and sacrum at
/// [`STAND_IN_BONE_HU`], everything else 0.
pub fn stand_in_ct(labels: &Volume<u16>) -> Volume<f32> {
    labels.map(|l| {
        if Level::from_verse_label(l).is_some() {
            STAND_IN_BONE_HU
        } else {
            0.0
        }
    })
}

/// Marks every vertebra's trabecular HU unknown: landmarks of a stand-in CT carry its
/// constant, not a density.
pub fn forget_hu(lm: &mut spinetwin_segment::landmarks::SpineLandmarks) {
    for v in &mut lm.vertebrae {
        v.trabecular_hu = f64::NAN;
    }
}

/// The warning every result built from a label map alone carries (no path: it goes into
/// the outputs, and a file name may identify the patient).
pub fn labels_only_warning() -> String {
    "the input is a label map without its CT: no bone density (trabecular HU unknown: no \
     bone-density screen, screws rigidly anchored, a fusion mass needs its modulus given, no \
     full fidelity), and the endplates' tilt comes from the label surface alone (up to about \
     1 deg at 1 mm voxels); give the CT with --labels for these"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_positional_is_the_output_folder_without_out() {
        let p = |s: &str| PathBuf::from(s);
        let (i, o) = split_out("segment", vec![p("ct.nii.gz"), p("out")], None).unwrap();
        assert_eq!((i, o), (vec![p("ct.nii.gz")], p("out")));
        let (i, o) = split_out("segment", vec![p("a.dcm"), p("b.dcm")], Some(p("given"))).unwrap();
        assert_eq!((i, o), (vec![p("a.dcm"), p("b.dcm")], p("given")));
        let e = split_out("build", vec![p("ct.nii.gz")], None).unwrap_err();
        assert!(e.to_string().contains("spinetwin build INPUT OUT"), "{e}");
        // An existing file last is not taken as the output.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.dcm");
        std::fs::write(&f, b"x").unwrap();
        let e = split_out("segment", vec![p("a.dcm"), f.clone()], None).unwrap_err();
        assert!(e.to_string().contains("existing file"), "{e}");
    }
}
