//! Mesh checks: topology (closed, manifold, oriented, Euler characteristic, components),
//! geometry (volume, area) and self-intersections.

use crate::{cross, dot, sub, SurfaceMesh};
use rayon::prelude::*;
use serde::Serialize;

/// What [`check`] finds about a surface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeshReport {
    /// Vertices used by at least one triangle.
    pub vertices: usize,
    /// Triangles.
    pub triangles: usize,
    /// Undirected edges.
    pub edges: usize,
    /// Every edge is shared by exactly two triangles (watertight).
    pub closed: bool,
    /// No edge has more than two triangles and the triangles around every vertex form a
    /// single fan (a disc, or a half-disc on a border).
    pub manifold: bool,
    /// Neighbouring triangles run through their shared edge in opposite directions (no
    /// directed edge is used twice).
    pub oriented: bool,
    /// Euler characteristic V - E + F.
    pub euler_characteristic: i64,
    /// Edge-connected components (separate shells).
    pub components: usize,
    /// Total genus (handles) from the Euler characteristic, `(2 components - chi) / 2`;
    /// only for closed, manifold, oriented surfaces.
    pub genus: Option<i64>,
    /// Triangles with a repeated vertex or zero area.
    pub degenerate_triangles: usize,
    /// Signed enclosed volume, mm^3 (divergence theorem; positive when oriented outwards).
    pub volume: f64,
    /// Surface area, mm^2.
    pub area: f64,
    /// Pairs of triangles without a shared vertex that intersect (uniform-grid accelerated
    /// exact-arithmetic-free triangle/triangle test); `None` when not checked.
    pub self_intersections: Option<usize>,
}

impl MeshReport {
    /// Closed, manifold, oriented, positive volume and (when checked) free of
    /// self-intersections.
    pub fn is_valid_solid(&self) -> bool {
        self.closed
            && self.manifold
            && self.oriented
            && self.volume > 0.0
            && self.self_intersections.unwrap_or(0) == 0
    }
}

/// Checks `mesh`; the self-intersection test (the costliest) only when asked.
pub fn check(mesh: &SurfaceMesh, self_intersections: bool) -> MeshReport {
    let nv = mesh.vertices.len();
    let nt = mesh.triangles.len();
    // Directed edges, as (min, max, forward) sorted: groups are undirected edges.
    let mut dir_edges: Vec<(u32, u32, bool)> = Vec::with_capacity(3 * nt);
    for t in &mesh.triangles {
        for e in 0..3 {
            let (a, b) = (t[e], t[(e + 1) % 3]);
            dir_edges.push((a.min(b), a.max(b), a < b));
        }
    }
    dir_edges.par_sort_unstable();
    let mut edges = 0;
    let mut closed = true;
    let mut edge_manifold = true;
    let mut oriented = true;
    let mut i = 0;
    while i < dir_edges.len() {
        let mut j = i;
        while j < dir_edges.len()
            && dir_edges[j].0 == dir_edges[i].0
            && dir_edges[j].1 == dir_edges[i].1
        {
            j += 1;
        }
        edges += 1;
        let n = j - i;
        let fwd = dir_edges[i..j].iter().filter(|e| e.2).count();
        closed &= n == 2;
        edge_manifold &= n <= 2;
        oriented &= fwd <= 1 && n - fwd <= 1;
        i = j;
    }

    let (start, incident) = triangles_around(mesh);
    let used = (0..nv).filter(|&v| start[v + 1] > start[v]).count();
    let fans_ok = (0..nv)
        .into_par_iter()
        .map_init(FanScratch::default, |sc, v| {
            let tris = &incident[start[v] as usize..start[v + 1] as usize];
            single_fan(mesh, v as u32, tris, sc)
        })
        .all(|ok| ok);
    let manifold = edge_manifold && fans_ok;

    // Components: union-find over vertices joined by triangles.
    let mut parent: Vec<u32> = (0..nv as u32).collect();
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    for t in &mesh.triangles {
        let r0 = find(&mut parent, t[0]);
        for &v in &t[1..] {
            let r = find(&mut parent, v);
            if r != r0 {
                parent[r as usize] = r0;
            }
        }
    }
    let components = (0..nv as u32)
        .filter(|&v| start[v as usize + 1] > start[v as usize] && find(&mut parent, v) == v)
        .count();

    let euler = used as i64 - edges as i64 + nt as i64;
    let genus = (closed && manifold && oriented).then(|| (2 * components as i64 - euler) / 2);
    let degenerate = (0..nt)
        .filter(|&t| {
            let [a, b, c] = mesh.triangles[t];
            if a == b || b == c || a == c {
                return true;
            }
            let [p, q, r] = mesh.corners(t);
            dot(cross(sub(q, p), sub(r, p)), cross(sub(q, p), sub(r, p))) == 0.0
        })
        .count();
    MeshReport {
        vertices: used,
        triangles: nt,
        edges,
        closed,
        manifold,
        oriented,
        euler_characteristic: euler,
        components,
        genus,
        degenerate_triangles: degenerate,
        volume: mesh.volume(),
        area: mesh.area(),
        self_intersections: self_intersections.then(|| count_self_intersections(mesh)),
    }
}

/// The triangles around each vertex, in compressed rows (`start`, `incident`): those of
/// vertex `v` are `incident[start[v]..start[v + 1]]`, ascending.
fn triangles_around(mesh: &SurfaceMesh) -> (Vec<u32>, Vec<u32>) {
    crate::compressed_rows(mesh.vertices.len(), |push| {
        for (ti, t) in mesh.triangles.iter().enumerate() {
            for &v in t {
                push(v, ti as u32);
            }
        }
    })
}

/// Buffers reused by [`single_fan`] from one vertex to the next (a check of a 500k-triangle
/// surface allocated four vectors per vertex).
#[derive(Default)]
struct FanScratch {
    link: Vec<(u32, u32)>,
    nodes: Vec<u32>,
    seen: Vec<bool>,
    stack: Vec<u32>,
}

/// True when the triangles `tris` around vertex `v` form one fan: their edges opposite `v`
/// make a single cycle or a single path.
fn single_fan(mesh: &SurfaceMesh, v: u32, tris: &[u32], sc: &mut FanScratch) -> bool {
    if tris.is_empty() {
        return true;
    }
    // Link edges (the side of each triangle opposite v).
    let link = &mut sc.link;
    link.clear();
    for &t in tris {
        let tri = mesh.triangles[t as usize];
        let mut others = tri.iter().copied().filter(|&x| x != v);
        match (others.next(), others.next(), others.next()) {
            (Some(a), Some(b), None) => link.push((a, b)),
            _ => return false, // v repeated in a triangle
        }
    }
    // Degrees of link vertices, and connectivity by walking.
    let nodes = &mut sc.nodes;
    nodes.clear();
    nodes.extend(link.iter().flat_map(|&(a, b)| [a, b]));
    nodes.sort_unstable();
    let mut ends = 0;
    let mut k = 0;
    while k < nodes.len() {
        let mut j = k;
        while j < nodes.len() && nodes[j] == nodes[k] {
            j += 1;
        }
        match j - k {
            1 => ends += 1,
            2 => {}
            _ => return false,
        }
        k = j;
    }
    if ends != 0 && ends != 2 {
        return false;
    }
    // A closed fan of two triangles is a doubled face (a zero-volume sheet), not a disc.
    if ends == 0 && link.len() < 3 {
        return false;
    }
    // Walk from one node along link edges; all edges must be reached.
    let seen = &mut sc.seen;
    seen.clear();
    seen.resize(link.len(), false);
    let stack = &mut sc.stack;
    stack.clear();
    stack.push(link[0].0);
    let mut reached = 0;
    while let Some(x) = stack.pop() {
        for (e, &(a, b)) in link.iter().enumerate() {
            if !seen[e] && (a == x || b == x) {
                seen[e] = true;
                reached += 1;
                stack.push(if a == x { b } else { a });
            }
        }
    }
    reached == link.len()
}

/// Number of intersecting triangle pairs that share no vertex.
pub fn count_self_intersections(mesh: &SurfaceMesh) -> usize {
    self_intersecting_pairs(mesh).len()
}

/// The intersecting triangle pairs `(t, u)`, `t < u`, that share no vertex.
pub fn self_intersecting_pairs(mesh: &SurfaceMesh) -> Vec<(u32, u32)> {
    let nt = mesh.triangles.len();
    if nt < 2 {
        return Vec::new();
    }
    let (lo, hi) = mesh.bounds();
    // Cell size: twice the mean edge length, enlarged if that would make too many cells.
    let mean_edge = (0..nt)
        .map(|t| {
            let [a, b, c] = mesh.corners(t);
            crate::norm(sub(b, a)) + crate::norm(sub(c, b)) + crate::norm(sub(a, c))
        })
        .sum::<f64>()
        / (3 * nt) as f64;
    let ext = sub(hi, lo);
    let mut h = (2.0 * mean_edge).max(1e-9);
    let cells = |h: f64| ext.map(|e| ((e / h).floor() as usize + 1).max(1));
    while cells(h).iter().product::<usize>() > 8 * nt + 64 {
        h *= 1.5;
    }
    let n = cells(h);
    let cell_of = |p: [f64; 3]| -> [usize; 3] {
        let mut c = [0; 3];
        for k in 0..3 {
            c[k] = (((p[k] - lo[k]) / h).floor().max(0.0) as usize).min(n[k] - 1);
        }
        c
    };
    let bbox = |t: usize| {
        let [a, b, c] = mesh.corners(t);
        let mut l = a;
        let mut u = a;
        for p in [b, c] {
            for k in 0..3 {
                l[k] = l[k].min(p[k]);
                u[k] = u[k].max(p[k]);
            }
        }
        (l, u)
    };
    let cell_ranges: Vec<([usize; 3], [usize; 3])> = (0..nt)
        .map(|t| {
            let (l, u) = bbox(t);
            (cell_of(l), cell_of(u))
        })
        .collect();
    let lin = |c: [usize; 3]| c[0] + n[0] * (c[1] + n[1] * c[2]);
    let ncells = n.iter().product::<usize>();
    let each_cell = |r: &([usize; 3], [usize; 3]), f: &mut dyn FnMut(usize)| {
        for z in r.0[2]..=r.1[2] {
            for y in r.0[1]..=r.1[1] {
                for x in r.0[0]..=r.1[0] {
                    f(lin([x, y, z]));
                }
            }
        }
    };
    // The triangles whose box reaches into each cell.
    let (start, items) = crate::compressed_rows(ncells, |push| {
        for (t, r) in cell_ranges.iter().enumerate() {
            each_cell(r, &mut |c| push(c as u32, t as u32));
        }
    });
    let boxes: Vec<_> = (0..nt).map(bbox).collect();
    (0..nt)
        .into_par_iter()
        .flat_map_iter(|t| {
            let rt = &cell_ranges[t];
            let tt = mesh.triangles[t];
            let (l1, u1) = boxes[t];
            // Hits are rare: this allocates only when there is one.
            let mut hits: Vec<(u32, u32)> = Vec::new();
            each_cell(rt, &mut |c| {
                for &u in &items[start[c] as usize..start[c + 1] as usize] {
                    if u as usize <= t {
                        continue;
                    }
                    // A pair meets in every cell the two triangles share: test it in the
                    // first of them only (no candidate list to sort and deduplicate).
                    let ru = &cell_ranges[u as usize];
                    if lin([0, 1, 2].map(|k| rt.0[k].max(ru.0[k]))) != c {
                        continue;
                    }
                    let (l2, u2) = boxes[u as usize];
                    if (0..3).any(|k| l1[k] > u2[k] || l2[k] > u1[k]) {
                        continue;
                    }
                    let uu = mesh.triangles[u as usize];
                    if uu.iter().any(|v| tt.contains(v)) {
                        continue;
                    }
                    if triangles_intersect(mesh.corners(t), mesh.corners(u as usize)) {
                        hits.push((t as u32, u));
                    }
                }
            });
            hits.sort_unstable();
            hits
        })
        .collect()
}

/// Vertices where the surface is not a closed oriented 2-manifold: on edges without exactly
/// two oppositely oriented triangles, with more than one fan, or on degenerate or
/// self-intersecting triangles (the last only when `self_intersections`).
pub fn defect_vertices(mesh: &SurfaceMesh, self_intersections: bool) -> Vec<u32> {
    let mut bad = Vec::new();
    let mut dir_edges: Vec<(u32, u32, bool)> = Vec::with_capacity(3 * mesh.triangles.len());
    for t in &mesh.triangles {
        for e in 0..3 {
            let (a, b) = (t[e], t[(e + 1) % 3]);
            dir_edges.push((a.min(b), a.max(b), a < b));
        }
    }
    dir_edges.par_sort_unstable();
    for g in dir_edges.chunk_by(|x, y| x.0 == y.0 && x.1 == y.1) {
        let fwd = g.iter().filter(|e| e.2).count();
        if g.len() != 2 || fwd != 1 {
            bad.extend([g[0].0, g[0].1]);
        }
    }
    let (start, incident) = triangles_around(mesh);
    let nv = mesh.vertices.len();
    let mut sc = FanScratch::default();
    for v in 0..nv {
        let tris = &incident[start[v] as usize..start[v + 1] as usize];
        if !single_fan(mesh, v as u32, tris, &mut sc) {
            bad.push(v as u32);
        }
    }
    for (t, tri) in mesh.triangles.iter().enumerate() {
        let [p, q, r] = mesh.corners(t);
        let n = cross(sub(q, p), sub(r, p));
        if tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2] || dot(n, n) == 0.0 {
            bad.extend(tri);
        }
    }
    if self_intersections {
        for (t, u) in self_intersecting_pairs(mesh) {
            bad.extend(mesh.triangles[t as usize]);
            bad.extend(mesh.triangles[u as usize]);
        }
    }
    bad.sort_unstable();
    bad.dedup();
    bad
}

#[inline]
fn orient(a: [f64; 3], b: [f64; 3], c: [f64; 3], d: [f64; 3]) -> f64 {
    dot(sub(b, a), cross(sub(c, a), sub(d, a)))
}

/// Whether two triangles intersect (touching counts), by testing each edge of one against
/// the other triangle; coplanar pairs are tested in 2D.
pub fn triangles_intersect(t1: [[f64; 3]; 3], t2: [[f64; 3]; 3]) -> bool {
    let scale = t1
        .iter()
        .chain(t2.iter())
        .flat_map(|p| sub(*p, t1[0]))
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(1e-300);
    let eps = 1e-12 * scale * scale * scale;
    let d: Vec<f64> = t1.iter().map(|&p| orient(t2[0], t2[1], t2[2], p)).collect();
    if d.iter().all(|x| *x > eps) || d.iter().all(|x| *x < -eps) {
        return false;
    }
    let e: Vec<f64> = t2.iter().map(|&p| orient(t1[0], t1[1], t1[2], p)).collect();
    if e.iter().all(|x| *x > eps) || e.iter().all(|x| *x < -eps) {
        return false;
    }
    if d.iter().all(|x| x.abs() <= eps) {
        return coplanar_intersect(t1, t2);
    }
    (0..3).any(|k| segment_hits_triangle(t1[k], t1[(k + 1) % 3], t2, eps))
        || (0..3).any(|k| segment_hits_triangle(t2[k], t2[(k + 1) % 3], t1, eps))
}

fn segment_hits_triangle(p: [f64; 3], q: [f64; 3], t: [[f64; 3]; 3], eps: f64) -> bool {
    let d1 = orient(t[0], t[1], t[2], p);
    let d2 = orient(t[0], t[1], t[2], q);
    if (d1 > eps && d2 > eps) || (d1 < -eps && d2 < -eps) {
        return false;
    }
    if d1.abs() <= eps && d2.abs() <= eps {
        return false; // in the plane: left to the other edges / coplanar test
    }
    let s = [
        orient(p, q, t[0], t[1]),
        orient(p, q, t[1], t[2]),
        orient(p, q, t[2], t[0]),
    ];
    s.iter().all(|x| *x >= -eps) || s.iter().all(|x| *x <= eps)
}

fn coplanar_intersect(t1: [[f64; 3]; 3], t2: [[f64; 3]; 3]) -> bool {
    let n = cross(sub(t1[1], t1[0]), sub(t1[2], t1[0]));
    let drop = (0..3)
        .max_by(|&a, &b| n[a].abs().total_cmp(&n[b].abs()))
        .unwrap();
    let (i, j) = ((drop + 1) % 3, (drop + 2) % 3);
    let p = |x: [f64; 3]| [x[i], x[j]];
    let a: Vec<[f64; 2]> = t1.iter().map(|&x| p(x)).collect();
    let b: Vec<[f64; 2]> = t2.iter().map(|&x| p(x)).collect();
    let o2 = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    };
    let scale = a
        .iter()
        .chain(b.iter())
        .flat_map(|q| [q[0] - a[0][0], q[1] - a[0][1]])
        .fold(0.0f64, |m, x| m.max(x.abs()));
    let eps = 1e-12 * scale * scale;
    let sgn = |x: f64| {
        if x > eps {
            1
        } else if x < -eps {
            -1
        } else {
            0
        }
    };
    let seg = |p1: [f64; 2], p2: [f64; 2], q1: [f64; 2], q2: [f64; 2]| {
        let d = [
            sgn(o2(q1, q2, p1)),
            sgn(o2(q1, q2, p2)),
            sgn(o2(p1, p2, q1)),
            sgn(o2(p1, p2, q2)),
        ];
        if d == [0; 4] {
            // Collinear: overlap of the projections on the segment's main axis.
            let ax = usize::from((p2[0] - p1[0]).abs() < (p2[1] - p1[1]).abs());
            let (a0, a1) = (p1[ax].min(p2[ax]), p1[ax].max(p2[ax]));
            let (b0, b1) = (q1[ax].min(q2[ax]), q1[ax].max(q2[ax]));
            return a0 <= b1 && b0 <= a1;
        }
        d[0] * d[1] <= 0 && d[2] * d[3] <= 0
    };
    let inside = |pt: [f64; 2], t: &[[f64; 2]]| {
        let s = [o2(t[0], t[1], pt), o2(t[1], t[2], pt), o2(t[2], t[0], pt)].map(sgn);
        s.iter().all(|x| *x >= 0) || s.iter().all(|x| *x <= 0)
    };
    (0..3).any(|k| (0..3).any(|l| seg(a[k], a[(k + 1) % 3], b[l], b[(l + 1) % 3])))
        || inside(a[0], &b)
        || inside(b[0], &a)
}
