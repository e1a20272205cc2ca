//! Pixel data of one file: decoding (native or through dicom-pixeldata codecs) and the
//! modality rescale to physical values.

use super::header::{transfer_syntax_label, Header};
use crate::error::{ImagingError, Result};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::borrow::Cow;

/// Where one frame of a file goes: its frame number, rescale, and the output slice.
pub(crate) struct FrameTarget<'a> {
    pub frame: usize,
    pub slope: f64,
    pub intercept: f64,
    pub out: &'a mut [f32],
}

/// Checks that this build can decode the pixel data of `h` before any file is read, so
/// that the user learns it at once and with a way out.
pub(crate) fn check_decodable(h: &Header) -> Result<()> {
    let Some(ts) = TransferSyntaxRegistry.get(&h.transfer_syntax) else {
        return Err(ImagingError::input(
            &h.path,
            format!("its transfer syntax {} is unknown", h.transfer_syntax),
            "convert the series to uncompressed DICOM (e.g. `gdcmconv --raw in.dcm out.dcm`)",
        ));
    };
    if !ts.can_decode_all() {
        return Err(ImagingError::input(
            &h.path,
            format!(
                "pixel data is encoded as {}, which this build cannot decode",
                transfer_syntax_label(&h.transfer_syntax)
            ),
            "decompress the series first, e.g. `gdcmconv --raw in.dcm out.dcm` (GDCM) or \
             `dcmdjpls`/`dcmdjpeg in.dcm out.dcm` (DCMTK), then load the decompressed files",
        ));
    }
    if h.samples_per_pixel != 1 {
        return Err(ImagingError::input(
            &h.path,
            format!(
                "colour image ({} samples per pixel); only greyscale CT/MR slices can be loaded",
                h.samples_per_pixel
            ),
            "choose a greyscale CT or MR series",
        ));
    }
    if !matches!(h.bits_allocated, 8 | 16 | 32)
        || h.bits_stored == 0
        || h.bits_stored > h.bits_allocated
    {
        return Err(ImagingError::input(
            &h.path,
            format!(
                "unsupported pixel layout (BitsAllocated {}, BitsStored {})",
                h.bits_allocated, h.bits_stored
            ),
            "convert the series to 16-bit greyscale DICOM",
        ));
    }
    Ok(())
}

/// Reads the whole file of `h` and writes the requested frames, rescaled, into their
/// targets. Errors name the file.
pub(crate) fn read_frames(h: &Header, targets: Vec<FrameTarget<'_>>) -> Result<()> {
    let obj = OpenFileOptions::new().open_file(&h.path).map_err(|e| {
        ImagingError::input(
            &h.path,
            format!("cannot be read completely ({e}); the file is truncated or corrupt"),
            "re-export the series, or remove this file and pass --resample-gaps if one slice is lost",
        )
    })?;
    let encapsulated = TransferSyntaxRegistry
        .get(&h.transfer_syntax)
        .is_some_and(|ts| ts.is_encapsulated_pixel_data());
    let decode_err = |e: &dyn std::fmt::Display| {
        ImagingError::input(
            &h.path,
            format!(
                "cannot decode its pixel data ({}: {e})",
                transfer_syntax_label(&h.transfer_syntax)
            ),
            "the file may be corrupt; re-export it or convert it with `gdcmconv --raw in.dcm out.dcm`",
        )
    };
    // Keep the decoded buffer (compressed case) alive while we borrow from it.
    let decoded;
    let bytes: Cow<'_, [u8]> = if encapsulated {
        decoded = obj.decode_pixel_data().map_err(|e| decode_err(&e))?;
        Cow::Borrowed(decoded.data())
    } else {
        let e = obj.element(tags::PIXEL_DATA).map_err(|_| {
            ImagingError::input(
                &h.path,
                "has no PixelData (7FE0,0010)",
                "remove the file from the series folder",
            )
        })?;
        e.to_bytes().map_err(|e| decode_err(&e))?
    };
    let bpp = h.bits_allocated as usize / 8;
    let frame_bytes = h.rows as usize * h.cols as usize * bpp;
    for t in targets {
        let start = t.frame * frame_bytes;
        let Some(src) = bytes.get(start..start + frame_bytes) else {
            return Err(ImagingError::input(
                &h.path,
                format!(
                    "pixel data holds {} bytes, but frame {} needs bytes {start}..{}; the file is truncated",
                    bytes.len(),
                    t.frame + 1,
                    start + frame_bytes
                ),
                "re-export the series",
            ));
        };
        let layout = Layout {
            bits_allocated: h.bits_allocated,
            bits_stored: h.bits_stored,
            signed: h.signed,
        };
        convert(src, layout, t.slope, t.intercept, t.out);
    }
    Ok(())
}

/// How stored pixel values are laid out (checked by [`check_decodable`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// 8, 16 or 32.
    pub bits_allocated: u16,
    /// 1..=bits_allocated.
    pub bits_stored: u16,
    /// PixelRepresentation 1 (two's complement).
    pub signed: bool,
}

/// Little-endian stored values -> physical values (slope * stored + intercept), honouring
/// BitsStored (high bits may carry overlays or garbage) and the sign.
pub(crate) fn convert(src: &[u8], layout: Layout, slope: f64, intercept: f64, out: &mut [f32]) {
    let bs = u32::from(layout.bits_stored);
    let ba = u32::from(layout.bits_allocated);
    let signed = layout.signed;
    let to_value = move |raw: u32| -> f64 {
        let raw = if bs < 32 {
            raw & ((1u32 << bs) - 1)
        } else {
            raw
        };
        if signed && raw >> (bs - 1) & 1 == 1 {
            raw as f64 - (1u64 << bs) as f64
        } else {
            raw as f64
        }
    };
    let put = |out: &mut f32, raw: u32| *out = (to_value(raw) * slope + intercept) as f32;
    match ba {
        8 => src
            .iter()
            .zip(out.iter_mut())
            .for_each(|(b, o)| put(o, u32::from(*b))),
        16 => src
            .chunks_exact(2)
            .zip(out.iter_mut())
            .for_each(|(b, o)| put(o, u32::from(u16::from_le_bytes([b[0], b[1]])))),
        _ => src
            .chunks_exact(4)
            .zip(out.iter_mut())
            .for_each(|(b, o)| put(o, u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
    }
}
