//! Bone checks with deformable vertebrae from the CT: cement augmentation, and the bone
//! around screws and under cages.
//!
//! The hybrid twin's vertebrae are rigid, so cement changes nothing there. When the CT and
//! its label map are at hand, each cemented vertebra is also compressed as a voxel FE model
//! with moduli from its HU (`spinetwin_model::bone_fe::vertebra_compression`), once intact
//! and once with the planned fill, and the comparison reports how much the body stiffens
//! and how the stress in its remaining bone changes at the same axial force.
//!
//! Each vertebra carrying screws or a cage is put under the loads the implants carry in the
//! solved hybrid cases ([`implant_checks`]): the bone stress against its strength around
//! each screw (loosening indicator) and under each cage footprint (subsidence indicator).

use serde::Serialize;
use spinetwin_anatomy::Level;
use spinetwin_imaging::preview::RgbImage;
use spinetwin_imaging::Volume;
use spinetwin_model::bone::Isotropic;
use spinetwin_model::bone_fe::{
    implant_test, local_label, percentile, segment_compression, vertebra_compression, CementFill,
    FootprintSpec, ImplantCase, ImplantCaseResult, ImplantTestOptions, ScrewSpec,
    SegmentTestOptions, VertebraTest, VertebraTestOptions, ZoneStats, TITANIUM,
};
use spinetwin_model::twin::{CaseResult, ImplantLoadKind};
use spinetwin_segment::landmarks::SpineLandmarks;

use crate::apply::{ScenarioModel, ScrewPlan};

/// One cemented vertebra compressed intact and cemented.
#[derive(Clone, Debug, Serialize)]
pub struct BoneCheck {
    /// Level.
    pub level: String,
    /// Planned fill fraction of the body.
    pub fill_fraction: f64,
    /// Young's modulus of the cement (MPa).
    pub cement_modulus_mpa: f64,
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
    /// The motion segments with each neighbouring vertebra (through the disc between them),
    /// intact and cemented: the adjacent vertebra's stress.
    pub adjacent: Vec<AdjacentCheck>,
    /// Why a neighbour could not be checked (no disc label, not segmented...).
    pub adjacent_notes: Vec<String>,
    /// Mid-sagittal sections (PNG) of the intact and the cemented vertebra, see
    /// [`section_image`]; not part of the JSON.
    #[serde(skip)]
    pub sections: [Vec<u8>; 2],
}

/// A cemented vertebra and one neighbour compressed as a motion segment, intact and
/// cemented (`spinetwin_model::bone_fe::segment_compression`).
#[derive(Clone, Debug, Serialize)]
pub struct AdjacentCheck {
    /// The segment, e.g. `L1-L2`.
    pub segment: String,
    /// The neighbouring (adjacent) vertebra.
    pub adjacent_level: String,
    /// Segment stiffness without and with cement (N/mm).
    pub stiffness_n_per_mm: [f64; 2],
    /// Von Mises stress per kN, 95th percentile, in the adjacent vertebra's bone within
    /// `zone_mm` of the disc (its endplate facing the cemented vertebra), without and with
    /// cement (MPa).
    pub adjacent_endplate_p95_per_kn: [f64; 2],
    /// Thickness of that endplate zone (mm, whole voxel layers).
    pub zone_mm: f64,
    /// Voxels of the neighbour cleared where it touched the cemented vertebra outside the
    /// disc (joint space).
    pub joint_voxels_cleared: usize,
    /// The same over the adjacent vertebra's whole body.
    pub adjacent_body_p95_per_kn: [f64; 2],
    /// Change of the endplate-zone value (%).
    pub adjacent_endplate_change_pct: f64,
    /// Voxel size (mm).
    pub spacing_mm: f64,
}

/// Voxel size of the motion-segment models (mm, at least): two vertebrae and a disc at
/// 1.5 mm take about 170 000 equations; at 2 mm about 70 000.
pub const SEGMENT_CHECK_MIN_SPACING_MM: f64 = 2.0;

/// The motion segments of the cemented vertebra `v` with its neighbours in `landmarks`
/// (`cemented`: every cemented level of the scenario; a cemented neighbour is left out with
/// a note, as is the sacrum).
fn adjacent_checks(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
    landmarks: &SpineLandmarks,
    v: &spinetwin_segment::landmarks::VertebraLandmarks,
    fill: &CementFill,
    cemented: &[CementFill],
    spacing_mm: f64,
) -> (Vec<AdjacentCheck>, Vec<String>) {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let s = spacing_mm.max(SEGMENT_CHECK_MIN_SPACING_MM);
    for d in &landmarks.discs {
        let (other, upper) = if d.upper == v.level {
            (d.lower, v.level)
        } else if d.lower == v.level {
            (d.upper, d.upper)
        } else {
            continue;
        };
        let segment = format!("{}-{}", d.upper.name(), d.lower.name());
        if other == Level::S1 {
            notes.push(format!(
                "{segment}: the sacrum is not modelled as a neighbour (its label holds the \
                 whole sacrum)"
            ));
            continue;
        }
        if cemented.iter().any(|c| c.level == other) {
            notes.push(format!(
                "{segment}: {} is cemented too; a segment with both bodies cemented is not \
                 modelled",
                other.name()
            ));
            continue;
        }
        let (Some(w), Some(disc)) = (landmarks.vertebra(other), upper.disc_below_label()) else {
            notes.push(format!("{segment}: no landmarks for {}", other.name()));
            continue;
        };
        let run = |f: f64| {
            segment_compression(
                ct,
                labels,
                v,
                w,
                disc,
                &SegmentTestOptions {
                    spacing_mm: s,
                    cement_fraction: f,
                    cement: fill.cement,
                    ..Default::default()
                },
            )
        };
        match (run(0.0), run(fill.fraction)) {
            (Ok(a), Ok(b)) => out.push(AdjacentCheck {
                segment,
                adjacent_level: other.name().to_string(),
                stiffness_n_per_mm: [a.stiffness_n_per_mm, b.stiffness_n_per_mm],
                adjacent_endplate_p95_per_kn: [
                    a.adjacent_endplate.p95_per_kn,
                    b.adjacent_endplate.p95_per_kn,
                ],
                adjacent_body_p95_per_kn: [a.adjacent_body.p95_per_kn, b.adjacent_body.p95_per_kn],
                adjacent_endplate_change_pct: 100.0
                    * (b.adjacent_endplate.p95_per_kn / a.adjacent_endplate.p95_per_kn - 1.0),
                zone_mm: a.zone_mm,
                joint_voxels_cleared: a.joint_voxels_cleared,
                spacing_mm: s,
            }),
            (Err(e), _) | (_, Err(e)) => notes.push(format!("{segment}: {e}")),
        }
    }
    (out, notes)
}

/// Compresses each cemented vertebra intact and with its fill (`cemented`: level and fill
/// fraction) at voxel size `spacing_mm`. Errors name the level and what went wrong.
pub fn cement_checks(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
    landmarks: &SpineLandmarks,
    cemented: &[CementFill],
    spacing_mm: f64,
) -> Result<Vec<BoneCheck>, String> {
    let mut out = Vec::new();
    for planned in cemented {
        let (level, fill) = (planned.level, planned.fraction);
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
                    cement: planned.cement,
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
            percentile(&mut s, q)
        };
        let (ka, kb) = (a.result.stiffness_n_per_mm, b.result.stiffness_n_per_mm);
        let (adjacent, adjacent_notes) =
            adjacent_checks(ct, labels, landmarks, v, planned, cemented, spacing_mm);
        out.push(BoneCheck {
            adjacent,
            adjacent_notes,
            level: level.name().to_string(),
            fill_fraction: fill,
            cement_modulus_mpa: planned.cement.e_mpa,
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
    let cents: Vec<[f64; 3]> = (0..mesh.num_elements())
        .map(|e| mesh.element_centroid(e))
        .collect();
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

/// One zone of bone next to an implant (around a screw, or under a cage on an endplate),
/// with its stress against its strength in the load case where that ratio is highest.
#[derive(Clone, Debug, Serialize)]
pub struct ImplantZone {
    /// The vertebra.
    pub level: String,
    /// What the zone is next to, e.g. `L4 left screw` or `cage L4-L5 on the L5 superior
    /// endplate`.
    pub zone: String,
    /// `loosening` (around a screw) or `subsidence` (under a cage).
    pub indicator: String,
    /// The load case with the highest 95th-percentile ratio.
    pub worst_case: String,
    /// The zone in that case.
    pub stats: ZoneStats,
    /// Every case, in the order of the hybrid load cases that converged.
    pub cases: Vec<(String, ZoneStats)>,
}

/// The bone checks of a scenario's vertebrae carrying implants (see [`implant_checks`]).
#[derive(Clone, Debug, Default)]
pub struct ImplantChecks {
    /// One per vertebra checked, in the twin's level order.
    pub checks: Vec<ImplantCheck>,
    /// Vertebrae that could not be checked: the level and why.
    pub failed: Vec<String>,
}

/// The bone checks of one vertebra carrying implants.
#[derive(Clone, Debug, Serialize)]
pub struct ImplantCheck {
    /// The vertebra.
    pub level: String,
    /// Voxel size (mm).
    pub spacing_mm: f64,
    /// Thickness of the bone zones evaluated (mm).
    pub zone_mm: f64,
    /// Equations of the voxel model.
    pub equations: usize,
    /// Zones.
    pub zones: Vec<ImplantZone>,
}

/// A cage block's faces on one endplate: block name, superior endplate, face corners.
type CageFaces = (String, bool, Vec<Vec<[f64; 3]>>);

/// The bone around the implants of a scenario, from the loads they carry in its solved
/// hybrid load cases (`results`, with [`CaseResult::implant_loads`]): each vertebra with
/// screws or a cage is put under those loads as a deformable voxel model from the CT
/// (`spinetwin_model::bone_fe::implant_test`). A level that cannot be checked is listed in
/// [`ImplantChecks::failed`] with the level and what went wrong; the others are checked.
pub fn implant_checks(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
    sm: &ScenarioModel,
    results: &[CaseResult],
    spacing_mm: f64,
) -> ImplantChecks {
    let twin = &sm.twin;
    let options = ImplantTestOptions {
        spacing_mm,
        ..Default::default()
    };
    let solved: Vec<&CaseResult> = results.iter().filter(|r| r.converged).collect();
    let mut out = ImplantChecks::default();
    for (b, &level) in twin.levels.iter().enumerate() {
        // One level's failure (a screw outside the bone, a label missing) is reported for
        // that level; the other levels are still checked.
        let check = || -> Result<Option<ImplantCheck>, String> {
            let screws: Vec<&ScrewPlan> = sm.screws.iter().filter(|s| s.level == level).collect();
            // Cage faces on this vertebra, by (block, endplate), from the first solved case.
            let mut blocks: Vec<CageFaces> = Vec::new();
            for r in &solved {
                for l in r.implant_loads.iter().filter(|l| l.body == b) {
                    if let ImplantLoadKind::Endplate {
                        superior, faces, ..
                    } = &l.kind
                    {
                        if !blocks.iter().any(|x| x.0 == l.name && x.1 == *superior) {
                            blocks.push((l.name.clone(), *superior, faces.clone()));
                        }
                    }
                }
            }
            if (screws.is_empty() && blocks.is_empty()) || solved.is_empty() {
                return Ok(None);
            }
            let v = twin
                .file
                .landmarks
                .vertebrae
                .iter()
                .find(|v| v.level == level)
                .ok_or_else(|| format!("{}: no landmarks for this vertebra", level.name()))?;
            // One endplate is held: the screws go with the cages on the first endplate, cages on
            // the other endplate get a model of their own.
            let sides: Vec<bool> = {
                let mut s: Vec<bool> = blocks.iter().map(|x| x.1).collect();
                s.sort_unstable();
                s.dedup();
                s
            };
            let groups: Vec<Option<bool>> = if sides.is_empty() {
                vec![None]
            } else {
                sides.iter().map(|&s| Some(s)).collect()
            };
            let mut zones = Vec::new();
            let mut equations = 0;
            for (g, side) in groups.iter().enumerate() {
                let my_screws: Vec<&ScrewPlan> = if g == 0 { screws.clone() } else { Vec::new() };
                let my_blocks: Vec<&CageFaces> =
                    blocks.iter().filter(|x| Some(x.1) == *side).collect();
                let specs: Vec<ScrewSpec> = my_screws
                    .iter()
                    .map(|s| ScrewSpec {
                        name: format!("{} {} screw", level.name(), s.side.name()),
                        head: s.head,
                        entry: s.entry,
                        tip: s.tip,
                        diameter_mm: s.diameter_mm,
                    })
                    .collect();
                let footprints: Vec<FootprintSpec> = my_blocks
                    .iter()
                    .map(|(name, superior, faces)| {
                        let material = twin
                            .implants
                            .disc_blocks
                            .iter()
                            .find(|d| &d.name == name)
                            .map_or(TITANIUM, |d| Isotropic {
                                e_mpa: d.e,
                                nu: d.nu,
                            });
                        FootprintSpec {
                            name: format!(
                                "{name} on the {} {} endplate",
                                level.name(),
                                if *superior { "superior" } else { "inferior" }
                            ),
                            superior: *superior,
                            faces: faces.clone(),
                            material,
                        }
                    })
                    .collect();
                let mut cases = Vec::new();
                for r in &solved {
                    let screw_loads = my_screws
                        .iter()
                        .map(|s| {
                            let (mut f, mut m) = ([0.0; 3], [0.0; 3]);
                            for l in r.implant_loads.iter().filter(|l| l.body == b) {
                                if let ImplantLoadKind::Rod {
                                    at,
                                    force_n,
                                    moment_nmm,
                                } = &l.kind
                                {
                                    let d: f64 =
                                        (0..3).map(|k| (at[k] - s.head[k]).powi(2)).sum::<f64>();
                                    if d < 1e-6 {
                                        for k in 0..3 {
                                            f[k] += force_n[k];
                                            m[k] += moment_nmm[k];
                                        }
                                    }
                                }
                            }
                            (f, m)
                        })
                        .collect();
                    let fp_loads: Option<Vec<Vec<[f64; 3]>>> = my_blocks
                        .iter()
                        .map(|(name, superior, faces)| {
                            r.implant_loads.iter().find_map(|l| match &l.kind {
                                ImplantLoadKind::Endplate {
                                    superior: s,
                                    forces_n,
                                    ..
                                } if l.body == b
                                    && &l.name == name
                                    && s == superior
                                    && forces_n.len() == faces.len() =>
                                {
                                    Some(forces_n.clone())
                                }
                                _ => None,
                            })
                        })
                        .collect();
                    let Some(fp_loads) = fp_loads else { continue };
                    cases.push(ImplantCase {
                        name: r.case.name.clone(),
                        screws: screw_loads,
                        footprints: fp_loads,
                    });
                }
                let t = implant_test(ct, labels, v, &specs, &footprints, &cases, &options)
                    .map_err(|e| format!("{}: {e}", level.name()))?;
                equations = equations.max(t.equations);
                let zone =
                    |name: &str,
                     indicator: &str,
                     pick: &dyn Fn(&ImplantCaseResult) -> &ZoneStats| {
                        let all: Vec<(String, ZoneStats)> = t
                            .cases
                            .iter()
                            .map(|c| (c.name.clone(), pick(c).clone()))
                            .collect();
                        let worst = all
                            .iter()
                            .max_by(|a, b| a.1.ratio[0].total_cmp(&b.1.ratio[0]))
                            .cloned()
                            .unwrap_or_default();
                        ImplantZone {
                            level: level.name().to_string(),
                            zone: name.to_string(),
                            indicator: indicator.to_string(),
                            worst_case: worst.0,
                            stats: worst.1,
                            cases: all,
                        }
                    };
                for (k, s) in specs.iter().enumerate() {
                    zones.push(zone(&s.name, "loosening", &|c| &c.screws[k]));
                }
                for (k, f) in footprints.iter().enumerate() {
                    zones.push(zone(&f.name, "subsidence", &|c| &c.footprints[k]));
                }
            }
            Ok(Some(ImplantCheck {
                level: level.name().to_string(),
                spacing_mm,
                zone_mm: options.zone_mm.max(spacing_mm),
                equations,
                zones,
            }))
        };
        match check() {
            Ok(Some(c)) => out.checks.push(c),
            Ok(None) => {}
            Err(e) => out.failed.push(e),
        }
    }
    out
}
