//! Small image operations on boolean masks and HU arrays: histogram threshold, 3-D connected
//! components, 2-D hole filling and a geodesic (Dijkstra) competition between labelled seeds.
//!
//! Written here rather than taken from a crate: no maintained Rust crate covers 3-D labelled
//! volumes well (the image crates are 2-D, `ndarray`-based ones lack connected components and
//! geodesic growth), and these operations are short. (`cargo search` was not reachable from
//! the build machine when this was written; the check was done by reading crate listings.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Otsu's threshold of the values in `[lo, hi)` of `data`, using bins of `bin` HU.
/// Non-finite values are ignored. `None` when fewer than 2 bins are populated.
pub fn otsu(data: &[f32], lo: f32, hi: f32, bin: f32) -> Option<f32> {
    let nb = ((hi - lo) / bin).ceil().max(1.0) as usize;
    let mut hist = vec![0u64; nb];
    for &v in data {
        if v.is_finite() && v >= lo && v < hi {
            let b = (((v - lo) / bin) as usize).min(nb - 1);
            hist[b] += 1;
        }
    }
    let total: u64 = hist.iter().sum();
    if hist.iter().filter(|&&c| c > 0).count() < 2 {
        return None;
    }
    let centre = |b: usize| lo as f64 + (b as f64 + 0.5) * bin as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(b, &c)| c as f64 * centre(b))
        .sum();
    let (mut w0, mut s0) = (0f64, 0f64);
    let mut best = (f64::NEG_INFINITY, 0usize);
    for (b, &c) in hist.iter().enumerate().take(nb - 1) {
        w0 += c as f64;
        s0 += c as f64 * centre(b);
        let w1 = total as f64 - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (s0 / w0, (sum_all - s0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best.0 {
            best = (between, b);
        }
    }
    Some(lo + (best.1 + 1) as f32 * bin)
}

/// Centre of the most populated bin of the values in `[lo, hi)` (bins of `bin`).
pub fn histogram_mode(data: &[f32], lo: f32, hi: f32, bin: f32) -> Option<f32> {
    let nb = ((hi - lo) / bin).ceil().max(1.0) as usize;
    let mut hist = vec![0u64; nb];
    for &v in data {
        if v.is_finite() && v >= lo && v < hi {
            hist[(((v - lo) / bin) as usize).min(nb - 1)] += 1;
        }
    }
    let (b, &c) = hist.iter().enumerate().max_by_key(|(_, &c)| c)?;
    (c > 0).then_some(lo + (b as f32 + 0.5) * bin)
}

/// 6-connected components of `mask` on an `nx x ny x nz` grid. Returns per-voxel component
/// ids (0 = background, 1.. = components) and the size of each component (index 0 unused).
pub fn components_3d(mask: &[bool], dims: [usize; 3]) -> (Vec<u32>, Vec<usize>) {
    let [nx, ny, nz] = dims;
    let mut ids = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || ids[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        let mut n = 0usize;
        ids[start] = id;
        stack.push(start);
        while let Some(l) = stack.pop() {
            n += 1;
            let i = l % nx;
            let j = (l / nx) % ny;
            let k = l / (nx * ny);
            let mut visit = |m: usize| {
                if mask[m] && ids[m] == 0 {
                    ids[m] = id;
                    stack.push(m);
                }
            };
            if i > 0 {
                visit(l - 1);
            }
            if i + 1 < nx {
                visit(l + 1);
            }
            if j > 0 {
                visit(l - nx);
            }
            if j + 1 < ny {
                visit(l + nx);
            }
            if k > 0 {
                visit(l - nx * ny);
            }
            if k + 1 < nz {
                visit(l + nx * ny);
            }
        }
        sizes.push(n);
    }
    (ids, sizes)
}

/// 4-connected components of a 2-D mask (`nx x ny`), ids as in [`components_3d`].
pub fn components_2d(mask: &[bool], nx: usize, ny: usize) -> (Vec<u32>, Vec<usize>) {
    components_3d(mask, [nx, ny, 1])
}

/// Pixels of a 2-D slice that are not in `mask` and not 4-connected to the slice border
/// through non-mask pixels: the holes of the mask.
///
/// Only the mask's bounding box, with a one-pixel margin, is flooded: the margin holds no
/// mask pixel and touches everything outside the box, so every pixel outside is connected to
/// the border through it (the spine fills a small part of a clinical scan's slices: the
/// coronal and sagittal passes of a 512 x 512 x 400 scan took 0.9 s flooding whole slices).
pub fn holes_2d(mask: &[bool], nx: usize, ny: usize) -> Vec<bool> {
    let mut out = vec![false; mask.len()];
    let (mut i0, mut i1, mut j0, mut j1) = (nx, 0, ny, 0);
    for (j, row) in mask.chunks_exact(nx.max(1)).enumerate().take(ny) {
        if let (Some(a), Some(b)) = (row.iter().position(|&m| m), row.iter().rposition(|&m| m)) {
            (i0, i1, j0, j1) = (i0.min(a), i1.max(b), j0.min(j), j1.max(j));
        }
    }
    if i0 > i1 {
        return out;
    }
    let (ci, cj) = (i0.saturating_sub(1), j0.saturating_sub(1));
    let (w, h) = ((i1 + 1).min(nx - 1) - ci + 1, (j1 + 1).min(ny - 1) - cj + 1);
    let at = |p: usize| ci + p % w + nx * (cj + p / w);
    let crop: Vec<bool> = (0..w * h).map(|p| mask[at(p)]).collect();
    for (p, hole) in holes_flooded(&crop, w, h).into_iter().enumerate() {
        if hole {
            out[at(p)] = true;
        }
    }
    out
}

/// [`holes_2d`] by flooding the whole slice from its border.
fn holes_flooded(mask: &[bool], nx: usize, ny: usize) -> Vec<bool> {
    let mut outside = vec![false; mask.len()];
    let mut stack = Vec::new();
    let seed = |l: usize, outside: &mut Vec<bool>, stack: &mut Vec<usize>| {
        if !mask[l] && !outside[l] {
            outside[l] = true;
            stack.push(l);
        }
    };
    for i in 0..nx {
        seed(i, &mut outside, &mut stack);
        seed(i + nx * (ny - 1), &mut outside, &mut stack);
    }
    for j in 0..ny {
        seed(nx * j, &mut outside, &mut stack);
        seed(nx - 1 + nx * j, &mut outside, &mut stack);
    }
    while let Some(l) = stack.pop() {
        let (i, j) = (l % nx, l / nx);
        let mut nb = [usize::MAX; 4];
        if i > 0 {
            nb[0] = l - 1;
        }
        if i + 1 < nx {
            nb[1] = l + 1;
        }
        if j > 0 {
            nb[2] = l - nx;
        }
        if j + 1 < ny {
            nb[3] = l + nx;
        }
        for m in nb.into_iter().filter(|&m| m != usize::MAX) {
            if !mask[m] && !outside[m] {
                outside[m] = true;
                stack.push(m);
            }
        }
    }
    mask.iter().zip(&outside).map(|(&m, &o)| !m && !o).collect()
}

/// Geodesic competition: every voxel of `domain` reachable from a seed gets the label of the
/// seed with the shortest path inside `domain` (26-neighbourhood, Euclidean step lengths in
/// mm). `labels` holds the seeds on entry (non-zero, inside `domain`) and the result on exit.
pub fn geodesic_grow(labels: &mut [u16], domain: &[bool], dims: [usize; 3], spacing: [f64; 3]) {
    geodesic_grow_weighted(labels, domain, dims, spacing, None);
}

/// [`geodesic_grow`] with a cost per voxel (>= 1; `None`: 1 everywhere): a step between two
/// voxels costs its length times the mean of their costs, so fronts go round expensive
/// voxels (a joint's darker cleft) where a path of cheap ones exists.
pub fn geodesic_grow_weighted(
    labels: &mut [u16],
    domain: &[bool],
    dims: [usize; 3],
    spacing: [f64; 3],
    cost: Option<&[f32]>,
) {
    // The heap's entries ordered by (distance, voxel index), so the result does not depend
    // on the heap's internals. Packed into one u64 where the index fits in 32 bits (every
    // scan here: 512 x 512 x 400 is 1e8 voxels): half the memory of a (u32, usize) pair and
    // one comparison.
    if u32::try_from(labels.len()).is_ok() {
        grow::<PackedQueue>(labels, domain, dims, spacing, cost, true);
    } else {
        grow::<WideQueue>(labels, domain, dims, spacing, cost, true);
    }
}

/// The priority queue of [`grow`]: pops the smallest (distance, index) first.
trait Queue {
    fn push(&mut self, d: u32, l: usize);
    fn pop(&mut self) -> Option<(u32, usize)>;
}

#[derive(Default)]
struct PackedQueue(BinaryHeap<Reverse<u64>>);

impl Queue for PackedQueue {
    fn push(&mut self, d: u32, l: usize) {
        self.0.push(Reverse((u64::from(d) << 32) | l as u64));
    }
    fn pop(&mut self) -> Option<(u32, usize)> {
        self.0
            .pop()
            .map(|Reverse(x)| ((x >> 32) as u32, (x & 0xffff_ffff) as usize))
    }
}

#[derive(Default)]
struct WideQueue(BinaryHeap<Reverse<(u32, usize)>>);

impl Queue for WideQueue {
    fn push(&mut self, d: u32, l: usize) {
        self.0.push(Reverse((d, l)));
    }
    fn pop(&mut self) -> Option<(u32, usize)> {
        self.0.pop().map(|Reverse(x)| x)
    }
}

/// Dijkstra's competition of [`geodesic_grow_weighted`] on a queue of type `Q`; with
/// `fast_inner`, the neighbours of a voxel away from the volume's faces are found by their
/// step in the flat index, without bounds tests (the same voxels in the same order: the
/// tests compare both).
fn grow<Q: Queue + Default>(
    labels: &mut [u16],
    domain: &[bool],
    dims: [usize; 3],
    spacing: [f64; 3],
    cost: Option<&[f32]>,
    fast_inner: bool,
) {
    let [nx, ny, nz] = dims;
    let mut heap = Q::default();
    // Distances in micrometres as integers keep the heap ordering exact and cheap.
    let mut dist = vec![u32::MAX; labels.len()];
    for (l, &lab) in labels.iter().enumerate() {
        if lab != 0 {
            dist[l] = 0;
            heap.push(0, l);
        }
    }
    // The 26 neighbours: offsets, their step in the flat index, and their length.
    let mut offsets = Vec::new();
    for dk in -1i64..=1 {
        for dj in -1i64..=1 {
            for di in -1i64..=1 {
                if (di, dj, dk) == (0, 0, 0) {
                    continue;
                }
                let len = ((di as f64 * spacing[0]).powi(2)
                    + (dj as f64 * spacing[1]).powi(2)
                    + (dk as f64 * spacing[2]).powi(2))
                .sqrt();
                let step = di as isize + nx as isize * (dj as isize + ny as isize * dk as isize);
                offsets.push((di, dj, dk, step, (len * 1000.0).round() as u32));
            }
        }
    }
    while let Some((d, l)) = heap.pop() {
        if d > dist[l] {
            continue;
        }
        let (i, j, k) = (
            (l % nx) as i64,
            ((l / nx) % ny) as i64,
            (l / (nx * ny)) as i64,
        );
        // Away from the volume's faces every neighbour exists: no bounds tests.
        let inner = fast_inner
            && i > 0
            && j > 0
            && k > 0
            && i + 1 < nx as i64
            && j + 1 < ny as i64
            && k + 1 < nz as i64;
        let lab = labels[l];
        for &(di, dj, dk, step, w) in &offsets {
            let m = if inner {
                l.wrapping_add_signed(step)
            } else {
                let (a, b, c) = (i + di, j + dj, k + dk);
                if a < 0 || b < 0 || c < 0 || a >= nx as i64 || b >= ny as i64 || c >= nz as i64 {
                    continue;
                }
                a as usize + nx * (b as usize + ny * c as usize)
            };
            if !domain[m] {
                continue;
            }
            let w = match cost {
                Some(c) => (w as f32 * 0.5 * (c[l] + c[m])).round() as u32,
                None => w,
            };
            let nd = d.saturating_add(w);
            if nd < dist[m] {
                dist[m] = nd;
                labels[m] = lab;
                heap.push(nd, m);
            }
        }
    }
}

/// The `q`-quantile (0..=1) of `v` (sorted copy); `None` for an empty slice.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let idx = ((s.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    Some(s[idx])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift generator: reproducible test data without a dependency.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn holes_from_the_bounding_box_are_the_holes_of_the_whole_slice() {
        // Rings, blobs and noise at every position, touching the slice's edges too.
        let mut rnd = xorshift(0x9e37_79b9_7f4a_7c15);
        for case in 0..200 {
            let (nx, ny) = (3 + (rnd() % 30) as usize, 3 + (rnd() % 30) as usize);
            let density = [10, 30, 50, 70][case % 4];
            let (cx, cy) = ((rnd() % nx as u64) as i64, (rnd() % ny as u64) as i64);
            let r = 1 + (rnd() % 8) as i64;
            let mask: Vec<bool> = (0..nx * ny)
                .map(|p| {
                    let (i, j) = ((p % nx) as i64, (p / nx) as i64);
                    let d2 = (i - cx).pow(2) + (j - cy).pow(2);
                    (d2 >= r * r && d2 <= (r + 1).pow(2)) || (rnd() % 100) < density as u64 / 4
                })
                .collect();
            assert_eq!(
                holes_2d(&mask, nx, ny),
                holes_flooded(&mask, nx, ny),
                "case {case}: {nx} x {ny}"
            );
        }
        // No mask, and a mask filling the slice: no holes.
        assert!(!holes_2d(&[false; 12], 4, 3).contains(&true));
        assert!(!holes_2d(&[true; 12], 4, 3).contains(&true));
    }

    #[test]
    fn otsu_splits_two_modes() {
        let mut v = vec![50.0f32; 1000];
        v.extend(std::iter::repeat_n(800.0f32, 100));
        let t = otsu(&v, 0.0, 1500.0, 5.0).unwrap();
        assert!(t > 50.0 && t <= 800.0, "{t}");
        assert!(otsu(&[1.0, 1.0], 0.0, 10.0, 1.0).is_none());
    }

    #[test]
    fn components_and_holes() {
        // Two separate 2x1x1 blobs.
        let mask = [true, true, false, true, true, false];
        let (ids, sizes) = components_3d(&mask, [6, 1, 1]);
        assert_eq!(sizes.len(), 3);
        assert_ne!(ids[0], ids[3]);
        // A 3x3 ring with a hole in the middle.
        let mut ring = vec![true; 9];
        ring[4] = false;
        let h = holes_2d(&ring, 3, 3);
        assert!(h[4] && h.iter().filter(|&&x| x).count() == 1);
        let open = [false; 9];
        assert!(!holes_2d(&open, 3, 3).iter().any(|&x| x));
    }

    #[test]
    fn geodesic_growth_follows_the_domain() {
        // A U-shaped domain: the seed at one arm reaches the other arm only around the bend.
        let dims = [5, 3, 1];
        let mut domain = vec![true; 15];
        domain[1 + 5] = false;
        domain[2 + 5] = false;
        domain[3 + 5] = false;
        let mut labels = vec![0u16; 15];
        labels[0] = 1;
        labels[4] = 2;
        geodesic_grow(&mut labels, &domain, dims, [1.0; 3]);
        assert_eq!(labels[10], 1);
        assert_eq!(labels[14], 2);
        assert_eq!(labels[6], 0, "outside the domain stays unlabelled");
    }

    #[test]
    fn a_costly_voxel_moves_where_the_fronts_meet() {
        // A line of 9 voxels seeded at both ends: the fronts meet in the middle, unless a
        // costly voxel (a cleft) at index 2 holds the left front back.
        let dims = [9, 1, 1];
        let domain = vec![true; 9];
        let seeded = || {
            let mut l = vec![0u16; 9];
            l[0] = 1;
            l[8] = 2;
            l
        };
        let mut plain = seeded();
        geodesic_grow_weighted(&mut plain, &domain, dims, [1.0; 3], None);
        assert_eq!(plain, [1, 1, 1, 1, 1, 2, 2, 2, 2]);
        let mut cost = vec![1.0f32; 9];
        cost[2] = 11.0;
        let mut held = seeded();
        geodesic_grow_weighted(&mut held, &domain, dims, [1.0; 3], Some(&cost));
        // Steps into or out of voxel 2 cost (1 + 11) / 2 = 6: the left front reaches it at
        // 1 + 6 = 7 and voxel 3 at 13, the right one voxel 3 at 5, so 3 and 4 go right.
        assert_eq!(held, [1, 1, 1, 2, 2, 2, 2, 2, 2]);
        // Costs of 1 everywhere are the plain competition.
        let mut ones = seeded();
        geodesic_grow_weighted(&mut ones, &domain, dims, [1.0; 3], Some(&[1.0; 9]));
        assert_eq!(ones, plain);
    }

    /// The packed and the wide queue, and the inner voxels' fast path and the bounds-tested
    /// one, give the same competition, seed for seed and tie for tie (the wide queue serves
    /// volumes of more than 2^32 voxels, which no test can build), with and without voxel
    /// costs, on random domains that touch every face of the grid.
    #[test]
    fn both_queues_give_the_same_geodesic_competition() {
        let mut rnd = xorshift(0x2545_f491_4f6c_dd1d);
        for case in 0..40 {
            let dims = [
                2 + (rnd() % 12) as usize,
                2 + (rnd() % 12) as usize,
                2 + (rnd() % 12) as usize,
            ];
            let n = dims.iter().product::<usize>();
            let spacing = [0.7, 1.0, 1.0 + (case % 3) as f64];
            let domain: Vec<bool> = (0..n).map(|_| rnd() % 10 < 8).collect();
            let mut seeds = vec![0u16; n];
            for s in 1..=3u16 {
                let l = (rnd() % n as u64) as usize;
                if domain[l] {
                    seeds[l] = s;
                }
            }
            let cost: Vec<f32> = (0..n).map(|_| 1.0 + (rnd() % 5) as f32).collect();
            for c in [None, Some(cost.as_slice())] {
                let mut a = seeds.clone();
                let mut b = seeds.clone();
                let mut slow = seeds.clone();
                grow::<PackedQueue>(&mut a, &domain, dims, spacing, c, true);
                grow::<WideQueue>(&mut b, &domain, dims, spacing, c, true);
                grow::<WideQueue>(&mut slow, &domain, dims, spacing, c, false);
                assert_eq!(a, b, "case {case}");
                assert_eq!(a, slow, "case {case}: the inner voxels' fast path");
                // Labels only inside the domain, and only those of seeds placed.
                let placed: Vec<u16> = seeds.iter().copied().filter(|&l| l != 0).collect();
                for (v, (&l, &d)) in a.iter().zip(&domain).enumerate() {
                    assert!(
                        l == 0 || (d && placed.contains(&l)),
                        "case {case}, voxel {v}"
                    );
                }
            }
        }
    }

    /// On a straight bar, each voxel goes to the nearer of two seeds at its ends.
    #[test]
    fn geodesic_competition_splits_a_bar_between_its_seeds() {
        let dims = [9, 3, 3];
        let domain = vec![true; 81];
        let mut labels = vec![0u16; 81];
        let at = |i: usize| i + 9 * (1 + 3);
        labels[at(0)] = 1;
        labels[at(8)] = 2;
        geodesic_grow(&mut labels, &domain, dims, [1.0; 3]);
        for k in 0..3 {
            for j in 0..3 {
                for i in 0..9 {
                    let l = labels[i + 9 * (j + 3 * k)];
                    let expect = if i < 4 {
                        1
                    } else if i > 4 {
                        2
                    } else {
                        l
                    };
                    assert_eq!(l, expect, "voxel ({i}, {j}, {k})");
                }
            }
        }
    }
}
