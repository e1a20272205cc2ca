//! Follower pressure on solid faces (deformed configuration) with its load stiffness.
//!
//! External nodal force `f_a = p sum_q w_q N_a (x_,u x x_,v)` over the face's natural
//! coordinates (tri3 and tri6 faces of tetrahedra and wedges: 7-point rule; quad4 faces of
//! hexahedra and wedges: 3x3 Gauss); the right-hand normal of the face corner order points into the element, so
//! a positive pressure pushes on the surface. Its derivative
//! `d(x_,u x x_,v) = skew(x_,u) dx_,v - skew(x_,v) dx_,u` gives the (non-symmetric on open
//! surfaces) load stiffness (Bonet & Wood 2008, sec. 8.7).

use super::assemble::Asm;
use super::kin::{skew, DofMap, Pk, State, V3};
use super::Model;
use crate::element::{face_shape, quad9, tri7};
use crate::mesh::Face;
use crate::FemError;

/// Adds the pressure `p` (MPa) on `faces`.
pub(crate) fn pressure(
    model: &Model,
    map: &DofMap,
    st: &State,
    faces: &[Face],
    p: f64,
    asm: &mut Asm,
) -> Result<(), FemError> {
    for &(e, lf) in faces {
        let face = (e < model.mesh.num_elements())
            .then(|| model.mesh.kinds[e].face(lf as usize))
            .flatten();
        let Some(face) = face else {
            return Err(FemError::InvalidInput(format!(
                "pressure face ({e}, {lf}) does not exist"
            )));
        };
        // tri3, tri6 (7-point rule) or quad4 (3x3 Gauss) face.
        let nf = face.len();
        let rule: Vec<([f64; 2], f64)> = if nf == 4 {
            quad9().to_vec()
        } else {
            tri7().to_vec()
        };
        let en = model.mesh.element_nodes(e);
        let pts: Vec<Pk> = face.iter().map(|&l| st.node(model, map, en[l])).collect();
        // Internal-force form: f = -f_ext, k = d f / d x.
        let mut f = vec![V3::zeros(); nf];
        let mut k = vec![0.0; 9 * nf * nf];
        for &(q, w) in &rule {
            let (n, dn) = face_shape(nf, q);
            let mut xu = V3::zeros();
            let mut xv = V3::zeros();
            for a in 0..nf {
                xu += pts[a].x * dn[a][0];
                xv += pts[a].x * dn[a][1];
            }
            let nrm = xu.cross(&xv);
            let (su, sv) = (skew(&xu), skew(&xv));
            for a in 0..nf {
                f[a] -= nrm * (p * w * n[a]);
                for b in 0..nf {
                    let blk = (su * dn[b][1] - sv * dn[b][0]) * (-p * w * n[a]);
                    for i in 0..3 {
                        for j in 0..3 {
                            k[(3 * a + i) * 3 * nf + 3 * b + j] += blk[(i, j)];
                        }
                    }
                }
            }
        }
        let tangent = asm.tangent;
        asm.ext_mode = true;
        asm.add_internal(map, &pts, &f, tangent.then_some(&k[..]));
        asm.ext_mode = false;
    }
    Ok(())
}
