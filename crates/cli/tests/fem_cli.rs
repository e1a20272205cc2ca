//! End-to-end tests of `spinetwin fem run` and `spinetwin bench fem`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use spinetwin_fem::inp::Deck;
use spinetwin_fem::{box_mesh, Constraints, LinearElastic, Loads, Order};

fn spinetwin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spinetwin"))
        .args(args)
        .env("SPINETWIN_QUIET", "1")
        .output()
        .expect("spinetwin runs")
}

const E: f64 = 2000.0;
const NU: f64 = 0.25;
const SIGMA: f64 = 3.0;

/// A 10 x 2 x 3 mm Tet10 bar on symmetry rollers (x = 0, y = 0, z = 0 planes), pulled by a
/// uniform traction SIGMA on x = 10 (a negative *DLOAD pressure).
fn bar_deck(path: &Path) {
    let m = box_mesh([10.0, 2.0, 3.0], [5, 2, 2], Order::Quadratic).unwrap();
    let mat = LinearElastic::uniform(m.num_elements(), E, NU).unwrap();
    let mut bc = Constraints::new();
    bc.fix(m.node_set("xmin").unwrap(), [true, false, false]);
    bc.fix(m.node_set("ymin").unwrap(), [false, true, false]);
    bc.fix(m.node_set("zmin").unwrap(), [false, false, true]);
    let mut loads = Loads::new();
    loads.pressure(m.face_set("xmax").unwrap(), -SIGMA);
    let deck = Deck::from_model(&m, &mat, &bc, &loads).unwrap();
    std::fs::write(path, deck.write()).unwrap();
}

#[test]
fn fem_run_solves_a_bar_deck_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let deck = tmp.path().join("bar.inp");
    bar_deck(&deck);
    let out = tmp.path().join("res");
    let o = spinetwin(&[
        "fem",
        "run",
        deck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&deck).unwrap();
    let parsed = Deck::parse(&text).unwrap();
    let coords: HashMap<u64, [f64; 3]> = parsed.nodes.iter().copied().collect();
    let csv = std::fs::read_to_string(out.join("displacements.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("node,ux,uy,uz"));
    let mut n = 0;
    for l in lines {
        let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
        let x = coords[&(f[0] as u64)];
        // Uniaxial stress: eps_x = sigma / E, lateral -nu sigma / E.
        let exact = [
            SIGMA * x[0] / E,
            -NU * SIGMA * x[1] / E,
            -NU * SIGMA * x[2] / E,
        ];
        for d in 0..3 {
            assert!(
                (f[1 + d] - exact[d]).abs() < 1e-10,
                "node {}: {f:?} vs {exact:?}",
                f[0]
            );
        }
        n += 1;
    }
    assert_eq!(n, coords.len());
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["converged"], true);
    assert_eq!(s["ordering"], "metis");
    assert!(s["factor_nnz"].as_u64().unwrap() >= s["nnz"].as_u64().unwrap());
    assert!(s["peak_rss_mib"].as_f64().unwrap() > 0.0);
    let vm = s["max_von_mises_mpa"].as_f64().unwrap();
    assert!((vm - SIGMA).abs() < 1e-8, "von Mises {vm}");
    assert!(out.join("result.vtu").is_file());
}

#[test]
fn fem_run_refuses_what_it_cannot_do_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let deck = tmp.path().join("bar.inp");
    bar_deck(&deck);
    let text = std::fs::read_to_string(&deck).unwrap();
    let nl = tmp.path().join("nl.inp");
    std::fs::write(&nl, text.replace("*STEP\n", "*STEP, NLGEOM\n")).unwrap();
    let bad = tmp.path().join("bad.inp");
    std::fs::write(&bad, text.replacen("*NODE\n", "*NODE\n*SURFACE\n", 1)).unwrap();
    for (path, needle) in [(&nl, "NLGEOM"), (&bad, "line 4: keyword *SURFACE")] {
        let out = tmp.path().join("o");
        let o = spinetwin(&[
            "fem",
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(!out.exists());
    }
}

/// Cross-check with CalculiX on a ~30k-DOF block (`bench fem --cells 12,9,7`): the
/// displacements of the Cholesky (METIS, AMD) and CG + AMG solves must agree within 1 %
/// (rel. L2). Heavy.
#[test]
#[ignore = "heavy: runs ccx and two spinetwin solves; CI runs it in release"]
fn bench_fem_agrees_with_calculix() {
    if Command::new("ccx").arg("-v").output().is_err() {
        eprintln!("skipping: CalculiX (ccx) is not installed (apt-get install calculix-ccx)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let o = spinetwin(&[
        "bench",
        "fem",
        "--cells",
        "12,9,7",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let runs = r["runs"].as_array().unwrap();
    // Cholesky with METIS and AMD, CG + AMG, and ccx itself.
    assert_eq!(runs.len(), 4, "{r}");
    let ours: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|run| {
            run["solver"]
                .as_str()
                .is_some_and(|s| s.starts_with("spinetwin"))
        })
        .collect();
    assert_eq!(ours.len(), 3, "{r}");
    for run in ours {
        let d = run["rel_l2_vs_ccx"].as_f64().unwrap();
        assert!(d < 0.01, "{run}");
    }
    println!("{}", String::from_utf8_lossy(&o.stdout));
}
