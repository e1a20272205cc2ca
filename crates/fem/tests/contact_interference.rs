//! Contact interference resolved over a step (issue 4, item 3: a shrink fit, or an implant
//! taller than its seat): `Step::clearances` ramps a pair's clearance with the load factor.
//!
//! An elastic column on rollers stands under a fixed rigid plate that touches its top.
//! Raising the plate pair's clearance to `delta` pushes the top down by `delta`: with
//! augmented-Lagrangian contact the column must be in the state of the same column with its
//! top displacement prescribed to `-delta` (the exact constraint), at every load factor on
//! the way (the ramp is linear); with a plain penalty the plate and the column share the
//! interference as two springs in series.

mod common;

use common::trib;

use spinetwin_fem::hex_box_mesh;
use spinetwin_fem::inp::Deck;
use spinetwin_fem::nl::*;

/// Column footprint (mm), height (mm), modulus (MPa), Poisson ratio.
const SIDE: f64 = 10.0;
const HEIGHT: f64 = 20.0;
const E: f64 = 1000.0;
const NU: f64 = 0.3;
const CELLS: [usize; 3] = [2, 2, 4];
/// Interference (mm): 2 % of the height.
const DELTA: f64 = 0.4;

/// How the column's top is pushed down.
enum Top {
    /// By the plate pair, whose clearance each step ramps to the given values (mm).
    Plate {
        penalty: f64,
        augmented: Option<Augmentation>,
        ramps: Vec<f64>,
    },
    /// Prescribed `u_z` of every top node (mm, downwards), one value per step.
    Displacement(Vec<f64>),
}

fn column(top: Top, record_at: Vec<f64>) -> Model {
    let mesh = hex_box_mesh([SIDE, SIDE, HEIGHT], CELLS).unwrap();
    // Quarter symmetry and rollers at the base: a uniaxial stress state.
    let mut fixed = common::rollers(&mesh, &[0, 1, 2]);
    let mut top_nodes = vec![];
    let mut areas = vec![];
    for (n, p) in mesh.nodes.iter().enumerate() {
        if (p[2] - HEIGHT).abs() < 1e-9 {
            top_nodes.push(n);
            areas.push(trib(p[0], SIDE, CELLS[0]) * trib(p[1], SIDE, CELLS[1]));
        }
    }
    let increments = Increments {
        initial: 0.25,
        max: 0.25,
        ..Default::default()
    };
    let mut bodies = vec![];
    let mut contacts = vec![];
    let mut steps = vec![];
    match top {
        Top::Plate {
            penalty,
            augmented,
            ramps,
        } => {
            bodies.push(RigidBody {
                name: "plate".into(),
                reference: [0.0, 0.0, HEIGHT],
                tied_nodes: vec![],
            });
            fixed.extend((0..6).map(|k| (Dof::Body { body: 0, k }, 0.0)));
            let c = |x: f64, y: f64| Point::Body {
                body: 0,
                at: [x, y, HEIGHT],
            };
            let h = 3.0 * SIDE;
            // Normals along -z: out of the plate, towards the column.
            contacts.push(ContactPair {
                name: "plate".into(),
                slave: top_nodes.iter().map(|&n| Point::Node(n)).collect(),
                slave_area: areas,
                master: vec![
                    [c(-h, -h), c(h, h), c(h, -h)],
                    [c(-h, -h), c(-h, h), c(h, h)],
                ],
                penalty,
                clearance: 0.0,
                friction: 0.0,
                augmented,
                tangential_penalty: None,
                search_depth: None,
                slave_faces: vec![],
            });
            for (k, v) in ramps.into_iter().enumerate() {
                steps.push(Step {
                    name: format!("ramp {}", k + 1),
                    prescribed: fixed.clone(),
                    clearances: vec![(0, v)],
                    increments: increments.clone(),
                    record_at: record_at.clone(),
                    ..Default::default()
                });
            }
        }
        Top::Displacement(values) => {
            for (k, v) in values.into_iter().enumerate() {
                let mut prescribed = fixed.clone();
                prescribed.extend(
                    top_nodes
                        .iter()
                        .map(|&n| (Dof::Node { node: n, dir: 2 }, -v)),
                );
                steps.push(Step {
                    name: format!("press {}", k + 1),
                    prescribed,
                    increments: increments.clone(),
                    record_at: record_at.clone(),
                    ..Default::default()
                });
            }
        }
    }
    Model {
        solids: vec![common::neo_hookean_block("column", &mesh, E, NU)],
        bodies,
        contacts,
        mesh,
        steps,
        ..Default::default()
    }
}

/// Mean `u_z` of the top nodes (mm).
fn top_uz(model: &Model, s: &StepState) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0);
    for (i, p) in model.mesh.nodes.iter().enumerate() {
        if (p[2] - HEIGHT).abs() < 1e-9 {
            sum += s.displacements[i][2];
            n += 1.0;
        }
    }
    sum / n
}

/// Total reaction on the base (N, upwards).
fn base_reaction(model: &Model, s: &StepState) -> f64 {
    s.reactions
        .iter()
        .filter(|(d, _)| matches!(d, Dof::Node { node, dir: 2 } if model.mesh.nodes[*node][2].abs() < 1e-9))
        .map(|(_, r)| r)
        .sum()
}

/// Largest difference of any nodal displacement component between two states (mm).
fn max_diff(a: &StepState, b: &StepState) -> f64 {
    a.displacements
        .iter()
        .zip(&b.displacements)
        .flat_map(|(p, q)| (0..3).map(move |k| (p[k] - q[k]).abs()))
        .fold(0.0, f64::max)
}

fn augmented() -> Option<Augmentation> {
    Some(Augmentation {
        tolerance: 1e-5,
        max_updates: 30,
    })
}

#[test]
fn a_ramped_interference_is_the_prescribed_compression_at_every_load_factor() {
    let exact = column(Top::Displacement(vec![DELTA]), vec![0.5]);
    let re = solve(&exact, &SolveOptions::default()).unwrap();
    assert!(re.converged, "{:?}", re.failure);
    let fit = column(
        Top::Plate {
            penalty: 100.0,
            augmented: augmented(),
            ramps: vec![DELTA],
        },
        vec![0.5],
    );
    let rf = solve(&fit, &SolveOptions::default()).unwrap();
    assert!(rf.converged, "{:?}", rf.failure);
    let (se, sf) = (
        re.steps[0].state.as_ref().unwrap(),
        rf.steps[0].state.as_ref().unwrap(),
    );
    // The plate's force is the column's reaction at its base (and, for the exact column,
    // the reaction at the top).
    let force = sf.contacts[0].normal_force;
    let (fe, ff) = (base_reaction(&exact, se), base_reaction(&fit, sf));
    assert!(
        (force / ff - 1.0).abs() < 1e-6,
        "contact {force} vs base {ff}"
    );
    assert!((ff / fe - 1.0).abs() < 1e-4, "{ff} vs exact {fe}");
    // Small-strain check of the reference: F = E A delta / H; the compressible Neo-Hookean
    // column stiffens in compression (+1.6 % at 2 % strain).
    let linear = E * SIDE * SIDE * DELTA / HEIGHT;
    assert!((fe / linear - 1.0).abs() < 0.025, "{fe} vs {linear}");
    assert!(max_diff(se, sf) < 2e-5, "{}", max_diff(se, sf));
    assert!((top_uz(&fit, sf) + DELTA).abs() < 2e-5);
    // Half way up the ramp, half the interference.
    let (he, hf) = (&rf.steps[0].records[0], &re.steps[0].records[0]);
    assert!((he.0 - 0.5).abs() < 1e-12 && (hf.0 - 0.5).abs() < 1e-12);
    assert!((top_uz(&fit, &he.1) + 0.5 * DELTA).abs() < 2e-5);
    assert!(max_diff(&he.1, &hf.1) < 2e-5);
    // A recorded state's contact force is that of its own load factor's clearance: the
    // plate holds the base's reaction there too, about half the final force.
    let (fh, rh) = (he.1.contacts[0].normal_force, base_reaction(&fit, &he.1));
    assert!((fh / rh - 1.0).abs() < 1e-6, "contact {fh} vs base {rh}");
    assert!((rh / (0.5 * ff) - 1.0).abs() < 0.02, "{rh} vs {ff} / 2");
    let aug: usize = rf.steps[0].increments.iter().map(|l| l.augmentations).sum();
    eprintln!(
        "shrink fit {DELTA} mm: F {ff:.3} N (exact {fe:.3}, linear {linear:.1}), {} increments, {aug} multiplier updates, {} iterations",
        rf.steps[0].increments.len(),
        rf.iterations
    );
}

#[test]
fn a_plain_penalty_shares_the_interference_in_series_with_the_column() {
    let penalty = 100.0; // MPa/mm, against the column's E / H = 50 MPa/mm
    let fit = column(
        Top::Plate {
            penalty,
            augmented: None,
            ramps: vec![DELTA],
        },
        vec![],
    );
    let r = solve(&fit, &SolveOptions::default()).unwrap();
    assert!(r.converged, "{:?}", r.failure);
    let s = r.steps[0].state.as_ref().unwrap();
    // Two springs in series: the column takes kp / (kp + E / H) of the interference, to the
    // column's small geometric nonlinearity (a 1.3 % strain).
    let ks = E / HEIGHT;
    let want = DELTA * penalty / (penalty + ks);
    let got = -top_uz(&fit, s);
    assert!((got / want - 1.0).abs() < 0.01, "{got} vs {want}");
    // Contact force = penalty x area x the overlap left.
    let force = s.contacts[0].normal_force;
    let overlap = DELTA - got;
    assert!(
        (force / (penalty * SIDE * SIDE * overlap) - 1.0).abs() < 1e-6,
        "{force} vs {}",
        penalty * SIDE * SIDE * overlap
    );
}

#[test]
fn a_clearance_is_kept_by_later_steps_and_ramps_back() {
    // Step 1 ramps the interference in, step 2 leaves it (no entry), step 3 takes it out.
    let mut fit = column(
        Top::Plate {
            penalty: 100.0,
            augmented: augmented(),
            ramps: vec![DELTA, DELTA, 0.0],
        },
        vec![],
    );
    fit.steps[1].clearances.clear();
    let r = solve(&fit, &SolveOptions::default()).unwrap();
    assert!(r.converged, "{:?}", r.failure);
    let uz: Vec<f64> = r
        .steps
        .iter()
        .map(|s| top_uz(&fit, s.state.as_ref().unwrap()))
        .collect();
    assert!((uz[0] + DELTA).abs() < 2e-5, "{uz:?}");
    assert!((uz[1] + DELTA).abs() < 2e-5, "{uz:?}");
    // Unloaded again: the elastic column is back where it started and the plate lets go.
    assert!(uz[2].abs() < 2e-5, "{uz:?}");
    let last = r.steps[2].state.as_ref().unwrap();
    // (to the tolerance: 1e-5 mm of the column, E A / H x 1e-5 = 0.05 N)
    assert!(
        last.contacts[0].normal_force < 0.1,
        "{:?}",
        last.contacts[0]
    );
    assert!(last.displacements.iter().flatten().all(|v| v.abs() < 2e-5));
}

#[test]
fn a_clearance_for_a_missing_pair_or_a_deck_is_refused_by_name() {
    let mut bad = column(
        Top::Plate {
            penalty: 100.0,
            augmented: None,
            ramps: vec![DELTA],
        },
        vec![],
    );
    bad.steps[0].clearances = vec![(3, DELTA)];
    let e = solve(&bad, &SolveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ramp 1") && e.contains("contact pair 3"), "{e}");
    bad.steps[0].clearances = vec![(0, f64::NAN)];
    assert!(solve(&bad, &SolveOptions::default()).is_err());
    // CalculiX has one clearance for the whole analysis: the deck writer says so, and
    // writes a step that restates the pair's clearance.
    bad.steps[0].clearances = vec![(0, DELTA)];
    let e = Deck::from_nl_model(&bad).unwrap_err().to_string();
    assert!(e.contains("'plate'") && e.contains("no deck form"), "{e}");
    bad.steps[0].clearances = vec![(0, 0.0)];
    assert!(Deck::from_nl_model(&bad).is_ok());
}
