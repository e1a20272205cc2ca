//! Diagnostic: solve one load case on the phantom twin (or a validation specimen) and print
//! the Newton log (residuals and line-search step lengths per increment) and the phase times.
//!
//! `cargo run --release -p spinetwin-model --example newton_log -- [full|disc_only_l4l5|intact_segment_l4l5] [LOAD]`
//! with optional environment variables NOFACET=1, NOLIG=1, NOCL=1 (no capsular ligaments),
//! GOEL=1, EXTRAPOLATE=1, LEVELS=L3,L4,L5, NUCSHIFT=x (nucleus posterior shift), NUCNU=nu
//! (nucleus Poisson's ratio), ANNU=nu (annulus ground substance Poisson's ratio), TOLDISP=x (Newton displacement tolerance of the logged solve),
//! CLLEN=1 (print the capsule fibres), SLEEVE=insertion,recess (the sleeve capsule, mm),
//! STOPS=1 (bony stops where the landmarks have them),
//! TWIN_CACHE=path (default /tmp/newton_log_twin.json; delete it after a landmark change),
//! REFLABELS=1 (when building the cache) and MASK=label map (build the cache from a real
//! segmentation instead of the phantom; only when the cache file does not exist yet). The
//! disc materials are always today's defaults, whatever the cache was built with.
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::*;
use spinetwin_model::validate::specimen;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exp = args.get(1).cloned().unwrap_or("disc_only_l4l5".into());
    let load = args.get(2).cloned().unwrap_or("flexion:1Nm".into());
    // The twin is cached (built from the default phantom's automatic segmentation); TWIN_CACHE
    // picks another cache file, e.g. one built before a landmark change.
    let cache_path = std::env::var("TWIN_CACHE").unwrap_or("/tmp/newton_log_twin.json".into());
    let cache = std::path::Path::new(&cache_path);
    let file: TwinFile = if cache.exists() {
        serde_json::from_str(&std::fs::read_to_string(cache).unwrap()).unwrap()
    } else {
        let spec = spinetwin_phantom::PhantomSpec::default();
        let mut ph = spinetwin_phantom::generate(&spec).unwrap();
        // MASK=label map (NIfTI, VerSe numbering): landmarks of that real anatomy instead,
        // from a CT made up from the mask (bone 400 HU, the rest 0).
        if let Ok(m) = std::env::var("MASK") {
            let labels = spinetwin_imaging::nifti::read_labels(std::path::Path::new(&m)).unwrap();
            ph.ct = labels.map(|v| if v > 0 { 400.0f32 } else { 0.0 });
            ph.labels = labels;
            std::env::set_var("REFLABELS", "1");
        }
        // REFLABELS=1: landmarks from the phantom's reference label map instead of the
        // automatic segmentation (separates landmark errors from segmentation errors).
        let labels = if std::env::var("REFLABELS").is_ok() {
            ph.labels.clone()
        } else {
            spinetwin_segment::segment(&ph.ct, &Default::default())
                .unwrap()
                .labels
        };
        let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &labels).unwrap();
        let f = TwinFile {
            schema_version: TWIN_SCHEMA_VERSION,
            fidelity: Fidelity::Hybrid,
            source: "dbg".into(),
            pseudonym: String::new(),
            params: TwinParams::default(),
            landmarks: lm,
        };
        std::fs::write(cache, serde_json::to_string(&f).unwrap()).unwrap();
        f
    };
    let mut file = file;
    file.params.disc_materials = Default::default();
    if std::env::var("NOFACET").is_ok() {
        file.params.without_facets = true;
    }
    if let Ok(v) = std::env::var("NUCSHIFT") {
        file.params.disc_mesh.nucleus_posterior_shift = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("NUCNU") {
        let m = &mut file.params.disc_materials;
        m.nucleus_bulk = spinetwin_model::material::bulk_for_poisson(
            2.0 * (m.nucleus_c10 + m.nucleus_c01),
            v.parse().unwrap(),
        );
    }
    if let Ok(v) = std::env::var("ANNU") {
        let m = &mut file.params.disc_materials;
        m.annulus_bulk =
            spinetwin_model::material::bulk_for_poisson(2.0 * m.annulus_c10, v.parse().unwrap());
    }
    if std::env::var("GOEL").is_ok() {
        file.params.ligaments.set = spinetwin_model::ligament::LigamentSet::GoelBilinear;
    }
    if let Ok(v) = std::env::var("SLEEVE") {
        // SLEEVE=insertion,recess (mm)
        let (i, r) = v.split_once(',').unwrap();
        file.params.ligaments.capsule = spinetwin_model::ligament::CapsuleModel::Sleeve {
            insertion_mm: i.parse().unwrap(),
            recess_mm: r.parse().unwrap(),
        };
    }
    if std::env::var("STOPS").is_ok() {
        file.params.bony_stops = true;
    }
    if std::env::var("NOCL").is_ok() {
        file.params
            .without_ligaments
            .push(spinetwin_model::ligament::Ligament::Cl);
    }
    if std::env::var("NOLIG").is_ok() {
        file.params.without_ligaments = spinetwin_model::ligament::Ligament::ALL.to_vec();
    }
    if let Ok(l) = std::env::var("LEVELS") {
        let names: Vec<String> = l.split(',').map(|s| s.to_string()).collect();
        file.landmarks
            .vertebrae
            .retain(|v| names.contains(&v.level.name().to_string()));
        file.landmarks.discs.retain(|d| {
            names.contains(&d.upper.name().to_string())
                && names.contains(&d.lower.name().to_string())
        });
    }
    let twin = if exp == "full" {
        Twin::build(file).unwrap()
    } else {
        specimen(&file, &exp).unwrap()
    };
    if std::env::var("CLLEN").is_ok() {
        for f in twin.fibres.iter().filter(|f| f.ligament.name() == "CL") {
            let d: f64 = (0..3)
                .map(|k| (f.ends[0][k] - f.ends[1][k]).powi(2))
                .sum::<f64>()
                .sqrt();
            println!(
                "CL {} length {d:.2} a {:.1?} b {:.1?}",
                f.spring.name, f.ends[0], f.ends[1]
            );
        }
    }
    for f in &twin.facets {
        println!(
            "{:?} {} side {} js {:.2} clr {:.2} nslave {} pen {:.1} normal {:.2?} dropped {}",
            f.kind,
            f.upper,
            f.side,
            f.geometry.joint_space_mm,
            f.geometry.clearance_mm,
            f.geometry.slave.len(),
            f.geometry.penalty,
            f.geometry.normal,
            f.geometry.dropped_points
        );
    }
    let case = LoadCase::parse(&load).unwrap();
    let (model, _) = twin.fem_model(&case).unwrap();
    println!(
        "nodes {} elems {} springs {} contacts {}",
        model.mesh.nodes.len(),
        model.mesh.num_elements(),
        model.springs.len(),
        model.contacts.len()
    );
    let t = std::time::Instant::now();
    let opts = SolveOptions {
        extrapolate: std::env::var("EXTRAPOLATE").is_ok(),
        tol_displacement: std::env::var("TOLDISP").map_or(1e-4, |v| v.parse().unwrap()),
        ..Default::default()
    };
    let r = spinetwin_fem::nl::solve(&model, &opts).unwrap();
    println!(
        "converged {} {:?} eq {} it {} {:.1}s",
        r.converged,
        r.failure,
        r.num_equations,
        r.iterations,
        t.elapsed().as_secs_f64()
    );
    println!("{:?}", r.timings);
    println!("{:?}", r.factorizations);
    for s in &r.steps {
        println!("step {} conv {}", s.name, s.converged);
        for inc in &s.increments {
            println!("  {inc:#}");
        }
        if let Some(st) = &s.state {
            for b in &st.bodies {
                println!("  body t {:?} rv {:?}", b.translation, b.rotation_vector);
            }
        }
    }
    let res = twin.simulate(&case, &SolveOptions::default()).unwrap();
    if let Some(l) = res.last() {
        for s in &l.segments {
            println!("{:?}", s);
        }
    }
}
