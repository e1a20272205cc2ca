//! spinetwin-scenario: surgical scenarios on the spine twin.
//!
//! A scenario ([`Scenario`], read from TOML, see `docs/scenarios.md`) is a list of surgical
//! operations. [`apply()`] checks them against the twin (levels present, operations
//! compatible, pedicles wide and long enough) and returns a [`ScenarioModel`]: a copy of the
//! twin changed the way surgery changes the patient (ligament fibres cut, facet contacts
//! removed, nucleus removed or replaced by a cage, rods clamped to the vertebrae), which
//! solves load cases exactly like the intact twin. [`compare()`] sets the scenario's results
//! beside the intact ones, level by level, and writes them as CSV and a self-contained HTML
//! page. [`matched`] adds ROM-matched ("hybrid") control: the scenario under the moment at
//! which its total ROM equals the intact one.
//!
//! A new surgical operation is a variant of [`Operation`], its checks in `apply::validate`
//! and its model change in `apply::apply`, with a test that the model changes as stated.

pub mod apply;
pub mod bone;
pub mod breach;
pub mod compare;
pub mod header;
pub mod matched;
pub mod scenario;

pub use apply::{apply, ScenarioModel, ScrewPlan};
pub use bone::{
    cement_checks, implant_checks, BoneCheck, ImplantCheck, ImplantChecks, ImplantZone,
};
pub use breach::{breach_checks, ScrewBreach};
pub use compare::{
    compare, Comparison, ComparisonRow, Snapshot, CONTROL_LOAD, CONTROL_ROM_MATCHED,
    SNAPSHOT_INTACT,
};
pub use matched::{rom_matched, MatchOptions, MatchedCase};
pub use scenario::{
    CageFootprint, CageInterface, CageMaterial, Evidence, FacetExtent, Operation, RodMaterial,
    Scenario, ScrewAnchorage, Side, SideSel, CAGE_FRICTION, CAGE_MAX_DISTRACTION_MM,
    CAGE_SEATING_MM,
};

/// Errors of the scenario layer. Each names the scenario file, the operation and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read or parsed.
    #[error("{file}: {message}")]
    Parse {
        /// The scenario file.
        file: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// An operation does not fit the twin or the other operations.
    #[error("{file}: operation {index} ({kind}): {message}")]
    Invalid {
        /// The scenario file (or the scenario name when it has no file).
        file: String,
        /// 1-based index of the operation in the file.
        index: usize,
        /// Its kind.
        kind: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The model layer failed.
    #[error(transparent)]
    Model(#[from] spinetwin_model::ModelError),
}

/// Result alias of the scenario layer.
pub type Result<T> = std::result::Result<T, ScenarioError>;
