//! Corotational beams clamped between rigid bodies, each against an analytical answer:
//! cantilever (Euler-Bernoulli and Timoshenko, both bending planes), axial load, torsion,
//! pure end moment bending a chain into an arc, rigid-body motion, the large-deflection
//! elastica and quadratic Newton convergence. (The tangent against central differences of
//! the force needs the solver's internal state: `nl::beam` and `nl::newton` unit tests.)

mod common;

use spinetwin_fem::nl::*;

const E: f64 = 110e3;
const NU: f64 = 0.3;
const L: f64 = 40.0;
const D: f64 = 6.0;

fn g() -> f64 {
    E / (2.0 * (1.0 + NU))
}

/// Prescribes all six DOFs of `body` to zero.
fn hold(body: usize) -> Vec<(Dof, f64)> {
    (0..6).map(|k| (Dof::Body { body, k }, 0.0)).collect()
}

/// A straight rod from the origin along the unit vector `dir`, of `n` beams through `n + 1`
/// bodies (body 0 at the root is held), with the loads on the last body.
fn chain(n: usize, dir: [f64; 3], orientation: [f64; 3], section: BeamSection) -> Model {
    let at = |i: usize| dir.map(|c| c * L * i as f64 / n as f64);
    Model {
        bodies: (0..=n)
            .map(|i| RigidBody {
                name: format!("node {i}"),
                reference: at(i),
                tied_nodes: vec![],
            })
            .collect(),
        beams: (0..n)
            .map(|i| Beam {
                name: format!("rod {i}"),
                a: BeamEnd { body: i, at: at(i) },
                b: BeamEnd {
                    body: i + 1,
                    at: at(i + 1),
                },
                section,
                e: E,
                nu: NU,
                orientation,
            })
            .collect(),
        ..Default::default()
    }
}

fn step(loads: Vec<Load>, prescribed: Vec<(Dof, f64)>) -> Step {
    Step {
        name: "load".into(),
        loads,
        prescribed,
        ..Default::default()
    }
}

fn solved(model: &Model) -> (NlResult, StepState) {
    let res = solve(model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let s = res.steps.last().unwrap().state.clone().unwrap();
    (res, s)
}

/// Numbers in short scientific notation, for the logs.
fn es(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.2e}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn cantilever_tip_force_matches_beam_theory() {
    let sec = BeamSection::circle(D);
    let i = sec.iz;
    let p = 1.0;
    let mut m = chain(1, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sec);
    m.steps = vec![step(
        vec![Load::BodyForce {
            body: 1,
            force: [0.0, p, 0.0],
        }],
        hold(0),
    )];
    let (_, s) = solved(&m);
    let b = &s.bodies[1];
    let (w, th) = (p * L.powi(3) / (3.0 * E * i), p * L * L / (2.0 * E * i));
    let r = &s.beams[0];
    let vm = p * L * (D / 2.0) / i;
    let errs = [
        rel(b.translation[1], w),
        rel(b.rotation_vector[2], th),
        rel(-r.end_a[5], p * L),
        rel(r.end_b[1], p),
        rel(r.max_von_mises, vm),
    ];
    // The stress also carries the axial part of the fixed-direction load in the rotated
    // frame, |P| w / L / A, a relative 1.4e-6 here.
    eprintln!(
        "cantilever: deflection {:.6e} (theory {w:.6e}), rotation {:.6e} ({th:.6e}), root moment {:.6} N mm, von Mises {:.6} MPa ({vm:.6}); relative errors {}",
        b.translation[1],
        b.rotation_vector[2],
        -r.end_a[5],
        r.max_von_mises,
        es(&errs)
    );
    assert!(
        errs[..4].iter().all(|&e| e < 1e-6) && errs[4] < 1e-5,
        "{errs:?}"
    );
    // Nothing else moves (but the second-order shortening of the chord, ~ w^2 / L) and the
    // root shear balances the load.
    assert!(b.translation[0].abs() < w * w / L && b.translation[2].abs() < 1e-9);
    assert!((r.end_a[1] + p).abs() < 1e-8 * p && r.end_b[5].abs() < 1e-6 * p * L);
    // The held body reacts the force and the root moment.
    let reaction = |k| {
        s.reactions
            .iter()
            .find(|(d, _)| *d == Dof::Body { body: 0, k })
            .unwrap()
            .1
    };
    assert!((reaction(1) + p).abs() < 1e-9 && (reaction(5) + p * L).abs() < 1e-6);
}

#[test]
fn timoshenko_cantilever_bending_about_both_axes_of_a_skew_rod() {
    // A rectangle-like section (iy != iz) along a skew axis; shear flexible.
    let sec = BeamSection {
        area: 24.0,
        iy: 72.0,
        iz: 18.0,
        j: 50.0,
        shear_area: Some(20.0),
        outer_radius: 3.6,
    };
    let dir = [1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0];
    let o = [0.0, 0.0, 1.0];
    // Local axes: y from the orientation, z = x cross y.
    let x = dir;
    let dot: f64 = x.iter().zip(&o).map(|(a, b)| a * b).sum();
    let y0: Vec<f64> = o.iter().zip(&x).map(|(a, b)| a - dot * b).collect();
    let ny = y0.iter().map(|v| v * v).sum::<f64>().sqrt();
    let y = [y0[0] / ny, y0[1] / ny, y0[2] / ny];
    let z = [
        x[1] * y[2] - x[2] * y[1],
        x[2] * y[0] - x[0] * y[2],
        x[0] * y[1] - x[1] * y[0],
    ];
    let (py, pz) = (0.7, -1.3);
    let force: [f64; 3] = std::array::from_fn(|k| py * y[k] + pz * z[k]);
    let mut m = chain(1, dir, o, sec);
    m.steps = vec![step(vec![Load::BodyForce { body: 1, force }], hold(0))];
    let (_, s) = solved(&m);
    let u = s.bodies[1].translation;
    let along = |v: &[f64; 3]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let shear = |p: f64| p * L / (g() * 20.0);
    let wy = py * L.powi(3) / (3.0 * E * sec.iz) + shear(py);
    let wz = pz * L.powi(3) / (3.0 * E * sec.iy) + shear(pz);
    let rv = s.bodies[1].rotation_vector;
    let rot = |v: &[f64; 3]| rv.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    // Section rotations: about z from the y load, about -y from the z load.
    let (ty, tz) = (
        -pz * L * L / (2.0 * E * sec.iy),
        py * L * L / (2.0 * E * sec.iz),
    );
    let errs = [
        rel(along(&y), wy),
        rel(along(&z), wz),
        rel(rot(&y), ty),
        rel(rot(&z), tz),
    ];
    eprintln!(
        "skew Timoshenko cantilever: relative errors (w_y, w_z, rot_y, rot_z) {}",
        es(&errs)
    );
    assert!(errs.iter().all(|&e| e < 1e-6), "{errs:?}");
    // Root moments in the local frame balance the tip load's moment: M_a = -L x X P.
    let r = &s.beams[0];
    assert!(
        rel(r.end_a[5], -py * L) < 1e-6 && rel(r.end_a[4], pz * L) < 1e-6,
        "{r:?}"
    );
    // In global axes the tip body holds the beam against the load (end b: the applied force,
    // no moment at the tip) and the root body against its moment about the root: end a
    // carries -P and -(tip - root) x P, whatever the orientation of the section.
    let tip = s.bodies[1].translation;
    let arm: [f64; 3] = std::array::from_fn(|k| dir[k] * L + tip[k]);
    let m_root = [
        arm[1] * force[2] - arm[2] * force[1],
        arm[2] * force[0] - arm[0] * force[2],
        arm[0] * force[1] - arm[1] * force[0],
    ];
    let scale = force.iter().map(|v| v * v).sum::<f64>().sqrt();
    for k in 0..3 {
        assert!((r.end_b_global[k] - force[k]).abs() < 1e-8 * scale, "{r:?}");
        assert!(r.end_b_global[3 + k].abs() < 1e-6 * scale * L, "{r:?}");
        assert!((r.end_a_global[k] + force[k]).abs() < 1e-8 * scale, "{r:?}");
        assert!(
            (r.end_a_global[3 + k] + m_root[k]).abs() < 1e-6 * scale * L,
            "{r:?} {m_root:?}"
        );
    }
}

#[test]
fn axial_load_stretches_by_pl_over_ea() {
    let sec = BeamSection::tube(6.0, 4.0);
    let p = 500.0;
    let mut m = chain(1, [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], sec);
    m.steps = vec![step(
        vec![Load::BodyForce {
            body: 1,
            force: [p, 0.0, 0.0],
        }],
        hold(0),
    )];
    let (_, s) = solved(&m);
    let du = p * L / (E * sec.area);
    let r = &s.beams[0];
    let errs = [
        rel(s.bodies[1].translation[0], du),
        rel(r.axial_force, p),
        rel(r.length, L + du),
        rel(r.max_von_mises, p / sec.area),
    ];
    eprintln!(
        "axial: relative errors (stretch, N, length, stress) {}",
        es(&errs)
    );
    assert!(errs.iter().all(|&e| e < 1e-9), "{errs:?}");
}

#[test]
fn torsion_twists_by_tl_over_gj() {
    let sec = BeamSection::circle(D);
    let t = 2000.0;
    let mut m = chain(1, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sec);
    m.steps = vec![step(
        vec![Load::BodyMoment {
            body: 1,
            moment: [t, 0.0, 0.0],
        }],
        hold(0),
    )];
    let (_, s) = solved(&m);
    let phi = t * L / (g() * sec.j);
    let r = &s.beams[0];
    let vm = 3f64.sqrt() * t * (D / 2.0) / sec.j;
    let errs = [
        rel(s.bodies[1].rotation_vector[0], phi),
        rel(r.end_b[3], t),
        rel(r.max_von_mises, vm),
    ];
    // The stress also carries the axial part of the fixed-direction load in the rotated
    // frame, |P| w / L / A, a relative 1.4e-6 here.
    eprintln!(
        "torsion: twist {phi:.4e} rad; relative errors (twist, torque, von Mises) {}",
        es(&errs)
    );
    assert!(errs.iter().all(|&e| e < 1e-6), "{errs:?}");
}

/// Tip rotation and position of `n` beams under an end moment bending the rod by `theta`.
fn arc(n: usize, theta: f64) -> ([f64; 3], [f64; 3]) {
    let sec = BeamSection::circle(D);
    let moment = E * sec.iz * theta / L;
    let mut m = chain(n, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sec);
    m.steps = vec![step(
        vec![Load::BodyMoment {
            body: n,
            moment: [0.0, 0.0, moment],
        }],
        hold(0),
    )];
    let (res, s) = solved(&m);
    eprintln!(
        "arc, {n} beams: {} increments, {} iterations",
        res.steps[0].increments.len(),
        res.iterations
    );
    let b = &s.bodies[n];
    (
        b.rotation_vector,
        [L + b.translation[0], b.translation[1], b.translation[2]],
    )
}

#[test]
fn pure_end_moment_bends_a_chain_into_a_circular_arc() {
    let theta = 1.0;
    let r = L / theta;
    let exact = [r * theta.sin(), r * (1.0 - theta.cos())];
    let mut errs = vec![];
    for n in [8, 16] {
        let (rv, x) = arc(n, theta);
        // Each beam is an exact circular-arc segment in rotation (the local moment is
        // uniform), so the tip rotation is exact; the nodes lie on the circle through the
        // chords, of radius R a / sin(a) with a = theta / (2 n): the tip position is off by
        // the relative amount a^2 / 6.
        assert!((rv[2] - theta).abs() < 1e-7, "tip rotation {}", rv[2]);
        assert!(rv[0].abs() < 1e-9 && rv[1].abs() < 1e-9 && x[2].abs() < 1e-9);
        let a = theta / (2.0 * n as f64);
        let rp = r * a / a.sin();
        let err = ((x[0] - exact[0]).powi(2) + (x[1] - exact[1]).powi(2)).sqrt();
        let chord_err =
            ((x[0] - rp * theta.sin()).powi(2) + (x[1] - rp * (1.0 - theta.cos())).powi(2)).sqrt();
        let bound = (rp - r) * (2.0 * (1.0 - theta.cos())).sqrt();
        eprintln!(
            "arc, {n} beams: tip ({:.5}, {:.5}) vs arc ({:.5}, {:.5}): error {err:.3e} mm ({:.2e} of L; a^2/6 predicts {bound:.3e}); from the chord circle {chord_err:.1e}",
            x[0], x[1], exact[0], exact[1], err / L
        );
        assert!(chord_err < 1e-6, "{chord_err}");
        assert!((err - bound).abs() < 1e-6, "{err} vs {bound}");
        errs.push(err);
    }
    // Second-order convergence to the arc.
    let ratio = errs[0] / errs[1];
    assert!((ratio - 4.0).abs() < 0.05, "ratio {ratio}");
}

#[test]
fn rigid_rotation_of_the_ends_loads_nothing() {
    // Body 0 turned by a large rotation about an oblique axis through its reference point;
    // body 1, free and unloaded, must follow rigidly with the beam unstressed.
    let sec = BeamSection::circle(D);
    let mut m = chain(1, [0.6, 0.0, 0.8], [0.0, 1.0, 0.0], sec);
    let (n, angle) = ([2.0 / 7.0, -3.0 / 7.0, 6.0 / 7.0], 1.5);
    let mut pres = hold(0);
    for (k, c) in n.iter().enumerate() {
        pres[3 + k].1 = angle * c;
    }
    m.steps = vec![step(vec![], pres)];
    let (_, s) = solved(&m);
    let (b0, b1) = (&s.bodies[0], &s.bodies[1]);
    let rot_err = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .fold(0.0f64, |e, (i, j)| {
            e.max((b0.rotation[i][j] - b1.rotation[i][j]).abs())
        });
    let arm = [0.6 * L, 0.0, 0.8 * L];
    let moved: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| b0.rotation[i][j] * arm[j]).sum::<f64>() - arm[i])
        .collect();
    let pos_err = (0..3).fold(0.0f64, |e, i| e.max((b1.translation[i] - moved[i]).abs()));
    let r = &s.beams[0];
    let fmax = r
        .end_a
        .iter()
        .chain(&r.end_b)
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let turned = b0.rotation_vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    eprintln!(
        "rigid rotation by {turned:.3} rad: rotation mismatch {rot_err:.1e}, position {pos_err:.1e} mm, largest end load {fmax:.1e}, stress {:.1e} MPa",
        r.max_von_mises
    );
    assert!((turned - angle).abs() < 0.05);
    assert!(rot_err < 1e-9 && pos_err < 1e-8 && fmax < 1e-6, "{r:?}");
    assert!((r.length - L).abs() < 1e-9);
}

/// The tip (x, y) in mm and rotation of the extensible elastica of length `L`
/// ([`common::elastica`]).
fn elastica(k: f64, c: f64) -> (f64, f64, f64) {
    let (x, y, t) = common::elastica(k, c);
    (x * L, y * L, t)
}

#[test]
fn large_deflection_cantilever_matches_the_elastica_with_quadratic_newton() {
    let sec = BeamSection::circle(D);
    let k = 2.0;
    let p = k * E * sec.iz / (L * L);
    let (xe, ye, te) = elastica(k, sec.iz / (sec.area * L * L));
    // Checked against Mattiasson (1981) for the inextensible elastica at k = 2: tip
    // deflection 0.49346 L, shortening 0.16064 L, rotation 0.78175 (tabulated digits).
    let (x0, y0, t0) = elastica(k, 0.0);
    assert!(
        (y0 / L - 0.49346).abs() < 1e-5
            && (1.0 - x0 / L - 0.16064).abs() < 1e-5
            && (t0 - 0.78175).abs() < 1e-5,
        "{x0} {y0} {t0}"
    );
    let mut errs = vec![];
    let mut last = None;
    for n in [8, 16, 32] {
        let mut m = chain(n, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sec);
        m.steps = vec![step(
            vec![Load::BodyForce {
                body: n,
                force: [0.0, p, 0.0],
            }],
            hold(0),
        )];
        m.steps[0].increments.initial = 0.25;
        let (res, s) = solved(&m);
        let b = &s.bodies[n];
        let (x, y, t) = (L + b.translation[0], b.translation[1], b.rotation_vector[2]);
        let e = [rel(x, xe), rel(y, ye), rel(t, te)];
        eprintln!(
            "elastica k = {k}, {n} beams: tip ({x:.5}, {y:.5}) rot {t:.6} vs ({xe:.5}, {ye:.5}) rot {te:.6}; relative errors {}",
            es(&e)
        );
        errs.push(e);
        last = Some(res);
    }
    // The local element is linear (no axial-bending coupling within an element), so the
    // chain converges to the elastica at second order in the element length.
    for c in 0..3 {
        let (r1, r2) = (errs[0][c] / errs[1][c], errs[1][c] / errs[2][c]);
        eprintln!("  error ratios per halving: {r1:.2} {r2:.2}");
        assert!((3.5..4.5).contains(&r2), "{errs:?}");
    }
    assert!(errs[2].iter().all(|&e| e < 1e-3), "{errs:?}");
    let res = last.unwrap();
    // The chain of 32 stiff-in-tension beams may need the line search in the first
    // iterations of an increment; an extrapolated start that fails is retried from the last
    // converged state, so at most a few attempts fail and every load level is reached.
    let mut failed = 0;
    for inc in &res.steps[0].increments {
        eprintln!(
            "  increment to {:.3}: residuals {}; step lengths {}",
            inc.to,
            es(&inc.residuals),
            es(&inc.step_lengths)
        );
        failed += usize::from(!inc.converged);
    }
    assert!(res.converged, "{:?}", res.failure);
    assert!(failed <= 2, "{failed} failed attempts");
}

#[test]
fn newton_converges_quadratically() {
    // A cantilever of 4 beams bent by a tip force to a tip rotation of ~0.4 rad in a
    // single increment.
    let sec = BeamSection::circle(D);
    let n = 4;
    let p = 1.0 * E * sec.iz / (L * L);
    let mut m = chain(n, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sec);
    m.steps = vec![step(
        vec![Load::BodyForce {
            body: n,
            force: [0.0, p, 0.0],
        }],
        hold(0),
    )];
    m.steps[0].increments.initial = 1.0;
    let opts = SolveOptions {
        tol_force: 1e-12,
        ..Default::default()
    };
    let res = solve(&m, &opts).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let inc = &res.steps[0].increments;
    assert_eq!(inc.len(), 1);
    let r = &inc[0].residuals;
    // r_(k+1) ~ C r_k^2: the rate ln(r_(k+1) / r_k) / ln(r_k / r_(k-1)) tends to 2 (1 for
    // linear convergence); values below 1e-11 of the first are rounding noise.
    let rates: Vec<f64> = r
        .windows(3)
        .filter(|w| w[2] > 1e-11 * r[0])
        .map(|w| (w[2] / w[1]).ln() / (w[1] / w[0]).ln())
        .collect();
    eprintln!(
        "Newton, one increment: residuals {}; step lengths {}; rates {}; tip rotation {:.4}",
        es(r),
        es(&inc[0].step_lengths),
        es(&rates),
        res.steps[0].state.as_ref().unwrap().bodies[n].rotation_vector[2]
    );
    // Newton's tail: once the residual is small each iteration removes more than three
    // orders of magnitude (a linearly converging method with an inconsistent tangent would
    // keep a fixed ratio), and the increment needs few iterations.
    let tail: Vec<f64> = r.windows(2).map(|w| w[1] / w[0]).collect();
    assert!(r.len() <= 9, "{} iterations", r.len() - 1);
    assert!(*r.last().unwrap() < 1e-11 * r[0], "{r:?}");
    assert!(
        tail.iter().rev().take(2).all(|&q| q < 1e-3),
        "tail reductions {tail:?}"
    );
    assert!(!rates.is_empty());
}

#[test]
fn a_deactivated_beam_carries_nothing() {
    // Two identical rods side by side share an axial load; the second step removes one.
    let sec = BeamSection::circle(D);
    let p = 1000.0;
    let mut m = chain(1, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sec);
    m.beams.push(m.beams[0].clone());
    let load = vec![Load::BodyForce {
        body: 1,
        force: [p, 0.0, 0.0],
    }];
    m.steps = vec![step(load.clone(), hold(0)), step(load, vec![])];
    m.steps[1].deactivate = vec![Deactivate::Beam(1)];
    let res = solve(&m, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let du = p * L / (E * sec.area);
    let s1 = res.steps[0].state.as_ref().unwrap();
    let s2 = res.steps[1].state.as_ref().unwrap();
    let errs = [
        rel(s1.bodies[1].translation[0], du / 2.0),
        rel(s1.beams[1].axial_force, p / 2.0),
        rel(s2.bodies[1].translation[0], du),
        rel(s2.beams[0].axial_force, p),
    ];
    eprintln!("deactivation: relative errors {}", es(&errs));
    assert!(errs.iter().all(|&e| e < 1e-9), "{errs:?}");
    assert_eq!(s2.beams[1], BeamState::default());
}

#[test]
fn invalid_beams_are_rejected_with_a_reason() {
    let base = chain(1, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], BeamSection::circle(D));
    type Edit = fn(&mut Beam);
    let cases: [(&str, Edit); 4] = [
        ("same rigid body", |b| b.b.body = 0),
        ("parallel", |b| b.orientation = [2.0, 0.0, 0.0]),
        ("coincide", |b| b.b.at = b.a.at),
        ("section", |b| b.section.j = 0.0),
    ];
    for (why, edit) in cases {
        let mut m = base.clone();
        edit(&mut m.beams[0]);
        m.steps = vec![step(vec![], hold(0))];
        let err = solve(&m, &SolveOptions::default()).unwrap_err().to_string();
        assert!(err.contains(why) && err.contains("rod 0"), "{err}");
    }
}
