//! spinetwin-fem: a generic finite-element engine (no anatomy here).
//!
//! Linear static elasticity with 4- and 10-node tetrahedra, 8-node hexahedra and 6-node
//! wedges: meshes with named sets and validation ([`mesh`]), structured box (tet, hex,
//! wedge) and cylinder-sector meshers, isotropic materials with per-element moduli ([`material`]), consistent surface
//! and body loads and prescribed displacements ([`bc`]), parallel assembly into a sparse
//! symmetric matrix with a reusable symbolic Cholesky factorisation (faer; METIS nested-dissection
//! or AMD ordering) ([`solver`]) or, for large models, conjugate gradients with a
//! smoothed-aggregation algebraic multigrid preconditioner ([`iterative`]), stresses ([`post`]), VTU output ([`vtu`]) and Abaqus/CalculiX
//! `.inp` decks ([`inp`]). For large deformations: total-Lagrangian elements with F-bar for
//! Hex8/Wedge6 ([`continuum`]), hyperelastic materials ([`hyper`]: compressible Neo-Hookean,
//! decoupled Mooney-Rivlin, HGO with two dispersed fibre families, transversely isotropic St
//! Venant-Kirchhoff) and the Newton solver with rigid bodies, springs, corotational beams
//! clamped between bodies, follower loads and penalty contact ([`nl`]).
//!
//! # Conventions
//!
//! * Units: mm, N, MPa (N/mm^2); stiffness N/mm; body forces N/mm^3.
//! * Voigt order `[xx, yy, zz, xy, xz, yz]` (Abaqus/CalculiX), engineering shear strains
//!   (`gamma_xy = 2 eps_xy`); stresses are Cauchy (small strain).
//! * Node numbering: Abaqus/CalculiX C3D4, C3D10, C3D8, C3D6 (see [`ElementKind`]); faces
//!   S1, S2, ... as in Abaqus ([`ElementKind::faces`]); indices are 0-based.
//! * Global DOF `3 * node + dir` (dir 0 = x, 1 = y, 2 = z). Constrained DOFs are eliminated
//!   and their prescribed values lifted to the right-hand side.
//! * Positive pressure pushes on the surface (acts along the inward normal).
//!
//! # Verification
//!
//! `tests/verification.rs` checks, each against an exact or analytical answer: element
//! matrices (symmetric, PSD, exactly 6 rigid-body modes); patch tests on distorted meshes
//! (prescribed linear field and traction) for Tet4 and Tet10 to 1e-8; the uniaxial bar
//! `F L / (E A)`; a hanging bar under body force (exact for Tet10); a Timoshenko cantilever
//! (Tet10 within 2 %, Tet4 locking); the Lame cylinder (1 %) and L2 convergence rates on it
//! (Tet10 ~3, Tet4 ~2); a two-material series bar; rigid-body modes and mechanisms as errors;
//! invalid meshes; face tables and pressure resultants; VTU structure and Tet10 node order.
//! `tests/solids.rs` does the same for Hex8 and Wedge6: shape functions, faces (inward
//! normals, exact pressure resultants on tri and quad faces, box face sets), stiffness
//! (6 rigid modes), prescribed and traction patch tests on distorted meshes (1e-8), the
//! uniaxial bar (1e-9), cantilever convergence (both 0.957 of Timoshenko at 40x4x4, full
//! integration shear-locks coarse meshes) and the VTK hexahedron/wedge node order.
//! Nonlinear: element tangents against finite differences of forces and forces against
//! finite differences of the energy (Tet10, F-bar Hex8/Wedge6, 1e-6); material stresses
//! against `dW/dE` and tangents against `dS/dE` (1e-7), zero stress at `F = I`,
//! objectivity, small-strain limits; `tests/hyperelastic.rs`: element stresses under
//! homogeneous deformations equal closed forms (Neo-Hookean uniaxial stretch 1.5 and simple
//! shear 0.5, HGO stretch along the fibres; 1e-9 or better) and F-bar removes volumetric
//! locking of a nearly incompressible Hex8 cantilever (0.944 of Timoshenko vs 0.133 without;
//! Wedge6 0.864 vs 0.413, some locking remains);
//! a large-deflection Hex8 cantilever converges quadratically under full Newton.
//! `tests/beams.rs`: corotational beams against beam theory (cantilever deflection, rotation,
//! root moment and stress, Euler-Bernoulli and Timoshenko, both bending planes; axial
//! stretch; torsion; 1e-6 or better), a chain bent into a circular arc by an end moment
//! (tip rotation exact, position converging at second order), rigid rotation (no load),
//! the extensible elastica (second-order convergence) and quadratic Newton convergence.
//! `iterative` (unit tests): CG + smoothed-aggregation AMG equals the Cholesky solution to
//! 1e-7 (rel. L2) on a clamped Tet10 block; it needs 3x fewer iterations than Jacobi-PCG
//! and its iterations stay within 1.5x when h is halved (Jacobi-PCG's double); a solve that
//! does not converge is an error.
//!
//! # Not yet
//!
//! Hourglass-free reduced integration or incompatible modes for Hex8 bending, quadratic
//! hex/wedge elements, friction, binary VTU, stress recovery beyond element averages, the
//! iterative solver in the nonlinear (Newton) path. (`spinetwin bench fem` cross-checks
//! against CalculiX.)
//!
//! # Example
//!
//! ```
//! use spinetwin_fem::*;
//! let mesh = box_mesh([10.0, 1.0, 1.0], [4, 1, 1], Order::Quadratic).unwrap();
//! let mat = LinearElastic::uniform(mesh.num_elements(), 1000.0, 0.3).unwrap();
//! let mut bc = Constraints::new();
//! bc.fix(mesh.node_set("xmin").unwrap(), [true, true, true]);
//! let mut loads = Loads::new();
//! loads.traction(mesh.face_set("xmax").unwrap(), [1.0, 0.0, 0.0]);
//! let sol = solve_linear_static(&mesh, &mat, &bc, &loads).unwrap();
//! assert!(sol.ok);
//! ```

pub mod bc;
pub mod continuum;
pub mod element;
pub mod hyper;
pub mod inp;
pub mod iterative;
pub mod material;
pub mod mesh;
pub mod nl;
pub mod post;
pub mod solver;
pub mod vtu;

pub use bc::{Constraints, Loads};
pub use element::ElementKind;
pub use hyper::{
    FibreInvariants, Hgo, HgoParams, MooneyRivlin, MooneyRivlinParams, NeoHookean, TransIsoParams,
    TransverselyIsotropic,
};
pub use iterative::{AmgOptions, IterativeOptions, IterativeStats, Preconditioner};
pub use material::{elasticity_matrix, LinearElastic};
pub use mesh::{box_mesh, cylinder_sector_mesh, hex_box_mesh, wedge_box_mesh, Face, Mesh, Order};
pub use post::{
    element_results, nodal_average_stress, principal_stresses, von_mises, ElementResult,
};
pub use solver::{
    element_stiffness, internal_forces, solve_linear_static, solve_linear_static_cases,
    solve_linear_static_with, Assembled, DofMap, Factorization, LinearMethod, Ordering, Solution,
    SolverOptions, SparseSystem, Timings,
};
pub use vtu::{vtu_string, write_vtu, VtuData};

/// Errors of the FE engine. Each says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FemError {
    /// The mesh is inconsistent.
    #[error("invalid mesh: {0}")]
    InvalidMesh(String),
    /// An element has a non-positive Jacobian determinant.
    #[error("element {element} is inverted or degenerate (det J = {det_j:e} at an integration point or corner): fix its node order or geometry")]
    InvertedElement {
        /// Element index.
        element: usize,
        /// The offending determinant.
        det_j: f64,
    },
    /// Bad input other than the mesh.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The constraints leave rigid-body modes.
    #[error("the model has rigid-body modes: constrain it (the part containing node {part_node}, {part_nodes} nodes, can still move as a rigid body)")]
    RigidBodyModes {
        /// A node of the unconstrained part.
        part_node: usize,
        /// Number of nodes of that part.
        part_nodes: usize,
    },
    /// Cholesky failed: not positive definite.
    #[error("the stiffness matrix is not positive definite: the model has rigid-body modes or a mechanism: constrain it")]
    NotPositiveDefinite,
    /// The solution does not satisfy the equations.
    #[error("the solve is ill-conditioned (relative residual {residual:e}): check for near-mechanisms or extreme stiffness contrasts")]
    IllConditioned {
        /// Relative residual.
        residual: f64,
    },
    /// The iterative solver did not reach its tolerance.
    #[error("the iterative solver did not converge: relative residual {residual:.2e} after {iterations} iterations (raise the iteration limit or use the direct solver)")]
    NotConverged {
        /// Iterations done.
        iterations: usize,
        /// Relative residual reached.
        residual: f64,
    },
    /// Failure inside the sparse solver.
    #[error("sparse solver: {0}")]
    Solver(String),
    /// Output could not be written.
    #[error(transparent)]
    Write(#[from] spinetwin_core::atomic::WriteError),
}
