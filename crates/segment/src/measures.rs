//! Spinal measures from landmarks: segmental sagittal and coronal angles with the disc
//! heights, lumbar lordosis, sacral slope, the coronal Cobb angle, and per vertebra the body
//! heights, the canal's cross-section and the trabecular HU, with the L1 bone-density screen.
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
    /// Disc height at the anterior edge (mm; see `DiscLandmarks`), when the disc's
    /// landmarks were found. Files written before this field read none.
    #[serde(default)]
    pub disc_height_anterior_mm: Option<f64>,
    /// Disc height at the centre (mm).
    #[serde(default)]
    pub disc_height_middle_mm: Option<f64>,
    /// Disc height at the posterior edge (mm).
    #[serde(default)]
    pub disc_height_posterior_mm: Option<f64>,
}

/// Per-vertebra measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VertebraMeasure {
    /// Level.
    pub level: Level,
    /// Body height (mm) between the rim planes of the two endplates, along the vertebra's
    /// axis, at the anterior end of the superior endplate's midline; none for the sacrum.
    pub body_height_anterior_mm: Option<f64>,
    /// Body height at the vertebra's centre (mm).
    pub body_height_middle_mm: Option<f64>,
    /// Body height at the posterior end of the superior endplate's midline (mm).
    pub body_height_posterior_mm: Option<f64>,
    /// Cross-section area of the bony canal at the pedicles' level (mm^2); none without a
    /// canal label or for the sacrum (see `CanalSection`).
    pub canal_area_mm2: Option<f64>,
    /// Interpedicular width of the canal (mm).
    pub canal_width_mm: Option<f64>,
    /// Antero-posterior depth of the canal at the midline (mm).
    pub canal_depth_mm: Option<f64>,
    /// Mean HU of the body's cancellous core; none where unknown (no core found, no CT).
    pub trabecular_hu: Option<f64>,
}

/// Opportunistic bone-density screen from L1's trabecular HU (Pickhardt et al. 2013, Ann
/// Intern Med 158:588-595: on routine abdominal CT at 120 kVp, L1 trabecular attenuation of
/// 160 HU or less is 90 % sensitive for osteoporosis by DXA, 110 HU or less over 90 %
/// specific). Not a diagnosis: contrast enhancement raises the HU, and other tube voltages
/// shift it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoneDensityScreen {
    /// The level read (L1).
    pub level: Level,
    /// Its trabecular HU.
    pub trabecular_hu: f64,
    /// Below [`LOW_BMD_HU`]: low bone density likely.
    pub low: bool,
    /// The result in words, with the thresholds and the source.
    pub note: String,
}

/// L1 trabecular HU at or below which low bone density is flagged (over 90 % specific for
/// osteoporosis; Pickhardt et al. 2013, see [`BoneDensityScreen`]).
pub const LOW_BMD_HU: f64 = 110.0;
/// L1 trabecular HU at or below which osteoporosis is not ruled out (90 % sensitive).
pub const SCREEN_BMD_HU: f64 = 160.0;

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
    /// Per vertebra, cranial to caudal. Files written before this field read none.
    #[serde(default)]
    pub vertebrae: Vec<VertebraMeasure>,
    /// The L1 bone-density screen; none without L1 or its trabecular HU.
    #[serde(default)]
    pub bone_density: Option<BoneDensityScreen>,
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

/// Body heights (anterior, middle, posterior; mm) of a vertebra with both endplates: along
/// the line parallel to its z axis through the points of its midline at the superior
/// endplate outline's anterior and posterior ends and at its origin, between the two rim
/// planes.
fn body_heights(v: &VertebraLandmarks) -> Option<[f64; 3]> {
    let inf = v.inferior_endplate.as_ref()?;
    let sup = &v.superior_endplate;
    let v3 = nalgebra::Vector3::from;
    let (o, y, z) = (v3(v.frame.origin), v3(v.frame.y), v3(v.frame.z));
    let ant = v3(*sup.outline.first()?);
    let post = v3(sup.outline[sup.outline.len() / 2]);
    let at = |yl: f64| {
        let q = o + y * yl;
        // The line q + t z meets the plane (p, n) at t = n.(p - q) / n.z.
        let t = |e: &crate::landmarks::Endplate| {
            let n = v3(e.normal);
            n.dot(&(v3(e.centre) - q)) / n.dot(&z)
        };
        t(sup) - t(inf)
    };
    Some([at((ant - o).dot(&y)), at(0.0), at((post - o).dot(&y))])
}

/// Measures from the landmarks (angles in degrees).
pub fn measure(l: &SpineLandmarks) -> Measures {
    let segments = l
        .vertebrae
        .windows(2)
        .filter_map(|w| {
            let up = up_inf(&w[0])?;
            let lo = up_sup(&w[1]);
            let d = l
                .discs
                .iter()
                .find(|d| d.upper == w[0].level && d.lower == w[1].level);
            Some(SegmentMeasure {
                upper: w[0].level,
                lower: w[1].level,
                sagittal_deg: (sag(up) - sag(lo)).to_degrees(),
                coronal_deg: (cor(lo) - cor(up)).to_degrees(),
                disc_height_anterior_mm: d.map(|d| d.height_anterior_mm),
                disc_height_middle_mm: d.map(|d| d.height_middle_mm),
                disc_height_posterior_mm: d.map(|d| d.height_posterior_mm),
            })
        })
        .collect();
    let vertebrae: Vec<VertebraMeasure> = l
        .vertebrae
        .iter()
        .map(|v| {
            let h = body_heights(v);
            VertebraMeasure {
                level: v.level,
                body_height_anterior_mm: h.map(|h| h[0]),
                body_height_middle_mm: h.map(|h| h[1]),
                body_height_posterior_mm: h.map(|h| h[2]),
                canal_area_mm2: v.canal.as_ref().map(|c| c.area_mm2),
                canal_width_mm: v.canal.as_ref().map(|c| c.width_mm),
                canal_depth_mm: v.canal.as_ref().map(|c| c.depth_mm),
                trabecular_hu: v.trabecular_hu.is_finite().then_some(v.trabecular_hu),
            }
        })
        .collect();
    let bone_density = vertebrae
        .iter()
        .find(|v| v.level == Level::L1)
        .and_then(|v| v.trabecular_hu)
        .map(|hu| {
            let words = if hu <= LOW_BMD_HU {
                "low bone density likely (at or below 110 HU, over 90 % specific for osteoporosis)"
            } else if hu <= SCREEN_BMD_HU {
                "indeterminate (110-160 HU: osteoporosis neither likely nor ruled out)"
            } else {
                "osteoporosis unlikely (above 160 HU, 90 % sensitive threshold)"
            };
            BoneDensityScreen {
                level: Level::L1,
                trabecular_hu: hu,
                low: hu <= LOW_BMD_HU,
                note: format!(
                    "L1 trabecular {hu:.0} HU: {words}; Pickhardt et al. 2013 (Ann Intern Med 158:588), non-contrast CT at 120 kVp, not a diagnosis"
                ),
            }
        });
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
        vertebrae,
        bone_density,
    }
}

impl Measures {
    /// A human-readable table: one line per segment (angles, disc heights), the global
    /// angles, one line per vertebra (body heights, canal, trabecular HU), the L1 screen.
    pub fn table(&self) -> String {
        let f1 =
            |v: Option<f64>, w: usize| v.map_or(format!("{:>w$}", "-"), |v| format!("{v:>w$.1}"));
        let mut s = String::from(
            "segment    sagittal(deg)  coronal(deg)   disc height ant/mid/post (mm)\n",
        );
        for g in &self.segments {
            s += &format!(
                "{:<10} {:>13.1} {:>13.1}   {} {} {}\n",
                format!("{}-{}", g.upper, g.lower),
                g.sagittal_deg,
                g.coronal_deg,
                f1(g.disc_height_anterior_mm, 9),
                f1(g.disc_height_middle_mm, 5),
                f1(g.disc_height_posterior_mm, 5),
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
        if !self.vertebrae.is_empty() {
            s += "vertebra   body height ant/mid/post (mm)   canal area (mm2)  width  depth (mm)   trabecular HU\n";
            for v in &self.vertebrae {
                s += &format!(
                    "{:<10} {} {} {}   {} {} {}   {}\n",
                    v.level.name(),
                    f1(v.body_height_anterior_mm, 18),
                    f1(v.body_height_middle_mm, 5),
                    f1(v.body_height_posterior_mm, 5),
                    f1(v.canal_area_mm2, 16),
                    f1(v.canal_width_mm, 6),
                    f1(v.canal_depth_mm, 6),
                    v.trabecular_hu
                        .map_or(format!("{:>15}", "-"), |h| format!("{h:>15.0}")),
                );
            }
        }
        if let Some(b) = &self.bone_density {
            s += &format!("bone density screen:   {}\n", b.note);
        }
        s
    }
}
