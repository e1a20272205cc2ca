//! Anatomical landmarks of each labelled vertebra and disc: the local anatomical frame,
//! endplates with their outlines, pedicles, articular (facet) surfaces and the attachment
//! points of the spinal ligaments. The twin builder (`model`) needs nothing else from the
//! images besides these and the bone HU.
//!
//! All points in mm, LPS (x = patient left, y = posterior, z = superior); directions are
//! unit vectors in LPS.
//!
//! # Method ([`landmarks`])
//!
//! Works on any label map with VerSe vertebra labels (from [`crate::segment`] or a reference
//! segmentation) and uses the canal label (200) when present.
//!
//! * **Body**: the voxels of the vertebra anterior to the canal (the canal's anterior edge
//!   near the midline is the posterior wall). Without a canal label (masks made elsewhere)
//!   the vertebral foramina stand in: per vertebra, the holes its mask encloses in axial
//!   slices, of the parts they form across slices the one furthest posterior (holes inside
//!   the body are not the canal); without either, the anterior half of the bone is used,
//!   with a warning.
//! * **Endplates**: in a fitting frame, the body's voxel columns give the top and bottom
//!   surface heights (extreme voxel centre + half a voxel; a voxel longer across the
//!   columns than a cell is spread into points along that edge, so that a tilted frame's
//!   columns see every height). A plane through the central columns (within 8 mm of the
//!   centre, refitted without those over 4 mm from it) selects the endplate columns
//!   (within 4 mm of it, which drops alae and osteophytes); then `z = rim plane + c (1 - rho^2)` is fitted by
//!   least squares over the columns with rho < 0.85 (rho: elliptic radius over the
//!   endplate's half width and midline half depth), so the plane is the rim plane and the
//!   concavity is absorbed by `c`. The centre is the rim plane over the centre column
//!   (middle of the anterior half's width and of the midline depth); the outline is the farthest
//!   footprint column in each of 48 angular sectors, lifted onto the rim plane.
//! * **Frame**: z bisects the two upward endplate normals, y points from the body centre
//!   to the canal centroid (orthogonalised), x = y x z; origin halfway between the two
//!   endplate centres (sacrum: 14 mm below its superior endplate centre along z). The fit
//!   is repeated four times in the frame it gives.
//! * **Pedicles**: slabs 1 voxel thick perpendicular to y, from the posterior wall to 14 mm
//!   behind it; in each, the bone lateral to the canal (up to 20 mm) between the endplate
//!   levels. The isthmus is the slab with the smallest section among those where the canal
//!   still reaches at least half as far to that side as at its widest (behind that, the
//!   bone beside its narrow edge is lamina); the axis (transverse) is the
//!   screw corridor through it, the line staying furthest from the pedicle walls (see
//!   `corridor_axis`); the entry is where the axis leaves the bone posteriorly, the length
//!   runs to the anterior cortex. Width and height: the narrowest bone chords across the
//!   axis (transverse, and cranio-caudal), averaged over 2 mm along it.
//! * **Facets**: boundary voxels of the vertebra behind the posterior wall whose ray along
//!   the outward normal (normal from the other-label voxels in the 5x5x5 box) reaches the
//!   adjacent vertebra within 3 mm through no other bone, at a voxel whose own normal faces
//!   back (within 60 deg of opposite); per side, the largest connected patch whose normals
//!   lie within 30 deg of the dominant normal. This keeps the joint-facing surface and drops
//!   the process tips and laminae that merely pass near the neighbour. The articular
//!   surface (centre, points, area) is the part of the patch where the neighbour faces back
//!   within 30 deg (not its rounded edge); its normal is that of the least-squares plane
//!   through the whole patch's voxel centres. Points pushed half a voxel out; the area sums
//!   `s^2 / max|n_i|` per boundary voxel (the density of boundary voxels on a plane of
//!   normal n). A patch where the two labels touch almost everywhere (no joint space in the
//!   label map, e.g. a segmentation that fused the joint) gets a warning: its orientation is
//!   that of the label boundary, not of the joint.
//! * **Posterior points**: spinous tip = most posterior midline bone (|x| < 1.5 voxels)
//!   along the vertebra's y axis, placed at the vertex of a parabola fitted to the dorsal
//!   profile within 2 mm of it (the mean of the extreme voxels where the profile is flat or
//!   the vertex falls outside it); base = mean of the midline bone within 8 mm behind the
//!   canal; lamina edges = its highest/lowest points; transverse tips = most lateral bone
//!   behind the wall along its x axis.
//! * **Trabecular HU**: mean CT within 10 mm (0.3 x depth) of the body axis, 3 mm inside
//!   both endplates and the posterior wall.
//! * **Canal section**: the canal label (when present) sampled on a grid of a quarter voxel in
//!   the vertebra's transverse plane through its origin (the pedicles' level) and 1 mm above
//!   and below: area, widest left-right extent (interpedicular) and midline depth (body
//!   wall to laminae), the means over the three planes. Not for the sacrum.
//! * **Discs**: centre halfway between the facing endplate centres, heights between the
//!   two rim planes along their mean normal at the centre and at the anterior/posterior
//!   ends of the lower endplate's midline.
//!
//! Validation against the phantom truth: `docs/segment/landmarks.md`.

mod extract;

use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;
use spinetwin_imaging::Volume;

/// Why landmarks could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LandmarkError {
    /// CT and labels are on different grids.
    #[error(
        "the CT ({0:?} voxels) and the label map ({1:?}) have different sizes; give the label map of this CT"
    )]
    GridMismatch([usize; 3], [usize; 3]),
    /// No vertebra labels.
    #[error("the label map holds no vertebra (VerSe labels 17-26); segment the CT first")]
    NoVertebrae,
}

/// Landmarks of every labelled vertebra and disc (method in the module documentation).
/// Vertebrae whose body cannot be fitted are left out with a scan-wide warning.
pub fn landmarks(ct: &Volume<f32>, labels: &Volume<u16>) -> Result<SpineLandmarks, LandmarkError> {
    extract::run(ct, labels)
}

/// A point (mm, LPS).
pub type P3 = [f64; 3];

/// The local anatomical frame of a vertebra: origin at the centre of the vertebral body,
/// `x` to the patient's left, `y` posterior, `z` along the body axis (cranial), orthonormal
/// and right-handed, all in LPS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Body centre (mm).
    pub origin: P3,
    /// Left.
    pub x: P3,
    /// Posterior.
    pub y: P3,
    /// Cranial.
    pub z: P3,
}

/// A vertebral endplate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endplate {
    /// Centre of the endplate surface (mm).
    pub centre: P3,
    /// Unit normal pointing OUT of the bone (cranial for a superior endplate, caudal for an
    /// inferior one).
    pub normal: P3,
    /// Outline of the endplate rim: a closed polygon (first point not repeated), counter-
    /// clockwise seen from outside the bone, starting at the anterior midline; points lie on
    /// the endplate surface.
    pub outline: Vec<P3>,
    /// Area enclosed by the outline (mm^2).
    pub area_mm2: f64,
}

/// A pedicle. Its axis is the screw corridor, the line through the pedicle furthest from
/// its walls ([`spinetwin_anatomy::pedicle::corridor_axis`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pedicle {
    /// Point on the posterior cortex where the pedicle axis leaves the bone (screw entry).
    pub entry: P3,
    /// Unit direction of the pedicle axis, from the entry towards the body.
    pub direction: P3,
    /// Length of the axis inside the bone (mm).
    pub axis_length_mm: f64,
    /// Smallest width of the bone across the axis, normal to it in the transverse plane
    /// (mm), which bounds the screw diameter.
    pub min_width_mm: f64,
    /// Smallest height across the isthmus (mm).
    pub min_height_mm: f64,
}

/// An articular (facet) surface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticularSurface {
    /// Centre of the surface (mm).
    pub centre: P3,
    /// Unit normal pointing out of the bone into the joint.
    pub normal: P3,
    /// Points sampled on the bone surface of the joint (about 1 mm apart).
    pub points: Vec<P3>,
    /// Outward unit normal at each point.
    pub normals: Vec<P3>,
    /// Surface area (mm^2).
    pub area_mm2: f64,
}

/// Where the posterior elements of two adjacent vertebrae face each other along the spine's
/// axis outside the facet joint, within 3 mm: typically the tip of the upper vertebra's
/// inferior articular process over the lamina (pars) of the lower one, the bony stop of the
/// joint in extension (Yang and King 1984, Spine 9:557). Any posterior bone facing the arch
/// below that closely counts (kissing spinous processes too), split into sides at the
/// vertebra's sagittal plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BonyStop {
    /// The upper vertebra's surface, facing down.
    pub upper: ArticularSurface,
    /// The lower vertebra's surface where the upper one's normals land, facing up.
    pub lower: ArticularSurface,
}

/// Left and right.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sides<T> {
    /// Patient's left.
    pub left: T,
    /// Patient's right.
    pub right: T,
}

/// Landmarks of one vertebra (or the sacrum: then no inferior endplate, inferior facets,
/// pedicles or spinous/transverse tips may be given).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VertebraLandmarks {
    /// Level.
    pub level: Level,
    /// Label value in the segmentation.
    pub label: u16,
    /// Local anatomical frame.
    pub frame: Frame,
    /// Centroid of the whole labelled bone (mm).
    pub centroid: P3,
    /// Bone volume (mm^3).
    pub volume_mm3: f64,
    /// Superior endplate.
    pub superior_endplate: Endplate,
    /// Inferior endplate (none for the sacrum).
    pub inferior_endplate: Option<Endplate>,
    /// Pedicles.
    pub pedicles: Option<Sides<Pedicle>>,
    /// Superior articular surfaces (joint with the vertebra above).
    pub superior_facets: Sides<Option<ArticularSurface>>,
    /// Inferior articular surfaces (joint with the vertebra below).
    pub inferior_facets: Sides<Option<ArticularSurface>>,
    /// Bony stops with the vertebra below, per side; none where the bones are more than
    /// 3 mm apart along their normals. Files written before this field read none.
    #[serde(default)]
    pub inferior_stops: Sides<Option<BonyStop>>,
    /// Tip of the spinous process.
    pub spinous_tip: Option<P3>,
    /// Root of the spinous process on the lamina, at the midline.
    pub spinous_base: Option<P3>,
    /// Tips of the transverse processes.
    pub transverse_tips: Sides<Option<P3>>,
    /// Lamina midline points at its cranial and caudal edges (ligamentum flavum insertions).
    pub lamina_superior: Option<P3>,
    /// Caudal edge of the lamina at the midline.
    pub lamina_inferior: Option<P3>,
    /// Mean HU of the cancellous core of the body (for bone material); NaN (`null` in
    /// JSON) where unknown: no cancellous core found, or no CT (a twin built from a label
    /// map alone).
    #[serde(deserialize_with = "nan_from_null")]
    pub trabecular_hu: f64,
    /// The bony canal's cross-section at this vertebra; none without a canal label (a
    /// reference segmentation of the bones alone) and for the sacrum. Files written before
    /// this field read none.
    #[serde(default)]
    pub canal: Option<CanalSection>,
    /// How sure the landmarking is, 0..1.
    pub confidence: f64,
    /// What could not be found or looked unusual.
    pub warnings: Vec<String>,
}

/// How a vertebra's warning that its two pedicle corridors are not mirror images begins
/// (one corridor probably misread: screws planned on it need a check on the images).
pub const PEDICLE_ASYMMETRY_WARNING: &str = "pedicle corridors not mirror images";

impl VertebraLandmarks {
    /// The warning that this vertebra's pedicle corridors are not mirror images, if given
    /// ([`PEDICLE_ASYMMETRY_WARNING`]).
    pub fn pedicle_asymmetry_warning(&self) -> Option<&str> {
        self.warnings
            .iter()
            .find(|w| w.starts_with(PEDICLE_ASYMMETRY_WARNING))
            .map(String::as_str)
    }
}

/// The bony spinal canal's cross-section at a vertebra, in its transverse plane (normal to
/// the frame's z axis) through the frame's origin: the pedicles' level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanalSection {
    /// Centroid of the section (mm).
    pub centre: P3,
    /// Area (mm^2).
    pub area_mm2: f64,
    /// Widest left-right extent (mm): the interpedicular distance.
    pub width_mm: f64,
    /// Antero-posterior extent at the midline (mm): posterior body wall to the laminae.
    pub depth_mm: f64,
}

/// Reads a number that serde_json wrote for NaN (`null`) back as NaN.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Landmarks of one disc.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscLandmarks {
    /// Vertebra above.
    pub upper: Level,
    /// Vertebra below.
    pub lower: Level,
    /// Centre of the disc (mm).
    pub centre: P3,
    /// Disc heights (mm) at the anterior edge, the centre and the posterior edge, measured
    /// between the two endplates along the mean endplate normal.
    pub height_anterior_mm: f64,
    /// Height at the centre.
    pub height_middle_mm: f64,
    /// Height at the posterior edge.
    pub height_posterior_mm: f64,
}

/// All landmarks of a scan, vertebrae cranial to caudal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpineLandmarks {
    /// Vertebrae, cranial first.
    pub vertebrae: Vec<VertebraLandmarks>,
    /// Discs, cranial first.
    pub discs: Vec<DiscLandmarks>,
    /// Scan-wide warnings.
    pub warnings: Vec<String>,
}

impl SpineLandmarks {
    /// The landmarks of `level`, if present.
    pub fn vertebra(&self, level: Level) -> Option<&VertebraLandmarks> {
        self.vertebrae.iter().find(|v| v.level == level)
    }
}
