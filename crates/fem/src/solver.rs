//! Assembly into a sparse symmetric matrix, reusable symbolic factorisation, linear solve.

use std::time::{Duration, Instant};

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::perm::PermRef;
use faer::sparse::linalg::cholesky::{
    factorize_symbolic_cholesky, LltRef, SymbolicCholesky, SymmetricOrdering,
};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat, SymbolicSparseColMatRef};
use faer::{Conj, Mat, Par, Side};
use nalgebra::{Matrix6, SymmetricEigen};
use rayon::prelude::*;

use crate::bc::{Constraints, Loads};
use crate::element::{add_btdb, point_geometry};
use crate::iterative::{IterativeOptions, IterativeStats, NearNullSpace, NULL_DIM};
use crate::material::LinearElastic;
use crate::mesh::Mesh;
use crate::FemError;

const NOT_FREE: usize = usize::MAX;

/// Elements per parallel batch: element matrices of a batch are computed in parallel, then
/// scattered serially (no write conflicts, bounded memory).
const BATCH: usize = 8192;

/// Maps global DOFs (`3 * node + dir`) to equation numbers of the free DOFs.
#[derive(Clone, Debug)]
pub struct DofMap {
    /// Equation number of each global DOF, or `usize::MAX` when it is constrained or its
    /// node belongs to no element (such DOFs keep their prescribed value or 0).
    pub equation: Vec<usize>,
    /// Number of free DOFs (equations).
    pub num_free: usize,
}

impl DofMap {
    fn new(mesh: &Mesh, constraints: &Constraints) -> Result<Self, FemError> {
        let nn = mesh.num_nodes();
        if let Some((n, d)) = constraints.invalid.first() {
            return Err(FemError::InvalidInput(format!(
                "constraint on node {n} in direction {d}: directions are 0 (x), 1 (y), 2 (z)"
            )));
        }
        if let Some((&d, _)) = constraints.values.iter().find(|(&d, _)| d >= 3 * nn) {
            return Err(FemError::InvalidInput(format!(
                "constraint on node {}, but the mesh has {nn} nodes",
                d / 3
            )));
        }
        if let Some((&d, v)) = constraints.values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(FemError::InvalidInput(format!(
                "constraint on DOF {d} has a non-finite value {v}"
            )));
        }
        let mut used = vec![false; nn];
        for &n in &mesh.connectivity {
            used[n] = true;
        }
        let mut equation = vec![NOT_FREE; 3 * nn];
        let mut k = 0;
        for n in 0..nn {
            if !used[n] {
                continue;
            }
            for d in 0..3 {
                if !constraints.values.contains_key(&(3 * n + d)) {
                    equation[3 * n + d] = k;
                    k += 1;
                }
            }
        }
        Ok(DofMap {
            equation,
            num_free: k,
        })
    }
}

/// Fill-reducing ordering of the equations before the sparse Cholesky factorisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ordering {
    /// Nested dissection (METIS `NodeND`) of the node graph, expanded to the DOFs of each
    /// node. Much less fill than AMD on 3D solid meshes (George 1973; Karypis & Kumar 1998).
    /// Falls back to AMD when METIS fails (reported by [`SparseSystem::ordering`]).
    #[default]
    Metis,
    /// Approximate minimum degree on the equation graph (faer's built-in).
    Amd,
}

impl Ordering {
    /// Lower-case name (`"metis"`, `"amd"`) for reports.
    pub fn name(self) -> &'static str {
        match self {
            Ordering::Metis => "metis",
            Ordering::Amd => "amd",
        }
    }
}

impl std::fmt::Display for Ordering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Ordering {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "metis" => Ok(Ordering::Metis),
            "amd" => Ok(Ordering::Amd),
            _ => Err(format!("unknown ordering {s:?}: use metis or amd")),
        }
    }
}

/// How the linear system `K_ff u_f = f` is solved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinearMethod {
    /// Supernodal sparse Cholesky (faer) with a fill-reducing [`Ordering`].
    #[default]
    Direct,
    /// Conjugate gradients preconditioned by smoothed-aggregation AMG
    /// ([`crate::iterative`]): far less memory than the Cholesky factor on large models.
    CgAmg,
}

impl LinearMethod {
    /// Name for reports and the command line (`"direct"`, `"cg-amg"`).
    pub fn name(self) -> &'static str {
        match self {
            LinearMethod::Direct => "direct",
            LinearMethod::CgAmg => "cg-amg",
        }
    }
}

impl std::fmt::Display for LinearMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LinearMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "direct" => Ok(LinearMethod::Direct),
            "cg-amg" => Ok(LinearMethod::CgAmg),
            _ => Err(format!("unknown solver {s:?}: use direct or cg-amg")),
        }
    }
}

/// Options of the linear solver.
#[derive(Clone, Debug, Default)]
pub struct SolverOptions {
    /// Fill-reducing ordering of the direct solver (default: METIS nested dissection).
    pub ordering: Ordering,
    /// Direct (default) or iterative solve.
    pub method: LinearMethod,
    /// Tolerance, iteration limit and preconditioner of the iterative solve (used with
    /// [`LinearMethod::CgAmg`]).
    pub iterative: IterativeOptions,
}

/// Wall-clock time of each phase of a solve.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// Sparsity pattern (from mesh connectivity and DOF map).
    pub pattern: Duration,
    /// Symbolic factorisation (fill-reducing ordering + elimination tree); 0 for the
    /// iterative solver.
    pub symbolic: Duration,
    /// Element matrices and scatter into the sparse matrix, plus load vector.
    pub assembly: Duration,
    /// Numeric Cholesky factorisation; for the iterative solver, the preconditioner setup.
    pub numeric: Duration,
    /// Triangular solves and residual check; for the iterative solver, the CG iterations
    /// and residual check.
    pub solve: Duration,
}

/// The stiffness system of a mesh for one set of constrained DOFs: DOF map, the sparsity
/// pattern of `K_ff` (upper triangle, CSC) and its symbolic Cholesky factorisation. Build it
/// once; then assemble new values (new material, new prescribed values, new tangent) and
/// refactorise numerically as often as needed. Built for [`LinearMethod::CgAmg`], it has no
/// symbolic factorisation ([`SparseSystem::factorize`] is then an error) and solves with
/// [`SparseSystem::solve_iterative`].
pub struct SparseSystem {
    /// DOF numbering.
    pub dofs: DofMap,
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    symbolic: Option<SymbolicCholesky<usize>>,
    /// Node coordinates (rigid-body modes of the AMG preconditioner).
    coords: Vec<[f64; 3]>,
    ordering: Ordering,
    /// Time spent on the pattern and the symbolic factorisation.
    pub timings: Timings,
}

/// Assembled values of `K_ff` (in the pattern of a [`SparseSystem`]) and right-hand side
/// `f_f - K_fc u_c`.
pub struct Assembled {
    /// Values of the upper triangle, aligned with the system's pattern.
    pub values: Vec<f64>,
    /// Right-hand side per equation.
    pub rhs: Vec<f64>,
}

/// A numeric Cholesky factorisation of `K_ff` (borrows the symbolic one of its system).
pub struct Factorization<'a> {
    symbolic: &'a SymbolicCholesky<usize>,
    values: Vec<f64>,
}

/// Parallelism for the factorisation and solves: rayon with all its threads.
fn par() -> Par {
    Par::rayon(0)
}

impl SparseSystem {
    /// Builds the DOF map, sparsity pattern and symbolic factorisation with the default
    /// options (METIS ordering). Validates the mesh and checks that the constraints remove
    /// all rigid-body modes.
    pub fn new(mesh: &Mesh, constraints: &Constraints) -> Result<Self, FemError> {
        Self::with_options(mesh, constraints, &SolverOptions::default())
    }

    /// As [`SparseSystem::new`], with solver options (the ordering).
    pub fn with_options(
        mesh: &Mesh,
        constraints: &Constraints,
        options: &SolverOptions,
    ) -> Result<Self, FemError> {
        mesh.validate()?;
        let t0 = Instant::now();
        let dofs = DofMap::new(mesh, constraints)?;
        check_rigid_body_modes(mesh, constraints)?;
        if dofs.num_free == 0 {
            return Err(FemError::InvalidInput(
                "every DOF is constrained: nothing to solve".into(),
            ));
        }
        let (col_ptr, row_idx) = pattern(mesh, &dofs);
        let t1 = Instant::now();
        let n = dofs.num_free;
        if options.method == LinearMethod::CgAmg {
            return Ok(SparseSystem {
                dofs,
                col_ptr,
                row_idx,
                symbolic: None,
                coords: mesh.nodes.clone(),
                ordering: options.ordering,
                timings: Timings {
                    pattern: t1 - t0,
                    ..Default::default()
                },
            });
        }
        let sym = SymbolicSparseColMat::<usize>::new_checked(
            n,
            n,
            col_ptr.clone(),
            None,
            row_idx.clone(),
        );
        let metis_perm = match options.ordering {
            Ordering::Metis => metis_dof_ordering(mesh, &dofs),
            Ordering::Amd => None,
        };
        let (ordering, symbolic) = match &metis_perm {
            Some((fwd, inv)) => (
                Ordering::Metis,
                factorize_symbolic_cholesky(
                    sym.as_ref(),
                    Side::Upper,
                    SymmetricOrdering::Custom(PermRef::new_checked(fwd, inv, n)),
                    Default::default(),
                ),
            ),
            None => (
                Ordering::Amd,
                factorize_symbolic_cholesky(
                    sym.as_ref(),
                    Side::Upper,
                    SymmetricOrdering::Amd,
                    Default::default(),
                ),
            ),
        };
        let symbolic = symbolic
            .map_err(|e| FemError::Solver(format!("symbolic factorisation failed: {e:?}")))?;
        let timings = Timings {
            pattern: t1 - t0,
            symbolic: t1.elapsed(),
            ..Default::default()
        };
        Ok(SparseSystem {
            dofs,
            col_ptr,
            row_idx,
            symbolic: Some(symbolic),
            coords: Vec::new(),
            ordering,
            timings,
        })
    }

    /// The ordering actually used (METIS falls back to AMD if it fails).
    pub fn ordering(&self) -> Ordering {
        self.ordering
    }

    /// Number of stored entries (upper triangle incl. diagonal) of `K_ff`.
    pub fn nnz(&self) -> usize {
        self.row_idx.len()
    }

    fn slot(&self, row: usize, col: usize) -> usize {
        let (a, b) = (self.col_ptr[col], self.col_ptr[col + 1]);
        // The pattern contains every coupled pair by construction.
        a + self.row_idx[a..b].binary_search(&row).unwrap_or_else(|i| i)
    }

    /// Assembles the linear-elastic `K_ff` and the right-hand side `f_f - K_fc u_c` (with the
    /// external load vector `f_ext`, length `3 * num_nodes`), in parallel.
    pub fn assemble_linear_elastic(
        &self,
        mesh: &Mesh,
        material: &LinearElastic,
        constraints: &Constraints,
        f_ext: &[f64],
    ) -> Result<Assembled, FemError> {
        let ne = mesh.num_elements();
        if material.len() != ne {
            return Err(FemError::InvalidInput(format!(
                "material covers {} elements, the mesh has {ne}",
                material.len()
            )));
        }
        self.assemble_with(mesh, constraints, f_ext, |e| {
            element_stiffness(mesh, material, e)
        })
    }

    /// Generic assembly (the hook for tangent matrices of later nonlinear solves):
    /// `element_matrix(e)` returns the symmetric row-major `3n x 3n` matrix of element `e`
    /// (DOFs node-major); it is called in parallel. Returns `K_ff` in this system's pattern
    /// and `f_f - K_fc u_c` for the prescribed values in `constraints` (same constrained DOFs
    /// as when the system was built; new values are fine).
    pub fn assemble_with<F>(
        &self,
        mesh: &Mesh,
        constraints: &Constraints,
        f_ext: &[f64],
        element_matrix: F,
    ) -> Result<Assembled, FemError>
    where
        F: Fn(usize) -> Result<Vec<f64>, FemError> + Sync,
    {
        let ne = mesh.num_elements();
        if f_ext.len() != self.dofs.equation.len() {
            return Err(FemError::InvalidInput(format!(
                "load vector has {} entries, expected {}",
                f_ext.len(),
                self.dofs.equation.len()
            )));
        }
        // A DOF constrained now but free when the system was built would need a new
        // pattern. (DOFs constrained at build time but absent now are held at 0.)
        if constraints
            .values
            .keys()
            .any(|&g| g >= self.dofs.equation.len() || self.dofs.equation[g] != NOT_FREE)
        {
            return Err(FemError::InvalidInput(
                "the constraints constrain DOFs that were free when the system was built: build a new SparseSystem".into(),
            ));
        }
        let eq = &self.dofs.equation;
        let mut values = vec![0.0; self.nnz()];
        let mut rhs: Vec<f64> = (0..eq.len())
            .filter(|&g| eq[g] != NOT_FREE)
            .map(|g| f_ext[g])
            .collect();
        let mut start = 0;
        while start < ne {
            let end = (start + BATCH).min(ne);
            let kes: Vec<Vec<f64>> = (start..end)
                .into_par_iter()
                .map(&element_matrix)
                .collect::<Result<_, _>>()?;
            for (e, ke) in (start..end).zip(kes) {
                let nodes = mesh.element_nodes(e);
                let ndof = 3 * nodes.len();
                if ke.len() != ndof * ndof {
                    return Err(FemError::InvalidInput(format!(
                        "element matrix of element {e} has {} entries, expected {}",
                        ke.len(),
                        ndof * ndof
                    )));
                }
                let gdof = |i: usize| 3 * nodes[i / 3] + i % 3;
                for i in 0..ndof {
                    let ri = eq[gdof(i)];
                    if ri == NOT_FREE {
                        continue;
                    }
                    for j in 0..ndof {
                        let gj = gdof(j);
                        let cj = eq[gj];
                        let k = ke[i * ndof + j];
                        if cj == NOT_FREE {
                            if let Some(u) = constraints.values.get(&gj) {
                                rhs[ri] -= k * u;
                            }
                        } else if ri <= cj {
                            let s = self.slot(ri, cj);
                            values[s] += k;
                        }
                    }
                }
            }
            start = end;
        }
        Ok(Assembled { values, rhs })
    }

    /// Numeric Cholesky factorisation of assembled values (reusing the symbolic one). A
    /// matrix that is not positive definite means the model still has a mechanism.
    pub fn factorize(&self, values: &[f64]) -> Result<Factorization<'_>, FemError> {
        let Some(symbolic) = &self.symbolic else {
            return Err(FemError::InvalidInput(
                "this system was built for the iterative solver (no symbolic factorisation): use solve_iterative, or build it with LinearMethod::Direct".into(),
            ));
        };
        let m = self.matrix(values)?;
        let mut l_values = Vec::new();
        l_values
            .try_reserve_exact(symbolic.len_val())
            .map_err(|_| FemError::Solver("out of memory for the Cholesky factor".into()))?;
        l_values.resize(symbolic.len_val(), 0.0);
        let scratch = symbolic.factorize_numeric_llt_scratch::<f64>(par(), Default::default());
        let mut buf = MemBuffer::try_new(scratch)
            .map_err(|_| FemError::Solver("out of memory for factorisation scratch".into()))?;
        symbolic
            .factorize_numeric_llt::<f64>(
                &mut l_values,
                m,
                Side::Upper,
                Default::default(),
                par(),
                MemStack::new(&mut buf),
                Default::default(),
            )
            .map_err(|_| FemError::NotPositiveDefinite)?;
        Ok(Factorization {
            symbolic,
            values: l_values,
        })
    }

    /// Number of stored values of the Cholesky factor (fill; memory is 8 bytes each); 0 for
    /// a system built for the iterative solver.
    pub fn factor_nnz(&self) -> usize {
        self.symbolic.as_ref().map_or(0, |s| s.len_val())
    }

    /// Solves `K_ff u_f = rhs` for assembled values by preconditioned conjugate gradients
    /// ([`crate::iterative`]). The AMG preconditioner takes the rigid-body modes from the
    /// node coordinates of the mesh the system was built for. A solve that does not reach
    /// `options.tol` is an error ([`FemError::NotConverged`]).
    pub fn solve_iterative(
        &self,
        values: &[f64],
        rhs: &[f64],
        options: &IterativeOptions,
    ) -> Result<(Vec<f64>, IterativeStats), FemError> {
        if values.len() != self.nnz() {
            return Err(FemError::InvalidInput(format!(
                "{} values for a pattern of {} entries",
                values.len(),
                self.nnz()
            )));
        }
        if self.coords.is_empty() {
            return Err(FemError::InvalidInput(
                "this system was built for the direct solver: build it with LinearMethod::CgAmg for solve_iterative".into(),
            ));
        }
        let (block_ptr, modes) = rigid_body_modes(&self.coords, &self.dofs);
        if rhs.len() != self.dofs.num_free {
            return Err(FemError::InvalidInput(format!(
                "right-hand side has {} entries, expected {}",
                rhs.len(),
                self.dofs.num_free
            )));
        }
        crate::iterative::solve_upper_csc(
            (&self.col_ptr, &self.row_idx, values),
            rhs,
            NearNullSpace { block_ptr, modes },
            options,
        )
    }

    fn matrix<'a>(
        &'a self,
        values: &'a [f64],
    ) -> Result<SparseColMatRef<'a, usize, f64>, FemError> {
        if values.len() != self.nnz() {
            return Err(FemError::InvalidInput(format!(
                "{} values for a pattern of {} entries",
                values.len(),
                self.nnz()
            )));
        }
        let n = self.dofs.num_free;
        // SAFETY-free: new_checked already validated this pattern in `new`.
        let sym = SymbolicSparseColMatRef::new_checked(n, n, &self.col_ptr, None, &self.row_idx);
        Ok(SparseColMatRef::new(sym, values))
    }

    /// `y = K x` for the symmetric matrix stored as its upper triangle.
    pub fn mul(&self, values: &[f64], x: &[f64]) -> Vec<f64> {
        let n = self.dofs.num_free;
        let mut y = vec![0.0; n];
        for c in 0..n {
            let range = self.col_ptr[c]..self.col_ptr[c + 1];
            for (&r, &v) in self.row_idx[range.clone()].iter().zip(&values[range]) {
                y[r] += v * x[c];
                if r != c {
                    y[c] += v * x[r];
                }
            }
        }
        y
    }
}

impl Factorization<'_> {
    /// Solves `K x = b`.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let mut x = Mat::from_fn(b.len(), 1, |i, _| b[i]);
        let mut buf = MemBuffer::new(self.symbolic.solve_in_place_scratch::<f64>(1, par()));
        LltRef::<'_, usize, f64>::new(self.symbolic, &self.values).solve_in_place_with_conj(
            Conj::No,
            x.as_mut(),
            par(),
            MemStack::new(&mut buf),
        );
        (0..b.len()).map(|i| x[(i, 0)]).collect()
    }
}

/// Node blocks of the equations (the free DOFs of a node are consecutive equations) and the
/// six rigid-body modes per equation: translations `e_x, e_y, e_z` and rotations `e_a x y`
/// about the axes through the centroid, `y = (x - centroid) / size` (modes of similar scale).
fn rigid_body_modes(coords: &[[f64; 3]], dofs: &DofMap) -> (Vec<usize>, Vec<[f64; NULL_DIM]>) {
    let nn = coords.len().min(dofs.equation.len() / 3);
    let free = |n: usize| (0..3).any(|d| dofs.equation[3 * n + d] != NOT_FREE);
    let mut c = [0.0; 3];
    let mut count = 0usize;
    for n in (0..nn).filter(|&n| free(n)) {
        for d in 0..3 {
            c[d] += coords[n][d];
        }
        count += 1;
    }
    let c = c.map(|v| v / count.max(1) as f64);
    let size = (0..nn)
        .filter(|&n| free(n))
        .map(|n| (0..3).map(|d| (coords[n][d] - c[d]).powi(2)).sum::<f64>())
        .fold(0.0f64, f64::max)
        .sqrt()
        .max(f64::MIN_POSITIVE);
    let mut block_ptr = vec![0];
    let mut modes = vec![[0.0; NULL_DIM]; dofs.num_free];
    for (n, x) in coords.iter().enumerate().take(nn) {
        let y = [0, 1, 2].map(|d| (x[d] - c[d]) / size);
        let mut any = false;
        for d in 0..3 {
            let k = dofs.equation[3 * n + d];
            if k == NOT_FREE {
                continue;
            }
            any = true;
            let m = &mut modes[k];
            m[d] = 1.0;
            // Component d of e_a x y for a = x, y, z.
            match d {
                0 => (m[4], m[5]) = (y[2], -y[1]),
                1 => (m[3], m[5]) = (-y[2], y[0]),
                _ => (m[3], m[4]) = (y[1], -y[0]),
            }
        }
        if any {
            block_ptr.push(
                block_ptr.last().copied().unwrap_or(0)
                    + (0..3)
                        .filter(|&d| dofs.equation[3 * n + d] != NOT_FREE)
                        .count(),
            );
        }
    }
    (block_ptr, modes)
}

/// METIS itself is reentrant, but serialising the calls keeps its GKlib allocator state
/// out of any doubt; ordering is a small part of a solve.
static METIS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Nested-dissection ordering of the equations: METIS `NodeND` on the graph of the nodes
/// that carry free DOFs (two nodes adjacent when they share an element), then each node's
/// free equations in turn. Ordering the node graph instead of the 3x larger equation graph
/// is cheaper and keeps the DOFs of a node together (dense 3x3 blocks, better supernodes).
/// Returns `(forward, inverse)` with `forward[new] = old` equation, or `None` when METIS
/// fails or the graph is too large for its 32-bit indices (the caller then uses AMD).
fn metis_dof_ordering(mesh: &Mesh, dofs: &DofMap) -> Option<(Vec<usize>, Vec<usize>)> {
    let nn = mesh.num_nodes();
    let eq = &dofs.equation;
    // Graph vertices: nodes with at least one free DOF.
    let mut vertex = vec![usize::MAX; nn];
    let mut nodes_of = Vec::new();
    for n in 0..nn {
        if (0..3).any(|d| eq[3 * n + d] != NOT_FREE) {
            vertex[n] = nodes_of.len();
            nodes_of.push(n);
        }
    }
    let nv = nodes_of.len();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); nv];
    for e in 0..mesh.num_elements() {
        let nodes = mesh.element_nodes(e);
        for &a in nodes {
            let va = vertex[a];
            if va == usize::MAX {
                continue;
            }
            adj[va].extend(
                nodes
                    .iter()
                    .map(|&b| vertex[b])
                    .filter(|&vb| vb != usize::MAX && vb != va),
            );
        }
    }
    adj.par_iter_mut().for_each(|v| {
        v.sort_unstable();
        v.dedup();
    });
    let perm = metis_node_nd(&adj)?;
    drop(adj);
    // METIS: row i of the permuted matrix is row perm[i] of the original.
    let mut fwd = Vec::with_capacity(dofs.num_free);
    for &v in &perm {
        let n = *nodes_of.get(v)?;
        fwd.extend((0..3).map(|d| eq[3 * n + d]).filter(|&k| k != NOT_FREE));
    }
    if fwd.len() != dofs.num_free {
        return None;
    }
    let mut inv = vec![usize::MAX; fwd.len()];
    for (new, &old) in fwd.iter().enumerate() {
        if old >= inv.len() || inv[old] != usize::MAX {
            return None;
        }
        inv[old] = new;
    }
    Some((fwd, inv))
}

/// METIS `NodeND` (nested dissection) of an undirected graph given as adjacency lists
/// (symmetric, no self loops). Returns `perm` with `perm[new] = old` vertex, or `None` when
/// METIS fails or the graph is too large for its 32-bit indices.
pub(crate) fn metis_node_nd(adj: &[Vec<usize>]) -> Option<Vec<usize>> {
    let nv = adj.len();
    let total: usize = adj.iter().map(Vec::len).sum();
    let max = metis_sys::idx_t::MAX as usize;
    if nv < 2 || total == 0 || nv > max || total > max {
        return None;
    }
    let mut xadj: Vec<metis_sys::idx_t> = Vec::with_capacity(nv + 1);
    let mut adjncy: Vec<metis_sys::idx_t> = Vec::with_capacity(total);
    xadj.push(0);
    for v in adj {
        adjncy.extend(v.iter().map(|&b| b as metis_sys::idx_t));
        xadj.push(adjncy.len() as metis_sys::idx_t);
    }
    let mut nvtxs = nv as metis_sys::idx_t;
    let mut perm = vec![0 as metis_sys::idx_t; nv];
    let mut iperm = vec![0 as metis_sys::idx_t; nv];
    let mut options = [0 as metis_sys::idx_t; metis_sys::METIS_NOPTIONS as usize];
    let status = {
        let _guard = METIS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: the arrays have the sizes METIS_NodeND requires (xadj nv + 1, adjncy
        // xadj[nv], perm/iperm nv, options METIS_NOPTIONS) and outlive the call; METIS
        // does not keep pointers to them. A null vwgt means unit vertex weights.
        unsafe {
            metis_sys::METIS_SetDefaultOptions(options.as_mut_ptr());
            options[metis_sys::moptions_et_METIS_OPTION_NUMBERING as usize] = 0;
            metis_sys::METIS_NodeND(
                &mut nvtxs,
                xadj.as_mut_ptr(),
                adjncy.as_mut_ptr(),
                std::ptr::null_mut(),
                options.as_mut_ptr(),
                perm.as_mut_ptr(),
                iperm.as_mut_ptr(),
            )
        }
    };
    if status != metis_sys::rstatus_et_METIS_OK {
        return None;
    }
    // METIS: row i of the permuted matrix is row perm[i] of the original.
    perm.iter().map(|&v| usize::try_from(v).ok()).collect()
}

/// Upper-triangle CSC pattern of K_ff: column `c` holds every free row `r <= c` whose node
/// shares an element with the node of `c`.
fn pattern(mesh: &Mesh, dofs: &DofMap) -> (Vec<usize>, Vec<usize>) {
    let nn = mesh.num_nodes();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); nn];
    for e in 0..mesh.num_elements() {
        let nodes = mesh.element_nodes(e);
        for &a in nodes {
            adj[a].extend_from_slice(nodes);
        }
    }
    adj.par_iter_mut().for_each(|v| {
        v.sort_unstable();
        v.dedup();
    });
    let eq = &dofs.equation;
    let mut col_ptr = Vec::with_capacity(dofs.num_free + 1);
    col_ptr.push(0);
    let mut row_idx = Vec::new();
    for n in 0..nn {
        for d in 0..3 {
            let c = eq[3 * n + d];
            if c == NOT_FREE {
                continue;
            }
            // Equation numbers increase with (node, dir), so this is sorted.
            for &m in &adj[n] {
                for dd in 0..3 {
                    let r = eq[3 * m + dd];
                    if r != NOT_FREE && r <= c {
                        row_idx.push(r);
                    }
                }
            }
            col_ptr.push(row_idx.len());
        }
    }
    (col_ptr, row_idx)
}

/// Element stiffness `K_e = sum_q w_q det J_q B^T D B` (row-major, `3n x 3n`, DOFs ordered
/// node-major `[u1x, u1y, u1z, u2x, ...]`).
pub fn element_stiffness(
    mesh: &Mesh,
    material: &LinearElastic,
    e: usize,
) -> Result<Vec<f64>, FemError> {
    if e >= mesh.num_elements() || e >= material.len() || mesh.offsets.len() != mesh.kinds.len() + 1
    {
        return Err(FemError::InvalidInput(format!(
            "element {e} is not in the mesh ({} elements) or the material ({})",
            mesh.num_elements(),
            material.len()
        )));
    }
    let kind = mesh.kinds[e];
    let x = mesh.element_coords(e);
    let n = kind.num_nodes();
    let d = material.d_matrix(e);
    let mut k = vec![0.0; 9 * n * n];
    for (p, w) in kind.quadrature() {
        let g = point_geometry(kind, &x, *p)
            .filter(|g| g.det_j > 0.0)
            .ok_or(FemError::InvertedElement {
                element: e,
                det_j: 0.0,
            })?;
        add_btdb(&mut k, &g.dndx[..n], &d, w * g.det_j);
    }
    Ok(k)
}

/// Checks, for every connected part of the mesh, that the constrained DOFs block all six
/// rigid-body modes: the Gram matrix of the modes restricted to the constrained DOFs must be
/// non-singular. Catches "no BCs", a single pinned node, nodes constrained on a line, ...
fn check_rigid_body_modes(mesh: &Mesh, constraints: &Constraints) -> Result<(), FemError> {
    let nn = mesh.num_nodes();
    // Union-find over element connectivity.
    let mut parent: Vec<usize> = (0..nn).collect();
    fn find(p: &mut [usize], mut a: usize) -> usize {
        while p[a] != a {
            p[a] = p[p[a]];
            a = p[a];
        }
        a
    }
    for e in 0..mesh.num_elements() {
        let nodes = mesh.element_nodes(e);
        let r0 = find(&mut parent, nodes[0]);
        for &b in &nodes[1..] {
            let rb = find(&mut parent, b);
            if rb != r0 {
                parent[rb] = r0;
            }
        }
    }
    let mut used = vec![false; nn];
    for &n in &mesh.connectivity {
        used[n] = true;
    }
    // Per component: centroid, size, then Gram matrix of constrained DOFs.
    let mut comps: std::collections::HashMap<usize, (usize, [f64; 3], f64)> =
        std::collections::HashMap::new();
    for n in (0..nn).filter(|&n| used[n]) {
        let r = find(&mut parent, n);
        let c = comps.entry(r).or_insert((0, [0.0; 3], 0.0));
        c.0 += 1;
        for d in 0..3 {
            c.1[d] += mesh.nodes[n][d];
        }
    }
    for c in comps.values_mut() {
        c.1 = c.1.map(|v| v / c.0 as f64);
    }
    for n in (0..nn).filter(|&n| used[n]) {
        let r = find(&mut parent, n);
        let c = comps.get_mut(&r).unwrap();
        let dx: f64 = (0..3).map(|d| (mesh.nodes[n][d] - c.1[d]).powi(2)).sum();
        c.2 = c.2.max(dx.sqrt());
    }
    let mut gram: std::collections::HashMap<usize, Matrix6<f64>> = Default::default();
    for &dof in constraints.values.keys() {
        let n = dof / 3;
        if n >= nn || !used[n] {
            continue;
        }
        let r = find(&mut parent, n);
        let (_, c, size) = comps[&r];
        let x = [0, 1, 2].map(|d| (mesh.nodes[n][d] - c[d]) / size.max(f64::MIN_POSITIVE));
        // Component `dof % 3` of the 6 modes: translations e_i, rotations w_i x (x - c).
        let dir = dof % 3;
        let mut v = [0.0; 6];
        v[dir] = 1.0;
        // Rotation about axis a: (e_a x x)_dir.
        for a in 0..3 {
            let ea = [0, 1, 2].map(|i| if i == a { 1.0 } else { 0.0 });
            let cr = [
                ea[1] * x[2] - ea[2] * x[1],
                ea[2] * x[0] - ea[0] * x[2],
                ea[0] * x[1] - ea[1] * x[0],
            ];
            v[3 + a] = cr[dir];
        }
        let g = gram.entry(r).or_insert_with(Matrix6::zeros);
        for i in 0..6 {
            for j in 0..6 {
                g[(i, j)] += v[i] * v[j];
            }
        }
    }
    for (&r, &(count, _, _)) in &comps {
        let lambda_min = gram
            .get(&r)
            .map(|g| {
                SymmetricEigen::new(*g)
                    .eigenvalues
                    .iter()
                    .fold(f64::INFINITY, |a, &b| a.min(b))
            })
            .unwrap_or(0.0);
        if lambda_min < 1e-10 {
            return Err(FemError::RigidBodyModes {
                part_node: r,
                part_nodes: count,
            });
        }
    }
    Ok(())
}

/// Result of a linear static solve.
#[derive(Clone, Debug)]
pub struct Solution {
    /// Displacement of every node (mm); constrained DOFs hold their prescribed values,
    /// nodes in no element hold 0 (or their prescribed values).
    pub displacements: Vec<[f64; 3]>,
    /// True when the relative residual is below 1e-8 (for CG: below its tolerance, which
    /// it must reach to return at all, up to 1 % for round-off).
    pub ok: bool,
    /// `|K u - f| / |f|` over the free DOFs, with `f = f_f - K_fc u_c` (0 when `f = 0`).
    pub relative_residual: f64,
    /// Number of equations (free DOFs).
    pub num_equations: usize,
    /// Stored entries of the upper triangle of `K_ff`.
    pub nnz: usize,
    /// Stored values of the Cholesky factor.
    pub factor_nnz: usize,
    /// The fill-reducing ordering used (direct solver; the requested one, unused, for CG).
    pub ordering: Ordering,
    /// Direct or iterative solve.
    pub method: LinearMethod,
    /// Iterations, levels and setup/solve times of an iterative solve (`None` for direct).
    pub iterative: Option<IterativeStats>,
    /// Reaction force at every node (N): `K u - f_ext` on constrained DOFs, 0 elsewhere.
    pub reactions: Vec<[f64; 3]>,
    /// Per-phase timings (`reactions` are computed after `solve` and not timed).
    pub timings: Timings,
}

/// Internal force vector `f_int = sum_e K_e u_e` (length `3 * num_nodes`, N), computed
/// element by element in parallel (batches, serial sum).
pub fn internal_forces(
    mesh: &Mesh,
    material: &LinearElastic,
    u: &[[f64; 3]],
) -> Result<Vec<f64>, FemError> {
    let ne = mesh.num_elements();
    if u.len() != mesh.num_nodes() || material.len() != ne {
        return Err(FemError::InvalidInput(format!(
            "internal forces: {} displacements for {} nodes, material for {} of {ne} elements",
            u.len(),
            mesh.num_nodes(),
            material.len()
        )));
    }
    let mut f = vec![0.0; 3 * mesh.num_nodes()];
    let mut start = 0;
    while start < ne {
        let end = (start + BATCH).min(ne);
        let fes: Vec<Vec<f64>> = (start..end)
            .into_par_iter()
            .map(|e| {
                let ke = element_stiffness(mesh, material, e)?;
                let nodes = mesh.element_nodes(e);
                let ndof = 3 * nodes.len();
                let ue: Vec<f64> = (0..ndof).map(|i| u[nodes[i / 3]][i % 3]).collect();
                Ok((0..ndof)
                    .map(|i| (0..ndof).map(|j| ke[i * ndof + j] * ue[j]).sum())
                    .collect())
            })
            .collect::<Result<_, FemError>>()?;
        for (e, fe) in (start..end).zip(fes) {
            for (i, v) in fe.iter().enumerate() {
                f[3 * mesh.element_nodes(e)[i / 3] + i % 3] += v;
            }
        }
        start = end;
    }
    Ok(f)
}

/// Solves a linear static problem: validate, DOF map and pattern, symbolic factorisation,
/// parallel assembly, Cholesky, solve, residual check. Default options (METIS ordering).
pub fn solve_linear_static(
    mesh: &Mesh,
    material: &LinearElastic,
    constraints: &Constraints,
    loads: &Loads,
) -> Result<Solution, FemError> {
    solve_linear_static_with(
        mesh,
        material,
        constraints,
        loads,
        &SolverOptions::default(),
    )
}

/// As [`solve_linear_static`], with solver options.
pub fn solve_linear_static_with(
    mesh: &Mesh,
    material: &LinearElastic,
    constraints: &Constraints,
    loads: &Loads,
    options: &SolverOptions,
) -> Result<Solution, FemError> {
    let mut v = solve_linear_static_cases(
        mesh,
        material,
        constraints,
        std::slice::from_ref(loads),
        options,
    )?;
    Ok(v.remove(0))
}

/// Solves one linear model for several load cases (same constraints and prescribed values
/// in every case): the pattern, ordering, matrix and factorisation are built once and
/// reused, so each further case costs an assembly of its load vector and two triangular
/// solves (with [`LinearMethod::CgAmg`], a preconditioner setup and CG run per case). One
/// [`Solution`] per case, in order; the first case's timings carry the setup.
pub fn solve_linear_static_cases(
    mesh: &Mesh,
    material: &LinearElastic,
    constraints: &Constraints,
    cases: &[Loads],
    options: &SolverOptions,
) -> Result<Vec<Solution>, FemError> {
    let system = SparseSystem::with_options(mesh, constraints, options)?;
    let mut fact = None;
    let mut out = Vec::with_capacity(cases.len());
    // The matrix and `f_f - K_fc u_c` of the first case; a later case only changes the
    // external loads on the free equations.
    let mut first: Option<(Assembled, Vec<f64>)> = None;
    for (c, loads) in cases.iter().enumerate() {
        let mut timings = if c == 0 {
            system.timings.clone()
        } else {
            Timings::default()
        };
        let t = Instant::now();
        let f_ext = loads.assemble(mesh)?;
        if first.is_none() {
            let asm = system.assemble_linear_elastic(mesh, material, constraints, &f_ext)?;
            first = Some((asm, f_ext.clone()));
        }
        let (asm0, f0) = first.as_ref().expect("assembled above");
        let mut rhs = asm0.rhs.clone();
        for (g, &eq) in system.dofs.equation.iter().enumerate() {
            if eq != NOT_FREE {
                rhs[eq] += f_ext[g] - f0[g];
            }
        }
        let values = &asm0.values;
        timings.assembly = t.elapsed();
        let mut iterative = None;
        let u_free = match options.method {
            LinearMethod::Direct => {
                if fact.is_none() {
                    let t = Instant::now();
                    fact = Some(system.factorize(values)?);
                    timings.numeric = t.elapsed();
                }
                let t = Instant::now();
                let u = fact.as_ref().expect("factorised above").solve(&rhs);
                timings.solve = t.elapsed();
                u
            }
            LinearMethod::CgAmg => {
                let (u, stats) = system.solve_iterative(values, &rhs, &options.iterative)?;
                timings.numeric = stats.setup;
                timings.solve = stats.solve;
                iterative = Some(stats);
                u
            }
        };
        out.push(finish_solution(
            &system,
            mesh,
            material,
            constraints,
            options,
            values,
            &rhs,
            &f_ext,
            u_free,
            iterative,
            timings,
        )?);
    }
    Ok(out)
}

/// Residual checks, full displacement vector and reactions of one solved case.
#[allow(clippy::too_many_arguments)]
fn finish_solution(
    system: &SparseSystem,
    mesh: &Mesh,
    material: &LinearElastic,
    constraints: &Constraints,
    options: &SolverOptions,
    values: &[f64],
    rhs: &[f64],
    f_ext: &[f64],
    u_free: Vec<f64>,
    iterative: Option<IterativeStats>,
    mut timings: Timings,
) -> Result<Solution, FemError> {
    let t = Instant::now();
    let ku = system.mul(values, &u_free);
    let rn: f64 = ku
        .iter()
        .zip(rhs)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let fnorm: f64 = rhs.iter().map(|v| v * v).sum::<f64>().sqrt();
    let rel = if fnorm > 0.0 { rn / fnorm } else { rn };
    timings.solve += t.elapsed();
    if !rel.is_finite() || rel > 1e-3 {
        return Err(FemError::IllConditioned { residual: rel });
    }
    // A near-mechanism can factorise with a tiny positive pivot (round-off) and still give
    // a small residual; its displacements are then huge. |u| max|K_ii| / |f| is a lower
    // bound of the condition number; beyond 1e14 the result is noise.
    let kdiag = (0..system.dofs.num_free)
        .map(|c| values[system.col_ptr[c + 1] - 1].abs())
        .fold(0.0, f64::max);
    let umax = u_free.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let fmax = rhs.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if fmax > 0.0 && umax * kdiag / fmax > 1e14 {
        return Err(FemError::IllConditioned { residual: rel });
    }
    let nn = mesh.num_nodes();
    let mut displacements = vec![[0.0; 3]; nn];
    for (n, u) in displacements.iter_mut().enumerate() {
        for (d, ud) in u.iter_mut().enumerate() {
            let g = 3 * n + d;
            let k = system.dofs.equation[g];
            *ud = if k != NOT_FREE {
                u_free[k]
            } else {
                constraints.values.get(&g).copied().unwrap_or(0.0)
            };
        }
    }
    let f_int = internal_forces(mesh, material, &displacements)?;
    let mut reactions = vec![[0.0; 3]; nn];
    for &g in constraints.values.keys() {
        reactions[g / 3][g % 3] = f_int[g] - f_ext[g];
    }
    Ok(Solution {
        displacements,
        reactions,
        // CG stopped at its tolerance by its own residual; 1 % of slack for the round-off of
        // this second residual evaluation.
        ok: match options.method {
            LinearMethod::Direct => rel <= 1e-8,
            LinearMethod::CgAmg => rel <= 1.01 * options.iterative.tol,
        },
        relative_residual: rel,
        num_equations: system.dofs.num_free,
        nnz: system.nnz(),
        factor_nnz: system.factor_nnz(),
        ordering: system.ordering(),
        method: options.method,
        iterative,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{box_mesh, Order};

    fn cube(cells: usize) -> (Mesh, LinearElastic, Constraints, Loads) {
        let m = box_mesh([10.0, 10.0, 10.0], [cells; 3], Order::Quadratic).unwrap();
        let mat = LinearElastic::uniform(m.num_elements(), 1000.0, 0.3).unwrap();
        let mut bc = Constraints::new();
        bc.fix(m.node_set("zmin").unwrap(), [true; 3]);
        // One partially constrained face: nodes with some free DOFs stay in the graph.
        bc.fix(m.node_set("xmin").unwrap(), [true, false, false]);
        let mut loads = Loads::new();
        loads.traction(m.face_set("zmax").unwrap(), [0.3, 0.1, -1.0]);
        (m, mat, bc, loads)
    }

    #[test]
    fn several_load_cases_share_one_factorisation_and_match_single_solves() {
        let (m, mat, bc, loads) = cube(3);
        let mut other = Loads::new();
        other.nodal_force(m.node_set("zmax").unwrap()[0], [0.0, 5.0, -2.0]);
        let opts = SolverOptions::default();
        let both = solve_linear_static_cases(&m, &mat, &bc, &[loads.clone(), other.clone()], &opts)
            .unwrap();
        assert_eq!(both.len(), 2);
        // Only the first case factorises.
        assert!(both[1].timings.numeric.is_zero());
        for (many, one) in both.iter().zip([loads, other]) {
            let single = solve_linear_static(&m, &mat, &bc, &one).unwrap();
            let diff = many
                .displacements
                .iter()
                .zip(&single.displacements)
                .flat_map(|(a, b)| (0..3).map(move |d| (a[d] - b[d]).abs()))
                .fold(0.0, f64::max);
            let scale = single
                .displacements
                .iter()
                .flat_map(|a| a.iter().map(|v| v.abs()))
                .fold(0.0, f64::max);
            assert!(many.ok && diff <= 1e-12 * scale, "{diff} vs {scale}");
        }
    }

    #[test]
    fn metis_and_amd_give_the_same_displacements_and_metis_less_fill() {
        let (m, mat, bc, loads) = cube(6);
        let amd = SolverOptions {
            ordering: Ordering::Amd,
            ..Default::default()
        };
        let a = solve_linear_static_with(&m, &mat, &bc, &loads, &amd).unwrap();
        let b = solve_linear_static(&m, &mat, &bc, &loads).unwrap();
        assert_eq!(a.ordering, Ordering::Amd);
        assert_eq!(b.ordering, Ordering::Metis);
        assert!(a.ok && b.ok);
        let umax = a
            .displacements
            .iter()
            .flatten()
            .fold(0.0f64, |s, v| s.max(v.abs()));
        assert!(umax > 1e-4);
        for (ua, ub) in a.displacements.iter().zip(&b.displacements) {
            for d in 0..3 {
                assert!((ua[d] - ub[d]).abs() <= 1e-9 * umax, "{ua:?} vs {ub:?}");
            }
        }
        // A valid ordering fills no more than the dense triangle and at least K itself.
        let n = b.num_equations;
        assert!(b.factor_nnz >= b.nnz && b.factor_nnz <= n * (n + 1) / 2);
        println!(
            "6^3 tet10 cube: {n} equations, nnz(L) metis {} vs amd {}",
            b.factor_nnz, a.factor_nnz
        );
    }

    #[test]
    fn metis_fill_is_below_amd_on_a_3d_grid() {
        // Nested dissection beats minimum degree on 3D grids asymptotically (George 1973):
        // O(n^(4/3)) fill vs. typically more for AMD; at 10^3 tet10 cells it already shows.
        let (m, _, bc, _) = cube(10);
        let metis = SparseSystem::new(&m, &bc).unwrap();
        let amd = SparseSystem::with_options(
            &m,
            &bc,
            &SolverOptions {
                ordering: Ordering::Amd,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(metis.ordering(), Ordering::Metis);
        println!(
            "10^3 tet10 cube: {} equations, nnz(L) metis {} vs amd {}",
            metis.dofs.num_free,
            metis.factor_nnz(),
            amd.factor_nnz()
        );
        assert!(metis.factor_nnz() < amd.factor_nnz());
    }

    #[test]
    fn ordering_names_round_trip() {
        for o in [Ordering::Metis, Ordering::Amd] {
            assert_eq!(o.name().parse::<Ordering>().unwrap(), o);
        }
        assert!("nd".parse::<Ordering>().is_err());
    }
}
