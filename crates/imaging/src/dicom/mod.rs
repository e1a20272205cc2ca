//! DICOM import and export.
//!
//! * [`scan`] finds the image series under files and folders and summarises them without
//!   reading pixel data; identifying fields are kept apart in [`Phi`].
//! * [`load`] / [`load_series`] read one series into a [`Volume<f32>`] in LPS, with the
//!   modality rescale applied (HU for CT). Slices are ordered by their position along the
//!   slice normal, never by file name or InstanceNumber. Missing or unevenly spaced slices
//!   and gantry tilt are detected and, where allowed, repaired by linear resampling.
//!   Enhanced multi-frame images and compressed transfer syntaxes (through dicom-pixeldata)
//!   are read too.
//! * [`write_series`] writes a volume as a CT (or MR) series, one file per k-slice.

mod header;
mod pixels;
mod stack;
#[cfg(test)]
mod tests;
mod write;

pub use write::{write_series, WriteMeta};

use crate::error::{ImagingError, Result};
use crate::volume::{Modality, Volume};
use header::{read_header, transfer_syntax_label, Header};
use rayon::prelude::*;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Identifying fields of a series (protected health information), kept apart from
/// [`SeriesSummary`] so that printing, logging or serialising a summary never reveals
/// them. `Debug`, `Display` and `Serialize` all give `Phi(<redacted>)`; the values are
/// reachable only through the explicit getters (for `inspect --show-phi`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Phi {
    patient_name: Option<String>,
    patient_id: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    study_date: Option<String>,
    accession_number: Option<String>,
    institution_name: Option<String>,
    referring_physician: Option<String>,
    study_uid: Option<String>,
}

impl Phi {
    /// PatientName (0010,0010).
    pub fn patient_name(&self) -> Option<&str> {
        self.patient_name.as_deref()
    }
    /// PatientID (0010,0020).
    pub fn patient_id(&self) -> Option<&str> {
        self.patient_id.as_deref()
    }
    /// PatientBirthDate (0010,0030), as stored (YYYYMMDD).
    pub fn birth_date(&self) -> Option<&str> {
        self.birth_date.as_deref()
    }
    /// PatientSex (0010,0040).
    pub fn sex(&self) -> Option<&str> {
        self.sex.as_deref()
    }
    /// StudyDate (0008,0020), as stored (YYYYMMDD).
    pub fn study_date(&self) -> Option<&str> {
        self.study_date.as_deref()
    }
    /// AccessionNumber (0008,0050).
    pub fn accession_number(&self) -> Option<&str> {
        self.accession_number.as_deref()
    }
    /// InstitutionName (0008,0080).
    pub fn institution_name(&self) -> Option<&str> {
        self.institution_name.as_deref()
    }
    /// ReferringPhysicianName (0008,0090).
    pub fn referring_physician(&self) -> Option<&str> {
        self.referring_physician.as_deref()
    }
    /// StudyInstanceUID (0020,000D): kept here because UIDs can link records to a patient.
    pub fn study_uid(&self) -> Option<&str> {
        self.study_uid.as_deref()
    }

    /// The identifying fields as a JSON object. Only for an explicit user request
    /// (`inspect --show-phi`): this deliberately reveals what `Serialize` redacts.
    pub fn to_json_revealed(&self) -> serde_json::Value {
        serde_json::json!({
            "patient_name": self.patient_name,
            "patient_id": self.patient_id,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "study_date": self.study_date,
            "accession_number": self.accession_number,
            "institution_name": self.institution_name,
            "referring_physician": self.referring_physician,
            "study_uid": self.study_uid,
        })
    }
}

impl fmt::Debug for Phi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phi(<redacted>)")
    }
}

impl fmt::Display for Phi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phi(<redacted>)")
    }
}

impl Serialize for Phi {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str("Phi(<redacted>)")
    }
}

/// Non-identifying facts about one series (safe to print and log).
#[derive(Debug, Clone, Serialize)]
pub struct SeriesSummary {
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// Modality of the series.
    pub modality: Modality,
    /// SeriesDescription.
    pub description: Option<String>,
    /// BodyPartExamined.
    pub body_part: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// The image files of the series (sorted by path).
    pub files: Vec<PathBuf>,
    /// Number of 2-D images: slices, or frames of multi-frame files.
    pub n_images: usize,
    /// Rows (pixels along the column direction, j).
    pub rows: u32,
    /// Columns (pixels along the row direction, i).
    pub columns: u32,
    /// PixelSpacing in DICOM order: (row spacing, column spacing), mm.
    pub pixel_spacing: Option<[f64; 2]>,
    /// Typical (median) distance between neighbouring slices along the normal, mm.
    pub slice_spacing: Option<f64>,
    /// Orientation code of the i, j, k axes, e.g. "LPS" for axial slices.
    pub orientation: Option<String>,
    /// True for (enhanced) multi-frame files.
    pub multiframe: bool,
    /// Transfer syntax of the first file, "name (uid)".
    pub transfer_syntax: String,
    /// Identifying fields, redacted in every printed form.
    pub phi: Phi,
}

/// The outcome of [`scan`]: the image series found, and the files passed over.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    /// Image series, sorted by SeriesInstanceUID.
    pub series: Vec<SeriesSummary>,
    /// Files that are not DICOM, cannot be parsed, or hold no image, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// What to do with a gantry-tilted (sheared) stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TiltPolicy {
    /// Resample onto a regular grid perpendicular to the slices (shear correction).
    #[default]
    Resample,
    /// Refuse with an error giving the tilt angle.
    Refuse,
}

/// Options for [`load`] and [`load_series`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Gantry tilt handling (default: resample).
    pub tilt: TiltPolicy,
    /// Interpolate across missing slices instead of failing (default: false).
    pub resample_gaps: bool,
}

/// A loaded series.
#[derive(Debug, Clone)]
pub struct LoadedSeries {
    /// Voxel values after the modality rescale (HU for CT), in LPS.
    pub volume: Volume<f32>,
    /// The series it came from.
    pub summary: SeriesSummary,
    /// Things the user should know (resampling done, values not HU, ...).
    pub warnings: Vec<String>,
}

/// Every file under `paths` (folders recursively), sorted, without hidden files.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let rd = std::fs::read_dir(dir).map_err(|e| ImagingError::io(dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| ImagingError::io(dir, e))?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue; // .DS_Store, editor and atomic-write temporaries
            }
            // Symlinked folders are not followed (a link loop would recurse forever);
            // symlinked files are read.
            let ft = entry.file_type().map_err(|e| ImagingError::io(&p, e))?;
            if ft.is_dir() {
                walk(&p, out)?;
            } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| ImagingError::io(p, e))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Reads headers of `files` in parallel, with a progress bar.
fn read_headers(files: &[PathBuf], what: &str) -> Vec<std::result::Result<Header, String>> {
    let pb = spinetwin_core::progress::bar(files.len() as u64, what);
    let out = files
        .par_iter()
        .map(|f| {
            let h = read_header(f);
            pb.inc(1);
            h
        })
        .collect();
    pb.finish_and_clear();
    out
}

/// Orientation code of an IOP, e.g. "LPS".
fn orientation_code(iop: &[f64; 6]) -> Option<String> {
    let dir = stack::frame_from_iop(iop)?;
    let g = crate::volume::Grid::new([1, 1, 1], [1.0; 3], nalgebra::Vector3::zeros(), dir).ok()?;
    Some(g.orientation_code())
}

fn summarise(series_uid: String, headers: &[Header]) -> SeriesSummary {
    let h0 = &headers[0];
    let frames: Vec<&header::FrameGeom> = headers
        .iter()
        .filter_map(|h| h.frames.as_ref().ok())
        .flatten()
        .collect();
    let first_geom = frames.first();
    let slice_spacing = first_geom.and_then(|g| {
        let n = stack::frame_from_iop(&g.iop)?.column(2).into_owned();
        let mut d: Vec<f64> = frames.iter().map(|f| f.ipp.dot(&n)).collect();
        d.sort_by(f64::total_cmp);
        let mut gaps: Vec<f64> = d
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|g| *g > 1e-3)
            .collect();
        if gaps.is_empty() {
            return h0.spacing_between_slices.or(h0.slice_thickness);
        }
        gaps.sort_by(f64::total_cmp);
        Some(gaps[gaps.len() / 2])
    });
    SeriesSummary {
        series_uid,
        modality: h0.modality.clone(),
        description: h0.description.clone(),
        body_part: h0.body_part.clone(),
        manufacturer: h0.manufacturer.clone(),
        files: headers.iter().map(|h| h.path.clone()).collect(),
        n_images: headers.iter().map(|h| h.n_frames as usize).sum(),
        rows: h0.rows,
        columns: h0.cols,
        pixel_spacing: first_geom.map(|g| g.pixel_spacing),
        slice_spacing,
        orientation: first_geom.and_then(|g| orientation_code(&g.iop)),
        multiframe: headers.iter().any(|h| h.multiframe),
        transfer_syntax: transfer_syntax_label(&h0.transfer_syntax),
        phi: h0.phi.clone(),
    }
}

/// Finds the DICOM image series in `paths` (files, or folders searched recursively),
/// reading headers only. Non-DICOM files, unparseable files and DICOM files without an
/// image (structured reports, presentation states, ...) are listed in [`Scan::skipped`]
/// with the reason. An error when no image series is found.
pub fn scan(paths: &[PathBuf]) -> Result<Scan> {
    let where_ = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    let files = collect_files(paths)?;
    let mut by_series: BTreeMap<String, Vec<Header>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (f, h) in files.iter().zip(read_headers(&files, "scanning DICOM")) {
        match h {
            Ok(h) => by_series.entry(h.series_uid.clone()).or_default().push(h),
            Err(why) => skipped.push((f.clone(), why)),
        }
    }
    if by_series.is_empty() {
        let what = if files.is_empty() {
            "no DICOM files found (the folder is empty)".to_string()
        } else {
            let examples: Vec<String> = skipped
                .iter()
                .take(3)
                .map(|(p, why)| format!("{}: {why}", p.display()))
                .collect();
            format!(
                "no DICOM image series found among {} file(s) (e.g. {})",
                files.len(),
                examples.join("; ")
            )
        };
        return Err(ImagingError::input(
            &where_,
            what,
            "point to the folder holding the series",
        ));
    }
    let series: Vec<SeriesSummary> = by_series
        .into_iter()
        .map(|(uid, hs)| summarise(uid, &hs))
        .collect();
    tracing::debug!(
        series = series.len(),
        skipped = skipped.len(),
        "DICOM scan done"
    );
    Ok(Scan { series, skipped })
}

/// One line per series for choosing among them (no identifying fields).
fn series_list(series: &[SeriesSummary]) -> String {
    series
        .iter()
        .map(|s| {
            format!(
                "\n  {} ({}, {:?}, {} images)",
                s.series_uid,
                s.modality.code(),
                s.description.as_deref().unwrap_or("no description"),
                s.n_images
            )
        })
        .collect()
}

/// Scans `paths` and loads one series: the one with `series_uid`, or the only one. With
/// several series and none chosen, the error lists them.
pub fn load(
    paths: &[PathBuf],
    series_uid: Option<&str>,
    opts: &LoadOptions,
) -> Result<LoadedSeries> {
    let where_ = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    let scan = scan(paths)?;
    let chosen = match series_uid {
        Some(uid) => scan
            .series
            .iter()
            .find(|s| s.series_uid == uid.trim())
            .ok_or_else(|| {
                ImagingError::input(
                    &where_,
                    format!(
                        "no series with UID {uid}; found:{}",
                        series_list(&scan.series)
                    ),
                    "pass one of the listed UIDs with --series",
                )
            })?,
        None if scan.series.len() == 1 => &scan.series[0],
        None => {
            return Err(ImagingError::input(
                &where_,
                format!(
                    "{} image series found:{}",
                    scan.series.len(),
                    series_list(&scan.series)
                ),
                "choose one by passing --series UID",
            ))
        }
    };
    load_series(chosen, opts).map_err(|e| with_unreadable_note(e, &scan.skipped))
}

/// A missing slice is often a file that could not be parsed: say so in the error.
fn with_unreadable_note(e: ImagingError, skipped: &[(PathBuf, String)]) -> ImagingError {
    let unreadable: Vec<&(PathBuf, String)> = skipped
        .iter()
        .filter(|(_, why)| why.starts_with(header::UNREADABLE))
        .collect();
    match e {
        ImagingError::Input { path, what, hint } if !unreadable.is_empty() => {
            let (p, why) = unreadable[0];
            ImagingError::Input {
                path,
                what,
                hint: format!(
                    "{hint} (note: {} file(s) in the input could not be read, e.g. {}: {why})",
                    unreadable.len(),
                    p.display()
                ),
            }
        }
        e => e,
    }
}

/// Loads the series `summary` (from [`scan`]) into a volume. See the module docs for what
/// is checked and repaired.
pub fn load_series(summary: &SeriesSummary, opts: &LoadOptions) -> Result<LoadedSeries> {
    if summary.files.is_empty() {
        return Err(ImagingError::Invalid(format!(
            "series {} lists no files",
            summary.series_uid
        )));
    }
    // Headers again (cheap): files may have changed since the scan, and here a broken
    // file of the series is an error rather than a skip.
    let mut headers = Vec::with_capacity(summary.files.len());
    for (f, h) in summary
        .files
        .iter()
        .zip(read_headers(&summary.files, "reading DICOM headers"))
    {
        let h = h.map_err(|why| {
            ImagingError::input(
                f,
                format!("belongs to the series but {why}"),
                "re-export the series, or remove the file",
            )
        })?;
        if h.series_uid != summary.series_uid {
            return Err(ImagingError::input(
                f,
                "now belongs to another series than when scanned",
                "scan the folder again",
            ));
        }
        headers.push(h);
    }
    let h0 = &headers[0];
    // Every file must share the pixel grid and orientation; report the first offender.
    let mut placed = Vec::new();
    let mut rescale = Vec::new();
    let geom0 = h0.frames.as_ref().map_err(|why| {
        ImagingError::input(
            &h0.path,
            why.clone(),
            "remove the file if it is not part of the volume (e.g. a localizer), or re-export the series",
        )
    })?[0]
        .clone();
    for h in &headers {
        pixels::check_decodable(h)?;
        let frames = h.frames.as_ref().map_err(|why| {
            ImagingError::input(
                &h.path,
                why.clone(),
                "remove the file if it is not part of the volume (e.g. a localizer), or re-export the series",
            )
        })?;
        if (h.rows, h.cols) != (h0.rows, h0.cols) {
            return Err(ImagingError::input(
                &h.path,
                format!(
                    "image size {}x{} (columns x rows) differs from {}x{} in {}",
                    h.cols,
                    h.rows,
                    h0.cols,
                    h0.rows,
                    h0.path.display()
                ),
                "the series mixes different images (e.g. a localizer); remove the odd files",
            ));
        }
        if (h.bits_allocated, h.signed) != (h0.bits_allocated, h0.signed) {
            return Err(ImagingError::input(
                &h.path,
                "pixel format (BitsAllocated, PixelRepresentation) differs from the rest of the series",
                "re-export the series",
            ));
        }
        for (f, g) in frames.iter().enumerate() {
            if g.iop
                .iter()
                .zip(geom0.iop.iter())
                .any(|(a, b)| (a - b).abs() > 1e-3)
            {
                return Err(ImagingError::input(
                    &h.path,
                    format!(
                        "ImageOrientationPatient {:?} differs from {:?} in {}",
                        g.iop,
                        geom0.iop,
                        h0.path.display()
                    ),
                    "the series mixes orientations (e.g. a localizer or a reformat); remove the odd files",
                ));
            }
            if g.pixel_spacing
                .iter()
                .zip(geom0.pixel_spacing.iter())
                .any(|(a, b)| (a - b).abs() > 1e-4 * b.max(1.0))
            {
                return Err(ImagingError::input(
                    &h.path,
                    format!(
                        "PixelSpacing {:?} differs from {:?} in {}",
                        g.pixel_spacing,
                        geom0.pixel_spacing,
                        h0.path.display()
                    ),
                    "the series mixes reconstructions; remove the odd files",
                ));
            }
            placed.push(stack::Placed {
                path: &h.path,
                frame: h.multiframe.then_some(f),
                ipp: g.ipp,
            });
            rescale.push((g.slope, g.intercept));
        }
    }
    let plan = stack::plan(
        &placed,
        &geom0.iop,
        geom0.pixel_spacing,
        [h0.cols as usize, h0.rows as usize],
        h0.spacing_between_slices.or(h0.slice_thickness),
        opts,
    )?;
    // Image index -> (file index, frame): in the order `placed` was built.
    let mut owner = Vec::with_capacity(placed.len());
    for (fi, h) in headers.iter().enumerate() {
        let n = h.frames.as_ref().map_or(0, |f| f.len());
        owner.extend((0..n).map(|f| (fi, f)));
    }
    drop(placed);

    let plane = h0.rows as usize * h0.cols as usize;
    let mut data = vec![0f32; plane * plan.order.len()];
    {
        // Hand each file the output slices of its frames, then read files in parallel.
        let mut per_file: Vec<Vec<pixels::FrameTarget<'_>>> =
            headers.iter().map(|_| Vec::new()).collect();
        for (slot, &img) in data.chunks_mut(plane).zip(plan.order.iter()) {
            let (fi, frame) = owner[img];
            let (slope, intercept) = rescale[img];
            per_file[fi].push(pixels::FrameTarget {
                frame,
                slope,
                intercept,
                out: slot,
            });
        }
        let pb = spinetwin_core::progress::bar(headers.len() as u64, "reading DICOM");
        let res: Result<()> = headers
            .par_iter()
            .zip(per_file.into_par_iter())
            .try_for_each(|(h, targets)| {
                let r = pixels::read_frames(h, targets);
                pb.inc(1);
                r
            });
        pb.finish_and_clear();
        res?;
    }
    let mut warnings = plan.warnings;
    let volume = match &plan.restack {
        None => Volume::new(plan.grid, data)?,
        Some(rs) => {
            let fill = data
                .iter()
                .copied()
                .filter(|v| !v.is_nan())
                .fold(f32::INFINITY, f32::min);
            let fill = if fill.is_finite() { fill } else { 0.0 };
            let out = rs.apply(&data, &plan.grid, fill);
            drop(data);
            Volume::new(plan.grid, out)?
        }
    };
    match &summary.modality {
        Modality::Ct => {}
        Modality::Mr => warnings.push(
            "MR series: voxel values are scanner signal intensities, not HU; HU-based \
             thresholds (bone, air) do not apply"
                .into(),
        ),
        Modality::Other(code) => warnings.push(format!(
            "modality {code}: voxel values are not HU; HU-based thresholds do not apply"
        )),
    }
    for w in &warnings {
        tracing::warn!(series = %summary.series_uid, "{w}");
    }
    tracing::info!(
        series = %summary.series_uid,
        dims = ?volume.dims(),
        spacing = ?volume.grid().spacing,
        "DICOM series loaded"
    );
    Ok(LoadedSeries {
        volume,
        summary: summary.clone(),
        warnings,
    })
}
