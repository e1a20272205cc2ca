//! Bone checks of cement augmentation with deformable vertebrae from the CT.
//!
//! The hybrid twin's vertebrae are rigid, so cement changes nothing there. When the CT and
//! its label map are at hand, each cemented vertebra is also compressed as a voxel FE model
//! with moduli from its HU (`spinetwin_model::bone_fe::vertebra_compression`), once intact
//! and once with the planned fill, and the comparison reports how much the body stiffens
//! and how the stress in its remaining bone changes at the same axial force.

use serde::Serialize;
use spinetwin_anatomy::Level;
use spinetwin_imaging::preview::RgbImage;
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
    /// Mid-sagittal sections (PNG) of the intact and the cemented vertebra, see
    /// [`section_image`]; not part of the JSON.
    #[serde(skip)]
    pub sections: [Vec<u8>; 2],
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
            // Both on the intact vertebra's stress scale, so the colours compare.
            sections: {
                let scale = a.stress_percentile(local_label::BODY, 0.99);
                [
                    section_image(&a, spacing_mm, scale).to_png(),
                    section_image(&b, spacing_mm, scale).to_png(),
                ]
            },
        });
    }
    Ok(out)
}

/// The mid-sagittal section of a vertebra test as a picture (anterior left, cranial up):
/// Young's modulus on the left (black 0 to white at the largest bone modulus; cement orange,
/// caps pale blue) and von Mises stress per kN on the right (blue 0 to red at the 99th
/// percentile of the body's bone, or at `stress_max` MPa per kN when given, for pictures
/// on one scale); one square per element column of size `h` mm, 4 pixels per mm.
pub fn section_image(t: &VertebraTest, h: f64, stress_max: Option<f64>) -> RgbImage {
    const PX_PER_MM: f64 = 4.0;
    let mesh = &t.model.mesh;
    let centroid = |e: usize| {
        let n = mesh.element_nodes(e);
        // Corner nodes only (a Tet10 lists its 4 corners first).
        let k = if n.len() == 10 { 4 } else { n.len() };
        let mut c = [0.0; 3];
        for &i in &n[..k] {
            for (ca, p) in c.iter_mut().zip(mesh.nodes[i]) {
                *ca += p / k as f64;
            }
        }
        c
    };
    let cents: Vec<[f64; 3]> = (0..mesh.num_elements()).map(centroid).collect();
    let (mut lo, mut hi) = ([f64::MAX; 3], [f64::MIN; 3]);
    for c in &cents {
        for a in 0..3 {
            lo[a] = lo[a].min(c[a]);
            hi[a] = hi[a].max(c[a]);
        }
    }
    let cols = ((hi[1] - lo[1]) / h).round() as usize + 1;
    let rows = ((hi[2] - lo[2]) / h).round() as usize + 1;
    let cell = (h * PX_PER_MM).round().max(1.0) as usize;
    let gap = 4 * cell;
    let (w, ht) = (2 * cols * cell + gap, rows * cell);
    let mut img = RgbImage {
        width: w,
        height: ht,
        pixels: vec![255; 3 * w * ht],
    };
    let bone = |l: u16| l == local_label::BODY || l == local_label::POSTERIOR;
    let e_max = (0..mesh.num_elements())
        .filter(|&e| bone(t.model.element_label[e]))
        .map(|e| t.model.material.youngs[e])
        .fold(0.0, f64::max)
        .max(1e-9);
    let s_max = stress_max
        .or_else(|| t.stress_percentile(local_label::BODY, 0.99))
        .unwrap_or(1.0)
        .max(1e-12);
    // The section: elements whose centroid lies within half a cell of the mid-sagittal plane
    // (x = 0 is the body centre); several elements on one square keep the highest stress.
    let mut best: Vec<Option<(f64, usize)>> = vec![None; cols * rows];
    for (e, c) in cents.iter().enumerate() {
        if c[0].abs() > 0.5 * h {
            continue;
        }
        let col = ((c[1] - lo[1]) / h).round() as usize;
        let row = rows - 1 - ((c[2] - lo[2]) / h).round() as usize;
        let s = t.von_mises_per_kn[e];
        let slot = &mut best[row * cols + col];
        if slot.is_none_or(|(v, _)| s > v) {
            *slot = Some((s, e));
        }
    }
    let mut paint = |x0: usize, y0: usize, rgb: [u8; 3]| {
        for y in y0..y0 + cell {
            for x in x0..x0 + cell {
                let i = 3 * (y * w + x);
                img.pixels[i..i + 3].copy_from_slice(&rgb);
            }
        }
    };
    for row in 0..rows {
        for col in 0..cols {
            let Some((s, e)) = best[row * cols + col] else {
                continue;
            };
            let l = t.model.element_label[e];
            let left = if bone(l) {
                let g = (255.0 * (t.model.material.youngs[e] / e_max).sqrt()) as u8;
                [g, g, g]
            } else {
                if l == local_label::CEMENT {
                    [230, 140, 40]
                } else {
                    [170, 190, 215]
                }
            };
            paint(col * cell, row * cell, left);
            let c = spinetwin_mesh::render::colour_scale(s / s_max);
            paint(
                cols * cell + gap + col * cell,
                row * cell,
                c.map(|v| (255.0 * v).round() as u8),
            );
        }
    }
    img
}
