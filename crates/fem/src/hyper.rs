//! Hyperelastic materials written as strain-energy functions of the invariants of the right
//! Cauchy-Green tensor `C = F^T F`: `I1 = tr C`, `I2 = (I1^2 - tr C^2) / 2`, `I3 = det C`
//! and the fibre invariants `I4a = a.C.a`, `I4b = b.C.b`.
//!
//! Stress and tangent follow from the chain rule (Holzapfel, *Nonlinear Solid Mechanics*,
//! 2000, sec. 6.2): `S = 2 sum_k W_k dI_k/dC` and
//! `dS/dE = 4 (sum_kl W_kl dI_k/dC (x) dI_l/dC + sum_k W_k d2I_k/dCdC)`, with
//! `dI1/dC = I`, `dI2/dC = I1 I - C`, `dI3/dC = I3 C^-1`, `dI4/dC = a (x) a`,
//! `d2I2/dCdC = I (x) I - II`, `d2I3/dCdC = I3 (C^-1 (x) C^-1 - C^-1 (.) C^-1)`.
//! The first and second partial derivatives `W_k`, `W_kl` come from a small second-order
//! forward-mode automatic differentiation over the five invariants ([`D2`]): exact to
//! round-off, and each new energy is one scalar function. (An AD crate would work too; this
//! needs only +, *, powi/powf, exp on five variables, and keeps the engine's dependencies
//! and its one nalgebra version.)

use nalgebra::Matrix3;

use crate::continuum::{SolidMaterial, VOIGT};
use crate::FemError;

const NV: usize = 5;

/// A scalar with its gradient and Hessian with respect to [`NV`] variables.
#[derive(Clone, Copy, Debug)]
pub struct D2 {
    v: f64,
    g: [f64; NV],
    h: [[f64; NV]; NV],
}

impl D2 {
    fn cst(v: f64) -> D2 {
        D2 {
            v,
            g: [0.0; NV],
            h: [[0.0; NV]; NV],
        }
    }
    fn var(v: f64, k: usize) -> D2 {
        let mut d = D2::cst(v);
        d.g[k] = 1.0;
        d
    }
    /// `f(self)` given `f`, `f'`, `f''` at `self.v`.
    fn chain(self, f: f64, f1: f64, f2: f64) -> D2 {
        let mut r = D2::cst(f);
        for i in 0..NV {
            r.g[i] = f1 * self.g[i];
            for j in 0..NV {
                r.h[i][j] = f1 * self.h[i][j] + f2 * self.g[i] * self.g[j];
            }
        }
        r
    }
    fn powf(self, p: f64) -> D2 {
        let v = self.v;
        self.chain(
            v.powf(p),
            p * v.powf(p - 1.0),
            p * (p - 1.0) * v.powf(p - 2.0),
        )
    }
    fn exp(self) -> D2 {
        let e = self.v.exp();
        self.chain(e, e, e)
    }
    fn sq(self) -> D2 {
        self * self
    }
}

impl std::ops::Add for D2 {
    type Output = D2;
    fn add(mut self, o: D2) -> D2 {
        self.v += o.v;
        for i in 0..NV {
            self.g[i] += o.g[i];
            for j in 0..NV {
                self.h[i][j] += o.h[i][j];
            }
        }
        self
    }
}

impl std::ops::Sub for D2 {
    type Output = D2;
    fn sub(self, o: D2) -> D2 {
        self + o * -1.0
    }
}

impl std::ops::Mul<f64> for D2 {
    type Output = D2;
    fn mul(mut self, s: f64) -> D2 {
        self.v *= s;
        for i in 0..NV {
            self.g[i] *= s;
            for j in 0..NV {
                self.h[i][j] *= s;
            }
        }
        self
    }
}

impl std::ops::Mul for D2 {
    type Output = D2;
    fn mul(self, o: D2) -> D2 {
        let mut r = D2::cst(self.v * o.v);
        for i in 0..NV {
            r.g[i] = self.g[i] * o.v + self.v * o.g[i];
            for j in 0..NV {
                r.h[i][j] = self.h[i][j] * o.v
                    + self.g[i] * o.g[j]
                    + self.g[j] * o.g[i]
                    + self.v * o.h[i][j];
            }
        }
        r
    }
}

/// Decoupled Mooney-Rivlin with a volumetric penalty:
/// `W = C10 (I1bar - 3) + C01 (I2bar - 3) + K/2 (J - 1)^2`, `I1bar = J^(-2/3) I1`,
/// `I2bar = J^(-4/3) I2`. Neo-Hookean when `C01 = 0`. Small-strain shear modulus
/// `2 (C10 + C01)`, bulk modulus `K`. A large `K` gives a nearly incompressible solid (use
/// Hex8 with F-bar or Tet10 then).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MooneyRivlin {
    /// C10 (MPa).
    pub c10: f64,
    /// C01 (MPa).
    pub c01: f64,
    /// Bulk modulus K (MPa).
    pub bulk: f64,
}

/// Holzapfel-Gasser-Ogden fibre reinforcement (Gasser, Ogden & Holzapfel 2006, J R Soc
/// Interface 3:15) on a [`MooneyRivlin`] ground substance, with two fibre families per
/// element: `W_f = k1 / (2 k2) sum_i (exp(k2 <E_i>^2) - 1)`,
/// `E_i = kappa (I1bar - 3) + (1 - 3 kappa)(I4ibar - 1)`; `<.>` keeps tension only
/// (fibres do not resist compression).
#[derive(Clone, Debug, PartialEq)]
pub struct Hgo {
    /// Ground substance.
    pub ground: MooneyRivlin,
    /// k1 (MPa).
    pub k1: f64,
    /// k2 (-).
    pub k2: f64,
    /// Dispersion kappa in [0, 1/3] (0 = perfectly aligned, 1/3 = isotropic).
    pub kappa: f64,
    /// Two unit fibre directions per element (reference configuration), indexed by the
    /// GLOBAL element index.
    pub fibres: Vec<[[f64; 3]; 2]>,
}

impl MooneyRivlin {
    /// Checks the parameters (`C10 + C01 > 0`, `C10, C01 >= 0`, `K > 0`).
    pub fn new(c10: f64, c01: f64, bulk: f64) -> Result<Self, FemError> {
        if !(c10 >= 0.0 && c01 >= 0.0 && c10 + c01 > 0.0 && bulk > 0.0 && bulk.is_finite()) {
            return Err(FemError::InvalidInput(format!(
                "Mooney-Rivlin needs C10, C01 >= 0 with C10 + C01 > 0 and K > 0 (got {c10}, {c01}, {bulk})"
            )));
        }
        Ok(MooneyRivlin { c10, c01, bulk })
    }

    fn energy_d2(&self, inv: &[D2; NV]) -> D2 {
        let [i1, i2, i3, _, _] = *inv;
        let j = i3.powf(0.5);
        let i1b = i1 * i3.powf(-1.0 / 3.0);
        let i2b = i2 * i3.powf(-2.0 / 3.0);
        (i1b - D2::cst(3.0)) * self.c10
            + (i2b - D2::cst(3.0)) * self.c01
            + (j - D2::cst(1.0)).sq() * (0.5 * self.bulk)
    }
}

impl Hgo {
    fn energy_d2(&self, inv: &[D2; NV]) -> D2 {
        let mut w = self.ground.energy_d2(inv);
        let i3m = inv[2].powf(-1.0 / 3.0);
        let i1b = inv[0] * i3m;
        for i4 in [inv[3], inv[4]] {
            let e = (i1b - D2::cst(3.0)) * self.kappa
                + (i4 * i3m - D2::cst(1.0)) * (1.0 - 3.0 * self.kappa);
            if e.v > 0.0 {
                w = w + ((e.sq() * self.k2).exp() - D2::cst(1.0)) * (self.k1 / (2.0 * self.k2));
            }
        }
        w
    }
}

/// Invariants of `C` as AD variables, and `C` itself.
fn invariants(f: &Matrix3<f64>, a: [f64; 3], b: [f64; 3]) -> ([D2; NV], Matrix3<f64>) {
    let c = f.transpose() * f;
    let i1 = c.trace();
    let i2 = 0.5 * (i1 * i1 - (c * c).trace());
    let i3 = c.determinant();
    let av = nalgebra::Vector3::from(a);
    let bv = nalgebra::Vector3::from(b);
    let i4a = av.dot(&(c * av));
    let i4b = bv.dot(&(c * bv));
    (
        [
            D2::var(i1, 0),
            D2::var(i2, 1),
            D2::var(i3, 2),
            D2::var(i4a, 3),
            D2::var(i4b, 4),
        ],
        c,
    )
}

/// `S` (Voigt) and `dS/dE` (6x6) from the energy's partial derivatives in the invariants.
fn stress_tangent(
    w: &D2,
    c: &Matrix3<f64>,
    a: [f64; 3],
    b: [f64; 3],
) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
    let cinv = c.try_inverse().ok_or_else(|| {
        FemError::Solver("singular deformation in a hyperelastic material".into())
    })?;
    let i1 = c.trace();
    let i3 = c.determinant();
    let id = Matrix3::<f64>::identity();
    let av = nalgebra::Vector3::from(a);
    let bv = nalgebra::Vector3::from(b);
    // dI_k/dC for k = 1, 2, 3, 4a, 4b.
    let d: [Matrix3<f64>; NV] = [
        id,
        id * i1 - c,
        cinv * i3,
        av * av.transpose(),
        bv * bv.transpose(),
    ];
    let mut s = [0.0; 6];
    let mut t = [[0.0; 6]; 6];
    for (r, [i, j]) in VOIGT.iter().enumerate() {
        s[r] = 2.0 * (0..NV).map(|k| w.g[k] * d[k][(*i, *j)]).sum::<f64>();
        for (q, [k, l]) in VOIGT.iter().enumerate() {
            let mut v = 0.0;
            for m in 0..NV {
                for n in 0..NV {
                    v += w.h[m][n] * d[m][(*i, *j)] * d[n][(*k, *l)];
                }
            }
            let sym = 0.5 * (id[(*i, *k)] * id[(*j, *l)] + id[(*i, *l)] * id[(*j, *k)]);
            let d2i2 = id[(*i, *j)] * id[(*k, *l)] - sym;
            let csym = 0.5 * (cinv[(*i, *k)] * cinv[(*j, *l)] + cinv[(*i, *l)] * cinv[(*j, *k)]);
            let d2i3 = i3 * (cinv[(*i, *j)] * cinv[(*k, *l)] - csym);
            v += w.g[1] * d2i2 + w.g[2] * d2i3;
            t[r][q] = 4.0 * v;
        }
    }
    Ok((s, t))
}

fn check_j(f: &Matrix3<f64>) -> Result<(), FemError> {
    let j = f.determinant();
    if j > 0.0 && j.is_finite() {
        Ok(())
    } else {
        Err(FemError::InvertedElement {
            element: usize::MAX,
            det_j: j,
        })
    }
}

impl SolidMaterial for MooneyRivlin {
    fn pk2(
        &self,
        _element: usize,
        f: &Matrix3<f64>,
    ) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        check_j(f)?;
        let (inv, c) = invariants(f, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        stress_tangent(&self.energy_d2(&inv), &c, [0.0; 3], [0.0; 3])
    }

    fn energy(&self, _element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let (inv, _) = invariants(f, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        Some(self.energy_d2(&inv).v)
    }
}

impl SolidMaterial for Hgo {
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        check_j(f)?;
        let [a, b] = *self.fibres.get(element).ok_or_else(|| {
            FemError::InvalidInput(format!(
                "HGO material has no fibre directions for element {element}"
            ))
        })?;
        let (inv, c) = invariants(f, a, b);
        stress_tangent(&self.energy_d2(&inv), &c, a, b)
    }

    fn energy(&self, element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let [a, b] = *self.fibres.get(element)?;
        let (inv, _) = invariants(f, a, b);
        Some(self.energy_d2(&inv).v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continuum::green_lagrange_voigt;

    fn hgo() -> Hgo {
        let t = 30f64.to_radians();
        Hgo {
            ground: MooneyRivlin::new(0.1351, 0.02, 2.0).unwrap(),
            k1: 3.73,
            k2: 89.57,
            kappa: 0.0752,
            fibres: vec![[[t.cos(), 0.0, t.sin()], [t.cos(), 0.0, -t.sin()]]],
        }
    }

    fn sample_f() -> Vec<Matrix3<f64>> {
        vec![
            Matrix3::new(1.05, 0.02, 0.01, -0.01, 0.97, 0.03, 0.02, 0.01, 1.02),
            Matrix3::new(1.10, 0.05, 0.0, 0.0, 0.95, 0.0, 0.0, 0.02, 0.96),
            Matrix3::new(0.93, 0.0, 0.04, 0.01, 1.01, 0.0, -0.03, 0.0, 1.04),
        ]
    }

    /// F with a prescribed Green-Lagrange change: F' = F (I + 2 dE-ish) is awkward, so
    /// perturb C directly: C' = C + h P, F' = chol-free via the symmetric square root.
    fn f_of_c(c: &Matrix3<f64>) -> Matrix3<f64> {
        let e = nalgebra::SymmetricEigen::new(*c);
        e.eigenvectors
            * Matrix3::from_diagonal(&e.eigenvalues.map(f64::sqrt))
            * e.eigenvectors.transpose()
    }

    fn check(mat: &dyn SolidMaterial) {
        for f in sample_f() {
            let (s, t) = mat.pk2(0, &f).unwrap();
            let c = f.transpose() * f;
            let h = 1e-6;
            for (r, [i, j]) in VOIGT.iter().enumerate() {
                // Perturb E_voigt[r] (engineering shear) through C = 2E + I.
                let mut dc = Matrix3::zeros();
                if i == j {
                    dc[(*i, *j)] = 2.0 * h;
                } else {
                    dc[(*i, *j)] = h;
                    dc[(*j, *i)] = h;
                }
                let fp = f_of_c(&(c + dc));
                let fm = f_of_c(&(c - dc));
                let wp = mat.energy(0, &fp).unwrap();
                let wm = mat.energy(0, &fm).unwrap();
                let ds = (wp - wm) / (2.0 * h);
                assert!(
                    (ds - s[r]).abs() < 1e-6 * (1.0 + s[r].abs()),
                    "S[{r}]: fd {ds} vs {}",
                    s[r]
                );
                let (sp, _) = mat.pk2(0, &fp).unwrap();
                let (sm, _) = mat.pk2(0, &fm).unwrap();
                for q in 0..6 {
                    let fd = (sp[q] - sm[q]) / (2.0 * h);
                    assert!(
                        (fd - t[q][r]).abs() < 1e-5 * (1.0 + t[q][r].abs()),
                        "C[{q}][{r}]: fd {fd} vs {}",
                        t[q][r]
                    );
                }
                // E of the perturbed F is as intended.
                let ep = green_lagrange_voigt(&fp);
                let e0 = green_lagrange_voigt(&f);
                assert!((ep[r] - e0[r] - h).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn mooney_rivlin_stress_and_tangent_match_finite_differences() {
        check(&MooneyRivlin::new(0.18, 0.045, 5.0).unwrap());
    }

    #[test]
    fn hgo_stress_and_tangent_match_finite_differences() {
        check(&hgo());
    }

    #[test]
    fn stress_free_at_identity_and_small_strain_moduli() {
        let m = MooneyRivlin::new(0.18, 0.045, 5.0).unwrap();
        let (s, t) = m.pk2(0, &Matrix3::identity()).unwrap();
        assert!(s.iter().all(|v| v.abs() < 1e-12));
        let mu = 2.0 * (0.18 + 0.045);
        assert!((t[3][3] - mu).abs() < 1e-10, "shear {}", t[3][3]);
        assert!((t[0][0] - (5.0 + 4.0 / 3.0 * mu)).abs() < 1e-10);
        assert!((t[0][1] - (5.0 - 2.0 / 3.0 * mu)).abs() < 1e-10);
        let (s, _) = hgo().pk2(0, &Matrix3::identity()).unwrap();
        assert!(s.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn nearly_incompressible_uniaxial_matches_the_analytical_stress() {
        // Incompressible Mooney-Rivlin uniaxial: sigma = 2 (l^2 - 1/l)(C10 + C01 / l).
        let (c10, c01) = (0.18, 0.045);
        let m = MooneyRivlin::new(c10, c01, 1e5).unwrap();
        for l in [1.2, 1.5, 0.8] {
            // Lateral stretch from zero lateral stress: 1-D Newton on sigma_yy = 0.
            let mut lt = 1.0 / f64::sqrt(l);
            for _ in 0..50 {
                let syy = |lt: f64| {
                    let f = Matrix3::from_diagonal(&nalgebra::Vector3::new(l, lt, lt));
                    let (s, _) = m.pk2(0, &f).unwrap();
                    crate::continuum::cauchy_from_pk2(&f, &s)[1]
                };
                let g = syy(lt);
                let dg = (syy(lt + 1e-8) - syy(lt - 1e-8)) / 2e-8;
                lt -= g / dg;
            }
            let f = Matrix3::from_diagonal(&nalgebra::Vector3::new(l, lt, lt));
            let (s, _) = m.pk2(0, &f).unwrap();
            let sxx = crate::continuum::cauchy_from_pk2(&f, &s)[0];
            let exact = 2.0 * (l * l - 1.0 / l) * (c10 + c01 / l);
            assert!(
                (sxx - exact).abs() < 1e-3 * exact.abs(),
                "l {l}: {sxx} vs {exact}"
            );
        }
    }

    #[test]
    fn fibres_carry_tension_only_and_are_objective() {
        // Both families along a; isochoric stretch along a (lateral 1/sqrt(l)), so the
        // isochoric fibre invariant is exactly l^2.
        let mut m = Hgo {
            kappa: 0.0,
            ..hgo()
        };
        let a = m.fibres[0][0];
        m.fibres[0][1] = a;
        let stretch = |l: f64| {
            let av = nalgebra::Vector3::from(a);
            let p = av * av.transpose();
            p * l + (Matrix3::identity() - p) / l.sqrt()
        };
        let (s_f, _) = m.pk2(0, &stretch(1.05)).unwrap();
        let (s_g, _) = m.ground.pk2(0, &stretch(1.05)).unwrap();
        assert!(s_f[0] > 2.0 * s_g[0], "{} vs {}", s_f[0], s_g[0]);
        // Compression along it: fibres silent.
        let (s_f, _) = m.pk2(0, &stretch(0.95)).unwrap();
        let (s_g, _) = m.ground.pk2(0, &stretch(0.95)).unwrap();
        for k in 0..6 {
            assert!((s_f[k] - s_g[k]).abs() < 1e-12);
        }
        // Objectivity: a rotation after the deformation leaves S unchanged.
        let f = sample_f()[0];
        let r = nalgebra::Rotation3::from_euler_angles(0.3, -0.2, 0.7).into_inner();
        let (s1, _) = hgo().pk2(0, &f).unwrap();
        let (s2, _) = hgo().pk2(0, &(r * f)).unwrap();
        for k in 0..6 {
            assert!((s1[k] - s2[k]).abs() < 1e-10);
        }
    }
}
