//! Penalty node-to-surface contact.
//!
//! Each slave point is projected onto the master triangles near it (a uniform grid over
//! the triangles' bounding boxes, rebuilt at every assembly); among the triangles its
//! projection falls inside (within a small tolerance) the one with the smallest `|g|` is
//! taken. Gap `g = (x_s - x_m) . n` along the master's outward normal; when
//! `g < clearance` the normal force is `P = penalty * area * (clearance - g)`, pushing the
//! slave out and the master triangle's points back with the barycentric weights.
//!
//! Linearisation: the penalty potential `kp (c - g)^2 / 2` (`kp = penalty * area`) of the
//! gap `g = (x_s - x_1) . n(x_1, x_2, x_3)` of the chosen triangle, whose gradient is
//! `n (x) [1, -xi_1, -xi_2, -xi_3]`; tangent `kp grad g grad g^T - P hess g`, with the
//! Hessian (rotation of the master normal, sliding of the projection point) taken by
//! central differences of the analytical gradient. The choice of triangle is fixed within
//! an assembly.
//! Frictionless: pairs with `friction > 0` are rejected.

use std::collections::HashMap;

use super::assemble::Asm;
use super::kin::{DofMap, Pk, State, V3};
use super::{ContactPair, ContactState, Model};

/// Projection of a point on a triangle's plane: barycentric weights and signed distance.
fn project(x: &V3, t: &[V3; 3]) -> Option<([f64; 3], f64, V3)> {
    let e1 = t[1] - t[0];
    let e2 = t[2] - t[0];
    let nn = e1.cross(&e2);
    let a2 = nn.norm();
    if a2 < 1e-14 {
        return None;
    }
    let n = nn / a2;
    let d = x - t[0];
    let g = d.dot(&n);
    let xp = d - n * g;
    // Barycentric coordinates of the in-plane point.
    let l1 = e1.cross(&xp).dot(&n) / a2; // weight of t[2]
    let l0 = xp.cross(&e2).dot(&n) / a2; // weight of t[1]
    Some(([1.0 - l0 - l1, l0, l1], g, n))
}

/// Gradient of the plane gap of `x[0]` over the triangle `x[1..4]` (12 components).
fn gap_gradient(x: &[V3; 4]) -> [f64; 12] {
    let mut out = [0.0; 12];
    if let Some((xi, _, n)) = project(&x[0], &[x[1], x[2], x[3]]) {
        let v = [1.0, -xi[0], -xi[1], -xi[2]];
        for a in 0..4 {
            for i in 0..3 {
                out[3 * a + i] = v[a] * n[i];
            }
        }
    }
    out
}

/// Hessian of the plane gap by central differences of [`gap_gradient`] (step relative to
/// the triangle size `h`), row-major 12 x 12.
fn gap_hessian(x: &[V3; 4], h: f64) -> Vec<f64> {
    let d = 1e-6 * h.max(1e-9);
    let mut out = vec![0.0; 144];
    for c in 0..12 {
        let mut xp = *x;
        let mut xm = *x;
        xp[c / 3][c % 3] += d;
        xm[c / 3][c % 3] -= d;
        let (gp, gm) = (gap_gradient(&xp), gap_gradient(&xm));
        for r in 0..12 {
            out[r * 12 + c] = (gp[r] - gm[r]) / (2.0 * d);
        }
    }
    out
}

/// Adds the contact forces of pair `pair` and returns its state.
pub(crate) fn contact(
    model: &Model,
    map: &DofMap,
    st: &State,
    pair: &ContactPair,
    asm: &mut Asm,
) -> ContactState {
    let masters: Vec<[Pk; 3]> = pair
        .master
        .iter()
        .map(|t| t.map(|p| st.point(model, map, &p)))
        .collect();
    let slaves: Vec<Pk> = pair.slave.iter().map(|p| st.point(model, map, p)).collect();
    let mut state = ContactState {
        pressure: vec![0.0; slaves.len()],
        ..Default::default()
    };
    if masters.is_empty() || slaves.is_empty() {
        return state;
    }
    // Search distance: a point deeper than about one master edge below a facet is taken
    // to be behind it rather than in contact with it.
    let mut h = 0.0;
    for t in &masters {
        h += (t[1].x - t[0].x).norm() + (t[2].x - t[1].x).norm() + (t[0].x - t[2].x).norm();
    }
    h /= 3.0 * masters.len() as f64;
    let depth = h.max(1e-9);
    let margin = pair.clearance.max(0.0) + depth;
    let cell = (2.0 * h).max(margin).max(1e-9);
    let key = |x: &V3| {
        [
            (x.x / cell).floor() as i64,
            (x.y / cell).floor() as i64,
            (x.z / cell).floor() as i64,
        ]
    };
    let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (i, t) in masters.iter().enumerate() {
        let mut lo = t[0].x;
        let mut hi = t[0].x;
        for p in &t[1..] {
            lo = lo.inf(&p.x);
            hi = hi.sup(&p.x);
        }
        let m = V3::repeat(margin);
        let (a, b) = (key(&(lo - m)), key(&(hi + m)));
        for ix in a[0]..=b[0] {
            for iy in a[1]..=b[1] {
                for iz in a[2]..=b[2] {
                    grid.entry([ix, iy, iz]).or_default().push(i);
                }
            }
        }
    }
    let tol = 1e-3;
    let mut total = V3::zeros();
    for (s, sp) in slaves.iter().enumerate() {
        let Some(cands) = grid.get(&key(&sp.x)) else {
            continue;
        };
        let mut best: Option<(usize, [f64; 3], f64, V3)> = None;
        for &ti in cands {
            let t = &masters[ti];
            let Some((xi, g, n)) = project(&sp.x, &[t[0].x, t[1].x, t[2].x]) else {
                continue;
            };
            if xi.iter().any(|&v| v < -tol) || g <= -depth || g >= margin {
                continue;
            }
            if best.as_ref().is_none_or(|b| g.abs() < b.2.abs()) {
                best = Some((ti, xi, g, n));
            }
        }
        let Some((ti, xi, g, n)) = best else {
            continue;
        };
        // A point exactly at the clearance carries no force but its stiffness, so a body
        // set down touching the surface is held from the first iteration.
        if g > pair.clearance {
            continue;
        }
        let area = pair.slave_area[s];
        let kp = pair.penalty * area;
        let force = kp * (pair.clearance - g);
        // Potential kp (c - g)^2 / 2: force -P grad g, tangent kp grad g grad g^T - P hess g.
        let t = &masters[ti];
        let pts = [*sp, t[0], t[1], t[2]];
        let xs = pts.map(|p| p.x);
        let v = [1.0, -xi[0], -xi[1], -xi[2]];
        let f: Vec<V3> = v.iter().map(|&vi| -n * (force * vi)).collect();
        let mut k = vec![0.0; 144];
        if asm.tangent {
            let grad: Vec<f64> = v.iter().flat_map(|&vi| (n * vi).data.0[0]).collect();
            let hess = gap_hessian(&xs, h);
            for r in 0..12 {
                for c in 0..12 {
                    k[r * 12 + c] = kp * grad[r] * grad[c] - force * hess[r * 12 + c];
                }
            }
        }
        let tangent = asm.tangent;
        asm.add_internal(map, &pts, &f, tangent.then_some(&k[..]));
        total += n * force;
        state.normal_force += force;
        state.active_points += 1;
        let p = pair.penalty * (pair.clearance - g);
        state.pressure[s] = p;
        state.max_pressure = state.max_pressure.max(p);
    }
    state.force = [total.x, total.y, total.z];
    state
}
