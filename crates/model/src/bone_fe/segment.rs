//! Two vertebrae and their disc from the CT, compressed as one motion segment: the load path
//! from one vertebra through the disc into the next, for the adjacent-vertebra question of
//! cement augmentation.
//!
//! Cement stiffens the augmented body and stops its endplate bulging into it; the disc then
//! presses harder on the adjacent endplate (Baroud et al. 2003, Eur Spine J 12:421, an L4-L5
//! FE model: the augmented endplate's bulge fell to 7 %, the motion segment stiffened by
//! about 11 % and the disc pressure rose by about 19 %). This model builds the segment from
//! the CT (both vertebrae with moduli from their HU, the disc from its label) in one frame
//! between the two bodies, embeds both ends in PMMA caps, compresses it along the mean body
//! axis, once intact and once with the planned cement, and compares the stress in the
//! adjacent vertebra's body at the same axial force. The disc is homogeneous and linear
//! elastic (no pressurised nucleus), and the vertebrae meet only through it (where they touch
//! elsewhere, e.g. at facet joints closed at the voxel size, a one-voxel joint space is
//! cleared, so the facets carry nothing): the model is comparative, intact against cemented
//! on the same mesh.

use nalgebra::Vector3;
use serde::Serialize;

use super::{
    add_end_caps, compression_test, local_label, percentile, place_cement, voxel_model,
    CompressionOptions, Platens, VertebraGrid, VoxelModelOptions, BONE_CEMENT, CAP_PMMA,
};
use crate::bone::{BoneMaterial, Isotropic};
use crate::error::ModelError;

/// Options of [`segment_compression`].
#[derive(Clone, Debug)]
pub struct SegmentTestOptions {
    /// Voxel size (mm).
    pub spacing_mm: f64,
    /// HU -> modulus of the bone.
    pub bone: BoneMaterial,
    /// Poisson's ratio of bone.
    pub bone_nu: f64,
    /// The disc (homogeneous, linear elastic).
    pub disc: Isotropic,
    /// Thickness of the end caps (mm).
    pub cap_mm: f64,
    /// Fraction of the first vertebra's body filled with cement (0: intact).
    pub cement_fraction: f64,
    /// The cement's material (default [`BONE_CEMENT`], PMMA).
    pub cement: Isotropic,
    /// Thickness of the adjacent endplate zone evaluated (mm; rounded to whole voxel layers,
    /// at least one).
    pub zone_mm: f64,
}

impl Default for SegmentTestOptions {
    fn default() -> Self {
        SegmentTestOptions {
            spacing_mm: 1.5,
            bone: BoneMaterial::default(),
            bone_nu: 0.3,
            // A homogeneous disc of about the small-strain compressive modulus of the
            // annulus ground substance with fibres (a few MPa) and nearly incompressible
            // core; nu 0.45 keeps linear hexahedra from locking.
            disc: Isotropic {
                e_mpa: 8.0,
                nu: 0.45,
            },
            cap_mm: 3.0,
            cement_fraction: 0.0,
            cement: BONE_CEMENT,
            zone_mm: 3.0,
        }
    }
}

/// Stress statistics of a bone region (MPa per kN of axial force).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StressStats {
    /// Elements.
    pub elements: usize,
    /// Median von Mises stress per kN.
    pub p50_per_kn: f64,
    /// 95th percentile per kN.
    pub p95_per_kn: f64,
}

/// A compressed motion segment.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentTest {
    /// Axial stiffness (N/mm).
    pub stiffness_n_per_mm: f64,
    /// Equations solved.
    pub equations: usize,
    /// Cement volume (mm^3).
    pub cement_mm3: f64,
    /// The first vertebra's body bone (cement excluded).
    pub body: StressStats,
    /// The other (adjacent) vertebra's body bone.
    pub adjacent_body: StressStats,
    /// The adjacent body's bone within `zone_mm` of the disc (its endplate facing the first
    /// vertebra).
    pub adjacent_endplate: StressStats,
    /// Voxels of the adjacent vertebra cleared where it touched the first one (joint space).
    pub joint_voxels_cleared: usize,
    /// Thickness of the adjacent endplate zone (mm, whole voxel layers).
    pub zone_mm: f64,
    /// Solve time (s).
    pub solve_time_s: f64,
}

fn stats(values: impl Iterator<Item = f64>) -> StressStats {
    let mut v: Vec<f64> = values.collect();
    StressStats {
        elements: v.len(),
        p50_per_kn: percentile(&mut v, 0.5),
        p95_per_kn: percentile(&mut v, 0.95),
    }
}

/// Compresses the motion segment of `first` (the vertebra that may be cemented) and
/// `adjacent` with the disc labelled `disc_label` between them (see the module
/// documentation). Errors name what is missing.
pub fn segment_compression(
    ct: &spinetwin_imaging::Volume<f32>,
    labels: &spinetwin_imaging::Volume<u16>,
    first: &spinetwin_segment::landmarks::VertebraLandmarks,
    adjacent: &spinetwin_segment::landmarks::VertebraLandmarks,
    disc_label: u16,
    options: &SegmentTestOptions,
) -> Result<SegmentTest, ModelError> {
    let s = options.spacing_mm;
    let (a_up, b_up) = (
        Vector3::from(first.frame.origin).dot(&Vector3::from(first.frame.z)),
        Vector3::from(adjacent.frame.origin).dot(&Vector3::from(first.frame.z)),
    );
    let name = if a_up >= b_up {
        format!("{}-{}", first.level.name(), adjacent.level.name())
    } else {
        format!("{}-{}", adjacent.level.name(), first.level.name())
    };
    if !(0.0..=0.9).contains(&options.cement_fraction) || options.cap_mm < s {
        return Err(ModelError::InvalidInput(format!(
            "segment test {name}: the cement fraction must lie within 0..0.9 (got {}) and the \
             caps ({} mm) be at least one voxel ({s} mm)",
            options.cement_fraction, options.cap_mm
        )));
    }
    super::check_cement(&options.cement, &format!("segment test {name}"))?;
    options.bone.validate()?;
    // One frame between the two bodies: origin halfway, axis the mean body axis.
    let (fa, fb) = (&first.frame, &adjacent.frame);
    let v = |p: [f64; 3]| Vector3::from(p);
    let z = (v(fa.z) + v(fb.z)).normalize();
    let y0 = v(fa.y) + v(fb.y);
    let y = (y0 - z * y0.dot(&z)).normalize();
    let x = y.cross(&z);
    let frame = spinetwin_segment::landmarks::Frame {
        origin: (0.5 * (v(fa.origin) + v(fb.origin))).into(),
        x: x.into(),
        y: y.into(),
        z: z.into(),
    };
    let grid = VertebraGrid::with_members(
        ct,
        labels,
        &[
            (first, local_label::BODY, local_label::POSTERIOR),
            (adjacent, local_label::ADJ_BODY, local_label::ADJ_POSTERIOR),
        ],
        &[(disc_label, local_label::DISC)],
        &frame,
        s,
        options.cap_mm,
        &[],
    )
    .map_err(|e| match e {
        ModelError::InvalidInput(m) if m.contains(&format!("label {disc_label} ")) => {
            ModelError::InvalidInput(format!(
                "segment test {name}: the label map has no disc (label {disc_label}) between \
                 the vertebrae; segment the discs or give a label map with them"
            ))
        }
        e => e,
    })?;
    let mut lab = grid.lab.clone();
    // The vertebrae may touch only through the disc: voxels of the adjacent vertebra that
    // face the first one (facet joints closed at this resolution, or bodies touching where
    // the disc label is thin) are cleared, leaving a one-voxel joint space. Bonded voxels
    // there would carry the load around the disc.
    let dims = grid.dims;
    let first_bone = |l: u16| l == local_label::BODY || l == local_label::POSTERIOR;
    let mut cleared = Vec::new();
    for k in 1..dims[2] - 1 {
        for j in 1..dims[1] - 1 {
            for i in 1..dims[0] - 1 {
                let l = lab.get(i, j, k);
                if l != local_label::ADJ_BODY && l != local_label::ADJ_POSTERIOR {
                    continue;
                }
                // Any of the 26 neighbours: voxel elements sharing only an edge or a corner
                // share nodes too.
                let touches = (0..27).any(|n| {
                    let (a, b, c) = (i + n % 3 - 1, j + (n / 3) % 3 - 1, k + n / 9 - 1);
                    first_bone(lab.get(a, b, c))
                });
                if touches {
                    cleared.push([i, j, k]);
                }
            }
        }
    }
    for [i, j, k] in &cleared {
        lab.set(*i, *j, *k, 0);
    }
    let cement_n = place_cement(
        &mut lab,
        &grid.body_voxels,
        grid.start,
        s,
        options.cement_fraction,
        2,
    )?;
    let margin = (options.cap_mm / s).round() as usize;
    // Each cap covers only its own end vertebra: a cap under every column of the stack would
    // run up past the lower vertebra wherever the upper one overhangs it (lordosis) and
    // carry the load around the disc as a PMMA strut.
    let first_is_upper =
        Vector3::from(first.frame.origin).dot(&z) > Vector3::from(adjacent.frame.origin).dot(&z);
    let (upper_body, lower_body) = if first_is_upper {
        (local_label::BODY, local_label::ADJ_BODY)
    } else {
        (local_label::ADJ_BODY, local_label::BODY)
    };
    let with_cement =
        |l: u16, body: u16| l == body || (body == local_label::BODY && l == local_label::CEMENT);
    add_end_caps(
        &mut lab,
        |_, l| with_cement(l, lower_body),
        [local_label::CAP_LOW, 0],
        margin,
    )?;
    add_end_caps(
        &mut lab,
        |_, l| with_cement(l, upper_body),
        [0, local_label::CAP_HIGH],
        margin,
    )?;
    let (bone, nu, disc, cement) = (&options.bone, options.bone_nu, options.disc, options.cement);
    let model = voxel_model(
        &grid.hu,
        &lab,
        |l| l != 0,
        |l, h| match l {
            local_label::CEMENT => cement,
            local_label::CAP_LOW | local_label::CAP_HIGH => CAP_PMMA,
            local_label::DISC => disc,
            _ => Isotropic {
                e_mpa: bone.modulus(h),
                nu,
            },
        },
        &VoxelModelOptions::default(),
    )?;
    let cells = model.mesh.num_elements();
    if model.dropped_blocks as f64 > 0.02 * (cells + model.dropped_blocks) as f64 {
        return Err(ModelError::InvalidGeometry(format!(
            "segment test {name}: {} of {} voxels are not connected to the main piece: the \
             vertebrae and the disc do not form one segment; check the segmentation",
            model.dropped_blocks,
            cells + model.dropped_blocks
        )));
    }
    let (result, sol) = compression_test(
        &model,
        &CompressionOptions {
            axis: 2,
            displacement_mm: 0.2,
            platens: Platens::Bonded,
            end_labels: Some([local_label::CAP_LOW, local_label::CAP_HIGH]),
            ..Default::default()
        },
    )?;
    if !result.converged || result.force_n.is_nan() || result.force_n <= 0.0 {
        return Err(ModelError::InvalidInput(format!(
            "segment test {name}: the linear solve did not give a compressive force (residual \
             {:.1e}, force {:.3e} N)",
            result.relative_residual, result.force_n
        )));
    }
    let per_kn = 1000.0 / result.force_n;
    let vm: Vec<f64> =
        spinetwin_fem::post::element_results(&model.mesh, &model.material, &sol.displacements)?
            .iter()
            .map(|r| r.von_mises * per_kn)
            .collect();
    let mesh = &model.mesh;
    let centroid = |e: usize| Vector3::from(mesh.element_centroid(e));
    // The disc's extent along z in each (i, j) column of the local grid.
    let mut disc_z: Vec<Option<(f64, f64)>> = vec![None; dims[0] * dims[1]];
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                if lab.get(i, j, k) == local_label::DISC {
                    let zc = grid.start[2] + k as f64 * s;
                    let e = &mut disc_z[j * dims[0] + i];
                    *e = Some(e.map_or((zc, zc), |(a, b)| (a.min(zc), b.max(zc))));
                }
            }
        }
    }
    // Whole voxel layers: element centroids sit at multiples of `s` from the disc's
    // boundary voxel centres, so a cut between layers does not depend on round-off.
    let layers = (options.zone_mm / s).round().max(1.0);
    let zone = layers * s;
    let near_disc = |e: usize| {
        let c = centroid(e);
        let i = ((c.x - grid.start[0]) / s).round();
        let j = ((c.y - grid.start[1]) / s).round();
        if i < 0.0 || j < 0.0 || i >= dims[0] as f64 || j >= dims[1] as f64 {
            return false;
        }
        disc_z[j as usize * dims[0] + i as usize]
            .is_some_and(|(a, b)| (c.z - a).abs().min((c.z - b).abs()) <= zone + 0.25 * s)
    };
    let label = |e: usize| model.element_label[e];
    let ne = mesh.num_elements();
    let adjacent_endplate = stats(
        (0..ne)
            .filter(|&e| label(e) == local_label::ADJ_BODY && near_disc(e))
            .map(|e| vm[e]),
    );
    if adjacent_endplate.elements == 0 {
        return Err(ModelError::InvalidGeometry(format!(
            "segment test {name}: no bone of {} lies next to the disc",
            adjacent.level.name()
        )));
    }
    Ok(SegmentTest {
        stiffness_n_per_mm: result.stiffness_n_per_mm,
        equations: result.equations,
        cement_mm3: cement_n as f64 * s * s * s,
        body: stats(
            (0..ne)
                .filter(|&e| label(e) == local_label::BODY)
                .map(|e| vm[e]),
        ),
        adjacent_body: stats(
            (0..ne)
                .filter(|&e| label(e) == local_label::ADJ_BODY)
                .map(|e| vm[e]),
        ),
        adjacent_endplate,
        joint_voxels_cleared: cleared.len(),
        zone_mm: zone,
        solve_time_s: result.solve_time_s,
    })
}
