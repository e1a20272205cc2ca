//! Diagnostic: apply one scenario file to the phantom twin cached by the model crate's
//! `newton_log` example (/tmp/newton_log_twin.json; run that first) and print the Newton
//! log of one load case: increments, iterations and residuals.
//!
//! `cargo run --release -p spinetwin-scenario --example scenario_log -- SCENARIO.toml LOAD`
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::{Twin, TwinFile};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("a scenario file");
    let load = args.get(2).cloned().unwrap_or("flexion:7.5Nm".into());
    let cache = std::env::var("TWIN_CACHE").unwrap_or("/tmp/newton_log_twin.json".into());
    let mut file: TwinFile =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("the cached twin")).unwrap();
    // The cache keeps the materials it was built with; use today's defaults.
    file.params.disc_materials = Default::default();
    let twin = Twin::build(file).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let s = spinetwin_scenario::Scenario::parse(&text, path).unwrap();
    let m = spinetwin_scenario::apply(&twin, &s).unwrap();
    let case = LoadCase::parse(&load).unwrap();
    let (model, _) = m.twin.fem_model(&case).unwrap();
    let t = std::time::Instant::now();
    // LU=1: always the general sparse LU (to tell a linear-solver inaccuracy from a tangent
    // one when Newton converges slowly).
    let opts = SolveOptions {
        linear_solver: if std::env::var("LU").is_ok() {
            spinetwin_fem::nl::LinearSolver::Lu
        } else {
            Default::default()
        },
        ..Default::default()
    };
    let r = spinetwin_fem::nl::solve(&model, &opts).unwrap();
    println!(
        "{} {load}: converged {} it {} {:.1}s; factorisations {:?}",
        s.name,
        r.converged,
        r.iterations,
        t.elapsed().as_secs_f64(),
        r.factorizations
    );
    for st in &r.steps {
        for inc in &st.increments {
            println!("  {inc:#}");
        }
    }
}
