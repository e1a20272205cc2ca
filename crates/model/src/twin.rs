//! The twin: a patient's lumbar spine as a mechanical model, built from landmarks.
//!
//! The hybrid fidelity (the default) follows the validated hybrid lumbar models of Remus et
//! al. 2021 (PLoS ONE 16:e0250456): rigid vertebrae carrying their CT geometry, deformable
//! FE discs (annulus ground substance with two crossing fibre families, nearly
//! incompressible nucleus) tied to the endplates, ligaments as tension-only fibres between
//! landmark-derived insertions, facet joints as frictionless penalty contact between the
//! articular surfaces.
//!
//! A [`Twin`] keeps only its inputs (landmarks, parameters, bone record) in its JSON; the
//! meshes, fibres and contact surfaces are regenerated deterministically when it is built
//! or loaded, so a twin file is small and always consistent with the code that solves it.

use std::collections::HashMap;

use nalgebra::{Matrix3, Rotation3, Vector3};
use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;
use spinetwin_fem::nl::{
    self, BodyState, ContactPair, Dof, Increments, Load, NlResult, Point, RigidBody, SolidBlock,
    SolveOptions, Spring, Step,
};
use spinetwin_fem::Mesh;
use spinetwin_segment::landmarks::{SpineLandmarks, VertebraLandmarks, P3};

use crate::disc::{mesh_disc, DiscMesh, DiscMeshParams};
use crate::error::ModelError;
use crate::facet::{bony_stop_geometry, facet_geometry, FacetGeometry, FacetParams};
use crate::ligament::{self, CapsuleModel, Ligament, LigamentSet};
use crate::loadcase::LoadCase;
use crate::material::DiscMaterials;

/// Version of the twin JSON schema.
pub const TWIN_SCHEMA_VERSION: u32 = 1;

/// Model fidelity the twin was built for. A twin is always built hybrid; the full fidelity
/// (deformable vertebrae) is chosen when it is solved, from the CT it was built from
/// ([`crate::full`], [`Twin::simulate_full`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fidelity {
    /// Rigid vertebrae, FE discs, ligament springs, facet contact.
    Hybrid,
}

/// Ligament parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LigamentParams {
    /// Which published set of laws.
    pub set: LigamentSet,
    /// Fibres per ligament (per side for the paired ones).
    pub fibres: usize,
    /// Extra pre-strain added to every ligament's reference strain.
    pub prestrain: f64,
    /// How the capsular ligament's fibres are laid out (twin files written before it
    /// existed get the default, which is what they were built with).
    #[serde(default)]
    pub capsule: CapsuleModel,
}

impl Default for LigamentParams {
    fn default() -> Self {
        LigamentParams {
            set: LigamentSet::GoelBilinear,
            fibres: 3,
            prestrain: 0.0,
            capsule: CapsuleModel::Rim,
        }
    }
}

/// Everything that shapes a twin besides the anatomy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TwinParams {
    /// Disc meshing.
    pub disc_mesh: DiscMeshParams,
    /// Disc materials.
    pub disc_materials: DiscMaterials,
    /// Ligaments.
    pub ligaments: LigamentParams,
    /// Facet joints.
    pub facets: FacetParams,
    /// Ligaments left out entirely (e.g. the disc-only experiments remove all of them).
    #[serde(default)]
    pub without_ligaments: Vec<Ligament>,
    /// Leave the facet joints out (posterior elements removed).
    #[serde(default)]
    pub without_facets: bool,
    /// Model the bony stops found in the landmarks (`inferior_stops`: posterior bone facing
    /// the arch below within 3 mm, typically the inferior articular process tip over the
    /// lamina) as contacts that engage when the bones touch. Twin files written before it
    /// read `false`.
    #[serde(default)]
    pub bony_stops: bool,
}

/// The saved form of a twin (its inputs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TwinFile {
    /// Schema version ([`TWIN_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Fidelity.
    pub fidelity: Fidelity,
    /// Where the anatomy came from (no patient identifiers).
    pub source: String,
    /// A patient-free name for the twin, shown in every report made from it: the user's
    /// (`spinetwin build --pseudonym`, e.g. a study code) or one drawn at random when it was
    /// built. Twin files written before it read "".
    #[serde(default)]
    pub pseudonym: String,
    /// Parameters.
    pub params: TwinParams,
    /// Landmarks of the modelled vertebrae, cranial first.
    pub landmarks: SpineLandmarks,
}

/// One modelled ligament fibre.
#[derive(Clone, Debug)]
pub struct Fibre {
    /// Ligament.
    pub ligament: Ligament,
    /// Index of the upper and the lower vertebra in [`Twin::levels`].
    pub bodies: [usize; 2],
    /// Insertions on the upper and the lower vertebra (mm).
    pub ends: [P3; 2],
    /// The spring.
    pub spring: Spring,
}

/// One motion segment's disc in the model.
#[derive(Clone, Debug)]
pub struct TwinDisc {
    /// Index of the upper vertebra in [`Twin::levels`] (the lower is the next one).
    pub upper: usize,
    /// The mesh.
    pub mesh: DiscMesh,
}

/// One posterior contact between two adjacent vertebrae: a facet joint or a bony stop.
#[derive(Clone, Debug)]
pub struct TwinFacet {
    /// Index of the upper vertebra (the lower is the next one).
    pub upper: usize,
    /// 0 left, 1 right.
    pub side: usize,
    /// What the contact is.
    pub kind: PosteriorContact,
    /// Contact geometry.
    pub geometry: FacetGeometry,
}

/// Kinds of posterior contact between two vertebrae.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PosteriorContact {
    /// The facet joint: inferior on superior articular surface, through cartilage.
    Articular,
    /// A bony stop outside the joint (typically the inferior articular process tip on the
    /// lamina or pars below; surgical operations treat it as that tip): bone on bone, it
    /// engages only when the gap between the bones closes.
    BonyStop,
}

/// What a [`DiscBlock`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscBlockKind {
    /// An interbody cage in the nucleus space: an implant whose load on the endplates is
    /// checked against the bone (subsidence).
    Cage,
    /// Bone of a solid (bony) fusion where the nucleus was, or in the cavities a nucleotomy
    /// or an approach window left: the disc's centre.
    FusionCentre,
    /// Bone of a solid fusion where the annulus was.
    FusionRim,
}

impl DiscBlockKind {
    /// Whether the block fills the disc's centre (the nucleus space): a cage, or the fusion
    /// mass there. The endplate zone over it is the bone's "centre" zone.
    pub fn is_centre(self) -> bool {
        matches!(self, DiscBlockKind::Cage | DiscBlockKind::FusionCentre)
    }
}

/// A block of disc elements given another (linear elastic) material: an interbody cage that
/// replaces the nucleus, or the bone of a fusion.
#[derive(Clone, Debug)]
pub struct DiscBlock {
    /// Name (for logs).
    pub name: String,
    /// What it is.
    pub kind: DiscBlockKind,
    /// Index into [`Twin::discs`].
    pub disc: usize,
    /// Elements of that disc's mesh (local indices); they must not also be listed in the
    /// disc's `nucleus_elements` or `annulus_elements`.
    pub elements: Vec<usize>,
    /// Young's modulus (MPa).
    pub e: f64,
    /// Poisson's ratio.
    pub nu: f64,
    /// How the block meets the endplates.
    pub interface: BlockInterface,
}

/// How a [`DiscBlock`] meets the two endplates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BlockInterface {
    /// Its nodes on the endplates move with the vertebrae (the block shares its other nodes
    /// with the annulus around it): bone grown onto it, as after a fusion.
    Bonded,
    /// A separate rigid body in penalty contact with both endplates (a cage on the day of
    /// the operation): it can lift off where the segment opens and slide against the
    /// regularised Coulomb friction `friction`. Its own axial compliance is the contact's
    /// (the penalty of each side is twice its axial stiffness per area, so the two in
    /// series give it back). It is seated `seating_mm` into each endplate (the small
    /// interference of an impacted cage), so it starts in contact; six bars
    /// ([`BLOCK_HOLD_N_PER_MM`] each) to the vertebra below stand for its teeth in that
    /// endplate and keep it in place when the segment opens and unloads it. Nothing joins
    /// it to the annulus around it (no contact with the annulus either).
    ///
    /// A cage taller than the disc space (`distraction_mm > 0`) is driven in by a first,
    /// load-free step ("seat implants") that ramps each side's interference from
    /// `seating_mm` to `max(distraction_mm / 2, seating_mm)`: the segment is distracted,
    /// tensioning the annulus and ligaments, before any load case is applied, and the
    /// rotations of every result are measured from that seated pose (the post-operative
    /// neutral position), the disc height change from the pre-operative geometry. The
    /// holding bars are unstressed at the seated pose (the teeth engage where the cage
    /// ends up), not in the reference one.
    Contact {
        /// Coulomb friction coefficient.
        friction: f64,
        /// Interference with each endplate at rest (mm).
        seating_mm: f64,
        /// How much taller than the disc space the cage is (mm), shared equally by the two
        /// endplates; 0 for a cage that just fits.
        distraction_mm: f64,
    },
}

impl BlockInterface {
    /// Contact penalty (MPa per mm of penetration) on each side of a rigid block of
    /// modulus `e_mpa` and height `height_mm`: half the block's axial stiffness per area
    /// `E / h`, so the two sides in series are four times as compliant as the solid block
    /// (the value every cage-in-contact figure in docs/validation/scenarios_phantom.md was
    /// measured with; for PEEK on the phantom's L4-L5 it is 165 MPa/mm per side, still far
    /// stiffer than the disc it replaces).
    pub fn penalty(e_mpa: f64, height_mm: f64) -> f64 {
        0.5 * e_mpa / height_mm.max(1.0)
    }
}

/// The friction law's stick stiffness on a block in contact, as a fraction of its normal
/// penalty ([`spinetwin_fem::nl::ContactPair::tangential_penalty`], a regularisation). With
/// the normal penalty itself a point at the friction limit is about 0.01 mm from sticking,
/// and the slip direction turns over that distance: the L4-L5 TLIF's Newton ended every
/// increment linearly and took 143 iterations in extension at 7.5 N m (one thread, the
/// `scenario_log` example on the phantom twin). A tenth: 71 iterations. Measured on the T12-S1 phantom twin, the TLIF's ROM
/// changes moved by at most 0.2 percentage points in the six pure moments (load and
/// ROM-matched control) and the peak rod and screw stresses not at all; in lateral bending,
/// where the implants carry 40-50 MPa, their stresses rose by 10-20 % (the cage's friction
/// holds a little less before it slips). The hybrid twin's rigid vertebrae leave the bone
/// under the cage no compliance of its own, so the normal penalty (the cage's) is an upper
/// bound of the interface's stiffness anyway (docs/bench/scenarios.md).
pub const BLOCK_TANGENTIAL_PENALTY_RATIO: f64 = 0.1;

/// Axial stiffness (N/mm) of each of the six bars that hold a block in contact
/// ([`BlockInterface::Contact`]) to the vertebra below: the teeth of a cage in that
/// endplate, a tenth of a millimetre of drift against ~100 N.
///
/// Why this stiff: where the segment opens (extension after an ALIF, whose approach cuts the
/// anterior annulus and the ALL), the cage is unloaded and touches the endplates at a few
/// points with a few newtons. With 1 N/mm bars it was then a nearly free rigid body: its
/// stick/slip points (friction cones of ~1 N against a stick stiffness of ~2000 N/mm per
/// point) and, without friction, its free spin about the axis (0.8 degree at 0.75 N m)
/// decided its Newton corrections, the line search took steps of 0.01-0.1 and the moment
/// stalled at 0.14 of 7.5 N m in extension (phantom L3-S1 twin, ALIF). 100 N/mm converged
/// without friction but not with it (0.29 after 200 increments); 1000 N/mm converges in all
/// six pure-moment cases with friction 0.5 (docs/validation/scenarios_phantom.md, "cage in
/// contact"). Held this firmly, the cage moves with the lower vertebra and slides and lifts
/// off at the upper endplate, whose friction has the same capacity under the same normal
/// force.
pub const BLOCK_HOLD_N_PER_MM: f64 = 1000.0;

/// A block in contact with an endplate: where its contact pair sits in the FE model.
#[derive(Clone, Debug)]
pub struct BlockContact {
    /// Index into [`Implants::disc_blocks`].
    pub block: usize,
    /// Index into [`Twin::discs`].
    pub disc: usize,
    /// True for the upper vertebra's (inferior) endplate.
    pub upper: bool,
    /// Index into the model's contact pairs.
    pub pair: usize,
    /// The disc mesh node (local to the disc) of each slave point of the pair, in order: the
    /// block's own face nodes in the hybrid model; at the full fidelity every endplate node
    /// of the disc under the cage ([`crate::full`]).
    pub nodes: Vec<usize>,
}

/// What surgery adds to the twin (empty for the intact patient): rods between rigid
/// vertebrae, disc elements with implant materials, and where the screws the rods are
/// clamped to sit in the bone.
#[derive(Clone, Debug, Default)]
pub struct Implants {
    /// Beams (rods) clamped to the vertebrae.
    pub beams: Vec<nl::Beam>,
    /// Disc element blocks with their own material.
    pub disc_blocks: Vec<DiscBlock>,
    /// Screws: in the hybrid fidelity a screw is part of its rigid vertebra; in the full
    /// fidelity ([`crate::full`]) it is a rigid body bonded to the bone along its shaft,
    /// carrying the beam ends at its head.
    pub screws: Vec<ScrewAnchor>,
    /// Bone a decompression removed (not meshed in the full fidelity's deformable
    /// vertebrae, not drawn in the pictures; nothing in the hybrid twin's rigid vertebrae).
    pub resections: Vec<crate::resection::Resection>,
}

impl Implants {
    /// The elements of disc `disc` (local indices) in blocks whose kind passes `kind`.
    pub fn disc_block_elements<'a>(
        &'a self,
        disc: usize,
        kind: impl Fn(DiscBlockKind) -> bool + 'a,
    ) -> impl Iterator<Item = usize> + 'a {
        self.disc_blocks
            .iter()
            .filter(move |b| b.disc == disc && kind(b.kind))
            .flat_map(|b| b.elements.iter().copied())
    }
}

/// Whether `b` is the vertebra right below `a` (L5 and S1 are neighbours when there is no
/// L6).
pub fn adjacent_levels(a: Level, b: Level) -> bool {
    let at = |l: Level| Level::ALL.iter().position(|&x| x == l);
    matches!((at(a), at(b)), (Some(i), Some(j)) if j == i + 1) || (a == Level::L5 && b == Level::S1)
}

/// A bone screw: its vertebra and its axis (mm, LPS).
#[derive(Clone, Debug, PartialEq)]
pub struct ScrewAnchor {
    /// Name (e.g. "screw L4 left").
    pub name: String,
    /// Index of the vertebra in [`Twin::levels`].
    pub body: usize,
    /// Head (where beams are clamped).
    pub head: [f64; 3],
    /// Entry point into the bone.
    pub entry: [f64; 3],
    /// Tip.
    pub tip: [f64; 3],
    /// Outer radius of the thread (mm).
    pub radius_mm: f64,
    /// The modulus (MPa) of the elastic foundation that anchors the screw in the hybrid
    /// fidelity's rigid vertebra ([`crate::anchorage`]): the screw is then a body of its
    /// own, joined to the vertebra at its entry by a six-spring connector. `None`: rigidly
    /// fixed in the vertebra. The full fidelity bonds a screw in a deformable vertebra to
    /// the bone along its shaft either way.
    pub anchorage_modulus_mpa: Option<f64>,
}

/// A built twin.
#[derive(Clone, Debug)]
pub struct Twin {
    /// Its saved form.
    pub file: TwinFile,
    /// Modelled vertebrae, cranial first.
    pub levels: Vec<Level>,
    /// Discs, cranial first.
    pub discs: Vec<TwinDisc>,
    /// Ligament fibres.
    pub fibres: Vec<Fibre>,
    /// Facet joints.
    pub facets: Vec<TwinFacet>,
    /// What was left out or looked unusual.
    pub warnings: Vec<String>,
    /// Implants (none after [`Twin::build`]; added by surgical scenarios).
    pub implants: Implants,
}

fn v3(p: &P3) -> Vector3<f64> {
    Vector3::from(*p)
}

impl Twin {
    /// Builds a twin from landmarks (at least two vertebrae with their endplates).
    pub fn build(file: TwinFile) -> Result<Twin, ModelError> {
        if file.schema_version != TWIN_SCHEMA_VERSION {
            return Err(ModelError::InvalidInput(format!(
                "twin schema version {} is not supported (this build reads {TWIN_SCHEMA_VERSION}): rebuild the twin",
                file.schema_version
            )));
        }
        if !file.params.disc_materials.fibre_full_invariants {
            // Twin files written before 2026-12-02 lack the field and keep their old model.
            tracing::warn!(
                "the annulus fibres of this twin use the isochoric invariants, which let the \
                 compressible annulus swell (disc-only flexion 14.6 deg against 9.6): rebuild \
                 the twin for the corrected model (docs/validation/twin_phantom.md)"
            );
        }
        let lm = &file.landmarks;
        if lm.vertebrae.len() < 2 {
            return Err(ModelError::InvalidGeometry(format!(
                "a twin needs at least two adjacent vertebrae, the landmarks have {}",
                lm.vertebrae.len()
            )));
        }
        let levels: Vec<Level> = lm.vertebrae.iter().map(|v| v.level).collect();
        for w in levels.windows(2) {
            if w[0] >= w[1] {
                return Err(ModelError::InvalidGeometry(format!(
                    "vertebrae must be listed cranial first without repeats ({} before {})",
                    w[0].name(),
                    w[1].name()
                )));
            }
            if !adjacent_levels(w[0], w[1]) {
                return Err(ModelError::InvalidGeometry(format!(
                    "{} and {} are not adjacent (a vertebra between them has no landmarks): a \
                     twin needs a continuous run of vertebrae, its discs join neighbours; \
                     model the run above or below the gap",
                    w[0].name(),
                    w[1].name()
                )));
            }
        }
        file.params.ligaments.capsule.check()?;
        // What the landmarks said about the whole scan (thick slices, no canal label) holds
        // for the model built on them.
        let mut warnings: Vec<String> = lm
            .warnings
            .iter()
            .map(|w| format!("landmarks: {w}"))
            .collect();
        let mut discs = Vec::new();
        let mut fibres = Vec::new();
        let mut facets = Vec::new();
        let p = &file.params;
        for i in 0..levels.len() - 1 {
            let (up, lo) = (&lm.vertebrae[i], &lm.vertebrae[i + 1]);
            let seg = format!("{}-{}", up.level.name(), lo.level.name());
            let upper_ep = up.inferior_endplate.as_ref().ok_or_else(|| {
                ModelError::InvalidGeometry(format!(
                    "{seg}: {} has no inferior endplate",
                    up.level.name()
                ))
            })?;
            let mesh = mesh_disc(upper_ep, &lo.superior_endplate, &p.disc_mesh)
                .map_err(|e| ModelError::InvalidGeometry(format!("disc {seg}: {e}")))?;
            if mesh.lofted_along_axis {
                warnings.push(format!(
                    "disc {seg}: its endplate outlines are offset against each other by more \
                     than the disc is high (wedged endplates, or planes fitted on coarse \
                     voxels); meshed along the disc axis from their mean outline instead"
                ));
            }
            discs.push(TwinDisc { upper: i, mesh });

            for lig in Ligament::ALL {
                if p.without_ligaments.contains(&lig) {
                    continue;
                }
                let pairs = match ligament::try_attachment_pairs_with(
                    up,
                    lo,
                    lig,
                    p.ligaments.fibres,
                    p.ligaments.capsule,
                ) {
                    Ok(pairs) if !pairs.is_empty() => pairs,
                    Ok(_) => {
                        warnings.push(format!("{seg}: {} has no fibres; left out", lig.name()));
                        continue;
                    }
                    Err(e) => {
                        warnings.push(format!("{seg}: {} left out: {e}", lig.name()));
                        continue;
                    }
                };
                let n = pairs.len();
                for (k, (a, b)) in pairs.into_iter().enumerate() {
                    let length = (v3(&a) - v3(&b)).norm();
                    let (law, rest) = ligament::fibre_law(
                        p.ligaments.set,
                        lig,
                        n,
                        length,
                        p.ligaments.prestrain,
                    )?;
                    let spring = Spring {
                        name: format!("{seg} {} {k}", lig.name()),
                        a: Point::Body { body: i, at: a },
                        b: Point::Body { body: i + 1, at: b },
                        rest_length: rest,
                        law,
                    };
                    fibres.push(Fibre {
                        ligament: lig,
                        bodies: [i, i + 1],
                        ends: [a, b],
                        spring,
                    });
                }
            }

            if !p.without_facets {
                let uf = [&up.inferior_facets.left, &up.inferior_facets.right];
                let lf = [&lo.superior_facets.left, &lo.superior_facets.right];
                for side in 0..2 {
                    let name = ["left", "right"][side];
                    match (uf[side], lf[side]) {
                        (Some(a), Some(b)) => match facet_geometry(a, b, &p.facets) {
                            Ok(geometry) => facets.push(TwinFacet {
                                upper: i,
                                side,
                                kind: PosteriorContact::Articular,
                                geometry,
                            }),
                            Err(e) => {
                                warnings.push(format!("{seg} {name} facet joint left out: {e}"))
                            }
                        },
                        _ => warnings.push(format!(
                            "{seg} {name} facet joint left out: articular surfaces not found"
                        )),
                    }
                }
                if p.bony_stops {
                    let stops = [&up.inferior_stops.left, &up.inferior_stops.right];
                    for (side, stop) in stops.into_iter().enumerate() {
                        let Some(stop) = stop else { continue };
                        match bony_stop_geometry(&stop.upper, &stop.lower, &p.facets) {
                            Ok(geometry) => facets.push(TwinFacet {
                                upper: i,
                                side,
                                kind: PosteriorContact::BonyStop,
                                geometry,
                            }),
                            Err(e) => warnings.push(format!(
                                "{seg} {} bony stop left out: {e}",
                                ["left", "right"][side]
                            )),
                        }
                    }
                }
            }
        }
        Ok(Twin {
            levels,
            discs,
            fibres,
            facets,
            warnings,
            file,
            implants: Implants::default(),
        })
    }

    /// Number of modelled contacts of one kind (facet joints or bony stops).
    pub fn contact_count(&self, kind: PosteriorContact) -> usize {
        self.facets.iter().filter(|f| f.kind == kind).count()
    }

    /// Landmarks of vertebra `i`.
    pub fn vertebra(&self, i: usize) -> &VertebraLandmarks {
        &self.file.landmarks.vertebrae[i]
    }

    /// The anatomical frame of vertebra `i` as a matrix whose columns are x, y, z.
    pub fn frame_matrix(&self, i: usize) -> Matrix3<f64> {
        let f = &self.vertebra(i).frame;
        Matrix3::from_columns(&[v3(&f.x), v3(&f.y), v3(&f.z)])
    }

    /// The point of vertebra `i` the follower load passes through: the body centre, moved
    /// `offset_mm` posteriorly along the frame's y axis.
    pub fn follower_point(&self, i: usize, offset_mm: f64) -> P3 {
        let f = &self.vertebra(i).frame;
        (v3(&f.origin) + v3(&f.y) * offset_mm).into()
    }

    /// The FE model of one load case and the bookkeeping to read its results back.
    pub fn fem_model(&self, case: &LoadCase) -> Result<(nl::Model, ModelIndex), ModelError> {
        self.fem_model_bonding(case, &[])
    }

    /// [`Twin::fem_model`] with the screws in the vertebrae `bonded` (indices into
    /// [`Twin::levels`]) fixed in their body whatever their anchorage (the full fidelity
    /// bonds them to the bone mesh instead).
    pub(crate) fn fem_model_bonding(
        &self,
        case: &LoadCase,
        bonded: &[usize],
    ) -> Result<(nl::Model, ModelIndex), ModelError> {
        let nb = self.levels.len();
        let mut mesh = Mesh::default();
        let mut bodies: Vec<RigidBody> = (0..nb)
            .map(|i| RigidBody {
                name: self.levels[i].name().to_string(),
                reference: self.vertebra(i).frame.origin,
                tied_nodes: Vec::new(),
            })
            .collect();
        let mut nucleus = Vec::new();
        let mut annulus = Vec::new();
        let mut fibre_dirs: Vec<[[f64; 3]; 2]> = Vec::new();
        let mut disc_ranges = Vec::new();
        // Blocks in contact with the endplates: their elements get their own copies of the
        // disc's nodes (`copies[block]`: local node -> model node), numbered after every
        // disc's own nodes (each disc's nodes stay one run), and one contact pair per
        // endplate is added below.
        let disc_nodes: usize = self.discs.iter().map(|d| d.mesh.mesh.num_nodes()).sum();
        let mut copies: Vec<HashMap<usize, usize>> =
            vec![HashMap::new(); self.implants.disc_blocks.len()];
        let mut copy_at: Vec<[f64; 3]> = Vec::new();
        for (bi, b) in self.implants.disc_blocks.iter().enumerate() {
            if !matches!(b.interface, BlockInterface::Contact { .. }) {
                continue;
            }
            let m = &self.discs[b.disc].mesh.mesh;
            for &e in &b.elements {
                for &n in m.element_nodes(e) {
                    copies[bi].entry(n).or_insert_with(|| {
                        copy_at.push(m.nodes[n]);
                        disc_nodes + copy_at.len() - 1
                    });
                }
            }
        }
        for (di, d) in self.discs.iter().enumerate() {
            let node0 = mesh.nodes.len();
            let elem0 = mesh.num_elements();
            let m = &d.mesh.mesh;
            mesh.nodes.extend_from_slice(&m.nodes);
            let mut own: HashMap<usize, usize> = HashMap::new();
            for (bi, b) in self.implants.disc_blocks.iter().enumerate() {
                if b.disc == di && matches!(b.interface, BlockInterface::Contact { .. }) {
                    own.extend(b.elements.iter().map(|&e| (e, bi)));
                }
            }
            for e in 0..m.num_elements() {
                let nodes: Vec<usize> = match own.get(&e) {
                    Some(&bi) => m.element_nodes(e).iter().map(|n| copies[bi][n]).collect(),
                    None => m.element_nodes(e).iter().map(|n| n + node0).collect(),
                };
                mesh.add_element(m.kinds[e], &nodes);
            }
            // Elements outside the annulus never reach the HGO material; any unit pair will do.
            fibre_dirs.resize(mesh.num_elements(), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
            for (k, &e) in d.mesh.annulus_elements.iter().enumerate() {
                fibre_dirs[elem0 + e] = d.mesh.fibre_directions[k];
                annulus.push(elem0 + e);
            }
            let nuc: Vec<usize> = d.mesh.nucleus_elements.iter().map(|e| e + elem0).collect();
            nucleus.extend_from_slice(&nuc);
            bodies[d.upper]
                .tied_nodes
                .extend(d.mesh.upper_nodes.iter().map(|n| n + node0));
            bodies[d.upper + 1]
                .tied_nodes
                .extend(d.mesh.lower_nodes.iter().map(|n| n + node0));
            disc_ranges.push(DiscIndex {
                upper: d.upper,
                nucleus: nuc,
                upper_nodes: d.mesh.upper_nodes.iter().map(|n| n + node0).collect(),
                lower_nodes: d.mesh.lower_nodes.iter().map(|n| n + node0).collect(),
                annulus: d
                    .mesh
                    .annulus_elements
                    .iter()
                    .zip(&d.mesh.fibre_directions)
                    .map(|(&e, &a)| (elem0 + e, a))
                    .collect(),
            });
        }
        mesh.nodes.extend(copy_at);
        let mats = &self.file.params.disc_materials;
        let disc_elem0: Vec<usize> = {
            let mut v = Vec::with_capacity(self.discs.len());
            let mut n = 0;
            for d in &self.discs {
                v.push(n);
                n += d.mesh.mesh.num_elements();
            }
            v
        };
        let (annulus_mat, nucleus_mat) = mats.build(fibre_dirs, mesh.num_elements())?;
        let mut solids = vec![
            SolidBlock {
                name: "annulus".into(),
                elements: annulus,
                material: annulus_mat,
            },
            SolidBlock {
                name: "nucleus".into(),
                elements: nucleus,
                material: nucleus_mat,
            },
        ];
        for b in &self.implants.disc_blocks {
            let elem0 = *disc_elem0.get(b.disc).ok_or_else(|| {
                ModelError::InvalidInput(format!("block '{}': no disc {}", b.name, b.disc))
            })?;
            let material = spinetwin_fem::hyper::NeoHookean::from_e_nu(b.e, b.nu)?;
            solids.push(SolidBlock {
                name: b.name.clone(),
                elements: b.elements.iter().map(|e| e + elem0).collect(),
                material: std::sync::Arc::new(material),
            });
        }
        let springs: Vec<Spring> = self.fibres.iter().map(|f| f.spring.clone()).collect();
        let mut contacts: Vec<ContactPair> = self
            .facets
            .iter()
            .map(|f| {
                let g = &f.geometry;
                ContactPair {
                    name: format!(
                        "{}-{} {}{}",
                        self.levels[f.upper].name(),
                        self.levels[f.upper + 1].name(),
                        ["left", "right"][f.side],
                        match f.kind {
                            PosteriorContact::Articular => "",
                            PosteriorContact::BonyStop => " bony stop",
                        }
                    ),
                    slave: g
                        .slave
                        .iter()
                        .map(|&at| Point::Body { body: f.upper, at })
                        .collect(),
                    slave_area: g.slave_area.clone(),
                    master: g
                        .master
                        .iter()
                        .map(|t| {
                            t.map(|at| Point::Body {
                                body: f.upper + 1,
                                at,
                            })
                        })
                        .collect(),
                    penalty: g.penalty,
                    clearance: g.clearance_mm,
                    friction: 0.0,
                    augmented: None,
                    // The articular surfaces keep the engine's default (one master edge):
                    // measured on the validation, a 3 mm depth there changes no row.
                    tangential_penalty: None,
                    search_depth: match f.kind {
                        PosteriorContact::Articular => None,
                        PosteriorContact::BonyStop => Some(crate::facet::STOP_SEARCH_DEPTH_MM),
                    },
                    slave_faces: vec![],
                }
            })
            .collect();
        let mut block_contacts = Vec::new();
        let mut block_holds = Vec::new();
        // (block, offset of its six holds in `block_holds`).
        let mut hold_offsets: Vec<(usize, usize)> = Vec::new();
        // (contact pair, clearance) of the blocks driven in by a "seat implants" step.
        let mut seat: Vec<(usize, f64)> = Vec::new();
        for (bi, b) in self.implants.disc_blocks.iter().enumerate() {
            let BlockInterface::Contact {
                friction,
                seating_mm,
                distraction_mm,
            } = b.interface
            else {
                continue;
            };
            if !(distraction_mm >= 0.0 && distraction_mm.is_finite() && seating_mm.is_finite()) {
                return Err(ModelError::InvalidInput(format!(
                    "{}: distraction {distraction_mm} mm and seating {seating_mm} mm must be finite, the distraction >= 0 (how much taller the cage is than the disc space)",
                    b.name
                )));
            }
            let seated_mm = (0.5 * distraction_mm).max(seating_mm);
            let d = &self.discs[b.disc];
            // The block is a rigid body carrying its nodes.
            // Sorted: the map's order varies from run to run, and the centre's round-off
            // with it.
            let mut nodes: Vec<usize> = copies[bi].values().copied().collect();
            nodes.sort_unstable();
            let centre: [f64; 3] = std::array::from_fn(|k| {
                nodes.iter().map(|&n| mesh.nodes[n][k]).sum::<f64>() / nodes.len().max(1) as f64
            });
            let body = bodies.len();
            bodies.push(RigidBody {
                name: b.name.clone(),
                reference: centre,
                tied_nodes: nodes,
            });
            for upper in [true, false] {
                let (pair, slave_nodes) =
                    block_contact_pair(d, b, body, upper, friction, seating_mm).map_err(|m| {
                        ModelError::InvalidInput(format!(
                            "{} on the {} endplate: {m}",
                            b.name,
                            self.levels[if upper { d.upper } else { d.upper + 1 }].name()
                        ))
                    })?;
                if seated_mm > seating_mm {
                    seat.push((contacts.len(), seated_mm));
                }
                block_contacts.push(BlockContact {
                    block: bi,
                    disc: b.disc,
                    upper,
                    pair: contacts.len(),
                    nodes: slave_nodes,
                });
                contacts.push(pair);
            }
            // Unit normal of the lower endplate, out of the vertebra into the disc: the
            // area-weighted mean of its contact pair's master triangles.
            let lower_normal: Option<Vector3<f64>> = contacts.last().and_then(|p| {
                let mut n = Vector3::zeros();
                for t in &p.master {
                    let x: Vec<Vector3<f64>> = t
                        .iter()
                        .map(|q| match q {
                            Point::Body { at, .. } => v3(at),
                            Point::Node(k) => v3(&mesh.nodes[*k]),
                        })
                        .collect();
                    n += (x[1] - x[0]).cross(&(x[2] - x[0]));
                }
                (n.norm() > 0.0).then(|| n.normalize())
            });
            // Six soft bars to the vertebra below: three at the centre along x, y, z and
            // three 10 mm off it, so that every translation and rotation stretches one.
            // A distracting cage is driven `seated_mm - seating_mm` off the lower endplate
            // (along its normal `lift`) before its teeth hold: the bars are unstressed there,
            // not in the reference pose (where they would pull it back onto the endplate
            // with about 1000 N per mm of distraction).
            let lift = lower_normal.map(|n| n * (seated_mm - seating_mm));
            let e =
                |k: usize| -> [f64; 3] { std::array::from_fn(|a| if a == k { 10.0 } else { 0.0 }) };
            let add =
                |p: [f64; 3], q: [f64; 3]| -> [f64; 3] { std::array::from_fn(|a| p[a] + q[a]) };
            let (px, py) = (add(centre, e(0)), add(centre, e(1)));
            hold_offsets.push((bi, block_holds.len()));
            for (from, dir) in [
                (centre, 0),
                (centre, 1),
                (centre, 2),
                (px, 1),
                (px, 2),
                (py, 2),
            ] {
                block_holds.push(Spring {
                    name: format!("{} hold", b.name),
                    a: Point::Body { body, at: from },
                    b: Point::Body {
                        body: d.upper + 1,
                        at: add(from, e(dir)),
                    },
                    rest_length: {
                        let l: Vector3<f64> = Vector3::from(e(dir)) - lift.unwrap_or_default();
                        l.norm()
                    },
                    law: spinetwin_fem::nl::SpringLaw::Truss {
                        k: BLOCK_HOLD_N_PER_MM * 10.0,
                    },
                });
            }
        }

        // Loads. The follower load runs through one point per vertebra, as a chain of cable
        // segments (Patwardhan et al. 1999 Spine 24:1003).
        let offset = FOLLOWER_OFFSET_MM;
        let follower: Vec<Load> = if case.follower_n > 0.0 {
            (0..nb - 1)
                .map(|i| Load::FollowerPair {
                    a: Point::Body {
                        body: i,
                        at: self.follower_point(i, offset),
                    },
                    b: Point::Body {
                        body: i + 1,
                        at: self.follower_point(i + 1, offset),
                    },
                    magnitude: case.follower_n,
                })
                .collect()
        } else {
            Vec::new()
        };
        let bottom = nb - 1;
        let fixed: Vec<(Dof, f64)> = (0..6)
            .map(|k| (Dof::Body { body: bottom, k }, 0.0))
            .collect();
        let mut steps = Vec::new();
        let mut sample_steps = Vec::new();
        let seated_step = (!seat.is_empty()).then(|| {
            // The interference ramps in with the load factor, so the increments (and their
            // cut-backs) control how far the cage is driven in at a time.
            steps.push(Step {
                name: "seat implants".into(),
                prescribed: fixed.clone(),
                clearances: seat,
                increments: Increments {
                    initial: 0.25,
                    ..Default::default()
                },
                ..Default::default()
            });
            steps.len() - 1
        });
        if case.follower_n > 0.0 {
            steps.push(Step {
                name: "follower".into(),
                loads: follower.clone(),
                prescribed: fixed.clone(),
                increments: Increments {
                    initial: 0.25,
                    ..Default::default()
                },
                ..Default::default()
            });
            if case.moment.is_none() {
                sample_steps.push((steps.len() - 1, None, 0.0));
            }
        }
        if let Some((motion, m)) = case.moment {
            let (axis, sign) = motion.axis_sign();
            let dir = self.frame_matrix(0).column(axis) * sign;
            // One step to the largest sampled moment, recording the smaller samples on the
            // way: the increments then grow along one smooth load path. `samples` are
            // fractions of `m` (the last is normally 1).
            let full = case.samples.iter().copied().fold(0.0, f64::max);
            let mut loads = follower.clone();
            loads.push(Load::BodyMoment {
                body: 0,
                moment: (dir * (m * full)).into(),
            });
            steps.push(Step {
                name: "moment".into(),
                loads,
                prescribed: fixed.clone(),
                increments: Increments {
                    // The unloaded spine is at its softest (slack ligaments, open facets):
                    // a first increment of 0.1 (0.75 N m) overshoots and inverts disc
                    // elements in every direction on the phantom twin, and costs two
                    // cut-backs.
                    initial: 0.025,
                    ..Default::default()
                },
                record_at: case
                    .samples
                    .iter()
                    .map(|f| f / full)
                    .filter(|&f| f < 1.0 - 1e-9)
                    .collect(),
                ..Default::default()
            });
            let si = steps.len() - 1;
            for &f in &case.samples {
                let at = f / full;
                sample_steps.push((si, (at < 1.0 - 1e-9).then_some(at), m * f));
            }
        }
        if steps.len() == usize::from(seated_step.is_some()) {
            return Err(ModelError::InvalidInput(format!(
                "load case '{}' applies nothing",
                case.name
            )));
        }
        // Elastically anchored screws: a body each, carrying the beam ends at its head,
        // joined to its vertebra at the entry point.
        let mut beams = self.implants.beams.clone();
        let mut connectors = Vec::new();
        let mut screw_bodies = Vec::new();
        for s in &self.implants.screws {
            let Some(modulus) = s.anchorage_modulus_mpa else {
                continue;
            };
            if bonded.contains(&s.body) {
                continue;
            }
            let crate::anchorage::Anchorage { axes, stiffness } =
                crate::anchorage::screw_anchorage(s.entry, s.tip, s.radius_mm, modulus)
                    .ok_or_else(|| {
                        ModelError::InvalidGeometry(format!(
                            "{}: no elastic anchorage for a screw of radius {} mm from {:?} to {:?} in bone of modulus {modulus} MPa: it needs a length in bone and a positive modulus",
                            s.name, s.radius_mm, s.entry, s.tip
                        ))
                    })?;
            bodies.push(RigidBody {
                name: s.name.clone(),
                reference: s.head,
                tied_nodes: Vec::new(),
            });
            let sb = bodies.len() - 1;
            screw_bodies.push((sb, s.body));
            for b in &mut beams {
                for end in [&mut b.a, &mut b.b] {
                    let d2: f64 = (0..3).map(|i| (end.at[i] - s.head[i]).powi(2)).sum();
                    if end.body == s.body && d2 < 1e-6 {
                        end.body = sb;
                    }
                }
            }
            connectors.push(nl::Connector {
                name: format!("{} anchorage", s.name),
                a: nl::BeamEnd {
                    body: s.body,
                    at: s.entry,
                },
                b: nl::BeamEnd {
                    body: sb,
                    at: s.entry,
                },
                axes,
                stiffness,
            });
        }
        // The holds follow the ligament fibres in the model's springs.
        let block_holds_at: Vec<(usize, usize)> = hold_offsets
            .iter()
            .map(|&(bi, o)| (bi, springs.len() + o))
            .collect();
        let model = nl::Model {
            mesh,
            solids,
            bodies,
            // The ligament fibres first, in [`Twin::fibres`] order, then the blocks' holds.
            springs: springs.into_iter().chain(block_holds).collect(),
            beams,
            connectors,
            contacts,
            ties: vec![],
            steps,
        };
        Ok((
            model,
            ModelIndex {
                discs: disc_ranges,
                sample_steps,
                seated_step,
                block_contacts,
                block_holds: block_holds_at,
                block_nodes: copies
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_empty())
                    .map(|(bi, c)| {
                        // Only the nodes no other element of the disc uses (the annulus
                        // keeps its own at the block's side).
                        let b = &self.implants.disc_blocks[bi];
                        let m = &self.discs[b.disc].mesh.mesh;
                        let inside: std::collections::HashSet<usize> =
                            b.elements.iter().copied().collect();
                        let shared: std::collections::HashSet<usize> = (0..m.num_elements())
                            .filter(|e| !inside.contains(e))
                            .flat_map(|e| m.element_nodes(e).to_vec())
                            .collect();
                        let mut v: Vec<(usize, usize)> = c
                            .iter()
                            .filter(|(l, _)| !shared.contains(l))
                            .map(|(&l, &g)| (l, g))
                            .collect();
                        v.sort_unstable();
                        (b.disc, v)
                    })
                    .collect(),
                screw_bodies,
            },
        ))
    }

    /// Solves one load case and reads the results in anatomical terms.
    pub fn simulate(
        &self,
        case: &LoadCase,
        options: &SolveOptions,
    ) -> Result<CaseResult, ModelError> {
        let t0 = std::time::Instant::now();
        let (model, index) = self.fem_model(case)?;
        let result = nl::solve(&model, options)?;
        Ok(self.read_results(case, &model, &index, result, t0.elapsed().as_secs_f64()))
    }

    /// One state of the FE model in anatomical terms, under moment `moment` (N mm), with
    /// the rotations measured from the body poses `base` (the reference configuration when
    /// `None`).
    fn sample(
        &self,
        model: &nl::Model,
        index: &ModelIndex,
        state: &nl::StepState,
        moment: f64,
        base: Option<&Vec<BodyState>>,
    ) -> Sample {
        let base = |a: usize, b: usize| base.map(|bodies| (&bodies[a], &bodies[b]));
        let mut segments = Vec::new();
        for d in &index.discs {
            let up = d.upper;
            let lo = up + 1;
            let rot = relative_rotation_from(
                &state.bodies[up],
                &state.bodies[lo],
                base(up, lo),
                &self.frame_matrix(lo),
            );
            let idp = nucleus_pressure(model, &d.nucleus, &state.element_stress);
            let mut facet = [None, None];
            let mut stop = [None, None];
            let mut facet_pressure = [None, None];
            for (k, f) in self.facets.iter().enumerate() {
                if f.upper == up {
                    let slot = match f.kind {
                        PosteriorContact::Articular => {
                            facet_pressure[f.side] = Some(state.contacts[k].max_pressure);
                            &mut facet
                        }
                        PosteriorContact::BonyStop => &mut stop,
                    };
                    slot[f.side] = Some(state.contacts[k].normal_force);
                }
            }
            let height = disc_height_change(d, &state.displacements, &self.vertebra(lo).frame.z);
            let fibre = max_fibre_strain(&model.mesh, &d.annulus, &state.displacements);
            segments.push(SegmentResult {
                upper: self.levels[up],
                lower: self.levels[lo],
                rotation_deg: rot.map(f64::to_degrees),
                idp_mpa: idp,
                facet_force_n: facet,
                stop_force_n: stop,
                facet_pressure_max_mpa: facet_pressure,
                disc_height_change_mm: height,
                annulus_fibre_strain_max: fibre,
            });
        }
        let beams = model
            .beams
            .iter()
            .zip(&state.beams)
            .map(|(b, s)| BeamResult {
                name: b.name.clone(),
                max_von_mises_mpa: s.max_von_mises,
                axial_force_n: s.axial_force,
            })
            .collect();
        let top = 0;
        let bottom = self.levels.len() - 1;
        let total = relative_rotation_from(
            &state.bodies[top],
            &state.bodies[bottom],
            base(top, bottom),
            &self.frame_matrix(top),
        );
        // The connector carries K q on the screw's motion relative to its vertebra (local z
        // from the entry into the bone): the screw pulled out moves along -z, and the load
        // pulling it out is the opposite of what the connector carries along z.
        let anchorages = model
            .connectors
            .iter()
            .zip(&state.connectors)
            .filter(|(c, _)| index.screw_bodies.iter().any(|&(sb, _)| sb == c.b.body))
            .map(|(c, st)| AnchorageResult {
                name: c.name.trim_end_matches(" anchorage").to_string(),
                pullout_force_n: -st.force[2],
                transverse_force_n: st.force[0].hypot(st.force[1]),
                bending_moment_nmm: st.force[3].hypot(st.force[4]),
                pullout_mm: -st.relative[2],
            })
            .collect();
        Sample {
            moment_nm: moment / 1000.0,
            segments,
            beams,
            total_rotation_deg: total.map(f64::to_degrees),
            bone_stress: Vec::new(),
            anchorages,
        }
    }

    pub(crate) fn read_results(
        &self,
        case: &LoadCase,
        model: &nl::Model,
        index: &ModelIndex,
        result: NlResult,
        seconds: f64,
    ) -> CaseResult {
        // The post-operative neutral pose (implants seated), when the model has one.
        let seated_state = index
            .seated_step
            .and_then(|k| result.steps.get(k))
            .and_then(|sr| sr.state.as_ref());
        let seated_bodies = seated_state.map(|s| &s.bodies);
        let mut samples = Vec::new();
        for &(step, at, moment) in &index.sample_steps {
            let Some(sr) = result.steps.get(step) else {
                continue;
            };
            let state = match at {
                None => sr.state.as_ref(),
                Some(f) => sr
                    .records
                    .iter()
                    .find(|(g, _)| (g - f).abs() < 1e-9)
                    .map(|(_, s)| s),
            };
            let Some(state) = state else {
                continue;
            };
            samples.push(self.sample(model, index, state, moment, seated_bodies));
        }
        // The seated pose itself, from the pre-operative geometry: what the distraction does.
        let seated = seated_state
            .filter(|_| result.converged)
            .map(|state| self.sample(model, index, state, 0.0, None));
        let deformed = result
            .steps
            .last()
            .and_then(|sr| sr.state.as_ref())
            .filter(|_| result.converged)
            .map(|state| {
                let mut node0 = 0;
                let mut elem0 = 0;
                let mut disc_displacements = Vec::new();
                let mut disc_von_mises = Vec::new();
                let mut disc_stress = Vec::new();
                for d in &self.discs {
                    let (nn, ne) = (d.mesh.mesh.num_nodes(), d.mesh.mesh.num_elements());
                    disc_displacements.push(state.displacements[node0..node0 + nn].to_vec());
                    disc_stress.push(state.element_stress[elem0..elem0 + ne].to_vec());
                    disc_von_mises.push(
                        state.element_stress[elem0..elem0 + ne]
                            .iter()
                            .map(spinetwin_fem::post::von_mises)
                            .collect(),
                    );
                    node0 += nn;
                    elem0 += ne;
                }
                // A block in contact moves on its own copies of the disc's nodes: its
                // elements are drawn where the copies are.
                for (di, pairs) in &index.block_nodes {
                    for &(local, global) in pairs {
                        disc_displacements[*di][local] = state.displacements[global];
                    }
                }
                Deformed {
                    bodies: state.bodies.clone(),
                    disc_displacements,
                    disc_von_mises,
                    disc_stress,
                    fibre_forces: state.spring_forces.clone(),
                    beam_von_mises: state.beams.iter().map(|b| b.max_von_mises).collect(),
                    // The posterior contacts are the model's first contact pairs, in
                    // `self.facets` order.
                    facet_pressure: state.contacts[..self.facets.len()]
                        .iter()
                        .map(|c| c.pressure.clone())
                        .collect(),
                }
            });
        let implant_loads = match (result.converged, result.steps.last()) {
            (true, Some(sr)) => sr
                .state
                .as_ref()
                .map(|state| self.implant_loads(model, index, state))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        CaseResult {
            deformed,
            implant_loads,
            bone_field: None,
            seated,
            case: case.clone(),
            converged: result.converged,
            failure: result.failure.clone(),
            iterations: result.iterations,
            equations: result.num_equations,
            seconds,
            samples: if result.converged {
                samples
            } else {
                Vec::new()
            },
        }
    }
}

impl Twin {
    /// The loads of the implants on their vertebrae in `state` (see [`ImplantLoad`]).
    fn implant_loads(
        &self,
        model: &nl::Model,
        index: &ModelIndex,
        state: &nl::StepState,
    ) -> Vec<ImplantLoad> {
        let rot = |b: usize| Matrix3::from_fn(|i, j| state.bodies[b].rotation[i][j]);
        // An elastically anchored screw passes the rod's load on to its vertebra (it carries
        // nothing else): the same load at the head, on the vertebra.
        let owner = |b: usize| {
            index
                .screw_bodies
                .iter()
                .find(|(s, _)| *s == b)
                .map_or(b, |&(_, v)| v)
        };
        let mut out = Vec::new();
        for (beam, bs) in model.beams.iter().zip(&state.beams) {
            for (end, g) in [(&beam.a, &bs.end_a_global), (&beam.b, &bs.end_b_global)] {
                // The beam's end load is what the body exerts on it; the body feels the
                // opposite, turned back into its reference orientation.
                let body = owner(end.body);
                let rt = rot(body).transpose();
                let f = rt * -Vector3::new(g[0], g[1], g[2]);
                let m = rt * -Vector3::new(g[3], g[4], g[5]);
                out.push(ImplantLoad {
                    name: beam.name.clone(),
                    body,
                    kind: ImplantLoadKind::Rod {
                        at: end.at,
                        force_n: f.into(),
                        moment_nmm: m.into(),
                    },
                });
            }
        }
        if self.implants.disc_blocks.is_empty() {
            return out;
        }
        let mut elem0 = Vec::with_capacity(self.discs.len());
        let mut e0 = 0;
        for d in &self.discs {
            elem0.push(e0);
            e0 += d.mesh.mesh.num_elements();
        }
        // Only cages are implants with a footprint on the endplates; a fusion mass is bone.
        for (bi, block) in self
            .implants
            .disc_blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.kind == DiscBlockKind::Cage)
        {
            let d = &self.discs[block.disc];
            let m = &d.mesh.mesh;
            for (superior, body, nodes) in [
                (false, d.upper, &d.mesh.upper_nodes),
                (true, d.upper + 1, &d.mesh.lower_nodes),
            ] {
                let on: std::collections::HashSet<usize> = nodes.iter().copied().collect();
                // A block in contact is a rigid body (no stress): its load on this endplate
                // is the contact pressure at its face nodes (the friction's shear is not
                // reported per point and is left out).
                let pressure: Option<HashMap<usize, f64>> = index
                    .block_contacts
                    .iter()
                    .find(|bc| bc.block == bi && bc.upper != superior)
                    .map(|bc| {
                        let p = &state.contacts[bc.pair].pressure;
                        bc.nodes.iter().copied().zip(p.iter().copied()).collect()
                    });
                // The body's rotation turns the (current) Cauchy stress back to the
                // reference orientation; the block strains little, so reference faces do.
                let r = rot(body);
                let (mut faces, mut forces) = (Vec::new(), Vec::new());
                for (e, centre, fnodes) in faces_on(m, block.elements.iter().copied(), &on) {
                    let c = state.element_stress[elem0[block.disc] + e];
                    // Voigt [xx, yy, zz, xy, xz, yz].
                    let sigma = Matrix3::new(c[0], c[3], c[4], c[3], c[1], c[5], c[4], c[5], c[2]);
                    let sigma_ref = r.transpose() * sigma * r;
                    let pts: Vec<Vector3<f64>> = fnodes.iter().map(|&n| v3(&m.nodes[n])).collect();
                    // Area vector of the (planar or slightly warped) polygon.
                    let mut area = Vector3::zeros();
                    for k in 1..pts.len() - 1 {
                        area += 0.5 * (pts[k] - pts[0]).cross(&(pts[k + 1] - pts[0]));
                    }
                    let fc = pts.iter().sum::<Vector3<f64>>() / pts.len() as f64;
                    // Outward from the block: away from the element's centre.
                    if area.dot(&(fc - centre)) < 0.0 {
                        area = -area;
                    }
                    // Traction on the block is sigma n; the vertebra feels -sigma n. In
                    // contact, the pressure pushes the vertebra away from the block.
                    let force = match &pressure {
                        Some(p) => {
                            let mean = fnodes.iter().map(|n| p.get(n).copied().unwrap_or(0.0));
                            area * (mean.sum::<f64>() / fnodes.len() as f64)
                        }
                        None => -(sigma_ref * area),
                    };
                    faces.push(pts.iter().map(|p| [p.x, p.y, p.z]).collect());
                    forces.push(force.into());
                }
                if !faces.is_empty() {
                    out.push(ImplantLoad {
                        name: block.name.clone(),
                        body,
                        kind: ImplantLoadKind::Endplate {
                            superior,
                            faces,
                            forces_n: forces,
                        },
                    });
                }
            }
        }
        out
    }
}

/// Follower load path: this far posterior of the body centre (mm). Patwardhan et al. 1999
/// place the path near the instantaneous centres of rotation, in the posterior part of the
/// disc; with the path through the body centres the follower load flexes the spine.
pub const FOLLOWER_OFFSET_MM: f64 = 4.0;

/// Where each disc and each recorded state sit in the FE model.
#[derive(Clone, Debug)]
pub struct ModelIndex {
    /// Per disc (cranial first).
    pub discs: Vec<DiscIndex>,
    /// `(step index, load factor within the step (None: its end), moment in N mm)` of each
    /// recorded state.
    pub sample_steps: Vec<(usize, Option<f64>, f64)>,
    /// The load-free step that drives the distracting implants in, when there is one: its
    /// end is the pose every rotation is measured from.
    pub seated_step: Option<usize>,
    /// Disc blocks in contact with the endplates ([`BlockInterface::Contact`]).
    pub block_contacts: Vec<BlockContact>,
    /// Per block in contact, its disc and the pairs (disc-local node, model node) of the
    /// copies of the disc's nodes that only its elements use (the disc's own nodes there
    /// are left out of the FE model): read the block's motion from these.
    pub block_nodes: Vec<(usize, Vec<(usize, usize)>)>,
    /// `(block, first spring)` of each block in contact: its six holding bars are
    /// `Model::springs[first..first + 6]`.
    pub block_holds: Vec<(usize, usize)>,
    /// `(model body, vertebra)` of each elastically anchored screw ([`crate::anchorage`]):
    /// the body is the screw, joined to its vertebra by a connector.
    pub screw_bodies: Vec<(usize, usize)>,
}

/// The faces of `elements` of mesh `m` whose nodes all lie in `on` (e.g. an endplate's
/// nodes): `(element, element centre (mm), face nodes)`, in element then face order.
pub(crate) fn faces_on(
    m: &Mesh,
    elements: impl Iterator<Item = usize>,
    on: &std::collections::HashSet<usize>,
) -> Vec<(usize, Vector3<f64>, Vec<usize>)> {
    let mut out = Vec::new();
    for e in elements {
        let en = m.element_nodes(e);
        let centre: Vector3<f64> =
            en.iter().map(|&n| v3(&m.nodes[n])).sum::<Vector3<f64>>() / en.len() as f64;
        for f in m.kinds[e].faces() {
            let fnodes: Vec<usize> = f.iter().map(|&k| en[k]).collect();
            if fnodes.iter().all(|n| on.contains(n)) {
                out.push((e, centre, fnodes));
            }
        }
    }
    out
}

/// The contact pair between disc block `b` (rigid body `block_body`) and the upper
/// (`upper`) or lower endplate of disc `d`: the block's face nodes on that endplate are the
/// slave points on the block's body (each with its share of the faces' area), the disc's whole endplate
/// surface (every element face on it, fixed to the vertebra) is the master, so the block's
/// rim lies inside it. Also returns the disc node of each slave point.
fn block_contact_pair(
    d: &TwinDisc,
    b: &DiscBlock,
    block_body: usize,
    upper: bool,
    friction: f64,
    seating_mm: f64,
) -> Result<(ContactPair, Vec<usize>), String> {
    let m = &d.mesh.mesh;
    let (body, on) = if upper {
        (d.upper, &d.mesh.upper_nodes)
    } else {
        (d.upper + 1, &d.mesh.lower_nodes)
    };
    let on: std::collections::HashSet<usize> = on.iter().copied().collect();
    let in_block: std::collections::HashSet<usize> = b.elements.iter().copied().collect();
    let mut master = Vec::new();
    let mut area: HashMap<usize, f64> = HashMap::new();
    for (e, centre, fnodes) in faces_on(m, 0..m.num_elements(), &on) {
        let p: Vec<Vector3<f64>> = fnodes.iter().map(|&n| v3(&m.nodes[n])).collect();
        // Fan triangles; the master normal points out of the vertebra, into the disc
        // (towards the element).
        let fc = p.iter().sum::<Vector3<f64>>() / p.len() as f64;
        let mut face_area = 0.0;
        for k in 1..p.len() - 1 {
            let (a, c) = (fnodes[k], fnodes[k + 1]);
            let nrm = (p[k] - p[0]).cross(&(p[k + 1] - p[0]));
            face_area += 0.5 * nrm.norm();
            let tri = if nrm.dot(&(centre - fc)) >= 0.0 {
                [fnodes[0], a, c]
            } else {
                [fnodes[0], c, a]
            };
            master.push(tri.map(|n| Point::Body {
                body,
                at: m.nodes[n],
            }));
        }
        if in_block.contains(&e) {
            for n in &fnodes {
                *area.entry(*n).or_insert(0.0) += face_area / fnodes.len() as f64;
            }
        }
    }
    if area.is_empty() {
        return Err("the block has no face on this endplate".into());
    }
    let mut nodes: Vec<(usize, f64)> = area.into_iter().collect();
    nodes.sort_by_key(|x| x.0);
    let slave = nodes
        .iter()
        .map(|&(n, _)| Point::Body {
            body: block_body,
            at: m.nodes[n],
        })
        .collect();
    let penalty = BlockInterface::penalty(b.e, d.mesh.height_mm[1]);
    let pair = ContactPair {
        name: format!(
            "{} {} endplate",
            b.name,
            if upper { "upper" } else { "lower" }
        ),
        slave,
        slave_area: nodes.iter().map(|x| x.1).collect(),
        master,
        penalty,
        clearance: seating_mm,
        friction,
        augmented: None,
        tangential_penalty: Some(BLOCK_TANGENTIAL_PENALTY_RATIO * penalty),
        search_depth: None,
        slave_faces: vec![],
    };
    Ok((pair, nodes.iter().map(|x| x.0).collect()))
}

/// A disc's place in the FE model.
#[derive(Clone, Debug)]
pub struct DiscIndex {
    /// Upper vertebra index.
    pub upper: usize,
    /// Nucleus elements.
    pub nucleus: Vec<usize>,
    /// Nodes on the upper endplate.
    pub upper_nodes: Vec<usize>,
    /// Nodes on the lower endplate.
    pub lower_nodes: Vec<usize>,
    /// Annulus elements with their two reference fibre directions.
    pub annulus: Vec<(usize, [[f64; 3]; 2])>,
}

/// Results of one motion segment at one load level.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentResult {
    /// Upper vertebra.
    pub upper: Level,
    /// Lower vertebra.
    pub lower: Level,
    /// Rotation of the upper vertebra relative to the lower, in the lower vertebra's
    /// anatomical frame (degrees): flexion(+)/extension(-) about x, left(+)/right(-)
    /// lateral bending about y, left(+)/right(-) axial rotation about z. Components of the
    /// rotation vector (helical axis times angle).
    pub rotation_deg: [f64; 3],
    /// Intradiscal pressure: volume-weighted mean hydrostatic pressure of the nucleus (MPa).
    pub idp_mpa: f64,
    /// Normal contact force of the left and right facet joints (N); `None` when the joint
    /// is not modelled.
    pub facet_force_n: [Option<f64>; 2],
    /// Normal contact force of the left and right bony stops (N); `None` where none is
    /// modelled. Results written before it read none.
    #[serde(default)]
    pub stop_force_n: [Option<f64>; 2],
    /// Largest contact pressure of the left and right facet joints (MPa): that of the most
    /// compressed point of the cartilage penalty, `None` when the joint is not modelled.
    /// Results written before it read none.
    #[serde(default)]
    pub facet_pressure_max_mpa: [Option<f64>; 2],
    /// Change of the mean disc height (mm, negative = compressed).
    pub disc_height_change_mm: f64,
    /// Largest engineering strain of the annulus fibres (`|F a| - 1` over both families and
    /// every quadrature point of the disc's annulus): the most stretched fibre. Result files
    /// written before this field read 0.
    #[serde(default)]
    pub annulus_fibre_strain_max: f64,
}

/// All segments at one load level.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    /// Applied moment (N m); 0 for follower-only cases.
    pub moment_nm: f64,
    /// Per segment, cranial first.
    pub segments: Vec<SegmentResult>,
    /// Per implant beam (rod), in [`Implants::beams`] order; empty without implants.
    #[serde(default)]
    pub beams: Vec<BeamResult>,
    /// Rotation of the top vertebra relative to the bottom (fixed) one over the whole twin
    /// (degrees), as rotation-vector components on the top vertebra's reference anatomical
    /// axes, the axes the pure moment is applied about: component `a` times the sign of
    /// [`crate::loadcase::Motion::axis_sign`] is the total ROM in the loaded direction.
    #[serde(default)]
    pub total_rotation_deg: [f64; 3],
    /// Bone stress per deformable vertebra (full fidelity only, [`crate::full`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bone_stress: Vec<crate::full::BoneStress>,
    /// The load on each elastically anchored screw's hold in the bone
    /// ([`crate::anchorage`]), in [`Implants::screws`] order of the anchored ones; empty
    /// when no screw is anchored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchorages: Vec<AnchorageResult>,
}

/// The load a screw's anchorage carries at one load level: what the screw, loaded by its
/// rods, puts on the bone, at its entry point and along its axis.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnchorageResult {
    /// Screw name.
    pub name: String,
    /// Force along the screw pulling it out of the bone (N; negative: pushing it in).
    pub pullout_force_n: f64,
    /// Force across the screw (N), the toggle load.
    pub transverse_force_n: f64,
    /// Bending moment about the entry point (N mm).
    pub bending_moment_nmm: f64,
    /// How far the screw has moved out of the bone along its axis (mm; negative: in).
    pub pullout_mm: f64,
}

/// Results of one implant beam at one load level.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BeamResult {
    /// Beam name.
    pub name: String,
    /// Largest von Mises stress at the outer fibre of the beam's end sections (MPa).
    pub max_von_mises_mpa: f64,
    /// Axial force (N, tension positive).
    pub axial_force_n: f64,
}

/// The result of one load case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case.
    pub case: LoadCase,
    /// True when every step converged. When false, `samples` is empty.
    pub converged: bool,
    /// Why not.
    pub failure: Option<String>,
    /// Newton iterations.
    pub iterations: usize,
    /// Equations.
    pub equations: usize,
    /// Wall time (s).
    pub seconds: f64,
    /// Recorded states, in increasing moment.
    pub samples: Vec<Sample>,
    /// The post-operative neutral pose after distracting implants were driven in (a cage
    /// taller than its disc space, [`BlockInterface::Contact`]), before any load, with its
    /// rotations and disc heights measured from the pre-operative geometry: what the
    /// distraction itself does (converged cases with such an implant only). Every sample's
    /// rotations are measured from this pose.
    #[serde(default)]
    pub seated: Option<Sample>,
    /// The deformed twin at the full load (converged cases only), for pictures; not saved
    /// with the results.
    #[serde(skip)]
    pub deformed: Option<Deformed>,
    /// What each implant puts on its vertebrae at the full load (converged cases with
    /// implants only): the loads of the bone checks with deformable vertebrae.
    #[serde(default)]
    pub implant_loads: Vec<ImplantLoad>,
    /// The deformable vertebrae at the full load (full fidelity, converged cases only), for
    /// output; not saved with the results.
    #[serde(skip)]
    pub bone_field: Option<crate::full::BoneField>,
}

/// The load an implant puts on one vertebra at the full load of a case, in the vertebra's
/// reference (unloaded) orientation: vectors are rotated back by the vertebra's rotation, so
/// they apply to the vertebra as it lies in the CT.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImplantLoad {
    /// The implant (beam or disc block name).
    pub name: String,
    /// The loaded vertebra ([`Twin::levels`] index).
    pub body: usize,
    /// Where and how it loads the vertebra.
    pub kind: ImplantLoadKind,
}

/// How an implant loads a vertebra (see [`ImplantLoad`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ImplantLoadKind {
    /// A rod clamped at `at` (a screw head; mm, LPS, reference configuration): force (N) and
    /// moment about `at` (N mm) the rod exerts on the vertebra.
    Rod {
        /// Clamp point.
        at: [f64; 3],
        /// Force (N).
        force_n: [f64; 3],
        /// Moment about `at` (N mm).
        moment_nmm: [f64; 3],
    },
    /// A disc block (an interbody cage) bonded to an endplate of the vertebra: its element
    /// faces on that endplate (corner points, mm, LPS, reference configuration) and the
    /// force through each face onto the vertebra (N), from the block's Cauchy stress.
    Endplate {
        /// True for the vertebra's superior endplate (the block lies above it).
        superior: bool,
        /// Face corner points.
        faces: Vec<Vec<[f64; 3]>>,
        /// Force through each face (N).
        forces_n: Vec<[f64; 3]>,
    },
}

/// The deformed twin at one load: what a 3D picture of the solved case needs.
#[derive(Clone, Debug, Default)]
pub struct Deformed {
    /// Pose of every vertebra ([`Twin::levels`] order) about its reference point, the origin
    /// of its anatomical frame.
    pub bodies: Vec<BodyState>,
    /// Per disc ([`Twin::discs`] order): displacement of each node of its mesh (mm).
    pub disc_displacements: Vec<Vec<[f64; 3]>>,
    /// Per disc: von Mises stress of each element of its mesh (MPa, mean over the
    /// integration points); 0 for elements the model leaves out (removed tissue).
    pub disc_von_mises: Vec<Vec<f64>>,
    /// Per disc: the stress tensor of each element of its mesh (MPa, `[xx, yy, zz, xy, xz,
    /// yz]`, mean over the integration points).
    pub disc_stress: Vec<Vec<[f64; 6]>>,
    /// Tension of every ligament fibre ([`Twin::fibres`] order, N).
    pub fibre_forces: Vec<f64>,
    /// Largest von Mises stress of every implant beam ([`Implants::beams`] order, MPa).
    pub beam_von_mises: Vec<f64>,
    /// Contact pressure at every slave point of every posterior contact ([`Twin::facets`]
    /// order, then [`FacetGeometry::slave`] order; MPa).
    pub facet_pressure: Vec<Vec<f64>>,
}

impl Deformed {
    /// Where the point `p` (reference configuration, mm) fixed to vertebra `body` is now.
    pub fn body_point(&self, twin: &Twin, body: usize, p: P3) -> P3 {
        let s = &self.bodies[body];
        let o = twin.vertebra(body).frame.origin;
        let r = Matrix3::from_fn(|i, j| s.rotation[i][j]);
        let d = r * (v3(&p) - v3(&o));
        [0, 1, 2].map(|k| o[k] + s.translation[k] + d[k])
    }
}

impl CaseResult {
    /// The state at the full load, when converged.
    pub fn last(&self) -> Option<&Sample> {
        self.samples.last()
    }

    /// The moment-rotation curve of every segment, cranial first: the segment's name
    /// (`L4-L5`) and its points (moment in N m, rotation in the loaded plane in degrees),
    /// from the unloaded state (0, 0) when the case has no follower load (with one, the
    /// pose at zero moment is not sampled), then at each sampled moment. Empty for a case
    /// without a moment or that did not converge.
    pub fn moment_rotation(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let (Some((motion, _)), true, Some(first)) =
            (self.case.moment, self.converged, self.samples.first())
        else {
            return Vec::new();
        };
        let (axis, sign) = motion.axis_sign();
        let start = (self.case.follower_n == 0.0).then_some((0.0, 0.0));
        first
            .segments
            .iter()
            .enumerate()
            .map(|(k, g)| {
                let points = start
                    .into_iter()
                    .chain(
                        self.samples
                            .iter()
                            .map(|s| (s.moment_nm, s.segments[k].rotation_deg[axis] * sign)),
                    )
                    .collect();
                (format!("{}-{}", g.upper.name(), g.lower.name()), points)
            })
            .collect()
    }
}

/// Rotation of body `up` relative to body `lo`, in the anatomical frame `frame` (columns
/// x, y, z) of the lower body: rotation-vector components (rad).
pub fn relative_rotation(up: &BodyState, lo: &BodyState, frame: &Matrix3<f64>) -> [f64; 3] {
    relative_rotation_from(up, lo, None, frame)
}

/// [`relative_rotation`] measured from the relative pose of `base = (upper, lower)` (e.g.
/// the post-operative neutral pose after a distracting implant was seated) rather than
/// from the reference configuration: the rotation that takes the upper body from its base
/// pose relative to the lower one to its current one, seen from the lower body.
pub fn relative_rotation_from(
    up: &BodyState,
    lo: &BodyState,
    base: Option<(&BodyState, &BodyState)>,
    frame: &Matrix3<f64>,
) -> [f64; 3] {
    let rel_of = |up: &BodyState, lo: &BodyState| {
        let ru = Matrix3::from_fn(|i, j| up.rotation[i][j]);
        let rl = Matrix3::from_fn(|i, j| lo.rotation[i][j]);
        // Relative rotation seen from the lower body.
        rl.transpose() * ru
    };
    let mut rel = rel_of(up, lo);
    if let Some((bu, bl)) = base {
        rel *= rel_of(bu, bl).transpose();
    }
    // Expressed on the lower body's anatomical axes.
    let local = frame.transpose() * rel * frame;
    let v = Rotation3::from_matrix_unchecked(local).scaled_axis();
    [v.x, v.y, v.z]
}

/// Volume-weighted mean of `-trace(sigma)/3` over `elements` (reference volumes).
fn nucleus_pressure(model: &nl::Model, elements: &[usize], stress: &[[f64; 6]]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for &e in elements {
        let v = element_volume(&model.mesh, e);
        let s = stress[e];
        num += v * -(s[0] + s[1] + s[2]) / 3.0;
        den += v;
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// The largest engineering strain `|F a| - 1` of either fibre family `a` over the
/// quadrature points of the annulus elements `annulus` (model element, reference fibre
/// directions) under the displacements `u`; 0 without annulus. Compressed fibres give
/// negative strains; the largest is the most stretched fibre.
fn max_fibre_strain(mesh: &Mesh, annulus: &[(usize, [[f64; 3]; 2])], u: &[[f64; 3]]) -> f64 {
    let mut worst = f64::NEG_INFINITY;
    for &(e, dirs) in annulus {
        let kind = mesh.kinds[e];
        let nodes = mesh.element_nodes(e);
        for &(p, _) in kind.quadrature() {
            let (_, dn) = kind.shape(p);
            let mut j = Matrix3::<f64>::zeros();
            for (a, &n) in nodes.iter().enumerate() {
                for i in 0..3 {
                    for k in 0..3 {
                        j[(i, k)] += mesh.nodes[n][i] * dn[a][k];
                    }
                }
            }
            let Some(jinv) = j.try_inverse() else {
                continue;
            };
            // F = I + sum_a u_a (J^-T dN_a)^T
            let mut f = Matrix3::<f64>::identity();
            for (a, &n) in nodes.iter().enumerate() {
                let g = jinv.transpose() * Vector3::new(dn[a][0], dn[a][1], dn[a][2]);
                f += Vector3::from(u[n]) * g.transpose();
            }
            for d in dirs {
                worst = worst.max((f * Vector3::from(d)).norm() - 1.0);
            }
        }
    }
    if worst.is_finite() {
        worst
    } else {
        0.0
    }
}

/// Reference volume of an element by its quadrature rule.
fn element_volume(mesh: &Mesh, e: usize) -> f64 {
    let kind = mesh.kinds[e];
    let x: Vec<[f64; 3]> = mesh
        .element_nodes(e)
        .iter()
        .map(|&n| mesh.nodes[n])
        .collect();
    kind.quadrature()
        .iter()
        .map(|&(p, w)| {
            let (_, dn) = kind.shape(p);
            let mut j = Matrix3::<f64>::zeros();
            for (a, xa) in x.iter().enumerate() {
                for i in 0..3 {
                    for k in 0..3 {
                        j[(i, k)] += xa[i] * dn[a][k];
                    }
                }
            }
            w * j.determinant()
        })
        .sum()
}

/// Mean displacement of the upper endplate nodes minus that of the lower ones, along the
/// lower vertebra's axis.
fn disc_height_change(d: &DiscIndex, u: &[[f64; 3]], axis: &P3) -> f64 {
    let mean = |nodes: &[usize]| -> Vector3<f64> {
        nodes
            .iter()
            .map(|&n| Vector3::from(u[n]))
            .sum::<Vector3<f64>>()
            / nodes.len().max(1) as f64
    };
    (mean(&d.upper_nodes) - mean(&d.lower_nodes)).dot(&v3(axis))
}

#[cfg(test)]
mod fibre_strain_tests {
    use super::*;

    /// On a block of hexahedra: a 10 % stretch along x strains an x fibre by 0.1 and leaves
    /// a y fibre at 0; a rigid 30 deg turn strains neither; a fibre at 45 deg in the x-y
    /// plane stretches by sqrt((1.1^2 + 1) / 2) - 1.
    #[test]
    fn the_fibre_strain_follows_the_deformation_gradient() {
        let mesh = spinetwin_fem::mesh::hex_box_mesh([2.0, 1.0, 1.0], [2, 1, 1]).unwrap();
        let all: Vec<usize> = (0..mesh.num_elements()).collect();
        let with = |dirs: [[f64; 3]; 2]| -> Vec<(usize, [[f64; 3]; 2])> {
            all.iter().map(|&e| (e, dirs)).collect()
        };
        let stretch: Vec<[f64; 3]> = mesh.nodes.iter().map(|p| [0.1 * p[0], 0.0, 0.0]).collect();
        let s = max_fibre_strain(&mesh, &with([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), &stretch);
        assert!((s - 0.1).abs() < 1e-12, "{s}");
        let s = max_fibre_strain(&mesh, &with([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), &stretch);
        assert!(s.abs() < 1e-12, "{s}");
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let s = max_fibre_strain(&mesh, &with([[h, h, 0.0], [h, -h, 0.0]]), &stretch);
        assert!(
            (s - ((1.21f64 + 1.0) / 2.0).sqrt() + 1.0).abs() < 1e-12,
            "{s}"
        );
        let r = Rotation3::from_axis_angle(&Vector3::z_axis(), 30f64.to_radians());
        let turn: Vec<[f64; 3]> = mesh
            .nodes
            .iter()
            .map(|p| (r * Vector3::from(*p) - Vector3::from(*p)).into())
            .collect();
        let s = max_fibre_strain(&mesh, &with([[1.0, 0.0, 0.0], [h, h, 0.0]]), &turn);
        assert!(s.abs() < 1e-12, "{s}");
        assert_eq!(max_fibre_strain(&mesh, &[], &turn), 0.0);
    }
}
