//! Segmentation of the synthetic phantom against its ground truth.

use nalgebra::Vector3;
use spinetwin_anatomy::Level;
use spinetwin_imaging::{Grid, Volume};
use spinetwin_phantom::{generate, Phantom, PhantomSpec};
use spinetwin_segment::{dice, segment, SegmentError, SegmentOptions, Segmentation};

fn phantom(spec: PhantomSpec) -> Phantom {
    generate(&spec).expect("valid phantom spec")
}

/// Dice per vertebra of the truth, and whether every truth level was found under its label.
fn score(ph: &Phantom, seg: &Segmentation) -> (Vec<(String, f64)>, bool) {
    let mut all_found = true;
    let d = ph
        .truth
        .vertebrae
        .iter()
        .map(|v| {
            all_found &= seg
                .levels
                .iter()
                .any(|l| l.label == v.label && l.level.name() == v.level);
            (
                v.level.clone(),
                dice(&ph.labels, &seg.labels, v.label).unwrap_or(0.0),
            )
        })
        .collect();
    (d, all_found && seg.levels.len() == ph.truth.vertebrae.len())
}

#[test]
fn default_phantom_at_2mm_is_segmented_and_identified() {
    let ph = phantom(PhantomSpec {
        spacing_mm: 2.0,
        ..PhantomSpec::default()
    });
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
    assert!(seg.sacrum_found, "warnings: {:?}", seg.warnings);
    let (d, identified) = score(&ph, &seg);
    println!("dice per vertebra at 2 mm: {d:?}");
    assert!(identified, "levels found: {:?}", seg.levels);
    for (level, v) in &d {
        assert!(*v >= 0.90, "{level}: Dice {v:.3} < 0.90 ({d:?})");
    }
    // Discs and canal are labelled too.
    for disc in ph.truth.discs.iter().filter(|d| d.label != 0) {
        let v = dice(&ph.labels, &seg.labels, disc.label).unwrap_or(0.0);
        assert!(v >= 0.7, "disc {}: Dice {v:.3}", disc.label);
    }
    let canal = dice(&ph.labels, &seg.labels, 200).unwrap_or(0.0);
    assert!(canal >= 0.6, "canal Dice {canal:.3}");
    // Reports are consistent with the label map.
    for l in &seg.levels {
        let n = seg.labels.data().iter().filter(|&&x| x == l.label).count();
        assert_eq!(n, l.voxels, "{}", l.level);
        assert!(l.mean_hu > 150.0 && l.confidence > 0.5, "{l:?}");
    }
}

/// The phantom with anatomical facet joints (inferior articular processes hanging past the
/// upper endplate of the vertebra below): identified, every vertebra above 0.90 at 2 mm
/// (measured 0.913-0.926, against 0.923-0.940 with mid-disc joints; docs/segment/README.md).
#[test]
fn phantom_with_anatomical_facet_joints_is_identified_at_2mm() {
    let ph = phantom(PhantomSpec {
        spacing_mm: 2.0,
        facet_joints: spinetwin_phantom::FacetJoints::Anatomical,
        ..PhantomSpec::default()
    });
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
    let (d, identified) = score(&ph, &seg);
    assert!(identified, "levels found: {:?}", seg.levels);
    for (level, v) in &d {
        assert!(*v >= 0.90, "{level}: Dice {v:.3} < 0.90 ({d:?})");
    }
}

#[test]
fn osteoporotic_scoliotic_phantom_is_identified() {
    let ph = phantom(PhantomSpec {
        spacing_mm: 2.0,
        bmd_scale: 0.6,
        scoliosis_cobb_deg: 20.0,
        noise_hu: 30.0,
        ..PhantomSpec::default()
    });
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
    let (d, identified) = score(&ph, &seg);
    println!("dice per vertebra (bmd 0.6, Cobb 20): {d:?}");
    assert!(identified, "levels found: {:?}", seg.levels);
    for (level, v) in &d {
        assert!(*v >= 0.85, "{level}: Dice {v:.3}");
    }
}

#[test]
fn volume_without_bone_is_a_clear_error() {
    let g = Grid::axis_aligned([40, 40, 40], [1.0; 3], Vector3::zeros()).unwrap();
    // Water with an air pocket.
    let v = Volume::from_fn(g, |i, _, _| if i < 10 { -1000.0f32 } else { 0.0 });
    let err = segment(&v, &SegmentOptions::default()).unwrap_err();
    assert!(matches!(err, SegmentError::NoBone(_)), "{err}");
    assert!(err.to_string().contains("no bone"), "{err}");
    // A block of bone without a canal is not a spine either.
    let g = Grid::axis_aligned([40, 40, 40], [1.0; 3], Vector3::zeros()).unwrap();
    let v = Volume::from_fn(g, |i, j, k| {
        if (10..30).contains(&i) && (10..30).contains(&j) && (5..35).contains(&k) {
            700.0f32
        } else {
            40.0
        }
    });
    let err = segment(&v, &SegmentOptions::default()).unwrap_err();
    assert!(matches!(err, SegmentError::NoSpine(_)), "{err}");
    // Too small, and NaN everywhere: errors, no panic.
    let g = Grid::axis_aligned([4, 40, 40], [1.0; 3], Vector3::zeros()).unwrap();
    let v = Volume::filled(g, 0.0f32);
    assert!(matches!(
        segment(&v, &SegmentOptions::default()),
        Err(SegmentError::TooSmall(_))
    ));
    let g = Grid::axis_aligned([20, 20, 20], [1.0; 3], Vector3::zeros()).unwrap();
    let v = Volume::filled(g, f32::NAN);
    assert!(segment(&v, &SegmentOptions::default()).is_err());
}

#[test]
fn scan_cropped_to_l2_l4_reports_levels_honestly() {
    let ph = phantom(PhantomSpec {
        spacing_mm: 2.0,
        ..PhantomSpec::default()
    });
    // Cut through the L1-L2 and L4-L5 discs.
    let disc_z = |upper: &str| {
        let d = ph.truth.discs.iter().find(|d| d.upper == upper).unwrap();
        d.centre[2]
    };
    let (z_top, z_bottom) = (disc_z("L1"), disc_z("L4"));
    let (lo, hi) = ph.ct.grid().world_bounds();
    let ct = ph
        .ct
        .crop_world(
            Vector3::new(lo.x, lo.y, z_bottom),
            Vector3::new(hi.x, hi.y, z_top),
        )
        .unwrap();
    let seg = segment(&ct, &SegmentOptions::default()).expect("L2-L4 is a spine");
    println!("levels: {:?}\nwarnings: {:?}", seg.levels, seg.warnings);
    assert!(!seg.sacrum_found);
    assert!(
        seg.warnings
            .iter()
            .any(|w| w.contains("sacrum is not in view")),
        "{:?}",
        seg.warnings
    );
    assert_eq!(seg.levels.len(), 3, "L2, L3 and L4 are whole in view");
    for l in &seg.levels {
        assert!(l.confidence < 0.5 && !l.warnings.is_empty(), "{l:?}");
    }
    // Consecutive levels, cranial to caudal.
    for w in seg.levels.windows(2) {
        assert!(w[0].level < w[1].level && w[1].level != Level::S1);
    }
}

/// Sweep over the phantom's anatomy and image quality (release: `cargo test --release -p
/// spinetwin-segment -- --ignored --nocapture`). Prints one row per case and the Dice per
/// vertebra (min / mean over the cases).
#[test]
#[ignore]
fn sweep_lordosis_cobb_bmd_noise_spacing() {
    let mut rows = Vec::new();
    let mut per_level: Vec<(String, Vec<f64>)> = Vec::new();
    let mut failures = Vec::new();
    // `SWEEP_SPACING=1.5` runs one spacing only (a quicker check of a change); a value that
    // is not a number or not one of the sweep's spacings fails rather than run nothing.
    let only: Option<f64> = std::env::var("SWEEP_SPACING").ok().map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("SWEEP_SPACING={s}: not a number of mm"))
    });
    let specs: Vec<PhantomSpec> = PhantomSpec::sweep()
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == s.spacing_mm))
        .collect();
    assert!(
        !specs.is_empty(),
        "SWEEP_SPACING={} mm is not one of the sweep's spacings (0.6, 1, 1.5)",
        only.unwrap_or_default()
    );
    for spec in specs {
        let ph = phantom(spec.clone());
        let t = std::time::Instant::now();
        let case = spec.sweep_name();
        let seg = match segment(&ph.ct, &SegmentOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{case}: {e}"));
                continue;
            }
        };
        let secs = t.elapsed().as_secs_f64();
        let (d, identified) = score(&ph, &seg);
        for (level, v) in &d {
            match per_level.iter_mut().find(|(l, _)| l == level) {
                Some((_, vs)) => vs.push(*v),
                None => per_level.push((level.clone(), vec![*v])),
            }
        }
        let min = d.iter().map(|x| x.1).fold(1.0, f64::min);
        let mean = d.iter().map(|x| x.1).sum::<f64>() / d.len() as f64;
        if !identified {
            failures.push(format!(
                "{case}: levels {:?}",
                seg.levels.iter().map(|l| l.level).collect::<Vec<_>>()
            ));
        }
        if min < 0.90 {
            failures.push(format!("{case}: Dice min {min:.3}"));
        }
        // The 0.95 holds at 1 mm and finer (lowest 0.967 at 1 mm, 0.973
        // at 0.6 mm since session 40 gave back what the joint cuts had cut through
        // one vertebra, 0.960 and 0.971 before; at 0.6 mm the scoliotic L4/L5 had
        // fallen to 0.831 before the disc planes started from the bodies' chord),
        // and 0.96 guards that margin. At 1.5 mm one vertebra is at 0.946
        // (docs/segment/README.md).
        if spec.spacing_mm <= 1.0 && min < 0.96 {
            failures.push(format!("{case}: Dice min {min:.3} under 0.96"));
        }
        rows.push(format!(
            "| {case} | {min:.3} | {mean:.3} | {} | {secs:.2} |",
            if identified { "7/7" } else { "WRONG" }
        ));
    }
    println!("| case | Dice min | Dice mean | identified | segment s |\n|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!("\n| vertebra | Dice min | Dice mean |\n|---|---|---|");
    for (level, vs) in &per_level {
        let min = vs.iter().cloned().fold(1.0, f64::min);
        let mean = vs.iter().sum::<f64>() / vs.len() as f64;
        println!("| {level} | {min:.3} | {mean:.3} |");
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// The same scan stored with slices running head to feet and rows running posterior to
/// anterior (both axes flipped) gives the same segmentation in patient space.
#[test]
fn flipped_slice_and_row_order_gives_the_same_result() {
    let ph = phantom(PhantomSpec {
        spacing_mm: 2.0,
        ..PhantomSpec::default()
    });
    let g = ph.ct.grid().clone();
    let [_, ny, nz] = g.dims;
    let flip = |i: usize, j: usize, k: usize| g.linear(i, ny - 1 - j, nz - 1 - k);
    let last = g.index_to_world(Vector3::new(0.0, (ny - 1) as f64, (nz - 1) as f64));
    let mut dir = g.direction;
    dir.set_column(1, &-g.direction.column(1));
    dir.set_column(2, &-g.direction.column(2));
    let fg = Grid::new(g.dims, g.spacing, last, dir).unwrap();
    let ct = Volume::from_fn(fg.clone(), |i, j, k| ph.ct.data()[flip(i, j, k)]);
    let truth = Volume::from_fn(fg, |i, j, k| ph.labels.data()[flip(i, j, k)]);
    let seg = segment(&ct, &SegmentOptions::default()).expect("the phantom has a spine");
    assert!(seg.sacrum_found);
    for v in &ph.truth.vertebrae {
        let d = dice(&truth, &seg.labels, v.label).unwrap_or(0.0);
        assert!(d >= 0.90, "{}: Dice {d:.3}", v.level);
        let rep = seg
            .levels
            .iter()
            .find(|l| l.label == v.label)
            .expect("level found");
        // Reported centroids are in patient space: the whole vertebra lies near its body.
        let c = v.body_centroid;
        let dist = ((rep.centroid[0] - c[0]).powi(2) + (rep.centroid[2] - c[2]).powi(2)).sqrt();
        assert!(
            dist < 10.0,
            "{}: centroid {:?} vs body {:?}",
            v.level,
            rep.centroid,
            c
        );
    }
}

/// An elderly spine as CT shows it: osteoporotic, fatty marrow (the bodies' cancellous cores
/// near 100 HU instead of 220: below the bone threshold and as dense as the discs), a body
/// cortex broken in three in every slice of the middle 16 mm of each body (a gap in front and
/// one on either side, as noise leaves a thin cortex) and a calcified aorta in front of the
/// bodies, joined to L3 by a calcified plaque. The cores must be filled and labelled with
/// their vertebra, and the aorta must not become part of any vertebra. Measured: cores 0.977
/// labelled, aorta 0.013, Dice 0.933-0.986; before the core rays, the front seed window and
/// the removal of detached pieces in front of the bodies (session 13): 0.952, 0.763 and
/// 0.900-0.987. (Cores near 0 HU, darker than the discs, defeat the disc detection first.)
#[test]
fn fatty_bodies_with_broken_cortex_and_a_calcified_aorta() {
    let mut ph = phantom(PhantomSpec {
        spacing_mm: 1.5,
        ..PhantomSpec::default()
    });
    let g = ph.ct.grid().clone();
    let [nx, ny, nz] = g.dims;
    let truth = ph.labels.data().to_vec();
    let world = |v: usize| {
        g.index_to_world(Vector3::new(
            (v % nx) as f64,
            ((v / nx) % ny) as f64,
            (v / (nx * ny)) as f64,
        ))
    };
    // Canal centre x and front y (anterior = smaller y in LPS) per slice, from the truth.
    let mut canal = vec![(0.0, f64::INFINITY, 0usize); nz];
    for (v, &l) in truth.iter().enumerate() {
        if l == 200 {
            let (p, c) = (world(v), &mut canal[v / (nx * ny)]);
            c.0 += p.x;
            c.1 = c.1.min(p.y);
            c.2 += 1;
        }
    }
    let lumbar = |l: u16| (20..=24).contains(&l);
    let frames: Vec<_> = ph
        .truth
        .vertebrae
        .iter()
        .map(|v| (v.label, v.frame.clone()))
        .collect();
    let local = |l: u16, p: Vector3<f64>| {
        let f = &frames
            .iter()
            .find(|f| f.0 == l)
            .expect("a truth vertebra")
            .1;
        let d = p - Vector3::from(f.origin);
        Vector3::new(
            d.dot(&Vector3::from(f.x_axis)),
            d.dot(&Vector3::from(f.y_axis)),
            d.dot(&Vector3::from(f.z_axis)),
        )
    };
    let same_around = |v: usize| {
        let (i, j, k) = (v % nx, (v / nx) % ny, v / (nx * ny));
        i > 0 && j > 0 && k > 0 && i + 1 < nx && j + 1 < ny && k + 1 < nz && {
            let l = truth[v];
            [1, nx, nx * ny]
                .iter()
                .all(|&s| truth[v - s] == l && truth[v + s] == l)
        }
    };
    let hu = ph.ct.data_mut();
    let mut core = Vec::new();
    for v in 0..truth.len() {
        let l = truth[v];
        if !lumbar(l) {
            continue;
        }
        let q = local(l, world(v));
        if q.y > 0.0 {
            continue; // posterior half of the body and the arch
        }
        if hu[v] < 500.0 && same_around(v) {
            hu[v] -= 120.0; // osteoporotic, fatty marrow: about 100 HU instead of 220
            core.push(v);
        } else if q.z.abs() < 8.0
            && (q.x.abs() < 1.6
                || ((q.y + 4.0).abs() < 1.6 && q.x > 0.0)
                || ((q.y + 10.0).abs() < 1.6 && q.x < 0.0))
        {
            hu[v] = 40.0; // the cortex broken in front and on either side
        }
    }
    // Calcified aorta: a tube of 10 mm outer radius, 1.5 mm wall, 15 mm left of the canal
    // and 14 mm in front of the spine's anterior surface.
    let mut front = vec![f64::INFINITY; nz];
    for (v, &l) in truth.iter().enumerate() {
        let k = v / (nx * ny);
        if (lumbar(l) || (119..=124).contains(&l)) && canal[k].2 > 0 {
            let p = world(v);
            if (p.x - canal[k].0 / canal[k].2 as f64).abs() < 15.0 {
                front[k] = front[k].min(p.y);
            }
        }
    }
    let l3 = &frames.iter().find(|f| f.0 == 22).expect("L3").1;
    let mut aorta = Vec::new();
    for v in 0..truth.len() {
        let k = v / (nx * ny);
        if !front[k].is_finite() || truth[v] != 0 {
            continue;
        }
        let p = world(v);
        let (cx, cy) = (canal[k].0 / canal[k].2 as f64 + 15.0, front[k] - 14.0);
        let r = ((p.x - cx).powi(2) + (p.y - cy).powi(2)).sqrt();
        let plaque = (p.z - l3.origin[2]).abs() < 2.0
            && (p.x - cx).abs() < 2.0
            && p.y > cy
            && p.y < front[k] + 5.0;
        if (8.5..=10.0).contains(&r) {
            hu[v] = 700.0;
            aorta.push(v);
        } else if plaque {
            hu[v] = 700.0;
        }
    }
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
    let (d, identified) = score(&ph, &seg);
    let lab = seg.labels.data();
    let filled = core.iter().filter(|&&v| lab[v] == truth[v]).count() as f64 / core.len() as f64;
    let in_vertebra = aorta
        .iter()
        .filter(|&&v| (1..100).contains(&lab[v]))
        .count() as f64
        / aorta.len() as f64;
    println!(
        "fatty cores labelled {filled:.3} of {}, aorta labelled as bone {in_vertebra:.3} of {}; Dice {d:?}",
        core.len(),
        aorta.len()
    );
    assert!(identified, "levels found: {:?}", seg.levels);
    assert!(
        filled >= 0.97,
        "only {filled:.3} of the fatty cores labelled"
    );
    assert!(
        in_vertebra <= 0.05,
        "{in_vertebra:.3} of the aorta labelled as vertebra"
    );
    for (level, v) in &d {
        assert!(*v >= 0.92, "{level}: Dice {v:.3} ({d:?})");
    }
}

/// Clinical lumbar CTs are often reconstructed in 2-5 mm slices (the phantom's
/// `slice_thickness_mm`: slabs of 1 mm slices averaged). Every level is found and named at
/// 2, 3 and 5 mm slices of 1 mm pixels; measured Dice T12-L5 / S1 0.945-0.958 / 0.979
/// (2 mm), 0.937-0.970 / 0.969 (3 mm), 0.894-0.937 / 0.958 (5 mm, where the thick voxels'
/// own labels are coarse; the facet joints are not cut there). Over 2 mm the landmarks warn.
#[test]
fn thick_slices_are_segmented_and_identified() {
    // 2 mm: the facet joint cut in thick slices took T12-L5 from 0.942-0.948 to 0.954-0.959;
    // since the phantom's partial volume is continuous (session 25) T12 and L1 read 0.947
    // and 0.945 (their joint's cleft is fainter: a 1 mm space in 1 mm voxels across an
    // oblique joint), the other levels 0.951-0.958.
    for (n, least) in [(2usize, 0.94), (3, 0.93), (5, 0.85)] {
        let ph = phantom(PhantomSpec {
            slice_thickness_mm: Some(n as f64),
            ..PhantomSpec::default()
        });
        assert_eq!(ph.ct.grid().spacing, [1.0, 1.0, n as f64]);
        let truth = &ph.labels;
        let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
        let d: Vec<(String, f64)> = ph
            .truth
            .vertebrae
            .iter()
            .map(|v| {
                (
                    v.level.clone(),
                    dice(truth, &seg.labels, v.label).unwrap_or(0.0),
                )
            })
            .collect();
        println!("{n} mm slices: Dice {d:?}, warnings {:?}", seg.warnings);
        assert!(seg.sacrum_found, "{n} mm slices: {:?}", seg.warnings);
        for v in &ph.truth.vertebrae {
            assert!(
                seg.levels
                    .iter()
                    .any(|l| l.label == v.label && l.level.name() == v.level && l.confidence > 0.5),
                "{n} mm slices: {} not found under its label ({:?})",
                v.level,
                seg.levels
            );
        }
        assert_eq!(seg.levels.len(), ph.truth.vertebrae.len(), "{n} mm slices");
        // Slices over 2 mm: the landmarks say the facets are coarse for mechanics, and that
        // the pedicle heights (read across the thick axial slices) are too for screws.
        let lm = spinetwin_segment::landmarks(&ph.ct, &seg.labels).expect("landmarks");
        let warned = lm
            .warnings
            .iter()
            .any(|w| w.contains("mm thick") && w.contains("pedicle heights"));
        assert_eq!(warned, n > 2, "{n} mm slices: {:?}", lm.warnings);
        for (level, v) in &d {
            assert!(*v >= least, "{n} mm slices: {level} Dice {v:.3} ({d:?})");
        }
    }
}

/// A scan with pedicle screws and rods at L4-L5 (metal at 3071 HU with streak artefacts):
/// the scan says so, L4 and L5 are flagged with a lower confidence, no metal is labelled as
/// bone, and the levels away from the implant are identified and outlined as usual.
#[test]
fn scan_with_pedicle_screws_is_flagged_not_mislabelled() {
    let ph = phantom(PhantomSpec {
        spacing_mm: 1.5,
        screws: vec![Level::L4, Level::L5],
        ..PhantomSpec::default()
    });
    let seg = segment(&ph.ct, &SegmentOptions::default()).expect("the phantom has a spine");
    let (d, identified) = score(&ph, &seg);
    println!(
        "screws L4-L5: warnings {:?}; Dice {d:?}; levels {:?}",
        seg.warnings,
        seg.levels
            .iter()
            .map(|l| (l.level.name(), l.confidence))
            .collect::<Vec<_>>()
    );
    assert!(identified, "levels found: {:?}", seg.levels);
    assert!(
        seg.warnings.iter().any(|w| w.contains("metal")),
        "{:?}",
        seg.warnings
    );
    for l in &seg.levels {
        let flagged = l.warnings.iter().any(|w| w.contains("metal"));
        if matches!(l.level, Level::L4 | Level::L5) {
            assert!(flagged && l.confidence <= 0.5, "{l:?}");
        } else {
            // The rest as without metal (the streaks once passed for ribs at L4 and took
            // every level's confidence down to 0.4).
            assert!(!flagged && l.confidence >= 0.9, "{l:?}");
        }
    }
    // No label at all on metal (not even the canal's), and the rods' and heads' blurred rim
    // outside the bone is not taken for vertebra.
    let (hu, lab, truth) = (ph.ct.data(), seg.labels.data(), ph.labels.data());
    let on_metal = (0..hu.len())
        .filter(|&v| hu[v] >= 2500.0 && lab[v] != 0)
        .count();
    assert_eq!(on_metal, 0, "voxels of metal labelled");
    let rim = (0..hu.len())
        .filter(|&v| truth[v] == 0 && hu[v] >= 1500.0 && (1..100).contains(&lab[v]))
        .count();
    assert_eq!(rim, 0, "metal rim outside the bone labelled as vertebra");
    let canal = dice(&ph.labels, &seg.labels, 200).unwrap_or(0.0);
    assert!(canal >= 0.6, "canal Dice {canal:.3}");
    for (level, v) in d
        .iter()
        .filter(|(l, _)| ["T12", "L1", "L2", "L3"].contains(&l.as_str()))
    {
        assert!(*v >= 0.93, "{level}: Dice {v:.3} ({d:?})");
    }
}
