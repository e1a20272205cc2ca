//! 3D pictures of solved twins for the reports: the vertebrae (CT surfaces) in their loaded
//! poses, the discs deformed and coloured by von Mises stress, ligament fibres, screws and
//! rods; a left lateral and a posterior view side by side.
//!
//! Vertebra surfaces come from the label map the twin was built from; `build` and `demo`
//! keep them in the twin directory as `meshes/<LEVEL>.stl` (decimated, patient LPS mm) so
//! that `plan` can draw them later.

use anyhow::Result;
use rayon::prelude::*;
use spinetwin_anatomy::Level;
use spinetwin_imaging::preview::RgbImage;
use spinetwin_imaging::Volume;
use spinetwin_mesh::render::{colour_scale, render, Rod, Scene, View};
use spinetwin_mesh::{surface_of_label, SurfaceMesh, SurfaceOptions};
use spinetwin_model::loadcase::Motion;
use spinetwin_model::twin::{CaseResult, Deformed, Twin, TwinFile};
use spinetwin_scenario::apply::ScrewPlan;
use spinetwin_scenario::Snapshot;
use std::collections::HashMap;
use std::path::Path;

/// Vertebra surfaces by level.
pub type BoneSurfaces = Vec<(Level, SurfaceMesh)>;

/// Triangles kept per vertebra surface: enough for a picture a few hundred pixels high.
const BONE_TRIANGLES: usize = 4000;
/// Height of the picture (pixels); each of its two views is as wide as the spine needs.
const PANEL_HEIGHT: usize = 620;
const BACKGROUND: [u8; 3] = [255, 255, 255];
const BONE: [f32; 3] = [0.88, 0.85, 0.78];
const SCREW: [f32; 3] = [0.85, 0.68, 0.25];
const ROD: [f32; 3] = [0.55, 0.62, 0.75];
const CAGE: [f32; 3] = [0.55, 0.35, 0.65];
const FIBRE_TAUT: [f32; 3] = [0.95, 0.5, 0.1];
const FIBRE_SLACK: [f32; 3] = [0.75, 0.72, 0.62];
/// A fibre pulling with more than this (N) is drawn as taut.
const TAUT_N: f64 = 1.0;
/// Share of the disc elements whose stress lies below the top of the colour scale: the
/// scale ends at this quantile so that a few peak elements do not wash out the rest.
const SCALE_QUANTILE: f64 = 0.98;

/// Surfaces of the twin's vertebrae from the label map it was built from (smoothed and
/// decimated; a level whose label is missing is left out).
pub fn bone_surfaces(labels: &Volume<u16>, file: &TwinFile) -> BoneSurfaces {
    let opts = SurfaceOptions {
        target_triangles: Some(BONE_TRIANGLES),
        check_self_intersections: false,
        ..Default::default()
    };
    file.landmarks
        .vertebrae
        .par_iter()
        .filter_map(|v| match surface_of_label(labels, v.label, &opts) {
            Ok(s) => Some((v.level, s.mesh)),
            Err(e) => {
                tracing::warn!("{}: no surface for the pictures: {e}", v.level.name());
                None
            }
        })
        .collect()
}

/// Writes `dir/meshes/<LEVEL>.stl`.
pub fn write_bone_surfaces(dir: &Path, bones: &BoneSurfaces) -> Result<()> {
    for (level, mesh) in bones {
        spinetwin_mesh::io::write_stl(
            &dir.join("meshes").join(format!("{}.stl", level.name())),
            mesh,
            level.name(),
        )?;
    }
    Ok(())
}

/// Reads the vertebra surfaces kept in a twin directory (`None` when it has none: a twin
/// written before pictures existed, or a bare twin.json).
pub fn read_bone_surfaces(twin: &Path, file: &TwinFile) -> Result<Option<BoneSurfaces>> {
    if !twin.is_dir() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for v in &file.landmarks.vertebrae {
        let p = twin.join("meshes").join(format!("{}.stl", v.level.name()));
        if p.exists() {
            out.push((v.level, spinetwin_mesh::io::read_stl(&p)?));
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// The case the pictures show: flexion when it converged (the motion surgeons discuss
/// first), otherwise the first converged case.
pub fn pictured_case(results: &[CaseResult]) -> Option<usize> {
    let ok = |r: &&CaseResult| r.converged && r.deformed.is_some();
    results
        .iter()
        .position(|r| ok(&r) && r.case.moment.is_some_and(|(m, _)| m == Motion::Flexion))
        .or_else(|| results.iter().position(|r| ok(&r)))
}

/// Top of a common stress scale for the given cases (MPa): the largest
/// [`SCALE_QUANTILE`] quantile of their disc element von Mises stresses, rounded up to a
/// round number.
pub fn stress_scale<'a>(cases: impl IntoIterator<Item = &'a CaseResult>) -> f64 {
    let mut top = 0.0f64;
    for r in cases {
        let Some(d) = &r.deformed else { continue };
        let mut v: Vec<f64> = d
            .disc_von_mises
            .iter()
            .flatten()
            .copied()
            .filter(|&s| s > 0.0 && s.is_finite())
            .collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let k = ((v.len() - 1) as f64 * SCALE_QUANTILE).round() as usize;
        top = top.max(v[k]);
    }
    round_up(top.max(1e-3))
}

/// A scale value as people write it (no float noise: `0.05`, not `0.05000000000000001`).
fn round_label(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `x`.
fn round_up(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&v| v >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

/// The box the views frame: the undeformed vertebrae (or disc meshes without surfaces),
/// grown by 10 % so that the loaded spine stays in the picture.
fn frame_box(twin: &Twin, bones: Option<&BoneSurfaces>) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    let mut grow = |p: &[f64; 3]| {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    };
    match bones {
        Some(b) => b.iter().flat_map(|(_, m)| &m.vertices).for_each(&mut grow),
        None => twin
            .discs
            .iter()
            .flat_map(|d| &d.mesh.mesh.nodes)
            .for_each(&mut grow),
    }
    let pad = (0..3).map(|k| hi[k] - lo[k]).fold(0.0, f64::max) * 0.1;
    (lo.map(|v| v - pad), hi.map(|v| v + pad))
}

/// A view along the screen axes `right`, `up` that frames the box `lo..hi`, with the
/// picture's height and the width the box needs (within bounds).
fn panel_view(lo: [f64; 3], hi: [f64; 3], right: [f64; 3], up: [f64; 3]) -> View {
    let ext = |a: [f64; 3]| (0..3).map(|k| (a[k] * (hi[k] - lo[k])).abs()).sum::<f64>();
    let width = (PANEL_HEIGHT as f64 * ext(right) / ext(up).max(1e-9)).ceil() as usize;
    View::fit(
        lo,
        hi,
        right,
        up,
        width.clamp(PANEL_HEIGHT / 3, 2 * PANEL_HEIGHT),
        PANEL_HEIGHT,
        0.03,
    )
}

/// The scene of one deformed twin.
fn scene(
    twin: &Twin,
    bones: Option<&BoneSurfaces>,
    screws: &[ScrewPlan],
    d: &Deformed,
    vmax: f64,
) -> Scene {
    let mut s = Scene::default();
    let body_of = |l: Level| twin.levels.iter().position(|&x| x == l);
    for (level, mesh) in bones.into_iter().flatten() {
        let Some(b) = body_of(*level) else { continue };
        let mut m = mesh.clone();
        // Bone a decompression removed is not drawn: the cut shows as an opening.
        let cuts: Vec<_> = twin
            .implants
            .resections
            .iter()
            .filter(|r| r.level == *level)
            .collect();
        if !cuts.is_empty() {
            let v = &m.vertices;
            m.triangles.retain(|t| {
                let c = [0, 1, 2].map(|a| t.iter().map(|&k| v[k as usize][a]).sum::<f64>() / 3.0);
                !cuts.iter().any(|r| r.contains(c))
            });
        }
        for p in &mut m.vertices {
            *p = d.body_point(twin, b, *p);
        }
        s.add_mesh(&m, |_| BONE);
    }
    for (i, disc) in twin.discs.iter().enumerate() {
        disc_surface(&mut s, twin, i, disc, d, vmax);
    }
    for (f, &force) in twin.fibres.iter().zip(&d.fibre_forces) {
        s.rods.push(Rod {
            a: d.body_point(twin, f.bodies[0], f.ends[0]),
            b: d.body_point(twin, f.bodies[1], f.ends[1]),
            radius: 0.45,
            colour: if force > TAUT_N {
                FIBRE_TAUT
            } else {
                FIBRE_SLACK
            },
        });
    }
    for p in screws {
        let Some(b) = body_of(p.level) else { continue };
        s.rods.push(Rod {
            a: d.body_point(twin, b, p.head),
            b: d.body_point(twin, b, p.tip),
            radius: p.diameter_mm / 2.0,
            colour: SCREW,
        });
    }
    for beam in &twin.implants.beams {
        s.rods.push(Rod {
            a: d.body_point(twin, beam.a.body, beam.a.at),
            b: d.body_point(twin, beam.b.body, beam.b.at),
            radius: beam.section.outer_radius,
            colour: ROD,
        });
    }
    s
}

/// The outer faces of disc `i`'s modelled elements, at their deformed positions, coloured by
/// the nodal mean of the von Mises stress of the adjacent tissue elements; cages in one
/// colour, a fusion mass in the colour of bone.
fn disc_surface(
    s: &mut Scene,
    twin: &Twin,
    i: usize,
    disc: &spinetwin_model::twin::TwinDisc,
    d: &Deformed,
    vmax: f64,
) {
    let mesh = &disc.mesh.mesh;
    let (Some(u), Some(vm)) = (d.disc_displacements.get(i), d.disc_von_mises.get(i)) else {
        return;
    };
    let implant: Vec<usize> = twin.implants.disc_block_elements(i, |_| true).collect();
    let tissue: Vec<usize> = disc
        .mesh
        .annulus_elements
        .iter()
        .chain(&disc.mesh.nucleus_elements)
        .copied()
        .collect();
    let mut sum = vec![0.0; mesh.num_nodes()];
    let mut cnt = vec![0usize; mesh.num_nodes()];
    for &e in &tissue {
        for &n in mesh.element_nodes(e) {
            sum[n] += vm[e];
            cnt[n] += 1;
        }
    }
    // A face is outer when exactly one modelled element has it.
    let mut faces: HashMap<Vec<usize>, (usize, Vec<usize>)> = HashMap::new();
    for &e in tissue.iter().chain(&implant) {
        let nodes = mesh.element_nodes(e);
        for f in mesh.kinds[e].faces() {
            let ids: Vec<usize> = f.iter().map(|&k| nodes[k]).collect();
            let mut key = ids.clone();
            key.sort_unstable();
            faces.entry(key).or_insert((0, ids)).0 += 1;
        }
    }
    let cage: std::collections::HashSet<usize> = twin
        .implants
        .disc_block_elements(i, |k| k == spinetwin_model::twin::DiscBlockKind::Cage)
        .collect();
    // Face -> whether it belongs to a cage (else a fusion mass).
    let is_implant: HashMap<Vec<usize>, bool> = implant
        .iter()
        .flat_map(|&e| {
            let in_cage = cage.contains(&e);
            let nodes = mesh.element_nodes(e);
            mesh.kinds[e].faces().iter().map(move |f| {
                let mut k: Vec<usize> = f.iter().map(|&k| nodes[k]).collect();
                k.sort_unstable();
                (k, in_cage)
            })
        })
        .collect();
    for (key, (count, ids)) in &faces {
        if *count != 1 {
            continue;
        }
        let p: Vec<[f64; 3]> = ids
            .iter()
            .map(|&n| [0, 1, 2].map(|k| mesh.nodes[n][k] + u[n][k]))
            .collect();
        let c: Vec<[f32; 3]> = if let Some(&in_cage) = is_implant.get(key) {
            vec![if in_cage { CAGE } else { BONE }; ids.len()]
        } else {
            ids.iter()
                .map(|&n| {
                    let v = if cnt[n] > 0 {
                        sum[n] / cnt[n] as f64
                    } else {
                        0.0
                    };
                    colour_scale(v / vmax)
                })
                .collect()
        };
        s.add_polygon(&p, &c);
    }
}

/// Left lateral view (anterior to the left) and posterior view of one deformed twin, side
/// by side; `None` when the case has no deformed state.
pub fn picture(
    twin: &Twin,
    bones: Option<&BoneSurfaces>,
    screws: &[ScrewPlan],
    r: &CaseResult,
    vmax: f64,
) -> Option<RgbImage> {
    let d = r.deformed.as_ref()?;
    let sc = scene(twin, bones, screws, d, vmax);
    let (lo, hi) = frame_box(twin, bones);
    // LPS: x left, y posterior, z cranial. Lateral: the viewer on the left looks right,
    // posterior drawn to the right. Posterior view: the viewer behind, the patient's right
    // drawn to the right.
    let views = [
        ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
        ([-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
    ];
    let panels: Vec<RgbImage> = views
        .iter()
        .map(|&(right, up)| {
            let v = panel_view(lo, hi, right, up);
            render(&sc, &v, BACKGROUND)
        })
        .collect();
    let w: usize = panels.iter().map(|p| p.width).sum();
    let h = PANEL_HEIGHT;
    let mut pixels = vec![0u8; w * h * 3];
    let mut x0 = 0;
    for p in &panels {
        for y in 0..h {
            let src = &p.pixels[y * p.width * 3..(y + 1) * p.width * 3];
            let at = (y * w + x0) * 3;
            pixels[at..at + p.width * 3].copy_from_slice(src);
        }
        x0 += p.width;
    }
    Some(RgbImage {
        width: w,
        height: h,
        pixels,
    })
}

/// CSS colours of the stress scale, low to high.
fn legend_stops() -> Vec<String> {
    (0..=10)
        .map(|k| {
            let c = colour_scale(k as f64 / 10.0).map(|v| (v * 255.0).round() as u8);
            format!("rgb({},{},{})", c[0], c[1], c[2])
        })
        .collect()
}

/// A file-name-safe form of a scenario name.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

/// A scenario (or the intact twin) to picture: name, its twin, its screws, its results.
pub type Pictured<'a> = (&'a str, &'a Twin, &'a [ScrewPlan], &'a [CaseResult]);

/// Pictures of every entry under the same load case (the intact twin's [`pictured_case`])
/// and one stress scale. The first entry is the intact twin.
pub fn snapshots(entries: &[Pictured<'_>], bones: Option<&BoneSurfaces>) -> Vec<Snapshot> {
    let Some(first) = entries.first() else {
        return Vec::new();
    };
    let Some(k) = pictured_case(first.3) else {
        return Vec::new();
    };
    let case = first.3[k].case.name.clone();
    let chosen: Vec<Option<&CaseResult>> = entries
        .iter()
        .map(|e| {
            e.3.iter()
                .find(|r| r.case.name == case && r.deformed.is_some())
        })
        .collect();
    let vmax = stress_scale(chosen.iter().flatten().copied());
    let caption = format!(
        "Left: seen from the patient's left (anterior to the left); right: seen from behind. \
Vertebrae {}; discs coloured by von Mises stress; ligament fibres orange when taut, grey when \
slack; screws gold, rods blue-grey, cages purple, a fusion mass bone-coloured. The vertebrae \
are rigid in the hybrid twin; \
bone stress comes from the deformable-bone checks (given the CT).",
        if bones.is_some() {
            "from the CT surfaces"
        } else {
            "not drawn (no surfaces in the twin directory; rebuild it with `spinetwin build`)"
        }
    );
    entries
        .par_iter()
        .zip(chosen.par_iter())
        .enumerate()
        .filter_map(|(k, (&(name, twin, screws, _), r))| {
            let img = picture(twin, bones, screws, (*r)?, vmax)?;
            Some(Snapshot {
                scenario: name.to_string(),
                intact: k == 0,
                case: case.clone(),
                // Numbered: two names with the same slug keep their own files.
                file: format!("snapshots/{k:02}_{}.png", slug(name)),
                png: img.to_png(),
                legend: Some((
                    "disc von Mises stress (MPa)".into(),
                    legend_stops(),
                    "0".into(),
                    format!("{} or more", round_label(vmax)),
                )),
                caption: caption.clone(),
            })
        })
        .collect()
}

/// Writes each snapshot's PNG under `dir`.
pub fn write_snapshots(dir: &Path, shots: &[Snapshot]) -> Result<()> {
    for s in shots {
        spinetwin_core::atomic::write_bytes(&dir.join(&s.file), &s.png)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinetwin_fem::nl::BodyState;

    /// Pixels of a colour class: (disc-scale colours, bone colour) counts in columns `xs`.
    fn classes(img: &RgbImage, xs: std::ops::Range<usize>) -> (usize, usize) {
        let (mut disc, mut bone) = (0, 0);
        for y in 0..img.height {
            for x in xs.clone() {
                let i = (y * img.width + x) * 3;
                let [r, g, b] = [0, 1, 2].map(|k| img.pixels[i + k] as i32);
                // Bone is a warm grey (r >= g >= b, small spread); the stress scale is
                // saturated (blue, cyan, green, yellow or red dominant).
                if (r - b).abs() < 40 && r >= g - 2 && g >= b - 2 && r < 250 {
                    bone += 1;
                } else if (b - r > 60) || (g - r > 40) {
                    disc += 1;
                }
            }
        }
        (disc, bone)
    }

    #[test]
    fn picture_draws_bones_and_stressed_discs_in_their_loaded_pose() {
        let spec = spinetwin_phantom::PhantomSpec {
            levels: "L4-L5".parse().unwrap(),
            ..Default::default()
        };
        let ph = spinetwin_phantom::generate(&spec).unwrap();
        let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap();
        let file = crate::twin::hybrid_file("test", lm);
        let twin = Twin::build(file.clone()).unwrap();
        let bones = bone_surfaces(&ph.labels, &file);
        assert_eq!(bones.len(), twin.levels.len());
        let identity = BodyState {
            translation: [0.0; 3],
            rotation: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            rotation_vector: [0.0; 3],
        };
        let mut d = Deformed {
            bodies: vec![identity.clone(); twin.levels.len()],
            disc_displacements: twin
                .discs
                .iter()
                .map(|x| vec![[0.0; 3]; x.mesh.mesh.num_nodes()])
                .collect(),
            disc_von_mises: twin
                .discs
                .iter()
                .map(|x| vec![0.5; x.mesh.mesh.num_elements()])
                .collect(),
            disc_stress: Vec::new(),
            fibre_forces: vec![0.0; twin.fibres.len()],
            beam_von_mises: Vec::new(),
            facet_pressure: Vec::new(),
        };
        let case = spinetwin_model::loadcase::LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
        let mut r = CaseResult {
            case,
            converged: true,
            failure: None,
            iterations: 1,
            equations: 1,
            seconds: 0.0,
            samples: Vec::new(),
            deformed: Some(d.clone()),
            implant_loads: Vec::new(),
            bone_field: None,
            seated: None,
        };
        let img = picture(&twin, Some(&bones), &[], &r, 1.0).unwrap();
        let (lo, hi) = frame_box(&twin, Some(&bones));
        let lateral = panel_view(lo, hi, [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]);
        let posterior = panel_view(lo, hi, [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]);
        assert_eq!(
            (img.width, img.height),
            (lateral.width + posterior.width, PANEL_HEIGHT)
        );
        for xs in [0..lateral.width, lateral.width..img.width] {
            let (disc, bone) = classes(&img, xs.clone());
            assert!(bone > 5000, "columns {xs:?}: {bone} bone pixels");
            assert!(disc > 300, "columns {xs:?}: {disc} disc pixels");
        }
        // Unstressed discs draw in the low end of the scale, not in the high one.
        let reds = |img: &RgbImage| {
            img.pixels
                .chunks(3)
                .filter(|p| p[0] > 180 && p[1] < 90 && p[2] < 90)
                .count()
        };
        assert_eq!(reds(&img), 0);
        d.disc_von_mises.iter_mut().flatten().for_each(|v| *v = 2.0);
        r.deformed = Some(d.clone());
        let hot = picture(&twin, Some(&bones), &[], &r, 1.0).unwrap();
        assert!(reds(&hot) > 300, "{} red pixels", reds(&hot));
        // Lifting the upper vertebra by 5 mm moves its pixels up in the lateral view: the
        // top row holding bone rises by 5 mm worth of pixels.
        let top_bone_row = |img: &RgbImage| {
            (0..img.height)
                .find(|&y| {
                    (0..lateral.width).any(|x| {
                        let i = (y * img.width + x) * 3;
                        img.pixels[i..i + 3] != BACKGROUND
                    })
                })
                .unwrap()
        };
        let before = top_bone_row(&img);
        d.bodies[0].translation = [0.0, 0.0, 5.0];
        d.disc_von_mises.iter_mut().flatten().for_each(|v| *v = 0.5);
        r.deformed = Some(d);
        let lifted = picture(&twin, Some(&bones), &[], &r, 1.0).unwrap();
        let expect = 5.0 / lateral.units_per_pixel;
        let moved = before as f64 - top_bone_row(&lifted) as f64;
        assert!(
            (moved - expect).abs() <= 2.0,
            "moved {moved} px, expected {expect}"
        );
    }

    #[test]
    fn scale_rounds_up_to_round_numbers() {
        assert_eq!(round_up(0.37), 0.5);
        assert_eq!(round_up(1.0), 1.0);
        assert_eq!(round_up(1.2), 2.0);
        assert_eq!(round_up(2.2), 2.5);
        assert_eq!(round_up(7.0), 10.0);
        assert_eq!(slug("L4-L5 TLIF (left)"), "l4_l5_tlif__left");
        assert_eq!(round_label(0.05000000000000001), "0.05");
        assert_eq!(round_label(2.5), "2.5");
        assert_eq!(round_label(10.0), "10");
    }
}
