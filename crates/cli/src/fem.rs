//! `spinetwin fem run DECK.inp --out DIR`: solve an Abaqus/CalculiX deck with the FE engine.
//!
//! Writes DIR atomically: `result.vtu` (displacement, element stress, von Mises),
//! `displacements.csv` (deck node ids) and `summary.json` (sizes, ordering, phase times, peak
//! memory). Linear elastic static analyses only for now; decks that need the nonlinear
//! solver (NLGEOM, hyperelastic materials) are refused with a message saying so.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use spinetwin_fem::inp::Deck;
use spinetwin_fem::{
    element_results, solve_linear_static_with, write_vtu, LinearMethod, Ordering, SolverOptions,
    VtuData,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::output::{check_not_overlapping, check_writable, write_dir_atomically, write_json};

/// Arguments of `spinetwin fem`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: FemCommand,
}

/// Subcommands of `spinetwin fem`.
#[derive(clap::Subcommand, Debug)]
pub enum FemCommand {
    /// Solve a deck (linear elastic static; C3D4/C3D10) and write results to a folder.
    Run(RunArgs),
}

/// Arguments of `spinetwin fem run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Abaqus/CalculiX input deck (.inp; the subset listed in `spinetwin_fem::inp`).
    pub deck: PathBuf,
    /// Output folder (new or empty unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Fill-reducing ordering of the sparse Cholesky factorisation.
    #[arg(long, value_enum, default_value = "metis")]
    pub ordering: OrderingArg,
    /// Linear solver: sparse Cholesky (direct) or conjugate gradients with a
    /// smoothed-aggregation AMG preconditioner (cg-amg; less memory on large models).
    #[arg(long, value_enum, default_value = "direct")]
    pub solver: SolverArg,
    /// Relative residual tolerance of cg-amg.
    #[arg(long, default_value_t = 1e-8)]
    pub tol: f64,
    /// Iteration limit of cg-amg (not converging within it is an error).
    #[arg(long, default_value_t = 2000)]
    pub max_iterations: usize,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// Skip result.vtu (large models; benchmarks).
    #[arg(long)]
    pub no_vtu: bool,
}

/// Orderings selectable on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum OrderingArg {
    /// Nested dissection (METIS) of the node graph.
    Metis,
    /// Approximate minimum degree.
    Amd,
}

impl From<OrderingArg> for Ordering {
    fn from(o: OrderingArg) -> Self {
        match o {
            OrderingArg::Metis => Ordering::Metis,
            OrderingArg::Amd => Ordering::Amd,
        }
    }
}

/// Linear solvers selectable on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SolverArg {
    /// Supernodal sparse Cholesky.
    Direct,
    /// Conjugate gradients preconditioned by smoothed-aggregation algebraic multigrid.
    CgAmg,
}

impl From<SolverArg> for LinearMethod {
    fn from(s: SolverArg) -> Self {
        match s {
            SolverArg::Direct => LinearMethod::Direct,
            SolverArg::CgAmg => LinearMethod::CgAmg,
        }
    }
}

/// Figures of an iterative (CG + AMG) solve in `summary.json`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct IterativeSummary {
    /// CG iterations.
    pub iterations: usize,
    /// Multigrid levels including the finest.
    pub levels: usize,
    /// Equations per level, finest first.
    pub level_equations: Vec<usize>,
    /// Stored entries of all level matrices over those of the finest.
    pub operator_complexity: f64,
    /// Preconditioner setup (s).
    pub setup_s: f64,
    /// CG iterations (s).
    pub solve_s: f64,
}

/// Wall-clock seconds of each phase.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct PhaseSeconds {
    /// Reading and checking the deck, building the model.
    pub read: f64,
    /// DOF map and sparsity pattern.
    pub pattern: f64,
    /// Ordering and symbolic factorisation.
    pub symbolic: f64,
    /// Element matrices, loads.
    pub assembly: f64,
    /// Numeric Cholesky factorisation (cg-amg: the AMG setup).
    pub numeric: f64,
    /// Triangular solves and residual check (cg-amg: the CG iterations and residual check).
    pub solve: f64,
    /// Whole solve call (the phases above plus reactions).
    pub solve_total: f64,
    /// Stresses and output files.
    pub output: f64,
    /// Everything.
    pub total: f64,
}

/// `summary.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Summary {
    /// The deck solved.
    pub deck: String,
    /// Analysis performed.
    pub analysis: String,
    /// The solve succeeded with a small residual.
    pub converged: bool,
    /// Load steps solved.
    pub steps: usize,
    /// Newton iterations (1 for a linear solve).
    pub iterations: usize,
    /// Nodes and elements of the mesh.
    pub nodes: usize,
    /// Elements of the mesh.
    pub elements: usize,
    /// Free DOFs (equations).
    pub dofs: usize,
    /// Stored entries of the upper triangle of K.
    pub nnz: usize,
    /// Stored values of the Cholesky factor.
    pub factor_nnz: usize,
    /// Ordering used ("none" for cg-amg).
    pub ordering: String,
    /// Linear solver: "direct" or "cg-amg" (absent in summaries of older versions).
    #[serde(default)]
    pub solver: String,
    /// Iterations, levels and times of a cg-amg solve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cg: Option<IterativeSummary>,
    /// Relative residual |K u - f| / |f|.
    pub relative_residual: f64,
    /// Largest displacement magnitude (mm).
    pub max_displacement_mm: f64,
    /// Largest element von Mises stress (MPa).
    pub max_von_mises_mpa: f64,
    /// Phase times.
    pub seconds: PhaseSeconds,
    /// Peak resident memory of the process (VmHWM, MiB; 0 where unavailable).
    pub peak_rss_mib: f64,
    /// Logical cores available.
    pub threads: usize,
}

/// Runs `spinetwin fem ...`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        FemCommand::Run(a) => run_deck(a),
    }
}

fn run_deck(args: RunArgs) -> Result<()> {
    let t_all = Instant::now();
    check_writable(&args.out, args.force)?;
    check_not_overlapping(&args.out, std::slice::from_ref(&args.deck))?;
    let deck = Deck::read(&args.deck)?;
    if let Some(m) = deck.materials.iter().find(|m| m.hyperelastic.is_some()) {
        bail!(
            "{}: material {} is hyperelastic, which needs the nonlinear solver; `fem run` solves linear elastic decks only so far (give the material *ELASTIC constants instead)",
            args.deck.display(),
            m.name
        );
    }
    if deck.steps.iter().any(|s| s.nlgeom) {
        bail!(
            "{}: the step asks for NLGEOM (geometric nonlinearity), which needs the nonlinear solver; `fem run` solves linear static steps only so far (remove NLGEOM for a linear solve)",
            args.deck.display()
        );
    }
    let model = deck
        .to_model()
        .with_context(|| format!("{}", args.deck.display()))?;
    let material = model
        .linear_material(&deck)
        .with_context(|| format!("{}", args.deck.display()))?;
    let read = t_all.elapsed().as_secs_f64();
    if !(args.tol > 0.0 && args.tol < 1.0) {
        bail!("--tol {} must be between 0 and 1", args.tol);
    }
    if args.max_iterations == 0 {
        bail!("--max-iterations must be at least 1");
    }
    let mut opts = SolverOptions {
        ordering: args.ordering.into(),
        method: args.solver.into(),
        ..Default::default()
    };
    opts.iterative.tol = args.tol;
    opts.iterative.max_iterations = args.max_iterations;
    let t = Instant::now();
    let sol = solve_linear_static_with(
        &model.mesh,
        &material,
        &model.constraints,
        &model.loads,
        &opts,
    )
    .with_context(|| format!("{}: solving", args.deck.display()))?;
    let solve_total = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let results = element_results(&model.mesh, &material, &sol.displacements)?;
    let vm: Vec<f64> = results.iter().map(|r| r.von_mises).collect();
    let max_vm = vm.iter().copied().fold(0.0, f64::max);
    let max_u = sol
        .displacements
        .iter()
        .map(|u| (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt())
        .fold(0.0, f64::max);
    let mut csv = String::with_capacity(64 * model.node_ids.len());
    csv += "node,ux,uy,uz\n";
    for (id, u) in model.node_ids.iter().zip(&sol.displacements) {
        let _ = writeln!(csv, "{id},{:e},{:e},{:e}", u[0], u[1], u[2]);
    }
    let tm = &sol.timings;
    let mut summary = Summary {
        deck: args.deck.display().to_string(),
        analysis: "linear elastic static".into(),
        converged: sol.ok,
        steps: deck.steps.len().max(1),
        iterations: 1,
        nodes: model.mesh.num_nodes(),
        elements: model.mesh.num_elements(),
        dofs: sol.num_equations,
        nnz: sol.nnz,
        factor_nnz: sol.factor_nnz,
        ordering: match sol.method {
            LinearMethod::Direct => sol.ordering.name().into(),
            LinearMethod::CgAmg => "none".into(),
        },
        solver: sol.method.name().into(),
        cg: sol.iterative.as_ref().map(|st| IterativeSummary {
            iterations: st.iterations,
            levels: st.levels,
            level_equations: st.level_equations.clone(),
            operator_complexity: st.operator_complexity,
            setup_s: st.setup.as_secs_f64(),
            solve_s: st.solve.as_secs_f64(),
        }),
        relative_residual: sol.relative_residual,
        max_displacement_mm: max_u,
        max_von_mises_mpa: max_vm,
        seconds: PhaseSeconds {
            read,
            pattern: tm.pattern.as_secs_f64(),
            symbolic: tm.symbolic.as_secs_f64(),
            assembly: tm.assembly.as_secs_f64(),
            numeric: tm.numeric.as_secs_f64(),
            solve: tm.solve.as_secs_f64(),
            solve_total,
            ..Default::default()
        },
        peak_rss_mib: 0.0,
        threads: cores(),
    };
    write_dir_atomically(&args.out, |dir: &Path| {
        if !args.no_vtu {
            let data = VtuData {
                point_vectors: vec![("displacement".into(), sol.displacements.clone())],
                cell_scalars: vec![("von_mises".into(), vm.clone())],
                cell_tensors: vec![("stress".into(), results.iter().map(|r| r.stress).collect())],
            };
            write_vtu(&dir.join("result.vtu"), &model.mesh, &data)?;
        }
        spinetwin_core::atomic::write_bytes(&dir.join("displacements.csv"), csv.as_bytes())?;
        summary.seconds.output = t.elapsed().as_secs_f64();
        summary.seconds.total = t_all.elapsed().as_secs_f64();
        summary.peak_rss_mib = crate::bench::peak_rss_mib();
        write_json(&dir.join("summary.json"), &summary)
    })?;
    if !sol.ok {
        bail!(
            "{}: the solve did not converge (relative residual {:e}); results written to {} for inspection",
            args.deck.display(),
            sol.relative_residual,
            args.out.display()
        );
    }
    match &sol.iterative {
        Some(st) => println!(
            "solved {} DOFs (CG + AMG, {} iterations, {} levels, operator complexity {:.2}) in {:.2} s; results in {}",
            sol.num_equations,
            st.iterations,
            st.levels,
            st.operator_complexity,
            summary.seconds.total,
            args.out.display()
        ),
        None => println!(
            "solved {} DOFs ({} ordering, factor {} values) in {:.2} s; results in {}",
            sol.num_equations,
            sol.ordering,
            sol.factor_nnz,
            summary.seconds.total,
            args.out.display()
        ),
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
