//! `spinetwin segment`: label the vertebrae, discs and canal of a lumbar CT.

use crate::output::{check_not_overlapping, check_writable, write_dir_atomically, write_json};
use anyhow::{bail, Context, Result};
use nalgebra::Vector3;
use serde::Serialize;
use spinetwin_imaging::preview::{render_slice, Plane, Window};
use spinetwin_imaging::{nifti, open, Modality, OpenOptions, Volume};
use spinetwin_segment::{segment, LevelReport, SegmentOptions, Segmentation, StageTiming};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `spinetwin segment`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Label the vertebrae (VerSe numbering: 19 = T12, 20-24 = L1-L5, \
26 = sacrum), the discs (100 + label of the vertebra above) and the spinal canal (200) of a \
lumbar CT, with a classical pipeline (adaptive bone threshold, canal tracking, disc spaces, \
vertebra separation, levels counted up from the sacrum). OUT receives labels.nii.gz, \
segment.json (levels, volumes, HU, confidence, warnings, timings) and overview PNGs. Check \
the overview: levels are only certain when the sacrum is in view."
)]
pub struct Args {
    /// The CT: a DICOM folder or file(s), or a NIfTI file.
    #[arg(required = true)]
    pub ct: Vec<PathBuf>,
    /// Output folder (new or empty unless --force).
    #[arg(long, short)]
    pub out: PathBuf,
    /// DICOM series to use when the input holds several.
    #[arg(long)]
    pub series: Option<String>,
    /// Bone threshold in HU (default: adapted to the scan's histogram).
    #[arg(long)]
    pub bone_threshold: Option<f32>,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
}

/// What `segment.json` holds.
#[derive(Serialize)]
pub struct SegmentReport {
    /// The levels found, cranial to caudal.
    pub levels: Vec<LevelReport>,
    /// Bone threshold used (HU).
    pub bone_threshold_hu: f32,
    /// Whether the sacrum was found (levels counted up from it).
    pub sacrum_found: bool,
    /// Whole-scan warnings (import and segmentation).
    pub warnings: Vec<String>,
    /// Time per stage (s).
    pub timings: Vec<StageTiming>,
}

impl SegmentReport {
    /// The report of a segmentation, with warnings from loading the scan first.
    pub fn new(seg: &Segmentation, import_warnings: &[String]) -> Self {
        SegmentReport {
            levels: seg.levels.clone(),
            bone_threshold_hu: seg.bone_threshold_hu,
            sacrum_found: seg.sacrum_found,
            warnings: import_warnings
                .iter()
                .chain(&seg.warnings)
                .cloned()
                .collect(),
            timings: seg.timings.clone(),
        }
    }
}

/// Runs `spinetwin segment`.
pub fn run(args: Args) -> Result<()> {
    check_writable(&args.out, args.force)?;
    check_not_overlapping(&args.out, &args.ct)?;
    let img = open(
        &args.ct,
        &OpenOptions {
            series_uid: args.series.clone(),
            ..Default::default()
        },
    )?;
    let input = args.ct[0].display();
    if img.modality != Modality::Ct {
        let what = match &img.modality {
            Modality::Other(code) if code == "unknown" => {
                "not recognised as CT (its values do not look like Hounsfield units)".to_string()
            }
            m => format!("a {} scan", m.code()),
        };
        bail!("{input}: the scan is {what}, but segmentation needs a CT in Hounsfield units; give the CT series");
    }
    let opts = SegmentOptions {
        bone_threshold_hu: args.bone_threshold,
        ..Default::default()
    };
    let pb = spinetwin_core::progress::spinner("segmenting");
    let t = Instant::now();
    let seg =
        segment(&img.volume, &opts).with_context(|| format!("{input}: segmentation failed"))?;
    pb.finish_and_clear();
    let report = SegmentReport::new(&seg, &img.warnings);
    write_dir_atomically(&args.out, |dir| {
        write_segmentation(&img.volume, &seg, &report, dir)
    })?;
    let names: Vec<_> = seg.levels.iter().map(|l| l.level.name()).collect();
    println!(
        "{} vertebrae labelled ({}) in {:.1} s -> {}",
        names.len(),
        names.join(" "),
        t.elapsed().as_secs_f64(),
        args.out.display()
    );
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for l in seg.levels.iter().filter(|l| !l.warnings.is_empty()) {
        for w in &l.warnings {
            println!("warning: {}: {w}", l.level);
        }
    }
    Ok(())
}

/// Writes labels.nii.gz, segment.json and the overview PNGs into `dir`.
pub fn write_segmentation(
    ct: &Volume<f32>,
    seg: &Segmentation,
    report: &SegmentReport,
    dir: &Path,
) -> Result<()> {
    nifti::write_labels(&dir.join("labels.nii.gz"), &seg.labels)
        .context("writing labels.nii.gz")?;
    write_json(&dir.join("segment.json"), report)?;
    // Through the middle of the labelled vertebrae, so the overview shows every level.
    let through = if seg.levels.is_empty() {
        let (lo, hi) = ct.grid().world_bounds();
        (lo + hi) / 2.0
    } else {
        seg.levels
            .iter()
            .map(|l| Vector3::from(l.centroid))
            .sum::<Vector3<f64>>()
            / seg.levels.len() as f64
    };
    render_slice(
        ct,
        Plane::Sagittal,
        through,
        Window::BONE,
        Some(&seg.labels),
    )
    .write_png(&dir.join("overview.png"))?;
    render_slice(ct, Plane::Coronal, through, Window::BONE, Some(&seg.labels))
        .write_png(&dir.join("overview_coronal.png"))?;
    Ok(())
}
