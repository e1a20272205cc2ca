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
    // One pass over the volume: per vertebra label, its count, sums and bounding box.
    struct Acc {
        n: usize,
        ijk: [f64; 3],
        hu: f64,
        p: f64,
        lo: [usize; 3],
        hi: [usize; 3],
    }
    let mut acc: Vec<Option<Acc>> = Level::ALL.iter().map(|_| None).collect();
    // Label -> index in Level::ALL (a table: this runs once per voxel).
    let mut slot = vec![usize::MAX; 65536];
    for (k, l) in Level::ALL.iter().enumerate() {
        slot[l.verse_label() as usize] = k;
    }
    for (i, &x) in labels.data().iter().enumerate() {
        let k = slot[x as usize];
        if k == usize::MAX {
            continue;
        }
        let ijk = [i % nx, (i / nx) % ny, i / (nx * ny)];
        let a = acc[k].get_or_insert(Acc {
            n: 0,
            ijk: [0.0; 3],
            hu: 0.0,
            p: 0.0,
            lo: ijk,
            hi: ijk,
        });
        a.n += 1;
        for (d, &c) in ijk.iter().enumerate() {
            a.ijk[d] += c as f64;
            a.lo[d] = a.lo[d].min(c);
            a.hi[d] = a.hi[d].max(c);
        }
        a.hu += ct.data()[i] as f64;
        a.p += probs.map_or(1.0, |q| q.data()[i] as f64);
    }
    let mut levels: Vec<LevelReport> = Vec::new();
    for (level, a) in Level::ALL.into_iter().zip(acc) {
        let Some(a) = a else { continue };
        let l = level.verse_label();
        let nf = a.n as f64;
        // Its parts, within its bounding box only.
        let dims = [0, 1, 2].map(|d| a.hi[d] - a.lo[d] + 1);
        let mut mask = Vec::with_capacity(dims.iter().product());
        for k in a.lo[2]..=a.hi[2] {
            for j in a.lo[1]..=a.hi[1] {
                for i in a.lo[0]..=a.hi[0] {
                    mask.push(labels.get(i, j, k) == l);
                }
            }
        }
        let (_, sizes) = crate::ops::components_3d(&mask, dims);
        let biggest = sizes.iter().copied().max().unwrap_or(0);
        let mut warnings = Vec::new();
        if (a.n - biggest) as f64 > PIECES_MAX * nf {
            warnings.push(format!(
                "in {} pieces ({:.0} % outside the largest): part of a neighbour may carry its label",
                sizes.len() - 1,
                100.0 * (a.n - biggest) as f64 / nf
            ));
        }
        let c = g.index_to_world(nalgebra::Vector3::from(a.ijk) / nf);
        levels.push(LevelReport {
            level,
            label: l,
            voxels: a.n,
            volume_mm3: nf * g.voxel_volume(),
            mean_hu: a.hu / nf,
            centroid: [c.x, c.y, c.z],
            confidence: a.p / nf,
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
