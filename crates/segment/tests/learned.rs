//! The learned-model path (ONNX by tract) behind `segment`, run with the reference model the
//! project makes itself (`learned::bone_threshold_model`): what it labels is known voxel by
//! voxel, so the wiring (input layout and scaling, channels to labels, slabs, resampling,
//! the report) is checked exactly. `cargo test --release -p spinetwin-segment --features onnx
//! --test learned`.
#![cfg(feature = "onnx")]

use spinetwin_imaging::Volume;
use spinetwin_phantom::{generate, PhantomSpec};
use spinetwin_segment::learned::{bone_threshold_card, bone_threshold_model, card_path};
use spinetwin_segment::{segment, LevelBasis, SegmentOptions};
use std::path::{Path, PathBuf};

const THRESHOLD: f32 = 150.0;
const L3: u16 = 22;

fn ct() -> Volume<f32> {
    generate(&PhantomSpec {
        spacing_mm: 2.0,
        levels: spinetwin_anatomy::LevelRange::new(
            spinetwin_anatomy::Level::L3,
            spinetwin_anatomy::Level::L4,
            false,
        )
        .unwrap(),
        ..PhantomSpec::default()
    })
    .expect("phantom")
    .ct
}

/// Writes the reference model and `card` into `dir`; returns the model's path.
fn write_model(dir: &Path, card: &spinetwin_segment::learned::ModelCard) -> PathBuf {
    let p = dir.join("model.onnx");
    std::fs::write(&p, bone_threshold_model()).unwrap();
    std::fs::write(card_path(&p), serde_json::to_string_pretty(card).unwrap()).unwrap();
    p
}

fn with_model(p: &Path) -> SegmentOptions {
    SegmentOptions {
        model: Some(p.to_path_buf()),
        ..SegmentOptions::default()
    }
}

/// What the reference model computes, in plain Rust: the 27-voxel mean of the scaled HU
/// (zero outside the volume) per voxel, `None` where it is too near zero to call.
fn expected(ct: &Volume<f32>) -> Vec<Option<bool>> {
    let [nx, ny, nz] = ct.dims();
    let x = |i: i64, j: i64, k: i64| -> f64 {
        if i < 0 || j < 0 || k < 0 || i >= nx as i64 || j >= ny as i64 || k >= nz as i64 {
            0.0
        } else {
            let h = ct
                .get(i as usize, j as usize, k as usize)
                .clamp(-1024.0, 3071.0);
            ((h - THRESHOLD) / 1000.0) as f64
        }
    };
    let mut out = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz as i64 {
        for j in 0..ny as i64 {
            for i in 0..nx as i64 {
                let mut m = 0.0;
                for dk in -1..=1 {
                    for dj in -1..=1 {
                        for di in -1..=1 {
                            m += x(i + di, j + dj, k + dk);
                        }
                    }
                }
                let m = m / 27.0;
                out.push((m.abs() > 1e-5).then_some(m > 0.0));
            }
        }
    }
    out
}

#[test]
fn the_reference_model_labels_what_its_threshold_says() {
    let ct = ct();
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), &bone_threshold_card(THRESHOLD, L3, None));
    let seg = segment(&ct, &with_model(&model)).expect("the model runs");
    assert_eq!(seg.labels.grid(), ct.grid());
    let want = expected(&ct);
    let (mut wrong, mut bone) = (0, 0);
    for (&got, want) in seg.labels.data().iter().zip(&want) {
        if let Some(b) = want {
            wrong += ((got == L3) != *b) as usize;
            bone += *b as usize;
        }
    }
    assert_eq!(wrong, 0, "voxels labelled against the model's own rule");
    assert!(bone > 10_000, "{bone} bone voxels");
    assert_eq!(seg.level_basis, LevelBasis::Model);
    assert!(seg.bone_threshold_hu.is_nan());
    assert!(
        seg.warnings[0].contains("learned model"),
        "{:?}",
        seg.warnings
    );
    // Every bone voxel is "L3" to this model: one level.
    assert_eq!(seg.levels.len(), 1);
    let l = &seg.levels[0];
    assert_eq!(
        (l.level.name(), l.label, l.voxels),
        ("L3", L3, bone_count(&seg.labels))
    );
    // Its confidence is the mean softmax probability of the winning channel: above 0.5,
    // below 1 (scores of a few tenths).
    assert!(l.confidence > 0.5 && l.confidence < 1.0, "{}", l.confidence);
    assert!(l.mean_hu > THRESHOLD as f64, "{}", l.mean_hu);
}

fn bone_count(l: &Volume<u16>) -> usize {
    l.data().iter().filter(|&&x| x == L3).count()
}

#[test]
fn slabs_with_the_receptive_field_as_context_match_the_whole_volume() {
    let ct = ct();
    let dir = tempfile::tempdir().unwrap();
    let whole = write_model(dir.path(), &bone_threshold_card(THRESHOLD, L3, None));
    let a = segment(&ct, &with_model(&whole)).unwrap();
    let d2 = tempfile::tempdir().unwrap();
    // 7 slices per slab (the volume is not a multiple of it) with one slice of context.
    let slabs = write_model(d2.path(), &bone_threshold_card(THRESHOLD, L3, Some([7, 1])));
    let b = segment(&ct, &with_model(&slabs)).unwrap();
    let [nx, ny, nz] = ct.dims();
    // The volume's first and last slices differ by design: the slabs' context repeats the
    // edge slice where the whole-volume run pads with zeros.
    let plane = nx * ny;
    let inner = plane..(nz - 1) * plane;
    assert_eq!(a.labels.data()[inner.clone()], b.labels.data()[inner]);
}

#[test]
fn a_model_at_its_own_spacing_answers_on_the_ct_grid() {
    let ct = ct();
    let dir = tempfile::tempdir().unwrap();
    let mut card = bone_threshold_card(THRESHOLD, L3, None);
    card.spacing_mm = Some([3.0, 3.0, 3.0]);
    let model = write_model(dir.path(), &card);
    let coarse = segment(&ct, &with_model(&model)).unwrap();
    assert_eq!(coarse.labels.grid(), ct.grid());
    let d2 = tempfile::tempdir().unwrap();
    let fine = segment(
        &ct,
        &with_model(&write_model(
            d2.path(),
            &bone_threshold_card(THRESHOLD, L3, None),
        )),
    )
    .unwrap();
    let dice = spinetwin_segment::dice(&coarse.labels, &fine.labels, L3).unwrap();
    assert!(dice > 0.8, "Dice {dice:.3} between 3 mm and 2 mm runs");
}

#[test]
fn a_bad_model_or_card_is_an_error_naming_the_file() {
    let ct = ct();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.onnx");
    // No card.
    std::fs::write(&p, bone_threshold_model()).unwrap();
    let e = segment(&ct, &with_model(&p)).unwrap_err().to_string();
    assert!(e.contains("model.onnx") && e.contains("model card"), "{e}");
    // A card naming three channels for a two-channel model.
    let mut card = bone_threshold_card(THRESHOLD, L3, None);
    card.labels = vec![0, 22, 23];
    std::fs::write(card_path(&p), serde_json::to_string(&card).unwrap()).unwrap();
    let e = segment(&ct, &with_model(&p)).unwrap_err().to_string();
    assert!(e.contains("output has the shape"), "{e}");
    // Not ONNX.
    std::fs::write(&p, b"not a model").unwrap();
    card.labels = vec![0, 22];
    std::fs::write(card_path(&p), serde_json::to_string(&card).unwrap()).unwrap();
    let e = segment(&ct, &with_model(&p)).unwrap_err().to_string();
    assert!(e.contains("could not be loaded"), "{e}");
    // A card that cannot be right.
    card.hu_scale = 0.0;
    std::fs::write(card_path(&p), serde_json::to_string(&card).unwrap()).unwrap();
    let e = segment(&ct, &with_model(&p)).unwrap_err().to_string();
    assert!(e.contains("hu_scale"), "{e}");
}
