//! Intervertebral disc mesher: a structured hexahedral mesh lofted between the two facing
//! endplate outlines, with the nucleus in the middle, annulus lamellae around it and two
//! families of collagen fibre directions per annulus element.
//!
//! # Construction
//!
//! * Disc axis `a` = normalised `lower.normal - upper.normal` (the lower endplate's normal
//!   points up, the upper's down). The in-plane basis starts at the anterior direction, the
//!   mean of the two outlines' first points (anterior midline) seen from their centres.
//! * Each outline is resampled at `n_circ` equal angles about its own centre (angle measured
//!   in the plane normal to `a`, counter-clockwise seen from above, starting anterior), so
//!   node `j` of the upper rim faces node `j` of the lower rim. The resampled rim is then
//!   scaled about the centre so that it encloses the same (projected) area as the input
//!   outline: a 24-gon inscribed in a circle loses 1.1 % of the area, the endplate does not.
//!   This needs outlines that are star-shaped about their centres (every ray from the centre
//!   crosses the rim once); a real endplate is.
//! * Interior points of an endplate surface are `centre + r (rim - centre)`, a ruled surface
//!   through the centre and the rim. Rings sit at radius fractions `r`: the nucleus boundary
//!   at `sqrt(nucleus_area_fraction)` (area scales with `r^2`, so the nucleus takes exactly
//!   that fraction of the disc area), `n_radial_nucleus` rings inside it and
//!   `n_radial_annulus` lamella rings outside.
//! * Layers interpolate linearly between matched upper and lower surface points.
//! * Elements: Hex8 (Abaqus C3D8 order: bottom face counter-clockwise seen from the top,
//!   then the top face) everywhere, Wedge6 (C3D6) in the ring touching the axis.
//!
//! # Fibres
//!
//! Annulus collagen runs in the lamella's circumferential-axial plane at about +-30 deg to
//! the transverse plane (24-30 deg, Gruber et al. 2024, Front Bioeng Biotechnol
//! 12:1391957; +-31 deg in their calibrated L4-L5 HGO set), alternating sign from one
//! lamella to the next. Each annulus element carries two unit directions: family 0 is the
//! lamella's own direction (`+angle` on even rings counted from the nucleus, `-angle` on odd
//! rings), family 1 the crossing one; a two-family (HGO) material uses both, a one-family
//! material uses family 0 and gets the alternating lay-up.

use crate::error::ModelError;
use spinetwin_fem::{ElementKind, Mesh};
use spinetwin_segment::landmarks::{Endplate, P3};

/// Meshing parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiscMeshParams {
    /// Nodes around each ring (>= 8, default 24).
    pub n_circ: usize,
    /// Element rings across the annulus (lamella groups, >= 1, default 4).
    pub n_radial_annulus: usize,
    /// Element rings across the nucleus, the innermost being wedges (>= 1, default 2).
    pub n_radial_nucleus: usize,
    /// Element layers through the height (>= 1, default 4).
    pub n_layers: usize,
    /// Nucleus share of the disc cross-section area, 0.3..=0.5 (default 0.4).
    pub nucleus_area_fraction: f64,
    /// Fibre angle to the transverse plane (deg, user-facing), 0..=60 (default 30).
    pub fibre_angle_deg: f64,
    /// Posterior shift of the nucleus, as a fraction 0..=0.6 of the annulus width at the
    /// anterior midline (default 0: centred). The nucleus centroid of lumbar discs lies
    /// posterior of the disc centroid, which makes the anterior annulus the wider one
    /// (Yang, Um, Lu & O'Connell 2019, J Biomech Eng 141:051004: the position changes the
    /// flexion-extension response). The nucleus keeps its area; the annulus rings blend
    /// from the shifted nucleus boundary to the unshifted rim.
    #[serde(default)]
    pub nucleus_posterior_shift: f64,
}

impl Default for DiscMeshParams {
    fn default() -> Self {
        DiscMeshParams {
            n_circ: 24,
            n_radial_annulus: 4,
            n_radial_nucleus: 2,
            n_layers: 4,
            nucleus_area_fraction: 0.4,
            fibre_angle_deg: 30.0,
            nucleus_posterior_shift: 0.0,
        }
    }
}

impl DiscMeshParams {
    /// Checks every parameter; the error names the bad one and the allowed range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::InvalidInput(m));
        if self.n_circ < 8 || self.n_circ > 1024 {
            return bad(format!("n_circ = {} must be in 8..=1024", self.n_circ));
        }
        if self.n_radial_annulus == 0 || self.n_radial_annulus > 64 {
            return bad(format!(
                "n_radial_annulus = {} must be in 1..=64",
                self.n_radial_annulus
            ));
        }
        if self.n_radial_nucleus == 0 || self.n_radial_nucleus > 64 {
            return bad(format!(
                "n_radial_nucleus = {} must be in 1..=64",
                self.n_radial_nucleus
            ));
        }
        if self.n_layers == 0 || self.n_layers > 64 {
            return bad(format!("n_layers = {} must be in 1..=64", self.n_layers));
        }
        let f = self.nucleus_area_fraction;
        if !(0.3..=0.5).contains(&f) {
            return bad(format!(
                "nucleus_area_fraction = {f} must be in 0.3..=0.5 (the nucleus is 30-50 % of the disc area)"
            ));
        }
        let a = self.fibre_angle_deg;
        if !(0.0..=60.0).contains(&a) {
            return bad(format!("fibre_angle_deg = {a} must be in 0..=60"));
        }
        let sh = self.nucleus_posterior_shift;
        if !(0.0..=0.6).contains(&sh) {
            return bad(format!(
                "nucleus_posterior_shift = {sh} must be in 0..=0.6 (a fraction of the annulus width)"
            ));
        }
        Ok(())
    }
}

/// A meshed disc.
#[derive(Clone, Debug)]
pub struct DiscMesh {
    /// The mesh (mm, LPS): Hex8 and Wedge6 elements; node sets `upper_endplate`,
    /// `lower_endplate`, element sets `nucleus`, `annulus`.
    pub mesh: Mesh,
    /// Nodes on the upper endplate surface (the top layer).
    pub upper_nodes: Vec<usize>,
    /// Nodes on the lower endplate surface (the bottom layer).
    pub lower_nodes: Vec<usize>,
    /// Elements of the nucleus.
    pub nucleus_elements: Vec<usize>,
    /// Elements of the annulus.
    pub annulus_elements: Vec<usize>,
    /// Lamella ring of each annulus element (0 = next to the nucleus), parallel to
    /// `annulus_elements`.
    pub lamella: Vec<usize>,
    /// Two unit fibre directions (reference configuration) per annulus element, parallel to
    /// `annulus_elements`. See the module documentation.
    pub fibre_directions: Vec<[[f64; 3]; 2]>,
    /// Disc height (mm) along the disc axis at the anterior rim, the centre and the
    /// posterior rim.
    pub height_mm: [f64; 3],
    /// Whether the disc had to be meshed along its axis from the mean outline (see
    /// [`mesh_disc`]).
    pub lofted_along_axis: bool,
    /// Volume of the mesh (mm^3).
    pub volume_mm3: f64,
    /// Mid-height cross-section area of the nucleus (mm^2), projected normal to the axis.
    pub nucleus_area_mm2: f64,
    /// Mid-height cross-section area of the whole disc (mm^2), projected normal to the axis.
    pub disc_area_mm2: f64,
    /// Unit disc axis (from the lower to the upper endplate).
    pub axis: [f64; 3],
}

/// Meshes the disc between `upper` (the inferior endplate of the vertebra above, normal
/// pointing down) and `lower` (the superior endplate of the vertebra below, normal up).
///
/// Each endplate's own outline is lofted to the other's. Where that leaves an element
/// inverted (rims offset against each other by more than the disc is high, as strongly
/// wedged endplates fitted on coarse voxels give), the disc is meshed again along its axis
/// from the mean of the two outlines, projected onto each endplate's plane
/// ([`DiscMesh::lofted_along_axis`]): every edge through the height then runs along the
/// axis, at the cost of the endplates' concavity and outline differences.
pub fn mesh_disc(
    upper: &Endplate,
    lower: &Endplate,
    params: &DiscMeshParams,
) -> Result<DiscMesh, ModelError> {
    match mesh_disc_with(upper, lower, params, false) {
        Ok(d) => Ok(d),
        Err(MeshFail::Other(e)) => Err(e),
        Err(MeshFail::Inverted(m)) => mesh_disc_with(upper, lower, params, true).map_err(|e| {
            let m2 = match e {
                MeshFail::Inverted(m2) => m2,
                MeshFail::Other(e) => e.to_string(),
            };
            ModelError::InvalidGeometry(format!(
                "{m} (and lofted along the disc axis from the mean outline: {m2})"
            ))
        }),
    }
}

/// Why one meshing attempt failed: an inverted element (which the loft along the axis
/// may avoid) or anything else.
enum MeshFail {
    Inverted(String),
    Other(ModelError),
}

impl From<ModelError> for MeshFail {
    fn from(e: ModelError) -> Self {
        MeshFail::Other(e)
    }
}

fn mesh_disc_with(
    upper: &Endplate,
    lower: &Endplate,
    params: &DiscMeshParams,
    along_axis: bool,
) -> Result<DiscMesh, MeshFail> {
    params.validate()?;
    check_endplate("upper", upper)?;
    check_endplate("lower", lower)?;
    let axis = normalize(sub(lower.normal, upper.normal)).ok_or_else(|| {
        ModelError::InvalidGeometry(
            "the endplate normals cancel: the upper normal must point down towards the disc \
             and the lower normal up"
                .into(),
        )
    })?;
    if dot(axis, lower.normal) < 0.5 || dot(axis, upper.normal) > -0.5 {
        return Err(MeshFail::Other(ModelError::InvalidGeometry(format!(
            "the endplates do not face each other (upper normal {:?}, lower normal {:?}): \
             the upper endplate's normal must point down and the lower's up",
            upper.normal, lower.normal
        ))));
    }
    let ant = add(
        in_plane(sub(upper.outline[0], upper.centre), axis),
        in_plane(sub(lower.outline[0], lower.centre), axis),
    );
    let e1 = normalize(ant).ok_or_else(|| {
        ModelError::InvalidGeometry(
            "the outlines' first points are not away from the centres: they must start at the \
             anterior midline"
                .into(),
        )
    })?;
    let e2 = cross(axis, e1);
    let basis = Basis { e1, e2 };

    let nc = params.n_circ;
    let mut up_rim = resample_rim("upper", upper, &basis, nc)?;
    let mut lo_rim = resample_rim("lower", lower, &basis, nc)?;
    let (mut up_centre, mut lo_centre) = (upper.centre, lower.centre);
    if along_axis {
        // The mean outline (in-plane offsets from each centre, averaged, about the mean
        // centre), carried along the axis onto each endplate's plane.
        let cm = scale(add(upper.centre, lower.centre), 0.5);
        let onto = |ep: &Endplate, x: P3| -> Option<P3> {
            let den = dot(axis, ep.normal);
            (den.abs() > 1e-6).then(|| add(x, scale(axis, dot(sub(ep.centre, x), ep.normal) / den)))
        };
        let mean: Vec<P3> = (0..nc)
            .map(|j| {
                let (du, dl) = (sub(up_rim[j], upper.centre), sub(lo_rim[j], lower.centre));
                add(cm, scale(add(in_plane(du, axis), in_plane(dl, axis)), 0.5))
            })
            .collect();
        let project = |ep: &Endplate| -> Result<(P3, Vec<P3>), ModelError> {
            let bad = || {
                ModelError::InvalidGeometry("an endplate plane is parallel to the disc axis".into())
            };
            let c = onto(ep, cm).ok_or_else(bad)?;
            let rim = mean
                .iter()
                .map(|&x| onto(ep, x).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((c, rim))
        };
        (up_centre, up_rim) = project(upper)?;
        (lo_centre, lo_rim) = project(lower)?;
    }

    // Ring radius fractions: 0 (axis), nucleus rings, boundary, annulus rings, rim = 1.
    let (nn, na) = (params.n_radial_nucleus, params.n_radial_annulus);
    let rn = params.nucleus_area_fraction.sqrt();
    let mut radii = vec![0.0];
    radii.extend((1..=nn).map(|k| rn * k as f64 / nn as f64));
    radii.extend((1..=na).map(|k| rn + (1.0 - rn) * k as f64 / na as f64));
    let nr = nn + na; // rings beyond the axis node
    let per_layer = 1 + nr * nc;
    let nl = params.n_layers;

    // Posterior shift of ring k: full for the nucleus (and the axis), blending to zero at
    // the rim across the annulus rings.
    let shift_weight = |k: usize| -> f64 {
        if k <= nn {
            1.0
        } else {
            (nr - k) as f64 / na as f64
        }
    };
    let shift_of = |centre: P3, rim: &[P3]| -> P3 {
        let r_ant = dot(sub(rim[0], centre), e1).max(0.0);
        scale(e1, -params.nucleus_posterior_shift * (1.0 - rn) * r_ant)
    };
    let (up_shift, lo_shift) = (shift_of(up_centre, &up_rim), shift_of(lo_centre, &lo_rim));
    let surface = |centre: P3, rim: &[P3], shift: P3, k: usize, j: usize| -> P3 {
        let shift = scale(shift, shift_weight(k));
        if k == 0 {
            add(centre, shift)
        } else {
            add(add(centre, scale(sub(rim[j], centre), radii[k])), shift)
        }
    };
    let mut nodes = Vec::with_capacity((nl + 1) * per_layer);
    for l in 0..=nl {
        let h = l as f64 / nl as f64;
        for k in 0..=nr {
            let count = if k == 0 { 1 } else { nc };
            for j in 0..count {
                let p0 = surface(lo_centre, &lo_rim, lo_shift, k, j);
                let p1 = surface(up_centre, &up_rim, up_shift, k, j);
                let gap = dot(sub(p1, p0), axis);
                if l == 0 && gap <= 0.0 {
                    return Err(MeshFail::Other(ModelError::InvalidGeometry(format!(
                        "the endplates overlap: at ring {k}, angle {:.0} deg the upper \
                         endplate is {:.2} mm below the lower one; check that `upper` is the \
                         inferior endplate of the vertebra above",
                        360.0 * j as f64 / nc as f64,
                        -gap
                    ))));
                }
                nodes.push(lerp(p0, p1, h));
            }
        }
    }
    let node = |l: usize, k: usize, j: usize| -> usize {
        if k == 0 {
            l * per_layer
        } else {
            l * per_layer + 1 + (k - 1) * nc + j % nc
        }
    };

    let alpha = params.fibre_angle_deg.to_radians();
    let mut cells = Vec::with_capacity(nl * nc * nr);
    let mut nucleus_elements = Vec::new();
    let mut annulus_elements = Vec::new();
    let mut lamella = Vec::new();
    let mut fibre_directions = Vec::new();
    for l in 0..nl {
        for k in 0..nr {
            for j in 0..nc {
                let e = cells.len();
                let cell = if k == 0 {
                    let b = [node(l, 0, 0), node(l, 1, j), node(l, 1, j + 1)];
                    let t = [node(l + 1, 0, 0), node(l + 1, 1, j), node(l + 1, 1, j + 1)];
                    (ElementKind::Wedge6, [b, t].concat())
                } else {
                    let b = [
                        node(l, k, j),
                        node(l, k + 1, j),
                        node(l, k + 1, j + 1),
                        node(l, k, j + 1),
                    ];
                    let t = b.map(|n| n + per_layer);
                    (ElementKind::Hex8, [b, t].concat())
                };
                if k < nn {
                    nucleus_elements.push(e);
                } else {
                    let ring = k - nn;
                    annulus_elements.push(e);
                    lamella.push(ring);
                    let fib = fibres(&nodes, &cell.1, alpha, ring % 2 == 1).ok_or_else(|| {
                        ModelError::InvalidGeometry(format!(
                            "annulus element {e} is degenerate: no circumferential or axial \
                             direction"
                        ))
                    })?;
                    fibre_directions.push(fib);
                }
                cells.push(cell);
            }
        }
    }

    let mut volume = 0.0;
    for (e, (kind, c)) in cells.iter().enumerate() {
        let x: Vec<P3> = c.iter().map(|&n| nodes[n]).collect();
        let (vol, min_det) = cell_volume(*kind, &x).unwrap_or((f64::NAN, f64::NAN));
        if min_det.is_nan() || min_det <= 0.0 || !vol.is_finite() {
            return Err(MeshFail::Inverted(format!(
                "disc element {e} is inverted or degenerate (corner det J = {min_det:e}): the \
                 endplates are too close, crossing, or the outlines are not star-shaped"
            )));
        }
        volume += vol;
    }

    let mid = |k: usize| -> Vec<[f64; 2]> {
        let l = nl as f64 / 2.0;
        (0..nc)
            .map(|j| {
                let p0 = surface(lower.centre, &lo_rim, lo_shift, k, j);
                let p1 = surface(upper.centre, &up_rim, up_shift, k, j);
                let c0 = lerp(lower.centre, upper.centre, l / nl as f64);
                let p = sub(lerp(p0, p1, l / nl as f64), c0);
                [dot(p, e1), dot(p, e2)]
            })
            .collect()
    };
    let nucleus_area_mm2 = polygon_area(&mid(nn));
    let disc_area_mm2 = polygon_area(&mid(nr));

    let height_at = |theta: f64| -> Result<f64, ModelError> {
        let pu = ray_hit("upper", upper, &basis, theta)?;
        let pl = ray_hit("lower", lower, &basis, theta)?;
        Ok(dot(sub(pu, pl), axis))
    };
    let height_mm = [
        height_at(0.0)?,
        dot(sub(upper.centre, lower.centre), axis),
        height_at(std::f64::consts::PI)?,
    ];

    let upper_nodes: Vec<usize> = (nl * per_layer..(nl + 1) * per_layer).collect();
    let lower_nodes: Vec<usize> = (0..per_layer).collect();
    let mut mesh = Mesh::with_nodes(nodes);
    for (kind, c) in &cells {
        mesh.add_element(*kind, c);
    }
    mesh.node_sets
        .insert("upper_endplate".into(), upper_nodes.clone());
    mesh.node_sets
        .insert("lower_endplate".into(), lower_nodes.clone());
    mesh.element_sets
        .insert("nucleus".into(), nucleus_elements.clone());
    mesh.element_sets
        .insert("annulus".into(), annulus_elements.clone());
    // The engine's own check (integration points and corners) as a second opinion.
    mesh.validate()
        .map_err(|e| ModelError::InvalidGeometry(format!("the disc mesh is not valid: {e}")))?;

    Ok(DiscMesh {
        upper_nodes,
        lower_nodes,
        mesh,
        nucleus_elements,
        annulus_elements,
        lamella,
        fibre_directions,
        height_mm,
        lofted_along_axis: along_axis,
        volume_mm3: volume,
        nucleus_area_mm2,
        disc_area_mm2,
        axis,
    })
}

/// The two fibre families of a hex in the annulus: circumferential direction from the
/// element's edges along the ring, axial direction from its vertical edges (made orthogonal
/// to the circumferential one), fibres at `+-alpha` from circumferential.
fn fibres(nodes: &[P3], c: &[usize], alpha: f64, odd: bool) -> Option<[[f64; 3]; 2]> {
    let x = |i: usize| nodes[c[i]];
    // C3D8: 0-1 radial, 1-2 circumferential, 0-3 circumferential, 0-4 axial.
    let circ = [(0, 3), (1, 2), (4, 7), (5, 6)]
        .iter()
        .fold([0.0; 3], |s, &(a, b)| add(s, sub(x(b), x(a))));
    let vert = (0..4).fold([0.0; 3], |s, a| add(s, sub(x(a + 4), x(a))));
    let t = normalize(circ)?;
    let z = normalize(sub(vert, scale(t, dot(vert, t))))?;
    let (ca, sa) = (alpha.cos(), alpha.sin());
    let plus = add(scale(t, ca), scale(z, sa));
    let minus = add(scale(t, ca), scale(z, -sa));
    Some(if odd { [minus, plus] } else { [plus, minus] })
}

/// In-plane basis normal to the disc axis: `e1` anterior, `e2 = axis x e1`.
pub(crate) struct Basis {
    pub e1: P3,
    pub e2: P3,
}

fn check_endplate(which: &str, ep: &Endplate) -> Result<(), ModelError> {
    if ep.outline.len() < 6 {
        return Err(ModelError::InvalidGeometry(format!(
            "the {which} endplate outline has {} points; at least 6 are needed to mesh a disc",
            ep.outline.len()
        )));
    }
    let finite = |p: &P3| p.iter().all(|c| c.is_finite());
    if !finite(&ep.centre) || !finite(&ep.normal) || !ep.outline.iter().all(finite) {
        return Err(ModelError::InvalidGeometry(format!(
            "the {which} endplate has a non-finite coordinate"
        )));
    }
    if (norm(ep.normal) - 1.0).abs() > 1e-3 {
        return Err(ModelError::InvalidGeometry(format!(
            "the {which} endplate normal {:?} is not a unit vector",
            ep.normal
        )));
    }
    Ok(())
}

/// 2-D coordinates of the outline about its centre in the basis, checked to be a simple
/// polygon.
fn outline_2d(which: &str, ep: &Endplate, b: &Basis) -> Result<Vec<[f64; 2]>, ModelError> {
    let pts: Vec<[f64; 2]> = ep
        .outline
        .iter()
        .map(|p| {
            let d = sub(*p, ep.centre);
            [dot(d, b.e1), dot(d, b.e2)]
        })
        .collect();
    let n = pts.len();
    for i in 0..n {
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue; // adjacent through the closing edge
            }
            if segments_cross(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]) {
                return Err(ModelError::InvalidGeometry(format!(
                    "the {which} endplate outline crosses itself (edges {i} and {j}): it must \
                     be a simple closed polygon"
                )));
            }
        }
    }
    Ok(pts)
}

fn segments_cross(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let o = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| {
        (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    };
    let (d1, d2) = (o(a, b, c), o(a, b, d));
    let (d3, d4) = (o(c, d, a), o(c, d, b));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Where the ray from the centre at angle `theta` (from `e1` towards `e2`) leaves the
/// outline, in 3-D. Errors unless it crosses the outline exactly once.
pub(crate) fn ray_hit(which: &str, ep: &Endplate, b: &Basis, theta: f64) -> Result<P3, ModelError> {
    let pts = outline_2d(which, ep, b)?;
    ray_hit_2d(which, ep, &pts, theta)
}

fn ray_hit_2d(which: &str, ep: &Endplate, pts: &[[f64; 2]], theta: f64) -> Result<P3, ModelError> {
    let d = [theta.cos(), theta.sin()];
    let n = pts.len();
    let mut hits = Vec::new();
    for i in 0..n {
        let (p, q) = (pts[i], pts[(i + 1) % n]);
        let e = [q[0] - p[0], q[1] - p[1]];
        // Solve t d = p + u e.
        let den = d[0] * (-e[1]) - d[1] * (-e[0]);
        if den.abs() < 1e-300 {
            continue;
        }
        let t = (p[0] * (-e[1]) - p[1] * (-e[0])) / den;
        let u = (d[0] * p[1] - d[1] * p[0]) / den;
        // A small tolerance so a ray through a vertex is not missed; the two hits it then
        // makes on the adjacent edges are merged below.
        if t > 0.0 && (-1e-9..=1.0 + 1e-9).contains(&u) {
            hits.push((t, i, u.clamp(0.0, 1.0)));
        }
    }
    hits.sort_by(|a, b| a.0.total_cmp(&b.0));
    hits.dedup_by(|b, a| (b.0 - a.0).abs() <= 1e-9 * a.0.max(1.0));
    match hits.as_slice() {
        [(_, i, u)] => Ok(lerp(ep.outline[*i], ep.outline[(*i + 1) % n], *u)),
        [] => Err(ModelError::InvalidGeometry(format!(
            "the {which} endplate outline does not surround its centre (no rim point at {:.0} \
             deg): the centre must lie inside the outline",
            theta.to_degrees()
        ))),
        _ => Err(ModelError::InvalidGeometry(format!(
            "the {which} endplate outline is not star-shaped about its centre (the ray at {:.0} \
             deg crosses it {} times): the disc mesher needs every ray from the centre to \
             cross the rim once",
            theta.to_degrees(),
            hits.len()
        ))),
    }
}

/// The rim resampled at `n` equal angles, scaled about the centre to keep the outline's
/// projected area.
fn resample_rim(which: &str, ep: &Endplate, b: &Basis, n: usize) -> Result<Vec<P3>, ModelError> {
    let pts = outline_2d(which, ep, b)?;
    let area_in = polygon_area(&pts).abs();
    let rim = (0..n)
        .map(|j| ray_hit_2d(which, ep, &pts, std::f64::consts::TAU * j as f64 / n as f64))
        .collect::<Result<Vec<_>, _>>()?;
    let rim2: Vec<[f64; 2]> = rim
        .iter()
        .map(|p| {
            let d = sub(*p, ep.centre);
            [dot(d, b.e1), dot(d, b.e2)]
        })
        .collect();
    let area_rs = polygon_area(&rim2);
    if area_rs <= 0.0 || area_in <= 0.0 {
        return Err(ModelError::InvalidGeometry(format!(
            "the {which} endplate outline encloses no area"
        )));
    }
    let s = (area_in / area_rs).sqrt();
    Ok(rim
        .iter()
        .map(|p| add(ep.centre, scale(sub(*p, ep.centre), s)))
        .collect())
}

/// Signed area (positive counter-clockwise).
pub(crate) fn polygon_area(p: &[[f64; 2]]) -> f64 {
    let n = p.len();
    0.5 * (0..n)
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % n]);
            a[0] * b[1] - a[1] * b[0]
        })
        .sum::<f64>()
}

/// Volume (exact quadrature of det J) and the smallest corner det J of a Hex8 or Wedge6
/// (`None` for other kinds or a wrong node count).
pub fn cell_volume(kind: ElementKind, x: &[P3]) -> Option<(f64, f64)> {
    let g = 1.0 / 3f64.sqrt();
    if x.len() != kind.num_nodes() {
        return None;
    }
    match kind {
        ElementKind::Hex8 => {
            // Natural coordinates of the C3D8 corners.
            const S: [[f64; 3]; 8] = [
                [-1.0, -1.0, -1.0],
                [1.0, -1.0, -1.0],
                [1.0, 1.0, -1.0],
                [-1.0, 1.0, -1.0],
                [-1.0, -1.0, 1.0],
                [1.0, -1.0, 1.0],
                [1.0, 1.0, 1.0],
                [-1.0, 1.0, 1.0],
            ];
            let det = |p: [f64; 3]| {
                let mut j = [[0.0; 3]; 3];
                for (a, s) in S.iter().enumerate() {
                    let f = |i: usize| {
                        let o = [(i + 1) % 3, (i + 2) % 3];
                        0.125 * s[i] * (1.0 + s[o[0]] * p[o[0]]) * (1.0 + s[o[1]] * p[o[1]])
                    };
                    for (i, ji) in j.iter_mut().enumerate() {
                        let dn = f(i);
                        for c in 0..3 {
                            ji[c] += dn * x[a][c];
                        }
                    }
                }
                det3(j)
            };
            let mut vol = 0.0;
            for a in [-g, g] {
                for b in [-g, g] {
                    for c in [-g, g] {
                        vol += det([a, b, c]);
                    }
                }
            }
            let min = S.iter().map(|&s| det(s)).fold(f64::INFINITY, f64::min);
            Some((vol, min))
        }
        ElementKind::Wedge6 => {
            // C3D6: triangle (r, s) x zeta in [-1, 1]; N = L_i (1 -+ zeta) / 2.
            let det = |r: f64, s: f64, z: f64| {
                let l = [1.0 - r - s, r, s];
                let dl = [[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]];
                let mut j = [[0.0; 3]; 3];
                for (a, xa) in x.iter().enumerate() {
                    let (i, zs) = if a < 3 { (a, -1.0) } else { (a - 3, 1.0) };
                    let h = 0.5 * (1.0 + zs * z);
                    let d = [dl[i][0] * h, dl[i][1] * h, l[i] * 0.5 * zs];
                    for (k, jk) in j.iter_mut().enumerate() {
                        for c in 0..3 {
                            jk[c] += d[k] * xa[c];
                        }
                    }
                }
                det3(j)
            };
            let tri = [
                (1.0 / 6.0, 1.0 / 6.0),
                (2.0 / 3.0, 1.0 / 6.0),
                (1.0 / 6.0, 2.0 / 3.0),
            ];
            let mut vol = 0.0;
            for &(r, s) in &tri {
                for z in [-g, g] {
                    vol += det(r, s, z) / 6.0;
                }
            }
            let corners = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)];
            let min = corners
                .iter()
                .flat_map(|&(r, s)| [det(r, s, -1.0), det(r, s, 1.0)])
                .fold(f64::INFINITY, f64::min);
            Some((vol, min))
        }
        _ => None,
    }
}

fn det3(j: [[f64; 3]; 3]) -> f64 {
    j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
}

pub(crate) fn add(a: P3, b: P3) -> P3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn sub(a: P3, b: P3) -> P3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn scale(a: P3, s: f64) -> P3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn dot(a: P3, b: P3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn cross(a: P3, b: P3) -> P3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub(crate) fn norm(a: P3) -> f64 {
    dot(a, a).sqrt()
}
pub(crate) fn normalize(a: P3) -> Option<P3> {
    let n = norm(a);
    (n > 1e-12).then(|| scale(a, 1.0 / n))
}
pub(crate) fn lerp(a: P3, b: P3, t: f64) -> P3 {
    add(a, scale(sub(b, a), t))
}
fn in_plane(v: P3, axis: P3) -> P3 {
    sub(v, scale(axis, dot(v, axis)))
}
