//! The tissue model of the whole scan (spine, discs, canal, muscles, fat, bowel, air), its
//! sampling onto the voxel grid with partial-volume supersampling, the CT point-spread blur
//! and the image noise.

use crate::sdf::{ellipse, ellipsoid, V3};
use crate::spec::PhantomSpec;
use crate::spine::{DiscModel, Placed, VertebraModel, BODY_CORTEX, POST_CORTEX};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spinetwin_anatomy::{Level, CANAL_LABEL};
use spinetwin_imaging::{Grid, Volume};

/// Nominal (noise- and blur-free) HU values of the tissues, as used for this phantom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TissueHu {
    /// Cortical shell of bodies and posterior elements.
    pub cortical_bone: f64,
    /// Cancellous (trabecular) bone of the vertebral bodies: `bmd_scale * 220`.
    pub cancellous_body: f64,
    /// Cancellous bone of the posterior elements (denser than the body).
    pub cancellous_posterior: f64,
    /// Annulus fibrosus.
    pub disc_annulus: f64,
    /// Nucleus pulposus.
    pub disc_nucleus: f64,
    /// Dural sac (CSF).
    pub dural_sac: f64,
    /// Epidural fat.
    pub epidural_fat: f64,
    /// Skeletal muscle (psoas, erector spinae, quadratus lumborum).
    pub muscle: f64,
    /// Subcutaneous and retroperitoneal fat.
    pub fat: f64,
    /// Abdominal soft tissue (bowel, organs, unenhanced vessels).
    pub soft_tissue: f64,
    /// Skin.
    pub skin: f64,
    /// Bowel gas.
    pub bowel_gas: f64,
    /// Air outside the body.
    pub air: f64,
}

impl TissueHu {
    /// The values for a bone density scale.
    pub fn for_bmd(bmd_scale: f64) -> Self {
        TissueHu {
            cortical_bone: 900.0 + 350.0 * bmd_scale,
            cancellous_body: 220.0 * bmd_scale,
            cancellous_posterior: 340.0 * bmd_scale,
            disc_annulus: 95.0,
            disc_nucleus: 70.0,
            dural_sac: 10.0,
            epidural_fat: -80.0,
            muscle: 50.0,
            fat: -100.0,
            soft_tissue: 40.0,
            skin: 45.0,
            bowel_gas: -900.0,
            air: -1000.0,
        }
    }
}

/// Per-slice description of the spine position for the soft tissues (which follow the
/// spine curve).
#[derive(Debug, Clone)]
struct SliceInfo {
    cx: f64,
    cy: f64,
    half_w: f64,
    half_d: f64,
    post_y: f64,
    tp_half: f64,
    /// 0 at L1, 1 at L5 (extrapolated), for the growing psoas.
    lumbar_pos: f64,
    vessels: bool,
}

/// Everything that is drawn.
pub(crate) struct Scene {
    pub verts: Vec<VertebraModel>,
    pub discs: Vec<DiscModel>,
    pub hu: TissueHu,
    torso_cx: f64,
    chain: Vec<Placed>,
}

/// Fixed bowel gas pockets relative to the spine (x, dy anterior of the body, z fraction of
/// the scanned height, radii). Fixed so that the anatomy does not depend on the noise seed.
const GAS: [(f64, f64, f64, f64, f64, f64); 6] = [
    (-45.0, -58.0, 0.25, 14.0, 9.0, 11.0),
    (38.0, -62.0, 0.45, 11.0, 8.0, 9.0),
    (-12.0, -70.0, 0.7, 9.0, 6.0, 8.0),
    (62.0, -50.0, 0.8, 12.0, 9.0, 10.0),
    (-70.0, -52.0, 0.55, 8.0, 7.0, 12.0),
    (15.0, -66.0, 0.1, 10.0, 7.0, 9.0),
];

impl Scene {
    pub fn new(chain: Vec<Placed>, spec: &PhantomSpec) -> Self {
        let drawn = spec.levels.levels();
        let idx: Vec<usize> = drawn
            .iter()
            .map(|l| {
                chain
                    .iter()
                    .position(|p| p.level == *l)
                    .expect("level in chain")
            })
            .collect();
        let verts: Vec<VertebraModel> = idx
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                VertebraModel::new(&chain, i, n == 0, n + 1 == idx.len(), spec.facet_joints)
            })
            .collect();
        // Discs between drawn levels carry labels; the discs just outside the range are
        // drawn as tissue so the image does not end in a gap.
        let mut discs = Vec::new();
        let first = idx[0];
        let last = *idx.last().expect("two levels");
        for i in first.saturating_sub(1)..(last + 1).min(chain.len() - 1) {
            let (u, w) = (&chain[i], &chain[i + 1]);
            let labelled = i >= first && i < last;
            let label = if labelled {
                u.level.disc_below_label().unwrap_or(0)
            } else {
                0
            };
            discs.push(DiscModel::new(u, w, label));
        }
        let torso_cx = verts.iter().map(|v| v.frame.origin.x).sum::<f64>() / verts.len() as f64;
        Scene {
            verts,
            discs,
            hu: TissueHu::for_bmd(spec.bmd_scale),
            torso_cx,
            chain,
        }
    }

    /// The axis-aligned LPS grid: ~220 x 220 mm around the spine, cranio-caudally the drawn
    /// levels with a ~10 mm margin (the sacrum is cut ~36 mm below its upper endplate).
    pub fn grid(&self, spacing: f64) -> Result<Grid, String> {
        let n = self.verts.len() as f64;
        let cx = self.verts.iter().map(|v| v.frame.origin.x).sum::<f64>() / n;
        let cy = self.verts.iter().map(|v| v.frame.origin.y).sum::<f64>() / n + 12.0;
        let top = &self.verts[0];
        let mut zmax = f64::NEG_INFINITY;
        for sx in [-1.0, 1.0] {
            for sy in [-1.0, 1.0] {
                let c = V3::new(
                    sx * top.morph.epw / 2.0,
                    sy * top.morph.epd / 2.0,
                    top.h / 2.0,
                );
                zmax = zmax.max(top.frame.to_world(c).z);
            }
        }
        for j in &top.joints_sup {
            zmax = zmax.max(j.centre.z + 7.0);
        }
        zmax += 8.0;
        let bot = self.verts.last().expect("levels");
        let zmin = if bot.is_sacrum() {
            bot.frame.to_world(V3::new(0.0, 0.0, bot.h / 2.0)).z - 36.0
        } else {
            let mut z = f64::INFINITY;
            for sx in [-1.0, 1.0] {
                for sy in [-1.0, 1.0] {
                    let c = V3::new(
                        sx * bot.morph.epw / 2.0,
                        sy * bot.morph.epd / 2.0,
                        -bot.h / 2.0,
                    );
                    z = z.min(bot.frame.to_world(c).z);
                }
            }
            if let Some(js) = &bot.joints_inf {
                for j in js {
                    z = z.min(j.centre.z - 8.0);
                }
            }
            z - 10.0
        };
        let nxy = (220.0 / spacing).round() as usize + 1;
        let nz = ((zmax - zmin) / spacing).ceil() as usize + 1;
        let half = (nxy - 1) as f64 * spacing / 2.0;
        let origin = V3::new(cx - half, cy - half, zmin);
        Grid::axis_aligned([nxy, nxy, nz], [spacing; 3], origin).map_err(|e| e.to_string())
    }

    fn slice_info(&self, z: f64) -> SliceInfo {
        // The chain is cranial to caudal, so body-centre z decreases along it.
        let c = &self.chain;
        let zl = |l: Level| {
            c.iter()
                .find(|p| p.level == l)
                .map(|p| p.frame.origin.z)
                .unwrap_or(0.0)
        };
        let (z1, z5) = (zl(Level::L1), zl(Level::L5));
        let lumbar_pos = (z1 - z) / (z1 - z5);
        let (i0, t) = if z >= c[0].frame.origin.z {
            (0, 0.0)
        } else if z <= c[c.len() - 1].frame.origin.z {
            (c.len() - 2, 1.0)
        } else {
            let i = (0..c.len() - 1)
                .find(|&i| z <= c[i].frame.origin.z && z >= c[i + 1].frame.origin.z)
                .unwrap_or(0);
            let (za, zb) = (c[i].frame.origin.z, c[i + 1].frame.origin.z);
            (i, (za - z) / (za - zb).max(1e-9))
        };
        let (a, b) = (&c[i0], &c[i0 + 1]);
        let lerp = |x: f64, y: f64| x + (y - x) * t;
        let tp = |p: &Placed| {
            if p.morph.tp_span > 0.0 {
                p.morph.tp_span / 2.0
            } else {
                45.0
            }
        };
        let half_d = lerp(a.morph.epd, b.morph.epd) / 2.0;
        SliceInfo {
            cx: lerp(a.frame.origin.x, b.frame.origin.x),
            cy: lerp(a.frame.origin.y, b.frame.origin.y),
            half_w: lerp(a.morph.epw, b.morph.epw) / 2.0,
            half_d,
            post_y: half_d + lerp(a.morph.canal_d, b.morph.canal_d),
            tp_half: lerp(tp(a), tp(b)),
            lumbar_pos,
            vessels: z > zl(Level::L4),
        }
    }

    /// Soft tissue HU at a world point (everything that is not spine).
    fn soft(&self, p: V3, s: &SliceInfo, zfrac: f64) -> f64 {
        let hu = &self.hu;
        let (tx, ty) = (self.torso_cx, s.cy - 30.0);
        let outer = ellipse(p.x - tx, p.y - ty, 170.0, 120.0);
        if outer > 0.0 {
            return hu.air;
        }
        if outer > -2.0 {
            return hu.skin;
        }
        if ellipse(p.x - tx, p.y - ty, 150.0, 100.0) > 0.0 {
            return hu.fat;
        }
        let (x, y) = (p.x - s.cx, p.y - s.cy);
        // Psoas: absent above T12, growing to ~45 x 35 mm at L4-L5.
        let lp = s.lumbar_pos;
        let grow = if lp < 0.0 {
            (1.0 + lp).max(0.0)
        } else {
            1.0 + 2.2 * lp.min(1.2)
        };
        let (prx, pry) = (7.0 * grow, 6.0 * grow);
        if prx > 1.0 {
            for side in [1.0, -1.0] {
                let px = side * (s.half_w + prx - 6.0);
                if ellipse(x - px, y - (2.0 - 0.15 * prx), prx, pry) <= 0.0 {
                    return hu.muscle;
                }
            }
        }
        for side in [1.0, -1.0] {
            // Erector spinae (with multifidus) in the groove beside the spinous processes.
            if ellipse(x - side * 30.0, y - (s.post_y + 9.0), 26.0, 17.0) <= 0.0 {
                return hu.muscle + 5.0;
            }
            // Quadratus lumborum behind the transverse process tips, tapering out at T12.
            let q = ((lp + 0.6) / 0.5).clamp(0.0, 1.0);
            if q > 0.1
                && ellipse(
                    x - side * (s.tp_half + 2.0),
                    y - (s.half_d + 13.0),
                    15.0 * q,
                    7.0 * q,
                ) <= 0.0
            {
                return hu.muscle;
            }
        }
        // Interspinous ligaments between the spinous processes.
        if x.abs() < 3.0 && y > s.post_y && y < s.post_y + 38.0 {
            return hu.soft_tissue;
        }
        if s.vessels {
            // Aorta (left) and inferior vena cava (right), unenhanced.
            if ellipse(x - 14.0, y + s.half_d + 13.0, 11.0, 11.0) <= 0.0
                || ellipse(x + 24.0, y + s.half_d + 11.0, 13.0, 9.0) <= 0.0
            {
                return hu.soft_tissue;
            }
        }
        if y > -5.0 || ellipse(x, y - 5.0, 90.0, s.half_d + 32.0) <= 0.0 {
            return hu.fat;
        }
        for g in GAS {
            let q = V3::new(x - g.0, y - g.1, (zfrac - g.2) * 200.0);
            if ellipsoid(q, V3::new(g.3, g.4, g.5)) <= 0.0 {
                return hu.bowel_gas;
            }
        }
        // Mesenteric fat between bowel loops: irregular blobs from a fixed value-noise field
        // (independent of the noise seed).
        if value_noise(p / 14.0) > 0.62 {
            return hu.fat + 20.0;
        }
        hu.soft_tissue
    }

    /// Tissue at one point: HU, label and the distance to the nearest spine boundary.
    #[inline]
    fn classify(
        &self,
        p: V3,
        s: &SliceInfo,
        zfrac: f64,
        cv: &[usize],
        cd: &[usize],
    ) -> (f64, u16, f64) {
        let hu = &self.hu;
        let mut best: Option<(usize, crate::spine::VSample)> = None;
        let mut canal = f64::INFINITY;
        let mut dura = f64::INFINITY;
        let mut near = f64::INFINITY;
        // The nearest bone boundary alone: inside bone and inside a disc the canal's boundary
        // changes nothing (bone and disc win), so it must not steer the partial volume there
        // (`across_boundary`).
        let mut near_bone = f64::INFINITY;
        for &i in cv {
            let v = &self.verts[i];
            if !v.in_box(&p) {
                continue;
            }
            let smp = v.sample_local(v.frame.to_local(p));
            canal = canal.min(smp.canal);
            dura = dura.min(smp.dura);
            near = near.min(smp.bone.abs()).min(smp.canal.abs());
            near_bone = near_bone.min(smp.bone.abs());
            if best.is_none_or(|(_, b)| smp.bone < b.bone) {
                best = Some((i, smp));
            }
        }
        if let Some((i, smp)) = best {
            if smp.bone <= 0.0 {
                let body = smp.body <= smp.post;
                let t = if body { BODY_CORTEX } else { POST_CORTEX };
                let near = near_bone.min((smp.bone + t).abs());
                let v = if smp.bone > -t {
                    hu.cortical_bone
                } else {
                    // Trabecular texture: +-12 % around the nominal density, a fixed
                    // pattern (seed-independent, multiplicative so BMD ratios stay exact).
                    let tex = 1.0 + 0.24 * (value_noise(p / 2.5) - 0.5);
                    tex * if body {
                        hu.cancellous_body
                    } else {
                        hu.cancellous_posterior
                    }
                };
                return (v, self.verts[i].label, near);
            }
        }
        for &i in cd {
            let d = &self.discs[i];
            if (p - d.centre()).norm_squared() > d.radius * d.radius {
                continue;
            }
            let (sd, nucleus) = d.sample(p);
            near = near.min(sd.abs());
            if sd <= 0.0 {
                let v = if nucleus {
                    hu.disc_nucleus
                } else {
                    hu.disc_annulus
                };
                return (v, d.label, near_bone.min(sd.abs()));
            }
        }
        if canal <= 0.0 {
            let v = if dura <= 0.0 {
                hu.dural_sac
            } else {
                hu.epidural_fat
            };
            return (v, CANAL_LABEL, near);
        }
        (self.soft(p, s, zfrac), 0, near)
    }

    /// Samples HU (with partial-volume supersampling near spine boundaries) and labels.
    pub fn rasterize(&self, grid: &Grid) -> (Vec<f32>, Vec<u16>) {
        let [nx, ny, nz] = grid.dims;
        let sp = grid.spacing[0];
        let z0 = grid.origin.z;
        let zspan = ((nz - 1) as f64 * sp).max(1e-9);
        let supersample = sp >= 0.8;
        let offs: Vec<V3> = (0..8)
            .map(|c| {
                V3::new(
                    if c & 1 == 0 { -0.25 } else { 0.25 },
                    if c & 2 == 0 { -0.25 } else { 0.25 },
                    if c & 4 == 0 { -0.25 } else { 0.25 },
                ) * sp
            })
            .collect();
        let mut hu = vec![0f32; grid.len()];
        let mut labels = vec![0u16; grid.len()];
        hu.par_chunks_mut(nx * ny)
            .zip(labels.par_chunks_mut(nx * ny))
            .enumerate()
            .for_each(|(k, (hslab, lslab))| {
                let z = z0 + k as f64 * sp;
                let zfrac = (z - z0) / zspan;
                let s = self.slice_info(z);
                let margin = sp;
                let cv: Vec<usize> = (0..self.verts.len())
                    .filter(|&i| {
                        let (lo, hi) = &self.verts[i].aabb;
                        z >= lo.z - margin && z <= hi.z + margin
                    })
                    .collect();
                let cd: Vec<usize> = (0..self.discs.len())
                    .filter(|&i| {
                        let d = &self.discs[i];
                        (z - d.centre().z).abs() <= d.radius + margin
                    })
                    .collect();
                for j in 0..ny {
                    for i in 0..nx {
                        let p = grid.index_to_world(V3::new(i as f64, j as f64, k as f64));
                        let (v, l, near) = self.classify(p, &s, zfrac, &cv, &cd);
                        let o = i + nx * j;
                        lslab[o] = l;
                        hslab[o] = if supersample && near < 0.9 * sp {
                            let f = |q: V3| self.classify(q, &s, zfrac, &cv, &cd);
                            across_boundary(&f, p, sp).unwrap_or_else(|| {
                                offs.iter().map(|d| f(p + d).0).sum::<f64>() / 8.0
                            }) as f32
                        } else {
                            v as f32
                        };
                    }
                }
            });
        (hu, labels)
    }
}

/// Partial volume of a voxel of size `sp` at `p` next to a boundary: the tissue values along
/// the boundary's normal `n` (the gradient of the distance to the nearest boundary,
/// `f(q).2`), weighted by the density of the voxel cube projected on `n` (the convolution of
/// three boxes `sp |n_x|`, `sp |n_y|` and `sp |n_z|` wide), in 16 cells. For a locally plane
/// boundary, or parallel layers such as a cortex, that is the voxel's mean, and it moves
/// continuously with the boundary's sub-voxel position. A regular 2 x 2 x 2 supersample
/// moves it in half-voxel steps where the boundary lies along the grid: a 0.8 mm endplate
/// cortex in 1.5 mm voxels then jumps by a quarter of its contrast as the plate crosses the
/// grid, and sub-voxel readings of the CT follow the steps (docs/segment/landmarks.md,
/// session 25). `None` where the distance has no clear gradient (corners, the middle of a
/// thin layer): the caller supersamples instead.
pub(crate) fn across_boundary(f: &dyn Fn(V3) -> (f64, u16, f64), p: V3, sp: f64) -> Option<f64> {
    // Gradient from a tetrahedral stencil: sum_i t_i f(q + h t_i) = 4 h grad f. A distance
    // has a unit gradient; where the stencil straddles the boundary (the voxel's centre
    // within 0.13 mm of it) or two boundaries meet within it, it has not, and the normal is
    // taken 0.4 voxel away along one axis or another (the same plane's normal, up to a sign
    // the average below ignores).
    let h = 0.05 * sp;
    let grad = |q: V3| {
        let mut g = V3::zeros();
        for t in [
            V3::new(1.0, 1.0, 1.0),
            V3::new(1.0, -1.0, -1.0),
            V3::new(-1.0, 1.0, -1.0),
            V3::new(-1.0, -1.0, 1.0),
        ] {
            g += t * f(q + t * h).2;
        }
        let g = g / (4.0 * h);
        (0.8..=1.2).contains(&g.norm()).then_some(g)
    };
    let g = [V3::zeros(), V3::x(), V3::y(), V3::z()]
        .iter()
        .find_map(|e| grad(p + e * (0.4 * sp)))?;
    let n = g.normalize();
    // Box widths; a box of zero width is taken 2 % of a voxel wide (a near-delta that keeps
    // the closed form below finite).
    let c = [n.x, n.y, n.z].map(|x| sp * x.abs().max(0.02));
    let width: f64 = c.iter().sum();
    // Distribution function of the sum of three uniform variables on [0, c_i] (piecewise
    // cubic): sum over the subsets S of {1, 2, 3} of (-1)^|S| (t - sum_S c)_+^3 / (6 c1 c2 c3).
    let cdf = |t: f64| {
        let mut d = 0.0;
        for m in 0..8u32 {
            let shift: f64 = (0..3).filter(|i| m & (1 << i) != 0).map(|i| c[i]).sum();
            let sign = if m.count_ones() % 2 == 0 { 1.0 } else { -1.0 };
            d += sign * (t - shift).max(0.0).powi(3);
        }
        d / (6.0 * c[0] * c[1] * c[2])
    };
    // K cells along the normal, each weighted by the voxel's exact share in it, the tissue
    // taken at its middle.
    const K: usize = 16;
    let (mut sum, mut wsum) = (0.0, 0.0);
    for k in 0..K {
        let (t0, t1) = (
            k as f64 / K as f64 * width,
            (k + 1) as f64 / K as f64 * width,
        );
        let w = cdf(t1) - cdf(t0);
        sum += w * f(p + n * (0.5 * (t0 + t1) - width / 2.0)).0;
        wsum += w;
    }
    (wsum > 0.0).then(|| sum / wsum)
}

/// Separable Gaussian blur (sigma in voxels) of a volume in storage order, in place.
pub(crate) fn gaussian_blur(data: &mut [f32], dims: [usize; 3], sigma: f64) {
    if sigma < 0.3 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut w: Vec<f32> = (-r..=r)
        .map(|t| (-(t * t) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let s: f32 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= s);
    let [nx, ny, nz] = dims;
    let slab = nx * ny;
    // x and y within each slab.
    data.par_chunks_mut(slab).for_each(|sl| {
        let mut tmp = vec![0f32; slab];
        blur_in_slab(sl, &mut tmp, [nx, ny], true, &w, r);
        blur_in_slab(&tmp, sl, [nx, ny], false, &w, r);
    });
    // z across slabs, in place: only the last `r` original slabs are kept aside, so the
    // pass needs O(r) slabs of extra memory rather than a copy of the volume.
    let mut kept: std::collections::VecDeque<Vec<f32>> = std::collections::VecDeque::new();
    let mut out = vec![0f32; slab];
    for k in 0..nz {
        {
            let data_ref: &[f32] = data;
            let kept_ref = &kept;
            out.par_chunks_mut(4096).enumerate().for_each(|(c, o)| {
                let base = c * 4096;
                o.iter_mut().for_each(|v| *v = 0.0);
                for (t, wt) in w.iter().enumerate() {
                    let kk = (k as isize + t as isize - r).clamp(0, nz as isize - 1) as usize;
                    let src: &[f32] = if kk < k {
                        // Slab kk was already overwritten: use its kept original.
                        &kept_ref[kept_ref.len() - (k - kk)]
                    } else {
                        &data_ref[kk * slab..(kk + 1) * slab]
                    };
                    for (i, v) in o.iter_mut().enumerate() {
                        *v += wt * src[base + i];
                    }
                }
            });
        }
        kept.push_back(data[k * slab..(k + 1) * slab].to_vec());
        if kept.len() > r as usize {
            kept.pop_front();
        }
        data[k * slab..(k + 1) * slab].copy_from_slice(&out);
    }
}

/// One 1-D pass of the separable blur inside an `nx x ny` slab, along x or along y, with
/// edge values repeated past the border.
fn blur_in_slab(
    src: &[f32],
    dst: &mut [f32],
    [nx, ny]: [usize; 2],
    along_x: bool,
    w: &[f32],
    r: isize,
) {
    for j in 0..ny {
        for i in 0..nx {
            let mut acc = 0.0;
            for (t, wt) in w.iter().enumerate() {
                let off = t as isize - r;
                let idx = if along_x {
                    (i as isize + off).clamp(0, nx as isize - 1) as usize + nx * j
                } else {
                    i + nx * (j as isize + off).clamp(0, ny as isize - 1) as usize
                };
                acc += wt * src[idx];
            }
            dst[i + nx * j] = acc;
        }
    }
}

/// Smooth value noise in 0..1 on a unit lattice (trilinear interpolation of hashed corner
/// values), used for anatomy that must not depend on the seed.
fn value_noise(p: V3) -> f64 {
    let f = p.map(f64::floor);
    let t = p - f;
    let s = t.map(|v| v * v * (3.0 - 2.0 * v));
    let corner = |dx: i64, dy: i64, dz: i64| {
        let h = splitmix(
            (f.x as i64 + dx) as u64
                ^ splitmix((f.y as i64 + dy) as u64 ^ splitmix((f.z as i64 + dz) as u64)),
        );
        (h >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut acc = 0.0;
    for c in 0..8 {
        let (dx, dy, dz) = (c & 1, (c >> 1) & 1, (c >> 2) & 1);
        let w = (if dx == 1 { s.x } else { 1.0 - s.x })
            * (if dy == 1 { s.y } else { 1.0 - s.y })
            * (if dz == 1 { s.z } else { 1.0 - s.z });
        acc += w * corner(dx, dy, dz);
    }
    acc
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Adds Gaussian noise: one ChaCha8 stream per slice, seeded from (seed, slice index), so
/// the result does not depend on how rayon schedules the slices.
pub(crate) fn add_noise(data: &mut [f32], dims: [usize; 3], sd: f64, seed: u64) {
    if sd <= 0.0 {
        return;
    }
    let slab = dims[0] * dims[1];
    data.par_chunks_mut(slab).enumerate().for_each(|(k, sl)| {
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(seed ^ splitmix(k as u64 + 1)));
        for v in sl.iter_mut() {
            let n: f64 = rng.sample(StandardNormal);
            *v += (sd * n) as f32;
        }
    });
}

/// Slab reconstruction: `n` consecutive axial slices of `ct` averaged into one, each thick
/// voxel labelled with the most frequent label of its `n` (the first on a tie); slices past
/// the last whole slab are dropped. The grid's z spacing becomes `n` times the thin one and
/// its origin the centre of the first slab.
pub(crate) fn slabs(
    ct: &Volume<f32>,
    labels: &Volume<u16>,
    n: usize,
) -> (Volume<f32>, Volume<u16>) {
    let g = ct.grid();
    let [nx, ny, nz] = g.dims;
    let dz = g.direction.column(2) * g.spacing[2];
    let grid = Grid::new(
        [nx, ny, (nz / n).max(1)],
        [g.spacing[0], g.spacing[1], g.spacing[2] * n as f64],
        g.origin + dz * ((n - 1) as f64 / 2.0),
        g.direction,
    )
    .expect("a valid grid stays valid with thicker slices");
    let thick_ct = Volume::from_fn(grid.clone(), |i, j, k| {
        (0..n)
            .map(|t| ct.get(i, j, (k * n + t).min(nz - 1)))
            .sum::<f32>()
            / n as f32
    });
    let thick_labels = Volume::from_fn(grid, |i, j, k| {
        let mut votes: Vec<(u16, usize)> = Vec::with_capacity(n);
        for t in 0..n {
            let l = labels.get(i, j, (k * n + t).min(nz - 1));
            match votes.iter_mut().find(|v| v.0 == l) {
                Some(v) => v.1 += 1,
                None => votes.push((l, 1)),
            }
        }
        // The first of the most frequent (max_by_key would take the last).
        let best = votes.iter().map(|v| v.1).max().unwrap_or(0);
        votes.iter().find(|v| v.1 == best).map_or(0, |v| v.0)
    });
    (thick_ct, thick_labels)
}

/// Builds the CT and label volumes.
/// `metal` (from [`crate::implants::metal_mask`]) adds implants and their artefacts.
pub(crate) fn render(
    scene: &Scene,
    grid: &Grid,
    spec: &PhantomSpec,
    metal: Option<&[u8]>,
) -> (Volume<f32>, Volume<u16>) {
    let (mut hu, labels) = scene.rasterize(grid);
    if let Some(m) = metal {
        crate::implants::write_metal(&mut hu, m);
    }
    // Reconstruction-kernel point-spread function (sigma 0.6 mm).
    gaussian_blur(&mut hu, grid.dims, 0.6 / spec.spacing_mm);
    if let Some(m) = metal {
        crate::implants::add_streaks(&mut hu, grid, m);
    }
    add_noise(&mut hu, grid.dims, spec.noise_hu, spec.seed);
    if metal.is_some() {
        crate::implants::clip(&mut hu);
    }
    (
        Volume::new(grid.clone(), hu).expect("data sized to the grid"),
        Volume::new(grid.clone(), labels).expect("data sized to the grid"),
    )
}
