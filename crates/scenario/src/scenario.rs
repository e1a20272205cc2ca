//! The scenario file: a name and a list of `[[operation]]` tables (TOML).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Result, ScenarioError};

/// A surgical scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in the comparison.
    pub name: String,
    /// Optional free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The operations, in the order they are listed.
    #[serde(rename = "operation", default)]
    pub operations: Vec<Operation>,
    /// Where it was read from (for error messages); empty when built in code.
    #[serde(skip)]
    pub file: String,
}

/// One side of the patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Patient's left.
    Left,
    /// Patient's right.
    Right,
}

impl Side {
    /// 0 left, 1 right (the twin's facet/side index).
    pub fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }

    /// `left` or `right`.
    pub fn name(self) -> &'static str {
        ["left", "right"][self.index()]
    }
}

/// Which sides an operation acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideSel {
    /// Left only.
    Left,
    /// Right only.
    Right,
    /// Both (bilateral).
    #[default]
    Both,
}

impl SideSel {
    /// The sides selected.
    pub fn sides(self) -> Vec<Side> {
        match self {
            SideSel::Left => vec![Side::Left],
            SideSel::Right => vec![Side::Right],
            SideSel::Both => vec![Side::Left, Side::Right],
        }
    }
}

/// How much of a facet joint is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FacetExtent {
    /// The whole joint: articular contact and capsule.
    #[default]
    Total,
    /// Medial partial facetectomy: the medial part of the joint (a share of its articular
    /// area, nearest the midline) and the capsule over it are removed; the lateral part
    /// keeps articulating.
    Partial,
}

/// Rod material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RodMaterial {
    /// Ti-6Al-4V: E 110 GPa, nu 0.3 (`../shared/reference/materials.csv`, Sci Rep 2025
    /// s41598-025-03377-x Table 1).
    #[default]
    Ti6al4v,
    /// Cobalt-chromium (CoCrMo): E 210 GPa, nu 0.3 (typical handbook value for wrought
    /// CoCrMo, ASTM F1537; not in the project's reference table).
    Cocr,
    /// PEEK: E 3.6 GPa, nu 0.3 (`materials.csv`, same source as Ti-6Al-4V).
    Peek,
}

impl RodMaterial {
    /// Young's modulus (MPa) and Poisson's ratio.
    pub fn e_nu(self) -> (f64, f64) {
        match self {
            RodMaterial::Ti6al4v => (110_000.0, 0.3),
            RodMaterial::Cocr => (210_000.0, 0.3),
            RodMaterial::Peek => (3_600.0, 0.3),
        }
    }

    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            RodMaterial::Ti6al4v => "Ti-6Al-4V",
            RodMaterial::Cocr => "CoCr",
            RodMaterial::Peek => "PEEK",
        }
    }
}

/// Cage material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CageMaterial {
    /// PEEK, E 3.6 GPa, nu 0.3 (`materials.csv`).
    #[default]
    Peek,
    /// Titanium (Ti-6Al-4V), E 110 GPa, nu 0.3 (`materials.csv`).
    Titanium,
}

impl CageMaterial {
    /// Young's modulus (MPa) and Poisson's ratio.
    pub fn e_nu(self) -> (f64, f64) {
        match self {
            CageMaterial::Peek => (3_600.0, 0.3),
            CageMaterial::Titanium => (110_000.0, 0.3),
        }
    }
}

/// How a pedicle screw is held in its vertebra in the hybrid fidelity (rigid vertebrae).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrewAnchorage {
    /// An elastic foundation along the shaft, from the vertebra's cancellous modulus
    /// times the calibrated interface factor (`spinetwin_model::anchorage`): the day of
    /// the operation.
    #[default]
    Elastic,
    /// Rigidly fixed in the vertebra (an upper bound of the construct's stiffness).
    Rigid,
}

/// How an interbody cage meets the endplates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CageInterface {
    /// In frictional contact: it can lift off and slide (the day of the operation).
    #[default]
    Contact,
    /// Bonded to both endplates (bone grown onto it).
    Bonded,
}

/// Default friction coefficient of a cage on the endplates: a modelling choice for a
/// serrated or roughened cage face on the bony endplate, not a measured value; give
/// `friction` to see its effect.
pub const CAGE_FRICTION: f64 = 0.5;

/// How far a cage in contact is seated into each endplate at rest (mm): the small
/// interference of an impacted cage, enough for it to start in contact and be held; the
/// segment relaxes it at once (the vertebrae move apart by about as much, against the
/// annulus and ligaments, a preload of a few newtons).
pub const CAGE_SEATING_MM: f64 = 0.01;

/// Largest `distraction_mm` of a cage accepted (mm): beyond a few millimetres an
/// oversized cage is a different operation (and the rigid-vertebra model would not show the
/// endplate damage it causes).
pub const CAGE_MAX_DISTRACTION_MM: f64 = 4.0;

/// Surgical approach of an interbody cage (decides which annulus is cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CageFootprint {
    /// Transforaminal: one posterolateral annulotomy (on `side`).
    Tlif,
    /// Posterior: two paramedian posterior annulotomies.
    Plif,
    /// Anterior: an anterior annulotomy and the anterior longitudinal ligament.
    Alif,
    /// Lateral (transpsoas): one lateral annulotomy (on `side`).
    Llif,
}

fn default_rod_diameter() -> f64 {
    5.5
}

/// One surgical operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Removal of the lamina and spinous process of `level` (see `apply` for the fibres cut).
    Laminectomy {
        /// The vertebra, e.g. `L4`.
        level: String,
    },
    /// Removal of one lamina of `level`, the spinous process kept (see `apply` for the
    /// fibres cut).
    Hemilaminectomy {
        /// The vertebra, e.g. `L4`.
        level: String,
        /// The side of the lamina removed.
        side: Side,
    },
    /// Removal of a facet joint of a motion segment.
    Facetectomy {
        /// The segment, e.g. `L4-L5`.
        segment: String,
        /// Which joints.
        #[serde(default)]
        sides: SideSel,
        /// How much.
        #[serde(default)]
        extent: FacetExtent,
        /// With `extent = "partial"`: the share of the articular area removed, from the
        /// medial edge (0.1..=0.9, default 0.5).
        #[serde(default)]
        medial_fraction: Option<f64>,
    },
    /// Removal of the nucleus pulposus of a disc.
    Nucleotomy {
        /// The segment, e.g. `L4-L5`.
        segment: String,
    },
    /// Pedicle screws in each listed vertebra, joined by rods.
    PedicleScrews {
        /// Instrumented vertebrae (at least two).
        levels: Vec<String>,
        /// Which sides.
        #[serde(default)]
        sides: SideSel,
        /// Rod diameter (mm).
        #[serde(default = "default_rod_diameter")]
        rod_diameter_mm: f64,
        /// Rod material.
        #[serde(default)]
        rod_material: RodMaterial,
        /// Screw diameter (mm); chosen from the pedicle width when absent.
        #[serde(default)]
        screw_diameter_mm: Option<f64>,
        /// Screw length (mm); chosen from the pedicle axis when absent.
        #[serde(default)]
        screw_length_mm: Option<f64>,
        /// How the screws are held in the bone in the hybrid fidelity: `elastic` (default)
        /// or `rigid`. The full fidelity bonds them to the deformable bone either way.
        #[serde(default)]
        anchorage: ScrewAnchorage,
    },
    /// An interbody cage in a disc.
    InterbodyCage {
        /// The segment, e.g. `L4-L5`.
        segment: String,
        /// Cage material.
        #[serde(default)]
        material: CageMaterial,
        /// Approach.
        footprint: CageFootprint,
        /// Approach side for TLIF and LLIF (default left).
        #[serde(default)]
        side: Option<Side>,
        /// How the cage meets the endplates: `contact` (default, the day of the operation)
        /// or `bonded` (grown in).
        #[serde(default)]
        interface: CageInterface,
        /// Coulomb friction coefficient of the cage on the endplates with `interface =
        /// "contact"` (0..=1.5, default [`CAGE_FRICTION`]).
        #[serde(default)]
        friction: Option<f64>,
        /// How much taller the cage is than the disc space it fills (mm, total over both
        /// endplates, 0..=[`CAGE_MAX_DISTRACTION_MM`]) with `interface = "contact"`: an
        /// impacted cage sized to restore disc height pushes the endplates apart and
        /// tensions the remaining annulus and ligaments. Default: none, the cage is only
        /// seated [`CAGE_SEATING_MM`] into each endplate.
        #[serde(default)]
        distraction_mm: Option<f64>,
    },
    /// Cement augmentation of a vertebral body (vertebroplasty or kyphoplasty: the cement
    /// is placed as a compact volume around the body centre).
    Vertebroplasty {
        /// The vertebra.
        level: String,
        /// Fraction of the body volume filled with cement (0..1].
        fill_fraction: f64,
        /// Young's modulus of the cement (MPa, 100..=5000); default PMMA, 1937 MPa
        /// (`spinetwin_model::bone_fe::BONE_CEMENT`). A low-modulus cement stiffens the body
        /// less.
        #[serde(default)]
        cement_modulus_mpa: Option<f64>,
    },
    /// A solid (bony) fusion of a motion segment, the later stage of a fusion operation:
    /// the disc space bridged by bone around any cage.
    BonyFusion {
        /// The segment, e.g. `L4-L5`.
        segment: String,
        /// Young's modulus of the fusion mass (MPa, 10..=20000); by default the mean
        /// cancellous modulus of the two vertebrae from their trabecular HU (a mature
        /// fusion, the level made continuous with the patient's own bone).
        #[serde(default)]
        modulus_mpa: Option<f64>,
    },
}

/// How far the model's response to an operation has been checked against published data
/// (docs/validation/scenarios_phantom.md; the bounds quoted are asserted by
/// `crates/scenario/tests/literature.rs`). Ordered from the best supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The changes were compared with in-vitro numbers and fall inside them.
    Checked,
    /// Part of the response was compared with published numbers.
    Partly,
    /// No published number was compared; the direction of the changes is the expected one.
    Plausible,
    /// The hybrid model cannot show the operation's effect (rigid vertebrae).
    NoEffect,
    /// Part of the response is known to disagree with published data.
    Disagrees,
}

impl Evidence {
    /// A short phrase for reports.
    pub fn phrase(self) -> &'static str {
        match self {
            Evidence::Checked => "checked against in-vitro data",
            Evidence::Partly => "partly checked against published data",
            Evidence::Plausible => {
                "not checked against published numbers (plausible direction only)"
            }
            Evidence::NoEffect => "not shown by the hybrid model (rigid vertebrae)",
            Evidence::Disagrees => "in part known to disagree with published data",
        }
    }
}

impl Operation {
    /// How far the model's response to this operation is checked against published data,
    /// with one plain-language sentence saying what was compared (for the report's "how
    /// sure" paragraph).
    pub fn evidence(&self) -> (Evidence, &'static str) {
        match self {
            Operation::PedicleScrews { .. } => (
                Evidence::Checked,
                "Pedicle screws and rods: the drop in the instrumented level's motion matches in-vitro studies (at least 70 % less in flexion-extension and lateral bending and 40 % less in axial rotation; in vitro about 81, 73 and 48 %), the levels next to it hardly change under pure moments and move more when the whole spine is driven through its intact range (Panjabi 2007), and the screws' hold in the bone is set so that a PLIF with screws keeps about the share of the intact axial rotation measured in vitro (0.41). Rod stresses are not checked: under pure moments they come out lower than the hundreds of MPa that published finite-element models report.",
            ),
            Operation::InterbodyCage { .. } => (
                Evidence::Partly,
                "Interbody cage: with pedicle screws the axial rotation left is about that of an in-vitro PLIF study (0.41 of intact); without screws the motion depends on how far the impacted cage tensions the remaining annulus (distraction_mm), which that study does not report, so it is not checked.",
            ),
            Operation::Facetectomy {
                sides: SideSel::Both,
                extent: FacetExtent::Total,
                ..
            } => (
                Evidence::Disagrees,
                "Bilateral total facetectomy: axial rotation rises by more than 100 % as in a published finite-element study (Zeng et al. 2017), but extension rises several times more than that study's +40 %: read the extension increase as an upper bound.",
            ),
            Operation::Facetectomy {
                extent: FacetExtent::Partial,
                ..
            } => (
                Evidence::Partly,
                "Medial (partial) facetectomy: as in vitro (Zhou et al. 2008), removing up to half of the joint leaves axial rotation within 10 % of intact and larger resections raise it, less than a total facetectomy; other motions are not checked.",
            ),
            Operation::Facetectomy { .. } => (
                Evidence::Plausible,
                "One-sided total facetectomy: no published number was compared; more axial rotation and extension at the operated level is the expected direction.",
            ),
            Operation::Laminectomy { .. } | Operation::Hemilaminectomy { .. } => (
                Evidence::Plausible,
                "Laminectomy or hemilaminectomy: no published number was compared; more flexion at the decompressed levels once the ligamentum flavum and the interspinous and supraspinous ligaments are cut is the expected direction.",
            ),
            Operation::Nucleotomy { .. } => (
                Evidence::Plausible,
                "Nucleotomy: no published number was compared; the emptied disc carries no nucleus pressure and moves more.",
            ),
            Operation::Vertebroplasty { .. } => (
                Evidence::NoEffect,
                "Vertebroplasty: in the hybrid model the vertebrae are rigid, so cement changes no motion, disc pressure or facet force (the literature reports changes of only a few per cent at the adjacent discs); its effect on the bone is in the check with deformable vertebrae from the CT.",
            ),
            Operation::BonyFusion { .. } => (
                Evidence::Plausible,
                "Bony fusion (the later stage): the fused level is made continuous with the patient's bone; no published number was compared.",
            ),
        }
    }

    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Laminectomy { .. } => "laminectomy",
            Operation::Hemilaminectomy { .. } => "hemilaminectomy",
            Operation::Facetectomy { .. } => "facetectomy",
            Operation::Nucleotomy { .. } => "nucleotomy",
            Operation::PedicleScrews { .. } => "pedicle_screws",
            Operation::InterbodyCage { .. } => "interbody_cage",
            Operation::Vertebroplasty { .. } => "vertebroplasty",
            Operation::BonyFusion { .. } => "bony_fusion",
        }
    }
}

impl Scenario {
    /// Parses a scenario from TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            file: file.to_string(),
            message: format!(
                "not a valid scenario: {} (see docs/scenarios.md for the format)",
                e.to_string().trim().replace('\n', " ")
            ),
        })?;
        s.file = file.to_string();
        if s.name.trim().is_empty() {
            return Err(ScenarioError::Parse {
                file: file.to_string(),
                message: "the scenario has an empty name: give it one (name = \"...\")".into(),
            });
        }
        if s.operations.is_empty() {
            return Err(ScenarioError::Parse {
                file: file.to_string(),
                message: "the scenario lists no operations: add at least one [[operation]]".into(),
            });
        }
        Ok(s)
    }

    /// Reads and parses a scenario file.
    pub fn read(path: &Path) -> Result<Scenario> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Parse {
            file: file.clone(),
            message: format!("cannot read the scenario file: {e}"),
        })?;
        Scenario::parse(&text, &file)
    }

    /// The file name, or the scenario name when it has none (for messages).
    pub fn origin(&self) -> &str {
        if self.file.is_empty() {
            &self.name
        } else {
            &self.file
        }
    }
}
