//! Tied (bonded) interfaces between surfaces that do not share nodes.
//!
//! **Projection (once, reference configuration).** Each slave point is projected onto its
//! closest master triangle (closest point on a triangle by its Voronoi regions, e.g.
//! Ericson 2005, Real-Time Collision Detection, sec. 5.1.5); candidate triangles come from a
//! uniform grid over their bounding boxes widened by the tolerance. The slave point is then
//! written in the chosen triangle's frame, `X_s = sum N_i X_i + c n`: `N` are the
//! (unclamped) barycentric coordinates of its projection on the triangle's plane, `n` the
//! triangle's unit normal and `c` the signed distance, so the reference gap is zero and a
//! slave point slightly off the surface is bonded where it is, without initial stress.
//!
//! **Bond.** The gap `g = x_s - sum N_i x_i - c n(x)` (current positions) carries the
//! penalty energy `k |g|^2 / 2`. For a slave point on the surface (`c = 0`) `g` is linear
//! in the positions and the tangent constant; otherwise the offset is a rigid arm of
//! length `c` along the triangle's current normal: it turns with the triangle (a rigid
//! rotation of the interface leaves the gap zero) and does not stretch with it (a
//! length proportional to the area, tried first, coupled the normal force into in-plane
//! forces on the master and spoiled the patch test). Points on rigid
//! bodies enter through their kinematics ([`Asm::add_internal`]), which adds the rotational
//! geometric terms.
//!
//! **Mortar** (slave triangles given; [`mortar`]). The bond of slave point `j` is its gap
//! averaged over its share of the slave surface, `g_j = (sum_k D_jk x_k - sum_l M_jl x_l) /
//! A_j - g0_j`, with `D_jk = int phi_j phi_k` and `M_jl = int phi_j psi_l` over the overlaps
//! of slave and master triangles (`phi`, `psi` their linear shape functions), `A_j = sum_k
//! D_jk` and `g0_j` the reference value; energy `k_j |g_j|^2 / 2` with `k_j` proportional to
//! `A_j`. A uniform traction then loads both sides with their consistent nodal forces
//! (`sum_j D_jk = int phi_k`, `sum_j M_jl = int psi_l`) while a linear displacement field
//! leaves every `g_j` zero: the patch test passes. The tangent is constant.

use super::assemble::{Active, Asm};
use super::contact::reference;
use super::grid::BoxGrid;
use super::kin::{skew, DofMap, Kin, Pk, Slot, State, M3, V3};
use super::{Model, Point, Tie, TieState};
use crate::FemError;

/// One slave point's bond, fixed for the analysis.
#[derive(Clone, Copy, Debug)]
struct Bond {
    /// Master triangle.
    tri: usize,
    /// Barycentric coordinates of the slave point's projection on the triangle's plane.
    n: [f64; 3],
    /// Signed distance from the triangle's plane along its unit normal (mm).
    c: f64,
}

/// One slave point's mortar constraint: its weighted-average gap `g = sum coef_a x_a - g0`
/// over the points `pts` (slave points first, `nslave` of them, then master corners).
#[derive(Clone, Debug)]
struct Row {
    pts: Vec<Point>,
    coef: Vec<f64>,
    nslave: usize,
    /// The reference value, subtracted so that the reference state is stress-free.
    g0: V3,
    /// Penalty (N/mm).
    k: f64,
}

/// A tie's bonds and penalty.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bonds {
    /// Node-to-surface bonds (when the tie has no slave triangles).
    bonds: Vec<Bond>,
    /// Mortar rows (when it has).
    rows: Vec<Row>,
    /// Penalty per slave point (N/mm); the mortar rows scale it by their tributary area
    /// over the mean one.
    k: f64,
}

impl Bonds {
    /// Penalty per slave point (N/mm; the mortar rows scale it by their tributary area over
    /// the mean one).
    pub(crate) fn penalty(&self) -> f64 {
        self.k
    }

    /// Largest distance (mm) of a slave point from the plane of its master triangle
    /// (node-to-surface bonds; 0 for a mortar tie, whose rows hold no offset).
    pub(crate) fn max_offset(&self) -> f64 {
        self.bonds.iter().fold(0.0f64, |m, b| m.max(b.c.abs()))
    }
}

/// Closest point to `p` on triangle `[a, b, c]`: its barycentric coordinates.
fn closest_on_triangle(p: &V3, a: &V3, b: &V3, c: &V3) -> [f64; 3] {
    let (ab, ac, ap) = (b - a, c - a, p - a);
    let (d1, d2) = (ab.dot(&ap), ac.dot(&ap));
    if d1 <= 0.0 && d2 <= 0.0 {
        return [1.0, 0.0, 0.0];
    }
    let bp = p - b;
    let (d3, d4) = (ab.dot(&bp), ac.dot(&bp));
    if d3 >= 0.0 && d4 <= d3 {
        return [0.0, 1.0, 0.0];
    }
    let vc = d1 * d4 - d3 * d2;
    if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
        let v = d1 / (d1 - d3);
        return [1.0 - v, v, 0.0];
    }
    let cp = p - c;
    let (d5, d6) = (ab.dot(&cp), ac.dot(&cp));
    if d6 >= 0.0 && d5 <= d6 {
        return [0.0, 0.0, 1.0];
    }
    let vb = d5 * d2 - d1 * d6;
    if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
        let w = d2 / (d2 - d6);
        return [1.0 - w, 0.0, w];
    }
    let va = d3 * d6 - d5 * d4;
    if va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0 {
        let w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        return [0.0, 1.0 - w, w];
    }
    let denom = 1.0 / (va + vb + vc);
    let (v, w) = (vb * denom, vc * denom);
    [1.0 - v - w, v, w]
}

/// Projects every slave point of `tie` onto its master surface and sets the penalty.
/// `block_of[e]` is the solid block of element `e` (for the automatic penalty).
pub(crate) fn prepare(
    model: &Model,
    tie: &Tie,
    block_of: &[Option<usize>],
) -> Result<Bonds, FemError> {
    let bad = |m: String| Err(FemError::InvalidInput(format!("tie '{}': {m}", tie.name)));
    if tie.slave.is_empty() {
        return Ok(Bonds::default());
    }
    let tris: Vec<[V3; 3]> = tie
        .master
        .iter()
        .map(|t| t.map(|p| reference(model, &p)))
        .collect();
    let area2 = |t: &[V3; 3]| (t[1] - t[0]).cross(&(t[2] - t[0])).norm();
    let mut h = 0.0;
    let mut nonflat = 0;
    for t in &tris {
        if area2(t) > 0.0 {
            h += (t[1] - t[0]).norm() + (t[2] - t[1]).norm() + (t[0] - t[2]).norm();
            nonflat += 1;
        }
    }
    if nonflat == 0 {
        return bad("its master surface has no triangle of positive area".into());
    }
    h /= 3.0 * nonflat as f64;
    // Round-off slack, so that a zero tolerance admits points exactly on the surface.
    let tol = tie.tolerance + 1e-9 * h;
    // Uniform grid over the triangles' boxes widened by the tolerance: a slave point within
    // the tolerance of a triangle lies in its widened box.
    let mut grid = BoxGrid::new(h.max(tol).max(1e-9));
    for (i, t) in tris.iter().enumerate() {
        if area2(t) <= 1e-14 * h * h {
            continue;
        }
        let lo = t[0].inf(&t[1]).inf(&t[2]).add_scalar(-tol);
        let hi = t[0].sup(&t[1]).sup(&t[2]).add_scalar(tol);
        grid.insert(i, &lo, &hi);
    }
    let mut bonds = Vec::with_capacity(tie.slave.len());
    for (s, p) in tie.slave.iter().enumerate() {
        let x = reference(model, p);
        let mut best: Option<(f64, usize)> = None;
        for ti in grid.at(&x) {
            let t = &tris[ti];
            let w = closest_on_triangle(&x, &t[0], &t[1], &t[2]);
            let d = (x - (t[0] * w[0] + t[1] * w[1] + t[2] * w[2])).norm();
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, ti));
            }
        }
        let Some((_, ti)) = best.filter(|(d, _)| *d <= tol) else {
            let at = match p {
                Point::Node(n) => format!("node {n}"),
                Point::Body { body, .. } => format!("the point on body {body}"),
            };
            let dist = best.map_or("farther than the tolerance".to_string(), |(d, _)| {
                format!("{d:.4e} mm")
            });
            return bad(format!(
                "slave point {s} ({at}, at [{:.4}, {:.4}, {:.4}] mm) is {dist} from the master surface, beyond the position tolerance {} mm: fix the geometry, the surfaces or the tolerance",
                x.x, x.y, x.z, tie.tolerance
            ));
        };
        let t = &tris[ti];
        let (e1, e2) = (t[1] - t[0], t[2] - t[0]);
        let w = e1.cross(&e2);
        let a2 = w.norm_squared();
        let r = x - t[0];
        let beta = r.dot(&w) / a2;
        let rp = r - w * beta;
        let n1 = rp.cross(&e2).dot(&w) / a2;
        let n2 = e1.cross(&rp).dot(&w) / a2;
        bonds.push(Bond {
            tri: ti,
            n: [1.0 - n1 - n2, n1, n2],
            c: beta * a2.sqrt(),
        });
    }
    let k = match tie.penalty {
        Some(k) => k,
        None => {
            let mut on_tie = vec![false; model.mesh.num_nodes()];
            for p in tie.slave.iter().chain(tie.master.iter().flatten()) {
                if let Point::Node(n) = *p {
                    on_tie[n] = true;
                }
            }
            let mut modulus = 0.0f64;
            for (e, b) in block_of.iter().enumerate() {
                let Some(b) = b else { continue };
                if !model.mesh.element_nodes(e).iter().any(|&n| on_tie[n]) {
                    continue;
                }
                let (_, d) = model.solids[*b].material.pk2(e, &M3::identity())?;
                modulus = modulus.max(d[0][0]).max(d[1][1]).max(d[2][2]);
            }
            if !(modulus > 0.0 && modulus.is_finite()) {
                return bad(
                    "no solid element with a positive stiffness has a node on it, so its penalty cannot be derived: give one".into(),
                );
            }
            Tie::AUTO_PENALTY_FACTOR * modulus * h
        }
    };
    if tie.slave_triangles.is_empty() {
        return Ok(Bonds {
            bonds,
            rows: vec![],
            k,
        });
    }
    let candidates = |lo: &V3, hi: &V3| -> Vec<usize> {
        let mut out = Vec::new();
        grid.overlapping(lo, hi, &mut out);
        out
    };
    let rows = mortar(model, tie, &tris, candidates, tol, h)?;
    let mean = rows.iter().map(|r| r.k).sum::<f64>() / rows.len().max(1) as f64;
    let rows = rows
        .into_iter()
        .map(|r| Row {
            k: k * r.k / mean,
            ..r
        })
        .collect();
    Ok(Bonds {
        bonds: vec![],
        rows,
        k,
    })
}

/// Barycentric coordinates of `x` in the plane triangle `t`.
fn bary2(t: &[[f64; 2]; 3], x: [f64; 2]) -> [f64; 3] {
    let d = (t[1][0] - t[0][0]) * (t[2][1] - t[0][1]) - (t[2][0] - t[0][0]) * (t[1][1] - t[0][1]);
    let (px, py) = (x[0] - t[0][0], x[1] - t[0][1]);
    let l1 = (px * (t[2][1] - t[0][1]) - (t[2][0] - t[0][0]) * py) / d;
    let l2 = ((t[1][0] - t[0][0]) * py - px * (t[1][1] - t[0][1])) / d;
    [1.0 - l1 - l2, l1, l2]
}

/// The part of polygon `poly` on the left of every edge of the counter-clockwise triangle
/// `clip` (Sutherland & Hodgman 1974, Commun ACM 17:32).
fn clip(poly: &[[f64; 2]], clip: &[[f64; 2]; 3]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = poly.to_vec();
    for e in 0..3 {
        let (p, q) = (clip[e], clip[(e + 1) % 3]);
        let side = |x: [f64; 2]| (q[0] - p[0]) * (x[1] - p[1]) - (q[1] - p[1]) * (x[0] - p[0]);
        let inp = std::mem::take(&mut out);
        for i in 0..inp.len() {
            let (a, b) = (inp[i], inp[(i + 1) % inp.len()]);
            let (sa, sb) = (side(a), side(b));
            if sa >= 0.0 {
                out.push(a);
            }
            if (sa >= 0.0) != (sb >= 0.0) {
                let t = sa / (sa - sb);
                out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
            }
        }
        if out.len() < 3 {
            return vec![];
        }
    }
    out
}

/// Mortar rows of a tie with slave triangles (`k` holds each row's tributary area):
/// `D_jk = int phi_j phi_k`, `M_jl = int phi_j psi_l` over the overlaps of each slave
/// triangle with the master triangles, projected on the slave triangle's plane (exact:
/// each overlap is a convex polygon, split into triangles integrated by the edge-midpoint
/// rule, exact for the quadratic products). Row `j` is `(sum_k D_jk x_k - sum_l M_jl x_l)
/// / A_j`, `A_j = sum_k D_jk`.
fn mortar(
    model: &Model,
    tie: &Tie,
    tris: &[[V3; 3]],
    candidates: impl Fn(&V3, &V3) -> Vec<usize>,
    tol: f64,
    h: f64,
) -> Result<Vec<Row>, FemError> {
    let ns = tie.slave.len();
    if let Some(t) = tie
        .slave_triangles
        .iter()
        .find(|t| t.iter().any(|&i| i >= ns))
    {
        return Err(FemError::InvalidInput(format!(
            "tie '{}': slave triangle {t:?} refers to a slave point beyond the {ns} given",
            tie.name
        )));
    }
    let xs: Vec<V3> = tie.slave.iter().map(|p| reference(model, p)).collect();
    let mut d: Vec<Vec<(usize, f64)>> = vec![vec![]; ns];
    let mut m: Vec<Vec<(Point, f64)>> = vec![vec![]; ns];
    let add = |v: &mut Vec<(usize, f64)>, k: usize, w: f64| match v.iter_mut().find(|e| e.0 == k) {
        Some(e) => e.1 += w,
        None => v.push((k, w)),
    };
    for st in &tie.slave_triangles {
        let s = st.map(|i| xs[i]);
        let nn = (s[1] - s[0]).cross(&(s[2] - s[0]));
        if nn.norm() <= 1e-14 * h * h {
            continue;
        }
        let n = nn.normalize();
        let u = (s[1] - s[0]).normalize();
        let v = n.cross(&u);
        let to2 = |x: &V3| [(x - s[0]).dot(&u), (x - s[0]).dot(&v)];
        let s2 = s.map(|x| to2(&x));
        let lo = s[0].inf(&s[1]).inf(&s[2]);
        let hi = s[0].sup(&s[1]).sup(&s[2]);
        for ti in candidates(&lo, &hi) {
            let t = &tris[ti];
            let t2 = t.map(|x| to2(&x));
            let a2 = (t2[1][0] - t2[0][0]) * (t2[2][1] - t2[0][1])
                - (t2[2][0] - t2[0][0]) * (t2[1][1] - t2[0][1]);
            if a2.abs() <= 1e-12 * h * h {
                continue;
            }
            let poly = clip(&t2, &s2);
            // Edge-midpoint rule on a fan of the overlap polygon.
            let mut pts: Vec<([f64; 2], f64)> = vec![];
            for i in 1..poly.len().saturating_sub(1) {
                let (a, b, c) = (poly[0], poly[i], poly[i + 1]);
                let area =
                    0.5 * ((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])).abs();
                let mid = |p: [f64; 2], q: [f64; 2]| [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
                for q in [mid(a, b), mid(b, c), mid(c, a)] {
                    pts.push((q, area / 3.0));
                }
            }
            // The master triangle must face the slave one within the tolerance (not lie
            // behind it across a thin part).
            let far = pts.iter().any(|&(q, _)| {
                let (phi, psi) = (bary2(&s2, q), bary2(&t2, q));
                let xs3 = s[0] * phi[0] + s[1] * phi[1] + s[2] * phi[2];
                let xm3 = t[0] * psi[0] + t[1] * psi[1] + t[2] * psi[2];
                (xs3 - xm3).norm() > tol
            });
            if far {
                continue;
            }
            for (q, w) in pts {
                let (phi, psi) = (bary2(&s2, q), bary2(&t2, q));
                for a in 0..3 {
                    let j = st[a];
                    for b in 0..3 {
                        add(&mut d[j], st[b], w * phi[a] * phi[b]);
                    }
                    for (&p, psi_l) in tie.master[ti].iter().zip(psi) {
                        let c = w * phi[a] * psi_l;
                        match m[j].iter_mut().find(|e| e.0 == p) {
                            Some(e) => e.1 += c,
                            None => m[j].push((p, c)),
                        }
                    }
                }
            }
        }
    }
    let mut rows = vec![];
    for j in 0..ns {
        let area: f64 = d[j].iter().map(|e| e.1).sum();
        if area <= 1e-12 * h * h {
            continue;
        }
        let mut pts: Vec<Point> = d[j].iter().map(|e| tie.slave[e.0]).collect();
        let mut coef: Vec<f64> = d[j].iter().map(|e| e.1 / area).collect();
        let nslave = pts.len();
        for &(p, c) in &m[j] {
            pts.push(p);
            coef.push(-c / area);
        }
        let g0 = pts
            .iter()
            .zip(&coef)
            .map(|(p, c)| reference(model, p) * *c)
            .sum();
        rows.push(Row {
            pts,
            coef,
            nslave,
            g0,
            k: area,
        });
    }
    Ok(rows)
}

/// The gap of a bond and its Jacobian blocks `d g / d x` for `[slave, x0, x1, x2]`; also
/// the pieces of the offset term the tangent needs: `d w / d x_i` (`w = e1 x e2`), `|w|`
/// and the unit normal.
fn gap(b: &Bond, x: &[V3; 4]) -> (V3, [M3; 4], [M3; 3], f64, V3) {
    let (e1, e2) = (x[2] - x[1], x[3] - x[1]);
    let w = e1.cross(&e2);
    let wn = w.norm().max(f64::MIN_POSITIVE);
    let n = w / wn;
    let g = x[0] - x[1] * b.n[0] - x[2] * b.n[1] - x[3] * b.n[2] - n * b.c;
    // d w / d x1 = -skew(e2), d w / d x2 = skew(e1), d w / d x0 = minus their sum;
    // d n / d w = (I - n n^T) / |w|.
    let (d1, d2) = (-skew(&e2), skew(&e1));
    let dw = [-(d1 + d2), d1, d2];
    let p = (M3::identity() - n * n.transpose()) / wn;
    let i = M3::identity();
    let j = [
        i,
        -i * b.n[0] - p * dw[0] * b.c,
        -i * b.n[1] - p * dw[1] * b.c,
        -i * b.n[2] - p * dw[2] * b.c,
    ];
    (g, j, dw, wn, n)
}

/// Internal forces on `[slave, x0, x1, x2]` and the 12x12 tangent (row-major) of one bond.
fn bond(b: &Bond, x: &[V3; 4], k: f64, tangent: bool) -> (V3, [V3; 4], Option<[f64; 144]>) {
    let (g, j, dw, wn, n) = gap(b, x);
    let f = j.map(|ja| ja.transpose() * g * k);
    if !tangent {
        return (g, f, None);
    }
    let mut kt = [0.0; 144];
    // k (J^T J) + k g . d2g. The offset term is -c n(w(x)): against a fixed g, the Hessian of
    // g . n in w is H = -[(P g) n^T + n (P g)^T + (n . g) P] / |w| (P = (I - n n^T) / |w|),
    // and w = e1 x e2 is bilinear: v . d2w (v = P g) is -skew(v) in the (e1, e2) block,
    // which maps onto the corners as C_ab (-skew(v)), C = [[0, 1, -1], [-1, 0, 1], [1, -1, 0]].
    let (hw, m) = if b.c != 0.0 {
        let p = (M3::identity() - n * n.transpose()) / wn;
        let v = p * g;
        let hw = -(v * n.transpose() + n * v.transpose() + p * n.dot(&g)) / wn;
        (hw * (-b.c * k), -skew(&v) * (-b.c * k))
    } else {
        (M3::zeros(), M3::zeros())
    };
    const C: [[f64; 3]; 3] = [[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]];
    for a in 0..4 {
        for c in 0..4 {
            let mut blk = j[a].transpose() * j[c] * k;
            if a > 0 && c > 0 && b.c != 0.0 {
                blk += dw[a - 1].transpose() * hw * dw[c - 1] + m * C[a - 1][c - 1];
            }
            for r in 0..3 {
                for s in 0..3 {
                    kt[(3 * a + r) * 12 + 3 * c + s] = blk[(r, s)];
                }
            }
        }
    }
    (g, f, Some(kt))
}

/// Assembles every active tie and returns their states.
pub(crate) fn ties(
    model: &Model,
    map: &DofMap,
    st: &State,
    act: &Active,
    bonds: &[Bonds],
    asm: &mut Asm,
) -> Vec<TieState> {
    model
        .ties
        .iter()
        .zip(bonds)
        .enumerate()
        .map(|(i, (tie, bs))| {
            let mut out = TieState {
                penalty: bs.k,
                ..Default::default()
            };
            let mut total = V3::zeros();
            for row in &bs.rows {
                let pts: Vec<Pk> = row.pts.iter().map(|p| st.point(model, map, p)).collect();
                let g = pts.iter().zip(&row.coef).map(|(p, c)| p.x * *c).sum::<V3>() - row.g0;
                out.max_gap = out.max_gap.max(g.norm());
                if !act.tie[i] {
                    continue;
                }
                let f: Vec<V3> = row.coef.iter().map(|c| g * (row.k * c)).collect();
                // Between free nodes the tangent is `k c_a c_b I` per pair: only the
                // diagonals are written (a third of the triplets of full 3x3 blocks).
                let nodes: Option<Vec<[Slot; 3]>> = pts
                    .iter()
                    .map(|p| match p.kin {
                        Kin::Node(s) => Some(s),
                        Kin::Body { .. } => None,
                    })
                    .collect();
                if let (true, Some(slots)) = (asm.tangent, &nodes) {
                    for (sa, ca) in slots.iter().zip(&row.coef) {
                        for (sb, cb) in slots.iter().zip(&row.coef) {
                            for r in 0..3 {
                                asm.push(sa[r], sb[r], row.k * ca * cb);
                            }
                        }
                    }
                    asm.add_internal(map, &pts, &f, None);
                    let fs: V3 = f[..row.nslave].iter().sum();
                    total -= fs;
                    out.force_sum += fs.norm();
                    continue;
                }
                let k = (asm.tangent).then(|| {
                    let n = pts.len();
                    let mut k = vec![0.0; 9 * n * n];
                    for a in 0..n {
                        for b in 0..n {
                            let v = row.k * row.coef[a] * row.coef[b];
                            for r in 0..3 {
                                k[(3 * a + r) * 3 * n + 3 * b + r] = v;
                            }
                        }
                    }
                    k
                });
                asm.add_internal(map, &pts, &f, k.as_deref());
                let fs: V3 = f[..row.nslave].iter().sum();
                total -= fs;
                out.force_sum += fs.norm();
            }
            for (p, b) in tie.slave.iter().zip(&bs.bonds) {
                let t = &tie.master[b.tri];
                let pts: [Pk; 4] = [
                    st.point(model, map, p),
                    st.point(model, map, &t[0]),
                    st.point(model, map, &t[1]),
                    st.point(model, map, &t[2]),
                ];
                let x = pts.map(|q| q.x);
                let tangent = asm.tangent && act.tie[i];
                let (g, f, k) = bond(b, &x, bs.k, tangent);
                out.max_gap = out.max_gap.max(g.norm());
                if !act.tie[i] {
                    continue;
                }
                asm.add_internal(map, &pts, &f, k.as_ref().map(|k| &k[..]));
                total -= f[0];
                out.force_sum += f[0].norm();
            }
            out.force = [total.x, total.y, total.z];
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_point_regions() {
        let (a, b, c) = (V3::zeros(), V3::new(2.0, 0.0, 0.0), V3::new(0.0, 2.0, 0.0));
        let at = |w: [f64; 3]| a * w[0] + b * w[1] + c * w[2];
        // Interior, each vertex region, each edge region.
        let cases = [
            (V3::new(0.5, 0.5, 1.0), V3::new(0.5, 0.5, 0.0)),
            (V3::new(-1.0, -1.0, 0.3), a),
            (V3::new(3.0, -0.5, 0.0), b),
            (V3::new(-0.5, 3.0, 0.0), c),
            (V3::new(1.0, -1.0, 0.0), V3::new(1.0, 0.0, 0.0)),
            (V3::new(-1.0, 1.0, 0.0), V3::new(0.0, 1.0, 0.0)),
            (V3::new(2.0, 2.0, 0.5), V3::new(1.0, 1.0, 0.0)),
        ];
        for (p, want) in cases {
            let got = at(closest_on_triangle(&p, &a, &b, &c));
            assert!((got - want).norm() < 1e-12, "{p}: {got} != {want}");
        }
    }

    #[test]
    fn bond_tangent_matches_central_differences() {
        let b = Bond {
            tri: 0,
            n: [0.2, 0.5, 0.3],
            c: 0.15,
        };
        let x = [
            V3::new(0.4, 0.3, 0.5),
            V3::new(0.0, 0.1, 0.0),
            V3::new(1.1, -0.2, 0.1),
            V3::new(0.2, 0.9, -0.1),
        ];
        let (_, _, k) = bond(&b, &x, 7.0, true);
        let k = k.unwrap();
        let h = 1e-6;
        let mut worst = 0.0f64;
        for col in 0..12 {
            let (mut xp, mut xm) = (x, x);
            xp[col / 3][col % 3] += h;
            xm[col / 3][col % 3] -= h;
            let (_, fp, _) = bond(&b, &xp, 7.0, false);
            let (_, fm, _) = bond(&b, &xm, 7.0, false);
            for row in 0..12 {
                let fd = (fp[row / 3][row % 3] - fm[row / 3][row % 3]) / (2.0 * h);
                worst = worst.max((fd - k[row * 12 + col]).abs());
            }
        }
        assert!(worst < 1e-7, "tangent error {worst:e}");
        // And it is symmetric (the Hessian of an energy).
        for r in 0..12 {
            for c in 0..12 {
                assert!((k[r * 12 + c] - k[c * 12 + r]).abs() < 1e-12);
            }
        }
    }
}
