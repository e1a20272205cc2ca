//! The phantom's L3 through the whole chain: extraction, smoothing, decimation, checks.

use spinetwin_mesh::{surface_of_label, SurfaceOptions};
use spinetwin_phantom::{generate, PhantomSpec};

#[test]
fn phantom_l3_surface_is_a_valid_solid_with_the_voxel_volume() {
    let ph = generate(&PhantomSpec::default()).unwrap();
    let l3 = 22; // VerSe label of L3
    let s = surface_of_label(&ph.labels, l3, &SurfaceOptions::default()).unwrap();
    let r = &s.report;
    println!(
        "L3: {} extracted -> {} triangles, {} components, genus {:?}, volume {:.0} mm^3 vs \
         voxels {:.0} ({:+.2} %), self-intersections {:?}, times {:?} s",
        s.extracted_triangles,
        r.triangles,
        r.components,
        r.genus,
        r.volume,
        s.voxel_volume,
        s.volume_error_percent(),
        r.self_intersections,
        s.seconds
    );
    assert!(r.closed && r.manifold && r.oriented, "{r:?}");
    assert_eq!(r.self_intersections, Some(0), "{r:?}");
    assert!(s.volume_error_percent().abs() < 2.0, "{r:?}");
    assert!((r.triangles as f64 - 20_000.0).abs() <= 2_000.0, "{r:?}");
}

#[test]
fn coarse_phantom_decimates_to_the_target_without_breaking_topology() {
    // At 2 mm the sacrum's thin parts make meshoptimizer pinch sheets together at 1500
    // triangles; locking the defects and redoing keeps it a valid solid at the target.
    let ph = generate(&PhantomSpec {
        spacing_mm: 2.0,
        ..Default::default()
    })
    .unwrap();
    let mut m = spinetwin_mesh::extract_label(&ph.labels, 26).unwrap();
    spinetwin_mesh::taubin(&mut m, &Default::default());
    let d = spinetwin_mesh::decimate(&m, 1500);
    let r = spinetwin_mesh::check(&d.mesh, true);
    println!(
        "sacrum 2 mm: {} -> {} triangles in {} attempt(s), {} vertices locked",
        m.triangles.len(),
        r.triangles,
        d.attempts,
        d.locked_vertices
    );
    assert!(r.is_valid_solid() && r.degenerate_triangles == 0, "{r:?}");
    assert!((r.triangles as f64 - 1500.0).abs() <= 150.0, "{r:?}");
    assert!((r.volume / m.volume() - 1.0).abs() < 0.02, "{r:?}");
}
