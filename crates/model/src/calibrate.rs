//! Calibration of the disc materials on disc-only experiments.
//!
//! The annulus parameters (ground substance C10, fibre k1 and k2 of the HGO law) are fitted
//! to the moment-rotation curves of L4-L5 discs with all ligaments and posterior elements
//! removed, measured by Jaramillo et al. (mean and SD at 2, 4, 6 and 8 N m in flexion,
//! extension, lateral bending and axial rotation; compiled in from
//! `data/calibration_jaramillo.csv`). The fit minimises the sum of squared SD-normalised
//! errors with Nelder-Mead (argmin) over the logarithms of the three parameters, so they
//! stay positive. Heuer et al. 2007 (another disc-only data set) is kept for validation:
//! calibrate on one experiment, validate on another.

use std::sync::Mutex;

use argmin::core::{CostFunction, Executor};
use argmin::solver::neldermead::NelderMead;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spinetwin_core::units;
use spinetwin_fem::nl::SolveOptions;

use crate::error::ModelError;
use crate::loadcase::{LoadCase, Motion};
use crate::material::{bulk_for_poisson, DiscMaterials};
use crate::twin::TwinFile;
use crate::validate::specimen;

const JARAMILLO: &str = include_str!("../data/calibration_jaramillo.csv");

/// One calibration target: the rotation of a disc-only L4-L5 segment under a pure moment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CalibrationPoint {
    /// Motion (left for the one-sided motions).
    pub motion: Motion,
    /// Moment (N m).
    pub moment_nm: f64,
    /// Mean rotation (deg).
    pub mean_deg: f64,
    /// Standard deviation (deg).
    pub sd_deg: f64,
    /// Citation.
    pub source: String,
}

/// The compiled-in Jaramillo targets (16 points).
pub fn jaramillo() -> Vec<CalibrationPoint> {
    let mut out = Vec::new();
    let mut source = String::new();
    let motions = [
        Motion::Flexion,
        Motion::Extension,
        Motion::LateralBendingLeft,
        Motion::AxialRotationLeft,
    ];
    for line in JARAMILLO.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.splitn(10, ',').collect();
        let s = f[9].trim().trim_matches('"');
        if s != "same" {
            source = s.to_string();
        }
        let num = |i: usize| f[i].trim().parse::<f64>().unwrap_or(f64::NAN);
        for (k, &motion) in motions.iter().enumerate() {
            out.push(CalibrationPoint {
                motion,
                moment_nm: num(0),
                mean_deg: num(1 + 2 * k),
                sd_deg: num(2 + 2 * k),
                source: source.clone(),
            });
        }
    }
    out
}

/// A target with the model's prediction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CalibrationRow {
    /// The target.
    pub point: CalibrationPoint,
    /// Predicted rotation (deg); `None` when the solve did not converge.
    pub predicted_deg: Option<f64>,
}

impl CalibrationRow {
    /// Inside mean +/- SD.
    pub fn within_sd(&self) -> bool {
        self.predicted_deg
            .is_some_and(|p| (p - self.point.mean_deg).abs() <= self.point.sd_deg)
    }
}

/// Result of a calibration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiscCalibration {
    /// The starting materials.
    pub start: DiscMaterials,
    /// The fitted materials.
    pub materials: DiscMaterials,
    /// Objective (sum of squared SD-normalised errors) at the start and at the end.
    pub objective: [f64; 2],
    /// Objective evaluations (each solves four load cases).
    pub evaluations: usize,
    /// Targets with the starting model's predictions.
    pub start_rows: Vec<CalibrationRow>,
    /// Targets with the fitted model's predictions.
    pub rows: Vec<CalibrationRow>,
}

/// Rotations of the disc-only L4-L5 specimen of `full` with `materials` at every target's
/// moment (four solves in parallel, one per motion).
pub fn disc_response(
    full: &TwinFile,
    materials: &DiscMaterials,
    points: &[CalibrationPoint],
    options: &SolveOptions,
) -> Result<Vec<CalibrationRow>, ModelError> {
    let mut file = full.clone();
    file.params.disc_materials = materials.clone();
    let twin = specimen(&file, "disc_only_l4l5")?;
    // One solve per motion (the points interleave motions, moment by moment).
    let mut motions: Vec<Motion> = Vec::new();
    for p in points {
        if !motions.contains(&p.motion) {
            motions.push(p.motion);
        }
    }
    let results: Vec<(Motion, Vec<(f64, f64)>)> = motions
        .par_iter()
        .map(|&m| {
            let moments: Vec<f64> = points
                .iter()
                .filter(|p| p.motion == m)
                .map(|p| p.moment_nm)
                .collect();
            let top = moments.iter().copied().fold(0.0, f64::max);
            let case = LoadCase {
                name: format!("calibration_{}", m.name()),
                moment: Some((m, units::newton_metre_to_newton_mm(top))),
                follower_n: 0.0,
                samples: moments.iter().map(|v| v / top).collect(),
            };
            let r = twin.simulate(&case, options)?;
            let (axis, sign) = m.axis_sign();
            let curve = r
                .samples
                .iter()
                .filter_map(|s| {
                    s.segments
                        .first()
                        .map(|seg| (s.moment_nm, seg.rotation_deg[axis] * sign))
                })
                .collect();
            Ok((m, curve))
        })
        .collect::<Result<_, ModelError>>()?;
    Ok(points
        .iter()
        .map(|p| {
            let predicted_deg = results
                .iter()
                .find(|(m, _)| *m == p.motion)
                .and_then(|(_, c)| {
                    c.iter()
                        .find(|(mm, _)| (mm - p.moment_nm).abs() < 1e-6)
                        .map(|(_, r)| *r)
                });
            CalibrationRow {
                point: p.clone(),
                predicted_deg,
            }
        })
        .collect())
}

/// Sum of squared SD-normalised errors; a target without a prediction costs as much as
/// being 10 SD off.
pub fn objective(rows: &[CalibrationRow]) -> f64 {
    rows.iter()
        .map(|r| match r.predicted_deg {
            Some(p) => ((p - r.point.mean_deg) / r.point.sd_deg).powi(2),
            None => 100.0,
        })
        .sum()
}

/// The materials of parameter vector `x = [ln C10, ln k1, ln k2]` over `base`.
fn materials_of(base: &DiscMaterials, x: &[f64]) -> DiscMaterials {
    let mut m = base.clone();
    m.annulus_c10 = x[0].exp();
    // Keep the ground substance's Poisson's ratio (0.45 by default) as C10 changes.
    let nu = poisson_of(base.annulus_c10, base.annulus_bulk);
    m.annulus_bulk = bulk_for_poisson(2.0 * m.annulus_c10, nu);
    m.fibre_k1 = x[1].exp();
    m.fibre_k2 = x[2].exp();
    m
}

/// Poisson's ratio of shear modulus `2 c10` and bulk modulus `bulk`.
fn poisson_of(c10: f64, bulk: f64) -> f64 {
    let mu = 2.0 * c10;
    (3.0 * bulk - 2.0 * mu) / (2.0 * (3.0 * bulk + mu))
}

struct Problem<'a, F: FnMut(usize, f64) + Send> {
    full: &'a TwinFile,
    base: &'a DiscMaterials,
    points: &'a [CalibrationPoint],
    options: &'a SolveOptions,
    progress: Mutex<(usize, F)>,
}

impl<F: FnMut(usize, f64) + Send> CostFunction for Problem<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let m = materials_of(self.base, x);
        let rows = disc_response(self.full, &m, self.points, self.options)
            .map_err(|e| argmin::core::Error::msg(e.to_string()))?;
        let f = objective(&rows);
        let mut p = self
            .progress
            .lock()
            .map_err(|_| argmin::core::Error::msg("poisoned"))?;
        p.0 += 1;
        let n = p.0;
        (p.1)(n, f);
        Ok(f)
    }
}

/// Fits the annulus C10, k1 and k2 of `start` to the Jaramillo curves on the disc-only
/// L4-L5 specimen of `full`, with at most `max_evaluations` objective evaluations.
/// `progress(evaluations, objective)` is called after each.
pub fn calibrate_disc(
    full: &TwinFile,
    start: &DiscMaterials,
    max_evaluations: usize,
    options: &SolveOptions,
    progress: impl FnMut(usize, f64) + Send,
) -> Result<DiscCalibration, ModelError> {
    let points = jaramillo();
    let x0 = vec![
        start.annulus_c10.ln(),
        start.fibre_k1.ln(),
        start.fibre_k2.ln(),
    ];
    // Initial simplex: each parameter scaled by 2 (0.69 in the log).
    let mut simplex = vec![x0.clone()];
    for i in 0..3 {
        let mut x = x0.clone();
        x[i] += std::f64::consts::LN_2;
        simplex.push(x);
    }
    let problem = Problem {
        full,
        base: start,
        points: &points,
        options,
        progress: Mutex::new((0, progress)),
    };
    let start_rows = disc_response(full, start, &points, options)?;
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(1e-3)
        .map_err(|e| ModelError::InvalidInput(format!("calibration: {e}")))?;
    // Nelder-Mead uses about one evaluation per iteration after the first simplex.
    let iters = max_evaluations.saturating_sub(4).max(1) as u64;
    let res = Executor::new(problem, solver)
        .configure(|s| s.max_iters(iters))
        .run()
        .map_err(|e| ModelError::InvalidInput(format!("calibration failed: {e}")))?;
    let best = res
        .state()
        .best_param
        .clone()
        .ok_or_else(|| ModelError::InvalidInput("calibration found no parameters".into()))?;
    let evaluations = res
        .problem()
        .problem
        .as_ref()
        .map_or(0, |p| p.progress.lock().map(|g| g.0).unwrap_or(0));
    let materials = materials_of(start, &best);
    let rows = disc_response(full, &materials, &points, options)?;
    Ok(DiscCalibration {
        start: start.clone(),
        objective: [objective(&start_rows), objective(&rows)],
        start_rows,
        materials,
        evaluations,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaramillo_targets_parse() {
        let p = jaramillo();
        assert_eq!(p.len(), 16);
        let f8 = p
            .iter()
            .find(|p| p.motion == Motion::Flexion && p.moment_nm == 8.0)
            .unwrap();
        assert_eq!((f8.mean_deg, f8.sd_deg), (11.87, 2.23));
        let a2 = p
            .iter()
            .find(|p| p.motion == Motion::AxialRotationLeft && p.moment_nm == 2.0)
            .unwrap();
        assert_eq!((a2.mean_deg, a2.sd_deg), (3.21, 1.44));
        assert!(p.iter().all(|p| p.source.contains("Jaramillo")));
    }

    #[test]
    fn parameter_map_keeps_poisson_and_round_trips() {
        let base = DiscMaterials::default();
        let x = [0.2f64.ln(), 5.0f64.ln(), 40.0f64.ln()];
        let m = materials_of(&base, &x);
        assert!((m.annulus_c10 - 0.2).abs() < 1e-12);
        assert!((m.fibre_k1 - 5.0).abs() < 1e-12);
        assert!((m.fibre_k2 - 40.0).abs() < 1e-12);
        let nu0 = poisson_of(base.annulus_c10, base.annulus_bulk);
        assert!((nu0 - 0.45).abs() < 1e-12, "{nu0}");
        assert!((poisson_of(m.annulus_c10, m.annulus_bulk) - 0.45).abs() < 1e-12);
    }

    #[test]
    fn objective_counts_sd_and_missing_points() {
        let p = jaramillo();
        let rows: Vec<CalibrationRow> = p
            .iter()
            .enumerate()
            .map(|(i, p)| CalibrationRow {
                point: p.clone(),
                predicted_deg: (i != 0).then_some(p.mean_deg + p.sd_deg),
            })
            .collect();
        assert!((objective(&rows) - (100.0 + 15.0)).abs() < 1e-9);
        assert!(!rows[0].within_sd());
        assert!(rows[1].within_sd());
    }
}
