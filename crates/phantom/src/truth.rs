//! Ground truth of a phantom (serialized as `truth.json`). See the crate documentation for
//! the schema. Positions are patient LPS millimetres, angles degrees.

use crate::scene::{Scene, TissueHu};
use crate::sdf::V3;
use crate::spec::PhantomSpec;
use crate::spine::{Joint, VertebraModel, FACET_GAP, PEDICLE_T_POST};
use serde::{Deserialize, Serialize};
use spinetwin_anatomy::pedicle::{corridor_axis, isthmus, IsthmusSlab};
use spinetwin_anatomy::{Level, CANAL_LABEL};
use spinetwin_imaging::Grid;

/// Version of the truth.json schema.
pub const TRUTH_SCHEMA_VERSION: u32 = 1;

/// A point in patient LPS coordinates (mm).
pub type Point = [f64; 3];
/// A unit vector in patient LPS coordinates.
pub type Direction = [f64; 3];

fn pt(v: V3) -> Point {
    [v.x, v.y, v.z]
}

/// Everything known about a phantom by construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// [`TRUTH_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The spec the phantom was built from (angles in degrees).
    pub spec: PhantomSpec,
    /// The voxel grid of the CT and label volumes.
    pub grid: GridTruth,
    /// Every label value that can occur in the label map, with its name.
    pub labels: Vec<LabelEntry>,
    /// Nominal tissue HU values (before partial volume, blur and noise).
    pub tissue_hu: TissueHu,
    /// Vertebrae, cranial to caudal.
    pub vertebrae: Vec<VertebraTruth>,
    /// Labelled discs, cranial to caudal.
    pub discs: Vec<DiscTruth>,
    /// Angles measured from the placed endplates.
    pub angles: AngleTruth,
}

/// Grid geometry (axis-aligned LPS: i = +x Left, j = +y Posterior, k = +z Superior).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridTruth {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Voxel size (mm).
    pub spacing_mm: [f64; 3],
    /// LPS position of the centre of voxel (0, 0, 0).
    pub origin_mm: Point,
    /// Orientation code of the i, j, k axes ("LPS").
    pub orientation: String,
}

/// One label value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEntry {
    /// Value in the label map.
    pub label: u16,
    /// Name ("L3", "L3-L4 disc", "spinal canal").
    pub name: String,
    /// "vertebra", "disc" or "canal".
    pub kind: String,
}

/// A rigid anatomical frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameTruth {
    /// Origin: the centre of the vertebral body (mid-height of the centre column).
    pub origin: Point,
    /// Local x: towards the patient's left.
    pub x_axis: Direction,
    /// Local y: posterior.
    pub y_axis: Direction,
    /// Local z: superior, along the body axis.
    pub z_axis: Direction,
}

/// An endplate: centre of its rim plane and outward unit normal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndplateTruth {
    /// Centre of the endplate (on the rim plane, on the body's centre column).
    pub centre: Point,
    /// Outward unit normal (superior endplate: up, inferior endplate: down).
    pub normal: Direction,
}

/// A pedicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PedicleTruth {
    /// Where the pedicle axis leaves the posterior bone surface (screw entry point).
    pub entry: Point,
    /// Unit vector of the axis from the entry towards the vertebral body.
    pub direction: Direction,
    /// Length (mm) from the entry to the anterior cortex of the body along the axis.
    pub axis_length_mm: f64,
    /// Minimum (isthmus) width, transverse, mm: the narrowest bone chord across the axis,
    /// normal to it in the transverse plane, along the pedicle (narrower than the pedicle's
    /// elliptic cylinder where the spinal canal cuts into it).
    pub min_width_mm: f64,
    /// Minimum (isthmus) height, mm.
    pub min_height_mm: f64,
}

/// Facet surface centres: the centroid of each articular surface, the part of the process's
/// joint face that faces the partner process across the joint space (null where the vertebra
/// has no such process, e.g. no inferior facets on the sacrum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetTruth {
    /// Superior articular facet, left.
    pub superior_left: Point,
    /// Superior articular facet, right.
    pub superior_right: Point,
    /// Inferior articular facet, left.
    pub inferior_left: Option<Point>,
    /// Inferior articular facet, right.
    pub inferior_right: Option<Point>,
    /// Unit normal of the superior facets (left, right), facing posteromedially.
    pub superior_normals: [Direction; 2],
    /// Facet angle to the sagittal plane (degrees), superior facets.
    pub superior_angle_deg: f64,
}

/// One vertebra.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertebraTruth {
    /// "L3".
    pub level: String,
    /// VerSe label.
    pub label: u16,
    /// Centroid of the vertebral body solid (for S1: of the first sacral segment, down to
    /// the plane one body height below its superior endplate).
    pub body_centroid: Point,
    /// Local anatomical frame.
    pub frame: FrameTruth,
    /// Superior endplate.
    pub superior_endplate: EndplateTruth,
    /// Inferior endplate (null for the sacrum).
    pub inferior_endplate: Option<EndplateTruth>,
    /// Left pedicle.
    pub pedicle_left: PedicleTruth,
    /// Right pedicle.
    pub pedicle_right: PedicleTruth,
    /// Facet centres.
    pub facets: FacetTruth,
    /// Tip of the spinous process: its most posterior point along the local y axis (median
    /// crest for the sacrum).
    pub spinous_tip: Point,
    /// Tip of the left transverse process: its most lateral point along the local x axis
    /// (null for the sacrum).
    pub transverse_tip_left: Option<Point>,
    /// Lateral tip of the right transverse process.
    pub transverse_tip_right: Option<Point>,
    /// Anterior body height between the endplate rims (mm; sacrum: first segment).
    pub body_height_anterior_mm: f64,
    /// Posterior body height (mm).
    pub body_height_posterior_mm: f64,
    /// Body height at the frame's origin (mm), between the same planes. Truth files written
    /// before this field read 0.
    #[serde(default)]
    pub body_height_middle_mm: f64,
    /// Superior endplate width (left-right, mm).
    pub endplate_width_mm: f64,
    /// Superior endplate depth (antero-posterior in the mid-sagittal plane, mm).
    pub endplate_depth_mm: f64,
    /// Spinal canal width (interpedicular, mm).
    pub canal_width_mm: f64,
    /// Spinal canal depth (posterior body wall to the lamina junction, mm).
    pub canal_depth_mm: f64,
    /// The bony spinal canal's cross-section in the vertebra's transverse plane through its
    /// frame origin (the pedicles' level): the canal solid less the bone, where the pedicles
    /// narrow it below `canal_width_mm`. Truth files written before this field read zeros.
    #[serde(default)]
    pub canal_section: CanalSectionTruth,
}

/// A canal cross-section ([`VertebraTruth::canal_section`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanalSectionTruth {
    /// Area (mm^2).
    pub area_mm2: f64,
    /// Widest left-right extent (mm).
    pub width_mm: f64,
    /// Antero-posterior extent within 1 mm of the midline (mm).
    pub depth_mm: f64,
}

/// One labelled disc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscTruth {
    /// Vertebra above ("L4").
    pub upper: String,
    /// Vertebra below ("L5").
    pub lower: String,
    /// Label (100 + label of the upper vertebra).
    pub label: u16,
    /// Midpoint of the two facing endplate centres.
    pub centre: Point,
    /// Height between the endplate rim planes at the anterior rim (mm).
    pub height_anterior_mm: f64,
    /// Height at the centre (mm).
    pub height_middle_mm: f64,
    /// Height at the posterior rim (mm).
    pub height_posterior_mm: f64,
}

/// Angle between two adjacent vertebrae's facing endplates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentAngle {
    /// Upper vertebra.
    pub upper: String,
    /// Lower vertebra.
    pub lower: String,
    /// Sagittal angle (deg): positive = lordotic (disc taller anteriorly).
    pub sagittal_deg: f64,
    /// Coronal angle (deg): positive = disc taller on the patient's left.
    pub coronal_deg: f64,
}

/// A coronal Cobb angle and its end vertebrae.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CobbTruth {
    /// Unsigned angle (deg) between the superior endplate of the upper end vertebra and the
    /// inferior endplate of the lower end vertebra, projected on the coronal plane.
    pub angle_deg: f64,
    /// Upper end vertebra.
    pub upper_end: String,
    /// Lower end vertebra.
    pub lower_end: String,
}

/// Global and segmental angles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AngleTruth {
    /// Adjacent pairs, cranial to caudal.
    pub segments: Vec<SegmentAngle>,
    /// L1 superior endplate to S1 superior endplate, sagittal projection, positive =
    /// lordosis (null unless both L1 and S1 are in the phantom).
    pub lumbar_lordosis_l1_s1_deg: Option<f64>,
    /// Sacral slope: S1 superior endplate to the horizontal (null without S1).
    pub sacral_slope_deg: Option<f64>,
    /// Largest coronal angle over the lumbar vertebrae (null with fewer than two lumbar
    /// vertebrae).
    pub coronal_cobb: Option<CobbTruth>,
}

/// Sagittal angle (rad) of a normal: + = leaning posteriorly.
pub(crate) fn sag(n: V3) -> f64 {
    n.y.atan2(n.z)
}
/// Coronal angle (rad) of a normal: + = leaning to the left.
pub(crate) fn cor(n: V3) -> f64 {
    n.x.atan2(n.z)
}

fn upward_sup(v: &VertebraModel) -> V3 {
    v.frame.dir_to_world(v.sup_plane().1)
}
fn upward_inf(v: &VertebraModel) -> Option<V3> {
    v.inf_plane().map(|(_, n)| -v.frame.dir_to_world(n))
}

fn body_centroid(v: &VertebraModel) -> V3 {
    let step = 0.5;
    let a = v.morph.epw / 2.0 + 1.0;
    let (ylo, yhi) = (-v.morph.epd / 2.0 - 1.0, v.morph.epd / 2.0 + 2.0);
    let (zlo, zhi) = (-v.h / 2.0 - 3.0, v.h / 2.0 + 3.0);
    let (mut sum, mut n) = (V3::zeros(), 0usize);
    let mut z = zlo;
    while z <= zhi {
        let mut y = ylo;
        while y <= yhi {
            let mut x = -a;
            while x <= a {
                let l = V3::new(x, y, z);
                if v.body_sd(l) <= 0.0 {
                    sum += l;
                    n += 1;
                }
                x += step;
            }
            y += step;
        }
        z += step;
    }
    v.frame.to_world(sum / n.max(1) as f64)
}

/// Narrowest bone chord (mm) across the pedicle axis (`q` + t `u`, local), normal to it in the
/// transverse plane, over the length of the pedicle's cylinder (`t` from its posterior end
/// to `t_ant` in front of the isthmus): the width of bone a screw passes. Where the spinal
/// canal cuts into the cylinder's medial side (L4, L5) this is narrower than the cylinder's
/// diameter `2 rw`; elsewhere it is that diameter, which bounds it (`cap`; across another
/// axis than the cylinder's, the cut is wider and `cap` infinite).
fn pedicle_bone_width(v: &VertebraModel, q: V3, u: V3, cap: f64, t_ant: f64) -> f64 {
    let b = u.cross(&V3::z()).normalize();
    let bone = |p: V3| v.bone_sd_local(p) < 0.0;
    // The first exit from the bone along `d`: marched in 0.1 mm steps, then bisected.
    let reach = |p: V3, d: V3| {
        let mut r = 0.0;
        while r < 40.0 && bone(p + d * (r + 0.1)) {
            r += 0.1;
        }
        let (mut lo, mut hi) = (r, r + 0.1);
        for _ in 0..12 {
            let mid = (lo + hi) / 2.0;
            if bone(p + d * mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let mut width = f64::INFINITY;
    let mut t = -PEDICLE_T_POST;
    while t <= t_ant {
        let p = q + u * t;
        if bone(p) {
            width = width.min(reach(p, b) + reach(p, -b));
        }
        t += 0.25;
    }
    width.min(cap)
}

fn pedicle_truth(v: &VertebraModel, side: usize) -> PedicleTruth {
    let (q, u, rw, rh) = v.pedicle(side);
    let t_ant = v.pedicle_t_ant(side);
    let entry = walk_out(v, q, u);
    // Walk forward through the body until leaving its anterior cortex.
    let mut s = 0.0;
    let mut in_body = false;
    while s < 120.0 {
        let inside = v.body_sd(entry + u * (s + 0.25)) <= 0.0;
        if in_body && !inside {
            break;
        }
        in_body |= inside;
        s += 0.25;
    }
    PedicleTruth {
        entry: pt(v.frame.to_world(entry)),
        direction: pt(v.frame.dir_to_world(u)),
        axis_length_mm: s,
        min_width_mm: pedicle_bone_width(v, q, u, 2.0 * rw, t_ant),
        min_height_mm: 2.0 * rh,
    }
}

/// Sampling step (mm) of the analytic solids for the pedicle corridor: the isthmus slabs'
/// thickness (their sections sampled on a grid of half of it) and twice the step of the
/// clearance probes.
const CORRIDOR_STEP: f64 = 0.5;

/// The pedicle's screw corridor (local entry point and direction) on the analytic solid,
/// by the definition the segmentation's landmarks read from a label map: the isthmus is
/// the slab normal to the frame's y axis, between the body's posterior wall and 14 mm
/// behind it, where the bone lateral to the canal, between 1 mm above the inferior and 1
/// mm above the superior endplate's centre, has the smallest section; its centroid seeds
/// [`corridor_axis`], which gives a point on the line and its direction. Sampled on
/// a [`CORRIDOR_STEP`] / 2 grid here (a label map has one sample per voxel). `None` for
/// the sacrum (no pedicle landmarks) or where no line runs in bone. Local coordinates.
fn corridor_local(v: &VertebraModel, side: usize) -> Option<(V3, V3)> {
    let sgn = if side == 0 { 1.0 } else { -1.0 };
    let (inf_p, _) = v.inf_plane()?;
    let (zs, zi) = (v.sup_plane().0.z, inf_p.z);
    let h = CORRIDOR_STEP / 2.0;
    let canal_label = |l: V3| {
        let s = v.sample_local(l);
        s.canal < 0.0 && s.bone > 0.0
    };
    let bone = |l: V3| v.bone_sd_local(l) < 0.0;
    // The body's posterior wall: the front of the canal near the midline (the canal
    // label's 2nd percentile in y, as from a label map).
    let mut ys = Vec::new();
    let (mut y, y_end) = (0.0, v.morph.epd / 2.0 + 10.0);
    while y < y_end {
        let mut x = -5.0;
        while x <= 5.0 {
            let mut z = zi + h;
            while z < zs {
                if canal_label(V3::new(x, y, z)) {
                    ys.push(y);
                }
                z += h;
            }
            x += h;
        }
        y += h;
    }
    if ys.len() < 5 {
        return None;
    }
    ys.sort_by(f64::total_cmp);
    // Half a sample in front of the first canal sample, as a label map's wall.
    let y_wall = ys[ys.len() / 50] - h / 2.0;
    let (z_lo, z_hi) = (zi + 1.0, zs + 1.0);
    let nslab = (14.0 / CORRIDOR_STEP).ceil() as usize;
    let slabs: Vec<IsthmusSlab> = (0..nslab)
        .map(|k| {
            let y0 = y_wall + 0.5 + k as f64 * CORRIDOR_STEP;
            let mut canal_edge = 0.0f64;
            let mut bone_pts = Vec::new();
            let mut y = y0 + h / 2.0;
            while y < y0 + CORRIDOR_STEP {
                let mut z = z_lo + h / 2.0;
                while z < z_hi {
                    let mut a = 0.0;
                    while a < v.morph.canal_w / 2.0 + 25.0 {
                        let l = V3::new(sgn * a, y, z);
                        if canal_label(l) {
                            canal_edge = canal_edge.max(a);
                        } else if bone(l) {
                            bone_pts.push(l);
                        }
                        a += h;
                    }
                    z += h;
                }
                y += h;
            }
            IsthmusSlab {
                y: y0 + CORRIDOR_STEP / 2.0,
                canal_edge,
                bone: bone_pts,
            }
        })
        .collect();
    let (q0, _) = isthmus(&slabs, sgn, CORRIDOR_STEP)?;
    corridor_axis(&bone, q0, sgn, CORRIDOR_STEP)
}

/// A pedicle's screw corridor in the phantom's truth: the line through the pedicle that
/// stays furthest from its walls ([`corridor_axis`] on the analytic solid), what a surgeon
/// aims a screw along and what can be read from an image. [`PedicleTruth`]'s `entry` and
/// `direction` are the pedicle cylinder's design axis instead, of which only a 2-4 mm stub
/// between the body and the arch shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorridorTruth {
    /// Level name (as in [`VertebraTruth::level`]).
    pub level: String,
    /// `"left"` or `"right"`.
    pub side: String,
    /// Where the corridor's line leaves the posterior bone surface (LPS mm).
    pub entry: Point,
    /// Unit vector of the corridor from its entry towards the vertebral body (LPS).
    pub direction: Direction,
    /// The narrowest bone chord across the corridor, normal to it in the transverse plane
    /// ([`PedicleTruth::min_width_mm`]'s definition about this axis), mm.
    pub min_width_mm: f64,
}

/// The screw corridors of every drawn vertebra's pedicles (not the sacrum's), cranial to
/// caudal, left before right. Computed on demand, not part of `truth.json`: the search
/// over 728 candidate lines on the analytic solids takes seconds per pedicle.
pub(crate) fn corridors(scene: &Scene) -> Vec<CorridorTruth> {
    use rayon::prelude::*;
    let jobs: Vec<(usize, usize)> = (0..scene.verts.len())
        .flat_map(|i| [(i, 0), (i, 1)])
        .collect();
    jobs.par_iter()
        .with_max_len(1)
        .filter_map(|&(i, side)| {
            let v = &scene.verts[i];
            let (q, u) = corridor_local(v, side)?;
            Some(CorridorTruth {
                level: v.level.name().to_string(),
                side: if side == 0 { "left" } else { "right" }.into(),
                entry: pt(v.frame.to_world(walk_out(v, q, u))),
                direction: pt(v.frame.dir_to_world(u)),
                min_width_mm: pedicle_bone_width(v, q, u, f64::INFINITY, v.pedicle_t_ant(side)),
            })
        })
        .collect()
}

/// Where the line through `q` along `u` leaves the bone backwards (0.25 mm steps).
fn walk_out(v: &VertebraModel, q: V3, u: V3) -> V3 {
    let mut t = 0.0;
    while t < 60.0 && v.bone_sd_local(q - u * (t + 0.25)) <= 0.0 {
        t += 0.25;
    }
    q - u * t
}

/// Centre of the articular surfaces of one facet joint, on the joint plane: the centroid of
/// the part of the plane where the superior process of `lower` and the inferior process of
/// `upper` face each other across the joint space (the articular, cartilage-bearing surface;
/// each process's slab reaches beyond it, into the lamina and pedicle or past the partner's
/// tip). A plane point counts when the joint space there is free of bone and each side's
/// bone surface lies within [`FACET_SURFACE_DEPTH`] of its face of the joint (so the rounded
/// edges count where they still face the joint). Without a partner (the other vertebra is not
/// drawn) the one side's face alone. The facet centres lie half the joint space either side.
fn facet_centre(lower: &VertebraModel, upper: Option<&VertebraModel>, j: &Joint) -> V3 {
    let n = j.normal;
    let z = lower.frame.rot.column(2).into_owned();
    let w = (z - n * n.dot(&z)).normalize();
    let t = w.cross(&n);
    let h = FACET_GAP / 2.0;
    let bone = |v: &VertebraModel, p: V3| v.bone_sd_local(v.frame.to_local(p)) < 0.0;
    let faces = |v: &VertebraModel, p: V3, sgn: f64| {
        bone(v, p + n * (sgn * (h + FACET_SURFACE_DEPTH))) && !bone(v, p)
    };
    let (step, reach) = (0.2, 16.0);
    let k = (reach / step) as i32;
    let (mut sum, mut count) = (V3::zeros(), 0usize);
    for a in -k..=k {
        for b in -k..=k {
            let p = j.centre + t * (f64::from(a) * step) + w * (f64::from(b) * step);
            if faces(lower, p, -1.0) && upper.is_none_or(|u| faces(u, p, 1.0)) {
                sum += p;
                count += 1;
            }
        }
    }
    if count == 0 {
        j.centre
    } else {
        sum / count as f64
    }
}

/// The section of the bony canal less the bone in the local plane z = 0 of `v`: the solids
/// sampled on a 0.1 mm grid (the area's discretisation error is well under 1 %, the
/// extents' under 0.1 mm).
fn canal_section(v: &VertebraModel) -> CanalSectionTruth {
    const H: f64 = 0.1;
    let (cw, cd) = (v.morph.canal_w, v.morph.canal_d);
    let b = v.morph.epd / 2.0;
    let nx = ((cw + 4.0) / H).ceil() as i64;
    let (y0, y1) = (b - 0.35 * cd - 2.0, b + cd + 2.0);
    let ny = ((y1 - y0) / H).ceil() as i64;
    let mut n = 0usize;
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for i in 0..=nx {
        let x = -(cw + 4.0) / 2.0 + i as f64 * H;
        for j in 0..=ny {
            let y = y0 + j as f64 * H;
            let s = v.sample_local(V3::new(x, y, 0.0));
            if s.canal < 0.0 && s.bone > 0.0 {
                n += 1;
                x_lo = x_lo.min(x);
                x_hi = x_hi.max(x);
                if x.abs() <= 1.0 {
                    y_lo = y_lo.min(y);
                    y_hi = y_hi.max(y);
                }
            }
        }
    }
    if n == 0 {
        return CanalSectionTruth::default();
    }
    CanalSectionTruth {
        area_mm2: n as f64 * H * H,
        width_mm: x_hi - x_lo + H,
        depth_mm: (y_hi - y_lo + H).max(0.0),
    }
}

/// How far (mm) behind its face of the joint plane a process's surface may lie and still count
/// as articular surface ([`facet_centre`]).
const FACET_SURFACE_DEPTH: f64 = 0.25;

fn vertebra_truth(verts: &[VertebraModel], i: usize) -> VertebraTruth {
    let v = &verts[i];
    let f = &v.frame;
    let (sp, sn) = v.sup_plane();
    let inferior_endplate = v.inf_plane().map(|(p, n)| EndplateTruth {
        centre: pt(f.to_world(p)),
        normal: pt(f.dir_to_world(n)),
    });
    let b = v.morph.epd / 2.0;
    let face = |c: V3, n: V3, sgn: f64| pt(c + n * (sgn * FACET_GAP / 2.0));
    let js = &v.joints_sup;
    let ji = v.joints_inf.as_ref();
    let above = i.checked_sub(1).map(|a| &verts[a]);
    let below = verts.get(i + 1);
    let sup_c = js.map(|j| facet_centre(v, above, &j));
    let inf_c = ji.map(|js| {
        js.map(|j| match below {
            Some(lo) => facet_centre(lo, Some(v), &j),
            // The partner is not drawn: this side's face alone (the inferior process faces
            // along +n, so mirror the joint).
            None => facet_centre(
                v,
                None,
                &Joint {
                    centre: j.centre,
                    normal: -j.normal,
                },
            ),
        })
    });
    let (hant, hpost) = if v.is_sacrum() {
        (v.h, v.h)
    } else {
        (v.height_at(-b), v.height_at(b))
    };
    VertebraTruth {
        level: v.level.name().to_string(),
        label: v.label,
        body_centroid: pt(body_centroid(v)),
        frame: FrameTruth {
            origin: pt(f.origin),
            x_axis: pt(f.rot.column(0).into_owned()),
            y_axis: pt(f.rot.column(1).into_owned()),
            z_axis: pt(f.rot.column(2).into_owned()),
        },
        superior_endplate: EndplateTruth {
            centre: pt(f.to_world(sp)),
            normal: pt(f.dir_to_world(sn)),
        },
        inferior_endplate,
        pedicle_left: pedicle_truth(v, 0),
        pedicle_right: pedicle_truth(v, 1),
        facets: FacetTruth {
            superior_left: face(sup_c[0], js[0].normal, -1.0),
            superior_right: face(sup_c[1], js[1].normal, -1.0),
            inferior_left: ji.zip(inf_c).map(|(j, c)| face(c[0], j[0].normal, 1.0)),
            inferior_right: ji.zip(inf_c).map(|(j, c)| face(c[1], j[1].normal, 1.0)),
            superior_normals: [pt(js[0].normal), pt(js[1].normal)],
            superior_angle_deg: v.morph.facet,
        },
        spinous_tip: pt(f.to_world(v.spinous_tip())),
        transverse_tip_left: v.transverse_tip(0).map(|t| pt(f.to_world(t))),
        transverse_tip_right: v.transverse_tip(1).map(|t| pt(f.to_world(t))),
        body_height_anterior_mm: hant,
        body_height_posterior_mm: hpost,
        body_height_middle_mm: if v.is_sacrum() { v.h } else { v.height_at(0.0) },
        endplate_width_mm: v.morph.epw,
        endplate_depth_mm: v.morph.epd,
        canal_width_mm: v.morph.canal_w,
        canal_depth_mm: v.morph.canal_d,
        canal_section: canal_section(v),
    }
}

fn level_name(l: Level) -> String {
    l.name().to_string()
}

/// Computes the truth of a built scene.
pub(crate) fn compute(scene: &Scene, grid: &Grid, spec: &PhantomSpec) -> Truth {
    let mut labels = Vec::new();
    for v in &scene.verts {
        labels.push(LabelEntry {
            label: v.label,
            name: v.level.name().to_string(),
            kind: "vertebra".into(),
        });
    }
    let discs: Vec<DiscTruth> = scene
        .discs
        .iter()
        .filter(|d| d.label != 0)
        .map(|d| {
            let half = d.depth / 2.0;
            DiscTruth {
                upper: level_name(d.upper),
                lower: level_name(d.lower),
                label: d.label,
                centre: pt(d.centre()),
                height_anterior_mm: d.height_at(-half),
                height_middle_mm: d.height_at(0.0),
                height_posterior_mm: d.height_at(half),
            }
        })
        .collect();
    for d in &discs {
        labels.push(LabelEntry {
            label: d.label,
            name: format!("{}-{} disc", d.upper, d.lower),
            kind: "disc".into(),
        });
    }
    labels.push(LabelEntry {
        label: CANAL_LABEL,
        name: "spinal canal".into(),
        kind: "canal".into(),
    });

    let segments = scene
        .verts
        .windows(2)
        .filter_map(|w| {
            let up = upward_inf(&w[0])?;
            let lo = upward_sup(&w[1]);
            Some(SegmentAngle {
                upper: level_name(w[0].level),
                lower: level_name(w[1].level),
                sagittal_deg: (sag(up) - sag(lo)).to_degrees(),
                coronal_deg: (cor(lo) - cor(up)).to_degrees(),
            })
        })
        .collect();
    let find = |l: Level| scene.verts.iter().find(|v| v.level == l);
    let lumbar_lordosis_l1_s1_deg = match (find(Level::L1), find(Level::S1)) {
        (Some(l1), Some(s1)) => Some((sag(upward_sup(l1)) - sag(upward_sup(s1))).to_degrees()),
        _ => None,
    };
    let sacral_slope_deg = find(Level::S1).map(|s1| -sag(upward_sup(s1)).to_degrees());
    let lumbar: Vec<&VertebraModel> = scene.verts.iter().filter(|v| v.level.is_lumbar()).collect();
    let mut coronal_cobb: Option<CobbTruth> = None;
    for i in 0..lumbar.len() {
        for j in i + 1..lumbar.len() {
            let Some(inf) = upward_inf(lumbar[j]) else {
                continue;
            };
            let a = (cor(upward_sup(lumbar[i])) - cor(inf)).abs().to_degrees();
            if coronal_cobb.as_ref().is_none_or(|c| a > c.angle_deg + 1e-9) {
                coronal_cobb = Some(CobbTruth {
                    angle_deg: a,
                    upper_end: level_name(lumbar[i].level),
                    lower_end: level_name(lumbar[j].level),
                });
            }
        }
    }

    Truth {
        schema_version: TRUTH_SCHEMA_VERSION,
        spec: spec.clone(),
        grid: GridTruth {
            dims: grid.dims,
            spacing_mm: grid.spacing,
            origin_mm: pt(grid.origin),
            orientation: grid.orientation_code(),
        },
        labels,
        tissue_hu: scene.hu.clone(),
        vertebrae: (0..scene.verts.len())
            .map(|i| vertebra_truth(&scene.verts, i))
            .collect(),
        discs,
        angles: AngleTruth {
            segments,
            lumbar_lordosis_l1_s1_deg,
            sacral_slope_deg,
            coronal_cobb,
        },
    }
}
