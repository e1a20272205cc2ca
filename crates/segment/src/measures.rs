//! Spinal alignment measures from landmarks: segmental sagittal and coronal angles, lumbar
//! lordosis, sacral slope and the coronal Cobb angle.
//!
//! Angles are those of the endplate normals projected on the sagittal (y-z) and coronal
//! (x-z) planes of the scan (LPS), the same definitions as the phantom truth
//! (`spinetwin-phantom` crate docs): sagittal angle of a normal `atan2(n_y, n_z)` (leaning
//! posteriorly positive), coronal `atan2(n_x, n_z)` (leaning left positive).

use crate::landmarks::{SpineLandmarks, VertebraLandmarks, P3};
use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;

/// Angle between two adjacent vertebrae's facing endplates (degrees).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeasure {
    /// Upper vertebra.
    pub upper: Level,
    /// Lower vertebra.
    pub lower: Level,
    /// Sagittal angle, positive = lordotic (disc taller anteriorly).
    pub sagittal_deg: f64,
    /// Coronal angle, positive = disc taller on the patient's left.
    pub coronal_deg: f64,
}

/// Coronal Cobb angle and its end vertebrae.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CobbMeasure {
    /// Unsigned angle (degrees) between the superior endplate of `upper_end` and the inferior
    /// endplate of `lower_end`.
    pub angle_deg: f64,
    /// Upper end vertebra.
    pub upper_end: Level,
    /// Lower end vertebra.
    pub lower_end: Level,
}

/// Alignment measures of a scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Adjacent labelled pairs, cranial to caudal.
    pub segments: Vec<SegmentMeasure>,
    /// L1 superior endplate to S1 superior endplate, sagittal, positive = lordosis (degrees).
    pub lumbar_lordosis_l1_s1_deg: Option<f64>,
    /// Angle of the S1 superior endplate to the horizontal (axial) plane (degrees).
    pub sacral_slope_deg: Option<f64>,
    /// Largest coronal angle between a lumbar superior endplate and the inferior endplate of
    /// a lower lumbar vertebra.
    pub coronal_cobb: Option<CobbMeasure>,
}

fn sag(n: P3) -> f64 {
    n[1].atan2(n[2])
}
fn cor(n: P3) -> f64 {
    n[0].atan2(n[2])
}
fn neg(n: P3) -> P3 {
    [-n[0], -n[1], -n[2]]
}
/// Upward normal of the superior endplate.
fn up_sup(v: &VertebraLandmarks) -> P3 {
    v.superior_endplate.normal
}
/// Upward normal of the inferior endplate.
fn up_inf(v: &VertebraLandmarks) -> Option<P3> {
    v.inferior_endplate.as_ref().map(|e| neg(e.normal))
}

/// Measures from the landmarks (angles in degrees).
pub fn measure(l: &SpineLandmarks) -> Measures {
    let segments = l
        .vertebrae
        .windows(2)
        .filter_map(|w| {
            let up = up_inf(&w[0])?;
            let lo = up_sup(&w[1]);
            Some(SegmentMeasure {
                upper: w[0].level,
                lower: w[1].level,
                sagittal_deg: (sag(up) - sag(lo)).to_degrees(),
                coronal_deg: (cor(lo) - cor(up)).to_degrees(),
            })
        })
        .collect();
    let lumbar_lordosis_l1_s1_deg = match (l.vertebra(Level::L1), l.vertebra(Level::S1)) {
        (Some(a), Some(b)) => Some((sag(up_sup(a)) - sag(up_sup(b))).to_degrees()),
        _ => None,
    };
    let sacral_slope_deg = l.vertebra(Level::S1).map(|s| -sag(up_sup(s)).to_degrees());
    let lumbar: Vec<&VertebraLandmarks> =
        l.vertebrae.iter().filter(|v| v.level.is_lumbar()).collect();
    let mut coronal_cobb: Option<CobbMeasure> = None;
    for i in 0..lumbar.len() {
        for j in i + 1..lumbar.len() {
            let Some(inf) = up_inf(lumbar[j]) else {
                continue;
            };
            let a = (cor(up_sup(lumbar[i])) - cor(inf)).abs().to_degrees();
            if coronal_cobb.as_ref().is_none_or(|c| a > c.angle_deg + 1e-9) {
                coronal_cobb = Some(CobbMeasure {
                    angle_deg: a,
                    upper_end: lumbar[i].level,
                    lower_end: lumbar[j].level,
                });
            }
        }
    }
    Measures {
        segments,
        lumbar_lordosis_l1_s1_deg,
        sacral_slope_deg,
        coronal_cobb,
    }
}

impl Measures {
    /// A human-readable table (one line per segment, then the global angles).
    pub fn table(&self) -> String {
        let mut s = String::from("segment    sagittal(deg)  coronal(deg)\n");
        for g in &self.segments {
            s += &format!(
                "{:<10} {:>13.1} {:>13.1}\n",
                format!("{}-{}", g.upper, g.lower),
                g.sagittal_deg,
                g.coronal_deg
            );
        }
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1} deg"));
        s += &format!(
            "lumbar lordosis L1-S1: {}\n",
            f(self.lumbar_lordosis_l1_s1_deg)
        );
        s += &format!("sacral slope:          {}\n", f(self.sacral_slope_deg));
        s += &match &self.coronal_cobb {
            Some(c) => format!(
                "coronal Cobb:          {:.1} deg ({}-{})\n",
                c.angle_deg, c.upper_end, c.lower_end
            ),
            None => "coronal Cobb:          n/a\n".into(),
        };
        s
    }
}
