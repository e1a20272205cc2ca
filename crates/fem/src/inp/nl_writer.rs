//! The deck of a nonlinear model ([`Deck::from_nl_model`]).

use std::collections::{BTreeMap, HashMap};

use super::{
    Boundary, Cload, Deck, Dload, ElementType, Gravity, InpContactPair, InpElement, InpInteraction,
    InpLaw, InpMaterial, InpRigidBody, InpSpring, InpSurface, SolidSection, SpringTable, Step,
    SurfaceMembers, Target,
};
use crate::nl::{Deactivate, Dof, Load, Model, Point, SpringLaw};
use crate::FemError;

/// Strain (of the rest length) up to which a spring table is written: CalculiX holds the
/// force constant beyond the last point, the solver's laws keep their last slope, so the
/// table runs far past any physiological strain (1000 %).
pub const SPRING_TABLE_STRAIN: f64 = 10.0;

/// Chords per toe region of a [`SpringLaw::ToeLinear`] law in a spring table: the force
/// error is at most `1 / (4 n^2)` of the force at the end of the toe (1e-4 for 50).
pub const TOE_CHORDS: usize = 50;

/// Width (mm) over which the deck's linear pressure-overclosure law is smoothed at zero
/// overclosure: `sigma_inf = K eps / pi` (CalculiX's node-to-surface force is `K A d (1/2 +
/// atan(d / eps) / pi)` at overclosure `d`, short of the model's `K A d` by about `K A eps /
/// pi`, e.g. 0.6 % of the force at 0.05 mm).
pub const CONTACT_SMOOTHING_MM: f64 = 1e-3;

/// A deck written from a nonlinear model, and what it approximates.
#[derive(Clone, Debug)]
pub struct NlDeck {
    /// The deck ([`Deck::write_ccx`] gives the text for CalculiX).
    pub deck: Deck,
    /// What the deck represents only approximately (one line each, also written as `**`
    /// comments, [`Deck::comments`]); empty when the deck is exact.
    pub approximations: Vec<String>,
    /// `(REF node, ROT node)` deck ids of every rigid body, by body index.
    pub body_nodes: Vec<(u64, u64)>,
    /// Deck id of the SPRINGA element of every spring, by spring index.
    pub spring_elements: Vec<u64>,
    /// Deck ids of the slave nodes of every contact pair, by pair index (slave point order).
    pub contact_slaves: Vec<Vec<u64>>,
}

fn bad<T>(m: String) -> Result<T, FemError> {
    Err(FemError::InvalidInput(m))
}

fn spring_table(law: &SpringLaw, rest: f64, l0: f64, name: &str) -> Result<SpringTable, FemError> {
    // Knots (strain > 0, force) after (0, 0).
    let ext = SPRING_TABLE_STRAIN;
    let mut knots: Vec<(f64, f64)> = match law {
        SpringLaw::Truss { k } => {
            if (rest - l0).abs() > 1e-12 * l0 {
                return bad(format!("spring '{name}': a truss (Truss law) with rest length {rest} != its length {l0} (pre-strain) cannot be written: CalculiX's linear SPRINGA has none"));
            }
            return Ok(SpringTable::Linear(k / l0));
        }
        SpringLaw::Linear { k } => vec![(ext, k * ext)],
        SpringLaw::Bilinear { k1, eps_t, .. } => vec![(*eps_t, k1 * eps_t)],
        SpringLaw::ToeLinear { k, eps_t } => (1..=TOE_CHORDS)
            .map(|i| {
                let e = eps_t * i as f64 / TOE_CHORDS as f64;
                (e, k * e * e / (2.0 * eps_t))
            })
            .collect(),
        SpringLaw::Piecewise(p) => p.clone(),
    };
    if knots.iter().all(|k| k.1 == 0.0) {
        return bad(format!(
            "spring '{name}': its law carries no force ({law:?}); leave the spring out of the model"
        ));
    }
    let (e1, f1) = *knots.last().expect("at least one knot");
    if e1 < ext {
        let slope = match law {
            SpringLaw::Bilinear { k2, .. } => *k2,
            SpringLaw::ToeLinear { k, .. } => *k,
            _ => {
                let (e0, f0) = if knots.len() > 1 {
                    knots[knots.len() - 2]
                } else {
                    (0.0, 0.0)
                };
                (f1 - f0) / (e1 - e0)
            }
        };
        knots.push((ext, f1 + slope * (ext - e1)));
    }
    // Elongation from the initial length: strain 0 at e_z = rest - l0.
    let e_z = rest - l0;
    let mut v = vec![(0.0, e_z)];
    v.extend(knots.iter().map(|&(s, f)| (f, e_z + s * rest)));
    Ok(SpringTable::Nonlinear(v))
}

impl Deck {
    /// The CalculiX/Abaqus deck of a nonlinear model, solved alike by `ccx` and by
    /// [`Deck::to_nl_model`] (see the module documentation, `# Nonlinear models`).
    ///
    /// Mesh node `i` gets id `i + 1`, solid element `e` id `e + 1` (elements in no solid
    /// block are left out); then a node per distinct body point used by a spring, the REF
    /// and ROT nodes of each body, and one SPRINGA element per spring. One material and
    /// element set (`MAT1`/`EMAT1`, ... or `ELASTIC_FIBER1`/`EMAT1` ...) per distinct
    /// law and density ([`crate::continuum::SolidMaterial::inp_law`]). Loads and prescribed
    /// values are written as changes from the previous step (Abaqus' `OP=MOD`), so every
    /// step ends in the model's state.
    ///
    /// Errors name what has no deck form: follower pairs, contact pairs, ties, beams,
    /// materials without [`crate::continuum::SolidMaterial::inp_law`], a node prescription on
    /// a node tied to a body, a pre-strained truss, two densities for one element.
    pub fn from_nl_model(model: &Model) -> Result<NlDeck, FemError> {
        if let Some(t) = model.ties.first() {
            return bad(format!(
                "tie '{}' cannot be written to a deck yet (not implemented in the writer)",
                t.name
            ));
        }
        if let Some(b) = model.beams.first() {
            return bad(format!("beam '{}' between bodies cannot be written to a deck yet (not implemented in the writer)", b.name));
        }
        for (k, s) in model.steps.iter().enumerate() {
            for l in &s.loads {
                if let Load::FollowerPair { .. } = l {
                    return bad(format!("step {} ('{}'): a FollowerPair load has no deck form (CalculiX has no follower point load along the line of two points)", k + 1, s.name));
                }
            }
        }
        model.mesh.validate()?;
        let mesh = &model.mesh;
        let nn = mesh.num_nodes();
        let ne = mesh.num_elements();
        let mut approximations: Vec<String> = Vec::new();
        let mut deck = Deck::with_nodes_of(mesh, "written by spinetwin-fem (nonlinear model)");
        // Body of every tied node.
        let mut tied: HashMap<usize, usize> = HashMap::new();
        for (b, body) in model.bodies.iter().enumerate() {
            for &n in &body.tied_nodes {
                if n >= nn {
                    return bad(format!(
                        "body '{}' ties node {n}, beyond the mesh",
                        body.name
                    ));
                }
                if tied.insert(n, b).is_some_and(|o| o != b) {
                    return bad(format!("node {n} is tied to two bodies"));
                }
            }
        }
        // Nodes of body points (springs), in order of first use.
        let mut body_point: HashMap<(usize, [u64; 3]), u64> = HashMap::new();
        let mut extra_tied: Vec<Vec<u64>> = vec![Vec::new(); model.bodies.len()];
        let mut next_id = nn as u64 + 1;
        let mut point_id = |p: &Point, deck: &mut Deck| -> Result<u64, FemError> {
            match *p {
                Point::Node(n) if n < nn => Ok(n as u64 + 1),
                Point::Node(n) => bad(format!("spring end node {n} is beyond the mesh")),
                Point::Body { body, at } => {
                    if body >= model.bodies.len() {
                        return bad(format!("spring end on body {body}, which does not exist"));
                    }
                    let key = (body, at.map(f64::to_bits));
                    if let Some(&id) = body_point.get(&key) {
                        return Ok(id);
                    }
                    let id = next_id;
                    next_id += 1;
                    deck.nodes.push((id, at));
                    body_point.insert(key, id);
                    extra_tied[body].push(id);
                    Ok(id)
                }
            }
        };
        let mut ends = Vec::with_capacity(model.springs.len());
        for s in &model.springs {
            ends.push((point_id(&s.a, &mut deck)?, point_id(&s.b, &mut deck)?));
        }
        // Contact pairs: slave points become nodes (a node surface); each master triangle
        // the S1 face of a carrier wedge (C3D6) on the master's rigid body, its face
        // offset by the clearance along the triangle's outward normal (contact starts there
        // in CalculiX) and the wedge as thick as the triangle is wide, into the body.
        let mut contact_slaves: Vec<Vec<u64>> = Vec::with_capacity(model.contacts.len());
        let mut carriers: Vec<Vec<[u64; 6]>> = Vec::with_capacity(model.contacts.len());
        let mut folds: Vec<f64> = Vec::with_capacity(model.contacts.len());
        for c in &model.contacts {
            if c.slave.len() != c.slave_area.len() {
                return bad(format!(
                    "contact pair '{}': {} slave points but {} areas",
                    c.name,
                    c.slave.len(),
                    c.slave_area.len()
                ));
            }
            let mut ids = Vec::with_capacity(c.slave.len());
            for p in &c.slave {
                ids.push(point_id(p, &mut deck)?);
            }
            contact_slaves.push(ids);
            // Corners (body, position) shared by the triangles keep one node each: every
            // corner moves along its vertex normal (the mean of the adjacent triangles'
            // unit normals), so the offset surface stays connected (the solver's smoothing
            // and CalculiX's search across neighbouring faces both need shared corners).
            type V = nalgebra::Vector3<f64>;
            let mut tris: Vec<(usize, [[f64; 3]; 3], V)> = Vec::with_capacity(c.master.len());
            let mut vnormal: HashMap<(usize, [u64; 3]), V> = HashMap::new();
            let mut width = 0.0;
            for t in &c.master {
                let mut body = None;
                let mut x = [[0.0; 3]; 3];
                for (k, p) in t.iter().enumerate() {
                    match *p {
                        Point::Body { body: b, at } if body.is_none_or(|o| o == b) => {
                            body = Some(b);
                            x[k] = at;
                        }
                        _ => return bad(format!("contact pair '{}': a master triangle has a corner that is a mesh node or on another body; the deck writer takes masters on one rigid body per triangle only", c.name)),
                    }
                }
                let body = body.expect("three corners");
                let v = |a: [f64; 3], b: [f64; 3]| V::new(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
                let cr = v(x[0], x[1]).cross(&v(x[0], x[2]));
                if cr.norm() == 0.0 {
                    return bad(format!(
                        "contact pair '{}': a master triangle has no area",
                        c.name
                    ));
                }
                let n = cr.normalize();
                width += (v(x[0], x[1]).norm() + v(x[1], x[2]).norm() + v(x[2], x[0]).norm()) / 3.0;
                for p in &x {
                    *vnormal
                        .entry((body, p.map(f64::to_bits)))
                        .or_insert(V::zeros()) += n;
                }
                tris.push((body, x, n));
            }
            // Carriers as thick as the mean triangle is wide.
            let width = width / tris.len().max(1) as f64;
            let mut wedges = Vec::with_capacity(tris.len());
            let mut fold = 0.0f64;
            for (body, x, n) in &tris {
                let body = *body;
                let mut w = [0u64; 6];
                // C3D6 1-2-3 with its right-hand normal towards 4-5-6 (into the body): the
                // triangle reversed; S1 then faces out, towards the slave points.
                for (k, &i) in [0usize, 2, 1].iter().enumerate() {
                    let nv = vnormal[&(body, x[i].map(f64::to_bits))].normalize();
                    if nv.dot(n) < 0.5 {
                        return bad(format!("contact pair '{}': the master surface folds by more than 60 degrees at a corner; the deck's carriers need a smooth master", c.name));
                    }
                    fold = fold.max(1.0 - nv.dot(n));
                    let at = |s: f64| {
                        [
                            x[i][0] + s * nv[0],
                            x[i][1] + s * nv[1],
                            x[i][2] + s * nv[2],
                        ]
                    };
                    w[k] = point_id(
                        &Point::Body {
                            body,
                            at: at(c.clearance),
                        },
                        &mut deck,
                    )?;
                    w[k + 3] = point_id(
                        &Point::Body {
                            body,
                            at: at(-width),
                        },
                        &mut deck,
                    )?;
                }
                wedges.push(w);
            }
            folds.push(fold);
            carriers.push(wedges);
        }
        let mut body_nodes = Vec::with_capacity(model.bodies.len());
        for b in &model.bodies {
            let r = next_id;
            deck.nodes.push((r, b.reference));
            deck.nodes.push((r + 1, b.reference));
            body_nodes.push((r, r + 1));
            next_id += 2;
        }
        // Solid elements and their materials.
        let mut block_of = vec![usize::MAX; ne];
        for (k, b) in model.solids.iter().enumerate() {
            for &e in &b.elements {
                if e >= ne {
                    return bad(format!(
                        "solid block '{}' lists element {e}, beyond the mesh",
                        b.name
                    ));
                }
                block_of[e] = k;
            }
        }
        // Density of every element from the gravity loads.
        let mut density: HashMap<usize, f64> = HashMap::new();
        for s in &model.steps {
            for l in &s.loads {
                if let Load::Gravity {
                    elements,
                    density: rho,
                    ..
                } = l
                {
                    for &e in elements {
                        if density.insert(e, *rho).is_some_and(|o| o != *rho) {
                            return bad(format!("element {e} is under gravity with two densities ({o} and {rho}): a deck has one density per material", o = density[&e]));
                        }
                    }
                }
            }
        }
        let mut groups: Vec<(InpLaw, Option<f64>, Vec<u64>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let mut noted: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (e, &k) in block_of.iter().enumerate() {
            if k == usize::MAX {
                continue;
            }
            let block = &model.solids[k];
            let Some(w) = block.material.inp_law(e) else {
                return bad(format!(
                    "solid block '{}': its material has no deck form (SolidMaterial::inp_law)",
                    block.name
                ));
            };
            if let Some(a) = w.approximation {
                let line = format!("block '{}': {a}", block.name);
                if noted.insert(line.clone()) {
                    approximations.push(line);
                }
            }
            deck.elements.push(InpElement::of_mesh(mesh, e));
            let rho = density.get(&e).copied();
            let key = format!("{:?}|{:?}", w.law, rho.map(f64::to_bits));
            let g = *group_of.entry(key).or_insert_with(|| {
                groups.push((w.law.clone(), rho, Vec::new()));
                groups.len() - 1
            });
            groups[g].2.push(e as u64 + 1);
        }
        // Springs: one SPRINGA element and *SPRING per spring.
        let mut spring_elements = Vec::with_capacity(model.springs.len());
        for (k, (s, &(a, b))) in model.springs.iter().zip(&ends).enumerate() {
            let id = ne as u64 + 1 + k as u64;
            let xa = deck.nodes[(a - 1) as usize].1;
            let xb = deck.nodes[(b - 1) as usize].1;
            let l0 = super::dist(xa, xb);
            if l0.is_nan() || l0 <= 0.0 {
                return bad(format!(
                    "spring '{}' has zero length: its ends coincide",
                    s.name
                ));
            }
            let table = spring_table(&s.law, s.rest_length, l0, &s.name)?;
            if let SpringLaw::ToeLinear { .. } = s.law {
                let line = format!("spring laws with a toe region (ToeLinear) are tabulated with {TOE_CHORDS} chords over the toe (force error <= {:.1e} of the toe-end force)", 0.25 / (TOE_CHORDS * TOE_CHORDS) as f64);
                if noted.insert(line.clone()) {
                    approximations.push(line);
                }
            }
            deck.elements.push(InpElement {
                id,
                etype: ElementType::SPRINGA,
                nodes: vec![a, b],
            });
            let elset = format!("SPRING{}", k + 1);
            deck.element_sets.insert(elset.clone(), vec![id]);
            deck.springs.push(InpSpring { elset, table });
            spring_elements.push(id);
        }
        // Contact: carrier wedges, surfaces, interactions and pairs.
        let mut next_elem = ne as u64 + 1 + model.springs.len() as u64;
        for (k, (c, wedges)) in model.contacts.iter().zip(&carriers).enumerate() {
            let name = format!("CONTACT{}", k + 1);
            let mut ids = Vec::with_capacity(wedges.len());
            for w in wedges {
                deck.elements.push(InpElement {
                    id: next_elem,
                    etype: ElementType::C3D6,
                    nodes: w.to_vec(),
                });
                ids.push(next_elem);
                next_elem += 1;
            }
            let areas: Vec<f64> = wedges
                .iter()
                .map(|w| {
                    let x = |id: u64| nalgebra::Vector3::from(deck.nodes[(id - 1) as usize].1);
                    (x(w[1]) - x(w[0])).cross(&(x(w[2]) - x(w[0]))).norm() / 2.0
                })
                .collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let spread = |v: &[f64]| {
                let m = mean(v);
                v.iter().fold(0.0f64, |s, a| s.max((a - m).abs() / m))
            };
            let (a_s, a_m) = (mean(&c.slave_area), mean(&areas));
            if !(c.penalty > 0.0 && a_s > 0.0 && a_m > 0.0) {
                return bad(format!(
                    "contact pair '{}': penalty and areas must be > 0",
                    c.name
                ));
            }
            let slope = c.penalty * a_s / a_m;
            approximations.push(format!(
                "contact pair '{}': CalculiX gives each slave node (a node surface) the area of the master triangle it meets; K = penalty x mean slave area / mean triangle area = {slope:.6e} MPa/mm (triangle areas within {:.1} % of their mean, slave areas within {:.1} %): exact for equal areas",
                c.name,
                100.0 * spread(&areas),
                100.0 * spread(&c.slave_area)
            ));
            approximations.push(format!(
                "contact pair '{}': faceted master (the solver's is smoothed by interpolated normals and fades out over a rim band), its corners moved by the clearance along their vertex normals (the gap at which contact starts is the clearance to within {:.2} %), pressure-overclosure line smoothed over {CONTACT_SMOOTHING_MM} mm",
                c.name,
                100.0 * folds[k]
            ));
            deck.element_sets.insert(format!("{name}M"), ids.clone());
            deck.surfaces.push(InpSurface {
                name: format!("{name}S"),
                members: SurfaceMembers::Node(contact_slaves[k].clone()),
            });
            deck.surfaces.push(InpSurface {
                name: format!("{name}M"),
                members: SurfaceMembers::Element(ids.iter().map(|&e| (e, 1)).collect()),
            });
            deck.interactions.push(InpInteraction {
                name: name.clone(),
                slope,
                sigma_inf: slope * CONTACT_SMOOTHING_MM / std::f64::consts::PI,
                friction: (c.friction > 0.0).then_some((c.friction, slope)),
            });
            deck.contact_pairs.push(InpContactPair {
                interaction: name.clone(),
                slave: format!("{name}S"),
                master: format!("{name}M"),
            });
        }
        if !model.contacts.is_empty() {
            deck.materials.push(InpMaterial {
                name: "CARRIER".into(),
                elastic: Some((1.0, 0.3)),
                hyperelastic: None,
                density: None,
                aniso: None,
                user: None,
            });
            let all: Vec<u64> = (ne as u64 + 1 + model.springs.len() as u64..next_elem).collect();
            deck.element_sets.insert("CARRIERS".into(), all);
            deck.sections.push(SolidSection {
                elset: "CARRIERS".into(),
                material: "CARRIER".into(),
                area: None,
            });
        }
        if !model.springs.is_empty() {
            approximations.push(format!("spring tables end at strain {SPRING_TABLE_STRAIN} of the rest length: beyond it CalculiX holds the force constant"));
        }
        // Sets of the mesh with names a deck takes (not clashing with the writer's own).
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
        };
        let ours = |s: &str| {
            let tail = |p: &str| {
                s.strip_prefix(p)
                    .is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
            };
            s == "NALL"
                || s == "CARRIERS"
                || tail("EMAT")
                || tail("SPRING")
                || tail("RIGID")
                || (s.starts_with("CONTACT") && s.ends_with('M'))
        };
        for (name, set) in &mesh.node_sets {
            let up = name.to_ascii_uppercase();
            if valid(name) && !ours(&up) && !set.is_empty() {
                deck.node_sets
                    .insert(up, set.iter().map(|&n| n as u64 + 1).collect());
            }
        }
        let written: std::collections::HashSet<u64> = deck.elements.iter().map(|e| e.id).collect();
        for (name, set) in &mesh.element_sets {
            let up = name.to_ascii_uppercase();
            let ids: Vec<u64> = set
                .iter()
                .map(|&e| e as u64 + 1)
                .filter(|id| written.contains(id))
                .collect();
            if valid(name) && !ours(&up) && !ids.is_empty() {
                deck.element_sets.insert(up, ids);
            }
        }
        for (k, (law, rho, elems)) in groups.into_iter().enumerate() {
            let name = match law {
                InpLaw::ElasticFiber(_) => format!("ELASTIC_FIBER{}", k + 1),
                _ => format!("MAT{}", k + 1),
            };
            let elset = format!("EMAT{}", k + 1);
            deck.element_sets.insert(elset.clone(), elems);
            let mut m = InpMaterial {
                name: name.clone(),
                elastic: None,
                hyperelastic: None,
                density: rho,
                aniso: None,
                user: None,
            };
            match law {
                InpLaw::Elastic { e, nu } => m.elastic = Some((e, nu)),
                InpLaw::Aniso(c) => m.aniso = Some(c),
                InpLaw::Hyperelastic(h) => m.hyperelastic = Some(h),
                InpLaw::ElasticFiber(f) => {
                    if f.fibres.is_empty() || f.fibres.len() > 4 {
                        return bad(format!(
                            "ELASTIC_FIBER takes 1 to 4 fibres, got {}",
                            f.fibres.len()
                        ));
                    }
                    m.user = Some(f.constants());
                }
            }
            deck.materials.push(m);
            deck.sections.push(SolidSection {
                elset,
                material: name,
                area: None,
            });
        }
        // Rigid bodies.
        for (b, body) in model.bodies.iter().enumerate() {
            let mut ids: Vec<u64> = body.tied_nodes.iter().map(|&n| n as u64 + 1).collect();
            ids.extend(&extra_tied[b]);
            if ids.is_empty() {
                return bad(format!("body '{}' carries no node (no tied node, no spring end): CalculiX needs a non-empty rigid body set", body.name));
            }
            let nset = format!("RIGID{}", b + 1);
            deck.comments.push(format!(
                "body {}: '{}' (REF node {}, ROT node {})",
                b + 1,
                body.name,
                body_nodes[b].0,
                body_nodes[b].1
            ));
            deck.node_sets.insert(nset.clone(), ids);
            deck.rigid_bodies.push(InpRigidBody {
                nset,
                ref_node: body_nodes[b].0,
                rot_node: body_nodes[b].1,
            });
        }
        deck.node_sets.insert(
            "NALL".into(),
            deck.nodes.iter().map(|(id, _)| *id).collect(),
        );
        // Steps: prescribed DOFs, loads and removals.
        let dof_of = |d: &Dof| -> Result<(u64, u8), FemError> {
            match *d {
                Dof::Node { node, dir } => {
                    if node >= nn || dir > 2 {
                        return bad(format!("prescribed DOF {d:?} is not in the mesh"));
                    }
                    if let Some(&b) = tied.get(&node) {
                        return bad(format!("prescribed DOF {d:?}: node {node} is tied to body '{}'; prescribe the body", model.bodies[b].name));
                    }
                    Ok((node as u64 + 1, dir as u8 + 1))
                }
                Dof::Body { body, k } => {
                    if body >= model.bodies.len() || k > 5 {
                        return bad(format!("prescribed DOF {d:?} does not exist"));
                    }
                    let (r, q) = body_nodes[body];
                    Ok(if k < 3 {
                        (r, k as u8 + 1)
                    } else {
                        (q, k as u8 - 2)
                    })
                }
            }
        };
        let all_dofs: std::collections::BTreeSet<(u64, u8)> = model
            .steps
            .iter()
            .flat_map(|s| s.prescribed.iter().map(|(d, _)| dof_of(d)))
            .collect::<Result<_, _>>()?;
        let mut prev_bc: BTreeMap<(u64, u8), f64> = all_dofs.iter().map(|&k| (k, 0.0)).collect();
        let mut prev_cl: BTreeMap<(u64, u8), f64> = BTreeMap::new();
        let mut prev_p: BTreeMap<(u64, u8), f64> = BTreeMap::new();
        let mut prev_g: BTreeMap<u64, [f64; 3]> = BTreeMap::new();
        let mut removed: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for (k, s) in model.steps.iter().enumerate() {
            let mut step = Step {
                nlgeom: true,
                max_increments: Some(s.increments.max_increments),
                ..Default::default()
            };
            let inc = &s.increments;
            if inc.cutback {
                step.static_params = vec![inc.initial, 1.0, inc.min, inc.max];
            } else {
                step.direct = true;
                step.static_params = vec![inc.initial, 1.0];
                if inc.max != inc.initial {
                    approximations.push(format!("step {} ('{}'): increments without cut-back written as *STATIC, DIRECT (fixed increments of {}; the model allows growth to {})", k + 1, s.name, inc.initial, inc.max));
                }
            }
            deck.comments.push(format!("step {}: '{}'", k + 1, s.name));
            // Prescribed values: step 1 all of them, later steps the changes.
            let mut bc = prev_bc.clone();
            for (d, v) in &s.prescribed {
                bc.insert(dof_of(d)?, *v);
            }
            for (&(id, dof), &v) in &bc {
                if k == 0 || prev_bc.get(&(id, dof)).map(|p| p.to_bits()) != Some(v.to_bits()) {
                    step.boundaries.push(Boundary {
                        target: Target::Id(id),
                        first: dof,
                        last: dof,
                        value: v,
                    });
                }
            }
            prev_bc = bc;
            // Loads: the state at the end of the step, written as changes.
            let mut cl: BTreeMap<(u64, u8), f64> = BTreeMap::new();
            let mut pr: BTreeMap<(u64, u8), f64> = BTreeMap::new();
            let mut gr: BTreeMap<u64, [f64; 3]> = BTreeMap::new();
            let add = |m: &mut BTreeMap<(u64, u8), f64>, id: u64, v: [f64; 3]| {
                for (d, c) in v.iter().enumerate() {
                    if *c != 0.0 {
                        *m.entry((id, d as u8 + 1)).or_insert(0.0) += c;
                    }
                }
            };
            for l in &s.loads {
                match l {
                    Load::NodeForce { node, force } => {
                        if *node >= nn {
                            return bad(format!("force on node {node}, beyond the mesh"));
                        }
                        add(&mut cl, *node as u64 + 1, *force);
                    }
                    Load::BodyForce { body, force } => {
                        let Some(&(r, _)) = body_nodes.get(*body) else {
                            return bad(format!("force on body {body}, which does not exist"));
                        };
                        add(&mut cl, r, *force);
                    }
                    Load::BodyMoment { body, moment } => {
                        let Some(&(_, q)) = body_nodes.get(*body) else {
                            return bad(format!("moment on body {body}, which does not exist"));
                        };
                        add(&mut cl, q, *moment);
                    }
                    Load::Pressure { faces, pressure } => {
                        for &(e, f) in faces {
                            if e >= ne
                                || f as usize >= mesh.kinds[e].num_faces()
                                || block_of[e] == usize::MAX
                            {
                                return bad(format!("pressure on face {f} of element {e}, which is not a face of a solid in a block"));
                            }
                            *pr.entry((e as u64 + 1, f + 1)).or_insert(0.0) += pressure;
                        }
                    }
                    Load::Gravity {
                        elements,
                        acceleration,
                        ..
                    } => {
                        for &e in elements {
                            if e >= ne || block_of[e] == usize::MAX {
                                continue; // carries no weight in the solver either
                            }
                            let g = gr.entry(e as u64 + 1).or_insert([0.0; 3]);
                            for d in 0..3 {
                                g[d] += acceleration[d];
                            }
                        }
                    }
                    Load::FollowerPair { .. } => unreachable!("refused above"),
                }
            }
            let changed = |prev: &BTreeMap<(u64, u8), f64>, now: &BTreeMap<(u64, u8), f64>| {
                let mut keys: std::collections::BTreeSet<(u64, u8)> =
                    prev.keys().copied().collect();
                keys.extend(now.keys().copied());
                keys.into_iter()
                    .filter_map(|key| {
                        let (p, v) = (
                            prev.get(&key).copied().unwrap_or(0.0),
                            now.get(&key).copied().unwrap_or(0.0),
                        );
                        (p.to_bits() != v.to_bits()).then_some((key, v))
                    })
                    .collect::<Vec<_>>()
            };
            for ((id, dof), value) in changed(&prev_cl, &cl) {
                step.cloads.push(Cload {
                    target: Target::Id(id),
                    dof,
                    value,
                });
            }
            for ((id, face), value) in changed(&prev_p, &pr) {
                step.dloads.push(Dload {
                    target: Target::Id(id),
                    face,
                    value,
                });
            }
            let mut ekeys: std::collections::BTreeSet<u64> = prev_g.keys().copied().collect();
            ekeys.extend(gr.keys().copied());
            for id in ekeys {
                let p = prev_g.get(&id).copied().unwrap_or([0.0; 3]);
                let a = gr.get(&id).copied().unwrap_or([0.0; 3]);
                if p.map(f64::to_bits) == a.map(f64::to_bits) {
                    continue;
                }
                let m = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
                let (magnitude, direction) = if m == 0.0 {
                    let pm = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
                    (0.0, p.map(|c| c / pm))
                } else {
                    (m, a.map(|c| c / m))
                };
                step.gravity.push(Gravity {
                    target: Target::Id(id),
                    magnitude,
                    direction,
                });
            }
            prev_cl = cl;
            prev_p = pr;
            prev_g = gr;
            // Removals.
            for d in &s.deactivate {
                let ids: Vec<u64> = match d {
                    Deactivate::Elements(v) => v
                        .iter()
                        .filter(|&&e| e < ne && block_of[e] != usize::MAX)
                        .map(|&e| e as u64 + 1)
                        .collect(),
                    Deactivate::Spring(i) => match spring_elements.get(*i) {
                        Some(&id) => vec![id],
                        None => return bad(format!("step {}: deactivates spring {i}, which does not exist", k + 1)),
                    },
                    other => return bad(format!("step {}: deactivation {other:?} has no deck form (contacts, beams and ties are not written)", k + 1)),
                };
                for id in ids {
                    if removed.insert(id) {
                        step.remove.push(Target::Id(id));
                    }
                }
            }
            step.outputs = vec!["*NODE PRINT, NSET=NALL".into(), "U".into()];
            deck.steps.push(step);
        }
        for a in &approximations {
            deck.comments.push(format!("approximation: {a}"));
        }
        Ok(NlDeck {
            deck,
            approximations,
            body_nodes,
            spring_elements,
            contact_slaves,
        })
    }
}
