//! Bone around implants, with a deformable vertebra from the CT: pedicle screws (loosening
//! indicator) and an interbody cage on an endplate (subsidence indicator).
//!
//! The hybrid twin's vertebrae are rigid; it gives the loads the implants carry (the rod
//! force and moment at each screw head, the force through each face of the cage on the
//! endplate). This sub-model puts one vertebra, resampled from the CT onto its anatomical
//! frame with moduli from its HU, under exactly those loads: screws as titanium cylinders
//! bonded to the bone from the head (where the rod is clamped) to the tip, a cage as a
//! block of its material over its footprint on the endplate. The vertebra is held at the
//! end caps the implants do not load (both endplates when there is no cage), the standard
//! boundary condition of single-vertebra screw and subsidence studies. Every load case
//! reuses one factorisation.
//!
//! Each bone element's compressive yield strength follows from the density of its modulus
//! by the vertebral law of Kopperdahl, Morgan & Keaveny (2002, J Orthop Res 20:801:
//! `sigma_y = 37.4 rho^1.39` MPa, `rho` the QCT K2HPO4-equivalent density in g/cm^3, taken
//! as the ash density, 0.6 of the apparent density). The indicators are the von Mises
//! stress over that strength in the bone around each screw and under each footprint
//! (95th percentile, largest, and the volume share above 1). The law is for cancellous
//! bone: in the cortical shell it underestimates the strength, so ratios there are
//! conservative.

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;
use spinetwin_fem::{solve_linear_static_cases, Constraints, Loads, SolverOptions};

use super::{
    add_end_caps, local_label, percentile, voxel_model, VertebraGrid, VoxelModel,
    VoxelModelOptions, CAP_PMMA,
};
use crate::bone::{BoneMaterial, Isotropic, ASH_TO_APPARENT};
use crate::error::ModelError;

/// Ti-6Al-4V (E 110 GPa, nu 0.3), the usual pedicle screw and cage alloy.
pub const TITANIUM: Isotropic = Isotropic {
    e_mpa: 110_000.0,
    nu: 0.3,
};

/// Compressive yield strength (MPa) of vertebral cancellous bone at QCT (K2HPO4-equivalent)
/// density `rho` (g/cm^3): `37.4 rho^1.39` (Kopperdahl, Morgan & Keaveny 2002, J Orthop Res
/// 20:801); 0 for `rho <= 0`.
pub fn yield_strength_mpa(rho_qct: f64) -> f64 {
    if rho_qct.is_nan() || rho_qct <= 0.0 {
        return 0.0;
    }
    37.4 * rho_qct.powf(1.39)
}

/// A pedicle screw in the vertebra (mm, LPS).
#[derive(Clone, Debug, Serialize)]
pub struct ScrewSpec {
    /// Name (for results).
    pub name: String,
    /// Where the rod is clamped: the load point (outside the bone).
    pub head: [f64; 3],
    /// Entry point on the bone surface.
    pub entry: [f64; 3],
    /// Tip.
    pub tip: [f64; 3],
    /// Diameter (mm).
    pub diameter_mm: f64,
}

/// An interbody cage footprint on one endplate of the vertebra.
#[derive(Clone, Debug, Serialize)]
pub struct FootprintSpec {
    /// Name (for results).
    pub name: String,
    /// True on the superior endplate (the cage lies above the vertebra).
    pub superior: bool,
    /// Faces of the cage on the endplate (corner points, mm, LPS): their projection on the
    /// endplate is the footprint.
    pub faces: Vec<Vec<[f64; 3]>>,
    /// Cage material.
    pub material: Isotropic,
}

/// One load case of an implant test: what each implant puts on the vertebra (patient axes,
/// the vertebra as it lies in the CT).
#[derive(Clone, Debug, Serialize)]
pub struct ImplantCase {
    /// Name (the hybrid load case).
    pub name: String,
    /// Per screw: force (N) and moment about its head (N mm).
    pub screws: Vec<([f64; 3], [f64; 3])>,
    /// Per footprint, per face: the force through the face onto the vertebra (N).
    pub footprints: Vec<Vec<[f64; 3]>>,
}

/// Options of [`implant_test`].
#[derive(Clone, Debug)]
pub struct ImplantTestOptions {
    /// Voxel size (mm).
    pub spacing_mm: f64,
    /// Element type and voxels per element.
    pub mesh: VoxelModelOptions,
    /// HU -> modulus of the bone.
    pub bone: BoneMaterial,
    /// Poisson's ratio of bone.
    pub bone_nu: f64,
    /// Screw material.
    pub screw: Isotropic,
    /// Thickness of the held end caps (mm).
    pub cap_mm: f64,
    /// Height of the cage block above the most protruding endplate point (mm).
    pub cage_mm: f64,
    /// Thickness of the bone zone evaluated around each screw and under each footprint
    /// (mm; at least one voxel is used).
    pub zone_mm: f64,
}

impl Default for ImplantTestOptions {
    fn default() -> Self {
        ImplantTestOptions {
            spacing_mm: 1.0,
            mesh: VoxelModelOptions::default(),
            bone: BoneMaterial::default(),
            bone_nu: 0.3,
            screw: TITANIUM,
            cap_mm: 3.0,
            cage_mm: 3.0,
            zone_mm: 2.0,
        }
    }
}

/// Stress against strength in one zone of bone.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ZoneStats {
    /// Bone elements in the zone.
    pub elements: usize,
    /// Their volume (mm^3).
    pub volume_mm3: f64,
    /// Mean HU of the zone.
    pub mean_hu: f64,
    /// Mean compressive yield strength of the zone (MPa).
    pub mean_strength_mpa: f64,
    /// Von Mises stress: 95th percentile and largest (MPa).
    pub von_mises_mpa: [f64; 2],
    /// Von Mises stress over yield strength: 95th percentile and largest.
    pub ratio: [f64; 2],
    /// Share of the zone's volume whose stress exceeds its strength.
    pub over_yield_fraction: f64,
}

/// Results of one load case.
#[derive(Clone, Debug, Serialize)]
pub struct ImplantCaseResult {
    /// Case name.
    pub name: String,
    /// Per screw.
    pub screws: Vec<ZoneStats>,
    /// Per footprint.
    pub footprints: Vec<ZoneStats>,
    /// Sum of the applied forces (N, local axes).
    pub applied_n: [f64; 3],
    /// Sum of the support reactions (N, local axes); balances `applied_n`.
    pub reaction_n: [f64; 3],
    /// Von Mises stress of every element (MPa).
    #[serde(skip)]
    pub von_mises: Vec<f64>,
}

/// A vertebra with implants under the loads of several cases.
pub struct ImplantTest {
    /// The model in the vertebra's local frame (x left, y posterior, z cranial; mm from the
    /// body centre); labels in [`local_label`].
    pub model: VoxelModel,
    /// Frame: origin and axes (LPS).
    pub frame: [[f64; 3]; 4],
    /// Compressive yield strength of every bone element (MPa; 0 for other elements).
    pub strength_mpa: Vec<f64>,
    /// Bone elements around each screw.
    pub screw_zones: Vec<Vec<usize>>,
    /// Bone elements under each footprint.
    pub footprint_zones: Vec<Vec<usize>>,
    /// Per case.
    pub cases: Vec<ImplantCaseResult>,
    /// Equations solved.
    pub equations: usize,
    /// Wall time of the solves (s).
    pub solve_time_s: f64,
}

/// Nodal forces on `points` (local coordinates) with resultant `force` and moment `moment`
/// about `about`: the force shared equally, the moment as the rigid-rotation distribution
/// `w x r` about the points' centroid (`w = I^-1 M`, `I = sum |r|^2 1 - r r^T`).
pub fn distribute_load(
    points: &[[f64; 3]],
    force: [f64; 3],
    moment: [f64; 3],
    about: [f64; 3],
) -> Vec<[f64; 3]> {
    let n = points.len().max(1) as f64;
    let c: Vector3<f64> = points
        .iter()
        .map(|p| Vector3::from(*p))
        .sum::<Vector3<f64>>()
        / n;
    let f = Vector3::from(force);
    let m_c = Vector3::from(moment) + (Vector3::from(about) - c).cross(&f);
    let mut inertia = Matrix3::zeros();
    for p in points {
        let r = Vector3::from(*p) - c;
        inertia += Matrix3::identity() * r.norm_squared() - r * r.transpose();
    }
    // Points on a line leave the moment about that line unresolved: the pseudo-inverse
    // drops that component, as it must.
    let scale = inertia.trace().max(1e-12);
    let w = inertia
        .pseudo_inverse(1e-12 * scale)
        .map_or(Vector3::zeros(), |inv| inv * m_c);
    points
        .iter()
        .map(|p| (f / n + w.cross(&(Vector3::from(*p) - c))).into())
        .collect()
}

/// Whether `(x, y)` lies inside the polygon `poly` (crossing number).
fn inside(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut c = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        if (a[1] > y) != (b[1] > y) {
            let xc = a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if x < xc {
                c = !c;
            }
        }
    }
    c
}

/// Nodes of the elements labelled `label` on their outermost plane along local z (the
/// highest when `high`, within a quarter voxel `s`); empty without such elements.
fn end_plane_nodes(model: &VoxelModel, label: u16, high: bool, s: f64) -> Vec<usize> {
    let mesh = &model.mesh;
    let mut on = vec![false; mesh.num_nodes()];
    for e in (0..mesh.num_elements()).filter(|&e| model.element_label[e] == label) {
        for &n in mesh.element_nodes(e) {
            on[n] = true;
        }
    }
    let nodes: Vec<usize> = (0..mesh.num_nodes()).filter(|&n| on[n]).collect();
    let z = nodes.iter().map(|&n| mesh.nodes[n][2]);
    let ext = if high {
        z.fold(f64::MIN, f64::max)
    } else {
        z.fold(f64::MAX, f64::min)
    };
    nodes
        .into_iter()
        .filter(|&n| (mesh.nodes[n][2] - ext).abs() <= 0.25 * s)
        .collect()
}

/// Puts one segmented vertebra of a CT under the loads its implants carry (see the module
/// documentation). `cases` give the loads in the order of `screws` and `footprints`.
pub fn implant_test(
    ct: &spinetwin_imaging::Volume<f32>,
    labels: &spinetwin_imaging::Volume<u16>,
    vertebra: &spinetwin_segment::landmarks::VertebraLandmarks,
    screws: &[ScrewSpec],
    footprints: &[FootprintSpec],
    cases: &[ImplantCase],
    options: &ImplantTestOptions,
) -> Result<ImplantTest, ModelError> {
    let name = vertebra.level.name();
    let bad = |m: String| Err(ModelError::InvalidInput(format!("{name}: {m}")));
    if screws.is_empty() && footprints.is_empty() {
        return bad("an implant test needs a screw or a cage footprint".into());
    }
    if footprints.iter().any(|f| f.superior) && footprints.iter().any(|f| !f.superior) {
        return bad(
            "cages on both endplates leave no endplate to hold the vertebra by; test each \
             endplate on its own"
                .into(),
        );
    }
    // The cage voxels share one label, so one material: two cages of different materials
    // on one endplate must be tested separately rather than silently given the first's.
    if footprints
        .windows(2)
        .any(|w| w[0].material != w[1].material)
    {
        return bad(format!(
            "the cages on this endplate differ in material ({}); test each on its own",
            footprints
                .iter()
                .map(|f| format!("{}: E {} MPa", f.name, f.material.e_mpa))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if cases.is_empty() {
        return bad("an implant test needs at least one load case".into());
    }
    for c in cases {
        if c.screws.len() != screws.len()
            || c.footprints.len() != footprints.len()
            || c.footprints
                .iter()
                .zip(footprints)
                .any(|(l, f)| l.len() != f.faces.len())
        {
            return bad(format!(
                "load case {} does not match the implants ({} screws, {} footprints)",
                c.name,
                screws.len(),
                footprints.len()
            ));
        }
    }
    for sc in screws {
        if !(sc.diameter_mm.is_finite() && sc.diameter_mm > 0.0) {
            return bad(format!(
                "screw {} has diameter {} mm",
                sc.name, sc.diameter_mm
            ));
        }
    }
    let s = options.spacing_mm;
    if options.cap_mm < s || options.cage_mm < s {
        return bad(format!(
            "the end caps ({} mm) and the cage block ({} mm) must be at least one voxel ({s} mm) \
             thick",
            options.cap_mm, options.cage_mm
        ));
    }
    options.bone.validate()?;
    // The grid reaches every screw's head and tip, with its radius around them.
    let reach: Vec<[f64; 3]> = screws
        .iter()
        .flat_map(|sc| {
            let r = 0.5 * sc.diameter_mm;
            [sc.head, sc.tip].into_iter().flat_map(move |p| {
                (0..3).flat_map(move |a| {
                    [-r, r].map(|d| {
                        let mut q = p;
                        q[a] += d;
                        q
                    })
                })
            })
        })
        .collect();
    let pad = options.cap_mm.max(options.cage_mm);
    let grid = VertebraGrid::new(ct, labels, vertebra, s, pad, &reach)?;
    let mut lab = grid.lab.clone();
    let dims = grid.dims;
    // Screws: every voxel within the radius of the head-tip segment.
    let axes: Vec<(Vector3<f64>, Vector3<f64>, f64, f64)> = screws
        .iter()
        .map(|sc| {
            let h = Vector3::from(grid.to_local(sc.head));
            let t = Vector3::from(grid.to_local(sc.tip));
            let len = (t - h).norm();
            (h, (t - h) / len.max(1e-12), len, 0.5 * sc.diameter_mm)
        })
        .collect();
    let on_axis = |p: Vector3<f64>, a: &(Vector3<f64>, Vector3<f64>, f64, f64)| {
        let t = (p - a.0).dot(&a.1);
        let r = (p - a.0 - a.1 * t).norm();
        (t, r)
    };
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                let p = Vector3::from(grid.local([i, j, k]));
                if axes.iter().any(|a| {
                    let (t, r) = on_axis(p, a);
                    (0.0..=a.2).contains(&t) && r <= a.3
                }) {
                    lab.set(i, j, k, local_label::SCREW);
                }
            }
        }
    }
    // Footprints in local (x, y).
    let polys: Vec<Vec<Vec<[f64; 2]>>> = footprints
        .iter()
        .map(|f| {
            f.faces
                .iter()
                .map(|face| {
                    face.iter()
                        .map(|p| {
                            let l = grid.to_local(*p);
                            [l[0], l[1]]
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let in_footprint = |fp: usize, x: f64, y: f64| polys[fp].iter().any(|p| inside(p, x, y));
    let is_body = |l: u16| l == local_label::BODY;
    // Caps where nothing loads the endplate; the cage block over its footprint otherwise.
    let cage_superior = footprints.first().map(|f| f.superior);
    let caps = match cage_superior {
        None => [local_label::CAP_LOW, local_label::CAP_HIGH],
        Some(true) => [local_label::CAP_LOW, 0],
        Some(false) => [0, local_label::CAP_HIGH],
    };
    let cap_margin = (options.cap_mm / s).round() as usize;
    add_end_caps(&mut lab, |_, l| is_body(l), caps, cap_margin)?;
    // Endplate height of each footprint column (the body's extreme voxel on the cage side).
    let mut column_top: Vec<Option<usize>> = vec![None; dims[0] * dims[1]];
    if let Some(sup) = cage_superior {
        let start = grid.start;
        let in_any = |i: usize, j: usize| {
            let (x, y) = (start[0] + i as f64 * s, start[1] + j as f64 * s);
            (0..footprints.len()).any(|f| in_footprint(f, x, y))
        };
        let cage_margin = (options.cage_mm / s).round() as usize;
        let body_col = |[i, j, _]: [usize; 3], l: u16| is_body(l) && in_any(i, j);
        let ends = if sup {
            [0, local_label::CAGE]
        } else {
            [local_label::CAGE, 0]
        };
        let counts = add_end_caps(&mut lab, body_col, ends, cage_margin)?;
        if counts[usize::from(sup)] == 0 {
            return bad(
                "the cage footprint does not cover any of the vertebral body: the cage faces \
                 and the landmarks do not match"
                    .into(),
            );
        }
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                if !in_any(i, j) {
                    continue;
                }
                let ks = (0..dims[2]).filter(|&k| is_body(grid.lab.get(i, j, k)));
                column_top[j * dims[0] + i] = if sup { ks.max() } else { ks.min() };
            }
        }
    }
    let bone = &options.bone;
    let (screw_mat, nu) = (options.screw, options.bone_nu);
    let cage_mat = footprints.first().map_or(TITANIUM, |f| f.material);
    let model = voxel_model(
        &grid.hu,
        &lab,
        |l| l != 0,
        |l, h| match l {
            local_label::SCREW => screw_mat,
            local_label::CAGE => cage_mat,
            local_label::CAP_LOW | local_label::CAP_HIGH => CAP_PMMA,
            _ => Isotropic {
                e_mpa: bone.modulus(h),
                nu,
            },
        },
        &options.mesh,
    )?;
    let mesh = &model.mesh;
    let ne = mesh.num_elements();
    let corners = |e: usize| {
        let n = mesh.element_nodes(e);
        if n.len() == 10 {
            &n[..4]
        } else {
            n
        }
    };
    let centroid = |e: usize| Vector3::from(mesh.element_centroid(e));
    let is_bone = |l: u16| l == local_label::BODY || l == local_label::POSTERIOR;
    // Strength from the density of the modulus each element actually has (clamped moduli
    // give the strength of the density they stand for).
    let strength_mpa: Vec<f64> = (0..ne)
        .map(|e| {
            if is_bone(model.element_label[e]) {
                let rho_app = bone.law.density(model.material.youngs[e]);
                yield_strength_mpa(ASH_TO_APPARENT * rho_app)
            } else {
                0.0
            }
        })
        .collect();
    let zone = options.zone_mm.max(s);
    let element_volume = |e: usize| -> f64 {
        let c = corners(e);
        let p: Vec<Vector3<f64>> = c.iter().map(|&n| Vector3::from(mesh.nodes[n])).collect();
        if p.len() == 4 {
            ((p[1] - p[0]).cross(&(p[2] - p[0])))
                .dot(&(p[3] - p[0]))
                .abs()
                / 6.0
        } else {
            let h = (options.mesh.step as f64) * s;
            h * h * h
        }
    };
    let screw_zones: Vec<Vec<usize>> = axes
        .iter()
        .map(|a| {
            (0..ne)
                .filter(|&e| is_bone(model.element_label[e]))
                .filter(|&e| {
                    let (t, r) = on_axis(centroid(e), a);
                    (0.0..=a.2).contains(&t) && r <= a.3 + zone
                })
                .collect()
        })
        .collect();
    let footprint_zones: Vec<Vec<usize>> = (0..footprints.len())
        .map(|f| {
            (0..ne)
                .filter(|&e| model.element_label[e] == local_label::BODY)
                .filter(|&e| {
                    let c = centroid(e);
                    if !in_footprint(f, c.x, c.y) {
                        return false;
                    }
                    let i = ((c.x - grid.start[0]) / s).round();
                    let j = ((c.y - grid.start[1]) / s).round();
                    if i < 0.0 || j < 0.0 || i >= dims[0] as f64 || j >= dims[1] as f64 {
                        return false;
                    }
                    let Some(top) = column_top[j as usize * dims[0] + i as usize] else {
                        return false;
                    };
                    let z_top = grid.start[2] + top as f64 * s;
                    (c.z - z_top).abs() <= zone
                })
                .collect()
        })
        .collect();
    for (k, z) in screw_zones.iter().enumerate() {
        if z.is_empty() {
            return bad(format!(
                "screw {} has no bone around it: the screw misses the vertebra",
                screws[k].name
            ));
        }
    }
    for (k, z) in footprint_zones.iter().enumerate() {
        if z.is_empty() {
            return bad(format!(
                "{}: no body bone under the cage footprint; the cage faces and the landmarks \
                 do not match",
                footprints[k].name
            ));
        }
    }
    // Supports: the outer planes of the held caps.
    let held: Vec<usize> = [(local_label::CAP_LOW, false), (local_label::CAP_HIGH, true)]
        .into_iter()
        .flat_map(|(cap, high)| end_plane_nodes(&model, cap, high, s))
        .collect();
    if held.len() < 3 {
        return bad("no end cap to hold the vertebra by".into());
    }
    let mut bc = Constraints::new();
    bc.fix(&held, [true; 3]);
    // Load points: the head-end section of each screw; the top (or bottom) plane of the
    // cage block, node by node assigned to the face above it.
    let screw_nodes: Vec<Vec<usize>> = axes
        .iter()
        .map(|a| {
            let mut on = vec![false; mesh.num_nodes()];
            for e in (0..ne).filter(|&e| model.element_label[e] == local_label::SCREW) {
                for &n in mesh.element_nodes(e) {
                    let (t, r) = on_axis(Vector3::from(mesh.nodes[n]), a);
                    if r <= a.3 + s && t <= 0.5 * s {
                        on[n] = true;
                    }
                }
            }
            (0..mesh.num_nodes()).filter(|&n| on[n]).collect()
        })
        .collect();
    for (k, n) in screw_nodes.iter().enumerate() {
        if n.len() < 3 {
            return bad(format!(
                "screw {}: its head section has {} nodes at {s} mm voxels; use smaller voxels",
                screws[k].name,
                n.len()
            ));
        }
    }
    let cage_top = end_plane_nodes(&model, local_label::CAGE, cage_superior.unwrap_or(true), s);
    if cage_superior.is_some() && cage_top.len() < 3 {
        return bad(format!(
            "the cage block's loaded surface has {} nodes; use smaller voxels or a finer mesh \
             step",
            cage_top.len()
        ));
    }
    // Tributary weight of each node of the loaded plane: the number of cage elements it
    // corners there (1 at a corner of the plane, 2 on its edge, 4 inside), so a uniform
    // face load reaches the nodes as the consistent nodal forces of a uniform pressure.
    let mut tributary = vec![0.0f64; mesh.num_nodes()];
    {
        let on_top: std::collections::HashSet<usize> = cage_top.iter().copied().collect();
        for e in (0..ne).filter(|&e| model.element_label[e] == local_label::CAGE) {
            for &n in corners(e) {
                if on_top.contains(&n) {
                    tributary[n] += 1.0;
                }
            }
        }
    }
    // Face -> nodes of the cage's loaded plane (the first face containing a node takes it;
    // a face over no node gives its force to the nearest node).
    let face_nodes: Vec<Vec<Vec<usize>>> = polys
        .iter()
        .map(|faces| {
            let mut taken = vec![false; mesh.num_nodes()];
            faces
                .iter()
                .map(|poly| {
                    let mut mine: Vec<usize> = cage_top
                        .iter()
                        .copied()
                        .filter(|&n| !taken[n] && inside(poly, mesh.nodes[n][0], mesh.nodes[n][1]))
                        .collect();
                    if mine.is_empty() && !cage_top.is_empty() {
                        let c = poly
                            .iter()
                            .fold([0.0; 2], |a, p| [a[0] + p[0], a[1] + p[1]]);
                        let c = [c[0] / poly.len() as f64, c[1] / poly.len() as f64];
                        let d = |n: usize| {
                            (mesh.nodes[n][0] - c[0]).powi(2) + (mesh.nodes[n][1] - c[1]).powi(2)
                        };
                        mine.push(
                            *cage_top
                                .iter()
                                .min_by(|&&a, &&b| d(a).total_cmp(&d(b)))
                                .expect("non-empty"),
                        );
                    }
                    for &n in &mine {
                        taken[n] = true;
                    }
                    mine
                })
                .collect()
        })
        .collect();
    let mut all_loads = Vec::with_capacity(cases.len());
    let mut applied = Vec::with_capacity(cases.len());
    for c in cases {
        let mut loads = Loads::new();
        let mut total = Vector3::zeros();
        for (k, (f, m)) in c.screws.iter().enumerate() {
            let (fl, ml) = (grid.vector_to_local(*f), grid.vector_to_local(*m));
            let pts: Vec<[f64; 3]> = screw_nodes[k].iter().map(|&n| mesh.nodes[n]).collect();
            let head: [f64; 3] = axes[k].0.into();
            for (&n, v) in screw_nodes[k]
                .iter()
                .zip(distribute_load(&pts, fl, ml, head))
            {
                loads.nodal_force(n, v);
            }
            total += Vector3::from(fl);
        }
        for (fp, forces) in c.footprints.iter().enumerate() {
            for (nodes, f) in face_nodes[fp].iter().zip(forces) {
                let fl = Vector3::from(grid.vector_to_local(*f));
                total += fl;
                let w: f64 = nodes.iter().map(|&n| tributary[n].max(1e-3)).sum();
                for &n in nodes {
                    loads.nodal_force(n, (fl * (tributary[n].max(1e-3) / w)).into());
                }
            }
        }
        all_loads.push(loads);
        applied.push(total);
    }
    let t0 = std::time::Instant::now();
    let sols = solve_linear_static_cases(
        mesh,
        &model.material,
        &bc,
        &all_loads,
        &SolverOptions::default(),
    )?;
    let mut results = Vec::with_capacity(cases.len());
    let equations = sols.first().map_or(0, |s| s.num_equations);
    for ((c, sol), total) in cases.iter().zip(sols).zip(applied) {
        if !sol.ok {
            return bad(format!(
                "the linear solve of case {} did not converge (relative residual {:.1e})",
                c.name, sol.relative_residual
            ));
        }
        let vm: Vec<f64> =
            spinetwin_fem::post::element_results(mesh, &model.material, &sol.displacements)?
                .iter()
                .map(|r| r.von_mises)
                .collect();
        let stats = |zone: &[usize]| -> ZoneStats {
            let vol: Vec<f64> = zone.iter().map(|&e| element_volume(e)).collect();
            let v_total: f64 = vol.iter().sum();
            let mut s_vm: Vec<f64> = zone.iter().map(|&e| vm[e]).collect();
            let mut ratio: Vec<f64> = zone
                .iter()
                .map(|&e| vm[e] / strength_mpa[e].max(1e-6))
                .collect();
            let over: f64 = zone
                .iter()
                .zip(&vol)
                .filter(|(&e, _)| vm[e] > strength_mpa[e])
                .fold(0.0, |a, (_, v)| a + v);
            let n = zone.len().max(1) as f64;
            ZoneStats {
                elements: zone.len(),
                volume_mm3: v_total,
                mean_hu: zone.iter().map(|&e| model.element_value[e]).sum::<f64>() / n,
                mean_strength_mpa: zone.iter().map(|&e| strength_mpa[e]).sum::<f64>() / n,
                von_mises_mpa: [
                    percentile(&mut s_vm, 0.95),
                    s_vm.last().copied().unwrap_or(f64::NAN),
                ],
                ratio: [
                    percentile(&mut ratio, 0.95),
                    ratio.last().copied().unwrap_or(f64::NAN),
                ],
                over_yield_fraction: over / v_total.max(1e-12),
            }
        };
        let reaction = held.iter().fold(Vector3::zeros(), |a, &n| {
            a + Vector3::from(sol.reactions[n])
        });
        // Every applied load must reach the supports: a load on a node the mesh dropped
        // would vanish silently.
        if (reaction + total).norm() > 1e-6 * total.norm().max(1.0) {
            return bad(format!(
                "case {}: the supports carry {:.3?} N against {:.3?} N applied; a load missed \
                 the mesh",
                c.name, -reaction, total
            ));
        }
        results.push(ImplantCaseResult {
            name: c.name.clone(),
            screws: screw_zones.iter().map(|z| stats(z)).collect(),
            footprints: footprint_zones.iter().map(|z| stats(z)).collect(),
            applied_n: total.into(),
            reaction_n: reaction.into(),
            von_mises: vm,
        });
    }
    Ok(ImplantTest {
        frame: grid.frame,
        strength_mpa,
        screw_zones,
        footprint_zones,
        cases: results,
        equations,
        solve_time_s: t0.elapsed().as_secs_f64(),
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributed_load_has_the_requested_resultant_and_moment() {
        let pts: Vec<[f64; 3]> = (0..8)
            .map(|i| {
                let a = i as f64 * std::f64::consts::FRAC_PI_4;
                [3.0 * a.cos(), 3.0 * a.sin(), 0.5 * (i % 2) as f64]
            })
            .collect();
        let (f, m, about) = ([10.0, -4.0, 25.0], [300.0, -120.0, 45.0], [1.0, 2.0, 10.0]);
        let loads = distribute_load(&pts, f, m, about);
        let mut sf = Vector3::zeros();
        let mut sm = Vector3::zeros();
        for (p, l) in pts.iter().zip(&loads) {
            sf += Vector3::from(*l);
            sm += (Vector3::from(*p) - Vector3::from(about)).cross(&Vector3::from(*l));
        }
        assert!((sf - Vector3::from(f)).norm() < 1e-9, "{sf:?}");
        assert!((sm - Vector3::from(m)).norm() < 1e-6, "{sm:?}");
    }

    #[test]
    fn strength_law_and_point_in_polygon() {
        // 37.4 rho^1.39 at 0.2 g/cm^3 (a typical lumbar cancellous QCT density).
        assert!((yield_strength_mpa(0.2) - 37.4 * 0.2f64.powf(1.39)).abs() < 1e-12);
        assert_eq!(yield_strength_mpa(-0.1), 0.0);
        let sq = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        assert!(inside(&sq, 1.0, 1.0) && !inside(&sq, 3.0, 1.0) && !inside(&sq, 1.0, -0.5));
    }
}
