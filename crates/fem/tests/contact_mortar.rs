//! Mortar (surface-to-surface) contact: the contact patch test (issue 4, item 3).
//!
//! Two elastic blocks of the same material, meshed with different tet4 grids, stand on one
//! another: the lower on rollers, the upper pressed by a uniform pressure `q` on its top;
//! both on symmetry rollers at x = 0 and y = 0. The exact solution is a homogeneous
//! uniaxial stress, `sigma_zz = -q` in every element of both blocks, the interface closing
//! by `q / penalty` everywhere. Mortar contact must reproduce it to the solver's tolerance
//! whichever mesh is the slave (Puso & Laursen 2004 call this the contact patch test);
//! node-to-surface contact does not, because the slave nodes' point forces reach the
//! master's nodes unevenly.

mod common;

use spinetwin_fem::nl::*;
use spinetwin_fem::{box_mesh, Mesh, Order};

const SIDE: f64 = 10.0;
const HALF: f64 = 5.0;
const E: f64 = 1000.0;
const NU: f64 = 0.3;
/// Pressure on the top (MPa).
const Q: f64 = 1.0;
/// Contact penalty (MPa/mm).
const PENALTY: f64 = 1e4;

/// The triangles of face set `set` of `mesh`, node indices offset by `off`, oriented so
/// that their right-hand normal has the sign `up` along z.
fn face_triangles(mesh: &Mesh, set: &str, off: usize, up: f64) -> Vec<[usize; 3]> {
    mesh.face_set(set)
        .unwrap()
        .iter()
        .map(|&(e, f)| {
            let nodes = mesh.element_nodes(e);
            let local = mesh.kinds[e].face(f as usize).unwrap();
            let mut t = [nodes[local[0]], nodes[local[1]], nodes[local[2]]];
            let x = |k: usize| mesh.nodes[t[k]];
            let nz = (x(1)[0] - x(0)[0]) * (x(2)[1] - x(0)[1])
                - (x(1)[1] - x(0)[1]) * (x(2)[0] - x(0)[0]);
            if nz * up < 0.0 {
                t.swap(1, 2);
            }
            t.map(|n| n + off)
        })
        .collect()
}

/// Which block's bottom/top face is the slave, and how contact is enforced.
#[derive(Clone, Copy)]
struct Setup {
    lower_cells: usize,
    upper_cells: usize,
    /// The upper block's bottom is the slave (else the lower block's top).
    upper_slave: bool,
    mortar: bool,
    augmented: bool,
}

struct Outcome {
    /// Largest `|sigma_zz / -q - 1|` over the elements of the lower and the upper block.
    err_lower: f64,
    err_upper: f64,
    /// Largest lateral or shear stress over q.
    lateral: f64,
    /// Slave pressures over q: smallest and largest.
    p_range: (f64, f64),
    /// Total normal force over q times the current (laterally expanded) area.
    force_ratio: f64,
    /// Mean closure of the interface (mm): the upper block's bottom minus the lower
    /// block's top at x = y = 0.
    closure: f64,
}

fn run(s: Setup) -> Outcome {
    let lower = box_mesh(
        [SIDE, SIDE, HALF],
        [s.lower_cells, s.lower_cells, 2],
        Order::Linear,
    )
    .unwrap();
    let upper = box_mesh(
        [SIDE, SIDE, HALF],
        [s.upper_cells, s.upper_cells, 2],
        Order::Linear,
    )
    .unwrap();
    let nl = lower.num_nodes();
    let mut nodes = lower.nodes.clone();
    nodes.extend(upper.nodes.iter().map(|p| [p[0], p[1], p[2] + HALF]));
    let mut mesh = Mesh::with_nodes(nodes);
    for e in 0..lower.num_elements() {
        mesh.add_element(lower.kinds[e], lower.element_nodes(e));
    }
    let el = mesh.num_elements();
    for e in 0..upper.num_elements() {
        let n: Vec<usize> = upper.element_nodes(e).iter().map(|&k| k + nl).collect();
        mesh.add_element(upper.kinds[e], &n);
    }
    let ne = mesh.num_elements();
    // Lower top (outward +z), upper bottom (outward -z).
    let lower_top = face_triangles(&lower, "zmax", 0, 1.0);
    let upper_bottom = face_triangles(&upper, "zmin", nl, -1.0);
    let (slave_tris, master_tris) = if s.upper_slave {
        (upper_bottom, lower_top)
    } else {
        (lower_top, upper_bottom)
    };
    let mut slave_nodes: Vec<usize> = slave_tris.iter().flatten().copied().collect();
    slave_nodes.sort_unstable();
    slave_nodes.dedup();
    let local = |n: usize| slave_nodes.binary_search(&n).unwrap();
    let tri_local: Vec<[usize; 3]> = slave_tris.iter().map(|t| t.map(local)).collect();
    // Node-to-surface: each slave node with its share of the slave triangles.
    let mut areas = vec![0.0; slave_nodes.len()];
    for t in &tri_local {
        for &k in t {
            areas[k] += SIDE * SIDE / slave_tris.len() as f64 / 3.0;
        }
    }
    let pair = ContactPair {
        name: "interface".into(),
        slave: slave_nodes.iter().map(|&n| Point::Node(n)).collect(),
        slave_area: if s.mortar { vec![] } else { areas },
        master: master_tris.iter().map(|t| t.map(Point::Node)).collect(),
        penalty: PENALTY,
        clearance: 0.0,
        friction: 0.0,
        augmented: s.augmented.then_some(Augmentation {
            tolerance: 1e-7,
            max_updates: 20,
        }),
        tangential_penalty: None,
        search_depth: None,
        slave_faces: if s.mortar {
            tri_local.into_iter().map(SlaveFace::Tri).collect()
        } else {
            vec![]
        },
    };
    let fixed = common::rollers(&mesh, &[0, 1, 2]);
    let top: Vec<(usize, u8)> = upper
        .face_set("zmax")
        .unwrap()
        .iter()
        .map(|&(e, f)| (e + el, f))
        .collect();
    let model = Model {
        solids: vec![common::neo_hookean_block("blocks", &mesh, E, NU)],
        mesh,
        contacts: vec![pair],
        steps: vec![Step {
            name: "press".into(),
            loads: vec![Load::Pressure {
                faces: top,
                pressure: Q,
            }],
            prescribed: fixed,
            increments: Increments {
                initial: 0.5,
                ..Default::default()
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let res = solve(&model, &SolveOptions::default()).unwrap();
    assert!(res.converged, "{:?}", res.failure);
    let st = res.steps.last().unwrap().state.as_ref().unwrap();
    let err = |r: std::ops::Range<usize>| {
        r.map(|e| (st.element_stress[e][2] / -Q - 1.0).abs())
            .fold(0.0f64, f64::max)
    };
    let lateral = (0..ne)
        .flat_map(|e| {
            let s = st.element_stress[e];
            [s[0], s[1], s[3], s[4], s[5]]
        })
        .fold(0.0f64, |m, v| m.max(v.abs() / Q));
    let c = &st.contacts[0];
    let p_range = c
        .pressure
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &p| {
            (lo.min(p / Q), hi.max(p / Q))
        });
    let z = |n: usize| model.mesh.nodes[n][2] + st.displacements[n][2];
    // Node 0 of each block sits at x = y = 0 of its own grid.
    let lower_top0 = (0..nl)
        .find(|&n| {
            let p = model.mesh.nodes[n];
            p[0] == 0.0 && p[1] == 0.0 && p[2] == HALF
        })
        .unwrap();
    // Lateral stretch from the corner at x = SIDE of the lower block's top.
    let corner = (0..nl)
        .find(|&n| model.mesh.nodes[n] == [SIDE, SIDE, HALF])
        .unwrap();
    let current_side = SIDE + st.displacements[corner][0];
    Outcome {
        err_lower: err(0..el),
        err_upper: err(el..ne),
        lateral,
        p_range,
        force_ratio: c.normal_force / (Q * current_side * current_side),
        closure: z(nl) - z(lower_top0),
    }
}

#[test]
fn mortar_contact_passes_the_patch_test_on_non_matching_meshes() {
    for (lower_cells, upper_cells, upper_slave) in [(3, 4, true), (3, 4, false), (4, 3, true)] {
        let o = run(Setup {
            lower_cells,
            upper_cells,
            upper_slave,
            mortar: true,
            augmented: false,
        });
        let tag = format!("{lower_cells}/{upper_cells} cells, upper slave {upper_slave}");
        eprintln!(
            "mortar {tag}: sigma_zz error lower {:.2e} upper {:.2e}, lateral {:.2e}, \
             pressure {:.6}..{:.6} q, force {:.6}, closure {:.3e} mm",
            o.err_lower, o.err_upper, o.lateral, o.p_range.0, o.p_range.1, o.force_ratio, o.closure
        );
        assert!(
            o.err_lower < 1e-6 && o.err_upper < 1e-6,
            "{tag}: stress not uniform"
        );
        assert!(o.lateral < 1e-6, "{tag}: lateral stress {}", o.lateral);
        assert!(
            (o.p_range.0 - 1.0).abs() < 1e-6 && (o.p_range.1 - 1.0).abs() < 1e-6,
            "{tag}: pressure {:?}",
            o.p_range
        );
        assert!(
            (o.force_ratio - 1.0).abs() < 1e-6,
            "{tag}: force {}",
            o.force_ratio
        );
        // The interface closes by the penetration q / penalty (1e-4 mm).
        assert!(
            (o.closure + Q / PENALTY).abs() < 1e-7,
            "{tag}: closure {}",
            o.closure
        );
    }
}

#[test]
fn node_to_surface_contact_fails_the_same_patch_test() {
    let o = run(Setup {
        lower_cells: 3,
        upper_cells: 4,
        upper_slave: true,
        mortar: false,
        augmented: false,
    });
    eprintln!(
        "node-to-surface: sigma_zz error lower {:.2e} upper {:.2e}, lateral {:.2e}",
        o.err_lower, o.err_upper, o.lateral
    );
    // The master (lower) block is loaded unevenly: its stress is off by percents.
    assert!(
        o.err_lower > 1e-2,
        "node-to-surface passed: {}",
        o.err_lower
    );
}

#[test]
fn augmented_mortar_contact_closes_the_interface() {
    let o = run(Setup {
        lower_cells: 3,
        upper_cells: 4,
        upper_slave: true,
        mortar: true,
        augmented: true,
    });
    eprintln!(
        "augmented mortar: sigma_zz error lower {:.2e} upper {:.2e}, closure {:.2e} mm",
        o.err_lower, o.err_upper, o.closure
    );
    assert!(o.err_lower < 1e-6 && o.err_upper < 1e-6);
    assert!(o.closure.abs() < 1e-7, "closure {}", o.closure);
}

#[test]
fn frictional_mortar_contact_is_refused_before_the_solve() {
    let mut model = Model {
        mesh: box_mesh([1.0, 1.0, 1.0], [1, 1, 1], Order::Linear).unwrap(),
        ..Default::default()
    };
    model.contacts.push(ContactPair {
        name: "rough".into(),
        slave: vec![Point::Node(0), Point::Node(1), Point::Node(2)],
        slave_area: vec![],
        master: vec![[Point::Node(4), Point::Node(5), Point::Node(6)]],
        penalty: 1.0,
        clearance: 0.0,
        friction: 0.3,
        augmented: None,
        tangential_penalty: None,
        search_depth: None,
        slave_faces: vec![SlaveFace::Tri([0, 1, 2])],
    });
    let err = solve(&model, &SolveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rough") && err.contains("frictionless"),
        "{err}"
    );
    model.contacts[0].friction = 0.0;
    model.contacts[0].slave_faces = vec![SlaveFace::Tri([0, 1, 3])];
    let err = solve(&model, &SolveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
}
