//! `spinetwin fem run DECK.inp --out DIR`: solve an Abaqus/CalculiX deck with the FE engine.
//!
//! Writes DIR atomically: `result.vtu` (point data: displacement, and contact pressure
//! where the model has contact; cell data: stress, von Mises and strain, see
//! [`spinetwin_fem::VtuData::linear_result`] and [`spinetwin_fem::nl::StepState::vtu_data`]),
//! `displacements.csv` (deck node ids), for decks with beams `rotations.csv`, and
//! `summary.json` (sizes, ordering, phase times, peak memory).
//!
//! * Linear elastic static decks (one step, `*ELASTIC`, C3D4/C3D10/C3D8/C3D6, `*BOUNDARY`, `*CLOAD`,
//!   `*DLOAD P`, `*DLOAD GRAV` on `*DENSITY`): sparse Cholesky (`--ordering metis|amd`) or CG + AMG
//!   (`--solver cg-amg`).
//! * Decks with `*STEP, NLGEOM` or a `*HYPERELASTIC` material (NEO HOOKE, MOONEY-RIVLIN,
//!   `D1 > 0`) go to the nonlinear Newton solver (`spinetwin_fem::nl`), built by
//!   [`spinetwin_fem::inp::Deck::to_nl_model`]: C3D4, C3D10, C3D8 and C3D6 elements, T3D2
//!   trusses (axial stiffness `E A / L` in tension and compression, area on the data line
//!   of their `*SOLID SECTION`; not in `result.vtu`, their nodes' displacements are in
//!   `displacements.csv`), B31 and B32 beams (`*BEAM SECTION, SECTION=CIRC|RECT`, CIRC with the
//!   diameter as CalculiX reads it; a B32 is one beam between its end nodes: corotational
//!   Timoshenko beams between massless rigid bodies at their nodes, DOFs 4-6 of
//!   `*BOUNDARY` and `*CLOAD` as rotations and moments; not in `result.vtu`; their nodes'
//!   translations in `displacements.csv`, their rotations, as rotation vectors in rad, in
//!   `rotations.csv`: `node,rx,ry,rz`);
//!   `*ELASTIC` as St Venant-Kirchhoff; several steps with Abaqus' modify rules for
//!   `*BOUNDARY` (fixed and prescribed), `*CLOAD`, `*DLOAD P` (follower pressure) and
//!   `*DLOAD GRAV` (dead gravity load on the `*DENSITY` of each element's material);
//!   `*STATIC` `initial, period, min, max` or `DIRECT` fixed increments; `*STEP, INC`. A
//!   hyperelastic deck without NLGEOM is solved with large deformations all the same (the
//!   summary says so). Elastic decks whose first steps lack NLGEOM while a later one asks for
//!   it are refused, and so is whatever else the solver cannot do, by name.
//!   `result.vtu` then holds the Cauchy stress (element average) as `stress` and the
//!   Green-Lagrange strain as `green_lagrange_strain` (the linear path's small strain is
//!   `strain`), and
//!   `summary.json` also a `nonlinear` section: per step the converged and failed
//!   increments, cut-backs, Newton iterations and time, the phase times of the whole solve
//!   (`NlTimings`) and the factorisations by method. A solve that does not converge exits
//!   non-zero with the step and load factor reached, and DIR then holds `summary.json` only
//!   (`converged: false`, the reason), never displacements or a VTU.

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
    /// Solve a deck (linear elastic static, or NLGEOM / hyperelastic with the Newton solver)
    /// and write results to a folder.
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
    /// Relative residual tolerance of cg-amg [default: 1e-8].
    #[arg(long)]
    pub tol: Option<f64>,
    /// Iteration limit of cg-amg (not converging within it is an error) [default: 2000].
    #[arg(long)]
    pub max_iterations: Option<usize>,
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
    /// Relative residual: linear solves |K u - f| / |f|; nonlinear ones |r| at convergence
    /// of the last increment over the largest |r| of its Newton iterations.
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
    /// Steps, increments, iterations, cut-backs and phase times of a nonlinear solve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonlinear: Option<NlSummary>,
}

/// A nonlinear (NLGEOM / hyperelastic) solve in `summary.json`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct NlSummary {
    /// Why the solve did not converge (the step and the load factor reached); absent when
    /// it converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The deck has a hyperelastic material but no step asks for NLGEOM: solved with large
    /// deformations all the same (hyperelasticity is a finite-strain model).
    pub nlgeom_implied: bool,
    /// Constitutive model of each material used.
    pub materials: Vec<String>,
    /// Steps attempted, in order (the last one failed when the solve did not converge).
    pub steps: Vec<NlStepSummary>,
    /// Seconds per phase over the whole analysis.
    pub seconds: NlSeconds,
    /// Tangent factorisations by method.
    pub factorizations: NlFactorizations,
}

/// One step of a nonlinear solve.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct NlStepSummary {
    /// Step name.
    pub name: String,
    /// The step reached load factor 1.
    pub converged: bool,
    /// Load factor reached (1 when converged).
    pub load_factor: f64,
    /// Converged increments.
    pub increments: usize,
    /// Increments that failed (each one either cut back and retried or ended the step).
    pub failed_increments: usize,
    /// Cut-backs: failed increments retried with half the size.
    pub cutbacks: usize,
    /// Newton iterations of the step, failed increments included.
    pub iterations: usize,
    /// Wall time of the step (s).
    pub seconds: f64,
}

/// Seconds per phase of a nonlinear solve (`spinetwin_fem::nl::NlTimings`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct NlSeconds {
    /// DOF map, sparsity pattern and symbolic factorisation.
    pub setup: f64,
    /// Residual and tangent assembly.
    pub assembly: f64,
    /// Numeric factorisations of the tangent.
    pub factorization: f64,
    /// Triangular solves.
    pub solve: f64,
    /// The whole nonlinear solve.
    pub total: f64,
}

/// Tangent factorisations of a nonlinear solve by method.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct NlFactorizations {
    /// Sparse Cholesky (symmetric positive definite tangent).
    pub cholesky: usize,
    /// Sparse LDL^T (symmetric indefinite).
    pub ldlt: usize,
    /// Symmetric part plus a low-rank correction.
    pub low_rank: usize,
    /// Sparse LU.
    pub lu: usize,
}

/// Default relative residual tolerance of `--solver cg-amg`.
const CG_TOL: f64 = 1e-8;
/// Default iteration limit of `--solver cg-amg`.
const CG_MAX_ITERATIONS: usize = 2000;

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
    if deck.needs_nonlinear() {
        return run_nonlinear(&args, &deck, t_all);
    }
    let model = deck
        .to_model()
        .with_context(|| format!("{}", args.deck.display()))?;
    let material = model
        .linear_material(&deck)
        .with_context(|| format!("{}", args.deck.display()))?;
    let read = t_all.elapsed().as_secs_f64();
    let tol = args.tol.unwrap_or(CG_TOL);
    let max_iterations = args.max_iterations.unwrap_or(CG_MAX_ITERATIONS);
    if !(tol > 0.0 && tol < 1.0) {
        bail!("--tol {tol} must be between 0 and 1");
    }
    if max_iterations == 0 {
        bail!("--max-iterations must be at least 1");
    }
    let mut opts = SolverOptions {
        ordering: args.ordering.into(),
        method: args.solver.into(),
        ..Default::default()
    };
    opts.iterative.tol = tol;
    opts.iterative.max_iterations = max_iterations;
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
    let max_u = max_norm(&sol.displacements);
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
        nonlinear: None,
    };
    write_outputs(
        &args,
        Fields {
            mesh: &model.mesh,
            node_ids: &model.node_ids,
            u: &sol.displacements,
            vtu: VtuData::linear_result(&sol.displacements, &results),
            rotations: None,
        },
        &mut summary,
        [t, t_all],
    )?;
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

/// `fem run` of a deck that needs the nonlinear solver (NLGEOM or a hyperelastic material).
fn run_nonlinear(args: &RunArgs, deck: &Deck, t_all: Instant) -> Result<()> {
    let name = args.deck.display();
    if matches!(args.solver, SolverArg::CgAmg) || matches!(args.ordering, OrderingArg::Amd) {
        bail!("{name}: --solver cg-amg and --ordering amd apply to linear decks only; the nonlinear solver factorises each tangent itself (METIS-ordered Cholesky, or LU when it is not symmetric)");
    }
    if args.tol.is_some() || args.max_iterations.is_some() {
        bail!("{name}: --tol and --max-iterations set the CG + AMG solver of linear decks; the nonlinear solver does not use them");
    }
    let hyper = deck.materials.iter().any(|m| m.hyperelastic.is_some());
    let first_nl = deck.steps.iter().position(|s| s.nlgeom);
    if !hyper {
        // Elastic materials only: NLGEOM from its first step on (as in Abaqus, it stays on).
        if let Some(k) = first_nl.filter(|&k| k > 0) {
            bail!("{name}: step {} asks for NLGEOM but step {k} before it does not; mixing small- and large-deformation steps is not supported (add NLGEOM to every step, or to none)", k + 1);
        }
    }
    let nlgeom_implied = hyper && first_nl.is_none();
    let nm = deck.to_nl_model().with_context(|| format!("{name}"))?;
    let read = t_all.elapsed().as_secs_f64();
    let opts = spinetwin_fem::nl::SolveOptions::default();
    let t = Instant::now();
    let res =
        spinetwin_fem::nl::solve(&nm.model, &opts).with_context(|| format!("{name}: solving"))?;
    let solve_total = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let steps: Vec<NlStepSummary> = res
        .steps
        .iter()
        .map(|sr| {
            let failed = sr.increments.iter().filter(|i| !i.converged).count();
            NlStepSummary {
                name: sr.name.clone(),
                converged: sr.converged,
                load_factor: sr
                    .increments
                    .iter()
                    .filter(|i| i.converged)
                    .map(|i| i.to)
                    .fold(0.0, f64::max),
                increments: sr.increments.iter().filter(|i| i.converged).count(),
                failed_increments: failed,
                // A failed increment followed by another attempt was cut back; a failed
                // last one ended the step.
                cutbacks: sr
                    .increments
                    .iter()
                    .enumerate()
                    .filter(|(k, i)| !i.converged && k + 1 < sr.increments.len())
                    .count(),
                iterations: sr.increments.iter().map(|i| i.iterations).sum(),
                seconds: sr.time.as_secs_f64(),
            }
        })
        .collect();
    let tm = &res.timings;
    let fz = &res.factorizations;
    // Relative residual of the last converged increment: |r| at convergence over the largest
    // |r| of its iterations (with prescribed displacements the residual before the first
    // iteration is that of the previous, converged state).
    let rel_res = res
        .steps
        .iter()
        .flat_map(|s| &s.increments)
        .rfind(|i| i.converged)
        .and_then(|i| {
            let top = i.residuals.iter().copied().fold(0.0, f64::max);
            i.residuals.last().filter(|_| top > 0.0).map(|&b| b / top)
        })
        .unwrap_or(0.0);
    let state = res.steps.last().and_then(|s| s.state.as_ref());
    let mut summary = Summary {
        deck: name.to_string(),
        analysis: if nlgeom_implied {
            "nonlinear static (NLGEOM implied by the hyperelastic material)".into()
        } else {
            "nonlinear static (NLGEOM)".into()
        },
        converged: res.converged,
        steps: deck.steps.len(),
        iterations: res.iterations,
        nodes: nm.model.mesh.num_nodes(),
        elements: nm.model.mesh.num_elements(),
        dofs: res.num_equations,
        nnz: res.nnz,
        factor_nnz: 0,
        ordering: if fz.lu > 0 {
            "metis (Cholesky), colamd (LU)".into()
        } else {
            "metis".into()
        },
        solver: "newton".into(),
        cg: None,
        relative_residual: rel_res,
        max_displacement_mm: 0.0,
        max_von_mises_mpa: 0.0,
        seconds: PhaseSeconds {
            read,
            pattern: tm.setup.as_secs_f64(),
            symbolic: 0.0,
            assembly: tm.assembly.as_secs_f64(),
            numeric: tm.factorization.as_secs_f64(),
            solve: tm.solve.as_secs_f64(),
            solve_total,
            ..Default::default()
        },
        peak_rss_mib: 0.0,
        threads: cores(),
        nonlinear: Some(NlSummary {
            failure: res.failure.clone(),
            nlgeom_implied,
            materials: nm.material_models.clone(),
            steps,
            seconds: NlSeconds {
                setup: tm.setup.as_secs_f64(),
                assembly: tm.assembly.as_secs_f64(),
                factorization: tm.factorization.as_secs_f64(),
                solve: tm.solve.as_secs_f64(),
                total: tm.total.as_secs_f64(),
            },
            factorizations: NlFactorizations {
                cholesky: fz.cholesky,
                ldlt: fz.ldlt,
                low_rank: fz.low_rank,
                lu: fz.lu,
            },
        }),
    };
    if !res.converged {
        // Not converged: the folder gets summary.json only, never displacements or a VTU
        // that could be taken for a result.
        let why = res
            .failure
            .clone()
            .unwrap_or_else(|| "the solver stopped without a converged state".into());
        write_dir_atomically(&args.out, |dir: &Path| {
            summary.seconds.total = t_all.elapsed().as_secs_f64();
            summary.peak_rss_mib = crate::bench::peak_rss_mib();
            write_json(&dir.join("summary.json"), &summary)
        })?;
        bail!(
            "{name}: NOT converged: {why}; no results written (details in {})",
            args.out.join("summary.json").display()
        );
    }
    let Some(state) = state else {
        bail!("{name}: the solver reported convergence without a final state");
    };
    let u = &state.displacements;
    let vm: Vec<f64> = state
        .element_stress
        .iter()
        .map(spinetwin_fem::von_mises)
        .collect();
    summary.max_von_mises_mpa = vm.iter().copied().fold(0.0, f64::max);
    summary.max_displacement_mm = max_norm(u);
    write_outputs(
        args,
        Fields {
            mesh: &nm.model.mesh,
            node_ids: &nm.node_ids,
            u,
            vtu: state.vtu_data(&nm.model),
            rotations: beam_rotations(&nm.beam_nodes, state),
        },
        &mut summary,
        [t, t_all],
    )?;
    let incs: usize = summary
        .nonlinear
        .as_ref()
        .map_or(0, |n| n.steps.iter().map(|s| s.increments).sum());
    println!(
        "solved {} DOFs (nonlinear: {} step(s), {incs} increments, {} Newton iterations) in {:.2} s; results in {}",
        summary.dofs,
        summary.steps,
        summary.iterations,
        summary.seconds.total,
        args.out.display()
    );
    Ok(())
}

/// `rotations.csv` of the beam nodes (`node,rx,ry,rz`, rotation vectors in rad), or `None`
/// when the deck has no beams.
fn beam_rotations(
    beam_nodes: &[(u64, usize)],
    state: &spinetwin_fem::nl::StepState,
) -> Option<String> {
    if beam_nodes.is_empty() {
        return None;
    }
    let mut csv = String::from("node,rx,ry,rz\n");
    for &(id, b) in beam_nodes {
        let r = state.bodies[b].rotation_vector;
        let _ = writeln!(csv, "{id},{:e},{:e},{:e}", r[0], r[1], r[2]);
    }
    Some(csv)
}

/// Largest displacement magnitude (mm).
fn max_norm(u: &[[f64; 3]]) -> f64 {
    u.iter()
        .map(|u| (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt())
        .fold(0.0, f64::max)
}

/// What a solved deck writes: its mesh and nodal and element fields.
struct Fields<'a> {
    mesh: &'a spinetwin_fem::Mesh,
    /// Deck id of each mesh node.
    node_ids: &'a [u64],
    /// Nodal displacements (mm).
    u: &'a [[f64; 3]],
    /// The fields of `result.vtu`.
    vtu: VtuData,
    /// `rotations.csv` (beam nodes), when the deck has beams.
    rotations: Option<String>,
}

/// Writes a solved deck's outputs into `args.out`, atomically: `result.vtu` (unless
/// `--no-vtu`),
/// `displacements.csv` (deck node ids) and `summary.json` with the output and total times
/// (from `t[0]` and `t[1]`) and the peak memory filled in.
fn write_outputs(
    args: &RunArgs,
    f: Fields<'_>,
    summary: &mut Summary,
    t: [Instant; 2],
) -> Result<()> {
    let mut csv = String::with_capacity(64 * f.node_ids.len());
    csv += "node,ux,uy,uz\n";
    for (id, u) in f.node_ids.iter().zip(f.u) {
        let _ = writeln!(csv, "{id},{:e},{:e},{:e}", u[0], u[1], u[2]);
    }
    write_dir_atomically(&args.out, |dir: &Path| {
        if !args.no_vtu {
            write_vtu(&dir.join("result.vtu"), f.mesh, &f.vtu)?;
        }
        spinetwin_core::atomic::write_bytes(&dir.join("displacements.csv"), csv.as_bytes())?;
        if let Some(r) = &f.rotations {
            spinetwin_core::atomic::write_bytes(&dir.join("rotations.csv"), r.as_bytes())?;
        }
        summary.seconds.output = t[0].elapsed().as_secs_f64();
        summary.seconds.total = t[1].elapsed().as_secs_f64();
        summary.peak_rss_mib = crate::bench::peak_rss_mib();
        write_json(&dir.join("summary.json"), &*summary)
    })
}

/// Logical cores.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
