//! Meshes every vertebra and disc of the default phantom and prints a Markdown table of
//! triangle counts, volume errors, checks and timings (the figures in
//! docs/segment/meshes.md). Run: `cargo run --release -p spinetwin-mesh --example phantom_meshes`.
//! Optional argument: the triangle target per structure (default 20000).

use spinetwin_mesh::{surface_of_label, SurfaceOptions};
use spinetwin_phantom::{generate, PhantomSpec};
use std::time::Instant;

fn main() {
    let target: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("triangle target"))
        .unwrap_or(20_000);
    let t = Instant::now();
    let ph = generate(&PhantomSpec::default()).expect("phantom");
    let g = ph.labels.grid();
    println!(
        "phantom: {:?} voxels of {:?} mm, generated in {:.1} s; target {target} triangles\n",
        g.dims,
        g.spacing,
        t.elapsed().as_secs_f64()
    );
    let mut labels: Vec<u16> = ph.labels.data().to_vec();
    labels.sort_unstable();
    labels.dedup();
    let names = |l: u16| match l {
        19 => "T12".to_string(),
        20..=25 => format!("L{}", l - 19),
        26 => "S1".into(),
        101..=125 => format!("disc below {}", l - 100),
        200 => "canal".into(),
        _ => format!("label {l}"),
    };
    println!("| structure | label | extracted | final | components | genus | voxel vol (mm^3) | mesh vol (mm^3) | error % | closed+manifold | self-int. | extract s | smooth s | decimate s | check s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let opts = SurfaceOptions {
        target_triangles: Some(target),
        ..Default::default()
    };
    let total = Instant::now();
    for l in labels.into_iter().filter(|&l| l != 0 && l < 200) {
        let s = surface_of_label(&ph.labels, l, &opts).expect("surface");
        let r = &s.report;
        println!(
            "| {} | {l} | {} | {} | {} | {} | {:.0} | {:.0} | {:+.2} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            names(l),
            s.extracted_triangles,
            r.triangles,
            r.components,
            r.genus.map_or("-".into(), |g| g.to_string()),
            s.voxel_volume,
            r.volume,
            s.volume_error_percent(),
            r.closed && r.manifold && r.oriented,
            r.self_intersections.unwrap_or(0),
            s.seconds[0],
            s.seconds[1],
            s.seconds[2],
            s.seconds[3]
        );
    }
    println!(
        "\nall structures in {:.1} s (one thread per structure step; rayon inside the checks)",
        total.elapsed().as_secs_f64()
    );
}
