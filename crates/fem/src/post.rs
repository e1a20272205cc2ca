//! Post-processing: strains and stresses at integration points, per-element averages, von
//! Mises and principal stresses.

use nalgebra::{Matrix3, SymmetricEigen};
use rayon::prelude::*;

use crate::element::{point_geometry, strain};
use crate::material::LinearElastic;
use crate::mesh::Mesh;
use crate::FemError;

/// Small-strain results of one element. Voigt order `[xx, yy, zz, xy, xz, yz]`; strains use
/// engineering shear, stresses are Cauchy stresses (MPa).
#[derive(Clone, Debug)]
pub struct ElementResult {
    /// Strain at each integration point of the element's rule.
    pub strain_ip: Vec<[f64; 6]>,
    /// Stress at each integration point.
    pub stress_ip: Vec<[f64; 6]>,
    /// Volume-weighted average strain over the element.
    pub strain: [f64; 6],
    /// Volume-weighted average stress over the element.
    pub stress: [f64; 6],
    /// Von Mises stress of the average stress.
    pub von_mises: f64,
}

/// Strains and stresses of every element (parallel) for nodal displacements `u`.
pub fn element_results(
    mesh: &Mesh,
    material: &LinearElastic,
    u: &[[f64; 3]],
) -> Result<Vec<ElementResult>, FemError> {
    if u.len() != mesh.num_nodes() || material.len() != mesh.num_elements() {
        return Err(FemError::InvalidInput(format!(
            "post-processing: {} displacements for {} nodes, material for {} of {} elements",
            u.len(),
            mesh.num_nodes(),
            material.len(),
            mesh.num_elements()
        )));
    }
    (0..mesh.num_elements())
        .into_par_iter()
        .map(|e| {
            let kind = mesh.kinds[e];
            let x = mesh.element_coords(e);
            let ue: Vec<[f64; 3]> = mesh.element_nodes(e).iter().map(|&n| u[n]).collect();
            let d = material.d_matrix(e);
            let mut r = ElementResult {
                strain_ip: Vec::new(),
                stress_ip: Vec::new(),
                strain: [0.0; 6],
                stress: [0.0; 6],
                von_mises: 0.0,
            };
            let mut vol = 0.0;
            for (p, w) in kind.quadrature() {
                let g = point_geometry(kind, &x, *p).ok_or(FemError::InvertedElement {
                    element: e,
                    det_j: 0.0,
                })?;
                let eps = strain(&g.dndx[..kind.num_nodes()], &ue);
                let sig: [f64; 6] = std::array::from_fn(|i| (0..6).map(|j| d[i][j] * eps[j]).sum());
                let dv = w * g.det_j;
                vol += dv;
                for i in 0..6 {
                    r.strain[i] += eps[i] * dv;
                    r.stress[i] += sig[i] * dv;
                }
                r.strain_ip.push(eps);
                r.stress_ip.push(sig);
            }
            r.strain = r.strain.map(|v| v / vol);
            r.stress = r.stress.map(|v| v / vol);
            r.von_mises = von_mises(&r.stress);
            Ok(r)
        })
        .collect()
}

/// Von Mises equivalent stress of a Voigt stress `[xx, yy, zz, xy, xz, yz]`.
pub fn von_mises(s: &[f64; 6]) -> f64 {
    let [xx, yy, zz, xy, xz, yz] = *s;
    (0.5 * ((xx - yy).powi(2) + (yy - zz).powi(2) + (zz - xx).powi(2))
        + 3.0 * (xy * xy + xz * xz + yz * yz))
        .sqrt()
}

/// Principal stresses of a Voigt stress, sorted descending (`s1 >= s2 >= s3`).
pub fn principal_stresses(s: &[f64; 6]) -> [f64; 3] {
    let [xx, yy, zz, xy, xz, yz] = *s;
    let m = Matrix3::new(xx, xy, xz, xy, yy, yz, xz, yz, zz);
    let ev = SymmetricEigen::new(m).eigenvalues;
    let mut p = [ev[0], ev[1], ev[2]];
    p.sort_by(|a, b| b.total_cmp(a));
    p
}

/// Nodal averages of element stresses: each node gets the volume-weighted mean of the
/// average stress of the elements that contain it (a smoothing for display, not a
/// superconvergent recovery). Nodes in no element get zeros.
pub fn nodal_average_stress(mesh: &Mesh, results: &[ElementResult]) -> Vec<[f64; 6]> {
    let mut acc = vec![[0.0; 6]; mesh.num_nodes()];
    let mut wsum = vec![0.0; mesh.num_nodes()];
    for (e, r) in results.iter().enumerate().take(mesh.num_elements()) {
        let kind = mesh.kinds[e];
        let x = mesh.element_coords(e);
        let vol: f64 = kind
            .quadrature()
            .iter()
            .filter_map(|(p, w)| point_geometry(kind, &x, *p).map(|g| g.det_j * w))
            .sum();
        for &n in mesh.element_nodes(e) {
            for (a, s) in acc[n].iter_mut().zip(&r.stress) {
                *a += vol * s;
            }
            wsum[n] += vol;
        }
    }
    for (a, w) in acc.iter_mut().zip(&wsum) {
        if *w > 0.0 {
            *a = a.map(|v| v / w);
        }
    }
    acc
}
