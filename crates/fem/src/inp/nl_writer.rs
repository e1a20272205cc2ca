//! The deck of a nonlinear model ([`Deck::from_nl_model`]).

use std::collections::{BTreeMap, HashMap};

use super::{
    BeamShape, Boundary, Cload, Deck, Dload, ElementType, Gravity, InpBeamSection, InpContactPair,
    InpElement, InpInteraction, InpLaw, InpMaterial, InpRigidBody, InpSpring, InpSurface, InpTie,
    SolidSection, SpringTable, Step, SurfaceMembers, Target,
};
use crate::nl::{Beam, Deactivate, Dof, Load, Model, Point, SpringLaw};
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
    /// Deck id of the beam element (B32 for a circular section, B31 for a rectangular one)
    /// of every beam, by beam index.
    pub beam_elements: Vec<u64>,
}

/// Relative difference of two numbers (0 when both are 0).
fn rel(a: f64, b: f64) -> f64 {
    let m = a.abs().max(b.abs());
    if m == 0.0 {
        0.0
    } else {
        (a - b).abs() / m
    }
}

/// The `*BEAM SECTION` shape whose section (as [`InpBeamSection::section`] builds it) has
/// the beam's area, second moments and torsion constant (to 1e-9 relative): a circle of
/// radius `(4 I / pi)^(1/4)`, or a rectangle of width `sqrt(12 Iz / A)` along n1 and height
/// `sqrt(12 Iy / A)` along n2.
fn beam_shape(b: &Beam) -> Result<BeamShape, FemError> {
    let s = &b.section;
    let matches = |shape: BeamShape| {
        let w = InpBeamSection {
            elset: String::new(),
            material: String::new(),
            shape,
            orientation: None,
        }
        .section(b.nu);
        [(w.area, s.area), (w.iy, s.iy), (w.iz, s.iz), (w.j, s.j)]
            .iter()
            .all(|&(x, y)| rel(x, y) <= 1e-9)
    };
    let circle = BeamShape::Circ {
        r: (4.0 * s.iy / std::f64::consts::PI).powf(0.25),
    };
    if matches(circle) {
        return Ok(circle);
    }
    if s.area > 0.0 {
        let rect = BeamShape::Rect {
            a: (12.0 * s.iz / s.area).sqrt(),
            b: (12.0 * s.iy / s.area).sqrt(),
        };
        if matches(rect) {
            return Ok(rect);
        }
    }
    bad(format!("beam '{}': its section (A = {}, Iy = {}, Iz = {}, J = {}) is neither a solid circle nor a solid rectangle, the sections a deck takes (*BEAM SECTION, SECTION=CIRC|RECT)", b.name, s.area, s.iy, s.iz, s.j))
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
    /// Errors name what has no deck form: connectors, follower pairs, a contact clearance ramped by a step, contact pairs, ties, beams,
    /// materials without [`crate::continuum::SolidMaterial::inp_law`], a node prescription on
    /// a node tied to a body, a pre-strained truss, two densities for one element.
    pub fn from_nl_model(model: &Model) -> Result<NlDeck, FemError> {
        if let Some(c) = model.connectors.first() {
            return bad(format!("connector '{}': a six-spring bushing between rigid bodies has no deck form here (CalculiX's *SPRING acts on node DOFs, not on the relative rotation of two rigid bodies); export the model without connectors", c.name));
        }
        let clearance: Vec<f64> = model.contacts.iter().map(|c| c.clearance).collect();
        for (k, s) in model.steps.iter().enumerate() {
            for &(c, v) in &s.clearances {
                let Some(now) = clearance.get(c) else {
                    return bad(format!(
                        "step {} ('{}'): clearance for contact pair {c}, which does not exist",
                        k + 1,
                        s.name
                    ));
                };
                if v != *now {
                    let name = &model.contacts[c].name;
                    return bad(format!("step {} ('{}'): the clearance of contact pair '{name}' ramped from {now} to {v} mm (an interference resolved over the step) has no deck form: CalculiX's clearance is fixed for the whole analysis", k + 1, s.name));
                }
            }
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
        // Bodies that are bare beam nodes: beam ends at their reference point and nothing
        // else (no other point on them, at most one tied node, at the reference). Each is
        // written as the beam node itself (DOFs 1-3 its translation, 4-6 its rotation), as
        // the reader builds a body per beam node. CalculiX does not turn a beam node in a
        // *RIGID BODY set with the body (measured: the ROT node stays at zero while the
        // beam end turns), so a beam end on any other body has no deck form.
        let nb = model.bodies.len();
        let near = |a: [f64; 3], b: [f64; 3]| {
            super::dist(a, b) <= 1e-9 * (1.0 + a.iter().fold(0.0f64, |m, v| m.max(v.abs())))
        };
        let mut beam_ends: Vec<Vec<(usize, [f64; 3])>> = vec![Vec::new(); nb];
        for (k, bm) in model.beams.iter().enumerate() {
            for end in [&bm.a, &bm.b] {
                if end.body >= nb {
                    return bad(format!(
                        "beam '{}' ends on body {}, which does not exist",
                        bm.name, end.body
                    ));
                }
                beam_ends[end.body].push((k, end.at));
            }
            if bm.a.body == bm.b.body {
                return bad(format!("beam '{}' has both ends on one body", bm.name));
            }
        }
        let mut other_use = vec![false; nb];
        {
            let mut mark = |p: &Point| {
                if let Point::Body { body, .. } = *p {
                    if body < nb {
                        other_use[body] = true;
                    }
                }
            };
            for sp in &model.springs {
                mark(&sp.a);
                mark(&sp.b);
            }
            for c in &model.contacts {
                c.slave
                    .iter()
                    .chain(c.master.iter().flatten())
                    .for_each(&mut mark);
            }
            for t in &model.ties {
                t.slave
                    .iter()
                    .chain(t.master.iter().flatten())
                    .for_each(&mut mark);
            }
        }
        // Deck id of the node of every beam-node body (new nodes come after the contact
        // points, see below).
        let mut beam_node: Vec<Option<u64>> = vec![None; nb];
        for (b, ends) in beam_ends.iter().enumerate() {
            let Some(&(k, _)) = ends.first() else {
                continue;
            };
            let body = &model.bodies[b];
            let why = if other_use[b] {
                Some("a spring, contact or tie point is on it".to_string())
            } else if body.tied_nodes.len() > 1
                || body
                    .tied_nodes
                    .iter()
                    .any(|&n| !near(mesh.nodes[n], body.reference))
            {
                Some(format!(
                    "it carries {} mesh node(s), not just one at its reference point",
                    body.tied_nodes.len()
                ))
            } else if ends.iter().any(|&(_, at)| !near(at, body.reference)) {
                Some("a beam end on it is off its reference point".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                return bad(format!("beam '{}' ends on body '{}', which is not a bare beam node ({why}): CalculiX 2.20 does not turn a beam node in a *RIGID BODY set with the body, so a beam end on it has no deck form (end beams on bodies of their own, at their reference points)", model.beams[k].name, body.name));
            }
            beam_node[b] = body.tied_nodes.first().map(|&n| n as u64 + 1);
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
        let mut slave_areas: Vec<Vec<f64>> = Vec::with_capacity(model.contacts.len());
        for c in &model.contacts {
            if !c.slave_faces.is_empty() {
                // A mortar pair goes to CalculiX as node-to-surface contact, each slave
                // point with its share of the slave faces (reference configuration).
                let at = |p: &Point| match *p {
                    Point::Node(n) => model.mesh.nodes.get(n).copied(),
                    Point::Body { at, .. } => Some(at),
                };
                let mut areas = vec![0.0; c.slave.len()];
                for f in &c.slave_faces {
                    let Some(x) = f
                        .nodes()
                        .iter()
                        .map(|&k| c.slave.get(k).and_then(at))
                        .collect::<Option<Vec<_>>>()
                    else {
                        return bad(format!(
                            "contact pair '{}': a slave face refers to a slave point that does not exist",
                            c.name
                        ));
                    };
                    let shares = f.nodal_areas(&x);
                    for (k, &n) in f.nodes().iter().enumerate() {
                        areas[n] += shares[k];
                    }
                }
                slave_areas.push(areas);
            } else {
                slave_areas.push(c.slave_area.clone());
            }
            if c.slave.len() != slave_areas[slave_areas.len() - 1].len() {
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
        // Beam nodes: the bodies without a tied node get one, then the middle nodes of the
        // B32 elements (circular sections: CalculiX 2.20 refuses linear beams of circular
        // section).
        for (b, body) in model.bodies.iter().enumerate() {
            if !beam_ends[b].is_empty() && beam_node[b].is_none() {
                deck.nodes.push((next_id, body.reference));
                beam_node[b] = Some(next_id);
                next_id += 1;
            }
        }
        let mut shapes = Vec::with_capacity(model.beams.len());
        let mut middles = Vec::with_capacity(model.beams.len());
        for bm in &model.beams {
            let shape = beam_shape(bm)?;
            middles.push(match shape {
                BeamShape::Circ { .. } => {
                    let (a, c) = (bm.a.at, bm.b.at);
                    deck.nodes
                        .push((next_id, std::array::from_fn(|d| (a[d] + c[d]) / 2.0)));
                    next_id += 1;
                    Some(next_id - 1)
                }
                BeamShape::Rect { .. } => None,
            });
            shapes.push(shape);
        }
        let mut body_nodes = Vec::with_capacity(model.bodies.len());
        for (b, body) in model.bodies.iter().enumerate() {
            if let Some(id) = beam_node[b] {
                body_nodes.push((id, id));
                continue;
            }
            let r = next_id;
            deck.nodes.push((r, body.reference));
            deck.nodes.push((r + 1, body.reference));
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
            let slave_area = &slave_areas[k];
            let (a_s, a_m) = (mean(slave_area), mean(&areas));
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
                100.0 * spread(slave_area)
            ));
            if !c.slave_faces.is_empty() {
                approximations.push(format!(
                    "contact pair '{}': mortar (surface-to-surface) contact written as node-to-surface, each slave node with its share of the slave faces as its area: on non-matching meshes CalculiX loads the master unevenly where spinetwin passes the contact patch test",
                    c.name
                ));
            }
            approximations.push(format!(
                "contact pair '{}': faceted master (the solver's is smoothed by interpolated normals and fades out over a rim band), its corners moved by the clearance along their vertex normals (the gap at which contact starts is the clearance to within {:.2} %), pressure-overclosure line smoothed over {CONTACT_SMOOTHING_MM} mm",
                c.name,
                100.0 * folds[k]
            ));
            if let Some(depth) = c.search_depth {
                approximations.push(format!(
                    "contact pair '{}': search depth {depth} mm not written (CalculiX searches its own way): a point pressed deeper than about one master edge may be treated differently",
                    c.name
                ));
            }
            if let Some(aug) = c.augmented {
                approximations.push(format!(
                    "contact pair '{}': augmented Lagrangian (tolerance {} mm) written as the plain penalty line: CalculiX's node-to-surface contact has no augmentation, so its penetration is pressure / K",
                    c.name, aug.tolerance
                ));
            }
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
                // The stick slope: the tangential penalty, scaled to CalculiX's areas as
                // the normal one is.
                friction: (c.friction > 0.0).then_some((
                    c.friction,
                    c.tangential_penalty.unwrap_or(c.penalty) * a_s / a_m,
                )),
            });
            deck.contact_pairs.push(InpContactPair {
                interaction: name.clone(),
                slave: format!("{name}S"),
                master: format!("{name}M"),
                surface_to_surface: false,
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
        // Beams: one element each (B32 with its middle node for a circle, B31 for a
        // rectangle), one material and *BEAM SECTION per distinct shape, E, nu and n1.
        let mut beam_elements = Vec::with_capacity(model.beams.len());
        let mut beam_groups: Vec<(String, Vec<u64>)> = Vec::new();
        let mut shear_diff: Vec<(String, f64)> = Vec::new();
        for (k, bm) in model.beams.iter().enumerate() {
            let (na, nb_) = (
                beam_node[bm.a.body].expect("a beam-node body"),
                beam_node[bm.b.body].expect("a beam-node body"),
            );
            let (etype, nodes) = match middles[k] {
                Some(m) => (ElementType::B32, vec![na, m, nb_]),
                None => (ElementType::B31, vec![na, nb_]),
            };
            let o = bm.orientation;
            let t: [f64; 3] = std::array::from_fn(|d| bm.b.at[d] - bm.a.at[d]);
            let cr = [
                t[1] * o[2] - t[2] * o[1],
                t[2] * o[0] - t[0] * o[2],
                t[0] * o[1] - t[1] * o[0],
            ];
            let (lt, lo) = (super::dist([0.0; 3], t), super::dist([0.0; 3], o));
            let across = super::dist([0.0; 3], cr);
            if across.is_nan() || across <= 1e-6 * lt * lo {
                return bad(format!("beam '{}': its orientation {o:?} is zero or along the beam, so it fixes no cross-section axis", bm.name));
            }
            let key = format!(
                "{:?}|{:?}|{:?}|{:?}|{}",
                shapes[k],
                bm.e.to_bits(),
                bm.nu.to_bits(),
                o.map(f64::to_bits),
                etype.name()
            );
            let g = match beam_groups.iter().position(|(kk, _)| *kk == key) {
                Some(g) => g,
                None => {
                    let g = beam_groups.len();
                    let name = format!("BEAM{}", g + 1);
                    deck.materials.push(InpMaterial {
                        name: name.clone(),
                        elastic: Some((bm.e, bm.nu)),
                        hyperelastic: None,
                        density: None,
                        aniso: None,
                        user: None,
                    });
                    deck.beam_sections.push(InpBeamSection {
                        elset: name.clone(),
                        material: name,
                        shape: shapes[k],
                        orientation: Some(o),
                    });
                    beam_groups.push((key, Vec::new()));
                    g
                }
            };
            deck.elements.push(InpElement {
                id: next_elem,
                etype,
                nodes,
            });
            beam_groups[g].1.push(next_elem);
            beam_elements.push(next_elem);
            next_elem += 1;
            // B31 and B32 are shear flexible with Cowper's shear area (the reader's too).
            let cowper = deck.beam_sections[g].section(bm.nu).shear_area;
            let same = match (bm.section.shear_area, cowper) {
                (Some(x), Some(y)) => rel(x, y) <= 1e-9,
                _ => false,
            };
            if !same {
                // Shear over bending compliance of the beam as a cantilever under an end
                // force: 3 E I / (G A_s L^2).
                let (l, g_mod) = (lt, bm.e / (2.0 * (1.0 + bm.nu)));
                let a_s = cowper.expect("a Cowper shear area");
                // The stiffer bending plane: the shear share grows with I, so this bounds it.
                let i = bm.section.iy.max(bm.section.iz);
                let ratio = |a: f64| 3.0 * bm.e * i / (g_mod * a * l * l);
                let d = ratio(a_s) - bm.section.shear_area.map_or(0.0, ratio);
                shear_diff.push((bm.name.clone(), d));
            }
        }
        for (g, (_, ids)) in beam_groups.into_iter().enumerate() {
            deck.element_sets.insert(format!("BEAM{}", g + 1), ids);
        }
        if let Some(worst) = shear_diff
            .iter()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        {
            approximations.push(format!("{} beam(s) written with the shear flexibility of B31/B32 (Cowper's shear area) where the model's differs (Euler-Bernoulli: none): the end-force compliance of a beam changes by at most {:+.2e} of its bending part ('{}')", shear_diff.len(), worst.1, worst.0));
        }
        if !model.beams.is_empty() {
            approximations.push("beams: each an element of the deck's rod (B32 with a middle node for a circular section, B31 for a rectangle); CalculiX expands them into 20-node bricks (one per element, an ellipse integrated on its enclosing square), the solver's are exact corotational beams; moments on beam nodes are of fixed direction in the solver (checked against CalculiX in planar bending)".into());
        }
        // Ties: the slave nodes as a node surface, the master triangles as the faces of the
        // solid elements they lie on; *TIE with ADJUST=NO (slave nodes bonded where they
        // are, as in the model).
        let tie_bonds = if model.ties.is_empty() {
            Vec::new()
        } else {
            let blocks: Vec<Option<usize>> = block_of
                .iter()
                .map(|&k| (k != usize::MAX).then_some(k))
                .collect();
            model
                .ties
                .iter()
                .map(|t| crate::nl::tie::prepare(model, t, &blocks))
                .collect::<Result<Vec<_>, _>>()?
        };
        // Solid faces by node: (element, face, nodes).
        let mut faces_at: HashMap<usize, Vec<(usize, u8)>> = HashMap::new();
        if !model.ties.is_empty() {
            for e in (0..ne).filter(|&e| block_of[e] != usize::MAX) {
                let en = mesh.element_nodes(e);
                for (f, local) in mesh.kinds[e].faces().iter().enumerate() {
                    for &l in local.iter() {
                        faces_at.entry(en[l]).or_default().push((e, f as u8));
                    }
                }
            }
        }
        let face_nodes = |e: usize, f: u8| -> Vec<usize> {
            let en = mesh.element_nodes(e);
            mesh.kinds[e].faces()[f as usize]
                .iter()
                .map(|&l| en[l])
                .collect()
        };
        let tri_area = |a: usize, b: usize, c: usize| {
            let x = |n: usize| nalgebra::Vector3::from(mesh.nodes[n]);
            (x(b) - x(a)).cross(&(x(c) - x(a))).norm() / 2.0
        };
        let held: std::collections::HashSet<usize> = model
            .steps
            .iter()
            .flat_map(|s| s.prescribed.iter())
            .filter_map(|(d, _)| match *d {
                Dof::Node { node, .. } => Some(node),
                Dof::Body { .. } => None,
            })
            .collect();
        for (k, (t, bonds)) in model.ties.iter().zip(&tie_bonds).enumerate() {
            let name = format!("TIE{}", k + 1);
            let mut slave = Vec::with_capacity(t.slave.len());
            for p in &t.slave {
                let n = match *p {
                    Point::Node(n) if n < nn => n,
                    _ => return bad(format!("tie '{}': slave point {p:?} is not a mesh node; CalculiX ties nodes (a point on a rigid body is already held by the body's MPCs)", t.name)),
                };
                if let Some(&b) = tied.get(&n) {
                    return bad(format!("tie '{}': slave node {n} is tied to body '{}'; CalculiX lets a node be the dependent of one constraint only", t.name, model.bodies[b].name));
                }
                if held.contains(&n) {
                    return bad(format!("tie '{}': slave node {n} has a prescribed displacement; CalculiX lets a node be the dependent of one constraint only (prescribe a master node)", t.name));
                }
                slave.push(n as u64 + 1);
            }
            // Master faces in order of first use, with the area of the triangles on them.
            let mut faces: Vec<((usize, u8), f64)> = Vec::new();
            let mut quads = false;
            for tri in &t.master {
                let mut c = [0usize; 3];
                for (i, p) in tri.iter().enumerate() {
                    match *p {
                        Point::Node(n) if n < nn && !tied.contains_key(&n) => c[i] = n,
                        _ => return bad(format!("tie '{}': master corner {p:?} is not a free mesh node; a deck's tie master is faces of solid elements", t.name)),
                    }
                }
                let Some(&(e, f)) = faces_at.get(&c[0]).and_then(|v| {
                    v.iter().find(|&&(e, f)| {
                        let fnodes = face_nodes(e, f);
                        c.iter().all(|n| fnodes.contains(n))
                    })
                }) else {
                    return bad(format!("tie '{}': master triangle of nodes {c:?} lies on no face of a solid element in a block; a deck's tie master is faces of solid elements", t.name));
                };
                let area = tri_area(c[0], c[1], c[2]);
                match faces.iter_mut().find(|(key, _)| *key == (e, f)) {
                    Some(x) => x.1 += area,
                    None => faces.push(((e, f), area)),
                }
            }
            for &((e, f), covered) in &faces {
                let n = face_nodes(e, f);
                let whole = match n.len() {
                    4 => {
                        quads = true;
                        tri_area(n[0], n[1], n[2]) + tri_area(n[0], n[2], n[3])
                    }
                    _ => tri_area(n[0], n[1], n[2]),
                };
                if covered < whole * (1.0 - 1e-6) {
                    return bad(format!("tie '{}': the master triangles cover {:.1} % of face S{} of element {e}; a deck's master is whole element faces", t.name, 100.0 * covered / whole, f + 1));
                }
            }
            approximations.push(format!("tie '{}': CalculiX holds each slave node exactly on the master face (linear MPCs), the model by a penalty of {:.4e} N/mm per slave point ({}); read back, a tie takes the solver's automatic penalty", t.name, bonds.penalty(), if t.penalty.is_some() { "given" } else { "automatic" }));
            if !t.slave_triangles.is_empty() {
                approximations.push(format!("tie '{}': mortar (slave triangles) written as node-to-surface: CalculiX ties each slave node where it projects", t.name));
            }
            if quads {
                approximations.push(format!("tie '{}': master triangles written as the quadrilateral faces they lie on, which CalculiX interpolates bilinearly, the model linearly on its triangles (read back: split along the 1-3 diagonal)", t.name));
            }
            let off = bonds.max_offset();
            if off > 0.0 {
                approximations.push(format!("tie '{}': slave points up to {off:.3e} mm off the master surface: CalculiX (ADJUST=NO) keeps the offset's direction fixed, the model turns it with the master triangle", t.name));
            }
            deck.surfaces.push(InpSurface {
                name: format!("{name}S"),
                members: SurfaceMembers::Node(slave),
            });
            deck.surfaces.push(InpSurface {
                name: format!("{name}M"),
                members: SurfaceMembers::Element(
                    faces
                        .iter()
                        .map(|&((e, f), _)| (e as u64 + 1, f + 1))
                        .collect(),
                ),
            });
            deck.ties.push(InpTie {
                name: name.clone(),
                slave: format!("{name}S"),
                master: format!("{name}M"),
                tolerance: Some(t.tolerance),
                adjust: false,
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
                || tail("BEAM")
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
        let mut rigid = 0;
        for (b, body) in model.bodies.iter().enumerate() {
            if beam_node[b].is_some() {
                deck.comments.push(format!(
                    "body {}: '{}' (beam node {})",
                    b + 1,
                    body.name,
                    body_nodes[b].0
                ));
                continue;
            }
            rigid += 1;
            let mut ids: Vec<u64> = body.tied_nodes.iter().map(|&n| n as u64 + 1).collect();
            ids.extend(&extra_tied[b]);
            if ids.is_empty() {
                return bad(format!("body '{}' carries no node (no tied node, no spring end): CalculiX needs a non-empty rigid body set", body.name));
            }
            let nset = format!("RIGID{rigid}");
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
                    if beam_node[body].is_some() {
                        return Ok((r, k as u8 + 1));
                    }
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
            let add_at = |m: &mut BTreeMap<(u64, u8), f64>, id: u64, v: [f64; 3], first: u8| {
                for (d, c) in v.iter().enumerate() {
                    if *c != 0.0 {
                        *m.entry((id, d as u8 + first)).or_insert(0.0) += c;
                    }
                }
            };
            let add = |m: &mut BTreeMap<(u64, u8), f64>, id: u64, v: [f64; 3]| add_at(m, id, v, 1);
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
                        // A beam node takes moments in DOFs 4-6, a ROT node in 1-3.
                        let first = if beam_node[*body].is_some() { 4 } else { 1 };
                        add_at(&mut cl, q, *moment, first);
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
                    other => return bad(format!("step {}: deactivation {other:?} has no deck form (the writer removes solid elements and springs only)", k + 1)),
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
            beam_elements,
        })
    }
}
