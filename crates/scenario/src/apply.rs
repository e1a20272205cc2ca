//! Applying a scenario to the hybrid twin: checks first (nothing is solved before every
//! operation fits), then a changed copy of the twin.
//!
//! What each operation does to the hybrid model (rigid vertebrae, FE discs, ligament
//! fibres, facet contact):
//!
//! - `laminectomy { level }`: a full (classic) laminectomy removes the lamina and the
//!   spinous process of `level`. Every ligament inserting on them loses its insertion: the
//!   ligamentum flavum (between the laminae), the interspinous and the supraspinous
//!   ligament (between the spinous processes) of BOTH the segment above `level` (their
//!   lower insertion is on its lamina/spinous process) and the segment below (upper
//!   insertion). Those LF, ISL and SSL fibres are removed; facets, capsules and bony stops
//!   (taken to sit on the pars) stay.
//! - `hemilaminectomy { level, side }`: one lamina of `level` is removed and the spinous
//!   process kept. The ligamentum flavum fibres inserting on that half of the arch, in the
//!   segment above and below, are removed (with the midline fibre, as the flavum is taken to
//!   the midline); ISL, SSL, the other half, facets and capsules stay.
//! - `facetectomy { segment, sides, extent = total }`: the joint's contact pair, its
//!   capsular ligament (CL) fibres and the bony stop of that side (taken to be the inferior
//!   process tip) are removed.
//! - `nucleotomy { segment }`: the nucleus elements leave every solid block (the solver
//!   ignores elements in no block); the annulus stays.
//! - `pedicle_screws { levels, sides, rod_diameter_mm, rod_material }`: a screw is rigidly
//!   fixed to its vertebra (the vertebra is rigid, so the screw itself adds nothing but its
//!   head position). The head is placed 10 mm posterior of the pedicle entry point along
//!   the pedicle axis (`entry - 10 mm * direction`), about where the tulip of a polyaxial
//!   screw sits. One rod segment, an elastic corotational beam clamped at both heads, joins
//!   each pair of consecutive instrumented levels on each side.
//! - `interbody_cage { segment, material, footprint }`: the nucleus elements become a
//!   linear elastic block (compressible Neo-Hookean, matching the cage modulus at small
//!   strain) tied to both endplates, and the annulus elements in the approach window are
//!   removed (for ALIF also the anterior longitudinal ligament of the segment). This is a
//!   hybrid approximation: the cage fills the whole nucleus footprint and is bonded to the
//!   endplates (no subsidence, no lift-off), as after fusion rather than on day one.
//! - `vertebroplasty { level, fill_fraction }`: vertebrae are rigid in the hybrid fidelity,
//!   so cement changes nothing mechanical here; it is recorded. With the CT at hand the
//!   comparison also compresses the cemented vertebra as deformable bone ([`crate::bone`]);
//!   no stiffness is faked in the hybrid twin. At the full fidelity
//!   (`spinetwin_model::full`) the recorded fill becomes PMMA elements in the body.
//! - `bony_fusion { segment, modulus_mpa }`: the later stage of a fusion, applied after the
//!   other operations whatever their order: every element of the disc that is not a cage
//!   (nucleus, annulus, and the cavities of a nucleotomy or an approach window) becomes a
//!   linear elastic fusion mass bonded to both endplates, by default with the mean
//!   cancellous modulus of the two vertebrae from their trabecular HU.

use std::collections::BTreeMap;

use nalgebra::Vector3;
use serde::Serialize;
use spinetwin_anatomy::Level;
use spinetwin_fem::nl::{self, Beam, BeamEnd, BeamSection, SolveOptions};
use spinetwin_model::bone::{BoneMaterial, Isotropic};
use spinetwin_model::bone_fe::{CementFill, BONE_CEMENT, CEMENT_MODULUS_RANGE_MPA};
use spinetwin_model::ligament::Ligament;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::resection::Resection;
use spinetwin_model::twin::{
    BlockInterface, CaseResult, DiscBlock, DiscBlockKind, ModelIndex, PosteriorContact, Twin,
    BLOCK_HOLD_N_PER_MM,
};
use spinetwin_segment::landmarks::P3;

use crate::scenario::{
    CageFootprint, CageInterface, FacetExtent, Operation, Scenario, ScrewAnchorage, Side,
    CAGE_FRICTION, CAGE_MAX_DISTRACTION_MM, CAGE_SEATING_MM,
};
use crate::{Result, ScenarioError};

/// Distance of the screw head (rod attachment) posterior of the pedicle entry point (mm).
pub const SCREW_HEAD_OFFSET_MM: f64 = 10.0;

/// Rods of one `pedicle_screws` operation (twin indices of the levels, sorted).
struct RodPlan {
    levels: Vec<usize>,
    sides: Vec<Side>,
    diameter: f64,
    e_nu: (f64, f64),
    material: &'static str,
    anchorage: ScrewAnchorage,
}

/// A planned pedicle screw.
#[derive(Clone, Debug, Serialize)]
pub struct ScrewPlan {
    /// Vertebra.
    pub level: Level,
    /// Side.
    pub side: Side,
    /// Screw diameter (mm).
    pub diameter_mm: f64,
    /// Screw length (mm).
    pub length_mm: f64,
    /// Pedicle isthmus width (mm).
    pub pedicle_min_width_mm: f64,
    /// Pedicle axis length in bone (mm).
    pub pedicle_axis_length_mm: f64,
    /// Whether the size was given in the scenario (else chosen from the pedicle).
    pub given: bool,
    /// Entry point (mm, LPS).
    pub entry: [f64; 3],
    /// Screw head, where the rod is clamped (mm, LPS).
    pub head: [f64; 3],
    /// Screw tip (mm, LPS).
    pub tip: [f64; 3],
    /// Modulus (MPa) of the elastic foundation holding the screw in the hybrid fidelity
    /// (the vertebra's cancellous modulus times
    /// [`spinetwin_model::anchorage::ANCHORAGE_FACTOR`]); `None` when rigidly fixed.
    pub anchorage_modulus_mpa: Option<f64>,
}

/// A scenario applied to a twin: the changed twin and what was done.
#[derive(Clone, Debug)]
pub struct ScenarioModel {
    /// The scenario.
    pub scenario: Scenario,
    /// The changed twin (solve it like the intact one).
    pub twin: Twin,
    /// Planned screws.
    pub screws: Vec<ScrewPlan>,
    /// What was changed, one line per operation.
    pub changes: Vec<String>,
    /// Modelling assumptions the results depend on.
    pub assumptions: Vec<String>,
    /// Discs (index into `twin.discs`) whose nucleus was removed or replaced: their IDP is
    /// not defined.
    pub discs_without_nucleus: Vec<usize>,
    /// Cemented vertebrae with their fill fraction and cement (recorded, no mechanical
    /// effect in the hybrid fidelity).
    pub cemented: Vec<CementFill>,
    /// True when no operation changes the hybrid model (cement only): its twin is the intact
    /// one, so its hybrid results are the intact results and need no solve of their own.
    pub hybrid_unchanged: bool,
}

impl ScenarioModel {
    /// The FE model of one load case.
    pub fn fem_model(&self, case: &LoadCase) -> Result<(nl::Model, ModelIndex)> {
        Ok(self.twin.fem_model(case)?)
    }

    /// Solves one load case.
    pub fn simulate(&self, case: &LoadCase, options: &SolveOptions) -> Result<CaseResult> {
        Ok(self.twin.simulate(case, options)?)
    }
}

fn level_index(twin: &Twin, name: &str) -> std::result::Result<usize, String> {
    let level: Level = name
        .parse()
        .map_err(|_| format!("'{name}' is not a vertebra name (use e.g. L4, T12, S1)"))?;
    twin.levels.iter().position(|&l| l == level).ok_or_else(|| {
        format!(
            "{} is not in the twin (it models {}): choose a modelled level",
            level.name(),
            names(twin)
        )
    })
}

fn names(twin: &Twin) -> String {
    twin.levels
        .iter()
        .map(|l| l.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Index of the upper vertebra of `segment` (e.g. `L4-L5`).
fn segment_index(twin: &Twin, segment: &str) -> std::result::Result<usize, String> {
    let (a, b) = segment.split_once('-').ok_or_else(|| {
        format!("'{segment}' is not a motion segment (write it as upper-lower, e.g. L4-L5)")
    })?;
    let i = level_index(twin, a.trim())?;
    let j = level_index(twin, b.trim())?;
    if j != i + 1 {
        return Err(format!(
            "'{segment}' is not a motion segment of the twin: name two adjacent modelled vertebrae, upper first (e.g. {}-{})",
            twin.levels[i].name(),
            twin.levels.get(i + 1).unwrap_or(&twin.levels[i]).name()
        ));
    }
    Ok(i)
}

fn segment_name(twin: &Twin, i: usize) -> String {
    format!("{}-{}", twin.levels[i].name(), twin.levels[i + 1].name())
}

fn v3(p: &[f64; 3]) -> Vector3<f64> {
    Vector3::from(*p)
}

/// Share of the articular area a partial facetectomy removes when the scenario does not
/// say: the medial half.
pub const DEFAULT_MEDIAL_FRACTION: f64 = 0.5;

/// Distance from the midline (as measured by `midline`) below which the points carrying the
/// `fraction` of the total `area` nearest the midline lie.
fn medial_cut(points: &[P3], area: &[f64], midline: &dyn Fn(&P3) -> f64, fraction: f64) -> f64 {
    let mut d: Vec<(f64, f64)> = points
        .iter()
        .zip(area)
        .map(|(p, &a)| (midline(p), a))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = d.iter().map(|x| x.1).sum();
    let mut acc = 0.0;
    for (k, &(m, a)) in d.iter().enumerate() {
        acc += a;
        if acc >= fraction * total {
            // Halfway to the next point: the cut falls between removed and kept points.
            return d.get(k + 1).map_or(m + 1e-9, |n| 0.5 * (m + n.0));
        }
    }
    f64::INFINITY
}

/// Side of a fibre's upper insertion (by the upper vertebra's left axis).
fn fibre_side(twin: &Twin, upper: usize, at: &[f64; 3]) -> Side {
    let f = &twin.vertebra(upper).frame;
    if (v3(at) - v3(&f.origin)).dot(&v3(&f.x)) >= 0.0 {
        Side::Left
    } else {
        Side::Right
    }
}

/// Screw size from the pedicle: diameter 80 % of the isthmus width rounded down to 0.5 mm
/// and clamped to 4.5-7.5 mm; length 80 % of the axis length rounded down to 5 mm.
pub fn screw_size(min_width_mm: f64, axis_length_mm: f64) -> (f64, f64) {
    let d = ((0.8 * min_width_mm / 0.5).floor() * 0.5).clamp(4.5, 7.5);
    let l = (0.8 * axis_length_mm / 5.0).floor() * 5.0;
    (d, l)
}

/// Checks the scenario against the twin and returns the changed twin.
pub fn apply(twin: &Twin, scenario: &Scenario) -> Result<ScenarioModel> {
    let file = scenario.origin().to_string();
    let err = |index: usize, op: &Operation, message: String| ScenarioError::Invalid {
        file: file.clone(),
        index: index + 1,
        kind: op.kind().to_string(),
        message,
    };

    // Pass 1: resolve names, check each operation and the combinations.
    let mut disc_op: BTreeMap<usize, (usize, &'static str)> = BTreeMap::new();
    let mut facet_op: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut lamina_op: BTreeMap<usize, usize> = BTreeMap::new();
    let mut screw_op: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut cement_op: BTreeMap<usize, usize> = BTreeMap::new();
    let mut hemi_op: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut fusion_op: BTreeMap<usize, usize> = BTreeMap::new();
    let mut screws = Vec::new();
    let mut rods: Vec<RodPlan> = Vec::new();
    for (k, op) in scenario.operations.iter().enumerate() {
        let e = |m: String| err(k, op, m);
        match op {
            Operation::Laminectomy { level } => {
                let i = level_index(twin, level).map_err(e)?;
                if let Some(p) = lamina_op.insert(i, k) {
                    return Err(e(format!(
                        "{} is already decompressed by operation {}: list each laminectomy once",
                        twin.levels[i].name(),
                        p + 1
                    )));
                }
                if let Some((_, p)) = hemi_op.range((i, 0)..=(i, 1)).next() {
                    return Err(e(format!(
                        "{} already has a hemilaminectomy (operation {}); a laminectomy removes both laminae: keep one of the two",
                        twin.levels[i].name(),
                        p + 1
                    )));
                }
            }
            Operation::Hemilaminectomy { level, side } => {
                let i = level_index(twin, level).map_err(e)?;
                if let Some(p) = lamina_op.get(&i) {
                    return Err(e(format!(
                        "{} already has a laminectomy (operation {}), which removes both laminae: keep one of the two",
                        twin.levels[i].name(),
                        p + 1
                    )));
                }
                if let Some(p) = hemi_op.insert((i, side.index()), k) {
                    return Err(e(format!(
                        "the {} {} lamina is already removed by operation {}: list each hemilaminectomy once",
                        twin.levels[i].name(),
                        side.name(),
                        p + 1
                    )));
                }
                if let Some(p) = hemi_op.get(&(i, 1 - side.index())) {
                    return Err(e(format!(
                        "{} already has a hemilaminectomy of the other side (operation {}); both laminae leave the spinous process without its arch: use a laminectomy",
                        twin.levels[i].name(),
                        p + 1
                    )));
                }
            }
            Operation::BonyFusion {
                segment,
                modulus_mpa,
            } => {
                let i = segment_index(twin, segment).map_err(e)?;
                if let Some(p) = fusion_op.insert(i, k) {
                    return Err(e(format!(
                        "the {} segment is already fused by operation {}: list each fusion once",
                        segment_name(twin, i),
                        p + 1
                    )));
                }
                match modulus_mpa {
                    Some(m) if !(10.0..=20000.0).contains(m) => {
                        return Err(e(format!(
                            "modulus_mpa = {m} is outside 10-20000 MPa (from immature callus to cortical bone)"
                        )))
                    }
                    Some(_) => {}
                    None => {
                        fusion_modulus(twin, i).map_err(e)?;
                    }
                }
            }
            Operation::Facetectomy {
                segment,
                sides,
                extent,
                medial_fraction,
            } => {
                let i = segment_index(twin, segment).map_err(e)?;
                match (extent, medial_fraction) {
                    (FacetExtent::Total, Some(_)) => {
                        return Err(e(
                            "medial_fraction applies to extent = \"partial\" only (a total facetectomy removes the whole joint)".into(),
                        ))
                    }
                    (FacetExtent::Partial, Some(f)) if !(0.1..=0.9).contains(f) => {
                        return Err(e(format!(
                            "medial_fraction {f} is outside 0.1..0.9 (the share of the articular area removed from the medial edge; use extent = \"total\" for the whole joint)"
                        )))
                    }
                    _ => {}
                }
                for s in sides.sides() {
                    if let Some(p) = facet_op.insert((i, s.index()), k) {
                        return Err(e(format!(
                            "the {} {} facet joint is already removed by operation {}: remove each joint side once",
                            segment_name(twin, i),
                            s.name(),
                            p + 1
                        )));
                    }
                }
            }
            Operation::Nucleotomy { segment } | Operation::InterbodyCage { segment, .. } => {
                let i = segment_index(twin, segment).map_err(e)?;
                if let Some((p, kind)) = disc_op.insert(i, (k, op.kind())) {
                    return Err(e(format!(
                        "the {} disc is already changed by operation {} ({kind}); a cage already removes the nucleus: keep one disc operation per disc",
                        segment_name(twin, i),
                        p + 1
                    )));
                }
                if twin.discs[i].mesh.nucleus_elements.is_empty() {
                    return Err(e(format!(
                        "the {} disc of this twin has no nucleus elements",
                        segment_name(twin, i)
                    )));
                }
                if let Operation::InterbodyCage {
                    interface,
                    friction,
                    distraction_mm,
                    ..
                } = op
                {
                    // The parameters of a cage in contact: (name, value, largest, what).
                    let contact_only = [
                        (
                            "friction",
                            friction,
                            1.5,
                            format!("a Coulomb coefficient; default {CAGE_FRICTION}"),
                        ),
                        (
                            "distraction_mm",
                            distraction_mm,
                            CAGE_MAX_DISTRACTION_MM,
                            "how much taller the cage is than the disc space, in mm".to_string(),
                        ),
                    ];
                    for (name, value, max, what) in contact_only {
                        let Some(v) = value else { continue };
                        if *interface == CageInterface::Bonded {
                            return Err(e(format!(
                                "{name} applies to a cage in contact: leave it out with interface = \"bonded\""
                            )));
                        }
                        if !(0.0..=max).contains(v) {
                            return Err(e(format!("{name} {v} is outside 0..{max} ({what})")));
                        }
                    }
                }
            }
            Operation::PedicleScrews {
                levels,
                sides,
                rod_diameter_mm,
                rod_material,
                screw_diameter_mm,
                screw_length_mm,
                anchorage,
            } => {
                let mut idx = Vec::new();
                for l in levels {
                    let i = level_index(twin, l).map_err(e)?;
                    if idx.contains(&i) {
                        return Err(e(format!("{l} is listed twice: list each level once")));
                    }
                    idx.push(i);
                }
                if idx.len() < 2 {
                    return Err(e(
                        "screws in a single level fix nothing: list at least two levels to join with rods (e.g. levels = [\"L4\", \"L5\"])".into(),
                    ));
                }
                idx.sort();
                if !(*rod_diameter_mm >= 3.0 && *rod_diameter_mm <= 8.0) {
                    return Err(e(format!(
                        "rod_diameter_mm = {rod_diameter_mm} is outside 3-8 mm (spinal rods are 4.5-6.35 mm)"
                    )));
                }
                for &i in &idx {
                    let v = twin.vertebra(i);
                    for s in sides.sides() {
                        if let Some(p) = screw_op.insert((i, s.index()), k) {
                            return Err(e(format!(
                                "the {} {} pedicle already has a screw from operation {}: instrument each pedicle once",
                                twin.levels[i].name(),
                                s.name(),
                                p + 1
                            )));
                        }
                        let ped = v.pedicles.as_ref().map(|p| match s {
                            Side::Left => &p.left,
                            Side::Right => &p.right,
                        });
                        let Some(ped) = ped else {
                            return Err(e(format!(
                                "the {} {} pedicle was not found in the landmarks: check the segmentation of {} or leave that level or side out",
                                twin.levels[i].name(),
                                s.name(),
                                twin.levels[i].name()
                            )));
                        };
                        let (auto_d, auto_l) = screw_size(ped.min_width_mm, ped.axis_length_mm);
                        let d = screw_diameter_mm.unwrap_or(auto_d);
                        let l = screw_length_mm.unwrap_or(auto_l);
                        if l > ped.axis_length_mm {
                            return Err(e(format!(
                                "a {l} mm screw is longer than the {} {} pedicle axis ({:.1} mm in bone) and would breach the anterior cortex: use at most {:.0} mm",
                                twin.levels[i].name(),
                                s.name(),
                                ped.axis_length_mm,
                                ped.axis_length_mm.floor()
                            )));
                        }
                        if d > ped.min_width_mm {
                            return Err(e(if screw_diameter_mm.is_some() {
                                format!(
                                    "a {d} mm screw is wider than the {} {} pedicle at its isthmus ({:.1} mm of bone) and would breach its cortex: use at most {:.1} mm, or leave screw_diameter_mm out to size it from the pedicle",
                                    twin.levels[i].name(),
                                    s.name(),
                                    ped.min_width_mm,
                                    (ped.min_width_mm * 2.0).floor() / 2.0
                                )
                            } else {
                                format!(
                                    "the {} {} pedicle is {:.1} mm wide at its isthmus, narrower than the smallest screw ({d} mm): leave that level or side out, or check the segmentation of {}",
                                    twin.levels[i].name(),
                                    s.name(),
                                    ped.min_width_mm,
                                    twin.levels[i].name()
                                )
                            }));
                        }
                        if !(l > 0.0 && d > 0.0) {
                            return Err(e(format!(
                                "screw size {d} x {l} mm for {} {} is not positive (pedicle axis {:.1} mm): give screw_length_mm",
                                twin.levels[i].name(),
                                s.name(),
                                ped.axis_length_mm
                            )));
                        }
                        let (entry, dir) = (v3(&ped.entry), v3(&ped.direction).normalize());
                        screws.push(ScrewPlan {
                            level: twin.levels[i],
                            side: s,
                            diameter_mm: d,
                            length_mm: l,
                            pedicle_min_width_mm: ped.min_width_mm,
                            pedicle_axis_length_mm: ped.axis_length_mm,
                            given: screw_diameter_mm.is_some() || screw_length_mm.is_some(),
                            entry: ped.entry,
                            head: (entry - dir * SCREW_HEAD_OFFSET_MM).into(),
                            tip: (entry + dir * l).into(),
                            anchorage_modulus_mpa: match anchorage {
                                ScrewAnchorage::Rigid => None,
                                // Without the bone's HU (a twin built from a label map
                                // alone) the screw stays rigidly fixed, and the
                                // assumptions say why.
                                ScrewAnchorage::Elastic => cancellous_modulus(twin, i)
                                    .map(|m| m * spinetwin_model::anchorage::ANCHORAGE_FACTOR),
                            },
                        });
                    }
                }
                rods.push(RodPlan {
                    levels: idx,
                    sides: sides.sides(),
                    diameter: *rod_diameter_mm,
                    e_nu: rod_material.e_nu(),
                    material: rod_material.name(),
                    anchorage: *anchorage,
                });
            }
            Operation::Vertebroplasty {
                level,
                fill_fraction,
                cement_modulus_mpa,
            } => {
                let i = level_index(twin, level).map_err(e)?;
                if !(*fill_fraction > 0.0 && *fill_fraction <= 1.0) {
                    return Err(e(format!(
                        "fill_fraction = {fill_fraction} must be in (0, 1] (typical 0.15-0.30)"
                    )));
                }
                if let Some(m) = cement_modulus_mpa {
                    if !CEMENT_MODULUS_RANGE_MPA.contains(m) {
                        return Err(e(format!(
                            "cement_modulus_mpa = {m} is outside {}-{} MPa (PMMA is {} MPa; low-modulus cements lie below it)",
                            CEMENT_MODULUS_RANGE_MPA.start(),
                            CEMENT_MODULUS_RANGE_MPA.end(),
                            BONE_CEMENT.e_mpa
                        )));
                    }
                }
                if let Some(p) = cement_op.insert(i, k) {
                    return Err(e(format!(
                        "{} is already cemented by operation {}",
                        twin.levels[i].name(),
                        p + 1
                    )));
                }
            }
        }
    }

    // Pass 2: change a copy of the twin.
    let mut t = twin.clone();
    let mut changes = Vec::new();
    let mut assumptions = Vec::new();
    let mut discs_without_nucleus = Vec::new();
    let mut cemented = Vec::new();
    let mut fusions = Vec::new();
    for op in &scenario.operations {
        match op {
            Operation::Laminectomy { level } => {
                let i = level_index(&t, level).unwrap_or(0);
                let mut segs = Vec::new();
                if i > 0 {
                    segs.push(i - 1);
                }
                if i + 1 < t.levels.len() {
                    segs.push(i);
                }
                let before = t.fibres.len();
                t.fibres.retain(|f| {
                    !(segs.contains(&f.bodies[0])
                        && matches!(f.ligament, Ligament::Lf | Ligament::Isl | Ligament::Ssl))
                });
                assumptions.push(format!(
                    "laminectomy {}: modelled through the ligaments it detaches (LF, ISL, SSL above and below); the vertebrae are rigid in the hybrid twin, so the bone removed does not weaken them there (at the full fidelity it leaves the deformable mesh, sparing 5 mm of bone around the facet joints and the ligament insertions that stay), and a bony stop (where modelled) bearing on the bone it removes goes with it",
                    t.levels[i].name()
                ));
                resect(
                    &mut t,
                    &mut assumptions,
                    Resection::laminectomy(twin.vertebra(i)),
                );
                changes.push(format!(
                    "laminectomy {}: {} ligament fibres removed (LF, ISL, SSL of {})",
                    t.levels[i].name(),
                    before - t.fibres.len(),
                    segs.iter()
                        .map(|&s| segment_name(&t, s))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            Operation::Facetectomy {
                segment,
                sides,
                extent: FacetExtent::Partial,
                medial_fraction,
            } => {
                let i = segment_index(&t, segment).unwrap_or(0);
                let fraction = medial_fraction.unwrap_or(DEFAULT_MEDIAL_FRACTION);
                for s in sides.sides() {
                    let frame = t.vertebra(i).frame.clone();
                    let midline = |p: &P3| (v3(p) - v3(&frame.origin)).dot(&v3(&frame.x)).abs();
                    let Some(k) = t.facets.iter().position(|f| {
                        f.upper == i && f.side == s.index() && f.kind == PosteriorContact::Articular
                    }) else {
                        changes.push(format!(
                            "medial facetectomy {} {}: joint not modelled, nothing to remove",
                            segment_name(&t, i),
                            s.name()
                        ));
                        continue;
                    };
                    let g = &mut t.facets[k].geometry;
                    let cut = medial_cut(&g.slave, &g.slave_area, &midline, fraction);
                    let (n_slave, n_master) = (g.slave.len(), g.master.len());
                    let keep: Vec<bool> = g.slave.iter().map(|p| midline(p) >= cut).collect();
                    let mut it = keep.iter();
                    g.slave.retain(|_| *it.next().unwrap_or(&true));
                    let mut it = keep.iter();
                    g.slave_area.retain(|_| *it.next().unwrap_or(&true));
                    g.master.retain(|tri| {
                        let c = [0, 1, 2].map(|a| (tri[0][a] + tri[1][a] + tri[2][a]) / 3.0);
                        midline(&c) >= cut
                    });
                    let (removed_slave, removed_master) =
                        (n_slave - g.slave.len(), n_master - g.master.len());
                    let emptied = g.slave.is_empty() || g.master.is_empty();
                    if emptied {
                        t.facets.remove(k);
                    }
                    let nb = t.fibres.len();
                    let tw = twin;
                    t.fibres.retain(|f| {
                        !(f.bodies[0] == i
                            && f.ligament == Ligament::Cl
                            && fibre_side(tw, i, &f.ends[0]) == s
                            && midline(&f.ends[0]) < cut)
                    });
                    // The bone of both processes medial of the cut goes with the cartilage
                    // (for the full fidelity's mesh and the pictures).
                    let left = s == Side::Left;
                    for (b, superior) in [(i, false), (i + 1, true)] {
                        resect(
                            &mut t,
                            &mut assumptions,
                            if cut.is_finite() {
                                Resection::medial_articular_process(
                                    twin.vertebra(b),
                                    superior,
                                    left,
                                    frame.origin,
                                    frame.x,
                                    cut,
                                )
                            } else {
                                // The cut took the whole joint.
                                Resection::articular_process(twin.vertebra(b), superior, left)
                            },
                        );
                    }
                    changes.push(format!(
                        "medial facetectomy {} {} ({:.0} % of the articular area): {removed_slave} of {n_slave} contact points and {removed_master} of {n_master} surface triangles medial of {cut:.1} mm from the midline removed{}, {} capsular fibres cut",
                        segment_name(&t, i),
                        s.name(),
                        fraction * 100.0,
                        if emptied { " (nothing left: the joint is gone)" } else { "" },
                        nb - t.fibres.len()
                    ));
                    assumptions.push(format!(
                        "medial facetectomy {} {}: the medial {:.0} % of the articular area (nearest the midline) and the capsular fibres inserting there are removed, and with them the bone of both articular processes medial of the cut (in the full fidelity's mesh and the pictures; bone within 5 mm of the remaining joint surface is kept for its contact patch); the lateral joint keeps its contact, and a bony stop of the process tip, where modelled, is kept unless the removed bone bears it (then the changes list it as removed). Larger resections loosen the segment more (J Orthop Surg Res 2021, doi 10.1186/s13018-021-02733-7, FE L3-L5).",
                        segment_name(&t, i),
                        s.name(),
                        fraction * 100.0
                    ));
                }
            }
            Operation::Facetectomy { segment, sides, .. } => {
                let i = segment_index(&t, segment).unwrap_or(0);
                for s in sides.sides() {
                    let here = |f: &spinetwin_model::twin::TwinFacet, k| {
                        f.upper == i && f.side == s.index() && f.kind == k
                    };
                    let joints = t
                        .facets
                        .iter()
                        .filter(|f| here(f, PosteriorContact::Articular))
                        .count();
                    let stops = t
                        .facets
                        .iter()
                        .filter(|f| here(f, PosteriorContact::BonyStop))
                        .count();
                    // The whole articular process goes, so its tip's bony stop goes too.
                    t.facets.retain(|f| !(f.upper == i && f.side == s.index()));
                    let nb = t.fibres.len();
                    let tw = twin;
                    t.fibres.retain(|f| {
                        !(f.bodies[0] == i
                            && f.ligament == Ligament::Cl
                            && fibre_side(tw, i, &f.ends[0]) == s)
                    });
                    assumptions.push(format!(
                        "facetectomy {} {}: total, the articular contact, the whole capsule and the bony stop of the process tip (where modelled) are gone; the pars and lamina are kept",
                        segment_name(&t, i),
                        s.name()
                    ));
                    let left = s == Side::Left;
                    for (b, superior) in [(i, false), (i + 1, true)] {
                        resect(
                            &mut t,
                            &mut assumptions,
                            Resection::articular_process(twin.vertebra(b), superior, left),
                        );
                    }
                    changes.push(format!(
                        "facetectomy {} {}: {}{} and {} capsular fibres removed",
                        segment_name(&t, i),
                        s.name(),
                        if joints == 1 {
                            "the facet contact"
                        } else {
                            "no facet contact (joint not modelled)"
                        },
                        if stops > 0 { ", the bony stop" } else { "" },
                        nb - t.fibres.len()
                    ));
                }
            }
            Operation::Nucleotomy { segment } => {
                let i = segment_index(&t, segment).unwrap_or(0);
                let n = std::mem::take(&mut t.discs[i].mesh.nucleus_elements).len();
                discs_without_nucleus.push(i);
                changes.push(format!(
                    "nucleotomy {}: {n} nucleus elements removed",
                    segment_name(&t, i)
                ));
                assumptions.push(format!(
                    "nucleotomy {}: the whole nucleus is removed and the cavity is empty (no fluid, no collapse of the annulus); IDP is not defined there",
                    segment_name(&t, i)
                ));
            }
            Operation::InterbodyCage {
                segment,
                material,
                footprint,
                side,
                interface,
                friction,
                distraction_mm,
            } => {
                let i = segment_index(&t, segment).unwrap_or(0);
                // Each endplate takes half the distraction as interference, driven in by the
                // model's load-free first step.
                let seated =
                    distraction_mm.map_or(CAGE_SEATING_MM, |d| (0.5 * d).max(CAGE_SEATING_MM));
                let side = side.unwrap_or(Side::Left);
                let (e, nu) = material.e_nu();
                let nucleus = std::mem::take(&mut t.discs[i].mesh.nucleus_elements);
                let removed = approach_window(&mut t, i, *footprint, side);
                let mut all_removed = 0;
                if *footprint == CageFootprint::Alif {
                    let nb = t.fibres.len();
                    t.fibres
                        .retain(|f| !(f.bodies[0] == i && f.ligament == Ligament::All));
                    all_removed = nb - t.fibres.len();
                }
                changes.push(format!(
                    "interbody cage {} ({:?}, {:?}{}): {} nucleus elements become the cage (E {} MPa), {} annulus elements removed for the approach{}",
                    segment_name(&t, i),
                    material,
                    footprint,
                    if matches!(footprint, CageFootprint::Tlif | CageFootprint::Llif) {
                        format!(" {}", side.name())
                    } else {
                        String::new()
                    },
                    nucleus.len(),
                    e,
                    removed,
                    if all_removed > 0 {
                        format!(", {all_removed} ALL fibres cut")
                    } else {
                        String::new()
                    }
                ));
                t.implants.disc_blocks.push(DiscBlock {
                    name: format!("cage {}", segment_name(&t, i)),
                    kind: DiscBlockKind::Cage,
                    disc: i,
                    elements: nucleus,
                    e,
                    nu,
                    interface: match interface {
                        CageInterface::Bonded => BlockInterface::Bonded,
                        CageInterface::Contact => BlockInterface::Contact {
                            friction: friction.unwrap_or(CAGE_FRICTION),
                            seating_mm: CAGE_SEATING_MM,
                            distraction_mm: distraction_mm.unwrap_or(0.0),
                        },
                    },
                });
                discs_without_nucleus.push(i);
                assumptions.push(match interface {
                    CageInterface::Bonded => format!(
                        "cage {}: the cage fills the nucleus volume and is bonded to both endplates (no subsidence or lift-off, as after fusion); linear elastic, E {e} MPa, nu {nu}",
                        segment_name(&t, i)
                    ),
                    CageInterface::Contact => format!(
                        "cage {}: the cage fills the nucleus volume and sits on both endplates in penalty contact with Coulomb friction {} (a modelling choice), seated {seated} mm into each (distraction {} mm{}) and held to the lower vertebra by six {BLOCK_HOLD_N_PER_MM} N/mm bars (its teeth): it can lift off where the segment opens and slide at the upper endplate, it does not sink into the bone (rigid vertebrae; the bone under it is checked separately, from its contact pressure), and nothing holds it to the annulus around it; E {e} MPa, nu {nu} (rigid in the hybrid model: its compliance is the contact's)",
                        segment_name(&t, i),
                        friction.unwrap_or(CAGE_FRICTION),
                        distraction_mm.unwrap_or(0.0),
                        if distraction_mm.is_some_and(|d| 0.5 * d > CAGE_SEATING_MM) {
                            ", driven in by a load-free first step: rotations are measured from the distracted pose"
                        } else {
                            ""
                        }
                    ),
                });
            }
            Operation::Hemilaminectomy { level, side } => {
                let i = level_index(&t, level).unwrap_or(0);
                let fr = t.vertebra(i).frame.clone();
                let (origin, x) = (v3(&fr.origin), v3(&fr.x));
                // Lateral offset (mm, + towards `side`) of a fibre's insertion on vertebra i.
                let sign = if *side == Side::Left { 1.0 } else { -1.0 };
                let before = t.fibres.len();
                t.fibres.retain(|f| {
                    if f.ligament != Ligament::Lf {
                        return true;
                    }
                    let Some(end) = f.bodies.iter().position(|&b| b == i) else {
                        return true;
                    };
                    let offset = sign * (v3(&f.ends[end]) - origin).dot(&x);
                    // The flavum's two halves meet at the midline: the midline fibre goes
                    // with the resected half (the surgeon takes the flavum to the midline).
                    offset < -HEMI_MIDLINE_MM
                });
                let cut = before - t.fibres.len();
                changes.push(format!(
                    "hemilaminectomy {} {}: {cut} ligamentum flavum fibres removed (the {} half above and below, and the midline fibre)",
                    t.levels[i].name(),
                    side.name(),
                    side.name()
                ));
                assumptions.push(format!(
                    "hemilaminectomy {} {}: modelled through the ligamentum flavum it detaches on that side, above and below; the spinous process with the interspinous and supraspinous ligaments, the other lamina, the facet joints and their capsules stay; the vertebrae are rigid in the hybrid twin, so the bone removed does not weaken them there (at the full fidelity it leaves the deformable mesh)",
                    t.levels[i].name(),
                    side.name()
                ));
                resect(
                    &mut t,
                    &mut assumptions,
                    Resection::hemilaminectomy(twin.vertebra(i), *side == Side::Left),
                );
            }
            Operation::BonyFusion {
                segment,
                modulus_mpa,
            } => {
                let i = segment_index(&t, segment).unwrap_or(0);
                let (e, from) = match modulus_mpa {
                    Some(m) => (*m, "given"),
                    None => (
                        fusion_modulus(&t, i).unwrap_or(FALLBACK_FUSION_MPA),
                        "the mean cancellous modulus of the two vertebrae from their trabecular HU",
                    ),
                };
                // After the other operations, whatever their order in the file: the fusion
                // mass grows around a cage and into a nucleotomy's cavity.
                fusions.push((i, e, from));
            }
            Operation::PedicleScrews { .. } => {}
            Operation::Vertebroplasty {
                level,
                fill_fraction,
                cement_modulus_mpa,
            } => {
                let i = level_index(&t, level).unwrap_or(0);
                let cement = Isotropic {
                    e_mpa: cement_modulus_mpa.unwrap_or(BONE_CEMENT.e_mpa),
                    nu: BONE_CEMENT.nu,
                };
                let what = if cement_modulus_mpa.is_some() {
                    format!("cement of E {:.0} MPa", cement.e_mpa)
                } else {
                    format!("PMMA, E {:.0} MPa", cement.e_mpa)
                };
                cemented.push(CementFill {
                    level: t.levels[i],
                    fraction: *fill_fraction,
                    cement,
                });
                changes.push(format!(
                    "vertebroplasty {} ({:.0} % fill, {what}): recorded in the hybrid twin (rigid vertebrae), cement elements in the body at the full fidelity",
                    t.levels[i].name(),
                    fill_fraction * 100.0
                ));
                assumptions.push(format!(
                    "vertebroplasty {}: the cement ({what}) is a compact volume replacing the cancellous core around the body centre (as a kyphoplasty places it; a vertebroplasty's interdigitation with the trabeculae is not modelled); vertebrae are rigid in the hybrid fidelity, so cement changes nothing in the motion, disc pressure and facet forces of that model; with the CT given (`plan --ct`, and in the demo) the cemented vertebra is also compressed as deformable bone (its stiffening and bone stress are reported), and with each neighbour as a motion segment (homogeneous linear-elastic disc, no nucleus pressure, no facet load: the low end of the adjacent-stress effect). At the full fidelity (`plan --fidelity full`) the cement is elements of that material in the deformable body, inside the whole solve. Rohlmann et al. 2006 (Eur Spine J 15:1255) found cement stiffening alone raises the adjacent IDP by only about 2.4 %.",
                    t.levels[i].name()
                ));
            }
        }
    }
    for (i, e, from) in fusions {
        let dm = &mut t.discs[i].mesh;
        let implant: std::collections::HashSet<usize> =
            t.implants.disc_block_elements(i, |_| true).collect();
        // The rim: the intact annulus (an approach window's cavity included), less any cage.
        dm.annulus_elements.clear();
        dm.lamella.clear();
        dm.fibre_directions.clear();
        let rim: Vec<usize> = twin.discs[i]
            .mesh
            .annulus_elements
            .iter()
            .copied()
            .filter(|e| !implant.contains(e))
            .collect();
        let rim_set: std::collections::HashSet<usize> = rim.iter().copied().collect();
        // The centre: the nucleus, or the cavity a nucleotomy left.
        let centre: Vec<usize> = (0..dm.mesh.num_elements())
            .filter(|e| !implant.contains(e) && !rim_set.contains(e))
            .collect();
        dm.nucleus_elements.clear();
        let name = segment_name(&t, i);
        for (kind, elements, part) in [
            (DiscBlockKind::FusionCentre, centre, "centre"),
            (DiscBlockKind::FusionRim, rim, "rim"),
        ] {
            if elements.is_empty() {
                continue;
            }
            t.implants.disc_blocks.push(DiscBlock {
                name: format!("fusion mass {name} ({part})"),
                kind,
                disc: i,
                elements,
                e,
                nu: FUSION_NU,
                interface: BlockInterface::Bonded,
            });
        }
        // The fusion mass grows onto the cage: it is bonded from then on.
        for b in t.implants.disc_blocks.iter_mut().filter(|b| b.disc == i) {
            b.interface = BlockInterface::Bonded;
        }
        if !discs_without_nucleus.contains(&i) {
            discs_without_nucleus.push(i);
        }
        changes.push(format!(
            "bony fusion {name}: the disc space{} becomes bone, E {e:.0} MPa ({from})",
            if implant.is_empty() {
                String::new()
            } else {
                " around the cage".to_string()
            }
        ));
        assumptions.push(format!(
            "bony fusion {name}: the solid fusion of a later stage, modelled as the whole disc space (nucleus, annulus and any cavity; a cage stays a cage) turned into linear elastic bone (E {e:.0} MPa, nu {FUSION_NU}) bonded to both endplates, as FE studies model a fused disc (e.g. Hsieh et al. 2017, Clin Biomech 43:115); ligaments and facet joints stay; no posterolateral fusion mass; IDP is not defined there"
        ));
    }
    // What stays attached to a vertebra that loses bone: a bony stop bearing on the bone a
    // decompression removes goes with it; every other contact and ligament insertion on a
    // cut vertebra keeps the bone around it (the joints a decompression does not target).
    let resections = std::mem::take(&mut t.implants.resections);
    for mut r in resections {
        let Some(b) = t.levels.iter().position(|&l| l == r.level) else {
            continue;
        };
        let before = t.facets.len();
        t.facets.retain(|f| {
            f.kind != PosteriorContact::BonyStop
                || !contact_points(f, b).into_iter().any(|p| r.targets(p))
        });
        let gone = before - t.facets.len();
        if gone > 0 {
            changes.push(format!(
                "{} {}: {gone} bony stop(s) removed with the bone they bear on",
                r.level.name(),
                r.what
            ));
        }
        let mut kept: Vec<[f64; 3]> = t.facets.iter().flat_map(|f| contact_points(f, b)).collect();
        for f in &t.fibres {
            for k in 0..2 {
                if f.bodies[k] == b {
                    kept.push(f.ends[k]);
                }
            }
        }
        r.spare(kept);
        t.implants.resections.push(r);
    }
    for p in &screws {
        t.implants.screws.push(spinetwin_model::twin::ScrewAnchor {
            name: format!("screw {} {}", p.level.name(), p.side.name()),
            body: t.levels.iter().position(|l| *l == p.level).unwrap_or(0),
            head: p.head,
            entry: p.entry,
            tip: p.tip,
            radius_mm: p.diameter_mm / 2.0,
            anchorage_modulus_mpa: p.anchorage_modulus_mpa,
        });
    }
    for rod in rods {
        let RodPlan {
            levels: idx,
            sides,
            diameter: d,
            e_nu: (e, nu),
            material: mat,
            anchorage,
        } = rod;
        let mut n = 0;
        for w in idx.windows(2) {
            for &s in &sides {
                let head = |lvl: usize| {
                    screws
                        .iter()
                        .find(|p: &&ScrewPlan| p.level == t.levels[lvl] && p.side == s)
                        .map(|p| p.head)
                        .unwrap_or([0.0; 3])
                };
                let (ha, hb) = (head(w[0]), head(w[1]));
                let axis = v3(&hb) - v3(&ha);
                let fr = &t.vertebra(w[0]).frame;
                let mut orientation = fr.x;
                if axis.normalize().cross(&v3(&fr.x)).norm() < 0.2 {
                    orientation = fr.y;
                }
                t.implants.beams.push(Beam {
                    name: format!(
                        "rod {}-{} {}",
                        t.levels[w[0]].name(),
                        t.levels[w[1]].name(),
                        s.name()
                    ),
                    a: BeamEnd { body: w[0], at: ha },
                    b: BeamEnd { body: w[1], at: hb },
                    section: BeamSection::circle(d),
                    e,
                    nu,
                    orientation,
                });
                n += 1;
            }
        }
        let lv: Vec<&str> = idx.iter().map(|&i| t.levels[i].name()).collect();
        changes.push(format!(
            "pedicle screws {} ({}): {} rod segments, {mat} {d} mm",
            lv.join(", "),
            sides
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" and "),
            n
        ));
        assumptions.push(format!(
            "screws {}: {}; heads {SCREW_HEAD_OFFSET_MM} mm posterior of the pedicle entry along the pedicle axis; straight {mat} rods (E {e} MPa) clamped to the heads",
            lv.join(", "),
            anchorage_text(&screws, &idx, &t.levels, anchorage)
        ));
        // A corridor the landmarks read as lopsided puts its screw where it was read: say so
        // next to the results that depend on it.
        for &i in &idx {
            if let Some(w) = t.vertebra(i).pedicle_asymmetry_warning() {
                assumptions.push(format!(
                    "screws in {}: the screws follow the pedicle corridors as the landmarks read them, and the landmarks warn: {w}",
                    t.levels[i].name()
                ));
            }
        }
    }
    Ok(ScenarioModel {
        scenario: scenario.clone(),
        twin: t,
        screws,
        changes,
        assumptions,
        discs_without_nucleus,
        cemented,
        hybrid_unchanged: scenario
            .operations
            .iter()
            .all(|op| matches!(op, Operation::Vertebroplasty { .. })),
    })
}

/// How the screws in vertebrae `idx` are held, for the assumptions: `requested` is the
/// operation's anchorage; an elastic one falls back to rigid fixation for a vertebra whose
/// trabecular HU is unknown, and says so.
fn anchorage_text(
    screws: &[ScrewPlan],
    idx: &[usize],
    levels: &[Level],
    requested: ScrewAnchorage,
) -> String {
    let mine: Vec<&ScrewPlan> = screws
        .iter()
        .filter(|p| idx.iter().any(|&i| levels[i] == p.level))
        .collect();
    let name = |p: &ScrewPlan| format!("{} {}", p.level.name(), p.side.name());
    let moduli: Vec<String> = mine
        .iter()
        .filter_map(|p| {
            p.anchorage_modulus_mpa
                .map(|m| format!("{} {m:.0} MPa", name(p)))
        })
        .collect();
    let rigid: Vec<String> = mine
        .iter()
        .filter(|p| p.anchorage_modulus_mpa.is_none())
        .map(|p| name(p))
        .collect();
    let rigid_text = "rigidly fixed in rigid vertebrae (no bone-screw interface; an upper bound of the construct's stiffness)";
    if requested == ScrewAnchorage::Rigid || moduli.is_empty() && rigid.is_empty() {
        return rigid_text.into();
    }
    let mut parts = Vec::new();
    if !moduli.is_empty() {
        parts.push(format!(
            "held in their rigid vertebrae by an elastic foundation along the shaft (spinetwin_model::anchorage: the cancellous modulus from the vertebra's HU times the interface factor {}, calibrated on in-vitro screw constructs: {}); no loosening or pull-out",
            spinetwin_model::anchorage::ANCHORAGE_FACTOR,
            moduli.join(", ")
        ));
    }
    if !rigid.is_empty() {
        parts.push(format!(
            "{} {rigid_text}: the vertebra's trabecular HU is unknown (a twin built without the CT), and the elastic anchorage takes its modulus from it",
            rigid.join(", ")
        ));
    }
    parts.join("; ")
}

/// The points of contact `f` that sit on vertebra `b`: the slave points of its upper
/// vertebra, the master triangles' corners of its lower one.
fn contact_points(f: &spinetwin_model::twin::TwinFacet, b: usize) -> Vec<[f64; 3]> {
    if f.upper == b {
        f.geometry.slave.clone()
    } else if f.upper + 1 == b {
        f.geometry.master.iter().flatten().copied().collect()
    } else {
        Vec::new()
    }
}

/// Records bone a decompression removes (for the full fidelity's mesh and the pictures), or
/// says why its region could not be placed.
fn resect(t: &mut Twin, assumptions: &mut Vec<String>, r: std::result::Result<Resection, String>) {
    match r {
        Ok(r) => t.implants.resections.push(r),
        Err(m) => assumptions.push(format!(
            "the bone removed stays in the deformable mesh and the pictures: {m}"
        )),
    }
}

/// Distance (mm) from the vertebra's sagittal plane within which a ligamentum flavum fibre
/// counts as the midline one, resected with either half by a hemilaminectomy.
pub const HEMI_MIDLINE_MM: f64 = 0.5;

/// Poisson's ratio of a fusion mass (bone).
pub const FUSION_NU: f64 = 0.3;

/// Only reached if the checks of pass 1 were bypassed: a cancellous modulus (MPa).
const FALLBACK_FUSION_MPA: f64 = 300.0;

/// The cancellous modulus (MPa) of vertebra `b` from its trabecular HU (default bone
/// material: HU -> density -> Morgan 2003); `None` when the HU is unknown.
fn cancellous_modulus(twin: &Twin, b: usize) -> Option<f64> {
    let hu = twin.vertebra(b).trabecular_hu;
    hu.is_finite()
        .then(|| BoneMaterial::default().modulus(hu))
        .filter(|m| *m > 0.0 && m.is_finite())
}

/// The default Young's modulus (MPa) of the fusion mass of segment `i`: the mean cancellous
/// modulus of its two vertebrae from their trabecular HU (default bone material: HU ->
/// density -> Morgan 2003), so a patient with osteoporotic bone gets a softer fusion.
fn fusion_modulus(twin: &Twin, i: usize) -> std::result::Result<f64, String> {
    let material = BoneMaterial::default();
    let mut sum = 0.0;
    for b in [i, i + 1] {
        let hu = twin.vertebra(b).trabecular_hu;
        if !hu.is_finite() {
            return Err(format!(
                "the trabecular HU of {} is unknown (no cancellous core was found in its landmarks), so the fusion mass has no default modulus: give modulus_mpa (e.g. 300)",
                twin.levels[b].name()
            ));
        }
        sum += material.modulus(hu);
    }
    Ok(sum / 2.0)
}

/// Removes the annulus elements of disc `i` in the approach window(s) of `footprint`;
/// returns how many. Windows are angular sectors about the disc centre in the lower
/// vertebra's transverse plane (angle 0 = patient left, 90 deg = posterior): TLIF one
/// posterolateral window (45 deg from posterior towards `side`, +/- 25 deg); PLIF two
/// paramedian posterior windows (20 deg either side of posterior, +/- 15 deg); ALIF the
/// anterior window (+/- 45 deg); LLIF one lateral window on `side` (+/- 25 deg). Every
/// lamella in a window is removed (a full-thickness annulotomy).
fn approach_window(t: &mut Twin, i: usize, footprint: CageFootprint, side: Side) -> usize {
    let fr = t.vertebra(i + 1).frame.clone();
    let (x, y) = (v3(&fr.x), v3(&fr.y));
    let lateral = if side == Side::Left { 0.0 } else { 180.0 };
    let windows: Vec<(f64, f64)> = match footprint {
        CageFootprint::Tlif => vec![(if side == Side::Left { 45.0 } else { 135.0 }, 25.0)],
        CageFootprint::Plif => vec![(70.0, 15.0), (110.0, 15.0)],
        CageFootprint::Alif => vec![(-90.0, 45.0)],
        CageFootprint::Llif => vec![(lateral, 25.0)],
    };
    let dm = &mut t.discs[i].mesh;
    let mesh = &dm.mesh;
    let nn = mesh.nodes.len().max(1) as f64;
    let centre = mesh.nodes.iter().map(v3).sum::<Vector3<f64>>() / nn;
    let centroid = |e: usize| Vector3::from(mesh.element_centroid(e));
    let keep: Vec<bool> = dm
        .annulus_elements
        .iter()
        .map(|&e| {
            let d = centroid(e) - centre;
            let ang = d.dot(&y).atan2(d.dot(&x)).to_degrees();
            !windows.iter().any(|&(c, h)| {
                let mut diff = (ang - c).rem_euclid(360.0);
                if diff > 180.0 {
                    diff -= 360.0;
                }
                diff.abs() <= h
            })
        })
        .collect();
    let removed = keep.iter().filter(|k| !**k).count();
    let mut it = keep.iter();
    dm.annulus_elements.retain(|_| *it.next().unwrap_or(&true));
    let mut it = keep.iter();
    dm.lamella.retain(|_| *it.next().unwrap_or(&true));
    let mut it = keep.iter();
    dm.fibre_directions.retain(|_| *it.next().unwrap_or(&true));
    removed
}
