//! Disc materials of the twin (the constitutive laws themselves live in the FE engine).
//!
//! Defaults: annulus fibrosus as a Holzapfel-Gasser-Ogden fibre-reinforced solid with the
//! L4-L5 calibration of Gruber et al. 2024 (Front Bioeng Biotechnol 12:1391957, region A1:
//! C10 0.1351 MPa, k1 3.73 MPa, k2 89.57, kappa 0.0752, fibres about +/-30 deg); nucleus
//! pulposus as a nearly incompressible Mooney-Rivlin solid (Schmidt et al. 2007, quoted
//! there: C10 0.12, C01 0.03 MPa) with a bulk modulus that makes Poisson's ratio 0.4995
//! (bulk modulus 300 MPa, 1000 times the shear modulus).
//!
//! Why 0.4995 and not 0.4999 (bulk 1500 MPa, about that of water): published lumbar models
//! range from an incompressible fluid cavity to nu 0.49 (Ibarz et al. 2013, BioMed Res Int
//! 2013:705185, Table 1 note: nu 0.49 gave similar results, volume change under 0.6 %). The
//! nucleus' bulk modulus sets how many Newton iterations a load increment needs: each
//! linearised step leaves a second-order volume error that the bulk modulus turns into a
//! residual force. Measured on the phantom twin (2026-12-03): 0.4999 -> 0.4995 took the
//! standing case from 110 to 45 Newton iterations and the six 7.5 N m moments from 538 to
//! 404, and moved every row of `spinetwin validate` by at most 0.5 % (standing IDP 0.405
//! -> 0.403 MPa) with no row changing pass/fail; at 0.4995 and 0.5 MPa the nucleus
//! changes volume by 0.17 %. Twin files keep the bulk modulus they were built with.
//!
//! The annulus ground substance is compressible, Poisson's ratio 0.45, within the range of
//! published lumbar models whose fibres are separate springs or rebars (Mooney-Rivlin C10
//! 0.133, C01 0.0333 MPa, D 0.6 MPa^-1, i.e. nu 0.45: BMC Musculoskelet Disord 2024
//! 25:639, Table 1; Neo-Hookean C10 0.315 MPa, D 0.688 MPa^-1, i.e. nu 0.40, after Schmidt
//! et al.: BMC Musculoskelet Disord 2015, doi 10.1186/s12891-015-0686-z, Table 1). With
//! the low C10 of the HGO set that is a bulk modulus of only 2.6 MPa, and then the
//! fibre term must be written in the full invariants `I1`, `I4` (Nolan, Gower, Destrade,
//! Ogden & McGarry 2014, J Mech Behav Biomed Mater 39:48), not in the isochoric ones of
//! the usual compressible HGO form: with isochoric invariants a fibre can be lengthened by
//! a volume increase that only the soft bulk term resists. Measured on the phantom's
//! disc-only L4-L5 at 7.5 N m flexion (docs/validation/twin_phantom.md): with isochoric
//! invariants the posterior outer annulus swelled by 37 % (J 1.37), its fibres stretched by
//! 14 % of which the fibre law saw 2.5 %, and the disc turned 14.6 deg (Heuer 2007: 10.1);
//! with the full invariants J is 1.07, the fibres stretch 5 % and the disc turns 9.6 deg.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spinetwin_fem::continuum::SolidMaterial;
use spinetwin_fem::hyper::{FibreInvariants, Hgo, HgoParams, MooneyRivlin, MooneyRivlinParams};

use crate::error::ModelError;

/// A shared, thread-safe material of the FE engine.
pub type SharedMaterial = Arc<dyn SolidMaterial>;

/// Parameters of the disc materials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscMaterials {
    /// Annulus ground substance C10 (MPa).
    pub annulus_c10: f64,
    /// Annulus bulk modulus (MPa).
    pub annulus_bulk: f64,
    /// Fibre k1 (MPa).
    pub fibre_k1: f64,
    /// Fibre k2 (-).
    pub fibre_k2: f64,
    /// Fibre dispersion kappa.
    pub fibre_kappa: f64,
    /// Nucleus C10 (MPa).
    pub nucleus_c10: f64,
    /// Nucleus C01 (MPa).
    pub nucleus_c01: f64,
    /// Nucleus bulk modulus (MPa).
    pub nucleus_bulk: f64,
    /// Fibre term of the annulus in the full invariants `I1`, `I4` (Nolan et al. 2014; the
    /// default) rather than the isochoric ones of the usual compressible HGO form (see the
    /// module documentation and [`spinetwin_fem::hyper::FibreInvariants`]). Twin files
    /// written before this field existed read it as `false` and keep their old model.
    #[serde(default)]
    pub fibre_full_invariants: bool,
}

/// Poisson's ratio of the nucleus (small-strain): nearly incompressible, bulk modulus
/// 1000 times the shear modulus (300 MPa). See the module documentation for why not 0.4999.
pub const NUCLEUS_POISSON: f64 = 0.4995;

/// Bulk modulus giving Poisson's ratio `nu` for small-strain shear modulus `mu`.
pub fn bulk_for_poisson(mu: f64, nu: f64) -> f64 {
    2.0 * mu * (1.0 + nu) / (3.0 * (1.0 - 2.0 * nu))
}

impl Default for DiscMaterials {
    fn default() -> Self {
        let (nc10, nc01) = (0.12, 0.03);
        DiscMaterials {
            annulus_c10: 0.1351,
            // nu = 0.45 for the ground substance (published range 0.40-0.45; module notes).
            annulus_bulk: bulk_for_poisson(2.0 * 0.1351, 0.45),
            fibre_k1: 3.73,
            fibre_k2: 89.57,
            fibre_kappa: 0.0752,
            nucleus_c10: nc10,
            nucleus_c01: nc01,
            nucleus_bulk: bulk_for_poisson(2.0 * (nc10 + nc01), NUCLEUS_POISSON),
            fibre_full_invariants: true,
        }
    }
}

impl DiscMaterials {
    /// The annulus and nucleus materials for a mesh of `n_elements` elements whose annulus
    /// elements carry `fibres` (indexed by global element).
    pub fn build(
        &self,
        fibres: Vec<[[f64; 3]; 2]>,
        n_elements: usize,
    ) -> Result<(SharedMaterial, SharedMaterial), ModelError> {
        if fibres.len() != n_elements {
            return Err(ModelError::InvalidInput(format!(
                "{} fibre pairs for {n_elements} elements",
                fibres.len()
            )));
        }
        let annulus = Hgo::new(
            vec![HgoParams {
                c10: self.annulus_c10,
                bulk: self.annulus_bulk,
                k1: self.fibre_k1,
                k2: self.fibre_k2,
                kappa: self.fibre_kappa,
            }],
            fibres,
        )?
        .with_fibre_invariants(if self.fibre_full_invariants {
            FibreInvariants::Full
        } else {
            FibreInvariants::Isochoric
        });
        let nucleus = MooneyRivlin::new(vec![MooneyRivlinParams {
            c10: self.nucleus_c10,
            c01: self.nucleus_c01,
            bulk: self.nucleus_bulk,
        }])?;
        Ok((Arc::new(annulus), Arc::new(nucleus)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix3;

    /// Fibres at +-30 deg to the x-y plane, in the x-z plane (one annulus element).
    fn annulus(m: &DiscMaterials) -> SharedMaterial {
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        m.build(vec![[[c, 0.0, s], [c, 0.0, -s]]], 1).unwrap().0
    }

    #[test]
    fn default_annulus_fibres_see_a_volume_increase() {
        // Pure dilatation by 5 %: the full-invariant fibres (the default) are stretched and
        // make the stress anisotropic; the isochoric (HGO-C) ones see no stretch at all.
        let full = DiscMaterials::default();
        assert!(full.fibre_full_invariants);
        let iso = DiscMaterials {
            fibre_full_invariants: false,
            ..full.clone()
        };
        let f = Matrix3::identity() * 1.05;
        let (sf, _) = annulus(&full).pk2(0, &f).unwrap();
        let (si, _) = annulus(&iso).pk2(0, &f).unwrap();
        assert!((si[0] - si[1]).abs() < 1e-12 && (si[0] - si[2]).abs() < 1e-12);
        // x is 30 deg from both families, y normal to them: the fibres load x far more.
        assert!(sf[0] - sf[1] > 1.0, "{sf:?}");
        assert!(sf[0] > si[0] + 1.0);
    }

    #[test]
    fn twin_files_without_the_field_keep_the_isochoric_fibres() {
        let mut v = serde_json::to_value(DiscMaterials::default()).unwrap();
        v.as_object_mut().unwrap().remove("fibre_full_invariants");
        let m: DiscMaterials = serde_json::from_value(v).unwrap();
        assert!(!m.fibre_full_invariants);
    }
}
