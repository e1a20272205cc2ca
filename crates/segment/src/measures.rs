//! Spinal measures from landmarks: segmental sagittal and coronal angles with the disc
//! heights, lumbar lordosis, sacral slope, the coronal Cobb angle, and per vertebra the body
//! heights, the canal's cross-section and the trabecular HU, with the L1 bone-density screen
//! and a screen of the body heights for vertebral deformity (Genant's grades).
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
    /// Height loss of the body of Genant grade 1 or more (see [`BodyDeformity`]); none
    /// below 20 %, for the sacrum, or without the heights. Files written before this field
    /// read none.
    #[serde(default)]
    pub deformity: Option<BodyDeformity>,
}

/// Shape of a vertebral body's height loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeformityKind {
    /// The front lower than the back: anterior height against posterior.
    Wedge,
    /// The whole body lower: its tallest height against the mean of its neighbours'
    /// tallest heights (the adjacent vertebrae with heights in the scan).
    Crush,
}

/// A vertebral body's height loss graded by Genant's semiquantitative scale (Genant HK, Wu
/// CY, van Kuijk C, Nevitt MC 1993, J Bone Miner Res 8:1137-1148: grade 1 mild, 20-25 %
/// reduction of a height; grade 2 moderate, 25-40 %; grade 3 severe, over 40 %). Read from
/// the body heights between the rim planes, so an endplate's central depression (the
/// biconcave deformity) is not seen; the heights of a normal lumbar or lower thoracic body
/// differ by less than 20 %, but a thoracic body's normal anterior wedging adds to the
/// wedge's reduction. A screen for review on the images, not a fracture diagnosis: height
/// loss has other causes (congenital or developmental shape, old deformity, degeneration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodyDeformity {
    /// Wedge or crush, whichever loses more.
    pub kind: DeformityKind,
    /// The height's reduction (fraction, 0.2-1).
    pub reduction: f64,
    /// Genant grade, 1 to 3.
    pub grade: u8,
    /// The finding in words, with the heights compared and the source.
    pub note: String,
}

/// Genant's grade of a height reduction (fraction): 0 below 20 %, then 1 up to 25 %, 2 up
/// to 40 %, 3 beyond.
pub fn genant_grade(reduction: f64) -> u8 {
    match reduction {
        r if r < 0.20 => 0,
        r if r < 0.25 => 1,
        r if r <= 0.40 => 2,
        _ => 3,
    }
}

/// The deformity screen of the vertebra at `i` of `v` (cranial to caudal; its neighbours
/// are the entries beside it whose levels are adjacent to its own, the sacrum excepted;
/// see [`BodyDeformity`]).
fn deformity(v: &[VertebraMeasure], i: usize) -> Option<BodyDeformity> {
    // A body's three heights (mm), only where all are finite and positive: planes that
    // cross inside the body (a failed endplate fit) are no height loss to grade.
    let heights = |w: &VertebraMeasure| {
        let h = [
            w.body_height_anterior_mm?,
            w.body_height_middle_mm?,
            w.body_height_posterior_mm?,
        ];
        h.iter().all(|h| h.is_finite() && *h > 0.0).then_some(h)
    };
    let tallest = |w: &VertebraMeasure| heights(w).map(|h| h[0].max(h[1]).max(h[2]));
    let m = &v[i];
    let [a, _, p] = heights(m)?;
    let own = tallest(m)?;
    let adjacent = |w: &VertebraMeasure| {
        w.level.verse_label().abs_diff(m.level.verse_label()) == 1 && w.level != Level::S1
    };
    let neighbours: Vec<f64> = [i.checked_sub(1), Some(i + 1)]
        .into_iter()
        .flatten()
        .filter_map(|j| v.get(j))
        .filter(|w| adjacent(w))
        .filter_map(tallest)
        .collect();
    let wedge = 1.0 - a / p;
    let reference =
        (!neighbours.is_empty()).then(|| neighbours.iter().sum::<f64>() / neighbours.len() as f64);
    let crush = reference.map(|r| (1.0 - own / r, r));
    let (kind, reduction, words) = match crush {
        Some((c, r)) if c > wedge => (
            DeformityKind::Crush,
            c,
            format!("its tallest height {own:.1} mm against {r:.1} mm of its neighbours"),
        ),
        _ => (
            DeformityKind::Wedge,
            wedge,
            format!("{a:.1} mm in front against {p:.1} mm at the back"),
        ),
    };
    let grade = genant_grade(reduction);
    (grade > 0).then(|| {
        let name = match kind {
            DeformityKind::Wedge => "wedge",
            DeformityKind::Crush => "crush",
        };
        let severity = ["", "mild", "moderate", "severe"][grade as usize];
        BodyDeformity {
            kind,
            reduction,
            grade,
            note: format!(
                "{}: {severity} {name} deformity, height {:.0} % lower ({words}): Genant grade {grade} (Genant et al. 1993, J Bone Miner Res 8:1137); review the images for a fracture",
                m.level,
                reduction * 100.0
            ),
        }
    })
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
    let mut vertebrae: Vec<VertebraMeasure> = l
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
                deformity: None,
            }
        })
        .collect();
    let deformities: Vec<Option<BodyDeformity>> = (0..vertebrae.len())
        .map(|i| deformity(&vertebrae, i))
        .collect();
    for (v, d) in vertebrae.iter_mut().zip(deformities) {
        v.deformity = d;
    }
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
        for d in self.vertebrae.iter().filter_map(|v| v.deformity.as_ref()) {
            s += &format!("body height screen:    {}\n", d.note);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(level: Level, h: [f64; 3]) -> VertebraMeasure {
        VertebraMeasure {
            level,
            body_height_anterior_mm: Some(h[0]),
            body_height_middle_mm: Some(h[1]),
            body_height_posterior_mm: Some(h[2]),
            canal_area_mm2: None,
            canal_width_mm: None,
            canal_depth_mm: None,
            trabecular_hu: None,
            deformity: None,
        }
    }

    /// Genant's grades at their bounds; a wedge against the body's own back, a crush against
    /// its neighbours' tallest heights, and a normal L5 (lower at the back) left alone.
    #[test]
    fn body_heights_are_screened_by_genant_grade() {
        assert_eq!(
            [0.0, 0.199, 0.20, 0.249, 0.25, 0.40, 0.401].map(genant_grade),
            [0, 0, 1, 1, 2, 2, 3]
        );
        let spine = vec![
            body(Level::T12, [25.0, 25.5, 26.0]),
            body(Level::L1, [17.0, 22.0, 27.0]), // wedge: 37 % lower in front
            body(Level::L2, [28.0, 28.0, 28.0]),
            body(Level::L3, [19.0, 19.5, 20.0]), // crush: 20 against 28.5
            body(Level::L4, [29.0, 29.0, 29.0]),
            body(Level::L5, [29.0, 26.0, 23.0]), // the normal L5: 21 % lower at the back
        ];
        let d: Vec<Option<BodyDeformity>> =
            (0..spine.len()).map(|i| deformity(&spine, i)).collect();
        for (i, kind, r) in [
            (1, DeformityKind::Wedge, 1.0 - 17.0 / 27.0),
            (3, DeformityKind::Crush, 1.0 - 20.0 / 28.5),
        ] {
            let f = d[i].as_ref().expect("a deformity");
            assert_eq!((f.kind, f.grade), (kind, 2), "{}", f.note);
            assert!((f.reduction - r).abs() < 1e-12, "{}", f.note);
            let name = spine[i].level.name();
            assert!(
                f.note.contains("Genant") && f.note.contains(name),
                "{}",
                f.note
            );
        }
        for i in [0, 2, 4, 5] {
            assert!(d[i].is_none(), "{:?}", d[i]);
        }
        // Without its neighbours in the list the crush has no reference; a gap in the
        // levels is no neighbour either.
        let alone = vec![spine[3].clone()];
        assert!(deformity(&alone, 0).is_none());
        let gap = vec![spine[1].clone(), spine[3].clone(), spine[5].clone()];
        assert!(deformity(&gap, 1).is_none());
        // Endplate planes that cross inside a body (a failed fit: a negative or non-finite
        // height) are not graded, nor taken as a neighbour's reference: L3 is read against
        // L4 alone.
        let mut failed = spine.clone();
        failed[1].body_height_anterior_mm = Some(-5.5);
        failed[2].body_height_posterior_mm = Some(f64::NAN);
        assert!(deformity(&failed, 1).is_none());
        assert!(deformity(&failed, 2).is_none());
        let l3 = deformity(&failed, 3).expect("L3 crushed");
        assert!(
            (l3.reduction - (1.0 - 20.0 / 29.0)).abs() < 1e-12,
            "{}",
            l3.note
        );
    }
}
