//! A uniform hash grid of axis-aligned boxes (the bounding boxes of surface triangles), the
//! broad phase of the tie projection and of mortar contact. Written here rather than taken
//! from a crate: the queries are a few thousand boxes per assembly, and a spatial-index
//! crate would add a dependency for twenty lines.

use std::collections::HashMap;

use super::kin::V3;

/// Boxes spanning more cells than this (a wildly stretched iterate) are candidates of
/// every query instead.
const MAX_CELLS: i64 = 4096;

/// Boxes by the grid cells they overlap.
#[derive(Debug, Default)]
pub(crate) struct BoxGrid {
    cell: f64,
    cells: HashMap<[i64; 3], Vec<usize>>,
    everywhere: Vec<usize>,
    /// Every box inserted.
    all: Vec<usize>,
}

impl BoxGrid {
    /// An empty grid of cubic cells of side `cell` (mm, > 0).
    pub(crate) fn new(cell: f64) -> BoxGrid {
        BoxGrid {
            cell,
            ..Default::default()
        }
    }

    /// The cell of a point.
    pub(crate) fn key(&self, x: &V3) -> [i64; 3] {
        std::array::from_fn(|k| (x[k] / self.cell).floor() as i64)
    }

    /// Adds box `i` spanning `lo..hi` (a box with a coordinate that is not finite is left
    /// out).
    pub(crate) fn insert(&mut self, i: usize, lo: &V3, hi: &V3) {
        if !lo.iter().chain(hi.iter()).all(|v| v.is_finite()) {
            return;
        }
        self.all.push(i);
        let (a, b) = (self.key(lo), self.key(hi));
        let cells = cells_between(&a, &b);
        if cells > MAX_CELLS {
            self.everywhere.push(i);
            return;
        }
        for x in a[0]..=b[0] {
            for y in a[1]..=b[1] {
                for z in a[2]..=b[2] {
                    self.cells.entry([x, y, z]).or_default().push(i);
                }
            }
        }
    }

    /// The boxes in the cell of `x`, then those in every cell (in insertion order).
    pub(crate) fn at(&self, x: &V3) -> impl Iterator<Item = usize> + '_ {
        self.cells
            .get(&self.key(x))
            .into_iter()
            .flatten()
            .chain(&self.everywhere)
            .copied()
    }

    /// The boxes in the cells overlapping `lo..hi`, ascending, each once (every box when
    /// the query spans more than [`MAX_CELLS`] cells).
    pub(crate) fn overlapping(&self, lo: &V3, hi: &V3, out: &mut Vec<usize>) {
        out.clear();
        let (a, b) = (self.key(lo), self.key(hi));
        let cells = cells_between(&a, &b);
        if cells > MAX_CELLS || !lo.iter().chain(hi.iter()).all(|v| v.is_finite()) {
            out.extend_from_slice(&self.all);
            out.sort_unstable();
            out.dedup();
            return;
        }
        for x in a[0]..=b[0] {
            for y in a[1]..=b[1] {
                for z in a[2]..=b[2] {
                    if let Some(list) = self.cells.get(&[x, y, z]) {
                        out.extend_from_slice(list);
                    }
                }
            }
        }
        out.extend_from_slice(&self.everywhere);
        out.sort_unstable();
        out.dedup();
    }
}

/// The number of cells from cell `a` to cell `b` inclusive (saturating).
fn cells_between(a: &[i64; 3], b: &[i64; 3]) -> i64 {
    (0..3).fold(1i64, |c, k| {
        c.saturating_mul((b[k] - a[k]).saturating_add(1).max(1))
    })
}
