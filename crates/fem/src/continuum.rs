//! Large-deformation continuum elements (total Lagrangian) and the material interface of the
//! nonlinear engine.
//!
//! Kinematics: `F = I + du/dX` from reference coordinates `X`; Green-Lagrange strain
//! `E = (F^T F - I) / 2`; the material returns the second Piola-Kirchhoff stress `S` and its
//! tangent `dS/dE`. Element internal force `f_a,i = sum_q w J0 (F_ij dN_a/dX_k) S_jk` and
//! tangent `K = sum_q w J0 (B^T C B + G)` with the geometric term
//! `G_(ai)(bj) = delta_ij dN_a/dX . S dN_b/dX` (Bathe, *Finite Element Procedures*, 2014,
//! sec. 6.3; Bonet & Wood, *Nonlinear Continuum Mechanics for FEA*, 2008, ch. 8).
//!
//! Voigt order `[11, 22, 33, 12, 13, 23]` with engineering shear strains, as in the linear
//! part of the engine: `dS_voigt = C dE_voigt` where `E_voigt = [E11, E22, E33, 2E12, 2E13,
//! 2E23]`.

use nalgebra::Matrix3;

use crate::element::{point_geometry, ElementKind};
use crate::FemError;

/// Voigt index pairs `[11, 22, 33, 12, 13, 23]` (0-based).
pub const VOIGT: [[usize; 2]; 6] = [[0, 0], [1, 1], [2, 2], [0, 1], [0, 2], [1, 2]];

/// A hyperelastic (or any path-independent) material for the nonlinear engine.
///
/// `element` is the element index, so per-element data (CT-derived moduli, fibre directions)
/// live inside the material. Implementations must be thread-safe: elements are evaluated in
/// parallel.
pub trait SolidMaterial: Send + Sync {
    /// Second Piola-Kirchhoff stress `S` (Voigt, MPa) and material tangent `dS/dE` (6x6,
    /// engineering shear in `E`) at deformation gradient `f` (with `det f > 0`).
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError>;

    /// Strain energy density `W(F)` (MPa = mJ/mm^3), when the material has one; used by
    /// line searches and energy checks. `None` when it is not available.
    fn energy(&self, _element: usize, _f: &Matrix3<f64>) -> Option<f64> {
        None
    }
}

/// St Venant-Kirchhoff: `S = lambda tr(E) I + 2 mu E` (the linear elastic law carried to
/// large rotations; fine for small strains, unstable in strong compression). With one `E`
/// and `nu` per element it is the large-rotation counterpart of [`crate::LinearElastic`].
#[derive(Clone, Debug)]
pub struct StVenantKirchhoff {
    /// The per-element moduli and Poisson's ratios.
    pub linear: crate::LinearElastic,
}

impl SolidMaterial for StVenantKirchhoff {
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        let d = self.linear.d_matrix(element);
        let e = green_lagrange_voigt(f);
        let mut s = [0.0; 6];
        for (r, sr) in s.iter_mut().enumerate() {
            *sr = (0..6).map(|c| d[r][c] * e[c]).sum();
        }
        Ok((s, d))
    }

    fn energy(&self, element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let d = self.linear.d_matrix(element);
        let e = green_lagrange_voigt(f);
        Some(
            0.5 * (0..6)
                .map(|r| e[r] * (0..6).map(|c| d[r][c] * e[c]).sum::<f64>())
                .sum::<f64>(),
        )
    }
}

/// Green-Lagrange strain in Voigt form with engineering shear.
pub fn green_lagrange_voigt(f: &Matrix3<f64>) -> [f64; 6] {
    let c = f.transpose() * f;
    [
        0.5 * (c[(0, 0)] - 1.0),
        0.5 * (c[(1, 1)] - 1.0),
        0.5 * (c[(2, 2)] - 1.0),
        c[(0, 1)],
        c[(0, 2)],
        c[(1, 2)],
    ]
}

/// Cauchy stress `sigma = F S F^T / J` (Voigt) from `S` (Voigt).
pub fn cauchy_from_pk2(f: &Matrix3<f64>, s: &[f64; 6]) -> [f64; 6] {
    let sm = voigt_to_matrix(s);
    let sig = f * sm * f.transpose() / f.determinant();
    VOIGT.map(|[i, j]| sig[(i, j)])
}

/// A symmetric tensor from Voigt components (stress-like: shear entries are tensor values).
pub fn voigt_to_matrix(s: &[f64; 6]) -> Matrix3<f64> {
    Matrix3::new(s[0], s[3], s[4], s[3], s[1], s[5], s[4], s[5], s[2])
}

/// Internal force and tangent of one element.
#[derive(Clone, Debug)]
pub struct ElementResponse {
    /// Internal force (N), length `3n`, node-major.
    pub force: Vec<f64>,
    /// Tangent `d force / d u` (N/mm), row-major `3n x 3n`; symmetric for hyperelastic
    /// materials.
    pub tangent: Vec<f64>,
    /// Strain energy of the element (mJ) when the material provides it.
    pub energy: Option<f64>,
}

/// Total Lagrangian internal force and consistent tangent of element `element` of kind
/// `kind` with reference coordinates `x0` and nodal displacements `u` (one per node).
///
/// Errors with [`FemError::InvertedElement`] when the reference Jacobian or `det F` is not
/// positive at an integration point (the Newton solver treats that as a failed iteration and
/// cuts the step back).
pub fn tl_element(
    kind: ElementKind,
    x0: &[[f64; 3]],
    u: &[[f64; 3]],
    material: &dyn SolidMaterial,
    element: usize,
) -> Result<ElementResponse, FemError> {
    let n = kind.num_nodes();
    let ndof = 3 * n;
    let mut force = vec![0.0; ndof];
    let mut tangent = vec![0.0; ndof * ndof];
    let mut energy = Some(0.0);
    let inverted = |det_j: f64| FemError::InvertedElement { element, det_j };
    for &(p, w) in kind.quadrature() {
        let g = point_geometry(kind, &x0[..n], p).ok_or(inverted(0.0))?;
        if g.det_j <= 0.0 {
            return Err(inverted(g.det_j));
        }
        let dn = &g.dndx[..n];
        let mut f = Matrix3::identity();
        for (ua, da) in u.iter().zip(dn) {
            for i in 0..3 {
                for k in 0..3 {
                    f[(i, k)] += ua[i] * da[k];
                }
            }
        }
        let det_f = f.determinant();
        if det_f <= 0.0 {
            return Err(inverted(det_f));
        }
        let (s, c) = material.pk2(element, &f)?;
        let wj = w * g.det_j;
        energy = match (energy, material.energy(element, &f)) {
            (Some(acc), Some(psi)) => Some(acc + wj * psi),
            _ => None,
        };
        // B column of DOF (a, i): dE_voigt / du_ai.
        let bcol = |a: usize, i: usize| -> [f64; 6] {
            VOIGT.map(|[j, k]| {
                if j == k {
                    f[(i, j)] * dn[a][j]
                } else {
                    f[(i, j)] * dn[a][k] + f[(i, k)] * dn[a][j]
                }
            })
        };
        let cols: Vec<[f64; 6]> = (0..ndof).map(|d| bcol(d / 3, d % 3)).collect();
        let cb: Vec<[f64; 6]> = cols
            .iter()
            .map(|b| std::array::from_fn(|r| (0..6).map(|q| c[r][q] * b[q]).sum::<f64>()))
            .collect();
        for r in 0..ndof {
            force[r] += wj * (0..6).map(|q| cols[r][q] * s[q]).sum::<f64>();
            for col in 0..ndof {
                tangent[r * ndof + col] +=
                    wj * (0..6).map(|q| cols[r][q] * cb[col][q]).sum::<f64>();
            }
        }
        let sm = voigt_to_matrix(&s);
        for a in 0..n {
            let sa = sm * nalgebra::Vector3::from(dn[a]);
            for b in 0..n {
                let gab = wj * (0..3).map(|k| dn[b][k] * sa[k]).sum::<f64>();
                for i in 0..3 {
                    tangent[(3 * a + i) * ndof + 3 * b + i] += gab;
                }
            }
        }
    }
    Ok(ElementResponse {
        force,
        tangent,
        energy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinearElastic;

    fn tet10_coords() -> Vec<[f64; 3]> {
        let c = [
            [0.0, 0.0, 0.0],
            [2.0, 0.1, 0.0],
            [0.2, 1.5, 0.1],
            [0.1, 0.3, 1.8],
        ];
        let mut x = c.to_vec();
        for [a, b] in crate::element::TET_EDGES {
            x.push(std::array::from_fn(|i| 0.5 * (c[a][i] + c[b][i])));
        }
        x
    }

    #[test]
    fn tangent_matches_finite_differences_of_the_force() {
        let x0 = tet10_coords();
        let mat = StVenantKirchhoff {
            linear: LinearElastic::uniform(1, 100.0, 0.3).unwrap(),
        };
        let u: Vec<[f64; 3]> = (0..10)
            .map(|a| {
                [
                    0.05 * (a as f64).sin(),
                    0.08 * (a as f64 * 0.7).cos(),
                    -0.04 * a as f64 / 10.0,
                ]
            })
            .collect();
        let r = tl_element(ElementKind::Tet10, &x0, &u, &mat, 0).unwrap();
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        let scale = r.tangent.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for d in 0..30 {
            let mut up = u.clone();
            up[d / 3][d % 3] += h;
            let mut um = u.clone();
            um[d / 3][d % 3] -= h;
            let fp = tl_element(ElementKind::Tet10, &x0, &up, &mat, 0)
                .unwrap()
                .force;
            let fm = tl_element(ElementKind::Tet10, &x0, &um, &mat, 0)
                .unwrap()
                .force;
            for r_ in 0..30 {
                let fd = (fp[r_] - fm[r_]) / (2.0 * h);
                worst = worst.max((fd - r.tangent[r_ * 30 + d]).abs() / scale);
            }
        }
        assert!(worst < 1e-6, "relative tangent error {worst:e}");
    }

    #[test]
    fn rigid_rotation_gives_no_force() {
        let x0 = tet10_coords();
        let mat = StVenantKirchhoff {
            linear: LinearElastic::uniform(1, 100.0, 0.3).unwrap(),
        };
        let rot = nalgebra::Rotation3::from_euler_angles(0.4, -0.3, 1.1);
        let u: Vec<[f64; 3]> = x0
            .iter()
            .map(|p| {
                let q = rot * nalgebra::Point3::from(*p);
                [q.x - p[0] + 3.0, q.y - p[1], q.z - p[2] - 1.0]
            })
            .collect();
        let r = tl_element(ElementKind::Tet10, &x0, &u, &mat, 0).unwrap();
        let m = r.force.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(m < 1e-10, "max force {m:e}");
        assert!(r.energy.unwrap().abs() < 1e-12);
    }
}
