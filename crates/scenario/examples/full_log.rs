//! Diagnostic: one scenario at the full fidelity and the Newton log of one load case
//! (increments, iterations, residuals, contact states), to see where a slow or failing
//! solve spends its iterations.
//!
//! `cargo run --release -p spinetwin-scenario --example full_log -- TWIN_DIR CT LABELS
//! SCENARIO.toml LOAD` (the twin folder from `spinetwin build`, the CT and label map it was
//! built from). `CAGE_FRICTION=1` keeps a cage's friction on deformable bone.
use spinetwin_fem::nl::SolveOptions;
use spinetwin_imaging::nifti;
use spinetwin_model::full::FullOptions;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::{Twin, TwinFile};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: full_log TWIN_DIR CT LABELS SCENARIO.toml LOAD");
        std::process::exit(2);
    }
    let file: TwinFile = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(&args[1]).join("twin.json"))
            .expect("twin.json"),
    )
    .expect("a twin file");
    let twin = Twin::build(file).expect("the twin");
    let ct = nifti::read_volume(std::path::Path::new(&args[2])).expect("the CT");
    let labels = nifti::read_labels(std::path::Path::new(&args[3])).expect("the labels");
    let text = std::fs::read_to_string(&args[4]).expect("the scenario");
    let s = spinetwin_scenario::Scenario::parse(&text, &args[4]).expect("scenario");
    let m = spinetwin_scenario::apply(&twin, &s).expect("applied");
    let case = LoadCase::parse(&args[5]).expect("load");
    // CAGE_FRICTION=1: keep a cage's friction on deformable bone (`plan --cage-friction`).
    let options = FullOptions {
        cage_friction: std::env::var("CAGE_FRICTION").is_ok(),
        ..Default::default()
    };
    let bones = m
        .twin
        .deformable_bones_with_cement(&ct, &labels, &options, &m.cemented)
        .expect("bones");
    let (model, index, _) = m
        .twin
        .fem_model_full(&case, &bones, &options)
        .expect("model");
    let t = std::time::Instant::now();
    let r = spinetwin_fem::nl::solve(&model, &SolveOptions::default()).expect("solve");
    println!(
        "{} {}: converged {} it {} {:.1}s ({} equations; factorisations {:?})",
        s.name,
        args[5],
        r.converged,
        r.iterations,
        t.elapsed().as_secs_f64(),
        r.num_equations,
        r.factorizations
    );
    for st in &r.steps {
        println!("step {} converged {}", st.name, st.converged);
        for inc in &st.increments {
            println!("  {inc}");
        }
        if let Some(state) = &st.state {
            for bc in &index.block_contacts {
                let c = &state.contacts[bc.pair];
                println!(
                    "  cage pair {} ({}): {} active, normal {:.1} N, friction {:.1} N, {} sliding",
                    bc.pair,
                    if bc.upper { "upper" } else { "lower" },
                    c.active_points,
                    c.normal_force,
                    c.friction_force,
                    c.sliding_points
                );
            }
        }
    }
}
