//! Diagnostic: the disc-only L4-L5 specimen under the four Heuer motions, with the disc
//! parameters overridden from the environment, printing per motion the moment-rotation curve,
//! the nucleus pressure, the nucleus volume change, the axial translation of the upper
//! endplate and the fibre stretches of the annulus at the largest moment.
//!
//! `cargo run --release -p spinetwin-model --example disc_study -- [disc_only_l4l5|intact_segment_l4l5]`
//! Environment: MOTIONS=flexion,extension,... FOLLOWER=N, STANDING=1; VALIDATE=1 runs the
//! whole validation table instead; disc overrides NU_ANN, C10, K1, K2, KAPPA, ANGLE, NUCFRAC,
//! NUCSHIFT, NLAYERS, NANN and FIBRES=isochoric|full (the fibre invariants).
//! The phantom's landmarks are cached in /tmp/disc_study_twin.json; the parameters always
//! start from the current defaults.
use nalgebra::{Matrix3, Vector3};
use spinetwin_fem::nl::SolveOptions;
use spinetwin_fem::Mesh;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::material::bulk_for_poisson;
use spinetwin_model::twin::*;
use spinetwin_model::validate::specimen;

fn env(name: &str) -> Option<f64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap())
}

/// Deformation gradient at natural point `p` of element `e` (displacements `u` per node).
fn grad(mesh: &Mesh, u: &[[f64; 3]], e: usize, p: [f64; 3]) -> Matrix3<f64> {
    let kind = mesh.kinds[e];
    let (_, dn) = kind.shape(p);
    let (mut jx, mut jx0) = (Matrix3::zeros(), Matrix3::zeros());
    for (a, &n) in mesh.element_nodes(e).iter().enumerate() {
        let x0 = Vector3::from(mesh.nodes[n]);
        let x = x0 + Vector3::from(u[n]);
        let d = Vector3::from(dn[a]);
        jx += x * d.transpose();
        jx0 += x0 * d.transpose();
    }
    jx * jx0.try_inverse().unwrap()
}

fn volume(mesh: &Mesh, u: Option<&[[f64; 3]]>, e: usize) -> f64 {
    let kind = mesh.kinds[e];
    kind.quadrature()
        .iter()
        .map(|&(p, w)| {
            let (_, dn) = kind.shape(p);
            let mut j = Matrix3::zeros();
            for (a, &n) in mesh.element_nodes(e).iter().enumerate() {
                let mut x = Vector3::from(mesh.nodes[n]);
                if let Some(u) = u {
                    x += Vector3::from(u[n]);
                }
                j += x * Vector3::from(dn[a]).transpose();
            }
            w * j.determinant()
        })
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exp = args.get(1).cloned().unwrap_or("disc_only_l4l5".into());
    let cache = std::path::Path::new("/tmp/disc_study_twin.json");
    let mut file: TwinFile = if cache.exists() {
        serde_json::from_str(&std::fs::read_to_string(cache).unwrap()).unwrap()
    } else {
        let ph = spinetwin_phantom::generate(&Default::default()).unwrap();
        let labels = spinetwin_segment::segment(&ph.ct, &Default::default())
            .unwrap()
            .labels;
        let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &labels).unwrap();
        let f = TwinFile {
            schema_version: TWIN_SCHEMA_VERSION,
            fidelity: Fidelity::Hybrid,
            source: "disc_study".into(),
            pseudonym: String::new(),
            params: TwinParams::default(),
            landmarks: lm,
        };
        std::fs::write(cache, serde_json::to_string(&f).unwrap()).unwrap();
        f
    };
    file.params = TwinParams::default();
    let m = &mut file.params.disc_materials;
    if let Some(v) = env("C10") {
        m.annulus_c10 = v;
    }
    if let Some(v) = env("NU_ANN") {
        m.annulus_bulk = bulk_for_poisson(2.0 * m.annulus_c10, v);
    }
    match std::env::var("FIBRES").as_deref() {
        Ok("isochoric") => m.fibre_full_invariants = false,
        Ok("full") => m.fibre_full_invariants = true,
        Ok(other) => panic!("FIBRES={other}: isochoric or full"),
        Err(_) => {}
    }
    if let Some(v) = env("K1") {
        m.fibre_k1 = v;
    }
    if let Some(v) = env("K2") {
        m.fibre_k2 = v;
    }
    if let Some(v) = env("KAPPA") {
        m.fibre_kappa = v;
    }
    let dm = &mut file.params.disc_mesh;
    if let Some(v) = env("ANGLE") {
        dm.fibre_angle_deg = v;
    }
    if let Some(v) = env("NUCFRAC") {
        dm.nucleus_area_fraction = v;
    }
    if let Some(v) = env("NUCSHIFT") {
        dm.nucleus_posterior_shift = v;
    }
    if let Some(v) = env("NLAYERS") {
        dm.n_layers = v as usize;
    }
    if let Some(v) = env("NANN") {
        dm.n_radial_annulus = v as usize;
    }
    println!("params {:?}", file.params.disc_materials);
    if std::env::var("VALIDATE").is_ok() {
        let (rows, stats) =
            spinetwin_model::validate::validate(&file, &SolveOptions::default(), |_, _, _| {})
                .unwrap();
        for r in &rows {
            println!(
                "{:>18} {:>8.3} band {:>6.2}..{:<6.2} {}",
                r.target.id,
                r.predicted.unwrap_or(f64::NAN),
                r.band[0],
                r.band[1],
                if r.pass { "pass" } else { "FAIL" }
            );
        }
        println!(
            "PASS {}/{} ({} of {} converged, {} it)",
            rows.iter().filter(|r| r.pass).count(),
            rows.len(),
            stats.converged,
            stats.cases,
            stats.iterations
        );
        return;
    }
    println!("mesh {:?}", file.params.disc_mesh);
    let twin = specimen(&file, &exp).unwrap();
    let d = &twin.discs[0].mesh;
    println!(
        "disc: height ant/centre/post {:.2}/{:.2}/{:.2} mm, area {:.0} mm2, nucleus {:.0} mm2 ({:.2}), volume {:.0} mm3, elements {}",
        d.height_mm[0],
        d.height_mm[1],
        d.height_mm[2],
        d.disc_area_mm2,
        d.nucleus_area_mm2,
        d.nucleus_area_mm2 / d.disc_area_mm2,
        d.volume_mm3,
        d.mesh.num_elements()
    );
    let motions: Vec<String> = std::env::var("MOTIONS")
        .unwrap_or("flexion,extension,lateral_bending_left,axial_rotation_left".into())
        .split(',')
        .map(String::from)
        .collect();
    let follower = env("FOLLOWER").unwrap_or(0.0);
    let mut cases: Vec<LoadCase> = motions
        .iter()
        .map(|n| {
            let m = *Motion::ALL.iter().find(|m| m.name() == n).unwrap();
            LoadCase::pure_moment(m, 7.5, follower)
        })
        .collect();
    if std::env::var("STANDING").is_ok() {
        cases.push(LoadCase::standing());
    }
    let mesh = &d.mesh;
    let axis = Vector3::from(d.axis);
    let ant = {
        let a = Vector3::new(0.0, -1.0, 0.0);
        (a - axis * a.dot(&axis)).normalize()
    };
    let centre = d
        .upper_nodes
        .iter()
        .map(|&n| Vector3::from(mesh.nodes[n]))
        .sum::<Vector3<f64>>()
        / d.upper_nodes.len() as f64;
    let ecentre = |e: usize| {
        let nn = mesh.element_nodes(e);
        nn.iter()
            .map(|&n| Vector3::from(mesh.nodes[n]))
            .sum::<Vector3<f64>>()
            / nn.len() as f64
    };
    // Fibre angle check on the reference mesh: angle of each family to the transverse plane.
    let ang: Vec<f64> = d
        .fibre_directions
        .iter()
        .flat_map(|f| {
            f.iter()
                .map(|a| Vector3::from(*a).dot(&axis).asin().to_degrees())
        })
        .collect();
    println!(
        "fibre angles to the transverse plane: min {:.1} max {:.1} mean |.| {:.1} deg",
        ang.iter().cloned().fold(f64::MAX, f64::min),
        ang.iter().cloned().fold(f64::MIN, f64::max),
        ang.iter().map(|a| a.abs()).sum::<f64>() / ang.len() as f64
    );
    let kappa = file.params.disc_materials.fibre_kappa;
    let v0n: f64 = d
        .nucleus_elements
        .iter()
        .map(|&e| volume(mesh, None, e))
        .sum();
    for case in &cases {
        let t0 = std::time::Instant::now();
        let r = twin.simulate(case, &SolveOptions::default()).unwrap();
        if !r.converged {
            println!("{}: NOT CONVERGED {:?}", case.name, r.failure);
            continue;
        }
        let (ax, sign) = case.moment.map(|(m, _)| m.axis_sign()).unwrap_or((0, 1.0));
        let mut line = format!("{:>22}:", case.name);
        for s in &r.samples {
            let seg = &s.segments[0];
            line += &format!(
                " {}Nm rom {:.2} idp {:.3} dh {:.3};",
                s.moment_nm,
                seg.rotation_deg[ax] * sign,
                seg.idp_mpa,
                seg.disc_height_change_mm
            );
        }
        println!(
            "{line} ({} it, {:.1}s)",
            r.iterations,
            t0.elapsed().as_secs_f64()
        );
        let def = r.deformed.as_ref().unwrap();
        let u = &def.disc_displacements[0];
        let v1n: f64 = d
            .nucleus_elements
            .iter()
            .map(|&e| volume(mesh, Some(u), e))
            .sum();
        // Axial displacement of the upper endplate fitted as a + b s (s anterior).
        let (mut s1, mut s2, mut u1, mut su) = (0.0, 0.0, 0.0, 0.0);
        let nm = d.upper_nodes.len() as f64;
        for &n in &d.upper_nodes {
            let s = (Vector3::from(mesh.nodes[n]) - centre).dot(&ant);
            let ua = Vector3::from(u[n]).dot(&axis);
            s1 += s;
            s2 += s * s;
            u1 += ua;
            su += s * ua;
        }
        let b = (nm * su - s1 * u1) / (nm * s2 - s1 * s1);
        let a = (u1 - b * s1) / nm;
        // Fibre stretches by region (outer/inner lamella, anterior/posterior).
        let nlam = d.lamella.iter().max().unwrap() + 1;
        let mut stats =
            std::collections::BTreeMap::<String, (f64, f64, usize, usize, f64, usize)>::new();
        for (k, &e) in d.annulus_elements.iter().enumerate() {
            let f = grad(mesh, u, e, mesh.kinds[e].centroid());
            let j = f.determinant();
            let c = f.transpose() * f;
            let i1b = j.powf(-2.0 / 3.0) * c.trace();
            let s = (ecentre(e) - centre).dot(&ant);
            let lat = (ecentre(e) - centre).cross(&axis).dot(&ant).abs();
            let region = if lat > s.abs() {
                "lat"
            } else if s > 0.0 {
                "ant"
            } else {
                "post"
            };
            let layer = if d.lamella[k] == nlam - 1 {
                "outer"
            } else if d.lamella[k] == 0 {
                "inner"
            } else {
                "mid"
            };
            let key = format!("{region}-{layer}");
            let ent = stats.entry(key).or_insert((f64::MIN, 0.0, 0, 0, 0.0, 0));
            ent.4 += j;
            ent.5 += 1;
            for a in d.fibre_directions[k] {
                let a = Vector3::from(a);
                let i4 = (a.transpose() * c * a)[0];
                let lam = i4.sqrt() - 1.0;
                let istar = kappa * i1b + (1.0 - 3.0 * kappa) * j.powf(-2.0 / 3.0) * i4;
                ent.0 = ent.0.max(lam);
                ent.1 += lam;
                ent.2 += 1;
                ent.3 += (istar > 1.0) as usize;
            }
        }
        println!(
            "    nucleus J {:.4} (V {:.0} -> {:.0} mm3); upper endplate axial u = {:.3} + {:.4} s mm (neutral axis {:.1} mm anterior)",
            v1n / v0n,
            v0n,
            v1n,
            a,
            b,
            -a / b
        );
        let mut l = String::from("    fibre strain max/mean (tension share):");
        for (k, v) in &stats {
            l += &format!(
                " {k} {:.3}/{:.3} ({:.0}%) J {:.3};",
                v.0,
                v.1 / v.2 as f64,
                100.0 * v.3 as f64 / v.2 as f64,
                v.4 / v.5 as f64
            );
        }
        println!("{l}");
    }
}
