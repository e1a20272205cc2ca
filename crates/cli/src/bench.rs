//! `spinetwin bench`: speed and memory of pipeline stages, written as a table.
//!
//! Each measured load runs in a fresh child process of this same binary, so the peak
//! resident memory reported (Linux VmHWM) is that of the load alone, not of the set-up.

use anyhow::{bail, Context, Result};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};
use spinetwin_imaging::dicom::{self, WriteMeta};
use spinetwin_imaging::{open, uid, Grid, Interpolation, Modality, OpenOptions, Volume};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `spinetwin bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to measure.
    #[arg(value_enum, default_value = "import")]
    pub what: What,
    /// In-plane matrix size of the test series.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u16).range(16..))]
    pub matrix: u16,
    /// Number of slices of the test series.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u16).range(2..))]
    pub slices: u16,
    /// Timed repetitions (each in a fresh process).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Markdown file to write the table to (in addition to stdout).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Folder to keep the generated test series in (default: a temporary folder).
    #[arg(long)]
    pub keep_series: Option<PathBuf>,
    /// `fem`: cells of the 40 x 30 x 25 mm Tet10 block along x, y, z (6 tets per cell).
    #[arg(long, value_delimiter = ',', default_values_t = [28usize, 21, 17])]
    pub cells: Vec<usize>,
    /// `fem-nl`: cells of the 40 x 30 x 25 mm Neo-Hookean Tet10 block along x, y, z.
    #[arg(long, value_delimiter = ',', default_values_t = [12usize, 9, 7])]
    pub nl_cells: Vec<usize>,
    /// `fem`, `fem-nl`, `scenarios`: also write the measured numbers as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// `fem`: folder to keep the deck and all solver outputs in (default: temporary).
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// `fem`: which solves to run: `metis`, `amd` (direct, with that ordering), `cg-amg`
    /// (conjugate gradients + AMG), `ccx` (CalculiX, when on PATH).
    #[arg(long, value_delimiter = ',', default_values_t = ["metis".to_string(), "amd".into(), "cg-amg".into(), "ccx".into()])]
    pub runs: Vec<String>,
    /// `fem`: the model: `block` (a Tet10 block of `--cells`, built in) or `verse-l2` (a real
    /// L2 vertebra from the density-calibrated CT in
    /// ../shared/data/verse004-l2-calibrated, Tet10 on 2 mm voxel blocks, moduli from the
    /// density, compressed 0.2 mm between PMMA caps).
    #[arg(long, default_value = "block")]
    pub model: String,
    /// `segment`: folder of the real CT cases (the project's shared data, beside the
    /// repository); cases not found there are listed as not timed.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
}

/// Benchmarks available.
#[derive(clap::ValueEnum, Clone, Debug)]
pub enum What {
    /// DICOM series import (scan + load into a Volume).
    Import,
    /// Linear-elastic Tet10 solve, METIS vs AMD, side by side with CalculiX (`ccx`).
    Fem,
    /// Neo-Hookean Tet10 block stretched 25 % in 20 fixed increments (NLGEOM), spinetwin
    /// and CalculiX (`ccx`) on the same deck.
    FemNl,
    /// The time each built-in surgical scenario adds on the phantom's hybrid twin for the
    /// six 7.5 N m pure moments (target: under 30 s each on 2 cores), with the intact twin.
    Scenarios,
    /// Automatic segmentation time on the built-in phantom (1 and 0.6 mm) and on the real
    /// CTs of `--data` when present.
    Segment,
}

/// Arguments of the hidden child command.
#[derive(clap::Args, Debug)]
pub struct ChildArgs {
    /// Series folder to load.
    pub dir: PathBuf,
}

#[derive(Serialize, Deserialize, Debug)]
struct ChildResult {
    seconds: f64,
    peak_rss_mib: f64,
    dims: [usize; 3],
}

/// Peak resident set size of this process in MiB (Linux); 0 where unavailable.
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// "Machine: N logical cores; build: release." for the benchmark tables.
pub(crate) fn machine_line() -> String {
    format!(
        "Machine: {} logical cores; build: {}.",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// Runs the hidden child: load one series, print timing and peak memory as JSON.
pub fn run_child(args: ChildArgs) -> Result<()> {
    let t = Instant::now();
    let img = open(std::slice::from_ref(&args.dir), &OpenOptions::default())?;
    let seconds = t.elapsed().as_secs_f64();
    let r = ChildResult {
        seconds,
        peak_rss_mib: peak_rss_mib(),
        dims: img.volume.dims(),
    };
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// A CT-like test series: the default phantom resampled onto a `matrix^2 x slices` grid
/// (0.45 mm pixels, 0.6 mm slices, a typical thin-slice spine protocol).
fn make_series(matrix: usize, slices: usize, dir: &Path) -> Result<()> {
    let spec = spinetwin_phantom::PhantomSpec::default();
    let ph = spinetwin_phantom::generate(&spec).context("generating the phantom")?;
    let (lo, hi) = ph.ct.grid().world_bounds();
    let centre = (lo + hi) / 2.0;
    let spacing = [0.45, 0.45, 0.6];
    let half = Vector3::new(
        spacing[0] * (matrix - 1) as f64,
        spacing[1] * (matrix - 1) as f64,
        spacing[2] * (slices - 1) as f64,
    ) / 2.0;
    let grid = Grid::axis_aligned([matrix, matrix, slices], spacing, centre - half)?;
    let vol: Volume<f32> = ph.ct.resample(&grid, Interpolation::Trilinear, -1000.0);
    let meta = WriteMeta {
        patient_name: "SPINETWIN^BENCH".into(),
        patient_id: "BENCH".into(),
        series_description: format!("spinetwin import benchmark {matrix}x{matrix}x{slices}"),
        study_uid: uid::from_hash(&[b"bench-study"]),
        series_uid: uid::from_hash(&[
            b"bench-series",
            &(matrix as u64).to_le_bytes(),
            &(slices as u64).to_le_bytes(),
        ]),
        modality: Modality::Ct,
        body_part: Some("LSPINE".into()),
        ..WriteMeta::default()
    };
    dicom::write_series(&vol, &meta, dir)?;
    Ok(())
}

/// Loads the series in a fresh child process (so its peak memory is the load's alone).
fn load_in_child(exe: &Path, dir: &Path) -> Result<ChildResult> {
    let out = Command::new(exe)
        .arg("bench-load-child")
        .arg(dir)
        .env("SPINETWIN_QUIET", "1")
        .output()
        .context("running the load child process")?;
    if !out.status.success() {
        bail!(
            "load child failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading child output")
}

/// Asks Linux to drop clean page-cache pages, so the next read comes from disk.
fn drop_page_cache() -> Result<()> {
    // sync first: only clean pages can be dropped.
    Command::new("sync").status().context("running sync")?;
    std::fs::write("/proc/sys/vm/drop_caches", b"3").context("writing /proc/sys/vm/drop_caches")?;
    Ok(())
}

/// Runs `spinetwin bench`.
pub fn run(args: Args) -> Result<()> {
    if let What::FemNl = args.what {
        return crate::bench_fem::run_nl(&args);
    }
    if let What::Scenarios = args.what {
        return crate::bench_scenarios::run(&args);
    }
    if let What::Segment = args.what {
        return crate::bench_segment::run(&args);
    }
    if let What::Fem = args.what {
        return crate::bench_fem::run(&args);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful timings");
    }
    let tmp;
    let dir = match &args.keep_series {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary folder")?;
            tmp.path().join("series")
        }
    };
    if !dir.join("IM00001.dcm").exists() {
        // Only a new or empty folder may receive the test series (writing replaces it).
        crate::output::check_writable(&dir, false)?;
        eprintln!(
            "writing a {}x{}x{} test series to {} ...",
            args.matrix,
            args.matrix,
            args.slices,
            dir.display()
        );
        make_series(args.matrix.into(), args.slices.into(), &dir)?;
    }
    let exe = std::env::current_exe().context("locating the spinetwin executable")?;
    let can_drop = drop_page_cache().is_ok();
    if !can_drop {
        eprintln!(
            "note: cannot drop the page cache (needs root on Linux); reporting warm runs only"
        );
    }
    let mut rows = String::new();
    let mut dims = [0; 3];
    for cold in [false, true] {
        if cold && !can_drop {
            continue;
        }
        let mut runs = Vec::new();
        for _ in 0..args.repeat.max(1) {
            if cold {
                drop_page_cache()?;
            }
            runs.push(load_in_child(&exe, &dir)?);
        }
        let mut secs: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
        secs.sort_by(f64::total_cmp);
        let peak = runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
        dims = runs[0].dims;
        rows += &format!(
            "| DICOM import (scan + load), {} | {}x{}x{} int16, uncompressed | {} | {:.2} | {:.2} / {:.2} | {:.0} |\n",
            if cold { "cold: page cache dropped" } else { "warm: files cached" },
            dims[0],
            dims[1],
            dims[2],
            runs.len(),
            secs[secs.len() / 2],
            secs[0],
            secs[secs.len() - 1],
            peak,
        );
    }
    let volume_mib = (dims[0] * dims[1] * dims[2] * 4) as f64 / (1024.0 * 1024.0);
    let table = format!(
        "| benchmark | series | runs | median time (s) | min / max (s) | peak RSS (MiB) |\n\
         |---|---|---|---|---|---|\n\
         {rows}\n\
         The imported volume itself (f32) is {volume_mib:.0} MiB; peak RSS is that of a fresh \
         process doing only the import. {}\n",
        machine_line()
    );
    println!("{table}");
    if let Some(p) = &args.report {
        spinetwin_core::atomic::write_bytes(p, table.as_bytes())?;
    }
    Ok(())
}
