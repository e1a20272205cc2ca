//! Bone material from the CT: HU -> density -> Young's modulus.
//!
//! # Densities (g/cm^3) and which law needs which
//!
//! * **Equivalent mineral density** `rho_QCT` (K2HPO4 equivalent): what a QCT calibration
//!   phantom gives. Without a phantom the standard conversion for a K2HPO4-equivalent scale is
//!   used as ash density: `rho_ash = -0.009 + 0.0007 HU` (Knowles et al. 2016, J Exp Orthop,
//!   PMC5234499, Table 1). A phantom replaces that line by the scanner's own
//!   `rho = intercept + slope HU`, read as ash density as well.
//! * **Ash density** `rho_ash`: mineral mass per bulk volume. Apparent density follows from
//!   `rho_ash / rho_app = 0.6` (Knowles et al. 2016).
//! * **Material density** `rho_mat`: physical density of the voxel's content (bone tissue
//!   plus marrow), what a phantomless calibration on reference tissues gives (air, fat,
//!   muscle, blood and cortical bone have known physical densities). It is turned into
//!   apparent density with a two-phase mixture: the voxel is a bone-volume fraction
//!   `BV/TV = (rho_mat - rho_marrow) / (rho_cortical - rho_marrow)` of bone tissue (taken as
//!   dense as cortical bone) in marrow, so `rho_app = BV/TV x rho_cortical`.
//! * **Apparent density** `rho_app`: wet bone mass per bulk volume (marrow removed). Both
//!   modulus laws below take apparent density.
//!
//! # Modulus laws (E in MPa, rho_app in g/cm^3)
//!
//! * [`ModulusLaw::Morgan2003`] (default): `E = 4730 rho_app^1.56`, vertebral trabecular bone
//!   (Morgan EF, Bayraktar HH, Keaveny TM, J Biomech 2003;36:897-904).
//! * [`ModulusLaw::Kopperdahl2002`]: `E = 2980 rho^1.05` (Kopperdahl et al. 2002, as
//!   implemented in the Bonelab Ogo material laws; applied to apparent density here).
//!
//! Moduli are clamped to `[floor, ceiling]`: the floor (default 10 MPa, a third of the
//! 34 MPa osteoporotic cancellous modulus used in lumbar FE models, Sci Rep 2025
//! s41598-025-03377-x Table 1) keeps partial-volume and marrow voxels, whose density maps to
//! zero or below, from making the stiffness matrix singular; the ceiling (default
//! 12000 MPa, the cortical shell modulus) stops noise and metal artefacts from making
//! cancellous bone stiffer than cortical bone.
//!
//! Fixed moduli (materials.csv of the project's references: BMC Musculoskelet Disord 2013
//! 14:220 Table 1; J Healthc Eng 2017 9618940 Table 2): cortical shell
//! [`CORTICAL_SHELL`] 12000 MPa, nu 0.3; posterior elements [`POSTERIOR_ELEMENTS`]
//! 3500 MPa, nu 0.25.

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};
use spinetwin_imaging::Volume;

use crate::error::ModelError;

/// An isotropic linear elastic material.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Isotropic {
    /// Young's modulus (MPa).
    pub e_mpa: f64,
    /// Poisson's ratio.
    pub nu: f64,
}

/// Cortical shell of the vertebral body (12000 MPa, 0.3; see the module documentation).
pub const CORTICAL_SHELL: Isotropic = Isotropic {
    e_mpa: 12000.0,
    nu: 0.3,
};
/// Posterior elements (3500 MPa, 0.25; see the module documentation).
pub const POSTERIOR_ELEMENTS: Isotropic = Isotropic {
    e_mpa: 3500.0,
    nu: 0.25,
};
/// Poisson's ratio of cancellous bone (0.2, same sources as [`CORTICAL_SHELL`]).
pub const CANCELLOUS_NU: f64 = 0.2;

/// Physical densities (g/cm^3) of the reference tissues: ICRU Report 46 (1992) /
/// Woodard & White, Br J Radiol 1986;59:1209-1218 (adipose tissue 0.95, skeletal muscle
/// 1.05, whole blood 1.06, cortical bone 1.92); dry air at sea level 0.0012.
pub mod reference_density {
    /// Air.
    pub const AIR: f64 = 0.0012;
    /// Adipose tissue.
    pub const ADIPOSE: f64 = 0.95;
    /// Skeletal muscle.
    pub const MUSCLE: f64 = 1.05;
    /// Whole blood.
    pub const BLOOD: f64 = 1.06;
    /// Cortical bone (also the bone-tissue density of the mixture rule).
    pub const CORTICAL: f64 = 1.92;
    /// Marrow (mean of red 1.03 and yellow 0.98 marrow, same sources), the second phase of
    /// the mixture rule.
    pub const MARROW: f64 = 1.0;
}

/// Mean HU of reference tissues measured in the CT (`None` where not found), with the
/// number of voxels behind each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceTissues {
    /// Air outside the body (HU).
    pub air_hu: Option<f64>,
    /// Subcutaneous / retroperitoneal fat (HU).
    pub adipose_hu: Option<f64>,
    /// Paraspinal muscle (HU).
    pub muscle_hu: Option<f64>,
    /// Blood (HU; not measured automatically, may be given by hand).
    pub blood_hu: Option<f64>,
    /// Cortical bone of the vertebrae (HU).
    pub cortical_hu: Option<f64>,
    /// Voxels used for air, adipose, muscle, cortical.
    pub voxels: [usize; 4],
}

impl ReferenceTissues {
    /// The `(HU, physical density)` pairs available for a fit.
    pub fn pairs(&self) -> Vec<(f64, f64)> {
        use reference_density as d;
        [
            (self.air_hu, d::AIR),
            (self.adipose_hu, d::ADIPOSE),
            (self.muscle_hu, d::MUSCLE),
            (self.blood_hu, d::BLOOD),
            (self.cortical_hu, d::CORTICAL),
        ]
        .into_iter()
        .filter_map(|(h, r)| h.map(|h| (h, r)))
        .collect()
    }
}

/// HU to density calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Calibration {
    /// No calibration: the Knowles et al. 2016 K2HPO4-equivalent ash density line
    /// `rho_ash = -0.009 + 0.0007 HU`.
    Knowles2016,
    /// A calibration phantom scanned with the patient: `rho_ash = intercept + slope HU`
    /// (g/cm^3, K2HPO4-equivalent, read as ash density).
    Phantom {
        /// g/cm^3 per HU.
        slope: f64,
        /// g/cm^3 at 0 HU.
        intercept: f64,
    },
    /// Phantomless: `rho_mat = intercept + slope HU` fitted by least squares to the
    /// reference tissues' physical densities (material density).
    Phantomless {
        /// g/cm^3 per HU.
        slope: f64,
        /// g/cm^3 at 0 HU.
        intercept: f64,
        /// Root-mean-square residual of the fit (g/cm^3).
        rms_residual: f64,
        /// The measured tissues.
        tissues: ReferenceTissues,
    },
}

impl Calibration {
    /// Fits the phantomless line to the measured tissues; needs at least three tissues
    /// spanning at least 500 HU, and a positive slope.
    pub fn phantomless(tissues: &ReferenceTissues) -> Result<Calibration, ModelError> {
        let p = tissues.pairs();
        if p.len() < 3 {
            return Err(ModelError::InvalidInput(format!(
                "a phantomless calibration needs at least 3 reference tissues, found {} \
                 (air, fat, muscle, blood, cortical bone); use a phantom calibration or the \
                 default Knowles line",
                p.len()
            )));
        }
        let n = p.len() as f64;
        let mx = p.iter().map(|q| q.0).sum::<f64>() / n;
        let my = p.iter().map(|q| q.1).sum::<f64>() / n;
        let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
        let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
        let span = p.iter().map(|q| q.0).fold(f64::NEG_INFINITY, f64::max)
            - p.iter().map(|q| q.0).fold(f64::INFINITY, f64::min);
        if span.is_nan() || span < 500.0 {
            return Err(ModelError::InvalidInput(format!(
                "the reference tissues span only {span:.0} HU; at least 500 HU (air or bone \
                 with soft tissue) is needed for a stable fit"
            )));
        }
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        if slope.is_nan() || slope <= 0.0 {
            return Err(ModelError::InvalidInput(format!(
                "the phantomless fit has slope {slope:e} g/cm^3/HU (density must rise with \
                 HU): the reference tissue HU look wrong: {tissues:?}"
            )));
        }
        let rms = (p
            .iter()
            .map(|q| (intercept + slope * q.0 - q.1).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        Ok(Calibration::Phantomless {
            slope,
            intercept,
            rms_residual: rms,
            tissues: tissues.clone(),
        })
    }

    /// The calibrated density (g/cm^3) at `hu`: ash density for [`Calibration::Knowles2016`]
    /// and [`Calibration::Phantom`], material density for [`Calibration::Phantomless`].
    pub fn density(&self, hu: f64) -> f64 {
        match self {
            Calibration::Knowles2016 => ash_density_knowles(hu),
            Calibration::Phantom { slope, intercept }
            | Calibration::Phantomless {
                slope, intercept, ..
            } => intercept + slope * hu,
        }
    }

    /// Apparent density (g/cm^3) at `hu` (module documentation); may be negative for
    /// marrow or soft tissue.
    pub fn apparent_density(&self, hu: f64) -> f64 {
        match self {
            Calibration::Phantomless { .. } => {
                use reference_density as d;
                let bv_tv = (self.density(hu) - d::MARROW) / (d::CORTICAL - d::MARROW);
                bv_tv * d::CORTICAL
            }
            _ => self.density(hu) / ASH_TO_APPARENT,
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        if let Calibration::Phantom { slope, intercept }
        | Calibration::Phantomless {
            slope, intercept, ..
        } = self
        {
            if !slope.is_finite() || *slope <= 0.0 || !intercept.is_finite() {
                return Err(ModelError::InvalidInput(format!(
                    "calibration slope {slope} and intercept {intercept} must be finite with \
                     a positive slope (g/cm^3 per HU)"
                )));
            }
        }
        Ok(())
    }
}

/// `rho_ash / rho_app` (Knowles et al. 2016).
pub const ASH_TO_APPARENT: f64 = 0.6;

/// K2HPO4-equivalent ash density (g/cm^3) from HU: `-0.009 + 0.0007 HU` (Knowles 2016).
pub fn ash_density_knowles(hu: f64) -> f64 {
    -0.009 + 0.0007 * hu
}

/// Density-modulus law (apparent density, g/cm^3 -> MPa).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModulusLaw {
    /// `E = 4730 rho_app^1.56` (Morgan et al. 2003, vertebra).
    #[default]
    Morgan2003,
    /// `E = 2980 rho^1.05` (Kopperdahl et al. 2002).
    Kopperdahl2002,
}

impl ModulusLaw {
    /// Modulus (MPa) at apparent density `rho` (g/cm^3); 0 for `rho <= 0`, unclamped.
    pub fn modulus(self, rho: f64) -> f64 {
        if rho.is_nan() || rho <= 0.0 {
            return 0.0;
        }
        match self {
            ModulusLaw::Morgan2003 => 4730.0 * rho.powf(1.56),
            ModulusLaw::Kopperdahl2002 => 2980.0 * rho.powf(1.05),
        }
    }

    /// The apparent density (g/cm^3) at which the law gives modulus `e` (MPa): its inverse;
    /// 0 for `e <= 0`.
    pub fn density(self, e: f64) -> f64 {
        if e.is_nan() || e <= 0.0 {
            return 0.0;
        }
        match self {
            ModulusLaw::Morgan2003 => (e / 4730.0).powf(1.0 / 1.56),
            ModulusLaw::Kopperdahl2002 => (e / 2980.0).powf(1.0 / 1.05),
        }
    }
}

/// Everything that turns HU into a cancellous-bone modulus; serialisable into the twin's
/// record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoneMaterial {
    /// HU to density.
    pub calibration: Calibration,
    /// Density to modulus.
    pub law: ModulusLaw,
    /// Smallest modulus (MPa, default 10).
    pub floor_mpa: f64,
    /// Largest modulus (MPa, default 12000).
    pub ceiling_mpa: f64,
}

impl Default for BoneMaterial {
    fn default() -> Self {
        BoneMaterial {
            calibration: Calibration::Knowles2016,
            law: ModulusLaw::Morgan2003,
            floor_mpa: 10.0,
            ceiling_mpa: CORTICAL_SHELL.e_mpa,
        }
    }
}

impl BoneMaterial {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.calibration.validate()?;
        let ok = self.floor_mpa > 0.0
            && self.ceiling_mpa > self.floor_mpa
            && self.ceiling_mpa.is_finite();
        if !ok {
            return Err(ModelError::InvalidInput(format!(
                "bone modulus floor {} MPa and ceiling {} MPa must satisfy 0 < floor < ceiling",
                self.floor_mpa, self.ceiling_mpa
            )));
        }
        Ok(())
    }

    /// Cancellous modulus (MPa) at `hu`, clamped to `[floor, ceiling]` (a non-finite HU gives
    /// the floor).
    pub fn modulus(&self, hu: f64) -> f64 {
        if !hu.is_finite() {
            return self.floor_mpa;
        }
        let e = self.law.modulus(self.calibration.apparent_density(hu));
        e.clamp(self.floor_mpa, self.ceiling_mpa)
    }
}

/// Cancellous moduli (MPa) for sampled HU values (per element or per point).
pub fn vertebra_moduli(hu: &[f64], material: &BoneMaterial) -> Result<Vec<f64>, ModelError> {
    material.validate()?;
    Ok(hu.iter().map(|&h| material.modulus(h)).collect())
}

/// HU of the CT at each point (trilinear), or an error naming the first point outside it.
pub fn sample_hu(ct: &Volume<f32>, points: &[[f64; 3]]) -> Result<Vec<f64>, ModelError> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            ct.sample_trilinear(Vector3::new(p[0], p[1], p[2]))
                .ok_or_else(|| {
                    ModelError::InvalidInput(format!(
                        "point {i} at {p:?} mm lies outside the CT volume: cannot sample HU"
                    ))
                })
        })
        .collect()
}

/// Mode of the values within `[lo, hi)` in bins of `bin` HU (the bin centre), with the count
/// of values in range.
fn mode(values: impl Iterator<Item = f64>, lo: f64, hi: f64, bin: f64) -> (Option<f64>, usize) {
    let nb = ((hi - lo) / bin).ceil() as usize;
    let mut h = vec![0usize; nb];
    let mut n = 0;
    for v in values {
        if v >= lo && v < hi {
            h[(((v - lo) / bin) as usize).min(nb - 1)] += 1;
            n += 1;
        }
    }
    if n == 0 {
        return (None, 0);
    }
    // Smooth over three bins so noise does not pick a spike.
    let s = |i: usize| h[i.saturating_sub(1)] + h[i] + h[(i + 1).min(nb - 1)];
    let best = (0..nb).max_by_key(|&i| s(i)).unwrap_or(0);
    (Some(lo + (best as f64 + 0.5) * bin), n)
}

/// Finds reference tissues in the CT: air in the outermost in-plane voxel border (HU below
/// -500, median), fat as the mode of unlabelled voxels in -150..-50 HU, muscle as the mode
/// of unlabelled voxels in 0..100 HU lying more than 20 mm posterior to the mean position of
/// the vertebra voxels (the paraspinal muscles), cortical bone as the 99th percentile of the
/// vertebra voxels (labels 1..=99). Tissues not found are `None`.
pub fn measure_reference_tissues(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
) -> Result<ReferenceTissues, ModelError> {
    if ct.dims() != labels.dims() {
        return Err(ModelError::InvalidInput(format!(
            "CT {:?} and label map {:?} have different dimensions: resample the labels onto \
             the CT grid",
            ct.dims(),
            labels.dims()
        )));
    }
    let [ni, nj, nk] = ct.dims();
    let g = ct.grid();
    let world =
        |i: usize, j: usize, k: usize| g.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
    // Air: border of each slice.
    let mut air = Vec::new();
    let mut bone = Vec::new();
    let mut bone_y = 0.0;
    for k in 0..nk {
        for j in 0..nj {
            for i in 0..ni {
                let v = ct.get(i, j, k) as f64;
                let l = labels.get(i, j, k);
                if (i == 0 || j == 0 || i + 1 == ni || j + 1 == nj) && v < -500.0 {
                    air.push(v);
                }
                if (1..=99).contains(&l) {
                    bone.push(v);
                    bone_y += world(i, j, k).y;
                }
            }
        }
    }
    let median = |v: &mut Vec<f64>, q: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[((v.len() - 1) as f64 * q).round() as usize])
    };
    let mut out = ReferenceTissues {
        air_hu: median(&mut air, 0.5),
        cortical_hu: median(&mut bone, 0.99),
        voxels: [air.len(), 0, 0, bone.len()],
        ..Default::default()
    };
    let unlabelled = || {
        (0..nk).flat_map(move |k| {
            (0..nj).flat_map(move |j| {
                (0..ni).filter_map(move |i| {
                    (labels.get(i, j, k) == 0).then_some((i, j, k, ct.get(i, j, k) as f64))
                })
            })
        })
    };
    let (fat, nf) = mode(unlabelled().map(|q| q.3), -150.0, -50.0, 2.0);
    out.adipose_hu = fat;
    out.voxels[1] = nf;
    if !bone.is_empty() {
        let y0 = bone_y / bone.len() as f64 + 20.0;
        let (mus, nm) = mode(
            unlabelled()
                .filter(|&(i, j, k, _)| world(i, j, k).y > y0)
                .map(|q| q.3),
            0.0,
            100.0,
            2.0,
        );
        out.muscle_hu = mus;
        out.voxels[2] = nm;
    }
    Ok(out)
}
