//! Diagnostic: articular surfaces extracted from a phantom against its truth, per facet.
//!
//! `cargo run --release -p spinetwin-segment --example facet_check -- [spacing] [ref|seg] [lordosis] [cobb]`
//!
//! Prints, per vertebra and side, the centre error (mm), the angle of the surface normal to
//! the truth (superior facets: the truth normal; inferior facets: minus the truth normal of
//! the same joint), the point count, the extent of the points along the world axes and the
//! coherence of the per-point normals (norm of their mean; 1 for a flat patch).
//! DUMP=1 prints ASCII slices and HU profiles across the left L4-L5 joint; VALLEY=1 (with
//! BRIGHT=HU) how many bridged joint-space voxels and bone voxels look like a HU valley.

use nalgebra::Vector3;
use spinetwin_phantom::{generate, PhantomSpec};
use spinetwin_segment::landmarks::{landmarks, ArticularSurface};
use spinetwin_segment::{segment, SegmentOptions};

type V3 = Vector3<f64>;
/// One facet to score: name, extracted surface, truth centre, truth normal.
type Row<'a> = (
    &'static str,
    &'a Option<ArticularSurface>,
    Option<[f64; 3]>,
    Option<[f64; 3]>,
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let spec = PhantomSpec {
        spacing_mm: num(1, 1.0),
        lordosis_deg: num(3, 45.0),
        scoliosis_cobb_deg: num(4, 0.0),
        ..PhantomSpec::default()
    };
    let ph = generate(&spec)?;
    let labels = if args.get(2).map(String::as_str) == Some("seg") {
        segment(&ph.ct, &SegmentOptions::default())?.labels
    } else {
        ph.labels.clone()
    };
    if std::env::var("DUMP").is_ok() {
        let l5 = ph
            .truth
            .vertebrae
            .iter()
            .find(|v| v.level == "L5")
            .expect("L5");
        dump(&ph.ct, &labels, l5.facets.superior_left);
        let n = V3::from(l5.facets.superior_normals[0]);
        let c = V3::from(l5.facets.superior_left) + n * 0.5;
        for dz in [-4.0, 0.0, 4.0] {
            let mut row = format!("profile dz {dz}:");
            for t in -8..=8 {
                let p = c + n * (t as f64 * 0.5) + V3::z() * dz;
                let hu = ph.ct.sample_trilinear(p).unwrap_or(f64::NAN);
                let l = labels.sample_nearest(p).unwrap_or(0);
                row += &format!(" {hu:.0}/{l}");
            }
            println!("{row}");
        }
    }
    if std::env::var("VALLEY").is_ok() {
        valley_stats(&ph.ct, &ph.labels);
    }
    let t = std::time::Instant::now();
    let lm = landmarks(&ph.ct, &labels)?;
    println!("landmarks in {:.2} s", t.elapsed().as_secs_f64());
    for v in &lm.vertebrae {
        for w in &v.warnings {
            println!("{} warning: {w}", v.level);
        }
    }
    let tv = &ph.truth.vertebrae;
    let (mut worst_n, mut worst_c) = (0.0f64, 0.0f64);
    for (k, t) in tv.iter().enumerate() {
        let Some(l) = lm.vertebrae.iter().find(|l| l.level.name() == t.level) else {
            println!("{} missing", t.level);
            continue;
        };
        let below = tv.get(k + 1);
        let f = &t.facets;
        let rows: [Row; 4] = [
            (
                "sup L",
                &l.superior_facets.left,
                Some(f.superior_left),
                Some(f.superior_normals[0]),
            ),
            (
                "sup R",
                &l.superior_facets.right,
                Some(f.superior_right),
                Some(f.superior_normals[1]),
            ),
            (
                "inf L",
                &l.inferior_facets.left,
                f.inferior_left,
                below.map(|b| (-V3::from(b.facets.superior_normals[0])).into()),
            ),
            (
                "inf R",
                &l.inferior_facets.right,
                f.inferior_right,
                below.map(|b| (-V3::from(b.facets.superior_normals[1])).into()),
            ),
        ];
        for (name, a, c, n) in rows {
            let Some(a) = a else {
                if c.is_some() {
                    println!("{:<4} {name} MISSING", t.level);
                }
                continue;
            };
            let pts: Vec<V3> = a.points.iter().map(|p| V3::from(*p)).collect();
            let ext: Vec<f64> = (0..3)
                .map(|i| {
                    let (lo, hi) = pts
                        .iter()
                        .fold((f64::MAX, f64::MIN), |m, p| (m.0.min(p[i]), m.1.max(p[i])));
                    hi - lo
                })
                .collect();
            let mn = a.normals.iter().fold(V3::zeros(), |s, n| s + V3::from(*n))
                / a.normals.len().max(1) as f64;
            let dc = c.map_or(V3::repeat(f64::NAN), |c| V3::from(a.centre) - V3::from(c));
            let ce = c.map(|_| dc.norm());
            let ne = n.map(|n| {
                V3::from(a.normal)
                    .normalize()
                    .dot(&V3::from(n).normalize())
                    .clamp(-1.0, 1.0)
                    .acos()
                    .to_degrees()
            });
            worst_c = worst_c.max(ce.unwrap_or(0.0));
            worst_n = worst_n.max(ne.unwrap_or(0.0));
            println!(
                "{:<4} {name} centre err {:>5.2} normal err {:>6.2} n {:>4} ext [{:.0} {:.0} {:.0}] coh {:.2} area {:.0} normal [{:.2} {:.2} {:.2}] centre - truth [{:.1} {:.1} {:.1}]",
                t.level,
                ce.unwrap_or(f64::NAN),
                ne.unwrap_or(f64::NAN),
                pts.len(),
                ext[0],
                ext[1],
                ext[2],
                mn.norm(),
                a.area_mm2,
                a.normal[0],
                a.normal[1],
                a.normal[2],
                dc[0],
                dc[1],
                dc[2],
            );
        }
    }
    println!("worst centre {worst_c:.2} mm, worst normal {worst_n:.2} deg");
    Ok(())
}

/// ASCII slices around the left L4/L5 joint (env DUMP=1): axial slices, `a` = L4, `b` = L5,
/// lower case where the CT is below 200 HU, `#` other label, `+` unlabelled bone-ish CT.
#[allow(dead_code)]
const VALLEY: f32 = 60.0;
pub fn dump(
    ct: &spinetwin_imaging::Volume<f32>,
    labels: &spinetwin_imaging::Volume<u16>,
    c: [f64; 3],
) {
    let g = labels.grid();
    let ci = g.world_to_index(V3::from(c));
    let [nx, ny, nz] = labels.dims();
    for dk in [-6i64, -3, 0, 3, 6] {
        let k = (ci.z.round() as i64 + dk).clamp(0, nz as i64 - 1) as usize;
        println!("axial k {k} (dz {dk})");
        for j in (ci.y.round() as i64 - 12)..=(ci.y.round() as i64 + 12) {
            let mut row = String::new();
            for i in (ci.x.round() as i64 - 15)..=(ci.x.round() as i64 + 15) {
                if i < 0 || j < 0 || i >= nx as i64 || j >= ny as i64 {
                    row.push(' ');
                    continue;
                }
                let (i, j) = (i as usize, j as usize);
                let l = labels.get(i, j, k);
                let hu = ct.get(i, j, k);
                let valley = {
                    let mut best = f32::MIN;
                    for (di, dj, dk) in [
                        (1i64, 0i64, 0i64),
                        (0, 1, 0),
                        (0, 0, 1),
                        (1, 1, 0),
                        (1, -1, 0),
                        (1, 0, 1),
                        (1, 0, -1),
                        (0, 1, 1),
                        (0, 1, -1),
                        (1, 1, 1),
                        (1, 1, -1),
                        (1, -1, 1),
                        (-1, 1, 1),
                    ] {
                        let q = |s: i64| {
                            ct.get(
                                (i as i64 + s * di) as usize,
                                (j as i64 + s * dj) as usize,
                                (k as i64 + s * dk) as usize,
                            )
                        };
                        let (a, b) = (q(1), q(-1));
                        if a > 500.0 && b > 500.0 {
                            best = best.max(a.min(b) - hu);
                        }
                    }
                    best
                };
                let ch = match l {
                    _ if valley > VALLEY => 'v',
                    23 => 'A',
                    24 => 'B',
                    0 if hu > 200.0 => '+',
                    0 => '.',
                    _ => '#',
                };
                row.push(if hu < 200.0 && ch != '.' {
                    ch.to_ascii_lowercase()
                } else {
                    ch
                });
            }
            println!("{row}");
        }
    }
}

/// How visible the facet joint space is as a CT valley (env VALLEY=1): joint-space voxels
/// (background in the reference labels with two different vertebrae within 1 voxel) and
/// bone voxels whose HU is at least `delta` below both neighbours along one of the 13
/// directions (both neighbours above 400 HU).
pub fn valley_stats(ct: &spinetwin_imaging::Volume<f32>, labels: &spinetwin_imaging::Volume<u16>) {
    let [nx, ny, nz] = labels.dims();
    let dirs: [(i64, i64, i64); 13] = [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (1, 1, 0),
        (1, -1, 0),
        (1, 0, 1),
        (1, 0, -1),
        (0, 1, 1),
        (0, 1, -1),
        (1, 1, 1),
        (1, 1, -1),
        (1, -1, 1),
        (-1, 1, 1),
    ];
    let is_vert = |l: u16| (17..=26).contains(&l);
    let bright: f32 = std::env::var("BRIGHT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400.0);
    for delta in [30.0f32, 60.0, 90.0] {
        let (mut joint, mut joint_hit, mut bone, mut bone_hit) = (0usize, 0usize, 0usize, 0usize);
        for k in 2..nz - 2 {
            for j in 2..ny - 2 {
                for i in 2..nx - 2 {
                    let l = labels.get(i, j, k);
                    let hu = ct.get(i, j, k);
                    let g = |d: (i64, i64, i64), s: i64| {
                        let (a, b, c) = (
                            (i as i64 + s * d.0) as usize,
                            (j as i64 + s * d.1) as usize,
                            (k as i64 + s * d.2) as usize,
                        );
                        (labels.get(a, b, c), ct.get(a, b, c))
                    };
                    let valley = dirs.iter().any(|&d| {
                        let (a, b) = (g(d, 1).1, g(d, -1).1);
                        a > bright && b > bright && a.min(b) - hu > delta
                    });
                    if l == 0 {
                        let mut seen = [0u16; 2];
                        for &d in &dirs {
                            for s in [1, -1] {
                                let m = g(d, s).0;
                                if is_vert(m) {
                                    if seen[0] == 0 {
                                        seen[0] = m;
                                    } else if m != seen[0] {
                                        seen[1] = m;
                                    }
                                }
                            }
                        }
                        if seen[1] != 0 && hu > 300.0 {
                            joint += 1;
                            joint_hit += valley as usize;
                        }
                    } else if is_vert(l) {
                        bone += 1;
                        bone_hit += valley as usize;
                    }
                }
            }
        }
        println!(
            "valley delta {delta}: joint-space voxels {joint}, detected {:.1} %; bone voxels {bone}, flagged {:.2} % ({bone_hit})",
            100.0 * joint_hit as f64 / joint.max(1) as f64,
            100.0 * bone_hit as f64 / bone.max(1) as f64
        );
    }
}
