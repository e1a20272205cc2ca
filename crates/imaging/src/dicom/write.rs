//! Writing a volume as a DICOM series (one single-frame file per k-slice).

use crate::error::{ImagingError, Result};
use crate::uid;
use crate::volume::{Modality, Volume};
use dicom_core::value::{PrimitiveValue, C};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use nalgebra::Vector3;
use rayon::prelude::*;
use spinetwin_core::atomic::{write_dir, WriteError};
use std::io::Write;
use std::path::Path;

/// What goes into the written files besides the voxels.
#[derive(Debug, Clone)]
pub struct WriteMeta {
    /// PatientName (use a pseudonym for de-identified output).
    pub patient_name: String,
    /// PatientID.
    pub patient_id: String,
    /// SeriesDescription.
    pub series_description: String,
    /// StudyInstanceUID (a valid UID, e.g. from [`uid::from_hash`]).
    pub study_uid: String,
    /// SeriesInstanceUID (a valid UID); SOP instance UIDs are derived from it.
    pub series_uid: String,
    /// CT (CT Image Storage, values in HU), MR (MR Image Storage), anything else is
    /// written as Secondary Capture.
    pub modality: Modality,
    /// BodyPartExamined.
    pub body_part: Option<String>,
    /// SeriesNumber.
    pub series_number: u32,
    /// FrameOfReferenceUID; give the source's to keep the series registered with it,
    /// otherwise one is derived from the study UID.
    pub frame_of_reference_uid: Option<String>,
}

/// Placeholders: an anonymous patient and fixed UIDs. Set `study_uid` and `series_uid`
/// for every series written, or different series will share UIDs.
impl Default for WriteMeta {
    fn default() -> Self {
        WriteMeta {
            patient_name: "ANONYMOUS".into(),
            patient_id: "ANONYMOUS".into(),
            series_description: "spinetwin".into(),
            study_uid: uid::from_hash(&[b"spinetwin", b"study"]),
            series_uid: uid::from_hash(&[b"spinetwin", b"series"]),
            modality: Modality::Ct,
            body_part: None,
            series_number: 1,
            frame_of_reference_uid: None,
        }
    }
}

/// A DS (decimal string) value: at most 16 characters, as precise as fits.
fn ds(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    for decimals in (0..=10).rev() {
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        let s = if s == "-0" { "0".to_string() } else { s };
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.6e}") // huge magnitudes; never reached for mm or HU
}

fn ds_multi(vs: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(vs.iter().map(|v| ds(*v)).collect::<C<String>>())
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, v.into()));
}

/// Stored = round((value - intercept) / slope) must fit i16. CT (and integral data) keeps
/// slope 1 so HU round-trip exactly; otherwise the range is spread over the i16 range.
fn choose_rescale(volume: &Volume<f32>, modality: &Modality) -> (f64, f64) {
    let (lo, hi) = volume.min_max();
    if !(lo.is_finite() && hi.is_finite()) {
        return (1.0, 0.0);
    }
    let integral = modality.is_hounsfield()
        || volume
            .data()
            .par_iter()
            .all(|v| v.is_nan() || (f64::from(*v) - f64::from(*v).round()).abs() < 1e-3);
    let (lo_r, hi_r) = (lo.round(), hi.round());
    if integral && hi_r - lo_r <= 65535.0 {
        let intercept = if lo_r >= -32768.0 && hi_r <= 32767.0 {
            0.0
        } else {
            lo_r + 32768.0
        };
        return (1.0, intercept);
    }
    let slope = if hi > lo { (hi - lo) / 65000.0 } else { 1.0 };
    (slope, 0.5 * (lo + hi))
}

/// Writes `volume` into the folder `dir` as a DICOM series: one file per k-slice named
/// IM00001.dcm, IM00002.dcm, ..., CT Image Storage (MR Image Storage for MR), Explicit VR
/// Little Endian, signed 16-bit pixels with RescaleSlope/Intercept chosen so CT values
/// round-trip to 1 HU. Geometry (ImagePositionPatient, ImageOrientationPatient,
/// PixelSpacing, SliceThickness, SpacingBetweenSlices) follows the grid, oblique ones
/// included. The folder is written atomically (it replaces any existing `dir` whole).
pub fn write_series(volume: &Volume<f32>, meta: &WriteMeta, dir: &Path) -> Result<()> {
    for (what, u) in [("study", &meta.study_uid), ("series", &meta.series_uid)] {
        if !uid::is_valid(u) {
            return Err(ImagingError::Invalid(format!(
                "{what} UID {u:?} is not a valid DICOM UID"
            )));
        }
    }
    if let Some(f) = &meta.frame_of_reference_uid {
        if !uid::is_valid(f) {
            return Err(ImagingError::Invalid(format!(
                "frame of reference UID {f:?} is not a valid DICOM UID"
            )));
        }
    }
    let grid = volume.grid();
    let [nx, ny, nz] = grid.dims;
    if nx > 65535 || ny > 65535 {
        return Err(ImagingError::Invalid(format!(
            "slices of {nx}x{ny} pixels are too large for DICOM (at most 65535 per side)"
        )));
    }
    let (slope, intercept) = choose_rescale(volume, &meta.modality);
    let sop_class = match meta.modality {
        Modality::Ct => uids::CT_IMAGE_STORAGE,
        Modality::Mr => uids::MR_IMAGE_STORAGE,
        Modality::Other(_) => uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    };
    let frame_of_ref = meta
        .frame_of_reference_uid
        .clone()
        .unwrap_or_else(|| uid::from_hash(&[b"frame-of-reference", meta.study_uid.as_bytes()]));
    let impl_uid = uid::from_hash(&[b"spinetwin", b"implementation"]);
    let dir_ = grid.direction;
    let iop = [
        dir_[(0, 0)],
        dir_[(1, 0)],
        dir_[(2, 0)],
        dir_[(0, 1)],
        dir_[(1, 1)],
        dir_[(2, 1)],
    ];
    let normal = dir_.column(2).into_owned();
    let plane = nx * ny;
    let [sx, sy, sz] = grid.spacing;

    write_dir(dir, |tmp: &Path| -> Result<()> {
        (0..nz).into_par_iter().try_for_each(|k| -> Result<()> {
            let ipp = grid.index_to_world(Vector3::new(0.0, 0.0, k as f64));
            let sop_uid = uid::from_hash(&[
                meta.series_uid.as_bytes(),
                b"slice",
                &(k as u64).to_le_bytes(),
            ]);
            let mut obj = InMemDicomObject::new_empty();
            put(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
            put(
                &mut obj,
                tags::IMAGE_TYPE,
                VR::CS,
                PrimitiveValue::Strs(
                    ["DERIVED", "SECONDARY", "AXIAL"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                ),
            );
            put(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
            put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid.as_str());
            // Type 2 attributes: present, empty (nothing identifying is invented).
            for (tag, vr) in [
                (tags::STUDY_DATE, VR::DA),
                (tags::STUDY_TIME, VR::TM),
                (tags::ACCESSION_NUMBER, VR::SH),
                (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
                (tags::PATIENT_BIRTH_DATE, VR::DA),
                (tags::PATIENT_SEX, VR::CS),
                (tags::STUDY_ID, VR::SH),
                (tags::POSITION_REFERENCE_INDICATOR, VR::LO),
            ] {
                obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
            }
            put(&mut obj, tags::MODALITY, VR::CS, meta.modality.code());
            put(&mut obj, tags::MANUFACTURER, VR::LO, "spinetwin");
            put(
                &mut obj,
                tags::SERIES_DESCRIPTION,
                VR::LO,
                meta.series_description.as_str(),
            );
            put(
                &mut obj,
                tags::PATIENT_NAME,
                VR::PN,
                meta.patient_name.as_str(),
            );
            put(&mut obj, tags::PATIENT_ID, VR::LO, meta.patient_id.as_str());
            if let Some(bp) = &meta.body_part {
                put(&mut obj, tags::BODY_PART_EXAMINED, VR::CS, bp.as_str());
            }
            put(&mut obj, tags::SLICE_THICKNESS, VR::DS, ds(sz));
            put(&mut obj, tags::SPACING_BETWEEN_SLICES, VR::DS, ds(sz));
            put(
                &mut obj,
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                meta.study_uid.as_str(),
            );
            put(
                &mut obj,
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                meta.series_uid.as_str(),
            );
            put(
                &mut obj,
                tags::SERIES_NUMBER,
                VR::IS,
                meta.series_number.to_string(),
            );
            put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, (k + 1).to_string());
            put(
                &mut obj,
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds_multi(&[ipp.x, ipp.y, ipp.z]),
            );
            put(
                &mut obj,
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                ds_multi(&iop),
            );
            put(
                &mut obj,
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                frame_of_ref.as_str(),
            );
            put(&mut obj, tags::SLICE_LOCATION, VR::DS, ds(ipp.dot(&normal)));
            put(
                &mut obj,
                tags::SAMPLES_PER_PIXEL,
                VR::US,
                PrimitiveValue::from(1u16),
            );
            put(
                &mut obj,
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                "MONOCHROME2",
            );
            put(
                &mut obj,
                tags::ROWS,
                VR::US,
                PrimitiveValue::from(ny as u16),
            );
            put(
                &mut obj,
                tags::COLUMNS,
                VR::US,
                PrimitiveValue::from(nx as u16),
            );
            // PixelSpacing is (row spacing = along j, column spacing = along i).
            put(&mut obj, tags::PIXEL_SPACING, VR::DS, ds_multi(&[sy, sx]));
            put(
                &mut obj,
                tags::BITS_ALLOCATED,
                VR::US,
                PrimitiveValue::from(16u16),
            );
            put(
                &mut obj,
                tags::BITS_STORED,
                VR::US,
                PrimitiveValue::from(16u16),
            );
            put(
                &mut obj,
                tags::HIGH_BIT,
                VR::US,
                PrimitiveValue::from(15u16),
            );
            put(
                &mut obj,
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(1u16),
            );
            put(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, ds(intercept));
            put(&mut obj, tags::RESCALE_SLOPE, VR::DS, ds(slope));
            if meta.modality.is_hounsfield() {
                put(&mut obj, tags::RESCALE_TYPE, VR::LO, "HU");
            }
            let slice = &volume.data()[k * plane..(k + 1) * plane];
            let mut bytes = Vec::with_capacity(plane * 2);
            for v in slice {
                let s = if v.is_nan() {
                    i16::MIN
                } else {
                    ((f64::from(*v) - intercept) / slope)
                        .round()
                        .clamp(-32768.0, 32767.0) as i16
                };
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            put(
                &mut obj,
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U8(bytes.into()),
            );

            let path = tmp.join(format!("IM{:05}.dcm", k + 1));
            let werr = |e: &dyn std::fmt::Display| {
                ImagingError::Write(WriteError {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            };
            let file = obj
                .with_meta(
                    FileMetaTableBuilder::new()
                        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                        .implementation_class_uid(impl_uid.as_str())
                        .implementation_version_name("SPINETWIN"),
                )
                .map_err(|e| werr(&e))?;
            let f = std::fs::File::create(&path).map_err(|e| werr(&e))?;
            let mut w = std::io::BufWriter::new(f);
            file.write_all(&mut w).map_err(|e| werr(&e))?;
            w.flush().map_err(|e| werr(&e))?;
            Ok(())
        })
    })?;
    tracing::info!(series = %meta.series_uid, slices = nz, "DICOM series written");
    Ok(())
}
