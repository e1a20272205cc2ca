//! Verification of Coulomb friction in penalty contact: a block pressed on a fixed plane by a
//! normal force `N` and then moved sideways. Below the friction limit it sticks (the
//! tangential reaction is the elastic-slip penalty times the displacement); beyond it, it
//! slides with a tangential reaction of `mu N`.

use std::sync::Arc;

use spinetwin_fem::continuum::StVenantKirchhoff;
use spinetwin_fem::nl::{
    solve, ContactPair, Dof, Load, Model, Point, RigidBody, SolidBlock, SolveOptions, Step,
    StepState,
};
use spinetwin_fem::{hex_box_mesh, LinearElastic};

const N: f64 = 100.0;
const MU: f64 = 0.3;
/// Contact penalty (N/mm^3).
const PENALTY: f64 = 100.0;

fn ground() -> RigidBody {
    RigidBody {
        name: "ground".into(),
        reference: [0.0; 3],
        tied_nodes: vec![],
    }
}

/// The fixed plane z = 0 (normal +z) as two triangles on body 0.
fn plane() -> Vec<[Point; 3]> {
    let p = |x: f64, y: f64| Point::Body {
        body: 0,
        at: [x, y, 0.0],
    };
    vec![
        [p(-50.0, -50.0), p(50.0, -50.0), p(50.0, 50.0)],
        [p(-50.0, -50.0), p(50.0, 50.0), p(-50.0, 50.0)],
    ]
}

/// Two steps: press the block (body 1) with `N`, then move it by `dx` along x; body 1's
/// rotations and y translation are held, the ground is fixed.
fn steps(dx: f64) -> Vec<Step> {
    let press = Load::BodyForce {
        body: 1,
        force: [0.0, 0.0, -N],
    };
    let mut held: Vec<(Dof, f64)> = (0..6).map(|k| (Dof::Body { body: 0, k }, 0.0)).collect();
    held.extend([1, 3, 4, 5].map(|k| (Dof::Body { body: 1, k }, 0.0)));
    let mut press_step = held.clone();
    press_step.push((Dof::Body { body: 1, k: 0 }, 0.0));
    let mut slide_step = held;
    slide_step.push((Dof::Body { body: 1, k: 0 }, dx));
    vec![
        Step {
            name: "press".into(),
            loads: vec![press.clone()],
            prescribed: press_step,
            ..Default::default()
        },
        Step {
            name: "slide".into(),
            loads: vec![press],
            prescribed: slide_step,
            ..Default::default()
        },
    ]
}

/// A rigid 10 x 10 mm block: four slave points of 25 mm^2 on its bottom face, at height
/// `z0` (negative: pressed into the plane from the start).
fn rigid_block(dx: f64, z0: f64) -> Model {
    let slave: Vec<Point> = [[-2.5, -2.5], [2.5, -2.5], [2.5, 2.5], [-2.5, 2.5]]
        .iter()
        .map(|&[x, y]| Point::Body {
            body: 1,
            at: [x, y, z0],
        })
        .collect();
    Model {
        bodies: vec![
            ground(),
            RigidBody {
                name: "block".into(),
                reference: [0.0, 0.0, 2.0],
                tied_nodes: vec![],
            },
        ],
        contacts: vec![ContactPair {
            name: "base".into(),
            slave_area: vec![25.0; 4],
            slave,
            master: plane(),
            penalty: PENALTY,
            clearance: 0.0,
            friction: MU,
            augmented: None,
            tangential_penalty: None,
            search_depth: None,
            slave_faces: vec![],
        }],
        steps: steps(dx),
        ..Default::default()
    }
}

/// A deformable 10 x 10 x 5 mm hex8 block whose top is tied to a rigid plate (body 1); its
/// nine bottom nodes are the slave points (tributary areas of the 2 x 2 cells).
fn deformable_block(dx: f64) -> Model {
    let mut mesh = hex_box_mesh([10.0, 10.0, 5.0], [2, 2, 1]).unwrap();
    mesh.map_nodes(|x| [x[0] - 5.0, x[1] - 5.0, x[2]]);
    let ne = mesh.num_elements();
    let bottom = mesh.node_set("zmin").unwrap().to_vec();
    let top = mesh.node_set("zmax").unwrap().to_vec();
    let area = |n: usize| {
        let x = mesh.nodes[n];
        let w = |c: f64| if c.abs() > 4.9 { 2.5 } else { 5.0 };
        w(x[0]) * w(x[1])
    };
    let slave_area: Vec<f64> = bottom.iter().map(|&n| area(n)).collect();
    assert!((slave_area.iter().sum::<f64>() - 100.0).abs() < 1e-9);
    Model {
        solids: vec![SolidBlock {
            name: "block".into(),
            elements: (0..ne).collect(),
            material: Arc::new(StVenantKirchhoff {
                linear: LinearElastic::uniform(ne, 1000.0, 0.3).unwrap(),
            }),
        }],
        bodies: vec![
            ground(),
            RigidBody {
                name: "plate".into(),
                reference: [0.0, 0.0, 5.0],
                tied_nodes: top,
            },
        ],
        contacts: vec![ContactPair {
            name: "base".into(),
            slave: bottom.iter().map(|&n| Point::Node(n)).collect(),
            slave_area,
            master: plane(),
            penalty: PENALTY,
            clearance: 0.0,
            friction: MU,
            augmented: None,
            tangential_penalty: None,
            search_depth: None,
            slave_faces: vec![],
        }],
        steps: steps(dx),
        mesh,
        ..Default::default()
    }
}

/// The state at the end of the slide and the tangential reaction on the block (N).
fn slide(model: &Model) -> (StepState, f64) {
    let res = solve(model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let st = res.steps[1].state.clone().unwrap();
    let rx = st
        .reactions
        .iter()
        .find(|(d, _)| *d == Dof::Body { body: 1, k: 0 })
        .unwrap()
        .1;
    (st, rx)
}

#[test]
fn a_rigid_block_sticks_below_the_friction_limit_and_slides_at_mu_n() {
    // Tangential penalty per point = normal penalty x area (no tangential penalty given):
    // 2500 N/mm; four points.
    let kt = 4.0 * PENALTY * 25.0;
    // Stick: 1 um, a third of the elastic slip mu N / kt = 3 um.
    let dx = 1e-3;
    let (st, rx) = slide(&rigid_block(dx, 0.0));
    let c = &st.contacts[0];
    eprintln!(
        "stick: reaction {rx:.6} N (kt dx = {:.6}), normal {:.4} N, sliding points {}",
        kt * dx,
        c.normal_force,
        c.sliding_points
    );
    assert_eq!(c.sliding_points, 0);
    assert!((c.normal_force - N).abs() < 1e-6 * N, "{}", c.normal_force);
    assert!((rx - kt * dx).abs() < 1e-3 * kt * dx, "{rx} vs {}", kt * dx);
    // Slide 1 mm: the reaction is mu N.
    let (st, rx) = slide(&rigid_block(1.0, 0.0));
    let c = &st.contacts[0];
    eprintln!(
        "slide: reaction {rx:.6} N (mu N = {:.6}), friction {:.6} N, sliding points {}",
        MU * N,
        c.friction_force,
        c.sliding_points
    );
    assert_eq!(c.sliding_points, 4);
    assert!((rx - MU * N).abs() < 0.01 * MU * N, "{rx}");
    assert!((c.friction_force - MU * N).abs() < 0.01 * MU * N);
}

#[test]
fn a_softer_tangential_penalty_gives_a_larger_elastic_slip_and_the_same_mu_n() {
    // A tenth of the normal penalty: the block sticks with a tenth of the stiffness, up to
    // ten times the elastic slip (30 um), and slides at the same mu N.
    let with = |dx: f64| {
        let mut m = rigid_block(dx, 0.0);
        m.contacts[0].tangential_penalty = Some(PENALTY / 10.0);
        m
    };
    let kt = 4.0 * PENALTY / 10.0 * 25.0;
    let dx = 1e-2;
    let (st, rx) = slide(&with(dx));
    assert_eq!(st.contacts[0].sliding_points, 0);
    assert!((rx - kt * dx).abs() < 1e-3 * kt * dx, "{rx} vs {}", kt * dx);
    let (st, rx) = slide(&with(1.0));
    assert_eq!(st.contacts[0].sliding_points, 4);
    assert!((rx - MU * N).abs() < 0.01 * MU * N, "{rx}");
}

#[test]
fn a_deformable_block_slides_at_mu_n() {
    let (st, rx) = slide(&deformable_block(1.0));
    let c = &st.contacts[0];
    eprintln!(
        "deformable slide: reaction {rx:.6} N (mu N = {:.6}), normal {:.4} N, sliding points {} of {}",
        MU * N,
        c.normal_force,
        c.sliding_points,
        c.active_points
    );
    // To the solver's force tolerance (a few 1e-6 of the reactions): in slip the tangent on
    // mesh nodes is the symmetric part of the exact one, so Newton stops just inside it.
    assert!((c.normal_force - N).abs() < 1e-5 * N, "{}", c.normal_force);
    assert_eq!(c.sliding_points, c.active_points);
    assert!((rx - MU * N).abs() < 0.01 * MU * N, "{rx}");
}

#[test]
fn a_rigid_block_under_a_tangential_force_holds_below_mu_n_and_not_above() {
    // Pressed with N, then pushed along x by a force. x is free from the start: friction
    // holds it from the first increment, the block being slightly pressed into the plane
    // (with no normal force there would be no friction, and the first tangent is singular).
    let kt = 4.0 * PENALTY * 25.0;
    let run = |fx: f64| {
        let mut model = rigid_block(0.0, -1e-3);
        for s in &mut model.steps {
            s.prescribed
                .retain(|(d, _)| *d != Dof::Body { body: 1, k: 0 });
        }
        model.steps[1].loads.push(Load::BodyForce {
            body: 1,
            force: [fx, 0.0, 0.0],
        });
        solve(&model, &SolveOptions::default()).unwrap()
    };
    let res = run(0.9 * MU * N);
    assert!(res.converged, "{:?}", res.failure);
    let st = res.steps[1].state.as_ref().unwrap();
    let ux = st.bodies[1].translation[0];
    eprintln!(
        "0.9 mu N: ux {ux:.6e} mm (F / kt = {:.6e}), sliding points {}",
        0.9 * MU * N / kt,
        st.contacts[0].sliding_points
    );
    assert!((ux - 0.9 * MU * N / kt).abs() < 1e-3 * ux, "{ux}");
    assert_eq!(st.contacts[0].sliding_points, 0);
    let res = run(1.1 * MU * N);
    eprintln!("1.1 mu N: {:?}", res.failure);
    assert!(!res.converged, "it must not hold above mu N");
    // It failed where the push reached the friction limit: load factor 1 / 1.1 of the step.
    let f = res.failure.unwrap();
    let lam: f64 = f
        .split("load factor ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!((lam - 1.0 / 1.1).abs() < 0.01, "{f}");
}

#[test]
fn an_augmented_deformable_block_slides_at_mu_n_without_sinking() {
    // The same slide with the normal contact augmented to 1e-5 mm: the friction limit is
    // mu times the augmented normal force, and the block no longer sinks by N / (penalty A)
    // = 0.01 mm.
    let mut model = deformable_block(1.0);
    model.contacts[0].augmented = Some(spinetwin_fem::nl::Augmentation {
        tolerance: 1e-5,
        max_updates: 10,
    });
    let (st, rx) = slide(&model);
    let c = &st.contacts[0];
    let bottom = model.mesh.node_set("zmin").unwrap();
    let sink = bottom
        .iter()
        .map(|&n| -st.displacements[n][2])
        .fold(0.0f64, f64::max);
    eprintln!(
        "augmented slide: reaction {rx:.6} N (mu N = {:.6}), normal {:.4} N, sink {sink:.2e} mm, sliding points {} of {}",
        MU * N,
        c.normal_force,
        c.sliding_points,
        c.active_points
    );
    // To the solver's force tolerance (a few 1e-6 of the reactions): in slip the tangent on
    // mesh nodes is the symmetric part of the exact one, so Newton stops just inside it.
    assert!((c.normal_force - N).abs() < 1e-5 * N, "{}", c.normal_force);
    assert_eq!(c.sliding_points, c.active_points);
    assert!((rx - MU * N).abs() < 0.01 * MU * N, "{rx}");
    assert!(sink <= 1e-5, "sinks {sink} mm");
}
