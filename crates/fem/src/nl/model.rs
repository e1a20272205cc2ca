//! The description of a nonlinear static analysis: solids, rigid bodies, springs, beams,
//! contact, loads and steps. Generic: nothing here knows what the bodies represent.

use std::sync::Arc;

use crate::continuum::SolidMaterial;
use crate::mesh::{Face, Mesh};

/// A material point of the model: a mesh node, or a point fixed to a rigid body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    /// Mesh node `n` (if the node is tied to a rigid body it moves with that body).
    Node(usize),
    /// A point rigidly attached to body `body`, at reference position `at` (global
    /// coordinates, mm, in the undeformed configuration).
    Body {
        /// Index into [`Model::bodies`].
        body: usize,
        /// Reference position (mm).
        at: [f64; 3],
    },
}

/// A block of solid elements sharing one material.
#[derive(Clone)]
pub struct SolidBlock {
    /// Name (for logs and results).
    pub name: String,
    /// Element indices into [`Model::mesh`].
    pub elements: Vec<usize>,
    /// The material; it receives the global element index.
    pub material: Arc<dyn SolidMaterial>,
}

impl std::fmt::Debug for SolidBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolidBlock")
            .field("name", &self.name)
            .field("elements", &self.elements.len())
            .finish()
    }
}

/// A rigid body with six DOFs (translation of its reference point and a rotation), carrying
/// the mesh nodes tied to it.
#[derive(Clone, Debug)]
pub struct RigidBody {
    /// Name (for logs and results).
    pub name: String,
    /// Reference point (mm): moments act about it and its motion is reported.
    pub reference: [f64; 3],
    /// Mesh nodes that move with the body (their DOFs are eliminated).
    pub tied_nodes: Vec<usize>,
}

/// Force-strain law of a tension-only spring or ligament fibre. Strain is
/// `eps = (l - rest_length) / rest_length`; the force is zero for `eps <= 0` (it never
/// pushes), except for [`SpringLaw::Truss`].
#[derive(Clone, Debug, PartialEq)]
pub enum SpringLaw {
    /// Linear in tension: `F = k * eps` (N), `k` in N per unit strain.
    Linear {
        /// Stiffness per unit strain (N).
        k: f64,
    },
    /// Bilinear: `F = k1 eps` up to `eps_t`, slope `k2` beyond (e.g. `k = E A`).
    Bilinear {
        /// Initial stiffness (N per unit strain).
        k1: f64,
        /// Transition strain.
        eps_t: f64,
        /// Stiffness beyond the transition (N per unit strain).
        k2: f64,
    },
    /// Quadratic toe region then linear: `F = k eps^2 / (2 eps_t)` up to `eps_t`, then
    /// `k (eps - eps_t / 2)`; continuous slope.
    ToeLinear {
        /// Linear-region stiffness (N per unit strain).
        k: f64,
        /// Transition strain.
        eps_t: f64,
    },
    /// Piecewise linear through `(strain, force)` points starting at `(0, 0)`, extrapolated
    /// with the last slope.
    Piecewise(Vec<(f64, f64)>),
    /// Linear in tension AND compression, `F = k * eps` (a truss bar, `k = E A`): the one
    /// law that pushes. A truss in compression can buckle sideways where nothing else
    /// holds its ends.
    Truss {
        /// Stiffness per unit strain (N), `E A`.
        k: f64,
    },
}

/// A two-point spring (ligament fibre, cable) between material points.
#[derive(Clone, Debug)]
pub struct Spring {
    /// Name (for results, e.g. a ligament and fibre).
    pub name: String,
    /// First end.
    pub a: Point,
    /// Second end.
    pub b: Point,
    /// Rest length (mm); with pre-strain `s` use `geometric length / (1 + s)`.
    pub rest_length: f64,
    /// Force law.
    pub law: SpringLaw,
}

/// End of a [`Beam`]: a point clamped to a rigid body (it follows the body's translation
/// and rotation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeamEnd {
    /// Index into [`Model::bodies`].
    pub body: usize,
    /// Reference position (mm, global, undeformed configuration).
    pub at: [f64; 3],
}

/// Cross-section of a prismatic [`Beam`] (local axes: x along the beam, y and z principal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeamSection {
    /// Area (mm^2).
    pub area: f64,
    /// Second moment of area about the local y axis (mm^4): bending in the x-z plane.
    pub iy: f64,
    /// Second moment of area about the local z axis (mm^4): bending in the x-y plane.
    pub iz: f64,
    /// Torsion constant (mm^4; the polar moment for a circular section).
    pub j: f64,
    /// Shear area for transverse shear flexibility (Timoshenko), mm^2; `None` neglects shear
    /// deformation (Euler-Bernoulli), the usual choice for slender rods. For a solid circle
    /// Cowper's value is `6 (1 + nu) / (7 + 6 nu) * area`.
    pub shear_area: Option<f64>,
    /// Distance of the outermost fibre from the centroid (mm), where stresses are reported.
    pub outer_radius: f64,
}

impl BeamSection {
    /// Solid circular section of diameter `d` (mm), Euler-Bernoulli.
    pub fn circle(d: f64) -> BeamSection {
        BeamSection::tube(d, 0.0)
    }

    /// Circular tube of outer diameter `d_out` and inner diameter `d_in` (mm),
    /// Euler-Bernoulli.
    pub fn tube(d_out: f64, d_in: f64) -> BeamSection {
        use std::f64::consts::PI;
        let i = PI * (d_out.powi(4) - d_in.powi(4)) / 64.0;
        BeamSection {
            area: PI * (d_out * d_out - d_in * d_in) / 4.0,
            iy: i,
            iz: i,
            j: 2.0 * i,
            shear_area: None,
            outer_radius: d_out / 2.0,
        }
    }

    /// The same section with shear flexibility (Timoshenko) of shear area `a_s` (mm^2).
    pub fn with_shear_area(self, a_s: f64) -> BeamSection {
        BeamSection {
            shear_area: Some(a_s),
            ..self
        }
    }
}

/// A linear-elastic prismatic beam whose two ends are clamped to rigid bodies (e.g. a rod
/// segment between two screw heads): both the end positions and the end rotations follow
/// the bodies. Corotational, so valid for large rotations with small strains; one element
/// per beam (exact for end loads in the linear range). A curved or finely resolved rod is a
/// chain of beams through bodies used as nodes.
#[derive(Clone, Debug)]
pub struct Beam {
    /// Name (for results).
    pub name: String,
    /// First end.
    pub a: BeamEnd,
    /// Second end (on another body).
    pub b: BeamEnd,
    /// Cross-section.
    pub section: BeamSection,
    /// Young's modulus (MPa).
    pub e: f64,
    /// Poisson's ratio (shear modulus `e / (2 (1 + nu))`).
    pub nu: f64,
    /// A reference vector (global, undeformed) fixing the section's local y axis: its part
    /// normal to the beam axis is y; it must not be parallel to the beam.
    pub orientation: [f64; 3],
}

/// A linear elastic connector (a bushing) between two rigid bodies: six springs, coupled
/// through a full stiffness matrix, on the motion of point `b` and its triad relative to
/// point `a` and its triad, both measured in a local frame that turns with body `a`. E.g. a
/// screw's anchorage in bone, a joint's lumped stiffness.
///
/// With `T_a = R_a R_0`, `T_b = R_b R_0` (`R_0` the columns of [`Connector::axes`]), the
/// relative displacement `u = T_a^T (x_b - x_a) - R_0^T (b.at - a.at)` and rotation `theta =
/// log(T_a^T T_b)`, the energy is `q^T K q / 2` with `q = [u, theta]`: objective (a rigid
/// motion of both bodies stores nothing), exact for large rotations of the pair, linear in
/// the relative motion when it is small.
#[derive(Clone, Debug)]
pub struct Connector {
    /// Name (for results).
    pub name: String,
    /// Point on the first body (mm, global, undeformed configuration).
    pub a: BeamEnd,
    /// Point on the second body; usually the same point as `a`.
    pub b: BeamEnd,
    /// Local axes x, y, z (unit vectors, global, undeformed; orthonormal and right-handed).
    pub axes: [[f64; 3]; 3],
    /// Stiffness in the local frame (symmetric, positive semi-definite), acting on `[u_x,
    /// u_y, u_z, theta_x, theta_y, theta_z]`: N/mm for the translations, N mm/rad for the
    /// rotations and N/rad (= N mm/mm) for their coupling.
    pub stiffness: [[f64; 6]; 6],
}

/// A penalty contact pair: slave points may not come closer than `clearance` to the
/// master surface (on its outward side).
#[derive(Clone, Debug)]
pub struct ContactPair {
    /// Name (for results).
    pub name: String,
    /// Slave points.
    pub slave: Vec<Point>,
    /// Tributary area of each slave point (mm^2); contact pressure = force / area.
    pub slave_area: Vec<f64>,
    /// Master triangles; the right-hand normal of `[p0, p1, p2]` points OUT of the master
    /// body, towards where the slave points are allowed.
    pub master: Vec<[Point; 3]>,
    /// Penalty: pressure per mm of penetration (MPa/mm = N/mm^3).
    pub penalty: f64,
    /// Gap at which contact begins (mm), e.g. the cartilage thickness; 0 for touching.
    pub clearance: f64,
    /// Coulomb friction coefficient (0 = frictionless). Regularised: a point sticks with a
    /// tangential stiffness (`tangential_penalty * area`, by default `penalty * area`) up
    /// to `friction` times its normal force, then slides (see the contact module's
    /// documentation).
    pub friction: f64,
    /// Tangential penalty of the friction law (MPa/mm, per unit area as `penalty`): a
    /// sticking point resists its elastic slip with `tangential_penalty * area`, and slips
    /// once that force reaches `friction` times its normal force. `None`: the normal
    /// penalty. A regularisation parameter: the elastic slip `friction * p / kt` must stay
    /// small against the motions of interest, but the stiffer it is, the smaller the region
    /// in which Newton converges quadratically while points slip (the slip direction turns
    /// over that elastic slip).
    pub tangential_penalty: Option<f64>,
    /// Augmented-Lagrangian enforcement (`None`: pure penalty, the penetration is
    /// `pressure / penalty`, which is the physics where the penalty models a compliant layer
    /// such as cartilage). With it, each slave point carries a multiplier that is updated
    /// after every converged increment (Uzawa) until the penetration below the clearance is
    /// within the tolerance, so the result no longer depends on the penalty's value.
    pub augmented: Option<Augmentation>,
    /// How far below the master surface a slave point still counts as touching it (mm).
    /// `None`: one mean master edge, right for a thin master. Beyond this depth a point is
    /// taken to be behind the surface and carries no force, so a load that pushes a point
    /// deeper than an edge (a soft penalty on a small patch) loses the contact altogether:
    /// give the thickness of the master body there (e.g. the bone under a bony stop). It
    /// also widens the search's reach above the surface by the same amount (the candidate
    /// triangles' boxes).
    pub search_depth: Option<f64>,
    /// Faces of the slave surface, their corners as indices into `slave`. Empty:
    /// node-to-surface contact, each slave point pushed on its own with its `slave_area`.
    /// Given: mortar (surface-to-surface) contact, where the slave surface is cut along the
    /// master triangles projected onto it and integrated segment by segment; each slave
    /// point carries the pressure of its gap averaged over its share of the surface, and
    /// that pressure, interpolated with the faces' shape functions, pushes both surfaces. A
    /// uniform pressure then crosses non-matching meshes exactly (the contact patch test)
    /// where node-to-surface contact loads the master unevenly. Give the faces of the
    /// slave mesh as they are (a Hex8 face as a quadrilateral: split into triangles, its
    /// nodes would be loaded unevenly and the pressure would oscillate from node to node).
    /// The areas then come from the faces (`slave_area` is ignored: leave it empty);
    /// frictionless only. See the `mortar` module.
    pub slave_faces: Vec<SlaveFace>,
}

/// A face of a mortar contact pair's slave surface ([`ContactPair::slave_faces`]): corner
/// indices into the pair's slave points, in order round the face (either way round).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlaveFace {
    /// A linear triangle (a Tet4 face, or a flat piece of a surface).
    Tri([usize; 3]),
    /// A bilinear quadrilateral (a Hex8 face).
    Quad([usize; 4]),
}

impl SlaveFace {
    /// The corners.
    pub fn nodes(&self) -> &[usize] {
        match self {
            SlaveFace::Tri(t) => t,
            SlaveFace::Quad(q) => q,
        }
    }

    /// Shape functions at natural coordinates `(r, s)`: barycentric `(r, s)` of corners 1
    /// and 2 for a triangle, `(xi, eta)` in `[-1, 1]^2` for a quadrilateral. Unused entries
    /// are 0.
    pub fn shape(&self, r: f64, s: f64) -> [f64; 4] {
        match self {
            SlaveFace::Tri(_) => [1.0 - r - s, r, s, 0.0],
            SlaveFace::Quad(_) => [
                0.25 * (1.0 - r) * (1.0 - s),
                0.25 * (1.0 + r) * (1.0 - s),
                0.25 * (1.0 + r) * (1.0 + s),
                0.25 * (1.0 - r) * (1.0 + s),
            ],
        }
    }

    /// `int N_a dA` of each corner over the face with corner positions `x` (mm^2): a third
    /// of the area each for a triangle; for a quadrilateral the 2 x 2 Gauss rule on the
    /// bilinear map, which is exact for a flat face.
    ///
    /// # Panics
    /// When `x` holds fewer positions than the face has corners (one per corner, in the
    /// order of [`SlaveFace::nodes`]).
    pub fn nodal_areas(&self, x: &[[f64; 3]]) -> [f64; 4] {
        let v = |k: usize| nalgebra::Vector3::from(x[k]);
        match self {
            SlaveFace::Tri(_) => {
                let a = (v(1) - v(0)).cross(&(v(2) - v(0))).norm() / 6.0;
                [a, a, a, 0.0]
            }
            SlaveFace::Quad(_) => {
                let g = 1.0 / 3f64.sqrt();
                let mut out = [0.0; 4];
                for (r, s) in [(-g, -g), (g, -g), (g, g), (-g, g)] {
                    let dr = (v(1) - v(0)) * (1.0 - s) + (v(2) - v(3)) * (1.0 + s);
                    let ds = (v(3) - v(0)) * (1.0 - r) + (v(2) - v(1)) * (1.0 + r);
                    let jac = dr.cross(&ds).norm() / 16.0;
                    let n = self.shape(r, s);
                    for k in 0..4 {
                        out[k] += n[k] * jac;
                    }
                }
                out
            }
        }
    }
}

/// Augmented-Lagrangian settings of a contact pair (Simo & Laursen 1992, Comput Struct
/// 42:97; Wriggers 2006, Computational Contact Mechanics, sec. 6.3): the normal force of a
/// slave point is `<lambda + penalty * area * (clearance - g)>` (`<>`: positive part) and,
/// after each converged increment, `lambda <- <lambda + penalty * area * (clearance - g)>`
/// and the increment is solved again, until no multiplier changes by more than
/// `penalty * area * tolerance`, that is until no point penetrates, or has let go, by more
/// than `tolerance`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augmentation {
    /// Penetration below the clearance (mm) accepted at a converged increment.
    pub tolerance: f64,
    /// Most multiplier updates (each a further Newton solve) per increment; an increment
    /// still outside the tolerance after them fails (and is cut back like one that did
    /// not converge). The pairs are updated together: with several augmented pairs, the
    /// largest of their `max_updates` applies.
    pub max_updates: usize,
}

impl Default for Augmentation {
    fn default() -> Self {
        Augmentation {
            tolerance: 1e-3,
            max_updates: 10,
        }
    }
}

/// A bonded (tied) interface between two surfaces that do not share nodes, e.g. two meshes
/// of different resolution: every slave point is held, in all three directions, at the
/// point of the master surface it was on (or next to) in the reference configuration.
///
/// At the start of the solve each slave point is projected once onto its closest master
/// triangle (the tolerance check). Without slave triangles each slave point is bonded to
/// that master point by a penalty spring (node-to-surface); with them, each slave point's
/// gap averaged over its share of the slave surface is penalised (mortar), which passes the
/// patch test across non-matching meshes. See the module documentation (`# Ties`).
///
/// Written to CalculiX decks as `*TIE` (exact MPCs there; the penalty, mortar and the
/// triangles of quadrilateral master faces are listed approximations), see
/// [`crate::inp::Deck::from_nl_model`].
#[derive(Clone, Debug)]
pub struct Tie {
    /// Name (for results and error messages).
    pub name: String,
    /// Slave points (mesh nodes, or points on rigid bodies).
    pub slave: Vec<Point>,
    /// Triangles of the slave surface, as indices into `slave`. When given, each slave
    /// point's bond is the average of the gap over its part of the surface (a mortar
    /// tie), which passes the patch test; when empty, each slave point is bonded where it
    /// projects (node-to-surface). Quadrilateral faces: give both triangulations (both
    /// diagonals) on either side; the average then weights each corner by a quarter of the
    /// face, as the bilinear face does.
    pub slave_triangles: Vec<[usize; 3]>,
    /// Master triangles (mesh nodes or body points at the corners); their orientation does
    /// not matter.
    pub master: Vec<[Point; 3]>,
    /// Largest allowed distance (mm) of a slave point from the master surface in the
    /// reference configuration; a point farther away is an input error naming the tie and
    /// the point.
    pub tolerance: f64,
    /// Penalty stiffness per slave point (N/mm; with slave triangles, scaled by each
    /// point's tributary area over the mean one); `None` derives it from the stiffness of
    /// the solid elements next to the tie ([`Tie::AUTO_PENALTY_FACTOR`]).
    pub penalty: Option<f64>,
}

impl Tie {
    /// Automatic penalty: `factor * M * h`, with `M` the largest small-strain P-wave modulus
    /// (`lambda + 2 mu`, the largest diagonal entry of the material tangent at `F = I`) of
    /// the solid elements that have a node on the tie and `h` the mean master edge length.
    /// An element of size `h` has a stiffness of about `M h`, so a slave point's bond is
    /// about a thousand times stiffer than the elements it joins: its compliance adds about
    /// 1e-3 of an element's strain across the interface, while the tangent stays well
    /// conditioned for the direct solvers.
    pub const AUTO_PENALTY_FACTOR: f64 = 1e3;
}

/// A degree of freedom that can be prescribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dof {
    /// Node displacement component `dir` (0 x, 1 y, 2 z).
    Node {
        /// Node index.
        node: usize,
        /// Direction.
        dir: usize,
    },
    /// Rigid body DOF `k`: 0..3 translation of the reference point, 3..6 rotation about the
    /// global x, y, z axes (rotation-vector components, rad).
    Body {
        /// Body index.
        body: usize,
        /// DOF 0..6.
        k: usize,
    },
}

/// An external load. Magnitudes are the values reached at the end of the step that lists
/// them; within a step the loads of the previous step are ramped out and the step's own
/// loads ramped in linearly with the load factor.
#[derive(Clone, Debug)]
pub enum Load {
    /// Force of fixed direction on a node (N).
    NodeForce {
        /// Node.
        node: usize,
        /// Force (N).
        force: [f64; 3],
    },
    /// Force of fixed direction at a body's reference point (N).
    BodyForce {
        /// Body.
        body: usize,
        /// Force (N).
        force: [f64; 3],
    },
    /// Pure moment of fixed (global) direction on a body (N mm).
    BodyMoment {
        /// Body.
        body: usize,
        /// Moment vector (N mm).
        moment: [f64; 3],
    },
    /// Follower force pair of magnitude `magnitude` (N) pulling `a` and `b` towards each
    /// other along their CURRENT connecting line (a cable segment; a follower load along a
    /// path is a chain of these).
    FollowerPair {
        /// First point.
        a: Point,
        /// Second point.
        b: Point,
        /// Compressive magnitude (N).
        magnitude: f64,
    },
    /// Pressure on solid faces acting along the current (deformed) inward normal (MPa).
    Pressure {
        /// Faces.
        faces: Vec<Face>,
        /// Pressure (MPa).
        pressure: f64,
    },
    /// Gravity, or any uniform acceleration field, on solid elements as a dead load: the
    /// force per reference volume `density * acceleration` (N/mm^3) integrated over each
    /// element's reference volume with its shape functions (consistent nodal forces, total
    /// = mass times acceleration whatever the deformation; no load stiffness on free
    /// nodes). Elements deactivated or in no solid block carry no weight.
    Gravity {
        /// Element indices into [`Model::mesh`].
        elements: Vec<usize>,
        /// Mass density in the reference configuration (tonne/mm^3; e.g. bone about
        /// 1.9e-9, water 1e-9).
        density: f64,
        /// Acceleration (mm/s^2; standard gravity is 9810 mm/s^2 along the downward
        /// direction).
        acceleration: [f64; 3],
    },
}

/// What a step removes from the model at its start (stress-free; it stays removed).
#[derive(Clone, Debug, PartialEq)]
pub enum Deactivate {
    /// Solid elements.
    Elements(Vec<usize>),
    /// A spring by index.
    Spring(usize),
    /// A contact pair by index.
    Contact(usize),
    /// A beam by index.
    Beam(usize),
    /// A tie by index (its two sides are free from then on).
    Tie(usize),
}

/// Load-increment control of a step (fractions of the step, 0..1).
#[derive(Clone, Debug)]
pub struct Increments {
    /// First increment.
    pub initial: f64,
    /// Smallest allowed increment; below it the step fails (not converged).
    pub min: f64,
    /// Largest allowed increment.
    pub max: f64,
    /// Maximum number of increments in the step.
    pub max_increments: usize,
    /// Allow cutting an increment back after a failed Newton iteration sequence.
    pub cutback: bool,
}

impl Default for Increments {
    fn default() -> Self {
        Increments {
            initial: 0.25,
            min: 1e-4,
            max: 1.0,
            max_increments: 200,
            cutback: true,
        }
    }
}

/// One analysis step.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// Name (for logs and results).
    pub name: String,
    /// Loads at the end of the step.
    pub loads: Vec<Load>,
    /// Prescribed DOF values reached at the end of the step (total, from the reference
    /// configuration). A DOF prescribed in any step is prescribed in every step: it keeps
    /// its last value (0 before it is first given one).
    pub prescribed: Vec<(Dof, f64)>,
    /// Contact clearances reached at the end of the step, `(pair index into
    /// [`Model::contacts`], clearance in mm)`, ramped linearly with the load factor from
    /// their value at the start of the step; a pair keeps its clearance (its
    /// [`ContactPair::clearance`] before any step sets one) until a step ramps it again.
    /// Raising a clearance above the gap the surfaces have is an interference resolved
    /// gradually, like a shrink fit or an implant taller than its seat (Abaqus calls this
    /// `*CONTACT INTERFERENCE, SHRINK`): the increments, and their cut-backs, then control
    /// the overlap the contact pushes apart, where an interference present at once would
    /// have to be resolved in the first Newton iteration.
    pub clearances: Vec<(usize, f64)>,
    /// Removed at the start of the step.
    pub deactivate: Vec<Deactivate>,
    /// Increment control.
    pub increments: Increments,
    /// Load factors inside the step (0 < f < 1, increasing) at which the state is also
    /// recorded ([`super::StepResult::records`]); increments are shortened to land on them.
    /// The end of the step is always recorded.
    pub record_at: Vec<f64>,
}

/// A complete nonlinear static model.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Solid mesh (may hold no elements, e.g. a purely rigid-body model).
    pub mesh: Mesh,
    /// Solid element blocks; elements in no block are ignored.
    pub solids: Vec<SolidBlock>,
    /// Rigid bodies.
    pub bodies: Vec<RigidBody>,
    /// Springs.
    pub springs: Vec<Spring>,
    /// Beams between rigid bodies.
    pub beams: Vec<Beam>,
    /// Elastic connectors between rigid bodies.
    pub connectors: Vec<Connector>,
    /// Contact pairs.
    pub contacts: Vec<ContactPair>,
    /// Tied (bonded) interfaces between surfaces that do not share nodes.
    pub ties: Vec<Tie>,
    /// Steps, solved in order; each starts from the end of the previous one.
    pub steps: Vec<Step>,
}
