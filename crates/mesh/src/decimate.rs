//! Decimation to a target triangle count with meshoptimizer's quadric edge-collapse
//! simplifier (`meshopt` crate, C++ built with cc).
//!
//! `meshopt_simplifyWithUpdate` is used: edge collapses ordered by quadric error, triangle
//! flips rejected, and the surviving vertices moved to their quadric-optimal positions (which
//! keeps the enclosed volume better than keeping the original vertices, where a convex
//! surface always loses volume). The surface is closed, so the "lock border" option has
//! nothing to lock and is off. meshoptimizer does not promise that every collapse keeps a
//! closed surface 2-manifold (it does not test the link condition), so the result is checked
//! ([`crate::check`]); if a collapse broke it, the simplification is redone from the input
//! with a slightly higher target, and as a last resort the input is returned unchanged.

use crate::SurfaceMesh;
use meshopt::SimplifyOptions;

/// Result of [`decimate`].
#[derive(Debug, Clone)]
pub struct Decimation {
    /// The simplified surface (or the input, when no valid simplification was found).
    pub mesh: SurfaceMesh,
    /// Triangle target actually used (grows when an attempt broke the topology).
    pub target_used: usize,
    /// Attempts made (1 when the first one was closed and manifold).
    pub attempts: usize,
    /// meshoptimizer's geometric error, relative to the mesh extent.
    pub relative_error: f32,
}

/// Simplifies `mesh` to about `target` triangles, keeping it closed and manifold (see the
/// module documentation). A target at or above the current count returns the input.
pub fn decimate(mesh: &SurfaceMesh, target: usize) -> Decimation {
    let nt = mesh.triangles.len();
    if target >= nt || nt == 0 {
        return Decimation {
            mesh: mesh.clone(),
            target_used: nt,
            attempts: 0,
            relative_error: 0.0,
        };
    }
    let was_valid = {
        let r = crate::check(mesh, false);
        r.closed && r.manifold && r.oriented
    };
    let mut tgt = target.max(4);
    for attempt in 1..=6 {
        let (out, err) = simplify_once(mesh, tgt);
        let r = crate::check(&out, false);
        if !was_valid || (r.closed && r.manifold && r.oriented && r.degenerate_triangles == 0) {
            return Decimation {
                mesh: out,
                target_used: tgt,
                attempts: attempt,
                relative_error: err,
            };
        }
        tgt = (tgt + tgt / 20 + 1).min(nt);
    }
    Decimation {
        mesh: mesh.clone(),
        target_used: nt,
        attempts: 6,
        relative_error: 0.0,
    }
}

fn simplify_once(mesh: &SurfaceMesh, target: usize) -> (SurfaceMesh, f32) {
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
        None,
        3 * target,
        1.0,
        SimplifyOptions::None,
        Some(&mut err),
    );
    indices.truncate(kept);
    let mut out = SurfaceMesh {
        vertices: pos
            .iter()
            .map(|p| [p[0] as f64 + c[0], p[1] as f64 + c[1], p[2] as f64 + c[2]])
            .collect(),
        triangles: indices
            .chunks_exact(3)
            .map(|t| [t[0], t[1], t[2]])
            .collect(),
    };
    out.compact();
    (out, err)
}
