//! Nonlinear statics: rigid bodies, springs, follower loads, large-deformation solids,
//! penalty contact, non-convergence and multi-step analyses, each against an analytical
//! answer.

use std::sync::Arc;

use spinetwin_fem::continuum::StVenantKirchhoff;
use spinetwin_fem::nl::*;
use spinetwin_fem::{box_mesh, LinearElastic, Mesh, Order};

/// Prescribes all six DOFs of `body` to zero except those listed in `free`.
fn hold(body: usize, free: &[usize]) -> Vec<(Dof, f64)> {
    (0..6)
        .filter(|k| !free.contains(k))
        .map(|k| (Dof::Body { body, k }, 0.0))
        .collect()
}

fn body(name: &str, at: [f64; 3]) -> RigidBody {
    RigidBody {
        name: name.into(),
        reference: at,
        tied_nodes: vec![],
    }
}

fn spring(a: Point, b: Point, rest: f64, k: f64) -> Spring {
    Spring {
        name: "s".into(),
        a,
        b,
        rest_length: rest,
        law: SpringLaw::Linear { k },
    }
}

fn on(body: usize, at: [f64; 3]) -> Point {
    Point::Body { body, at }
}

fn rot_z(state: &StepState, b: usize) -> f64 {
    state.bodies[b].rotation_vector[2]
}

/// Four pre-tensioned springs in the plane z = 0 from a fixed ground body (1) to body 0
/// (arm `a`, spring span `l`, rest length `l0`, stiffness `k` per unit strain); the moment
/// about z that holds body 0 at rotation `th`:
/// `M = 4 T a (a + l) sin(th) / len`, `len^2 = a^2 + (a+l)^2 - 2 a (a+l) cos(th)`.
fn four_spring_model(a: f64, l: f64, l0: f64, k: f64, moment: f64) -> Model {
    let mut springs = vec![];
    for q in 0..4 {
        let ang = q as f64 * std::f64::consts::FRAC_PI_2;
        let (c, s) = (ang.cos(), ang.sin());
        springs.push(spring(
            on(0, [a * c, a * s, 0.0]),
            on(1, [(a + l) * c, (a + l) * s, 0.0]),
            l0,
            k,
        ));
    }
    Model {
        bodies: vec![body("b", [0.0; 3]), body("ground", [0.0; 3])],
        springs,
        steps: vec![Step {
            name: "moment".into(),
            loads: vec![Load::BodyMoment {
                body: 0,
                moment: [0.0, 0.0, moment],
            }],
            prescribed: hold(1, &[]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn four_spring_moment(a: f64, l: f64, l0: f64, k: f64, th: f64) -> f64 {
    let len = (a * a + (a + l) * (a + l) - 2.0 * a * (a + l) * th.cos()).sqrt();
    let t = k * (len - l0) / l0;
    4.0 * t * a * (a + l) * th.sin() / len
}

#[test]
fn large_rotation_under_a_pure_moment_matches_the_exact_equilibrium() {
    let (a, l, l0, k) = (10.0, 20.0, 15.0, 1000.0);
    let th = 50f64.to_radians();
    let m = four_spring_moment(a, l, l0, k, th);
    let res = solve(&four_spring_model(a, l, l0, k, m), &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let got = rot_z(s, 0);
    assert!((got - th).abs() < 1e-6, "rotation {got} vs {th}");
    // Small-angle theory (initial stiffness) would be far off.
    let k0 = (four_spring_moment(a, l, l0, k, 1e-6)) / 1e-6;
    assert!((m / k0 - th).abs() > 0.1);
    // Symmetry: no translation, no rotation about x or y.
    let b = &s.bodies[0];
    assert!(b.translation.iter().all(|v| v.abs() < 1e-8));
    assert!(b.rotation_vector[0].abs() < 1e-8 && b.rotation_vector[1].abs() < 1e-8);
    // The ground reacts the moment.
    let mz: f64 = s
        .reactions
        .iter()
        .filter(|(d, _)| *d == Dof::Body { body: 1, k: 5 })
        .map(|r| r.1)
        .sum();
    assert!((mz + m).abs() < 1e-6 * m, "reaction {mz} vs {m}");
    let total: usize = res.steps[0].increments.iter().map(|i| i.iterations).sum();
    eprintln!(
        "moment test: {} increments, {total} iterations, residuals of the last: {:?}",
        res.steps[0].increments.len(),
        res.steps[0].increments.last().unwrap().residuals
    );
}

/// Body 0 between two springs along x from ground points at -len and +len.
fn two_sided(k: f64, len: f64, f: f64) -> Model {
    Model {
        bodies: vec![body("b", [0.0; 3]), body("ground", [0.0; 3])],
        springs: vec![
            spring(on(1, [-len, 0.0, 0.0]), on(0, [0.0; 3]), len, k),
            spring(on(0, [0.0; 3]), on(1, [len, 0.0, 0.0]), len, k),
        ],
        steps: vec![Step {
            name: "pull".into(),
            loads: vec![Load::BodyForce {
                body: 0,
                force: [f, 0.0, 0.0],
            }],
            prescribed: [hold(0, &[0]), hold(1, &[])].concat(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn tension_only_springs_do_not_push() {
    let (k, len, f) = (500.0, 20.0, 50.0);
    let res = solve(&two_sided(k, len, f), &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    // Only the stretched spring holds: u = F len / k (exact for the linear law).
    let u = s.bodies[0].translation[0];
    assert!((u - f * len / k).abs() < 1e-9, "u = {u}");
    assert!((s.spring_forces[0] - f).abs() < 1e-9);
    assert_eq!(s.spring_forces[1], 0.0);
    assert!((s.spring_lengths[1] - (len - u)).abs() < 1e-9);
}

#[test]
fn follower_pair_tracks_the_rotating_body() {
    // A hinge about z at the origin; a follower pair pulls the body point A (arm a) towards
    // the ground point G = (gx, d, 0) with magnitude P; a fixed moment -M0 balances it.
    // Equilibrium: M0 = P (A x G)_z / |G - A| = P a (d cos th - gx sin th) / |G - A|.
    let (a, gx, d, p) = (10.0, 20.0, 20.0, 100.0);
    let th = 30f64.to_radians();
    let ax = [a * th.cos(), a * th.sin()];
    let len = ((gx - ax[0]).powi(2) + (d - ax[1]).powi(2)).sqrt();
    let m0 = p * a * (d * th.cos() - gx * th.sin()) / len;
    let model = Model {
        bodies: vec![body("pendulum", [0.0; 3]), body("ground", [0.0; 3])],
        steps: vec![Step {
            name: "follow".into(),
            loads: vec![
                Load::FollowerPair {
                    a: on(0, [a, 0.0, 0.0]),
                    b: on(1, [gx, d, 0.0]),
                    magnitude: p,
                },
                Load::BodyMoment {
                    body: 0,
                    moment: [0.0, 0.0, -m0],
                },
            ],
            prescribed: [hold(0, &[5]), hold(1, &[])].concat(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let opts = SolveOptions {
        progress: true,
        ..Default::default()
    };
    let res = solve(&model, &opts).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let got = rot_z(s, 0);
    assert!((got - th).abs() < 1e-6, "rotation {} deg", got.to_degrees());
    // A force of fixed (initial) direction would need a different moment.
    let l0 = ((gx - a).powi(2) + d * d).sqrt();
    let fixed = p * (a * th.cos() * d - a * th.sin() * (gx - a)) / l0;
    assert!((fixed - m0).abs() > 0.05 * m0, "{fixed} vs {m0}");
    // The hinge reacts the follower force: R = -P (G - A) / |G - A|.
    let r = |k| {
        s.reactions
            .iter()
            .find(|(dof, _)| *dof == Dof::Body { body: 0, k })
            .unwrap()
            .1
    };
    let dir = [(gx - ax[0]) / len, (d - ax[1]) / len];
    assert!(
        (r(0) + p * dir[0]).abs() < 1e-6 * p,
        "{} vs {}",
        r(0),
        -p * dir[0]
    );
    assert!((r(1) + p * dir[1]).abs() < 1e-6 * p);
}

fn svk(mesh: &Mesh, e: f64, nu: f64) -> SolidBlock {
    SolidBlock {
        name: "bar".into(),
        elements: (0..mesh.num_elements()).collect(),
        material: Arc::new(StVenantKirchhoff {
            linear: LinearElastic::uniform(mesh.num_elements(), e, nu).unwrap(),
        }),
    }
}

fn nodes_at(mesh: &Mesh, f: impl Fn(&[f64; 3]) -> bool) -> Vec<usize> {
    (0..mesh.num_nodes())
        .filter(|&n| f(&mesh.nodes[n]))
        .collect()
}

#[test]
fn svk_bar_in_large_uniaxial_stretch_matches_the_exact_force() {
    // Uniaxial stress, SVK: S11 = E E11, nominal force N = A0 lam S11 = A0 E lam (lam^2-1)/2,
    // lateral stretch sqrt(1 - 2 nu E11).
    let (e, nu, len, delta) = (1000.0, 0.3, 4.0, 1.2);
    let mesh = box_mesh([len, 1.0, 1.0], [2, 1, 1], Order::Linear).unwrap();
    let mut pres = vec![];
    for n in nodes_at(&mesh, |x| x[0].abs() < 1e-9) {
        pres.push((Dof::Node { node: n, dir: 0 }, 0.0));
        let x = mesh.nodes[n];
        if x[1].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 1 }, 0.0));
        }
        if x[2].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 2 }, 0.0));
        }
    }
    let end = nodes_at(&mesh, |x| (x[0] - len).abs() < 1e-9);
    for &n in &end {
        pres.push((Dof::Node { node: n, dir: 0 }, delta));
    }
    let model = Model {
        solids: vec![svk(&mesh, e, nu)],
        mesh: mesh.clone(),
        steps: vec![Step {
            name: "stretch".into(),
            prescribed: pres,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let lam: f64 = 1.0 + delta / len;
    let e11 = 0.5 * (lam * lam - 1.0);
    let n_exact = e * lam * e11;
    let n: f64 = s
        .reactions
        .iter()
        .filter(|(d, _)| matches!(d, Dof::Node { node, dir: 0 } if end.contains(node)))
        .map(|r| r.1)
        .sum();
    assert!(
        (n - n_exact).abs() < 1e-6 * n_exact,
        "force {n} vs {n_exact}"
    );
    let lat = (1.0 - 2.0 * nu * e11).sqrt();
    let corner = nodes_at(&mesh, |x| {
        (x[0] - len).abs() < 1e-9 && x[1] > 0.5 && x[2] > 0.5
    })[0];
    let uy = s.displacements[corner][1];
    assert!(
        (uy - (lat - 1.0)).abs() < 1e-6,
        "lateral {uy} vs {}",
        lat - 1.0
    );
    // Cauchy stress sigma_xx = N / (current area).
    let sig = s.element_stress[0][0];
    assert!((sig - n_exact / (lat * lat)).abs() < 1e-6 * sig, "{sig}");
}

#[test]
fn solid_tied_to_a_body_matches_the_same_solid_with_the_body_motion_prescribed() {
    // Model A: a bar fixed at x = 0 with its x = len face tied to a body twisted and bent by
    // a moment. Model B: the same bar with the face nodes prescribed to A's body motion. B's
    // interior must match A, and B's face reactions must sum to zero force and to A's
    // moment about the body's current reference point.
    let len = 4.0;
    let mesh = box_mesh([len, 1.0, 1.0], [2, 1, 1], Order::Linear).unwrap();
    let root = nodes_at(&mesh, |x| x[0].abs() < 1e-9);
    let face = nodes_at(&mesh, |x| (x[0] - len).abs() < 1e-9);
    let fix: Vec<(Dof, f64)> = root
        .iter()
        .flat_map(|&n| (0..3).map(move |dir| (Dof::Node { node: n, dir }, 0.0)))
        .collect();
    let reference = [len, 0.5, 0.5];
    let moment = [40.0, 0.0, 25.0];
    let a = Model {
        solids: vec![svk(&mesh, 1000.0, 0.3)],
        mesh: mesh.clone(),
        bodies: vec![RigidBody {
            name: "cap".into(),
            reference,
            tied_nodes: face.clone(),
        }],
        steps: vec![Step {
            name: "twist".into(),
            loads: vec![Load::BodyMoment { body: 0, moment }],
            prescribed: fix.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ra = solve(&a, &SolveOptions::default()).unwrap();
    assert!(ra.converged, "{:?}", ra.failure);
    let sa = ra.steps[0].state.as_ref().unwrap();
    let ang = sa.bodies[0].rotation_vector;
    assert!(ang[0] > 0.1, "twist {ang:?} should be a large rotation");
    let mut pres = fix;
    for &n in &face {
        for dir in 0..3 {
            pres.push((Dof::Node { node: n, dir }, sa.displacements[n][dir]));
        }
    }
    let b = Model {
        solids: vec![svk(&mesh, 1000.0, 0.3)],
        mesh: mesh.clone(),
        steps: vec![Step {
            name: "prescribed".into(),
            prescribed: pres,
            ..Default::default()
        }],
        ..Default::default()
    };
    let rb = solve(&b, &SolveOptions::default()).unwrap();
    assert!(rb.converged, "{:?}", rb.failure);
    let sb = rb.steps[0].state.as_ref().unwrap();
    for n in 0..mesh.num_nodes() {
        for d in 0..3 {
            let diff = (sa.displacements[n][d] - sb.displacements[n][d]).abs();
            assert!(diff < 1e-7, "node {n} dir {d}: {diff:e}");
        }
    }
    let c: Vec<f64> = (0..3)
        .map(|i| reference[i] + sa.bodies[0].translation[i])
        .collect();
    let mut f = [0.0; 3];
    let mut m = [0.0; 3];
    for &n in &face {
        let r: Vec<f64> = (0..3)
            .map(|i| mesh.nodes[n][i] + sb.displacements[n][i] - c[i])
            .collect();
        let fr: Vec<f64> = (0..3)
            .map(|dir| {
                sb.reactions
                    .iter()
                    .find(|(d, _)| *d == Dof::Node { node: n, dir })
                    .unwrap()
                    .1
            })
            .collect();
        for i in 0..3 {
            f[i] += fr[i];
        }
        m[0] += r[1] * fr[2] - r[2] * fr[1];
        m[1] += r[2] * fr[0] - r[0] * fr[2];
        m[2] += r[0] * fr[1] - r[1] * fr[0];
    }
    for i in 0..3 {
        assert!(f[i].abs() < 1e-6, "net force {f:?}");
        assert!(
            (m[i] - moment[i]).abs() < 1e-6 * 50.0,
            "moment {m:?} vs {moment:?}"
        );
    }
}

/// Ground body 1 with a square master surface at z = 0 (outward normal +z); body 0 with
/// slave points at z = 0.
fn contact_model(slaves: &[[f64; 3]], area: f64, penalty: f64, loads: Vec<Load>) -> Model {
    let c = |x: f64, y: f64| on(1, [x, y, 0.0]);
    let h = 20.0;
    Model {
        bodies: vec![body("block", [0.0; 3]), body("ground", [0.0; 3])],
        contacts: vec![ContactPair {
            name: "floor".into(),
            slave: slaves.iter().map(|&p| on(0, p)).collect(),
            slave_area: vec![area; slaves.len()],
            master: vec![
                [c(-h, -h), c(h, -h), c(h, h)],
                [c(-h, -h), c(h, h), c(-h, h)],
            ],
            penalty,
            clearance: 0.0,
            friction: 0.0,
            augmented: None,
            tangential_penalty: None,
            search_depth: None,
            slave_faces: vec![],
        }],
        steps: vec![Step {
            name: "press".into(),
            loads,
            // Frictionless: the block's in-plane motion is held.
            prescribed: [hold(0, &[2, 3, 4]), hold(1, &[])].concat(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A soft contact on a small patch: four slave points 0.5 mm above a 10 x 10 mm master of
/// 1 mm triangles, pressed by 200 N against 40 N/mm of penalty and hung from a 1 N/mm
/// spring. Equilibrium has the points 4.87 mm deep, four master edges: with the default
/// search depth (one edge) the points pass behind the surface and the contact is lost;
/// with the depth set to the master's thickness it holds, at the penalty's penetration.
#[test]
fn a_search_depth_keeps_a_soft_contact_from_being_pushed_through() {
    let solve_with = |depth: Option<f64>| {
        let c = |i: usize, j: usize| on(1, [i as f64 - 5.0, j as f64 - 5.0, 0.0]);
        let mut master = vec![];
        for i in 0..10 {
            for j in 0..10 {
                master.push([c(i, j), c(i + 1, j), c(i + 1, j + 1)]);
                master.push([c(i, j), c(i + 1, j + 1), c(i, j + 1)]);
            }
        }
        let pts = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]];
        let model = Model {
            bodies: vec![body("block", [0.0; 3]), body("ground", [0.0; 3])],
            springs: vec![spring(
                on(0, [0.0, 0.0, 0.5]),
                on(1, [0.0, 0.0, 100.5]),
                100.0,
                100.0,
            )],
            contacts: vec![ContactPair {
                name: "patch".into(),
                slave: pts.iter().map(|p| on(0, [p[0], p[1], 0.5])).collect(),
                slave_area: vec![1.0; 4],
                master,
                penalty: 10.0,
                clearance: 0.0,
                friction: 0.0,
                augmented: None,
                tangential_penalty: None,
                search_depth: depth,
                slave_faces: vec![],
            }],
            steps: vec![Step {
                name: "press".into(),
                loads: vec![Load::BodyForce {
                    body: 0,
                    force: [0.0, 0.0, -200.0],
                }],
                prescribed: [hold(0, &[2]), hold(1, &[])].concat(),
                // Small increments: the points go in gradually, as under a ramped moment.
                increments: Increments {
                    initial: 0.005,
                    max: 0.02,
                    max_increments: 1000,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let res = solve(&model, &SolveOptions::default()).unwrap();
        assert!(res.converged, "{:?}", res.failure);
        let s = res.steps[0].state.clone().unwrap();
        (-s.bodies[0].translation[2], s.contacts[0].normal_force)
    };
    // Held: 200 = 1 d + 40 (d - 0.5).
    let (d, f) = solve_with(Some(10.0));
    assert!((d - 220.0 / 41.0).abs() < 1e-6, "held: descent {d}");
    assert!(
        (f - 40.0 * (d - 0.5)).abs() < 1e-6,
        "held: contact force {f}"
    );
    // Lost: the spring alone carries the load (200 mm).
    let (d, f) = solve_with(None);
    assert!(
        (d - 200.0).abs() < 1e-6 && f == 0.0,
        "lost: descent {d}, force {f}"
    );
}

#[test]
fn a_contact_refuses_a_search_depth_or_tangential_penalty_that_is_not_positive() {
    let pts = [[0.0, 0.0, 0.0]];
    let load = || {
        vec![Load::BodyForce {
            body: 0,
            force: [0.0, 0.0, -1.0],
        }]
    };
    for (depth, tangential) in [
        (Some(0.0), None),
        (None, Some(-1.0)),
        (None, Some(f64::NAN)),
    ] {
        let mut model = contact_model(&pts, 1.0, 10.0, load());
        model.contacts[0].search_depth = depth;
        model.contacts[0].tangential_penalty = tangential;
        let err = solve(&model, &SolveOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be finite and > 0"), "{err}");
    }
}

#[test]
fn contact_force_balances_the_load_with_the_penalty_penetration() {
    let (f, area, penalty) = (1000.0, 25.0, 100.0);
    let pts = [
        [-5.0, -5.0, 0.0],
        [5.0, -5.0, 0.0],
        [5.0, 5.0, 0.0],
        [-5.0, 5.0, 0.0],
    ];
    let model = contact_model(
        &pts,
        area,
        penalty,
        vec![Load::BodyForce {
            body: 0,
            force: [0.0, 0.0, -f],
        }],
    );
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let cs = &s.contacts[0];
    assert!((cs.normal_force - f).abs() < 1e-6 * f);
    assert!((cs.force[2] - f).abs() < 1e-6 * f && cs.force[0].abs() < 1e-9);
    assert_eq!(cs.active_points, 4);
    let pen = f / (penalty * 4.0 * area);
    assert!(
        (s.bodies[0].translation[2] + pen).abs() < 1e-9,
        "{:?}",
        s.bodies[0]
    );
    assert!((cs.max_pressure - penalty * pen).abs() < 1e-6);
}

#[test]
fn offset_load_on_two_contact_patches_splits_by_the_lever_rule() {
    // Patches at x = -10 and x = +10; a 1000 N load at x = +5 (force at the reference point
    // plus its moment): 250 N / 750 N in the reference configuration (to O(phi^2)); exactly
    // F_B - F_A = 500 / cos(phi) with the small tilt phi.
    let (f, area, penalty) = (1000.0, 10.0, 100.0);
    let pts = [
        [-10.0, -5.0, 0.0],
        [-10.0, 5.0, 0.0],
        [10.0, -5.0, 0.0],
        [10.0, 5.0, 0.0],
    ];
    let model = contact_model(
        &pts,
        area,
        penalty,
        vec![
            Load::BodyForce {
                body: 0,
                force: [0.0, 0.0, -f],
            },
            Load::BodyMoment {
                body: 0,
                moment: [0.0, 5.0 * f, 0.0],
            },
        ],
    );
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let p = &s.contacts[0].pressure;
    let fa = (p[0] + p[1]) * area;
    let fb = (p[2] + p[3]) * area;
    let phi = s.bodies[0].rotation_vector[1];
    assert!((fa + fb - f).abs() < 1e-6 * f);
    assert!((fb - fa - 500.0 / phi.cos()).abs() < 1e-6 * f, "{fa} {fb}");
    assert!(
        (fb - 750.0).abs() < 0.1 && (fa - 250.0).abs() < 0.1,
        "{fa} {fb}"
    );
}

#[test]
fn an_unreachable_load_reports_failure_without_a_state() {
    // The follower pendulum with a moment larger than the follower force can ever resist.
    let (a, p) = (10.0, 100.0);
    let mut inc = Increments {
        min: 0.05,
        ..Default::default()
    };
    let model = |inc: Increments, m: f64| Model {
        bodies: vec![body("pendulum", [0.0; 3]), body("ground", [0.0; 3])],
        steps: vec![Step {
            name: "follow".into(),
            loads: vec![
                Load::FollowerPair {
                    a: on(0, [a, 0.0, 0.0]),
                    b: on(1, [2.0 * a, 2.0 * a, 0.0]),
                    magnitude: p,
                },
                Load::BodyMoment {
                    body: 0,
                    moment: [0.0, 0.0, -m],
                },
            ],
            prescribed: [hold(0, &[5]), hold(1, &[])].concat(),
            increments: inc,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model(inc.clone(), 2.0 * p * a), &SolveOptions::default()).unwrap();
    assert!(!res.converged);
    let msg = res.failure.unwrap();
    assert!(
        msg.contains("step 1 'follow'") && msg.contains("load factor 0.0000"),
        "{msg}"
    );
    let last = res.steps.last().unwrap();
    assert!(last.state.is_none() && !last.converged);
    assert!(last.increments.iter().all(|i| !i.converged));
    // A reachable moment in one increment with too few iterations and no cut-back.
    inc.initial = 1.0;
    inc.cutback = false;
    let opts = SolveOptions {
        max_iterations: 2,
        ..Default::default()
    };
    let res = solve(&model(inc, 0.5 * p * a), &opts).unwrap();
    assert!(!res.converged);
    let msg = res.failure.unwrap();
    assert!(msg.contains("no convergence in 2 iterations"), "{msg}");
    assert!(res.steps[0].state.is_none());
}

#[test]
fn cutting_a_spring_in_a_later_step_moves_the_body_to_the_new_equilibrium() {
    let (k1, k2, len, f) = (300.0, 200.0, 10.0, 30.0);
    let pull = vec![Load::BodyForce {
        body: 0,
        force: [f, 0.0, 0.0],
    }];
    let held = [hold(0, &[0]), hold(1, &[])].concat();
    let model = Model {
        bodies: vec![body("b", [0.0; 3]), body("ground", [0.0; 3])],
        springs: vec![
            spring(on(1, [-len, 0.0, 0.0]), on(0, [0.0; 3]), len, k1),
            spring(on(1, [-len, 0.0, 0.0]), on(0, [0.0; 3]), len, k2),
        ],
        steps: vec![
            Step {
                name: "both".into(),
                loads: pull.clone(),
                prescribed: held.clone(),
                ..Default::default()
            },
            Step {
                name: "cut".into(),
                loads: pull,
                deactivate: vec![Deactivate::Spring(1)],
                ..Default::default()
            },
            Step {
                name: "unload".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let u = |i: usize| res.steps[i].state.as_ref().unwrap().bodies[0].translation[0];
    assert!((u(0) - f * len / (k1 + k2)).abs() < 1e-9, "{}", u(0));
    assert!((u(1) - f * len / k1).abs() < 1e-9, "{}", u(1));
    assert!(u(2).abs() < 1e-9, "{}", u(2));
    let s1 = res.steps[1].state.as_ref().unwrap();
    assert!((s1.spring_forces[0] - f).abs() < 1e-9);
    assert_eq!(s1.spring_forces[1], 0.0);
    assert!((s1.spring_lengths[1] - (len + u(1))).abs() < 1e-9);
}

/// Stretch `lam` of a St Venant-Kirchhoff bar with nu = 0 (no lateral strain, so the
/// deformation is homogeneous even with clamped ends) carrying the nominal stress `t`:
/// `E lam (lam^2 - 1) / 2 = t`, solved by bisection (the left side increases for lam > 1).
fn svk_nu0_stretch(e: f64, t: f64) -> f64 {
    let (mut lo, mut hi) = (1.0, 2.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if e * mid * (mid * mid - 1.0) / 2.0 > t {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn deactivating_one_of_two_parallel_solid_bars_moves_the_load_to_the_other() {
    // Two 1 x 1 bars side by side (y in [0, 1] and [1, 2], sharing their middle nodes),
    // clamped at x = 0, their x = len faces tied to a body that may only translate along x
    // and carries the force f. SVK with nu = 0: each bar is in exact homogeneous uniaxial
    // stretch, E lam (lam^2 - 1) / 2 = force per unit area. Step 2 removes the upper bar's
    // elements: the lower one must carry all of f; step 3 removes the load.
    let (e, len, f) = (1000.0, 4.0, 80.0);
    let mesh = box_mesh([len, 2.0, 1.0], [4, 2, 1], Order::Linear).unwrap();
    let upper: Vec<usize> = (0..mesh.num_elements())
        .filter(|&el| mesh.element_centroid(el)[1] > 1.0)
        .collect();
    assert_eq!(upper.len(), mesh.num_elements() / 2);
    let root = nodes_at(&mesh, |x| x[0].abs() < 1e-9);
    let end = nodes_at(&mesh, |x| (x[0] - len).abs() < 1e-9);
    let mut fixed = hold(0, &[0]);
    for &node in &root {
        fixed.extend((0..3).map(|dir| (Dof::Node { node, dir }, 0.0)));
    }
    let pull = vec![Load::BodyForce {
        body: 0,
        force: [f, 0.0, 0.0],
    }];
    let model = Model {
        solids: vec![svk(&mesh, e, 0.0)],
        mesh: mesh.clone(),
        bodies: vec![RigidBody {
            name: "end".into(),
            reference: [len, 1.0, 0.5],
            tied_nodes: end,
        }],
        steps: vec![
            Step {
                name: "both bars".into(),
                loads: pull.clone(),
                prescribed: fixed,
                ..Default::default()
            },
            Step {
                name: "cut".into(),
                loads: pull,
                deactivate: vec![Deactivate::Elements(upper.clone())],
                ..Default::default()
            },
            Step {
                name: "unload".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let state = |i: usize| res.steps[i].state.as_ref().unwrap();
    let u = |i: usize| state(i).bodies[0].translation[0];
    let (lam2, lam1) = (svk_nu0_stretch(e, f / 2.0), svk_nu0_stretch(e, f));
    let (u2, u1) = ((lam2 - 1.0) * len, (lam1 - 1.0) * len);
    println!(
        "two bars: u {:.9} (exact {u2:.9}); one bar: u {:.9} (exact {u1:.9}); unloaded {:.1e}",
        u(0),
        u(1),
        u(2)
    );
    assert!((u(0) - u2).abs() < 1e-9 * u2, "{} vs {u2}", u(0));
    assert!((u(1) - u1).abs() < 1e-9 * u1, "{} vs {u1}", u(1));
    assert!(u(2).abs() < 1e-9 * u1, "{}", u(2));
    // Every node of the remaining bar follows the homogeneous stretch.
    let s1 = state(1);
    for n in nodes_at(&mesh, |x| x[1] < 1.0 + 1e-9) {
        let want = (lam1 - 1.0) * mesh.nodes[n][0];
        let got = s1.displacements[n];
        assert!(
            (got[0] - want).abs() < 1e-9 && got[1].abs() < 1e-9 && got[2].abs() < 1e-9,
            "node {n}: {got:?} vs {want}"
        );
    }
    // Cauchy stress: f / A per bar in step 1 (nu = 0: the area does not change), f in the
    // remaining bar and zero in the removed one in step 2.
    for el in 0..mesh.num_elements() {
        let removed = upper.contains(&el);
        let (s0, s1) = (state(0).element_stress[el][0], s1.element_stress[el][0]);
        assert!((s0 - f / 2.0).abs() < 1e-9 * f, "element {el}: {s0}");
        let want = if removed { 0.0 } else { f };
        assert!((s1 - want).abs() < 1e-9 * f, "element {el}: {s1} vs {want}");
    }
}

/// The values of the VTU `<DataArray>` named `name` and its number of components.
fn vtu_array(vtu: &str, name: &str) -> (Vec<f64>, usize) {
    let start = vtu
        .find(&format!("Name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name}"));
    let head_end = start + vtu[start..].find('>').unwrap();
    let head = &vtu[start..head_end];
    let comps = head
        .split("NumberOfComponents=\"")
        .nth(1)
        .map_or(1, |t| t[..t.find('"').unwrap()].parse().unwrap());
    let body = &vtu[head_end + 1..head_end + vtu[head_end..].find("</DataArray>").unwrap()];
    let v = body
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v, comps)
}

#[test]
fn vtu_of_a_block_pressed_on_a_rigid_floor_has_contact_pressure_and_strain() {
    // A 2 x 2 x 1 tet4 block (SVK, nu = 0) on a rigid floor (frictionless penalty contact
    // of its bottom nodes), pressed by a follower pressure p on its top. Each bottom node's
    // slave area is its consistent share of the face (what a unit pressure puts on it), so
    // the homogeneous state is the exact solution: contact pressure p at every bottom node,
    // uniaxial compression `E lam (lam^2 - 1) / 2 = -p` (nu = 0: the area stays), the
    // Green-Lagrange strain E33 = (lam^2 - 1) / 2 in every element.
    let (e, p, penalty) = (1000.0, 5.0, 1e4);
    let mesh = box_mesh([2.0, 2.0, 1.0], [2, 2, 1], Order::Linear).unwrap();
    let bottom = mesh.node_set("zmin").unwrap().to_vec();
    let mut unit = spinetwin_fem::Loads::new();
    unit.pressure(mesh.face_set("zmin").unwrap(), 1.0);
    let share = unit.assemble(&mesh).unwrap();
    let areas: Vec<f64> = bottom.iter().map(|&n| share[3 * n + 2].abs()).collect();
    assert!((areas.iter().sum::<f64>() - 4.0).abs() < 1e-12);
    let c = |x: f64, y: f64| on(0, [x, y, 0.0]);
    let h = 10.0;
    // Frictionless: rigid in-plane motion held by the symmetry planes x = 0, y = 0.
    let mut fixed = hold(0, &[]);
    for &node in mesh.node_set("xmin").unwrap() {
        fixed.push((Dof::Node { node, dir: 0 }, 0.0));
    }
    for &node in mesh.node_set("ymin").unwrap() {
        fixed.push((Dof::Node { node, dir: 1 }, 0.0));
    }
    let model = Model {
        solids: vec![svk(&mesh, e, 0.0)],
        mesh: mesh.clone(),
        bodies: vec![body("floor", [0.0; 3])],
        contacts: vec![ContactPair {
            name: "floor".into(),
            slave: bottom.iter().map(|&n| Point::Node(n)).collect(),
            slave_area: areas,
            master: vec![
                [c(-h, -h), c(h, -h), c(h, h)],
                [c(-h, -h), c(h, h), c(-h, h)],
            ],
            penalty,
            clearance: 0.0,
            friction: 0.0,
            augmented: None,
            tangential_penalty: None,
            search_depth: None,
            slave_faces: vec![],
        }],
        steps: vec![Step {
            name: "press".into(),
            loads: vec![Load::Pressure {
                faces: mesh.face_set("zmax").unwrap().to_vec(),
                pressure: p,
            }],
            prescribed: fixed,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let state = res.steps[0].state.as_ref().unwrap();
    let vtu = spinetwin_fem::vtu_string(&mesh, &state.vtu_data(&model)).unwrap();
    let (cp, comps) = vtu_array(&vtu, "contact_pressure");
    assert_eq!((cp.len(), comps), (mesh.num_nodes(), 1));
    for (n, &v) in cp.iter().enumerate() {
        let want = if bottom.contains(&n) { p } else { 0.0 };
        assert!((v - want).abs() < 1e-6 * p, "node {n}: {v} vs {want}");
    }
    let (mut lo, mut hi) = (0.5, 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if e * mid * (mid * mid - 1.0) / 2.0 < -p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let lam: f64 = 0.5 * (lo + hi);
    let e33 = (lam * lam - 1.0) / 2.0;
    let (strain, comps) = vtu_array(&vtu, "green_lagrange_strain");
    assert_eq!((strain.len(), comps), (6 * mesh.num_elements(), 6));
    for (el, t) in strain.chunks(6).enumerate() {
        let want = [0.0, 0.0, e33, 0.0, 0.0, 0.0];
        for k in 0..6 {
            assert!(
                (t[k] - want[k]).abs() < 1e-9,
                "element {el}: {t:?} vs {want:?}"
            );
        }
    }
    let (sig, _) = vtu_array(&vtu, "stress");
    assert!(sig.chunks(6).all(|t| (t[2] + p).abs() < 1e-6 * p));
    println!(
        "floor: contact pressure {:.9} (p {p}), E33 {:.9} (exact {e33:.9})",
        cp[bottom[0]], strain[2]
    );
}

#[test]
fn suction_on_the_deformed_end_face_matches_the_exact_svk_stretch() {
    // A follower traction -p on the current end face: equilibrium of the nominal force
    // E lam (lam^2 - 1) / 2 (unit reference area) with p times the current area
    // 1 - nu (lam^2 - 1) (uniaxial stress SVK); solved for lam by bisection.
    let (e, nu, len, p) = (1000.0, 0.3, 4.0, 150.0);
    let mesh = box_mesh([len, 1.0, 1.0], [2, 1, 1], Order::Linear).unwrap();
    let mut pres = vec![];
    for n in nodes_at(&mesh, |x| x[0].abs() < 1e-9) {
        pres.push((Dof::Node { node: n, dir: 0 }, 0.0));
        let x = mesh.nodes[n];
        if x[1].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 1 }, 0.0));
        }
        if x[2].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 2 }, 0.0));
        }
    }
    let faces = mesh.face_set("xmax").unwrap().to_vec();
    let model = Model {
        solids: vec![svk(&mesh, e, nu)],
        mesh: mesh.clone(),
        steps: vec![Step {
            name: "suction".into(),
            loads: vec![Load::Pressure {
                faces,
                pressure: -p,
            }],
            prescribed: pres,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let g = |l: f64| e * l * (l * l - 1.0) / 2.0 - p * (1.0 - nu * (l * l - 1.0));
    let (mut lo, mut hi) = (1.0, 2.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let lam = 0.5 * (lo + hi);
    let tip = nodes_at(&mesh, |x| (x[0] - len).abs() < 1e-9)[0];
    let ux = s.displacements[tip][0];
    assert!(
        (ux - (lam - 1.0) * len).abs() < 1e-7,
        "{ux} vs {}",
        (lam - 1.0) * len
    );
    // A dead load p on the reference area would stretch more (no area reduction).
    let dead = |l: f64| e * l * (l * l - 1.0) / 2.0 - p;
    assert!(dead(lam) < -1.0);
}

#[test]
#[ignore = "larger model (3.7k equations, about 5 s in the test profile) for timings"]
fn tet10_block_in_large_compression_matches_the_exact_force_at_scale() {
    let (e, nu, delta) = (1000.0, 0.3, -1.5);
    let mesh = box_mesh([10.0, 10.0, 10.0], [5, 5, 5], Order::Quadratic).unwrap();
    let mut pres = vec![];
    for n in nodes_at(&mesh, |x| x[2].abs() < 1e-9) {
        pres.push((Dof::Node { node: n, dir: 2 }, 0.0));
        let x = mesh.nodes[n];
        if x[0].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 0 }, 0.0));
        }
        if x[1].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 1 }, 0.0));
        }
    }
    let top = nodes_at(&mesh, |x| (x[2] - 10.0).abs() < 1e-9);
    for &n in &top {
        pres.push((Dof::Node { node: n, dir: 2 }, delta));
    }
    let model = Model {
        solids: vec![svk(&mesh, e, nu)],
        mesh: mesh.clone(),
        steps: vec![Step {
            name: "compress".into(),
            prescribed: pres,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let lam: f64 = 1.0 + delta / 10.0;
    let n_exact = 100.0 * e * lam * 0.5 * (lam * lam - 1.0);
    let n: f64 = s
        .reactions
        .iter()
        .filter(|(d, _)| matches!(d, Dof::Node { node, dir: 2 } if top.contains(node)))
        .map(|r| r.1)
        .sum();
    assert!(
        (n - n_exact).abs() < 1e-6 * n_exact.abs(),
        "{n} vs {n_exact}"
    );
    eprintln!(
        "{} equations, {} stored entries, {} increments, {} iterations, {:?}",
        res.num_equations,
        res.nnz,
        res.steps[0].increments.len(),
        res.iterations,
        res.timings
    );
    for i in &res.steps[0].increments {
        eprintln!(
            "{:.3}->{:.3} {} {:?} {:?}",
            i.from, i.to, i.iterations, i.failure, i.residuals
        );
    }
}

#[test]
fn a_body_held_by_nothing_is_reported_as_a_mechanism() {
    let mut inc = Increments {
        min: 0.1,
        ..Default::default()
    };
    inc.initial = 0.5;
    let model = Model {
        bodies: vec![body("loose", [0.0; 3])],
        steps: vec![Step {
            name: "push".into(),
            loads: vec![Load::BodyForce {
                body: 0,
                force: [1.0, 0.0, 0.0],
            }],
            increments: inc,
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(!res.converged);
    let msg = res.failure.unwrap();
    assert!(
        msg.contains("singular tangent") && msg.contains("constrain it"),
        "{msg}"
    );
    assert!(res.steps[0].state.is_none());
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let mut model = two_sided(1.0, 1.0, 1.0);
    model.springs[0].a = Point::Body {
        body: 7,
        at: [0.0; 3],
    };
    let err = solve(&model, &SolveOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let mut model = two_sided(1.0, 1.0, 1.0);
    model.springs[1].law = SpringLaw::Piecewise(vec![(0.1, 1.0), (0.05, 2.0)]);
    assert!(solve(&model, &SolveOptions::default()).is_err());
    let mut model = two_sided(1.0, 1.0, 1.0);
    model.steps.clear();
    assert!(solve(&model, &SolveOptions::default()).is_err());
}

/// Options that force the sparse LU factorisation of every tangent.
fn lu_only() -> SolveOptions {
    SolveOptions {
        linear_solver: LinearSolver::Lu,
        ..Default::default()
    }
}

/// Largest difference between the final node displacements and body poses of two results,
/// relative to the largest of them.
fn final_state_difference(a: &NlResult, b: &NlResult) -> f64 {
    let values = |r: &NlResult| -> Vec<f64> {
        let s = r.steps.last().unwrap().state.as_ref().unwrap();
        let mut v: Vec<f64> = s.displacements.iter().flatten().copied().collect();
        for body in &s.bodies {
            v.extend(body.translation);
            v.extend(body.rotation_vector);
        }
        v
    };
    let (va, vb) = (values(a), values(b));
    let scale = va.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    va.iter()
        .zip(&vb)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// A 4x2x2 SVK bar fixed at x = 0 with its x = 4 face either stretched by prescribed
/// displacements (symmetric tangent) or tied to a body loaded by a moment (the body's
/// rotation block is non-symmetric while it carries the moment).
fn bar_model(moment: Option<[f64; 3]>) -> Model {
    let len = 4.0;
    let mesh = box_mesh([len, 1.0, 1.0], [4, 2, 2], Order::Linear).unwrap();
    let root = nodes_at(&mesh, |x| x[0].abs() < 1e-9);
    let face = nodes_at(&mesh, |x| (x[0] - len).abs() < 1e-9);
    let mut prescribed: Vec<(Dof, f64)> = root
        .iter()
        .flat_map(|&n| (0..3).map(move |dir| (Dof::Node { node: n, dir }, 0.0)))
        .collect();
    let mut bodies = vec![];
    let mut loads = vec![];
    match moment {
        Some(moment) => {
            bodies.push(RigidBody {
                name: "cap".into(),
                reference: [len, 0.5, 0.5],
                tied_nodes: face,
            });
            loads.push(Load::BodyMoment { body: 0, moment });
        }
        None => prescribed.extend(face.iter().map(|&n| (Dof::Node { node: n, dir: 0 }, 1.2))),
    }
    Model {
        solids: vec![svk(&mesh, 1000.0, 0.3)],
        mesh,
        bodies,
        steps: vec![Step {
            name: "load".into(),
            loads,
            prescribed,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_symmetric_tangent_is_factorised_by_cholesky_and_matches_lu() {
    let model = bar_model(None);
    let auto = solve(&model, &SolveOptions::default()).unwrap();
    let lu = solve(&model, &lu_only()).unwrap();
    assert!(
        auto.converged && lu.converged,
        "{:?} {:?}",
        auto.failure,
        lu.failure
    );
    let (fa, fl) = (auto.factorizations, lu.factorizations);
    assert!(
        fa.cholesky > 0 && fa.ldlt + fa.low_rank + fa.lu == 0,
        "{fa:?}"
    );
    assert!(
        fl.lu > 0 && fl.cholesky + fl.ldlt + fl.low_rank == 0,
        "{fl:?}"
    );
    assert_eq!(fa.analyses, 1, "the symbolic analysis is reused: {fa:?}");
    assert_eq!(auto.iterations, lu.iterations);
    let d = final_state_difference(&auto, &lu);
    assert!(d < 1e-10, "Cholesky vs LU: relative difference {d:e}");
}

#[test]
fn a_body_moment_takes_the_low_rank_path_and_matches_lu() {
    let model = bar_model(Some([40.0, 0.0, 25.0]));
    let auto = solve(&model, &SolveOptions::default()).unwrap();
    let lu = solve(&model, &lu_only()).unwrap();
    assert!(
        auto.converged && lu.converged,
        "{:?} {:?}",
        auto.failure,
        lu.failure
    );
    let fa = auto.factorizations;
    assert!(fa.low_rank > 0 && fa.lu == 0, "{fa:?}");
    assert_eq!(auto.iterations, lu.iterations);
    let d = final_state_difference(&auto, &lu);
    assert!(d < 1e-10, "low-rank vs LU: relative difference {d:e}");
}

#[test]
fn follower_pressure_takes_the_lu_path() {
    // Suction on the end face of a short bar: the load stiffness makes the tangent
    // non-symmetric over a large share of the equations.
    let (len, p) = (4.0, 150.0);
    let mesh = box_mesh([len, 1.0, 1.0], [2, 1, 1], Order::Linear).unwrap();
    let mut pres = vec![];
    for n in nodes_at(&mesh, |x| x[0].abs() < 1e-9) {
        pres.push((Dof::Node { node: n, dir: 0 }, 0.0));
        let x = mesh.nodes[n];
        if x[1].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 1 }, 0.0));
        }
        if x[2].abs() < 1e-9 {
            pres.push((Dof::Node { node: n, dir: 2 }, 0.0));
        }
    }
    let faces = mesh.face_set("xmax").unwrap().to_vec();
    let model = Model {
        solids: vec![svk(&mesh, 1000.0, 0.3)],
        mesh,
        steps: vec![Step {
            name: "suction".into(),
            loads: vec![Load::Pressure {
                faces,
                pressure: -p,
            }],
            prescribed: pres,
            ..Default::default()
        }],
        ..Default::default()
    };
    let auto = solve(&model, &SolveOptions::default()).unwrap();
    assert!(auto.converged, "{:?}", auto.failure);
    let fa = auto.factorizations;
    assert!(
        fa.lu > 0 && fa.cholesky + fa.ldlt + fa.low_rank == 0,
        "{fa:?}"
    );
    let lu = solve(&model, &lu_only()).unwrap();
    assert!(final_state_difference(&auto, &lu) < 1e-12);
}

#[test]
fn a_free_solid_is_reported_as_singular_by_every_factorisation() {
    // Only the x displacements of the root face are held: the bar can translate in y and z
    // and turn about x. The tangent is symmetric, so the Cholesky path meets the
    // singularity first.
    let mesh = box_mesh([4.0, 1.0, 1.0], [2, 1, 1], Order::Linear).unwrap();
    let prescribed = nodes_at(&mesh, |x| x[0].abs() < 1e-9)
        .into_iter()
        .map(|n| (Dof::Node { node: n, dir: 0 }, 0.0))
        .collect();
    let tip = nodes_at(&mesh, |x| (x[0] - 4.0).abs() < 1e-9)[0];
    let inc = Increments {
        min: 0.25,
        initial: 0.5,
        ..Default::default()
    };
    let model = Model {
        solids: vec![svk(&mesh, 1000.0, 0.3)],
        mesh,
        steps: vec![Step {
            name: "push".into(),
            loads: vec![Load::NodeForce {
                node: tip,
                force: [0.0, 1.0, 0.0],
            }],
            prescribed,
            increments: inc,
            ..Default::default()
        }],
        ..Default::default()
    };
    for opts in [SolveOptions::default(), lu_only()] {
        let res = solve(&model, &opts).unwrap();
        assert!(!res.converged);
        let msg = res.failure.unwrap();
        assert!(
            msg.contains("singular tangent") && msg.contains("constrain it"),
            "{:?}: {msg}",
            opts.linear_solver
        );
        assert!(res.steps[0].state.is_none());
    }
}

#[test]
fn states_recorded_inside_a_step_are_equilibria_at_their_load_factors() {
    // Recorded states must be converged equilibria at exactly the requested fractions of
    // the load (checked against the exact moment-rotation law), with and without the
    // extrapolated predictor.
    let (a, l, l0, k) = (10.0, 20.0, 15.0, 1000.0);
    let m = four_spring_moment(a, l, l0, k, 50f64.to_radians());
    for extrapolate in [false, true] {
        let mut model = four_spring_model(a, l, l0, k, m);
        model.steps[0].record_at = vec![0.6, 0.3];
        model.steps[0].increments.initial = 0.1;
        let opts = SolveOptions {
            extrapolate,
            ..Default::default()
        };
        let res = solve(&model, &opts).unwrap();
        assert!(res.converged, "{:?}", res.failure);
        let rec = &res.steps[0].records;
        assert_eq!(
            rec.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0.3, 0.6],
            "extrapolate {extrapolate}"
        );
        for (f, s) in rec {
            let th = rot_z(s, 0);
            let got = four_spring_moment(a, l, l0, k, th);
            assert!(
                (got - f * m).abs() < 1e-6 * m,
                "extrapolate {extrapolate}: at {f} the springs hold {got}, the load is {}",
                f * m
            );
        }
        let end = rot_z(res.steps[0].state.as_ref().unwrap(), 0);
        assert!((end - 50f64.to_radians()).abs() < 1e-6, "{end}");
    }
}

#[test]
fn fbar_stresses_of_a_nearly_incompressible_bar_in_pure_bending_have_no_spurious_pressure() {
    // A Mooney-Rivlin bar (K/mu = 5000, the disc nucleus' ratio) bent by an end moment.
    // The element forces use F-bar; the reported stresses must use it too. Away from the
    // clamped root, pure bending is (nearly) isochoric with zero net axial force, so the
    // mean pressure over a cross-section is small next to the bending stress. Recovering
    // the stress from the plain F of the integration points (locked J) gives pressures of
    // the order of the bending stress itself.
    use spinetwin_fem::hyper::{MooneyRivlin, MooneyRivlinParams};
    let (len, h) = (8.0, 1.0);
    let (nx, ny, nz) = (8, 2, 4);
    let mesh = spinetwin_fem::hex_box_mesh([len, h, h], [nx, ny, nz]).unwrap();
    let (c10, c01) = (0.12, 0.03);
    let mu = 2.0 * (c10 + c01);
    let material = MooneyRivlin::new(vec![MooneyRivlinParams {
        c10,
        c01,
        bulk: 5000.0 * mu,
    }])
    .unwrap();
    let root = nodes_at(&mesh, |x| x[0].abs() < 1e-9);
    let face = nodes_at(&mesh, |x| (x[0] - len).abs() < 1e-9);
    let model = Model {
        solids: vec![SolidBlock {
            name: "bar".into(),
            elements: (0..mesh.num_elements()).collect(),
            material: Arc::new(material),
        }],
        mesh: mesh.clone(),
        bodies: vec![RigidBody {
            name: "cap".into(),
            reference: [len, 0.5 * h, 0.5 * h],
            tied_nodes: face,
        }],
        steps: vec![Step {
            name: "bend".into(),
            // About y: the bar curls in the x-z plane.
            loads: vec![Load::BodyMoment {
                body: 0,
                moment: [0.0, 0.02, 0.0],
            }],
            prescribed: root
                .iter()
                .flat_map(|&n| (0..3).map(move |dir| (Dof::Node { node: n, dir }, 0.0)))
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let rot = s.bodies[0].rotation_vector[1].abs();
    assert!(rot > 0.2, "end rotation {rot} rad should be large");
    // Cross-sections of the middle half of the bar (elements numbered x fastest).
    let mut worst: f64 = 0.0;
    let mut bending: f64 = 0.0;
    for i in nx / 4..3 * nx / 4 {
        let elems: Vec<usize> = (0..ny * nz).map(|jk| i + nx * jk).collect();
        let p: f64 = elems
            .iter()
            .map(|&e| {
                -(s.element_stress[e][0] + s.element_stress[e][1] + s.element_stress[e][2]) / 3.0
            })
            .sum::<f64>()
            / elems.len() as f64;
        worst = worst.max(p.abs());
        for &e in &elems {
            bending = bending.max(s.element_stress[e][0].abs());
        }
    }
    assert!(bending > 0.01, "bending stress {bending} MPa");
    assert!(
        worst < 0.05 * bending,
        "mean section pressure {worst:.4} MPa against bending stress {bending:.4} MPa"
    );
}

/// A prismatic bar hanging under its own weight (density `rho`, gravity `g` along -z),
/// clamped over its top face z = len, nu = 0: the nonlinear solution's largest nodal
/// deviation from the small-strain `u_z(z) = -rho g (len^2 - z^2) / (2 E)` relative to
/// the tip's `rho g len^2 / (2 E)`, and the vertical reaction relative to the weight.
fn hanging_bar(mesh: Mesh, len: f64, area: f64) -> (f64, f64) {
    let (e, rho, g) = (100.0, 1.9e-9, 9810.0);
    let top = nodes_at(&mesh, |x| (x[2] - len).abs() < 1e-9);
    let prescribed = top
        .iter()
        .flat_map(|&n| (0..3).map(move |dir| (Dof::Node { node: n, dir }, 0.0)))
        .collect();
    let model = Model {
        solids: vec![svk(&mesh, e, 0.0)],
        steps: vec![Step {
            name: "gravity".into(),
            loads: vec![Load::Gravity {
                elements: (0..mesh.num_elements()).collect(),
                density: rho,
                acceleration: [0.0, 0.0, -g],
            }],
            prescribed,
            ..Default::default()
        }],
        mesh,
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps[0].state.as_ref().unwrap();
    let b = rho * g;
    let tip = b * len * len / (2.0 * e);
    let mut err = 0.0f64;
    for (n, u) in s.displacements.iter().enumerate() {
        let z = model.mesh.nodes[n][2];
        let uz = -b * (len * len - z * z) / (2.0 * e);
        err = err.max((u[2] - uz).abs()).max(u[0].abs()).max(u[1].abs());
    }
    let weight = b * area * len;
    let rz: f64 = s
        .reactions
        .iter()
        .filter(|(d, _)| matches!(d, Dof::Node { dir: 2, .. }))
        .map(|r| r.1)
        .sum();
    (err / tip, (rz - weight).abs() / weight)
}

#[test]
fn bar_hanging_under_its_own_weight_matches_the_closed_form() {
    // 10 x 10 x 200 mm; strain at the top rho g L / E = 3.7e-5, so the geometric
    // nonlinearity is below 1e-4 of the tip displacement. The small-strain field is
    // quadratic in z: Tet10 reproduces it, and Hex8 (a 1D bar at nu = 0) is exact at its
    // nodes under consistent loads.
    let (w, len) = (10.0, 200.0);
    for (name, mesh) in [
        (
            "tet10",
            box_mesh([w, w, len], [1, 1, 8], Order::Quadratic).unwrap(),
        ),
        (
            "hex8",
            spinetwin_fem::hex_box_mesh([w, w, len], [2, 2, 20]).unwrap(),
        ),
    ] {
        let (du, dr) = hanging_bar(mesh, len, w * w);
        eprintln!("{name}: displacement error {du:.2e} of the tip, reaction error {dr:.2e}");
        assert!(du < 1e-3, "{name}: displacement error {du:e} of the tip");
        assert!(dr < 1e-9, "{name}: reaction error {dr:e} of the weight");
    }
}
