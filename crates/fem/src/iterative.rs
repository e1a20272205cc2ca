//! Preconditioned conjugate gradients (PCG) with a smoothed-aggregation algebraic multigrid
//! (SA-AMG) preconditioner for the symmetric positive definite stiffness `K_ff` of 3D linear
//! elasticity: the iterative alternative to the sparse Cholesky of [`crate::solver`] for
//! large models, where the Cholesky factor's fill (memory) grows much faster than `K`.
//!
//! # Method
//!
//! Smoothed aggregation after Vanek, Mandel & Brezina (1996, "Algebraic multigrid by
//! smoothed aggregation for second and fourth order elliptic problems", Computing 56):
//!
//! * **Blocks.** The unknowns are grouped in blocks: the free DOFs of one mesh node on the
//!   finest level, the coarse DOFs of one aggregate on the coarser levels.
//! * **Strength of connection** between blocks `i != j`:
//!   `|A_ij|_F >= theta sqrt(|A_ii|_F |A_jj|_F)` (Frobenius norms of the blocks), with
//!   `theta` halved on each coarser level.
//! * **Aggregation** (the three phases of Vanek et al.): (1) a block whose strong neighbours
//!   are all free forms an aggregate with them; (2) every block left joins the aggregate of
//!   its strongest aggregated neighbour; (3) blocks still left form aggregates with their
//!   free strong neighbours.
//! * **Tentative prolongator** from the near-null space: the 6 rigid-body modes (3
//!   translations, 3 rotations about the centroid, from the node coordinates, scaled by the
//!   model size). Per aggregate, the modes restricted to its DOFs are orthonormalised by
//!   modified Gram-Schmidt (a QR factorisation, run twice for stability, dropping dependent
//!   columns: an aggregate of one node with 3 DOFs keeps 3 modes). `Q` is the aggregate's
//!   block of the prolongator, `Q^T B` the coarse near-null space.
//! * **Prolongator smoothing:** `P = (I - omega D^-1 A) P_tent`,
//!   `omega = (4/3) / rho(D^-1 A)`, `rho` from a few power iterations (Rayleigh quotient).
//! * **Coarse operators** by the Galerkin product `A_c = P^T A P`, down to at most
//!   [`AmgOptions::max_coarse`] equations (or [`AmgOptions::max_levels`] levels); the
//!   coarsest system is solved directly (faer sparse Cholesky, AMD ordering).
//! * **V-cycle** with a Chebyshev polynomial smoother in `D^-1 A` on
//!   `[rho / 30, 1.1 rho]` (Adams, Brezina, Hu & Tuminaro 2003, "Parallel multigrid
//!   smoothing: polynomial versus Gauss-Seidel", J. Comput. Phys. 188), the same polynomial
//!   before and after the coarse correction. The smoother is symmetric in the `A` inner
//!   product and convergent, so the V-cycle is a symmetric positive definite operator, as
//!   CG requires. Unlike Gauss-Seidel it parallelises like a mat-vec.
//!
//! Sparse products, mat-vecs, the smoother and the vector operations of CG run in parallel
//! (rayon); aggregation is serial (it is a small part of the setup).
//!
//! # Why hand-written
//!
//! Checked on docs.rs/crates.io (2026-12-02): `scirs2-sparse` (an SA hierarchy inside a large
//! scientific stack with its own matrix types), `nalgebra-sparse-linalg` and `numr` (scalar
//! AMG: constant near-null space, no rigid-body modes), `oxiphysics-fem` (0.1, young). None
//! takes the rigid-body modes of 3D elasticity with node-block aggregation on faer-compatible
//! CSR data as a small dependency, so the method is written here from the papers above (no
//! code taken from any project).
//!
//! # Convergence
//!
//! CG stops when the relative residual `|b - A x| / |b|` is at most
//! [`IterativeOptions::tol`] (the recursive residual, confirmed by the true one). A solve that
//! does not reach it within [`IterativeOptions::max_iterations`] is an error
//! ([`FemError::NotConverged`]), never a result.

use std::time::{Duration, Instant};

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::sparse::linalg::cholesky::{
    factorize_symbolic_cholesky, LltRef, SymbolicCholesky, SymmetricOrdering,
};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat, SymbolicSparseColMatRef};
use faer::{Conj, Mat, Par, Side};
use rayon::prelude::*;

use crate::FemError;

/// Preconditioner of the conjugate-gradient solver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Preconditioner {
    /// Smoothed-aggregation algebraic multigrid, one V-cycle per CG iteration.
    #[default]
    Amg,
    /// Diagonal (Jacobi) scaling: the baseline that AMG is measured against.
    Jacobi,
}

impl Preconditioner {
    /// Lower-case name (`"amg"`, `"jacobi"`) for reports.
    pub fn name(self) -> &'static str {
        match self {
            Preconditioner::Amg => "amg",
            Preconditioner::Jacobi => "jacobi",
        }
    }
}

/// Parameters of the smoothed-aggregation hierarchy.
#[derive(Clone, Debug)]
pub struct AmgOptions {
    /// Strength-of-connection threshold on the finest level (halved per coarser level).
    pub strength_threshold: f64,
    /// Degree of the Chebyshev smoother (mat-vecs per smoothing sweep).
    pub smoother_degree: usize,
    /// Coarsen until a level has at most this many equations; it is solved by Cholesky.
    pub max_coarse: usize,
    /// Largest number of levels (including the finest).
    pub max_levels: usize,
}

impl Default for AmgOptions {
    fn default() -> Self {
        AmgOptions {
            strength_threshold: 0.08,
            smoother_degree: 3,
            max_coarse: 2000,
            max_levels: 10,
        }
    }
}

/// Options of the preconditioned conjugate-gradient solver.
#[derive(Clone, Debug)]
pub struct IterativeOptions {
    /// Convergence: relative residual `|b - A x| / |b| <= tol`.
    pub tol: f64,
    /// Iterations allowed before the solve is reported as not converged.
    pub max_iterations: usize,
    /// Preconditioner (default: smoothed-aggregation AMG).
    pub preconditioner: Preconditioner,
    /// Parameters of the AMG hierarchy.
    pub amg: AmgOptions,
}

impl Default for IterativeOptions {
    fn default() -> Self {
        IterativeOptions {
            tol: 1e-8,
            max_iterations: 2000,
            preconditioner: Preconditioner::Amg,
            amg: AmgOptions::default(),
        }
    }
}

/// What an iterative solve did.
#[derive(Clone, Debug, Default)]
pub struct IterativeStats {
    /// Preconditioner used.
    pub preconditioner: Preconditioner,
    /// CG iterations.
    pub iterations: usize,
    /// Final relative residual `|b - A x| / |b|` (true residual).
    pub relative_residual: f64,
    /// Multigrid levels including the finest (1 for Jacobi).
    pub levels: usize,
    /// Equations on each level, finest first.
    pub level_equations: Vec<usize>,
    /// Operator complexity: stored entries of all level matrices over those of the finest.
    pub operator_complexity: f64,
    /// Building the preconditioner (for AMG: aggregation, prolongators, Galerkin products,
    /// coarse Cholesky).
    pub setup: Duration,
    /// The CG iterations.
    pub solve: Duration,
}

// ---------------------------------------------------------------------------------------
// Sparse matrix (CSR, both triangles stored)
// ---------------------------------------------------------------------------------------

/// Compressed sparse rows with 32-bit column indices (half the index memory of `usize`).
#[derive(Clone, Debug)]
pub(crate) struct Csr {
    nrows: usize,
    ncols: usize,
    ptr: Vec<usize>,
    col: Vec<u32>,
    val: Vec<f64>,
}

/// Rows per parallel task in the sparse products.
const ROW_CHUNK: usize = 256;

impl Csr {
    /// The full symmetric matrix from its upper triangle in CSC form (the storage of
    /// [`crate::SparseSystem`]; column `c`'s rows sorted, all `<= c`).
    pub(crate) fn from_upper_csc(
        n: usize,
        col_ptr: &[usize],
        row_idx: &[usize],
        values: &[f64],
    ) -> Result<Csr, FemError> {
        if n > u32::MAX as usize {
            return Err(FemError::InvalidInput(format!(
                "{n} equations: the iterative solver indexes at most {} (use the direct solver)",
                u32::MAX
            )));
        }
        if col_ptr.len() != n + 1 || values.len() != row_idx.len() || col_ptr[n] != values.len() {
            return Err(FemError::InvalidInput(
                "iterative solver: values do not match the sparsity pattern".into(),
            ));
        }
        let mut count = vec![0usize; n + 1];
        for c in 0..n {
            for &r in &row_idx[col_ptr[c]..col_ptr[c + 1]] {
                count[r] += 1;
                if r != c {
                    count[c] += 1;
                }
            }
        }
        let mut ptr = vec![0usize; n + 1];
        for i in 0..n {
            ptr[i + 1] = ptr[i] + count[i];
        }
        let nnz = ptr[n];
        let mut col = vec![0u32; nnz];
        let mut val = vec![0.0; nnz];
        let mut next = ptr.clone();
        // Columns in increasing order: row c first receives its entries left of the
        // diagonal (column c of the upper triangle), then the diagonal, then those right of
        // it from later columns, so every row comes out sorted.
        for c in 0..n {
            for k in col_ptr[c]..col_ptr[c + 1] {
                let r = row_idx[k];
                let v = values[k];
                if r != c {
                    col[next[c]] = r as u32;
                    val[next[c]] = v;
                    next[c] += 1;
                }
                col[next[r]] = c as u32;
                val[next[r]] = v;
                next[r] += 1;
            }
        }
        Ok(Csr {
            nrows: n,
            ncols: n,
            ptr,
            col,
            val,
        })
    }

    fn nnz(&self) -> usize {
        self.val.len()
    }

    fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let r = self.ptr[i]..self.ptr[i + 1];
        (&self.col[r.clone()], &self.val[r])
    }

    /// `y = A x`, rows in parallel.
    fn spmv(&self, x: &[f64], y: &mut [f64]) {
        y.par_iter_mut()
            .enumerate()
            .with_min_len(1024)
            .for_each(|(i, yi)| {
                let (c, v) = self.row(i);
                *yi = c.iter().zip(v).map(|(&j, &a)| a * x[j as usize]).sum();
            });
    }

    /// `r = b - A x`.
    fn residual(&self, b: &[f64], x: &[f64], r: &mut [f64]) {
        r.par_iter_mut()
            .enumerate()
            .with_min_len(1024)
            .for_each(|(i, ri)| {
                let (c, v) = self.row(i);
                let ax: f64 = c.iter().zip(v).map(|(&j, &a)| a * x[j as usize]).sum();
                *ri = b[i] - ax;
            });
    }

    fn diagonal(&self) -> Vec<f64> {
        (0..self.nrows)
            .into_par_iter()
            .map(|i| {
                let (c, v) = self.row(i);
                c.binary_search(&(i as u32)).map(|k| v[k]).unwrap_or(0.0)
            })
            .collect()
    }

    fn transpose(&self) -> Csr {
        let mut count = vec![0usize; self.ncols + 1];
        for &c in &self.col {
            count[c as usize + 1] += 1;
        }
        for i in 0..self.ncols {
            count[i + 1] += count[i];
        }
        let ptr = count.clone();
        let mut col = vec![0u32; self.nnz()];
        let mut val = vec![0.0; self.nnz()];
        let mut next = count;
        for i in 0..self.nrows {
            let (c, v) = self.row(i);
            for (&j, &a) in c.iter().zip(v) {
                let k = next[j as usize];
                col[k] = i as u32;
                val[k] = a;
                next[j as usize] += 1;
            }
        }
        Csr {
            nrows: self.ncols,
            ncols: self.nrows,
            ptr,
            col,
            val,
        }
    }

    /// Sparse product `self * b` (Gustavson's row-by-row algorithm), rows in parallel.
    fn matmul(&self, b: &Csr) -> Csr {
        let nchunks = self.nrows.div_ceil(ROW_CHUNK);
        type Part = (Vec<usize>, Vec<u32>, Vec<f64>);
        let parts: Vec<Part> = (0..nchunks)
            .into_par_iter()
            .map_init(
                || (vec![usize::MAX; b.ncols], vec![0usize; b.ncols]),
                |(mark, pos), ch| {
                    let mut lens = Vec::with_capacity(ROW_CHUNK);
                    let mut cols: Vec<u32> = Vec::new();
                    let mut vals: Vec<f64> = Vec::new();
                    let mut row: Vec<(u32, f64)> = Vec::new();
                    for i in ch * ROW_CHUNK..((ch + 1) * ROW_CHUNK).min(self.nrows) {
                        row.clear();
                        let (ca, va) = self.row(i);
                        for (&j, &a) in ca.iter().zip(va) {
                            let (cb, vb) = b.row(j as usize);
                            for (&c, &v) in cb.iter().zip(vb) {
                                let c = c as usize;
                                if mark[c] == i {
                                    row[pos[c]].1 += a * v;
                                } else {
                                    mark[c] = i;
                                    pos[c] = row.len();
                                    row.push((c as u32, a * v));
                                }
                            }
                        }
                        row.sort_unstable_by_key(|e| e.0);
                        lens.push(row.len());
                        cols.extend(row.iter().map(|e| e.0));
                        vals.extend(row.iter().map(|e| e.1));
                    }
                    (lens, cols, vals)
                },
            )
            .collect();
        let nnz = parts.iter().map(|p| p.1.len()).sum();
        let mut ptr = Vec::with_capacity(self.nrows + 1);
        ptr.push(0);
        let mut col = Vec::with_capacity(nnz);
        let mut val = Vec::with_capacity(nnz);
        for (lens, c, v) in parts {
            for l in lens {
                ptr.push(ptr.last().copied().unwrap_or(0) + l);
            }
            col.extend(c);
            val.extend(v);
        }
        Csr {
            nrows: self.nrows,
            ncols: b.ncols,
            ptr,
            col,
            val,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small vector helpers (parallel)
// ---------------------------------------------------------------------------------------

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.par_iter()
        .zip(b)
        .with_min_len(4096)
        .map(|(x, y)| x * y)
        .sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// A deterministic pseudo-random start vector in [-1, 1) (power iterations).
fn start_vector(n: usize) -> Vec<f64> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// Largest eigenvalue of `D^-1 A` (a lower estimate: Rayleigh quotient
/// `v^T A v / v^T D v` after `iters` power iterations).
fn spectral_radius(a: &Csr, dinv: &[f64], iters: usize) -> f64 {
    let n = a.nrows;
    let mut v = start_vector(n);
    let mut av = vec![0.0; n];
    let mut rho = 0.0;
    for _ in 0..iters {
        a.spmv(&v, &mut av);
        // Rayleigh quotient in the D inner product: v^T A v / v^T D v.
        let vav = dot(&v, &av);
        let vdv: f64 = v
            .par_iter()
            .zip(dinv)
            .map(|(x, di)| x * x / di)
            .sum::<f64>();
        if vdv > 0.0 {
            rho = vav / vdv;
        }
        // v <- D^-1 A v, normalised.
        v.par_iter_mut()
            .zip(&av)
            .zip(dinv)
            .for_each(|((vi, a), d)| *vi = a * d);
        let nv = norm(&v);
        if !(nv > 0.0 && nv.is_finite()) {
            break;
        }
        v.par_iter_mut().for_each(|x| *x /= nv);
    }
    rho
}

// ---------------------------------------------------------------------------------------
// Smoothed aggregation setup
// ---------------------------------------------------------------------------------------

/// Block (node or aggregate) structure of a level: block `b` owns the consecutive unknowns
/// `ptr[b]..ptr[b + 1]`.
struct Blocks {
    ptr: Vec<usize>,
    of: Vec<u32>,
}

impl Blocks {
    fn new(ptr: Vec<usize>) -> Blocks {
        let n = ptr.last().copied().unwrap_or(0);
        let mut of = vec![0u32; n];
        for b in 0..ptr.len() - 1 {
            for o in &mut of[ptr[b]..ptr[b + 1]] {
                *o = b as u32;
            }
        }
        Blocks { ptr, of }
    }

    fn len(&self) -> usize {
        self.ptr.len() - 1
    }
}

/// Strong block neighbours (with their strength `|A_ij| / sqrt(|A_ii| |A_jj|)`).
fn strong_graph(a: &Csr, blocks: &Blocks, theta: f64) -> Vec<Vec<(u32, f64)>> {
    let nb = blocks.len();
    // Squared Frobenius norms of the blocks of each block row.
    let rows: Vec<Vec<(u32, f64)>> = (0..nb)
        .into_par_iter()
        .map_init(
            || (vec![usize::MAX; nb], vec![0usize; nb]),
            |(mark, pos), bi| {
                let mut out: Vec<(u32, f64)> = Vec::new();
                for i in blocks.ptr[bi]..blocks.ptr[bi + 1] {
                    let (c, v) = a.row(i);
                    for (&j, &x) in c.iter().zip(v) {
                        let bj = blocks.of[j as usize] as usize;
                        if mark[bj] == bi {
                            out[pos[bj]].1 += x * x;
                        } else {
                            mark[bj] = bi;
                            pos[bj] = out.len();
                            out.push((bj as u32, x * x));
                        }
                    }
                }
                out
            },
        )
        .collect();
    let diag: Vec<f64> = rows
        .par_iter()
        .enumerate()
        .map(|(bi, r)| {
            r.iter()
                .find(|e| e.0 as usize == bi)
                .map_or(0.0, |e| e.1.sqrt())
        })
        .collect();
    rows.into_par_iter()
        .enumerate()
        .map(|(bi, r)| {
            let mut s: Vec<(u32, f64)> = r
                .into_iter()
                .filter(|&(bj, _)| bj as usize != bi)
                .filter_map(|(bj, sq)| {
                    let d = (diag[bi] * diag[bj as usize]).sqrt();
                    let strength = if d > 0.0 { sq.sqrt() / d } else { 0.0 };
                    (strength >= theta).then_some((bj, strength))
                })
                .collect();
            s.sort_unstable_by_key(|e| e.0);
            s
        })
        .collect()
}

/// Aggregation of Vanek, Mandel & Brezina (1996), phases 1-3. Returns the aggregate of
/// every block and the number of aggregates.
fn aggregate(strong: &[Vec<(u32, f64)>]) -> (Vec<u32>, usize) {
    const FREE: u32 = u32::MAX;
    let nb = strong.len();
    let mut agg = vec![FREE; nb];
    let mut na = 0u32;
    // Phase 1: a block whose strong neighbourhood is entirely free becomes an aggregate.
    for i in 0..nb {
        if agg[i] == FREE && strong[i].iter().all(|&(j, _)| agg[j as usize] == FREE) {
            agg[i] = na;
            for &(j, _) in &strong[i] {
                agg[j as usize] = na;
            }
            na += 1;
        }
    }
    // Phase 2: the rest join the aggregate of their strongest aggregated neighbour.
    let phase1 = agg.clone();
    for i in 0..nb {
        if agg[i] != FREE {
            continue;
        }
        let best = strong[i]
            .iter()
            .filter(|&&(j, _)| phase1[j as usize] != FREE)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some(&(j, _)) = best {
            agg[i] = phase1[j as usize];
        }
    }
    // Phase 3: what is still free forms aggregates with its free strong neighbours.
    for i in 0..nb {
        if agg[i] == FREE {
            agg[i] = na;
            for &(j, _) in &strong[i] {
                if agg[j as usize] == FREE {
                    agg[j as usize] = na;
                }
            }
            na += 1;
        }
    }
    (agg, na as usize)
}

/// Near-null-space dimension (rigid-body modes of 3D elasticity).
pub(crate) const NULL_DIM: usize = 6;

/// Tentative prolongator: per aggregate, the near-null space `B` restricted to its unknowns,
/// orthonormalised (`Q`); returns `P_tent` (`Q` blocks), the coarse blocks and `Q^T B`.
fn tentative(
    blocks: &Blocks,
    b: &[[f64; NULL_DIM]],
    agg: &[u32],
    na: usize,
) -> (Csr, Blocks, Vec<[f64; NULL_DIM]>) {
    // Members of each aggregate (counting sort).
    let mut start = vec![0usize; na + 1];
    for &g in agg {
        start[g as usize + 1] += 1;
    }
    for g in 0..na {
        start[g + 1] += start[g];
    }
    let mut members = vec![0usize; agg.len()];
    let mut next = start.clone();
    for (blk, &g) in agg.iter().enumerate() {
        members[next[g as usize]] = blk;
        next[g as usize] += 1;
    }
    // Per aggregate: its unknowns (rows), Q (row-major, rows x k) and Q^T B (k x 6).
    type Local = (Vec<usize>, usize, Vec<f64>, Vec<[f64; NULL_DIM]>);
    let locals: Vec<Local> = (0..na)
        .into_par_iter()
        .map(|g| {
            let rows: Vec<usize> = members[start[g]..start[g + 1]]
                .iter()
                .flat_map(|&blk| blocks.ptr[blk]..blocks.ptr[blk + 1])
                .collect();
            let m = rows.len();
            let mut q: Vec<Vec<f64>> = Vec::with_capacity(NULL_DIM);
            for j in 0..NULL_DIM {
                let mut v: Vec<f64> = rows.iter().map(|&r| b[r][j]).collect();
                let n0 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                if n0 == 0.0 {
                    continue;
                }
                // Modified Gram-Schmidt, twice ("twice is enough").
                for _ in 0..2 {
                    for qk in &q {
                        let p: f64 = qk.iter().zip(&v).map(|(a, b)| a * b).sum();
                        v.iter_mut().zip(qk).for_each(|(x, a)| *x -= p * a);
                    }
                }
                let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                if nv > 1e-8 * n0 {
                    v.iter_mut().for_each(|x| *x /= nv);
                    q.push(v);
                }
            }
            let k = q.len();
            let mut qrow = vec![0.0; m * k];
            for (c, qc) in q.iter().enumerate() {
                for (r, &x) in qc.iter().enumerate() {
                    qrow[r * k + c] = x;
                }
            }
            let bc: Vec<[f64; NULL_DIM]> = q
                .iter()
                .map(|qc| {
                    let mut out = [0.0; NULL_DIM];
                    for (j, o) in out.iter_mut().enumerate() {
                        *o = qc.iter().zip(&rows).map(|(a, &r)| a * b[r][j]).sum();
                    }
                    out
                })
                .collect();
            (rows, k, qrow, bc)
        })
        .collect();
    let n = b.len();
    let mut coarse_ptr = vec![0usize; na + 1];
    for (g, l) in locals.iter().enumerate() {
        coarse_ptr[g + 1] = coarse_ptr[g] + l.1;
    }
    let nc = coarse_ptr[na];
    // Row r of P_tent: the k entries of its aggregate.
    let mut row_len = vec![0usize; n];
    for l in &locals {
        for &r in &l.0 {
            row_len[r] = l.1;
        }
    }
    let mut ptr = vec![0usize; n + 1];
    for r in 0..n {
        ptr[r + 1] = ptr[r] + row_len[r];
    }
    let mut col = vec![0u32; ptr[n]];
    let mut val = vec![0.0; ptr[n]];
    let mut bc = Vec::with_capacity(nc);
    for (g, (rows, k, qrow, bcg)) in locals.into_iter().enumerate() {
        for (lr, &r) in rows.iter().enumerate() {
            for c in 0..k {
                col[ptr[r] + c] = (coarse_ptr[g] + c) as u32;
                val[ptr[r] + c] = qrow[lr * k + c];
            }
        }
        bc.extend(bcg);
    }
    (
        Csr {
            nrows: n,
            ncols: nc,
            ptr,
            col,
            val,
        },
        Blocks::new(coarse_ptr),
        bc,
    )
}

/// `P = P_tent - omega D^-1 (A P_tent)` (row patterns merged).
fn smooth_prolongator(a: &Csr, dinv: &[f64], omega: f64, pt: &Csr) -> Csr {
    let ap = a.matmul(pt);
    let rows: Vec<(Vec<u32>, Vec<f64>)> = (0..ap.nrows)
        .into_par_iter()
        .map(|i| {
            let (ca, va) = ap.row(i);
            let (ct, vt) = pt.row(i);
            let s = -omega * dinv[i];
            let mut c = Vec::with_capacity(ca.len() + ct.len());
            let mut v = Vec::with_capacity(ca.len() + ct.len());
            let (mut p, mut q) = (0, 0);
            while p < ca.len() || q < ct.len() {
                if q >= ct.len() || (p < ca.len() && ca[p] < ct[q]) {
                    c.push(ca[p]);
                    v.push(s * va[p]);
                    p += 1;
                } else if p >= ca.len() || ct[q] < ca[p] {
                    c.push(ct[q]);
                    v.push(vt[q]);
                    q += 1;
                } else {
                    c.push(ca[p]);
                    v.push(s * va[p] + vt[q]);
                    p += 1;
                    q += 1;
                }
            }
            (c, v)
        })
        .collect();
    let mut ptr = Vec::with_capacity(ap.nrows + 1);
    ptr.push(0);
    let mut col = Vec::new();
    let mut val = Vec::new();
    for (c, v) in rows {
        col.extend(c);
        val.extend(v);
        ptr.push(col.len());
    }
    Csr {
        nrows: ap.nrows,
        ncols: ap.ncols,
        ptr,
        col,
        val,
    }
}

/// Sparse Cholesky of a (small) symmetric matrix given in full CSR form.
struct CoarseSolver {
    symbolic: SymbolicCholesky<usize>,
    values: Vec<f64>,
}

impl CoarseSolver {
    fn new(a: &Csr) -> Result<CoarseSolver, FemError> {
        let n = a.nrows;
        // Upper CSC column c = the entries of CSR row c left of and on the diagonal.
        let mut col_ptr = vec![0usize];
        let mut row_idx = Vec::new();
        let mut vals = Vec::new();
        for c in 0..n {
            let (cols, v) = a.row(c);
            for (&r, &x) in cols.iter().zip(v) {
                if r as usize <= c {
                    row_idx.push(r as usize);
                    vals.push(x);
                }
            }
            col_ptr.push(row_idx.len());
        }
        let sym = SymbolicSparseColMat::<usize>::new_checked(n, n, col_ptr, None, row_idx);
        let symbolic = factorize_symbolic_cholesky(
            sym.as_ref(),
            Side::Upper,
            SymmetricOrdering::Amd,
            Default::default(),
        )
        .map_err(|e| FemError::Solver(format!("AMG coarse symbolic factorisation: {e:?}")))?;
        let m = SparseColMatRef::new(
            SymbolicSparseColMatRef::new_checked(n, n, sym.col_ptr(), None, sym.row_idx()),
            &vals,
        );
        let mut values = vec![0.0; symbolic.len_val()];
        let scratch = symbolic.factorize_numeric_llt_scratch::<f64>(Par::Seq, Default::default());
        let mut buf = MemBuffer::try_new(scratch)
            .map_err(|_| FemError::Solver("out of memory for the AMG coarse factor".into()))?;
        symbolic
            .factorize_numeric_llt::<f64>(
                &mut values,
                m,
                Side::Upper,
                Default::default(),
                Par::Seq,
                MemStack::new(&mut buf),
                Default::default(),
            )
            .map_err(|_| FemError::NotPositiveDefinite)?;
        Ok(CoarseSolver { symbolic, values })
    }

    fn solve(&self, b: &[f64], x: &mut [f64]) {
        let mut m = Mat::from_fn(b.len(), 1, |i, _| b[i]);
        let mut buf = MemBuffer::new(self.symbolic.solve_in_place_scratch::<f64>(1, Par::Seq));
        LltRef::<'_, usize, f64>::new(&self.symbolic, &self.values).solve_in_place_with_conj(
            Conj::No,
            m.as_mut(),
            Par::Seq,
            MemStack::new(&mut buf),
        );
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = m[(i, 0)];
        }
    }
}

/// One level of the hierarchy: its matrix, the smoother data and the transfer to the next
/// coarser level (absent on the coarsest).
struct Level {
    a: Csr,
    dinv: Vec<f64>,
    /// Upper end of the Chebyshev interval (about 1.1 rho(D^-1 A)).
    lambda_max: f64,
    p: Option<Csr>,
    r: Option<Csr>,
}

/// A smoothed-aggregation AMG hierarchy, applied as one V-cycle.
pub(crate) struct Amg {
    levels: Vec<Level>,
    coarse: CoarseSolver,
    degree: usize,
}

/// Inverse of a matrix diagonal; a non-positive entry means `A` is not positive definite.
fn inverse_diagonal(a: &Csr) -> Result<Vec<f64>, FemError> {
    let d = a.diagonal();
    if d.iter().any(|&x| !(x > 0.0 && x.is_finite())) {
        return Err(FemError::NotPositiveDefinite);
    }
    Ok(d.into_iter().map(|x| 1.0 / x).collect())
}

impl Amg {
    /// Builds the hierarchy for `a` with node blocks `block_ptr` (node `b` owns unknowns
    /// `block_ptr[b]..block_ptr[b + 1]`) and near-null space `b` (one row per unknown).
    pub(crate) fn new(
        a: Csr,
        block_ptr: Vec<usize>,
        b: Vec<[f64; NULL_DIM]>,
        opts: &AmgOptions,
    ) -> Result<Amg, FemError> {
        if block_ptr.last().copied() != Some(a.nrows) || b.len() != a.nrows {
            return Err(FemError::InvalidInput(
                "AMG: blocks or near-null space do not match the matrix".into(),
            ));
        }
        let mut levels = Vec::new();
        let mut a = a;
        let mut blocks = Blocks::new(block_ptr);
        let mut b = b;
        let mut theta = opts.strength_threshold;
        loop {
            let dinv = inverse_diagonal(&a)?;
            let rho = spectral_radius(&a, &dinv, 15);
            if !(rho > 0.0 && rho.is_finite()) {
                return Err(FemError::Solver(format!(
                    "AMG: spectral radius estimate {rho} of level {}",
                    levels.len()
                )));
            }
            let n = a.nrows;
            if n <= opts.max_coarse || levels.len() + 1 >= opts.max_levels.max(1) {
                levels.push(Level {
                    a,
                    dinv,
                    lambda_max: 1.1 * rho,
                    p: None,
                    r: None,
                });
                break;
            }
            let strong = strong_graph(&a, &blocks, theta);
            let (agg, na) = aggregate(&strong);
            drop(strong);
            let (pt, coarse_blocks, bc) = tentative(&blocks, &b, &agg, na);
            let nc = pt.ncols;
            // No useful coarsening left: solve this level directly.
            if nc == 0 || nc as f64 > 0.8 * n as f64 {
                levels.push(Level {
                    a,
                    dinv,
                    lambda_max: 1.1 * rho,
                    p: None,
                    r: None,
                });
                break;
            }
            let p = smooth_prolongator(&a, &dinv, 4.0 / 3.0 / rho, &pt);
            drop(pt);
            let r = p.transpose();
            let ac = r.matmul(&a.matmul(&p));
            levels.push(Level {
                a,
                dinv,
                lambda_max: 1.1 * rho,
                p: Some(p),
                r: Some(r),
            });
            a = ac;
            blocks = coarse_blocks;
            b = bc;
            theta *= 0.5;
        }
        let coarse = CoarseSolver::new(&levels[levels.len() - 1].a)?;
        Ok(Amg {
            levels,
            coarse,
            degree: opts.smoother_degree.max(1),
        })
    }

    /// Equations per level, finest first.
    pub(crate) fn level_equations(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.a.nrows).collect()
    }

    /// Stored entries of all level matrices over those of the finest.
    pub(crate) fn operator_complexity(&self) -> f64 {
        let total: usize = self.levels.iter().map(|l| l.a.nnz()).sum();
        total as f64 / self.levels[0].a.nnz().max(1) as f64
    }

    /// Chebyshev smoothing of `A x = b` in `D^-1 A` on `[lambda_max / 30, lambda_max]`
    /// (Saad, "Iterative methods for sparse linear systems", Alg. 12.1), starting from `x`.
    fn smooth(&self, lv: &Level, b: &[f64], x: &mut [f64], r: &mut [f64], d: &mut [f64]) {
        let upper = lv.lambda_max;
        let lower = upper / 30.0;
        let theta = 0.5 * (upper + lower);
        let delta = 0.5 * (upper - lower);
        let sigma = theta / delta;
        let mut rho_old = 1.0 / sigma;
        lv.a.residual(b, x, r);
        d.par_iter_mut()
            .zip(&*r)
            .zip(&lv.dinv)
            .for_each(|((di, ri), m)| *di = ri * m / theta);
        for k in 0..self.degree {
            x.par_iter_mut().zip(&*d).for_each(|(xi, di)| *xi += di);
            if k + 1 == self.degree {
                break;
            }
            lv.a.residual(b, x, r);
            let rho_new = 1.0 / (2.0 * sigma - rho_old);
            let c1 = rho_new * rho_old;
            let c2 = 2.0 * rho_new / delta;
            d.par_iter_mut()
                .zip(&*r)
                .zip(&lv.dinv)
                .for_each(|((di, ri), m)| *di = c1 * *di + c2 * ri * m);
            rho_old = rho_new;
        }
    }

    fn vcycle(&self, l: usize, b: &[f64], x: &mut [f64]) {
        let lv = &self.levels[l];
        let (Some(p), Some(rmat)) = (&lv.p, &lv.r) else {
            self.coarse.solve(b, x);
            return;
        };
        let n = lv.a.nrows;
        let mut r = vec![0.0; n];
        let mut d = vec![0.0; n];
        x.par_iter_mut().for_each(|v| *v = 0.0);
        self.smooth(lv, b, x, &mut r, &mut d);
        lv.a.residual(b, x, &mut r);
        let mut rc = vec![0.0; rmat.nrows];
        rmat.spmv(&r, &mut rc);
        let mut xc = vec![0.0; rmat.nrows];
        self.vcycle(l + 1, &rc, &mut xc);
        p.spmv(&xc, &mut d);
        x.par_iter_mut().zip(&d).for_each(|(xi, di)| *xi += di);
        self.smooth(lv, b, x, &mut r, &mut d);
    }

    /// `z = M^-1 r`: one V-cycle from zero.
    pub(crate) fn apply(&self, r: &[f64], z: &mut [f64]) {
        self.vcycle(0, r, z);
    }
}

// ---------------------------------------------------------------------------------------
// Conjugate gradients
// ---------------------------------------------------------------------------------------

/// Preconditioned conjugate gradients for the SPD `a` from `x = 0`. Returns the solution,
/// the iterations and the true relative residual, or [`FemError::NotConverged`].
fn pcg<M>(
    a: &Csr,
    b: &[f64],
    precond: M,
    tol: f64,
    max_iterations: usize,
) -> Result<(Vec<f64>, usize, f64), FemError>
where
    M: Fn(&[f64], &mut [f64]),
{
    let n = a.nrows;
    let bnorm = norm(b);
    let mut x = vec![0.0; n];
    if bnorm == 0.0 {
        return Ok((x, 0, 0.0));
    }
    let mut r = b.to_vec();
    let mut z = vec![0.0; n];
    let mut q = vec![0.0; n];
    precond(&r, &mut z);
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let mut rel = 1.0;
    for it in 1..=max_iterations {
        a.spmv(&p, &mut q);
        let pq = dot(&p, &q);
        if !(pq > 0.0 && pq.is_finite() && rz.is_finite()) {
            return Err(FemError::Solver(format!(
                "conjugate gradients broke down at iteration {it} (p^T K p = {pq:e}): the matrix or the preconditioner is not positive definite"
            )));
        }
        let alpha = rz / pq;
        x.par_iter_mut()
            .zip(&p)
            .for_each(|(xi, pi)| *xi += alpha * pi);
        r.par_iter_mut()
            .zip(&q)
            .for_each(|(ri, qi)| *ri -= alpha * qi);
        rel = norm(&r) / bnorm;
        let mut restart = false;
        if rel <= tol {
            // Confirm with the true residual (the recursive one drifts in round-off); if it
            // is not there yet, go on from the true residual with a fresh direction.
            a.residual(b, &x, &mut r);
            rel = norm(&r) / bnorm;
            if rel <= tol {
                return Ok((x, it, rel));
            }
            restart = true;
        }
        precond(&r, &mut z);
        let rz_new = dot(&r, &z);
        let beta = if restart { 0.0 } else { rz_new / rz };
        rz = rz_new;
        p.par_iter_mut()
            .zip(&z)
            .for_each(|(pi, zi)| *pi = zi + beta * *pi);
    }
    Err(FemError::NotConverged {
        iterations: max_iterations,
        residual: rel,
    })
}

/// Node blocks and near-null space of the finest level.
pub(crate) struct NearNullSpace {
    /// The unknowns of mesh node `b` are `block_ptr[b]..block_ptr[b + 1]`.
    pub(crate) block_ptr: Vec<usize>,
    /// The rigid-body modes, one row per unknown.
    pub(crate) modes: Vec<[f64; NULL_DIM]>,
}

/// Solves `K x = rhs` by PCG, K given by its upper triangle in CSC form
/// (`col_ptr`, `row_idx`, `values`, as stored by [`crate::SparseSystem`]).
pub(crate) fn solve_upper_csc(
    upper: (&[usize], &[usize], &[f64]),
    rhs: &[f64],
    near_null: NearNullSpace,
    opts: &IterativeOptions,
) -> Result<(Vec<f64>, IterativeStats), FemError> {
    let (col_ptr, row_idx, values) = upper;
    let n = rhs.len();
    if col_ptr.len() != n + 1 {
        return Err(FemError::InvalidInput(format!(
            "right-hand side has {n} entries for {} equations",
            col_ptr.len().saturating_sub(1)
        )));
    }
    if !(opts.tol > 0.0 && opts.tol.is_finite()) {
        return Err(FemError::InvalidInput(format!(
            "iterative solver tolerance {} must be positive",
            opts.tol
        )));
    }
    let t = Instant::now();
    let a = Csr::from_upper_csc(n, col_ptr, row_idx, values)?;
    let mut stats = IterativeStats {
        preconditioner: opts.preconditioner,
        ..Default::default()
    };
    let result = match opts.preconditioner {
        Preconditioner::Jacobi => {
            let dinv = inverse_diagonal(&a)?;
            stats.levels = 1;
            stats.level_equations = vec![n];
            stats.operator_complexity = 1.0;
            stats.setup = t.elapsed();
            let t = Instant::now();
            let res = pcg(
                &a,
                rhs,
                |r: &[f64], z: &mut [f64]| {
                    z.par_iter_mut()
                        .zip(r)
                        .zip(&dinv)
                        .for_each(|((zi, ri), d)| *zi = ri * d);
                },
                opts.tol,
                opts.max_iterations,
            );
            stats.solve = t.elapsed();
            res
        }
        Preconditioner::Amg => {
            let amg = Amg::new(a, near_null.block_ptr, near_null.modes, &opts.amg)?;
            let a = &amg.levels[0].a;
            stats.level_equations = amg.level_equations();
            stats.levels = stats.level_equations.len();
            stats.operator_complexity = amg.operator_complexity();
            stats.setup = t.elapsed();
            let t = Instant::now();
            let res = pcg(
                a,
                rhs,
                |r: &[f64], z: &mut [f64]| amg.apply(r, z),
                opts.tol,
                opts.max_iterations,
            );
            stats.solve = t.elapsed();
            res
        }
    };
    let (x, iterations, rel) = result?;
    stats.iterations = iterations;
    stats.relative_residual = rel;
    Ok((x, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bc::{Constraints, Loads};
    use crate::material::LinearElastic;
    use crate::mesh::{box_mesh, Mesh, Order};
    use crate::solver::{solve_linear_static, solve_linear_static_with, LinearMethod};
    use crate::{SolverOptions, SparseSystem};

    /// Tet10 block 20 x 10 x 10 mm with `2c x c x c` cells, clamped at x = 0, with an
    /// oblique traction on x = 20 (bending, shear and tension together).
    fn block(c: usize) -> (Mesh, LinearElastic, Constraints, Loads) {
        let m = box_mesh([20.0, 10.0, 10.0], [2 * c, c, c], Order::Quadratic).unwrap();
        let mat = LinearElastic::uniform(m.num_elements(), 500.0, 0.3).unwrap();
        let mut bc = Constraints::new();
        bc.fix(m.node_set("xmin").unwrap(), [true; 3]);
        let mut loads = Loads::new();
        loads.traction(m.face_set("xmax").unwrap(), [0.5, 0.2, -1.0]);
        (m, mat, bc, loads)
    }

    fn cg_options(preconditioner: Preconditioner, max_coarse: usize) -> SolverOptions {
        SolverOptions {
            method: LinearMethod::CgAmg,
            iterative: IterativeOptions {
                preconditioner,
                amg: AmgOptions {
                    max_coarse,
                    ..Default::default()
                },
                max_iterations: 20_000,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// CG iterations of a solve of `block(c)`.
    fn iterations(c: usize, preconditioner: Preconditioner) -> (usize, IterativeStats) {
        let (m, mat, bc, loads) = block(c);
        let s = solve_linear_static_with(&m, &mat, &bc, &loads, &cg_options(preconditioner, 300))
            .unwrap();
        let st = s.iterative.unwrap();
        (st.iterations, st)
    }

    #[test]
    fn csr_from_upper_csc_and_products_match_dense() {
        // 3x3 SPD matrix [[4,1,0],[1,3,2],[0,2,5]], upper triangle in CSC.
        let a = Csr::from_upper_csc(
            3,
            &[0, 1, 3, 5],
            &[0, 0, 1, 1, 2],
            &[4.0, 1.0, 3.0, 2.0, 5.0],
        )
        .unwrap();
        let dense = [[4.0, 1.0, 0.0], [1.0, 3.0, 2.0], [0.0, 2.0, 5.0]];
        let x = [1.0, -2.0, 0.5];
        let mut y = [0.0; 3];
        a.spmv(&x, &mut y);
        for i in 0..3 {
            let e: f64 = (0..3).map(|j| dense[i][j] * x[j]).sum();
            assert!((y[i] - e).abs() < 1e-14);
        }
        assert_eq!(a.diagonal(), vec![4.0, 3.0, 5.0]);
        let a2 = a.matmul(&a.transpose());
        for i in 0..3 {
            let (c, v) = a2.row(i);
            assert!(c.windows(2).all(|w| w[0] < w[1]));
            for (&j, &val) in c.iter().zip(v) {
                let e: f64 = (0..3).map(|k| dense[i][k] * dense[j as usize][k]).sum();
                assert!((val - e).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn cg_amg_equals_the_direct_solution() {
        let (m, mat, bc, loads) = block(4);
        let direct = solve_linear_static(&m, &mat, &bc, &loads).unwrap();
        let opts = SolverOptions {
            method: LinearMethod::CgAmg,
            iterative: IterativeOptions {
                tol: 1e-10,
                amg: AmgOptions {
                    max_coarse: 300,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let cg = solve_linear_static_with(&m, &mat, &bc, &loads, &opts).unwrap();
        let st = cg.iterative.as_ref().unwrap();
        println!(
            "{} equations: {} iterations, levels {:?}, operator complexity {:.2}",
            cg.num_equations, st.iterations, st.level_equations, st.operator_complexity
        );
        assert!(cg.ok && st.relative_residual <= 1e-10);
        assert!(st.levels >= 2, "a real hierarchy: {:?}", st.level_equations);
        assert_eq!(cg.factor_nnz, 0);
        let (mut num, mut den) = (0.0, 0.0);
        for (a, b) in cg.displacements.iter().zip(&direct.displacements) {
            for d in 0..3 {
                num += (a[d] - b[d]).powi(2);
                den += b[d] * b[d];
            }
        }
        let rel = (num / den).sqrt();
        assert!(den > 0.0 && rel < 1e-7, "rel. L2 difference {rel:e}");
        // Reactions come from the same displacements: equal too.
        let r_cg: f64 = cg.reactions.iter().map(|r| r[2]).sum();
        let r_d: f64 = direct.reactions.iter().map(|r| r[2]).sum();
        assert!((r_cg - r_d).abs() <= 1e-6 * r_d.abs());
    }

    #[test]
    fn amg_preconditions_and_scales_with_the_mesh() {
        let (amg_coarse, st) = iterations(3, Preconditioner::Amg);
        let (amg_fine, st_fine) = iterations(6, Preconditioner::Amg);
        let (jac_coarse, _) = iterations(3, Preconditioner::Jacobi);
        let (jac_fine, _) = iterations(6, Preconditioner::Jacobi);
        println!(
            "AMG {amg_coarse} -> {amg_fine} iterations (levels {:?} -> {:?}, op. complexity {:.2} -> {:.2}); Jacobi {jac_coarse} -> {jac_fine}",
            st.level_equations,
            st_fine.level_equations,
            st.operator_complexity,
            st_fine.operator_complexity
        );
        // Far fewer iterations than diagonal scaling.
        assert!(
            amg_fine * 3 < jac_fine,
            "AMG {amg_fine} vs Jacobi {jac_fine}"
        );
        assert!(amg_coarse * 3 < jac_coarse);
        // Halving h: the iterations of Jacobi-PCG grow like 1/h (sqrt of the condition
        // number); those of AMG-PCG hardly grow. The bound fails for Jacobi.
        assert!(st_fine.levels >= 3, "{:?}", st_fine.level_equations);
        assert!(
            amg_fine as f64 <= 1.5 * amg_coarse as f64,
            "AMG {amg_coarse} -> {amg_fine}"
        );
        assert!(
            jac_fine as f64 > 1.5 * jac_coarse as f64,
            "Jacobi {jac_coarse} -> {jac_fine}"
        );
    }

    #[test]
    fn a_non_converged_solve_is_an_error() {
        let (m, mat, bc, loads) = block(2);
        let mut opts = cg_options(Preconditioner::Amg, 100);
        opts.iterative.max_iterations = 2;
        let err = solve_linear_static_with(&m, &mat, &bc, &loads, &opts).unwrap_err();
        assert!(
            matches!(err, FemError::NotConverged { iterations: 2, .. }),
            "{err}"
        );
        // The same with Jacobi.
        opts.iterative.preconditioner = Preconditioner::Jacobi;
        let err = solve_linear_static_with(&m, &mat, &bc, &loads, &opts).unwrap_err();
        assert!(matches!(err, FemError::NotConverged { .. }), "{err}");
    }

    #[test]
    fn systems_refuse_the_other_method() {
        let (m, mat, bc, loads) = block(1);
        let f = loads.assemble(&m).unwrap();
        let it =
            SparseSystem::with_options(&m, &bc, &cg_options(Preconditioner::Amg, 100)).unwrap();
        let asm = it.assemble_linear_elastic(&m, &mat, &bc, &f).unwrap();
        assert!(it.factorize(&asm.values).is_err());
        assert!(it
            .solve_iterative(&asm.values, &asm.rhs, &IterativeOptions::default())
            .is_ok());
        let direct = SparseSystem::new(&m, &bc).unwrap();
        assert!(direct
            .solve_iterative(&asm.values, &asm.rhs, &IterativeOptions::default())
            .is_err());
        let bad = IterativeOptions {
            tol: 0.0,
            ..Default::default()
        };
        assert!(it.solve_iterative(&asm.values, &asm.rhs, &bad).is_err());
    }

    #[test]
    fn method_names_round_trip() {
        for m in [LinearMethod::Direct, LinearMethod::CgAmg] {
            assert_eq!(m.name().parse::<LinearMethod>().unwrap(), m);
        }
        assert!("gmres".parse::<LinearMethod>().is_err());
    }
}
