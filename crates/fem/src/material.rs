//! Isotropic linear elasticity with per-element properties.

use crate::FemError;

/// Isotropic linear elastic material with one Young's modulus (MPa) and Poisson's ratio per
/// element, so heterogeneous (e.g. CT-derived) moduli are represented directly.
#[derive(Clone, Debug)]
pub struct LinearElastic {
    /// Young's modulus of each element (MPa).
    pub youngs: Vec<f64>,
    /// Poisson's ratio of each element.
    pub poisson: Vec<f64>,
}

impl LinearElastic {
    /// The same `e` (MPa) and `nu` for `n_elements` elements.
    pub fn uniform(n_elements: usize, e: f64, nu: f64) -> Result<Self, FemError> {
        Self::per_element(vec![e; n_elements], vec![nu; n_elements])
    }

    /// Per-element moduli with one Poisson's ratio.
    pub fn with_youngs(youngs: Vec<f64>, nu: f64) -> Result<Self, FemError> {
        let n = youngs.len();
        Self::per_element(youngs, vec![nu; n])
    }

    /// Per-element moduli and Poisson's ratios. Requires `E > 0` and `-1 < nu < 0.5`
    /// (finite); `nu` near 0.5 locks displacement-based tets, which is the caller's choice.
    pub fn per_element(youngs: Vec<f64>, poisson: Vec<f64>) -> Result<Self, FemError> {
        if youngs.len() != poisson.len() {
            return Err(FemError::InvalidInput(format!(
                "material: {} moduli but {} Poisson's ratios",
                youngs.len(),
                poisson.len()
            )));
        }
        for (i, (&e, &nu)) in youngs.iter().zip(&poisson).enumerate() {
            if !(e.is_finite() && e > 0.0 && nu.is_finite() && nu > -1.0 && nu < 0.5) {
                return Err(FemError::InvalidInput(format!(
                    "material of element {i}: need E > 0 and -1 < nu < 0.5 (got E = {e}, nu = {nu})"
                )));
            }
        }
        Ok(LinearElastic { youngs, poisson })
    }

    /// Number of elements covered.
    pub fn len(&self) -> usize {
        self.youngs.len()
    }

    /// True when it covers no element.
    pub fn is_empty(&self) -> bool {
        self.youngs.is_empty()
    }

    /// The constitutive matrix of element `e` (see [`elasticity_matrix`]).
    pub fn d_matrix(&self, e: usize) -> [[f64; 6]; 6] {
        elasticity_matrix(self.youngs[e], self.poisson[e])
    }
}

/// Isotropic constitutive matrix `D` (6x6, MPa) with `sigma = D eps` in the Voigt order
/// `[xx, yy, zz, xy, xz, yz]` (Abaqus/CalculiX order) and ENGINEERING shear strains
/// `gamma_xy = 2 eps_xy`. Lame: `lambda = E nu / ((1 + nu)(1 - 2 nu))`, `mu = E / (2 (1 + nu))`.
pub fn elasticity_matrix(e: f64, nu: f64) -> [[f64; 6]; 6] {
    let lambda = e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
    let mu = e / (2.0 * (1.0 + nu));
    let mut d = [[0.0; 6]; 6];
    for i in 0..3 {
        d[i][..3].fill(lambda);
        d[i][i] = lambda + 2.0 * mu;
        d[i + 3][i + 3] = mu;
    }
    d
}
