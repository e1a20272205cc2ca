//! Reading the attributes spinetwin needs from one DICOM file, without its pixel data.

use super::Phi;
use crate::volume::Modality;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use nalgebra::Vector3;
use std::path::{Path, PathBuf};

/// Geometry and value mapping of one image (a single-frame file or one frame).
#[derive(Debug, Clone)]
pub(crate) struct FrameGeom {
    /// ImagePositionPatient: LPS centre of the first pixel (mm).
    pub ipp: Vector3<f64>,
    /// ImageOrientationPatient: row direction (3) then column direction (3).
    pub iop: [f64; 6],
    /// PixelSpacing as stored: (row spacing, column spacing) in mm.
    pub pixel_spacing: [f64; 2],
    /// RescaleSlope.
    pub slope: f64,
    /// RescaleIntercept.
    pub intercept: f64,
}

/// What one DICOM image file says about itself (no pixel data).
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub path: PathBuf,
    pub series_uid: String,
    pub modality: Modality,
    pub description: Option<String>,
    pub body_part: Option<String>,
    pub manufacturer: Option<String>,
    pub rows: u32,
    pub cols: u32,
    pub n_frames: u32,
    pub multiframe: bool,
    pub transfer_syntax: String,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub samples_per_pixel: u16,
    pub slice_thickness: Option<f64>,
    pub spacing_between_slices: Option<f64>,
    /// One entry per frame, or why the geometry cannot be used (reported when loading).
    pub frames: Result<Vec<FrameGeom>, String>,
    pub phi: Phi,
}

/// Start of the skip reason of files that cannot be parsed.
pub(crate) const UNREADABLE: &str = "not a readable DICOM file";

/// Why a file was not taken as an image: it is not DICOM, or it holds no image.
pub(crate) type SkipReason = String;

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let v = e.to_multi_float64().ok()?;
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then_some(v)
}

fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    floats(obj, tag).map(|v| v[0])
}

fn uint(obj: &InMemDicomObject, tag: Tag) -> Option<u32> {
    let e = obj.element_opt(tag).ok().flatten()?;
    e.to_int::<u32>().ok()
}

/// The first item of sequence `tag`.
fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.element_opt(tag).ok().flatten()?.items()?.first()
}

/// An attribute of a functional group macro: per-frame item first, then the shared one
/// (PS3.3 C.7.6.16: a macro is in one or the other).
fn group_attr(
    per_frame: Option<&InMemDicomObject>,
    shared: Option<&InMemDicomObject>,
    seq: Tag,
    attr: Tag,
) -> Option<Vec<f64>> {
    [per_frame, shared]
        .into_iter()
        .flatten()
        .find_map(|g| first_item(g, seq).and_then(|it| floats(it, attr)))
}

fn iop6(v: Option<Vec<f64>>) -> Option<[f64; 6]> {
    let v = v?;
    (v.len() == 6).then(|| [v[0], v[1], v[2], v[3], v[4], v[5]])
}

fn ipp3(v: Option<Vec<f64>>) -> Option<Vector3<f64>> {
    let v = v?;
    (v.len() == 3).then(|| Vector3::new(v[0], v[1], v[2]))
}

fn spacing2(v: Option<Vec<f64>>) -> Option<[f64; 2]> {
    let v = v?;
    (v.len() == 2 && v[0] > 0.0 && v[1] > 0.0).then(|| [v[0], v[1]])
}

/// Geometry of a classic single-frame image from its top-level attributes.
fn single_frame_geom(obj: &InMemDicomObject) -> Result<Vec<FrameGeom>, String> {
    let ipp = ipp3(floats(obj, tags::IMAGE_POSITION_PATIENT))
        .ok_or("no valid ImagePositionPatient (0020,0032), so its place in the volume is unknown (a localizer or a secondary capture?)")?;
    let iop = iop6(floats(obj, tags::IMAGE_ORIENTATION_PATIENT))
        .ok_or("no valid ImageOrientationPatient (0020,0037)")?;
    let pixel_spacing =
        spacing2(floats(obj, tags::PIXEL_SPACING)).ok_or("no valid PixelSpacing (0028,0030)")?;
    Ok(vec![FrameGeom {
        ipp,
        iop,
        pixel_spacing,
        slope: float(obj, tags::RESCALE_SLOPE).unwrap_or(1.0),
        intercept: float(obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0),
    }])
}

/// Per-frame geometry of an enhanced multi-frame image from its functional groups.
fn multi_frame_geom(obj: &InMemDicomObject, n_frames: u32) -> Result<Vec<FrameGeom>, String> {
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = obj
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .ok_or(
            "multi-frame image without PerFrameFunctionalGroupsSequence (5200,9230), so the frame positions are unknown",
        )?;
    if per_frame.len() != n_frames as usize {
        return Err(format!(
            "PerFrameFunctionalGroupsSequence has {} items but NumberOfFrames is {n_frames}",
            per_frame.len()
        ));
    }
    // Rescale may also sit at the top level in some writers; use it as the last fallback.
    let top_slope = float(obj, tags::RESCALE_SLOPE).unwrap_or(1.0);
    let top_intercept = float(obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0);
    per_frame
        .iter()
        .enumerate()
        .map(|(f, item)| {
            let pf = Some(item);
            let ipp = ipp3(group_attr(
                pf,
                shared,
                tags::PLANE_POSITION_SEQUENCE,
                tags::IMAGE_POSITION_PATIENT,
            ))
            .ok_or_else(|| {
                format!(
                    "frame {}: no PlanePositionSequence > ImagePositionPatient",
                    f + 1
                )
            })?;
            let iop = iop6(group_attr(
                pf,
                shared,
                tags::PLANE_ORIENTATION_SEQUENCE,
                tags::IMAGE_ORIENTATION_PATIENT,
            ))
            .or_else(|| iop6(floats(obj, tags::IMAGE_ORIENTATION_PATIENT)))
            .ok_or_else(|| {
                format!(
                    "frame {}: no PlaneOrientationSequence > ImageOrientationPatient",
                    f + 1
                )
            })?;
            let pixel_spacing = spacing2(group_attr(
                pf,
                shared,
                tags::PIXEL_MEASURES_SEQUENCE,
                tags::PIXEL_SPACING,
            ))
            .or_else(|| spacing2(floats(obj, tags::PIXEL_SPACING)))
            .ok_or_else(|| format!("frame {}: no PixelMeasuresSequence > PixelSpacing", f + 1))?;
            let slope = group_attr(
                pf,
                shared,
                tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                tags::RESCALE_SLOPE,
            )
            .map_or(top_slope, |v| v[0]);
            let intercept = group_attr(
                pf,
                shared,
                tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                tags::RESCALE_INTERCEPT,
            )
            .map_or(top_intercept, |v| v[0]);
            Ok(FrameGeom {
                ipp,
                iop,
                pixel_spacing,
                slope,
                intercept,
            })
        })
        .collect()
}

/// A short name for common non-image SOP classes, for skip reasons.
fn sop_class_name(uid: &str) -> String {
    let name = match uid {
        "1.2.840.10008.5.1.4.1.1.88.11" => "Basic Text SR",
        "1.2.840.10008.5.1.4.1.1.88.22" => "Enhanced SR",
        "1.2.840.10008.5.1.4.1.1.88.33" => "Comprehensive SR",
        "1.2.840.10008.5.1.4.1.1.88.67" => "X-Ray Radiation Dose SR",
        "1.2.840.10008.5.1.4.1.1.11.1" => "Grayscale Softcopy Presentation State",
        "1.2.840.10008.5.1.4.1.1.104.1" => "Encapsulated PDF",
        "1.2.840.10008.5.1.4.1.1.66.4" => "Segmentation",
        "1.2.840.10008.5.1.4.1.1.481.3" => "RT Structure Set",
        "1.2.840.10008.1.3.10" => "Media Storage Directory (DICOMDIR)",
        _ => return uid.to_string(),
    };
    format!("{name}, {uid}")
}

/// "Name (uid)" of a transfer syntax, or the bare UID when unknown.
pub(crate) fn transfer_syntax_label(uid: &str) -> String {
    use dicom_encoding::TransferSyntaxIndex;
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    let uid = uid.trim_end_matches(['\0', ' ']);
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{} ({uid})", ts.name()),
        None => format!("unknown transfer syntax ({uid})"),
    }
}

/// Reads the header of `path` (stopping before the pixel data). `Err` is the reason the
/// file is not an image to use: not DICOM, unreadable, or without an image.
pub(crate) fn read_header(path: &Path) -> Result<Header, SkipReason> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| format!("{UNREADABLE} ({e})"))?;
    let transfer_syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let sop_class = obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        .to_string();
    let obj: &InMemDicomObject = &obj;
    let rows = uint(obj, tags::ROWS);
    let cols = uint(obj, tags::COLUMNS);
    let (Some(rows), Some(cols)) = (rows, cols) else {
        // Structured reports, presentation states, DICOMDIRs... carry no image.
        return Err(format!(
            "no image in it (no Rows/Columns/PixelData; SOP class {})",
            sop_class_name(&sop_class)
        ));
    };
    if rows == 0 || cols == 0 {
        return Err("image with zero rows or columns".into());
    }
    // Some de-identification tools blank the UIDs. Such files are grouped by folder
    // under a UID derived from the folder, so a blanked series still loads as one.
    let series_uid = text(obj, tags::SERIES_INSTANCE_UID).unwrap_or_else(|| {
        let folder = path.parent().unwrap_or(Path::new("."));
        crate::uid::from_hash(&[
            b"missing SeriesInstanceUID",
            folder.as_os_str().as_encoded_bytes(),
        ])
    });
    let n_frames = uint(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let enhanced = obj
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten()
        .is_some()
        || obj
            .element_opt(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
            .ok()
            .flatten()
            .is_some();
    let multiframe = n_frames > 1 || enhanced;
    let frames = if multiframe {
        multi_frame_geom(obj, n_frames)
    } else {
        single_frame_geom(obj)
    };
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let measure = |attr| {
        float(obj, attr)
            .or_else(|| group_attr(None, shared, tags::PIXEL_MEASURES_SEQUENCE, attr).map(|v| v[0]))
    };
    let bits_allocated = uint(obj, tags::BITS_ALLOCATED).unwrap_or(16) as u16;
    Ok(Header {
        path: path.to_path_buf(),
        series_uid,
        modality: Modality::from_dicom_code(&text(obj, tags::MODALITY).unwrap_or_default()),
        description: text(obj, tags::SERIES_DESCRIPTION),
        body_part: text(obj, tags::BODY_PART_EXAMINED),
        manufacturer: text(obj, tags::MANUFACTURER),
        rows,
        cols,
        n_frames,
        multiframe,
        transfer_syntax,
        bits_allocated,
        bits_stored: uint(obj, tags::BITS_STORED).map_or(bits_allocated, |b| b as u16),
        signed: uint(obj, tags::PIXEL_REPRESENTATION) == Some(1),
        samples_per_pixel: uint(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16,
        slice_thickness: measure(tags::SLICE_THICKNESS),
        spacing_between_slices: measure(tags::SPACING_BETWEEN_SLICES),
        frames,
        phi: Phi {
            patient_name: text(obj, tags::PATIENT_NAME),
            patient_id: text(obj, tags::PATIENT_ID),
            birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
            sex: text(obj, tags::PATIENT_SEX),
            study_date: text(obj, tags::STUDY_DATE),
            accession_number: text(obj, tags::ACCESSION_NUMBER),
            institution_name: text(obj, tags::INSTITUTION_NAME),
            referring_physician: text(obj, tags::REFERRING_PHYSICIAN_NAME),
            study_uid: text(obj, tags::STUDY_INSTANCE_UID),
        },
    })
}
