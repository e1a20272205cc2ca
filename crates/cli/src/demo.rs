//! `spinetwin demo`: the built-in end-to-end run on the synthetic phantom.
//!
//! Today: phantom -> NIfTI + DICOM series -> the DICOM series imported back through the
//! same path a patient CT takes -> checked against the phantom -> segmented and scored
//! against the ground truth -> summary and previews. The mechanical twin, load cases and
//! scenarios join this chain as their layers land.

use crate::output::{check_writable, write_dir_atomically, write_json};
use crate::phantom::{write_phantom, SpecArgs};
use crate::segment::{write_segmentation, SegmentReport};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use spinetwin_imaging::{open, OpenOptions};
use spinetwin_model::twin::PosteriorContact;
use std::path::PathBuf;
use std::time::Instant;

/// File that marks a folder as a demo output folder.
const DEMO_MARKER: &str = ".spinetwin-demo";

/// Arguments of `spinetwin demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder (new or empty unless --force).
    #[arg(long, default_value = "spinetwin-demo")]
    pub out: PathBuf,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// Stop after segmentation (no mechanical twin or load cases).
    #[arg(long)]
    pub no_twin: bool,
    /// Skip the surgical scenario comparison (intact twin and load cases only).
    #[arg(long)]
    pub no_scenarios: bool,
}

#[derive(Serialize)]
struct ImportCheck {
    series_uid: String,
    modality: String,
    dims: [usize; 3],
    spacing_mm: [f64; 3],
    orientation: String,
    hu_min: f64,
    hu_max: f64,
    /// Largest |HU| difference between the imported DICOM and the generated volume.
    max_abs_hu_difference: f64,
    /// Largest distance (mm) between corresponding voxel centres of the two grids.
    max_voxel_position_error_mm: f64,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct LevelScore {
    level: String,
    /// Dice overlap with the phantom's ground-truth label.
    dice: f64,
    confidence: f64,
}

#[derive(Serialize)]
struct SegmentCheck {
    seconds: f64,
    /// Level names found, cranial to caudal.
    levels_found: Vec<String>,
    /// True when exactly the phantom's levels were found, in order, with the right labels.
    identification_correct: bool,
    per_level: Vec<LevelScore>,
    min_dice: f64,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct MechanicsCheck {
    twin_build_seconds: f64,
    simulate_seconds: f64,
    levels: Vec<String>,
    ligament_fibres: usize,
    facet_joints: usize,
    cases: usize,
    converged: usize,
    warnings: Vec<String>,
    /// The surgical scenario comparison (absent with --no-scenarios).
    scenarios: Option<ScenarioCheck>,
}

#[derive(Serialize)]
struct ScenarioCheck {
    seconds: f64,
    /// Scenario names compared with the intact twin.
    names: Vec<String>,
    /// Scenario solves (scenarios x load cases) and how many converged.
    solves: usize,
    converged: usize,
    /// ROM-matched (hybrid) searches: the screw scenario in flexion and extension.
    rom_matched: Vec<RomMatchedCheck>,
    /// ROM-matched searches that ended in a solve that did not converge.
    rom_matched_not_converged: usize,
    /// Built-in scenarios not applicable to this twin (with why).
    skipped: Vec<String>,
}

#[derive(Serialize)]
struct RomMatchedCheck {
    scenario: String,
    load_case: String,
    /// The moment at which the scenario's total ROM matched the intact one (N m).
    matched_moment_nm: Option<f64>,
    /// Extra solves.
    solves: usize,
    seconds: f64,
    note: String,
}

#[derive(Serialize)]
struct Summary {
    /// The twin and its load cases (absent with --no-twin).
    mechanics: Option<MechanicsCheck>,
    spinetwin_version: &'static str,
    levels: String,
    phantom_seconds: f64,
    write_seconds: f64,
    import_seconds: f64,
    import: ImportCheck,
    segmentation: SegmentCheck,
    outputs: Vec<&'static str>,
}

/// Runs `spinetwin demo`.
pub fn run(args: Args) -> Result<()> {
    // A folder holding a previous demo's output is replaced without --force, so the README's
    // main command can be run again; any other non-empty folder is protected.
    let previous_demo = args.out.join(DEMO_MARKER).is_file();
    check_writable(&args.out, args.force || previous_demo)?;
    let spec = args.spec.to_spec();
    spec.validate().context("invalid phantom parameters")?;
    println!(
        "spinetwin demo: synthetic lumbar CT {} -> DICOM -> import -> segment, checked against the truth",
        spec.levels
    );

    let t0 = Instant::now();
    let ph = spinetwin_phantom::generate(&spec).context("generating the phantom")?;
    let phantom_seconds = t0.elapsed().as_secs_f64();

    write_dir_atomically(&args.out, |dir| {
        let t1 = Instant::now();
        let phantom_dir = dir.join("phantom");
        write_phantom(&ph, &spec, &phantom_dir, true)?;
        let write_seconds = t1.elapsed().as_secs_f64();

        // Import the DICOM series back exactly as a patient's CT would come in.
        let t2 = Instant::now();
        let img = open(&[phantom_dir.join("dicom")], &OpenOptions::default())
            .context("importing the phantom's DICOM series")?;
        let import_seconds = t2.elapsed().as_secs_f64();

        let (g_in, g_ref) = (img.volume.grid(), ph.ct.grid());
        if g_in.dims != g_ref.dims {
            bail!(
                "imported series has {:?} voxels, the phantom {:?}",
                g_in.dims,
                g_ref.dims
            );
        }
        let max_abs_hu_difference = img
            .volume
            .data()
            .iter()
            .zip(ph.ct.data())
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max);
        // Every voxel centre is an affine function of its index, so comparing the two grids
        // at the eight corners of the index box bounds the error at every voxel.
        let far = [0, 1, 2].map(|a| (g_ref.dims[a] - 1) as f64);
        let max_voxel_position_error_mm = (0..8)
            .map(|c: usize| {
                let ijk = nalgebra::Vector3::from([0, 1, 2].map(|a| {
                    if (c >> a) & 1 == 1 {
                        far[a]
                    } else {
                        0.0
                    }
                }));
                (g_in.index_to_world(ijk) - g_ref.index_to_world(ijk)).norm()
            })
            .fold(0.0, f64::max);
        let (hu_min, hu_max) = img.volume.min_max();
        let series_uid = match &img.source {
            spinetwin_imaging::Source::Dicom(s) => s.series_uid.clone(),
            spinetwin_imaging::Source::Nifti(_) => String::new(),
        };
        // Segment the imported CT exactly as a patient's scan, and score it against the truth.
        let t3 = Instant::now();
        let seg = spinetwin_segment::segment(&img.volume, &Default::default())
            .context("segmenting the imported phantom")?;
        let segment_seconds = t3.elapsed().as_secs_f64();
        let seg_report = SegmentReport::new(&seg, &img.warnings);
        write_segmentation(&img.volume, &seg, &seg_report, &dir.join("segment"))?;
        let per_level: Vec<LevelScore> = seg
            .levels
            .iter()
            .map(|l| LevelScore {
                level: l.level.name().to_string(),
                dice: spinetwin_segment::dice(&seg.labels, &ph.labels, l.label).unwrap_or(0.0),
                confidence: l.confidence,
            })
            .collect();
        let expected: Vec<String> = spec
            .levels
            .levels()
            .iter()
            .map(|l| l.name().to_string())
            .collect();
        let levels_found: Vec<String> = per_level.iter().map(|l| l.level.clone()).collect();
        let segmentation = SegmentCheck {
            seconds: segment_seconds,
            identification_correct: levels_found == expected,
            min_dice: per_level
                .iter()
                .map(|l| l.dice)
                .reduce(f64::min)
                .unwrap_or(0.0),
            levels_found,
            per_level,
            warnings: seg_report.warnings.clone(),
        };

        // The mechanical twin of the segmented phantom, and the standard load cases.
        let t4 = Instant::now();
        let twin_part = if args.no_twin {
            None
        } else {
            let mut twin_file =
                crate::twin::twin_from_labels(&img.volume, &seg.labels, "built-in phantom")?;
            twin_file.pseudonym = crate::twin::PHANTOM_PSEUDONYM.into();
            let twin = spinetwin_model::twin::Twin::build(twin_file.clone())
                .context("building the twin")?;
            let bones = crate::snapshot::bone_surfaces(&seg.labels, &twin_file);
            let twin_build_seconds = t4.elapsed().as_secs_f64();
            write_json(&dir.join("twin").join("twin.json"), &twin_file)?;
            crate::snapshot::write_bone_surfaces(&dir.join("twin"), &bones)?;
            crate::twin::write_model_vtu(&dir.join("twin"), &twin)?;
            let cases = spinetwin_model::loadcase::LoadCase::standard_set(7.5, 0.0);
            let t5 = Instant::now();
            let results = crate::twin::run_cases(&twin, &cases)?;
            let simulate_seconds = t5.elapsed().as_secs_f64();
            crate::twin::write_results(dir, &results)?;
            let scenarios = if args.no_scenarios {
                None
            } else {
                let t6 = Instant::now();
                let (cmp, skipped, matched_failed) = crate::plan::builtin_comparison(
                    &twin,
                    &cases,
                    &results,
                    Some(&bones),
                    Some((&img.volume, &seg.labels)),
                )?;
                crate::plan::write_comparison(&dir.join("plan"), &cmp)?;
                Some(ScenarioCheck {
                    seconds: t6.elapsed().as_secs_f64(),
                    names: cmp.scenarios.iter().map(|s| s.name.clone()).collect(),
                    solves: cmp.scenarios.iter().map(|s| s.converged[1]).sum(),
                    converged: cmp.scenarios.iter().map(|s| s.converged[0]).sum(),
                    rom_matched: cmp
                        .matched
                        .iter()
                        .map(|m| RomMatchedCheck {
                            scenario: m.scenario.clone(),
                            load_case: m.load_case.clone(),
                            matched_moment_nm: m.matched_moment_nm.filter(|_| m.matched),
                            solves: m.solves,
                            seconds: m.seconds,
                            note: m.note.clone(),
                        })
                        .collect(),
                    rom_matched_not_converged: matched_failed,
                    skipped,
                })
            };
            let mut report = crate::report::html(&twin, &results);
            // The intact twin's picture (the same as the first one of the plan report).
            let shots = crate::snapshot::snapshots(
                &[(spinetwin_scenario::SNAPSHOT_INTACT, &twin, &[], &results)],
                Some(&bones),
            );
            if let Some(s) = shots.first() {
                let fig = format!("<h2>The loaded twin</h2>{}</body>", s.to_html());
                report = report.replacen("</body>", &fig, 1);
            }
            if let Some(sc) = &scenarios {
                let link = format!(
                    "<h2>Surgical scenarios</h2><p>{} compared with the intact twin on the same \
load cases: <a href='plan/report.html'>plan/report.html</a> (also plan/comparison.csv and \
plan/comparison.json).</p></body>",
                    sc.names.join(", ")
                );
                report = report.replacen("</body>", &link, 1);
            }
            spinetwin_core::atomic::write_bytes(&dir.join("report.html"), report.as_bytes())?;
            let mechanics = MechanicsCheck {
                twin_build_seconds,
                simulate_seconds,
                levels: twin.levels.iter().map(|l| l.name().to_string()).collect(),
                ligament_fibres: twin.fibres.len(),
                facet_joints: twin.contact_count(PosteriorContact::Articular),
                cases: results.len(),
                converged: results.iter().filter(|r| r.converged).count(),
                warnings: twin.warnings.clone(),
                scenarios,
            };
            Some((mechanics, results))
        };
        let (mechanics, results) = match twin_part {
            Some((m, r)) => (Some(m), r),
            None => (None, Vec::new()),
        };

        let summary = Summary {
            mechanics,
            spinetwin_version: env!("CARGO_PKG_VERSION"),
            levels: spec.levels.to_string(),
            phantom_seconds,
            write_seconds,
            import_seconds,
            segmentation,
            import: ImportCheck {
                series_uid,
                modality: img.modality.code().to_string(),
                dims: g_in.dims,
                spacing_mm: g_in.spacing,
                orientation: g_in.orientation_code(),
                hu_min,
                hu_max,
                max_abs_hu_difference,
                max_voxel_position_error_mm,
                warnings: img.warnings.clone(),
            },
            outputs: vec![
                "phantom/ct.nii.gz",
                "phantom/labels.nii.gz",
                "phantom/truth.json",
                "phantom/dicom/",
                "phantom/preview/*.png",
                "segment/labels.nii.gz",
                "segment/segment.json",
                "segment/overview.png",
                "twin/twin.json",
                "twin/meshes/*.stl",
                "twin/model/discs.vtu",
                "twin/model/ligaments.vtu",
                "results.json",
                "results.csv",
                "report.html",
                "plan/comparison.json",
                "plan/comparison.csv",
                "plan/report.html",
                "plan/snapshots/*.png",
                "summary.json",
            ],
        };
        write_json(&dir.join("summary.json"), &summary)?;
        spinetwin_core::atomic::write_bytes(
            &dir.join(DEMO_MARKER),
            b"written by spinetwin demo; the folder is replaced by the next demo run\n",
        )?;
        let i = &summary.import;
        println!(
            "  phantom     {}x{}x{} voxels at {:.2} mm, levels {} ({:.1} s)",
            i.dims[0], i.dims[1], i.dims[2], i.spacing_mm[0], summary.levels, phantom_seconds
        );
        println!(
            "  written     NIfTI, labels, truth.json, {} DICOM slices, PNG previews ({:.1} s)",
            i.dims[2], write_seconds
        );
        println!(
            "  imported    {} series {} ({}), HU {:.0}..{:.0} ({:.2} s)",
            i.modality, i.series_uid, i.orientation, i.hu_min, i.hu_max, import_seconds
        );
        println!(
            "  check       max |HU difference| {:.2}, max voxel position error {:.2e} mm",
            i.max_abs_hu_difference, i.max_voxel_position_error_mm
        );
        let sc = &summary.segmentation;
        println!(
            "  segmented   {} ({}), min Dice vs truth {:.3} ({:.1} s)",
            sc.levels_found.join(" "),
            if sc.identification_correct {
                "all levels identified"
            } else {
                "LEVELS DIFFER FROM THE TRUTH"
            },
            sc.min_dice,
            sc.seconds
        );
        if let Some(m) = &summary.mechanics {
            println!(
                "  twin        {} hybrid: {} ligament fibres, {} facet joints ({:.1} s)",
                m.levels.join(" "),
                m.ligament_fibres,
                m.facet_joints,
                m.twin_build_seconds
            );
            println!(
                "  simulated   {}/{} load cases converged ({:.1} s)",
                m.converged, m.cases, m.simulate_seconds
            );
            crate::twin::print_results(&results);
            if let Some(sc) = &m.scenarios {
                println!(
                    "  scenarios   {}: {}/{} scenario cases converged ({:.1} s) -> plan/report.html",
                    sc.names.join(", "),
                    sc.converged,
                    sc.solves,
                    sc.seconds
                );
                for m in &sc.rom_matched {
                    match m.matched_moment_nm {
                        Some(x) => println!(
                            "  ROM-matched {} {}: {x:.2} Nm ({} extra solves, {:.1} s)",
                            m.scenario, m.load_case, m.solves, m.seconds
                        ),
                        None => println!(
                            "  ROM-matched {} {}: {} ({} extra solves, {:.1} s)",
                            m.scenario, m.load_case, m.note, m.solves, m.seconds
                        ),
                    }
                }
                for s in &sc.skipped {
                    println!("  skipped     {s}");
                }
            }
        }
        // The writer stores integer HU: anything beyond rounding is an import/export bug.
        if max_abs_hu_difference > 0.501 || max_voxel_position_error_mm > 1e-3 {
            bail!(
                "DICOM round trip of the phantom is off (HU {max_abs_hu_difference:.2}, position {max_voxel_position_error_mm:.2e} mm)"
            );
        }
        Ok(())
    })?;
    println!("done: {}", args.out.display());
    Ok(())
}
