//! Boundary conditions (prescribed displacements) and loads.

use std::collections::BTreeMap;

use crate::element::{face_shape, quad9, tri7, ElementKind};
use crate::mesh::{Face, Mesh};
use crate::FemError;

/// Prescribed displacements, per degree of freedom `3 * node + direction` (mm).
///
/// Constrained DOFs are ELIMINATED from the system: the free-free block `K_ff` is
/// factorised and the known values are lifted to the right-hand side,
/// `K_ff u_f = f_f - K_fc u_c`. Prescribing a DOF twice keeps the last value.
#[derive(Clone, Debug, Default)]
pub struct Constraints {
    /// Prescribed value of each constrained DOF.
    pub values: BTreeMap<usize, f64>,
    /// `(node, dir)` of prescriptions with `dir > 2`; reported as an error by the solve.
    pub invalid: Vec<(usize, usize)>,
}

impl Constraints {
    /// No constraints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prescribes displacement `value` in direction `dir` (0 = x, 1 = y, 2 = z) of `node`.
    pub fn prescribe(&mut self, node: usize, dir: usize, value: f64) -> &mut Self {
        if dir < 3 {
            self.values.insert(3 * node + dir, value);
        } else {
            self.invalid.push((node, dir));
        }
        self
    }

    /// Fixes (zero displacement) the directions flagged in `dirs` of every node in `nodes`.
    pub fn fix(&mut self, nodes: &[usize], dirs: [bool; 3]) -> &mut Self {
        for &n in nodes {
            for (d, &on) in dirs.iter().enumerate() {
                if on {
                    self.prescribe(n, d, 0.0);
                }
            }
        }
        self
    }

    /// Prescribes the displacement field `u(x)` on `nodes` in the flagged directions.
    pub fn prescribe_field(
        &mut self,
        mesh: &Mesh,
        nodes: &[usize],
        dirs: [bool; 3],
        u: impl Fn([f64; 3]) -> [f64; 3],
    ) -> &mut Self {
        for &n in nodes {
            let v = u(mesh.nodes[n]);
            for d in 0..3 {
                if dirs[d] {
                    self.prescribe(n, d, v[d]);
                }
            }
        }
        self
    }
}

/// External loads. Units: forces N, pressures and tractions MPa (N/mm^2), body forces
/// N/mm^3.
#[derive(Clone, Debug, Default)]
pub struct Loads {
    /// Concentrated nodal forces `(node, [fx, fy, fz])`.
    pub nodal: Vec<(usize, [f64; 3])>,
    /// Pressures on faces: positive pushes against the surface (along the inward normal).
    pub pressures: Vec<(Vec<Face>, f64)>,
    /// Tractions (force per current area, fixed direction) on faces.
    pub tractions: Vec<(Vec<Face>, [f64; 3])>,
    /// Uniform body force per volume on a list of elements.
    pub body: Vec<(Vec<usize>, [f64; 3])>,
}

impl Loads {
    /// No loads.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a nodal force (N).
    pub fn nodal_force(&mut self, node: usize, f: [f64; 3]) -> &mut Self {
        self.nodal.push((node, f));
        self
    }
    /// Adds a pressure (MPa) on faces.
    pub fn pressure(&mut self, faces: &[Face], p: f64) -> &mut Self {
        self.pressures.push((faces.to_vec(), p));
        self
    }
    /// Adds a traction vector (MPa) on faces.
    pub fn traction(&mut self, faces: &[Face], t: [f64; 3]) -> &mut Self {
        self.tractions.push((faces.to_vec(), t));
        self
    }
    /// Adds a body force (N/mm^3) on elements.
    pub fn body_force(&mut self, elements: &[usize], b: [f64; 3]) -> &mut Self {
        self.body.push((elements.to_vec(), b));
        self
    }

    /// The consistent nodal force vector (length `3 * num_nodes`): `f_a = int N_a t dA`
    /// over faces (7-point triangle rule, 3x3 Gauss on quadrilaterals) and `f_a = int N_a b dV` over elements (the
    /// element's rule, exact for constant `b` on straight-edged elements).
    pub fn assemble(&self, mesh: &Mesh) -> Result<Vec<f64>, FemError> {
        let nn = mesh.num_nodes();
        let ne = mesh.num_elements();
        let mut f = vec![0.0; 3 * nn];
        for &(n, v) in &self.nodal {
            if n >= nn {
                return Err(FemError::InvalidInput(format!(
                    "nodal force on node {n}, but the mesh has {nn} nodes"
                )));
            }
            for d in 0..3 {
                f[3 * n + d] += v[d];
            }
        }
        let check_face = |fc: &Face| -> Result<(), FemError> {
            if fc.0 >= ne || fc.1 as usize >= mesh.kinds[fc.0].num_faces() {
                return Err(FemError::InvalidInput(format!("invalid face {fc:?}")));
            }
            Ok(())
        };
        for (faces, p) in &self.pressures {
            for fc in faces {
                check_face(fc)?;
                face_load(mesh, *fc, &mut f, |_, inward_area_vec| {
                    inward_area_vec.map(|c| c * p)
                });
            }
        }
        for (faces, t) in &self.tractions {
            for fc in faces {
                check_face(fc)?;
                face_load(mesh, *fc, &mut f, |area, _| t.map(|c| c * area));
            }
        }
        for (elems, b) in &self.body {
            for &e in elems {
                if e >= ne {
                    return Err(FemError::InvalidInput(format!(
                        "body force on element {e}, but the mesh has {ne}"
                    )));
                }
                element_body_force(mesh, e, *b, |node, fa| {
                    for d in 0..3 {
                        f[3 * node + d] += fa[d];
                    }
                })?;
            }
        }
        Ok(f)
    }
}

/// Consistent nodal forces `f_a = int N_a b dV` of a uniform body force `b` (N/mm^3) over
/// element `e` in the mesh's (reference) geometry, with the element's own rule (exact for
/// straight-edged elements); `add(node, force)` receives each node's share.
pub(crate) fn element_body_force(
    mesh: &Mesh,
    e: usize,
    b: [f64; 3],
    mut add: impl FnMut(usize, [f64; 3]),
) -> Result<(), FemError> {
    let kind = mesh.kinds[e];
    let x = mesh.element_coords(e);
    let nodes = mesh.element_nodes(e);
    for (p, w) in kind.quadrature() {
        let g = crate::element::point_geometry(kind, &x, *p).ok_or(FemError::InvertedElement {
            element: e,
            det_j: 0.0,
        })?;
        for (a, &node) in nodes.iter().enumerate() {
            let s = g.n[a] * w * g.det_j;
            add(node, b.map(|c| c * s));
        }
    }
    Ok(())
}

/// Integrates a face load. `load(dA, dA_inward_vector)` gives the force on an area element
/// from its scalar area and its inward-oriented area vector.
fn face_load(mesh: &Mesh, (e, lf): Face, f: &mut [f64], load: impl Fn(f64, [f64; 3]) -> [f64; 3]) {
    let kind: ElementKind = mesh.kinds[e];
    let Some(local) = kind.face(lf as usize) else {
        return; // checked by the caller
    };
    let nf = local.len();
    let enodes = mesh.element_nodes(e);
    let fnodes: Vec<usize> = local.iter().map(|&l| enodes[l]).collect();
    // Triangles: 7-point rule; quadrilaterals: 3x3 Gauss.
    let rule: Vec<([f64; 2], f64)> = if nf == 4 {
        quad9().to_vec()
    } else {
        tri7().to_vec()
    };
    for (p, w) in rule {
        let (n, dn) = face_shape(nf, p);
        let mut t1 = [0.0; 3];
        let mut t2 = [0.0; 3];
        for a in 0..nf {
            let x = mesh.nodes[fnodes[a]];
            for d in 0..3 {
                t1[d] += x[d] * dn[a][0];
                t2[d] += x[d] * dn[a][1];
            }
        }
        // The right-hand normal of the face's node order points into the element.
        let c = [
            t1[1] * t2[2] - t1[2] * t2[1],
            t1[2] * t2[0] - t1[0] * t2[2],
            t1[0] * t2[1] - t1[1] * t2[0],
        ];
        let area = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
        let force = load(area * w, c.map(|v| v * w));
        for a in 0..nf {
            for d in 0..3 {
                f[3 * fnodes[a] + d] += n[a] * force[d];
            }
        }
    }
}
