//! NIfTI-1 import and export (`.nii` and `.nii.gz`), built on the `nifti` crate.
//!
//! # Coordinates: RAS here, LPS everywhere else
//!
//! NIfTI world coordinates are **RAS** (+x towards the patient's right, +y anterior,
//! +z superior), while spinetwin uses DICOM **LPS** (+x left, +y posterior, +z superior).
//! A point with NIfTI world coordinates `(x, y, z)` therefore has LPS coordinates
//! `(-x, -y, z)`. This module is the **only** place in spinetwin where that conversion
//! happens: on reading, the first two rows of the file's index->RAS affine are negated to
//! give the index->LPS affine of the [`Grid`]; on writing, the grid's index->LPS affine has
//! its first two rows negated before it goes into the header.
//!
//! # Which transform is used when reading
//!
//! Following the NIfTI-1 standard's precedence (the same as ITK, nibabel and FSL use):
//! the sform (`srow_*`) when `sform_code > 0`, else the qform (quaternion, `qoffset_*` and
//! `qfac = pixdim[0]`) when `qform_code > 0`, else the ANALYZE-style fallback
//! `diag(pixdim[1..4])` with the origin at zero. The choice is reported in
//! [`NiftiSummary::geometry`]. Spatial units in metres or microns are converted to mm.
//!
//! # What is written
//!
//! Both the sform and the qform are set from the grid, with code 1 (`NIFTI_XFORM_SCANNER_ANAT`):
//! spinetwin geometry comes from the scanner's patient coordinates (DICOM), not from a
//! registration to another image, so "scanner anatomical" is the honest code. `pixdim[1..4]`
//! holds the spacing, `pixdim[0]` the qform handedness, `xyzt_units` says mm. Files are
//! written atomically (see [`spinetwin_core::atomic`]).

use crate::error::{ImagingError, Result};
use crate::volume::{Grid, Volume};
use nalgebra::{Matrix3, Matrix4, Vector3};
use nifti::{InMemNiftiObject, NiftiHeader, NiftiObject, NiftiType};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Voxel data type for [`write_volume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NiftiDtype {
    /// Signed 16-bit integers (CT in HU). Values are rounded; out-of-range values are an error.
    Int16,
    /// 32-bit floats, written exactly.
    Float32,
    /// Unsigned 8-bit integers. Values are rounded; out-of-range values are an error.
    Uint8,
    /// Unsigned 16-bit integers. Values are rounded; out-of-range values are an error.
    Uint16,
}

/// Which header transform defined the geometry of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometrySource {
    /// The sform (`srow_x/y/z`), used because `sform_code > 0`.
    Sform,
    /// The qform (quaternion), used because `sform_code == 0` and `qform_code > 0`.
    Qform,
    /// Neither code is set: spacing only, origin at zero (ANALYZE 7.5 method).
    Fallback,
}

/// What `inspect` shows about a NIfTI file, read from the header alone.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiSummary {
    /// `dim[1..=dim[0]]`.
    pub dims: Vec<usize>,
    /// `pixdim[0..8]` as stored (`pixdim[0]` is the qform handedness).
    pub pixdim: [f32; 8],
    /// The datatype name (e.g. "int16"), or "unknown code N".
    pub datatype: String,
    /// `qform_code`.
    pub qform_code: i16,
    /// `sform_code`.
    pub sform_code: i16,
    /// Which transform defines the geometry.
    pub geometry: GeometrySource,
    /// The LPS orientation code of the voxel axes (e.g. "PIR"), or `None` when the header
    /// does not describe a valid 3-D grid (sheared or degenerate affine).
    pub orientation: Option<String>,
    /// `scl_slope` and `scl_inter` as stored.
    pub scaling: (f32, f32),
    /// The `descrip` field (up to 80 characters), trimmed.
    pub description: String,
}

const HINT_NOT_NIFTI: &str = "give a NIfTI-1 file (.nii or .nii.gz)";

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Opens `path` for reading, transparently gunzipping it when it starts with the gzip magic
/// (the extension is not trusted: `.nii` files are sometimes compressed and vice versa).
fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = File::open(path).map_err(|e| ImagingError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut f, &mut magic).map_err(|e| ImagingError::io(path, e))?;
    // Re-open instead of seeking so that the reader starts at byte 0 either way.
    let f = File::open(path).map_err(|e| ImagingError::io(path, e))?;
    let r = BufReader::new(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            r,
        ))))
    } else {
        Ok(Box::new(r))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Turns an error of the `nifti` crate into one that names the file and says what to do.
fn nifti_err(path: &Path, e: nifti::NiftiError) -> ImagingError {
    use nifti::NiftiError as E;
    match e {
        E::InvalidFormat => ImagingError::input(
            path,
            "not a NIfTI-1 file (bad magic code)",
            HINT_NOT_NIFTI,
        ),
        E::NoVolumeData => ImagingError::input(
            path,
            "is a header-only NIfTI (.hdr/.img pair), which is not supported",
            "convert it to a single .nii or .nii.gz file",
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => ImagingError::input(
            path,
            "the file ends early (truncated or incomplete download)",
            "copy or download the file again",
        ),
        E::Io(io) => ImagingError::input(
            path,
            format!("cannot be decoded ({io})"),
            "check that the file is a complete NIfTI-1 (.nii or .nii.gz) file",
        ),
        E::IncompatibleLength(got, want) => ImagingError::input(
            path,
            format!("holds {got} bytes of voxel data but its header announces {want}: the file is truncated"),
            "copy or download the file again",
        ),
        other => ImagingError::input(
            path,
            format!("invalid NIfTI-1 content ({other})"),
            "check the file with another NIfTI tool or export it again",
        ),
    }
}

/// Reads and sanity-checks the header (not the voxel data).
fn read_header(path: &Path) -> Result<NiftiHeader> {
    // NIfTI-2 starts with sizeof_hdr = 540; say so instead of "bad magic".
    let mut first = [0u8; 4];
    let n =
        read_up_to(&mut open_maybe_gz(path)?, &mut first).map_err(|e| nifti_err(path, e.into()))?;
    if n == 4 && (i32::from_le_bytes(first) == 540 || i32::from_be_bytes(first) == 540) {
        return Err(ImagingError::input(
            path,
            "is a NIfTI-2 file, which is not supported",
            "convert it to NIfTI-1 (e.g. nibabel: nib.Nifti1Image(img.dataobj, img.affine))",
        ));
    }
    let r = open_maybe_gz(path)?;
    let h = NiftiHeader::from_reader(r).map_err(|e| nifti_err(path, e))?;
    check_header(path, &h)?;
    Ok(h)
}

fn check_header(path: &Path, h: &NiftiHeader) -> Result<()> {
    if h.sizeof_hdr != 348 {
        return Err(ImagingError::input(
            path,
            format!(
                "not a NIfTI-1 file (header size field is {}, expected 348)",
                h.sizeof_hdr
            ),
            HINT_NOT_NIFTI,
        ));
    }
    h.dim().map_err(|e| nifti_err(path, e))?;
    Ok(())
}

/// The 3-D dimensions; an error for a real 4-D (or higher) image.
fn spatial_dims(path: &Path, h: &NiftiHeader) -> Result<[usize; 3]> {
    let d = h.dim().map_err(|e| nifti_err(path, e))?;
    let get = |a: usize| d.get(a).map_or(1, |&v| v as usize);
    let extra: usize = d.iter().skip(3).map(|&v| v as usize).product();
    if extra != 1 {
        return Err(ImagingError::input(
            path,
            format!(
                "is a {}-D image with {extra} volumes (dims {d:?}); only 3-D images are supported",
                d.len()
            ),
            "extract one 3-D volume first (e.g. with fslroi or nibabel)",
        ));
    }
    Ok([get(0), get(1), get(2)])
}

fn spatial_scale_to_mm(h: &NiftiHeader) -> f64 {
    match h.xyzt_units & 0x07 {
        1 => 1000.0, // metres
        3 => 0.001,  // microns
        _ => 1.0,    // mm, or unknown: mm is what every medical tool assumes
    }
}

/// The index -> RAS affine of the header (mm) and which transform defined it.
fn ras_affine(h: &NiftiHeader) -> (Matrix4<f64>, GeometrySource) {
    let mut m = Matrix4::identity();
    let src = if h.sform_code > 0 {
        for (r, row) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
            for c in 0..4 {
                m[(r, c)] = row[c] as f64;
            }
        }
        GeometrySource::Sform
    } else if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        // The header stores only b, c, d of a unit quaternion; a follows (clamped against
        // rounding that makes 1 - b^2 - c^2 - d^2 slightly negative).
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let rot = Matrix3::new(
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - b * b - c * c,
        );
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let sp = [
            (h.pixdim[1] as f64).abs(),
            (h.pixdim[2] as f64).abs(),
            (h.pixdim[3] as f64).abs() * qfac,
        ];
        for col in 0..3 {
            for row in 0..3 {
                m[(row, col)] = rot[(row, col)] * sp[col];
            }
        }
        m[(0, 3)] = h.quatern_x as f64;
        m[(1, 3)] = h.quatern_y as f64;
        m[(2, 3)] = h.quatern_z as f64;
        GeometrySource::Qform
    } else {
        for a in 0..3 {
            m[(a, a)] = (h.pixdim[a + 1] as f64).abs();
        }
        GeometrySource::Fallback
    };
    let s = spatial_scale_to_mm(h);
    if s != 1.0 {
        let mut top = m.fixed_view_mut::<3, 4>(0, 0);
        top *= s;
    }
    (m, src)
}

/// RAS <-> LPS: negate the first two rows (the transform is its own inverse).
fn flip_xy(m: &Matrix4<f64>) -> Matrix4<f64> {
    Matrix4::from_diagonal(&nalgebra::Vector4::new(-1.0, -1.0, 1.0, 1.0)) * m
}

fn grid_of(path: &Path, h: &NiftiHeader) -> Result<(Grid, GeometrySource)> {
    let dims = spatial_dims(path, h)?;
    let (ras, src) = ras_affine(h);
    let lps = flip_xy(&ras);
    if lps.iter().any(|v| !v.is_finite()) {
        return Err(ImagingError::input(
            path,
            "the header's spatial transform contains NaN or infinite numbers",
            "fix the header (e.g. with nibabel) or export the image again",
        ));
    }
    let grid = Grid::from_affine(dims, &lps).map_err(|e| {
        ImagingError::input(
            path,
            format!("unusable geometry from the {src:?} transform: {e}"),
            "resample the image onto an orthogonal grid first",
        )
    })?;
    Ok((grid, src))
}

/// Reads the whole file and returns the grid and the scaled voxel values (f64).
fn read_scaled(path: &Path) -> Result<(Grid, Vec<f64>)> {
    // The header first: cheap checks before the voxel buffer is allocated.
    let h = read_header(path)?;
    let (grid, _) = grid_of(path, &h)?;
    let dt = h.data_type().map_err(|_| {
        ImagingError::input(
            path,
            format!("unknown NIfTI datatype code {}", h.datatype),
            "convert the image to a standard integer or float type",
        )
    })?;
    if h.bitpix as usize != dt.size_of() * 8 {
        return Err(ImagingError::input(
            path,
            format!(
                "inconsistent header: bitpix {} does not match datatype {dt:?}",
                h.bitpix
            ),
            "fix the header or export the image again",
        ));
    }
    let obj =
        InMemNiftiObject::from_reader(open_maybe_gz(path)?).map_err(|e| nifti_err(path, e))?;
    let (slope, inter) = (h.scl_slope as f64, h.scl_inter as f64);
    let vol = obj.into_volume();
    let e = |e| nifti_err(path, e);
    let mut v: Vec<f64> = match dt {
        NiftiType::Uint8 => conv(vol.into_nifti_typed_data::<u8>().map_err(e)?),
        NiftiType::Int8 => conv(vol.into_nifti_typed_data::<i8>().map_err(e)?),
        NiftiType::Uint16 => conv(vol.into_nifti_typed_data::<u16>().map_err(e)?),
        NiftiType::Int16 => conv(vol.into_nifti_typed_data::<i16>().map_err(e)?),
        NiftiType::Uint32 => conv(vol.into_nifti_typed_data::<u32>().map_err(e)?),
        NiftiType::Int32 => conv(vol.into_nifti_typed_data::<i32>().map_err(e)?),
        NiftiType::Uint64 => vol
            .into_nifti_typed_data::<u64>()
            .map_err(e)?
            .into_iter()
            .map(|x| x as f64)
            .collect(),
        NiftiType::Int64 => vol
            .into_nifti_typed_data::<i64>()
            .map_err(e)?
            .into_iter()
            .map(|x| x as f64)
            .collect(),
        NiftiType::Float32 => conv(vol.into_nifti_typed_data::<f32>().map_err(e)?),
        NiftiType::Float64 => vol.into_nifti_typed_data::<f64>().map_err(e)?,
        other => {
            return Err(ImagingError::input(
                path,
                format!("voxel type {other:?} is not a scalar number"),
                "convert the image to a scalar integer or float type",
            ))
        }
    };
    if v.len() != grid.len() {
        return Err(ImagingError::input(
            path,
            format!(
                "holds {} voxels but its dimensions {:?} need {}",
                v.len(),
                grid.dims,
                grid.len()
            ),
            "copy or download the file again",
        ));
    }
    // NIfTI-1: scaling applies only when scl_slope is non-zero (0 means "no scaling").
    if slope != 0.0 && slope.is_finite() && inter.is_finite() && (slope != 1.0 || inter != 0.0) {
        for x in &mut v {
            *x = *x * slope + inter;
        }
    }
    Ok((grid, v))
}

fn conv<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
    v.into_iter().map(Into::into).collect()
}

/// Reads a scalar 3-D image (any integer or float datatype) as `f32`, with
/// `scl_slope`/`scl_inter` applied when the slope is non-zero. Geometry is converted to LPS
/// (see the module docs). A 4-D file with a single volume is accepted.
pub fn read_volume(path: &Path) -> Result<Volume<f32>> {
    let (grid, v) = read_scaled(path)?;
    Volume::new(grid, v.into_iter().map(|x| x as f32).collect())
}

/// Reads an integer label map. Values (after scaling) must be whole numbers in 0..=65535;
/// otherwise an error names the file and the first offending value.
pub fn read_labels(path: &Path) -> Result<Volume<u16>> {
    let (grid, v) = read_scaled(path)?;
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        if !(x.is_finite() && (0.0..=65535.0).contains(&x) && x.fract() == 0.0) {
            return Err(ImagingError::input(
                path,
                format!("is not a label map: it contains the value {x} (labels must be whole numbers from 0 to 65535)"),
                "give a segmentation (integer label) image, not an intensity image",
            ));
        }
        out.push(x as u16);
    }
    Volume::new(grid, out)
}

/// Summarises the header of a NIfTI file without reading the voxel data.
pub fn read_header_summary(path: &Path) -> Result<NiftiSummary> {
    let h = read_header(path)?;
    let dims = h
        .dim()
        .map_err(|e| nifti_err(path, e))?
        .iter()
        .map(|&d| d as usize)
        .collect();
    let datatype = match h.data_type() {
        Ok(t) => dtype_name(t),
        Err(_) => format!("unknown code {}", h.datatype),
    };
    let (orientation, geometry) = match grid_of(path, &h) {
        Ok((g, src)) => (Some(g.orientation_code()), src),
        Err(_) => (None, ras_affine(&h).1),
    };
    let description = String::from_utf8_lossy(&h.descrip)
        .trim_end_matches('\0')
        .trim()
        .to_string();
    Ok(NiftiSummary {
        dims,
        pixdim: h.pixdim,
        datatype,
        qform_code: h.qform_code,
        sform_code: h.sform_code,
        geometry,
        orientation,
        scaling: (h.scl_slope, h.scl_inter),
        description,
    })
}

fn dtype_name(t: NiftiType) -> String {
    match t {
        NiftiType::Uint8 => "uint8",
        NiftiType::Int8 => "int8",
        NiftiType::Uint16 => "uint16",
        NiftiType::Int16 => "int16",
        NiftiType::Uint32 => "uint32",
        NiftiType::Int32 => "int32",
        NiftiType::Uint64 => "uint64",
        NiftiType::Int64 => "int64",
        NiftiType::Float32 => "float32",
        NiftiType::Float64 => "float64",
        other => return format!("{other:?}").to_lowercase(),
    }
    .to_string()
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// True for `.nii.gz`, false for `.nii`; an error for anything else.
fn output_kind(path: &Path) -> Result<bool> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".nii.gz") {
        Ok(true)
    } else if name.ends_with(".nii") {
        Ok(false)
    } else {
        Err(ImagingError::input(
            path,
            "the output name must end in .nii or .nii.gz",
            "choose a name like image.nii.gz",
        ))
    }
}

/// Unit quaternion (b, c, d) and qfac of a 3x3 matrix with orthonormal columns (RAS).
/// A left-handed frame gets qfac = -1 with its third column negated, as NIfTI-1 prescribes.
fn quaternion_of(dir: &Matrix3<f64>) -> ([f64; 3], f64) {
    let mut r = *dir;
    let qfac = if r.determinant() < 0.0 {
        let c = -r.column(2);
        r.set_column(2, &c);
        -1.0
    } else {
        1.0
    };
    // Shepperd's method: pick the largest of the four candidates for numerical stability.
    let tr = r[(0, 0)] + r[(1, 1)] + r[(2, 2)];
    let (a, b, c, d);
    if tr > 0.0 {
        let s = (tr + 1.0).sqrt() * 2.0;
        a = 0.25 * s;
        b = (r[(2, 1)] - r[(1, 2)]) / s;
        c = (r[(0, 2)] - r[(2, 0)]) / s;
        d = (r[(1, 0)] - r[(0, 1)]) / s;
    } else if r[(0, 0)] > r[(1, 1)] && r[(0, 0)] > r[(2, 2)] {
        let s = (1.0 + r[(0, 0)] - r[(1, 1)] - r[(2, 2)]).sqrt() * 2.0;
        a = (r[(2, 1)] - r[(1, 2)]) / s;
        b = 0.25 * s;
        c = (r[(0, 1)] + r[(1, 0)]) / s;
        d = (r[(0, 2)] + r[(2, 0)]) / s;
    } else if r[(1, 1)] > r[(2, 2)] {
        let s = (1.0 + r[(1, 1)] - r[(0, 0)] - r[(2, 2)]).sqrt() * 2.0;
        a = (r[(0, 2)] - r[(2, 0)]) / s;
        b = (r[(0, 1)] + r[(1, 0)]) / s;
        c = 0.25 * s;
        d = (r[(1, 2)] + r[(2, 1)]) / s;
    } else {
        let s = (1.0 + r[(2, 2)] - r[(0, 0)] - r[(1, 1)]).sqrt() * 2.0;
        a = (r[(1, 0)] - r[(0, 1)]) / s;
        b = (r[(0, 2)] + r[(2, 0)]) / s;
        c = (r[(1, 2)] + r[(2, 1)]) / s;
        d = 0.25 * s;
    }
    // The header stores b, c, d and assumes a >= 0; q and -q are the same rotation.
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    ([b * sign, c * sign, d * sign], qfac)
}

/// The header for `grid`: sform and qform (code 1, scanner anatomical), pixdim, units.
fn header_for(grid: &Grid) -> NiftiHeader {
    let ras = flip_xy(&grid.affine());
    let ras_dir = Matrix3::from_diagonal(&Vector3::new(-1.0, -1.0, 1.0)) * grid.direction;
    let ([b, c, d], qfac) = quaternion_of(&ras_dir);
    let row = |r: usize| {
        [
            ras[(r, 0)] as f32,
            ras[(r, 1)] as f32,
            ras[(r, 2)] as f32,
            ras[(r, 3)] as f32,
        ]
    };
    let mut descrip = b"spinetwin".to_vec();
    descrip.resize(80, 0);
    NiftiHeader {
        pixdim: [
            qfac as f32,
            grid.spacing[0] as f32,
            grid.spacing[1] as f32,
            grid.spacing[2] as f32,
            1.0,
            1.0,
            1.0,
            1.0,
        ],
        xyzt_units: 2, // NIFTI_UNITS_MM (no time axis)
        qform_code: 1,
        sform_code: 1,
        quatern_b: b as f32,
        quatern_c: c as f32,
        quatern_d: d as f32,
        quatern_x: ras[(0, 3)] as f32,
        quatern_y: ras[(1, 3)] as f32,
        quatern_z: ras[(2, 3)] as f32,
        srow_x: row(0),
        srow_y: row(1),
        srow_z: row(2),
        descrip,
        ..NiftiHeader::default()
    }
}

/// Voxels of one of the datatypes spinetwin writes, in storage order (i fastest).
enum Typed {
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    F32(Vec<f32>),
}

/// Writes typed voxels through the `nifti` crate into a private temporary file, then copies
/// that file atomically to `path` (the crate itself writes in place, non-atomically).
fn write_typed(path: &Path, grid: &Grid, data: Typed) -> Result<()> {
    use ndarray::ShapeBuilder;
    let gz = output_kind(path)?;
    let header = header_for(grid);
    let werr = |source: std::io::Error| {
        ImagingError::Write(spinetwin_core::atomic::WriteError {
            path: path.to_path_buf(),
            source,
        })
    };
    let tmp = tempfile::tempdir().map_err(werr)?;
    let tmp_file = tmp.path().join(if gz { "out.nii.gz" } else { "out.nii" });
    let opts = nifti::writer::WriterOptions::new(&tmp_file).reference_header(&header);
    // Storage order is i fastest, i.e. the Fortran order of an (nx, ny, nz) array, which is
    // what the nifti crate expects.
    let shape = (grid.dims[0], grid.dims[1], grid.dims[2]).f();
    macro_rules! write_arr {
        ($v:expr) => {{
            let arr = ndarray::Array3::from_shape_vec(shape, $v).map_err(|e| {
                ImagingError::Invalid(format!("voxel buffer does not fit the grid: {e}"))
            })?;
            opts.write_nifti(&arr)
        }};
    }
    let written = match data {
        Typed::U8(v) => write_arr!(v),
        Typed::I16(v) => write_arr!(v),
        Typed::U16(v) => write_arr!(v),
        Typed::F32(v) => write_arr!(v),
    };
    written.map_err(|e| werr(std::io::Error::other(e.to_string())))?;
    spinetwin_core::atomic::write_file(path, |w| {
        let mut f = File::open(&tmp_file)?;
        std::io::copy(&mut f, w).map(|_| ())
    })?;
    Ok(())
}

/// Rounds `v` to an integer type, failing (naming `path`) when a value is NaN or out of range.
fn to_int<T: TryFrom<i64>>(path: &Path, v: &[f32], name: &str, lo: f64, hi: f64) -> Result<Vec<T>> {
    v.iter()
        .map(|&x| {
            let r = (x as f64).round();
            if !(r >= lo && r <= hi) {
                return Err(ImagingError::input(
                    path,
                    format!("cannot store the value {x} as {name} (range {lo}..{hi})"),
                    "write as float32, or clamp/rescale the values first",
                ));
            }
            T::try_from(r as i64)
                .map_err(|_| ImagingError::Invalid(format!("value {r} does not fit {name}")))
        })
        .collect()
}

/// Writes `vol` as `.nii` or `.nii.gz` (chosen by the extension of `path`) with the given
/// datatype. Integer datatypes round each value to the nearest integer and fail, writing
/// nothing, when a value is NaN or outside the type's range. The file appears atomically.
pub fn write_volume(path: &Path, vol: &Volume<f32>, dtype: NiftiDtype) -> Result<()> {
    let grid = vol.grid();
    match dtype {
        NiftiDtype::Float32 => write_typed(path, grid, Typed::F32(vol.data().to_vec())),
        NiftiDtype::Int16 => {
            let d = to_int(path, vol.data(), "int16", -32768.0, 32767.0)?;
            write_typed(path, grid, Typed::I16(d))
        }
        NiftiDtype::Uint8 => {
            let d = to_int(path, vol.data(), "uint8", 0.0, 255.0)?;
            write_typed(path, grid, Typed::U8(d))
        }
        NiftiDtype::Uint16 => {
            let d = to_int(path, vol.data(), "uint16", 0.0, 65535.0)?;
            write_typed(path, grid, Typed::U16(d))
        }
    }
}

/// Writes a label map: uint8 when every label is <= 255 (smaller files, what most viewers
/// expect for segmentations), else uint16. The file appears atomically.
pub fn write_labels(path: &Path, labels: &Volume<u16>) -> Result<()> {
    let max = labels.data().iter().copied().max().unwrap_or(0);
    if max <= 255 {
        let d = labels.data().iter().map(|&x| x as u8).collect();
        write_typed(path, labels.grid(), Typed::U8(d))
    } else {
        write_typed(path, labels.grid(), Typed::U16(labels.data().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Rotation3;
    use std::path::PathBuf;

    fn assert_grid_eq(a: &Grid, b: &Grid, tol: f64) {
        assert_eq!(a.dims, b.dims);
        for k in 0..3 {
            assert!((a.spacing[k] - b.spacing[k]).abs() < tol, "{a:?} vs {b:?}");
        }
        assert!((a.origin - b.origin).abs().max() < tol, "{a:?} vs {b:?}");
        assert!(
            (a.direction - b.direction).abs().max() < tol,
            "{a:?} vs {b:?}"
        );
    }

    fn oblique() -> Grid {
        let rot = Rotation3::from_axis_angle(&Vector3::y_axis(), 0.3)
            * Rotation3::from_axis_angle(&Vector3::x_axis(), -0.45)
            * Rotation3::from_axis_angle(&Vector3::z_axis(), 0.2);
        Grid::new(
            [5, 6, 7],
            [0.7, 1.1, 2.5],
            Vector3::new(-12.5, 40.25, -300.0),
            *rot.matrix(),
        )
        .unwrap()
    }

    /// Sagittal-like P-I-R voxel axes (like the VerSe masks), anisotropic spacing.
    fn pir() -> Grid {
        Grid::new(
            [4, 9, 3],
            [1.0, 1.0, 2.0],
            Vector3::new(80.0, -120.0, 510.0),
            Matrix3::from_columns(&[
                Vector3::new(0.0, 1.0, 0.0),
                Vector3::new(0.0, 0.0, -1.0),
                Vector3::new(-1.0, 0.0, 0.0),
            ]),
        )
        .unwrap()
    }

    /// A left-handed LPS frame (one flipped axis): exercises qfac = +1 after RAS flip.
    fn left_handed() -> Grid {
        Grid::new(
            [3, 4, 5],
            [0.5, 0.8, 3.0],
            Vector3::new(1.0, 2.0, 3.0),
            Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, -1.0)),
        )
        .unwrap()
    }

    fn ramp(g: &Grid) -> Vec<f32> {
        (0..g.len())
            .map(|n| ((n as i64 * 37) % 3001 - 1024) as f32)
            .collect()
    }

    #[test]
    fn int16_and_float_round_trips_keep_grid_and_data() {
        let d = tempfile::tempdir().unwrap();
        for (gi, g) in [oblique(), pir(), left_handed()].into_iter().enumerate() {
            let ints = Volume::new(g.clone(), ramp(&g)).unwrap();
            let floats = ints.map(|x| x * 0.123_457 + 0.5);
            for ext in ["nii", "nii.gz"] {
                let p = d.path().join(format!("i{gi}.{ext}"));
                write_volume(&p, &ints, NiftiDtype::Int16).unwrap();
                let back = read_volume(&p).unwrap();
                assert_grid_eq(back.grid(), &g, 1e-5);
                assert_eq!(back.data(), ints.data());
                assert_eq!(read_header_summary(&p).unwrap().datatype, "int16");

                let p = d.path().join(format!("f{gi}.{ext}"));
                write_volume(&p, &floats, NiftiDtype::Float32).unwrap();
                let back = read_volume(&p).unwrap();
                assert_grid_eq(back.grid(), &g, 1e-5);
                for (a, b) in back.data().iter().zip(floats.data()) {
                    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn label_round_trips_pick_uint8_or_uint16() {
        let d = tempfile::tempdir().unwrap();
        let g = pir();
        let small = Volume::from_fn(g.clone(), |i, j, k| ((i + j + k) % 25) as u16);
        let big = Volume::from_fn(g.clone(), |i, j, k| (i * 1000 + j * 10 + k) as u16 + 300);
        for ext in ["nii", "nii.gz"] {
            let p = d.path().join(format!("small.{ext}"));
            write_labels(&p, &small).unwrap();
            assert_eq!(read_header_summary(&p).unwrap().datatype, "uint8");
            let back = read_labels(&p).unwrap();
            assert_grid_eq(back.grid(), &g, 1e-5);
            assert_eq!(back.data(), small.data());

            let p = d.path().join(format!("big.{ext}"));
            write_labels(&p, &big).unwrap();
            assert_eq!(read_header_summary(&p).unwrap().datatype, "uint16");
            assert_eq!(read_labels(&p).unwrap().data(), big.data());
        }
    }

    /// Overwrites the native-endian i16 at `offset` of an uncompressed .nii file.
    fn patch_i16(p: &Path, offset: usize, v: i16) {
        let mut b = std::fs::read(p).unwrap();
        b[offset..offset + 2].copy_from_slice(&v.to_ne_bytes());
        std::fs::write(p, b).unwrap();
    }
    const QFORM_CODE: usize = 252;
    const SFORM_CODE: usize = 254;

    #[test]
    fn sform_only_qform_only_and_fallback() {
        let d = tempfile::tempdir().unwrap();
        for (gi, g) in [oblique(), pir(), left_handed()].into_iter().enumerate() {
            let v = Volume::filled(g.clone(), 1.0f32);
            let p = d.path().join(format!("q{gi}.nii"));
            write_volume(&p, &v, NiftiDtype::Float32).unwrap();
            let both = read_header_summary(&p).unwrap();
            assert_eq!((both.qform_code, both.sform_code), (1, 1));
            assert_eq!(both.geometry, GeometrySource::Sform);

            patch_i16(&p, SFORM_CODE, 0);
            assert_eq!(
                read_header_summary(&p).unwrap().geometry,
                GeometrySource::Qform
            );
            assert_grid_eq(read_volume(&p).unwrap().grid(), &g, 1e-5);

            patch_i16(&p, SFORM_CODE, 1);
            patch_i16(&p, QFORM_CODE, 0);
            assert_eq!(
                read_header_summary(&p).unwrap().geometry,
                GeometrySource::Sform
            );
            assert_grid_eq(read_volume(&p).unwrap().grid(), &g, 1e-5);

            // Neither: spacing only, RAS-aligned axes at the origin -> LPS direction (-1,-1,1).
            patch_i16(&p, SFORM_CODE, 0);
            let s = read_header_summary(&p).unwrap();
            assert_eq!(s.geometry, GeometrySource::Fallback);
            assert_eq!(s.orientation.as_deref(), Some("RAS"));
            let fg = read_volume(&p).unwrap().grid().clone();
            assert!((fg.origin).norm() < 1e-12);
            for k in 0..3 {
                assert!((fg.spacing[k] - g.spacing[k]).abs() < 1e-5);
            }
        }
    }

    /// A file with a hand-made RAS sform, written by the nifti crate directly (not by us).
    fn write_raw(path: &Path, header: &NiftiHeader, data: ndarray::ArrayD<i16>) {
        nifti::writer::WriterOptions::new(path)
            .reference_header(header)
            .write_nifti(&data)
            .unwrap();
    }

    #[test]
    fn ras_world_positions_become_lps_with_x_and_y_negated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ras.nii");
        let h = NiftiHeader {
            sform_code: 2,
            qform_code: 0,
            srow_x: [2.0, 0.0, 0.0, 10.0],
            srow_y: [0.0, 3.0, 0.0, 20.0],
            srow_z: [0.0, 0.0, 4.0, 30.0],
            pixdim: [1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0],
            ..NiftiHeader::default()
        };
        let data = ndarray::ArrayD::from_shape_fn(vec![3, 4, 5], |ix| {
            (ix[0] + 10 * ix[1] + 100 * ix[2]) as i16
        });
        write_raw(&p, &h, data);
        let v = read_volume(&p).unwrap();
        // Voxel (1, 2, 3) is at RAS (12, 26, 42) -> LPS (-12, -26, 42).
        let w = v.grid().index_to_world(Vector3::new(1.0, 2.0, 3.0));
        assert!((w - Vector3::new(-12.0, -26.0, 42.0)).norm() < 1e-9, "{w}");
        assert_eq!(v.get(1, 2, 3), 321.0);
        assert_eq!(v.grid().orientation_code(), "RAS");
    }

    #[test]
    fn scaling_singleton_4d_and_real_4d() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("scaled4d.nii.gz");
        let h = NiftiHeader {
            scl_slope: 2.0,
            scl_inter: -1024.0,
            ..NiftiHeader::default()
        };
        let data = ndarray::ArrayD::from_shape_fn(vec![2, 3, 2, 1], |ix| ix[0] as i16 + 5);
        // The writer forces slope 1 / inter 0: patch the gunzipped header afterwards instead.
        write_raw(&p, &h, data);
        let raw = {
            let mut s = Vec::new();
            flate2::read::GzDecoder::new(File::open(&p).unwrap())
                .read_to_end(&mut s)
                .unwrap();
            s
        };
        let mut raw = raw;
        raw[112..116].copy_from_slice(&2.0f32.to_ne_bytes());
        raw[116..120].copy_from_slice(&(-1024.0f32).to_ne_bytes());
        let p2 = d.path().join("scaled4d.nii"); // gzip-free copy, same content
        std::fs::write(&p2, &raw).unwrap();
        let v = read_volume(&p2).unwrap();
        assert_eq!(v.dims(), [2, 3, 2]);
        assert_eq!(v.get(1, 0, 0), 2.0 * 6.0 - 1024.0);

        let p = d.path().join("real4d.nii");
        let data = ndarray::ArrayD::from_shape_fn(vec![2, 2, 2, 3], |_| 1i16);
        write_raw(&p, &NiftiHeader::default(), data);
        let e = read_volume(&p).unwrap_err().to_string();
        assert!(e.contains("real4d.nii") && e.contains("3 volumes"), "{e}");
    }

    #[test]
    fn bad_inputs_give_errors_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing.nii");
        let e = read_volume(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.nii"), "{e}");

        let text = d.path().join("notes.nii");
        std::fs::write(&text, vec![b'x'; 600]).unwrap();
        let e = read_volume(&text).unwrap_err().to_string();
        assert!(e.contains("notes.nii") && e.contains("NIfTI"), "{e}");
        let nifti2 = d.path().join("two.nii");
        let mut b = 540i32.to_le_bytes().to_vec();
        b.resize(600, 0);
        std::fs::write(&nifti2, b).unwrap();
        let e = read_header_summary(&nifti2).unwrap_err().to_string();
        assert!(e.contains("two.nii") && e.contains("NIfTI-2"), "{e}");
        let tiny = d.path().join("tiny.nii.gz");
        std::fs::write(&tiny, b"\x1f\x8b").unwrap();
        assert!(read_volume(&tiny).is_err());

        let g = oblique();
        let v = Volume::new(g.clone(), ramp(&g)).unwrap();
        for ext in ["nii", "nii.gz"] {
            let p = d.path().join(format!("cut.{ext}"));
            write_volume(&p, &v, NiftiDtype::Int16).unwrap();
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() * 2 / 3]).unwrap();
            let e = read_volume(&p).unwrap_err().to_string();
            assert!(e.contains("cut.") && e.contains("truncated"), "{e}");
        }

        // Shear in the sform.
        let p = d.path().join("shear.nii");
        let h = NiftiHeader {
            srow_x: [1.0, 0.6, 0.0, 0.0],
            ..NiftiHeader::default()
        };
        write_raw(&p, &h, ndarray::ArrayD::zeros(vec![2, 2, 2]));
        let e = read_volume(&p).unwrap_err().to_string();
        assert!(e.contains("shear.nii") && e.contains("shear"), "{e}");

        // Not a label map.
        let p = d.path().join("neg.nii");
        write_raw(
            &p,
            &NiftiHeader::default(),
            ndarray::ArrayD::from_elem(vec![2, 2, 2], -3i16),
        );
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("neg.nii") && e.contains("-3"), "{e}");
        let p = d.path().join("frac.nii");
        let f = Volume::filled(pir(), 1.5f32);
        write_volume(&p, &f, NiftiDtype::Float32).unwrap();
        assert!(read_labels(&p).is_err());

        // Out-of-range int16 fails and writes nothing.
        let p = d.path().join("big.nii");
        let big = Volume::filled(pir(), 40000.0f32);
        let e = write_volume(&p, &big, NiftiDtype::Int16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("40000"), "{e}");
        assert!(!p.exists());
        assert!(write_volume(&d.path().join("x.img"), &f, NiftiDtype::Float32).is_err());
    }

    /// Truncations and corrupted header bytes give errors (or a valid volume), never a panic.
    #[test]
    fn corrupted_files_never_panic() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good.nii");
        let g = pir();
        write_volume(
            &good,
            &Volume::new(g.clone(), ramp(&g)).unwrap(),
            NiftiDtype::Int16,
        )
        .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let p = d.path().join("bad.nii");
        for cut in (0..bytes.len()).step_by(23) {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(read_volume(&p).is_err(), "cut at {cut} read fine");
        }
        // Overwrite each header field region with junk patterns.
        for off in (0..348).step_by(2) {
            for junk in [[0xFFu8, 0xFF], [0x00, 0x80], [0x7F, 0x7F]] {
                let mut b = bytes.clone();
                b[off..off + 2].copy_from_slice(&junk);
                std::fs::write(&p, &b).unwrap();
                let _ = read_volume(&p);
                let _ = read_labels(&p);
                let _ = read_header_summary(&p);
            }
        }
    }

    fn shared(rel: &str) -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data")
            .join(rel);
        if p.exists() {
            Some(p)
        } else {
            println!("skipped: {} not present", p.display());
            None
        }
    }

    fn centroid_z(v: &Volume<u16>, label: u16) -> f64 {
        let (mut s, mut n) = (0.0, 0usize);
        let [nx, ny, nz] = v.dims();
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    if v.get(i, j, k) == label {
                        s += v
                            .grid()
                            .index_to_world(Vector3::new(i as f64, j as f64, k as f64))
                            .z;
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 0, "label {label} absent");
        s / n as f64
    }

    #[test]
    fn real_verse_mask_is_pir_with_t9_on_top() {
        let Some(p) = shared("verse004-t9-l5-mask/seg-vert_msk.nii.gz") else {
            return;
        };
        let v = read_labels(&p).unwrap();
        assert_eq!(v.dims(), [161, 338, 61]);
        // The file stores 2.0003 mm for the slice spacing.
        for (a, b) in v.grid().spacing.iter().zip([1.0, 1.0, 2.0]) {
            assert!((a - b).abs() < 1e-3, "{:?}", v.grid().spacing);
        }
        assert_eq!(v.grid().orientation_code(), "PIR");
        let present: std::collections::BTreeSet<u16> = v.data().iter().copied().collect();
        assert!((16..=24).all(|l| present.contains(&l)), "{present:?}");
        let (t9, l1, l5) = (centroid_z(&v, 16), centroid_z(&v, 20), centroid_z(&v, 24));
        assert!(l1 > l5, "L1 {l1} should be above L5 {l5}");
        for l in 17..=24 {
            assert!(t9 > centroid_z(&v, l), "T9 should be above label {l}");
        }
    }

    #[test]
    fn real_sagittal_ct_has_hu_range_and_lps_diagonal() {
        let Some(p) = shared("verse012-t10-l3-sagittal/sub-verse012_ct.nii.gz") else {
            return;
        };
        let s = read_header_summary(&p).unwrap();
        assert_eq!(s.datatype, "int16");
        let v = read_volume(&p).unwrap();
        assert_eq!(v.dims(), [35, 194, 252]);
        // The file's qform (RAS) affine is diag(-3, -1, 1), i.e. i runs to the patient's
        // left and j posterior: diag(3, 1, 1) in LPS, orientation "LPS".
        assert_eq!(v.grid().orientation_code(), "LPS");
        let a = v.grid().affine();
        let want = Matrix4::from_diagonal(&nalgebra::Vector4::new(3.0, 1.0, 1.0, 1.0));
        assert!((a - want).abs().max() < 1e-4, "{a}");
        let (lo, hi) = v.min_max();
        assert!(
            (lo + 1290.0).abs() < 20.0 && (hi - 2309.0).abs() < 20.0,
            "{lo}..{hi}"
        );
    }

    #[test]
    fn real_abdomen_int32_ct_reads() {
        let Some(p) = shared("ts-example-abdomen-ct/ct.nii.gz") else {
            return;
        };
        let s = read_header_summary(&p).unwrap();
        assert_eq!(s.datatype, "int32");
        let v = read_volume(&p).unwrap();
        assert_eq!(v.dims(), [122, 101, 112]);
        assert_eq!(v.grid().orientation_code(), "RAS");
    }
}
