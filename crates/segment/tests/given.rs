//! The user's override: levels named by hand and a corrected label map fed back in.

use spinetwin_anatomy::{Level, LevelRange};
use spinetwin_phantom::{generate, PhantomSpec};
use spinetwin_segment::given::{from_label_map, rename_levels};
use spinetwin_segment::LevelBasis;

fn count(l: &spinetwin_imaging::Volume<u16>, v: u16) -> usize {
    l.data().iter().filter(|&&x| x == v).count()
}

#[test]
fn a_label_map_fed_back_in_and_renamed_levels_rest_on_the_user() {
    let ph = generate(&PhantomSpec {
        spacing_mm: 3.0,
        ..PhantomSpec::default()
    })
    .expect("phantom");
    // The reference labels fed back in: T12-S1, confidence 1, nothing to warn about
    // beyond where they came from.
    let mut seg = from_label_map(&ph.ct, ph.labels.clone()).expect("label map");
    let names: Vec<&str> = seg.levels.iter().map(|l| l.level.name()).collect();
    assert_eq!(names, ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]);
    assert_eq!(seg.level_basis, LevelBasis::Given);
    assert!(seg.sacrum_found);
    assert!(seg
        .levels
        .iter()
        .all(|l| l.confidence == 1.0 && l.warnings.is_empty()));
    assert_eq!(seg.warnings.len(), 1, "{:?}", seg.warnings);
    // The phantom's trabecular bone is 220 HU, its cortex brighter: every vertebra's mean
    // HU is well above it.
    assert!(
        seg.levels.iter().all(|l| l.mean_hu > 220.0),
        "{:?}",
        seg.levels
    );
    let t12 = count(&seg.labels, 19);
    let disc = count(&seg.labels, 119);
    assert!(t12 > 0 && disc > 0);
    // One level higher by the user's reading: T11-L5 (the "sacrum" becomes L5).
    let range = LevelRange::new(Level::T11, Level::L5, false).unwrap();
    rename_levels(&mut seg, &range).expect("seven for seven");
    let names: Vec<&str> = seg.levels.iter().map(|l| l.level.name()).collect();
    assert_eq!(names, ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]);
    assert_eq!(count(&seg.labels, 18), t12, "T12's voxels are T11's now");
    assert_eq!(count(&seg.labels, 118), disc, "and the disc below them");
    assert_eq!(count(&seg.labels, 26), 0);
    assert!(!seg.sacrum_found);
    assert!(
        seg.warnings[0].contains("as given (--levels)"),
        "{:?}",
        seg.warnings
    );
    // Another number of levels than the scan shows is an error saying both.
    let e = rename_levels(
        &mut seg,
        &LevelRange::new(Level::L1, Level::L5, false).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("shows 7 vertebrae") && e.contains("names 5"),
        "{e}"
    );
    // A label map on another grid is refused.
    let small = ph.labels.crop([0, 0, 0], [10, 10, 10]).unwrap();
    assert!(from_label_map(&ph.ct, small).is_err());
}
