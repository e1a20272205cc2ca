//! Sparse solve of the Newton tangent, choosing per factorisation the cheapest method the
//! matrix allows:
//!
//! * **Cholesky** (`LL^T`, falling back to `LDL^T` when not positive definite) when the
//!   tangent is symmetric to round-off;
//! * **symmetric + low-rank correction** when the non-symmetric part `N = (K - K^T)/2` lives
//!   on a few equations `J` (the rotation DOFs of rigid bodies carrying a net moment, whose
//!   geometric term `skew(f) skew(r)` is non-symmetric): `K = S + U C U^T` with
//!   `S = (K + K^T)/2`, `U = I[:, J]`, `C = N_JJ`, solved exactly by the Woodbury identity
//!   `K^-1 = S^-1 - S^-1 U (I + C U^T S^-1 U)^-1 C U^T S^-1`;
//! * **LU** (faer, COLAMD, partial pivoting) otherwise, and whenever a faster method fails.
//!
//! The symmetric factorisations use a METIS nested-dissection ordering of the pattern of
//! `K + K^T`. faer's sparse LU orders columns by COLAMD and bounds its fill by the pattern of
//! `K^T K`: the rows of a rigid body's DOFs couple to every node tied next to it, so `K^T K`
//! has dense blocks and the LU factor fills in far more than the symmetric one.
//!
//! The pattern (CSC of `K + K^T`, the slot of every triplet), the ordering and the symbolic
//! factorisations are computed once and reused while the triplet sequence fits the pattern.

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::perm::PermRef;
use faer::sparse::linalg::cholesky::{
    factorize_symbolic_cholesky, LdltRef, LltRef, SymbolicCholesky, SymmetricOrdering,
};
use faer::sparse::linalg::lu::{factorize_symbolic_lu, LuRef, NumericLu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{Conj, Mat, MatMut, Par, Side};
use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::solver::metis_node_nd;

/// Entries whose mirror differs by more than this, relative to the geometric mean of the two
/// diagonals, count as non-symmetric. Below it the difference is round-off of the element
/// and triplet sums (and is in any case corrected by the refinement step in
/// [`LinSolver::solve`]).
const SYM_TOL: f64 = 1e-12;
/// Largest non-symmetric support handled by the low-rank correction: its cost is one solve
/// with `|J|` right-hand sides per factorisation, so it pays only while `|J|` is small.
const LOW_RANK_MAX: usize = 96;
/// A solve whose residual exceeds this (relative to the right-hand side) is refined once.
const REFINE_TOL: f64 = 1e-12;
/// A solve whose residual still exceeds this is refused: the tangent is (nearly) singular.
const SINGULAR_TOL: f64 = 1e-6;

/// How a tangent was factorised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// Symmetric positive definite: `LL^T`.
    Cholesky,
    /// Symmetric, not positive definite: `LDL^T` without pivoting.
    Ldlt,
    /// Non-symmetric on a few equations: symmetric part plus a Woodbury correction.
    LowRank,
    /// General sparse LU with partial pivoting.
    Lu,
}

/// Factorisations done, by method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub cholesky: usize,
    pub ldlt: usize,
    pub low_rank: usize,
    pub lu: usize,
    /// Full symbolic analyses (ordering and symbolic factorisation).
    pub analyses: usize,
}

impl From<Counts> for super::Factorizations {
    fn from(c: Counts) -> Self {
        super::Factorizations {
            cholesky: c.cholesky,
            ldlt: c.ldlt,
            low_rank: c.low_rank,
            lu: c.lu,
            analyses: c.analyses,
        }
    }
}

/// Why a linear solve failed.
pub(crate) enum LinFail {
    Singular(String),
    Other(String),
}

/// The pattern of `K + K^T` with the diagonal, its METIS-ordered symbolic Cholesky and the
/// position of every triplet in it.
struct Pattern {
    n: usize,
    /// Full (both triangles) CSC pattern, rows sorted in each column.
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    /// Slot of the mirrored entry `(j, i)` of each slot `(i, j)`.
    mirror: Vec<usize>,
    /// Slot of the diagonal entry of each column.
    diag: Vec<usize>,
    /// Slot of each triplet.
    slot: Vec<u32>,
    /// Upper triangle (`row <= col`) CSC and the full slot of each of its entries.
    up_col_ptr: Vec<usize>,
    up_row_idx: Vec<usize>,
    up_src: Vec<usize>,
    chol: SymbolicCholesky<usize>,
    /// Scratch for the symmetric factorisations and single solves, allocated once (faer's
    /// convenience API allocates per call: page faults and memmove showed in profiles).
    chol_buf: MemBuffer,
    /// Scratch for solves with the `|J|` right-hand sides of the low-rank correction and the
    /// number of columns it holds, sized on first use.
    rank_buf: Option<(usize, MemBuffer)>,
    /// Symbolic LU of the full pattern and its scratch, built on first use.
    lu: Option<(SymbolicLu<usize>, MemBuffer)>,
    /// Parallelism of the factorisations and solves.
    par: Par,
}

/// The Woodbury correction of the low-rank method.
struct LowRank {
    /// Non-symmetric equations `J`.
    j: Vec<usize>,
    /// `C = N_JJ` (`|J| x |J|`).
    c: DMatrix<f64>,
    /// `Z = S^-1 U` (`n x |J|`).
    z: Mat<f64>,
    /// LU of `I + C Z_J`.
    m: nalgebra::LU<f64, nalgebra::Dyn, nalgebra::Dyn>,
    /// How `S` was factorised.
    sym_method: Method,
}

/// Sparse solver of the tangent with cached pattern, ordering, symbolic factorisations and
/// numeric storage.
#[derive(Default)]
pub(crate) struct LinSolver {
    /// Hashes of the blocks of the triplet index sequence the slots were computed for
    /// (storing the sequence would double the memory of the assembly on large models).
    key: Vec<u64>,
    pat: Option<Pattern>,
    /// Summed values of the last matrix in the full pattern.
    a: Vec<f64>,
    /// Values of the factorised symmetric matrix (upper triangle).
    up: Vec<f64>,
    /// Cholesky / LDL^T factor values.
    l: Vec<f64>,
    lu: NumericLu<usize, f64>,
    low_rank: Option<LowRank>,
    method: Option<Method>,
    /// Never use the symmetric methods (for comparisons and as a safety switch).
    pub force_lu: bool,
    /// Distinct entries of the last triplet sequence (stored entries of the tangent).
    pub nnz: usize,
    /// Factorisations by method.
    pub counts: Counts,
}

/// Parallelism of the factorisations and solves for a Cholesky factor with `nnz_l` values:
/// sequential below a few million, where the supernodes are too small to repay the
/// threading (measured on the 7866-equation spine twin: 30 ms sequential vs 44 ms on two
/// rayon threads per `LL^T`), rayon with all its threads above.
fn par_for(nnz_l: usize) -> Par {
    if nnz_l < 4_000_000 {
        Par::Seq
    } else {
        Par::rayon(0)
    }
}

impl LinSolver {
    /// True when the next call must (re)compute the slots of the triplets.
    pub fn needs_symbolic(&self, n: usize, idx: &[(u32, u32)]) -> bool {
        self.pat.as_ref().is_none_or(|p| p.n != n) || self.key != pattern_key(idx)
    }

    /// Positions of the triplets `idx` (duplicates are summed). Keeps the ordering and the
    /// symbolic factorisations when every triplet fits the current pattern (a contact
    /// point opening or closing changes the triplet sequence, rarely the pattern), and
    /// the slots of every block of triplets whose hash did not change (contact triplets
    /// come last, after the unchanged ones of the solids); otherwise analyses the new
    /// pattern.
    pub fn analyse(&mut self, n: usize, idx: &[(u32, u32)]) -> Result<(), LinFail> {
        let key = pattern_key(idx);
        if let Some(p) = self.pat.as_mut().filter(|p| p.n == n) {
            let (old_key, old_slot) = (&self.key, &p.slot);
            let (col_ptr, row_idx) = (&p.col_ptr, &p.row_idx);
            let mut slot = vec![0u32; idx.len()];
            let fits = slot
                .par_chunks_mut(KEY_BLOCK)
                .zip(idx.par_chunks(KEY_BLOCK))
                .enumerate()
                .all(|(b, (out, tri))| {
                    if old_key.get(b) == Some(&key[b]) {
                        // Same hash, hence same length: the block is unchanged.
                        out.copy_from_slice(&old_slot[b * KEY_BLOCK..b * KEY_BLOCK + out.len()]);
                        return true;
                    }
                    tri.iter().zip(out).all(|(&(r, c), o)| {
                        slot_of(col_ptr, row_idx, r, c).map(|s| *o = s).is_some()
                    })
                });
            if fits {
                self.nnz = distinct(&slot, p.row_idx.len());
                p.slot = slot;
                self.key = key;
                return Ok(());
            }
        }
        self.pat = None;
        self.method = None;
        self.low_rank = None;
        let pat = Pattern::new(n, idx)?;
        self.nnz = distinct(&pat.slot, pat.row_idx.len());
        self.a = vec![0.0; pat.row_idx.len()];
        self.up = vec![0.0; pat.up_row_idx.len()];
        self.l = vec![0.0; pat.chol.len_val()];
        self.lu = NumericLu::new();
        self.pat = Some(pat);
        self.key = key;
        self.counts.analyses += 1;
        Ok(())
    }

    /// Numeric factorisation of the matrix with the analysed triplets and values `vals`.
    pub fn factor(&mut self, vals: &[f64]) -> Result<Method, LinFail> {
        let pat = self
            .pat
            .as_ref()
            .ok_or_else(|| LinFail::Other("no symbolic factorisation".into()))?;
        if vals.len() != pat.slot.len() {
            return Err(LinFail::Other(format!(
                "{} values for {} triplets",
                vals.len(),
                pat.slot.len()
            )));
        }
        self.a.fill(0.0);
        for (&s, &v) in pat.slot.iter().zip(vals) {
            self.a[s as usize] += v;
        }
        self.method = None;
        self.low_rank = None;
        if !self.force_lu {
            let j = nonsymmetric_equations(pat, &self.a);
            let m = if j.is_empty() {
                self.factor_symmetric()
            } else if j.len() <= LOW_RANK_MAX && 4 * j.len() <= pat.n {
                self.factor_low_rank(j)
            } else {
                None
            };
            if let Some(m) = m {
                self.method = Some(m);
                self.count(m);
                return Ok(m);
            }
        }
        self.factor_lu()?;
        Ok(Method::Lu)
    }

    fn count(&mut self, m: Method) {
        let c = &mut self.counts;
        match m {
            Method::Cholesky => c.cholesky += 1,
            Method::Ldlt => c.ldlt += 1,
            Method::LowRank => c.low_rank += 1,
            Method::Lu => c.lu += 1,
        }
    }

    /// `LL^T`, else `LDL^T`, of the symmetric part (its upper triangle from `a`).
    fn factor_symmetric(&mut self) -> Option<Method> {
        let pat = self.pat.as_mut()?;
        for (u, &s) in self.up.iter_mut().zip(&pat.up_src) {
            *u = 0.5 * (self.a[s] + self.a[pat.mirror[s]]);
        }
        let n = pat.n;
        let sym =
            SymbolicSparseColMatRef::new_checked(n, n, &pat.up_col_ptr, None, &pat.up_row_idx);
        let mat = SparseColMatRef::new(sym, &self.up);
        let stack = MemStack::new(&mut pat.chol_buf);
        let llt = pat.chol.factorize_numeric_llt::<f64>(
            &mut self.l,
            mat,
            Side::Upper,
            Default::default(),
            pat.par,
            stack,
            Default::default(),
        );
        if llt.is_ok() {
            return Some(Method::Cholesky);
        }
        // Not positive definite (a compressed or buckling-prone state): LDL^T without
        // pivoting; an unstable one is caught by the residual check of the solve.
        let stack = MemStack::new(&mut pat.chol_buf);
        pat.chol
            .factorize_numeric_ldlt::<f64>(
                &mut self.l,
                mat,
                Side::Upper,
                Default::default(),
                pat.par,
                stack,
                Default::default(),
            )
            .ok()
            .map(|_| Method::Ldlt)
    }

    /// Factorises `S` and builds the Woodbury correction for the non-symmetric equations
    /// `j`; `None` when `S` or the capacitance matrix cannot be factorised.
    fn factor_low_rank(&mut self, j: Vec<usize>) -> Option<Method> {
        let sym_method = self.factor_symmetric()?;
        let pat = self.pat.as_mut()?;
        let (n, m) = (pat.n, j.len());
        let mut pos = vec![usize::MAX; n];
        for (k, &e) in j.iter().enumerate() {
            pos[e] = k;
        }
        // C = N_JJ, N = (K - K^T)/2.
        let mut c = DMatrix::<f64>::zeros(m, m);
        for (b, &col) in j.iter().enumerate() {
            for s in pat.col_ptr[col]..pat.col_ptr[col + 1] {
                let a = pos[pat.row_idx[s]];
                if a != usize::MAX {
                    c[(a, b)] = 0.5 * (self.a[s] - self.a[pat.mirror[s]]);
                }
            }
        }
        let mut z = Mat::<f64>::zeros(n, m);
        for (b, &e) in j.iter().enumerate() {
            z[(e, b)] = 1.0;
        }
        if pat.rank_buf.as_ref().is_none_or(|(k, _)| *k < m) {
            let req = pat.chol.solve_in_place_scratch::<f64>(m, pat.par);
            pat.rank_buf = Some((m, MemBuffer::try_new(req).ok()?));
        }
        sym_solve(pat, &self.l, sym_method, z.as_mut());
        let w = DMatrix::from_fn(m, m, |a, b| z[(j[a], b)]);
        let lu = (DMatrix::identity(m, m) + &c * w).lu();
        if !lu.is_invertible() {
            return None;
        }
        self.low_rank = Some(LowRank {
            j,
            c,
            z,
            m: lu,
            sym_method,
        });
        Some(Method::LowRank)
    }

    /// Sparse LU of the full matrix `a`.
    fn factor_lu(&mut self) -> Result<(), LinFail> {
        let pat = self
            .pat
            .as_mut()
            .ok_or_else(|| LinFail::Other("no symbolic factorisation".into()))?;
        let n = pat.n;
        let sym = SymbolicSparseColMatRef::new_checked(n, n, &pat.col_ptr, None, &pat.row_idx);
        if pat.lu.is_none() {
            let slu = factorize_symbolic_lu(sym, Default::default())
                .map_err(|e| LinFail::Other(format!("symbolic LU: {e:?}")))?;
            let req = StackReq::any_of(&[
                slu.factorize_numeric_lu_scratch::<f64>(pat.par, Default::default()),
                slu.solve_in_place_scratch::<f64>(1, pat.par),
            ]);
            let buf = MemBuffer::try_new(req)
                .map_err(|_| LinFail::Other("out of memory for the LU scratch".into()))?;
            pat.lu = Some((slu, buf));
        }
        let (slu, buf) = pat.lu.as_mut().expect("built above");
        slu.factorize_numeric_lu(
            &mut self.lu,
            SparseColMatRef::new(sym, &self.a),
            pat.par,
            MemStack::new(buf),
            Default::default(),
        )
        .map_err(|e| LinFail::Singular(format!("the LU factorisation failed ({e:?})")))?;
        self.method = Some(Method::Lu);
        self.count(Method::Lu);
        Ok(())
    }

    /// Applies the current factorisation to `x` in place.
    fn apply(&mut self, x: &mut [f64]) -> Result<(), LinFail> {
        let pat = self
            .pat
            .as_mut()
            .ok_or_else(|| LinFail::Other("no symbolic factorisation".into()))?;
        let n = pat.n;
        let mut b = MatMut::from_column_major_slice_mut(x, n, 1);
        match self.method {
            Some(m @ (Method::Cholesky | Method::Ldlt)) => sym_solve(pat, &self.l, m, b),
            Some(Method::LowRank) => {
                let lr = self
                    .low_rank
                    .as_ref()
                    .ok_or_else(|| LinFail::Other("no low-rank correction".into()))?;
                sym_solve(pat, &self.l, lr.sym_method, b.as_mut());
                let t = &lr.c * nalgebra::DVector::from_fn(lr.j.len(), |a, _| b[(lr.j[a], 0)]);
                let s = lr.m.solve(&t).ok_or_else(|| {
                    LinFail::Singular("the low-rank correction is singular".into())
                })?;
                for (k, sk) in s.iter().enumerate() {
                    for i in 0..n {
                        b[(i, 0)] -= lr.z[(i, k)] * sk;
                    }
                }
            }
            Some(Method::Lu) => {
                let (slu, buf) = pat
                    .lu
                    .as_mut()
                    .ok_or_else(|| LinFail::Other("no symbolic LU".into()))?;
                LuRef::new_unchecked(slu, &self.lu).solve_in_place_with_conj(
                    Conj::No,
                    b,
                    pat.par,
                    MemStack::new(buf),
                );
            }
            None => return Err(LinFail::Other("no numeric factorisation".into())),
        }
        Ok(())
    }

    /// Solves `K x = rhs` with the current factorisation and checks the residual against
    /// the assembled matrix: a singular or nearly singular tangent shows as a poor one. A
    /// symmetric or low-rank solve that misses is refined once, then redone by LU before
    /// the tangent is declared singular.
    pub fn solve(&mut self, rhs: &[f64]) -> Result<Vec<f64>, LinFail> {
        let mut x = rhs.to_vec();
        self.apply(&mut x)?;
        let rn = norm(rhs).max(f64::MIN_POSITIVE);
        let mut res = self.residual(&x, rhs);
        if norm(&res) > REFINE_TOL * rn && self.method != Some(Method::Lu) && finite(&x) {
            self.apply(&mut res)?;
            x.iter_mut().zip(&res).for_each(|(a, d)| *a += d);
            res = self.residual(&x, rhs);
        }
        if !(finite(&x) && norm(&res) <= SINGULAR_TOL * rn) && self.method != Some(Method::Lu) {
            self.factor_lu()?;
            x.copy_from_slice(rhs);
            self.apply(&mut x)?;
            res = self.residual(&x, rhs);
        }
        if !finite(&x) {
            return Err(LinFail::Singular("the solution is not finite".into()));
        }
        let en = norm(&res);
        if en > SINGULAR_TOL * rn {
            return Err(LinFail::Singular(format!(
                "the linear solve residual is {:.1e} of the right-hand side",
                en / rn
            )));
        }
        Ok(x)
    }

    /// `rhs - A x` with the assembled matrix.
    fn residual(&self, x: &[f64], rhs: &[f64]) -> Vec<f64> {
        let mut r = rhs.to_vec();
        if let Some(p) = &self.pat {
            for (c, &xc) in x.iter().enumerate().take(p.n) {
                for s in p.col_ptr[c]..p.col_ptr[c + 1] {
                    r[p.row_idx[s]] -= self.a[s] * xc;
                }
            }
        }
        r
    }
}

impl Pattern {
    /// Pattern of `K + K^T` plus the diagonal for the triplets `idx`, the METIS ordering and
    /// the symbolic Cholesky factorisation.
    fn new(n: usize, idx: &[(u32, u32)]) -> Result<Pattern, LinFail> {
        if n == 0 {
            return Err(LinFail::Other("no equations".into()));
        }
        if idx.iter().any(|&(r, c)| r as usize >= n || c as usize >= n) {
            return Err(LinFail::Other("a triplet is outside the matrix".into()));
        }
        // Column-major keys of the distinct entries, then with their mirrors and the
        // diagonal (deduplicating first keeps the sort of the mirrored set small).
        let key = |r: usize, c: usize| ((c as u64) << 32) | r as u64;
        let mut keys: Vec<u64> = idx
            .par_iter()
            .map(|&(r, c)| key(r as usize, c as usize))
            .collect();
        keys.par_sort_unstable();
        keys.dedup();
        // Swapping the halves of a key mirrors its entry.
        let mirrored: Vec<u64> = keys.iter().map(|&k| k.rotate_left(32)).collect();
        keys.extend(mirrored);
        keys.extend((0..n).map(|i| key(i, i)));
        keys.par_sort_unstable();
        keys.dedup();
        let mut col_ptr = vec![0usize; n + 1];
        let mut row_idx = Vec::with_capacity(keys.len());
        for &k in &keys {
            col_ptr[(k >> 32) as usize + 1] += 1;
            row_idx.push((k & 0xffff_ffff) as usize);
        }
        drop(keys);
        for c in 0..n {
            col_ptr[c + 1] += col_ptr[c];
        }
        let find = |r: usize, c: usize| -> usize {
            let range = col_ptr[c]..col_ptr[c + 1];
            col_ptr[c]
                + row_idx[range]
                    .binary_search(&r)
                    .expect("the pattern is symmetric")
        };
        let mut mirror = vec![0usize; row_idx.len()];
        let mut diag = vec![0usize; n];
        let (mut up_col_ptr, mut up_row_idx, mut up_src) = (vec![0usize], Vec::new(), Vec::new());
        for c in 0..n {
            for s in col_ptr[c]..col_ptr[c + 1] {
                let r = row_idx[s];
                mirror[s] = find(c, r);
                if r == c {
                    diag[c] = s;
                }
                if r <= c {
                    up_row_idx.push(r);
                    up_src.push(s);
                }
            }
            up_col_ptr.push(up_row_idx.len());
        }
        let slot = slots(&col_ptr, &row_idx, idx)
            .ok_or_else(|| LinFail::Other("the sparsity pattern is too large".into()))?;
        // Nested dissection of the equation graph (METIS compresses the identical
        // neighbourhoods of a node's DOFs itself); AMD when METIS declines.
        let adj: Vec<Vec<usize>> = (0..n)
            .map(|c| {
                row_idx[col_ptr[c]..col_ptr[c + 1]]
                    .iter()
                    .copied()
                    .filter(|&r| r != c)
                    .collect()
            })
            .collect();
        let perm = metis_node_nd(&adj).map(|fwd| {
            let mut inv = vec![0usize; n];
            for (new, &old) in fwd.iter().enumerate() {
                inv[old] = new;
            }
            (fwd, inv)
        });
        drop(adj);
        let up = SymbolicSparseColMatRef::new_checked(n, n, &up_col_ptr, None, &up_row_idx);
        let ordering = match &perm {
            Some((fwd, inv)) => SymmetricOrdering::Custom(PermRef::new_checked(fwd, inv, n)),
            None => SymmetricOrdering::Amd,
        };
        let chol = factorize_symbolic_cholesky(up, Side::Upper, ordering, Default::default())
            .map_err(|e| LinFail::Other(format!("symbolic Cholesky: {e:?}")))?;
        let par = par_for(chol.len_val());
        let req = StackReq::any_of(&[
            chol.factorize_numeric_llt_scratch::<f64>(par, Default::default()),
            chol.factorize_numeric_ldlt_scratch::<f64>(par, Default::default()),
            chol.solve_in_place_scratch::<f64>(1, par),
        ]);
        let chol_buf = MemBuffer::try_new(req)
            .map_err(|_| LinFail::Other("out of memory for the factorisation scratch".into()))?;
        Ok(Pattern {
            n,
            col_ptr,
            row_idx,
            mirror,
            diag,
            slot,
            up_col_ptr,
            up_row_idx,
            up_src,
            chol,
            chol_buf,
            rank_buf: None,
            lu: None,
            par,
        })
    }
}

/// Slot of every triplet in the CSC pattern, or `None` when one is not in it (or the
/// pattern has more entries than 32-bit slots address).
fn slots(col_ptr: &[usize], row_idx: &[usize], idx: &[(u32, u32)]) -> Option<Vec<u32>> {
    if row_idx.len() > u32::MAX as usize {
        return None;
    }
    idx.par_iter()
        .map(|&(r, c)| slot_of(col_ptr, row_idx, r, c))
        .collect()
}

/// Slot of entry `(r, c)` in a CSC pattern (at most `u32::MAX` entries), if stored.
fn slot_of(col_ptr: &[usize], row_idx: &[usize], r: u32, c: u32) -> Option<u32> {
    let (r, c) = (r as usize, c as usize);
    if c + 1 >= col_ptr.len() {
        return None;
    }
    let range = col_ptr[c]..col_ptr[c + 1];
    let k = row_idx[range].binary_search(&r).ok()?;
    Some((col_ptr[c] + k) as u32)
}

/// Number of distinct values in `slot` (each below `len`).
fn distinct(slot: &[u32], len: usize) -> usize {
    let mut seen = vec![false; len];
    slot.iter().for_each(|&s| seen[s as usize] = true);
    seen.iter().filter(|&&b| b).count()
}

/// Equations with an entry that differs from its mirror by more than round-off.
fn nonsymmetric_equations(p: &Pattern, a: &[f64]) -> Vec<usize> {
    let amax = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let d: Vec<f64> = p
        .diag
        .iter()
        .map(|&s| if a[s] != 0.0 { a[s].abs() } else { amax })
        .collect();
    let mut flag = vec![false; p.n];
    for c in 0..p.n {
        for s in p.col_ptr[c]..p.col_ptr[c + 1] {
            let r = p.row_idx[s];
            if r < c && (a[s] - a[p.mirror[s]]).abs() > SYM_TOL * (d[r] * d[c]).sqrt() {
                flag[r] = true;
                flag[c] = true;
            }
        }
    }
    (0..p.n).filter(|&i| flag[i]).collect()
}

/// Solves with the symmetric factor `l` (of method `m`) in place; more than one column
/// only after [`LinSolver::factor_low_rank`] sized the scratch for them.
fn sym_solve(p: &mut Pattern, l: &[f64], m: Method, b: MatMut<'_, f64>) {
    let buf = match &mut p.rank_buf {
        Some((_, buf)) if b.ncols() > 1 => buf,
        _ => &mut p.chol_buf,
    };
    let stack = MemStack::new(buf);
    match m {
        Method::Ldlt => LdltRef::<'_, usize, f64>::new(&p.chol, l).solve_in_place_with_conj(
            Conj::No,
            b,
            p.par,
            stack,
        ),
        _ => LltRef::<'_, usize, f64>::new(&p.chol, l).solve_in_place_with_conj(
            Conj::No,
            b,
            p.par,
            stack,
        ),
    }
}

/// True when every value is finite.
fn finite(v: &[f64]) -> bool {
    v.iter().all(|a| a.is_finite())
}

/// Euclidean norm.
pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Triplets per hashed block of the pattern key.
const KEY_BLOCK: usize = 1 << 16;

/// 64-bit hashes of the blocks of [`KEY_BLOCK`] triplets of an index sequence (each block's
/// length included). A collision would pair values with the wrong positions; the solve
/// residual check in [`LinSolver::solve`] would catch it.
fn pattern_key(idx: &[(u32, u32)]) -> Vec<u64> {
    idx.par_chunks(KEY_BLOCK)
        .map(|block| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ block.len() as u64;
            for &(r, c) in block {
                let v = (u64::from(r) << 32) | u64::from(c);
                h = (h.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
            h
        })
        .collect()
}
