//! The spine as rigid bodies: the layout of the vertebrae along the lordotic/scoliotic curve,
//! and each vertebra, disc and facet joint as parametric solids (signed-distance-like
//! functions) in its own anatomical frame.
//!
//! Local vertebral frame: origin at the body centre (mid-height of the centre column), x to
//! the patient's left, y posterior, z superior along the body axis.

use crate::morph::{self, LevelMorph};
use crate::sdf::{ellipse, ellipsoid, round_max, seg2, smin, RoundBox, V2, V3};
use crate::spec::{FacetJoints, PhantomSpec};
use nalgebra::Matrix3;
use spinetwin_anatomy::Level;

/// Facet joint space (mm) between the inferior articular process of a vertebra and the
/// superior articular process of the one below. The two processes are bounded by the two
/// sides of one plane, so they can never overlap.
pub(crate) const FACET_GAP: f64 = 1.0;
/// How far (mm) the pedicle's cylinder reaches behind its isthmus centre.
pub(crate) const PEDICLE_T_POST: f64 = 3.0;
/// Thickness (mm) of an articular process behind its facet surface.
const FACET_T: f64 = 5.5;
/// Half length (mm) of a facet surface in the transverse plane.
const FACET_HALF_LEN: f64 = 8.0;
/// Cortical shell of the vertebral body (walls and endplates), mm.
pub(crate) const BODY_CORTEX: f64 = 0.8;
/// Cortex of the posterior elements, mm.
pub(crate) const POST_CORTEX: f64 = 1.0;
/// Depth of the endplate concavity at the centre, mm.
const ENDPLATE_CUP: f64 = 1.0;
/// Depth of the concavity of the posterior body wall, mm.
const POSTERIOR_CONCAVITY: f64 = 1.5;
/// Margin of the disc inside the endplate outline, mm.
const DISC_MARGIN: f64 = 1.0;
/// How far the sacrum continues below the S1 mid-height, mm (truncated by the volume).
const SACRUM_DEPTH: f64 = 45.0;

/// A rigid frame: `rot` columns are the local x, y, z axes in LPS.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub origin: V3,
    pub rot: Matrix3<f64>,
}

impl Frame {
    #[inline]
    pub fn to_local(&self, p: V3) -> V3 {
        self.rot.transpose() * (p - self.origin)
    }
    #[inline]
    pub fn to_world(&self, l: V3) -> V3 {
        self.origin + self.rot * l
    }
    #[inline]
    pub fn dir_to_world(&self, d: V3) -> V3 {
        self.rot * d
    }
    #[inline]
    pub fn dir_to_local(&self, d: V3) -> V3 {
        self.rot.transpose() * d
    }
}

/// Unit vector whose sagittal projection leans `sag` rad posteriorly and whose coronal
/// projection leans `cor` rad to the left from +z. Both projections are exact, so angles
/// measured back from the normals equal the design angles.
pub(crate) fn tilted(sag: f64, cor: f64) -> V3 {
    V3::new(cor.tan(), sag.tan(), 1.0).normalize()
}

fn frame_from_axis(origin: V3, z: V3) -> Frame {
    let x = (V3::x() - z * z.x).normalize();
    let y = z.cross(&x);
    Frame {
        origin,
        rot: Matrix3::from_columns(&[x, y, z]),
    }
}

/// A vertebra placed on the spine curve.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub level: Level,
    pub morph: LevelMorph,
    /// Body height at the centre column (mm).
    pub h: f64,
    /// Sagittal tilts (rad, + = leaning posteriorly) of the superior and inferior endplate
    /// normals (both pointing up) and coronal tilt (rad, + = leaning left).
    pub sup_sag: f64,
    pub inf_sag: f64,
    pub cor: f64,
    pub frame: Frame,
    /// Mid-height of the disc below (0 for S1).
    pub disc_below: f64,
}

impl Placed {
    pub fn sup_normal(&self) -> V3 {
        tilted(self.sup_sag, self.cor)
    }
    /// Upward normal of the inferior endplate plane (the outward normal is its negative).
    pub fn inf_normal_up(&self) -> V3 {
        tilted(self.inf_sag, self.cor)
    }
    pub fn sup_centre(&self) -> V3 {
        self.frame.to_world(V3::new(0.0, 0.0, self.h / 2.0))
    }
    pub fn inf_centre(&self) -> V3 {
        self.frame.to_world(V3::new(0.0, 0.0, -self.h / 2.0))
    }
}

/// Lays out the whole chain T10..S1 (with L6 if the spec names it), sacrum first, each
/// vertebra stacked on the disc below it. The result is cranial to caudal.
pub(crate) fn layout(spec: &PhantomSpec) -> Vec<Placed> {
    let with_l6 = spec.levels.contains(Level::L6);
    let chain: Vec<Level> = Level::ALL
        .into_iter()
        .filter(|l| *l != Level::L6 || with_l6)
        .collect();
    let n_lumbar = chain.iter().filter(|l| l.is_lumbar()).count();
    let (disc_share, body_share) = morph::lordosis_shares(n_lumbar);
    let ll = spec.lordosis_deg.to_radians();
    let ss = morph::sacral_slope(spec.lordosis_deg).to_radians();
    let cobb = spec.scoliosis_cobb_deg.to_radians();

    let mut out: Vec<Placed> = Vec::with_capacity(chain.len());
    // Sacrum: its superior endplate leans anteriorly by the sacral slope.
    let s1 = morph::morph(Level::S1);
    let s1_axis = tilted(-ss, 0.0);
    out.push(Placed {
        level: Level::S1,
        morph: s1,
        h: s1.h_post,
        sup_sag: -ss,
        inf_sag: -ss,
        cor: 0.0,
        frame: frame_from_axis(V3::zeros(), s1_axis),
        disc_below: 0.0,
    });
    let mut lumbar_from_bottom = 0usize;
    for &level in chain.iter().rev().skip(1) {
        let below = out.last().expect("sacrum placed first");
        let mo = morph::morph(level);
        let (disc_angle, wedge) = if level.is_lumbar() {
            let i = lumbar_from_bottom;
            lumbar_from_bottom += 1;
            (disc_share[i] * ll, body_share[i] * ll)
        } else {
            // Thoracolumbar junction straight; mild kyphosis above it.
            match level {
                Level::T12 => (0.0, (-1.0f64).to_radians()),
                _ => ((-3.0f64).to_radians(), (-2.0f64).to_radians()),
            }
        };
        let d = morph::disc_height(level);
        let inf_sag = below.sup_sag + disc_angle;
        let axis_sag = inf_sag + wedge / 2.0;
        let sup_sag = inf_sag + wedge;
        let cor = morph::coronal_tilt_fraction(level) * cobb;
        // Posterior height is the table value; the centre column is taller by the wedge.
        let h = mo.h_post + mo.epd * (wedge / 2.0).tan();
        let n_lo = below.sup_normal();
        let n_up = tilted(inf_sag, cor);
        let m = (n_lo + n_up).normalize();
        let p_up = below.sup_centre() + m * d;
        let z = tilted(axis_sag, cor);
        let origin = p_up + z * (h / 2.0);
        let mut frame = frame_from_axis(origin, z);
        // Apical vertebrae of a scoliotic curve rotate axially with the body towards the
        // convexity (here: left), the spinous process towards the concavity.
        let psi = morph::axial_rotation_fraction(level) * cobb;
        if psi != 0.0 {
            let (x, y) = (
                frame.rot.column(0).into_owned(),
                frame.rot.column(1).into_owned(),
            );
            let xr = x * psi.cos() + y * psi.sin();
            let yr = y * psi.cos() - x * psi.sin();
            frame.rot = Matrix3::from_columns(&[xr, yr, z]);
        }
        out.push(Placed {
            level,
            morph: mo,
            h,
            sup_sag,
            inf_sag,
            cor,
            frame,
            disc_below: d,
        });
    }
    out.reverse();
    out
}

/// One facet joint: centre of the joint space and the unit normal of the superior facet of
/// the lower vertebra (pointing from it across the joint to the inferior facet of the upper).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joint {
    pub centre: V3,
    pub normal: V3,
}

/// Height (mm) of an anatomical facet joint's centre above the superior endplate of the
/// lower vertebra, along its axis ([`FacetJoints::Anatomical`]). Lumbar facet joints sit at
/// the level of the lower vertebra's pedicles and upper endplate, not at mid-disc: on the
/// expert masks of two real spines (VerSe sub-verse004 and sub-verse012, 11 joints measured
/// with the `iap_gap` example) the centres of the facets found in the label map lie -3.6 to
/// +0.4 mm from that endplate, mean -1.8 mm. The same measurement on this phantom gives
/// -0.9 to -2.6 mm, mean -1.5, with the nominal centre here 2.0 mm lower than that: the
/// process tips are kept IAP_CLEARANCE from the arch below, which shortens the articular
/// overlap from below. The height sets the lever of the joint about the disc's centre of
/// rotation, hence how much it resists extension.
const JOINT_HEIGHT: f64 = -3.5;
/// Clearance (mm) between the tip of an anatomical inferior articular process and the arch
/// (lamina, pedicle) of the vertebra below. Real processes come closer (0.75 mm on sub-verse004's
/// L4, 1 x 1 x 2 mm mask), but the segmenter does not yet cut that cleft: with 1-1.4 mm here
/// the lower half of each process went to the vertebra below and phantom Dice at 1 mm
/// spacing was 0.933-0.951; with 4 mm it is 0.948-0.963 (mid-disc joints: 0.976-0.978).
const IAP_CLEARANCE: f64 = 4.0;

/// The left (index 0) and right (index 1) joints between `lower` and the vertebra above it,
/// laid out in the lower vertebra's frame. `disc_above` is the height of the disc above.
pub(crate) fn joints_of(lower: &Placed, disc_above: f64, kind: FacetJoints) -> [Joint; 2] {
    let mo = &lower.morph;
    let b = mo.epd / 2.0;
    let beta = mo.facet.to_radians();
    [1.0, -1.0].map(|s: f64| {
        let c = V3::new(
            s * (mo.canal_w / 2.0 + 0.35 * mo.ped_w + 2.0),
            b + 0.35 * mo.canal_d + 8.0,
            // The mid-disc height in the original order of operations, so that the default
            // phantom stays bit-identical.
            match kind {
                FacetJoints::MidDisc => lower.h / 2.0 + disc_above / 2.0 - 1.0,
                FacetJoints::Anatomical => lower.h / 2.0 + JOINT_HEIGHT,
            },
        );
        let n = V3::new(-s * beta.cos(), beta.sin(), 0.0);
        Joint {
            centre: lower.frame.to_world(c),
            normal: lower.frame.dir_to_world(n),
        }
    })
}

#[derive(Debug, Clone)]
struct Pedicle {
    /// Isthmus centre (local).
    q: V3,
    /// Axis direction towards the body (anterior-medial), unit.
    u: V3,
    /// In-plane perpendicular (transverse), unit.
    lat: V3,
    rw: f64,
    rh: f64,
    t_ant: f64,
    t_post: f64,
}

impl Pedicle {
    #[inline]
    fn sd(&self, l: V3) -> f64 {
        let d = l - self.q;
        let t = d.dot(&self.u);
        let e = ellipse(d.dot(&self.lat), d.z, self.rw, self.rh);
        e.max(t - self.t_ant).max(-self.t_post - t)
    }
}

#[derive(Debug, Clone)]
struct Bar {
    root: V3,
    dir: V3,
    len: f64,
    side: V3,
    r_root: (f64, f64),
    r_tip: (f64, f64),
}

impl Bar {
    #[inline]
    fn sd(&self, l: V3) -> f64 {
        let d = l - self.root;
        let s = d.dot(&self.dir);
        let sc = s.clamp(0.0, self.len);
        let t = sc / self.len;
        let off = d - self.dir * sc;
        let ry = self.r_root.0 + (self.r_tip.0 - self.r_root.0) * t;
        let rz = self.r_root.1 + (self.r_tip.1 - self.r_root.1) * t;
        ellipsoid(
            V3::new(s - sc, off.dot(&self.side), off.z),
            V3::new(rz, ry, rz),
        )
    }
    /// The most lateral point of the bar (towards `out`, a unit vector; local frame): on
    /// the ellipsoidal cap of its tip, the point where the surface normal is `out`. The cap
    /// is `(e1/rz)^2 + (e2/ry)^2 + (e3/rz)^2 = 1` with `e = M d - b` (see [`Bar::sd`]):
    /// `e1 = dir.d - len`, `e2 = side.d`, `e3 = d.z - len dir.z`, `d` from the root, so the
    /// extreme of the linear function `out.d` over it is closed form.
    fn most_lateral(&self, out: V3) -> V3 {
        let m = Matrix3::from_rows(&[
            self.dir.transpose(),
            self.side.transpose(),
            V3::z().transpose(),
        ]);
        let mi = m.try_inverse().expect("the bar's axis is not vertical");
        let b = V3::new(self.len, 0.0, self.len * self.dir.z);
        let r = V3::new(self.r_tip.1, self.r_tip.0, self.r_tip.1);
        let g = mi.transpose() * out;
        let rg = r.component_mul(&g);
        let e = r.component_mul(&rg) / rg.norm();
        debug_assert!(e.x >= 0.0, "the lateral extreme lies on the tip's cap");
        self.root + mi * (e + b)
    }
}

/// An articular process: a slab behind its facet plane, its tip cut by a plane (point,
/// outward normal) or kept a clearance away from the arch of the vertebra below.
#[derive(Debug, Clone)]
struct Process {
    bx: RoundBox,
    cut: Option<(V3, V3)>,
    clear_of: Option<Box<Neighbour>>,
}

/// The arch of a neighbouring vertebra seen from this vertebra's frame.
#[derive(Debug, Clone)]
struct Neighbour {
    /// This local frame to the neighbour's: `l' = rot * l + off`.
    rot: Matrix3<f64>,
    off: V3,
    arch: Arch,
    clearance: f64,
}

impl Process {
    #[inline]
    fn sd(&self, l: V3) -> f64 {
        let mut d = self.bx.sd(l);
        if let Some((p, n)) = &self.cut {
            d = d.max(n.dot(&(l - p)));
        }
        match &self.clear_of {
            // Well outside the slab the neighbour changes nothing that matters: the value
            // stays a lower bound of the distance and the point stays outside.
            Some(nb) if d <= 1.0 => d.max(nb.clearance - nb.arch.sd(nb.rot * l + nb.off)),
            _ => d,
        }
    }
}

/// The bony arch of one vertebra in its local frame: pedicles, laminae, spinous and
/// transverse processes and, on the sacrum, the alae; everything posterior except the
/// articular processes.
#[derive(Debug, Clone)]
struct Arch {
    is_sacrum: bool,
    pedicles: [Pedicle; 2],
    laminae: [(V2, V2); 2],
    lam_z: (f64, f64),
    sp_root: V2,
    sp_end: V2,
    sp_r: f64,
    sp_tx: f64,
    tps: Option<[Bar; 2]>,
    alae: Option<[RoundBox; 2]>,
}

impl Arch {
    fn of(pl: &Placed) -> Self {
        let mo = pl.morph;
        let is_sacrum = pl.level == Level::S1;
        let h = pl.h;
        let b = mo.epd / 2.0;
        let (cw, cd) = (mo.canal_w, mo.canal_d);
        let alpha = mo.ped_angle.to_radians();
        let zp = h / 2.0 - mo.ped_h / 2.0 - 1.5;
        let yw = b + 0.35 * cd;
        let pedicles = [1.0, -1.0].map(|s: f64| {
            let u = V3::new(-s * alpha.sin(), -alpha.cos(), 0.0);
            Pedicle {
                q: V3::new(s * (cw / 2.0 + mo.ped_w / 2.0), yw, zp),
                u,
                lat: V3::new(alpha.cos(), -s * alpha.sin(), 0.0) * s,
                rw: mo.ped_w / 2.0,
                rh: mo.ped_h / 2.0,
                t_ant: 0.35 * cd + 10.0,
                t_post: PEDICLE_T_POST,
            }
        });
        // Laminae run parallel to the posterolateral canal walls, 3.5 mm (half their
        // thickness) plus a hair outside them, from the pedicles to the midline.
        let depth_tri = cd - 0.35 * cd;
        let laminae = [1.0, -1.0].map(|s: f64| {
            let n = V2::new(s * depth_tri, cw / 2.0).normalize();
            let a0 = V2::new(s * (cw / 2.0 + 0.4 * mo.ped_w), yw - 2.0);
            let b0 = V2::new(0.0, b + cd);
            (a0 + n * 4.0, b0 + n * 4.0)
        });
        let lam_z = if is_sacrum {
            (-h / 2.0 - SACRUM_DEPTH, h / 2.0 - 6.0)
        } else {
            (-h / 2.0 + 1.0, h / 2.0 - 6.0)
        };
        let sp_root = V2::new(b + cd + 2.0, -1.0);
        let sp_r = mo.sp_h / 2.0;
        let sp_end = sp_root + V2::new(mo.sp_len - sp_r, -6.0);
        let tps = (mo.tp_span > 0.0).then(|| {
            [1.0, -1.0].map(|s: f64| {
                let root = V3::new(s * (cw / 2.0 + 0.8 * mo.ped_w), yw + 1.0, zp);
                let tip_c = V3::new(s * (mo.tp_span / 2.0 - 4.0), yw + 4.0, zp + 1.0);
                let dir = (tip_c - root).normalize();
                Bar {
                    root,
                    dir,
                    len: (tip_c - root).norm(),
                    side: V3::new(-dir.y, dir.x, 0.0).normalize(),
                    r_root: (4.0, 7.0),
                    r_tip: (3.0, 4.0),
                }
            })
        });
        let a = mo.epw / 2.0;
        let alae = is_sacrum.then(|| {
            [1.0, -1.0].map(|s: f64| RoundBox {
                centre: V3::new(s * (a + 10.0), 10.0, -14.0),
                axes: Matrix3::identity(),
                half: V3::new(22.0, 14.0, 20.0),
                radius: 10.0,
            })
        });
        Arch {
            is_sacrum,
            pedicles,
            laminae,
            lam_z,
            sp_root,
            sp_end,
            sp_r,
            sp_tx: 3.5,
            tps,
            alae,
        }
    }

    /// Distance to the arch (local coordinates), without the canal carved out.
    fn sd(&self, l: V3) -> f64 {
        let mut d = f64::INFINITY;
        for p in &self.pedicles {
            d = d.min(p.sd(l));
        }
        let xy = V2::new(l.x, l.y);
        for (a, b) in &self.laminae {
            let (dxy, t) = seg2(xy, *a, *b);
            // The lower border rises laterally (towards the pars interarticularis), leaving
            // room for the superior articular process of the vertebra below.
            let lo = self.lam_z.0 + if self.is_sacrum { 0.0 } else { 8.0 * (1.0 - t) };
            let dz = (lo - l.z).max(l.z - self.lam_z.1);
            let lam = round_max(dxy - 3.5, dz, 1.5);
            d = smin(d, lam, 2.0);
        }
        let (ds, _) = seg2(V2::new(l.y, l.z), self.sp_root, self.sp_end);
        let sp = round_max(ds - self.sp_r, l.x.abs() - self.sp_tx, 1.0);
        d = smin(d, sp, 2.0);
        if let Some(tps) = &self.tps {
            for t in tps {
                d = smin(d, t.sd(l), 2.0);
            }
        }
        if let Some(alae) = &self.alae {
            for a in alae {
                d = smin(d, a.sd(l), 4.0);
            }
        }
        d
    }
}

/// Distances of a point to the parts of one vertebra (mm, negative inside).
#[derive(Debug, Clone, Copy)]
pub(crate) struct VSample {
    pub body: f64,
    pub post: f64,
    pub bone: f64,
    pub canal: f64,
    pub dura: f64,
}

/// One vertebra as parametric solids in its local frame.
#[derive(Debug, Clone)]
pub(crate) struct VertebraModel {
    pub level: Level,
    pub label: u16,
    pub morph: LevelMorph,
    pub frame: Frame,
    pub h: f64,
    is_sacrum: bool,
    // Body outline: ellipse (a, b0) centred at y = yoff, cut posteriorly by a circle.
    a: f64,
    b0: f64,
    yoff: f64,
    conc_r: f64,
    conc_cy: f64,
    waist: f64,
    /// Superior / inferior endplate planes (local point and outward normal).
    sup_p: V3,
    sup_n: V3,
    inf_p: V3,
    inf_n: V3,
    arch: Arch,
    saps: [Process; 2],
    iaps: Option<[Process; 2]>,
    canal_z: (f64, f64),
    /// World joints: superior (with the vertebra above) and inferior (with the one below).
    pub joints_sup: [Joint; 2],
    pub joints_inf: Option<[Joint; 2]>,
    /// World axis-aligned bounding box of everything this vertebra draws (bone and canal).
    pub aabb: (V3, V3),
}

impl VertebraModel {
    /// Builds the vertebra `i` of the chain. `top` / `bottom` say whether it is the first /
    /// last level drawn (the canal then runs on to the volume edge).
    pub fn new(chain: &[Placed], i: usize, top: bool, bottom: bool, kind: FacetJoints) -> Self {
        let pl = &chain[i];
        let mo = pl.morph;
        let is_sacrum = pl.level == Level::S1;
        let h = pl.h;
        let a = mo.epw / 2.0;
        let b = mo.epd / 2.0;
        let b0 = b + POSTERIOR_CONCAVITY / 2.0;
        let yoff = POSTERIOR_CONCAVITY / 2.0;
        let conc_r = 0.9 * a;
        let conc_cy = b + conc_r;
        let f = &pl.frame;
        let sup_n = f.dir_to_local(pl.sup_normal());
        let inf_n = -f.dir_to_local(pl.inf_normal_up());
        let sup_p = V3::new(0.0, 0.0, h / 2.0);
        let inf_p = if is_sacrum {
            V3::new(0.0, 0.0, -h / 2.0 - SACRUM_DEPTH)
        } else {
            V3::new(0.0, 0.0, -h / 2.0)
        };
        let arch = Arch::of(pl);
        let zp = h / 2.0 - mo.ped_h / 2.0 - 1.5;
        // Facets. The superior processes use this vertebra's joints with the one above; the
        // inferior processes use the joints of the vertebra below (laid out in its frame).
        let disc_above = if i > 0 { chain[i - 1].disc_below } else { 7.0 };
        let joints_sup = joints_of(pl, disc_above, kind);
        let anatomical = kind == FacetJoints::Anatomical;
        // The tip of a superior process stops below the pars and pedicle of the vertebra
        // above (a plane in that vertebra's frame). An inferior process stops ~2 mm above the
        // pedicle and lamina of the vertebra below (mid-disc joints), or reaches down beside
        // the superior one until it comes IAP_CLEARANCE short of the arch of the vertebra
        // below (anatomical joints), whatever the curve.
        let sap_cut = |pf: &Frame, h_up: f64| {
            let n = f.dir_to_local(pf.rot.column(2).into_owned());
            (
                f.to_local(pf.to_world(V3::new(0.0, 0.0, -h_up / 2.0 + 6.0))),
                n,
            )
        };
        let upper_cut = (i > 0).then(|| sap_cut(&chain[i - 1].frame, chain[i - 1].h));
        let saps = joints_sup.map(|j| {
            let c = f.to_local(j.centre);
            let n = f.dir_to_local(j.normal);
            let w = (V3::z() - n * n.z).normalize();
            let t = w.cross(&n);
            let (lo, hi) = (zp - 2.0 - c.z, if anatomical { 7.0 } else { 6.0 });
            Process {
                bx: RoundBox {
                    centre: c - n * (FACET_GAP / 2.0 + FACET_T / 2.0) + w * ((lo + hi) / 2.0),
                    axes: Matrix3::from_columns(&[n, t, w]),
                    half: V3::new(FACET_T / 2.0, FACET_HALF_LEN, (hi - lo) / 2.0),
                    radius: 1.2,
                },
                cut: upper_cut,
                clear_of: None,
            }
        });
        let joints_inf = (!is_sacrum).then(|| joints_of(&chain[i + 1], pl.disc_below, kind));
        let iaps = joints_inf.map(|js| {
            js.map(|j| {
                let c = f.to_local(j.centre);
                let n = f.dir_to_local(j.normal);
                let w = (V3::z() - n * n.z).normalize();
                let t = w.cross(&n);
                let below = &chain[i + 1];
                let (lo, hi, cut, clear_of) = if anatomical {
                    // From this vertebra's lamina, 11 mm above its inferior endplate, down to
                    // 8 mm below the joint centre, less where the arch below is nearer.
                    let clear_of = Neighbour {
                        rot: below.frame.rot.transpose() * f.rot,
                        off: below.frame.rot.transpose() * (f.origin - below.frame.origin),
                        arch: Arch::of(below),
                        // The arch blends into the body (smin, k = 1.5) and may bulge up to
                        // 0.375 mm beyond its own surface there.
                        clearance: IAP_CLEARANCE + 0.4,
                    };
                    let hi = (-h / 2.0 + 11.0 - c.z) / w.z;
                    (-8.0, hi, None, Some(Box::new(clear_of)))
                } else {
                    let cut_n = -f.dir_to_local(below.frame.rot.column(2).into_owned());
                    let cut_p =
                        f.to_local(below.frame.to_world(V3::new(0.0, 0.0, below.h / 2.0 + 0.5)));
                    (-7.0, pl.disc_below / 2.0 + 12.0, Some((cut_p, cut_n)), None)
                };
                Process {
                    bx: RoundBox {
                        centre: c + n * (FACET_GAP / 2.0 + FACET_T / 2.0) + w * ((lo + hi) / 2.0),
                        axes: Matrix3::from_columns(&[n, t, w]),
                        half: V3::new(FACET_T / 2.0, FACET_HALF_LEN, (hi - lo) / 2.0),
                        radius: 1.2,
                    },
                    cut,
                    clear_of,
                }
            })
        });
        let canal_z = (
            if bottom {
                -h / 2.0 - 60.0
            } else {
                -h / 2.0 - pl.disc_below / 2.0 - 1.0
            },
            if top {
                h / 2.0 + 60.0
            } else {
                h / 2.0 + disc_above / 2.0 + 1.0
            },
        );
        let mut model = VertebraModel {
            level: pl.level,
            label: pl.level.verse_label(),
            morph: mo,
            frame: f.clone(),
            h,
            is_sacrum,
            a,
            b0,
            yoff,
            conc_r,
            conc_cy,
            waist: if is_sacrum { 0.0 } else { 0.045 },
            sup_p,
            sup_n,
            inf_p,
            inf_n,
            arch,
            saps,
            iaps,
            canal_z,
            joints_sup,
            joints_inf,
            aabb: (V3::zeros(), V3::zeros()),
        };
        model.aabb = model.world_box(disc_above);
        model
    }

    fn world_box(&self, disc_above: f64) -> (V3, V3) {
        let mo = &self.morph;
        let half_x = (mo.tp_span / 2.0)
            .max(self.a + 35.0 * f64::from(u8::from(self.is_sacrum)))
            .max(mo.canal_w / 2.0 + mo.ped_w + 12.0)
            + 4.0;
        let lo = V3::new(
            -half_x,
            -mo.epd / 2.0 - 3.0,
            if self.is_sacrum {
                -self.h / 2.0 - SACRUM_DEPTH - 62.0
            } else {
                (-self.h / 2.0 - 70.0).min(self.canal_z.0) - 2.0
            },
        );
        let hi = V3::new(
            half_x,
            mo.epd / 2.0 + mo.canal_d + mo.sp_len + 8.0,
            (self.h / 2.0 + disc_above + 12.0).max(self.canal_z.1) + 2.0,
        );
        let _ = disc_above;
        let mut bmin = V3::repeat(f64::INFINITY);
        let mut bmax = V3::repeat(f64::NEG_INFINITY);
        for c in 0..8 {
            let l = V3::new(
                if c & 1 == 0 { lo.x } else { hi.x },
                if c & 2 == 0 { lo.y } else { hi.y },
                if c & 4 == 0 { lo.z } else { hi.z },
            );
            let w = self.frame.to_world(l);
            bmin = bmin.inf(&w);
            bmax = bmax.sup(&w);
        }
        (bmin, bmax)
    }

    #[inline]
    pub fn in_box(&self, p: &V3) -> bool {
        let (lo, hi) = &self.aabb;
        p.x >= lo.x && p.y >= lo.y && p.z >= lo.z && p.x <= hi.x && p.y <= hi.y && p.z <= hi.z
    }

    /// Body outline in the transverse plane at scale `s` (waist).
    #[inline]
    fn outline(&self, x: f64, y: f64, s: f64) -> f64 {
        let e = ellipse(x, y - self.yoff, self.a * s, self.b0 * s);
        let cut = self.conc_r - (x * x + (y - self.conc_cy).powi(2)).sqrt();
        e.max(cut)
    }

    /// Signed distance to the vertebral body (local coordinates).
    pub fn body_sd(&self, l: V3) -> f64 {
        let rho2 = (l.x / self.a).powi(2) + ((l.y - self.yoff) / self.b0).powi(2);
        let cup = ENDPLATE_CUP * (1.0 - rho2).max(0.0);
        let ds = self.sup_n.dot(&(l - self.sup_p)) + cup;
        let di = self.inf_n.dot(&(l - self.inf_p)) + if self.is_sacrum { 0.0 } else { cup };
        let s = if self.is_sacrum {
            // The fused sacral bodies narrow caudally.
            1.0 - 0.004 * (-l.z - self.h / 2.0).max(0.0)
        } else {
            let zr = (l.z / (self.h / 2.0)).clamp(-1.0, 1.0);
            1.0 - self.waist * (1.0 - zr * zr)
        };
        self.outline(l.x, l.y, s).max(ds).max(di)
    }

    /// Signed distance to the bony spinal canal of this vertebra (local coordinates).
    pub fn canal_sd(&self, l: V3) -> f64 {
        let (cw, cd) = (self.morph.canal_w, self.morph.canal_d);
        let b = self.morph.epd / 2.0;
        let yw = b + 0.35 * cd;
        let e = ellipse(l.x, l.y - yw, cw / 2.0, 0.65 * cd + 1.0);
        let depth_tri = 0.65 * cd;
        let mut d = e;
        for s in [1.0, -1.0] {
            let n = V2::new(s * depth_tri, cw / 2.0).normalize();
            d = d.max(n.dot(&(V2::new(l.x, l.y) - V2::new(s * cw / 2.0, yw))));
        }
        let dz = (self.canal_z.0 - l.z).max(l.z - self.canal_z.1);
        d.max(dz)
    }

    fn dura_sd(&self, l: V3, canal: f64) -> f64 {
        let (cw, cd) = (self.morph.canal_w, self.morph.canal_d);
        let b = self.morph.epd / 2.0;
        let e = ellipse(l.x, l.y - (b + 0.45 * cd), 0.37 * cw, 0.34 * cd);
        e.max(canal + 1.0)
    }

    /// Posterior elements (pedicles, laminae, spinous and transverse processes, articular
    /// processes, sacral alae), without the canal carved out.
    fn post_sd(&self, l: V3) -> f64 {
        let mut d = self.arch.sd(l);
        // Articular processes join with a hard union so that their facet surfaces stay
        // exactly on the joint planes (a smooth blend could bulge into the joint space).
        for s in &self.saps {
            d = d.min(s.sd(l));
        }
        if let Some(iaps) = &self.iaps {
            for s in iaps {
                d = d.min(s.sd(l));
            }
        }
        d
    }

    /// All distances at a local point.
    pub fn sample_local(&self, l: V3) -> VSample {
        let body = self.body_sd(l);
        let canal = self.canal_sd(l);
        let post = self.post_sd(l).max(-canal);
        let bone = if self.is_sacrum {
            smin(body, post, 4.0)
        } else {
            smin(body, post, 1.5)
        };
        VSample {
            body,
            post,
            bone,
            canal,
            dura: self.dura_sd(l, canal),
        }
    }

    /// Signed distance to the bone only (local coordinates).
    pub fn bone_sd_local(&self, l: V3) -> f64 {
        self.sample_local(l).bone
    }

    // ---- landmarks (local) ----

    pub fn sup_plane(&self) -> (V3, V3) {
        (self.sup_p, self.sup_n)
    }
    pub fn inf_plane(&self) -> Option<(V3, V3)> {
        (!self.is_sacrum).then_some((self.inf_p, self.inf_n))
    }
    pub fn is_sacrum(&self) -> bool {
        self.is_sacrum
    }
    /// Pedicle isthmus centre, axis towards the body, half width and half height.
    pub fn pedicle(&self, side: usize) -> (V3, V3, f64, f64) {
        let p = &self.arch.pedicles[side];
        (p.q, p.u, p.rw, p.rh)
    }
    /// How far (mm) the pedicle's cylinder reaches in front of its isthmus centre.
    pub fn pedicle_t_ant(&self, side: usize) -> f64 {
        self.arch.pedicles[side].t_ant
    }
    /// The most posterior (dorsal) point of the spinous process, local y: the process is a
    /// capsule in the mid-sagittal plane sloping caudally, so this is the end of its rounded
    /// tip straight behind the end of its axis, not the end of the axis itself (which lies
    /// lower on the rounding).
    pub fn spinous_tip(&self) -> V3 {
        let a = &self.arch;
        let end = if a.sp_end.x >= a.sp_root.x {
            a.sp_end
        } else {
            a.sp_root
        };
        V3::new(0.0, end.x + a.sp_r, end.y)
    }
    /// The most lateral point (local x) of a transverse process (`side` 0 left, 1 right).
    pub fn transverse_tip(&self, side: usize) -> Option<V3> {
        let out = V3::x() * if side == 0 { 1.0 } else { -1.0 };
        self.arch.tps.as_ref().map(|t| t[side].most_lateral(out))
    }
    /// Height of the body between the endplate rim planes along local z at depth `y`.
    pub fn height_at(&self, y: f64) -> f64 {
        let z_on = |p: V3, n: V3| p.z - (n.y * (y - p.y) + n.x * (0.0 - p.x)) / n.z;
        z_on(self.sup_p, self.sup_n) - z_on(self.inf_p, self.inf_n)
    }
}

/// An intervertebral disc between two placed vertebrae.
#[derive(Debug, Clone)]
pub(crate) struct DiscModel {
    pub upper: Level,
    pub lower: Level,
    /// Label, or 0 for a disc drawn outside the requested range (tissue only).
    pub label: u16,
    pub frame: Frame,
    a: f64,
    b0: f64,
    yoff: f64,
    conc_r: f64,
    conc_cy: f64,
    /// World point and normal pointing into the disc, lower (superior endplate of the
    /// vertebra below) and upper plane.
    lo_p: V3,
    lo_n: V3,
    up_p: V3,
    up_n: V3,
    pub depth: f64,
    pub radius: f64,
}

impl DiscModel {
    pub fn new(upper: &Placed, lower: &Placed, label: u16) -> Self {
        let lo_p = lower.sup_centre();
        let up_p = upper.inf_centre();
        let lo_n = lower.sup_normal();
        let up_n = -upper.inf_normal_up();
        let m = (lo_n - up_n).normalize();
        let centre = (lo_p + up_p) / 2.0;
        let mo = lower.morph;
        let a = mo.epw / 2.0;
        let b = mo.epd / 2.0;
        let conc_r = 0.9 * a;
        DiscModel {
            upper: upper.level,
            lower: lower.level,
            label,
            frame: frame_from_axis(centre, m),
            a,
            b0: b + POSTERIOR_CONCAVITY / 2.0,
            yoff: POSTERIOR_CONCAVITY / 2.0,
            conc_r,
            conc_cy: b + conc_r,
            lo_p,
            lo_n,
            up_p,
            up_n,
            depth: mo.epd,
            radius: a.max(b) + upper.disc_below + 4.0,
        }
    }

    /// Signed distance to the disc and whether the point lies in the nucleus.
    #[inline]
    pub fn sample(&self, p: V3) -> (f64, bool) {
        let l = self.frame.to_local(p);
        let e = ellipse(l.x, l.y - self.yoff, self.a, self.b0);
        let cut = self.conc_r - (l.x * l.x + (l.y - self.conc_cy).powi(2)).sqrt();
        let lat = e.max(cut) + DISC_MARGIN;
        let ext = ENDPLATE_CUP + 0.3;
        let d = lat
            .max(-self.lo_n.dot(&(p - self.lo_p)) - ext)
            .max(-self.up_n.dot(&(p - self.up_p)) - ext);
        let h = (self.up_p - self.lo_p).norm();
        let nucleus = ellipsoid(
            l - V3::new(0.0, 0.1 * self.depth, 0.0),
            V3::new(0.5 * self.a, 0.3 * self.depth, 0.42 * h),
        ) < 0.0;
        (d, nucleus)
    }

    pub fn centre(&self) -> V3 {
        self.frame.origin
    }

    /// Disc height (mm) between the two endplate rim planes at depth `y` (disc frame,
    /// anterior negative) in the mid-sagittal plane, measured along the disc axis.
    pub fn height_at(&self, y: f64) -> f64 {
        let q = self.frame.to_world(V3::new(0.0, y, 0.0));
        let m = self.frame.rot.column(2).into_owned();
        // Line q + t m meets plane (p, n) at t = n.(p - q) / n.m.
        let t_lo = self.lo_n.dot(&(self.lo_p - q)) / self.lo_n.dot(&m);
        let t_up = self.up_n.dot(&(self.up_p - q)) / self.up_n.dot(&m);
        t_up - t_lo
    }
}
