//! Augmented-Lagrangian contact (issue 4, item 3): an elastic column standing frictionless
//! on a rigid floor. Without augmentation the floor gives way by `pressure / penalty`; with
//! it the penetration is driven below the tolerance, and the column's displacements are
//! those of the same column on rollers (`u_z = 0` at its base, the exact constraint) to
//! within that tolerance, whatever the penalty.

mod common;

use common::trib;

use spinetwin_fem::hex_box_mesh;
use spinetwin_fem::nl::*;

/// Column footprint (mm), height (mm), modulus (MPa), Poisson ratio.
const SIDE: f64 = 10.0;
const HEIGHT: f64 = 20.0;
const E: f64 = 1000.0;
const NU: f64 = 0.3;
/// Grid of the column.
const CELLS: [usize; 3] = [2, 2, 4];

/// How the column is held at its base and loaded at its top.
enum Base {
    /// On a rigid floor (body 0, all six DOFs held) through a contact pair.
    Floor {
        penalty: f64,
        augmented: Option<Augmentation>,
    },
    /// On rollers: `u_z = 0` prescribed at the base nodes.
    Rollers,
}

enum Top {
    /// Total downward force (N), spread as the consistent nodal loads of a uniform
    /// pressure.
    Force(f64),
    /// Prescribed downward displacement of every top node (mm).
    Displacement(f64),
}

fn column(base: Base, top: Top, increments: Increments) -> Model {
    let mesh = hex_box_mesh([SIDE, SIDE, HEIGHT], CELLS).unwrap();
    let mut prescribed = vec![];
    let mut loads = vec![];
    let mut slaves = vec![];
    let mut areas = vec![];
    for (n, p) in mesh.nodes.iter().enumerate() {
        // Quarter symmetry holds the column's in-plane rigid motion (frictionless floor).
        if p[0].abs() < 1e-9 {
            prescribed.push((Dof::Node { node: n, dir: 0 }, 0.0));
        }
        if p[1].abs() < 1e-9 {
            prescribed.push((Dof::Node { node: n, dir: 1 }, 0.0));
        }
        let area = trib(p[0], SIDE, CELLS[0]) * trib(p[1], SIDE, CELLS[1]);
        if p[2].abs() < 1e-9 {
            match base {
                Base::Floor { .. } => {
                    slaves.push(Point::Node(n));
                    areas.push(area);
                }
                Base::Rollers => prescribed.push((Dof::Node { node: n, dir: 2 }, 0.0)),
            }
        }
        if (p[2] - HEIGHT).abs() < 1e-9 {
            match top {
                Top::Force(f) => loads.push(Load::NodeForce {
                    node: n,
                    force: [0.0, 0.0, -f * area / (SIDE * SIDE)],
                }),
                Top::Displacement(d) => prescribed.push((Dof::Node { node: n, dir: 2 }, -d)),
            }
        }
    }
    let mut bodies = vec![];
    let mut contacts = vec![];
    if let Base::Floor { penalty, augmented } = base {
        bodies.push(RigidBody {
            name: "floor".into(),
            reference: [0.0; 3],
            tied_nodes: vec![],
        });
        for k in 0..6 {
            prescribed.push((Dof::Body { body: 0, k }, 0.0));
        }
        let c = |x: f64, y: f64| Point::Body {
            body: 0,
            at: [x, y, 0.0],
        };
        let h = 3.0 * SIDE;
        contacts.push(ContactPair {
            name: "floor".into(),
            slave: slaves,
            slave_area: areas,
            master: vec![
                [c(-h, -h), c(h, -h), c(h, h)],
                [c(-h, -h), c(h, h), c(-h, h)],
            ],
            penalty,
            clearance: 0.0,
            friction: 0.0,
            augmented,
            tangential_penalty: None,
            search_depth: None,
            slave_faces: vec![],
        });
    }
    Model {
        solids: vec![common::neo_hookean_block("column", &mesh, E, NU)],
        bodies,
        contacts,
        mesh,
        steps: vec![Step {
            name: "press".into(),
            loads,
            prescribed,
            increments,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn base_and_top_uz(model: &Model, s: &StepState) -> (f64, f64, f64) {
    // (largest |u_z| at the base, mean u_z at the base, mean u_z at the top)
    let (mut worst, mut base, mut nb, mut top, mut nt) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (n, p) in model.mesh.nodes.iter().enumerate() {
        let uz = s.displacements[n][2];
        if p[2].abs() < 1e-9 {
            worst = worst.max(uz.abs());
            base += uz;
            nb += 1.0;
        }
        if (p[2] - HEIGHT).abs() < 1e-9 {
            top += uz;
            nt += 1.0;
        }
    }
    (worst, base / nb, top / nt)
}

fn four_increments() -> Increments {
    Increments {
        initial: 0.25,
        max: 0.25,
        ..Default::default()
    }
}

#[test]
fn augmentation_removes_the_penalty_penetration_under_a_force() {
    let f = 100.0; // 1 MPa on the 10 x 10 mm column
    let q = f / (SIDE * SIDE);
    let rollers = column(Base::Rollers, Top::Force(f), four_increments());
    let r = solve(&rollers, &SolveOptions::default()).unwrap();
    assert!(r.converged, "{:?}", r.failure);
    let (_, _, top_exact) = base_and_top_uz(&rollers, r.steps[0].state.as_ref().unwrap());
    // Small-strain check of the reference solution itself: u = F H / (E A) to 0.5 %.
    let linear = -f * HEIGHT / (E * SIDE * SIDE);
    assert!(
        (top_exact / linear - 1.0).abs() < 5e-3,
        "{top_exact} vs {linear}"
    );

    // Pure penalty, 10 MPa/mm: the floor gives way by q / penalty = 0.1 mm.
    let penalty = 10.0;
    let plain = column(
        Base::Floor {
            penalty,
            augmented: None,
        },
        Top::Force(f),
        four_increments(),
    );
    let rp = solve(&plain, &SolveOptions::default()).unwrap();
    assert!(rp.converged, "{:?}", rp.failure);
    let (_, base, top) = base_and_top_uz(&plain, rp.steps[0].state.as_ref().unwrap());
    assert!((base + q / penalty).abs() < 1e-3, "penalty sink {base}");
    assert!(
        (top - base - top_exact).abs() < 1e-4,
        "{top} {base} {top_exact}"
    );

    // Augmented, with that penalty and with one a hundred times stiffer: within 1e-5 mm of
    // the rollers.
    let tol = 1e-5;
    for penalty in [10.0, 1000.0] {
        let model = column(
            Base::Floor {
                penalty,
                augmented: Some(Augmentation {
                    tolerance: tol,
                    max_updates: 10,
                }),
            },
            Top::Force(f),
            four_increments(),
        );
        let res = solve(&model, &SolveOptions::default()).unwrap();
        assert!(res.converged, "{:?}", res.failure);
        let s = res.steps[0].state.as_ref().unwrap();
        let (worst, _, top) = base_and_top_uz(&model, s);
        let incs = &res.steps[0].increments;
        let updates: usize = incs.iter().map(|l| l.augmentations).sum();
        eprintln!(
            "penalty {penalty}: base sink {worst:.2e} mm, top {top:.6} vs rollers {top_exact:.6} mm, {} increments, {updates} updates, {} iterations",
            incs.len(),
            res.iterations
        );
        assert!(worst <= tol, "penalty {penalty}: base sinks {worst} mm");
        assert!(
            (top - top_exact).abs() <= 2.0 * tol,
            "penalty {penalty}: top {top} vs {top_exact}"
        );
        assert!(updates >= incs.len(), "every increment was augmented");
        assert!(incs.iter().all(|l| l.max_penetration <= tol));
        // The floor carries the load, at the uniform pressure q at every base point.
        let c = &s.contacts[0];
        assert!((c.normal_force - f).abs() < 1e-6 * f, "{}", c.normal_force);
        for p in &c.pressure {
            assert!((p - q).abs() < 1e-3 * q, "pressure {p} vs {q}");
        }
    }
}

#[test]
fn slow_augmentation_is_reported_as_not_converged_and_more_updates_finish_it() {
    // Displacement control with a soft penalty: each update shrinks the penetration only by
    // 1 / (1 + kp / ks) = 1 / 1.2 (floor 10 MPa/mm x 100 mm^2 against the column's
    // E A / H = 5000 N/mm), so ten updates are not enough for 1e-6 mm from 0.04 mm.
    let d = 0.05;
    let one_increment = Increments {
        initial: 1.0,
        max: 1.0,
        cutback: false,
        ..Default::default()
    };
    let floor = |max_updates| Base::Floor {
        penalty: 10.0,
        augmented: Some(Augmentation {
            tolerance: 1e-6,
            max_updates,
        }),
    };
    let short = column(floor(10), Top::Displacement(d), one_increment.clone());
    let res = solve(&short, &SolveOptions::default()).unwrap();
    assert!(!res.converged, "ten updates cannot reach 1e-6 mm");
    let why = res.failure.unwrap_or_default();
    assert!(why.contains("augmented-Lagrangian"), "{why}");
    assert!(res.steps[0].state.is_none(), "no result from a failed step");

    let long = column(floor(100), Top::Displacement(d), one_increment);
    let res = solve(&long, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let (worst, ..) = base_and_top_uz(&long, res.steps[0].state.as_ref().unwrap());
    let updates = res.steps[0].increments[0].augmentations;
    eprintln!("{updates} updates, base sink {worst:.2e} mm");
    assert!(worst <= 1e-6, "base sinks {worst} mm");
    // Linear convergence at the predicted rate: about ln(1e-6 / 0.04) / ln(1 / 1.2) = 58.
    assert!((40..=75).contains(&updates), "{updates} updates");
}

#[test]
fn a_tolerance_that_is_not_a_positive_distance_is_refused_before_the_solve() {
    for tolerance in [0.0, -1e-3, f64::NAN] {
        let model = column(
            Base::Floor {
                penalty: 10.0,
                augmented: Some(Augmentation {
                    tolerance,
                    max_updates: 10,
                }),
            },
            Top::Force(100.0),
            four_increments(),
        );
        let e = solve(&model, &SolveOptions::default())
            .err()
            .unwrap_or_else(|| panic!("tolerance {tolerance} accepted"))
            .to_string();
        assert!(
            e.contains("'floor'") && e.contains("augmented-Lagrangian tolerance"),
            "{e}"
        );
    }
}
