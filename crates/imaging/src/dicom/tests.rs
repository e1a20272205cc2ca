//! Tests of DICOM import/export on series written by `write_series` (and edited with
//! dicom-object to model what scanners and PACS exports do), plus one real series when the
//! shared data folder is present.

use super::*;
use crate::volume::Grid;
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue, C};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{open_file, DefaultDicomObject, InMemDicomObject};
use nalgebra::{Matrix3, Rotation3, Vector3};
use std::fs;

/// A linear field of world position: trilinear/linear interpolation reproduces it, so
/// resampled values can be checked against it up to the 0.5 HU rounding of storage.
fn field(p: Vector3<f64>) -> f64 {
    40.0 + 2.0 * p.x - 3.0 * p.y + 5.0 * p.z
}

/// The field rounded to whole HU at every voxel centre (round-trips exactly).
fn field_volume(grid: &Grid) -> Volume<f32> {
    Volume::from_fn(grid.clone(), |i, j, k| {
        field(grid.index_to_world(Vector3::new(i as f64, j as f64, k as f64))).round() as f32
    })
}

fn axial_grid() -> Grid {
    Grid::axis_aligned(
        [32, 24, 20],
        [0.7, 0.9, 2.5],
        Vector3::new(-100.25, 50.5, 300.0),
    )
    .unwrap()
}

fn meta(tag: &str, modality: Modality) -> WriteMeta {
    WriteMeta {
        patient_name: "DOE^JANE".into(),
        patient_id: "PID-SECRET-42".into(),
        series_description: format!("test {tag}"),
        study_uid: crate::uid::from_hash(&[b"study", tag.as_bytes()]),
        series_uid: crate::uid::from_hash(&[b"series", tag.as_bytes()]),
        modality,
        body_part: Some("SPINE".into()),
        ..WriteMeta::default()
    }
}

fn write(vol: &Volume<f32>, tag: &str, dir: &Path) -> WriteMeta {
    let m = meta(tag, Modality::Ct);
    write_series(vol, &m, dir).unwrap();
    m
}

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn load_dir(dir: &Path, o: &LoadOptions) -> Result<LoadedSeries> {
    load(&[dir.to_path_buf()], None, o)
}

fn assert_same_geometry(a: &Grid, b: &Grid) {
    assert_eq!(a.dims, b.dims);
    for ax in 0..3 {
        assert!(
            (a.spacing[ax] - b.spacing[ax]).abs() < 1e-4,
            "{:?} {:?}",
            a.spacing,
            b.spacing
        );
    }
    assert!(
        (a.origin - b.origin).norm() < 1e-4,
        "{} {}",
        a.origin,
        b.origin
    );
    assert!(
        (a.direction - b.direction).abs().max() < 1e-4,
        "{} {}",
        a.direction,
        b.direction
    );
}

fn edit(path: &Path, f: impl FnOnce(&mut DefaultDicomObject)) {
    let mut obj = open_file(path).unwrap();
    f(&mut obj);
    obj.write_to_file(path).unwrap();
}

fn put_ds(obj: &mut InMemDicomObject, tag: dicom_core::Tag, vals: &[f64]) {
    obj.put(DataElement::new(
        tag,
        VR::DS,
        PrimitiveValue::Strs(vals.iter().map(|v| format!("{v}")).collect::<C<String>>()),
    ));
}

fn slice_file(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("IM{:05}.dcm", k + 1))
}

#[test]
fn round_trip_axis_aligned() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("ct");
    let vol = field_volume(&axial_grid());
    write(&vol, "axial", &dir);
    assert!(slice_file(&dir, 0).exists() && slice_file(&dir, 19).exists());
    let l = load_dir(&dir, &opts()).unwrap();
    assert_same_geometry(l.volume.grid(), vol.grid());
    assert_eq!(l.volume.data(), vol.data());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = &l.summary;
    assert_eq!(s.modality, Modality::Ct);
    assert_eq!((s.n_images, s.rows, s.columns), (20, 24, 32));
    assert_eq!(s.pixel_spacing, Some([0.9, 0.7]));
    assert!((s.slice_spacing.unwrap() - 2.5).abs() < 1e-6);
    assert_eq!(s.orientation.as_deref(), Some("LPS"));
    assert_eq!(s.body_part.as_deref(), Some("SPINE"));
    assert!(!s.multiframe);
    assert!(s.transfer_syntax.contains("1.2.840.10008.1.2.1"));
    // HU beyond the int16 range still round-trip (intercept moves).
    let hot = vol.map(|v| v * 10.0 + 20000.0);
    let dir2 = t.path().join("hot");
    write(&hot, "hot", &dir2);
    assert_eq!(load_dir(&dir2, &opts()).unwrap().volume.data(), hot.data());
}

#[test]
fn round_trip_oblique() {
    let t = tempfile::tempdir().unwrap();
    let r = Rotation3::from_euler_angles(0.25, -0.4, 0.7).into_inner();
    let g = Grid::new(
        [20, 16, 12],
        [0.8, 1.1, 1.7],
        Vector3::new(12.5, -33.25, 87.0),
        r,
    )
    .unwrap();
    let vol = field_volume(&g);
    write(&vol, "oblique", t.path());
    let l = load_dir(t.path(), &opts()).unwrap();
    assert_same_geometry(l.volume.grid(), &g);
    assert_eq!(l.volume.data(), vol.data());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn order_comes_from_positions_not_names_or_instance_numbers() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let vol = field_volume(&axial_grid());
    write(&vol, "shuffle", &src);
    let dst = t.path().join("shuffled");
    fs::create_dir(&dst).unwrap();
    for k in 0..20 {
        // Name order and InstanceNumber are both scrambled (and disagree with each other).
        let name = format!("z{:02}.dcm", (k * 7 + 3) % 20);
        let p = dst.join(name);
        fs::copy(slice_file(&src, k), &p).unwrap();
        edit(&p, |o| {
            o.put(DataElement::new(
                tags::INSTANCE_NUMBER,
                VR::IS,
                PrimitiveValue::from(((k * 13 + 5) % 20 + 1).to_string()),
            ));
        });
    }
    let l = load_dir(&dst, &opts()).unwrap();
    assert_same_geometry(l.volume.grid(), vol.grid());
    assert_eq!(l.volume.data(), vol.data());
}

#[test]
fn missing_slice_errors_by_default_and_interpolates_on_request() {
    let t = tempfile::tempdir().unwrap();
    let vol = field_volume(&axial_grid());
    write(&vol, "gap", t.path());
    fs::remove_file(slice_file(t.path(), 7)).unwrap();
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
    assert!(e.contains("--resample-gaps"), "{e}");
    assert!(
        e.contains("IM00007.dcm") && e.contains("IM00009.dcm"),
        "{e}"
    );
    assert!(e.contains("315.00") && e.contains("320.00"), "{e}");

    let o = LoadOptions {
        resample_gaps: true,
        ..opts()
    };
    let l = load_dir(t.path(), &o).unwrap();
    assert_same_geometry(l.volume.grid(), vol.grid());
    assert!(
        l.warnings.iter().any(|w| w.contains("gap")),
        "{:?}",
        l.warnings
    );
    for k in 0..20 {
        for (i, j) in [(0, 0), (31, 23), (10, 5)] {
            let got = f64::from(l.volume.get(i, j, k));
            let want = f64::from(vol.get(i, j, k));
            // Exact except the re-created slice, which is linear between rounded neighbours.
            let tol = if k == 7 { 1.0 } else { 1e-3 };
            assert!((got - want).abs() <= tol, "k={k}: {got} vs {want}");
        }
    }
    // The interpolated slice really is the mean of its neighbours.
    let mid = 0.5 * (vol.get(4, 4, 6) + vol.get(4, 4, 8));
    assert!((l.volume.get(4, 4, 7) - mid).abs() < 1e-3);
}

#[test]
fn slightly_uneven_spacing_is_resampled_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let vol = field_volume(&axial_grid());
    write(&vol, "uneven", t.path());
    let p = slice_file(t.path(), 10);
    let z10 = 300.0 + 10.0 * 2.5;
    edit(&p, |o| {
        put_ds(o, tags::IMAGE_POSITION_PATIENT, &[-100.25, 50.5, z10 + 0.3])
    });
    let l = load_dir(t.path(), &opts()).unwrap();
    assert!(
        l.warnings.iter().any(|w| w.contains("uneven")),
        "{:?}",
        l.warnings
    );
    assert_eq!(l.volume.dims(), [32, 24, 20]);
    assert!((l.volume.grid().spacing[2] - 2.5).abs() < 1e-9);
}

#[test]
fn truncated_file_is_named_or_skipped_never_a_panic() {
    // Cut in the pixel data: the header reads, so the file joins the series and loading
    // names it.
    let t = tempfile::tempdir().unwrap();
    write(&field_volume(&axial_grid()), "trunc", t.path());
    let cut = |k: usize, keep: f64| {
        let p = slice_file(t.path(), k);
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
    };
    cut(4, 0.7);
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(e.contains("IM00005.dcm") && e.contains("truncated"), "{e}");
    // Cut in the header: scan skips it with a reason, and the resulting gap error says so.
    cut(9, 0.1);
    let s = scan(&[t.path().to_path_buf()]).unwrap();
    let (_, why) = s
        .skipped
        .iter()
        .find(|(p, _)| p.ends_with("IM00010.dcm"))
        .expect("cut file skipped");
    assert!(why.contains("not a readable DICOM file"), "{why}");
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(
        e.contains("IM00010.dcm") && e.contains("could not be read"),
        "{e}"
    );
}

#[test]
fn non_image_dicom_is_skipped_with_a_reason() {
    let t = tempfile::tempdir().unwrap();
    let vol = field_volume(&axial_grid());
    write(&vol, "sr", t.path());
    let mut sr = InMemDicomObject::new_empty();
    sr.put(DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::BASIC_TEXT_SR_STORAGE,
    ));
    sr.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        "2.25.1234",
    ));
    sr.put(DataElement::new(tags::MODALITY, VR::CS, "SR"));
    sr.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        "2.25.99",
    ));
    let sr = sr
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap();
    let p = t.path().join("report.dcm");
    sr.write_to_file(&p).unwrap();
    fs::write(t.path().join("notes.txt"), "not dicom").unwrap();
    let s = scan(&[t.path().to_path_buf()]).unwrap();
    assert_eq!(s.series.len(), 1);
    let why = &s
        .skipped
        .iter()
        .find(|(q, _)| q == &p)
        .expect("SR listed")
        .1;
    assert!(
        why.contains("no image") && why.contains("Basic Text SR"),
        "{why}"
    );
    assert!(s.skipped.iter().any(|(q, _)| q.ends_with("notes.txt")));
    assert_eq!(
        load_dir(t.path(), &opts()).unwrap().volume.data(),
        vol.data()
    );
}

#[test]
fn empty_or_dicom_free_folder_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let e = scan(&[t.path().to_path_buf()]).unwrap_err().to_string();
    assert!(e.contains("no DICOM files found"), "{e}");
    assert!(e.contains("point to the folder holding the series"), "{e}");
    fs::write(t.path().join("a.txt"), "hello").unwrap();
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(
        e.contains("no DICOM image series found") && e.contains("a.txt"),
        "{e}"
    );
    let missing = t.path().join("nope");
    assert!(scan(&[missing]).is_err());
}

#[test]
fn two_series_are_listed_and_chosen_by_uid() {
    let t = tempfile::tempdir().unwrap();
    let a = field_volume(&axial_grid());
    let g_b = Grid::axis_aligned([16, 12, 6], [1.0, 1.0, 3.0], Vector3::zeros()).unwrap();
    let b = field_volume(&g_b);
    let ma = write(&a, "first", &t.path().join("a"));
    let mb = meta("second", Modality::Mr);
    write_series(&b, &mb, &t.path().join("b")).unwrap();
    let s = scan(&[t.path().to_path_buf()]).unwrap();
    assert_eq!(s.series.len(), 2);
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(
        e.contains(&ma.series_uid) && e.contains(&mb.series_uid),
        "{e}"
    );
    assert!(e.contains("--series") && e.contains("test second"), "{e}");
    let l = load(&[t.path().to_path_buf()], Some(&mb.series_uid), &opts()).unwrap();
    assert_eq!(l.volume.dims(), [16, 12, 6]);
    assert_eq!(l.volume.data(), b.data());
    // MR is flagged: no HU semantics.
    assert_eq!(l.summary.modality, Modality::Mr);
    assert!(
        l.warnings.iter().any(|w| w.contains("not HU")),
        "{:?}",
        l.warnings
    );
    let e = load(&[t.path().to_path_buf()], Some("1.2.3"), &opts()).unwrap_err();
    assert!(e.to_string().contains(&ma.series_uid));
}

#[test]
fn phi_is_kept_apart_and_redacted() {
    let t = tempfile::tempdir().unwrap();
    write(&field_volume(&axial_grid()), "phi", t.path());
    let s = &scan(&[t.path().to_path_buf()]).unwrap().series[0];
    let shown = format!("{s:?} {} {}", s.phi, serde_json::to_string(s).unwrap());
    assert!(
        !shown.contains("DOE") && !shown.contains("PID-SECRET"),
        "{shown}"
    );
    assert!(shown.contains("Phi(<redacted>)"));
    assert_eq!(s.phi.patient_name(), Some("DOE^JANE"));
    assert_eq!(s.phi.patient_id(), Some("PID-SECRET-42"));
}

/// Writes a series whose slice k is shifted along its column direction by
/// tan(tilt) * (distance along the normal), as a tilted gantry produces, with voxel values
/// of `field` at the sheared positions. `rot` orients the slices (identity: axial).
fn write_tilted(dir: &Path, tilt_deg: f64, rot: Matrix3<f64>) {
    let g = Grid::new(
        [32, 24, 16],
        [1.0, 1.0, 2.0],
        Vector3::new(-16.0, -12.0, 0.0),
        rot,
    )
    .unwrap();
    let shear = tilt_deg.to_radians().tan();
    let col = rot.column(1).into_owned();
    let sheared = |i: usize, j: usize, k: usize| {
        g.index_to_world(Vector3::new(i as f64, j as f64, k as f64))
            + col * (shear * 2.0 * k as f64)
    };
    let vol = Volume::from_fn(g.clone(), |i, j, k| field(sheared(i, j, k)).round() as f32);
    write(&vol, "tilt", dir);
    for k in 0..16 {
        let p = sheared(0, 0, k);
        edit(&slice_file(dir, k), |o| {
            put_ds(o, tags::IMAGE_POSITION_PATIENT, &[p.x, p.y, p.z]);
        });
    }
}

/// Every voxel of `l` that holds data matches the field at its centre.
fn assert_matches_field(l: &LoadedSeries) {
    let g = l.volume.grid();
    let (fill, _) = l.volume.min_max();
    let mut inside = 0;
    for k in 0..g.dims[2] {
        for j in 0..g.dims[1] {
            for i in 0..g.dims[0] {
                let v = f64::from(l.volume.get(i, j, k));
                if v == fill {
                    continue; // outside the sheared data
                }
                let p = g.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                assert!(
                    (v - field(p)).abs() < 1.01,
                    "({i},{j},{k}): {v} vs {}",
                    field(p)
                );
                inside += 1;
            }
        }
    }
    assert!(inside > g.len() * 6 / 10, "only {inside} voxels with data");
}

#[test]
fn gantry_tilt_on_oblique_slices_is_corrected() {
    let t = tempfile::tempdir().unwrap();
    // Chosen so the field changes along the shear (column) direction: the shear is visible.
    let rot = Rotation3::from_euler_angles(-0.3, 0.2, -0.5).into_inner();
    write_tilted(t.path(), 12.0, rot);
    let l = load_dir(t.path(), &opts()).unwrap();
    assert!(
        l.warnings.iter().any(|w| w.contains("12.00")),
        "{:?}",
        l.warnings
    );
    assert!((l.volume.grid().direction - rot).abs().max() < 1e-6);
    assert_matches_field(&l);
}

#[test]
fn gantry_tilt_is_refused_or_corrected() {
    let t = tempfile::tempdir().unwrap();
    write_tilted(t.path(), 15.0, Matrix3::identity());
    let refuse = LoadOptions {
        tilt: TiltPolicy::Refuse,
        ..opts()
    };
    let e = load_dir(t.path(), &refuse).unwrap_err().to_string();
    assert!(e.contains("tilt") && e.contains("15.00"), "{e}");

    let l = load_dir(t.path(), &opts()).unwrap();
    assert!(l
        .warnings
        .iter()
        .any(|w| w.contains("tilt") && w.contains("15.00")));
    // Below the 0.5 degree threshold a stack is taken as it is, even when refusing tilt.
    let t_small = tempfile::tempdir().unwrap();
    write_tilted(t_small.path(), 0.3, Matrix3::identity());
    let small = load_dir(t_small.path(), &refuse).unwrap();
    assert!(small.warnings.is_empty(), "{:?}", small.warnings);
    let g = l.volume.grid();
    // The grid is regular and axis-aligned (IOP is axial); slices 2 mm apart along z.
    assert!((g.direction - Matrix3::identity()).abs().max() < 1e-9);
    assert!((g.spacing[2] - 2.0).abs() < 1e-9);
    assert_eq!(g.dims[2], 16);
    assert_matches_field(&l);
}

#[test]
fn inconsistent_series_are_rejected_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let vol = field_volume(&axial_grid());
    write(&vol, "iop", t.path());
    edit(&slice_file(t.path(), 3), |o| {
        put_ds(
            o,
            tags::IMAGE_ORIENTATION_PATIENT,
            &[1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        );
    });
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(
        e.contains("IM00004.dcm") && e.contains("ImageOrientationPatient"),
        "{e}"
    );

    let t = tempfile::tempdir().unwrap();
    write(&vol, "ps", t.path());
    edit(&slice_file(t.path(), 5), |o| {
        put_ds(o, tags::PIXEL_SPACING, &[0.9, 0.75])
    });
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(
        e.contains("IM00006.dcm") && e.contains("PixelSpacing"),
        "{e}"
    );

    let t = tempfile::tempdir().unwrap();
    write(&vol, "dup", t.path());
    fs::copy(slice_file(t.path(), 2), t.path().join("copy.dcm")).unwrap();
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(e.contains("same position") && e.contains("copy.dcm"), "{e}");
}

/// An Enhanced CT file: 5 frames stored in descending z, unsigned 16-bit, rescale in the
/// shared PixelValueTransformationSequence.
#[test]
fn enhanced_multi_frame_ct_reads_back() {
    let (nx, ny, nf) = (6usize, 4usize, 5usize);
    let item = |elems: Vec<InMemElement>| InMemDicomObject::from_element_iter(elems);
    let seq =
        |tag, it: InMemDicomObject| DataElement::new(tag, VR::SQ, DataSetSequence::from(vec![it]));
    let ds_el = |tag, v: &str| DataElement::new(tag, VR::DS, PrimitiveValue::from(v));
    let shared = item(vec![
        seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            item(vec![
                ds_el(tags::PIXEL_SPACING, "0.5\\0.8"),
                ds_el(tags::SLICE_THICKNESS, "1.5"),
            ]),
        ),
        seq(
            tags::PLANE_ORIENTATION_SEQUENCE,
            item(vec![ds_el(
                tags::IMAGE_ORIENTATION_PATIENT,
                "1\\0\\0\\0\\1\\0",
            )]),
        ),
        seq(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            item(vec![
                ds_el(tags::RESCALE_INTERCEPT, "-1024"),
                ds_el(tags::RESCALE_SLOPE, "2"),
            ]),
        ),
    ]);
    // Frame f lies at z = 10 + 1.5 * (nf - 1 - f): stored top-down.
    let z_of = |f: usize| 10.0 + 1.5 * (nf - 1 - f) as f64;
    let per_frame: Vec<InMemDicomObject> = (0..nf)
        .map(|f| {
            item(vec![seq(
                tags::PLANE_POSITION_SEQUENCE,
                item(vec![ds_el(
                    tags::IMAGE_POSITION_PATIENT,
                    &format!("5\\-7\\{}", z_of(f)),
                )]),
            )])
        })
        .collect();
    let stored = |i: usize, j: usize, f: usize| (1000 + i + 10 * j + 100 * f) as u16;
    let mut px = Vec::new();
    for f in 0..nf {
        for j in 0..ny {
            for i in 0..nx {
                px.extend_from_slice(&stored(i, j, f).to_le_bytes());
            }
        }
    }
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    let obj = item(vec![
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::ENHANCED_CT_IMAGE_STORAGE),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "2.25.777"),
        DataElement::new(tags::MODALITY, VR::CS, "CT"),
        DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.778"),
        DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from(nf.to_string()),
        ),
        us(tags::SAMPLES_PER_PIXEL, 1),
        DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        us(tags::ROWS, ny as u16),
        us(tags::COLUMNS, nx as u16),
        us(tags::BITS_ALLOCATED, 16),
        us(tags::BITS_STORED, 16),
        us(tags::HIGH_BIT, 15),
        us(tags::PIXEL_REPRESENTATION, 0),
        seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, shared),
        DataElement::new(
            tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(per_frame),
        ),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U8(px.into())),
    ]);
    let t = tempfile::tempdir().unwrap();
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap()
        .write_to_file(t.path().join("enhanced.dcm"))
        .unwrap();
    // Without per-frame positions the frames cannot be placed: a clear error.
    let mut bare = open_file(t.path().join("enhanced.dcm")).unwrap();
    bare.remove_element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let t2 = tempfile::tempdir().unwrap();
    bare.write_to_file(t2.path().join("bare.dcm")).unwrap();
    let e = load_dir(t2.path(), &opts()).unwrap_err().to_string();
    assert!(
        e.contains("bare.dcm") && e.contains("PerFrameFunctionalGroupsSequence"),
        "{e}"
    );

    let l = load_dir(t.path(), &opts()).unwrap();
    assert!(l.summary.multiframe);
    assert_eq!(l.summary.n_images, nf);
    let g = l.volume.grid();
    assert_eq!(g.dims, [nx, ny, nf]);
    // PixelSpacing "0.5\0.8" = (row spacing 0.5 along j, column spacing 0.8 along i).
    assert!((g.spacing[0] - 0.8).abs() < 1e-9 && (g.spacing[1] - 0.5).abs() < 1e-9);
    assert!((g.spacing[2] - 1.5).abs() < 1e-9);
    assert!((g.origin - Vector3::new(5.0, -7.0, 10.0)).norm() < 1e-9);
    for k in 0..nf {
        let f = nf - 1 - k; // k = 0 is the lowest z, stored last
        for j in 0..ny {
            for i in 0..nx {
                let want = 2.0 * f32::from(stored(i, j, f)) - 1024.0;
                assert_eq!(l.volume.get(i, j, k), want);
            }
        }
    }
}

type InMemElement = dicom_object::mem::InMemElement;

/// Replaces the pixel data of a written file by encapsulated `fragments` under `ts`.
fn encapsulate(path: &Path, ts: &str, fragments: Vec<Vec<u8>>) {
    let obj = open_file(path).unwrap().into_inner();
    let mut obj = obj;
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new(Vec::<u32>::new(), fragments),
    ));
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(ts))
        .unwrap()
        .write_to_file(path)
        .unwrap();
}

#[test]
fn jpeg_ls_is_a_clear_unsupported_transfer_syntax_error() {
    let t = tempfile::tempdir().unwrap();
    write(&field_volume(&axial_grid()), "jls", t.path());
    let p = slice_file(t.path(), 0);
    encapsulate(
        &p,
        "1.2.840.10008.1.2.4.80",
        vec![vec![0xFF, 0xD8, 0xFF, 0xF7, 0, 0]],
    );
    let s = scan(&[t.path().to_path_buf()]).unwrap();
    assert!(s.series[0].transfer_syntax.contains("JPEG-LS"));
    let e = load_dir(t.path(), &opts()).unwrap_err().to_string();
    assert!(e.contains("IM00001.dcm") && e.contains("JPEG-LS"), "{e}");
    assert!(
        e.contains("1.2.840.10008.1.2.4.80") && e.contains("gdcmconv --raw"),
        "{e}"
    );
}

/// RLE Lossless (PS3.5 Annex G) of one 16-bit frame: two byte planes (high, then low),
/// each PackBits-coded as literal runs.
fn rle_encode_16(le: &[u8]) -> Vec<u8> {
    let planes: Vec<Vec<u8>> = vec![
        le.chunks_exact(2).map(|b| b[1]).collect(),
        le.chunks_exact(2).map(|b| b[0]).collect(),
    ];
    let segments: Vec<Vec<u8>> = planes
        .iter()
        .map(|p| {
            let mut s = Vec::new();
            for run in p.chunks(128) {
                s.push((run.len() - 1) as u8);
                s.extend_from_slice(run);
            }
            if s.len() % 2 == 1 {
                s.push(0x80); // no-op control byte pads to even length
            }
            s
        })
        .collect();
    let mut header = [0u32; 16];
    header[0] = segments.len() as u32;
    let mut offset = 64u32;
    for (n, s) in segments.iter().enumerate() {
        header[n + 1] = offset;
        offset += s.len() as u32;
    }
    let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    for s in segments {
        out.extend(s);
    }
    out
}

#[test]
fn rle_compressed_series_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let g = Grid::axis_aligned([12, 10, 4], [0.7, 0.9, 2.5], Vector3::zeros()).unwrap();
    let vol = field_volume(&g).map(|v| v - 1000.0); // negative values: signed pixels
    write(&vol, "rle", t.path());
    for k in 0..4 {
        let p = slice_file(t.path(), k);
        let obj = open_file(&p).unwrap();
        let px = obj
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap()
            .to_vec();
        encapsulate(&p, uids::RLE_LOSSLESS, vec![rle_encode_16(&px)]);
    }
    let l = load_dir(t.path(), &opts()).unwrap();
    assert!(
        l.summary.transfer_syntax.contains("RLE"),
        "{}",
        l.summary.transfer_syntax
    );
    assert_eq!(l.volume.data(), vol.data());
}

#[test]
fn real_abdomen_ct_if_present() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/ts-example-abdomen-ct/dicom"
    ));
    if !dir.is_dir() {
        eprintln!("skipping: {} not present", dir.display());
        return;
    }
    let l = load_dir(&dir, &opts()).unwrap();
    assert_eq!(l.summary.modality, Modality::Ct);
    assert_eq!(l.volume.dims()[2], 20);
    let g = l.volume.grid();
    assert!(
        g.spacing.iter().all(|s| (0.2..=10.0).contains(s)),
        "{:?}",
        g.spacing
    );
    let (lo, hi) = l.volume.min_max();
    eprintln!(
        "real CT: dims {:?}, spacing {:?}, orientation {:?}, {}, HU {lo}..{hi}, warnings {:?}",
        g.dims, g.spacing, l.summary.orientation, l.summary.transfer_syntax, l.warnings
    );
    assert!(lo < -900.0 && hi > 700.0, "HU range {lo}..{hi}");
}

#[test]
fn stored_values_honour_bits_stored_sign_and_width() {
    use super::pixels::{convert, Layout};
    let lay = |ba, bs, signed| Layout {
        bits_allocated: ba,
        bits_stored: bs,
        signed,
    };
    let mut out = [0f32; 3];
    // 12 bits stored, signed, garbage in the top 4 bits: 0xF800 -> -2048, 0x07FF -> 2047.
    let src: Vec<u8> = [0xF800u16, 0x17FF, 0xA001]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    convert(&src, lay(16, 12, true), 1.0, 0.0, &mut out);
    assert_eq!(out, [-2048.0, 2047.0, 1.0]);
    // Unsigned 16-bit with rescale.
    convert(&src, lay(16, 16, false), 0.5, -10.0, &mut out);
    assert_eq!(
        out,
        [
            0.5 * 63488.0 - 10.0,
            0.5 * 6143.0 - 10.0,
            0.5 * 40961.0 - 10.0
        ]
    );
    // 8-bit unsigned and signed.
    convert(&[0, 200, 255], lay(8, 8, false), 1.0, 0.0, &mut out);
    assert_eq!(out, [0.0, 200.0, 255.0]);
    convert(&[0, 200, 255], lay(8, 8, true), 1.0, 0.0, &mut out);
    assert_eq!(out, [0.0, -56.0, -1.0]);
    // 32-bit signed.
    let src: Vec<u8> = [-70000i32, 5, i32::MAX]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    convert(&src, lay(32, 32, true), 1.0, 0.0, &mut out);
    assert_eq!(out, [-70000.0, 5.0, i32::MAX as f32]);
}

#[test]
fn left_handed_grid_reads_back_as_the_same_voxels_in_space() {
    // A k axis opposite to row x column (as from some NIfTI conversions): the reader
    // orders slices along the normal, so k flips but every voxel keeps its world position.
    let t = tempfile::tempdir().unwrap();
    let dir = Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, -1.0));
    let g = Grid::new(
        [10, 8, 6],
        [0.6, 0.7, 2.0],
        Vector3::new(1.0, 2.0, 30.0),
        dir,
    )
    .unwrap();
    let vol = field_volume(&g);
    write(&vol, "lefthanded", t.path());
    let l = load_dir(t.path(), &opts()).unwrap();
    let lg = l.volume.grid();
    assert!((lg.direction - Matrix3::identity()).abs().max() < 1e-9);
    assert!((lg.origin - Vector3::new(1.0, 2.0, 20.0)).norm() < 1e-9);
    for k in 0..6 {
        for j in 0..8 {
            for i in 0..10 {
                assert_eq!(l.volume.get(i, j, k), vol.get(i, j, 5 - k));
            }
        }
    }
}

#[test]
fn deflated_transfer_syntax_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let g = Grid::axis_aligned([12, 10, 5], [0.7, 0.9, 2.5], Vector3::zeros()).unwrap();
    let vol = field_volume(&g);
    write(&vol, "deflate", t.path());
    for k in 0..5 {
        let p = slice_file(t.path(), k);
        let obj = open_file(&p).unwrap().into_inner();
        obj.with_meta(
            FileMetaTableBuilder::new().transfer_syntax(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN),
        )
        .unwrap()
        .write_to_file(&p)
        .unwrap();
    }
    let l = load_dir(t.path(), &opts()).unwrap();
    assert!(
        l.summary.transfer_syntax.contains("Deflate"),
        "{}",
        l.summary.transfer_syntax
    );
    assert_eq!(l.volume.data(), vol.data());
}

/// A full-size series (512 x 512 x 400) round-trips exactly; heavy, so ignored by default
/// and run by CI in release. Timings are printed for information only; the measured
/// figures come from `spinetwin bench import`.
#[test]
#[ignore]
fn large_series_round_trips_exactly() {
    let t = tempfile::tempdir().unwrap();
    let g = Grid::axis_aligned([512, 512, 400], [0.7, 0.7, 1.0], Vector3::zeros()).unwrap();
    let vol = Volume::from_fn(g, |i, j, k| ((i + j + k) % 2000) as f32 - 1000.0);
    let t0 = std::time::Instant::now();
    write(&vol, "large", t.path());
    let t1 = std::time::Instant::now();
    let l = load_dir(t.path(), &opts()).unwrap();
    let t2 = std::time::Instant::now();
    eprintln!(
        "write {:.2} s, load {:.2} s",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64()
    );
    assert_eq!(l.volume.data(), vol.data());
}

#[test]
fn written_files_carry_the_standard_attributes() {
    let t = tempfile::tempdir().unwrap();
    let vol = field_volume(&axial_grid());
    let m = write(&vol, "attrs", t.path());
    let names: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names.len(), 20);
    assert_eq!(
        (names[0].as_str(), names[19].as_str()),
        ("IM00001.dcm", "IM00020.dcm")
    );
    let o = open_file(slice_file(t.path(), 2)).unwrap();
    assert_eq!(
        o.meta().transfer_syntax().trim_end_matches('\0'),
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    );
    let s = |tag| {
        o.element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0')
            .to_string()
    };
    let f = |tag| o.element(tag).unwrap().to_multi_float64().unwrap();
    let u = |tag| o.element(tag).unwrap().to_int::<u32>().unwrap();
    assert_eq!(s(tags::SOP_CLASS_UID), uids::CT_IMAGE_STORAGE);
    assert!(crate::uid::is_valid(&s(tags::SOP_INSTANCE_UID)));
    assert_eq!(s(tags::SERIES_INSTANCE_UID), m.series_uid);
    assert_eq!(s(tags::MODALITY), "CT");
    assert_eq!(u(tags::INSTANCE_NUMBER), 3);
    assert_eq!((u(tags::ROWS), u(tags::COLUMNS)), (24, 32));
    // PixelSpacing is (row spacing, column spacing) = (spacing along j, along i).
    assert_eq!(f(tags::PIXEL_SPACING), vec![0.9, 0.7]);
    assert_eq!(f(tags::IMAGE_POSITION_PATIENT), vec![-100.25, 50.5, 305.0]);
    assert_eq!(
        f(tags::IMAGE_ORIENTATION_PATIENT),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );
    assert_eq!(f(tags::SLICE_THICKNESS), vec![2.5]);
    assert_eq!(f(tags::SPACING_BETWEEN_SLICES), vec![2.5]);
    assert_eq!(
        (u(tags::BITS_ALLOCATED), u(tags::PIXEL_REPRESENTATION)),
        (16, 1)
    );
    assert_eq!(f(tags::RESCALE_SLOPE), vec![1.0]);
    // SOP instance UIDs differ between slices and are stable across writes.
    let uid_of = |dir: &Path, k| {
        open_file(slice_file(dir, k))
            .unwrap()
            .element(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .into_owned()
    };
    assert_ne!(uid_of(t.path(), 0), uid_of(t.path(), 1));
    let again = tempfile::tempdir().unwrap();
    write(&vol, "attrs", again.path());
    assert_eq!(uid_of(t.path(), 4), uid_of(again.path(), 4));
}

#[test]
fn single_slice_series_loads_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let g = Grid::axis_aligned([8, 6, 1], [0.5, 0.5, 3.0], Vector3::new(1.0, 2.0, 3.0)).unwrap();
    let vol = field_volume(&g);
    write(&vol, "single", t.path());
    let l = load_dir(t.path(), &opts()).unwrap();
    assert_same_geometry(l.volume.grid(), &g);
    assert_eq!(l.volume.data(), vol.data());
    assert!(
        l.warnings.iter().any(|w| w.contains("single slice")),
        "{:?}",
        l.warnings
    );
}
