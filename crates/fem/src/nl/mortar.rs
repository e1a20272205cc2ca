//! Mortar (surface-to-surface) penalty contact on the smoothed master surface, for a
//! [`ContactPair`] with slave faces ([`super::SlaveFace`]: triangles or bilinear
//! quadrilaterals).
//!
//! **Why.** Node-to-surface contact pushes each slave node on its own, with its tributary
//! area. Where the two meshes do not match, a uniform pressure then reaches the master
//! nodes unevenly (a master node between two slave nodes takes nothing, one under a slave
//! node takes its whole area) and the master's stresses oscillate: the contact patch test
//! fails. Integrating the contact over the slave surface segment by segment, with the
//! pressure a field on it, passes it (Puso & Laursen 2004, Comput Methods Appl Mech Eng
//! 193:601, the mortar segment-to-segment method; Yang, Laursen & Meng 2005, Int J Numer
//! Methods Eng 62:1183, its penalty form).
//!
//! **Segments.** In the current configuration, each slave face `T` and each master
//! triangle `M` whose box is within reach are projected onto `T`'s plane; their overlap
//! (Sutherland-Hodgman clipping of the face by the triangle) is cut into triangles, each
//! integrated with the three-point rule of degree 2, which is exact for the product of a
//! linear slave and a master shape function (and close for a bilinear face). Each integration point `q` (weight `w`, slave shape
//! functions `N_a(q)`, position `x_q = sum N_a x_a`) is located in `M`'s prism exactly as a
//! node-to-surface slave point is ([`super::contact`]): gap `g_q`, unit normal `n_q`,
//! barycentric foot `xi`. Points behind the surface by more than a master edge, or farther
//! above it than the clearance plus a master edge, are left out; so is a point that
//! another candidate triangle holds in a clearly better layer (nearer in front, by more
//! than half a master edge), which keeps the far side of a thin master from acting.
//!
//! **Pressure.** Each slave point `a` has a weighted gap `G_a = sum_q w N_a(q) (c - g_q)`
//! (`c` the clearance; mm^3) and the area `A_a = int N_a` of its share of the slave surface.
//! Its force is `P_a = <lambda_a + penalty G_a>` (N; `lambda_a` the augmented-Lagrangian
//! multiplier, 0 for the plain penalty) and its pressure `p_a = P_a / A_a`, the penalty
//! times its mean penetration: the energy is `sum_a penalty G_a^2 / (2 A_a)`. The pressure
//! interpolated over the slave surface, `p(q) = sum_a N_a(q) p_a`, pushes the slave point
//! `x_q` along `n_q` with the force `w p(q)` (shared by the slave nodes with `N_a(q)`) and
//! the master's foot point back (shared by its corners with `xi`). A uniform gap gives a
//! uniform pressure, and the rule integrates both sides' nodal forces exactly: the patch
//! test. Along the master's rim the overlap shrinks continuously, so no fade band is
//! needed.
//!
//! **Tangent.** Two parts, the segmentation held fixed (as is usual): per active slave
//! point, the rank-one `(penalty / A_a) b_a b_a^T` with `b_a = dG_a / dx` (the gap gradient
//! taken as `-n_q` at the slave point, `+n_q xi` at the master corners), and per
//! integration point the central-difference Jacobian of its force at a fixed magnitude (the
//! turning normal and sliding foot), symmetrised where a mesh node takes part as in
//! node-to-surface contact. Exact for flat surfaces; on curved ones Newton converges
//! slightly less than quadratically.
//!
//! **Limits.** Frictionless (a frictional pair needs node-to-surface contact: refused
//! before the solve). The per-point quantities of [`ContactState`] are those of the slave
//! points: `pressure` is `p_a`, and a point is active when `P_a > 0`.

use std::collections::HashMap;

use super::assemble::Asm;
use super::contact::{key, Hit, Prism, Surface, TOL};
use super::grid::BoxGrid;
use super::kin::{DofMap, Kin, Pk, V3};
use super::{ContactPair, ContactState, SlaveFace};

/// Three-point rule of degree 2 on a triangle: the points in the coordinates of the
/// corners 1 and 2 (weights one third each).
const RULE: [(f64, f64); 3] = [
    (1.0 / 6.0, 1.0 / 6.0),
    (2.0 / 3.0, 1.0 / 6.0),
    (1.0 / 6.0, 2.0 / 3.0),
];

/// Smallest `|n_T . n_M|` for which a master triangle is projected onto a slave face:
/// nearly perpendicular triangles do not face each other (and their projection degenerates).
const FACING_COS: f64 = 0.2;

/// One integration point of the slave surface.
#[derive(Clone, Copy, Debug)]
struct Gp {
    /// Slave face (index into the pair's `slave_faces`).
    face: usize,
    /// The face's shape functions at the point (unused entries 0).
    nq: [f64; 4],
    /// Weight (mm^2, current configuration).
    w: f64,
    /// Master triangle.
    m: usize,
    /// The point located in the master triangle's prism.
    hit: Hit,
}

/// The integration points of a mortar pair in one configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Segments {
    gps: Vec<Gp>,
    /// Per slave point, `A_a = int N_a` over the slave surface (mm^2, current).
    area: Vec<f64>,
}

/// Clips the convex polygon `poly` by the convex counter-clockwise polygon `clip`
/// (Sutherland-Hodgman), in 2-D.
fn clip_polygon(poly: &[[f64; 2]], clip: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = poly.to_vec();
    for k in 0..clip.len() {
        if out.is_empty() {
            break;
        }
        let (a, b) = (clip[k], clip[(k + 1) % clip.len()]);
        // Signed distance (times the edge length) to the left of a -> b.
        let side = |p: &[f64; 2]| (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
        let input = std::mem::take(&mut out);
        for i in 0..input.len() {
            let (p, q) = (input[i], input[(i + 1) % input.len()]);
            let (sp, sq) = (side(&p), side(&q));
            if sp >= 0.0 {
                out.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
            }
        }
    }
    out
}

/// Rank of a gap for choosing between layers: in front (g >= 0) before penetrated, nearer
/// the surface first.
fn rank(g: f64) -> (u8, f64) {
    if g >= 0.0 {
        (0, g)
    } else {
        (1, -g)
    }
}

/// The integration points of `pair` (slave faces given) at the current positions of
/// its master triangles `masters` and slave points `slaves`; `h` the mean master edge,
/// `depth` the pair's search depth (see [`ContactPair::search_depth`]).
pub(super) fn segments(
    pair: &ContactPair,
    surf: &Surface,
    masters: &[[Pk; 3]],
    slaves: &[Pk],
    h: f64,
    depth: f64,
    clearance: f64,
) -> Segments {
    let mut area = vec![0.0; slaves.len()];
    let mut gps = Vec::new();
    let top = clearance.max(0.0) + depth;
    let prisms: Vec<Option<Prism>> = masters
        .iter()
        .zip(&surf.corner)
        .map(|(t, c)| Prism::new(&[t[0].x, t[1].x, t[2].x], c))
        .collect();
    // Uniform grid of the master triangles' boxes, widened by the reach above them.
    let mut grid = BoxGrid::new((2.0 * h).max(top).max(1e-9));
    for (i, t) in masters.iter().enumerate() {
        if prisms[i].is_none() {
            continue;
        }
        let (mut lo, mut hi) = (t[0].x, t[0].x);
        for p in &t[1..] {
            lo = lo.inf(&p.x);
            hi = hi.sup(&p.x);
        }
        let m = V3::repeat(top);
        grid.insert(i, &(lo - m), &(hi + m));
    }
    let mut cands: Vec<usize> = Vec::new();
    for (fi, face) in pair.slave_faces.iter().enumerate() {
        let corners = face.nodes();
        let s: Vec<V3> = corners.iter().map(|&k| slaves[k].x).collect();
        if !s.iter().all(|p| p.iter().all(|v| v.is_finite())) {
            continue;
        }
        // The face's plane: through its centroid, normal from the cross product of its
        // diagonals (of two edges for a triangle).
        let centre = s.iter().sum::<V3>() / s.len() as f64;
        let nn = match face {
            SlaveFace::Tri(_) => (s[1] - s[0]).cross(&(s[2] - s[0])),
            SlaveFace::Quad(_) => (s[2] - s[0]).cross(&(s[3] - s[1])),
        };
        let a2 = nn.norm();
        if a2 < 1e-14 {
            continue;
        }
        let xs: Vec<[f64; 3]> = s.iter().map(|p| [p.x, p.y, p.z]).collect();
        let shares = face.nodal_areas(&xs);
        for (k, &c) in corners.iter().enumerate() {
            area[c] += shares[k];
        }
        let nt = nn / a2;
        let u = (s[1] - s[0] - nt * nt.dot(&(s[1] - s[0]))).normalize();
        let v = nt.cross(&u);
        let to2 = |x: &V3| {
            let d = x - centre;
            [d.dot(&u), d.dot(&v)]
        };
        let f2: Vec<[f64; 2]> = s.iter().map(&to2).collect();
        let size = (s[1] - s[0]).norm().max((s[2] - s[1]).norm());
        // Candidates: master triangles in the cells of the slave face's box.
        let (mut lo, mut hi) = (s[0], s[0]);
        for p in &s[1..] {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        grid.overlapping(&lo, &hi, &mut cands);
        for &m in &cands {
            let Some(prism) = &prisms[m] else { continue };
            if prism.n.dot(&nt).abs() < FACING_COS {
                continue;
            }
            let mut m2: Vec<[f64; 2]> = masters[m].iter().map(|p| to2(&p.x)).collect();
            let signed = (m2[1][0] - m2[0][0]) * (m2[2][1] - m2[0][1])
                - (m2[1][1] - m2[0][1]) * (m2[2][0] - m2[0][0]);
            if signed.abs() < 1e-12 * a2 {
                continue;
            }
            if signed < 0.0 {
                m2.swap(1, 2);
            }
            let poly = clip_polygon(&f2, &m2);
            if poly.len() < 3 {
                continue;
            }
            for k in 1..poly.len() - 1 {
                let (p0, p1, p2) = (poly[0], poly[k], poly[k + 1]);
                let sub =
                    0.5 * ((p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0]));
                if sub <= 1e-14 * a2 {
                    continue;
                }
                for (r, q) in RULE {
                    let x2 = [
                        p0[0] + (p1[0] - p0[0]) * r + (p2[0] - p0[0]) * q,
                        p0[1] + (p1[1] - p0[1]) * r + (p2[1] - p0[1]) * q,
                    ];
                    let Some(nq) = natural(face, &f2, x2, size) else {
                        continue;
                    };
                    let x: V3 = (0..corners.len()).map(|k| s[k] * nq[k]).sum();
                    let Some(hit) = prism.locate(&x) else {
                        continue;
                    };
                    if !(hit.g > -depth && hit.g < top) {
                        continue;
                    }
                    // Another layer that holds the point clearly better takes it.
                    let shadowed = cands.iter().any(|&o| {
                        if o == m {
                            return false;
                        }
                        let Some(po) = &prisms[o] else { return false };
                        if !po.near(&x, depth + h, top + h) {
                            return false;
                        }
                        po.locate(&x).is_some_and(|ho| {
                            ho.xi.iter().all(|&c| c >= -TOL)
                                && ho.g > -depth
                                && ho.g < top
                                && (ho.g - hit.g).abs() > 0.5 * h
                                && rank(ho.g) < rank(hit.g)
                        })
                    });
                    if shadowed {
                        continue;
                    }
                    gps.push(Gp {
                        face: fi,
                        nq,
                        w: sub / 3.0,
                        m,
                        hit,
                    });
                }
            }
        }
    }
    Segments { gps, area }
}

/// The shape functions of `face` at the point `x` of its plane, from the corners' plane
/// coordinates `f2` (`size`: an edge length, the tolerance's scale). A quadrilateral's
/// bilinear map is inverted by Newton's method from the centre.
fn natural(face: &SlaveFace, f2: &[[f64; 2]], x: [f64; 2], size: f64) -> Option<[f64; 4]> {
    match face {
        SlaveFace::Tri(_) => {
            let (a, b) = (
                [f2[1][0] - f2[0][0], f2[1][1] - f2[0][1]],
                [f2[2][0] - f2[0][0], f2[2][1] - f2[0][1]],
            );
            let d = [x[0] - f2[0][0], x[1] - f2[0][1]];
            let det = a[0] * b[1] - a[1] * b[0];
            if det.abs() < 1e-300 {
                return None;
            }
            let r = (d[0] * b[1] - d[1] * b[0]) / det;
            let s = (a[0] * d[1] - a[1] * d[0]) / det;
            Some(face.shape(r, s))
        }
        SlaveFace::Quad(_) => {
            let (mut r, mut s) = (0.0, 0.0);
            for _ in 0..30 {
                let n = face.shape(r, s);
                let mut res = [-x[0], -x[1]];
                for k in 0..4 {
                    res[0] += n[k] * f2[k][0];
                    res[1] += n[k] * f2[k][1];
                }
                if res[0].hypot(res[1]) <= 1e-13 * size {
                    return Some(n);
                }
                let dr = [
                    0.25 * ((f2[1][0] - f2[0][0]) * (1.0 - s) + (f2[2][0] - f2[3][0]) * (1.0 + s)),
                    0.25 * ((f2[1][1] - f2[0][1]) * (1.0 - s) + (f2[2][1] - f2[3][1]) * (1.0 + s)),
                ];
                let ds = [
                    0.25 * ((f2[3][0] - f2[0][0]) * (1.0 - r) + (f2[2][0] - f2[1][0]) * (1.0 + r)),
                    0.25 * ((f2[3][1] - f2[0][1]) * (1.0 - r) + (f2[2][1] - f2[1][1]) * (1.0 + r)),
                ];
                let det = dr[0] * ds[1] - dr[1] * ds[0];
                if det.abs() < 1e-300 {
                    return None;
                }
                r -= (res[0] * ds[1] - res[1] * ds[0]) / det;
                s -= (dr[0] * res[1] - dr[1] * res[0]) / det;
            }
            None
        }
    }
}

/// Weighted gap `G_a` of every slave point (mm^3).
fn weighted_gaps(seg: &Segments, pair: &ContactPair, clearance: f64) -> Vec<f64> {
    let mut gw = vec![0.0; seg.area.len()];
    for gp in &seg.gps {
        for (k, &a) in pair.slave_faces[gp.face].nodes().iter().enumerate() {
            gw[a] += gp.w * gp.nq[k] * (clearance - gp.hit.g);
        }
    }
    gw
}

/// Force `P_a` (N) of every slave point from its weighted gap `gw` and multiplier.
fn point_forces(seg: &Segments, pair: &ContactPair, gw: &[f64], multipliers: &[f64]) -> Vec<f64> {
    (0..gw.len())
        .map(|a| {
            if seg.area[a] <= 0.0 {
                return 0.0;
            }
            let lam = multipliers.get(a).copied().unwrap_or(0.0);
            (lam + pair.penalty * gw[a]).max(0.0)
        })
        .collect()
}

/// Internal forces on `[x_q, m0, m1, m2]` of a point pushed off the prism of the triangle
/// `x[1..4]` with the fixed force `fq` (N), or `None` off the prism.
fn fixed_forces(x: &[V3; 4], c: &[[f64; 3]; 3], fq: f64) -> Option<[V3; 4]> {
    let h = Prism::new(&[x[1], x[2], x[3]], c)?.locate(&x[0])?;
    let f = h.n * fq;
    Some([-f, f * h.xi[0], f * h.xi[1], f * h.xi[2]])
}

/// Adds the forces and tangent of a mortar pair at the integration points `seg` and returns
/// its state.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    seg: &Segments,
    masters: &[[Pk; 3]],
    slaves: &[Pk],
    h: f64,
    clearance: f64,
    map: &DofMap,
    pair: &ContactPair,
    surf: &Surface,
    multipliers: &[f64],
    asm: &mut Asm,
) -> ContactState {
    let n = slaves.len();
    let gw = weighted_gaps(seg, pair, clearance);
    let big_p = point_forces(seg, pair, &gw, multipliers);
    let p: Vec<f64> = (0..n)
        .map(|a| {
            if big_p[a] > 0.0 {
                big_p[a] / seg.area[a]
            } else {
                0.0
            }
        })
        .collect();
    let mut state = ContactState {
        pressure: p.clone(),
        ..Default::default()
    };
    let faces = &pair.slave_faces;
    let mut total = V3::zeros();
    let tangent = asm.tangent;
    // Integration points: forces at the interpolated pressure, and their geometric tangent.
    for gp in &seg.gps {
        let t = faces[gp.face].nodes();
        let nf = t.len();
        let pq: f64 = (0..nf).map(|k| gp.nq[k] * p[t[k]]).sum();
        if pq <= 0.0 {
            continue;
        }
        let fq = gp.w * pq;
        let mt = &masters[gp.m];
        let c = &surf.corner[gp.m];
        let xq: V3 = (0..nf).map(|k| slaves[t[k]].x * gp.nq[k]).sum();
        let xs = [xq, mt[0].x, mt[1].x, mt[2].x];
        let fv = gp.hit.n * fq;
        // The face's nodes, then the master triangle's corners.
        let np = nf + 3;
        let pts: Vec<Pk> = t
            .iter()
            .map(|&k| slaves[k])
            .chain(mt.iter().copied())
            .collect();
        let fs: Vec<V3> = (0..nf)
            .map(|k| -fv * gp.nq[k])
            .chain((0..3).map(|k| fv * gp.hit.xi[k]))
            .collect();
        let mut kk = vec![0.0f64; 9 * np * np];
        if tangent {
            // Central differences of the force at a fixed magnitude in the 12 coordinates of
            // the integration point and the master triangle.
            let d = 1e-6 * h.max(1e-9);
            let mut k4 = [0.0f64; 144];
            for col in 0..12 {
                let (mut xp, mut xm) = (xs, xs);
                xp[col / 3][col % 3] += d;
                xm[col / 3][col % 3] -= d;
                let (Some(fp), Some(fm)) = (fixed_forces(&xp, c, fq), fixed_forces(&xm, c, fq))
                else {
                    continue;
                };
                for row in 0..12 {
                    k4[row * 12 + col] = (fp[row / 3][row % 3] - fm[row / 3][row % 3]) / (2.0 * d);
                }
            }
            // The integration point moves with the slave nodes by N: expand its row and
            // column of blocks to the face's nodes.
            let weight = |i: usize| -> (usize, f64) {
                if i < nf {
                    (0, gp.nq[i])
                } else {
                    (i + 1 - nf, 1.0)
                }
            };
            let w3 = 3 * np;
            for i in 0..np {
                let (bi, wi) = weight(i);
                for j in 0..np {
                    let (bj, wj) = weight(j);
                    for r in 0..3 {
                        for cc in 0..3 {
                            kk[(3 * i + r) * w3 + 3 * j + cc] =
                                wi * wj * k4[(3 * bi + r) * 12 + 3 * bj + cc];
                        }
                    }
                }
            }
            if pts.iter().any(|p| !matches!(p.kin, Kin::Body { .. })) {
                for r in 0..w3 {
                    for cc in r + 1..w3 {
                        let m = 0.5 * (kk[r * w3 + cc] + kk[cc * w3 + r]);
                        kk[r * w3 + cc] = m;
                        kk[cc * w3 + r] = m;
                    }
                }
            }
        }
        asm.add_internal(map, &pts, &fs, tangent.then_some(&kk[..]));
        total += fv;
        state.normal_force += fq;
    }
    // Per active slave point: (penalty / A_a) b_a b_a^T, b_a = dG_a / dx.
    let mut support: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, gp) in seg.gps.iter().enumerate() {
        for &a in faces[gp.face].nodes() {
            support[a].push(i);
        }
    }
    for a in 0..n {
        if big_p[a] > 0.0 {
            state.active_points += 1;
            state.max_pressure = state.max_pressure.max(p[a]);
        }
        // A point exactly touching (to round-off) carries no force but its stiffness, so a
        // body set down on the surface is held from the first iteration.
        let lam = multipliers.get(a).copied().unwrap_or(0.0);
        let touching = seg.area[a] > 0.0
            && lam + pair.penalty * gw[a] >= -1e-9 * pair.penalty * seg.area[a] * h;
        if !tangent || !(big_p[a] > 0.0 || touching) {
            continue;
        }
        let mut ids: HashMap<(u8, usize, [u64; 3]), usize> = HashMap::new();
        let mut pts: Vec<Pk> = Vec::new();
        let mut b: Vec<V3> = Vec::new();
        let mut add = |id: (u8, usize, [u64; 3]), pk: Pk, v: V3| {
            let i = *ids.entry(id).or_insert_with(|| {
                pts.push(pk);
                b.push(V3::zeros());
                pts.len() - 1
            });
            b[i] += v;
        };
        for &i in &support[a] {
            let gp = &seg.gps[i];
            let t = faces[gp.face].nodes();
            let ka = t.iter().position(|&x| x == a).unwrap_or(0);
            let wn = gp.hit.n * (gp.w * gp.nq[ka]);
            for (k, &c) in t.iter().enumerate() {
                add((2, c, [0; 3]), slaves[c], -wn * gp.nq[k]);
            }
            for ((p, pk), xi) in pair.master[gp.m].iter().zip(&masters[gp.m]).zip(gp.hit.xi) {
                add(key(p), *pk, wn * xi);
            }
        }
        let m = pts.len();
        let coef = pair.penalty / seg.area[a];
        let mut k = vec![0.0f64; 9 * m * m];
        for i in 0..m {
            for j in 0..m {
                for r in 0..3 {
                    for cc in 0..3 {
                        k[(3 * i + r) * 3 * m + 3 * j + cc] = coef * b[i][r] * b[j][cc];
                    }
                }
            }
        }
        let zero = vec![V3::zeros(); m];
        asm.add_internal(map, &pts, &zero, Some(&k));
    }
    state.force = [total.x, total.y, total.z];
    state
}

/// One augmented-Lagrangian (Uzawa) update of a mortar pair's multipliers: `lambda_a <-
/// <lambda_a + penalty G_a>`. Returns them and the largest change as a mean penetration
/// (`|d lambda_a| / (penalty A_a)`, mm).
pub(super) fn augment(
    seg: &Segments,
    pair: &ContactPair,
    clearance: f64,
    old: &[f64],
) -> (Vec<f64>, f64) {
    let gw = weighted_gaps(seg, pair, clearance);
    let new = point_forces(seg, pair, &gw, old);
    let mut worst = 0.0f64;
    for (a, (next, area)) in new.iter().zip(&seg.area).enumerate() {
        let kp = pair.penalty * area;
        if kp > 0.0 {
            let lam = old.get(a).copied().unwrap_or(0.0);
            worst = worst.max((next - lam).abs() / kp);
        }
    }
    (new, worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(p: &[[f64; 2]]) -> f64 {
        let mut s = 0.0;
        for i in 0..p.len() {
            let (a, b) = (p[i], p[(i + 1) % p.len()]);
            s += a[0] * b[1] - a[1] * b[0];
        }
        0.5 * s
    }

    #[test]
    fn clipping_two_triangles_gives_their_overlap() {
        let t = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]];
        // The same triangle mirrored about x + y = 2 overlaps it in nothing but an edge.
        let m = [[2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        assert!(area(&clip_polygon(&t, &m)).abs() < 1e-12);
        // A unit square at the corner: overlap is the square (area 1).
        let sq = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!((area(&clip_polygon(&t, &sq)) - 1.0).abs() < 1e-12);
        // Shifted by (0.5, 0.5): a triangle of legs 1 (area 0.5).
        let sh: Vec<[f64; 2]> = sq.iter().map(|p| [p[0] + 0.5, p[1] + 0.5]).collect();
        assert!((area(&clip_polygon(&t, &sh)) - 0.5).abs() < 1e-12);
        // Containing the whole triangle: the triangle (area 2).
        let big = [[-1.0, -1.0], [5.0, -1.0], [-1.0, 5.0]];
        assert!((area(&clip_polygon(&t, &big)) - 2.0).abs() < 1e-12);
    }
}
