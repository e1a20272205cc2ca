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

    /// How an Abaqus/CalculiX deck writes this material for element `element`
    /// ([`crate::inp::Deck::from_nl_model`]): the keyword law and, when the deck can only
    /// approximate the material, what is approximated. `None` (the default) when the
    /// material has no deck form; the writer then refuses the model, naming the block.
    fn inp_law(&self, _element: usize) -> Option<crate::inp::WrittenLaw> {
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

    /// `*ELASTIC` (isotropic `E, nu`): CalculiX solves it as St Venant-Kirchhoff under
    /// NLGEOM, as this material does. Exact.
    fn inp_law(&self, element: usize) -> Option<crate::inp::WrittenLaw> {
        let e = *self.linear.youngs.get(element)?;
        let nu = *self.linear.poisson.get(element)?;
        Some(crate::inp::WrittenLaw::exact(crate::inp::InpLaw::Elastic {
            e,
            nu,
        }))
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

/// Whether [`tl_element`] uses F-bar for this kind (the linear hexahedron and wedge, which
/// lock volumetrically with full integration; tets are left as they are).
pub fn uses_fbar(kind: ElementKind) -> bool {
    matches!(kind, ElementKind::Hex8 | ElementKind::Wedge6)
}

/// Total Lagrangian internal force and consistent tangent of element `element` of kind
/// `kind` with reference coordinates `x0` and nodal displacements `u` (one per node).
///
/// Hex8 and Wedge6 use F-bar (de Souza Neto, Peric, Dutko & Owen 1996, Int. J. Solids
/// Struct. 33:3277): at each integration point the material sees
/// `F_bar = (J_c / J)^(1/3) F`, where `J_c = det F` at the element centroid, so the volume
/// change is one value per element (no volumetric locking) while the isochoric part of `F`
/// is kept. Unlike the original paper, whose internal force `int B^T sigma(F_bar) dv` has
/// an unsymmetric tangent, forces here are the exact derivative of the element energy
/// `sum_q w J0 W(F_bar)`, so the tangent is symmetric (the Newton solver factorises with
/// Cholesky) and consistent with the energy used by line searches. With
/// `alpha = (J_c/J)^(1/3)`, `h_ai = (dN_a/dx_i|_c - dN_a/dx_i) / 3` (spatial gradients at
/// the centroid and at the point) and `C_v = Voigt(F^T F)` with doubled shears:
/// `dE_bar/du_ai = alpha^2 (B_ai + h_ai C_v)`,
/// `d h_ai / d u_bj = (g_aj g_bi - g^c_aj g^c_bi) / 3`.
/// Linearised, this is the B-bar hexahedron with centroid dilatation. Like it, a single
/// element layer in bending is too flexible (measured: 35 % at K/mu = 10 for a 10 x 1 x 1
/// cantilever) and the deviatoric part still shear-locks slightly: use two or more layers.
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
    tl_element_with(kind, x0, u, material, element, uses_fbar(kind))
}

/// [`tl_element`] with F-bar switched on or off explicitly (`fbar = false`: plain full
/// integration, which locks for nearly incompressible materials with Hex8/Wedge6; useful to
/// compare). F-bar on a Tet4 changes nothing (its `F` is constant).
pub fn tl_element_with(
    kind: ElementKind,
    x0: &[[f64; 3]],
    u: &[[f64; 3]],
    material: &dyn SolidMaterial,
    element: usize,
    fbar: bool,
) -> Result<ElementResponse, FemError> {
    let nd = 3 * kind.num_nodes();
    let mut force = [0.0; MAX_DOF];
    let mut tangent = [0.0; MAX_DOF * MAX_DOF];
    let energy = tl_kernel(
        kind,
        x0,
        u,
        material,
        element,
        fbar,
        &mut force,
        Some(&mut tangent),
        true,
    )?;
    Ok(ElementResponse {
        force: force[..nd].to_vec(),
        tangent: tangent[..nd * nd].to_vec(),
        energy,
    })
}

/// Most nodes of an element kind (Tet10).
pub(crate) const MAX_NODES: usize = 10;
/// Most DOFs of an element.
pub(crate) const MAX_DOF: usize = 3 * MAX_NODES;

/// The computation of [`tl_element_with`] into caller-owned fixed-size buffers (no heap
/// allocation: the Newton solver calls it for every element at every iteration). `force`
/// receives the first `3n` entries, `tangent` (when given) the row-major `3n x 3n` tangent in
/// its first `(3n)^2` entries. Returns the element energy when `energy` is asked for and the
/// material provides it (the solver does not need it, and it costs a second material
/// evaluation per point).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tl_kernel(
    kind: ElementKind,
    x0: &[[f64; 3]],
    u: &[[f64; 3]],
    material: &dyn SolidMaterial,
    element: usize,
    fbar: bool,
    force: &mut [f64; MAX_DOF],
    mut tangent: Option<&mut [f64; MAX_DOF * MAX_DOF]>,
    energy: bool,
) -> Result<Option<f64>, FemError> {
    let n = kind.num_nodes();
    let ndof = 3 * n;
    if x0.len() < n || u.len() < n {
        return Err(FemError::InvalidInput(format!(
            "element {element} ({kind:?}): {} coordinates and {} displacements for {n} nodes",
            x0.len(),
            u.len()
        )));
    }
    force[..ndof].fill(0.0);
    if let Some(t) = tangent.as_deref_mut() {
        t[..ndof * ndof].fill(0.0);
    }
    let mut energy = energy.then_some(0.0);
    let inverted = |det_j: f64| FemError::InvertedElement { element, det_j };
    let grad = |dn: &[[f64; 3]]| {
        let mut f = Matrix3::identity();
        for (ua, da) in u.iter().zip(dn) {
            for i in 0..3 {
                for k in 0..3 {
                    f[(i, k)] += ua[i] * da[k];
                }
            }
        }
        f
    };
    // Spatial gradients g_ai = dN_a/dX_k F^-1_ki.
    let spatial = |dn: &[[f64; 3]], finv: &Matrix3<f64>| -> [[f64; 3]; MAX_NODES] {
        let mut g = [[0.0; 3]; MAX_NODES];
        for (ga, d) in g.iter_mut().zip(dn) {
            *ga = std::array::from_fn(|i| (0..3).map(|k| d[k] * finv[(k, i)]).sum());
        }
        g
    };
    // Centroid volume change and spatial gradients (F-bar only).
    let centre = if fbar {
        let g = point_geometry(kind, &x0[..n], kind.centroid()).ok_or(inverted(0.0))?;
        let fc = grad(&g.dndx[..n]);
        let jc = fc.determinant();
        let fc_inv = fc.try_inverse().filter(|_| jc > 0.0).ok_or(inverted(jc))?;
        Some((jc, spatial(&g.dndx[..n], &fc_inv)))
    } else {
        None
    };
    let dot = |a: &[f64; 6], b: &[f64; 6]| (0..6).map(|q| a[q] * b[q]).sum::<f64>();
    for &(p, w) in kind.quadrature() {
        let g = point_geometry(kind, &x0[..n], p).ok_or(inverted(0.0))?;
        if g.det_j <= 0.0 {
            return Err(inverted(g.det_j));
        }
        let dn = &g.dndx[..n];
        let f = grad(dn);
        let det_f = f.determinant();
        if det_f <= 0.0 {
            return Err(inverted(det_f));
        }
        // F-bar factors: alpha^2, h (per DOF), spatial gradients here (gs).
        let mut h = [0.0; MAX_DOF];
        let mut gs = [[0.0; 3]; MAX_NODES];
        let (alpha2, fmat) = match &centre {
            Some((jc, gc)) => {
                let alpha = (jc / det_f).cbrt();
                let finv = f.try_inverse().ok_or(inverted(det_f))?;
                gs = spatial(dn, &finv);
                for (d, hd) in h[..ndof].iter_mut().enumerate() {
                    *hd = (gc[d / 3][d % 3] - gs[d / 3][d % 3]) / 3.0;
                }
                (alpha * alpha, f * alpha)
            }
            None => (1.0, f),
        };
        let (s, c) = material.pk2(element, &fmat)?;
        let wj = w * g.det_j;
        if let Some(acc) = energy {
            energy = material.energy(element, &fmat).map(|psi| acc + wj * psi);
        }
        let cm = f.transpose() * f;
        let cv: [f64; 6] = VOIGT.map(|[j, k]| if j == k { cm[(j, k)] } else { 2.0 * cm[(j, k)] });
        // B column of DOF (a, i): dE_voigt / du_ai (with the unmodified F), and
        // dE_bar / du_d.
        let mut cols = [[0.0; 6]; MAX_DOF];
        let mut bbar = [[0.0; 6]; MAX_DOF];
        for d in 0..ndof {
            let (a, i) = (d / 3, d % 3);
            cols[d] = VOIGT.map(|[j, k]| {
                if j == k {
                    f[(i, j)] * dn[a][j]
                } else {
                    f[(i, j)] * dn[a][k] + f[(i, k)] * dn[a][j]
                }
            });
            bbar[d] = std::array::from_fn(|q| alpha2 * (cols[d][q] + h[d] * cv[q]));
            force[d] += wj * dot(&bbar[d], &s);
        }
        let Some(tangent) = tangent.as_deref_mut() else {
            continue;
        };
        let mut sb = [0.0; MAX_DOF];
        // C bbar, stored per Voigt component (6 x ndof) so that the rows of the tangent
        // below are accumulated as multiply-adds over contiguous columns, which the
        // compiler vectorises (entry by entry, the tangent was about a third of the
        // assembly time of the spine twin).
        let mut cbt = [[0.0; MAX_DOF]; 6];
        for d in 0..ndof {
            sb[d] = dot(&cols[d], &s);
            for (r, cr) in cbt.iter_mut().enumerate() {
                cr[d] = (0..6).map(|q| c[r][q] * bbar[d][q]).sum::<f64>();
            }
        }
        let sc = dot(&s, &cv);
        // Material and F-bar part of entry (r, col).
        let entry = |r: usize, col: usize| {
            let mut v = (0..6).map(|q| bbar[r][q] * cbt[q][col]).sum::<f64>();
            if let Some((_, gc)) = &centre {
                let (a, i, b, j) = (r / 3, r % 3, col / 3, col % 3);
                let dh = (gs[a][j] * gs[b][i] - gc[a][j] * gc[b][i]) / 3.0;
                v += alpha2
                    * (2.0 * h[col] * sb[r]
                        + 2.0 * h[r] * sb[col]
                        + (2.0 * h[r] * h[col] + dh) * sc);
            }
            v
        };
        // The element tangent is symmetric when the material tangent is: the upper triangle
        // is accumulated and mirrored after the last point. A non-symmetric material
        // tangent leaves in the lower triangle what the mirror must add to it. Row by row,
        // `entry` is `bbar_r . (C bbar)_col` plus, with F-bar, multiples of `h_col`,
        // `sb_col` and `gs[a][j] gs[b][i] - gc[a][j] gc[b][i]` over the columns `(b, j)`.
        // Per DOF (b, j): gs[b][i] for each i, and gs[a][j] for each a.
        let mut gs_i = [[0.0; MAX_DOF]; 3];
        let mut gc_i = [[0.0; MAX_DOF]; 3];
        let mut gs_a = [[0.0; MAX_DOF]; MAX_NODES];
        let mut gc_a = [[0.0; MAX_DOF]; MAX_NODES];
        if let Some((_, gc)) = &centre {
            for col in 0..ndof {
                let (b, j) = (col / 3, col % 3);
                for i in 0..3 {
                    gs_i[i][col] = gs[b][i];
                    gc_i[i][col] = gc[b][i];
                }
                for a in 0..n {
                    gs_a[a][col] = gs[a][j];
                    gc_a[a][col] = gc[a][j];
                }
            }
        }
        for r in 0..ndof {
            let row = &mut tangent[r * ndof..ndof * (r + 1)];
            let row = &mut row[r..];
            for (q, cq) in cbt.iter().enumerate() {
                let w = wj * bbar[r][q];
                for (t, v) in row.iter_mut().zip(&cq[r..ndof]) {
                    *t += w * v;
                }
            }
            if centre.is_some() {
                let (a, i) = (r / 3, r % 3);
                let c_h = wj * alpha2 * (2.0 * sb[r] + 2.0 * h[r] * sc);
                let c_sb = wj * alpha2 * 2.0 * h[r];
                let c_dh = wj * alpha2 * sc / 3.0;
                let cols = h[r..ndof]
                    .iter()
                    .zip(&sb[r..ndof])
                    .zip(gs_a[a][r..ndof].iter().zip(&gs_i[i][r..ndof]))
                    .zip(gc_a[a][r..ndof].iter().zip(&gc_i[i][r..ndof]));
                for (t, (((hc, sbc), (ga, gb)), (ca, cb))) in row.iter_mut().zip(cols) {
                    *t += c_h * hc + c_sb * sbc + c_dh * (ga * gb - ca * cb);
                }
            }
        }
        if !(0..6).all(|r| (0..r).all(|q| c[r][q] == c[q][r])) {
            for r in 0..ndof {
                for col in 0..r {
                    tangent[r * ndof + col] += wj * (entry(r, col) - entry(col, r));
                }
            }
        }
        // Geometric term alpha^2 delta_ij dN_a . S dN_b (symmetric; upper triangle).
        let sm = voigt_to_matrix(&s);
        for a in 0..n {
            let sa = sm * nalgebra::Vector3::from(dn[a]);
            for b in a..n {
                let gab = wj * alpha2 * (0..3).map(|k| dn[b][k] * sa[k]).sum::<f64>();
                for i in 0..3 {
                    tangent[(3 * a + i) * ndof + 3 * b + i] += gab;
                }
            }
        }
    }
    // Lower triangle = upper triangle + what non-symmetric points left there.
    if let Some(tangent) = tangent {
        for r in 0..ndof {
            for col in 0..r {
                tangent[r * ndof + col] += tangent[col * ndof + r];
            }
        }
    }
    Ok(energy)
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

    /// Worst relative error of the tangent against central differences of the force, and
    /// of the force against central differences of the energy.
    pub(crate) fn fd_check(
        kind: ElementKind,
        x0: &[[f64; 3]],
        u: &[[f64; 3]],
        mat: &dyn SolidMaterial,
    ) -> (f64, f64) {
        let nd = 3 * kind.num_nodes();
        let r = tl_element(kind, x0, u, mat, 0).unwrap();
        let h = 1e-6;
        let kscale = r.tangent.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let fscale = r.force.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let (mut kerr, mut ferr) = (0.0f64, 0.0f64);
        for d in 0..nd {
            let mut up = u.to_vec();
            up[d / 3][d % 3] += h;
            let mut um = u.to_vec();
            um[d / 3][d % 3] -= h;
            let rp = tl_element(kind, x0, &up, mat, 0).unwrap();
            let rm = tl_element(kind, x0, &um, mat, 0).unwrap();
            for r_ in 0..nd {
                let fd = (rp.force[r_] - rm.force[r_]) / (2.0 * h);
                kerr = kerr.max((fd - r.tangent[r_ * nd + d]).abs() / kscale);
            }
            if let (Some(ep), Some(em)) = (rp.energy, rm.energy) {
                ferr = ferr.max(((ep - em) / (2.0 * h) - r.force[d]).abs() / fscale);
            }
        }
        (kerr, ferr)
    }

    /// A distorted unit hexahedron (C3D8 order).
    pub(crate) fn hex8_coords() -> Vec<[f64; 3]> {
        let c = [
            [0.0, 0.0, 0.0],
            [1.1, 0.1, -0.05],
            [1.0, 0.9, 0.1],
            [-0.1, 1.2, 0.0],
            [0.05, -0.1, 1.0],
            [1.2, 0.0, 0.9],
            [0.9, 1.1, 1.1],
            [0.0, 0.95, 1.05],
        ];
        c.to_vec()
    }

    pub(crate) fn some_displacements(n: usize, scale: f64) -> Vec<[f64; 3]> {
        (0..n)
            .map(|a| {
                let a = a as f64;
                [
                    scale * (a * 1.3).sin(),
                    scale * 1.6 * (a * 0.7).cos(),
                    -scale * 0.8 * a / 10.0,
                ]
            })
            .collect()
    }

    #[test]
    fn fbar_hex8_and_wedge6_tangent_and_force_match_finite_differences() {
        let mat = StVenantKirchhoff {
            linear: LinearElastic::uniform(1, 100.0, 0.45).unwrap(),
        };
        let hex = hex8_coords();
        let wedge = vec![hex[0], hex[1], hex[2], hex[4], hex[5], hex[6]];
        for (kind, x0) in [(ElementKind::Hex8, hex), (ElementKind::Wedge6, wedge)] {
            let u = some_displacements(kind.num_nodes(), 0.06);
            let (kerr, ferr) = fd_check(kind, &x0, &u, &mat);
            assert!(kerr < 1e-6 && ferr < 1e-6, "{kind:?}: {kerr:e} {ferr:e}");
            // F-bar leaves a homogeneous deformation unchanged: force = plain TL force
            // (J_c = J everywhere) and it must be zero under rigid rotation.
            let rot = nalgebra::Rotation3::from_euler_angles(0.4, -0.3, 1.1);
            let u: Vec<[f64; 3]> = x0
                .iter()
                .map(|p| {
                    let q = rot * nalgebra::Point3::from(*p);
                    [q.x - p[0] + 3.0, q.y - p[1], q.z - p[2] - 1.0]
                })
                .collect();
            let r = tl_element(kind, &x0, &u, &mat, 0).unwrap();
            let m = r.force.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(m < 1e-10, "{kind:?}: rigid rotation force {m:e}");
        }
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
