//! Element kinds, shape functions, quadrature rules and element matrices.
//!
//! Natural coordinates of the reference tetrahedron are `(r, s, t)` with corners
//! `1 = (0,0,0)`, `2 = (1,0,0)`, `3 = (0,1,0)`, `4 = (0,0,1)`; barycentric coordinates
//! `L1 = 1 - r - s - t`, `L2 = r`, `L3 = s`, `L4 = t`. The hexahedron uses
//! `(xi, eta, zeta)` in `[-1, 1]^3`; the wedge uses triangle coordinates `(r, s)` (as the
//! tet, `L1 = 1 - r - s`) times `t` in `[-1, 1]`.

use nalgebra::Matrix3;

/// The kind of a solid element. Node ordering follows Abaqus/CalculiX (C3D4, C3D10).
///
/// * `Tet4` (C3D4): corners 1-2-3-4, with node 4 on the side the right-hand normal of
///   face 1-2-3 points to (positive volume).
/// * `Tet10` (C3D10): corners 1-4 as for `Tet4`, then mid-edge nodes
///   5 (1-2), 6 (2-3), 7 (3-1), 8 (1-4), 9 (2-4), 10 (3-4).
///
/// * `Hex8` (C3D8): nodes 1-2-3-4 one face, counter-clockwise seen from the opposite face
///   5-6-7-8 (node `k + 4` opposite node `k`), i.e. natural corners
///   `(-1,-1,-1), (1,-1,-1), (1,1,-1), (-1,1,-1)`, then the same at `zeta = +1`.
/// * `Wedge6` (C3D6): triangle 1-2-3, counter-clockwise seen from the opposite triangle 4-5-6
///   (node `k + 3` opposite node `k`); natural corners `(0,0,-1), (1,0,-1), (0,1,-1)`, then
///   the same at `t = +1`.
///
/// Indices in code are 0-based (node `k` above is index `k - 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementKind {
    /// Linear 4-node tetrahedron (constant strain).
    Tet4,
    /// Quadratic 10-node tetrahedron.
    Tet10,
    /// Trilinear 8-node hexahedron (2x2x2 Gauss; F-bar in the nonlinear path).
    Hex8,
    /// Linear 6-node wedge (triangular prism).
    Wedge6,
}

/// Local corner indices of the six edges, in the order of the Tet10 mid-edge nodes 5..10.
pub const TET_EDGES: [[usize; 2]; 6] = [[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]];

/// Faces of a tetrahedron (Abaqus S1..S4): corners, then (for Tet10) mid-edge nodes in the
/// order of the tri6 face (edges a-b, b-c, c-a). The right-hand normal of each face's corner
/// order points INTO the element; loads use the outward normal (the opposite).
pub const TET_FACES: [[usize; 6]; 4] = [
    [0, 1, 2, 4, 5, 6], // S1: 1-2-3
    [0, 3, 1, 7, 8, 4], // S2: 1-4-2
    [1, 3, 2, 8, 9, 5], // S3: 2-4-3
    [2, 3, 0, 9, 7, 6], // S4: 3-4-1
];

/// Faces of a hexahedron (Abaqus S1..S6), corner nodes in Abaqus order; as for the tets the
/// right-hand normal of each face's node order points INTO the element.
/// S1 `zeta = -1`, S2 `zeta = +1`, S3 `eta = -1`, S4 `xi = +1`, S5 `eta = +1`, S6 `xi = -1`.
pub const HEX_FACES: [[usize; 4]; 6] = [
    [0, 1, 2, 3], // S1: 1-2-3-4
    [4, 7, 6, 5], // S2: 5-8-7-6
    [0, 4, 5, 1], // S3: 1-5-6-2
    [1, 5, 6, 2], // S4: 2-6-7-3
    [2, 6, 7, 3], // S5: 3-7-8-4
    [3, 7, 4, 0], // S6: 4-8-5-1
];

/// Faces of a wedge (Abaqus S1..S5): two triangles, then three quadrilaterals; the
/// right-hand normal of each face's node order points INTO the element.
/// S1 `t = -1`, S2 `t = +1`, S3 `s = 0`, S4 `r + s = 1`, S5 `r = 0`.
pub const WEDGE_FACES: [&[usize]; 5] = [
    &[0, 1, 2],    // S1: 1-2-3
    &[3, 5, 4],    // S2: 4-6-5
    &[0, 3, 4, 1], // S3: 1-4-5-2
    &[1, 4, 5, 2], // S4: 2-5-6-3
    &[2, 5, 3, 0], // S5: 3-6-4-1
];

const TET4_FACES: [&[usize]; 4] = [&[0, 1, 2], &[0, 3, 1], &[1, 3, 2], &[2, 3, 0]];
const TET10_FACES: [&[usize]; 4] = [&TET_FACES[0], &TET_FACES[1], &TET_FACES[2], &TET_FACES[3]];
const HEX8_FACES: [&[usize]; 6] = [
    &HEX_FACES[0],
    &HEX_FACES[1],
    &HEX_FACES[2],
    &HEX_FACES[3],
    &HEX_FACES[4],
    &HEX_FACES[5],
];

impl ElementKind {
    /// Number of nodes of the element.
    pub fn num_nodes(self) -> usize {
        match self {
            ElementKind::Tet4 => 4,
            ElementKind::Tet10 => 10,
            ElementKind::Hex8 => 8,
            ElementKind::Wedge6 => 6,
        }
    }

    /// The largest number of nodes of one face (3 for tri3, 6 for tri6, 4 for quad4). Faces
    /// of a wedge differ (3 or 4): use [`ElementKind::face`] for the nodes of a given face.
    pub fn face_nodes(self) -> usize {
        match self {
            ElementKind::Tet4 => 3,
            ElementKind::Tet10 => 6,
            ElementKind::Hex8 | ElementKind::Wedge6 => 4,
        }
    }

    /// Number of faces (4 tet, 6 hex, 5 wedge).
    pub fn num_faces(self) -> usize {
        self.faces().len()
    }

    /// Local node indices of every face in Abaqus order S1, S2, ... (corners first, then
    /// mid-edge nodes for Tet10). The right-hand normal of the corner order points into the
    /// element. A face has 3 (tri3), 6 (tri6) or 4 (quad4) nodes.
    pub fn faces(self) -> &'static [&'static [usize]] {
        match self {
            ElementKind::Tet4 => &TET4_FACES,
            ElementKind::Tet10 => &TET10_FACES,
            ElementKind::Hex8 => &HEX8_FACES,
            ElementKind::Wedge6 => &WEDGE_FACES,
        }
    }

    /// Local node indices of face `f` (0-based: S1 is 0), or `None` when out of range.
    pub fn face(self, f: usize) -> Option<&'static [usize]> {
        self.faces().get(f).copied()
    }

    /// Natural coordinates of the corner nodes (used to check the Jacobian at the corners).
    pub fn corners(self) -> &'static [[f64; 3]] {
        match self {
            ElementKind::Tet4 | ElementKind::Tet10 => &TET_CORNERS,
            ElementKind::Hex8 => &HEX_CORNERS,
            ElementKind::Wedge6 => &WEDGE_CORNERS,
        }
    }

    /// The VTK cell type (10 = VTK_TETRA, 24 = VTK_QUADRATIC_TETRA, 12 = VTK_HEXAHEDRON,
    /// 13 = VTK_WEDGE). Node order conversion: [`crate::vtu::vtk_connectivity`].
    pub fn vtk_cell_type(self) -> u8 {
        match self {
            ElementKind::Tet4 => 10,
            ElementKind::Tet10 => 24,
            ElementKind::Hex8 => 12,
            ElementKind::Wedge6 => 13,
        }
    }

    /// The quadrature rule used for stiffness, stresses and body forces.
    ///
    /// Tet4: 1 point at the centroid (B is constant). Tet10: the 4-point rule of degree 2
    /// with `a = (5 + 3 sqrt 5)/20`, `b = (5 - sqrt 5)/20`, weights 1/24 (Hammer, Marlowe &
    /// Stroud 1956; Zienkiewicz, Taylor & Zhu, *The Finite Element Method*, vol. 1, table
    /// 6.4). For straight-edged Tet10 the integrand B^T D B is quadratic, so it is exact.
    /// Hex8: 2x2x2 Gauss (exact for parallelepipeds). Wedge6: the 3-point triangle rule
    /// (points (1/6, 1/6), (2/3, 1/6), (1/6, 2/3), degree 2) times 2-point Gauss in `t`.
    pub fn quadrature(self) -> &'static [([f64; 3], f64)] {
        match self {
            ElementKind::Tet4 => &TET1,
            ElementKind::Tet10 => &TET4PT,
            ElementKind::Hex8 => &HEX8PT,
            ElementKind::Wedge6 => &WEDGE6PT,
        }
    }

    /// Natural coordinates of the element centroid (where F-bar samples the volume change).
    pub fn centroid(self) -> [f64; 3] {
        match self {
            ElementKind::Tet4 | ElementKind::Tet10 => [0.25; 3],
            ElementKind::Hex8 => [0.0; 3],
            ElementKind::Wedge6 => [1.0 / 3.0, 1.0 / 3.0, 0.0],
        }
    }

    /// Shape functions `N` and their natural derivatives `dN/d(r,s,t)` at a point.
    /// Only the first `num_nodes()` entries are meaningful.
    pub fn shape(self, p: [f64; 3]) -> ([f64; 10], [[f64; 3]; 10]) {
        let [r, s, t] = p;
        let l = [1.0 - r - s - t, r, s, t];
        let dl: [[f64; 3]; 4] = [
            [-1.0, -1.0, -1.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
        ];
        let mut n = [0.0; 10];
        let mut dn = [[0.0; 3]; 10];
        match self {
            ElementKind::Tet4 => {
                n[..4].copy_from_slice(&l);
                dn[..4].copy_from_slice(&dl);
            }
            ElementKind::Tet10 => {
                for i in 0..4 {
                    n[i] = l[i] * (2.0 * l[i] - 1.0);
                    for k in 0..3 {
                        dn[i][k] = (4.0 * l[i] - 1.0) * dl[i][k];
                    }
                }
                for (m, [a, b]) in TET_EDGES.iter().enumerate() {
                    n[4 + m] = 4.0 * l[*a] * l[*b];
                    for k in 0..3 {
                        dn[4 + m][k] = 4.0 * (l[*a] * dl[*b][k] + l[*b] * dl[*a][k]);
                    }
                }
            }
            ElementKind::Hex8 => {
                for (a, c) in HEX_CORNERS.iter().enumerate() {
                    let f = [0.5 * (1.0 + c[0] * r), 0.5 * (1.0 + c[1] * s)];
                    let f2 = 0.5 * (1.0 + c[2] * t);
                    n[a] = f[0] * f[1] * f2;
                    dn[a] = [
                        0.5 * c[0] * f[1] * f2,
                        0.5 * c[1] * f[0] * f2,
                        0.5 * c[2] * f[0] * f[1],
                    ];
                }
            }
            ElementKind::Wedge6 => {
                // Triangle coordinates (not the tet's: t is the prism axis here).
                let lw = [1.0 - r - s, r, s];
                let dlw = [[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]];
                let lt = [0.5 * (1.0 - t), 0.5 * (1.0 + t)];
                let dlt = [-0.5, 0.5];
                for layer in 0..2 {
                    for i in 0..3 {
                        let a = 3 * layer + i;
                        n[a] = lw[i] * lt[layer];
                        dn[a] = [
                            dlw[i][0] * lt[layer],
                            dlw[i][1] * lt[layer],
                            lw[i] * dlt[layer],
                        ];
                    }
                }
            }
        }
        (n, dn)
    }
}

const TET_CORNERS: [[f64; 3]; 4] = [
    [0.0, 0.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0],
];
const HEX_CORNERS: [[f64; 3]; 8] = [
    [-1.0, -1.0, -1.0],
    [1.0, -1.0, -1.0],
    [1.0, 1.0, -1.0],
    [-1.0, 1.0, -1.0],
    [-1.0, -1.0, 1.0],
    [1.0, -1.0, 1.0],
    [1.0, 1.0, 1.0],
    [-1.0, 1.0, 1.0],
];
const WEDGE_CORNERS: [[f64; 3]; 6] = [
    [0.0, 0.0, -1.0],
    [1.0, 0.0, -1.0],
    [0.0, 1.0, -1.0],
    [0.0, 0.0, 1.0],
    [1.0, 0.0, 1.0],
    [0.0, 1.0, 1.0],
];
/// 1 / sqrt(3): the 2-point Gauss abscissa.
const G2: f64 = 0.577_350_269_189_625_8;
const HEX8PT: [([f64; 3], f64); 8] = [
    ([-G2, -G2, -G2], 1.0),
    ([G2, -G2, -G2], 1.0),
    ([G2, G2, -G2], 1.0),
    ([-G2, G2, -G2], 1.0),
    ([-G2, -G2, G2], 1.0),
    ([G2, -G2, G2], 1.0),
    ([G2, G2, G2], 1.0),
    ([-G2, G2, G2], 1.0),
];
const W6: f64 = 1.0 / 6.0;
const WEDGE6PT: [([f64; 3], f64); 6] = [
    ([W6, W6, -G2], W6),
    ([4.0 * W6, W6, -G2], W6),
    ([W6, 4.0 * W6, -G2], W6),
    ([W6, W6, G2], W6),
    ([4.0 * W6, W6, G2], W6),
    ([W6, 4.0 * W6, G2], W6),
];

/// The 3x3 Gauss rule on the quadrilateral `[-1, 1]^2` (degree 5). Used for quad4 face
/// loads: exact for flat parallelogram faces, accurate for warped ones.
pub fn quad9() -> [([f64; 2], f64); 9] {
    let a = 0.6f64.sqrt();
    let x = [-a, 0.0, a];
    let w = [5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0];
    std::array::from_fn(|k| ([x[k % 3], x[k / 3]], w[k % 3] * w[k / 3]))
}

const TET1: [([f64; 3], f64); 1] = [([0.25, 0.25, 0.25], 1.0 / 6.0)];
const QA: f64 = 0.585_410_196_624_968_5;
const QB: f64 = 0.138_196_601_125_010_5;
const TET4PT: [([f64; 3], f64); 4] = [
    ([QB, QB, QB], 1.0 / 24.0),
    ([QA, QB, QB], 1.0 / 24.0),
    ([QB, QA, QB], 1.0 / 24.0),
    ([QB, QB, QA], 1.0 / 24.0),
];

/// The 7-point degree-5 rule on the reference triangle (area 1/2), Radon 1948 / Dunavant
/// 1985 (Int. J. Numer. Meth. Eng. 21:1129). Used for face loads: exact for tri3 and flat
/// tri6 faces (integrands of degree <= 2) and accurate for curved tri6 faces (degree 4).
pub fn tri7() -> [([f64; 2], f64); 7] {
    let s15 = 15f64.sqrt();
    let a1 = (6.0 - s15) / 21.0;
    let b1 = (9.0 + 2.0 * s15) / 21.0;
    let a2 = (6.0 + s15) / 21.0;
    let b2 = (9.0 - 2.0 * s15) / 21.0;
    let w0 = 9.0 / 80.0;
    let w1 = (155.0 - s15) / 2400.0;
    let w2 = (155.0 + s15) / 2400.0;
    [
        ([1.0 / 3.0, 1.0 / 3.0], w0),
        ([a1, a1], w1),
        ([b1, a1], w1),
        ([a1, b1], w1),
        ([a2, a2], w2),
        ([b2, a2], w2),
        ([a2, b2], w2),
    ]
}

/// Shape functions of a tri3 (`n_face = 3`), quad4 (`n_face = 4`, natural `(u, v)` in
/// `[-1, 1]^2`, corners `(-1,-1), (1,-1), (1,1), (-1,1)`) or tri6 (`n_face = 6`, mid-edge
/// nodes a-b, b-c, c-a) face at natural point `(u, v)`, with derivatives `d/d(u, v)`.
pub fn face_shape(n_face: usize, p: [f64; 2]) -> ([f64; 6], [[f64; 2]; 6]) {
    let [u, v] = p;
    if n_face == 4 {
        let mut n = [0.0; 6];
        let mut dn = [[0.0; 2]; 6];
        for (a, c) in [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]
            .iter()
            .enumerate()
        {
            n[a] = 0.25 * (1.0 + c[0] * u) * (1.0 + c[1] * v);
            dn[a] = [
                0.25 * c[0] * (1.0 + c[1] * v),
                0.25 * c[1] * (1.0 + c[0] * u),
            ];
        }
        return (n, dn);
    }
    let l = [1.0 - u - v, u, v];
    let dl = [[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]];
    let mut n = [0.0; 6];
    let mut dn = [[0.0; 2]; 6];
    if n_face == 3 {
        n[..3].copy_from_slice(&l);
        dn[..3].copy_from_slice(&dl);
    } else {
        for i in 0..3 {
            n[i] = l[i] * (2.0 * l[i] - 1.0);
            for k in 0..2 {
                dn[i][k] = (4.0 * l[i] - 1.0) * dl[i][k];
            }
        }
        for (m, (a, b)) in [(0, 1), (1, 2), (2, 0)].into_iter().enumerate() {
            n[3 + m] = 4.0 * l[a] * l[b];
            for k in 0..2 {
                dn[3 + m][k] = 4.0 * (l[a] * dl[b][k] + l[b] * dl[a][k]);
            }
        }
    }
    (n, dn)
}

/// Geometry of an element at one natural point: `det J` and the Cartesian derivatives
/// `dN/dx` of its shape functions.
pub(crate) struct PointGeometry {
    pub det_j: f64,
    pub n: [f64; 10],
    pub dndx: [[f64; 3]; 10],
}

/// Evaluates the Jacobian at a natural point. Returns `None` when it is singular.
pub(crate) fn point_geometry(
    kind: ElementKind,
    x: &[[f64; 3]],
    p: [f64; 3],
) -> Option<PointGeometry> {
    let (n, dn) = kind.shape(p);
    let nn = kind.num_nodes();
    // J[i][j] = d x_i / d xi_j
    let mut j = Matrix3::zeros();
    for a in 0..nn {
        for i in 0..3 {
            for k in 0..3 {
                j[(i, k)] += x[a][i] * dn[a][k];
            }
        }
    }
    let det_j = j.determinant();
    let inv = j.try_inverse()?;
    let mut dndx = [[0.0; 3]; 10];
    for a in 0..nn {
        for i in 0..3 {
            // dN/dx_i = sum_k dN/dxi_k * dxi_k/dx_i
            dndx[a][i] = (0..3).map(|k| dn[a][k] * inv[(k, i)]).sum();
        }
    }
    Some(PointGeometry { det_j, n, dndx })
}

/// Strain (Voigt, engineering shear) from nodal displacements `u` and derivatives `dndx`.
pub(crate) fn strain(dndx: &[[f64; 3]], u: &[[f64; 3]]) -> [f64; 6] {
    let mut g = [[0.0; 3]; 3]; // g[i][j] = du_i/dx_j
    for (d, ua) in dndx.iter().zip(u) {
        for i in 0..3 {
            for k in 0..3 {
                g[i][k] += ua[i] * d[k];
            }
        }
    }
    [
        g[0][0],
        g[1][1],
        g[2][2],
        g[0][1] + g[1][0],
        g[0][2] + g[2][0],
        g[1][2] + g[2][1],
    ]
}

/// Adds `w * B^T D B` into the row-major element matrix `k` (size `3n x 3n`).
pub(crate) fn add_btdb(k: &mut [f64], dndx: &[[f64; 3]], d: &[[f64; 6]; 6], w: f64) {
    let n = dndx.len();
    let ndof = 3 * n;
    // B columns for node a, direction i: a sparse 6-vector.
    let bcol = |a: usize, i: usize| -> [f64; 6] {
        let g = dndx[a];
        match i {
            0 => [g[0], 0.0, 0.0, g[1], g[2], 0.0],
            1 => [0.0, g[1], 0.0, g[0], 0.0, g[2]],
            _ => [0.0, 0.0, g[2], 0.0, g[0], g[1]],
        }
    };
    let mut db = vec![[0.0; 6]; ndof];
    for a in 0..n {
        for i in 0..3 {
            let b = bcol(a, i);
            let col = &mut db[3 * a + i];
            for r in 0..6 {
                col[r] = (0..6).map(|c| d[r][c] * b[c]).sum::<f64>() * w;
            }
        }
    }
    for a in 0..n {
        for i in 0..3 {
            let b = bcol(a, i);
            let row = 3 * a + i;
            for (col, dbc) in db.iter().enumerate() {
                let v: f64 = (0..6).map(|r| b[r] * dbc[r]).sum();
                k[row * ndof + col] += v;
            }
        }
    }
}
