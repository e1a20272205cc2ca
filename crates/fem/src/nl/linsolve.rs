//! Sparse LU solve of the (in general non-symmetric) tangent with the symbolic analysis
//! reused while the sparsity pattern does not change.

use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::{Lu, SymbolicLu};
use faer::sparse::{Argsort, Pair, SparseColMat, SymbolicSparseColMat};
use faer::Mat;

/// A cached symbolic LU factorisation keyed by the triplet index sequence.
#[derive(Default)]
pub(crate) struct LuCache {
    /// Hash and length of the triplet index sequence (storing it would double the
    /// memory of the assembly on large models).
    key: (u64, usize),
    n: usize,
    sym: Option<(
        SymbolicSparseColMat<usize>,
        Argsort<usize>,
        SymbolicLu<usize>,
    )>,
    /// Stored entries of the last matrix.
    pub nnz: usize,
}

/// Why a linear solve failed.
pub(crate) enum LinFail {
    Singular(String),
    Other(String),
}

impl LuCache {
    /// True when the next call will redo the symbolic analysis.
    pub fn needs_symbolic(&self, n: usize, idx: &[(u32, u32)]) -> bool {
        self.sym.is_none() || self.n != n || self.key != pattern_key(idx)
    }

    /// Symbolic analysis for the pattern `idx` (duplicates are summed).
    pub fn analyse(&mut self, n: usize, idx: &[(u32, u32)]) -> Result<(), LinFail> {
        let pairs: Vec<Pair<usize, usize>> = idx
            .iter()
            .map(|&(r, c)| Pair::new(r as usize, c as usize))
            .collect();
        let (sym, argsort) = SymbolicSparseColMat::try_new_from_indices(n, n, &pairs)
            .map_err(|e| LinFail::Other(format!("sparsity pattern: {e:?}")))?;
        let slu = SymbolicLu::try_new(sym.as_ref())
            .map_err(|e| LinFail::Other(format!("symbolic LU: {e:?}")))?;
        self.nnz = sym.compute_nnz();
        self.key = pattern_key(idx);
        self.n = n;
        self.sym = Some((sym, argsort, slu));
        Ok(())
    }

    /// Numeric LU of the matrix with the analysed pattern and values `vals`.
    pub fn factor(&self, vals: &[f64]) -> Result<Lu<usize, f64>, LinFail> {
        let (sym, argsort, slu) = self
            .sym
            .as_ref()
            .ok_or_else(|| LinFail::Other("no symbolic factorisation".into()))?;
        let mat = SparseColMat::new_from_argsort(sym.clone(), argsort, vals)
            .map_err(|e| LinFail::Other(format!("matrix: {e:?}")))?;
        Lu::try_new_with_symbolic(slu.clone(), mat.as_ref())
            .map_err(|e| LinFail::Singular(format!("the LU factorisation failed ({e:?})")))
    }

    /// Solves with a numeric factorisation and checks the result against the triplets.
    pub fn solve(
        &self,
        lu: &Lu<usize, f64>,
        idx: &[(u32, u32)],
        vals: &[f64],
        rhs: &[f64],
    ) -> Result<Vec<f64>, LinFail> {
        let n = rhs.len();
        let mut b = Mat::<f64>::from_fn(n, 1, |i, _| rhs[i]);
        lu.solve_in_place(b.as_mut());
        let x: Vec<f64> = (0..n).map(|i| b[(i, 0)]).collect();
        if x.iter().any(|v| !v.is_finite()) {
            return Err(LinFail::Singular("the solution is not finite".into()));
        }
        // A singular or nearly singular tangent shows as a poor solve residual.
        let mut ax = vec![0.0; n];
        for (&(r, c), &v) in idx.iter().zip(vals) {
            ax[r as usize] += v * x[c as usize];
        }
        let rn = norm(rhs);
        let en = ax
            .iter()
            .zip(rhs)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        if en > 1e-6 * rn.max(f64::MIN_POSITIVE) {
            return Err(LinFail::Singular(format!(
                "the linear solve residual is {:.1e} of the right-hand side",
                en / rn.max(f64::MIN_POSITIVE)
            )));
        }
        Ok(x)
    }
}

/// Euclidean norm.
pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// A 64-bit hash of a triplet index sequence and its length. A collision would pair values
/// with the wrong positions; the solve residual check in [`LuCache::solve`] would catch it.
fn pattern_key(idx: &[(u32, u32)]) -> (u64, usize) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &(r, c) in idx {
        let v = (u64::from(r) << 32) | u64::from(c);
        h = (h.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    (h, idx.len())
}
