//! DICOM de-identification following the **Basic Application Level Confidentiality Profile**
//! of DICOM PS3.15 Annex E (Table E.1-1, basic profile column; the table is in
//! `deid/table.rs`).
//!
//! What [`deidentify`] does to every DICOM file it finds:
//!
//! * each attribute listed in Table E.1-1 gets its basic-profile action, wherever it occurs
//!   (also inside sequences, recursively); compound actions are resolved as described on
//!   the (crate-private) `Action` type and summarised below;
//! * dates (DA, DT) that the table does not list get a dummy value too (a stricter reading
//!   than the table: every date is an identifier under HIPAA Safe Harbor);
//! * all private attributes (odd groups), curve data (groups 50xx) and overlays (groups
//!   60xx, whole groups: an overlay without its data is useless) are removed;
//! * UIDs are replaced by `2.25.` UIDs derived from a keyed hash of the original
//!   ([`crate::uid::from_hash`] of `[key, original]`), so the same original always maps to the
//!   same replacement: references between files, series and repeated runs stay consistent.
//!   SOP Class and Transfer Syntax UIDs are kept (they identify types, not people);
//! * Patient's Name and Patient ID become a keyed pseudonym ([`pseudonym`]);
//! * Patient Identity Removed = YES, De-identification Method and the method code sequence
//!   (113100, DCM, "Basic Application Confidentiality Profile") are added;
//! * pixel data is copied unchanged (byte for byte). Pixels may still show burned-in text:
//!   files flagged Burned In Annotation = YES are refused unless
//!   [`DeidOptions::allow_burned_in`] is set.
//!
//! Compound actions ("X unless Z or D is needed to keep the IOD conformant") are resolved
//! without per-IOD type information to the choice that is valid for any IOD and discloses the
//! least: X/Z -> Z; X/D, Z/D, X/Z/D -> D; X/Z/U* -> the reference sequence is kept with every
//! UID inside replaced. D on a sequence keeps its items but cleans them: table attributes get
//! their own action, other text, names, dates and times become dummies.
//!
//! Output files carry no original names: each goes to
//! `OUT/<new Series Instance UID>/<new SOP Instance UID>.dcm`. The output folder appears
//! atomically and each file is written atomically. Nothing identifying is logged or put in
//! error messages: files are referred to by their (user-supplied) input paths only.

mod table;

use crate::error::{ImagingError, Result};
use crate::uid;
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A basic-profile action of PS3.15 Table E.1-1.
///
/// Compound actions say "the first unless the next is needed to keep the IOD valid". Without
/// per-IOD type information spinetwin resolves them to the choice that keeps any IOD valid
/// while disclosing the least:
///
/// * `X/Z` -> Z (an empty value is valid for Type 2 and carries no information);
/// * `X/D`, `Z/D`, `X/Z/D` -> D (a dummy value is valid even for Type 1);
/// * `X/Z/U*` (reference sequences) -> the sequence is kept and every UID inside is replaced
///   consistently, so references between de-identified files keep working.
///
/// D on a sequence keeps its items but cleans them: table attributes inside get their own
/// action, and every other text, person-name, date or time value inside becomes a dummy.
// The variant names spell the standard's action codes (X/Z/D -> XZD), hence the capitals.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Replace with a non-empty dummy value of the attribute's VR.
    D,
    /// Replace with an empty value.
    Z,
    /// Remove.
    X,
    /// Replace UIDs consistently.
    U,
    /// X unless Z needed: resolved to Z.
    XZ,
    /// X unless D needed: resolved to D.
    XD,
    /// Z unless D needed: resolved to D.
    ZD,
    /// X unless Z or D needed: resolved to D.
    XZD,
    /// X unless Z or U* needed: resolved to U* (keep, replace contained UIDs).
    XZU,
}

/// What is applied to one attribute after resolving compound actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Remove,
    Empty,
    Dummy,
    Uid,
    KeepReplacingUids,
}

impl Action {
    fn resolve(self) -> Resolved {
        match self {
            Action::X => Resolved::Remove,
            Action::Z | Action::XZ => Resolved::Empty,
            Action::D | Action::XD | Action::ZD | Action::XZD => Resolved::Dummy,
            Action::U => Resolved::Uid,
            Action::XZU => Resolved::KeepReplacingUids,
        }
    }
}

/// The basic-profile action for `tag`, if the tag is listed in Table E.1-1.
pub(crate) fn action_for(tag: Tag) -> Option<Action> {
    table::TABLE_E1_1
        .binary_search_by(|&(g, e, _, _)| (g, e).cmp(&(tag.group(), tag.element())))
        .ok()
        .map(|i| table::TABLE_E1_1[i].3)
}

/// Options of [`deidentify`].
#[derive(Debug, Clone)]
pub struct DeidOptions {
    /// Secret for pseudonyms and UID mapping. Keep it to get the same pseudonyms and UIDs in
    /// later runs; without it the mapping cannot be reproduced (nor reversed).
    pub key: Vec<u8>,
    /// Process files flagged Burned In Annotation = YES (their pixels may show names).
    pub allow_burned_in: bool,
}

/// What [`deidentify`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeidReport {
    /// DICOM files written.
    pub files_written: usize,
    /// Input files not written, with the reason (not DICOM, burned-in annotation, ...).
    pub files_skipped: Vec<(PathBuf, String)>,
    /// Files written but worth a look (e.g. secondary capture without a burned-in flag).
    pub warnings: Vec<(PathBuf, String)>,
    /// Distinct patients (pseudonyms) in the output.
    pub pseudonyms: usize,
    /// Attributes removed (action X), not counting private ones.
    pub removed: usize,
    /// Attributes emptied (action Z).
    pub emptied: usize,
    /// Attributes replaced by a dummy value or pseudonym (action D).
    pub replaced: usize,
    /// UID values replaced (action U).
    pub uids_replaced: usize,
    /// Private attributes removed (odd groups).
    pub private_removed: usize,
}

const HMAC_BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; HMAC_BLOCK];
    if key.len() > HMAC_BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let ih = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(ih);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// A stable pseudonym for a patient: `"ST-"` + 12 base32 characters (60 bits) of
/// HMAC-SHA256(key, patient ID, patient name). The same key and patient always give the same
/// pseudonym; without the key it cannot be linked back to the patient.
pub fn pseudonym(key: &[u8], patient_id: &str, patient_name: &str) -> String {
    let mut msg = Vec::new();
    // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
    for part in [patient_id.trim(), patient_name.trim()] {
        msg.extend_from_slice(&(part.len() as u64).to_le_bytes());
        msg.extend_from_slice(part.as_bytes());
    }
    let mac = hmac_sha256(key, &msg);
    let bits = u64::from_be_bytes([
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
    ]);
    format!("ST-{}", base32_60(bits))
}

/// The top 60 bits of `bits` as 12 base32 characters (RFC 4648 alphabet, no padding): the
/// body of spinetwin's pseudonyms.
pub fn base32_60(bits: u64) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..12)
        .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char)
        .collect()
}

// Tags used directly.
const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);
const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);
const SERIES_INSTANCE_UID: Tag = Tag(0x0020, 0x000E);
const BURNED_IN_ANNOTATION: Tag = Tag(0x0028, 0x0301);
const PATIENT_IDENTITY_REMOVED: Tag = Tag(0x0012, 0x0062);
const DEIDENTIFICATION_METHOD: Tag = Tag(0x0012, 0x0063);
const DEIDENTIFICATION_METHOD_CODE_SEQ: Tag = Tag(0x0012, 0x0064);
const CODE_VALUE: Tag = Tag(0x0008, 0x0100);
const CODING_SCHEME_DESIGNATOR: Tag = Tag(0x0008, 0x0102);
const CODE_MEANING: Tag = Tag(0x0008, 0x0104);

/// The text recorded in De-identification Method (LO, at most 64 characters).
pub const METHOD_TEXT: &str = "PS3.15 Basic Application Level Confidentiality Profile";

const DICOMDIR_CLASS: &str = "1.2.840.10008.1.3.10";

/// Counters and mappings while de-identifying one file.
struct Ctx<'a> {
    key: &'a [u8],
    pseudonym: String,
    report: &'a mut DeidReport,
}

impl Ctx<'_> {
    fn map_uid(&mut self, old: &str) -> String {
        let old = old.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if old.is_empty() {
            return String::new();
        }
        self.report.uids_replaced += 1;
        uid::from_hash(&[self.key, old.as_bytes()])
    }
}

type Elem = DataElement<InMemDicomObject>;

/// Text of a primitive value (multi-valued strings joined by '\').
fn text_of(e: &Elem) -> String {
    e.to_str().map(|s| s.into_owned()).unwrap_or_default()
}

fn is_texty(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::UT
            | VR::UC
            | VR::UR
            | VR::DA
            | VR::DT
            | VR::TM
            | VR::AS
    )
}

/// A non-empty dummy value consistent with `vr`.
fn dummy_value(vr: VR) -> PrimitiveValue {
    match vr {
        VR::DA => PrimitiveValue::from("19000101"),
        VR::TM => PrimitiveValue::from("000000"),
        VR::DT => PrimitiveValue::from("19000101000000"),
        VR::AS => PrimitiveValue::from("000Y"),
        VR::PN => PrimitiveValue::from("ANONYMOUS"),
        VR::IS | VR::DS => PrimitiveValue::from("0"),
        VR::CS => PrimitiveValue::from("ANONYMIZED"),
        VR::UI => PrimitiveValue::from("2.25.0"),
        VR::US | VR::OW => PrimitiveValue::from(0u16),
        VR::SS => PrimitiveValue::from(0i16),
        VR::UL | VR::OL => PrimitiveValue::from(0u32),
        VR::SL => PrimitiveValue::from(0i32),
        VR::FL | VR::OF => PrimitiveValue::from(0f32),
        VR::FD | VR::OD => PrimitiveValue::from(0f64),
        VR::UV | VR::OV => PrimitiveValue::from(0u64),
        VR::SV => PrimitiveValue::from(0i64),
        VR::OB | VR::UN => PrimitiveValue::U8(vec![0u8, 0].into()),
        VR::AT => PrimitiveValue::Tags(vec![Tag(0, 0)].into()),
        // AE, LO, LT, SH, ST, UT, UC, UR and anything else textual.
        _ => PrimitiveValue::from("ANONYMIZED"),
    }
}

fn empty_like(tag: Tag, vr: VR) -> Elem {
    if vr == VR::SQ {
        DataElement::new(tag, VR::SQ, DataSetSequence::<InMemDicomObject>::empty())
    } else {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    }
}

fn is_private(tag: Tag) -> bool {
    tag.group() % 2 == 1
}

/// Groups removed as a whole: curves (50xx) and overlays (60xx).
fn is_curve_or_overlay(tag: Tag) -> bool {
    (0x5000..=0x50FF).contains(&tag.group()) || (0x6000..=0x60FF).contains(&tag.group())
}

/// De-identifies a data set (or sequence item). `clean_text`: inside a sequence with action
/// D, other text, name, date and time values are replaced by dummies as well.
fn deid_object(obj: &InMemDicomObject, ctx: &mut Ctx, clean_text: bool) -> InMemDicomObject {
    let mut out: Vec<Elem> = Vec::new();
    for e in obj.iter() {
        if let Some(n) = deid_element(e, ctx, clean_text) {
            out.push(n);
        }
    }
    InMemDicomObject::from_element_iter(out)
}

fn deid_items(
    e: &Elem,
    ctx: &mut Ctx,
    clean_text: bool,
) -> Option<DataSetSequence<InMemDicomObject>> {
    match e.value() {
        Value::Sequence(seq) => {
            let items: Vec<InMemDicomObject> = seq
                .items()
                .iter()
                .map(|it| deid_object(it, ctx, clean_text))
                .collect();
            Some(DataSetSequence::new(items, Length::UNDEFINED))
        }
        _ => None,
    }
}

fn deid_element(e: &Elem, ctx: &mut Ctx, clean_text: bool) -> Option<Elem> {
    let tag = e.tag();
    let vr = e.vr();
    if is_private(tag) {
        ctx.report.private_removed += 1;
        return None;
    }
    if is_curve_or_overlay(tag) || tag.element() == 0x0000 {
        // Curves/overlays: table rows 50xx,xxxx / 60xx,3000 / 60xx,4000 (whole groups go).
        // Group lengths (gggg,0000) are retired and would be wrong after editing.
        ctx.report.removed += 1;
        return None;
    }
    if tag == PATIENT_NAME || tag == PATIENT_ID {
        // Table action Z; a pseudonym is the dummy value Z allows, and keeps patients apart.
        ctx.report.replaced += 1;
        return Some(DataElement::new(
            tag,
            vr,
            PrimitiveValue::from(ctx.pseudonym.as_str()),
        ));
    }
    if let Some(action) = action_for(tag) {
        return match action.resolve() {
            Resolved::Remove => {
                ctx.report.removed += 1;
                None
            }
            Resolved::Empty => {
                ctx.report.emptied += 1;
                Some(empty_like(tag, vr))
            }
            Resolved::Dummy => {
                ctx.report.replaced += 1;
                if vr == VR::SQ {
                    let seq = deid_items(e, ctx, true)?;
                    Some(DataElement::new(tag, VR::SQ, seq))
                } else if vr == VR::UI {
                    let v = ctx.map_uid(&text_of(e));
                    Some(DataElement::new(tag, vr, PrimitiveValue::from(v)))
                } else {
                    Some(DataElement::new(tag, vr, dummy_value(vr)))
                }
            }
            Resolved::Uid => {
                if vr == VR::SQ {
                    let seq = deid_items(e, ctx, clean_text)?;
                    return Some(DataElement::new(tag, VR::SQ, seq));
                }
                let text = text_of(e);
                let mapped: Vec<String> = text
                    .split('\\')
                    .map(|u| ctx.map_uid(u))
                    .filter(|u| !u.is_empty())
                    .collect();
                let value = match mapped.len() {
                    0 => PrimitiveValue::Empty,
                    1 => PrimitiveValue::from(mapped[0].clone()),
                    _ => PrimitiveValue::Strs(mapped.into()),
                };
                Some(DataElement::new(tag, VR::UI, value))
            }
            Resolved::KeepReplacingUids => {
                if vr == VR::SQ {
                    let seq = deid_items(e, ctx, clean_text)?;
                    Some(DataElement::new(tag, VR::SQ, seq))
                } else {
                    ctx.report.emptied += 1;
                    Some(empty_like(tag, vr))
                }
            }
        };
    }
    // Not in the table: keep, but clean sequences recursively and, inside D sequences, text.
    if vr == VR::SQ {
        let seq = deid_items(e, ctx, clean_text)?;
        return Some(DataElement::new(tag, VR::SQ, seq));
    }
    if matches!(vr, VR::DA | VR::DT) && !text_of(e).trim().is_empty() {
        // Beyond Table E.1-1: dates it does not list (e.g. Date of Last Calibration) still
        // tell when the patient was scanned; HIPAA Safe Harbor counts every date as an
        // identifier, so they get a dummy date too.
        ctx.report.replaced += 1;
        return Some(DataElement::new(tag, vr, dummy_value(vr)));
    }
    if clean_text && is_texty(vr) {
        ctx.report.replaced += 1;
        return Some(DataElement::new(tag, vr, dummy_value(vr)));
    }
    Some(e.clone())
}

/// True for SOP classes whose pixels often carry burned-in text (secondary capture,
/// ultrasound), where a missing Burned In Annotation flag deserves a warning.
fn burn_in_prone(sop_class: &str) -> bool {
    sop_class.starts_with("1.2.840.10008.5.1.4.1.1.7")
        || sop_class.starts_with("1.2.840.10008.5.1.4.1.1.6.")
        || sop_class == "1.2.840.10008.5.1.4.1.1.3.1"
}

fn trimmed(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// One de-identified file, ready to write.
struct Prepared {
    rel_path: PathBuf,
    bytes: Vec<u8>,
    pseudonym: String,
    warning: Option<String>,
}

/// De-identifies one file; `Err(reason)` when it is skipped.
fn prepare(path: &Path, opts: &DeidOptions, report: &mut DeidReport) -> Result<Prepared, String> {
    let file = dicom_object::open_file(path)
        .map_err(|_| "not a readable DICOM Part 10 file (skipped)".to_string())?;
    let meta = file.meta().clone();
    if trimmed(&meta.media_storage_sop_class_uid) == DICOMDIR_CLASS {
        return Err("DICOMDIR index (skipped: it would point to the original file names)".into());
    }
    let obj = file.into_inner();
    let get_text = |t: Tag| obj.get(t).map(text_of).unwrap_or_default();
    let sop_class = {
        let s = get_text(SOP_CLASS_UID);
        if s.trim().is_empty() {
            trimmed(&meta.media_storage_sop_class_uid).to_string()
        } else {
            trimmed(&s).to_string()
        }
    };
    let burned = obj.get(BURNED_IN_ANNOTATION).map(text_of);
    let mut warning = None;
    match burned.as_deref().map(|s| trimmed(s).to_ascii_uppercase()) {
        Some(v) if v == "YES" && !opts.allow_burned_in => {
            return Err(
                "Burned In Annotation is YES: the pixels may show identifying text \
                        (skipped; allow burned-in annotation to process it anyway)"
                    .into(),
            );
        }
        Some(v) if v == "YES" => {
            warning = Some(
                "Burned In Annotation is YES and was allowed: the pixels were NOT cleaned".into(),
            );
        }
        None if burn_in_prone(&sop_class) => {
            warning = Some(
                "no Burned In Annotation flag on a secondary-capture/ultrasound image: \
                 check the pixels for burned-in text"
                    .into(),
            );
        }
        _ => {}
    }
    // Some exporters leave the data set's SOP UIDs empty and keep them only in the file meta.
    let mut sop_uid = trimmed(&get_text(SOP_INSTANCE_UID)).to_string();
    if sop_uid.is_empty() {
        sop_uid = trimmed(&meta.media_storage_sop_instance_uid).to_string();
    }
    if sop_uid.is_empty() {
        return Err("no SOP Instance UID (skipped)".into());
    }
    let series_uid = trimmed(&get_text(SERIES_INSTANCE_UID)).to_string();
    let pseudo = pseudonym(
        &opts.key,
        trimmed(&get_text(PATIENT_ID)),
        trimmed(&get_text(PATIENT_NAME)),
    );
    let mut ctx = Ctx {
        key: &opts.key,
        pseudonym: pseudo.clone(),
        report,
    };
    let mut out = deid_object(&obj, &mut ctx, false);
    out.put(DataElement::new(
        PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    out.put(DataElement::new(
        DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::from(METHOD_TEXT),
    ));
    let code = InMemDicomObject::from_element_iter([
        DataElement::new(CODE_VALUE, VR::SH, PrimitiveValue::from("113100")),
        DataElement::new(
            CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from("DCM"),
        ),
        DataElement::new(
            CODE_MEANING,
            VR::LO,
            PrimitiveValue::from("Basic Application Confidentiality Profile"),
        ),
    ]);
    out.put(DataElement::new(
        DEIDENTIFICATION_METHOD_CODE_SEQ,
        VR::SQ,
        DataSetSequence::new(vec![code], Length::UNDEFINED),
    ));
    let new_sop = ctx.map_uid(&sop_uid);
    // The data set and the file meta must agree on the instance (and class) UID.
    out.put(DataElement::new(
        SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(new_sop.as_str()),
    ));
    if !sop_class.is_empty() {
        out.put(DataElement::new(
            SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class.as_str()),
        ));
    }
    let new_series = if series_uid.is_empty() {
        "no-series".to_string()
    } else {
        uid::from_hash(&[&opts.key, series_uid.as_bytes()])
    };
    // The file meta group: only type information and the new instance UID survive (the
    // source AE title and private meta information could identify the sender).
    let mut mb = FileMetaTableBuilder::new()
        .transfer_syntax(trimmed(&meta.transfer_syntax))
        .media_storage_sop_class_uid(trimmed(&meta.media_storage_sop_class_uid))
        .media_storage_sop_instance_uid(new_sop.as_str())
        .implementation_class_uid(trimmed(&meta.implementation_class_uid));
    if let Some(v) = meta.implementation_version_name.as_deref() {
        mb = mb.implementation_version_name(trimmed(v));
    }
    let new_meta = mb
        .build()
        .map_err(|_| "its file meta information is incomplete (skipped)".to_string())?;
    let file_out = out.with_exact_meta(new_meta);
    let mut bytes = Vec::new();
    file_out.write_all(&mut bytes).map_err(|_| {
        "cannot be re-encoded (unsupported transfer syntax or invalid values; skipped)".to_string()
    })?;
    Ok(Prepared {
        rel_path: Path::new(&new_series).join(format!("{new_sop}.dcm")),
        bytes,
        pseudonym: pseudo,
        warning,
    })
}

/// All regular files under `dir`, sorted (deterministic order).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| ImagingError::io(dir, e))?;
    let mut entries: Vec<PathBuf> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| ImagingError::io(dir, e))?;
        entries.push(ent.path());
    }
    entries.sort();
    for p in entries {
        // Symlinks are followed only to files, never into folders (no loops).
        let meta = std::fs::symlink_metadata(&p).map_err(|e| ImagingError::io(&p, e))?;
        if meta.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// Writes a de-identified copy of the DICOM file or folder (recursive) `input` into the new
/// folder `output` (replaced whole if it exists, created atomically), as
/// `output/<new Series Instance UID>/<new SOP Instance UID>.dcm`.
///
/// Non-DICOM files, DICOMDIRs and files refused for burned-in annotation are listed in
/// [`DeidReport::files_skipped`]. An error is returned only when the input cannot be read as
/// a whole, `output` overlaps `input`, nothing could be de-identified, or writing fails.
pub fn deidentify(input: &Path, output: &Path, opts: &DeidOptions) -> Result<DeidReport> {
    if !input.exists() {
        return Err(ImagingError::input(
            input,
            "does not exist",
            "give a DICOM file or a folder of DICOM files",
        ));
    }
    if opts.key.is_empty() {
        return Err(ImagingError::Invalid(
            "the de-identification key is empty; give a secret key so that pseudonyms \
             cannot be recomputed by others"
                .into(),
        ));
    }
    let canon_in = input
        .canonicalize()
        .map_err(|e| ImagingError::io(input, e))?;
    let out_abs = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() && p.exists() => p
            .canonicalize()
            .map_err(|e| ImagingError::io(p, e))?
            .join(output.file_name().unwrap_or_default()),
        _ => std::env::current_dir()
            .map_err(|e| ImagingError::io(output, e))?
            .join(output),
    };
    if out_abs.starts_with(&canon_in) || canon_in.starts_with(&out_abs) {
        return Err(ImagingError::input(
            output,
            "the output folder overlaps the input (it would be replaced or read while written)",
            "choose an output folder outside the input",
        ));
    }
    let mut files = Vec::new();
    if input.is_dir() {
        walk(input, &mut files)?;
    } else {
        files.push(input.to_path_buf());
    }

    let mut report = DeidReport::default();
    let mut patients = HashSet::new();
    // Files are written one by one (each atomically) into the temporary output folder, so
    // memory holds one file at a time; the folder replaces `output` only when all went well.
    spinetwin_core::atomic::write_dir::<_, ImagingError>(output, |tmp| {
        let mut written: HashSet<PathBuf> = HashSet::new();
        let pb = spinetwin_core::progress::bar(files.len() as u64, "de-identifying");
        for f in &files {
            pb.inc(1);
            match prepare(f, opts, &mut report) {
                Ok(p) => {
                    if !written.insert(p.rel_path.clone()) {
                        report.warnings.push((
                            f.clone(),
                            "same SOP Instance UID as another input file: only one copy is kept"
                                .into(),
                        ));
                    }
                    if let Some(w) = p.warning {
                        report.warnings.push((f.clone(), w));
                    }
                    patients.insert(p.pseudonym);
                    spinetwin_core::atomic::write_bytes(&tmp.join(&p.rel_path), &p.bytes)?;
                }
                Err(reason) => {
                    tracing::info!(file = %f.display(), "skipped: {reason}");
                    report.files_skipped.push((f.clone(), reason));
                }
            }
        }
        pb.finish_and_clear();
        if written.is_empty() {
            return Err(ImagingError::input(
                input,
                format!(
                    "contains no DICOM file that could be de-identified ({} skipped)",
                    report.files_skipped.len()
                ),
                "check that the input holds DICOM Part 10 files; see the reasons listed per file",
            ));
        }
        report.files_written = written.len();
        Ok(())
    })?;
    report.pseudonyms = patients.len();
    tracing::info!(
        written = report.files_written,
        skipped = report.files_skipped.len(),
        "de-identification finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    use dicom_dictionary_std::StandardDataDictionary;
    use std::collections::BTreeMap;

    const NAME: &str = "Doe^Johnathan";
    const PID: &str = "PID-8765432";
    const NESTED_NAME: &str = "Roe^Nestedperson";
    const NESTED_UID: &str = "1.2.826.0.1.3680043.99.77";
    const CT_CLASS: &str = "1.2.840.10008.5.1.4.1.1.2";
    const PRIVATE_TEXT: &str = "PRIVATEHOSPITALNOTE";

    fn opts(key: &[u8]) -> DeidOptions {
        DeidOptions {
            key: key.to_vec(),
            allow_burned_in: false,
        }
    }

    /// The VR of a table row from the standard dictionary, when it is a plain VR.
    fn dict_vr(tag: Tag) -> Option<VR> {
        match StandardDataDictionary.by_tag(tag).map(|e| e.vr()) {
            Some(VirtualVr::Exact(vr)) => Some(vr),
            _ => None,
        }
    }

    fn nested_item() -> InMemDicomObject {
        InMemDicomObject::from_element_iter([
            DataElement::new(
                Tag(0x0040, 0xA123),
                VR::PN,
                PrimitiveValue::from(NESTED_NAME),
            ),
            DataElement::new(
                Tag(0x0008, 0x1155),
                VR::UI,
                PrimitiveValue::from(NESTED_UID),
            ),
            DataElement::new(Tag(0x0008, 0x1150), VR::UI, PrimitiveValue::from(CT_CLASS)),
        ])
    }

    /// A plausible value for a table attribute of VR `vr` (distinct per tag where text).
    fn value_for(tag: Tag, vr: VR, i: usize) -> Option<Elem> {
        let text = format!("S{:04X}{:04X}", tag.group(), tag.element());
        let v = match vr {
            VR::SQ => {
                return Some(DataElement::new(
                    tag,
                    VR::SQ,
                    DataSetSequence::new(vec![nested_item()], Length::UNDEFINED),
                ))
            }
            VR::UI => PrimitiveValue::from(format!("1.2.826.0.1.3680043.99.{}", 1000 + i)),
            VR::PN => PrimitiveValue::from(NAME),
            VR::DA => PrimitiveValue::from("20240315"),
            VR::TM => PrimitiveValue::from("101112"),
            VR::DT => PrimitiveValue::from("20240315101112"),
            VR::AS => PrimitiveValue::from("045Y"),
            VR::CS => PrimitiveValue::from("SECRETCS"),
            VR::IS => PrimitiveValue::from("42"),
            VR::DS => PrimitiveValue::from("4.5"),
            VR::US => PrimitiveValue::from(7u16),
            VR::SS => PrimitiveValue::from(7i16),
            VR::UL => PrimitiveValue::from(7u32),
            VR::SL => PrimitiveValue::from(7i32),
            VR::FL => PrimitiveValue::from(7f32),
            VR::FD => PrimitiveValue::from(7f64),
            VR::OB | VR::UN => PrimitiveValue::U8(vec![1u8, 2, 3, 4].into()),
            VR::OW => PrimitiveValue::U16(vec![0x0102u16, 0x0304].into()),
            VR::AE | VR::SH | VR::LO | VR::ST | VR::LT | VR::UT | VR::UC => {
                PrimitiveValue::from(text)
            }
            _ => return None,
        };
        Some(DataElement::new(tag, vr, v))
    }

    struct Input {
        /// Table rows put into the file: tag -> original element.
        rows: BTreeMap<Tag, Elem>,
        pixels: Vec<u8>,
    }

    /// A CT-like file holding every table attribute whose VR can be filled generically.
    fn make_file(
        dir: &Path,
        file_name: &str,
        sop: &str,
        series: &str,
        burned: Option<&str>,
    ) -> Input {
        let mut obj = InMemDicomObject::new_empty();
        let mut rows = BTreeMap::new();
        for (i, &(g, e, _, _)) in table::TABLE_E1_1.iter().enumerate() {
            // Command (0000) and meta (0002) groups cannot live in a data set; the digital
            // signature and padding markers are not ordinary attributes.
            if g == 0x0000 || g == 0x0002 || g >= 0xFFFA {
                continue;
            }
            let tag = Tag(g, e);
            if let Some(elem) = dict_vr(tag).and_then(|vr| value_for(tag, vr, i)) {
                rows.insert(tag, elem.clone());
                obj.put(elem);
            }
        }
        let put = |obj: &mut InMemDicomObject, t: Tag, vr: VR, v: &str| {
            obj.put(DataElement::new(t, vr, PrimitiveValue::from(v)));
        };
        put(&mut obj, SOP_CLASS_UID, VR::UI, CT_CLASS);
        put(&mut obj, SOP_INSTANCE_UID, VR::UI, sop);
        put(&mut obj, SERIES_INSTANCE_UID, VR::UI, series);
        put(
            &mut obj,
            Tag(0x0020, 0x000D),
            VR::UI,
            "1.2.826.0.1.3680043.99.1",
        );
        put(&mut obj, PATIENT_NAME, VR::PN, NAME);
        put(&mut obj, PATIENT_ID, VR::LO, PID);
        put(&mut obj, Tag(0x0008, 0x0060), VR::CS, "CT");
        if let Some(b) = burned {
            put(&mut obj, BURNED_IN_ANNOTATION, VR::CS, b);
        }
        for (t, v) in [
            (Tag(0x0028, 0x0002), 1u16),
            (Tag(0x0028, 0x0010), 2),
            (Tag(0x0028, 0x0011), 3),
            (Tag(0x0028, 0x0100), 16),
            (Tag(0x0028, 0x0101), 16),
            (Tag(0x0028, 0x0102), 15),
            (Tag(0x0028, 0x0103), 1),
        ] {
            obj.put(DataElement::new(t, VR::US, PrimitiveValue::from(v)));
        }
        put(&mut obj, Tag(0x0028, 0x0004), VR::CS, "MONOCHROME2");
        let pixels: Vec<u8> = (0u8..12).map(|b| b.wrapping_mul(37)).collect();
        obj.put(DataElement::new(
            Tag(0x7FE0, 0x0010),
            VR::OB,
            PrimitiveValue::U8(pixels.clone().into()),
        ));
        put(&mut obj, Tag(0x0009, 0x0010), VR::LO, "ACME PRIVATE");
        put(&mut obj, Tag(0x0009, 0x1001), VR::LO, PRIVATE_TEXT);
        put(&mut obj, Tag(0x6000, 0x0010), VR::US, "4");
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid(CT_CLASS)
            .media_storage_sop_instance_uid(sop)
            .implementation_class_uid("1.2.826.0.1.3680043.99.0")
            .source_application_entity_title("SECRETAE")
            .build()
            .unwrap();
        let path = dir.join(file_name);
        obj.with_exact_meta(meta).write_to_file(&path).unwrap();
        Input { rows, pixels }
    }

    fn dcm_files(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        walk(dir, &mut v).unwrap();
        v
    }

    fn is_empty_value(e: &Elem) -> bool {
        match e.value() {
            Value::Sequence(s) => s.items().is_empty(),
            Value::Primitive(p) => p.calculate_byte_len() == 0,
            Value::PixelSequence(_) => false,
        }
    }

    fn nested_ok(e: &Elem) {
        let Value::Sequence(s) = e.value() else {
            panic!("{:?} is no longer a sequence", e.tag())
        };
        for it in s.items() {
            if let Some(n) = it.get(Tag(0x0040, 0xA123)) {
                assert_ne!(
                    text_of(n).trim(),
                    NESTED_NAME,
                    "nested name kept in {:?}",
                    e.tag()
                );
            }
            if let Some(u) = it.get(Tag(0x0008, 0x1155)) {
                let u = text_of(u);
                let u = trimmed(&u);
                assert!(
                    u != NESTED_UID && uid::is_valid(u),
                    "nested UID in {:?}",
                    e.tag()
                );
            }
        }
    }

    #[test]
    fn every_table_attribute_obeys_its_action() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir(&src).unwrap();
        let input = make_file(
            &src,
            "Doe_Johnathan.dcm",
            "1.2.826.0.1.3680043.99.10",
            "1.2.826.0.1.3680043.99.20",
            None,
        );
        assert!(
            input.rows.len() > 300,
            "only {} table rows filled",
            input.rows.len()
        );
        let out = d.path().join("out");
        let rep = deidentify(&src, &out, &opts(b"secret")).unwrap();
        assert_eq!(rep.files_written, 1);
        assert_eq!(rep.pseudonyms, 1);
        assert!(
            rep.private_removed >= 2 && rep.removed > 100 && rep.uids_replaced > 10,
            "{rep:?}"
        );
        let files = dcm_files(&out);
        assert_eq!(files.len(), 1);
        let file = dicom_object::open_file(&files[0]).unwrap();
        let meta = file.meta().clone();
        let obj = file.into_inner();
        let pseudo = pseudonym(b"secret", PID, NAME);
        let mut checked = 0;
        for (tag, orig) in &input.rows {
            let Some(action) = action_for(*tag) else {
                continue;
            };
            let got = obj.get(*tag);
            if *tag == PATIENT_NAME || *tag == PATIENT_ID {
                continue; // checked below (pseudonym)
            }
            // The documented resolution of compound actions, spelled out independently of
            // `Action::resolve` so that a change there is caught here.
            let want = match action {
                Action::X => Resolved::Remove,
                Action::Z | Action::XZ => Resolved::Empty,
                Action::D | Action::XD | Action::ZD | Action::XZD => Resolved::Dummy,
                Action::U => Resolved::Uid,
                Action::XZU => Resolved::KeepReplacingUids,
            };
            match want {
                Resolved::Remove => assert!(got.is_none(), "{tag:?} should be removed"),
                Resolved::Empty => {
                    let g = got.unwrap_or_else(|| panic!("{tag:?} should be present, empty"));
                    assert!(is_empty_value(g), "{tag:?} should be empty: {g:?}");
                }
                Resolved::Dummy => {
                    let g = got.unwrap_or_else(|| panic!("{tag:?} should hold a dummy"));
                    if g.vr() == VR::SQ {
                        nested_ok(g);
                    } else {
                        assert!(!is_empty_value(g), "{tag:?} dummy is empty");
                        assert_ne!(g.value(), orig.value(), "{tag:?} kept its value");
                        if g.vr() == VR::UI {
                            assert!(uid::is_valid(trimmed(&text_of(g))));
                        }
                    }
                }
                Resolved::Uid => {
                    let g = got.unwrap_or_else(|| panic!("{tag:?} should hold a new UID"));
                    let (new, old) = (text_of(g), text_of(orig));
                    assert!(uid::is_valid(trimmed(&new)), "{tag:?}: {new}");
                    assert_ne!(trimmed(&new), trimmed(&old), "{tag:?} UID kept");
                }
                Resolved::KeepReplacingUids => {
                    let g = got.unwrap_or_else(|| panic!("{tag:?} sequence should be kept"));
                    nested_ok(g);
                }
            }
            checked += 1;
        }
        assert!(checked > 300, "{checked}");
        // Pseudonym, de-identification markers, private tags, overlays, meta.
        assert_eq!(trimmed(&text_of(obj.get(PATIENT_NAME).unwrap())), pseudo);
        assert_eq!(trimmed(&text_of(obj.get(PATIENT_ID).unwrap())), pseudo);
        assert_eq!(
            trimmed(&text_of(obj.get(PATIENT_IDENTITY_REMOVED).unwrap())),
            "YES"
        );
        assert!(!text_of(obj.get(DEIDENTIFICATION_METHOD).unwrap()).is_empty());
        let Value::Sequence(codes) = obj.get(DEIDENTIFICATION_METHOD_CODE_SEQ).unwrap().value()
        else {
            panic!("method code sequence missing")
        };
        let code = &codes.items()[0];
        assert_eq!(trimmed(&text_of(code.get(CODE_VALUE).unwrap())), "113100");
        assert_eq!(
            trimmed(&text_of(code.get(CODING_SCHEME_DESIGNATOR).unwrap())),
            "DCM"
        );
        assert!(
            obj.iter().all(|e| e.tag().group() % 2 == 0),
            "private tag left"
        );
        assert!(obj.get(Tag(0x6000, 0x0010)).is_none());
        assert_eq!(trimmed(&text_of(obj.get(SOP_CLASS_UID).unwrap())), CT_CLASS);
        let new_sop = text_of(obj.get(SOP_INSTANCE_UID).unwrap());
        assert_eq!(
            trimmed(&meta.media_storage_sop_instance_uid),
            trimmed(&new_sop)
        );
        assert_eq!(trimmed(&meta.transfer_syntax), "1.2.840.10008.1.2.1");
        assert!(meta.source_application_entity_title.is_none());
        // Pixel data unchanged.
        let px = obj.get(Tag(0x7FE0, 0x0010)).unwrap();
        assert_eq!(px.to_bytes().unwrap().as_ref(), input.pixels.as_slice());
        // No identifying text anywhere in the output bytes or names.
        let bytes = std::fs::read(&files[0]).unwrap();
        let contains =
            |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
        for needle in [
            "Doe",
            "Johnathan",
            PID,
            NESTED_NAME,
            PRIVATE_TEXT,
            "SECRETAE",
            "20240315",
        ] {
            assert!(!contains(&bytes, needle), "output still contains {needle}");
        }
        let rel = files[0]
            .strip_prefix(&out)
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(!rel.contains("Doe") && !rel.contains("Johnathan"), "{rel}");
    }

    #[test]
    fn uids_are_consistent_in_a_series_and_stable_across_runs() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir(&src).unwrap();
        let series = "1.2.826.0.1.3680043.99.20";
        make_file(&src, "a.dcm", "1.2.826.0.1.3680043.99.11", series, None);
        make_file(&src, "b.dcm", "1.2.826.0.1.3680043.99.12", series, None);
        std::fs::write(src.join("notes.txt"), b"call Mr Doe back").unwrap();
        let run = |name: &str, key: &[u8]| {
            let out = d.path().join(name);
            let rep = deidentify(&src, &out, &opts(key)).unwrap();
            (out, rep)
        };
        let (o1, r1) = run("o1", b"k1");
        assert_eq!(r1.files_written, 2);
        assert_eq!(r1.files_skipped.len(), 1);
        assert!(
            r1.files_skipped[0].0.ends_with("notes.txt"),
            "{:?}",
            r1.files_skipped
        );
        let f1 = dcm_files(&o1);
        assert_eq!(f1.len(), 2);
        let objs: Vec<_> = f1
            .iter()
            .map(|p| dicom_object::open_file(p).unwrap())
            .collect();
        let get = |o: &dicom_object::DefaultDicomObject, t: Tag| {
            trimmed(&text_of(o.get(t).unwrap())).to_string()
        };
        assert_eq!(
            get(&objs[0], SERIES_INSTANCE_UID),
            get(&objs[1], SERIES_INSTANCE_UID)
        );
        assert_eq!(
            get(&objs[0], Tag(0x0020, 0x000D)),
            get(&objs[1], Tag(0x0020, 0x000D))
        );
        assert_ne!(
            get(&objs[0], SOP_INSTANCE_UID),
            get(&objs[1], SOP_INSTANCE_UID)
        );
        // The series folder is named after the new Series Instance UID.
        assert!(f1[0]
            .parent()
            .unwrap()
            .ends_with(get(&objs[0], SERIES_INSTANCE_UID)));
        // Same key: byte-identical output; other key: other UIDs and pseudonym.
        let (o2, _) = run("o2", b"k1");
        let f2 = dcm_files(&o2);
        for (a, b) in f1.iter().zip(&f2) {
            assert_eq!(a.strip_prefix(&o1).unwrap(), b.strip_prefix(&o2).unwrap());
            assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        }
        let (o3, _) = run("o3", b"k2");
        let o3obj = dicom_object::open_file(&dcm_files(&o3)[0]).unwrap();
        assert_ne!(
            get(&o3obj, SERIES_INSTANCE_UID),
            get(&objs[0], SERIES_INSTANCE_UID)
        );
        assert_ne!(get(&o3obj, PATIENT_NAME), get(&objs[0], PATIENT_NAME));
    }

    #[test]
    fn pseudonyms_are_stable_and_keyed() {
        let p = pseudonym(b"key", PID, NAME);
        assert_eq!(p, pseudonym(b"key", PID, NAME));
        assert_ne!(p, pseudonym(b"other key", PID, NAME));
        assert_ne!(p, pseudonym(b"key", "PID-8765433", NAME));
        assert!(p.starts_with("ST-") && p.len() == 15);
        assert!(p[3..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        // RFC 4231 test case 2 checks the HMAC construction itself.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
    }

    #[test]
    fn burned_in_annotation_is_refused_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir(&src).unwrap();
        make_file(
            &src,
            "x.dcm",
            "1.2.826.0.1.3680043.99.13",
            "1.2.826.0.1.3680043.99.21",
            Some("YES"),
        );
        let e = deidentify(&src, &d.path().join("o"), &opts(b"k"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no DICOM file"), "{e}");
        assert!(!d.path().join("o").exists());
        make_file(
            &src,
            "y.dcm",
            "1.2.826.0.1.3680043.99.14",
            "1.2.826.0.1.3680043.99.21",
            Some("NO"),
        );
        let rep = deidentify(&src, &d.path().join("o"), &opts(b"k")).unwrap();
        assert_eq!(rep.files_written, 1);
        assert_eq!(rep.files_skipped.len(), 1);
        assert!(rep.files_skipped[0].1.contains("Burned In Annotation"));
        let allow = DeidOptions {
            allow_burned_in: true,
            ..opts(b"k")
        };
        let rep = deidentify(&src, &d.path().join("o"), &allow).unwrap();
        assert_eq!(rep.files_written, 2);
        assert_eq!(rep.warnings.len(), 1);
    }

    #[test]
    fn secondary_capture_without_burned_in_flag_gets_a_warning() {
        const SC_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir(&src).unwrap();
        let sop = "1.2.826.0.1.3680043.99.16";
        make_file(&src, "sc.dcm", sop, "1.2.826.0.1.3680043.99.23", None);
        let p = src.join("sc.dcm");
        let obj = dicom_object::open_file(&p).unwrap().into_inner();
        let mut obj = obj;
        obj.put(DataElement::new(
            SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(SC_CLASS),
        ));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid(SC_CLASS)
            .media_storage_sop_instance_uid(sop)
            .implementation_class_uid("1.2.826.0.1.3680043.99.0")
            .build()
            .unwrap();
        obj.with_exact_meta(meta).write_to_file(&p).unwrap();
        let rep = deidentify(&src, &d.path().join("o"), &opts(b"k")).unwrap();
        assert_eq!(rep.files_written, 1);
        assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
        assert!(rep.warnings[0].1.contains("Burned In Annotation"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir(&src).unwrap();
        make_file(
            &src,
            "a.dcm",
            "1.2.826.0.1.3680043.99.15",
            "1.2.826.0.1.3680043.99.22",
            None,
        );
        assert!(deidentify(&src, &src.join("out"), &opts(b"k")).is_err());
        assert!(deidentify(&src, &d.path().join("o"), &opts(b"")).is_err());
        assert!(deidentify(&d.path().join("missing"), &d.path().join("o"), &opts(b"k")).is_err());
        // A single file as input works too.
        let rep = deidentify(&src.join("a.dcm"), &d.path().join("single"), &opts(b"k")).unwrap();
        assert_eq!(rep.files_written, 1);
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in table::TABLE_E1_1.windows(2) {
            assert!(
                (w[0].0, w[0].1) < (w[1].0, w[1].1),
                "{:?} / {:?}",
                w[0].2,
                w[1].2
            );
        }
        assert_eq!(action_for(Tag(0x0010, 0x0010)), Some(Action::Z));
        assert_eq!(action_for(Tag(0x0008, 0x0080)), Some(Action::XZD));
        assert_eq!(action_for(Tag(0x0028, 0x0010)), None);
        assert!(METHOD_TEXT.len() <= 64);
    }

    #[test]
    fn real_dicom_series_keeps_no_identifiers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/ts-example-abdomen-ct/dicom");
        if !src.exists() {
            println!("skipped: {} not present", src.display());
            return;
        }
        // Identifying values of the original, read before de-identification.
        let mut needles = HashSet::new();
        for f in dcm_files(&src) {
            let Ok(o) = dicom_object::open_file(&f) else {
                continue;
            };
            for t in [
                PATIENT_NAME,
                PATIENT_ID,
                Tag(0x0008, 0x0020),
                Tag(0x0008, 0x0080),
            ] {
                if let Some(e) = o.get(t) {
                    let v = trimmed(&text_of(e)).to_string();
                    if v.len() >= 4 {
                        needles.insert(v);
                    }
                }
            }
        }
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("deid");
        let rep = deidentify(&src, &out, &opts(b"test key")).unwrap();
        assert!(rep.files_skipped.is_empty(), "{:?}", rep.files_skipped);
        assert!(rep.files_written > 0);
        let mut outputs = BTreeMap::new();
        for f in dcm_files(&out) {
            let bytes = std::fs::read(&f).unwrap();
            for n in &needles {
                assert!(
                    !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                    "an original identifying value remains in {}",
                    f.display()
                );
            }
            let o = dicom_object::open_file(&f).unwrap();
            outputs.insert(
                trimmed(&o.meta().media_storage_sop_instance_uid).to_string(),
                o,
            );
        }
        // Pixel data (JPEG 2000 fragments here) is carried over unchanged.
        for f in dcm_files(&src) {
            let i = dicom_object::open_file(&f).unwrap();
            let new_uid = uid::from_hash(&[
                b"test key",
                trimmed(&i.meta().media_storage_sop_instance_uid).as_bytes(),
            ]);
            let o = &outputs[&new_uid];
            let px = Tag(0x7FE0, 0x0010);
            assert_eq!(i.get(px).unwrap().value(), o.get(px).unwrap().value());
        }
    }
}
