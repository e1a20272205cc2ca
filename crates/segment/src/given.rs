//! What the user tells the segmentation (issue 3's manual override): the levels a scan shows
//! ([`rename_levels`], `spinetwin segment --levels L1-L5`), or a corrected label map fed
//! back in ([`from_label_map`], `spinetwin segment --labels`). Both give an ordinary
//! [`Segmentation`] whose level names rest on the user ([`LevelBasis::Given`]).

use crate::{LevelBasis, LevelReport, SegmentError, Segmentation};
use spinetwin_anatomy::{Level, LevelRange, DISC_LABEL_OFFSET};
use spinetwin_imaging::Volume;

/// Largest share of a vertebra's voxels outside its largest 6-connected part before it is
/// reported in pieces.
const PIECES_MAX: f64 = 0.05;

/// A report per vertebra label of `labels` (cranial to caudal by level) with `ct`'s HU, the
/// confidence the mean of `probs` over its voxels (1 without), and the checks a label map
/// made elsewhere needs: a vertebra in pieces, a level whose centroid is not below the one
/// above it (confidence capped at 0.3); with scan warnings for levels missing between two
/// present ones.
pub(crate) fn levels_of(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
    probs: Option<&Volume<f32>>,
) -> (Vec<LevelReport>, Vec<String>) {
    let g = labels.grid().clone();
    let [nx, ny, _] = g.dims;
    let mut levels: Vec<LevelReport> = Vec::new();
    for level in Level::ALL {
        let l = level.verse_label();
        let mask: Vec<bool> = labels.data().iter().map(|&x| x == l).collect();
        let n = mask.iter().filter(|&&m| m).count();
        if n == 0 {
            continue;
        }
        let mut c = nalgebra::Vector3::zeros();
        let (mut hu, mut p) = (0.0, 0.0);
        for (i, _) in mask.iter().enumerate().filter(|(_, &m)| m) {
            c += g.index_to_world(nalgebra::Vector3::new(
                (i % nx) as f64,
                ((i / nx) % ny) as f64,
                (i / (nx * ny)) as f64,
            ));
            hu += ct.data()[i] as f64;
            p += probs.map_or(1.0, |q| q.data()[i] as f64);
        }
        let nf = n as f64;
        let (_, sizes) = crate::ops::components_3d(&mask, g.dims);
        let biggest = sizes.iter().copied().max().unwrap_or(0);
        let mut warnings = Vec::new();
        if (n - biggest) as f64 > PIECES_MAX * nf {
            warnings.push(format!(
                "in {} pieces ({:.0} % outside the largest): part of a neighbour may carry its label",
                sizes.len() - 1,
                100.0 * (n - biggest) as f64 / nf
            ));
        }
        levels.push(LevelReport {
            level,
            label: l,
            voxels: n,
            volume_mm3: nf * g.voxel_volume(),
            mean_hu: hu / nf,
            centroid: [c.x / nf, c.y / nf, c.z / nf],
            confidence: p / nf,
            rib_bearing: None,
            warnings,
        });
    }
    for i in 1..levels.len() {
        if levels[i].centroid[2] >= levels[i - 1].centroid[2] {
            let msg = format!(
                "lies above {} although it is the level below it: the levels are out of order",
                levels[i - 1].level
            );
            levels[i].warnings.push(msg);
            levels[i].confidence = levels[i].confidence.min(0.3);
        }
    }
    let mut warnings = Vec::new();
    for w in levels.windows(2) {
        let (a, b) = (w[0].level, w[1].level);
        let missing: Vec<&str> = Level::ALL
            .iter()
            .filter(|&&x| x > a && x < b && x != Level::L6)
            .map(|l| l.name())
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "no {} between {a} and {b}: a level missed or merged",
                missing.join(", ")
            ));
        }
    }
    if levels.is_empty() {
        warnings.push("no vertebra is labelled".into());
    }
    (levels, warnings)
}

/// The [`Segmentation`] of a label map given by the user (VerSe numbering, on `ct`'s grid):
/// the label map as it is, a report per vertebra with `ct`'s HU (confidence 1: the user's),
/// the checks of a label map made elsewhere. Errors when the grids differ.
pub fn from_label_map(ct: &Volume<f32>, labels: Volume<u16>) -> Result<Segmentation, SegmentError> {
    if labels.dims() != ct.dims() {
        return Err(SegmentError::Levels(format!(
            "the label map has {:?} voxels, the CT {:?}: give a label map on the CT's grid",
            labels.dims(),
            ct.dims()
        )));
    }
    let (levels, mut warnings) = levels_of(ct, &labels, None);
    warnings.insert(
        0,
        "labels given by the user (a label map fed back in), not segmented by spinetwin".into(),
    );
    Ok(Segmentation {
        sacrum_found: levels.iter().any(|l| l.level == Level::S1),
        labels,
        levels,
        bone_threshold_hu: f32::NAN,
        level_basis: LevelBasis::Given,
        warnings,
        timings: Vec::new(),
    })
}

/// Renames the vertebrae of `seg`, cranial to caudal, to the levels of `range` (the user's
/// reading of the scan overrides the automatic naming), in the label map too (vertebrae and
/// the discs below them); their confidence becomes 1 and the level warnings of the
/// automatic naming are kept, marked as such. Errors when `range` names another number of
/// vertebrae than the segmentation holds.
pub fn rename_levels(seg: &mut Segmentation, range: &LevelRange) -> Result<(), SegmentError> {
    let want = range.levels();
    if want.len() != seg.levels.len() {
        let found: Vec<&str> = seg.levels.iter().map(|l| l.level.name()).collect();
        return Err(SegmentError::Levels(format!(
            "the scan shows {} vertebrae ({}), --levels {range} names {}: give a range of {} levels",
            found.len(),
            found.join(" "),
            want.len(),
            found.len()
        )));
    }
    let before: Vec<Level> = seg.levels.iter().map(|l| l.level).collect();
    if before == want {
        seg.level_basis = LevelBasis::Given;
        for l in &mut seg.levels {
            l.confidence = 1.0;
        }
        seg.warnings.insert(
            0,
            format!("levels {range} as given (--levels), the same as counted"),
        );
        return Ok(());
    }
    // Old label -> new label, vertebrae and the discs below them.
    let mut map: Vec<u16> = (0..=u16::MAX).collect();
    for (old, new) in before.iter().zip(want) {
        map[old.verse_label() as usize] = new.verse_label();
        map[(DISC_LABEL_OFFSET + old.verse_label()) as usize] =
            DISC_LABEL_OFFSET + new.verse_label();
    }
    for x in seg.labels.data_mut() {
        *x = map[*x as usize];
    }
    let basis = seg.level_basis;
    for (l, &new) in seg.levels.iter_mut().zip(want) {
        l.level = new;
        l.label = new.verse_label();
        l.confidence = 1.0;
        for w in &mut l.warnings {
            *w = format!("(automatic naming) {w}");
        }
    }
    seg.sacrum_found = want.contains(&Level::S1);
    seg.level_basis = LevelBasis::Given;
    let names: Vec<&str> = before.iter().map(|l| l.name()).collect();
    seg.warnings.insert(
        0,
        format!(
            "levels {range} as given (--levels), not as counted: spinetwin named them {} (from {basis:?})",
            names.join(" ")
        ),
    );
    Ok(())
}
