//! `spinetwin bench scenarios`: the time each surgical scenario adds on the hybrid twin of
//! the built-in phantom, for the six 7.5 N m pure moments (the surgical-scenario issue's
//! target: under 30 s per scenario on 2 cores).
//!
//! The intact twin and each built-in scenario are solved one after the other, each set of
//! six cases side by side, one per core, as `plan` and `demo` solve theirs, and timed by
//! wall clock and by the process's CPU time. The table also gives Newton iterations per case, so a change
//! in time can be told from a change in work.

use crate::bench::{machine_line, peak_rss_mib, Args};
use crate::plan::BUILTIN_SCENARIOS;
use anyhow::{Context, Result};
use serde::Serialize;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::{CaseResult, Twin};
use spinetwin_scenario::{apply, Scenario};
use std::time::Instant;

/// Moment of the benchmark's pure-moment cases (N m), as in the demo.
const MOMENT_NM: f64 = 7.5;
/// Issue 6's target for one added scenario on the six pure-moment cases (s).
const TARGET_S: f64 = 30.0;

#[derive(Serialize, Debug)]
struct Row {
    what: String,
    wall_s: f64,
    cpu_s: f64,
    converged: usize,
    cases: usize,
    iterations: usize,
    equations: usize,
    /// (case, Newton iterations, seconds) in case order.
    per_case: Vec<(String, usize, f64)>,
    note: String,
}

/// CPU seconds (user + system) this process has used so far; 0 where unavailable.
fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15 (utime, stime) in clock ticks; the command name
    // (field 2) may hold spaces, so count from the closing parenthesis.
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After ')' the fields start at 3 (state), so utime (14) is index 11.
    // Linux reports in USER_HZ, which is 100 on every supported architecture.
    (tick(11) + tick(12)) / 100.0
}

fn timed(twin: &Twin, cases: &[LoadCase], what: &str, note: String) -> Result<Row> {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let results: Vec<CaseResult> = crate::twin::solve_cases(twin, cases, what)?;
    let (wall_s, cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    Ok(Row {
        what: what.to_string(),
        wall_s,
        cpu_s,
        converged: results.iter().filter(|r| r.converged).count(),
        cases: results.len(),
        iterations: results.iter().map(|r| r.iterations).sum(),
        equations: results.first().map_or(0, |r| r.equations),
        per_case: results
            .iter()
            .map(|r| (r.case.name.clone(), r.iterations, r.seconds))
            .collect(),
        note,
    })
}

/// Runs `spinetwin bench scenarios`.
pub fn run(args: &Args) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful timings");
    }
    let t0 = Instant::now();
    let file = crate::twin::phantom_twin()?;
    let twin = Twin::build(file).context("building the phantom twin")?;
    let build_s = t0.elapsed().as_secs_f64();
    let cases: Vec<LoadCase> = LoadCase::standard_set(MOMENT_NM, 0.0)
        .into_iter()
        .filter(|c| c.moment.is_some())
        .collect();
    let mut rows = vec![timed(
        &twin,
        &cases,
        "intact",
        "reference: the solves every scenario is compared with".into(),
    )?];
    for (file, text) in BUILTIN_SCENARIOS {
        let s = Scenario::parse(text, file)?;
        let m = apply(&twin, &s).with_context(|| format!("applying {file}"))?;
        if m.hybrid_unchanged {
            rows.push(Row {
                what: s.name.clone(),
                wall_s: 0.0,
                cpu_s: 0.0,
                converged: cases.len(),
                cases: cases.len(),
                iterations: 0,
                equations: 0,
                per_case: Vec::new(),
                note: "hybrid twin unchanged (cement only): reuses the intact results; its \
                       cost is the voxel bone check (`spinetwin bone`), not timed here"
                    .into(),
            });
            continue;
        }
        rows.push(timed(&m.twin, &cases, &s.name, String::new())?);
    }
    let table = markdown(&rows, build_s);
    println!("{table}");
    if let Some(p) = &args.report {
        spinetwin_core::atomic::write_bytes(p, table.as_bytes())?;
    }
    if let Some(p) = &args.json {
        crate::output::write_json(p, &rows)?;
    }
    Ok(())
}

fn markdown(rows: &[Row], build_s: f64) -> String {
    let equations = rows.first().map_or(0, |r| r.equations);
    let mut s = String::from(
        "| model | wall (s) | CPU (s) | converged | Newton iterations | per case: iterations / s | target |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let per: Vec<String> = r
            .per_case
            .iter()
            .map(|(c, it, t)| format!("{} {it} / {t:.1}", c.trim_end_matches("_7.5nm")))
            .collect();
        let target = if r.what == "intact" {
            "-".to_string()
        } else if r.converged < r.cases {
            "**not met** (a case did not converge)".to_string()
        } else if r.wall_s < TARGET_S {
            format!("met (< {TARGET_S:.0} s)")
        } else {
            format!("**not met** (>= {TARGET_S:.0} s)")
        };
        let per = if per.is_empty() {
            r.note.clone()
        } else {
            per.join(", ")
        };
        s += &format!(
            "| {} | {:.1} | {:.1} | {} of {} | {} | {} | {} |\n",
            r.what, r.wall_s, r.cpu_s, r.converged, r.cases, r.iterations, per, target
        );
    }
    let scen: Vec<&Row> = rows
        .iter()
        .filter(|r| r.what != "intact" && r.iterations > 0)
        .collect();
    let worst = scen.iter().map(|r| r.wall_s).fold(0.0, f64::max);
    let threads = rayon::current_num_threads();
    s += &format!(
        "\nSix {MOMENT_NM} N m pure moments per model, {threads} solved side by side (one per \
         core, as `plan` and `demo` solve their cases). Phantom twin (default spec, T12-S1, \
         {equations} equations) built in {build_s:.1} s. Slowest added scenario: {worst:.1} s \
         (target {TARGET_S:.0} s). Peak RSS {:.0} MiB. {}\n",
        peak_rss_mib(),
        machine_line()
    );
    s
}
