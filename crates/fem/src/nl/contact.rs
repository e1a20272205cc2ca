//! Penalty node-to-surface contact.
//!
//! Each slave point is projected onto the master triangles near it (a uniform grid over
//! the triangles' bounding boxes, rebuilt at every assembly); among the triangles its
//! projection falls inside (within a small tolerance) the one with the smallest `|g|` is
//! taken. Gap `g = (x_s - x_m) . n` along the master's outward normal; when
//! `g < clearance` the normal force is `P = penalty * area * (clearance - g)`, pushing the
//! slave out and the master triangle's points back with the barycentric weights.
//!
//! Linearisation: consistent in the slave and master point motions with the master normal
//! and the projection point frozen within an iteration (their variation is left out), so
//! the contact tangent is `penalty * area * v v^T (x) n n^T`, `v = [1, -xi_1, -xi_2, -xi_3]`.
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
        if g >= pair.clearance {
            continue;
        }
        let area = pair.slave_area[s];
        let kp = pair.penalty * area;
        let force = kp * (pair.clearance - g);
        // Weights clamped to the triangle so the reaction stays on it and sums to P.
        let mut w = xi.map(|v| v.max(0.0));
        let sw: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= sw);
        let t = &masters[ti];
        let pts = [*sp, t[0], t[1], t[2]];
        let v = [1.0, -w[0], -w[1], -w[2]];
        let f: Vec<V3> = v.iter().map(|&vi| -n * (force * vi)).collect();
        let nnt = n * n.transpose();
        let mut k = vec![0.0; 144];
        for a in 0..4 {
            for b in 0..4 {
                for i in 0..3 {
                    for j in 0..3 {
                        k[(3 * a + i) * 12 + 3 * b + j] = kp * v[a] * v[b] * nnt[(i, j)];
                    }
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
