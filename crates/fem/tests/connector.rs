//! Elastic connectors (bushings) between rigid bodies, against closed-form answers: the
//! coupled linear response `q = K^-1 f`, a large rotation about a stiffness axis (exact for
//! any angle), and a connector in series with a cantilever beam (compliances add). (The
//! element tangent against central differences: `nl::connector` unit tests.)

use nalgebra::{Matrix3, Matrix6, Vector3, Vector6};
use spinetwin_fem::nl::*;

/// Prescribes all six DOFs of `body` to zero.
fn hold(body: usize) -> Vec<(Dof, f64)> {
    (0..6).map(|k| (Dof::Body { body, k }, 0.0)).collect()
}

fn body(name: &str, at: [f64; 3]) -> RigidBody {
    RigidBody {
        name: name.into(),
        reference: at,
        tied_nodes: vec![],
    }
}

fn solved(model: &Model) -> StepState {
    let res = solve(model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    res.steps.last().unwrap().state.clone().unwrap()
}

/// An oblique local frame.
fn axes() -> [[f64; 3]; 3] {
    let x = Vector3::new(1.0, 2.0, 2.0).normalize();
    let y = Vector3::new(2.0, -1.0, 0.0).normalize();
    let z = x.cross(&y);
    [x.into(), y.into(), z.into()]
}

/// A screw-in-foundation-like stiffness: translation coupled to the rotation about the
/// perpendicular axis, symmetric positive definite.
fn stiffness() -> [[f64; 6]; 6] {
    let mut k = [[0.0; 6]; 6];
    for (i, d) in [1500.0, 1200.0, 900.0, 4.0e5, 5.0e5, 6.0e4]
        .into_iter()
        .enumerate()
    {
        k[i][i] = d;
    }
    for (i, j, v) in [(0, 4, 1.2e4), (1, 3, -1.0e4), (2, 5, 300.0)] {
        k[i][j] = v;
        k[j][i] = v;
    }
    k
}

fn connector(a: usize, b: usize, at: [f64; 3], k: [[f64; 6]; 6]) -> Connector {
    Connector {
        name: format!("bushing {a}-{b}"),
        a: BeamEnd { body: a, at },
        b: BeamEnd { body: b, at },
        axes: axes(),
        stiffness: k,
    }
}

#[test]
fn small_load_gives_the_inverse_stiffness_times_the_load() {
    let p = [10.0, -4.0, 7.0];
    let f = [0.3, -0.2, 0.5];
    let m = [20.0, 35.0, -10.0];
    let model = Model {
        bodies: vec![body("ground", [0.0; 3]), body("moving", p)],
        connectors: vec![connector(0, 1, p, stiffness())],
        steps: vec![Step {
            name: "load".into(),
            loads: vec![
                Load::BodyForce { body: 1, force: f },
                Load::BodyMoment { body: 1, moment: m },
            ],
            prescribed: hold(0),
            ..Default::default()
        }],
        ..Default::default()
    };
    let s = solved(&model);
    let r0 = Matrix3::from_columns(&axes().map(Vector3::from));
    let k = Matrix6::from_fn(|i, j| stiffness()[i][j]);
    let fl = r0.transpose() * Vector3::from(f);
    let ml = r0.transpose() * Vector3::from(m);
    let q = k
        .lu()
        .solve(&Vector6::new(fl.x, fl.y, fl.z, ml.x, ml.y, ml.z))
        .unwrap();
    let u = r0 * Vector3::new(q[0], q[1], q[2]);
    let th = r0 * Vector3::new(q[3], q[4], q[5]);
    let b = &s.bodies[1];
    let eu = (Vector3::from(b.translation) - u).norm() / u.norm();
    let et = (Vector3::from(b.rotation_vector) - th).norm() / th.norm();
    let c = &s.connectors[0];
    let g = Vector6::new(fl.x, fl.y, fl.z, ml.x, ml.y, ml.z);
    let ef = (Vector6::from(c.force) - g).norm() / g.norm();
    eprintln!(
        "connector K^-1 f: |u| {:.3e} mm, |theta| {:.3e} rad; relative errors {eu:.1e} {et:.1e}; load carried {ef:.1e}",
        u.norm(),
        th.norm()
    );
    // The remainder is geometric nonlinearity at rotations of 1e-4 rad.
    assert!(eu < 1e-3 && et < 1e-3 && ef < 1e-3, "{eu} {et} {ef}");
}

#[test]
fn large_rotation_about_a_stiffness_axis_is_exact() {
    // Stiff in everything but the local z rotation: a moment k_z * 1.2 about that axis
    // turns the body 1.2 rad (69 deg), whatever the angle, since the rotation vector is
    // the exact logarithm.
    let p = [1.0, 2.0, 3.0];
    let mut k = [[0.0; 6]; 6];
    for (i, d) in [1e4, 1e4, 1e4, 1e7, 1e7, 500.0].into_iter().enumerate() {
        k[i][i] = d;
    }
    let z = Vector3::from(axes()[2]);
    let angle = 1.2;
    let model = Model {
        bodies: vec![body("ground", [0.0; 3]), body("moving", p)],
        connectors: vec![connector(0, 1, p, k)],
        steps: vec![Step {
            name: "twist".into(),
            loads: vec![Load::BodyMoment {
                body: 1,
                moment: (z * 500.0 * angle).into(),
            }],
            prescribed: hold(0),
            ..Default::default()
        }],
        ..Default::default()
    };
    let s = solved(&model);
    let b = &s.bodies[1];
    let e = (Vector3::from(b.rotation_vector) - z * angle).norm();
    let c = &s.connectors[0];
    eprintln!(
        "connector twist: rotation vector error {e:.1e} rad at {angle} rad; relative {:?}",
        c.relative
    );
    assert!(e < 1e-9, "{e}");
    assert!(Vector3::from(b.translation).norm() < 1e-9);
    assert!((c.relative[5] - angle).abs() < 1e-9 && (c.force[5] - 500.0 * angle).abs() < 1e-6);
}

#[test]
fn compliances_of_a_beam_and_a_connector_add_in_series() {
    // Cantilever of length l (body 0 held) ending on body 1; a connector joins body 1 to
    // body 2 at the tip; a transverse force on body 2 deflects it by the beam's P l^3 /
    // (3 E I) plus the connector's P / k_y.
    let (l, e, d, p) = (40.0, 110e3, 6.0, 2.0);
    let tip = [l, 0.0, 0.0];
    let sec = BeamSection::circle(d);
    let mut k = [[0.0; 6]; 6];
    for (i, v) in [5e3, 800.0, 5e3, 1e7, 1e7, 1e7].into_iter().enumerate() {
        k[i][i] = v;
    }
    let model = Model {
        bodies: vec![body("root", [0.0; 3]), body("tip", tip), body("head", tip)],
        beams: vec![Beam {
            name: "rod".into(),
            a: BeamEnd {
                body: 0,
                at: [0.0; 3],
            },
            b: BeamEnd { body: 1, at: tip },
            section: sec,
            e,
            nu: 0.3,
            orientation: [0.0, 1.0, 0.0],
        }],
        connectors: vec![Connector {
            name: "joint".into(),
            a: BeamEnd { body: 1, at: tip },
            b: BeamEnd { body: 2, at: tip },
            axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            stiffness: k,
        }],
        steps: vec![Step {
            name: "load".into(),
            loads: vec![Load::BodyForce {
                body: 2,
                force: [0.0, p, 0.0],
            }],
            prescribed: hold(0),
            ..Default::default()
        }],
        ..Default::default()
    };
    let s = solved(&model);
    let beam = p * l.powi(3) / (3.0 * e * sec.iz);
    let joint = p / 800.0;
    let w = s.bodies[2].translation[1];
    let err = (w - beam - joint).abs() / (beam + joint);
    eprintln!(
        "beam + connector in series: {w:.6e} mm against {:.6e} (beam {beam:.3e}, connector {joint:.3e}); relative {err:.1e}",
        beam + joint
    );
    assert!(err < 1e-4, "{err}");
}
