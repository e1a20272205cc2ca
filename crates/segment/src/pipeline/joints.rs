//! Facet joints bridged in the bone mask.
//!
//! At the usual CT spacings the ~1 mm facet joint space is blurred above the bone threshold,
//! so the inferior articular process of one vertebra and the superior articular process of
//! the one below form one blob, and the geodesic competition between the two vertebrae cuts
//! it wherever the fronts meet (nearly across the processes, not along the joint). The joint
//! space is still visible as a thin dark cleft between two bright cortical plates: a voxel
//! clearly darker than the bone 1 mm away on both sides along some direction. Such dips also
//! occur elsewhere in bone (cancellous texture), but not as one large flat sheet.
//!
//! Per contact between two adjacent vertebrae on each side behind the canal front, a plane is
//! fitted robustly (RANSAC, then least squares on the inliers) to the dip voxels around the
//! contact. Where the plane is supported by dips (its footprint), the voxels on it leave the
//! bone mask: the joint space. The caller then re-runs the geodesic competition with that
//! barrier, so each articular process is labelled from the vertebra it is attached to.
//! Nothing is cut at spacings coarser than [`MAX_SPACING_MM`], except axial slices up to
//! [`MAX_SLICE_MM`] thick.

use super::{Canal, Geom, V3};
use crate::ops;
use nalgebra::Matrix3;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Neighbourhood of the contact between two vertebrae searched for the joint space, mm.
const SEARCH_MM: f64 = 6.0;
/// The plates of a cleft are looked for this far on either side of it, mm.
const CLEFT_HALF_MM: f64 = 1.0;
/// Coarser voxels do not resolve a cleft between plates 1 mm either side of it: on the
/// phantom at 1.5 and 2 mm most fitted planes were off the joint and Dice fell, so joints
/// are left as the geodesic split put them there.
const MAX_SPACING_MM: f64 = 1.2;
/// Axial slices up to this thick are cut when the pixels are fine enough: a lumbar joint
/// space is near-vertical, so its cleft is resolved in the axial plane. (A volume thick along
/// another axis, e.g. verse012's 3 mm left-right voxels, is not cut: the joint's cleft runs
/// across that axis.) On the phantom in 3 mm slices of 1 mm pixels the twin then has 11 of its 12 facet
/// joints instead of 8 (the rest overlap or cross), and the Dice at 2 mm slices rises from
/// 0.942-0.948 to 0.954-0.959 (docs/segment/README.md).
const MAX_SLICE_MM: f64 = 3.0;
/// Dip voxels within this distance of the plane support it, mm.
const INLIER_MM: f64 = 0.6;
/// Smallest joint area (mm², counted as dip voxels on the plane) accepted as a joint.
const MIN_JOINT_MM2: f64 = 25.0;
/// The footprint of the joint: the inliers' projections onto the plane, dilated by this, mm.
const FOOTPRINT_MM: f64 = 2.5;
/// RANSAC trials per joint.
const TRIALS: usize = 600;

/// One direction of each opposite pair of the 26 neighbours: a voxel is a dip or a cleft
/// when it is darker than both of its neighbours along one of these.
const DIRS: [(i64, i64, i64); 13] = [
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 1, 0),
    (1, -1, 0),
    (1, 0, 1),
    (1, 0, -1),
    (0, 1, 1),
    (0, 1, -1),
    (1, 1, 1),
    (1, 1, -1),
    (1, -1, 1),
    (-1, 1, 1),
];

/// Small deterministic generator for the RANSAC samples (reproducible segmentations).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Diagnostics of one joint (for `SPINETWIN_SEGMENT_DEBUG`).
pub(super) struct JointFit {
    pub labels: (u16, u16),
    pub side: i8,
    pub centre: V3,
    pub normal: V3,
    pub dips: usize,
    pub inliers: usize,
    /// Voxels of the joint space taken out of the bone.
    pub cut: Vec<usize>,
}

/// Whether the voxels are fine enough to find the joint clefts and cut them. Axis 2 is the
/// slice axis (the pipeline takes axial acquisitions).
pub(super) fn resolves_joints(g: &Geom) -> bool {
    g.sp[0] <= MAX_SPACING_MM && g.sp[1] <= MAX_SPACING_MM && g.sp[2] <= MAX_SLICE_MM
}

/// Finds the bridged facet joints between the segments of `lab` (1..=nseg, cranial to
/// caudal) and cuts them along the fitted joint planes; `filled` loses the joint-space voxels.
pub(super) fn split_facet_joints(
    g: &Geom,
    hu: &[f32],
    filled: &mut [bool],
    lab: &mut [u16],
    canal: &Canal,
    threshold: f32,
) -> Vec<JointFit> {
    if !resolves_joints(g) {
        return Vec::new();
    }
    let [nx, ny, nz] = g.dims;
    // Contacts between adjacent segments behind the canal front, per pair and side.
    let mut contacts: BTreeMap<(u16, i8), Vec<usize>> = BTreeMap::new();
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let l = g.lin(i, j, k);
                let a = lab[l];
                if a == 0 {
                    continue;
                }
                let q = g.pos(i, j, k);
                if q.y < canal.front_y[k] {
                    continue;
                }
                for (di, dj, dk) in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
                    let (a2, b2, c2) = (i + di, j + dj, k + dk);
                    if a2 >= nx || b2 >= ny || c2 >= nz {
                        continue;
                    }
                    let b = lab[g.lin(a2, b2, c2)];
                    if b != 0 && b.abs_diff(a) == 1 {
                        let side = if q.x >= canal.centre[k][0] { 1 } else { -1 };
                        contacts.entry((a.min(b), side)).or_default().push(l);
                    }
                }
            }
        }
    }
    let mut keys: Vec<(u16, i8)> = contacts.keys().copied().collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        if let Some(fit) = split_one(g, hu, filled, lab, canal, threshold, key, &contacts[&key]) {
            out.push(fit);
        }
    }
    out
}

/// Index box (inclusive) around the voxels `ls`, widened by `r` mm.
fn index_box(g: &Geom, ls: &[usize], r: f64) -> [[usize; 2]; 3] {
    let [nx, ny, _] = g.dims;
    let mut b = [[usize::MAX, 0]; 3];
    for &l in ls {
        let ijk = [l % nx, (l / nx) % ny, l / (nx * ny)];
        for a in 0..3 {
            b[a][0] = b[a][0].min(ijk[a]);
            b[a][1] = b[a][1].max(ijk[a]);
        }
    }
    for (a, ba) in b.iter_mut().enumerate() {
        let m = (r / g.sp[a]).ceil() as usize;
        ba[0] = ba[0].saturating_sub(m);
        ba[1] = (ba[1] + m).min(g.dims[a] - 1);
    }
    b
}

/// Plane through the points (least squares): centroid and unit normal.
fn fit_plane(pts: &[V3]) -> Option<(V3, V3)> {
    if pts.len() < 3 {
        return None;
    }
    let c = pts.iter().sum::<V3>() / pts.len() as f64;
    let mut m = Matrix3::zeros();
    for p in pts {
        let d = p - c;
        m += d * d.transpose();
    }
    let e = m.symmetric_eigen();
    let imin = (0..3).min_by(|&a, &b| e.eigenvalues[a].total_cmp(&e.eigenvalues[b]))?;
    Some((c, e.eigenvectors.column(imin).into_owned()))
}

#[allow(clippy::too_many_arguments)]
fn split_one(
    g: &Geom,
    hu: &[f32],
    filled: &mut [bool],
    lab: &mut [u16],
    canal: &Canal,
    threshold: f32,
    (a, side): (u16, i8),
    contact: &[usize],
) -> Option<JointFit> {
    let b = a + 1;
    let voxel_area = g.sp[0] * g.sp[1].min(g.sp[2]);
    let bx = index_box(g, contact, SEARCH_MM);
    let on_side = |q: &V3, k: usize| (q.x >= canal.centre[k][0]) == (side > 0);
    // Bone of the two vertebrae around the contact.
    let mut region = Vec::new();
    for k in bx[2][0]..=bx[2][1] {
        for j in bx[1][0]..=bx[1][1] {
            for i in bx[0][0]..=bx[0][1] {
                let l = g.lin(i, j, k);
                if (lab[l] == a || lab[l] == b) && on_side(&g.pos(i, j, k), k) {
                    region.push([i, j, k]);
                }
            }
        }
    }
    if region.is_empty() {
        return None;
    }
    // What "bright" means here: the cortex of these processes (upper decile of the region)
    // against the bone threshold; the cleft must be clearly darker than both plates.
    let mut v: Vec<f64> = region
        .iter()
        .map(|&[i, j, k]| hu[g.lin(i, j, k)] as f64)
        .collect();
    let cortex = ops::quantile(&v, 0.9)?;
    v.clear();
    let bright = 0.5 * (threshold as f64 + cortex);
    let delta = 0.1 * (cortex - threshold as f64);
    // Plates sampled at a fixed distance in millimetres, not one voxel: the inside of a
    // thin process (cancellous bone between two cortices, ~3 mm wide) must not pass for a
    // cleft when a diagonal neighbour happens to reach its cortex.
    let unit: Vec<V3> = DIRS
        .iter()
        .map(|&(x, y, z)| V3::new(x as f64, y as f64, z as f64).normalize() * CLEFT_HALF_MM)
        .collect();
    let dips: Vec<V3> = region
        .iter()
        .filter_map(|&[i, j, k]| {
            let p = g.pos(i, j, k);
            let h = hu[g.lin(i, j, k)] as f64;
            unit.iter()
                .any(|d| {
                    let m = g
                        .trilinear(hu, &(p + d))
                        .unwrap_or(f64::MIN)
                        .min(g.trilinear(hu, &(p - d)).unwrap_or(f64::MIN));
                    m > bright && m - h > delta
                })
                .then_some(p)
        })
        .collect();
    let min_inliers = (MIN_JOINT_MM2 / voxel_area).ceil() as usize;
    if dips.len() < min_inliers {
        return None;
    }
    // RANSAC: the plane through three dips supported by the most dips.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ ((a as u64) << 8) ^ (side as u64 & 0xff));
    let count = |c: &V3, n: &V3| {
        dips.iter()
            .filter(|p| (*p - c).dot(n).abs() < INLIER_MM)
            .count()
    };
    let mut best: Option<(usize, V3, V3)> = None;
    for _ in 0..TRIALS {
        let (p, q, r) = (
            dips[rng.below(dips.len())],
            dips[rng.below(dips.len())],
            dips[rng.below(dips.len())],
        );
        let n = (q - p).cross(&(r - p));
        if n.norm() < 1e-6 {
            continue;
        }
        let n = n.normalize();
        let c = count(&p, &n);
        if best.as_ref().is_none_or(|b| c > b.0) {
            best = Some((c, p, n));
        }
    }
    let (_, mut c, mut n) = best?;
    let mut inl: Vec<V3> = Vec::new();
    for _ in 0..3 {
        inl = dips
            .iter()
            .copied()
            .filter(|p| (p - c).dot(&n).abs() < INLIER_MM)
            .collect();
        (c, n) = fit_plane(&inl)?;
    }
    inl.retain(|p| (p - c).dot(&n).abs() < INLIER_MM);
    let fit = JointFit {
        labels: (a, b),
        side,
        centre: c,
        normal: n,
        dips: dips.len(),
        inliers: inl.len(),
        cut: Vec::new(),
    };
    if inl.len() < min_inliers {
        return Some(fit);
    }
    // Footprint: the inliers projected onto the plane, on a grid of the finest spacing,
    // dilated so that undetected dips between them are covered.
    let u = n
        .cross(&if n.x.abs() < 0.9 { V3::x() } else { V3::y() })
        .normalize();
    let w = n.cross(&u);
    let cell = g.sp.iter().cloned().fold(f64::INFINITY, f64::min);
    let rad = (FOOTPRINT_MM / cell).ceil() as i64;
    let mut foot: std::collections::HashSet<(i64, i64)> = std::collections::HashSet::new();
    for p in &inl {
        let (pu, pw) = (
            ((p - c).dot(&u) / cell).round() as i64,
            ((p - c).dot(&w) / cell).round() as i64,
        );
        for du in -rad..=rad {
            for dw in -rad..=rad {
                if ((du * du + dw * dw) as f64).sqrt() * cell <= FOOTPRINT_MM {
                    foot.insert((pu + du, pw + dw));
                }
            }
        }
    }
    let in_foot = |p: &V3| {
        foot.contains(&(
            ((p - c).dot(&u) / cell).round() as i64,
            ((p - c).dot(&w) / cell).round() as i64,
        ))
    };
    // A digital plane thinner than this lets 6-neighbours touch across it.
    let half = 0.5 * (0..3).map(|x| n[x].abs() * g.sp[x]).sum::<f64>();
    let sb = {
        let ls: Vec<usize> = inl.iter().filter_map(|p| g.nearest(p)).collect();
        index_box(g, &ls, FOOTPRINT_MM + 1.0)
    };
    let mut cut = Vec::new();
    for k in sb[2][0]..=sb[2][1] {
        for j in sb[1][0]..=sb[1][1] {
            for i in sb[0][0]..=sb[0][1] {
                let l = g.lin(i, j, k);
                let p = g.pos(i, j, k);
                if (lab[l] == a || lab[l] == b)
                    && on_side(&p, k)
                    && (p - c).dot(&n).abs() < half
                    && in_foot(&p)
                {
                    lab[l] = 0;
                    filled[l] = false;
                    cut.push(l);
                }
            }
        }
    }
    Some(JointFit { cut, ..fit })
}

/// Gives back the cut voxels of each joint plane that have one and the same vertebra on
/// both sides of the plane once the competition has run again with the cuts as barriers:
/// the plane, fitted to the joint's cleft and cut wherever dips support it, can run on past
/// the joint through one vertebra's bone (its pedicle or lamina: on the 1 mm phantom with
/// lordosis 60 and bmd 1.2, T12-L1's left plane, tilted 15 deg from its mirror image, cut a
/// sheet through L1's left pedicle 12 mm below the joint, which then read its screw entry
/// 6 mm forward). A joint space separates two vertebrae, so a cut voxel with the same label
/// on both sides (26-neighbours on either side of the plane) is no joint space. Cut voxels
/// between two vertebrae, or beside unlabelled voxels only, stay cut. Returns how many
/// voxels were given back; each fit's `cut` keeps the rest.
pub(super) fn restore_cuts_within_one_vertebra(
    g: &Geom,
    fits: &mut [JointFit],
    filled: &mut [bool],
    lab: &mut [u16],
) -> usize {
    let [nx, ny, _] = g.dims;
    // Decide on every fit's voxels from the labels as the competition left them, then
    // write: the result does not depend on the order of the fits.
    let back: Vec<Vec<(usize, u16)>> = fits
        .iter()
        .map(|f| {
            f.cut
                .iter()
                .filter_map(|&l| {
                    let (i, j, k) = (l % nx, (l / nx) % ny, l / (nx * ny));
                    let p = g.pos(i, j, k);
                    // The one label seen on each side (0: none yet; u16::MAX: more than one).
                    let mut side = [0u16; 2];
                    for dk in -1i64..=1 {
                        for dj in -1i64..=1 {
                            for di in -1i64..=1 {
                                let Some((a, b, c)) = g.offset((i, j, k), (di, dj, dk)) else {
                                    continue;
                                };
                                let m = lab[g.lin(a, b, c)];
                                let t = (g.pos(a, b, c) - p).dot(&f.normal);
                                if m == 0 || t.abs() < 1e-9 {
                                    continue;
                                }
                                let s = &mut side[usize::from(t > 0.0)];
                                *s = if *s == 0 || *s == m { m } else { u16::MAX };
                            }
                        }
                    }
                    (side[0] == side[1] && side[0] != 0 && side[0] != u16::MAX)
                        .then_some((l, side[0]))
                })
                .collect()
        })
        .collect();
    let mut restored = 0;
    for (f, back) in fits.iter_mut().zip(back) {
        for &(l, m) in &back {
            lab[l] = m;
            filled[l] = true;
        }
        restored += back.len();
        f.cut.retain(|l| lab[*l] == 0);
    }
    restored
}

/// Most a voxel of a blurred cleft costs the geodesic competition, over 1 for plain bone
/// ([`cleft_cost`]). On the phantom at 1.5 mm (six cases of the sweep) the lowest Dice per
/// case rose by 0.004-0.007 with 10, about as much as with 20 or 40 (and by 0.003-0.005
/// with 3); the real CTs moved by at most 0.002.
const CLEFT_GAIN: f32 = 10.0;

/// Cost of each voxel for the geodesic competition where the joints cannot be cut
/// ([`resolves_joints`]): behind the canal front, a bone voxel darker than both its
/// neighbours along some direction costs up to `1 + CLEFT_GAIN`, in proportion to the dip
/// over the span between the bone threshold and the cortex; everything else 1. A bridged
/// joint's cleft is such a dip between the two cortical plates, so the front of the vertebra
/// above is held there instead of running on into the superior articular process of the
/// one below (at 1.5 mm it took 100-330 voxels of each process pair). The inside of a thin
/// process dips too, but along the process, where both fronts pay the same.
///
/// A 1 mm cleft in coarser voxels often straddles two of them, each then with one dark
/// neighbour, so a pair of neighbours both darker than the bone beyond them along the same
/// direction is a dip too, as deep as the darker of the two beyond less the brighter of the
/// pair. Measured 2026-12-07: the 1.5 mm phantom sweep's lowest Dice per case rose in 14 of
/// 18 cases (by up to 0.006; the means by 0.000-0.003) and fell by 0.001 in 3 (the lowest,
/// lordosis 20, Cobb 0, bmd 0.6, noise 40: L2 0.947 -> 0.946); verse012 T10-L3
/// +0.001..+0.004 (T12 0.898 -> 0.8997). Finer scans are cut at the joints instead.
pub(super) fn cleft_cost(
    g: &Geom,
    hu: &[f32],
    filled: &[bool],
    canal: &Canal,
    threshold: f32,
) -> Vec<f32> {
    let [nx, ny, nz] = g.dims;
    let mut post = Vec::new();
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let l = g.lin(i, j, k);
                if filled[l] && g.pos(i, j, k).y >= canal.front_y[k] {
                    post.push(hu[l] as f64);
                }
            }
        }
    }
    let cortex = ops::quantile(&post, 0.9).unwrap_or(threshold as f64) as f32;
    let span = (cortex - threshold).max(1.0);
    let mut cost = vec![1.0f32; hu.len()];
    // One axial slice per task, as `seeds`; the outermost slices and rows keep cost 1.
    cost.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slice)| {
            if k == 0 || k + 1 >= nz {
                return;
            }
            for j in 1..ny.saturating_sub(1) {
                for i in 1..nx.saturating_sub(1) {
                    let l = g.lin(i, j, k);
                    if !filled[l] || g.pos(i, j, k).y < canal.front_y[k] {
                        continue;
                    }
                    // The bone voxel `s` steps along a direction, if in the volume.
                    let bone = |(a, b, c): (i64, i64, i64), s: i64| {
                        g.offset((i, j, k), (s * a, s * b, s * c))
                            .map(|(x, y, z)| g.lin(x, y, z))
                            .filter(|&m| filled[m])
                    };
                    let mut valley = 0.0f32;
                    for &d in &DIRS {
                        if let (Some(p), Some(m)) = (bone(d, 1), bone(d, -1)) {
                            valley = valley.max(hu[p].min(hu[m]) - hu[l]);
                        }
                        // A cleft straddling two voxels (this one and its neighbour along
                        // the direction, either way), both darker than the bone beyond.
                        for (pair, beyond, before) in [(1, 2, -1), (-1, -2, 1)] {
                            if let (Some(r), Some(p), Some(m)) =
                                (bone(d, pair), bone(d, beyond), bone(d, before))
                            {
                                valley = valley.max(hu[p].min(hu[m]) - hu[l].max(hu[r]));
                            }
                        }
                    }
                    slice[i + nx * j] = 1.0 + CLEFT_GAIN * (valley / span).clamp(0.0, 1.0);
                }
            }
        });
    cost
}
