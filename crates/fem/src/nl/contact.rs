//! Penalty node-to-surface contact on a smoothed master surface.
//!
//! **Why smoothed.** On a faceted master, the normal jumps at every edge: above a convex
//! edge lies a wedge onto which no triangle projects (a slave point there loses its force
//! at once), above a concave edge two triangles overlap with different gaps, and a point
//! sliding off the surface's rim drops its force from full to zero. Each of these is a
//! jump of the residual, and Newton then cycles between the two sides of it (the facet
//! joints of a spine model stalled this way at ~1e-2 N). Here the master is the union of
//! "prisms" swept by each triangle along normals interpolated from its corners (Phong-like
//! smoothing; e.g. Puso & Laursen 2002, Comput Methods Appl Mech Eng 191:4891, for the
//! idea of smoothed contact surfaces): neighbouring prisms share their side faces, so the
//! gap and the normal are continuous across interior edges, and along the rim the force
//! fades out smoothly over a band of a fraction of a triangle instead of stopping.
//!
//! **Geometry.** The corner normals are corner-angle-weighted averages of the adjacent triangles'
//! normals in the reference configuration, stored in each triangle's own frame
//! (`e1 = p1 - p0`, `e2 = p2 - p0`, `n`) so they follow the triangle's motion exactly for
//! rigid masters and approximately for deforming ones. A slave point `x` is located in the
//! prism of a triangle by solving `x = p0 + xi1 e1 + xi2 e2 + g N(xi)` for the barycentric
//! coordinates and the gap `g` (Newton, from the flat projection), `N(xi)` the interpolated
//! corner normal. Among the candidate triangles (a uniform grid over their bounding boxes,
//! rebuilt at every assembly) whose prism holds the point, the nearest one in front of the
//! surface (smallest `g >= 0`) is taken, else the least penetrated one (largest `g < 0`),
//! interior before rim band on ties; the choice is fixed within an assembly. A master thinner
//! than a triangle edge can still be pushed through from behind: penalty contact needs
//! masters thicker than the penetration.
//!
//! **Force.** When `g < clearance` the slave is pushed along the unit normal `n = N/|N|`
//! with `P = phi * penalty * area * (clearance - g)`, `phi` the rim fade (1 inside the
//! surface, a C1 smoothstep to 0 over the band beyond a boundary edge), and the master
//! corners take `-P n` with the barycentric weights: the two forces are collinear, so the
//! pair conserves momentum and angular momentum. The force is not the gradient of a
//! potential; its tangent is the central-difference Jacobian of this force in the 12
//! coordinates of the slave and the triangle (non-symmetric, consistent with the residual to
//! round-off) where all four points are on rigid bodies, and its symmetric part where a mesh
//! node takes part (see [`contact`]).
//!
//! **Friction** (`friction = mu > 0`): regularised Coulomb law (penalty regularisation, e.g.
//! Wriggers 2006, Computational Contact Mechanics, sec. 5.2). Each slave point in contact
//! at the last converged increment has an anchor, the master material point (triangle and
//! barycentric coordinates) it sticks to. The tangential part of its offset from the anchor
//! is an elastic slip resisted with the tangential penalty stiffness `kt = tangential_penalty *
//! area` (by default the normal penalty's); the
//! trial force `-kt g_T` is returned onto the cone `mu p` when it exceeds it (slip). The
//! master takes the opposite force at the foot point. Anchors change only at converged
//! increments ([`anchors`]; they are also set in the reference state): a point out of
//! contact is anchored at its foot point, so one that touches within an increment sticks
//! where it was above (friction acts from first contact); a slipping point's anchor follows
//! it at the elastic slip `mu p / kt` behind. The tangent is the central-difference Jacobian in the
//! coordinates of the slave, its triangle and its anchor's triangle, non-symmetric in slip.
//!
//! **Augmented Lagrangian** (a pair's `augmented`): each slave point carries a multiplier
//! `lambda` (N) and its normal force is `phi <lambda + kp (clearance - g)>`, `kp = penalty *
//! area`. Between Newton solves of an increment, [`augment`] sets `lambda` to that force's
//! bracket (Uzawa), and the increment is solved again until no point penetrates, or has let
//! go, by more than the tolerance; the penalty then only sets how fast that happens.

use std::collections::HashMap;

use nalgebra::Matrix3;

use super::assemble::Asm;
use super::kin::{DofMap, Kin, Pk, State, V3};
use super::mortar::{self, Segments};
use super::{ContactPair, ContactState, Model, Point};

/// Barycentric tolerance of the containment test at interior edges.
pub(super) const TOL: f64 = 1e-3;
/// Width of the rim fade band beyond a boundary edge, in the barycentric coordinate of the
/// opposite corner (0.3: about a third of the triangle's height).
const RIM_BAND: f64 = 0.3;
/// A corner normal further than this (cosine) from the triangle's own normal is a crease:
/// the triangle keeps its flat normal there.
const CREASE_COS: f64 = 0.7;

/// Reference-configuration data of one pair's master surface, computed once per analysis.
#[derive(Clone, Debug, Default)]
pub(crate) struct Surface {
    /// Per triangle, the smoothed normal at each corner as coefficients of the triangle's
    /// frame `[e1, e2, n]`.
    pub(super) corner: Vec<[[f64; 3]; 3]>,
    /// Per triangle, whether the edge opposite corner `k` lies on the surface's rim.
    rim: Vec<[bool; 3]>,
}

/// Identity of a point, for finding shared corners and edges.
pub(super) fn key(p: &Point) -> (u8, usize, [u64; 3]) {
    match *p {
        Point::Node(n) => (0, n, [0; 3]),
        Point::Body { body, at } => (1, body, at.map(f64::to_bits)),
    }
}

/// Reference (undeformed) position of a point.
pub(crate) fn reference(model: &Model, p: &Point) -> V3 {
    match *p {
        Point::Node(n) => V3::from(model.mesh.nodes[n]),
        Point::Body { at, .. } => V3::from(at),
    }
}

impl Surface {
    /// Corner normals and rim edges of `pair`'s master surface in the reference
    /// configuration.
    pub(crate) fn new(model: &Model, pair: &ContactPair) -> Surface {
        let mut ids: HashMap<(u8, usize, [u64; 3]), usize> = HashMap::new();
        let tri: Vec<[usize; 3]> = pair
            .master
            .iter()
            .map(|t| {
                t.map(|p| {
                    let n = ids.len();
                    *ids.entry(key(&p)).or_insert(n)
                })
            })
            .collect();
        let xs: Vec<[V3; 3]> = pair
            .master
            .iter()
            .map(|t| t.map(|p| reference(model, &p)))
            .collect();
        // Corner normals: sum of the adjacent triangles' unit normals weighted by their
        // corner angle (independent of how the surface is split into triangles).
        let mut nsum = vec![V3::zeros(); ids.len()];
        let mut edges: HashMap<(usize, usize), usize> = HashMap::new();
        for (t, x) in tri.iter().zip(&xs) {
            let nn = (x[1] - x[0]).cross(&(x[2] - x[0]));
            if nn.norm() < 1e-14 {
                continue;
            }
            let n = nn.normalize();
            for k in 0..3 {
                let (a, b) = (x[(k + 1) % 3] - x[k], x[(k + 2) % 3] - x[k]);
                let ang = a.angle(&b);
                nsum[t[k]] += n * ang;
                let (i, j) = (t[(k + 1) % 3], t[(k + 2) % 3]);
                *edges.entry((i.min(j), i.max(j))).or_default() += 1;
            }
        }
        let mut corner = Vec::with_capacity(tri.len());
        let mut rim = Vec::with_capacity(tri.len());
        for (t, x) in tri.iter().zip(&xs) {
            let (e1, e2) = (x[1] - x[0], x[2] - x[0]);
            let nn = e1.cross(&e2);
            let flat = [0.0, 0.0, 1.0];
            let mut c = [flat; 3];
            if nn.norm() >= 1e-14 {
                let n = nn.normalize();
                let basis = Matrix3::from_columns(&[e1, e2, n]);
                if let Some(inv) = basis.try_inverse() {
                    for k in 0..3 {
                        let s = nsum[t[k]];
                        if s.norm() < 1e-14 {
                            continue;
                        }
                        let m = s.normalize();
                        if m.dot(&n) >= CREASE_COS {
                            let v = inv * m;
                            c[k] = [v.x, v.y, v.z];
                        }
                    }
                }
            }
            corner.push(c);
            rim.push(std::array::from_fn(|k| {
                let (i, j) = (t[(k + 1) % 3], t[(k + 2) % 3]);
                edges.get(&(i.min(j), i.max(j))).copied().unwrap_or(0) < 2
            }));
        }
        Surface { corner, rim }
    }
}

/// A point located in a triangle's prism.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hit {
    /// Barycentric coordinates of the foot point.
    pub(super) xi: [f64; 3],
    /// Gap along the interpolated normal (mm).
    pub(super) g: f64,
    /// Unit normal at the foot point.
    pub(super) n: V3,
}

/// The current geometry of one master triangle that does not depend on the slave point:
/// its frame, unit normal, interpolated-normal corners and sizes. Computed once per
/// triangle and assembly rather than once per (slave point, candidate triangle) pair: the
/// search tries ~150 candidates per slave point on the spine twin's facets, and
/// recomputing these per pair was most of the contact time.
pub(super) struct Prism {
    p0: V3,
    e1: V3,
    e2: V3,
    /// `|e1 x e2|` (twice the area).
    a2: f64,
    /// Unit normal.
    pub(super) n: V3,
    /// Unit corner normals in the current configuration.
    cn: [V3; 3],
    /// `|e1|`, `|e2|` (the locate tolerance).
    e1n: f64,
    e2n: f64,
    /// Smallest height (the `near` test).
    height: f64,
}

impl Prism {
    /// `None` for a degenerate triangle.
    pub(super) fn new(t: &[V3; 3], c: &[[f64; 3]; 3]) -> Option<Prism> {
        let (e1, e2) = (t[1] - t[0], t[2] - t[0]);
        let nn = e1.cross(&e2);
        let a2 = nn.norm();
        if a2 < 1e-14 {
            return None;
        }
        let n = nn / a2;
        let cn: [V3; 3] = c.map(|k| (e1 * k[0] + e2 * k[1] + n * k[2]).normalize());
        let (e1n, e2n) = (e1.norm(), e2.norm());
        let longest = e1n.max(e2n).max((t[2] - t[1]).norm());
        Some(Prism {
            p0: t[0],
            e1,
            e2,
            a2,
            n,
            cn,
            e1n,
            e2n,
            height: a2 / longest.max(1e-300),
        })
    }

    /// Locates `x` in the prism.
    pub(super) fn locate(&self, x: &V3) -> Option<Hit> {
        let Prism {
            e1, e2, a2, n, cn, ..
        } = self;
        let (e1, e2, a2, n) = (*e1, *e2, *a2, *n);
        let d = x - self.p0;
        // The flat projection is the start (and the exact answer on a flat surface).
        let mut g = d.dot(&n);
        let xp = d - n * g;
        let mut l1 = xp.cross(&e2).dot(&n) / a2;
        let mut l2 = e1.cross(&xp).dot(&n) / a2;
        let scale = 1e-12 * (self.e1n + self.e2n + d.norm());
        let mut nt = n;
        for it in 0..25 {
            let l0 = 1.0 - l1 - l2;
            nt = cn[0] * l0 + cn[1] * l1 + cn[2] * l2;
            let r = e1 * l1 + e2 * l2 + nt * g - d;
            if r.norm() <= scale {
                break;
            }
            if it == 24 {
                return None;
            }
            let j =
                Matrix3::from_columns(&[e1 + (cn[1] - cn[0]) * g, e2 + (cn[2] - cn[0]) * g, nt]);
            let s = j.try_inverse()? * (-r);
            l1 += s.x;
            l2 += s.y;
            g += s.z;
        }
        let len = nt.norm();
        if len < 1e-9 {
            return None;
        }
        Some(Hit {
            xi: [1.0 - l1 - l2, l1, l2],
            g: g * len,
            n: nt / len,
        })
    }

    /// Whether `x` could lie in the prism: its flat projection is within about one
    /// triangle of it and its plane distance within `(-below, above)`.
    pub(super) fn near(&self, x: &V3, below: f64, above: f64) -> bool {
        let (e1, e2, a2, n) = (self.e1, self.e2, self.a2, self.n);
        let d = x - self.p0;
        let g = d.dot(&n);
        if g <= -below || g >= above {
            return false;
        }
        let xp = d - n * g;
        let l1 = xp.cross(&e2).dot(&n) / a2;
        let l2 = e1.cross(&xp).dot(&n) / a2;
        // The prism's foot lies up to about |g| sideways of the flat projection (tilted corner
        // normals): allow that much beyond one triangle, in units of its smallest height.
        let lim = -1.0 - RIM_BAND - below.max(above) / self.height;
        l1 > lim && l2 > lim && 1.0 - l1 - l2 > lim
    }
}

/// Locates `x` in the prism of triangle `t` (corner normal coefficients `c`).
pub(super) fn locate(x: &V3, t: &[V3; 3], c: &[[f64; 3]; 3]) -> Option<Hit> {
    Prism::new(t, c)?.locate(x)
}

/// Rim fade of a foot point: 1 inside, C1 smoothstep to 0 over [`RIM_BAND`] beyond a rim
/// edge.
fn fade(xi: &[f64; 3], rim: &[bool; 3]) -> f64 {
    let mut phi = 1.0;
    for k in 0..3 {
        if rim[k] && xi[k] < 0.0 {
            let s = (1.0 + xi[k] / RIM_BAND).clamp(0.0, 1.0);
            phi *= s * s * (3.0 - 2.0 * s);
        }
    }
    phi
}

/// Parameters of one slave point's penalty.
struct Penalty {
    /// Penalty stiffness (N/mm): the pair's penalty times the point's area.
    kp: f64,
    /// Tangential (friction) penalty stiffness (N/mm): the pair's tangential penalty, else
    /// its penalty, times the point's area.
    kt: f64,
    clearance: f64,
    /// Augmented-Lagrangian multiplier (N; 0 for pure penalty).
    lam: f64,
}

impl Penalty {
    /// `clearance`: the pair's clearance at the current load factor (see
    /// [`crate::nl::Step::clearances`]).
    fn new(pair: &ContactPair, s: usize, multipliers: &[f64], clearance: f64) -> Penalty {
        Penalty {
            kp: pair.penalty * pair.slave_area[s],
            kt: pair.tangential_penalty.unwrap_or(pair.penalty) * pair.slave_area[s],
            clearance,
            lam: multipliers.get(s).copied().unwrap_or(0.0),
        }
    }

    /// Gap beyond which the point carries no force: the clearance, widened by the
    /// multiplier's reach `lam / kp`.
    fn reach(&self) -> f64 {
        if self.kp > 0.0 {
            self.clearance + self.lam / self.kp
        } else {
            self.clearance
        }
    }
}

/// Internal forces on `[slave, p0, p1, p2]` of the slave at `x[0]` against the triangle
/// `x[1..4]`, and the normal force.
fn forces(x: &[V3; 4], c: &[[f64; 3]; 3], rim: &[bool; 3], pen: &Penalty) -> ([V3; 4], f64) {
    let (f, p, _) = forces_hit(x, c, rim, pen);
    (f, p)
}

/// [`forces`] with the hit (None: no force).
fn forces_hit(
    x: &[V3; 4],
    c: &[[f64; 3]; 3],
    rim: &[bool; 3],
    pen: &Penalty,
) -> ([V3; 4], f64, Option<Hit>) {
    let zero = [V3::zeros(); 4];
    let Some(h) = locate(&x[0], &[x[1], x[2], x[3]], c) else {
        return (zero, 0.0, None);
    };
    let push = pen.lam + pen.kp * (pen.clearance - h.g);
    if push <= 0.0 {
        return (zero, 0.0, None);
    }
    let p = fade(&h.xi, rim) * push;
    let f = h.n * p;
    // Internal force = minus the contact force on the point.
    ([-f, f * h.xi[0], f * h.xi[1], f * h.xi[2]], p, Some(h))
}

/// The master material point a slave point sticks to (triangle, barycentric coordinates),
/// as of the last converged increment; `None` when it was not in contact.
pub(crate) type Anchor = Option<(usize, [f64; 3])>;

/// Regularised Coulomb friction at a slave point with normal force `p` and unit normal `n`:
/// the tangential part of the slave point's offset from its anchor `xa` is an elastic slip
/// resisted by `kt` (stick) up to `mu p` (slip: the force is returned onto the cone).
/// Returns the friction force on the slave point and whether it slips (is at the limit).
fn friction(xs: &V3, xa: &V3, n: &V3, p: f64, mu: f64, kt: f64) -> (V3, bool) {
    let d = xs - xa;
    let gt = d - n * n.dot(&d);
    let t = -gt * kt;
    let tn = t.norm();
    // A point whose anchor was just moved onto the cone (the state reported after a
    // converged increment) is at the limit to round-off: it counts as slipping.
    let at_limit = tn >= mu * p * (1.0 - 1e-6);
    if tn > mu * p {
        (t * (mu * p / tn), true)
    } else {
        (t, at_limit)
    }
}

/// Internal forces on `[slave, p0, p1, p2, a0, a1, a2]` (current triangle, then the anchor
/// triangle) with friction against the anchor point `xi_a` of `x[4..7]`; the normal force
/// and the friction force's magnitude and slip flag.
fn forces_friction(
    x: &[V3; 7],
    c: &[[f64; 3]; 3],
    rim: &[bool; 3],
    pen: &Penalty,
    xi_a: &[f64; 3],
    mu: f64,
) -> ([V3; 7], f64, f64, bool) {
    let (fnrm, p, hit) = forces_hit(&[x[0], x[1], x[2], x[3]], c, rim, pen);
    let mut f = [V3::zeros(); 7];
    f[..4].copy_from_slice(&fnrm);
    let Some(h) = hit.filter(|_| p > 0.0) else {
        return (f, p, 0.0, false);
    };
    let xa = x[4] * xi_a[0] + x[5] * xi_a[1] + x[6] * xi_a[2];
    // The tangential penalty (N/mm per point).
    let (t, slip) = friction(&x[0], &xa, &h.n, p, mu, pen.kt);
    // The slave takes t; the master, -t at the foot point (internal forces: the negatives).
    f[0] -= t;
    for k in 0..3 {
        f[1 + k] += t * h.xi[k];
    }
    (f, p, t.norm(), slip)
}

/// The slave points of one pair located on its master surface (the search, which does not
/// touch the assembly and so runs for all pairs in parallel).
pub(crate) struct Found {
    /// Current master triangles and slave points.
    masters: Vec<[Pk; 3]>,
    slaves: Vec<Pk>,
    /// Mean master edge length.
    h: f64,
    /// The pair's clearance the search was made for (mm).
    clearance: f64,
    /// Per slave point, its triangle, the hit and the rim fade (None: no triangle).
    best: Vec<Option<(usize, Hit, f64)>>,
    /// The integration points of a mortar pair (`None`: node-to-surface).
    mortar: Option<Segments>,
}

/// Locates the slave points of pair `pair` (master surface data `surf`) on its master
/// surface, for the pair's clearance `clearance` at the current load factor.
pub(crate) fn search(
    model: &Model,
    map: &DofMap,
    st: &State,
    pair: &ContactPair,
    surf: &Surface,
    clearance: f64,
) -> Found {
    let masters: Vec<[Pk; 3]> = pair
        .master
        .iter()
        .map(|t| t.map(|p| st.point(model, map, &p)))
        .collect();
    let slaves: Vec<Pk> = pair.slave.iter().map(|p| st.point(model, map, p)).collect();
    if masters.is_empty() || slaves.is_empty() {
        return Found {
            masters,
            slaves,
            h: 0.0,
            clearance,
            best: vec![],
            mortar: None,
        };
    }
    // Search distance: a point deeper than the pair's search depth (by default about one
    // master edge) below a facet is taken to be behind it rather than in contact with it.
    let mut h = 0.0;
    for t in &masters {
        h += (t[1].x - t[0].x).norm() + (t[2].x - t[1].x).norm() + (t[0].x - t[2].x).norm();
    }
    h /= 3.0 * masters.len() as f64;
    let depth = pair.search_depth.unwrap_or(h).max(1e-9);
    if !pair.slave_faces.is_empty() {
        let seg = mortar::segments(pair, surf, &masters, &slaves, h, depth, clearance);
        return Found {
            masters,
            slaves,
            h,
            clearance,
            best: vec![],
            mortar: Some(seg),
        };
    }
    let margin = clearance.max(0.0) + depth + RIM_BAND * h;
    let cell = (2.0 * h).max(margin).max(1e-9);
    // A triangle's bounding box is widened by its own reach: the clearance, the search depth
    // and its rim band (a third of its own size beyond the edge).
    let reach = |t: &[Pk; 3]| {
        let longest = (t[1].x - t[0].x)
            .norm()
            .max((t[2].x - t[1].x).norm())
            .max((t[0].x - t[2].x).norm());
        margin.max(clearance.max(0.0) + depth + RIM_BAND * longest)
    };
    // More cells than this for one triangle (a wildly stretched iterate) and it is checked
    // against every slave point instead.
    const MAX_CELLS: i64 = 4096;
    let mut everywhere: Vec<usize> = vec![];
    let gkey = |x: &V3| {
        [
            (x.x / cell).floor() as i64,
            (x.y / cell).floor() as i64,
            (x.z / cell).floor() as i64,
        ]
    };
    // The grid is kept as each triangle's box of cells and tested per slave point: a
    // facet pair has far fewer slave points (~50) than triangles (~800), and filling a hash
    // map with every cell of every box at every assembly took about 40 % of the contact
    // time. The candidates, and their order (ascending triangle index, then the unbounded
    // ones), are those of a cell lookup.
    let mut boxed: Vec<(usize, [i64; 3], [i64; 3])> = Vec::with_capacity(masters.len());
    for (i, t) in masters.iter().enumerate() {
        let mut lo = t[0].x;
        let mut hi = t[0].x;
        for p in &t[1..] {
            lo = lo.inf(&p.x);
            hi = hi.sup(&p.x);
        }
        if !(lo.iter().chain(hi.iter()).all(|v| v.is_finite())) {
            continue;
        }
        let m = V3::repeat(reach(t));
        let (a, b) = (gkey(&(lo - m)), gkey(&(hi + m)));
        let cells = (0..3).fold(1i64, |c, k| {
            c.saturating_mul((b[k] - a[k]).saturating_add(1).max(1))
        });
        if cells > MAX_CELLS {
            everywhere.push(i);
            continue;
        }
        boxed.push((i, a, b));
    }
    // Per triangle, its prism (None: degenerate) and reach.
    let prisms: Vec<(Option<Prism>, f64)> = masters
        .iter()
        .zip(&surf.corner)
        .map(|(t, c)| (Prism::new(&[t[0].x, t[1].x, t[2].x], c), reach(t)))
        .collect();
    let mut cands: Vec<usize> = Vec::with_capacity(masters.len());
    let mut found = Vec::with_capacity(slaves.len());
    for sp in &slaves {
        let key = gkey(&sp.x);
        cands.clear();
        cands.extend(
            boxed
                .iter()
                .filter(|(_, a, b)| (0..3).all(|k| a[k] <= key[k] && key[k] <= b[k]))
                .map(|&(i, _, _)| i),
        );
        // Best candidate: nearest in front, else least penetrated; interior on ties.
        let mut best: Option<(usize, Hit, f64)> = None;
        for &ti in cands.iter().chain(&everywhere) {
            let (Some(prism), reach_t) = &prisms[ti] else {
                continue;
            };
            let reach_t = *reach_t;
            // Cheap rejection by the flat projection before the prism's Newton solve.
            if !prism.near(&sp.x, depth + h, reach_t + h) {
                continue;
            }
            let Some(hit) = prism.locate(&sp.x) else {
                continue;
            };
            let rim = &surf.rim[ti];
            let outside = (0..3).any(|k| {
                if rim[k] {
                    hit.xi[k] <= -RIM_BAND
                } else {
                    hit.xi[k] < -TOL
                }
            });
            if outside || hit.g <= -depth || hit.g >= reach_t {
                continue;
            }
            let phi = fade(&hit.xi, rim);
            // Rank: in front (g >= 0) before penetrated; nearer the surface first (smallest g
            // in front, largest g behind); then interior before rim band.
            let rank = |g: f64| if g >= 0.0 { (0, g) } else { (1, -g) };
            let better = match &best {
                None => true,
                Some((_, b, bphi)) => {
                    let (r, q) = (rank(hit.g), rank(b.g));
                    r.0 < q.0
                        || (r.0 == q.0 && r.1 < q.1 - 1e-12)
                        || (r.0 == q.0 && (r.1 - q.1).abs() <= 1e-12 && phi > *bphi)
                }
            };
            if better {
                best = Some((ti, hit, phi));
            }
        }
        found.push(best);
    }
    Found {
        masters,
        slaves,
        h,
        clearance,
        best: found,
        mortar: None,
    }
}

/// Adds the contact forces of pair `pair` at the points `found` located and returns its
/// state.
pub(crate) fn apply(
    found: &Found,
    map: &DofMap,
    pair: &ContactPair,
    surf: &Surface,
    anchors: &[Anchor],
    multipliers: &[f64],
    asm: &mut Asm,
) -> ContactState {
    let Found {
        masters,
        slaves,
        h,
        clearance,
        best,
        mortar,
    } = found;
    let h = *h;
    if let Some(seg) = mortar {
        return mortar::apply(
            seg,
            masters,
            slaves,
            h,
            *clearance,
            map,
            pair,
            surf,
            multipliers,
            asm,
        );
    }
    let mut state = ContactState {
        pressure: vec![0.0; slaves.len()],
        ..Default::default()
    };
    let mut total = V3::zeros();
    for (s, (sp, best)) in slaves.iter().zip(best).enumerate() {
        let Some((ti, hit, phi)) = *best else {
            continue;
        };
        // A point exactly at the clearance carries no force but (half, by the central
        // differences) its stiffness, so a body set down touching the surface is held from
        // the first iteration.
        let pen = Penalty::new(pair, s, multipliers, *clearance);
        if hit.g > pen.reach() || phi <= 0.0 {
            continue;
        }
        let t = &masters[ti];
        let (c, rim) = (&surf.corner[ti], &surf.rim[ti]);
        if let (true, Some(Some((ta, xi_a)))) = (pair.friction > 0.0, anchors.get(s)) {
            let a = &masters[*ta];
            let pts = [*sp, t[0], t[1], t[2], a[0], a[1], a[2]];
            let xs = pts.map(|p| p.x);
            let (f, force, ft, slip) = forces_friction(&xs, c, rim, &pen, xi_a, pair.friction);
            let mut k = vec![0.0f64; 21 * 21];
            if asm.tangent {
                // Central differences of the force in the 21 coordinates; the slip branch
                // is not symmetric. On rigid-body points it is kept so (the linear solver
                // corrects the bodies' few DOFs exactly at low rank); where a mesh node
                // takes part its symmetric part is used, as without friction: a
                // non-symmetric block on every sliding node would force a general sparse
                // LU of the whole model at each iteration (on a cage pressed onto
                // deformable endplates, minutes per solve), where Newton with the
                // symmetric part needs a few more, cheap, iterations.
                let d = 1e-6 * h.max(1e-9);
                for col in 0..21 {
                    let (mut xp, mut xm) = (xs, xs);
                    xp[col / 3][col % 3] += d;
                    xm[col / 3][col % 3] -= d;
                    let (fp, ..) = forces_friction(&xp, c, rim, &pen, xi_a, pair.friction);
                    let (fm, ..) = forces_friction(&xm, c, rim, &pen, xi_a, pair.friction);
                    for row in 0..21 {
                        k[row * 21 + col] =
                            (fp[row / 3][row % 3] - fm[row / 3][row % 3]) / (2.0 * d);
                    }
                }
                symmetric_on_mesh_nodes(&mut k, 21, &pts);
            }
            let tangent = asm.tangent;
            asm.add_internal(map, &pts, &f, tangent.then_some(&k[..]));
            total -= f[0];
            state.normal_force += force;
            state.friction_force += ft;
            state.sliding_points += usize::from(slip);
            state.active_points += 1;
            let p = force / pair.slave_area[s].max(f64::MIN_POSITIVE);
            state.pressure[s] = p;
            state.max_pressure = state.max_pressure.max(p);
            continue;
        }
        let pts = [*sp, t[0], t[1], t[2]];
        let xs = pts.map(|p| p.x);
        let (f, force) = forces(&xs, c, rim, &pen);
        let mut k = [0.0f64; 144];
        if asm.tangent {
            // Central differences of the force (step relative to the triangle size).
            let d = 1e-6 * h.max(1e-9);
            for col in 0..12 {
                let (mut xp, mut xm) = (xs, xs);
                xp[col / 3][col % 3] += d;
                xm[col / 3][col % 3] -= d;
                let (fp, _) = forces(&xp, c, rim, &pen);
                let (fm, _) = forces(&xm, c, rim, &pen);
                for row in 0..12 {
                    k[row * 12 + col] = (fp[row / 3][row % 3] - fm[row / 3][row % 3]) / (2.0 * d);
                }
            }
            // The non-symmetric part of this tangent is small (the force follows the
            // interpolated normal rather than the gap gradient). On rigid-body points it lands
            // on the bodies' few DOFs, which the linear solver corrects exactly at low rank; on
            // mesh nodes it would spread over many equations and force a general LU, so there
            // the symmetric part is used (Newton stays fast, slightly less than quadratic).
            symmetric_on_mesh_nodes(&mut k, 12, &pts);
        }
        let tangent = asm.tangent;
        asm.add_internal(map, &pts, &f, tangent.then_some(&k[..]));
        total -= f[0];
        state.normal_force += force;
        state.active_points += 1;
        let p = force / pair.slave_area[s].max(f64::MIN_POSITIVE);
        state.pressure[s] = p;
        state.max_pressure = state.max_pressure.max(p);
    }
    state.force = [total.x, total.y, total.z];
    state
}

/// The anchors after a converged increment (and of the reference state), from the search
/// `found` at that state and the anchors `old` it started from: a point out of contact is
/// anchored at its foot point (none when no triangle is in reach); one that came into
/// contact without an anchor sticks where it touches; one that sticks keeps its anchor; one
/// that slips takes the anchor that leaves it on the friction cone (elastic slip
/// `mu p / kt` behind it).
pub(crate) fn anchors(
    found: &Found,
    pair: &ContactPair,
    surf: &Surface,
    old: &[Anchor],
    multipliers: &[f64],
) -> Vec<Anchor> {
    let Found {
        masters,
        slaves,
        clearance,
        best,
        mortar,
        ..
    } = found;
    if mortar.is_some() {
        // Frictionless only: no anchors.
        return vec![None; slaves.len()];
    }
    slaves
        .iter()
        .zip(best)
        .enumerate()
        .map(|(s, (sp, best))| {
            let (ti, hit, phi) = (*best)?;
            let pen = Penalty::new(pair, s, multipliers, *clearance);
            if hit.g >= pen.reach() || phi <= 0.0 {
                // Not in contact: anchored at its foot, where it will stick if it touches
                // in the next increment.
                return Some((ti, hit.xi));
            }
            let t = &masters[ti];
            let x4 = [sp.x, t[0].x, t[1].x, t[2].x];
            let (_, p, h) = forces_hit(&x4, &surf.corner[ti], &surf.rim[ti], &pen);
            let Some(h) = h.filter(|_| p > 0.0) else {
                return Some((ti, hit.xi));
            };
            let Some(Some((ta, xi_a))) = old.get(s) else {
                return Some((ti, h.xi));
            };
            let a = &masters[*ta];
            let xa = a[0].x * xi_a[0] + a[1].x * xi_a[1] + a[2].x * xi_a[2];
            let (f, slip) = friction(&sp.x, &xa, &h.n, p, pair.friction, pen.kt);
            if !slip {
                return Some((*ta, *xi_a));
            }
            // The new anchor, the foot point moved by f / kt, in the foot triangle's
            // barycentric coordinates (its flat frame).
            let v = f / pen.kt;
            let (e1, e2) = (t[1].x - t[0].x, t[2].x - t[0].x);
            let w = e1.cross(&e2);
            let a2 = w.norm_squared();
            let (d1, d2) = (v.cross(&e2).dot(&w) / a2, e1.cross(&v).dot(&w) / a2);
            Some((ti, [h.xi[0] - d1 - d2, h.xi[1] + d1, h.xi[2] + d2]))
        })
        .collect()
}

/// One augmented-Lagrangian (Uzawa) update of pair `pair`'s multipliers `old` at the
/// converged state that `found` was searched in: `lambda <- <lambda + kp (clearance - g)>`
/// for a point on the master surface (zero off it, or beyond its rim band). Returns the new
/// multipliers and the largest change of one as a distance (`|d lambda| / kp`, mm): how far
/// a point still penetrates, or has let go, at this state.
pub(crate) fn augment(found: &Found, pair: &ContactPair, old: &[f64]) -> (Vec<f64>, f64) {
    if let Some(seg) = &found.mortar {
        return mortar::augment(seg, pair, found.clearance, old);
    }
    let mut worst = 0.0f64;
    let new = (0..pair.slave.len())
        .map(|s| {
            let pen = Penalty::new(pair, s, old, found.clearance);
            let next = match found.best.get(s) {
                Some(Some((_, hit, phi))) if *phi > 0.0 => {
                    (pen.lam + pen.kp * (pen.clearance - hit.g)).max(0.0)
                }
                _ => 0.0,
            };
            if pen.kp > 0.0 {
                worst = worst.max((next - pen.lam).abs() / pen.kp);
            }
            next
        })
        .collect();
    (new, worst)
}

/// Replaces the `n x n` block `k` by its symmetric part when any of `pts` is a mesh node
/// (see the two callers for why rigid-body points keep the exact Jacobian).
fn symmetric_on_mesh_nodes(k: &mut [f64], n: usize, pts: &[Pk]) {
    if pts.iter().all(|p| matches!(p.kin, Kin::Body { .. })) {
        return;
    }
    for r in 0..n {
        for c in r + 1..n {
            let m = 0.5 * (k[r * n + c] + k[c * n + r]);
            k[r * n + c] = m;
            k[c * n + r] = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_point(at: [f64; 3]) -> Point {
        Point::Body { body: 0, at }
    }

    /// A cylinder-like roof: two strips of triangles meeting at a ridge along y at x = 0,
    /// with slopes of +-`s`.
    fn ridge(s: f64) -> (Model, ContactPair) {
        let z = |x: f64| -s * x.abs();
        let xs = [-2.0, 0.0, 2.0];
        let ys = [-2.0, 0.0, 2.0];
        let p = |i: usize, j: usize| body_point([xs[i], ys[j], z(xs[i])]);
        let mut master = vec![];
        for i in 0..2 {
            for j in 0..2 {
                master.push([p(i, j), p(i + 1, j), p(i + 1, j + 1)]);
                master.push([p(i, j), p(i + 1, j + 1), p(i, j + 1)]);
            }
        }
        let pair = ContactPair {
            name: "ridge".into(),
            slave: vec![],
            slave_area: vec![],
            master,
            penalty: 10.0,
            clearance: 0.5,
            friction: 0.0,
            augmented: None,
            tangential_penalty: None,
            search_depth: None,
            slave_faces: vec![],
        };
        (Model::default(), pair)
    }

    #[test]
    fn the_gap_is_continuous_across_a_convex_ridge_and_has_no_dead_zone() {
        let (model, pair) = ridge(0.3);
        let surf = Surface::new(&model, &pair);
        let tris: Vec<[V3; 3]> = pair
            .master
            .iter()
            .map(|t| t.map(|p| reference(&model, &p)))
            .collect();
        // Slave points 0.4 mm above the ridge, sweeping across it: each must find a prism
        // (no wedge without a triangle) and the gap must vary smoothly.
        let mut prev: Option<f64> = None;
        for i in 0..=200 {
            let x = -0.5 + i as f64 * 0.005;
            let p = V3::new(x, 0.3, 0.4 - 0.3 * x.abs());
            let mut found = None;
            for (ti, t) in tris.iter().enumerate() {
                if let Some(h) = locate(&p, t, &surf.corner[ti]) {
                    if h.xi.iter().all(|&v| v >= -TOL) {
                        found = Some(h);
                        break;
                    }
                }
            }
            let h = found.unwrap_or_else(|| panic!("no prism holds x = {x}"));
            if let Some(g0) = prev {
                assert!(
                    (h.g - g0).abs() < 0.01,
                    "gap jumps at x = {x}: {g0} -> {}",
                    h.g
                );
            }
            prev = Some(h.g);
            assert!(h.g > 0.3 && h.g < 0.45, "gap {} at x = {x}", h.g);
        }
    }

    #[test]
    fn the_force_fades_out_smoothly_beyond_the_rim() {
        let (model, pair) = ridge(0.0);
        let surf = Surface::new(&model, &pair);
        let pen = Penalty {
            kp: 10.0,
            kt: 10.0,
            clearance: 0.5,
            lam: 0.0,
        };
        // Slide a point 0.1 mm above the flat surface across its rim at x = 2.
        let t = pair.master[6].map(|p| reference(&model, &p));
        let mut prev = None;
        for i in 0..=100 {
            let x = 1.8 + i as f64 * 0.01;
            let xs = [V3::new(x, 1.5, 0.1), t[0], t[1], t[2]];
            let (_, p) = forces(&xs, &surf.corner[6], &surf.rim[6], &pen);
            if let Some(p0) = prev {
                let dp: f64 = p - p0;
                assert!(dp.abs() < 0.2, "force jumps at x = {x}: {p0} -> {p}");
            }
            prev = Some(p);
            if x <= 2.0 {
                assert!((p - 4.0).abs() < 1e-9, "full force inside: {p} at {x}");
            }
        }
        assert!(prev.unwrap() < 1e-12, "no force far beyond the rim");
    }
}
