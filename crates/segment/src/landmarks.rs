//! Anatomical landmarks of each labelled vertebra and disc: the local anatomical frame,
//! endplates with their outlines, pedicles, articular (facet) surfaces and the attachment
//! points of the spinal ligaments. The twin builder (`model`) needs nothing else from the
//! images besides these and the bone HU.
//!
//! All points in mm, LPS (x = patient left, y = posterior, z = superior); directions are
//! unit vectors in LPS.

use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;

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

/// A pedicle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pedicle {
    /// Point on the posterior cortex where the pedicle axis leaves the bone (screw entry).
    pub entry: P3,
    /// Unit direction of the pedicle axis, from the entry towards the body.
    pub direction: P3,
    /// Length of the axis inside the bone (mm).
    pub axis_length_mm: f64,
    /// Smallest width across the isthmus (mm).
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

/// Left and right.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Mean HU of the cancellous core of the body (for bone material).
    pub trabecular_hu: f64,
    /// How sure the landmarking is, 0..1.
    pub confidence: f64,
    /// What could not be found or looked unusual.
    pub warnings: Vec<String>,
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
