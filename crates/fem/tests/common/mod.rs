//! Analytical references and small helpers shared by the FE engine's integration tests.
#![allow(dead_code)]

/// Tributary length of grid coordinate `x` on `[0, len]` divided into `n` equal cells: half
/// a cell at either end, a whole cell inside (nodal shares of a uniform pressure on a
/// structured grid).
pub fn trib(x: f64, len: f64, n: usize) -> f64 {
    let h = len / n as f64;
    if x.abs() < 1e-9 || (x - len).abs() < 1e-9 {
        0.5 * h
    } else {
        h
    }
}

/// Rollers on the coordinate planes: every node with coordinate `dir` zero held in `dir`,
/// for each of `dirs` (quarter symmetry in x and y, and a base at z = 0).
pub fn rollers(mesh: &spinetwin_fem::Mesh, dirs: &[usize]) -> Vec<(spinetwin_fem::nl::Dof, f64)> {
    let mut out = vec![];
    for (n, p) in mesh.nodes.iter().enumerate() {
        for &dir in dirs {
            if p[dir].abs() < 1e-9 {
                out.push((spinetwin_fem::nl::Dof::Node { node: n, dir }, 0.0));
            }
        }
    }
    out
}

/// One compressible Neo-Hookean block (modulus `e` MPa, Poisson's ratio `nu`) over every
/// element of `mesh`.
pub fn neo_hookean_block(
    name: &str,
    mesh: &spinetwin_fem::Mesh,
    e: f64,
    nu: f64,
) -> spinetwin_fem::nl::SolidBlock {
    spinetwin_fem::nl::SolidBlock {
        name: name.into(),
        elements: (0..mesh.num_elements()).collect(),
        material: std::sync::Arc::new(spinetwin_fem::hyper::NeoHookean::from_e_nu(e, nu).unwrap()),
    }
}

/// Large deflection of a cantilever under a tip force `P` of fixed direction (transverse):
/// the extensible elastica. With `s` the reference arc length, the stretch `1 + eps`, `eps =
/// N / EA = P sin(theta) / EA`, and `theta' = M / EI`, `M = P (x_tip - x)`:
/// `theta'' = -(P / EI) (1 + eps) cos(theta)`, `theta(0) = 0`, `theta'(L) = 0`, solved by
/// shooting with RK4. `k = P L^2 / EI`, `c = I / (A L^2)` (so `eps = k c sin(theta)`; 0 is
/// the inextensible elastica). Returns the tip (x, y) over `L` and its rotation.
pub fn elastica(k: f64, c: f64) -> (f64, f64, f64) {
    // Dimensionless: s in [0, 1].
    let run = |kappa0: f64| {
        let n = 4000;
        let h = 1.0 / n as f64;
        let f = |y: [f64; 4]| {
            let st = 1.0 + k * c * y[0].sin();
            [y[1], -k * st * y[0].cos(), st * y[0].cos(), st * y[0].sin()]
        };
        let mut y = [0.0, kappa0, 0.0, 0.0];
        for _ in 0..n {
            let add = |a: [f64; 4], b: [f64; 4], s: f64| std::array::from_fn(|i| a[i] + s * b[i]);
            let k1 = f(y);
            let k2 = f(add(y, k1, h / 2.0));
            let k3 = f(add(y, k2, h / 2.0));
            let k4 = f(add(y, k3, h));
            y = std::array::from_fn(|i| {
                y[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
            });
        }
        y
    };
    let (mut lo, mut hi) = (0.0, k);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if run(mid)[1] > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let y = run(0.5 * (lo + hi));
    (y[2], y[3], y[0])
}
