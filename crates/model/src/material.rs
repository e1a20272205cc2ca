//! Disc materials of the twin (the constitutive laws themselves live in the FE engine).
//!
//! Defaults: annulus fibrosus as a Holzapfel-Gasser-Ogden fibre-reinforced solid with the
//! L4-L5 calibration of Gruber et al. 2024 (Front Bioeng Biotechnol 12:1391957, region A1:
//! C10 0.1351 MPa, k1 3.73 MPa, k2 89.57, kappa 0.0752, fibres about +/-30 deg); nucleus
//! pulposus as a nearly incompressible Mooney-Rivlin solid (Schmidt et al. 2007, quoted
//! there: C10 0.12, C01 0.03 MPa) with a bulk modulus that makes Poisson's ratio 0.4999.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spinetwin_fem::continuum::SolidMaterial;
use spinetwin_fem::hyper::{Hgo, HgoParams, MooneyRivlin, MooneyRivlinParams};

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
}

/// Bulk modulus giving Poisson's ratio `nu` for small-strain shear modulus `mu`.
pub fn bulk_for_poisson(mu: f64, nu: f64) -> f64 {
    2.0 * mu * (1.0 + nu) / (3.0 * (1.0 - 2.0 * nu))
}

impl Default for DiscMaterials {
    fn default() -> Self {
        let (nc10, nc01) = (0.12, 0.03);
        DiscMaterials {
            annulus_c10: 0.1351,
            // nu = 0.45 for the ground substance (compressible enough to avoid locking).
            annulus_bulk: bulk_for_poisson(2.0 * 0.1351, 0.45),
            fibre_k1: 3.73,
            fibre_k2: 89.57,
            fibre_kappa: 0.0752,
            nucleus_c10: nc10,
            nucleus_c01: nc01,
            nucleus_bulk: bulk_for_poisson(2.0 * (nc10 + nc01), 0.4999),
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
        )?;
        let nucleus = MooneyRivlin::new(vec![MooneyRivlinParams {
            c10: self.nucleus_c10,
            c01: self.nucleus_c01,
            bulk: self.nucleus_bulk,
        }])?;
        Ok((Arc::new(annulus), Arc::new(nucleus)))
    }
}
