//! `spinetwin`: the command-line program.
//!
//! Each subcommand lives in its own module; this file only parses arguments, sets up
//! logging and turns errors into one line on stderr with a non-zero exit code.

mod bench;
mod bench_fem;
mod bench_scenarios;
mod bench_segment;
mod bone;
mod chart;
mod deidentify;
mod demo;
mod fem;
mod inputs;
mod inspect;
mod measure;
mod output;
mod phantom;
mod plan;
mod report;
mod segment;
mod snapshot;
mod sweep;
mod twin;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// spinetwin: a patient-specific lumbar spine digital twin.
///
/// From a CT (or MRI) of the lumbar spine, spinetwin builds a mechanical model of the
/// patient's spine, loads it as the body and the standard lab protocols do, and compares
/// candidate operations level by level. Units: mm, N, MPa; angles in degrees; patient
/// coordinates in DICOM LPS (x = patient left, y = posterior, z = superior).
#[derive(Parser, Debug)]
#[command(name = "spinetwin", version, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the built-in end-to-end example on the synthetic phantom (no patient data needed).
    Demo(demo::Args),
    /// Write a synthetic lumbar spine CT with ground-truth labels, landmarks and angles.
    Phantom(phantom::Args),
    /// Label vertebrae, discs and canal of a lumbar CT (VerSe numbering), with overview PNGs.
    Segment(segment::Args),
    /// Landmarks and measures of a lumbar CT or segmentation: angles (lordosis, sacral slope, Cobb), disc and body heights, canal, bone density.
    Measure(measure::Args),
    /// Describe what a DICOM folder/file or NIfTI file holds (no identifying fields by default).
    Inspect(inspect::Args),
    /// Write a de-identified copy of DICOM data (PS3.15 Annex E basic profile).
    Deidentify(deidentify::Args),
    /// Build the mechanical twin of a lumbar CT (hybrid: rigid vertebrae, FE discs, ligaments, facets).
    Build(twin::BuildArgs),
    /// Solve load cases (pure moments, follower load, standing) on a twin.
    Simulate(twin::SimulateArgs),
    /// Compress vertebrae meshed from the CT (moduli from HU), optionally cemented: stiffness, bone stress.
    Bone(bone::Args),
    /// Compare the phantom twin with published experiments; writes validation.csv.
    Validate(twin::ValidateArgs),
    /// Robustness: every standard load case on phantom variants; writes sweep.csv and sweep.md.
    Sweep(sweep::Args),
    /// Fit the disc materials to disc-only experiments (Jaramillo); writes calibration.csv.
    Calibrate(twin::CalibrateArgs),
    /// Compare surgical scenarios (TOML) with the intact twin; writes comparison.csv and report.html.
    Plan(plan::PlanArgs),
    /// Finite-element analyses of Abaqus/CalculiX input decks.
    Fem(fem::Args),
    /// Measure speed and memory of pipeline stages and write a table.
    Bench(bench::Args),
    /// (internal) Load a scan and print timing and peak memory as JSON; used by `bench`.
    #[command(hide = true)]
    BenchLoadChild(bench::ChildArgs),
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Phantom(a) => phantom::run(a),
        Command::Segment(a) => segment::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Measure(a) => measure::run(a),
        Command::Deidentify(a) => deidentify::run(a),
        Command::Build(a) => twin::run_build(a),
        Command::Bone(a) => bone::run(a),
        Command::Simulate(a) => twin::run_simulate(a),
        Command::Validate(a) => twin::run_validate(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Calibrate(a) => twin::run_calibrate(a),
        Command::Plan(a) => plan::run(a),
        Command::Fem(a) => fem::run(a),
        Command::Bench(a) => bench::run(a),
        Command::BenchLoadChild(a) => bench::run_child(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
