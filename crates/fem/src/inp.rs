//! Abaqus/CalculiX input decks (`.inp`): a reader and a writer for a documented subset.
//!
//! Supported keywords (case-insensitive, blanks in keyword lines ignored, `**` comments):
//!
//! * `*HEADING`; `*NODE` (`id, x, y[, z]`); `*ELEMENT, TYPE=..., ELSET=...` with
//!   `C3D4`, `C3D10`, `C3D8`, `C3D6` (solved by both paths: fully integrated in the linear
//!   one, as CalculiX's C3D8 and C3D6, F-bar in the nonlinear one), `T3D2` (trusses, solved
//!   by the nonlinear path), `B31` and `B32` (beams, solved by the nonlinear path, see
//!   [`Deck::to_nl_model`]; a B32's middle node must sit at the midpoint and carry
//!   nothing); data lines ending with `,` continue on the next line.
//! * `*NSET, NSET=...` / `*ELSET, ELSET=...`, members by id or by earlier set name, or
//!   `GENERATE` (`first, last[, step]`).
//! * `*MATERIAL, NAME=...` with `*ELASTIC` (isotropic `E, nu`), `*HYPERELASTIC,
//!   NEO HOOKE` (`C10, D1`) or `MOONEY-RIVLIN` (`C10, C01, D1`) and `*DENSITY` (`rho`,
//!   tonne/mm^3 in the N-mm-s units, one constant value); `*SOLID SECTION, ELSET=...,
//!   MATERIAL=...` (for trusses followed by a data line with the cross-section area, mm^2);
//!   `*BEAM SECTION, ELSET=..., MATERIAL=..., SECTION=CIRC|RECT` for B31 and B32 elements,
//!   a data line with the diameter (CIRC: CalculiX reads the lengths of the ellipse's
//!   principal axes, one value or two equal ones; Abaqus reads a radius there, so an Abaqus
//!   deck's CIRC radius must be doubled) or width along n1 and height along n2 (RECT), then
//!   an optional line with the n1 direction (default `0, 0, -1`, as Abaqus and CalculiX).
//!   CalculiX 2.20 refuses B31 with a circular section ("use quadratic elements"): B32.
//! * `*BOUNDARY` (`node|nset, first dof[, last dof[, value]]`), in the model or a step;
//!   DOFs 4-6 (rotations, rad) at beam nodes only, likewise `*CLOAD` moments (N mm).
//! * `*STEP[, NLGEOM[=YES|NO]][, INC=n][, NAME=...]`, `*STATIC[, DIRECT]` (optional
//!   `initial, period, min, max`), `*CLOAD` (`node|nset, dof, value`), `*DLOAD`
//!   (`element|elset, Pn, pressure`, or gravity `element|elset, GRAV, g, nx, ny, nz`: an
//!   acceleration of magnitude `g` along the direction `n`, normalised as CalculiX does, on
//!   the mass `*DENSITY` of each element's material), `*END STEP`. Other load types (e.g.
//!   `CENTRIF`, `BX`) are errors naming them. Other `*STEP` and `*STATIC` parameters
//!   (e.g. `PERTURBATION`, `RIKS`) are errors.
//!
//! Two models are built from a deck: [`Deck::to_model`] for the linear solver (one step,
//! `*ELASTIC`, tetrahedra, hexahedra and wedges) and [`Deck::to_nl_model`] for the nonlinear one (several steps,
//! hyperelastic or St Venant-Kirchhoff materials, tetrahedra, hexahedra and wedges, T3D2
//! trusses and B31 beams, follower pressure, increment control); [`Deck::needs_nonlinear`] says which one a deck needs.
//! * `*NODE FILE`, `*EL FILE`, `*NODE PRINT`, `*EL PRINT`: kept verbatim (written back) but
//!   ignored by the solver.
//! * Nonlinear path only: `*ELASTIC, TYPE=ANISO` (21 constants, [`ANISO_ORDER`], solved as
//!   `S = D E`); `*USER MATERIAL, CONSTANTS=n` for CalculiX's built-in `ELASTIC_FIBER`
//!   (a material named `ELASTIC_FIBER...`, [`ElasticFiber`], solved as [`crate::Hgo`] with
//!   `kappa = 0`, isochoric invariants, at most two fibres with one `k1, k2`);
//!   `*RIGID BODY, NSET=..., REF NODE=..., ROT NODE=...` ([`InpRigidBody`]: REF DOFs 1-3
//!   the translation, ROT DOFs 1-3 the rotation vector, `*CLOAD` on ROT a moment);
//!   `*ELEMENT, TYPE=SPRINGA` with `*SPRING, ELSET=...[, NONLINEAR]` (linear: a truss of
//!   `k L0`; nonlinear `force, elongation` tables starting at zero force: tension-only
//!   springs, see [`SpringTable`]); `*SURFACE, NAME=..., TYPE=NODE|ELEMENT` (node ids or
//!   sets; `element|elset, Sn`), `*SURFACE INTERACTION` with `*SURFACE BEHAVIOR,
//!   PRESSURE-OVERCLOSURE=LINEAR` (`K, sigma_inf`) and `*FRICTION` (`mu, stick slope`),
//!   `*CONTACT PAIR, INTERACTION=..., TYPE=NODE TO SURFACE` ([`InpContactPair`], see
//!   `# Nonlinear models`) or `TYPE=SURFACE TO SURFACE` (slave element faces of 3 or 4
//!   nodes, frictionless: read as mortar contact, [`crate::nl::ContactPair::slave_faces`];
//!   on the contact patch test deck of `tests/inp_nl.rs` CalculiX's surface-to-surface
//!   contact and the solver agree to 3.4e-6, rel. L2); `*TIE, NAME=...[, POSITION TOLERANCE=...][, ADJUST=YES|NO]`
//!   with a line `slave surface, master surface` (the master element faces; [`InpTie`]:
//!   CalculiX's exact MPCs read as a node-to-surface penalty tie with the solver's automatic
//!   penalty, quadrilateral master faces split along their 1-3 diagonal, six-node faces into
//!   four triangles, the tolerance by default 2.5 % of the mean master edge as CalculiX's;
//!   `ADJUST=YES`, CalculiX's default, moves slave nodes onto the master there, not in the
//!   solver); `*MODEL CHANGE, TYPE=ELEMENT, REMOVE` in a step
//!   (removal at the start of the step; Abaqus ramps the removed elements' forces down
//!   over the step, so only the end state of a path-independent model agrees).
//!
//! # Nonlinear models
//!
//! [`Deck::from_nl_model`] writes an [`crate::nl::Model`]: solids (materials through
//! [`crate::continuum::SolidMaterial::inp_law`]), rigid bodies, springs, penalty contact
//! pairs, node and body forces and moments, pressures, gravity, prescribed node and body
//! DOFs, element and spring removal, beams, ties, steps with their increment control; it
//! refuses (naming them) follower pairs (CalculiX has no point force along the current line
//! of two points), the removal of contact pairs, ties and beams, and what is below.
//! Approximations are listed in
//! [`NlDeck::approximations`] and as `**` comments: compressible Neo-Hookean written as
//! Abaqus NEO HOOKE, HGO dispersion `kappa` and full fibre invariants dropped, toe regions
//! of spring laws tabulated, spring tables ending at [`SPRING_TABLE_STRAIN`] (CalculiX
//! holds the force constant beyond the last point, measured), contact as below.
//!
//! **Contact pairs** become `*CONTACT PAIR, TYPE=NODE TO SURFACE`: the slave points a node
//! surface (`CONTACTkS`, body points as nodes of the body's `*RIGID BODY` set), each master
//! triangle the `S1` face of a carrier C3D6 (`CONTACTkM`, material `CARRIER`, nodes in the
//! master body's set) whose corners are moved by the clearance along the vertex normals
//! (shared corners stay shared), so contact starts at the clearance; `*SURFACE BEHAVIOR, PRESSURE-OVERCLOSURE=LINEAR` with `sigma_inf`
//! smoothing the kink over [`CONTACT_SMOOTHING_MM`], `*FRICTION` (`mu`, stick slope
//! = the tangential penalty scaled as `K` is) when `friction > 0`; a pair's search depth has
//! no CalculiX counterpart and is listed as an approximation. CalculiX gives a node of a node surface the area of the master face
//! it meets (`springforc_n2f.f`: a slave node in no slave face takes the master face's
//! area), so the slope is `K = penalty * mean slave area / mean triangle area`: exact when
//! the areas are equal, else an approximation stating their spread. The master must be on
//! rigid bodies (one per triangle). Read back, a pair has the deck's faces as master
//! (clearance 0, body points where the nodes are in a rigid body's set), `penalty = K`, the
//! stick slope as its tangential penalty and every slave point the mean master face area.
//!
//! **Beams** ([`crate::nl::Beam`]) must end on bare beam-node bodies: a body whose every
//! use is beam ends at its reference point, with no tied node or one at the reference
//! (what the reader builds from a beam node). Such a body is written as the beam's node
//! itself (its DOFs 1-3 the translation, 4-6 the rotation; body forces, moments and
//! prescribed DOFs go there). A beam end on any other body is refused: CalculiX 2.20 does
//! not turn a beam node in a `*RIGID BODY` set with the body (measured: the ROT node stayed
//! at zero while the beam end turned; a clamped root in a body's set stopped with an error
//! in `umpc_mean_rot`). A circular section becomes a B32 with a middle node (CalculiX 2.20
//! refuses linear beams of circular section), a rectangle a B31; other sections (tubes)
//! are refused. One material and `*BEAM SECTION` per distinct shape, `E`, `nu` and n1 (the
//! beam's orientation); the section's `outer_radius` (stress reporting only) is not written
//! (read back: the radius, or half the rectangle's diagonal). B31 and B32 are shear
//! flexible with Cowper's shear area: a different shear area (or none, Euler-Bernoulli) is
//! an approximation, stated with its effect on the end-force compliance. CalculiX expands
//! each element into 20-node bricks (an ellipse integrated on its enclosing square):
//! measured on a 5.5 mm Ti rod of ten elements, CalculiX is 1.0 % stiffer than the
//! Timoshenko solution under a small tip force, 0.6 % under a tip moment and within 1.2 %
//! of ours at large deflection (0.7 rad; CalculiX gave up, too many cut-backs, beyond about
//! 0.78 rad of tip moment).
//!
//! **Ties** ([`crate::nl::Tie`]) become `*TIE, NAME=TIEk, POSITION TOLERANCE=..., ADJUST=NO`
//! between a node surface of the slave points (`TIEkS`; they must be free mesh nodes: a
//! node held by a rigid body or a prescribed DOF cannot be a tie's dependent in CalculiX)
//! and the faces of solid elements that the master triangles lie on (`TIEkM`; the
//! triangles must cover whole faces, their corners free mesh nodes). CalculiX holds each
//! slave node exactly (linear MPCs on the master face's shape functions, bilinear on a
//! quadrilateral), the solver by a penalty, so listed approximations: the penalty (not
//! written; read back, a tie takes the automatic one), mortar ties written as
//! node-to-surface, triangles on quadrilateral faces, slave offsets from the master (turned
//! with the master triangle in the solver, fixed in direction by CalculiX's MPCs). Measured
//! on two hex blocks tied across non-matching nodes, pulled and sheared: the top plate
//! moves within 0.6 % (pull) and 0.7 % (shear) of CalculiX beyond the 1.3 % and 2.4 % its
//! fully integrated C3D8 differ from the F-bar hexahedra with matching nodes; node by node
//! up to 15 % at the interface's corners with node-to-surface on triangles split along one
//! diagonal (CalculiX's bilinear faces keep the block's symmetry), 5 % with a mortar tie
//! over both diagonals.
//!
//! Checked against CalculiX 2.20 (`crates/fem/tests/inp_nl.rs`): `ELASTIC_FIBER` matches
//! the HGO to 3e-7 in a one-element uniaxial test; a hex block between rigid plates twisted
//! 0.93 rad by a torque on the ROT node agrees within 0.8 % in angle, and within 0.3 % with
//! four pre-strained tension-only spring tables between the plates (CalculiX takes the
//! first line under `*SPRING` for SPRING1/2 degrees of freedom unless its first field has a
//! decimal point, and so once dropped the tables' zero-force first row and diverged: every
//! spring number is written with a point); a rigid punch pressed through a contact pair
//! onto a plate on a hyperelastic block agrees within 0.1 % in approach and 0.3 % in
//! relative tilt.
//!
//! Any other keyword is an error naming it and its line. Names of sets and materials are
//! case-insensitive and stored upper-case. The deck's node and element ids are kept; the
//! FE model built from it numbers them 0-based in file order ([`InpModel::node_ids`] and
//! [`InpModel::element_ids`] map back).
//!
//! Face ids `P1..P4` of tetrahedra are Abaqus's faces 1-2-3, 1-4-2, 2-4-3, 3-4-1 (the same
//! as [`crate::element::TET_FACES`]; `P1..P6` of hexahedra and `P1..P5` of wedges as in
//! [`crate::element::ElementKind::faces`]); a positive pressure pushes against the face, as in
//! Abaqus and in [`Loads::pressure`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::bc::{Constraints, Loads};
use crate::element::ElementKind;
use crate::hyper::MooneyRivlin;
use crate::material::LinearElastic;
use crate::mesh::{Face, Mesh};
use crate::FemError;

mod nl_writer;
pub use nl_writer::{NlDeck, CONTACT_SMOOTHING_MM, SPRING_TABLE_STRAIN, TOE_CHORDS};

/// An error reading a deck, with the 1-based line number where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct InpError {
    /// 1-based line number (0 when the error concerns the deck as a whole).
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, InpError> {
    Err(InpError {
        line,
        message: message.into(),
    })
}

/// Element types of the supported subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// 4-node tetrahedron.
    C3D4,
    /// 10-node tetrahedron.
    C3D10,
    /// 8-node hexahedron.
    C3D8,
    /// 6-node wedge.
    C3D6,
    /// 8-node hexahedron with incompatible modes (CalculiX's remedy for volumetric and shear
    /// locking; nonlinear path only, solved as the F-bar hexahedron like `C3D8`).
    C3D8I,
    /// 2-node truss (nonlinear path only, as a two-node spring of axial stiffness `E A / L`).
    T3D2,
    /// 2-node beam (nonlinear path only: a corotational Timoshenko beam between rigid bodies
    /// at its nodes, see [`Deck::to_nl_model`]).
    B31,
    /// 3-node quadratic beam (nonlinear path only: one corotational beam between its end
    /// nodes, the middle node at the midpoint carrying nothing; CalculiX runs circular
    /// sections on quadratic beams only).
    B32,
    /// 2-node axial spring along the current line of its nodes (nonlinear path only, with a
    /// `*SPRING`; see [`Deck::to_nl_model`]).
    SPRINGA,
}

impl ElementType {
    /// The Abaqus name.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::C3D4 => "C3D4",
            ElementType::C3D10 => "C3D10",
            ElementType::C3D8 => "C3D8",
            ElementType::C3D6 => "C3D6",
            ElementType::C3D8I => "C3D8I",
            ElementType::T3D2 => "T3D2",
            ElementType::B31 => "B31",
            ElementType::B32 => "B32",
            ElementType::SPRINGA => "SPRINGA",
        }
    }

    /// Number of nodes.
    pub fn num_nodes(self) -> usize {
        match self {
            ElementType::C3D4 => 4,
            ElementType::C3D10 => 10,
            ElementType::C3D8 | ElementType::C3D8I => 8,
            ElementType::C3D6 => 6,
            ElementType::B32 => 3,
            ElementType::T3D2 | ElementType::B31 | ElementType::SPRINGA => 2,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            ElementType::C3D4,
            ElementType::C3D10,
            ElementType::C3D8,
            ElementType::C3D6,
            ElementType::C3D8I,
            ElementType::T3D2,
            ElementType::B31,
            ElementType::B32,
            ElementType::SPRINGA,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }

    /// The linear solver's element kind ([`Deck::to_model`]), or `None` when the solvers do
    /// not support it yet (trusses and beams). Hexahedra and wedges are fully integrated
    /// there (2x2x2 and 3x2 points), as CalculiX's C3D8 and C3D6, so they lock for nearly
    /// incompressible materials; the nonlinear path uses F-bar.
    pub fn kind(self) -> Option<ElementKind> {
        match self {
            ElementType::C3D4 => Some(ElementKind::Tet4),
            ElementType::C3D10 => Some(ElementKind::Tet10),
            ElementType::C3D8 => Some(ElementKind::Hex8),
            ElementType::C3D6 => Some(ElementKind::Wedge6),
            ElementType::C3D8I
            | ElementType::T3D2
            | ElementType::B31
            | ElementType::B32
            | ElementType::SPRINGA => None,
        }
    }

    /// The element kind of the nonlinear solver ([`Deck::to_nl_model`]): the same kinds as
    /// [`ElementType::kind`] (hexahedra and wedges with F-bar); `None` for trusses and beams,
    /// which the nonlinear path builds outside the mesh (springs; beams between bodies).
    pub fn nl_kind(self) -> Option<ElementKind> {
        match self {
            ElementType::C3D8I => Some(ElementKind::Hex8),
            t => t.kind(),
        }
    }

    /// A beam element (B31, B32).
    pub fn is_beam(self) -> bool {
        matches!(self, ElementType::B31 | ElementType::B32)
    }

    /// Number of faces usable by `*DLOAD Pn`.
    fn num_faces(self) -> u8 {
        match self {
            ElementType::C3D4 | ElementType::C3D10 => 4,
            ElementType::C3D8 | ElementType::C3D8I => 6,
            ElementType::C3D6 => 5,
            ElementType::T3D2 | ElementType::B31 | ElementType::B32 | ElementType::SPRINGA => 0,
        }
    }
}

/// One element of a deck.
#[derive(Clone, Debug, PartialEq)]
pub struct InpElement {
    /// Deck id.
    pub id: u64,
    /// Type.
    pub etype: ElementType,
    /// Deck node ids, in Abaqus order.
    pub nodes: Vec<u64>,
}

impl Deck {
    /// An empty deck with `heading` and the nodes of `mesh` (node `i` gets id `i + 1`, as
    /// the writers number them).
    pub(crate) fn with_nodes_of(mesh: &Mesh, heading: &str) -> Deck {
        Deck {
            heading: vec![heading.into()],
            nodes: mesh
                .nodes
                .iter()
                .enumerate()
                .map(|(i, x)| (i as u64 + 1, *x))
                .collect(),
            ..Default::default()
        }
    }
}

impl InpElement {
    /// Element `e` of `mesh` with id `e + 1`, its nodes numbered `n + 1`, as the writers
    /// number them.
    pub fn of_mesh(mesh: &Mesh, e: usize) -> InpElement {
        InpElement {
            id: e as u64 + 1,
            etype: match mesh.kinds[e] {
                ElementKind::Tet4 => ElementType::C3D4,
                ElementKind::Tet10 => ElementType::C3D10,
                ElementKind::Hex8 => ElementType::C3D8,
                ElementKind::Wedge6 => ElementType::C3D6,
            },
            nodes: mesh
                .element_nodes(e)
                .iter()
                .map(|&n| n as u64 + 1)
                .collect(),
        }
    }
}

/// Hyperelastic strain-energy parameters (Abaqus conventions, MPa and 1/MPa).
#[derive(Clone, Debug, PartialEq)]
pub enum Hyperelastic {
    /// `W = C10 (I1bar - 3) + (J - 1)^2 / D1`.
    NeoHooke {
        /// C10 (MPa).
        c10: f64,
        /// D1 (1/MPa).
        d1: f64,
    },
    /// `W = C10 (I1bar - 3) + C01 (I2bar - 3) + (J - 1)^2 / D1`.
    MooneyRivlin {
        /// C10 (MPa).
        c10: f64,
        /// C01 (MPa).
        c01: f64,
        /// D1 (1/MPa).
        d1: f64,
    },
}

/// A `*MATERIAL` block.
#[derive(Clone, Debug, PartialEq)]
pub struct InpMaterial {
    /// Name (upper-case).
    pub name: String,
    /// `*ELASTIC`: Young's modulus (MPa) and Poisson's ratio.
    pub elastic: Option<(f64, f64)>,
    /// `*HYPERELASTIC` parameters.
    pub hyperelastic: Option<Hyperelastic>,
    /// `*DENSITY`: mass density (tonne/mm^3), needed by `*DLOAD ... GRAV`.
    pub density: Option<f64>,
    /// `*ELASTIC, TYPE=ANISO`: the 21 constants in CalculiX order ([`ANISO_ORDER`]).
    pub aniso: Option<[f64; 21]>,
    /// `*USER MATERIAL, CONSTANTS=n`: the constants; the solver knows CalculiX's built-in
    /// `ELASTIC_FIBER` (a material whose name starts with it, see [`ElasticFiber`]).
    pub user: Option<Vec<f64>>,
}

/// A `*RIGID BODY, NSET=..., REF NODE=..., ROT NODE=...`: the nodes of the set move with a
/// rigid body whose translation is the REF node's displacement and whose rotation vector
/// (rad) the ROT node's DOFs 1-3 carry; `*CLOAD` DOFs 1-3 on the ROT node are a moment (N
/// mm). REF and ROT nodes belong to no element and to no rigid body's set.
#[derive(Clone, Debug, PartialEq)]
pub struct InpRigidBody {
    /// Node set of the tied nodes (upper-case).
    pub nset: String,
    /// Reference node (deck id): the body's reference point.
    pub ref_node: u64,
    /// Rotation node (deck id).
    pub rot_node: u64,
}

/// The law of a `*SPRING` of SPRINGA elements.
#[derive(Clone, Debug, PartialEq)]
pub enum SpringTable {
    /// Linear: force = stiffness (N/mm) times elongation, in tension and compression.
    Linear(f64),
    /// `NONLINEAR`: `(force N, elongation mm)` points, elongation = current length minus
    /// the initial (geometric) length, strictly increasing; CalculiX interpolates linearly
    /// and holds the force constant outside the table.
    Nonlinear(Vec<(f64, f64)>),
}

/// A `*SPRING, ELSET=...[, NONLINEAR]` of SPRINGA elements.
#[derive(Clone, Debug, PartialEq)]
pub struct InpSpring {
    /// Element set (upper-case).
    pub elset: String,
    /// The law.
    pub table: SpringTable,
}

/// The members of a `*SURFACE`.
#[derive(Clone, Debug, PartialEq)]
pub enum SurfaceMembers {
    /// `TYPE=NODE`: node ids.
    Node(Vec<u64>),
    /// `TYPE=ELEMENT`: `(element id, face number n of Sn)`.
    Element(Vec<(u64, u8)>),
}

/// A `*SURFACE, NAME=..., TYPE=NODE|ELEMENT`.
#[derive(Clone, Debug, PartialEq)]
pub struct InpSurface {
    /// Name (upper-case).
    pub name: String,
    /// Members.
    pub members: SurfaceMembers,
}

/// A `*SURFACE INTERACTION, NAME=...` with `*SURFACE BEHAVIOR,
/// PRESSURE-OVERCLOSURE=LINEAR` (`K, sigma_inf`) and an optional `*FRICTION` (`mu,
/// lambda`).
#[derive(Clone, Debug, PartialEq)]
pub struct InpInteraction {
    /// Name (upper-case).
    pub name: String,
    /// Slope `K` of the pressure-overclosure line (MPa/mm). For node-to-surface contact
    /// CalculiX multiplies it by the slave node's area, or by the area of the master face
    /// under it when the slave node belongs to no slave face (a `TYPE=NODE` surface): the
    /// force on a node is `K * A * overclosure`.
    pub slope: f64,
    /// `sigma_inf` (MPa): CalculiX smooths the kink of the line at zero overclosure over
    /// `eps = pi sigma_inf / K` (the force is `K A d (1/2 + atan(d / eps) / pi)`).
    pub sigma_inf: f64,
    /// `*FRICTION`: Coulomb coefficient and stick slope (MPa/mm, scaled by the same area).
    pub friction: Option<(f64, f64)>,
}

/// A `*CONTACT PAIR, INTERACTION=..., TYPE=NODE TO SURFACE|SURFACE TO SURFACE` data line:
/// slave and master surface names.
#[derive(Clone, Debug, PartialEq)]
pub struct InpContactPair {
    /// Interaction name (upper-case).
    pub interaction: String,
    /// Slave surface (a node surface or an element-face surface).
    pub slave: String,
    /// Master surface (element faces).
    pub master: String,
    /// `TYPE=SURFACE TO SURFACE` (the slave must be element faces): read as mortar contact
    /// ([`crate::nl::ContactPair::slave_faces`]).
    pub surface_to_surface: bool,
}

/// A `*TIE, NAME=...[, POSITION TOLERANCE=...][, ADJUST=YES|NO]` data line: slave and
/// master surface names. CalculiX constrains every slave node to the master face it
/// projects onto by linear MPCs (exact, no penalty).
#[derive(Clone, Debug, PartialEq)]
pub struct InpTie {
    /// Name (upper-case).
    pub name: String,
    /// Slave surface (a node surface or an element-face surface: its nodes are tied).
    pub slave: String,
    /// Master surface (element faces).
    pub master: String,
    /// `POSITION TOLERANCE` (mm); `None` when absent (CalculiX then takes 2.5 % of a typical
    /// element size). A tolerance of 0 is solved with that default too (a zero tolerance
    /// would tie no node that is not exactly on the master). Unlike CalculiX, which leaves a
    /// slave node beyond the tolerance untied, the solver refuses it by name.
    pub tolerance: Option<f64>,
    /// `ADJUST=YES` (CalculiX's default): slave nodes are moved onto the master surface
    /// before the analysis; `ADJUST=NO` leaves them where they are.
    pub adjust: bool,
}

/// CalculiX's (and Abaqus') order of the 21 constants of `*ELASTIC, TYPE=ANISO`:
/// D1111, D1122, D2222, D1133, D2233, D3333, D1112, D2212, D3312, D1212, D1113, D2213,
/// D3313, D1213, D1313, D1123, D2223, D3323, D1223, D1323, D2323, as `(row, column)` of the
/// Voigt matrix ordered 11, 22, 33, 12, 13, 23 ([`crate::continuum::VOIGT`]) with
/// engineering shear strains (whose entries equal the tensor components).
pub const ANISO_ORDER: [(usize, usize); 21] = [
    (0, 0),
    (0, 1),
    (1, 1),
    (0, 2),
    (1, 2),
    (2, 2),
    (0, 3),
    (1, 3),
    (2, 3),
    (3, 3),
    (0, 4),
    (1, 4),
    (2, 4),
    (3, 4),
    (4, 4),
    (0, 5),
    (1, 5),
    (2, 5),
    (3, 5),
    (4, 5),
    (5, 5),
];

/// The 21 `*ELASTIC, TYPE=ANISO` constants of a (symmetric) Voigt elasticity matrix.
pub fn aniso_constants(d: &[[f64; 6]; 6]) -> [f64; 21] {
    ANISO_ORDER.map(|(r, c)| d[r][c])
}

/// The symmetric Voigt elasticity matrix of 21 `*ELASTIC, TYPE=ANISO` constants.
pub fn aniso_matrix(c: &[f64; 21]) -> [[f64; 6]; 6] {
    let mut d = [[0.0; 6]; 6];
    for (v, &(r, k)) in c.iter().zip(&ANISO_ORDER) {
        d[r][k] = *v;
        d[k][r] = *v;
    }
    d
}

/// One fibre family of [`ElasticFiber`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fibre {
    /// Unit direction in the reference configuration (its sign does not matter).
    pub direction: [f64; 3],
    /// `k1` (MPa).
    pub k1: f64,
    /// `k2` (dimensionless).
    pub k2: f64,
}

/// CalculiX's built-in user material `ELASTIC_FIBER` (`*MATERIAL, NAME=ELASTIC_FIBER...`,
/// `*USER MATERIAL, CONSTANTS=2+4n`: `C10, D1`, then per fibre `a1, a2, k1, k2` with
/// `a3 = +sqrt(1 - a1^2 - a2^2)`): `W = C10 (I1bar - 3) + (J - 1)^2 / D1 + sum k1 / (2 k2)
/// (exp(k2 (I4bar - 1)^2) - 1)`, a fibre carrying load only when `I4bar > 1`. This is
/// [`crate::Hgo`] with isochoric invariants, `kappa = 0` and `K = 2 / D1`.
#[derive(Clone, Debug, PartialEq)]
pub struct ElasticFiber {
    /// `C10` (MPa).
    pub c10: f64,
    /// `D1` (1/MPa).
    pub d1: f64,
    /// Fibre families (CalculiX takes up to four).
    pub fibres: Vec<Fibre>,
}

impl ElasticFiber {
    /// The `*USER MATERIAL` constants: `C10, D1`, then per fibre `a1, a2, k1, k2` with the
    /// direction turned to `a3 >= 0` (the sign of a fibre does not matter).
    pub fn constants(&self) -> Vec<f64> {
        let mut c = vec![self.c10, self.d1];
        for f in &self.fibres {
            let s = if f.direction[2] < 0.0 { -1.0 } else { 1.0 };
            let (a1, a2) = (s * f.direction[0], s * f.direction[1]);
            // CalculiX stops when a1^2 + a2^2 > 1 (it takes a3 = sqrt(1 - a1^2 - a2^2)):
            // a fibre in the x-y plane must not round past the unit circle.
            let r = (a1 * a1 + a2 * a2).sqrt();
            let k = if r > 1.0 - 1e-15 {
                (1.0 - 1e-15) / r
            } else {
                1.0
            };
            c.extend([k * a1, k * a2, f.k1, f.k2]);
        }
        c
    }

    /// Reads the constants back; `None` when their number is not `2 + 4 n` (n = 1..4) or a
    /// direction has `a1^2 + a2^2 > 1`.
    pub fn from_constants(c: &[f64]) -> Option<ElasticFiber> {
        if c.len() < 6 || !(c.len() - 2).is_multiple_of(4) || c.len() > 18 {
            return None;
        }
        let mut fibres = Vec::new();
        for f in c[2..].chunks(4) {
            let r2 = f[0] * f[0] + f[1] * f[1];
            if r2 > 1.0 + 1e-12 {
                return None;
            }
            fibres.push(Fibre {
                direction: [f[0], f[1], (1.0 - r2).max(0.0).sqrt()],
                k1: f[2],
                k2: f[3],
            });
        }
        Some(ElasticFiber {
            c10: c[0],
            d1: c[1],
            fibres,
        })
    }
}

/// A solid material as a deck writes it ([`crate::continuum::SolidMaterial::inp_law`]).
#[derive(Clone, Debug, PartialEq)]
pub enum InpLaw {
    /// `*ELASTIC` isotropic (`E` MPa, `nu`): St Venant-Kirchhoff under NLGEOM.
    Elastic {
        /// Young's modulus (MPa).
        e: f64,
        /// Poisson's ratio.
        nu: f64,
    },
    /// `*ELASTIC, TYPE=ANISO`, the constants in [`ANISO_ORDER`]: `S = D E` under NLGEOM.
    Aniso([f64; 21]),
    /// `*HYPERELASTIC`.
    Hyperelastic(Hyperelastic),
    /// CalculiX's `ELASTIC_FIBER` user material.
    ElasticFiber(ElasticFiber),
}

/// The deck form of a material at one element, and what it approximates, if anything.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenLaw {
    /// The law written.
    pub law: InpLaw,
    /// `None` when exact; otherwise what the deck's law differs in.
    pub approximation: Option<String>,
}

impl WrittenLaw {
    /// An exact deck form.
    pub fn exact(law: InpLaw) -> WrittenLaw {
        WrittenLaw {
            law,
            approximation: None,
        }
    }
}

/// A `*SOLID SECTION`: the material of an element set.
#[derive(Clone, Debug, PartialEq)]
pub struct SolidSection {
    /// Element set name (upper-case).
    pub elset: String,
    /// Material name (upper-case).
    pub material: String,
    /// First value of the optional data line: the cross-section area (mm^2) of truss
    /// elements (ignored for solids).
    pub area: Option<f64>,
}

/// Cross-section shape of a `*BEAM SECTION` (dimensions in mm).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BeamShape {
    /// `SECTION=CIRC`: solid circle of radius `r` (the deck's data line holds the diameter
    /// `2 r`, as CalculiX reads it).
    Circ {
        /// Radius (mm).
        r: f64,
    },
    /// `SECTION=RECT`: rectangle of width `a` along the first cross-section axis `n1` and
    /// height `b` along the second, `n2 = t x n1` (`t` the beam axis, node 1 to node 2).
    Rect {
        /// Width along `n1` (mm).
        a: f64,
        /// Height along `n2` (mm).
        b: f64,
    },
}

/// A `*BEAM SECTION, ELSET=..., MATERIAL=..., SECTION=CIRC|RECT` of B31 or B32 elements: the
/// dimensions line and the optional orientation line.
#[derive(Clone, Debug, PartialEq)]
pub struct InpBeamSection {
    /// Element set name (upper-case).
    pub elset: String,
    /// Material name (upper-case; it needs `*ELASTIC`).
    pub material: String,
    /// Shape and dimensions.
    pub shape: BeamShape,
    /// Direction of the first cross-section axis `n1` as written (its part normal to the
    /// beam is used); `None` when the line is absent: `(0, 0, -1)`, as in Abaqus and
    /// CalculiX ([`InpBeamSection::DEFAULT_N1`]).
    pub orientation: Option<[f64; 3]>,
}

impl InpBeamSection {
    /// The `n1` direction Abaqus and CalculiX take when the orientation line is absent.
    pub const DEFAULT_N1: [f64; 3] = [0.0, 0.0, -1.0];

    /// The first cross-section axis as given, or the default.
    pub fn n1(&self) -> [f64; 3] {
        self.orientation.unwrap_or(Self::DEFAULT_N1)
    }

    /// The engine's section: area, second moments about `n1` (`iy`) and `n2` (`iz`),
    /// torsion constant and, since B31 is shear flexible (Timoshenko), Cowper's shear area
    /// (`6 (1 + nu) / (7 + 6 nu) A` for the circle, `10 (1 + nu) / (12 + 11 nu) A` for the
    /// rectangle). Rectangle torsion: `J = p q^3 (1/3 - 0.21 q/p (1 - q^4 / (12 p^4)))`
    /// (Roark; `p >= q` the sides), within 0.5 % of the series solution.
    pub fn section(&self, nu: f64) -> crate::nl::BeamSection {
        match self.shape {
            BeamShape::Circ { r } => {
                let s = crate::nl::BeamSection::circle(2.0 * r);
                s.with_shear_area(6.0 * (1.0 + nu) / (7.0 + 6.0 * nu) * s.area)
            }
            BeamShape::Rect { a, b } => {
                let (p, q) = (a.max(b), a.min(b));
                let area = a * b;
                crate::nl::BeamSection {
                    area,
                    // About n1 (local y): the extent along n2 (b) is the lever arm.
                    iy: a * b.powi(3) / 12.0,
                    iz: b * a.powi(3) / 12.0,
                    j: p * q.powi(3)
                        * (1.0 / 3.0 - 0.21 * q / p * (1.0 - q.powi(4) / (12.0 * p.powi(4)))),
                    shear_area: Some(10.0 * (1.0 + nu) / (12.0 + 11.0 * nu) * area),
                    // The corner: the stress report's r M / I is then an upper bound.
                    outer_radius: 0.5 * a.hypot(b),
                }
            }
        }
    }
}

/// A node or an element referred to by id, or a set by name.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// One node or element by deck id.
    Id(u64),
    /// A set by (upper-case) name.
    Set(String),
}

/// A `*BOUNDARY` line: DOFs `first..=last` (1 = x, 2 = y, 3 = z) prescribed to `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Boundary {
    /// Node or node set.
    pub target: Target,
    /// First DOF (1-based).
    pub first: u8,
    /// Last DOF (1-based).
    pub last: u8,
    /// Prescribed displacement (mm).
    pub value: f64,
}

/// A `*CLOAD` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Cload {
    /// Node or node set.
    pub target: Target,
    /// DOF (1-based).
    pub dof: u8,
    /// Force (N).
    pub value: f64,
}

/// A `*DLOAD` line: pressure on face `Pn` of an element or of every element of a set.
#[derive(Clone, Debug, PartialEq)]
pub struct Dload {
    /// Element or element set.
    pub target: Target,
    /// Face number `n` of `Pn` (1-based).
    pub face: u8,
    /// Pressure (MPa), positive pushing against the face.
    pub value: f64,
}

/// A `*DLOAD` gravity line `element|elset, GRAV, magnitude, nx, ny, nz`: a uniform
/// acceleration acting on the mass (`*DENSITY`) of the elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Gravity {
    /// Element or element set.
    pub target: Target,
    /// Magnitude of the acceleration (mm/s^2; 9810 for standard gravity).
    pub magnitude: f64,
    /// Direction as written in the deck (normalised when the load is built, as CalculiX
    /// does; a zero vector is refused).
    pub direction: [f64; 3],
}

impl Gravity {
    /// The acceleration vector (mm/s^2): the magnitude along the normalised direction.
    pub fn acceleration(&self) -> [f64; 3] {
        let d = self.direction;
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        d.map(|c| self.magnitude * c / n)
    }
}

/// A `*STEP ... *END STEP` block.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Step {
    /// `NLGEOM` given (geometrically nonlinear).
    pub nlgeom: bool,
    /// `*STEP, INC=n`: the most increments the step may take (Abaqus default 100).
    pub max_increments: Option<usize>,
    /// `*STEP, NAME=...` (as written).
    pub name: Option<String>,
    /// `*STATIC, DIRECT`: fixed increments of the initial size, no cut-back.
    pub direct: bool,
    /// Data line of `*STATIC` (initial increment, period, min, max), possibly empty.
    pub static_params: Vec<f64>,
    /// `*BOUNDARY` lines of this step.
    pub boundaries: Vec<Boundary>,
    /// `*CLOAD` lines.
    pub cloads: Vec<Cload>,
    /// `*DLOAD` lines.
    pub dloads: Vec<Dload>,
    /// `*DLOAD ... GRAV` lines.
    pub gravity: Vec<Gravity>,
    /// `*MODEL CHANGE, TYPE=ELEMENT, REMOVE`: elements and element sets removed at the
    /// start of the step.
    pub remove: Vec<Target>,
    /// Output requests (`*NODE PRINT` ...), verbatim lines (keyword and data).
    pub outputs: Vec<String>,
}

/// A parsed deck (the supported subset), with the deck's own ids.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Deck {
    /// `*HEADING` lines.
    pub heading: Vec<String>,
    /// Comments written as `** ...` lines after the heading (not read back: the parser
    /// skips comments).
    pub comments: Vec<String>,
    /// Nodes `(id, [x, y, z])` in file order.
    pub nodes: Vec<(u64, [f64; 3])>,
    /// Elements in file order.
    pub elements: Vec<InpElement>,
    /// Node sets (upper-case names) of node ids.
    pub node_sets: BTreeMap<String, Vec<u64>>,
    /// Element sets (upper-case names) of element ids.
    pub element_sets: BTreeMap<String, Vec<u64>>,
    /// Materials.
    pub materials: Vec<InpMaterial>,
    /// Sections.
    pub sections: Vec<SolidSection>,
    /// `*BEAM SECTION`s (of B31 and B32 elements).
    pub beam_sections: Vec<InpBeamSection>,
    /// `*BOUNDARY` lines of the model data (before the first step).
    pub boundaries: Vec<Boundary>,
    /// `*RIGID BODY` definitions.
    pub rigid_bodies: Vec<InpRigidBody>,
    /// `*SPRING` definitions (of SPRINGA elements).
    pub springs: Vec<InpSpring>,
    /// `*SURFACE` definitions.
    pub surfaces: Vec<InpSurface>,
    /// `*SURFACE INTERACTION` definitions.
    pub interactions: Vec<InpInteraction>,
    /// `*CONTACT PAIR` lines (node-to-surface penalty contact).
    pub contact_pairs: Vec<InpContactPair>,
    /// `*TIE` constraints.
    pub ties: Vec<InpTie>,
    /// Steps.
    pub steps: Vec<Step>,
}

/// A keyword line split into its name and parameters.
struct Keyword {
    name: String,
    params: Vec<(String, Option<String>)>,
    line: usize,
}

impl Keyword {
    fn parse(text: &str, line: usize) -> Self {
        let mut parts = text[1..].split(',');
        let name = normalise(parts.next().unwrap_or(""));
        let params = parts
            .filter(|p| !p.trim().is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (normalise(k), Some(v.trim().to_string())),
                None => (normalise(p), None),
            })
            .collect();
        Keyword { name, params, line }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, key: &str) -> bool {
        self.params.iter().any(|(k, _)| k == key)
    }

    fn require(&self, key: &str) -> Result<String, InpError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v.to_ascii_uppercase()),
            _ => err(
                self.line,
                format!("*{} needs the parameter {key}=...", self.name),
            ),
        }
    }
}

/// Upper-case with inner blanks collapsed (keywords: "NODE  PRINT" == "NODE PRINT").
fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

fn parse_f64(tok: &str, line: usize, what: &str) -> Result<f64, InpError> {
    let t = tok.trim();
    // Fortran double-precision exponents (1.5D3) are common in decks.
    let v: Result<f64, _> = t.replace(['d', 'D'], "e").parse();
    match v {
        Ok(v) if v.is_finite() => Ok(v),
        _ => err(line, format!("{what}: {t:?} is not a finite number")),
    }
}

fn parse_id(tok: &str, line: usize, what: &str) -> Result<u64, InpError> {
    let t = tok.trim();
    match t.parse::<u64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => err(line, format!("{what}: {t:?} is not a positive integer id")),
    }
}

fn parse_dof(tok: &str, line: usize) -> Result<u8, InpError> {
    let t = tok.trim();
    match t.parse::<u8>() {
        Ok(v) if (1..=6).contains(&v) => Ok(v),
        _ => err(line, format!("degree of freedom {t:?}: expected 1..6")),
    }
}

fn fields(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split(',').map(str::trim).collect();
    // A trailing comma leaves an empty last field.
    if v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// Parser state: which block the data lines belong to.
enum Block {
    None,
    Heading,
    Node(Option<String>),
    Element(ElementType, Option<String>),
    Set {
        elements: bool,
        name: String,
        generate: bool,
    },
    Elastic,
    /// `*ELASTIC, TYPE=ANISO`: the constants read so far.
    Aniso(Vec<f64>),
    /// `*USER MATERIAL, CONSTANTS=n`: n.
    User(usize),
    /// `*SPRING`: nonlinear.
    Spring(bool),
    /// `*MODEL CHANGE, TYPE=ELEMENT, REMOVE` data.
    Remove,
    Hyper(bool),
    Density,
    Section,
    /// `*BEAM SECTION` data: 0 before the dimensions line, 1 before the orientation line.
    BeamSection(u8),
    Boundary,
    /// `*SURFACE` data: index into `deck.surfaces`.
    Surface(usize),
    /// `*SURFACE BEHAVIOR` data line.
    Behavior(usize),
    /// `*FRICTION` data line.
    Friction(usize),
    /// `*CONTACT PAIR` data: the interaction, and whether surface to surface.
    ContactPair(String, bool),
    /// `*TIE` data: name, tolerance, adjust.
    Tie(String, Option<f64>, bool),
    /// After a `*TIE`'s one data line: a second one is refused with a hint.
    TieDone(String),
    Static,
    Cload,
    Dload,
    Output,
}

impl Deck {
    /// Parses a deck. Errors name the line and what is wrong.
    pub fn parse(text: &str) -> Result<Deck, InpError> {
        let mut deck = Deck::default();
        let mut node_index: HashMap<u64, usize> = HashMap::new();
        let mut elem_index: HashMap<u64, usize> = HashMap::new();
        let mut block = Block::None;
        let mut step: Option<Step> = None;
        let mut material: Option<usize> = None;
        let mut interaction: Option<usize> = None;
        // A continued element line: tokens so far, and the line it started on.
        let mut pending: Vec<String> = Vec::new();
        let mut pending_line = 0;
        // Line and step of every *DLOAD GRAV line, to check the densities at the end.
        let mut grav_lines: Vec<(usize, usize)> = Vec::new();
        // (line, material, declared count) of each *USER MATERIAL; (line, interaction) of
        // each *SURFACE INTERACTION: checked complete at the end.
        let mut user_lines: Vec<(usize, usize, usize)> = Vec::new();
        let mut interaction_lines: Vec<(usize, usize)> = Vec::new();
        // Line of every *SOLID SECTION, to check the truss areas at the end.
        let mut section_lines: Vec<usize> = Vec::new();
        // Line of every *BEAM SECTION, for the checks at the end.
        let mut beam_section_lines: Vec<usize> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with("**") {
                continue;
            }
            if t.starts_with('*') {
                if !pending.is_empty() {
                    return err(
                        pending_line,
                        "element line ends with ',' but no continuation line follows",
                    );
                }
                let kw = Keyword::parse(t, line);
                if !matches!(
                    kw.name.as_str(),
                    "ELASTIC" | "HYPERELASTIC" | "DENSITY" | "USER MATERIAL"
                ) {
                    material = None;
                }
                if !matches!(kw.name.as_str(), "SURFACE BEHAVIOR" | "FRICTION") {
                    interaction = None;
                }
                block = match kw.name.as_str() {
                    "HEADING" => Block::Heading,
                    "NODE" => Block::Node(kw.get("NSET").map(str::to_ascii_uppercase)),
                    "ELEMENT" => {
                        let ty = kw.require("TYPE")?;
                        let Some(et) = ElementType::parse(&ty) else {
                            return err(line, format!("element type {ty} is not supported (supported: C3D4, C3D10, C3D8, C3D8I, C3D6, T3D2, B31, B32, SPRINGA)"));
                        };
                        Block::Element(et, kw.get("ELSET").map(str::to_ascii_uppercase))
                    }
                    "NSET" | "ELSET" => {
                        let elements = kw.name == "ELSET";
                        let name = kw.require(if elements { "ELSET" } else { "NSET" })?;
                        let map = if elements {
                            &mut deck.element_sets
                        } else {
                            &mut deck.node_sets
                        };
                        map.entry(name.clone()).or_default();
                        Block::Set {
                            elements,
                            name,
                            generate: kw.has("GENERATE"),
                        }
                    }
                    "MATERIAL" => {
                        let name = kw.require("NAME")?;
                        if deck.materials.iter().any(|m| m.name == name) {
                            return err(line, format!("material {name} is defined twice"));
                        }
                        deck.materials.push(InpMaterial {
                            name,
                            elastic: None,
                            hyperelastic: None,
                            density: None,
                            aniso: None,
                            user: None,
                        });
                        material = Some(deck.materials.len() - 1);
                        Block::None
                    }
                    "USER MATERIAL" => {
                        if material.is_none() {
                            return err(line, "*USER MATERIAL must follow *MATERIAL");
                        }
                        let n = kw.require("CONSTANTS")?;
                        match n.trim().parse::<usize>() {
                            Ok(n) if n > 0 => {
                                user_lines.push((line, material.expect("checked above"), n));
                                Block::User(n)
                            }
                            _ => {
                                return err(line, format!("*USER MATERIAL, CONSTANTS={n}: expected a positive integer"));
                            }
                        }
                    }
                    "RIGID BODY" => {
                        if let Some((k, _)) = kw
                            .params
                            .iter()
                            .find(|(k, _)| !matches!(k.as_str(), "NSET" | "REF NODE" | "ROT NODE"))
                        {
                            return err(line, format!("*RIGID BODY parameter {k} is not supported (supported: NSET, REF NODE, ROT NODE)"));
                        }
                        let nset = kw.require("NSET")?;
                        if !deck.node_sets.contains_key(&nset) {
                            return err(line, format!("*RIGID BODY: node set {nset} is not defined (define it before the body)"));
                        }
                        let node = |key: &str| -> Result<u64, InpError> {
                            let v = kw.require(key)?;
                            let id = parse_id(&v, line, key)?;
                            if !node_index.contains_key(&id) {
                                return err(line, format!("*RIGID BODY, {key}={id}: node {id} is not defined (define it before the body)"));
                            }
                            Ok(id)
                        };
                        let (ref_node, rot_node) = (node("REF NODE")?, node("ROT NODE")?);
                        if ref_node == rot_node {
                            return err(
                                line,
                                "*RIGID BODY: REF NODE and ROT NODE must be two different nodes",
                            );
                        }
                        deck.rigid_bodies.push(InpRigidBody {
                            nset,
                            ref_node,
                            rot_node,
                        });
                        Block::None
                    }
                    "SPRING" => {
                        if let Some((k, _)) = kw
                            .params
                            .iter()
                            .find(|(k, _)| !matches!(k.as_str(), "ELSET" | "NONLINEAR"))
                        {
                            return err(line, format!("*SPRING parameter {k} is not supported (supported: ELSET, NONLINEAR)"));
                        }
                        let elset = kw.require("ELSET")?;
                        if !deck.element_sets.contains_key(&elset) {
                            return err(line, format!("*SPRING: element set {elset} is not defined (define it before the spring)"));
                        }
                        let nonlinear = kw.has("NONLINEAR");
                        deck.springs.push(InpSpring {
                            elset,
                            table: if nonlinear {
                                SpringTable::Nonlinear(Vec::new())
                            } else {
                                SpringTable::Linear(f64::NAN)
                            },
                        });
                        Block::Spring(nonlinear)
                    }
                    "ELASTIC" | "HYPERELASTIC" | "DENSITY" => {
                        if material.is_none() {
                            return err(line, format!("*{} must follow *MATERIAL", kw.name));
                        }
                        if kw.name == "DENSITY" {
                            if let Some((k, _)) = kw.params.first() {
                                return err(line, format!("*DENSITY parameter {k} is not supported (one constant density, without parameters)"));
                            }
                            Block::Density
                        } else if kw.name == "ELASTIC" {
                            if kw
                                .get("TYPE")
                                .is_some_and(|t| t.eq_ignore_ascii_case("ANISO"))
                            {
                                Block::Aniso(Vec::new())
                            } else if let Some(ty) = kw.get("TYPE") {
                                if !ty.eq_ignore_ascii_case("ISO") {
                                    return err(
                                        line,
                                        format!(
                                            "*ELASTIC, TYPE={ty} is not supported (ISO or ANISO)"
                                        ),
                                    );
                                }
                                Block::Elastic
                            } else {
                                Block::Elastic
                            }
                        } else if kw.has("NEO HOOKE") {
                            Block::Hyper(false)
                        } else if kw.has("MOONEY-RIVLIN") {
                            Block::Hyper(true)
                        } else {
                            return err(
                                line,
                                "*HYPERELASTIC: only NEO HOOKE and MOONEY-RIVLIN are supported",
                            );
                        }
                    }
                    "SOLID SECTION" => {
                        let elset = kw.require("ELSET")?;
                        let mat = kw.require("MATERIAL")?;
                        if !deck.element_sets.contains_key(&elset) {
                            return err(line, format!("*SOLID SECTION: element set {elset} is not defined (define it before the section)"));
                        }
                        deck.sections.push(SolidSection {
                            elset,
                            material: mat,
                            area: None,
                        });
                        section_lines.push(line);
                        Block::Section
                    }
                    "BEAM SECTION" => {
                        if let Some((k, _)) = kw
                            .params
                            .iter()
                            .find(|(k, _)| !matches!(k.as_str(), "ELSET" | "MATERIAL" | "SECTION"))
                        {
                            return err(line, format!("*BEAM SECTION parameter {k} is not supported (supported: ELSET, MATERIAL, SECTION)"));
                        }
                        let elset = kw.require("ELSET")?;
                        let mat = kw.require("MATERIAL")?;
                        let shape = match kw.require("SECTION")?.as_str() {
                            "CIRC" => BeamShape::Circ { r: 0.0 },
                            "RECT" => BeamShape::Rect { a: 0.0, b: 0.0 },
                            other => {
                                return err(line, format!("*BEAM SECTION, SECTION={other} is not supported (supported: CIRC with the diameter, RECT with width and height)"));
                            }
                        };
                        if !deck.element_sets.contains_key(&elset) {
                            return err(line, format!("*BEAM SECTION: element set {elset} is not defined (define it before the section)"));
                        }
                        deck.beam_sections.push(InpBeamSection {
                            elset,
                            material: mat,
                            shape,
                            orientation: None,
                        });
                        beam_section_lines.push(line);
                        Block::BeamSection(0)
                    }
                    "SURFACE" => {
                        if step.is_some() {
                            return err(
                                line,
                                "*SURFACE must be in the model data (before the first *STEP)",
                            );
                        }
                        if let Some((k, _)) = kw
                            .params
                            .iter()
                            .find(|(k, _)| !matches!(k.as_str(), "NAME" | "TYPE"))
                        {
                            return err(line, format!("*SURFACE parameter {k} is not supported (supported: NAME, TYPE=NODE|ELEMENT)"));
                        }
                        let name = kw.require("NAME")?.to_ascii_uppercase();
                        if deck.surfaces.iter().any(|s| s.name == name) {
                            return err(line, format!("surface {name} is defined twice"));
                        }
                        let members = match kw.get("TYPE").map(str::to_ascii_uppercase).as_deref() {
                            None | Some("ELEMENT") => SurfaceMembers::Element(Vec::new()),
                            Some("NODE") => SurfaceMembers::Node(Vec::new()),
                            Some(other) => {
                                return err(
                                    line,
                                    format!(
                                        "*SURFACE, TYPE={other} is not supported (NODE or ELEMENT)"
                                    ),
                                );
                            }
                        };
                        deck.surfaces.push(InpSurface { name, members });
                        Block::Surface(deck.surfaces.len() - 1)
                    }
                    "SURFACE INTERACTION" => {
                        let name = kw.require("NAME")?.to_ascii_uppercase();
                        if deck.interactions.iter().any(|s| s.name == name) {
                            return err(
                                line,
                                format!("surface interaction {name} is defined twice"),
                            );
                        }
                        deck.interactions.push(InpInteraction {
                            name,
                            slope: f64::NAN,
                            sigma_inf: 0.0,
                            friction: None,
                        });
                        interaction = Some(deck.interactions.len() - 1);
                        interaction_lines.push((line, deck.interactions.len() - 1));
                        Block::None
                    }
                    "SURFACE BEHAVIOR" | "FRICTION" => {
                        let Some(i) = interaction else {
                            return err(
                                line,
                                format!("*{} must follow *SURFACE INTERACTION", kw.name),
                            );
                        };
                        if kw.name == "FRICTION" {
                            if let Some((k, _)) = kw.params.first() {
                                return err(line, format!("*FRICTION parameter {k} is not supported (give mu, stick slope on the data line)"));
                            }
                            Block::Friction(i)
                        } else {
                            let ok = kw.params.len() == 1
                                && kw
                                    .get("PRESSURE-OVERCLOSURE")
                                    .is_some_and(|v| v.eq_ignore_ascii_case("LINEAR"));
                            if !ok {
                                return err(line, "*SURFACE BEHAVIOR: only PRESSURE-OVERCLOSURE=LINEAR is supported");
                            }
                            Block::Behavior(i)
                        }
                    }
                    "CONTACT PAIR" => {
                        if step.is_some() {
                            return err(
                                line,
                                "*CONTACT PAIR must be in the model data (before the first *STEP)",
                            );
                        }
                        if let Some((k, _)) = kw
                            .params
                            .iter()
                            .find(|(k, _)| !matches!(k.as_str(), "INTERACTION" | "TYPE"))
                        {
                            return err(line, format!("*CONTACT PAIR parameter {k} is not supported (supported: INTERACTION, TYPE=NODE TO SURFACE|SURFACE TO SURFACE)"));
                        }
                        let ty = kw.require("TYPE")?;
                        let s2s = match normalise(&ty).as_str() {
                            "NODE TO SURFACE" => false,
                            "SURFACE TO SURFACE" => true,
                            _ => return err(line, format!("*CONTACT PAIR, TYPE={ty} is not supported (NODE TO SURFACE or SURFACE TO SURFACE; MORTAR is read as neither)")),
                        };
                        let name = kw.require("INTERACTION")?.to_ascii_uppercase();
                        if !deck.interactions.iter().any(|i| i.name == name) {
                            return err(line, format!("*CONTACT PAIR: surface interaction {name} is not defined (define it before the pair)"));
                        }
                        Block::ContactPair(name, s2s)
                    }
                    "TIE" => {
                        if step.is_some() {
                            return err(
                                line,
                                "*TIE must be in the model data (before the first *STEP)",
                            );
                        }
                        if let Some((k, _)) = kw.params.iter().find(|(k, _)| {
                            !matches!(k.as_str(), "NAME" | "POSITION TOLERANCE" | "ADJUST")
                        }) {
                            return err(line, format!("*TIE parameter {k} is not supported (supported: NAME, POSITION TOLERANCE, ADJUST; cyclic symmetry and fluid ties are not)"));
                        }
                        let name = match kw.get("NAME") {
                            Some(n) if !n.trim().is_empty() => n.trim().to_ascii_uppercase(),
                            _ => format!("TIE{}", deck.ties.len() + 1),
                        };
                        if deck.ties.iter().any(|t| t.name == name) {
                            return err(line, format!("tie {name} is defined twice"));
                        }
                        let tolerance = match kw.get("POSITION TOLERANCE") {
                            None => None,
                            Some(v) => {
                                let t = parse_f64(v, line, "*TIE, POSITION TOLERANCE")?;
                                if t < 0.0 {
                                    return err(line, format!("*TIE, POSITION TOLERANCE={v}: the tolerance must be >= 0"));
                                }
                                Some(t)
                            }
                        };
                        let adjust = match kw.get("ADJUST").map(str::to_ascii_uppercase).as_deref()
                        {
                            None | Some("YES") => true,
                            Some("NO") => false,
                            Some(other) => {
                                return err(
                                    line,
                                    format!("*TIE, ADJUST={other}: expected YES or NO"),
                                );
                            }
                        };
                        Block::Tie(name, tolerance, adjust)
                    }
                    "BOUNDARY" => {
                        // Every parameter changes the meaning (OP, AMPLITUDE, TYPE, FIXED:
                        // hold at the current value, ...): refused rather than ignored.
                        if let Some((k, _)) = kw.params.first() {
                            return err(
                                line,
                                format!("*BOUNDARY parameter {k} is not supported (give the DOFs and values on the data lines, without parameters)"),
                            );
                        }
                        Block::Boundary
                    }
                    "STEP" => {
                        if step.is_some() {
                            return err(
                                line,
                                "*STEP inside a step: close the previous one with *END STEP",
                            );
                        }
                        if let Some((k, _)) = kw
                            .params
                            .iter()
                            .find(|(k, _)| !matches!(k.as_str(), "NLGEOM" | "INC" | "NAME"))
                        {
                            return err(line, format!("*STEP parameter {k} is not supported (supported: NLGEOM, INC, NAME)"));
                        }
                        let nlgeom = match kw.params.iter().find(|(k, _)| k == "NLGEOM") {
                            None => false,
                            Some((_, None)) => true,
                            Some((_, Some(v))) => !v.eq_ignore_ascii_case("NO"),
                        };
                        let max_increments = match kw.get("INC") {
                            None => None,
                            Some(v) => match v.trim().parse::<usize>() {
                                Ok(n) if n > 0 => Some(n),
                                _ => {
                                    return err(
                                        line,
                                        format!("*STEP, INC={v}: expected a positive integer"),
                                    )
                                }
                            },
                        };
                        step = Some(Step {
                            nlgeom,
                            max_increments,
                            name: kw.get("NAME").map(str::to_string),
                            ..Default::default()
                        });
                        Block::None
                    }
                    "STATIC" | "CLOAD" | "DLOAD" | "END STEP" | "NODE FILE" | "EL FILE"
                    | "NODE PRINT" | "EL PRINT" | "MODEL CHANGE" => {
                        let Some(s) = step.as_mut() else {
                            return err(
                                line,
                                format!("*{} must be inside *STEP ... *END STEP", kw.name),
                            );
                        };
                        match kw.name.as_str() {
                            "STATIC" => {
                                if let Some((k, _)) = kw.params.iter().find(|(k, _)| k != "DIRECT")
                                {
                                    return err(line, format!("*STATIC parameter {k} is not supported (supported: DIRECT)"));
                                }
                                // DIRECT=NO STOP accepts non-converged increments: refused.
                                if let Some(v) = kw.get("DIRECT") {
                                    return err(line, format!("*STATIC, DIRECT={v} is not supported (plain DIRECT only: a non-converged increment is never accepted)"));
                                }
                                s.direct = kw.has("DIRECT");
                                Block::Static
                            }
                            "CLOAD" | "DLOAD" => {
                                // OP, AMPLITUDE, FOLLOWER, ... all change the meaning.
                                if let Some((k, _)) = kw.params.first() {
                                    return err(
                                        line,
                                        format!(
                                            "*{} parameter {k} is not supported (loads without parameters only)",
                                            kw.name
                                        ),
                                    );
                                }
                                if kw.name == "CLOAD" {
                                    Block::Cload
                                } else {
                                    Block::Dload
                                }
                            }
                            "END STEP" => {
                                deck.steps.push(step.take().unwrap_or_default());
                                Block::None
                            }
                            "MODEL CHANGE" => {
                                let ok = kw
                                    .get("TYPE")
                                    .is_some_and(|t| t.eq_ignore_ascii_case("ELEMENT"))
                                    && kw.has("REMOVE")
                                    && kw.params.len() == 2;
                                if !ok {
                                    return err(
                                        line,
                                        "*MODEL CHANGE: only TYPE=ELEMENT, REMOVE is supported",
                                    );
                                }
                                Block::Remove
                            }
                            _ => {
                                s.outputs.push(t.to_string());
                                Block::Output
                            }
                        }
                    }
                    other => {
                        return err(line, format!("keyword *{other} is not supported (see the list in `spinetwin_fem::inp`)"));
                    }
                };
                continue;
            }
            // Data line.
            match &mut block {
                Block::None => {
                    return err(line, format!("data line {t:?} outside any keyword block"));
                }
                Block::TieDone(name) => {
                    return err(line, format!("*TIE, NAME={name} takes one data line (slave, master): give each further pair its own *TIE"));
                }
                Block::Heading => deck.heading.push(t.to_string()),
                Block::Node(nset) => {
                    let f = fields(t);
                    if !(3..=4).contains(&f.len()) {
                        return err(
                            line,
                            format!("*NODE line needs id, x, y[, z]; got {} fields", f.len()),
                        );
                    }
                    let id = parse_id(f[0], line, "node id")?;
                    let mut x = [0.0; 3];
                    for (d, tok) in f[1..].iter().enumerate() {
                        x[d] = parse_f64(tok, line, "node coordinate")?;
                    }
                    if node_index.insert(id, deck.nodes.len()).is_some() {
                        return err(line, format!("node {id} is defined twice"));
                    }
                    deck.nodes.push((id, x));
                    if let Some(s) = nset {
                        deck.node_sets.entry(s.clone()).or_default().push(id);
                    }
                }
                Block::Element(et, elset) => {
                    if pending.is_empty() {
                        pending_line = line;
                    }
                    let cont = t.ends_with(',');
                    pending.extend(fields(t).into_iter().map(String::from));
                    let need = 1 + et.num_nodes();
                    if cont && pending.len() < need {
                        continue;
                    }
                    if pending.len() != need {
                        return err(
                            pending_line,
                            format!(
                                "{} element line needs an id and {} nodes; got {} fields",
                                et.name(),
                                et.num_nodes(),
                                pending.len()
                            ),
                        );
                    }
                    let id = parse_id(&pending[0], pending_line, "element id")?;
                    let mut nodes = Vec::with_capacity(need - 1);
                    for tok in &pending[1..] {
                        let n = parse_id(tok, pending_line, "element node")?;
                        if !node_index.contains_key(&n) {
                            return err(pending_line, format!("element {id} refers to node {n}, which is not defined (define nodes before the elements that use them)"));
                        }
                        nodes.push(n);
                    }
                    pending.clear();
                    if elem_index.insert(id, deck.elements.len()).is_some() {
                        return err(line, format!("element {id} is defined twice"));
                    }
                    deck.elements.push(InpElement {
                        id,
                        etype: *et,
                        nodes,
                    });
                    if let Some(s) = elset {
                        deck.element_sets.entry(s.clone()).or_default().push(id);
                    }
                }
                Block::Set {
                    elements,
                    name,
                    generate,
                } => {
                    let f = fields(t);
                    let mut add: Vec<u64> = Vec::new();
                    if *generate {
                        if !(2..=3).contains(&f.len()) {
                            return err(line, "GENERATE needs first, last[, step]");
                        }
                        let a = parse_id(f[0], line, "GENERATE first")?;
                        let b = parse_id(f[1], line, "GENERATE last")?;
                        let s = if f.len() == 3 {
                            parse_id(f[2], line, "GENERATE step")?
                        } else {
                            1
                        };
                        if b < a {
                            return err(line, format!("GENERATE: last {b} is below first {a}"));
                        }
                        add.extend((a..=b).step_by(s as usize));
                    } else {
                        for tok in f {
                            if tok.starts_with(|c: char| c.is_ascii_digit()) {
                                add.push(parse_id(tok, line, "set member")?);
                            } else {
                                let other = tok.to_ascii_uppercase();
                                let map = if *elements {
                                    &deck.element_sets
                                } else {
                                    &deck.node_sets
                                };
                                match map.get(&other) {
                                    Some(v) => add.extend(v.iter().copied()),
                                    None => {
                                        return err(
                                            line,
                                            format!(
                                            "set member {tok:?} is neither an id nor a defined set"
                                        ),
                                        )
                                    }
                                }
                            }
                        }
                    }
                    let index = if *elements { &elem_index } else { &node_index };
                    if let Some(m) = add.iter().find(|m| !index.contains_key(m)) {
                        let what = if *elements { "element" } else { "node" };
                        return err(
                            line,
                            format!("set {name} refers to {what} {m}, which is not defined"),
                        );
                    }
                    let map = if *elements {
                        &mut deck.element_sets
                    } else {
                        &mut deck.node_sets
                    };
                    map.entry(name.clone()).or_default().extend(add);
                }
                Block::Aniso(v) => {
                    for tok in fields(t) {
                        if v.len() == 21 {
                            return err(line, "*ELASTIC, TYPE=ANISO takes 21 constants (a temperature is not supported)");
                        }
                        v.push(parse_f64(tok, line, "anisotropic constant")?);
                    }
                    if v.len() == 21 {
                        let m = material.expect("checked at the keyword");
                        let mut c = [0.0; 21];
                        c.copy_from_slice(v);
                        deck.materials[m].aniso = Some(c);
                        block = Block::None;
                    }
                }
                Block::User(n) => {
                    let m = material.expect("checked at the keyword");
                    let c = deck.materials[m].user.get_or_insert_with(Vec::new);
                    for tok in fields(t) {
                        if c.len() == *n {
                            return err(
                                line,
                                format!("*USER MATERIAL: more than CONSTANTS={n} constants"),
                            );
                        }
                        c.push(parse_f64(tok, line, "user material constant")?);
                    }
                    if c.len() == *n {
                        block = Block::None;
                    }
                }
                Block::Spring(nonlinear) => {
                    let f = fields(t);
                    let sp = deck.springs.last_mut().expect("a spring");
                    if *nonlinear {
                        if f.len() != 2 {
                            return err(line, format!("*SPRING, NONLINEAR line needs force, elongation (a temperature is not supported); got {} fields", f.len()));
                        }
                        let force = parse_f64(f[0], line, "spring force")?;
                        let el = parse_f64(f[1], line, "spring elongation")?;
                        if let SpringTable::Nonlinear(v) = &mut sp.table {
                            if v.last().is_some_and(|p| p.1 >= el) {
                                return err(
                                    line,
                                    format!(
                                        "*SPRING, NONLINEAR: elongation {el} does not increase"
                                    ),
                                );
                            }
                            v.push((force, el));
                        }
                    } else {
                        if f.is_empty() || f.len() > 2 {
                            return err(
                                line,
                                "*SPRING line needs the stiffness (force per length)",
                            );
                        }
                        sp.table = SpringTable::Linear(parse_f64(f[0], line, "spring stiffness")?);
                        block = Block::None;
                    }
                }
                Block::Remove => {
                    for tok in fields(t) {
                        let target = if tok.starts_with(|c: char| c.is_ascii_digit()) {
                            let id = parse_id(tok, line, "element id")?;
                            if !elem_index.contains_key(&id) {
                                return err(
                                    line,
                                    format!("*MODEL CHANGE: element {id} is not defined"),
                                );
                            }
                            Target::Id(id)
                        } else {
                            let name = tok.to_ascii_uppercase();
                            if !deck.element_sets.contains_key(&name) {
                                return err(
                                    line,
                                    format!("*MODEL CHANGE: element set {name} is not defined"),
                                );
                            }
                            Target::Set(name)
                        };
                        step.as_mut().expect("checked").remove.push(target);
                    }
                }
                Block::Elastic => {
                    let f = fields(t);
                    if f.len() < 2 {
                        return err(line, "*ELASTIC needs E, nu");
                    }
                    let e = parse_f64(f[0], line, "Young's modulus")?;
                    let nu = parse_f64(f[1], line, "Poisson's ratio")?;
                    let m = material.expect("checked at the keyword");
                    deck.materials[m].elastic = Some((e, nu));
                    block = Block::None;
                }
                Block::Hyper(mooney) => {
                    let f = fields(t);
                    let need = if *mooney { 3 } else { 2 };
                    if f.len() < need {
                        return err(line, format!("*HYPERELASTIC needs {need} parameters"));
                    }
                    let v: Vec<f64> = f[..need]
                        .iter()
                        .map(|s| parse_f64(s, line, "hyperelastic parameter"))
                        .collect::<Result<_, _>>()?;
                    let h = if *mooney {
                        Hyperelastic::MooneyRivlin {
                            c10: v[0],
                            c01: v[1],
                            d1: v[2],
                        }
                    } else {
                        Hyperelastic::NeoHooke {
                            c10: v[0],
                            d1: v[1],
                        }
                    };
                    let m = material.expect("checked at the keyword");
                    deck.materials[m].hyperelastic = Some(h);
                    block = Block::None;
                }
                Block::Surface(k) => {
                    let f = fields(t);
                    match &mut deck.surfaces[*k].members {
                        SurfaceMembers::Node(v) => {
                            for tok in f {
                                if tok.starts_with(|c: char| c.is_ascii_digit()) {
                                    let id = parse_id(tok, line, "surface node")?;
                                    if !node_index.contains_key(&id) {
                                        return err(
                                            line,
                                            format!("surface node {id} is not defined"),
                                        );
                                    }
                                    v.push(id);
                                } else {
                                    match deck.node_sets.get(&tok.to_ascii_uppercase()) {
                                        Some(set) => v.extend(set.iter().copied()),
                                        None => return err(line, format!("surface member {tok:?} is neither a node id nor a defined node set")),
                                    }
                                }
                            }
                        }
                        SurfaceMembers::Element(v) => {
                            if f.len() != 2 {
                                return err(
                                    line,
                                    "*SURFACE, TYPE=ELEMENT line needs element|elset, Sn",
                                );
                            }
                            let face = f[1]
                                .to_ascii_uppercase()
                                .strip_prefix('S')
                                .and_then(|n| n.parse::<u8>().ok())
                                .filter(|n| (1..=6).contains(n));
                            let Some(face) = face else {
                                return err(
                                    line,
                                    format!("surface face {:?}: expected S1..S6", f[1]),
                                );
                            };
                            let ids: Vec<u64> = if f[0].starts_with(|c: char| c.is_ascii_digit()) {
                                vec![parse_id(f[0], line, "surface element")?]
                            } else {
                                match deck.element_sets.get(&f[0].to_ascii_uppercase()) {
                                    Some(set) => set.clone(),
                                    None => return err(line, format!("surface member {:?} is neither an element id nor a defined element set", f[0])),
                                }
                            };
                            for id in ids {
                                let Some(&i) = elem_index.get(&id) else {
                                    return err(
                                        line,
                                        format!("surface element {id} is not defined"),
                                    );
                                };
                                if face > deck.elements[i].etype.num_faces() {
                                    return err(line, format!("surface face S{face} of element {id} ({}): it has S1..S{}", deck.elements[i].etype.name(), deck.elements[i].etype.num_faces()));
                                }
                                v.push((id, face));
                            }
                        }
                    }
                }
                Block::Behavior(i) => {
                    let f = fields(t);
                    if f.is_empty() || f.len() > 3 {
                        return err(line, "*SURFACE BEHAVIOR, PRESSURE-OVERCLOSURE=LINEAR line needs K[, sigma_inf[, c0]]");
                    }
                    let it = &mut deck.interactions[*i];
                    it.slope = parse_f64(f[0], line, "pressure-overclosure slope")?;
                    if f.len() > 1 && !f[1].is_empty() {
                        it.sigma_inf = parse_f64(f[1], line, "sigma_inf")?;
                    }
                    if it.slope <= 0.0 || it.sigma_inf < 0.0 {
                        return err(line, "*SURFACE BEHAVIOR: K must be > 0 and sigma_inf >= 0");
                    }
                    block = Block::None;
                }
                Block::Friction(i) => {
                    let f = fields(t);
                    if f.len() != 2 {
                        return err(line, "*FRICTION line needs mu, stick slope");
                    }
                    let mu = parse_f64(f[0], line, "friction coefficient")?;
                    let lambda = parse_f64(f[1], line, "stick slope")?;
                    // The stick slope is the friction law's tangential penalty (it was
                    // ignored before that existed): a zero or negative one would silently
                    // remove or reverse the friction.
                    if !(mu >= 0.0 && lambda > 0.0 && lambda.is_finite()) {
                        return err(
                            line,
                            format!(
                                "*FRICTION {mu}, {lambda}: mu must be >= 0 and the stick slope \
                                 > 0 (MPa/mm)"
                            ),
                        );
                    }
                    deck.interactions[*i].friction = Some((mu, lambda));
                    block = Block::None;
                }
                Block::ContactPair(name, s2s) => {
                    let f = fields(t);
                    if f.len() != 2 {
                        return err(
                            line,
                            "*CONTACT PAIR line needs slave surface, master surface",
                        );
                    }
                    let (slave, master) = (f[0].to_ascii_uppercase(), f[1].to_ascii_uppercase());
                    for s in [&slave, &master] {
                        if !deck.surfaces.iter().any(|x| &x.name == s) {
                            return err(line, format!("*CONTACT PAIR: surface {s} is not defined (define it before the pair)"));
                        }
                    }
                    if deck
                        .surfaces
                        .iter()
                        .any(|x| x.name == master && matches!(x.members, SurfaceMembers::Node(_)))
                    {
                        return err(line, format!("*CONTACT PAIR: master surface {master} is a node surface; the master must be element faces"));
                    }
                    if *s2s
                        && deck.surfaces.iter().any(|x| {
                            x.name == slave && matches!(x.members, SurfaceMembers::Node(_))
                        })
                    {
                        return err(line, format!("*CONTACT PAIR, TYPE=SURFACE TO SURFACE: slave surface {slave} is a node surface; give element faces (or use TYPE=NODE TO SURFACE)"));
                    }
                    deck.contact_pairs.push(InpContactPair {
                        interaction: name.clone(),
                        slave,
                        master,
                        surface_to_surface: *s2s,
                    });
                }
                Block::Tie(name, tolerance, adjust) => {
                    let f = fields(t);
                    if f.len() != 2 {
                        return err(line, "*TIE line needs slave surface, master surface");
                    }
                    let (slave, master) = (f[0].to_ascii_uppercase(), f[1].to_ascii_uppercase());
                    for s in [&slave, &master] {
                        if !deck.surfaces.iter().any(|x| &x.name == s) {
                            return err(
                                line,
                                format!(
                                    "*TIE: surface {s} is not defined (define it before the tie)"
                                ),
                            );
                        }
                    }
                    if deck
                        .surfaces
                        .iter()
                        .any(|x| x.name == master && matches!(x.members, SurfaceMembers::Node(_)))
                    {
                        return err(line, format!("*TIE: master surface {master} is a node surface; the master must be element faces"));
                    }
                    deck.ties.push(InpTie {
                        name: name.clone(),
                        slave,
                        master,
                        tolerance: *tolerance,
                        adjust: *adjust,
                    });
                    block = Block::TieDone(name.clone());
                }
                Block::Density => {
                    let f = fields(t);
                    if f.len() != 1 {
                        return err(line, format!("*DENSITY line needs one value (the mass density in tonne/mm^3; temperature-dependent tables are not supported), got {} fields", f.len()));
                    }
                    let rho = parse_f64(f[0], line, "density")?;
                    if rho.is_nan() || rho < 0.0 {
                        return err(line, format!("*DENSITY {rho}: the density must be >= 0"));
                    }
                    let m = material.expect("checked at the keyword");
                    deck.materials[m].density = Some(rho);
                    block = Block::None;
                }
                // The optional data line: the area of trusses (meaningless for solids).
                Block::Section => {
                    let f = fields(t);
                    if let Some(tok) = f.first().filter(|t| !t.is_empty()) {
                        let a = parse_f64(tok, line, "section area")?;
                        deck.sections.last_mut().expect("a section").area = Some(a);
                    }
                    block = Block::None;
                }
                Block::BeamSection(stage) => {
                    let f = fields(t);
                    let sec = deck.beam_sections.last_mut().expect("a beam section");
                    if *stage == 0 {
                        let v: Vec<f64> = f
                            .iter()
                            .map(|s| parse_f64(s, line, "beam section dimension"))
                            .collect::<Result<_, _>>()?;
                        sec.shape = match (sec.shape, v.as_slice()) {
                            // CalculiX reads the lengths of the ellipse's principal axes
                            // (along n1 and n2; one value: both): a circle's diameter.
                            // Unequal axes (an ellipse) are not supported.
                            (BeamShape::Circ { .. }, [d]) => BeamShape::Circ { r: d / 2.0 },
                            (BeamShape::Circ { .. }, [d, d2]) if d == d2 => {
                                BeamShape::Circ { r: d / 2.0 }
                            }
                            (BeamShape::Circ { .. }, _) => {
                                return err(line, "*BEAM SECTION, SECTION=CIRC: the data line needs the diameter (mm; CalculiX's lengths of the principal axes, given once or twice equal; an elliptical section is not supported)");
                            }
                            (BeamShape::Rect { .. }, [a, b]) => BeamShape::Rect { a: *a, b: *b },
                            (BeamShape::Rect { .. }, _) => {
                                return err(line, "*BEAM SECTION, SECTION=RECT: the data line needs width (along n1) and height (along n2), mm");
                            }
                        };
                        *stage = 1;
                    } else {
                        if f.len() != 3 {
                            return err(line, format!("*BEAM SECTION orientation line needs the n1 direction x, y, z; got {} fields", f.len()));
                        }
                        let mut n1 = [0.0; 3];
                        for (c, tok) in n1.iter_mut().zip(&f) {
                            *c = parse_f64(tok, line, "beam n1 direction")?;
                        }
                        sec.orientation = Some(n1);
                        block = Block::None;
                    }
                }
                Block::Boundary => {
                    let f = fields(t);
                    if !(2..=4).contains(&f.len()) {
                        return err(
                            line,
                            "*BOUNDARY line needs node|nset, first dof[, last dof[, value]]",
                        );
                    }
                    let target = node_target(f[0], line, &node_index, &deck.node_sets)?;
                    let first = parse_dof(f[1], line)?;
                    let last = if f.len() >= 3 && !f[2].is_empty() {
                        parse_dof(f[2], line)?
                    } else {
                        first
                    };
                    if last < first {
                        return err(
                            line,
                            format!("*BOUNDARY: last dof {last} is below first dof {first}"),
                        );
                    }
                    let value = if f.len() == 4 {
                        parse_f64(f[3], line, "prescribed value")?
                    } else {
                        0.0
                    };
                    let b = Boundary {
                        target,
                        first,
                        last,
                        value,
                    };
                    match step.as_mut() {
                        Some(s) => s.boundaries.push(b),
                        None => deck.boundaries.push(b),
                    }
                }
                Block::Static => {
                    let s = step.as_mut().expect("checked at the keyword");
                    s.static_params = fields(t)
                        .iter()
                        .map(|v| parse_f64(v, line, "*STATIC parameter"))
                        .collect::<Result<_, _>>()?;
                    block = Block::None;
                }
                Block::Cload => {
                    let f = fields(t);
                    if f.len() != 3 {
                        return err(line, "*CLOAD line needs node|nset, dof, value");
                    }
                    let target = node_target(f[0], line, &node_index, &deck.node_sets)?;
                    let dof = parse_dof(f[1], line)?;
                    let value = parse_f64(f[2], line, "force")?;
                    step.as_mut()
                        .expect("checked")
                        .cloads
                        .push(Cload { target, dof, value });
                }
                Block::Dload => {
                    let f = fields(t);
                    let lt = f.get(1).map(|t| t.to_ascii_uppercase()).unwrap_or_default();
                    let grav = lt == "GRAV";
                    let face = lt.strip_prefix('P').and_then(|n| n.parse::<u8>().ok());
                    if f.len() >= 2 && !grav && !face.is_some_and(|n| (1..=6).contains(&n)) {
                        return err(
                            line,
                            format!("*DLOAD load type {lt} is not supported (supported: face pressures P1..P6 and GRAV)"),
                        );
                    }
                    if grav && f.len() != 6 {
                        return err(
                            line,
                            format!("*DLOAD GRAV line needs element|elset, GRAV, magnitude, nx, ny, nz; got {} fields", f.len()),
                        );
                    }
                    if !grav && f.len() != 3 {
                        return err(line, "*DLOAD line needs element|elset, Pn, pressure (or element|elset, GRAV, magnitude, nx, ny, nz)");
                    }
                    let target = if f[0].starts_with(|c: char| c.is_ascii_digit()) {
                        let id = parse_id(f[0], line, "element id")?;
                        if !elem_index.contains_key(&id) {
                            return err(line, format!("element {id} is not defined"));
                        }
                        Target::Id(id)
                    } else {
                        let name = f[0].to_ascii_uppercase();
                        if !deck.element_sets.contains_key(&name) {
                            return err(line, format!("element set {name} is not defined"));
                        }
                        Target::Set(name)
                    };
                    if grav {
                        let magnitude = parse_f64(f[2], line, "gravity magnitude")?;
                        let mut direction = [0.0; 3];
                        for (d, tok) in direction.iter_mut().zip(&f[3..]) {
                            *d = parse_f64(tok, line, "gravity direction")?;
                        }
                        if direction.iter().all(|&c| c == 0.0) {
                            return err(line, "*DLOAD GRAV: the direction nx, ny, nz is zero; give the direction of the acceleration (e.g. 0, 0, -1)");
                        }
                        grav_lines.push((line, deck.steps.len()));
                        step.as_mut().expect("checked").gravity.push(Gravity {
                            target,
                            magnitude,
                            direction,
                        });
                        continue;
                    }
                    let face = face.expect("checked above");
                    let value = parse_f64(f[2], line, "pressure")?;
                    step.as_mut().expect("checked").dloads.push(Dload {
                        target,
                        face,
                        value,
                    });
                }
                Block::Output => {
                    step.as_mut().expect("checked").outputs.push(t.to_string());
                }
            }
        }
        if !pending.is_empty() {
            return err(pending_line, "element line ends with ',' but the deck ends");
        }
        if step.is_some() {
            return err(0, "the last *STEP has no *END STEP");
        }
        // Sections may be defined before their materials; check at the end.
        for s in &deck.sections {
            if !deck.materials.iter().any(|m| m.name == s.material) {
                return err(
                    0,
                    format!(
                        "*SOLID SECTION for {} uses material {}, which is not defined",
                        s.elset, s.material
                    ),
                );
            }
        }
        for m in &deck.materials {
            let laws = [
                m.elastic.is_some(),
                m.hyperelastic.is_some(),
                m.aniso.is_some(),
                m.user.is_some(),
            ];
            if !laws.contains(&true) {
                return err(
                    0,
                    format!(
                        "material {} has neither *ELASTIC nor *HYPERELASTIC nor *USER MATERIAL",
                        m.name
                    ),
                );
            }
            // *ELASTIC with *HYPERELASTIC is refused by the solvers (naming both).
            if [laws[0] || laws[1], laws[2], laws[3]]
                .iter()
                .filter(|&&b| b)
                .count()
                > 1
            {
                return err(
                    0,
                    format!("material {} has more than one of *ELASTIC, *ELASTIC TYPE=ANISO, *HYPERELASTIC, *USER MATERIAL: give one", m.name),
                );
            }
            if let Some(c) = &m.user {
                if !m.name.starts_with("ELASTIC_FIBER") {
                    return err(0, format!("material {}: *USER MATERIAL is supported for CalculiX's built-in ELASTIC_FIBER only (a material name starting with ELASTIC_FIBER)", m.name));
                }
                if ElasticFiber::from_constants(c).is_none() {
                    return err(0, format!("material {}: ELASTIC_FIBER needs 2 + 4 n constants (C10, D1, then a1, a2, k1, k2 per fibre, n = 1..4, a1^2 + a2^2 <= 1); got {}", m.name, c.len()));
                }
            }
        }
        for sp in &deck.springs {
            let ok = match &sp.table {
                SpringTable::Linear(k) => k.is_finite(),
                SpringTable::Nonlinear(v) => !v.is_empty(),
            };
            if !ok {
                return err(0, format!("*SPRING, ELSET={}: give the stiffness (linear) or the force, elongation lines (NONLINEAR)", sp.elset));
            }
        }
        // Rigid bodies: REF and ROT nodes are handles, in no element and no body's set; a
        // node is tied to one body at most.
        let mut owner: HashMap<u64, usize> = HashMap::new();
        for (b, rb) in deck.rigid_bodies.iter().enumerate() {
            for &id in &deck.node_sets[&rb.nset] {
                if let Some(o) = owner.insert(id, b) {
                    if o != b {
                        return err(0, format!("node {id} is in the sets of two rigid bodies ({} and {}): a node moves with one body", deck.rigid_bodies[o].nset, rb.nset));
                    }
                }
            }
        }
        for rb in &deck.rigid_bodies {
            for h in [rb.ref_node, rb.rot_node] {
                if owner.contains_key(&h) {
                    return err(0, format!("*RIGID BODY, NSET={}: node {h} is a REF or ROT node and also in a rigid body's node set; give the body separate REF and ROT nodes", rb.nset));
                }
                if let Some(e) = deck.elements.iter().find(|e| e.nodes.contains(&h)) {
                    return err(0, format!("*RIGID BODY, NSET={}: REF/ROT node {h} is a node of element {}; give the body separate REF and ROT nodes in no element", rb.nset, e.id));
                }
            }
        }
        // Trusses need a positive area and a linear-elastic material.
        let trusses: std::collections::HashSet<u64> = deck
            .elements
            .iter()
            .filter(|e| e.etype == ElementType::T3D2)
            .map(|e| e.id)
            .collect();
        for (sec, &line) in deck.sections.iter().zip(&section_lines) {
            let Some(id) = deck.element_sets[&sec.elset]
                .iter()
                .find(|id| trusses.contains(id))
            else {
                continue;
            };
            if !sec.area.is_some_and(|a| a > 0.0 && a.is_finite()) {
                return err(line, format!("*SOLID SECTION, ELSET={} holds truss element {id} (T3D2): give its cross-section area (mm^2, > 0) on the data line after the section", sec.elset));
            }
            let m = deck.materials.iter().find(|m| m.name == sec.material);
            if m.is_some_and(|m| m.elastic.is_none()) {
                return err(line, format!("*SOLID SECTION, ELSET={} holds truss element {id} (T3D2), but material {} has no *ELASTIC: trusses are linear elastic (E A / L)", sec.elset, sec.material));
            }
        }
        // Beams: a positive size, a linear-elastic material, B31 and B32 elements only (and
        // no beam in a solid section), an n1 direction across every element, the middle node
        // of a B32 at the midpoint of its end nodes.
        let node_at: HashMap<u64, [f64; 3]> = deck.nodes.iter().copied().collect();
        let elem_of = |id: &u64| &deck.elements[elem_index[id]];
        for (sec, &line) in deck.sections.iter().zip(&section_lines) {
            let beam = deck.element_sets[&sec.elset]
                .iter()
                .find(|id| elem_of(id).etype.is_beam());
            if let Some(id) = beam {
                return err(line, format!("*SOLID SECTION, ELSET={} holds beam element {id} ({}): give beams a *BEAM SECTION, SECTION=CIRC|RECT", sec.elset, elem_of(id).etype.name()));
            }
        }
        for (sec, &line) in deck.beam_sections.iter().zip(&beam_section_lines) {
            let pos = |v: f64| v > 0.0 && v.is_finite();
            let sized = match sec.shape {
                BeamShape::Circ { r } => pos(r),
                BeamShape::Rect { a, b } => pos(a) && pos(b),
            };
            if !sized {
                return err(line, format!("*BEAM SECTION, ELSET={}: give the section's dimensions (> 0, mm) on the data line after it (CIRC: diameter; RECT: width, height)", sec.elset));
            }
            let m = deck.materials.iter().find(|m| m.name == sec.material);
            match m.map(|m| m.elastic) {
                None => {
                    return err(
                        line,
                        format!(
                            "*BEAM SECTION, ELSET={} uses material {}, which is not defined",
                            sec.elset, sec.material
                        ),
                    );
                }
                Some(None) => {
                    return err(line, format!("*BEAM SECTION, ELSET={}: material {} has no *ELASTIC; beams are linear elastic (give E, nu)", sec.elset, sec.material));
                }
                Some(Some((e, nu))) if !(e > 0.0 && nu > -1.0 && nu < 0.5) => {
                    return err(line, format!("*BEAM SECTION, ELSET={}: material {} needs E > 0 and -1 < nu < 0.5 for a beam (E = {e}, nu = {nu})", sec.elset, sec.material));
                }
                Some(Some(_)) => {}
            }
            let n1 = sec.n1();
            for id in &deck.element_sets[&sec.elset] {
                let el = elem_of(id);
                if !el.etype.is_beam() {
                    return err(line, format!("*BEAM SECTION, ELSET={} holds element {id} ({}): only B31 and B32 elements take a beam section (give it a *SOLID SECTION)", sec.elset, el.etype.name()));
                }
                let last = *el.nodes.last().expect("beam nodes");
                let (a, b) = (node_at[&el.nodes[0]], node_at[&last]);
                let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
                let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                if len == 0.0 {
                    return err(line, format!("beam element {id} ({}) of ELSET={} has zero length: its end nodes {} and {last} coincide", el.etype.name(), sec.elset, el.nodes[0]));
                }
                if el.etype == ElementType::B32 {
                    let m = node_at[&el.nodes[1]];
                    let off = dist(
                        m,
                        [
                            (a[0] + b[0]) / 2.0,
                            (a[1] + b[1]) / 2.0,
                            (a[2] + b[2]) / 2.0,
                        ],
                    );
                    // Meshers round coordinates to 6-8 digits: allow that, not a bent beam.
                    let scale = a.iter().chain(b.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
                    if off > 1e-4 * len + 1e-7 * scale {
                        return err(line, format!("beam element {id} (B32) of ELSET={}: its middle node {} is {off:.3e} mm from the midpoint of its end nodes; the solver's beams are straight (put the middle node at the midpoint)", sec.elset, el.nodes[1]));
                    }
                }
                let c = [
                    d[1] * n1[2] - d[2] * n1[1],
                    d[2] * n1[0] - d[0] * n1[2],
                    d[0] * n1[1] - d[1] * n1[0],
                ];
                let n1len = (n1[0] * n1[0] + n1[1] * n1[1] + n1[2] * n1[2]).sqrt();
                if (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt() <= 1e-6 * len * n1len {
                    let what = if sec.orientation.is_some() {
                        "the n1 direction given"
                    } else {
                        "the default n1 direction (0, 0, -1)"
                    };
                    return err(line, format!("*BEAM SECTION, ELSET={}: {what} is zero or parallel to beam element {id}: give an n1 direction across the beam on the line after the dimensions", sec.elset));
                }
            }
        }
        for (line, m, n) in user_lines {
            let got = deck.materials[m].user.as_ref().map_or(0, Vec::len);
            if got != n {
                return err(
                    line,
                    format!(
                        "*USER MATERIAL, CONSTANTS={n} of material {}: {got} constants given",
                        deck.materials[m].name
                    ),
                );
            }
        }
        for (line, i) in interaction_lines {
            let it = &deck.interactions[i];
            if !(it.slope.is_finite() && it.slope > 0.0) {
                return err(line, format!("*SURFACE INTERACTION, NAME={}: no *SURFACE BEHAVIOR, PRESSURE-OVERCLOSURE=LINEAR data line with a positive slope", it.name));
            }
        }
        // Every element under gravity needs a density (sections are complete only now; the
        // last section of an element wins, as in mesh_and_materials).
        if !grav_lines.is_empty() {
            let mut material_of: HashMap<u64, &str> = HashMap::new();
            for sec in &deck.sections {
                for &id in &deck.element_sets[&sec.elset] {
                    material_of.insert(id, &sec.material);
                }
            }
            let mut count = vec![0usize; deck.steps.len()];
            for (line, si) in grav_lines {
                let g = &deck.steps[si].gravity[count[si]];
                count[si] += 1;
                let ids = match &g.target {
                    Target::Id(id) => std::slice::from_ref(id),
                    Target::Set(s) => deck.element_sets[s].as_slice(),
                };
                for id in ids {
                    let Some(&mat) = material_of.get(id) else {
                        return err(line, format!("*DLOAD GRAV on element {id}, which has no *SOLID SECTION: assign it a material with *DENSITY"));
                    };
                    let m = deck.materials.iter().find(|m| m.name == mat);
                    if m.is_some_and(|m| m.density.is_none()) {
                        return err(line, format!("*DLOAD GRAV on element {id} of material {mat}, which has no *DENSITY: add *DENSITY (tonne/mm^3) under *MATERIAL, NAME={mat}"));
                    }
                }
            }
        }
        Ok(deck)
    }

    /// Reads and parses a deck file. Errors name the file and line.
    pub fn read(path: &std::path::Path) -> Result<Deck, FemError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            FemError::InvalidInput(format!("{}: cannot read ({e})", path.display()))
        })?;
        Deck::parse(&text).map_err(|e| FemError::InvalidInput(format!("{}: {e}", path.display())))
    }

    /// True when a step asks for geometric nonlinearity or a material is hyperelastic.
    pub fn needs_nonlinear(&self) -> bool {
        self.steps.iter().any(|s| s.nlgeom)
            || self
                .materials
                .iter()
                .any(|m| m.hyperelastic.is_some() || m.aniso.is_some() || m.user.is_some())
            || !self.rigid_bodies.is_empty()
            || !self.springs.is_empty()
            || !self.contact_pairs.is_empty()
            || !self.ties.is_empty()
    }

    /// Density of material `m` for gravity on element index `e` (checked when parsing; a
    /// deck built in code may lack it).
    fn density(&self, m: usize, e: usize) -> Result<f64, FemError> {
        let mat = &self.materials[m];
        mat.density.ok_or_else(|| {
            FemError::InvalidInput(format!(
                "*DLOAD GRAV on element {} of material {}, which has no *DENSITY: add *DENSITY (tonne/mm^3) under *MATERIAL, NAME={}",
                self.elements[e].id, mat.name, mat.name
            ))
        })
    }

    /// Writes the deck in the supported subset (parsing the result gives an equal deck).
    pub fn write(&self) -> String {
        let mut o = String::new();
        if !self.heading.is_empty() {
            o += "*HEADING\n";
            for h in &self.heading {
                o += h;
                o += "\n";
            }
        }
        for c in &self.comments {
            let _ = writeln!(o, "** {c}");
        }
        o += "*NODE\n";
        for (id, x) in &self.nodes {
            let _ = writeln!(o, "{id}, {:e}, {:e}, {:e}", x[0], x[1], x[2]);
        }
        // Consecutive elements of one type share an *ELEMENT block (file order is kept).
        let mut k = 0;
        while k < self.elements.len() {
            let et = self.elements[k].etype;
            let _ = writeln!(o, "*ELEMENT, TYPE={}", et.name());
            while k < self.elements.len() && self.elements[k].etype == et {
                let e = &self.elements[k];
                let _ = write!(o, "{}", e.id);
                for n in &e.nodes {
                    let _ = write!(o, ", {n}");
                }
                o += "\n";
                k += 1;
            }
        }
        write_sets(&mut o, "NSET", &self.node_sets);
        write_sets(&mut o, "ELSET", &self.element_sets);
        for m in &self.materials {
            let _ = writeln!(o, "*MATERIAL, NAME={}", m.name);
            if let Some((e, nu)) = m.elastic {
                let _ = writeln!(o, "*ELASTIC\n{e:e}, {nu:e}");
            }
            if let Some(c) = &m.aniso {
                o += "*ELASTIC, TYPE=ANISO\n";
                write_values(&mut o, c);
            }
            if let Some(c) = &m.user {
                let _ = writeln!(o, "*USER MATERIAL, CONSTANTS={}", c.len());
                write_values(&mut o, c);
            }
            if let Some(rho) = m.density {
                let _ = writeln!(o, "*DENSITY\n{rho:e}");
            }
            match m.hyperelastic {
                Some(Hyperelastic::NeoHooke { c10, d1 }) => {
                    let _ = writeln!(o, "*HYPERELASTIC, NEO HOOKE\n{c10:e}, {d1:e}");
                }
                Some(Hyperelastic::MooneyRivlin { c10, c01, d1 }) => {
                    let _ = writeln!(o, "*HYPERELASTIC, MOONEY-RIVLIN\n{c10:e}, {c01:e}, {d1:e}");
                }
                None => {}
            }
        }
        for s in &self.sections {
            let _ = writeln!(
                o,
                "*SOLID SECTION, ELSET={}, MATERIAL={}",
                s.elset, s.material
            );
            if let Some(a) = s.area {
                let _ = writeln!(o, "{a:e}");
            }
        }
        for s in &self.beam_sections {
            let (name, dims) = match s.shape {
                BeamShape::Circ { r } => ("CIRC", format!("{:e}, {:e}", 2.0 * r, 2.0 * r)),
                BeamShape::Rect { a, b } => ("RECT", format!("{a:e}, {b:e}")),
            };
            if name == "CIRC" {
                let _ = writeln!(
                    o,
                    "** CIRC data: the diameter, as CalculiX reads it (Abaqus reads the radius)"
                );
            }
            let _ = writeln!(
                o,
                "*BEAM SECTION, ELSET={}, MATERIAL={}, SECTION={name}\n{dims}",
                s.elset, s.material
            );
            if let Some([x, y, z]) = s.orientation {
                let _ = writeln!(o, "{x:e}, {y:e}, {z:e}");
            }
        }
        for rb in &self.rigid_bodies {
            let _ = writeln!(
                o,
                "*RIGID BODY, NSET={}, REF NODE={}, ROT NODE={}",
                rb.nset, rb.ref_node, rb.rot_node
            );
        }
        for sp in &self.springs {
            match &sp.table {
                // CalculiX takes the first line under *SPRING for the degrees of freedom of
                // SPRING1/SPRING2 elements unless its first field has a decimal point (and
                // then drops it from the table): every number here gets one.
                SpringTable::Linear(k) => {
                    let _ = writeln!(o, "*SPRING, ELSET={}\n{}", sp.elset, dotted(*k));
                }
                SpringTable::Nonlinear(v) => {
                    let _ = writeln!(o, "*SPRING, ELSET={}, NONLINEAR", sp.elset);
                    for (f, e) in v {
                        let _ = writeln!(o, "{}, {}", dotted(*f), dotted(*e));
                    }
                }
            }
        }
        for sf in &self.surfaces {
            match &sf.members {
                // CalculiX reads one node per line of a node surface.
                SurfaceMembers::Node(v) => {
                    let _ = writeln!(o, "*SURFACE, NAME={}, TYPE=NODE", sf.name);
                    for id in v {
                        let _ = writeln!(o, "{id}");
                    }
                }
                SurfaceMembers::Element(v) => {
                    let _ = writeln!(o, "*SURFACE, NAME={}, TYPE=ELEMENT", sf.name);
                    for (e, f) in v {
                        let _ = writeln!(o, "{e}, S{f}");
                    }
                }
            }
        }
        for it in &self.interactions {
            let _ = writeln!(
                o,
                "*SURFACE INTERACTION, NAME={}\n*SURFACE BEHAVIOR, PRESSURE-OVERCLOSURE=LINEAR\n{:e}, {:e}",
                it.name, it.slope, it.sigma_inf
            );
            if let Some((mu, l)) = it.friction {
                let _ = writeln!(o, "*FRICTION\n{mu:e}, {l:e}");
            }
        }
        for cp in &self.contact_pairs {
            let _ = writeln!(
                o,
                "*CONTACT PAIR, INTERACTION={}, TYPE={}\n{}, {}",
                cp.interaction,
                if cp.surface_to_surface {
                    "SURFACE TO SURFACE"
                } else {
                    "NODE TO SURFACE"
                },
                cp.slave,
                cp.master
            );
        }
        for t in &self.ties {
            let _ = write!(o, "*TIE, NAME={}", t.name);
            if let Some(tol) = t.tolerance {
                let _ = write!(o, ", POSITION TOLERANCE={tol:e}");
            }
            let _ = writeln!(
                o,
                ", ADJUST={}\n{}, {}",
                if t.adjust { "YES" } else { "NO" },
                t.slave,
                t.master
            );
        }
        write_boundaries(&mut o, &self.boundaries);
        for s in &self.steps {
            o += "*STEP";
            if s.nlgeom {
                o += ", NLGEOM";
            }
            if let Some(n) = s.max_increments {
                let _ = write!(o, ", INC={n}");
            }
            if let Some(n) = &s.name {
                let _ = write!(o, ", NAME={n}");
            }
            o += if s.direct {
                "\n*STATIC, DIRECT\n"
            } else {
                "\n*STATIC\n"
            };
            if !s.static_params.is_empty() {
                let v: Vec<String> = s.static_params.iter().map(|v| format!("{v:e}")).collect();
                o += &v.join(", ");
                o += "\n";
            }
            if !s.remove.is_empty() {
                o += "*MODEL CHANGE, TYPE=ELEMENT, REMOVE\n";
                for chunk in s.remove.chunks(16) {
                    let v: Vec<String> = chunk.iter().map(target_str).collect();
                    let _ = writeln!(o, "{}", v.join(", "));
                }
            }
            write_boundaries(&mut o, &s.boundaries);
            if !s.cloads.is_empty() {
                o += "*CLOAD\n";
                for c in &s.cloads {
                    let _ = writeln!(o, "{}, {}, {:e}", target_str(&c.target), c.dof, c.value);
                }
            }
            if !s.dloads.is_empty() || !s.gravity.is_empty() {
                o += "*DLOAD\n";
                for d in &s.dloads {
                    let _ = writeln!(o, "{}, P{}, {:e}", target_str(&d.target), d.face, d.value);
                }
                for g in &s.gravity {
                    let [x, y, z] = g.direction;
                    let _ = writeln!(
                        o,
                        "{}, GRAV, {:e}, {x:e}, {y:e}, {z:e}",
                        target_str(&g.target),
                        g.magnitude
                    );
                }
            }
            for l in &s.outputs {
                o += l;
                o += "\n";
            }
            o += "*END STEP\n";
        }
        o
    }

    /// [`Deck::write`] for CalculiX, which reads a number from at most 20 characters: a
    /// longer data field (a shortest round-trip number with 17 digits, a sign and a long
    /// exponent) is written with as many significant digits as fit (at least 15, so within
    /// 1e-15 relative). Use it for every deck given to `ccx`; [`Deck::write`] stays exact.
    pub fn write_ccx(&self) -> String {
        fit_fields(&self.write())
    }

    /// The mesh (0-based, file order, sets by name) of the solid elements, the deck-id ->
    /// index maps (elements: solids only) and the material index of every solid; and the
    /// deck indices of the solids (by mesh index) and of the trusses. `nonlinear` admits the
    /// element kinds of the nonlinear solver ([`ElementType::nl_kind`]) and trusses, which
    /// stay out of the mesh.
    fn mesh_and_materials(&self, nonlinear: bool) -> Result<Built, FemError> {
        let bad = |m: String| Err(FemError::InvalidInput(m));
        let kind = |t: ElementType| if nonlinear { t.nl_kind() } else { t.kind() };
        // Trusses and beams: the nonlinear path only, outside the mesh.
        let truss =
            |t: ElementType| nonlinear && matches!(t, ElementType::T3D2 | ElementType::SPRINGA);
        let beam = |t: ElementType| nonlinear && t.is_beam();
        if let Some(e) = self
            .elements
            .iter()
            .find(|e| kind(e.etype).is_none() && !truss(e.etype) && !beam(e.etype))
        {
            let what = match e.etype {
                ElementType::T3D2 => "trusses",
                ElementType::SPRINGA => "springs",
                ElementType::C3D8I => "hexahedra with incompatible modes",
                _ => "beams",
            };
            let (supported, hint) = if nonlinear {
                (
                    "C3D4, C3D10, C3D8, C3D8I, C3D6, T3D2, B31, B32, SPRINGA",
                    "",
                )
            } else {
                (
                    "C3D4, C3D10, C3D8, C3D6",
                    "; C3D8I hexahedra, T3D2 trusses, SPRINGA springs and B31/B32 beams are solved by the nonlinear solver: add NLGEOM to the *STEP",
                )
            };
            return bad(format!(
                "element {} is {} ({what}): not supported by the {} solver yet (supported: {supported}){hint}",
                e.id,
                e.etype.name(),
                if nonlinear { "nonlinear" } else { "linear" }
            ));
        }
        if self.elements.is_empty() {
            return bad("the deck has no elements".into());
        }
        // The middle nodes of B32 elements carry nothing: in no other element, no body's set,
        // no node surface and no *BOUNDARY or *CLOAD.
        let mut middle: HashMap<u64, u64> = HashMap::new();
        for el in &self.elements {
            if nonlinear && el.etype == ElementType::B32 {
                middle.insert(el.nodes[1], el.id);
            }
        }
        for e in &self.elements {
            for id in &e.nodes {
                if let Some(&b) = middle.get(id) {
                    if e.id != b {
                        return bad(format!("node {id}, the middle node of beam element {b} (B32), is also a node of element {}: the middle node of a B32 carries nothing in the solver (join at the end nodes)", e.id));
                    }
                }
            }
        }
        for rb in &self.rigid_bodies {
            if let Some(id) = self.node_sets[&rb.nset]
                .iter()
                .find(|id| middle.contains_key(id))
            {
                return bad(format!("node {id}, the middle node of beam element {} (B32), is in the set of *RIGID BODY, NSET={}: the middle node of a B32 carries nothing in the solver", middle[id], rb.nset));
            }
        }
        let named = |t: &Target| -> Option<u64> {
            match t {
                Target::Id(id) => middle.contains_key(id).then_some(*id),
                Target::Set(s) => self.node_sets[s]
                    .iter()
                    .find(|id| middle.contains_key(id))
                    .copied(),
            }
        };
        for sf in &self.surfaces {
            if let SurfaceMembers::Node(v) = &sf.members {
                if let Some(id) = v.iter().find(|id| middle.contains_key(id)) {
                    return bad(format!("*SURFACE {}: node {id} is the middle node of beam element {} (B32), which carries nothing in the solver", sf.name, middle[id]));
                }
            }
        }
        for s in &self.steps {
            let targets = self
                .boundaries
                .iter()
                .chain(&s.boundaries)
                .map(|b| (&b.target, "*BOUNDARY"))
                .chain(s.cloads.iter().map(|c| (&c.target, "*CLOAD")));
            for (t, what) in targets {
                if let Some(id) = named(t) {
                    return bad(format!("{what} on {}: node {id} is the middle node of beam element {} (B32), which carries nothing in the solver (load and hold the end nodes)", target_str(t), middle[&id]));
                }
            }
        }
        // REF and ROT nodes of rigid bodies are handles of the body's DOFs, not mesh nodes;
        // nor are the middle nodes of B32 beams.
        let handles: std::collections::HashSet<u64> = self
            .rigid_bodies
            .iter()
            .flat_map(|r| [r.ref_node, r.rot_node])
            .collect();
        let mesh_nodes: Vec<(u64, [f64; 3])> = self
            .nodes
            .iter()
            .filter(|(id, _)| !handles.contains(id) && !middle.contains_key(id))
            .copied()
            .collect();
        let node_index: HashMap<u64, usize> = mesh_nodes
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let (lines, solid): (Vec<usize>, Vec<usize>) = (0..self.elements.len())
            .partition(|&i| truss(self.elements[i].etype) || beam(self.elements[i].etype));
        let (beams, trusses): (Vec<usize>, Vec<usize>) = lines
            .into_iter()
            .partition(|&i| beam(self.elements[i].etype));
        let elem_index: HashMap<u64, usize> = solid
            .iter()
            .enumerate()
            .map(|(k, &i)| (self.elements[i].id, k))
            .collect();
        let mut mesh = Mesh::with_nodes(mesh_nodes.iter().map(|(_, x)| *x).collect());
        for &i in &solid {
            let e = &self.elements[i];
            let nodes: Vec<usize> = e.nodes.iter().map(|n| node_index[n]).collect();
            mesh.add_element(kind(e.etype).expect("checked above"), &nodes);
        }
        for (name, ids) in &self.node_sets {
            mesh.node_sets.insert(
                name.clone(),
                ids.iter()
                    .filter_map(|n| node_index.get(n).copied())
                    .collect(),
            );
        }
        for (name, ids) in &self.element_sets {
            mesh.element_sets.insert(
                name.clone(),
                ids.iter()
                    .filter_map(|n| elem_index.get(n).copied())
                    .collect(),
            );
        }
        // Material of every deck element (the last section naming it wins).
        let deck_index: HashMap<u64, usize> = self
            .elements
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let mut of_deck = vec![usize::MAX; self.elements.len()];
        for s in &self.sections {
            let m = self
                .materials
                .iter()
                .position(|m| m.name == s.material)
                .expect("checked when parsing");
            for id in &self.element_sets[&s.elset] {
                of_deck[deck_index[id]] = m;
            }
        }
        // Beam section of every beam (index into beam_sections; the last one wins).
        let mut beam_section = vec![usize::MAX; self.elements.len()];
        for (k, s) in self.beam_sections.iter().enumerate() {
            for id in &self.element_sets[&s.elset] {
                beam_section[deck_index[id]] = k;
            }
        }
        // *SPRING of every SPRINGA element (index into springs; the last one wins).
        let mut spring_of = vec![usize::MAX; self.elements.len()];
        for (k, s) in self.springs.iter().enumerate() {
            for id in &self.element_sets[&s.elset] {
                spring_of[deck_index[id]] = k;
            }
        }
        for (i, e) in self.elements.iter().enumerate() {
            if e.etype == ElementType::SPRINGA {
                if spring_of[i] == usize::MAX {
                    return bad(format!(
                        "element {} (SPRINGA) has no *SPRING: give its set a *SPRING, ELSET=...[, NONLINEAR]",
                        e.id
                    ));
                }
                continue;
            }
            if spring_of[i] != usize::MAX {
                return bad(format!(
                    "element {} ({}) is in the set of a *SPRING: springs are SPRINGA elements",
                    e.id,
                    e.etype.name()
                ));
            }
            let b31 = e.etype.is_beam();
            if b31 && beam_section[i] == usize::MAX {
                return bad(format!(
                    "element {} ({}) has no *BEAM SECTION: give its set a *BEAM SECTION, ELSET=..., MATERIAL=..., SECTION=CIRC|RECT",
                    e.id,
                    e.etype.name()
                ));
            }
            if !b31 && of_deck[i] == usize::MAX {
                return bad(format!(
                    "element {} has no *SOLID SECTION: assign it a material",
                    e.id
                ));
            }
        }
        Ok(Built {
            node_ids: mesh_nodes.iter().map(|(id, _)| *id).collect(),
            spring_of,
            material: solid.iter().map(|&i| of_deck[i]).collect(),
            truss_material: trusses.iter().map(|&i| of_deck[i]).collect(),
            beam_section: beams.iter().map(|&i| beam_section[i]).collect(),
            beams,
            mesh,
            node_index,
            elem_index,
            solid,
            trusses,
        })
    }

    /// Mesh indices of the solid elements a `*DLOAD` names; trusses take no distributed
    /// load (an error naming the element).
    fn load_elements(&self, b: &Built, t: &Target, what: &str) -> Result<Vec<usize>, FemError> {
        let ids = match t {
            Target::Id(id) => std::slice::from_ref(id),
            Target::Set(s) => self.element_sets[s].as_slice(),
        };
        ids.iter()
            .map(|id| {
                b.elem_index.get(id).copied().ok_or_else(|| {
                    let et = self.elements.iter().find(|e| e.id == *id).map_or("", |e| e.etype.name());
                    FemError::InvalidInput(format!(
                        "*DLOAD {what} on element {id} ({et}): trusses and beams take no distributed load; load their nodes with *CLOAD"
                    ))
                })
            })
            .collect()
    }

    /// Builds the FE model: mesh (0-based, file order), per-element material, constraints
    /// and loads of the model data plus the single step (`*DLOAD GRAV` becomes a body
    /// force `density * acceleration` per element). Errors when the deck uses what the
    /// solver cannot do yet (trusses and beams, several steps, rotational DOFs).
    pub fn to_model(&self) -> Result<InpModel, FemError> {
        let bad = |m: String| Err(FemError::InvalidInput(m));
        if let Some(rb) = self.rigid_bodies.first() {
            return bad(format!("*RIGID BODY, NSET={}: rigid bodies are solved by the nonlinear solver only: add NLGEOM to the *STEP", rb.nset));
        }
        if self.steps.len() > 1 {
            return bad(format!(
                "the deck has {} steps: only single-step analyses are supported yet",
                self.steps.len()
            ));
        }
        let built = self.mesh_and_materials(false)?;
        let (mesh, node_index, material) = (&built.mesh, &built.node_index, &built.material);
        let nodes_of = |t: &Target| -> Vec<usize> {
            match t {
                Target::Id(n) => vec![node_index[n]],
                Target::Set(s) => mesh.node_sets[s].clone(),
            }
        };
        let mut constraints = Constraints::new();
        let step = self.steps.first();
        let step_bcs = step.map(|s| s.boundaries.as_slice()).unwrap_or(&[]);
        for b in self.boundaries.iter().chain(step_bcs) {
            for (n, d, v) in boundary_dofs(b, &nodes_of(&b.target), false)? {
                constraints.prescribe(n, d, v);
            }
        }
        let mut loads = Loads::new();
        if let Some(s) = step {
            for c in &s.cloads {
                if c.dof > 3 {
                    return bad(format!(
                        "*CLOAD on {} in DOF {}: solid elements have DOFs 1-3 only",
                        target_str(&c.target),
                        c.dof
                    ));
                }
                for n in nodes_of(&c.target) {
                    let mut f = [0.0; 3];
                    f[c.dof as usize - 1] = c.value;
                    loads.nodal_force(n, f);
                }
            }
            for d in &s.dloads {
                let elems = self.load_elements(&built, &d.target, &format!("P{}", d.face))?;
                let mut faces: Vec<Face> = Vec::with_capacity(elems.len());
                for e in elems {
                    let el = &self.elements[built.solid[e]];
                    let et = el.etype;
                    if d.face > et.num_faces() {
                        return bad(format!(
                            "*DLOAD P{} on element {} ({}): it has faces P1..P{}",
                            d.face,
                            el.id,
                            et.name(),
                            et.num_faces()
                        ));
                    }
                    faces.push((e, d.face - 1));
                }
                loads.pressure(&faces, d.value);
            }
            for g in &s.gravity {
                let a = g.acceleration();
                for e in self.load_elements(&built, &g.target, "GRAV")? {
                    let rho = self.density(material[e], built.solid[e])?;
                    loads.body_force(&[e], a.map(|c| rho * c));
                }
            }
        }
        let element_ids = built.solid.iter().map(|&i| self.elements[i].id).collect();
        Ok(InpModel {
            node_ids: self.nodes.iter().map(|(id, _)| *id).collect(),
            element_ids,
            element_material: built.material,
            mesh: built.mesh,
            constraints,
            loads,
            nlgeom: step.is_some_and(|s| s.nlgeom),
        })
    }

    /// Builds the nonlinear (large-deformation) model of the deck for [`crate::nl::solve`]:
    /// every step becomes an [`nl::Step`](crate::nl::Step), solved in order.
    ///
    /// * Elements: C3D4, C3D10, C3D8 and C3D6 (the last two with F-bar, see
    ///   [`crate::continuum::tl_element`]); T3D2 trusses become two-node springs
    ///   ([`nl::SpringLaw::Truss`](crate::nl::SpringLaw::Truss), `k = E A` from the
    ///   material's `*ELASTIC` modulus and the section's area, the force along the current
    ///   bar axis) and stay out of the mesh, so [`InpNlModel::element_ids`] lists the
    ///   solids only. B31 and B32 beams (a B32 as one beam between its end nodes; its
    ///   middle node is no mesh node): every end node of a beam becomes a massless rigid body
    ///   ([`nl::RigidBody`](crate::nl::RigidBody)) whose reference point is the node and
    ///   which carries it as a tied node (a solid or truss sharing the node moves with the
    ///   body, so with the beam end); each element one corotational
    ///   [`nl::Beam`](crate::nl::Beam) between the bodies of its nodes, the section from its
    ///   `*BEAM SECTION` ([`InpBeamSection::section`]: Timoshenko, as B31), local y = n1.
    ///   `*BOUNDARY` on DOFs 1-6 of a beam node prescribes its body's translation and rotation
    ///   (rotation-vector components), `*CLOAD` DOFs 1-3 a force and 4-6 a moment (fixed
    ///   global direction) on the body; [`InpNlModel::beam_nodes`] maps the bodies back.
    /// * Materials: `*HYPERELASTIC, NEO HOOKE` and `MOONEY-RIVLIN` as Abaqus defines them,
    ///   `U = C10 (I1bar - 3) + C01 (I2bar - 3) + (J - 1)^2 / D1` ([`MooneyRivlin`], `C01 = 0`
    ///   for Neo-Hooke), `D1 > 0` (compressible; `D1 = 0`, fully incompressible, is refused);
    ///   `*ELASTIC` becomes St Venant-Kirchhoff (`S = lambda tr(E) I + 2 mu E`, what CalculiX
    ///   uses for `*ELASTIC` under NLGEOM). A material with both is refused.
    /// * Steps follow Abaqus' `OP=MOD` rules: `*BOUNDARY`, `*CLOAD` and `*DLOAD` values of a
    ///   step replace those of the same node DOF or element face from earlier steps and the
    ///   others stay; within a step loads given twice for one DOF or face add up, and a
    ///   boundary value given twice takes the last. Each step ramps linearly from the values
    ///   at its start to its own. A boundary condition first given after the first step is
    ///   refused (the solver holds every prescribed DOF from the start, Abaqus only from its
    ///   step). `*STEP, INC=n` counts attempted increments, cut-back ones included (Abaqus
    ///   counts increments).
    /// * `*DLOAD Pn` is a follower pressure on the deformed face; `*DLOAD GRAV` a dead
    ///   load, the acceleration times each element's `*DENSITY` over its reference volume
    ///   ([`nl::Load::Gravity`](crate::nl::Load::Gravity)), modified per element like the
    ///   pressures.
    /// * `*STATIC` `initial, period, min, max` become fractions of the step (divided by
    ///   `period`, default 1); defaults: initial = period, min = min(initial, 1e-5 period),
    ///   max = period. `DIRECT`: fixed increments of `initial`, no cut-back. `*STEP, INC=n`
    ///   bounds the increments (default 100).
    pub fn to_nl_model(&self) -> Result<InpNlModel, FemError> {
        use crate::nl;
        let bad = |m: String| Err(FemError::InvalidInput(m));
        if self.steps.is_empty() {
            return bad("the deck has no *STEP".into());
        }
        let built = self.mesh_and_materials(true)?;
        let (mesh, node_index, material) = (&built.mesh, &built.node_index, &built.material);
        let ne = mesh.num_elements();
        let mut solids = Vec::new();
        let mut material_models = Vec::new();
        for (mi, m) in self.materials.iter().enumerate() {
            let elements: Vec<usize> = (0..ne).filter(|&e| material[e] == mi).collect();
            if elements.is_empty() {
                continue;
            }
            if let Some(c) = &m.aniso {
                let d = aniso_matrix(c);
                let ti = crate::hyper::TransverselyIsotropic { d: vec![d] };
                material_models.push(format!(
                    "{}: anisotropic St Venant-Kirchhoff (*ELASTIC, TYPE=ANISO, S = D E)",
                    m.name
                ));
                solids.push(nl::SolidBlock {
                    name: m.name.clone(),
                    elements,
                    material: std::sync::Arc::new(ti),
                });
                continue;
            }
            if let Some(c) = &m.user {
                let ef = ElasticFiber::from_constants(c).expect("checked when parsing");
                if !(ef.c10 > 0.0 && ef.d1 > 0.0) {
                    return bad(format!(
                        "material {}: ELASTIC_FIBER needs C10 > 0 and D1 > 0 (got {}, {})",
                        m.name, ef.c10, ef.d1
                    ));
                }
                if ef.fibres.len() > 2 {
                    return bad(format!("material {}: ELASTIC_FIBER with {} fibres: the solver's HGO takes two (give at most two)", m.name, ef.fibres.len()));
                }
                let (f0, f1) = (&ef.fibres[0], ef.fibres.get(1));
                // One fibre: two equal families of half its k1 (the same energy).
                let a1 = f1.map_or(f0.direction, |f| f.direction);
                if f1.is_some_and(|f| f.k1 != f0.k1 || f.k2 != f0.k2) {
                    return bad(format!("material {}: ELASTIC_FIBER fibres with different k1, k2: the solver's HGO takes one k1, k2 for both families", m.name));
                }
                let hgo = crate::hyper::Hgo {
                    params: vec![crate::hyper::HgoParams {
                        c10: ef.c10,
                        bulk: 2.0 / ef.d1,
                        k1: if f1.is_some() { f0.k1 } else { f0.k1 / 2.0 },
                        k2: f0.k2,
                        kappa: 0.0,
                    }],
                    fibres: vec![[f0.direction, a1]],
                    fibre_invariants: crate::hyper::FibreInvariants::Isochoric,
                };
                material_models.push(format!(
                    "{}: ELASTIC_FIBER (HGO, isochoric invariants, kappa = 0): C10 = {}, D1 = {}, k1 = {}, k2 = {}",
                    m.name, ef.c10, ef.d1, f0.k1, f0.k2
                ));
                solids.push(nl::SolidBlock {
                    name: m.name.clone(),
                    elements,
                    material: std::sync::Arc::new(hgo),
                });
                continue;
            }
            let (model, what): (std::sync::Arc<dyn crate::continuum::SolidMaterial>, String) =
                match (&m.hyperelastic, m.elastic) {
                    (Some(_), Some(_)) => {
                        return bad(format!(
                            "material {} has both *ELASTIC and *HYPERELASTIC: give one",
                            m.name
                        ))
                    }
                    (Some(h), None) => {
                        let (c10, c01, d1, name) = match *h {
                            Hyperelastic::NeoHooke { c10, d1 } => (c10, 0.0, d1, "Neo-Hooke"),
                            Hyperelastic::MooneyRivlin { c10, c01, d1 } => {
                                (c10, c01, d1, "Mooney-Rivlin")
                            }
                        };
                        if d1 <= 0.0 {
                            return bad(format!("material {}: *HYPERELASTIC with D1 = {d1} (fully incompressible) needs a mixed formulation the solver does not have: give D1 > 0", m.name));
                        }
                        let mr = MooneyRivlin::from_abaqus(c10, c01, d1).map_err(|e| {
                            FemError::InvalidInput(format!("material {}: {e}", m.name))
                        })?;
                        (
                            std::sync::Arc::new(mr),
                            format!("{name}: C10 = {c10}, C01 = {c01}, D1 = {d1} (U = C10 (I1bar - 3) + C01 (I2bar - 3) + (J - 1)^2 / D1)"),
                        )
                    }
                    (None, Some((e, nu))) => {
                        let linear = LinearElastic::uniform(ne, e, nu).map_err(|err| {
                            FemError::InvalidInput(format!("material {}: {err}", m.name))
                        })?;
                        (
                            std::sync::Arc::new(crate::continuum::StVenantKirchhoff { linear }),
                            format!("St Venant-Kirchhoff (*ELASTIC): E = {e}, nu = {nu}"),
                        )
                    }
                    (None, None) => unreachable!("checked when parsing"),
                };
            material_models.push(format!("{}: {what}", m.name));
            solids.push(nl::SolidBlock {
                name: m.name.clone(),
                elements,
                material: model,
            });
        }
        // Rigid bodies first (body index = order in the deck): the reference point is the REF
        // node; REF and ROT nodes are handles (body, 0 | 3) of the body's DOFs.
        let mut bodies = Vec::new();
        let mut handle: HashMap<u64, (usize, usize)> = HashMap::new();
        let coords: HashMap<u64, [f64; 3]> = self.nodes.iter().copied().collect();
        for (b, rb) in self.rigid_bodies.iter().enumerate() {
            handle.insert(rb.ref_node, (b, 0));
            handle.insert(rb.rot_node, (b, 3));
            bodies.push(nl::RigidBody {
                name: rb.nset.clone(),
                reference: coords[&rb.ref_node],
                tied_nodes: self.node_sets[&rb.nset]
                    .iter()
                    .map(|id| node_index[id])
                    .collect(),
            });
        }
        let rigid_tied: std::collections::HashSet<usize> =
            bodies.iter().flat_map(|b| b.tied_nodes.clone()).collect();
        // What a *BOUNDARY or *CLOAD names: mesh nodes or rigid-body handles.
        let owners_of = |t: &Target| -> Vec<Owner> {
            let one = |id: &u64| match handle.get(id) {
                Some(&(b, off)) => Owner::Handle(b, off),
                None => Owner::Node(node_index[id]),
            };
            match t {
                Target::Id(n) => vec![one(n)],
                Target::Set(s) => self.node_sets[s].iter().map(one).collect(),
            }
        };
        let node_ids = &built.node_ids;
        // Beams: each node of a B31 element becomes a massless rigid body, its reference
        // point the node, carrying the node (tied: it moves with the body, so solids and
        // trusses sharing it are joined to the beam) and its six DOFs.
        let mut body_of: HashMap<usize, usize> = HashMap::new();
        let mut beam_nodes = Vec::new();
        for &i in &built.beams {
            let el = &self.elements[i];
            let ends = [el.nodes[0], *el.nodes.last().expect("beam nodes")];
            for id in &ends {
                let n = node_index[id];
                if rigid_tied.contains(&n) {
                    return bad(format!("node {id} of beam element {} is in a *RIGID BODY's set: a beam node is a body of its own (join them with a short beam or leave the node out of the set)", self.elements[i].id));
                }
                if let std::collections::hash_map::Entry::Vacant(v) = body_of.entry(n) {
                    v.insert(bodies.len());
                    beam_nodes.push((*id, bodies.len()));
                    bodies.push(nl::RigidBody {
                        name: format!("beam node {id}"),
                        reference: mesh.nodes[n],
                        tied_nodes: vec![n],
                    });
                }
            }
        }
        let mut beams = Vec::with_capacity(built.beams.len());
        for (&i, &k) in built.beams.iter().zip(&built.beam_section) {
            let el = &self.elements[i];
            let sec = &self.beam_sections[k];
            let mat = self
                .materials
                .iter()
                .find(|m| m.name == sec.material)
                .expect("checked when parsing");
            let Some((e, nu)) = mat.elastic else {
                unreachable!("checked when parsing")
            };
            let end = |j: usize| {
                let n = node_index[&el.nodes[if j == 0 { 0 } else { el.nodes.len() - 1 }]];
                nl::BeamEnd {
                    body: body_of[&n],
                    at: mesh.nodes[n],
                }
            };
            beams.push(nl::Beam {
                name: format!("{} {}", el.etype.name(), el.id),
                a: end(0),
                b: end(1),
                section: sec.section(nu),
                e,
                nu,
                orientation: sec.n1(),
            });
        }
        if !beams.is_empty() {
            material_models.push(format!(
                "{} beam(s) (B31, B32) through {} node(s): corotational, linear elastic, shear flexible (Timoshenko, Cowper's shear area)",
                beams.len(),
                bodies.len()
            ));
        }
        // Abaqus reads a CIRC data line as the radius, CalculiX 2.20 as the diameter: say which
        // reading was taken, with the size, where the user sees it.
        for sec in &self.beam_sections {
            if let BeamShape::Circ { r } = sec.shape {
                material_models.push(format!(
                    "*BEAM SECTION, ELSET={}, SECTION=CIRC: data line {} read as the diameter, as CalculiX 2.20 reads it (a solid circle of radius {r} mm); Abaqus reads it as the radius: double it for an Abaqus deck",
                    sec.elset,
                    2.0 * r
                ));
            }
        }
        // Current values, (node, dof) and (element, face) -> value.
        let mut bcs: BTreeMap<nl::Dof, f64> = BTreeMap::new();
        let mut forces: BTreeMap<(Owner, usize), f64> = BTreeMap::new();
        let mut pressures: BTreeMap<(usize, u8), f64> = BTreeMap::new();
        // Acceleration (mm/s^2) per element.
        let mut gravity: BTreeMap<usize, [f64; 3]> = BTreeMap::new();
        // Spring index (trusses and SPRINGA, in deck order) and beam index of every line
        // element, for *MODEL CHANGE.
        let spring_index: HashMap<u64, usize> = built
            .trusses
            .iter()
            .enumerate()
            .map(|(k, &i)| (self.elements[i].id, k))
            .collect();
        let beam_index: HashMap<u64, usize> = built
            .beams
            .iter()
            .enumerate()
            .map(|(k, &i)| (self.elements[i].id, k))
            .collect();
        let mut steps = Vec::with_capacity(self.steps.len());
        for (k, s) in self.steps.iter().enumerate() {
            let label = match &s.name {
                Some(n) => format!("step {} ({n})", k + 1),
                None => format!("step {}", k + 1),
            };
            let boundaries = if k == 0 {
                self.boundaries
                    .iter()
                    .chain(&s.boundaries)
                    .collect::<Vec<_>>()
            } else {
                s.boundaries.iter().collect()
            };
            for b in boundaries {
                for o in owners_of(&b.target) {
                    let n = match o {
                        Owner::Handle(body, off) => {
                            if b.last > 3 {
                                return bad(format!("*BOUNDARY on {} constrains DOF {} of a rigid body's {} node: REF and ROT nodes carry DOFs 1-3 (REF: translations; ROT: rotations)", target_str(&b.target), b.last, if off == 0 { "REF" } else { "ROT" }));
                            }
                            for d in b.first as usize - 1..b.last as usize {
                                let dof = nl::Dof::Body { body, k: off + d };
                                if k > 0 && !bcs.contains_key(&dof) {
                                    return bad(format!("{label}: *BOUNDARY on {} DOF {} is first given in this step; a boundary condition must already be set in the first step (the solver holds every prescribed DOF from the start; give it in step 1 and change its value here)", target_str(&b.target), d + 1));
                                }
                                bcs.insert(dof, b.value);
                            }
                            continue;
                        }
                        Owner::Node(n) => n,
                    };
                    for (n, d, v) in boundary_dofs(b, &[n], true)? {
                        if d >= 3 && !body_of.contains_key(&n) {
                            return bad(format!(
                            "*BOUNDARY on {} constrains DOF {} of node {}, which is on no beam: rotations (DOFs 4-6) exist at beam end nodes only; solid and truss nodes have DOFs 1-3",
                            target_str(&b.target),
                            d + 1,
                            node_ids[n]
                        ));
                        }
                        let dof = match body_of.get(&n) {
                            // Rotations as the body's rotation-vector components (exact about a
                            // fixed axis, e.g. a clamp: 0).
                            Some(&body) => nl::Dof::Body { body, k: d },
                            None => nl::Dof::Node { node: n, dir: d },
                        };
                        // The solver holds a DOF prescribed in any step from the first step
                        // on; Abaqus leaves it free until its step. Refused rather than solved
                        // differently.
                        if k > 0 && !bcs.contains_key(&dof) {
                            return bad(format!(
                            "{label}: *BOUNDARY on {} DOF {} is first given in this step; a boundary condition must already be set in the first step (the solver holds every prescribed DOF from the start; give it in step 1 and change its value here)",
                            target_str(&b.target),
                            d + 1
                        ));
                        }
                        bcs.insert(dof, v);
                    }
                }
            }
            let mut step_forces: BTreeMap<(Owner, usize), f64> = BTreeMap::new();
            for c in &s.cloads {
                for o in owners_of(&c.target) {
                    let key = match o {
                        Owner::Handle(body, off) => {
                            if c.dof > 3 {
                                return bad(format!("*CLOAD on {} in DOF {} at a rigid body's {} node: REF and ROT nodes take DOFs 1-3 (REF: force; ROT: moment)", target_str(&c.target), c.dof, if off == 0 { "REF" } else { "ROT" }));
                            }
                            (Owner::Handle(body, 0), off + c.dof as usize - 1)
                        }
                        Owner::Node(n) => {
                            if c.dof > 3 && !body_of.contains_key(&n) {
                                return bad(format!(
                                    "*CLOAD on {} in DOF {} (a moment) at node {}, which is on no beam: solid and truss nodes have DOFs 1-3 only",
                                    target_str(&c.target),
                                    c.dof,
                                    node_ids[n]
                                ));
                            }
                            (o, c.dof as usize - 1)
                        }
                    };
                    *step_forces.entry(key).or_insert(0.0) += c.value;
                }
            }
            forces.extend(step_forces);
            let mut step_pressures: BTreeMap<(usize, u8), f64> = BTreeMap::new();
            for d in &s.dloads {
                let elems = self.load_elements(&built, &d.target, &format!("P{}", d.face))?;
                for e in elems {
                    let el = &self.elements[built.solid[e]];
                    let et = el.etype;
                    if d.face > et.num_faces() {
                        return bad(format!(
                            "*DLOAD P{} on element {} ({}): it has faces P1..P{}",
                            d.face,
                            el.id,
                            et.name(),
                            et.num_faces()
                        ));
                    }
                    *step_pressures.entry((e, d.face - 1)).or_insert(0.0) += d.value;
                }
            }
            pressures.extend(step_pressures);
            let mut step_gravity: BTreeMap<usize, [f64; 3]> = BTreeMap::new();
            for g in &s.gravity {
                let a = g.acceleration();
                for e in self.load_elements(&built, &g.target, "GRAV")? {
                    let v = step_gravity.entry(e).or_insert([0.0; 3]);
                    for d in 0..3 {
                        v[d] += a[d];
                    }
                }
            }
            gravity.extend(step_gravity);
            let mut loads = Vec::new();
            // Forces and moments per node, DOFs 1-6.
            let mut node_force: BTreeMap<Owner, [f64; 6]> = BTreeMap::new();
            for (&(n, d), &v) in &forces {
                if v != 0.0 {
                    node_force.entry(n).or_insert([0.0; 6])[d] = v;
                }
            }
            for (owner, f) in node_force {
                let force = [f[0], f[1], f[2]];
                let moment = [f[3], f[4], f[5]];
                let node = match owner {
                    Owner::Handle(body, _) => {
                        if force != [0.0; 3] {
                            loads.push(nl::Load::BodyForce { body, force });
                        }
                        if moment != [0.0; 3] {
                            loads.push(nl::Load::BodyMoment { body, moment });
                        }
                        continue;
                    }
                    Owner::Node(n) => n,
                };
                // A beam node is its body's reference point.
                match body_of.get(&node) {
                    Some(&body) => {
                        if force != [0.0; 3] {
                            loads.push(nl::Load::BodyForce { body, force });
                        }
                        if moment != [0.0; 3] {
                            loads.push(nl::Load::BodyMoment { body, moment });
                        }
                    }
                    None => loads.push(nl::Load::NodeForce { node, force }),
                }
            }
            let mut by_value: BTreeMap<u64, Vec<Face>> = BTreeMap::new();
            for (&f, &p) in &pressures {
                if p != 0.0 {
                    by_value.entry(p.to_bits()).or_default().push(f);
                }
            }
            for (p, faces) in by_value {
                loads.push(nl::Load::Pressure {
                    faces,
                    pressure: f64::from_bits(p),
                });
            }
            // One gravity load per distinct (density, acceleration).
            let mut by_mass: BTreeMap<(u64, [u64; 3]), Vec<usize>> = BTreeMap::new();
            for (&e, a) in &gravity {
                let rho = self.density(material[e], built.solid[e])?;
                if rho != 0.0 && a.iter().any(|&c| c != 0.0) {
                    by_mass
                        .entry((rho.to_bits(), a.map(f64::to_bits)))
                        .or_default()
                        .push(e);
                }
            }
            for ((rho, a), elements) in by_mass {
                loads.push(nl::Load::Gravity {
                    elements,
                    density: f64::from_bits(rho),
                    acceleration: a.map(f64::from_bits),
                });
            }
            let prescribed = bcs.iter().map(|(&d, &v)| (d, v)).collect();
            let mut deactivate = Vec::new();
            let mut removed_solids = Vec::new();
            for t in &s.remove {
                let ids = match t {
                    Target::Id(id) => std::slice::from_ref(id),
                    Target::Set(s) => self.element_sets[s].as_slice(),
                };
                for id in ids {
                    if let Some(&e) = built.elem_index.get(id) {
                        removed_solids.push(e);
                    } else if let Some(&k) = spring_index.get(id) {
                        deactivate.push(nl::Deactivate::Spring(k));
                    } else if let Some(&k) = beam_index.get(id) {
                        deactivate.push(nl::Deactivate::Beam(k));
                    }
                }
            }
            if !removed_solids.is_empty() {
                deactivate.insert(0, nl::Deactivate::Elements(removed_solids));
            }
            let increments = static_increments(s)
                .map_err(|m| FemError::InvalidInput(format!("{label}: {m}")))?;
            steps.push(nl::Step {
                name: s.name.clone().unwrap_or_else(|| format!("Step-{}", k + 1)),
                loads,
                prescribed,
                increments,
                deactivate,
                ..Default::default()
            });
        }
        // Trusses: two-node springs of axial stiffness E A (force per unit engineering
        // strain), carrying compression as well as tension.
        let mut springs = Vec::with_capacity(built.trusses.len());
        let mut n_springa = 0;
        for (&i, &m) in built.trusses.iter().zip(&built.truss_material) {
            let el = &self.elements[i];
            if el.etype == ElementType::SPRINGA {
                let (na, nb) = (node_index[&el.nodes[0]], node_index[&el.nodes[1]]);
                let l0 = dist(mesh.nodes[na], mesh.nodes[nb]);
                let sp = &self.springs[built.spring_of[i]];
                let (rest_length, law) = springa_law(&sp.table, l0).map_err(|m| {
                    FemError::InvalidInput(format!(
                        "SPRINGA element {} (*SPRING, ELSET={}): {m}",
                        el.id, sp.elset
                    ))
                })?;
                springs.push(nl::Spring {
                    name: format!("SPRINGA {}", el.id),
                    a: nl::Point::Node(na),
                    b: nl::Point::Node(nb),
                    rest_length,
                    law,
                });
                n_springa += 1;
                continue;
            }
            let mat = &self.materials[m];
            let sec = self
                .sections
                .iter()
                .rev()
                .find(|s| self.element_sets[&s.elset].contains(&el.id))
                .expect("every element has a section");
            let (Some((e, _)), Some(a)) = (mat.elastic, sec.area) else {
                unreachable!("checked when parsing")
            };
            let (na, nb) = (node_index[&el.nodes[0]], node_index[&el.nodes[1]]);
            let d: f64 = (0..3)
                .map(|k| (mesh.nodes[nb][k] - mesh.nodes[na][k]).powi(2))
                .sum::<f64>()
                .sqrt();
            if d == 0.0 || !d.is_finite() {
                return bad(format!(
                    "truss element {} (T3D2) has zero length: its nodes {} and {} coincide",
                    el.id, el.nodes[0], el.nodes[1]
                ));
            }
            springs.push(nl::Spring {
                name: format!("T3D2 {}", el.id),
                a: nl::Point::Node(na),
                b: nl::Point::Node(nb),
                rest_length: d,
                law: nl::SpringLaw::Truss { k: e * a },
            });
        }
        if n_springa > 0 {
            material_models.push(format!(
                "{n_springa} SPRINGA spring(s): force along the current line of the nodes, a function of the elongation (*SPRING tables: tension-only where the table starts at zero force)"
            ));
        }
        if built.trusses.len() > n_springa {
            let n = built.trusses.len() - n_springa;
            material_models.push(format!(
                "{n} T3D2 truss(es): linear elastic, axial force E A (l - L) / L in tension and compression"
            ));
        }
        // Contact pairs: slave nodes and master faces on a rigid body become body points.
        let mut body_of_node: HashMap<usize, usize> = HashMap::new();
        for (b, body) in bodies.iter().enumerate() {
            for &n in &body.tied_nodes {
                body_of_node.insert(n, b);
            }
        }
        let point_of = |n: usize| match body_of_node.get(&n) {
            Some(&body) => nl::Point::Body {
                body,
                at: mesh.nodes[n],
            },
            None => nl::Point::Node(n),
        };
        let mut contacts = Vec::with_capacity(self.contact_pairs.len());
        for (k, cp) in self.contact_pairs.iter().enumerate() {
            let surface = |name: &str| {
                self.surfaces
                    .iter()
                    .find(|s| s.name == name)
                    .expect("checked when parsing")
            };
            // Faces of an element surface, outward (away from the element's centroid), as
            // mesh node indices; and their areas.
            let faces_of = |name: &str| -> Result<Vec<(Vec<usize>, f64)>, FemError> {
                let SurfaceMembers::Element(v) = &surface(name).members else {
                    return Err(FemError::InvalidInput(format!(
                        "surface {name} is not an element surface"
                    )));
                };
                let mut out = Vec::with_capacity(v.len());
                for &(id, f) in v {
                    let Some(&e) = built.elem_index.get(&id) else {
                        return Err(FemError::InvalidInput(format!(
                            "surface {name}: element {id} is not a solid element"
                        )));
                    };
                    let en = mesh.element_nodes(e);
                    let local = mesh.kinds[e].faces()[f as usize - 1];
                    let mut nodes: Vec<usize> = local
                        .iter()
                        .take(if local.len() == 6 {
                            3
                        } else {
                            local.len().min(4)
                        })
                        .map(|&l| en[l])
                        .collect();
                    let x = |n: usize| nalgebra::Vector3::from(mesh.nodes[n]);
                    let ec =
                        en.iter().map(|&n| x(n)).sum::<nalgebra::Vector3<f64>>() / en.len() as f64;
                    let fc = nodes.iter().map(|&n| x(n)).sum::<nalgebra::Vector3<f64>>()
                        / nodes.len() as f64;
                    let mut normal = nalgebra::Vector3::zeros();
                    for i in 0..nodes.len() {
                        let j = (i + 1) % nodes.len();
                        normal += (x(nodes[i]) - fc).cross(&(x(nodes[j]) - fc));
                    }
                    if normal.dot(&(fc - ec)) < 0.0 {
                        nodes.reverse();
                    }
                    out.push((nodes, normal.norm() / 2.0));
                }
                Ok(out)
            };
            let master_faces = faces_of(&cp.master)?;
            let mut master = Vec::new();
            for (nodes, _) in &master_faces {
                master.push([point_of(nodes[0]), point_of(nodes[1]), point_of(nodes[2])]);
                if nodes.len() == 4 {
                    master.push([point_of(nodes[0]), point_of(nodes[2]), point_of(nodes[3])]);
                }
            }
            let mean_master =
                master_faces.iter().map(|f| f.1).sum::<f64>() / master_faces.len().max(1) as f64;
            // Surface to surface: mortar contact on the slave element faces (corner nodes;
            // faces with mid-side nodes are refused: their corners alone would not carry
            // the pressure the way the element's own face does).
            let mut slave_faces = Vec::new();
            let mortar_slave = if cp.surface_to_surface {
                if let SurfaceMembers::Element(v) = &surface(&cp.slave).members {
                    for &(id, f) in v {
                        if let Some(&e) = built.elem_index.get(&id) {
                            let n = mesh.kinds[e].faces()[f as usize - 1].len();
                            if n > 4 {
                                return bad(format!(
                                    "*CONTACT PAIR ({} on {}), TYPE=SURFACE TO SURFACE: element {id} face S{f} has {n} nodes; only 3- and 4-node faces (C3D4, C3D8, C3D6) are supported as slave faces (TYPE=NODE TO SURFACE takes any)",
                                    cp.slave, cp.master
                                ));
                            }
                        }
                    }
                }
                let faces = faces_of(&cp.slave)?;
                let mut index: BTreeMap<usize, usize> = BTreeMap::new();
                for (nodes, _) in &faces {
                    for &n in nodes {
                        let next = index.len();
                        index.entry(n).or_insert(next);
                    }
                }
                let mut order = vec![0; index.len()];
                for (&n, &i) in &index {
                    order[i] = n;
                }
                for (nodes, _) in &faces {
                    let c: Vec<usize> = nodes.iter().map(|n| index[n]).collect();
                    slave_faces.push(match c[..] {
                        [a, b, d] => nl::SlaveFace::Tri([a, b, d]),
                        [a, b, d, e] => nl::SlaveFace::Quad([a, b, d, e]),
                        _ => {
                            return bad(format!(
                                "*CONTACT PAIR ({} on {}), TYPE=SURFACE TO SURFACE: a slave face with {} corners; only triangles and quadrilaterals are supported",
                                cp.slave,
                                cp.master,
                                c.len()
                            ))
                        }
                    });
                }
                Some(order.into_iter().map(point_of).collect::<Vec<_>>())
            } else {
                None
            };
            let (slave, slave_area): (Vec<nl::Point>, Vec<f64>) = match &surface(&cp.slave).members
            {
                _ if mortar_slave.is_some() => (mortar_slave.unwrap_or_default(), Vec::new()),
                // CalculiX: a node of a node surface takes the area of the master face it
                // meets; the mean master face area stands for it.
                SurfaceMembers::Node(v) => {
                    let mut seen = std::collections::HashSet::new();
                    let mut out = (Vec::new(), Vec::new());
                    for id in v.iter().filter(|id| seen.insert(**id)) {
                        let n = surface_node(
                            node_index,
                            *id,
                            &format!("*CONTACT PAIR ({} on {})", cp.slave, cp.master),
                        )?;
                        out.0.push(point_of(n));
                        out.1.push(mean_master);
                    }
                    out
                }
                SurfaceMembers::Element(_) => {
                    let mut area: BTreeMap<usize, f64> = BTreeMap::new();
                    for (nodes, a) in faces_of(&cp.slave)? {
                        for &n in &nodes {
                            *area.entry(n).or_insert(0.0) += a / nodes.len() as f64;
                        }
                    }
                    area.into_iter().map(|(n, a)| (point_of(n), a)).unzip()
                }
            };
            let it = self
                .interactions
                .iter()
                .find(|i| i.name == cp.interaction)
                .expect("checked when parsing");
            if cp.surface_to_surface {
                if it.friction.is_some() {
                    return bad(format!(
                        "*CONTACT PAIR ({} on {}), TYPE=SURFACE TO SURFACE with *FRICTION: the solver's surface-to-surface (mortar) contact is frictionless; use TYPE=NODE TO SURFACE for friction",
                        cp.slave, cp.master
                    ));
                }
                material_models.push(format!(
                    "contact pair {} ({} on {}): surface-to-surface, solved as mortar penalty contact, K = {} MPa/mm, {} slave faces",
                    k + 1,
                    cp.slave,
                    cp.master,
                    it.slope,
                    slave_faces.len()
                ));
            } else {
                material_models.push(format!(
                    "contact pair {} ({} on {}): node-to-surface penalty K = {} MPa/mm{}, per-point area {} (the mean master face area for a node surface)",
                    k + 1,
                    cp.slave,
                    cp.master,
                    it.slope,
                    match it.friction {
                        Some((mu, _)) => format!(", friction {mu}"),
                        None => String::new(),
                    },
                    if slave_area.is_empty() { 0.0 } else { slave_area[0] }
                ));
            }
            contacts.push(nl::ContactPair {
                name: format!("{} on {}", cp.slave, cp.master),
                slave,
                slave_area,
                master,
                penalty: it.slope,
                clearance: 0.0,
                friction: it.friction.map_or(0.0, |f| f.0),
                augmented: None,
                // *FRICTION's stick slope is the tangential penalty.
                tangential_penalty: it.friction.map(|f| f.1),
                search_depth: None,
                slave_faces,
            });
        }
        // Ties: CalculiX's exact MPCs become penalty ties (the solver's automatic penalty),
        // node-to-surface; the master faces as triangles (quadrilaterals split along their
        // 1-3 diagonal, six-node triangles into four).
        let mut ties = Vec::with_capacity(self.ties.len());
        for t in &self.ties {
            let surface = |name: &str| {
                self.surfaces
                    .iter()
                    .find(|s| s.name == name)
                    .expect("checked when parsing")
            };
            let face_nodes = |id: u64, f: u8, what: &str| -> Result<Vec<usize>, FemError> {
                let Some(&e) = built.elem_index.get(&id) else {
                    return Err(FemError::InvalidInput(format!(
                        "*TIE {}: {what} surface element {id} is not a solid element",
                        t.name
                    )));
                };
                let en = mesh.element_nodes(e);
                Ok(mesh.kinds[e].faces()[f as usize - 1]
                    .iter()
                    .map(|&l| en[l])
                    .collect())
            };
            let SurfaceMembers::Element(mfaces) = &surface(&t.master).members else {
                unreachable!("checked when parsing")
            };
            let mut master = Vec::new();
            let mut edge = 0.0;
            for &(id, f) in mfaces {
                let n = face_nodes(id, f, "master")?;
                let p = |i: usize| point_of(n[i]);
                let tris: Vec<[usize; 3]> = match n.len() {
                    3 => vec![[0, 1, 2]],
                    4 => vec![[0, 1, 2], [0, 2, 3]],
                    6 => vec![[0, 3, 5], [3, 1, 4], [5, 4, 2], [3, 4, 5]],
                    k => {
                        return bad(format!(
                            "*TIE {}: a master face with {k} nodes is not supported",
                            t.name
                        ))
                    }
                };
                for [a, b, c] in tris {
                    let x = |i: usize| mesh.nodes[n[i]];
                    edge += (dist(x(a), x(b)) + dist(x(b), x(c)) + dist(x(c), x(a))) / 3.0;
                    master.push([p(a), p(b), p(c)]);
                }
            }
            let mut seen = std::collections::HashSet::new();
            let slave_nodes: Vec<usize> = match &surface(&t.slave).members {
                SurfaceMembers::Node(v) => v
                    .iter()
                    .map(|id| surface_node(node_index, *id, &format!("*TIE {}", t.name)))
                    .collect::<Result<_, _>>()?,
                SurfaceMembers::Element(v) => {
                    let mut out = Vec::new();
                    for &(id, f) in v {
                        out.extend(face_nodes(id, f, "slave")?);
                    }
                    out
                }
            };
            let slave: Vec<nl::Point> = slave_nodes
                .into_iter()
                .filter(|n| seen.insert(*n))
                .map(point_of)
                .collect();
            // CalculiX's default: 2.5 % of a typical element size (here the mean master
            // edge).
            let tolerance = t
                .tolerance
                .filter(|&v| v >= 1e-10)
                .unwrap_or(0.025 * edge / master.len().max(1) as f64);
            material_models.push(format!(
                "tie {} ({} on {}): {} slave node(s) on {} master triangle(s), position tolerance {tolerance} mm; CalculiX's exact MPCs solved as a node-to-surface penalty tie (automatic penalty){}",
                t.name,
                t.slave,
                t.master,
                slave.len(),
                master.len(),
                if t.adjust {
                    "; ADJUST=YES: CalculiX moves slave nodes onto the master, the solver bonds them where they are"
                } else {
                    ""
                }
            ));
            ties.push(nl::Tie {
                name: t.name.clone(),
                slave,
                slave_triangles: Vec::new(),
                master,
                tolerance,
                penalty: None,
            });
        }
        let element_ids = built.solid.iter().map(|&i| self.elements[i].id).collect();
        Ok(InpNlModel {
            model: nl::Model {
                mesh: built.mesh,
                solids,
                springs,
                bodies,
                beams,
                connectors: Vec::new(),
                steps,
                contacts,
                ties,
            },
            node_ids: built.node_ids.clone(),
            element_ids,
            material_models,
            beam_nodes,
            rigid_bodies: self
                .rigid_bodies
                .iter()
                .map(|r| (r.ref_node, r.rot_node))
                .collect(),
        })
    }

    /// A deck for a linear-elastic model: node `i` gets id `i + 1`, element `e` id `e + 1`;
    /// node and element sets keep their (upper-cased) names; one material and element set
    /// (`MAT1`, `EMAT1`, ...) per distinct `(E, nu)`; constraints become `*BOUNDARY` lines;
    /// pressures `*DLOAD Pn`; nodal forces, tractions and body forces become `*CLOAD`s of
    /// their consistent nodal forces (exact for the linear solve). One static step.
    pub fn from_model(
        mesh: &Mesh,
        material: &LinearElastic,
        constraints: &Constraints,
        loads: &Loads,
    ) -> Result<Deck, FemError> {
        mesh.validate()?;
        let ne = mesh.num_elements();
        if material.len() != ne {
            return Err(FemError::InvalidInput(format!(
                "material covers {} elements, the mesh has {ne}",
                material.len()
            )));
        }
        let mut deck = Deck::with_nodes_of(mesh, "written by spinetwin-fem");
        for e in 0..ne {
            deck.elements.push(InpElement::of_mesh(mesh, e));
        }
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
        };
        for (name, set) in &mesh.node_sets {
            if valid(name) {
                deck.node_sets.insert(
                    name.to_ascii_uppercase(),
                    set.iter().map(|&n| n as u64 + 1).collect(),
                );
            }
        }
        for (name, set) in &mesh.element_sets {
            if valid(name) {
                deck.element_sets.insert(
                    name.to_ascii_uppercase(),
                    set.iter().map(|&n| n as u64 + 1).collect(),
                );
            }
        }
        // Materials by exact (E, nu) bits, in order of first use.
        let mut groups: Vec<((u64, u64), Vec<u64>)> = Vec::new();
        let mut group_of: HashMap<(u64, u64), usize> = HashMap::new();
        for e in 0..ne {
            let key = (material.youngs[e].to_bits(), material.poisson[e].to_bits());
            let g = *group_of.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(e as u64 + 1);
        }
        for (k, ((eb, nb), elems)) in groups.into_iter().enumerate() {
            let name = format!("MAT{}", k + 1);
            let elset = format!("EMAT{}", k + 1);
            deck.element_sets.insert(elset.clone(), elems);
            deck.materials.push(InpMaterial {
                name: name.clone(),
                elastic: Some((f64::from_bits(eb), f64::from_bits(nb))),
                hyperelastic: None,
                density: None,
                aniso: None,
                user: None,
            });
            deck.sections.push(SolidSection {
                elset,
                material: name,
                area: None,
            });
        }
        let mut step = Step::default();
        // Consecutive DOFs of a node with equal values share a line.
        let mut it = constraints.values.iter().peekable();
        while let Some((&g, &v)) = it.next() {
            let (n, d0) = (g / 3, g % 3);
            let mut d1 = d0;
            while let Some((&g2, &v2)) = it.peek() {
                if d1 < 2 && g2 == 3 * n + d1 + 1 && v2.to_bits() == v.to_bits() {
                    d1 += 1;
                    it.next();
                } else {
                    break;
                }
            }
            deck.boundaries.push(Boundary {
                target: Target::Id(n as u64 + 1),
                first: d0 as u8 + 1,
                last: d1 as u8 + 1,
                value: v,
            });
        }
        for (faces, p) in &loads.pressures {
            for &(e, f) in faces {
                if e >= ne || f as usize >= mesh.kinds[e].num_faces() {
                    return Err(FemError::InvalidInput(format!(
                        "pressure on invalid face {:?}",
                        (e, f)
                    )));
                }
                step.dloads.push(Dload {
                    target: Target::Id(e as u64 + 1),
                    face: f + 1,
                    value: *p,
                });
            }
        }
        let rest = Loads {
            nodal: loads.nodal.clone(),
            pressures: Vec::new(),
            tractions: loads.tractions.clone(),
            body: loads.body.clone(),
        };
        let f = rest.assemble(mesh)?;
        for (g, &v) in f.iter().enumerate() {
            if v != 0.0 {
                step.cloads.push(Cload {
                    target: Target::Id((g / 3) as u64 + 1),
                    dof: (g % 3) as u8 + 1,
                    value: v,
                });
            }
        }
        deck.steps.push(step);
        Ok(deck)
    }
}

/// A deck's mesh of solids and what maps it back to the deck.
struct Built {
    mesh: Mesh,
    /// Deck id of every mesh node (the deck's nodes less the rigid bodies' REF and ROT).
    node_ids: Vec<u64>,
    /// Index into [`Deck::springs`] of every deck element (`usize::MAX` when none).
    spring_of: Vec<usize>,
    node_index: HashMap<u64, usize>,
    /// Deck id -> mesh index of the solid elements.
    elem_index: HashMap<u64, usize>,
    /// Material index per mesh element.
    material: Vec<usize>,
    /// Deck index of every mesh element.
    solid: Vec<usize>,
    /// Deck indices of the trusses (nonlinear path).
    trusses: Vec<usize>,
    /// Material index per truss.
    truss_material: Vec<usize>,
    /// Deck indices of the beams (nonlinear path).
    beams: Vec<usize>,
    /// Index into [`Deck::beam_sections`] per beam.
    beam_section: Vec<usize>,
}

/// The mesh node of a node-surface member `id`, or an error naming `what` when it is not a
/// mesh node (a `*RIGID BODY`'s REF or ROT node has no place on a surface).
fn surface_node(node_index: &HashMap<u64, usize>, id: u64, what: &str) -> Result<usize, FemError> {
    node_index.get(&id).copied().ok_or_else(|| {
        FemError::InvalidInput(format!(
            "{what}: node {id} of the node surface is not a mesh node (a *RIGID BODY's REF or \
             ROT node cannot be on a surface): list the body's mesh nodes instead"
        ))
    })
}
fn node_target(
    tok: &str,
    line: usize,
    index: &HashMap<u64, usize>,
    sets: &BTreeMap<String, Vec<u64>>,
) -> Result<Target, InpError> {
    if tok.starts_with(|c: char| c.is_ascii_digit()) {
        let id = parse_id(tok, line, "node id")?;
        if !index.contains_key(&id) {
            return err(line, format!("node {id} is not defined"));
        }
        Ok(Target::Id(id))
    } else {
        let name = tok.to_ascii_uppercase();
        if !sets.contains_key(&name) {
            return err(line, format!("node set {name} is not defined"));
        }
        Ok(Target::Set(name))
    }
}

/// `(node index, DOF 0..=5, value)` of every DOF a `*BOUNDARY` line sets on `nodes`; with
/// `rotations` false a DOF beyond 3 is refused (solid elements carry translations only).
fn boundary_dofs(
    b: &Boundary,
    nodes: &[usize],
    rotations: bool,
) -> Result<Vec<(usize, usize, f64)>, FemError> {
    if b.last > 3 && !rotations {
        return Err(FemError::InvalidInput(format!(
            "*BOUNDARY on {} constrains DOF {}: solid elements have DOFs 1-3 only",
            target_str(&b.target),
            b.last
        )));
    }
    Ok(nodes
        .iter()
        .flat_map(|&n| (b.first..=b.last).map(move |d| (n, d as usize - 1, b.value)))
        .collect())
}

fn target_str(t: &Target) -> String {
    match t {
        Target::Id(n) => n.to_string(),
        Target::Set(s) => s.clone(),
    }
}

fn write_sets(o: &mut String, kw: &str, sets: &BTreeMap<String, Vec<u64>>) {
    for (name, ids) in sets {
        let _ = writeln!(o, "*{kw}, {kw}={name}");
        // At most 16 entries per data line (Abaqus limit).
        for chunk in ids.chunks(16) {
            let v: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let _ = writeln!(o, "{},", v.join(", "));
        }
    }
}

/// CalculiX reads a number from at most 20 characters: a data field longer than that (a
/// shortest round-trip `{:e}` of 17 digits with a sign and a long exponent) is rewritten
/// with as many digits as fit (at least 15 significant digits, 1e-15 relative). Lines up to
/// the first `*NODE` (heading, comments) and keyword lines are kept.
fn fit_fields(text: &str) -> String {
    const WIDTH: usize = 20;
    let mut out = String::with_capacity(text.len());
    let mut data = false;
    for l in text.lines() {
        if l.starts_with("*NODE") {
            data = true;
        }
        if !data || l.starts_with('*') || l.split(',').all(|t| t.trim().len() <= WIDTH) {
            out += l;
        } else {
            let t: Vec<String> = l
                .split(',')
                .map(|t| {
                    let t = t.trim();
                    match t.parse::<f64>() {
                        Ok(v) if t.len() > WIDTH => (0..=16)
                            .rev()
                            .map(|p| format!("{v:.p$e}"))
                            .find(|s| s.len() <= WIDTH)
                            .unwrap_or_else(|| t.to_string()),
                        _ => t.to_string(),
                    }
                })
                .collect();
            out += &t.join(", ");
        }
        out += "\n";
    }
    out
}

/// `{:e}` with a decimal point in the mantissa (`1e0` -> `1.0e0`), as CalculiX's *SPRING
/// reader needs (see [`Deck::write`]).
fn dotted(v: f64) -> String {
    let s = format!("{v:e}");
    if s.contains('.') {
        s
    } else {
        s.replacen('e', ".0e", 1)
    }
}

/// Numbers, at most 8 per line (CalculiX's limit for material constants).
fn write_values(o: &mut String, v: &[f64]) {
    for chunk in v.chunks(8) {
        let t: Vec<String> = chunk.iter().map(|x| format!("{x:e}")).collect();
        *o += &t.join(", ");
        *o += "\n";
    }
}

fn write_boundaries(o: &mut String, b: &[Boundary]) {
    if b.is_empty() {
        return;
    }
    *o += "*BOUNDARY\n";
    for b in b {
        let _ = writeln!(
            o,
            "{}, {}, {}, {:e}",
            target_str(&b.target),
            b.first,
            b.last,
            b.value
        );
    }
}

/// Increment control of a step from `*STATIC` (see [`Deck::to_nl_model`]).
fn static_increments(s: &Step) -> Result<crate::nl::Increments, String> {
    let p = &s.static_params;
    if p.len() > 4 {
        return Err(format!(
            "*STATIC has {} values; the solver reads initial, period, min, max",
            p.len()
        ));
    }
    let given = |i: usize| p.get(i).copied().filter(|&v| v != 0.0);
    let period = given(1).unwrap_or(1.0);
    if period <= 0.0 {
        return Err(format!("*STATIC time period {period} must be positive"));
    }
    let initial = given(0).unwrap_or(period) / period;
    if !(initial > 0.0 && initial <= 1.0) {
        return Err(format!(
            "*STATIC initial increment {} must be in (0, period = {period}]",
            initial * period
        ));
    }
    let max_increments = s.max_increments.unwrap_or(100);
    if s.direct {
        let needed = (1.0 / initial - 1e-9).ceil() as usize;
        if needed > max_increments {
            return Err(format!("*STATIC, DIRECT with increment {} needs {needed} increments, more than INC = {max_increments}", initial * period));
        }
        return Ok(crate::nl::Increments {
            initial,
            min: initial,
            max: initial,
            max_increments,
            cutback: false,
        });
    }
    let min = given(2).map_or(initial.min(1e-5), |v| v / period);
    let max = given(3).map_or(1.0, |v| v / period);
    if !(min > 0.0 && min <= initial) {
        return Err(format!(
            "*STATIC minimum increment {} must be in (0, initial = {}]",
            min * period,
            initial * period
        ));
    }
    if max < initial {
        return Err(format!(
            "*STATIC maximum increment {} is below the initial increment {}",
            max * period,
            initial * period
        ));
    }
    Ok(crate::nl::Increments {
        initial,
        min,
        max: max.min(1.0),
        max_increments,
        cutback: true,
    })
}

/// The nonlinear model of a deck (see [`Deck::to_nl_model`]).
#[derive(Clone, Debug)]
pub struct InpNlModel {
    /// The model: mesh (0-based, file order), one solid block per material, the steps.
    pub model: crate::nl::Model,
    /// Deck id of each mesh node.
    pub node_ids: Vec<u64>,
    /// Deck id of each mesh element.
    pub element_ids: Vec<u64>,
    /// One line per material used: its name, the constitutive model and its parameters.
    pub material_models: Vec<String>,
    /// `(deck node id, index into model.bodies)` of every B31 node, in order of first use:
    /// the body's translation is the node's displacement, its rotation the node's.
    pub beam_nodes: Vec<(u64, usize)>,
    /// `(REF node, ROT node)` deck ids of every `*RIGID BODY`, by body index (the rigid
    /// bodies come first in `model.bodies`, in deck order; REF and ROT nodes are not mesh
    /// nodes).
    pub rigid_bodies: Vec<(u64, u64)>,
}

/// What a `*BOUNDARY` or `*CLOAD` line names: a mesh node, or a rigid body's REF (offset 0)
/// or ROT (offset 3) node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Node(usize),
    Handle(usize, usize),
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2) + (b[2] - a[2]).powi(2)).sqrt()
}

/// Rest length and law of a SPRINGA spring of initial length `l0` from its `*SPRING`
/// table. A linear spring is a truss of `k = stiffness * l0` (it pushes); a nonlinear table
/// must start at zero force (a tension-only spring): its rest length is where the force
/// starts to rise, `l0 + e_z` with `e_z` the last elongation of the leading zero forces,
/// and the points after it become a piecewise law in strain `(e - e_z) / rest`. Beyond its
/// last point CalculiX holds the force constant while the piecewise law extrapolates with
/// the last slope (the writer extends its tables far, see [`Deck::from_nl_model`]).
fn springa_law(t: &SpringTable, l0: f64) -> Result<(f64, crate::nl::SpringLaw), String> {
    if !(l0 > 0.0 && l0.is_finite()) {
        return Err("zero length: its nodes coincide".into());
    }
    match t {
        SpringTable::Linear(k) => Ok((l0, crate::nl::SpringLaw::Truss { k: k * l0 })),
        SpringTable::Nonlinear(v) => {
            if v[0].0 != 0.0 {
                return Err(format!("the table starts at force {} : only tables starting at zero force (tension-only springs) are supported, or a linear *SPRING", v[0].0));
            }
            let z = v.iter().take_while(|p| p.0 == 0.0).count() - 1;
            let e_z = v[z].1;
            let rest = l0 + e_z;
            if rest <= 0.0 {
                return Err(format!(
                    "the force starts to rise at elongation {e_z}, at or below zero length"
                ));
            }
            let pts: Vec<(f64, f64)> = v[z + 1..]
                .iter()
                .map(|&(f, e)| ((e - e_z) / rest, f))
                .collect();
            if pts.is_empty() {
                return Err("the table carries no force".into());
            }
            Ok((rest, crate::nl::SpringLaw::Piecewise(pts)))
        }
    }
}

/// The FE model of a deck (see [`Deck::to_model`]).
#[derive(Clone, Debug)]
pub struct InpModel {
    /// The mesh; nodes and elements 0-based in file order; sets keep their names.
    pub mesh: Mesh,
    /// Deck id of each mesh node.
    pub node_ids: Vec<u64>,
    /// Deck id of each mesh element.
    pub element_ids: Vec<u64>,
    /// Index into [`Deck::materials`] of each element.
    pub element_material: Vec<usize>,
    /// Prescribed displacements (model data and the step).
    pub constraints: Constraints,
    /// Loads of the step.
    pub loads: Loads,
    /// The step asks for geometric nonlinearity.
    pub nlgeom: bool,
}

impl InpModel {
    /// The linear-elastic material of every element, or an error naming a material with
    /// no `*ELASTIC` (a hyperelastic one needs the nonlinear solver).
    pub fn linear_material(&self, deck: &Deck) -> Result<LinearElastic, FemError> {
        let mut youngs = Vec::with_capacity(self.element_material.len());
        let mut poisson = Vec::with_capacity(self.element_material.len());
        for &m in &self.element_material {
            let mat = &deck.materials[m];
            match mat.elastic {
                Some((e, nu)) => {
                    youngs.push(e);
                    poisson.push(nu);
                }
                None => {
                    return Err(FemError::InvalidInput(format!("material {} has no *ELASTIC constants (it is hyperelastic): a linear solve cannot use it", mat.name)));
                }
            }
        }
        LinearElastic::per_element(youngs, poisson)
    }
}

/// Nodal displacements of the last `displacements` block in a CalculiX `.dat` file (what
/// `*NODE PRINT, NSET=..., U` writes): node id -> `[u1, u2, u3]` in the deck's units. Used to
/// compare spinetwin with ccx on the same deck.
pub fn ccx_dat_displacements(text: &str) -> Result<HashMap<u64, [f64; 3]>, FemError> {
    let mut out = HashMap::new();
    let mut inside = false;
    for (k, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with("displacements") {
            // A later printout (a later increment or step) replaces an earlier one.
            out.clear();
            inside = true;
            continue;
        }
        if !inside || t.is_empty() {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        match (f.len(), f.first().and_then(|s| s.parse::<u64>().ok())) {
            (4, Some(id)) => {
                let v = |i: usize| {
                    f[i].parse::<f64>().map_err(|_| {
                        FemError::InvalidInput(format!(
                            "ccx .dat line {}: bad number {:?}",
                            k + 1,
                            f[i]
                        ))
                    })
                };
                out.insert(id, [v(1)?, v(2)?, v(3)?]);
            }
            _ => inside = false,
        }
    }
    if out.is_empty() {
        return Err(FemError::InvalidInput(
            "ccx .dat: no displacement printout (the deck needs *NODE PRINT ..., U)".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{box_mesh, Order};

    const BAR: &str = "\
** a two-tet deck
*HEADING
bar test
*NODE, NSET=NALL
1, 0, 0, 0
2, 1.0, 0, 0
3, 0, 1, 0
4, 0, 0, 1
5, 1D0, 1, 1
*ELEMENT, TYPE=C3D4, ELSET=EALL
10, 1, 2, 3, 4
11, 2, 5, 3,
4
*NSET, NSET=BASE
1, 3
*NSET, NSET=GEN, GENERATE
1, 5, 2
*ELSET, ELSET=ONE
10
*MATERIAL, NAME=Steel
*ELASTIC
210000., 0.3
*MATERIAL, NAME=RUBBER
*HYPERELASTIC, MOONEY-RIVLIN
0.5, 0.1, 0.01
*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL
*BOUNDARY
BASE, 1, 3
4, 2, 2, 0.5
*STEP, NLGEOM
*STATIC
0.1, 1.0
*CLOAD
5, 3, -10.0
GEN, 1, 2
*DLOAD
ONE, P2, 1.5
11, P4, 2
*NODE PRINT, NSET=NALL
U
*END STEP
";

    #[test]
    fn parses_the_subset() {
        let d = Deck::parse(BAR).unwrap();
        assert_eq!(d.heading, vec!["bar test"]);
        assert_eq!(d.nodes.len(), 5);
        assert_eq!(d.nodes[4], (5, [1.0, 1.0, 1.0]));
        assert_eq!(d.elements[1].nodes, vec![2, 5, 3, 4]);
        assert_eq!(d.node_sets["GEN"], vec![1, 3, 5]);
        assert_eq!(d.node_sets["NALL"].len(), 5);
        assert_eq!(d.materials[0].elastic, Some((210000.0, 0.3)));
        assert_eq!(
            d.materials[1].hyperelastic,
            Some(Hyperelastic::MooneyRivlin {
                c10: 0.5,
                c01: 0.1,
                d1: 0.01
            })
        );
        assert!(d.steps[0].nlgeom && d.needs_nonlinear());
        assert_eq!(d.steps[0].static_params, vec![0.1, 1.0]);
        assert_eq!(d.steps[0].outputs, vec!["*NODE PRINT, NSET=NALL", "U"]);
        let m = d.to_model().unwrap();
        assert_eq!(m.node_ids, vec![1, 2, 3, 4, 5]);
        assert_eq!(m.element_ids, vec![10, 11]);
        // Base nodes 1 and 3 in x, y, z, plus node 4 in y at 0.5.
        assert_eq!(m.constraints.values.len(), 7);
        assert_eq!(m.constraints.values[&(3 * 3 + 1)], 0.5);
        // One CLOAD on node 5 plus GEN = {1, 3, 5} in y.
        assert_eq!(m.loads.nodal.len(), 4);
        assert_eq!(m.loads.pressures[0], (vec![(0, 1)], 1.5));
        assert_eq!(m.loads.pressures[1], (vec![(1, 3)], 2.0));
        assert!(m.linear_material(&d).is_ok());
    }

    #[test]
    fn write_then_parse_round_trips() {
        let d = Deck::parse(BAR).unwrap();
        let text = d.write();
        let d2 = Deck::parse(&text).unwrap();
        assert_eq!(d, d2);
        // Awkward numbers survive (shortest round-trip formatting).
        let mut d3 = d.clone();
        d3.nodes[0].1 = [0.1 + 0.2, -1e-300, 12345.678901234567];
        assert_eq!(Deck::parse(&d3.write()).unwrap(), d3);
    }

    #[test]
    fn from_model_round_trips_to_the_same_model() {
        let mesh = box_mesh([2.0, 1.0, 1.0], [2, 1, 1], Order::Quadratic).unwrap();
        let mut youngs = vec![100.0; mesh.num_elements()];
        youngs[0] = 50.0;
        let mat = LinearElastic::with_youngs(youngs, 0.25).unwrap();
        let mut bc = Constraints::new();
        bc.fix(mesh.node_set("xmin").unwrap(), [true, true, true]);
        bc.prescribe(5, 1, 0.01);
        let mut loads = Loads::new();
        loads.pressure(mesh.face_set("xmax").unwrap(), 2.0);
        loads.traction(mesh.face_set("zmax").unwrap(), [0.0, 0.0, -1.0]);
        let deck = Deck::from_model(&mesh, &mat, &bc, &loads).unwrap();
        let back = Deck::parse(&deck.write()).unwrap();
        assert_eq!(back, deck);
        let m = back.to_model().unwrap();
        assert_eq!(m.mesh.connectivity, mesh.connectivity);
        assert_eq!(m.mesh.nodes, mesh.nodes);
        assert_eq!(m.constraints.values, bc.values);
        let mat2 = m.linear_material(&back).unwrap();
        assert_eq!(mat2.youngs, mat.youngs);
        assert_eq!(back.materials.len(), 2);
        // Same loads: equal consistent force vectors.
        let f1 = loads.assemble(&mesh).unwrap();
        let f2 = m.loads.assemble(&m.mesh).unwrap();
        for (a, b) in f1.iter().zip(&f2) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(f1.iter().any(|v| v.abs() > 0.1));
    }

    fn line_of(text: &str) -> InpError {
        Deck::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let e = line_of("*NODE\n1, 0, 0, 0\n*INCLUDE, INPUT=x.inp\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("*INCLUDE"), "{e}");
        let e = line_of(
            "*NODE\n1, 0, 0, 0\n2, 1, 0, 0\n3, 0, 1, 0\n*ELEMENT, TYPE=C3D4\n1, 1, 2, 3, 9\n",
        );
        assert_eq!(e.line, 6);
        assert!(e.message.contains("node 9"), "{e}");
        let e = line_of("*NODE\n1, 0, 0, 0\n2, 1, 0.x, 0\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("0.x"), "{e}");
        let e = line_of("*NODE\n1, 0, 0, 0\n*ELEMENT, TYPE=C3D20\n");
        assert!(e.message.contains("C3D20") && e.line == 3, "{e}");
        let e = line_of("*NODE\n1, 0, 0, 0\n*CLOAD\n1, 1, 1.0\n");
        assert!(e.message.contains("*STEP") && e.line == 3, "{e}");
        let e = line_of("*NODE\n1, 0, 0, 0\n*BOUNDARY\nFOO, 1, 3\n");
        assert!(e.message.contains("FOO") && e.line == 4, "{e}");
        let e = line_of("*NODE\n1, 0, 0, 0\n1, 1, 1, 1\n");
        assert!(e.message.contains("twice") && e.line == 3, "{e}");
        let e = line_of("*STEP\n*STATIC\n");
        assert!(e.message.contains("*END STEP"), "{e}");
    }

    #[test]
    fn unsupported_elements_are_read_but_not_solved() {
        let text = "*NODE\n1,0,0,0\n2,1,0,0\n3,0,1,0\n4,0,0,1\n5,1,1,0\n6,1,0,1\n*ELEMENT, TYPE=C3D6, ELSET=W\n7, 1, 2, 3, 4, 6, 5\n*ELEMENT, TYPE=B31\n8, 1, 2\n";
        let d = Deck::parse(text).unwrap();
        assert_eq!(d.elements.len(), 2);
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        // The wedge is solved by both paths; the beam by the nonlinear one only, and the
        // linear one names it.
        let e = d.to_model().unwrap_err().to_string();
        assert!(e.contains("B31") && e.contains("not supported"), "{e}");
        assert_eq!(ElementType::C3D6.kind(), Some(ElementKind::Wedge6));
        assert_eq!(ElementType::C3D8.kind(), Some(ElementKind::Hex8));
    }

    #[test]
    fn gravity_needs_a_density_and_becomes_a_body_force_on_both_paths() {
        // Direction (0, 0, -2) normalised: 9810 mm/s^2 downwards on STEEL's 7.85e-9 t/mm^3.
        let with = |density: &str, load: &str| {
            BAR.replace("210000., 0.3\n", &format!("210000., 0.3\n{density}"))
                .replace("11, P4, 2\n", &format!("11, P4, 2\n{load}\n"))
        };
        let text = with("*DENSITY\n7.85e-9\n", "ONE, GRAV, 9810., 0, 0, -2");
        let d = Deck::parse(&text).unwrap();
        assert_eq!(d.materials[0].density, Some(7.85e-9));
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        let b = 7.85e-9 * 9810.0;
        let m = d.to_model().unwrap();
        assert_eq!(m.loads.body, vec![(vec![0], [0.0, 0.0, -b])]);
        let nm = d.to_nl_model().unwrap();
        let grav: Vec<_> = nm.model.steps[0]
            .loads
            .iter()
            .filter_map(|l| match l {
                crate::nl::Load::Gravity {
                    elements,
                    density,
                    acceleration,
                } => Some((elements.clone(), *density, *acceleration)),
                _ => None,
            })
            .collect();
        assert_eq!(grav, vec![(vec![0], 7.85e-9, [0.0, 0.0, -9810.0])]);
        // The GRAV line is line 41 after the two *DENSITY lines, 39 without them.
        assert_eq!(text.lines().nth(40), Some("ONE, GRAV, 9810., 0, 0, -2"));
        let e = line_of(&with("", "ONE, GRAV, 9810., 0, 0, -1"));
        assert!(
            e.message.contains("*DENSITY") && e.message.contains("STEEL"),
            "{e}"
        );
        assert_eq!(e.line, 39);
        let e = line_of(&with(
            "*DENSITY\n7.85e-9\n",
            "ONE, CENTRIF, 1e4, 0, 0, 0, 0, 0, 1",
        ));
        assert!(e.message.contains("CENTRIF") && e.line == 41, "{e}");
        let e = line_of(&with("*DENSITY\n7.85e-9\n", "ONE, GRAV, 9810., 0, 0, 0"));
        assert!(e.message.contains("zero") && e.line == 41, "{e}");
        let e = line_of(&with("*DENSITY\n7.85e-9, 20.\n", ""));
        assert!(e.message.contains("*DENSITY") && e.line == 24, "{e}");
    }

    #[test]
    fn trusses_become_springs_of_stiffness_e_a_on_the_nonlinear_path() {
        let text = "*NODE\n1, 0, 0, 0\n2, 3, 4, 0\n3, 0, 0, 1\n4, 1, 0, 0\n5, 0, 1, 0\n\
            *ELEMENT, TYPE=C3D4, ELSET=SOLID\n7, 1, 4, 5, 3\n\
            *ELEMENT, TYPE=T3D2, ELSET=BAR\n8, 1, 2\n\
            *MATERIAL, NAME=M\n*ELASTIC\n1000., 0.3\n\
            *SOLID SECTION, ELSET=SOLID, MATERIAL=M\n\
            *SOLID SECTION, ELSET=BAR, MATERIAL=M\n2.5\n\
            *STEP, NLGEOM\n*STATIC\n*END STEP\n";
        let d = Deck::parse(text).unwrap();
        assert_eq!(d.sections[1].area, Some(2.5));
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        let nm = d.to_nl_model().unwrap();
        assert_eq!(nm.model.mesh.num_elements(), 1);
        assert_eq!(nm.element_ids, vec![7]);
        let s = &nm.model.springs;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].rest_length, 5.0);
        assert_eq!(s[0].law, crate::nl::SpringLaw::Truss { k: 2500.0 });
        assert_eq!(
            (s[0].a, s[0].b),
            (crate::nl::Point::Node(0), crate::nl::Point::Node(1))
        );
        // The linear solver refuses them, pointing to NLGEOM.
        let e = d.to_model().unwrap_err().to_string();
        assert!(e.contains("T3D2") && e.contains("NLGEOM"), "{e}");
        // A truss section without its area: the section's line.
        let e = line_of(&text.replace("2.5\n", ""));
        assert!(e.message.contains("area") && e.line == 15, "{e}");
        // No distributed load on a truss.
        let e = Deck::parse(&text.replace("*END STEP", "*DLOAD\n8, P1, 1.0\n*END STEP"))
            .unwrap()
            .to_nl_model()
            .unwrap_err()
            .to_string();
        assert!(e.contains("element 8") && e.contains("T3D2"), "{e}");
    }

    #[test]
    fn beams_become_corotational_beams_between_node_bodies() {
        // Two B31 elements along x, the middle node shared with a tet.
        let text =
            "*NODE\n1, 0, 0, 0\n2, 10, 0, 0\n3, 20, 0, 0\n4, 10, 1, 0\n5, 10, 0, 1\n6, 11, 0, 0\n\
            *ELEMENT, TYPE=B31, ELSET=ROD\n1, 1, 2\n2, 2, 3\n\
            *ELEMENT, TYPE=C3D4, ELSET=SOLID\n3, 2, 6, 4, 5\n\
            *MATERIAL, NAME=M\n*ELASTIC\n1000., 0.25\n\
            *SOLID SECTION, ELSET=SOLID, MATERIAL=M\n\
            *BEAM SECTION, ELSET=ROD, MATERIAL=M, SECTION=RECT\n2, 3\n0, 1, 0\n\
            *BOUNDARY\n1, 1, 6\n\
            *STEP, NLGEOM\n*STATIC\n*CLOAD\n3, 2, 1.5\n3, 6, 4.0\n*END STEP\n";
        let d = Deck::parse(text).unwrap();
        assert_eq!(d.beam_sections[0].shape, BeamShape::Rect { a: 2.0, b: 3.0 });
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        let nm = d.to_nl_model().unwrap();
        let m = &nm.model;
        assert_eq!(
            (m.mesh.num_elements(), m.bodies.len(), m.beams.len()),
            (1, 3, 2)
        );
        assert_eq!(nm.beam_nodes, vec![(1, 0), (2, 1), (3, 2)]);
        // The shared node 2 (index 1) is tied to its body; the bodies sit at the nodes.
        assert_eq!(m.bodies[1].tied_nodes, vec![1]);
        assert_eq!(m.bodies[2].reference, [20.0, 0.0, 0.0]);
        let b = &m.beams[1];
        assert_eq!((b.a.body, b.b.body, b.orientation), (1, 2, [0.0, 1.0, 0.0]));
        // n1 = y is the local y axis: width 2 along it, height 3 along z.
        assert_eq!(
            (b.section.iy, b.section.iz),
            (2.0 * 27.0 / 12.0, 3.0 * 8.0 / 12.0)
        );
        let cowper = 10.0 * 1.25 / (12.0 + 11.0 * 0.25) * 6.0;
        assert!((b.section.shear_area.unwrap() - cowper).abs() < 1e-12);
        // Clamp: six body DOFs; force and moment on the tip body.
        let st = &m.steps[0];
        let held: Vec<_> = st.prescribed.iter().map(|p| p.0).collect();
        assert_eq!(
            held,
            (0..6)
                .map(|k| crate::nl::Dof::Body { body: 0, k })
                .collect::<Vec<_>>()
        );
        assert!(matches!(
            st.loads[..],
            [
                crate::nl::Load::BodyForce {
                    body: 2,
                    force: [0.0, 1.5, 0.0]
                },
                crate::nl::Load::BodyMoment {
                    body: 2,
                    moment: [0.0, 0.0, 4.0]
                }
            ]
        ));
        // The default n1 (0, 0, -1) along a beam on z: refused at the section's line.
        let along_z = text
            .replace("3, 20, 0, 0", "3, 10, 0, 10")
            .replace("0, 1, 0\n*BOUNDARY", "*BOUNDARY");
        let e = line_of(&along_z);
        assert!(
            e.line == 17 && e.message.contains("parallel") && e.message.contains("element 2"),
            "{e}"
        );
        // A B31 under a solid section, a missing dimension, an unsupported shape.
        let e = line_of(&text.replace("ELSET=SOLID, MATERIAL=M\n", "ELSET=ROD, MATERIAL=M\n"));
        assert!(e.line == 16 && e.message.contains("B31"), "{e}");
        let e = line_of(&text.replace("RECT\n2, 3", "RECT\n2"));
        assert!(e.line == 18 && e.message.contains("width"), "{e}");
        let e = line_of(&text.replace("SECTION=RECT", "SECTION=PIPE"));
        assert!(e.line == 17 && e.message.contains("PIPE"), "{e}");
        // Rotations at a solid-only node, and beams on the linear path.
        let e = Deck::parse(&text.replace("3, 6, 4.0", "6, 6, 4.0"))
            .unwrap()
            .to_nl_model()
            .unwrap_err()
            .to_string();
        assert!(e.contains("node 6") && e.contains("no beam"), "{e}");
        let e = d.to_model().unwrap_err().to_string();
        assert!(e.contains("B31") && e.contains("NLGEOM"), "{e}");
    }

    #[test]
    fn b32_beams_and_ties_are_read() {
        // Two B32 elements along x (CIRC diameter 2: radius 1), and a *TIE between two
        // tetrahedra's faces.
        let text = "*NODE\n1, 0, 0, 0\n2, 5, 0, 0\n3, 10, 0, 0\n4, 15, 0, 0\n5, 20, 0, 0\n\
            *ELEMENT, TYPE=B32, ELSET=ROD\n1, 1, 2, 3\n2, 3, 4, 5\n\
            *MATERIAL, NAME=M\n*ELASTIC\n1000., 0.25\n\
            *BEAM SECTION, ELSET=ROD, MATERIAL=M, SECTION=CIRC\n2., 2.\n0, 1, 0\n\
            *BOUNDARY\n1, 1, 6\n\
            *STEP, NLGEOM\n*STATIC\n*CLOAD\n5, 2, 1.5\n*END STEP\n";
        let d = Deck::parse(text).unwrap();
        assert_eq!(d.beam_sections[0].shape, BeamShape::Circ { r: 1.0 });
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        let nm = d.to_nl_model().unwrap();
        // The middle nodes 2 and 4 are no mesh nodes; three bodies, two beams.
        assert_eq!(nm.node_ids, vec![1, 3, 5]);
        assert_eq!((nm.model.bodies.len(), nm.model.beams.len()), (3, 2));
        assert_eq!(nm.model.beams[1].b.at, [20.0, 0.0, 0.0]);
        assert!((nm.model.beams[0].section.iy - std::f64::consts::PI / 4.0).abs() < 1e-12);
        // A middle node off the midpoint, or loaded.
        let e = line_of(&text.replace("2, 5, 0, 0", "2, 5, 0.1, 0"));
        assert!(
            e.message.contains("middle node 2") && e.message.contains("midpoint"),
            "{e}"
        );
        let e = Deck::parse(&text.replace("5, 2, 1.5", "4, 2, 1.5"))
            .unwrap()
            .to_nl_model()
            .unwrap_err()
            .to_string();
        assert!(e.contains("node 4") && e.contains("middle node"), "{e}");
        // Ties: a node surface on element faces; a node surface as master is refused.
        let tie = "*NODE\n1,0,0,0\n2,1,0,0\n3,0,1,0\n4,0,0,1\n5,0.2,0.2,0\n6,0.2,0.2,-1\n7,1.2,0.2,-1\n8,0.2,1.2,-1\n\
            *ELEMENT, TYPE=C3D4, ELSET=E\n1, 1, 2, 3, 4\n2, 6, 8, 7, 5\n\
            *MATERIAL, NAME=M\n*ELASTIC\n1000., 0.25\n*SOLID SECTION, ELSET=E, MATERIAL=M\n\
            *SURFACE, NAME=S, TYPE=NODE\n5\n*SURFACE, NAME=MS, TYPE=ELEMENT\n1, S1\n\
            *TIE, NAME=T, POSITION TOLERANCE=0.01, ADJUST=NO\nS, MS\n\
            *BOUNDARY\n1, 1, 3\n2, 1, 3\n3, 1, 3\n\
            *STEP, NLGEOM\n*STATIC\n*CLOAD\n6, 3, -1.0\n*END STEP\n";
        let d = Deck::parse(tie).unwrap();
        assert_eq!(
            d.ties,
            vec![InpTie {
                name: "T".into(),
                slave: "S".into(),
                master: "MS".into(),
                tolerance: Some(0.01),
                adjust: false
            }]
        );
        assert!(d.needs_nonlinear());
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        let m = d.to_nl_model().unwrap().model;
        assert_eq!((m.ties[0].slave.len(), m.ties[0].master.len()), (1, 1));
        assert_eq!(m.ties[0].tolerance, 0.01);
        let e = line_of(&tie.replace("S, MS\n", "MS, S\n"));
        assert!(
            e.message.contains("master surface S is a node surface"),
            "{e}"
        );
        let e = line_of(&tie.replace("ADJUST=NO", "CYCLIC SYMMETRY"));
        assert!(e.message.contains("CYCLIC SYMMETRY"), "{e}");
        // A second pair under one *TIE is refused with the hint to give it its own *TIE.
        let e = line_of(&tie.replace("S, MS\n", "S, MS\nS, MS\n"));
        assert!(e.message.contains("own *TIE"), "{e}");
        // A rigid body's REF node on a tie's node surface is an error naming it, not a panic.
        let rigid = tie.replace(
            "*SURFACE, NAME=S, TYPE=NODE\n5\n",
            "*NODE\n9,0.2,0.2,0\n10,0.2,0.2,0\n*NSET, NSET=RB\n6, 7, 8\n\
                 *RIGID BODY, NSET=RB, REF NODE=9, ROT NODE=10\n*SURFACE, NAME=S, TYPE=NODE\n9\n",
        );
        let e = Deck::parse(&rigid)
            .unwrap()
            .to_nl_model()
            .unwrap_err()
            .to_string();
        assert!(e.contains("node 9") && e.contains("REF or ROT"), "{e}");
        // A B32 middle node off by mesher round-off is accepted.
        assert!(Deck::parse(&text.replace("2, 5, 0, 0", "2, 5.00000004, 0, 0")).is_ok());
    }

    #[test]
    fn hyperelastic_material_is_not_linear() {
        let text = BAR.replace("MATERIAL=STEEL", "MATERIAL=RUBBER");
        let d = Deck::parse(&text).unwrap();
        let m = d.to_model().unwrap();
        let e = m.linear_material(&d).unwrap_err().to_string();
        assert!(e.contains("RUBBER"), "{e}");
    }

    #[test]
    fn ccx_dat_last_displacement_printout_wins() {
        let text = " displacements (vx,vy,vz) for set NALL and time  0.5\n\n         1  1.0E-01 0.0 0.0\n\n displacements (vx,vy,vz) for set NALL and time  1.0\n\n         1  2.0E-01 -3.5E-02  0.000000E+00\n         7  1.0 2.0 3.0\n\n stresses (elem, integ.pnt.,sxx,syy,szz,sxy,sxz,syz)\n        1 1 1.0 2.0 3.0 4.0 5.0 6.0\n";
        let u = ccx_dat_displacements(text).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[&1], [0.2, -0.035, 0.0]);
        assert_eq!(u[&7], [1.0, 2.0, 3.0]);
        assert!(ccx_dat_displacements(" stresses\n 1 1 1 1\n").is_err());
        let e = ccx_dat_displacements(" displacements\n 1 0.1 x 0.3\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn nl_model_follows_abaqus_step_rules() {
        use crate::nl::{Dof, Load};
        let text = BAR.replace("MATERIAL=STEEL", "MATERIAL=RUBBER").replace(
            "*END STEP\n",
            "*END STEP\n*STEP, NLGEOM, INC=40, NAME=second\n*STATIC, DIRECT\n0.25\n*BOUNDARY\n4, 2, 2, 0.75\n*CLOAD\n5, 3, -20.0\n*END STEP\n",
        );
        let d = Deck::parse(&text).unwrap();
        assert_eq!(Deck::parse(&d.write()).unwrap(), d);
        let m = d.to_nl_model().unwrap();
        assert_eq!(m.model.steps.len(), 2);
        assert_eq!(m.model.solids.len(), 1);
        assert_eq!(m.model.solids[0].name, "RUBBER");
        assert!(m.material_models[0].contains("Mooney-Rivlin"));
        let (s1, s2) = (&m.model.steps[0], &m.model.steps[1]);
        // *STATIC 0.1, 1.0: automatic increments starting at 0.1.
        assert!((s1.increments.initial - 0.1).abs() < 1e-15 && s1.increments.cutback);
        assert_eq!(s1.increments.max, 1.0);
        assert_eq!(s2.name, "second");
        assert_eq!(s2.increments.max_increments, 40);
        assert!(!s2.increments.cutback && s2.increments.min == 0.25 && s2.increments.max == 0.25);
        let bc = |s: &crate::nl::Step, node, dir| {
            s.prescribed
                .iter()
                .find(|(d, _)| *d == Dof::Node { node, dir })
                .map(|p| p.1)
        };
        assert_eq!(bc(s1, 3, 1), Some(0.5));
        // Step 2 modifies node 4's y value; the base stays fixed.
        assert_eq!(bc(s2, 3, 1), Some(0.75));
        assert_eq!(bc(s2, 0, 2), Some(0.0));
        let force = |s: &crate::nl::Step, node| {
            s.loads.iter().find_map(|l| match l {
                Load::NodeForce { node: n, force } if *n == node => Some(*force),
                _ => None,
            })
        };
        // Node 5: z force from its own line, x from GEN; step 2 replaces z only.
        assert_eq!(force(s1, 4), Some([2.0, 0.0, -10.0]));
        assert_eq!(force(s2, 4), Some([2.0, 0.0, -20.0]));
        assert_eq!(force(s2, 0), Some([2.0, 0.0, 0.0]));
        let npress = |s: &crate::nl::Step| {
            s.loads
                .iter()
                .filter(|l| matches!(l, Load::Pressure { .. }))
                .count()
        };
        assert_eq!((npress(s1), npress(s2)), (2, 2));
        // What the solver cannot do is refused by name.
        for (from, to, needle) in [
            ("0.5, 0.1, 0.01", "0.5, 0.1, 0.0", "D1"),
            (
                "*ELEMENT, TYPE=C3D4, ELSET=EALL",
                "*ELEMENT, TYPE=B31, ELSET=B\n20, 1, 2\n*ELEMENT, TYPE=C3D4, ELSET=EALL",
                "B31",
            ),
            ("*STATIC\n0.1, 1.0", "*STATIC\n0.1, 1.0, 0.2", "minimum"),
            ("*STATIC, DIRECT\n0.25", "*STATIC, DIRECT\n0.01", "INC"),
            // A boundary first given in step 2 (node 5 is free in step 1).
            ("4, 2, 2, 0.75", "5, 1, 1, 0.1", "first given"),
        ] {
            assert!(text.contains(from), "{from}");
            let d = Deck::parse(&text.replacen(from, to, 1)).unwrap();
            let e = d.to_nl_model().unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let both = text.replace(
            "*HYPERELASTIC, MOONEY",
            "*ELASTIC\n1, 0.3\n*HYPERELASTIC, MOONEY",
        );
        let e = Deck::parse(&both)
            .unwrap()
            .to_nl_model()
            .unwrap_err()
            .to_string();
        assert!(e.contains("both"), "{e}");
        for (from, bad) in [
            ("*STEP, NLGEOM", "*STEP, NLGEOM, PERTURBATION"),
            ("*STATIC", "*STATIC, RIKS"),
            ("*STATIC, DIRECT", "*STATIC, DIRECT=NO STOP"),
            (
                "*BOUNDARY\n4, 2, 2, 0.75",
                "*BOUNDARY, FIXED\n4, 2, 2, 0.75",
            ),
            ("*CLOAD\n5, 3", "*CLOAD, FOLLOWER\n5, 3"),
        ] {
            assert!(text.contains(from), "{from}");
            let t = text.replacen(from, bad, 1);
            let e = Deck::parse(&t).unwrap_err();
            assert!(e.message.contains("not supported"), "{bad}: {e}");
        }
    }
}
