//! Meshes: nodes, elements, named sets; validation; structured meshers.

use std::collections::{BTreeMap, HashMap};

use crate::element::{point_geometry, ElementKind, TET_EDGES};
use crate::FemError;

/// An element face: `(element index, local face)` with local face `0..num_faces()` (Abaqus
/// S1, S2, ..., see [`ElementKind::faces`]).
pub type Face = (usize, u8);

/// A solid mesh. Coordinates in mm. Element connectivity is stored flat (CSR-like):
/// element `e` has kind `kinds[e]` and nodes `connectivity[offsets[e]..offsets[e + 1]]`,
/// ordered as in Abaqus/CalculiX (see [`ElementKind`]).
#[derive(Clone, Debug, Default)]
pub struct Mesh {
    /// Node coordinates (mm).
    pub nodes: Vec<[f64; 3]>,
    /// Kind of each element.
    pub kinds: Vec<ElementKind>,
    /// `offsets[e]..offsets[e + 1]` indexes `connectivity` for element `e`; length
    /// `kinds.len() + 1`.
    pub offsets: Vec<usize>,
    /// Node indices of all elements, concatenated.
    pub connectivity: Vec<usize>,
    /// Named element sets.
    pub element_sets: BTreeMap<String, Vec<usize>>,
    /// Named node sets.
    pub node_sets: BTreeMap<String, Vec<usize>>,
    /// Named face sets (for surface loads).
    pub face_sets: BTreeMap<String, Vec<Face>>,
}

impl Mesh {
    /// An empty mesh with the given nodes.
    pub fn with_nodes(nodes: Vec<[f64; 3]>) -> Self {
        Mesh {
            nodes,
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Appends an element and returns its index. Not validated here: see [`Mesh::validate`].
    pub fn add_element(&mut self, kind: ElementKind, nodes: &[usize]) -> usize {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.kinds.push(kind);
        self.connectivity.extend_from_slice(nodes);
        self.offsets.push(self.connectivity.len());
        self.kinds.len() - 1
    }

    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        self.kinds.len()
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Node indices of element `e`. Panics if `e >= num_elements()` (like slice indexing).
    pub fn element_nodes(&self, e: usize) -> &[usize] {
        &self.connectivity[self.offsets[e]..self.offsets[e + 1]]
    }

    /// Centroid of element `e` in the mesh's coordinates: the mean of its corner nodes (a
    /// Tet10 lists its 4 corners first; the other kinds have corner nodes only). For
    /// straight-edged elements this is also the mean of all their nodes.
    pub fn element_centroid(&self, e: usize) -> [f64; 3] {
        let n = self.element_nodes(e);
        let k = self.kinds[e].corners().len().min(n.len()).max(1);
        let mut c = [0.0; 3];
        for &i in &n[..k] {
            for (ca, p) in c.iter_mut().zip(self.nodes[i]) {
                *ca += p;
            }
        }
        c.map(|v| v / k as f64)
    }

    /// Coordinates of the nodes of element `e` (up to 10).
    pub(crate) fn element_coords(&self, e: usize) -> Vec<[f64; 3]> {
        self.element_nodes(e)
            .iter()
            .map(|&n| self.nodes[n])
            .collect()
    }

    /// Checks the mesh: consistent offsets, node counts matching the kinds, node indices in
    /// range, finite coordinates, set members in range, and a positive Jacobian determinant
    /// at every integration point and corner of every element (an inverted or degenerate
    /// element is an error naming it).
    pub fn validate(&self) -> Result<(), FemError> {
        let bad = |m: String| Err(FemError::InvalidMesh(m));
        if self.offsets.len() != self.kinds.len() + 1 || self.offsets.first() != Some(&0) {
            return bad("offsets must have one entry per element plus a leading 0".into());
        }
        if *self.offsets.last().unwrap_or(&0) != self.connectivity.len() {
            return bad("the last offset must equal the connectivity length".into());
        }
        for (i, p) in self.nodes.iter().enumerate() {
            if p.iter().any(|c| !c.is_finite()) {
                return bad(format!("node {i} has a non-finite coordinate {p:?}"));
            }
        }
        let nn = self.nodes.len();
        for e in 0..self.num_elements() {
            let kind = self.kinds[e];
            let (a, b) = (self.offsets[e], self.offsets[e + 1]);
            if b < a || b - a != kind.num_nodes() {
                return bad(format!(
                    "element {e} ({kind:?}) has {} nodes, expected {}",
                    b.saturating_sub(a),
                    kind.num_nodes()
                ));
            }
            if let Some(&n) = self.element_nodes(e).iter().find(|&&n| n >= nn) {
                return bad(format!(
                    "element {e} refers to node {n}, but the mesh has {nn} nodes"
                ));
            }
            self.check_jacobian(e)?;
        }
        for (name, set) in &self.node_sets {
            if let Some(&n) = set.iter().find(|&&n| n >= nn) {
                return bad(format!("node set {name:?} refers to node {n} (of {nn})"));
            }
        }
        let ne = self.num_elements();
        for (name, set) in &self.element_sets {
            if let Some(&e) = set.iter().find(|&&e| e >= ne) {
                return bad(format!(
                    "element set {name:?} refers to element {e} (of {ne})"
                ));
            }
        }
        for (name, set) in &self.face_sets {
            if let Some(f) = set
                .iter()
                .find(|f| f.0 >= ne || f.1 as usize >= self.kinds[f.0].num_faces())
            {
                return bad(format!("face set {name:?} has an invalid face {f:?}"));
            }
        }
        Ok(())
    }

    fn check_jacobian(&self, e: usize) -> Result<(), FemError> {
        let kind = self.kinds[e];
        let x = self.element_coords(e);
        let points = kind
            .quadrature()
            .iter()
            .map(|q| q.0)
            .chain(kind.corners().iter().copied());
        // Scale for "degenerate": det J relative to the cube of the element's diameter
        // (the natural volumes differ, 1/6 to 8, which a 1e-12 threshold ignores).
        let h = (0..x.len())
            .flat_map(|a| (0..a).map(move |b| (a, b)))
            .map(|(a, b)| dist(x[a], x[b]))
            .fold(0.0, f64::max);
        for p in points {
            let det = point_geometry(kind, &x, p).map_or(0.0, |g| g.det_j);
            if det.is_nan() || det <= 1e-12 * h * h * h {
                return Err(FemError::InvertedElement {
                    element: e,
                    det_j: det,
                });
            }
        }
        Ok(())
    }

    /// Applies `f` to every node coordinate (e.g. to map a box onto a cylinder sector).
    /// Mid-edge nodes are mapped too, so the mapped quadratic elements are curved.
    pub fn map_nodes(&mut self, f: impl Fn([f64; 3]) -> [f64; 3]) {
        for p in &mut self.nodes {
            *p = f(*p);
        }
    }

    /// Converts a Tet4 mesh to Tet10 by adding one shared node at the midpoint of every edge.
    /// Element, face and element sets carry over; a mid-edge node joins a node set when both
    /// ends of its edge are in it.
    pub fn to_quadratic(&self) -> Result<Mesh, FemError> {
        let mut out = Mesh::with_nodes(self.nodes.clone());
        let mut edge_node: HashMap<(usize, usize), usize> = HashMap::new();
        let mut edges_added: Vec<(usize, usize)> = Vec::new();
        for e in 0..self.num_elements() {
            if self.kinds[e] != ElementKind::Tet4 {
                return Err(FemError::InvalidMesh(format!(
                    "to_quadratic: element {e} is not a Tet4"
                )));
            }
            let c = self.element_nodes(e);
            let mut nodes = [0usize; 10];
            nodes[..4].copy_from_slice(c);
            for (m, [a, b]) in TET_EDGES.iter().enumerate() {
                let (na, nb) = (c[*a], c[*b]);
                let key = (na.min(nb), na.max(nb));
                let id = *edge_node.entry(key).or_insert_with(|| {
                    let (pa, pb) = (self.nodes[na], self.nodes[nb]);
                    out.nodes.push([
                        0.5 * (pa[0] + pb[0]),
                        0.5 * (pa[1] + pb[1]),
                        0.5 * (pa[2] + pb[2]),
                    ]);
                    edges_added.push(key);
                    out.nodes.len() - 1
                });
                nodes[4 + m] = id;
            }
            out.add_element(ElementKind::Tet10, &nodes);
        }
        out.element_sets = self.element_sets.clone();
        out.face_sets = self.face_sets.clone();
        let n0 = self.nodes.len();
        for (name, set) in &self.node_sets {
            let mut member = vec![false; n0];
            for &n in set {
                if n < n0 {
                    member[n] = true;
                }
            }
            let mut s = set.clone();
            for (k, (a, b)) in edges_added.iter().enumerate() {
                if member[*a] && member[*b] {
                    s.push(n0 + k);
                }
            }
            out.node_sets.insert(name.clone(), s);
        }
        Ok(out)
    }

    /// The nodes of `faces` (deduplicated, sorted); faces not in the mesh are skipped.
    pub fn face_set_nodes(&self, faces: &[Face]) -> Vec<usize> {
        let mut v: Vec<usize> = faces
            .iter()
            .filter(|&&(e, _)| e < self.num_elements())
            .filter_map(|&(e, f)| {
                let nodes = self.element_nodes(e);
                let local = self.kinds[e].face(f as usize)?;
                Some(local.iter().map(move |&l| nodes[l]))
            })
            .flatten()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Node set by name, or an error naming the missing set.
    pub fn node_set(&self, name: &str) -> Result<&[usize], FemError> {
        self.node_sets
            .get(name)
            .map(|v| v.as_slice())
            .ok_or_else(|| FemError::InvalidInput(format!("no node set named {name:?}")))
    }

    /// Face set by name, or an error naming the missing set.
    pub fn face_set(&self, name: &str) -> Result<&[Face], FemError> {
        self.face_sets
            .get(name)
            .map(|v| v.as_slice())
            .ok_or_else(|| FemError::InvalidInput(format!("no face set named {name:?}")))
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Element order requested from the meshers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Tet4 elements.
    Linear,
    /// Tet10 elements (shared mid-edge nodes).
    Quadratic,
}

/// A structured tet mesh of the box `[0, lx] x [0, ly] x [0, lz]` with `nx x ny x nz` cells,
/// each split into 6 tets around its main diagonal (Kuhn/Freudenthal subdivision: every
/// cell is split the same way, so neighbouring cells share face diagonals and the mesh is
/// conforming).
///
/// Sets: element set `all`; node sets and face sets `xmin`, `xmax`, `ymin`, `ymax`, `zmin`,
/// `zmax` (boundary faces of the box).
pub fn box_mesh(size: [f64; 3], cells: [usize; 3], order: Order) -> Result<Mesh, FemError> {
    if size.iter().any(|s| !(s.is_finite() && *s > 0.0)) || cells.contains(&0) {
        return Err(FemError::InvalidInput(format!(
            "box mesh: sizes must be positive and finite and cell counts >= 1 (got {size:?}, {cells:?})"
        )));
    }
    let [nx, ny, nz] = cells;
    let id = |i: usize, j: usize, k: usize| i + (nx + 1) * (j + (ny + 1) * k);
    let mut nodes = Vec::with_capacity((nx + 1) * (ny + 1) * (nz + 1));
    for k in 0..=nz {
        for j in 0..=ny {
            for i in 0..=nx {
                nodes.push([
                    size[0] * i as f64 / nx as f64,
                    size[1] * j as f64 / ny as f64,
                    size[2] * k as f64 / nz as f64,
                ]);
            }
        }
    }
    let mut mesh = Mesh::with_nodes(nodes);
    let perms = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut faces: BTreeMap<String, Vec<Face>> = BTreeMap::new();
    for name in ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"] {
        faces.insert(name.into(), Vec::new());
    }
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                for p in perms {
                    // Path from corner (0,0,0) to (1,1,1) along axes p[0], p[1], p[2].
                    let mut c = [0usize; 3];
                    let mut v = [[0usize; 3]; 4];
                    for (s, &axis) in p.iter().enumerate() {
                        c[axis] = 1;
                        v[s + 1] = c;
                    }
                    let mut t = v.map(|o| id(i + o[0], j + o[1], k + o[2]));
                    // Odd permutations give negative volume: swap two nodes.
                    let odd = matches!(p, [0, 2, 1] | [1, 0, 2] | [2, 1, 0]);
                    let mut lv = v;
                    if odd {
                        t.swap(1, 2);
                        lv.swap(1, 2);
                    }
                    let e = mesh.add_element(ElementKind::Tet4, &t);
                    // Boundary faces: a face lies on a box face when all 3 corners share
                    // the extreme local coordinate and the cell is at that boundary.
                    for (f, fc) in crate::element::TET_FACES.iter().enumerate() {
                        let pts = [lv[fc[0]], lv[fc[1]], lv[fc[2]]];
                        for axis in 0..3 {
                            let cell_idx = [i, j, k][axis];
                            let ncell = cells[axis];
                            if pts.iter().all(|q| q[axis] == 0) && cell_idx == 0 {
                                let name = ["xmin", "ymin", "zmin"][axis];
                                faces.get_mut(name).unwrap().push((e, f as u8));
                            }
                            if pts.iter().all(|q| q[axis] == 1) && cell_idx == ncell - 1 {
                                let name = ["xmax", "ymax", "zmax"][axis];
                                faces.get_mut(name).unwrap().push((e, f as u8));
                            }
                        }
                    }
                }
            }
        }
    }
    let all: Vec<usize> = (0..mesh.num_elements()).collect();
    mesh.element_sets.insert("all".into(), all);
    for axis in 0..3 {
        let n = cells[axis];
        let names = [["xmin", "xmax"], ["ymin", "ymax"], ["zmin", "zmax"]][axis];
        for (side, name) in names.iter().enumerate() {
            let target = if side == 0 { 0 } else { n };
            let mut set = Vec::new();
            for kk in 0..=nz {
                for jj in 0..=ny {
                    for ii in 0..=nx {
                        if [ii, jj, kk][axis] == target {
                            set.push(id(ii, jj, kk));
                        }
                    }
                }
            }
            mesh.node_sets.insert((*name).into(), set);
        }
    }
    mesh.face_sets = faces;
    let mesh = match order {
        Order::Linear => mesh,
        Order::Quadratic => mesh.to_quadratic()?,
    };
    mesh.validate()?;
    Ok(mesh)
}

/// A thick-walled cylinder sector (hollow tube segment) of inner radius `r_in`, outer radius
/// `r_out`, opening angle `angle` (radians, from the +x axis towards +y) and height `h`
/// along z, from a box mesh with `[n_r, n_theta, n_z]` cells mapped onto cylindrical
/// coordinates. Quadratic elements are curved (mid-edge nodes on the exact arcs).
///
/// Sets (node and face): `inner`, `outer`, `theta0` (the plane y = 0), `theta1` (the plane
/// at `angle`), `zmin`, `zmax`; element set `all`.
pub fn cylinder_sector_mesh(
    r_in: f64,
    r_out: f64,
    angle: f64,
    h: f64,
    cells: [usize; 3],
    order: Order,
) -> Result<Mesh, FemError> {
    if !(r_in > 0.0 && r_out > r_in && angle > 0.0 && angle <= std::f64::consts::TAU && h > 0.0) {
        return Err(FemError::InvalidInput(format!(
            "cylinder sector: need 0 < r_in < r_out, 0 < angle <= 2 pi, h > 0 (got {r_in}, {r_out}, {angle}, {h})"
        )));
    }
    let mut mesh = box_mesh([1.0, 1.0, 1.0], cells, order)?;
    mesh.map_nodes(|p| {
        let r = r_in + (r_out - r_in) * p[0];
        let th = angle * p[1];
        [r * th.cos(), r * th.sin(), h * p[2]]
    });
    for (old, new) in [
        ("xmin", "inner"),
        ("xmax", "outer"),
        ("ymin", "theta0"),
        ("ymax", "theta1"),
    ] {
        if let Some(s) = mesh.node_sets.remove(old) {
            mesh.node_sets.insert(new.into(), s);
        }
        if let Some(s) = mesh.face_sets.remove(old) {
            mesh.face_sets.insert(new.into(), s);
        }
    }
    mesh.validate()?;
    Ok(mesh)
}

/// Nodes of the structured grid on `[0, lx] x [0, ly] x [0, lz]` (x fastest) and its six
/// boundary node sets, for the hex and wedge box meshers.
fn grid_nodes(size: [f64; 3], cells: [usize; 3]) -> Result<Mesh, FemError> {
    if size.iter().any(|s| !(s.is_finite() && *s > 0.0)) || cells.contains(&0) {
        return Err(FemError::InvalidInput(format!(
            "box mesh: sizes must be positive and finite and cell counts >= 1 (got {size:?}, {cells:?})"
        )));
    }
    let [nx, ny, nz] = cells;
    let mut nodes = Vec::with_capacity((nx + 1) * (ny + 1) * (nz + 1));
    let mut sets: [Vec<usize>; 6] = Default::default();
    for k in 0..=nz {
        for j in 0..=ny {
            for i in 0..=nx {
                let ijk = [i, j, k];
                for axis in 0..3 {
                    if ijk[axis] == 0 {
                        sets[2 * axis].push(nodes.len());
                    }
                    if ijk[axis] == cells[axis] {
                        sets[2 * axis + 1].push(nodes.len());
                    }
                }
                nodes.push(std::array::from_fn(|a| {
                    size[a] * ijk[a] as f64 / cells[a] as f64
                }));
            }
        }
    }
    let mut mesh = Mesh::with_nodes(nodes);
    for (name, set) in BOX_SIDES.iter().zip(sets) {
        mesh.node_sets.insert((*name).into(), set);
        mesh.face_sets.insert((*name).into(), Vec::new());
    }
    Ok(mesh)
}

const BOX_SIDES: [&str; 6] = ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"];

/// A structured Hex8 mesh of the box `[0, lx] x [0, ly] x [0, lz]` with `nx x ny x nz`
/// cells. Sets as for [`box_mesh`]: element set `all`; node and face sets `xmin`, `xmax`,
/// `ymin`, `ymax`, `zmin`, `zmax`.
pub fn hex_box_mesh(size: [f64; 3], cells: [usize; 3]) -> Result<Mesh, FemError> {
    let mut mesh = grid_nodes(size, cells)?;
    let [nx, ny, nz] = cells;
    let id = |i: usize, j: usize, k: usize| i + (nx + 1) * (j + (ny + 1) * k);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let e = mesh.add_element(
                    ElementKind::Hex8,
                    &[
                        id(i, j, k),
                        id(i + 1, j, k),
                        id(i + 1, j + 1, k),
                        id(i, j + 1, k),
                        id(i, j, k + 1),
                        id(i + 1, j, k + 1),
                        id(i + 1, j + 1, k + 1),
                        id(i, j + 1, k + 1),
                    ],
                );
                // Faces S1..S6 are zeta-, zeta+, eta-, xi+, eta+, xi- (see HEX_FACES).
                let on = [
                    (i == 0, "xmin", 5),
                    (i == nx - 1, "xmax", 3),
                    (j == 0, "ymin", 2),
                    (j == ny - 1, "ymax", 4),
                    (k == 0, "zmin", 0),
                    (k == nz - 1, "zmax", 1),
                ];
                for (yes, name, f) in on {
                    if yes {
                        mesh.face_sets.get_mut(name).unwrap().push((e, f));
                    }
                }
            }
        }
    }
    let all: Vec<usize> = (0..mesh.num_elements()).collect();
    mesh.element_sets.insert("all".into(), all);
    mesh.validate()?;
    Ok(mesh)
}

/// A structured Wedge6 mesh of the box: each of the `nx x ny x nz` cells is split into two
/// wedges along the diagonal of its xy square (triangles extruded along z). Sets as for
/// [`hex_box_mesh`].
pub fn wedge_box_mesh(size: [f64; 3], cells: [usize; 3]) -> Result<Mesh, FemError> {
    let mut mesh = grid_nodes(size, cells)?;
    let [nx, ny, nz] = cells;
    let id = |i: usize, j: usize, k: usize| i + (nx + 1) * (j + (ny + 1) * k);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                // Triangles counter-clockwise seen from +z, so the wedge volume is positive.
                let tris = [
                    [(i, j), (i + 1, j), (i + 1, j + 1)],
                    [(i, j), (i + 1, j + 1), (i, j + 1)],
                ];
                for (m, tri) in tris.iter().enumerate() {
                    let mut nodes = [0; 6];
                    for (a, &(ii, jj)) in tri.iter().enumerate() {
                        nodes[a] = id(ii, jj, k);
                        nodes[a + 3] = id(ii, jj, k + 1);
                    }
                    let e = mesh.add_element(ElementKind::Wedge6, &nodes);
                    // S1 bottom, S2 top, S3 edge 1-2, S4 edge 2-3, S5 edge 3-1.
                    let on = if m == 0 {
                        [(j == 0, "ymin", 2), (i == nx - 1, "xmax", 3)]
                    } else {
                        [(j == ny - 1, "ymax", 3), (i == 0, "xmin", 4)]
                    };
                    let on = on
                        .into_iter()
                        .chain([(k == 0, "zmin", 0), (k == nz - 1, "zmax", 1)]);
                    for (yes, name, f) in on {
                        if yes {
                            mesh.face_sets.get_mut(name).unwrap().push((e, f));
                        }
                    }
                }
            }
        }
    }
    let all: Vec<usize> = (0..mesh.num_elements()).collect();
    mesh.element_sets.insert("all".into(), all);
    mesh.validate()?;
    Ok(mesh)
}

#[cfg(test)]
mod centroid_tests {
    use super::*;

    /// The centroids of a meshed box: each element's centroid lies inside the box, and
    /// their volume-weighted mean (equal volumes here: 6 tets per cell) is the box centre;
    /// Tet10 and Tet4 of the same cells give the same centroids (corners only).
    #[test]
    fn element_centroids_of_a_box_average_to_its_centre() {
        let size = [4.0, 3.0, 2.0];
        let lin = box_mesh(size, [2, 3, 1], Order::Linear).unwrap();
        let quad = box_mesh(size, [2, 3, 1], Order::Quadratic).unwrap();
        assert_eq!(lin.num_elements(), quad.num_elements());
        let ne = lin.num_elements() as f64;
        let mut mean = [0.0; 3];
        for e in 0..lin.num_elements() {
            let (a, b) = (lin.element_centroid(e), quad.element_centroid(e));
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 1e-12, "{e}: {a:?} vs {b:?}");
                assert!(a[k] > 0.0 && a[k] < size[k]);
                mean[k] += a[k] / ne;
            }
        }
        for k in 0..3 {
            assert!((mean[k] - size[k] / 2.0).abs() < 1e-12, "{mean:?}");
        }
    }
}
