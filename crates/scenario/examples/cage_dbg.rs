//! Diagnostic: the Newton log of one pure-moment case of a scenario on a twin, with the
//! state of every disc block in contact (its pose, and per endplate the points in contact,
//! the normal and friction forces) at each recorded load factor.
//!
//! ```text
//! cargo run --release -p spinetwin-scenario --example cage_dbg -- TWIN.json SCEN.toml MOTION [N_M]
//! ```
//!
//! `MOTION`: f (flexion), e (extension), ll / lr (lateral bending left / right), al / ar
//! (axial rotation left / right), s (standing: the follower load alone). `CAGE_RECORD=1`
//! records the state every 0.05 of the last step (which shortens its increments). Environment overrides for experiments on the FE model
//! (never needed for a normal run): `CAGE_MU` (friction), `CAGE_PEN` (factor on the
//! contact penalty), `CAGE_HOLD` (factor on the holding bars' stiffness), `CAGE_SEAT`
//! (seating, mm), `CAGE_INIT` (first increment of the moment step).

use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{Twin, TwinFile};

fn env(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: cage_dbg TWIN.json SCENARIO.toml f|e|ll|lr|al|ar|s [moment N m]");
        std::process::exit(2);
    }
    let file: TwinFile =
        serde_json::from_slice(&std::fs::read(&a[1]).expect("twin file")).expect("twin JSON");
    let twin = Twin::build(file).expect("twin");
    let text = std::fs::read_to_string(&a[2]).expect("scenario file");
    let sc = spinetwin_scenario::Scenario::parse(&text, &a[2]).expect("scenario");
    let m = spinetwin_scenario::apply(&twin, &sc).expect("apply");
    let motion = match a[3].as_str() {
        "f" => Motion::Flexion,
        "e" => Motion::Extension,
        "ll" => Motion::LateralBendingLeft,
        "lr" => Motion::LateralBendingRight,
        "al" => Motion::AxialRotationLeft,
        "ar" => Motion::AxialRotationRight,
        "s" => Motion::Flexion,
        other => panic!("unknown motion {other}"),
    };
    let nm: f64 = a.get(4).map_or(7.5, |v| v.parse().expect("moment"));
    let case = if a[3] == "s" {
        LoadCase::standing()
    } else {
        LoadCase::pure_moment(motion, nm, 0.0)
    };
    let (mut model, index) = m.twin.fem_model(&case).expect("model");
    let blocks = &index.block_contacts;
    for bc in blocks {
        let c = &mut model.contacts[bc.pair];
        if let Some(mu) = env("CAGE_MU") {
            c.friction = mu;
        }
        if let Some(f) = env("CAGE_PEN") {
            c.penalty *= f;
        }
        if let Some(s) = env("CAGE_SEAT") {
            c.clearance = s;
        }
    }
    if let Some(f) = env("CAGE_HOLD") {
        for s in model
            .springs
            .iter_mut()
            .filter(|s| s.name.ends_with(" hold"))
        {
            if let spinetwin_fem::nl::SpringLaw::Truss { k } = &mut s.law {
                *k *= f;
            }
        }
    }
    let last = model.steps.len() - 1;
    if let Some(v) = env("CAGE_INIT") {
        model.steps[last].increments.initial = v;
    }
    // Recording shortens the increments to land on the record points: only on request.
    if std::env::var("CAGE_RECORD").is_ok() {
        model.steps[last].record_at = (1..20).map(|k| k as f64 * 0.05).collect();
    }
    for bc in blocks {
        let c = &model.contacts[bc.pair];
        println!(
            "pair {} '{}': {} slave points, area {:.1} mm^2, penalty {:.1} MPa/mm, clearance {} mm, friction {}",
            bc.pair,
            c.name,
            c.slave.len(),
            c.slave_area.iter().sum::<f64>(),
            c.penalty,
            c.clearance,
            c.friction
        );
    }
    let t = std::time::Instant::now();
    let r = spinetwin_fem::nl::solve(&model, &Default::default()).expect("solve");
    println!(
        "converged {} {:?}: {} iterations, {:.1} s",
        r.converged,
        r.failure,
        r.iterations,
        t.elapsed().as_secs_f64()
    );
    let s = &r.steps[last.min(r.steps.len() - 1)];
    for inc in &s.increments {
        println!("  {inc:#}");
    }
    let states = s
        .records
        .iter()
        .map(|(f, st)| (*f, st))
        .chain(s.state.iter().map(|st| (1.0, st)));
    for (f, st) in states {
        let mut line = format!("  lam {f:.2}:");
        for (k, b) in model.bodies.iter().enumerate() {
            let bs = &st.bodies[k];
            let rv = bs.rotation_vector.map(f64::to_degrees);
            line += &format!(
                " | {} u [{:.3} {:.3} {:.3}] rot [{:.2} {:.2} {:.2}] deg",
                b.name,
                bs.translation[0],
                bs.translation[1],
                bs.translation[2],
                rv[0],
                rv[1],
                rv[2]
            );
        }
        println!("{line}");
        for bc in blocks {
            let c = &st.contacts[bc.pair];
            println!(
                "    {}: {} in contact ({} sliding), normal {:.1} N, friction {:.1} N",
                model.contacts[bc.pair].name,
                c.active_points,
                c.sliding_points,
                c.normal_force,
                c.friction_force
            );
        }
    }
}
