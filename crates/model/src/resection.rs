//! Bone that a decompression removes, as a region in the vertebra's anatomical frame built
//! from its landmarks: the deformable vertebrae of the full fidelity leave it out of their
//! mesh, and the pictures leave it out of the vertebra's surface. The hybrid twin's
//! vertebrae are rigid, so there the removal acts only through the ligaments and joints the
//! operation takes away.
//!
//! The regions follow how the operations are described surgically (modelling choices, not
//! measured resection volumes):
//!
//! - **laminectomy**: the lamina and spinous process, i.e. the arch behind the posterior
//!   wall of the body (1 mm behind its posterior-most endplate rim point) and between the
//!   medial walls of the two pedicles ("to the medial border of the pedicles"); the pars and
//!   the facet joints lateral of that line stay;
//! - **hemilaminectomy**: the same on one side, from the pedicle's medial wall to
//!   [`SPINOUS_HALF_WIDTH_MM`] from the midline, keeping the spinous process;
//! - **total facetectomy**: each articular process of the joint, i.e. the bone of that side
//!   behind the arch's front (as above) within [`PROCESS_DEPTH_MM`] of its articular surface
//!   and behind it (on the bone side of the cartilage);
//! - **partial (medial) facetectomy**: the same, only nearer the midline than the cut that
//!   took the medial share of the articular area ([`Resection::medial_articular_process`]).

use nalgebra::Vector3;
use spinetwin_anatomy::Level;
use spinetwin_segment::landmarks::VertebraLandmarks;

/// Half the width of the band around the midline that a hemilaminectomy keeps for the
/// spinous process (mm): lumbar spinous processes are about 5-10 mm thick.
pub const SPINOUS_HALF_WIDTH_MM: f64 = 4.0;

/// Depth of bone behind an articular surface that a total facetectomy removes with the
/// process (mm): about the thickness of a lumbar articular process.
pub const PROCESS_DEPTH_MM: f64 = 6.0;

/// Bone within this distance (mm) of a kept attachment (an articular surface or bony stop
/// that stays in contact, a ligament insertion) is spared: the full fidelity's rigid patches
/// take the bone nodes within 4 mm of a surface and the insertions tie to the bone within
/// reach, and a surgeon spares the joints a decompression does not target.
pub const KEEP_MM: f64 = 5.0;

/// Bone removed from one vertebra.
#[derive(Clone, Debug, PartialEq)]
pub struct Resection {
    /// The vertebra.
    pub level: Level,
    /// What is removed, e.g. `lamina and spinous process`.
    pub what: String,
    /// Frame origin and axes (x left, y posterior, z cranial).
    frame: [Vector3<f64>; 4],
    region: Region,
    /// Attachments that stay (patient points): bone within [`KEEP_MM`] of them is spared.
    keep: Vec<Vector3<f64>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Region {
    /// Local y above `y_min`, local x within `x_lo..=x_hi`.
    Arch { y_min: f64, x_lo: f64, x_hi: f64 },
    /// Local y above `y_min`, on the side `side` (+1 left, -1 right), within `depth` of an
    /// articular surface point and not in front of its surface.
    Process {
        points: Vec<Vector3<f64>>,
        normals: Vec<Vector3<f64>>,
        depth: f64,
        y_min: f64,
        side: f64,
        /// Medial part only: nearer than `cut` (mm) to the plane through `origin` normal to
        /// `axis` (the midline plane of the vertebra the cut was measured in).
        medial: Option<(Vector3<f64>, Vector3<f64>, f64)>,
    },
}

impl Resection {
    /// The lamina and spinous process of `v` (laminectomy).
    pub fn laminectomy(v: &VertebraLandmarks) -> Result<Resection, String> {
        let (frame, y_wall) = arch_front(v)?;
        let (left, right) = (
            medial_wall(v, &frame, y_wall, true)?,
            medial_wall(v, &frame, y_wall, false)?,
        );
        Ok(Resection {
            level: v.level,
            what: "lamina and spinous process".into(),
            frame,
            region: Region::Arch {
                y_min: y_wall,
                x_lo: -right,
                x_hi: left,
            },
            keep: Vec::new(),
        })
    }

    /// One lamina of `v`, the spinous process kept (hemilaminectomy; `left`: the patient's
    /// left).
    pub fn hemilaminectomy(v: &VertebraLandmarks, left: bool) -> Result<Resection, String> {
        let (frame, y_wall) = arch_front(v)?;
        let wall = medial_wall(v, &frame, y_wall, left)?;
        if wall <= SPINOUS_HALF_WIDTH_MM {
            return Err(format!(
                "{}: the {} pedicle's medial wall is {wall:.1} mm from the midline, inside the spinous process",
                v.level.name(),
                side_name(left)
            ));
        }
        let (x_lo, x_hi) = if left {
            (SPINOUS_HALF_WIDTH_MM, wall)
        } else {
            (-wall, -SPINOUS_HALF_WIDTH_MM)
        };
        Ok(Resection {
            level: v.level,
            what: format!("{} lamina", side_name(left)),
            frame,
            region: Region::Arch {
                y_min: y_wall,
                x_lo,
                x_hi,
            },
            keep: Vec::new(),
        })
    }

    /// The superior or inferior articular process of `v` on one side (total facetectomy).
    pub fn articular_process(
        v: &VertebraLandmarks,
        superior: bool,
        left: bool,
    ) -> Result<Resection, String> {
        let (frame, y_wall) = arch_front(v)?;
        let facets = if superior {
            &v.superior_facets
        } else {
            &v.inferior_facets
        };
        let surface = if left { &facets.left } else { &facets.right };
        let kind = if superior { "superior" } else { "inferior" };
        let Some(s) = surface.as_ref().filter(|s| !s.points.is_empty()) else {
            return Err(format!(
                "{}: no {} {kind} articular surface in the landmarks",
                v.level.name(),
                side_name(left)
            ));
        };
        Ok(Resection {
            level: v.level,
            what: format!("{} {kind} articular process", side_name(left)),
            frame,
            region: Region::Process {
                points: s.points.iter().map(|p| Vector3::from(*p)).collect(),
                normals: s.normals.iter().map(|n| Vector3::from(*n)).collect(),
                depth: PROCESS_DEPTH_MM,
                y_min: y_wall,
                side: if left { 1.0 } else { -1.0 },
                medial: None,
            },
            keep: Vec::new(),
        })
    }

    /// The medial part of an articular process (partial, medial facetectomy): the bone of
    /// [`Resection::articular_process`] nearer than `cut_mm` to the sagittal plane through
    /// `origin` normal to `axis` (patient mm; the frame in which the operation measured the
    /// cut, the upper vertebra's for both processes of the joint, so both lose the same
    /// slice of the joint).
    pub fn medial_articular_process(
        v: &VertebraLandmarks,
        superior: bool,
        left: bool,
        origin: [f64; 3],
        axis: [f64; 3],
        cut_mm: f64,
    ) -> Result<Resection, String> {
        let axis = Vector3::from(axis)
            .try_normalize(1e-12)
            .ok_or_else(|| format!("{}: the midline axis has no direction", v.level.name()))?;
        if !(cut_mm > 0.0 && cut_mm.is_finite()) {
            return Err(format!(
                "{}: the medial cut ({cut_mm} mm from the midline) removes nothing",
                v.level.name()
            ));
        }
        let mut r = Resection::articular_process(v, superior, left)?;
        r.what = format!("{} (medial of {cut_mm:.1} mm)", r.what);
        if let Region::Process { medial, .. } = &mut r.region {
            *medial = Some((Vector3::from(origin), axis, cut_mm));
        }
        Ok(r)
    }

    /// Spares the bone within [`KEEP_MM`] of `points` (patient mm): the attachments on this
    /// vertebra that stay after the operation.
    pub fn spare(&mut self, points: impl IntoIterator<Item = [f64; 3]>) {
        self.keep.extend(points.into_iter().map(Vector3::from));
    }

    /// Whether the patient point `p` lies in the region the operation targets, spared
    /// attachments or not.
    pub fn targets(&self, p: [f64; 3]) -> bool {
        self.in_region(Vector3::from(p))
    }

    /// Whether the patient point `p` (mm, LPS) lies in the removed bone.
    pub fn contains(&self, p: [f64; 3]) -> bool {
        let p = Vector3::from(p);
        self.in_region(p)
            && !self
                .keep
                .iter()
                .any(|k| (k - p).norm_squared() < KEEP_MM * KEEP_MM)
    }

    fn in_region(&self, p: Vector3<f64>) -> bool {
        let [o, x, y, _] = &self.frame;
        let (lx, ly) = ((p - o).dot(x), (p - o).dot(y));
        match &self.region {
            Region::Arch { y_min, x_lo, x_hi } => ly > *y_min && lx >= *x_lo && lx <= *x_hi,
            Region::Process {
                points,
                normals,
                depth,
                y_min,
                side,
                medial,
            } => {
                if ly <= *y_min || side * lx <= 0.0 {
                    return false;
                }
                if let Some((o, a, cut)) = medial {
                    if (p - o).dot(a).abs() >= *cut {
                        return false;
                    }
                }
                let Some((k, d2)) = points
                    .iter()
                    .map(|q| (q - p).norm_squared())
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                else {
                    return false;
                };
                // Within the depth, and not in front of the cartilage (the normal points out
                // of the bone into the joint).
                let n = normals.get(k).copied().unwrap_or_else(Vector3::zeros);
                d2 <= depth * depth && (p - points[k]).dot(&n) <= 0.5
            }
        }
    }
}

fn side_name(left: bool) -> &'static str {
    if left {
        "left"
    } else {
        "right"
    }
}

/// The frame of `v` and the local y of the front of its arch: 1 mm behind the posterior-most
/// point of its endplate rims (the posterior wall of the body).
fn arch_front(v: &VertebraLandmarks) -> Result<([Vector3<f64>; 4], f64), String> {
    let f = &v.frame;
    let frame = [f.origin, f.x, f.y, f.z].map(Vector3::from);
    let rims = v
        .superior_endplate
        .outline
        .iter()
        .chain(v.inferior_endplate.iter().flat_map(|e| &e.outline));
    let y_wall = rims
        .map(|p| (Vector3::from(*p) - frame[0]).dot(&frame[2]))
        .fold(f64::NEG_INFINITY, f64::max);
    if !y_wall.is_finite() {
        return Err(format!(
            "{}: no endplate outline in the landmarks to place the arch",
            v.level.name()
        ));
    }
    Ok((frame, y_wall + 1.0))
}

/// Distance (mm) of the medial wall of the `left` (else right) pedicle from the midline: the
/// pedicle axis where it crosses 3 mm behind the arch's front, less half the pedicle's
/// narrowest width.
fn medial_wall(
    v: &VertebraLandmarks,
    frame: &[Vector3<f64>; 4],
    y_front: f64,
    left: bool,
) -> Result<f64, String> {
    let p = v
        .pedicles
        .as_ref()
        .map(|p| if left { &p.left } else { &p.right })
        .ok_or_else(|| format!("{}: no pedicles in the landmarks", v.level.name()))?;
    let [o, x, y, _] = frame;
    let (e, d) = (Vector3::from(p.entry) - o, Vector3::from(p.direction));
    let (ey, dy) = (e.dot(y), d.dot(y));
    if dy.abs() < 1e-6 {
        return Err(format!(
            "{}: the {} pedicle axis runs across the body axis",
            v.level.name(),
            side_name(left)
        ));
    }
    let t = (y_front + 3.0 - ey) / dy;
    let wall = (e + d * t).dot(x).abs() - p.min_width_mm / 2.0;
    if wall <= 0.0 {
        return Err(format!(
            "{}: the {} pedicle's medial wall falls on the midline",
            v.level.name(),
            side_name(left)
        ));
    }
    Ok(wall)
}
