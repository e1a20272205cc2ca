//! Synthetic lumbar spine CT phantom with ground-truth labels, landmarks and angles.
//!
//! [`generate`] turns a [`PhantomSpec`] into a [`Phantom`]: a CT volume in HU, a label map
//! and a [`Truth`] record. The phantom is spinetwin's built-in default input and the ground
//! truth that segmentation, landmark and measurement tests are scored against.
//!
//! # Model
//!
//! Each vertebra is a rigid body in its own anatomical frame (origin at the body centre,
//! x left, y posterior, z superior), built from parametric solids evaluated per voxel:
//! a kidney-shaped body with a waist, concave endplates and posterior wall, a 0.8 mm
//! cortical shell and a cancellous core; oval pedicles converging medially; laminae;
//! a posterior-inferior spinous process; transverse processes; superior and inferior
//! articular processes whose facets lie on the two sides of one joint plane per facet joint,
//! 1 mm apart, turning from near-sagittal at L1-L2 to ~45 deg at L5-S1 (joints near
//! mid-disc height by default; `FacetJoints::Anatomical` lowers them to the lower vertebra's
//! upper endplate with long inferior processes, as on real spines); the triangular-oval
//! vertebral foramen; the sacrum with its alae (cut by the volume edge). Discs fill the
//! space between facing endplates (annulus 95 HU, nucleus 70 HU, 1 mm inside the endplate
//! outline). The canal contains the dural sac (10 HU) in epidural fat (-80 HU). Around the
//! spine: psoas, erector spinae and quadratus lumborum (50 HU), retroperitoneal and
//! subcutaneous fat (-100 HU), skin, abdominal soft tissue (40 HU) with unenhanced aorta and
//! IVC, bowel gas (-900 HU) and air (-1000 HU).
//!
//! Dimensions per level are rounded means after Panjabi MM et al., "Human lumbar vertebrae.
//! Quantitative three-dimensional anatomy", Spine 1992;17(3):299-306; disc heights after
//! Pooni JS et al., Surg Radiol Anat 1986;8:175-182 and Zhou SH et al., Eur Spine J
//! 2000;9:242-248 (details in the `morph` module). The L1-S1 lordosis is split between
//! the discs (L5-S1 30 %, L4-L5 22 %, L3-L4 14 %, L2-L3 10 %, L1-L2 8 %) and the wedged L5
//! (12 %) and L4 (4 %) bodies, so that about two thirds lie at L4-S1 (Bernhardt & Bridwell,
//! Spine 1989;14:717-721); the sacral slope is 5 + 0.6 x lordosis degrees. Scoliosis is one
//! left-convex lumbar curve, apex at L2-L3, end vertebrae L1 and L4, level sacrum, with the
//! apical bodies rotated towards the convexity (0.25 x Cobb at L2 and L3). The tips of the
//! articular processes are cut by planes in the neighbouring vertebra's frame so that facet
//! joints keep their 1 mm space and processes never touch the neighbour's pedicle or lamina
//! (verified for Cobb <= 30 deg over the whole lordosis range; at Cobb 60 deg with very flat or
//! very lordotic spines, bone of L3-L5 can touch).
//!
//! Imaging: at spacing >= 0.8 mm each voxel near a spine boundary takes its partial volume
//! along the boundary's normal, weighted by the voxel cube's projection on it (continuous in
//! the boundary's sub-voxel position; a regular 2x2x2 supersample where the normal is
//! unclear), then the image is blurred with a Gaussian point-spread function (sigma 0.6 mm), then Gaussian
//! noise of `noise_hu` is added (one ChaCha8 stream per slice seeded from the seed and the
//! slice index, so results are bit-identical regardless of thread scheduling). The label map
//! is the unblurred label at each voxel centre. Cortical bone is `900 + 350 * bmd_scale`
//! HU, body cancellous bone `220 * bmd_scale`, posterior cancellous bone
//! `340 * bmd_scale`, both with a fixed +-12 % trabecular texture (multiplicative, so mean
//! HU scales exactly with `bmd_scale`). Implants (`screws`: pedicle screws, heads and rods)
//! are written as 3071 HU metal before the point-spread function, their streak artefacts
//! after it (see the `implants` module), and the image is then clipped to -1024..=3071 HU;
//! the label map keeps the anatomy under them. Peak memory is about 6 bytes per voxel plus a few
//! slices (0.3 mm spacing over the default field is ~3 GB).
//!
//! The grid is axis-aligned LPS, ~220 x 220 mm around the spine and the cranio-caudal
//! extent of the levels plus ~10 mm.
//!
//! # Labels
//!
//! VerSe vertebra labels (T12 = 19, L1..L5 = 20..24, L6 = 25, S1 = 26), discs
//! `100 + label of the vertebra above`, spinal canal 200 (the whole content of the bony
//! canal: dural sac and epidural fat, continuous between levels). Discs just outside the
//! requested range are drawn (so the image has no gaps) but labelled 0.
//!
//! # truth.json schema (version 1)
//!
//! All positions are patient LPS mm, all angles degrees, lengths mm.
//!
//! * `schema_version`: 1
//! * `spec`: the [`PhantomSpec`] (`levels` as `{"levels": ["T12", ...]}`)
//! * `grid`: `dims`, `spacing_mm`, `origin_mm` (centre of voxel 0,0,0), `orientation` ("LPS");
//!   with `spec.slice_thickness_mm` the z spacing is the slice thickness
//! * `labels`: `[{label, name, kind}]`, kind = "vertebra" | "disc" | "canal"
//! * `tissue_hu`: nominal HU of each tissue (see [`TissueHu`])
//! * `vertebrae[]` (cranial to caudal): `level`, `label`, `body_centroid`, `frame`
//!   (`origin`, `x_axis`, `y_axis`, `z_axis`), `superior_endplate` / `inferior_endplate`
//!   (`centre`, outward unit `normal`; inferior is null for S1), `pedicle_left` /
//!   `pedicle_right` (the pedicle cylinder's design axis: `entry` where the axis leaves the
//!   posterior cortex, `direction` towards the body, `axis_length_mm` entry to the anterior
//!   cortex, `min_width_mm` the narrowest bone chord across the axis, `min_height_mm`; the
//!   screw corridor, which is what an image shows, comes from [`pedicle_corridors`] on
//!   demand), `facets` (`superior_left`,
//!   `superior_right`, `inferior_left`, `inferior_right`: centroids of the articular
//!   surfaces, the parts of the joint faces that face each other; inferior null for S1;
//!   `superior_normals`; `superior_angle_deg` to the sagittal plane), `spinous_tip` (most
//!   posterior point along the local y axis), `transverse_tip_left` / `_right` (most
//!   lateral points along the local x axis; null for S1), `body_height_anterior_mm`,
//!   `body_height_posterior_mm`, `endplate_width_mm`, `endplate_depth_mm`,
//!   `canal_width_mm`, `canal_depth_mm`
//! * `discs[]`: `upper`, `lower`, `label`, `centre`, `height_anterior_mm`,
//!   `height_middle_mm`, `height_posterior_mm` (between the endplate rim planes)
//! * `angles`: `segments[]` (`upper`, `lower`, `sagittal_deg` positive = lordotic, i.e.
//!   disc taller anteriorly; `coronal_deg` positive = disc taller on the patient's left),
//!   `lumbar_lordosis_l1_s1_deg` (L1 superior to S1 superior endplate, positive =
//!   lordosis), `sacral_slope_deg`, `coronal_cobb` (`angle_deg`, `upper_end`,
//!   `lower_end`: the largest coronal angle between a lumbar superior endplate and a lower
//!   lumbar inferior endplate). All angles are measured from the placed endplate normals,
//!   projected on the sagittal (y-z) or coronal (x-z) plane.

mod implants;
mod morph;
mod scene;
mod sdf;
mod spec;
mod spine;
mod truth;

#[cfg(test)]
mod tests;

pub use scene::TissueHu;
pub use spec::{FacetJoints, PhantomError, PhantomSpec};
pub use truth::{
    AngleTruth, CanalSectionTruth, CobbTruth, CorridorTruth, DiscTruth, EndplateTruth, FacetTruth,
    FrameTruth, GridTruth, LabelEntry, PedicleTruth, Point, SegmentAngle, Truth, VertebraTruth,
    TRUTH_SCHEMA_VERSION,
};

use spinetwin_imaging::Volume;

/// A generated phantom.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// CT volume in Hounsfield units.
    pub ct: Volume<f32>,
    /// Label map (see the crate documentation for the values).
    pub labels: Volume<u16>,
    /// Ground truth.
    pub truth: Truth,
}

/// Builds the phantom for `spec`. Deterministic: the same spec gives bit-identical volumes
/// and truth; the seed changes the noise only.
pub fn generate(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    spec.validate()?;
    let chain = spine::layout(spec);
    let scene = scene::Scene::new(chain, spec);
    let grid = scene
        .grid(spec.spacing_mm)
        .map_err(PhantomError::Geometry)?;
    // The screws follow the truth's pedicle axes.
    let metal = (!spec.screws.is_empty()).then(|| {
        let thin = truth::compute(&scene, &grid, spec);
        implants::metal_mask(&grid, &thin, &spec.screws)
    });
    let (ct, labels) = scene::render(&scene, &grid, spec, metal.as_deref());
    let (ct, labels) = match spec.slab_slices()? {
        1 => (ct, labels),
        n => scene::slabs(&ct, &labels, n),
    };
    let truth = truth::compute(&scene, labels.grid(), spec);
    Ok(Phantom { ct, labels, truth })
}

/// The pedicles' screw corridors of the phantom built from `spec` ([`CorridorTruth`]): the
/// truth for a pedicle axis read as the line furthest from the pedicle walls. Not in
/// [`Truth`] because it takes seconds per pedicle (in parallel over the pedicles).
pub fn pedicle_corridors(spec: &PhantomSpec) -> Result<Vec<CorridorTruth>, PhantomError> {
    spec.validate()?;
    let scene = scene::Scene::new(spine::layout(spec), spec);
    Ok(truth::corridors(&scene))
}
