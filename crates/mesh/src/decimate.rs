//! Decimation to a target triangle count with meshoptimizer's quadric edge-collapse
//! simplifier (`meshopt` crate, C++ built with cc).
//!
//! `meshopt_simplifyWithUpdate` is used: edge collapses ordered by quadric error, triangle
//! flips rejected, and the surviving vertices moved to their quadric-optimal positions (which
//! keeps the enclosed volume better than keeping the original vertices, where a convex
//! surface always loses volume). The surface is closed, so the "lock border" option has
//! nothing to lock and is off. meshoptimizer does not promise that every collapse keeps a
//! closed surface 2-manifold (it does not test the link condition, and on thin parts such as
//! the processes of a vertebra at 2 mm it can pinch two sheets together) nor free of
//! self-intersections, so the result is checked ([`crate::check`]). Where it is broken, the
//! vertices around each defect (their two-ring on the input) are locked and the
//! simplification is redone from the input; locks accumulate over attempts until the result
//! is a closed, oriented, manifold surface without self-intersections. The few locked
//! vertices cost nothing of the target. As a last resort (never seen in the tests) the
//! input is returned unchanged.

use crate::check::defect_vertices;
use crate::SurfaceMesh;
use meshopt::{SimplifyOptions, SimplifyVertex};

/// Attempts before giving up and returning the input.
const MAX_ATTEMPTS: usize = 12;

/// Result of [`decimate`].
#[derive(Debug, Clone)]
pub struct Decimation {
    /// The simplified surface (or the input, when no valid simplification was found).
    pub mesh: SurfaceMesh,
    /// Attempts made (1 when the first one was valid; 0 when nothing was to do).
    pub attempts: usize,
    /// Vertices locked to keep the topology.
    pub locked_vertices: usize,
    /// meshoptimizer's geometric error, relative to the mesh extent.
    pub relative_error: f32,
}

/// Simplifies `mesh` to about `target` triangles, keeping a closed, oriented, manifold input
/// so and free of self-intersections (see the module documentation). A target at or above
/// the current count returns the input. An input that is not a closed oriented manifold is
/// simplified once, unchecked.
pub fn decimate(mesh: &SurfaceMesh, target: usize) -> Decimation {
    let nt = mesh.triangles.len();
    let unchanged = |attempts| Decimation {
        mesh: mesh.clone(),
        attempts,
        locked_vertices: 0,
        relative_error: 0.0,
    };
    if target >= nt || nt == 0 {
        return unchanged(0);
    }
    let was_valid = {
        let r = crate::check(mesh, false);
        r.closed && r.manifold && r.oriented && r.degenerate_triangles == 0
    };
    let target = target.max(4);
    let mut locks = vec![SimplifyVertex::None; mesh.vertices.len()];
    let mut ring: Option<Vec<Vec<u32>>> = None;
    for attempt in 1..=MAX_ATTEMPTS {
        let (mut out, err) = simplify_once(mesh, target, &locks);
        let bad = if was_valid {
            defect_vertices(&out, true)
        } else {
            Vec::new()
        };
        if bad.is_empty() {
            out.compact();
            return Decimation {
                mesh: out,
                attempts: attempt,
                locked_vertices: locks.iter().filter(|l| **l == SimplifyVertex::Lock).count(),
                relative_error: err,
            };
        }
        // Lock the defect vertices (indices of the input: the simplifier keeps them) and
        // their two-ring on the input.
        let nb = ring.get_or_insert_with(|| crate::smooth::neighbours(mesh));
        for v in bad {
            locks[v as usize] = SimplifyVertex::Lock;
            for &u in &nb[v as usize] {
                locks[u as usize] = SimplifyVertex::Lock;
                for &w in &nb[u as usize] {
                    locks[w as usize] = SimplifyVertex::Lock;
                }
            }
        }
    }
    unchanged(MAX_ATTEMPTS)
}

/// One meshoptimizer run; the result still indexes the input's vertices (moved ones at
/// their new positions), not compacted.
fn simplify_once(
    mesh: &SurfaceMesh,
    target: usize,
    locks: &[SimplifyVertex],
) -> (SurfaceMesh, f32) {
    // Positions relative to the centroid in f32 (patient coordinates are hundreds of mm).
    let n = mesh.vertices.len().max(1) as f64;
    let mut c = [0.0; 3];
    for p in &mesh.vertices {
        for k in 0..3 {
            c[k] += p[k] / n;
        }
    }
    let mut pos: Vec<[f32; 3]> = mesh
        .vertices
        .iter()
        .map(|p| {
            [
                (p[0] - c[0]) as f32,
                (p[1] - c[1]) as f32,
                (p[2] - c[2]) as f32,
            ]
        })
        .collect();
    let mut indices: Vec<u32> = mesh.triangles.iter().flatten().copied().collect();
    let mut err = 0.0f32;
    let kept = meshopt::simplify_with_update(
        &mut indices,
        &mut pos,
        &mut [],
        &[],
        0,
        Some(locks),
        3 * target,
        1.0,
        SimplifyOptions::None,
        Some(&mut err),
    );
    indices.truncate(kept);
    let out = SurfaceMesh {
        vertices: pos
            .iter()
            .map(|p| [p[0] as f64 + c[0], p[1] as f64 + c[1], p[2] as f64 + c[2]])
            .collect(),
        triangles: indices
            .chunks_exact(3)
            .map(|t| [t[0], t[1], t[2]])
            .collect(),
    };
    (out, err)
}
