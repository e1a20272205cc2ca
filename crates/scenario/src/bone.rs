//! Bone checks of cement augmentation with deformable vertebrae from the CT.
//!
//! The hybrid twin's vertebrae are rigid, so cement changes nothing there. When the CT and
//! its label map are at hand, each cemented vertebra is also compressed as a voxel FE model
//! with moduli from its HU (`spinetwin_model::bone_fe::vertebra_compression`), once intact
//! and once with the planned fill, and the comparison reports how much the body stiffens
//! and how the stress in its remaining bone changes at the same axial force.

use serde::Serialize;
use spinetwin_anatomy::Level;
use spinetwin_imaging::Volume;
use spinetwin_model::bone_fe::{
    local_label, vertebra_compression, VertebraTest, VertebraTestOptions,
};
use spinetwin_segment::landmarks::SpineLandmarks;

/// One cemented vertebra compressed intact and cemented.
#[derive(Clone, Debug, Serialize)]
pub struct BoneCheck {
    /// Level.
    pub level: String,
    /// Planned fill fraction of the body.
    pub fill_fraction: f64,
    /// Cement volume placed (mm^3).
    pub cement_mm3: f64,
    /// Axial stiffness of the vertebra without and with cement (N/mm).
    pub stiffness_n_per_mm: [f64; 2],
    /// Change of stiffness (%).
    pub stiffness_change_pct: f64,
    /// Von Mises stress per kN of axial force in the body bone that is bone in both
    /// models: 95th percentile without and with cement (MPa).
    pub bone_p95_per_kn: [f64; 2],
    /// The same at the median (MPa).
    pub bone_p50_per_kn: [f64; 2],
    /// Mean HU of the body's bone.
    pub body_mean_hu: f64,
    /// Voxel size of the models (mm).
    pub spacing_mm: f64,
}

/// Compresses each cemented vertebra intact and with its fill (`cemented`: level and fill
/// fraction) at voxel size `spacing_mm`. Errors name the level and what went wrong.
pub fn cement_checks(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
    landmarks: &SpineLandmarks,
    cemented: &[(Level, f64)],
    spacing_mm: f64,
) -> Result<Vec<BoneCheck>, String> {
    let mut out = Vec::new();
    for &(level, fill) in cemented {
        let v = landmarks
            .vertebrae
            .iter()
            .find(|v| v.level == level)
            .ok_or_else(|| format!("{}: no landmarks for this vertebra", level.name()))?;
        let run = |fill: f64| -> Result<VertebraTest, String> {
            vertebra_compression(
                ct,
                labels,
                v,
                &VertebraTestOptions {
                    spacing_mm,
                    cement_fraction: fill,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("{}: {e}", level.name()))
        };
        let (a, b) = (run(0.0)?, run(fill)?);
        // Same grid and mesh in both: cement relabels voxels, it does not remesh.
        if a.model.mesh.num_elements() != b.model.mesh.num_elements() {
            return Err(format!(
                "{}: the intact and cemented models differ in their meshes",
                level.name()
            ));
        }
        let common: Vec<usize> = (0..a.model.mesh.num_elements())
            .filter(|&e| {
                a.model.element_label[e] == local_label::BODY
                    && b.model.element_label[e] == local_label::BODY
            })
            .collect();
        if common.is_empty() {
            return Err(format!(
                "{}: no body bone is left beside the cement to compare",
                level.name()
            ));
        }
        let pct = |t: &VertebraTest, q: f64| {
            let mut s: Vec<f64> = common.iter().map(|&e| t.von_mises_per_kn[e]).collect();
            s.sort_by(f64::total_cmp);
            s.get(((s.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let (ka, kb) = (a.result.stiffness_n_per_mm, b.result.stiffness_n_per_mm);
        out.push(BoneCheck {
            level: level.name().to_string(),
            fill_fraction: fill,
            cement_mm3: b.cement_mm3,
            stiffness_n_per_mm: [ka, kb],
            stiffness_change_pct: 100.0 * (kb / ka - 1.0),
            bone_p95_per_kn: [pct(&a, 0.95), pct(&b, 0.95)],
            bone_p50_per_kn: [pct(&a, 0.5), pct(&b, 0.5)],
            body_mean_hu: a.body_mean_hu,
            spacing_mm,
        });
    }
    Ok(out)
}
