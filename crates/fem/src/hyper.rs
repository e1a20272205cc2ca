//! Hyperelastic and anisotropic materials for the nonlinear engine, each a
//! [`SolidMaterial`] with its exact consistent tangent and strain energy.
//!
//! Isotropic and fibre materials are written as a strain energy `W(I1, I2, J, I4, I6)` of
//! the invariants of `C = F^T F` (`I4 = a1 . C a1`, `I6 = a2 . C a2` for unit fibre
//! directions `a1`, `a2` in the reference configuration). `W` is evaluated with a small
//! forward-mode automatic differentiation that carries the gradient and Hessian with
//! respect to the five invariants (`Hd`), so `S = 2 dW/dC = sum_k W_k A_k` with
//! `A_k = 2 dI_k/dC` and `dS/dE = 4 d2W/dC2 = sum_kl W_kl A_k (x) A_l + sum_k W_k 4 d2I_k/dC2`
//! are exact (Holzapfel, *Nonlinear Solid Mechanics*, 2000, sec. 6.2-6.7):
//! `A_I1 = 2 I`, `A_I2 = 2 (I1 I - C)`, `A_J = J C^-1`, `A_I4 = 2 a1 (x) a1`,
//! `4 d2I2/dC2 = 4 (I (x) I - II)`, `4 d2J/dC2 = J (C^-1 (x) C^-1 - 2 C^-1 [x] C^-1)` with
//! `(C^-1 [x] C^-1)_IJKL = (C^-1_IK C^-1_JL + C^-1_IL C^-1_JK) / 2`.
//!
//! Per-element parameters: every material holds a vector of parameters that has either one
//! entry (uniform) or one per element.

use nalgebra::{Matrix3, Vector3};

use crate::continuum::{green_lagrange_voigt, SolidMaterial, VOIGT};
use crate::FemError;

/// Number of invariants carried by [`Hd`]: `I1, I2, J, I4, I6`.
const NV: usize = 5;

/// A scalar with its gradient and Hessian with respect to the invariants
/// `(I1, I2, J, I4, I6)` (second-order forward-mode automatic differentiation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hd {
    /// Value.
    pub(crate) v: f64,
    /// Gradient.
    pub(crate) g: [f64; NV],
    /// Hessian (symmetric).
    pub(crate) h: [[f64; NV]; NV],
}

impl Hd {
    /// A constant.
    pub(crate) fn c(v: f64) -> Self {
        Hd {
            v,
            g: [0.0; NV],
            h: [[0.0; NV]; NV],
        }
    }
    /// The independent variable number `k` with value `v`.
    fn var(k: usize, v: f64) -> Self {
        let mut x = Hd::c(v);
        x.g[k] = 1.0;
        x
    }
    /// `phi(self)` from `phi`, `phi'`, `phi''` at `self.v` (chain rule).
    fn chain(self, f0: f64, f1: f64, f2: f64) -> Self {
        let mut r = Hd::c(f0);
        for i in 0..NV {
            r.g[i] = f1 * self.g[i];
            for j in 0..NV {
                r.h[i][j] = f1 * self.h[i][j] + f2 * self.g[i] * self.g[j];
            }
        }
        r
    }
    /// Natural logarithm.
    pub(crate) fn ln(self) -> Self {
        self.chain(self.v.ln(), 1.0 / self.v, -1.0 / (self.v * self.v))
    }
    /// Exponential.
    pub(crate) fn exp(self) -> Self {
        let e = self.v.exp();
        self.chain(e, e, e)
    }
    /// Real power with a constant exponent.
    pub(crate) fn powf(self, p: f64) -> Self {
        let v = self.v;
        self.chain(
            v.powf(p),
            p * v.powf(p - 1.0),
            p * (p - 1.0) * v.powf(p - 2.0),
        )
    }
    /// Square.
    pub(crate) fn sq(self) -> Self {
        self * self
    }
    /// Multiplication by a constant.
    pub(crate) fn scale(self, s: f64) -> Self {
        let mut r = self;
        r.v *= s;
        r.g.iter_mut().for_each(|x| *x *= s);
        r.h.iter_mut().flatten().for_each(|x| *x *= s);
        r
    }
}

impl std::ops::Add for Hd {
    type Output = Hd;
    fn add(mut self, o: Hd) -> Hd {
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

impl std::ops::Sub for Hd {
    type Output = Hd;
    fn sub(self, o: Hd) -> Hd {
        self + o.scale(-1.0)
    }
}

impl std::ops::Add<f64> for Hd {
    type Output = Hd;
    fn add(mut self, o: f64) -> Hd {
        self.v += o;
        self
    }
}

impl std::ops::Sub<f64> for Hd {
    type Output = Hd;
    fn sub(mut self, o: f64) -> Hd {
        self.v -= o;
        self
    }
}

impl std::ops::Mul for Hd {
    type Output = Hd;
    fn mul(self, o: Hd) -> Hd {
        let mut r = Hd::c(self.v * o.v);
        for i in 0..NV {
            r.g[i] = self.g[i] * o.v + self.v * o.g[i];
            for j in 0..NV {
                r.h[i][j] = self.h[i][j] * o.v
                    + self.v * o.h[i][j]
                    + self.g[i] * o.g[j]
                    + self.g[j] * o.g[i];
            }
        }
        r
    }
}

/// The invariants of `C = F^T F` and what the tensor assembly needs.
struct Kinematics {
    c: Matrix3<f64>,
    c_inv: Matrix3<f64>,
    i1: f64,
    i2: f64,
    j: f64,
}

fn kinematics(f: &Matrix3<f64>, element: usize) -> Result<Kinematics, FemError> {
    let j = f.determinant();
    let c = f.transpose() * f;
    let c_inv = c
        .try_inverse()
        .filter(|_| j > 0.0)
        .ok_or(FemError::InvertedElement { element, det_j: j })?;
    let i1 = c.trace();
    let i2 = 0.5 * (i1 * i1 - (c * c).trace());
    Ok(Kinematics {
        c,
        c_inv,
        i1,
        i2,
        j,
    })
}

/// `S` (Voigt) and `dS/dE` (Voigt, engineering shear in `E`) from `W(I1, I2, J, I4, I6)`.
/// Fibre directions must be unit vectors; pass zero vectors when there are none.
fn invariant_response(
    k: &Kinematics,
    fibres: [Vector3<f64>; 2],
    w: &Hd,
) -> ([f64; 6], [[f64; 6]; 6]) {
    let id = Matrix3::identity();
    let a: [Matrix3<f64>; NV] = [
        id * 2.0,
        (id * k.i1 - k.c) * 2.0,
        k.c_inv * k.j,
        fibres[0] * fibres[0].transpose() * 2.0,
        fibres[1] * fibres[1].transpose() * 2.0,
    ];
    let mut s = Matrix3::zeros();
    for (ak, wk) in a.iter().zip(&w.g) {
        s += ak * *wk;
    }
    let sv = VOIGT.map(|[i, j]| s[(i, j)]);
    let delta = |i: usize, j: usize| if i == j { 1.0 } else { 0.0 };
    let ci = &k.c_inv;
    // sum_mn W_mn A_m (x) A_n = A^T (W'' A) in Voigt form; `d` is symmetric, so only its
    // upper triangle is computed (and it is then exactly symmetric, which lets the element
    // assemble half of its tangent).
    let av: [[f64; 6]; NV] = a.map(|m| VOIGT.map(|[i, j]| m[(i, j)]));
    let mut hav = [[0.0; 6]; NV];
    for (hm, wm) in hav.iter_mut().zip(&w.h) {
        for (q, hq) in hm.iter_mut().enumerate() {
            *hq = (0..NV).map(|n| wm[n] * av[n][q]).sum();
        }
    }
    let mut d = [[0.0; 6]; 6];
    for (r, &[i, j]) in VOIGT.iter().enumerate() {
        for (q, &[kk, l]) in VOIGT.iter().enumerate().skip(r) {
            let mut v = (0..NV).map(|m| av[m][r] * hav[m][q]).sum::<f64>();
            let sym_id = 0.5 * (delta(i, kk) * delta(j, l) + delta(i, l) * delta(j, kk));
            v += w.g[1] * 4.0 * (delta(i, j) * delta(kk, l) - sym_id);
            let cc = 0.5 * (ci[(i, kk)] * ci[(j, l)] + ci[(i, l)] * ci[(j, kk)]);
            v += w.g[2] * k.j * (ci[(i, j)] * ci[(kk, l)] - 2.0 * cc);
            d[r][q] = v;
            d[q][r] = v;
        }
    }
    (sv, d)
}

/// Rejects non-finite responses (e.g. an overflowing HGO exponential far outside the
/// physiological range) with an error rather than letting NaN reach the solver.
fn finite(
    what: &str,
    element: usize,
    r: ([f64; 6], [[f64; 6]; 6]),
) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
    if r.0
        .iter()
        .chain(r.1.iter().flatten())
        .all(|v| v.is_finite())
    {
        Ok(r)
    } else {
        Err(FemError::InvalidInput(format!(
            "{what}: non-finite stress in element {element} (strain far too large for the model): reduce the load increment"
        )))
    }
}

/// The invariants as `Hd` variables.
fn variables(k: &Kinematics, fibres: &[Vector3<f64>; 2]) -> [Hd; NV] {
    let i4 = |a: &Vector3<f64>| (a.transpose() * k.c * a)[0];
    [
        Hd::var(0, k.i1),
        Hd::var(1, k.i2),
        Hd::var(2, k.j),
        Hd::var(3, i4(&fibres[0])),
        Hd::var(4, i4(&fibres[1])),
    ]
}

/// Picks the entry of a per-element parameter vector (length 1: uniform).
fn pick<'a, T>(v: &'a [T], element: usize, what: &str) -> Result<&'a T, FemError> {
    match v.len() {
        1 => Ok(&v[0]),
        n if element < n => Ok(&v[element]),
        n => Err(FemError::InvalidInput(format!(
            "{what}: no parameters for element {element} ({n} given): give one set per element or one for all"
        ))),
    }
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), FemError> {
    if ok {
        Ok(())
    } else {
        Err(FemError::InvalidInput(msg()))
    }
}

/// Compressible Neo-Hookean material (Bonet & Wood 2008, eq. 6.27; Ogden):
/// `W = mu/2 (I1 - 3) - mu ln J + lambda/2 (ln J)^2`. For small strains it is linear
/// elastic with shear modulus `mu` and Lame constant `lambda`.
#[derive(Clone, Debug)]
pub struct NeoHookean {
    /// `(mu, lambda)` in MPa: one pair (uniform) or one per element.
    pub params: Vec<(f64, f64)>,
}

impl NeoHookean {
    /// Checked constructor: `mu > 0`, `lambda > -2 mu / 3` (positive bulk modulus), finite.
    pub fn new(params: Vec<(f64, f64)>) -> Result<Self, FemError> {
        check(!params.is_empty(), || "Neo-Hookean: no parameters".into())?;
        for (e, &(mu, la)) in params.iter().enumerate() {
            check(
                mu.is_finite() && la.is_finite() && mu > 0.0 && la > -2.0 * mu / 3.0,
                || {
                    format!(
                        "Neo-Hookean entry {e}: need mu > 0 and lambda > -2 mu/3 (got {mu}, {la})"
                    )
                },
            )?;
        }
        Ok(NeoHookean { params })
    }

    /// Uniform material from Young's modulus and Poisson's ratio (small-strain match).
    pub fn from_e_nu(e: f64, nu: f64) -> Result<Self, FemError> {
        check(e > 0.0 && nu > -1.0 && nu < 0.5, || {
            format!("Neo-Hookean: need E > 0 and -1 < nu < 0.5 (got {e}, {nu})")
        })?;
        let mu = e / (2.0 * (1.0 + nu));
        let la = e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
        Self::new(vec![(mu, la)])
    }

    fn w(&self, element: usize, k: &Kinematics) -> Result<Hd, FemError> {
        let &(mu, la) = pick(&self.params, element, "Neo-Hookean")?;
        let x = variables(k, &[Vector3::zeros(); 2]);
        let lnj = x[2].ln();
        Ok((x[0] - 3.0).scale(0.5 * mu) - lnj.scale(mu) + lnj.sq().scale(0.5 * la))
    }
}

impl SolidMaterial for NeoHookean {
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        let k = kinematics(f, element)?;
        let w = self.w(element, &k)?;
        finite(
            "Neo-Hookean",
            element,
            invariant_response(&k, [Vector3::zeros(); 2], &w),
        )
    }
    fn energy(&self, element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let k = kinematics(f, element).ok()?;
        self.w(element, &k).ok().map(|w| w.v)
    }

    /// `*HYPERELASTIC, NEO HOOKE` with `C10 = mu / 2`, `D1 = 2 / K`, `K = lambda + 2 mu / 3`:
    /// Abaqus' form `C10 (I1bar - 3) + (J - 1)^2 / D1` has the same small-strain shear and
    /// bulk moduli but a different volumetric and deviatoric split, so it is an
    /// approximation (exact in the small-strain limit), stated in the returned note.
    fn inp_law(&self, element: usize) -> Option<crate::inp::WrittenLaw> {
        let &(mu, la) = pick(&self.params, element, "").ok()?;
        let bulk = la + 2.0 * mu / 3.0;
        Some(crate::inp::WrittenLaw {
            law: crate::inp::InpLaw::Hyperelastic(crate::inp::Hyperelastic::NeoHooke {
                c10: 0.5 * mu,
                d1: 2.0 / bulk,
            }),
            approximation: Some(format!("compressible Neo-Hookean (mu = {mu}, lambda = {la}, W = mu/2 (I1 - 3) - mu ln J + lambda/2 (ln J)^2) written as Abaqus NEO HOOKE C10 (I1bar - 3) + (J - 1)^2 / D1 with the same small-strain moduli (C10 = mu/2, D1 = 2/K): equal at small strain, not at large")),
        })
    }
}

/// Parameters of [`MooneyRivlin`] (MPa).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MooneyRivlinParams {
    /// `C10`.
    pub c10: f64,
    /// `C01`.
    pub c01: f64,
    /// Bulk modulus `K` (Abaqus `D1 = 2 / K`).
    pub bulk: f64,
}

/// Decoupled Mooney-Rivlin material with a quadratic volumetric penalty:
/// `W = C10 (I1_bar - 3) + C01 (I2_bar - 3) + K/2 (J - 1)^2`, with the isochoric invariants
/// `I1_bar = J^(-2/3) I1`, `I2_bar = J^(-4/3) I2`. This is Abaqus' `*HYPERELASTIC,
/// MOONEY-RIVLIN` with `U = (J - 1)^2 / D1`, i.e. `D1 = 2 / K`. Small-strain shear modulus
/// `mu = 2 (C10 + C01)`. A nearly incompressible nucleus pulposus is a large `K / mu`.
#[derive(Clone, Debug)]
pub struct MooneyRivlin {
    /// One set (uniform) or one per element.
    pub params: Vec<MooneyRivlinParams>,
}

impl MooneyRivlin {
    /// Checked constructor: finite `C10`, `C01` with `mu = 2 (C10 + C01) > 0`, and `K > 0`.
    pub fn new(params: Vec<MooneyRivlinParams>) -> Result<Self, FemError> {
        check(!params.is_empty(), || "Mooney-Rivlin: no parameters".into())?;
        for (e, p) in params.iter().enumerate() {
            check(
                p.c10.is_finite() && p.c01.is_finite() && p.c10 + p.c01 > 0.0 && p.bulk > 0.0,
                || format!("Mooney-Rivlin entry {e}: need C10 + C01 > 0 and K > 0 (got {p:?})"),
            )?;
        }
        Ok(MooneyRivlin { params })
    }

    /// Uniform material from Abaqus' `C10, C01, D1` (`K = 2 / D1`).
    pub fn from_abaqus(c10: f64, c01: f64, d1: f64) -> Result<Self, FemError> {
        check(d1 > 0.0, || {
            format!("Mooney-Rivlin: D1 must be > 0 (got {d1})")
        })?;
        Self::new(vec![MooneyRivlinParams {
            c10,
            c01,
            bulk: 2.0 / d1,
        }])
    }

    fn w(&self, element: usize, k: &Kinematics) -> Result<Hd, FemError> {
        let p = pick(&self.params, element, "Mooney-Rivlin")?;
        let x = variables(k, &[Vector3::zeros(); 2]);
        let i1b = x[0] * x[2].powf(-2.0 / 3.0);
        let i2b = x[1] * x[2].powf(-4.0 / 3.0);
        Ok((i1b - 3.0).scale(p.c10)
            + (i2b - 3.0).scale(p.c01)
            + (x[2] - 1.0).sq().scale(0.5 * p.bulk))
    }
}

impl SolidMaterial for MooneyRivlin {
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        let k = kinematics(f, element)?;
        let w = self.w(element, &k)?;
        finite(
            "Mooney-Rivlin",
            element,
            invariant_response(&k, [Vector3::zeros(); 2], &w),
        )
    }
    fn energy(&self, element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let k = kinematics(f, element).ok()?;
        self.w(element, &k).ok().map(|w| w.v)
    }

    /// `*HYPERELASTIC, MOONEY-RIVLIN` `C10, C01, D1 = 2 / K`: the same law. Exact.
    fn inp_law(&self, element: usize) -> Option<crate::inp::WrittenLaw> {
        let p = pick(&self.params, element, "").ok()?;
        Some(crate::inp::WrittenLaw::exact(
            crate::inp::InpLaw::Hyperelastic(crate::inp::Hyperelastic::MooneyRivlin {
                c10: p.c10,
                c01: p.c01,
                d1: 2.0 / p.bulk,
            }),
        ))
    }
}

/// Parameters of [`Hgo`] (MPa, except the dimensionless `k2` and `kappa`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HgoParams {
    /// Matrix `C10` (neo-Hookean, `mu = 2 C10`).
    pub c10: f64,
    /// Bulk modulus `K` of the penalty `K/2 (J - 1)^2`.
    pub bulk: f64,
    /// Fibre stiffness `k1` (MPa).
    pub k1: f64,
    /// Fibre exponential coefficient `k2`.
    pub k2: f64,
    /// Dispersion `kappa` in `[0, 1/3]` (0: aligned fibres, 1/3: isotropic).
    pub kappa: f64,
}

/// Holzapfel-Gasser-Ogden fibre-reinforced material with two fibre families and
/// dispersion (Gasser, Ogden & Holzapfel 2006, J. R. Soc. Interface 3:15; Abaqus'
/// `*ANISOTROPIC HYPERELASTIC, HOLZAPFEL`):
/// `W = C10 (I1_bar - 3) + K/2 (J - 1)^2 + sum_(i=4,6) k1/(2 k2) (exp(k2 <E_i>^2) - 1)`,
/// `E_i = kappa (I1_bar - 3) + (1 - 3 kappa) (I_i_bar - 1)`, with the isochoric invariants
/// `I1_bar = J^(-2/3) I1`, `I4_bar = J^(-2/3) a1 . C a1` and the Macaulay bracket `<x>`:
/// a family carries load only in tension, `E_i > 0`, i.e. `I*_i = kappa I1_bar + (1 - 3
/// kappa) I_i_bar > 1`. The volumetric term is `K/2 (J - 1)^2` (Abaqus' HGO uses
/// `((J^2 - 1)/2 - ln J) / D`, which agrees to second order at `J = 1` with `K = 2 / D`).
///
/// Annulus fibrosus example (Gruber et al. 2024, as calibrated there): `C10 = 0.1351`,
/// `k1 = 3.73`, `k2 = 89.57`, `kappa = 0.0752`.
///
/// # Fibre invariants
///
/// By default the fibre term uses the isochoric invariants above (the HGO-C form of Abaqus
/// and most codes). For a nearly incompressible material the choice does not matter. For
/// a compressible one it does: the isochoric invariants do not see the volumetric part of
/// a fibre stretch, so a fibre can be lengthened by a volume increase at the cost of the
/// (soft) bulk term only (Nolan, Gower, Destrade, Ogden & McGarry 2014, J Mech Behav
/// Biomed Mater 39:48, "A robust anisotropic hyperelastic formulation for the modelling of
/// soft tissue": a sphere under hydrostatic tension stays a sphere, and uniaxial fibre
/// stretch is carried partly by dilatation). [`FibreInvariants::Full`] is their modified
/// anisotropic (MA) model: `E_i = kappa (I1 - 3) + (1 - 3 kappa) (I_i - 1)` with the full
/// invariants `I1 = tr C`, `I4 = a1 . C a1`.
#[derive(Clone, Debug)]
pub struct Hgo {
    /// One set (uniform) or one per element.
    pub params: Vec<HgoParams>,
    /// Unit fibre directions `[a1, a2]` in the reference configuration: one pair (uniform)
    /// or one per element.
    pub fibres: Vec<[[f64; 3]; 2]>,
    /// Which invariants the fibre term uses (default isochoric, HGO-C).
    pub fibre_invariants: FibreInvariants,
}

/// The invariants the fibre term of [`Hgo`] is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FibreInvariants {
    /// `I1_bar`, `I4_bar` (HGO-C; Abaqus' `*ANISOTROPIC HYPERELASTIC, HOLZAPFEL`).
    #[default]
    Isochoric,
    /// `I1`, `I4` (the modified anisotropic model of Nolan et al. 2014).
    Full,
}

impl Hgo {
    /// Checked constructor. Fibre directions are normalised; zero vectors are errors.
    pub fn new(params: Vec<HgoParams>, fibres: Vec<[[f64; 3]; 2]>) -> Result<Self, FemError> {
        check(!params.is_empty() && !fibres.is_empty(), || {
            "HGO: give at least one parameter set and one fibre pair".into()
        })?;
        for (e, p) in params.iter().enumerate() {
            let ok = [p.c10, p.bulk, p.k1, p.k2, p.kappa]
                .iter()
                .all(|v| v.is_finite())
                && p.c10 > 0.0
                && p.bulk > 0.0
                && p.k1 >= 0.0
                && p.k2 > 0.0
                && (0.0..=1.0 / 3.0).contains(&p.kappa);
            check(ok, || {
                format!(
                    "HGO entry {e}: need C10, K, k2 > 0, k1 >= 0, 0 <= kappa <= 1/3 (got {p:?})"
                )
            })?;
        }
        let mut unit = Vec::with_capacity(fibres.len());
        for (e, pair) in fibres.iter().enumerate() {
            let mut out = [[0.0; 3]; 2];
            for (o, a) in out.iter_mut().zip(pair) {
                let v = Vector3::from(*a);
                let n = v.norm();
                check(n.is_finite() && n > 1e-12, || {
                    format!("HGO fibre entry {e}: direction {a:?} is zero or not finite")
                })?;
                *o = (v / n).into();
            }
            unit.push(out);
        }
        Ok(Hgo {
            params,
            fibres: unit,
            fibre_invariants: FibreInvariants::Isochoric,
        })
    }

    /// The same material with the fibre term in the given invariants.
    pub fn with_fibre_invariants(mut self, which: FibreInvariants) -> Self {
        self.fibre_invariants = which;
        self
    }

    fn w(&self, element: usize, k: &Kinematics) -> Result<(Hd, [Vector3<f64>; 2]), FemError> {
        let p = pick(&self.params, element, "HGO")?;
        let a = pick(&self.fibres, element, "HGO fibres")?;
        let a = [Vector3::from(a[0]), Vector3::from(a[1])];
        let x = variables(k, &a);
        let jm23 = x[2].powf(-2.0 / 3.0);
        let i1b = x[0] * jm23;
        let mut w = (i1b - 3.0).scale(p.c10) + (x[2] - 1.0).sq().scale(0.5 * p.bulk);
        let (i1f, jf) = match self.fibre_invariants {
            FibreInvariants::Isochoric => (i1b, jm23),
            FibreInvariants::Full => (x[0], Hd::c(1.0)),
        };
        for xi in [x[3], x[4]] {
            let ei = (i1f - 3.0).scale(p.kappa) + (xi * jf - 1.0).scale(1.0 - 3.0 * p.kappa);
            // Macaulay bracket: compressed fibres carry nothing (W, S continuous at 0).
            if ei.v > 0.0 {
                w = w + ((ei.sq().scale(p.k2)).exp() - 1.0).scale(p.k1 / (2.0 * p.k2));
            }
        }
        Ok((w, a))
    }
}

impl SolidMaterial for Hgo {
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        let k = kinematics(f, element)?;
        let (w, a) = self.w(element, &k)?;
        finite("HGO", element, invariant_response(&k, a, &w))
    }
    fn energy(&self, element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let k = kinematics(f, element).ok()?;
        self.w(element, &k).ok().map(|w| w.0.v)
    }

    /// CalculiX's built-in user material `ELASTIC_FIBER`
    /// (`C10 (I1bar - 3) + (J - 1)^2 / D1 + sum k1/(2 k2) (exp(k2 (I4bar - 1)^2) - 1)`, a
    /// fibre loaded only when `I4bar > 1`): this material with isochoric fibre invariants
    /// and `kappa = 0`, `D1 = 2 / K`. Exact then. A dispersion `kappa > 0` or the full
    /// fibre invariants ([`FibreInvariants::Full`]) have no `ELASTIC_FIBER` form: the law is
    /// written with `kappa = 0` and isochoric invariants, and the returned note says what
    /// was dropped.
    fn inp_law(&self, element: usize) -> Option<crate::inp::WrittenLaw> {
        let p = pick(&self.params, element, "").ok()?;
        let a = pick(&self.fibres, element, "").ok()?;
        let mut notes = Vec::new();
        if p.kappa != 0.0 {
            notes.push(format!("HGO dispersion kappa = {} dropped (written as kappa = 0: ELASTIC_FIBER has no fibre dispersion)", p.kappa));
        }
        if self.fibre_invariants == FibreInvariants::Full {
            notes.push("HGO full fibre invariants (I1, I4) written with the isochoric ones (I1bar, I4bar) of ELASTIC_FIBER".to_string());
        }
        Some(crate::inp::WrittenLaw {
            law: crate::inp::InpLaw::ElasticFiber(crate::inp::ElasticFiber {
                c10: p.c10,
                d1: 2.0 / p.bulk,
                fibres: a
                    .iter()
                    .map(|&direction| crate::inp::Fibre {
                        direction,
                        k1: p.k1,
                        k2: p.k2,
                    })
                    .collect(),
            }),
            approximation: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}

/// Transversely isotropic elastic constants (MPa). Local axis 3 is the symmetry axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransIsoParams {
    /// Young's modulus along the axis.
    pub e_axial: f64,
    /// Young's modulus in the transverse plane.
    pub e_transverse: f64,
    /// Poisson's ratio in the transverse plane (`nu_tt`; `G_tt = E_t / (2 (1 + nu_tt))`).
    pub nu_transverse: f64,
    /// Poisson's ratio `nu_at`: transverse contraction under axial stress,
    /// `eps_t = -nu_at sigma_a / E_a`.
    pub nu_axial: f64,
    /// Shear modulus in planes containing the axis.
    pub g_axial: f64,
}

/// Transversely isotropic linear elastic material in St Venant-Kirchhoff form
/// (`S = D E`, small strains, large rotations), e.g. for cortical bone with the axis along
/// the osteons. `D` is the inverse of the compliance
/// `[1/Et, -nu_tt/Et, -nu_at/Ea; -nu_tt/Et, 1/Et, -nu_at/Ea; -nu_at/Ea, -nu_at/Ea, 1/Ea]`,
/// shear `1/G_tt, 1/G_at, 1/G_at` (local axis 3 = the symmetry axis), rotated to the
/// global frame for each element.
#[derive(Clone, Debug)]
pub struct TransverselyIsotropic {
    /// The elasticity matrix (Voigt, engineering shear) of each element, or one for all.
    pub d: Vec<[[f64; 6]; 6]>,
}

impl TransverselyIsotropic {
    /// From constants and unit axes: each is one entry (uniform) or one per element (when
    /// both are per element they must have the same length). Errors when the compliance is
    /// not positive definite or an axis is zero.
    pub fn new(params: &[TransIsoParams], axes: &[[f64; 3]]) -> Result<Self, FemError> {
        check(!params.is_empty() && !axes.is_empty(), || {
            "transversely isotropic: give parameters and axes".into()
        })?;
        let n = params.len().max(axes.len());
        check(
            (params.len() == 1 || params.len() == n) && (axes.len() == 1 || axes.len() == n),
            || {
                format!(
                    "transversely isotropic: {} parameter sets and {} axes",
                    params.len(),
                    axes.len()
                )
            },
        )?;
        let mut d = Vec::with_capacity(n);
        for e in 0..n {
            d.push(trans_iso_d(
                params[e.min(params.len() - 1)],
                axes[e.min(axes.len() - 1)],
                e,
            )?);
        }
        Ok(TransverselyIsotropic { d })
    }
}

fn trans_iso_d(p: TransIsoParams, axis: [f64; 3], e: usize) -> Result<[[f64; 6]; 6], FemError> {
    let bad = |m: String| FemError::InvalidInput(format!("transversely isotropic entry {e}: {m}"));
    let TransIsoParams {
        e_axial: ea,
        e_transverse: et,
        nu_transverse: ntt,
        nu_axial: nat,
        g_axial: ga,
    } = p;
    if !(ea > 0.0 && et > 0.0 && ga > 0.0 && ntt > -1.0 && ntt < 1.0 && nat.is_finite()) {
        return Err(bad(format!(
            "need E_a, E_t, G_a > 0 and -1 < nu_tt < 1 (got {p:?})"
        )));
    }
    let gt = et / (2.0 * (1.0 + ntt));
    let mut s = nalgebra::SMatrix::<f64, 6, 6>::zeros();
    s[(0, 0)] = 1.0 / et;
    s[(1, 1)] = 1.0 / et;
    s[(2, 2)] = 1.0 / ea;
    s[(0, 1)] = -ntt / et;
    s[(1, 0)] = -ntt / et;
    for i in 0..2 {
        s[(i, 2)] = -nat / ea;
        s[(2, i)] = -nat / ea;
    }
    s[(3, 3)] = 1.0 / gt; // 12: transverse plane
    s[(4, 4)] = 1.0 / ga; // 13
    s[(5, 5)] = 1.0 / ga; // 23
    let chol = s
        .cholesky()
        .ok_or_else(|| bad(format!("the compliance is not positive definite ({p:?})")))?;
    let dl = chol.inverse();
    // Local frame: e3 = axis, e1, e2 any orthonormal completion (transverse isotropy).
    let a = Vector3::from(axis);
    let norm = a.norm();
    if !(norm.is_finite() && norm > 1e-12) {
        return Err(bad(format!("axis {axis:?} is zero or not finite")));
    }
    let e3 = a / norm;
    let helper = if e3.x.abs() < 0.9 {
        Vector3::x()
    } else {
        Vector3::y()
    };
    let e1 = helper.cross(&e3).normalize();
    let e2 = e3.cross(&e1);
    let q = Matrix3::from_columns(&[e1, e2, e3]); // q[(i, I)]: global i of local axis I
                                                  // D_ijkl = Q_iI Q_jJ Q_kK Q_lL D_IJKL, with tensor entries = Voigt entries (engineering
                                                  // shear strains make the tensor and Voigt values coincide for dS/dE).
    let voigt_of = |i: usize, j: usize| {
        VOIGT
            .iter()
            .position(|&[a, b]| (a == i && b == j) || (a == j && b == i))
            .unwrap_or(0)
    };
    let mut d = [[0.0; 6]; 6];
    for (r, &[i, j]) in VOIGT.iter().enumerate() {
        for (c, &[k, l]) in VOIGT.iter().enumerate() {
            let mut v = 0.0;
            for ii in 0..3 {
                for jj in 0..3 {
                    let qij = q[(i, ii)] * q[(j, jj)];
                    if qij == 0.0 {
                        continue;
                    }
                    let rr = voigt_of(ii, jj);
                    for kk in 0..3 {
                        for ll in 0..3 {
                            v += qij * q[(k, kk)] * q[(l, ll)] * dl[(rr, voigt_of(kk, ll))];
                        }
                    }
                }
            }
            d[r][c] = v;
        }
    }
    Ok(d)
}

impl SolidMaterial for TransverselyIsotropic {
    fn pk2(&self, element: usize, f: &Matrix3<f64>) -> Result<([f64; 6], [[f64; 6]; 6]), FemError> {
        let d = *pick(&self.d, element, "transversely isotropic")?;
        let e = green_lagrange_voigt(f);
        let s = std::array::from_fn(|r| (0..6).map(|c| d[r][c] * e[c]).sum());
        Ok((s, d))
    }
    fn energy(&self, element: usize, f: &Matrix3<f64>) -> Option<f64> {
        let d = pick(&self.d, element, "").ok()?;
        let e = green_lagrange_voigt(f);
        Some(
            0.5 * (0..6)
                .map(|r| e[r] * (0..6).map(|c| d[r][c] * e[c]).sum::<f64>())
                .sum::<f64>(),
        )
    }

    /// `*ELASTIC, TYPE=ANISO` with the 21 constants of the element's (global-frame) `D`
    /// ([`crate::inp::aniso_constants`]): CalculiX solves it as `S = D E` under NLGEOM, as
    /// this material does. Exact.
    fn inp_law(&self, element: usize) -> Option<crate::inp::WrittenLaw> {
        let d = pick(&self.d, element, "").ok()?;
        Some(crate::inp::WrittenLaw::exact(crate::inp::InpLaw::Aniso(
            crate::inp::aniso_constants(d),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continuum::cauchy_from_pk2;
    use nalgebra::{Rotation3, SymmetricEigen};

    /// Symmetric square root of an SPD matrix: a deformation gradient with `F^T F = c`.
    fn sqrtm(c: &Matrix3<f64>) -> Matrix3<f64> {
        let e = SymmetricEigen::new(*c);
        e.eigenvectors
            * Matrix3::from_diagonal(&e.eigenvalues.map(f64::sqrt))
            * e.eigenvectors.transpose()
    }

    /// Worst relative errors of S against dW/dE and of dS/dE against central differences of
    /// S, perturbing E (through C) one Voigt component at a time.
    fn fd_errors(m: &dyn SolidMaterial, f: &Matrix3<f64>) -> (f64, f64) {
        let (s, d) = m.pk2(0, f).unwrap();
        let c = f.transpose() * f;
        let h = 1e-6;
        let out = fd_inner(m, f, &s, &d, &c, h);
        println!("FD errors: S {:.1e}, dS/dE {:.1e}", out.0, out.1);
        out
    }

    fn fd_inner(
        m: &dyn SolidMaterial,
        f: &Matrix3<f64>,
        s: &[f64; 6],
        d: &[[f64; 6]; 6],
        c: &Matrix3<f64>,
        h: f64,
    ) -> (f64, f64) {
        let _ = f;
        let smax = s.iter().fold(1e-12f64, |a, v| a.max(v.abs()));
        let dmax = d.iter().flatten().fold(1e-12f64, |a, v| a.max(v.abs()));
        let (mut es, mut ed) = (0.0f64, 0.0f64);
        for (q, &[i, j]) in VOIGT.iter().enumerate() {
            // dE_voigt = h e_q: the tensor entries change by h (normal) or h/2 (shear).
            let mut de = Matrix3::zeros();
            let v = if i == j { h } else { 0.5 * h };
            de[(i, j)] = v;
            de[(j, i)] = v;
            let fp = sqrtm(&(c + de * 2.0));
            let fm = sqrtm(&(c - de * 2.0));
            let wfd = (m.energy(0, &fp).unwrap() - m.energy(0, &fm).unwrap()) / (2.0 * h);
            es = es.max((wfd - s[q]).abs() / smax);
            let (sp, _) = m.pk2(0, &fp).unwrap();
            let (sm, _) = m.pk2(0, &fm).unwrap();
            for r in 0..6 {
                ed = ed.max(((sp[r] - sm[r]) / (2.0 * h) - d[r][q]).abs() / dmax);
            }
        }
        (es, ed)
    }

    /// Zero stress and energy at F = I; rotated F gives the same S and a rotated Cauchy
    /// stress.
    fn check_reference_and_objectivity(m: &dyn SolidMaterial, f: &Matrix3<f64>) {
        let (s0, _) = m.pk2(0, &Matrix3::identity()).unwrap();
        assert!(
            s0.iter().all(|v| v.abs() < 1e-12),
            "stress at F = I: {s0:?}"
        );
        assert!(m.energy(0, &Matrix3::identity()).unwrap().abs() < 1e-12);
        let rot = Rotation3::from_euler_angles(0.7, -0.4, 1.9).into_inner();
        let (s, _) = m.pk2(0, f).unwrap();
        let (sr, _) = m.pk2(0, &(rot * f)).unwrap();
        let sig = crate::continuum::voigt_to_matrix(&cauchy_from_pk2(f, &s));
        let sigr = crate::continuum::voigt_to_matrix(&cauchy_from_pk2(&(rot * f), &sr));
        let scale = s.iter().fold(1e-12f64, |a, v| a.max(v.abs()));
        for q in 0..6 {
            assert!((s[q] - sr[q]).abs() < 1e-10 * scale, "PK2 not invariant");
        }
        assert!((rot * sig * rot.transpose() - sigr).amax() < 1e-10 * scale);
        let w = m.energy(0, f).unwrap();
        assert!((m.energy(0, &(rot * f)).unwrap() - w).abs() < 1e-12 * w.abs().max(1.0));
    }

    fn test_fs() -> Vec<Matrix3<f64>> {
        vec![
            Matrix3::new(1.12, 0.08, -0.05, 0.03, 0.93, 0.11, -0.07, 0.02, 1.05),
            Matrix3::new(0.85, -0.2, 0.1, 0.15, 1.2, 0.05, 0.0, -0.1, 0.95),
            Matrix3::new(1.3, 0.4, 0.0, 0.0, 0.9, 0.2, 0.1, 0.0, 0.8),
        ]
    }

    /// The small-strain tangent must be the isotropic elasticity with `mu`, `K`.
    fn check_isotropic_limit(m: &dyn SolidMaterial, mu: f64, bulk: f64) {
        let (_, d) = m.pk2(0, &Matrix3::identity()).unwrap();
        let la = bulk - 2.0 * mu / 3.0;
        let e = 9.0 * bulk * mu / (3.0 * bulk + mu);
        let nu = la / (2.0 * (la + mu));
        let want = crate::material::elasticity_matrix(e, nu);
        for r in 0..6 {
            for c in 0..6 {
                assert!(
                    (d[r][c] - want[r][c]).abs() < 1e-9 * (la + 2.0 * mu),
                    "D[{r}][{c}]"
                );
            }
        }
    }

    #[test]
    fn neo_hookean_fd_reference_objectivity_small_strain() {
        let m = NeoHookean::new(vec![(1.5, 20.0)]).unwrap();
        for f in test_fs() {
            let (es, ed) = fd_errors(&m, &f);
            assert!(es < 1e-7 && ed < 1e-7, "{es:e} {ed:e}");
            check_reference_and_objectivity(&m, &f);
        }
        check_isotropic_limit(&m, 1.5, 20.0 + 1.0);
        assert!(NeoHookean::new(vec![(-1.0, 1.0)]).is_err());
        assert!(NeoHookean::from_e_nu(1.0, 0.5).is_err());
        assert!(m.pk2(3, &Matrix3::identity()).is_ok()); // uniform: any element
        let two = NeoHookean::new(vec![(1.0, 1.0), (2.0, 2.0)]).unwrap();
        assert!(two.pk2(2, &Matrix3::identity()).is_err());
        let inv = Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, -1.0));
        assert!(m.pk2(0, &inv).is_err());
    }

    #[test]
    fn mooney_rivlin_fd_reference_objectivity_small_strain() {
        let p = MooneyRivlinParams {
            c10: 0.12,
            c01: 0.03,
            bulk: 5.0,
        };
        let m = MooneyRivlin::new(vec![p]).unwrap();
        for f in test_fs() {
            let (es, ed) = fd_errors(&m, &f);
            assert!(es < 1e-7 && ed < 1e-7, "{es:e} {ed:e}");
            check_reference_and_objectivity(&m, &f);
        }
        check_isotropic_limit(&m, 2.0 * (0.12 + 0.03), 5.0);
        let a = MooneyRivlin::from_abaqus(0.12, 0.03, 0.4).unwrap();
        assert!((a.params[0].bulk - 5.0).abs() < 1e-15);
    }

    fn hgo() -> Hgo {
        // Annulus-like parameters (Gruber et al. 2024) with +-30 deg fibres in the x-z plane.
        let p = HgoParams {
            c10: 0.1351,
            bulk: 10.0,
            k1: 3.73,
            k2: 89.57,
            kappa: 0.0752,
        };
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        Hgo::new(vec![p], vec![[[s, 0.0, c], [-s, 0.0, c]]]).unwrap()
    }

    #[test]
    fn hgo_fd_in_fibre_tension_and_compression_reference_objectivity() {
        let m = hgo();
        let a = m.fibres[0].map(Vector3::from);
        let cases = [
            // Stretch along z: both families in tension.
            Matrix3::new(0.97, 0.02, 0.01, -0.01, 0.98, 0.0, 0.03, 0.01, 1.08),
            // Compression along z: both compressed (matrix only).
            Matrix3::new(1.04, 0.01, 0.0, 0.0, 1.03, 0.02, 0.01, 0.0, 0.92),
            // Shear in x-z: one family stretched, the other compressed.
            Matrix3::new(1.0, 0.0, 0.12, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        ];
        let mut active = Vec::new();
        for f in cases {
            let k = kinematics(&f, 0).unwrap();
            let jm = k.j.powf(-2.0 / 3.0);
            let p = m.params[0];
            let ei = a.map(|ai| {
                p.kappa * (jm * k.i1 - 3.0)
                    + (1.0 - 3.0 * p.kappa) * (jm * (ai.transpose() * k.c * ai)[0] - 1.0)
            });
            active.push(ei.map(|e| e > 0.0));
            let (es, ed) = fd_errors(&m, &f);
            assert!(es < 1e-7 && ed < 1e-7, "{f}: {es:e} {ed:e}");
            check_reference_and_objectivity(&m, &f);
        }
        // The cases cover both, neither and one family in tension.
        assert_eq!(active, vec![[true, true], [false, false], [true, false]]);
        // At F = I the fibres are inactive: the tangent is the matrix' (mu = 2 C10).
        check_isotropic_limit(&m, 2.0 * 0.1351, 10.0);
        assert!(Hgo::new(vec![m.params[0]], vec![[[0.0; 3], [1.0, 0.0, 0.0]]]).is_err());
        // Absurd fibre stretch: an error, not NaN.
        let huge = Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, 4.0));
        assert!(m.pk2(0, &huge).is_err());
        // Per-element fibres: element 1 has its fibres along x, so a z stretch leaves them
        // compressed (less stress than element 0).
        let two = Hgo::new(
            vec![m.params[0]],
            vec![m.fibres[0], [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]],
        )
        .unwrap();
        let fz = Matrix3::from_diagonal(&Vector3::new(0.97, 0.97, 1.08));
        assert!(two.pk2(0, &fz).unwrap().0[2] > 2.0 * two.pk2(1, &fz).unwrap().0[2]);
        assert!(two.pk2(2, &fz).is_err());
    }

    #[test]
    fn hgo_full_fibre_invariants_see_the_volume_change() {
        // Nolan et al. 2014 (J Mech Behav Biomed Mater 39:48), pure dilatation F = l I: the
        // isochoric invariants are those of F = I, so the HGO-C fibres stay inactive and the
        // stress is a pure pressure; with the full invariants I4 = l^2 > 1, the fibres carry
        // load and the stress is anisotropic (a sphere becomes an ellipsoid).
        let iso = hgo();
        let full = hgo().with_fibre_invariants(FibreInvariants::Full);
        assert_eq!(iso.fibre_invariants, FibreInvariants::Isochoric);
        let l = 1.05;
        let f = Matrix3::identity() * l;
        let (si, _) = iso.pk2(0, &f).unwrap();
        let (sf, _) = full.pk2(0, &f).unwrap();
        assert!((si[0] - si[2]).abs() < 1e-12 && (si[0] - si[1]).abs() < 1e-12);
        assert!(si[3..].iter().all(|v| v.abs() < 1e-12));
        // Fibres at +-30 deg from z in the x-z plane: more stress along z than along y.
        assert!(sf[2] > sf[1] + 0.1, "{sf:?}");
        // Exactly the dispersed fibre term on top of the matrix: E = kappa (3 l^2 - 3) +
        // (1 - 3 kappa) (l^2 - 1) for both families; S_fibre = 2 sum W'(E) dE/dC.
        let p = iso.params[0];
        let e = (3.0 * p.kappa + 1.0 - 3.0 * p.kappa) * (l * l - 1.0);
        let dw = p.k1 * e * (p.k2 * e * e).exp();
        let a = full.fibres[0];
        let s_yy = si[1] + 2.0 * 2.0 * dw * p.kappa;
        let s_zz = si[2] + 2.0 * 2.0 * dw * (p.kappa + (1.0 - 3.0 * p.kappa) * a[0][2] * a[0][2]);
        assert!((sf[1] - s_yy).abs() < 1e-9 * s_yy.abs(), "{} {s_yy}", sf[1]);
        assert!((sf[2] - s_zz).abs() < 1e-9 * s_zz.abs(), "{} {s_zz}", sf[2]);
        // Consistent tangent, objectivity and the small-strain limit hold as for HGO-C; at
        // J = 1 the two energies coincide (the stresses differ by the volumetric part of the
        // fibre stress, which HGO-C projects out).
        for f in [
            Matrix3::new(0.97, 0.02, 0.01, -0.01, 0.98, 0.0, 0.03, 0.01, 1.08),
            Matrix3::new(1.04, 0.01, 0.0, 0.0, 1.03, 0.02, 0.01, 0.0, 0.92),
            Matrix3::new(1.0, 0.0, 0.12, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
            f,
        ] {
            let (es, ed) = fd_errors(&full, &f);
            assert!(es < 1e-7 && ed < 1e-7, "{f}: {es:e} {ed:e}");
            check_reference_and_objectivity(&full, &f);
        }
        check_isotropic_limit(&full, 2.0 * 0.1351, 10.0);
        let shear = Matrix3::new(1.0, 0.0, 0.12, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0);
        let (w1, w2) = (
            iso.energy(0, &shear).unwrap(),
            full.energy(0, &shear).unwrap(),
        );
        assert!(w1 > 0.0 && (w1 - w2).abs() < 1e-12 * w1, "{w1} {w2}");
    }

    #[test]
    fn transversely_isotropic_fd_compliance_and_axis_rotation() {
        let p = TransIsoParams {
            e_axial: 17000.0,
            e_transverse: 11500.0,
            nu_transverse: 0.51,
            nu_axial: 0.31,
            g_axial: 3300.0,
        };
        let m = TransverselyIsotropic::new(&[p], &[[0.0, 0.0, 1.0]]).unwrap();
        for f in test_fs() {
            let (es, ed) = fd_errors(&m, &f);
            assert!(es < 1e-8 && ed < 1e-8, "{es:e} {ed:e}");
            check_reference_and_objectivity(&m, &f);
        }
        // Uniaxial stress along the axis: strain 1/Ea axially, -nu_at/Ea laterally.
        let d = nalgebra::SMatrix::<f64, 6, 6>::from_fn(|r, c| m.d[0][r][c]);
        let comp = d.try_inverse().unwrap();
        assert!((comp[(2, 2)] * p.e_axial - 1.0).abs() < 1e-12);
        assert!((comp[(0, 2)] * p.e_axial + p.nu_axial).abs() < 1e-12);
        assert!((comp[(0, 0)] * p.e_transverse - 1.0).abs() < 1e-12);
        assert!((comp[(0, 1)] * p.e_transverse + p.nu_transverse).abs() < 1e-12);
        assert!((comp[(4, 4)] * p.g_axial - 1.0).abs() < 1e-12);
        // Axis along x: the x entries take the axial role.
        let mx = TransverselyIsotropic::new(&[p], &[[2.0, 0.0, 0.0]]).unwrap();
        let dx = nalgebra::SMatrix::<f64, 6, 6>::from_fn(|r, c| mx.d[0][r][c]);
        let cx = dx.try_inverse().unwrap();
        assert!((cx[(0, 0)] * p.e_axial - 1.0).abs() < 1e-12);
        assert!((cx[(1, 1)] * p.e_transverse - 1.0).abs() < 1e-12);
        assert!((cx[(1, 0)] * p.e_axial + p.nu_axial).abs() < 1e-12);
        assert!((cx[(3, 3)] * p.g_axial - 1.0).abs() < 1e-12); // xy contains the axis
                                                               // yz is the transverse plane: G_tt = E_t / (2 (1 + nu_tt)).
        let gtt = p.e_transverse / (2.0 * (1.0 + p.nu_transverse));
        assert!((cx[(5, 5)] * gtt - 1.0).abs() < 1e-12);
        // Per-element axes; mismatched lengths are errors.
        let two = TransverselyIsotropic::new(&[p], &[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]).unwrap();
        assert_eq!(two.d.len(), 2);
        assert!(TransverselyIsotropic::new(&[p, p], &[[0.0; 3]; 3]).is_err());
        let bad = TransIsoParams { nu_axial: 0.9, ..p };
        assert!(TransverselyIsotropic::new(&[bad], &[[0.0, 0.0, 1.0]]).is_err());
    }
}
