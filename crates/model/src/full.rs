//! The full fidelity (issue 5, item 2b): the twin's vertebrae between the two potted ends
//! become deformable voxel FE models from the CT, inside the same solve as the discs,
//! ligaments and facet joints of the hybrid twin.
//!
//! Each deformable vertebra is the CT resampled onto a grid aligned with its anatomical
//! frame ([`crate::bone_fe`]) at a fraction of the element size (trilinear CT samples,
//! nearest-neighbour labels, [`FullOptions::subvoxels`] per element edge), meshed with one
//! 8-node hexahedron per block of samples, every element with the mean of its samples'
//! moduli (HU -> density -> modulus, so osteoporotic bone is softer because its HU is
//! lower; the thin cortex enters the elements it runs through) in a St Venant-Kirchhoff law (linear elasticity
//! at the small strains of bone, objective under the large rotations of the segment). The
//! rest of the twin is attached as in a lab specimen or an FE model with deformable bone:
//!
//! - the disc's endplate nodes are **tied** to the bone surface (node-to-surface penalty
//!   tie, [`spinetwin_fem::nl::Tie`]), so the endplate bends under the nucleus;
//! - each ligament fibre ends on a node at its insertion, tied to the bone surface (so it
//!   keeps its length and lever arm and its force spreads over a surface triangle);
//! - each articular (or bony-stop) surface moves with a small rigid patch of the bone nodes
//!   within [`FullOptions::patch_mm`] of it (a kinematic coupling, as Abaqus' `*COUPLING`),
//!   so the contact surfaces keep their CT shape while the process they sit on deforms
//!   with the rest of the vertebra;
//! - the follower load passes through a rigid patch of the body's nodes around its point
//!   (the guides of the lab's follower-load cable are screwed into the bodies).
//!
//! The top and the bottom vertebra stay rigid: the moment is applied to the top one and the
//! bottom one is held, as the potted ends of a specimen are. The rotation of a deformable
//! vertebra is the least-squares rigid motion of its body's nodes (Kabsch; the lab's markers
//! sit on the bodies), and every result of
//! the hybrid solve (rotation per segment, disc pressure, facet force) is read as before;
//! the bone stress per vertebra is added.
//!
//! A pedicle screw in a deformable vertebra ([`crate::twin::ScrewAnchor`]) is a rigid body
//! bonded to the bone nodes along its shaft (within the thread radius plus half an element),
//! and the rods are clamped to its head: the screw is bonded, as in FE studies of fixed
//! screws, with no loosening at the interface. The stress in the bone elements bonded to it
//! is reported ([`BoneStress::around_screws_p95_mpa`]). Any other implant clamped to a
//! deformable vertebra is refused with a message.
//!
//! Cement (vertebroplasty, [`Twin::deformable_bones_with_cement`]) replaces the cancellous
//! core around the body centre with PMMA elements ([`crate::bone_fe::BONE_CEMENT`]), placed
//! as in the isolated vertebra test. The bone under each endplate (the body's element layer
//! facing the disc) is reported on its own ([`BoneStress::superior_endplate_p95_mpa`]):
//! under a cage it is where subsidence starts. Against each element's compressive yield
//! strength (the harmonic mean over its CT samples of the law of the isolated implant
//! check, [`crate::bone_fe::yield_strength_mpa`]), the stress gives the subsidence indicator over
//! the layer's centre under the nucleus or the cage that replaces it
//! ([`BoneStress::superior_centre_ratio_p95`]) and the loosening indicator around the
//! screws ([`BoneStress::around_screws_ratio_p95`]), in situ rather than in an isolated
//! vertebra under the hybrid twin's implant loads.

use std::collections::HashMap;
use std::sync::Arc;

use nalgebra::{Matrix3, Rotation3, Vector3};
use serde::{Deserialize, Serialize};
use spinetwin_fem::continuum::StVenantKirchhoff;
use spinetwin_fem::nl::{self, BodyState, Dof, Load, Point, RigidBody, SolidBlock, Tie};
use spinetwin_fem::{ElementKind, LinearElastic, Mesh};
use spinetwin_imaging::Volume;

use crate::bone::{BoneMaterial, ASH_TO_APPARENT};
use crate::bone_fe::{
    local_label, place_cement, voxel_model, yield_strength_mpa, BoneElement, CementFill,
    VertebraGrid, VoxelModelOptions, BONE_CEMENT,
};
use crate::error::ModelError;
use crate::loadcase::LoadCase;
use crate::twin::{CaseResult, ModelIndex, Twin};

/// How the deformable vertebrae are built.
#[derive(Clone, Debug)]
pub struct FullOptions {
    /// Element size (mm): one hexahedron per block of the CT resampled onto the vertebra's
    /// frame.
    pub spacing_mm: f64,
    /// CT samples per element edge: the vertebra is resampled at `spacing_mm / subvoxels`
    /// and each element is a block of `subvoxels^3` samples, its label the block's majority
    /// and its modulus the mean of its samples' moduli (1: one sample at the element
    /// centre). 0 (the default) takes the element size over the CT's finest spacing,
    /// rounded, 1 to 6.
    pub subvoxels: usize,
    /// HU -> modulus.
    pub bone: BoneMaterial,
    /// Poisson's ratio of bone.
    pub bone_nu: f64,
    /// Radius (mm) of the rigid patches under the articular surfaces and the follower-load
    /// points.
    pub patch_mm: f64,
    /// Largest distance (mm) of a disc endplate node from the bone surface it is tied to:
    /// the discs are lofted between the landmark endplates, the bone surface is the
    /// staircase of the voxels.
    pub tie_tolerance_mm: f64,
    /// Largest distance (mm) of a ligament insertion (from the landmarks) from the bone
    /// surface it is tied to.
    pub insertion_tolerance_mm: f64,
    /// Penalty of the disc and ligament ties per slave point (N/mm). The engine's automatic
    /// penalty follows the stiffest element next to the tie, here cortical bone (about
    /// 5e7 N/mm at 3 mm), whose round-off alone (a few 1e-5 N) sat above the Newton force
    /// tolerance of small load increments; the ties only need to be stiff against what
    /// hangs on them: a disc endplate node carries about 10 N and a fibre up to a few
    /// hundred, so 1e5 N/mm leaves gaps of 1e-4 to 3e-3 mm.
    pub tie_penalty_n_per_mm: f64,
    /// Keep a cage's friction (the scenario's coefficient) where it presses on a deformable
    /// vertebra. Off by default: the cage is then frictionless at this fidelity and held in
    /// shear by its bars. With friction the L4-L5 TLIF of docs/validation/full_fidelity.md
    /// converged in flexion and extension at two and nine times the Newton iterations
    /// (99 against 50, 474 against 52), in lateral bending (204 and 241 iterations) and not
    /// in axial rotation (stopped after 1763 iterations).
    pub cage_friction: bool,
}

impl Default for FullOptions {
    fn default() -> Self {
        FullOptions {
            spacing_mm: 3.0,
            subvoxels: 0,
            bone: BoneMaterial::default(),
            bone_nu: 0.3,
            patch_mm: 4.0,
            tie_tolerance_mm: 4.0,
            insertion_tolerance_mm: 6.0,
            tie_penalty_n_per_mm: 1e5,
            cage_friction: false,
        }
    }
}

/// One deformable vertebra, meshed in patient coordinates.
#[derive(Clone, Debug)]
pub struct DeformableBone {
    /// Index of the vertebra in [`Twin::levels`].
    pub body: usize,
    /// Hexahedral mesh (patient LPS, mm).
    pub mesh: Mesh,
    /// Young's modulus per element (MPa).
    pub youngs: Vec<f64>,
    /// Poisson's ratio per element.
    pub poisson: Vec<f64>,
    /// Compressive yield strength per element (MPa; 0 for cement): the harmonic mean of the
    /// strengths of its CT samples, each from the density of its modulus
    /// ([`crate::bone_fe::yield_strength_mpa`]).
    pub strength_mpa: Vec<f64>,
    /// [`local_label::BODY`], [`local_label::POSTERIOR`] or [`local_label::CEMENT`] per
    /// element.
    pub element_label: Vec<u16>,
    /// Boundary faces (quadrilaterals, node indices into `mesh`).
    pub surface: Vec<[usize; 4]>,
    /// The vertebra's cranio-caudal axis (unit, LPS): the mesh's element faces are normal
    /// to it or to the other two frame axes.
    pub axis: [f64; 3],
    /// Volume of the cement elements in the body (mm^3; 0 without).
    pub cement_mm3: f64,
    /// Voxel blocks of the vertebra left out because they were not face-connected to its
    /// main piece (a label split by the segmentation loses that bone from the model).
    pub dropped_blocks: usize,
    /// Volume of posterior-element bone a decompression removed from the mesh (mm^3;
    /// [`crate::resection`]).
    pub resected_mm3: f64,
}

impl DeformableBone {
    /// Share of the vertebra's voxel blocks left out as not connected to its main piece
    /// ([`DeformableBone::dropped_blocks`] over all of them).
    pub fn dropped_fraction(&self) -> f64 {
        let kept = self.mesh.num_elements();
        self.dropped_blocks as f64 / (kept + self.dropped_blocks).max(1) as f64
    }
}

/// Bone stress of one deformable vertebra at one recorded load.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BoneStress {
    /// Vertebra.
    pub level: String,
    /// Median von Mises stress of the body's bone elements (MPa; cement excluded, so in a
    /// cemented body the bone around the cement).
    pub body_p50_mpa: f64,
    /// 95th percentile over the body's elements (MPa).
    pub body_p95_mpa: f64,
    /// 95th percentile over the posterior elements (MPa; `None` when the vertebra has
    /// none, e.g. a segmentation without its arch).
    pub posterior_p95_mpa: Option<f64>,
    /// 95th percentile over the bone elements bonded to a screw (MPa; `None` without
    /// screws; cement elements excluded): the bone-screw interface, a loosening indicator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around_screws_p95_mpa: Option<f64>,
    /// 95th percentile over the body's element layer under its superior endplate, facing
    /// the disc above (MPa; `None` when no disc is tied there): under a cage, where
    /// subsidence starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superior_endplate_p95_mpa: Option<f64>,
    /// The same under the inferior endplate, facing the disc below (MPa).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferior_endplate_p95_mpa: Option<f64>,
    /// 95th percentile over the cement elements (MPa; `None` without cement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cement_p95_mpa: Option<f64>,
    /// Von Mises stress over compressive yield strength (each element's strength from its
    /// CT samples, [`DeformableBone::strength_mpa`]), 95th
    /// percentile over the centre of the layer under the superior endplate: the elements
    /// under the nucleus, or under the cage that replaces it (the subsidence indicator;
    /// above 1 the bone there yields under this load). `None` without a nucleus or cage
    /// above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superior_centre_ratio_p95: Option<f64>,
    /// The same under the inferior endplate's centre (the nucleus or cage below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferior_centre_ratio_p95: Option<f64>,
    /// Von Mises stress over yield strength, 95th percentile over the bone bonded to a
    /// screw (the loosening indicator; `None` without screws).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around_screws_ratio_p95: Option<f64>,
    /// Largest element von Mises stress of the vertebra's bone (MPa); the rigid patches
    /// make local peaks at their edge, so the percentiles are the figures to read.
    pub max_mpa: f64,
}

/// The deformable vertebrae at the full load of a case, for output (VTU): one mesh with all
/// of them (patient LPS, mm) and per-node and per-element fields.
#[derive(Clone, Debug)]
pub struct BoneField {
    /// Hexahedra of every deformable vertebra, in [`FullIndex::bones`] order.
    pub mesh: Mesh,
    /// Displacement of each node (mm).
    pub displacement: Vec<[f64; 3]>,
    /// Cauchy stress of each element (MPa, Voigt `[xx, yy, zz, xy, xz, yz]`).
    pub stress: Vec<[f64; 6]>,
    /// Von Mises stress of each element (MPa).
    pub von_mises: Vec<f64>,
    /// Young's modulus of each element (MPa).
    pub youngs: Vec<f64>,
    /// Index of each element's vertebra in [`Twin::levels`].
    pub vertebra: Vec<f64>,
}

/// Where the deformable vertebrae sit in a full-fidelity model.
#[derive(Clone, Debug, Default)]
pub struct FullIndex {
    /// Per deformable vertebra: twin index, its level name, its node range and its elements
    /// with their local labels.
    pub bones: Vec<BoneIndex>,
    /// `(screw body, vertebra)`: the rigid bodies of screws in deformable vertebrae.
    pub screw_bodies: Vec<(usize, usize)>,
    /// Compressive yield strength (MPa) of every element of the model: bone elements from
    /// [`DeformableBone::strength_mpa`] (the law of the isolated implant check,
    /// [`crate::bone_fe::yield_strength_mpa`], over the element's CT samples), 0 for
    /// everything else (cement, discs).
    pub strength_mpa: Vec<f64>,
}

/// One deformable vertebra in the model.
#[derive(Clone, Debug)]
pub struct BoneIndex {
    /// Index in [`Twin::levels`] (and of its placeholder rigid body, held still).
    pub body: usize,
    /// Level name.
    pub level: String,
    /// Its nodes in the model.
    pub nodes: std::ops::Range<usize>,
    /// Elements and their local labels.
    pub elements: Vec<(usize, u16)>,
    /// Nodes of the body's elements (the vertebral body, without the posterior elements).
    pub body_nodes: Vec<usize>,
    /// Bone elements with a node bonded to a screw (the bone-screw interface).
    pub screw_elements: Vec<usize>,
    /// Body elements with a face on the bone surface tied to the disc above (index 0,
    /// superior endplate) and below (index 1, inferior endplate).
    pub endplate_elements: [Vec<usize>; 2],
    /// The part of each `endplate_elements` layer under the disc's nucleus, or under the
    /// cage or fusion mass that replaces it: the elements whose nearest disc endplate node
    /// (across the endplate, along the layer) belongs to a nucleus, cage or centre fusion
    /// element ([`crate::twin::DiscBlockKind::is_centre`]).
    pub centre_elements: [Vec<usize>; 2],
}

impl Twin {
    /// Meshes the vertebrae between the top and the bottom one as deformable voxel models
    /// from `ct` and `labels` (the CT and label map the twin was built from). Errors name
    /// the vertebra.
    pub fn deformable_bones(
        &self,
        ct: &Volume<f32>,
        labels: &Volume<u16>,
        options: &FullOptions,
    ) -> Result<Vec<DeformableBone>, ModelError> {
        self.deformable_bones_with_cement(ct, labels, options, &[])
    }

    /// As [`Twin::deformable_bones`], with the bodies of the `cement` levels filled to
    /// their fraction (0..0.9 of the body volume) with their cement around the body centre.
    /// A cemented level must be one of the deformable vertebrae (not the top or the bottom
    /// one), and cemented once.
    pub fn deformable_bones_with_cement(
        &self,
        ct: &Volume<f32>,
        labels: &Volume<u16>,
        options: &FullOptions,
        cement: &[CementFill],
    ) -> Result<Vec<DeformableBone>, ModelError> {
        options.bone.validate()?;
        let nb = self.levels.len();
        if nb < 3 {
            return Err(ModelError::InvalidInput(format!(
                "full fidelity: the twin has {nb} vertebrae; the top and bottom ones stay rigid \
                 (potted), so at least three are needed"
            )));
        }
        for (k, fill) in cement.iter().enumerate() {
            let (level, f) = (fill.level, fill.fraction);
            if cement[..k].iter().any(|c| c.level == level) {
                return Err(ModelError::InvalidInput(format!(
                    "full fidelity: {} is cemented twice; give one fill per vertebra",
                    level.name()
                )));
            }
            crate::bone_fe::check_cement(
                &fill.cement,
                &format!("full fidelity, {}", level.name()),
            )?;
            let Some(b) = self.levels.iter().position(|&l| l == level) else {
                return Err(ModelError::InvalidInput(format!(
                    "full fidelity: cement in {}, which is not in the twin",
                    level.name()
                )));
            };
            if b == 0 || b + 1 == nb {
                return Err(ModelError::InvalidInput(format!(
                    "full fidelity: {} is the {} vertebra of the twin, which stays rigid (the \
                     potted end of the specimen), so its cement cannot act; use a twin with a \
                     vertebra {} it, or the hybrid fidelity with the isolated vertebra check",
                    level.name(),
                    if b == 0 { "top" } else { "bottom" },
                    if b == 0 { "above" } else { "below" }
                )));
            }
            if !(f > 0.0 && f <= 0.9) {
                return Err(ModelError::InvalidInput(format!(
                    "full fidelity: the cement fill of {} must be more than 0 and at most 0.9 \
                     of the body (got {f})",
                    level.name()
                )));
            }
        }
        // Block-averaged moduli (integration of the CT over each element's volume: Taddei
        // et al. 2004, Med Eng Phys 26:61, integrate the CT numbers; Taddei et al. 2007, Med
        // Eng Phys 29:973, compare integrating them and the moduli): a 3 mm element sampled
        // at its centre alone misses the ~0.5 mm cortical shell and endplates unless the
        // sample happens to fall on them. The moduli are averaged (the Voigt mean, over the
        // block's samples of its label): exact for a shell running along the load, an
        // upper bound across it; the power law (E ~ rho^1.56) of an averaged density would
        // give even a shell along the load less stiffness than it has.
        let sub = match options.subvoxels {
            0 => {
                let finest = ct.grid().spacing.iter().copied().fold(f64::MAX, f64::min);
                (options.spacing_mm / finest).round().clamp(1.0, 6.0) as usize
            }
            n => n,
        };
        let fine = options.spacing_mm / sub as f64;
        let mut out = Vec::new();
        for b in 1..nb - 1 {
            let v = self.vertebra(b);
            let name = self.levels[b].name();
            // Name the vertebra, keeping the kind of error (and not repeating its prefix).
            let fail = |e: ModelError| match e {
                ModelError::InvalidGeometry(m) => {
                    ModelError::InvalidGeometry(format!("{name}: {m}"))
                }
                ModelError::InvalidInput(m) => ModelError::InvalidInput(format!("{name}: {m}")),
                other => other,
            };
            let mut grid = VertebraGrid::new(ct, labels, v, fine, 0.0, &[]).map_err(fail)?;
            let mine = cement.iter().find(|c| c.level == self.levels[b]);
            let fill = mine.map_or(0.0, |c| c.fraction);
            let cement_material = mine.map_or(BONE_CEMENT, |c| c.cement);
            place_cement(
                &mut grid.lab,
                &grid.body_voxels,
                grid.start,
                fine,
                fill,
                // Two elements from the surface as in the isolated vertebra test, one when
                // the elements are coarser than 2 mm: the cement stays inside the cortex
                // without emptying a coarse body's interior.
                sub * if options.spacing_mm > 2.0 { 1 } else { 2 },
            )
            .map_err(fail)?;
            // Bone a decompression removed: its posterior-element samples are not meshed.
            let cuts: Vec<_> = self
                .implants
                .resections
                .iter()
                .filter(|r| r.level == self.levels[b])
                .collect();
            let mut resected = 0usize;
            if !cuts.is_empty() {
                let [o, x, y, z] = grid.frame;
                for k in 0..grid.dims[2] {
                    for j in 0..grid.dims[1] {
                        for i in 0..grid.dims[0] {
                            if grid.lab.get(i, j, k) != local_label::POSTERIOR {
                                continue;
                            }
                            let c = grid.local([i, j, k]);
                            let p =
                                [0, 1, 2].map(|a| o[a] + c[0] * x[a] + c[1] * y[a] + c[2] * z[a]);
                            if cuts.iter().any(|r| r.contains(p)) {
                                grid.lab.set(i, j, k, 0);
                                resected += 1;
                            }
                        }
                    }
                }
            }
            // The modulus of every sample, averaged over each element by `voxel_model`
            // (the mean of its samples of the element's label).
            let mut moduli = grid.hu.clone();
            for m in moduli.data_mut() {
                *m = options.bone.modulus(*m as f64) as f32;
            }
            let meshed = |l: u16| {
                l == local_label::BODY || l == local_label::POSTERIOR || l == local_label::CEMENT
            };
            let model = voxel_model(
                &moduli,
                &grid.lab,
                meshed,
                |l, e| match l {
                    local_label::CEMENT => cement_material,
                    _ => crate::bone::Isotropic {
                        e_mpa: e,
                        nu: options.bone_nu,
                    },
                },
                &VoxelModelOptions {
                    step: sub,
                    element: BoneElement::Hex8,
                },
            )
            .map_err(fail)?;
            // Strength: the harmonic mean of the samples' yield strengths (each from the
            // density of its modulus), which the weakest samples dominate. Where a cortex
            // runs through an element the mean modulus takes its stiffness, but in an
            // endplate loaded across it the cancellous bone yields first: the cortex must
            // not lend the element its strength. Same grid, labels and blocks as `model`,
            // so the same elements in the same order.
            let mut inverse = moduli.clone();
            for v in inverse.data_mut() {
                let strength =
                    yield_strength_mpa(ASH_TO_APPARENT * options.bone.law.density(*v as f64));
                *v = (1.0 / strength.max(1e-9)) as f32;
            }
            let weakest = voxel_model(&inverse, &grid.lab, meshed, |_, _| BONE_CEMENT, &{
                VoxelModelOptions {
                    step: sub,
                    element: BoneElement::Hex8,
                }
            })
            .map_err(fail)?;
            if weakest.element_label != model.element_label {
                return Err(fail(ModelError::InvalidGeometry(
                    "internal error: the strength blocks differ from the mesh's".into(),
                )));
            }
            let strength_mpa: Vec<f64> = weakest
                .element_value
                .iter()
                .zip(&model.element_label)
                .map(|(&inv, &l)| {
                    if l == local_label::CEMENT {
                        0.0
                    } else {
                        1.0 / inv
                    }
                })
                .collect();
            let [o, x, y, z] = grid.frame;
            let mut mesh = model.mesh.clone();
            mesh.map_nodes(|p| [0, 1, 2].map(|a| o[a] + p[0] * x[a] + p[1] * y[a] + p[2] * z[a]));
            let surface = boundary_quads(&mesh);
            let cement_elements = model
                .element_label
                .iter()
                .filter(|&&l| l == local_label::CEMENT)
                .count();
            out.push(DeformableBone {
                body: b,
                youngs: model.material.youngs.clone(),
                poisson: model.material.poisson.clone(),
                strength_mpa,
                element_label: model.element_label.clone(),
                mesh,
                surface,
                axis: z,
                cement_mm3: cement_elements as f64 * options.spacing_mm.powi(3),
                dropped_blocks: model.dropped_blocks,
                resected_mm3: resected as f64 * fine.powi(3),
            });
        }
        Ok(out)
    }

    /// The FE model of `case` with `bones` deformable (from [`Twin::deformable_bones`]):
    /// the hybrid model with each of those vertebrae's rigid body replaced by its mesh (see
    /// the module documentation). A cage in contact with an endplate of a deformable
    /// vertebra ([`crate::twin::BlockInterface::Contact`]) presses on the disc's endplate
    /// nodes there, which are tied to the bone surface like the rest of the disc (no rigid
    /// patch: the bone under the cage takes the contact pressure where it acts), without
    /// friction, and its holding bars end on endplate nodes under it.
    pub fn fem_model_full(
        &self,
        case: &LoadCase,
        bones: &[DeformableBone],
        options: &FullOptions,
    ) -> Result<(nl::Model, ModelIndex, FullIndex), ModelError> {
        let bonded: Vec<usize> = bones.iter().map(|b| b.body).collect();
        let (mut model, mut index) = self.fem_model_bonding(case, &bonded)?;
        let deformable: HashMap<usize, usize> =
            bones.iter().enumerate().map(|(k, b)| (b.body, k)).collect();
        let nb = self.levels.len();
        if deformable.len() != bones.len() {
            return Err(ModelError::InvalidInput(
                "full fidelity: a vertebra is given more than one mesh".into(),
            ));
        }
        if let Some(b) = bones.iter().find(|b| b.body == 0 || b.body + 1 >= nb) {
            return Err(ModelError::InvalidInput(format!(
                "full fidelity: {} is the top or the bottom vertebra, which stay rigid (the \
                 moment acts on the top one, the bottom one is held); mesh it with \
                 Twin::deformable_bones, which leaves them out",
                self.levels.get(b.body).map_or("?", |l| l.name())
            )));
        }
        // A beam end on a deformable vertebra must sit on a screw head of that vertebra.
        let screw_of = |body: usize, at: [f64; 3]| {
            self.implants
                .screws
                .iter()
                .position(|s| s.body == body && dist2(s.head, at) < 1e-6)
        };
        for beam in &model.beams {
            for end in [&beam.a, &beam.b] {
                if deformable.contains_key(&end.body) && screw_of(end.body, end.at).is_none() {
                    return Err(ModelError::InvalidInput(format!(
                        "full fidelity: implant '{}' is clamped to {}, a deformable vertebra, \
                         but not at a screw head of it; only screws anchor implants in \
                         deformable bone (solve this model with the hybrid fidelity)",
                        beam.name,
                        self.levels[end.body].name()
                    )));
                }
            }
        }
        // Append the bone meshes.
        let elem_before = model.mesh.num_elements();
        let mut full = FullIndex::default();
        let mut youngs = vec![1.0; elem_before];
        let mut poisson = vec![0.3; elem_before];
        let mut strength = vec![0.0; elem_before];
        let mut bone_elements = Vec::new();
        for b in bones {
            let node0 = model.mesh.nodes.len();
            model.mesh.nodes.extend_from_slice(&b.mesh.nodes);
            let mut elements = Vec::new();
            for e in 0..b.mesh.num_elements() {
                let nodes: Vec<usize> = b.mesh.element_nodes(e).iter().map(|n| n + node0).collect();
                let ge = model.mesh.add_element(b.mesh.kinds[e], &nodes);
                youngs.push(b.youngs[e]);
                poisson.push(b.poisson[e]);
                let l = b.element_label[e];
                strength.push(if l == local_label::BODY || l == local_label::POSTERIOR {
                    b.strength_mpa[e]
                } else {
                    0.0
                });
                elements.push((ge, b.element_label[e]));
                bone_elements.push(ge);
            }
            let mut body_nodes: Vec<usize> = elements
                .iter()
                .filter(|(_, l)| *l == local_label::BODY || *l == local_label::CEMENT)
                .flat_map(|(e, _)| model.mesh.element_nodes(*e).to_vec())
                .collect();
            body_nodes.sort_unstable();
            body_nodes.dedup();
            if body_nodes.len() < 4 {
                return Err(ModelError::InvalidGeometry(format!(
                    "full fidelity: {} has no vertebral body elements; check the segmentation",
                    self.levels[b.body].name()
                )));
            }
            full.bones.push(BoneIndex {
                screw_elements: Vec::new(),
                endplate_elements: [Vec::new(), Vec::new()],
                centre_elements: [Vec::new(), Vec::new()],
                body_nodes,
                body: b.body,
                level: self.levels[b.body].name().to_string(),
                nodes: node0..model.mesh.nodes.len(),
                elements,
            });
        }
        if !bone_elements.is_empty() {
            model.solids.push(SolidBlock {
                name: "bone".into(),
                elements: bone_elements,
                material: Arc::new(StVenantKirchhoff {
                    linear: LinearElastic::per_element(youngs, poisson)?,
                }),
            });
        }
        let node_of = |k: usize, n: usize| full.bones[k].nodes.start + n;
        // Discs: endplate nodes tied to the bone surface instead of the rigid body.
        let mut ties = Vec::new();
        // (bone, zone, its layer, the layer's centre; local elements): filled in once `full`
        // is no longer borrowed.
        let mut endplates = Vec::new();
        // Each disc's nodes are one run, the discs in order, before any other node.
        let mut disc_node0 = 0;
        for (i, d) in index.discs.iter().enumerate() {
            // The disc's centre: its nucleus, or the cage or fusion mass that replaced it (a
            // cage in contact moves on copies of the disc's nodes: its face is read on the
            // disc's own nodes, those the cage presses on).
            let node0 = disc_node0;
            let dm = &self.discs[i].mesh.mesh;
            disc_node0 += dm.num_nodes();
            let mut centre_nodes: std::collections::HashSet<usize> = d
                .nucleus
                .iter()
                .flat_map(|&e| model.mesh.element_nodes(e).to_vec())
                .collect();
            for e in self
                .implants
                .disc_block_elements(i, crate::twin::DiscBlockKind::is_centre)
            {
                centre_nodes.extend(dm.element_nodes(e).iter().map(|n| n + node0));
            }
            // `zone`: the vertebra's endplate the disc side faces (0 superior, 1 inferior).
            for (body, nodes, side, zone) in [
                (d.upper, &d.upper_nodes, "upper", 1),
                (d.upper + 1, &d.lower_nodes, "lower", 0),
            ] {
                let Some(&k) = deformable.get(&body) else {
                    continue;
                };
                model.bodies[body].tied_nodes.retain(|n| !nodes.contains(n));
                let near = 3.0 * options.tie_tolerance_mm;
                let pts: Vec<[f64; 3]> = nodes.iter().map(|&n| model.mesh.nodes[n]).collect();
                let bm = &bones[k].mesh;
                let mut master = Vec::new();
                for q in &bones[k].surface {
                    let c = centroid(q.iter().map(|&n| bm.nodes[n]));
                    if pts.iter().any(|&p| dist2(p, c) <= near * near) {
                        let p = q.map(|n| Point::Node(node_of(k, n)));
                        master.push([p[0], p[1], p[2]]);
                        master.push([p[0], p[2], p[3]]);
                    }
                }
                let layer = endplate_layer(&bones[k], &pts, options.tie_tolerance_mm);
                let is_centre: Vec<bool> = nodes.iter().map(|n| centre_nodes.contains(n)).collect();
                let centre = layer_centre(&bones[k], &layer, &pts, &is_centre);
                endplates.push((k, zone, layer, centre));
                ties.push(Tie {
                    name: format!(
                        "disc {}-{} {side} endplate",
                        self.levels[d.upper].name(),
                        self.levels[d.upper + 1].name()
                    ),
                    slave: nodes.iter().map(|&n| Point::Node(n)).collect(),
                    slave_triangles: Vec::new(),
                    master,
                    tolerance: options.tie_tolerance_mm,
                    penalty: Some(options.tie_penalty_n_per_mm),
                });
            }
        }
        self.cages_on_bone(&mut model, &mut index, &deformable, options.cage_friction)?;
        // Rigid patches: an extra body tied to the bone nodes within `patch_mm` of `points`
        // (a node already in a patch stays with the first).
        let mut in_patch = vec![false; model.mesh.nodes.len()];
        // Screws: a rigid body bonded to the bone nodes along the shaft (within the thread
        // radius plus half an element, so that a coarse mesh still has nodes there), carrying
        // the beam ends at its head.
        let mut screw_body: HashMap<usize, usize> = HashMap::new();
        let mut screw_nodes: Vec<Vec<usize>> = vec![Vec::new(); bones.len()];
        let mut screw_pairs = Vec::new();
        for bi in 0..model.beams.len() {
            for which in 0..2 {
                let end = if which == 0 {
                    model.beams[bi].a
                } else {
                    model.beams[bi].b
                };
                let Some(&k) = deformable.get(&end.body) else {
                    continue;
                };
                let si = screw_of(end.body, end.at).expect("checked above");
                let aux = match screw_body.get(&si) {
                    Some(&aux) => aux,
                    None => {
                        let sc = &self.implants.screws[si];
                        let r = sc.radius_mm + 0.5 * options.spacing_mm;
                        let tied: Vec<usize> = bones[k]
                            .mesh
                            .nodes
                            .iter()
                            .enumerate()
                            .filter(|(_, q)| segment_dist2(**q, sc.entry, sc.tip) <= r * r)
                            .map(|(n, _)| node_of(k, n))
                            .filter(|&n| !in_patch[n])
                            .collect();
                        if tied.len() < 4 {
                            return Err(ModelError::InvalidGeometry(format!(
                                "full fidelity: {}: fewer than four bone nodes along the screw \
                                 (entry to tip within {r:.1} mm); the screw misses the bone of \
                                 {}: check the screw trajectory or use smaller elements",
                                sc.name,
                                self.levels[sc.body].name()
                            )));
                        }
                        for &n in &tied {
                            in_patch[n] = true;
                        }
                        screw_nodes[k].extend(&tied);
                        model.bodies.push(RigidBody {
                            name: sc.name.clone(),
                            reference: sc.head,
                            tied_nodes: tied,
                        });
                        let aux = model.bodies.len() - 1;
                        screw_body.insert(si, aux);
                        screw_pairs.push((aux, sc.body));
                        aux
                    }
                };
                let b = &mut model.beams[bi];
                if which == 0 {
                    b.a.body = aux;
                } else {
                    b.b.body = aux;
                }
            }
        }
        let mut patch = |model: &mut nl::Model, k: usize, name: String, points: &[[f64; 3]]| {
            let r2 = options.patch_mm * options.patch_mm;
            let tied: Vec<usize> = bones[k]
                .mesh
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, q)| points.iter().any(|&p| dist2(**q, p) <= r2))
                .map(|(n, _)| node_of(k, n))
                .filter(|&n| !in_patch[n])
                .collect();
            if tied.len() < 3 {
                return Err(ModelError::InvalidGeometry(format!(
                    "full fidelity: {name}: fewer than three free bone nodes of {} within {} mm \
                     (nodes already in another patch or on a screw are taken); the landmark \
                     lies off the bone (check the segmentation) or the element size is too \
                     coarse (--bone-element-mm)",
                    self.levels[bones[k].body].name(),
                    options.patch_mm
                )));
            }
            for &n in &tied {
                in_patch[n] = true;
            }
            tracing::debug!("rigid patch {name}: {} bone nodes", tied.len());
            model.bodies.push(RigidBody {
                name,
                reference: centroid(points.iter().copied()),
                tied_nodes: tied,
            });
            Ok(model.bodies.len() - 1)
        };
        // Facet and bony-stop surfaces.
        for c in 0..model.contacts.len() {
            let mut slave_body = None;
            let mut master_body = None;
            if let Some(Point::Body { body, .. }) = model.contacts[c].slave.first() {
                slave_body = Some(*body);
            }
            if let Some([Point::Body { body, .. }, ..]) = model.contacts[c].master.first() {
                master_body = Some(*body);
            }
            if let Some(&k) = slave_body.and_then(|b| deformable.get(&b)) {
                let pts: Vec<[f64; 3]> = model.contacts[c]
                    .slave
                    .iter()
                    .map(|p| point_at(&model.mesh, p))
                    .collect();
                let name = format!("{} (slave patch)", model.contacts[c].name);
                let aux = patch(&mut model, k, name, &pts)?;
                for p in &mut model.contacts[c].slave {
                    rebody(p, slave_body.unwrap_or(usize::MAX), aux);
                }
            }
            if let Some(&k) = master_body.and_then(|b| deformable.get(&b)) {
                let pts: Vec<[f64; 3]> = model.contacts[c]
                    .master
                    .iter()
                    .flat_map(|t| t.iter().map(|p| point_at(&model.mesh, p)))
                    .collect();
                let name = format!("{} (master patch)", model.contacts[c].name);
                let aux = patch(&mut model, k, name, &pts)?;
                for t in &mut model.contacts[c].master {
                    for p in t.iter_mut() {
                        rebody(p, master_body.unwrap_or(usize::MAX), aux);
                    }
                }
            }
        }
        // Follower-load points.
        let mut follower_patch: HashMap<usize, usize> = HashMap::new();
        for si in 0..model.steps.len() {
            for li in 0..model.steps[si].loads.len() {
                let Load::FollowerPair { a, b, .. } = &model.steps[si].loads[li] else {
                    continue;
                };
                let (mut a, mut b) = (*a, *b);
                for p in [&mut a, &mut b] {
                    let Point::Body { body, at } = *p else {
                        continue;
                    };
                    let Some(&k) = deformable.get(&body) else {
                        continue;
                    };
                    let aux = match follower_patch.get(&body) {
                        Some(&aux) => aux,
                        None => {
                            let name = format!("{} follower-load guide", self.levels[body].name());
                            let aux = patch(&mut model, k, name, &[at])?;
                            follower_patch.insert(body, aux);
                            aux
                        }
                    };
                    *p = Point::Body { body: aux, at };
                }
                if let Load::FollowerPair { a: pa, b: pb, .. } = &mut model.steps[si].loads[li] {
                    *pa = a;
                    *pb = b;
                }
            }
        }
        // Ligament fibres: each end on the vertebra becomes a node at the insertion, tied to
        // the bone surface (node-to-surface, with its offset as a rigid arm), so the fibre
        // keeps its geometry and its force spreads over a surface triangle.
        let mut insertions: Vec<Vec<usize>> = vec![Vec::new(); bones.len()];
        for s in &mut model.springs {
            for p in [&mut s.a, &mut s.b] {
                if let Point::Body { body, at } = *p {
                    if let Some(&k) = deformable.get(&body) {
                        model.mesh.nodes.push(at);
                        let n = model.mesh.nodes.len() - 1;
                        insertions[k].push(n);
                        *p = Point::Node(n);
                    }
                }
            }
        }
        for (k, nodes) in insertions.into_iter().enumerate() {
            if nodes.is_empty() {
                continue;
            }
            ties.push(Tie {
                name: format!("{} ligament insertions", self.levels[bones[k].body].name()),
                slave: nodes.into_iter().map(Point::Node).collect(),
                slave_triangles: Vec::new(),
                master: surface_triangles(&bones[k].surface, |n| node_of(k, n)),
                tolerance: options.insertion_tolerance_mm,
                penalty: Some(options.tie_penalty_n_per_mm),
            });
        }
        // The deformable vertebrae's own rigid bodies now carry nothing: hold them still so
        // that the system stays regular (they are placeholders that keep the body indices).
        for step in &mut model.steps {
            for b in bones {
                for k in 0..6 {
                    step.prescribed.push((Dof::Body { body: b.body, k }, 0.0));
                }
            }
        }
        model.ties.extend(ties);
        // Nothing may be left on a held placeholder body.
        let on_placeholder =
            |p: &Point| matches!(p, Point::Body { body, .. } if deformable.contains_key(body));
        let left = model
            .springs
            .iter()
            .flat_map(|s| [&s.a, &s.b])
            .chain(
                model
                    .contacts
                    .iter()
                    .flat_map(|c| c.slave.iter().chain(c.master.iter().flatten())),
            )
            .chain(
                model
                    .ties
                    .iter()
                    .flat_map(|t| t.slave.iter().chain(t.master.iter().flatten())),
            )
            .chain(model.steps.iter().flat_map(|s| {
                s.loads.iter().flat_map(|l| match l {
                    Load::FollowerPair { a, b, .. } => vec![a, b],
                    _ => Vec::new(),
                })
            }))
            .any(on_placeholder)
            || model
                .beams
                .iter()
                .any(|b| deformable.contains_key(&b.a.body) || deformable.contains_key(&b.b.body))
            || bones
                .iter()
                .any(|b| !model.bodies[b.body].tied_nodes.is_empty());
        if left {
            return Err(ModelError::InvalidInput(
                "full fidelity: part of the model (a spring, contact, load, beam or tied node) \
                 still hangs on a deformable vertebra's rigid body (internal error: the \
                 model has a kind of attachment this fidelity does not convert yet)"
                    .into(),
            ));
        }
        full.screw_bodies = screw_pairs;
        for (k, zone, layer, centre) in endplates {
            let b = &mut full.bones[k];
            b.endplate_elements[zone] = layer.into_iter().map(|e| b.elements[e].0).collect();
            b.centre_elements[zone] = centre.into_iter().map(|e| b.elements[e].0).collect();
        }
        strength.resize(model.mesh.num_elements(), 0.0);
        full.strength_mpa = strength;
        for (k, nodes) in screw_nodes.into_iter().enumerate() {
            if nodes.is_empty() {
                continue;
            }
            let set: std::collections::HashSet<usize> = nodes.into_iter().collect();
            let b = &mut full.bones[k];
            b.screw_elements = b
                .elements
                .iter()
                .filter(|&&(_, l)| l != local_label::CEMENT)
                .map(|&(e, _)| e)
                .filter(|&e| model.mesh.element_nodes(e).iter().any(|n| set.contains(n)))
                .collect();
        }
        Ok((model, index, full))
    }

    /// Rebuilds the contact of each cage with a deformable vertebra's endplate without its
    /// placeholder body. The roles swap: the disc's own endplate nodes on that side (tied
    /// to the bone surface) are the slave points, each with its share of the endplate's
    /// faces, and the cage's faces there the master, on the cage's rigid body (a rigid
    /// master keeps the smoothed surface exact; a master of tied nodes that the bone
    /// deforms stalled Newton at about 1e-2 N), frictionless unless `friction` (the bars
    /// hold the cage in shear, see below). Each holding bar's lower end moves onto the
    /// endplate node under the cage nearest its anchor, the bar keeping its direction and
    /// rest length (`ModelIndex::block_holds` says which springs they are).
    /// `index.block_contacts` is updated to the new slave points.
    fn cages_on_bone(
        &self,
        model: &mut nl::Model,
        index: &mut ModelIndex,
        deformable: &HashMap<usize, usize>,
        friction: bool,
    ) -> Result<(), ModelError> {
        use crate::twin::BlockInterface;
        // Each disc's nodes are one run, the discs in order, before any other node.
        let node0: Vec<usize> = self
            .discs
            .iter()
            .scan(0, |n, d| {
                let first = *n;
                *n += d.mesh.mesh.num_nodes();
                Some(first)
            })
            .collect();
        let contact_blocks = self
            .implants
            .disc_blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b.interface, BlockInterface::Contact { .. }));
        for (bi, b) in contact_blocks {
            let d = &self.discs[b.disc];
            let m = &d.mesh.mesh;
            let n0 = node0[b.disc];
            for k in 0..index.block_contacts.len() {
                let (block, upper, pair_index) = {
                    let bc = &index.block_contacts[k];
                    (bc.block, bc.upper, bc.pair)
                };
                if block != bi {
                    continue;
                }
                let (body, side) = if upper {
                    (d.upper, &d.mesh.upper_nodes)
                } else {
                    (d.upper + 1, &d.mesh.lower_nodes)
                };
                if !deformable.contains_key(&body) {
                    continue;
                }
                let pair = &model.contacts[pair_index];
                let Some(&Point::Body { body: cage, .. }) = pair.slave.first() else {
                    return Err(ModelError::InvalidInput(format!(
                        "full fidelity: {}: the cage's contact is not on its body (internal error)",
                        b.name
                    )));
                };
                let on: std::collections::HashSet<usize> = side.iter().copied().collect();
                // Slave: every endplate node with its share of the endplate's faces.
                let mut area: std::collections::BTreeMap<usize, f64> = Default::default();
                for (_, _, fnodes) in crate::twin::faces_on(m, 0..m.num_elements(), &on) {
                    let p: Vec<Vector3<f64>> =
                        fnodes.iter().map(|&n| Vector3::from(m.nodes[n])).collect();
                    let mut a = 0.0;
                    for j in 1..p.len() - 1 {
                        a += 0.5 * (p[j] - p[0]).cross(&(p[j + 1] - p[0])).norm();
                    }
                    for n in &fnodes {
                        *area.entry(*n).or_insert(0.0) += a / fnodes.len() as f64;
                    }
                }
                // Master: the cage's faces on this endplate, normals out of the cage.
                let mut master = Vec::new();
                let mut under = std::collections::BTreeSet::new();
                for (_, centre, fnodes) in crate::twin::faces_on(m, b.elements.iter().copied(), &on)
                {
                    let p: Vec<Vector3<f64>> =
                        fnodes.iter().map(|&n| Vector3::from(m.nodes[n])).collect();
                    let fc = p.iter().sum::<Vector3<f64>>() / p.len() as f64;
                    for j in 1..p.len() - 1 {
                        let nrm = (p[j] - p[0]).cross(&(p[j + 1] - p[0]));
                        let tri = if nrm.dot(&(fc - centre)) >= 0.0 {
                            [fnodes[0], fnodes[j], fnodes[j + 1]]
                        } else {
                            [fnodes[0], fnodes[j + 1], fnodes[j]]
                        };
                        master.push(tri.map(|n| Point::Body {
                            body: cage,
                            at: m.nodes[n],
                        }));
                    }
                    under.extend(fnodes.iter().copied());
                }
                let nodes: Vec<usize> = area.keys().copied().collect();
                let pair = &mut model.contacts[pair_index];
                // Frictionless unless asked for: with friction on the deformable endplate's
                // nodes Newton needs two to nine times the iterations in flexion and
                // extension and did not converge in axial rotation (it had chattered between
                // stick and slip, stalled at 9 % of the moment, before the cage's stick
                // stiffness was lowered to a tenth of its normal one). The holding bars (the
                // teeth) keep the cage from sliding off.
                if !friction {
                    pair.friction = 0.0;
                }
                pair.slave = nodes.iter().map(|&n| Point::Node(n0 + n)).collect();
                pair.slave_area = area.values().copied().collect();
                pair.master = master;
                index.block_contacts[k].nodes = nodes;
                if upper {
                    continue;
                }
                // The holds: from the cage to the endplate node under it nearest each
                // anchor (three different nodes for the three anchors).
                let under: Vec<usize> = under.into_iter().map(|n| n + n0).collect();
                let hold = index
                    .block_holds
                    .iter()
                    .find(|&&(blk, _)| blk == bi)
                    .map(|&(_, first)| first)
                    .ok_or_else(|| {
                        ModelError::InvalidInput(format!(
                            "full fidelity: {}: its holding bars are missing (internal error)",
                            b.name
                        ))
                    })?;
                let mut anchors: Vec<([u64; 3], usize)> = Vec::new();
                for s in &mut model.springs[hold..hold + 6] {
                    let (Point::Body { body: c, at: from }, Point::Body { body: vb, at: to }) =
                        (s.a, s.b)
                    else {
                        return Err(ModelError::InvalidInput(format!(
                            "full fidelity: {}: unexpected holding bar (internal error)",
                            b.name
                        )));
                    };
                    if vb != body || c != cage {
                        return Err(ModelError::InvalidInput(format!(
                            "full fidelity: {}: holding bar not between the cage and the \
                             vertebra below (internal error)",
                            b.name
                        )));
                    }
                    let key = from.map(f64::to_bits);
                    let n = match anchors.iter().find(|(k, _)| *k == key) {
                        Some(&(_, n)) => n,
                        None => {
                            let taken: Vec<usize> = anchors.iter().map(|a| a.1).collect();
                            let n = under
                                .iter()
                                .copied()
                                .filter(|n| !taken.contains(n))
                                .min_by(|&p, &q| {
                                    dist2(model.mesh.nodes[p], from)
                                        .total_cmp(&dist2(model.mesh.nodes[q], from))
                                })
                                .ok_or_else(|| {
                                    ModelError::InvalidGeometry(format!(
                                        "full fidelity: {}: fewer than three endplate nodes \
                                         under the cage to hold it by",
                                        b.name
                                    ))
                                })?;
                            anchors.push((key, n));
                            n
                        }
                    };
                    let xn = model.mesh.nodes[n];
                    s.a = Point::Body {
                        body: cage,
                        at: std::array::from_fn(|j| xn[j] - (to[j] - from[j])),
                    };
                    s.b = Point::Node(n);
                }
            }
        }
        Ok(())
    }

    /// Solves one load case at the full fidelity and reads the results in anatomical terms:
    /// the rotation of each deformable vertebra is the best-fit rigid motion of its nodes,
    /// and [`crate::twin::Sample::bone_stress`] gives its stress.
    pub fn simulate_full(
        &self,
        case: &LoadCase,
        bones: &[DeformableBone],
        full_options: &FullOptions,
        options: &nl::SolveOptions,
    ) -> Result<CaseResult, ModelError> {
        let t0 = std::time::Instant::now();
        let (model, index, full) = self.fem_model_full(case, bones, full_options)?;
        let mut result = nl::solve(&model, options)?;
        for sr in &mut result.steps {
            let states = sr
                .state
                .iter_mut()
                .chain(sr.records.iter_mut().map(|(_, s)| s));
            for state in states {
                for bi in &full.bones {
                    state.bodies[bi.body] = self.fitted_motion(&model, state, bi);
                }
            }
        }
        let stresses: Vec<(usize, Option<f64>, Vec<BoneStress>)> = index
            .sample_steps
            .iter()
            .filter_map(|&(step, at, _)| {
                let sr = result.steps.get(step)?;
                let state = match at {
                    None => sr.state.as_ref()?,
                    Some(f) => &sr.records.iter().find(|(g, _)| (g - f).abs() < 1e-9)?.1,
                };
                Some((step, at, bone_stress(&full, state)))
            })
            .collect();
        let field = result
            .steps
            .last()
            .and_then(|sr| sr.state.as_ref())
            .filter(|_| result.converged)
            .map(|state| bone_field(&full, bones, state));
        let mut out = self.read_results(case, &model, &index, result, t0.elapsed().as_secs_f64());
        out.bone_field = field;
        // Samples were kept in `sample_steps` order, skipping the states that are missing.
        if out.converged {
            for (sample, (_, _, s)) in out.samples.iter_mut().zip(stresses) {
                sample.bone_stress = s;
            }
        }
        // Loads of implants on screws: on the screw's vertebra.
        for l in &mut out.implant_loads {
            if let Some(&(_, v)) = full.screw_bodies.iter().find(|(aux, _)| *aux == l.body) {
                l.body = v;
            }
        }
        Ok(out)
    }

    /// The least-squares rigid motion (Kabsch) of the nodes of a deformable vertebra's
    /// body, as the state of a rigid body at its frame origin: the lab measures the motion
    /// of markers fixed to the bodies, and the posterior elements bend under the ligaments
    /// and facets.
    fn fitted_motion(&self, model: &nl::Model, state: &nl::StepState, bi: &BoneIndex) -> BodyState {
        let n = bi.body_nodes.len() as f64;
        let x0 = |i: usize| Vector3::from(model.mesh.nodes[i]);
        let x1 = |i: usize| x0(i) + Vector3::from(state.displacements[i]);
        let c0 = bi.body_nodes.iter().map(|&i| x0(i)).sum::<Vector3<f64>>() / n;
        let c1 = bi.body_nodes.iter().map(|&i| x1(i)).sum::<Vector3<f64>>() / n;
        let mut h = Matrix3::zeros();
        for &i in &bi.body_nodes {
            h += (x1(i) - c1) * (x0(i) - c0).transpose();
        }
        let svd = h.svd(true, true);
        let (u, vt) = (svd.u.unwrap(), svd.v_t.unwrap());
        let mut d = Matrix3::identity();
        if (u * vt).determinant() < 0.0 {
            d[(2, 2)] = -1.0;
        }
        let r = u * d * vt;
        let origin = Vector3::from(self.vertebra(bi.body).frame.origin);
        let t = c1 + r * (origin - c0) - origin;
        let rv = Rotation3::from_matrix_unchecked(r).scaled_axis();
        BodyState {
            translation: t.into(),
            rotation: [0, 1, 2].map(|i| [0, 1, 2].map(|j| r[(i, j)])),
            rotation_vector: rv.into(),
        }
    }
}

/// The deformable vertebrae's mesh and fields in `state`.
fn bone_field(full: &FullIndex, bones: &[DeformableBone], state: &nl::StepState) -> BoneField {
    let mut mesh = Mesh::default();
    let mut f = BoneField {
        mesh: Mesh::default(),
        displacement: Vec::new(),
        stress: Vec::new(),
        von_mises: Vec::new(),
        youngs: Vec::new(),
        vertebra: Vec::new(),
    };
    for (b, bi) in bones.iter().zip(&full.bones) {
        let node0 = mesh.nodes.len();
        mesh.nodes.extend_from_slice(&b.mesh.nodes);
        f.displacement
            .extend_from_slice(&state.displacements[bi.nodes.clone()]);
        for (e, &(ge, _)) in bi.elements.iter().enumerate() {
            let nodes: Vec<usize> = b.mesh.element_nodes(e).iter().map(|n| n + node0).collect();
            mesh.add_element(b.mesh.kinds[e], &nodes);
            let sigma = state.element_stress[ge];
            f.stress.push(sigma);
            f.von_mises.push(spinetwin_fem::post::von_mises(&sigma));
            f.youngs.push(b.youngs[e]);
            f.vertebra.push(b.body as f64);
        }
    }
    f.mesh = mesh;
    f
}

/// Von Mises percentiles per deformable vertebra in `state`.
fn bone_stress(full: &FullIndex, state: &nl::StepState) -> Vec<BoneStress> {
    full.bones
        .iter()
        .map(|b| {
            let vm = |label: u16| -> Vec<f64> {
                b.elements
                    .iter()
                    .filter(|(_, l)| *l == label)
                    .map(|(e, _)| spinetwin_fem::post::von_mises(&state.element_stress[*e]))
                    .collect()
            };
            let (mut body, mut post) = (vm(local_label::BODY), vm(local_label::POSTERIOR));
            let mut cement = vm(local_label::CEMENT);
            let max = body.iter().chain(&post).copied().fold(0.0, f64::max);
            let p95 = |elements: &[usize]| {
                let mut v: Vec<f64> = elements
                    .iter()
                    .map(|&e| spinetwin_fem::post::von_mises(&state.element_stress[e]))
                    .collect();
                (!v.is_empty()).then(|| crate::bone_fe::percentile(&mut v, 0.95))
            };
            let ratio_p95 = |elements: &[usize]| {
                let mut v: Vec<f64> = elements
                    .iter()
                    .filter(|&&e| full.strength_mpa.get(e).is_some_and(|&s| s > 0.0))
                    .map(|&e| {
                        spinetwin_fem::post::von_mises(&state.element_stress[e])
                            / full.strength_mpa[e]
                    })
                    .collect();
                (!v.is_empty()).then(|| crate::bone_fe::percentile(&mut v, 0.95))
            };
            BoneStress {
                level: b.level.clone(),
                body_p50_mpa: crate::bone_fe::percentile(&mut body, 0.5),
                body_p95_mpa: crate::bone_fe::percentile(&mut body, 0.95),
                posterior_p95_mpa: (!post.is_empty())
                    .then(|| crate::bone_fe::percentile(&mut post, 0.95)),
                around_screws_p95_mpa: p95(&b.screw_elements),
                superior_endplate_p95_mpa: p95(&b.endplate_elements[0]),
                inferior_endplate_p95_mpa: p95(&b.endplate_elements[1]),
                cement_p95_mpa: (!cement.is_empty())
                    .then(|| crate::bone_fe::percentile(&mut cement, 0.95)),
                superior_centre_ratio_p95: ratio_p95(&b.centre_elements[0]),
                inferior_centre_ratio_p95: ratio_p95(&b.centre_elements[1]),
                around_screws_ratio_p95: ratio_p95(&b.screw_elements),
                max_mpa: max,
            }
        })
        .collect()
}

/// Body elements (local indices) of `bone` with four nodes on its surface faces that face
/// along its cranio-caudal axis within `tolerance` of `endplate` (the disc's endplate
/// nodes): the layer of bone under the endplate.
fn endplate_layer(bone: &DeformableBone, endplate: &[[f64; 3]], tolerance: f64) -> Vec<usize> {
    let m = &bone.mesh;
    let z = Vector3::from(bone.axis);
    let mut on = vec![false; m.nodes.len()];
    for q in &bone.surface {
        let p = q.map(|n| Vector3::from(m.nodes[n]));
        let normal = (p[2] - p[0]).cross(&(p[3] - p[1]));
        if normal.norm() == 0.0 || normal.normalize().dot(&z).abs() < 0.9 {
            continue;
        }
        let c = centroid(q.iter().map(|&n| m.nodes[n]));
        if endplate
            .iter()
            .any(|&e| dist2(e, c) <= tolerance * tolerance)
        {
            for &n in q {
                on[n] = true;
            }
        }
    }
    (0..m.num_elements())
        .filter(|&e| bone.element_label[e] == local_label::BODY)
        .filter(|&e| m.element_nodes(e).iter().filter(|&&n| on[n]).count() >= 4)
        .collect()
}

/// The elements of `layer` (local indices into `bone`) under the disc's centre: those whose
/// nearest `endplate` node, measured across the endplate (normal to the vertebra's axis),
/// is flagged in `is_centre`. A nearest-node split, so the zone follows the disc mesh's own
/// boundary between the nucleus (or cage) and the annulus.
fn layer_centre(
    bone: &DeformableBone,
    layer: &[usize],
    endplate: &[[f64; 3]],
    is_centre: &[bool],
) -> Vec<usize> {
    if !is_centre.iter().any(|&c| c) {
        return Vec::new();
    }
    let z = Vector3::from(bone.axis);
    let across = |p: [f64; 3]| {
        let v = Vector3::from(p);
        v - z * z.dot(&v)
    };
    let ends: Vec<Vector3<f64>> = endplate.iter().map(|&p| across(p)).collect();
    layer
        .iter()
        .copied()
        .filter(|&e| {
            let c = across(bone.mesh.element_centroid(e));
            ends.iter()
                .map(|p| (p - c).norm_squared())
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .is_some_and(|(i, _)| is_centre[i])
        })
        .collect()
}

/// Two triangles per quadrilateral, with the nodes renumbered by `node`.
fn surface_triangles(quads: &[[usize; 4]], node: impl Fn(usize) -> usize) -> Vec<[Point; 3]> {
    quads
        .iter()
        .flat_map(|q| {
            let p = q.map(|n| Point::Node(node(n)));
            [[p[0], p[1], p[2]], [p[0], p[2], p[3]]]
        })
        .collect()
}

/// Faces of a hexahedral mesh that belong to one element only.
fn boundary_quads(mesh: &Mesh) -> Vec<[usize; 4]> {
    let mut count: HashMap<[usize; 4], ([usize; 4], usize)> = HashMap::new();
    for e in 0..mesh.num_elements() {
        if mesh.kinds[e] != ElementKind::Hex8 {
            continue;
        }
        let nodes = mesh.element_nodes(e);
        for f in ElementKind::Hex8.faces() {
            let q = [0, 1, 2, 3].map(|i| nodes[f[i]]);
            let mut key = q;
            key.sort_unstable();
            count.entry(key).or_insert((q, 0)).1 += 1;
        }
    }
    let mut out: Vec<[usize; 4]> = count
        .into_values()
        .filter(|(_, c)| *c == 1)
        .map(|(q, _)| q)
        .collect();
    out.sort_unstable();
    out
}

fn point_at(mesh: &Mesh, p: &Point) -> [f64; 3] {
    match p {
        Point::Body { at, .. } => *at,
        Point::Node(n) => mesh.nodes[*n],
    }
}

/// Moves `p` from body `from` to body `aux` (points on other bodies stay).
fn rebody(p: &mut Point, from: usize, aux: usize) {
    if let Point::Body { body, .. } = p {
        if *body == from {
            *body = aux;
        }
    }
}

/// Squared distance from `p` to the segment `a`-`b`.
fn segment_dist2(p: [f64; 3], a: [f64; 3], b: [f64; 3]) -> f64 {
    let ab = [0, 1, 2].map(|i| b[i] - a[i]);
    let ap = [0, 1, 2].map(|i| p[i] - a[i]);
    let l2: f64 = ab.iter().map(|x| x * x).sum();
    let t = if l2 > 0.0 {
        ((0..3).map(|i| ap[i] * ab[i]).sum::<f64>() / l2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    dist2(p, [0, 1, 2].map(|i| a[i] + t * ab[i]))
}

fn dist2(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum()
}

fn centroid(points: impl Iterator<Item = [f64; 3]>) -> [f64; 3] {
    let (mut s, mut n) = ([0.0; 3], 0.0f64);
    for p in points {
        for a in 0..3 {
            s[a] += p[a];
        }
        n += 1.0;
    }
    s.map(|x| x / n.max(1.0))
}
