//! Load cases: the laboratory and in-vivo protocols (pure moments on the top vertebra with
//! the bottom one fixed, with or without a follower load along the spinal curve; standing).
//!
//! Directions are anatomical, in the top vertebra's frame (x left, y posterior, z cranial):
//! flexion is a positive rotation about x (the top tips anteriorly), left lateral bending a
//! positive rotation about y (it tips to the patient's left), left axial rotation a positive
//! rotation about z (the anterior body turns to the left).

use serde::{Deserialize, Serialize};
use spinetwin_core::units;

use crate::error::ModelError;

/// A direction of motion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Motion {
    /// Forward bending.
    Flexion,
    /// Backward bending.
    Extension,
    /// Bending to the patient's left.
    LateralBendingLeft,
    /// Bending to the patient's right.
    LateralBendingRight,
    /// Turning the anterior body to the left.
    AxialRotationLeft,
    /// Turning to the right.
    AxialRotationRight,
}

impl Motion {
    /// All six, in the usual reporting order.
    pub const ALL: [Motion; 6] = [
        Motion::Flexion,
        Motion::Extension,
        Motion::LateralBendingLeft,
        Motion::LateralBendingRight,
        Motion::AxialRotationLeft,
        Motion::AxialRotationRight,
    ];

    /// Anatomical axis (0 x, 1 y, 2 z) and sign of the rotation.
    pub fn axis_sign(self) -> (usize, f64) {
        match self {
            Motion::Flexion => (0, 1.0),
            Motion::Extension => (0, -1.0),
            Motion::LateralBendingLeft => (1, 1.0),
            Motion::LateralBendingRight => (1, -1.0),
            Motion::AxialRotationLeft => (2, 1.0),
            Motion::AxialRotationRight => (2, -1.0),
        }
    }

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Motion::Flexion => "flexion",
            Motion::Extension => "extension",
            Motion::LateralBendingLeft => "lateral_bending_left",
            Motion::LateralBendingRight => "lateral_bending_right",
            Motion::AxialRotationLeft => "axial_rotation_left",
            Motion::AxialRotationRight => "axial_rotation_right",
        }
    }

    fn parse(s: &str) -> Option<Motion> {
        let s = s.to_ascii_lowercase().replace('-', "_");
        Some(match s.as_str() {
            "flexion" | "flex" => Motion::Flexion,
            "extension" | "ext" => Motion::Extension,
            "lateral_bending_left" | "lb_left" | "left_bending" => Motion::LateralBendingLeft,
            "lateral_bending_right" | "lb_right" | "right_bending" => Motion::LateralBendingRight,
            "axial_rotation_left" | "ar_left" | "left_rotation" => Motion::AxialRotationLeft,
            "axial_rotation_right" | "ar_right" | "right_rotation" => Motion::AxialRotationRight,
            _ => return None,
        })
    }
}

/// One load case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadCase {
    /// Name (for results).
    pub name: String,
    /// Pure moment on the top vertebra: direction and magnitude (N mm).
    pub moment: Option<(Motion, f64)>,
    /// Follower load along the spinal curve (N, compressive).
    pub follower_n: f64,
    /// Moment fractions at which the state is recorded (moment-rotation curve); the last
    /// is 1. The follower load is applied first, in its own step.
    pub samples: Vec<f64>,
}

/// Moment levels (N m) at which the lab protocols report: 1, 2.5, 5, 7.5 N m.
pub const STANDARD_MOMENTS_NM: [f64; 4] = [1.0, 2.5, 5.0, 7.5];

impl LoadCase {
    /// A pure moment of `moment_nm` (N m) with a follower load of `follower_n` (N), sampled
    /// at the standard moment levels below it and at `moment_nm`.
    pub fn pure_moment(motion: Motion, moment_nm: f64, follower_n: f64) -> LoadCase {
        let mut samples: Vec<f64> = STANDARD_MOMENTS_NM
            .iter()
            .filter(|&&m| m < moment_nm - 1e-9)
            .map(|m| m / moment_nm)
            .collect();
        samples.push(1.0);
        let name = if follower_n > 0.0 {
            format!("{}_{}nm_fl{}n", motion.name(), moment_nm, follower_n)
        } else {
            format!("{}_{}nm", motion.name(), moment_nm)
        };
        LoadCase {
            name,
            moment: Some((motion, units::newton_metre_to_newton_mm(moment_nm))),
            follower_n,
            samples,
        }
    }

    /// Relaxed standing: a 500 N follower load (Rohlmann et al. 2009 J Biomech 42:1520 use
    /// 500 N to mimic upper-body weight and muscle forces in standing).
    pub fn standing() -> LoadCase {
        LoadCase {
            name: "standing".into(),
            moment: None,
            follower_n: 500.0,
            samples: vec![1.0],
        }
    }

    /// The six pure-moment cases at `moment_nm` plus standing: the demo's set.
    pub fn standard_set(moment_nm: f64, follower_n: f64) -> Vec<LoadCase> {
        let mut v: Vec<LoadCase> = Motion::ALL
            .iter()
            .map(|&m| LoadCase::pure_moment(m, moment_nm, follower_n))
            .collect();
        v.push(LoadCase::standing());
        v
    }

    /// Parses `flexion:7.5Nm`, `flexion:7.5Nm+follower:500N`, `follower:500N`, `standing`.
    pub fn parse(spec: &str) -> Result<LoadCase, ModelError> {
        let bad = |why: &str| {
            ModelError::InvalidInput(format!(
                "load case '{spec}': {why} (examples: flexion:7.5Nm, axial_rotation_left:5Nm+follower:500N, standing)"
            ))
        };
        let mut motion = None;
        let mut follower = 0.0;
        for part in spec.split('+') {
            let part = part.trim();
            if part.eq_ignore_ascii_case("standing") {
                follower = 500.0;
                continue;
            }
            let (name, value) = part.split_once(':').ok_or_else(|| bad("missing ':'"))?;
            let v = value.trim().to_ascii_lowercase();
            if name.trim().eq_ignore_ascii_case("follower") {
                let n = v
                    .strip_suffix('n')
                    .ok_or_else(|| bad("follower load needs N"))?;
                follower = n.trim().parse::<f64>().map_err(|_| bad("bad force"))?;
                if !(0.0..=5000.0).contains(&follower) {
                    return Err(bad("follower load must be 0-5000 N"));
                }
            } else {
                let m = Motion::parse(name.trim()).ok_or_else(|| bad("unknown motion"))?;
                let nm = v.strip_suffix("nm").ok_or_else(|| bad("moment needs Nm"))?;
                let nm = nm.trim().parse::<f64>().map_err(|_| bad("bad moment"))?;
                if !(nm > 0.0 && nm <= 30.0) {
                    return Err(bad("moment must be in (0, 30] Nm"));
                }
                motion = Some((m, nm));
            }
        }
        Ok(match motion {
            Some((m, nm)) => LoadCase::pure_moment(m, nm, follower),
            None if spec.trim().eq_ignore_ascii_case("standing") => LoadCase::standing(),
            None if follower > 0.0 => LoadCase {
                name: format!("follower_{follower}n"),
                moment: None,
                follower_n: follower,
                samples: vec![1.0],
            },
            None => return Err(bad("nothing to apply")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let c = LoadCase::parse("flexion:7.5Nm").unwrap();
        assert_eq!(c.moment, Some((Motion::Flexion, 7500.0)));
        assert_eq!(c.samples, vec![1.0 / 7.5, 2.5 / 7.5, 5.0 / 7.5, 1.0]);
        let c = LoadCase::parse("axial_rotation_left:5Nm+follower:500N").unwrap();
        assert_eq!(c.moment, Some((Motion::AxialRotationLeft, 5000.0)));
        assert_eq!(c.follower_n, 500.0);
        assert_eq!(LoadCase::parse("standing").unwrap(), LoadCase::standing());
        for bad in [
            "flexion",
            "twist:5Nm",
            "flexion:5",
            "flexion:-1Nm",
            "follower:9000N",
            "",
        ] {
            assert!(LoadCase::parse(bad).is_err(), "{bad}");
        }
    }
}
