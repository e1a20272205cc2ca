//! `spinetwin inspect`: what a path holds, without identifying fields unless asked.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spinetwin_imaging::dicom::{self, LoadOptions, SeriesSummary};
use spinetwin_imaging::{is_nifti_path, nifti, Modality, Volume};
use std::path::{Path, PathBuf};

/// Arguments of `spinetwin inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DICOM folder (searched recursively), DICOM file(s), or a NIfTI file (.nii, .nii.gz).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print one JSON object per series (one per line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print identifying fields (patient name, ID, birth date, ...). Off by default.
    #[arg(long)]
    pub show_phi: bool,
    /// Only describe the headers; do not read voxel data (no value range).
    #[arg(long)]
    pub headers_only: bool,
}

const GEOMETRY_UNITS: &str = "mm, LPS";

/// What `inspect` reports for one series or file.
#[derive(Debug, Serialize)]
pub struct Report {
    /// "dicom" or "nifti".
    pub kind: &'static str,
    /// The file (NIfTI) or the first file of the series (DICOM).
    pub path: PathBuf,
    /// DICOM SeriesInstanceUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_uid: Option<String>,
    /// CT, MR, ... ("unknown" for NIfTI).
    pub modality: String,
    /// Series description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Body part examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    /// Number of files (DICOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<usize>,
    /// Transfer syntax (DICOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<String>,
    /// Units and frame of the geometry fields: always "mm, LPS" (NIfTI converted from RAS).
    pub geometry_units: &'static str,
    /// Voxels along i, j, k.
    pub dims: Option<[usize; 3]>,
    /// Voxel size in mm along i, j, k.
    pub spacing: Option<[f64; 3]>,
    /// LPS position (mm) of the first voxel's centre.
    pub origin: Option<[f64; 3]>,
    /// Direction cosines: the LPS unit vectors of the i, j and k axes.
    pub direction: Option<[[f64; 3]; 3]>,
    /// Axis letters, e.g. "LPS".
    pub orientation: Option<String>,
    /// Smallest value (HU for CT).
    pub min: Option<f64>,
    /// Largest value (HU for CT).
    pub max: Option<f64>,
    /// True when values are Hounsfield units.
    pub hounsfield: bool,
    /// Warnings from loading.
    pub warnings: Vec<String>,
    /// Identifying fields, only with --show-phi.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phi: Option<serde_json::Value>,
}

fn fill_geometry<T: spinetwin_imaging::Voxel>(r: &mut Report, v: &Volume<T>, with_range: bool) {
    let g = v.grid();
    r.dims = Some(g.dims);
    r.spacing = Some(g.spacing);
    r.origin = Some([g.origin.x, g.origin.y, g.origin.z]);
    r.direction = Some([0, 1, 2].map(|c| {
        let col = g.direction.column(c);
        [col[0], col[1], col[2]]
    }));
    r.orientation = Some(g.orientation_code());
    if with_range {
        let (lo, hi) = v.min_max();
        r.min = Some(lo);
        r.max = Some(hi);
    }
}

fn inspect_nifti(path: &Path, args: &Args) -> Result<Report> {
    let h = nifti::read_header_summary(path)?;
    let mut r = Report {
        kind: "nifti",
        path: path.to_path_buf(),
        series_uid: None,
        modality: "unknown".into(),
        description: (!h.description.is_empty()).then(|| h.description.clone()),
        body_part: None,
        files: None,
        transfer_syntax: None,
        geometry_units: GEOMETRY_UNITS,
        dims: None,
        spacing: None,
        origin: None,
        direction: None,
        orientation: None,
        min: None,
        max: None,
        hounsfield: false,
        warnings: vec![],
        phi: None,
    };
    if args.headers_only {
        let d = |a: usize| h.dims.get(a).copied().unwrap_or(1);
        r.dims = Some([d(0), d(1), d(2)]);
        r.spacing = Some([1, 2, 3].map(|a| h.pixdim[a] as f64));
        r.orientation = h.orientation.clone();
        return Ok(r);
    }
    let v = nifti::read_volume(path)?;
    fill_geometry(&mut r, &v, true);
    let m = spinetwin_imaging::guess_nifti_modality(&v);
    // Report what `imaging::open` will treat the file as, and say it was inferred.
    r.modality = m.code().to_string();
    r.hounsfield = m == Modality::Ct;
    if r.hounsfield {
        r.warnings.push(
            "NIfTI carries no modality; values look like CT Hounsfield units, so it is treated as CT"
                .into(),
        );
    }
    Ok(r)
}

fn inspect_series(s: &SeriesSummary, args: &Args) -> Report {
    let mut r = Report {
        kind: "dicom",
        path: s.files.first().cloned().unwrap_or_default(),
        series_uid: Some(s.series_uid.clone()),
        modality: s.modality.code().to_string(),
        description: s.description.clone(),
        body_part: s.body_part.clone(),
        files: Some(s.files.len()),
        transfer_syntax: Some(s.transfer_syntax.clone()),
        geometry_units: GEOMETRY_UNITS,
        dims: Some([s.columns as usize, s.rows as usize, s.n_images]),
        spacing: None,
        origin: None,
        direction: None,
        orientation: s.orientation.clone(),
        min: None,
        max: None,
        hounsfield: s.modality.is_hounsfield(),
        warnings: vec![],
        phi: args.show_phi.then(|| s.phi.to_json_revealed()),
    };
    if !args.headers_only {
        match dicom::load_series(s, &LoadOptions::default()) {
            Ok(l) => {
                fill_geometry(&mut r, &l.volume, true);
                r.warnings = l.warnings;
            }
            Err(e) => r.warnings.push(format!("series could not be loaded: {e}")),
        }
    }
    r
}

/// Runs `spinetwin inspect`.
pub fn run(args: Args) -> Result<()> {
    let mut reports = Vec::new();
    let (nifti_paths, dicom_paths): (Vec<_>, Vec<_>) =
        args.paths.iter().cloned().partition(|p| is_nifti_path(p));
    for p in &nifti_paths {
        reports.push(inspect_nifti(p, &args)?);
    }
    let mut skipped = Vec::new();
    if !dicom_paths.is_empty() {
        // A folder may also hold NIfTI files (e.g. a phantom output folder): describe those too.
        let mut folder_nifti = Vec::new();
        for p in dicom_paths.iter().filter(|p| p.is_dir()) {
            collect_nifti(p, &mut folder_nifti)
                .with_context(|| format!("{}: cannot list the folder", p.display()))?;
        }
        folder_nifti.sort();
        match dicom::scan(&dicom_paths) {
            Ok(scan) => {
                for s in &scan.series {
                    reports.push(inspect_series(s, &args));
                }
                skipped = scan
                    .skipped
                    .into_iter()
                    .filter(|(p, _)| !is_nifti_path(p))
                    .collect();
            }
            Err(e) if !folder_nifti.is_empty() => {
                tracing::info!("no DICOM found: {e}");
            }
            Err(e) => return Err(e.into()),
        }
        for p in &folder_nifti {
            reports.push(inspect_nifti(p, &args)?);
        }
    }
    if reports.is_empty() {
        bail!("nothing to inspect: no DICOM series or NIfTI file found in the given paths");
    }
    if args.json {
        for r in &reports {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        for r in &reports {
            print_text(r);
        }
        if !skipped.is_empty() {
            println!("{} file(s) skipped (not usable DICOM):", skipped.len());
            for (p, why) in skipped.iter().take(10) {
                println!("  {}: {why}", p.display());
            }
            if skipped.len() > 10 {
                println!("  ... and {} more", skipped.len() - 10);
            }
        }
    }
    Ok(())
}

fn collect_nifti(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue; // hidden files and atomic-write temporaries
        }
        let p = e.path();
        // Symlinked folders are not followed: a link loop would recurse forever.
        if e.file_type()?.is_dir() {
            collect_nifti(&p, out)?;
        } else if is_nifti_path(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn fmt3(v: [f64; 3], prec: usize) -> String {
    format!("{:.p$} x {:.p$} x {:.p$}", v[0], v[1], v[2], p = prec)
}

fn print_text(r: &Report) {
    match &r.series_uid {
        Some(uid) => println!("DICOM series {uid}"),
        None => println!("NIfTI {}", r.path.display()),
    }
    println!("  modality      {}", r.modality);
    if let Some(d) = &r.description {
        println!("  description   {d}");
    }
    if let Some(b) = &r.body_part {
        println!("  body part     {b}");
    }
    if let Some(n) = r.files {
        println!("  files         {n} (first: {})", r.path.display());
    }
    if let Some(ts) = &r.transfer_syntax {
        println!("  transfer      {ts}");
    }
    if let Some(d) = r.dims {
        println!("  voxels        {} x {} x {}", d[0], d[1], d[2]);
    }
    if let Some(s) = r.spacing {
        println!("  spacing (mm)  {}", fmt3(s, 3));
    }
    if let Some(o) = r.origin {
        println!("  origin (LPS)  {}", fmt3(o, 1));
    }
    if let Some(o) = &r.orientation {
        println!("  orientation   {o}");
    }
    if let (Some(lo), Some(hi)) = (r.min, r.max) {
        let unit = if r.hounsfield { " HU" } else { "" };
        println!("  value range   {lo:.0} .. {hi:.0}{unit}");
    }
    if let Some(phi) = &r.phi {
        println!("  identifying   {phi}");
    }
    for w in &r.warnings {
        println!("  warning       {w}");
    }
}
