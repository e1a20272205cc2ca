//! Classical (non-learning) segmentation of the lumbar spine in CT: every vertebra labelled
//! by level (VerSe numbering), the intervertebral discs and the spinal canal.
//!
//! [`segment`] turns a CT volume in Hounsfield units into a [`Segmentation`]: a label map on
//! the CT grid and one [`LevelReport`] per vertebra. [`dice`] scores a label map against a
//! reference.
//!
//! # Method
//!
//! 0. **Noise**: the soft-tissue noise is estimated (median absolute difference of
//!    neighbours along the finest axis); above 60 HU (low-dose or thin-slice scans; the
//!    phantom sweep goes to 40 HU) the volume is smoothed with a 1 mm Gaussian first, with a
//!    warning, so that the bone mask is not a speckle.
//!    **Metal**: connected pieces of voxels at 2500 HU or more (cortical bone stays below
//!    about 2000; titanium and steel reach the 3071 HU ceiling of 12-bit reconstructions)
//!    of at least 50 mm³ each are implants: with a 1 mm rim (the blurred edge) they are left
//!    out of the bone mask and of every label (the canal's too), the scan gets a warning,
//!    and each vertebra with labelled voxels within 3 mm of that rim a warning and half its
//!    confidence; its rib call is skipped (bright streaks in the rib band look like ribs).
//!    Measured on the phantom with pedicle screws and rods at L4-L5 (`PhantomSpec::screws`,
//!    blurred metal and streak artefacts): levels named as without metal, L4 and L5
//!    flagged, no metal and no rim outside the bone labelled, Dice unchanged elsewhere
//!    (docs/segment/README.md).
//! 1. **Bone threshold** from the scan's HU histogram: halfway between the soft-tissue peak
//!    (mode in -50..150 HU) and Otsu's threshold of the voxels in 0..1500 HU, clamped to
//!    150..300 HU (configurable). Otsu alone lands near the cortical/cancellous boundary and
//!    would cut cancellous bone out. Bone structures smaller than 500 mm³ are dropped.
//!    Because this threshold is far below the cortex, the mask is about half a voxel too
//!    thick; the final labels are trimmed by a partial-volume rule (an edge voxel stays bone
//!    only if its HU is above halfway between the soft-tissue peak and the brightest bone
//!    within 1 mm), repeated layer by layer up to 1 mm deep.
//! 2. **Spinal canal**: in each axial slice, the holes of the bone mask (non-bone regions
//!    not connected to the slice border) with the size of a canal (30..1000 mm²) and
//!    low-density content (mean < 80 HU: epidural fat and dural sac) are candidates. They
//!    are tracked from slice to slice (starting from the candidate nearest the median of all
//!    candidates), giving the canal centre and its anterior edge at each vertebral arch
//!    level, interpolated between arches (the canal is open at the disc levels).
//!    Other holes with bone-like content (mean >= 100 HU: the cancellous core when it is below
//!    the bone threshold, as in osteoporotic scans) are filled, in axial, coronal and
//!    sagittal slices (at coarse spacing the thin cortex is not closed in every slice).
//!    A hole that narrows to a neck under 6 mm is split there first (eroded by 3 mm, pieces
//!    grown back): with the posterior wall open in a slice, the body's core joins the canal
//!    through the basivertebral foramen. Dark holes in front of the canal (within 25 mm of
//!    it laterally, centre at most 40 mm in front) are the body's core too (fatty marrow is
//!    near or below 0 HU) and are filled. Once the disc planes are known (step 4), in each
//!    slice the non-bone pixels in front of the canal and at least 3 mm from the disc
//!    planes that lie between body bone along both their row and their column are filled
//!    (the body: the largest piece of bone in front of the canal, joined across one-pixel
//!    gaps of a thin noisy cortex; this reaches a core that is open to the canal or to the
//!    outside). On verse012 (3 mm, noisy, fatty marrow) these, with the rib removal of
//!    step 6, raised the Dice per vertebra from 0.51-0.74 to 0.62-0.82; leaving out any one
//!    of the three lowers the Dice of two to four levels by 0.03-0.21 (and raises none by
//!    more than 0.012).
//! 3. **Body centreline**: per slice, the centroid of the (filled) bone anterior to the canal
//!    within ±35 mm of it; slices without body bone (discs) are interpolated, the curve is
//!    smoothed and resampled by arc length.
//! 4. **Disc spaces**: along the centreline, the median HU (so that thin endplates and
//!    noise barely matter) on a disc of radius 10 mm perpendicular to the centreline.
//!    Bodies are cancellous bone, discs ~80 HU: runs of the profile below the mid-level
//!    between its 10th and 75th percentiles are disc spaces. Each disc plane is refined by a
//!    least-squares plane through the midpoints of the gap between the endplates (this
//!    follows lordotic tilt and scoliotic wedging better than the centreline tangent).
//!    When the runs give implausible vertebrae (a run longer than 16 mm: low-density
//!    bodies merged with their discs; disc spaces under 18 or over 50 mm apart), the disc
//!    spaces are taken instead as the dips framed by endplates (local minima at least 25 HU
//!    below the lower of the maxima within 8 mm on either side, by decreasing contrast, at
//!    least 20 mm apart), if that leaves fewer implausible distances (as few, when a run
//!    was too long) and finds no fewer than one disc space less than the runs. Disc spaces
//!    framed by endplates take precedence over those dips when they leave no more
//!    implausible distances: endplates are bright bands narrower than a body (at least
//!    25 HU above the profile's median 6-14 mm away on both sides); the darkest point
//!    between two of them at most 16 mm apart, or the centre of a single band at least
//!    6.5 mm wide (the two endplates of a thin disc merged by the blur), is a disc space, and
//!    the dips fill in where no endplates stand out. In fatty or osteoporotic bodies the
//!    cores are as dark as the discs, so the deepest dips can lie inside the bodies (on
//!    verse012 two disc planes 6-7 mm inside the T9 and T11 bodies, which cost T10 and
//!    T11 a third of their Dice). A plane whose gap fit finds no gap (a thin disc bridged
//!    in the bone mask) takes its normal from the fitted planes above and below rather than
//!    from the centreline tangent, which wobbles with the per-slice body centroids.
//! 5. **Vertebrae**: the bone between consecutive disc planes is split into *cores* (bone
//!    at least a few mm from both planes); the rest of the bone (endplates next to a tilted
//!    plane, articular processes that reach past the disc level) goes to the core with the
//!    shortest path inside the bone (a geodesic competition), so posterior elements follow
//!    their own pedicles and laminae and the facet joints become the boundary. Near each
//!    disc plane (5 mm, in front of the canal) the disc side of the endplate's
//!    partial-volume edge is released: a labelled voxel below half-way from the disc's
//!    darkest point to the endplate's peak along the plane's normal (a thin degenerated
//!    disc, blurred above the bone threshold, would otherwise be split between its two
//!    vertebrae).
//!    Behind the canal only the midline is seeded, and there the slab boundaries are the
//!    disc planes lowered by 0.3 mm per mm from 10 mm behind the canal front: the arch slopes
//!    caudally and its laminae and spinous process overlap the next arch like roof tiles
//!    (on verse012 they reach 14-27 mm below their own lower disc plane). Below a thoracic
//!    vertebra above T11 (one carrying ribs with two rib-bearing vertebrae below it, the ribs
//!    judged on the bone mask before the seeds) the boundary drops 1.0 mm per mm: the mid
//!    and lower thoracic spinous processes point steeply down. This is an anatomical prior
//!    the phantom does not share: with painted ribs on its lumbar-shaped T10-T12 it lowers
//!    T10 and T11 by 0.03 there, while on verse012 it raised T10 and T11 by 0.041 and 0.020.
//!    The facet joint space is usually bridged in the bone mask (blur), so the first
//!    competition cuts across the fused articular processes. At voxels of 1.2 mm or finer
//!    (or 1.2 mm pixels in axial slices up to 3 mm thick: the joint space is near-vertical),
//!    the joint is found in the CT as a flat sheet of cleft voxels (darker than the bone
//!    1 mm away on both sides): per contact of two adjacent vertebrae behind the canal on
//!    each side, a plane fitted robustly (RANSAC) to those voxels. Its voxels leave the bone
//!    mask and the competition is run again with that barrier.
//! 6. **Identification**: counted up from the sacrum, cross-checked by the ribs, or counted
//!    from the ribs when no sacrum is in view. The caudal-most segment is the sacrum
//!    when the caudal end of the spine is in view and that segment is much wider laterally
//!    than the (rib-free) vertebrae above (the alae) or much taller (fused sacral segments
//!    without disc spaces). A vertebra carries ribs when the bone 32-60 mm lateral of the
//!    canal (from 20 mm in front of it to 45 mm behind) gives its slab between the disc
//!    planes a sagittal section of at least 55 mm² on a side in view (median over the
//!    sagittal columns of voxels in that band): ribs cross the band obliquely as 1-1.5 cm
//!    tubes to the edge of the view, lumbar transverse processes are thin plates that end
//!    inside it. Each rib is traced column by column to its medial end, which decides its
//!    slab (a rib runs down as it runs out). Measured on verse012: ribs 76-99 mm², L1-L4
//!    0-42 mm²; the phantom's lumbar vertebrae 0-2 mm²; sacral alae (over 400 mm²) are
//!    not ribs. Ribs are not part of the vertebra: on a rib-bearing side, the band bone and
//!    the labelled bone connected to it at least 32 mm out leave the vertebra labels (on the
//!    phantom with painted ribs this raised the Dice of T10-T12 from 0.74-0.77 to
//!    0.88-0.89), and so do the rib's neck and head connected to it at least 24 mm from the
//!    canal centre and less than 5 mm behind it, in front of the transverse process
//!    (verse012 T10-T12 +0.006 to +0.013, the painted phantom +0.014 to +0.019). The last
//!    rib-bearing vertebra followed by a rib-free one is T12. With a sacrum, a different
//!    level there is reported as transitional anatomy or a miscount (11 or 13 rib pairs,
//!    L6, sacralised L5), the sacrum count is kept and every level gets a warning and
//!    confidence 0.4; a rib on one side only on the last rib-bearing vertebra is reported
//!    too. Without a sacrum, levels are counted from T12 (confidence 0.7, a warning that
//!    they come from the ribs; no level below L5 is named). With neither, the caudal-most
//!    vertebra is *assumed* to be L5 and every level gets a warning and a low confidence
//!    (0.3; 0.1 when that vertebra carries ribs, which proves the assumption wrong).
//!    A vertebra whose disc spaces above and
//!    below are not 18-50 mm apart (a disc missed, or a dip inside a body taken for one) is
//!    reported as probably wrongly separated (warning, confidence x 0.3), and every level
//!    counted across it gets a warning and half its confidence; a sacrum recognised then is
//!    not trusted (two vertebrae left in one segment are as tall as a sacrum).
//!    Before the vertebrae are measured, two things in front of the canal are put right.
//!    A calcified aortic wall touching a body somewhere joins the bone mask: in each axial
//!    slice, a piece of a vertebra label more than 40 mm in front of the canal or 25 mm
//!    beside it and over 3 mm from that label's largest piece there is unlabelled (seeds in
//!    front of the canal lie within 30 mm of it and 25 mm beside it, so a calcification
//!    further out is never seeded by its slab). And a fatty or osteoporotic core below the
//!    threshold, behind a cortex that noise breaks in every slice, is given its vertebra's
//!    label: an unlabelled voxel in front of the canal whose first labelled voxel up and
//!    down the slice axis and along at least 7 of the 8 in-plane directions is the same
//!    vertebra (the labels are connected in 3-D, so every broken piece of the cortex is
//!    known; a hull would reach across to the aorta, a disc sees two vertebrae). On
//!    verse012 these raised the Dice of L2 and L3 from 0.73 and 0.69 to 0.82 and 0.78 (all
//!    six levels 0.63-0.82 -> 0.65-0.84). Then an unlabelled voxel that one vertebra's label
//!    encloses in a sagittal or a coronal slice gets that label (repeated until nothing
//!    changes; a disc space or a foramen touches two vertebrae, and the caudal-most segment,
//!    possibly the sacrum with its canal and foramina, is left alone; so is a hole holding a
//!    cut facet joint space, which closing would bridge again): the marrow lateral in the
//!    body and at the pedicle roots, where an axial slice cuts the cortex obliquely, and the
//!    fatty marrow of the laminae and processes. A vertebra cut by the first or last slice
//!    keeps its core: there the ray that leaves the volume counts neither for nor against.
//! 7. **Discs** (100 + upper label): non-bone soft-tissue voxels anterior to the canal whose
//!    two rays along the disc normal meet the upper and the lower vertebra within 15 mm.
//!    **Canal** (200): the tracked canal holes, and between arches the same outline carried
//!    over from the nearest arch slice, restricted to non-bone voxels.
//!
//! # Performance
//!
//! Multi-threaded with rayon where the work is per slice. On the phantom at 0.5 mm
//! (441 x 441 x 519 = 101 M voxels, the size of a 512 x 512 x 400 CT) `segment` takes
//! 5-6 s on 2 (shared) cores with ~1.2 GB peak: the 3-D component ids and the geodesic
//! distances are u32 per voxel. Validation numbers are in `docs/segment/README.md`.
//!
//! # Assumptions
//!
//! CT in HU; an axial acquisition whose voxel axes are within ~18° of the patient axes
//! (oblique volumes are rejected with a message: resample first); the lumbar spine roughly
//! cranio-caudal in the volume; at least two vertebral arches in view. The phantom
//! (`spinetwin-phantom`) is the validation reference; real scans with pelvis or metal have not been
//! validated yet (metal is detected and flagged on the phantom); rib detection was measured on one real CT (verse012, T10-L3).

pub mod given;
pub mod landmarks;
pub mod learned;
pub mod measures;
mod ops;
mod pipeline;

use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;
use spinetwin_imaging::Volume;

pub use landmarks::{landmarks, LandmarkError};
pub use measures::{measure, Measures};
pub use pipeline::segment;

/// Settings of [`segment`]. `Default` is what the validation used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentOptions {
    /// Fixed bone threshold in HU; `None` (default) adapts it to the scan's histogram.
    pub bone_threshold_hu: Option<f32>,
    /// Range the adaptive threshold is clamped to, HU (default 150..300).
    pub threshold_range_hu: (f32, f32),
    /// Bone structures smaller than this are ignored, mm³ (default 500).
    pub min_component_mm3: f64,
    /// Label the intervertebral discs (default true).
    pub label_discs: bool,
    /// Label the spinal canal (default true).
    pub label_canal: bool,
    /// A learned model (ONNX file with its card beside it, see [`learned`]) to run instead
    /// of the classical pipeline; the settings above then do not apply. Needs the cargo
    /// feature `onnx`. Default none.
    #[serde(default)]
    pub model: Option<std::path::PathBuf>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            bone_threshold_hu: None,
            threshold_range_hu: (150.0, 300.0),
            min_component_mm3: 500.0,
            label_discs: true,
            label_canal: true,
            model: None,
        }
    }
}

/// One identified vertebra.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    /// The level.
    pub level: Level,
    /// Its VerSe label in the label map.
    pub label: u16,
    /// Number of voxels.
    pub voxels: usize,
    /// Volume in mm³.
    pub volume_mm3: f64,
    /// Mean HU over the vertebra (cortical and cancellous bone).
    pub mean_hu: f64,
    /// Centroid of the whole vertebra (body and posterior elements), LPS mm.
    pub centroid: [f64; 3],
    /// How sure the level name is, 0..1: about 0.9 counted from the sacrum, 0.7 from the
    /// ribs alone, 0.4 when sacrum and ribs disagree, 0.3 or less when assumed (lowered
    /// further for a doubtful separation or a cut by the field of view).
    pub confidence: f64,
    /// Whether ribs articulate with it (`None`: not judged, e.g. the sacrum, or the lateral
    /// band beside it is out of view).
    #[serde(default)]
    pub rib_bearing: Option<bool>,
    /// What may be wrong with this vertebra (cut by the field of view, assumed level, ...).
    pub warnings: Vec<String>,
}

/// What the level names of a [`Segmentation`] rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LevelBasis {
    /// Counted up from the sacrum; the ribs did not allow a cross-check.
    Sacrum,
    /// Counted up from the sacrum and confirmed by the ribs (the last rib-bearing vertebra
    /// is T12).
    SacrumAndRibs,
    /// No sacrum in view: counted from the last rib-bearing vertebra, taken as T12.
    Ribs,
    /// Neither: the caudal-most vertebra is assumed to be L5.
    Assumed,
    /// Named by a learned model ([`SegmentOptions::model`]), not counted.
    Model,
    /// Given by the user: levels named with [`given::rename_levels`] or a label map fed
    /// back in ([`given::from_label_map`]).
    Given,
}

/// Wall-clock time of one pipeline stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    /// Stage name.
    pub stage: String,
    /// Seconds.
    pub seconds: f64,
}

/// The result of [`segment`].
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    /// Label map on the CT grid (VerSe vertebra labels, discs 100 + upper, canal 200).
    pub labels: Volume<u16>,
    /// The vertebrae, cranial to caudal.
    pub levels: Vec<LevelReport>,
    /// The bone threshold used, HU; NaN where none was (a learned model, labels given).
    pub bone_threshold_hu: f32,
    /// Whether the sacrum was found (the levels are then counted up from it).
    pub sacrum_found: bool,
    /// What the level names rest on (sacrum, ribs, both, or an assumption).
    pub level_basis: LevelBasis,
    /// Warnings about the whole scan.
    pub warnings: Vec<String>,
    /// Time per stage.
    pub timings: Vec<StageTiming>,
}

/// Why a scan could not be segmented.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SegmentError {
    /// The volume is too small to hold a spine.
    #[error("the CT volume ({0:?} voxels) is too small to contain a spine; give a lumbar CT")]
    TooSmall([usize; 3]),
    /// The volume geometry is not supported.
    #[error("unsupported CT geometry: {0}")]
    Unsupported(String),
    /// No bone in the volume.
    #[error("no bone found: {0}")]
    NoBone(String),
    /// Bone, but no recognisable spine.
    #[error("no spine found: {0}")]
    NoSpine(String),
    /// A learned model could not be loaded or run.
    #[error("learned model {0}")]
    Model(String),
    /// Levels or a label map given by the user do not fit the scan.
    #[error("{0}")]
    Levels(String),
}

/// Dice overlap of `label` between two label maps on the same grid:
/// `2 |A ∩ B| / (|A| + |B|)`. `None` when the dimensions differ or neither map has the label.
pub fn dice(a: &Volume<u16>, b: &Volume<u16>, label: u16) -> Option<f64> {
    if a.dims() != b.dims() {
        return None;
    }
    let (mut na, mut nb, mut both) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.data().iter().zip(b.data()) {
        let (ia, ib) = (x == label, y == label);
        na += ia as usize;
        nb += ib as usize;
        both += (ia && ib) as usize;
    }
    (na + nb > 0).then(|| 2.0 * both as f64 / (na + nb) as f64)
}
