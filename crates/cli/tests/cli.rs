//! End-to-end tests of the `spinetwin` binary: what a user runs, and what they see when the
//! input is bad (a one-line error naming the path, non-zero exit, nothing half-written).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spinetwin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spinetwin"))
        .args(args)
        .env("SPINETWIN_QUIET", "1")
        .env_remove("SPINETWIN_DEID_KEY")
        .output()
        .expect("spinetwin runs")
}

fn ok(args: &[&str]) -> String {
    let o = spinetwin(args);
    assert!(
        o.status.success(),
        "spinetwin {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr, checked to be one line.
fn fails(args: &[&str]) -> String {
    let o = spinetwin(args);
    assert!(!o.status.success(), "spinetwin {args:?} should have failed");
    let err = String::from_utf8(o.stderr).unwrap();
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "error should be one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A small phantom (L3-L5, 2 mm voxels, seed 7) written once per test that needs it.
fn small_phantom(dir: &Path) -> PathBuf {
    small_phantom_named(dir, "ph", &[])
}

/// The same small phantom into `dir/name`, with extra arguments.
fn small_phantom_named(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "phantom",
        out.to_str().unwrap(),
        "--levels",
        "L3-L5",
        "--spacing",
        "2",
        "--noise",
        "10",
        "--seed",
        "7",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    out
}

/// `spinetwin inspect PATH --json`, one JSON object per series or file.
fn inspect_json(path: &Path) -> Vec<serde_json::Value> {
    json_lines(&ok(&["inspect", path.to_str().unwrap(), "--json"]))
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// `--slice-thickness` reconstructs the phantom in slabs: the NIfTI and truth.json say so.
#[test]
fn phantom_slice_thickness_option_makes_thick_slices() {
    let d = tempfile::tempdir().unwrap();
    let thin = small_phantom_named(d.path(), "thin", &["--no-dicom"]);
    let thick = small_phantom_named(d.path(), "thick", &["--no-dicom", "--slice-thickness", "6"]);
    let grid = |p: &Path| -> serde_json::Value {
        let t: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("truth.json")).unwrap()).unwrap();
        t["grid"].clone()
    };
    let (gn, gk) = (grid(&thin), grid(&thick));
    assert_eq!(gk["spacing_mm"], serde_json::json!([2.0, 2.0, 6.0]));
    assert_eq!(
        gk["dims"][2].as_u64().unwrap(),
        gn["dims"][2].as_u64().unwrap() / 3
    );
    let ct = spinetwin_imaging::nifti::read_volume(&thick.join("ct.nii.gz")).unwrap();
    assert_eq!(ct.grid().spacing, [2.0, 2.0, 6.0]);
    // Not a whole multiple of the spacing: a clear error naming the parameter.
    let out = d.path().join("bad");
    let err = fails(&[
        "phantom",
        out.to_str().unwrap(),
        "--spacing",
        "2",
        "--slice-thickness",
        "5",
    ]);
    assert!(err.contains("slice thickness"), "{err}");
    assert!(!out.exists());
}

/// `--facet-joints anatomical` changes the anatomy and says so in the truth.
#[test]
fn phantom_facet_joints_option_reaches_the_truth() {
    let d = tempfile::tempdir().unwrap();
    let mid = small_phantom_named(d.path(), "mid", &["--no-dicom"]);
    let ana = small_phantom_named(
        d.path(),
        "ana",
        &["--no-dicom", "--facet-joints", "anatomical"],
    );
    let truth = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p.join("truth.json")).unwrap()).unwrap()
    };
    let (tm, ta) = (truth(&mid), truth(&ana));
    assert_eq!(tm["spec"]["facet_joints"], "mid_disc");
    assert_eq!(ta["spec"]["facet_joints"], "anatomical");
    // The L4-L5 joint (L5's superior left facet) is lower in the anatomical phantom, by the
    // difference between mid-disc (+4.6..+5.8 mm) and -3.5 mm, along the body axis.
    let l5 = |t: &serde_json::Value| {
        t["vertebrae"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["level"] == "L5")
            .unwrap()
            .clone()
    };
    let z = |v: &serde_json::Value| {
        let p = &v["facets"]["superior_left"];
        let a = &v["frame"]["z_axis"];
        (0..3)
            .map(|i| p[i].as_f64().unwrap() * a[i].as_f64().unwrap())
            .sum::<f64>()
    };
    let drop = z(&l5(&tm)) - z(&l5(&ta));
    assert!(
        (7.0..=10.5).contains(&drop),
        "joint lowered by {drop:.2} mm"
    );
}

#[test]
fn phantom_writes_the_documented_files_and_inspect_reads_them_back() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom(d.path());
    for f in [
        "ct.nii.gz",
        "labels.nii.gz",
        "truth.json",
        "dicom",
        "preview/sagittal.png",
    ] {
        assert!(ph.join(f).exists(), "{f} missing");
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ph.join("truth.json")).unwrap()).unwrap();
    // The truth describes exactly the requested levels, with their VerSe labels, and the
    // discs between them.
    let levels: Vec<_> = truth["vertebrae"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["level"].as_str().unwrap().to_string(),
                v["label"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [("L3", 22), ("L4", 23), ("L5", 24)].map(|(l, n)| (l.to_string(), n));
    assert_eq!(levels, want);
    assert_eq!(truth["discs"].as_array().unwrap().len(), 2);

    // The NIfTI and the DICOM series describe the same voxels in the same place.
    let nii = inspect_json(&ph.join("ct.nii.gz"));
    let dcm = inspect_json(&ph.join("dicom"));
    assert_eq!((nii.len(), dcm.len()), (1, 1));
    let (n, s) = (&nii[0], &dcm[0]);
    assert_eq!(s["modality"], "CT");
    assert_eq!(s["kind"], "dicom");
    assert_eq!(n["dims"], s["dims"]);
    let num = |v: &serde_json::Value, k: &str, i: usize| v[k][i].as_f64().unwrap();
    for i in 0..3 {
        assert!((num(n, "spacing", i) - 2.0).abs() < 1e-4);
        assert!((num(n, "spacing", i) - num(s, "spacing", i)).abs() < 1e-4);
        assert!((num(n, "origin", i) - num(s, "origin", i)).abs() < 1e-3);
    }
    assert_eq!(s["orientation"], "LPS");
    assert_eq!(n["geometry_units"], "mm, LPS");
    assert!(
        s["min"].as_f64().unwrap() < -900.0,
        "air should be dark: {s}"
    );
    assert!(
        s["max"].as_f64().unwrap() > 700.0,
        "bone should be bright: {s}"
    );
    assert!((s["min"].as_f64().unwrap() - n["min"].as_f64().unwrap()).abs() <= 1.0);

    // No identifying field unless asked for.
    let plain = ok(&["inspect", ph.join("dicom").to_str().unwrap()])
        + &ok(&["inspect", ph.join("dicom").to_str().unwrap(), "--json"]);
    assert!(
        !plain.contains("PHANTOM-7") && !plain.contains("SPINETWIN^PHANTOM"),
        "{plain}"
    );
    let phi = ok(&[
        "inspect",
        ph.join("dicom").to_str().unwrap(),
        "--json",
        "--show-phi",
    ]);
    assert!(phi.contains("PHANTOM-7"), "{phi}");
}

#[test]
fn phantom_is_deterministic_for_a_seed() {
    let d = tempfile::tempdir().unwrap();
    let a = small_phantom(d.path());
    let b = small_phantom_named(d.path(), "again", &["--no-dicom"]);
    for f in ["ct.nii.gz", "labels.nii.gz", "truth.json"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between two runs with the same seed"
        );
    }
    assert!(!b.join("dicom").exists());
}

#[test]
fn deidentify_removes_patient_identity_from_the_phantom_series() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom(d.path());
    let key = d.path().join("key");
    std::fs::write(&key, b"0123456789abcdef0123456789abcdef").unwrap();
    let anon = d.path().join("anon");
    ok(&[
        "deidentify",
        ph.join("dicom").to_str().unwrap(),
        anon.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    let phi = ok(&["inspect", anon.to_str().unwrap(), "--json", "--show-phi"]);
    assert!(
        !phi.contains("PHANTOM-7") && !phi.contains("SPINETWIN^PHANTOM"),
        "{phi}"
    );
    let orig = inspect_json(&ph.join("dicom"));
    let new = json_lines(&phi);
    assert_eq!(new.len(), 1);
    assert_eq!(
        new[0]["dims"], orig[0]["dims"],
        "pixel data and geometry survive"
    );
    assert_eq!(new[0]["min"], orig[0]["min"]);
    assert_ne!(
        new[0]["series_uid"], orig[0]["series_uid"],
        "UIDs are replaced"
    );
    // Same key, same pseudonym and UIDs.
    let anon2 = d.path().join("anon2");
    ok(&[
        "deidentify",
        ph.join("dicom").to_str().unwrap(),
        anon2.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    let again = json_lines(&ok(&[
        "inspect",
        anon2.to_str().unwrap(),
        "--json",
        "--show-phi",
    ]));
    assert_eq!(again[0]["series_uid"], new[0]["series_uid"]);
    assert_eq!(again[0]["phi"], new[0]["phi"]);
}

#[test]
fn demo_imports_its_own_dicom_exactly() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    let args = [
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--levels",
        "L4-S1",
        "--spacing",
        "2",
        "--no-twin",
    ];
    ok(&args);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(s["import"]["max_abs_hu_difference"].as_f64().unwrap() <= 0.501);
    assert!(s["import"]["max_voxel_position_error_mm"].as_f64().unwrap() < 1e-3);
    assert_eq!(s["import"]["modality"], "CT");
    let seg = &s["segmentation"];
    assert_eq!(
        seg["levels_found"],
        serde_json::json!(["L4", "L5", "S1"]),
        "{seg}"
    );
    assert_eq!(seg["identification_correct"], true);
    assert!(seg["min_dice"].as_f64().unwrap() > 0.85, "{seg}");
    assert!(
        out.join("segment/labels.nii.gz").exists() && out.join("segment/overview.png").exists()
    );
    // Running the demo again into its own output folder is allowed, and replaces it whole...
    std::fs::write(out.join("stale.txt"), b"from an older run").unwrap();
    ok(&args);
    assert!(
        !out.join("stale.txt").exists(),
        "the old folder was not replaced"
    );
    // ...but a folder with someone else's files is not touched.
    std::fs::remove_file(out.join(".spinetwin-demo")).unwrap();
    let e = fails(&args);
    assert!(e.contains("--force"), "{e}");
}

/// The README's main command at full default resolution (T12-S1, 1 mm): heavy, so ignored by
/// default and run by CI in release mode.
#[test]
#[ignore]
fn full_default_demo_round_trips_and_writes_previews() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    // The imaging chain at full resolution; the twin and scenarios are covered on fewer
    // levels by `demo_builds_the_twin_solves_the_load_cases_and_compares_the_scenarios`.
    let stdout = ok(&["demo", "--out", out.to_str().unwrap(), "--no-twin"]);
    assert!(stdout.contains("T12-S1"), "{stdout}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(s["import"]["max_abs_hu_difference"].as_f64().unwrap() <= 0.501);
    assert_eq!(s["import"]["spacing_mm"][0].as_f64().unwrap(), 1.0);
    let slices = s["import"]["dims"][2].as_u64().unwrap() as usize;
    let files = std::fs::read_dir(out.join("phantom/dicom"))
        .unwrap()
        .count();
    assert_eq!(files, slices, "one DICOM file per slice");
    // T12 to S1 spans well over 150 mm craniocaudally.
    assert!(slices > 150, "{slices} slices");
    for v in [
        "sagittal",
        "coronal",
        "axial",
        "axial_soft_tissue",
        "sagittal_labels",
    ] {
        let png = std::fs::read(out.join(format!("phantom/preview/{v}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{v}.png is not a PNG");
    }
}

/// The demo's mechanics on a short phantom (L3-S1): the twin, the seven standard load cases
/// and the built-in scenarios (the L1 vertebroplasty does not apply and is reported as
/// skipped). Heavy, so ignored by default and run by CI in release mode.
#[test]
#[ignore]
fn demo_builds_the_twin_solves_the_load_cases_and_compares_the_scenarios() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    let stdout = ok(&["demo", "--out", out.to_str().unwrap(), "--levels", "L3-S1"]);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let m = &s["mechanics"];
    assert_eq!(m["cases"], 7, "{m}");
    // A case that does not converge is reported as such, with its reason and no numbers.
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 7);
    for r in results {
        if r["converged"] == false {
            assert!(
                r["failure"].as_str().unwrap().contains("did not converge"),
                "{r}"
            );
            assert!(r["samples"].as_array().unwrap().is_empty(), "{r}");
        } else {
            assert!(!r["samples"].as_array().unwrap().is_empty(), "{r}");
        }
    }
    let converged = results.iter().filter(|r| r["converged"] == true).count();
    assert_eq!(m["converged"], converged, "{m}");
    // Issue 5 asks for every case to converge: 7 of 7 since the smoothed facet contact
    // (2026-12-02).
    assert_eq!(
        converged, 7,
        "{converged} of 7 standard cases converged: {m}"
    );
    let sc = &m["scenarios"];
    let names: Vec<&str> = sc["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{sc}");
    assert!(
        sc["skipped"].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .contains("vertebroplasty_l1"),
        "{sc}"
    );
    assert_eq!(sc["solves"], 28, "{sc}");
    // 28 of 28 since the smoothed facet contact (2026-12-02; 25 of 28 before).
    assert_eq!(sc["converged"], 28, "scenario solves converged: {sc}");
    // ROM-matched (hybrid) control for the screws in flexion and extension only.
    let rm = sc["rom_matched"].as_array().unwrap();
    assert_eq!(rm.len(), 2, "{sc}");
    let csv = std::fs::read_to_string(out.join("plan/comparison.csv")).unwrap();
    assert!(csv.lines().count() > 28, "{csv}");
    assert!(csv.contains(",rom-matched,"), "{csv}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("plan/report.html"));
    let plan = std::fs::read_to_string(out.join("plan/report.html")).unwrap();
    assert!(plan.contains("<table"));
    // Both pages open on the patient-free header and the validation status.
    for page in [&report, &plan] {
        assert!(page.contains("<b>PHANTOM</b>") && page.contains("Validation status"));
    }
    // Each planned screw checked against the label map: the auto-sized screws stay within
    // their pedicles (Gertzbein-Robbins A or B), and the page says how it was graded.
    let cmp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("plan/comparison.json")).unwrap()).unwrap();
    let screws = cmp["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "L4-L5 pedicle screws and rods")
        .unwrap();
    let breaches = screws["screw_breaches"].as_array().unwrap();
    assert_eq!(breaches.len(), 4, "{screws}");
    for b in breaches {
        assert!(["A", "B"].contains(&b["grade"].as_str().unwrap()), "{b}");
    }
    assert!(plan.contains("breach (Gertzbein-Robbins)"));
    // 3D pictures: the intact twin and each applied scenario, as PNG files and embedded in
    // the page (self-contained); the vertebra surfaces are kept with the twin.
    assert!(report.contains("data:image/png;base64,"));
    assert_eq!(
        plan.matches("data:image/png;base64,").count(),
        5,
        "intact + 4 scenarios"
    );
    for f in ["00_intact", "03_l4_l5_pedicle_screws_and_rods"] {
        let png = std::fs::read(out.join(format!("plan/snapshots/{f}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{f}: {} bytes",
            png.len()
        );
    }
    for l in ["L3", "L4", "L5", "S1"] {
        assert!(out.join(format!("twin/meshes/{l}.stl")).exists(), "{l}");
    }
    assert!(stdout.contains("scenarios"), "{stdout}");
}

/// The L4-S1 phantom (1 mm, no DICOM) in `dir/phantom` and its twin built from the
/// reference labels in `dir/name`, with extra `build` arguments.
fn l4s1_twin(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let ph = dir.join("phantom");
    if !ph.exists() {
        ok(&[
            "phantom",
            ph.to_str().unwrap(),
            "--levels",
            "L4-S1",
            "--no-dicom",
        ]);
    }
    let out = dir.join(name);
    let (ct, labels) = (ph.join("ct.nii.gz"), ph.join("labels.nii.gz"));
    let mut args = vec![
        "build",
        ct.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    out
}

/// `build` keeps the vertebra surfaces with the twin and `plan` on that folder draws them:
/// one picture of the intact twin and one of the scenario, embedded in the report. Solves
/// two load cases, so ignored by default and run by CI in release mode.
#[test]
#[ignore]
fn plan_on_a_built_twin_draws_the_loaded_spine() {
    let d = tempfile::tempdir().unwrap();
    let twin = l4s1_twin(d.path(), "twin", &["--pseudonym", "STUDY-07"]);
    for l in ["L4", "L5", "S1"] {
        assert!(twin.join(format!("meshes/{l}.stl")).exists(), "{l}");
    }
    let out = d.path().join("plan");
    ok(&[
        "plan",
        twin.to_str().unwrap(),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/screws_l4l5.toml"
        ),
        "--load",
        "flexion:2.5Nm",
        "--control",
        "load",
        "--out",
        out.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The header names the twin by its pseudonym only and states the model's validation.
    assert!(html.contains("<b>STUDY-07</b>"), "pseudonym");
    assert!(
        html.contains("Validation status")
            && html.contains("This twin uses those default parameters")
    );
    assert!(
        !html.contains(d.path().to_str().unwrap()),
        "no input path in the page"
    );
    let cmp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("comparison.json")).unwrap()).unwrap();
    assert_eq!(cmp["model"]["pseudonym"], "STUDY-07");
    assert_eq!(
        cmp["model"]["levels"],
        serde_json::json!(["L4", "L5", "S1"])
    );
    assert_eq!(html.matches("data:image/png;base64,").count(), 2);
    assert!(
        html.contains("Vertebrae from the CT surfaces"),
        "bones drawn"
    );
    assert!(html.contains("disc von Mises stress (MPa)"));
    for f in ["00_intact", "01_l4_l5_pedicle_screws_and_rods"] {
        assert!(out.join(format!("snapshots/{f}.png")).exists(), "{f}");
    }
}

/// `simulate --fidelity full` solves with the vertebrae between the ends deformable (here
/// L5 of an L4-S1 twin) and writes their stress; without the CT it says what to add.
/// One nonlinear solve with a bone mesh, so ignored by default and run by CI in release mode.
#[test]
#[ignore]
fn simulate_full_fidelity_writes_bone_stress() {
    let d = tempfile::tempdir().unwrap();
    let twin = l4s1_twin(d.path(), "twin", &[]);
    let ph = d.path().join("phantom");
    let (ct, labels) = (ph.join("ct.nii.gz"), ph.join("labels.nii.gz"));
    let out = d.path().join("sim");
    let err = fails(&[
        "simulate",
        twin.to_str().unwrap(),
        "--fidelity",
        "full",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("--ct"), "{err}");
    let err = fails(&[
        "simulate",
        twin.to_str().unwrap(),
        "--ct",
        ct.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("--fidelity full"), "{err}");
    let err = fails(&[
        "simulate",
        twin.to_str().unwrap(),
        "--fidelity",
        "full",
        "--ct",
        ct.to_str().unwrap(),
        "--bone-element-mm",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("--bone-element-mm 0"), "{err}");
    let stdout = ok(&[
        "simulate",
        twin.to_str().unwrap(),
        "--fidelity",
        "full",
        "--ct",
        ct.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--load",
        "standing",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("1 deformable vertebrae"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("bone_stress.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let cols: Vec<&str> = rows[0].split(',').collect();
    assert_eq!((cols[0], cols[2]), ("standing", "L5"), "{csv}");
    // 500 N over an adult lumbar body's cross-section (about 1200-1900 mm^2).
    let median: f64 = cols[3].parse().unwrap();
    assert!((0.15..0.8).contains(&median), "{csv}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results[0]["converged"], true);
    assert_eq!(results[0]["samples"][0]["bone_stress"][0]["level"], "L5");
    let vtu = std::fs::read_to_string(out.join("bones/standing.vtu")).unwrap();
    assert!(vtu.contains("von_mises") && vtu.contains("youngs_modulus"));
}

/// `plan --fidelity full` solves the intact twin and a scenario with L5 (of an L4-S1 twin)
/// deformable: cement in L5 becomes PMMA elements and the comparison gains bone stress rows
/// per vertebra (cement, body, endplate zones) and the report a bone table. Cement in L4,
/// the rigid top vertebra, is refused before anything is solved. Two nonlinear solves with
/// a bone mesh, so ignored by default and run by CI in release mode.
#[test]
#[ignore]
fn plan_full_fidelity_compares_bone_stress() {
    let d = tempfile::tempdir().unwrap();
    let twin = l4s1_twin(d.path(), "twin", &[]);
    let ct = d.path().join("phantom/ct.nii.gz");
    let labels = d.path().join("phantom/labels.nii.gz");
    let scenario = |level: &str| {
        let p = d.path().join(format!("cement_{level}.toml"));
        std::fs::write(
            &p,
            format!(
                "name = \"{level} vertebroplasty\"\n[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"{level}\"\nfill_fraction = 0.3\n"
            ),
        )
        .unwrap();
        p
    };
    let out = d.path().join("plan");
    let args = |sc: &Path| -> Vec<String> {
        [
            "plan",
            twin.to_str().unwrap(),
            sc.to_str().unwrap(),
            "--fidelity",
            "full",
            "--ct",
            ct.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--load",
            "standing",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let top = scenario("L4");
    let a = args(&top);
    let err = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        err.contains("L4 is the top vertebra") && err.contains("rigid"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written before the refusal");
    let err = fails(&[
        "plan",
        twin.to_str().unwrap(),
        top.to_str().unwrap(),
        "--bone-element-mm",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("--fidelity full"), "{err}");
    let err = fails(&[
        "plan",
        twin.to_str().unwrap(),
        top.to_str().unwrap(),
        "--cage-friction",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--cage-friction is for --fidelity full"),
        "{err}"
    );
    let l5 = scenario("L5");
    let a = args(&l5);
    let stdout = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.contains("cm^3 of cement"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    let row = |metric: &str| -> Vec<String> {
        csv.lines()
            .find(|l| l.contains(&format!(",L5,{metric},")))
            .unwrap_or_else(|| panic!("no L5 {metric} row in\n{csv}"))
            .split(',')
            .map(String::from)
            .collect()
    };
    let cement = row("cement_p95_mpa");
    assert!(
        cement[4].is_empty() && cement[7].contains("no cement"),
        "{cement:?}"
    );
    let cement_p95: f64 = cement[5].parse().unwrap();
    let body = row("bone_body_p95_mpa");
    let (intact, cemented): (f64, f64) = (body[4].parse().unwrap(), body[5].parse().unwrap());
    // 500 N through the body: a stress of the order of the bone's, not zero, not a blow-up.
    assert!((0.1..20.0).contains(&cement_p95), "cement {cement_p95} MPa");
    assert!((intact - cemented).abs() > 1e-3 * intact, "{body:?}");
    for metric in [
        "bone_superior_endplate_p95_mpa",
        "bone_inferior_endplate_p95_mpa",
    ] {
        let r = row(metric);
        assert!(r[4].parse::<f64>().unwrap() > 0.0, "{r:?}");
    }
    // The load against strength under both endplates' centres (the nucleus in both models:
    // no cage, so not called subsidence).
    for metric in [
        "bone_superior_centre_ratio_p95",
        "bone_inferior_centre_ratio_p95",
    ] {
        let r = row(metric);
        let (i, v): (f64, f64) = (r[4].parse().unwrap(), r[5].parse().unwrap());
        assert!(i > 0.0 && v > 0.0 && i < 1.0, "{r:?}");
        assert!(r[7..].join(",").contains("under the nucleus"), "{r:?}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Bone stress (deformable vertebrae)"));
    assert!(html.contains("Load against strength"));
    assert!(html.contains("Full fidelity: the vertebrae between"));
    assert!(!html.contains("Cement has no mechanical effect"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("comparison.json")).unwrap()).unwrap();
    assert_eq!(json["full_fidelity_element_mm"], 3.0);
    // A decompression of the deformable vertebra meshes it without the bone removed.
    let lam = d.path().join("lam_l5.toml");
    std::fs::write(
        &lam,
        "name = \"L5 laminectomy\"\n[[operation]]\nkind = \"laminectomy\"\nlevel = \"L5\"\n",
    )
    .unwrap();
    let mut a = args(&lam);
    a.push("--force".into());
    let stdout = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let line = stdout
        .lines()
        .find(|l| l.starts_with("L5 laminectomy: 1 deformable vertebrae"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let removed: f64 = line
        .split(", ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(removed > 1.0 && removed < 20.0, "{line}");
}

/// `build` from a CT alone segments it and passes on what the segmentation warned about:
/// here a pedicle screw at L4 (metal) and levels assumed without a sacrum in view.
#[test]
fn build_from_a_ct_reports_the_segmentation_warnings() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom_named(d.path(), "ph", &["--no-dicom", "--screws", "L4"]);
    let out = d.path().join("twin");
    let stdout = ok(&[
        "build",
        ph.join("ct.nii.gz").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let warnings: Vec<&str> = summary["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let has = |s: &str| {
        warnings
            .iter()
            .any(|w| w.starts_with("segmentation: ") && w.contains(s))
    };
    assert!(has("metal in the scan"), "{warnings:?}");
    assert!(has("sacrum is not in view"), "{warnings:?}");
    // A level warning names its levels first ("L4, L5: metal (an implant) ...").
    let levels_warned = warnings.iter().any(|w| {
        w.strip_prefix("segmentation: ")
            .and_then(|w| w.split_once(": metal (an implant)"))
            .is_some_and(|(levels, _)| levels.split(", ").any(|l| l == "L4"))
    });
    assert!(levels_warned, "{warnings:?}");
    assert!(stdout.contains("warning: segmentation: metal"), "{stdout}");
}

/// `build --bony-stops` turns the landmarks' bony stops into contacts and says how many.
/// The phantom's reference labels have them at L4-L5 and L5-S1 (posterior bone 2-3 mm
/// above the arch below along the body axis).
#[test]
fn build_with_bony_stops_models_them() {
    let d = tempfile::tempdir().unwrap();
    let build = |name: &str, extra: &[&str]| {
        let out = l4s1_twin(d.path(), name, extra);
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(out.join(f)).unwrap()).unwrap()
        };
        (read("summary.json"), read("twin.json"))
    };
    let (plain, plain_twin) = build("plain", &[]);
    let (stops, stops_twin) = build("stops", &["--bony-stops", "--pseudonym", "STUDY-07"]);
    // A twin gets a pseudonym drawn at random unless one is given; two builds, two names.
    let drawn = plain_twin["pseudonym"].as_str().unwrap();
    assert!(
        drawn.len() == 15
            && drawn.starts_with("TW-")
            && drawn[3..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "{drawn}"
    );
    assert_eq!(stops_twin["pseudonym"], "STUDY-07");
    assert_eq!(stops["pseudonym"], "STUDY-07", "summary.json names it too");
    assert_eq!(plain["bony_stops"], 0);
    assert_eq!(plain_twin["params"]["bony_stops"], false);
    assert_eq!(stops_twin["params"]["bony_stops"], true);
    assert_eq!(stops["facet_joints"], plain["facet_joints"]);
    let n = stops["bony_stops"].as_u64().unwrap();
    assert!((2..=4).contains(&n), "{n} bony stops: {stops}");

    // The model for ParaView: every disc element with its material, one line per fibre.
    let vtu = |f: &str| std::fs::read_to_string(d.path().join("plain/model").join(f)).unwrap();
    let count = |s: &str, what: &str| -> usize {
        let at = s.find(&format!("{what}=\"")).unwrap() + what.len() + 2;
        s[at..].split('"').next().unwrap().parse().unwrap()
    };
    let discs = vtu("discs.vtu");
    // Two discs (L4-L5, L5-S1) of 24 x (4 + 2) x 4 elements each (default mesh).
    assert_eq!(count(&discs, "NumberOfCells"), 2 * 24 * 6 * 4);
    for field in [
        "\"region\"",
        "\"shear_modulus_mpa\"",
        "\"fibre_k1_mpa\"",
        "\"fibre_1\" NumberOfComponents=\"3\"",
    ] {
        assert!(discs.contains(field), "{field}");
    }
    let lig = vtu("ligaments.vtu");
    assert_eq!(
        count(&lig, "NumberOfCells") as u64,
        plain["ligament_fibres"].as_u64().unwrap()
    );
    assert!(lig.contains("\"pre_strain\"") && lig.contains("\"stiffness_n\""));
    assert_eq!(plain["ligament_codes"][0], "ALL");
    assert_eq!(plain["disc_region_codes"][1], "nucleus");
}

#[test]
fn plan_refuses_an_unknown_control() {
    // A usage error from the argument parser (exit 2, the possible values listed).
    let o = spinetwin(&[
        "plan",
        "phantom",
        "scenarios/screws_l4l5.toml",
        "--out",
        "unused",
        "--control",
        "displacement",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("load, rom-matched, both"), "{e}");
    assert!(!Path::new("unused").exists());
}

#[test]
fn build_refuses_a_pseudonym_that_could_hold_a_name() {
    // It goes into file contents and report headers: refused (exit 1) before anything is
    // read or written, without repeating the text, which may be a name.
    let o = spinetwin(&[
        "build",
        "no-such-ct.nii.gz",
        "--out",
        "unused-twin",
        "--pseudonym",
        "Jane Doe",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("not a usable pseudonym"), "{e}");
    assert!(!e.contains("Jane"), "the rejected text is not echoed: {e}");
    assert!(!Path::new("unused-twin").exists());
}

#[test]
fn bad_inputs_give_one_line_errors_naming_the_path() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("no-such-scan");
    let e = fails(&["inspect", missing.to_str().unwrap()]);
    assert!(e.contains("no-such-scan"), "{e}");

    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = fails(&["inspect", empty.to_str().unwrap()]);
    assert!(e.contains(empty.to_str().unwrap()), "{e}");

    let corrupt = d.path().join("broken.nii.gz");
    std::fs::write(&corrupt, b"this is not a NIfTI file at all").unwrap();
    let e = fails(&["inspect", corrupt.to_str().unwrap()]);
    assert!(e.contains("broken.nii.gz"), "{e}");

    let e = fails(&[
        "phantom",
        d.path().join("p").to_str().unwrap(),
        "--lordosis",
        "200",
    ]);
    assert!(e.to_lowercase().contains("lordosis"), "{e}");
    assert!(
        !d.path().join("p").exists(),
        "nothing written on invalid parameters"
    );

    let e = fails(&[
        "deidentify",
        missing.to_str().unwrap(),
        d.path().join("o").to_str().unwrap(),
    ]);
    assert!(e.contains("no-such-scan"), "{e}");
}

#[test]
fn outputs_never_clobber_a_users_folder_without_force() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("busy");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let e = fails(&[
        "phantom",
        out.to_str().unwrap(),
        "--levels",
        "L4-L5",
        "--spacing",
        "2",
    ]);
    assert!(e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
}

#[test]
fn segment_labels_a_dicom_phantom_and_says_when_levels_are_assumed() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom(d.path());
    let out = d.path().join("seg");
    let stdout = ok(&[
        "segment",
        ph.join("dicom").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    // L3-L5 has no sacrum in view: the levels are an assumption and the user is told so.
    assert!(stdout.contains("sacrum is not in view"), "{stdout}");
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("segment.json")).unwrap()).unwrap();
    let levels: Vec<_> = rep["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["level"].clone())
        .collect();
    assert_eq!(
        levels,
        [
            serde_json::json!("L3"),
            serde_json::json!("L4"),
            serde_json::json!("L5")
        ]
    );
    assert_eq!(rep["sacrum_found"], false);
    for l in rep["levels"].as_array().unwrap() {
        assert!(
            l["confidence"].as_f64().unwrap() < 0.5,
            "assumed levels must not claim confidence: {l}"
        );
    }
    // Labels come back on the CT's grid.
    let lab = inspect_json(&out.join("labels.nii.gz"));
    let ct = inspect_json(&ph.join("ct.nii.gz"));
    assert_eq!(lab[0]["dims"], ct[0]["dims"]);
    assert_eq!(
        lab[0]["max"].as_f64().unwrap(),
        200.0,
        "canal label present"
    );
    // Surface meshes beside the label map: one STL per vertebra and disc, and spine.glb.
    let meshes = rep["meshes"]["structures"].as_array().unwrap();
    let names: Vec<_> = meshes.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(
        names.starts_with(&["L3"]) && names.contains(&"L4") && names.contains(&"L5"),
        "{names:?}"
    );
    for m in meshes {
        assert!(
            m["closed"].as_bool().unwrap() && m["manifold"].as_bool().unwrap(),
            "{m}"
        );
        assert_eq!(m["self_intersections"], 0, "{m}");
        assert!(
            m["volume_error_percent"].as_f64().unwrap().abs() < 5.0,
            "{m}"
        );
        let file = out.join(m["file"].as_str().unwrap());
        let tris = m["triangles"].as_u64().unwrap();
        assert!(tris > 100 && tris <= 22_000, "{m}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            84 + 50 * tris,
            "{m}"
        );
    }
    let glb = std::fs::read(out.join("meshes/spine.glb")).unwrap();
    assert_eq!(&glb[..4], b"glTF");
    let json_len = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
    let doc: serde_json::Value = serde_json::from_slice(&glb[20..20 + json_len]).unwrap();
    assert_eq!(doc["nodes"].as_array().unwrap().len(), meshes.len() + 1);
    assert_eq!(doc["nodes"][1]["name"], "L3");
}

#[test]
fn segment_mesh_flags_choose_the_format_and_count_or_skip_meshes() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom(d.path());
    let out = d.path().join("seg");
    ok(&[
        "segment",
        ph.join("ct.nii.gz").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mesh-format",
        "ply",
        "--target-triangles",
        "1500",
    ]);
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("segment.json")).unwrap()).unwrap();
    assert_eq!(rep["meshes"]["format"], "ply");
    for m in rep["meshes"]["structures"].as_array().unwrap() {
        let tris = m["triangles"].as_f64().unwrap();
        assert!((tris - 1500.0).abs() <= 150.0, "{m}");
        assert!(m["file"].as_str().unwrap().ends_with(".ply"));
        assert!(out.join(m["file"].as_str().unwrap()).exists());
    }
    let out2 = d.path().join("seg2");
    ok(&[
        "segment",
        ph.join("ct.nii.gz").to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--no-meshes",
    ]);
    assert!(!out2.join("meshes").exists());
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("segment.json")).unwrap()).unwrap();
    assert!(rep.get("meshes").is_none());
}

#[test]
fn segment_refuses_a_scan_without_bone() {
    let d = tempfile::tempdir().unwrap();
    // The phantom's body turned to water (0 HU) in air: no bone anywhere.
    let ph = small_phantom(d.path());
    let v = spinetwin_imaging::nifti::read_volume(&ph.join("ct.nii.gz")).unwrap();
    let water = v.map(|hu| if hu < -500.0 { -1000.0 } else { 0.0 });
    let out = d.path().join("o");
    // As a NIfTI it does not even look like CT (nothing bone-bright)...
    let nii = d.path().join("water.nii.gz");
    spinetwin_imaging::nifti::write_volume(
        &nii,
        &water,
        spinetwin_imaging::nifti::NiftiDtype::Int16,
    )
    .unwrap();
    let e = fails(&[
        "segment",
        nii.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("water.nii.gz") && e.contains("not recognised as CT"),
        "{e}"
    );
    // ...and as a DICOM CT series it is a CT without bone.
    let dcm = d.path().join("water-dicom");
    let meta = spinetwin_imaging::dicom::WriteMeta {
        study_uid: spinetwin_imaging::uid::from_hash(&[b"water-study"]),
        series_uid: spinetwin_imaging::uid::from_hash(&[b"water-series"]),
        ..Default::default()
    };
    spinetwin_imaging::dicom::write_series(&water, &meta, &dcm).unwrap();
    let e = fails(&[
        "segment",
        dcm.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("water-dicom") && e.contains("no bone"), "{e}");
    assert!(!out.exists(), "nothing written on failure");
}

#[test]
fn bone_compresses_a_vertebra_and_cement_stiffens_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ph = small_phantom_named(tmp.path(), "ph", &["--no-dicom"]);
    let ct = ph.join("ct.nii.gz");
    let labels = ph.join("labels.nii.gz");
    let run = |name: &str, cement: &str| {
        let out = tmp.path().join(name);
        let stdout = ok(&[
            "bone",
            ct.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--level",
            "L4",
            "--spacing",
            "2",
            "--cement",
            cement,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(stdout.contains("L4: stiffness"), "{stdout}");
        for f in ["bone.json", "bone.csv", "L4.vtu", "L4_section.png"] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("bone.json")).unwrap()).unwrap();
        let v = &j["vertebrae"][0];
        assert_eq!(v["level"], "L4");
        (
            v["stiffness_n_per_mm"].as_f64().unwrap(),
            v["cement_mm3"].as_f64().unwrap(),
        )
    };
    let (k0, c0) = run("intact", "0");
    let (k1, c1) = run("cemented", "0.3");
    assert_eq!(c0, 0.0);
    assert!(c1 > 1000.0, "cement volume {c1} mm^3");
    assert!(k0 > 1000.0 && k1 > k0, "stiffness {k0} -> {k1} N/mm");
    // A level that is not there, and a fill the body cannot take, are clear errors.
    let err = fails(&[
        "bone",
        ct.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--level",
        "L1",
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
    ]);
    assert!(
        err.contains("L1") && err.contains("not in the segmentation"),
        "{err}"
    );
    let err = fails(&[
        "bone",
        ct.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--cement",
        "0.95",
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
    ]);
    assert!(
        err.contains("cement fraction must lie within 0..0.9"),
        "{err}"
    );
    assert!(!tmp.path().join("bad").exists());
}

/// The segment rotations (rad, about the moment's axis `axis`) of a solved model's bodies:
/// rotation vector of each vertebra minus that of the one below.
fn segment_rotations(rot: &[[f64; 3]], axis: [f64; 3]) -> Vec<f64> {
    rot.windows(2)
        .map(|w| (0..3).map(|d| (w[0][d] - w[1][d]) * axis[d]).sum())
        .collect()
}

/// `build` writes a CalculiX deck per 7.5 N m pure-moment case and a README; each deck parses
/// back to the twin's rigid bodies, ligament springs and facet contact pairs.
#[test]
fn build_writes_calculix_decks_of_the_pure_moment_cases() {
    let d = tempfile::tempdir().unwrap();
    let twin = l4s1_twin(d.path(), "twin", &[]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(twin.join("summary.json")).unwrap()).unwrap();
    let readme = std::fs::read_to_string(twin.join("ccx/README.txt")).unwrap();
    assert!(readme.contains("ccx -i flexion_7.5nm"), "{readme}");
    assert!(readme.contains("kappa"), "{readme}");
    let cases = [
        "flexion",
        "extension",
        "lateral_bending_left",
        "lateral_bending_right",
        "axial_rotation_left",
        "axial_rotation_right",
    ];
    for case in cases {
        let path = twin.join(format!("ccx/{case}_7.5nm.inp"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains("** units: mm, N, MPa"), "{case}");
        assert!(text.contains(&format!("load case: {case}_7.5nm")), "{case}");
        assert!(
            text.contains("** approximation:") && text.contains("kappa"),
            "{case}"
        );
        assert!(text.contains("*ELEMENT, TYPE=C3D8I"), "{case}");
        let deck = spinetwin_fem::inp::Deck::parse(&text).unwrap();
        assert_eq!(deck.rigid_bodies.len(), 3, "{case}");
        assert_eq!(
            deck.springs.len() as u64,
            summary["ligament_fibres"].as_u64().unwrap(),
            "{case}"
        );
        assert_eq!(
            deck.contact_pairs.len() as u64,
            summary["facet_joints"].as_u64().unwrap(),
            "{case}"
        );
        let back = deck.to_nl_model().unwrap();
        assert_eq!(back.model.contacts.len(), deck.contact_pairs.len());
    }
    let n = std::fs::read_dir(twin.join("ccx")).unwrap().count();
    assert_eq!(n, cases.len() + 1, "six decks and the README");
}

/// The L4-S1 twin's flexion and extension (facets in contact) decks solved three ways: CalculiX on the deck, our solver on the
/// same deck (`Deck::to_nl_model`) and on the twin itself. Ours and CalculiX on the deck agree
/// within 15 % (flexion) and 20 % (extension) in each segment rotation (measured: CalculiX
/// 9-10 % stiffer in flexion, 5-16 % in extension; attributed, not yet separated, to its fully
/// integrated C3D6 wedges in the nearly incompressible nucleus and to the faceted facet
/// contact); the twin-vs-deck difference (the deck's approximations) is printed. Skipped
/// without `ccx` on the PATH.
#[test]
#[ignore]
fn the_twins_flexion_and_extension_decks_run_in_calculix_and_agree_with_ours() {
    use spinetwin_fem::nl::{solve, SolveOptions};
    let Some(ccx) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("ccx"))
            .find(|c| c.is_file())
    }) else {
        eprintln!("skipped: CalculiX (ccx) is not on the PATH");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let twin_dir = l4s1_twin(d.path(), "twin", &[]);
    for motion in ["flexion", "extension"] {
        let name = format!("{motion}_7.5nm");
        let text = std::fs::read_to_string(twin_dir.join(format!("ccx/{name}.inp"))).unwrap();
        let deck = spinetwin_fem::inp::Deck::parse(&text).unwrap();
        // The moment's axis: the ROT-node *CLOAD of the last step.
        let mut axis = [0.0; 3];
        for c in &deck.steps.last().unwrap().cloads {
            axis[c.dof as usize - 1] = c.value;
        }
        let m = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
        let axis = axis.map(|a| a / m);

        // CalculiX.
        let run = d.path().join("ccx");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join(format!("{name}.inp")), &text).unwrap();
        let t0 = std::time::Instant::now();
        let out = std::process::Command::new(&ccx)
            .arg("-i")
            .arg(&name)
            .current_dir(&run)
            .env("OMP_NUM_THREADS", "2")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).to_string();
        std::fs::write(d.path().join(format!("{name}.log")), &log).unwrap();
        if motion == "extension" {
            // The facets close in extension: CalculiX finds contact.
            assert!(
                log.lines().any(
                    |l| l.trim().starts_with("Number of contact spring elements=")
                        && !l.trim().ends_with("=0")
                ),
                "no facet contact in CalculiX"
            );
        }
        assert!(
            out.status.success() && !log.contains("*ERROR"),
            "ccx failed: {}",
            &log[log.len().saturating_sub(3000)..]
        );
        let dat = std::fs::read_to_string(run.join(format!("{name}.dat"))).unwrap();
        let u = spinetwin_fem::inp::ccx_dat_displacements(&dat).unwrap();
        let theirs: Vec<[f64; 3]> = deck.rigid_bodies.iter().map(|rb| u[&rb.rot_node]).collect();
        eprintln!("ccx: {:.0} s", t0.elapsed().as_secs_f64());

        // Ours on the deck.
        let t0 = std::time::Instant::now();
        let back = deck.to_nl_model().unwrap();
        let r = solve(&back.model, &SolveOptions::default()).unwrap();
        assert!(r.converged, "{:?}", r.failure);
        let s = r.steps.last().unwrap().state.as_ref().unwrap();
        let on_deck: Vec<[f64; 3]> = (0..3).map(|b| s.bodies[b].rotation_vector).collect();
        eprintln!("ours on the deck: {:.0} s", t0.elapsed().as_secs_f64());

        // Ours on the twin.
        let file =
            serde_json::from_slice(&std::fs::read(twin_dir.join("twin.json")).unwrap()).unwrap();
        let twin = spinetwin_model::twin::Twin::build(file).unwrap();
        let case = spinetwin_model::loadcase::LoadCase::parse(&format!("{motion}:7.5Nm")).unwrap();
        let (model, _) = twin.fem_model(&case).unwrap();
        let r = solve(&model, &SolveOptions::default()).unwrap();
        assert!(r.converged, "{:?}", r.failure);
        let s = r.steps.last().unwrap().state.as_ref().unwrap();
        let on_twin: Vec<[f64; 3]> = (0..3).map(|b| s.bodies[b].rotation_vector).collect();

        let (c, o, t) = (
            segment_rotations(&theirs, axis),
            segment_rotations(&on_deck, axis),
            segment_rotations(&on_twin, axis),
        );
        for (k, seg) in ["L4-L5", "L5-S1"].iter().enumerate() {
            eprintln!(
                "{seg} {motion} 7.5 N m: ccx {:.3} deg, ours on the deck {:.3} deg ({:+.1} %), ours on the twin {:.3} deg (deck vs twin {:+.1} %)",
                c[k].to_degrees(),
                o[k].to_degrees(),
                100.0 * (c[k] - o[k]) / o[k],
                t[k].to_degrees(),
                100.0 * (o[k] - t[k]) / t[k]
            );
        }
        // Flexion (facets open): the C3D6 wedges' locking, about 10 %. Extension adds the
        // facet contact, faceted in CalculiX and without the solver's rim fade: up to 16 %
        // measured at L4-L5.
        let tol = if motion == "flexion" { 0.15 } else { 0.20 };
        for k in 0..2 {
            assert!(o[k].abs() > 1e-3, "segment {k} turns: {o:?}");
            assert!(
                (c[k] - o[k]).abs() <= tol * o[k].abs(),
                "segment {k}: ccx {} vs ours on the deck {}",
                c[k],
                o[k]
            );
        }
    }
}

/// The twin is the lumbar spine from T12 down: `build` on a T11-L1 phantom leaves T11 out
/// and says so, and models T12-L1.
#[test]
fn build_leaves_thoracic_vertebrae_above_t12_out() {
    let d = tempfile::tempdir().unwrap();
    let ph = d.path().join("ph");
    ok(&[
        "phantom",
        ph.to_str().unwrap(),
        "--levels",
        "T11-L1",
        "--spacing",
        "2",
        "--no-dicom",
    ]);
    let out = d.path().join("twin");
    ok(&[
        "build",
        ph.join("ct.nii.gz").to_str().unwrap(),
        "--labels",
        ph.join("labels.nii.gz").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let twin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("twin.json")).unwrap()).unwrap();
    let levels: Vec<&str> = twin["landmarks"]["vertebrae"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["T12", "L1"]);
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("T11 left out of the twin"), "{summary}");
    // Chosen levels: T11 too, when asked for; a level the scan lacks is an error naming it.
    let build = |levels: &str, name: &str| {
        vec![
            "build".to_string(),
            ph.join("ct.nii.gz").to_str().unwrap().to_string(),
            "--labels".into(),
            ph.join("labels.nii.gz").to_str().unwrap().to_string(),
            "--levels".into(),
            levels.into(),
            "--out".into(),
            d.path().join(name).to_str().unwrap().to_string(),
        ]
    };
    let args = build("T11-L1", "all");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let twin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("all/twin.json")).unwrap()).unwrap();
    assert_eq!(twin["landmarks"]["vertebrae"].as_array().unwrap().len(), 3);
    let args = build("L1-L3", "none");
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--levels L1-L3: L2, L3 not found"), "{e}");
}

/// The issues' interfaces: `spinetwin segment CT OUT`, `spinetwin measure CT-or-OUT --json`
/// and `spinetwin build CT-or-SEG OUT`, the output folder last. From a segmentation without
/// its CT the twin has no bone density (trabecular HU null) and says so, and still solves.
#[test]
fn segment_measure_and_build_take_the_issue_interfaces() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom_named(d.path(), "ph", &["--no-dicom"]);
    let ct = ph.join("ct.nii.gz");
    let ct = ct.to_str().unwrap();
    let seg = d.path().join("seg");
    let seg = seg.to_str().unwrap();
    // The output folder last; without one, a one-line error saying how.
    let e = fails(&["segment", ct]);
    assert!(e.contains("spinetwin segment INPUT OUT"), "{e}");
    ok(&["segment", ct, seg, "--no-meshes"]);
    assert!(Path::new(seg).join("labels.nii.gz").is_file());
    // An existing file last is not taken for the output folder.
    let e = fails(&["segment", ct, ph.join("truth.json").to_str().unwrap()]);
    assert!(e.contains("existing file"), "{e}");

    // measure --json prints JSON: from the CT with the trabecular HU and the L1 screen
    // (no L1 here: none), from the segmentation folder without them.
    let from_ct: serde_json::Value =
        serde_json::from_str(&ok(&["measure", ct, "--json"])).expect("measure --json prints JSON");
    let verts = from_ct["measures"]["vertebrae"].as_array().unwrap();
    let names: Vec<&str> = verts.iter().map(|v| v["level"].as_str().unwrap()).collect();
    assert_eq!(names, ["L3", "L4", "L5"]);
    for v in verts {
        let hu = v["trabecular_hu"].as_f64().expect("HU from the CT");
        // 220 HU with a +-12 % texture.
        assert!((hu - 220.0).abs() < 35.0, "{v}");
        let area = v["canal_area_mm2"].as_f64().expect("canal area");
        assert!((150.0..350.0).contains(&area), "{v}");
        let h = v["body_height_middle_mm"].as_f64().expect("body height");
        assert!((20.0..35.0).contains(&h), "{v}");
    }
    assert!(from_ct["measures"]["bone_density"].is_null());
    assert!(
        from_ct["measures"]["segments"][0]["disc_height_middle_mm"]
            .as_f64()
            .is_some_and(|h| (5.0..15.0).contains(&h)),
        "{}",
        from_ct["measures"]["segments"]
    );
    let from_seg: serde_json::Value =
        serde_json::from_str(&ok(&["measure", seg, "--json"])).unwrap();
    let v = &from_seg["measures"]["vertebrae"][0];
    assert!(v["trabecular_hu"].is_null(), "{v}");
    assert!(v["canal_area_mm2"].as_f64().is_some(), "{v}");
    assert!(
        from_seg["warnings"][0]
            .as_str()
            .unwrap()
            .contains("label map without its CT"),
        "{}",
        from_seg["warnings"]
    );
    // The table names the new measures.
    let table = ok(&["measure", ct]);
    assert!(
        table.contains("canal area") && table.contains("body height"),
        "{table}"
    );

    // build SEG OUT: the label map alone.
    let twin = d.path().join("twin");
    let out = ok(&["build", seg, twin.to_str().unwrap()]);
    assert!(out.contains("a label map (no CT)"), "{out}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(twin.join("twin.json")).unwrap()).unwrap();
    assert!(file["source"].as_str().unwrap().contains("no CT"));
    for v in file["landmarks"]["vertebrae"].as_array().unwrap() {
        assert!(v["trabecular_hu"].is_null(), "{}", v["level"]);
    }
    let summary = std::fs::read_to_string(twin.join("summary.json")).unwrap();
    assert!(summary.contains("label map without its CT"), "{summary}");
    // It reads back and solves.
    let sim = d.path().join("sim");
    let out = ok(&[
        "simulate",
        twin.to_str().unwrap(),
        "--load",
        "flexion:7.5Nm",
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(out.contains("flexion"), "{out}");
    // Every segment reports its most stretched annulus fibre: stretched in flexion, by
    // a few per cent.
    let csv = std::fs::read_to_string(sim.join("results.csv")).unwrap();
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = head
        .iter()
        .position(|h| *h == "annulus_fibre_strain_max")
        .expect("the fibre strain column");
    for line in csv.lines().skip(1).filter(|l| l.contains(",7.5,")) {
        let e: f64 = line.split(',').nth(col).unwrap().parse().unwrap();
        assert!(e > 0.005 && e < 0.3, "{line}");
    }
    // The loaded discs for ParaView.
    let vtu = std::fs::read_to_string(sim.join("discs/flexion_7.5nm.vtu")).unwrap();
    for field in [
        "displacement",
        "von_mises",
        "max_principal",
        "min_principal",
        "stress",
    ] {
        assert!(vtu.contains(&format!("Name=\"{field}\"")), "{field}");
    }
    // The facet joints' surfaces with their contact pressure, and the peak per side in
    // the table.
    let facets = std::fs::read_to_string(sim.join("facets/flexion_7.5nm.vtu")).unwrap();
    for field in ["contact_pressure", "upper_vertebra", "side", "bony_stop"] {
        assert!(facets.contains(&format!("Name=\"{field}\"")), "{field}");
    }
    // (At this 2 mm voxel size each joint keeps one or two contact points, too few for a
    // triangle: the points and their pressures are there all the same.)
    assert!(!facets.contains("NumberOfPoints=\"0\""));
    assert!(
        head.contains(&"facet_pressure_left_mpa") && head.contains(&"facet_pressure_right_mpa")
    );
    // The moment-rotation curves as pictures.
    for png in ["curves/flexion_7.5nm.png", "curves/all.png"] {
        let bytes = std::fs::read(sim.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 2000, "{png}");
    }
    // And the same from the bare label map file.
    let twin2 = d.path().join("twin2");
    ok(&[
        "build",
        ph.join("labels.nii.gz").to_str().unwrap(),
        twin2.to_str().unwrap(),
    ]);
    assert!(twin2.join("twin.json").is_file());
}

/// `segment --model`: the learned-model path through the same command, with the reference
/// model the project makes (`spinetwin_segment::learned`); the report says where the labels
/// come from.
#[cfg(feature = "onnx")]
#[test]
fn segment_runs_a_learned_model_and_says_so() {
    use spinetwin_segment::learned::{bone_threshold_card, bone_threshold_model, card_path};
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom_named(d.path(), "ph", &["--no-dicom"]);
    let model = d.path().join("bone.onnx");
    std::fs::write(&model, bone_threshold_model()).unwrap();
    let card = bone_threshold_card(150.0, 22, Some([16, 1]));
    std::fs::write(card_path(&model), serde_json::to_string(&card).unwrap()).unwrap();
    let out = d.path().join("seg");
    let stdout = ok(&[
        "segment",
        ph.join("ct.nii.gz").to_str().unwrap(),
        out.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--no-meshes",
    ]);
    assert!(stdout.contains("learned model"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("segment.json")).unwrap()).unwrap();
    assert_eq!(report["level_basis"], "Model");
    assert_eq!(report["levels"][0]["level"], "L3");
    assert!(out.join("labels.nii.gz").is_file() && out.join("overview.png").is_file());
}

/// Without the `onnx` feature `--model` is a one-line error that says how to get it.
#[cfg(not(feature = "onnx"))]
#[test]
fn segment_model_needs_the_onnx_feature() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom_named(d.path(), "ph", &["--no-dicom"]);
    let model = d.path().join("m.onnx");
    std::fs::write(&model, b"x").unwrap();
    let e = fails(&[
        "segment",
        ph.join("ct.nii.gz").to_str().unwrap(),
        d.path().join("seg").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(e.contains("m.onnx") && e.contains("--features onnx"), "{e}");
    assert!(!d.path().join("seg").exists());
}

/// Issue 3's manual override through `segment`: `--levels` names the vertebrae found (a
/// different count is a one-line error), `--labels` feeds a corrected label map back in.
#[test]
fn segment_levels_and_a_fed_back_label_map_override_the_naming() {
    let d = tempfile::tempdir().unwrap();
    let ph = small_phantom_named(d.path(), "ph", &["--no-dicom"]);
    let ct = ph.join("ct.nii.gz");
    let ct = ct.to_str().unwrap();
    let report = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("segment.json")).unwrap()).unwrap()
    };
    let names = |r: &serde_json::Value| -> Vec<String> {
        r["levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["level"].as_str().unwrap().to_string())
            .collect()
    };
    // L3-L5 in view, named one higher by the user.
    let a = d.path().join("a");
    ok(&[
        "segment",
        ct,
        a.to_str().unwrap(),
        "--levels",
        "L2-L4",
        "--no-meshes",
    ]);
    let r = report(&a);
    assert_eq!(names(&r), ["L2", "L3", "L4"]);
    assert_eq!(r["level_basis"], "Given");
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("as given (--levels)")),
        "{}",
        r["warnings"]
    );
    // The label map carries the names: measured from it, the same levels.
    let m: serde_json::Value =
        serde_json::from_str(&ok(&["measure", a.to_str().unwrap(), "--json"])).unwrap();
    let lm: Vec<&str> = m["landmarks"]["vertebrae"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["level"].as_str().unwrap())
        .collect();
    assert_eq!(lm, ["L2", "L3", "L4"]);
    let e = fails(&[
        "segment",
        ct,
        d.path().join("b").to_str().unwrap(),
        "--levels",
        "L1-L5",
    ]);
    assert!(
        e.contains("shows 3 vertebrae") && e.contains("names 5"),
        "{e}"
    );
    // The reference labels fed back in.
    let c = d.path().join("c");
    ok(&[
        "segment",
        ct,
        c.to_str().unwrap(),
        "--labels",
        ph.join("labels.nii.gz").to_str().unwrap(),
        "--no-meshes",
    ]);
    let r = report(&c);
    assert_eq!(names(&r), ["L3", "L4", "L5"]);
    assert_eq!(r["level_basis"], "Given");
    assert_eq!(r["levels"][0]["confidence"], 1.0);
}

/// A real spine built from its expert segmentation alone (VerSe sub-verse004, T9-L5 mask,
/// no CT; in `../shared/data/`, skipped when absent): the T12-L5 twin builds and every
/// standard load case converges. Its L1 had turned 75 deg before the foramina ignored the
/// holes inside the bodies. Ignored: seven nonlinear solves, release (CI runs it).
#[test]
#[ignore = "seven nonlinear solves on a real spine: release mode (CI runs it)"]
fn a_real_spines_expert_mask_builds_a_twin_that_solves_the_standard_cases() {
    let mask = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/verse004-t9-l5-mask/seg-vert_msk.nii.gz"
    ));
    if !mask.exists() {
        eprintln!("skipped: {} is absent", mask.display());
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let twin = d.path().join("twin");
    ok(&["build", mask.to_str().unwrap(), twin.to_str().unwrap()]);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(twin.join("twin.json")).unwrap()).unwrap();
    let levels: Vec<&str> = file["landmarks"]["vertebrae"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["T12", "L1", "L2", "L3", "L4", "L5"]);
    for v in file["landmarks"]["vertebrae"].as_array().unwrap() {
        // Each vertebra's axis within 30 deg of the patient's cranial axis (LPS z).
        let z = v["frame"]["z"][2].as_f64().unwrap();
        assert!(
            z > 30f64.to_radians().cos(),
            "{}: frame z {}",
            v["level"],
            v["frame"]["z"]
        );
    }
    let sim = d.path().join("sim");
    let out = ok(&[
        "simulate",
        twin.to_str().unwrap(),
        "--out",
        sim.to_str().unwrap(),
    ]);
    println!("{out}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sim.join("results.json")).unwrap()).unwrap();
    let cases = results.as_array().unwrap();
    assert_eq!(cases.len(), 7, "the standard load cases");
    for c in cases {
        assert_eq!(
            c["converged"], true,
            "{}: {}",
            c["case"]["name"], c["failure"]
        );
    }
}
