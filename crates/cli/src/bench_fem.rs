//! `spinetwin bench fem`: the FE engine on a vertebral-body-sized Tet10 block (40 x 30 x
//! 25 mm), sparse Cholesky with METIS vs AMD ordering and conjugate gradients with a
//! smoothed-aggregation AMG preconditioner, side by side with CalculiX (`ccx`) on the same
//! deck.
//!
//! Every solve runs in a fresh child process (spinetwin: `fem run`; CalculiX: `ccx`), so the
//! peak memory (Linux VmHWM) is that of the solve alone. Displacements are compared node by
//! node: relative L2 norm of the difference.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spinetwin_fem::inp::{Deck, Hyperelastic};
use spinetwin_fem::{box_mesh, Constraints, LinearElastic, Loads, Order};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::Args;
use crate::fem::{cores, Summary};

/// Young's modulus (MPa) and Poisson's ratio of the block: about cancellous-bone stiffness.
const E: f64 = 500.0;
const NU: f64 = 0.3;
/// Pressure on the top face (MPa).
const PRESSURE: f64 = 1.0;

#[derive(Serialize, Debug)]
struct Run {
    solver: String,
    ordering: String,
    wall_s: f64,
    numeric_s: Option<f64>,
    factor_nnz: Option<usize>,
    /// CG iterations (cg-amg only).
    iterations: Option<usize>,
    /// AMG setup and CG solve seconds (cg-amg only).
    amg_setup_s: Option<f64>,
    cg_solve_s: Option<f64>,
    /// AMG levels and operator complexity (cg-amg only).
    levels: Option<usize>,
    operator_complexity: Option<f64>,
    peak_rss_mib: f64,
    rel_l2_vs_ccx: Option<f64>,
    /// Relative L2 difference to the first direct solve of this run (METIS).
    rel_l2_vs_direct: Option<f64>,
}

#[derive(Serialize, Debug)]
struct Report {
    cells: [usize; 3],
    nodes: usize,
    elements: usize,
    dofs: usize,
    nnz: usize,
    runs: Vec<Run>,
    ccx: Option<String>,
    cores: usize,
    build: String,
}

/// Writes the benchmark deck: block clamped at z = 0, uniform pressure on z = 25 (DLOAD
/// P-faces, so each solver integrates it itself), displacement printout of every node.
fn write_deck(cells: [usize; 3], path: &Path) -> Result<(usize, usize)> {
    let mesh = box_mesh([40.0, 30.0, 25.0], cells, Order::Quadratic)?;
    let mat = LinearElastic::uniform(mesh.num_elements(), E, NU)?;
    let mut bc = Constraints::new();
    bc.fix(mesh.node_set("zmin")?, [true; 3]);
    let mut loads = Loads::new();
    loads.pressure(mesh.face_set("zmax")?, PRESSURE);
    let mut deck = Deck::from_model(&mesh, &mat, &bc, &loads)?;
    deck.heading = vec![format!(
        "spinetwin bench fem: 40x30x25 mm Tet10 block, {}x{}x{} cells",
        cells[0], cells[1], cells[2]
    )];
    deck.node_sets.insert(
        "NALL".into(),
        (1..=mesh.num_nodes() as u64).collect::<Vec<_>>(),
    );
    deck.steps[0].outputs = vec!["*NODE PRINT, NSET=NALL".into(), "U".into()];
    spinetwin_core::atomic::write_bytes(path, deck.write().as_bytes())?;
    Ok((mesh.num_nodes(), mesh.num_elements()))
}

/// Where the real-vertebra benchmark data lives, relative to the repository (or the
/// current directory's parent, as CI checks out beside `shared/`).
fn verse_l2_dir() -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("../shared/data/verse004-l2-calibrated"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/verse004-l2-calibrated"),
    ];
    candidates
        .into_iter()
        .find(|d| d.join("l2_seg.nii.gz").exists())
        .context(
            "--model verse-l2 needs ../shared/data/verse004-l2-calibrated (l2_seg.nii.gz and \
             l2_density_calibrated.nii.gz) beside the repository; use --model block without it",
        )
}

/// Number of density bins of the vertebra deck (as in the published VerSe'19 voxel-FE
/// protocol): one material per bin keeps the deck small for CalculiX.
const DENSITY_BINS: usize = 128;

/// Writes the real-vertebra deck: the VerSe'19 sub-verse004 L2 (density-calibrated CT,
/// labels 1-4 bone, 5-6 PMMA caps) as Tet10 on 2 mm voxel blocks; bone modulus
/// `2980 rho^1.05` (rho: K2HPO4-equivalent g/cm^3, binned into 128 bins; Kopperdahl law of
/// the published protocol), PMMA 2500 MPa, nu 0.3; bottom cap face held, top cap face
/// pressed 0.2 mm (bonded platens). Returns (nodes, elements, description).
fn write_vertebra_deck(path: &Path) -> Result<(usize, usize, String)> {
    use spinetwin_model::bone_fe::{
        voxel_model, BoneElement, CompressionOptions, PublishedProtocol, VoxelModelOptions,
        CAP_PMMA,
    };
    let dir = verse_l2_dir()?;
    let im = spinetwin_imaging::nifti::read_volume(&dir.join("l2_density_calibrated.nii.gz"))?;
    let lab = spinetwin_imaging::nifti::read_labels(&dir.join("l2_seg.nii.gz"))?;
    let bone = |l: u16| (1..=4).contains(&l);
    let protocol = PublishedProtocol::binned(
        im.data()
            .iter()
            .zip(lab.data())
            .filter(|(_, &l)| bone(l))
            .map(|(&v, _)| v as f64),
        DENSITY_BINS,
    )
    .context("the VerSe'19 L2 label map has no bone voxel (labels 1-4)")?;
    let material = |l: u16, rho_mg: f64| {
        if bone(l) {
            protocol.bone(rho_mg)
        } else {
            CAP_PMMA
        }
    };
    let model = voxel_model(
        &im,
        &lab,
        |l| (1..=6).contains(&l),
        material,
        &VoxelModelOptions {
            step: 2,
            element: BoneElement::Tet10,
        },
    )?;
    let opts = CompressionOptions {
        end_labels: Some([5, 6]),
        ..Default::default()
    };
    let bc = spinetwin_model::bone_fe::compression_constraints(&model, &opts)?;
    let mut deck = Deck::from_model(&model.mesh, &model.material, &bc, &Loads::new())?;
    deck.heading =
        vec!["spinetwin bench fem: VerSe'19 L2 vertebra, Tet10 on 2 mm voxel blocks".into()];
    deck.node_sets.insert(
        "NALL".into(),
        (1..=model.mesh.num_nodes() as u64).collect::<Vec<_>>(),
    );
    deck.steps[0].outputs = vec!["*NODE PRINT, NSET=NALL".into(), "U".into()];
    spinetwin_core::atomic::write_bytes(path, deck.write().as_bytes())?;
    let desc = format!(
        "Real vertebra: VerSe'19 sub-verse004 L2 (density-calibrated CT, Bonelab spineFE-benchmark), \
         Tet10 on 2 mm voxel blocks ({} elements, {} nodes), bone E = 2980 rho^1.05 over {DENSITY_BINS} density \
         bins, PMMA caps 2500 MPa, nu 0.3; bottom cap face held, top cap face pressed 0.2 mm.",
        model.mesh.num_elements(),
        model.mesh.num_nodes()
    );
    Ok((model.mesh.num_nodes(), model.mesh.num_elements(), desc))
}

/// Peak resident memory (MiB) of a running process, from /proc; 0 when unreadable.
fn vm_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Runs a command to completion, polling its VmHWM every 50 ms (the last reading before it
/// exits is its peak, up to the growth of the last 50 ms). Returns (wall s, peak MiB).
fn run_measured(cmd: &mut Command, what: &str) -> Result<(f64, f64)> {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        peak = peak.max(vm_hwm_mib(pid));
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = t.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{what} failed ({status}): {}", err.trim());
    }
    Ok((wall, peak))
}

/// Displacements `node id -> u` from spinetwin's displacements.csv.
fn read_csv(path: &Path) -> Result<HashMap<u64, [f64; 3]>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = HashMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() != 4 {
            bail!("{}: bad line {l:?}", path.display());
        }
        let id: u64 = f[0].parse()?;
        out.insert(id, [f[1].parse()?, f[2].parse()?, f[3].parse()?]);
    }
    Ok(out)
}

/// Displacements of ccx's `.dat` printout (see [`spinetwin_fem::inp::ccx_dat_displacements`]).
pub(crate) fn read_ccx_dat(path: &Path) -> Result<HashMap<u64, [f64; 3]>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    spinetwin_fem::inp::ccx_dat_displacements(&text).with_context(|| path.display().to_string())
}

/// `|a - b| / |b|` over the nodes of `b` (all must be in `a`).
pub(crate) fn rel_l2(a: &HashMap<u64, [f64; 3]>, b: &HashMap<u64, [f64; 3]>) -> Result<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for (id, ub) in b {
        let Some(ua) = a.get(id) else {
            bail!("node {id} is missing from one of the result sets");
        };
        for d in 0..3 {
            num += (ua[d] - ub[d]).powi(2);
            den += ub[d] * ub[d];
        }
    }
    if den == 0.0 {
        bail!("the reference displacements are all zero");
    }
    Ok((num / den).sqrt())
}

fn find_ccx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ccx"))
        .find(|p| p.is_file())
}

/// Warns that a debug build's timings mean little.
fn warn_if_debug() {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful timings");
    }
}

/// Three cell counts from a `--cells`-style option.
fn three_cells(v: &[usize], flag: &str, example: &str) -> Result<[usize; 3]> {
    v.to_vec()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{flag} needs three counts, e.g. {example}"))
}

/// The folder the decks and results go to: `--keep` (checked, created) or a temporary one,
/// returned with it so that it lives as long as the caller needs it.
fn work_dir(keep: &Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match keep {
        Some(d) => {
            crate::output::check_writable(d, false)?;
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            Ok((d.clone(), None))
        }
        None => {
            let tmp = tempfile::tempdir().context("creating a temporary folder")?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
    }
}

/// Runs `ccx -i JOB` in `dir` on all cores; wall time (s) and peak RSS (MiB).
fn run_ccx(ccx: &Path, job: &str, dir: &Path) -> Result<(f64, f64)> {
    let t = cores().to_string();
    run_measured(
        Command::new(ccx)
            .args(["-i", job])
            .current_dir(dir)
            .env("OMP_NUM_THREADS", &t)
            .env("CCX_NPROC_STIFFNESS", &t)
            .env("CCX_NPROC_EQUATION_SOLVER", &t),
        "ccx",
    )
}

/// `summary.json` of a `fem run` output folder.
fn read_summary(out: &Path) -> Result<Summary> {
    Ok(serde_json::from_slice(
        &std::fs::read(out.join("summary.json")).context("reading summary.json")?,
    )?)
}

const NO_CCX: &str = "note: CalculiX (ccx) is not on PATH (Debian: apt-get install calculix-ccx); reporting spinetwin's numbers only";

/// Runs `spinetwin bench fem`.
pub fn run(args: &Args) -> Result<()> {
    warn_if_debug();
    let cells = three_cells(&args.cells, "--cells", "28,21,17")?;
    let (dir, _tmp) = work_dir(&args.keep)?;
    let deck_path = dir.join("block.inp");
    let (nodes, elements, description) = match args.model.as_str() {
        "block" => {
            let (n, e) = write_deck(cells, &deck_path)?;
            let d = format!(
                "Tet10 block 40 x 30 x 25 mm, {}x{}x{} cells ({e} elements, {n} nodes); E = {E} MPa, nu = {NU}, clamped at z = 0, {PRESSURE} MPa on z = 25.",
                cells[0], cells[1], cells[2]
            );
            (n, e, d)
        }
        "verse-l2" => write_vertebra_deck(&deck_path)?,
        other => bail!("--model {other:?}: use block or verse-l2"),
    };
    let exe = std::env::current_exe().context("locating the spinetwin executable")?;
    let mut runs = Vec::new();
    let mut dofs = 0;
    let mut nnz = 0;
    let known = ["metis", "amd", "cg-amg", "ccx"];
    if let Some(bad) = args.runs.iter().find(|r| !known.contains(&r.as_str())) {
        bail!("--runs: unknown solve {bad:?}; use {}", known.join(","));
    }
    let wanted = |name: &str| args.runs.iter().any(|r| r == name);
    let mut ours: Vec<HashMap<u64, [f64; 3]>> = Vec::new();
    for name in ["metis", "amd", "cg-amg"].into_iter().filter(|n| wanted(n)) {
        let out = dir.join(format!("spinetwin-{name}"));
        eprintln!("spinetwin ({name}) on {} ...", deck_path.display());
        let solver_args: &[&str] = match name {
            "cg-amg" => &["--solver", "cg-amg"],
            ord => &["--solver", "direct", "--ordering", ord],
        };
        let (wall, peak) = run_measured(
            Command::new(&exe)
                .args(["fem", "run", "--no-vtu"])
                .args(solver_args)
                .arg("--out")
                .arg(&out)
                .arg(&deck_path)
                .env("SPINETWIN_QUIET", "1"),
            "spinetwin fem run",
        )?;
        let s = read_summary(&out)?;
        dofs = s.dofs;
        nnz = s.nnz;
        ours.push(read_csv(&out.join("displacements.csv"))?);
        let direct = s.cg.is_none();
        runs.push(Run {
            solver: if direct {
                "spinetwin Cholesky".into()
            } else {
                "spinetwin CG + SA-AMG".into()
            },
            ordering: s.ordering,
            wall_s: wall,
            numeric_s: direct.then_some(s.seconds.numeric),
            factor_nnz: direct.then_some(s.factor_nnz),
            iterations: s.cg.as_ref().map(|c| c.iterations),
            amg_setup_s: s.cg.as_ref().map(|c| c.setup_s),
            cg_solve_s: s.cg.as_ref().map(|c| c.solve_s),
            levels: s.cg.as_ref().map(|c| c.levels),
            operator_complexity: s.cg.as_ref().map(|c| c.operator_complexity),
            peak_rss_mib: s.peak_rss_mib.max(peak),
            rel_l2_vs_ccx: None,
            rel_l2_vs_direct: None,
        });
    }
    if ours.is_empty() {
        bail!("--runs: name at least one of metis, amd, cg-amg");
    }
    // Differences to the first direct solve (METIS, or AMD when METIS was not run).
    if let Some(d) = runs.iter().position(|r| r.factor_nnz.is_some()) {
        for i in 0..runs.len() {
            runs[i].rel_l2_vs_direct = Some(rel_l2(&ours[i], &ours[d])?);
        }
    }
    let ccx = if wanted("ccx") { find_ccx() } else { None };
    match &ccx {
        Some(ccx) => {
            eprintln!("ccx on {} ...", deck_path.display());
            let (wall, peak) = run_ccx(ccx, "block", &dir)?;
            let theirs = read_ccx_dat(&dir.join("block.dat"))?;
            for (r, u) in runs.iter_mut().zip(&ours) {
                r.rel_l2_vs_ccx = Some(rel_l2(u, &theirs)?);
            }
            runs.push(Run {
                solver: "CalculiX ccx".into(),
                ordering: "ccx default (SPOOLES)".into(),
                wall_s: wall,
                numeric_s: None,
                factor_nnz: None,
                iterations: None,
                amg_setup_s: None,
                cg_solve_s: None,
                levels: None,
                operator_complexity: None,
                peak_rss_mib: peak,
                rel_l2_vs_ccx: Some(0.0),
                rel_l2_vs_direct: None,
            });
        }
        None if !wanted("ccx") => {}
        None => eprintln!("{NO_CCX}"),
    }
    let report = Report {
        cells,
        nodes,
        elements,
        dofs,
        nnz,
        ccx: ccx.map(|p| p.display().to_string()),
        cores: cores(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        runs,
    };
    let ccx_wall = report
        .runs
        .iter()
        .find(|r| r.solver.starts_with("CalculiX"))
        .map(|r| r.wall_s);
    let mut table = format!(
        "{description} {} equations, nnz(K, upper) {}.\n\n\
         | solver | ordering | wall time (s) | ratio to ccx | numeric Cholesky or AMG setup (s) | factor values | CG iterations (solve s) | peak RSS (MiB) | rel. L2 diff. vs ccx | vs direct |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        report.dofs, report.nnz
    );
    for r in &report.runs {
        table += &format!(
            "| {} | {} | {:.2} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            r.solver,
            r.ordering,
            r.wall_s,
            ccx_wall.map_or("-".into(), |c| format!("{:.2}", r.wall_s / c)),
            r.numeric_s
                .or(r.amg_setup_s)
                .map_or("-".into(), |v| format!("{v:.2}")),
            r.factor_nnz.map_or("-".into(), |v| v.to_string()),
            r.iterations.map_or("-".into(), |v| format!(
                "{v} ({:.2})",
                r.cg_solve_s.unwrap_or(0.0)
            )),
            r.peak_rss_mib,
            r.rel_l2_vs_ccx.map_or("-".into(), |v| format!("{v:.2e}")),
            r.rel_l2_vs_direct
                .map_or("-".into(), |v| format!("{v:.1e}")),
        );
    }
    table += &format!(
        "\nWall times are whole processes (read deck, solve, write displacements; spinetwin without VTU). \
         \"vs direct\": rel. L2 difference to the first Cholesky solve. Machine: {} logical cores; build: {}.\n",
        report.cores, report.build
    );
    if let Some(r) = report.runs.iter().find(|r| r.iterations.is_some()) {
        table += &format!(
            "CG + SA-AMG: tolerance 1e-8 (relative residual), {} levels, operator complexity {:.2}.\n",
            r.levels.unwrap_or(0),
            r.operator_complexity.unwrap_or(0.0)
        );
    }
    if report.ccx.is_none() && wanted("ccx") {
        table += "CalculiX (ccx) was not found: no comparison.\n";
    }
    println!("{table}");
    if let Some(p) = &args.report {
        spinetwin_core::atomic::write_bytes(p, table.as_bytes())?;
    }
    if let Some(p) = &args.json {
        crate::output::write_json(p, &report)?;
    }
    Ok(())
}

/// `fem-nl`: Neo-Hookean constants of the block (Abaqus `C10`, `D1`): small-strain shear
/// modulus `2 C10` = 2 MPa, bulk modulus `2 / D1` = 20 MPa (Poisson's ratio 0.45):
/// compressible enough that the volumetric treatment of the elements does not dominate.
const NL_C10: f64 = 1.0;
const NL_D1: f64 = 0.1;
/// `fem-nl`: nominal stretch of the block (its top face moves up by this fraction of its
/// height).
const NL_STRETCH: f64 = 0.25;
/// `fem-nl`: fixed increments.
const NL_INCREMENTS: usize = 20;

/// Writes the `fem-nl` deck: a 40 x 30 x 25 mm Tet10 block, Neo-Hookean, clamped at
/// z = 0, its top face (z = 25) held in x and y and moved up by 25 % of the height in 20
/// fixed increments (`*STEP, NLGEOM`, `*STATIC, DIRECT`), displacement printout of every
/// node. Returns (nodes, elements).
pub(crate) fn write_nl_deck(cells: [usize; 3], path: &Path) -> Result<(usize, usize)> {
    let h = 25.0;
    let mesh = box_mesh([40.0, 30.0, h], cells, Order::Quadratic)?;
    // from_model writes an elastic deck; its material is replaced below.
    let mat = LinearElastic::uniform(mesh.num_elements(), E, NU)?;
    let mut bc = Constraints::new();
    bc.fix(mesh.node_set("zmin")?, [true; 3]);
    for &n in mesh.node_set("zmax")? {
        bc.prescribe(n, 0, 0.0);
        bc.prescribe(n, 1, 0.0);
        bc.prescribe(n, 2, NL_STRETCH * h);
    }
    let mut deck = Deck::from_model(&mesh, &mat, &bc, &Loads::new())?;
    deck.heading = vec![format!(
        "spinetwin bench fem-nl: 40x30x25 mm Neo-Hookean Tet10 block, {}x{}x{} cells, stretched {} %",
        cells[0],
        cells[1],
        cells[2],
        100.0 * NL_STRETCH
    )];
    if deck.materials.len() != 1 {
        bail!("the benchmark deck should have one material");
    }
    deck.materials[0].elastic = None;
    deck.materials[0].hyperelastic = Some(Hyperelastic::NeoHooke {
        c10: NL_C10,
        d1: NL_D1,
    });
    deck.node_sets.insert(
        "NALL".into(),
        (1..=mesh.num_nodes() as u64).collect::<Vec<_>>(),
    );
    let step = &mut deck.steps[0];
    step.nlgeom = true;
    step.direct = true;
    step.max_increments = Some(NL_INCREMENTS);
    step.static_params = vec![1.0 / NL_INCREMENTS as f64, 1.0];
    step.outputs = vec!["*NODE PRINT, NSET=NALL".into(), "U".into()];
    spinetwin_core::atomic::write_bytes(path, deck.write().as_bytes())?;
    Ok((mesh.num_nodes(), mesh.num_elements()))
}

/// Newton iterations of the converged increments in ccx's `.sta` file (column ITRS of the
/// lines `STEP INC ATT ITRS TOT-TIME STEP-TIME INC-TIME`).
fn read_ccx_sta_iterations(path: &Path) -> Result<(usize, usize)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut incs, mut its) = (0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 7 && f.iter().all(|t| t.parse::<f64>().is_ok()) {
            incs += 1;
            its += f[3].parse::<usize>().unwrap_or(0);
        }
    }
    Ok((incs, its))
}

#[derive(Serialize, Debug)]
struct NlReport {
    cells: [usize; 3],
    nodes: usize,
    elements: usize,
    equations: usize,
    increments: usize,
    iterations: usize,
    wall_s: f64,
    newton_s: f64,
    assembly_s: f64,
    factorization_s: f64,
    peak_rss_mib: f64,
    ccx: Option<String>,
    ccx_increments: Option<usize>,
    ccx_iterations: Option<usize>,
    ccx_wall_s: Option<f64>,
    ccx_peak_rss_mib: Option<f64>,
    ratio: Option<f64>,
    rel_l2_vs_ccx: Option<f64>,
    cores: usize,
    build: String,
}

/// Runs `spinetwin bench fem-nl`.
pub fn run_nl(args: &Args) -> Result<()> {
    warn_if_debug();
    let cells = three_cells(&args.nl_cells, "--nl-cells", "12,9,7")?;
    let (dir, _tmp) = work_dir(&args.keep)?;
    let deck_path = dir.join("hyper.inp");
    let (nodes, elements) = write_nl_deck(cells, &deck_path)?;
    let exe = std::env::current_exe().context("locating the spinetwin executable")?;
    let out = dir.join("spinetwin");
    eprintln!("spinetwin on {} ...", deck_path.display());
    let (wall, peak) = run_measured(
        Command::new(&exe)
            .args(["fem", "run", "--no-vtu", "--out"])
            .arg(&out)
            .arg(&deck_path)
            .env("SPINETWIN_QUIET", "1"),
        "spinetwin fem run",
    )?;
    let s = read_summary(&out)?;
    let nl = s
        .nonlinear
        .as_ref()
        .context("summary.json has no nonlinear section")?;
    let ours = read_csv(&out.join("displacements.csv"))?;
    let threads = cores();
    let ccx = find_ccx();
    let mut report = NlReport {
        cells,
        nodes,
        elements,
        equations: s.dofs,
        increments: nl.steps.iter().map(|s| s.increments).sum(),
        iterations: s.iterations,
        wall_s: wall,
        newton_s: nl.seconds.total,
        assembly_s: nl.seconds.assembly,
        factorization_s: nl.seconds.factorization,
        peak_rss_mib: s.peak_rss_mib.max(peak),
        ccx: ccx.as_ref().map(|p| p.display().to_string()),
        ccx_increments: None,
        ccx_iterations: None,
        ccx_wall_s: None,
        ccx_peak_rss_mib: None,
        ratio: None,
        rel_l2_vs_ccx: None,
        cores: threads,
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
    };
    match &ccx {
        Some(ccx) => {
            eprintln!("ccx on {} ...", deck_path.display());
            let (cwall, cpeak) = run_ccx(ccx, "hyper", &dir)?;
            let theirs = read_ccx_dat(&dir.join("hyper.dat"))?;
            let (incs, its) = read_ccx_sta_iterations(&dir.join("hyper.sta"))?;
            if incs != NL_INCREMENTS {
                bail!("ccx took {incs} increments, not the {NL_INCREMENTS} of the deck (see hyper.sta in --keep)");
            }
            report.ccx_increments = Some(incs);
            report.ccx_iterations = Some(its);
            report.ccx_wall_s = Some(cwall);
            report.ccx_peak_rss_mib = Some(cpeak);
            report.ratio = Some(wall / cwall);
            report.rel_l2_vs_ccx = Some(rel_l2(&ours, &theirs)?);
        }
        None => eprintln!("{NO_CCX}"),
    }
    let r = &report;
    let opt = |v: Option<f64>, p: usize| v.map_or("-".into(), |v| format!("{v:.p$}"));
    let mut table = format!(
        "Neo-Hookean Tet10 block 40 x 30 x 25 mm, {}x{}x{} cells ({} elements, {} nodes), C10 = {NL_C10} MPa, D1 = {NL_D1} 1/MPa; \
         clamped at z = 0, top face held in x, y and moved up {} mm ({} % nominal stretch) in {NL_INCREMENTS} fixed increments (NLGEOM, *STATIC, DIRECT).\n\n\
         | equations | increments | spinetwin iterations | ccx iterations | spinetwin wall (s) | of which Newton (assembly, factorisation) (s) | ccx wall (s) | ratio spinetwin/ccx | peak RSS spinetwin / ccx (MiB) | rel. L2 diff. vs ccx |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        cells[0], cells[1], cells[2], r.elements, r.nodes, 25.0 * NL_STRETCH, 100.0 * NL_STRETCH
    );
    table += &format!(
        "| {} | {} | {} | {} | {:.2} | {:.2} ({:.2}, {:.2}) | {} | {} | {:.0} / {} | {} |\n",
        r.equations,
        r.increments,
        r.iterations,
        r.ccx_iterations.map_or("-".into(), |v| v.to_string()),
        r.wall_s,
        r.newton_s,
        r.assembly_s,
        r.factorization_s,
        opt(r.ccx_wall_s, 2),
        opt(r.ratio, 2),
        r.peak_rss_mib,
        opt(r.ccx_peak_rss_mib, 0),
        r.rel_l2_vs_ccx.map_or("-".into(), |v| format!("{v:.2e}")),
    );
    table += &format!(
        "\nWall times are whole processes (read deck, solve, write displacements; spinetwin without VTU), measured in one run. \
         ccx iterations: the converged increments' ITRS in its .sta file. Machine: {} logical cores; build: {}.\n",
        r.cores, r.build
    );
    if r.ccx.is_none() {
        table += "CalculiX (ccx) was not found: no comparison.\n";
    }
    println!("{table}");
    if let Some(p) = &args.report {
        spinetwin_core::atomic::write_bytes(p, table.as_bytes())?;
    }
    if let Some(p) = &args.json {
        crate::output::write_json(p, &report)?;
    }
    Ok(())
}
