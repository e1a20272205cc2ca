//! Extraction, smoothing, decimation and checks on masks with known answers.

use nalgebra::{Matrix3, Rotation3, Vector3};
use spinetwin_imaging::{Grid, Volume};
use spinetwin_mesh::{
    check, decimate, extract_label, extract_mask, taubin, MeshReport, SurfaceMesh, TaubinParams,
};
use std::f64::consts::PI;

/// Label 1 where `inside(world point)` holds, on `grid`.
fn mask_volume(grid: Grid, inside: impl Fn(Vector3<f64>) -> bool + Sync) -> Volume<u16> {
    let g = grid.clone();
    Volume::from_fn(grid, move |i, j, k| {
        let p = g.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
        u16::from(inside(p))
    })
}

fn voxel_volume(v: &Volume<u16>) -> f64 {
    v.data().iter().filter(|&&x| x == 1).count() as f64 * v.grid().voxel_volume()
}

fn cube_grid(n: usize, h: f64) -> Grid {
    Grid::axis_aligned([n; 3], [h; 3], Vector3::zeros()).unwrap()
}

fn assert_solid(r: &MeshReport, components: usize, genus: i64) {
    assert!(r.closed, "{r:?}");
    assert!(r.manifold, "{r:?}");
    assert!(r.oriented, "{r:?}");
    assert_eq!(r.components, components, "{r:?}");
    assert_eq!(r.genus, Some(genus), "{r:?}");
    assert_eq!(r.degenerate_triangles, 0, "{r:?}");
    assert!(
        r.volume > 0.0,
        "outward orientation gives a positive volume: {r:?}"
    );
}

fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

/// RMS of (distance to `c`) - `r` over the vertices.
fn rms_radius_error(m: &SurfaceMesh, c: Vector3<f64>, r: f64) -> f64 {
    let s: f64 = m
        .vertices
        .iter()
        .map(|p| ((Vector3::from(*p) - c).norm() - r).powi(2))
        .sum();
    (s / m.vertices.len() as f64).sqrt()
}

#[test]
fn sphere_is_a_closed_oriented_genus_0_surface_and_smoothing_does_not_shrink_it() {
    let c = Vector3::new(20.3, 19.8, 20.1);
    let r = 12.0;
    let vol = mask_volume(cube_grid(41, 1.0), |p| (p - c).norm() <= r);
    let vox = voxel_volume(&vol);
    let mut m = extract_label(&vol, 1).unwrap();
    let raw = check(&m, true);
    assert_solid(&raw, 1, 0);
    assert_eq!(raw.euler_characteristic, 2);
    assert_eq!(raw.self_intersections, Some(0));
    assert!(
        rel(raw.volume, vox) < 0.02,
        "raw {} vs voxels {vox}",
        raw.volume
    );
    let rms_raw = rms_radius_error(&m, c, r);

    taubin(&mut m, &TaubinParams::default());
    let s = check(&m, true);
    assert_solid(&s, 1, 0);
    assert_eq!(s.self_intersections, Some(0));
    let change = rel(s.volume, raw.volume);
    let rms = rms_radius_error(&m, c, r);
    println!(
        "sphere r=12 vox: {} triangles, voxel {vox:.0}, raw {:.0}, smoothed {:.0} ({:.3} %), \
         analytic {:.0}; rms radius error {rms_raw:.3} -> {rms:.3} mm",
        s.triangles,
        raw.volume,
        s.volume,
        100.0 * change,
        4.0 / 3.0 * PI * r.powi(3)
    );
    assert!(
        change < 0.01,
        "Taubin changed the volume by {:.2} %",
        100.0 * change
    );
    assert!(rel(s.volume, vox) < 0.02);
    assert!(
        rms < 0.8 * rms_raw,
        "smoothing brings the surface closer to the sphere"
    );

    // Plain Laplacian smoothing (mu = 0) would shrink it: the test can tell the difference.
    let mut lap = extract_label(&vol, 1).unwrap();
    taubin(
        &mut lap,
        &TaubinParams {
            lambda: 0.5,
            mu: 0.0,
            iterations: 20,
        },
    );
    assert!(rel(lap.volume(), raw.volume) > 2.0 * change.max(0.001));
}

#[test]
fn fine_sphere_volume_matches_the_analytic_volume() {
    let c = Vector3::new(12.1, 11.9, 12.05);
    let r = 10.0;
    let vol = mask_volume(cube_grid(49, 0.5), |p| (p - c).norm() <= r);
    let mut m = extract_label(&vol, 1).unwrap();
    taubin(&mut m, &TaubinParams::default());
    let rep = check(&m, false);
    assert_solid(&rep, 1, 0);
    let exact = 4.0 / 3.0 * PI * r.powi(3);
    println!("fine sphere: mesh {:.1}, exact {exact:.1}", rep.volume);
    assert!(rel(rep.volume, exact) < 0.02);
    assert!(rel(rep.volume, voxel_volume(&vol)) < 0.02);
}

#[test]
fn torus_has_genus_1() {
    let c = Vector3::new(25.2, 24.9, 15.1);
    let (big, small) = (14.0, 5.0);
    let grid = Grid::axis_aligned([51, 51, 31], [1.0; 3], Vector3::zeros()).unwrap();
    let vol = mask_volume(grid, |p| {
        let d = p - c;
        let q = (d.x * d.x + d.y * d.y).sqrt() - big;
        q * q + d.z * d.z <= small * small
    });
    let mut m = extract_label(&vol, 1).unwrap();
    taubin(&mut m, &TaubinParams::default());
    let r = check(&m, true);
    assert_solid(&r, 1, 1);
    assert_eq!(r.euler_characteristic, 0);
    assert_eq!(r.self_intersections, Some(0));
    let vox = voxel_volume(&vol);
    println!("torus: mesh {:.0}, voxels {vox:.0}", r.volume);
    assert!(rel(r.volume, vox) < 0.02);
    assert!(rel(r.volume, 2.0 * PI * PI * big * small * small) < 0.03);
}

#[test]
fn anisotropic_oblique_grid_gives_patient_mm() {
    let rot = Rotation3::from_euler_angles(0.3, -0.5, 0.7);
    let c = Vector3::new(-40.0, 120.0, 700.0);
    let r = 11.0;
    for reflect in [false, true] {
        let mut dir: Matrix3<f64> = *rot.matrix();
        if reflect {
            dir.set_column(2, &(-dir.column(2).into_owned()));
        }
        let spacing = [0.7, 0.9, 1.6];
        let dims = [44, 36, 22];
        // Origin so that the sphere sits in the middle of the grid.
        let mid = Vector3::new(
            dims[0] as f64 * spacing[0] / 2.0,
            dims[1] as f64 * spacing[1] / 2.0,
            dims[2] as f64 * spacing[2] / 2.0,
        );
        let origin = c - dir * mid;
        let grid = Grid::new(dims, spacing, origin, dir).unwrap();
        let vol = mask_volume(grid, |p| (p - c).norm() <= r);
        let vox = voxel_volume(&vol);
        let mut m = extract_label(&vol, 1).unwrap();
        taubin(&mut m, &TaubinParams::default());
        let rep = check(&m, true);
        assert_solid(&rep, 1, 0);
        assert_eq!(rep.self_intersections, Some(0));
        let mean_r = m
            .vertices
            .iter()
            .map(|p| (Vector3::from(*p) - c).norm())
            .sum::<f64>()
            / m.vertices.len() as f64;
        println!(
            "oblique (reflect {reflect}): mesh {:.0}, voxels {vox:.0}, exact {:.0}, mean radius {mean_r:.2}",
            rep.volume,
            4.0 / 3.0 * PI * r.powi(3)
        );
        assert!(rel(rep.volume, vox) < 0.02);
        assert!(rel(rep.volume, 4.0 / 3.0 * PI * r.powi(3)) < 0.04);
        assert!(
            (mean_r - r).abs() < 0.5,
            "vertices are in patient mm around the centre"
        );
    }
}

#[test]
fn structures_touching_the_border_close_and_components_are_counted() {
    // A slab filling the whole grid in x and y, and a separate blob: two closed shells.
    let vol = mask_volume(cube_grid(20, 1.0), |p| {
        p.z <= 3.0 || (p - Vector3::new(10.0, 10.0, 14.0)).norm() <= 3.5
    });
    let m = extract_label(&vol, 1).unwrap();
    let r = check(&m, true);
    assert_solid(&r, 2, 0);
    assert!(rel(r.volume, voxel_volume(&vol)) < 0.02, "{r:?}");
    // The slab is a box of 20 x 20 x 4 voxels: its faces lie on the voxel boundaries.
    assert_eq!(r.self_intersections, Some(0));
}

#[test]
fn diagonal_contacts_stay_manifold() {
    // Voxels meeting only along edges and at corners: where marching cubes and surface nets
    // make non-manifold edges and vertices.
    let grid = cube_grid(8, 1.0);
    let mut mask = vec![false; grid.len()];
    for (i, j, k) in [
        (2, 2, 2),
        (3, 3, 2),
        (4, 2, 3),
        (3, 3, 3),
        (2, 4, 4),
        (5, 5, 5),
        (4, 4, 4),
        (1, 1, 1),
        (6, 1, 1),
        (5, 2, 2),
    ] {
        mask[grid.linear(i, j, k)] = true;
    }
    let m = extract_mask(&grid, &mask).unwrap();
    let r = check(&m, true);
    assert!(r.closed && r.manifold && r.oriented, "{r:?}");
    assert_eq!(r.self_intersections, Some(0));
    assert!(r.volume > 0.0);
    // Random masks: always closed, manifold, oriented.
    let mut state = 12345u64;
    for _ in 0..5 {
        let mask: Vec<bool> = (0..grid.len())
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33).is_multiple_of(3)
            })
            .collect();
        let m = extract_mask(&grid, &mask).unwrap();
        let r = check(&m, true);
        assert!(
            r.closed && r.manifold && r.oriented && r.volume > 0.0,
            "{r:?}"
        );
        assert_eq!(r.self_intersections, Some(0));
        assert_eq!(r.degenerate_triangles, 0);
    }
}

#[test]
fn decimation_reaches_the_target_and_keeps_a_closed_manifold() {
    let c = Vector3::new(20.3, 19.8, 20.1);
    let vol = mask_volume(cube_grid(41, 1.0), |p| (p - c).norm() <= 15.0);
    let mut m = extract_label(&vol, 1).unwrap();
    taubin(&mut m, &TaubinParams::default());
    let before = check(&m, false);
    for target in [8000, 2000, 500] {
        let d = decimate(&m, target);
        let r = check(&d.mesh, true);
        println!(
            "decimate {} -> {} (target {target}, {} attempt(s)), volume {:.3} %",
            before.triangles,
            r.triangles,
            d.attempts,
            100.0 * (r.volume / before.volume - 1.0)
        );
        assert!(
            (r.triangles as f64 - target as f64).abs() <= 0.1 * target as f64,
            "{} triangles for a target of {target}",
            r.triangles
        );
        assert_solid(&r, 1, 0);
        assert_eq!(r.self_intersections, Some(0));
        assert!(rel(r.volume, before.volume) < 0.02);
    }
}

#[test]
fn self_intersection_detector_finds_a_planted_intersection() {
    let c = Vector3::new(10.0, 10.0, 10.0);
    let vol = mask_volume(cube_grid(21, 1.0), |p| (p - c).norm() <= 6.0);
    let mut m = extract_label(&vol, 1).unwrap();
    taubin(&mut m, &TaubinParams::default());
    assert_eq!(check(&m, true).self_intersections, Some(0));
    // A triangle from the centre out through the surface.
    let n = m.vertices.len() as u32;
    m.vertices
        .extend([[10.0, 10.0, 10.0], [20.0, 10.5, 10.2], [20.0, 9.5, 9.8]]);
    m.triangles.push([n, n + 1, n + 2]);
    let found = check(&m, true).self_intersections.unwrap();
    assert!(found >= 1, "planted intersection missed");
    // Pushing one vertex of the surface through the opposite side.
    let mut m2 = extract_label(&vol, 1).unwrap();
    taubin(&mut m2, &TaubinParams::default());
    let top = (0..m2.vertices.len())
        .max_by(|&a, &b| m2.vertices[a][2].total_cmp(&m2.vertices[b][2]))
        .unwrap();
    m2.vertices[top][2] -= 20.0;
    assert!(check(&m2, true).self_intersections.unwrap() >= 1);
}

/// The grid search finds exactly the pairs a test of every pair finds, each once: two
/// spheres' surfaces pushed into each other (a ring of crossing triangles), plus a vertex
/// dragged through the far side.
#[test]
fn self_intersecting_pairs_match_a_test_of_every_pair() {
    use spinetwin_mesh::check::{self_intersecting_pairs, triangles_intersect};
    let ball = |c: Vector3<f64>| {
        let vol = mask_volume(cube_grid(17, 1.0), move |p| (p - c).norm() <= 5.0);
        let mut m = extract_label(&vol, 1).unwrap();
        taubin(&mut m, &TaubinParams::default());
        m
    };
    let mut m = ball(Vector3::new(8.0, 8.0, 8.0));
    let other = ball(Vector3::new(8.0, 8.0, 8.0));
    let n = m.vertices.len() as u32;
    m.vertices.extend(
        other
            .vertices
            .iter()
            .map(|p| [p[0] + 6.0, p[1] + 0.3, p[2] - 0.2]),
    );
    m.triangles
        .extend(other.triangles.iter().map(|t| t.map(|v| v + n)));
    let top = (0..n as usize)
        .max_by(|&a, &b| m.vertices[a][2].total_cmp(&m.vertices[b][2]))
        .unwrap();
    m.vertices[top][2] -= 9.0;
    let fast = self_intersecting_pairs(&m);
    let nt = m.triangles.len();
    let mut slow = Vec::new();
    for t in 0..nt {
        for u in t + 1..nt {
            let (a, b) = (m.triangles[t], m.triangles[u]);
            if b.iter().any(|v| a.contains(v)) {
                continue;
            }
            if triangles_intersect(m.corners(t), m.corners(u)) {
                slow.push((t as u32, u as u32));
            }
        }
    }
    assert!(
        slow.len() > 20,
        "{} crossing pairs: the test needs more",
        slow.len()
    );
    assert_eq!(fast, slow);
}

#[test]
fn triangle_pair_test() {
    use spinetwin_mesh::check::triangles_intersect;
    let a = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    // Piercing.
    assert!(triangles_intersect(
        a,
        [[0.2, 0.2, -1.0], [0.3, 0.2, 1.0], [0.2, 0.3, 1.0]]
    ));
    // Above, apart.
    assert!(!triangles_intersect(
        a,
        [[0.2, 0.2, 0.1], [0.3, 0.2, 1.0], [0.2, 0.3, 1.0]]
    ));
    // Crossing the plane outside the triangle.
    assert!(!triangles_intersect(
        a,
        [[2.0, 2.0, -1.0], [2.1, 2.0, 1.0], [2.0, 2.1, 1.0]]
    ));
    // Coplanar overlap and coplanar apart.
    assert!(triangles_intersect(
        a,
        [[0.5, 0.5, 0.0], [-0.5, 0.2, 0.0], [0.2, -0.5, 0.0]]
    ));
    assert!(!triangles_intersect(
        a,
        [[2.0, 2.0, 0.0], [3.0, 2.0, 0.0], [2.0, 3.0, 0.0]]
    ));
}
