//! Literature directions on an L3-L5 phantom specimen (7.5 Nm pure moments, no follower):
//! bilateral L4-L5 pedicle screws and rods cut the L4-L5 flexion-extension and lateral
//! bending ROM by at least 70 % and the axial rotation ROM by at least 40 % (in vitro
//! one-level bilateral screws: -81 / -73 / -48 %, `../shared/reference/scenarios.csv`), and
//! with a PLIF leave about the in-vitro share of axial rotation; a
//! bilateral facetectomy raises the L4-L5 axial rotation ROM (Zeng et al. 2017 FE: +265 to
//! +354 %), removing the medial half of both joints hardly changes it and removing 85 %
//! raises it, less than the total. Run in release with `-- --ignored --nocapture`.

mod common;

use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{CaseResult, Twin};
use spinetwin_scenario::{apply, rom_matched, MatchOptions, Scenario};

fn l4l5_rotation(r: &CaseResult) -> f64 {
    seg_rotation(r, "L4")
}

fn solve(t: &Twin, motion: Motion) -> CaseResult {
    t.simulate(
        &LoadCase::pure_moment(motion, 7.5, 0.0),
        &SolveOptions::default(),
    )
    .unwrap()
}

fn scenario(file: &str) -> Scenario {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(file);
    Scenario::read(&p).unwrap()
}

#[test]
#[ignore = "twelve nonlinear solves of an L3-L5 twin (about a minute); run in release with --ignored"]
fn screws_stiffen_and_facetectomy_loosens_l4l5() {
    let t0 = std::time::Instant::now();
    let twin = common::specimen(&["L3", "L4", "L5"]);
    let screws = apply(&twin, &scenario("screws_l4l5.toml")).unwrap();
    let facets = apply(&twin, &scenario("facetectomy_l4l5.toml")).unwrap();
    let medial = |fraction: f64| {
        apply(
            &twin,
            &Scenario::parse(
                &format!("name = \"medial\"\n[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nextent = \"partial\"\nmedial_fraction = {fraction}\n"),
                "medial.toml",
            )
            .unwrap(),
        )
        .unwrap()
    };
    let (half, most) = (medial(0.5), medial(0.85));
    // L4-L5 rotation: intact, with screws (and the peak rod stress).
    let mut rom = Vec::new();
    for motion in [
        Motion::Flexion,
        Motion::Extension,
        Motion::LateralBendingLeft,
        Motion::AxialRotationLeft,
    ] {
        let i = l4l5_rotation(&solve(&twin, motion));
        let sr = solve(&screws.twin, motion);
        let s = l4l5_rotation(&sr);
        let stress = sr
            .last()
            .unwrap()
            .beams
            .iter()
            .map(|b| b.max_von_mises_mpa)
            .fold(0.0, f64::max);
        println!(
            "{}: intact {i:.3} deg, screws {s:.3} deg ({:+.1} %, rod peak {stress:.0} MPa)",
            motion.name(),
            (s - i) / i * 100.0
        );
        rom.push((i, s));
    }
    let change = |a: f64, b: f64| (b / a - 1.0) * 100.0;
    let fe = change(rom[0].0 + rom[1].0, rom[0].1 + rom[1].1);
    let lb = change(rom[2].0, rom[2].1);
    let ar = change(rom[3].0, rom[3].1);
    println!("screws: flexion-extension {fe:+.1} %, lateral bending {lb:+.1} %, axial rotation {ar:+.1} % (in vitro -81 / -73 / -48 %)");
    let ar_intact = rom[3].0;
    let ar_of = |t: &Twin| {
        change(
            ar_intact,
            l4l5_rotation(&solve(t, Motion::AxialRotationLeft)),
        )
    };
    let flex_facets = change(
        rom[0].0,
        l4l5_rotation(&solve(&facets.twin, Motion::Flexion)),
    );
    let (ar_facets, ar_half, ar_most) = (ar_of(&facets.twin), ar_of(&half.twin), ar_of(&most.twin));
    println!(
        "facetectomy: flexion {flex_facets:+.1} %, axial rotation {ar_facets:+.1} %; medial 50 % {ar_half:+.1} %, 85 % {ar_most:+.1} %"
    );
    println!("elapsed {:.0} s", t0.elapsed().as_secs_f64());
    // The in-vitro thresholds (one-level bilateral screws, e.g. -81 / -73 / -48 %).
    assert!(fe <= -70.0, "screws flexion-extension {fe:.1} %");
    assert!(lb <= -70.0, "screws lateral bending {lb:.1} %");
    assert!(ar <= -40.0, "screws axial rotation {ar:.1} %");
    // Not fixed rigidly: the elastic anchorage leaves a share of the motion, as in vitro
    // (rigid screws in rigid vertebrae: -88.5 / -99.9 / -94.6 %).
    assert!(
        lb > -95.0 && ar > -90.0,
        "lateral bending {lb:.1} %, axial rotation {ar:.1} %"
    );
    // Bilateral total facetectomy: axial rotation more than doubles (Zeng et al. 2017, FE;
    // the report's evidence note for this operation quotes it).
    assert!(
        ar_facets > 100.0,
        "facetectomy axial rotation {ar_facets:.1} %"
    );
    // Graded unilateral facetectomy in vitro (Zhou et al. 2008, J Med Coll PLA, doi
    // 10.1016/s1000-1948(08)60030-1; resected from the lateral side in 1/4 steps): up to
    // half of the articular process left the axial rotation ROM unchanged, more than half
    // raised it. Larger resections, larger changes (also J Orthop Surg Res 2021, doi
    // 10.1186/s13018-021-02733-7, FE).
    assert!(
        ar_half.abs() < 10.0,
        "medial half facetectomy axial rotation {ar_half:+.1} %"
    );
    assert!(
        ar_most > ar_half && ar_most < ar_facets,
        "medial 85 % facetectomy axial rotation {ar_most:+.1} % (half {ar_half:+.1} %, total {ar_facets:+.1} %)"
    );
}

/// Validation of the screw anchorage (calibrated on one-level screws alone,
/// `spinetwin_model::anchorage::ANCHORAGE_FACTOR`) on another construct of another study:
/// a PLIF (bilateral total facetectomy, a PLIF cage) with bilateral pedicle screws at
/// L4-L5 leaves 0.41 of the intact axial-torsion ROM in vitro (BioMed Res Int 2022, 7081238,
/// Table 4; `../shared/reference/scenarios.csv`). Two nonlinear solves of the L3-L5
/// specimen; run in release with `-- --ignored --nocapture`.
#[test]
#[ignore = "two nonlinear solves of an L3-L5 twin with a cage in contact (seconds in release); run in release with --ignored"]
fn plif_with_screws_keeps_the_in_vitro_share_of_axial_rotation() {
    let twin = common::specimen(&["L3", "L4", "L5"]);
    let plif = Scenario::parse(
        "name = \"PLIF\"\n[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"both\"\n[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"plif\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nsides = \"both\"\n",
        "plif.toml",
    )
    .unwrap();
    let plif = apply(&twin, &plif).unwrap();
    let i = l4l5_rotation(&solve(&twin, Motion::AxialRotationLeft));
    let pr = solve(&plif.twin, Motion::AxialRotationLeft);
    let p = l4l5_rotation(&pr);
    // Each screw is massless: what its anchorage carries into the bone is the load of its
    // rods at the head (the connector's force against the beams' end forces).
    use nalgebra::Vector3;
    use spinetwin_model::twin::ImplantLoadKind;
    let last = pr.last().unwrap();
    assert_eq!(last.anchorages.len(), 4);
    for s in &plif.twin.implants.screws {
        let a = last.anchorages.iter().find(|a| a.name == s.name).unwrap();
        let f: Vector3<f64> = pr
            .implant_loads
            .iter()
            .filter(|l| l.body == s.body)
            .filter_map(|l| match &l.kind {
                ImplantLoadKind::Rod { at, force_n, .. } if *at == s.head => {
                    Some(Vector3::from(*force_n))
                }
                _ => None,
            })
            .sum();
        let axis = (Vector3::from(s.tip) - Vector3::from(s.entry)).normalize();
        let (pull, across) = (-f.dot(&axis), (f - axis * f.dot(&axis)).norm());
        println!(
            "{}: anchorage pull-out {:.2} N, across {:.2} N; rod load at the head {pull:.2} / {across:.2} N",
            s.name, a.pullout_force_n, a.transverse_force_n
        );
        let tol = 1e-3 * f.norm() + 0.05;
        assert!(
            (a.pullout_force_n - pull).abs() < tol && (a.transverse_force_n - across).abs() < tol,
            "{}: {a:?} against {pull} / {across}",
            s.name
        );
    }
    let ratio = p / i;
    println!("PLIF + screws, axial rotation L4-L5: {p:.3} of {i:.3} deg, ratio {ratio:.2} (in vitro 0.41)");
    assert!((ratio - 0.41).abs() <= 0.15, "ratio {ratio:.2}");
}

/// Rotation in the loaded direction of the segment whose upper vertebra is `upper`.
fn seg_rotation(r: &CaseResult, upper: &str) -> f64 {
    assert!(r.converged, "{}: {:?}", r.case.name, r.failure);
    let (m, _) = r.case.moment.unwrap();
    let (a, s) = m.axis_sign();
    let seg = r
        .last()
        .unwrap()
        .segments
        .iter()
        .find(|g| g.upper.name() == upper)
        .unwrap();
    seg.rotation_deg[a] * s
}

/// Adjacent-level effects of L4-L5 screws and rods on the L3-S1 phantom twin (a phantom of
/// those levels, as `spinetwin demo --levels L3-S1`) at 7.5 Nm:
/// under pure moments (load control) the adjacent levels L3-L4 and L5-S1 change by less
/// than 5 % (FE of a one-level fusion under load control: 99.4-103.9 % of intact, Sci Rep
/// 2023 s41598-023-43399-x Table 5, `../shared/reference/scenarios.csv`); under
/// ROM-matched (hybrid) control, where the whole specimen moves as far as intact, their
/// ROM rises (Panjabi 2007, Clin Biomech 22:257: adjacent-level effects show under the
/// hybrid protocol; the reference set holds no number for it, so the check is the mirror
/// of the load-control one: more than +5 %). Flexion and extension, the motions the
/// hybrid studies report. A case whose solve does not converge fails the test with the
/// reason (it is never read as a number). Run in release with `-- --ignored --nocapture`.
#[test]
#[ignore = "an L3-S1 twin, two motions, up to 6 nonlinear solves each (minutes); run in release with --ignored"]
fn rom_matched_control_raises_adjacent_levels_l3s1() {
    let twin = Twin::build(common::l3s1_file()).unwrap();
    let screws = apply(&twin, &scenario("screws_l4l5.toml")).unwrap();
    let options = MatchOptions::default();
    let mut failures = Vec::new();
    for motion in [Motion::Flexion, Motion::Extension] {
        let t0 = std::time::Instant::now();
        let intact = solve(&twin, motion);
        let load = solve(&screws.twin, motion);
        if !load.converged {
            failures.push(format!(
                "{}: screws not converged under 7.5 Nm: {:?}",
                motion.name(),
                load.failure
            ));
            continue;
        }
        let m = rom_matched("screws", &intact, &load, &options, |c: &LoadCase| {
            screws.twin.simulate(c, &SolveOptions::default())
        });
        let secs = t0.elapsed().as_secs_f64();
        let Some(hr) = m.result.as_ref().filter(|_| m.matched) else {
            failures.push(format!("{}: ROM-matched: {}", motion.name(), m.note));
            continue;
        };
        println!(
            "{}: intact total ROM {:.3} deg; screws {:.3} deg at 7.5 Nm, {:.3} deg at M' = {:.2} Nm ({} extra solves, trials {:?}); {secs:.0} s",
            motion.name(),
            m.intact_total_rom_deg.unwrap(),
            m.load_total_rom_deg.unwrap(),
            m.matched_total_rom_deg.unwrap(),
            m.matched_moment_nm.unwrap(),
            m.solves,
            m.trials
        );
        for upper in ["L3", "L4", "L5"] {
            let i = seg_rotation(&intact, upper);
            let l = (seg_rotation(&load, upper) - i) / i.abs() * 100.0;
            let h = (seg_rotation(hr, upper) - i) / i.abs() * 100.0;
            println!(
                "  segment below {upper}: intact {i:.3} deg, load {l:+.1} %, ROM-matched {h:+.1} %"
            );
            if upper != "L4" {
                if l.abs() >= 5.0 {
                    failures.push(format!(
                        "{} {upper}: adjacent change under pure moments {l:+.1} % (expected < 5 %)",
                        motion.name()
                    ));
                }
                if h <= 5.0 {
                    failures.push(format!(
                        "{} {upper}: adjacent change under ROM-matched control {h:+.1} % (expected > +5 %)",
                        motion.name()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[ignore = "an L3-S1 twin with a TLIF and screws, two nonlinear solves and two voxel bone models (about 1 min); run in release with --ignored"]
fn tlif_implant_loads_reach_the_bone_checks() {
    use nalgebra::Vector3;
    use spinetwin_model::twin::ImplantLoadKind;
    // The phantom of the twin (same generator settings), segmented as the twin was.
    let spec = spinetwin_phantom::PhantomSpec {
        levels: "L3-S1".parse().unwrap(),
        ..Default::default()
    };
    let ph = spinetwin_phantom::generate(&spec).unwrap();
    let seg = spinetwin_segment::segment(&ph.ct, &Default::default()).unwrap();
    let twin = Twin::build(common::l3s1_file()).unwrap();
    let tlif = apply(&twin, &scenario("tlif_l4l5.toml")).unwrap();
    let cases = [
        LoadCase::standing(),
        LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0),
    ];
    let results: Vec<CaseResult> = cases
        .iter()
        .map(|c| tlif.simulate(c, &SolveOptions::default()).unwrap())
        .collect();
    assert!(results.iter().all(|r| r.converged));
    // Standing: the cage carries a compressive share of the 500 N follower load into both
    // endplates (its contact pressure), and the two endplate forces nearly balance (the
    // bars that hold the cage to L5 take the rest).
    let (l4, l5) = (1, 2);
    use common::cage_force;
    let (f4, f5) = (cage_force(&results[0], l4), cage_force(&results[0], l5));
    let z5 = Vector3::from(twin.vertebra(l5).frame.z);
    let axial = -f5.dot(&z5);
    println!(
        "standing: cage force on the L5 superior endplate {f5:.1?} N ({axial:.0} N along the L5 axis), on the L4 inferior endplate {f4:.1?} N"
    );
    assert!((100.0..600.0).contains(&axial), "{f5:?}");
    assert!((f4 + f5).norm() < 0.25 * f5.norm(), "{f4:?} {f5:?}");
    // Flexion: the rods load every screw head.
    let rods: Vec<f64> = results[1]
        .implant_loads
        .iter()
        .filter_map(|l| match &l.kind {
            ImplantLoadKind::Rod { force_n, .. } => Some(Vector3::from(*force_n).norm()),
            _ => None,
        })
        .collect();
    println!("flexion: rod force at each screw head {rods:.1?} N");
    // Each rod is loaded only at its ends, so what it puts on its two vertebrae balances in
    // global axes: turning each vertebra's reference-orientation load forward by that
    // vertebra's rotation must cancel to round-off (a load given to the wrong vertebra or
    // with one end's sign lost would not). The fused vertebrae turn together here, so this
    // does not tell a rotation from its transpose; the code review did.
    let bodies = &results[1].deformed.as_ref().unwrap().bodies;
    let rot = |b: usize| nalgebra::Matrix3::from_fn(|i, j| bodies[b].rotation[i][j]);
    for name in tlif.twin.implants.beams.iter().map(|b| &b.name) {
        let ends: Vec<(usize, Vector3<f64>)> = results[1]
            .implant_loads
            .iter()
            .filter(|l| &l.name == name)
            .filter_map(|l| match &l.kind {
                ImplantLoadKind::Rod { force_n, .. } => Some((l.body, Vector3::from(*force_n))),
                _ => None,
            })
            .collect();
        assert_eq!(ends.len(), 2, "{name}");
        let global: Vector3<f64> = ends.iter().map(|(b, f)| rot(*b) * f).sum();
        let scale = ends[0].1.norm();
        println!(
            "{name}: global balance {:.2e} of {scale:.1} N (L4 and L5 turned {:.2} and {:.2} deg)",
            global.norm(),
            Vector3::from(bodies[ends[0].0].rotation_vector)
                .norm()
                .to_degrees(),
            Vector3::from(bodies[ends[1].0].rotation_vector)
                .norm()
                .to_degrees()
        );
        assert!(global.norm() < 1e-6 * scale.max(1.0), "{name}: {global:?}");
    }
    assert_eq!(rods.len(), 4);
    assert!(rods.iter().all(|&f| f > 1.0 && f < 2000.0), "{rods:?}");
    // The bone checks: both screws and the cage footprint on each vertebra, finite ratios.
    let all = spinetwin_scenario::implant_checks(&ph.ct, &seg.labels, &tlif, &results, 2.0);
    assert!(all.failed.is_empty(), "{:?}", all.failed);
    let checks = all.checks;
    assert_eq!(checks.len(), 2);
    for c in &checks {
        let kinds: Vec<&str> = c.zones.iter().map(|z| z.indicator.as_str()).collect();
        println!("{}: {} equations", c.level, c.equations);
        for z in &c.zones {
            println!(
                "  {} ({}): worst {} ratio p95 {:.3}, von Mises p95 {:.2} MPa, HU {:.0}",
                z.zone,
                z.indicator,
                z.worst_case,
                z.stats.ratio[0],
                z.stats.von_mises_mpa[0],
                z.stats.mean_hu
            );
            assert!(
                z.stats.ratio[0].is_finite() && z.stats.ratio[0] > 0.0,
                "{z:?}"
            );
            assert_eq!(z.cases.len(), 2);
        }
        assert_eq!(
            kinds,
            ["loosening", "loosening", "subsidence"],
            "{}",
            c.level
        );
    }
    // A level that cannot be checked (L5's label erased from the map) is reported for that
    // level, and L4 is still checked.
    let mut no_l5 = seg.labels.clone();
    let l5 = spinetwin_anatomy::Level::L5.verse_label();
    for v in no_l5.data_mut().iter_mut().filter(|v| **v == l5) {
        *v = 0;
    }
    let part = spinetwin_scenario::implant_checks(&ph.ct, &no_l5, &tlif, &results, 2.0);
    assert_eq!(part.failed.len(), 1, "{:?}", part.failed);
    assert!(part.failed[0].starts_with("L5"), "{:?}", part.failed);
    assert_eq!(part.checks.len(), 1);
    assert_eq!(part.checks[0].level, "L4");
}

/// Decompression without stabilisation and the fused stage of a fusion, on an L3-L5
/// phantom specimen at 7.5 Nm (no follower):
///
/// - a left hemilaminectomy of L4 (the flavum's left half cut above and below, the spinous
///   process with ISL and SSL kept) raises the L4-L5 flexion less than the full
///   laminectomy, and does not stiffen it: the less removed, the less motion gained
///   (in vitro, unilateral approaches preserve more stability than a laminectomy, e.g.
///   Lee et al. 2004, J Spinal Disord Tech 17:283; the reference set holds no numbers, so
///   the check is the ordering);
/// - a solid fusion of L4-L5 (the disc space turned into bone) leaves less than 10 % of
///   its intact motion in flexion and axial rotation;
/// - after the TLIF with screws and rods has fused, the rods carry less: the peak rod
///   stress falls (an FE study of posterior graft consolidation found -65 % with a fully
///   fused graft: "Posterior bone graft in lumbar spine surgery reduces the stress in the
///   screw-rod system - a finite element study", 2020), and the segment moves less.
///
/// Run in release with `-- --ignored --nocapture`.
#[test]
#[ignore = "fourteen nonlinear solves of an L3-L5 twin (about a minute); run in release with --ignored"]
fn hemilaminectomy_and_fusion_stage_l4l5() {
    let t0 = std::time::Instant::now();
    let twin = common::specimen(&["L3", "L4", "L5"]);
    let op = |text: &str| {
        apply(
            &twin,
            &Scenario::parse(&format!("name = \"x\"\n{text}"), "x.toml").unwrap(),
        )
        .unwrap()
    };
    let lam = apply(&twin, &scenario("laminectomy_l4.toml")).unwrap();
    let hemi = apply(&twin, &scenario("hemilaminectomy_l4_left.toml")).unwrap();
    let fused = op("[[operation]]\nkind = \"bony_fusion\"\nsegment = \"L4-L5\"\n");
    let tlif = apply(&twin, &scenario("tlif_l4l5.toml")).unwrap();
    let tlif_fused = apply(&twin, &scenario("tlif_l4l5_fused.toml")).unwrap();
    let screws = apply(&twin, &scenario("screws_l4l5.toml")).unwrap();
    let screws_fused = op(&format!(
        "{}\n[[operation]]\nkind = \"bony_fusion\"\nsegment = \"L4-L5\"\n",
        include_str!("../../../scenarios/screws_l4l5.toml")
            .lines()
            .filter(|l| !l.starts_with("name"))
            .collect::<Vec<_>>()
            .join("\n")
    ));
    let rod_peak = |r: &CaseResult| {
        r.last()
            .unwrap()
            .beams
            .iter()
            .map(|b| b.max_von_mises_mpa)
            .fold(0.0, f64::max)
    };
    let pct = |s: f64, i: f64| (s - i) / i * 100.0;
    let flex = solve(&twin, Motion::Flexion);
    let i_flex = l4l5_rotation(&flex);
    let lam_flex = pct(l4l5_rotation(&solve(&lam.twin, Motion::Flexion)), i_flex);
    let hemi_flex = pct(l4l5_rotation(&solve(&hemi.twin, Motion::Flexion)), i_flex);
    println!(
        "flexion L4-L5: intact {i_flex:.3} deg; laminectomy L4 {lam_flex:+.1} %, left hemilaminectomy L4 {hemi_flex:+.1} %"
    );
    let mut fusion = Vec::new();
    for motion in [Motion::Flexion, Motion::AxialRotationLeft] {
        let i = if motion == Motion::Flexion {
            i_flex
        } else {
            l4l5_rotation(&solve(&twin, motion))
        };
        let f = pct(l4l5_rotation(&solve(&fused.twin, motion)), i);
        let (a, b) = (solve(&tlif.twin, motion), solve(&tlif_fused.twin, motion));
        let (ra, rb) = (l4l5_rotation(&a), l4l5_rotation(&b));
        let (sa, sb) = (rod_peak(&a), rod_peak(&b));
        let (c, d) = (
            solve(&screws.twin, motion),
            solve(&screws_fused.twin, motion),
        );
        let (sc, sd) = (rod_peak(&c), rod_peak(&d));
        println!(
            "{}: screws {:.3} deg, rod peak {sc:.1} MPa; screws fused {:.3} deg, rod peak {sd:.1} MPa ({:+.1} %)",
            motion.name(),
            l4l5_rotation(&c),
            l4l5_rotation(&d),
            pct(sd, sc)
        );
        println!(
            "{}: intact {i:.3} deg; bony fusion {f:+.1} %; TLIF {ra:.3} deg ({:+.1} %), rod peak {sa:.1} MPa; TLIF fused {rb:.3} deg ({:+.1} %), rod peak {sb:.1} MPa ({:+.1} %)",
            motion.name(),
            pct(ra, i),
            pct(rb, i),
            pct(sb, sa)
        );
        fusion.push((motion, f, ra, rb, sa, sb, sc, sd));
    }
    println!("elapsed {:.0} s", t0.elapsed().as_secs_f64());
    assert!(
        hemi_flex >= -0.5 && hemi_flex < lam_flex,
        "hemilaminectomy {hemi_flex:+.1} % against laminectomy {lam_flex:+.1} %"
    );
    for (motion, f, ra, rb, sa, sb, sc, sd) in fusion {
        let m = motion.name();
        assert!(f <= -90.0, "{m}: bony fusion {f:+.1} %");
        // The TLIF's cage is in contact with the endplates on the day of the operation and
        // bonded once fused (`bony_fusion`), the fusion mass around it. Magnitudes: with the
        // cage in contact the instrumented segment may turn back by a few hundredths of a
        // degree under the flexion moment (-0.019 deg on the L3-L5 specimen), about what the
        // 0.01 mm seating of the cage allows over its depth.
        assert!(
            rb.abs() <= ra.abs(),
            "{m}: TLIF fused {rb:.3} deg, before {ra:.3} deg"
        );
        assert!(
            sb < sa,
            "{m}: TLIF rod peak fused {sb:.1} MPa, before {sa:.1}"
        );
        assert!(
            sd < 0.5 * sc,
            "{m}: screws' rod peak fused {sd:.1} MPa, before {sc:.1}"
        );
    }
}
