//! Level naming from the ribs: the phantom has no ribs, so the tests paint rib-like tubes
//! onto its CT beside chosen vertebrae (a rib head at the posterolateral corner of the body,
//! running postero-laterally and down out of the field of view).

use nalgebra::Vector3;
use spinetwin_anatomy::{Level, LevelRange};
use spinetwin_phantom::{generate, Phantom, PhantomSpec, VertebraTruth};
use spinetwin_segment::{dice, segment, LevelBasis, SegmentOptions, Segmentation};

fn phantom(top: Level, bottom: Level) -> Phantom {
    generate(&PhantomSpec {
        levels: LevelRange::new(top, bottom, false).expect("valid range"),
        spacing_mm: 2.0,
        ..PhantomSpec::default()
    })
    .expect("valid phantom spec")
}

/// Paints a pair of ribs on vertebra `v`: tubes of 5 mm radius (cortex 800 HU, marrow
/// 250 HU) from 20 mm lateral of the body centre, at the back of the body and 4 mm above
/// its mid-height, along (0.8 lateral, 0.45 posterior, -0.35 inferior) for 90 mm. Returns
/// the painted voxels more than 40 mm lateral of the body centre.
fn paint_ribs(ph: &mut Phantom, v: &VertebraTruth) -> Vec<usize> {
    let mut far = Vec::new();
    let f = &v.frame;
    let (o, x, y, z) = (
        Vector3::from(f.origin),
        Vector3::from(f.x_axis),
        Vector3::from(f.y_axis),
        Vector3::from(f.z_axis),
    );
    let grid = ph.ct.grid().clone();
    let [nx, ny, nz] = grid.dims;
    for side in [-1.0, 1.0] {
        let head = o + x * (20.0 * side) + y * 15.0 + z * 4.0;
        let d = (x * (0.8 * side) + y * 0.45 - z * 0.35).normalize();
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let p = grid.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                    let t = (p - head).dot(&d);
                    if !(0.0..=90.0).contains(&t) {
                        continue;
                    }
                    let r = (p - head - d * t).norm();
                    if r <= 5.0 {
                        let hu = if r > 3.5 { 800.0 } else { 250.0 };
                        let c = ph.ct.get(i, j, k);
                        ph.ct.set(i, j, k, c.max(hu));
                        if (p - o).dot(&x).abs() > 40.0 {
                            far.push(grid.linear(i, j, k));
                        }
                    }
                }
            }
        }
    }
    far
}

/// The phantom with ribs on the levels `on`, and the rib voxels far from the spine.
fn with_ribs(mut ph: Phantom, on: &[&str]) -> (Phantom, Vec<usize>) {
    let chosen: Vec<VertebraTruth> = ph
        .truth
        .vertebrae
        .iter()
        .filter(|v| on.contains(&v.level.as_str()))
        .cloned()
        .collect();
    assert_eq!(chosen.len(), on.len(), "levels {on:?} in the phantom");
    let mut far = Vec::new();
    for v in &chosen {
        far.extend(paint_ribs(&mut ph, v));
    }
    (ph, far)
}

fn run(ph: &Phantom) -> Segmentation {
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
    println!(
        "basis {:?}, sacrum {}\nwarnings: {:#?}",
        seg.level_basis, seg.sacrum_found, seg.warnings
    );
    for l in &seg.levels {
        println!(
            "{} conf {:.2} ribs {:?} {:?}",
            l.level, l.confidence, l.rib_bearing, l.warnings
        );
    }
    seg
}

#[test]
fn levels_are_counted_from_the_ribs_when_the_sacrum_is_not_in_view() {
    // T10-L4: no sacrum; ribs on T10-T12.
    let (ph, far) = with_ribs(phantom(Level::T10, Level::L4), &["T10", "T11", "T12"]);
    let seg = run(&ph);
    assert!(!seg.sacrum_found);
    // The ribs away from the spine are not labelled as vertebrae.
    let labelled = far
        .iter()
        .filter(|&&l| (1..=28).contains(&seg.labels.data()[l]))
        .count();
    assert!(
        labelled * 20 < far.len(),
        "{labelled} of {} rib voxels over 40 mm from the spine labelled as vertebra",
        far.len()
    );
    assert_eq!(seg.level_basis, LevelBasis::Ribs);
    assert!(
        seg.warnings
            .iter()
            .any(|w| w.contains("counted from the ribs")),
        "{:?}",
        seg.warnings
    );
    for v in &ph.truth.vertebrae {
        // Most of the vertebra carries its own level (the painted ribs are not in the truth
        // labels, so Dice would score the rib outline, not the naming).
        let (mut n, mut same) = (0usize, 0usize);
        for (&t, &p) in ph.labels.data().iter().zip(seg.labels.data()) {
            n += (t == v.label) as usize;
            same += (t == v.label && p == v.label) as usize;
        }
        let d = same as f64 / n.max(1) as f64;
        println!(
            "{}: {d:.3} of its voxels under its own level, Dice {:.3}",
            v.level,
            dice(&ph.labels, &seg.labels, v.label).unwrap_or(0.0)
        );
        let rep = seg
            .levels
            .iter()
            .find(|l| l.label == v.label)
            .unwrap_or_else(|| panic!("{} not reported", v.level));
        assert!(d >= 0.8, "{}: {d:.3} of it under its own level", v.level);
        let thoracic = v.level.starts_with('T');
        assert_eq!(rep.rib_bearing, Some(thoracic), "{}", v.level);
        // Named from the ribs: more sure than an assumption (0.3), less than a sacrum (0.9).
        assert!(
            (0.5..0.9).contains(&rep.confidence) || (v.level == "T10" && rep.confidence > 0.3),
            "{}: confidence {}",
            v.level,
            rep.confidence
        );
    }
}

#[test]
fn without_ribs_or_sacrum_the_levels_stay_an_assumption() {
    // The same field of view without ribs: nothing to count from, so flagged as assumed.
    let ph = phantom(Level::T10, Level::L4);
    let seg = run(&ph);
    assert_eq!(seg.level_basis, LevelBasis::Assumed);
    assert!(seg.levels.iter().all(|l| l.confidence < 0.5
        && l.rib_bearing == Some(false)
        && l.warnings.iter().any(|w| w.contains("assumed"))));
}

#[test]
fn ribs_confirm_the_sacrum_count() {
    let (ph, _) = with_ribs(phantom(Level::T10, Level::S1), &["T10", "T11", "T12"]);
    let seg = run(&ph);
    assert!(seg.sacrum_found);
    assert_eq!(seg.level_basis, LevelBasis::SacrumAndRibs);
    for v in &ph.truth.vertebrae {
        let rep = seg.levels.iter().find(|l| l.label == v.label).unwrap();
        assert!(rep.confidence > 0.5, "{}: {}", v.level, rep.confidence);
    }
}

#[test]
fn ribs_disagreeing_with_the_sacrum_are_reported_not_forced() {
    // A rib pair on L1 too (13 pairs, or a lumbar rib): the sacrum count says the last
    // rib-bearing vertebra is L1. The names stay those counted from the sacrum, flagged.
    let (ph, _) = with_ribs(phantom(Level::T10, Level::S1), &["T10", "T11", "T12", "L1"]);
    let seg = run(&ph);
    assert!(seg.sacrum_found);
    assert_eq!(seg.level_basis, LevelBasis::Sacrum);
    assert!(
        seg.warnings.iter().any(|w| w.contains("disagree")),
        "{:?}",
        seg.warnings
    );
    for v in &ph.truth.vertebrae {
        let rep = seg.levels.iter().find(|l| l.label == v.label).unwrap();
        assert!(
            rep.confidence < 0.5 && !rep.warnings.is_empty(),
            "{}: {rep:?}",
            v.level
        );
    }
}
