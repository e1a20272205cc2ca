//! The phantom twin for the tests: built once (phantom -> segmentation -> landmarks) and
//! cached as JSON in Cargo's target tmp folder, then cut down to the requested levels.
#![allow(dead_code)]

use nalgebra::Vector3;
use spinetwin_model::twin::{
    CaseResult, Fidelity, ImplantLoadKind, Twin, TwinFile, TwinParams, TWIN_SCHEMA_VERSION,
};
use std::sync::OnceLock;

pub fn phantom_file() -> TwinFile {
    static FILE: OnceLock<TwinFile> = OnceLock::new();
    FILE.get_or_init(|| build_file(None, "scenario_phantom_twin.json"))
        .clone()
}

/// The twin of a phantom generated with only the L3-S1 levels, the set-up of
/// `spinetwin demo --levels L3-S1` (docs/validation/scenarios_phantom.md).
pub fn l3s1_file() -> TwinFile {
    static FILE: OnceLock<TwinFile> = OnceLock::new();
    FILE.get_or_init(|| build_file(Some("L3-S1"), "scenario_phantom_l3s1_twin.json"))
        .clone()
}

fn build_file(levels: Option<&str>, cache: &str) -> TwinFile {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(cache);
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Ok(f) = serde_json::from_str::<TwinFile>(&text) {
            return f;
        }
    }
    let mut spec = spinetwin_phantom::PhantomSpec::default();
    if let Some(l) = levels {
        spec.levels = l.parse().unwrap();
    }
    let ph = spinetwin_phantom::generate(&spec).unwrap();
    let seg = spinetwin_segment::segment(&ph.ct, &Default::default()).unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &seg.labels).unwrap();
    let f = TwinFile {
        schema_version: TWIN_SCHEMA_VERSION,
        fidelity: Fidelity::Hybrid,
        source: "built-in phantom (tests)".into(),
        pseudonym: String::new(),
        params: TwinParams::default(),
        landmarks: lm,
    };
    let _ = std::fs::write(&cache, serde_json::to_string(&f).unwrap());
    f
}

/// The phantom twin file cut down to `levels` (e.g. `["L3", "L4", "L5"]`).
pub fn specimen_file(levels: &[&str]) -> TwinFile {
    let mut file = phantom_file();
    file.landmarks
        .vertebrae
        .retain(|v| levels.contains(&v.level.name()));
    file.landmarks
        .discs
        .retain(|d| levels.contains(&d.upper.name()) && levels.contains(&d.lower.name()));
    file
}

/// The phantom twin cut down to `levels` (e.g. `["L3", "L4", "L5"]`).
pub fn specimen(levels: &[&str]) -> Twin {
    Twin::build(specimen_file(levels)).unwrap()
}

/// The total force (N) an interbody cage puts on vertebra `body` in `r`, summed over its
/// endplate faces, in the vertebra's reference orientation.
pub fn cage_force(r: &CaseResult, body: usize) -> Vector3<f64> {
    r.implant_loads
        .iter()
        .filter(|l| l.body == body)
        .filter_map(|l| match &l.kind {
            ImplantLoadKind::Endplate { forces_n, .. } => Some(
                forces_n
                    .iter()
                    .map(|f| Vector3::from(*f))
                    .sum::<Vector3<f64>>(),
            ),
            _ => None,
        })
        .sum()
}
