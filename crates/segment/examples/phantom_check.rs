//! Segments a phantom, prints Dice per vertebra and writes previews.
//!
//! `cargo run --release -p spinetwin-segment --example phantom_check -- OUT_DIR [spacing] [lordosis] [cobb] [bmd] [noise]`

use nalgebra::Vector3;
use spinetwin_imaging::preview::{render_slice, Plane, RgbImage, Window};
use spinetwin_phantom::{generate, PhantomSpec};
use spinetwin_segment::{dice, segment, SegmentOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("/tmp/seg"));
    let num = |i: usize, d: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let spec = PhantomSpec {
        spacing_mm: num(2, 1.5),
        lordosis_deg: num(3, 45.0),
        scoliosis_cobb_deg: num(4, 0.0),
        bmd_scale: num(5, 1.0),
        noise_hu: num(6, 20.0),
        ..PhantomSpec::default()
    };
    std::fs::create_dir_all(&out)?;
    let t = Instant::now();
    let ph = generate(&spec)?;
    println!(
        "phantom {:?} in {:.2} s",
        ph.ct.dims(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let seg = segment(&ph.ct, &SegmentOptions::default())?;
    println!(
        "segment in {:.2} s, threshold {:.0} HU, sacrum {}",
        t.elapsed().as_secs_f64(),
        seg.bone_threshold_hu,
        seg.sacrum_found
    );
    for st in &seg.timings {
        println!("  {:<32} {:.3} s", st.stage, st.seconds);
    }
    for w in &seg.warnings {
        println!("warning: {w}");
    }
    for v in &ph.truth.vertebrae {
        let found = seg.levels.iter().find(|l| l.label == v.label);
        println!(
            "{:<4} truth {:.0} mm3 dice {:.4} found {}",
            v.level,
            ph.labels.data().iter().filter(|&&x| x == v.label).count() as f64
                * spec.spacing_mm.powi(3),
            dice(&ph.labels, &seg.labels, v.label).unwrap_or(0.0),
            found
                .map(|l| format!("{} vox {:.0} mm3", l.level, l.volume_mm3))
                .unwrap_or("-".into())
        );
    }
    for d in &ph.truth.discs {
        if d.label != 0 {
            println!(
                "disc {}: dice {:.3}",
                d.label,
                dice(&ph.labels, &seg.labels, d.label).unwrap_or(0.0)
            );
        }
    }
    println!(
        "canal dice {:.3}",
        dice(&ph.labels, &seg.labels, 200).unwrap_or(0.0)
    );
    let c = ph.truth.vertebrae[3].body_centroid;
    let through = Vector3::new(c[0], c[1], c[2]);
    for (name, plane, lab) in [
        ("sag_seg", Plane::Sagittal, &seg.labels),
        ("sag_truth", Plane::Sagittal, &ph.labels),
        ("cor_seg", Plane::Coronal, &seg.labels),
    ] {
        render_slice(&ph.ct, plane, through, Window::BONE, Some(lab))
            .zoom()
            .write_png(&out.join(format!("{name}.png")))?;
    }
    // Axial through the L3 body and through the left L4-L5 facet joint.
    let l4 = ph.truth.vertebrae.iter().find(|v| v.level == "L4");
    if let Some(f) = l4.and_then(|v| v.facets.inferior_left) {
        let facet = Vector3::new(f[0], f[1], f[2]);
        for (name, lab) in [
            ("ax_facet_seg", &seg.labels),
            ("ax_facet_truth", &ph.labels),
        ] {
            render_slice(&ph.ct, Plane::Axial, facet, Window::BONE, Some(lab))
                .zoom()
                .write_png(&out.join(format!("{name}.png")))?;
        }
    }
    render_slice(
        &ph.ct,
        Plane::Axial,
        through,
        Window::BONE,
        Some(&seg.labels),
    )
    .zoom()
    .write_png(&out.join("ax_l3_seg.png"))?;
    // Parasagittal through the left pedicles (facet joints).
    let p = through + Vector3::new(15.0, 0.0, 0.0);
    render_slice(&ph.ct, Plane::Sagittal, p, Window::BONE, Some(&seg.labels))
        .zoom()
        .write_png(&out.join("sag_facet_seg.png"))?;
    render_slice(&ph.ct, Plane::Sagittal, p, Window::BONE, Some(&ph.labels))
        .zoom()
        .write_png(&out.join("sag_facet_truth.png"))?;
    Ok(())
}

trait Zoom {
    fn zoom(&self) -> RgbImage;
}

impl Zoom for RgbImage {
    /// Nearest-neighbour enlargement to about 600 px high, for looking at.
    fn zoom(&self) -> RgbImage {
        let f = (600 / self.height.max(1)).max(1);
        let (w, h) = (self.width * f, self.height * f);
        let mut pixels = vec![0u8; w * h * 3];
        for r in 0..h {
            for c in 0..w {
                let s = 3 * ((r / f) * self.width + c / f);
                pixels[3 * (r * w + c)..3 * (r * w + c) + 3]
                    .copy_from_slice(&self.pixels[s..s + 3]);
            }
        }
        RgbImage {
            width: w,
            height: h,
            pixels,
        }
    }
}
