//! Disc mesher: geometry against analytical values.

use spinetwin_fem::ElementKind as CellKind;
use spinetwin_model::disc::{cell_volume, mesh_disc, DiscMesh, DiscMeshParams};
use spinetwin_model::error::ModelError;
use spinetwin_segment::landmarks::Endplate;
use std::f64::consts::PI;

/// An elliptical endplate (semi-axes `rx` left-right, `ry` antero-posterior) in the plane
/// `z = h + tilt * (-y)` (taller anteriorly for `tilt > 0`), CCW seen from outside the bone.
fn ellipse(rx: f64, ry: f64, h: f64, tilt: f64, upper: bool, m: usize) -> Endplate {
    let z = |y: f64| h - tilt * y;
    let outline = (0..m)
        .map(|k| {
            let s = if upper { -1.0 } else { 1.0 };
            let phi = -PI / 2.0 + s * 2.0 * PI * k as f64 / m as f64;
            let (x, y) = (rx * phi.cos(), ry * phi.sin());
            [x, y, z(y)]
        })
        .collect();
    let n = (tilt * tilt + 1.0).sqrt();
    let normal = if upper {
        [0.0, -tilt / n, -1.0 / n]
    } else {
        [0.0, tilt / n, 1.0 / n]
    };
    Endplate {
        centre: [0.0, 0.0, h],
        normal,
        outline,
        area_mm2: PI * rx * ry,
    }
}

fn cells(d: &DiscMesh) -> Vec<(CellKind, Vec<usize>)> {
    (0..d.mesh.num_elements())
        .map(|e| (d.mesh.kinds[e], d.mesh.element_nodes(e).to_vec()))
        .collect()
}

fn disc(rx: f64, ry: f64, h: f64, p: &DiscMeshParams) -> DiscMesh {
    let up = ellipse(rx, ry, h, 0.0, true, 360);
    let lo = ellipse(rx, ry, 0.0, 0.0, false, 360);
    mesh_disc(&up, &lo, p).unwrap()
}

#[test]
fn cylinder_and_ellipse_volume_match_analytical() {
    let p = DiscMeshParams::default();
    let c = disc(20.0, 20.0, 10.0, &p);
    let exact = PI * 400.0 * 10.0;
    let err = (c.volume_mm3 - exact).abs() / exact;
    assert!(
        err < 0.01,
        "cylinder volume {} vs {exact} ({err:e})",
        c.volume_mm3
    );
    let e = disc(25.0, 17.0, 9.0, &p);
    let exact = PI * 25.0 * 17.0 * 9.0;
    let err = (e.volume_mm3 - exact).abs() / exact;
    assert!(
        err < 0.01,
        "ellipse volume {} vs {exact} ({err:e})",
        e.volume_mm3
    );
    // Sum of element volumes equals the disc area times the height exactly.
    assert!((e.volume_mm3 - e.disc_area_mm2 * 9.0).abs() < 1e-8 * e.volume_mm3);
    assert!((e.height_mm[0] - 9.0).abs() < 1e-12 && (e.height_mm[2] - 9.0).abs() < 1e-12);
}

#[test]
fn all_elements_positive_and_counts() {
    let p = DiscMeshParams::default();
    let d = disc(25.0, 17.0, 9.0, &p);
    let (nc, nr, nl) = (24, 6, 4);
    assert_eq!(cells(&d).len(), nc * nr * nl);
    assert_eq!(d.mesh.nodes.len(), (nl + 1) * (1 + nc * nr));
    let wedges = cells(&d).iter().filter(|c| c.0 == CellKind::Wedge6).count();
    assert_eq!(wedges, nc * nl);
    for (kind, c) in &cells(&d) {
        let x: Vec<_> = c.iter().map(|&n| d.mesh.nodes[n]).collect();
        let (v, min_det) = cell_volume(*kind, &x).unwrap();
        assert!(
            v > 0.0 && min_det > 0.0,
            "{kind:?} {c:?}: volume {v}, det {min_det}"
        );
        assert_eq!(c.len(), if *kind == CellKind::Hex8 { 8 } else { 6 });
    }
    assert_eq!(
        d.nucleus_elements.len() + d.annulus_elements.len(),
        cells(&d).len()
    );
    assert_eq!(d.annulus_elements.len(), nc * 4 * nl);
    assert_eq!(d.lamella.len(), d.annulus_elements.len());
    assert_eq!(*d.lamella.iter().max().unwrap(), 3);
}

#[test]
fn cell_volume_of_unit_cube_and_wedge() {
    let cube = [
        [0.0, 0.0, 0.0],
        [2.0, 0.0, 0.0],
        [2.0, 3.0, 0.0],
        [0.0, 3.0, 0.0],
        [0.0, 0.0, 4.0],
        [2.0, 0.0, 4.0],
        [2.0, 3.0, 4.0],
        [0.0, 3.0, 4.0],
    ];
    let (v, d) = cell_volume(CellKind::Hex8, &cube).unwrap();
    assert!((v - 24.0).abs() < 1e-12 && (d - 3.0).abs() < 1e-12);
    let wedge = [
        [0.0, 0.0, 0.0],
        [2.0, 0.0, 0.0],
        [0.0, 3.0, 0.0],
        [0.0, 0.0, 4.0],
        [2.0, 0.0, 4.0],
        [0.0, 3.0, 4.0],
    ];
    let (v, d) = cell_volume(CellKind::Wedge6, &wedge).unwrap();
    assert!((v - 12.0).abs() < 1e-12 && d > 0.0);
    let mut flipped = cube;
    flipped.swap(1, 3);
    flipped.swap(5, 7);
    assert!(cell_volume(CellKind::Hex8, &flipped).unwrap().1 < 0.0);
}

#[test]
fn nucleus_area_fraction() {
    for f in [0.3, 0.4, 0.5] {
        let p = DiscMeshParams {
            nucleus_area_fraction: f,
            ..Default::default()
        };
        let d = disc(25.0, 17.0, 9.0, &p);
        let r = d.nucleus_area_mm2 / d.disc_area_mm2;
        assert!((r - f).abs() < 1e-9, "nucleus fraction {r} vs {f}");
        let exact = f * PI * 25.0 * 17.0;
        assert!((d.nucleus_area_mm2 - exact).abs() < 0.01 * exact);
        // Nucleus volume share equals the area share in a straight disc.
        let cs = cells(&d);
        let vol = |es: &[usize]| -> f64 {
            es.iter()
                .map(|&e| {
                    let (k, c) = &cs[e];
                    let x: Vec<_> = c.iter().map(|&n| d.mesh.nodes[n]).collect();
                    cell_volume(*k, &x).unwrap().0
                })
                .sum()
        };
        assert!((vol(&d.nucleus_elements) / d.volume_mm3 - f).abs() < 1e-9);
    }
}

#[test]
fn fibres_unit_at_angle_alternating() {
    let p = DiscMeshParams {
        fibre_angle_deg: 28.0,
        ..Default::default()
    };
    let d = disc(25.0, 17.0, 9.0, &p);
    let cs = cells(&d);
    for (i, &e) in d.annulus_elements.iter().enumerate() {
        let c = &cs[e].1;
        let cen = c.iter().fold([0.0; 3], |s, &n| {
            [
                s[0] + d.mesh.nodes[n][0] / 8.0,
                s[1] + d.mesh.nodes[n][1] / 8.0,
                s[2] + d.mesh.nodes[n][2] / 8.0,
            ]
        });
        for (fam, f) in d.fibre_directions[i].iter().enumerate() {
            let n = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt();
            assert!((n - 1.0).abs() < 1e-12);
            let to_transverse = f[2].abs().asin().to_degrees();
            assert!((to_transverse - 28.0).abs() < 1e-9, "angle {to_transverse}");
            // In the circumferential-axial plane: no component along the outward normal of
            // the lamella; for an ellipse use the radial direction of the centroid only in
            // the sense that the fibre is nearly perpendicular to it (faceted rings).
            let r = [cen[0], cen[1], 0.0];
            let rn = (r[0] * r[0] + r[1] * r[1]).sqrt();
            let radial = (f[0] * r[0] + f[1] * r[1]) / rn;
            assert!(radial.abs() < 0.35, "fibre too radial: {radial}");
            // Family 0 goes up (+angle) on even lamellae, down on odd ones.
            if fam == 0 {
                let up = f[2] > 0.0;
                assert_eq!(up, d.lamella[i].is_multiple_of(2));
            }
        }
        let [a, b] = d.fibre_directions[i];
        assert!((a[2] + b[2]).abs() < 1e-12, "families are mirror images");
    }
    assert_eq!(d.fibre_directions.len(), d.annulus_elements.len());
    // Circular disc: the fibre is exactly in the circumferential-axial plane.
    let c = disc(20.0, 20.0, 10.0, &p);
    let cc = cells(&c);
    for (i, &e) in c.annulus_elements.iter().enumerate() {
        let cen = cc[e].1.iter().fold([0.0; 2], |s, &n| {
            [s[0] + c.mesh.nodes[n][0], s[1] + c.mesh.nodes[n][1]]
        });
        let rn = (cen[0] * cen[0] + cen[1] * cen[1]).sqrt();
        for f in c.fibre_directions[i] {
            let radial = (f[0] * cen[0] + f[1] * cen[1]) / rn;
            assert!(radial.abs() < 1e-12, "radial component {radial}");
        }
    }
}

#[test]
fn node_sets_on_endplates() {
    let tilt = (8.0f64).to_radians().tan();
    let up = ellipse(24.0, 16.0, 10.0, tilt, true, 200);
    let lo = ellipse(24.0, 16.0, 0.0, 0.0, false, 200);
    let d = mesh_disc(&up, &lo, &DiscMeshParams::default()).unwrap();
    assert_eq!(d.upper_nodes.len(), 1 + 24 * 6);
    assert_eq!(d.lower_nodes.len(), 1 + 24 * 6);
    for &n in &d.lower_nodes {
        assert!(d.mesh.nodes[n][2].abs() < 1e-12);
    }
    for &n in &d.upper_nodes {
        let p = d.mesh.nodes[n];
        assert!(
            (p[2] - (10.0 - tilt * p[1])).abs() < 1e-9,
            "upper node off plane: {p:?}"
        );
    }
    // No node is shared between the two surfaces and all others lie strictly between.
    for (i, p) in d.mesh.nodes.iter().enumerate() {
        if !d.upper_nodes.contains(&i) && !d.lower_nodes.contains(&i) {
            assert!(p[2] > 1e-9 && p[2] < 10.0 - tilt * p[1] - 1e-9);
        }
    }
}

#[test]
fn wedged_lordotic_disc() {
    let tilt = (10.0f64).to_radians().tan();
    let up = ellipse(24.0, 16.0, 10.0, tilt, true, 360);
    let lo = ellipse(24.0, 16.0, 0.0, 0.0, false, 360);
    let d = mesh_disc(&up, &lo, &DiscMeshParams::default()).unwrap();
    let [a, m, p] = d.height_mm;
    assert!(a > m && m > p, "heights {:?}", d.height_mm);
    // Along the (5 deg tilted) axis the heights are close to the vertical 10 +- 16 tan 10.
    assert!((a - (10.0 + 16.0 * tilt)).abs() < 0.3, "anterior {a}");
    assert!((p - (10.0 - 16.0 * tilt)).abs() < 0.3, "posterior {p}");
    let exact = PI * 24.0 * 16.0 * 10.0; // the tilt averages out over the symmetric outline
    assert!(
        (d.volume_mm3 - exact).abs() < 0.02 * exact,
        "{} vs {exact}",
        d.volume_mm3
    );
    for (k, c) in &cells(&d) {
        let x: Vec<_> = c.iter().map(|&n| d.mesh.nodes[n]).collect();
        assert!(cell_volume(*k, &x).unwrap().1 > 0.0);
    }
    assert!(d.axis[1] > 0.0 && d.axis[2] > 0.99);
}

#[test]
fn density_scaling() {
    let coarse = DiscMeshParams {
        n_circ: 12,
        n_radial_annulus: 2,
        n_radial_nucleus: 1,
        n_layers: 2,
        ..Default::default()
    };
    let fine = DiscMeshParams {
        n_circ: 48,
        n_radial_annulus: 8,
        n_radial_nucleus: 4,
        n_layers: 8,
        ..Default::default()
    };
    let c = disc(25.0, 17.0, 9.0, &coarse);
    let f = disc(25.0, 17.0, 9.0, &fine);
    assert_eq!(cells(&c).len(), 12 * 3 * 2);
    assert_eq!(cells(&f).len(), 64 * cells(&c).len());
    // Area-preserving rims: the volume does not depend on the density.
    let exact = PI * 25.0 * 17.0 * 9.0;
    for d in [&c, &f] {
        assert!(
            (d.volume_mm3 - exact).abs() < 1e-3 * exact,
            "{}",
            d.volume_mm3
        );
    }
}

#[test]
fn bad_input_is_an_error() {
    let p = DiscMeshParams::default();
    let lo = ellipse(20.0, 15.0, 0.0, 0.0, false, 64);
    let geom = |r: Result<DiscMesh, ModelError>| {
        assert!(matches!(r, Err(ModelError::InvalidGeometry(_))), "{r:?}");
    };
    // Too few points.
    geom(mesh_disc(&ellipse(20.0, 15.0, 8.0, 0.0, true, 5), &lo, &p));
    // Upper endplate below the lower one: the endplates cross.
    geom(mesh_disc(
        &ellipse(20.0, 15.0, -3.0, 0.0, true, 64),
        &lo,
        &p,
    ));
    // A tilt that makes the endplates cross posteriorly.
    let steep = (40.0f64).to_radians().tan();
    geom(mesh_disc(
        &ellipse(20.0, 15.0, 5.0, steep, true, 64),
        &lo,
        &p,
    ));
    // Self-crossing outline.
    let mut bow = ellipse(20.0, 15.0, 8.0, 0.0, true, 64);
    bow.outline.swap(10, 40);
    geom(mesh_disc(&bow, &lo, &p));
    // Not star-shaped about the centre (a deep notch crossing the centre's rays twice).
    let mut notch = ellipse(20.0, 15.0, 8.0, 0.0, true, 64);
    notch.outline[32] = [0.0, -3.0, 8.0];
    notch.outline[31] = [6.0, 25.0, 8.0];
    assert!(mesh_disc(&notch, &lo, &p).is_err());
    // Normals not facing each other.
    let mut flip = ellipse(20.0, 15.0, 8.0, 0.0, true, 64);
    flip.normal = [0.0, 0.0, 1.0];
    geom(mesh_disc(&flip, &lo, &p));
    // Non-finite.
    let mut nan = ellipse(20.0, 15.0, 8.0, 0.0, true, 64);
    nan.outline[3][0] = f64::NAN;
    geom(mesh_disc(&nan, &lo, &p));
    // Parameters.
    let up = ellipse(20.0, 15.0, 8.0, 0.0, true, 64);
    for bad in [
        DiscMeshParams {
            nucleus_area_fraction: 0.6,
            ..Default::default()
        },
        DiscMeshParams {
            n_circ: 4,
            ..Default::default()
        },
        DiscMeshParams {
            n_layers: 0,
            ..Default::default()
        },
        DiscMeshParams {
            fibre_angle_deg: f64::NAN,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            mesh_disc(&up, &lo, &bad),
            Err(ModelError::InvalidInput(_))
        ));
    }
}

#[test]
fn a_posterior_nucleus_shift_translates_the_nucleus_and_keeps_the_rim_and_areas() {
    let base = DiscMeshParams::default();
    let shifted = DiscMeshParams {
        nucleus_posterior_shift: 0.5,
        ..Default::default()
    };
    let a = disc(25.0, 17.0, 9.0, &base);
    let b = disc(25.0, 17.0, 9.0, &shifted);
    assert_eq!(a.mesh.nodes.len(), b.mesh.nodes.len());
    // The outline starts at the anterior midline (-y in LPS): posterior is +y. The shift is
    // half the anterior annulus width, (1 - sqrt(0.4)) x 17 mm (within 1 %: the resampled rim
    // is scaled slightly to keep the outline's area). All nucleus nodes move together.
    let expect = 0.5 * (1.0 - 0.4f64.sqrt()) * 17.0;
    let first = b.nucleus_elements[0];
    let n0 = b.mesh.element_nodes(first)[0];
    let shift = b.mesh.nodes[n0][1] - a.mesh.nodes[n0][1];
    assert!(
        (shift - expect).abs() < 0.01 * expect,
        "shift {shift} vs {expect}"
    );
    let nucleus_nodes: std::collections::BTreeSet<usize> = b
        .nucleus_elements
        .iter()
        .flat_map(|&e| b.mesh.element_nodes(e).to_vec())
        .collect();
    for &n in &nucleus_nodes {
        let d: Vec<f64> = (0..3)
            .map(|i| b.mesh.nodes[n][i] - a.mesh.nodes[n][i])
            .collect();
        assert!(
            d[0].abs() < 1e-9 && (d[1] - shift).abs() < 1e-9 && d[2].abs() < 1e-9,
            "node {n} moved by {d:?}, expected [0, {shift}, 0]"
        );
    }
    for &n in a.upper_nodes.iter().chain(&a.lower_nodes) {
        let r = (a.mesh.nodes[n][0] / 25.0).powi(2) + (a.mesh.nodes[n][1] / 17.0).powi(2);
        if (r - 1.0).abs() < 1e-3 {
            assert_eq!(a.mesh.nodes[n], b.mesh.nodes[n], "rim node {n} moved");
        }
    }
    assert!((a.nucleus_area_mm2 - b.nucleus_area_mm2).abs() < 1e-6 * a.nucleus_area_mm2);
    assert!((a.volume_mm3 - b.volume_mm3).abs() < 1e-6 * a.volume_mm3);
    // Out of range is an error naming the parameter.
    let bad = DiscMeshParams {
        nucleus_posterior_shift: 0.9,
        ..Default::default()
    };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("nucleus_posterior_shift"), "{e}");
}

/// A wedged disc (17 deg between the endplates) whose upper outline sits 5 mm behind the
/// lower one, as coarse voxels and a wedged vertebra can give: lofting each outline to the
/// other inverts elements at the thin posterior rim, so the mesher lofts along the disc
/// axis from the mean outline projected onto each endplate plane. Without the offset the
/// outlines are lofted to each other as usual.
#[test]
fn offset_wedged_endplates_are_meshed_along_the_axis() {
    let (h, tilt) = (6.0, 0.3);
    let wedge = |dy: f64| {
        let mut up = ellipse(22.0, 15.0, h, tilt, true, 360);
        for p in up.outline.iter_mut().chain(std::iter::once(&mut up.centre)) {
            p[1] += dy;
            p[2] -= tilt * dy;
        }
        (up, ellipse(20.0, 15.0, 0.0, 0.0, false, 360))
    };
    let (up, lo) = wedge(0.0);
    assert!(
        !mesh_disc(&up, &lo, &DiscMeshParams::default())
            .unwrap()
            .lofted_along_axis
    );
    let (up, lo) = wedge(5.0);
    let d = mesh_disc(&up, &lo, &DiscMeshParams::default()).unwrap();
    assert!(d.lofted_along_axis);
    for (kind, c) in cells(&d) {
        let x: Vec<[f64; 3]> = c.iter().map(|&n| d.mesh.nodes[n]).collect();
        let (vol, min_det) = cell_volume(kind, &x).unwrap();
        assert!(vol > 0.0 && min_det > 0.0, "{vol} {min_det}");
    }
    // Nodes on the endplate planes, edges through the height along the axis.
    let on_plane = |ep: &Endplate, p: [f64; 3]| -> f64 {
        (0..3)
            .map(|i| (p[i] - ep.centre[i]) * ep.normal[i])
            .sum::<f64>()
    };
    for (&u, &l) in d.upper_nodes.iter().zip(&d.lower_nodes) {
        let (pu, pl) = (d.mesh.nodes[u], d.mesh.nodes[l]);
        assert!(on_plane(&up, pu).abs() < 1e-9 && on_plane(&lo, pl).abs() < 1e-9);
        let e: Vec<f64> = (0..3).map(|i| pu[i] - pl[i]).collect();
        let along: f64 = (0..3).map(|i| e[i] * d.axis[i]).sum();
        let len = e.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(along > 0.0 && (along - len).abs() < 1e-9 * len, "{e:?}");
    }
}
