//! Surface meshes of labelled structures, in patient LPS millimetres.
//!
//! The chain, one structure at a time:
//!
//! 1. [`extract`]: a closed, consistently oriented, manifold triangle surface of one label of a
//!    label map (marching tetrahedra on the one-voxel-padded binary mask; see the module for
//!    why that method);
//! 2. [`smooth`]: Taubin lambda/mu smoothing (no shrinkage);
//! 3. [`decimate()`]: quadric simplification (meshoptimizer) to a target triangle count,
//!    checked closed and manifold afterwards;
//! 4. [`check()`]: [`MeshReport`] (closed, manifold, oriented, Euler characteristic,
//!    components, volume, area, self-intersections);
//! 5. [`io`]: binary STL, binary PLY, OBJ, and glTF 2.0 binary (GLB, one named node per
//!    structure), all written atomically.
//!
//! [`surface_of_label`] runs the whole chain with [`SurfaceOptions`].
//!
//! Orientation convention: triangle vertices `(a, b, c)` are counter-clockwise seen from
//! outside, so the right-hand normal `(b - a) x (c - a)` points out of the structure and the
//! signed volume of a closed surface is positive.
//!
//! This crate knows nothing about spines or the FE engine; the caller names the structures.

pub mod check;
pub mod decimate;
pub mod extract;
pub mod io;
pub mod render;
pub mod smooth;
pub mod voxel;

pub use check::{check, MeshReport};
pub use decimate::{decimate, Decimation};
pub use extract::{extract_label, extract_mask, label_voxel_count};
pub use smooth::{taubin, TaubinParams};
pub use voxel::VoxelMesh;

use serde::Serialize;
use std::time::Instant;

/// Rows of items in one flat array (compressed rows): returns `(start, items)`, row `r`
/// being `items[start[r]..start[r + 1]]` in the order pushed. `emit` runs twice and must
/// push the same `(row, item)` pairs both times (it counts, then fills). A vector per row
/// costs an allocation each (a quarter of a million on a vertebra at 0.65 mm) and scatters
/// the rows over the heap.
pub(crate) fn compressed_rows(
    rows: usize,
    emit: impl Fn(&mut dyn FnMut(u32, u32)),
) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; rows + 1];
    emit(&mut |r, _| start[r as usize + 1] += 1);
    for r in 0..rows {
        start[r + 1] += start[r];
    }
    let mut fill = start.clone();
    let mut items = vec![0u32; start[rows] as usize];
    emit(&mut |r, x| {
        items[fill[r as usize] as usize] = x;
        fill[r as usize] += 1;
    });
    (start, items)
}

/// A triangle surface: vertices in patient LPS (mm), triangles as vertex indices,
/// counter-clockwise seen from outside (right-hand normals point out of the structure).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SurfaceMesh {
    /// Vertex positions, patient LPS, mm.
    pub vertices: Vec<[f64; 3]>,
    /// Triangles, indices into `vertices`.
    pub triangles: Vec<[u32; 3]>,
}

/// Errors of the mesh layer.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// The label (or mask) has no voxel.
    #[error("label {0} has no voxel in the label map; nothing to mesh")]
    EmptyLabel(u16),
    /// A mesh too large for 32-bit indices.
    #[error("the surface has {0} vertices, more than 32-bit indices can address; crop or resample the label map")]
    TooLarge(usize),
    /// Input the mesher cannot use (says what and why).
    #[error("{0}")]
    InvalidInput(String),
    /// An output could not be written.
    #[error(transparent)]
    Write(#[from] spinetwin_core::atomic::WriteError),
    /// A file could not be read back.
    #[error("{path}: {msg}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        msg: String,
    },
}

impl SurfaceMesh {
    /// Number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.triangles.len()
    }

    /// The three corners of triangle `t`.
    #[inline]
    pub fn corners(&self, t: usize) -> [[f64; 3]; 3] {
        let [a, b, c] = self.triangles[t];
        [
            self.vertices[a as usize],
            self.vertices[b as usize],
            self.vertices[c as usize],
        ]
    }

    /// Signed enclosed volume (mm^3, divergence theorem); positive for a closed, outward
    /// oriented surface.
    pub fn volume(&self) -> f64 {
        // Relative to the first vertex, so large patient coordinates cost no precision.
        let o = self.vertices.first().copied().unwrap_or([0.0; 3]);
        let rel = |p: [f64; 3]| [p[0] - o[0], p[1] - o[1], p[2] - o[2]];
        (0..self.triangles.len())
            .map(|t| {
                let [a, b, c] = self.corners(t).map(rel);
                dot(a, cross(b, c))
            })
            .sum::<f64>()
            / 6.0
    }

    /// Total surface area (mm^2).
    pub fn area(&self) -> f64 {
        (0..self.triangles.len())
            .map(|t| {
                let [a, b, c] = self.corners(t);
                0.5 * norm(cross(sub(b, a), sub(c, a)))
            })
            .sum()
    }

    /// Reverses the orientation of every triangle.
    pub fn flip(&mut self) {
        for t in &mut self.triangles {
            t.swap(1, 2);
        }
    }

    /// Drops vertices no triangle uses and renumbers the rest (order kept).
    pub fn compact(&mut self) {
        let mut map = vec![u32::MAX; self.vertices.len()];
        let mut verts = Vec::new();
        for t in &mut self.triangles {
            for v in t.iter_mut() {
                let m = &mut map[*v as usize];
                if *m == u32::MAX {
                    *m = verts.len() as u32;
                    verts.push(self.vertices[*v as usize]);
                }
                *v = *m;
            }
        }
        self.vertices = verts;
    }

    /// Area-weighted vertex normals (unit length; zero for unused vertices).
    pub fn vertex_normals(&self) -> Vec<[f64; 3]> {
        let mut n = vec![[0.0; 3]; self.vertices.len()];
        for (t, tri) in self.triangles.iter().enumerate() {
            let [a, b, c] = self.corners(t);
            let f = cross(sub(b, a), sub(c, a));
            for &v in tri {
                let m = &mut n[v as usize];
                for k in 0..3 {
                    m[k] += f[k];
                }
            }
        }
        for m in &mut n {
            let l = norm(*m);
            if l > 0.0 {
                *m = m.map(|x| x / l);
            }
        }
        n
    }

    /// Axis-aligned bounds (min, max) of the vertices, patient LPS mm.
    pub fn bounds(&self) -> ([f64; 3], [f64; 3]) {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in &self.vertices {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        (lo, hi)
    }
}

/// Settings of [`surface_of_label`].
#[derive(Debug, Clone, Serialize)]
pub struct SurfaceOptions {
    /// Taubin smoothing; `None` keeps the raw marching-tetrahedra surface.
    pub smoothing: Option<TaubinParams>,
    /// Triangle count to decimate to; `None` (or a count above the extracted one) keeps all.
    pub target_triangles: Option<usize>,
    /// Run the self-intersection test in the report (the costliest check).
    pub check_self_intersections: bool,
}

impl Default for SurfaceOptions {
    fn default() -> Self {
        SurfaceOptions {
            smoothing: Some(TaubinParams::default()),
            target_triangles: Some(20_000),
            check_self_intersections: true,
        }
    }
}

/// A structure's surface with its checks and figures.
#[derive(Debug, Clone)]
pub struct LabelSurface {
    /// The final surface.
    pub mesh: SurfaceMesh,
    /// Checks of the final surface.
    pub report: MeshReport,
    /// Volume of the labelled voxels (count x voxel volume), mm^3.
    pub voxel_volume: f64,
    /// Triangles straight out of extraction.
    pub extracted_triangles: usize,
    /// Time of extraction, smoothing, decimation and checks (s).
    pub seconds: [f64; 4],
}

impl LabelSurface {
    /// Surface volume relative to the voxel volume, percent (`100 (V_mesh / V_voxels - 1)`).
    pub fn volume_error_percent(&self) -> f64 {
        100.0 * (self.report.volume / self.voxel_volume - 1.0)
    }
}

/// Extracts, smooths, decimates and checks the surface of `label` in `labels`.
pub fn surface_of_label(
    labels: &spinetwin_imaging::Volume<u16>,
    label: u16,
    opts: &SurfaceOptions,
) -> Result<LabelSurface, MeshError> {
    let t0 = Instant::now();
    let voxels = label_voxel_count(labels, label);
    if voxels == 0 {
        return Err(MeshError::EmptyLabel(label));
    }
    let mut mesh = extract_label(labels, label)?;
    let extracted_triangles = mesh.triangles.len();
    let t1 = Instant::now();
    if let Some(p) = &opts.smoothing {
        taubin(&mut mesh, p);
    }
    let t2 = Instant::now();
    if let Some(target) = opts.target_triangles {
        if target < mesh.triangles.len() {
            mesh = decimate(&mesh, target).mesh;
        }
    }
    let t3 = Instant::now();
    let report = check(&mesh, opts.check_self_intersections);
    let t4 = Instant::now();
    Ok(LabelSurface {
        mesh,
        report,
        voxel_volume: voxels as f64 * labels.grid().voxel_volume(),
        extracted_triangles,
        seconds: [
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            (t4 - t3).as_secs_f64(),
        ],
    })
}

#[inline]
pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[inline]
pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
