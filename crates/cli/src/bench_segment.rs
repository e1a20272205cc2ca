//! `spinetwin bench segment`: how long the automatic segmentation (bone threshold, spine
//! localisation, vertebra separation, labelling, canal, discs) takes on the built-in phantom
//! at two voxel sizes and on the real CTs of `--data` when present (issue 3: a lumbar CT
//! on a laptop CPU in seconds). Loading and meshing are not timed.

use crate::bench::{machine_line, peak_rss_mib, Args};
use anyhow::{Context, Result};
use spinetwin_imaging::{open, OpenOptions, Volume};
use spinetwin_segment::{segment, SegmentOptions};
use std::time::Instant;

/// Real CTs timed when `--data` holds them: (folder, CT file).
const REAL_CTS: [(&str, &str); 2] = [
    ("verse012-t10-l3-sagittal", "sub-verse012_ct.nii.gz"),
    ("ts-example-abdomen-ct", "ct.nii.gz"),
];

struct Row {
    what: String,
    dims: [usize; 3],
    spacing: [f64; 3],
    seconds: f64,
    levels: Vec<String>,
    note: String,
}

fn timed(what: &str, ct: &Volume<f32>) -> Row {
    let t = Instant::now();
    let out = segment(ct, &SegmentOptions::default());
    let seconds = t.elapsed().as_secs_f64();
    let (levels, note) = match out {
        Ok(s) => (
            s.levels
                .iter()
                .map(|l| l.level.name().to_string())
                .collect(),
            String::new(),
        ),
        // A scan the pipeline refuses is timed too: refusing must also be quick.
        Err(e) => (Vec::new(), format!("refused: {e}")),
    };
    Row {
        what: what.to_string(),
        dims: ct.grid().dims,
        spacing: ct.grid().spacing,
        seconds,
        levels,
        note,
    }
}

/// Runs `spinetwin bench segment`.
pub fn run(args: &Args) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful timings");
    }
    let mut rows = Vec::new();
    for spacing_mm in [1.0, 0.6] {
        let spec = spinetwin_phantom::PhantomSpec {
            spacing_mm,
            ..Default::default()
        };
        let ph = spinetwin_phantom::generate(&spec).context("generating the phantom")?;
        rows.push(timed(
            &format!("built-in phantom T12-S1, {spacing_mm} mm"),
            &ph.ct,
        ));
    }
    let mut missing = Vec::new();
    for (dir, file) in REAL_CTS {
        let path = args.data.join(dir).join(file);
        if !path.exists() {
            missing.push(path.display().to_string());
            continue;
        }
        let img = open(std::slice::from_ref(&path), &OpenOptions::default())
            .with_context(|| format!("{}: cannot be read", path.display()))?;
        rows.push(timed(dir, &img.volume));
    }
    let table = markdown(&rows, &missing);
    println!("{table}");
    if let Some(p) = &args.report {
        spinetwin_core::atomic::write_bytes(p, table.as_bytes())?;
    }
    Ok(())
}

fn markdown(rows: &[Row], missing: &[String]) -> String {
    let mut s = String::from(
        "| scan | voxels | spacing (mm) | segmentation (s) | levels labelled | note |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} x {} x {} | {:.2} x {:.2} x {:.2} | {:.1} | {} | {} |\n",
            r.what,
            r.dims[0],
            r.dims[1],
            r.dims[2],
            r.spacing[0],
            r.spacing[1],
            r.spacing[2],
            r.seconds,
            if r.levels.is_empty() {
                "-".to_string()
            } else {
                r.levels.join(" ")
            },
            r.note
        );
    }
    s += &format!(
        "\nWall time of `spinetwin_segment::segment` alone (the scan already in memory; no \
         meshing). Peak RSS of the whole run {:.0} MiB. {}\n",
        peak_rss_mib(),
        machine_line()
    );
    if !missing.is_empty() {
        s += &format!("\nNot timed (not found): {}.\n", missing.join(", "));
    }
    s
}
