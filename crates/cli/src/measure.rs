//! `spinetwin measure`: landmarks and alignment angles (lordosis, sacral slope, segmental
//! angles, coronal Cobb) of a lumbar CT.

use crate::output::write_json;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use spinetwin_imaging::{nifti, open, Modality, OpenOptions};
use spinetwin_segment::landmarks::{landmarks, SpineLandmarks};
use spinetwin_segment::{measure, segment, Measures, SegmentOptions};
use std::path::PathBuf;

/// Arguments of `spinetwin measure`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Segment a lumbar CT (or take a given label map), find the landmarks of each \
vertebra (frame, endplates, pedicles, facets) and print the alignment angles: segmental \
sagittal/coronal angles, lumbar lordosis L1-S1, sacral slope and the coronal Cobb angle \
(degrees, endplate-based). --json writes the measures and all landmarks (LPS mm)."
)]
pub struct Args {
    /// The CT: a DICOM folder or file(s), or a NIfTI file.
    #[arg(required = true)]
    pub ct: Vec<PathBuf>,
    /// Use this label map (NIfTI, VerSe labels, same grid as the CT) instead of segmenting.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Write measures and landmarks as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// DICOM series to use when the input holds several.
    #[arg(long)]
    pub series: Option<String>,
}

/// What the JSON file holds.
#[derive(Serialize)]
struct Report<'a> {
    measures: &'a Measures,
    landmarks: &'a SpineLandmarks,
}

/// Runs `spinetwin measure`.
pub fn run(args: Args) -> Result<()> {
    let img = open(
        &args.ct,
        &OpenOptions {
            series_uid: args.series.clone(),
            ..Default::default()
        },
    )?;
    let input = args.ct[0].display();
    if img.modality != Modality::Ct {
        bail!("{input}: measuring needs a CT in Hounsfield units; give the CT series");
    }
    let labels = match &args.labels {
        Some(p) => nifti::read_labels(p)
            .with_context(|| format!("{}: could not read the label map", p.display()))?,
        None => {
            segment(&img.volume, &SegmentOptions::default())
                .with_context(|| format!("{input}: segmentation failed"))?
                .labels
        }
    };
    let lm = landmarks(&img.volume, &labels).with_context(|| format!("{input}: landmarks"))?;
    let m = measure(&lm);
    if let Some(p) = &args.json {
        write_json(
            p,
            &Report {
                measures: &m,
                landmarks: &lm,
            },
        )?;
    }
    print!("{}", m.table());
    for w in img.warnings.iter().chain(&lm.warnings) {
        println!("warning: {w}");
    }
    for v in &lm.vertebrae {
        for w in &v.warnings {
            println!("warning: {}: {w}", v.level);
        }
    }
    Ok(())
}
