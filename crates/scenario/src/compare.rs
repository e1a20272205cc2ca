//! Scenario against intact: per load case and motion segment, the rotation in the loaded
//! plane, the intradiscal pressure and the facet forces, with the change in per cent; per
//! scenario the peak rod and screw stress against the Ti-6Al-4V fatigue limit. Written as CSV, JSON
//! and one self-contained HTML page. A case that did not converge is reported as not
//! converged, never as a number.

use serde::Serialize;
use spinetwin_model::full::BoneStress;
use spinetwin_model::summary::ModelSummary;

use crate::header::esc;
use spinetwin_model::twin::{CaseResult, Twin};

use crate::apply::{ScenarioModel, ScrewPlan};
use crate::matched::{total_rom, MatchedCase};

/// Fatigue limit of Ti-6Al-4V used to judge rod stress (MPa): 460 MPa, the fatigue limit
/// of Ti-6Al-4V (duplex microstructure) reached at 1e9 cycles, Janecek et al. 2015, Acta
/// Physica Polonica A 128:497 (doi 10.12693/APhysPolA.128.497). Rotating-bending tests
/// between 1e4 and 1e7 cycles in the same study lie above it, so this is conservative.
pub const TI6AL4V_FATIGUE_LIMIT_MPA: f64 = 460.0;

/// Source of [`TI6AL4V_FATIGUE_LIMIT_MPA`].
pub const TI6AL4V_FATIGUE_SOURCE: &str =
    "Janecek et al. 2015, Acta Phys Pol A 128:497 (Ti-6Al-4V, fatigue limit at 1e9 cycles)";

/// Core diameter of a pedicle screw as a fraction of its thread (outer) diameter, for the
/// stress at its entry into the bone: a modelling choice for a cylindrical pedicle screw
/// (a 6.5 mm screw with a core of about 4.5 mm), not a measured value of a given implant.
pub const SCREW_CORE_RATIO: f64 = 0.7;

/// What each screw of `sm` carries where it enters the bone, in the last state of `r`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrewLoad {
    /// Screw name.
    pub name: String,
    /// Von Mises stress (MPa) on the core section at the entry.
    pub von_mises_mpa: f64,
    /// Force along the screw pulling it out of the bone (N; negative: pushing it in).
    pub pullout_force_n: f64,
    /// Force across the screw (N): the toggle load on the bone.
    pub transverse_force_n: f64,
}

/// The loads of each screw of `sm` at its entry into the bone, in the last state of `r`:
/// the rod loads at its head (summed over its rods) carried to the entry through the
/// stretch of screw outside the bone, `M_entry = M_head + (head - entry) x F`; the von
/// Mises stress on a solid core of [`SCREW_CORE_RATIO`] times the thread diameter: `sigma
/// = |N| / A + |M_bending| / W`, `tau = |T| / (2 W)`, `sqrt(sigma^2 + 3 tau^2)`. Where a
/// screw leaves the bone is where it bends most and where screws break; the pull-out and
/// toggle forces are what its hold in the bone carries (an elastically anchored screw's
/// connector carries the same, `tests/literature.rs`). One per screw loaded by a rod; empty
/// when `r` did not converge.
pub fn screw_entry_stress(sm: &ScenarioModel, r: &CaseResult) -> Vec<ScrewLoad> {
    use nalgebra::Vector3;
    use spinetwin_model::twin::ImplantLoadKind;
    if !r.converged {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in &sm.twin.implants.screws {
        let (head, entry) = (Vector3::from(s.head), Vector3::from(s.entry));
        let mut f = Vector3::zeros();
        let mut m = Vector3::zeros();
        let mut loaded = false;
        for l in r.implant_loads.iter().filter(|l| l.body == s.body) {
            if let ImplantLoadKind::Rod {
                at,
                force_n,
                moment_nmm,
            } = &l.kind
            {
                if (Vector3::from(*at) - head).norm() < 1e-6 {
                    f += Vector3::from(*force_n);
                    m += Vector3::from(*moment_nmm);
                    loaded = true;
                }
            }
        }
        let axis = Vector3::from(s.tip) - entry;
        if !loaded || axis.norm() == 0.0 {
            continue;
        }
        let a = axis.normalize();
        let me = m + (head - entry).cross(&f);
        let (n, t) = (f.dot(&a), me.dot(&a));
        let mb = (me - a * t).norm();
        let d = 2.0 * s.radius_mm * SCREW_CORE_RATIO;
        let area = std::f64::consts::PI * d * d / 4.0;
        let w = std::f64::consts::PI * d.powi(3) / 32.0;
        let sigma = n.abs() / area + mb / w;
        let tau = t.abs() / (2.0 * w);
        out.push(ScrewLoad {
            name: s.name.clone(),
            von_mises_mpa: (sigma * sigma + 3.0 * tau * tau).sqrt(),
            pullout_force_n: -n,
            transverse_force_n: (f - a * n).norm(),
        });
    }
    out
}

/// One comparison row.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonRow {
    /// Scenario name.
    pub scenario: String,
    /// Load case name.
    pub load_case: String,
    /// Motion segment (`L4-L5`) or rod name.
    pub level: String,
    /// `rotation_deg`, `idp_mpa`, `facet_force_left_n`, `facet_force_right_n`,
    /// `total_rotation_deg`, `rod_peak_von_mises_mpa` (the level is then a rod),
    /// `screw_peak_von_mises_mpa`, `screw_pullout_force_n`, `screw_transverse_force_n` (a
    /// screw, [`screw_entry_stress`]); at the full fidelity also the
    /// per-vertebra [`BONE_METRICS`] (the level is then a vertebra).
    pub metric: String,
    /// Intact value (None: not converged, or not applicable).
    pub intact: Option<f64>,
    /// Scenario value (None: not converged, or not applicable).
    pub value: Option<f64>,
    /// `(value - intact) / |intact| * 100`, when both exist and intact is not ~0.
    pub change_pct: Option<f64>,
    /// Why a value is missing, or what it is compared with.
    pub note: String,
    /// `load` (the nominal pure moment on both, the lab standard) or `rom-matched` (the
    /// scenario under the moment at which its total ROM equals the intact one; the intact
    /// value is still the intact twin under the nominal moment). See [`crate::matched`].
    pub control: String,
    /// The moment on the scenario (N m): the nominal one under load control, M' under
    /// ROM-matched control; None for cases without a moment or when no M' was found.
    pub scenario_moment_nm: Option<f64>,
}

/// Control mode names as written in the `control` column.
pub const CONTROL_LOAD: &str = "load";
/// See [`CONTROL_LOAD`].
pub const CONTROL_ROM_MATCHED: &str = "rom-matched";

/// What one scenario did and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioSummary {
    /// Name.
    pub name: String,
    /// File.
    pub file: String,
    /// Changes made to the model.
    pub changes: Vec<String>,
    /// Assumptions.
    pub assumptions: Vec<String>,
    /// Screws.
    pub screws: Vec<ScrewPlan>,
    /// Converged load cases of all.
    pub converged: [usize; 2],
    /// Highest rod von Mises stress over the converged cases (MPa).
    pub rod_peak_von_mises_mpa: Option<f64>,
    /// Highest screw von Mises stress at the entry into the bone over the converged cases
    /// (MPa; [`screw_entry_stress`]).
    pub screw_peak_von_mises_mpa: Option<f64>,
    /// The fatigue limit it is compared with (MPa) and its source.
    pub rod_fatigue_limit_mpa: f64,
    /// Source of the limit.
    pub rod_fatigue_source: String,
    /// Whether the comparison must say that bone stress needs the full fidelity.
    pub needs_full_fidelity: bool,
    /// Cemented vertebrae compressed as deformable voxel models from the CT (empty when
    /// the CT was not given or nothing is cemented; see [`crate::bone`]).
    pub bone_checks: Vec<crate::bone::BoneCheck>,
    /// Why the bone checks are missing or failed, when they are.
    pub bone_check_note: Option<String>,
    /// Vertebrae with screws or cages under the implants' loads as deformable voxel models
    /// from the CT (empty without the CT or implants; see [`crate::bone::implant_checks`]).
    pub implant_checks: Vec<crate::bone::ImplantCheck>,
    /// Why the implant bone checks are missing or failed, when they are.
    pub implant_check_note: Option<String>,
    /// Each planned screw against the label map (empty without the CT and labels; see
    /// [`crate::breach`]), in the order of `screws`.
    pub screw_breaches: Vec<crate::breach::ScrewBreach>,
    /// Why the breach check is missing or failed, when it is.
    pub breach_note: Option<String>,
    /// What seating a distracting cage does before any load (from the pre-operative
    /// geometry), per segment that it moves; empty without one. Every rotation of the
    /// scenario is measured from this pose.
    pub seated: Vec<SeatedSegment>,
    /// How far the model's response to each of the scenario's operations is checked against
    /// published data ([`crate::Operation::evidence`]), one entry per distinct statement.
    pub evidence: Vec<EvidenceNote>,
}

/// One statement of [`ScenarioSummary::evidence`].
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceNote {
    /// How far it is checked.
    pub evidence: crate::Evidence,
    /// What was compared, in plain language.
    pub text: String,
}

/// A segment as a distracting implant leaves it, before any load, against the
/// pre-operative geometry ([`spinetwin_model::twin::CaseResult::seated`]).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SeatedSegment {
    /// Segment, e.g. "L4-L5".
    pub level: String,
    /// Change of the mean disc height (mm, positive: opened).
    pub disc_height_change_mm: f64,
    /// Rotation of the upper vertebra relative to the lower one (degrees, the lower one's
    /// anatomical axes: flexion +, lateral bending left +, axial rotation left +).
    pub rotation_deg: [f64; 3],
}

/// The segments a distracting implant moves by more than 0.05 mm or 0.1 degree when it is
/// seated, from the first converged result that has a seated pose.
fn seated_segments(results: &[CaseResult]) -> Vec<SeatedSegment> {
    let Some(p) = results
        .iter()
        .filter(|r| r.converged)
        .find_map(|r| r.seated.as_ref())
    else {
        return Vec::new();
    };
    p.segments
        .iter()
        .filter(|g| {
            g.disc_height_change_mm.abs() > 0.05 || g.rotation_deg.iter().any(|a| a.abs() > 0.1)
        })
        .map(|g| SeatedSegment {
            level: format!("{}-{}", g.upper.name(), g.lower.name()),
            disc_height_change_mm: g.disc_height_change_mm,
            rotation_deg: g.rotation_deg,
        })
        .collect()
}

/// One sentence on what seating the distracting implants does (empty without any).
fn seated_sentence(seated: &[SeatedSegment]) -> String {
    if seated.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = seated
        .iter()
        .map(|g| {
            let [sag, cor, axi] = g.rotation_deg;
            let mut s = format!("{} disc height {:+.1} mm", g.level, g.disc_height_change_mm);
            if sag.abs() >= 0.05 {
                s.push_str(&format!(
                    " and {:.1} deg {}",
                    sag.abs(),
                    if sag < 0.0 {
                        "more lordotic"
                    } else {
                        "less lordotic"
                    }
                ));
            }
            for (a, side, what) in [(cor, "left", "bent"), (axi, "left", "rotated")] {
                if a.abs() >= 0.1 {
                    let side = if a > 0.0 { side } else { "right" };
                    s.push_str(&format!(", {what} {:.1} deg to the {side}", a.abs()));
                }
            }
            s
        })
        .collect();
    format!(
        "Driving in the distracting cage, before any load: {} (against the pre-operative geometry); the rotations of this scenario are measured from that pose. ",
        parts.join("; ")
    )
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The intact twin the scenarios were applied to: pseudonym, contents, parameters and
    /// the validation status of the model (the report's header).
    pub model: ModelSummary,
    /// Load cases, in order.
    pub load_cases: Vec<String>,
    /// Whether the intact twin converged in each.
    pub intact_converged: Vec<bool>,
    /// Scenarios.
    pub scenarios: Vec<ScenarioSummary>,
    /// Rows.
    pub rows: Vec<ComparisonRow>,
    /// The ROM-matched searches, one per scenario and pure-moment case (empty under load
    /// control only).
    pub matched: Vec<MatchedCase>,
    /// 3D pictures of the deformed twins, shown in the HTML page (the PNG files are written
    /// beside it; not part of the JSON).
    #[serde(skip)]
    pub snapshots: Vec<Snapshot>,
    /// Element size (mm) of the deformable vertebrae when the twins were solved at the
    /// full fidelity ([`Comparison::set_full_fidelity`]); `None` for the hybrid fidelity.
    pub full_fidelity_element_mm: Option<f64>,
    /// At the full fidelity: whether a cage on a deformable vertebra kept its friction
    /// (`FullOptions::cage_friction`); false otherwise.
    #[serde(default)]
    pub full_fidelity_cage_friction: bool,
    /// Moment-rotation curves under load control: the intact twin's and each scenario's,
    /// per pure-moment case and segment. Comparisons written before them read none.
    #[serde(default)]
    pub curves: Vec<Curve>,
}

/// Colours of the report's charts, one per load case or segment in order (the
/// colour-blind-safe palette of Wong 2011, Nat Methods 8:441).
const COLOURS: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999999",
];

/// Name of the intact twin in [`Curve::twin`].
pub const INTACT: &str = "intact";

/// The moment-rotation curve of one segment of one twin in one pure-moment case.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Curve {
    /// [`INTACT`] or the scenario's name.
    pub twin: String,
    /// Load case name.
    pub load_case: String,
    /// Motion segment (`L4-L5`).
    pub segment: String,
    /// (moment in N m, rotation in the loaded plane in degrees), from the unloaded state
    /// (0, 0) when the case has no follower load, then at each sampled moment.
    pub points: Vec<(f64, f64)>,
}

/// The curves of one solved twin (converged pure-moment cases only).
fn curves_of(twin: &str, results: &[CaseResult]) -> Vec<Curve> {
    results
        .iter()
        .flat_map(|r| {
            r.moment_rotation()
                .into_iter()
                .map(|(segment, points)| Curve {
                    twin: twin.to_string(),
                    load_case: r.case.name.clone(),
                    segment,
                    points,
                })
        })
        .collect()
}

/// The bone metrics of the full fidelity, per deformable vertebra: (metric, what it is in
/// the report's table header). Those ending in `_ratio_p95` are stress over yield strength
/// ([`is_ratio_metric`]).
pub const BONE_METRICS: [(&str, &str); 9] = [
    ("bone_body_p95_mpa", "body"),
    (
        "bone_superior_endplate_p95_mpa",
        "under the superior endplate",
    ),
    (
        "bone_inferior_endplate_p95_mpa",
        "under the inferior endplate",
    ),
    ("bone_posterior_p95_mpa", "posterior elements"),
    ("bone_around_screws_p95_mpa", "around the screws"),
    ("cement_p95_mpa", "cement"),
    (
        "bone_superior_centre_ratio_p95",
        "superior endplate, under the nucleus or cage",
    ),
    (
        "bone_inferior_centre_ratio_p95",
        "inferior endplate, under the nucleus or cage",
    ),
    ("bone_around_screws_ratio_p95", "around the screws"),
];

/// Whether `metric` is one of the [`BONE_METRICS`] that are a stress over the bone's yield
/// strength (the subsidence and loosening indicators) rather than a stress.
pub fn is_ratio_metric(metric: &str) -> bool {
    is_bone_metric(metric) && metric.ends_with("_ratio_p95")
}

/// Whether `metric` is one of [`BONE_METRICS`] (rows per vertebra, not per segment).
fn is_bone_metric(metric: &str) -> bool {
    BONE_METRICS.iter().any(|(m, _)| *m == metric)
}

/// The value of one of [`BONE_METRICS`] in a vertebra's bone stress.
fn bone_value(b: &BoneStress, metric: &str) -> Option<f64> {
    match metric {
        "bone_body_p95_mpa" => Some(b.body_p95_mpa),
        "bone_superior_endplate_p95_mpa" => b.superior_endplate_p95_mpa,
        "bone_inferior_endplate_p95_mpa" => b.inferior_endplate_p95_mpa,
        "bone_posterior_p95_mpa" => b.posterior_p95_mpa,
        "bone_around_screws_p95_mpa" => b.around_screws_p95_mpa,
        "cement_p95_mpa" => b.cement_p95_mpa,
        "bone_superior_centre_ratio_p95" => b.superior_centre_ratio_p95,
        "bone_inferior_centre_ratio_p95" => b.inferior_centre_ratio_p95,
        "bone_around_screws_ratio_p95" => b.around_screws_ratio_p95,
        _ => None,
    }
}

/// A picture of one deformed twin (intact or a scenario) under one load case.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// [`SNAPSHOT_INTACT`] or the scenario's name.
    pub scenario: String,
    /// True for the intact twin's picture (a scenario may be called "intact" too).
    pub intact: bool,
    /// The load case shown.
    pub case: String,
    /// File name of the PNG, relative to the report.
    pub file: String,
    /// The PNG.
    pub png: Vec<u8>,
    /// What the colours mean, e.g. the stress scale: `(label, colour stops as CSS colours,
    /// low end, high end)`.
    pub legend: Option<(String, Vec<String>, String, String)>,
    /// One line on what else is drawn (bones, implants, ligaments).
    pub caption: String,
}

/// [`Snapshot::scenario`] of the intact twin's picture.
pub const SNAPSHOT_INTACT: &str = "intact";

impl Snapshot {
    /// HTML figure with the PNG embedded (data URI) so the page stays self-contained.
    pub fn to_html(&self) -> String {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(&self.png);
        let mut h = format!(
            "<figure><img alt='{} under {}' src='data:image/png;base64,{data}' style='max-width:100%'>\
<figcaption>{} under {}. {}",
            esc(&self.scenario),
            esc(&self.case),
            esc(&self.scenario),
            esc(&self.case),
            esc(&self.caption)
        );
        if let Some((label, stops, lo, hi)) = &self.legend {
            h.push_str(&format!(
                "<div style='display:flex;align-items:center;gap:6px;margin-top:4px'>{}: {}\
<span style='display:inline-block;width:220px;height:12px;border:1px solid #888;background:linear-gradient(to right,{})'></span>{}</div>",
                esc(label),
                esc(lo),
                stops.join(","),
                esc(hi)
            ));
        }
        h.push_str("</figcaption></figure>");
        h
    }
}

fn change(intact: Option<f64>, value: Option<f64>) -> Option<f64> {
    match (intact, value) {
        (Some(a), Some(b)) if a.abs() > 1e-6 => Some((b - a) / a.abs() * 100.0),
        _ => None,
    }
}

/// Main-plane values of one converged case: per segment `(name, rotation, idp, [facets])`.
type SegVals = (String, Option<f64>, f64, [Option<f64>; 2]);

fn seg_values(r: &CaseResult) -> Option<Vec<SegVals>> {
    let last = r.last()?;
    if !r.converged {
        return None;
    }
    Some(
        last.segments
            .iter()
            .map(|g| {
                let rot = r.case.moment.map(|(m, _)| {
                    let (a, s) = m.axis_sign();
                    g.rotation_deg[a] * s
                });
                (
                    format!("{}-{}", g.upper.name(), g.lower.name()),
                    rot,
                    g.idp_mpa,
                    g.facet_force_n,
                )
            })
            .collect(),
    )
}

/// Rows of one scenario and one case: per segment rotation, IDP and facet forces, the total
/// rotation over the twin, and per rod the peak stress. `sr` is None when the scenario has
/// no result to show (`missing` says why); returns the rows and the highest rod stress.
fn case_rows(
    sm: &ScenarioModel,
    ir: &CaseResult,
    sr: Option<&CaseResult>,
    control: &str,
    missing: &str,
) -> (Vec<ComparisonRow>, [Option<f64>; 2]) {
    let name = &sm.scenario.name;
    let mut rows = Vec::new();
    let mut peak: Option<f64> = None;
    let s_converged = sr.is_some_and(|r| r.converged);
    let moment = |r: Option<&CaseResult>| r.and_then(|r| r.case.moment).map(|(_, m)| m / 1000.0);
    let scenario_moment_nm = moment(sr).or(if control == CONTROL_LOAD {
        moment(Some(ir))
    } else {
        None
    });
    let iv = seg_values(ir);
    let sv = sr.and_then(seg_values);
    let not_converged = |note: String| {
        let mut nc = Vec::new();
        if !ir.converged {
            nc.push("intact not converged".to_string());
        }
        if sr.is_some() && !s_converged {
            nc.push("scenario not converged".into());
        }
        if sr.is_none() && !missing.is_empty() {
            nc.push(missing.to_string());
        }
        if nc.is_empty() {
            note
        } else {
            nc.join("; ")
        }
    };
    let mut push = |level: String, metric: &str, i: Option<f64>, v: Option<f64>, note: String| {
        rows.push(ComparisonRow {
            scenario: name.clone(),
            load_case: ir.case.name.clone(),
            level,
            metric: metric.to_string(),
            intact: i,
            value: v,
            change_pct: change(i, v),
            note,
            control: control.to_string(),
            scenario_moment_nm,
        });
    };
    let nseg = sm.twin.discs.len();
    for k in 0..nseg {
        let seg = format!(
            "{}-{}",
            sm.twin.levels[k].name(),
            sm.twin.levels[k + 1].name()
        );
        let no_nucleus = sm.discs_without_nucleus.contains(&k);
        let get = |v: &Option<Vec<SegVals>>, f: &dyn Fn(&SegVals) -> Option<f64>| {
            v.as_ref().and_then(|v| v.get(k)).and_then(f)
        };
        let mut metrics: Vec<(&str, Option<f64>, Option<f64>, String)> = Vec::new();
        if ir.case.moment.is_some() {
            metrics.push((
                "rotation_deg",
                get(&iv, &|s| s.1),
                get(&sv, &|s| s.1),
                String::new(),
            ));
        }
        let (sidp, idp_note) = if no_nucleus {
            (
                None,
                "nucleus removed or replaced: IDP not defined".to_string(),
            )
        } else {
            (get(&sv, &|s| Some(s.2)), String::new())
        };
        metrics.push(("idp_mpa", get(&iv, &|s| Some(s.2)), sidp, idp_note));
        for side in 0..2 {
            let metric = ["facet_force_left_n", "facet_force_right_n"][side];
            let i = get(&iv, &|s| s.3[side]);
            let v = get(&sv, &|s| s.3[side]);
            let note = if sv.is_some() && v.is_none() {
                "facet joint removed or not modelled".to_string()
            } else {
                String::new()
            };
            metrics.push((metric, i, v, note));
        }
        for (metric, i, v, note) in metrics {
            push(seg.clone(), metric, i, v, not_converged(note));
        }
    }
    if ir.case.moment.is_some() && nseg > 0 {
        let whole = format!(
            "{}-{}",
            sm.twin.levels[0].name(),
            sm.twin.levels[nseg].name()
        );
        push(
            whole,
            "total_rotation_deg",
            total_rom(ir),
            sr.and_then(total_rom),
            not_converged(String::new()),
        );
    }
    // Bone stress per deformable vertebra (full fidelity only).
    let bones = |r: Option<&CaseResult>| -> Option<Vec<BoneStress>> {
        r.filter(|r| r.converged)
            .and_then(|r| r.last())
            .map(|s| s.bone_stress.clone())
            .filter(|b| !b.is_empty())
    };
    let (ib, sb) = (bones(Some(ir)), bones(sr));
    let mut vertebrae: Vec<String> = Vec::new();
    for b in ib.iter().chain(&sb).flatten() {
        if !vertebrae.contains(&b.level) {
            vertebrae.push(b.level.clone());
        }
    }
    let find = |v: &Option<Vec<BoneStress>>, level: &str, metric: &str| {
        v.as_ref()
            .and_then(|v| v.iter().find(|b| b.level == level))
            .and_then(|b| bone_value(b, metric))
    };
    // Whether the scenario has a cage in the disc a centre-ratio metric of `level` faces.
    let caged = |level: &str, metric: &str| -> bool {
        let Some(k) = sm.twin.levels.iter().position(|l| l.name() == level) else {
            return false;
        };
        let upper = if metric.contains("superior") {
            k.checked_sub(1)
        } else {
            Some(k)
        };
        sm.twin.implants.disc_blocks.iter().any(|b| {
            b.kind == spinetwin_model::twin::DiscBlockKind::Cage
                && sm
                    .twin
                    .discs
                    .get(b.disc)
                    .is_some_and(|d| Some(d.upper) == upper)
        })
    };
    const RATIO: &str = "von Mises stress over the compressive yield strength of each \
                         element's bone from its density (Kopperdahl 2002), 95th percentile";
    for level in &vertebrae {
        for (metric, _) in BONE_METRICS {
            let (i, v) = (find(&ib, level, metric), find(&sb, level, metric));
            if i.is_none() && v.is_none() {
                continue;
            }
            let cemented = find(&sb, level, "cement_p95_mpa").is_some();
            let centre = matches!(
                metric,
                "bone_superior_centre_ratio_p95" | "bone_inferior_centre_ratio_p95"
            );
            let note = match metric {
                "bone_around_screws_p95_mpa" | "bone_around_screws_ratio_p95" if i.is_none() => {
                    "no screws in the intact spine".to_string()
                }
                _ if centre && v.is_none() && sr.is_some_and(|r| r.converged) => {
                    "no nucleus or cage left in the scenario's disc (nucleotomy): no centre zone"
                        .to_string()
                }
                _ if centre && caged(level, metric) => format!(
                    "{RATIO} over the endplate layer under the cage (in the intact spine the \
                     same elements under the nucleus): the subsidence indicator; above 1 the \
                     bone yields under this load"
                ),
                _ if centre => format!(
                    "{RATIO} over the endplate layer under the nucleus: the endplate's load \
                     against its strength; above 1 the bone yields under this load"
                ),
                "cement_p95_mpa" if i.is_none() => "no cement in the intact spine".to_string(),
                "bone_body_p95_mpa" if cemented => {
                    "scenario: the body's bone around the cement; intact: the whole body"
                        .to_string()
                }
                _ => String::new(),
            };
            push(level.clone(), metric, i, v, not_converged(note));
        }
    }
    for (b, beam) in sm.twin.implants.beams.iter().enumerate() {
        let v = sr
            .filter(|r| r.converged)
            .and_then(|r| r.last())
            .and_then(|s| s.beams.get(b))
            .map(|x| x.max_von_mises_mpa);
        if let Some(v) = v {
            peak = Some(peak.map_or(v, |p: f64| p.max(v)));
        }
        let note = if v.is_some() {
            format!(
                "Ti-6Al-4V fatigue limit {TI6AL4V_FATIGUE_LIMIT_MPA} MPa ({TI6AL4V_FATIGUE_SOURCE})"
            )
        } else if sr.is_some() {
            "scenario not converged".into()
        } else {
            missing.to_string()
        };
        push(beam.name.clone(), "rod_peak_von_mises_mpa", None, v, note);
    }
    let loads = sr.map(|r| screw_entry_stress(sm, r)).unwrap_or_default();
    let mut screw_peak: Option<f64> = None;
    for screw in &sm.twin.implants.screws {
        let load = loads.iter().find(|l| l.name == screw.name);
        let v = load.map(|l| l.von_mises_mpa);
        if let Some(v) = v {
            screw_peak = Some(screw_peak.map_or(v, |p: f64| p.max(v)));
        }
        let note = if v.is_some() {
            format!(
                "at the entry into the bone, on a core of {SCREW_CORE_RATIO} x the thread diameter; Ti-6Al-4V fatigue limit {TI6AL4V_FATIGUE_LIMIT_MPA} MPa ({TI6AL4V_FATIGUE_SOURCE})"
            )
        } else if sr.is_some_and(|r| !r.converged) {
            "scenario not converged".into()
        } else if sr.is_some() {
            "no rod on this screw".into()
        } else {
            missing.to_string()
        };
        push(
            screw.name.clone(),
            "screw_peak_von_mises_mpa",
            None,
            v,
            note.clone(),
        );
        let force_note = if load.is_some() {
            "at the entry into the bone: what the screw's hold carries".to_string()
        } else {
            note
        };
        push(
            screw.name.clone(),
            "screw_pullout_force_n",
            None,
            load.map(|l| l.pullout_force_n),
            force_note.clone(),
        );
        push(
            screw.name.clone(),
            "screw_transverse_force_n",
            None,
            load.map(|l| l.transverse_force_n),
            force_note,
        );
    }
    (rows, [peak, screw_peak])
}

/// Compares each scenario's results with the intact ones (same load cases, same order),
/// under load control.
pub fn compare(
    twin: &Twin,
    intact: &[CaseResult],
    scenarios: &[(&ScenarioModel, Vec<CaseResult>)],
) -> Comparison {
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    let mut curves = curves_of(INTACT, intact);
    for (sm, results) in scenarios {
        curves.extend(curves_of(&sm.scenario.name, results));
        let mut peak: [Option<f64>; 2] = [None, None];
        for (ir, sr) in intact.iter().zip(results) {
            let (r, p) = case_rows(sm, ir, Some(sr), CONTROL_LOAD, "");
            rows.extend(r);
            for (k, p) in p.into_iter().enumerate() {
                if let Some(p) = p {
                    peak[k] = Some(peak[k].map_or(p, |q: f64| q.max(p)));
                }
            }
        }
        summaries.push(ScenarioSummary {
            seated: seated_segments(results),
            evidence: {
                let mut notes: Vec<EvidenceNote> = Vec::new();
                for op in &sm.scenario.operations {
                    let (evidence, text) = op.evidence();
                    if !notes.iter().any(|n| n.text == text) {
                        notes.push(EvidenceNote {
                            evidence,
                            text: text.to_string(),
                        });
                    }
                }
                notes
            },
            name: sm.scenario.name.clone(),
            file: sm.scenario.file.clone(),
            changes: sm.changes.clone(),
            assumptions: sm.assumptions.clone(),
            screws: sm.screws.clone(),
            converged: [
                results.iter().filter(|r| r.converged).count(),
                results.len(),
            ],
            rod_peak_von_mises_mpa: peak[0],
            screw_peak_von_mises_mpa: peak[1],
            rod_fatigue_limit_mpa: TI6AL4V_FATIGUE_LIMIT_MPA,
            rod_fatigue_source: TI6AL4V_FATIGUE_SOURCE.into(),
            needs_full_fidelity: !sm.cemented.is_empty(),
            bone_checks: Vec::new(),
            bone_check_note: (!sm.cemented.is_empty()).then(|| {
                "the CT was not given: the cemented vertebra was not compressed as deformable \
                 bone (plan --ct CT --labels SEG)"
                    .to_string()
            }),
            implant_checks: Vec::new(),
            implant_check_note: has_bone_implants(sm).then(|| {
                "the CT was not given: the bone around the screws and under the cage was not \
                 checked with deformable vertebrae (plan --ct CT --labels SEG)"
                    .to_string()
            }),
            screw_breaches: Vec::new(),
            breach_note: (!sm.screws.is_empty()).then(|| {
                "the label map was not given: the screws were not checked for a breach of the \
                 pedicle (plan --ct CT --labels SEG)"
                    .to_string()
            }),
        });
    }
    Comparison {
        model: ModelSummary::of(twin),
        load_cases: intact.iter().map(|r| r.case.name.clone()).collect(),
        intact_converged: intact.iter().map(|r| r.converged).collect(),
        scenarios: summaries,
        rows,
        matched: Vec::new(),
        snapshots: Vec::new(),
        full_fidelity_element_mm: None,
        full_fidelity_cage_friction: false,
        curves,
    }
}

impl Comparison {
    /// Marks the comparison as solved at the full fidelity (deformable vertebrae of
    /// `element_mm`; `cage_friction`: cages on deformable bone kept their friction): cement
    /// then acts in the solve, so no scenario is flagged as needing deformable bone.
    pub fn set_full_fidelity(&mut self, element_mm: f64, cage_friction: bool) {
        self.full_fidelity_element_mm = Some(element_mm);
        self.full_fidelity_cage_friction = cage_friction;
        for sc in &mut self.scenarios {
            // The bone stress rows replace the isolated bone checks.
            sc.needs_full_fidelity = false;
            sc.bone_check_note = None;
            sc.implant_check_note = None;
        }
    }

    /// Adds the ROM-matched rows of one scenario (`matched`: its searches, one per
    /// pure-moment case of `intact`, see [`crate::matched::rom_matched`]). A search that
    /// found no M' gives rows without scenario values, with the reason in the note.
    pub fn add_rom_matched(
        &mut self,
        sm: &ScenarioModel,
        intact: &[CaseResult],
        matched: Vec<MatchedCase>,
    ) {
        for m in &matched {
            let Some(ir) = intact.iter().find(|r| r.case.name == m.load_case) else {
                continue;
            };
            let missing = if m.note.is_empty() {
                "no ROM-matched result".to_string()
            } else {
                m.note.clone()
            };
            let (rows, _) = case_rows(
                sm,
                ir,
                m.result.as_ref().filter(|_| m.matched),
                CONTROL_ROM_MATCHED,
                &missing,
            );
            self.rows.extend(rows);
        }
        self.matched.extend(matched);
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl ComparisonRow {
    fn value_text(&self, v: Option<f64>, intact_side: bool) -> String {
        match v {
            Some(x) => format!("{x:.4}"),
            None if self.note.contains(if intact_side {
                "intact not converged"
            } else {
                "scenario not converged"
            }) =>
            {
                "not converged".into()
            }
            None => String::new(),
        }
    }
}

impl Comparison {
    /// CSV: `scenario,load_case,level,metric,intact,scenario_value,change_pct,note,control,
    /// scenario_moment_nm`; a value of a case that did not converge reads `not converged`.
    /// The first eight columns are the documented interface; `control` (`load` or
    /// `rom-matched`) and the moment on the scenario come last.
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "scenario,load_case,level,metric,intact,scenario_value,change_pct,note,control,scenario_moment_nm\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&r.scenario),
                csv_field(&r.load_case),
                csv_field(&r.level),
                r.metric,
                r.value_text(r.intact, true),
                r.value_text(r.value, false),
                r.change_pct.map(|c| format!("{c:.1}")).unwrap_or_default(),
                csv_field(&r.note),
                r.control,
                r.scenario_moment_nm
                    .map(|m| format!("{m:.2}"))
                    .unwrap_or_default()
            ));
        }
        s
    }

    /// Implant stresses of one scenario per load case, of the rods or the screws (`metric`,
    /// `what` names the column): under the nominal moment and, where searched, under the
    /// ROM-matched moment M' (empty without them).
    fn stress_table(&self, sc: &ScenarioSummary, metric: &str, what: &str) -> String {
        let rods: Vec<&ComparisonRow> = self
            .rows
            .iter()
            .filter(|r| r.scenario == sc.name && r.metric == metric)
            .collect();
        if rods.is_empty() {
            return String::new();
        }
        // For screws, what their hold in the bone carries under load control.
        let screws = metric == "screw_peak_von_mises_mpa";
        let force = |case: &str, name: &str, m: &str| -> String {
            self.rows
                .iter()
                .find(|r| {
                    r.scenario == sc.name
                        && r.load_case == case
                        && r.level == name
                        && r.metric == m
                        && r.control == CONTROL_LOAD
                })
                .and_then(|r| r.value)
                .map_or_else(|| "-".into(), |v| format!("{v:.0}"))
        };
        let matched = rods.iter().any(|r| r.control == CONTROL_ROM_MATCHED);
        let mut h = format!(
            "<table><tr><th>load case</th><th>{what}</th><th>von Mises, load control (MPa)</th>"
        );
        if matched {
            h.push_str("<th>von Mises, ROM-matched (MPa)</th><th>M' (N m)</th>");
        }
        h.push_str("<th>highest, % of fatigue limit</th>");
        if screws {
            h.push_str(
                "<th>pull-out force, load control (N; negative: pushed in)</th><th>force across, load control (N)</th>",
            );
        }
        h.push_str("</tr>");
        let value = |r: Option<&&ComparisonRow>| -> String {
            match r {
                Some(r) => match r.value {
                    Some(v) => format!("{v:.0}"),
                    None if r.note.contains("not converged") => {
                        "<span class='nc'>not converged</span>".into()
                    }
                    None => "-".into(),
                },
                None => "-".into(),
            }
        };
        for case in &self.load_cases {
            let mut names: Vec<&str> = Vec::new();
            for r in rods.iter().filter(|r| &r.load_case == case) {
                if !names.contains(&r.level.as_str()) {
                    names.push(&r.level);
                }
            }
            for name in names {
                let find = |control: &str| {
                    rods.iter()
                        .find(|r| &r.load_case == case && r.level == name && r.control == control)
                };
                let (load, rm) = (find(CONTROL_LOAD), find(CONTROL_ROM_MATCHED));
                h.push_str(&format!(
                    "<tr><td class='l'>{}</td><td class='l'>{}</td><td>{}</td>",
                    esc(case),
                    esc(name),
                    value(load)
                ));
                if matched {
                    h.push_str(&format!(
                        "<td>{}</td><td>{}</td>",
                        value(rm),
                        rm.and_then(|r| r.scenario_moment_nm.filter(|_| r.value.is_some()))
                            .map(|m| format!("{m:.1}"))
                            .unwrap_or_else(|| "-".into())
                    ));
                }
                let top = [load, rm]
                    .iter()
                    .flatten()
                    .filter_map(|r| r.value)
                    .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
                h.push_str(&format!(
                    "<td>{}</td>",
                    top.map(|v| format!("{:.0} %", v / sc.rod_fatigue_limit_mpa * 100.0))
                        .unwrap_or_else(|| "-".into())
                ));
                if screws {
                    h.push_str(&format!(
                        "<td>{}</td><td>{}</td>",
                        force(case, name, "screw_pullout_force_n"),
                        force(case, name, "screw_transverse_force_n")
                    ));
                }
                h.push_str("</tr>");
            }
        }
        h.push_str("</table>");
        h
    }

    /// The per-segment table of one scenario under one control.
    fn segment_table(&self, sc: &ScenarioSummary, control: &str) -> String {
        let mut h = String::from("<table><tr><th>load case</th><th>segment</th><th>rotation (deg)</th><th>IDP (MPa)</th><th>facet left (N)</th><th>facet right (N)</th></tr>");
        for case in &self.load_cases {
            let rows: Vec<&ComparisonRow> = self
                .rows
                .iter()
                .filter(|r| r.scenario == sc.name && &r.load_case == case && r.control == control)
                .collect();
            let mut segs: Vec<&str> = Vec::new();
            for r in &rows {
                if !r.metric.ends_with("_peak_von_mises_mpa")
                    && !r.metric.starts_with("screw_")
                    && !is_bone_metric(&r.metric)
                    && !segs.contains(&r.level.as_str())
                {
                    segs.push(&r.level);
                }
            }
            for seg in segs {
                let total = rows
                    .iter()
                    .any(|r| r.level == seg && r.metric == "total_rotation_deg");
                h.push_str(&format!(
                    "<tr><td class='l'>{}</td><td class='l'>{}{}</td>",
                    esc(case),
                    esc(seg),
                    if total { " (whole twin)" } else { "" }
                ));
                for m in [
                    if total {
                        "total_rotation_deg"
                    } else {
                        "rotation_deg"
                    },
                    "idp_mpa",
                    "facet_force_left_n",
                    "facet_force_right_n",
                ] {
                    let r = rows.iter().find(|r| r.level == seg && r.metric == m);
                    h.push_str(&cell(r.copied()));
                }
                h.push_str("</tr>");
            }
        }
        h.push_str("</table>");
        h
    }

    /// Bar charts of one scenario under one control: the change of the rotation and of the
    /// disc pressure against the intact twin, per segment and load case.
    fn change_charts(&self, sc: &ScenarioSummary, control: &str) -> String {
        let charts: String = [
            ("rotation_deg", "Rotation (ROM) change against intact"),
            ("idp_mpa", "Disc pressure (IDP) change against intact"),
        ]
        .iter()
        .map(|(m, title)| self.change_bars_svg(&sc.name, m, control, title))
        .collect();
        if charts.is_empty() {
            return String::new();
        }
        format!("<div class='charts'>{charts}</div>")
    }

    /// An SVG bar chart (inline, for the self-contained page) of the change (%) of `metric`
    /// under `control` for scenario `name`: one group of bars per segment, cranial first,
    /// one bar per load case (colours in the legend). A case without a value (not
    /// converged, or an intact value of about zero) has no bar; the table above gives why.
    /// Bars beyond the scale's end (+/- 200 %) are cut there and carry their value. Empty
    /// when no row has a change.
    pub fn change_bars_svg(&self, name: &str, metric: &str, control: &str, title: &str) -> String {
        let rows: Vec<&ComparisonRow> = self
            .rows
            .iter()
            .filter(|r| r.scenario == name && r.metric == metric && r.control == control)
            .collect();
        let mut levels: Vec<&str> = Vec::new();
        for r in &rows {
            if !levels.contains(&r.level.as_str()) {
                levels.push(&r.level);
            }
        }
        let cases: Vec<&String> = self
            .load_cases
            .iter()
            .filter(|c| {
                rows.iter()
                    .any(|r| &r.load_case == *c && r.change_pct.is_some())
            })
            .collect();
        if cases.is_empty() || levels.is_empty() {
            return String::new();
        }
        const CAP: f64 = 200.0;
        let largest = rows
            .iter()
            .filter_map(|r| r.change_pct)
            .fold(10.0f64, |m, c| m.max(c.abs()))
            .min(CAP);
        // Scale: +/- the largest change rounded up to a 1-2-5 step.
        let step = [10.0, 20.0, 25.0, 50.0, 100.0]
            .into_iter()
            .find(|s| largest / s <= 4.0)
            .unwrap_or(100.0);
        let top = (largest / step).ceil() * step;
        let (w, h, left, right, head, foot) = (760.0, 310.0, 56.0, 12.0, 66.0, 30.0);
        let plot_w = w - left - right;
        let plot_h = h - head - foot;
        let y = |v: f64| head + plot_h / 2.0 - v.clamp(-top, top) / top * plot_h / 2.0;
        let group = plot_w / levels.len() as f64;
        let bar = group * 0.8 / cases.len() as f64;
        let mut s = format!(
            "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12' role='img' aria-label='{}'>\
<text x='{}' y='16' text-anchor='middle' font-weight='bold'>{} ({})</text>",
            esc(title),
            w / 2.0,
            esc(title),
            esc(control)
        );
        // Legend: one swatch per load case.
        let per_row = 4;
        for (k, c) in cases.iter().enumerate() {
            let (lx, ly) = (
                left + (k % per_row) as f64 * (plot_w / per_row as f64),
                38.0 + (k / per_row) as f64 * 15.0,
            );
            s.push_str(&format!(
                "<rect x='{lx}' y='{}' width='10' height='10' fill='{}'/><text x='{}' y='{}'>{}</text>",
                ly - 9.0,
                COLOURS[k % COLOURS.len()],
                lx + 14.0,
                ly,
                esc(c)
            ));
        }
        // Grid and axis labels.
        let mut v = -top;
        while v <= top + 1e-9 {
            s.push_str(&format!(
                "<line x1='{left}' x2='{}' y1='{y0:.1}' y2='{y0:.1}' stroke='{}'/><text x='{}' y='{:.1}' text-anchor='end'>{} %</text>",
                w - right,
                if v.abs() < 1e-9 { "#333" } else { "#ddd" },
                left - 4.0,
                y(v) + 4.0,
                if v.abs() < 1e-9 {
                    "0".to_string()
                } else {
                    format!("{v:+.0}")
                },
                y0 = y(v),
            ));
            v += step;
        }
        for (i, l) in levels.iter().enumerate() {
            let gx = left + i as f64 * group;
            s.push_str(&format!(
                "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>",
                gx + group / 2.0,
                h - 10.0,
                esc(l)
            ));
            for (k, c) in cases.iter().enumerate() {
                let Some(r) = rows.iter().find(|r| r.level == *l && &r.load_case == *c) else {
                    continue;
                };
                let Some(pct) = r.change_pct else { continue };
                let x = gx + group * 0.1 + k as f64 * bar;
                let (y0, y1) = (y(0.0), y(pct));
                s.push_str(&format!(
                    "<rect class='bar' x='{x:.1}' y='{:.1}' width='{:.1}' height='{:.1}' fill='{}'><title>{} {}: {:+.1} %</title></rect>",
                    y0.min(y1),
                    bar * 0.9,
                    (y1 - y0).abs(),
                    COLOURS[k % COLOURS.len()],
                    esc(l),
                    esc(c),
                    pct
                ));
                if pct.abs() > top {
                    s.push_str(&format!(
                        "<text x='{:.1}' y='{:.1}' text-anchor='middle' font-size='10'>{:+.0}</text>",
                        x + bar * 0.45,
                        if pct > 0.0 { y1 - 3.0 } else { y1 + 11.0 },
                        pct
                    ));
                }
            }
        }
        s.push_str("</svg>");
        s
    }

    /// Moment-rotation curves of scenario `name` against the intact twin under load control:
    /// one small chart per pure-moment case, one colour per segment, the scenario solid and
    /// the intact twin dashed. Empty without curves.
    fn curve_charts(&self, name: &str) -> String {
        let mut segments: Vec<&str> = Vec::new();
        for c in self.curves.iter().filter(|c| c.twin == name) {
            if !segments.contains(&c.segment.as_str()) {
                segments.push(&c.segment);
            }
        }
        if segments.is_empty() {
            return String::new();
        }
        let colour = |seg: &str| {
            let k = segments.iter().position(|s| *s == seg).unwrap_or(0);
            COLOURS[k % COLOURS.len()]
        };
        let mut h = String::from(
            "<h3>Moment-rotation curves (load control)</h3><p>Rotation of each segment in the \
loaded plane against the moment: the scenario solid, the intact twin dashed. ",
        );
        for seg in &segments {
            h.push_str(&format!(
                "<span style='color:{}'>&#9632; {}</span> ",
                colour(seg),
                esc(seg)
            ));
        }
        h.push_str("</p><div class='charts'>");
        for case in &self.load_cases {
            let of = |twin: &str| -> Vec<&Curve> {
                self.curves
                    .iter()
                    .filter(|c| c.twin == twin && &c.load_case == case)
                    .collect()
            };
            let (ours, intact) = (of(name), of(INTACT));
            if ours.is_empty() && intact.is_empty() {
                continue;
            }
            let pts = || ours.iter().chain(&intact).flat_map(|c| c.points.iter());
            let xmax = pts().map(|p| p.0).fold(1e-9, f64::max);
            let ymin = pts().map(|p| p.1).fold(0.0, f64::min);
            let ymax = pts().map(|p| p.1).fold(1e-9, f64::max);
            let (w, ht, left, bottom, top) = (250.0, 190.0, 34.0, 26.0, 22.0);
            let px = |x: f64| left + x / xmax * (w - left - 8.0);
            let py = |y: f64| top + (ymax - y) / (ymax - ymin) * (ht - top - bottom);
            let mut s = format!(
                "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{ht}' font-family='sans-serif' font-size='11' role='img' aria-label='moment-rotation, {c}'>\
<text x='{}' y='13' text-anchor='middle' font-weight='bold'>{c}</text>\
<line x1='{left}' x2='{}' y1='{y0:.1}' y2='{y0:.1}' stroke='#333'/>\
<line x1='{left}' x2='{left}' y1='{top}' y2='{}' stroke='#333'/>\
<text x='{}' y='{:.1}' text-anchor='start'>{ymax:.1} deg</text>\
<text x='{}' y='{:.1}' text-anchor='end'>{ymin:.1}</text>\
<text x='{}' y='{}' text-anchor='end'>{xmax:.1} N m</text>",
                w / 2.0,
                w - 8.0,
                ht - bottom,
                left + 3.0,
                py(ymax) + 4.0,
                left - 3.0,
                py(ymin),
                w - 8.0,
                ht - 8.0,
                c = esc(case),
                y0 = py(0.0),
            );
            for (curves, dash) in [(&intact, " stroke-dasharray='4 3'"), (&ours, "")] {
                for c in curves.iter() {
                    let path: Vec<String> = c
                        .points
                        .iter()
                        .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                        .collect();
                    s.push_str(&format!(
                        "<polyline fill='none' stroke='{}' stroke-width='{}'{dash} points='{}'><title>{} {}</title></polyline>",
                        colour(&c.segment),
                        if dash.is_empty() { 2 } else { 1 },
                        path.join(" "),
                        esc(&c.segment),
                        if c.twin == INTACT { "intact" } else { "scenario" },
                    ));
                }
            }
            s.push_str("</svg>");
            h.push_str(&s);
        }
        h.push_str("</div>");
        h
    }

    /// The ROM-matched searches of one scenario.
    fn matched_of(&self, sc: &ScenarioSummary) -> Vec<&MatchedCase> {
        self.matched
            .iter()
            .filter(|m| m.scenario == sc.name)
            .collect()
    }

    /// The ROM-matched section of one scenario (empty when it was not run).
    fn matched_section(&self, sc: &ScenarioSummary) -> String {
        let ms = self.matched_of(sc);
        if ms.is_empty() {
            return String::new();
        }
        let mut h = String::from(
            "<h3>ROM-matched (hybrid) control</h3><p>Under ROM-matched control (Panjabi 2007, \
Clin Biomech 22:257) the moment on the scenario is raised or lowered until the whole twin \
(top vertebra against the fixed bottom one) moves as far as the intact twin under the nominal \
moment, as a patient bends as far after surgery as before; the intact values are those under \
the nominal moment. Adjacent levels then take up the motion a fused level loses.</p>\
<table><tr><th>load case</th><th>nominal moment (N m)</th><th>matched moment (N m)</th>\
<th>intact total ROM (deg)</th><th>scenario total ROM, nominal moment (deg)</th>\
<th>scenario total ROM, matched moment (deg)</th><th>extra solves</th><th>note</th></tr>",
        );
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        for m in ms {
            h.push_str(&format!(
                "<tr><td class='l'>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class='l'>{}</td></tr>",
                esc(&m.load_case),
                m.nominal_moment_nm,
                if m.matched {
                    f(m.matched_moment_nm)
                } else {
                    "<span class='nc'>not found</span>".into()
                },
                f(m.intact_total_rom_deg),
                f(m.load_total_rom_deg),
                f(m.matched_total_rom_deg),
                m.solves,
                esc(&m.note)
            ));
        }
        h.push_str("</table>");
        h.push_str(&self.segment_table(sc, CONTROL_ROM_MATCHED));
        h.push_str(&self.change_charts(sc, CONTROL_ROM_MATCHED));
        h
    }

    /// The bone stresses of one scenario at the full fidelity, per load case and deformable
    /// vertebra, then the same zones' stress over strength (empty at the hybrid fidelity).
    fn bone_table(&self, sc: &ScenarioSummary) -> String {
        let Some(control) = self.bone_control(sc) else {
            return String::new();
        };
        let rows: Vec<&ComparisonRow> = self
            .rows
            .iter()
            .filter(|r| r.scenario == sc.name && is_bone_metric(&r.metric) && r.control == control)
            .collect();
        let shown = |ratio: bool| -> Vec<(&str, &str)> {
            BONE_METRICS
                .iter()
                .copied()
                .filter(|(m, _)| is_ratio_metric(m) == ratio && rows.iter().any(|r| r.metric == *m))
                .collect()
        };
        let under = if control == CONTROL_LOAD {
            "load control"
        } else {
            "ROM-matched control"
        };
        let mut h = format!(
            "<h3>Bone stress (deformable vertebrae)</h3><p>Von Mises stress, 95th percentile \
over the elements of each zone (MPa), intact &rarr; scenario, under {under}. The body \
excludes cement (in a cemented body: its bone around the cement); the endplate zones are \
the body's element layer facing each disc (under a cage: where subsidence starts); around \
the screws: the bone elements bonded to a screw (a loosening indicator).</p>",
        );
        h.push_str(&self.bone_grid(&rows, &shown(false), cell));
        let ratios = shown(true);
        if !ratios.is_empty() {
            h.push_str(
                "<p><b>Load against strength.</b> Von Mises stress over the compressive yield \
strength of each element's bone from its density (Kopperdahl 2002: 37.4 &rho;<sup>1.39</sup> \
MPa), 95th percentile, intact &rarr; scenario: in the endplate layer under the nucleus, or \
under the cage that replaces it (<i>subsidence</i>), and in the bone bonded to the screws \
(<i>loosening</i>). Above 1 the bone yields under a single such load (colour of the \
scenario's value: green below 0.5, amber 0.5 to 1, red from 1). An element's stiffness is \
the mean of its CT samples' moduli and its strength the harmonic mean of theirs, which its \
weakest bone dominates: a cortex running through an element stiffens it (it draws stress) \
without lending it its strength, so there the ratio errs high. The cage fills the nucleus \
footprint: the load a real, smaller cage puts on the endplate at its rim is not in it, so \
for subsidence the ratio is a lower bound.</p>",
            );
            h.push_str(&self.bone_grid(&rows, &ratios, ratio_cell));
        }
        h
    }

    /// One table of `rows` (one scenario's bone rows): a line per load case and vertebra,
    /// a column per metric of `shown`, each cell drawn by `cell`.
    fn bone_grid(
        &self,
        rows: &[&ComparisonRow],
        shown: &[(&str, &str)],
        cell: fn(Option<&ComparisonRow>) -> String,
    ) -> String {
        let mut h = String::from("<table><tr><th>load case</th><th>vertebra</th>");
        for (_, head) in shown {
            h.push_str(&format!("<th>{}</th>", esc(head)));
        }
        h.push_str("</tr>");
        for case in &self.load_cases {
            let mut levels: Vec<&str> = Vec::new();
            for r in rows.iter().filter(|r| &r.load_case == case) {
                if !levels.contains(&r.level.as_str()) && shown.iter().any(|(m, _)| *m == r.metric)
                {
                    levels.push(&r.level);
                }
            }
            for level in levels {
                h.push_str(&format!(
                    "<tr><td class='l'>{}</td><td class='l'>{}</td>",
                    esc(case),
                    esc(level)
                ));
                for (m, _) in shown {
                    let r = rows
                        .iter()
                        .find(|r| &r.load_case == case && r.level == level && r.metric == *m);
                    h.push_str(&cell(r.copied()));
                }
                h.push_str("</tr>");
            }
        }
        h.push_str("</table>");
        h
    }

    /// The self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut h = String::from(
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>spinetwin plan</title><style>\
body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #bbb;padding:3px 7px;font-size:13px;text-align:right}th{background:#eee}\
td.l{text-align:left}.up1{background:#fde0c5}.up2{background:#f6a96c}.dn1{background:#d5e5f5}\
.dn2{background:#8fbbe6}.nc{color:#a00;font-style:italic}.charts svg{margin:0.5em 1em 0.5em 0}\
.sure{background:#f6f6ee;border-left:4px solid #c9b458;padding:0.4em 0.8em;margin:0.8em 0}.sure ul{margin:0.3em 0}",
        );
        h.push_str(crate::header::HEADER_CSS);
        h.push_str(
            "</style></head><body>\
<h1>Surgical scenarios compared with the intact twin</h1>\
<p>Generated by <code>spinetwin plan</code>. Each cell: intact &rarr; scenario (change). \
Rotation: rotation of the upper vertebra relative to the lower one in the loaded plane (deg); \
IDP: intradiscal pressure (MPa); facet forces: normal contact force (N). Colours: orange = \
more than intact (light &gt;10 %, dark &gt;50 %), blue = less (light &lt;-10 %, dark &lt;-50 %). \
A case that did not converge is shown as <span class='nc'>not converged</span>, never as a number.</p>",
        );
        h.push_str(&crate::header::model_header_html(
            &self.model,
            self.full_fidelity_element_mm,
            &self.load_cases,
        ));
        let figures = |intact: bool, name: &str| -> String {
            self.snapshots
                .iter()
                .filter(|s| s.intact == intact && (intact || s.scenario == name))
                .map(Snapshot::to_html)
                .collect()
        };
        let intact = figures(true, "");
        if !intact.is_empty() {
            h.push_str("<h2>Intact twin</h2>");
            h.push_str(&intact);
        }
        for sc in &self.scenarios {
            h.push_str(&format!(
                "<h2>{}</h2><p class='l'>{}</p>",
                esc(&sc.name),
                esc(&sc.file)
            ));
            h.push_str(&format!("<p>{}</p>", esc(&self.paragraph_body(sc))));
            h.push_str(&self.how_sure_html(sc));
            h.push_str(&figures(false, &sc.name));
            if !sc.screws.is_empty() {
                let checked = sc.screw_breaches.len() == sc.screws.len();
                h.push_str(&format!(
                    "<table><tr><th>screw</th><th>diameter (mm)</th><th>length (mm)</th><th>pedicle width (mm)</th><th>pedicle axis (mm)</th><th>size</th>{}</tr>",
                    if checked { "<th>breach (Gertzbein-Robbins)</th>" } else { "" }
                ));
                for (k, p) in sc.screws.iter().enumerate() {
                    let breach = if checked {
                        let b = &sc.screw_breaches[k];
                        // Green for the accepted grades, red for the others (as the ratio cells).
                        let style = if b.acceptable() { "#cdeccd" } else { "#f4b6b6" };
                        format!(
                            "<td class='l' style='background:{style}'>{}</td>",
                            esc(&breach_text(b))
                        )
                    } else {
                        String::new()
                    };
                    h.push_str(&format!(
                        "<tr><td class='l'>{} {}</td><td>{:.1}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td><td class='l'>{}</td>{breach}</tr>",
                        p.level.name(),
                        p.side.name(),
                        p.diameter_mm,
                        p.length_mm,
                        p.pedicle_min_width_mm,
                        p.pedicle_axis_length_mm,
                        if p.given { "given" } else { "from the pedicle (80 % width, 80 % axis)" }
                    ));
                }
                h.push_str("</table>");
                if checked {
                    h.push_str(&format!("<p>Breach: the thread surface of each screw against its vertebra's label in the label map ({:.1} mm voxels), graded by the deepest point outside the bone in 2 mm steps (Gertzbein and Robbins 1990, Spine 15:11): A none, B under 2 mm, C 2-4 mm, D 4-6 mm, E more; A and B are the accepted placements. A breach under half a voxel is within the label map's resolution.</p>", sc.screw_breaches[0].voxel_mm));
                } else if let Some(n) = &sc.breach_note {
                    h.push_str(&format!("<p>Breach check: {}</p>", esc(n)));
                }
            }
            if self.has_rows(sc, CONTROL_LOAD) {
                if self.matched.iter().any(|m| m.scenario == sc.name) {
                    h.push_str("<h3>Load control (the same pure moment on both)</h3>");
                }
                h.push_str(&self.segment_table(sc, CONTROL_LOAD));
                h.push_str(&self.change_charts(sc, CONTROL_LOAD));
                h.push_str(&self.curve_charts(&sc.name));
            }
            h.push_str(&self.matched_section(sc));
            h.push_str(&self.stress_table(sc, "rod_peak_von_mises_mpa", "rod"));
            h.push_str(&self.stress_table(sc, "screw_peak_von_mises_mpa", "screw at its entry"));
            h.push_str(&self.bone_table(sc));
            if let Some(p) = sc.screw_peak_von_mises_mpa {
                h.push_str(&format!(
                    "<p>Peak screw von Mises stress where the screw enters the bone: <b>{p:.0} MPa</b>, {:.0} % of the Ti-6Al-4V fatigue limit. The rod loads at the head carried to the entry on a solid core of {SCREW_CORE_RATIO} times the thread diameter; thread roots and the head-shaft junction raise real stresses.</p>",
                    p / sc.rod_fatigue_limit_mpa * 100.0,
                ));
            }
            if let Some(p) = sc.rod_peak_von_mises_mpa {
                h.push_str(&format!(
                    "<p>Peak rod von Mises stress over the load cases: <b>{p:.0} MPa</b>, {:.0} % of the Ti-6Al-4V fatigue limit of {} MPa ({}). Rod stress in a straight beam between screw heads; notches, bending of the rod and the screw-rod junction raise real stresses.</p>",
                    p / sc.rod_fatigue_limit_mpa * 100.0,
                    sc.rod_fatigue_limit_mpa,
                    esc(&sc.rod_fatigue_source)
                ));
            }
            h.push_str(&implant_check_table(sc));
            if sc.needs_full_fidelity {
                h.push_str("<p><b>Bone stress needs deformable bone.</b> In the hybrid twin the vertebrae are rigid, so cement augmentation changes nothing in the motion, disc pressure and facet numbers above; the stress in the adjacent vertebrae needs a segment with deformable vertebrae, which spinetwin does not build yet.</p>");
                h.push_str(&bone_check_table(sc));
            }
            h.push_str("<h3>Assumptions</h3><ul>");
            for a in &sc.assumptions {
                h.push_str(&format!("<li>{}</li>", esc(a)));
            }
            match self.full_fidelity_element_mm {
                None => h.push_str("<li>Hybrid twin: rigid vertebrae, FE discs, ligament fibres, frictionless facet contact; pure moments on the top vertebra with the bottom one fixed.</li></ul>"),
                Some(mm) => h.push_str(&format!("<li>Full fidelity: the vertebrae between the top and the bottom one are deformable (8-node hexahedra of {mm} mm from the CT, moduli from the HU, cement as PMMA elements in the body); the top and the bottom vertebra are rigid, the moment acts on the top one and the bottom one is held. FE discs tied to the bone, ligament fibres tied at their insertions, frictionless facet contact on small rigid patches of the articular surfaces, screws bonded to the bone along their shaft, a cage on a deformable vertebra in contact with the disc's endplate nodes there (tied to the bone), {}, held by its teeth (six bars to the endplate under it): it lifts off where the segment opens and a `distraction_mm` drives it in as in the hybrid twin. Bone that a decompression removes is left out of the deformable mesh: the lamina and spinous process between the pedicles' medial walls (one side for a hemilaminectomy), each articular process of a total facetectomy to 6 mm behind its cartilage; a medial facetectomy keeps its bone.</li></ul>", if self.full_fidelity_cage_friction { "with the scenario's friction (as in the hybrid twin)" } else { "without friction at this fidelity (`plan --cage-friction` keeps it: slower, and axial rotation may not converge)" })),
            }
        }
        h.push_str("</body></html>\n");
        h
    }

    /// The "how sure" part of a scenario's paragraph: the least-checked of its operations
    /// sets the headline; what each was compared with follows; then what else limits it
    /// (solves that did not converge, parameters outside the validated defaults, the
    /// validation of the model as a whole).
    pub fn how_sure(&self, sc: &ScenarioSummary) -> String {
        let Some((head, notes, tail)) = self.how_sure_parts(sc) else {
            return String::new();
        };
        let mut p = head;
        for n in notes {
            p.push_str(&n);
            p.push(' ');
        }
        p.push_str(&tail);
        p
    }

    /// [`Comparison::how_sure`] as a boxed paragraph with the operations as a list.
    fn how_sure_html(&self, sc: &ScenarioSummary) -> String {
        let Some((head, notes, tail)) = self.how_sure_parts(sc) else {
            return String::new();
        };
        let head = esc(&head).replacen("How sure:", "<b>How sure:</b>", 1);
        let items: String = notes
            .iter()
            .map(|n| format!("<li>{}</li>", esc(n)))
            .collect();
        format!(
            "<div class='sure'>{head}<ul>{items}</ul>{} (Validation status above; the main assumptions are listed below.)</div>",
            esc(tail.trim_end())
        )
    }

    /// The headline, one note per operation, and the rest.
    fn how_sure_parts(&self, sc: &ScenarioSummary) -> Option<(String, Vec<String>, String)> {
        let (Some(best), Some(worst)) = (
            sc.evidence.iter().map(|n| n.evidence).min(),
            sc.evidence.iter().map(|n| n.evidence).max(),
        ) else {
            return None;
        };
        let head = if best == worst {
            format!(
                "How sure: the model's response to the operations of this scenario is {}. ",
                worst.phrase()
            )
        } else {
            format!(
                "How sure: the model's response to the operations of this scenario ranges from {} to {}. ",
                best.phrase(),
                worst.phrase()
            )
        };
        let notes = sc.evidence.iter().map(|n| n.text.clone()).collect();
        let mut p = String::new();
        if self.full_fidelity_element_mm.is_some() {
            // The evidence notes were measured on the hybrid twin; say so where the
            // comparison was not solved that way.
            p.push_str("These checks were made with the hybrid model (rigid vertebrae); this comparison was solved with deformable vertebrae, where cement and the bone around implants act in the solve and the screws are bonded to the bone. ");
        }
        if sc.converged[0] < sc.converged[1] {
            p.push_str("What the load cases that did not converge would show is unknown. ");
        }
        if !self.model.uses_validated_defaults() {
            p.push_str("This twin's parameters differ from the validated defaults (see the header), which no check covers. ");
        }
        let (passed, total) = self.model.validation_passed();
        p.push_str(&format!(
            "The intact model meets {passed} of {total} published validation results. "
        ));
        Some((head, notes, p))
    }

    /// A plain-language paragraph on one scenario: what changed, then how sure the model is
    /// ([`Comparison::how_sure`]).
    pub fn paragraph(&self, sc: &ScenarioSummary) -> String {
        let mut p = self.paragraph_body(sc);
        p.push_str(&self.how_sure(sc));
        p
    }

    /// [`Comparison::paragraph`] without the "how sure" part.
    fn paragraph_body(&self, sc: &ScenarioSummary) -> String {
        let mut p = format!("Operations: {}. ", sc.changes.join("; "));
        p.push_str(&format!(
            "{} of {} load cases converged. ",
            sc.converged[0], sc.converged[1]
        ));
        p.push_str(&seated_sentence(&sc.seated));
        let mut big = Vec::new();
        for r in self.rows.iter().filter(|r| {
            r.scenario == sc.name && r.metric == "rotation_deg" && r.control == CONTROL_LOAD
        }) {
            if let Some(c) = r.change_pct {
                if c.abs() >= 10.0 {
                    big.push(format!("{} {} {:+.0} %", r.level, r.load_case, c));
                }
            }
        }
        if self.has_rows(sc, CONTROL_LOAD) {
            if big.is_empty() {
                p.push_str("No segment rotation changed by 10 % or more under pure moments. ");
            } else {
                p.push_str(&format!(
                    "Segment rotations that changed by 10 % or more under pure moments: {}. ",
                    big.join(", ")
                ));
            }
        }
        p.push_str(&self.matched_sentence(sc));
        let worst = sc
            .implant_checks
            .iter()
            .flat_map(|c| &c.zones)
            .max_by(|a, b| a.stats.ratio[0].total_cmp(&b.stats.ratio[0]));
        if let Some(z) = worst {
            p.push_str(&format!(
                "With deformable bone from the CT, the most loaded bone next to an implant is {} ({}): its stress reaches {:.0} % of its yield strength (95th percentile) under {}. ",
                z.zone,
                z.indicator,
                100.0 * z.stats.ratio[0],
                z.worst_case
            ));
        }
        if let Some(n) = &sc.implant_check_note {
            p.push_str(&format!("No implant bone check: {n}. "));
        }
        if !sc.screw_breaches.is_empty() {
            let bad: Vec<String> = sc
                .screw_breaches
                .iter()
                .filter(|b| !b.acceptable())
                .map(|b| format!("{} ({})", b.screw, breach_text(b)))
                .collect();
            if bad.is_empty() {
                p.push_str(&format!(
                    "Every planned screw stays within its pedicle at the label map's resolution (Gertzbein-Robbins A or B; {} of {} A). ",
                    sc.screw_breaches.iter().filter(|b| b.grade == 'A').count(),
                    sc.screw_breaches.len()
                ));
            } else {
                p.push_str(&format!(
                    "Planned screws that breach the pedicle by 2 mm or more (adjust the trajectory or the size before relying on them): {}. ",
                    bad.join("; ")
                ));
            }
        }
        p.push_str(&self.bone_sentence(sc));
        if sc.needs_full_fidelity {
            p.push_str(
                "Cement has no mechanical effect in the hybrid fidelity (rigid vertebrae). ",
            );
            for b in &sc.bone_checks {
                p.push_str(&format!(
                    "Compressed as deformable bone from the CT, {} stiffens by {:+.0} % with {:.1} cm^3 of cement, and the 95th percentile of the stress in its remaining body bone goes from {:.2} to {:.2} MPa per kN. ",
                    b.level,
                    b.stiffness_change_pct,
                    b.cement_mm3 / 1000.0,
                    b.bone_p95_per_kn[0],
                    b.bone_p95_per_kn[1]
                ));
                for a in &b.adjacent {
                    p.push_str(&format!(
                        "In the {} motion segment the stress in the {} endplate zone changes by {:+.1} % (homogeneous disc, no nucleus pressure). ",
                        a.segment, a.adjacent_level, a.adjacent_endplate_change_pct
                    ));
                }
            }
            if let Some(n) = &sc.bone_check_note {
                p.push_str(&format!("No bone check: {n}. "));
            }
        }
        p
    }
}

/// The HTML table of the bone around a scenario's implants (or the note why there is none).
fn implant_check_table(sc: &ScenarioSummary) -> String {
    let mut h = String::new();
    if !sc.implant_checks.is_empty() {
        h.push_str(&format!("<h3>Bone around the implants (deformable vertebrae from the CT)</h3><p>Each vertebra carrying screws or a cage, as a voxel finite-element model with moduli from its HU, under the loads its implants carry in each load case above solved under load control (pure moments; rod force and moment at each screw head, the force through each face of the cage). Screws are titanium cylinders bonded to the bone; the cage is a block of its material over its footprint; the vertebra is held at both endplates, or at the one a cage does not load. The ratio is the von Mises stress over the compressive yield strength of the bone from its density (Kopperdahl 2002: 37.4 &rho;<sup>1.39</sup> MPa) in the bone within {:.1} mm of the screw (<i>loosening</i>) or under the cage (<i>subsidence</i>), in the load case where it is highest. Above 1, the bone yields under a single such load (colour: green below 0.5, amber 0.5 to 1, red from 1).</p>", sc.implant_checks[0].zone_mm));
        h.push_str("<table><tr><th>zone</th><th>indicator</th><th>worst case</th><th>bone HU</th><th>strength</th><th>von Mises p95</th><th>ratio p95</th><th>ratio max</th><th>over yield</th></tr>");
        for c in &sc.implant_checks {
            for z in &c.zones {
                let r = z.stats.ratio[0];
                let colour = if r >= 1.0 {
                    "#f4b6b6"
                } else if r >= 0.5 {
                    "#f7e3a8"
                } else {
                    "#cdeccd"
                };
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1} MPa</td><td>{:.2} MPa</td><td style='background:{colour}'>{:.2}</td><td>{:.2}</td><td>{:.1} %</td></tr>",
                    esc(&z.zone),
                    esc(&z.indicator),
                    esc(&z.worst_case),
                    z.stats.mean_hu,
                    z.stats.mean_strength_mpa,
                    z.stats.von_mises_mpa[0],
                    r,
                    z.stats.ratio[1],
                    100.0 * z.stats.over_yield_fraction
                ));
            }
        }
        h.push_str(&format!("</table><p>Voxel size {:.1} mm; linear elastic; the strength law is for cancellous bone, so ratios in the cortical shell are conservative. An indicator for comparing options on one patient, not a validated failure prediction.</p>", sc.implant_checks[0].spacing_mm));
    }
    if let Some(n) = &sc.implant_check_note {
        h.push_str(&format!("<p>No implant bone check: {}.</p>", esc(n)));
    }
    h
}

/// The HTML table of a scenario's bone checks (or the note why there are none).
fn bone_check_table(sc: &ScenarioSummary) -> String {
    let mut h = String::new();
    if !sc.bone_checks.is_empty() {
        h.push_str("<h3>Cemented vertebra as deformable bone</h3><p>Each cemented vertebra compressed along its own axis between PMMA caps as a voxel finite-element model with moduli from its HU (HU -> density -> Morgan 2003 modulus), once intact and once with the planned cement (PMMA 1937 MPa unless the scenario gives another modulus) in the core of its body. Stresses are at the same 1 kN axial force, over the body bone present in both models.</p><table><tr><th>level</th><th>fill</th><th>cement</th><th>cement modulus</th><th>body HU</th><th>stiffness intact -> cemented</th><th>change</th><th>bone von Mises per kN, median</th><th>95th percentile</th></tr>");
        for b in &sc.bone_checks {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{:.0} %</td><td>{:.1} cm&sup3;</td><td>{:.0} MPa</td><td>{:.0}</td><td>{:.0} -> {:.0} N/mm</td><td>{:+.0} %</td><td>{:.2} -> {:.2} MPa</td><td>{:.2} -> {:.2} MPa</td></tr>",
                esc(&b.level),
                100.0 * b.fill_fraction,
                b.cement_mm3 / 1000.0,
                b.cement_modulus_mpa,
                b.body_mean_hu,
                b.stiffness_n_per_mm[0],
                b.stiffness_n_per_mm[1],
                b.stiffness_change_pct,
                b.bone_p50_per_kn[0],
                b.bone_p50_per_kn[1],
                b.bone_p95_per_kn[0],
                b.bone_p95_per_kn[1]
            ));
        }
        h.push_str(&format!("</table><p>Voxel size {:.1} mm; linear elastic; the validation of this bone model against a published vertebral FE benchmark is in docs/validation/bone_stiffness.md.</p>", sc.bone_checks[0].spacing_mm));
        let adjacent: Vec<_> = sc.bone_checks.iter().flat_map(|b| &b.adjacent).collect();
        if !adjacent.is_empty() {
            h.push_str(&format!("<h3>The adjacent vertebrae</h3><p>The cemented vertebra and each neighbour compressed as one motion segment (both vertebrae from the CT, the disc from its label as a homogeneous linear-elastic solid, E 8 MPa; no facet load), intact and cemented, at the same 1 kN: the stress in the neighbour's bone within {:.1} mm of the disc. Voxel size {:.1} mm. Without a pressurised nucleus this model sees no endplate-bulge load shift (Baroud 2003 reported one with a pressurised nucleus), so it gives the low end of the effect.</p><table><tr><th>segment</th><th>adjacent vertebra</th><th>segment stiffness</th><th>adjacent endplate zone, von Mises p95 per kN</th><th>change</th><th>adjacent body p95 per kN</th><th>joint voxels cleared</th></tr>", adjacent[0].zone_mm, adjacent[0].spacing_mm));
            for a in &adjacent {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{:.0} -> {:.0} N/mm</td><td>{:.2} -> {:.2} MPa</td><td>{:+.1} %</td><td>{:.2} -> {:.2} MPa</td><td>{}</td></tr>",
                    esc(&a.segment),
                    esc(&a.adjacent_level),
                    a.stiffness_n_per_mm[0],
                    a.stiffness_n_per_mm[1],
                    a.adjacent_endplate_p95_per_kn[0],
                    a.adjacent_endplate_p95_per_kn[1],
                    a.adjacent_endplate_change_pct,
                    a.adjacent_body_p95_per_kn[0],
                    a.adjacent_body_p95_per_kn[1],
                    a.joint_voxels_cleared
                ));
            }
            h.push_str("</table>");
        }
        for b in &sc.bone_checks {
            for n in &b.adjacent_notes {
                h.push_str(&format!("<p>Adjacent segment not checked: {}.</p>", esc(n)));
            }
        }
        use base64::Engine;
        for b in &sc.bone_checks {
            for (png, what) in b.sections.iter().zip(["intact", "cemented"]) {
                if png.is_empty() {
                    continue;
                }
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                h.push_str(&format!(
                    "<figure style='display:inline-block;margin:0.5em'><img alt='{} {what}, mid-sagittal section' src='data:image/png;base64,{data}' style='max-width:100%'><figcaption>{} {what}: mid-sagittal section, anterior left. Left half: Young's modulus (black low, white high; cement orange, test caps pale blue). Right half: von Mises stress per kN (blue low to red at the 99th percentile of the intact body bone, the same scale in both pictures).</figcaption></figure>",
                    esc(&b.level),
                    esc(&b.level)
                ));
            }
        }
    }
    if let Some(n) = &sc.bone_check_note {
        h.push_str(&format!("<p>No bone check: {}.</p>", esc(n)));
    }
    h
}

/// Whether a scenario has implants that load the bone (screws or a cage).
fn has_bone_implants(sm: &ScenarioModel) -> bool {
    !sm.screws.is_empty()
        || sm
            .twin
            .implants
            .disc_blocks
            .iter()
            .any(|b| b.kind == spinetwin_model::twin::DiscBlockKind::Cage)
}

impl Comparison {
    /// The bone checks with deformable vertebrae from the CT (see [`crate::bone`]): every
    /// cemented vertebra compressed intact and cemented, and every vertebra with screws or
    /// a cage under the loads they carry in the scenario's solved cases. Records the
    /// results, or the reason they failed, in the scenario summaries.
    pub fn add_bone_checks(
        &mut self,
        scenarios: &[(&ScenarioModel, Vec<CaseResult>)],
        ct: &spinetwin_imaging::Volume<f32>,
        labels: &spinetwin_imaging::Volume<u16>,
        spacing_mm: f64,
    ) {
        for (m, results) in scenarios {
            let Some(sc) = self
                .scenarios
                .iter_mut()
                .find(|s| s.name == m.scenario.name)
            else {
                continue;
            };
            if !m.cemented.is_empty() {
                match crate::bone::cement_checks(
                    ct,
                    labels,
                    &m.twin.file.landmarks,
                    &m.cemented,
                    spacing_mm,
                ) {
                    Ok(c) => {
                        sc.bone_checks = c;
                        sc.bone_check_note = None;
                    }
                    Err(e) => sc.bone_check_note = Some(e),
                }
            }
            if !m.screws.is_empty() {
                match crate::breach::breach_checks(labels, &m.twin.file.landmarks, &m.screws) {
                    Ok(b) => {
                        sc.screw_breaches = b;
                        sc.breach_note = None;
                    }
                    Err(e) => sc.breach_note = Some(format!("not checked: {e}")),
                }
            }
            if has_bone_implants(m) {
                let c = crate::bone::implant_checks(ct, labels, m, results, spacing_mm);
                sc.implant_check_note = if !c.failed.is_empty() {
                    Some(format!("not checked: {}", c.failed.join("; ")))
                } else if c.checks.is_empty() {
                    Some(
                        if results.iter().any(|r| r.converged) {
                            "the solved cases carried no implant loads to check"
                        } else {
                            "no load case converged to take the implant loads from"
                        }
                        .into(),
                    )
                } else {
                    None
                };
                sc.implant_checks = c.checks;
            }
        }
    }
}

impl Comparison {
    /// The full-fidelity part of the paragraph: bone zones whose stress changed by 10 % or
    /// more, the largest change per zone (empty at the hybrid fidelity).
    fn bone_sentence(&self, sc: &ScenarioSummary) -> String {
        let Some(control) = self.bone_control(sc) else {
            return String::new();
        };
        let mut worst: Vec<(&str, &ComparisonRow, f64)> = Vec::new();
        let mine = || {
            self.rows.iter().filter(move |r| {
                r.scenario == sc.name && is_bone_metric(&r.metric) && r.control == control
            })
        };
        for r in mine().filter(|r| !is_ratio_metric(&r.metric)) {
            let Some(c) = r.change_pct.filter(|c| c.abs() >= 10.0) else {
                continue;
            };
            match worst
                .iter_mut()
                .find(|(m, w, _)| *m == r.metric && w.level == r.level)
            {
                Some(w) if w.2.abs() < c.abs() => *w = (r.metric.as_str(), r, c),
                Some(_) => {}
                None => worst.push((r.metric.as_str(), r, c)),
            }
        }
        let under = if control == CONTROL_LOAD {
            "under load control"
        } else {
            "under ROM-matched control"
        };
        // The highest stress over strength of the scenario, with the intact value.
        let strength = mine()
            .filter(|r| is_ratio_metric(&r.metric))
            .filter_map(|r| r.value.map(|v| (r, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(r, v)| {
                let place = if r.metric == "bone_around_screws_ratio_p95" {
                    format!("in the bone around the {} screws (loosening)", r.level)
                } else {
                    format!(
                        "under the {} {} endplate's centre{}",
                        r.level,
                        if r.metric.contains("superior") {
                            "superior"
                        } else {
                            "inferior"
                        },
                        if r.note.contains("subsidence") {
                            ", on the cage (subsidence)"
                        } else {
                            ""
                        }
                    )
                };
                format!(
                    "The bone's highest load against its yield strength (95th percentile) is {v:.2}, {place}, in {}{}{}. ",
                    r.load_case,
                    r.intact.map(|i| format!(" (intact {i:.2})")).unwrap_or_default(),
                    if v >= 1.0 {
                        ": above 1, that bone yields under a single such load"
                    } else {
                        ""
                    }
                )
            })
            .unwrap_or_default();
        if worst.is_empty() {
            return format!("With deformable vertebrae, no bone zone's stress (95th percentile) changed by 10 % or more {under}. {strength}");
        }
        let head = |m: &str| {
            BONE_METRICS
                .iter()
                .find(|(x, _)| *x == m)
                .map_or(m.to_string(), |(_, h)| h.to_string())
        };
        let parts: Vec<String> = worst
            .iter()
            .map(|(m, r, c)| format!("{} {} {:+.0} % ({})", r.level, head(m), c, r.load_case))
            .collect();
        format!(
            "With deformable vertebrae, bone stress (95th percentile) changed by 10 % or more {under} at: {}. {strength}",
            parts.join(", ")
        )
    }

    /// The control whose bone rows the report shows for `sc`: load control where it has
    /// them, else ROM-matched control (`plan --control rom-matched`); `None` without bone
    /// rows (hybrid fidelity).
    fn bone_control(&self, sc: &ScenarioSummary) -> Option<&'static str> {
        [CONTROL_LOAD, CONTROL_ROM_MATCHED].into_iter().find(|&c| {
            self.rows
                .iter()
                .any(|r| r.scenario == sc.name && is_bone_metric(&r.metric) && r.control == c)
        })
    }

    fn has_rows(&self, sc: &ScenarioSummary, control: &str) -> bool {
        self.rows
            .iter()
            .any(|r| r.scenario == sc.name && r.control == control)
    }

    /// The ROM-matched part of the paragraph (empty when ROM-matched control was not run):
    /// the matched moments and the change of the segments that pure moments left within
    /// 5 % of intact (the adjacent levels).
    fn matched_sentence(&self, sc: &ScenarioSummary) -> String {
        let ms = self.matched_of(sc);
        if ms.is_empty() {
            return String::new();
        }
        let found: Vec<String> = ms
            .iter()
            .filter_map(|m| {
                m.matched_moment_nm
                    .filter(|_| m.matched)
                    .map(|x| format!("{} {:.1} Nm", m.load_case, x))
            })
            .collect();
        let mut p = format!(
            "Under ROM-matched control (the moment that moves the whole twin as far as the intact twin) the total ROM was matched in {} of {} cases{}. ",
            found.len(),
            ms.len(),
            if found.is_empty() {
                String::new()
            } else {
                format!(" ({})", found.join(", "))
            }
        );
        let rot = |control: &'static str| {
            self.rows.iter().filter(move |r| {
                r.scenario == sc.name && r.metric == "rotation_deg" && r.control == control
            })
        };
        let mut adjacent = Vec::new();
        for r in rot(CONTROL_ROM_MATCHED) {
            let under_load = rot(CONTROL_LOAD)
                .find(|l| l.load_case == r.load_case && l.level == r.level)
                .and_then(|l| l.change_pct);
            if let (Some(l), Some(c)) = (under_load, r.change_pct) {
                if l.abs() < 5.0 {
                    adjacent.push(format!(
                        "{} {} {:+.0} % ({:+.0} % under pure moments)",
                        r.level, r.load_case, c, l
                    ));
                }
            }
        }
        if !adjacent.is_empty() {
            p.push_str(&format!(
                "Levels that pure moments left within 5 % of intact changed under ROM-matched control: {}. ",
                adjacent.join(", ")
            ));
        }
        p
    }
}

/// A stress-over-strength cell: intact -> scenario, coloured by the scenario's value (green
/// below 0.5, amber 0.5 to 1, red from 1), as the isolated implant check's table.
/// `A`, or `C: 2.8 mm medial, 12 % of the thread outside the bone, into the canal`.
fn breach_text(b: &crate::breach::ScrewBreach) -> String {
    if b.grade == 'A' {
        return "A: inside the bone".into();
    }
    format!(
        "{}: {:.1} mm {}, {:.1} % of the thread outside the bone{}",
        b.grade,
        b.depth_mm,
        b.direction.as_deref().unwrap_or(""),
        100.0 * b.outside_fraction,
        if b.canal_samples > 0 {
            ", into the canal"
        } else {
            ""
        }
    )
}

fn ratio_cell(r: Option<&ComparisonRow>) -> String {
    let Some(r) = r else {
        return "<td>-</td>".into();
    };
    let style = match r.value {
        Some(v) if v >= 1.0 => " style='background:#f4b6b6'",
        Some(v) if v >= 0.5 => " style='background:#f7e3a8'",
        Some(_) => " style='background:#cdeccd'",
        None => "",
    };
    let (intact, value, title) = cell_parts(r);
    format!("<td{style}{title}>{intact} &rarr; {value}</td>")
}

/// A cell `intact -> scenario (change %)`, coloured by the change.
fn cell(r: Option<&ComparisonRow>) -> String {
    let Some(r) = r else {
        return "<td>-</td>".into();
    };
    let class = match r.change_pct {
        Some(c) if c > 50.0 => "up2",
        Some(c) if c > 10.0 => "up1",
        Some(c) if c < -50.0 => "dn2",
        Some(c) if c < -10.0 => "dn1",
        _ => "",
    };
    let ch = r
        .change_pct
        .map(|c| format!(" ({c:+.0} %)"))
        .unwrap_or_default();
    let (intact, value, title) = cell_parts(r);
    format!("<td class='{class}'{title}>{intact} &rarr; {value}{ch}</td>")
}

/// A row's intact and scenario values as cell text (why one is missing, in italics) and
/// its note as a `title` attribute (empty without a note).
fn cell_parts(r: &ComparisonRow) -> (String, String, String) {
    let f = |v: Option<f64>, intact: bool| match v {
        Some(x) => format!("{x:.2}"),
        None => {
            let t = r.value_text(None, intact);
            if t.is_empty() {
                "-".into()
            } else {
                format!("<span class='nc'>{t}</span>")
            }
        }
    };
    let title = if r.note.is_empty() {
        String::new()
    } else {
        format!(" title='{}'", esc(&r.note).replace('\'', "&#39;"))
    };
    (f(r.intact, true), f(r.value, false), title)
}
