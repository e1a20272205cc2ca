//! Diagnostic: where a loaded disc turns and what its nucleus does. Solves one load case on a
//! validation specimen and prints, per disc: the axial displacement of the upper endplate
//! fitted as `a + b y` over its anterior-posterior coordinate (the neutral axis `-a/b`
//! against the nucleus centroid), the nucleus volume change and mean pressure, and the mean
//! axial stress of the annulus in its anterior and posterior halves.
//!
//! `cargo run --release -p spinetwin-model --example disc_probe -- [disc_only_l4l5|intact_segment_l4l5] [LOAD]`
use nalgebra::Vector3;
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::*;
use spinetwin_model::validate::specimen;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exp = args.get(1).cloned().unwrap_or("disc_only_l4l5".into());
    let load = args.get(2).cloned().unwrap_or("flexion:7.5Nm".into());
    let cache = std::path::Path::new("/tmp/phantom_twin.json");
    let file: TwinFile = serde_json::from_str(
        &std::fs::read_to_string(cache).expect("run the newton_log example once first"),
    )
    .unwrap();
    let twin = specimen(&file, &exp).unwrap();
    let case = LoadCase::parse(&load).unwrap();
    let (model, index) = twin.fem_model(&case).unwrap();
    let r = spinetwin_fem::nl::solve(&model, &SolveOptions::default()).unwrap();
    println!("converged {} iterations {}", r.converged, r.iterations);
    let st = r.steps.last().and_then(|s| s.state.as_ref()).unwrap();
    let mesh = &model.mesh;
    let x0 = |n: usize| Vector3::from(mesh.nodes[n]);
    let x = |n: usize| x0(n) + Vector3::from(st.displacements[n]);
    for (d, di) in twin.discs.iter().zip(&index.discs) {
        let axis = Vector3::from(d.mesh.axis).normalize();
        // Anterior direction: patient anterior (-y in LPS) made normal to the axis.
        let ant = {
            let a = Vector3::new(0.0, -1.0, 0.0);
            (a - axis * a.dot(&axis)).normalize()
        };
        let centre = di.upper_nodes.iter().map(|&n| x0(n)).sum::<Vector3<f64>>()
            / di.upper_nodes.len() as f64;
        // Least squares u_axial = a + b s over the upper endplate nodes.
        let (mut s1, mut s2, mut u1, mut su) = (0.0, 0.0, 0.0, 0.0);
        let m = di.upper_nodes.len() as f64;
        for &n in &di.upper_nodes {
            let s = (x0(n) - centre).dot(&ant);
            let u = (x(n) - x0(n)).dot(&axis);
            s1 += s;
            s2 += s * s;
            u1 += u;
            su += s * u;
        }
        let b = (m * su - s1 * u1) / (m * s2 - s1 * s1);
        let a = (u1 - b * s1) / m;
        let depth = di
            .upper_nodes
            .iter()
            .map(|&n| (x0(n) - centre).dot(&ant))
            .fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
        let elem_centre = |e: usize| {
            let nn = mesh.element_nodes(e);
            nn.iter().map(|&n| x0(n)).sum::<Vector3<f64>>() / nn.len() as f64
        };
        let nuc_c = di
            .nucleus
            .iter()
            .map(|&e| (elem_centre(e) - centre).dot(&ant))
            .sum::<f64>()
            / di.nucleus.len() as f64;
        let p: f64 = di
            .nucleus
            .iter()
            .map(|&e| {
                -(st.element_stress[e][0] + st.element_stress[e][1] + st.element_stress[e][2]) / 3.0
            })
            .sum::<f64>()
            / di.nucleus.len() as f64;
        let vol = |e: usize, cur: bool| {
            let kind = mesh.kinds[e];
            let xs: Vec<Vector3<f64>> = mesh
                .element_nodes(e)
                .iter()
                .map(|&n| if cur { x(n) } else { x0(n) })
                .collect();
            kind.quadrature()
                .iter()
                .map(|&(q, w)| {
                    let (_, dn) = kind.shape(q);
                    let mut j = nalgebra::Matrix3::<f64>::zeros();
                    for (a, xa) in xs.iter().enumerate() {
                        for r in 0..3 {
                            for c in 0..3 {
                                j[(r, c)] += xa[r] * dn[a][c];
                            }
                        }
                    }
                    w * j.determinant()
                })
                .sum::<f64>()
        };
        let v0: f64 = di.nucleus.iter().map(|&e| vol(e, false)).sum();
        let v1: f64 = di.nucleus.iter().map(|&e| vol(e, true)).sum();
        println!("nucleus volume {v0:.1} -> {v1:.1} mm3 (J {:.5})", v1 / v0);
        // Mean axial Cauchy stress n.sigma.n of the annulus halves (Voigt order of `fem::continuum::voigt_to_matrix`: xx yy zz xy xz yz).
        let axial = |s: &[f64; 6]| {
            let n = axis;
            s[0] * n.x * n.x
                + s[1] * n.y * n.y
                + s[2] * n.z * n.z
                + 2.0 * (s[3] * n.x * n.y + s[4] * n.x * n.z + s[5] * n.y * n.z)
        };
        let (mut sa, mut na, mut sp, mut np) = (0.0, 0, 0.0, 0);
        let nuc: std::collections::HashSet<usize> = di.nucleus.iter().copied().collect();
        let first = di.nucleus.iter().min().copied().unwrap_or(0);
        for e in first..first + d.mesh.mesh.num_elements() {
            if nuc.contains(&e) {
                continue;
            }
            let s = (elem_centre(e) - centre).dot(&ant);
            if s > 0.0 {
                sa += axial(&st.element_stress[e]);
                na += 1;
            } else {
                sp += axial(&st.element_stress[e]);
                np += 1;
            }
        }
        println!(
            "disc {}: endplate AP from {:.1} to {:.1} mm (anterior +); centre axial u {:.3} mm, \
             tilt {:.4} mm/mm; neutral axis at {:.1} mm; nucleus centroid at {:.1} mm; \
             nucleus mean p {:.3} MPa; annulus axial stress anterior {:.3}, posterior {:.3} MPa",
            d.upper,
            depth.0,
            depth.1,
            a,
            b,
            -a / b,
            nuc_c,
            p,
            sa / na.max(1) as f64,
            sp / np.max(1) as f64
        );
    }
}
