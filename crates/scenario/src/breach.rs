//! Pedicle screw breach check against the label map: does the planned screw stay inside its
//! vertebra's bone, and if not, how far out and towards which side (into the canal?).
//!
//! The thread surface of each planned screw (from 1.5 screw diameters past the entry point
//! to the tip) is sampled every 0.5 mm along the axis and every 15 degrees around it. A sample
//! outside the vertebra's label is a breach; its depth is how far the thread stands out of
//! the bone along its own radius: the distance walked from the sample towards the screw
//! axis to the first voxel of the label (as the breach is measured on a CT, across the
//! cortex it perforates, not to whatever bone lies nearest). Where the whole chord through
//! the axis is out of the bone, the depth is the sample's distance to the nearest voxel of
//! the label, up to [`MAX_DEPTH_MM`]. The screw's grade follows
//! Gertzbein and Robbins 1990 (Spine 15:11):
//! the deepest breach in 2 mm steps, graded A (none) to E (more than 6 mm) as in the
//! navigation literature; A and B are the clinically accepted placements. A breach of half a
//! voxel or less is within the label map's resolution and grades A.

use nalgebra::Vector3;
use serde::Serialize;
use spinetwin_anatomy::CANAL_LABEL;
use spinetwin_imaging::Volume;
use spinetwin_segment::landmarks::SpineLandmarks;

use crate::apply::ScrewPlan;
use crate::scenario::Side;

/// Largest breach depth searched (mm); deeper breaches are reported as this.
pub const MAX_DEPTH_MM: f64 = 10.0;

/// Step of the samples along the screw axis (mm).
const AXIAL_STEP_MM: f64 = 0.5;

/// The thread is checked from this many screw diameters past the entry point: the proximal
/// thread sits in the irregular posterior cortex around the entry (where the transverse
/// process meets the articular process), which is not the pedicle wall the grading is
/// about; on the phantom the auto-sized screws stand out of it by up to 2 mm within 1.2
/// diameters of the entry and nowhere further in.
const START_DIAMETERS: f64 = 1.5;

/// Samples around the thread circumference.
const AROUND: usize = 24;

/// Step of the walk from a breaching sample back into the bone (mm).
const WALK_STEP_MM: f64 = 0.1;

/// The breach check of one planned screw.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScrewBreach {
    /// `L4 left`.
    pub screw: String,
    /// Screw diameter (mm).
    pub diameter_mm: f64,
    /// Share of the thread surface samples outside the vertebra's bone (at the label map's
    /// resolution: standing out by more than half a voxel).
    pub outside_fraction: f64,
    /// Deepest breach (mm): 0 when none.
    pub depth_mm: f64,
    /// Where the deepest breach points, in the vertebra's frame: `medial`, `lateral`,
    /// `cranial` or `caudal`; `None` without a breach.
    pub direction: Option<String>,
    /// Breaching samples of the thread surface inside the spinal canal's label (0 where the
    /// label map has no canal).
    pub canal_samples: usize,
    /// Gertzbein-Robbins grade, `A` (no breach) to `E` (more than 6 mm).
    pub grade: char,
    /// Voxel size of the label map (mm, the largest of the three spacings).
    pub voxel_mm: f64,
}

impl ScrewBreach {
    /// Whether the placement is clinically accepted (grade A or B, a breach under 2 mm).
    pub fn acceptable(&self) -> bool {
        matches!(self.grade, 'A' | 'B')
    }
}

/// The Gertzbein-Robbins grade of a breach `depth_mm` deep.
pub fn grade(depth_mm: f64) -> char {
    match depth_mm {
        d if d <= 0.0 => 'A',
        d if d < 2.0 => 'B',
        d if d < 4.0 => 'C',
        d if d < 6.0 => 'D',
        _ => 'E',
    }
}

/// Checks every planned screw against `labels` (VerSe numbering, the label map the twin
/// was built from) with the vertebra labels and frames of `landmarks`. A screw whose
/// vertebra is not in the landmarks or the label map is an error naming it.
pub fn breach_checks(
    labels: &Volume<u16>,
    landmarks: &SpineLandmarks,
    screws: &[ScrewPlan],
) -> Result<Vec<ScrewBreach>, String> {
    let grid = labels.grid();
    let dims = labels.dims();
    let voxel = grid.spacing.iter().copied().fold(0.0, f64::max);
    let min_spacing = grid.spacing.iter().copied().fold(f64::MAX, f64::min);
    let label_at = |p: Vector3<f64>| -> Option<u16> {
        let ijk = grid.world_to_index(p);
        let idx = [ijk.x, ijk.y, ijk.z].map(|c| c.round());
        if idx.iter().zip(dims).any(|(&c, d)| c < 0.0 || c >= d as f64) {
            return None;
        }
        Some(labels.get(idx[0] as usize, idx[1] as usize, idx[2] as usize))
    };
    let mut out = Vec::new();
    for s in screws {
        let name = format!("{} {}", s.level.name(), s.side.name());
        let v = landmarks
            .vertebra(s.level)
            .ok_or_else(|| format!("screw {name}: {} is not in the landmarks", s.level.name()))?;
        let entry = Vector3::from(s.entry);
        let tip = Vector3::from(s.tip);
        let along = tip - entry;
        let length = along.norm();
        if length <= START_DIAMETERS * s.diameter_mm + AXIAL_STEP_MM {
            return Err(format!(
                "screw {name}: {length:.1} mm in bone is too short to check (the thread is \
                 checked from {:.1} mm past the entry): give a longer screw_length_mm",
                START_DIAMETERS * s.diameter_mm + AXIAL_STEP_MM
            ));
        }
        let axis = along / length;
        // Two unit vectors normal to the axis.
        let helper = if axis.x.abs() < 0.9 {
            Vector3::x()
        } else {
            Vector3::y()
        };
        let e1 = axis.cross(&helper).normalize();
        let e2 = axis.cross(&e1);
        let r = s.diameter_mm / 2.0;
        let frame_x = Vector3::from(v.frame.x);
        let frame_z = Vector3::from(v.frame.z);
        // + towards the screw's own side (lateral).
        let lateral = if s.side == Side::Left { 1.0 } else { -1.0 };
        let (mut n, mut outside, mut canal) = (0usize, 0usize, 0usize);
        let mut deepest: Option<(f64, Vector3<f64>)> = None;
        let mut t = START_DIAMETERS * s.diameter_mm;
        while t <= length + 1e-9 {
            for k in 0..AROUND {
                let a = k as f64 * std::f64::consts::TAU / AROUND as f64;
                let radial = e1 * a.cos() + e2 * a.sin();
                let p = entry + axis * t + radial * r;
                n += 1;
                let here = label_at(p);
                if here == Some(v.label) {
                    continue;
                }
                // Walk in along the radius, across the axis to the far side of the thread.
                let mut depth = None;
                let mut w = 0.0;
                while w <= 2.0 * r {
                    if label_at(p - radial * w) == Some(v.label) {
                        depth = Some(w);
                        break;
                    }
                    w += WALK_STEP_MM;
                }
                // The whole chord is out of the bone: how far this sample lies from it.
                let depth = depth.unwrap_or_else(|| {
                    depth_outside(labels, p, v.label, min_spacing) - voxel / 2.0
                });
                // Within half a voxel the label's own boundary is uncertain.
                if depth <= voxel / 2.0 {
                    continue;
                }
                if here == Some(CANAL_LABEL) {
                    canal += 1;
                }
                outside += 1;
                if deepest.is_none_or(|(d, _)| depth > d) {
                    deepest = Some((depth, radial));
                }
            }
            t += AXIAL_STEP_MM;
        }
        let depth = deepest.map_or(0.0, |(d, _)| d.min(MAX_DEPTH_MM));
        let direction = deepest.map(|(_, radial)| {
            let (x, z) = (radial.dot(&frame_x) * lateral, radial.dot(&frame_z));
            if x.abs() >= z.abs() {
                if x > 0.0 {
                    "lateral"
                } else {
                    "medial"
                }
            } else if z > 0.0 {
                "cranial"
            } else {
                "caudal"
            }
            .to_string()
        });
        out.push(ScrewBreach {
            screw: name,
            diameter_mm: s.diameter_mm,
            outside_fraction: outside as f64 / n.max(1) as f64,
            depth_mm: depth,
            direction,
            canal_samples: canal,
            grade: grade(depth),
            voxel_mm: voxel,
        });
    }
    Ok(out)
}

/// Distance (mm) from `p` to the centre of the nearest voxel labelled `label`, searched in
/// a cube of half-width [`MAX_DEPTH_MM`] plus a voxel around `p` ([`MAX_DEPTH_MM`] plus a
/// voxel when there is none). A brute-force local search, only for the samples of a screw
/// whose whole chord has left the bone: cheaper than a distance transform of the whole label
/// map.
fn depth_outside(labels: &Volume<u16>, p: Vector3<f64>, label: u16, step: f64) -> f64 {
    let grid = labels.grid();
    let dims = labels.dims();
    let reach = MAX_DEPTH_MM + step;
    let c = grid.world_to_index(p);
    let half = [0, 1, 2].map(|a| (reach / grid.spacing[a]).ceil() as i64);
    let centre = [c.x, c.y, c.z].map(|v| v.round() as i64);
    let mut best = reach * reach;
    for k in (centre[2] - half[2]).max(0)..=(centre[2] + half[2]).min(dims[2] as i64 - 1) {
        for j in (centre[1] - half[1]).max(0)..=(centre[1] + half[1]).min(dims[1] as i64 - 1) {
            for i in (centre[0] - half[0]).max(0)..=(centre[0] + half[0]).min(dims[0] as i64 - 1) {
                if labels.get(i as usize, j as usize, k as usize) != label {
                    continue;
                }
                let q = grid.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                best = best.min((q - p).norm_squared());
            }
        }
    }
    best.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_follow_the_two_millimetre_steps() {
        assert_eq!(grade(0.0), 'A');
        assert_eq!(grade(1.99), 'B');
        assert_eq!(grade(2.0), 'C');
        assert_eq!(grade(4.5), 'D');
        assert_eq!(grade(6.0), 'E');
    }
}
