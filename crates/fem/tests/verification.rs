//! Verification of the FE engine against exact and analytical solutions.
//!
//! Tolerances are stated at each assertion; every test fails if the element, assembly,
//! load or solver code is wrong in the aspect it checks.

use nalgebra::{DMatrix, SymmetricEigen};
use spinetwin_fem::*;

const E: f64 = 1000.0;
const NU: f64 = 0.3;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// A deterministic pseudo-random number in [-1, 1] (no rand dependency needed).
fn hash01(i: usize, k: usize) -> f64 {
    let mut x = (i as u64).wrapping_mul(6364136223846793005)
        ^ (k as u64 + 1).wrapping_mul(1442695040888963407);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    (x % 2_000_001) as f64 / 1_000_000.0 - 1.0
}

fn single_element(kind: ElementKind) -> Mesh {
    // An irregular tetrahedron; Tet10 mid-edge nodes at the edge midpoints.
    let c = [
        [0.1, 0.0, 0.2],
        [2.0, 0.3, 0.1],
        [0.4, 1.7, -0.2],
        [0.3, 0.5, 1.9],
    ];
    let mut nodes = c.to_vec();
    if kind == ElementKind::Tet10 {
        for [a, b] in element::TET_EDGES {
            nodes.push([0, 1, 2].map(|d| 0.5 * (c[a][d] + c[b][d])));
        }
    }
    let mut m = Mesh::with_nodes(nodes);
    let conn: Vec<usize> = (0..kind.num_nodes()).collect();
    m.add_element(kind, &conn);
    m.validate().unwrap();
    m
}

#[test]
fn element_stiffness_symmetric_psd_six_rigid_modes() {
    for kind in [ElementKind::Tet4, ElementKind::Tet10] {
        let m = single_element(kind);
        let mat = LinearElastic::uniform(1, E, NU).unwrap();
        let k = element_stiffness(&m, &mat, 0).unwrap();
        let n = 3 * kind.num_nodes();
        let km = DMatrix::from_row_slice(n, n, &k);
        let kmax = km.amax();
        assert!(
            (&km - km.transpose()).amax() <= 1e-12 * kmax,
            "{kind:?} not symmetric"
        );
        let ev = SymmetricEigen::new(km.clone()).eigenvalues;
        let lmax = ev.max();
        let zeros = ev.iter().filter(|l| l.abs() <= 1e-10 * lmax).count();
        let neg = ev.iter().filter(|&&l| l < -1e-10 * lmax).count();
        assert_eq!(
            zeros, 6,
            "{kind:?}: expected 6 zero eigenvalues, got {zeros}: {ev}"
        );
        assert_eq!(neg, 0, "{kind:?}: negative eigenvalues");
        // K times each rigid-body mode (3 translations, 3 rotations) is zero.
        for mode in 0..6 {
            let u = DMatrix::from_fn(n, 1, |i, _| {
                let x = m.nodes[i / 3];
                let d = i % 3;
                if mode < 3 {
                    f64::from(u8::from(d == mode))
                } else {
                    let a = mode - 3;
                    let ea = [0, 1, 2].map(|j| f64::from(u8::from(j == a)));
                    let cr = [
                        ea[1] * x[2] - ea[2] * x[1],
                        ea[2] * x[0] - ea[0] * x[2],
                        ea[0] * x[1] - ea[1] * x[0],
                    ];
                    cr[d]
                }
            });
            let f = &km * &u;
            assert!(
                f.amax() <= 1e-11 * kmax,
                "{kind:?}: K * rigid mode {mode} = {}",
                f.amax()
            );
        }
    }
}

fn distorted_box(order: Order) -> Mesh {
    let size = [2.0, 1.0, 1.5];
    let cells = [3, 3, 3];
    let mut m = box_mesh(size, cells, Order::Linear).unwrap();
    let h = 1.0 / 3.0;
    for (i, p) in m.nodes.iter_mut().enumerate() {
        let interior = (0..3).all(|d| p[d] > 1e-9 && p[d] < size[d] - 1e-9);
        if interior {
            for (d, c) in p.iter_mut().enumerate() {
                *c += 0.2 * h * hash01(i, d);
            }
        }
    }
    m.validate().unwrap();
    match order {
        Order::Linear => m,
        Order::Quadratic => m.to_quadratic().unwrap(),
    }
}

fn boundary_nodes(m: &Mesh) -> Vec<usize> {
    let mut b: Vec<usize> = ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"]
        .iter()
        .flat_map(|s| m.node_set(s).unwrap().to_vec())
        .collect();
    b.sort_unstable();
    b.dedup();
    b
}

#[test]
fn patch_test_prescribed_linear_field_distorted() {
    // u = u0 + G x with a general (non-symmetric) gradient: exact uniform strain.
    let g = [
        [1e-3, 2e-4, -3e-4],
        [5e-4, -2e-3, 1e-4],
        [-1e-4, 3e-4, 1.5e-3],
    ];
    let u_exact = |x: [f64; 3]| {
        [0, 1, 2].map(|i| 0.01 * (i as f64 + 1.0) + (0..3).map(|j| g[i][j] * x[j]).sum::<f64>())
    };
    let eps = [
        g[0][0],
        g[1][1],
        g[2][2],
        g[0][1] + g[1][0],
        g[0][2] + g[2][0],
        g[1][2] + g[2][1],
    ];
    let d = elasticity_matrix(E, NU);
    let sig: [f64; 6] = std::array::from_fn(|i| (0..6).map(|j| d[i][j] * eps[j]).sum());
    let smax = sig.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    for order in [Order::Linear, Order::Quadratic] {
        let m = distorted_box(order);
        let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
        let mut bc = Constraints::new();
        bc.prescribe_field(&m, &boundary_nodes(&m), [true; 3], u_exact);
        let sol = solve_linear_static(&m, &mat, &bc, &Loads::new()).unwrap();
        assert!(sol.ok);
        let mut umax_err = 0.0f64;
        for (n, u) in sol.displacements.iter().enumerate() {
            let ue = u_exact(m.nodes[n]);
            for dd in 0..3 {
                umax_err = umax_err.max((u[dd] - ue[dd]).abs());
            }
        }
        assert!(
            umax_err < 1e-8 * 0.01,
            "{order:?}: nodal error {umax_err:e}"
        );
        let res = element_results(&m, &mat, &sol.displacements).unwrap();
        let mut serr = 0.0f64;
        for r in &res {
            for s in &r.stress_ip {
                for i in 0..6 {
                    serr = serr.max((s[i] - sig[i]).abs() / smax);
                }
            }
        }
        assert!(serr < 1e-8, "{order:?}: stress error {serr:e}");
        for s in nodal_average_stress(&m, &res) {
            for i in 0..6 {
                assert!((s[i] - sig[i]).abs() < 1e-8 * smax);
            }
        }
        println!("patch (prescribed, distorted) {order:?}: |du| {umax_err:.1e} mm, stress rel err {serr:.1e}");
    }
}

/// Uniaxial bar (symmetry planes xmin/ymin/zmin, traction on xmax).
fn uniaxial(m: &Mesh, mat: &LinearElastic, traction: f64) -> Solution {
    let mut bc = Constraints::new();
    bc.fix(m.node_set("xmin").unwrap(), [true, false, false]);
    bc.fix(m.node_set("ymin").unwrap(), [false, true, false]);
    bc.fix(m.node_set("zmin").unwrap(), [false, false, true]);
    let mut loads = Loads::new();
    loads.traction(m.face_set("xmax").unwrap(), [traction, 0.0, 0.0]);
    solve_linear_static(m, mat, &bc, &loads).unwrap()
}

#[test]
fn patch_test_traction_and_uniaxial_bar() {
    // Distorted box: uniform sigma_xx from a traction reproduces the exact field.
    for order in [Order::Linear, Order::Quadratic] {
        let m = distorted_box(order);
        let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
        let sol = uniaxial(&m, &mat, 2.0);
        let res = element_results(&m, &mat, &sol.displacements).unwrap();
        let mut serr = 0.0f64;
        for r in &res {
            for s in &r.stress_ip {
                let exact = [2.0, 0.0, 0.0, 0.0, 0.0, 0.0];
                for i in 0..6 {
                    serr = serr.max((s[i] - exact[i]).abs() / 2.0);
                }
            }
        }
        assert!(
            serr < 1e-8,
            "{order:?}: traction patch stress error {serr:e}"
        );
    }
    // Bar 100 x 10 x 10: end displacement F L / (E A), lateral contraction -nu eps w.
    let (l, w) = (100.0, 10.0);
    for order in [Order::Linear, Order::Quadratic] {
        let m = box_mesh([l, w, w], [10, 2, 2], order).unwrap();
        let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
        let force = 500.0;
        let sol = uniaxial(&m, &mat, force / (w * w));
        let exact = force * l / (E * w * w);
        for &n in m.node_set("xmax").unwrap() {
            assert!(
                rel(sol.displacements[n][0], exact) < 1e-9,
                "{order:?}: end {:?}",
                sol.displacements[n]
            );
        }
        let lat = -NU * force / (E * w * w) * w;
        for &n in m.node_set("ymax").unwrap() {
            assert!(rel(sol.displacements[n][1], lat) < 1e-9);
        }
        println!(
            "uniaxial bar {order:?}: u_end {:.12} (exact {exact:.12}), residual {:.1e}",
            sol.displacements[m.node_set("xmax").unwrap()[0]][0],
            sol.relative_residual
        );
    }
}

#[test]
fn body_force_hanging_bar_exact_for_tet10() {
    // Bar along x clamped at x = 0 under axial body force b, nu = 0: sigma_xx = b (L - x),
    // u_x = b/E (L x - x^2 / 2), u_y = u_z = 0 (quadratic: reproduced exactly by Tet10).
    let (l, w, b) = (50.0, 5.0, 0.01);
    let m = box_mesh([l, w, w], [5, 1, 1], Order::Quadratic).unwrap();
    let mat = LinearElastic::uniform(m.num_elements(), E, 0.0).unwrap();
    let mut bc = Constraints::new();
    bc.fix(m.node_set("xmin").unwrap(), [true; 3]);
    let mut loads = Loads::new();
    loads.body_force(&m.element_sets["all"], [b, 0.0, 0.0]);
    let sol = solve_linear_static(&m, &mat, &bc, &loads).unwrap();
    let mut err = 0.0f64;
    for (n, u) in sol.displacements.iter().enumerate() {
        let x = m.nodes[n][0];
        let ux = b / E * (l * x - 0.5 * x * x);
        err = err.max((u[0] - ux).abs()).max(u[1].abs()).max(u[2].abs());
    }
    let tip = b * l * l / (2.0 * E);
    assert!(err < 1e-9 * tip, "hanging bar error {err:e} (tip {tip})");
}

#[test]
fn cantilever_tip_deflection_tet10_vs_timoshenko() {
    // 100 x 10 x 10 mm, clamped at x = 0, shear force P (as uniform traction) at x = L.
    let (l, h, p): (f64, f64, f64) = (100.0, 10.0, 100.0);
    let i = h * h * h * h / 12.0;
    let a = h * h;
    let g = E / (2.0 * (1.0 + NU));
    // Cowper (1966, J. Appl. Mech. 33:335) shear coefficient for a rectangle.
    let kappa = 10.0 * (1.0 + NU) / (12.0 + 11.0 * NU);
    // Timoshenko beam: delta = P L^3 / (3 E I) + P L / (kappa G A) (Timoshenko & Gere,
    // Mechanics of Materials; the shear term from Timoshenko 1921).
    let exact = p * l.powi(3) / (3.0 * E * i) + p * l / (kappa * g * a);
    let mut errs = Vec::new();
    for order in [Order::Quadratic, Order::Linear] {
        let m = box_mesh([l, h, h], [20, 2, 2], order).unwrap();
        let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
        let mut bc = Constraints::new();
        bc.fix(m.node_set("xmin").unwrap(), [true; 3]);
        let mut loads = Loads::new();
        loads.traction(m.face_set("xmax").unwrap(), [0.0, p / a, 0.0]);
        let sol = solve_linear_static(&m, &mat, &bc, &loads).unwrap();
        // Equilibrium: the support reactions balance the applied shear force.
        let ry: f64 = sol.reactions.iter().map(|r| r[1]).sum();
        assert!(rel(-ry, p) < 1e-9, "reaction {ry} vs load {p}");
        let tip = m.node_set("xmax").unwrap();
        let uy = tip.iter().map(|&n| sol.displacements[n][1]).sum::<f64>() / tip.len() as f64;
        let e = (uy - exact) / exact;
        println!(
            "cantilever {order:?}: tip {uy:.5} mm, Timoshenko {exact:.5} mm, error {:.2}%",
            100.0 * e
        );
        errs.push(e);
    }
    assert!(
        errs[0].abs() < 0.02,
        "tet10 cantilever error {:.3}",
        errs[0]
    );
    // Tet4 locks in bending: much stiffer than Tet10 on the same mesh.
    assert!(
        errs[1] < -0.2 && errs[1].abs() > 10.0 * errs[0].abs(),
        "tet4 error {}",
        errs[1]
    );
}

/// Lame thick-walled cylinder, plane strain, internal pressure `p`: radial displacement
/// u(r) = (1 + nu)/E ((1 - 2 nu) A r + B / r), A = p a^2 / (b^2 - a^2),
/// B = p a^2 b^2 / (b^2 - a^2) (Timoshenko & Goodier, Theory of Elasticity, 3rd ed., s. 28).
fn lame_ur(r: f64, a: f64, b: f64, p: f64) -> f64 {
    let aa = p * a * a / (b * b - a * a);
    let bb = p * a * a * b * b / (b * b - a * a);
    (1.0 + NU) / E * ((1.0 - 2.0 * NU) * aa * r + bb / r)
}

const LA: f64 = 10.0;
const LB: f64 = 20.0;
const LP: f64 = 10.0;

/// Quarter cylinder with symmetry planes and uz = 0 (plane strain). The slab thickness
/// follows the radial cell size so elements keep their shape under refinement.
fn lame_solve(nr: usize, order: Order) -> (Mesh, Solution) {
    let hz = (LB - LA) / nr as f64;
    let m = cylinder_sector_mesh(
        LA,
        LB,
        std::f64::consts::FRAC_PI_2,
        hz,
        [nr, 2 * nr, 1],
        order,
    )
    .unwrap();
    let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
    let mut bc = Constraints::new();
    let all: Vec<usize> = (0..m.num_nodes()).collect();
    bc.fix(&all, [false, false, true]);
    bc.fix(m.node_set("theta0").unwrap(), [false, true, false]);
    bc.fix(m.node_set("theta1").unwrap(), [true, false, false]);
    let mut loads = Loads::new();
    loads.pressure(m.face_set("inner").unwrap(), LP);
    let sol = solve_linear_static(&m, &mat, &bc, &loads).unwrap();
    assert!(sol.ok);
    (m, sol)
}

#[test]
fn lame_cylinder_inner_radial_displacement_tet10() {
    let (m, sol) = lame_solve(4, Order::Quadratic);
    let exact = lame_ur(LA, LA, LB, LP);
    let mut worst = 0.0f64;
    for &n in m.node_set("inner").unwrap() {
        let x = m.nodes[n];
        let r = (x[0] * x[0] + x[1] * x[1]).sqrt();
        let ur = (sol.displacements[n][0] * x[0] + sol.displacements[n][1] * x[1]) / r;
        worst = worst.max(rel(ur, exact));
    }
    println!(
        "Lame tet10 [4,8,1]: worst inner u_r error {:.3}% (exact {exact:.6} mm)",
        100.0 * worst
    );
    assert!(worst < 0.01, "Lame inner u_r error {worst}");
}

/// Pressure of the nearly incompressible Lame tests: small enough (inner hoop strain
/// 2e-4) that the large-deformation solution equals the linear one to ~1e-4.
const LP_SMALL: f64 = 0.1;
const NU_INCOMPRESSIBLE: f64 = 0.4999;

/// Plane-strain Lame inner radial displacement for Poisson's ratio `nu`:
/// `u(a) = (1 + nu) a^2 p / (E (b^2 - a^2)) ((1 - 2 nu) a + b^2 / a)`.
fn lame_inner(nu: f64) -> f64 {
    (1.0 + nu) * LA * LA * LP_SMALL / (E * (LB * LB - LA * LA))
        * ((1.0 - 2.0 * nu) * LA + LB * LB / LA)
}

/// Structured Hex8 quarter cylinder (`[n_r, n_theta, 1]` cells, slab thickness = radial
/// cell size) with the sets of [`cylinder_sector_mesh`]: the unit hex box mapped to
/// `(r, theta, z)`, an orientation-preserving map, so faces keep pointing inwards.
fn hex_quarter_cylinder(nr: usize, nth: usize) -> Mesh {
    let hz = (LB - LA) / nr as f64;
    let mut m = hex_box_mesh([1.0, 1.0, 1.0], [nr, nth, 1]).unwrap();
    m.map_nodes(|p| {
        let (r, th) = (LA + (LB - LA) * p[0], std::f64::consts::FRAC_PI_2 * p[1]);
        [r * th.cos(), r * th.sin(), hz * p[2]]
    });
    for (old, new) in [("xmin", "inner"), ("ymin", "theta0"), ("ymax", "theta1")] {
        let s = m.node_sets.remove(old).unwrap();
        m.node_sets.insert(new.into(), s);
        let f = m.face_sets.remove(old).unwrap();
        m.face_sets.insert(new.into(), f);
    }
    m.validate().unwrap();
    m
}

/// Worst relative error of the radial displacement over the inner nodes.
fn inner_ur_error(m: &Mesh, u: &[[f64; 3]], exact: f64) -> f64 {
    m.node_set("inner")
        .unwrap()
        .iter()
        .map(|&n| {
            let x = m.nodes[n];
            let r = x[0].hypot(x[1]);
            rel((u[n][0] * x[0] + u[n][1] * x[1]) / r, exact)
        })
        .fold(0.0, f64::max)
}

/// Mean signed relative error of the inner radial displacement (negative: too stiff).
fn inner_ur_bias(m: &Mesh, u: &[[f64; 3]], exact: f64) -> f64 {
    let inner = m.node_set("inner").unwrap();
    inner
        .iter()
        .map(|&n| {
            let x = m.nodes[n];
            (u[n][0] * x[0] + u[n][1] * x[1]) / x[0].hypot(x[1]) / exact - 1.0
        })
        .sum::<f64>()
        / inner.len() as f64
}

/// Linear solve of the plane-strain quarter cylinder (symmetry planes, uz = 0) under the
/// pressure `LP_SMALL`.
fn lame_linear(m: &Mesh, nu: f64) -> Solution {
    let mat = LinearElastic::uniform(m.num_elements(), E, nu).unwrap();
    let mut bc = Constraints::new();
    let all: Vec<usize> = (0..m.num_nodes()).collect();
    bc.fix(&all, [false, false, true]);
    bc.fix(m.node_set("theta0").unwrap(), [false, true, false]);
    bc.fix(m.node_set("theta1").unwrap(), [true, false, false]);
    let mut loads = Loads::new();
    loads.pressure(m.face_set("inner").unwrap(), LP_SMALL);
    let sol = solve_linear_static(m, &mat, &bc, &loads).unwrap();
    assert!(sol.ok);
    sol
}

/// Lame cylinder at nu = 0.4999 (bulk/shear = 5000), plane strain: the nonlinear path's
/// F-bar Hex8 with a compressible Neo-Hookean material (small-strain E and nu) and follower
/// pressure on the inner face matches the linear closed form within 1 % at every inner
/// node; the same mesh with plain fully integrated Hex8 (linear path) locks. Linear Tet10
/// (quadratic displacements, 4 x 8 cells) does not lock at this ratio: it is checked too.
#[test]
fn lame_cylinder_nearly_incompressible_fbar_hex8() {
    use spinetwin_fem::hyper::NeoHookean;
    use spinetwin_fem::nl::{solve, Dof, Load, Model, SolidBlock, SolveOptions, Step};
    let nu = NU_INCOMPRESSIBLE;
    let exact = lame_inner(nu);
    let m = hex_quarter_cylinder(8, 16);
    let mut prescribed = Vec::new();
    let hold = |nodes: &[usize], dir: usize, p: &mut Vec<(Dof, f64)>| {
        p.extend(nodes.iter().map(|&node| (Dof::Node { node, dir }, 0.0)))
    };
    hold(&(0..m.num_nodes()).collect::<Vec<_>>(), 2, &mut prescribed);
    hold(m.node_set("theta0").unwrap(), 1, &mut prescribed);
    hold(m.node_set("theta1").unwrap(), 0, &mut prescribed);
    let model = Model {
        solids: vec![SolidBlock {
            name: "tube".into(),
            elements: (0..m.num_elements()).collect(),
            material: std::sync::Arc::new(NeoHookean::from_e_nu(E, nu).unwrap()),
        }],
        mesh: m.clone(),
        steps: vec![Step {
            name: "pressure".into(),
            loads: vec![Load::Pressure {
                faces: m.face_set("inner").unwrap().to_vec(),
                pressure: LP_SMALL,
            }],
            prescribed,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let u = &res.steps[0].state.as_ref().unwrap().displacements;
    let fbar = inner_ur_error(&m, u, exact);

    let plain = inner_ur_bias(&m, &lame_linear(&m, nu).displacements, exact);
    let tet = cylinder_sector_mesh(
        LA,
        LB,
        std::f64::consts::FRAC_PI_2,
        2.5,
        [4, 8, 1],
        Order::Quadratic,
    )
    .unwrap();
    let tet10 = inner_ur_bias(&tet, &lame_linear(&tet, nu).displacements, exact);
    println!(
        "Lame nu {nu}: exact u(a) {exact:.6e} mm; F-bar Hex8 [8,16,1] worst error {:.3} %; \
         mean error plain Hex8 [8,16,1] {:+.1} %, Tet10 [4,8,1] {:+.1} %",
        100.0 * fbar,
        100.0 * plain,
        100.0 * tet10
    );
    assert!(fbar < 0.01, "F-bar Hex8 inner u_r error {fbar}");
    // Locking: plain Hex8 is far too stiff on the same mesh.
    assert!(plain < -0.2, "plain Hex8 mean error {plain}");
    assert!(tet10.abs() < 0.01, "Tet10 mean error {tet10}");
}

/// Gauss-Legendre 4-point rule on [0, 1].
fn gl4() -> [(f64, f64); 4] {
    let p = [
        (-0.861_136_311_594_052_6, 0.347_854_845_137_453_9),
        (-0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
    ];
    let mut out = [(0.0, 0.0); 4];
    for (i, &(x, w)) in p.iter().enumerate() {
        out[i] = (0.5 * (1.0 + x), 0.5 * w);
        out[3 - i] = (0.5 * (1.0 - x), 0.5 * w);
    }
    out
}

/// Relative L2 displacement error against the Lame solution, integrated with a collapsed
/// (Duffy) 4x4x4 Gauss rule on each element.
fn lame_l2_error(m: &Mesh, sol: &Solution) -> f64 {
    let g = gl4();
    let (mut num, mut den) = (0.0, 0.0);
    for e in 0..m.num_elements() {
        let kind = m.kinds[e];
        let nodes = m.element_nodes(e);
        for &(a, wa) in &g {
            for &(b, wb) in &g {
                for &(c, wc) in &g {
                    let p = [a, b * (1.0 - a), c * (1.0 - a) * (1.0 - b)];
                    let wd = wa * wb * wc * (1.0 - a) * (1.0 - a) * (1.0 - b);
                    let (nf, dn) = kind.shape(p);
                    let mut x = [0.0; 3];
                    let mut u = [0.0; 3];
                    let mut jm = nalgebra::Matrix3::<f64>::zeros();
                    for (k, &n) in nodes.iter().enumerate() {
                        for d in 0..3 {
                            x[d] += nf[k] * m.nodes[n][d];
                            u[d] += nf[k] * sol.displacements[n][d];
                            for q in 0..3 {
                                jm[(d, q)] += m.nodes[n][d] * dn[k][q];
                            }
                        }
                    }
                    let dv = wd * jm.determinant();
                    let r = (x[0] * x[0] + x[1] * x[1]).sqrt();
                    let ur = lame_ur(r, LA, LB, LP);
                    let ue = [ur * x[0] / r, ur * x[1] / r, 0.0];
                    num += dv * (0..3).map(|d| (u[d] - ue[d]).powi(2)).sum::<f64>();
                    den += dv * ur * ur;
                }
            }
        }
    }
    (num / den).sqrt()
}

#[test]
fn convergence_rates_lame_l2() {
    for (order, levels, min_rate) in [
        (Order::Quadratic, [2usize, 4, 8], 2.5),
        (Order::Linear, [4usize, 8, 16], 1.5),
    ] {
        let errs: Vec<f64> = levels
            .iter()
            .map(|&n| {
                let (m, sol) = lame_solve(n, order);
                lame_l2_error(&m, &sol)
            })
            .collect();
        let rates: Vec<f64> = errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
        let es: Vec<String> = errs.iter().map(|e| format!("{e:.3e}")).collect();
        println!("L2 convergence {order:?}: cells {levels:?} errors {es:?} rates {rates:.2?}");
        assert!(
            rates[1] >= min_rate,
            "{order:?}: rate {rates:?} below {min_rate}"
        );
    }
}

#[test]
fn two_material_bar_in_series_and_system_reuse() {
    // nu = 0 so the series spring is exact in 3D: u = F (L1/E1 + L2/E2) / A.
    let (l, w, f) = (100.0, 10.0, 200.0);
    for order in [Order::Linear, Order::Quadratic] {
        let m = box_mesh([l, w, w], [10, 2, 2], order).unwrap();
        let (e1, e2) = (1000.0, 3000.0);
        let youngs: Vec<f64> = (0..m.num_elements())
            .map(|e| {
                let xc = m.element_nodes(e)[..4]
                    .iter()
                    .map(|&n| m.nodes[n][0])
                    .sum::<f64>()
                    / 4.0;
                if xc < 0.5 * l {
                    e1
                } else {
                    e2
                }
            })
            .collect();
        let mat = LinearElastic::with_youngs(youngs, 0.0).unwrap();
        let sol = uniaxial(&m, &mat, f / (w * w));
        let exact = f / (w * w) * (0.5 * l / e1 + 0.5 * l / e2);
        for &n in m.node_set("xmax").unwrap() {
            assert!(rel(sol.displacements[n][0], exact) < 1e-9, "{order:?}");
        }

        // Reuse: same pattern and symbolic factorisation, new moduli and a prescribed end
        // displacement instead of a load.
        let mut bc = Constraints::new();
        bc.fix(m.node_set("xmin").unwrap(), [true, false, false]);
        bc.fix(m.node_set("ymin").unwrap(), [false, true, false]);
        bc.fix(m.node_set("zmin").unwrap(), [false, false, true]);
        bc.fix(m.node_set("xmax").unwrap(), [true, false, false]);
        let sys = SparseSystem::new(&m, &bc).unwrap();
        for (scale, delta) in [(1.0, 0.1), (2.0, 0.3)] {
            for &n in m.node_set("xmax").unwrap() {
                bc.prescribe(n, 0, delta);
            }
            let mat2 =
                LinearElastic::with_youngs(mat.youngs.iter().map(|e| e * scale).collect(), 0.0)
                    .unwrap();
            let f_ext = vec![0.0; 3 * m.num_nodes()];
            let asm = sys.assemble_linear_elastic(&m, &mat2, &bc, &f_ext).unwrap();
            let u = sys.factorize(&asm.values).unwrap().solve(&asm.rhs);
            // Interface at x = l/2 moves delta * (1/E1) / (1/E1 + 1/E2) = 0.75 delta.
            let n_mid = (0..m.num_nodes())
                .find(|&n| {
                    (m.nodes[n][0] - 0.5 * l).abs() < 1e-9 && sys.dofs.equation[3 * n] != usize::MAX
                })
                .unwrap();
            let got = u[sys.dofs.equation[3 * n_mid]];
            assert!(
                rel(got, 0.75 * delta) < 1e-9,
                "{order:?}: interface {got} vs {}",
                0.75 * delta
            );
        }
        // Constraining a DOF that is an equation of the system needs a new system.
        let free_y = (0..m.num_nodes())
            .find(|&n| sys.dofs.equation[3 * n + 1] != usize::MAX)
            .unwrap();
        bc.prescribe(free_y, 1, 0.0);
        let f_ext = vec![0.0; 3 * m.num_nodes()];
        assert!(sys.assemble_linear_elastic(&m, &mat, &bc, &f_ext).is_err());
    }
}

#[test]
fn singular_models_are_errors() {
    let m = box_mesh([10.0, 1.0, 1.0], [4, 1, 1], Order::Linear).unwrap();
    let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
    let mut loads = Loads::new();
    loads.traction(m.face_set("xmax").unwrap(), [1.0, 0.0, 0.0]);
    // No constraints at all.
    let err = solve_linear_static(&m, &mat, &Constraints::new(), &loads).unwrap_err();
    assert!(matches!(err, FemError::RigidBodyModes { .. }), "{err}");
    assert!(err.to_string().contains("rigid-body modes: constrain it"));
    // One node pinned: rotations remain.
    let mut bc = Constraints::new();
    bc.fix(&[0], [true; 3]);
    assert!(matches!(
        solve_linear_static(&m, &mat, &bc, &loads),
        Err(FemError::RigidBodyModes { .. })
    ));
    // Nodes pinned along one straight edge: rotation about that edge remains.
    let edge: Vec<usize> = (0..m.num_nodes())
        .filter(|&n| m.nodes[n][1] == 0.0 && m.nodes[n][2] == 0.0)
        .collect();
    let mut bc = Constraints::new();
    bc.fix(&edge, [true; 3]);
    assert!(matches!(
        solve_linear_static(&m, &mat, &bc, &loads),
        Err(FemError::RigidBodyModes { .. })
    ));
    // Only x fixed on a face: translations y, z remain.
    let mut bc = Constraints::new();
    bc.fix(m.node_set("xmin").unwrap(), [true, false, false]);
    assert!(solve_linear_static(&m, &mat, &bc, &loads).is_err());
    // A direction index out of range is an error, not a constraint on another node.
    let mut bc = Constraints::new();
    bc.fix(m.node_set("xmin").unwrap(), [true; 3]);
    bc.prescribe(3, 7, 0.0);
    assert!(matches!(
        solve_linear_static(&m, &mat, &bc, &loads),
        Err(FemError::InvalidInput(_))
    ));
    // The 3-2-1 statically determinate support is enough.
    let mut bc = Constraints::new();
    bc.fix(m.node_set("xmin").unwrap(), [true, false, false]);
    bc.fix(m.node_set("ymin").unwrap(), [false, true, false]);
    bc.fix(m.node_set("zmin").unwrap(), [false, false, true]);
    assert!(solve_linear_static(&m, &mat, &bc, &loads).unwrap().ok);
}

#[test]
fn invalid_meshes_name_the_element() {
    let mut m = box_mesh([1.0, 1.0, 1.0], [2, 2, 2], Order::Linear).unwrap();
    // Swap two nodes of element 5: inverted.
    let o = m.offsets[5];
    m.connectivity.swap(o, o + 1);
    let err = m.validate().unwrap_err();
    assert!(
        matches!(err, FemError::InvertedElement { element: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("element 5"));
    // Degenerate (flat) element.
    let mut flat = Mesh::with_nodes(vec![
        [0.0; 3],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [1.0, 1.0, 0.0],
    ]);
    flat.add_element(ElementKind::Tet4, &[0, 1, 2, 3]);
    assert!(matches!(
        flat.validate(),
        Err(FemError::InvertedElement { element: 0, .. })
    ));
    // Node index out of range.
    let mut m = box_mesh([1.0, 1.0, 1.0], [1, 1, 1], Order::Linear).unwrap();
    let last = m.connectivity.len() - 1;
    m.connectivity[last] = 99;
    let err = m.validate().unwrap_err();
    assert!(
        err.to_string().contains("element 5 refers to node 99"),
        "{err}"
    );
    // A tet10 with a mid-edge node pulled far off: negative Jacobian at a corner/point.
    let mut q = box_mesh([1.0, 1.0, 1.0], [1, 1, 1], Order::Quadratic).unwrap();
    let mid = q.element_nodes(0)[4];
    let c = q.element_nodes(0)[2];
    q.nodes[mid] = q.nodes[c];
    assert!(q.validate().is_err());
    // Bad material.
    assert!(LinearElastic::uniform(3, -1.0, 0.3).is_err());
    assert!(LinearElastic::uniform(3, 1.0, 0.5).is_err());
}

#[test]
fn stress_invariants() {
    let s = [100.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    assert!((von_mises(&s) - 100.0).abs() < 1e-12);
    let shear = [0.0, 0.0, 0.0, 10.0, 0.0, 0.0];
    assert!((von_mises(&shear) - 10.0 * 3f64.sqrt()).abs() < 1e-12);
    let p = principal_stresses(&shear);
    assert!((p[0] - 10.0).abs() < 1e-12 && p[1].abs() < 1e-12 && (p[2] + 10.0).abs() < 1e-12);
}

/// The numbers of the `<DataArray>` called `name` among [`parse_xml`]'s leaves.
fn named_array(leaves: &[(String, String, String)], name: &str) -> Vec<f64> {
    let l = leaves
        .iter()
        .find(|l| l.1.contains(&format!("Name=\"{name}\"")))
        .unwrap_or_else(|| panic!("no DataArray {name}"));
    l.2.split_whitespace().map(|v| v.parse().unwrap()).collect()
}

/// Minimal well-formedness check: balanced tags, returns (tag, attributes, text) of leaves.
fn parse_xml(s: &str) -> Vec<(String, String, String)> {
    let mut stack: Vec<(String, String, usize)> = Vec::new();
    let mut leaves = Vec::new();
    let mut i = 0;
    while let Some(lt) = s[i..].find('<') {
        let start = i + lt;
        let end = start + s[start..].find('>').expect("unterminated tag");
        let tag = &s[start + 1..end];
        i = end + 1;
        if tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let (open, attrs, text_start) = stack.pop().expect("closing tag without opening");
            assert_eq!(open, name, "mismatched tags");
            leaves.push((open, attrs, s[text_start..start].to_string()));
        } else {
            let name = tag.split_whitespace().next().unwrap().to_string();
            stack.push((name, tag.to_string(), i));
        }
    }
    assert!(stack.is_empty(), "unclosed tags {stack:?}");
    leaves
}

#[test]
fn vtu_is_well_formed_and_tet10_order_matches_vtk() {
    let m = box_mesh([2.0, 1.0, 1.0], [2, 1, 1], Order::Quadratic).unwrap();
    let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
    let u: Vec<[f64; 3]> = m.nodes.iter().map(|p| [1e-3 * p[0], 0.0, 0.0]).collect();
    let res = element_results(&m, &mat, &u).unwrap();
    let data = VtuData {
        point_vectors: vec![("displacement".into(), u.clone())],
        cell_scalars: vec![(
            "von_mises".into(),
            res.iter().map(|r| r.von_mises).collect(),
        )],
        cell_tensors: vec![("stress".into(), res.iter().map(|r| r.stress).collect())],
        cell_vectors: vec![("a".into(), vec![[0.0, 0.0, 1.0]; m.num_elements()])],
        point_scalars: vec![],
    };
    let s = vtu_string(&m, &data).unwrap();
    let leaves = parse_xml(&s);
    assert!(s.contains(&format!(
        "NumberOfPoints=\"{}\" NumberOfCells=\"{}\"",
        m.num_nodes(),
        m.num_elements()
    )));
    let array = |name: &str| named_array(&leaves, name);
    assert_eq!(array("displacement").len(), 3 * m.num_nodes());
    assert_eq!(array("von_mises").len(), m.num_elements());
    assert_eq!(array("stress").len(), 6 * m.num_elements());
    assert!(array("types").iter().all(|&t| t == 24.0));
    let conn: Vec<usize> = array("connectivity").iter().map(|&v| v as usize).collect();
    assert_eq!(conn.len(), 10 * m.num_elements());
    let pts_leaf = leaves
        .iter()
        .find(|l| l.0 == "DataArray" && !l.1.contains("Name="))
        .unwrap();
    let pts: Vec<f64> = pts_leaf
        .2
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    // VTK's definition: points 4..9 are the midpoints of edges (0,1), (1,2), (2,0), (0,3),
    // (1,3), (2,3) of the cell as written.
    for cell in conn.chunks(10) {
        let p = |k: usize| [0, 1, 2].map(|d| pts[3 * cell[k] + d]);
        for (mid, (a, b)) in [
            (4, (0, 1)),
            (5, (1, 2)),
            (6, (2, 0)),
            (7, (0, 3)),
            (8, (1, 3)),
            (9, (2, 3)),
        ] {
            for d in 0..3 {
                assert!(
                    (p(mid)[d] - 0.5 * (p(a)[d] + p(b)[d])).abs() < 1e-12,
                    "VTK mid node {mid}"
                );
            }
        }
    }
    // Written atomically to disk, same content.
    let dir = std::env::temp_dir().join(format!("spinetwin-fem-vtu-{}", std::process::id()));
    let path = dir.join("out.vtu");
    write_vtu(&path, &m, &data).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), s);
    let _ = std::fs::remove_dir_all(&dir);
    // Wrong field length is an error, not a broken file.
    let bad = VtuData {
        cell_scalars: vec![("x".into(), vec![1.0])],
        ..Default::default()
    };
    assert!(vtu_string(&m, &bad).is_err());
}

/// Benchmark: ~200k-DOF Tet10 box, linear static. Run with
/// `cargo test -p spinetwin-fem --release -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_tet10_box_200k_dofs() {
    let t = std::time::Instant::now();
    let m = box_mesh([100.0, 100.0, 100.0], [20, 20, 20], Order::Quadratic).unwrap();
    let mesh_time = t.elapsed();
    let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
    let mut bc = Constraints::new();
    bc.fix(m.node_set("zmin").unwrap(), [true; 3]);
    let mut loads = Loads::new();
    loads.pressure(m.face_set("zmax").unwrap(), 1.0);
    let t = std::time::Instant::now();
    let sol = solve_linear_static(&m, &mat, &bc, &loads).unwrap();
    let total = t.elapsed();
    let tm = &sol.timings;
    println!(
        "bench tet10 box: {} elements, {} nodes, {} equations, nnz(upper) {}, nnz(L) {}, threads {}",
        m.num_elements(),
        m.num_nodes(),
        sol.num_equations,
        sol.nnz,
        sol.factor_nnz,
        rayon::current_num_threads()
    );
    println!(
        "mesh {:.3}s | pattern {:.3}s | symbolic {:.3}s | assembly {:.3}s | numeric {:.3}s | solve {:.3}s | total {:.3}s | residual {:.1e}",
        mesh_time.as_secs_f64(),
        tm.pattern.as_secs_f64(),
        tm.symbolic.as_secs_f64(),
        tm.assembly.as_secs_f64(),
        tm.numeric.as_secs_f64(),
        tm.solve.as_secs_f64(),
        total.as_secs_f64(),
        sol.relative_residual
    );
    assert!(sol.ok);
}

#[test]
fn mechanism_inside_a_connected_model_is_an_error() {
    // Two tets sharing only node 0 (a ball joint): the first is clamped, the second can
    // still rotate about the shared node. The rigid-body check per connected part passes,
    // so the factorisation or the conditioning check must catch it.
    let nodes = vec![
        [0.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0],
        [0.0, -1.0, 0.0],
        [0.0, 0.0, -1.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
    ];
    let mut m = Mesh::with_nodes(nodes);
    m.add_element(ElementKind::Tet4, &[0, 2, 1, 3]);
    m.add_element(ElementKind::Tet4, &[0, 4, 5, 6]);
    m.validate().unwrap();
    let mat = LinearElastic::uniform(2, E, NU).unwrap();
    let mut bc = Constraints::new();
    bc.fix(&[0, 1, 2, 3], [true; 3]);
    let mut loads = Loads::new();
    loads.nodal_force(6, [1.0, 0.0, 0.0]);
    let r = solve_linear_static(&m, &mat, &bc, &loads);
    println!("{r:?}");
    assert!(r.is_err(), "mechanism gave a result");
}

#[test]
fn face_tables_and_pressure_resultants() {
    let m = single_element(ElementKind::Tet10);
    let x = &m.nodes;
    let mid = |a: usize, b: usize| [0, 1, 2].map(|d| 0.5 * (x[a][d] + x[b][d]));
    for (f, fc) in element::TET_FACES.iter().enumerate() {
        // Tri6 mid nodes sit on edges a-b, b-c, c-a of the face.
        for (k, (a, b)) in [(0, 1), (1, 2), (2, 0)].into_iter().enumerate() {
            let p = mid(fc[a], fc[b]);
            for d in 0..3 {
                assert!((x[fc[3 + k]][d] - p[d]).abs() < 1e-14, "face {f} mid {k}");
            }
        }
        // The corner order's right-hand normal points into the element.
        let opp = (0..4).find(|c| !fc[..3].contains(c)).unwrap();
        let (a, b, c) = (x[fc[0]], x[fc[1]], x[fc[2]]);
        let u = [0, 1, 2].map(|d| b[d] - a[d]);
        let v = [0, 1, 2].map(|d| c[d] - a[d]);
        let n = [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ];
        let to_opp: f64 = (0..3).map(|d| n[d] * (x[opp][d] - a[d])).sum();
        assert!(to_opp > 0.0, "face {f} normal points outwards");
        // Pressure p on one face: resultant = p * (area vector, inward) = p n / 2; on a flat
        // tri6 the corner forces are zero and each mid node carries a third.
        let mut loads = Loads::new();
        loads.pressure(&[(0, f as u8)], 3.0);
        let fv = loads.assemble(&m).unwrap();
        for d in 0..3 {
            let total: f64 = (0..10).map(|k| fv[3 * k + d]).sum();
            assert!((total - 1.5 * n[d]).abs() < 1e-12, "face {f} resultant");
            for k in 0..3 {
                assert!(fv[3 * fc[k] + d].abs() < 1e-12, "face {f} corner load");
                assert!(
                    (fv[3 * fc[3 + k] + d] - 0.5 * n[d]).abs() < 1e-12,
                    "face {f} mid load"
                );
            }
        }
    }
    // Pressure on the closed surface of an element: zero net force.
    let mut loads = Loads::new();
    loads.pressure(&[(0, 0), (0, 1), (0, 2), (0, 3)], 2.0);
    let fv = loads.assemble(&m).unwrap();
    for d in 0..3 {
        assert!((0..10).map(|k| fv[3 * k + d]).sum::<f64>().abs() < 1e-12);
    }
}

/// Line cells (springs, ligament fibres): one VTK_LINE per pair, offsets in steps of two,
/// one value per line for each field; a pair naming a missing point or a field of the
/// wrong length is an error, not a broken file.
#[test]
fn vtu_lines_are_well_formed() {
    use spinetwin_fem::vtu::lines_vtu_string;
    let pts = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]];
    let lines = [[0, 1], [1, 2]];
    let fields = vec![("force_n".to_string(), vec![3.0, 4.5])];
    let s = lines_vtu_string(&pts, &lines, &fields).unwrap();
    assert!(s.contains(r#"NumberOfPoints="3" NumberOfCells="2""#));
    let leaves = parse_xml(&s);
    let array = |name: &str| named_array(&leaves, name);
    assert_eq!(array("connectivity"), vec![0.0, 1.0, 1.0, 2.0]);
    assert_eq!(array("offsets"), vec![2.0, 4.0]);
    assert_eq!(array("types"), vec![3.0, 3.0]);
    assert_eq!(array("force_n"), vec![3.0, 4.5]);
    assert!(lines_vtu_string(&pts, &[[0, 3]], &[]).is_err());
    assert!(lines_vtu_string(&pts, &lines, &[("x".into(), vec![1.0])]).is_err());
}

/// Triangle cells (contact surfaces): one VTK_TRIANGLE per triple, offsets in steps of
/// three, point and cell fields of their own lengths; wrong lengths and missing points are
/// errors.
#[test]
fn vtu_triangles_are_well_formed() {
    use spinetwin_fem::vtu::triangles_vtu_string;
    let pts = [
        [0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [1.0, 1.0, 0.5],
    ];
    let tris = [[0, 1, 2], [1, 3, 2]];
    let point = vec![("pressure".to_string(), vec![0.0, 1.5, 2.0, 0.25])];
    let cell = vec![("side".to_string(), vec![0.0, 1.0])];
    let s = triangles_vtu_string(&pts, &tris, &point, &cell).unwrap();
    assert!(s.contains(r#"NumberOfPoints="4" NumberOfCells="2""#));
    let leaves = parse_xml(&s);
    let array = |name: &str| named_array(&leaves, name);
    assert_eq!(array("connectivity"), vec![0.0, 1.0, 2.0, 1.0, 3.0, 2.0]);
    assert_eq!(array("offsets"), vec![3.0, 6.0]);
    assert_eq!(array("types"), vec![5.0, 5.0]);
    assert_eq!(array("pressure"), vec![0.0, 1.5, 2.0, 0.25]);
    assert_eq!(array("side"), vec![0.0, 1.0]);
    assert!(triangles_vtu_string(&pts, &[[0, 1, 4]], &[], &[]).is_err());
    assert!(triangles_vtu_string(&pts, &tris, &cell, &[]).is_err());
    assert!(triangles_vtu_string(&pts, &tris, &[], &point).is_err());
}
