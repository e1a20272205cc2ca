//! Nonlinear statics: large-deformation solids, rigid bodies, tension-only springs,
//! corotational elastic beams clamped between rigid bodies, penalty contact, follower loads,
//! multi-step analyses solved by Newton-Raphson with line search and automatic increment
//! cut-back.
//!
//! Build a [`Model`], call [`solve`]; the [`NlResult`] says whether every step converged
//! and carries the state at the end of each converged step. A step that did not converge
//! yields no state: its numbers are never reported as a result.
//!
//! # DOFs
//! Free mesh nodes have 3 translational DOFs; each rigid body 6 (translation of its
//! reference point and an incremental spatial rotation vector, its rotation stored as a
//! matrix and updated multiplicatively). Nodes tied to a body and points on bodies move
//! with it: `x = c + R (X - X_ref)`.
//!
//! A DOF prescribed in any step is eliminated in all; its value is ramped from the value at
//! the step start to the step's target. For body rotations the prescribed value is the sum
//! of the spatial rotation increments about that global axis (equal to the rotation-vector
//! component when the rotation is about a fixed axis, e.g. a held body: 0).
//!
//! # Beams
//!
//! A [`Beam`] is one linear-elastic prismatic element (Euler-Bernoulli, or Timoshenko with a
//! shear area) whose ends are clamped to two rigid bodies; it adds no DOFs. Corotational
//! (Battini & Pacoste 2002 kinematics): large rotations, small strains; its tangent is exact
//! (automatic differentiation of its strain energy). One element is exact for end loads in
//! the linear range; for large deflections or a curved rod chain several beams through
//! bodies used as nodes (the error falls as the square of the element length). Results per
//! beam: end forces and moments (local and global axes) and the peak outer-fibre von Mises stress
//! ([`BeamState`]).
//!
//! # Connectors
//!
//! A [`Connector`] is a linear elastic bushing between two rigid bodies: a symmetric 6x6
//! stiffness on the relative displacement and rotation of its two points, measured in a
//! frame that turns with the first body (objective, exact tangent by the beam's automatic
//! differentiation); it adds no DOFs. Results: the relative motion and the load carried
//! ([`ConnectorState`]).
//!
//! # Ties
//!
//! A [`Tie`] bonds slave points (mesh nodes or points on rigid bodies) to a master surface
//! of triangles whose corners need not coincide with them: two meshes of different
//! resolution, a mesh and a rigid body. Each slave point is projected once, in the
//! reference configuration, onto its closest master triangle (a point farther than the
//! tie's `tolerance` is an input error naming the tie and the point). Two formulations:
//!
//! * **Node-to-surface** (no slave triangles): each slave point keeps its barycentric
//!   coordinates and its small offset along the triangle's normal (a rigid arm that turns
//!   with the triangle), so a point slightly off the surface is bonded where it is, without
//!   initial stress; penalty energy `k |g|^2 / 2` on its gap, exact (symmetric) tangent.
//! * **Mortar** (the slave surface's triangles given): the constraint of slave point `j`
//!   is its gap averaged over its part of the slave surface, `(sum_k D_jk x_k - sum_l M_jl
//!   x_l) / A_j`, `D_jk = int phi_j phi_k`, `M_jl = int phi_j psi_l` over the overlaps of
//!   slave and master triangles (clipped polygons integrated exactly), `A_j = int phi_j`
//!   (e.g. Puso 2004, Int J Numer Methods Eng 59:315, for mortar tying); penalty
//!   `k A_j / mean(A)`. The slave and master forces of a uniform traction are then both
//!   consistent nodal forces: the patch test passes across non-matching meshes.
//!
//! `k` is given per slave point or derived as [`Tie::AUTO_PENALTY_FACTOR`] times the largest
//! P-wave modulus of the adjacent solid elements times the mean master edge length.
//! [`TieState`] reports the largest gap (the penalty's compliance) and the force carried.
//! Verified in `tests/tie.rs`: uniaxial tension across non-matching tet4 and hex8 meshes
//! (mortar: the uniform-stress solution to 1.2e-4, the remainder St Venant-Kirchhoff's
//! geometric nonlinearity at strain 1e-4 and the penalty), tied tet10 cantilevers within
//! 0.05 % of the conforming mesh's tip deflection and within 0.15 % (node-to-surface) and
//! 0.06 % (mortar) of CalculiX's `*TIE` on the same mesh, offsets, the tolerance error.
//!
//! # Contact
//!
//! A [`ContactPair`] pushes slave points (mesh nodes or points on rigid bodies) out of a
//! master surface of triangles smoothed by interpolated corner normals, with a penalty
//! (optionally augmented-Lagrangian, [`Augmentation`]) and an initial clearance that a
//! step may ramp ([`Step::clearances`]). Two formulations:
//!
//! * **Node-to-surface** (no slave faces; the `contact` module): each slave point is
//!   pushed on its own with its tributary area; optional regularised Coulomb friction.
//! * **Mortar** (the slave surface's faces given; the `mortar` module): the slave
//!   surface is cut along the master triangles projected onto it and integrated segment
//!   by segment; each slave point carries the pressure of its averaged gap and that
//!   pressure, interpolated, pushes both surfaces, so a uniform pressure crosses
//!   non-matching meshes exactly (`tests/contact_mortar.rs`: the contact patch test to
//!   1e-12 where node-to-surface contact is 21 % off in the master block). Frictionless.
//!
//! # Solution
//!
//! Residual `F_ext(lambda, x) - F_int(x)` with the consistent tangent, including the
//! rotational geometric terms of forces at points on bodies (`d(r x f)/d theta =
//! skew(f) skew(r)`), the load stiffness of follower pairs and follower pressure: in general
//! non-symmetric. Each tangent is factorised by the cheapest exact method it allows
//! ([`LinearSolver::Auto`]): sparse Cholesky with a METIS nested-dissection ordering when it
//! is symmetric; that of its symmetric part plus an exact low-rank (Woodbury) correction
//! when the non-symmetric part lives on a few equations (the rotations of rigid bodies
//! carrying a net moment); sparse LU otherwise. Ordering and symbolic factorisations are
//! reused while the sparsity pattern does not change. Each Newton direction is backtracked on the residual norm when it
//! increases it. An increment converges when the force test holds together with the
//! displacement or the energy test ([`SolveOptions`]); it is halved after a failure
//! (divergence, inverted element, singular tangent, too many iterations) down to
//! `Increments::min`, and grown by 1.5 after a full-size increment that converged in 5
//! iterations or fewer.
//!
//! # Limitations
//!
//! * Contact friction is regularised (an elastic slip of `mu p / kt` before sliding, `kt`
//!   the pair's tangential penalty, by default its normal one); a point sticks where it was at the start of the increment in
//!   which it touches;
//!   node-to-surface with one master triangle per slave point (chosen at each assembly; a point sliding across
//!   a facet edge changes the triangle between iterations). The Hessian of the gap in the
//!   tangent is taken by central differences of its analytical gradient.
//! * A point exactly at a spring's rest length or at the contact clearance is given the
//!   tension-side / contact stiffness, so a model starting there is not singular; a body
//!   held only by slack springs or open contacts is (the failure message says so).
//! * Node-to-surface ties (no slave triangles) pass the patch test only where slave and
//!   master nodes coincide: a slave point follows the flat triangle it was projected onto
//!   and its force reaches the master corners with the barycentric weights, not as the
//!   master's consistent nodal forces. Across non-matching meshes this leaves an error local
//!   to the interface, first order in the mesh size (`tests/tie.rs`, uniaxial tension of a
//!   10 x 10 x 20 mm prism: largest nodal error 3.4 % of the peak displacement with tet4
//!   meshes of 3 and 4 cells across, 1.8 % with 6 and 8; 9.7 % and 4.9 % with hex8). Give
//!   the slave triangles (mortar) where stresses near the interface matter.
//! * Mortar ties: the master triangles seen by a slave triangle are projected onto its
//!   plane (one layer of master surface facing it within the tolerance); a reference gap is
//!   subtracted as a constant vector, so a large rigid rotation of an interface whose
//!   surfaces were apart by `d` leaves a spurious gap of about `d` times the angle. Tet10 and
//!   hex faces enter as flat triangles (tri6 faces split in four; quadrilaterals by both
//!   diagonals, see [`Tie::slave_triangles`]).
//! * Mortar contact: the segmentation is held fixed in the tangent, and a slave
//!   triangle sees the master triangles projected onto its plane, one layer (a point that
//!   another layer holds clearly nearer in front goes to it). Quadrilateral slave faces
//!   enter as two triangles (alternate the diagonals to keep a surface symmetric): the
//!   pressure is linear on each, not bilinear on the face.
//! * Tangent assembly goes through triplets (duplicates summed by faer): memory grows with
//!   the number of element matrix entries.

mod assemble;
mod beam;
mod connector;
mod contact;
mod grid;
mod kin;
mod linsolve;
mod model;
mod mortar;
mod newton;
mod pressure;
pub(crate) mod tie;

pub use model::*;
pub use newton::solve;

use std::time::Duration;

/// Newton-Raphson settings.
#[derive(Clone, Debug)]
pub struct SolveOptions {
    /// Maximum Newton iterations per increment before it is cut back.
    pub max_iterations: usize,
    /// Convergence: `|residual| <= tol_force * max(|external + reaction forces|, sum of the
    /// contact normal and spring force magnitudes, force_floor)` (the second: the forces a
    /// load-free step, such as an interference driven in, carries without any load).
    pub tol_force: f64,
    /// Absolute force floor (N) for the relative force test (avoids dividing by ~0 loads).
    pub force_floor: f64,
    /// Convergence: `|du| <= tol_displacement * |u increment|` (mm, rad mixed as is).
    /// Default 1e-4, a hundred times tighter than Abaqus' 1e-2: with quadratic convergence
    /// the remaining error is far smaller still (measured on the spine twin: rotations equal
    /// to 1e-9 rad of the 1e-6 setting, 121 -> 104 Newton iterations from this change alone).
    pub tol_displacement: f64,
    /// Convergence: `|du . residual| <= tol_energy * (first iteration's value)`.
    pub tol_energy: f64,
    /// Use a line search on the residual along each Newton direction.
    pub line_search: bool,
    /// Show a progress bar (hidden when not a terminal).
    pub progress: bool,
    /// Start each increment from the linear extrapolation of the last two converged states
    /// of the step (Abaqus' default `EXTRAPOLATION=LINEAR`), falling back to the last
    /// converged state when that fails. Off by default: on the disc-only L4-L5 twin
    /// (nearly incompressible nucleus) it took 118 Newton iterations against 66 without,
    /// because the extrapolated start leaves large volumetric residuals.
    pub extrapolate: bool,
    /// How the tangent is factorised.
    pub linear_solver: LinearSolver,
}

/// Factorisation of the Newton tangent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinearSolver {
    /// Per factorisation, the cheapest exact method the matrix allows: sparse Cholesky
    /// (METIS ordering) when the tangent is symmetric; the Cholesky factor of its symmetric
    /// part with an exact low-rank (Woodbury) correction when the non-symmetric part lives
    /// on a few equations (e.g. the rotations of rigid bodies carrying a net moment); sparse
    /// LU otherwise, and whenever a faster method fails.
    #[default]
    Auto,
    /// Always sparse LU with partial pivoting (COLAMD ordering): slower, for comparison.
    Lu,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            max_iterations: 25,
            tol_force: 1e-6,
            force_floor: 1e-3,
            tol_displacement: 1e-4,
            tol_energy: 1e-12,
            line_search: true,
            progress: false,
            extrapolate: false,
            linear_solver: LinearSolver::Auto,
        }
    }
}

/// Pose of a rigid body.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyState {
    /// Displacement of the reference point (mm).
    pub translation: [f64; 3],
    /// Rotation matrix (row-major), reference to current.
    pub rotation: [[f64; 3]; 3],
    /// The same rotation as a rotation vector (axis times angle, rad).
    pub rotation_vector: [f64; 3],
}

/// Result of one contact pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactState {
    /// Total contact force on the slave side (N, global).
    pub force: [f64; 3],
    /// Sum of the normal force magnitudes (N).
    pub normal_force: f64,
    /// Largest contact pressure (MPa).
    pub max_pressure: f64,
    /// Slave points in contact.
    pub active_points: usize,
    /// Sum of the friction force magnitudes (N).
    pub friction_force: f64,
    /// Slave points slipping (friction at the Coulomb limit).
    pub sliding_points: usize,
    /// Pressure at each slave point (MPa).
    pub pressure: Vec<f64>,
}

/// Result of one tie.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TieState {
    /// Largest distance (mm) of a slave point from its bonded master point: the penalty's
    /// compliance (0 for an infinitely stiff bond). Compare it with the displacements of
    /// interest to judge whether the penalty is adequate.
    pub max_gap: f64,
    /// Resultant force (N, global) the master side exerts on the slave points through the
    /// tie; zero when the tie is deactivated.
    pub force: [f64; 3],
    /// Sum of the magnitudes of the slave points' forces (N).
    pub force_sum: f64,
    /// Penalty stiffness used per slave point (N/mm).
    pub penalty: f64,
}

/// Result of one beam.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BeamState {
    /// Force (N) and moment (N mm, about the end point) that the body at end `a` exerts on
    /// the beam, `[Fx, Fy, Fz, Mx, My, Mz]`, in the beam's current local frame (x along the
    /// chord from `a` to `b`, y and z the corotated section axes). `Mx` is the torque,
    /// `Fy`, `Fz` the shears, `My`, `Mz` the bending moments.
    pub end_a: [f64; 6],
    /// The same at end `b`. With no load along the beam the two ends balance.
    pub end_b: [f64; 6],
    /// `end_a` in global axes: force (N) and moment (N mm, about the end point) that the
    /// body at end `a` exerts on the beam. The beam loads that body with the opposite.
    pub end_a_global: [f64; 6],
    /// `end_b` in global axes.
    pub end_b_global: [f64; 6],
    /// Axial force (N, tension positive).
    pub axial_force: f64,
    /// Largest von Mises stress at the outer fibre over the two end sections (MPa):
    /// `sqrt(sigma^2 + 3 tau^2)`, `sigma = |N| / A + |M_bending| r / I`, `tau = |T| r / J`
    /// (transverse shear stress, zero at the fibre of largest bending stress, is left out).
    /// With end loads only the bending moment is linear along the beam, so an end is where
    /// it peaks.
    pub max_von_mises: f64,
    /// Current chord length (mm).
    pub length: f64,
}

/// Result of one [`Connector`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectorState {
    /// Relative motion `[u, theta]` of end `b` with respect to end `a` in the local frame
    /// (mm, rad), as [`Connector`] defines it.
    pub relative: [f64; 6],
    /// The load the connector carries, `K q`: force (N) and moment (N mm) in the local frame.
    pub force: [f64; 6],
    /// Force (N) and moment (N mm, about point `b`) that the body at end `b` exerts on the
    /// connector, global axes; the connector loads that body with the opposite.
    pub end_b_global: [f64; 6],
}

/// The state at the end of a converged step.
#[derive(Clone, Debug, Default)]
pub struct StepState {
    /// Displacement of every mesh node (mm), tied nodes included.
    pub displacements: Vec<[f64; 3]>,
    /// Pose of every rigid body.
    pub bodies: Vec<BodyState>,
    /// Force of every spring (N, >= 0 for tension-only laws); 0 when deactivated.
    pub spring_forces: Vec<f64>,
    /// Current length of every spring (mm).
    pub spring_lengths: Vec<f64>,
    /// Every contact pair.
    pub contacts: Vec<ContactState>,
    /// Every beam (all zero when deactivated).
    pub beams: Vec<BeamState>,
    /// Every connector.
    pub connectors: Vec<ConnectorState>,
    /// Every tie.
    pub ties: Vec<TieState>,
    /// Cauchy stress of every solid element (Voigt, MPa), averaged over its integration
    /// points; zero for elements in no block or deactivated.
    pub element_stress: Vec<[f64; 6]>,
    /// Green-Lagrange strain `E = (F^T F - I) / 2` of every solid element (Voigt, engineering
    /// shear `2 E_12`, as [`crate::continuum::green_lagrange_voigt`]), averaged over its
    /// integration points like the stress and of the same `F` (Hex8 and Wedge6: F-bar's);
    /// zero for elements in no block or deactivated.
    pub element_strain: Vec<[f64; 6]>,
    /// Reaction at every prescribed DOF (N, or N mm for body rotations).
    pub reactions: Vec<(Dof, f64)>,
}

impl StepState {
    /// Contact pressure at every mesh node (MPa): the pressure of the node as a slave point
    /// of the contact pairs (the largest where it is a slave in several), zero at nodes that
    /// are no slave point. Points on rigid bodies are not mesh nodes and are left out.
    pub fn nodal_contact_pressure(&self, model: &Model) -> Vec<f64> {
        let mut p = vec![0.0; model.mesh.num_nodes()];
        for (pair, state) in model.contacts.iter().zip(&self.contacts) {
            for (point, &ps) in pair.slave.iter().zip(&state.pressure) {
                if let Point::Node(n) = *point {
                    p[n] = f64::max(p[n], ps);
                }
            }
        }
        p
    }

    /// The fields of this state for a VTU file of `model`'s mesh: point `displacement` (mm)
    /// and, when the model has contact pairs, `contact_pressure` (MPa,
    /// [`StepState::nodal_contact_pressure`]); per element `von_mises` and `stress` (Cauchy,
    /// MPa) and `green_lagrange_strain` (tensor components, [`StepState::element_strain`]).
    pub fn vtu_data(&self, model: &Model) -> crate::vtu::VtuData {
        let point_scalars = if model.contacts.is_empty() {
            vec![]
        } else {
            vec![(
                "contact_pressure".into(),
                self.nodal_contact_pressure(model),
            )]
        };
        crate::vtu::VtuData {
            point_vectors: vec![("displacement".into(), self.displacements.clone())],
            point_scalars,
            cell_scalars: vec![(
                "von_mises".into(),
                self.element_stress.iter().map(crate::von_mises).collect(),
            )],
            cell_vectors: vec![],
            cell_tensors: vec![
                ("stress".into(), self.element_stress.clone()),
                (
                    "green_lagrange_strain".into(),
                    self.element_strain
                        .iter()
                        .map(crate::vtu::tensor_shear)
                        .collect(),
                ),
            ],
        }
    }
}

/// One load increment.
#[derive(Clone, Debug, Default)]
pub struct IncrementLog {
    /// Load factor within the step at the start and the end of the increment.
    pub from: f64,
    /// End load factor.
    pub to: f64,
    /// Newton iterations.
    pub iterations: usize,
    /// Residual norm at each iteration (N).
    pub residuals: Vec<f64>,
    /// Step length the line search took at each iteration (1 = the full Newton step).
    pub step_lengths: Vec<f64>,
    /// True when it converged; otherwise why not (and the increment was cut back).
    pub converged: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Augmented-Lagrangian multiplier updates (each followed by a further Newton solve,
    /// whose iterations are counted in `iterations`); 0 without augmented contact pairs.
    pub augmentations: usize,
    /// Largest penetration or release (mm) of an augmented pair's point at the last
    /// check; 0 without augmented pairs.
    pub max_penetration: f64,
}

/// One line per increment for logs: `from->to it N conv B res [r0 r1 ...]` and the failure
/// when there is one; with `{:#}` also the line-search step lengths.
impl std::fmt::Display for IncrementLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[f64], p: usize| {
            v.iter()
                .map(|x| format!("{x:.p$e}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(
            f,
            "{:.4}->{:.4} it {} conv {} res [{}]",
            self.from,
            self.to,
            self.iterations,
            self.converged,
            list(&self.residuals, 1)
        )?;
        if f.alternate() {
            write!(f, " alpha [{}]", list(&self.step_lengths, 1))?;
        }
        if let Some(why) = &self.failure {
            write!(f, " ({why})")?;
        }
        Ok(())
    }
}

/// Result of one step.
#[derive(Clone, Debug, Default)]
pub struct StepResult {
    /// Step name.
    pub name: String,
    /// True when the step reached load factor 1.
    pub converged: bool,
    /// State at its end (only when converged).
    pub state: Option<StepState>,
    /// States at the step's `record_at` load factors reached so far, `(factor, state)`.
    pub records: Vec<(f64, StepState)>,
    /// Every increment tried, failed ones included.
    pub increments: Vec<IncrementLog>,
    /// Wall time of the step.
    pub time: Duration,
}

/// Time per phase over the whole analysis.
#[derive(Clone, Debug, Default)]
pub struct NlTimings {
    /// DOF map, sparsity pattern and symbolic factorisation.
    pub setup: Duration,
    /// Residual and tangent assembly.
    pub assembly: Duration,
    /// Contact search.
    pub contact_search: Duration,
    /// Numeric factorisations.
    pub factorization: Duration,
    /// Triangular solves.
    pub solve: Duration,
    /// Everything.
    pub total: Duration,
}

/// Result of a nonlinear analysis.
#[derive(Clone, Debug, Default)]
pub struct NlResult {
    /// True when every step converged.
    pub converged: bool,
    /// Why not, naming the step and the load factor reached.
    pub failure: Option<String>,
    /// Steps attempted (the first failed step is the last one).
    pub steps: Vec<StepResult>,
    /// Number of equations.
    pub num_equations: usize,
    /// Stored entries of the tangent matrix.
    pub nnz: usize,
    /// Total Newton iterations.
    pub iterations: usize,
    /// Phase times.
    pub timings: NlTimings,
    /// Factorisations of the tangent by method.
    pub factorizations: Factorizations,
}

/// Number of tangent factorisations by method (see [`LinearSolver`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factorizations {
    /// Sparse Cholesky `LL^T` of a symmetric positive definite tangent.
    pub cholesky: usize,
    /// Sparse `LDL^T` of a symmetric tangent that is not positive definite.
    pub ldlt: usize,
    /// Symmetric part plus an exact low-rank correction of the non-symmetric part.
    pub low_rank: usize,
    /// Sparse LU.
    pub lu: usize,
    /// Symbolic analyses (ordering and symbolic factorisation of a new pattern).
    pub analyses: usize,
}
