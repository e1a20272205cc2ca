//! Renders preview PNGs of the default phantom for people to look at.
//!
//! `cargo run --release -p spinetwin-phantom --example render -- [OUT_DIR] [SPACING_MM]`
//! (default `docs/phantom`, 1.5 mm). Writes mid-sagittal, axial (L3, bone and soft-tissue
//! window, and L4-L5 facets) and coronal slices with and without the label overlay, plus
//! truth.json.

use nalgebra::Vector3;
use spinetwin_imaging::preview::{render_slice, Plane, Window};
use spinetwin_phantom::{generate, PhantomSpec};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("docs/phantom"));
    let spacing: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1.5);
    let mut spec = PhantomSpec {
        spacing_mm: spacing,
        ..PhantomSpec::default()
    };
    if let Some(c) = args.get(3) {
        spec.scoliosis_cobb_deg = c.parse()?;
    }
    std::fs::create_dir_all(&out)?;
    let t0 = Instant::now();
    let ph = generate(&spec)?;
    eprintln!(
        "generated {:?} voxels at {} mm in {:.2} s",
        ph.ct.dims(),
        spacing,
        t0.elapsed().as_secs_f64()
    );
    let v = |name: &str| {
        ph.truth
            .vertebrae
            .iter()
            .find(|v| v.level == name)
            .map(|v| Vector3::from(v.body_centroid))
            .expect("level present")
    };
    let l3 = v("L3");
    let mid = Vector3::new(l3.x, l3.y, l3.z);
    let l4 = ph.truth.vertebrae.iter().find(|v| v.level == "L4").unwrap();
    let facet = Vector3::from(l4.facets.inferior_left.unwrap());
    let views: Vec<(&str, Plane, Vector3<f64>, Window)> = vec![
        ("sagittal_bone", Plane::Sagittal, mid, Window::BONE),
        ("axial_L3_bone", Plane::Axial, mid, Window::BONE),
        ("axial_L3_soft", Plane::Axial, mid, Window::SOFT_TISSUE),
        ("axial_L4L5_facets_bone", Plane::Axial, facet, Window::BONE),
        (
            "coronal_bone",
            Plane::Coronal,
            Vector3::new(mid.x, mid.y + 5.0, mid.z),
            Window::BONE,
        ),
        (
            "axial_S1_bone",
            Plane::Axial,
            v("S1") + Vector3::new(0.0, 0.0, 4.0),
            Window::BONE,
        ),
        (
            "sagittal_pedicle_bone",
            Plane::Sagittal,
            Vector3::new(mid.x + 16.0, mid.y, mid.z),
            Window::BONE,
        ),
    ];
    let zoom = std::env::var("ZOOM")
        .ok()
        .and_then(|z| z.parse::<usize>().ok());
    for (name, plane, p, w) in views {
        if let Some(z) = zoom {
            // Inspection aid: nearest-neighbour enlargement of the whole slice.
            let img = render_slice(&ph.ct, plane, p, w, None);
            let mut big = img.clone();
            // Central 60 % of the slice.
            let full = std::env::var("FULL").is_ok();
            let (c0, r0) = if full {
                (0, 0)
            } else {
                (img.width / 5, img.height / 5)
            };
            let keep = |n: usize| if full { n } else { n * 3 / 5 };
            big.width = keep(img.width) * z;
            big.height = keep(img.height) * z;
            big.pixels = vec![0; big.width * big.height * 3];
            for r in 0..big.height {
                for c in 0..big.width {
                    let s = 3 * ((r0 + r / z) * img.width + c0 + c / z);
                    let d = 3 * (r * big.width + c);
                    big.pixels[d..d + 3].copy_from_slice(&img.pixels[s..s + 3]);
                }
            }
            big.write_png(&out.join(format!("{name}_zoom.png")))?;
        }
        render_slice(&ph.ct, plane, p, w, None).write_png(&out.join(format!("{name}.png")))?;
        render_slice(&ph.ct, plane, p, w, Some(&ph.labels))
            .write_png(&out.join(format!("{name}_labels.png")))?;
    }
    std::fs::write(
        out.join("truth.json"),
        serde_json::to_string_pretty(&ph.truth)?,
    )?;
    Ok(())
}
