//! Metal implants in the phantom CT: bilateral pedicle screws with their heads, rods joining
//! the heads of consecutive instrumented levels, and the streak artefacts that metal leaves
//! in CT.
//!
//! Geometry: a titanium screw of 6.5 mm diameter from the truth's pedicle entry along the
//! pedicle axis for 80 % of the axis length (at most 50 mm), a 6 mm-radius head 8 mm
//! behind the entry, and 5.5 mm rods between the heads on each side. Metal is written as
//! 3071 HU, where 12-bit CT reconstructions clip.
//!
//! Artefacts (a simple model, not a reconstruction; Barrett & Keat 2004, RadioGraphics
//! 24:1679, describe the mechanisms): in each axial slice with metal on both sides, a dark
//! band along the line between the two sides (beam hardening and photon starvation between
//! two metal objects, -500 HU at the line, 2.5 mm Gaussian half-width), and around each
//! side's metal alternating bright and dark radial streaks (+-250 HU, 12 per turn, decaying
//! over 25 mm). The label map is not changed: the anatomy under the metal keeps its label.

use crate::sdf::V3;
use crate::truth::Truth;
use spinetwin_anatomy::Level;
use spinetwin_imaging::Volume;

/// HU written for metal: the 12-bit ceiling of most reconstructions.
pub const METAL_HU: f32 = 3071.0;
const SCREW_RADIUS_MM: f64 = 3.25;
const SCREW_MAX_MM: f64 = 50.0;
const HEAD_RADIUS_MM: f64 = 6.0;
const HEAD_BEHIND_ENTRY_MM: f64 = 8.0;
const ROD_RADIUS_MM: f64 = 2.75;
const BAND_HU: f64 = -500.0;
const BAND_HALF_WIDTH_MM: f64 = 2.5;
const STREAK_HU: f64 = 250.0;
const STREAKS_PER_TURN: f64 = 12.0;
const STREAK_DECAY_MM: f64 = 25.0;

/// A metal primitive: a capsule (segment with a radius); a sphere is a capsule of length 0.
struct Capsule {
    a: V3,
    b: V3,
    r: f64,
}

impl Capsule {
    fn contains(&self, p: &V3) -> bool {
        let ab = self.b - self.a;
        let t = if ab.norm_squared() > 0.0 {
            ((p - self.a).dot(&ab) / ab.norm_squared()).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (p - (self.a + ab * t)).norm() <= self.r
    }
}

/// Writes screws (and rods between consecutive instrumented levels) at `levels` into `ct`,
/// then the streak artefacts. Levels without truth pedicles (the sacrum) get none.
pub(crate) fn add_screws(ct: &mut Volume<f32>, truth: &Truth, levels: &[Level]) {
    let mut parts: Vec<Capsule> = Vec::new();
    let mut heads: [Vec<V3>; 2] = [Vec::new(), Vec::new()];
    for v in &truth.vertebrae {
        if !levels.iter().any(|l| l.name() == v.level) || v.level == "S1" {
            continue;
        }
        for (side, p) in [&v.pedicle_left, &v.pedicle_right].into_iter().enumerate() {
            let e = V3::from(p.entry);
            let d = V3::from(p.direction).normalize();
            let len = (0.8 * p.axis_length_mm).min(SCREW_MAX_MM);
            parts.push(Capsule {
                a: e,
                b: e + d * len,
                r: SCREW_RADIUS_MM,
            });
            let h = e - d * HEAD_BEHIND_ENTRY_MM;
            parts.push(Capsule {
                a: h,
                b: h,
                r: HEAD_RADIUS_MM,
            });
            heads[side].push(h);
        }
    }
    for side in &heads {
        for w in side.windows(2) {
            parts.push(Capsule {
                a: w[0],
                b: w[1],
                r: ROD_RADIUS_MM,
            });
        }
    }
    if parts.is_empty() {
        return;
    }
    let g = ct.grid().clone();
    let [nx, ny, nz] = g.dims;
    let world = |i: usize, j: usize, k: usize| {
        g.index_to_world(nalgebra::Vector3::new(i as f64, j as f64, k as f64))
    };
    // Metal voxels, by bounding boxes of the parts.
    let mut metal = vec![false; nx * ny * nz];
    for c in &parts {
        let lo = c.a.inf(&c.b) - V3::repeat(c.r + 1.0);
        let hi = c.a.sup(&c.b) + V3::repeat(c.r + 1.0);
        let (il, ih) = (g.world_to_index(lo), g.world_to_index(hi));
        let range = |a: usize| {
            let (x, y) = (il[a].min(ih[a]).floor(), il[a].max(ih[a]).ceil());
            (x.max(0.0) as usize)..=(y.min((g.dims[a] - 1) as f64).max(0.0) as usize)
        };
        for k in range(2) {
            for j in range(1) {
                for i in range(0) {
                    if c.contains(&world(i, j, k)) {
                        metal[g.linear(i, j, k)] = true;
                    }
                }
            }
        }
    }
    let data = ct.data_mut();
    for k in 0..nz {
        // The metal of this slice on each side of its mean x.
        let px: Vec<(usize, usize)> = (0..ny)
            .flat_map(|j| (0..nx).map(move |i| (i, j)))
            .filter(|&(i, j)| metal[g.linear(i, j, k)])
            .collect();
        if px.is_empty() {
            continue;
        }
        let pts: Vec<V3> = px.iter().map(|&(i, j)| world(i, j, k)).collect();
        let mx = pts.iter().map(|p| p.x).sum::<f64>() / pts.len() as f64;
        let centre = |left: bool| {
            let s: Vec<&V3> = pts.iter().filter(|p| (p.x >= mx) == left).collect();
            (!s.is_empty()).then(|| s.iter().fold(V3::zeros(), |a, p| a + **p) / s.len() as f64)
        };
        let sides: Vec<V3> = [centre(true), centre(false)]
            .into_iter()
            .flatten()
            .collect();
        for j in 0..ny {
            for i in 0..nx {
                let l = g.linear(i, j, k);
                if metal[l] {
                    data[l] = METAL_HU;
                    continue;
                }
                let p = world(i, j, k);
                let mut add = 0.0;
                if let [a, b] = sides[..] {
                    // Distance to the segment between the two sides, in the slice.
                    let ab = V3::new(b.x - a.x, b.y - a.y, 0.0);
                    let ap = V3::new(p.x - a.x, p.y - a.y, 0.0);
                    let t = (ap.dot(&ab) / ab.norm_squared().max(1e-9)).clamp(0.0, 1.0);
                    let d = (ap - ab * t).norm();
                    add += BAND_HU * (-0.5 * (d / BAND_HALF_WIDTH_MM).powi(2)).exp();
                }
                for c in &sides {
                    let (dx, dy) = (p.x - c.x, p.y - c.y);
                    let r = (dx * dx + dy * dy).sqrt();
                    if r > SCREW_RADIUS_MM {
                        let theta = dy.atan2(dx);
                        add += STREAK_HU
                            * (STREAKS_PER_TURN * theta).cos()
                            * (-(r - SCREW_RADIUS_MM) / STREAK_DECAY_MM).exp();
                    }
                }
                data[l] = (data[l] as f64 + add) as f32;
            }
        }
    }
}
