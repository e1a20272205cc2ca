//! `spinetwin plan`: surgical scenarios against the intact twin.

use crate::output::{check_writable, write_dir_atomically, write_json};
use crate::twin::{phantom_twin, read_twin};
use anyhow::{bail, Context, Result};
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{CaseResult, Twin};
use spinetwin_scenario::{apply, compare, Scenario, ScenarioModel};
use std::path::PathBuf;

/// Arguments of `spinetwin plan`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Apply surgical scenarios (TOML files, see docs/scenarios.md) to a \
twin and compare each with the intact twin on the same load cases (default: the six 7.5 Nm \
pure moments; --load as in `spinetwin simulate`). Every scenario is checked against the twin \
before anything is solved. Writes OUT/comparison.json, OUT/comparison.csv (scenario, load \
case, level, metric, intact, scenario, change %) and OUT/report.html. A case that does not \
converge is reported as not converged, never as a number."
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
}

pub(crate) fn solve_all(twin: &Twin, cases: &[LoadCase], what: &str) -> Result<Vec<CaseResult>> {
    let bar = spinetwin_core::progress::bar(cases.len() as u64, what);
    let mut out = Vec::new();
    for c in cases {
        bar.set_message(c.name.clone());
        out.push(
            twin.simulate(c, &SolveOptions::default())
                .with_context(|| format!("{what}: load case {}", c.name))?,
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
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

/// Applies the built-in scenarios to `twin`, solves each on `cases` and compares with the
/// `intact` results (same cases, same order). Scenarios whose levels the twin lacks are
/// skipped with a note (the demo's level range is a user option).
pub(crate) fn builtin_comparison(
    twin: &Twin,
    cases: &[LoadCase],
    intact: &[CaseResult],
) -> Result<(spinetwin_scenario::Comparison, Vec<String>)> {
    let mut models = Vec::new();
    let mut skipped = Vec::new();
    for (file, text) in BUILTIN_SCENARIOS {
        let s = Scenario::parse(text, file)?;
        match apply(twin, &s) {
            Ok(m) => models.push(m),
            Err(e) => skipped.push(format!("{file}: {e}")),
        }
    }
    let mut results = Vec::new();
    for m in &models {
        let r = solve_all(&m.twin, cases, &m.scenario.name)?;
        results.push((m, r));
    }
    Ok((compare(intact, &results), skipped))
}

/// Runs `spinetwin plan`.
pub fn run(args: PlanArgs) -> Result<()> {
    check_writable(&args.out, args.force)?;
    let file = if args.twin.as_os_str() == "phantom" {
        phantom_twin()?
    } else {
        read_twin(&args.twin)?
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
    let intact = solve_all(&twin, &cases, "intact")?;
    let mut results = Vec::new();
    for m in &models {
        let r = solve_all(&m.twin, &cases, &m.scenario.name)?;
        results.push((m, r));
    }
    let cmp = compare(&intact, &results);
    write_dir_atomically(&args.out, |dir| {
        write_json(&dir.join("comparison.json"), &cmp)?;
        spinetwin_core::atomic::write_bytes(&dir.join("comparison.csv"), cmp.to_csv().as_bytes())?;
        spinetwin_core::atomic::write_bytes(&dir.join("report.html"), cmp.to_html().as_bytes())?;
        Ok(())
    })?;
    for sc in &cmp.scenarios {
        println!("{}: {}", sc.name, cmp.paragraph(sc));
    }
    println!("comparison -> {}", args.out.display());
    let failed = intact.iter().filter(|r| !r.converged).count()
        + results
            .iter()
            .map(|(_, r)| r.iter().filter(|r| !r.converged).count())
            .sum::<usize>();
    if failed > 0 {
        bail!("{failed} solves did not converge (reported as not converged in the comparison)");
    }
    Ok(())
}
