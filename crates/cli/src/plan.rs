//! `spinetwin plan`: surgical scenarios against the intact twin.

use crate::output::{check_writable, write_dir_atomically, write_json};
use crate::snapshot::{read_bone_surfaces, snapshots, write_snapshots, BoneSurfaces, Pictured};
use crate::twin::{phantom_twin_with_bones, read_twin};
use anyhow::{bail, Context, Result};
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{CaseResult, Twin};
use spinetwin_scenario::{
    apply, compare, rom_matched, Comparison, MatchOptions, Scenario, ScenarioModel, CONTROL_LOAD,
    SNAPSHOT_INTACT,
};
use std::path::{Path, PathBuf};

/// Arguments of `spinetwin plan`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Apply surgical scenarios (TOML files, see docs/scenarios.md) to a \
twin and compare each with the intact twin on the same load cases (default: the six 7.5 Nm \
pure moments; --load as in `spinetwin simulate`). Every scenario is checked against the twin \
before anything is solved. Writes OUT/comparison.json, OUT/comparison.csv (scenario, load \
case, level, metric, intact, scenario, change %, note, control, moment on the scenario) and \
OUT/report.html (with 3D pictures of each deformed twin in flexion, also in \
OUT/snapshots/). --control rom-matched or both (the default) adds ROM-matched (hybrid, Panjabi \
2007) rows: each scenario under the moment at which its total ROM equals the intact one. A \
case that does not converge is reported as not converged, never as a number."
)]
pub struct PlanArgs {
    /// The twin: a folder from `spinetwin build`, its twin.json, or `phantom` for the
    /// built-in phantom.
    pub twin: PathBuf,
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Output folder (new or empty unless --force).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Load cases (default: the six 7.5 Nm pure moments).
    #[arg(long = "load")]
    pub loads: Vec<String>,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// Control: `load` (the same pure moment on intact and scenario, the lab standard),
    /// `rom-matched` (the scenario under the moment at which its total ROM equals the
    /// intact one, Panjabi 2007; up to 4 extra solves per scenario and case) or `both`.
    #[arg(long, value_enum, default_value_t = Control::Both)]
    pub control: Control,
    /// The twin's CT (DICOM folder/file or NIfTI): cemented vertebrae are then also
    /// compressed as deformable bone with moduli from their HU (see `spinetwin bone`).
    #[arg(long)]
    pub ct: Option<PathBuf>,
    /// The label map of that CT (NIfTI, VerSe numbering); without it the CT is segmented.
    #[arg(long, requires = "ct")]
    pub labels: Option<PathBuf>,
    /// Voxel size of the deformable-bone models of cemented vertebrae (mm).
    #[arg(long, default_value_t = BONE_CHECK_SPACING_MM)]
    pub bone_spacing: f64,
}

/// Default voxel size of the cemented-vertebra bone models of `plan` and `demo` (mm): at
/// 1.5 mm a lumbar vertebra is about 70 000 equations (a few seconds); 1 mm is about
/// 230 000.
pub(crate) const BONE_CHECK_SPACING_MM: f64 = 1.5;

/// Which control the comparison uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Control {
    /// The nominal pure moment on both (load control).
    Load,
    /// ROM-matched (hybrid) control only.
    RomMatched,
    /// Both.
    Both,
}

/// Runs the ROM-matched search (see `spinetwin_scenario::matched`) of every pure-moment
/// case of one scenario whose name `cases` accepts, and adds its rows to `cmp`. Returns
/// how many searches ended in a solve that did not converge.
pub(crate) fn add_rom_matched(
    cmp: &mut Comparison,
    m: &ScenarioModel,
    intact: &[CaseResult],
    load: &[CaseResult],
    cases: &dyn Fn(&LoadCase) -> bool,
) -> usize {
    let todo: Vec<(&CaseResult, &CaseResult)> = intact
        .iter()
        .zip(load)
        .filter(|(i, _)| i.case.moment.is_some() && cases(&i.case))
        .collect();
    let what = format!("{} (ROM-matched)", m.scenario.name);
    let bar = spinetwin_core::progress::bar(todo.len() as u64, &what);
    let mut out = Vec::new();
    for (i, l) in todo {
        bar.set_message(i.case.name.clone());
        out.push(rom_matched(
            &m.scenario.name,
            i,
            l,
            &MatchOptions::default(),
            |c: &LoadCase| m.twin.simulate(c, &SolveOptions::default()),
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failed = out
        .iter()
        .filter(|x| x.note.starts_with("scenario not converged"))
        .count();
    cmp.add_rom_matched(m, intact, out);
    failed
}

pub(crate) fn solve_all(twin: &Twin, cases: &[LoadCase], what: &str) -> Result<Vec<CaseResult>> {
    crate::twin::solve_cases(twin, cases, what)
}

/// Solves every scenario on `cases` in one pool. A scenario that leaves the hybrid model
/// unchanged (cement only) takes the `intact` results: its twin is the intact one.
pub(crate) fn solve_scenarios<'a>(
    models: &'a [ScenarioModel],
    cases: &[LoadCase],
    intact: &[CaseResult],
) -> Result<Vec<(&'a ScenarioModel, Vec<CaseResult>)>> {
    let changed: Vec<(&Twin, &str)> = models
        .iter()
        .filter(|m| !m.hybrid_unchanged)
        .map(|m| (&m.twin, m.scenario.name.as_str()))
        .collect();
    let mut solved = crate::twin::solve_many(&changed, cases)?.into_iter();
    Ok(models
        .iter()
        .map(|m| {
            let r = if m.hybrid_unchanged {
                intact.to_vec()
            } else {
                solved.next().expect("one result list per changed scenario")
            };
            (m, r)
        })
        .collect())
}

/// The scenario files shipped in the repository's `scenarios/` folder, compiled in so that
/// `spinetwin demo` compares them without the source tree: (file name, TOML text). The set
/// the surgical-scenario issue asks the demo for: L4-L5 decompressions, fusion with and
/// without a cage, and a vertebroplasty.
pub(crate) const BUILTIN_SCENARIOS: [(&str, &str); 5] = [
    (
        "laminectomy_l4.toml",
        include_str!("../../../scenarios/laminectomy_l4.toml"),
    ),
    (
        "facetectomy_l4l5.toml",
        include_str!("../../../scenarios/facetectomy_l4l5.toml"),
    ),
    (
        "screws_l4l5.toml",
        include_str!("../../../scenarios/screws_l4l5.toml"),
    ),
    (
        "tlif_l4l5.toml",
        include_str!("../../../scenarios/tlif_l4l5.toml"),
    ),
    (
        "vertebroplasty_l1.toml",
        include_str!("../../../scenarios/vertebroplasty_l1.toml"),
    ),
];

/// The built-in scenario the demo also runs under ROM-matched control, and the motions it
/// does so for: fusion is where adjacent-level effects show (Panjabi 2007), and flexion and
/// extension are where the literature reports them; the other scenarios and motions stay
/// at load control to keep the demo's time practical.
pub(crate) const DEMO_ROM_MATCHED: (&str, [Motion; 2]) =
    ("screws_l4l5.toml", [Motion::Flexion, Motion::Extension]);

/// Applies the built-in scenarios to `twin`, solves each on `cases` and compares with the
/// `intact` results (same cases, same order); adds ROM-matched rows for
/// [`DEMO_ROM_MATCHED`]. Scenarios whose levels the twin lacks are skipped with a note (the
/// demo's level range is a user option). Also returns how many ROM-matched searches ended
/// in a solve that did not converge.
pub(crate) fn builtin_comparison(
    twin: &Twin,
    cases: &[LoadCase],
    intact: &[CaseResult],
    bones: Option<&BoneSurfaces>,
    ct: Option<(
        &spinetwin_imaging::Volume<f32>,
        &spinetwin_imaging::Volume<u16>,
    )>,
) -> Result<(spinetwin_scenario::Comparison, Vec<String>, usize)> {
    let mut models = Vec::new();
    let mut skipped = Vec::new();
    for (file, text) in BUILTIN_SCENARIOS {
        let s = Scenario::parse(text, file)?;
        match apply(twin, &s) {
            Ok(m) => models.push(m),
            Err(e) => skipped.push(format!("{file}: {e}")),
        }
    }
    let results = solve_scenarios(&models, cases, intact)?;
    let mut cmp = compare(intact, &results);
    let (file, motions) = DEMO_ROM_MATCHED;
    let mut failed = 0;
    for (m, r) in &results {
        if m.scenario.file == file {
            failed += add_rom_matched(&mut cmp, m, intact, r, &|c: &LoadCase| {
                c.moment.is_some_and(|(mo, _)| motions.contains(&mo))
            });
        }
    }
    if let Some((ct, labels)) = ct {
        cmp.add_bone_checks(&results, ct, labels, BONE_CHECK_SPACING_MM);
    }
    cmp.snapshots = pictures(twin, intact, &results, bones);
    Ok((cmp, skipped, failed))
}

/// Pictures of the intact twin and of every scenario under one load case.
fn pictures(
    twin: &Twin,
    intact: &[CaseResult],
    results: &[(&ScenarioModel, Vec<CaseResult>)],
    bones: Option<&BoneSurfaces>,
) -> Vec<spinetwin_scenario::Snapshot> {
    let mut entries: Vec<Pictured<'_>> = vec![(SNAPSHOT_INTACT, twin, &[], intact)];
    for (m, r) in results {
        entries.push((&m.scenario.name, &m.twin, &m.screws, r));
    }
    snapshots(&entries, bones)
}

/// Writes a comparison into `dir`: comparison.json, comparison.csv, report.html and the
/// pictures under snapshots/.
pub(crate) fn write_comparison(dir: &Path, cmp: &spinetwin_scenario::Comparison) -> Result<()> {
    write_json(&dir.join("comparison.json"), cmp)?;
    spinetwin_core::atomic::write_bytes(&dir.join("comparison.csv"), cmp.to_csv().as_bytes())?;
    spinetwin_core::atomic::write_bytes(&dir.join("report.html"), cmp.to_html().as_bytes())?;
    write_snapshots(dir, &cmp.snapshots)
}

/// Runs `spinetwin plan`.
pub fn run(args: PlanArgs) -> Result<()> {
    check_writable(&args.out, args.force)?;
    let (file, bones) = if args.twin.as_os_str() == "phantom" {
        let (f, b) = phantom_twin_with_bones()?;
        (f, Some(b))
    } else {
        let f = read_twin(&args.twin)?;
        let b = read_bone_surfaces(&args.twin, &f)
            .with_context(|| format!("{}: reading the vertebra surfaces", args.twin.display()))?;
        (f, b)
    };
    let twin = Twin::build(file).context("rebuilding the twin")?;
    let cases: Vec<LoadCase> = if args.loads.is_empty() {
        Motion::ALL
            .iter()
            .map(|&m| LoadCase::pure_moment(m, 7.5, 0.0))
            .collect()
    } else {
        args.loads
            .iter()
            .map(|s| LoadCase::parse(s))
            .collect::<Result<_, _>>()?
    };
    // Every scenario is read and checked before anything is solved.
    let models: Vec<ScenarioModel> = args
        .scenarios
        .iter()
        .map(|p| {
            let s = Scenario::read(p)?;
            apply(&twin, &s)
        })
        .collect::<Result<_, _>>()?;
    let bone_input = match &args.ct {
        Some(ct) => {
            let (img, labels, seg_warnings) =
                crate::twin::read_ct_and_labels(std::slice::from_ref(ct), args.labels.as_deref())?;
            for w in &seg_warnings {
                eprintln!("warning: segmentation: {w}");
            }
            Some((img.volume, labels))
        }
        None => None,
    };
    let intact = solve_all(&twin, &cases, "intact")?;
    let results = solve_scenarios(&models, &cases, &intact)?;
    let mut cmp = compare(&intact, &results);
    let mut failed_matched = 0;
    if args.control != Control::Load {
        for (m, r) in &results {
            failed_matched += add_rom_matched(&mut cmp, m, &intact, r, &|_| true);
        }
    }
    if args.control == Control::RomMatched {
        cmp.rows.retain(|r| r.control != CONTROL_LOAD);
    }
    if let Some((ct, labels)) = &bone_input {
        cmp.add_bone_checks(&results, ct, labels, args.bone_spacing);
    }
    cmp.snapshots = pictures(&twin, &intact, &results, bones.as_ref());
    write_dir_atomically(&args.out, |dir| write_comparison(dir, &cmp))?;
    for sc in &cmp.scenarios {
        println!("{}: {}", sc.name, cmp.paragraph(sc));
    }
    println!("comparison -> {}", args.out.display());
    let failed = intact.iter().filter(|r| !r.converged).count()
        + results
            .iter()
            .filter(|(m, _)| !m.hybrid_unchanged)
            .map(|(_, r)| r.iter().filter(|r| !r.converged).count())
            .sum::<usize>()
        + failed_matched;
    if failed > 0 {
        bail!("{failed} solves did not converge (reported as not converged in the comparison)");
    }
    Ok(())
}
