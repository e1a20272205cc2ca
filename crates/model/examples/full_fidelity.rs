//! Hybrid against full fidelity on the default phantom, for one load case (first argument,
//! default flexion:7.5Nm): `cargo run --release -p spinetwin-model --example full_fidelity`.
//! LEVELS=L2,L3,L4,L5,S1 (default) picks the vertebrae, SPACING the element size (mm,
//! default 2; the library's default is 3), STIFF a factor on every bone modulus, ONLY_MESH=1 stops after printing the
//! moduli, DEBUG=1 prints the Newton log of the full solve instead of the comparison.
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::full::FullOptions;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::{Fidelity, Twin, TwinFile, TwinParams, TWIN_SCHEMA_VERSION};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = LoadCase::parse(args.get(1).map_or("flexion:7.5Nm", |s| s.as_str())).unwrap();
    let ph = spinetwin_phantom::generate(&Default::default()).unwrap();
    let labels = spinetwin_segment::segment(&ph.ct, &Default::default())
        .unwrap()
        .labels;
    let mut lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &labels).unwrap();
    let names: Vec<String> = std::env::var("LEVELS")
        .unwrap_or("L2,L3,L4,L5,S1".into())
        .split(',')
        .map(String::from)
        .collect();
    lm.vertebrae
        .retain(|v| names.contains(&v.level.name().to_string()));
    lm.discs.retain(|d| {
        names.contains(&d.upper.name().to_string()) && names.contains(&d.lower.name().to_string())
    });
    let twin = Twin::build(TwinFile {
        schema_version: TWIN_SCHEMA_VERSION,
        fidelity: Fidelity::Hybrid,
        source: "phantom".into(),
        pseudonym: String::new(),
        params: TwinParams::default(),
        landmarks: lm,
    })
    .unwrap();
    let spacing: f64 = std::env::var("SPACING").map_or(2.0, |s| s.parse().unwrap());
    let fo = FullOptions {
        spacing_mm: spacing,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let mut bones = twin.deformable_bones(&ph.ct, &labels, &fo).unwrap();
    if let Ok(f) = std::env::var("STIFF") {
        let f: f64 = f.parse().unwrap();
        for b in &mut bones {
            b.youngs.iter_mut().for_each(|e| *e *= f);
        }
    }
    println!(
        "meshed {} vertebrae, {} elements in {:.1} s",
        bones.len(),
        bones.iter().map(|b| b.mesh.num_elements()).sum::<usize>(),
        t.elapsed().as_secs_f64()
    );
    for b in &bones {
        for (label, name) in [(1u16, "body"), (2, "posterior")] {
            let mut e: Vec<f64> = b
                .youngs
                .iter()
                .zip(&b.element_label)
                .filter(|(_, &l)| l == label)
                .map(|(e, _)| *e)
                .collect();
            e.sort_by(f64::total_cmp);
            if e.is_empty() {
                continue;
            }
            println!(
                "  {} {name}: {} elements, modulus median {:.0} MPa, 90th percentile {:.0} MPa",
                twin.levels[b.body].name(),
                e.len(),
                e[e.len() / 2],
                e[e.len() * 9 / 10]
            );
        }
    }
    if std::env::var("ONLY_MESH").is_ok() {
        return;
    }
    if std::env::var("DEBUG").is_ok() {
        let (model, _, _) = twin.fem_model_full(&case, &bones, &fo).unwrap();
        let r = spinetwin_fem::nl::solve(&model, &SolveOptions::default()).unwrap();
        for st in &r.steps {
            for inc in &st.increments {
                println!(
                    "{} {:.4}->{:.4} conv {} maxres {:.3e} res {:.2e} ls {:.2?} {:?}",
                    st.name,
                    inc.from,
                    inc.to,
                    inc.converged,
                    inc.residuals.iter().copied().fold(0.0, f64::max),
                    inc.residuals.last().copied().unwrap_or(0.0),
                    inc.step_lengths,
                    inc.failure
                );
            }
        }
        return;
    }
    let hyb = twin.simulate(&case, &SolveOptions::default()).unwrap();
    let full = twin
        .simulate_full(&case, &bones, &fo, &SolveOptions::default())
        .unwrap();
    for (name, r) in [("hybrid", &hyb), ("full", &full)] {
        println!(
            "{name}: converged {} ({:?}), {} iterations, {} equations, {:.1} s",
            r.converged, r.failure, r.iterations, r.equations, r.seconds
        );
        if let Some(s) = r.samples.last() {
            for g in &s.segments {
                println!(
                    "  {}-{}: rot {:.2?} deg, IDP {:.3} MPa, facets {:?} N",
                    g.upper.name(),
                    g.lower.name(),
                    g.rotation_deg,
                    g.idp_mpa,
                    g.facet_force_n
                );
            }
            for b in &s.bone_stress {
                println!("  {b:?}");
            }
        }
    }
}
