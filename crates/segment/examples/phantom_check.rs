//! Segments a phantom, prints Dice per vertebra and writes previews.
//!
//! `cargo run --release -p spinetwin-segment --example phantom_check -- OUT_DIR [spacing] [lordosis] [cobb] [bmd] [noise]`
//! (`FACETS=anatomical` for the phantom's anatomical facet joints, `FACET_LEVEL=L2` for the
//! axial views at another joint than L4-L5).

use nalgebra::Vector3;
use spinetwin_imaging::preview::{render_slice, Plane, RgbImage, Window};
use spinetwin_phantom::{generate, FacetJoints, PhantomSpec};
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
        facet_joints: match std::env::var("FACETS").as_deref() {
            Ok("anatomical") => FacetJoints::Anatomical,
            _ => FacetJoints::MidDisc,
        },
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
    // Where the errors are: truth vertebra -> what the segmentation called its voxels.
    let mut confusion = std::collections::BTreeMap::<(u16, u16), usize>::new();
    for (t, s) in ph.labels.data().iter().zip(seg.labels.data()) {
        if t != s && (*t > 0 && *t < 100 || *s > 0 && *s < 100) {
            *confusion.entry((*t, *s)).or_default() += 1;
        }
    }
    let v_mm3 = spec.spacing_mm.powi(3);
    let mut rows: Vec<_> = confusion.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!("largest confusions (truth label -> segmented label: mm3):");
    let g = ph.labels.grid().clone();
    let [nx, ny, _] = ph.labels.dims();
    for ((t, s), n) in rows.iter().take(12) {
        // Where the confused voxels lie, in the frame of the vertebra they were given to.
        let frame = ph
            .truth
            .vertebrae
            .iter()
            .find(|v| v.label == *s)
            .map(|v| &v.frame);
        let mut lo = Vector3::repeat(f64::INFINITY);
        let mut hi = Vector3::repeat(f64::NEG_INFINITY);
        let mut sum = Vector3::zeros();
        if let Some(f) = frame {
            for (i, (a, b)) in ph.labels.data().iter().zip(seg.labels.data()).enumerate() {
                if a == t && b == s {
                    let p = g.index_to_world(Vector3::new(
                        (i % nx) as f64,
                        ((i / nx) % ny) as f64,
                        (i / (nx * ny)) as f64,
                    ));
                    let d = p - Vector3::from(f.origin);
                    let l = Vector3::new(
                        d.dot(&Vector3::from(f.x_axis)),
                        d.dot(&Vector3::from(f.y_axis)),
                        d.dot(&Vector3::from(f.z_axis)),
                    );
                    lo = lo.inf(&l);
                    hi = hi.sup(&l);
                    sum += l;
                }
            }
        }
        let c = sum / *n as f64;
        println!(
            "  {t} -> {s}: {:.0} mm3; in {s}'s frame centroid ({:.1}, {:.1}, {:.1}) box x {:.0}..{:.0} y {:.0}..{:.0} z {:.0}..{:.0}",
            *n as f64 * v_mm3, c.x, c.y, c.z, lo.x, hi.x, lo.y, hi.y, lo.z, hi.z
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
        zoom(&render_slice(
            &ph.ct,
            plane,
            through,
            Window::BONE,
            Some(lab),
        ))
        .write_png(&out.join(format!("{name}.png")))?;
    }
    // Axial through the L3 body and through the left L4-L5 facet joint.
    let at_level = std::env::var("FACET_LEVEL").unwrap_or("L4".into());
    let l4 = ph.truth.vertebrae.iter().find(|v| v.level == at_level);
    if let Some(f) = l4.and_then(|v| v.facets.inferior_left) {
        let facet = Vector3::new(f[0], f[1], f[2]);
        // And 6 mm lower, through the lower half of L4's inferior articular processes.
        let low = facet - Vector3::new(0.0, 0.0, 6.0);
        for (name, at, lab) in [
            ("ax_facet_seg", facet, &seg.labels),
            ("ax_facet_truth", facet, &ph.labels),
            ("ax_facet_low_seg", low, &seg.labels),
            ("ax_facet_low_truth", low, &ph.labels),
        ] {
            let img = render_slice(&ph.ct, Plane::Axial, at, Window::BONE, Some(lab));
            zoom(&img).write_png(&out.join(format!("{name}.png")))?;
            // The posterior elements, 4x, for looking at joints and process tips.
            let (w, h) = (80usize, 60usize);
            let (x0, y0) = ((img.width / 2).saturating_sub(w / 2), img.height / 2);
            let mut z = RgbImage {
                width: 4 * w,
                height: 4 * h,
                pixels: vec![0; 48 * w * h],
            };
            for y in 0..4 * h {
                for x in 0..4 * w {
                    let (sx, sy) = (x0 + x / 4, y0 + y / 4);
                    if sx < img.width && sy < img.height {
                        let s = 3 * (sy * img.width + sx);
                        let d = 3 * (y * 4 * w + x);
                        z.pixels[d..d + 3].copy_from_slice(&img.pixels[s..s + 3]);
                    }
                }
            }
            z.write_png(&out.join(format!("{name}_zoom.png")))?;
        }
    }
    zoom(&render_slice(
        &ph.ct,
        Plane::Axial,
        through,
        Window::BONE,
        Some(&seg.labels),
    ))
    .write_png(&out.join("ax_l3_seg.png"))?;
    // Parasagittal through the left pedicles (facet joints).
    let p = through + Vector3::new(15.0, 0.0, 0.0);
    zoom(&render_slice(
        &ph.ct,
        Plane::Sagittal,
        p,
        Window::BONE,
        Some(&seg.labels),
    ))
    .write_png(&out.join("sag_facet_seg.png"))?;
    zoom(&render_slice(
        &ph.ct,
        Plane::Sagittal,
        p,
        Window::BONE,
        Some(&ph.labels),
    ))
    .write_png(&out.join("sag_facet_truth.png"))?;
    Ok(())
}

/// Nearest-neighbour enlargement to about 600 px high, for looking at.
fn zoom(img: &RgbImage) -> RgbImage {
    img.enlarged((600 / img.height.max(1)).max(1))
}
