//! Metal implants in the phantom CT: bilateral pedicle screws with their heads, rods joining
//! the heads of consecutive instrumented levels, and the streak artefacts that metal leaves
//! in CT.
//!
//! Geometry: a titanium screw of 6.5 mm diameter from the truth's pedicle entry along the
//! pedicle axis for 80 % of the axis length (at most 50 mm), a 6 mm-radius head 8 mm
//! behind the entry, and 5.5 mm rods between the heads on each side. Metal is written as
//! 3071 HU, where 12-bit CT reconstructions clip, into the tissue image before the
//! point-spread function (so it has the soft rim of a real scan), and the image is clipped
//! to -1024..=3071 HU after the noise.
//!
//! Artefacts (a simple model, not a reconstruction; Barrett & Keat 2004, RadioGraphics
//! 24:1679, describe the mechanisms): in each axial slice with metal on both sides, a dark
//! band along the line between the two sides' metal (beam hardening and photon starvation between
//! two metal objects, -500 HU at the line, 2.5 mm Gaussian half-width), and around each
//! side's metal alternating bright and dark radial streaks (+-250 HU, 12 per turn, decaying
//! over 25 mm). The label map is not changed: the anatomy under the metal keeps its label.

use crate::sdf::V3;
use crate::truth::Truth;
use rayon::prelude::*;
use spinetwin_anatomy::Level;
use spinetwin_imaging::Grid;

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

/// Which voxels are metal: 0 none, 1 a left-side part, 2 a right-side part. Screws at
/// `levels` (heads and rods join consecutive instrumented vertebrae on each side, so a
/// skip-level construct bridges the levels between); levels without truth pedicles (the
/// sacrum) get none.
pub(crate) fn metal_mask(grid: &Grid, truth: &Truth, levels: &[Level]) -> Vec<u8> {
    let mut parts: Vec<(Capsule, u8)> = Vec::new();
    let mut heads: [Vec<V3>; 2] = [Vec::new(), Vec::new()];
    for v in &truth.vertebrae {
        if !levels.iter().any(|l| l.name() == v.level) || v.level == "S1" {
            continue;
        }
        for (side, p) in [&v.pedicle_left, &v.pedicle_right].into_iter().enumerate() {
            let e = V3::from(p.entry);
            let d = V3::from(p.direction).normalize();
            let len = (0.8 * p.axis_length_mm).min(SCREW_MAX_MM);
            let tag = side as u8 + 1;
            parts.push((
                Capsule {
                    a: e,
                    b: e + d * len,
                    r: SCREW_RADIUS_MM,
                },
                tag,
            ));
            let h = e - d * HEAD_BEHIND_ENTRY_MM;
            parts.push((
                Capsule {
                    a: h,
                    b: h,
                    r: HEAD_RADIUS_MM,
                },
                tag,
            ));
            heads[side].push(h);
        }
    }
    for (side, hs) in heads.iter().enumerate() {
        for w in hs.windows(2) {
            parts.push((
                Capsule {
                    a: w[0],
                    b: w[1],
                    r: ROD_RADIUS_MM,
                },
                side as u8 + 1,
            ));
        }
    }
    let [nx, ny, nz] = grid.dims;
    let mut mask = vec![0u8; nx * ny * nz];
    for (c, tag) in &parts {
        let lo = c.a.inf(&c.b) - V3::repeat(c.r + 1.0);
        let hi = c.a.sup(&c.b) + V3::repeat(c.r + 1.0);
        let (il, ih) = (grid.world_to_index(lo), grid.world_to_index(hi));
        let range = |a: usize| {
            let (x, y) = (il[a].min(ih[a]).floor(), il[a].max(ih[a]).ceil());
            (x.max(0.0) as usize)..=(y.min((grid.dims[a] - 1) as f64).max(0.0) as usize)
        };
        for k in range(2) {
            for j in range(1) {
                for i in range(0) {
                    let p = grid.index_to_world(V3::new(i as f64, j as f64, k as f64));
                    if c.contains(&p) {
                        mask[grid.linear(i, j, k)] = *tag;
                    }
                }
            }
        }
    }
    mask
}

/// Writes the metal into the tissue image (before the point-spread function, which gives it
/// the soft rim of a real scan).
pub(crate) fn write_metal(hu: &mut [f32], mask: &[u8]) {
    for (v, &m) in hu.iter_mut().zip(mask) {
        if m != 0 {
            *v = METAL_HU;
        }
    }
}

/// Adds the streak artefacts of `mask`'s metal to the image (after the point-spread
/// function, before the noise): per axial slice, the dark band where both sides have metal
/// and the radial streaks around each side's metal.
pub(crate) fn add_streaks(hu: &mut [f32], grid: &Grid, mask: &[u8]) {
    let [nx, ny, _] = grid.dims;
    hu.par_chunks_mut(nx * ny)
        .zip(mask.par_chunks(nx * ny))
        .enumerate()
        .for_each(|(k, (sl, ms))| {
            let world =
                |i: usize, j: usize| grid.index_to_world(V3::new(i as f64, j as f64, k as f64));
            let mut sums = [(V3::zeros(), 0usize); 2];
            for (p, &m) in ms.iter().enumerate() {
                if m != 0 {
                    let s = &mut sums[m as usize - 1];
                    s.0 += world(p % nx, p / nx);
                    s.1 += 1;
                }
            }
            let sides: Vec<V3> = sums
                .iter()
                .filter(|s| s.1 > 0)
                .map(|s| s.0 / s.1 as f64)
                .collect();
            if sides.is_empty() {
                return;
            }
            for (p, v) in sl.iter_mut().enumerate() {
                if ms[p] != 0 {
                    continue;
                }
                let q = world(p % nx, p / nx);
                let mut add = 0.0;
                if let [a, b] = sides[..] {
                    // Distance to the segment between the two sides, in the slice.
                    let ab = V3::new(b.x - a.x, b.y - a.y, 0.0);
                    let aq = V3::new(q.x - a.x, q.y - a.y, 0.0);
                    let t = (aq.dot(&ab) / ab.norm_squared().max(1e-9)).clamp(0.0, 1.0);
                    let d = (aq - ab * t).norm();
                    add += BAND_HU * (-0.5 * (d / BAND_HALF_WIDTH_MM).powi(2)).exp();
                }
                for c in &sides {
                    let (dx, dy) = (q.x - c.x, q.y - c.y);
                    let r = (dx * dx + dy * dy).sqrt();
                    if r > SCREW_RADIUS_MM {
                        let theta = dy.atan2(dx);
                        add += STREAK_HU
                            * (STREAKS_PER_TURN * theta).cos()
                            * (-(r - SCREW_RADIUS_MM) / STREAK_DECAY_MM).exp();
                    }
                }
                *v = (*v as f64 + add) as f32;
            }
        });
}

/// Clips to the range of a 12-bit reconstruction, -1024..=3071 HU (after the noise).
pub(crate) fn clip(hu: &mut [f32]) {
    for v in hu.iter_mut() {
        *v = v.clamp(-1024.0, METAL_HU);
    }
}
