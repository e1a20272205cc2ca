//! Taubin lambda/mu smoothing (G. Taubin, "A signal processing approach to fair surface
//! design", SIGGRAPH 1995).
//!
//! Each iteration is a Laplacian step with a positive factor `lambda` followed by one with a
//! negative factor `mu` (`|mu| > lambda`): a low-pass filter with pass-band frequency
//! `k_pb = 1/lambda + 1/mu`, which removes the voxel staircase (high frequencies) without the
//! shrinkage of plain Laplacian smoothing (the low frequencies, the shape, pass unchanged).
//! The Laplacian is the umbrella operator with uniform weights over the one-ring, as in
//! Taubin's paper. Connectivity never changes, so a closed manifold stays one.

use crate::SurfaceMesh;
use serde::Serialize;

/// Parameters of [`taubin`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TaubinParams {
    /// Positive (shrinking) factor, 0 < lambda < 1.
    pub lambda: f64,
    /// Negative (inflating) factor, mu < -lambda.
    pub mu: f64,
    /// Number of lambda/mu pairs.
    pub iterations: usize,
}

impl Default for TaubinParams {
    /// lambda = 0.5, mu = -0.53 (pass band k_pb ~ 0.11), 20 iterations: the staircase of a
    /// 1 mm voxel mask is gone and volumes move by well under 1 %.
    fn default() -> Self {
        TaubinParams {
            lambda: 0.5,
            mu: -0.53,
            iterations: 20,
        }
    }
}

/// One-ring neighbours of every vertex, sorted, in one flat array (compressed rows): the
/// rings of a 500k-triangle surface as separate vectors cost a quarter of a million
/// allocations and scatter the 40 smoothing passes' reads over the heap.
pub(crate) struct Rings {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Rings {
    /// The neighbours of vertex `v`, ascending.
    pub(crate) fn of(&self, v: usize) -> &[u32] {
        &self.items[self.start[v] as usize..self.start[v + 1] as usize]
    }
}

/// One-ring neighbours of every vertex (each undirected edge once per endpoint).
pub(crate) fn neighbours(mesh: &SurfaceMesh) -> Rings {
    let nv = mesh.vertices.len();
    // Each edge of each triangle, both ways: shared edges repeat, removed below.
    let (count, mut raw) = crate::compressed_rows(nv, |push| {
        for t in &mesh.triangles {
            for e in 0..3 {
                let (a, b) = (t[e], t[(e + 1) % 3]);
                push(a, b);
                push(b, a);
            }
        }
    });
    // Sort and deduplicate each row, compacting the rows to the front as they shrink.
    let mut start = vec![0u32; nv + 1];
    let mut end = 0usize;
    for v in 0..nv {
        let row = &mut raw[count[v] as usize..count[v + 1] as usize];
        row.sort_unstable();
        let mut last = None;
        for k in count[v] as usize..count[v + 1] as usize {
            let x = raw[k];
            if last != Some(x) {
                raw[end] = x;
                end += 1;
                last = Some(x);
            }
        }
        start[v + 1] = end as u32;
    }
    raw.truncate(end);
    Rings { start, items: raw }
}

/// Smooths `mesh` in place with Taubin's lambda/mu scheme.
pub fn taubin(mesh: &mut SurfaceMesh, p: &TaubinParams) {
    let nb = neighbours(mesh);
    let mut next = mesh.vertices.clone();
    for _ in 0..p.iterations {
        for factor in [p.lambda, p.mu] {
            for (v, out) in next.iter_mut().enumerate() {
                let ring = nb.of(v);
                let x = mesh.vertices[v];
                if ring.is_empty() {
                    *out = x;
                    continue;
                }
                let mut avg = [0.0; 3];
                for &u in ring {
                    let y = mesh.vertices[u as usize];
                    for k in 0..3 {
                        avg[k] += y[k];
                    }
                }
                let inv = 1.0 / ring.len() as f64;
                for k in 0..3 {
                    out[k] = x[k] + factor * (avg[k] * inv - x[k]);
                }
            }
            std::mem::swap(&mut mesh.vertices, &mut next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rings equal the sorted, deduplicated neighbour sets built edge by edge.
    #[test]
    fn rings_are_the_sorted_one_ring_of_each_vertex() {
        // An octahedron (every vertex has four neighbours) and an unused vertex 6.
        let mesh = SurfaceMesh {
            vertices: vec![[0.0; 3]; 7],
            triangles: vec![
                [0, 2, 4],
                [2, 1, 4],
                [1, 3, 4],
                [3, 0, 4],
                [2, 0, 5],
                [1, 2, 5],
                [3, 1, 5],
                [0, 3, 5],
            ],
        };
        let rings = neighbours(&mesh);
        let mut expected: Vec<Vec<u32>> = vec![Vec::new(); 7];
        for t in &mesh.triangles {
            for e in 0..3 {
                let (a, b) = (t[e], t[(e + 1) % 3]);
                expected[a as usize].push(b);
                expected[b as usize].push(a);
            }
        }
        for (v, e) in expected.iter_mut().enumerate() {
            e.sort_unstable();
            e.dedup();
            assert_eq!(rings.of(v), e.as_slice(), "vertex {v}");
        }
        assert_eq!(rings.of(4), &[0, 1, 2, 3]);
        assert!(rings.of(6).is_empty());
    }
}
