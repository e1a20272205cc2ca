//! Facet joints of the hybrid model: the articular surfaces of two adjacent vertebrae turned
//! into a penalty contact pair between rigid bodies.
//!
//! The superior articular surface of the lower vertebra becomes the master: a smooth
//! height field (least-squares quadratic over its tangent plane) triangulated on a regular
//! grid that extends past the measured surface so that sliding does not run off its edge.
//! The inferior articular surface of the upper vertebra gives the slave points (its surface
//! points thinned to about `slave_spacing_mm`), each carrying an equal share of its area.
//!
//! Contact law: linear penalty `p = k (c - g)` for gap `g < c`, where `k` is the confined
//! compression modulus of the two cartilage layers divided by their total thickness
//! (a thin elastic layer pressed between rigid plates), and the clearance `c` is the
//! narrowest bone-to-bone joint space at rest minus `initial_gap_mm`, so that the cartilage
//! surfaces start `initial_gap_mm` apart.

use nalgebra::{Matrix3, SymmetricEigen, Vector3};
use serde::{Deserialize, Serialize};
use spinetwin_segment::landmarks::{ArticularSurface, P3};

use crate::error::ModelError;

/// Parameters of the facet joints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FacetParams {
    /// Young's modulus of the articular cartilage (MPa). Default 10 MPa, within the range
    /// used by validated lumbar models (Schmidt et al. 2007 and others quote 10-35 MPa).
    pub cartilage_modulus_mpa: f64,
    /// Poisson's ratio of the cartilage.
    pub cartilage_poisson: f64,
    /// Thickness of ONE cartilage layer (mm); the joint has two.
    pub cartilage_thickness_mm: f64,
    /// Gap between the cartilage surfaces at rest (mm).
    pub initial_gap_mm: f64,
    /// Spacing of the slave points (mm).
    pub slave_spacing_mm: f64,
    /// Spacing of the master grid (mm).
    pub master_spacing_mm: f64,
    /// How far the master surface extends past the measured surface (mm).
    pub master_margin_mm: f64,
}

impl Default for FacetParams {
    fn default() -> Self {
        FacetParams {
            cartilage_modulus_mpa: 10.0,
            cartilage_poisson: 0.4,
            cartilage_thickness_mm: 0.5,
            initial_gap_mm: 0.1,
            slave_spacing_mm: 1.5,
            master_spacing_mm: 1.0,
            master_margin_mm: 4.0,
        }
    }
}

impl FacetParams {
    /// Penalty (MPa/mm): confined modulus `E (1 - nu) / ((1 + nu)(1 - 2 nu))` over the total
    /// cartilage thickness.
    pub fn penalty(&self) -> f64 {
        let (e, nu) = (self.cartilage_modulus_mpa, self.cartilage_poisson);
        e * (1.0 - nu) / ((1.0 + nu) * (1.0 - 2.0 * nu)) / (2.0 * self.cartilage_thickness_mm)
    }
}

/// How deep below the arch's surface a bony-stop contact point still counts as touching
/// it (mm; [`spinetwin_fem::nl::ContactPair::search_depth`]). A stop is a small patch (a
/// few slave points) on the cartilage penalty, so under an extension moment with a
/// follower load its points go in by more than the master's 1 mm edge and the engine's
/// default depth lets them pass behind the arch: measured on the anatomical phantom's
/// L4-L5 (sleeve capsule), the stops then carried nothing and extension reached 5.9 deg
/// instead of 1.9. 3 mm lies inside the bone of the arch behind the patch (the lamina and
/// pars are several millimetres thick) and is several times the deepest penetration of a
/// held stop measured there.
pub const STOP_SEARCH_DEPTH_MM: f64 = 3.0;

/// A facet joint ready for the FE model: slave points fixed to the upper vertebra, master
/// triangles fixed to the lower one (reference coordinates, mm, LPS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FacetGeometry {
    /// Slave points on the inferior articular surface of the upper vertebra.
    pub slave: Vec<P3>,
    /// Area carried by each slave point (mm^2).
    pub slave_area: Vec<f64>,
    /// Master triangles on the superior articular surface of the lower vertebra; their
    /// right-hand normals point towards the upper vertebra's surface.
    pub master: Vec<[P3; 3]>,
    /// Unit normal of the master surface at its centre (towards the upper surface).
    pub normal: P3,
    /// Median bone-to-bone joint space at rest (mm).
    pub joint_space_mm: f64,
    /// Contact clearance (mm): the narrowest joint space (2nd percentile of the slave
    /// points' gaps) minus the initial gap; closer points are dropped, so that the joint is
    /// open everywhere at rest.
    pub clearance_mm: f64,
    /// Penalty (MPa/mm).
    pub penalty: f64,
    /// Surface points left out because they sat closer than the clearance at rest.
    pub dropped_points: usize,
}

/// A quadratic height field `h(u, v)` over a tangent plane.
struct HeightField {
    origin: Vector3<f64>,
    e1: Vector3<f64>,
    e2: Vector3<f64>,
    n: Vector3<f64>,
    c: [f64; 6],
}

impl HeightField {
    fn basis(u: f64, v: f64) -> [f64; 6] {
        [1.0, u, v, u * u, u * v, v * v]
    }

    fn local(&self, p: &Vector3<f64>) -> (f64, f64, f64) {
        let d = p - self.origin;
        (d.dot(&self.e1), d.dot(&self.e2), d.dot(&self.n))
    }

    fn height(&self, u: f64, v: f64) -> f64 {
        Self::basis(u, v)
            .iter()
            .zip(&self.c)
            .map(|(b, c)| b * c)
            .sum()
    }

    fn point(&self, u: f64, v: f64) -> Vector3<f64> {
        self.origin + self.e1 * u + self.e2 * v + self.n * self.height(u, v)
    }

    /// Fits a plane (principal axes), then a quadratic height over it when there are enough
    /// points (plane only otherwise). `normal_hint` orients `n`.
    fn fit(points: &[P3], normal_hint: Vector3<f64>) -> Option<HeightField> {
        if points.len() < 3 {
            return None;
        }
        let pts: Vec<Vector3<f64>> = points.iter().map(|p| Vector3::from(*p)).collect();
        let centre = pts.iter().sum::<Vector3<f64>>() / pts.len() as f64;
        let mut cov = Matrix3::zeros();
        for p in &pts {
            let d = p - centre;
            cov += d * d.transpose();
        }
        let eig = SymmetricEigen::new(cov);
        let imin = eig.eigenvalues.imin();
        let mut n: Vector3<f64> = eig.eigenvectors.column(imin).into();
        if n.dot(&normal_hint) < 0.0 {
            n = -n;
        }
        let helper = if n.x.abs() < 0.9 {
            Vector3::x()
        } else {
            Vector3::y()
        };
        let e1 = n.cross(&helper).normalize();
        let e2 = n.cross(&e1);
        let mut hf = HeightField {
            origin: centre,
            e1,
            e2,
            n,
            c: [0.0; 6],
        };
        if pts.len() >= 12 {
            // Normal equations of the least-squares quadratic; fall back to the plane if
            // they are singular (points on a line).
            let mut a = nalgebra::Matrix6::<f64>::zeros();
            let mut b = nalgebra::Vector6::<f64>::zeros();
            for p in &pts {
                let (u, v, h) = hf.local(p);
                let phi = nalgebra::Vector6::from(HeightField::basis(u, v));
                a += phi * phi.transpose();
                b += phi * h;
            }
            if let Some(c) = a.lu().solve(&b) {
                hf.c = c.into();
            }
        }
        Some(hf)
    }
}

/// Keeps one point per cube of side `spacing` (the one nearest the cube centre).
fn thin(points: &[P3], spacing: f64) -> Vec<P3> {
    let mut cells: std::collections::BTreeMap<[i64; 3], (f64, P3)> = Default::default();
    for p in points {
        let key = p.map(|c| (c / spacing).floor() as i64);
        let centre: [f64; 3] = std::array::from_fn(|i| (key[i] as f64 + 0.5) * spacing);
        let d: f64 = (0..3).map(|i| (p[i] - centre[i]).powi(2)).sum();
        let e = cells.entry(key).or_insert((f64::INFINITY, *p));
        if d < e.0 {
            *e = (d, *p);
        }
    }
    cells.into_values().map(|(_, p)| p).collect()
}

/// Builds the contact geometry of one facet joint from the inferior articular surface of
/// the upper vertebra and the superior articular surface of the lower one.
pub fn facet_geometry(
    upper_inferior: &ArticularSurface,
    lower_superior: &ArticularSurface,
    params: &FacetParams,
) -> Result<FacetGeometry, ModelError> {
    contact_geometry(
        upper_inferior,
        lower_superior,
        params,
        "facet joint",
        |narrowest| (narrowest - params.initial_gap_mm).max(0.0),
    )
}

/// Builds the contact geometry of a bony stop (`spinetwin_segment::landmarks::BonyStop`):
/// the same penalty law as a facet joint, but with no cartilage in the gap the contact
/// engages only when the bones touch (clearance 0).
pub fn bony_stop_geometry(
    upper: &ArticularSurface,
    lower: &ArticularSurface,
    params: &FacetParams,
) -> Result<FacetGeometry, ModelError> {
    contact_geometry(upper, lower, params, "bony stop", |_| 0.0)
}

/// The contact pair of two facing surfaces; `clearance` maps the narrowest gap at rest to
/// the gap at which contact starts.
fn contact_geometry(
    upper_inferior: &ArticularSurface,
    lower_superior: &ArticularSurface,
    params: &FacetParams,
    what: &str,
    clearance: impl Fn(f64) -> f64,
) -> Result<FacetGeometry, ModelError> {
    let bad = |e: &str| ModelError::InvalidGeometry(format!("{what}: {e}"));
    if upper_inferior.points.len() < 3 || lower_superior.points.len() < 3 {
        return Err(bad("an articular surface has fewer than 3 points"));
    }
    // Master normal points from the lower surface to the upper one.
    let towards_upper = Vector3::from(upper_inferior.centre) - Vector3::from(lower_superior.centre);
    let hint = Vector3::from(lower_superior.normal) + towards_upper.normalize() * 0.5;
    let hf = HeightField::fit(&lower_superior.points, hint)
        .ok_or_else(|| bad("cannot fit the superior articular surface"))?;

    // Master grid over the projections of BOTH surfaces, plus a margin.
    let (mut umin, mut umax, mut vmin, mut vmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in upper_inferior.points.iter().chain(&lower_superior.points) {
        let (u, v, _) = hf.local(&Vector3::from(*p));
        umin = umin.min(u);
        umax = umax.max(u);
        vmin = vmin.min(v);
        vmax = vmax.max(v);
    }
    let m = params.master_margin_mm;
    let (umin, umax, vmin, vmax) = (umin - m, umax + m, vmin - m, vmax + m);
    let h = params.master_spacing_mm.max(0.2);
    let nu = ((umax - umin) / h).ceil().max(1.0) as usize;
    let nv = ((vmax - vmin) / h).ceil().max(1.0) as usize;
    if nu * nv > 200_000 {
        return Err(bad(
            "articular surfaces are implausibly large (> 400 mm across)",
        ));
    }
    let grid = |i: usize, j: usize| -> P3 {
        let u = umin + (umax - umin) * i as f64 / nu as f64;
        let v = vmin + (vmax - vmin) * j as f64 / nv as f64;
        hf.point(u, v).into()
    };
    let mut master = Vec::with_capacity(2 * nu * nv);
    for i in 0..nu {
        for j in 0..nv {
            // (e1, e2, n) is right-handed, so counter-clockwise in (u, v) has normal +n.
            let (a, b, c, d) = (
                grid(i, j),
                grid(i + 1, j),
                grid(i + 1, j + 1),
                grid(i, j + 1),
            );
            master.push([a, b, c]);
            master.push([a, c, d]);
        }
    }

    // The slave points lie on a smooth fit of the inferior articular surface: the voxel
    // staircase of a segmented surface (+/- half a voxel) would otherwise decide which
    // points touch first.
    let up_fit = HeightField::fit(&upper_inferior.points, -hf.n)
        .ok_or_else(|| bad("cannot fit the inferior articular surface"))?;
    let candidates: Vec<P3> = thin(&upper_inferior.points, params.slave_spacing_mm.max(0.2))
        .iter()
        .map(|p| {
            let (u, v, _) = up_fit.local(&Vector3::from(*p));
            up_fit.point(u, v).into()
        })
        .collect();
    let area = upper_inferior.area_mm2.max(0.0);
    if area <= 0.0 || !area.is_finite() {
        return Err(bad("the inferior articular surface has no area"));
    }
    let gap_of = |p: &P3| {
        let (u, v, w) = hf.local(&Vector3::from(*p));
        w - hf.height(u, v)
    };
    let mut gaps: Vec<f64> = candidates.iter().map(gap_of).collect();
    gaps.sort_by(f64::total_cmp);
    let joint_space = gaps[gaps.len() / 2];
    if !(joint_space > -1.0 && joint_space < 8.0) {
        return Err(bad(&format!(
            "the surfaces are {joint_space:.1} mm apart (expected 0-8 mm): they do not face each other across one gap"
        )));
    }
    // The narrowest joint space, robust to a few stray surface points (2nd percentile).
    let narrowest = gaps[gaps.len() / 50];
    let clearance = clearance(narrowest);
    // Points closer than the clearance would start in contact: they are left out, so the
    // joint is open everywhere at rest.
    let slave: Vec<P3> = candidates
        .into_iter()
        .filter(|p| gap_of(p) > clearance + 1e-9)
        .collect();
    if slave.is_empty() {
        return Err(bad("the articular surfaces overlap everywhere"));
    }
    let dropped_points = gaps.len() - slave.len();
    let slave_area = vec![area / slave.len() as f64; slave.len()];
    let normal: P3 = {
        let n = (hf.point(1e-3, 0.0) - hf.point(-1e-3, 0.0))
            .cross(&(hf.point(0.0, 1e-3) - hf.point(0.0, -1e-3)))
            .normalize();
        n.into()
    };
    Ok(FacetGeometry {
        slave,
        slave_area,
        master,
        normal,
        joint_space_mm: joint_space,
        clearance_mm: clearance,
        dropped_points,
        penalty: params.penalty(),
    })
}

/// Triangles joining the slave points of a contact (indices into `geometry.slave`), for
/// pictures of the contact pressure: a Delaunay triangulation of the points projected on
/// the plane normal to the joint (`geometry.normal`), less the triangles with an edge
/// longer than `max_edge_spacings` times the points' spacing (the median distance from a
/// point to its nearest neighbour; such triangles bridge a notch of the surface's outline).
/// Winding: the right-hand normal points along `geometry.normal`, towards the upper
/// vertebra.
pub fn slave_triangles(geometry: &FacetGeometry, max_edge_spacings: f64) -> Vec<[usize; 3]> {
    let n = Vector3::from(geometry.normal);
    if geometry.slave.len() < 3 || n.norm() < 1e-12 {
        return Vec::new();
    }
    let n = n.normalize();
    let e1 = if n.x.abs() < 0.9 {
        Vector3::x().cross(&n)
    } else {
        Vector3::y().cross(&n)
    }
    .normalize();
    let e2 = n.cross(&e1);
    let p: Vec<Vector3<f64>> = geometry.slave.iter().map(|q| Vector3::from(*q)).collect();
    // A few hundred points per joint: the all-pairs nearest neighbour is cheap.
    let mut nearest: Vec<f64> = p
        .iter()
        .enumerate()
        .map(|(i, a)| {
            p.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, b)| (a - b).norm())
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    nearest.sort_by(f64::total_cmp);
    let max_edge_mm = max_edge_spacings * nearest[nearest.len() / 2];
    let flat: Vec<delaunator::Point> = p
        .iter()
        .map(|q| delaunator::Point {
            x: q.dot(&e1),
            y: q.dot(&e2),
        })
        .collect();
    let t = delaunator::triangulate(&flat);
    t.triangles
        .chunks_exact(3)
        .filter_map(|c| {
            let [a, b, d] = [c[0], c[1], c[2]];
            let long = [(a, b), (b, d), (d, a)]
                .iter()
                .any(|&(i, j)| (p[i] - p[j]).norm() > max_edge_mm);
            if long {
                return None;
            }
            // (e1, e2, n) is right-handed, so a counter-clockwise triangle in the plane has
            // its normal along n.
            let ccw = (flat[b].x - flat[a].x) * (flat[d].y - flat[a].y)
                - (flat[b].y - flat[a].y) * (flat[d].x - flat[a].x)
                > 0.0;
            Some(if ccw { [a, b, d] } else { [a, d, b] })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(centre: [f64; 3], normal: [f64; 3], r: f64) -> ArticularSurface {
        let n = Vector3::from(normal).normalize();
        let e1 = n.cross(&Vector3::z()).normalize();
        let e2 = n.cross(&e1);
        let mut points = Vec::new();
        let mut k = -r;
        while k <= r {
            let mut l = -r;
            while l <= r {
                if k * k + l * l <= r * r {
                    points.push((Vector3::from(centre) + e1 * k + e2 * l).into());
                }
                l += 0.5;
            }
            k += 0.5;
        }
        let normals = vec![normal; points.len()];
        ArticularSurface {
            centre,
            normal,
            points,
            normals,
            area_mm2: std::f64::consts::PI * r * r,
        }
    }

    /// Two round articular surfaces of radius 6 mm facing each other 1.2 mm apart, the
    /// lower one facing along `n`.
    fn round_joint(n: Vector3<f64>) -> (ArticularSurface, ArticularSurface) {
        let lower = patch([10.0, 20.0, 0.0], n.into(), 6.0);
        let upper = patch(
            (Vector3::new(10.0, 20.0, 0.0) + n * 1.2).into(),
            (-n).into(),
            6.0,
        );
        (upper, lower)
    }

    #[test]
    fn parallel_planes_give_their_distance_and_a_covering_master() {
        // Lower superior facet facing posteromedially-left; the upper one 1.2 mm across.
        let n = Vector3::new(-0.7, 0.7, 0.0).normalize();
        let (upper, lower) = round_joint(n);
        let p = FacetParams::default();
        let g = facet_geometry(&upper, &lower, &p).unwrap();
        assert!(
            (g.joint_space_mm - 1.2).abs() < 1e-9,
            "{}",
            g.joint_space_mm
        );
        assert!(
            (g.clearance_mm - (1.2 - p.initial_gap_mm)).abs() < 1e-9,
            "{}",
            g.clearance_mm
        );
        assert!((Vector3::from(g.normal).dot(&n) - 1.0).abs() < 1e-9);
        // Every master triangle's normal points towards the upper surface.
        for t in &g.master {
            let [a, b, c] = t.map(Vector3::from);
            assert!((b - a).cross(&(c - a)).dot(&n) > 0.0);
        }
        let total: f64 = g.slave_area.iter().sum();
        assert!((total - upper.area_mm2).abs() < 1e-9);
        assert!(
            g.slave.len() > 20 && g.slave.len() < 100,
            "{}",
            g.slave.len()
        );
    }

    #[test]
    fn the_slave_triangles_cover_a_round_joint_facing_the_upper_vertebra() {
        let n = Vector3::new(-0.7, 0.7, 0.2).normalize();
        let (upper, lower) = round_joint(n);
        let p = FacetParams::default();
        let g = facet_geometry(&upper, &lower, &p).unwrap();
        let tris = slave_triangles(&g, 2.5);
        // The points lie about one slave spacing apart.
        let max_edge = 2.5 * 1.3 * p.slave_spacing_mm;
        let v = |i: usize| Vector3::from(g.slave[i]);
        let mut area = 0.0;
        for t in &tris {
            let (a, b, c) = (v(t[0]), v(t[1]), v(t[2]));
            let cross = (b - a).cross(&(c - a));
            assert!(
                cross.dot(&n) > 0.0,
                "a triangle faces away from the upper vertebra"
            );
            for (i, j) in [(a, b), (b, c), (c, a)] {
                assert!((i - j).norm() <= max_edge);
            }
            area += cross.norm() / 2.0;
        }
        // The triangles span the points' convex outline: a disc of radius 6 mm less a
        // rim of about half a point spacing.
        let full = std::f64::consts::PI * 36.0;
        assert!(area > 0.75 * full && area < full, "{area} of {full}");
        // Every point belongs to a triangle.
        let mut used = vec![false; g.slave.len()];
        tris.iter().flatten().for_each(|&i| used[i] = true);
        assert!(used.iter().all(|&u| u));
        // With edges limited below the spacing nothing is left.
        assert!(slave_triangles(&g, 0.5).is_empty());
    }

    #[test]
    fn a_stray_point_does_not_close_the_joint() {
        let n = Vector3::new(0.0, 1.0, 0.0);
        let lower = patch([0.0; 3], n.into(), 6.0);
        let mut upper = patch((n * 1.0).into(), (-n).into(), 6.0);
        // One segmentation outlier on the far side of the joint, beyond the smooth fit's
        // reach once projected: it lands far from the fitted plane only if kept raw.
        upper.points.push([0.0, -0.2, 0.0]);
        let p = FacetParams::default();
        let g = facet_geometry(&upper, &lower, &p).unwrap();
        // The smooth fit absorbs the outlier almost entirely; the clearance stays near the
        // joint space minus the initial gap, and no point starts in contact.
        assert!(g.clearance_mm > 0.8, "{}", g.clearance_mm);
        for s in &g.slave {
            assert!(s[1] > g.clearance_mm, "{s:?} starts in contact");
        }
    }

    #[test]
    fn penalty_is_the_confined_modulus_over_the_thickness() {
        let p = FacetParams {
            cartilage_modulus_mpa: 10.0,
            cartilage_poisson: 0.0,
            cartilage_thickness_mm: 0.5,
            ..Default::default()
        };
        assert!((p.penalty() - 10.0).abs() < 1e-12);
    }

    #[test]
    fn a_bony_stop_engages_only_when_the_bones_touch() {
        // A process tip 1.5 mm from the lamina below (the `patch` helper needs normals off
        // the z axis; the geometry does not care which way the axis points).
        let up = Vector3::new(0.0, 1.0, 0.0);
        let lamina = patch([5.0, 30.0, 0.0], up.into(), 2.0);
        let tip = patch(
            (Vector3::new(5.0, 30.0, 0.0) + up * 1.5).into(),
            (-up).into(),
            2.0,
        );
        let p = FacetParams::default();
        let stop = bony_stop_geometry(&tip, &lamina, &p).unwrap();
        let joint = facet_geometry(&tip, &lamina, &p).unwrap();
        assert!((stop.joint_space_mm - 1.5).abs() < 1e-9);
        // The facet law would close the gap to 0.1 mm; the stop waits for contact.
        assert_eq!(stop.clearance_mm, 0.0);
        assert!(
            (joint.clearance_mm - 1.4).abs() < 1e-9,
            "{}",
            joint.clearance_mm
        );
        assert_eq!(stop.slave.len(), joint.slave.len());
        assert_eq!(stop.dropped_points, 0);
        let e = bony_stop_geometry(&tip, &patch([0.0; 3], [0.0, 1.0, 0.0], 0.2), &p).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid geometry: bony stop:"),
            "{e}"
        );
    }

    #[test]
    fn surfaces_far_apart_are_refused() {
        let lower = patch([0.0; 3], [1.0, 0.0, 0.0], 5.0);
        let upper = patch([20.0, 0.0, 0.0], [-1.0, 0.0, 0.0], 5.0);
        let e = facet_geometry(&upper, &lower, &FacetParams::default()).unwrap_err();
        assert!(e.to_string().contains("mm apart"), "{e}");
    }
}
