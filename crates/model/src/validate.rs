//! Validation against published experiments: the twin is cut down to the tested specimen
//! (an L4-L5 segment, with or without ligaments and facets), loaded like the experiment,
//! and every predicted number is set beside the measured one with its source.
//!
//! The experimental values are compiled in from `data/validation_targets.csv` (each row
//! cites its source).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;
use spinetwin_fem::nl::SolveOptions;

use crate::error::ModelError;
use crate::ligament::Ligament;
use crate::loadcase::{LoadCase, Motion};
use crate::twin::{CaseResult, Twin, TwinFile};

const TARGETS: &str = include_str!("../data/validation_targets.csv");

/// Band used where the source gives no spread: +/- this fraction of the reported value.
pub const NO_SPREAD_BAND: f64 = 0.25;

/// One experimental target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Row id.
    pub id: String,
    /// Which specimen: `disc_only_l4l5` or `intact_segment_l4l5`.
    pub experiment: String,
    /// Motion, or `standing`.
    pub motion: String,
    /// Moment (N m).
    pub moment_nm: f64,
    /// Follower load (N).
    pub follower_n: f64,
    /// `rom_deg`, `idp_mpa`, `facet_force_n` or `facet_force_contralateral_n`.
    pub quantity: String,
    /// Reported mean (or median).
    pub mean: f64,
    /// Reported spread, if any.
    pub spread: Option<f64>,
    /// `sd`, `tolerance` or `none`.
    pub spread_kind: String,
    /// Citation.
    pub source: String,
}

/// The compiled-in targets.
pub fn targets() -> Vec<Target> {
    let mut out = Vec::new();
    let mut last_source = String::new();
    for line in TARGETS.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        // Fields are plain except the last (source), which may be quoted and hold commas.
        let f: Vec<&str> = line.splitn(10, ',').collect();
        let num = |s: &str| s.trim().parse::<f64>().ok();
        let mut source = f[9].trim().trim_matches('"').to_string();
        if source == "same" {
            source = last_source.clone();
        } else {
            last_source = source.clone();
        }
        out.push(Target {
            id: f[0].into(),
            experiment: f[1].into(),
            motion: f[2].into(),
            moment_nm: num(f[3]).unwrap_or(0.0),
            follower_n: num(f[4]).unwrap_or(0.0),
            quantity: f[5].into(),
            mean: num(f[6]).unwrap_or(f64::NAN),
            spread: num(f[7]),
            spread_kind: f[8].into(),
            source,
        });
    }
    out
}

/// One row of the validation table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidationRow {
    /// The target.
    pub target: Target,
    /// Lower and upper bound of the accepted band.
    pub band: [f64; 2],
    /// Predicted value (None when the solve did not converge).
    pub predicted: Option<f64>,
    /// Inside the band.
    pub pass: bool,
    /// Why it failed or was not computed.
    pub note: String,
}

/// Convergence statistics of the validation run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConvergenceStats {
    /// Load cases solved.
    pub cases: usize,
    /// Of which converged.
    pub converged: usize,
    /// Newton iterations in all.
    pub iterations: usize,
    /// Wall time of all solves (s).
    pub seconds: f64,
}

/// Builds the specimen twin of an experiment from a whole-spine twin file.
pub fn specimen(full: &TwinFile, experiment: &str) -> Result<Twin, ModelError> {
    let mut file = full.clone();
    file.landmarks
        .vertebrae
        .retain(|v| v.level == Level::L4 || v.level == Level::L5);
    file.landmarks
        .discs
        .retain(|d| d.upper == Level::L4 && d.lower == Level::L5);
    if file.landmarks.vertebrae.len() != 2 {
        return Err(ModelError::InvalidGeometry(
            "validation needs L4 and L5 in the twin".into(),
        ));
    }
    match experiment {
        "disc_only_l4l5" => {
            file.params.without_ligaments = Ligament::ALL.to_vec();
            file.params.without_facets = true;
        }
        "intact_segment_l4l5" => {}
        other => {
            return Err(ModelError::InvalidInput(format!(
                "unknown experiment '{other}'"
            )))
        }
    }
    Twin::build(file)
}

fn motion_of(name: &str) -> Option<Motion> {
    Motion::ALL.iter().copied().find(|m| m.name() == name)
}

/// Runs every experiment and compares. `progress(done, total, what)` is called per solve.
pub fn validate(
    full: &TwinFile,
    options: &SolveOptions,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<(Vec<ValidationRow>, ConvergenceStats), ModelError> {
    let targets = targets();
    // One solve per (experiment, motion, follower); the moment levels are its samples.
    let mut cases: BTreeMap<(String, String, u64), LoadCase> = BTreeMap::new();
    for t in &targets {
        let key = (t.experiment.clone(), t.motion.clone(), t.follower_n as u64);
        let case = match motion_of(&t.motion) {
            Some(m) => LoadCase::pure_moment(m, 7.5, t.follower_n),
            None if t.motion == "standing" => LoadCase::standing(),
            None => {
                return Err(ModelError::InvalidInput(format!(
                    "validation target {}: unknown motion {}",
                    t.id, t.motion
                )))
            }
        };
        cases.entry(key).or_insert(case);
    }
    let mut specimens: BTreeMap<String, Twin> = BTreeMap::new();
    let mut results: BTreeMap<(String, String, u64), CaseResult> = BTreeMap::new();
    let mut stats = ConvergenceStats::default();
    let total = cases.len();
    for (k, (key, case)) in cases.iter().enumerate() {
        progress(k, total, &format!("{} {}", key.0, case.name));
        if !specimens.contains_key(&key.0) {
            specimens.insert(key.0.clone(), specimen(full, &key.0)?);
        }
        let r = specimens[&key.0].simulate(case, options)?;
        stats.cases += 1;
        stats.converged += r.converged as usize;
        stats.iterations += r.iterations;
        stats.seconds += r.seconds;
        results.insert(key.clone(), r);
    }
    progress(total, total, "done");
    let rows = targets
        .into_iter()
        .map(|t| {
            let key = (t.experiment.clone(), t.motion.clone(), t.follower_n as u64);
            let band = match (t.spread, t.spread_kind.as_str()) {
                (Some(s), _) => [t.mean - s, t.mean + s],
                _ => [
                    t.mean * (1.0 - NO_SPREAD_BAND),
                    t.mean * (1.0 + NO_SPREAD_BAND),
                ],
            };
            let r = &results[&key];
            let (predicted, note) = if !r.converged {
                (
                    None,
                    format!("not converged: {}", r.failure.clone().unwrap_or_default()),
                )
            } else {
                match predicted_value(&t, r) {
                    Some(v) => (Some(v), choice_note(&t.id).to_string()),
                    None => (None, "no matching state".to_string()),
                }
            };
            let pass = predicted.is_some_and(|v| v >= band[0] && v <= band[1]);
            ValidationRow {
                target: t,
                band,
                predicted,
                pass,
                note,
            }
        })
        .collect();
    Ok((rows, stats))
}

fn predicted_value(t: &Target, r: &CaseResult) -> Option<f64> {
    let sample = r
        .samples
        .iter()
        .find(|s| (s.moment_nm - t.moment_nm).abs() < 1e-6)?;
    let seg = sample.segments.first()?;
    match t.quantity.as_str() {
        "rom_deg" => {
            let m = motion_of(&t.motion)?;
            let (axis, sign) = m.axis_sign();
            Some(seg.rotation_deg[axis] * sign)
        }
        "idp_mpa" => Some(seg.idp_mpa),
        "facet_force_n" => Some(seg.facet_force_n.iter().flatten().sum()),
        "facet_force_contralateral_n" => {
            // Left axial rotation loads the right joint (the posterior arch swings right).
            let m = motion_of(&t.motion)?;
            let side = match m {
                Motion::AxialRotationLeft | Motion::LateralBendingLeft => 1,
                _ => 0,
            };
            seg.facet_force_n[side]
        }
        _ => None,
    }
}

/// The table as CSV (`row, source, experimental value and spread, predicted, pass/fail`).
pub fn to_csv(rows: &[ValidationRow]) -> String {
    let mut s = String::from(
        "row,experiment,motion,moment_nm,follower_n,quantity,experimental,spread,spread_kind,band_low,band_high,predicted,pass,note,source\n",
    );
    for r in rows {
        let t = &r.target;
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{:.3},{:.3},{},{},\"{}\",\"{}\"\n",
            t.id,
            t.experiment,
            t.motion,
            t.moment_nm,
            t.follower_n,
            t.quantity,
            t.mean,
            t.spread.map(|v| v.to_string()).unwrap_or_default(),
            t.spread_kind,
            r.band[0],
            r.band[1],
            r.predicted.map(|v| format!("{v:.3}")).unwrap_or_default(),
            if r.pass { "pass" } else { "fail" },
            r.note.replace('"', "'"),
            t.source.replace('"', "'"),
        ));
    }
    s
}

/// The validation of the default model on the built-in phantom as committed in
/// `docs/validation/twin_phantom.csv` (written by `spinetwin validate`). Reports quote it as
/// the model's validation status; the release test `committed_validation_is_current` (cli)
/// reruns the validation and fails when this table no longer matches the code.
pub const COMMITTED_CSV: &str = include_str!("../../../docs/validation/twin_phantom.csv");

/// The committed validation ([`COMMITTED_CSV`]) as rows.
pub fn committed() -> Vec<ValidationRow> {
    // A unit test parses the same text: this cannot fail in a built binary.
    from_csv(COMMITTED_CSV).expect("the committed validation table parses")
}

/// Splits one CSV line at the commas outside double quotes, unquoting the fields (the
/// table's quoted fields never hold a double quote: [`to_csv`] writes them as ').
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("starts with one field").push(c),
        }
    }
    fields
}

/// Reads a table written by [`to_csv`] back.
pub fn from_csv(text: &str) -> Result<Vec<ValidationRow>, ModelError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let want = to_csv(&[]);
    if header != want.trim_end() {
        return Err(ModelError::InvalidInput(format!(
            "not a validation table written by spinetwin validate (header '{header}')"
        )));
    }
    let mut rows = Vec::new();
    for (k, line) in lines.enumerate() {
        let f = split_csv_line(line);
        let bad = |what: &str| {
            ModelError::InvalidInput(format!("validation table line {}: {what}", k + 2))
        };
        if f.len() != 15 {
            return Err(bad(&format!("{} fields, expected 15", f.len())));
        }
        let num = |i: usize| -> Result<f64, ModelError> {
            f[i].trim()
                .parse::<f64>()
                .map_err(|_| bad(&format!("field {} is not a number: '{}'", i + 1, f[i])))
        };
        let opt = |i: usize| -> Result<Option<f64>, ModelError> {
            if f[i].trim().is_empty() {
                Ok(None)
            } else {
                num(i).map(Some)
            }
        };
        let pass = match f[12].as_str() {
            "pass" => true,
            "fail" => false,
            other => return Err(bad(&format!("result '{other}' is neither pass nor fail"))),
        };
        rows.push(ValidationRow {
            target: Target {
                id: f[0].clone(),
                experiment: f[1].clone(),
                motion: f[2].clone(),
                moment_nm: num(3)?,
                follower_n: num(4)?,
                quantity: f[5].clone(),
                mean: num(6)?,
                spread: opt(7)?,
                spread_kind: f[8].clone(),
                source: f[14].clone(),
            },
            band: [num(9)?, num(10)?],
            predicted: opt(11)?,
            pass,
            note: f[13].clone(),
        });
    }
    Ok(rows)
}

impl Target {
    /// What the row compares, in words: `L4-L5 disc only, flexion 1 N m: rotation (deg)`.
    pub fn describe(&self) -> String {
        let specimen = match self.experiment.as_str() {
            "disc_only_l4l5" => "L4-L5 disc only",
            "intact_segment_l4l5" => "L4-L5 intact segment",
            other => other,
        };
        let mut load = self.motion.replace('_', " ");
        if self.moment_nm > 0.0 {
            load.push_str(&format!(" {} N m", self.moment_nm));
        }
        if self.follower_n > 0.0 {
            load.push_str(&format!(" + {} N follower load", self.follower_n));
        }
        let quantity = match self.quantity.as_str() {
            "rom_deg" => "rotation (deg)",
            "idp_mpa" => "intradiscal pressure (MPa)",
            "facet_force_n" => "facet force, both sides (N)",
            "facet_force_contralateral_n" => "contralateral facet force (N)",
            other => other,
        };
        format!("{specimen}, {load}: {quantity}")
    }

    /// The source's first part (`Heuer et al. 2007`), for tables with little room.
    pub fn short_source(&self) -> &str {
        self.source.split(',').next().unwrap_or(&self.source).trim()
    }
}

/// Rows that were used to choose a default rather than held out: the default ligament set
/// ([`crate::ligament::LigamentSet::GoelBilinear`]) was picked over the Remus set by the
/// intact L4-L5 rows of Niosi et al. without preload.
fn choice_note(row: &str) -> &'static str {
    if matches!(row, "niosi_flex" | "niosi_ext" | "niosi_lb" | "niosi_ar") {
        "used to choose the default ligament set (Goel over Remus)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_sources() {
        let t = targets();
        assert_eq!(t.len(), 31);
        assert!(t.iter().all(|t| !t.source.is_empty() && t.source != "same"));
        let n = t.iter().find(|t| t.id == "niosi_ar").unwrap();
        assert_eq!((n.mean, n.spread), (2.1, Some(0.9)));
        assert!(n.source.contains("Niosi"));
        let h = t.iter().find(|t| t.id == "heuer_ext_2.5").unwrap();
        assert_eq!((h.mean, h.moment_nm, h.spread), (5.15, 2.5, None));
    }

    #[test]
    fn committed_table_reads_back_as_written() {
        let rows = committed();
        assert_eq!(rows.len(), targets().len());
        // What was read writes the same text again: no field is lost or changed.
        assert_eq!(to_csv(&rows), COMMITTED_CSV);
        // The committed rows are the compiled-in targets, field for field.
        for (r, t) in rows.iter().zip(targets()) {
            assert_eq!(r.target, t);
        }
        // Each row's verdict is its prediction against its band.
        for r in &rows {
            let inside = r
                .predicted
                .is_some_and(|p| p >= r.band[0] && p <= r.band[1]);
            assert_eq!(inside, r.pass, "{}", r.target.id);
        }
        let w = rows.iter().find(|r| r.target.id == "niosi_fl_lb").unwrap();
        assert_eq!(
            w.target.describe(),
            "L4-L5 intact segment, lateral bending left 7.5 N m + 600 N follower load: rotation (deg)"
        );
        assert_eq!(w.target.short_source(), "Niosi et al. 2006");
    }

    #[test]
    fn a_table_that_is_not_ours_is_refused_with_the_line() {
        assert!(from_csv("a,b\n1,2\n")
            .unwrap_err()
            .to_string()
            .contains("header"));
        let mut t = to_csv(&[]);
        t.push_str(
            "x,disc_only_l4l5,flexion,1,0,rom_deg,4.95,,none,3.7,6.2,2.5,maybe,\"\",\"s\"\n",
        );
        let e = from_csv(&t).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("maybe"), "{e}");
        let mut t = to_csv(&[]);
        t.push_str(
            "x,disc_only_l4l5,flexion,one,0,rom_deg,4.95,,none,3.7,6.2,2.5,pass,\"\",\"s\"\n",
        );
        assert!(from_csv(&t).unwrap_err().to_string().contains("'one'"));
    }
}
