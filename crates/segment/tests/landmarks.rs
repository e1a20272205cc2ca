//! Landmarks and measures against the phantom truth.

use nalgebra::Vector3;
use spinetwin_phantom::{generate, pedicle_corridors, CorridorTruth, Phantom, PhantomSpec};
use spinetwin_segment::landmarks::{landmarks, SpineLandmarks};
use spinetwin_segment::measure;

type V3 = Vector3<f64>;

fn v(p: [f64; 3]) -> V3 {
    V3::from(p)
}
fn ang(a: V3, b: V3) -> f64 {
    a.normalize()
        .dot(&b.normalize())
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// Error samples per landmark kind.
#[derive(Default, Debug)]
struct Errors {
    rows: Vec<(&'static str, Vec<f64>)>,
}

impl Errors {
    fn add(&mut self, k: &'static str, e: f64) {
        match self.rows.iter_mut().find(|r| r.0 == k) {
            Some(r) => r.1.push(e),
            None => self.rows.push((k, vec![e])),
        }
    }
    fn get(&self, k: &str) -> &[f64] {
        &self.rows.iter().find(|r| r.0 == k).expect(k).1
    }
    /// The largest error; NaN when any is NaN (f64::max would skip it and let a broken
    /// landmark pass).
    fn max(&self, k: &str) -> f64 {
        self.get(k).iter().cloned().fold(0.0, |m, e| {
            if e.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(e)
            }
        })
    }
    fn mean(&self, k: &str) -> f64 {
        let e = self.get(k);
        e.iter().sum::<f64>() / e.len() as f64
    }
}

/// Errors of `lm` against the phantom's truth; the pedicle entry and direction against the
/// screw corridors when `corridors` are given ([`pedicle_corridors`], seconds per pedicle),
/// against the pedicle cylinders' design axes always.
fn score(ph: &Phantom, lm: &SpineLandmarks, corridors: Option<&[CorridorTruth]>) -> Errors {
    let mut e = Errors::default();
    for t in &ph.truth.vertebrae {
        let l = lm
            .vertebrae
            .iter()
            .find(|l| l.level.name() == t.level)
            .unwrap_or_else(|| panic!("{} missing: {:?}", t.level, lm.warnings));
        let f = &l.frame;
        e.add("frame x axis (deg)", ang(v(f.x), v(t.frame.x_axis)));
        e.add("frame y axis (deg)", ang(v(f.y), v(t.frame.y_axis)));
        e.add("frame z axis (deg)", ang(v(f.z), v(t.frame.z_axis)));
        e.add(
            "frame origin (mm)",
            (v(f.origin) - v(t.frame.origin)).norm(),
        );
        let sp = &l.superior_endplate;
        e.add(
            "endplate centre (mm)",
            (v(sp.centre) - v(t.superior_endplate.centre)).norm(),
        );
        e.add(
            "endplate normal (deg)",
            ang(v(sp.normal), v(t.superior_endplate.normal)),
        );
        if let (Some(a), Some(b)) = (&l.inferior_endplate, &t.inferior_endplate) {
            e.add("endplate centre (mm)", (v(a.centre) - v(b.centre)).norm());
            e.add("endplate normal (deg)", ang(v(a.normal), v(b.normal)));
        }
        if let (Some(p), Some(cs)) = (&l.pedicles, corridors) {
            for (a, side) in [(&p.left, "left"), (&p.right, "right")] {
                let c = cs
                    .iter()
                    .find(|c| c.level == t.level && c.side == side)
                    .unwrap_or_else(|| panic!("{} {side}: no corridor in the truth", t.level));
                e.add("pedicle entry (mm)", (v(a.entry) - v(c.entry)).norm());
                e.add(
                    "pedicle direction (deg)",
                    ang(v(a.direction), v(c.direction)),
                );
                e.add(
                    "pedicle width (mm)",
                    (a.min_width_mm - c.min_width_mm).abs(),
                );
            }
        }
        if let Some(p) = &l.pedicles {
            for (a, b) in [(&p.left, &t.pedicle_left), (&p.right, &t.pedicle_right)] {
                e.add(
                    "pedicle entry vs design axis (mm)",
                    (v(a.entry) - v(b.entry)).norm(),
                );
                e.add(
                    "pedicle direction vs design axis (deg)",
                    ang(v(a.direction), v(b.direction)),
                );
                if corridors.is_none() {
                    e.add(
                        "pedicle width (mm)",
                        (a.min_width_mm - b.min_width_mm).abs(),
                    );
                }
                e.add(
                    "pedicle height (mm)",
                    (a.min_height_mm - b.min_height_mm).abs(),
                );
            }
        } else if t.level != "S1" {
            e.add("pedicle missing", 1.0);
        }
        let fc = &t.facets;
        for (a, b) in [
            (&l.superior_facets.left, Some(fc.superior_left)),
            (&l.superior_facets.right, Some(fc.superior_right)),
            (&l.inferior_facets.left, fc.inferior_left),
            (&l.inferior_facets.right, fc.inferior_right),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                e.add("facet centre (mm)", (v(a.centre) - v(b)).norm());
            }
        }
        for (a, n) in [
            (&l.superior_facets.left, fc.superior_normals[0]),
            (&l.superior_facets.right, fc.superior_normals[1]),
        ] {
            if let Some(a) = a {
                e.add("facet normal (deg)", ang(v(a.normal), v(n)));
            }
        }
        if let Some(s) = l.spinous_tip {
            e.add("spinous tip (mm)", (v(s) - v(t.spinous_tip)).norm());
        }
        for (a, b) in [
            (l.transverse_tips.left, t.transverse_tip_left),
            (l.transverse_tips.right, t.transverse_tip_right),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                e.add("transverse tip (mm)", (v(a) - v(b)).norm());
            }
        }
    }
    // The two sides of one joint face each other: the inferior facet of a vertebra against
    // the superior facet of the one below.
    for w in lm.vertebrae.windows(2) {
        for (a, b) in [
            (&w[0].inferior_facets.left, &w[1].superior_facets.left),
            (&w[0].inferior_facets.right, &w[1].superior_facets.right),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                e.add(
                    "facet pair opposition (deg)",
                    ang(v(a.normal), -v(b.normal)),
                );
            }
        }
    }
    for d in &ph.truth.discs {
        let Some(l) = lm
            .discs
            .iter()
            .find(|l| l.upper.name() == d.upper && l.lower.name() == d.lower)
        else {
            e.add("disc missing", 1.0);
            continue;
        };
        e.add("disc centre (mm)", (v(l.centre) - v(d.centre)).norm());
        e.add(
            "disc height middle (mm)",
            (l.height_middle_mm - d.height_middle_mm).abs(),
        );
        e.add(
            "disc height ant/post (mm)",
            (l.height_anterior_mm - d.height_anterior_mm).abs(),
        );
        e.add(
            "disc height ant/post (mm)",
            (l.height_posterior_mm - d.height_posterior_mm).abs(),
        );
    }
    let m = measure(&lm.clone());
    for t in ph.truth.vertebrae.iter().filter(|t| t.level != "S1") {
        let Some(g) = m.vertebrae.iter().find(|g| g.level.name() == t.level) else {
            e.add("vertebra measures missing", 1.0);
            continue;
        };
        for (a, b) in [
            (g.body_height_anterior_mm, t.body_height_anterior_mm),
            (g.body_height_middle_mm, t.body_height_middle_mm),
            (g.body_height_posterior_mm, t.body_height_posterior_mm),
        ] {
            e.add(
                "body height ant/mid/post (mm)",
                a.map_or(f64::NAN, |a| (a - b).abs()),
            );
        }
        let c = &t.canal_section;
        e.add(
            "canal area (%)",
            g.canal_area_mm2
                .map_or(f64::NAN, |a| 100.0 * (a - c.area_mm2).abs() / c.area_mm2),
        );
        e.add(
            "canal width (mm)",
            g.canal_width_mm
                .map_or(f64::NAN, |a| (a - c.width_mm).abs()),
        );
        e.add(
            "canal depth (mm)",
            g.canal_depth_mm
                .map_or(f64::NAN, |a| (a - c.depth_mm).abs()),
        );
    }
    let a = &ph.truth.angles;
    for s in &a.segments {
        if let Some(g) = m
            .segments
            .iter()
            .find(|g| g.upper.name() == s.upper && g.lower.name() == s.lower)
        {
            e.add(
                "segment sagittal angle (deg)",
                (g.sagittal_deg - s.sagittal_deg).abs(),
            );
            e.add(
                "segment coronal angle (deg)",
                (g.coronal_deg - s.coronal_deg).abs(),
            );
        }
    }
    if let (Some(x), Some(y)) = (m.lumbar_lordosis_l1_s1_deg, a.lumbar_lordosis_l1_s1_deg) {
        e.add("lordosis L1-S1 (deg)", (x - y).abs());
    }
    if let (Some(x), Some(y)) = (m.sacral_slope_deg, a.sacral_slope_deg) {
        e.add("sacral slope (deg)", (x - y).abs());
    }
    if let (Some(x), Some(y)) = (&m.coronal_cobb, &a.coronal_cobb) {
        e.add("coronal Cobb (deg)", (x.angle_deg - y.angle_deg).abs());
    }
    e
}

fn run(spec: PhantomSpec) -> (Phantom, SpineLandmarks, Errors) {
    let ph = generate(&spec).expect("valid spec");
    let lm = landmarks(&ph.ct, &ph.labels).expect("landmarks");
    let e = score(&ph, &lm, None);
    (ph, lm, e)
}

fn print(e: &Errors) {
    for (k, x) in &e.rows {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let max = x.iter().cloned().fold(0.0, f64::max);
        println!("{k:<32} n={:<3} mean {mean:6.2} max {max:6.2}", x.len());
    }
}

#[test]
fn default_phantom_landmarks_at_2mm() {
    let (ph, lm, e) = run(PhantomSpec {
        spacing_mm: 2.0,
        ..PhantomSpec::default()
    });
    // The same input gives the same landmarks to the last bit: nothing may depend on the
    // iteration order of a hash map (randomly seeded per map), which had moved the
    // 1 mm table's pedicle entry by 0.02 mm between runs.
    let again = landmarks(&ph.ct, &ph.labels).expect("landmarks");
    assert_eq!(
        serde_json::to_string(&lm).unwrap(),
        serde_json::to_string(&again).unwrap(),
        "landmarks differ between two runs on the same input"
    );
    print(&e);
    println!("warnings: {:?}", lm.warnings);
    for v in &lm.vertebrae {
        println!("{} {:?} hu {:.0}", v.level, v.warnings, v.trabecular_hu);
        // At 2 mm a facet is a staircase of 7-15 voxel faces (normals 0.4-11 deg off), and
        // the 1 mm joint space of L5-S1 is closed in the label map: the facets say their
        // orientation is unreliable, and nothing else may warn.
        let other: Vec<&String> = v
            .warnings
            .iter()
            .filter(|w| {
                !(w.contains("mm^2 of articular surface found")
                    || w.contains("facet: the two vertebrae touch"))
            })
            .collect();
        assert!(other.is_empty(), "{}: {:?}", v.level, other);
        // Trabecular bone is 220 HU (bmd_scale 1) with a +-12 % texture.
        assert!((v.trabecular_hu - 220.0).abs() < 15.0, "{}", v.level);
    }
    // Measured maxima at 2 mm in the comments (in brackets: from the labels alone, before
    // the endplates' sub-voxel tilt).
    check(
        &e,
        &[
            ("frame x axis (deg)", 1.5), // 0.00
            ("frame y axis (deg)", 1.5), // 0.72 (1.11 from labels alone)
            ("frame z axis (deg)", 1.5), // 0.53 (1.11)
            ("frame origin (mm)", 0.8),  // 0.55
            // 1.46 since session 25 (1.09 before): L5's inferior centre moved half a 2 mm cell
            // front-back where the new tilt reshuffled its footprint's columns.
            ("endplate centre (mm)", 1.6),  // 1.46 (1.26)
            ("endplate normal (deg)", 1.6), // 1.17 (2.38)
            ("pedicle width (mm)", 1.2),    // 0.51 across the design axis (0.83 from labels)
            ("pedicle height (mm)", 1.0),   // 0.69 (1.20)
            // The screw corridor against the pedicle cylinder's design axis, a 2-4 mm stub
            // between the body and the arch which does not show its axis (the corridor
            // truth takes seconds per pedicle: `landmark_validation_table` compares with
            // it; the medial-wall fit the corridor replaced was off by up to 40 deg on
            // automatic labels at 1 mm).
            ("pedicle direction vs design axis (deg)", 16.0), // 12.94 (15.00 before session 31)
            ("pedicle entry vs design axis (mm)", 8.0),       // 7.08 (6.3)
            ("facet centre (mm)", 2.8),                       // 1.26 (2.30 before 2026-12-07)
            // A 1 mm joint space is below the 2 mm voxel: parts of each joint are a shared
            // label boundary (0.9 deg at 1 mm, see `landmark_validation_table`).
            // Each facet warns at 2 mm (7-15 voxel faces). Since end-on surfaces are no
            // longer articular (2026-12-07): normal 8.97 -> 11.32, pairs 11.08 -> 13.53,
            // centres 2.30 -> 1.26 mm; since both faces of a joint share one plane (the
            // same day): normal 11.32 -> 8.09, and every pair is one plane (0).
            ("facet normal (deg)", 10.0),          // 8.09
            ("facet pair opposition (deg)", 0.01), // 0.00
            ("spinous tip (mm)", 1.0),             // 0.68 (1.36)
            // T12: its superior articular process reaches as far lateral as its short
            // transverse process; in 2 mm voxels the two share the voxels at the extreme
            // (see `landmark_validation_table`).
            ("transverse tip (mm)", 2.3), // 1.76 (6.13 on the whole height)
            ("disc centre (mm)", 0.8),    // 0.51
            ("disc height middle (mm)", 0.9), // 0.62
            ("disc height ant/post (mm)", 1.0), // 0.80 (1.11)
            ("segment sagittal angle (deg)", 1.2), // 0.83 (3.07)
            ("lordosis L1-S1 (deg)", 1.0), // 0.02
            ("sacral slope (deg)", 1.0),  // 0.50
        ],
    );
    assert!(e.rows.iter().all(|r| !r.0.ends_with("missing")), "{e:?}");
}

/// Asserts the largest error of each kind.
fn check(e: &Errors, limits: &[(&str, f64)]) {
    for (k, lim) in limits {
        let m = e.max(k);
        assert!(
            m <= *lim,
            "{k}: max error {m:.2} > {lim} (mean {:.2})",
            e.mean(k)
        );
    }
}

#[test]
fn scoliotic_osteoporotic_phantom_landmarks_at_2mm() {
    let (ph, lm, e) = run(PhantomSpec {
        spacing_mm: 2.0,
        scoliosis_cobb_deg: 20.0,
        bmd_scale: 0.6,
        noise_hu: 30.0,
        ..PhantomSpec::default()
    });
    print(&e);
    // Measured maxima in the comments. The sacral alae that had turned S1's frame by up to
    // 13 deg (and moved its endplate centre ~5 mm) no longer enter its endplate centre.
    check(
        &e,
        &[
            ("frame y axis (deg)", 2.0),                      // 1.52
            ("frame z axis (deg)", 1.0),                      // 0.51
            ("frame origin (mm)", 1.0),                       // 0.63
            ("endplate centre (mm)", 1.8),                    // 1.29
            ("endplate normal (deg)", 1.5),                   // 0.89
            ("segment coronal angle (deg)", 1.0),             // 0.62
            ("coronal Cobb (deg)", 1.0),                      // 0.03
            ("pedicle direction vs design axis (deg)", 15.5), // 14.06 (13.8 before session 31)
            ("pedicle width (mm)", 1.8),                      // 0.85 across the design axis (1.40)
            ("facet centre (mm)", 2.5),                       // 1.82
            ("spinous tip (mm)", 1.3),                        // 0.93 (2.66 from the labels alone)
        ],
    );
    let m = measure(&lm);
    let (c, t) = (
        m.coronal_cobb.expect("Cobb"),
        ph.truth.angles.coronal_cobb.clone().expect("truth Cobb"),
    );
    assert_eq!(
        (c.upper_end.name(), c.lower_end.name()),
        (t.upper_end.as_str(), t.lower_end.as_str())
    );
    for v in &lm.vertebrae {
        // 0.6 x 220 HU.
        assert!(
            (v.trabecular_hu - 132.0).abs() < 15.0,
            "{}: {}",
            v.level,
            v.trabecular_hu
        );
    }
}

/// The L1 screen follows the trabecular HU across Pickhardt's thresholds (110 / 160 HU): a
/// phantom at 0.45, 0.6 and 1.0 times healthy density (about 99, 132 and 220 HU).
#[test]
fn bone_density_screen_follows_l1_trabecular_hu() {
    for (bmd, low, words) in [
        (0.45, true, "low bone density likely"),
        (0.6, false, "indeterminate"),
        (1.0, false, "osteoporosis unlikely"),
    ] {
        let ph = generate(&PhantomSpec {
            spacing_mm: 2.0,
            bmd_scale: bmd,
            ..PhantomSpec::default()
        })
        .expect("spec");
        let m = measure(&landmarks(&ph.ct, &ph.labels).expect("landmarks"));
        let b = m.bone_density.clone().expect("L1 screened");
        assert_eq!(b.low, low, "bmd {bmd}: {}", b.note);
        assert!(
            b.note.contains(words) && b.note.contains("Pickhardt"),
            "{}",
            b.note
        );
        assert!(
            (b.trabecular_hu - 220.0 * bmd).abs() < 15.0,
            "{}",
            b.trabecular_hu
        );
        assert!(m.table().contains(words), "{}", m.table());
        // The phantom's bodies are not deformed, osteoporotic or not (over the 24 phantoms
        // of docs/segment/README.md the largest height loss is 8.7 %).
        for v in &m.vertebrae {
            assert!(v.deformity.is_none(), "bmd {bmd}: {:?}", v.deformity);
        }
    }
}

/// A vertebra whose trabecular HU is unknown (NaN, written as JSON null) reads back: twin
/// files carry the landmarks.
#[test]
fn unknown_trabecular_hu_survives_json() {
    let ph = generate(&PhantomSpec {
        spacing_mm: 3.0,
        ..PhantomSpec::default()
    })
    .expect("spec");
    let mut lm = landmarks(&ph.ct, &ph.labels).expect("landmarks");
    lm.vertebrae[0].trabecular_hu = f64::NAN;
    let text = serde_json::to_string(&lm).unwrap();
    assert!(text.contains("\"trabecular_hu\":null"));
    let back: SpineLandmarks = serde_json::from_str(&text).expect("reads back");
    assert!(back.vertebrae[0].trabecular_hu.is_nan());
    assert_eq!(
        back.vertebrae[1].trabecular_hu,
        lm.vertebrae[1].trabecular_hu
    );
    let m = measure(&back);
    assert_eq!(m.vertebrae[0].trabecular_hu, None);
    // Files written before the canal section read none.
    let old = text.replace("\"canal\":", "\"canal_unused\":");
    let back: SpineLandmarks = serde_json::from_str(&old).expect("old file reads");
    assert!(back.vertebrae.iter().all(|v| v.canal.is_none()));
}

#[test]
fn mismatched_grids_are_rejected() {
    let ph = generate(&PhantomSpec {
        spacing_mm: 3.0,
        ..PhantomSpec::default()
    })
    .expect("spec");
    let small = ph.labels.crop([0, 0, 0], [10, 10, 10]).expect("crop");
    let err = landmarks(&ph.ct, &small).unwrap_err();
    assert!(err.to_string().contains("different sizes"), "{err}");
    let empty = ph.labels.map(|_| 0u16);
    assert!(landmarks(&ph.ct, &empty).is_err());
}

/// Writes docs/segment/landmarks.md: landmark and angle errors on the phantom at 1 mm
/// (reference labels). Ignored: several phantoms at 1 mm take ~1 min in debug.
#[test]
#[ignore = "several 1 mm phantoms; run in release"]
fn landmark_validation_table() {
    let variants: Vec<(&str, PhantomSpec)> = vec![
        ("default (lordosis 45, noise 20)", PhantomSpec::default()),
        (
            "lordosis 65",
            PhantomSpec {
                lordosis_deg: 65.0,
                ..PhantomSpec::default()
            },
        ),
        (
            "scoliosis Cobb 25",
            PhantomSpec {
                scoliosis_cobb_deg: 25.0,
                ..PhantomSpec::default()
            },
        ),
        (
            "osteoporotic bmd 0.6, noise 40",
            PhantomSpec {
                bmd_scale: 0.6,
                noise_hu: 40.0,
                ..PhantomSpec::default()
            },
        ),
        (
            "spacing 0.6 mm",
            PhantomSpec {
                spacing_mm: 0.6,
                ..PhantomSpec::default()
            },
        ),
        (
            "spacing 1.5 mm",
            PhantomSpec {
                spacing_mm: 1.5,
                ..PhantomSpec::default()
            },
        ),
    ];
    let mut md = String::from(
        "# Landmark validation on the phantom\n\n\
         Generated by `cargo test --release -p spinetwin-segment --test landmarks -- --ignored \
         landmark_validation_table`. Landmarks from the phantom's reference label map and CT at \
         1 mm (T12-S1; the last two columns at 0.6 and 1.5 mm), compared with `truth.json`. Errors: distance (mm), angle between unit \
         vectors (deg) or absolute difference; mean / max over all vertebrae (both sides, both \
         endplates) of each phantom.\n\n\
         Both sides use the same anatomical definitions: spinous tip = the most posterior \
         point of the spinous process along the vertebra's y axis; transverse tip = the most \
         lateral point along its x axis (ours: of the bone within 3 mm of the pedicle axis's \
         height, where the transverse process leaves the arch); facet centre = the centroid \
         of the articular surface, the part of each process's joint face that the partner \
         process faces across the joint \
         space; facet normal = the normal of that face; pedicle width and height = the \
         narrowest bone chords across the pedicle axis (where the canal cuts into the L4 and L5 \
         pedicles they are narrower than the pedicle's cylinder); pedicle axis = the screw \
         corridor, the line through the pedicle furthest from its walls \
         (`spinetwin_anatomy::pedicle`: seeded at the isthmus, the smallest bone section lateral \
         to the canal behind the body, among the slabs where the canal still reaches at least \
         half as far to that side as at its widest; candidate lines scored by their clearance \
         from the walls), and pedicle entry = where it leaves the posterior cortex. The truth \
         computes them from the phantom's analytic solids (the corridor with `pedicle_corridors`, on a \
         0.25 mm grid), we from the label map.\n\n\
         **The pedicle axis as the screw corridor on both sides** (2026-12-06, session 31): \
         the rows compared it with the phantom's design axis, a pedicle cylinder of which only \
         a 2-4 mm stub between the body and the arch shows (the lamina, the transverse process \
         root and the superior articular process blend into it from 2-3 mm in front of the \
         isthmus backwards, so its walls do not show that axis); those rows stay in the table \
         as \"vs design axis\". Against the corridor of the analytic solid, the label map's \
         corridor read as before was off by 1.51 / 3.74 mm (entry) and 2.30 / 3.97 deg at 1 mm \
         (default phantom; 1.75 / 7.18 mm and 1.69 / 4.59 deg at 1.5 mm), the seed's position \
         jumping by a voxel with the grid's phase and the score's plateau mean jumping where a \
         line crossed its 1 % cut. Now the isthmus lies \
         between slabs (`isthmus_y`), the lines are weighted down to nothing at 2 % below the \
         best, and the clearances are probed at a quarter voxel on the label interpolated \
         trilinearly (its half level). What stays: the score is flat where the pedicle is short \
         and wide (T12: every line from 6 to 20 deg within 1.5 % of the best), so there the \
         direction is weakly defined on both sides (up to 2.7 deg at 1 mm; at 1.5 mm, where the \
         isthmus clearance is a voxel short and many lines tie, T12 reads 9.0 deg and 3.2 mm off, \
         so the 1.5 mm column's direction is worse than before, 2.45 / 8.97 deg, while its entry \
         improved, 0.98 / 3.20 mm); the truth's \
         own grid moves it by up to 1.2 deg and 0.4 mm (L2, L3; a 0.5 against a 0.25 mm grid, \
         four times the time), so differences of about a degree are within the truth's own \
         resolution. The widths are compared \
         across each side's own corridor.\n\n\
         **The corridor's conditioning, measured** (2026-12-07, session 37; `landmark_errors` \
         with `CORRIDOR=1`, default phantom at 1 mm): the direction errors are all in the \
         convergence angle (sagittal tilt within 0.2 deg): T12 2.61 deg (13.45 against the \
         truth's 10.85), L2 1.94, L5 right 1.23, the others 0.49-0.92. The definition itself \
         is ill-conditioned there: on the analytic solid T12's corridor converges at 9.80, \
         10.85, 14.59 and 19.69 deg with the plateau's tolerance at 1, 2, 5 and 10 % of the \
         best score, and at 21.91 deg with the clearance cap at 1.2 instead of 0.8 times the \
         isthmus clearance. Neither a wider tolerance (5 %: errors 0.39-2.55 deg; 10 %: \
         0.04-3.96) nor a score without a cap (the mean logarithm of the clearance, the \
         corridor's analytic centre: maxima 1.83-2.43 deg at tolerances of 0.5-5 %, and every corridor 2-18 deg more \
         convergent, drawn towards the body's middle) agrees better, so the definition is \
         unchanged.\n\n\
         **T12's transverse tip without its articular ridge** (2026-12-07, session 39): at \
         T12 the superior articular process reaches as far lateral as the short transverse \
         process, a vertical ridge 24 mm from the midline, 2-3 mm behind the tip, from the \
         process up to the joint. Its foot within 3 mm of the pedicle's height had moved the \
         tip back and up, by up to 1.8 mm at 1.5 mm and 1.4 mm at 1 mm. The two touch \
         across a voxel at 1 mm and coarser, so the ridge is told by what stands above the \
         band: bone as lateral as the band's extreme 3-6 mm above it marks the ridge's \
         extent front to back, and the band's points within it are left out \
         (`without_ridge`). The lateral profile's parabola now also fits four slices (five \
         before: a 6 mm band holds four or five slices of 1.5 mm, and most 1.5 mm tips had \
         fallen back to the mean of the extreme voxels). Transverse tip mean / max before -> \
         after: default 0.53 / 0.82 -> 0.47 / 0.82, lordosis 65 0.57 / 1.41 -> 0.43 / 0.66, \
         scoliosis 0.45 / 0.91 -> 0.38 / 0.91, 0.6 mm 0.32 / 1.22 -> 0.20 / 0.48, 1.5 mm \
         0.87 / 1.81 -> 0.56 / 0.95. Outside the table's columns, at 1.5 mm: lordosis 20 \
         2.28 -> 1.51, lordosis 65 1.90 -> 1.31, Cobb 25 1.69 -> 1.21 mm (T12 in each; the \
         lumbar tips up to 1.02 mm). In 2 mm voxels (outside the issue's range) ridge and \
         process share the extreme voxels: the default phantom's maximum stays 1.76 mm, the \
         scoliotic osteoporotic one's goes 1.71 -> 2.63 mm (T12, medial and forward).\n\n\
         What else stays above 1 mm / 1 deg and why: the facet planes of \
         the scoliotic phantom's asymmetric joints reach 1-2 deg.\n\n\
         **Endplates of coarse voxels** (2026-12-07, session 41): where a voxel's edge \
         across the body axis is longer than the columns' cells (3 mm left-right voxels \
         of a sagittal scan), its points are spread along it, and the central plane that \
         selects the endplate's columns is refitted without columns over 4 mm from it. \
         The table's isotropic voxels are not spread; the trim moved the lordosis 65 \
         column only (endplate normal mean 0.19 -> 0.17 deg, pedicle entry 0.65 / 0.97 \
         -> 0.58 / 0.89 mm, pedicle direction mean 1.50 -> 1.61 deg, canal width maximum \
         0.69 -> 0.77 mm). On the real CT verse012 the automatic labels' measures now \
         agree with the expert labels' (docs/segment/README.md).\n\n\
         **Joints whose faces barely overlap** (2026-12-07, session 35): outside the \
         table's columns, with lordosis 60 and Cobb 40 the concave side's L5-S1 faces \
         overlap over a few mm^2, and the top of S1's superior process, facing L5 end-on, \
         had won the facet patch: S1's superior left facet came out 43 deg off at 1 mm \
         (73 deg at 1.5 mm), from 13 mm^2, without a warning. Surfaces whose normals lie \
         within 53 deg of the body axis towards the neighbour (the bony stops' criterion) \
         are now left out of the facet patch, and a facet of under 20 voxel faces says \
         that its orientation is unreliable: 5.35 deg at 1 mm and 25 deg at 1.5 mm, both \
         warned (test \
         `a_joint_whose_faces_barely_overlap_keeps_its_orientation_and_says_it_is_small`). \
         Where no articular surface is left at all (a joint the segmentation did not cut, \
         split by a horizontal label boundary, as the automatic labels at 2 mm are), the \
         end-on surfaces are kept as the facet, as the joint is there, and the facet says \
         its orientation is unreliable (there 35-78 deg off). \
         At 2 mm every facet has 7-15 faces and warns. In the table: facet centres \
         +0.00..+0.03 mm (mean), the facet normal's maximum at lordosis 65 1.34 -> 1.44 \
         deg, the pair opposition's maxima 0.84 -> 0.76 (default), 1.49 -> 1.71 (lordosis \
         65), 2.24 -> 2.41 (scoliosis), its 1.5 mm mean 1.08 -> 1.47 deg (edge voxels of \
         the faces whose box normals lean towards the axis are left out too). Keeping the \
         end-on surfaces in the patch but not letting them lead it changed no column but \
         left that facet 10 deg off with 24 mm^2, unwarned.\n\n\
         **One plane per facet joint** (2026-12-07, session 36): the two articular faces \
         of a joint are congruent and about 1 mm apart, so they share their plane; each \
         face's fit reads its own voxel staircase. Both faces now take the area-weighted \
         mean of the two fits (where they lie within 15 deg of opposite), so the pair \
         opposition row is 0 by construction (a value above 0 would be a joint left as \
         two planes). Facet normal mean / max before -> after: default 0.42 / 0.86 -> \
         0.32 / 0.71 deg, lordosis 65 0.61 / 1.44 -> 0.48 / 1.15, scoliosis 0.79 / 2.27 \
         -> 0.56 / 1.77, osteoporotic 0.42 / 0.86 -> 0.32 / 0.71, 0.6 mm 0.08 / 0.19 -> \
         0.06 / 0.16, 1.5 mm 1.40 / 2.11 -> 1.16 / 1.89; at 2 mm (default, reference \
         labels) the maximum 11.32 -> 8.09, on the automatic labels at 1 mm 3.16 -> 2.77. \
         Measured and not kept: the joint's plane through the middle of its joint space \
         read from the CT (the two half-maximum crossings either side of the dip along \
         the normal, from both faces): 0.33 / 0.76 default, but 0.63 / 1.43 osteoporotic \
         (noise 40 HU), 0.57 / 1.88 at lordosis 65 and 0.24 / 0.53 at 0.6 mm, and that \
         plane averaged with the label planes' was worse than the labels alone at 0.6 mm \
         and 1.5 mm (docs/segment/README.md). Nor one plane fitted to both faces' surface \
         points at once (each face centred on its own; session 39): facet normal maximum \
         0.71 -> 0.64 deg (default) but 1.15 -> 2.07 (lordosis 65) and 1.77 -> 2.73 \
         (Cobb 25), 1.89 -> 1.71 at 1.5 mm.\n\n\
         **Sub-voxel endplates** (2026-12-05): each endplate column's height is also read \
         from the CT profile along the body axis (partial volume and blur move the cortex \
         continuously, the label surface moves in whole voxels); the plane's tilt is fitted \
         to those heights, its level and concavity to the label surface (the reading's offset \
         from the true surface follows the cortex's thickness). From the labels alone, the \
         1.5 mm column read: frame axes 1.94 / 2.43 / 1.55 deg, endplate normal 2.12 deg, \
         segment sagittal angle 3.50 deg, anterior/posterior disc heights 1.55 mm (max); at \
         1 mm: endplate normal 1.19 deg, segment sagittal angle 1.95 deg.\n\n\
         **Session 25 (2026-12-05): the cortex from the profile's moments, the concavity \
         centred on the outline's ellipse, and a phantom whose partial volume is continuous.** \
         The first reading took the half-maximum between the cortex's brightest sample and the \
         disc: the sampled peak of a 0.8 mm cortex in 1.5 mm voxels changes with the grid's \
         phase, and the edge moved by up to +-0.4 mm between neighbouring columns; the cortex \
         is now placed by the profile's zeroth and first moments (bone, a thin bright layer, \
         disc). The phantom rendered partial volume with a regular 2 x 2 x 2 supersample, \
         which moves a boundary lying along the grid in half-voxel steps, so no reading of its \
         CT could be sub-voxel there; it now averages along the boundary's normal with the \
         voxel's projected density (continuous, like a scanner's). The endplate's concavity \
         was centred on the midline's front-back extent, which the concave posterior wall \
         shortens; it is now centred on the ellipse fitted to the footprint's row widths \
         (not at the sacrum, whose rows widen into the alae). That removed a 0.2-0.4 deg \
         tilt of every endplate at every spacing. Before -> after (max): endplate normal 0.70 \
         -> 0.44 deg (default), 1.12 -> 1.15 (1.5 mm); segment sagittal angle 1.01 -> 0.45 \
         (default), 1.68 -> 0.66 (1.5 mm); frame y and z axes at 1.5 mm 1.04 / 1.03 -> \
         0.73 / 0.73; anterior/posterior disc heights 0.58 -> 0.23 mm (default), 0.68 -> \
         0.35 (1.5 mm); at 1.25 mm (not a column) the endplate normal reads 0.65 deg at most. \
         At 1 mm the frame's y and z axes moved the other way (0.10 -> 0.19 deg, max). \
         What is left at 1.5 mm is L4's superior endplate (1.15 deg): the first moment of a \
         profile sampled in whole voxels is not free of the grid's phase (only the zeroth is), \
         a residual of about +-0.3 mm, and L4 lies within 2.3 deg of the grid, so the phase \
         sweeps once across its endplate and the residual becomes a tilt; on the steeper \
         vertebrae it cycles and averages out. Reading the level from the zeroth moment alone \
         (the cortex's excess per vertebra) was measured and is worse (up to 4 deg: cancellous \
         texture, noise and the disc's layers enter it undamped).\n\n\
         **Measures** (2026-12-05, session 26): `spinetwin measure` also gives the body \
         heights (anterior, middle, posterior: between the two rim planes along the \
         vertebra's axis) and the bony canal's section at each vertebra's pedicle level \
         (area, interpedicular width, midline depth: the canal label sampled on a grid of a \
         quarter voxel in the transverse plane through the frame's origin and 1 mm above and \
         below); the truth samples the canal solid less the bone on a 0.1 mm grid in the same \
         plane. The area is within 2.4 % at every spacing (a voxel label's section is \
         unbiased); each wall of the label lies within half a voxel, so the widest extent \
         reads up to 0.9 mm off at 1 mm and 1.22 mm at 1.5 mm, the midline depth up to 0.5 \
         and 0.87 mm. Through the automatic segmentation instead (`spinetwin measure` on the \
         default phantom's CT, not in the table), the canal is the hole the bone threshold \
         encloses in axial slices: areas -6.6 to +7.6 %, depths 1.2-2.0 mm short, widths \
         within 1.4 mm except L5's (4.1 mm wide: the lateral recesses), body heights 0.3-0.6 \
         mm tall (the segmented bone is a little wider than the truth's surface).\n\n\
         **Sub-voxel pedicles and canal walls** (2026-12-06, session 29): each end of a \
         pedicle chord, and each row's end of the canal's section, is moved from the label's \
         boundary by where the CT profile across it crosses the half-maximum between the \
         tissue outside and the cortex (continuous with the surface's sub-voxel position), \
         less the median of those offsets over the pedicle's chords (over the canal rows whose \
         wall lies within a voxel of the widest). The label's boundary is unbiased over the \
         grid's phases; the half-maximum alone lies outside the bone by a fraction of the \
         cortex's blur (measured at 1 mm: pedicle widths 0.5-0.7 mm wide, heights 0.3-0.5 mm \
         tall, so it is not used alone). Before -> after (mean / max): pedicle height at 1.5 \
         mm 0.69 / 1.18 -> 0.30 / 0.54 mm, at 1 mm 0.23 / 0.50 -> 0.16 / 0.39; pedicle width \
         at 1 mm 0.20 / 0.54 -> 0.13 / 0.24 (1.5 mm 0.31 / 0.53 -> 0.28 / 0.63); canal width \
         at 1.5 mm 0.88 / 1.22 -> 0.58 / 0.85, at 1 mm 0.44 / 0.82 -> 0.36 / 0.74. At 0.6 mm \
         the pedicle height moved the other way (0.16 / 0.24 -> 0.23 / 0.29). The spinous \
         tip's dorsal profile likewise: each slice's most posterior label boundary moved by \
         the CT's surface along y less the median over the cap (which is 2 mm deep, or two \
         voxels on a coarser grid), then the parabola's vertex: at 1 mm 0.36 / 0.89 -> \
         0.17 / 0.31 mm, at 1.5 mm 0.58 / 0.98 -> 0.38 / 0.98 (the maximum is S1's crest; the \
         lumbar tips within 0.60). The transverse tips: the most lateral bone within 3 mm of \
         the pedicle axis's height (it was the whole height of the vertebra, which took in \
         T12's superior articular process: 5.0-5.8 mm off), the tip a parabola's vertex over \
         the slices' lateral extremes as for the spinous tip (the mean of the voxels within a \
         voxel of the extreme, pushed half a voxel out, read the lumbar tips 0.6-0.8 mm \
         medial; front to back the middle of the end face within half a voxel of each \
         slice's extreme): mean / max at 1 mm 1.48 / 5.19 -> 0.53 / 0.82 mm, at 1.5 mm 1.79 \
         / 5.77 -> 0.87 / 1.81 (T12). Tried and not \
         kept: the facet planes from the joint space's dip in the CT (the centroid of the \
         profile's dip between the two cortices): the phantom's 1 mm joint space barely dips \
         at 1.5 mm (20-50 HU against 300-400 HU of cortex), so at most a few points per facet \
         were read, and at 1 mm the normals got worse (mean 0.41 -> 0.76-1.08 deg, max 0.86 \
         -> 1.46-1.67). Nor the planes fitted to sub-voxel points of the label's surface \
         (session 34: where the label's indicator, smoothed by a Gaussian of 0.7 voxel, \
         crosses one half along each face voxel's normal): at 1.5 mm the facet normal went \
         1.40 / 2.11 -> 1.33 / 2.54 deg (mean / max), at 1 mm 0.41 / 0.86 -> 0.55 / 0.93, \
         with the lordosis-65 phantom's S1 3.38. The points lay within 0.2 mm (SD) of a \
         plane, but that plane was tilted: the residuals against the true face went from \
         -0.3 to +0.35 mm with the grid's phase across the face. A label map sampled at \
         voxel centres does not hold a plane's sub-voxel position where the plane lies near \
         a grid axis, and a face 30 voxels wide does not average that out.\n\n\
         Apart from the endplate tilts and these chords, geometry comes from the label map \
         only, so with reference labels bone density and noise change little beyond the \
         trabecular HU.\n\n\
         **Across from the rows' middles** (2026-12-05, session 24): the endplate centre's \
         left-right position is the mean over the rows of footprint cells of each row's middle \
         (it was the middle of the extreme cells), the spinous tip's the same over the rows of \
         the process near its tip (it was the mean of the extreme voxels of a midline band): \
         both had sat half a voxel to one side where the grid does not straddle the midline \
         symmetrically (0.71-0.75 mm at 1.5 mm). At 1.5 mm: endplate centre 1.03 -> 0.76 mm, \
         spinous tip 1.15 -> 0.86 mm, disc centre 0.87 -> 0.52 mm, segment coronal angle \
         0.43 -> 0.05 deg, Cobb 0.35 -> 0.04 deg, frame x axis (mean) 0.17 -> 0.07 deg (scoliosis, max \
         0.84 -> 0.50); the pedicle height (1.12 -> 1.23 mm) and the segment's sagittal angle \
         (1.60 -> 1.68 deg) moved the other way. At 1 mm (the default column) no row changed.\n\n\
         **At 1.5 mm voxels (the coarse end of the issue's 0.6-1.5 mm) the issue's 1 mm / 1 deg \
         is still not met** for L4's endplate normal (1.15 deg, see above), the facet \
         normals (see the column): those planes come from the label \
         map, whose 1.5 mm staircase tilts them, and no sub-voxel reading of the facets is \
         kept (see above). At 0.6 mm the rows within 1 mm / 1 deg at 1 mm stay within it.\n\n",
    );
    let mut all: Vec<(&str, Errors)> = Vec::new();
    for (name, spec) in variants {
        let spacing = spec.spacing_mm;
        let corridors = pedicle_corridors(&spec).expect("valid spec");
        let ph = generate(&spec).expect("valid spec");
        let lm = landmarks(&ph.ct, &ph.labels).expect("landmarks");
        let e = score(&ph, &lm, Some(&corridors));
        println!("== {name}");
        print(&e);
        // At 1.5 mm the label map's staircase is half as coarse again as at 1 mm: the
        // endplates take their tilt from the CT's partial-volume edge, the rest of the
        // landmarks come from the labels alone, and these rows have their own limits
        // (measured maximum in the comments, from the labels alone before the sub-voxel
        // endplates in brackets; the doc says which exceed the 1 mm / 1 deg); every
        // other row keeps the limits below.
        if spacing > 1.2 {
            check(
                &e,
                &[
                    ("frame x axis (deg)", 0.5),    // 0.28 (1.94 from labels alone)
                    ("frame y axis (deg)", 0.9),    // 0.72 (2.43)
                    ("frame z axis (deg)", 0.9),    // 0.72 (1.55)
                    ("frame origin (mm)", 0.9),     // 0.66
                    ("endplate centre (mm)", 0.9),  // 0.70
                    ("endplate normal (deg)", 1.4), // 1.15 (2.12; L4, see the doc)
                    // The corridor where T12's scores tie over many lines (see the doc).
                    ("pedicle direction (deg)", 10.0), // 8.97 (T12)
                    ("pedicle entry (mm)", 3.8),       // 3.20 (T12)
                    ("spinous tip (mm)", 1.2),         // 0.98 (S1; lumbar 0.60)
                    ("facet normal (deg)", 2.3),       // 1.89 (2.11 before the joint plane)
                    ("facet pair opposition (deg)", 0.01), // 0.00 (one plane per joint)
                    ("disc centre (mm)", 0.8),         // 0.63
                    ("disc height middle (mm)", 0.4),  // 0.23 (0.47)
                    ("disc height ant/post (mm)", 0.55), // 0.36 (1.55)
                    ("segment sagittal angle (deg)", 0.85), // 0.66 (3.50)
                    ("segment coronal angle (deg)", 0.3), // 0.13 (0.28)
                    ("body height ant/mid/post (mm)", 0.9), // 0.66
                    // Each wall of the label within half a voxel: 0.75 mm here.
                    ("canal depth (mm)", 1.1), // 0.87
                ],
            );
        }
        let coarse = [
            "frame x axis (deg)",
            "frame y axis (deg)",
            "frame z axis (deg)",
            "frame origin (mm)",
            "endplate centre (mm)",
            "endplate normal (deg)",
            "pedicle direction (deg)",
            "pedicle entry (mm)",
            "spinous tip (mm)",
            "facet normal (deg)",
            "facet pair opposition (deg)",
            "disc centre (mm)",
            "disc height middle (mm)",
            "disc height ant/post (mm)",
            "segment sagittal angle (deg)",
            "segment coronal angle (deg)",
            "body height ant/mid/post (mm)",
            "canal depth (mm)",
        ];
        let limits_for = |limits: &[(&'static str, f64)]| -> Vec<(&'static str, f64)> {
            limits
                .iter()
                .copied()
                .filter(|(k, _)| spacing <= 1.2 || !coarse.contains(k))
                .collect()
        };
        // The largest error of each row over the phantoms, with a margin (measured maximum
        // in the comments; the table has the rest).
        check(
            &e,
            &limits_for(&[
                ("frame x axis (deg)", 0.8),            // 0.57 scoliosis
                ("frame y axis (deg)", 0.8),            // 0.57 scoliosis
                ("frame z axis (deg)", 0.5),            // 0.21
                ("frame origin (mm)", 0.6),             // 0.43
                ("endplate centre (mm)", 0.8),          // 0.58
                ("endplate normal (deg)", 0.7),         // 0.47
                ("pedicle entry (mm)", 1.2),            // 0.99 scoliosis (design axis: 6.65)
                ("pedicle direction (deg)", 3.2),       // 2.74 scoliosis, T12 (design: 8.40)
                ("pedicle width (mm)", 0.8),            // 0.70 (1.5 mm)
                ("pedicle height (mm)", 0.7),           // 0.54 (1.5 mm; 1.18 from labels alone)
                ("facet centre (mm)", 1.0),             // 0.80
                ("spinous tip (mm)", 0.6),              // 0.38 (0.89 without the CT)
                ("transverse tip (mm)", 1.0),           // 0.95 (1.5 mm; 1.81 before session 39)
                ("facet normal (deg)", 2.1),            // 1.77 scoliosis (2.27 per face)
                ("facet pair opposition (deg)", 0.01),  // 0.00: one plane per joint
                ("disc centre (mm)", 0.5),              // 0.32
                ("disc height middle (mm)", 0.5),       // 0.37
                ("disc height ant/post (mm)", 0.7),     // 0.49
                ("segment sagittal angle (deg)", 0.85), // 0.68
                ("segment coronal angle (deg)", 0.3),   // 0.14
                ("lordosis L1-S1 (deg)", 0.6),          // 0.26
                ("sacral slope (deg)", 0.4),            // 0.21
                ("coronal Cobb (deg)", 0.3),            // 0.10 (0.28 from labels alone)
                ("body height ant/mid/post (mm)", 0.6), // 0.49 lordosis 65
                ("canal area (%)", 3.0),                // 2.34 (1.5 mm: 2.31)
                ("canal width (mm)", 1.0),              // 0.85 (1.5 mm; 1.22 from labels alone)
                ("canal depth (mm)", 0.7),              // 0.50
            ]),
        );
        // Means of the rows whose definitions were aligned with the truth (measured maximum
        // over the phantoms in the comments).
        let means = if spacing > 1.2 {
            [
                ("facet centre (mm)", 0.6),       // 0.48
                ("facet normal (deg)", 1.7),      // 1.40
                ("spinous tip (mm)", 0.6),        // 0.38 (0.58 without the CT)
                ("transverse tip (mm)", 0.7),     // 0.56 (0.87 before session 39)
                ("pedicle width (mm)", 0.5),      // 0.42 (T12's corridor, see the doc)
                ("pedicle entry (mm)", 1.2),      // 0.98
                ("pedicle direction (deg)", 2.8), // 2.45
                ("pedicle height (mm)", 0.5),     // 0.30 (0.69 from labels alone)
            ]
        } else {
            [
                ("facet centre (mm)", 0.5),       // 0.40
                ("facet normal (deg)", 1.0),      // 0.79
                ("spinous tip (mm)", 0.4),        // 0.26 (0.40 without the CT)
                ("transverse tip (mm)", 0.6),     // 0.47 (0.57 before session 39)
                ("pedicle width (mm)", 0.25),     // 0.16 (0.20 from labels alone)
                ("pedicle entry (mm)", 0.8),      // 0.65 lordosis 65
                ("pedicle direction (deg)", 1.8), // 1.50 lordosis 65
                ("pedicle height (mm)", 0.35),    // 0.23 (0.42 from labels alone)
            ]
        };
        for (k, lim) in means {
            assert!(
                e.mean(k) <= lim,
                "{name}: {k}: mean {:.2} > {lim}",
                e.mean(k)
            );
        }
        all.push((name, e));
    }
    md += "| landmark |";
    for (n, _) in &all {
        md += &format!(" {n} |");
    }
    md += "\n|---|";
    for _ in &all {
        md += "---|";
    }
    md += "\n";
    let kinds: Vec<&str> = all[0].1.rows.iter().map(|r| r.0).collect();
    let mut kinds = kinds;
    for (_, e) in &all {
        for r in &e.rows {
            if !kinds.contains(&r.0) {
                kinds.push(r.0);
            }
        }
    }
    for k in kinds {
        md += &format!("| {k} |");
        for (_, e) in &all {
            match e.rows.iter().find(|r| r.0 == k) {
                Some(r) => {
                    let mean = r.1.iter().sum::<f64>() / r.1.len() as f64;
                    let max = r.1.iter().cloned().fold(0.0, f64::max);
                    md += &format!(" {mean:.2} / {max:.2} |");
                }
                None => md += " - |",
            }
        }
        md += "\n";
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/segment/landmarks.md"
    );
    std::fs::write(path, md).expect("write docs/segment/landmarks.md");
}

/// The concave side of the lumbosacral joint with a steep lordosis and a strong scoliosis
/// (lordosis 60, Cobb 40, 1 mm): L5's inferior and S1's superior articular faces overlap over
/// a few mm^2 only, and the top of S1's superior process faced L5 across a gap over more
/// voxels than the articular face did. The end-on surface is not an articular one (it was
/// taken as the facet, 43 deg off); what is left is small and says so.
#[test]
fn a_joint_whose_faces_barely_overlap_keeps_its_orientation_and_says_it_is_small() {
    let ph = generate(&PhantomSpec {
        lordosis_deg: 60.0,
        scoliosis_cobb_deg: 40.0,
        ..PhantomSpec::default()
    })
    .expect("valid spec");
    let lm = landmarks(&ph.ct, &ph.labels).expect("landmarks");
    let find = |level: &str| {
        let l = lm.vertebrae.iter().find(|l| l.level.name() == level);
        let t = ph.truth.vertebrae.iter().find(|t| t.level == level);
        (
            l.expect("landmarks of the level"),
            t.expect("truth of the level"),
        )
    };
    let (s1, t) = find("S1");
    let f = s1
        .superior_facets
        .left
        .as_ref()
        .expect("S1 superior left facet");
    let err = ang(v(f.normal), v(t.facets.superior_normals[0]));
    assert!(err < 10.0, "S1 superior left facet normal {err:.1} deg off");
    let small = |w: &String| w.contains("mm^2 of articular surface found");
    assert!(
        s1.warnings
            .iter()
            .any(|w| small(w) && w.starts_with("superior left")),
        "{:?}",
        s1.warnings
    );
    // The other facets are large enough to say nothing.
    for l in &lm.vertebrae {
        for w in l.warnings.iter().filter(|w| small(w)) {
            let name = l.level.name();
            assert!(
                (name == "S1" && w.starts_with("superior left"))
                    || (name == "L5" && w.starts_with("inferior left")),
                "{name}: {w}"
            );
        }
    }
}

/// The facet joints of the automatic segmentation at 1 mm: the joint space is bridged in the
/// bone mask (blur), so without locating the cleft in the CT the two vertebrae meet on a
/// near-horizontal cut through the fused articular processes and every facet normal is
/// 60-80 deg off (and the joint is reported as not resolved).
#[test]
fn segmented_facets_at_1mm_follow_the_joint_space() {
    use spinetwin_segment::{segment, SegmentOptions};
    let ph = generate(&PhantomSpec {
        spacing_mm: 1.0,
        ..PhantomSpec::default()
    })
    .expect("valid spec");
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("segment");
    let lm = landmarks(&ph.ct, &seg.labels).expect("landmarks");
    for v in &lm.vertebrae {
        assert!(
            !v.warnings.iter().any(|w| w.contains("touch")),
            "{}: {:?}",
            v.level,
            v.warnings
        );
    }
    let e = score(&ph, &lm, None);
    print(&e);
    // Measured: normals 1.07/2.77 deg (mean/max), centres 0.40/0.57 mm, opposition 0 (one
    // plane per joint; per face before 2026-12-07: normals 1.11/3.16, opposition
    // 0.37/0.63). Before the phantom's continuous partial volume (session 25): normals
    // 1.06/1.93, opposition 0.59/1.46; the maximum is now L1's right superior facet (its
    // left 0.59 deg), where the cleft's plane fitted to the dip voxels turned.
    check(
        &e,
        &[
            ("facet centre (mm)", 1.0),
            ("facet normal (deg)", 3.2),
            ("facet pair opposition (deg)", 0.01),
            // The screw corridor on automatic labels against the design axis (measured:
            // 4.6 mean, 8.1 max; the medial-wall fit it replaced was off by 39.8 deg at L4
            // left, which put the demo's L4 screw 15 mm off the pedicle).
            ("pedicle direction vs design axis (deg)", 10.0),
        ],
    );
    assert!(e.mean("facet normal (deg)") <= 1.5, "{e:?}");
}

#[test]
fn vertebral_foramina_stand_in_for_a_missing_canal_label() {
    // Label maps made elsewhere (VerSe masks) have vertebrae only: without the canal the
    // body/arch split needs the foramina enclosed by the vertebra masks.
    let ph = generate(&PhantomSpec {
        spacing_mm: 2.0,
        levels: spinetwin_anatomy::LevelRange::new(
            spinetwin_anatomy::Level::L2,
            spinetwin_anatomy::Level::L5,
            false,
        )
        .unwrap(),
        ..PhantomSpec::default()
    })
    .unwrap();
    let with = landmarks(&ph.ct, &ph.labels).unwrap();
    let mut bare = ph.labels.clone();
    for l in bare.data_mut() {
        if *l >= 100 {
            *l = 0;
        }
    }
    let without = landmarks(&ph.ct, &bare).unwrap();
    assert!(
        without
            .warnings
            .iter()
            .any(|w| w.contains("vertebral foramina")),
        "{:?}",
        without.warnings
    );
    for (a, b) in with.vertebrae.iter().zip(&without.vertebrae) {
        assert_eq!(a.level, b.level);
        assert!(
            !b.warnings.iter().any(|w| w.contains("anterior half")),
            "{}: {:?}",
            b.level.name(),
            b.warnings
        );
        let da = ang(v(a.frame.z), v(b.frame.z));
        let area = b.superior_endplate.area_mm2 / a.superior_endplate.area_mm2;
        assert!(
            da < 3.0 && (0.85..1.15).contains(&area),
            "{}: axis {da:.1} deg apart, endplate area ratio {area:.2}",
            b.level.name()
        );
    }
    // Real masks also enclose holes inside the bodies (an unfilled cancellous core): a
    // 12 mm hollow in each body is not taken for the canal (VerSe sub-verse004's L1 had
    // turned 75 deg so).
    let mut holed = bare.clone();
    let g = holed.grid().clone();
    let [nx, ny, nz] = holed.dims();
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = g.index_to_world(V3::new(i as f64, j as f64, k as f64));
                let l = holed.get(i, j, k);
                let inside = with.vertebrae.iter().any(|w| {
                    w.label == l && {
                        let d = p - v(w.frame.origin);
                        [w.frame.x, w.frame.y, w.frame.z]
                            .iter()
                            .all(|a| d.dot(&v(*a)).abs() <= 6.0)
                    }
                });
                if inside {
                    holed.set(i, j, k, 0);
                }
            }
        }
    }
    let hollow = landmarks(&ph.ct, &holed).unwrap();
    for (a, b) in with.vertebrae.iter().zip(&hollow.vertebrae) {
        let da = ang(v(a.frame.z), v(b.frame.z));
        let dy = ang(v(a.frame.y), v(b.frame.y));
        assert!(
            da < 3.0 && dy < 5.0,
            "{} with a hollow body: z axis {da:.1} deg, y axis {dy:.1} deg apart",
            b.level.name()
        );
    }
}

/// Bony stops (`inferior_stops`): where the posterior elements of a vertebra face the arch
/// of the vertebra below along the body axis within 3 mm, outside the facet joint. The
/// phantom keeps its inferior process tips clear of the arch below (4.75 mm at L4-L5,
/// mid-disc joints): its only stops are at L4-L5 and L5-S1, more than 2 mm open. On a real
/// spine (VerSe sub-verse004's expert mask, 1 x 1 x 2 mm, whose L4 process tips sit 0.75 mm
/// above L5) both L4-L5 stops are found closed to within a voxel, the L4 surface facing
/// down onto an L5 surface facing up, well below the facet joint.
#[test]
fn bony_stops_are_found_where_process_tips_meet_the_arch_below() {
    let gap_of = |vt: &spinetwin_segment::landmarks::VertebraLandmarks,
                  s: &spinetwin_segment::landmarks::BonyStop| {
        let z = v(vt.frame.z);
        assert!(v(s.upper.normal).dot(&z) < -0.6, "{}: {s:?}", vt.level);
        assert!(v(s.lower.normal).dot(&z) > 0.6, "{}: {s:?}", vt.level);
        (v(s.upper.centre) - v(s.lower.centre)).dot(&z)
    };
    let ph = generate(&PhantomSpec::default()).expect("valid spec");
    let lm = landmarks(&ph.ct, &ph.labels).expect("landmarks");
    for vt in &lm.vertebrae {
        for s in [&vt.inferior_stops.left, &vt.inferior_stops.right]
            .into_iter()
            .flatten()
        {
            let gap = gap_of(vt, s);
            assert!(
                matches!(vt.level.name(), "L4" | "L5") && (2.0..=3.0).contains(&gap),
                "{}: phantom stop {gap:.2} mm open",
                vt.level
            );
        }
    }
    let mask = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/verse004-t9-l5-mask/seg-vert_msk.nii.gz"
    ));
    if !mask.exists() {
        eprintln!("skipped the real spine: {} is absent", mask.display());
        return;
    }
    let labels = spinetwin_imaging::nifti::read_labels(mask).expect("read the mask");
    let ct = labels.map(|l| if l > 0 { 400.0f32 } else { 0.0 });
    let lm = landmarks(&ct, &labels).expect("landmarks of verse004");
    let l4 = lm
        .vertebra(spinetwin_anatomy::Level::L4)
        .expect("L4 in verse004");
    let z = v(l4.frame.z);
    for (side, stop, facet) in [
        ("left", &l4.inferior_stops.left, &l4.inferior_facets.left),
        ("right", &l4.inferior_stops.right, &l4.inferior_facets.right),
    ] {
        let stop = stop.as_ref().unwrap_or_else(|| panic!("{side}: no stop"));
        let facet = facet.as_ref().expect("the joint");
        let gap = gap_of(l4, stop);
        assert!((-1.0..=1.5).contains(&gap), "{side}: gap {gap:.2} mm");
        let below = (v(facet.centre) - v(stop.upper.centre)).dot(&z);
        assert!(
            below > 4.0,
            "{side}: the stop is {below:.1} mm below the joint"
        );
        println!(
            "verse004 L4-L5 {side} stop: {:.0} mm2, gap {gap:.2} mm, {below:.1} mm below the facet centre",
            stop.upper.area_mm2
        );
    }
}

/// Facet joint heights measured on the label map the way the `iap_gap` example measures real
/// masks (centre of the two facets found, above the lower vertebra's superior endplate
/// centre, along its axis): the anatomical phantom's joints sit where the 11 joints of two
/// real spines do (-3.6 to +0.4 mm; measured -0.9 to -2.6), the default phantom's near
/// mid-disc (measured +4.6 to +5.8).
#[test]
fn anatomical_phantom_joints_sit_at_the_lower_endplate_like_real_ones() {
    use spinetwin_phantom::FacetJoints;
    for (kind, lo, hi) in [
        (FacetJoints::Anatomical, -3.6, 0.4),
        (FacetJoints::MidDisc, 3.5, 7.0),
    ] {
        let ph = generate(&PhantomSpec {
            facet_joints: kind,
            ..PhantomSpec::default()
        })
        .expect("valid spec");
        let lm = landmarks(&ph.ct, &ph.labels).expect("landmarks");
        let mut n = 0;
        for w in lm.vertebrae.windows(2) {
            let (up, low) = (&w[0], &w[1]);
            for (a, b) in [
                (&up.inferior_facets.left, &low.superior_facets.left),
                (&up.inferior_facets.right, &low.superior_facets.right),
            ] {
                let (Some(a), Some(b)) = (a, b) else { continue };
                let c = (v(a.centre) + v(b.centre)) / 2.0;
                let h = (c - v(low.superior_endplate.centre)).dot(&v(low.frame.z));
                assert!(
                    (lo..=hi).contains(&h),
                    "{kind:?} {}-{}: joint {h:.2} mm above the endplate",
                    up.level.name(),
                    low.level.name()
                );
                n += 1;
            }
        }
        assert_eq!(n, 12, "{kind:?}: every joint T12-L1 .. L5-S1 found");
    }
}

/// The measures of a real CT agree whichever labels they are read from: verse012
/// (sagittal, 3 mm left-right voxels, T10-L3) through the automatic segmentation against
/// its expert VerSe labels. Until the endplate columns spread each coarse voxel across
/// them (and the central plane was trimmed), the automatic labels read L1-L2 10.3 deg and
/// L2-L3 27.7 deg more lordotic than the expert ones and a Cobb of 21.0 against 3.6 deg,
/// and the expert labels themselves made L3 13 mm tall at the back (30 mm in front).
#[test]
fn verse012_measures_agree_between_automatic_and_expert_labels() {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/verse012-t10-l3-sagittal"
    ));
    let (ct_path, mask) = (
        dir.join("sub-verse012_ct.nii.gz"),
        dir.join("sub-verse012_seg-vert_msk.nii.gz"),
    );
    if !ct_path.exists() || !mask.exists() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let ct = spinetwin_imaging::nifti::read_volume(&ct_path).expect("read the CT");
    let expert = spinetwin_imaging::nifti::read_labels(&mask).expect("read the labels");
    let auto = spinetwin_segment::segment(&ct, &spinetwin_segment::SegmentOptions::default())
        .expect("segment verse012")
        .labels;
    let m_auto = measure(&landmarks(&ct, &auto).expect("landmarks (automatic)"));
    let m_ref = measure(&landmarks(&ct, &expert).expect("landmarks (expert)"));
    let mut pairs = 0;
    for r in &m_ref.segments {
        let Some(a) = m_auto
            .segments
            .iter()
            .find(|a| a.upper == r.upper && a.lower == r.lower)
        else {
            continue;
        };
        pairs += 1;
        let (ds, dc) = (
            a.sagittal_deg - r.sagittal_deg,
            a.coronal_deg - r.coronal_deg,
        );
        eprintln!(
            "{}-{}: sagittal {ds:+.1}, coronal {dc:+.1} deg",
            r.upper, r.lower
        );
        assert!(
            ds.abs() < 8.0 && dc.abs() < 4.0,
            "{}-{}: automatic minus expert {ds:+.1} deg sagittal, {dc:+.1} coronal",
            r.upper,
            r.lower
        );
    }
    assert!(pairs >= 4, "only {pairs} segments in both");
    for r in &m_ref.vertebrae {
        let Some(a) = m_auto.vertebrae.iter().find(|a| a.level == r.level) else {
            continue;
        };
        let (Some(ha), Some(hr)) = (a.body_height_middle_mm, r.body_height_middle_mm) else {
            continue;
        };
        // The expert labels' own bodies: none of verse012's is wedged by more than L1's 36 %
        // (its front 19.6 mm against 30.7 at the back; L3 had read 13.1 against 29.7).
        if let (Some(a), Some(p)) = (r.body_height_anterior_mm, r.body_height_posterior_mm) {
            assert!(
                a.min(p) > 0.55 * a.max(p),
                "{}: expert body {a:.1} mm in front, {p:.1} at the back",
                r.level
            );
        }
        assert!(
            (ha - hr).abs() < 3.0,
            "{}: middle height {ha:.1} against {hr:.1} mm",
            r.level
        );
    }
    // L1 is wedged on the images (17 mm in front against 25 at the back between the voxel
    // centres at the midline): a moderate wedge from either labelling, nothing else.
    for m in [&m_ref, &m_auto] {
        for v in &m.vertebrae {
            match (v.level, &v.deformity) {
                (spinetwin_anatomy::Level::L1, Some(d)) => assert!(
                    d.kind == spinetwin_segment::measures::DeformityKind::Wedge && d.grade == 2,
                    "{}",
                    d.note
                ),
                (spinetwin_anatomy::Level::L1, None) => panic!("L1's wedge not screened"),
                (_, Some(d)) => panic!("{}", d.note),
                _ => {}
            }
        }
    }
    let (ca, cr) = (
        m_auto.coronal_cobb.as_ref().map_or(0.0, |c| c.angle_deg),
        m_ref.coronal_cobb.as_ref().map_or(0.0, |c| c.angle_deg),
    );
    assert!((ca - cr).abs() < 4.0, "Cobb {ca:.1} against {cr:.1} deg");
}
