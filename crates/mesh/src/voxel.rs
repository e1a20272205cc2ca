//! Volume meshes straight from the voxels: one 8-node hexahedron per voxel (or per block of
//! `step`^3 voxels), optionally split into tetrahedra.
//!
//! Voxel meshes are the standard way to turn a calibrated CT into a bone finite-element
//! model (voxel-based "continuum" or "hFE" models, e.g. the vertebral strength models of
//! Crawford, Cann & Keaveny 2003, Bone 33:744, and the VerSe'19 benchmark of Walle,
//! Matheson & Boyd): every element carries the density of its own voxels, no surface fit is
//! needed, and the mesh cannot fail. The staircase surface changes stiffness by a few
//! percent at 1 mm (the stress concentrations it makes are local).
//!
//! Written here, not taken from a library: no crate meshes a labelled voxel grid into
//! conforming hexahedra with the grid's patient-frame geometry, and it is short.
//!
//! Node order is Abaqus/CalculiX C3D8 (bottom face 1-2-3-4, then the top face 5-8 above
//! them) with a positive Jacobian in patient coordinates, whatever the handedness of the
//! grid's direction matrix. [`VoxelMesh::tetrahedra`] splits each hexahedron into six
//! tetrahedra around its main diagonal (Kuhn/Freudenthal): every face of the grid is cut
//! along the same diagonal seen from both cells, so the tetrahedral mesh is conforming.
//!
//! Elements that only touch the rest along an edge or a corner would hinge (a zero-energy
//! mode); only the largest face-connected component is kept, and the voxels dropped are
//! counted.

use crate::{cross, dot, sub, MeshError};
use spinetwin_imaging::Grid;
use std::collections::HashMap;

/// Cube corner offsets in C3D8 order: bottom face counter-clockwise seen from above, then
/// the top face.
const HEX_CORNERS: [[usize; 3]; 8] = [
    [0, 0, 0],
    [1, 0, 0],
    [1, 1, 0],
    [0, 1, 0],
    [0, 0, 1],
    [1, 0, 1],
    [1, 1, 1],
    [0, 1, 1],
];

/// C3D8 local node of each corner of the surface extractor's Freudenthal split
/// ([`crate::extract`], corner `c` at offset `(c & 1, (c >> 1) & 1, (c >> 2) & 1)`): the
/// same six tetrahedra around the diagonal from local node 0 to local node 6 (index corners
/// (0,0,0) and (1,1,1); on a mirrored grid, whose cells list their nodes in mirrored order,
/// (0,1,0) and (1,0,1), the same for every cell, so the split still conforms). The
/// orientation of each tetrahedron is fixed from its signed volume.
const CORNER_TO_C3D8: [usize; 8] = [0, 1, 3, 2, 4, 5, 7, 6];

/// Six times the signed volume of the tetrahedron `a, b, c, d`.
fn tet_volume6(a: [f64; 3], b: [f64; 3], c: [f64; 3], d: [f64; 3]) -> f64 {
    dot(sub(b, a), cross(sub(c, a), sub(d, a)))
}

/// A hexahedral voxel mesh in patient coordinates.
#[derive(Clone, Debug, Default)]
pub struct VoxelMesh {
    /// Node coordinates, patient LPS (mm).
    pub nodes: Vec<[f64; 3]>,
    /// Hexahedra, C3D8 node order, positive Jacobian.
    pub cells: Vec<[usize; 8]>,
    /// Voxel index of the lowest corner voxel of each cell's block.
    pub cell_origin: Vec<[usize; 3]>,
    /// Voxels per cell edge.
    pub step: usize,
    /// Cells dropped because they were not face-connected to the largest component.
    pub dropped_cells: usize,
}

impl VoxelMesh {
    /// Meshes the voxels for which `include(i, j, k)` holds. With `step > 1` one cell covers
    /// a block of `step`^3 voxels and is kept when at least half of them are included.
    /// Only the largest face-connected component of cells is kept.
    pub fn from_mask(
        grid: &Grid,
        step: usize,
        include: impl Fn(usize, usize, usize) -> bool,
    ) -> Result<VoxelMesh, MeshError> {
        if step == 0 {
            return Err(MeshError::InvalidInput(
                "voxel mesh: the block size must be at least one voxel".into(),
            ));
        }
        let dims = grid.dims;
        let nc = [0, 1, 2].map(|a| dims[a].div_ceil(step));
        let cell_index = |c: [usize; 3]| (c[2] * nc[1] + c[1]) * nc[0] + c[0];
        // 1. Cells kept by majority.
        let mut on = vec![false; nc[0] * nc[1] * nc[2]];
        for ck in 0..nc[2] {
            for cj in 0..nc[1] {
                for ci in 0..nc[0] {
                    let (mut inside, mut total) = (0usize, 0usize);
                    for k in ck * step..((ck + 1) * step).min(dims[2]) {
                        for j in cj * step..((cj + 1) * step).min(dims[1]) {
                            for i in ci * step..((ci + 1) * step).min(dims[0]) {
                                total += 1;
                                inside += include(i, j, k) as usize;
                            }
                        }
                    }
                    // At least half of the block's voxels (a block cut by the grid border
                    // counts its full size, so thin border slivers do not become cells).
                    if total > 0 && 2 * inside >= step * step * step {
                        on[cell_index([ci, cj, ck])] = true;
                    }
                }
            }
        }
        let total_on = on.iter().filter(|&&b| b).count();
        if total_on == 0 {
            return Err(MeshError::InvalidInput(
                "voxel mesh: no voxel is included; nothing to mesh".into(),
            ));
        }
        // 2. Largest face-connected component (flood fill, explicit stack).
        let mut comp = vec![u32::MAX; on.len()];
        let mut best = (0u32, 0usize);
        let mut next = 0u32;
        let mut stack = Vec::new();
        for start in 0..on.len() {
            if !on[start] || comp[start] != u32::MAX {
                continue;
            }
            let mut size = 0;
            comp[start] = next;
            stack.push(start);
            while let Some(c) = stack.pop() {
                size += 1;
                let ci = c % nc[0];
                let cj = (c / nc[0]) % nc[1];
                let ck = c / (nc[0] * nc[1]);
                let mut visit = |n: usize| {
                    if on[n] && comp[n] == u32::MAX {
                        comp[n] = next;
                        stack.push(n);
                    }
                };
                if ci > 0 {
                    visit(c - 1);
                }
                if ci + 1 < nc[0] {
                    visit(c + 1);
                }
                if cj > 0 {
                    visit(c - nc[0]);
                }
                if cj + 1 < nc[1] {
                    visit(c + nc[0]);
                }
                if ck > 0 {
                    visit(c - nc[0] * nc[1]);
                }
                if ck + 1 < nc[2] {
                    visit(c + nc[0] * nc[1]);
                }
            }
            if size > best.1 {
                best = (next, size);
            }
            next += 1;
        }
        // 3. Nodes at the block corners, in patient coordinates; orientation from the grid.
        let h = step as f64;
        let corner_world = |p: [usize; 3]| {
            // Voxel centres sit at integer indices; a block's corner is half a voxel out.
            let w = grid.index_to_world(nalgebra::Vector3::new(
                p[0] as f64 * h - 0.5,
                p[1] as f64 * h - 0.5,
                p[2] as f64 * h - 0.5,
            ));
            [w.x, w.y, w.z]
        };
        let o = corner_world([0, 0, 0]);
        let axis = |a: usize| {
            let mut p = [0, 0, 0];
            p[a] = 1;
            let w = corner_world(p);
            nalgebra::Vector3::new(w[0] - o[0], w[1] - o[1], w[2] - o[2])
        };
        let mirrored = axis(0).cross(&axis(1)).dot(&axis(2)) < 0.0;
        let order: [usize; 8] = if mirrored {
            // Mirror the cell's local y: the bottom and top faces run the other way round.
            [3, 2, 1, 0, 7, 6, 5, 4]
        } else {
            [0, 1, 2, 3, 4, 5, 6, 7]
        };
        let mut mesh = VoxelMesh {
            step,
            dropped_cells: total_on - best.1,
            ..Default::default()
        };
        let mut node_of: HashMap<[usize; 3], usize> = HashMap::new();
        for ck in 0..nc[2] {
            for cj in 0..nc[1] {
                for ci in 0..nc[0] {
                    if comp[cell_index([ci, cj, ck])] != best.0 || !on[cell_index([ci, cj, ck])] {
                        continue;
                    }
                    let mut cell = [0usize; 8];
                    for (slot, &local) in order.iter().enumerate() {
                        let d = HEX_CORNERS[local];
                        let p = [ci + d[0], cj + d[1], ck + d[2]];
                        cell[slot] = *node_of.entry(p).or_insert_with(|| {
                            mesh.nodes.push(corner_world(p));
                            mesh.nodes.len() - 1
                        });
                    }
                    mesh.cells.push(cell);
                    mesh.cell_origin.push([ci * step, cj * step, ck * step]);
                }
            }
        }
        Ok(mesh)
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when there is no cell.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The voxels of cell `c`'s block that lie inside the grid of dimensions `dims`.
    pub fn cell_voxels(&self, c: usize, dims: [usize; 3]) -> impl Iterator<Item = [usize; 3]> {
        let o = self.cell_origin[c];
        let s = self.step;
        let hi = [0, 1, 2].map(|a| (o[a] + s).min(dims[a]));
        (o[2]..hi[2]).flat_map(move |k| {
            (o[1]..hi[1]).flat_map(move |j| (o[0]..hi[0]).map(move |i| [i, j, k]))
        })
    }

    /// Each cell split into six tetrahedra around its main diagonal (C3D4 order, positive
    /// volume); tetrahedron `6 c + t` comes from cell `c`. Conforming: neighbouring cells
    /// cut their shared face along the same diagonal.
    pub fn tetrahedra(&self) -> Vec<[usize; 4]> {
        let mut out = Vec::with_capacity(6 * self.cells.len());
        for cell in &self.cells {
            for t in crate::extract::TETS {
                let mut tet = t.map(|c| cell[CORNER_TO_C3D8[c as usize]]);
                let [a, b, c, d] = tet.map(|n| self.nodes[n]);
                if tet_volume6(a, b, c, d) < 0.0 {
                    tet.swap(1, 2);
                }
                out.push(tet);
            }
        }
        out
    }

    /// Volume of cell `c` (mm^3): the sum of its six tetrahedra's absolute volumes.
    pub fn cell_volume(&self, c: usize) -> f64 {
        let cell = self.cells[c];
        crate::extract::TETS
            .iter()
            .map(|t| {
                let [a, b, cc, d] = t.map(|k| self.nodes[cell[CORNER_TO_C3D8[k as usize]]]);
                tet_volume6(a, b, cc, d).abs() / 6.0
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix3, Vector3};

    fn grid(direction: Matrix3<f64>) -> Grid {
        Grid::new(
            [6, 5, 4],
            [0.8, 1.0, 1.5],
            Vector3::new(10.0, -20.0, 30.0),
            direction,
        )
        .unwrap()
    }

    fn signed_hex_volume(m: &VoxelMesh, c: usize) -> f64 {
        // Jacobian at the cell centre from the C3D8 corner order: edges 0->1, 0->3, 0->4.
        let n = |i: usize| Vector3::from(m.nodes[m.cells[c][i]]);
        (n(1) - n(0)).cross(&(n(3) - n(0))).dot(&(n(4) - n(0)))
    }

    #[test]
    fn block_mesh_counts_volume_and_orientation() {
        for dir in [
            Matrix3::identity(),
            Matrix3::new(-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),
            // A mirrored (left-handed) grid, as NIfTI files with a flipped axis give.
            Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),
        ] {
            let g = grid(dir);
            let m = VoxelMesh::from_mask(&g, 1, |i, _, _| i < 4).unwrap();
            assert_eq!(m.len(), 4 * 5 * 4);
            assert_eq!(m.nodes.len(), 5 * 6 * 5);
            assert_eq!(m.dropped_cells, 0);
            for c in 0..m.len() {
                assert!(signed_hex_volume(&m, c) > 0.0, "cell {c} inverted");
                assert!((m.cell_volume(c) - 0.8 * 1.0 * 1.5).abs() < 1e-12);
            }
            let tets = m.tetrahedra();
            assert_eq!(tets.len(), 6 * m.len());
            let vol: f64 = tets
                .iter()
                .map(|t| {
                    let [a, b, c, d] = t.map(|n| Vector3::from(m.nodes[n]));
                    let v = (b - a).cross(&(c - a)).dot(&(d - a)) / 6.0;
                    assert!(v > 0.0);
                    v
                })
                .sum();
            assert!((vol - 80.0 * 1.2).abs() < 1e-9, "{vol}");
        }
    }

    #[test]
    fn tetrahedra_are_conforming() {
        // Every interior triangle is shared by exactly two tetrahedra, every boundary one by
        // one; a non-conforming split would leave interior faces used once.
        for dir in [
            Matrix3::identity(),
            Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),
        ] {
            let g = grid(dir);
            let m = VoxelMesh::from_mask(&g, 1, |_, _, _| true).unwrap();
            let mut faces: HashMap<[usize; 3], usize> = HashMap::new();
            for t in m.tetrahedra() {
                for skip in 0..4 {
                    let mut f: Vec<usize> = (0..4).filter(|&i| i != skip).map(|i| t[i]).collect();
                    f.sort();
                    *faces.entry([f[0], f[1], f[2]]).or_default() += 1;
                }
            }
            let boundary = faces.values().filter(|&&n| n == 1).count();
            assert!(faces.values().all(|&n| n == 1 || n == 2));
            // Each of the 2(6*5 + 6*4 + 5*4) boundary squares splits into two triangles.
            assert_eq!(boundary, 2 * 2 * (6 * 5 + 6 * 4 + 5 * 4));
        }
    }

    #[test]
    fn largest_face_connected_component_and_blocks() {
        let g = grid(Matrix3::identity());
        // Two blocks touching along an edge only: (0..2, 0..2, all) and (2..4, 2..4, all).
        let m = VoxelMesh::from_mask(&g, 1, |i, j, _| {
            (i < 2 && j < 2) || ((2..5).contains(&i) && (2..5).contains(&j))
        })
        .unwrap();
        assert_eq!(m.len(), 3 * 3 * 4);
        assert_eq!(m.dropped_cells, 2 * 2 * 4);
        // Blocks of 2^3 voxels, kept by majority: 6x5x4 voxels -> 3x3x2 cells; the last
        // j-row of blocks holds one voxel row of two (half: kept, 4 voxels each).
        let b = VoxelMesh::from_mask(&g, 2, |_, _, _| true).unwrap();
        assert_eq!(b.len(), 3 * 3 * 2);
        assert_eq!(b.cell_voxels(0, g.dims).count(), 8);
        let last = (0..b.len()).find(|&c| b.cell_origin[c][1] == 4).unwrap();
        assert_eq!(b.cell_voxels(last, g.dims).count(), 4);
        // Three voxels of eight in a block: dropped.
        let three = |i: usize, j: usize, k: usize| {
            j.is_multiple_of(2) && (i.is_multiple_of(2) || k.is_multiple_of(2))
        };
        assert!(VoxelMesh::from_mask(&g, 2, three).is_err());
        assert!(VoxelMesh::from_mask(&g, 1, |_, _, _| false).is_err());
        assert!(VoxelMesh::from_mask(&g, 0, |_, _, _| true).is_err());
    }
}
