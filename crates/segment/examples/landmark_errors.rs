//! Diagnostic: per vertebra, the errors of the point landmarks against the phantom's truth as
//! vectors in the truth's local frame (x left, y posterior, z cranial), which shows whether a
//! miss is a bias along one axis (a definition that differs) or scatter.
//!
//! `cargo run --release -p spinetwin-segment --example landmark_errors -- [lordosis] [cobb] [spacing] [noise] [bmd]`
//!
//! Landmarks from the phantom's reference label map; with `SEG=1` in the environment from
//! its automatic segmentation instead. With `CORRIDOR=1` also each pedicle's screw corridor
//! against the analytic solid's (`pedicle_corridors`): the entry's error and the direction's
//! convergence and sagittal tilt on both sides.

use nalgebra::Vector3;
use spinetwin_phantom::{generate, pedicle_corridors, PhantomSpec};
use spinetwin_segment::landmarks::landmarks;

type V3 = Vector3<f64>;

fn v(p: [f64; 3]) -> V3 {
    V3::from(p)
}

fn ang(a: V3, b: V3) -> f64 {
    a.normalize()
        .dot(&b.normalize())
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// A small difference of unit vectors (radians of tilt), in degrees.
fn deg(d: V3) -> V3 {
    d * 180.0 / std::f64::consts::PI
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let spec = PhantomSpec {
        lordosis_deg: num(1, PhantomSpec::default().lordosis_deg),
        scoliosis_cobb_deg: num(2, 0.0),
        spacing_mm: num(3, 1.0),
        noise_hu: num(4, PhantomSpec::default().noise_hu),
        bmd_scale: num(5, PhantomSpec::default().bmd_scale),
        ..PhantomSpec::default()
    };
    let ph = generate(&spec)?;
    let lm = if std::env::var("SEG").is_ok() {
        let seg =
            spinetwin_segment::segment(&ph.ct, &spinetwin_segment::SegmentOptions::default())?;
        landmarks(&ph.ct, &seg.labels)?
    } else {
        landmarks(&ph.ct, &ph.labels)?
    };
    // With `CORRIDOR=1`, the pedicle corridors of the analytic solids too (seconds per pedicle).
    let corridors = if std::env::var("CORRIDOR").is_ok() {
        pedicle_corridors(&spec)?
    } else {
        Vec::new()
    };
    for t in &ph.truth.vertebrae {
        let Some(l) = lm.vertebrae.iter().find(|l| l.level.name() == t.level) else {
            println!("== {}: not found", t.level);
            continue;
        };
        let (x, y, z) = (v(t.frame.x_axis), v(t.frame.y_axis), v(t.frame.z_axis));
        let loc = |d: V3| format!("({:6.2} {:6.2} {:6.2})", d.dot(&x), d.dot(&y), d.dot(&z));
        println!("== {}", t.level);
        println!(
            "  frame: x {:.2} y {:.2} z {:.2} deg, origin {}",
            ang(v(l.frame.x), x),
            ang(v(l.frame.y), y),
            ang(v(l.frame.z), z),
            loc(v(l.frame.origin) - v(t.frame.origin))
        );
        // A normal's error as its difference from the truth in the truth's frame (x: coronal
        // tilt, y: sagittal tilt, in radians ~ the angle's components).
        println!(
            "  superior endplate: centre {}, normal {:.2} deg {}",
            loc(v(l.superior_endplate.centre) - v(t.superior_endplate.centre)),
            ang(v(l.superior_endplate.normal), v(t.superior_endplate.normal)),
            loc(deg(
                v(l.superior_endplate.normal) - v(t.superior_endplate.normal)
            ))
        );
        if let (Some(a), Some(b)) = (&l.inferior_endplate, &t.inferior_endplate) {
            println!(
                "  inferior endplate: centre {}, normal {:.2} deg {}",
                loc(v(a.centre) - v(b.centre)),
                ang(v(a.normal), v(b.normal)),
                loc(deg(v(a.normal) - v(b.normal)))
            );
        }
        if let Some(p) = &l.pedicles {
            for (n, a, b) in [
                ("left", &p.left, &t.pedicle_left),
                ("right", &p.right, &t.pedicle_right),
            ] {
                println!(
                    "  pedicle {n}: entry {}, direction {:.2} deg, width {:.2} (truth {:.2}), \
                     height {:.2} (truth {:.2})",
                    loc(v(a.entry) - v(b.entry)),
                    ang(v(a.direction), v(b.direction)),
                    a.min_width_mm,
                    b.min_width_mm,
                    a.min_height_mm,
                    b.min_height_mm
                );
                if let Some(c) = corridors.iter().find(|c| c.level == t.level && c.side == n) {
                    // Convergence (in the transverse plane, from the y axis) and sagittal tilt.
                    let conv = |d: V3| d.dot(&x).atan2(-d.dot(&y)).to_degrees().abs();
                    let tilt = |d: V3| d.dot(&z).asin().to_degrees();
                    println!(
                        "  corridor {n}: entry {}, direction {:.2} deg (convergence {:.2} vs \
                         {:.2}, tilt {:.2} vs {:.2})",
                        loc(v(a.entry) - v(c.entry)),
                        ang(v(a.direction), v(c.direction)),
                        conv(v(a.direction)),
                        conv(v(c.direction)),
                        tilt(v(a.direction)),
                        tilt(v(c.direction))
                    );
                }
            }
        }
        let fc = &t.facets;
        for (n, a, b, nt) in [
            (
                "superior left",
                &l.superior_facets.left,
                Some(fc.superior_left),
                Some(fc.superior_normals[0]),
            ),
            (
                "superior right",
                &l.superior_facets.right,
                Some(fc.superior_right),
                Some(fc.superior_normals[1]),
            ),
            (
                "inferior left",
                &l.inferior_facets.left,
                fc.inferior_left,
                None,
            ),
            (
                "inferior right",
                &l.inferior_facets.right,
                fc.inferior_right,
                None,
            ),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                let normal = nt
                    .map(|n| format!(", normal {:.2} deg", ang(v(a.normal), v(n))))
                    .unwrap_or_default();
                println!(
                    "  facet {n}: centre {}{normal}, area {:.0} mm2",
                    loc(v(a.centre) - v(b)),
                    a.area_mm2
                );
            }
        }
        if let Some(s) = l.spinous_tip {
            println!("  spinous tip: {}", loc(v(s) - v(t.spinous_tip)));
        }
        for (n, a, b) in [
            ("left", l.transverse_tips.left, t.transverse_tip_left),
            ("right", l.transverse_tips.right, t.transverse_tip_right),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                println!("  transverse tip {n}: {}", loc(v(a) - v(b)));
            }
        }
    }
    Ok(())
}
