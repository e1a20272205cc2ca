//! The twin for other tools: its discs and ligament fibres as VTU files with their material
//! fields (for ParaView), written by `spinetwin build` next to `twin.json`.
//!
//! Field names carry their units. Disc cells: `disc` (index of the disc, upper vertebra
//! first), `region` ([`REGION_CODES`]), small-strain `shear_modulus_mpa` and
//! `bulk_modulus_mpa`, the annulus fibre constants `fibre_k1_mpa`, `fibre_k2` and `fibre_kappa`
//! (the HGO dispersion; the fibre term's invariants, full or isochoric, are the twin's
//! `disc_materials.fibre_full_invariants`) (0 where the
//! element has no fibres) and the unit fibre directions `fibre_1`, `fibre_2` (reference
//! configuration; zero where there are none). Fibre lines: `ligament` ([`Ligament::ALL`]
//! order), `upper_vertebra` (index into the twin's levels), `rest_length_mm`, `pre_strain`
//! (geometric length over rest length, less one), `stiffness_n` (the law's stiffness per
//! unit strain in its linear region) and `transition_strain` (end of the toe or first
//! region; 0 for a linear law).

use spinetwin_fem::nl::SpringLaw;
use spinetwin_fem::vtu::VtuData;
use spinetwin_fem::Mesh;

use crate::error::ModelError;
use crate::ligament::Ligament;
use crate::twin::{Deformed, DiscBlockKind, Twin};

/// Codes of the disc cells' `region` field: annulus, nucleus, cage, fusion mass (centre),
/// fusion mass (rim).
pub const REGION_CODES: [&str; 5] = [
    "annulus",
    "nucleus",
    "cage",
    "fusion mass (centre)",
    "fusion mass (rim)",
];

/// The ligament fibres as straight lines with their fields (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct FibreLines {
    /// End points (mm, LPS), two per fibre.
    pub points: Vec<[f64; 3]>,
    /// Point pairs, one per fibre.
    pub lines: Vec<[usize; 2]>,
    /// One value per fibre for each field.
    pub fields: Vec<(String, Vec<f64>)>,
}

/// All discs of `twin` in one mesh, with their material fields. Elements in no block
/// (a nucleotomy's cavity, an approach window) are left out.
pub fn disc_vtu(twin: &Twin) -> Result<(Mesh, VtuData), ModelError> {
    disc_cells(twin).map(|(mesh, data, _)| (mesh, data))
}

/// [`disc_vtu`] of a solved case: the discs in their reference configuration with the
/// point `displacement` (mm) and per element the `von_mises` stress, the largest and
/// smallest principal stresses (`max_principal`, `min_principal`, MPa) and the `stress`
/// tensor, besides the material fields. Elements' values are the means over their
/// integration points.
pub fn loaded_disc_vtu(twin: &Twin, deformed: &Deformed) -> Result<(Mesh, VtuData), ModelError> {
    let (mesh, mut data, cells) = disc_cells(twin)?;
    let mut u = Vec::with_capacity(mesh.nodes.len());
    for (di, d) in twin.discs.iter().enumerate() {
        let n = d.mesh.mesh.num_nodes();
        let du = deformed
            .disc_displacements
            .get(di)
            .filter(|v| v.len() == n)
            .ok_or_else(|| {
                ModelError::InvalidInput(format!(
                    "the solved case has no displacements of disc {di}"
                ))
            })?;
        u.extend_from_slice(du);
    }
    let stress: Vec<[f64; 6]> = cells
        .iter()
        .map(|&(di, e)| {
            deformed
                .disc_stress
                .get(di)
                .and_then(|s| s.get(e))
                .copied()
                .ok_or_else(|| {
                    ModelError::InvalidInput(format!(
                        "the solved case has no stress of disc {di}, element {e}"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let principal: Vec<[f64; 3]> = stress
        .iter()
        .map(spinetwin_fem::post::principal_stresses)
        .collect();
    let max_p = principal
        .iter()
        .map(|p| p.iter().copied().fold(f64::MIN, f64::max));
    let min_p = principal
        .iter()
        .map(|p| p.iter().copied().fold(f64::MAX, f64::min));
    data.point_vectors.push(("displacement".into(), u));
    data.cell_scalars.push((
        "von_mises".into(),
        stress.iter().map(spinetwin_fem::post::von_mises).collect(),
    ));
    data.cell_scalars
        .push(("max_principal".into(), max_p.collect()));
    data.cell_scalars
        .push(("min_principal".into(), min_p.collect()));
    data.cell_tensors.push(("stress".into(), stress));
    Ok((mesh, data))
}

/// The posterior contacts of a solved case as triangulated surfaces, for ParaView.
#[derive(Clone, Debug, Default)]
pub struct ContactSurfaces {
    /// The slave points (on the upper vertebra's articular surface) where the load moved
    /// them (mm, LPS).
    pub points: Vec<[f64; 3]>,
    /// Triangles of [`crate::facet::slave_triangles`], per contact.
    pub triangles: Vec<[usize; 3]>,
    /// Per point: `contact_pressure` (MPa).
    pub point_fields: Vec<(String, Vec<f64>)>,
    /// Per triangle: `upper_vertebra` (index into the twin's levels), `side` (0 left,
    /// 1 right) and `bony_stop` (1 for a bony stop, 0 for a facet joint).
    pub cell_fields: Vec<(String, Vec<f64>)>,
}

/// Longest edge of a contact surface's triangles, in slave-point spacings: longer ones
/// bridge a notch in the surface's outline.
const CONTACT_EDGE_SPACINGS: f64 = 2.5;

/// The facet joints and bony stops of a solved case: each contact's slave points, moved
/// with their vertebra, triangulated, with the contact pressure at every point.
pub fn loaded_contact_surfaces(
    twin: &Twin,
    deformed: &Deformed,
) -> Result<ContactSurfaces, ModelError> {
    let mut out = ContactSurfaces::default();
    let (mut pressure, mut upper, mut side, mut stop) = (vec![], vec![], vec![], vec![]);
    for (k, f) in twin.facets.iter().enumerate() {
        let g = &f.geometry;
        let p = deformed
            .facet_pressure
            .get(k)
            .filter(|p| p.len() == g.slave.len())
            .ok_or_else(|| {
                ModelError::InvalidInput(format!(
                    "the solved case has no contact pressures of posterior contact {k}"
                ))
            })?;
        let base = out.points.len();
        out.points.extend(
            g.slave
                .iter()
                .map(|q| deformed.body_point(twin, f.upper, *q)),
        );
        pressure.extend_from_slice(p);
        for t in crate::facet::slave_triangles(g, CONTACT_EDGE_SPACINGS) {
            out.triangles.push(t.map(|i| base + i));
            upper.push(f.upper as f64);
            side.push(f.side as f64);
            stop.push(f64::from(u8::from(
                f.kind == crate::twin::PosteriorContact::BonyStop,
            )));
        }
    }
    out.point_fields.push(("contact_pressure".into(), pressure));
    out.cell_fields = vec![
        ("upper_vertebra".into(), upper),
        ("side".into(), side),
        ("bony_stop".into(), stop),
    ];
    Ok(out)
}

/// The discs' mesh and fields of [`disc_vtu`], and per element written its disc and its
/// element in that disc's mesh.
type DiscCells = (Mesh, VtuData, Vec<(usize, usize)>);

/// See [`DiscCells`].
fn disc_cells(twin: &Twin) -> Result<DiscCells, ModelError> {
    let mut cells = Vec::new();
    let m = &twin.file.params.disc_materials;
    let mut mesh = Mesh::default();
    let (mut disc, mut region, mut shear, mut bulk, mut k1, mut k2, mut kappa) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut f1, mut f2) = (vec![], vec![]);
    for (di, d) in twin.discs.iter().enumerate() {
        let dm = &d.mesh;
        // Material of each local element: (region, shear, bulk, k1, k2, fibres).
        type Cell = (usize, f64, f64, f64, f64, [[f64; 3]; 2]);
        let mut cell: Vec<Option<Cell>> = vec![None; dm.mesh.num_elements()];
        let none = [[0.0; 3]; 2];
        for (k, &e) in dm.annulus_elements.iter().enumerate() {
            cell[e] = Some((
                0,
                2.0 * m.annulus_c10,
                m.annulus_bulk,
                m.fibre_k1,
                m.fibre_k2,
                dm.fibre_directions[k],
            ));
        }
        for &e in &dm.nucleus_elements {
            let mu = 2.0 * (m.nucleus_c10 + m.nucleus_c01);
            cell[e] = Some((1, mu, m.nucleus_bulk, 0.0, 0.0, none));
        }
        for b in twin.implants.disc_blocks.iter().filter(|b| b.disc == di) {
            let code = match b.kind {
                DiscBlockKind::Cage => 2,
                DiscBlockKind::FusionCentre => 3,
                DiscBlockKind::FusionRim => 4,
            };
            let mu = b.e / (2.0 * (1.0 + b.nu));
            let k = b.e / (3.0 * (1.0 - 2.0 * b.nu));
            for &e in &b.elements {
                let slot = cell.get_mut(e).ok_or_else(|| {
                    ModelError::InvalidInput(format!(
                        "block '{}': element {e} is not in disc {di}",
                        b.name
                    ))
                })?;
                *slot = Some((code, mu, k, 0.0, 0.0, none));
            }
        }
        let node0 = mesh.nodes.len();
        mesh.nodes.extend_from_slice(&dm.mesh.nodes);
        for (e, c) in cell.iter().enumerate() {
            let Some((r, mu, kb, a, b, f)) = *c else {
                continue;
            };
            let nodes: Vec<usize> = dm.mesh.element_nodes(e).iter().map(|n| n + node0).collect();
            mesh.add_element(dm.mesh.kinds[e], &nodes);
            cells.push((di, e));
            disc.push(di as f64);
            region.push(r as f64);
            shear.push(mu);
            bulk.push(kb);
            k1.push(a);
            kappa.push(if a > 0.0 { m.fibre_kappa } else { 0.0 });
            k2.push(b);
            f1.push(f[0]);
            f2.push(f[1]);
        }
    }
    let data = VtuData {
        cell_scalars: vec![
            ("disc".into(), disc),
            ("region".into(), region),
            ("shear_modulus_mpa".into(), shear),
            ("bulk_modulus_mpa".into(), bulk),
            ("fibre_k1_mpa".into(), k1),
            ("fibre_k2".into(), k2),
            ("fibre_kappa".into(), kappa),
        ],
        cell_vectors: vec![("fibre_1".into(), f1), ("fibre_2".into(), f2)],
        ..Default::default()
    };
    Ok((mesh, data, cells))
}

/// The linear-region stiffness (N per unit strain) and the transition strain of a law.
fn law_summary(law: &SpringLaw) -> (f64, f64) {
    match law {
        SpringLaw::Linear { k } | SpringLaw::Truss { k } => (*k, 0.0),
        SpringLaw::Bilinear { eps_t, k2, .. } => (*k2, *eps_t),
        SpringLaw::ToeLinear { k, eps_t } => (*k, *eps_t),
        SpringLaw::Piecewise(p) => {
            let n = p.len();
            let slope = match n {
                0 => 0.0,
                1 => p[0].1 / p[0].0,
                _ => (p[n - 1].1 - p[n - 2].1) / (p[n - 1].0 - p[n - 2].0),
            };
            (slope, p.first().map_or(0.0, |q| q.0))
        }
    }
}

/// The ligament fibres of `twin` as lines (see the module documentation).
pub fn fibre_lines(twin: &Twin) -> FibreLines {
    let mut out = FibreLines::default();
    let n = twin.fibres.len();
    let mut cols: [Vec<f64>; 6] = Default::default();
    for f in &twin.fibres {
        let i = out.points.len();
        out.points.extend_from_slice(&f.ends);
        out.lines.push([i, i + 1]);
        let d: f64 = (0..3)
            .map(|a| (f.ends[1][a] - f.ends[0][a]).powi(2))
            .sum::<f64>()
            .sqrt();
        let (k, eps_t) = law_summary(&f.spring.law);
        let code = Ligament::ALL
            .iter()
            .position(|l| *l == f.ligament)
            .unwrap_or(0);
        let row = [
            code as f64,
            f.bodies[0] as f64,
            f.spring.rest_length,
            d / f.spring.rest_length - 1.0,
            k,
            eps_t,
        ];
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(v);
        }
    }
    let names = [
        "ligament",
        "upper_vertebra",
        "rest_length_mm",
        "pre_strain",
        "stiffness_n",
        "transition_strain",
    ];
    out.fields = names
        .iter()
        .zip(cols)
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    debug_assert!(out.fields.iter().all(|f| f.1.len() == n));
    out
}

/// The load cases `spinetwin build` exports as CalculiX decks: the pure moments of
/// [`crate::loadcase::LoadCase::standard_set`] without a follower load (the follower load
/// has no deck form, and neither has the standing case).
pub fn ccx_cases(moment_nm: f64) -> Vec<crate::loadcase::LoadCase> {
    crate::loadcase::LoadCase::standard_set(moment_nm, 0.0)
        .into_iter()
        .filter(|c| c.moment.is_some() && c.follower_n == 0.0)
        .collect()
}

/// A CalculiX deck of the twin under one load case ([`ccx_deck`]).
#[derive(Clone, Debug)]
pub struct CcxDeck {
    /// The load case's name (the deck's file stem).
    pub case: String,
    /// The deck text ([`spinetwin_fem::inp::Deck::write_ccx`]), with its header comments.
    pub text: String,
    /// What the deck represents only approximately (one line each, also in the header).
    pub approximations: Vec<String>,
    /// `(REF node, ROT node)` deck ids of every vertebra's rigid body, in level order: the
    /// ROT node's displacement printout is the vertebra's rotation vector (rad).
    pub body_nodes: Vec<(u64, u64)>,
    /// Rigid bodies, springs (ligament fibres) and contact pairs (facet joints) written.
    pub counts: (usize, usize, usize),
}

/// The twin's FE model under `case` ([`Twin::fem_model`]) as a CalculiX deck
/// ([`spinetwin_fem::inp::Deck::from_nl_model`]), headed by comments naming the twin
/// (`twin_name`), the case, the units and every approximation the writer reported. Errors
/// name what has no deck form (e.g. a follower load).
pub fn ccx_deck(
    twin: &Twin,
    case: &crate::loadcase::LoadCase,
    twin_name: &str,
) -> Result<CcxDeck, ModelError> {
    let (model, _) = twin.fem_model(case)?;
    let w = spinetwin_fem::inp::Deck::from_nl_model(&model).map_err(|e| {
        ModelError::InvalidInput(format!(
            "load case '{}' of twin {twin_name}: no CalculiX deck: {e}",
            case.name
        ))
    })?;
    let mut deck = w.deck;
    let mut approximations = w.approximations;
    // The nucleus is nearly incompressible (bulk / shear modulus ~ 1000): CalculiX's fully
    // integrated C3D8 locks (28 % stiffer in flexion than the F-bar hexahedra on the
    // phantom's L4-S1), C3D8I (incompatible modes) much less.
    let mut hexes = 0;
    for e in &mut deck.elements {
        if e.etype == spinetwin_fem::inp::ElementType::C3D8 {
            e.etype = spinetwin_fem::inp::ElementType::C3D8I;
            hexes += 1;
        }
    }
    if hexes > 0 {
        let line = format!(
            "{hexes} disc hexahedra written as C3D8I (incompatible modes, against the volumetric locking of CalculiX's fully integrated C3D8 in the nearly incompressible nucleus; spinetwin solves them as F-bar hexahedra); the wedges stay fully integrated C3D6 (on the phantom's L4-S1 CalculiX was 9-10 % stiffer in flexion on the same deck; attributed, not separated, to these wedges and the faceted contact)"
        );
        deck.comments.push(format!("approximation: {line}"));
        approximations.push(line);
    }
    deck.heading = vec![format!(
        "spinetwin twin {twin_name}, load case {}",
        case.name
    )];
    let levels: Vec<&str> = twin.levels.iter().map(|l| l.name()).collect();
    let mut head = vec![
        format!("twin: {twin_name} (vertebrae {})", levels.join(", ")),
        format!(
            "load case: {} (pure moment on the top vertebra's ROT node, N mm; the bottom vertebra fixed)",
            case.name
        ),
        "units: mm, N, MPa, s, tonne (moments N mm, rotations rad)".to_string(),
        format!(
            "written by spinetwin {} (spinetwin_fem::inp::Deck::from_nl_model); run with: ccx -i {}",
            env!("CARGO_PKG_VERSION"),
            case.name
        ),
    ];
    head.append(&mut deck.comments);
    deck.comments = head;
    Ok(CcxDeck {
        case: case.name.clone(),
        text: deck.write_ccx(),
        approximations,
        body_nodes: w.body_nodes,
        counts: (
            model.bodies.len(),
            model.springs.len(),
            model.contacts.len(),
        ),
    })
}

/// `README.txt` of the exported decks: how to run them and what differs from spinetwin's
/// own solve.
pub fn ccx_readme(twin_name: &str, decks: &[CcxDeck]) -> String {
    let mut o = format!(
        "CalculiX decks of the spinetwin twin {twin_name}\n\n\
         One deck per pure-moment load case (checked with CalculiX 2.20). Run one, e.g.\n\n    \
         ccx -i {}\n\n\
         (the job name is the file name without .inp). Units: mm, N, MPa, s, tonne; moments in\n\
         N mm. Each vertebra is a *RIGID BODY with a REF node (translation) and a ROT node\n\
         (rotation vector, rad); the header comments of each deck list them. The .dat file\n\
         holds the displacements (*NODE PRINT U) of every node at every increment; the last\n\
         printout is the end of the step. A vertebra's rotation is its ROT node's value; the\n\
         segment rotation is the relative rotation of two vertebrae (for small angles, the\n\
         difference of their ROT node values).\n\n\
         What differs from spinetwin's own solve (also listed in each deck's header):\n",
        decks.first().map_or("flexion_7.5nm", |d| d.case.as_str())
    );
    let mut seen = std::collections::BTreeSet::new();
    for d in decks {
        for a in &d.approximations {
            if seen.insert(a.clone()) {
                o += &format!("  - {a}\n");
            }
        }
    }
    o += "  - elements: CalculiX's C3D8I hexahedra and fully integrated C3D6 wedges (spinetwin uses\n    F-bar hexahedra and wedges); the increments and convergence tests are CalculiX's own.\n";
    o += "  - cases with a follower load (and the standing case) are not exported: CalculiX has\n    no follower point load along the line of two points.\n\nFiles:\n";
    for d in decks {
        o += &format!(
            "  {}.inp: {} rigid bodies, {} ligament fibre springs, {} contact pairs (facet joints, and bony stops when modelled)\n",
            d.case, d.counts.0, d.counts.1, d.counts.2
        );
    }
    o
}
