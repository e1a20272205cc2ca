//! `spinetwin measure`: landmarks and alignment angles (lordosis, sacral slope, segmental
//! angles, coronal Cobb) of a lumbar CT.

use crate::inputs::Source;
use crate::output::write_json;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use spinetwin_imaging::{nifti, open, Interpolation, Modality, OpenOptions};
use spinetwin_segment::landmarks::{landmarks, SpineLandmarks};
use spinetwin_segment::{measure, segment, Measures, SegmentOptions};
use std::path::PathBuf;

/// Arguments of `spinetwin measure`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Segment a lumbar CT (or take a given label map), find the landmarks of each \
vertebra (frame, endplates, pedicles, facets) and print the measures: segmental \
sagittal/coronal angles and disc heights (anterior/middle/posterior), lumbar lordosis L1-S1, \
sacral slope, the coronal Cobb angle (degrees, endplate-based), per vertebra the body heights, \
the bony canal's area, width and depth at the pedicles and the trabecular HU, and the L1 \
bone-density screen (Pickhardt et al. 2013: 110 / 160 HU). --json prints the measures and \
all landmarks (LPS mm) as JSON instead; --json FILE writes them to FILE."
)]
pub struct Args {
    /// The CT (a DICOM folder or file(s), or a NIfTI file), or a segmentation without its
    /// CT (a `spinetwin segment` output folder, or a NIfTI label map in VerSe numbering):
    /// `spinetwin measure CT-or-OUT`. Without the CT there is no trabecular HU.
    #[arg(required = true, value_name = "CT-or-OUT")]
    pub ct: Vec<PathBuf>,
    /// Use this label map of the CT (NIfTI, VerSe labels) instead of segmenting it.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Print the measures and all landmarks as JSON instead of the table; with a FILE,
    /// write them there and print the table.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// DICOM series to use when the input holds several.
    #[arg(long)]
    pub series: Option<String>,
}

/// What the JSON holds.
#[derive(Serialize)]
struct Report<'a> {
    measures: &'a Measures,
    landmarks: &'a SpineLandmarks,
    /// Every warning: the scan's, the input's, the landmarks' (per vertebra prefixed with
    /// its level).
    warnings: &'a [String],
}

/// Runs `spinetwin measure`.
pub fn run(args: Args) -> Result<()> {
    let source = match args.labels {
        Some(_) => Source::Ct(args.ct.clone()),
        None => crate::inputs::classify(&args.ct)?,
    };
    let input = args.ct[0].display();
    let mut warnings = Vec::new();
    let lm = match source {
        Source::Ct(ct) => {
            let img = open(
                &ct,
                &OpenOptions {
                    series_uid: args.series.clone(),
                    ..Default::default()
                },
            )?;
            if img.modality != Modality::Ct {
                bail!("{input}: measuring needs a CT in Hounsfield units (or a segmentation: a spinetwin segment output folder or a label map); give the CT series");
            }
            warnings.extend(img.warnings.iter().cloned());
            let labels = match &args.labels {
                Some(p) => nifti::read_labels(p)
                    .with_context(|| format!("{}: could not read the label map", p.display()))?,
                None => {
                    segment(&img.volume, &SegmentOptions::default())
                        .with_context(|| format!("{input}: segmentation failed"))?
                        .labels
                }
            };
            let labels = if labels.grid() != img.volume.grid() {
                labels.resample(img.volume.grid(), Interpolation::Nearest, 0)
            } else {
                labels
            };
            landmarks(&img.volume, &labels).with_context(|| format!("{input}: landmarks"))?
        }
        Source::Labels { labels, .. } => {
            warnings.push(crate::inputs::labels_only_warning());
            let mut lm = landmarks(&crate::inputs::stand_in_ct(&labels), &labels)
                .with_context(|| format!("{input}: landmarks"))?;
            crate::inputs::forget_hu(&mut lm);
            lm
        }
    };
    let m = measure(&lm);
    warnings.extend(lm.warnings.iter().cloned());
    for v in &lm.vertebrae {
        warnings.extend(v.warnings.iter().map(|w| format!("{}: {w}", v.level)));
    }
    let report = Report {
        measures: &m,
        landmarks: &lm,
        warnings: &warnings,
    };
    let to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    if to_stdout {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(p) = &args.json {
            write_json(p, &report)?;
        }
        print!("{}", m.table());
    }
    // With the JSON on stdout the warnings go to stderr (they are in the JSON too).
    for w in &warnings {
        if to_stdout {
            eprintln!("warning: {w}");
        } else {
            println!("warning: {w}");
        }
    }
    Ok(())
}
